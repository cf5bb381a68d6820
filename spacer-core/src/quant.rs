//! The int8 late-fusion policy: integer inference over a quantized parameter set.
//!
//! A blob of format [`WeightFormat::Int8`](crate::policy::WeightFormat) holds the
//! network below, produced from an f32 policy by post-training quantization
//! (`spacer quantize`, in spacer-train). Every step after the input quantization is
//! integer arithmetic with a fixed definition, so every target computes the same bits
//! (the order of integer sums does not matter: they are exact).
//!
//! ```text
//! encoder (ego, partner, road):
//!   q_i   = sat16(round(x_i * in_scale_i))                      int16 inputs
//!   a_j   = l1.b_j + sum_i q_i * l1.w_ij                        int8 weights, int32 sums
//!   g_j   = smmulr(a_j, l1.m_j)                                 common LayerNorm unit, |g| <= 2^20
//!   t_j   = tanh_q15(layer_norm_q12(g, ln.eps, ln.affine)_j)    int16, scale 1/32767
//! partner, road:
//!   e_j   = l2.b_j + sum_i t_i * l2.w_ij ; pooled by max over occupied slots (int32)
//!   z_j   = sat16(smmulr(max e_j, pool.m_j))
//! head (fusion, actor and critic folded into one matrix; the ego encoder's second layer
//! folded in too, since no activation separates them):
//!   h_k   = head.b_k + sum_i [t_ego; z_partner; z_road]_i * head.w_ik   (K logits + value)
//!   L_k   = smmulr(h_k, head.m_k)                               |L| <= 2^24
//!   logit_k = L_k as f32 * logit_step, value = L_K as f32 * value_step
//! ```
//!
//! with `smmulr(a, m) = (a * m + 2^31) >> 32` (64-bit product, arithmetic shift; the
//! Cortex-M4's `SMMULR`) and `sat16` clamping to ±32767. The LayerNorm is fixed point
//! (see [`layer_norm_tanh`]) and tanh a 1024-entry table over [-8, 8) with linear
//! interpolation ([`tanh_q15`]); every step maps onto one or two Cortex-M4 DSP
//! instructions (`SMMULR`, `SMLAL`, `SSAT`, `SMULWB`, `SMLABB`, `SXTAH`, `USAT`,
//! `SMLATB`).
//! Activations are int16: the Cortex-M4's dual multiply-accumulate (`SMLAD`) multiplies
//! 16-bit lanes, so int16 activations cost nothing over int8 there and keep the error
//! of the activations far below that of the int8 weights.
//!
//! # Layout
//!
//! The parameters are 32-bit little-endian words ([`QuantLayout`]); int8 matrices are
//! packed four weights a word, two inputs by two outputs: word `(p, q)` of an
//! `inputs x outputs` matrix holds `w[2p][2q], w[2p][2q+1], w[2p+1][2q], w[2p+1][2q+1]`
//! in its bytes 0..3 (see [`packed_index`]), rows of input pairs one after another.
//! `SXTB16` of a word then gives output `2q`'s weight pair and `SXTB16 ROR 8` output
//! `2q + 1`'s, ready for `SMLAD` against a word holding two int16 inputs.
//!
//! Validation (`QuantNet::new`) bounds every sum so that nothing overflows 32 bits
//! (or 64 where stated) for *any* observation: the forward pass cannot fail or panic.

mod tanh_table;

#[cfg(spacer_dsp)]
mod dsp;
#[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
mod x86;

pub use tanh_table::TANH_Q15;

use crate::observation::{EGO_FEATURES, PARTNER_FEATURES, ROAD_FEATURES};
use crate::policy::{HIDDEN, MAX_ACTIONS, PolicyDims, PolicyError, Scan, SlotMask};

/// Largest magnitude of an int16 activation.
pub const ACT_MAX: i32 = 32_767;
/// Largest magnitude of a LayerNorm input `g` (in its common unit).
pub const LN_LIMIT: i64 = 1 << 20;
/// Largest magnitude of an integer logit (so that its f32 conversion is exact).
pub const LOGIT_LIMIT: i64 = 1 << 24;
/// Largest magnitude of a LayerNorm gain or shift (Q12 in an i16: 8.0).
pub const AFFINE_LIMIT: f64 = 32_767.0 / 4096.0;
/// Fraction bits of the LayerNorm output and its gain and shift.
pub const LN_FRAC_BITS: u32 = 12;
/// Largest LayerNorm epsilon (in `2^18 g^2` units).
pub const EPS_LIMIT: u64 = 1 << 60;
/// Largest input scale.
pub const MAX_IN_SCALE: f32 = 1.0e9;
/// Largest logit or value step.
pub const MAX_STEP: f32 = 1.0e6;

/// Input pairs of a layer with `n` inputs.
pub const fn pairs(n: usize) -> usize {
    n.div_ceil(2)
}

/// Word and byte of weight `(input i, output j)` in a packed matrix with `outputs`
/// outputs (rounded up to even).
pub const fn packed_index(outputs: usize, i: usize, j: usize) -> (usize, usize) {
    let words_per_row = outputs.div_ceil(2);
    ((i / 2) * words_per_row + j / 2, (j % 2) + 2 * (i % 2))
}

/// Words of a packed `inputs x outputs` matrix.
pub const fn packed_words(inputs: usize, outputs: usize) -> usize {
    pairs(inputs) * outputs.div_ceil(2)
}

/// Offsets (in words) of one encoder's tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantEncoderLayout {
    /// Input features.
    pub inputs: usize,
    /// `f32 [inputs]`: multiplier from a feature to its int16 value.
    pub in_scale: usize,
    /// Packed int8 `[inputs][64]`.
    pub l1_w: usize,
    /// `i32 [64]`.
    pub l1_b: usize,
    /// `i32 [64]`: multipliers to the LayerNorm unit.
    pub l1_m: usize,
    /// `u64` (two words, low first): epsilon in `2^18 g^2` units.
    pub ln_eps: usize,
    /// `[64]` words: gain (low half) and shift (high half), each an i16 in Q12.
    pub ln_affine: usize,
    /// Packed int8 `[64][64]` (pooled encoders only).
    pub l2_w: usize,
    /// `i32 [64]` (pooled encoders only).
    pub l2_b: usize,
    /// `i32 [64]`: multipliers from the pooled sums to the head's int16 inputs.
    pub pool_m: usize,
    /// One past the last word.
    pub end: usize,
    /// Whether the encoder has its own second layer and a max-pool (partner, road).
    pub pooled: bool,
}

impl QuantEncoderLayout {
    const fn at(start: usize, inputs: usize, pooled: bool) -> Self {
        let in_scale = start;
        let l1_w = in_scale + inputs;
        let l1_b = l1_w + packed_words(inputs, HIDDEN);
        let l1_m = l1_b + HIDDEN;
        let ln_eps = l1_m + HIDDEN;
        let ln_affine = ln_eps + 2;
        let l2_w = ln_affine + HIDDEN;
        let (l2_b, pool_m, end) = if pooled {
            let l2_b = l2_w + packed_words(HIDDEN, HIDDEN);
            (l2_b, l2_b + HIDDEN, l2_b + 2 * HIDDEN)
        } else {
            (l2_w, l2_w, l2_w)
        };
        Self {
            inputs,
            in_scale,
            l1_w,
            l1_b,
            l1_m,
            ln_eps,
            ln_affine,
            l2_w,
            l2_b,
            pool_m,
            end,
            pooled,
        }
    }
}

/// Inputs of the folded head: the ego encoder's tanh outputs and the two pooled
/// encodings.
pub const HEAD_INPUTS: usize = 3 * HIDDEN;

/// Offsets (in words) of every tensor of an int8 policy with `actions` actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantLayout {
    /// Ego encoder (no second layer: it is folded into the head).
    pub ego: QuantEncoderLayout,
    /// Partner encoder.
    pub partner: QuantEncoderLayout,
    /// Road encoder.
    pub road: QuantEncoderLayout,
    /// Packed int8 `[192][head_outputs]`.
    pub head_w: usize,
    /// `i32 [head_outputs]`.
    pub head_b: usize,
    /// `i32 [head_outputs]`: multipliers to the integer logits (and value).
    pub head_m: usize,
    /// `f32`: real value of one integer logit.
    pub logit_step: usize,
    /// `f32`: real value of one integer value unit.
    pub value_step: usize,
    /// Total words.
    pub total: usize,
    /// Actions (K).
    pub actions: usize,
    /// Head outputs: K logits, the value, padded to even.
    pub head_outputs: usize,
}

