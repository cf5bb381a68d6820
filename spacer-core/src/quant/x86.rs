//! AVX-512 kernels of the int8 network (x86-64 hosts with AVX-512 F, BW, DQ, VL and
//! VNNI, detected at run time: [`crate::simd::avx512_vnni`]). Weight words are turned
//! into int16 pairs per output (`VPSHUFB` within each word, `VPMOVSXBW`) and multiplied
//! against broadcast input pairs with `VPDPWSSD` (the non-saturating dot product: the
//! same exact, wrapping integer sums as the portable definitions in
//! [`super::portable`]), sixteen outputs per instruction. The LayerNorm
//! runs sixteen channels at a time with 64-bit products where the definition has them
//! and `VPGATHERDD` for the tanh table. Tests compare every kernel with the portable
//! one ([`super::check_kernels`] with both paths forced).
//!
//! # Safety
//! Every function needs AVX-512 F/BW/DQ/VL/VNNI (the callers check); loads and stores go
//! through slices whose lengths are checked first, or through fixed-size arrays.

#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::{HIDDEN, HP, LN_FRAC_BITS, TANH_Q15, Tile, pack_pair};

/// Sixteen outputs' int16 weight pairs from eight packed words (32 bytes at `w`):
/// lane `k` holds `(w[2p][j], w[2p+1][j])` for output `j = 2q + k` of the words.
///
/// # Safety
/// `w` readable for 8 words.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
#[inline]
unsafe fn pairs16(w: *const u32) -> __m512i {
    // Bytes 0, 2, 1, 3 of every word: output 2q's pair, then output 2q+1's.
    let order = _mm256_setr_epi8(
        0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15, 0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11,
        12, 14, 13, 15,
    );
    // SAFETY: 32 readable bytes (the caller's contract); unaligned load.
    let bytes = unsafe { _mm256_loadu_si256(w as *const __m256i) };
    _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(bytes, order))
}

/// As [`super::portable::dense`] for outputs in multiples of 16 (the first layers, 64;
/// the head, 202: 192 here and the rest in the portable code).
///
/// # Safety
/// AVX-512 F/BW/DQ/VL/VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn dense(x: &[u32], w: &[u32], b: &[i32], acc: &mut [i32]) {
    let n = acc.len();
    let per_row = n.div_ceil(2);
    let blocks = n / 16;
    if per_row == 0 || b.len() < n || w.len() < x.len() * per_row {
        return super::portable::dense(x, w, b, acc);
    }
    for blk in 0..blocks {
        // SAFETY: 16 biases at 16 blk <= n - 16.
        let mut a = unsafe { _mm512_loadu_si512(b.as_ptr().add(16 * blk) as *const _) };
        for (p, &xp) in x.iter().enumerate() {
            if xp == 0 {
                continue;
            }
            // SAFETY: words p * per_row + 8 blk .. + 8 lie in row p (8 blk + 8 <= per_row).
            let wv = unsafe { pairs16(w.as_ptr().add(p * per_row + 8 * blk)) };
            a = _mm512_dpwssd_epi32(a, _mm512_set1_epi32(xp as i32), wv);
        }
        // SAFETY: 16 outputs at 16 blk <= n - 16.
        unsafe { _mm512_storeu_si512(acc.as_mut_ptr().add(16 * blk) as *mut _, a) };
    }
    let done = 16 * blocks;
    if done < n {
        // The last outputs (fewer than 16): the portable code over their words.
        for (j, a) in acc.iter_mut().enumerate().skip(done) {
            *a = b[j];
        }
        for (&xp, row) in x.iter().zip(w.chunks_exact(per_row)) {
            if xp == 0 {
                continue;
            }
            let (x0, x1) = (xp as u16 as i16 as i32, (xp >> 16) as u16 as i16 as i32);
            for (q, &word) in row.iter().enumerate().skip(done / 2) {
                let by = word.to_le_bytes();
                if let Some(a) = acc.get_mut(2 * q) {
                    *a = a
                        .wrapping_add(x0 * by[0] as i8 as i32)
                        .wrapping_add(x1 * by[2] as i8 as i32);
                }
                if let Some(a) = acc.get_mut(2 * q + 1) {
                    *a = a
                        .wrapping_add(x0 * by[1] as i8 as i32)
                        .wrapping_add(x1 * by[3] as i8 as i32);
                }
            }
        }
    }
}

