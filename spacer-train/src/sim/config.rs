//! How a simulation is set up: which agents are controlled, what happens on a
//! collision, box sizes, observations, goal dropout and the spatial index.

use serde::{Deserialize, Serialize};
use spacer_core::observation::ObservationConfig;

use super::SimError;

/// Which objects the sim agent controls. Only vehicles, pedestrians and cyclists valid
/// at the scene's current step are candidates; every other object replays its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlSelection {
    /// Every candidate (up to [`SimConfig::max_controlled`]).
    #[default]
    AllValid,
    /// Only the self-driving car and the scene's `tracks_to_predict` (the objects the
    /// Waymo Sim Agents Challenge scores).
    TracksToPredict,
}

/// What happens to a controlled agent that collides with an object or touches a road
/// edge (GPUDrive's `CollisionBehaviour`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollisionBehaviour {
    /// The event is recorded and the agent carries on.
    #[default]
    Ignore,
    /// The agent freezes where it collided (velocity zero) for the rest of the
    /// episode; it stays an obstacle and stays visible to the others.
    Stop,
    /// The agent is taken out of the scene from the next step on: invalid in the
    /// trajectory, neither an obstacle nor observed, its observation row zero.
    Remove,
}

/// What happens to a controlled agent that reaches its goal (GPUDrive's
/// `goal_behaviour`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoalBehaviour {
    /// The event is recorded and the agent carries on (evaluation).
    #[default]
    Continue,
    /// The agent freezes where it is for the rest of the episode.
    Stop,
    /// The agent is taken out of the scene from the next step on (its episode is
    /// over).
    Remove,
}

/// The simulator's settings. [`SimConfig::default`] is GPUDrive's / SPACeR's setup:
/// 64 controlled agents, 80 simulated steps, collisions ignored, agents carry on
/// after their goal, true box sizes, goals within 2 m, no goal dropout, GPUDrive's
/// observation layout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Largest number of controlled agents per world. Candidates beyond it replay
    /// their logs; the self-driving car and the tracks to predict are taken first,
    /// then the others by distance to the self-driving car (or to the first candidate
    /// when there is none) at the current step.
    pub max_controlled: usize,
    /// Which candidates are controlled.
    pub control: ControlSelection,
    /// Steps simulated after the current step (80 = 8 s at 10 Hz). Must be even: the
    /// agents act every second step.
    pub sim_steps: usize,
    /// Response to a collision or a road-edge contact.
    pub collision_behaviour: CollisionBehaviour,
    /// Response to reaching the goal.
    #[serde(default)]
    pub goal_behaviour: GoalBehaviour,
    /// Scale of the boxes used for collisions, road-edge contacts and observed sizes
    /// (GPUDrive shrinks them to 0.7; 1.0 keeps the true sizes, which the metrics
    /// always use). The output trajectories always hold the true sizes.
    pub box_scale: f32,
    /// A controlled agent has reached its goal (its last valid logged position) when
    /// its centre is within this distance (metres; GPUDrive: 2 m).
    pub goal_radius: f32,
    /// Probability that an agent's goal features are hidden for a whole episode
    /// (drawn per agent from the run's seed). The goal event is recorded regardless.
    pub goal_dropout: f32,
    /// The observation layout built when observations are built.
    pub observation: ObservationConfig,
    /// Build observations even when the sim agent needs none (to measure them, or
    /// for a trainer that reads them itself).
    pub always_observe: bool,
    /// Cell size (metres) of the per-scene road-segment grid.
    pub road_cell: f32,
    /// Cell size (metres) of the per-step object grid (partners and collision
    /// broad phase).
    pub object_cell: f32,
    /// Cell size (metres) of the per-scene road-edge grid (off-road test); small,
    /// since raw road edges hold a point every metre or so.
    pub edge_cell: f32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            max_controlled: 64,
            control: ControlSelection::AllValid,
            sim_steps: 80,
            collision_behaviour: CollisionBehaviour::Ignore,
            goal_behaviour: GoalBehaviour::Continue,
            box_scale: 1.0,
            goal_radius: 2.0,
            goal_dropout: 0.0,
            observation: ObservationConfig::default(),
            always_observe: false,
            road_cell: 10.0,
            object_cell: 12.5,
            edge_cell: 5.0,
        }
    }
}

impl SimConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`SimError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |what: &str| Err(SimError::Config(what.to_string()));
        if !self.sim_steps.is_multiple_of(2) {
            return bad("sim_steps must be even (agents act every second step)");
        }
        if !(self.box_scale > 0.0 && self.box_scale.is_finite()) {
            return bad("box_scale must be positive and finite");
        }
        if !(self.goal_radius >= 0.0 && self.goal_radius.is_finite()) {
            return bad("goal_radius must be non-negative and finite");
        }
        if !(0.0..=1.0).contains(&self.goal_dropout) {
            return bad("goal_dropout must be a probability in [0, 1]");
        }
        if self.observation.validate().is_err() {
            return bad("observation: slot counts above the maxima or a bad radius");
        }
        for (name, cell) in [
            ("road_cell", self.road_cell),
            ("object_cell", self.object_cell),
            ("edge_cell", self.edge_cell),
        ] {
            if !(cell >= 0.5 && cell.is_finite()) {
                return Err(SimError::Config(format!(
                    "{name} must be at least 0.5 m and finite"
                )));
            }
        }
        Ok(())
    }

    /// Simulator steps in a run: the history (`current_step + 1` steps) plus
    /// [`SimConfig::sim_steps`].
    pub fn total_steps(&self, current_step: usize) -> usize {
        current_step + 1 + self.sim_steps
    }

    /// Decisions per run (one per two simulated steps).
    pub fn decisions(&self) -> usize {
        self.sim_steps / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_gpudrive_and_bad_values_are_named() {
        let c = SimConfig::default();
        c.validate().unwrap();
        assert_eq!(c.total_steps(10), 91);
        assert_eq!(c.decisions(), 40);
        let e = SimConfig { sim_steps: 7, ..c }.validate().unwrap_err();
        assert!(e.to_string().contains("sim_steps"), "{e}");
        let e = SimConfig {
            goal_dropout: 1.5,
            ..c
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("goal_dropout"), "{e}");
        let e = SimConfig {
            road_cell: 0.0,
            ..c
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("road_cell"), "{e}");
        let e = SimConfig {
            box_scale: f32::NAN,
            ..c
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("box_scale"), "{e}");
    }
}
