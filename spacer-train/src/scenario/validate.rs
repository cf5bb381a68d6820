//! Whether a [`Scene`] can be trusted: the checks every loaded scene passes before
//! training, simulation or metrics see it.
//!
//! Checked (each failure names the field):
//! - a non-empty id and at least one track ("no agents");
//! - every track has the same number of states: [`NUM_STEPS`] under
//!   [`StepRule::Full`], any positive number under [`StepRule::Any`] (one-step test
//!   fixtures); the current step lies inside the log;
//! - every number is finite (states, map points, stop points);
//! - every valid state has a positive length and width and a non-negative height;
//! - unique track ids and unique map feature ids;
//! - geometry: a road edge needs at least 2 points (a polyline the off-road test can
//!   use), a crosswalk, speed bump or driveway at least 3 (a polygon), a stop sign
//!   exactly 1, a lane or road line at least 1. WOMD itself ships one-point lanes and
//!   road lines (scene 637f20cafde22ff8 has one of each), so those stay legal: they
//!   contribute no segment;
//! - one signal list per step;
//! - the self-driving car and the tracks to predict index existing tracks, without
//!   repeats.

use std::collections::HashSet;
use std::path::Path;

use super::{MapFeatureKind, NUM_STEPS, Scene};
use crate::error::{DataError, Location};

/// How many steps a scene must have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StepRule {
    /// Exactly [`NUM_STEPS`] (training, simulation, metrics).
    #[default]
    Full,
    /// Any positive number, the same for every track (inspection, fixtures).
    Any,
}

/// Checks `scene`; `path` and `record` locate it in errors.
///
/// # Errors
/// [`DataError::Invalid`] naming the file, the record and the first failing field.
pub fn validate_scene(
    scene: &Scene,
    rule: StepRule,
    path: &Path,
    record: Option<usize>,
) -> Result<(), DataError> {
    check(scene, rule)
        .map_err(|(field, msg)| DataError::invalid(path, Location::field(record, field), msg))
}

fn finite(values: &[f32]) -> bool {
    values.iter().all(|v| v.is_finite())
}

