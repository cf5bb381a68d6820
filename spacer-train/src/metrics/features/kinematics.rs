//! Speeds and accelerations by central differences, as the official
//! `trajectory_features.compute_kinematic_features` computes them.
//!
//! Over a series of `n` steps (history and future together, so that the first
//! simulated step has neighbours):
//! - linear speed `v[t] = |p[t+1] - p[t-1]| / 2 / dt` (3D), NaN at both ends;
//! - linear acceleration `a[t] = (v[t+1] - v[t-1]) / 2 / dt`, NaN at the two first and
//!   last steps;
//! - angular speed from `dh[t] = wrap(h[t+1] - h[t-1]) / 2` (the two-step heading change
//!   wrapped into [-pi, pi) before halving, so that the one-step change is taken as the
//!   acute one), `w[t] = dh[t] / dt`;
//! - angular acceleration `wrap(dh[t+1] - dh[t-1]) / 2 / dt^2`.
//!
//! No validity is applied here: invalid neighbours give meaningless values that the
//! scoring masks out ([`speed_validity`], [`acceleration_validity`]). Arithmetic is
//! `f32` in the official order (differences, halving, squares summed x, y, z, square
//! root, division by `dt` as an `f32`), so that the values match the official ones to
//! float rounding even at the 10 km coordinates of WOMD.

/// `np.pi` as an `f32`, as TensorFlow converts it.
pub const PI_F32: f32 = std::f64::consts::PI as f32;
/// `2 * np.pi` as an `f32`.
pub const TWO_PI_F32: f32 = (2.0 * std::f64::consts::PI) as f32;

/// TensorFlow's `floormod` for floats: the remainder with the divisor's sign.
pub fn floor_mod(x: f32, y: f32) -> f32 {
    let m = x % y;
    if m != 0.0 && ((y < 0.0) != (m < 0.0)) {
        m + y
    } else {
        m
    }
}

/// Wraps an angle into [-pi, pi) the official way: `(a + pi) mod 2 pi - pi` in `f32`.
pub fn wrap_angle(a: f32) -> f32 {
    floor_mod(a + PI_F32, TWO_PI_F32) - PI_F32
}

/// The four kinematic series of one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Kinematics {
    /// Linear speed (m/s).
    pub linear_speed: Vec<f32>,
    /// Linear acceleration (m/s²).
    pub linear_acceleration: Vec<f32>,
    /// Angular speed (rad/s).
    pub angular_speed: Vec<f32>,
    /// Angular acceleration (rad/s²).
    pub angular_acceleration: Vec<f32>,
}

/// Central difference `(v[t+1] - v[t-1]) / 2`, NaN at both ends.
fn central_diff(v: &[f32]) -> Vec<f32> {
    let n = v.len();
    let mut out = vec![f32::NAN; n];
    for t in 1..n.saturating_sub(1) {
        out[t] = (v[t + 1] - v[t - 1]) / 2.0;
    }
    out
}

/// Linear speed only (used by time to collision with `z` = 0).
///
/// # Shapes
/// `x`, `y`, `z`: `[n]` each; `z` may be `None` for a planar speed. Returns `[n]`.
pub fn linear_speed(x: &[f32], y: &[f32], z: Option<&[f32]>, seconds_per_step: f64) -> Vec<f32> {
    let dt = seconds_per_step as f32;
    let n = x.len();
    let mut out = vec![f32::NAN; n];
    for t in 1..n.saturating_sub(1) {
        let dx = (x[t + 1] - x[t - 1]) / 2.0;
        let dy = (y[t + 1] - y[t - 1]) / 2.0;
        let dz = match z {
            Some(z) => (z[t + 1] - z[t - 1]) / 2.0,
            None => 0.0,
        };
        out[t] = (dx * dx + dy * dy + dz * dz).sqrt() / dt;
    }
    out
}

