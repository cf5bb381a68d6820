//! Red-light regression scenes: vehicles that stop at a red light, run it, turn across
//! another lane's stop line, and wobble across the line, driven through the shipped
//! signalised GPUDrive scenes and synthetic signalised intersections.
//!
//! The official code cannot run here, so these scenes are checked two ways:
//! - against what the official rules imply, step by step: a violation needs a red
//!   (`STOP` or `ARROW_STOP`) signal at the step, a crossing of that signal's stop point
//!   (behind it on its fence at t-1, ahead at t), and the object's current lane at t
//!   being the signal's lane (the lane with the nearest segment under the official
//!   mirrored distance, over the zero-padded lane tensor, see
//!   [`super::features::traffic_light`]). Each vehicle is placed so that the current
//!   lane at its crossing step is fixed by the geometry (on a lane vertex, where only
//!   that lane is at distance 0; or just past the line, where the approach lane's
//!   padding segment is nearer than the signal lane's first segment);
//! - against [`Official`], a literal, unpruned transcription of the official
//!   computation, itself checked against the official per-step arrays of the shipped
//!   `sdc_go` case.

use super::features::traffic_light::TrafficLights;
use super::features::{MetricFeatures, ScenarioFeatures};
use super::{EventIndications, ScenarioRollouts};
use crate::scenario::{
    LaneSignal, LaneType, MapFeature, MapFeatureKind, ObjectState, ObjectType, PredictionTarget,
    Scene, SignalState, Track,
};

// ---------------------------------------------------------------------------------
// The official computation, literally.
// ---------------------------------------------------------------------------------

fn divide_no_nan(a: f32, b: f32) -> f32 {
    if b == 0.0 { 0.0 } else { a / b }
}

fn dot(a: [f32; 2], b: [f32; 2]) -> f32 {
    a[0] * b[0] + a[1] * b[1]
}

fn sub(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    [a[0] - b[0], a[1] - b[1]]
}

/// The official `compute_red_light_violation` for one object, written as plainly as
/// the official tensors: lanes (surface streets with two points or more, map order)
/// padded with invalid zero points to the longest, a segment valid where its start
/// point is, flat argmins with invalid segments at 1e10, one signal column per lane
/// id with state 0 and stop point (0, 0) where absent. The only liberty: the nearest
/// lane is searched only at steps where the other conditions of the conjunction hold.
struct Official {
    /// `[lanes][max_len]` of (x, y, valid).
    rows: Vec<Vec<([f32; 2], bool)>>,
    ids: Vec<i64>,
    /// Signal columns: (lane id, states per step, stop points per step).
    columns: Vec<(i64, Vec<i32>, Vec<[f32; 2]>)>,
    /// Fence segment per (column, step), where the column's lane exists.
    fences: Vec<Vec<Option<usize>>>,
}

impl Official {
    fn new(scene: &Scene) -> Self {
        let kept: Vec<&MapFeature> = scene
            .map
            .iter()
            .filter(|f| f.kind == MapFeatureKind::Lane(LaneType::SurfaceStreet))
            .filter(|f| f.points.len() >= 2)
            .collect();
        assert!(
            !kept.is_empty(),
            "the official code raises 'Missing lanes.'"
        );
        let max_len = kept.iter().map(|f| f.points.len()).max().unwrap();
        let rows: Vec<Vec<([f32; 2], bool)>> = kept
            .iter()
            .map(|f| {
                (0..max_len)
                    .map(|i| {
                        f.points
                            .get(i)
                            .map_or(([0.0, 0.0], false), |p| ([p.x, p.y], true))
                    })
                    .collect()
            })
            .collect();
        let ids: Vec<i64> = kept.iter().map(|f| f.id).collect();
        let n = scene.num_steps();
        let mut columns: Vec<(i64, Vec<i32>, Vec<[f32; 2]>)> = Vec::new();
        for (t, at) in scene.signals.iter().enumerate() {
            for s in at {
                let k = match columns.iter().position(|c| c.0 == s.lane) {
                    Some(k) => k,
                    None => {
                        columns.push((s.lane, vec![0; n], vec![[0.0, 0.0]; n]));
                        columns.len() - 1
                    }
                };
                columns[k].1[t] = s.state.proto_value();
                columns[k].2[t] = [s.stop_point.x, s.stop_point.y];
            }
        }
        let mut this = Self {
            rows,
            ids,
            columns,
            fences: Vec::new(),
        };
        this.fences = this
            .columns
            .iter()
            .map(|(lane, _, stops)| {
                let li = this.ids.iter().position(|id| id == lane);
                stops
                    .iter()
                    .map(|&p| li.map(|li| this.argmin(p, li..li + 1).1))
                    .collect()
            })
            .collect();
        this
    }

