//! The reference model's training recipe, start to end: what `spacer train-ref` runs
//! and what the README recommends, so that its defaults are the best settings
//! measured (README: "Vocabulary, reference model").
//!
//! 1. **Vocabulary**: the file the user names, else one built by k-disk clustering
//!    of the training scenes (real and synthetic) and cached beside the run
//!    ([`crate::vocab::build_or_cached`]), never the data-free kinematic grid.
//! 2. **Data**: real training scenes mixed with synthetic ones (`real_fraction`),
//!    real recordings balanced ([`crate::scenario::dataset::SceneSampler`]).
//! 3. **Teacher forcing** ([`super::train::train`]): next-token prediction with label
//!    smoothing; validation curves; `teacher-forced/reference.ckpt`.
//! 4. **Closed-loop fine-tuning** ([`super::catk`], CAT-K): the model rolled out with
//!    the closest-among-top-K rule and trained on its own rollouts;
//!    `closed-loop/reference.ckpt`.
//! 5. **Sampling chosen on the validation split**: the temperature and top-k with the
//!    best WOSAC 2025 realism of closed-loop rollouts on the validation scenes
//!    (never the held-out ones), stored with the model as its defaults.
//!
//! The result is `reference.ckpt` in the output directory (the last stage's model
//! with its sampling), and `recipe.json` with what each stage measured.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use spacer_core::tokenizer::Vocabulary;

use std::sync::Arc;

use super::agent::ReferenceAgent;
use super::catk::{CatkConfig, CatkReport, fine_tune};
use super::train::{RefSplits, TrainConfig, TrainError, TrainReport, train};
use super::{ReferenceConfig, ReferenceModel, Sampling};
use crate::eval::{EvalConfig, evaluate};
use crate::metrics::MetricsConfig;
use crate::scenario::Scene;
use crate::scenario::dataset::Dataset;
use crate::training::{BackendJob, Cpu, DeviceKind, RunOptions, run_on};
use crate::vocab::{ClusterConfig, VocabularySource, build_or_cached};

/// Everything `spacer train-ref` decides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Model size: `nano`, `mini` or `tiny`.
    pub model: String,
    /// Teacher-forced optimisation.
    pub train: TrainConfig,
    /// Vocabulary file to use; `None` builds (or reuses) one from the training scenes.
    pub vocab: Option<PathBuf>,
    /// Tokens per kind of a built vocabulary.
    pub tokens: usize,
    /// Closed-loop fine-tuning (`None`: teacher forcing only).
    pub closed_loop: Option<CatkConfig>,
    /// How the sampling defaults are chosen (`None`: temperature 1, top-40).
    pub sampling: Option<SamplingSearch>,
}

/// The grid of sampling settings tried on the validation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingSearch {
    /// Temperatures.
    pub temperatures: Vec<f32>,
    /// Top-k values.
    pub top_ks: Vec<u16>,
    /// Rollouts per validation scene.
    pub rollouts: usize,
}

impl Default for SamplingSearch {
    fn default() -> Self {
        Self {
            temperatures: vec![0.6, 0.8, 1.0],
            top_ks: vec![5, 20],
            rollouts: 8,
        }
    }
}

/// One sampling setting's closed-loop scores on the validation split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingTrial {
    /// The setting.
    pub sampling: Sampling,
    /// WOSAC 2025 realism.
    pub realism: f64,
    /// Simulated collision rate.
    pub collision: f64,
    /// Simulated off-road rate.
    pub offroad: f64,
    /// minADE (m).
    pub min_ade: f64,
}

impl Recipe {
    /// The defaults for a model size.
    pub fn for_model(model: &str) -> Self {
        Self {
            model: model.to_string(),
            train: TrainConfig::for_model(model),
            vocab: None,
            tokens: spacer_core::tokenizer::DEFAULT_TOKENS,
            closed_loop: Some(CatkConfig::for_model(model)),
            sampling: Some(SamplingSearch::default()),
        }
    }
}

/// What the recipe did.
#[derive(Clone, Debug)]
pub struct RecipeReport {
    /// Where the vocabulary came from.
    pub vocabulary: VocabularySource,
    /// The model configuration.
    pub config: ReferenceConfig,
    /// Teacher-forced training.
    pub train: TrainReport,
    /// Closed-loop fine-tuning, if it ran.
    pub closed_loop: Option<CatkReport>,
    /// The sampling settings tried, if any.
    pub trials: Vec<SamplingTrial>,
    /// The sampling stored with the model.
    pub sampling: Sampling,
    /// The final checkpoint.
    pub checkpoint: std::path::PathBuf,
}

/// The vocabulary of a recipe for `dataset`: the named file, or one built from the
/// training scenes and cached in `cache_dir`.
///
/// # Errors
/// Unreadable or unwritable files.
pub fn recipe_vocabulary(
    recipe: &Recipe,
    dataset: &Dataset,
    cache_dir: &Path,
) -> Result<(Vocabulary, VocabularySource), TrainError> {
    let scenes: Vec<&Scene> = dataset.training().collect();
    let cfg = ClusterConfig {
        k: recipe.tokens,
        ..ClusterConfig::default()
    };
    Ok(build_or_cached(
        recipe.vocab.as_deref(),
        &scenes,
        &cfg,
        cache_dir,
    )?)
}

