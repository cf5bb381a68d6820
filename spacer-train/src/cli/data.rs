//! `spacer data`: look at scene files and convert them into scene caches.
//!
//! - `spacer data inspect PATH...` prints a table per scene ([`crate::scenario::summary`]): id, steps, agents by
//!   type, valid states, the self-driving car, tracks to predict, objects of
//!   interest, map features by kind, polyline points and traffic-light lanes.
//! - `spacer data convert IN... --out CACHE.spc [--skip-bad]` reads scenes from any
//!   source, validates them for simulation (91 steps) and writes them into one cache
//!   ([`crate::scenario::convert`]), with a progress bar and a summary.
//! - `spacer data gen` and `spacer data render` ([`super::data_gen`],
//!   [`super::data_render`]): synthetic scenes into a cache; a scene to PNG or SVG.
//!
//! Each subcommand is a variant of [`DataCommand`] with its own argument struct and
//! `run` function, so new ones slot in beside these.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};

use crate::scenario::convert::convert_to_cache;
use crate::scenario::interaction::InteractionOptions;
use crate::scenario::summary::SceneSummary;
use crate::scenario::validate::StepRule;
use crate::scenario::{BadScenePolicy, LoadOptions, SceneStream};

/// Arguments of `spacer data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// What to do with scene data.
    #[command(subcommand)]
    pub command: DataCommand,
}

/// The `spacer data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Print a table per scene: agents by type, steps, map features by kind,
    /// traffic-light lanes, the self-driving car and the tracks to predict.
    Inspect(InspectArgs),
    /// Read scenes from any source, validate them and write one scene cache (.spc).
    Convert(ConvertArgs),
    /// Generate synthetic scenes into a scene cache.
    Gen(super::data_gen::GenArgs),
    /// Render a scene at a step to PNG or SVG.
    Render(super::data_render::RenderArgs),
}

/// Options shared by the commands that read scenes.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Skip scenes that cannot be trusted (with a warning) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// The Lanelet2 map (.osm) of INTERACTION track CSVs (default: found beside them).
    #[arg(long, value_name = "OSM")]
    pub map: Option<PathBuf>,
    /// INTERACTION: frames between the starts of consecutive 9.1 s windows.
    #[arg(long, value_name = "FRAMES", default_value_t = InteractionOptions::default().stride_steps)]
    pub stride: usize,
}

impl SourceArgs {
    fn options(&self, steps: StepRule) -> anyhow::Result<LoadOptions> {
        if self.stride == 0 {
            anyhow::bail!("--stride 0: windows need a stride of at least 1 frame");
        }
        Ok(LoadOptions {
            policy: if self.skip_bad {
                BadScenePolicy::Skip
            } else {
                BadScenePolicy::Fail
            },
            steps,
            map: self.map.clone(),
            interaction: InteractionOptions {
                stride_steps: self.stride,
                ..InteractionOptions::default()
            },
            quiet: false,
        })
    }
}

/// Arguments of `spacer data inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Scene files or directories: WOMD .tfrecord, GPUDrive .json, scene cache .spc,
    /// INTERACTION track .csv.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Require 91 steps, as simulation does (by default any length is shown, e.g. the
    /// one-step collision fixtures).
    #[arg(long)]
    pub strict: bool,
    /// Where the scenes come from and what to do with bad ones.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `spacer data convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Scene files or directories (as for `inspect`).
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<PathBuf>,
    /// The cache to write (written to a temporary file and renamed when complete).
    #[arg(long, value_name = "CACHE.spc")]
    pub out: PathBuf,
    /// Where the scenes come from and what to do with bad ones.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Runs `spacer data`.
///
/// # Errors
/// The first unreadable input or bad scene (without `--skip-bad`), or a failed write.
pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Inspect(a) => inspect(a),
        DataCommand::Convert(a) => convert(a),
        DataCommand::Gen(a) => super::data_gen::run(a),
        DataCommand::Render(a) => super::data_render::run(a),
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let rule = if args.strict {
        StepRule::Full
    } else {
        StepRule::Any
    };
    let mut stream = SceneStream::open(&args.paths, args.source.options(rule)?)?;
    let started = Instant::now();
    let mut n = 0usize;
    for loaded in stream.by_ref() {
        let loaded = loaded?;
        if n > 0 {
            println!();
        }
        print!("{}", SceneSummary::of(&loaded).table());
        n += 1;
    }
    println!();
    println!(
        "{n} scene(s) in {:.3} s{}",
        started.elapsed().as_secs_f64(),
        match stream.warnings().len() {
            0 => String::new(),
            k => format!(", {k} skipped"),
        }
    );
    Ok(())
}

fn convert(args: ConvertArgs) -> anyhow::Result<()> {
    let options = args.source.options(StepRule::Full)?;
    let report = convert_to_cache(&args.inputs, &args.out, options, true).map_err(|e| {
        // A bad input can be skipped; a bad output cannot.
        let hint = if args.source.skip_bad || e.path() == args.out {
            "nothing was written"
        } else {
            "nothing was written (use --skip-bad to skip bad scenes)"
        };
        anyhow::Error::new(e).context(hint)
    })?;
    print!("{}", report.text(&args.out));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_stride_is_an_error() {
        let source = SourceArgs {
            skip_bad: false,
            map: None,
            stride: 0,
        };
        let e = source.options(StepRule::Full).unwrap_err().to_string();
        assert!(e.contains("--stride 0"), "{e}");
    }
}