    fn segment(&self, lane: usize, i: usize) -> ([f32; 2], [f32; 2]) {
        (self.rows[lane][i].0, self.rows[lane][i + 1].0)
    }

    /// Flat argmin over (lane, segment) of the lanes in `lanes`: (lane, segment).
    fn argmin(&self, p: [f32; 2], lanes: std::ops::Range<usize>) -> (usize, usize) {
        let mut best = (f32::INFINITY, (0, 0));
        for li in lanes {
            for i in 0..self.rows[li].len() - 1 {
                let d = if self.rows[li][i].1 {
                    let (s, e) = self.segment(li, i);
                    let (sp, se) = (sub(p, s), sub(e, s));
                    let t = divide_no_nan(dot(sp, se), dot(se, se)).clamp(0.0, 1.0);
                    let v = [sp[0] + se[0] * t, sp[1] + se[1] * t];
                    (v[0] * v[0] + v[1] * v[1]).sqrt()
                } else {
                    1e10
                };
                if d < best.0 {
                    best = (d, (li, i));
                }
            }
        }
        best.1
    }

    fn current_lane(&self, p: [f32; 2]) -> i64 {
        self.ids[self.argmin(p, 0..self.rows.len()).0]
    }

    /// Relative coordinates of `p` and of the stop point along column `k`'s fence at
    /// step `t`.
    fn rel_t(&self, k: usize, t: usize, p: [f32; 2]) -> (f32, f32) {
        let li = self
            .ids
            .iter()
            .position(|&id| id == self.columns[k].0)
            .unwrap();
        let (s, e) = self.segment(li, self.fences[k][t].unwrap());
        let se = sub(e, s);
        let len2 = dot(se, se);
        (
            divide_no_nan(dot(sub(p, s), se), len2),
            divide_no_nan(dot(sub(self.columns[k].2[t], s), se), len2),
        )
    }

    fn violations(&self, xy: &[[f32; 2]], valid: &[bool]) -> Vec<bool> {
        let mut out = vec![false; xy.len()];
        for t in 1..xy.len() {
            for (k, (lane, states, _)) in self.columns.iter().enumerate() {
                let is_stop = states[t] == 1 || states[t] == 4;
                let lane_valid = self.fences[k][t].is_some();
                if !(valid[t] && is_stop && lane_valid) {
                    continue;
                }
                let (before, stop_before) = self.rel_t(k, t - 1, xy[t - 1]);
                let (after, stop_after) = self.rel_t(k, t, xy[t]);
                let crossed = before < stop_before && after > stop_after;
                if crossed && self.current_lane(xy[t]) == *lane {
                    out[t] = true;
                }
            }
        }
        out
    }
}

