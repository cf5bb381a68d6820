//! Closed-loop fine-tuning of the reference model, CAT-K style ("closest among
//! top-K"): teacher forcing only ever shows the model logged histories, so in closed
//! loop it meets states it never saw and drifts; CAT-K shows it its own.
//!
//! Every `rollout_every` steps, `rollout_worlds` training scenes are rolled out in the
//! simulator from their logged history with the current model: at each decision every
//! controlled agent takes, among the model's `top_k` most likely tokens, the one whose
//! end pose is closest to the agent's *logged* pose 0.2 s later
//! ([`Vocabulary::nearest_among`]); the others replay their log. The rollouts stay
//! near the log but in states the model's own choices produced. The model is then
//! trained, teacher-forced as in [`super::train`], on these rollouts: inputs are the
//! rolled-out poses and executed tokens, targets the tokens the agents took (for
//! controlled agents the closest-among-top-K token: the model's own way back towards
//! the log; for replayed objects their logged motion). Checkpoints fall on rollout
//! boundaries (`eval_every` is a multiple of `rollout_every`), so a resumed run
//! regenerates exactly the rollouts an uninterrupted one used.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use spacer_core::policy::argmax;
use spacer_core::tokenizer::{Token, Vocabulary};

use super::agent::{HistoryCache, world_history};
use super::graph::{WorldInput, build_graph};
use super::map::MapTokens;
use super::model::{GraphTensors, ReferenceNet};
use super::native::NativeReference;
use super::train::{EvalStats, RefSplits, TrainError, evaluate, restore, save};
use super::{CHECKPOINT_KIND, PreparedScene, ReferenceConfig, ReferenceModel, crop_agents};
use crate::scenario::dataset::{Drawn, SceneSampler};
use crate::sim::{
    Action, DecisionBatch, RowIndex, SceneIndex, SimAgent, SimConfig, SimError, Simulator, World,
    derive_seed,
};
use crate::tokenized::{TokenizedAgent, logged_pose};
use crate::training::curves::Panel;
use crate::training::{
    CosineSchedule, Run, RunOptions, RunSpec, clip_global_norm, smoothed_cross_entropy,
};

/// CAT-K fine-tuning settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatkConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Candidates per decision: the model's most likely tokens.
    pub top_k: u16,
    /// New rollouts every this many steps.
    pub rollout_every: usize,
    /// Worlds rolled out each time.
    pub rollout_worlds: usize,
    /// Controlled agents per rolled-out world at most.
    pub max_controlled: usize,
    /// Rollouts per step.
    pub batch_scenes: usize,
    /// Agents kept per rollout in a step.
    pub max_agents: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Final learning rate as a fraction of the peak.
    pub final_lr_fraction: f64,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Global gradient-norm limit.
    pub clip_norm: f32,
    /// Label smoothing.
    pub label_smoothing: f32,
    /// Validation and checkpoint every this many steps (a multiple of
    /// `rollout_every`).
    pub eval_every: usize,
    /// Seed.
    pub seed: u64,
    /// Probability that a rolled-out world is a real scene.
    pub real_fraction: f64,
    /// Draw real recordings equally often.
    pub balance_recordings: bool,
}

impl CatkConfig {
    /// Defaults for a model size (`nano` on a CPU: 300 steps, rollouts of 8 worlds
    /// every 10 steps).
    pub fn for_model(name: &str) -> Self {
        let mini = name == "mini";
        Self {
            steps: if mini { 4000 } else { 300 },
            top_k: 32,
            rollout_every: 10,
            rollout_worlds: if mini { 32 } else { 8 },
            max_controlled: 64,
            batch_scenes: if mini { 8 } else { 2 },
            max_agents: if mini { 64 } else { 16 },
            lr: if mini { 1e-4 } else { 3e-4 },
            warmup: 20,
            final_lr_fraction: 0.1,
            weight_decay: 0.01,
            clip_norm: 1.0,
            label_smoothing: 0.1,
            eval_every: if mini { 500 } else { 100 },
            seed: 0,
            real_fraction: 0.5,
            balance_recordings: true,
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::Config(format!("closed loop: {m}")));
        if self.top_k == 0 {
            return bad("top_k must be at least 1");
        }
        if self.rollout_every == 0 || self.rollout_worlds == 0 || self.rollout_worlds > 4096 {
            return bad("rollout_every must be positive and rollout_worlds in 1..=4096");
        }
        if !self.eval_every.is_multiple_of(self.rollout_every) || self.eval_every == 0 {
            return bad("eval_every must be a positive multiple of rollout_every");
        }
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return bad("lr must be in (0, 1]");
        }
        if self.batch_scenes == 0 || self.max_agents == 0 || self.max_controlled == 0 {
            return bad("batch_scenes, max_agents and max_controlled must be positive");
        }
        if !(0.0..=1.0).contains(&self.real_fraction) || !(0.0..1.0).contains(&self.label_smoothing)
        {
            return bad("real_fraction must be a probability, label_smoothing in [0, 1)");
        }
        if !(self.clip_norm > 0.0 && self.clip_norm.is_finite()) {
            return bad("clip_norm must be positive and finite");
        }
        Ok(())
    }
}

