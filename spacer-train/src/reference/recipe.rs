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
//!    smoothing; validation curves; checkpoint `reference.ckpt`.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use spacer_core::tokenizer::Vocabulary;

use super::ReferenceConfig;
use super::train::{RefSplits, TrainConfig, TrainError, TrainReport, train};
use crate::scenario::Scene;
use crate::scenario::dataset::Dataset;
use crate::training::{BackendJob, DeviceKind, RunOptions, run_on};
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
}

impl Recipe {
    /// The defaults for a model size.
    pub fn for_model(model: &str) -> Self {
        Self {
            model: model.to_string(),
            train: TrainConfig::for_model(model),
            vocab: None,
            tokens: spacer_core::tokenizer::DEFAULT_TOKENS,
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

/// Runs the recipe on `dataset`, writing into `options.out_dir`.
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
    struct Job<'a> {
        config: &'a ReferenceConfig,
        recipe: &'a Recipe,
        vocab: &'a Vocabulary,
        splits: &'a RefSplits,
        options: &'a RunOptions,
    }
    impl BackendJob for Job<'_> {
        type Output = TrainReport;
        type Error = TrainError;
        fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<TrainReport, TrainError> {
            train::<B>(
                self.config,
                &self.recipe.train,
                self.vocab,
                self.splits,
                self.options,
                &device,
            )
        }
    }
    let report = run_on(
        device,
        Job {
            config: &config,
            recipe,
            vocab: &vocab,
            splits: &splits,
            options,
        },
    )?;
    Ok(RecipeReport {
        vocabulary: source,
        config,
        train: report,
    })
}