#[test]
fn the_literal_official_computation_reproduces_the_official_sdc_go_arrays() {
    let scene = super::golden_tests::golden_scene_raw();
    let g = super::golden_tests::golden("sdc_go");
    let want = &g["per_object"]["sim_traffic_light_violation_per_step"];
    let official = Official::new(&scene);
    let rollouts = super::golden_tests::golden_rollouts("sdc_go", &scene);
    let c = scene.current_step;
    let mut flagged = 0;
    for (r, js) in rollouts.joint_scenes.iter().enumerate() {
        for (o, id) in [1675i64, 1676, 2320, 2406].into_iter().enumerate() {
            let ti = scene.tracks.iter().position(|t| t.id == id).unwrap();
            let tr = js.trajectories.iter().find(|t| t.object_id == id).unwrap();
            let hist = &scene.tracks[ti].states[..=c];
            let xy: Vec<[f32; 2]> = hist
                .iter()
                .map(|s| [s.x, s.y])
                .chain(tr.x.iter().zip(&tr.y).map(|(&x, &y)| [x, y]))
                .collect();
            let valid: Vec<bool> = hist
                .iter()
                .map(|s| s.valid)
                .chain(std::iter::repeat_n(true, tr.x.len()))
                .collect();
            let got = official.violations(&xy, &valid);
            let want: Vec<bool> = want[r][o]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_bool().unwrap())
                .collect();
            assert_eq!(got[c + 1..], want[..], "rollout {r}, object {id}");
            flagged += want.iter().filter(|&&v| v).count();
        }
    }
    assert_eq!(flagged, 14);
}

// ---------------------------------------------------------------------------------
// Scenes and vehicles.
// ---------------------------------------------------------------------------------

fn lane(scene: &Scene, id: i64) -> &MapFeature {
    scene.map.iter().find(|f| f.id == id).unwrap()
}

fn xy(f: &MapFeature) -> Vec<[f32; 2]> {
    f.points.iter().map(|p| [p.x, p.y]).collect()
}

fn norm(a: [f32; 2]) -> f32 {
    dot(a, a).sqrt()
}

fn is_surface_lane(f: &MapFeature) -> bool {
    f.kind == MapFeatureKind::Lane(LaneType::SurfaceStreet) && f.points.len() >= 2
}

fn longest_lane_len(scene: &Scene) -> usize {
    scene
        .map
        .iter()
        .filter(|f| is_surface_lane(f))
        .map(|f| f.points.len())
        .max()
        .unwrap()
}

/// The surface-street lane that ends where lane `id` starts and heads the same way
/// (the approach lane of a signal lane), if any.
fn approach_lane(scene: &Scene, id: i64) -> Option<i64> {
    let c = xy(lane(scene, id));
    let dir = sub(c[1], c[0]);
    scene
        .map
        .iter()
        .filter(|f| is_surface_lane(f) && f.id != id)
        .filter(|f| !scene.signals.iter().flatten().any(|s| s.lane == f.id))
        .find(|f| {
            let a = xy(f);
            let n = a.len();
            let last = sub(a[n - 1], a[n - 2]);
            norm(sub(a[n - 1], c[0])) < 0.05 && dot(last, dir) > 0.9 * norm(last) * norm(dir)
        })
        .map(|f| f.id)
}

/// A path into signal lane `id`: its approach lane (or, without one, 30 m of
/// straight line behind its start), then the lane.
fn path_into(scene: &Scene, id: i64) -> Vec<[f32; 2]> {
    let c = xy(lane(scene, id));
    let mut path = match approach_lane(scene, id) {
        Some(a) => xy(lane(scene, a)),
        None => {
            let u = sub(c[1], c[0]);
            let u = [u[0] / norm(u), u[1] / norm(u)];
            (1..=30)
                .rev()
                .map(|k| [c[0][0] - u[0] * k as f32, c[0][1] - u[1] * k as f32])
                .collect()
        }
    };
    path.pop();
    path.extend(c);
    path
}

/// Arc length of every vertex of `path`.
fn arc_lengths(path: &[[f32; 2]]) -> Vec<f32> {
    let mut s = vec![0.0f32];
    for w in path.windows(2) {
        let last = *s.last().unwrap();
        s.push(last + norm(sub(w[1], w[0])));
    }
    s
}

