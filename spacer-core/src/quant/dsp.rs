//! Cortex-M4 DSP kernels (ARMv7E-M: `thumbv7em-*`, selected by `cfg(spacer_dsp)` from
//! the build script): the integer layers with `SXTB16` (two int8 weights to two int16
//! lanes) and `SMLAD` (two 16 x 16 multiplies and an accumulate in one instruction).
//!
//! The inner loops are unrolled assembly (`.rept`) over post-indexed loads: the head
//! per input pair and four outputs one `LDRD` of two weight words, four `SXTB16` and
//! four `SMLAD` (and an `LDRD` of two input pairs per two); the first layers per input
//! pair and eight outputs one `LDR` of the pair, two `LDRD`, eight `SXTB16` and eight
//! `SMLAD` (19 instructions for 16 multiply-accumulates). The second layer runs two
//! slots at once; with three or more occupied slots its weights are first widened to
//! int16 on the stack ([`with_wide`], 8.25 KiB with the biases, three instructions per
//! weight word), after which two input pairs of both slots cost one `LDM` of the
//! pairs, one of four weight words and eight `SMLAD` (ten instructions for 16).
//! Results equal the portable definitions ([`super::portable`]) bit for bit: both
//! compute the same exact integer sums (`SMLAD` wraps like `wrapping_add`, and
//! validation keeps every sum far from 32 bits anyway). The firmware checks them
//! against each other at start-up ([`super::check_kernels`]), and the QEMU test runs
//! it. Blocks that need more registers than inline assembly may name save `r4`-`r11`
//! and `lr` themselves and use fixed registers.
//!
//! # Safety
//! Every pointer handed to the assembly comes from a slice whose length was checked
//! against the number of loads the unrolled block performs (the `debug_assert!`s state
//! the arithmetic), or from a fixed-size array; the blocks write only the outputs their
//! contracts name, and stack space they release (registers they may not name are saved
//! and restored there).

#![allow(unsafe_code)]

use core::arch::asm;

use super::{HIDDEN, HP, TANH_Q15, Tile, portable};

/// Bytes between two input pairs' rows of a 64-output packed matrix.
const ROW64: usize = 4 * HP;

/// `blocks` blocks of four outputs: for block `b`, `acc[4b..4b+4] = src[4b..4b+4] +
/// sum_{k < M} x_k . (row k's words 2b and 2b + 1)`, where pair `k` is the word at
/// `px + k * XS` bytes and row `k` starts `WS` bytes after row `k - 1` (`src` may be
/// `acc`, or the biases: no separate copy). The loop over the blocks is in the
/// assembly too (the compiler cannot size `.rept` blocks, so no branch of its own spans
/// one).
///
/// # Safety
/// `px` readable for `M` words at stride `XS`; `pw` for `M` rows at stride `WS` of
/// `2 blocks` words; `src` readable and `acc` writable for `4 blocks` values; all
/// 4-aligned; `blocks >= 1`.
#[inline(never)]
unsafe fn blocks4<const M: usize, const XS: usize, const WS: usize>(
    px: *const u32,
    pw: *const u32,
    src: *const i32,
    acc: *mut i32,
    blocks: usize,
) {
    // Post-indexed immediates: LDR takes 0..=255, LDRD multiples of 4 up to 1020 (the
    // assembler would silently truncate others); SUBW 0..=4095.
    const {
        assert!(
            XS <= 255
                && WS <= 1020
                && WS.is_multiple_of(4)
                && M * XS <= 4095
                && M >= 1
                && M * WS <= 4103
        )
    };
    // SAFETY: the caller's contract; the block count lives on the stack during the loop.
    unsafe {
        asm!(
            "push {{{n}}}",
            "2:",
            "ldrd {a0}, {a1}, [{ps}], #8",
            "ldrd {a2}, {a3}, [{ps}], #8",
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
            "strd {a0}, {a1}, [{pa}], #8",
            "strd {a2}, {a3}, [{pa}], #8",
            "sub {px}, {px}, #{xback}",
            "subw {pw}, {pw}, #{d}",
            "ldr {x}, [sp]",
            "subs {x}, {x}, #1",
            "str {x}, [sp]",
            "bne 2b",
            "add sp, sp, #4",
            m = const M,
            xs = const XS,
            ws = const WS,
            xback = const M * XS,
            d = const M * WS - 8,
            n = in(reg) blocks,
            px = inout(reg) px => _,
            pw = inout(reg) pw => _,
            ps = inout(reg) src => _,
            pa = inout(reg) acc => _,
            x = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            t = out(reg) _,
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
        );
    }
}

