//! Post-training quantization of the f32 late-fusion policy into spacer-core's int8
//! network ([`spacer_core::quant`]), and how far the two disagree.
//!
//! **Calibration.** Observations of logged driving from the training scenes (the
//! simulator's own, recorded as behaviour cloning records them: [`crate::bc::collect`])
//! give, per input feature of each encoder, its largest magnitude over the occupied
//! slots, and, per channel, the largest magnitude of the pooled partner and road
//! encodings (the f32 network's [`Policy::encode`]). Everything else is bounded
//! analytically from the weights, so no observation can overflow an integer sum.
//!
//! **Quantization** (all in f64, then rounded):
//! - inputs: int16 with a per-feature scale of `32767 / (2 max|x|)` (a factor 2 of
//!   headroom over the calibration data), folded into the first layer's weights;
//! - every weight matrix: int8 per output channel (`max |w| / 127`), biases int32 in
//!   the accumulator's unit;
//! - the first layer's sums move to one LayerNorm unit per encoder chosen so that the
//!   analytic bound of every channel is `2^20`; LayerNorm gain and shift in Q12
//!   (clamped to ±8: tanh is flat beyond);
//! - tanh outputs int16 (`1/32767`); pooled encodings int16 with a per-channel scale
//!   of `1.5 max|pooled| / 32767` (saturating beyond);
//! - the fusion layer, the actor and the critic are one linear map of the 192 fused
//!   features (no activation between them), and so is the ego encoder's second layer
//!   with the head's ego rows: the head is one int8 `192 x (K + 1)` matrix;
//! - integer logits in a common unit, fine enough that the f32 conversion is exact.

use std::path::Path;

use spacer_core::observation::{EGO_FEATURES, PARTNER_FEATURES, ROAD_FEATURES};
use spacer_core::policy::{CONCAT, FUSED, HIDDEN, MAX_ACTIONS, ParamLayout, Policy, TensorSpec};
use spacer_core::quant::{
    ACT_MAX, AFFINE_LIMIT, EPS_LIMIT, HEAD_INPUTS, LN_FRAC_BITS, LN_LIMIT, LOGIT_LIMIT,
    QuantEncoderLayout, QuantLayout, pack_pair, packed_index,
};
use spacer_core::weights::{Model, WeightFormat};

use crate::policy_file::PolicyFile;

/// Headroom of the input scales over the calibration data.
pub const INPUT_HEADROOM: f64 = 2.0;
/// Headroom of the pooled encodings' scales over the calibration data.
pub const POOLED_HEADROOM: f64 = 1.5;
/// The LayerNorm epsilon of the f32 network.
const LN_EPS: f64 = spacer_core::policy::LAYER_NORM_EPS as f64;

/// Why quantization failed.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// The policy to quantize is not an f32 policy.
    #[error("{0}: only an f32 policy can be quantized (this one is {1})")]
    NotF32(String, &'static str),
    /// No calibration observations.
    #[error("no calibration observations (the scenes gave no logged driving to record)")]
    NoData,
    /// Observations of the wrong length.
    #[error("calibration observations have {got} floats, the policy reads {want}")]
    ObservationLength {
        /// What the data has.
        got: usize,
        /// What the policy reads.
        want: usize,
    },
    /// The f32 policy refused a calibration observation.
    #[error("the f32 policy refused calibration observation {index}: {error}")]
    Observation {
        /// Row.
        index: usize,
        /// Why.
        error: spacer_core::policy::PolicyError,
    },
    /// The quantized parameters do not form a valid blob (a bug, or weights so
    /// extreme that no int8 scale fits).
    #[error("the quantized policy is not valid: {0}")]
    Invalid(#[from] crate::error::DataError),
}

/// Ranges seen in calibration data.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Observations used.
    pub samples: usize,
    /// Largest |feature| per ego feature (6).
    pub ego: Vec<f64>,
    /// Largest |feature| per partner feature (6), over occupied slots.
    pub partner: Vec<f64>,
    /// Largest |feature| per road feature (13), over occupied slots.
    pub road: Vec<f64>,
    /// Largest |pooled partner encoding| per channel (64).
    pub pooled_partner: Vec<f64>,
    /// Largest |pooled road encoding| per channel (64).
    pub pooled_road: Vec<f64>,
}

