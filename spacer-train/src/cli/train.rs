//! `spacer train`: self-play PPO anchored to the reference model (SPACeR), or the
//! PPO and HR-PPO baselines ([`crate::ppo`]).

use std::path::PathBuf;

use clap::Args;

use super::args::{DatasetArgs, RunArgs};
use crate::ppo::{AnchorFiles, LearnerKind, Method, PpoConfig, train_with_files};

/// Arguments of `spacer train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The scenes.
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Output and backend.
    #[command(flatten)]
    pub run: RunArgs,
    /// `spacer` (reference-anchored), `ppo`, or `hr-ppo` (KL to a cloned policy).
    /// Default: the configuration's.
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// A preset (`cpu-demo`, `cpu`, `paper`) or a TOML file (see
    /// spacer-train/configs/train/).
    #[arg(long, default_value = "cpu")]
    pub config: String,
    /// Reference checkpoint (`spacer train-ref`): SPACeR's anchor and the vocabulary.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Behaviour-cloned checkpoint of width 128 (`spacer bc --width 128`): HR-PPO's
    /// anchor.
    #[arg(long)]
    pub bc: Option<PathBuf>,
    /// Vocabulary file when no checkpoint gives one (default: the kinematic grid).
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Start from this policy (an f32 weights blob with the run's vocabulary, e.g.
    /// `spacer bc --width 64 --export FILE`) instead of a fresh initialisation.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Budget in 10 Hz agent-steps (default: the configuration's).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Seed (default: the configuration's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Weight of log pi_ref in the reward (default: the method's).
    #[arg(long)]
    pub alpha: Option<f32>,
    /// Weight of the KL term (default: the method's).
    #[arg(long)]
    pub beta: Option<f32>,
    /// Temperature of the anchor's distributions in the reward and the KL term
    /// (default 1: the anchor as trained).
    #[arg(long)]
    pub anchor_temperature: Option<f32>,
    /// The CPU learner: `native` (hand-written passes) or `burn`.
    #[arg(long, value_enum)]
    pub learner: Option<LearnerKind>,
}

/// Runs `spacer train`.
///
/// # Errors
/// Bad arguments, unreadable inputs, a failing run.
pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let mut config = PpoConfig::resolve(&a.config)?;
    if let Some(m) = a.method {
        config.method = m;
    }
    if let Some(s) = a.steps {
        config.run.agent_steps = s;
    }
    if let Some(s) = a.seed {
        config.run.seed = s;
    }
    if a.alpha.is_some() {
        config.reward.alpha = a.alpha;
    }
    if a.beta.is_some() {
        config.reward.beta = a.beta;
    }
    if a.anchor_temperature.is_some() {
        config.reward.anchor_temperature = a.anchor_temperature;
    }
    if let Some(l) = a.learner {
        config.ppo.learner = l;
    }
    config.validate("command line")?;
    let dataset = a.data.load(config.env.synthetic, config.run.seed)?;
    let options = a.run.options(&format!(
        "out/train/{}-s{}",
        config.method.name(),
        config.run.seed
    ));
    println!(
        "spacer train: method {}, alpha {}, beta {}, anchor temperature {}, {} agent-steps, {} worlds per batch, seed {} -> {}",
        config.method.name(),
        config.alpha(),
        config.beta(),
        config.anchor_temperature(),
        config.run.agent_steps,
        config.env.worlds,
        config.run.seed,
        options.out_dir.display()
    );
    let files = AnchorFiles {
        reference: a.reference,
        bc: a.bc,
        vocab: a.vocab,
        init: a.init,
    };
    let r = train_with_files(&config, &files, &dataset, &options, a.run.device)?;
    let t = r.timing;
    println!(
        "{} updates ({} this run), {} agent-steps ({} samples) in {:.1} s of training: {:.0} agent-steps/s",
        r.updates,
        r.updates_run,
        r.agent_steps,
        r.samples,
        t.training(),
        r.agent_steps as f64 / t.training().max(1e-9)
    );
    println!(
        "time: setup {:.1} s, rollouts {:.1} s, anchor {:.1} s, updates {:.1} s, held-out evaluations {:.1} s, checkpoints {:.1} s",
        t.setup, t.rollout, t.anchor, t.learn, t.eval, t.checkpoint
    );
    if let Some(h) = r.held_out {
        println!(
            "held-out (WOSAC 2025, {} rollouts per scene): realism {:.4}, minADE {:.2} m, collision {:.3}, off-road {:.3}, goal {:.3}",
            config.run.eval_rollouts, h.realism, h.min_ade, h.collision, h.offroad, h.goal
        );
    }
    println!("checkpoint {}", r.checkpoint.display());
    println!(
        "policy {} (spacer eval --agents policy:{})",
        r.policy.display(),
        r.policy.display()
    );
    Ok(())
}
