//! Red-light violations, as the official `traffic_light_features` (2025) defines them.
//!
//! An object violates a red light at step t when all of these hold:
//! - it is valid at t;
//! - its current lane (the surface-street lane whose segment is nearest to its centre)
//!   carries a signal at t whose state is `STOP` or `ARROW_STOP` (flashing red does not
//!   count);
//! - it crossed the signal's stop point between t-1 and t: on the lane segment nearest
//!   to the stop point (the "fence" of that step), its projection was behind the stop
//!   point's at t-1 and ahead of it at t.
//!
//! Two details follow the official code exactly. The nearest-segment search measures
//! `|p - s + t (e - s)|`, with `t` the projection parameter of p onto the segment s-e
//! clipped to [0, 1] (a sign differs from the usual point-segment distance: it is the
//! distance to the segment mirrored through its start point); the results match the
//! official ones only with this expression. A signal absent at a step has state
//! `UNKNOWN` and stop point (0, 0) at that step, and the fence of step t-1 is the one
//! of the stop point at t-1.
//!
//! Only surface-street lanes (`LaneCenter.TYPE_SURFACE_STREET`) with at least two
//! points take part. A scene without such lanes or without signals has no violations
//! (the official code raises an error instead; see the module docs of
//! [`crate::metrics`]).

use std::collections::HashMap;

use crate::scenario::{LaneType, MapFeatureKind, Scene};

/// Whether a WOMD `TrafficSignalLaneState.State` value means "stop" for the metric.
pub fn is_stop_state(state: i32) -> bool {
    // LANE_STATE_ARROW_STOP = 1, LANE_STATE_STOP = 4.
    state == 1 || state == 4
}

#[derive(Clone, Debug)]
struct Lane {
    id: i64,
    points: Vec<[f32; 2]>,
    /// Bounding box of every point the mirrored search can reach (each segment's start
    /// and its mirrored end, `2s - e`).
    lo: [f32; 2],
    hi: [f32; 2],
}

impl Lane {
    fn new(id: i64, points: Vec<[f32; 2]>) -> Self {
        let mut lo = [f32::INFINITY; 2];
        let mut hi = [f32::NEG_INFINITY; 2];
        for w in points.windows(2) {
            let (s, e) = (w[0], w[1]);
            for p in [s, [2.0 * s[0] - e[0], 2.0 * s[1] - e[1]]] {
                for k in 0..2 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
        }
        Self { id, points, lo, hi }
    }

    /// Its nearest mirrored-segment distance to `p`.
    fn distance(&self, p: [f32; 2]) -> f32 {
        self.points
            .windows(2)
            .map(|w| mirrored_distance(p, w[0], w[1]))
            .fold(f32::INFINITY, |a, d| if d < a { d } else { a })
    }

    /// A lower bound of [`Lane::distance`] (with a margin for `f32` rounding).
    fn bound(&self, p: [f32; 2]) -> f32 {
        let gx = (self.lo[0] - p[0]).max(p[0] - self.hi[0]).max(0.0);
        let gy = (self.lo[1] - p[1]).max(p[1] - self.hi[1]).max(0.0);
        (gx * gx + gy * gy).sqrt() * (1.0 - 1e-5) - 1e-3
    }
}

/// One signal column of the official tensors: a lane id with its state and stop point
/// at every step.
#[derive(Clone, Debug)]
struct SignalTrack {
    /// Index into `lanes` of the controlled lane, when it is a surface-street lane.
    lane: Option<usize>,
    /// State value per step (0 when absent).
    states: Vec<i32>,
    /// Stop point per step ((0, 0) when absent).
    stops: Vec<[f32; 2]>,
}

/// The traffic-light context of a scene: lanes, signals and the fences.
#[derive(Clone, Debug)]
pub struct TrafficLights {
    lanes: Vec<Lane>,
    signals: Vec<SignalTrack>,
    /// Fence segment (index into the lane's segments) per (signal, step), computed for
    /// every step where it can matter.
    fences: Vec<Vec<Option<usize>>>,
}

/// `|p - s + t (e - s)|` of the official nearest-lane search.
fn mirrored_distance(p: [f32; 2], s: [f32; 2], e: [f32; 2]) -> f32 {
    let sp = [p[0] - s[0], p[1] - s[1]];
    let se = [e[0] - s[0], e[1] - s[1]];
    let t = super::map::divide_no_nan(sp[0] * se[0] + sp[1] * se[1], se[0] * se[0] + se[1] * se[1]);
    let tc = t.clamp(0.0, 1.0);
    let d = [sp[0] + se[0] * tc, sp[1] + se[1] * tc];
    (d[0] * d[0] + d[1] * d[1]).sqrt()
}

/// Index of the nearest segment of one lane (first on ties).
fn nearest_segment(lane: &Lane, p: [f32; 2]) -> usize {
    let mut best = f32::INFINITY;
    let mut arg = 0;
    for (i, w) in lane.points.windows(2).enumerate() {
        let d = mirrored_distance(p, w[0], w[1]);
        if d < best {
            best = d;
            arg = i;
        }
    }
    arg
}

impl TrafficLights {
    /// The traffic-light context of `scene` over `n_steps` steps.
    pub fn from_scene(scene: &Scene, n_steps: usize) -> Self {
        let lanes: Vec<Lane> = scene
            .map
            .iter()
            .filter(|f| f.kind == MapFeatureKind::Lane(LaneType::SurfaceStreet))
            .filter(|f| f.points.len() >= 2)
            .map(|f| Lane::new(f.id, f.points.iter().map(|p| [p.x, p.y]).collect()))
            .collect();
        // One column per lane id that ever has a signal, in order of appearance.
        let mut column: HashMap<i64, usize> = HashMap::new();
        let mut signals: Vec<SignalTrack> = Vec::new();
        for (t, at) in scene.signals.iter().enumerate().take(n_steps) {
            for s in at {
                let k = *column.entry(s.lane).or_insert_with(|| {
                    signals.push(SignalTrack {
                        lane: lanes.iter().position(|l| l.id == s.lane),
                        states: vec![0; n_steps],
                        stops: vec![[0.0, 0.0]; n_steps],
                    });
                    signals.len() - 1
                });
                signals[k].states[t] = s.state.proto_value();
                signals[k].stops[t] = [s.stop_point.x, s.stop_point.y];
            }
        }
        // Fences at stop steps and the steps before them.
        let mut cache: HashMap<(usize, u32, u32), usize> = HashMap::new();
        let fences = signals
            .iter()
            .map(|sig| {
                let mut f = vec![None; n_steps];
                let Some(li) = sig.lane else {
                    return f;
                };
                for t in 1..n_steps {
                    if !is_stop_state(sig.states[t]) {
                        continue;
                    }
                    for u in [t - 1, t] {
                        let p = sig.stops[u];
                        let key = (li, p[0].to_bits(), p[1].to_bits());
                        let seg = *cache
                            .entry(key)
                            .or_insert_with(|| nearest_segment(&lanes[li], p));
                        f[u] = Some(seg);
                    }
                }
                f
            })
            .collect();
        Self {
            lanes,
            signals,
            fences,
        }
    }