/// How a tensor of the int8 layout is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantKind {
    /// f32 values.
    F32,
    /// i32 values.
    I32,
    /// One u64 in two words.
    U64,
    /// Two i16 per word (low half first).
    I16Pairs,
    /// A packed int8 matrix.
    Int8 {
        /// Inputs.
        inputs: usize,
        /// Outputs (padded to even).
        outputs: usize,
    },
}

/// One named tensor of an int8 layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantTensor {
    /// Name, e.g. `road.l2.w`.
    pub name: &'static str,
    /// Offset in words.
    pub offset: usize,
    /// Length in words.
    pub words: usize,
    /// Storage.
    pub kind: QuantKind,
}

impl QuantLayout {
    /// The layout for `actions` actions.
    pub const fn new(actions: usize) -> Self {
        let ego = QuantEncoderLayout::at(0, EGO_FEATURES, false);
        let partner = QuantEncoderLayout::at(ego.end, PARTNER_FEATURES, true);
        let road = QuantEncoderLayout::at(partner.end, ROAD_FEATURES, true);
        let head_outputs = (actions + 1).div_ceil(2) * 2;
        let head_w = road.end;
        let head_b = head_w + packed_words(HEAD_INPUTS, head_outputs);
        let head_m = head_b + head_outputs;
        let logit_step = head_m + head_outputs;
        let value_step = logit_step + 1;
        Self {
            ego,
            partner,
            road,
            head_w,
            head_b,
            head_m,
            logit_step,
            value_step,
            total: value_step + 1,
            actions,
            head_outputs,
        }
    }

    /// Total words.
    pub const fn total(&self) -> usize {
        self.total
    }

    /// Every tensor in storage order.
    pub fn tensors(&self) -> [QuantTensor; 29] {
        let enc = |e: &QuantEncoderLayout, prefix: &'static [&'static str; 9]| {
            let t = |i: usize, offset: usize, words: usize, kind: QuantKind| QuantTensor {
                name: prefix[i],
                offset,
                words,
                kind,
            };
            let int8 = |inputs: usize| QuantKind::Int8 {
                inputs,
                outputs: HIDDEN,
            };
            [
                t(0, e.in_scale, e.inputs, QuantKind::F32),
                t(1, e.l1_w, packed_words(e.inputs, HIDDEN), int8(e.inputs)),
                t(2, e.l1_b, HIDDEN, QuantKind::I32),
                t(3, e.l1_m, HIDDEN, QuantKind::I32),
                t(4, e.ln_eps, 2, QuantKind::U64),
                t(5, e.ln_affine, HIDDEN, QuantKind::I16Pairs),
                t(6, e.l2_w, e.l2_b - e.l2_w, int8(HIDDEN)),
                t(7, e.l2_b, e.pool_m - e.l2_b, QuantKind::I32),
                t(8, e.pool_m, e.end - e.pool_m, QuantKind::I32),
            ]
        };
        let e = enc(
            &self.ego,
            &[
                "ego.in_scale",
                "ego.l1.w",
                "ego.l1.b",
                "ego.l1.m",
                "ego.ln.eps",
                "ego.ln.affine",
                "ego.l2.w",
                "ego.l2.b",
                "ego.pool.m",
            ],
        );
        let p = enc(
            &self.partner,
            &[
                "partner.in_scale",
                "partner.l1.w",
                "partner.l1.b",
                "partner.l1.m",
                "partner.ln.eps",
                "partner.ln.affine",
                "partner.l2.w",
                "partner.l2.b",
                "partner.pool.m",
            ],
        );
        let r = enc(
            &self.road,
            &[
                "road.in_scale",
                "road.l1.w",
                "road.l1.b",
                "road.l1.m",
                "road.ln.eps",
                "road.ln.affine",
                "road.l2.w",
                "road.l2.b",
                "road.pool.m",
            ],
        );
        let ho = self.head_outputs;
        [
            e[0],
            e[1],
            e[2],
            e[3],
            e[4],
            e[5],
            e[6],
            e[7],
            e[8],
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            p[5],
            p[6],
            p[7],
            p[8],
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            QuantTensor {
                name: "head.w",
                offset: self.head_w,
                words: packed_words(HEAD_INPUTS, ho),
                kind: QuantKind::Int8 {
                    inputs: HEAD_INPUTS,
                    outputs: ho,
                },
            },
            QuantTensor {
                name: "head.b+m+steps",
                offset: self.head_b,
                words: self.total - self.head_b,
                kind: QuantKind::I32,
            },
        ]
    }
}

/// Int32 words of a parameter set for `actions` actions.
pub const fn param_words(actions: usize) -> usize {
    QuantLayout::new(actions).total
}

/// `(a * m + 2^31) >> 32`: the high word of the rounded 64-bit product (`SMMULR`).
#[inline(always)]
pub fn smmulr(a: i32, m: i32) -> i32 {
    ((a as i64 * m as i64 + (1i64 << 31)) >> 32) as i32
}

/// Clamps to ±[`ACT_MAX`].
#[inline(always)]
pub fn sat16(v: i32) -> i16 {
    v.clamp(-ACT_MAX, ACT_MAX) as i16
}

/// An input feature as int16: `x * scale`, clamped to ±32767, rounded half away from
/// zero. The only floating-point step of the int8 network (IEEE single multiply and
/// add: the same bits on every target).
#[inline(always)]
pub fn quantize_input(x: f32, scale: f32) -> i16 {
    let v = x * scale;
    let v = v.clamp(-32767.0, 32767.0);
    let r = if v < 0.0 { v - 0.5 } else { v + 0.5 };
    r as i32 as i16
}

/// `tanh(y / 4096)` in Q15 (±32767): `u = clamp(y + 32768, 0, 65535)`, entry `u >> 6`
/// of [`TANH_Q15`] interpolated by the low six bits of `u`, rounded to nearest.
#[inline(always)]
pub fn tanh_q15(y: i32) -> i16 {
    let u = y.saturating_add(32_768).clamp(0, 65_535) as u32;
    let e = TANH_Q15[(u >> 6) as usize & 1023];
    let slope = (e >> 16) as i16 as i32;
    let frac = (u & 63) as i32;
    ((e as i16 as i32) + ((slope * frac + 32) >> 6)) as i16
}