/// As [`super::portable::dense_tile_max`]: the 64 x 64 second layer of the first `n`
/// slots of `tile`, max-pooled into `pooled`, 32 outputs by up to 8 slots per register
/// block.
///
/// # Safety
/// AVX-512 F/BW/DQ/VL/VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn dense_tile_max<const S: usize>(
    tile: &Tile<S>,
    n: usize,
    w: &[u32],
    b: &[i32],
    pooled: &mut [i32; HIDDEN],
) {
    let (Ok(w), Ok(b)) = (
        <&[u32; HP * HP]>::try_from(w),
        <&[i32; HIDDEN]>::try_from(b),
    ) else {
        return super::portable::dense_tile_max(tile, n, w, b, pooled);
    };
    let n = n.min(S).min(8);
    if n == 0 {
        return;
    }
    for half in 0..2 {
        // SAFETY: 16 biases at 32 half + 16 k <= 48.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_si512(b.as_ptr().add(32 * half) as *const _),
                _mm512_loadu_si512(b.as_ptr().add(32 * half + 16) as *const _),
            )
        };
        let mut acc = [[b0, b1]; 8];
        for (p, row) in tile.rows.iter().enumerate() {
            // SAFETY: words 32 p + 16 half .. + 16 lie in row p of the 32 x 32 words.
            let (w0, w1) = unsafe {
                (
                    pairs16(w.as_ptr().add(HP * p + 16 * half)),
                    pairs16(w.as_ptr().add(HP * p + 16 * half + 8)),
                )
            };
            for (a, &xp) in acc.iter_mut().zip(row.iter()).take(n) {
                let xb = _mm512_set1_epi32(xp as i32);
                a[0] = _mm512_dpwssd_epi32(a[0], xb, w0);
                a[1] = _mm512_dpwssd_epi32(a[1], xb, w1);
            }
        }
        // SAFETY: 16 pooled values at 32 half + 16 k <= 48.
        unsafe {
            let p0 = pooled.as_mut_ptr().add(32 * half) as *mut __m512i;
            let p1 = pooled.as_mut_ptr().add(32 * half + 16) as *mut __m512i;
            let (mut m0, mut m1) = (
                _mm512_loadu_si512(p0 as *const _),
                _mm512_loadu_si512(p1 as *const _),
            );
            for a in acc.iter().take(n) {
                m0 = _mm512_max_epi32(m0, a[0]);
                m1 = _mm512_max_epi32(m1, a[1]);
            }
            _mm512_storeu_si512(p0 as *mut _, m0);
            _mm512_storeu_si512(p1 as *mut _, m1);
        }
    }
}

/// `(a * m + 2^31) >> 32` per 32-bit lane (the definition's `smmulr`).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
#[inline]
fn smmulr16(a: __m512i, m: __m512i) -> __m512i {
    let round = _mm512_set1_epi64(1 << 31);
    // Even lanes: 64-bit products of the low dwords; odd lanes: of the high ones.
    let even = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, m), round), 32);
    let odd = _mm512_srai_epi64(
        _mm512_add_epi64(
            _mm512_mul_epi32(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(m, 32)),
            round,
        ),
        32,
    );
    _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32))
}

/// `(inv * d) >> 16` per 32-bit lane, 64-bit product (the definition's `SMULWB` step).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
#[inline]
fn mul_shift16(inv: __m512i, d: __m512i) -> __m512i {
    let even = _mm512_srai_epi64(_mm512_mul_epi32(d, inv), 16);
    let odd = _mm512_srai_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64(d, 32), _mm512_srli_epi64(inv, 32)),
        16,
    );
    _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32))
}

