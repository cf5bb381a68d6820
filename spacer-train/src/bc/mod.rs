//! Behaviour cloning of the late-fusion policy from logged tokens.
//!
//! HR-PPO regularises PPO towards a behaviour-cloned policy of about twice the
//! policy's size (DESIGN.md section 1): [`late_fusion::LateFusion`] at width 128
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
//! dropout and box scaling follow the [`SimConfig`] given (DESIGN.md: dropout 0.5).
//!
//! **Training.** Cross entropy over the actor's logits (the critic is not trained),
//! AdamW, cosine schedule with warm-up, global gradient clipping, minibatches drawn
//! from a seeded generator; held-out accuracy and NLL on the fixed held-out scenes;
//! curves as CSV and PNG; checkpoint `bc.ckpt` written atomically and resumable.

pub mod late_fusion;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use spacer_core::observation::ObservationConfig;
use spacer_core::policy::PolicyDims;
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::BlobHeader;

use crate::error::{DataError, Location};
use crate::policy_file::PolicyFile;
use crate::scenario::Scene;
use crate::sim::{Action, DecisionBatch, SimAgent, SimConfig, SimError, Simulator};
use crate::tokenized::logged_pose;
use crate::training::checkpoint::{Checkpoint, record_from_bytes, record_to_bytes};
use crate::training::curves::{Curves, Panel};
use crate::training::{
    CosineSchedule, clip_global_norm, float_tensor, int_tensor, smoothed_cross_entropy, to_vec,
};
use late_fusion::LateFusion;

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
    /// Seed (initialisation, minibatches).
    pub seed: u64,
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
        }
    }
}

/// What the network is: width and dimensions (stored in the checkpoint).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BcShape {
    /// Encoder width.
    pub width: usize,
    /// Observation slots and action count.
    pub dims: PolicyDims,
    /// Observation radius (m).
    pub radius: f32,
}

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

#[derive(Serialize, Deserialize)]
struct Extra {
    config: BcConfig,
    curves: Curves,
}

/// A network from a checkpoint; `origin` names it in errors.
///
/// # Errors
/// [`DataError::Invalid`] naming `origin` when the shape or weights do not load.
pub fn from_checkpoint<B: Backend>(
    ck: &Checkpoint,
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
    let ck = Checkpoint::read(path, CHECKPOINT_KIND)?;
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
    /// The configuration does not fit.
    #[error("{0}")]
    Config(String),
    /// No training samples.
    #[error("no training samples: no scene has an agent valid at two consecutive decisions")]
    NoData,
}

/// Trains (or resumes, from `out_dir/bc.ckpt`) a late-fusion policy by behaviour
/// cloning.
///
/// # Errors
/// [`BcError`] for unreadable or mismatched checkpoints, write failures, empty data.
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend>(
    cfg: &BcConfig,
    shape: BcShape,
    vocab: &Vocabulary,
    train_data: &BcData,
    heldout: &BcData,
    out_dir: &Path,
    resume: bool,
    device: &B::Device,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<BcReport, BcError> {
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
    let ck_path = out_dir.join("bc.ckpt");
    let mut net = LateFusion::<B>::new(shape.dims, shape.width, cfg.seed, device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay)
        .init::<B, LateFusion<B>>();
    let mut step = 0usize;
    let mut curves = Curves::new(&[
        "train_loss",
        "train_accuracy",
        "heldout_nll",
        "heldout_accuracy",
    ]);
    if resume && ck_path.exists() {
        let ck = Checkpoint::read(&ck_path, CHECKPOINT_KIND)?;
        let (loaded, s, v) = from_checkpoint::<B>(&ck, &ck_path, device)?;
        if s != shape || v != *vocab {
            return Err(BcError::Config(format!(
                "{} holds another network shape or vocabulary",
                ck_path.display()
            )));
        }
        net = loaded;
        if !ck.optimizer.is_empty() {
            let rec = record_from_bytes::<B, _>(&ck.optimizer, device)
                .map_err(|e| DataError::invalid(&ck_path, Location::field(None, "optimizer"), e))?;
            optim = optim.load_record(rec);
        }
        if let Ok(extra) = serde_json::from_str::<Extra>(&ck.extra) {
            curves = extra.curves;
        }
        step = ck.step as usize;
    }
    let params = net.num_params();
    let schedule = CosineSchedule {
        peak: cfg.lr,
        warmup: cfg.warmup.max(1),
        total: cfg.steps,
        final_fraction: 0.05,
    };
    let first = step;
    let start = Instant::now();
    let (mut loss_sum, mut acc_sum, mut count) = (0.0f64, 0.0f64, 0usize);
    let n = train_data.len();
    let d = train_data.row_len;
    let k = shape.dims.actions();
    let mut held = BcStats::default();
    while step < cfg.steps {
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
        let mut grads = GradientsParams::from_grads(loss.backward(), &net);
        clip_global_norm(&net, &mut grads, cfg.clip_norm);
        net = optim.step(schedule.at(step), net, grads);
        step += 1;
        if lv.is_finite() {
            loss_sum += lv;
            acc_sum += correct as f64 / m as f64;
            count += 1;
        }
        crate::training::show_progress(progress, step, loss_sum, acc_sum, count);
        if step.is_multiple_of(cfg.eval_every.max(1)) || step == cfg.steps {
            held = evaluate(&net.valid(), heldout, device, usize::MAX);
            let mut row = vec![];
            if count > 0 {
                row.push(("train_loss", loss_sum / count as f64));
                row.push(("train_accuracy", acc_sum / count as f64));
            }
            if held.samples > 0 {
                row.push(("heldout_nll", held.nll));
                row.push(("heldout_accuracy", held.accuracy));
            }
            curves.push(step as u64, &row);
            (loss_sum, acc_sum, count) = (0.0, 0.0, 0);
            let ck = Checkpoint {
                kind: CHECKPOINT_KIND.into(),
                config: serde_json::to_string(&shape)
                    .map_err(|e| BcError::Config(e.to_string()))?,
                step: step as u64,
                model: record_to_bytes::<B, _>(net.clone().into_record())
                    .map_err(BcError::Config)?,
                optimizer: record_to_bytes::<B, _>(optim.to_record()).map_err(BcError::Config)?,
                extra: serde_json::to_string(&Extra {
                    config: cfg.clone(),
                    curves: curves.clone(),
                })
                .map_err(|e| BcError::Config(e.to_string()))?,
                files: vec![(
                    crate::reference::VOCABULARY_FILE.into(),
                    crate::vocab::vocabulary_bytes(vocab),
                )],
            };
            ck.write(&ck_path)?;
            curves.write_csv(&out_dir.join("bc_curves.csv"))?;
            curves.write_png(
                &out_dir.join("bc_curves.png"),
                &[
                    Panel {
                        title: "loss",
                        series: &["train_loss", "heldout_nll"],
                    },
                    Panel {
                        title: "next-token accuracy",
                        series: &["train_accuracy", "heldout_accuracy"],
                    },
                ],
            )?;
        }
    }
    let inner = net.valid();
    if step == first {
        held = evaluate(&inner, heldout, device, usize::MAX);
    }
    Ok(BcReport {
        params,
        step,
        steps_run: step - first,
        seconds: start.elapsed().as_secs_f64(),
        train: evaluate(&inner, train_data, device, 20_000),
        heldout: held,
        checkpoint: ck_path,
    })
}

use burn::tensor::ElementConversion;

#[cfg(test)]
mod tests;
