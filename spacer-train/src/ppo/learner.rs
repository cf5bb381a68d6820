//! The learners: what turns a batch of experience into new policy parameters.
//!
//! Both run PPO's epochs over shuffled minibatches with the loss of [`super::loss`],
//! global gradient clipping and Adam, and keep the parameters in spacer-core's flat
//! layout after every update, so that the next rollout acts with exactly what was
//! learned:
//!
//! - [`NativeLearner`]: the hand-written CPU passes of
//!   [`crate::late_fusion::native`] (packed observations, sparse max-pool gradients):
//!   the default on the CPU.
//! - [`BurnLearner`]: burn's autodiff over dense observations, on any backend: the
//!   learner on CUDA (`--device cuda`), and on the CPU the baseline the native one is
//!   measured against.

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use spacer_core::policy::PolicyDims;

use super::anchor::AnchorScores;
use super::config::PpoSection;
use super::loss::{LossStats, LossWeights, PpoLoss};
use super::rollout::Experience;
use crate::late_fusion::LateFusion;
use crate::late_fusion::native::{Adam, NativeNet, clip_global_norm};
use crate::training::checkpoint::{record_from_bytes, record_to_bytes};
use crate::training::{float_tensor, int_tensor, to_vec};

/// What one update did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UpdateStats {
    /// Summed loss statistics over every minibatch of every epoch.
    pub loss: LossStats,
    /// Mean gradient norm before clipping.
    pub grad_norm: f64,
    /// Minibatch steps.
    pub steps: usize,
}

/// Why an update failed.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The loss or the gradient became NaN or infinite.
    #[error("training diverged: the {what} is {value} (lower the learning rate)")]
    Diverged {
        /// Loss or gradient norm.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// A state does not fit.
    #[error("{0}")]
    State(String),
}

/// One update's inputs.
#[derive(Clone, Copy, Debug)]
pub struct UpdateInput<'a> {
    /// The batch.
    pub exp: &'a Experience,
    /// Advantages (not normalised).
    pub advantages: &'a [f32],
    /// Returns.
    pub returns: &'a [f32],
    /// The anchor's distributions for the KL term, if any.
    pub anchor: Option<&'a AnchorScores>,
    /// The KL weight.
    pub beta: f32,
    /// Learning rate.
    pub lr: f64,
    /// Seed of the minibatch shuffles.
    pub seed: u64,
}

/// A PPO learner.
pub trait Learner {
    /// The policy's parameters in spacer-core's layout.
    fn params(&self) -> &[f32];
    /// One PPO update on a batch.
    ///
    /// # Errors
    /// [`LearnError::Diverged`] on a non-finite loss or gradient.
    fn update(
        &mut self,
        input: &UpdateInput<'_>,
        ppo: &PpoSection,
    ) -> Result<UpdateStats, LearnError>;
    /// The optimizer state, serialized (for checkpoints).
    ///
    /// # Errors
    /// An encoding failure.
    fn optimizer_bytes(&self) -> Result<Vec<u8>, String>;
    /// Restores parameters and optimizer state from a checkpoint.
    ///
    /// # Errors
    /// [`LearnError::State`] when they do not fit.
    fn restore(&mut self, params: &[f32], optimizer: &[u8]) -> Result<(), LearnError>;
}

/// The minibatches of one epoch: a seeded permutation of the samples cut into
/// pieces of `size` (the last one shorter).
pub fn minibatches(n: usize, size: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order.chunks(size.max(1)).map(|c| c.to_vec()).collect()
}