/// Clamps to the i16 range (`SSAT #16`).
#[inline(always)]
pub fn ssat16(v: i32) -> i16 {
    v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// The first layer's sums to the LayerNorm's common unit, the LayerNorm, and tanh, all
/// in integers:
///
/// ```text
/// g_j = smmulr(a_j, m_j);  S = sum g;  d_j = 64 g_j - S;  W = sum d_j^2 + eps
///   (W = 2^18 (var + eps) in g units)
/// s = smallest even shift with W >> s < 2^30;  R = max(1, isqrt(W >> s))
/// inv = (2^31 - 1) / R;  n_j = ssat16((inv * ssat16(round(d_j / 2^(s/2)))) >> 16)  (Q12)
/// y_j = ((n_j * gamma_j + 2^11) >> 12) + beta_j;  t_j = tanh_q15(y_j)
/// ```
///
/// `gamma_j` and `beta_j` are the i16 halves of `affine_j` (Q12); `ssat16` clamps to
/// the i16 range. `acc` is used as scratch. Validation bounds `|g| <= 2^20` and
/// `1 <= eps <= 2^60`; every intermediate then fits its type.
#[inline]
pub fn layer_norm_tanh(
    acc: &mut [i32; HIDDEN],
    m: &[i32],
    eps: u64,
    affine: &[u32],
    out: &mut [i16; HIDDEN],
) {
    let mut s = 0i32;
    for (a, &mj) in acc.iter_mut().zip(m) {
        *a = smmulr(*a, mj);
        s = s.wrapping_add(*a);
    }
    let mut var = 0u64;
    for d in acc.iter_mut() {
        *d = d.wrapping_mul(HIDDEN as i32).wrapping_sub(s);
        var = var.wrapping_add((*d as i64 * *d as i64) as u64);
    }
    let w = var.wrapping_add(eps);
    let bits = 64 - w.leading_zeros();
    let shift = if bits > 30 { (bits - 29) & !1 } else { 0 };
    let r = ((w >> shift) as u32).isqrt().max(1) as i32;
    let inv = i32::MAX / r;
    let Ok(affine) = <&[u32; HIDDEN]>::try_from(affine) else {
        return;
    };
    kernels::normalize_tanh(acc, shift / 2, inv, affine, out);
}

/// The last step of [`layer_norm_tanh`] per element: `d_j` rounded down by `h` bits,
/// times `inv`, gain and shift, tanh.
#[inline(always)]
pub fn normalize_element(d: i32, h: u32, inv: i32, affine: u32) -> i16 {
    let half = (1i32 << h) >> 1;
    let dn = ssat16(d.wrapping_add(half) >> h) as i32;
    let n = ssat16(((inv as i64 * dn as i64) >> 16) as i32);
    let y = ((n as i32 * (affine as i16 as i32) + (1 << (LN_FRAC_BITS - 1))) >> LN_FRAC_BITS)
        + ((affine >> 16) as i16 as i32);
    tanh_q15(y)
}

/// Packs two int16 values into one word (low half first), as they lie in memory.
#[inline(always)]
pub fn pack_pair(lo: i16, hi: i16) -> u32 {
    (lo as u16 as u32) | ((hi as u16 as u32) << 16)
}

/// Slots encoded together before their second layer runs as one small matrix product.
#[cfg(spacer_dsp)]
pub(crate) const POOL_TILE: usize = 2;
#[cfg(not(spacer_dsp))]
pub(crate) const POOL_TILE: usize = 8;

/// A second layer's weights prepared for this target's kernel: widened to int16 on
/// the Cortex-M4 ([`dsp::Wide`]); nothing elsewhere.
#[cfg(spacer_dsp)]
type L2Wide = dsp::Wide;
#[cfg(not(spacer_dsp))]
type L2Wide = ();

/// Input pairs of a 64-wide layer.
const HP: usize = HIDDEN / 2;

/// The int16 activations of up to `S` slots, pair-interleaved: `rows[p][s]` holds
/// inputs `2p` and `2p + 1` of slot `s` (so that two slots' pairs load as one
/// doubleword).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(8))]
pub(crate) struct Tile<const S: usize> {
    pub(crate) rows: [[u32; S]; HP],
}

impl<const S: usize> Tile<S> {
    pub(crate) const fn new() -> Self {
        Self { rows: [[0; S]; HP] }
    }

    fn set_column(&mut self, col: usize, t: &[i16; HIDDEN]) {
        for (row, pair) in self.rows.iter_mut().zip(t.chunks_exact(2)) {
            if let Some(w) = row.get_mut(col) {
                *w = pack_pair(pair[0], pair[1]);
            }
        }
    }
}

/// Portable integer kernels: the definition every other implementation must match.
pub(crate) mod portable {
    use super::{HIDDEN, HP, Tile};

    #[inline(always)]
    fn lanes(x: u32) -> (i32, i32) {
        (x as u16 as i16 as i32, (x >> 16) as u16 as i16 as i32)
    }

    /// The four weights of a packed word: `(w[2p][2q], w[2p+1][2q])` and
    /// `(w[2p][2q+1], w[2p+1][2q+1])`.
    #[inline(always)]
    fn weights(w: u32) -> ([i32; 2], [i32; 2]) {
        let b = w.to_le_bytes();
        (
            [b[0] as i8 as i32, b[2] as i8 as i32],
            [b[1] as i8 as i32, b[3] as i8 as i32],
        )
    }

    /// `acc[j] = b[j] + sum_p x[p] . w[p][j]` over `acc.len()` outputs (`w` has
    /// `acc.len() / 2` words per input pair). Pairs of zero inputs are skipped.
    pub fn dense(x: &[u32], w: &[u32], b: &[i32], acc: &mut [i32]) {
        let n = acc.len();
        let per_row = n.div_ceil(2);
        for (a, &bias) in acc.iter_mut().zip(b) {
            *a = bias;
        }
        if per_row == 0 {
            return;
        }
        for (&xp, row) in x.iter().zip(w.chunks_exact(per_row)) {
            if xp == 0 {
                continue;
            }
            let (x0, x1) = lanes(xp);
            for (a, &word) in acc.chunks_exact_mut(2).zip(row) {
                let (w0, w1) = weights(word);
                a[0] = a[0].wrapping_add(x0 * w0[0]).wrapping_add(x1 * w0[1]);
                a[1] = a[1].wrapping_add(x0 * w1[0]).wrapping_add(x1 * w1[1]);
            }
        }
    }

    /// [`super::normalize_element`] over the 64 values of `d`.
    pub fn normalize_tanh(
        d: &[i32; HIDDEN],
        h: u32,
        inv: i32,
        affine: &[u32; HIDDEN],
        out: &mut [i16; HIDDEN],
    ) {
        for ((o, &dj), &ab) in out.iter_mut().zip(d.iter()).zip(affine.iter()) {
            *o = super::normalize_element(dj, h, inv, ab);
        }
    }

    /// The 64 x 64 second layer of the first `n` slots of `tile`, max-pooled into
    /// `pooled`: `pooled[j] = max(pooled[j], out_s[j] for s < n)`.
    pub fn dense_tile_max<const S: usize>(
        tile: &Tile<S>,
        n: usize,
        w: &[u32],
        b: &[i32],
        pooled: &mut [i32; HIDDEN],
    ) {
        let n = n.min(S);
        let mut out = [[0i32; HIDDEN]; S];
        for o in out.iter_mut().take(n) {
            for (a, &bias) in o.iter_mut().zip(b) {
                *a = bias;
            }
        }
        for (row, ws) in tile.rows.iter().zip(w.chunks_exact(HP)) {
            // Expand the row's 64 weight pairs once for every slot of the tile.
            let mut w0 = [0i32; HIDDEN];
            let mut w1 = [0i32; HIDDEN];
            for (q, &word) in ws.iter().enumerate() {
                let (a, b) = weights(word);
                w0[2 * q] = a[0];
                w1[2 * q] = a[1];
                w0[2 * q + 1] = b[0];
                w1[2 * q + 1] = b[1];
            }
            for (o, &xp) in out.iter_mut().zip(row.iter()).take(n) {
                let (x0, x1) = lanes(xp);
                for ((a, &u), &v) in o.iter_mut().zip(w0.iter()).zip(w1.iter()) {
                    *a = a.wrapping_add(x0 * u + x1 * v);
                }
            }
        }
        for o in out.iter().take(n) {
            for (p, &v) in pooled.iter_mut().zip(o.iter()) {
                *p = (*p).max(v);
            }
        }
    }
}

#[cfg(spacer_dsp)]
use dsp as kernels;
#[cfg(not(spacer_dsp))]
use portable as kernels;

/// The kernels the network runs: the Cortex-M4 DSP ones on thumbv7em, the AVX-512 ones
/// on x86-64 hosts that have it (detected at run time), the portable ones otherwise.
/// All compute the portable definitions' bits.
mod fast {
    use super::{HIDDEN, Tile, kernels};

    #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
    #[inline(always)]
    fn avx512() -> bool {
        crate::simd::avx512_vnni()
    }

    pub(super) fn dense(x: &[u32], w: &[u32], b: &[i32], acc: &mut [i32]) {
        #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
        if avx512() {
            // SAFETY: AVX-512 F/BW/DQ/VL detected at run time.
            #[allow(unsafe_code)]
            unsafe {
                return super::x86::dense(x, w, b, acc);
            }
        }
        kernels::dense(x, w, b, acc)
    }

    pub(super) fn dense_tile_max<const S: usize>(
        tile: &Tile<S>,
        n: usize,
        w: &[u32],
        b: &[i32],
        pooled: &mut [i32; HIDDEN],
    ) {
        #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
        if avx512() {
            // SAFETY: AVX-512 F/BW/DQ/VL detected at run time.
            #[allow(unsafe_code)]
            unsafe {
                return super::x86::dense_tile_max(tile, n, w, b, pooled);
            }
        }
        kernels::dense_tile_max(tile, n, w, b, pooled)
    }

    pub(super) fn quantize(x: &[f32], scale: &[u32], q: &mut [u32; 7]) {
        #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
        if avx512() {
            // SAFETY: AVX-512 F/BW/DQ/VL/VNNI detected at run time.
            #[allow(unsafe_code)]
            unsafe {
                return super::x86::quantize(x, scale, q);
            }
        }
        #[inline(always)]
        fn one(x: f32, s: u32) -> u32 {
            #[cfg(spacer_dsp)]
            let v = super::dsp::quantize_input(x, f32::from_bits(s));
            #[cfg(not(spacer_dsp))]
            let v = super::quantize_input(x, f32::from_bits(s));
            v as u16 as u32
        }
        // Whole pairs, then an odd last feature in the low half of its word.
        *q = [0; 7];
        let n = x.len().min(scale.len());
        let (x, scale) = (x.get(..n).unwrap_or(&[]), scale.get(..n).unwrap_or(&[]));
        let (xp, xr) = x.as_chunks::<2>();
        let (sp, sr) = scale.as_chunks::<2>();
        for ((w, xs), ss) in q.iter_mut().zip(xp).zip(sp) {
            *w = one(xs[0], ss[0]) | one(xs[1], ss[1]) << 16;
        }
        if let (Some(w), [xl], [sl]) = (q.get_mut(xp.len()), xr, sr) {
            *w = one(*xl, *sl);
        }
    }

    /// [`layer_norm_tanh`] into column `col` of `tile`.
    pub(super) fn layer_norm_tanh_column<const S: usize>(
        acc: &mut [i32; HIDDEN],
        m: &[i32],
        eps: u64,
        affine: &[u32],
        tile: &mut Tile<S>,
        col: usize,
    ) {
        #[cfg(spacer_dsp)]
        super::dsp::layer_norm_tanh_column(acc, m, eps, affine, tile, col);
        #[cfg(not(spacer_dsp))]
        {
            let mut t = [0i16; HIDDEN];
            layer_norm_tanh(acc, m, eps, affine, &mut t);
            tile.set_column(col, &t);
        }
    }

    pub(super) fn layer_norm_tanh(
        acc: &mut [i32; HIDDEN],
        m: &[i32],
        eps: u64,
        affine: &[u32],
        out: &mut [i16; HIDDEN],
    ) {
        #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
        if avx512() {
            // SAFETY: AVX-512 F/BW/DQ/VL detected at run time.
            #[allow(unsafe_code)]
            unsafe {
                return super::x86::layer_norm_tanh(acc, m, eps, affine, out);
            }
        }
        #[cfg(spacer_dsp)]
        return super::dsp::layer_norm_tanh(acc, m, eps, affine, out);
        #[cfg(not(spacer_dsp))]
        super::layer_norm_tanh(acc, m, eps, affine, out)
    }
}

/// The int8 network over borrowed, validated words.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QuantNet<'w> {
    words: &'w [u32],
    layout: QuantLayout,
    /// What an empty partner / road slot encodes to (the pooled encoders' int32 sums).
    empty_partner: [i32; HIDDEN],
    empty_road: [i32; HIDDEN],
}

