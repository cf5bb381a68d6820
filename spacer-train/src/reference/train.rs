//! Teacher-forced next-token training of the reference model, its evaluation on the
//! fixed held-out split, and the baselines it must beat.
//!
//! One optimizer step: draw `batch_scenes` training scenes (a real one with
//! probability `real_fraction`, else a synthetic one; real recordings equally likely
//! ([`SceneSampler`]); from a generator seeded by the run seed and the step, so a
//! resumed run draws what an uninterrupted one would), crop each to the `max_agents` agents nearest a randomly
//! drawn centre agent, run one teacher-forced pass over all their decision steps,
//! and minimise the label-smoothed (0.1) cross entropy of every known next token.
//! AdamW, cosine schedule with linear warm-up, global gradient-norm clipping.
//!
//! Every `eval_every` steps and at the end the validation scenes are scored (all
//! agents, no crop), the curves are written (`curves.csv`, `curves.png`) and the
//! checkpoint `reference.ckpt` (model, optimizer state, step, config, curves,
//! vocabulary) is replaced atomically ([`crate::training::Run`]); resuming continues
//! from it. The held-out scenes are scored once, at the end.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use spacer_core::geometry::Pose;
use spacer_core::tokenizer::Vocabulary;

use super::graph::WorldInput;
use super::model::{GraphTensors, ReferenceNet};
use super::{
    CHECKPOINT_KIND, PreparedScene, ReferenceConfig, ReferenceModel, Sampling, crop_agents,
};
use crate::error::DataError;
use crate::scenario::dataset::{Drawn, SceneSampler};
use crate::training::checkpoint::{record_from_bytes, record_to_bytes};
use crate::training::curves::Panel;
use crate::training::{
    CosineSchedule, Run, RunError, RunOptions, RunSpec, clip_global_norm, module_is_finite,
    smoothed_cross_entropy,
};

/// The first decision step the simulator asks for (step 10 of 91): accuracies are
/// also reported from here on ("future").
pub const FIRST_FUTURE_STEP: usize = 5;

/// Optimisation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer steps in total.
    pub steps: usize,
    /// Scenes per step.
    pub batch_scenes: usize,
    /// Agents kept per scene (nearest to a random centre agent).
    pub max_agents: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// Final learning rate as a fraction of the peak.
    pub final_lr_fraction: f64,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Global gradient-norm limit.
    pub clip_norm: f32,
    /// Label smoothing of the cross entropy.
    pub label_smoothing: f32,
    /// Evaluate, plot and checkpoint every this many steps.
    pub eval_every: usize,
    /// Seed of the initialisation and of the batch draws.
    pub seed: u64,
    /// Probability that a drawn scene is a real one when there are real and
    /// synthetic training scenes (else every scene is equally likely).
    #[serde(default = "default_real_fraction")]
    pub real_fraction: f64,
    /// Draw each real recording equally often ([`SceneSampler`]) instead of each real
    /// scene.
    #[serde(default = "default_balance")]
    pub balance_recordings: bool,
}

fn default_real_fraction() -> f64 {
    0.5
}

fn default_balance() -> bool {
    true
}

impl TrainConfig {
    /// Defaults for a model configuration name (`mini` takes bigger batches).
    ///
    /// `nano` trains for 800 steps: on the shipped real scenes plus 500 synthetic
    /// ones, 2,000-step runs reached their best held-out accuracy by steps 600-800
    /// and then fell as training accuracy kept rising (34 real training scenes are
    /// few).
    pub fn for_model(name: &str) -> Self {
        let mini = name == "mini";
        Self {
            steps: if mini { 20_000 } else { 800 },
            batch_scenes: if mini { 8 } else { 2 },
            max_agents: if mini { 64 } else { 16 },
            lr: if mini { 5e-4 } else { 1e-3 },
            warmup: if mini { 500 } else { 100 },
            final_lr_fraction: 0.05,
            weight_decay: 0.01,
            clip_norm: 1.0,
            label_smoothing: 0.1,
            eval_every: if mini { 1000 } else { 200 },
            seed: 0,
            real_fraction: 0.5,
            balance_recordings: true,
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::Config(m.to_string()));
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return bad("lr must be in (0, 1]");
        }
        if self.batch_scenes == 0 || self.batch_scenes > 4096 {
            return bad("batch_scenes must be in 1..=4096");
        }
        if self.max_agents == 0 || self.max_agents > 4096 {
            return bad("max_agents must be in 1..=4096");
        }
        if !(0.0..=1.0).contains(&self.real_fraction) {
            return bad("real_fraction must be a probability");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing must be in [0, 1)");
        }
        if !(self.clip_norm > 0.0 && self.clip_norm.is_finite()) {
            return bad("clip_norm must be positive and finite");
        }
        if !(0.0..=1.0).contains(&self.final_lr_fraction) {
            return bad("final_lr_fraction must be in [0, 1]");
        }
        Ok(())
    }

    fn schedule(&self) -> CosineSchedule {
        CosineSchedule {
            peak: self.lr,
            warmup: self.warmup.max(1),
            total: self.steps,
            final_fraction: self.final_lr_fraction,
        }
    }
}