/// As [`super::layer_norm_tanh`] (the same integer steps, sixteen channels at a time).
///
/// # Safety
/// AVX-512 F/BW/DQ/VL/VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn layer_norm_tanh(
    acc: &mut [i32; HIDDEN],
    m: &[i32],
    eps: u64,
    affine: &[u32],
    out: &mut [i16; HIDDEN],
) {
    let (Ok(m), Ok(affine)) = (
        <&[i32; HIDDEN]>::try_from(m),
        <&[u32; HIDDEN]>::try_from(affine),
    ) else {
        return super::layer_norm_tanh(acc, m, eps, affine, out);
    };
    let s = to_ln_unit(acc, m);
    let v = deviations(acc, s);
    let (h, inv) = inverse(v, eps);
    normalize_tanh(acc, h, inv, affine, out);
}

/// `floor(sqrt(v))` for `v < 2^32`: the f64 square root (correctly rounded, exact to
/// well within one unit here) corrected to the exact floor, like `u32::isqrt`.
#[inline]
fn isqrt(v: u64) -> u32 {
    let mut r = (v as f64).sqrt() as u64;
    while r * r > v {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= v {
        r += 1;
    }
    r as u32
}

/// As the definition's input step ([`super::quantize_input`] per feature, packed in
/// pairs): up to 14 features at once.
///
/// # Safety
/// AVX-512 F/BW/DQ/VL/VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn quantize(x: &[f32], scale: &[u32], q: &mut [u32; 7]) {
    let n = x.len().min(scale.len()).min(14);
    let mask: __mmask16 = ((1u32 << n) - 1) as u16;
    // SAFETY: masked loads read only the first n elements of each slice.
    let (xv, sv) = unsafe {
        (
            _mm512_maskz_loadu_ps(mask, x.as_ptr()),
            _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(mask, scale.as_ptr() as *const i32)),
        )
    };
    let v = _mm512_mul_ps(xv, sv);
    let v = _mm512_min_ps(
        _mm512_max_ps(v, _mm512_set1_ps(-32767.0)),
        _mm512_set1_ps(32767.0),
    );
    // v - 0.5 below zero, v + 0.5 otherwise, then towards zero.
    let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, _mm512_setzero_ps());
    let half = _mm512_mask_blend_ps(neg, _mm512_set1_ps(0.5), _mm512_set1_ps(-0.5));
    let r = _mm512_cvttps_epi32(_mm512_add_ps(v, half));
    let packed = _mm512_cvtepi32_epi16(r);
    let mut out = [0u32; 8];
    // SAFETY: 32 bytes into a 32-byte array.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, packed) };
    q.copy_from_slice(&out[..7]);
}

/// The first layer's parameters of one encoder, for [`first_tile`].
pub struct FirstLayer<'a> {
    /// Input features.
    pub inputs: usize,
    /// Input scales (f32 bits).
    pub scale: &'a [u32],
    /// Packed weights.
    pub w: &'a [u32],
    /// Biases.
    pub b: &'a [i32],
    /// Multipliers to the LayerNorm unit.
    pub m: &'a [i32],
    /// LayerNorm epsilon.
    pub eps: u64,
    /// LayerNorm gains and shifts.
    pub affine: &'a [u32],
}

