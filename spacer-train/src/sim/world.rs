//! One world: a scene being simulated, its controlled agents and what they did.
//!
//! The per-object state is kept as parallel arrays (pose, velocity, box, presence) so
//! that a step touches memory in order; the per-step object grid and every scratch
//! buffer live in the world and are reused, so stepping does not allocate.

use std::sync::Arc;

use spacer_core::agent::{AgentKind, AgentState};
use spacer_core::geometry::{OrientedBox, Pose, Vec2};
use spacer_core::kinematics::apply_token;
use spacer_core::math::Rng;
use spacer_core::observation::{EgoView, ObservationConfig, PartnerView, build};

use super::agents::Action;
use super::config::{CollisionBehaviour, ControlSelection, GoalBehaviour, SimConfig};
use super::grid::ObjectGrid;
use super::rollout::{AgentRecord, Events, NO_TOKEN, Rollout, SimulatedObject};
use super::scene_index::SceneIndex;
use super::{SimError, derive_seed};
use crate::scenario::ObjectState;

/// `slot_of` value of objects that replay their log.
const REPLAYED: u32 = u32::MAX;

/// What a controlled agent does over the two steps after a decision.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    Hold,
    States([AgentState; 2]),
    Log,
}

/// Whether the collision behaviour has taken an agent out of play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Halt {
    Active,
    Stopped,
    Removed,
}

/// A controlled agent's bookkeeping.
#[derive(Clone, Debug)]
struct Agent {
    track: usize,
    kind: AgentKind,
    goal: Vec2,
    goal_visible: bool,
    /// The logged state at the current step: z, height and box for the simulation.
    start: ObjectState,
    plan: Plan,
    halt: Halt,
    /// Has collided or touched a road edge so far (the ego's `collided` feature).
    collided: bool,
    first_collision: Option<usize>,
    first_offroad: Option<usize>,
    first_goal: Option<usize>,
    halted_at: Option<usize>,
}

/// A scene being simulated.
#[derive(Clone, Debug)]
pub struct World {
    index: Arc<SceneIndex>,
    id: usize,
    seed: u64,
    step: usize,
    decision: usize,
    box_scale: f32,
    goal_radius: f32,
    behaviour: CollisionBehaviour,
    goal_behaviour: GoalBehaviour,
    pose: Vec<Pose>,
    velocity: Vec<Vec2>,
    /// True box length and width at the current step.
    size: Vec<(f32, f32)>,
    position: Vec<Vec2>,
    /// Valid at the current step and not removed.
    present: Vec<bool>,
    /// Largest half diagonal (scaled) of a present object at the current step.
    max_reach: f32,
    slot_of: Vec<u32>,
    agents: Vec<Agent>,
    /// `[object][step]`.
    trajectory: Vec<ObjectState>,
    /// `[agent][decision]`.
    tokens: Vec<u16>,
    /// `[agent][step]`.
    events: Vec<Events>,
    grid: ObjectGrid,
    partners: Vec<PartnerView>,
}

impl World {
    /// A world over `index`, controlling the agents `config` selects. Call
    /// [`World::reset`] before stepping.
    pub fn new(index: Arc<SceneIndex>, id: usize, config: &SimConfig) -> Self {
        let n = index.num_objects();
        let controlled = select_controlled(&index, config);
        let mut slot_of = vec![REPLAYED; n];
        let cur = index.current_step();
        let agents: Vec<Agent> = controlled
            .iter()
            .enumerate()
            .map(|(slot, &track)| {
                slot_of[track] = slot as u32;
                let start = index.log(track, cur).copied().unwrap_or_default();
                Agent {
                    track,
                    kind: index.kind(track).unwrap_or(AgentKind::Vehicle),
                    goal: index.goal(track).unwrap_or(Vec2::new(start.x, start.y)),
                    goal_visible: true,
                    start,
                    plan: Plan::Hold,
                    halt: Halt::Active,
                    collided: false,
                    first_collision: None,
                    first_offroad: None,
                    first_goal: None,
                    halted_at: None,
                }
            })
            .collect();
        let steps = index.total_steps();
        let decisions = config.decisions();
        Self {
            id,
            seed: 0,
            step: cur,
            decision: 0,
            box_scale: config.box_scale,
            goal_radius: config.goal_radius,
            behaviour: config.collision_behaviour,
            goal_behaviour: config.goal_behaviour,
            pose: vec![Pose::IDENTITY; n],
            velocity: vec![Vec2::ZERO; n],
            size: vec![(0.0, 0.0); n],
            position: vec![Vec2::ZERO; n],
            present: vec![false; n],
            max_reach: 0.0,
            slot_of,
            tokens: vec![NO_TOKEN; agents.len() * decisions],
            events: vec![Events::NONE; agents.len() * steps],
            agents,
            trajectory: vec![ObjectState::default(); n * steps],
            grid: ObjectGrid::new(*index.object_shape()),
            partners: Vec::with_capacity(n),
            index,
        }
    }

