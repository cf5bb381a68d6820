//! The training loop (see the module docs of [`super`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use spacer_core::policy::{Policy, PolicyDims, Selection, init_params};
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::BlobHeader;

use super::anchor::{AnchorScores, Reference, score_cloned};
use super::config::{LearnerKind, PpoConfig};
use super::learner::{BurnLearner, LearnError, Learner, NativeLearner, UpdateInput, UpdateStats};
use super::rollout::{Experience, collect, gae};
use crate::error::{DataError, Location};
use crate::eval::{EvalConfig, evaluate};
use crate::late_fusion::native::NativeNet;
use crate::metrics::MetricsConfig;
use crate::policy_file::PolicyFile;
use crate::reference::ReferenceModel;
use crate::scenario::Scene;
use crate::scenario::dataset::{Dataset, Drawn, SceneSampler};
use crate::sim::{PolicyAgent, SceneIndex, SimError, Simulator, derive_seed};
use crate::training::curves::Panel;
use crate::training::{BackendError, Cpu, DeviceKind, Run, RunError, RunOptions, RunSpec};

/// The checkpoint kind of a PPO run.
pub const CHECKPOINT_KIND: &str = "ppo";

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum PpoError {
    /// A file could not be read or written.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run skeleton refused.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The simulator refused.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The learner failed.
    #[error(transparent)]
    Learn(#[from] LearnError),
    /// The backend cannot be used.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The evaluation failed.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// The inputs do not fit together.
    #[error("{0}")]
    Config(String),
}

/// What a run trains with, besides its configuration.
#[derive(Debug)]
pub struct TrainInputs<'a> {
    /// The scenes.
    pub dataset: &'a Dataset,
    /// The tokens (the reference's, when there is one).
    pub vocab: Vocabulary,
    /// The reference model (SPACeR).
    pub reference: Option<ReferenceModel<Cpu>>,
    /// The behaviour-cloned policy, width 128 (HR-PPO).
    pub bc: Option<NativeNet>,
    /// Starting parameters of the policy (a width-64 weights blob, e.g. a cloned
    /// policy's export) instead of the seed's orthogonal initialisation; the value
    /// head starts from what the blob holds.
    pub init: Option<Vec<f32>>,
}

/// Stop early (tests: a run interrupted after its checkpoint).
#[derive(Clone, Copy, Debug, Default)]
pub struct Control {
    /// Stop after this many updates in this process.
    pub max_updates: Option<u64>,
}

/// Where the time of the run went (seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Drawing scenes and setting up worlds.
    pub setup: f64,
    /// Simulating and acting (observations, the core's forward pass, stepping).
    pub rollout: f64,
    /// Scoring the batch with the anchor (reference or cloned policy).
    pub anchor: f64,
    /// PPO updates.
    pub learn: f64,
    /// Held-out evaluations.
    pub eval: f64,
    /// Checkpoints.
    pub checkpoint: f64,
}

impl Timing {
    /// Everything.
    pub fn total(&self) -> f64 {
        self.setup + self.rollout + self.anchor + self.learn + self.eval + self.checkpoint
    }

    /// Everything but evaluations and checkpoints (the training itself).
    pub fn training(&self) -> f64 {
        self.setup + self.rollout + self.anchor + self.learn
    }
}

/// A held-out evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// WOSAC realism meta-metric.
    pub realism: f64,
    /// minADE (m).
    pub min_ade: f64,
    /// WOSAC simulated collision rate.
    pub collision: f64,
    /// WOSAC simulated off-road rate.
    pub offroad: f64,
    /// The simulator's goal rate.
    pub goal: f64,
}

/// The learner's state in a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct State {
    updates: u64,
    agent_steps: u64,
    samples: u64,
    timing: Timing,
    last_eval: Option<HeldOut>,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct PpoReport {
    /// Updates in all.
    pub updates: u64,
    /// Updates by this process.
    pub updates_run: u64,
    /// 10 Hz agent-steps trained on in all.
    pub agent_steps: u64,
    /// Samples (agent decisions) trained on in all.
    pub samples: u64,
    /// Where the time went (whole run, resumed parts included).
    pub timing: Timing,
    /// The last held-out evaluation.
    pub held_out: Option<HeldOut>,
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// The final policy blob.
    pub policy: PathBuf,
}

