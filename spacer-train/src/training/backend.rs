//! The one place that chooses where a learner runs: burn's ndarray backend on the
//! CPU, or burn's CUDA backend (feature `cuda`), with the probe that turns a missing
//! driver into an error instead of a panic.
//!
//! A learner written once over a generic [`AutodiffBackend`] implements
//! [`BackendJob`]; [`run_on`] picks the backend from a [`DeviceKind`].

use burn::tensor::backend::AutodiffBackend;

/// The CPU backend (ndarray, f32).
pub type Cpu = burn::backend::NdArray<f32>;
/// The CPU backend with automatic differentiation.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
/// burn's CUDA backend (feature `cuda`; needs libcuda and libnvrtc at run time).
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda<f32, i32>;
/// The CUDA backend with automatic differentiation (feature `cuda`).
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// Where to train.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// burn's ndarray backend (and the hand-written CPU learner where there is one).
    #[default]
    Cpu,
    /// burn's CUDA backend (build with `--features cuda`).
    Cuda,
}

/// Why a backend cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The binary was built without the `cuda` feature.
    #[error("--device cuda needs a build with `--features cuda`")]
    CudaNotBuilt,
    /// The CUDA driver library cannot be loaded here.
    #[error("--device cuda: libcuda is not available on this machine (no NVIDIA driver)")]
    CudaUnavailable,
}

/// Whether the CUDA backend can run here: built with `cuda` and the driver library
/// loads.
///
/// # Errors
/// [`BackendError`] saying which of the two is missing.
pub fn cuda_probe() -> Result<(), BackendError> {
    #[cfg(feature = "cuda")]
    {
        // SAFETY: only asks the dynamic loader whether libcuda can be opened; no CUDA
        // call is made.
        if unsafe { cudarc::driver::sys::is_culib_present() } {
            Ok(())
        } else {
            Err(BackendError::CudaUnavailable)
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(BackendError::CudaNotBuilt)
    }
}

/// A computation written once for any autodiff backend.
pub trait BackendJob {
    /// What it returns.
    type Output;
    /// Its error type (which must hold a [`BackendError`]).
    type Error: From<BackendError>;
    /// Runs on backend `B` at `device`.
    ///
    /// # Errors
    /// Whatever the job reports.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output, Self::Error>;
}

/// Runs `job` on the backend `kind` names.
///
/// # Errors
/// [`BackendError`] (converted) when the backend cannot be used; the job's errors.
pub fn run_on<J: BackendJob>(kind: DeviceKind, job: J) -> Result<J::Output, J::Error> {
    match kind {
        DeviceKind::Cpu => job.run::<CpuTrain>(Default::default()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            cuda_probe()?;
            job.run::<GpuTrain>(burn::backend::cuda::CudaDevice::default())
        }
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => Err(BackendError::CudaNotBuilt.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Width;

    impl BackendJob for Width {
        type Output = usize;
        type Error = BackendError;
        fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<usize, BackendError> {
            let t = burn::tensor::Tensor::<B, 1>::zeros([3], &device);
            Ok(t.dims()[0])
        }
    }

    #[test]
    fn cpu_runs_and_cuda_fails_cleanly_without_a_gpu() {
        assert_eq!(run_on(DeviceKind::Cpu, Width), Ok(3));
        if cuda_probe().is_err() {
            let e = run_on(DeviceKind::Cuda, Width).unwrap_err();
            assert!(e.to_string().contains("--device cuda"), "{e}");
        }
    }
}