/// Ranges of `observations` (`[n][policy.observation_len()]`) under the f32 `policy`.
///
/// # Errors
/// [`QuantizeError::NoData`], [`QuantizeError::ObservationLength`],
/// [`QuantizeError::Observation`], [`QuantizeError::NotF32`].
pub fn calibrate(policy: &Policy<'_>, observations: &[f32]) -> Result<Calibration, QuantizeError> {
    if policy.format() != WeightFormat::F32 {
        return Err(QuantizeError::NotF32(
            "policy".into(),
            policy.format().name(),
        ));
    }
    let d = policy.observation_len();
    if observations.is_empty() {
        return Err(QuantizeError::NoData);
    }
    if !observations.len().is_multiple_of(d) {
        return Err(QuantizeError::ObservationLength {
            got: observations.len(),
            want: d,
        });
    }
    let dims = policy.dims();
    let np = dims.max_partners as usize;
    let mut c = Calibration {
        samples: observations.len() / d,
        ego: vec![0.0; EGO_FEATURES],
        partner: vec![0.0; PARTNER_FEATURES],
        road: vec![0.0; ROAD_FEATURES],
        pooled_partner: vec![0.0; HIDDEN],
        pooled_road: vec![0.0; HIDDEN],
    };
    let widen = |acc: &mut [f64], x: &[f32]| {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a = a.max((v as f64).abs());
        }
    };
    let mut fused = [0.0f32; CONCAT];
    for (index, obs) in observations.chunks_exact(d).enumerate() {
        widen(&mut c.ego, &obs[..EGO_FEATURES]);
        let (partners, roads) = obs[EGO_FEATURES..].split_at(np * PARTNER_FEATURES);
        for s in partners.chunks_exact(PARTNER_FEATURES) {
            widen(&mut c.partner, s);
        }
        for s in roads.chunks_exact(ROAD_FEATURES) {
            widen(&mut c.road, s);
        }
        policy
            .encode(obs, &mut fused)
            .map_err(|error| QuantizeError::Observation { index, error })?;
        widen(&mut c.pooled_partner, &fused[HIDDEN..2 * HIDDEN]);
        widen(&mut c.pooled_road, &fused[2 * HIDDEN..]);
    }
    Ok(c)
}

/// A dense f64 matrix, input-major (`w[i][j]`).
struct Mat {
    cols: usize,
    v: Vec<f64>,
}

impl Mat {
    fn from_spec(p: &[f32], t: &TensorSpec) -> Self {
        Self {
            cols: t.cols,
            v: p[t.offset..t.offset + t.rows * t.cols]
                .iter()
                .map(|&x| x as f64)
                .collect(),
        }
    }
    fn at(&self, i: usize, j: usize) -> f64 {
        self.v[i * self.cols + j]
    }
}

fn vector(p: &[f32], t: &TensorSpec) -> Vec<f64> {
    p[t.offset..t.offset + t.rows * t.cols]
        .iter()
        .map(|&x| x as f64)
        .collect()
}

/// A quantized linear layer: packed int8 weights, int32 biases, and the real value of
/// one accumulator unit per output.
struct QLinear {
    words: Vec<u32>,
    bias: Vec<i32>,
    unit: Vec<f64>,
    /// `|b| + 32767 sum |w|` per output, in accumulator units.
    bound: Vec<i64>,
}

/// Quantizes `w` (`inputs x outputs`, the real weight per *integer* input unit) and
/// `b` per output channel; `outputs_padded` columns are packed (extra ones zero).
fn quantize_linear(
    inputs: usize,
    outputs: usize,
    outputs_padded: usize,
    w: impl Fn(usize, usize) -> f64,
    b: impl Fn(usize) -> f64,
) -> QLinear {
    let words_n = spacer_core::quant::packed_words(inputs, outputs_padded);
    let mut q = QLinear {
        words: vec![0; words_n],
        bias: vec![0; outputs_padded],
        unit: vec![1.0; outputs_padded],
        bound: vec![0; outputs_padded],
    };
    for j in 0..outputs {
        let wmax = (0..inputs).map(|i| w(i, j).abs()).fold(0.0f64, f64::max);
        // Coarse enough that the bias fits well inside 32 bits next to the products.
        let unit = (wmax / 127.0)
            .max(b(j).abs() / (1u64 << 30) as f64)
            .max(1e-30);
        let mut sum = 0i64;
        for i in 0..inputs {
            let v = (w(i, j) / unit).round().clamp(-127.0, 127.0) as i8;
            sum += (v as i64).abs();
            let (word, byte) = packed_index(outputs_padded, i, j);
            let mut bytes = q.words[word].to_le_bytes();
            bytes[byte] = v as u8;
            q.words[word] = u32::from_le_bytes(bytes);
        }
        q.bias[j] = (b(j) / unit).round() as i32;
        q.unit[j] = unit;
        q.bound[j] = (q.bias[j] as i64).abs() + ACT_MAX as i64 * sum;
    }
    q
}