/// Advantages of `rows` normalised to mean 0 and standard deviation 1 (or left as
/// they are), written at their sample indices into `out`.
pub fn normalise(advantages: &[f32], rows: &[usize], on: bool, out: &mut [f32]) {
    if !on || rows.len() < 2 {
        for &i in rows {
            out[i] = advantages[i];
        }
        return;
    }
    let n = rows.len() as f64;
    let mean = rows.iter().map(|&i| advantages[i] as f64).sum::<f64>() / n;
    let var = rows
        .iter()
        .map(|&i| (advantages[i] as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let inv = 1.0 / (var.sqrt() + 1e-8);
    for &i in rows {
        out[i] = ((advantages[i] as f64 - mean) * inv) as f32;
    }
}

fn weights(ppo: &PpoSection, beta: f32) -> LossWeights {
    LossWeights {
        clip: ppo.clip,
        vf_coef: ppo.vf_coef,
        ent_coef: ppo.ent_coef,
        beta,
    }
}

/// The hand-written CPU learner.
#[derive(Debug)]
pub struct NativeLearner {
    net: NativeNet,
    adam: Adam,
    grads: Vec<f32>,
    buffers: Vec<Vec<f32>>,
    norm_adv: Vec<f32>,
}

impl NativeLearner {
    /// A learner starting from `params` (core layout, width 64).
    ///
    /// # Errors
    /// [`LearnError::State`] when the parameters do not fit `dims`.
    pub fn new(dims: PolicyDims, params: Vec<f32>) -> Result<Self, LearnError> {
        let net = NativeNet::new(64, dims, params).map_err(LearnError::State)?;
        let n = net.params.len();
        Ok(Self {
            net,
            adam: Adam::new(n),
            grads: vec![0.0; n],
            buffers: Vec::new(),
            norm_adv: Vec::new(),
        })
    }
}

impl Learner for NativeLearner {
    fn params(&self) -> &[f32] {
        &self.net.params
    }

    fn update(
        &mut self,
        input: &UpdateInput<'_>,
        ppo: &PpoSection,
    ) -> Result<UpdateStats, LearnError> {
        let exp = input.exp;
        let n = exp.len();
        self.norm_adv.resize(n, 0.0);
        let mut out = UpdateStats::default();
        for epoch in 0..ppo.epochs {
            let seed = crate::sim::derive_seed(input.seed, &[epoch as u64]);
            for rows in minibatches(n, ppo.minibatch, seed) {
                normalise(input.advantages, &rows, ppo.norm_adv, &mut self.norm_adv);
                let loss = PpoLoss {
                    weights: weights(ppo, input.beta),
                    actions: &exp.actions,
                    old_logp: &exp.logp,
                    advantages: &self.norm_adv,
                    returns: input.returns,
                    anchor: input.anchor,
                    scale: 1.0 / rows.len() as f32,
                };
                let (value, stats) = self.net.loss_and_grad(
                    &exp.obs,
                    &rows,
                    &loss,
                    &mut self.grads,
                    &mut self.buffers,
                );
                if !value.is_finite() {
                    return Err(LearnError::Diverged {
                        what: "loss",
                        value,
                    });
                }
                let norm = clip_global_norm(&mut self.grads, ppo.max_grad_norm);
                if !norm.is_finite() {
                    return Err(LearnError::Diverged {
                        what: "gradient norm",
                        value: norm as f64,
                    });
                }
                self.adam
                    .step(&mut self.net.params, &self.grads, input.lr as f32);
                out.loss += stats;
                out.grad_norm += norm as f64;
                out.steps += 1;
            }
        }
        if out.steps > 0 {
            out.grad_norm /= out.steps as f64;
        }
        if self.net.params.iter().any(|v| !v.is_finite()) {
            return Err(LearnError::Diverged {
                what: "policy",
                value: f64::NAN,
            });
        }
        Ok(out)
    }

    fn optimizer_bytes(&self) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(&self.adam).map_err(|e| e.to_string())
    }

    fn restore(&mut self, params: &[f32], optimizer: &[u8]) -> Result<(), LearnError> {
        if params.len() != self.net.params.len() {
            return Err(LearnError::State(format!(
                "{} parameters, the policy has {}",
                params.len(),
                self.net.params.len()
            )));
        }
        let adam: Adam =
            postcard::from_bytes(optimizer).map_err(|e| LearnError::State(e.to_string()))?;
        if adam.m.len() != params.len() || adam.v.len() != params.len() {
            return Err(LearnError::State("optimizer state of another size".into()));
        }
        self.net.params.copy_from_slice(params);
        self.adam = adam;
        Ok(())
    }
}

/// The burn learner (any backend).
pub struct BurnLearner<B: AutodiffBackend> {
    net: LateFusion<B>,
    optim: burn::optim::adaptor::OptimizerAdaptor<burn::optim::Adam, LateFusion<B>, B>,
    device: B::Device,
    params: Vec<f32>,
    dims: PolicyDims,
    norm_adv: Vec<f32>,
}

impl<B: AutodiffBackend> BurnLearner<B> {
    /// A learner starting from `params` (core layout, width 64) on `device`.
    ///
    /// # Errors
    /// [`LearnError::State`] when the parameters do not fit `dims`.
    pub fn new(dims: PolicyDims, params: Vec<f32>, device: B::Device) -> Result<Self, LearnError> {
        let net = LateFusion::<B>::from_flat(dims, &params, &device).map_err(LearnError::State)?;
        let optim = AdamConfig::new()
            .with_epsilon(1e-5)
            .init::<B, LateFusion<B>>();
        Ok(Self {
            net,
            optim,
            device,
            params,
            dims,
            norm_adv: Vec::new(),
        })
    }
}

impl<B: AutodiffBackend> Learner for BurnLearner<B> {
    fn params(&self) -> &[f32] {
        &self.params
    }

    fn update(
        &mut self,
        input: &UpdateInput<'_>,
        ppo: &PpoSection,
    ) -> Result<UpdateStats, LearnError> {
        let exp = input.exp;
        let n = exp.len();
        let d = self.dims.observation_len();
        let k = self.dims.actions();
        self.norm_adv.resize(n, 0.0);
        let dev = self.device.clone();
        let mut out = UpdateStats::default();
        for epoch in 0..ppo.epochs {
            let seed = crate::sim::derive_seed(input.seed, &[epoch as u64]);
            for rows in minibatches(n, ppo.minibatch, seed) {
                normalise(input.advantages, &rows, ppo.norm_adv, &mut self.norm_adv);
                let m = rows.len();
                let mut obs = Vec::with_capacity(m * d);
                for &i in &rows {
                    obs.extend(exp.obs.dense(i));
                }
                let pick = |v: &[f32]| rows.iter().map(|&i| v[i]).collect::<Vec<f32>>();
                let (logits, values) = self.net.forward(float_tensor::<B, 2>(obs, [m, d], &dev));
                let logp = log_softmax(logits, 1);
                let actions =
                    int_tensor::<B>(rows.iter().map(|&i| exp.actions[i] as i64).collect(), &dev);
                let logp_a = logp.clone().gather(1, actions.reshape([m, 1])).reshape([m]);
                let old = float_tensor::<B, 1>(pick(&exp.logp), [m], &dev);
                let adv = float_tensor::<B, 1>(pick(&self.norm_adv), [m], &dev);
                let ret = float_tensor::<B, 1>(pick(input.returns), [m], &dev);
                let ratio = (logp_a.clone() - old.clone()).exp();
                let clipped = ratio.clone().clamp(1.0 - ppo.clip, 1.0 + ppo.clip);
                let pg = (adv.clone().neg() * ratio.clone()).max_pair(adv.neg() * clipped.clone());
                let dv = values - ret;
                let p = logp.clone().exp();
                let entropy = (p.clone() * logp.clone()).sum_dim(1).reshape([m]).neg();
                let mut total = pg.clone().mean()
                    + (dv.clone() * dv.clone())
                        .mean()
                        .mul_scalar(0.5 * ppo.vf_coef)
                    - entropy.clone().mean().mul_scalar(ppo.ent_coef);
                let mut kl_values: Option<(Vec<f32>, Vec<f32>)> = None;
                if let Some(anchor) = input.anchor.filter(|_| input.beta != 0.0) {
                    let mut q = Vec::with_capacity(m * k);
                    let mut mask = Vec::with_capacity(m);
                    for &i in &rows {
                        match anchor.get(i) {
                            Some(lq) => {
                                q.extend_from_slice(lq);
                                mask.push(1.0);
                            }
                            None => {
                                q.extend(std::iter::repeat_n(0.0, k));
                                mask.push(0.0);
                            }
                        }
                    }
                    let q = float_tensor::<B, 2>(q, [m, k], &dev);
                    let maskt = float_tensor::<B, 1>(mask.clone(), [m], &dev);
                    let kl = (p * (logp - q)).sum_dim(1).reshape([m]) * maskt;
                    total = total + kl.clone().sum().mul_scalar(input.beta / m as f32);
                    kl_values = Some((to_vec(kl.inner()), mask));
                }
                let value = to_vec(total.clone().inner())[0] as f64;
                if !value.is_finite() {
                    return Err(LearnError::Diverged {
                        what: "loss",
                        value,
                    });
                }
                let mut grads = GradientsParams::from_grads(total.backward(), &self.net);
                let norm =
                    crate::training::clip_global_norm(&self.net, &mut grads, ppo.max_grad_norm);
                if !norm.is_finite() {
                    return Err(LearnError::Diverged {
                        what: "gradient norm",
                        value: norm as f64,
                    });
                }
                self.net = self.optim.step(input.lr, self.net.clone(), grads);
                // Statistics.
                let (r, c) = (to_vec(ratio.inner()), to_vec(clipped.inner()));
                let la = to_vec(logp_a.inner());
                let o = to_vec(old.inner());
                let s = &mut out.loss;
                s.samples += m;
                s.policy += to_vec(pg.inner()).iter().map(|&v| v as f64).sum::<f64>();
                s.value += to_vec(dv.inner())
                    .iter()
                    .map(|&v| 0.5 * (v * v) as f64)
                    .sum::<f64>();
                s.entropy += to_vec(entropy.inner())
                    .iter()
                    .map(|&v| v as f64)
                    .sum::<f64>();
                s.clipped += r
                    .iter()
                    .zip(&c)
                    .filter(|(a, b)| (*a - *b).abs() > 0.0)
                    .count();
                for j in 0..m {
                    s.approx_kl += ((r[j] - 1.0) - (la[j] - o[j])) as f64;
                }
                if let Some((kl, mask)) = kl_values {
                    s.kl += kl.iter().map(|&v| v as f64).sum::<f64>();
                    s.kl_samples += mask.iter().filter(|&&v| v > 0.0).count();
                }
                out.grad_norm += norm as f64;
                out.steps += 1;
            }
        }
        if out.steps > 0 {
            out.grad_norm /= out.steps as f64;
        }
        self.params = self.net.valid().to_flat().map_err(LearnError::State)?;
        if self.params.iter().any(|v| !v.is_finite()) {
            return Err(LearnError::Diverged {
                what: "policy",
                value: f64::NAN,
            });
        }
        Ok(out)
    }

    fn optimizer_bytes(&self) -> Result<Vec<u8>, String> {
        record_to_bytes::<B, _>(self.optim.to_record())
    }

    fn restore(&mut self, params: &[f32], optimizer: &[u8]) -> Result<(), LearnError> {
        self.net = LateFusion::<B>::from_flat(self.dims, params, &self.device)
            .map_err(LearnError::State)?;
        let rec = record_from_bytes::<B, _>(optimizer, &self.device).map_err(LearnError::State)?;
        self.optim = AdamConfig::new()
            .with_epsilon(1e-5)
            .init::<B, LateFusion<B>>()
            .load_record(rec);
        self.params = params.to_vec();
        Ok(())
    }
}
