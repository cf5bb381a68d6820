//! Whether a [`Scene`] can be trusted: the checks every loaded scene passes before
//! training, simulation or metrics see it.
//!
//! Checked (each failure names the field):
//! - a non-empty id and at least one track ("no agents");
//! - every track has the same number of states: [`NUM_STEPS`] under
//!   [`StepRule::Full`], any positive number under [`StepRule::Any`] (one-step test
//!   fixtures); the current step lies inside the log;
//! - every number is finite and physically plausible ([`crate::limits`]): coordinates
//!   of states, map points and stop points within [`MAX_COORDINATE_M`], headings within
//!   [`MAX_ABS_HEADING`], velocity components within [`MAX_SPEED_MPS`], lane speed
//!   limits within 0..=[`MAX_SPEED_LIMIT_MPH`];
//! - every valid state has a positive length and width and a non-negative height, none
//!   above [`MAX_BOX_SIZE_M`];
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

use super::{MapFeatureKind, NUM_STEPS, ObjectState, Scene};
use crate::error::{DataError, Location};
use crate::limits::{
    MAX_ABS_HEADING, MAX_BOX_SIZE_M, MAX_COORDINATE_M, MAX_SPEED_LIMIT_MPH, MAX_SPEED_MPS,
    coordinate_ok, heading_ok,
};

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

/// Why `v` breaks a `|v| <= limit` rule.
fn beyond(what: &str, v: f32, limit: f32, unit: &str) -> String {
    if v.is_finite() {
        format!("{what} {v}{unit} lies beyond the +-{limit}{unit} limit")
    } else {
        format!("non-finite {what} {v}")
    }
}

fn point_ok(x: f32, y: f32, z: f32) -> bool {
    coordinate_ok(x) && coordinate_ok(y) && coordinate_ok(z)
}

/// The number rules of one state: `Err((field, message))` for the first broken one.
fn check_state(st: &ObjectState) -> Result<(), (&'static str, String)> {
    for (name, v) in [("x", st.x), ("y", st.y), ("z", st.z)] {
        if !coordinate_ok(v) {
            return Err((name, beyond("coordinate", v, MAX_COORDINATE_M, " m")));
        }
    }
    if !heading_ok(st.heading) {
        return Err((
            "heading",
            beyond("heading", st.heading, MAX_ABS_HEADING, ""),
        ));
    }
    for (name, v) in [("vx", st.vx), ("vy", st.vy)] {
        if !(v.is_finite() && v.abs() <= MAX_SPEED_MPS) {
            return Err((name, beyond("velocity", v, MAX_SPEED_MPS, " m/s")));
        }
    }
    for (name, v) in [
        ("length", st.length),
        ("width", st.width),
        ("height", st.height),
    ] {
        if !v.is_finite() {
            return Err((name, format!("non-finite box size {v}")));
        }
        if st.valid && v > MAX_BOX_SIZE_M {
            return Err((
                name,
                format!("box size {v} m exceeds the {MAX_BOX_SIZE_M} m limit"),
            ));
        }
    }
    if st.valid && (st.length <= 0.0 || st.width <= 0.0 || st.height < 0.0) {
        return Err((
            "length",
            format!(
                "box size {} x {} x {} m: length and width must be positive",
                st.length, st.width, st.height
            ),
        ));
    }
    Ok(())
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
            if let Err((name, msg)) = check_state(st) {
                return fail(format!("tracks[{i}].states[{s}].{name}"), msg);
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
        if let Some(j) = m.points.iter().position(|p| !point_ok(p.x, p.y, p.z)) {
            return fail(
                format!("map[{i}].points[{j}]"),
                format!(
                    "point {:?} is non-finite or lies beyond the +-{MAX_COORDINATE_M} m limit",
                    m.points[j]
                ),
            );
        }
        if let Some(v) = m.speed_limit_mph
            && !(v.is_finite() && (0.0..=MAX_SPEED_LIMIT_MPH).contains(&v))
        {
            return fail(
                format!("map[{i}].speed_limit_mph"),
                format!("speed limit {v} mph outside 0..={MAX_SPEED_LIMIT_MPH}"),
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
            if !point_ok(p.x, p.y, p.z) {
                return fail(
                    format!("signals[{t}][{j}].stop_point"),
                    format!(
                        "stop point {p:?} is non-finite or lies beyond the +-{MAX_COORDINATE_M} m limit"
                    ),
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
        // Absurd but finite numbers are refused too, naming the field.
        for (set, field) in [
            (
                (|st: &mut ObjectState| st.length = 1e9) as fn(&mut ObjectState),
                "tracks[1].states[4].length",
            ),
            (|st| st.x = 3e38, "tracks[1].states[4].x"),
            (|st| st.z = -2e6, "tracks[1].states[4].z"),
            (|st| st.vy = 1e4, "tracks[1].states[4].vy"),
            (|st| st.heading = 1e20, "tracks[1].states[4].heading"),
            (|st| st.height = 101.0, "tracks[1].states[4].height"),
        ] {
            let mut s = good();
            set(&mut s.tracks[1].states[4]);
            assert!(err(&s).contains(field), "{field}: {}", err(&s));
        }
        let mut s = good();
        s.map[0].points[0].x = -1.5e6;
        assert!(err(&s).contains("map[0].points[0]"), "{}", err(&s));
        let mut s = good();
        s.map[0].speed_limit_mph = Some(-5.0);
        assert!(err(&s).contains("map[0].speed_limit_mph"), "{}", err(&s));
        // The largest plausible values pass.
        let mut s = good();
        s.tracks[0].states[0].x = MAX_COORDINATE_M;
        s.tracks[0].states[0].length = MAX_BOX_SIZE_M;
        s.tracks[0].states[0].heading = 540.0;
        validate_scene(&s, StepRule::Full, Path::new("f"), None).unwrap();
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