/// The logits of every agent of every world at decision step `t` from the native
/// pass (only the receptive window is run).
pub fn next_logits_native(
    native: &NativeReference,
    config: &ReferenceConfig,
    vocab: &Vocabulary,
    worlds: &[WorldInput<'_>],
    t: usize,
) -> Vec<Vec<Option<Vec<f32>>>> {
    let first = t.saturating_sub(config.receptive_steps());
    let cut: Vec<WorldInput<'_>> = worlds
        .iter()
        .map(|w| WorldInput {
            first,
            steps: t + 1,
            ..*w
        })
        .collect();
    let g = build_graph(&cut, vocab, &config.graph);
    let k = vocab.len();
    let logits = if g.agent_nodes > 0 {
        native.logits(&g)
    } else {
        Vec::new()
    };
    worlds
        .iter()
        .enumerate()
        .map(|(wi, w)| {
            (0..w.agents.len())
                .map(|ai| {
                    let n = g.node(wi, ai, t)?;
                    (g.node_mask[n] > 0.0).then(|| logits[n * k..(n + 1) * k].to_vec())
                })
                .collect()
        })
        .collect()
}

/// Drives the controlled agents with the closest-among-top-K rule.
struct ClosestAmongTopK<'a> {
    native: &'a NativeReference,
    config: &'a ReferenceConfig,
    vocab: &'a Vocabulary,
    top_k: usize,
    maps: &'a HashMap<String, Arc<MapTokens>>,
    history: HistoryCache,
}

impl SimAgent for ClosestAmongTopK<'_> {
    fn name(&self) -> String {
        "closest-among-top-k".into()
    }

    fn reset(&mut self, worlds: &[World], _: &RowIndex) -> Result<(), SimError> {
        self.history.reset(worlds.len());
        Ok(())
    }

    fn act(&mut self, batch: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError> {
        let Some(first) = batch.worlds.first() else {
            return Ok(());
        };
        let t = first.step() / 2;
        self.history.update(batch.worlds, self.vocab, t);
        let maps: Vec<Arc<MapTokens>> = batch
            .worlds
            .iter()
            .map(|w| {
                self.maps
                    .get(&w.scene().id)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(MapTokens::from_scene(w.scene(), &self.config.map)))
            })
            .collect();
        let inputs: Vec<WorldInput<'_>> = (0..batch.worlds.len())
            .map(|w| WorldInput::new(&maps[w], self.history.get(w).0, t + 1))
            .collect();
        let logits = next_logits_native(self.native, self.config, self.vocab, &inputs, t);
        for (row, action) in actions.iter_mut().enumerate() {
            let (w, slot) = batch.rows.locate(row);
            let world = &batch.worlds[w];
            let track = world.agent_track(slot);
            let Some(ai) = self.history.get(w).1.iter().position(|&i| i == track) else {
                continue;
            };
            let Some(l) = logits[w].get(ai).and_then(Option::as_ref) else {
                continue;
            };
            let kind = world.agent_kind(slot);
            let now = world.agent_state(slot).pose;
            let target = world
                .index()
                .log(track, world.step() + 2)
                .filter(|s| s.valid)
                .map(logged_pose);
            let index = match target {
                Some(target) => {
                    let mut order: Vec<u16> = (0..l.len() as u16).collect();
                    let k = self.top_k.min(order.len()).max(1);
                    order.select_nth_unstable_by(k - 1, |a, b| {
                        l[*b as usize].total_cmp(&l[*a as usize]).then(a.cmp(b))
                    });
                    order.truncate(k);
                    self.vocab
                        .nearest_among(kind, now, target, &order)
                        .map_or(argmax(l) as u16, |(i, _)| i)
                }
                None => argmax(l) as u16,
            };
            let token = self
                .vocab
                .get(kind, index as usize)
                .copied()
                .unwrap_or(Token::STILL);
            *action = Action::Token { index, token };
        }
        Ok(())
    }
}

/// One rolled-out world as a training sequence.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// The scene's map tokens.
    pub map: Arc<MapTokens>,
    /// Every agent's rolled-out poses and tokens.
    pub agents: Vec<TokenizedAgent>,
    /// Decision steps.
    pub steps: usize,
}