/// `|b_j| + 32767 * sum_i |w_ij|` per output of a packed matrix, into `out`.
fn sum_bounds(w: &[u32], b: &[u32], inputs: usize, outputs: usize, out: &mut [i64]) {
    let per_row = outputs.div_ceil(2);
    for (j, o) in out.iter_mut().enumerate().take(outputs) {
        let mut s = 0i64;
        for p in 0..pairs(inputs) {
            let word = w.get(p * per_row + j / 2).copied().unwrap_or(0);
            let bytes = word.to_le_bytes();
            let (lo, hi) = (bytes[j % 2] as i8, bytes[2 + j % 2] as i8);
            s += (lo as i64).abs() + (hi as i64).abs();
        }
        let bias = b.get(j).map_or(0, |&v| v as i32 as i64);
        *o = bias.abs() + ACT_MAX as i64 * s;
    }
}

fn read_u64(w: &[u32]) -> u64 {
    w.first().copied().unwrap_or(0) as u64 | (w.get(1).copied().unwrap_or(0) as u64) << 32
}

impl<'w> QuantNet<'w> {
    /// Validates `words` as an int8 parameter set for `dims` (see the module docs for
    /// what is bounded) and precomputes the empty-slot encodings.
    pub(crate) fn new(dims: PolicyDims, words: &'w [u32]) -> Result<Self, PolicyError> {
        dims.validate()?;
        let layout = QuantLayout::new(dims.actions());
        if words.len() != layout.total {
            return Err(PolicyError::WrongParamCount);
        }
        let get = |at: usize, n: usize| words.get(at..at + n).unwrap_or(&[]);
        let mut bounds = [0i64; MAX_ACTIONS + 2];
        for e in [&layout.ego, &layout.partner, &layout.road] {
            let scale_ok = get(e.in_scale, e.inputs).iter().all(|&w| {
                let s = f32::from_bits(w);
                s.is_finite() && s > 0.0 && s <= MAX_IN_SCALE
            });
            if !scale_ok {
                return Err(PolicyError::BadWeight);
            }
            sum_bounds(
                get(e.l1_w, packed_words(e.inputs, HIDDEN)),
                get(e.l1_b, HIDDEN),
                e.inputs,
                HIDDEN,
                &mut bounds,
            );
            for (&m, &b) in get(e.l1_m, HIDDEN).iter().zip(bounds.iter()) {
                let m = m as i32;
                if m < 0 || b > i32::MAX as i64 || smmulr(b as i32, m) as i64 > LN_LIMIT {
                    return Err(PolicyError::BadWeight);
                }
            }
            if !(1..=EPS_LIMIT).contains(&read_u64(get(e.ln_eps, 2))) {
                return Err(PolicyError::BadWeight);
            }
            if e.pooled {
                sum_bounds(
                    get(e.l2_w, packed_words(HIDDEN, HIDDEN)),
                    get(e.l2_b, HIDDEN),
                    HIDDEN,
                    HIDDEN,
                    &mut bounds,
                );
                let sums_ok = bounds[..HIDDEN].iter().all(|&b| b <= i32::MAX as i64);
                let m_ok = get(e.pool_m, HIDDEN).iter().all(|&m| (m as i32) >= 0);
                if !(sums_ok && m_ok) {
                    return Err(PolicyError::BadWeight);
                }
            }
        }
        let ho = layout.head_outputs;
        sum_bounds(
            get(layout.head_w, packed_words(HEAD_INPUTS, ho)),
            get(layout.head_b, ho),
            HEAD_INPUTS,
            ho,
            &mut bounds,
        );
        for (&m, &b) in get(layout.head_m, ho).iter().zip(bounds.iter()) {
            let m = m as i32;
            if m < 0 || b > i32::MAX as i64 || (smmulr(b as i32, m) as i64) > LOGIT_LIMIT {
                return Err(PolicyError::BadWeight);
            }
        }
        for at in [layout.logit_step, layout.value_step] {
            let s = f32::from_bits(get(at, 1).first().copied().unwrap_or(0));
            if !(s.is_finite() && s > 0.0 && s <= MAX_STEP) {
                return Err(PolicyError::BadWeight);
            }
        }
        let mut net = Self {
            words,
            layout,
            empty_partner: [0; HIDDEN],
            empty_road: [0; HIDDEN],
        };
        net.empty_partner = net.encode_one(&layout.partner, &[0.0; PARTNER_FEATURES]);
        net.empty_road = net.encode_one(&layout.road, &[0.0; ROAD_FEATURES]);
        Ok(net)
    }

