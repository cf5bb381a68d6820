//! How agents move: trajectory tokens, and two kinematic bicycle models.
//!
//! The simulator moves policy-controlled agents by tokens ([`apply_token`]): a token is
//! the agent's local pose 0.1 s and 0.2 s after it decided, so applying one is a rigid
//! transform, and the velocity follows by finite difference. The bicycle models are for
//! planners and hardware-in-the-loop rigs that drive a vehicle model:
//! [`ClassicBicycle`] is GPUDrive's classic (acceleration, steering angle) model and
//! [`WaymaxBicycle`] Waymax's invertible (acceleration, curvature) model, whose
//! [`WaymaxBicycle::inverse`] recovers the controls that explain two logged states.

use crate::agent::AgentState;
use crate::geometry::{Pose, Vec2};
use crate::math::{atan2, cos, sin, sqrt, wrap_angle};
use crate::tokenizer::Token;

/// Simulator step (seconds): 10 Hz.
pub const DT: f32 = 0.1;
/// Simulator steps covered by one token (0.2 s): the policy decides at 5 Hz.
pub const STEPS_PER_TOKEN: usize = 2;

/// Applies `token` to an agent that decided in state `from`: returns its states after
/// 0.1 s and 0.2 s. Poses are the token's local poses mapped to the world; velocities
/// are finite differences of consecutive positions over [`DT`].
#[inline]
pub fn apply_token(from: &AgentState, token: &Token) -> [AgentState; STEPS_PER_TOKEN] {
    let p0 = from.pose;
    let p1 = p0.compose(token.poses[0]);
    let p2 = p0.compose(token.poses[1]);
    let v1 = (p1.position() - p0.position()) * (1.0 / DT);
    let v2 = (p2.position() - p1.position()) * (1.0 / DT);
    [AgentState::new(p1, v1), AgentState::new(p2, v2)]
}

/// GPUDrive's classic kinematic bicycle model: controls are longitudinal acceleration
/// (m/s²) and front-wheel steering angle (rad), with the centre of mass at half the
/// wheelbase (taken as the vehicle length).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassicBicycle {
    /// Wheelbase (metres); GPUDrive uses the box length.
    pub length: f32,
    /// Speed limit, applied symmetrically (m/s).
    pub max_speed: f32,
}

impl ClassicBicycle {
    /// One step of `dt` seconds. Non-finite controls are treated as zero, so a bad
    /// command cannot poison the state.
    pub fn step(&self, s: &AgentState, accel: f32, steering: f32, dt: f32) -> AgentState {
        let accel = if accel.is_finite() { accel } else { 0.0 };
        let steering = if steering.is_finite() { steering } else { 0.0 };
        let yaw = s.pose.yaw;
        // Signed speed along the heading (reversing keeps its sign).
        let speed = s.velocity.dot(Vec2::from_angle(yaw));
        let clip = |v: f32| v.clamp(-self.max_speed, self.max_speed);
        let v_avg = clip(speed + 0.5 * accel * dt);
        let tan_delta = libm::tanf(steering);
        let beta = libm::atanf(0.5 * tan_delta);
        let length = if self.length > 1e-3 {
            self.length
        } else {
            1e-3
        };
        let yaw_rate = v_avg * cos(beta) * tan_delta / length;
        let d = Vec2::from_angle(yaw + beta) * (v_avg * dt);
        let new_yaw = wrap_angle(yaw + yaw_rate * dt);
        let new_speed = clip(speed + accel * dt);
        AgentState::new(
            Pose::new(s.pose.x + d.x, s.pose.y + d.y, new_yaw),
            Vec2::from_angle(new_yaw) * new_speed,
        )
    }
}

/// Waymax's invertible kinematic bicycle model: controls are acceleration (m/s²) and
/// curvature ("steering", 1/m); the velocity is always along the heading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WaymaxBicycle {
    /// Acceleration limit used by [`WaymaxBicycle::inverse`] (Waymax: 6 m/s²).
    pub max_accel: f32,
    /// Curvature limit used by [`WaymaxBicycle::inverse`] (Waymax: 0.3 1/m).
    pub max_curvature: f32,
}

impl Default for WaymaxBicycle {
    fn default() -> Self {
        Self {
            max_accel: 6.0,
            max_curvature: 0.3,
        }
    }
}

