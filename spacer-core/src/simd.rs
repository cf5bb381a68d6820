//! Run-time CPU feature detection for the host kernels (feature `std`, x86-64 only):
//! wider vectors where the CPU has them. The kernels compiled for them compute the same
//! bits as the portable ones (the same operations in the same order per output, no
//! fused multiply-adds), so the choice changes speed, never results; tests run both.

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not yet detected; 1: no; 2: yes.
static AVX512: AtomicU8 = AtomicU8::new(0);

/// Whether the CPU has AVX-512 F, BW, DQ and VL (detected once), unless
/// `SPACER_NO_AVX512` is set in the environment when first asked.
#[inline]
pub fn avx512() -> bool {
    match AVX512.load(Ordering::Relaxed) {
        0 => {
            let yes = std::env::var_os("SPACER_NO_AVX512").is_none()
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl");
            AVX512.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

/// 0: not yet detected; 1: no; 2: yes.
static VNNI: AtomicU8 = AtomicU8::new(0);

/// [`avx512`] and the AVX-512 VNNI dot products (what the int8 kernels use).
#[inline]
pub fn avx512_vnni() -> bool {
    if !avx512() {
        return false;
    }
    match VNNI.load(Ordering::Relaxed) {
        0 => {
            let yes = std::arch::is_x86_feature_detected!("avx512vnni");
            VNNI.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

/// Forces the detection result (tests compare both paths).
#[doc(hidden)]
pub fn force_avx512(on: bool) {
    let on = on
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl");
    AVX512.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}
