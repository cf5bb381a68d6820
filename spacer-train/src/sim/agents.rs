//! Sim agents: what drives the controlled agents.
//!
//! A [`SimAgent`] is asked once per decision (every second step, 5 Hz) for one
//! [`Action`] per controlled agent of *every* world at once. It sees a
//! [`DecisionBatch`]: the worlds themselves (scene, every object's state and trajectory
//! so far, each agent's executed tokens and events), the row index, and, when it asked
//! for them, the observations of all agents in one contiguous buffer. So both kinds of
//! model fit:
//!
//! - decentralized models read their rows of the observation buffer (the policy runs
//!   [`spacer_core::policy::Policy::forward_batch`] over the whole buffer);
//! - a centralized model (the reference model: the whole scene, every agent's token
//!   history, tokens for all agents of a world at once) runs
//!   [`DecisionBatch::par_for_each_world`], which hands it each world with the
//!   actions of that world's agents; it reads [`World::scene`],
//!   [`World::trajectory`] (every object, log-replayed ones included) and
//!   [`World::tokens`].
//!
//! Randomness is derived from the agent's seed, the world's episode seed, the agent's
//! slot and the decision ([`super::derive_seed`]), never from thread timing, so results
//! do not depend on how rayon schedules the work.
//!
//! The agents here: [`LogReplay`], [`ConstantVelocity`], [`LoggedTokens`] (each log
//! tokenized with [`Vocabulary::encode`] and replayed: shows the vocabulary's error),
//! [`RandomTokens`] and [`PolicyAgent`] (a weights blob). Command lines name them
//! through the one registry, [`crate::eval::registry`].

use rayon::prelude::*;
use spacer_core::agent::AgentState;
use spacer_core::geometry::{Pose, Vec2};
use spacer_core::kinematics::{DT, STEPS_PER_TOKEN};
use spacer_core::math::{Rng, wrap_angle};
use spacer_core::observation::ObservationConfig;
use spacer_core::policy::{Selection, select};
use spacer_core::tokenizer::{Token, Vocabulary};

use super::batch::{ObservationBatch, RowIndex};
use super::scene_index::SceneIndex;
use super::world::World;
use super::{SimError, derive_seed};
use crate::policy_file::PolicyFile;

/// What one controlled agent does over the two steps after a decision.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Action {
    /// Stand still (velocity zero). What an agent gets when nothing is written.
    #[default]
    Hold,
    /// Apply a motion token ([`spacer_core::kinematics::apply_token`]): `index` is
    /// its index in the vocabulary it came from (recorded in the rollout), `token`
    /// its motion.
    Token {
        /// Index in the agent kind's vocabulary.
        index: u16,
        /// The motion.
        token: Token,
    },
    /// Be in these states at the next two steps (planners, constant velocity,
    /// bicycle models). Non-finite states are refused (the agent holds).
    States([AgentState; STEPS_PER_TOKEN]),
    /// Replay the log for the next two steps, valid flags included.
    Log,
}

/// Everything a sim agent may read when it decides.
#[derive(Clone, Copy, Debug)]
pub struct DecisionBatch<'a> {
    /// Decision number (0 at the current step, then every second step).
    pub decision: usize,
    /// Every world, at the decision's step.
    pub worlds: &'a [World],
    /// Which row (action, observation) belongs to which world and agent.
    pub rows: &'a RowIndex,
    /// All agents' observations, when the agent asked for them.
    pub observations: Option<&'a ObservationBatch>,
}

impl DecisionBatch<'_> {
    /// The observations.
    ///
    /// # Errors
    /// [`SimError::Agent`] when none were built (the agent did not ask for them).
    pub fn require_observations(&self) -> Result<&ObservationBatch, SimError> {
        self.observations.ok_or_else(|| SimError::Agent {
            agent: "sim agent".into(),
            message: "needs observations but returned no layout from observation()".into(),
        })
    }

    /// The world and agent slot of `row`.
    pub fn locate(&self, row: usize) -> (&World, usize) {
        let (w, slot) = self.rows.locate(row);
        (&self.worlds[w], slot)
    }

    /// Calls `decide` once per world, in parallel, with the world and the actions of
    /// its agents (slot order): the shape of a centralized model, which sees a whole
    /// scene and answers for all its agents at once.
    ///
    /// # Errors
    /// The first error `decide` returns.
    pub fn par_for_each_world<F>(&self, actions: &mut [Action], decide: F) -> Result<(), SimError>
    where
        F: Fn(&World, &mut [Action]) -> Result<(), SimError> + Sync,
    {
        let mut rest = actions;
        let mut parts = Vec::with_capacity(self.worlds.len());
        for (w, world) in self.worlds.iter().enumerate() {
            let (mine, tail) =
                std::mem::take(&mut rest).split_at_mut(self.rows.world_rows(w).len());
            parts.push((world, mine));
            rest = tail;
        }
        parts
            .into_par_iter()
            .try_for_each(|(world, mine)| decide(world, mine))
    }
}