/// Quantization, first layer, LayerNorm and tanh of the first `n` slots `xs` into the
/// columns of `tile`: the same steps as [`super::quantize_input`], the portable
/// `dense` and [`super::layer_norm_tanh`], with the first layer's weights expanded once
/// for all slots and the LayerNorm in phases across the slots (their long dependency
/// chains overlap).
///
/// # Safety
/// AVX-512 F/BW/DQ/VL/VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn first_tile<const S: usize>(
    xs: &[&[f32]; S],
    n: usize,
    l: &FirstLayer<'_>,
    tile: &mut Tile<S>,
) {
    let n = n.min(S).min(8);
    let np = l.inputs.div_ceil(2).min(7);
    let (Ok(b), Ok(m), Ok(affine)) = (
        <&[i32; HIDDEN]>::try_from(l.b),
        <&[i32; HIDDEN]>::try_from(l.m),
        <&[u32; HIDDEN]>::try_from(l.affine),
    ) else {
        return;
    };
    if l.w.len() < np * HP {
        return;
    }
    let mut q = [[0u32; 7]; 8];
    for (qk, x) in q.iter_mut().zip(xs.iter()).take(n) {
        // SAFETY: the same features.
        unsafe { quantize(x, l.scale, qk) };
    }
    // The first layer: 32 outputs by up to 8 slots per register block.
    let mut acc = [[0i32; HIDDEN]; 8];
    for half in 0..2 {
        // SAFETY: 16 biases at 32 half + 16 k <= 48.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_si512(b.as_ptr().add(32 * half) as *const _),
                _mm512_loadu_si512(b.as_ptr().add(32 * half + 16) as *const _),
            )
        };
        let mut a = [[b0, b1]; 8];
        for p in 0..np {
            // SAFETY: words 32 p + 16 half .. + 16 lie in row p (np rows checked).
            let (w0, w1) = unsafe {
                (
                    pairs16(l.w.as_ptr().add(HP * p + 16 * half)),
                    pairs16(l.w.as_ptr().add(HP * p + 16 * half + 8)),
                )
            };
            for (ak, qk) in a.iter_mut().zip(q.iter()).take(n) {
                let xb = _mm512_set1_epi32(qk[p] as i32);
                ak[0] = _mm512_dpwssd_epi32(ak[0], xb, w0);
                ak[1] = _mm512_dpwssd_epi32(ak[1], xb, w1);
            }
        }
        for (ak, dst) in a.iter().zip(acc.iter_mut()).take(n) {
            // SAFETY: 16 values at 32 half + 16 k <= 48.
            unsafe {
                _mm512_storeu_si512(dst.as_mut_ptr().add(32 * half) as *mut _, ak[0]);
                _mm512_storeu_si512(dst.as_mut_ptr().add(32 * half + 16) as *mut _, ak[1]);
            }
        }
    }
    // The LayerNorm in phases across the slots.
    let mut sums = [0i32; 8];
    for (ak, sk) in acc.iter_mut().zip(sums.iter_mut()).take(n) {
        *sk = to_ln_unit(ak, m);
    }
    let mut vars = [0u64; 8];
    for ((ak, &sk), vk) in acc.iter_mut().zip(sums.iter()).zip(vars.iter_mut()).take(n) {
        *vk = deviations(ak, sk);
    }
    let mut norm = [(0u32, 0i32); 8];
    for (&v, nk) in vars.iter().zip(norm.iter_mut()).take(n) {
        *nk = inverse(v, l.eps);
    }
    let mut t = [0i16; HIDDEN];
    for (k, (ak, &(h, inv))) in acc.iter().zip(norm.iter()).enumerate().take(n) {
        normalize_tanh(ak, h, inv, affine, &mut t);
        for (row, pair) in tile.rows.iter_mut().zip(t.chunks_exact(2)) {
            if let Some(c) = row.get_mut(k) {
                *c = pack_pair(pair[0], pair[1]);
            }
        }
    }
}

/// `g = smmulr(a, m)` in place; returns the wrapping sum of `g`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
#[inline]
fn to_ln_unit(a: &mut [i32; HIDDEN], m: &[i32; HIDDEN]) -> i32 {
    let mut sum = _mm512_setzero_si512();
    for k in 0..4 {
        // SAFETY: 16 values at 16 k <= 48 of each.
        unsafe {
            let pa = a.as_mut_ptr().add(16 * k) as *mut __m512i;
            let g = smmulr16(
                _mm512_loadu_si512(pa as *const _),
                _mm512_loadu_si512(m.as_ptr().add(16 * k) as *const _),
            );
            _mm512_storeu_si512(pa as *mut _, g);
            sum = _mm512_add_epi32(sum, g);
        }
    }
    _mm512_reduce_add_epi32(sum)
}