/// The series of the curves.
pub const SERIES: [&str; 18] = [
    "return",
    "goal_rate",
    "collision_rate",
    "offroad_rate",
    "ref_logp",
    "kl_anchor",
    "entropy",
    "clip_fraction",
    "approx_kl",
    "explained_variance",
    "value_loss",
    "agent_steps_per_s",
    "heldout_realism",
    "heldout_min_ade",
    "heldout_collision",
    "heldout_offroad",
    "heldout_goal",
    "samples",
];

const PANELS: [Panel<'static>; 6] = [
    Panel {
        title: "mean task return per agent",
        series: &["return"],
    },
    Panel {
        title: "training episodes: goal / collision / off-road",
        series: &["goal_rate", "collision_rate", "offroad_rate"],
    },
    Panel {
        title: "anchor: log pi_ref of taken actions, KL",
        series: &["ref_logp", "kl_anchor"],
    },
    Panel {
        title: "policy: entropy, clip fraction, explained variance",
        series: &["entropy", "clip_fraction", "explained_variance"],
    },
    Panel {
        title: "held-out WOSAC 2025: realism, collision, off-road, goal",
        series: &[
            "heldout_realism",
            "heldout_collision",
            "heldout_offroad",
            "heldout_goal",
        ],
    },
    Panel {
        title: "throughput (agent-steps/s)",
        series: &["agent_steps_per_s"],
    },
];

/// 1 - Var(returns - values) / Var(returns).
pub fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    let n = values.len().max(1) as f64;
    let mean = |v: &mut dyn Iterator<Item = f64>| v.sum::<f64>() / n;
    let mr = mean(&mut returns.iter().map(|&x| x as f64));
    let var_r = mean(&mut returns.iter().map(|&x| (x as f64 - mr).powi(2)));
    let md = mean(&mut returns.iter().zip(values).map(|(&r, &v)| (r - v) as f64));
    let var_d = mean(
        &mut returns
            .iter()
            .zip(values)
            .map(|(&r, &v)| ((r - v) as f64 - md).powi(2)),
    );
    if var_r > 0.0 {
        1.0 - var_d / var_r
    } else {
        f64::NAN
    }
}

/// The policy blob of `params`.
///
/// # Errors
/// [`DataError`] when the parts do not fit.
pub fn policy_blob(
    params: &[f32],
    dims: PolicyDims,
    vocab: &Vocabulary,
    radius: f32,
    agent_steps: u64,
) -> Result<PolicyFile, DataError> {
    PolicyFile::from_parts(&BlobHeader::new(dims, radius, agent_steps), vocab, params)
}

/// Rolls the policy `params` out on the held-out scenes and scores it (WOSAC 2025).
///
/// # Errors
/// [`PpoError`] from the simulator or the metrics.
pub fn evaluate_held_out(
    file: &PolicyFile,
    scenes: &[Arc<Scene>],
    rollouts: usize,
    seed: u64,
) -> Result<HeldOut, PpoError> {
    let metrics = MetricsConfig::challenge_2025().map_err(|e| PpoError::Config(e.to_string()))?;
    let config = EvalConfig::new(metrics, rollouts, seed);
    let mut agent = PolicyAgent::new(
        file.clone(),
        Selection::Sample {
            temperature: 1.0,
            top_k: 0,
        },
        seed,
    );
    let e = evaluate("policy", scenes, &mut agent, &config, |_| {})?;
    let b = &e.scores.average.bucketed;
    Ok(HeldOut {
        realism: b.realism_meta_metric,
        min_ade: b.min_ade,
        collision: b.simulated_collision_rate,
        offroad: b.simulated_offroad_rate,
        goal: e.events.goal,
    })
}

