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
//! - [`bc`]: behaviour cloning of the late-fusion policy (burn).
//! - [`training`]: what the hand-written training loops share.
//! - [`cli`]: the `spacer` command line.
//!
//! What an agent sees and does (observation, tokens, kinematics, the policy forward
//! pass) is never reimplemented here: it comes from [`spacer_core`].

#![warn(missing_docs)]

pub mod bc;
pub mod cli;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod metrics;
pub mod paths;
pub mod plot;
pub mod policy_file;
pub mod reference;
pub mod render;
pub mod scenario;
pub mod sim;
pub mod tokenized;
pub mod training;
pub mod vocab;

pub use error::{DataError, Location};
