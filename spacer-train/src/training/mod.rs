//! What every training loop here shares: the run skeleton ([`run`]: output
//! directory, resume, evaluation cadence, curves, progress, atomic checkpoints), the
//! backend choice ([`backend`]), the learning-rate schedule, global gradient-norm
//! clipping, label-smoothed cross entropy and finiteness checks.
//!
//! burn's `train` feature is not used (docs/design.md section 5): the loops in
//! [`crate::bc`], [`crate::reference`] and [`crate::ppo`] are written by hand on these
//! pieces.

pub mod backend;
pub mod checkpoint;
pub mod curves;
pub mod run;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

pub use backend::{BackendError, BackendJob, Cpu, CpuTrain, DeviceKind, cuda_probe, run_on};
#[cfg(feature = "cuda")]
pub use backend::{Gpu, GpuTrain};
pub use run::{Resumed, Run, RunError, RunOptions, RunSpec, RunState, ensure_finite};

/// Linear warm-up to `peak`, then cosine decay to `peak * final_fraction` at `total`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CosineSchedule {
    /// Peak learning rate.
    pub peak: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Total steps.
    pub total: usize,
    /// Learning rate at the end, as a fraction of the peak.
    pub final_fraction: f64,
}

impl CosineSchedule {
    /// The learning rate at `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1);
        let p = ((step - self.warmup) as f64 / span as f64).min(1.0);
        let floor = self.peak * self.final_fraction;
        floor + (self.peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
}

/// Reads every parameter once.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Initialises every lazily initialised parameter of `module` now. burn initialises
/// parameters on first use, and clones made before that initialise *separately*
/// (different values): call this on a fresh module before cloning it.
pub fn materialize<B: Backend, M: burn::module::Module<B>>(module: &M) {
    module.visit(&mut Materialize);
}

/// Counts parameters that are NaN or infinite.
struct NonFinite {
    count: usize,
}

impl<B: Backend> ModuleVisitor<B> for NonFinite {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let v = to_vec(param.val());
        self.count += v.iter().filter(|x| !x.is_finite()).count();
    }
}

/// True when every parameter of `module` is finite.
pub fn module_is_finite<B: Backend, M: burn::module::Module<B>>(module: &M) -> bool {
    let mut v = NonFinite { count: 0 };
    module.visit(&mut v);
    v.count == 0
}

/// Sums the squares of every gradient of `module`'s parameters.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let s = g.square().sum();
            self.sum = Some(match self.sum.take() {
                Some(acc) => acc + s,
                None => s,
            });
        }
    }
}

/// Multiplies every gradient by a factor.
struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f32,
    _b: core::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Clips the *global* gradient norm (over all parameters together, as PyTorch's
/// `clip_grad_norm_`; burn's own clipping is per tensor) to `max_norm`. Returns the
/// norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f32,
) -> f32 {
    let mut v = SquaredNorm::<B> { grads, sum: None };
    module.visit(&mut v);
    let norm = v
        .sum
        .map(|s| s.into_scalar().to_f32_lossy().sqrt())
        .unwrap_or(0.0);
    if norm.is_finite() && norm > max_norm && max_norm > 0.0 {
        let mut s = Scale::<B> {
            grads,
            factor: max_norm / (norm + 1e-6),
            _b: core::marker::PhantomData,
        };
        module.visit(&mut s);
    }
    norm
}

/// Converts a backend scalar to f32.
trait ToF32 {
    fn to_f32_lossy(self) -> f32;
}

impl<E: burn::tensor::ElementConversion> ToF32 for E {
    fn to_f32_lossy(self) -> f32 {
        self.elem::<f32>()
    }
}

/// Cross entropy with label smoothing `eps`, averaged over the rows where `mask` is
/// 1: `-(1 - eps) log p[target] - eps/K sum_j log p[j]`.
///
/// # Shapes
/// `logits`: `[n, k]`; `targets`: `[n]`; `mask`: `[n]` (1.0 or 0.0).
pub fn smoothed_cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    mask: Tensor<B, 1>,
    eps: f32,
) -> Tensor<B, 1> {
    let [n, _k] = logits.dims();
    let logp = burn::tensor::activation::log_softmax(logits, 1);
    let picked = logp.clone().gather(1, targets.reshape([n, 1])).reshape([n]);
    let uniform = logp.mean_dim(1).reshape([n]);
    let per_row = picked.mul_scalar(-(1.0 - eps)) - uniform.mul_scalar(eps);
    let count = mask.clone().sum().clamp_min(1.0);
    (per_row * mask).sum() / count
}

/// Moves a training loop's progress bar (if any) to `step` and shows the running
/// means of the loss and the accuracy summed over `count` steps.
pub fn show_progress(
    progress: Option<&indicatif::ProgressBar>,
    step: usize,
    loss_sum: f64,
    acc_sum: f64,
    count: usize,
) {
    let Some(pb) = progress else {
        return;
    };
    pb.set_position(step as u64);
    if count > 0 {
        pb.set_message(format!(
            "loss {:.3} acc {:.3}",
            loss_sum / count as f64,
            acc_sum / count as f64
        ));
    }
}

/// An `[n]` integer tensor from `i64` values.
pub fn int_tensor<B: Backend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// A float tensor of shape `shape` from row-major values.
pub fn float_tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The values of a float tensor, row-major.
pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};

    type B = CpuTrain;

    #[test]
    fn schedule_warms_up_then_decays() {
        let s = CosineSchedule {
            peak: 1e-3,
            warmup: 10,
            total: 110,
            final_fraction: 0.1,
        };
        assert!((s.at(0) - 1e-4).abs() < 1e-12);
        assert!((s.at(9) - 1e-3).abs() < 1e-12);
        assert!((s.at(60) - 0.55e-3).abs() < 1e-9);
        assert!((s.at(110) - 1e-4).abs() < 1e-12 && (s.at(500) - 1e-4).abs() < 1e-12);
        assert!(s.at(30) > s.at(31));
    }

    #[test]
    fn smoothed_cross_entropy_matches_formula() {
        let dev = Default::default();
        let logits = float_tensor::<Cpu, 2>(vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0], [2, 3], &dev);
        let targets = int_tensor::<Cpu>(vec![2, 0], &dev);
        let mask = float_tensor::<Cpu, 1>(vec![1.0, 0.0], [2], &dev);
        let l = smoothed_cross_entropy(logits, targets, mask, 0.1).into_scalar();
        let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        let lp = [1.0 - lse, 2.0 - lse, 3.0 - lse];
        let want = -0.9 * lp[2] - 0.1 * (lp.iter().sum::<f64>() / 3.0);
        assert!((l as f64 - want).abs() < 1e-5, "{l} {want}");
    }

    #[test]
    fn global_clipping_scales_all_gradients_together() {
        let dev = Default::default();
        let lin: Linear<B> = LinearConfig::new(3, 2).init(&dev);
        let x = float_tensor::<B, 2>(vec![10.0, 20.0, 30.0], [1, 3], &dev);
        let loss = lin.forward(x).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &lin);
        let before = clip_global_norm(&lin, &mut grads, 1.0);
        // d/dw = x for each of 2 outputs, d/db = 1: norm sqrt(2 * 1400 + 2).
        assert!(
            (before - (2.0f32 * 1400.0 + 2.0).sqrt()).abs() < 1e-2,
            "{before}"
        );
        let after = clip_global_norm(&lin, &mut grads, 1.0);
        assert!((after - 1.0).abs() < 1e-3, "{after}");
        assert_eq!(lin.num_params(), 8);
    }
}