/// Next-token statistics over a set of scenes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalStats {
    /// Known next tokens scored.
    pub targets: usize,
    /// Mean negative log-likelihood (nats, no smoothing).
    pub nll: f64,
    /// Fraction of targets that are the most likely token.
    pub accuracy: f64,
    /// Fraction of targets among the 5 most likely tokens.
    pub top5: f64,
    /// Targets at decision steps from [`FIRST_FUTURE_STEP`] on.
    pub future_targets: usize,
    /// Accuracy on those.
    pub future_accuracy: f64,
}

/// Next-token accuracy of simple predictors on the same targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Targets scored.
    pub targets: usize,
    /// Constant velocity: the logged state at step `2t` moved on for 0.2 s at its
    /// logged velocity, heading kept, tokenized from the agent's pose at decision
    /// step `t` ([`Vocabulary::nearest`], as the targets are).
    pub constant_velocity: f64,
    /// Repeating the last token (standing still when there is none).
    pub last_token: f64,
    /// A uniformly random token (seeded).
    pub random: f64,
    /// Repeating the last 0.2 s of motion (same speed and turn rate) of the model's
    /// own poses ([`super::graph::repeat_last_motion`], the model's anchor; the
    /// logged velocity when there is no earlier pose).
    pub repeat_last_motion: f64,
    /// Constant velocity from [`FIRST_FUTURE_STEP`] on.
    pub future_constant_velocity: f64,
    /// Last token from [`FIRST_FUTURE_STEP`] on.
    pub future_last_token: f64,
    /// Random from [`FIRST_FUTURE_STEP`] on.
    pub future_random: f64,
    /// Repeating the last motion, from [`FIRST_FUTURE_STEP`] on.
    pub future_repeat_last_motion: f64,
    /// The NLL (nats) of "repeat the last motion" made a distribution: probability
    /// `p` on its token and `1 - p` spread evenly over the other tokens, `p` fitted on
    /// these very targets (`p` = its accuracy, the best such `p`;
    /// [`floor_nll`]). A model that only learned the anchor cannot do better.
    #[serde(default)]
    pub repeat_last_motion_nll: f64,
    /// Constant velocity made a distribution the same way.
    #[serde(default)]
    pub constant_velocity_nll: f64,
}

/// The mean NLL (nats) on targets of a predictor that puts probability `accuracy` on
/// its one guess and spreads the rest evenly over the other `k - 1` tokens: the
/// best NLL any distribution of that shape reaches when the guess is right on a
/// share `accuracy` of the targets.
pub fn floor_nll(accuracy: f64, k: usize) -> f64 {
    let a = accuracy.clamp(0.0, 1.0);
    let rest = (k.max(2) - 1) as f64;
    let term = |w: f64, p: f64| if w > 0.0 { -w * p.ln() } else { 0.0 };
    term(a, a) + term(1.0 - a, (1.0 - a) / rest)
}