/// [`blocks4`] for contiguous input pairs (`XS` = 4) and an even `M`: one `LDRD` loads
/// two pairs (the row-stride correction and the source pointer live on the stack to
/// free their registers).
///
/// # Safety
/// As [`blocks4`] with `XS` = 4.
#[inline(never)]
unsafe fn blocks4_x2<const M: usize, const WS: usize>(
    px: *const u32,
    pw: *const u32,
    src: *const i32,
    acc: *mut i32,
    blocks: usize,
) {
    const {
        assert!(
            WS <= 1020 && WS.is_multiple_of(4) && M.is_multiple_of(2) && M * 4 <= 4095 && M >= 2
        )
    };
    // SAFETY: the caller's contract; the block count, the stride correction and the
    // source pointer live on the stack during the loop.
    unsafe {
        asm!(
            // [sp] = block count, [sp + 4] = stride correction, [sp + 8] = source
            // (explicit stores: a register list would store in register-number order;
            // the inputs stored before any output register is written).
            "str {ps}, [sp, #-4]!",
            "sub sp, sp, #4",
            "str {n}, [sp, #-4]!",
            "movw {x0}, #{dlo}",
            "movt {x0}, #{dhi}",
            "str {x0}, [sp, #4]",
            "2:",
            "ldr {x0}, [sp, #8]",
            "ldrd {a0}, {a1}, [{x0}], #8",
            "ldrd {a2}, {a3}, [{x0}], #8",
            "str {x0}, [sp, #8]",
            ".rept {m}",
            "ldrd {x0}, {x1}, [{px}], #8",
            "ldrd {w0}, {w1}, [{pw}], #{ws}",
            "sxtb16 {t}, {w0}",
            "sxtb16 {w0}, {w0}, ror #8",
            "smlad {a0}, {x0}, {t}, {a0}",
            "smlad {a1}, {x0}, {w0}, {a1}",
            "sxtb16 {t}, {w1}",
            "sxtb16 {w1}, {w1}, ror #8",
            "smlad {a2}, {x0}, {t}, {a2}",
            "smlad {a3}, {x0}, {w1}, {a3}",
            "ldrd {w0}, {w1}, [{pw}], #{ws}",
            "sxtb16 {t}, {w0}",
            "sxtb16 {w0}, {w0}, ror #8",
            "smlad {a0}, {x1}, {t}, {a0}",
            "smlad {a1}, {x1}, {w0}, {a1}",
            "sxtb16 {t}, {w1}",
            "sxtb16 {w1}, {w1}, ror #8",
            "smlad {a2}, {x1}, {t}, {a2}",
            "smlad {a3}, {x1}, {w1}, {a3}",
            ".endr",
            "strd {a0}, {a1}, [{pa}], #8",
            "strd {a2}, {a3}, [{pa}], #8",
            "sub {px}, {px}, #{xback}",
            "ldrd {x0}, {x1}, [sp]",
            "sub {pw}, {pw}, {x1}",
            "subs {x0}, {x0}, #1",
            "str {x0}, [sp]",
            "bne 2b",
            "add sp, sp, #12",
            m = const M / 2,
            ws = const WS,
            xback = const M * 4,
            dlo = const (M * WS - 8) & 0xFFFF,
            dhi = const (M * WS - 8) >> 16,
            n = in(reg) blocks,
            ps = in(reg) src,
            px = inout(reg) px => _,
            pw = inout(reg) pw => _,
            pa = inout(reg) acc => _,
            x0 = lateout(reg) _,
            x1 = lateout(reg) _,
            w0 = lateout(reg) _,
            w1 = lateout(reg) _,
            t = lateout(reg) _,
            a0 = lateout(reg) _,
            a1 = lateout(reg) _,
            a2 = lateout(reg) _,
            a3 = lateout(reg) _,
        );
    }
}

/// `acc[0..2] += sum_{k < M} x_k . (w_k word 0)`: the last output pair of a head with
/// an output count that is not a multiple of four.
///
/// # Safety
/// As [`blocks4`], one block of one word per row.
#[inline(never)]
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

