//! Per-scene scores, buckets and dataset averages: the official `SimAgentMetrics` and
//! `SimAgentsBucketedMetrics`.
//!
//! For a scene ([`score_features`], the official
//! `compute_scenario_metrics_for_features_bundle`):
//! - each continuous feature's likelihood is `exp(mean log-likelihood)` over the valid
//!   logged object-steps: speeds where the log is valid one step before and after,
//!   accelerations where it is valid two steps before, at and two steps after,
//!   distances and road-edge distance where it is valid, time to collision where it is
//!   valid and the object is a vehicle;
//! - collision, off-road and (vehicles only) red-light violation are per-object "ever"
//!   indicators over the logged valid steps, scored per object against the rollouts'
//!   indicators and averaged over objects before the exponential;
//! - the meta-metric is the weighted sum of the ten likelihoods, each bucket the
//!   weighted mean of its features;
//! - ADE is averaged over rollouts and objects, minADE is the minimum over rollouts of
//!   the object mean; the simulated collision, off-road and red-light rates are the
//!   fractions of (rollout, object) pairs with an event over the logged valid steps.
//!
//! [`average_metrics`] averages every field over scenes (the official
//! `aggregate_scenario_metrics`); buckets of an average come from the averaged fields.
//!
//! Where no object-step qualifies (for example no evaluated vehicle for time to
//! collision), the mean is 0/0 and the likelihood NaN, as officially; JSON writes it as
//! `null`.

use serde::{Deserialize, Serialize};

use super::MetricsError;
use super::config::{Bucket, Feature, MetricsConfig};
use super::features::{FeatureArray, ScenarioFeatures, kinematics};
use super::likelihood::{log_likelihood_per_object, log_likelihood_timeseries};
use crate::scenario::ObjectType;

/// Serialises NaN as JSON `null` and reads `null` back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// The scores of one scene, or their average over a dataset (the official
/// `SimAgentMetrics`; JSON uses the proto field names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimAgentMetrics {
    /// The scene (absent for dataset averages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_id: Option<String>,
    /// Weighted sum of the likelihoods.
    #[serde(with = "nan_as_null")]
    pub metametric: f64,
    /// ADE averaged over rollouts and objects (m).
    #[serde(with = "nan_as_null")]
    pub average_displacement_error: f64,
    /// minADE: the best rollout's object-mean ADE (m).
    #[serde(with = "nan_as_null")]
    pub min_average_displacement_error: f64,
    /// Linear speed likelihood.
    #[serde(with = "nan_as_null")]
    pub linear_speed_likelihood: f64,
    /// Linear acceleration likelihood.
    #[serde(with = "nan_as_null")]
    pub linear_acceleration_likelihood: f64,
    /// Angular speed likelihood.
    #[serde(with = "nan_as_null")]
    pub angular_speed_likelihood: f64,
    /// Angular acceleration likelihood.
    #[serde(with = "nan_as_null")]
    pub angular_acceleration_likelihood: f64,
    /// Distance to nearest object likelihood.
    #[serde(with = "nan_as_null")]
    pub distance_to_nearest_object_likelihood: f64,
    /// Collision indication likelihood.
    #[serde(with = "nan_as_null")]
    pub collision_indication_likelihood: f64,
    /// Time to collision likelihood.
    #[serde(with = "nan_as_null")]
    pub time_to_collision_likelihood: f64,
    /// Distance to road edge likelihood.
    #[serde(with = "nan_as_null")]
    pub distance_to_road_edge_likelihood: f64,
    /// Off-road indication likelihood.
    #[serde(with = "nan_as_null")]
    pub offroad_indication_likelihood: f64,
    /// Traffic light violation likelihood.
    #[serde(with = "nan_as_null")]
    pub traffic_light_violation_likelihood: f64,
    /// Fraction of simulated (rollout, object) pairs that ever collide.
    #[serde(with = "nan_as_null")]
    pub simulated_collision_rate: f64,
    /// Fraction that ever leave the road.
    #[serde(with = "nan_as_null")]
    pub simulated_offroad_rate: f64,
    /// Fraction that ever run a red light.
    #[serde(with = "nan_as_null")]
    pub simulated_traffic_light_violation_rate: f64,
}