impl WaymaxBicycle {
    /// One step of `dt` seconds. Non-finite controls are treated as zero.
    pub fn step(&self, s: &AgentState, accel: f32, curvature: f32, dt: f32) -> AgentState {
        let accel = if accel.is_finite() { accel } else { 0.0 };
        let curvature = if curvature.is_finite() {
            curvature
        } else {
            0.0
        };
        let yaw = s.pose.yaw;
        let (c, sn) = (cos(yaw), sin(yaw));
        let speed = s.speed();
        let x = s.pose.x + s.velocity.x * dt + 0.5 * accel * c * dt * dt;
        let y = s.pose.y + s.velocity.y * dt + 0.5 * accel * sn * dt * dt;
        let new_yaw = wrap_angle(yaw + curvature * (speed * dt + 0.5 * accel * dt * dt));
        let new_speed = speed + accel * dt;
        AgentState::new(
            Pose::new(x, y, new_yaw),
            Vec2::from_angle(new_yaw) * new_speed,
        )
    }

    /// The (acceleration, curvature) that best explain moving from `s` to `next` in
    /// `dt`, clipped to the model's limits. Curvature is 0 when the agent barely moves.
    pub fn inverse(&self, s: &AgentState, next: &AgentState, dt: f32) -> (f32, f32) {
        if dt.is_nan() || dt <= 0.0 {
            return (0.0, 0.0);
        }
        let speed = s.speed();
        let accel = (next.speed() - speed) / dt;
        let dyaw = wrap_angle(next.pose.yaw - s.pose.yaw);
        let denom = speed * dt + 0.5 * accel * dt * dt;
        let curvature = if denom.abs() > 1e-3 {
            dyaw / denom
        } else {
            0.0
        };
        let clip = |v: f32, m: f32| if v.is_finite() { v.clamp(-m, m) } else { 0.0 };
        (
            clip(accel, self.max_accel),
            clip(curvature, self.max_curvature),
        )
    }
}

/// Heading implied by a displacement, or `fallback` when the displacement is too short
/// to define one (a standing agent keeps its heading).
#[inline]
pub fn heading_of(delta: Vec2, fallback: f32) -> f32 {
    if delta.norm_sq() > 1e-6 {
        atan2(delta.y, delta.x)
    } else {
        fallback
    }
}

/// Speed from velocity components (helper for FFI callers).
#[inline]
pub fn speed_of(vx: f32, vy: f32) -> f32 {
    sqrt(vx * vx + vy * vy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::f32::consts::FRAC_PI_2;

    #[test]
    fn token_moves_in_agent_frame_and_sets_velocity() {
        let s = AgentState::new(Pose::new(10.0, 5.0, FRAC_PI_2), Vec2::new(0.0, 10.0));
        let t = Token {
            poses: [Pose::new(1.0, 0.0, 0.0), Pose::new(2.0, 0.0, 0.1)],
        };
        let [a, b] = apply_token(&s, &t);
        assert!((a.pose.x - 10.0).abs() < 1e-5 && (a.pose.y - 6.0).abs() < 1e-5);
        assert!((b.pose.y - 7.0).abs() < 1e-5 && (b.pose.yaw - (FRAC_PI_2 + 0.1)).abs() < 1e-5);
        assert!((a.velocity.y - 10.0).abs() < 1e-3 && a.velocity.x.abs() < 1e-3);
        assert!((b.speed() - 10.0).abs() < 1e-3);
    }

    #[test]
    fn classic_bicycle_straight_and_turning() {
        let m = ClassicBicycle {
            length: 4.0,
            max_speed: 40.0,
        };
        let s = AgentState::new(Pose::new(0.0, 0.0, 0.0), Vec2::new(10.0, 0.0));
        let n = m.step(&s, 2.0, 0.0, 0.1);
        assert!((n.pose.x - (10.0 + 0.1) * 0.1).abs() < 1e-5 && n.pose.y.abs() < 1e-6);
        assert!((n.speed() - 10.2).abs() < 1e-5);
        let l = m.step(&s, 0.0, 0.3, 0.1);
        assert!(l.pose.yaw > 0.0 && l.pose.y > 0.0, "left steer turns left");
        let r = m.step(&s, 0.0, -0.3, 0.1);
        assert!((r.pose.yaw + l.pose.yaw).abs() < 1e-6, "symmetric");
        let bad = m.step(&s, f32::NAN, f32::INFINITY, 0.1);
        assert!(bad.is_finite());
    }

    #[test]
    fn waymax_inverse_recovers_controls() {
        let m = WaymaxBicycle::default();
        let s = AgentState::new(Pose::new(3.0, -1.0, 0.4), Vec2::from_angle(0.4) * 8.0);
        for (a, k) in [(1.5f32, 0.05f32), (-3.0, -0.1), (0.0, 0.0), (5.0, 0.29)] {
            let n = m.step(&s, a, k, 0.1);
            let (ra, rk) = m.inverse(&s, &n, 0.1);
            assert!(
                (ra - a).abs() < 1e-3 && (rk - k).abs() < 1e-3,
                "{a},{k} -> {ra},{rk}"
            );
        }
        let (ra, rk) = m.inverse(&s, &s, 0.0);
        assert_eq!((ra, rk), (0.0, 0.0));
    }
}