/// The point at arc length `s` along `path` (clamped to its ends; exactly a vertex
/// where `s` is that vertex's arc length).
fn at(path: &[[f32; 2]], arcs: &[f32], s: f32) -> [f32; 2] {
    if s <= 0.0 {
        return path[0];
    }
    for i in 1..path.len() {
        if s == arcs[i] {
            return path[i];
        }
        if s < arcs[i] {
            let f = (s - arcs[i - 1]) / (arcs[i] - arcs[i - 1]);
            let (a, b) = (path[i - 1], path[i]);
            return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f];
        }
    }
    *path.last().unwrap()
}

/// Adds a car with logged positions `xy` (valid at every step) to `scene` as a track
/// to predict; returns its object id.
fn add_car(scene: &mut Scene, xy: &[[f32; 2]]) -> i64 {
    let id = scene.tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1;
    let n = xy.len();
    let states = (0..n)
        .map(|t| {
            let d = if t + 1 < n {
                sub(xy[t + 1], xy[t])
            } else {
                sub(xy[t], xy[t - 1])
            };
            ObjectState {
                x: xy[t][0],
                y: xy[t][1],
                length: 4.5,
                width: 2.0,
                height: 1.5,
                heading: d[1].atan2(d[0]),
                valid: true,
                ..Default::default()
            }
        })
        .collect();
    scene.tracks.push(Track {
        id,
        object_type: ObjectType::Vehicle,
        states,
    });
    scene.tracks_to_predict.push(PredictionTarget {
        track_index: scene.tracks.len() - 1,
        difficulty: 0,
    });
    id
}

/// Sets signal `lane`'s state at every step where it has one.
fn set_state(scene: &mut Scene, lane: i64, state: SignalState) {
    for s in scene.signals.iter_mut().flatten() {
        if s.lane == lane {
            s.state = state;
        }
    }
}

/// The object's violation steps in `features` (scene steps).
fn violation_steps(features: &MetricFeatures, id: i64, current: usize) -> Vec<usize> {
    let o = features.object_id.iter().position(|&i| i == id).unwrap();
    features
        .traffic_light_violation_per_step
        .series(0, o)
        .iter()
        .enumerate()
        .filter_map(|(t, &v)| v.then_some(t + current + 1))
        .collect()
}

/// Scores the scene's log as its one rollout and returns every added car's violation
/// steps, after checking each car against [`Official`] and its "ever" flag.
fn violations_of(scene: &Scene, cars: &[i64]) -> Vec<Vec<usize>> {
    let features = ScenarioFeatures::compute(scene, &ScenarioRollouts::logged(scene)).unwrap();
    let flags = EventIndications::of(&features, true);
    let official = Official::new(scene);
    let c = scene.current_step;
    cars.iter()
        .map(|&id| {
            let steps = violation_steps(&features.sim, id, c);
            let track = scene.tracks.iter().find(|t| t.id == id).unwrap();
            let xy: Vec<[f32; 2]> = track.states.iter().map(|s| [s.x, s.y]).collect();
            let valid: Vec<bool> = track.states.iter().map(|s| s.valid).collect();
            let want: Vec<usize> = official
                .violations(&xy, &valid)
                .iter()
                .enumerate()
                .filter_map(|(t, &v)| (v && t > c).then_some(t))
                .collect();
            assert_eq!(
                steps, want,
                "car {id}: spacer against the literal official code"
            );
            let o = features
                .sim
                .object_id
                .iter()
                .position(|&i| i == id)
                .unwrap();
            assert_eq!(
                flags.traffic_light_violation[o],
                !steps.is_empty(),
                "car {id}"
            );
            steps
        })
        .collect()
}

/// The vehicles of the regression, along the path into red signal lane `red` (whose
/// first vertex is the stop point), crossing the line at step `t_cross`.
struct Drive {
    path: Vec<[f32; 2]>,
    arcs: Vec<f32>,
    /// Arc length of the stop point.
    s_stop: f32,
    /// Arc length of the first vertex of the signal lane at least 0.8 m past the stop
    /// point.
    s_vertex: f32,
}