    /// True when no signal can ever be violated (no stop state on a known lane).
    pub fn is_inert(&self) -> bool {
        self.fences.iter().all(|f| f.iter().all(Option::is_none))
    }

    /// Whether lane `li` is the lane nearest to `p` over all surface-street lanes (the
    /// first of equally near ones, as `argmin` picks). Lanes whose bounding box is
    /// farther than lane `li` cannot be nearer and are skipped.
    fn is_current_lane(&self, li: usize, p: [f32; 2]) -> bool {
        let own = self.lanes[li].distance(p);
        self.lanes.iter().enumerate().all(|(k, lane)| {
            if k == li || lane.bound(p) > own {
                return true;
            }
            let d = lane.distance(p);
            if k < li { d > own } else { d >= own }
        })
    }

    /// The position of `p` along signal `k`'s fence at step `t`, and the stop point's.
    fn along_fence(&self, k: usize, t: usize, p: [f32; 2]) -> Option<(f32, f32)> {
        let sig = &self.signals[k];
        let seg = self.fences[k][t]?;
        let lane = &self.lanes[sig.lane?];
        let (s, e) = (lane.points[seg], lane.points[seg + 1]);
        let se = [e[0] - s[0], e[1] - s[1]];
        let len2 = se[0] * se[0] + se[1] * se[1];
        let stop = sig.stops[t];
        let ss = [stop[0] - s[0], stop[1] - s[1]];
        let stop_t = super::map::divide_no_nan(ss[0] * se[0] + ss[1] * se[1], len2);
        let sp = [p[0] - s[0], p[1] - s[1]];
        let obj_t = super::map::divide_no_nan(sp[0] * se[0] + sp[1] * se[1], len2);
        Some((obj_t, stop_t))
    }

