//! The late-fusion policy network in burn, at any width: the same function as
//! spacer-core's [`spacer_core::policy::Policy::forward`] (a parity test holds them
//! together), trainable, and convertible to and from the core's flat parameter
//! layout ([`ParamLayout`]) at the core's width of 64.
//!
//! ```text
//! ego (6)          -> Linear(6->W)  -> LayerNorm -> tanh -> Linear(W->W) ----------\
//! partner (P x 6)  -> Linear(6->W)  -> LayerNorm -> tanh -> Linear(W->W) -> max ---+-> concat (3W)
//! road (R x 13)    -> Linear(13->W) -> LayerNorm -> tanh -> Linear(W->W) -> max --/      |
//!                                                               Linear(3W->2W) <---------/
//!                                              actor Linear(2W->K)   critic Linear(2W->1)
//! ```
//!
//! No activation between the fusion layer and the heads (GPUDrive). burn's `Linear`
//! stores its weight `[d_in, d_out]` row-major, which is exactly the core's
//! input-major `w[i * out + j]`, so conversion is a copy per tensor.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use spacer_core::observation::{EGO_FEATURES, PARTNER_FEATURES, ROAD_FEATURES};
use spacer_core::policy::{HIDDEN, LAYER_NORM_EPS, ParamLayout, PolicyDims};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::training::to_vec;

/// Linear -> LayerNorm -> tanh -> Linear.
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    /// First layer.
    pub l1: Linear<B>,
    /// Its LayerNorm.
    pub ln: LayerNorm<B>,
    /// Second layer.
    pub l2: Linear<B>,
}

impl<B: Backend> Encoder<B> {
    /// # Shapes
    /// `[..., d]` -> `[..., W]`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.l2.forward(self.ln.forward(self.l1.forward(x)).tanh())
    }
}

/// The late-fusion network.
#[derive(Module, Debug)]
pub struct LateFusion<B: Backend> {
    /// Ego encoder.
    pub ego: Encoder<B>,
    /// Partner encoder, shared over the slots and max-pooled.
    pub partner: Encoder<B>,
    /// Road encoder, shared over the slots and max-pooled.
    pub road: Encoder<B>,
    /// Fusion layer (3W -> 2W).
    pub fuse: Linear<B>,
    /// Actor head (2W -> K).
    pub actor: Linear<B>,
    /// Critic head (2W -> 1).
    pub critic: Linear<B>,
    /// Encoder width W.
    pub width: usize,
    /// Partner slots of the observation.
    pub max_partners: usize,
    /// Road slots of the observation.
    pub max_road_segments: usize,
}

/// An orthogonal `rows x cols` matrix (row-major) times `gain`: the shorter family of
/// vectors (columns when `cols <= rows`, else rows) orthonormal, as PyTorch's
/// `orthogonal_`, by modified Gram-Schmidt in f64 over standard normal draws.
fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut m: Vec<f64> = (0..rows * cols)
        .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
        .collect();
    let (count, len, sv, se) = if cols <= rows {
        (cols, rows, 1, cols)
    } else {
        (rows, cols, cols, 1)
    };
    for v in 0..count {
        for u in 0..v {
            let dot: f64 = (0..len)
                .map(|e| m[v * sv + e * se] * m[u * sv + e * se])
                .sum();
            for e in 0..len {
                m[v * sv + e * se] -= dot * m[u * sv + e * se];
            }
        }
        let norm = (0..len)
            .map(|e| m[v * sv + e * se].powi(2))
            .sum::<f64>()
            .sqrt();
        let inv = if norm > 1e-30 { 1.0 / norm } else { 0.0 };
        for e in 0..len {
            m[v * sv + e * se] *= inv;
        }
    }
    m.iter().map(|&x| (x * gain) as f32).collect()
}

fn linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    gain: f64,
    rng: &mut ChaCha8Rng,
    device: &B::Device,
) -> Linear<B> {
    let w = orthogonal(d_in, d_out, gain, rng);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
    }
}

fn encoder<B: Backend>(d: usize, w: usize, rng: &mut ChaCha8Rng, device: &B::Device) -> Encoder<B> {
    let g = std::f64::consts::SQRT_2;
    Encoder {
        l1: linear(d, w, g, rng, device),
        ln: LayerNormConfig::new(w)
            .with_epsilon(LAYER_NORM_EPS as f64)
            .init(device),
        l2: linear(w, w, g, rng, device),
    }
}

