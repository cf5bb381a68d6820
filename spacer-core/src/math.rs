//! Scalar math behind one door, so that every build computes the same numbers.
//!
//! By default every transcendental function comes from `libm`, a pure-Rust port of
//! musl's libm: the host, the Cortex-M4F firmware and the C ABI produce bit-identical
//! results, which is what lets a test compare the firmware's tokens with the host's.
//! The `fast-math` feature swaps in `micromath` approximations (a few ULP to ~1e-3
//! relative error) for targets where libm's accuracy costs too many cycles.

use core::f32::consts::PI;

/// `2 * PI`.
pub const TAU: f32 = 2.0 * PI;

#[cfg(not(feature = "fast-math"))]
mod imp {
    #[inline]
    /// Sine.
    pub fn sin(x: f32) -> f32 {
        libm::sinf(x)
    }
    #[inline]
    /// Cosine.
    pub fn cos(x: f32) -> f32 {
        libm::cosf(x)
    }
    #[inline]
    /// Four-quadrant arctangent of `y / x`.
    pub fn atan2(y: f32, x: f32) -> f32 {
        libm::atan2f(y, x)
    }
    #[inline]
    /// `e^x`.
    pub fn exp(x: f32) -> f32 {
        libm::expf(x)
    }
    #[inline]
    /// Natural logarithm.
    pub fn ln(x: f32) -> f32 {
        libm::logf(x)
    }
    #[inline]
    /// Hyperbolic tangent.
    pub fn tanh(x: f32) -> f32 {
        libm::tanhf(x)
    }
}

#[cfg(feature = "fast-math")]
mod imp {
    use micromath::F32Ext;
    #[inline]
    /// Sine.
    pub fn sin(x: f32) -> f32 {
        F32Ext::sin(x)
    }
    #[inline]
    /// Cosine.
    pub fn cos(x: f32) -> f32 {
        F32Ext::cos(x)
    }
    #[inline]
    /// Four-quadrant arctangent of `y / x`.
    pub fn atan2(y: f32, x: f32) -> f32 {
        F32Ext::atan2(y, x)
    }
    #[inline]
    /// `e^x`.
    pub fn exp(x: f32) -> f32 {
        F32Ext::exp(x)
    }
    #[inline]
    /// Natural logarithm.
    pub fn ln(x: f32) -> f32 {
        F32Ext::ln(x)
    }
    #[inline]
    /// Hyperbolic tangent.
    pub fn tanh(x: f32) -> f32 {
        // micromath has no tanh; this form saturates cleanly for large |x|.
        let x = x.clamp(-15.0, 15.0);
        let e = F32Ext::exp(2.0 * x);
        (e - 1.0) / (e + 1.0)
    }
}

pub use imp::{atan2, cos, exp, ln, sin, tanh};

/// Square root (IEEE correctly rounded in both builds).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// `sqrt(x*x + y*y)`.
#[inline]
pub fn hypot(x: f32, y: f32) -> f32 {
    sqrt(x * x + y * y)
}

/// `e^x` for `x` in `[-87, 0]`, branch-free so that loops over it vectorise: a
/// round-to-nearest range reduction `x = n ln2 + r` (|r| <= ln2 / 2, Cody-Waite split
/// of ln2) and a degree-7 Taylor polynomial for `e^r`; relative error below 3e-7.
/// Inputs outside the range are clamped to it.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5 * 2^23 rounds to an integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 0.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^n from the exponent bits; n is in [-126, 0].
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    p * scale
}

/// Hyperbolic tangent, fast and vectorisable: an odd Taylor polynomial (to x^15)
/// below |x| = 0.5, `(1 - e) / (1 + e)` with `e = exp(-2|x|)` above, saturating at
/// |x| = 9. Absolute error below 3e-7 everywhere; the same bits on every target (no
/// lookup tables, no fused operations). NaN maps to ±1, so callers validate first.
///
/// The policy's encoders use it: libm's `tanhf` is exact to an ulp but several times
/// slower, and the network does not need the last bits.
#[inline(always)]
pub fn tanh_fast(x: f32) -> f32 {
    let a = if x < 0.0 { -x } else { x };
    let a = if a > 9.0 { 9.0 } else { a };
    let a2 = a * a;
    let small = a
        * (1.0
            + a2 * (-1.0 / 3.0
                + a2 * (2.0 / 15.0
                    + a2 * (-17.0 / 315.0
                        + a2 * (62.0 / 2835.0
                            + a2 * (-1382.0 / 155_925.0
                                + a2 * (21_844.0 / 6_081_075.0
                                    + a2 * (-929_569.0 / 638_512_875.0))))))));
    let e = exp_nonpositive(-2.0 * a);
    let large = (1.0 - e) / (1.0 + e);
    let t = if a < 0.5 { small } else { large };
    if x < 0.0 { -t } else { t }
}