/// All four kinematic features of one object over its whole series.
///
/// # Shapes
/// `x`, `y`, `z`, `heading`: `[n]`. Every output series is `[n]`.
pub fn kinematic_features(
    x: &[f32],
    y: &[f32],
    z: &[f32],
    heading: &[f32],
    seconds_per_step: f64,
) -> Kinematics {
    let dt = seconds_per_step as f32;
    let dt2 = (seconds_per_step * seconds_per_step) as f32;
    let linear_speed = linear_speed(x, y, Some(z), seconds_per_step);
    let linear_acceleration = central_diff(&linear_speed)
        .into_iter()
        .map(|d| d / dt)
        .collect();
    let dh_step: Vec<f32> = central_diff(heading)
        .into_iter()
        .map(|d| wrap_angle(d * 2.0) / 2.0)
        .collect();
    let angular_speed = dh_step.iter().map(|d| d / dt).collect();
    let angular_acceleration = central_diff(&dh_step)
        .into_iter()
        .map(|d| wrap_angle(d * 2.0) / 2.0 / dt2)
        .collect();
    Kinematics {
        linear_speed,
        linear_acceleration,
        angular_speed,
        angular_acceleration,
    }
}

/// Central logical and: step `t` is valid when `t-1` and `t+1` are; the ends are
/// invalid.
fn central_and(valid: &[bool]) -> Vec<bool> {
    let n = valid.len();
    let mut out = vec![false; n];
    for t in 1..n.saturating_sub(1) {
        out[t] = valid[t - 1] && valid[t + 1];
    }
    out
}

/// Which speed values can be scored, from the object's validity over the same steps
/// (the official `compute_kinematic_validity`).
pub fn speed_validity(valid: &[bool]) -> Vec<bool> {
    central_and(valid)
}

/// Which acceleration values can be scored (central and, applied twice).
pub fn acceleration_validity(valid: &[bool]) -> Vec<bool> {
    central_and(&central_and(valid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn constant_motion_has_constant_speed_and_no_acceleration() {
        let n = 12;
        let x: Vec<f32> = (0..n).map(|t| 3.0 * t as f32 * 0.1).collect();
        let y: Vec<f32> = (0..n).map(|t| 4.0 * t as f32 * 0.1).collect();
        let z = vec![0.0; n];
        let h: Vec<f32> = (0..n).map(|t| 0.2 * t as f32 * 0.1).collect();
        let k = kinematic_features(&x, &y, &z, &h, 0.1);
        assert!(k.linear_speed[0].is_nan() && k.linear_speed[n - 1].is_nan());
        assert!(k.linear_acceleration[1].is_nan() && k.linear_acceleration[n - 2].is_nan());
        for t in 1..n - 1 {
            assert!(
                (k.linear_speed[t] - 5.0).abs() < 1e-4,
                "{}",
                k.linear_speed[t]
            );
            assert!((k.angular_speed[t] - 0.2).abs() < 1e-4);
        }
        for t in 2..n - 2 {
            assert!(k.linear_acceleration[t].abs() < 1e-3);
            assert!(k.angular_acceleration[t].abs() < 1e-2);
        }
    }

    #[test]
    fn heading_changes_wrap_across_pi() {
        let h = [3.1, -3.1, -2.9];
        let k = kinematic_features(&[0.0; 3], &[0.0; 3], &[0.0; 3], &h, 0.1);
        // From 3.1 to -2.9 is +0.383 rad over two steps, not -6.
        let expect = (2.0 * std::f32::consts::PI - 6.0) / 2.0 / 0.1;
        assert!((k.angular_speed[1] - expect).abs() < 1e-4);
    }

    #[test]
    fn validity_masks_follow_the_stencils() {
        let v = [true, true, true, false, true, true, true, true];
        assert_eq!(
            speed_validity(&v),
            [false, true, false, true, false, true, true, false]
        );
        assert_eq!(
            acceleration_validity(&v),
            [false, false, true, false, true, false, false, false]
        );
    }

    proptest! {
        #[test]
        fn wrapped_angles_stay_in_range(a in -100.0f32..100.0) {
            let w = wrap_angle(a);
            prop_assert!((-PI_F32..=PI_F32).contains(&w));
            let turns = ((a - w) as f64 / std::f64::consts::TAU).round();
            prop_assert!(((a - w) as f64 - turns * std::f64::consts::TAU).abs() < 1e-4);
        }

        #[test]
        fn floor_mod_has_the_divisor_sign(x in -50.0f32..50.0, y in prop::sample::select(vec![-3.0f32, 2.5, 7.5])) {
            let m = floor_mod(x, y);
            prop_assert!(m == 0.0 || (m > 0.0) == (y > 0.0));
            prop_assert!(m.abs() <= y.abs());
        }
    }
}
