//! The batched simulator as a vector environment: tokens in; observations, the
//! trainer's rewards, done flags and events out; the rollouts as a challenge
//! submission and their WOSAC scores at the end. What the Python package's `Env`
//! wraps, for a policy that lives outside spacer (PyTorch, JAX).
//!
//! One row per controlled agent of every world (worlds are `worlds_per_scene` copies
//! of each scene, each with its own seed), in [`RowIndex`] order; the rows are fixed
//! for the environment's life. An episode is the simulator's: steps `0..=current`
//! replay the log, then [`SimConfig::decisions`] decisions of two 10 Hz steps each.
//!
//! - [`VecEnv::reset`] starts an episode in every world and writes the first
//!   observations (spacer-core's layout, [`ObservationConfig`]) into the caller's
//!   buffer; [`VecEnv::step`] applies one token per row, advances two steps and
//!   writes the next observations, the rewards, the done flags and the events.
//! - Tokens index the agent's vocabulary ([`Vocabulary`]: a policy blob's, a
//!   vocabulary file's or the kinematic grid), per agent kind; [`HOLD`] stands
//!   still, [`LOG`] follows the log for the two steps (an expert action).
//! - Rewards are the trainer's ([`RewardSection`], through
//!   [`crate::ppo::rollout::decision_outcome`]: the same function PPO uses): `goal`
//!   once at the decision that reaches the goal, `collision` and `offroad` at every
//!   decision whose steps hold one. An agent is done when the simulator stops or
//!   removes it ([`SimConfig::goal_behaviour`], [`SimConfig::collision_behaviour`])
//!   or at the last decision; afterwards its rows are ignored, rewarded 0, done, and
//!   (when removed) observe zeros.
//! - [`VecEnv::submission`] turns the finished episode into one `ScenarioRollouts`
//!   per scene (its worlds the joint scenes), [`VecEnv::score`] scores them.

use std::sync::Arc;

use rayon::prelude::*;
use spacer_core::observation::ObservationConfig;
use spacer_core::tokenizer::{Token, Vocabulary};

use crate::metrics::rollouts::Submission;
use crate::metrics::{MetricsConfig, MetricsError, ScenarioFeatures, SceneScores, score_features};
use crate::ppo::PpoConfig;
use crate::ppo::config::RewardSection;
use crate::ppo::rollout::decision_outcome;
use crate::scenario::Scene;
use crate::sim::{Action, Events, RowIndex, SimConfig, SimError, Simulator};

/// Token value that makes an agent stand still for the decision.
pub const HOLD: i64 = -1;
/// Token value that makes an agent follow its log for the decision.
pub const LOG: i64 = -2;

/// Why the environment refused.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The simulator refused.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The metrics refused.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// A buffer or token array of the wrong length.
    #[error("{what} has {got} entries, the environment has {expected}")]
    Length {
        /// Which array.
        what: &'static str,
        /// Entries expected.
        expected: usize,
        /// Entries given.
        got: usize,
    },
    /// A token outside the vocabulary.
    #[error(
        "token {token} of row {row} is not in the vocabulary (0..{tokens}, or -1 hold, -2 log)"
    )]
    Token {
        /// The row.
        row: usize,
        /// Its token.
        token: i64,
        /// Tokens per agent kind.
        tokens: usize,
    },
    /// A call out of order.
    #[error("{0}")]
    State(&'static str),
}

/// How the environment is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvConfig {
    /// The simulator.
    pub sim: SimConfig,
    /// The reward terms.
    pub rewards: RewardSection,
    /// Worlds (independently seeded copies) per scene.
    pub worlds_per_scene: usize,
}

impl Default for EnvConfig {
    /// The simulator's defaults and the trainer's task reward (goal +1, collision
    /// and off-road -0.75), one world per scene.
    fn default() -> Self {
        Self {
            sim: SimConfig::default(),
            rewards: RewardSection {
                goal: 1.0,
                collision: -0.75,
                offroad: -0.75,
                alpha: None,
                beta: None,
                anchor_temperature: None,
            },
            worlds_per_scene: 1,
        }
    }
}

impl EnvConfig {
    /// The environment a trainer configuration trains in: its simulator settings and
    /// its reward terms.
    pub fn from_train_config(config: &PpoConfig) -> Self {
        Self {
            sim: config.sim(),
            rewards: config.reward.clone(),
            worlds_per_scene: 1,
        }
    }
}

