//! The Waymo Open Sim Agents Challenge (WOSAC) metrics, as the official
//! `waymo-open-dataset` code defines them (`wdl_limited/sim_agents_metrics`), in Rust.
//!
//! Pipeline for one scene:
//! 1. [`ScenarioRollouts`] — the rollouts to score: per rollout, per object valid at
//!    the current step, x/y/z/heading at every simulated step. Read from official
//!    `.binproto` submissions with [`rollouts::read_submission`], or built in memory by
//!    a simulator.
//! 2. [`ScenarioFeatures::compute`] — the per-object, per-step features of the logged
//!    future and of every rollout ([`features`]): speeds and accelerations, distance
//!    to the nearest object and collisions, time to collision, distance to the road edge
//!    and off-road, red-light violations, displacement errors.
//! 3. [`score_features`] — the likelihood of the log under the rollouts' distribution
//!    for every feature, with the estimators of a [`MetricsConfig`] read from the
//!    official text-format configs ([`config`], [`likelihood`]), and the meta-metric,
//!    minADE and event rates: a [`SimAgentMetrics`]. [`SimAgentsBucketedMetrics`]
//!    groups it as the leaderboard does, [`average_metrics`] averages over scenes.
//!
//! [`score_scenario`] runs steps 2 and 3; computing the features once and scoring them
//! under several configs is cheaper. The outputs serialise with the proto field names.
//! [`chart::bar_chart`] draws several agents' scores side by side.
//!
//! # Fidelity
//! The definitions, masks and even the quirks of the official code are reproduced
//! (documented in each module), and the arithmetic is `f32` in the official order:
//! on the shipped golden scene every feature and every score matches the official
//! values to 1e-4. Deliberate differences, all in cases the official code rejects with
//! an exception:
//! - a scene without surface-street lanes or traffic-signal states scores no
//!   red-light violations (officially an error);
//! - non-finite simulated coordinates are rejected up front;
//! - any number of rollouts (at least one) is scored; the challenge requires 32.
//!
//! The only intentional change of order: objects that are simulated but not evaluated
//! keep their rollout order (officially an unordered set), which can only matter for an
//! exact tie in the time-to-collision search.

pub mod chart;
pub mod config;
pub mod features;
#[cfg(test)]
mod golden_tests;
pub mod likelihood;
#[cfg(test)]
mod red_light_tests;
pub mod report;
pub mod rollouts;
pub mod scene;
pub mod textformat;

pub use config::{Feature, MetricsConfig};
pub use features::{MetricFeatures, ScenarioFeatures};
pub use report::{AgentScores, MetricsReport};
pub use rollouts::{JointScene, ScenarioRollouts, SimulatedTrajectory, Submission};
pub use scene::{
    EventIndications, SimAgentMetrics, SimAgentsBucketedMetrics, average_metrics, score_features,
};

use crate::error::DataError;
use crate::scenario::Scene;

/// Why a scene could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A file could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The scene lacks what the metrics need.
    #[error("scene {scenario_id}: {message}")]
    Scene {
        /// The scene.
        scenario_id: String,
        /// What is missing.
        message: String,
    },
    /// The rollouts do not fit the scene.
    #[error("rollouts of scene {scenario_id}: {message}")]
    Rollouts {
        /// The scene.
        scenario_id: String,
        /// What does not fit.
        message: String,
    },
    /// The configuration cannot score a feature.
    #[error("metrics config {config}, feature {feature}: {message}")]
    Config {
        /// The config's name.
        config: String,
        /// The feature.
        feature: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A scene's scores and their buckets.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SceneScores {
    /// The per-feature scores.
    #[serde(rename = "SimAgentMetrics")]
    pub metrics: SimAgentMetrics,
    /// The leaderboard buckets.
    #[serde(rename = "SimAgentsBucketedMetrics")]
    pub bucketed: SimAgentsBucketedMetrics,
}

impl SceneScores {
    /// Buckets `metrics` under `config`.
    ///
    /// # Errors
    /// As [`SimAgentsBucketedMetrics::from_metrics`].
    pub fn new(config: &MetricsConfig, metrics: SimAgentMetrics) -> Result<Self, MetricsError> {
        let bucketed = SimAgentsBucketedMetrics::from_metrics(config, &metrics)?;
        Ok(Self { metrics, bucketed })
    }
}

/// Features and scores of one scene's rollouts under `config`.
///
/// # Errors
/// As [`ScenarioFeatures::compute`] and [`score_features`].
pub fn score_scenario(
    config: &MetricsConfig,
    scene: &Scene,
    rollouts: &ScenarioRollouts,
) -> Result<SimAgentMetrics, MetricsError> {
    let features = ScenarioFeatures::compute(scene, rollouts)?;
    score_features(config, &features)
}