/// The 64 x 64 second layer of two slots whose pairs lie side by side (`x`: 32 rows of
/// two words), max-pooled into `pooled`, the whole loop over the 32 output pairs in
/// assembly: per output pair the biases, then per two input pairs one `LDM` of both
/// slots' pairs (`r0`..`r3`), two weight words, four `SXTB16` and eight `SMLAD`, then
/// the max into `pooled`.
///
/// # Safety
/// `x` readable for 64 words, `w` for 1024, `b` for 64, `pooled` readable and
/// writable for 64, all 4-aligned.
#[inline(never)]
unsafe fn layer2_x2(x: *const u32, w: *const u32, b: *const i32, pooled: *mut i32) {
    // SAFETY: the caller's contract; bias and pooled pointers and the count live on the
    // stack during the loop.
    unsafe {
        asm!(
            "push {{r0, r1, r2}}",
            "1:",
            "ldr {w}, [sp]",
            "ldrd {a00}, {a01}, [{w}], #8",
            "str {w}, [sp]",
            "mov {a10}, {a00}",
            "mov {a11}, {a01}",
            ".rept 16",
            "ldm {px}!, {{r0, r1, r2, r3}}",
            "ldr {w}, [{pw}], #128",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {a00}, r0, {t}, {a00}",
            "smlad {a01}, r0, {w}, {a01}",
            "smlad {a10}, r1, {t}, {a10}",
            "smlad {a11}, r1, {w}, {a11}",
            "ldr {w}, [{pw}], #128",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {a00}, r2, {t}, {a00}",
            "smlad {a01}, r2, {w}, {a01}",
            "smlad {a10}, r3, {t}, {a10}",
            "smlad {a11}, r3, {w}, {a11}",
            ".endr",
            "sub {px}, {px}, #256",
            "sub {pw}, {pw}, #4092",
            "ldr {w}, [sp, #4]",
            "ldrd r0, r1, [{w}]",
            "cmp {a00}, r0",
            "it gt",
            "movgt r0, {a00}",
            "cmp {a10}, r0",
            "it gt",
            "movgt r0, {a10}",
            "cmp {a01}, r1",
            "it gt",
            "movgt r1, {a01}",
            "cmp {a11}, r1",
            "it gt",
            "movgt r1, {a11}",
            "strd r0, r1, [{w}], #8",
            "str {w}, [sp, #4]",
            "ldr {w}, [sp, #8]",
            "subs {w}, {w}, #1",
            "str {w}, [sp, #8]",
            "bne 1b",
            "add sp, sp, #12",
            px = inout(reg) x => _,
            pw = inout(reg) w => _,
            w = out(reg) _,
            t = out(reg) _,
            a00 = out(reg) _,
            a01 = out(reg) _,
            a10 = out(reg) _,
            a11 = out(reg) _,
            inout("r0") b => _,
            inout("r1") pooled => _,
            inout("r2") HP => _,
            out("r3") _,
        );
    }
}

/// Words of one output pair in a [`Wide`]: its two biases and 32 input pairs' weights.
const WIDE_ROW: usize = 2 + 2 * HP;

/// Words of a [`Wide`].
pub(crate) const WIDE_WORDS: usize = HP * WIDE_ROW;

/// A 64 x 64 int8 matrix and its biases widened to int16 pairs, transposed to
/// output-pair-major: words `66 q` and `66 q + 1` hold biases `2q` and `2q + 1`, words
/// `66 q + 2 + 2 p` and `66 q + 3 + 2 p` `SXTB16` and `SXTB16 ROR 8` of packed word
/// `(p, q)`, i.e. `(w[2p][2q], w[2p+1][2q])` and `(w[2p][2q+1], w[2p+1][2q+1])` as
/// int16 lanes: one output pair's biases and weights for consecutive input pairs lie
/// side by side, ready for `LDM` and `SMLAD` against the tile's input pairs.
pub(crate) type Wide = [u32; WIDE_WORDS];

/// Writes [`Wide`] of the packed 32 x 32-word matrix at `w` and the 64 biases at `b`
/// to `out`: per two input pairs and two output pairs, two `LDRD`, eight `SXTB16` and
/// two `STM` (three instructions per weight word).
///
/// # Safety
/// `w` readable for 1024 words, `b` for 64, `out` writable for [`WIDE_WORDS`], all
/// 4-aligned.
#[inline(never)]
unsafe fn widen_raw(w: *const u32, b: *const i32, out: *mut u32) {
    // SAFETY: the caller's contract; r4-r11 and lr saved and restored on the stack.
    unsafe {
        asm!(
            "push {{r4-r11, lr}}",
            // r0: word (p, q) of the source; r1, r12: output pairs q and q + 1 at
            // input pair p; r11: biases; r8: pairs of output pairs left.
            "mov r11, r2",
            "add r12, r1, #{row}",
            "movs r8, #16",
            "1:",
            "ldrd r2, r3, [r11], #8",
            "strd r2, r3, [r1], #8",
            "ldrd r2, r3, [r11], #8",
            "strd r2, r3, [r12], #8",
            ".rept 16",
            "ldrd r9, r10, [r0, #128]",
            "ldrd r2, r3, [r0], #256",
            "sxtb16 r4, r2",
            "sxtb16 r5, r2, ror #8",
            "sxtb16 r6, r9",
            "sxtb16 r7, r9, ror #8",
            "stm r1!, {{r4-r7}}",
            "sxtb16 r4, r3",
            "sxtb16 r5, r3, ror #8",
            "sxtb16 r6, r10",
            "sxtb16 r7, r10, ror #8",
            "stm r12!, {{r4-r7}}",
            ".endr",
            "subw r0, r0, #4088",
            "add r1, r1, #{row}",
            "add r12, r12, #{row}",
            "subs r8, r8, #1",
            "bne 1b",
            "pop {{r4-r11, lr}}",
            row = const 4 * WIDE_ROW,
            inout("r0") w => _,
            inout("r1") out => _,
            inout("r2") b => _,
            out("r3") _,
            out("r12") _,
        );
    }
}

