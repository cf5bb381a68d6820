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
//! (documented in each module), and the arithmetic is `f32` in the official order. On
//! every shipped golden case of scene 637f20cafde22ff8 (constant velocity, logged,
//! noisy log, and a self-driving car that drives through its red arrow) every score and
//! bucket matches the official values to 1e-4 under the 2025 and 2024 configs, and the
//! per-object collision, off-road and red-light flags and the per-step features equal
//! the official ones (`cargo test -p spacer-train --lib metrics::golden_tests`).
//!
//! Where the official metric code (`compute_scenario_metrics_for_bundle`, which does
//! not run the submission validator) does something else:
//! - **Non-finite simulated coordinates**: officially computed on, NaN flowing into the
//!   features and scores; spacer rejects the rollouts and names the rollout, object,
//!   field and step (stricter: a NaN position makes the object's features and its
//!   neighbours' distances meaningless while the scores still look like numbers).
//! - **Other object sets**: a rollout that leaves out a simulated object that is not
//!   evaluated is officially scored without it, and one that adds an object of the
//!   scene not valid at the current step is officially scored with it (its logged
//!   history prefixed); spacer rejects both (stricter, as the official submission
//!   validator `validate_scenario_rollouts` is: either silently changes every
//!   collision, distance and time-to-collision score of the objects around it). An
//!   unknown or repeated object or a missing evaluated object is an error in both;
//!   trajectories of another length than the scene's future are rejected (the
//!   submission validator requires 80 steps).
//! - **Scenes without surface-street lanes or signal states**: no red-light
//!   violations, as in the official code for a scene whose signal states are empty and,
//!   since the fix announced in waymo-open-dataset issue #919, for a scene without
//!   surface-street lanes or signal-state steps (releases before it, such as commit
//!   508fb26, raise an error there).
//! - **Number of rollouts**: any number of at least one is scored, as by the official
//!   metric code (the submission validator requires 32).
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
pub mod submissions;
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