/// A model that drives the controlled agents of a batch of worlds.
pub trait SimAgent: Send {
    /// Short name for reports.
    fn name(&self) -> String;

    /// The observation layout it reads, or `None` when it needs no observations.
    fn observation(&self) -> Option<ObservationConfig> {
        None
    }

    /// Called after the worlds are reset, before the first decision.
    ///
    /// # Errors
    /// Whatever the agent cannot set up.
    fn reset(&mut self, worlds: &[World], rows: &RowIndex) -> Result<(), SimError> {
        let _ = (worlds, rows);
        Ok(())
    }

    /// Writes one action per row into `actions` (prefilled with [`Action::Hold`];
    /// actions of agents that were stopped or removed are ignored).
    ///
    /// # Errors
    /// Whatever the agent cannot compute.
    fn act(&mut self, batch: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError>;
}

/// Every controlled agent replays its log (the logged oracle).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogReplay;

impl SimAgent for LogReplay {
    fn name(&self) -> String {
        "log-replay".into()
    }

    fn act(&mut self, _: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError> {
        actions.fill(Action::Log);
        Ok(())
    }
}

/// Every controlled agent keeps the velocity and heading it had at the current step
/// (the last logged step), moving in a straight line.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConstantVelocity;

impl SimAgent for ConstantVelocity {
    fn name(&self) -> String {
        "constant-velocity".into()
    }

    fn act(&mut self, batch: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError> {
        for (row, action) in actions.iter_mut().enumerate() {
            let (world, slot) = batch.locate(row);
            // The simulator carries the velocity of `States`, so the current state
            // still holds the logged velocity of the current step.
            let s = world.agent_state(slot);
            let step = |k: f32| {
                let p = s.pose.position() + s.velocity * (k * DT);
                AgentState::new(Pose::new(p.x, p.y, s.pose.yaw), s.velocity)
            };
            *action = Action::States([step(1.0), step(2.0)]);
        }
        Ok(())
    }
}

/// Logged poses of track `i` at steps `from..=from + count`, made contiguous: gaps are
/// filled by linear interpolation between the valid neighbours (heading along the
/// shorter arc), and the last valid pose is held after the log ends.
pub fn logged_poses(index: &SceneIndex, i: usize, from: usize, count: usize) -> Vec<Pose> {
    let valid = |t: usize| {
        index
            .log(i, t)
            .filter(|s| s.valid)
            .map(|s| Pose::new(s.x, s.y, s.heading))
    };
    let mut out = Vec::with_capacity(count + 1);
    let mut last = valid(from).unwrap_or_default();
    let mut t = from;
    while t <= from + count {
        if let Some(p) = valid(t) {
            out.push(p);
            last = p;
            t += 1;
            continue;
        }
        // A gap: find its end.
        let next = (t + 1..=from + count).find_map(|u| valid(u).map(|p| (u, p)));
        match next {
            Some((u, p)) => {
                let span = (u - t + 1) as f32;
                let dyaw = wrap_angle(p.yaw - last.yaw);
                for k in 1..=(u - t) {
                    let f = k as f32 / span;
                    let q = last.position() + (p.position() - last.position()) * f;
                    out.push(Pose::new(q.x, q.y, wrap_angle(last.yaw + dyaw * f)));
                }
                t = u;
            }
            None => {
                out.extend(std::iter::repeat_n(last, from + count + 1 - t));
                t = from + count + 1;
            }
        }
    }
    out
}

/// Every controlled agent replays its own log tokenized with
/// [`Vocabulary::encode`] (closed loop: each token starts where the previous one
/// ended). The distance to the log is the vocabulary's reconstruction error.
#[derive(Clone, Debug)]
pub struct LoggedTokens {
    vocabulary: Box<Vocabulary>,
    /// `[row][decision]`, filled at reset.
    tokens: Vec<u16>,
    decisions: usize,
}

impl LoggedTokens {
    /// Over `vocabulary`.
    pub fn new(vocabulary: Vocabulary) -> Self {
        Self {
            vocabulary: Box::new(vocabulary),
            tokens: Vec::new(),
            decisions: 0,
        }
    }