/// Widens the 64 x 64 packed matrix `w` (1024 words) and its biases `b` (64) into a
/// [`Wide`] on the stack and hands it to `f` (`None` when either has another length).
pub(crate) fn with_wide<R>(w: &[u32], b: &[i32], f: impl FnOnce(Option<&Wide>) -> R) -> R {
    let (Ok(w), Ok(b)) = (
        <&[u32; HP * HP]>::try_from(w),
        <&[i32; HIDDEN]>::try_from(b),
    ) else {
        return f(None);
    };
    let mut buf = core::mem::MaybeUninit::<Wide>::uninit();
    // SAFETY: 1024 words read from `w`, 64 from `b`; every one of the 32 x 66 words of
    // `buf` written (per pair of output pairs, two pairs of biases and 16 x 2 blocks of
    // four words), so it is initialised afterwards.
    let wide = unsafe {
        widen_raw(w.as_ptr(), b.as_ptr(), buf.as_mut_ptr().cast::<u32>());
        buf.assume_init_ref()
    };
    f(Some(wide))
}

/// The 64 x 64 second layer over [`Wide`] weights of one (`TWO` = false: slot 0) or
/// two slots whose pairs lie side by side (`x`: 32 rows of two words), max-pooled
/// into `pooled`: per output pair one `LDM` of its biases, then per two input pairs
/// one `LDM` of both slots' pairs (`r0`..`r3`), one of the four weight words
/// (`r4`..`r7`) and eight (four) `SMLAD`, then the max into `pooled`.
///
/// # Safety
/// `x` readable for 64 words, `w` for [`WIDE_WORDS`], `pooled` readable and writable
/// for 64, all 4-aligned.
#[inline(never)]
unsafe fn layer2_wide<const TWO: bool>(x: *const u32, w: *const u32, pooled: *mut i32) {
    // SAFETY: the caller's contract; r4-r11 and lr saved and restored, and the pooled
    // pointer and the end of `w` kept, on the stack.
    unsafe {
        asm!(
            "push {{r4-r11, lr}}",
            "add r12, r1, #{size}",
            // [sp] = pooled, [sp + 4] = end of the weights.
            "push {{r3, r12}}",
            "mov r12, r0",
            "mov lr, r1",
            "1:",
            "ldm lr!, {{r8, r9}}",
            // The first two input pairs: the second slot's sums start from the
            // biases in r8 and r9 before those accumulate the first slot's.
            "ldm r12!, {{r0-r3}}",
            "ldm lr!, {{r4-r7}}",
            ".if {two}",
            "smlad r10, r1, r4, r8",
            "smlad r11, r1, r5, r9",
            ".endif",
            "smlad r8, r0, r4, r8",
            "smlad r9, r0, r5, r9",
            "smlad r8, r2, r6, r8",
            "smlad r9, r2, r7, r9",
            ".if {two}",
            "smlad r10, r3, r6, r10",
            "smlad r11, r3, r7, r11",
            ".endif",
            ".rept 15",
            "ldm r12!, {{r0-r3}}",
            "ldm lr!, {{r4-r7}}",
            "smlad r8, r0, r4, r8",
            "smlad r9, r0, r5, r9",
            ".if {two}",
            "smlad r10, r1, r4, r10",
            "smlad r11, r1, r5, r11",
            ".endif",
            "smlad r8, r2, r6, r8",
            "smlad r9, r2, r7, r9",
            ".if {two}",
            "smlad r10, r3, r6, r10",
            "smlad r11, r3, r7, r11",
            ".endif",
            ".endr",
            "sub r12, r12, #256",
            "ldr r4, [sp]",
            "ldrd r0, r1, [r4]",
            "cmp r8, r0",
            "it gt",
            "movgt r0, r8",
            "cmp r9, r1",
            "it gt",
            "movgt r1, r9",
            ".if {two}",
            "cmp r10, r0",
            "it gt",
            "movgt r0, r10",
            "cmp r11, r1",
            "it gt",
            "movgt r1, r11",
            ".endif",
            "strd r0, r1, [r4], #8",
            "str r4, [sp]",
            "ldr r0, [sp, #4]",
            "cmp lr, r0",
            "bne 1b",
            "add sp, sp, #8",
            "pop {{r4-r11, lr}}",
            two = const TWO as u32,
            size = const 4 * WIDE_WORDS,
            inout("r0") x => _,
            inout("r1") w => _,
            out("r2") _,
            inout("r3") pooled => _,
            out("r12") _,
        );
    }
}