    /// The parameter words.
    pub(crate) fn words(&self) -> &'w [u32] {
        self.words
    }

    #[inline(always)]
    fn words_at(&self, at: usize, n: usize) -> &'w [u32] {
        // Offsets come from the layout the length was checked against.
        self.words.get(at..at + n).unwrap_or(&[])
    }

    #[inline(always)]
    fn i32s_at(&self, at: usize, n: usize) -> &'w [i32] {
        bytemuck::try_cast_slice(self.words_at(at, n)).unwrap_or(&[])
    }

    #[inline(always)]
    fn f32_at(&self, at: usize) -> f32 {
        f32::from_bits(self.words_at(at, 1).first().copied().unwrap_or(0))
    }

    /// One slot through quantization, the first layer, the LayerNorm and the tanh.
    fn first_stage(&self, e: &QuantEncoderLayout, x: &[f32], t: &mut [i16; HIDDEN]) {
        let mut q = [0u32; pairs(ROAD_FEATURES)];
        fast::quantize(x, self.words_at(e.in_scale, e.inputs), &mut q);
        let np = pairs(e.inputs).min(q.len());
        let mut acc = [0i32; HIDDEN];
        fast::dense(
            &q[..np],
            self.words_at(e.l1_w, packed_words(e.inputs, HIDDEN)),
            self.i32s_at(e.l1_b, HIDDEN),
            &mut acc,
        );
        fast::layer_norm_tanh(
            &mut acc,
            self.i32s_at(e.l1_m, HIDDEN),
            read_u64(self.words_at(e.ln_eps, 2)),
            self.words_at(e.ln_affine, HIDDEN),
            t,
        );
    }

    /// [`QuantNet::first_stage`] with its outputs written into column `col` of `tile`.
    /// `acc` is scratch (every value is written before it is read).
    fn first_stage_column<const S: usize>(
        &self,
        e: &QuantEncoderLayout,
        x: &[f32],
        tile: &mut Tile<S>,
        col: usize,
        acc: &mut [i32; HIDDEN],
    ) {
        let mut q = [0u32; pairs(ROAD_FEATURES)];
        fast::quantize(x, self.words_at(e.in_scale, e.inputs), &mut q);
        let np = pairs(e.inputs).min(q.len());
        fast::dense(
            &q[..np],
            self.words_at(e.l1_w, packed_words(e.inputs, HIDDEN)),
            self.i32s_at(e.l1_b, HIDDEN),
            acc,
        );
        fast::layer_norm_tanh_column(
            acc,
            self.i32s_at(e.l1_m, HIDDEN),
            read_u64(self.words_at(e.ln_eps, 2)),
            self.words_at(e.ln_affine, HIDDEN),
            tile,
            col,
        );
    }

    /// [`QuantNet::first_stage`] of the first `n` slots into the columns of `tile`.
    fn first_tile<const S: usize>(
        &self,
        e: &QuantEncoderLayout,
        slots: &[&[f32]; S],
        n: usize,
        tile: &mut Tile<S>,
        acc: &mut [i32; HIDDEN],
    ) {
        #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
        if crate::simd::avx512_vnni() {
            let l = x86::FirstLayer {
                inputs: e.inputs,
                scale: self.words_at(e.in_scale, e.inputs),
                w: self.words_at(e.l1_w, packed_words(e.inputs, HIDDEN)),
                b: self.i32s_at(e.l1_b, HIDDEN),
                m: self.i32s_at(e.l1_m, HIDDEN),
                eps: read_u64(self.words_at(e.ln_eps, 2)),
                affine: self.words_at(e.ln_affine, HIDDEN),
            };
            // SAFETY: AVX-512 F/BW/DQ/VL/VNNI detected at run time.
            #[allow(unsafe_code)]
            unsafe {
                x86::first_tile(slots, n, &l, tile)
            };
            return;
        }
        for (k, x) in slots.iter().enumerate().take(n) {
            self.first_stage_column(e, x, tile, k, acc);
        }
    }

    /// The second layer of the first `n` columns of `tile`, max-pooled into `pooled`
    /// (from `wide`, the weights widened to int16, when given).
    fn second_stage(
        &self,
        e: &QuantEncoderLayout,
        tile: &Tile<POOL_TILE>,
        n: usize,
        pooled: &mut [i32; HIDDEN],
        wide: Option<&L2Wide>,
    ) {
        #[cfg(spacer_dsp)]
        if let Some(w) = wide {
            return dsp::dense_tile_max_wide(tile, n, w, pooled);
        }
        #[cfg(not(spacer_dsp))]
        let _ = wide;
        fast::dense_tile_max(
            tile,
            n,
            self.words_at(e.l2_w, packed_words(HIDDEN, HIDDEN)),
            self.i32s_at(e.l2_b, HIDDEN),
            pooled,
        );
    }

    /// A pooled encoder's int32 sums for one slot.
    fn encode_one(&self, e: &QuantEncoderLayout, x: &[f32]) -> [i32; HIDDEN] {
        let mut t = [0i16; HIDDEN];
        self.first_stage(e, x, &mut t);
        let mut tile = Tile::<1>::new();
        tile.set_column(0, &t);
        let mut out = [i32::MIN; HIDDEN];
        portable::dense_tile_max(
            &tile,
            1,
            self.words_at(e.l2_w, packed_words(HIDDEN, HIDDEN)),
            self.i32s_at(e.l2_b, HIDDEN),
            &mut out,
        );
        out
    }

    /// Max-pooled second-layer sums over `slots` (each `width` long); empty slots
    /// (`occupied` unset) use `empty`, computed once. `acc` is the first layer's
    /// scratch (cleared once by the caller, not per slot).
    #[allow(clippy::too_many_arguments)]
    fn pool(
        &self,
        e: &QuantEncoderLayout,
        slots: &[f32],
        width: usize,
        occupied: &SlotMask,
        empty: &[i32; HIDDEN],
        out: &mut [i32; HIDDEN],
        acc: &mut [i32; HIDDEN],
    ) {
        // Widening the second layer's weights costs about as much as three slots
        // save with them.
        #[cfg(spacer_dsp)]
        if occupied.at_least(3) {
            return dsp::with_wide(
                self.words_at(e.l2_w, packed_words(HIDDEN, HIDDEN)),
                self.i32s_at(e.l2_b, HIDDEN),
                |wide| self.pool_with(e, slots, width, occupied, empty, out, acc, wide),
            );
        }
        self.pool_with(e, slots, width, occupied, empty, out, acc, None)
    }

    /// [`QuantNet::pool`] with the second layer's weights widened (`wide`) or not.
    #[allow(clippy::too_many_arguments)]
    fn pool_with(
        &self,
        e: &QuantEncoderLayout,
        slots: &[f32],
        width: usize,
        occupied: &SlotMask,
        empty: &[i32; HIDDEN],
        out: &mut [i32; HIDDEN],
        acc: &mut [i32; HIDDEN],
        wide: Option<&L2Wide>,
    ) {
        // Integer max is exact and order-free: merge in any order, from the smallest
        // value up. The occupied slots are visited by their mask bits (most slots are
        // empty), the empty encoding merged once at the end if any slot was empty.
        *out = [i32::MIN; HIDDEN];
        let n_slots = slots.len().checked_div(width).unwrap_or(0);
        let mut done = 0usize;
        let mut tile = Tile::<POOL_TILE>::new();
        let mut pending: [&[f32]; POOL_TILE] = [&[]; POOL_TILE];
        let mut n = 0usize;
        for (k, &word) in occupied.words().iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let i = 64 * k + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(slot) = slots.get(i * width..(i + 1) * width) else {
                    continue;
                };
                if i >= n_slots {
                    continue;
                }
                pending[n] = slot;
                n += 1;
                done += 1;
                if n == POOL_TILE {
                    self.first_tile(e, &pending, n, &mut tile, acc);
                    self.second_stage(e, &tile, n, out, wide);
                    n = 0;
                }
            }
        }
        if n > 0 {
            self.first_tile(e, &pending, n, &mut tile, acc);
            self.second_stage(e, &tile, n, out, wide);
        }
        if done < n_slots {
            for (o, &v) in out.iter_mut().zip(empty.iter()) {
                *o = (*o).max(v);
            }
        } else if n_slots == 0 {
            // No slots at all (zero-slot dims): the empty encoding stands in.
            *out = *empty;
        }
    }

    /// The head's integer outputs (K logits, then the value) for one validated
    /// observation.
    fn head(&self, dims: &PolicyDims, obs: &[f32], scan: &Scan, out: &mut [i32; MAX_ACTIONS + 2]) {
        let lay = &self.layout;
        let p_len = dims.max_partners as usize * PARTNER_FEATURES;
        let (ego, rest) = obs.split_at(EGO_FEATURES.min(obs.len()));
        let (partners, roads) = rest.split_at(p_len.min(rest.len()));
        // The head's inputs as pairs: ego tanh outputs, then the two pooled encodings.
        let mut z = [0u32; HEAD_INPUTS / 2];
        let mut t = [0i16; HIDDEN];
        self.first_stage(&lay.ego, ego, &mut t);
        for (zp, pair) in z.iter_mut().zip(t.chunks_exact(2)) {
            *zp = pack_pair(pair[0], pair[1]);
        }
        let mut pooled = [0i32; HIDDEN];
        let mut scratch = [0i32; HIDDEN];
        for (block, e, empty, rows, mask) in [
            (
                1,
                &lay.partner,
                &self.empty_partner,
                partners,
                &scan.partners,
            ),
            (2, &lay.road, &self.empty_road, roads, &scan.roads),
        ] {
            let width = e.inputs;
            self.pool(e, rows, width, mask, empty, &mut pooled, &mut scratch);
            let m = self.i32s_at(e.pool_m, HIDDEN);
            let zs = z.get_mut(block * HP..(block + 1) * HP).unwrap_or(&mut []);
            for ((zp, v), m) in zs
                .iter_mut()
                .zip(pooled.chunks_exact(2))
                .zip(m.chunks_exact(2))
            {
                *zp = pack_pair(sat16(smmulr(v[0], m[0])), sat16(smmulr(v[1], m[1])));
            }
        }
        let ho = lay.head_outputs.min(MAX_ACTIONS + 2);
        // The sums straight into `out`, then scaled in place.
        let acc = &mut out[..ho];
        fast::dense(
            &z,
            self.words_at(lay.head_w, packed_words(HEAD_INPUTS, ho)),
            self.i32s_at(lay.head_b, ho),
            acc,
        );
        for (o, &m) in acc.iter_mut().zip(self.i32s_at(lay.head_m, ho)) {
            *o = smmulr(*o, m);
        }
    }

    /// Logits and value of one observation (validated by the caller).
    pub(crate) fn forward(
        &self,
        dims: &PolicyDims,
        obs: &[f32],
        scan: &Scan,
        logits: &mut [f32],
    ) -> f32 {
        let k = dims.actions();
        let mut ints = [0i32; MAX_ACTIONS + 2];
        self.head(dims, obs, scan, &mut ints);
        let step = self.f32_at(self.layout.logit_step);
        for (l, &v) in logits.iter_mut().zip(ints.iter()).take(k) {
            *l = v as f32 * step;
        }
        ints.get(k)
            .map_or(0.0, |&v| v as f32 * self.f32_at(self.layout.value_step))
    }

    /// Integer logits (K) and value (index K) of one validated observation: what
    /// [`QuantNet::forward`] scales to f32.
    pub(crate) fn forward_int(
        &self,
        dims: &PolicyDims,
        obs: &[f32],
        scan: &Scan,
        out: &mut [i32; MAX_ACTIONS + 2],
    ) {
        self.head(dims, obs, scan, out);
    }
}