/// Trains a policy (see [`super`]).
///
/// # Errors
/// [`PpoError`] from any part.
pub fn train(
    config: &PpoConfig,
    inputs: TrainInputs<'_>,
    options: &RunOptions,
    device: DeviceKind,
    control: Control,
) -> Result<PpoReport, PpoError> {
    config
        .validate("configuration")
        .map_err(|e| PpoError::Config(e.to_string()))?;
    let TrainInputs {
        dataset,
        vocab,
        reference,
        bc,
        init: init_params_given,
    } = inputs;
    if config.needs_reference() && reference.is_none() {
        return Err(PpoError::Config(
            "method spacer needs a reference model (--reference CKPT, from `spacer train-ref`)"
                .into(),
        ));
    }
    if config.needs_bc() && bc.is_none() {
        return Err(PpoError::Config(
            "method hr-ppo needs a behaviour-cloned policy (--bc CKPT, from `spacer bc --width 128`)"
                .into(),
        ));
    }
    if let Some(r) = &reference
        && r.vocab != vocab
    {
        return Err(PpoError::Config(
            "the reference model's vocabulary differs from the policy's".into(),
        ));
    }
    let dims = PolicyDims {
        actions: vocab.len() as u16,
        ..PolicyDims::default()
    };
    if let Some(b) = &bc
        && b.dims() != dims
    {
        return Err(PpoError::Config(
            "the cloned policy's dimensions differ from the policy's".into(),
        ));
    }
    let sim_config = config.sim();
    let training: Vec<Arc<Scene>> = dataset.train.iter().cloned().map(Arc::new).collect();
    let synthetic: Vec<Arc<Scene>> = dataset.synthetic.iter().cloned().map(Arc::new).collect();
    let sampler = SceneSampler::new(
        &dataset.train,
        synthetic.len(),
        config.env.real_fraction,
        config.env.balance_recordings,
    );
    if sampler.is_empty() {
        return Err(PpoError::Config("no training scenes".into()));
    }
    let held: Vec<Arc<Scene>> = dataset.held_out.iter().cloned().map(Arc::new).collect();

    let spec = RunSpec {
        kind: CHECKPOINT_KIND,
        file_stem: "ppo",
        curves_stem: "curves",
        label: config.method.name(),
        total_steps: config.run.agent_steps,
        eval_every: u64::MAX,
        series: &SERIES,
        panels: &PANELS,
        resumable_changes: &["run.agent_steps", "run.eval_every", "run.checkpoint_every"],
    };
    #[derive(Serialize)]
    struct RunConfig<'a> {
        #[serde(flatten)]
        config: &'a PpoConfig,
        alpha: f32,
        beta: f32,
        device: DeviceKind,
        /// FNV-1a hash of the starting parameters when they were given.
        init: Option<String>,
    }
    let (mut run, resumed) = Run::start(
        &spec,
        options,
        &RunConfig {
            config,
            alpha: config.alpha(),
            beta: config.beta(),
            device,
            init: init_params_given.as_deref().map(params_hash),
        },
    )?;
    let init = match init_params_given {
        Some(p) => {
            if p.len() != spacer_core::policy::param_count(dims.actions()) {
                return Err(PpoError::Config(format!(
                    "the starting policy has {} parameters, the policy {}",
                    p.len(),
                    spacer_core::policy::param_count(dims.actions())
                )));
            }
            p
        }
        None => {
            let mut init = vec![0.0f32; spacer_core::policy::param_count(dims.actions())];
            init_params(&dims, config.run.seed, &mut init)
                .map_err(|e| PpoError::Config(e.to_string()))?;
            init
        }
    };
    let mut learner: Box<dyn Learner> = match (device, config.ppo.learner) {
        (DeviceKind::Cpu, LearnerKind::Native) => Box::new(NativeLearner::new(dims, init)?),
        (DeviceKind::Cpu, LearnerKind::Burn) => Box::new(
            BurnLearner::<crate::training::CpuTrain>::new(dims, init, Default::default())?,
        ),
        (DeviceKind::Cuda, _) => cuda_learner(dims, init)?,
    };
    let mut state = State::default();
    if let Some(r) = &resumed {
        let path = run.checkpoint_path().to_path_buf();
        let params: Vec<f32> = postcard::from_bytes(&r.checkpoint.model).map_err(|e| {
            DataError::invalid(&path, Location::field(None, "model"), e.to_string())
        })?;
        learner.restore(&params, &r.checkpoint.optimizer)?;
        state = r.learner_state(&path)?;
    }
    let mut reference = reference.map(Reference::new);
    let mut indexes: HashMap<Drawn, Arc<SceneIndex>> = HashMap::new();
    let seed = config.run.seed;
    let alpha = config.alpha();
    let beta = config.beta();
    let anchor_temperature = config.anchor_temperature();
    let mut updates_run = 0u64;
    while state.agent_steps < config.run.agent_steps {
        if control.max_updates.is_some_and(|m| updates_run >= m) {
            break;
        }
        let u = state.updates;
        let started = Instant::now();
        // Worlds of this batch.
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &[u, 0x5ce7e5]));
        let mut batch = Vec::with_capacity(config.env.worlds);
        for _ in 0..config.env.worlds {
            let Some(d) = sampler.draw(&mut rng) else {
                break;
            };
            let index = match indexes.get(&d) {
                Some(i) => Arc::clone(i),
                None => {
                    let scene = match d {
                        Drawn::Real(i) => &training[i],
                        Drawn::Synthetic(i) => &synthetic[i],
                    };
                    let i = Arc::new(SceneIndex::new(Arc::clone(scene), &sim_config)?);
                    indexes.insert(d, Arc::clone(&i));
                    i
                }
            };
            batch.push(index);
        }
        let mut sim = Simulator::from_indexes(&batch, sim_config)?;
        let t_setup = started.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let policy = Policy::new(dims, learner.params()).map_err(SimError::Policy)?;
        let mut exp: Experience = collect(
            &mut sim,
            &policy,
            &vocab,
            &config.reward,
            derive_seed(seed, &[u, 0xac7]),
        )?;
        let t_rollout = t0.elapsed().as_secs_f64();
        if exp.is_empty() {
            return Err(PpoError::Config(format!(
                "update {u}: no agent acted in the {} drawn worlds",
                batch.len()
            )));
        }
        // The anchor.
        let t1 = Instant::now();
        let mut ref_logp_mean = f64::NAN;
        let anchor: Option<AnchorScores> = if let Some(r) = reference.as_mut() {
            let scores = r.score(&sim, &exp).tempered(anchor_temperature);
            let (mut sum, mut count) = (0.0f64, 0usize);
            for i in 0..exp.len() {
                if let Some(lp) = scores.get(i) {
                    let l = lp[exp.actions[i] as usize];
                    sum += l as f64;
                    count += 1;
                    exp.rewards[i] += alpha * l;
                }
            }
            if count > 0 {
                ref_logp_mean = sum / count as f64;
            }
            Some(scores)
        } else {
            bc.as_ref()
                .filter(|_| config.needs_bc())
                .map(|b| score_cloned(b, &exp).tempered(anchor_temperature))
        };
        let t_anchor = t1.elapsed().as_secs_f64();
        // The update.
        let t2 = Instant::now();
        let (adv, ret) = gae(&exp, config.ppo.gamma, config.ppo.gae_lambda);
        let stats: UpdateStats = learner.update(
            &UpdateInput {
                exp: &exp,
                advantages: &adv,
                returns: &ret,
                anchor: anchor.as_ref(),
                beta: if config.method == super::config::Method::Ppo {
                    0.0
                } else {
                    beta
                },
                lr: config.ppo.lr,
                seed: derive_seed(seed, &[u, 0x1ea7]),
            },
            &config.ppo,
        )?;
        let t_learn = t2.elapsed().as_secs_f64();
        state.updates += 1;
        updates_run += 1;
        let ep = exp.episodes;
        state.agent_steps += ep.agent_steps;
        state.samples += exp.len() as u64;
        let step_seconds = t_setup + t_rollout + t_anchor + t_learn;
        state.timing.setup += t_setup;
        state.timing.rollout += t_rollout;
        state.timing.anchor += t_anchor;
        state.timing.learn += t_learn;
        let l = stats.loss;
        let per = |v: f64, n: usize| if n > 0 { v / n as f64 } else { f64::NAN };
        run.advance(
            ep.agent_steps,
            &format!(
                "update {} return {:.3} goal {:.2} coll {:.2} off {:.2} {:.0} steps/s",
                state.updates,
                ep.task_return / ep.agents.max(1) as f64,
                ep.rate(ep.goal),
                ep.rate(ep.collision),
                ep.rate(ep.offroad),
                ep.agent_steps as f64 / step_seconds.max(1e-9)
            ),
        );
        let last = state.agent_steps >= config.run.agent_steps
            || control.max_updates.is_some_and(|m| updates_run >= m);
        let mut row: Vec<(&str, f64)> = vec![
            ("return", ep.task_return / ep.agents.max(1) as f64),
            ("goal_rate", ep.rate(ep.goal)),
            ("collision_rate", ep.rate(ep.collision)),
            ("offroad_rate", ep.rate(ep.offroad)),
            ("ref_logp", ref_logp_mean),
            ("kl_anchor", per(l.kl, l.kl_samples)),
            ("entropy", per(l.entropy, l.samples)),
            ("clip_fraction", per(l.clipped as f64, l.samples)),
            ("approx_kl", per(l.approx_kl, l.samples)),
            ("explained_variance", explained_variance(&exp.values, &ret)),
            ("value_loss", per(l.value, l.samples)),
            (
                "agent_steps_per_s",
                ep.agent_steps as f64 / step_seconds.max(1e-9),
            ),
            ("samples", exp.len() as f64),
        ];
        let eval_now = !held.is_empty()
            && ((config.run.eval_every > 0 && state.updates.is_multiple_of(config.run.eval_every))
                || state.agent_steps >= config.run.agent_steps);
        if eval_now {
            let t3 = Instant::now();
            let file = policy_blob(
                learner.params(),
                dims,
                &vocab,
                sim_config.observation.radius,
                state.agent_steps,
            )?;
            let h = evaluate_held_out(&file, &held, config.run.eval_rollouts, seed)?;
            state.last_eval = Some(h);
            row.extend([
                ("heldout_realism", h.realism),
                ("heldout_min_ade", h.min_ade),
                ("heldout_collision", h.collision),
                ("heldout_offroad", h.offroad),
                ("heldout_goal", h.goal),
            ]);
            run.println(&format!(
                "update {}: held-out realism {:.4}, minADE {:.2} m, collision {:.3}, off-road {:.3}, goal {:.3}",
                state.updates, h.realism, h.min_ade, h.collision, h.offroad, h.goal
            ));
            state.timing.eval += t3.elapsed().as_secs_f64();
        }
        run.record(&row);
        if last
            || state
                .updates
                .is_multiple_of(config.run.checkpoint_every.max(1))
        {
            let t4 = Instant::now();
            crate::training::ensure_finite("the policy", learner.params())?;
            let model = postcard::to_stdvec(learner.params())
                .map_err(|e| PpoError::Config(e.to_string()))?;
            let optimizer = learner.optimizer_bytes().map_err(PpoError::Config)?;
            let model_config =
                serde_json::to_string(&dims).map_err(|e| PpoError::Config(e.to_string()))?;
            run.save(
                model_config,
                model,
                optimizer,
                &state,
                vec![(
                    crate::reference::VOCABULARY_FILE.into(),
                    crate::vocab::vocabulary_bytes(&vocab),
                )],
            )?;
            state.timing.checkpoint += t4.elapsed().as_secs_f64();
        }
    }
    run.finish();
    let policy_path = options.out_dir.join("policy.spw");
    crate::training::ensure_finite("the policy", learner.params())?;
    policy_blob(
        learner.params(),
        dims,
        &vocab,
        sim_config.observation.radius,
        state.agent_steps,
    )?
    .write(&policy_path)?;
    Ok(PpoReport {
        updates: state.updates,
        updates_run,
        agent_steps: state.agent_steps,
        samples: state.samples,
        timing: state.timing,
        held_out: state.last_eval,
        checkpoint: run.checkpoint_path().to_path_buf(),
        policy: policy_path,
    })
}

