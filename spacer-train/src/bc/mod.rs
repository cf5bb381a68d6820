//! Behaviour cloning of the late-fusion policy from logged tokens.
//!
//! HR-PPO regularises PPO towards a behaviour-cloned policy of twice the
//! policy's width (docs/design.md section 1.1): [`LateFusion`] at width 128
//! (204,105 parameters at K = 200). The same code at width 64 gives a normal policy
//! (65,289 parameters) exported as a weights blob ([`policy_file`]) that
//! `spacer info --weights` and every policy consumer read.
//!
//! **Data.** The observations are the simulator's own ([`crate::sim`], i.e.
//! [`spacer_core::observation::build`]): every scene is run with every controlled
//! agent replaying its log, and at each of the 40 decisions (steps 10, 12, ..., 88)
//! each acting agent contributes its observation and, as the target, the token that
//! best moves it from its logged pose to its logged pose 0.2 s later
//! ([`Vocabulary::nearest`], the one-step form of the tokenizer's encoding). Goal
//! dropout and box scaling follow the [`SimConfig`] given (docs/design.md section
//! 1.2: dropout 0.5).
//!
//! **Training** ([`train`], on the [`crate::training::Run`] skeleton): cross entropy
//! over the actor's logits (the critic is not trained), AdamW, cosine schedule with
//! warm-up, global gradient clipping, minibatches drawn from a seeded generator;
//! validation accuracy and NLL every `eval_every` steps (the curves), held-out ones at
//! the end; checkpoint `bc.ckpt` written atomically and resumable. [`clone_policy`]
//! does all of it from a [`Dataset`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use spacer_core::observation::ObservationConfig;
use spacer_core::policy::{HIDDEN, PolicyDims};
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::BlobHeader;

use crate::error::{DataError, Location};
use crate::late_fusion::{LateFusion, LateFusionShape};
use crate::policy_file::PolicyFile;
use crate::scenario::Scene;
use crate::scenario::dataset::Dataset;
use crate::sim::{Action, DecisionBatch, SimAgent, SimConfig, SimError, Simulator};
use crate::tokenized::logged_pose;
use crate::training::checkpoint::{record_from_bytes, record_to_bytes};
use crate::training::curves::Panel;
use crate::training::{
    BackendError, BackendJob, CosineSchedule, DeviceKind, Run, RunError, RunOptions, RunSpec,
    clip_global_norm, float_tensor, int_tensor, module_is_finite, run_on, smoothed_cross_entropy,
    to_vec,
};

/// The checkpoint kind of a behaviour-cloned policy.
pub const CHECKPOINT_KIND: &str = "bc";

/// Observations and target tokens.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BcData {
    /// Floats per observation.
    pub row_len: usize,
    /// `[samples * row_len]`.
    pub observations: Vec<f32>,
    /// `[samples]`.
    pub targets: Vec<u16>,
}

impl BcData {
    /// Samples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// Records observations and logged tokens while every agent replays its log.
struct Recorder<'a> {
    vocab: &'a Vocabulary,
    observation: ObservationConfig,
    data: BcData,
}

impl SimAgent for Recorder<'_> {
    fn name(&self) -> String {
        "bc-recorder".into()
    }

    fn observation(&self) -> Option<ObservationConfig> {
        Some(self.observation)
    }

    fn act(&mut self, batch: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError> {
        let obs = batch.require_observations()?;
        self.data.row_len = obs.row_len();
        for (row, action) in actions.iter_mut().enumerate() {
            *action = Action::Log;
            let (world, slot) = batch.locate(row);
            if !world.is_acting(slot) {
                continue;
            }
            let track = world.agent_track(slot);
            let step = world.step();
            let index = world.index();
            let (Some(now), Some(next)) = (index.log(track, step), index.log(track, step + 2))
            else {
                continue;
            };
            if !(now.valid && next.valid) {
                continue;
            }
            let from = world.agent_state(slot).pose;
            let (token, _) = self
                .vocab
                .nearest(world.agent_kind(slot), from, logged_pose(next));
            self.data.observations.extend_from_slice(obs.row(row));
            self.data.targets.push(token);
        }
        Ok(())
    }
}

