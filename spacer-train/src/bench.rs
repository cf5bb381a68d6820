//! Throughput of the batched simulator (`spacer bench sim`): full episodes (11 logged
//! steps, 80 simulated) of a batch of worlds driven by one sim agent of the registry,
//! reported as controlled agent-steps per second with the share of time spent
//! building observations, acting and stepping, and the scene mix it was measured on.
//!
//! Training's end-to-end throughput is [`crate::ppo::bench`].

use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use spacer_core::policy::Selection;
use spacer_core::tokenizer::Vocabulary;

use crate::DataError;
use crate::eval::{AgentOptions, AgentSource, AgentSpec, RegistryError};
use crate::machine::{load_average, process_cpu_seconds};
use crate::policy_file::PolicyFile;
use crate::scenario::Scene;
use crate::scenario::load::{BadScenePolicy, LoadOptions, load_scenes_with};
use crate::sim::{RunStats, SimConfig, SimError, Simulator, testing};

/// What `spacer bench sim` measures.
#[derive(Clone, Debug)]
pub struct SimBenchOptions {
    /// Scene files or directories; empty: a built-in dense four-lane road (64
    /// vehicles, 16 pedestrians). Scenes that do not validate are skipped.
    pub scenes: Vec<PathBuf>,
    /// Worlds stepped together (the scenes repeated to fill them).
    pub worlds: usize,
    /// The sim agent.
    pub agent: AgentSpec,
    /// Controlled agents per world at most.
    pub max_agents: usize,
    /// Measured episodes (after one warm-up episode); at least 1.
    pub repeats: usize,
    /// Build observations even when the agent does not need them.
    pub observations: bool,
    /// Seed of the agent and of the episodes.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// Scenes, blobs or checkpoints that do not load.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The agent cannot be built.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The simulator refused.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// Minimum, mean and maximum of some counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    /// Smallest.
    pub min: usize,
    /// Mean.
    pub mean: f64,
    /// Largest.
    pub max: usize,
}

impl Spread {
    fn of(v: impl Iterator<Item = usize>) -> Self {
        let v: Vec<usize> = v.collect();
        Self {
            min: v.iter().copied().min().unwrap_or(0),
            mean: v.iter().sum::<usize>() as f64 / v.len().max(1) as f64,
            max: v.iter().copied().max().unwrap_or(0),
        }
    }
}

/// What `spacer bench sim` measured.
#[derive(Clone, Debug)]
pub struct SimBenchReport {
    /// The agent's name.
    pub agent: String,
    /// Where the scenes came from.
    pub origin: String,
    /// Worlds.
    pub worlds: usize,
    /// Distinct scenes.
    pub scenes: usize,
    /// Controlled agents per world.
    pub agents: Spread,
    /// Objects per world.
    pub objects: Spread,
    /// Road segments per world.
    pub roads: Spread,
    /// Road-edge segments per world.
    pub edges: Spread,
    /// Floats per observation, when observations were built.
    pub observation_floats: Option<usize>,
    /// Rayon threads.
    pub threads: usize,
    /// Process CPU seconds over the measured episodes, if known.
    pub cpu_seconds: Option<f64>,
    /// The measured episodes, fastest first.
    pub runs: Vec<RunStats>,
}

impl SimBenchReport {
    /// The fastest episode.
    pub fn best(&self) -> RunStats {
        self.runs.first().copied().unwrap_or_default()
    }

    /// The median episode.
    pub fn median(&self) -> RunStats {
        self.runs
            .get(self.runs.len() / 2)
            .copied()
            .unwrap_or_default()
    }

    /// The report as `spacer bench sim` prints it.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "spacer bench sim: agent {}, {}", self.agent, self.origin);
        let s = |x: Spread, p: usize| format!("{}..{} (mean {:.p$})", x.min, x.max, x.mean);
        let _ = writeln!(
            t,
            "scene mix: {} worlds from {} scenes; controlled agents per world {}; objects per world {}; \
             road segments per world {}; road-edge segments {}",
            self.worlds,
            self.scenes,
            s(self.agents, 1),
            s(self.objects, 1),
            s(self.roads, 0),
            s(self.edges, 0)
        );
        let _ = writeln!(
            t,
            "observations: {}; {} threads",
            match self.observation_floats {
                Some(n) => format!("built ({n} floats per agent per decision)"),
                None => "not built".to_string(),
            },
            self.threads
        );
        let total_steps: u64 = self.runs.iter().map(RunStats::agent_steps).sum();
        let total_seconds: f64 = self.runs.iter().map(|r| r.seconds).sum();
        if let Some(cpu) = self.cpu_seconds.filter(|&c| c > 0.0) {
            let _ = writeln!(
                t,
                "cpu: {cpu:.2} CPU-seconds over {total_seconds:.2} s of runs ({:.0}% of one core); \
                 {:.0} agent-steps per CPU-second; load average {}",
                100.0 * cpu / total_seconds.max(1e-9),
                total_steps as f64 / cpu,
                load_average().unwrap_or_else(|| "unknown".into())
            );
        }
        for (name, r) in [("best", self.best()), ("median", self.median())] {
            let share = |x: f64| 100.0 * x / r.seconds.max(1e-9);
            let _ = writeln!(
                t,
                "{name:>6}: {:>10.0} agent-steps/s ({} agents x {} steps in {:.3} s); \
                 observations {:.0}%, agent {:.0}%, stepping {:.0}%",
                r.agent_steps_per_second(),
                r.agents,
                r.sim_steps,
                r.seconds,
                share(r.observe_seconds),
                share(r.act_seconds),
                share(r.step_seconds)
            );
        }
        t
    }
}