    /// Violation flags of one object over all steps.
    ///
    /// # Shapes
    /// `x`, `y`, `valid`: `[n_steps]` (the whole scene, history included). Returns
    /// `[n_steps]`; step 0 is never a violation.
    pub fn violations(&self, x: &[f32], y: &[f32], valid: &[bool]) -> Vec<bool> {
        let n = x.len();
        let mut out = vec![false; n];
        for t in 1..n {
            if !valid[t] {
                continue;
            }
            for (k, sig) in self.signals.iter().enumerate() {
                let Some(li) = sig.lane else { continue };
                if t >= sig.states.len() || !is_stop_state(sig.states[t]) {
                    continue;
                }
                let (Some((before, stop_before)), Some((after, stop_after))) = (
                    self.along_fence(k, t - 1, [x[t - 1], y[t - 1]]),
                    self.along_fence(k, t, [x[t], y[t]]),
                ) else {
                    continue;
                };
                if !(before < stop_before && after > stop_after) {
                    continue;
                }
                if self.is_current_lane(li, [x[t], y[t]]) {
                    out[t] = true;
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{LaneSignal, MapFeature, MapPoint, SceneSource, SignalState};

    fn scene(states: &[SignalState]) -> Scene {
        let lane = MapFeature::new(
            7,
            MapFeatureKind::Lane(LaneType::SurfaceStreet),
            (0..=10)
                .map(|i| MapPoint {
                    x: i as f32 * 5.0,
                    y: 0.0,
                    z: 0.0,
                })
                .collect(),
        );
        let signals = states
            .iter()
            .map(|&state| {
                vec![LaneSignal {
                    lane: 7,
                    state,
                    stop_point: MapPoint {
                        x: 22.0,
                        y: 0.0,
                        z: 0.0,
                    },
                }]
            })
            .collect();
        Scene {
            id: "t".into(),
            source: SceneSource::Synthetic,
            current_step: 0,
            tracks: vec![],
            map: vec![lane],
            signals,
            sdc_index: None,
            tracks_to_predict: vec![],
            objects_of_interest: vec![],
        }
    }

    proptest::proptest! {
        #[test]
        fn pruned_current_lane_is_the_official_argmin(
            lanes in proptest::collection::vec(
                proptest::collection::vec((-50.0f32..50.0, -50.0f32..50.0), 2..12),
                1..10,
            ),
            p in (-70.0f32..70.0, -70.0f32..70.0),
        ) {
            let tl = TrafficLights {
                lanes: lanes
                    .into_iter()
                    .enumerate()
                    .map(|(i, pts)| Lane::new(i as i64, pts.into_iter().map(|(x, y)| [x, y]).collect()))
                    .collect(),
                signals: vec![],
                fences: vec![],
            };
            let p = [p.0, p.1];
            // The official flat argmin over (lane, segment).
            let mut best = (f32::INFINITY, 0usize);
            for (k, lane) in tl.lanes.iter().enumerate() {
                for w in lane.points.windows(2) {
                    let d = mirrored_distance(p, w[0], w[1]);
                    if d < best.0 {
                        best = (d, k);
                    }
                }
            }
            for k in 0..tl.lanes.len() {
                proptest::prop_assert_eq!(tl.is_current_lane(k, p), k == best.1);
            }
        }
    }

    #[test]
    fn crossing_on_red_is_a_violation_and_on_green_is_not() {
        let x: Vec<f32> = (0..6).map(|t| 18.0 + 1.5 * t as f32).collect();
        let y = vec![0.3; 6];
        let valid = vec![true; 6];
        // The car passes 22 m between steps 2 (21.0) and 3 (22.5).
        let red = TrafficLights::from_scene(&scene(&[SignalState::Stop; 6]), 6);
        assert!(!red.is_inert());
        assert_eq!(
            red.violations(&x, &y, &valid),
            [false, false, false, true, false, false]
        );
        let green = TrafficLights::from_scene(&scene(&[SignalState::Go; 6]), 6);
        assert!(green.is_inert());
        assert!(green.violations(&x, &y, &valid).iter().all(|v| !v));
        let flashing = TrafficLights::from_scene(&scene(&[SignalState::FlashingStop; 6]), 6);
        assert!(flashing.violations(&x, &y, &valid).iter().all(|v| !v));
        let mut invalid = valid.clone();
        invalid[3] = false;
        assert!(red.violations(&x, &y, &invalid).iter().all(|v| !v));
        // Off the lane (another lane would be nearer): still on this one here, but a
        // scene without lanes has no violations.
        let mut no_lanes = scene(&[SignalState::Stop; 6]);
        no_lanes.map.clear();
        let none = TrafficLights::from_scene(&no_lanes, 6);
        assert!(none.is_inert());
        assert!(none.violations(&x, &y, &valid).iter().all(|v| !v));
    }
}
