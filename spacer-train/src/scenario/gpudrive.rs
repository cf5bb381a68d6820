//! GPUDrive's JSON scenes (one scene per file, as GPUDrive's Waymo converter writes
//! them).
//!
//! Layout: `{name, scenario_id, objects[], roads[], tl_states{}, metadata{}}`.
//! - An object has `position[T]{x,y,z}`, `velocity[T]{x,y}`, `heading[T]`, `valid[T]`,
//!   `width`, `length`, `height`, `goalPosition`, `type` (vehicle | pedestrian |
//!   cyclist | other), `id` and optionally `mark_as_expert`.
//! - A road has `geometry[]{x,y,z}`, `type` (lane | road_line | road_edge |
//!   stop_sign | crosswalk | speed_bump | driveway), `map_element_id` (the sub-type,
//!   numbered as waymax's `MapElementIds`) and `id` (the WOMD feature id).
//! - `tl_states` maps a lane id to `{state[], x[], y[], z[], time_index[]}`.
//! - `metadata` has `sdc_track_index`, `objects_of_interest`,
//!   `tracks_to_predict[{track_index, difficulty}]`.
//!
//! Reading rules (documented choices):
//! - A sample is invalid when `valid` is false or its position or velocity holds
//!   GPUDrive's -10000 marker; invalid states are stored as [`ObjectState::default`].
//!   (The older `dense_` layout fills invalid samples with 0.0001 instead; `valid`
//!   decides there.)
//! - Box sizes are per object in this format (GPUDrive's converter keeps WOMD's size
//!   at the track's last valid step) and are copied to every valid step; `height`
//!   may be missing (0).
//! - `id` may be missing (older layouts, fixtures): objects and roads are then
//!   numbered by their index.
//! - `metadata` may be missing (the older `dense_` layout): no self-driving car, no
//!   tracks to predict, no objects of interest.
//! - `scenario_id` falls back to `name` without `.json`, then to the file stem.
//! - `current_step` is [`CURRENT_STEP`] (the format does not carry it), or the last
//!   step for shorter logs (the one-step fixtures).
//! - Each step's signals are sorted by lane id (JSON objects carry no order).
//! - `goalPosition` is not stored: it is the last valid position, which
//!   [`super::Track::last_valid`] gives.
//!
//! What the format cannot carry, compared with WOMD: per-step box sizes, lane
//! topology (entry/exit lanes), speed limits, the lanes a stop sign controls, lane
//! boundaries and neighbours, the current step, and timestamps.
//!
//! Every error names the file and the JSON path of the field
//! (`objects[3].position[12].x`).

use std::path::Path;

use serde_json::Value;

use super::{
    CURRENT_STEP, LaneSignal, LaneType, MapFeature, MapFeatureKind, MapPoint, ObjectState,
    ObjectType, PredictionTarget, RoadEdgeType, RoadLineType, Scene, SceneSource, SignalState,
    Track,
};
use crate::error::{DataError, Location};

/// GPUDrive's marker of an invalid sample.
pub const INVALID_MARKER: f64 = -10000.0;

