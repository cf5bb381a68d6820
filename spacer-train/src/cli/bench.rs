//! `spacer bench`: throughput measurements.
//!
//! `spacer bench sim` runs full episodes (11 logged steps, 80 simulated) of a batch of
//! worlds with one sim agent and reports controlled agent-steps per second, the share
//! of time spent building observations, and the scene mix the number was measured on
//! ([`crate::bench`](mod@crate::bench)); `spacer bench train` the end-to-end training throughput
//! ([`crate::ppo::bench`]).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::eval::AgentSpec;

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
    /// Updates measured with the native learner (about: the budget is that many
    /// times a first batch's agent-steps).
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

fn sim(a: SimBenchArgs) -> anyhow::Result<()> {
    let report = crate::bench::bench_sim(&crate::bench::SimBenchOptions {
        scenes: a.scenes,
        worlds: a.worlds,
        agent: a.agent,
        max_agents: a.max_agents,
        repeats: a.repeats,
        observations: !a.no_observations,
        seed: a.seed,
        progress: true,
    })?;
    print!("{}", report.text());
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
        crate::machine::load_average().unwrap_or_else(|| "unknown".into())
    );
    let r = crate::ppo::bench::bench_train(
        &config,
        &files,
        &dataset,
        a.updates,
        a.burn_updates,
        &a.out,
    )?;
    print!("{}", r.text());
    Ok(())
}