impl Drive {
    fn new(scene: &Scene, red: i64) -> Self {
        let path = path_into(scene, red);
        let arcs = arc_lengths(&path);
        let n_red = lane(scene, red).points.len();
        let first = path.len() - n_red;
        let s_stop = arcs[first];
        let s_vertex = *arcs[first..].iter().find(|&&s| s - s_stop >= 0.8).unwrap();
        Self {
            path,
            arcs,
            s_stop,
            s_vertex,
        }
    }

    fn positions(&self, s: impl Fn(usize) -> f32) -> Vec<[f32; 2]> {
        (0..crate::scenario::NUM_STEPS)
            .map(|t| at(&self.path, &self.arcs, s(t)))
            .collect()
    }

    /// Decelerates from 8 m/s to a stop 2 m before the line, and waits there.
    fn stops(&self) -> Vec<[f32; 2]> {
        let stop = self.s_stop - 2.0;
        // 8 m/s braking at 2 m/s² takes 4 s (40 steps) and 16 m.
        self.positions(|t| {
            let tau = (t as f32 * 0.1).min(4.0);
            stop - 16.0 + 8.0 * tau - tau * tau
        })
    }

    /// Crosses the line at constant speed, at step `t_cross` on the signal lane's
    /// vertex `s_vertex`, 0.4 m before the line one step earlier.
    fn runs(&self, t_cross: usize) -> Vec<[f32; 2]> {
        let v = self.s_vertex - self.s_stop + 0.4;
        self.positions(|t| self.s_vertex + (t as f32 - t_cross as f32) * v)
    }

    /// Waits 0.4 m behind the line and moves to `ahead` m past it (or to the vertex
    /// when `None`) at each step of `forward`, back at the next step.
    fn wobbles(&self, forward: &[usize], ahead: Option<f32>) -> Vec<[f32; 2]> {
        let s_ahead = ahead.map_or(self.s_vertex, |a| self.s_stop + a);
        self.positions(|t| {
            if forward.contains(&t) {
                s_ahead
            } else {
                self.s_stop - 0.4
            }
        })
    }
}

/// A synthetic signalised 4-way intersection with a signal lane red at every step,
/// whose approach lane is shorter than the longest lane, and a second signal lane
/// from the same approach lane: (scene, red lane, its sibling).
fn synthetic_intersection() -> (Scene, i64, i64) {
    use crate::scenario::synthetic::{Layout, LayoutMix, SyntheticConfig, generate};
    let config = SyntheticConfig {
        layouts: LayoutMix::only(Layout::FourWay),
        signal_probability: 1.0,
        ..Default::default()
    };
    for seed in 0..64 {
        let scene = generate(&config, seed);
        let longest = longest_lane_len(&scene);
        let always_red = |lane: i64| {
            scene.signals.iter().all(|s| {
                s.iter()
                    .any(|l| l.lane == lane && l.state == SignalState::Stop)
            })
        };
        let mut lanes: Vec<i64> = scene.signals[0].iter().map(|s| s.lane).collect();
        lanes.sort_unstable();
        for &red in &lanes {
            let Some(a) = approach_lane(&scene, red) else {
                continue;
            };
            if !always_red(red) || lane(&scene, a).points.len() >= longest {
                continue;
            }
            let sibling = lanes.iter().copied().find(|&l| {
                l != red
                    && approach_lane(&scene, l) == Some(a)
                    && lane(&scene, l).points[0] == lane(&scene, red).points[0]
            });
            if let Some(sibling) = sibling {
                return (scene, red, sibling);
            }
        }
    }
    panic!("no signalised synthetic intersection in 64 seeds");
}

/// No violation step.
fn none() -> Vec<usize> {
    Vec::new()
}

fn gpudrive(name: &str) -> Scene {
    use crate::scenario::load::{BadScenePolicy, load_scenes};
    let path = crate::paths::shared_data(format!("gpudrive/{name}"));
    load_scenes(&path, BadScenePolicy::Fail).unwrap().remove(0)
}

