//! The batched CPU simulator.
//!
//! Many worlds, each a [`Scene`](crate::scenario::Scene), are stepped together, in
//! parallel across worlds (rayon). A run follows the WOMD / WOSAC schedule:
//!
//! 1. Steps `0..=current_step` (0..=10 for WOMD) replay the log for every object.
//! 2. Then [`SimConfig::sim_steps`] (80) steps are simulated. The controlled agents
//!    (vehicles, pedestrians and cyclists valid at the current step, at most
//!    [`SimConfig::max_controlled`] per world) act every second step, at 5 Hz: at
//!    each decision the [`SimAgent`] returns one [`Action`] per agent, typically a
//!    trajectory token applied with [`spacer_core::kinematics::apply_token`] (poses
//!    at +0.1 s and +0.2 s, velocity by finite difference). Every other object
//!    replays its log, appearing and disappearing with its valid flags.
//! 3. After every step each controlled agent's events are detected
//!    ([`Events`]): a collision (its oriented box overlaps another object's), an
//!    off-road contact (a vehicle's box touches a road edge; GPUDrive skips
//!    pedestrians and cyclists against every road element and vehicles against
//!    everything but road edges, and so does this simulator), and reaching the goal
//!    (within [`SimConfig::goal_radius`] of the last valid logged position).
//!    The [`CollisionBehaviour`] then ignores, stops or removes the agent (a road
//!    edge contact counts as a collision, as in GPUDrive). [`SimConfig::box_scale`]
//!    shrinks the boxes used here and in the observation (GPUDrive's 0.7); the
//!    output keeps the true boxes.
//!
//! # Observations
//!
//! At each decision step the observations of all controlled agents of all worlds go
//! into one contiguous `f32` buffer ([`ObservationBatch`], `[rows][obs_len]`, rows
//! mapped to (world, agent) by [`RowIndex`]), each built by
//! [`spacer_core::observation::build`] (there is no second implementation). The
//! candidates come from spatial indexes ([`grid`]): a per-scene road-segment grid
//! whose cells hold contiguous, pre-sorted candidate lists (built once, lazily) and
//! a per-world object grid rebuilt every step; so neither partners nor road segments
//! are found by scanning every entity. Goal dropout hides an agent's goal for the
//! episode with probability [`SimConfig::goal_dropout`] (seeded).
//!
//! # Sim agents
//!
//! [`SimAgent`] is one trait for decentralized and centralized models: it is called
//! once per decision for all rows of all worlds, with the worlds themselves (full
//! state, trajectories, executed tokens) and, if it asks, the observation buffer. See
//! [`agents`] for the provided ones: log replay, constant velocity, logged tokens,
//! random tokens and the policy of a weights blob.
//!
//! # Output
//!
//! [`Simulator::rollouts`] returns one [`Rollout`] per world: every object's
//! trajectory (the first `current_step + 1` states from the log), the tokens each
//! controlled agent executed and its events per step. See [`rollout`].
//!
//! # Determinism and allocation
//!
//! A run depends only on the scenes, the config, the agent and the seed: every random
//! draw comes from [`derive_seed`] over (seed, world, agent, decision), never from
//! the thread schedule. Stepping reuses every buffer; the only allocations after
//! the first episode are the road grid's lazily built cell lists.
//!
//! ```
//! use std::sync::Arc;
//! use spacer_train::sim::{ConstantVelocity, SimConfig, Simulator, testing};
//!
//! let scene = Arc::new(testing::straight_road(3, 2));
//! let mut sim = Simulator::new(&[Arc::clone(&scene), scene], SimConfig::default())?;
//! let stats = sim.run(&mut ConstantVelocity, 7)?;
//! assert_eq!(stats.agent_steps(), 2 * 6 * 80);
//! let rollouts = sim.rollouts();
//! assert_eq!(rollouts[0].objects[0].states.len(), 91);
//! # Ok::<(), spacer_train::sim::SimError>(())
//! ```

pub mod agents;
pub mod batch;
pub mod config;
pub mod grid;
pub mod rollout;
pub mod scene_index;
pub mod simulator;
pub mod testing;
pub mod world;

#[cfg(test)]
mod tests;

pub use agents::{
    Action, ConstantVelocity, DecisionBatch, LogReplay, LoggedTokens, PolicyAgent, RandomTokens,
    SimAgent,
};
pub use batch::{ObservationBatch, RowIndex};
pub use config::{CollisionBehaviour, ControlSelection, GoalBehaviour, SimConfig};
pub use rollout::{AgentRecord, Events, NO_TOKEN, Rollout, SimulatedObject};
pub use scene_index::SceneIndex;
pub use simulator::{RunStats, Simulator};
pub use world::World;

use spacer_core::observation::ObservationError;
use spacer_core::policy::PolicyError;
use spacer_core::tokenizer::TokenizerError;

/// Why a simulation could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A configuration value is out of range.
    #[error("simulator config: {0}")]
    Config(String),
    /// A scene cannot be simulated.
    #[error("scene {scene}: {message}")]
    Scene {
        /// The scene's id.
        scene: String,
        /// What is wrong.
        message: String,
    },
    /// The observation builder refused.
    #[error("observation: {0}")]
    Observation(ObservationError),
    /// The policy forward pass or token selection refused.
    #[error("policy: {0}")]
    Policy(PolicyError),
    /// Tokenizing a log failed.
    #[error("tokenizer: {0}")]
    Tokenizer(TokenizerError),
    /// A sim agent could not act.
    #[error("sim agent {agent}: {message}")]
    Agent {
        /// The agent's name.
        agent: String,
        /// What went wrong.
        message: String,
    },
    /// A step got the wrong number of actions.
    #[error("expected one action per row ({expected}), got {got}")]
    ActionCount {
        /// Rows.
        expected: usize,
        /// Actions given.
        got: usize,
    },
}

/// A seed for one random stream: `seed` mixed with each of `stream` (world, agent,
/// decision, ...) by SplitMix64 steps. Different streams give independent-looking
/// seeds; the same stream always gives the same seed.
pub fn derive_seed(seed: u64, stream: &[u64]) -> u64 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    stream.iter().fold(mix(seed), |acc, &s| {
        mix(acc ^ mix(s.wrapping_add(0x5851_F42D_4C95_7F2D)))
    })
}