/// Runs the benchmark: one warm-up episode (the road grid's cell lists are built
/// lazily), then `repeats` measured ones.
///
/// # Errors
/// No worlds, no usable scenes, an agent that cannot be built, a simulator error.
pub fn bench_sim(options: &SimBenchOptions) -> Result<SimBenchReport, BenchError> {
    if options.worlds == 0 {
        return Err(BenchError::Options("--worlds must be at least 1".into()));
    }
    let (scenes, origin) = if options.scenes.is_empty() {
        (
            vec![testing::dense_road(4, 64)],
            "built-in dense road (4 lanes, 64 vehicles, 16 pedestrians)".to_string(),
        )
    } else {
        let loaded = load_scenes_with(&options.scenes, LoadOptions::new(BadScenePolicy::Skip))?;
        if loaded.scenes.is_empty() {
            return Err(BenchError::Options(format!(
                "no usable scenes in {:?}",
                options.scenes
            )));
        }
        let names: Vec<String> = options
            .scenes
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let origin = format!("{} ({} skipped)", names.join(" "), loaded.warnings.len());
        (loaded.scenes, origin)
    };
    let scenes: Vec<Arc<Scene>> = scenes.into_iter().map(Arc::new).collect();
    let worlds: Vec<Arc<Scene>> = (0..options.worlds)
        .map(|w| Arc::clone(&scenes[w % scenes.len()]))
        .collect();
    let vocabulary = Vocabulary::kinematic_grid(spacer_core::tokenizer::DEFAULT_TOKENS)
        .map_err(|e| BenchError::Options(format!("vocabulary: {e}")))?;
    let observation = match &options.agent.source {
        AgentSource::Policy(p) => PolicyFile::read(p)?.model().observation,
        _ => {
            PolicyFile::initial(&vocabulary, options.seed)
                .model()
                .observation
        }
    };
    let config = SimConfig {
        max_controlled: options.max_agents,
        always_observe: options.observations,
        observation,
        ..SimConfig::default()
    };
    let mut simulator = Simulator::new(&worlds, config)?;
    let mut agent_options = AgentOptions::new(vocabulary);
    agent_options.policy_selection = Selection::Argmax;
    let mut agent = options.agent.build(&agent_options, options.seed)?;
    let repeats = options.repeats.max(1);
    let bar = if options.progress {
        ProgressBar::new(repeats as u64 + 1)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} episodes")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("bench sim");
    simulator.run(agent.as_mut(), options.seed)?;
    bar.inc(1);
    let cpu_before = process_cpu_seconds();
    let mut runs = Vec::with_capacity(repeats);
    for r in 0..repeats {
        runs.push(simulator.run(agent.as_mut(), options.seed + 1 + r as u64)?);
        bar.inc(1);
    }
    let cpu_seconds = process_cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    bar.finish_and_clear();
    runs.sort_by(|a, b| {
        b.agent_steps_per_second()
            .total_cmp(&a.agent_steps_per_second())
    });
    let ws = simulator.worlds();
    let observed = config.always_observe || agent.observation().is_some();
    Ok(SimBenchReport {
        agent: agent.name(),
        origin,
        worlds: ws.len(),
        scenes: scenes.len(),
        agents: Spread::of(ws.iter().map(|w| w.num_agents())),
        objects: Spread::of(ws.iter().map(|w| w.index().num_objects())),
        roads: Spread::of(ws.iter().map(|w| w.index().roads().segments().len())),
        edges: Spread::of(ws.iter().map(|w| w.index().edges().segments().len())),
        observation_floats: observed.then(|| config.observation.len()),
        threads: rayon::current_num_threads(),
        cpu_seconds,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(agent: &str) -> SimBenchOptions {
        SimBenchOptions {
            scenes: Vec::new(),
            worlds: 3,
            agent: agent.parse().unwrap(),
            max_agents: 64,
            repeats: 2,
            observations: false,
            seed: 0,
            progress: false,
        }
    }

    #[test]
    fn the_built_in_road_is_measured_and_reported() {
        let r = bench_sim(&options("const-vel")).unwrap();
        assert_eq!((r.worlds, r.scenes, r.runs.len()), (3, 1, 2));
        // 64 vehicles and 16 pedestrians on the road: the first 64 are controlled.
        assert_eq!((r.agents.min, r.agents.max), (64, 64));
        assert_eq!(
            r.observation_floats, None,
            "const-vel needs no observations"
        );
        let best = r.best();
        assert_eq!(best.agent_steps(), 3 * 64 * 80);
        assert!(best.agent_steps_per_second() >= r.median().agent_steps_per_second());
        let t = r.text();
        assert!(
            t.contains("3 worlds from 1 scenes") && t.contains("observations: not built"),
            "{t}"
        );
        assert!(t.contains("  best:") && t.contains("median:"), "{t}");
        // A policy agent needs observations: they are built and counted.
        let r = bench_sim(&options("policy")).unwrap();
        assert!(
            r.observation_floats.is_some_and(|n| n > 1000),
            "{:?}",
            r.observation_floats
        );
    }

    #[test]
    fn bad_options_are_errors() {
        let mut o = options("random");
        o.worlds = 0;
        assert!(bench_sim(&o).unwrap_err().to_string().contains("--worlds"));
        let dir = tempfile::tempdir().unwrap();
        let mut o = options("random");
        o.scenes = vec![dir.path().to_path_buf()];
        assert!(bench_sim(&o).is_err());
    }
}
