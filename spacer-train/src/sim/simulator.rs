//! The batched simulator: many worlds stepped together, in parallel across worlds.

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use super::agents::{Action, DecisionBatch, SimAgent};
use super::batch::{ObservationBatch, RowIndex};
use super::config::SimConfig;
use super::rollout::Rollout;
use super::scene_index::SceneIndex;
use super::world::World;
use super::{SimError, derive_seed};
use crate::scenario::Scene;

/// Observation rows per rayon task.
const OBSERVE_CHUNK: usize = 8;

thread_local! {
    /// Partner candidates of the observation being built (per thread, reused).
    static PARTNERS: std::cell::RefCell<Vec<spacer_core::observation::PartnerView>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Where a run spent its time, and how much it simulated.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Worlds.
    pub worlds: usize,
    /// Controlled agents over all worlds.
    pub agents: usize,
    /// Steps simulated per world (after the history).
    pub sim_steps: usize,
    /// Decisions taken.
    pub decisions: usize,
    /// Wall-clock seconds of the whole run (reset included).
    pub seconds: f64,
    /// Seconds spent building observations.
    pub observe_seconds: f64,
    /// Seconds spent in the sim agent.
    pub act_seconds: f64,
    /// Seconds spent moving objects, detecting events and recording.
    pub step_seconds: f64,
}

impl RunStats {
    /// Controlled agents times simulated steps.
    pub fn agent_steps(&self) -> u64 {
        self.agents as u64 * self.sim_steps as u64
    }

    /// Agent-steps per second of wall-clock time.
    pub fn agent_steps_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.agent_steps() as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A batch of worlds.
#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    worlds: Vec<World>,
    rows: RowIndex,
    observations: Option<ObservationBatch>,
    actions: Vec<Action>,
    stats: RunStats,
}

impl Simulator {
    /// One world per entry of `scenes` (repeat a scene for several rollouts of it;
    /// repeated `Arc`s share one [`SceneIndex`]).
    ///
    /// # Errors
    /// [`SimError::Config`] for a bad config, [`SimError::Scene`] for a scene that
    /// cannot be simulated.
    pub fn new(scenes: &[Arc<Scene>], config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let mut indexes: Vec<Arc<SceneIndex>> = Vec::new();
        let mut per_world = Vec::with_capacity(scenes.len());
        for scene in scenes {
            let index = match indexes.iter().find(|i| Arc::ptr_eq(i.scene_arc(), scene)) {
                Some(i) => Arc::clone(i),
                None => {
                    let i = Arc::new(SceneIndex::new(Arc::clone(scene), &config)?);
                    indexes.push(Arc::clone(&i));
                    i
                }
            };
            per_world.push(index);
        }
        Self::from_indexes(&per_world, config)
    }