/// A shipped GPUDrive scene with signals (lane 176 green, caution from step 16, red
/// from 54; lanes 181 and 182 red arrows throughout, from one stop point).
const TL_SCENE: &str = "tl_tfrecord-00000-of-00150_2af8a17d6cee3f8.json";

#[test]
fn a_car_that_stops_at_red_never_violates() {
    let (mut scene, red, _) = synthetic_intersection();
    let path = Drive::new(&scene, red).stops();
    let car = add_car(&mut scene, &path);
    let mut real = gpudrive(TL_SCENE);
    let path = Drive::new(&real, 176).stops();
    let real_car = add_car(&mut real, &path);
    let path = Drive::new(&real, 182).stops();
    let arrow_car = add_car(&mut real, &path);
    assert_eq!(violations_of(&scene, &[car]), [none()]);
    assert_eq!(
        violations_of(&real, &[real_car, arrow_car]),
        [none(), none()]
    );
}

#[test]
fn a_car_that_runs_a_red_light_violates_once_at_the_crossing_step() {
    // On the signal lane's vertex at the crossing step, its current lane is the signal
    // lane (distance 0), and the line was behind it one step earlier: a violation at
    // that step, and only there.
    let (mut scene, red, _) = synthetic_intersection();
    let drive = Drive::new(&scene, red);
    let car = add_car(&mut scene, &drive.runs(30));
    assert_eq!(violations_of(&scene, &[car]), [vec![30]]);

    // The real scene: red from step 54 (counts), caution and green before (do not);
    // a red arrow counts as red.
    let mut real = gpudrive(TL_SCENE);
    let drive = Drive::new(&real, 176);
    let on_red = add_car(&mut real, &drive.runs(60));
    let on_caution = add_car(&mut real, &drive.runs(30));
    let on_green = add_car(&mut real, &drive.runs(12));
    let path = Drive::new(&real, 182).runs(40);
    let on_arrow = add_car(&mut real, &path);
    assert_eq!(
        violations_of(&real, &[on_red, on_caution, on_green, on_arrow]),
        [vec![60], none(), none(), vec![40]]
    );
    // Flashing red does not count.
    set_state(&mut real, 176, SignalState::FlashingStop);
    assert_eq!(violations_of(&real, &[on_red]), [none()]);
}

#[test]
fn a_car_that_turns_across_another_lanes_red_stop_line_does_not_violate() {
    // Two signal lanes leave one approach lane from one stop point. The car takes the
    // sibling lane; it crosses the red lane's stop line (the fences coincide at the
    // stop point) but its current lane at that step is the sibling: no violation while
    // the sibling is green, one when the sibling is red too.
    let (mut scene, red, sibling) = synthetic_intersection();
    set_state(&mut scene, sibling, SignalState::ArrowGo);
    let drive = Drive::new(&scene, sibling);
    let car = add_car(&mut scene, &drive.runs(30));
    let lights = TrafficLights::from_scene(&scene, scene.num_steps());
    let track = scene.tracks.last().unwrap();
    let (x, y): (Vec<f32>, Vec<f32>) = track.states.iter().map(|s| (s.x, s.y)).unzip();
    let crossings = lights.red_crossings(&x, &y, &vec![true; x.len()]);
    assert!(
        crossings.contains(&(30, red, false)),
        "the car crosses the red lane's line, uncounted: {crossings:?}"
    );
    assert_eq!(violations_of(&scene, &[car]), [none()]);
    set_state(&mut scene, sibling, SignalState::ArrowStop);
    assert_eq!(violations_of(&scene, &[car]), [vec![30]]);

    // The real scene: lanes 181 and 182 share a stop point (both red arrows); lane 182
    // turned green, a car on it crosses 181's line without a violation.
    let mut real = gpudrive(TL_SCENE);
    assert_eq!(lane(&real, 181).points[0], lane(&real, 182).points[0]);
    set_state(&mut real, 182, SignalState::ArrowGo);
    let path = Drive::new(&real, 182).runs(40);
    let car = add_car(&mut real, &path);
    assert_eq!(violations_of(&real, &[car]), [none()]);
}