    /// Starts an episode: replays the history from the log, draws the goal dropout
    /// from `seed` and records the events of the current step.
    pub fn reset(&mut self, seed: u64, goal_dropout: f32) {
        self.seed = seed;
        self.decision = 0;
        let cur = self.index.current_step();
        let steps = self.index.total_steps();
        let n = self.index.num_objects();
        for i in 0..n {
            for t in 0..steps {
                let s = if t <= cur {
                    self.index.log(i, t).copied().unwrap_or_default()
                } else {
                    ObjectState::default()
                };
                self.trajectory[i * steps + t] = s;
            }
        }
        self.tokens.fill(NO_TOKEN);
        self.events.fill(Events::NONE);
        for (slot, a) in self.agents.iter_mut().enumerate() {
            a.plan = Plan::Hold;
            a.halt = Halt::Active;
            a.collided = false;
            a.first_collision = None;
            a.first_offroad = None;
            a.first_goal = None;
            a.halted_at = None;
            let mut rng = Rng::new(derive_seed(seed, &[slot as u64, 0x90a1]));
            a.goal_visible = !(goal_dropout > 0.0 && rng.next_f32() < goal_dropout);
        }
        self.step = cur;
        for i in 0..n {
            self.load_log(i, cur);
        }
        self.refresh_grid();
        self.detect_events(cur);
    }

    /// Copies the log of object `i` at `step` into the current state.
    #[inline]
    fn load_log(&mut self, i: usize, step: usize) {
        match self.index.log(i, step) {
            Some(s) if s.valid => {
                self.pose[i] = Pose::new(s.x, s.y, s.heading);
                self.velocity[i] = Vec2::new(s.vx, s.vy);
                self.size[i] = (s.length, s.width);
                self.present[i] = true;
            }
            _ => self.present[i] = false,
        }
    }

    fn refresh_grid(&mut self) {
        let k = 0.5 * self.box_scale;
        let mut reach = 0.0f32;
        for i in 0..self.pose.len() {
            self.position[i] = self.pose[i].position();
            if self.present[i] {
                let (l, w) = self.size[i];
                reach = reach.max(k * (l * l + w * w).sqrt());
            }
        }
        self.max_reach = if reach.is_finite() { reach } else { 0.0 };
        self.grid.rebuild(&self.position, &self.present);
    }

    /// Applies one decision's actions (one per controlled agent, in slot order) and
    /// advances two steps.
    pub(crate) fn advance(&mut self, actions: &[Action]) {
        let decision = self.decision;
        let decisions = self.tokens.len() / self.agents.len().max(1);
        for (slot, (a, action)) in self.agents.iter_mut().zip(actions).enumerate() {
            let track = a.track;
            let now = AgentState::new(self.pose[track], self.velocity[track]);
            let mut token = NO_TOKEN;
            a.plan = if a.halt != Halt::Active {
                Plan::Hold
            } else {
                match *action {
                    Action::Hold => Plan::Hold,
                    Action::Log => Plan::Log,
                    Action::States(s) if s.iter().all(AgentState::is_finite) => Plan::States(s),
                    Action::States(_) => Plan::Hold,
                    Action::Token { index, token: t } if t.is_finite() && now.is_finite() => {
                        token = index;
                        Plan::States(apply_token(&now, &t))
                    }
                    Action::Token { .. } => Plan::Hold,
                }
            };
            if decision < decisions {
                self.tokens[slot * decisions + decision] = token;
            }
        }
        self.decision += 1;
        for half in 0..2 {
            self.substep(half);
        }
    }

