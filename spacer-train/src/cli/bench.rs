//! `spacer bench`: throughput measurements.
//!
//! `spacer bench sim` runs full episodes (11 logged steps, 80 simulated) of a batch of
//! worlds with one sim agent and reports controlled agent-steps per second, the share
//! of time spent building observations, and the scene mix the number was measured on.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use spacer_core::policy::Selection;
use spacer_core::tokenizer::Vocabulary;

use crate::eval::{AgentOptions, AgentSource, AgentSpec};
use crate::policy_file::PolicyFile;
use crate::scenario::Scene;
use crate::scenario::load::{BadScenePolicy, LoadOptions, load_scenes_with};
use crate::sim::{RunStats, SimConfig, Simulator, testing};

/// Arguments of `spacer bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[command(subcommand)]
    pub what: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Throughput of the batched simulator (agent-steps per second).
    Sim(SimBenchArgs),
}

/// Arguments of `spacer bench sim`.
#[derive(Debug, Args)]
pub struct SimBenchArgs {
    /// Worlds stepped together (the scenes are repeated to fill them).
    #[arg(long, default_value_t = 32)]
    pub worlds: usize,
    /// Scenes: files or directories of any format the readers know (WOMD TFRecord,
    /// GPUDrive JSON, scene cache, INTERACTION); scenes that do not validate for
    /// simulation are skipped with a warning. Without it, a built-in dense four-lane
    /// road with 64 vehicles and 16 pedestrians.
    #[arg(long, num_args = 1..)]
    pub scenes: Vec<PathBuf>,
    /// The sim agent, as `spacer eval --agents` names it: log, const-vel,
    /// logged-tokens, random, policy (the initialisation), policy:FILE, ref:CKPT.
    #[arg(long, default_value = "random")]
    pub agent: AgentSpec,
    /// Controlled agents per world at most.
    #[arg(long, default_value_t = 64)]
    pub max_agents: usize,
    /// Episodes to run; the best and the median are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Do not build observations unless the agent needs them.
    #[arg(long)]
    pub no_observations: bool,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs a benchmark.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchCommand::Sim(a) => sim(a),
    }
}

/// Minimum, mean and maximum of some counts.
fn spread(v: impl Iterator<Item = usize>) -> (usize, f64, usize) {
    let v: Vec<usize> = v.collect();
    let (min, max) = (
        v.iter().copied().min().unwrap_or(0),
        v.iter().copied().max().unwrap_or(0),
    );
    let mean = v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    (min, mean, max)
}

