//! `spacer bc`: behaviour cloning of the late-fusion policy from logged tokens, at
//! twice the policy's width (HR-PPO's reference, a checkpoint) or at the policy's
//! width (exported as a weights blob).

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spacer_core::policy::{HIDDEN, PolicyDims};
use spacer_core::tokenizer::Vocabulary;

use crate::bc::{BcConfig, BcData, BcReport, BcShape, collect, load, policy_file, train};
use crate::sim::SimConfig;
use crate::training::DeviceKind;

/// Arguments of `spacer bc`.
#[derive(Debug, Args)]
pub struct BcArgs {
    /// Scene files or directories (any format the loader reads).
    #[arg(long, num_args = 1.., required = true)]
    pub scenes: Vec<PathBuf>,
    /// Vocabulary file; the kinematic grid of 200 tokens when omitted.
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
    /// Evaluate and checkpoint every this many steps.
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
    /// Output directory (`bc.ckpt`, curves).
    #[arg(long, default_value = "out/bc")]
    pub out: PathBuf,
    /// Continue from `--out`'s checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Width 64 only: also write the policy as a weights blob here.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Backend.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
}

/// Runs `spacer bc`.
pub fn run(a: BcArgs) -> anyhow::Result<()> {
    if a.export.is_some() && a.width != HIDDEN {
        anyhow::bail!(
            "--export writes the core's layout, which has width {HIDDEN}; got --width {}",
            a.width
        );
    }
    let vocab = match &a.vocab {
        Some(p) => crate::vocab::read_vocabulary(p)?,
        None => Vocabulary::kinematic_grid(200).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let scenes = super::scenes::usable_for_motion(super::scenes::load(&a.scenes)?);
    let (mut train_s, held_s) = super::scenes::split(scenes);
    train_s.extend(super::scenes::synthetic(a.synthetic, a.seed));
    let sim = SimConfig {
        goal_dropout: a.goal_dropout,
        box_scale: a.box_scale,
        ..SimConfig::default()
    };
    let pb = ProgressBar::new_spinner().with_message("recording observations of logged driving");
    let train_d = collect(&train_s, &vocab, &sim, a.seed)?;
    let held_d = collect(&held_s, &vocab, &sim, a.seed ^ 1)?;
    pb.finish_and_clear();
    println!(
        "{} training scenes -> {} samples, {} held-out scenes -> {} samples ({} floats each, {:.0} MB)",
        train_s.len(),
        train_d.len(),
        held_s.len(),
        held_d.len(),
        train_d.row_len,
        (train_d.observations.len() + held_d.observations.len()) as f64 * 4e-6
    );
    let dims = PolicyDims {
        actions: vocab.len() as u16,
        ..PolicyDims::default()
    };
    let shape = BcShape {
        width: a.width,
        dims,
        radius: sim.observation.radius,
    };
    let cfg = BcConfig {
        width: a.width,
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        eval_every: a.eval_every,
        seed: a.seed,
        ..BcConfig::default()
    };
    let report = match a.device {
        DeviceKind::Cpu => go::<crate::training::CpuTrain>(
            &cfg,
            shape,
            &vocab,
            &train_d,
            &held_d,
            &a,
            &Default::default(),
        )?,
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            // SAFETY: only probes whether the driver library can be loaded.
            if !unsafe { cudarc::driver::sys::is_culib_present() } {
                anyhow::bail!("--device cuda: libcuda is not available on this machine");
            }
            go::<crate::training::GpuTrain>(
                &cfg,
                shape,
                &vocab,
                &train_d,
                &held_d,
                &a,
                &Default::default(),
            )?
        }
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => anyhow::bail!("--device cuda needs a build with `--features cuda`"),
    };
    println!(
        "behaviour cloning, width {}: {} parameters, {} steps ({} this run) in {:.1} s",
        a.width,
        super::info::thousands(report.params),
        report.step,
        report.steps_run,
        report.seconds
    );
    println!(
        "train: NLL {:.4}, accuracy {:.4} ({} samples); held-out: NLL {:.4}, accuracy {:.4} ({} samples)",
        report.train.nll,
        report.train.accuracy,
        report.train.samples,
        report.heldout.nll,
        report.heldout.accuracy,
        report.heldout.samples
    );
    println!("checkpoint {}", report.checkpoint.display());
    if let Some(path) = &a.export {
        let (net, _, v) = load::<crate::training::Cpu>(&report.checkpoint, &Default::default())?;
        policy_file(&net, &v, shape.radius, report.step as u64)?.write(path)?;
        println!(
            "policy weights {} (read it with `spacer info --weights`)",
            path.display()
        );
    }
    Ok(())
}

fn go<B: AutodiffBackend>(
    cfg: &BcConfig,
    shape: BcShape,
    vocab: &Vocabulary,
    train_d: &BcData,
    held_d: &BcData,
    a: &BcArgs,
    device: &B::Device,
) -> anyhow::Result<BcReport> {
    let pb = ProgressBar::new(cfg.steps as u64).with_style(
        ProgressStyle::with_template(
            "bc {bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let r = train::<B>(
        cfg,
        shape,
        vocab,
        train_d,
        held_d,
        &a.out,
        a.resume,
        device,
        Some(&pb),
    )?;
    pb.finish_and_clear();
    Ok(r)
}
