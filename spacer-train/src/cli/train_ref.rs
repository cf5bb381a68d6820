//! `spacer train-ref`: teacher-forced training of the reference motion model on real
//! scenes, evaluated on the fixed held-out split.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spacer_core::tokenizer::Vocabulary;

use crate::reference::train::{TrainConfig, TrainReport, train};
use crate::reference::{PreparedScene, ReferenceConfig};
use crate::training::DeviceKind;

/// Arguments of `spacer train-ref`.
#[derive(Debug, Args)]
pub struct TrainRefArgs {
    /// Model size: `nano` (~0.3M parameters, CPU) or `mini` (~3M, GPU).
    #[arg(long, default_value = "nano")]
    pub config: String,
    /// Scene files or directories (WOMD *.tfrecord, GPUDrive *.json, *.spc caches).
    #[arg(long, num_args = 1.., required = true)]
    pub scenes: Vec<PathBuf>,
    /// Vocabulary file (`spacer vocab build`); the kinematic grid when omitted.
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Optimizer steps (default: 800 for nano, 20000 for mini).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Scenes per step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Agents kept per training scene.
    #[arg(long)]
    pub max_agents: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Evaluate and checkpoint every this many steps.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Probability of drawing a real (not synthetic) training scene.
    #[arg(long)]
    pub real_fraction: Option<f64>,
    /// Synthetic scenes added to the training scenes (never to the held-out set).
    #[arg(long, default_value_t = 0)]
    pub synthetic: usize,
    /// Seed (initialisation, batches, synthetic scenes).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (checkpoint, curves).
    #[arg(long, default_value = "out/reference")]
    pub out: PathBuf,
    /// Continue from the checkpoint in `--out`.
    #[arg(long)]
    pub resume: bool,
    /// Backend.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
}