/// Rolls `scenes` out with the closest-among-top-K rule (one world each) and
/// returns them as training sequences.
///
/// # Errors
/// [`SimError`] when a scene cannot be simulated.
#[allow(clippy::too_many_arguments)]
pub fn closed_loop_rollouts(
    native: &NativeReference,
    config: &ReferenceConfig,
    vocab: &Vocabulary,
    indexes: &[Arc<SceneIndex>],
    maps: &HashMap<String, Arc<MapTokens>>,
    sim: SimConfig,
    top_k: usize,
    seed: u64,
) -> Result<Vec<Rollout>, SimError> {
    let mut agent = ClosestAmongTopK {
        native,
        config,
        vocab,
        top_k,
        maps,
        history: HistoryCache::default(),
    };
    let mut simulator = Simulator::from_indexes(indexes, sim)?;
    simulator.run(&mut agent, seed)?;
    Ok(simulator
        .worlds()
        .iter()
        .map(|w| {
            let t = w.step() / 2;
            let (agents, _) = world_history(w, vocab, t);
            Rollout {
                map: maps
                    .get(&w.scene().id)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(MapTokens::from_scene(w.scene(), &config.map))),
                agents,
                steps: t,
            }
        })
        .collect())
}

/// What fine-tuning did.
#[derive(Clone, Debug, PartialEq)]
pub struct CatkReport {
    /// Step reached.
    pub step: usize,
    /// Steps run by this call.
    pub steps_run: usize,
    /// Seconds of this call.
    pub seconds: f64,
    /// Of which rolling out.
    pub rollout_seconds: f64,
    /// Validation statistics at the end (teacher-forced).
    pub validation: EvalStats,
    /// Held-out statistics at the end (teacher-forced).
    pub heldout: EvalStats,
    /// The checkpoint.
    pub checkpoint: std::path::PathBuf,
}

const SERIES: [&str; 5] = [
    "train_loss",
    "train_accuracy",
    "validation_nll",
    "validation_accuracy",
    "lr",
];

