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
    /// End-to-end training throughput (agent-steps per second) and its breakdown.
    Train(TrainBenchArgs),
}

/// Arguments of `spacer bench train`.
#[derive(Debug, Args)]
pub struct TrainBenchArgs {
    /// The scenes.
    #[command(flatten)]
    pub data: super::args::DatasetArgs,
    /// A preset or TOML file.
    #[arg(long, default_value = "cpu")]
    pub config: String,
    /// Method (default: the configuration's).
    #[arg(long, value_enum)]
    pub method: Option<crate::ppo::Method>,
    /// Reference checkpoint (default: an untrained nano model, which costs the same).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Behaviour-cloned checkpoint (HR-PPO).
    #[arg(long)]
    pub bc: Option<PathBuf>,
    /// Updates measured with the native learner.
    #[arg(long, default_value_t = 6)]
    pub updates: u64,
    /// Updates measured with burn's learner (0: skip).
    #[arg(long, default_value_t = 1)]
    pub burn_updates: u64,
    /// Scratch directory.
    #[arg(long, default_value = "out/bench-train")]
    pub out: PathBuf,
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
        BenchCommand::Train(a) => train(a),
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

fn train(a: TrainBenchArgs) -> anyhow::Result<()> {
    let mut config = crate::ppo::PpoConfig::resolve(&a.config)?;
    if let Some(m) = a.method {
        config.method = m;
    }
    let dataset = a.data.load(config.env.synthetic, config.run.seed)?;
    let files = crate::ppo::AnchorFiles {
        reference: a.reference.clone(),
        bc: a.bc.clone(),
        vocab: None,
        init: None,
    };
    println!(
        "spacer bench train: method {}, config {}, {} worlds per batch, {} threads, load average {}",
        config.method.name(),
        a.config,
        config.env.worlds,
        rayon::current_num_threads(),
        load_average().unwrap_or_else(|| "unknown".into())
    );
    let r = crate::ppo::bench::bench_train(
        &config,
        &files,
        &dataset,
        a.updates,
        a.burn_updates,
        &a.out,
    )?;
    for (name, t) in
        std::iter::once(("native learner", r.native)).chain(r.burn.map(|b| ("burn learner", b)))
    {
        let tm = t.timing;
        println!(
            "{name}: {} updates, {} agent-steps ({} samples) in {:.1} s: {:.0} agent-steps/s end to end{}",
            t.updates,
            t.agent_steps,
            t.samples,
            tm.training(),
            t.agent_steps_per_second(),
            t.cpu_seconds
                .map(|c| format!(
                    " ({:.0} per CPU-second)",
                    t.agent_steps as f64 / c.max(1e-9)
                ))
                .unwrap_or_default()
        );
        for (part, s) in [
            ("setup", tm.setup),
            ("rollouts (observe, act, step)", tm.rollout),
            ("anchor scoring", tm.anchor),
            ("PPO updates", tm.learn),
        ] {
            println!(
                "  {part:<30} {s:>7.2} s {:>5.1}%  alone {:>9.0} agent-steps/s",
                100.0 * s / tm.training().max(1e-9),
                t.rate_of(s)
            );
        }
    }
    let n = r.native.timing;
    let others = n.setup + n.rollout + n.anchor;
    println!(
        "limit with a free learner: {:.0} agent-steps/s; with free anchor scoring: {:.0}",
        r.native.rate_of(others),
        r.native.rate_of(n.setup + n.rollout + n.learn)
    );
    if let Some(b) = r.burn {
        println!(
            "learner alone: native {:.0} samples/s, burn {:.0} samples/s ({:.1}x)",
            r.native.samples as f64 / n.learn.max(1e-9),
            b.samples as f64 / b.timing.learn.max(1e-9),
            (r.native.samples as f64 / n.learn.max(1e-9))
                / (b.samples as f64 / b.timing.learn.max(1e-9))
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