/// Where a row lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowInfo {
    /// World.
    pub world: usize,
    /// Index of the world's scene among the environment's scenes.
    pub scene: usize,
    /// The agent's slot in its world.
    pub slot: usize,
    /// The agent's track index in its scene.
    pub track: usize,
    /// The agent's object id.
    pub object_id: i64,
    /// Its vocabulary kind.
    pub kind: spacer_core::agent::AgentKind,
}

/// The simulator as a vector environment (see the module docs).
#[derive(Debug)]
pub struct VecEnv {
    sim: Simulator,
    scenes: Vec<Arc<Scene>>,
    world_scene: Vec<usize>,
    vocabulary: Vocabulary,
    rewards: RewardSection,
    /// Per row: acting before the current decision.
    acting: Vec<bool>,
    actions: Vec<Action>,
    started: bool,
}

impl VecEnv {
    /// `config.worlds_per_scene` worlds of each of `scenes`, driven by tokens of
    /// `vocabulary`.
    ///
    /// # Errors
    /// [`EnvError::Sim`] for a bad config, a scene that cannot be simulated, or no
    /// scenes or worlds.
    pub fn new(
        scenes: Vec<Arc<Scene>>,
        config: &EnvConfig,
        vocabulary: Vocabulary,
    ) -> Result<Self, EnvError> {
        if scenes.is_empty() || config.worlds_per_scene == 0 {
            return Err(EnvError::Sim(SimError::Config(
                "an environment needs at least one scene and one world per scene".into(),
            )));
        }
        let worlds: Vec<Arc<Scene>> = scenes
            .iter()
            .flat_map(|s| std::iter::repeat_n(Arc::clone(s), config.worlds_per_scene))
            .collect();
        let world_scene = (0..worlds.len())
            .map(|w| w / config.worlds_per_scene)
            .collect();
        let sim = Simulator::new(&worlds, config.sim)?;
        let rows = sim.rows().len();
        Ok(Self {
            sim,
            scenes,
            world_scene,
            vocabulary,
            rewards: config.rewards.clone(),
            acting: vec![false; rows],
            actions: vec![Action::Hold; rows],
            started: false,
        })
    }

    /// Rows (controlled agents over all worlds).
    pub fn rows(&self) -> usize {
        self.sim.rows().len()
    }

    /// The row layout.
    pub fn row_index(&self) -> &RowIndex {
        self.sim.rows()
    }

    /// Where row `row` lives.
    ///
    /// # Panics
    /// When `row` is out of range.
    pub fn row_info(&self, row: usize) -> RowInfo {
        let (w, slot) = self.sim.rows().locate(row);
        let world = &self.sim.worlds()[w];
        let track = world.agent_track(slot);
        RowInfo {
            world: w,
            scene: self.world_scene[w],
            slot,
            track,
            object_id: world.scene().tracks[track].id,
            kind: world.agent_kind(slot),
        }
    }

    /// The observation layout.
    pub fn observation_config(&self) -> &ObservationConfig {
        &self.sim.config().observation
    }

    /// Floats per observation row.
    pub fn observation_len(&self) -> usize {
        self.observation_config().len()
    }

    /// Tokens per agent kind.
    pub fn num_tokens(&self) -> usize {
        self.vocabulary.len()
    }

    /// The vocabulary.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// The reward terms.
    pub fn rewards(&self) -> &RewardSection {
        &self.rewards
    }

    /// The scenes.
    pub fn scenes(&self) -> &[Arc<Scene>] {
        &self.scenes
    }

    /// The scene index of world `w`.
    pub fn world_scene(&self) -> &[usize] {
        &self.world_scene
    }

    /// The simulator (worlds, config, rollouts).
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// Decisions per episode.
    pub fn decisions(&self) -> usize {
        self.sim.config().decisions()
    }

    /// Decisions taken in the current episode.
    pub fn decision(&self) -> usize {
        self.sim.worlds().first().map_or(0, |w| w.decision())
    }

    /// True once the episode's last decision has been stepped (or before any reset).
    pub fn is_done(&self) -> bool {
        !self.started || self.sim.is_done()
    }

    /// Whether each row's agent acts at the next decision (not stopped or removed).
    pub fn acting(&self) -> &[bool] {
        &self.acting
    }

    fn refresh_acting(&mut self) {
        let (worlds, rows) = (self.sim.worlds(), self.sim.rows());
        for (r, a) in self.acting.iter_mut().enumerate() {
            let (w, s) = rows.locate(r);
            *a = worlds[w].is_acting(s);
        }
    }

    fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), EnvError> {
        if expected == got {
            Ok(())
        } else {
            Err(EnvError::Length {
                what,
                expected,
                got,
            })
        }
    }

    /// Starts an episode in every world (world `w` seeded from `seed` and `w`) and
    /// writes the first observations into `obs` (`[rows][observation_len()]`).
    ///
    /// # Errors
    /// [`EnvError::Length`] for a buffer of the wrong size; the simulator's errors.
    pub fn reset(&mut self, seed: u64, obs: &mut [f32]) -> Result<(), EnvError> {
        Self::check_len(
            "the observation buffer",
            self.rows() * self.observation_len(),
            obs.len(),
        )?;
        self.sim.reset(seed, false)?;
        let config = *self.observation_config();
        self.sim.observe_into(&config, obs)?;
        self.refresh_acting();
        self.started = true;
        Ok(())
    }

    /// Applies `tokens` (one per row: an index into the agent kind's vocabulary,
    /// [`HOLD`] or [`LOG`]; ignored for rows that no longer act), advances every world
    /// two steps, and writes the next observations into `obs`, each row's reward into
    /// `rewards`, whether its episode is over into `dones` and the events of the two
    /// steps ([`Events`] bits: 1 collision, 2 off-road, 4 goal reached) into `events`.
    ///
    /// # Errors
    /// [`EnvError::State`] before a reset or after the last decision;
    /// [`EnvError::Length`] for arrays of the wrong size; [`EnvError::Token`] for a
    /// token outside the vocabulary; the simulator's errors.
    pub fn step(
        &mut self,
        tokens: &[i64],
        obs: &mut [f32],
        rewards: &mut [f32],
        dones: &mut [bool],
        events: &mut [u8],
    ) -> Result<(), EnvError> {
        if !self.started {
            return Err(EnvError::State("step before reset: call reset first"));
        }
        if self.sim.is_done() {
            return Err(EnvError::State(
                "the episode is over (every decision was stepped): call reset",
            ));
        }
        let rows = self.rows();
        Self::check_len("tokens", rows, tokens.len())?;
        Self::check_len(
            "the observation buffer",
            rows * self.observation_len(),
            obs.len(),
        )?;
        Self::check_len("rewards", rows, rewards.len())?;
        Self::check_len("dones", rows, dones.len())?;
        Self::check_len("events", rows, events.len())?;
        let k = self.vocabulary.len();
        for (row, (&t, action)) in tokens.iter().zip(self.actions.iter_mut()).enumerate() {
            *action = match t {
                HOLD => Action::Hold,
                LOG => Action::Log,
                t if (0..k as i64).contains(&t) => {
                    let (w, s) = self.sim.rows().locate(row);
                    let kind = self.sim.worlds()[w].agent_kind(s);
                    Action::Token {
                        index: t as u16,
                        token: self
                            .vocabulary
                            .get(kind, t as usize)
                            .copied()
                            .unwrap_or(Token::STILL),
                    }
                }
                token => {
                    return Err(EnvError::Token {
                        row,
                        token,
                        tokens: k,
                    });
                }
            };
        }
        let decision = self.decision();
        let decisions = self.decisions();
        self.sim.step(&self.actions)?;
        let config = *self.observation_config();
        self.sim.observe_into(&config, obs)?;
        let (worlds, index) = (self.sim.worlds(), self.sim.rows());
        let terms = &self.rewards;
        rewards
            .iter_mut()
            .zip(dones.iter_mut())
            .zip(events.iter_mut())
            .zip(&self.acting)
            .enumerate()
            .for_each(|(row, (((r, d), e), &acted))| {
                if !acted {
                    (*r, *d, *e) = (0.0, true, 0);
                    return;
                }
                let (w, s) = index.locate(row);
                let world = &worlds[w];
                let (reward, done) = decision_outcome(world, s, decision, decisions, terms);
                let t0 = world.index().current_step() + 2 * decision + 1;
                let ev = world.events(s);
                let bits = ev
                    .get(t0.min(ev.len())..(t0 + 2).min(ev.len()))
                    .unwrap_or(&[])
                    .iter()
                    .fold(Events::NONE.0, |acc, e| acc | e.0);
                (*r, *d, *e) = (reward, done, bits);
            });
        self.refresh_acting();
        Ok(())
    }

    /// The finished episode as a challenge submission: per scene (in order), one
    /// `ScenarioRollouts` whose joint scenes are its worlds, every object valid at the
    /// current step with its simulated steps.
    ///
    /// # Errors
    /// [`EnvError::State`] before the episode's last decision.
    pub fn submission(&self) -> Result<Submission, EnvError> {
        if !self.started || !self.sim.is_done() {
            return Err(EnvError::State(
                "the rollouts are complete only after the episode's last decision",
            ));
        }
        let runs = self.sim.rollouts();
        let per = runs.len() / self.scenes.len();
        Ok(Submission {
            scenario_rollouts: self
                .scenes
                .iter()
                .zip(runs.chunks(per))
                .map(|(scene, worlds)| crate::eval::scenario_rollouts(scene, worlds))
                .collect(),
            ..Submission::default()
        })
    }

    /// The WOSAC scores of the finished episode, one per scene (its worlds the
    /// rollouts), scenes in parallel.
    ///
    /// # Errors
    /// As [`VecEnv::submission`]; [`EnvError::Metrics`] when a scene cannot be scored
    /// (no self-driving car or track to predict, for example).
    pub fn score(&self, config: &MetricsConfig) -> Result<Vec<SceneScores>, EnvError> {
        let submission = self.submission()?;
        Ok(self
            .scenes
            .par_iter()
            .zip(&submission.scenario_rollouts)
            .map(|(scene, r)| {
                let f = ScenarioFeatures::compute(scene, r)?;
                SceneScores::new(config, score_features(config, &f)?)
            })
            .collect::<Result<Vec<_>, MetricsError>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{CollisionBehaviour, testing};

    fn vocab() -> Vocabulary {
        Vocabulary::kinematic_grid(200).unwrap()
    }

    struct Buffers {
        obs: Vec<f32>,
        rewards: Vec<f32>,
        dones: Vec<bool>,
        events: Vec<u8>,
    }

    fn buffers(env: &VecEnv) -> Buffers {
        let n = env.rows();
        Buffers {
            obs: vec![f32::NAN; n * env.observation_len()],
            rewards: vec![f32::NAN; n],
            dones: vec![false; n],
            events: vec![0; n],
        }
    }

    #[test]
    fn an_episode_observes_like_the_simulator_and_rewards_like_the_trainer() {
        let scene = Arc::new(testing::straight_road(3, 2));
        let config = EnvConfig {
            worlds_per_scene: 2,
            ..EnvConfig::default()
        };
        let mut env = VecEnv::new(vec![Arc::clone(&scene)], &config, vocab()).unwrap();
        assert_eq!(env.rows(), 12);
        assert_eq!(env.observation_len(), 2984);
        assert!(env.is_done());
        let mut b = buffers(&env);
        let e = env
            .step(
                &[0; 12],
                &mut b.obs,
                &mut b.rewards,
                &mut b.dones,
                &mut b.events,
            )
            .unwrap_err();
        assert!(e.to_string().contains("reset"), "{e}");
        env.reset(7, &mut b.obs).unwrap();
        // The same observations as the simulator's own buffer after the same reset.
        let mut sim = Simulator::new(&[Arc::clone(&scene), scene], SimConfig::default()).unwrap();
        sim.reset(7, true).unwrap();
        assert_eq!(sim.observations().unwrap().as_slice(), &b.obs[..]);
        let info = env.row_info(7);
        assert_eq!((info.world, info.scene, info.slot), (1, 0, 1));
        // Token 0 stands still: nobody moves, collides or reaches a goal.
        let mut total = 0.0;
        for d in 0..env.decisions() {
            assert_eq!(env.decision(), d);
            env.step(
                &[0; 12],
                &mut b.obs,
                &mut b.rewards,
                &mut b.dones,
                &mut b.events,
            )
            .unwrap();
            total += b.rewards.iter().sum::<f32>();
            let last = d + 1 == env.decisions();
            assert!(b.dones.iter().all(|&x| x == last), "decision {d}");
        }
        assert!(env.is_done());
        assert_eq!(total, 0.0);
        let e = env
            .step(
                &[0; 12],
                &mut b.obs,
                &mut b.rewards,
                &mut b.dones,
                &mut b.events,
            )
            .unwrap_err();
        assert!(e.to_string().contains("episode is over"), "{e}");
        let s = env.submission().unwrap();
        assert_eq!(s.scenario_rollouts.len(), 1);
        assert_eq!(s.scenario_rollouts[0].joint_scenes.len(), 2);
    }

    #[test]
    fn rewards_and_dones_follow_the_events_and_behaviours() {
        use crate::scenario::ObjectType;
        use spacer_core::geometry::Vec2;
        // Car 0 drives at 10 m/s into parked car 1, 30 m ahead: the boxes (4.5 m
        // long) first overlap at x = 25.5 m, step 26, in decision 7 (steps 25 and 26).
        let tracks = vec![
            testing::constant_track(
                0,
                ObjectType::Vehicle,
                Vec2::new(0.0, 0.0),
                0.0,
                Vec2::new(10.0, 0.0),
                (4.5, 2.0),
            ),
            testing::constant_track(
                1,
                ObjectType::Vehicle,
                Vec2::new(30.0, 0.0),
                0.0,
                Vec2::ZERO,
                (4.5, 2.0),
            ),
        ];
        let scene = Arc::new(testing::scene(
            "crash",
            tracks,
            testing::straight_road_map(1, false),
        ));
        let config = EnvConfig {
            sim: SimConfig {
                collision_behaviour: CollisionBehaviour::Remove,
                ..SimConfig::default()
            },
            ..EnvConfig::default()
        };
        let mut env = VecEnv::new(vec![scene], &config, vocab()).unwrap();
        assert_eq!(env.rows(), 2);
        let mut b = buffers(&env);
        env.reset(1, &mut b.obs).unwrap();
        for d in 0..env.decisions() {
            env.step(
                &[LOG, HOLD],
                &mut b.obs,
                &mut b.rewards,
                &mut b.dones,
                &mut b.events,
            )
            .unwrap();
            for r in 0..2 {
                let (reward, done, events) = (b.rewards[r], b.dones[r], Events(b.events[r]));
                match d {
                    0..7 => assert!(reward == 0.0 && !done && !events.contains(Events::COLLISION)),
                    7 => {
                        assert!(events.contains(Events::COLLISION), "row {r}");
                        assert_eq!((reward, done), (config.rewards.collision, true), "row {r}");
                    }
                    _ => assert_eq!((reward, done, events), (0.0, true, Events::NONE), "row {r}"),
                }
            }
            if d >= 7 {
                assert_eq!(env.acting(), [false, false]);
                // Removed agents observe zeros.
                assert!(b.obs.iter().all(|&v| v == 0.0));
            }
        }
        // Log replay drives to the goal (the last logged position) and is paid once,
        // at the last decision; holding still (behind it) earns nothing.
        let scene = Arc::new(testing::straight_road(1, 2));
        let mut env = VecEnv::new(vec![scene], &EnvConfig::default(), vocab()).unwrap();
        let mut b = buffers(&env);
        env.reset(1, &mut b.obs).unwrap();
        let mut paid = [0.0f32; 2];
        for _ in 0..env.decisions() {
            env.step(
                &[HOLD, LOG],
                &mut b.obs,
                &mut b.rewards,
                &mut b.dones,
                &mut b.events,
            )
            .unwrap();
            paid[0] += b.rewards[0];
            paid[1] += b.rewards[1];
        }
        assert_eq!(paid, [0.0, config.rewards.goal]);
    }

    #[test]
    fn bad_tokens_and_buffers_are_named() {
        let scene = Arc::new(testing::straight_road(1, 2));
        let mut env = VecEnv::new(vec![scene], &EnvConfig::default(), vocab()).unwrap();
        let n = env.rows();
        let mut b = buffers(&env);
        let e = env.reset(0, &mut b.obs[1..]).unwrap_err();
        assert!(e.to_string().contains("observation buffer"), "{e}");
        env.reset(0, &mut b.obs).unwrap();
        let mut t = vec![0i64; n];
        t[1] = 200;
        let e = env
            .step(&t, &mut b.obs, &mut b.rewards, &mut b.dones, &mut b.events)
            .unwrap_err();
        assert!(e.to_string().contains("token 200 of row 1"), "{e}");
        let e = env
            .step(
                &t[1..],
                &mut b.obs,
                &mut b.rewards,
                &mut b.dones,
                &mut b.events,
            )
            .unwrap_err();
        assert!(e.to_string().contains("tokens has"), "{e}");
        assert!(env.submission().is_err());
        assert!(VecEnv::new(Vec::new(), &EnvConfig::default(), vocab()).is_err());
    }

    #[test]
    fn the_train_presets_configure_the_environment() {
        // `cpu` trains under the evaluation's conditions, `paper` under GPUDrive's.
        let c = PpoConfig::resolve("cpu").unwrap();
        let e = EnvConfig::from_train_config(&c);
        assert_eq!(e.sim.box_scale, 1.0);
        assert_eq!(e.sim.collision_behaviour, CollisionBehaviour::Ignore);
        assert_eq!(e.sim.goal_behaviour, crate::sim::GoalBehaviour::Continue);
        assert_eq!(e.rewards.collision, -0.75);
        let p = EnvConfig::from_train_config(&PpoConfig::resolve("paper").unwrap());
        assert_eq!(p.sim.box_scale, 0.7);
        assert_eq!(p.sim.collision_behaviour, CollisionBehaviour::Remove);
        assert_eq!(p.sim.goal_behaviour, crate::sim::GoalBehaviour::Remove);
    }
}
