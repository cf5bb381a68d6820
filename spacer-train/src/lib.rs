//! # spacer-train
//!
//! The std side of spacer: everything that needs a heap, files or a GPU.
//!
//! - [`scenario`]: the scene model and its readers (WOMD TFRecord, GPUDrive JSON,
//!   INTERACTION), the scene cache, and the synthetic scene generator.
//! - [`policy_file`]: spacer-core's weights blob on disk.
//! - [`sim`]: the batched CPU simulator and its sim agents.
//! - [`render`]: bird's-eye PNG / SVG renders of scenes.
//! - [`plot`]: the bitmap font and colours every PNG shares.
//! - [`tokenized`], [`vocab`]: logged motion as tokens; building the vocabulary.
//! - [`reference`](mod@reference): the centralized reference motion model (burn).
//! - [`late_fusion`]: the trainable late-fusion policy network (burn, and a
//!   hand-written CPU forward/backward pass).
//! - [`bc`]: behaviour cloning of the late-fusion policy (burn).
//! - [`bench`](mod@bench): the simulator's throughput (training's is [`ppo::bench`]).
//! - [`eval`]: closed-loop evaluation with the WOSAC metrics, and the one registry of
//!   sim agents.
//! - [`training`]: the run skeleton and what every training loop shares.
//! - [`env`](mod@env): the simulator as a vector environment (tokens in; observations, the
//!   trainer's rewards, done flags and events out), what the Python package wraps.
//! - [`demo`]: the main job on embedded defaults.
//! - [`limits`]: the documented limits on sizes and numbers of everything read.
//! - [`machine`]: process CPU time and load average, for the benchmarks' reports.
//! - [`cli`]: the `spacer` command line.
//!
//! What an agent sees and does (observation, tokens, kinematics, the policy forward
//! pass) is never reimplemented here: it comes from [`spacer_core`].

#![warn(missing_docs)]

pub mod bc;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod env;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod late_fusion;
pub mod limits;
pub mod machine;
pub mod metrics;
pub mod paths;
pub mod plot;
pub mod policy_file;
pub mod ppo;
pub mod quantize;
pub mod reference;
pub mod render;
pub mod scenario;
pub mod sim;
pub mod tokenized;
pub mod training;
pub mod vocab;

pub use error::{DataError, Location};
