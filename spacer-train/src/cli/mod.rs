//! The `spacer` command line: one module per command.

use clap::{Parser, Subcommand};

pub mod data_gen;
pub mod data_render;
pub mod info;

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
    /// Print the policy architecture and its parameter count.
    Info(info::InfoArgs),
    /// Scene data: generate synthetic scenes, render scenes.
    #[command(subcommand)]
    Data(DataCommand),
}

/// The `data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate synthetic scenes into a scene cache.
    Gen(data_gen::GenArgs),
    /// Render a scene at a step to PNG or SVG.
    Render(data_render::RenderArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Data(DataCommand::Gen(a)) => data_gen::run(a),
        Command::Data(DataCommand::Render(a)) => data_render::run(a),
    }
}
