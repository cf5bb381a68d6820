//! The official per-object, per-step features of the Waymo Sim Agents metrics.
//!
//! [`ScenarioFeatures::compute`] takes a logged [`Scene`] and its rollouts and returns
//! the features of the logged future (one sample) and of every rollout, as the
//! official `metric_features.compute_scenario_rollouts_features` does:
//!
//! - The **simulated objects** are those valid at the current step. Each rollout's
//!   trajectories are prefixed with the logged history (steps 0..=current, raw values
//!   even where invalid), take the logged box size at the current step for the whole
//!   future, and count as valid at every future step. The logged future is treated the
//!   same way, except that its validity is the log's.
//! - The **evaluated objects** are the self-driving car and the tracks to predict, in
//!   increasing id order. Features are reported for them only, over the simulated steps;
//!   interactions involve every simulated object.
//! - Kinematics ([`kinematics`]) are central differences over history and future;
//!   distances and collisions ([`interaction`]), time to collision, distance to the road
//!   edge and off-road ([`map`]), and red-light violations ([`traffic_light`]) are
//!   computed per step.
//! - The average displacement error of an object is the mean 3D distance to the log
//!   over all its logged valid steps, history included (where it is zero).
//!
//! Arithmetic is `f32` in the official order throughout, so that the features agree
//! with the official ones to float rounding; rollouts are processed in parallel.

pub mod interaction;
pub mod kinematics;
pub mod map;
pub mod traffic_light;

use std::collections::HashMap;

use rayon::prelude::*;

use super::MetricsError;
use super::rollouts::{JointScene, ScenarioRollouts};
use crate::scenario::{ObjectState, ObjectType, Scene};
use interaction::{EXTREMELY_LARGE_DISTANCE, TtcBox};
use map::{RoadEdges, SegmentHint};
use traffic_light::TrafficLights;

/// Seconds per step of WOMD (10 Hz), as the official submission spec gives it.
pub const SECONDS_PER_STEP: f64 = 0.1;

/// Slack (m) of the lower bound that skips far objects in the nearest-object search,
/// far beyond the `f32` rounding of the exact distances (about 1e-3 m).
const NEAREST_MARGIN: f64 = 0.05;

/// A `[samples][objects][steps]` array of one feature.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureArray<T> {
    /// Samples (1 for the log, one per rollout for simulations).
    pub n_samples: usize,
    /// Evaluated objects.
    pub n_objects: usize,
    /// Steps (the simulated steps; 1 for per-object values).
    pub n_steps: usize,
    /// Values, sample-major then object then step.
    pub data: Vec<T>,
}

impl<T: Copy> FeatureArray<T> {
    fn from_rows(rows: Vec<Vec<Vec<T>>>, n_objects: usize, n_steps: usize) -> Self {
        let n_samples = rows.len();
        let mut data = Vec::with_capacity(n_samples * n_objects * n_steps);
        for s in rows {
            for o in s {
                data.extend_from_slice(&o);
            }
        }
        Self {
            n_samples,
            n_objects,
            n_steps,
            data,
        }
    }

    /// The value at sample `s`, object `o`, step `t`.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn get(&self, s: usize, o: usize, t: usize) -> T {
        self.data[(s * self.n_objects + o) * self.n_steps + t]
    }

    /// One object's series in one sample.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn series(&self, s: usize, o: usize) -> &[T] {
        let start = (s * self.n_objects + o) * self.n_steps;
        &self.data[start..start + self.n_steps]
    }
}