/// Observations and logged tokens of every controlled agent at every decision of
/// `scenes` (see the module docs), one log-replay episode per scene, `seed` drawing
/// the goal dropout.
///
/// # Errors
/// [`SimError`] when a scene cannot be simulated.
pub fn collect(
    scenes: &[Scene],
    vocab: &Vocabulary,
    config: &SimConfig,
    seed: u64,
) -> Result<BcData, SimError> {
    let mut rec = Recorder {
        vocab,
        observation: config.observation,
        data: BcData::default(),
    };
    // A few worlds at a time keeps the observation buffer small.
    for chunk in scenes.chunks(8) {
        let arcs: Vec<Arc<Scene>> = chunk.iter().cloned().map(Arc::new).collect();
        let mut sim = Simulator::new(&arcs, *config)?;
        sim.run(&mut rec, seed)?;
    }
    rec.data.row_len = config.observation.len();
    Ok(rec.data)
}

/// Settings of a behaviour-cloning run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BcConfig {
    /// Encoder width (64: the policy itself; 128: HR-PPO's reference).
    pub width: usize,
    /// Optimizer steps.
    pub steps: usize,
    /// Samples per minibatch.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Global gradient-norm limit.
    pub clip_norm: f32,
    /// Label smoothing of the cross entropy.
    pub label_smoothing: f32,
    /// Evaluate, plot and checkpoint every this many steps.
    pub eval_every: usize,
    /// Seed (initialisation, minibatches, goal dropout).
    pub seed: u64,
    /// Probability that an agent's goal is hidden in its observations.
    pub goal_dropout: f32,
    /// Scale of the observed box sizes (GPUDrive: 0.7).
    pub box_scale: f32,
}

impl Default for BcConfig {
    fn default() -> Self {
        Self {
            width: 128,
            steps: 3000,
            batch: 256,
            lr: 1e-3,
            warmup: 100,
            weight_decay: 1e-4,
            clip_norm: 1.0,
            label_smoothing: 0.0,
            eval_every: 250,
            seed: 0,
            goal_dropout: 0.5,
            box_scale: 1.0,
        }
    }
}

impl BcConfig {
    /// The simulator settings the observations are recorded with.
    pub fn sim(&self) -> SimConfig {
        SimConfig {
            goal_dropout: self.goal_dropout,
            box_scale: self.box_scale,
            ..SimConfig::default()
        }
    }