#[cfg(feature = "cuda")]
fn cuda_learner(dims: PolicyDims, init: Vec<f32>) -> Result<Box<dyn Learner>, PpoError> {
    crate::training::cuda_probe()?;
    Ok(Box::new(BurnLearner::<crate::training::GpuTrain>::new(
        dims,
        init,
        burn::backend::cuda::CudaDevice::default(),
    )?))
}

#[cfg(not(feature = "cuda"))]
fn cuda_learner(_: PolicyDims, _: Vec<f32>) -> Result<Box<dyn Learner>, PpoError> {
    Err(BackendError::CudaNotBuilt.into())
}

/// FNV-1a of the parameters' bytes, as hex: names a starting policy in the run's
/// configuration so that a resume with another one is refused.
fn params_hash(params: &[f32]) -> String {
    format!(
        "{:016x}",
        crate::scenario::dataset::fnv1a(bytemuck::cast_slice(params))
    )
}

/// The files a run reads besides its scenes.
#[derive(Clone, Debug, Default)]
pub struct AnchorFiles {
    /// A reference checkpoint (`spacer train-ref`): SPACeR's anchor; its vocabulary
    /// is the policy's.
    pub reference: Option<PathBuf>,
    /// A behaviour-cloned checkpoint of width 128 (`spacer bc --width 128`): HR-PPO's
    /// anchor.
    pub bc: Option<PathBuf>,
    /// A vocabulary file, when neither checkpoint gives one.
    pub vocab: Option<PathBuf>,
    /// A weights blob (f32, the policy's dimensions and vocabulary) to start from,
    /// e.g. `spacer bc --width 64 --export`.
    pub init: Option<PathBuf>,
}