impl<B: Backend> LateFusion<B> {
    /// A freshly initialised network of encoder width `width` for `dims`: orthogonal
    /// weights (gain sqrt 2 for the encoders and the fusion layer, 0.01 for the
    /// actor, 1 for the critic), zero biases, LayerNorm gain 1 and shift 0, as
    /// docs/design.md section 1.4 says; deterministic for `seed`.
    pub fn new(dims: PolicyDims, width: usize, seed: u64, device: &B::Device) -> Self {
        let g = std::f64::consts::SQRT_2;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Self {
            ego: encoder(EGO_FEATURES, width, &mut rng, device),
            partner: encoder(PARTNER_FEATURES, width, &mut rng, device),
            road: encoder(ROAD_FEATURES, width, &mut rng, device),
            fuse: linear(3 * width, 2 * width, g, &mut rng, device),
            actor: linear(2 * width, dims.actions(), 0.01, &mut rng, device),
            critic: linear(2 * width, 1, 1.0, &mut rng, device),
            width,
            max_partners: dims.max_partners as usize,
            max_road_segments: dims.max_road_segments as usize,
        }
    }

    /// The observation dimensions and action count.
    pub fn dims(&self) -> PolicyDims {
        PolicyDims {
            max_partners: self.max_partners as u16,
            max_road_segments: self.max_road_segments as u16,
            actions: self.actor.weight.dims()[1] as u16,
        }
    }

    fn pool(
        &self,
        enc: &Encoder<B>,
        x: Tensor<B, 2>,
        n: usize,
        slots: usize,
        d: usize,
    ) -> Tensor<B, 2> {
        let device = x.device();
        let x = if slots == 0 {
            Tensor::zeros([n, 1, d], &device)
        } else {
            x.reshape([n, slots, d])
        };
        enc.forward(x).max_dim(1).reshape([n, self.width])
    }

    /// Logits and values of a batch of observations.
    ///
    /// # Shapes
    /// `obs`: `[n, observation_len]` -> (`[n, K]`, `[n]`).
    pub fn forward(&self, obs: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 1>) {
        let [n, _] = obs.dims();
        let (p, r) = (self.max_partners, self.max_road_segments);
        let p_end = EGO_FEATURES + p * PARTNER_FEATURES;
        let r_end = p_end + r * ROAD_FEATURES;
        let ego = self.ego.forward(obs.clone().slice([0..n, 0..EGO_FEATURES]));
        let partners = self.pool(
            &self.partner,
            obs.clone()
                .slice([0..n, EGO_FEATURES..p_end.max(EGO_FEATURES + 1)]),
            n,
            p,
            PARTNER_FEATURES,
        );
        let roads = self.pool(
            &self.road,
            obs.slice([0..n, p_end..r_end.max(p_end + 1)]),
            n,
            r,
            ROAD_FEATURES,
        );
        let fused = self
            .fuse
            .forward(Tensor::cat(vec![ego, partners, roads], 1));
        let logits = self.actor.forward(fused.clone());
        let value = self.critic.forward(fused).reshape([n]);
        (logits, value)
    }

    /// Every tensor under its name in spacer-core's layout (`ego.l1.w`, ...).
    fn tensors(&self) -> Vec<(String, Vec<f32>)> {
        let lin = |l: &Linear<B>| {
            (
                to_vec(l.weight.val()),
                l.bias.as_ref().map(|b| to_vec(b.val())).unwrap_or_default(),
            )
        };
        let mut out = Vec::new();
        for (prefix, e) in [
            ("ego", &self.ego),
            ("partner", &self.partner),
            ("road", &self.road),
        ] {
            let (w1, b1) = lin(&e.l1);
            let (w2, b2) = lin(&e.l2);
            let gamma = to_vec(e.ln.gamma.val());
            let beta =
                e.ln.beta
                    .as_ref()
                    .map(|b| to_vec(b.val()))
                    .unwrap_or_default();
            let parts = ["l1.w", "l1.b", "ln.gamma", "ln.beta", "l2.w", "l2.b"];
            for (part, v) in parts.into_iter().zip([w1, b1, gamma, beta, w2, b2]) {
                out.push((format!("{prefix}.{part}"), v));
            }
        }
        for (prefix, l) in [
            ("fuse", &self.fuse),
            ("actor", &self.actor),
            ("critic", &self.critic),
        ] {
            let (w, b) = lin(l);
            out.push((format!("{prefix}.w"), w));
            out.push((format!("{prefix}.b"), b));
        }
        out
    }