/// `round(r * 2^32)` for a ratio `r < 0.5`.
fn multiplier(r: f64) -> i32 {
    (r * 4_294_967_296.0).round().clamp(0.0, i32::MAX as f64) as i32
}

fn put_i32(words: &mut [u32], at: usize, v: &[i32]) {
    for (w, &x) in words[at..at + v.len()].iter_mut().zip(v) {
        *w = x as u32;
    }
}

/// One encoder's input scales, first layer, LayerNorm and (when pooled) second layer
/// into `words`; returns the real value of one unit of each pooled int32 sum (empty for
/// the ego encoder).
fn quantize_encoder(
    words: &mut [u32],
    e: &QuantEncoderLayout,
    p: &[f32],
    specs: &[TensorSpec],
    in_max: &[f64],
) -> Vec<f64> {
    let spec = |suffix: &str| specs.iter().find(|t| t.name.ends_with(suffix)).copied();
    let (Some(l1w), Some(l1b), Some(gamma), Some(beta), Some(l2w), Some(l2b)) = (
        spec("l1.w"),
        spec("l1.b"),
        spec("ln.gamma"),
        spec("ln.beta"),
        spec("l2.w"),
        spec("l2.b"),
    ) else {
        return Vec::new();
    };
    // Inputs: int16, headroom over the calibrated range; unseen features get scale 1.
    let mut step = vec![0.0f64; e.inputs];
    for (i, s) in step.iter_mut().enumerate() {
        let r = in_max.get(i).copied().unwrap_or(0.0);
        let r = if r > 0.0 { r * INPUT_HEADROOM } else { 1.0 };
        let scale = (ACT_MAX as f64 / r) as f32;
        words[e.in_scale + i] = scale.to_bits();
        *s = 1.0 / scale as f64;
    }
    let w1 = Mat::from_spec(p, &l1w);
    let b1 = vector(p, &l1b);
    let l1 = quantize_linear(
        e.inputs,
        HIDDEN,
        HIDDEN,
        |i, j| w1.at(i, j) * step[i],
        |j| b1[j],
    );
    words[e.l1_w..e.l1_w + l1.words.len()].copy_from_slice(&l1.words);
    put_i32(words, e.l1_b, &l1.bias);
    // One LayerNorm unit for all channels: every channel's bound maps to at most 2^20.
    let widest = (0..HIDDEN)
        .map(|j| l1.unit[j] * l1.bound[j] as f64)
        .fold(0.0f64, f64::max);
    let finest = l1.unit.iter().copied().fold(0.0f64, f64::max);
    let u_g = (widest / (LN_LIMIT - 64) as f64).max(2.01 * finest);
    let m1: Vec<i32> = l1.unit.iter().map(|&u| multiplier(u / u_g)).collect();
    put_i32(words, e.l1_m, &m1);
    let eps = (LN_EPS * (1u64 << 18) as f64 / (u_g * u_g))
        .round()
        .clamp(1.0, EPS_LIMIT as f64) as u64;
    words[e.ln_eps] = eps as u32;
    words[e.ln_eps + 1] = (eps >> 32) as u32;
    // Gain and shift in Q12 i16 halves of one word (|v| <= 8: tanh is flat beyond).
    let q12 = (1u32 << LN_FRAC_BITS) as f64;
    let to_q12 = |v: f64| (v.clamp(-AFFINE_LIMIT, AFFINE_LIMIT) * q12).round() as i16;
    let (g, bt) = (vector(p, &gamma), vector(p, &beta));
    for j in 0..HIDDEN {
        words[e.ln_affine + j] = pack_pair(to_q12(g[j]), to_q12(bt[j]));
    }
    if !e.pooled {
        return Vec::new();
    }
    let w2 = Mat::from_spec(p, &l2w);
    let b2 = vector(p, &l2b);
    let t_step = 1.0 / ACT_MAX as f64;
    let l2 = quantize_linear(
        HIDDEN,
        HIDDEN,
        HIDDEN,
        |i, j| w2.at(i, j) * t_step,
        |j| b2[j],
    );
    words[e.l2_w..e.l2_w + l2.words.len()].copy_from_slice(&l2.words);
    put_i32(words, e.l2_b, &l2.bias);
    l2.unit
}

