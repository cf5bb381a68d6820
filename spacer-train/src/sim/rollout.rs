//! What a run produces, per world: every object's trajectory, and for every
//! controlled agent the tokens it executed and its events.
//!
//! The types are plain data (vectors of [`ObjectState`], flags), serde-serializable,
//! and index like the scene: `objects[i]` is `scene.tracks[i]`, `states[t]` is step
//! `t` (0..91 for WOMD: steps `0..=current_step` are the log, the rest simulated).
//! The metrics read `objects` exactly as they read a scene's logged tracks.

use serde::{Deserialize, Serialize};
use spacer_core::agent::AgentKind;
use spacer_core::geometry::Vec2;

use crate::scenario::{ObjectState, ObjectType};

/// Token slot value for a decision at which the agent executed no token (it followed
/// explicit states or its log, had stopped after a collision, or was removed).
pub const NO_TOKEN: u16 = u16::MAX;

/// What happened to a controlled agent at one step (bit flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Events(pub u8);

impl Events {
    /// No event.
    pub const NONE: Events = Events(0);
    /// The agent's box overlaps another object's box.
    pub const COLLISION: Events = Events(1);
    /// The agent's box touches a road edge (vehicles only; GPUDrive's pairs).
    pub const OFFROAD: Events = Events(2);
    /// The agent's centre is within the goal radius of its goal.
    pub const GOAL_REACHED: Events = Events(4);

    /// True when every flag of `other` is set.
    #[inline]
    pub fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Sets the flags of `other`.
    #[inline]
    pub fn insert(&mut self, other: Events) {
        self.0 |= other.0;
    }

    /// True when no flag is set.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One object of a rollout: its simulated (or replayed) trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulatedObject {
    /// The scene's object id.
    pub id: i64,
    /// Its type.
    pub object_type: ObjectType,
    /// Row of the agent in [`Rollout::agents`] when it was controlled.
    pub agent: Option<usize>,
    /// One state per step: x, y, z, heading, box sizes (the true ones), velocity and
    /// validity. Controlled agents keep the z, height and box of the current step;
    /// their velocity is the finite difference of their positions for tokens.
    pub states: Vec<ObjectState>,
}

/// One controlled agent of a rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Index of its track in the scene (and in [`Rollout::objects`]).
    pub track: usize,
    /// Its token vocabulary kind.
    pub kind: AgentKind,
    /// Its goal (last valid logged position).
    pub goal: Vec2,
    /// Whether its goal was shown to it (goal dropout hides it for the episode).
    pub goal_visible: bool,
    /// The token executed at each decision ([`NO_TOKEN`] where none was).
    pub tokens: Vec<u16>,
    /// Events per step (empty before the current step).
    pub events: Vec<Events>,
    /// First step with a collision.
    pub first_collision: Option<usize>,
    /// First step with a road-edge contact.
    pub first_offroad: Option<usize>,
    /// First step within the goal radius.
    pub first_goal: Option<usize>,
    /// Step at which the collision behaviour stopped or removed it.
    pub halted_at: Option<usize>,
}

/// One world's run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The scene's id.
    pub scene_id: String,
    /// The world's index in its simulator.
    pub world: usize,
    /// The seed the world ran with.
    pub seed: u64,
    /// The last logged step (simulation starts after it).
    pub current_step: usize,
    /// Steps per trajectory.
    pub steps: usize,
    /// Every object of the scene, in track order.
    pub objects: Vec<SimulatedObject>,
    /// The controlled agents, in observation-row order.
    pub agents: Vec<AgentRecord>,
}

impl Rollout {
    /// The simulated states of track `i` over the steps after the current one.
    pub fn future(&self, i: usize) -> Option<&[ObjectState]> {
        self.objects
            .get(i)
            .and_then(|o| o.states.get(self.current_step + 1..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_flags() {
        let mut e = Events::NONE;
        assert!(e.is_empty() && !e.contains(Events::COLLISION));
        e.insert(Events::COLLISION);
        e.insert(Events::GOAL_REACHED);
        assert!(e.contains(Events::COLLISION) && e.contains(Events::GOAL_REACHED));
        assert!(!e.contains(Events::OFFROAD) && !e.contains(Events::NONE));
    }
}