/// The leaderboard's grouping of [`SimAgentMetrics`] (the official
/// `SimAgentsBucketedMetrics`; JSON uses the proto field names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimAgentsBucketedMetrics {
    /// The meta-metric.
    #[serde(with = "nan_as_null")]
    pub realism_meta_metric: f64,
    /// Weighted mean of the kinematic likelihoods.
    #[serde(with = "nan_as_null")]
    pub kinematic_metrics: f64,
    /// Weighted mean of the interactive likelihoods.
    #[serde(with = "nan_as_null")]
    pub interactive_metrics: f64,
    /// Weighted mean of the map-based likelihoods.
    #[serde(with = "nan_as_null")]
    pub map_based_metrics: f64,
    /// minADE (m).
    #[serde(with = "nan_as_null")]
    pub min_ade: f64,
    /// Simulated collision rate.
    #[serde(with = "nan_as_null")]
    pub simulated_collision_rate: f64,
    /// Simulated off-road rate.
    #[serde(with = "nan_as_null")]
    pub simulated_offroad_rate: f64,
    /// Simulated red-light violation rate.
    #[serde(with = "nan_as_null")]
    pub simulated_traffic_light_violation_rate: f64,
}

impl SimAgentMetrics {
    /// The likelihood of `feature`.
    pub fn likelihood(&self, feature: Feature) -> f64 {
        match feature {
            Feature::LinearSpeed => self.linear_speed_likelihood,
            Feature::LinearAcceleration => self.linear_acceleration_likelihood,
            Feature::AngularSpeed => self.angular_speed_likelihood,
            Feature::AngularAcceleration => self.angular_acceleration_likelihood,
            Feature::DistanceToNearestObject => self.distance_to_nearest_object_likelihood,
            Feature::CollisionIndication => self.collision_indication_likelihood,
            Feature::TimeToCollision => self.time_to_collision_likelihood,
            Feature::DistanceToRoadEdge => self.distance_to_road_edge_likelihood,
            Feature::OffroadIndication => self.offroad_indication_likelihood,
            Feature::TrafficLightViolation => self.traffic_light_violation_likelihood,
        }
    }

    fn likelihood_mut(&mut self, feature: Feature) -> &mut f64 {
        match feature {
            Feature::LinearSpeed => &mut self.linear_speed_likelihood,
            Feature::LinearAcceleration => &mut self.linear_acceleration_likelihood,
            Feature::AngularSpeed => &mut self.angular_speed_likelihood,
            Feature::AngularAcceleration => &mut self.angular_acceleration_likelihood,
            Feature::DistanceToNearestObject => &mut self.distance_to_nearest_object_likelihood,
            Feature::CollisionIndication => &mut self.collision_indication_likelihood,
            Feature::TimeToCollision => &mut self.time_to_collision_likelihood,
            Feature::DistanceToRoadEdge => &mut self.distance_to_road_edge_likelihood,
            Feature::OffroadIndication => &mut self.offroad_indication_likelihood,
            Feature::TrafficLightViolation => &mut self.traffic_light_violation_likelihood,
        }
    }