/// Quantizes the f32 policy in `file` with the ranges of `calibration`: an int8 blob
/// with the same header (but the format) and vocabulary.
///
/// # Errors
/// [`QuantizeError::NotF32`] for an int8 input; [`QuantizeError::Invalid`] should the
/// result not validate.
pub fn quantize(file: &PolicyFile, calibration: &Calibration) -> Result<PolicyFile, QuantizeError> {
    let model = file.model();
    if model.policy.format() != WeightFormat::F32 {
        return Err(QuantizeError::NotF32(
            file.origin().display().to_string(),
            model.policy.format().name(),
        ));
    }
    let dims = model.policy.dims();
    let k = dims.actions();
    let p = model.policy.params();
    let layout = ParamLayout::new(k);
    let specs = layout.tensors();
    let q = QuantLayout::new(k);
    let mut words = vec![0u32; q.total];
    let group = |prefix: &str| -> Vec<TensorSpec> {
        specs
            .iter()
            .filter(|t| t.name.starts_with(prefix))
            .copied()
            .collect()
    };
    quantize_encoder(&mut words, &q.ego, p, &group("ego."), &calibration.ego);
    let unit_p = quantize_encoder(
        &mut words,
        &q.partner,
        p,
        &group("partner."),
        &calibration.partner,
    );
    let unit_r = quantize_encoder(&mut words, &q.road, p, &group("road."), &calibration.road);

    // Pooled encodings to int16: per-channel scale from calibration.
    let mut head_step = vec![1.0 / ACT_MAX as f64; HEAD_INPUTS];
    for (block, e, units, seen) in [
        (1usize, &q.partner, &unit_p, &calibration.pooled_partner),
        (2, &q.road, &unit_r, &calibration.pooled_road),
    ] {
        let mut m = vec![0i32; HIDDEN];
        for j in 0..HIDDEN {
            let unit = units.get(j).copied().unwrap_or(1.0);
            let r = seen.get(j).copied().unwrap_or(0.0) * POOLED_HEADROOM;
            let a = (r / ACT_MAX as f64).max(2.01 * unit);
            m[j] = multiplier(unit / a);
            // The step the head sees: what one int16 unit of z is worth after the
            // multiplier's rounding.
            head_step[block * HIDDEN + j] = unit * 4_294_967_296.0 / m[j].max(1) as f64;
        }
        put_i32(&mut words, e.pool_m, &m);
    }

    // The folded head: [ego tanh; pooled partner; pooled road] -> K logits and a value.
    let find = |name: &str| specs.iter().find(|t| t.name == name).copied();
    let (Some(fw), Some(fb), Some(aw), Some(ab), Some(cw), Some(cb), Some(w2e), Some(b2e)) = (
        find("fuse.w"),
        find("fuse.b"),
        find("actor.w"),
        find("actor.b"),
        find("critic.w"),
        find("critic.b"),
        find("ego.l2.w"),
        find("ego.l2.b"),
    ) else {
        return Err(QuantizeError::NoData);
    };
    let (fw, fb) = (Mat::from_spec(p, &fw), vector(p, &fb));
    let (aw, ab) = (Mat::from_spec(p, &aw), vector(p, &ab));
    let (cw, cb) = (Mat::from_spec(p, &cw), vector(p, &cb));
    let (w2e, b2e) = (Mat::from_spec(p, &w2e), vector(p, &b2e));
    let outs = k + 1;
    // M = fuse.w . [actor.w | critic.w]  (192 x (K + 1)), bias = fuse.b . heads + b.
    let head_col = |h: usize, j: usize| if j < k { aw.at(h, j) } else { cw.at(h, 0) };
    let mut m = vec![0.0f64; CONCAT * outs];
    for c in 0..CONCAT {
        for h in 0..FUSED {
            let f = fw.at(c, h);
            if f != 0.0 {
                for j in 0..outs {
                    m[c * outs + j] += f * head_col(h, j);
                }
            }
        }
    }
    let mut bias: Vec<f64> = (0..outs)
        .map(|j| {
            let b0 = if j < k { ab[j] } else { cb[0] };
            b0 + (0..FUSED).map(|h| fb[h] * head_col(h, j)).sum::<f64>()
        })
        .collect();
    // Fold the ego encoder's second layer into the ego rows.
    let mut h = vec![0.0f64; HEAD_INPUTS * outs];
    for i in 0..HIDDEN {
        for c in 0..HIDDEN {
            let w = w2e.at(i, c);
            for j in 0..outs {
                h[i * outs + j] += w * m[c * outs + j];
            }
        }
    }
    for (j, b) in bias.iter_mut().enumerate() {
        *b += (0..HIDDEN).map(|c| b2e[c] * m[c * outs + j]).sum::<f64>();
    }
    h[HIDDEN * outs..].copy_from_slice(&m[HIDDEN * outs..]);
    let head = quantize_linear(
        HEAD_INPUTS,
        outs,
        q.head_outputs,
        |i, j| h[i * outs + j] * head_step[i],
        |j| bias[j],
    );
    words[q.head_w..q.head_w + head.words.len()].copy_from_slice(&head.words);
    put_i32(&mut words, q.head_b, &head.bias);
    // Common units: fine, yet every multiplier below 1/2 and every bound within 2^24.
    let step_for = |range: std::ops::Range<usize>| {
        let finest = range.clone().map(|j| head.unit[j]).fold(0.0f64, f64::max);
        let widest = range
            .map(|j| head.unit[j] * head.bound[j] as f64)
            .fold(0.0f64, f64::max);
        (2.01 * finest).max(widest / (LOGIT_LIMIT - 64) as f64)
    };
    let logit_step = step_for(0..k) as f32;
    let value_step = step_for(k..outs) as f32;
    let hm: Vec<i32> = (0..q.head_outputs)
        .map(|j| match j {
            j if j < k => multiplier(head.unit[j] / logit_step as f64),
            j if j == k => multiplier(head.unit[j] / value_step as f64),
            _ => 0,
        })
        .collect();
    put_i32(&mut words, q.head_m, &hm);
    words[q.logit_step] = logit_step.to_bits();
    words[q.value_step] = value_step.to_bits();
    debug_assert!(k <= MAX_ACTIONS);

    let vocab = model.tokens.to_vocabulary().map_err(|e| {
        QuantizeError::Invalid(crate::error::DataError::invalid(
            file.origin(),
            crate::error::Location::file(),
            e.to_string(),
        ))
    })?;
    Ok(PolicyFile::from_int8_parts(&model.header, &vocab, &words)?)
}