    fn substep(&mut self, half: usize) {
        let t = self.step + 1;
        if t >= self.index.total_steps() {
            return;
        }
        for i in 0..self.pose.len() {
            if self.slot_of[i] == REPLAYED {
                self.load_log(i, t);
            }
        }
        for slot in 0..self.agents.len() {
            let (track, halt, plan) = {
                let a = &self.agents[slot];
                (a.track, a.halt, a.plan)
            };
            if !self.present[track] && plan != Plan::Log {
                continue; // only a log can bring an agent back
            }
            match (halt, plan) {
                (Halt::Removed, _) => self.present[track] = false,
                (Halt::Stopped, _) | (Halt::Active, Plan::Hold) => {
                    self.velocity[track] = Vec2::ZERO;
                }
                (Halt::Active, Plan::States(s)) => {
                    self.pose[track] = s[half].pose;
                    self.velocity[track] = s[half].velocity;
                }
                (Halt::Active, Plan::Log) => {
                    let keep = (self.pose[track], self.velocity[track], self.size[track]);
                    self.load_log(track, t);
                    if !self.present[track] {
                        (self.pose[track], self.velocity[track], self.size[track]) = keep;
                    }
                }
            }
        }
        self.step = t;
        self.refresh_grid();
        self.detect_events(t);
        self.record(t);
    }

    /// Collision, road-edge and goal events of every controlled agent at `t`, then
    /// the collision behaviour.
    fn detect_events(&mut self, t: usize) {
        let steps = self.index.total_steps();
        let k = self.box_scale;
        for slot in 0..self.agents.len() {
            let a = &self.agents[slot];
            let i = a.track;
            if !self.present[i] || a.halt == Halt::Removed {
                continue;
            }
            let (l, w) = self.size[i];
            let me = OrientedBox::new(self.pose[i], l * k, w * k);
            let reach = 0.5 * k * (l * l + w * w).sqrt();
            let center = me.center;
            let mut ev = Events::NONE;
            let mut hit = false;
            let (pose, size, present, position) =
                (&self.pose, &self.size, &self.present, &self.position);
            self.grid
                .for_each_near(center, reach + self.max_reach, |j| {
                    if hit || j == i || !present[j] {
                        return;
                    }
                    let (lj, wj) = size[j];
                    let reach_j = 0.5 * k * (lj * lj + wj * wj).sqrt();
                    let d = position[j] - center;
                    let r = reach + reach_j;
                    if d.norm_sq() > r * r {
                        return;
                    }
                    hit = me.overlaps(&OrientedBox::new(pose[j], lj * k, wj * k));
                });
            if hit {
                ev.insert(Events::COLLISION);
            }
            // GPUDrive's pairs: only vehicles against road edges.
            if a.kind == AgentKind::Vehicle && self.index.edges().touches(&me) {
                ev.insert(Events::OFFROAD);
            }
            if (center - a.goal).norm() <= self.goal_radius {
                ev.insert(Events::GOAL_REACHED);
            }
            self.events[slot * steps + t] = ev;
            let a = &mut self.agents[slot];
            if ev.contains(Events::COLLISION) {
                a.first_collision.get_or_insert(t);
            }
            if ev.contains(Events::OFFROAD) {
                a.first_offroad.get_or_insert(t);
            }
            if ev.contains(Events::GOAL_REACHED) {
                a.first_goal.get_or_insert(t);
            }
            let bad = ev.contains(Events::COLLISION) || ev.contains(Events::OFFROAD);
            if bad {
                a.collided = true;
                if a.halt == Halt::Active && self.behaviour != CollisionBehaviour::Ignore {
                    a.halt = match self.behaviour {
                        CollisionBehaviour::Stop => Halt::Stopped,
                        _ => Halt::Removed,
                    };
                    a.halted_at = Some(t);
                }
            }
            if ev.contains(Events::GOAL_REACHED)
                && a.halt == Halt::Active
                && self.goal_behaviour != GoalBehaviour::Continue
            {
                a.halt = match self.goal_behaviour {
                    GoalBehaviour::Stop => Halt::Stopped,
                    _ => Halt::Removed,
                };
                a.halted_at = Some(t);
            }
        }
    }

    /// Writes every object's state at `t` into the trajectory.
    fn record(&mut self, t: usize) {
        let steps = self.index.total_steps();
        for i in 0..self.pose.len() {
            let s = match self.slot_of[i] {
                REPLAYED => self.index.log(i, t).copied().unwrap_or_default(),
                slot => {
                    let a = &self.agents[slot as usize];
                    if a.halt == Halt::Active && a.plan == Plan::Log {
                        // Replaying its log: exactly the log, sizes and validity included.
                        self.trajectory[i * steps + t] =
                            self.index.log(i, t).copied().unwrap_or_default();
                        continue;
                    }
                    let start = a.start;
                    let (p, v) = (self.pose[i], self.velocity[i]);
                    ObjectState {
                        x: p.x,
                        y: p.y,
                        heading: p.yaw,
                        vx: v.x,
                        vy: v.y,
                        length: self.size[i].0,
                        width: self.size[i].1,
                        valid: self.present[i],
                        ..start
                    }
                }
            };
            self.trajectory[i * steps + t] = s;
        }
    }

