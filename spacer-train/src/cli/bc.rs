//! `spacer bc`: behaviour cloning of the late-fusion policy from logged tokens, at
//! twice the policy's width (HR-PPO's reference, a checkpoint) or at the policy's
//! width (exported as a weights blob).

use std::path::PathBuf;

use clap::Args;

use super::args::{DatasetArgs, RunArgs};
use crate::bc::{BcConfig, clone_policy};

/// Arguments of `spacer bc`.
#[derive(Debug, Args)]
pub struct BcArgs {
    /// The scenes.
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Output and backend.
    #[command(flatten)]
    pub run: RunArgs,
    /// Vocabulary file (`spacer vocab build`); the kinematic grid of 200 tokens when
    /// omitted. Must be the vocabulary of the policy this clone is compared with or
    /// regularises (HR-PPO).
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Encoder width: 128 for HR-PPO's reference (twice the policy), 64 for a policy.
    #[arg(long, default_value_t = 128)]
    pub width: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Samples per minibatch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Evaluate on the validation split and checkpoint every this many steps.
    #[arg(long, default_value_t = 250)]
    pub eval_every: usize,
    /// Probability that an agent's goal is hidden in its observations.
    #[arg(long, default_value_t = 0.5)]
    pub goal_dropout: f32,
    /// Scale of the observed box sizes (GPUDrive: 0.7).
    #[arg(long, default_value_t = 1.0)]
    pub box_scale: f32,
    /// Synthetic scenes added to the training scenes.
    #[arg(long, default_value_t = 0)]
    pub synthetic: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Width 64 only: also write the policy as a weights blob here.
    #[arg(long)]
    pub export: Option<PathBuf>,
}

/// Runs `spacer bc`.
pub fn run(a: BcArgs) -> anyhow::Result<()> {
    let vocab = crate::vocab::read_or_grid(a.vocab.as_deref())?;
    let dataset = a.data.load(a.synthetic, a.seed)?;
    let cfg = BcConfig {
        width: a.width,
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        eval_every: a.eval_every,
        seed: a.seed,
        goal_dropout: a.goal_dropout,
        box_scale: a.box_scale,
        ..BcConfig::default()
    };
    let options = a.run.options("out/bc");
    let (report, data) = clone_policy(
        &cfg,
        &dataset,
        &vocab,
        &options,
        a.run.device,
        a.export.as_deref(),
    )?;
    println!(
        "samples: {} training, {} validation, {} held-out ({} floats each)",
        data.train.len(),
        data.validation.len(),
        data.heldout.len(),
        data.train.row_len
    );
    println!(
        "behaviour cloning, width {}: {} parameters, {} steps ({} this run) in {:.1} s",
        a.width,
        super::info::thousands(report.params),
        report.step,
        report.steps_run,
        report.seconds
    );
    for (name, s) in [
        ("train", report.train),
        ("validation", report.validation),
        ("held-out", report.heldout),
    ] {
        println!(
            "{name:>10}: NLL {:.4}, accuracy {:.4} ({} samples)",
            s.nll, s.accuracy, s.samples
        );
    }
    println!("checkpoint {}", report.checkpoint.display());
    if let Some(path) = &a.export {
        println!(
            "policy weights {} (read it with `spacer info --weights`)",
            path.display()
        );
    }
    Ok(())
}