/// The features of one or more samples of a scene (the official `MetricFeatures`).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFeatures {
    /// Evaluated object ids, in evaluation (increasing id) order.
    pub object_id: Vec<i64>,
    /// Their logged types.
    pub object_type: Vec<ObjectType>,
    /// Validity per simulated step (all true for rollouts, the log's for the log).
    pub valid: FeatureArray<bool>,
    /// Average displacement error per object (`n_steps` = 1).
    pub average_displacement_error: FeatureArray<f32>,
    /// Linear speed (m/s).
    pub linear_speed: FeatureArray<f32>,
    /// Linear acceleration (m/s²).
    pub linear_acceleration: FeatureArray<f32>,
    /// Angular speed (rad/s).
    pub angular_speed: FeatureArray<f32>,
    /// Angular acceleration (rad/s²).
    pub angular_acceleration: FeatureArray<f32>,
    /// Signed distance to the nearest object (m; 1e10 when none).
    pub distance_to_nearest_object: FeatureArray<f32>,
    /// Distance below 0.
    pub collision_per_step: FeatureArray<bool>,
    /// Time to collision (s, at most 5).
    pub time_to_collision: FeatureArray<f32>,
    /// Signed distance to the road edge (m, positive off-road; -1e10 when invalid).
    pub distance_to_road_edge: FeatureArray<f32>,
    /// Distance to the road edge above 0.
    pub offroad_per_step: FeatureArray<bool>,
    /// Red-light violation.
    pub traffic_light_violation_per_step: FeatureArray<bool>,
}

/// The features of the logged future and of the rollouts of one scene.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioFeatures {
    /// The scene's id.
    pub scenario_id: String,
    /// The logged future (one sample).
    pub log: MetricFeatures,
    /// The rollouts (one sample each).
    pub sim: MetricFeatures,
}

/// What is computed once per scene and shared by all samples.
struct Context<'a> {
    scene: &'a Scene,
    current: usize,
    n_steps: usize,
    /// Track indices of the simulated objects, in track order.
    sim_agents: Vec<usize>,
    /// Track indices of the evaluated objects, in increasing id order.
    evaluated: Vec<usize>,
    road_edges: RoadEdges,
    lights: TrafficLights,
}

/// One sample's trajectories over the whole scene, evaluated objects first.
struct Sample {
    /// Track index of each object.
    track: Vec<usize>,
    x: Vec<Vec<f32>>,
    y: Vec<Vec<f32>>,
    z: Vec<Vec<f32>>,
    heading: Vec<Vec<f32>>,
    length: Vec<Vec<f32>>,
    width: Vec<Vec<f32>>,
    height: Vec<Vec<f32>>,
    valid: Vec<Vec<bool>>,
}

/// One sample's features, per evaluated object.
struct SampleFeatures {
    valid: Vec<Vec<bool>>,
    ade: Vec<Vec<f32>>,
    linear_speed: Vec<Vec<f32>>,
    linear_acceleration: Vec<Vec<f32>>,
    angular_speed: Vec<Vec<f32>>,
    angular_acceleration: Vec<Vec<f32>>,
    distance_to_nearest_object: Vec<Vec<f32>>,
    time_to_collision: Vec<Vec<f32>>,
    distance_to_road_edge: Vec<Vec<f32>>,
    traffic_light_violation: Vec<Vec<bool>>,
}

fn scene_error(scene: &Scene, message: impl Into<String>) -> MetricsError {
    MetricsError::Scene {
        scenario_id: scene.id.clone(),
        message: message.into(),
    }
}

fn rollout_error(scene: &Scene, message: impl Into<String>) -> MetricsError {
    MetricsError::Rollouts {
        scenario_id: scene.id.clone(),
        message: message.into(),
    }
}