#[test]
fn a_car_that_wobbles_across_the_line_violates_at_each_forward_crossing() {
    // Each move from behind the line onto the signal lane's vertex is a crossing on
    // the signal lane (a violation); each move back is not a crossing.
    let (mut scene, red, _) = synthetic_intersection();
    let drive = Drive::new(&scene, red);
    let car = add_car(&mut scene, &drive.wobbles(&[20, 22, 40], None));
    // Only 0.3 m past the line, the approach lane's padding segment (distance at most
    // 0.3-0.6 m, from its end point at the stop point) is at least as near as the signal
    // lane's first segment (its mirrored distance 0.6 m), and the approach lane comes
    // first in the map: the current lane is still the approach lane, as for the
    // uncounted crossings of the shipped sdc_go case.
    let creeper = add_car(&mut scene, &drive.wobbles(&[20, 22, 40], Some(0.3)));
    let approach = approach_lane(&scene, red).unwrap();
    let first = |id: i64| scene.map.iter().position(|f| f.id == id).unwrap();
    assert!(first(approach) < first(red));
    assert_eq!(
        violations_of(&scene, &[car, creeper]),
        [vec![20, 22, 40], none()]
    );
    let lights = TrafficLights::from_scene(&scene, scene.num_steps());
    let p = drive.wobbles(&[20], Some(0.3))[20];
    assert_eq!(lights.current_lane(p), Some(approach));

    let mut real = gpudrive(TL_SCENE);
    let drive = Drive::new(&real, 176);
    let car = add_car(&mut real, &drive.wobbles(&[56, 58, 70], None));
    assert_eq!(violations_of(&real, &[car]), [vec![56, 58, 70]]);
}

#[test]
fn logged_tracks_of_signalised_scenes_score_as_the_literal_official_code() {
    // Every evaluated object of the shipped signalised scenes and of synthetic
    // signalised intersections, logged: spacer's pruned search against the literal one.
    let mut scenes = vec![
        gpudrive(TL_SCENE),
        gpudrive("tl_tfrecord-00000-of-00150_2a173b334be3d32c.json"),
        synthetic_intersection().0,
    ];
    for scene in &mut scenes {
        // Every object valid at the current step is evaluated.
        let c = scene.current_step;
        scene.tracks_to_predict = (0..scene.tracks.len())
            .filter(|&i| scene.tracks[i].valid_at(c))
            .map(|track_index| PredictionTarget {
                track_index,
                difficulty: 0,
            })
            .collect();
        let ids: Vec<i64> = scene
            .tracks_to_predict
            .iter()
            .map(|t| scene.tracks[t.track_index].id)
            .collect();
        let steps = violations_of(scene, &ids);
        eprintln!(
            "{}: {} objects, {} violation steps",
            scene.id,
            ids.len(),
            steps.iter().map(Vec::len).sum::<usize>()
        );
    }
}

#[test]
fn signals_absent_at_a_step_have_no_state() {
    // A signal missing from a step is UNKNOWN there (no violation), and its stop point
    // is (0, 0) there, which moves the fence of the next step's "behind" test.
    let (mut scene, red, _) = synthetic_intersection();
    let drive = Drive::new(&scene, red);
    let car = add_car(&mut scene, &drive.runs(30));
    let keep = |s: &LaneSignal| s.lane != red;
    let mut absent_at_crossing = scene.clone();
    absent_at_crossing.signals[30].retain(keep);
    assert_eq!(violations_of(&absent_at_crossing, &[car]), [none()]);
    // Absent the step before: whatever the fence of (0, 0) makes of it, as officially.
    let mut absent_before = scene.clone();
    absent_before.signals[29].retain(keep);
    violations_of(&absent_before, &[car]);
}

