//! `spacer train-ref`: the reference motion model's training recipe
//! ([`crate::reference::recipe`]): vocabulary, data mix, teacher forcing.

use std::path::PathBuf;

use clap::Args;

use super::args::{DatasetArgs, RunArgs};
use crate::reference::recipe::{Recipe, RecipeReport, train_reference};
use crate::reference::{PreparedScene, ReferenceModel};
use crate::vocab::VocabularySource;

/// Arguments of `spacer train-ref`.
#[derive(Debug, Args)]
pub struct TrainRefArgs {
    /// The scenes.
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Output and backend.
    #[command(flatten)]
    pub run: RunArgs,
    /// Model size: `nano` (~0.36M parameters, CPU) or `mini` (~3.1M, GPU).
    #[arg(long, default_value = "nano")]
    pub config: String,
    /// Vocabulary file (`spacer vocab build`); default: built from the training
    /// scenes and cached in `--out`.
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
    /// Evaluate on the validation split and checkpoint every this many steps.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Probability of drawing a real (not synthetic) training scene.
    #[arg(long)]
    pub real_fraction: Option<f64>,
    /// Draw every real scene equally often instead of every real recording.
    #[arg(long)]
    pub no_balance: bool,
    /// Synthetic scenes added to the training scenes (never to validation or test).
    #[arg(long, default_value_t = 500)]
    pub synthetic: usize,
    /// Skip the closed-loop fine-tuning stage (CAT-K).
    #[arg(long)]
    pub no_closed_loop: bool,
    /// Closed-loop fine-tuning steps (default: 300 for nano, 4000 for mini).
    #[arg(long)]
    pub closed_loop_steps: Option<usize>,
    /// Keep temperature 1 / top-40 instead of choosing the sampling on the
    /// validation split.
    #[arg(long)]
    pub no_sampling_search: bool,
    /// Seed (initialisation, batches, synthetic scenes).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `spacer train-ref`.
pub fn run(a: TrainRefArgs) -> anyhow::Result<()> {
    let mut recipe = Recipe::for_model(&a.config);
    recipe.vocab = a.vocab.clone();
    let tc = &mut recipe.train;
    tc.seed = a.seed;
    tc.steps = a.steps.unwrap_or(tc.steps);
    tc.batch_scenes = a.batch.unwrap_or(tc.batch_scenes);
    tc.max_agents = a.max_agents.unwrap_or(tc.max_agents);
    tc.lr = a.lr.unwrap_or(tc.lr);
    tc.eval_every = a.eval_every.unwrap_or(tc.eval_every);
    tc.real_fraction = a.real_fraction.unwrap_or(tc.real_fraction);
    tc.balance_recordings = !a.no_balance;
    if a.no_closed_loop {
        recipe.closed_loop = None;
    }
    if let Some(c) = &mut recipe.closed_loop {
        c.seed = a.seed;
        c.steps = a.closed_loop_steps.unwrap_or(c.steps);
        c.eval_every = c
            .eval_every
            .min(c.steps.div_ceil(c.rollout_every) * c.rollout_every);
        c.balance_recordings = !a.no_balance;
    }
    if a.no_sampling_search {
        recipe.sampling = None;
    }
    let dataset = a.data.load(a.synthetic, a.seed)?;
    let options = a.run.options("out/reference");
    let report = train_reference(&recipe, &dataset, &options, a.run.device)?;
    summary(&recipe, &report);
    score_speed(&report, &dataset)?;
    Ok(())
}

/// Times one batched `score` call over the held-out worlds (what PPO does once per
/// batch of episodes), on the CPU.
fn score_speed(
    r: &RecipeReport,
    dataset: &crate::scenario::dataset::Dataset,
) -> anyhow::Result<()> {
    if dataset.held_out.is_empty() {
        return Ok(());
    }
    let model = ReferenceModel::<crate::training::Cpu>::load(&r.checkpoint, &Default::default())?
        .with_native();
    let prepared: Vec<PreparedScene> = dataset
        .held_out
        .iter()
        .map(|s| PreparedScene::new(s.clone(), &model.vocab, &model.config))
        .collect();
    let worlds: Vec<_> = prepared.iter().map(PreparedScene::world).collect();
    let t = std::time::Instant::now();
    let scores = model.score(&worlds);
    let s = t.elapsed().as_secs_f64();
    let agent_steps = scores.valid.iter().filter(|&&v| v).count();
    println!(
        "score: {} worlds x {} agents x {} steps x {} tokens in {:.3} s on the CPU ({:.0} agent-decisions/s)",
        scores.worlds,
        scores.agents,
        scores.steps,
        scores.tokens,
        s,
        agent_steps as f64 / s.max(1e-9)
    );
    Ok(())
}

fn summary(recipe: &Recipe, report: &RecipeReport) {
    let (config, r, tc) = (&report.config, &report.train, &recipe.train);
    match &report.vocabulary {
        VocabularySource::Given(p) => println!("vocabulary {} (given)", p.display()),
        VocabularySource::Cached(p) => println!("vocabulary {} (cached)", p.display()),
        VocabularySource::Built(p) => {
            println!(
                "vocabulary {} (built from the training scenes)",
                p.display()
            )
        }
    }
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
    for (name, h) in [("validation", &r.validation), ("held-out", &r.heldout)] {
        println!(
            "{name} ({} targets, {} from step 5 on): NLL {:.4}, accuracy {:.4}, top-5 {:.4}, accuracy from step 5 {:.4}",
            h.targets, h.future_targets, h.nll, h.accuracy, h.top5, h.future_accuracy
        );
    }
    let b = &r.baselines;
    println!(
        "held-out baselines: constant velocity {:.4} ({:.4} from step 5), repeating the last motion {:.4} ({:.4}), last token {:.4} ({:.4}), random {:.4} ({:.4})",
        b.constant_velocity,
        b.future_constant_velocity,
        b.repeat_last_motion,
        b.future_repeat_last_motion,
        b.last_token,
        b.future_last_token,
        b.random,
        b.future_random
    );
    println!(
        "held-out baseline NLL (probability on the guess fitted, the rest spread evenly): repeating the last motion {:.4}, constant velocity {:.4}",
        b.repeat_last_motion_nll, b.constant_velocity_nll
    );
    println!("teacher-forced checkpoint {}", r.checkpoint.display());
    if let Some(c) = &report.closed_loop {
        println!(
            "closed loop (CAT-K): {} steps in {:.1} s ({:.1} s rolling out)",
            c.step, c.seconds, c.rollout_seconds
        );
        for (name, h) in [("validation", &c.validation), ("held-out", &c.heldout)] {
            println!(
                "  {name}: NLL {:.4}, accuracy {:.4}, top-5 {:.4}",
                h.nll, h.accuracy, h.top5
            );
        }
    }
    if !report.trials.is_empty() {
        println!("sampling on the validation split (WOSAC 2025, closed loop):");
        for t in &report.trials {
            println!(
                "  temperature {:.2} top-{:<3} realism {:.4}  collision {:.3}  off-road {:.3}  minADE {:.2} m",
                t.sampling.temperature,
                t.sampling.top_k,
                t.realism,
                t.collision,
                t.offroad,
                t.min_ade
            );
        }
    }
    println!(
        "reference {} (sampling: temperature {:.2}, top-{})",
        report.checkpoint.display(),
        report.sampling.temperature,
        report.sampling.top_k
    );
}