/// What a training run did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Parameters of the model.
    pub params: usize,
    /// Step reached.
    pub step: usize,
    /// Steps run by this call (less than `step` when resumed).
    pub steps_run: usize,
    /// Wall time of this call (s).
    pub seconds: f64,
    /// Of which building graphs on the CPU (s).
    pub graph_seconds: f64,
    /// Of which forward, backward and optimizer steps (s).
    pub compute_seconds: f64,
    /// Of which held-out evaluation and checkpoints (s).
    pub eval_seconds: f64,
    /// Mean training loss (smoothed cross entropy) over the last evaluation period.
    pub train_loss: f64,
    /// Mean training next-token accuracy over the last evaluation period.
    pub train_accuracy: f64,
    /// Validation statistics at the end.
    pub validation: EvalStats,
    /// Held-out statistics at the end.
    pub heldout: EvalStats,
    /// Baselines on the held-out scenes.
    pub baselines: Baselines,
    /// Where the checkpoint is.
    pub checkpoint: PathBuf,
}

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run skeleton refused (changed configuration on resume, non-finite model).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The backend cannot be used.
    #[error(transparent)]
    Backend(#[from] crate::training::BackendError),
    /// The simulator refused (closed-loop stages).
    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),
    /// A closed-loop evaluation failed.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// The configuration does not fit (vocabulary size, resumed config, ...).
    #[error("{0}")]
    Config(String),
    /// The loss or the gradient norm became NaN or infinite.
    #[error("training diverged at step {step}: {loss} (lower the learning rate)")]
    Diverged {
        /// Step.
        step: usize,
        /// The loss or gradient norm.
        loss: f64,
    },
    /// No training scene has a known next token.
    #[error("no training data: none of the training scenes has a tokenizable agent")]
    NoData,
}

/// Scores `scenes` (all agents, one scene per pass) with `model`.
pub fn evaluate<B: Backend>(model: &ReferenceModel<B>, scenes: &[PreparedScene]) -> EvalStats {
    let k = model.vocab.len();
    let (mut n, mut nll, mut hit, mut top5, mut fut, mut fut_hit) =
        (0usize, 0.0, 0usize, 0usize, 0usize, 0usize);
    for s in scenes {
        let g = model.graph(&[s.world()]);
        if g.agent_nodes == 0 || g.target_mask.iter().all(|&m| m == 0.0) {
            continue;
        }
        let logp = model.log_probs_vec(&g);
        let steps = s.tokens.steps.max(1);
        for (node, (&m, &target)) in g.target_mask.iter().zip(&g.target).enumerate() {
            if m == 0.0 {
                continue;
            }
            let row = &logp[node * k..(node + 1) * k];
            let tgt = target as usize;
            let lt = row[tgt];
            let rank = row.iter().filter(|&&v| v > lt).count();
            n += 1;
            nll -= lt as f64;
            hit += (rank == 0) as usize;
            top5 += (rank < 5) as usize;
            if node % steps >= FIRST_FUTURE_STEP {
                fut += 1;
                fut_hit += (rank == 0) as usize;
            }
        }
    }
    let d = |a: usize, b: usize| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    EvalStats {
        targets: n,
        nll: if n > 0 { nll / n as f64 } else { 0.0 },
        accuracy: d(hit, n),
        top5: d(top5, n),
        future_targets: fut,
        future_accuracy: d(fut_hit, fut),
    }
}