/// How far an int8 policy's token distributions are from the f32 policy's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Agreement {
    /// Observations compared.
    pub samples: usize,
    /// Share of observations where both pick the same most likely token.
    pub argmax: f64,
    /// Mean KL(f32 || int8) of the token distributions (nats).
    pub mean_kl: f64,
    /// Largest KL over the observations (nats).
    pub max_kl: f64,
    /// Largest |logit difference|.
    pub max_logit_error: f64,
    /// Mean |value difference|.
    pub mean_value_error: f64,
}

/// Compares two policies of the same dimensions on `observations`.
///
/// # Errors
/// [`QuantizeError::Observation`] when a policy refuses an observation.
pub fn compare(
    reference: &Model<'_>,
    other: &Model<'_>,
    observations: &[f32],
) -> Result<Agreement, QuantizeError> {
    let d = reference.policy.observation_len();
    let k = reference.policy.actions();
    let mut a = Agreement::default();
    let (mut la, mut lb) = (vec![0.0f32; k], vec![0.0f32; k]);
    let (mut same, mut kl_sum, mut verr) = (0usize, 0.0f64, 0.0f64);
    for (index, obs) in observations.chunks_exact(d).enumerate() {
        let va = reference
            .policy
            .forward(obs, &mut la)
            .map_err(|error| QuantizeError::Observation { index, error })?;
        let vb = other
            .policy
            .forward(obs, &mut lb)
            .map_err(|error| QuantizeError::Observation { index, error })?;
        if spacer_core::policy::argmax(&la) == spacer_core::policy::argmax(&lb) {
            same += 1;
        }
        let kl = kl_divergence(&la, &lb);
        kl_sum += kl;
        a.max_kl = a.max_kl.max(kl);
        for (x, y) in la.iter().zip(&lb) {
            a.max_logit_error = a.max_logit_error.max((*x as f64 - *y as f64).abs());
        }
        verr += (va as f64 - vb as f64).abs();
        a.samples += 1;
    }
    if a.samples > 0 {
        let n = a.samples as f64;
        a.argmax = same as f64 / n;
        a.mean_kl = kl_sum / n;
        a.mean_value_error = verr / n;
    }
    Ok(a)
}

