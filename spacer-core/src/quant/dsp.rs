//! Cortex-M4 DSP kernels (ARMv7E-M: `thumbv7em-*`, selected by `cfg(spacer_dsp)` from
//! the build script): the integer layers with `SXTB16` (two int8 weights to two int16
//! lanes) and `SMLAD` (two 16 x 16 multiplies and an accumulate in one instruction).
//!
//! The inner loops are unrolled assembly (`.rept`) over post-indexed loads: per input
//! pair and four outputs, one `LDR` of the pair, one `LDRD` of two weight words, four
//! `SXTB16` and four `SMLAD` (ten instructions for eight multiply-accumulates); the
//! second layer runs two slots at once (eight instructions for eight). Results equal the
//! portable definitions ([`super::portable`]) bit for bit: both compute the same exact
//! integer sums (`SMLAD` wraps like `wrapping_add`, and validation keeps every sum far
//! from 32 bits anyway). The firmware checks them against each other at start-up
//! ([`super::check_kernels`]), and the QEMU test runs it.
//!
//! # Safety
//! Every pointer handed to the assembly comes from a slice whose length was checked
//! against the number of loads the unrolled block performs (the `debug_assert!`s state
//! the arithmetic); the blocks only read memory, and write registers.

#![allow(unsafe_code)]

use core::arch::asm;

use super::{HIDDEN, HP, TANH_Q15, Tile, portable};

/// Bytes between two input pairs' rows of a 64-output packed matrix.
const ROW64: usize = 4 * HP;

/// `acc[0..4] += sum_{k < M} x_k . (w_k words 0 and 1)`, where pair `k` is the word
/// at `px + k * XS` bytes and row `k`'s two words at `pw + k * WS` bytes.
///
/// # Safety
/// `px` readable for `M` words at stride `XS`, `pw` for `M` double words at stride
/// `WS`, all 4-aligned.
#[inline(always)]
unsafe fn block4<const M: usize, const XS: usize, const WS: usize>(
    px: *const u32,
    pw: *const u32,
    acc: &mut [i32; 4],
) {
    // Post-indexed immediates: LDR takes 0..=255, LDRD multiples of 4 up to 1020 (the
    // assembler would silently truncate others).
    const { assert!(XS <= 255 && WS <= 1020 && WS % 4 == 0) };
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    // SAFETY: the caller's contract; registers and reads only.
    unsafe {
        asm!(
            ".rept {m}",
            "ldr {x}, [{px}], #{xs}",
            "ldrd {w0}, {w1}, [{pw}], #{ws}",
            "sxtb16 {t}, {w0}",
            "sxtb16 {w0}, {w0}, ror #8",
            "smlad {a0}, {x}, {t}, {a0}",
            "smlad {a1}, {x}, {w0}, {a1}",
            "sxtb16 {t}, {w1}",
            "sxtb16 {w1}, {w1}, ror #8",
            "smlad {a2}, {x}, {t}, {a2}",
            "smlad {a3}, {x}, {w1}, {a3}",
            ".endr",
            m = const M,
            xs = const XS,
            ws = const WS,
            px = inout(reg) px => _,
            pw = inout(reg) pw => _,
            x = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            t = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(nostack, readonly),
        );
    }
    *acc = [a0, a1, a2, a3];
}

/// `acc[0..2] += sum_{k < M} x_k . (w_k word 0)`: the last output pair of a head with
/// an output count that is not a multiple of four.
///
/// # Safety
/// As [`block4`], one word per row.
#[inline(always)]
unsafe fn block2<const M: usize, const XS: usize, const WS: usize>(
    px: *const u32,
    pw: *const u32,
    acc: &mut [i32; 2],
) {
    // LDR's post-indexed immediate is 0..=255: the row stride is added separately.
    const { assert!(XS <= 255 && WS <= 4095) };
    let [mut a0, mut a1] = *acc;
    // SAFETY: the caller's contract; registers and reads only.
    unsafe {
        asm!(
            ".rept {m}",
            "ldr {x}, [{px}], #{xs}",
            "ldr {w}, [{pw}]",
            "add {pw}, {pw}, #{ws}",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {a0}, {x}, {t}, {a0}",
            "smlad {a1}, {x}, {w}, {a1}",
            ".endr",
            m = const M,
            xs = const XS,
            ws = const WS,
            px = inout(reg) px => _,
            pw = inout(reg) pw => _,
            x = out(reg) _,
            w = out(reg) _,
            t = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            options(nostack, readonly),
        );
    }
    *acc = [a0, a1];
}