impl<'a> Context<'a> {
    fn new(scene: &'a Scene) -> Result<Self, MetricsError> {
        let n_steps = scene.num_steps();
        let current = scene.current_step;
        if current + 1 >= n_steps {
            return Err(scene_error(
                scene,
                format!("current step {current} leaves no future in {n_steps} steps"),
            ));
        }
        for (i, t) in scene.tracks.iter().enumerate() {
            if t.states.len() != n_steps {
                return Err(scene_error(
                    scene,
                    format!(
                        "track {i} (id {}) has {} states, the scene {n_steps}",
                        t.id,
                        t.states.len()
                    ),
                ));
            }
        }
        let sim_agents: Vec<usize> = (0..scene.tracks.len())
            .filter(|&i| scene.tracks[i].valid_at(current))
            .collect();
        let mut evaluated: Vec<usize> = scene
            .tracks_to_predict
            .iter()
            .map(|t| t.track_index)
            .chain(scene.sdc_index)
            .collect();
        for &i in &evaluated {
            if i >= scene.tracks.len() {
                return Err(scene_error(
                    scene,
                    format!("evaluated track index {i} is out of range"),
                ));
            }
            if !scene.tracks[i].valid_at(current) {
                return Err(scene_error(
                    scene,
                    format!(
                        "evaluated object {} is not valid at the current step {current}",
                        scene.tracks[i].id
                    ),
                ));
            }
        }
        evaluated.sort_by_key(|&i| scene.tracks[i].id);
        evaluated.dedup_by_key(|i| scene.tracks[*i].id);
        if evaluated.is_empty() {
            return Err(scene_error(
                scene,
                "no object to evaluate (no self-driving car and no tracks to predict)",
            ));
        }
        let road_edges = RoadEdges::from_scene(scene).ok_or_else(|| {
            scene_error(
                scene,
                "the map has no road edge, so distance to road edge and off-road are undefined",
            )
        })?;
        let lights = TrafficLights::from_scene(scene, n_steps);
        Ok(Self {
            scene,
            current,
            n_steps,
            sim_agents,
            evaluated,
            road_edges,
            lights,
        })
    }

    fn n_future(&self) -> usize {
        self.n_steps - self.current - 1
    }

    /// A sample from `(track index, future x, y, z, heading)` per simulated object.
    fn sample(&self, objects: Vec<(usize, [&[f32]; 4])>, log_validity: bool) -> Sample {
        // Evaluated first (in id order), then the others in the given order.
        let mut order: Vec<usize> = Vec::with_capacity(objects.len());
        for &e in &self.evaluated {
            if let Some(k) = objects.iter().position(|(t, _)| *t == e) {
                order.push(k);
            }
        }
        for (k, (t, _)) in objects.iter().enumerate() {
            if !self.evaluated.contains(t) {
                order.push(k);
            }
        }
        let n = order.len();
        let mut s = Sample {
            track: Vec::with_capacity(n),
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
            heading: Vec::with_capacity(n),
            length: Vec::with_capacity(n),
            width: Vec::with_capacity(n),
            height: Vec::with_capacity(n),
            valid: Vec::with_capacity(n),
        };
        let c = self.current;
        let nf = self.n_future();
        for k in order {
            let (ti, fut) = objects[k];
            let states = &self.scene.tracks[ti].states;
            let hist = &states[..=c];
            let at = states[c];
            // The logged history, then the given future (or the current box size).
            let series = |field: fn(&ObjectState) -> f32, future: &mut dyn Iterator<Item = f32>| {
                hist.iter().map(field).chain(future).collect::<Vec<f32>>()
            };
            s.track.push(ti);
            s.x.push(series(|st| st.x, &mut fut[0].iter().copied()));
            s.y.push(series(|st| st.y, &mut fut[1].iter().copied()));
            s.z.push(series(|st| st.z, &mut fut[2].iter().copied()));
            s.heading
                .push(series(|st| st.heading, &mut fut[3].iter().copied()));
            s.length.push(series(
                |st| st.length,
                &mut std::iter::repeat_n(at.length, nf),
            ));
            s.width.push(series(
                |st| st.width,
                &mut std::iter::repeat_n(at.width, nf),
            ));
            s.height.push(series(
                |st| st.height,
                &mut std::iter::repeat_n(at.height, nf),
            ));
            s.valid.push(if log_validity {
                states.iter().map(|st| st.valid).collect()
            } else {
                hist.iter()
                    .map(|st| st.valid)
                    .chain(std::iter::repeat_n(true, nf))
                    .collect()
            });
        }
        s
    }