/// `KL(softmax(p) || softmax(q))` in f64.
pub fn kl_divergence(p: &[f32], q: &[f32]) -> f64 {
    let log_softmax = |x: &[f32]| -> Vec<f64> {
        let m = x
            .iter()
            .map(|&v| v as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        let z = x.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        x.iter().map(|&v| v as f64 - m - z).collect()
    };
    let (lp, lq) = (log_softmax(p), log_softmax(q));
    lp.iter()
        .zip(&lq)
        .map(|(&a, &b)| a.exp() * (a - b))
        .sum::<f64>()
        .max(0.0)
}

/// What [`quantize_with_scenes`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeReport {
    /// Calibration ranges (from the training scenes).
    pub calibration: Calibration,
    /// Agreement with the f32 policy on the held-out scenes' observations.
    pub held_out: Agreement,
    /// Bytes of the f32 blob.
    pub f32_bytes: usize,
    /// Bytes of the int8 blob.
    pub int8_bytes: usize,
}

/// Calibrates on observations of logged driving in `train` scenes (at most
/// `max_samples`, evenly spaced), quantizes, and compares on `held_out` scenes'
/// observations. Goal dropout 0.5, as behaviour cloning records them.
///
/// # Errors
/// [`QuantizeError`]; simulator errors as [`QuantizeError::Invalid`].
pub fn quantize_with_scenes(
    file: &PolicyFile,
    train: &[crate::scenario::Scene],
    held_out: &[crate::scenario::Scene],
    max_samples: usize,
    seed: u64,
) -> Result<(PolicyFile, QuantizeReport), QuantizeError> {
    let model = file.model();
    let vocab = model.tokens.to_vocabulary().map_err(|e| {
        QuantizeError::Invalid(crate::error::DataError::invalid(
            file.origin(),
            crate::error::Location::file(),
            e.to_string(),
        ))
    })?;
    let sim = crate::sim::SimConfig {
        observation: model.observation,
        goal_dropout: 0.5,
        ..crate::sim::SimConfig::default()
    };
    let sim_error = |e: crate::sim::SimError| {
        QuantizeError::Invalid(crate::error::DataError::invalid(
            Path::new("<scenes>"),
            crate::error::Location::file(),
            e.to_string(),
        ))
    };
    let data = crate::bc::collect(train, &vocab, &sim, seed).map_err(sim_error)?;
    let d = data.row_len;
    let n = data.len();
    let take = max_samples.max(1).min(n);
    let mut obs = Vec::with_capacity(take * d);
    for s in 0..take {
        let i = s * n / take;
        obs.extend_from_slice(&data.observations[i * d..(i + 1) * d]);
    }
    let calibration = calibrate(&model.policy, &obs)?;
    let int8 = quantize(file, &calibration)?;
    let held = crate::bc::collect(held_out, &vocab, &sim, seed ^ 1).map_err(sim_error)?;
    let held_out = compare(&model, &int8.model(), &held.observations)?;
    Ok((
        int8.clone(),
        QuantizeReport {
            calibration,
            held_out,
            f32_bytes: file.bytes().len(),
            int8_bytes: int8.bytes().len(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spacer_core::math::Rng;
    use spacer_core::policy::{PolicyDims, init_params, param_count};
    use spacer_core::tokenizer::Vocabulary;
    use spacer_core::weights::BlobHeader;

    /// An f32 policy whose layers all matter: the deterministic initialisation with a
    /// larger actor gain and random LayerNorm gains and shifts.
    fn policy(seed: u64) -> PolicyFile {
        let dims = PolicyDims::default();
        let mut p = vec![0.0f32; param_count(200)];
        init_params(&dims, seed, &mut p).unwrap();
        let mut rng = Rng::new(seed);
        for t in ParamLayout::new(200).tensors() {
            let block = &mut p[t.offset..t.offset + t.rows * t.cols];
            match t.name {
                "actor.w" => block.iter_mut().for_each(|v| *v *= 200.0),
                n if n.ends_with("gamma") => {
                    block.iter_mut().for_each(|v| *v = 1.0 + 0.3 * rng.normal())
                }
                n if n.ends_with(".b") || n.ends_with("beta") => {
                    block.iter_mut().for_each(|v| *v = 0.1 * rng.normal())
                }
                _ => {}
            }
        }
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        PolicyFile::from_parts(&BlobHeader::new(dims, 50.0, 0), &vocab, &p).unwrap()
    }

    /// Observations shaped like the builder's: a few partners and road segments with
    /// small coordinates and one-hot kinds.
    fn observations(n: usize, seed: u64) -> Vec<f32> {
        let dims = PolicyDims::default();
        let d = dims.observation_len();
        let mut rng = Rng::new(seed);
        let mut out = vec![0.0f32; n * d];
        for o in out.chunks_exact_mut(d) {
            for v in &mut o[..5] {
                *v = 0.1 * rng.normal();
            }
            let np = rng.below(12) as usize;
            for s in 0..np {
                for v in &mut o[6 + 6 * s..12 + 6 * s] {
                    *v = 0.03 * rng.normal();
                }
            }
            let r0 = 6 + 63 * 6;
            for s in 0..rng.below(80) as usize {
                let slot = &mut o[r0 + 13 * s..r0 + 13 * s + 13];
                for v in &mut slot[..6] {
                    *v = 0.03 * rng.normal();
                }
                slot[6 + rng.below(7) as usize] = 1.0;
            }
        }
        out
    }

    #[test]
    fn int8_tracks_f32_closely() {
        let f = policy(3);
        let calib_obs = observations(300, 1);
        let cal = calibrate(&f.model().policy, &calib_obs).unwrap();
        assert_eq!(cal.samples, 300);
        let q = quantize(&f, &cal).unwrap();
        assert_eq!(q.format(), WeightFormat::Int8);
        assert!(
            3 * q.bytes().len() <= f.bytes().len(),
            "{}",
            q.bytes().len()
        );
        let test_obs = observations(300, 2);
        let a = compare(&f.model(), &q.model(), &test_obs).unwrap();
        assert_eq!(a.samples, 300);
        assert!(a.argmax >= 0.98, "{a:?}");
        assert!(a.mean_kl < 1e-3, "{a:?}");
        // The tokens travel unchanged.
        assert_eq!(q.model().tokens, f.model().tokens);
        // An int8 policy cannot be quantized again.
        assert!(matches!(quantize(&q, &cal), Err(QuantizeError::NotF32(..))));
    }

    #[test]
    fn calibration_errors() {
        let f = policy(4);
        let m = f.model();
        assert!(matches!(
            calibrate(&m.policy, &[]),
            Err(QuantizeError::NoData)
        ));
        assert!(matches!(
            calibrate(&m.policy, &[0.0; 10]),
            Err(QuantizeError::ObservationLength { .. })
        ));
        let mut bad = observations(2, 3);
        bad[5] = f32::NAN;
        assert!(matches!(
            calibrate(&m.policy, &bad),
            Err(QuantizeError::Observation { index: 0, .. })
        ));
    }

    #[test]
    fn kl_is_zero_for_equal_and_positive_otherwise() {
        assert!(kl_divergence(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).abs() < 1e-12);
        assert!(kl_divergence(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) > 0.5);
    }
}