fn sim(args: SimBenchArgs) -> anyhow::Result<()> {
    let (scenes, origin) = if args.scenes.is_empty() {
        (
            vec![testing::dense_road(4, 64)],
            "built-in dense road (4 lanes, 64 vehicles, 16 pedestrians)".to_string(),
        )
    } else {
        let loaded = load_scenes_with(&args.scenes, LoadOptions::new(BadScenePolicy::Skip))?;
        anyhow::ensure!(
            !loaded.scenes.is_empty(),
            "no usable scenes in {:?}",
            args.scenes
        );
        let names: Vec<String> = args
            .scenes
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let skipped = loaded.warnings.len();
        (
            loaded.scenes,
            format!("{} ({skipped} skipped)", names.join(" ")),
        )
    };
    anyhow::ensure!(args.worlds > 0, "--worlds must be at least 1");
    let scenes: Vec<Arc<Scene>> = scenes.into_iter().map(Arc::new).collect();
    let worlds: Vec<Arc<Scene>> = (0..args.worlds)
        .map(|w| Arc::clone(&scenes[w % scenes.len()]))
        .collect();
    let vocabulary = Vocabulary::kinematic_grid(spacer_core::tokenizer::DEFAULT_TOKENS)
        .map_err(|e| anyhow::anyhow!("vocabulary: {e}"))?;
    let observation = match &args.agent.source {
        AgentSource::Policy(p) => PolicyFile::read(p)?.model().observation,
        _ => {
            PolicyFile::initial(&vocabulary, args.seed)
                .model()
                .observation
        }
    };
    let config = SimConfig {
        max_controlled: args.max_agents,
        always_observe: !args.no_observations,
        observation,
        ..SimConfig::default()
    };
    let mut simulator = Simulator::new(&worlds, config)?;
    let mut options = AgentOptions::new(vocabulary);
    options.policy_selection = Selection::Argmax;
    let mut agent = args.agent.build(&options, args.seed)?;

    let bar = ProgressBar::new(args.repeats as u64 + 1).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} episodes")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("bench sim");
    // A first episode warms the caches (the road grid's cell lists are built lazily).
    simulator.run(agent.as_mut(), args.seed)?;
    bar.inc(1);
    let mut runs: Vec<RunStats> = Vec::new();
    let cpu_before = process_cpu_seconds();
    for r in 0..args.repeats.max(1) {
        runs.push(simulator.run(agent.as_mut(), args.seed + 1 + r as u64)?);
        bar.inc(1);
    }
    let cpu = process_cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    bar.finish_and_clear();
    let total_steps: u64 = runs.iter().map(RunStats::agent_steps).sum();
    let total_seconds: f64 = runs.iter().map(|r| r.seconds).sum();
    runs.sort_by(|a, b| {
        b.agent_steps_per_second()
            .total_cmp(&a.agent_steps_per_second())
    });
    let best = runs[0];
    let median = runs[runs.len() / 2];

    let ws = simulator.worlds();
    let agents = spread(ws.iter().map(|w| w.num_agents()));
    let objects = spread(ws.iter().map(|w| w.index().num_objects()));
    let roads = spread(ws.iter().map(|w| w.index().roads().segments().len()));
    let edges = spread(ws.iter().map(|w| w.index().edges().segments().len()));
    println!("spacer bench sim: agent {}, {}", agent.name(), origin);
    println!(
        "scene mix: {} worlds from {} scenes; controlled agents per world {}..{} (mean {:.1}); \
         objects per world {}..{} (mean {:.1}); road segments per world {}..{} (mean {:.0}); \
         road-edge segments {}..{} (mean {:.0})",
        ws.len(),
        scenes.len(),
        agents.0,
        agents.2,
        agents.1,
        objects.0,
        objects.2,
        objects.1,
        roads.0,
        roads.2,
        roads.1,
        edges.0,
        edges.2,
        edges.1
    );
    println!(
        "observations: {}; {} threads",
        if config.always_observe || agent.observation().is_some() {
            format!(
                "built ({} floats per agent per decision)",
                config.observation.len()
            )
        } else {
            "not built".to_string()
        },
        rayon::current_num_threads()
    );
    if let Some(cpu) = cpu.filter(|&c| c > 0.0) {
        // On a shared machine the wall-clock rate depends on the other jobs; the rate
        // per CPU-second does not (much).
        println!(
            "cpu: {:.2} CPU-seconds over {:.2} s of runs ({:.0}% of one core); \
             {:.0} agent-steps per CPU-second; load average {}",
            cpu,
            total_seconds,
            100.0 * cpu / total_seconds.max(1e-9),
            total_steps as f64 / cpu,
            load_average().unwrap_or_else(|| "unknown".into())
        );
    }
    for (name, s) in [("best", best), ("median", median)] {
        println!(
            "{name:>6}: {:>10.0} agent-steps/s ({} agents x {} steps in {:.3} s); \
             observations {:.0}%, agent {:.0}%, stepping {:.0}%",
            s.agent_steps_per_second(),
            s.agents,
            s.sim_steps,
            s.seconds,
            100.0 * s.observe_seconds / s.seconds,
            100.0 * s.act_seconds / s.seconds,
            100.0 * s.step_seconds / s.seconds
        );
    }
    Ok(())
}

/// CPU time (user + system, all threads) of this process so far, from
/// `/proc/self/stat`; `None` where that file does not exist.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14
    // and 15 (1-based) of the whole line, in clock ticks (100 per second on Linux).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The 1, 5 and 15 minute load averages, from `/proc/loadavg`.
fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