/// As [`super::portable::dense_tile_max`] with the weights as [`Wide`] (see
/// [`with_wide`], biases included): two slots per pass, or one.
pub(crate) fn dense_tile_max_wide(tile: &Tile<2>, n: usize, w: &Wide, pooled: &mut [i32; HIDDEN]) {
    let x = tile.rows.as_ptr() as *const u32;
    // SAFETY: 32 rows of two slots (64 words); a whole `Wide`; 64 pooled values.
    unsafe {
        match n {
            0 => {}
            1 => layer2_wide::<false>(x, w.as_ptr(), pooled.as_mut_ptr()),
            _ => layer2_wide::<true>(x, w.as_ptr(), pooled.as_mut_ptr()),
        }
    }
}

/// A run of `M` consecutive input pairs (`x`, and their weight rows `w`, 32 words
/// each) added to `src` (the biases for the first run, else `acc` itself), into all 64
/// outputs in `acc`.
fn run64<const M: usize>(
    x: &[u32],
    w: &[u32],
    src: Option<&[i32; HIDDEN]>,
    acc: &mut [i32; HIDDEN],
) {
    if x.len() < M || w.len() < M * HP {
        return;
    }
    let pa = acc.as_mut_ptr();
    let ps = src.map_or(pa.cast_const(), |b| b.as_ptr());
    // SAFETY: M pairs in `x`; M rows of 32 words (stride 128 bytes) in `w`, of which
    // 8 blocks of four words are read; 64 values in `src` (read before each is written
    // when it is `acc`) and `acc`.
    unsafe {
        blocks8::<M>(x.as_ptr(), w.as_ptr(), ps, pa);
    }
}

