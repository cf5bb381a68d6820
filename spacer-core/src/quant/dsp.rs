//! Cortex-M4 DSP kernels (placeholder until the assembly lands).
pub use super::portable::{dense, dense_tile};
