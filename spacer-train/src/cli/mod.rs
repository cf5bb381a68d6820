//! The `spacer` command line: one module per command.

use clap::{Parser, Subcommand};

pub mod args;
pub mod bc;
pub mod bench;
pub mod data;
pub mod data_gen;
pub mod data_render;
pub mod demo;
pub mod eval;
pub mod info;
pub mod metrics;
pub mod quantize;
pub mod train;
pub mod train_ref;
pub mod vocab;

/// SPACeR: human-like, reactive traffic sim agents, trained by self-play anchored to a
/// reference motion model.
#[derive(Debug, Parser)]
#[command(name = "spacer", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job on the shipped and generated scenes: vocabulary, cloned policy,
    /// reference model, SPACeR policy, and every agent scored closed loop on the
    /// held-out scenes.
    Demo(demo::DemoArgs),
    /// Print the policy architecture and its parameter count.
    Info(info::InfoArgs),
    /// Build or evaluate the motion-token vocabulary.
    Vocab(vocab::VocabArgs),
    /// Self-play PPO anchored to the reference model (SPACeR), or the PPO and HR-PPO
    /// baselines.
    Train(train::TrainArgs),
    /// Train the reference motion model.
    TrainRef(train_ref::TrainRefArgs),
    /// Behaviour cloning of the late-fusion policy from logged tokens.
    Bc(bc::BcArgs),
    /// Measure throughput (`spacer bench sim`).
    Bench(bench::BenchArgs),
    /// Scene data: inspect files, convert them into a scene cache, generate synthetic
    /// scenes, render a scene.
    Data(data::DataArgs),
    /// Score sim-agent rollouts with the official Waymo Sim Agents metrics.
    Metrics(metrics::MetricsArgs),
    /// Roll sim agents out in the simulator and score them with the WOSAC metrics.
    Eval(eval::EvalArgs),
    /// Quantize a policy blob to int8 (or rewrite it in the current format version).
    Quantize(quantize::QuantizeArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Info(a) => info::run(a),
        Command::Vocab(a) => vocab::run(a),
        Command::Train(a) => train::run(a),
        Command::TrainRef(a) => train_ref::run(a),
        Command::Bc(a) => bc::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Data(a) => data::run(a),
        Command::Metrics(a) => metrics::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Quantize(a) => quantize::run(a),
    }
}