    /// The logged future as a sample (raw values, logged validity).
    fn log_sample(&self) -> Sample {
        let c = self.current;
        let futures: Vec<(usize, [Vec<f32>; 4])> = self
            .sim_agents
            .iter()
            .map(|&ti| {
                let st = &self.scene.tracks[ti].states[c + 1..];
                (
                    ti,
                    [
                        st.iter().map(|s| s.x).collect(),
                        st.iter().map(|s| s.y).collect(),
                        st.iter().map(|s| s.z).collect(),
                        st.iter().map(|s| s.heading).collect(),
                    ],
                )
            })
            .collect();
        let objects = futures
            .iter()
            .map(|(ti, f)| (*ti, [&f[0][..], &f[1][..], &f[2][..], &f[3][..]]))
            .collect();
        self.sample(objects, true)
    }

    /// A rollout as a sample, after checking it against the scene.
    fn rollout_sample(&self, index: usize, js: &JointScene) -> Result<Sample, MetricsError> {
        let by_id: HashMap<i64, usize> = self
            .sim_agents
            .iter()
            .map(|&ti| (self.scene.tracks[ti].id, ti))
            .collect();
        let nf = self.n_future();
        let mut seen: HashMap<i64, usize> = HashMap::new();
        let mut objects = Vec::with_capacity(js.trajectories.len());
        for (k, t) in js.trajectories.iter().enumerate() {
            let here = || format!("rollout {index}, trajectory {k} (object {})", t.object_id);
            let Some(&ti) = by_id.get(&t.object_id) else {
                return Err(rollout_error(
                    self.scene,
                    format!(
                        "{}: not an object valid at the current step {}",
                        here(),
                        self.current
                    ),
                ));
            };
            if let Some(prev) = seen.insert(t.object_id, k) {
                return Err(rollout_error(
                    self.scene,
                    format!("{}: object also simulated by trajectory {prev}", here()),
                ));
            }
            for (name, v) in [
                ("x", &t.x),
                ("y", &t.y),
                ("z", &t.z),
                ("heading", &t.heading),
            ] {
                if v.len() != nf {
                    return Err(rollout_error(
                        self.scene,
                        format!("{}: {} {name} values, expected {nf}", here(), v.len()),
                    ));
                }
                let ok = if name == "heading" {
                    crate::limits::heading_ok
                } else {
                    crate::limits::coordinate_ok
                };
                if let Some(step) = v.iter().position(|&x| !ok(x)) {
                    let what = if v[step].is_finite() {
                        if name == "heading" {
                            format!("lies beyond +-{}", crate::limits::MAX_ABS_HEADING)
                        } else {
                            format!("lies beyond +-{} m", crate::limits::MAX_COORDINATE_M)
                        }
                    } else {
                        "is not finite".to_string()
                    };
                    return Err(rollout_error(
                        self.scene,
                        format!("{}: {name}[{step}] = {} {what}", here(), v[step]),
                    ));
                }
            }
            objects.push((ti, [&t.x[..], &t.y[..], &t.z[..], &t.heading[..]]));
        }
        if objects.len() != self.sim_agents.len() {
            let missing: Vec<i64> = self
                .sim_agents
                .iter()
                .map(|&ti| self.scene.tracks[ti].id)
                .filter(|id| !seen.contains_key(id))
                .collect();
            return Err(rollout_error(
                self.scene,
                format!(
                    "rollout {index}: {} objects valid at the current step are not simulated: {:?}",
                    missing.len(),
                    missing
                ),
            ));
        }
        Ok(self.sample(objects, false))
    }

