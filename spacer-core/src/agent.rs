//! Agent types and the kinematic state the simulator and the tokenizer share.

use crate::geometry::{Pose, Vec2};

/// The kinds of road user that get their own token vocabulary.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[repr(u8)]
pub enum AgentKind {
    /// Cars, trucks, buses.
    Vehicle = 0,
    /// People on foot.
    Pedestrian = 1,
    /// Bicycles and their riders.
    Cyclist = 2,
}

impl AgentKind {
    /// Number of kinds.
    pub const COUNT: usize = 3;
    /// All kinds, in index order.
    pub const ALL: [AgentKind; 3] = [
        AgentKind::Vehicle,
        AgentKind::Pedestrian,
        AgentKind::Cyclist,
    ];

    /// Index into per-kind tables (0, 1, 2).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kind with this index, if any.
    #[inline]
    pub const fn from_index(i: usize) -> Option<Self> {
        match i {
            0 => Some(AgentKind::Vehicle),
            1 => Some(AgentKind::Pedestrian),
            2 => Some(AgentKind::Cyclist),
            _ => None,
        }
    }

    /// The fixed (length, width) box whose corners measure token distances
    /// (docs/design.md section 1.3: vehicle 4.8 x 2.0 m, cyclist 2.0 x 1.0, pedestrian
    /// 1.0 x 1.0).
    #[inline]
    pub const fn token_box(self) -> (f32, f32) {
        match self {
            AgentKind::Vehicle => (4.8, 2.0),
            AgentKind::Pedestrian => (1.0, 1.0),
            AgentKind::Cyclist => (2.0, 1.0),
        }
    }

    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            AgentKind::Vehicle => "vehicle",
            AgentKind::Pedestrian => "pedestrian",
            AgentKind::Cyclist => "cyclist",
        }
    }
}

/// An agent's kinematic state: pose and world-frame velocity.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[repr(C)]
pub struct AgentState {
    /// Position and heading.
    pub pose: Pose,
    /// Velocity in the world frame (m/s).
    pub velocity: Vec2,
}

impl AgentState {
    /// A state from its parts.
    #[inline]
    pub const fn new(pose: Pose, velocity: Vec2) -> Self {
        Self { pose, velocity }
    }

    /// Speed (m/s).
    #[inline]
    pub fn speed(&self) -> f32 {
        self.velocity.norm()
    }

    /// True when every component is finite.
    #[inline]
    pub fn is_finite(&self) -> bool {
        self.pose.is_finite() && self.velocity.is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_round_trip() {
        for k in AgentKind::ALL {
            assert_eq!(AgentKind::from_index(k.index()), Some(k));
        }
        assert_eq!(AgentKind::from_index(3), None);
        assert_eq!(AgentKind::Cyclist.token_box(), (2.0, 1.0));
    }
}
