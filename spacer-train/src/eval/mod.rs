//! Closed-loop evaluation: roll sim agents out in the simulator and score the rollouts
//! with the official Waymo Sim Agents metrics.
//!
//! For every scene, `rollouts` worlds of it are simulated (each with its own seed),
//! every object valid at the current step that the simulator can control (vehicles,
//! pedestrians, cyclists) is controlled by the sim agent, and the worlds' futures
//! become one `ScenarioRollouts` (one joint scene per world), scored by
//! [`crate::metrics::score_features`]. Objects of other types replay their log, copied
//! whatever its validity as the official conversion of a log does; collisions neither stop nor remove
//! agents (the challenge's convention). Scenes are simulated a few at a time so that
//! memory stays bounded whatever the scene count.
//!
//! Besides the realism scores, each run reports the simulator's own event rates (the
//! share of controlled agents that collided, went off-road or reached their goal) and
//! its throughput.

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::limits::MAX_ROLLOUTS;
use crate::metrics::rollouts::{JointScene, ScenarioRollouts, SimulatedTrajectory, Submission};
use crate::metrics::{AgentScores, MetricsConfig, MetricsError, ScenarioFeatures, score_features};
use crate::scenario::Scene;
use crate::sim::{Rollout, SimAgent, SimConfig, SimError, Simulator};

pub mod registry;
pub mod report;
pub mod scenes;
pub mod tuning;