    /// The network shape for a vocabulary of `tokens` per kind.
    pub fn shape(&self, tokens: usize) -> LateFusionShape {
        LateFusionShape {
            width: self.width,
            dims: PolicyDims {
                actions: tokens as u16,
                ..PolicyDims::default()
            },
            radius: self.sim().observation.radius,
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`BcError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), BcError> {
        let bad = |m: &str| Err(BcError::Config(m.to_string()));
        if self.width == 0 || self.width > 1024 {
            return bad("width must be in 1..=1024");
        }
        if self.batch == 0 || self.batch > 1 << 20 {
            return bad("batch must be in 1..=1048576");
        }
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return bad("lr must be in (0, 1]");
        }
        if !(self.clip_norm > 0.0 && self.clip_norm.is_finite()) {
            return bad("clip_norm must be positive and finite");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing must be in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.goal_dropout) {
            return bad("goal_dropout must be a probability");
        }
        if !(self.box_scale > 0.0 && self.box_scale <= 2.0) {
            return bad("box_scale must be in (0, 2]");
        }
        Ok(())
    }
}

/// The checkpoint's model configuration.
pub type BcShape = LateFusionShape;

/// Next-token statistics of a policy on a data set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BcStats {
    /// Samples.
    pub samples: usize,
    /// Mean negative log-likelihood of the targets (nats).
    pub nll: f64,
    /// Fraction of samples whose target is the most likely token.
    pub accuracy: f64,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct BcReport {
    /// Parameters.
    pub params: usize,
    /// Step reached.
    pub step: usize,
    /// Steps run by this call.
    pub steps_run: usize,
    /// Wall time (s).
    pub seconds: f64,
    /// Training-set statistics at the end (on up to 20,000 samples).
    pub train: BcStats,
    /// Validation statistics at the end.
    pub validation: BcStats,
    /// Held-out statistics at the end.
    pub heldout: BcStats,
    /// The checkpoint.
    pub checkpoint: PathBuf,
}

/// Scores `data` with `net` (no gradients), in chunks.
pub fn evaluate<B: Backend>(
    net: &LateFusion<B>,
    data: &BcData,
    device: &B::Device,
    limit: usize,
) -> BcStats {
    let n = data.len().min(limit);
    let k = net.dims().actions();
    let (mut nll, mut hit) = (0.0f64, 0usize);
    for start in (0..n).step_by(1024) {
        let end = (start + 1024).min(n);
        let obs = float_tensor::<B, 2>(
            data.observations[start * data.row_len..end * data.row_len].to_vec(),
            [end - start, data.row_len],
            device,
        );
        let (logits, _) = net.forward(obs);
        let logp = to_vec(burn::tensor::activation::log_softmax(logits, 1));
        for (i, &t) in data.targets[start..end].iter().enumerate() {
            let row = &logp[i * k..(i + 1) * k];
            let lt = row[t as usize];
            nll -= lt as f64;
            hit += row.iter().all(|&v| v <= lt) as usize;
        }
    }
    BcStats {
        samples: n,
        nll: if n > 0 { nll / n as f64 } else { 0.0 },
        accuracy: if n > 0 { hit as f64 / n as f64 } else { 0.0 },
    }
}

/// A network from a checkpoint; `origin` names it in errors.
///
/// # Errors
/// [`DataError::Invalid`] naming `origin` when the shape or weights do not load.
pub fn from_checkpoint<B: Backend>(
    ck: &crate::training::checkpoint::Checkpoint,
    origin: &Path,
    device: &B::Device,
) -> Result<(LateFusion<B>, BcShape, Vocabulary), DataError> {
    let bad =
        |field: &str, msg: String| DataError::invalid(origin, Location::field(None, field), msg);
    let shape: BcShape =
        serde_json::from_str(&ck.config).map_err(|e| bad("config", e.to_string()))?;
    let vocab = crate::vocab::parse_vocabulary(
        ck.file(crate::reference::VOCABULARY_FILE)
            .ok_or_else(|| bad("files", "no vocabulary attached".into()))?,
        origin,
    )?;
    let record = record_from_bytes::<B, _>(&ck.model, device)
        .map_err(|e| bad("model", format!("weights do not fit the shape: {e}")))?;
    let net = LateFusion::<B>::new(shape.dims, shape.width, 0, device).load_record(record);
    Ok((net, shape, vocab))
}

/// Loads a behaviour-cloned network saved by [`train`].
///
/// # Errors
/// [`DataError`] naming the file.
pub fn load<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(LateFusion<B>, BcShape, Vocabulary), DataError> {
    let ck = crate::training::checkpoint::Checkpoint::read(path, CHECKPOINT_KIND)?;
    from_checkpoint(&ck, path, device)
}

/// A width-64 network as a policy weights blob (the core's layout, `vocab` inside).
///
/// # Errors
/// [`DataError::Invalid`] when the width is not 64 or the parts do not fit.
pub fn policy_file<B: Backend>(
    net: &LateFusion<B>,
    vocab: &Vocabulary,
    radius: f32,
    trained_steps: u64,
) -> Result<PolicyFile, DataError> {
    let params = net
        .to_flat()
        .map_err(|e| DataError::invalid(Path::new("<memory>"), Location::file(), e))?;
    PolicyFile::from_parts(
        &BlobHeader::new(net.dims(), radius, trained_steps),
        vocab,
        &params,
    )
}

/// Why behaviour cloning stopped.
#[derive(Debug, thiserror::Error)]
pub enum BcError {
    /// A file could not be read or written.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run skeleton refused (changed configuration on resume, non-finite model).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The simulator could not record observations.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The backend cannot be used.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The configuration does not fit.
    #[error("{0}")]
    Config(String),
    /// No training samples.
    #[error("no training samples: no scene has an agent valid at two consecutive decisions")]
    NoData,
    /// The loss became NaN or infinite.
    #[error("training diverged at step {step}: the loss is {loss} (lower the learning rate)")]
    Diverged {
        /// Step.
        step: usize,
        /// The loss.
        loss: f64,
    },
}

/// The recorded observations of a dataset's splits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BcSplits {
    /// Training samples (real and synthetic training scenes).
    pub train: BcData,
    /// Validation samples: the curves.
    pub validation: BcData,
    /// Held-out samples: reported at the end.
    pub heldout: BcData,
}

impl BcSplits {
    /// Records the logged driving of every split of `dataset`.
    ///
    /// # Errors
    /// [`SimError`] when a scene cannot be simulated.
    pub fn record(
        dataset: &Dataset,
        vocab: &Vocabulary,
        config: &BcConfig,
    ) -> Result<Self, SimError> {
        let sim = config.sim();
        let training: Vec<Scene> = dataset.training().cloned().collect();
        Ok(Self {
            train: collect(&training, vocab, &sim, config.seed)?,
            validation: collect(&dataset.validation, vocab, &sim, config.seed ^ 2)?,
            heldout: collect(&dataset.held_out, vocab, &sim, config.seed ^ 1)?,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct NoState {}

const SERIES: [&str; 4] = [
    "train_loss",
    "train_accuracy",
    "validation_nll",
    "validation_accuracy",
];

/// Trains (or resumes, from `options.out_dir/bc.ckpt`) a late-fusion policy by
/// behaviour cloning on `data`, with `vocab`'s tokens.
///
/// # Errors
/// [`BcError`] for unreadable or mismatched checkpoints, write failures, empty data,
/// a diverging loss.
pub fn train<B: AutodiffBackend>(
    cfg: &BcConfig,
    vocab: &Vocabulary,
    data: &BcSplits,
    options: &RunOptions,
    device: &B::Device,
) -> Result<BcReport, BcError> {
    cfg.validate()?;
    let shape = cfg.shape(vocab.len());
    let train_data = &data.train;
    if train_data.is_empty() {
        return Err(BcError::NoData);
    }
    if train_data.row_len != shape.dims.observation_len() {
        return Err(BcError::Config(format!(
            "observations have {} floats, the network reads {}",
            train_data.row_len,
            shape.dims.observation_len()
        )));
    }
    let spec = RunSpec {
        kind: CHECKPOINT_KIND,
        file_stem: "bc",
        curves_stem: "bc_curves",
        label: "bc",
        total_steps: cfg.steps as u64,
        eval_every: cfg.eval_every as u64,
        series: &SERIES,
        panels: &[
            Panel {
                title: "loss",
                series: &["train_loss", "validation_nll"],
            },
            Panel {
                title: "next-token accuracy",
                series: &["train_accuracy", "validation_accuracy"],
            },
        ],
        resumable_changes: &["steps", "eval_every"],
    };
    let (mut run, resumed) = Run::start(&spec, options, cfg)?;
    let mut net = LateFusion::<B>::new(shape.dims, shape.width, cfg.seed, device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay)
        .init::<B, LateFusion<B>>();
    if let Some(r) = &resumed {
        let path = run.checkpoint_path().to_path_buf();
        let (loaded, s, v) = from_checkpoint::<B>(&r.checkpoint, &path, device)?;
        if s != shape || v != *vocab {
            return Err(BcError::Config(format!(
                "{} holds another network shape or vocabulary",
                path.display()
            )));
        }
        net = loaded;
        if !r.checkpoint.optimizer.is_empty() {
            let rec = record_from_bytes::<B, _>(&r.checkpoint.optimizer, device)
                .map_err(|e| DataError::invalid(&path, Location::field(None, "optimizer"), e))?;
            optim = optim.load_record(rec);
        }
    }
    let params = net.num_params();
    let schedule = CosineSchedule {
        peak: cfg.lr,
        warmup: cfg.warmup.max(1),
        total: cfg.steps,
        final_fraction: 0.05,
    };
    let (mut loss_sum, mut acc_sum, mut count) = (0.0f64, 0.0f64, 0usize);
    let n = train_data.len();
    let d = train_data.row_len;
    let k = shape.dims.actions();
    while !run.is_done() {
        let step = run.step() as usize;
        let mut rng =
            ChaCha8Rng::seed_from_u64(cfg.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let m = cfg.batch.min(n).max(1);
        let mut obs = Vec::with_capacity(m * d);
        let mut tgt = Vec::with_capacity(m);
        for _ in 0..m {
            let i = rng.random_range(0..n);
            obs.extend_from_slice(&train_data.observations[i * d..(i + 1) * d]);
            tgt.push(train_data.targets[i] as i64);
        }
        let (logits, _) = net.forward(float_tensor::<B, 2>(obs, [m, d], device));
        let pred: Vec<f32> = to_vec(logits.clone().inner());
        let correct = tgt
            .iter()
            .enumerate()
            .filter(|(r, t)| {
                let row = &pred[r * k..(r + 1) * k];
                spacer_core::policy::argmax(row) as i64 == **t
            })
            .count();
        let loss = smoothed_cross_entropy(
            logits,
            int_tensor(tgt, device),
            float_tensor(vec![1.0; m], [m], device),
            cfg.label_smoothing,
        );
        let lv: f64 = loss.clone().into_scalar().elem::<f64>();
        if !lv.is_finite() {
            return Err(BcError::Diverged { step, loss: lv });
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &net);
        let norm = clip_global_norm(&net, &mut grads, cfg.clip_norm);
        if !norm.is_finite() {
            return Err(BcError::Diverged {
                step,
                loss: norm as f64,
            });
        }
        net = optim.step(schedule.at(step), net, grads);
        loss_sum += lv;
        acc_sum += correct as f64 / m as f64;
        count += 1;
        run.advance(
            1,
            &format!(
                "loss {:.3} acc {:.3}",
                loss_sum / count as f64,
                acc_sum / count as f64
            ),
        );
        if run.is_eval_step() {
            let val = evaluate(&net.valid(), &data.validation, device, usize::MAX);
            let mut row = vec![
                ("train_loss", loss_sum / count as f64),
                ("train_accuracy", acc_sum / count as f64),
            ];
            if val.samples > 0 {
                row.push(("validation_nll", val.nll));
                row.push(("validation_accuracy", val.accuracy));
            }
            run.record(&row);
            (loss_sum, acc_sum, count) = (0.0, 0.0, 0);
            if !module_is_finite(&net) {
                return Err(RunError::NonFinite {
                    what: "the cloned policy".into(),
                }
                .into());
            }
            run.save(
                serde_json::to_string(&shape).map_err(|e| BcError::Config(e.to_string()))?,
                record_to_bytes::<B, _>(net.clone().into_record()).map_err(BcError::Config)?,
                record_to_bytes::<B, _>(optim.to_record()).map_err(BcError::Config)?,
                &NoState {},
                vec![(
                    crate::reference::VOCABULARY_FILE.into(),
                    crate::vocab::vocabulary_bytes(vocab),
                )],
            )?;
        }
    }
    run.finish();
    let inner = net.valid();
    Ok(BcReport {
        params,
        step: run.step() as usize,
        steps_run: run.steps_this_run() as usize,
        seconds: run.seconds(),
        train: evaluate(&inner, train_data, device, 20_000),
        validation: evaluate(&inner, &data.validation, device, usize::MAX),
        heldout: evaluate(&inner, &data.heldout, device, usize::MAX),
        checkpoint: run.checkpoint_path().to_path_buf(),
    })
}

/// Behaviour cloning from a dataset, start to end: record the splits' logged
/// driving, train on `device`, and for width 64 write the policy blob to `export`.
///
/// # Errors
/// [`BcError`] from recording, training or writing.
pub fn clone_policy(
    cfg: &BcConfig,
    dataset: &Dataset,
    vocab: &Vocabulary,
    options: &RunOptions,
    device: DeviceKind,
    export: Option<&Path>,
) -> Result<(BcReport, BcSplits), BcError> {
    if export.is_some() && cfg.width != HIDDEN {
        return Err(BcError::Config(format!(
            "a policy blob has the core's width {HIDDEN}; this network has width {}",
            cfg.width
        )));
    }
    let data = BcSplits::record(dataset, vocab, cfg)?;
    struct Job<'a> {
        cfg: &'a BcConfig,
        vocab: &'a Vocabulary,
        data: &'a BcSplits,
        options: &'a RunOptions,
    }
    impl BackendJob for Job<'_> {
        type Output = BcReport;
        type Error = BcError;
        fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<BcReport, BcError> {
            train::<B>(self.cfg, self.vocab, self.data, self.options, &device)
        }
    }
    let report = run_on(
        device,
        Job {
            cfg,
            vocab,
            data: &data,
            options,
        },
    )?;
    if let Some(path) = export {
        let (net, shape, v) =
            load::<crate::training::Cpu>(&report.checkpoint, &Default::default())?;
        policy_file(&net, &v, shape.radius, report.step as u64)?.write(path)?;
    }
    Ok((report, data))
}

#[cfg(test)]
mod tests;