/// Output pair `q` of the second layer for two slots whose pairs lie side by side:
/// `acc = [slot0 out 2q, slot0 out 2q+1, slot1 out 2q, slot1 out 2q+1]`.
///
/// # Safety
/// `px` readable for 32 double words at stride `RS` bytes, `pw` for 32 words at
/// stride 128 bytes, all 4-aligned.
#[inline(always)]
unsafe fn pair_x2<const RS: usize>(px: *const u32, pw: *const u32, acc: &mut [i32; 4]) {
    const { assert!(RS <= 1020 && RS % 4 == 0 && ROW64 <= 255) };
    let [mut a00, mut a01, mut a10, mut a11] = *acc;
    // SAFETY: the caller's contract; registers and reads only.
    unsafe {
        asm!(
            ".rept {m}",
            "ldrd {x0}, {x1}, [{px}], #{rs}",
            "ldr {w}, [{pw}], #{ws}",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {a00}, {x0}, {t}, {a00}",
            "smlad {a01}, {x0}, {w}, {a01}",
            "smlad {a10}, {x1}, {t}, {a10}",
            "smlad {a11}, {x1}, {w}, {a11}",
            ".endr",
            m = const HP,
            rs = const RS,
            ws = const ROW64,
            px = inout(reg) px => _,
            pw = inout(reg) pw => _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            w = out(reg) _,
            t = out(reg) _,
            a00 = inout(reg) a00,
            a01 = inout(reg) a01,
            a10 = inout(reg) a10,
            a11 = inout(reg) a11,
            options(nostack, readonly),
        );
    }
    *acc = [a00, a01, a10, a11];
}

/// Adds a run of `M` consecutive input pairs (`x`, and their weight rows `w`, 32 words
/// each) to all 64 outputs in `acc`, four at a time.
#[inline(never)]
fn run64<const M: usize>(x: &[u32], w: &[u32], acc: &mut [i32; HIDDEN]) {
    if x.len() < M || w.len() < M * HP {
        return;
    }
    for (blk, a) in acc.chunks_exact_mut(4).enumerate() {
        let mut v = [a[0], a[1], a[2], a[3]];
        // SAFETY: M pairs in `x`; M rows of 32 words (stride 128 bytes) in `w`, of which
        // words 2 blk and 2 blk + 1 (blk < 16) are read.
        unsafe {
            block4::<M, 4, ROW64>(x.as_ptr(), w.as_ptr().add(2 * blk), &mut v);
        }
        a.copy_from_slice(&v);
    }
}

/// As [`super::portable::dense`]: `acc[j] = b[j] + sum_p x[p] . w[p][j]`. The first
/// layers (64 outputs, up to 7 input pairs: runs of nonzero pairs, so that a one-hot
/// road kind costs one pair, not four) and the head (96 input pairs, 202 outputs) run
/// in assembly; other shapes in the portable code.
pub fn dense(x: &[u32], w: &[u32], b: &[i32], acc: &mut [i32]) {
    let n = acc.len();
    if let (Ok(acc), Ok(b)) = (
        <&mut [i32; HIDDEN]>::try_from(&mut *acc),
        <&[i32; HIDDEN]>::try_from(b),
    ) && x.len() <= 7
        && w.len() == x.len() * HP
    {
        *acc = *b;
        let mut p = 0;
        while p < x.len() {
            if x[p] == 0 {
                p += 1;
                continue;
            }
            let start = p;
            while p < x.len() && x[p] != 0 {
                p += 1;
            }
            let (xr, wr) = (&x[start..p], &w[start * HP..p * HP]);
            match p - start {
                1 => run64::<1>(xr, wr, acc),
                2 => run64::<2>(xr, wr, acc),
                3 => run64::<3>(xr, wr, acc),
                4 => run64::<4>(xr, wr, acc),
                5 => run64::<5>(xr, wr, acc),
                6 => run64::<6>(xr, wr, acc),
                _ => run64::<7>(xr, wr, acc),
            }
        }
        return;
    }
    const HEAD_PAIRS: usize = super::HEAD_INPUTS / 2;
    const HEAD_OUT: usize = 202;
    const HEAD_ROW: usize = 4 * HEAD_OUT / 2;
    if n == HEAD_OUT
        && x.len() == HEAD_PAIRS
        && w.len() == HEAD_PAIRS * HEAD_OUT / 2
        && b.len() >= n
    {
        let quads = n / 4;
        for (blk, (a, bias)) in acc.chunks_exact_mut(4).zip(b.chunks_exact(4)).enumerate() {
            let mut v = [bias[0], bias[1], bias[2], bias[3]];
            debug_assert!(2 * blk + 1 < HEAD_OUT / 2);
            // SAFETY: 96 pairs in `x`; rows of 101 words (404 bytes), of which words
            // 2 blk and 2 blk + 1 (< 101) are read from each of the 96.
            unsafe {
                block4::<HEAD_PAIRS, 4, HEAD_ROW>(x.as_ptr(), w.as_ptr().add(2 * blk), &mut v);
            }
            a.copy_from_slice(&v);
        }
        let mut v = [b[4 * quads], b[4 * quads + 1]];
        // SAFETY: as above, word 2 quads = 100 < 101 of each row.
        unsafe {
            block2::<HEAD_PAIRS, 4, HEAD_ROW>(x.as_ptr(), w.as_ptr().add(2 * quads), &mut v);
        }
        acc[4 * quads..].copy_from_slice(&v);
        return;
    }
    portable::dense(x, w, b, acc);
}