pub use registry::{AgentOptions, AgentSource, AgentSpec, RegistryError, parse_specs};

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The simulator refused. (Its error is in the message, not also a `source`, so
    /// that `{:#}` says it once.)
    #[error("simulation: {0}")]
    Sim(SimError),
    /// The metrics refused.
    #[error("metrics: {0}")]
    Metrics(MetricsError),
    /// An agent could not be built.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Nothing could be scored.
    #[error("{0}")]
    Nothing(String),
    /// Scenes or files that do not load.
    #[error(transparent)]
    Data(#[from] crate::error::DataError),
    /// The settings are out of range (the message names the setting).
    #[error("invalid evaluation settings: {0}")]
    Settings(String),
}

impl From<SimError> for EvalError {
    fn from(e: SimError) -> Self {
        EvalError::Sim(e)
    }
}

impl From<MetricsError> for EvalError {
    fn from(e: MetricsError) -> Self {
        EvalError::Metrics(e)
    }
}

/// How an evaluation runs.
#[derive(Clone, Debug)]
pub struct EvalConfig {
    /// Rollouts per scene (32 for the challenge).
    pub rollouts: usize,
    /// Base seed; world `w` of a run derives its own.
    pub seed: u64,
    /// Scenes simulated together (each `rollouts` worlds).
    pub scenes_per_batch: usize,
    /// The simulator's settings (see [`EvalConfig::new`]).
    pub sim: SimConfig,
    /// The metric configuration.
    pub metrics: MetricsConfig,
}

impl EvalConfig {
    /// The challenge's settings: every controllable object valid at the current step is
    /// controlled (up to 1024 per world), collisions are ignored, true box sizes.
    pub fn new(metrics: MetricsConfig, rollouts: usize, seed: u64) -> Self {
        let sim = SimConfig {
            max_controlled: 1024,
            ..SimConfig::default()
        };
        Self {
            rollouts,
            seed,
            scenes_per_batch: 8,
            sim,
            metrics,
        }
    }

    /// Checks the sizes against [`crate::limits`]: 1 to [`MAX_ROLLOUTS`] rollouts per
    /// scene, at least one scene per batch.
    ///
    /// # Errors
    /// [`EvalError::Settings`] naming the setting.
    pub fn validate(&self) -> Result<(), EvalError> {
        if !(1..=MAX_ROLLOUTS).contains(&self.rollouts) {
            return Err(EvalError::Settings(format!(
                "rollouts: {} per scene, expected 1 to {MAX_ROLLOUTS} (the challenge uses 32)",
                self.rollouts
            )));
        }
        if self.scenes_per_batch == 0 {
            return Err(EvalError::Settings(
                "scenes_per_batch: 0, expected at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The policies' token selection for a temperature and top-k: argmax at temperature
/// 0, else sampling.
///
/// # Errors
/// [`EvalError::Settings`] for a temperature that is negative, infinite or NaN.
pub fn policy_selection(
    temperature: f32,
    top_k: u16,
) -> Result<spacer_core::policy::Selection, EvalError> {
    use spacer_core::policy::Selection;
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(EvalError::Settings(format!(
            "temperature: {temperature}, expected 0 (argmax) or a finite positive number"
        )));
    }
    Ok(if temperature > 0.0 {
        Selection::Sample { temperature, top_k }
    } else {
        Selection::Argmax
    })
}

/// Checks a `ref:` agents' sampling temperature (finite and positive).
///
/// # Errors
/// [`EvalError::Settings`] naming the temperature.
pub fn check_ref_temperature(temperature: f32) -> Result<(), EvalError> {
    if temperature.is_finite() && temperature > 0.0 {
        Ok(())
    } else {
        Err(EvalError::Settings(format!(
            "ref temperature: {temperature}, expected a finite positive number"
        )))
    }
}

/// What the simulator itself counted for one agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRates {
    /// Controlled agents over all rollouts.
    pub agents: usize,
    /// Share of them that collided at least once.
    pub collision: f64,
    /// Share that touched a road edge at least once (vehicles).
    pub offroad: f64,
    /// Share that came within the goal radius of their goal.
    pub goal: f64,
    /// Controlled agents x simulated steps per second of simulation (wall clock).
    pub agent_steps_per_second: f64,
    /// Seconds spent simulating.
    pub sim_seconds: f64,
    /// Seconds spent computing and scoring the metrics.
    pub metrics_seconds: f64,
}

/// One sim agent's evaluation.
#[derive(Clone, Debug)]
pub struct AgentEvaluation {
    /// Realism scores per scene and averaged.
    pub scores: AgentScores,
    /// The simulator's event counts.
    pub events: EventRates,
    /// The rollouts, as a challenge submission.
    pub submission: Submission,
    /// Scenes that could not be scored, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// The metric rollouts of one scene from its simulated worlds: every object valid at
/// the current step, its 80 simulated steps. Controlled agents are valid at every
/// step; an uncontrolled object's states are copied whatever their validity, as the
/// official `scenario_to_joint_scene` does for the log (so log replay scores exactly
/// like the logged future).
pub fn scenario_rollouts(scene: &Scene, worlds: &[Rollout]) -> ScenarioRollouts {
    let c = scene.current_step;
    let joint_scenes = worlds
        .iter()
        .map(|r| JointScene {
            trajectories: r
                .objects
                .iter()
                .zip(&scene.tracks)
                .filter(|(_, t)| t.valid_at(c))
                .map(|(o, _)| {
                    let future = o.states.get(c + 1..).unwrap_or(&[]);
                    SimulatedTrajectory {
                        object_id: o.id,
                        object_type: Some(o.object_type),
                        x: future.iter().map(|s| s.x).collect(),
                        y: future.iter().map(|s| s.y).collect(),
                        z: future.iter().map(|s| s.z).collect(),
                        heading: future.iter().map(|s| s.heading).collect(),
                    }
                })
                .collect(),
        })
        .collect();
    ScenarioRollouts {
        scenario_id: scene.id.clone(),
        joint_scenes,
    }
}

/// Whether the metrics can score `scene`: some evaluated object (the self-driving car
/// or a track to predict) is valid at the current step.
pub fn scorable(scene: &Scene) -> Result<(), String> {
    let c = scene.current_step;
    let evaluated = scene.evaluated_tracks();
    if evaluated.is_empty() {
        return Err("no self-driving car or tracks to predict".into());
    }
    if !evaluated
        .iter()
        .any(|&i| scene.tracks.get(i).is_some_and(|t| t.valid_at(c)))
    {
        return Err("no evaluated object is valid at the current step".into());
    }
    Ok(())
}

/// Rolls `agent` out on `scenes` and scores it. `progress` is called with the number of
/// scenes done after each batch.
///
/// # Errors
/// [`EvalError`] when the simulator or the metrics refuse, or no scene can be scored.
pub fn evaluate(
    name: &str,
    scenes: &[Arc<Scene>],
    agent: &mut dyn SimAgent,
    config: &EvalConfig,
    mut progress: impl FnMut(usize),
) -> Result<AgentEvaluation, EvalError> {
    config.validate()?;
    let mut ids = std::collections::HashSet::with_capacity(scenes.len());
    if let Some(twice) = scenes.iter().find(|s| !ids.insert(s.id.as_str())) {
        return Err(EvalError::Settings(format!(
            "scenes: scene {} is given twice (it would be scored as two scenes)",
            twice.id
        )));
    }
    let rollouts = config.rollouts;
    let mut skipped = Vec::new();
    let usable: Vec<&Arc<Scene>> = scenes
        .iter()
        .filter(|s| match scorable(s) {
            Ok(()) => true,
            Err(why) => {
                skipped.push((s.id.clone(), why));
                false
            }
        })
        .collect();
    let mut metrics = Vec::new();
    let mut submission = Submission::default();
    let (mut agents, mut collided, mut offroad, mut goal) = (0usize, 0usize, 0usize, 0usize);
    let (mut agent_steps, mut sim_seconds, mut metrics_seconds) = (0u64, 0.0f64, 0.0f64);
    let mut done = 0;
    for (b, batch) in usable.chunks(config.scenes_per_batch).enumerate() {
        let worlds: Vec<Arc<Scene>> = batch
            .iter()
            .flat_map(|s| std::iter::repeat_n(Arc::clone(s), rollouts))
            .collect();
        let mut sim = Simulator::new(&worlds, config.sim)?;
        let seed = crate::sim::derive_seed(config.seed, &[b as u64]);
        let stats = sim.run(agent, seed)?;
        agent_steps += stats.agent_steps();
        sim_seconds += stats.seconds;
        let runs = sim.rollouts();
        for r in &runs {
            for a in &r.agents {
                agents += 1;
                collided += usize::from(a.first_collision.is_some());
                offroad += usize::from(a.first_offroad.is_some());
                goal += usize::from(a.first_goal.is_some());
            }
        }
        let t = Instant::now();
        let scored: Vec<(ScenarioRollouts, Result<_, MetricsError>)> = batch
            .par_iter()
            .zip(runs.par_chunks(rollouts))
            .map(|(scene, worlds)| {
                let r = scenario_rollouts(scene, worlds);
                let m = ScenarioFeatures::compute(scene, &r)
                    .and_then(|f| score_features(&config.metrics, &f));
                (r, m)
            })
            .collect();
        metrics_seconds += t.elapsed().as_secs_f64();
        for (scene, (r, m)) in batch.iter().zip(scored) {
            match m {
                Ok(m) => {
                    metrics.push(m);
                    submission.scenario_rollouts.push(r);
                }
                Err(e) => skipped.push((scene.id.clone(), e.to_string())),
            }
        }
        done += batch.len();
        progress(done);
    }
    if metrics.is_empty() {
        return Err(EvalError::Nothing(format!(
            "agent {name}: no scene could be scored ({} skipped)",
            skipped.len()
        )));
    }
    let share = |n: usize| {
        if agents > 0 {
            n as f64 / agents as f64
        } else {
            f64::NAN
        }
    };
    let events = EventRates {
        agents,
        collision: share(collided),
        offroad: share(offroad),
        goal: share(goal),
        agent_steps_per_second: if sim_seconds > 0.0 {
            agent_steps as f64 / sim_seconds
        } else {
            0.0
        },
        sim_seconds,
        metrics_seconds,
    };
    submission.info.unique_method_name = Some(name.to_string());
    Ok(AgentEvaluation {
        scores: AgentScores::new(name, &config.metrics, metrics)?,
        events,
        submission,
        skipped,
    })
}

/// A table of the simulator's event rates and speed per agent.
pub fn events_table(runs: &[(&str, &EventRates)]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:>8} {:>10} {:>9} {:>8} {:>14} {:>9} {:>9}",
        "agent", "agents", "collision", "off-road", "goal", "agent-steps/s", "sim s", "metrics s"
    );
    for (name, e) in runs {
        let _ = writeln!(
            s,
            "{:<16} {:>8} {:>10.3} {:>9.3} {:>8.3} {:>14.0} {:>9.2} {:>9.2}",
            name,
            e.agents,
            e.collision,
            e.offroad,
            e.goal,
            e.agent_steps_per_second,
            e.sim_seconds,
            e.metrics_seconds
        );
    }
    s
}

/// Evaluates every agent of `specs` on `scenes`, one after the other, each with a
/// progress bar when `progress`; warnings about scenes that could not be scored go to
/// stderr.
///
/// # Errors
/// The first agent that cannot be built or evaluated.
pub fn evaluate_specs(
    specs: &[AgentSpec],
    scenes: &[Arc<Scene>],
    options: &AgentOptions,
    config: &EvalConfig,
    progress: bool,
) -> Result<Vec<(String, AgentEvaluation)>, EvalError> {
    let mut results = Vec::new();
    for spec in specs {
        let mut agent = spec.build(options, config.seed)?;
        let bar = if progress {
            indicatif::ProgressBar::new(scenes.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {pos}/{len} scenes {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(spec.name.clone());
        let e = evaluate(&spec.name, scenes, agent.as_mut(), config, |n| {
            bar.set_position(n as u64)
        })?;
        bar.finish_and_clear();
        for (id, why) in &e.skipped {
            eprintln!("warning: {}: scene {id} not scored: {why}", spec.name);
        }
        results.push((spec.name.clone(), e));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{ConstantVelocity, LogReplay};

    fn scene() -> Arc<Scene> {
        let path = crate::paths::shared_data("womd/637f20cafde22ff8.tfrecord");
        Arc::new(crate::scenario::womd::read_scenes(&path).unwrap().remove(0))
    }

    #[test]
    fn log_replay_scores_like_the_logged_golden_and_beats_constant_velocity() {
        let scene = scene();
        let config = EvalConfig::new(MetricsConfig::challenge_2025().unwrap(), 2, 1);
        let scenes = [Arc::clone(&scene)];
        let log = evaluate("log", &scenes, &mut LogReplay, &config, |_| {}).unwrap();
        let cv = evaluate("cv", &scenes, &mut ConstantVelocity, &config, |_| {}).unwrap();
        let m_log = log.scores.average.metrics.metametric;
        let m_cv = cv.scores.average.metrics.metametric;
        // The official score of the logged future of this scene (golden file).
        assert!(
            (m_log - 0.82357).abs() < 2e-3,
            "log replay metametric {m_log}"
        );
        assert!(
            m_log > m_cv + 0.2,
            "log {m_log} vs constant velocity {m_cv}"
        );
        // Every object valid at step 10 is in every joint scene, 80 steps each.
        let r = &log.submission.scenario_rollouts[0];
        assert_eq!(r.joint_scenes.len(), 2);
        let valid = scene.tracks.iter().filter(|t| t.valid_at(10)).count();
        assert_eq!(r.joint_scenes[0].trajectories.len(), valid);
        assert!(r.joint_scenes[0].trajectories.iter().all(|t| t.len() == 80));
        assert!(log.events.agents > 0 && cv.events.collision >= log.events.collision);
    }

    #[test]
    fn rollout_counts_and_temperatures_are_checked_before_anything_runs() {
        let metrics = MetricsConfig::challenge_2025().unwrap();
        let scenes = [scene()];
        for n in [0, MAX_ROLLOUTS + 1, 100_000_000] {
            let config = EvalConfig::new(metrics.clone(), n, 1);
            // 0 used to run one rollout and report 0; 1e8 tried to allocate 37 GB.
            let e = evaluate("log", &scenes, &mut LogReplay, &config, |_| {}).unwrap_err();
            assert!(
                matches!(e, EvalError::Settings(_)) && e.to_string().contains("rollouts"),
                "{e}"
            );
        }
        EvalConfig::new(metrics.clone(), MAX_ROLLOUTS, 1)
            .validate()
            .unwrap();
        let twice = [scene(), scene()];
        let config = EvalConfig::new(metrics, 1, 1);
        let e = evaluate("log", &twice, &mut LogReplay, &config, |_| {}).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
        for t in [f32::NAN, -5.0, f32::INFINITY] {
            let e = policy_selection(t, 0).unwrap_err().to_string();
            assert!(e.contains("temperature"), "{e}");
        }
        assert_eq!(
            policy_selection(0.0, 5).unwrap(),
            spacer_core::policy::Selection::Argmax
        );
        assert!(matches!(
            policy_selection(0.5, 5).unwrap(),
            spacer_core::policy::Selection::Sample { .. }
        ));
        assert!(check_ref_temperature(0.0).is_err() && check_ref_temperature(f32::NAN).is_err());
        check_ref_temperature(0.7).unwrap();
    }

    #[test]
    fn scenes_without_evaluated_objects_are_skipped_with_a_reason() {
        let mut s = (*scene()).clone();
        s.sdc_index = None;
        s.tracks_to_predict.clear();
        assert!(scorable(&s).is_err());
        let config = EvalConfig::new(MetricsConfig::challenge_2025().unwrap(), 1, 1);
        let e = evaluate("log", &[Arc::new(s)], &mut LogReplay, &config, |_| {}).unwrap_err();
        assert!(e.to_string().contains("no scene could be scored"), "{e}");
    }
}