/// Loads the anchors `config` needs from `files`, then trains (see [`train`]).
///
/// # Errors
/// [`PpoError`]: unreadable or mismatched files, and whatever [`train`] reports.
pub fn train_with_files(
    config: &PpoConfig,
    files: &AnchorFiles,
    dataset: &Dataset,
    options: &RunOptions,
    device: DeviceKind,
) -> Result<PpoReport, PpoError> {
    let reference = match (&files.reference, config.needs_reference()) {
        (Some(p), true) => Some(ReferenceModel::<Cpu>::load(p, &Default::default())?),
        _ => None,
    };
    let bc = match (&files.bc, config.needs_bc()) {
        (Some(p), true) => {
            let (net, shape, vocab) = crate::bc::load::<Cpu>(p, &Default::default())?;
            let params = net.to_flat_any_width();
            let native = NativeNet::new(shape.width, shape.dims, params)
                .map_err(|e| PpoError::Config(format!("{}: {e}", p.display())))?;
            Some((native, vocab))
        }
        _ => None,
    };
    let vocab = match (&reference, &bc, &files.vocab) {
        (Some(r), _, _) => r.vocab.clone(),
        (None, Some((_, v)), _) => v.clone(),
        (None, None, given) => crate::vocab::read_or_grid(given.as_deref())?,
    };
    if let Some((_, v)) = &bc
        && *v != vocab
    {
        return Err(PpoError::Config(
            "the cloned policy was trained with another vocabulary than the reference's".into(),
        ));
    }
    let init = match &files.init {
        Some(p) => {
            let file = PolicyFile::read(p)?;
            let invalid = |what: String| DataError::invalid(p, Location::file(), what);
            if file.params().is_empty() {
                return Err(invalid(
                    "an int8 blob cannot start training: give the f32 export".into(),
                )
                .into());
            }
            if file.blob().tokens().to_vocabulary().ok().as_ref() != Some(&vocab) {
                return Err(invalid(
                    "its vocabulary differs from the run's (the reference's, or --vocab)".into(),
                )
                .into());
            }
            Some(file.params().to_vec())
        }
        None => None,
    };
    train(
        config,
        TrainInputs {
            dataset,
            vocab,
            reference,
            bc: bc.map(|(n, _)| n),
            init,
        },
        options,
        device,
        Control::default(),
    )
}