/// The baselines' accuracy on the known next tokens of `scenes`.
pub fn baselines(scenes: &[PreparedScene], vocab: &Vocabulary, seed: u64) -> Baselines {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = vocab.len();
    let mut hits = [0usize; 8];
    let (mut n, mut fut) = (0usize, 0usize);
    for s in scenes {
        for a in &s.tokens.agents {
            let track = &s.scene.tracks[a.track];
            for t in 0..a.steps() {
                if !(a.pose_valid[t] && a.token_valid[t]) {
                    continue;
                }
                let target = a.tokens[t];
                let p = a.poses[t];
                let st = &track.states[2 * t];
                let (vx, vy) = if st.vx.is_finite() && st.vy.is_finite() {
                    (st.vx, st.vy)
                } else {
                    (0.0, 0.0)
                };
                // Constant velocity from the logged state and velocity; and repeating
                // the last 0.2 s of motion of the model's own poses.
                let repeat = if t > 0 && a.pose_valid[t - 1] {
                    super::graph::repeat_last_motion(vocab, a.kind, a.poses[t - 1], p)
                } else {
                    vocab
                        .nearest(a.kind, p, Pose::new(p.x + 0.2 * vx, p.y + 0.2 * vy, p.yaw))
                        .0
                };
                let cv_log_pose = if st.valid {
                    Pose::new(st.x + 0.2 * vx, st.y + 0.2 * vy, st.heading)
                } else {
                    Pose::new(p.x + 0.2 * vx, p.y + 0.2 * vy, p.yaw)
                };
                let cv_log = vocab.nearest(a.kind, p, cv_log_pose).0;
                let last = if t > 0 && a.token_valid[t - 1] {
                    a.tokens[t - 1]
                } else {
                    0
                };
                let random = rng.random_range(0..k) as u16;
                let future = t >= FIRST_FUTURE_STEP;
                n += 1;
                fut += future as usize;
                for (i, guess) in [cv_log, last, random, repeat].into_iter().enumerate() {
                    if guess == target {
                        hits[i] += 1;
                        if future {
                            hits[4 + i] += 1;
                        }
                    }
                }
            }
        }
    }
    let d = |a: usize, b: usize| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    Baselines {
        repeat_last_motion_nll: floor_nll(d(hits[3], n), k),
        constant_velocity_nll: floor_nll(d(hits[0], n), k),
        targets: n,
        constant_velocity: d(hits[0], n),
        last_token: d(hits[1], n),
        random: d(hits[2], n),
        repeat_last_motion: d(hits[3], n),
        future_constant_velocity: d(hits[4], fut),
        future_last_token: d(hits[5], fut),
        future_random: d(hits[6], fut),
        future_repeat_last_motion: d(hits[7], fut),
    }
}

const SERIES: [&str; 6] = [
    "train_loss",
    "validation_nll",
    "train_accuracy",
    "validation_accuracy",
    "constvel_accuracy",
    "lr",
];

/// The prepared scenes of a dataset's splits.
#[derive(Clone, Debug, Default)]
pub struct RefSplits {
    /// Real training scenes.
    pub train: Vec<PreparedScene>,
    /// Synthetic training scenes.
    pub synthetic: Vec<PreparedScene>,
    /// Validation scenes (the curves, early stopping).
    pub validation: Vec<PreparedScene>,
    /// Held-out scenes (reported at the end).
    pub heldout: Vec<PreparedScene>,
}

impl RefSplits {
    /// Tokenizes the splits of `dataset` for `config`.
    pub fn prepare(
        dataset: &crate::scenario::dataset::Dataset,
        vocab: &Vocabulary,
        config: &ReferenceConfig,
    ) -> Self {
        use rayon::prelude::*;
        let prep = |v: &[crate::scenario::Scene]| -> Vec<PreparedScene> {
            v.par_iter()
                .map(|s| PreparedScene::new(s.clone(), vocab, config))
                .collect()
        };
        Self {
            train: prep(&dataset.train),
            synthetic: prep(&dataset.synthetic),
            validation: prep(&dataset.validation),
            heldout: prep(&dataset.held_out),
        }
    }
}