/// Fine-tunes `start` closed loop (see the module docs), writing
/// `options.out_dir/reference.ckpt`.
///
/// # Errors
/// [`TrainError`] from the simulator, the run skeleton or a diverging loss.
pub fn fine_tune<B: AutodiffBackend>(
    start: ReferenceModel<B>,
    cfg: &CatkConfig,
    data: &RefSplits,
    options: &RunOptions,
    device: &B::Device,
) -> Result<CatkReport, TrainError> {
    cfg.validate()?;
    let config = start.config.clone();
    let vocab = start.vocab.clone();
    let real_scenes: Vec<crate::scenario::Scene> =
        data.train.iter().map(|p| p.scene.clone()).collect();
    let sampler = SceneSampler::new(
        &real_scenes,
        data.synthetic.len(),
        cfg.real_fraction,
        cfg.balance_recordings,
    );
    if sampler.is_empty() {
        return Err(TrainError::NoData);
    }
    let scene_of = |d: Drawn| -> &PreparedScene {
        match d {
            Drawn::Real(i) => &data.train[i],
            Drawn::Synthetic(i) => &data.synthetic[i],
        }
    };
    let sim = SimConfig {
        max_controlled: cfg.max_controlled,
        ..SimConfig::default()
    };
    let spec = RunSpec {
        kind: CHECKPOINT_KIND,
        file_stem: "reference",
        curves_stem: "curves",
        label: "closed-loop",
        total_steps: cfg.steps as u64,
        eval_every: cfg.eval_every as u64,
        series: &SERIES,
        panels: &[
            Panel {
                title: "loss on closed-loop rollouts",
                series: &["train_loss", "validation_nll"],
            },
            Panel {
                title: "next-token accuracy",
                series: &["train_accuracy", "validation_accuracy"],
            },
        ],
        resumable_changes: &["steps"],
    };
    #[derive(Serialize)]
    struct RunConfig<'a> {
        model: &'a ReferenceConfig,
        closed_loop: &'a CatkConfig,
    }
    let (mut run, resumed) = Run::start(
        &spec,
        options,
        &RunConfig {
            model: &config,
            closed_loop: cfg,
        },
    )?;
    let mut net: ReferenceNet<B> = start.net;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay)
        .init::<B, ReferenceNet<B>>();
    if let Some(r) = &resumed {
        let path = run.checkpoint_path().to_path_buf();
        let loaded;
        (loaded, optim) = restore(&r.checkpoint, &path, optim, device)?;
        net = loaded.net;
    }
    let schedule = CosineSchedule {
        peak: cfg.lr,
        warmup: cfg.warmup.max(1),
        total: cfg.steps,
        final_fraction: cfg.final_lr_fraction,
    };
    let mut maps: HashMap<String, Arc<MapTokens>> = HashMap::new();
    let mut indexes: HashMap<Drawn, Arc<SceneIndex>> = HashMap::new();
    let mut pool: Vec<Rollout> = Vec::new();
    let (mut loss_sum, mut acc_sum, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut rollout_seconds = 0.0;
    let model_of = |net: &ReferenceNet<B>| ReferenceModel::<B::InnerBackend> {
        net: net.valid(),
        config: config.clone(),
        vocab: vocab.clone(),
        device: device.clone(),
        sampling: start.sampling,
        native: None,
    };
    while !run.is_done() {
        let step = run.step() as usize;
        if pool.is_empty() || step.is_multiple_of(cfg.rollout_every) {
            let t0 = Instant::now();
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, &[step as u64, 0xca7]));
            let mut batch = Vec::new();
            for _ in 0..cfg.rollout_worlds {
                let Some(d) = sampler.draw(&mut rng) else {
                    break;
                };
                let p = scene_of(d);
                maps.entry(p.scene.id.clone())
                    .or_insert_with(|| Arc::new(p.map.clone()));
                let index = match indexes.get(&d) {
                    Some(i) => Arc::clone(i),
                    None => {
                        let i = Arc::new(SceneIndex::new(Arc::new(p.scene.clone()), &sim)?);
                        indexes.insert(d, Arc::clone(&i));
                        i
                    }
                };
                batch.push(index);
            }
            let native = NativeReference::new(net.valid().plain());
            pool = closed_loop_rollouts(
                &native,
                &config,
                &vocab,
                &batch,
                &maps,
                sim,
                cfg.top_k as usize,
                derive_seed(cfg.seed, &[step as u64, 0x5eed]),
            )?;
            pool.retain(|r| r.agents.iter().any(|a| a.token_valid.iter().any(|&v| v)));
            rollout_seconds += t0.elapsed().as_secs_f64();
            if pool.is_empty() {
                return Err(TrainError::NoData);
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, &[step as u64, 0xba7]));
        let crops: Vec<(usize, Vec<TokenizedAgent>)> = (0..cfg.batch_scenes)
            .map(|_| {
                let i = rng.random_range(0..pool.len());
                let agents = &pool[i].agents;
                let centre = rng.random_range(0..agents.len());
                (i, crop_agents(agents, centre, cfg.max_agents))
            })
            .collect();
        let worlds: Vec<WorldInput<'_>> = crops
            .iter()
            .map(|(i, agents)| WorldInput::new(&pool[*i].map, agents, pool[*i].steps))
            .collect();
        let g = build_graph(&worlds, &vocab, &config.graph);
        if g.target_mask.iter().any(|&m| m > 0.0) {
            let tensors = GraphTensors::<B>::new(&g, device);
            let logits = net.forward(&tensors);
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
                cfg.label_smoothing,
            );
            let value: f64 = crate::training::to_vec(loss.clone().inner())[0] as f64;
            if !value.is_finite() {
                return Err(TrainError::Diverged { step, loss: value });
            }
            let correct = pred
                .iter()
                .zip(&g.target)
                .zip(&g.target_mask)
                .filter(|((p, t), m)| **m > 0.0 && p == t)
                .count() as f64;
            let known: f64 = g.target_mask.iter().map(|&m| m as f64).sum();
            let mut grads = GradientsParams::from_grads(loss.backward(), &net);
            let norm = clip_global_norm(&net, &mut grads, cfg.clip_norm);
            if !norm.is_finite() {
                return Err(TrainError::Diverged {
                    step,
                    loss: norm as f64,
                });
            }
            net = optim.step(schedule.at(step), net, grads);
            loss_sum += value;
            acc_sum += correct / known.max(1.0);
            count += 1;
        }
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
            let val = evaluate(&model_of(&net).with_native(), &data.validation);
            let mut row = vec![("lr", schedule.at(step))];
            if count > 0 {
                row.push(("train_loss", loss_sum / count as f64));
                row.push(("train_accuracy", acc_sum / count as f64));
            }
            if val.targets > 0 {
                row.push(("validation_nll", val.nll));
                row.push(("validation_accuracy", val.accuracy));
            }
            run.record(&row);
            (loss_sum, acc_sum, count) = (0.0, 0.0, 0);
            let m = ReferenceModel::<B> {
                net: net.clone(),
                config: config.clone(),
                vocab: vocab.clone(),
                device: device.clone(),
                sampling: start.sampling,
                native: None,
            };
            save(&mut run, &m, &optim)?;
            // The next step starts a new rollout window from the saved model.
            pool.clear();
        }
    }
    run.finish();
    let final_model = model_of(&net).with_native();
    Ok(CatkReport {
        step: run.step() as usize,
        steps_run: run.steps_this_run() as usize,
        seconds: run.seconds(),
        rollout_seconds,
        validation: evaluate(&final_model, &data.validation),
        heldout: evaluate(&final_model, &data.heldout),
        checkpoint: run.checkpoint_path().to_path_buf(),
    })
}