    /// The parameters of a network of any width, flat, in the layout order of
    /// [`super::native::NativeLayout`] (at width 64 the core's).
    pub fn to_flat_any_width(&self) -> Vec<f32> {
        self.tensors().into_iter().flat_map(|(_, v)| v).collect()
    }

    /// A network of width `width` holding `params` in the order of
    /// [`Self::to_flat_any_width`].
    ///
    /// # Errors
    /// A message when the length does not fit.
    pub fn from_flat_any_width(
        dims: PolicyDims,
        width: usize,
        params: &[f32],
        device: &B::Device,
    ) -> Result<Self, String> {
        let fresh = Self::new(dims, width, 0, device);
        let shapes: Vec<usize> = fresh.tensors().iter().map(|(_, v)| v.len()).collect();
        if shapes.iter().sum::<usize>() != params.len() {
            return Err(format!(
                "{} parameters, a width-{width} network has {}",
                params.len(),
                shapes.iter().sum::<usize>()
            ));
        }
        let mut at = 0;
        let mut next = |n: usize| {
            let v = params[at..at + n].to_vec();
            at += n;
            v
        };
        let d = device;
        let mat = |v: Vec<f32>, r: usize, c: usize| {
            Param::from_tensor(Tensor::from_data(TensorData::new(v, [r, c]), d))
        };
        let vec1 = |v: Vec<f32>| {
            let n = v.len();
            Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), d))
        };
        let mut enc = |din: usize| -> Encoder<B> {
            let l1w = mat(next(din * width), din, width);
            let l1b = vec1(next(width));
            let gamma = vec1(next(width));
            let beta = vec1(next(width));
            let l2w = mat(next(width * width), width, width);
            let l2b = vec1(next(width));
            let mut ln = LayerNormConfig::new(width)
                .with_epsilon(LAYER_NORM_EPS as f64)
                .init(d);
            ln.gamma = gamma;
            ln.beta = Some(beta);
            Encoder {
                l1: Linear {
                    weight: l1w,
                    bias: Some(l1b),
                },
                ln,
                l2: Linear {
                    weight: l2w,
                    bias: Some(l2b),
                },
            }
        };
        let ego = enc(EGO_FEATURES);
        let partner = enc(PARTNER_FEATURES);
        let road = enc(ROAD_FEATURES);
        let k = dims.actions();
        let mut lin = |din: usize, dout: usize| Linear {
            weight: mat(next(din * dout), din, dout),
            bias: Some(vec1(next(dout))),
        };
        let fuse = lin(3 * width, 2 * width);
        let actor = lin(2 * width, k);
        let critic = lin(2 * width, 1);
        Ok(Self {
            ego,
            partner,
            road,
            fuse,
            actor,
            critic,
            width,
            max_partners: dims.max_partners as usize,
            max_road_segments: dims.max_road_segments as usize,
        })
    }

    /// The parameters in spacer-core's flat layout ([`ParamLayout`]), for a width-64
    /// network.
    ///
    /// # Errors
    /// A message when the width is not the core's 64.
    pub fn to_flat(&self) -> Result<Vec<f32>, String> {
        if self.width != HIDDEN {
            return Err(format!(
                "the core's layout has width {HIDDEN}; this network has width {}",
                self.width
            ));
        }
        let layout = ParamLayout::new(self.dims().actions());
        let mut flat = vec![0.0f32; layout.total()];
        let tensors = self.tensors();
        for spec in layout.tensors() {
            let Some((_, v)) = tensors.iter().find(|(n, _)| n == spec.name) else {
                return Err(format!("no tensor {}", spec.name));
            };
            let len = spec.rows * spec.cols;
            if v.len() != len {
                return Err(format!(
                    "{}: {} values, layout wants {len}",
                    spec.name,
                    v.len()
                ));
            }
            flat[spec.offset..spec.offset + len].copy_from_slice(v);
        }
        Ok(flat)
    }

    /// A width-64 network holding the core's flat parameters `params` for `dims`.
    ///
    /// # Errors
    /// A message when `params` does not have the layout's length or `dims` is invalid.
    pub fn from_flat(dims: PolicyDims, params: &[f32], device: &B::Device) -> Result<Self, String> {
        dims.validate().map_err(|e| e.to_string())?;
        let layout = ParamLayout::new(dims.actions());
        if params.len() != layout.total() {
            return Err(format!(
                "{} parameters, the layout for {} actions has {}",
                params.len(),
                dims.actions(),
                layout.total()
            ));
        }
        let get = |name: &str| -> Option<(Vec<f32>, usize, usize)> {
            layout
                .tensors()
                .into_iter()
                .find(|t| t.name == name)
                .map(|t| {
                    (
                        params[t.offset..t.offset + t.rows * t.cols].to_vec(),
                        t.rows,
                        t.cols,
                    )
                })
        };
        let matrix = |name: &str| -> Result<Param<Tensor<B, 2>>, String> {
            let (v, r, c) = get(name).ok_or_else(|| format!("no tensor {name}"))?;
            Ok(Param::from_tensor(Tensor::from_data(
                TensorData::new(v, [r, c]),
                device,
            )))
        };
        let vector = |name: &str| -> Result<Param<Tensor<B, 1>>, String> {
            let (v, r, c) = get(name).ok_or_else(|| format!("no tensor {name}"))?;
            Ok(Param::from_tensor(Tensor::from_data(
                TensorData::new(v, [r * c]),
                device,
            )))
        };
        let lin = |p: &str| -> Result<Linear<B>, String> {
            Ok(Linear {
                weight: matrix(&format!("{p}.w"))?,
                bias: Some(vector(&format!("{p}.b"))?),
            })
        };
        let enc = |p: &str| -> Result<Encoder<B>, String> {
            let mut ln = LayerNormConfig::new(HIDDEN)
                .with_epsilon(LAYER_NORM_EPS as f64)
                .init(device);
            ln.gamma = vector(&format!("{p}.ln.gamma"))?;
            ln.beta = Some(vector(&format!("{p}.ln.beta"))?);
            Ok(Encoder {
                l1: lin(&format!("{p}.l1"))?,
                ln,
                l2: lin(&format!("{p}.l2"))?,
            })
        };
        Ok(Self {
            ego: enc("ego")?,
            partner: enc("partner")?,
            road: enc("road")?,
            fuse: lin("fuse")?,
            actor: lin("actor")?,
            critic: lin("critic")?,
            width: HIDDEN,
            max_partners: dims.max_partners as usize,
            max_road_segments: dims.max_road_segments as usize,
        })
    }
}

