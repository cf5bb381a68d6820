//! Self-play PPO anchored to a reference model: SPACeR, and its baselines PPO and
//! HR-PPO (docs/design.md section 1.1).
//!
//! One update:
//!
//! 1. **Worlds.** `env.worlds` scenes are drawn from the training split (a real one
//!    with probability `env.real_fraction`, recordings balanced; else a synthetic
//!    one), from a generator seeded by the run seed and the update number.
//! 2. **Experience** ([`rollout`]): one full episode per world in the simulator
//!    (11 logged steps, 80 simulated). Every vehicle, pedestrian and cyclist valid at
//!    the current step is controlled (up to `env.max_controlled`), the others replay
//!    their log; each acting agent observes its surroundings (spacer-core's builder)
//!    and draws a token from the policy (spacer-core's forward pass, the deployed
//!    function) every 0.2 s. Task reward: `goal` once, `collision` and `offroad` per
//!    decision with the event; what happens after a goal or a collision follows
//!    `env.on_goal` / `env.on_collision` (defaults: removed, GPUDrive's).
//! 3. **Anchor** ([`anchor`]): for SPACeR, the centralized reference model scores the
//!    finished episodes once, teacher-forced on the executed tokens, batched, without
//!    gradients: `alpha * log pi_ref(a_t | s_t)` joins the reward, and
//!    `pi_ref(. | s_t)` is kept for the loss. For HR-PPO, a behaviour-cloned policy
//!    (width 128) gives `pi_bc(. | o_t)`.
//! 4. **Update** ([`learner`], [`loss`]): GAE, then `epochs` passes of shuffled
//!    minibatches of PPO's clipped loss, value loss, entropy bonus and
//!    `beta * KL(pi_theta || pi_anchor)` (exact over the K tokens), global gradient
//!    clipping, Adam. The native CPU learner (or burn, on CUDA); afterwards the core
//!    acts with exactly the new parameters.
//! 5. **Bookkeeping** ([`train`](mod@train)): curves (CSV + PNG), a held-out WOSAC evaluation
//!    every `run.eval_every` updates, an atomic checkpoint every
//!    `run.checkpoint_every`; a run resumed after a crash continues exactly (every
//!    random draw is a function of the seed and the update number). The result is
//!    `policy.spw`, a weights blob the C ABI, the firmware and `spacer eval` load.

pub mod anchor;
pub mod bench;
pub mod config;
pub mod learner;
pub mod loss;
pub mod rollout;
pub mod train;

pub use config::{LearnerKind, Method, PpoConfig};
pub use train::{
    AnchorFiles, Control, HeldOut, PpoError, PpoReport, Timing, TrainInputs, train,
    train_with_files,
};

#[cfg(test)]
mod tests;
