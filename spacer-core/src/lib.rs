//! # spacer-core
//!
//! The deployable half of spacer: everything a SPACeR sim agent needs to see, decide
//! and move, in `no_std` Rust that never allocates and never panics on bad input. It
//! runs the same code in the trainer's simulator, in a C++ simulator through the C ABI,
//! and on a Cortex-M4F hardware-in-the-loop rig.
//!
//! A tour of the layers, bottom up:
//!
//! - [`math`]: the scalar functions every build shares (libm by default, so host and
//!   firmware compute bit-identical results), angle wrapping, and a tiny [`math::Rng`].
//! - [`geometry`]: vectors, poses, oriented boxes (separating-axis overlap, signed
//!   distance) and segments.
//! - [`agent`]: agent kinds and kinematic state.
//! - [`kinematics`]: applying a trajectory token, and two kinematic bicycle models
//!   (GPUDrive's classic form, Waymax's invertible form).
//! - [`tokenizer`]: the motion-token [`tokenizer::Vocabulary`], closed-loop encoding of
//!   logged trajectories and decoding back to poses.
//! - [`observation`]: the ego / partner / road features of the late-fusion policy, built
//!   from a snapshot into a caller-owned buffer.
//! - [`policy`]: the late-fusion network's forward pass (65,289 parameters at K = 200),
//!   single and batched, and action selection.
//! - [`weights`]: the postcard weights blob (header, vocabulary, parameters), validated
//!   once on load, readable in place from flash.
//! - `ffi` (feature `ffi`): the C ABI over all of the above.
//!
//! Storage always belongs to the caller; capacities are constants; inputs are checked
//! once where they enter (blob, observation buffer, FFI pointers) and errors are small
//! `Copy` enums.
//!
//! ## Features
//! - `std`: `std::error::Error` impls; lets the crate be built as a host staticlib.
//! - `ffi`: the `extern "C"` API (`include/spacer.h`).
//! - `fast-math`: micromath approximations instead of libm (faster on small cores, not
//!   bit-identical to the default build).

#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod agent;
#[cfg(feature = "ffi")]
pub mod ffi;
pub mod geometry;
pub mod kinematics;
pub mod math;
pub mod observation;
pub mod policy;
pub mod quant;
#[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
pub mod simd;
pub mod tokenizer;
pub mod weights;