    /// One world per entry of `indexes`, built earlier with the same `config` (so
    /// that a trainer drawing scenes batch after batch reuses their spatial indexes).
    ///
    /// # Errors
    /// [`SimError::Config`] for a bad config.
    pub fn from_indexes(indexes: &[Arc<SceneIndex>], config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let worlds: Vec<World> = indexes
            .iter()
            .enumerate()
            .map(|(w, index)| World::new(Arc::clone(index), w, &config))
            .collect();
        let rows = RowIndex::new(worlds.iter().map(World::num_agents));
        Ok(Self {
            actions: vec![Action::Hold; rows.len()],
            config,
            worlds,
            rows,
            observations: None,
            stats: RunStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The worlds.
    pub fn worlds(&self) -> &[World] {
        &self.worlds
    }

    /// The row layout of actions and observations.
    pub fn rows(&self) -> &RowIndex {
        &self.rows
    }

    /// The observations at the current step, when observing.
    pub fn observations(&self) -> Option<&ObservationBatch> {
        self.observations.as_ref()
    }

    /// Statistics of the last [`Simulator::run`].
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// Starts an episode in every world (world `w` seeded with
    /// `derive_seed(seed, [w])`); with `observe`, builds the first observations.
    ///
    /// # Errors
    /// As [`Simulator::observe`].
    pub fn reset(&mut self, seed: u64, observe: bool) -> Result<(), SimError> {
        let dropout = self.config.goal_dropout;
        self.worlds
            .par_iter_mut()
            .enumerate()
            .for_each(|(w, world)| world.reset(derive_seed(seed, &[w as u64]), dropout));
        self.observations = None;
        if observe {
            self.observations = Some(ObservationBatch::new(
                self.config.observation,
                self.rows.len(),
            ));
            self.observe()?;
        }
        Ok(())
    }

    /// Rebuilds the observations of every agent at the current step (a no-op unless
    /// the last reset asked for observations).
    ///
    /// # Errors
    /// [`SimError::Observation`] when the builder refuses.
    pub fn observe(&mut self) -> Result<(), SimError> {
        let Some(mut batch) = self.observations.take() else {
            return Ok(());
        };
        let config = *batch.config();
        let result = self.observe_into(&config, batch.as_mut_slice());
        self.observations = Some(batch);
        result
    }

    /// Builds the observation of every row at the current step into `out`
    /// (`[rows][config.len()]`, row-major), in parallel: for a caller that owns the
    /// buffer (a Python array, a pinned buffer) and so needs no copy. Rows of agents
    /// that left the scene are zero.
    ///
    /// # Errors
    /// [`SimError::Config`] when `out` is not `rows * config.len()` long;
    /// [`SimError::Observation`] when the builder refuses.
    pub fn observe_into(
        &self,
        config: &spacer_core::observation::ObservationConfig,
        out: &mut [f32],
    ) -> Result<(), SimError> {
        let d = config.len();
        if d == 0 || out.len() != self.rows.len() * d {
            return Err(SimError::Config(format!(
                "observation buffer of {} floats for {} rows of {d}",
                out.len(),
                self.rows.len()
            )));
        }
        let (worlds, rows) = (&self.worlds, &self.rows);
        out.par_chunks_mut(d)
            .with_min_len(OBSERVE_CHUNK)
            .enumerate()
            .try_for_each(|(row, out)| {
                let (w, slot) = rows.locate(row);
                PARTNERS.with(|p| worlds[w].observe(slot, config, &mut p.borrow_mut(), out))
            })
    }

    /// Applies one action per row and advances every world two steps; then, when
    /// observing and not done, builds the next observations.
    ///
    /// # Errors
    /// [`SimError::ActionCount`] when `actions` does not have one entry per row;
    /// as [`Simulator::observe`].
    pub fn step(&mut self, actions: &[Action]) -> Result<(), SimError> {
        if actions.len() != self.rows.len() {
            return Err(SimError::ActionCount {
                expected: self.rows.len(),
                got: actions.len(),
            });
        }
        let t = Instant::now();
        let rows = &self.rows;
        self.worlds
            .par_iter_mut()
            .enumerate()
            .for_each(|(w, world)| world.advance(&actions[rows.world_rows(w)]));
        self.stats.step_seconds += t.elapsed().as_secs_f64();
        if !self.is_done() {
            let t = Instant::now();
            self.observe()?;
            self.stats.observe_seconds += t.elapsed().as_secs_f64();
        }
        Ok(())
    }

    /// True once every world has simulated its last step.
    pub fn is_done(&self) -> bool {
        self.worlds.iter().all(World::is_done)
    }

    /// Runs one episode in every world with `agent`: reset with `seed`, then
    /// [`SimConfig::decisions`] decisions. Observations are built when the agent asks
    /// for them (its layout must be [`SimConfig::observation`]) or when
    /// [`SimConfig::always_observe`] is set. The outputs are then in
    /// [`Simulator::rollouts`].
    ///
    /// # Errors
    /// [`SimError::Config`] for an agent whose observation layout differs from the
    /// simulator's; whatever the agent or a step reports.
    pub fn run(&mut self, agent: &mut dyn SimAgent, seed: u64) -> Result<RunStats, SimError> {
        let wanted = agent.observation();
        if let Some(c) = wanted
            && c != self.config.observation
        {
            return Err(SimError::Config(format!(
                "sim agent {} reads observations of radius {} m with {} partner and {} road \
                 slots; the simulator was configured for radius {} m, {} and {}",
                agent.name(),
                c.radius,
                c.max_partners,
                c.max_road_segments,
                self.config.observation.radius,
                self.config.observation.max_partners,
                self.config.observation.max_road_segments
            )));
        }
        let start = Instant::now();
        self.stats = RunStats {
            worlds: self.worlds.len(),
            agents: self.rows.len(),
            sim_steps: self.config.sim_steps,
            decisions: self.config.decisions(),
            ..RunStats::default()
        };
        let observe = wanted.is_some() || self.config.always_observe;
        let t = Instant::now();
        self.reset(seed, observe)?;
        self.stats.observe_seconds += t.elapsed().as_secs_f64();
        agent.reset(&self.worlds, &self.rows)?;
        let mut actions = std::mem::take(&mut self.actions);
        let mut result = Ok(());
        for decision in 0..self.config.decisions() {
            actions.fill(Action::Hold);
            let batch = DecisionBatch {
                decision,
                worlds: &self.worlds,
                rows: &self.rows,
                observations: self.observations.as_ref().filter(|_| wanted.is_some()),
            };
            let t = Instant::now();
            result = agent.act(&batch, &mut actions);
            self.stats.act_seconds += t.elapsed().as_secs_f64();
            if result.is_err() {
                break;
            }
            result = self.step(&actions);
            if result.is_err() {
                break;
            }
        }
        self.actions = actions;
        self.stats.seconds = start.elapsed().as_secs_f64();
        result.map(|()| self.stats)
    }

    /// Every world's run so far, as plain data.
    pub fn rollouts(&self) -> Vec<Rollout> {
        self.worlds.par_iter().map(World::rollout).collect()
    }
}