    /// Every numeric field with its proto name, in proto order.
    pub fn fields(&self) -> [(&'static str, f64); 16] {
        [
            ("metametric", self.metametric),
            (
                "average_displacement_error",
                self.average_displacement_error,
            ),
            (
                "min_average_displacement_error",
                self.min_average_displacement_error,
            ),
            ("linear_speed_likelihood", self.linear_speed_likelihood),
            (
                "linear_acceleration_likelihood",
                self.linear_acceleration_likelihood,
            ),
            ("angular_speed_likelihood", self.angular_speed_likelihood),
            (
                "angular_acceleration_likelihood",
                self.angular_acceleration_likelihood,
            ),
            (
                "distance_to_nearest_object_likelihood",
                self.distance_to_nearest_object_likelihood,
            ),
            (
                "collision_indication_likelihood",
                self.collision_indication_likelihood,
            ),
            (
                "time_to_collision_likelihood",
                self.time_to_collision_likelihood,
            ),
            (
                "distance_to_road_edge_likelihood",
                self.distance_to_road_edge_likelihood,
            ),
            (
                "offroad_indication_likelihood",
                self.offroad_indication_likelihood,
            ),
            (
                "traffic_light_violation_likelihood",
                self.traffic_light_violation_likelihood,
            ),
            ("simulated_collision_rate", self.simulated_collision_rate),
            ("simulated_offroad_rate", self.simulated_offroad_rate),
            (
                "simulated_traffic_light_violation_rate",
                self.simulated_traffic_light_violation_rate,
            ),
        ]
    }

    fn fields_mut(&mut self) -> [&mut f64; 16] {
        [
            &mut self.metametric,
            &mut self.average_displacement_error,
            &mut self.min_average_displacement_error,
            &mut self.linear_speed_likelihood,
            &mut self.linear_acceleration_likelihood,
            &mut self.angular_speed_likelihood,
            &mut self.angular_acceleration_likelihood,
            &mut self.distance_to_nearest_object_likelihood,
            &mut self.collision_indication_likelihood,
            &mut self.time_to_collision_likelihood,
            &mut self.distance_to_road_edge_likelihood,
            &mut self.offroad_indication_likelihood,
            &mut self.traffic_light_violation_likelihood,
            &mut self.simulated_collision_rate,
            &mut self.simulated_offroad_rate,
            &mut self.simulated_traffic_light_violation_rate,
        ]
    }
}

impl SimAgentsBucketedMetrics {
    /// Groups `metrics` into buckets with `config`'s weights (the official
    /// `aggregate_metrics_to_buckets`).
    ///
    /// # Errors
    /// [`MetricsError::Config`] when a bucket's weights sum to zero.
    pub fn from_metrics(
        config: &MetricsConfig,
        metrics: &SimAgentMetrics,
    ) -> Result<Self, MetricsError> {
        let bucket = |b: Bucket| -> Result<f64, MetricsError> {
            let (mut sum, mut weights) = (0.0f64, 0.0f64);
            for f in b.features() {
                let w = config.weight(f) as f64;
                sum += w * metrics.likelihood(f);
                weights += w;
            }
            if weights == 0.0 {
                return Err(MetricsError::Config {
                    config: config.name.clone(),
                    feature: b.features().next().map_or("", Feature::name),
                    message: format!("the weights of the {b:?} bucket sum to zero"),
                });
            }
            Ok(sum / weights)
        };
        Ok(Self {
            realism_meta_metric: metrics.metametric,
            kinematic_metrics: bucket(Bucket::Kinematic)?,
            interactive_metrics: bucket(Bucket::Interactive)?,
            map_based_metrics: bucket(Bucket::MapBased)?,
            min_ade: metrics.min_average_displacement_error,
            simulated_collision_rate: metrics.simulated_collision_rate,
            simulated_offroad_rate: metrics.simulated_offroad_rate,
            simulated_traffic_light_violation_rate: metrics.simulated_traffic_light_violation_rate,
        })
    }