/// Trains (or resumes) a reference model; see the module docs.
///
/// # Errors
/// [`TrainError`] for unreadable or mismatched checkpoints, write failures, an
/// inconsistent config, a diverging loss, or no usable training data.
pub fn train<B: AutodiffBackend>(
    config: &ReferenceConfig,
    tc: &TrainConfig,
    vocab: &Vocabulary,
    data: &RefSplits,
    options: &RunOptions,
    device: &B::Device,
) -> Result<TrainReport, TrainError> {
    tc.validate()?;
    let has_tokens = |s: &&PreparedScene| {
        s.tokens
            .agents
            .iter()
            .any(|a| a.token_valid.iter().any(|&v| v))
    };
    let real: Vec<&PreparedScene> = data.train.iter().filter(has_tokens).collect();
    let synthetic: Vec<&PreparedScene> = data.synthetic.iter().filter(has_tokens).collect();
    if real.is_empty() && synthetic.is_empty() {
        return Err(TrainError::NoData);
    }
    let real_scenes: Vec<crate::scenario::Scene> = real.iter().map(|p| p.scene.clone()).collect();
    let sampler = SceneSampler::new(
        &real_scenes,
        synthetic.len(),
        tc.real_fraction,
        tc.balance_recordings,
    );
    let spec = RunSpec {
        kind: CHECKPOINT_KIND,
        file_stem: "reference",
        curves_stem: "curves",
        label: "train-ref",
        total_steps: tc.steps as u64,
        eval_every: tc.eval_every as u64,
        series: &SERIES,
        panels: &[
            Panel {
                title: "loss",
                series: &["train_loss", "validation_nll"],
            },
            Panel {
                title: "next-token accuracy",
                series: &["train_accuracy", "validation_accuracy", "constvel_accuracy"],
            },
        ],
        resumable_changes: &["train.steps", "train.eval_every"],
    };
    #[derive(Serialize)]
    struct RunConfig<'a> {
        model: &'a ReferenceConfig,
        train: &'a TrainConfig,
    }
    let (mut run, resumed) = Run::start(
        &spec,
        options,
        &RunConfig {
            model: config,
            train: tc,
        },
    )?;
    let mut model = ReferenceModel::<B>::new(config.clone(), vocab.clone(), device, tc.seed)
        .map_err(TrainError::Config)?;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(tc.weight_decay)
        .init::<B, ReferenceNet<B>>();
    if let Some(r) = &resumed {
        let path = run.checkpoint_path().to_path_buf();
        let loaded;
        (loaded, optim) = restore(&r.checkpoint, &path, optim, device)?;
        if loaded.vocab != *vocab {
            return Err(TrainError::Config(format!(
                "{} uses another vocabulary",
                path.display()
            )));
        }
        model.net = loaded.net;
    }
    let params = model.num_params();
    let schedule = tc.schedule();
    let eval_model = |net: &ReferenceNet<B>| ReferenceModel::<B::InnerBackend> {
        net: net.valid(),
        config: config.clone(),
        vocab: vocab.clone(),
        device: device.clone(),
        sampling: Sampling::default(),
        native: None,
    };
    let base = baselines(&data.validation, vocab, tc.seed);
    let (mut loss_sum, mut acc_sum, mut count) = (0.0f64, 0.0f64, 0usize);
    let (mut last_loss, mut last_acc) = (f64::NAN, f64::NAN);
    let (mut graph_seconds, mut compute_seconds, mut eval_seconds) = (0.0, 0.0, 0.0);
    while !run.is_done() {
        let step = run.step() as usize;
        let mut rng =
            ChaCha8Rng::seed_from_u64(tc.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let crops: Vec<(&PreparedScene, Vec<crate::tokenized::TokenizedAgent>)> =
            (0..tc.batch_scenes.max(1))
                .filter_map(|_| {
                    let scene = match sampler.draw(&mut rng)? {
                        Drawn::Real(i) => real[i],
                        Drawn::Synthetic(i) => synthetic[i],
                    };
                    let agents = &scene.tokens.agents;
                    let centre = rng.random_range(0..agents.len());
                    Some((scene, crop_agents(agents, centre, tc.max_agents)))
                })
                .collect();
        let worlds: Vec<WorldInput<'_>> = crops
            .iter()
            .map(|(s, agents)| WorldInput::new(&s.map, agents, s.tokens.steps))
            .collect();
        let t0 = Instant::now();
        let g = model.graph(&worlds);
        graph_seconds += t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        if g.target_mask.iter().any(|&m| m > 0.0) {
            let tensors = GraphTensors::<B>::new(&g, device);
            let logits = model.net.forward(&tensors);
            let pred: Vec<i64> = logits
                .clone()
                .inner()
                .argmax(1)
                .into_data()
                .convert::<i64>()
                .into_vec::<i64>()
                .unwrap_or_default();
            let loss = smoothed_cross_entropy(
                logits,
                tensors.target.clone(),
                tensors.target_mask.clone(),
                tc.label_smoothing,
            );
            let loss_value = loss.clone().into_scalar().elem_f64();
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged {
                    step,
                    loss: loss_value,
                });
            }
            let correct = pred
                .iter()
                .zip(&g.target)
                .zip(&g.target_mask)
                .filter(|((p, t), m)| **m > 0.0 && p == t)
                .count() as f64;
            let known: f64 = g.target_mask.iter().map(|&m| m as f64).sum();
            let mut grads = GradientsParams::from_grads(loss.backward(), &model.net);
            let norm = clip_global_norm(&model.net, &mut grads, tc.clip_norm);
            if !norm.is_finite() {
                return Err(TrainError::Diverged {
                    step,
                    loss: norm as f64,
                });
            }
            model.net = optim.step(schedule.at(step), model.net, grads);
            loss_sum += loss_value;
            acc_sum += correct / known.max(1.0);
            count += 1;
        }
        compute_seconds += t1.elapsed().as_secs_f64();
        let msg = if count > 0 {
            format!(
                "loss {:.3} acc {:.3}",
                loss_sum / count as f64,
                acc_sum / count as f64
            )
        } else {
            String::new()
        };
        run.advance(1, &msg);
        if run.is_eval_step() {
            let t2 = Instant::now();
            if count > 0 {
                last_loss = loss_sum / count as f64;
                last_acc = acc_sum / count as f64;
            }
            (loss_sum, acc_sum, count) = (0.0, 0.0, 0);
            let val = evaluate(&eval_model(&model.net).with_native(), &data.validation);
            let mut row = vec![
                ("train_loss", last_loss),
                ("train_accuracy", last_acc),
                ("lr", schedule.at(step)),
            ];
            if val.targets > 0 {
                row.push(("validation_nll", val.nll));
                row.push(("validation_accuracy", val.accuracy));
                row.push(("constvel_accuracy", base.constant_velocity));
            }
            run.record(&row);
            save(&mut run, &model, &optim)?;
            eval_seconds += t2.elapsed().as_secs_f64();
        }
    }
    run.finish();
    let final_model = eval_model(&model.net).with_native();
    Ok(TrainReport {
        params,
        step: run.step() as usize,
        steps_run: run.steps_this_run() as usize,
        seconds: run.seconds(),
        graph_seconds,
        compute_seconds,
        eval_seconds,
        train_loss: last_loss,
        train_accuracy: last_acc,
        validation: evaluate(&final_model, &data.validation),
        heldout: evaluate(&final_model, &data.heldout),
        baselines: baselines(&data.heldout, vocab, tc.seed),
        checkpoint: run.checkpoint_path().to_path_buf(),
    })
}