/// The shipped signalised scene with every signal red (arrow red for arrows) at every
/// step, its traffic-light context and the literal official computation.
fn all_red() -> &'static (Vec<[f32; 2]>, TrafficLights, Official) {
    static CELL: std::sync::OnceLock<(Vec<[f32; 2]>, TrafficLights, Official)> =
        std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        let mut scene = gpudrive(TL_SCENE);
        for s in scene.signals.iter_mut().flatten() {
            s.state = match s.state {
                SignalState::ArrowGo | SignalState::ArrowCaution => SignalState::ArrowStop,
                _ => SignalState::Stop,
            };
        }
        let stops: Vec<[f32; 2]> = scene
            .signals
            .iter()
            .flatten()
            .map(|s| [s.stop_point.x, s.stop_point.y])
            .collect();
        let lights = TrafficLights::from_scene(&scene, scene.num_steps());
        let official = Official::new(&scene);
        (stops, lights, official)
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Random walks around the stop lines of an all-red intersection, with gaps of
    /// invalid steps: spacer's pruned, cached search flags exactly the steps the literal
    /// official computation flags.
    #[test]
    fn random_walks_across_red_stop_lines_score_as_the_literal_official_code(
        start in 0usize..1000,
        offset in (-6.0f32..6.0, -6.0f32..6.0),
        moves in proptest::collection::vec((-1.5f32..1.5, -1.5f32..1.5, 0u8..20), 90),
    ) {
        let (stops, lights, official) = all_red();
        let s = stops[start % stops.len()];
        let mut p = [s[0] + offset.0, s[1] + offset.1];
        let mut xy = vec![p];
        let mut valid = vec![true];
        for (dx, dy, v) in moves {
            p = [p[0] + dx, p[1] + dy];
            xy.push(p);
            valid.push(v != 0);
        }
        let (x, y): (Vec<f32>, Vec<f32>) = xy.iter().map(|q| (q[0], q[1])).unzip();
        let got = lights.violations(&x, &y, &valid);
        proptest::prop_assert_eq!(got, official.violations(&xy, &valid));
    }
}

#[test]
fn a_stop_point_past_a_lanes_end_is_fenced_by_the_padding_segment() {
    // Lane 1 runs from (100, 0) to (110, 0); lane 2, longer and far away, makes lane 1
    // a padded lane. The stop point (112, 0) is nearest lane 1's padding segment (from
    // (110, 0) towards the origin), so the fence points along -x: officially a car
    // moving from 113 to 111 crosses it (and lane 1 is its current lane), one moving
    // from 111 to 113 does not.
    use crate::scenario::{MapPoint, SceneSource};
    let pt = |x: f32, y: f32| MapPoint { x, y, z: 0.0 };
    let lane1 = MapFeature::new(
        1,
        MapFeatureKind::Lane(LaneType::SurfaceStreet),
        vec![pt(100.0, 0.0), pt(105.0, 0.0), pt(110.0, 0.0)],
    );
    let lane2 = MapFeature::new(
        2,
        MapFeatureKind::Lane(LaneType::SurfaceStreet),
        (0..10).map(|i| pt(i as f32, 500.0)).collect(),
    );
    let signal = LaneSignal {
        lane: 1,
        state: SignalState::Stop,
        stop_point: pt(112.0, 0.0),
    };
    let scene = Scene {
        id: "padding-fence".into(),
        source: SceneSource::Synthetic,
        current_step: 0,
        tracks: vec![],
        map: vec![lane1, lane2],
        signals: vec![vec![signal]; 3],
        sdc_index: None,
        tracks_to_predict: vec![],
        objects_of_interest: vec![],
    };
    let lights = TrafficLights::from_scene(&scene, 3);
    let official = Official::new(&scene);
    let valid = [true; 3];
    for (xs, want) in [
        ([113.0, 111.0, 111.0], [false, true, false]),
        ([111.0, 113.0, 113.0], [false, false, false]),
    ] {
        let xy: Vec<[f32; 2]> = xs.iter().map(|&x| [x, 0.0]).collect();
        assert_eq!(lights.violations(&xs, &[0.0; 3], &valid), want, "{xs:?}");
        assert_eq!(official.violations(&xy, &valid), want, "{xs:?}");
    }
}