/// Runs `spacer train-ref`.
pub fn run(a: TrainRefArgs) -> anyhow::Result<()> {
    let vocab = match &a.vocab {
        Some(p) => crate::vocab::read_vocabulary(p)?,
        None => {
            eprintln!("no --vocab given: using the kinematic grid of 200 tokens");
            Vocabulary::kinematic_grid(200).map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    let config = ReferenceConfig::by_name(&a.config, vocab.len()).map_err(anyhow::Error::msg)?;
    let mut tc = TrainConfig::for_model(&config.name);
    tc.seed = a.seed;
    if let Some(v) = a.steps {
        tc.steps = v;
    }
    if let Some(v) = a.batch {
        tc.batch_scenes = v;
    }
    if let Some(v) = a.max_agents {
        tc.max_agents = v;
    }
    if let Some(v) = a.lr {
        tc.lr = v;
    }
    if let Some(v) = a.eval_every {
        tc.eval_every = v;
    }
    if let Some(v) = a.real_fraction {
        tc.real_fraction = v;
    }
    let scenes = super::scenes::usable_for_motion(super::scenes::load(&a.scenes)?);
    let (mut train_s, held_s) = super::scenes::split(scenes);
    let real = train_s.len();
    train_s.extend(super::scenes::synthetic(a.synthetic, a.seed));
    let prep = |v: Vec<crate::scenario::Scene>| -> Vec<PreparedScene> {
        v.into_iter()
            .map(|s| PreparedScene::new(s, &vocab, &config))
            .collect()
    };
    let (train_p, held_p) = (prep(train_s), prep(held_s));
    let agents = |v: &[PreparedScene]| v.iter().map(|s| s.tokens.agents.len()).sum::<usize>();
    println!(
        "{} training scenes ({} real, {} synthetic; {} agents), {} held-out real scenes ({} agents): {}",
        train_p.len(),
        real,
        train_p.len() - real,
        agents(&train_p),
        held_p.len(),
        agents(&held_p),
        held_p
            .iter()
            .map(|s| s.scene.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let report = match a.device {
        DeviceKind::Cpu => go::<crate::training::CpuTrain>(
            &config,
            &tc,
            &vocab,
            &train_p,
            &held_p,
            &a.out,
            a.resume,
            &Default::default(),
        )?,
        DeviceKind::Cuda => cuda(&config, &tc, &vocab, &train_p, &held_p, &a.out, a.resume)?,
    };
    summary(&config, &tc, &report);
    score_speed(&report.checkpoint, &held_p)?;
    Ok(())
}

/// Times one batched `score` call over the held-out worlds (what PPO does once per
/// rollout), on the CPU.
fn score_speed(checkpoint: &Path, held: &[PreparedScene]) -> anyhow::Result<()> {
    if held.is_empty() {
        return Ok(());
    }
    let model = crate::reference::ReferenceModel::<crate::training::Cpu>::load(
        checkpoint,
        &Default::default(),
    )?;
    let worlds: Vec<_> = held.iter().map(PreparedScene::world).collect();
    let t = std::time::Instant::now();
    let scores = model.score(&worlds);
    let s = t.elapsed().as_secs_f64();
    let agent_steps = scores.valid.iter().filter(|&&v| v).count();
    println!(
        "score: {} worlds x {} agents x {} steps x {} tokens in {:.3} s on the CPU ({:.0} agent-steps/s)",
        scores.worlds,
        scores.agents,
        scores.steps,
        scores.tokens,
        s,
        agent_steps as f64 / s.max(1e-9)
    );
    Ok(())
}

#[cfg(feature = "cuda")]
fn cuda(
    config: &ReferenceConfig,
    tc: &TrainConfig,
    vocab: &Vocabulary,
    train_p: &[PreparedScene],
    held_p: &[PreparedScene],
    out: &Path,
    resume: bool,
) -> anyhow::Result<TrainReport> {
    // SAFETY: only probes whether the driver library can be loaded.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        anyhow::bail!("--device cuda: libcuda is not available on this machine");
    }
    let device = burn::backend::cuda::CudaDevice::default();
    go::<crate::training::GpuTrain>(config, tc, vocab, train_p, held_p, out, resume, &device)
}

#[cfg(not(feature = "cuda"))]
fn cuda(
    _: &ReferenceConfig,
    _: &TrainConfig,
    _: &Vocabulary,
    _: &[PreparedScene],
    _: &[PreparedScene],
    _: &Path,
    _: bool,
) -> anyhow::Result<TrainReport> {
    anyhow::bail!("--device cuda needs a build with `--features cuda`")
}

#[allow(clippy::too_many_arguments)]
fn go<B: AutodiffBackend>(
    config: &ReferenceConfig,
    tc: &TrainConfig,
    vocab: &Vocabulary,
    train_p: &[PreparedScene],
    held_p: &[PreparedScene],
    out: &Path,
    resume: bool,
    device: &B::Device,
) -> anyhow::Result<TrainReport> {
    let pb = ProgressBar::new(tc.steps as u64).with_style(
        ProgressStyle::with_template(
            "train-ref {bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let r = train::<B>(
        config,
        tc,
        vocab,
        train_p,
        held_p,
        out,
        resume,
        device,
        Some(&pb),
    )?;
    pb.finish_and_clear();
    Ok(r)
}

fn summary(config: &ReferenceConfig, tc: &TrainConfig, r: &TrainReport) {
    let n = &config.network;
    println!(
        "reference model '{}': {} parameters (hidden {}, {} heads, {} map + {} agent layers, K = {})",
        config.name,
        super::info::thousands(r.params),
        n.hidden,
        n.heads,
        n.map_layers,
        n.agent_layers,
        n.tokens
    );
    println!(
        "steps {} ({} this run) in {:.1} s ({:.3} s/step), batch {} scenes x <= {} agents",
        r.step,
        r.steps_run,
        r.seconds,
        r.seconds / r.steps_run.max(1) as f64,
        tc.batch_scenes,
        tc.max_agents
    );
    println!(
        "time: graphs {:.1} s, forward/backward/optimizer {:.1} s, evaluation and checkpoints {:.1} s",
        r.graph_seconds, r.compute_seconds, r.eval_seconds
    );
    if r.train_loss.is_finite() {
        println!(
            "train (last {} steps): loss {:.4}, next-token accuracy {:.4}",
            tc.eval_every, r.train_loss, r.train_accuracy
        );
    } else {
        println!("train: no steps this run (already at {} steps)", r.step);
    }
    let h = &r.heldout;
    let b = &r.baselines;
    println!(
        "held-out ({} targets, {} from step 5 on): NLL {:.4}, accuracy {:.4}, top-5 {:.4}, accuracy from step 5 {:.4}",
        h.targets, h.future_targets, h.nll, h.accuracy, h.top5, h.future_accuracy
    );
    println!(
        "held-out baselines: constant velocity {:.4} ({:.4} from step 5; repeating the last motion {:.4} ({:.4}), last token {:.4} ({:.4}), random {:.4} ({:.4})",
        b.constant_velocity,
        b.future_constant_velocity,
        b.repeat_last_motion,
        b.future_repeat_last_motion,
        b.last_token,
        b.future_last_token,
        b.random,
        b.future_random
    );
    println!("checkpoint {}", r.checkpoint.display());
}