    /// Builds the observation of agent `slot` at the current step into `out`
    /// (length `config.len()`); zeros for an agent that is not in the scene.
    ///
    /// # Errors
    /// [`SimError::Observation`] when the builder refuses (wrong length, bad config).
    pub fn observe(
        &self,
        slot: usize,
        config: &ObservationConfig,
        partners: &mut Vec<PartnerView>,
        out: &mut [f32],
    ) -> Result<(), SimError> {
        let Some(a) = self.agents.get(slot) else {
            out.fill(0.0);
            return Ok(());
        };
        let i = a.track;
        if !self.present[i] || a.halt == Halt::Removed {
            out.fill(0.0);
            return Ok(());
        }
        let k = self.box_scale;
        let (l, w) = self.size[i];
        let ego = EgoView {
            pose: self.pose[i],
            speed: self.velocity[i].norm(),
            length: l * k,
            width: w * k,
            goal: a.goal,
            collided: a.collided,
            goal_visible: a.goal_visible,
        };
        partners.clear();
        let center = self.position[i];
        self.grid.for_each_near(center, config.radius, |j| {
            if j != i && self.present[j] {
                let (lj, wj) = self.size[j];
                partners.push(PartnerView {
                    pose: self.pose[j],
                    speed: self.velocity[j].norm(),
                    length: lj * k,
                    width: wj * k,
                });
            }
        });
        let roads = self.index.roads().candidates(center);
        build(config, &ego, partners, roads, out).map_err(SimError::Observation)?;
        Ok(())
    }

    /// Builds every agent's observation into `rows` (`num_agents() * config.len()`).
    ///
    /// # Errors
    /// As [`World::observe`].
    pub fn observe_all(
        &mut self,
        config: &ObservationConfig,
        rows: &mut [f32],
    ) -> Result<(), SimError> {
        let mut partners = std::mem::take(&mut self.partners);
        let mut result = Ok(());
        for (slot, row) in rows.chunks_exact_mut(config.len()).enumerate() {
            result = self.observe(slot, config, &mut partners, row);
            if result.is_err() {
                break;
            }
        }
        self.partners = partners;
        result
    }

    /// The scene.
    pub fn scene(&self) -> &crate::scenario::Scene {
        self.index.scene()
    }

    /// The prepared scene.
    pub fn index(&self) -> &SceneIndex {
        &self.index
    }

    /// The shared prepared scene.
    pub fn index_arc(&self) -> &Arc<SceneIndex> {
        &self.index
    }

    /// The world's index in its simulator.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The seed of the current episode.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current step (the last one simulated).
    pub fn step(&self) -> usize {
        self.step
    }

    /// Decisions taken so far this episode.
    pub fn decision(&self) -> usize {
        self.decision
    }

    /// True once the last step has been simulated.
    pub fn is_done(&self) -> bool {
        self.step + 1 >= self.index.total_steps()
    }

    /// Number of controlled agents.
    pub fn num_agents(&self) -> usize {
        self.agents.len()
    }

    /// Track index of agent `slot`.
    pub fn agent_track(&self, slot: usize) -> usize {
        self.agents[slot].track
    }

    /// Token vocabulary kind of agent `slot`.
    pub fn agent_kind(&self, slot: usize) -> AgentKind {
        self.agents[slot].kind
    }

    /// Goal of agent `slot`.
    pub fn agent_goal(&self, slot: usize) -> Vec2 {
        self.agents[slot].goal
    }

    /// Current pose and velocity of agent `slot`.
    pub fn agent_state(&self, slot: usize) -> AgentState {
        let i = self.agents[slot].track;
        AgentState::new(self.pose[i], self.velocity[i])
    }

    /// True when agent `slot` is in the scene and its actions are executed (it has
    /// not been stopped or removed by the collision behaviour).
    pub fn is_acting(&self, slot: usize) -> bool {
        let a = &self.agents[slot];
        a.halt == Halt::Active && self.present[a.track]
    }

    /// The step at which agent `slot` was stopped or removed (by a collision, a
    /// road-edge contact or its goal), if it was.
    pub fn halted_at(&self, slot: usize) -> Option<usize> {
        self.agents[slot].halted_at
    }

    /// The first step at which agent `slot` was within its goal radius, if any.
    pub fn first_goal(&self, slot: usize) -> Option<usize> {
        self.agents[slot].first_goal
    }

    /// Whether agent `slot`'s goal is shown in its observations this episode.
    pub fn goal_visible(&self, slot: usize) -> bool {
        self.agents[slot].goal_visible
    }