/// Runs this target's integer kernels (the Cortex-M4 DSP assembly on `thumbv7em`,
/// the portable code elsewhere) and the portable definitions on `cases` rounds of
/// pseudo-random inputs (extreme and zero values included) and compares every output:
/// a first layer (7 input pairs, 64 outputs), the head's shape (96 pairs, 202 outputs,
/// its weights taken from `head_words` when that holds at least 9,696 words: any bits
/// are valid int8 weights) and the second layer over one and two slots. Returns the
/// number of outputs compared, or the round that differed.
///
/// # Errors
/// The index of the first round whose outputs differ.
#[inline(never)]
pub fn check_kernels(seed: u64, cases: usize, head_words: &[u32]) -> Result<usize, usize> {
    let mut rng = crate::math::Rng::new(seed);
    let mut compared = 0usize;
    // Weights for the first and second layers: 32 x 32 words.
    let mut words = [0u32; HP * HP];
    let mut bias = [0i32; 204];
    const HEAD_WORDS: usize = HEAD_INPUTS / 2 * 101;
    for case in 0..cases {
        for w in words.iter_mut() {
            *w = rng.next_u32();
        }
        for b in bias.iter_mut() {
            *b = rng.next_u32() as i32 >> 4;
        }
        let value = |rng: &mut crate::math::Rng| -> i16 {
            match rng.below(8) {
                0 => 0,
                1 => ACT_MAX as i16,
                2 => -ACT_MAX as i16,
                _ => rng.next_u32() as i16,
            }
        };
        let mut x = [0u32; HEAD_INPUTS / 2];
        for p in x.iter_mut() {
            *p = if rng.below(4) == 0 {
                0
            } else {
                pack_pair(value(&mut rng), value(&mut rng))
            };
        }
        let mut shapes: [(usize, usize, &[u32]); 2] = [(7, HIDDEN, &words[..7 * HP]), (0, 0, &[])];
        if let Some(hw) = head_words.get(..HEAD_WORDS) {
            shapes[1] = (HEAD_INPUTS / 2, 202, hw);
        }
        for (pairs, outs, w) in shapes {
            let (mut a, mut b) = ([0i32; 204], [0i32; 204]);
            fast::dense(&x[..pairs], w, &bias[..outs], &mut a[..outs]);
            portable::dense(&x[..pairs], w, &bias[..outs], &mut b[..outs]);
            if a != b {
                return Err(case);
            }
            compared += outs;
        }
        // The LayerNorm's output step: any deviations, shift, inverse and gains.
        let mut d = [0i32; HIDDEN];
        let mut affine = [0u32; HIDDEN];
        for (dj, ab) in d.iter_mut().zip(affine.iter_mut()) {
            *dj = rng.next_u32() as i32 >> rng.below(12);
            *ab = rng.next_u32();
        }
        let (h, inv) = (rng.below(17), (rng.next_u32() >> 1) as i32);
        let (mut a, mut b) = ([0i16; HIDDEN], [0i16; HIDDEN]);
        kernels::normalize_tanh(&d, h, inv, &affine, &mut a);
        portable::normalize_tanh(&d, h, inv, &affine, &mut b);
        if a != b {
            return Err(case);
        }
        compared += HIDDEN;
        // Input quantization: features near and far beyond the scales' ranges.
        let mut xs = [0.0f32; ROAD_FEATURES];
        let mut scales = [0u32; ROAD_FEATURES];
        for (x, sc) in xs.iter_mut().zip(scales.iter_mut()) {
            *x = (rng.next_f32() - 0.5) * [0.001f32, 1.0, 100.0, 1.0e4][rng.below(4) as usize];
            *sc = (1.0 + 1.0e5 * rng.next_f32()).to_bits();
        }
        let mut qa = [0u32; 7];
        fast::quantize(&xs, &scales, &mut qa);
        let mut qb = [0u32; 7];
        for (i, (&xi, &sc)) in xs.iter().zip(&scales).enumerate() {
            qb[i / 2] |= (quantize_input(xi, f32::from_bits(sc)) as u16 as u32) << (16 * (i % 2));
        }
        if qa != qb {
            return Err(case);
        }
        compared += ROAD_FEATURES;
        // The whole LayerNorm: first-layer sums, multipliers, epsilon, gains.
        let mut sums = [0i32; HIDDEN];
        let mut mult = [0i32; HIDDEN];
        for (a, m) in sums.iter_mut().zip(mult.iter_mut()) {
            *a = rng.next_u32() as i32 >> (1 + rng.below(8));
            *m = (rng.next_u32() >> (8 + rng.below(8))) as i32;
        }
        let eps = 1 + ((rng.next_u32() as u64) << rng.below(28));
        let mut sums2 = sums;
        let mut sums3 = sums;
        let (mut a, mut b) = ([0i16; HIDDEN], [0i16; HIDDEN]);
        fast::layer_norm_tanh(&mut sums, &mult, eps, &affine, &mut a);
        layer_norm_tanh(&mut sums2, &mult, eps, &affine, &mut b);
        if a != b {
            return Err(case);
        }
        compared += HIDDEN;
        // The same written into a tile's last column, as the pooled encoders do.
        let mut got = Tile::<POOL_TILE>::new();
        let mut want = got;
        fast::layer_norm_tanh_column(&mut sums3, &mult, eps, &affine, &mut got, POOL_TILE - 1);
        want.set_column(POOL_TILE - 1, &b);
        if got.rows != want.rows {
            return Err(case);
        }
        compared += HIDDEN;
        // The second layer over one and two slots.
        let mut tile = Tile::<POOL_TILE>::new();
        for row in tile.rows.iter_mut() {
            for v in row.iter_mut() {
                *v = pack_pair(value(&mut rng), value(&mut rng));
            }
        }
        for n in 1..=POOL_TILE {
            let mut a = [0i32; HIDDEN];
            for v in a.iter_mut() {
                *v = rng.next_u32() as i32 >> 3;
            }
            let mut b = a;
            let w = &words[..HP * HP];
            fast::dense_tile_max(&tile, n, w, &bias[..HIDDEN], &mut a);
            portable::dense_tile_max(&tile, n, w, &bias[..HIDDEN], &mut b);
            if a != b {
                return Err(case);
            }
            compared += n * HIDDEN;
            // The same from the weights widened to int16, as the pooled encoders run
            // it with three or more occupied slots.
            #[cfg(spacer_dsp)]
            {
                let mut c = [0i32; HIDDEN];
                for v in c.iter_mut() {
                    *v = rng.next_u32() as i32 >> 3;
                }
                let mut d = c;
                let bias64: &[i32; HIDDEN] = bias.first_chunk().unwrap_or(&[0; HIDDEN]);
                dsp::with_wide(w, bias64, |wide| {
                    if let Some(wide) = wide {
                        dsp::dense_tile_max_wide(&tile, n, wide, &mut c);
                    }
                });
                portable::dense_tile_max(&tile, n, w, bias64, &mut d);
                if c != d {
                    return Err(case);
                }
                compared += n * HIDDEN;
            }
        }
    }
    Ok(compared)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::math::Rng;
    use crate::policy::Policy;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn set_i8(words: &mut [u32], at: usize, outputs: usize, i: usize, j: usize, v: i8) {
        let (w, b) = packed_index(outputs, i, j);
        let mut bytes = words[at + w].to_le_bytes();
        bytes[b] = v as u8;
        words[at + w] = u32::from_le_bytes(bytes);
    }

    fn get_i8(words: &[u32], at: usize, outputs: usize, i: usize, j: usize) -> i32 {
        let (w, b) = packed_index(outputs, i, j);
        words[at + w].to_le_bytes()[b] as i8 as i32
    }

    /// A valid int8 parameter set with random weights and plausible scales.
    pub(crate) fn random_words(actions: usize, seed: u64) -> Vec<u32> {
        let lay = QuantLayout::new(actions);
        let mut w = vec![0u32; lay.total];
        let mut rng = Rng::new(seed);
        let small = |rng: &mut Rng, r: i32| rng.below(2 * r as u32 + 1) as i32 - r;
        for e in [lay.ego, lay.partner, lay.road] {
            for i in 0..e.inputs {
                w[e.in_scale + i] = (2000.0 + 30000.0 * rng.next_f32()).to_bits();
            }
            for i in 0..e.inputs {
                for j in 0..HIDDEN {
                    let v = small(&mut rng, 127) as i8;
                    set_i8(&mut w, e.l1_w, HIDDEN, i, j, v);
                }
            }
            for j in 0..HIDDEN {
                w[e.l1_b + j] = small(&mut rng, 1_000_000) as u32;
                w[e.l1_m + j] = (1u32 << 25) + rng.below(1 << 24);
                let gamma = (4096 + small(&mut rng, 2000)) as i16;
                let beta = small(&mut rng, 3000) as i16;
                w[e.ln_affine + j] = pack_pair(gamma, beta);
            }
            w[e.ln_eps] = 1000;
            if e.pooled {
                for i in 0..HIDDEN {
                    for j in 0..HIDDEN {
                        let v = small(&mut rng, 127) as i8;
                        set_i8(&mut w, e.l2_w, HIDDEN, i, j, v);
                    }
                }
                for j in 0..HIDDEN {
                    w[e.l2_b + j] = small(&mut rng, 10_000_000) as u32;
                    w[e.pool_m + j] = (1u32 << 19) + rng.below(1 << 18);
                }
            }
        }
        for i in 0..HEAD_INPUTS {
            for j in 0..lay.head_outputs {
                let v = small(&mut rng, 127) as i8;
                set_i8(&mut w, lay.head_w, lay.head_outputs, i, j, v);
            }
        }
        for j in 0..lay.head_outputs {
            w[lay.head_b + j] = small(&mut rng, 10_000_000) as u32;
            w[lay.head_m + j] = (1u32 << 23) + rng.below(1 << 24);
        }
        w[lay.logit_step] = 1.0e-4f32.to_bits();
        w[lay.value_step] = 2.0e-4f32.to_bits();
        w
    }

    /// The network the obvious way: every slot encoded, every weight unpacked one by
    /// one, no tiles, no skipping.
    fn reference(words: &[u32], dims: &PolicyDims, obs: &[f32]) -> Vec<i32> {
        let lay = QuantLayout::new(dims.actions());
        let i32_at = |at: usize| words[at] as i32;
        let first = |e: &QuantEncoderLayout, x: &[f32]| -> [i16; HIDDEN] {
            let q: Vec<i32> = (0..e.inputs)
                .map(|i| quantize_input(x[i], f32::from_bits(words[e.in_scale + i])) as i32)
                .collect();
            let mut acc = [0i32; HIDDEN];
            for (j, aj) in acc.iter_mut().enumerate() {
                let mut a = i32_at(e.l1_b + j);
                for (i, &qi) in q.iter().enumerate() {
                    a += qi * get_i8(words, e.l1_w, HIDDEN, i, j);
                }
                *aj = a;
            }
            let m: Vec<i32> = (0..HIDDEN).map(|j| i32_at(e.l1_m + j)).collect();
            let eps = words[e.ln_eps] as u64 | (words[e.ln_eps + 1] as u64) << 32;
            let mut t = [0i16; HIDDEN];
            layer_norm_tanh(
                &mut acc,
                &m,
                eps,
                &words[e.ln_affine..e.ln_affine + HIDDEN],
                &mut t,
            );
            t
        };
        let second = |e: &QuantEncoderLayout, t: &[i16; HIDDEN]| -> Vec<i32> {
            (0..HIDDEN)
                .map(|j| {
                    let mut a = i32_at(e.l2_b + j);
                    for (i, &ti) in t.iter().enumerate() {
                        a += ti as i32 * get_i8(words, e.l2_w, HIDDEN, i, j);
                    }
                    a
                })
                .collect()
        };
        let pool = |e: &QuantEncoderLayout, slots: &[f32], w: usize| -> Vec<i16> {
            let mut best = vec![i32::MIN; HIDDEN];
            for s in slots.chunks(w) {
                for (b, v) in best.iter_mut().zip(second(e, &first(e, s))) {
                    *b = (*b).max(v);
                }
            }
            best.iter()
                .enumerate()
                .map(|(j, &v)| sat16(smmulr(v, i32_at(e.pool_m + j))))
                .collect()
        };
        let np = dims.max_partners as usize * 6;
        let mut z: Vec<i16> = first(&lay.ego, &obs[..6]).to_vec();
        z.extend(pool(&lay.partner, &obs[6..6 + np], 6));
        z.extend(pool(&lay.road, &obs[6 + np..], 13));
        (0..dims.actions() + 1)
            .map(|k| {
                let mut a = i32_at(lay.head_b + k);
                for (i, &zi) in z.iter().enumerate() {
                    a += zi as i32 * get_i8(words, lay.head_w, lay.head_outputs, i, k);
                }
                smmulr(a, i32_at(lay.head_m + k))
            })
            .collect()
    }

    fn sample_obs(dims: &PolicyDims, seed: u64, partners: usize, roads: usize) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut o = vec![0.0f32; dims.observation_len()];
        for v in &mut o[..6] {
            *v = rng.next_f32() - 0.5;
        }
        for s in 0..partners {
            for v in &mut o[6 + s * 6..12 + s * 6] {
                *v = rng.normal() * 0.3;
            }
        }
        let r0 = 6 + dims.max_partners as usize * 6;
        for s in 0..roads {
            let slot = &mut o[r0 + s * 13..r0 + s * 13 + 13];
            for v in &mut slot[..6] {
                *v = rng.normal() * 0.3;
            }
            slot[6 + (rng.below(7) as usize)] = 1.0;
        }
        o
    }

    #[test]
    fn forward_matches_the_obvious_implementation() {
        let dims = PolicyDims::default();
        let words = random_words(dims.actions(), 1);
        let pol = Policy::new_int8(dims, &words).unwrap();
        for (seed, np, nr) in [(1, 0, 0), (2, 5, 17), (3, 63, 200), (4, 1, 0), (5, 9, 1)] {
            let obs = sample_obs(&dims, seed, np, nr);
            let want = reference(&words, &dims, &obs);
            let mut ints = [0i32; MAX_ACTIONS + 2];
            pol.forward_int8(&obs, &mut ints).unwrap();
            assert_eq!(&ints[..201], &want[..], "seed {seed}");
            let mut logits = vec![0.0f32; 200];
            let v = pol.forward(&obs, &mut logits).unwrap();
            for (l, &w) in logits.iter().zip(&want) {
                assert_eq!(*l, w as f32 * 1.0e-4);
            }
            assert_eq!(v, want[200] as f32 * 2.0e-4);
            // Distinct logits: the run is not trivial.
            let distinct: std::collections::BTreeSet<i32> = want.iter().copied().collect();
            assert!(distinct.len() > 150, "{}", distinct.len());
        }
    }

    #[test]
    fn extreme_observations_never_overflow() {
        // The largest accepted magnitude everywhere, both signs: validation's bounds
        // hold, so the reference (which would panic on overflow in debug builds) and
        // the kernels agree.
        let dims = PolicyDims::default();
        let words = random_words(dims.actions(), 2);
        let pol = Policy::new_int8(dims, &words).unwrap();
        for sign in [1.0f32, -1.0] {
            let obs = vec![sign * crate::policy::MAX_OBSERVATION_MAGNITUDE; dims.observation_len()];
            let want = reference(&words, &dims, &obs);
            let mut ints = [0i32; MAX_ACTIONS + 2];
            pol.forward_int8(&obs, &mut ints).unwrap();
            assert_eq!(&ints[..201], &want[..]);
        }
    }

    #[test]
    fn batch_equals_single() {
        let dims = PolicyDims::default();
        let words = random_words(dims.actions(), 7);
        let pol = Policy::new_int8(dims, &words).unwrap();
        let d = dims.observation_len();
        let n = 5;
        let obs: Vec<f32> = (0..n)
            .flat_map(|i| sample_obs(&dims, 10 + i as u64, i * 3, i * 20))
            .collect();
        let mut logits = vec![0.0; n * 200];
        let mut values = vec![0.0; n];
        pol.forward_batch(&obs, &mut logits, &mut values).unwrap();
        for i in 0..n {
            let mut l = vec![0.0; 200];
            let v = pol.forward(&obs[i * d..(i + 1) * d], &mut l).unwrap();
            assert_eq!(&logits[i * 200..(i + 1) * 200], &l[..]);
            assert_eq!(values[i].to_bits(), v.to_bits());
        }
    }

    #[test]
    fn validation_refuses_out_of_bounds_parameters() {
        let dims = PolicyDims::default();
        let good = random_words(dims.actions(), 3);
        let lay = QuantLayout::new(dims.actions());
        assert!(Policy::new_int8(dims, &good).is_ok());
        assert_eq!(
            Policy::new_int8(dims, &good[1..]).unwrap_err(),
            PolicyError::WrongParamCount
        );
        let cases: [(usize, u32); 10] = [
            (lay.ego.in_scale, f32::NAN.to_bits()),
            (lay.road.in_scale + 3, 0.0f32.to_bits()),
            (lay.partner.in_scale, (-1.0f32).to_bits()),
            (lay.ego.l1_m, (-5i32) as u32),
            (lay.ego.l1_m + 3, i32::MAX as u32),
            (lay.road.ln_eps, 0),
            (lay.partner.pool_m, (-1i32) as u32),
            (lay.head_m + 17, 1 << 30),
            (lay.logit_step, f32::INFINITY.to_bits()),
            (lay.head_b + 4, i32::MAX as u32),
        ];
        for (at, v) in cases {
            let mut bad = good.clone();
            bad[at] = v;
            assert_eq!(
                Policy::new_int8(dims, &bad).unwrap_err(),
                PolicyError::BadWeight,
                "word {at}"
            );
        }
    }

    /// Both host paths (AVX-512 where the CPU has it, portable) give the same bits.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_and_portable_paths_agree() {
        let dims = PolicyDims::default();
        let words = random_words(dims.actions(), 9);
        let pol = Policy::new_int8(dims, &words).unwrap();
        let head: Vec<u32> = (0..10_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let mut runs = Vec::new();
        for on in [true, false] {
            crate::simd::force_avx512(on);
            assert!(check_kernels(3, 10, &head).is_ok());
            let mut out = Vec::new();
            for (seed, np, nr) in [(1, 3, 40), (2, 63, 200), (3, 0, 0)] {
                let obs = sample_obs(&dims, seed, np, nr);
                let mut ints = [0i32; MAX_ACTIONS + 2];
                pol.forward_int8(&obs, &mut ints).unwrap();
                out.push(ints.to_vec());
            }
            runs.push(out);
        }
        crate::simd::force_avx512(true);
        assert_eq!(runs[0], runs[1]);
    }

    #[test]
    fn kernels_agree_with_the_portable_definitions() {
        let head: Vec<u32> = (0..10_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        assert!(check_kernels(1, 20, &head).unwrap() > 20 * 400);
    }

    #[test]
    fn tanh_table_is_tanh() {
        let v = |i: usize| (libm::tanh((i as f64 - 512.0) / 64.0) * 32767.0).round() as i32;
        for (i, &e) in TANH_Q15.iter().enumerate() {
            assert_eq!(e as i16 as i32, v(i), "entry {i}");
            assert_eq!((e >> 16) as i16 as i32, v(i + 1) - v(i), "slope {i}");
        }
        let mut worst = 0.0f64;
        for y in -40_000..40_000 {
            let want = libm::tanh(y as f64 / 4096.0) * 32767.0;
            worst = worst.max((tanh_q15(y) as f64 - want).abs());
        }
        // Linear interpolation between entries 1/64 apart: under 2 units of 1/32767.
        assert!(worst < 2.0, "{worst}");
        assert_eq!(tanh_q15(i32::MAX), 32767);
        assert_eq!(tanh_q15(i32::MIN), -32767);
        assert_eq!(tanh_q15(0), 0);
    }

    #[test]
    fn fixed_point_layer_norm_tracks_the_real_one() {
        let mut rng = Rng::new(4);
        let mut worst = 0.0f64;
        let unit = [1i32 << 30; HIDDEN];
        for case in 0..300 {
            // Spreads from tiny to the full 2^20 range (g = a / 4 with m = 2^30).
            let scale = [3.0f32, 100.0, 5_000.0, 200_000.0, 1_000_000.0][case % 5];
            let mut acc = [0i32; HIDDEN];
            for v in acc.iter_mut() {
                *v = 4 * ((rng.normal() * scale) as i32).clamp(-(1 << 20), 1 << 20);
            }
            let gamma: Vec<i16> = (0..HIDDEN)
                .map(|_| (4096.0 + 2000.0 * rng.normal()) as i16)
                .collect();
            let beta: Vec<i16> = (0..HIDDEN)
                .map(|_| (1000.0 * rng.normal()) as i16)
                .collect();
            let affine: Vec<u32> = gamma
                .iter()
                .zip(&beta)
                .map(|(&g, &b)| pack_pair(g, b))
                .collect();
            let eps = 10u64;
            let mut t = [0i16; HIDDEN];
            let g: Vec<f64> = acc.iter().map(|&a| smmulr(a, 1 << 30) as f64).collect();
            layer_norm_tanh(&mut acc, &unit, eps, &affine, &mut t);
            let mean = g.iter().sum::<f64>() / 64.0;
            let var = g.iter().map(|&v| (v - mean).powi(2)).sum::<f64>() / 64.0;
            let eps_g = eps as f64 / (1u64 << 18) as f64;
            for j in 0..HIDDEN {
                let n = (g[j] - mean) / (var + eps_g).sqrt();
                let y = n * gamma[j] as f64 / 4096.0 + beta[j] as f64 / 4096.0;
                let want = libm::tanh(y) * 32767.0;
                worst = worst.max((t[j] as f64 - want).abs());
            }
        }
        // The normalised value's steps (2.4e-4 of a standard deviation, times gains up
        // to 2.5): under 1e-3 of the tanh's range.
        assert!(worst < 32.0, "{worst}");
    }

    #[test]
    fn input_quantization_rounds_and_saturates() {
        assert_eq!(quantize_input(0.0, 1000.0), 0);
        assert_eq!(quantize_input(-0.0, 1000.0), 0);
        assert_eq!(quantize_input(0.0015, 1000.0), 2);
        assert_eq!(quantize_input(-0.0015, 1000.0), -2);
        assert_eq!(quantize_input(1.0e4, 1.0e9), 32767);
        assert_eq!(quantize_input(-1.0e4, 1.0e9), -32767);
        assert_eq!(smmulr(1 << 30, 1 << 30), 1 << 28);
        assert_eq!(smmulr(-3, 1 << 30), -1);
        assert_eq!(smmulr(-3, -(1 << 30)), 1);
        assert_eq!(sat16(40_000), 32767);
        assert_eq!(sat16(-40_000), -32767);
    }
}