/// Wraps an angle into `[-PI, PI)`.
///
/// Non-finite input is returned unchanged (NaN stays NaN): callers validate at their
/// boundary, and this function must not loop or panic on anything.
#[inline]
pub fn wrap_angle(a: f32) -> f32 {
    if !a.is_finite() {
        return a;
    }
    if (-PI..PI).contains(&a) {
        return a;
    }
    let r = a - TAU * libm::floorf((a + PI) / TAU);
    // Rounding can land exactly on PI (or a hair below -PI); fold it back.
    if r >= PI {
        r - TAU
    } else if r < -PI {
        r + TAU
    } else {
        r
    }
}

/// A small, seedable, reproducible random number generator (SplitMix64).
///
/// Its whole state is one `u64`, so it crosses the C ABI as a plain integer and a
/// caller can save and restore it. Not cryptographic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Rng {
    /// The raw state; any value is valid.
    pub state: u64,
}

impl Rng {
    /// A generator seeded with `seed` (any value, zero included).
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `[0, 1)`, with 24 bits of resolution.
    #[inline]
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform integer in `[0, n)`; returns 0 when `n == 0`.
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        ((self.next_u32() as u64 * n as u64) >> 32) as u32
    }

    /// Standard normal sample (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f32();
        let u2 = self.next_f32();
        sqrt(-2.0 * ln(u1)) * cos(TAU * u2)
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exp_nonpositive_is_accurate() {
        let mut x = -87.0f32;
        while x <= 0.0 {
            let want = (x as f64).exp();
            let got = exp_nonpositive(x) as f64;
            assert!(
                ((got - want) / want).abs() < 3e-7,
                "exp({x}) = {got}, want {want}"
            );
            x += 1.0e-3;
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e9) > 0.0 && exp_nonpositive(5.0) == 1.0);
    }

    #[test]
    fn tanh_fast_is_accurate_everywhere() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x <= 12.0 {
            let err = (tanh_fast(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err);
            x += 1.0e-4;
        }
        assert!(worst < 3e-7, "worst error {worst}");
        assert_eq!(tanh_fast(0.0), 0.0);
        assert_eq!(tanh_fast(-2.0), -tanh_fast(2.0));
        assert!(tanh_fast(1e30) <= 1.0 && tanh_fast(-1e30) >= -1.0);
    }

    #[test]
    fn wrap_angle_known_values() {
        assert_eq!(wrap_angle(0.0), 0.0);
        // 3π sits on the seam: either end of the range is the same direction.
        let w = wrap_angle(3.0 * PI);
        assert!((w.abs() - PI).abs() < 1e-5 && (-PI..PI).contains(&w));
        assert!((wrap_angle(-3.0 * PI / 2.0) - PI / 2.0).abs() < 1e-5);
        assert!((wrap_angle(7.0) - (7.0 - TAU)).abs() < 1e-5);
        assert!(wrap_angle(f32::NAN).is_nan());
        assert_eq!(wrap_angle(f32::INFINITY), f32::INFINITY);
    }

    proptest! {
        #[test]
        fn wrap_angle_in_range_and_equivalent(a in -1.0e4f32..1.0e4) {
            let w = wrap_angle(a);
            prop_assert!((-PI..PI).contains(&w), "{a} -> {w}");
            // Same direction: sin and cos agree within float precision of `a`.
            let tol = 1e-6 * a.abs().max(1.0) * 8.0;
            prop_assert!((sin(w) - sin(a)).abs() <= tol.max(1e-4));
            prop_assert!((cos(w) - cos(a)).abs() <= tol.max(1e-4));
        }
    }

    #[test]
    fn rng_is_deterministic_and_uniformish() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut sum = 0.0f64;
        for _ in 0..10_000 {
            let x = a.next_f32();
            assert_eq!(x, b.next_f32());
            assert!((0.0..1.0).contains(&x));
            sum += x as f64;
        }
        assert!((sum / 10_000.0 - 0.5).abs() < 0.02);
        let mut c = Rng::new(8);
        assert_ne!(Rng::new(7).next_u64(), c.next_u64());
    }

    #[test]
    fn rng_below_and_normal() {
        let mut r = Rng::new(1);
        assert_eq!(r.below(0), 0);
        let mut counts = [0u32; 5];
        for _ in 0..5000 {
            counts[r.below(5) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        let (mut m, mut v) = (0.0f64, 0.0f64);
        for _ in 0..20_000 {
            let x = r.normal() as f64;
            assert!(x.is_finite());
            m += x;
            v += x * x;
        }
        m /= 20_000.0;
        v = v / 20_000.0 - m * m;
        assert!(m.abs() < 0.03 && (v - 1.0).abs() < 0.05, "mean {m} var {v}");
    }
}