fn check(scene: &Scene, rule: StepRule) -> Result<(), (String, String)> {
    let fail = |field: String, msg: String| Err((field, msg));
    if scene.id.is_empty() {
        return fail("id".into(), "empty scene id".into());
    }
    if scene.tracks.is_empty() {
        return fail("tracks".into(), "no agents: the scene has no tracks".into());
    }
    let steps = scene.tracks[0].states.len();
    match rule {
        StepRule::Full if steps != NUM_STEPS => {
            return fail(
                "tracks[0].states".into(),
                format!("{steps} steps, expected {NUM_STEPS} (9.1 s at 10 Hz)"),
            );
        }
        _ if steps == 0 => return fail("tracks[0].states".into(), "no steps".into()),
        _ => {}
    }
    if scene.current_step >= steps {
        return fail(
            "current_step".into(),
            format!(
                "current step {} is outside the {steps}-step log",
                scene.current_step
            ),
        );
    }
    let mut ids = HashSet::with_capacity(scene.tracks.len());
    for (i, t) in scene.tracks.iter().enumerate() {
        if t.states.len() != steps {
            return fail(
                format!("tracks[{i}].states"),
                format!("{} steps, but tracks[0] has {steps}", t.states.len()),
            );
        }
        if !ids.insert(t.id) {
            return fail(
                format!("tracks[{i}].id"),
                format!("duplicate track id {}", t.id),
            );
        }
        for (s, st) in t.states.iter().enumerate() {
            let at = || format!("tracks[{i}].states[{s}]");
            let v = [
                st.x, st.y, st.z, st.length, st.width, st.height, st.heading, st.vx, st.vy,
            ];
            if !finite(&v) {
                return fail(at(), format!("non-finite value in {st:?}"));
            }
            if st.valid && (st.length <= 0.0 || st.width <= 0.0 || st.height < 0.0) {
                return fail(
                    at(),
                    format!(
                        "box size {} x {} x {} m: length and width must be positive",
                        st.length, st.width, st.height
                    ),
                );
            }
        }
    }
    let mut fids = HashSet::with_capacity(scene.map.len());
    for (i, m) in scene.map.iter().enumerate() {
        let at = || format!("map[{i}]");
        if !fids.insert(m.id) {
            return fail(at(), format!("duplicate map feature id {}", m.id));
        }
        let n = m.points.len();
        let (min, what) = match m.kind {
            MapFeatureKind::RoadEdge(_) => (2, "a road edge polyline"),
            MapFeatureKind::Crosswalk | MapFeatureKind::SpeedBump | MapFeatureKind::Driveway => {
                (3, "a polygon")
            }
            MapFeatureKind::StopSign => (1, "a stop sign position"),
            MapFeatureKind::Lane(_) | MapFeatureKind::RoadLine(_) => (1, "a polyline"),
        };
        if n < min {
            return fail(
                format!("map[{i}].points"),
                format!(
                    "{} {} (id {}) has {n} point(s); {what} needs at least {min}",
                    m.kind.name(),
                    i,
                    m.id
                ),
            );
        }
        if m.kind == MapFeatureKind::StopSign && n != 1 {
            return fail(
                format!("map[{i}].points"),
                format!("stop sign (id {}) has {n} points, expected 1", m.id),
            );
        }
        if let Some(j) = m.points.iter().position(|p| !finite(&[p.x, p.y, p.z])) {
            return fail(
                format!("map[{i}].points[{j}]"),
                format!("non-finite point {:?}", m.points[j]),
            );
        }
        if m.speed_limit_mph.is_some_and(|v| !v.is_finite()) {
            return fail(
                format!("map[{i}].speed_limit_mph"),
                "non-finite speed limit".into(),
            );
        }
    }
    if scene.signals.len() != steps {
        return fail(
            "signals".into(),
            format!(
                "{} signal steps for a {steps}-step log",
                scene.signals.len()
            ),
        );
    }
    for (t, step) in scene.signals.iter().enumerate() {
        for (j, s) in step.iter().enumerate() {
            let p = s.stop_point;
            if !finite(&[p.x, p.y, p.z]) {
                return fail(
                    format!("signals[{t}][{j}].stop_point"),
                    format!("non-finite stop point {p:?}"),
                );
            }
        }
    }
    let n = scene.tracks.len();
    if let Some(s) = scene.sdc_index
        && s >= n
    {
        return fail(
            "sdc_index".into(),
            format!("self-driving car index {s} out of range ({n} tracks)"),
        );
    }
    let mut seen = HashSet::new();
    for (i, p) in scene.tracks_to_predict.iter().enumerate() {
        if p.track_index >= n {
            return fail(
                format!("tracks_to_predict[{i}]"),
                format!("track index {} out of range ({n} tracks)", p.track_index),
            );
        }
        if !seen.insert(p.track_index) {
            return fail(
                format!("tracks_to_predict[{i}]"),
                format!("track index {} listed twice", p.track_index),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{
        MapFeature, MapPoint, ObjectState, ObjectType, PredictionTarget, RoadEdgeType, SceneSource,
        Track,
    };

    fn good() -> Scene {
        let st = ObjectState {
            length: 4.0,
            width: 2.0,
            valid: true,
            ..Default::default()
        };
        Scene {
            id: "s".into(),
            source: SceneSource::Synthetic,
            current_step: 10,
            tracks: (0..2)
                .map(|i| Track {
                    id: i,
                    object_type: ObjectType::Vehicle,
                    states: vec![st; NUM_STEPS],
                })
                .collect(),
            map: vec![MapFeature::new(
                7,
                MapFeatureKind::RoadEdge(RoadEdgeType::Boundary),
                vec![
                    MapPoint::default(),
                    MapPoint {
                        x: 1.0,
                        ..Default::default()
                    },
                ],
            )],
            signals: vec![vec![]; NUM_STEPS],
            sdc_index: Some(1),
            tracks_to_predict: vec![PredictionTarget {
                track_index: 0,
                difficulty: 0,
            }],
            objects_of_interest: vec![],
        }
    }

    fn err(s: &Scene) -> String {
        validate_scene(s, StepRule::Full, Path::new("f.json"), Some(3))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_scene_passes_and_each_defect_is_named() {
        validate_scene(&good(), StepRule::Full, Path::new("f"), None).unwrap();
        let mut s = good();
        s.tracks.clear();
        assert!(err(&s).contains("no agents"), "{}", err(&s));
        let mut s = good();
        s.tracks[1].states[5].x = f32::NAN;
        assert!(err(&s).contains("tracks[1].states[5]"), "{}", err(&s));
        let mut s = good();
        s.tracks[0].states[2].width = 0.0;
        assert!(err(&s).contains("tracks[0].states[2]"), "{}", err(&s));
        // An invalid state's size does not matter.
        s.tracks[0].states[2].valid = false;
        validate_scene(&s, StepRule::Full, Path::new("f"), None).unwrap();
        let mut s = good();
        s.map[0].points.truncate(1);
        assert!(
            err(&s).contains("map[0].points") && err(&s).contains("at least 2"),
            "{}",
            err(&s)
        );
        let mut s = good();
        s.map[0].points[1].y = f32::INFINITY;
        assert!(err(&s).contains("map[0].points[1]"), "{}", err(&s));
        let mut s = good();
        for t in &mut s.tracks {
            t.states.truncate(90);
        }
        s.signals.truncate(90);
        assert!(err(&s).contains("90 steps"), "{}", err(&s));
        validate_scene(&s, StepRule::Any, Path::new("f"), None).unwrap();
        let mut s = good();
        s.sdc_index = Some(2);
        assert!(err(&s).contains("sdc_index"), "{}", err(&s));
        let mut s = good();
        s.tracks_to_predict[0].track_index = 9;
        assert!(err(&s).contains("tracks_to_predict[0]"), "{}", err(&s));
        let mut s = good();
        s.tracks[1].id = 0;
        assert!(err(&s).contains("duplicate track id"), "{}", err(&s));
        let mut s = good();
        s.map.push(s.map[0].clone());
        assert!(err(&s).contains("duplicate map feature id"), "{}", err(&s));
        let mut s = good();
        s.current_step = 91;
        assert!(err(&s).contains("current_step"), "{}", err(&s));
        assert!(
            err(&s).starts_with("f.json, record 3, field current_step: "),
            "{}",
            err(&s)
        );
    }
}