/// Parameters of a late-fusion network of width `w` for `dims` (65,289 at 64 and
/// K = 200; 204,105 at 128).
pub fn late_fusion_params(w: usize, actions: usize) -> usize {
    let enc = |d: usize| d * w + w + 2 * w + w * w + w;
    enc(EGO_FEATURES)
        + enc(PARTNER_FEATURES)
        + enc(ROAD_FEATURES)
        + 3 * w * 2 * w
        + 2 * w
        + 2 * w * actions
        + actions
        + 2 * w
        + 1
}

impl<B: burn::tensor::backend::AutodiffBackend> LateFusion<B> {
    /// The gradients of every parameter after `loss.backward()`, flat, in the order
    /// of [`Self::to_flat_any_width`] (zeros where a parameter has none).
    pub fn flat_grads(&self, grads: &B::Gradients) -> Vec<f32> {
        fn g2<B: burn::tensor::backend::AutodiffBackend>(
            p: &Param<Tensor<B, 2>>,
            grads: &B::Gradients,
        ) -> Vec<f32> {
            let v = p.val();
            let n = v.dims().iter().product();
            v.grad(grads).map(to_vec).unwrap_or_else(|| vec![0.0; n])
        }
        fn g1<B: burn::tensor::backend::AutodiffBackend>(
            p: &Param<Tensor<B, 1>>,
            grads: &B::Gradients,
        ) -> Vec<f32> {
            let v = p.val();
            let n = v.dims()[0];
            v.grad(grads).map(to_vec).unwrap_or_else(|| vec![0.0; n])
        }
        let mut out = Vec::new();
        let lin = |l: &Linear<B>, out: &mut Vec<f32>| {
            out.extend(g2(&l.weight, grads));
            if let Some(b) = &l.bias {
                out.extend(g1(b, grads));
            }
        };
        for e in [&self.ego, &self.partner, &self.road] {
            lin(&e.l1, &mut out);
            out.extend(g1(&e.ln.gamma, grads));
            if let Some(b) = &e.ln.beta {
                out.extend(g1(b, grads));
            }
            lin(&e.l2, &mut out);
        }
        for l in [&self.fuse, &self.actor, &self.critic] {
            lin(l, &mut out);
        }
        out
    }
}