    /// Every field with its proto name, in proto order.
    pub fn fields(&self) -> [(&'static str, f64); 8] {
        [
            ("realism_meta_metric", self.realism_meta_metric),
            ("kinematic_metrics", self.kinematic_metrics),
            ("interactive_metrics", self.interactive_metrics),
            ("map_based_metrics", self.map_based_metrics),
            ("min_ade", self.min_ade),
            ("simulated_collision_rate", self.simulated_collision_rate),
            ("simulated_offroad_rate", self.simulated_offroad_rate),
            (
                "simulated_traffic_light_violation_rate",
                self.simulated_traffic_light_violation_rate,
            ),
        ]
    }
}

/// `exp` of the mean of `ll` where `mask` holds (NaN when nothing qualifies).
fn exp_masked_mean(ll: &[f64], mask: &[bool]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (l, &m) in ll.iter().zip(mask) {
        if m {
            sum += l;
            n += 1;
        }
    }
    (sum / n as f64).exp()
}

/// Per (sample, object): does `flags` hold at any step where the log is valid and
/// `allow` admits the object? `[samples][objects]`, flattened sample-major.
fn ever(
    flags: &FeatureArray<bool>,
    log_valid: &FeatureArray<bool>,
    allow: impl Fn(usize) -> bool,
) -> Vec<bool> {
    let mut out = Vec::with_capacity(flags.n_samples * flags.n_objects);
    for s in 0..flags.n_samples {
        for o in 0..flags.n_objects {
            let any = allow(o)
                && flags
                    .series(s, o)
                    .iter()
                    .zip(log_valid.series(0, o))
                    .any(|(&f, &v)| f && v);
            out.push(any);
        }
    }
    out
}

/// The per-object "ever" flags the Bernoulli likelihoods and the event rates are
/// computed from (the official intermediate values), for one side of a
/// [`ScenarioFeatures`].
///
/// # Shapes
/// Every field is `[samples][objects]`, flattened sample-major (one sample for the log,
/// one per rollout for simulations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventIndications {
    /// A collision at some logged valid step.
    pub collision: Vec<bool>,
    /// Off-road at some logged valid step.
    pub offroad: Vec<bool>,
    /// A red-light violation at some logged valid step, vehicles only (the flag of the
    /// likelihood).
    pub traffic_light_violation: Vec<bool>,
    /// The same for every object type (the flag of the simulated violation rate).
    pub traffic_light_violation_any_type: Vec<bool>,
}

impl EventIndications {
    /// The flags of the logged future (`sim = false`) or of the rollouts (`sim =
    /// true`) of `features`; steps count where the log is valid.
    pub fn of(features: &ScenarioFeatures, sim: bool) -> Self {
        let log = &features.log;
        let side = if sim { &features.sim } else { &features.log };
        let is_vehicle: Vec<bool> = log
            .object_type
            .iter()
            .map(|t| *t == ObjectType::Vehicle)
            .collect();
        let all = |_: usize| true;
        Self {
            collision: ever(&side.collision_per_step, &log.valid, all),
            offroad: ever(&side.offroad_per_step, &log.valid, all),
            traffic_light_violation: ever(
                &side.traffic_light_violation_per_step,
                &log.valid,
                |o| is_vehicle[o],
            ),
            traffic_light_violation_any_type: ever(
                &side.traffic_light_violation_per_step,
                &log.valid,
                all,
            ),
        }
    }
}

/// Scores a scene's features under `config`.
///
/// # Errors
/// [`MetricsError::Config`] when a feature has no estimator or its estimator does not
/// fit (for example the official 2023 config, which lacks `traffic_light_violation`).
pub fn score_features(
    config: &MetricsConfig,
    features: &ScenarioFeatures,
) -> Result<SimAgentMetrics, MetricsError> {
    let log = &features.log;
    let sim = &features.sim;
    let n_obj = log.object_id.len();
    let n_steps = log.valid.n_steps;
    let n_roll = sim.valid.n_samples;
    let config_error = |f: Feature, message: String| MetricsError::Config {
        config: config.name.clone(),
        feature: f.name(),
        message,
    };
    let fcfg = |f: Feature| config.feature(f).copied().unwrap_or_default();

    // Validity masks from the log, flattened [objects * steps].
    let valid: Vec<bool> = log.valid.data.clone();
    let mut speed_valid = Vec::with_capacity(n_obj * n_steps);
    let mut accel_valid = Vec::with_capacity(n_obj * n_steps);
    for o in 0..n_obj {
        speed_valid.extend(kinematics::speed_validity(log.valid.series(0, o)));
        accel_valid.extend(kinematics::acceleration_validity(log.valid.series(0, o)));
    }
    let is_vehicle: Vec<bool> = log
        .object_type
        .iter()
        .map(|t| *t == ObjectType::Vehicle)
        .collect();
    let vehicle_valid: Vec<bool> = valid
        .iter()
        .enumerate()
        .map(|(i, &v)| v && is_vehicle[i / n_steps.max(1)])
        .collect();

    let mut m = SimAgentMetrics {
        scenario_id: Some(features.scenario_id.clone()),
        ..Default::default()
    };

    let series = |f: Feature, l: &FeatureArray<f32>, s: &FeatureArray<f32>, mask: &[bool]| {
        log_likelihood_timeseries(&fcfg(f), l, s)
            .map(|ll| exp_masked_mean(&ll, mask))
            .map_err(|e| config_error(f, e))
    };
    m.linear_speed_likelihood = series(
        Feature::LinearSpeed,
        &log.linear_speed,
        &sim.linear_speed,
        &speed_valid,
    )?;
    m.angular_speed_likelihood = series(
        Feature::AngularSpeed,
        &log.angular_speed,
        &sim.angular_speed,
        &speed_valid,
    )?;
    m.linear_acceleration_likelihood = series(
        Feature::LinearAcceleration,
        &log.linear_acceleration,
        &sim.linear_acceleration,
        &accel_valid,
    )?;
    m.angular_acceleration_likelihood = series(
        Feature::AngularAcceleration,
        &log.angular_acceleration,
        &sim.angular_acceleration,
        &accel_valid,
    )?;
    m.distance_to_nearest_object_likelihood = series(
        Feature::DistanceToNearestObject,
        &log.distance_to_nearest_object,
        &sim.distance_to_nearest_object,
        &valid,
    )?;
    m.time_to_collision_likelihood = series(
        Feature::TimeToCollision,
        &log.time_to_collision,
        &sim.time_to_collision,
        &vehicle_valid,
    )?;
    m.distance_to_road_edge_likelihood = series(
        Feature::DistanceToRoadEdge,
        &log.distance_to_road_edge,
        &sim.distance_to_road_edge,
        &valid,
    )?;

    let indicator = |f: Feature, l: &[bool], s: &[bool]| {
        log_likelihood_per_object(&fcfg(f), l, s)
            .map(|ll| (ll.iter().sum::<f64>() / ll.len() as f64).exp())
            .map_err(|e| config_error(f, e))
    };
    let rate = |s: &[bool]| s.iter().filter(|&&b| b).count() as f64 / s.len() as f64;

    let log_flags = EventIndications::of(features, false);
    let sim_flags = EventIndications::of(features, true);
    m.collision_indication_likelihood = indicator(
        Feature::CollisionIndication,
        &log_flags.collision,
        &sim_flags.collision,
    )?;
    m.simulated_collision_rate = rate(&sim_flags.collision);
    m.offroad_indication_likelihood = indicator(
        Feature::OffroadIndication,
        &log_flags.offroad,
        &sim_flags.offroad,
    )?;
    m.simulated_offroad_rate = rate(&sim_flags.offroad);
    m.traffic_light_violation_likelihood = indicator(
        Feature::TrafficLightViolation,
        &log_flags.traffic_light_violation,
        &sim_flags.traffic_light_violation,
    )?;
    m.simulated_traffic_light_violation_rate = rate(&sim_flags.traffic_light_violation_any_type);

    let ade = &sim.average_displacement_error.data;
    m.average_displacement_error = ade.iter().map(|&v| v as f64).sum::<f64>() / ade.len() as f64;
    m.min_average_displacement_error = (0..n_roll)
        .map(|r| {
            ade[r * n_obj..(r + 1) * n_obj]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>()
                / n_obj as f64
        })
        .fold(f64::INFINITY, f64::min);

    m.metametric = Feature::ALL
        .iter()
        .map(|&f| config.weight(f) as f64 * m.likelihood(f))
        .sum();
    Ok(m)
}

/// Averages every field over scenes (no scenario id). `None` for no scenes.
pub fn average_metrics(scenes: &[SimAgentMetrics]) -> Option<SimAgentMetrics> {
    if scenes.is_empty() {
        return None;
    }
    let mut avg = SimAgentMetrics::default();
    let n = scenes.len() as f64;
    for s in scenes {
        for (dst, (_, v)) in avg.fields_mut().into_iter().zip(s.fields()) {
            *dst += v / n;
        }
    }
    Some(avg)
}

/// Sets one likelihood (for building metrics by hand, e.g. in tests and charts).
pub fn set_likelihood(m: &mut SimAgentMetrics, feature: Feature, value: f64) {
    *m.likelihood_mut(feature) = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_the_proto_names_and_null_for_nan() {
        let mut m = SimAgentMetrics {
            scenario_id: Some("abc".into()),
            metametric: 0.5,
            ..Default::default()
        };
        set_likelihood(&mut m, Feature::TimeToCollision, f64::NAN);
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["scenario_id"], "abc");
        assert_eq!(j["metametric"], 0.5);
        assert!(j["time_to_collision_likelihood"].is_null());
        assert!(j.get("traffic_light_violation_likelihood").is_some());
        let back: SimAgentMetrics = serde_json::from_value(j).unwrap();
        assert!(back.time_to_collision_likelihood.is_nan());
        let b = SimAgentsBucketedMetrics::default();
        let j = serde_json::to_value(&b).unwrap();
        for (name, _) in b.fields() {
            assert!(j.get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn averages_and_buckets() {
        let config = MetricsConfig::challenge_2025().unwrap();
        let mut a = SimAgentMetrics::default();
        let mut b = SimAgentMetrics::default();
        for f in Feature::ALL {
            set_likelihood(&mut a, f, 0.2);
            set_likelihood(&mut b, f, 0.6);
        }
        a.metametric = 0.2;
        b.metametric = 0.6;
        let avg = average_metrics(&[a, b]).unwrap();
        assert!(avg.scenario_id.is_none());
        assert!((avg.linear_speed_likelihood - 0.4).abs() < 1e-12);
        let bucketed = SimAgentsBucketedMetrics::from_metrics(&config, &avg).unwrap();
        assert!((bucketed.kinematic_metrics - 0.4).abs() < 1e-9);
        assert!((bucketed.map_based_metrics - 0.4).abs() < 1e-9);
        assert!(average_metrics(&[]).is_none());
        let zero = MetricsConfig::empty("zero");
        assert!(SimAgentsBucketedMetrics::from_metrics(&zero, &avg).is_err());
    }
}