    /// The tokens of `row` (after [`SimAgent::reset`]).
    pub fn row_tokens(&self, row: usize) -> &[u16] {
        self.tokens
            .get(row * self.decisions..(row + 1) * self.decisions)
            .unwrap_or(&[])
    }
}

impl SimAgent for LoggedTokens {
    fn name(&self) -> String {
        "logged-tokens".into()
    }

    fn reset(&mut self, worlds: &[World], rows: &RowIndex) -> Result<(), SimError> {
        let decisions = worlds
            .iter()
            .map(|w| (w.index().total_steps() - 1 - w.index().current_step()) / STEPS_PER_TOKEN)
            .max()
            .unwrap_or(0);
        self.decisions = decisions;
        self.tokens = vec![0; rows.len() * decisions];
        let vocab = &*self.vocabulary;
        self.tokens
            .par_chunks_mut(decisions.max(1))
            .enumerate()
            .try_for_each(|(row, out)| {
                let (w, slot) = rows.locate(row);
                let world = &worlds[w];
                let cur = world.index().current_step();
                let poses = logged_poses(
                    world.index(),
                    world.agent_track(slot),
                    cur,
                    decisions * STEPS_PER_TOKEN,
                );
                vocab
                    .encode(world.agent_kind(slot), &poses, out)
                    .map(|_| ())
                    .map_err(SimError::Tokenizer)
            })
    }

    fn act(&mut self, batch: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError> {
        for (row, action) in actions.iter_mut().enumerate() {
            let (world, slot) = batch.locate(row);
            let index = self.tokens[row * self.decisions + batch.decision.min(self.decisions - 1)];
            let token = self
                .vocabulary
                .get(world.agent_kind(slot), index as usize)
                .copied()
                .unwrap_or(Token::STILL);
            *action = Action::Token { index, token };
        }
        Ok(())
    }
}

/// Every controlled agent picks a uniformly random token at every decision.
#[derive(Clone, Debug)]
pub struct RandomTokens {
    vocabulary: Box<Vocabulary>,
    seed: u64,
}

impl RandomTokens {
    /// Over `vocabulary`, seeded.
    pub fn new(vocabulary: Vocabulary, seed: u64) -> Self {
        Self {
            vocabulary: Box::new(vocabulary),
            seed,
        }
    }
}

impl SimAgent for RandomTokens {
    fn name(&self) -> String {
        "random-tokens".into()
    }

    fn act(&mut self, batch: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError> {
        let k = self.vocabulary.len() as u32;
        for (row, action) in actions.iter_mut().enumerate() {
            let (world, slot) = batch.locate(row);
            let mut rng = Rng::new(derive_seed(
                self.seed,
                &[world.seed(), slot as u64, batch.decision as u64],
            ));
            let index = rng.below(k) as u16;
            let token = self
                .vocabulary
                .get(world.agent_kind(slot), index as usize)
                .copied()
                .unwrap_or(Token::STILL);
            *action = Action::Token { index, token };
        }
        Ok(())
    }
}

/// Agents per rayon task in the batched forward pass.
const FORWARD_CHUNK: usize = 32;

/// The decentralized policy of a weights blob: [`spacer_core::policy::Policy::forward_batch`]
/// over the observation buffer, then argmax or sampling
/// ([`spacer_core::policy::select`]); the token's motion comes from the blob's
/// token table.
#[derive(Clone, Debug)]
pub struct PolicyAgent {
    file: PolicyFile,
    selection: Selection,
    seed: u64,
    name: Option<String>,
    logits: Vec<f32>,
    values: Vec<f32>,
}

impl PolicyAgent {
    /// The policy in `file`, picking tokens by `selection`, seeded.
    pub fn new(file: PolicyFile, selection: Selection, seed: u64) -> Self {
        Self {
            file,
            selection,
            seed,
            name: None,
            logits: Vec::new(),
            values: Vec::new(),
        }
    }