/// `d = 64 g - s` in place; returns the wrapping sum of `d^2` (64-bit products).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
#[inline]
fn deviations(g: &mut [i32; HIDDEN], s: i32) -> u64 {
    let sv = _mm512_set1_epi32(s);
    let mut var = _mm512_setzero_si512();
    for k in 0..4 {
        // SAFETY: 16 values at 16 k <= 48.
        unsafe {
            let p = g.as_mut_ptr().add(16 * k) as *mut __m512i;
            let d = _mm512_sub_epi32(_mm512_slli_epi32(_mm512_loadu_si512(p as *const _), 6), sv);
            _mm512_storeu_si512(p as *mut _, d);
            let even = _mm512_mul_epi32(d, d);
            let odd = _mm512_mul_epi32(_mm512_srli_epi64(d, 32), _mm512_srli_epi64(d, 32));
            var = _mm512_add_epi64(var, _mm512_add_epi64(even, odd));
        }
    }
    _mm512_reduce_add_epi64(var) as u64
}

/// The shift `h` and inverse of [`super::layer_norm_tanh`] from the sum of squares.
#[inline]
fn inverse(var: u64, eps: u64) -> (u32, i32) {
    let w = var.wrapping_add(eps);
    let bits = 64 - w.leading_zeros();
    let shift = if bits > 30 { (bits - 29) & !1 } else { 0 };
    let r = isqrt(w >> shift).max(1);
    // The quotient of two integers below 2^31 is either exact in f64 or at least 2^-15
    // from an integer, far beyond f64's error: its floor is the integer division's.
    let inv = ((i32::MAX as f64) / r as f64) as i32;
    (shift / 2, inv)
}

/// As [`super::portable::normalize_tanh`], sixteen channels at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
#[inline]
fn normalize_tanh(
    d: &[i32; HIDDEN],
    h: u32,
    inv: i32,
    affine: &[u32; HIDDEN],
    out: &mut [i16; HIDDEN],
) {
    let inv = _mm512_set1_epi32(inv);
    let half = _mm512_set1_epi32((1i32 << h) >> 1);
    let hv = _mm_cvtsi32_si128(h as i32);
    let (lo16, hi16) = (_mm512_set1_epi32(-32768), _mm512_set1_epi32(32767));
    let rnd = _mm512_set1_epi32(1 << (LN_FRAC_BITS - 1));
    let mid = _mm512_set1_epi32(512);
    let c32 = _mm512_set1_epi32(32);
    let m63 = _mm512_set1_epi32(63);
    for k in 0..4 {
        // SAFETY: 16 values at 16 k <= 48 of each array; table indices in 0..=1023 (y
        // saturated to 16 bits first), the table has 1024 entries.
        unsafe {
            let dv = _mm512_loadu_si512(d.as_ptr().add(16 * k) as *const _);
            let dn = _mm512_sra_epi32(_mm512_add_epi32(dv, half), hv);
            let dn = _mm512_min_epi32(_mm512_max_epi32(dn, lo16), hi16);
            let nn = mul_shift16(inv, dn);
            let nn = _mm512_min_epi32(_mm512_max_epi32(nn, lo16), hi16);
            let ab = _mm512_loadu_si512(affine.as_ptr().add(16 * k) as *const _);
            let gamma = _mm512_srai_epi32(_mm512_slli_epi32(ab, 16), 16);
            let beta = _mm512_srai_epi32(ab, 16);
            let y = _mm512_add_epi32(
                _mm512_srai_epi32(
                    _mm512_add_epi32(_mm512_mullo_epi32(nn, gamma), rnd),
                    LN_FRAC_BITS,
                ),
                beta,
            );
            let y = _mm512_min_epi32(_mm512_max_epi32(y, lo16), hi16);
            let idx = _mm512_add_epi32(_mm512_srai_epi32(y, 6), mid);
            let e = _mm512_i32gather_epi32::<4>(idx, TANH_Q15.as_ptr() as *const i32);
            let frac = _mm512_and_si512(y, m63);
            let slope = _mm512_srai_epi32(e, 16);
            let value = _mm512_srai_epi32(_mm512_slli_epi32(e, 16), 16);
            let r = _mm512_add_epi32(
                value,
                _mm512_srai_epi32(_mm512_add_epi32(_mm512_mullo_epi32(slope, frac), c32), 6),
            );
            _mm256_storeu_si256(
                out.as_mut_ptr().add(16 * k) as *mut __m256i,
                _mm512_cvtepi32_epi16(r),
            );
        }
    }
}