trait ElemF64 {
    fn elem_f64(self) -> f64;
}

impl<E: burn::tensor::ElementConversion> ElemF64 for E {
    fn elem_f64(self) -> f64 {
        self.elem::<f64>()
    }
}

/// The model of a resumed run's `checkpoint` (read from `path`), and `optim` with the
/// optimizer state it holds (teacher forcing and closed-loop fine-tuning share it).
///
/// # Errors
/// [`TrainError`] naming `path` when the model or the optimizer state is unreadable.
pub(super) fn restore<B: AutodiffBackend, O: Optimizer<ReferenceNet<B>, B>>(
    checkpoint: &crate::training::checkpoint::Checkpoint,
    path: &std::path::Path,
    mut optim: O,
    device: &B::Device,
) -> Result<(ReferenceModel<B>, O), TrainError> {
    let loaded = ReferenceModel::<B>::from_checkpoint(checkpoint, path, device)?;
    if !checkpoint.optimizer.is_empty() {
        let rec = record_from_bytes::<B, _>(&checkpoint.optimizer, device).map_err(|e| {
            DataError::invalid(path, crate::error::Location::field(None, "optimizer"), e)
        })?;
        optim = optim.load_record(rec);
    }
    Ok((loaded, optim))
}

/// Saves `model` and `optim`'s state as `run`'s checkpoint, refusing a non-finite
/// model (teacher forcing and closed-loop fine-tuning share it).
///
/// # Errors
/// [`TrainError`] for a non-finite model or an unwritable checkpoint.
pub(super) fn save<B: AutodiffBackend, O: Optimizer<ReferenceNet<B>, B>>(
    run: &mut Run,
    model: &ReferenceModel<B>,
    optim: &O,
) -> Result<(), TrainError> {
    if !module_is_finite(&model.net) {
        return Err(RunError::NonFinite {
            what: "the reference model".into(),
        }
        .into());
    }
    let optim_bytes = record_to_bytes::<B, _>(optim.to_record()).map_err(TrainError::Config)?;
    let ck = model
        .to_checkpoint(run.step(), String::new())
        .map_err(TrainError::Config)?;
    run.save(ck.config, ck.model, optim_bytes, &(), ck.files)?;
    Ok(())
}