    /// Slot of track `i`, if it is controlled.
    pub fn slot_of(&self, i: usize) -> Option<usize> {
        match self.slot_of.get(i) {
            Some(&s) if s != REPLAYED => Some(s as usize),
            _ => None,
        }
    }

    /// Current pose and velocity of object `i`, if it is in the scene.
    pub fn object_state(&self, i: usize) -> Option<AgentState> {
        (*self.present.get(i)?).then(|| AgentState::new(self.pose[i], self.velocity[i]))
    }

    /// Trajectory of object `i` up to and including the current step.
    pub fn trajectory(&self, i: usize) -> &[ObjectState] {
        let steps = self.index.total_steps();
        self.trajectory
            .get(i * steps..i * steps + self.step + 1)
            .unwrap_or(&[])
    }

    /// Tokens agent `slot` executed at the decisions so far ([`NO_TOKEN`] where none).
    pub fn tokens(&self, slot: usize) -> &[u16] {
        let d = self.tokens.len() / self.agents.len().max(1);
        self.tokens
            .get(slot * d..slot * d + self.decision.min(d))
            .unwrap_or(&[])
    }

    /// Events of agent `slot` up to and including the current step.
    pub fn events(&self, slot: usize) -> &[Events] {
        let steps = self.index.total_steps();
        self.events
            .get(slot * steps..slot * steps + self.step + 1)
            .unwrap_or(&[])
    }

    /// The world's run so far, as plain data.
    pub fn rollout(&self) -> Rollout {
        let steps = self.index.total_steps();
        let decisions = self.tokens.len() / self.agents.len().max(1);
        let scene = self.index.scene();
        Rollout {
            scene_id: scene.id.clone(),
            world: self.id,
            seed: self.seed,
            current_step: self.index.current_step(),
            steps,
            objects: scene
                .tracks
                .iter()
                .enumerate()
                .map(|(i, t)| SimulatedObject {
                    id: t.id,
                    object_type: t.object_type,
                    agent: self.slot_of(i),
                    states: self.trajectory[i * steps..(i + 1) * steps].to_vec(),
                })
                .collect(),
            agents: self
                .agents
                .iter()
                .enumerate()
                .map(|(slot, a)| AgentRecord {
                    track: a.track,
                    kind: a.kind,
                    goal: a.goal,
                    goal_visible: a.goal_visible,
                    tokens: self.tokens[slot * decisions..(slot + 1) * decisions].to_vec(),
                    events: self.events[slot * steps..(slot + 1) * steps].to_vec(),
                    first_collision: a.first_collision,
                    first_offroad: a.first_offroad,
                    first_goal: a.first_goal,
                    halted_at: a.halted_at,
                })
                .collect(),
        }
    }
}

/// The controlled tracks, in track order: candidates are vehicles, pedestrians and
/// cyclists valid at the current step (only the self-driving car and the tracks to
/// predict under [`ControlSelection::TracksToPredict`]); when there are more than
/// `max_controlled`, the self-driving car and the tracks to predict are kept first,
/// then the candidates nearest to the self-driving car.
fn select_controlled(index: &SceneIndex, config: &SimConfig) -> Vec<usize> {
    let scene = index.scene();
    let cur = index.current_step();
    let mut priority: Vec<usize> = scene.sdc_index.into_iter().collect();
    priority.extend(scene.tracks_to_predict.iter().map(|t| t.track_index));
    let candidate =
        |i: usize| index.kind(i).is_some() && index.log(i, cur).is_some_and(|s| s.valid);
    let mut chosen: Vec<usize> = Vec::new();
    for &i in &priority {
        if candidate(i) && !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    if config.control == ControlSelection::AllValid {
        let anchor = chosen
            .first()
            .copied()
            .or_else(|| (0..index.num_objects()).find(|&i| candidate(i)))
            .and_then(|i| index.log(i, cur))
            .map(|s| Vec2::new(s.x, s.y))
            .unwrap_or(Vec2::ZERO);
        let mut rest: Vec<(f32, usize)> = (0..index.num_objects())
            .filter(|&i| candidate(i) && !chosen.contains(&i))
            .map(|i| {
                let s = index.log(i, cur).copied().unwrap_or_default();
                ((Vec2::new(s.x, s.y) - anchor).norm_sq(), i)
            })
            .collect();
        rest.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        chosen.extend(rest.into_iter().map(|(_, i)| i));
    }
    chosen.truncate(config.max_controlled);
    chosen.sort_unstable();
    chosen
}