    /// The same agent under another name in reports.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Logits of the last decision, `[rows][actions]`.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Critic values of the last decision, one per row.
    pub fn values(&self) -> &[f32] {
        &self.values
    }
}

impl SimAgent for PolicyAgent {
    fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("policy({})", self.file.origin().display()))
    }

    fn observation(&self) -> Option<ObservationConfig> {
        Some(self.file.model().observation)
    }

    fn act(&mut self, batch: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError> {
        let obs = batch.require_observations()?;
        let model = self.file.model();
        let (d, k) = (model.policy.observation_len(), model.policy.actions());
        if obs.row_len() != d {
            return Err(SimError::Agent {
                agent: self.name(),
                message: format!(
                    "the policy reads {d} floats per observation, the simulator built {}",
                    obs.row_len()
                ),
            });
        }
        let n = actions.len();
        self.logits.resize(n * k, 0.0);
        self.values.resize(n, 0.0);
        let policy = model.policy;
        obs.as_slice()
            .par_chunks(d * FORWARD_CHUNK)
            .zip(self.logits.par_chunks_mut(k * FORWARD_CHUNK))
            .zip(self.values.par_chunks_mut(FORWARD_CHUNK))
            .try_for_each(|((o, l), v)| policy.forward_batch(o, l, v))
            .map_err(SimError::Policy)?;
        let (selection, seed, logits) = (self.selection, self.seed, &self.logits);
        actions
            .par_iter_mut()
            .enumerate()
            .try_for_each(|(row, action)| {
                let (world, slot) = batch.locate(row);
                let mut rng = Rng::new(derive_seed(
                    seed,
                    &[world.seed(), slot as u64, batch.decision as u64],
                ));
                let index = select(&logits[row * k..(row + 1) * k], selection, &mut rng)
                    .map_err(SimError::Policy)?;
                let token = model
                    .tokens
                    .get(world.agent_kind(slot), index as usize)
                    .unwrap_or(Token::STILL);
                *action = Action::Token { index, token };
                Ok(())
            })
    }
}

/// Mean and largest distance (metres) between a rollout's controlled agents and their
/// logs over the simulated steps where both are valid: the error of log-following
/// agents such as [`LoggedTokens`].
pub fn distance_to_log(world: &World) -> (f32, f32) {
    let index = world.index();
    let (mut sum, mut n, mut max) = (0.0f64, 0usize, 0.0f32);
    for slot in 0..world.num_agents() {
        let i = world.agent_track(slot);
        for (t, s) in world
            .trajectory(i)
            .iter()
            .enumerate()
            .skip(index.current_step() + 1)
        {
            if let Some(l) = index.log(i, t).filter(|l| l.valid && s.valid) {
                let d = (Vec2::new(s.x, s.y) - Vec2::new(l.x, l.y)).norm();
                sum += d as f64;
                n += 1;
                max = max.max(d);
            }
        }
    }
    (if n > 0 { (sum / n as f64) as f32 } else { 0.0 }, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A centralized agent: every agent of a world copies the token history length
    /// of the world's first agent into its action (a stand-in for a model that reads
    /// the whole scene).
    struct Centralized;

    impl SimAgent for Centralized {
        fn name(&self) -> String {
            "centralized".into()
        }

        fn act(
            &mut self,
            batch: &DecisionBatch<'_>,
            actions: &mut [Action],
        ) -> Result<(), SimError> {
            batch.par_for_each_world(actions, |world, mine| {
                assert_eq!(mine.len(), world.num_agents());
                let seen = world.tokens(0).len() as u16;
                for a in mine.iter_mut() {
                    *a = Action::Token {
                        index: seen,
                        token: Token::STILL,
                    };
                }
                Ok(())
            })
        }
    }

    #[test]
    fn centralized_agents_answer_per_world() {
        use std::sync::Arc;
        let scenes: Vec<Arc<crate::scenario::Scene>> = [3, 1, 2]
            .iter()
            .map(|&n| Arc::new(crate::sim::testing::straight_road(1, n)))
            .collect();
        let config = crate::sim::SimConfig {
            sim_steps: 6,
            ..Default::default()
        };
        let mut sim = crate::sim::Simulator::new(&scenes, config).unwrap();
        sim.run(&mut Centralized, 0).unwrap();
        for r in sim.rollouts() {
            for a in &r.agents {
                assert_eq!(a.tokens, [0, 1, 2], "each decision saw the history so far");
            }
        }
    }
}