    /// The features of one sample.
    fn features(&self, s: &Sample) -> SampleFeatures {
        let n_eval = self.evaluated.len();
        let n_obj = s.track.len();
        let c = self.current;
        let n = self.n_steps;
        let fut = c + 1..n;
        let slice = |v: &[f32]| v[fut.clone()].to_vec();

        let mut out = SampleFeatures {
            valid: Vec::with_capacity(n_eval),
            ade: Vec::with_capacity(n_eval),
            linear_speed: Vec::with_capacity(n_eval),
            linear_acceleration: Vec::with_capacity(n_eval),
            angular_speed: Vec::with_capacity(n_eval),
            angular_acceleration: Vec::with_capacity(n_eval),
            distance_to_nearest_object: Vec::with_capacity(n_eval),
            time_to_collision: Vec::with_capacity(n_eval),
            distance_to_road_edge: Vec::with_capacity(n_eval),
            traffic_light_violation: Vec::with_capacity(n_eval),
        };

        // Rounded-box cores of every object at every future step; planar speeds for
        // time to collision.
        let cores: Vec<Vec<([[f32; 2]; 4], f32)>> = (0..n_obj)
            .map(|o| {
                (0..n)
                    .map(|t| {
                        if t > c {
                            interaction::box_core(
                                s.x[o][t],
                                s.y[o][t],
                                s.length[o][t],
                                s.width[o][t],
                                s.heading[o][t],
                            )
                        } else {
                            ([[0.0; 2]; 4], 0.0)
                        }
                    })
                    .collect()
            })
            .collect();
        let planar_speed: Vec<Vec<f32>> = (0..n_obj)
            .map(|o| kinematics::linear_speed(&s.x[o], &s.y[o], None, SECONDS_PER_STEP))
            .collect();

        // How far each box reaches from its centre (half its diagonal; the future size
        // is constant).
        let reach: Vec<f64> = (0..n_obj)
            .map(|o| {
                let (l, w) = (s.length[o][n - 1] as f64, s.width[o][n - 1] as f64);
                0.5 * (l * l + w * w).sqrt()
            })
            .collect();
        let mut bounds: Vec<(f64, usize)> = Vec::with_capacity(n_obj);

        for e in 0..n_eval {
            let track = &self.scene.tracks[s.track[e]];
            out.valid.push(s.valid[e][fut.clone()].to_vec());

            // Displacement from the log over all logged valid steps.
            let mut sum = 0.0f32;
            let mut count = 0.0f32;
            for (t, st) in track.states.iter().enumerate() {
                if st.valid {
                    let d = [s.x[e][t] - st.x, s.y[e][t] - st.y, s.z[e][t] - st.z];
                    sum += (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                    count += 1.0;
                }
            }
            out.ade.push(vec![sum / count]);

            let k = kinematics::kinematic_features(
                &s.x[e],
                &s.y[e],
                &s.z[e],
                &s.heading[e],
                SECONDS_PER_STEP,
            );
            out.linear_speed.push(slice(&k.linear_speed));
            out.linear_acceleration.push(slice(&k.linear_acceleration));
            out.angular_speed.push(slice(&k.angular_speed));
            out.angular_acceleration
                .push(slice(&k.angular_acceleration));

            let mut nearest = Vec::with_capacity(n - c - 1);
            let mut ttc = Vec::with_capacity(n - c - 1);
            let mut road = Vec::with_capacity(n - c - 1);
            let mut hint = SegmentHint::default();
            let mut others: Vec<TtcBox> = Vec::with_capacity(n_obj);
            for t in fut.clone() {
                let mut best = EXTREMELY_LARGE_DISTANCE;
                if s.valid[e][t] {
                    // A cheap lower bound per object (centre distance less both
                    // circumradii) lets the exact distance skip far objects; the
                    // minimum is the same as over all objects.
                    bounds.clear();
                    for o in 0..n_obj {
                        if o == e || !s.valid[o][t] {
                            continue;
                        }
                        let dx = (s.x[o][t] - s.x[e][t]) as f64;
                        let dy = (s.y[o][t] - s.y[e][t]) as f64;
                        let lb = (dx * dx + dy * dy).sqrt() - reach[e] - reach[o];
                        bounds.push((lb, o));
                    }
                    if let Some(&(_, o)) = bounds.iter().min_by(|a, b| a.0.total_cmp(&b.0)) {
                        best = interaction::rounded_box_distance(&cores[e][t], &cores[o][t]);
                    }
                    for &(lb, o) in &bounds {
                        if lb - NEAREST_MARGIN <= best as f64 {
                            let d = interaction::rounded_box_distance(&cores[e][t], &cores[o][t]);
                            best = best.min(d);
                        }
                    }
                }
                nearest.push(best);

                others.clear();
                others.extend((0..n_obj).map(|o| TtcBox {
                    x: s.x[o][t],
                    y: s.y[o][t],
                    length: s.length[o][t],
                    width: s.width[o][t],
                    heading: s.heading[o][t],
                    speed: planar_speed[o][t],
                    valid: s.valid[o][t],
                }));
                ttc.push(interaction::time_to_collision(&others[e], &others));

                road.push(if s.valid[e][t] {
                    // Bottom corners: the rotated offset's z is -h/2, then the centre.
                    let z = -(s.height[e][t] * 0.5) + s.z[e][t];
                    let corners = interaction::box_corners(
                        s.x[e][t],
                        s.y[e][t],
                        s.length[e][t],
                        s.width[e][t],
                        s.heading[e][t],
                    );
                    let cs = corners.map(|p| [p[0], p[1], z]);
                    self.road_edges.box_distance(&cs, &mut hint)
                } else {
                    map::INVALID_DISTANCE
                });
            }
            out.distance_to_nearest_object.push(nearest);
            out.time_to_collision.push(ttc);
            out.distance_to_road_edge.push(road);

            let tl = if self.lights.is_inert() {
                vec![false; n]
            } else {
                self.lights.violations(&s.x[e], &s.y[e], &s.valid[e])
            };
            out.traffic_light_violation.push(tl[fut.clone()].to_vec());
        }
        out
    }
}

fn assemble(ctx: &Context<'_>, samples: Vec<SampleFeatures>) -> MetricFeatures {
    let n_obj = ctx.evaluated.len();
    let nf = ctx.n_future();
    let mut valid = Vec::with_capacity(samples.len());
    let mut ade = Vec::with_capacity(samples.len());
    let mut ls = Vec::with_capacity(samples.len());
    let mut la = Vec::with_capacity(samples.len());
    let mut asp = Vec::with_capacity(samples.len());
    let mut aa = Vec::with_capacity(samples.len());
    let mut dn = Vec::with_capacity(samples.len());
    let mut ttc = Vec::with_capacity(samples.len());
    let mut dr = Vec::with_capacity(samples.len());
    let mut tl = Vec::with_capacity(samples.len());
    for s in samples {
        valid.push(s.valid);
        ade.push(s.ade);
        ls.push(s.linear_speed);
        la.push(s.linear_acceleration);
        asp.push(s.angular_speed);
        aa.push(s.angular_acceleration);
        dn.push(s.distance_to_nearest_object);
        ttc.push(s.time_to_collision);
        dr.push(s.distance_to_road_edge);
        tl.push(s.traffic_light_violation);
    }
    let distance_to_nearest_object = FeatureArray::from_rows(dn, n_obj, nf);
    let distance_to_road_edge = FeatureArray::from_rows(dr, n_obj, nf);
    let map_bool = |a: &FeatureArray<f32>, f: fn(f32) -> bool| FeatureArray {
        n_samples: a.n_samples,
        n_objects: a.n_objects,
        n_steps: a.n_steps,
        data: a.data.iter().map(|&v| f(v)).collect(),
    };
    MetricFeatures {
        object_id: ctx
            .evaluated
            .iter()
            .map(|&i| ctx.scene.tracks[i].id)
            .collect(),
        object_type: ctx
            .evaluated
            .iter()
            .map(|&i| ctx.scene.tracks[i].object_type)
            .collect(),
        valid: FeatureArray::from_rows(valid, n_obj, nf),
        average_displacement_error: FeatureArray::from_rows(ade, n_obj, 1),
        linear_speed: FeatureArray::from_rows(ls, n_obj, nf),
        linear_acceleration: FeatureArray::from_rows(la, n_obj, nf),
        angular_speed: FeatureArray::from_rows(asp, n_obj, nf),
        angular_acceleration: FeatureArray::from_rows(aa, n_obj, nf),
        collision_per_step: map_bool(&distance_to_nearest_object, |d| {
            d < interaction::COLLISION_DISTANCE_THRESHOLD
        }),
        distance_to_nearest_object,
        time_to_collision: FeatureArray::from_rows(ttc, n_obj, nf),
        offroad_per_step: map_bool(&distance_to_road_edge, |d| {
            d > map::OFFROAD_DISTANCE_THRESHOLD
        }),
        distance_to_road_edge,
        traffic_light_violation_per_step: FeatureArray::from_rows(tl, n_obj, nf),
    }
}

impl ScenarioFeatures {
    /// The features of the logged future and of every rollout of `rollouts` on
    /// `scene`.
    ///
    /// # Errors
    /// [`MetricsError::Scene`] when the scene cannot be scored (no road edges, no
    /// evaluated object, an evaluated object invalid at the current step);
    /// [`MetricsError::Rollouts`] when the rollouts do not fit the scene (another
    /// scenario id, no rollouts, an object missing, unknown or repeated, a wrong number
    /// of steps, a non-finite value).
    pub fn compute(scene: &Scene, rollouts: &ScenarioRollouts) -> Result<Self, MetricsError> {
        if rollouts.scenario_id != scene.id {
            return Err(rollout_error(
                scene,
                format!(
                    "the rollouts are for scene {:?}, not {:?}",
                    crate::limits::quote(&rollouts.scenario_id),
                    scene.id
                ),
            ));
        }
        if rollouts.joint_scenes.is_empty() {
            return Err(rollout_error(scene, "no rollouts"));
        }
        let ctx = Context::new(scene)?;
        let samples: Vec<Sample> = rollouts
            .joint_scenes
            .iter()
            .enumerate()
            .map(|(i, js)| ctx.rollout_sample(i, js))
            .collect::<Result<_, _>>()?;
        let log_sample = ctx.log_sample();
        let (log, sim) = rayon::join(
            || ctx.features(&log_sample),
            || {
                samples
                    .par_iter()
                    .map(|s| ctx.features(s))
                    .collect::<Vec<_>>()
            },
        );
        Ok(Self {
            scenario_id: scene.id.clone(),
            log: assemble(&ctx, vec![log]),
            sim: assemble(&ctx, sim),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::rollouts::{SimulatedTrajectory, read_submission};

    #[test]
    fn absurd_rollout_values_are_refused_naming_rollout_object_and_step() {
        let scene = crate::scenario::womd::read_scenes(&crate::paths::shared_data(
            "womd/637f20cafde22ff8.tfrecord",
        ))
        .unwrap()
        .remove(0);
        let sub = read_submission(&crate::paths::shared_data(
            "wosac/637f20cafde22ff8_constvel_submission.binproto",
        ))
        .unwrap();
        let good = sub.scenario_rollouts[0].clone();
        // 3e38 is finite: it used to be scored (ADE null, the meta-metric up from
        // 0.258 to 0.330).
        for (field, set) in [
            ("x[7] = 300000000000000000000000000000000000000", {
                (|t: &mut SimulatedTrajectory| t.x[7] = 3e38) as fn(&mut SimulatedTrajectory)
            }),
            ("y[0] = -2000000 lies beyond", |t| t.y[0] = -2e6),
            ("z[3] = NaN is not finite", |t| t.z[3] = f32::NAN),
            ("heading[79] = 100000000000000000000", |t| {
                t.heading[79] = 1e20
            }),
        ] {
            let mut r = good.clone();
            set(&mut r.joint_scenes[4].trajectories[2]);
            let e = ScenarioFeatures::compute(&scene, &r)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("rollout 4, trajectory 2") && e.contains(field),
                "{field}: {e}"
            );
        }
        ScenarioFeatures::compute(&scene, &good).unwrap();
    }
}
