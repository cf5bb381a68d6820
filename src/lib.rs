//! # spacer
//!
//! SPACeR sim agents in Rust: the `no_std` policy core ([`spacer_core`]) and the
//! trainer with its simulator, metrics and command line ([`spacer_train`]). This facade
//! re-exports both and owns the cross-crate tests and benchmarks.

pub use spacer_core;
pub use spacer_train;