/// Closed-loop WOSAC 2025 scores of `model` sampling with each setting of `search`
/// on `scenes` (the validation split); the best realism first.
///
/// # Errors
/// [`TrainError`] when the simulator or the metrics refuse.
pub fn search_sampling(
    model: &ReferenceModel<Cpu>,
    scenes: &[Arc<Scene>],
    search: &SamplingSearch,
    seed: u64,
) -> Result<Vec<SamplingTrial>, TrainError> {
    let metrics = MetricsConfig::challenge_2025().map_err(|e| TrainError::Config(e.to_string()))?;
    let config = EvalConfig::new(metrics, search.rollouts, seed);
    let mut trials = Vec::new();
    for &temperature in &search.temperatures {
        for &top_k in &search.top_ks {
            let sampling = Sampling { temperature, top_k };
            let mut agent = ReferenceAgent::new(model.clone(), sampling, seed, "reference");
            let e = evaluate("reference", scenes, &mut agent, &config, |_| {})?;
            let b = &e.scores.average.bucketed;
            trials.push(SamplingTrial {
                sampling,
                realism: b.realism_meta_metric,
                collision: b.simulated_collision_rate,
                offroad: b.simulated_offroad_rate,
                min_ade: b.min_ade,
            });
        }
    }
    trials.sort_by(|a, b| b.realism.total_cmp(&a.realism));
    Ok(trials)
}

/// Runs the recipe on `dataset`, writing into `options.out_dir` (see the module
/// docs).
///
/// # Errors
/// [`TrainError`] from any stage.
pub fn train_reference(
    recipe: &Recipe,
    dataset: &Dataset,
    options: &RunOptions,
    device: DeviceKind,
) -> Result<RecipeReport, TrainError> {
    let (vocab, source) = recipe_vocabulary(recipe, dataset, &options.out_dir)?;
    let config =
        ReferenceConfig::by_name(&recipe.model, vocab.len()).map_err(TrainError::Config)?;
    let splits = RefSplits::prepare(dataset, &vocab, &config);
    let stage = |name: &str| RunOptions {
        out_dir: options.out_dir.join(name),
        ..options.clone()
    };
    struct Job<'a> {
        config: &'a ReferenceConfig,
        recipe: &'a Recipe,
        vocab: &'a Vocabulary,
        splits: &'a RefSplits,
        teacher: RunOptions,
        closed: RunOptions,
    }
    impl BackendJob for Job<'_> {
        type Output = (TrainReport, Option<CatkReport>);
        type Error = TrainError;
        fn run<B: AutodiffBackend>(
            self,
            device: B::Device,
        ) -> Result<(TrainReport, Option<CatkReport>), TrainError> {
            let tf = train::<B>(
                self.config,
                &self.recipe.train,
                self.vocab,
                self.splits,
                &self.teacher,
                &device,
            )?;
            let cl = match &self.recipe.closed_loop {
                Some(c) => {
                    let start = ReferenceModel::<B>::load(&tf.checkpoint, &device)?;
                    Some(fine_tune::<B>(
                        start,
                        c,
                        self.splits,
                        &self.closed,
                        &device,
                    )?)
                }
                None => None,
            };
            Ok((tf, cl))
        }
    }
    let (report, closed) = run_on(
        device,
        Job {
            config: &config,
            recipe,
            vocab: &vocab,
            splits: &splits,
            teacher: stage("teacher-forced"),
            closed: stage("closed-loop"),
        },
    )?;
    let last = closed
        .as_ref()
        .map_or(&report.checkpoint, |c| &c.checkpoint);
    let mut model = ReferenceModel::<Cpu>::load(last, &Default::default())?.with_native();
    let validation: Vec<Arc<Scene>> = dataset.validation.iter().cloned().map(Arc::new).collect();
    let trials = match (&recipe.sampling, validation.is_empty()) {
        (Some(search), false) => search_sampling(&model, &validation, search, recipe.train.seed)?,
        _ => Vec::new(),
    };
    if let Some(best) = trials.first() {
        model.sampling = best.sampling;
    }
    let checkpoint = options.out_dir.join("reference.ckpt");
    model
        .to_checkpoint(
            closed
                .as_ref()
                .map_or(report.step, |c| report.step + c.step) as u64,
            String::new(),
        )
        .map_err(TrainError::Config)?
        .write(&checkpoint)?;
    let summary = serde_json::json!({
        "vocabulary": format!("{source:?}"),
        "teacher_forced": {
            "steps": report.step,
            "validation": report.validation,
            "heldout": report.heldout,
            "baselines": report.baselines,
        },
        "closed_loop": closed.as_ref().map(|c| serde_json::json!({
            "steps": c.step,
            "validation": c.validation,
            "heldout": c.heldout,
        })),
        "sampling_trials": trials,
        "sampling": model.sampling,
    });
    crate::fsutil::write_atomic(
        &options.out_dir.join("recipe.json"),
        serde_json::to_string_pretty(&summary)
            .map_err(|e| TrainError::Config(e.to_string()))?
            .as_bytes(),
    )?;
    Ok(RecipeReport {
        vocabulary: source,
        config,
        train: report,
        closed_loop: closed,
        trials,
        sampling: model.sampling,
        checkpoint,
    })
}