/// As [`super::portable::dense_tile_max`]: the 64 x 64 second layer, two slots at a
/// time (each weight word is expanded once for both), four outputs at a time for an
/// odd slot left over; the max-pool folded into each output pair's epilogue.
pub fn dense_tile_max<const S: usize>(
    tile: &Tile<S>,
    n: usize,
    w: &[u32],
    b: &[i32],
    pooled: &mut [i32; HIDDEN],
) {
    // The slots' pairs lie 4 S bytes apart; the assembly is written for the tile this
    // target uses (two slots).
    let (Ok(w), Ok(b)) = (
        <&[u32; HP * HP]>::try_from(w),
        <&[i32; HIDDEN]>::try_from(b),
    ) else {
        return portable::dense_tile_max(tile, n, w, b, pooled);
    };
    if S != 2 {
        return portable::dense_tile_max(tile, n, w, b, pooled);
    }
    const RS: usize = 8;
    let n = n.min(S);
    let base = tile.rows.as_ptr() as *const u32;
    if n == 2 {
        for (q, p) in pooled.chunks_exact_mut(2).enumerate() {
            let mut v = [b[2 * q], b[2 * q + 1], b[2 * q], b[2 * q + 1]];
            // SAFETY: slots 0 and 1 of the 32 rows (stride 8 bytes); word q of each of
            // the 32 weight rows (stride 128 bytes).
            unsafe {
                pair_x2::<RS>(base, w.as_ptr().add(q), &mut v);
            }
            p[0] = p[0].max(v[0]).max(v[2]);
            p[1] = p[1].max(v[1]).max(v[3]);
        }
    } else if n == 1 {
        for (blk, (p, bias)) in pooled
            .chunks_exact_mut(4)
            .zip(b.chunks_exact(4))
            .enumerate()
        {
            let mut v = [bias[0], bias[1], bias[2], bias[3]];
            // SAFETY: slot 0 of the 32 rows (stride 8 bytes); words 2 blk and 2 blk + 1
            // of each of the 32 weight rows.
            unsafe {
                block4::<HP, RS, ROW64>(base, w.as_ptr().add(2 * blk), &mut v);
            }
            for (pj, vj) in p.iter_mut().zip(v) {
                *pj = (*pj).max(vj);
            }
        }
    }
}

/// As [`super::portable::normalize_tanh`], unrolled: per element `ADD`, `ASR`, `SSAT`,
/// `SMULWB`, `SSAT`, `SMLABB`, `ASR`, `ADD`, `SSAT`, the table lookup (`ASR`, `LDR`),
/// the interpolation (`AND`, `SMLABT`, `ADD`) and the loads and store: 18 instructions.
pub fn normalize_tanh(
    d: &[i32; HIDDEN],
    h: u32,
    inv: i32,
    affine: &[u32; HIDDEN],
    out: &mut [i16; HIDDEN],
) {
    // `ASR` by a register uses its low byte; h <= 16 by construction.
    let half = (1i32 << h) >> 1;
    // The table's middle entry: index t >> 6 runs over -512..=511 from here.
    let mid = TANH_Q15[512..].as_ptr();
    // SAFETY: 64 words read from `d` and `affine`, 64 halfwords written to `out`, one
    // table word per element at an index in -512..=511 from the table's middle (t is
    // saturated to 16 bits first), all by post-incremented pointers.
    unsafe {
        asm!(
            ".rept 64",
            "ldr {t}, [{pd}], #4",
            "add {t}, {t}, {half}",
            "asr {t}, {t}, {h}",
            "ssat {t}, #16, {t}",
            "smulwb {t}, {inv}, {t}",
            "ssat {t}, #16, {t}",
            "ldr {ab}, [{pa}], #4",
            "smlabb {t}, {t}, {ab}, {rnd}",
            "asr {t}, {t}, #12",
            "add {t}, {t}, {ab}, asr #16",
            "ssat {t}, #16, {t}",
            "asr {u}, {t}, #6",
            "ldr {u}, [{mid}, {u}, lsl #2]",
            "and {t}, {t}, #63",
            "smlabt {t}, {t}, {u}, {c32}",
            "add {t}, {u}, {t}, lsr #6",
            "strh {t}, [{po}], #2",
            ".endr",
            pd = inout(reg) d.as_ptr() => _,
            pa = inout(reg) affine.as_ptr() => _,
            po = inout(reg) out.as_mut_ptr() => _,
            mid = in(reg) mid,
            half = in(reg) half,
            h = in(reg) h,
            inv = in(reg) inv,
            rnd = in(reg) 1i32 << (super::LN_FRAC_BITS - 1),
            c32 = in(reg) 32,
            t = out(reg) _,
            u = out(reg) _,
            ab = out(reg) _,
            options(nostack),
        );
    }
}