/// Largest JSON file accepted (real scenes are a few MB).
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Reads one GPUDrive JSON scene.
///
/// # Errors
/// [`DataError::Io`] for unreadable files; [`DataError::Invalid`] naming the file and
/// the field for malformed JSON, wrong types, missing fields and unknown names.
pub fn read_scene(path: &Path) -> Result<Scene, DataError> {
    let len = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    if len > MAX_JSON_BYTES {
        return Err(DataError::invalid(
            path,
            Location::file(),
            format!("{len}-byte JSON file exceeds the {MAX_JSON_BYTES}-byte limit"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_scene(&bytes, path)
}

/// Parses a GPUDrive JSON scene from bytes; `path` names it in errors.
///
/// # Errors
/// As [`read_scene`].
pub fn parse_scene(bytes: &[u8], path: &Path) -> Result<Scene, DataError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        DataError::invalid(
            path,
            Location {
                record: Some(e.line()),
                field: None,
            },
            format!(
                "malformed JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    scene_from_value(&v, path)
}

/// Field access that names the JSON path in its errors.
struct Reader<'a> {
    path: &'a Path,
}

impl Reader<'_> {
    fn err(&self, at: &str, msg: impl Into<String>) -> DataError {
        DataError::invalid(self.path, Location::field(None, at), msg)
    }

    fn get<'v>(&self, obj: &'v Value, key: &str, at: &str) -> Result<&'v Value, DataError> {
        let o = self.object(obj, at)?;
        o.get(key)
            .ok_or_else(|| self.err(&join(at, key), "missing required field"))
    }

    fn object<'v>(
        &self,
        v: &'v Value,
        at: &str,
    ) -> Result<&'v serde_json::Map<String, Value>, DataError> {
        v.as_object()
            .ok_or_else(|| self.err(at, format!("expected an object, found {}", kind(v))))
    }

    fn array<'v>(&self, v: &'v Value, at: &str) -> Result<&'v [Value], DataError> {
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.err(at, format!("expected an array, found {}", kind(v))))
    }

    fn number(&self, v: &Value, at: &str) -> Result<f64, DataError> {
        v.as_f64()
            .ok_or_else(|| self.err(at, format!("expected a number, found {}", kind(v))))
    }

    fn integer(&self, v: &Value, at: &str) -> Result<i64, DataError> {
        v.as_i64()
            .ok_or_else(|| self.err(at, format!("expected an integer, found {}", kind(v))))
    }

    fn index(&self, v: &Value, at: &str) -> Result<usize, DataError> {
        let i = self.integer(v, at)?;
        usize::try_from(i).map_err(|_| self.err(at, format!("negative index {i}")))
    }

    fn string<'v>(&self, v: &'v Value, at: &str) -> Result<&'v str, DataError> {
        v.as_str()
            .ok_or_else(|| self.err(at, format!("expected a string, found {}", kind(v))))
    }

    fn boolean(&self, v: &Value, at: &str) -> Result<bool, DataError> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
            _ => Err(self.err(at, format!("expected a boolean, found {}", kind(v)))),
        }
    }

    /// `{x, y, z?}`; `z` defaults to 0.
    fn point(&self, v: &Value, at: &str) -> Result<[f64; 3], DataError> {
        let x = self.number(self.get(v, "x", at)?, &join(at, "x"))?;
        let y = self.number(self.get(v, "y", at)?, &join(at, "y"))?;
        let z = match self.object(v, at)?.get("z") {
            Some(z) => self.number(z, &join(at, "z"))?,
            None => 0.0,
        };
        Ok([x, y, z])
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Converts a parsed GPUDrive JSON document into a [`Scene`] (rules in the module
/// docs).
///
/// # Errors
/// As [`read_scene`].
pub fn scene_from_value(v: &Value, path: &Path) -> Result<Scene, DataError> {
    let r = Reader { path };
    let top = r.object(v, "")?;

    let id = match (top.get("scenario_id"), top.get("name")) {
        (Some(s), _) => r.string(s, "scenario_id")?.to_string(),
        (None, Some(n)) => {
            let n = r.string(n, "name")?;
            n.strip_suffix(".json").unwrap_or(n).to_string()
        }
        (None, None) => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };

    let objects = r.array(r.get(v, "objects", "")?, "objects")?;
    let mut tracks = Vec::with_capacity(objects.len());
    let mut steps: Option<usize> = None;
    for (oi, o) in objects.iter().enumerate() {
        let at = format!("objects[{oi}]");
        let track = read_object(&r, o, oi, &at)?;
        match steps {
            None => steps = Some(track.states.len()),
            Some(n) if n != track.states.len() => {
                return Err(r.err(
                    &join(&at, "position"),
                    format!("{} steps, but objects[0] has {n}", track.states.len()),
                ));
            }
            Some(_) => {}
        }
        tracks.push(track);
    }
    let steps = steps.unwrap_or(super::NUM_STEPS);

    let roads = r.array(r.get(v, "roads", "")?, "roads")?;
    let mut map = Vec::with_capacity(roads.len());
    for (ri, road) in roads.iter().enumerate() {
        map.push(read_road(&r, road, ri)?);
    }

    let mut signals: Vec<Vec<LaneSignal>> = vec![Vec::new(); steps];
    if let Some(tl) = top.get("tl_states") {
        for (key, lane) in r.object(tl, "tl_states")? {
            let at = format!("tl_states.{key}");
            let lane_id: i64 = key
                .parse()
                .map_err(|_| r.err(&at, format!("lane id {key:?} is not an integer")))?;
            let arr = |name: &str| -> Result<&[Value], DataError> {
                r.array(r.get(lane, name, &at)?, &join(&at, name))
            };
            let (states, xs, ys, ts) = (arr("state")?, arr("x")?, arr("y")?, arr("time_index")?);
            let zs = match r.object(lane, &at)?.get("z") {
                Some(z) => Some(r.array(z, &join(&at, "z"))?),
                None => None,
            };
            let n = states.len();
            if xs.len() != n || ys.len() != n || ts.len() != n || zs.is_some_and(|z| z.len() != n) {
                return Err(r.err(&at, "state, x, y, z and time_index have different lengths"));
            }
            for i in 0..n {
                let t_at = format!("{at}.time_index[{i}]");
                let t = r.index(&ts[i], &t_at)?;
                let step = signals.get_mut(t).ok_or_else(|| {
                    r.err(&t_at, format!("step {t} is past the {steps}-step log"))
                })?;
                let s_at = format!("{at}.state[{i}]");
                let state = signal_state(r.string(&states[i], &s_at)?)
                    .ok_or_else(|| r.err(&s_at, "unknown signal state"))?;
                let z = match zs {
                    Some(z) => r.number(&z[i], &format!("{at}.z[{i}]"))?,
                    None => 0.0,
                };
                step.push(LaneSignal {
                    lane: lane_id,
                    state,
                    stop_point: MapPoint {
                        x: r.number(&xs[i], &format!("{at}.x[{i}]"))? as f32,
                        y: r.number(&ys[i], &format!("{at}.y[{i}]"))? as f32,
                        z: z as f32,
                    },
                });
            }
        }
        for step in &mut signals {
            step.sort_by_key(|s| s.lane);
        }
    }

    let mut sdc_index = None;
    let mut tracks_to_predict = Vec::new();
    let mut objects_of_interest = Vec::new();
    if let Some(meta) = top.get("metadata") {
        let m = r.object(meta, "metadata")?;
        if let Some(s) = m.get("sdc_track_index") {
            sdc_index = Some(r.index(s, "metadata.sdc_track_index")?);
        }
        if let Some(ooi) = m.get("objects_of_interest") {
            for (i, x) in r
                .array(ooi, "metadata.objects_of_interest")?
                .iter()
                .enumerate()
            {
                objects_of_interest
                    .push(r.integer(x, &format!("metadata.objects_of_interest[{i}]"))?);
            }
        }
        if let Some(ttp) = m.get("tracks_to_predict") {
            for (i, x) in r
                .array(ttp, "metadata.tracks_to_predict")?
                .iter()
                .enumerate()
            {
                let at = format!("metadata.tracks_to_predict[{i}]");
                let track_index =
                    r.index(r.get(x, "track_index", &at)?, &join(&at, "track_index"))?;
                let difficulty = match r.object(x, &at)?.get("difficulty") {
                    Some(d) => {
                        let d_at = join(&at, "difficulty");
                        let d = r.integer(d, &d_at)?;
                        u8::try_from(d).ok().filter(|d| *d <= 2).ok_or_else(|| {
                            r.err(&d_at, format!("difficulty {d} is not 0, 1 or 2"))
                        })?
                    }
                    None => 0,
                };
                tracks_to_predict.push(PredictionTarget {
                    track_index,
                    difficulty,
                });
            }
        }
    }

    Ok(Scene {
        id,
        source: SceneSource::Gpudrive,
        current_step: CURRENT_STEP.min(steps.saturating_sub(1)),
        tracks,
        map,
        signals,
        sdc_index,
        tracks_to_predict,
        objects_of_interest,
    })
}

fn read_object(r: &Reader<'_>, o: &Value, index: usize, at: &str) -> Result<Track, DataError> {
    let obj = r.object(o, at)?;
    let id = match obj.get("id") {
        Some(id) => r.integer(id, &join(at, "id"))?,
        None => index as i64,
    };
    let type_at = join(at, "type");
    let t = r.string(r.get(o, "type", at)?, &type_at)?;
    let object_type = object_type(t).ok_or_else(|| {
        r.err(
            &type_at,
            format!("unknown object type {t:?} (expected vehicle, pedestrian, cyclist or other)"),
        )
    })?;
    let size = |name: &str| r.number(r.get(o, name, at)?, &join(at, name));
    let length = size("length")? as f32;
    let width = size("width")? as f32;
    let height = match obj.get("height") {
        Some(h) => r.number(h, &join(at, "height"))? as f32,
        None => 0.0,
    };
    let arr = |name: &str| -> Result<&[Value], DataError> {
        r.array(r.get(o, name, at)?, &join(at, name))
    };
    let (pos, vel, head, valid) = (
        arr("position")?,
        arr("velocity")?,
        arr("heading")?,
        arr("valid")?,
    );
    let n = pos.len();
    for (name, a) in [("velocity", vel), ("heading", head), ("valid", valid)] {
        if a.len() != n {
            return Err(r.err(
                &join(at, name),
                format!("{} samples, but position has {n}", a.len()),
            ));
        }
    }
    let mut states = Vec::with_capacity(n);
    for i in 0..n {
        let ok = r.boolean(&valid[i], &format!("{at}.valid[{i}]"))?;
        if !ok {
            states.push(ObjectState::default());
            continue;
        }
        let [x, y, z] = r.point(&pos[i], &format!("{at}.position[{i}]"))?;
        let v_at = format!("{at}.velocity[{i}]");
        let vx = r.number(r.get(&vel[i], "x", &v_at)?, &join(&v_at, "x"))?;
        let vy = r.number(r.get(&vel[i], "y", &v_at)?, &join(&v_at, "y"))?;
        let heading = r.number(&head[i], &format!("{at}.heading[{i}]"))?;
        if [x, y, vx, vy].contains(&INVALID_MARKER) {
            states.push(ObjectState::default());
            continue;
        }
        states.push(ObjectState {
            x: x as f32,
            y: y as f32,
            z: z as f32,
            length,
            width,
            height,
            heading: heading as f32,
            vx: vx as f32,
            vy: vy as f32,
            valid: true,
        });
    }
    Ok(Track {
        id,
        object_type,
        states,
    })
}

fn read_road(r: &Reader<'_>, road: &Value, index: usize) -> Result<MapFeature, DataError> {
    let at = format!("roads[{index}]");
    let obj = r.object(road, &at)?;
    let id = match obj.get("id") {
        Some(id) => r.integer(id, &join(&at, "id"))?,
        None => index as i64,
    };
    let sub = match obj.get("map_element_id") {
        Some(m) => Some(r.integer(m, &join(&at, "map_element_id"))?),
        None => None,
    };
    let type_at = join(&at, "type");
    let t = r.string(r.get(road, "type", &at)?, &type_at)?;
    let kind = road_kind(t, sub).ok_or_else(|| {
        r.err(
            &type_at,
            format!(
                "unknown road type {t:?} (expected lane, road_line, road_edge, stop_sign, crosswalk, speed_bump or driveway)"
            ),
        )
    })?;
    let g_at = join(&at, "geometry");
    let geometry = r.array(r.get(road, "geometry", &at)?, &g_at)?;
    let mut points = Vec::with_capacity(geometry.len());
    for (i, p) in geometry.iter().enumerate() {
        let [x, y, z] = r.point(p, &format!("{g_at}[{i}]"))?;
        points.push(MapPoint {
            x: x as f32,
            y: y as f32,
            z: z as f32,
        });
    }
    Ok(MapFeature::new(id, kind, points))
}

/// GPUDrive's object type name.
pub fn object_type(name: &str) -> Option<ObjectType> {
    Some(match name {
        "vehicle" => ObjectType::Vehicle,
        "pedestrian" => ObjectType::Pedestrian,
        "cyclist" => ObjectType::Cyclist,
        "other" => ObjectType::Other,
        "unset" => ObjectType::Unset,
        _ => return None,
    })
}

/// GPUDrive's road type name plus its `map_element_id` (waymax `MapElementIds`:
/// lanes 0-3, road lines 5-13, road edges 14-16) as a feature kind. A missing or
/// out-of-range sub-type is the kind's unknown sub-type.
pub fn road_kind(name: &str, map_element_id: Option<i64>) -> Option<MapFeatureKind> {
    let m = map_element_id.unwrap_or(-1);
    let wide = |v: i64| i32::try_from(v).unwrap_or(-1);
    Some(match name {
        "lane" => MapFeatureKind::Lane(match m {
            0..=3 => super::womd::lane_type(wide(m)),
            _ => LaneType::Undefined,
        }),
        "road_line" => MapFeatureKind::RoadLine(match m {
            5..=13 => super::womd::road_line_type(wide(m - 5)),
            _ => RoadLineType::Unknown,
        }),
        "road_edge" => MapFeatureKind::RoadEdge(match m {
            14..=16 => super::womd::road_edge_type(wide(m - 14)),
            _ => RoadEdgeType::Unknown,
        }),
        "stop_sign" => MapFeatureKind::StopSign,
        "crosswalk" => MapFeatureKind::Crosswalk,
        "speed_bump" => MapFeatureKind::SpeedBump,
        "driveway" => MapFeatureKind::Driveway,
        _ => return None,
    })
}

/// GPUDrive's signal state name.
pub fn signal_state(name: &str) -> Option<SignalState> {
    use SignalState::*;
    Some(match name {
        "unknown" => Unknown,
        "arrow_stop" => ArrowStop,
        "arrow_caution" => ArrowCaution,
        "arrow_go" => ArrowGo,
        "stop" => Stop,
        "caution" => Caution,
        "go" => Go,
        "flashing_stop" => FlashingStop,
        "flashing_caution" => FlashingCaution,
        _ => return None,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;
    use crate::scenario::womd;

    /// Wrapped angle difference.
    fn angle_diff(a: f32, b: f32) -> f32 {
        let d = (a - b).rem_euclid(std::f32::consts::TAU);
        d.min(std::f32::consts::TAU - d)
    }

    /// "The same scene" across the two formats: the same id, current step, tracks
    /// (ids, types, valid masks; at valid steps x/y/z within 1 mm, heading within
    /// 1e-5 rad wrapped, velocity within 1e-4 m/s, and the box size equal to WOMD's
    /// at the track's last valid step, which is the one GPUDrive's converter keeps),
    /// map features (ids, kinds with sub-types, point counts and every point within
    /// 1 mm), signals per step (lane, state, stop point; sorted by lane), the
    /// self-driving car, tracks to predict with difficulty, and objects of interest.
    /// Not compared, because the JSON cannot carry them: per-step box sizes, lane
    /// entry/exit lanes, speed limits and the lanes a stop sign controls.
    fn assert_same_scene(w: &Scene, g: &Scene) {
        assert_eq!(w.id, g.id);
        assert_eq!(w.current_step, g.current_step);
        assert_eq!(w.tracks.len(), g.tracks.len());
        let mut valid_states = 0;
        for (i, (a, b)) in w.tracks.iter().zip(&g.tracks).enumerate() {
            assert_eq!((a.id, a.object_type), (b.id, b.object_type), "track {i}");
            assert_eq!(a.states.len(), b.states.len(), "track {i}");
            let last = a.last_valid().expect("a track with no valid state");
            for (t, (s, q)) in a.states.iter().zip(&b.states).enumerate() {
                assert_eq!(s.valid, q.valid, "track {i} step {t}");
                if !s.valid {
                    assert_eq!(*q, ObjectState::default());
                    continue;
                }
                valid_states += 1;
                let at = format!("track {i} step {t}: {s:?} vs {q:?}");
                assert!((s.x - q.x).abs() < 1e-3 && (s.y - q.y).abs() < 1e-3, "{at}");
                assert!((s.z - q.z).abs() < 1e-3, "{at}");
                assert!(angle_diff(s.heading, q.heading) < 1e-5, "{at}");
                assert!(
                    (s.vx - q.vx).abs() < 1e-4 && (s.vy - q.vy).abs() < 1e-4,
                    "{at}"
                );
                assert_eq!(
                    (q.length, q.width, q.height),
                    (last.length, last.width, last.height),
                    "{at}"
                );
            }
        }
        assert_eq!(valid_states, 4596);
        assert_eq!(w.map.len(), g.map.len());
        for (i, (a, b)) in w.map.iter().zip(&g.map).enumerate() {
            assert_eq!((a.id, a.kind), (b.id, b.kind), "map feature {i}");
            assert_eq!(a.points.len(), b.points.len(), "map feature {i}");
            for (p, q) in a.points.iter().zip(&b.points) {
                assert!(
                    (p.x - q.x).abs() < 1e-3
                        && (p.y - q.y).abs() < 1e-3
                        && (p.z - q.z).abs() < 1e-3,
                    "map feature {i}: {p:?} vs {q:?}"
                );
            }
        }
        assert_eq!(w.signals.len(), g.signals.len());
        for (t, (a, b)) in w.signals.iter().zip(&g.signals).enumerate() {
            let mut a = a.clone();
            a.sort_by_key(|s| s.lane);
            assert_eq!(&a, b, "signals at step {t}");
        }
        assert_eq!(w.sdc_index, g.sdc_index);
        assert_eq!(w.tracks_to_predict, g.tracks_to_predict);
        assert_eq!(w.objects_of_interest, g.objects_of_interest);
    }

    #[test]
    fn tfrecord_and_json_copies_of_637f_are_the_same_scene() {
        let w = womd::read_scenes(&shared_data("womd/637f20cafde22ff8.tfrecord")).unwrap();
        let g = read_scene(&shared_data("gpudrive/637f20cafde22ff8.json")).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(g.source, SceneSource::Gpudrive);
        assert_same_scene(&w[0], &g);
        // What only WOMD carries is really there.
        assert!(w[0].map.iter().any(|m| !m.exit_lanes.is_empty()));
        assert!(g.map.iter().all(|m| m.exit_lanes.is_empty()));
    }

    #[test]
    fn tfrecord_and_json_copies_of_ee51_agree() {
        let w = &womd::read_scenes(&shared_data("womd/ee519cf571686d19.tfrecord")).unwrap()[0];
        let g = read_scene(&shared_data("gpudrive/ee519cf571686d19.json")).unwrap();
        assert_eq!(w.tracks.len(), g.tracks.len());
        assert_eq!(w.map.len(), g.map.len());
        let ids = |s: &Scene| {
            s.tracks
                .iter()
                .map(|t| (t.id, t.object_type))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(w), ids(&g));
        let valid = |s: &Scene| {
            s.tracks
                .iter()
                .flat_map(|t| &t.states)
                .filter(|s| s.valid)
                .count()
        };
        assert_eq!(valid(w), valid(&g));
        assert_eq!(w.sdc_index, g.sdc_index);
        assert_eq!(w.tracks_to_predict, g.tracks_to_predict);
    }

    #[test]
    fn the_older_dense_layout_has_no_metadata_and_no_ids() {
        let g = read_scene(&shared_data(
            "gpudrive/dense_tfrecord-00000-of-00150_238786b3cccc4a0e.json",
        ))
        .unwrap();
        assert_eq!(g.id, "238786b3cccc4a0e");
        assert_eq!(g.tracks.len(), 87);
        assert_eq!(g.map.len(), 297);
        assert_eq!(g.sdc_index, None);
        assert!(g.tracks_to_predict.is_empty());
        assert_eq!(g.tracks[5].id, 5);
        // Invalid samples (0.0001 placeholders there) are zeroed.
        assert!(
            g.tracks
                .iter()
                .flat_map(|t| &t.states)
                .filter(|s| !s.valid)
                .all(|s| *s == ObjectState::default())
        );
        let mut lanes: Vec<i64> = g.signals.iter().flatten().map(|s| s.lane).collect();
        lanes.sort_unstable();
        lanes.dedup();
        assert_eq!(lanes.len(), 19);
    }

    #[test]
    fn partial_signal_arrays_land_on_their_time_index() {
        let g = read_scene(&shared_data(
            "gpudrive/tl_tfrecord-00000-of-00150_2a173b334be3d32c.json",
        ))
        .unwrap();
        // Lane 183 has 36 states from step 55 on.
        let steps: Vec<usize> = (0..g.signals.len())
            .filter(|&t| g.signals[t].iter().any(|s| s.lane == 183))
            .collect();
        assert_eq!(steps.len(), 36);
        assert_eq!(steps[0], 55);
    }

    #[test]
    fn one_step_fixtures_read() {
        let g = read_scene(&shared_data("gpudrive/agent-agent-collision.json")).unwrap();
        assert_eq!(g.tracks.len(), 2);
        assert_eq!(g.num_steps(), 1);
        assert_eq!(g.current_step, 0);
        assert_eq!(g.signals.len(), 1);
        assert_eq!(g.tracks[0].states[0].height, 0.0);
    }

    // ---- Broken inputs: damaged copies of a real scene in a temporary directory.

    /// The real scene 637f20cafde22ff8 cut down to 12 objects and 10 roads (all its
    /// signals kept), so that each damaged copy parses quickly.
    fn real_json() -> Value {
        static BASE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
        BASE.get_or_init(|| {
            let bytes = std::fs::read(shared_data("gpudrive/637f20cafde22ff8.json")).unwrap();
            let mut v: Value = serde_json::from_slice(&bytes).unwrap();
            v["objects"].as_array_mut().unwrap().truncate(12);
            v["roads"].as_array_mut().unwrap().truncate(10);
            v["metadata"]["sdc_track_index"] = 11.into();
            v["metadata"]["tracks_to_predict"] =
                serde_json::json!([{"track_index": 3, "difficulty": 1}]);
            parse_scene(&serde_json::to_vec(&v).unwrap(), Path::new("base.json")).unwrap();
            v
        })
        .clone()
    }

    /// Writes `bytes` as `name` in a fresh temporary directory, loads it (validation
    /// included) and returns the error text, which must name the file.
    fn load_err(name: &str, bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = crate::scenario::load_scenes(&p, crate::scenario::BadScenePolicy::Fail)
            .expect_err("a broken file loaded")
            .to_string();
        assert!(e.contains(name), "the error does not name the file: {e}");
        e
    }

    fn damaged(f: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v = real_json();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let good = serde_json::to_vec(&real_json()).unwrap();
        let e = load_err("cut.json", &good[..good.len() / 3]);
        assert!(
            e.contains("malformed JSON (line") && e.contains("column"),
            "{e}"
        );
        let e = load_err("nan.json", br#"{"objects": [{"x": NaN}]}"#);
        assert!(e.contains("malformed JSON"), "{e}");
        let e = load_err("big.json", br#"{"objects": [], "roads": [], "x": 1e400}"#);
        assert!(e.contains("malformed JSON"), "{e}");
        let e = load_err("array.json", b"[1, 2]");
        assert!(e.contains("expected an object, found an array"), "{e}");
    }

    #[test]
    fn wrong_json_types_name_the_field() {
        type Damage = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(&str, Damage)> = vec![
            (
                "field objects[3].position[12].x: expected a number, found a string",
                Box::new(|v| v["objects"][3]["position"][12]["x"] = "12.5".into()),
            ),
            (
                "field objects[0].valid[4]: expected a boolean, found a string",
                Box::new(|v| v["objects"][0]["valid"][4] = "yes".into()),
            ),
            (
                "field objects: expected an array, found an object",
                Box::new(|v| v["objects"] = serde_json::json!({})),
            ),
            (
                "field roads[2].type: expected a string, found a number",
                Box::new(|v| v["roads"][2]["type"] = 3.into()),
            ),
            (
                "field roads[2].geometry[0]: expected an object, found a number",
                Box::new(|v| v["roads"][2]["geometry"][0] = 1.into()),
            ),
            (
                "field metadata.sdc_track_index: expected an integer, found a string",
                Box::new(|v| v["metadata"]["sdc_track_index"] = "82".into()),
            ),
            (
                "field metadata.sdc_track_index: expected an integer, found a number",
                Box::new(|v| v["metadata"]["sdc_track_index"] = 82.5.into()),
            ),
            (
                "field metadata.sdc_track_index: negative index -1",
                Box::new(|v| v["metadata"]["sdc_track_index"] = (-1).into()),
            ),
            (
                "field tl_states.431.state[3]: unknown signal state",
                Box::new(|v| v["tl_states"]["431"]["state"][3] = "purple".into()),
            ),
            (
                "field tl_states.431.time_index[0]: step 500 is past the 91-step log",
                Box::new(|v| v["tl_states"]["431"]["time_index"][0] = 500.into()),
            ),
            (
                "field objects[1].type: unknown object type \"tank\"",
                Box::new(|v| v["objects"][1]["type"] = "tank".into()),
            ),
            (
                "field objects[2].heading: 90 samples, but position has 91",
                Box::new(|v| {
                    v["objects"][2]["heading"].as_array_mut().unwrap().pop();
                }),
            ),
            (
                "field objects[5].position: 90 steps, but objects[0] has 91",
                Box::new(|v| {
                    for k in ["position", "velocity", "heading", "valid"] {
                        v["objects"][5][k].as_array_mut().unwrap().pop();
                    }
                }),
            ),
        ];
        for (want, damage) in cases {
            let e = load_err("types.json", &damaged(damage));
            assert!(e.contains(want), "want {want:?}: {e}");
        }
    }

    #[test]
    fn a_10_mb_string_is_not_repeated_in_the_error() {
        let huge = "t".repeat(10_000_000);
        let e = load_err(
            "bigtype.json",
            &damaged(|v| v["objects"][0]["type"] = huge.into()),
        );
        assert!(
            e.contains("objects[0].type") && e.len() < 1_000,
            "{} bytes",
            e.len()
        );
    }

    #[test]
    fn absurd_but_finite_numbers_are_refused_naming_the_field() {
        // A 1e9 m long vehicle, a position 3e38 m away, a road point 1e7 m away.
        let valid_step = |v: &Value, o: usize| {
            v["objects"][o]["valid"]
                .as_array()
                .unwrap()
                .iter()
                .position(|b| b.as_bool() == Some(true))
                .unwrap()
        };
        let e = load_err(
            "long.json",
            &damaged(|v| v["objects"][0]["length"] = 1e9.into()),
        );
        assert!(
            e.contains("objects") || e.contains("tracks[0].states"),
            "{e}"
        );
        assert!(e.contains(".length") && e.contains("100 m limit"), "{e}");
        let e = load_err(
            "far.json",
            &damaged(|v| {
                let i = valid_step(v, 2);
                v["objects"][2]["position"][i]["x"] = 3e38.into();
            }),
        );
        assert!(e.contains("tracks[2].states[") && e.contains("].x"), "{e}");
        let e = load_err(
            "road.json",
            &damaged(|v| v["roads"][1]["geometry"][0]["y"] = (-1e7).into()),
        );
        assert!(e.contains("map[1].points[0]"), "{e}");
    }

    #[test]
    fn missing_json_fields_are_named() {
        for (want, key_path) in [
            ("field objects: missing required field", vec!["objects"]),
            (
                "field objects[0].heading: missing required field",
                vec!["objects", "0", "heading"],
            ),
            (
                "field objects[7].width: missing required field",
                vec!["objects", "7", "width"],
            ),
            (
                "field roads[4].geometry: missing required field",
                vec!["roads", "4", "geometry"],
            ),
            (
                "field metadata.tracks_to_predict[0].track_index: missing required field",
                vec!["metadata", "tracks_to_predict", "0", "track_index"],
            ),
        ] {
            let bytes = damaged(|v| {
                let (last, parents) = key_path.split_last().unwrap();
                let mut at = v;
                for k in parents {
                    at = match k.parse::<usize>() {
                        Ok(i) => &mut at[i],
                        Err(_) => &mut at[*k],
                    };
                }
                at.as_object_mut().unwrap().remove(*last);
            });
            let e = load_err("missing.json", &bytes);
            assert!(e.contains(want), "want {want:?}: {e}");
        }
        // A valid sample's x missing.
        let e = load_err(
            "x.json",
            &damaged(|v| {
                v["objects"][0]["position"][20]
                    .as_object_mut()
                    .unwrap()
                    .remove("x");
            }),
        );
        assert!(
            e.contains("field objects[0].position[20].x: missing required field"),
            "{e}"
        );
    }

    #[test]
    fn implausible_json_scenes_fail_validation() {
        let e = load_err(
            "empty.json",
            &damaged(|v| {
                v["objects"] = serde_json::json!([]);
                v.as_object_mut().unwrap().remove("metadata");
            }),
        );
        assert!(e.contains("no agents"), "{e}");
        let e = load_err(
            "onepoint.json",
            &damaged(|v| {
                // roads[0] is a road edge.
                v["roads"][0]["geometry"]
                    .as_array_mut()
                    .unwrap()
                    .truncate(1);
            }),
        );
        assert!(
            e.contains("field map[0].points") && e.contains("needs at least 2"),
            "{e}"
        );
        let e = load_err(
            "size.json",
            &damaged(|v| v["objects"][9]["length"] = (-4.0).into()),
        );
        assert!(
            e.contains("field tracks[9].states[") && e.contains("positive"),
            "{e}"
        );
        let e = load_err(
            "ttp.json",
            &damaged(|v| v["metadata"]["tracks_to_predict"][0]["track_index"] = 12.into()),
        );
        assert!(
            e.contains("tracks_to_predict[0]") && e.contains("out of range"),
            "{e}"
        );
        let e = load_err(
            "dup.json",
            &damaged(|v| v["objects"][1]["id"] = v["objects"][0]["id"].clone()),
        );
        assert!(e.contains("duplicate track id 1580"), "{e}");
        let e = load_err(
            "huge.json",
            &damaged(|v| v["objects"][0]["position"][0]["x"] = 1e39.into()),
        );
        assert!(e.contains("non-finite"), "{e}");
        // -10000 marks a sample invalid even where valid says true.
        let bytes = damaged(|v| v["objects"][0]["position"][0]["x"] = INVALID_MARKER.into());
        let s = parse_scene(&bytes, Path::new("m.json")).unwrap();
        assert!(!s.tracks[0].states[0].valid);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Random bytes, and a small real scene with random bytes overwritten, never
        /// panic the JSON reader or the validation.
        #[test]
        fn random_and_damaged_json_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
            flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..6),
        ) {
            let p = Path::new("random.json");
            let _ = parse_scene(&bytes, p);
            let mut b = std::fs::read(shared_data("gpudrive/agent-agent-collision.json")).unwrap();
            for (at, v) in flips {
                let n = b.len();
                b[at % n] = v;
            }
            if let Ok(s) = parse_scene(&b, p) {
                let _ = crate::scenario::validate::validate_scene(&s, crate::scenario::validate::StepRule::Any, p, None);
            }
        }
    }

    #[test]
    fn sub_types_follow_map_element_ids() {
        assert_eq!(
            road_kind("road_line", Some(6)),
            Some(MapFeatureKind::RoadLine(RoadLineType::BrokenSingleWhite))
        );
        assert_eq!(
            road_kind("road_line", Some(13)),
            Some(MapFeatureKind::RoadLine(RoadLineType::PassingDoubleYellow))
        );
        assert_eq!(
            road_kind("road_edge", Some(16)),
            Some(MapFeatureKind::RoadEdge(RoadEdgeType::Median))
        );
        assert_eq!(
            road_kind("lane", Some(3)),
            Some(MapFeatureKind::Lane(LaneType::BikeLane))
        );
        assert_eq!(
            road_kind("lane", None),
            Some(MapFeatureKind::Lane(LaneType::Undefined))
        );
        assert_eq!(road_kind("parking", None), None);
    }
}
