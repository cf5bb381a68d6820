//! The trainable late-fusion policy network (GPUDrive's, docs/design.md section 1.4):
//! the function spacer-core's [`spacer_core::policy::Policy`] computes, in forms a
//! learner can differentiate.
//!
//! - [`net`]: the network in burn, at any encoder width (64 is the policy itself,
//!   128 HR-PPO's behaviour-cloned reference), convertible to and from the core's flat
//!   parameter layout at width 64. What behaviour cloning trains, and the PPO learner
//!   on CUDA.
//! - [`native`]: a hand-written CPU forward and backward pass of the same network
//!   over *packed* observations (only occupied partner and road slots are stored and
//!   computed; max-pool gradients reach one slot per channel), with Adam: the PPO
//!   learner on the CPU. A test holds its gradients to burn's autodiff.
//!
//! Every form is held to the core's forward pass by parity tests on real
//! observations, so what is trained is what is deployed.

pub mod native;
pub mod net;

use serde::{Deserialize, Serialize};
use spacer_core::policy::PolicyDims;

pub use net::{Encoder, LateFusion, late_fusion_params};

/// What a late-fusion network is: encoder width, observation slots and action count,
/// and the observation radius its observations were built with.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LateFusionShape {
    /// Encoder width.
    pub width: usize,
    /// Observation slots and action count.
    pub dims: PolicyDims,
    /// Observation radius (m).
    pub radius: f32,
}

#[cfg(test)]
pub(crate) mod tests;