/// A first layer's 64 outputs in eight blocks of eight: for block `b`,
/// `acc[8b..8b+8] = src[8b..8b+8] + sum_{k < M} x_k . (row k's words 4b..4b+4)`, the
/// pairs `x_k` contiguous and the rows 128 bytes apart (`src` may be `acc`). Per input
/// pair and block one `LDR` of the pair, two `LDRD` of the weights, eight `SXTB16` and
/// eight `SMLAD`; per block one `LDM` of `src` and one `STM` to `acc` (the eight sums
/// stay in `r4`..`r11`).
///
/// # Safety
/// `px` readable for `M` words; `pw` for `M` rows of 32 words at stride 128 bytes;
/// `src` readable and `acc` writable for 64 values; all 4-aligned.
#[inline(never)]
unsafe fn blocks8<const M: usize>(px: *const u32, pw: *const u32, src: *const i32, acc: *mut i32) {
    // Post-indexed LDR takes 0..=255, SUBW 0..=4095.
    const { assert!(M >= 1 && 4 * M <= 255 && M * ROW64 - 16 <= 4095) };
    // SAFETY: the caller's contract; r4-r11 and lr saved and restored, and the source
    // and destination pointers and the block count kept, on the stack.
    unsafe {
        asm!(
            "push {{r4-r11, lr}}",
            // [sp] = src, [sp + 4] = acc, [sp + 8] = blocks left.
            "movs r12, #8",
            "push {{r2, r3, r12}}",
            "2:",
            "ldr r12, [sp]",
            "ldm r12!, {{r4-r11}}",
            "str r12, [sp]",
            ".rept {m}",
            "ldr r12, [r0], #4",
            "ldrd r2, r3, [r1, #8]",
            "sxtb16 lr, r2",
            "sxtb16 r2, r2, ror #8",
            "smlad r8, r12, lr, r8",
            "smlad r9, r12, r2, r9",
            "sxtb16 lr, r3",
            "sxtb16 r3, r3, ror #8",
            "smlad r10, r12, lr, r10",
            "smlad r11, r12, r3, r11",
            "ldrd r2, r3, [r1], #{ws}",
            "sxtb16 lr, r2",
            "sxtb16 r2, r2, ror #8",
            "smlad r4, r12, lr, r4",
            "smlad r5, r12, r2, r5",
            "sxtb16 lr, r3",
            "sxtb16 r3, r3, ror #8",
            "smlad r6, r12, lr, r6",
            "smlad r7, r12, r3, r7",
            ".endr",
            "ldr r12, [sp, #4]",
            "stm r12!, {{r4-r11}}",
            "str r12, [sp, #4]",
            "sub r0, r0, #{xback}",
            "subw r1, r1, #{d}",
            "ldr r12, [sp, #8]",
            "subs r12, r12, #1",
            "str r12, [sp, #8]",
            "bne 2b",
            "add sp, sp, #12",
            "pop {{r4-r11, lr}}",
            m = const M,
            ws = const ROW64,
            xback = const 4 * M,
            d = const M * ROW64 - 16,
            inout("r0") px => _,
            inout("r1") pw => _,
            inout("r2") src => _,
            inout("r3") acc => _,
            out("r12") _,
        );
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
        let mut src = Some(b);
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
                1 => run64::<1>(xr, wr, src, acc),
                2 => run64::<2>(xr, wr, src, acc),
                3 => run64::<3>(xr, wr, src, acc),
                4 => run64::<4>(xr, wr, src, acc),
                5 => run64::<5>(xr, wr, src, acc),
                6 => run64::<6>(xr, wr, src, acc),
                _ => run64::<7>(xr, wr, src, acc),
            }
            src = None;
        }
        if let Some(b) = src {
            *acc = *b;
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
        // SAFETY: 96 pairs in `x`; 96 rows of 101 words (404 bytes), of which words
        // 0..100 are read by the 50 blocks; 200 values read from `b` and written to
        // `acc`.
        unsafe {
            blocks4_x2::<HEAD_PAIRS, HEAD_ROW>(
                x.as_ptr(),
                w.as_ptr(),
                b.as_ptr(),
                acc.as_mut_ptr(),
                quads,
            );
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
    let (Ok(w), Ok(b)) = (
        <&[u32; HP * HP]>::try_from(w),
        <&[i32; HIDDEN]>::try_from(b),
    ) else {
        return portable::dense_tile_max(tile, n, w, b, pooled);
    };
    // The slots' pairs lie 4 S bytes apart; the assembly is written for the tile this
    // target uses (two slots).
    if S != 2 {
        return portable::dense_tile_max(tile, n, w, b, pooled);
    }
    let n = n.min(S);
    let base = tile.rows.as_ptr() as *const u32;
    if n == 2 {
        // SAFETY: 32 rows of two slots; 32 x 32 weight words; 64 biases and pooled.
        unsafe { layer2_x2(base, w.as_ptr(), b.as_ptr(), pooled.as_mut_ptr()) };
    } else if n == 1 {
        let mut v = [0i32; HIDDEN];
        // SAFETY: slot 0 of the 32 rows (stride 8 bytes); 32 weight rows of 32 words
        // (16 blocks of two); 64 values in `b` and `v`.
        unsafe {
            blocks4::<HP, 8, ROW64>(base, w.as_ptr(), b.as_ptr(), v.as_mut_ptr(), HIDDEN / 4)
        };
        for (p, vj) in pooled.iter_mut().zip(v) {
            *p = (*p).max(vj);
        }
    }
}

/// The LayerNorm's output step over 64 channels (see [`super::normalize_element`]):
/// input `v_j` is `g_j` when `SH` = 6 (the deviation `d_j = 64 g_j - S` is formed on
/// the fly, with `c = S - half`) or `d_j` itself when `SH` = 0 (`c = -half`); per
/// element `RSB` (the deviation plus the rounding half), `ASR`, `SSAT`, `SMULWB`,
/// `SSAT`, `SMLABB`, `ASR`, `ADD`, `SSAT`, the table lookup (`ASR`, `LDR`), the
/// interpolation (`AND`, `SMLABT`, `ADD`) and the store; two channels share one `LDRD`
/// of their inputs and one of their gains and shifts: 16 instructions per channel.
/// Outputs `2p` and `2p + 1` go to bytes `p OS` and `p OS + 2` of `out` (`OS` = 4: a
/// plain array; `4 S`: a column of a [`Tile`] of `S` slots).
///
/// # Safety
/// `v` and `affine` readable for 64 words, `out` writable for 32 pairs of halfwords at
/// stride `OS` bytes, all aligned.
#[inline(never)]
unsafe fn normalize_raw<const SH: u32, const OS: usize>(
    v: *const i32,
    c: i32,
    h: u32,
    inv: i32,
    affine: *const u32,
    out: *mut i16,
) {
    const { assert!((SH == 0 || SH == 6) && OS >= 4 && OS - 2 <= 255 && OS.is_multiple_of(4)) };
    // The table's middle entry: index t >> 6 runs over -512..=511 from here.
    let mid = TANH_Q15[512..].as_ptr();
    // Read by the assembly into registers it saves itself (more than may be named).
    let params = [c, h as i32, inv];
    // SAFETY: the caller's contract for `v`, `affine` and `out`; three words of
    // `params`; one table word per element at an index in -512..=511 from the table's
    // middle (t is saturated to 16 bits first); `ASR` by a register uses its low byte
    // (h <= 17 by construction); r4-r11 and lr saved and restored on the stack.
    unsafe {
        asm!(
            "push {{r4-r11, lr}}",
            // r0: inputs, r1: gains and shifts, r2: outputs, r3: table middle,
            // r12: c, lr: h, r4: inv, r5: rounding half (Q12), r6: 32;
            // r7, r8: two inputs, r9, r10: their gains and shifts, r11: table word.
            "ldr lr, [r12, #4]",
            "ldr r4, [r12, #8]",
            "ldr r12, [r12]",
            "mov r5, #{rnd}",
            "mov r6, #32",
            ".rept 32",
            "ldrd r7, r8, [r0], #8",
            "ldrd r9, r10, [r1], #8",
            ".irp t, r7, r8",
            "rsb \\t, r12, \\t, lsl #{sh}",
            "asr \\t, \\t, lr",
            "ssat \\t, #16, \\t",
            "smulwb \\t, r4, \\t",
            "ssat \\t, #16, \\t",
            ".endr",
            "smlabb r7, r7, r9, r5",
            "smlabb r8, r8, r10, r5",
            "asr r7, r7, #12",
            "asr r8, r8, #12",
            "add r7, r7, r9, asr #16",
            "add r8, r8, r10, asr #16",
            ".irp t, r7, r8",
            "ssat \\t, #16, \\t",
            "asr r11, \\t, #6",
            "ldr r11, [r3, r11, lsl #2]",
            "and \\t, \\t, #63",
            "smlabt \\t, \\t, r11, r6",
            "add \\t, r11, \\t, lsr #6",
            ".endr",
            "strh r7, [r2], #2",
            "strh r8, [r2], #{odd}",
            ".endr",
            "pop {{r4-r11, lr}}",
            sh = const SH,
            odd = const OS - 2,
            rnd = const 1i32 << (super::LN_FRAC_BITS - 1),
            inout("r0") v => _,
            inout("r1") affine => _,
            inout("r2") out => _,
            inout("r3") mid => _,
            inout("r12") params.as_ptr() => _,
        );
    }
}

/// As [`super::portable::normalize_tanh`].
pub fn normalize_tanh(
    d: &[i32; HIDDEN],
    h: u32,
    inv: i32,
    affine: &[u32; HIDDEN],
    out: &mut [i16; HIDDEN],
) {
    let half = (1i32 << h) >> 1;
    // SAFETY: 64 words of `d` and `affine`; 64 halfwords of `out` (stride 4 per pair).
    unsafe {
        normalize_raw::<0, 4>(
            d.as_ptr(),
            half.wrapping_neg(),
            h,
            inv,
            affine.as_ptr(),
            out.as_mut_ptr(),
        )
    };
}

/// `g_j = smmulr(a_j, m_j)` written back over `a`, their sum `S` (wrapping) and the
/// sum of their squares (64 bits): one pass, four channels per `LDM`. Not inlined: the
/// compiler cannot size `.rept` blocks when it places literal pools.
#[inline(never)]
fn to_ln_unit(a: &mut [i32; HIDDEN], m: &[i32; HIDDEN]) -> (i32, u64) {
    let (s, lo, hi): (i32, u32, u32);
    // SAFETY: 64 words read and written in `a`, 64 read from `m`, by post-incremented
    // pointers.
    unsafe {
        asm!(
            "movs {s}, #0",
            "movs {lo}, #0",
            "movs {hi}, #0",
            ".rept 16",
            "ldm {pa}, {{r0, r1, r2, r3}}",
            "ldrd {m0}, {m1}, [{pm}], #8",
            "smmulr r0, r0, {m0}",
            "smmulr r1, r1, {m1}",
            "ldrd {m0}, {m1}, [{pm}], #8",
            "smmulr r2, r2, {m0}",
            "smmulr r3, r3, {m1}",
            "stm {pa}!, {{r0, r1, r2, r3}}",
            "add {s}, {s}, r0",
            "smlal {lo}, {hi}, r0, r0",
            "add {s}, {s}, r1",
            "smlal {lo}, {hi}, r1, r1",
            "add {s}, {s}, r2",
            "smlal {lo}, {hi}, r2, r2",
            "add {s}, {s}, r3",
            "smlal {lo}, {hi}, r3, r3",
            ".endr",
            pa = inout(reg) a.as_mut_ptr() => _,
            pm = inout(reg) m.as_ptr() => _,
            m0 = out(reg) _,
            m1 = out(reg) _,
            s = out(reg) s,
            lo = out(reg) lo,
            hi = out(reg) hi,
            out("r0") _,
            out("r1") _,
            out("r2") _,
            out("r3") _,
            options(nostack),
        );
    }
    (s, (hi as u64) << 32 | lo as u64)
}

/// `floor(sqrt(v))` for `v < 2^30`: the single-precision square root (`VSQRT`), within
/// one of the floor, corrected to it exactly (as `u32::isqrt`).
#[inline(always)]
fn isqrt(v: u32) -> u32 {
    let mut r: u32;
    // SAFETY: registers, and `s0` saved and restored on the stack (the `sreg` class is
    // not available on single-precision FPUs).
    unsafe {
        asm!(
            "vpush {{s0}}",
            "vmov s0, {v}",
            "vcvt.f32.u32 s0, s0",
            "vsqrt.f32 s0, s0",
            "vcvt.u32.f32 s0, s0",
            "vmov {r}, s0",
            "vpop {{s0}}",
            v = in(reg) v,
            r = out(reg) r,
            options(pure, nomem),
        );
    }
    // v < 2^30: r <= 2^15, so r * r and (r + 1)^2 fit 32 bits.
    while r * r > v {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= v {
        r += 1;
    }
    r
}

/// As [`super::layer_norm_tanh`] for the sums the network produces (`|g_j| < 2^24`;
/// validation bounds them by 2^20): the sum and the sum of squares of `g` in one pass,
/// `sum_j d_j^2 = 4096 sum_j g_j^2 - 64 S^2` (exact: no deviation or sum wraps within
/// that bound), and the deviations formed in the output step, whose outputs `2p` and
/// `2p + 1` go to bytes `p OS` and `p OS + 2` of `out`.
///
/// # Safety
/// `out` writable for 32 pairs of halfwords at stride `OS` bytes, aligned.
unsafe fn layer_norm_tanh_raw<const OS: usize>(
    acc: &mut [i32; HIDDEN],
    m: &[i32; HIDDEN],
    eps: u64,
    affine: &[u32; HIDDEN],
    out: *mut i16,
) {
    let (s, q) = to_ln_unit(acc, m);
    let var = (q << 12).wrapping_sub(((s as i64 * s as i64) as u64) << 6);
    let w = var.wrapping_add(eps);
    let bits = 64 - w.leading_zeros();
    let shift = if bits > 30 { (bits - 29) & !1 } else { 0 };
    let r = isqrt((w >> shift) as u32).max(1) as i32;
    let inv = i32::MAX / r;
    let h = shift / 2;
    let half = (1i32 << h) >> 1;
    // SAFETY: 64 words of `acc` and `affine`; `out` by the caller's contract.
    unsafe {
        normalize_raw::<6, OS>(
            acc.as_ptr(),
            s.wrapping_sub(half),
            h,
            inv,
            affine.as_ptr(),
            out,
        )
    };
}

/// As [`super::layer_norm_tanh`] (see [`layer_norm_tanh_raw`] for the range).
pub fn layer_norm_tanh(
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
    // SAFETY: 64 halfwords of `out`, pairs 4 bytes apart.
    unsafe { layer_norm_tanh_raw::<4>(acc, m, eps, affine, out.as_mut_ptr()) };
}

/// [`layer_norm_tanh`] with its outputs written straight into column `col` of `tile`
/// (pairs `4 S` bytes apart), for the tiles this target uses (one or two slots).
pub fn layer_norm_tanh_column<const S: usize>(
    acc: &mut [i32; HIDDEN],
    m: &[i32],
    eps: u64,
    affine: &[u32],
    tile: &mut Tile<S>,
    col: usize,
) {
    let (Ok(m), Ok(affine), true) = (
        <&[i32; HIDDEN]>::try_from(m),
        <&[u32; HIDDEN]>::try_from(affine),
        col < S && (S == 1 || S == 2),
    ) else {
        let mut t = [0i16; HIDDEN];
        super::layer_norm_tanh(acc, m, eps, affine, &mut t);
        tile.set_column(col, &t);
        return;
    };
    let out = tile
        .rows
        .as_mut_ptr()
        .cast::<u32>()
        .wrapping_add(col)
        .cast::<i16>();
    // SAFETY: word `col` of each of the 32 rows of `S` words: 32 pairs of halfwords,
    // `4 S` bytes apart, inside the tile.
    unsafe {
        if S == 1 {
            layer_norm_tanh_raw::<4>(acc, m, eps, affine, out);
        } else {
            layer_norm_tanh_raw::<8>(acc, m, eps, affine, out);
        }
    }
}

/// As [`super::quantize_input`], with the clamp after the conversion: `x * scale` plus
/// a half of its sign, converted (truncating, saturating, NaN to 0: `VCVT`), then
/// clamped to ±32767 in integers. The same result for every input: within ±32767 the
/// float steps are the same, beyond it both give the bound.
#[inline(always)]
pub(crate) fn quantize_input(x: f32, scale: f32) -> i16 {
    let v = x * scale;
    let r = v + 0.5f32.copysign(v);
    (r as i32).clamp(-super::ACT_MAX, super::ACT_MAX) as i16
}
