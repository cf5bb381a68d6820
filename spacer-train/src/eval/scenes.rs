//! Which scenes `spacer eval` rolls out: one split of the dataset (the fixed
//! held-out split, or validation), or every scene of the given files (each id once)
//! plus generated ones.

use std::path::PathBuf;
use std::sync::Arc;

use super::EvalError;
use crate::limits::MAX_SYNTHETIC_SCENES;
use crate::scenario::Scene;
use crate::scenario::dataset::{Dataset, DatasetConfig, Split, synthetic};
use crate::scenario::load::{BadScenePolicy, LoadOptions, load_scenes_with, unique_by_id};

/// The scenes to evaluate on.
#[derive(Clone, Debug, PartialEq)]
pub enum SceneChoice {
    /// One split of the real scenes of the paths (real scenes only).
    Split(Split),
    /// Every scene of the paths (bad ones skipped with a warning, an id given twice
    /// scored once), then this many synthetic scenes seeded by the evaluation's seed.
    All {
        /// Synthetic scenes (at most [`MAX_SYNTHETIC_SCENES`]).
        synthetic: usize,
    },
}

/// The chosen scenes and what to tell the user about them.
#[derive(Debug)]
pub struct EvalScenes {
    /// The scenes, in a fixed order.
    pub scenes: Vec<Arc<Scene>>,
    /// Lines worth printing (the dataset's summary, scenes given twice).
    pub notes: Vec<String>,
}

/// Loads the scenes of `choice` from `paths` (real scene files or directories),
/// keeping the first `max_scenes`.
///
/// # Errors
/// Too many synthetic scenes, unreadable paths, no scene at all.
pub fn eval_scenes(
    paths: &[PathBuf],
    choice: &SceneChoice,
    seed: u64,
    max_scenes: Option<usize>,
) -> Result<EvalScenes, EvalError> {
    let mut notes = Vec::new();
    let mut scenes: Vec<Arc<Scene>> = match *choice {
        SceneChoice::Split(split) => {
            let d = Dataset::load(&DatasetConfig::new(paths.to_vec(), 0, seed), true)?;
            d.warn_left_out();
            notes.push(format!("dataset: {}", d.summary()));
            d.split(split).iter().cloned().map(Arc::new).collect()
        }
        SceneChoice::All { synthetic: n } => {
            if n > MAX_SYNTHETIC_SCENES {
                return Err(EvalError::Settings(format!(
                    "--synthetic {n}: at most {MAX_SYNTHETIC_SCENES} (they are held in memory; \
                     write larger sets with `spacer data gen`)"
                )));
            }
            let loaded = load_scenes_with(paths, LoadOptions::new(BadScenePolicy::Skip))?;
            let (unique, twice) = unique_by_id(loaded.scenes);
            if twice > 0 {
                notes.push(format!(
                    "note: {twice} scene(s) given twice (the same id in several files) are scored once"
                ));
            }
            let mut v: Vec<Arc<Scene>> = unique.into_iter().map(Arc::new).collect();
            v.extend(synthetic(n, seed, true).into_iter().map(Arc::new));
            v
        }
    };
    if let Some(m) = max_scenes {
        scenes.truncate(m);
    }
    if scenes.is_empty() {
        return Err(EvalError::Nothing(
            "no scenes: give --scenes PATH... and/or --synthetic N".into(),
        ));
    }
    Ok(EvalScenes { scenes, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;

    #[test]
    fn held_out_scenes_are_the_fixed_split() {
        let paths = [shared_data("womd"), shared_data("gpudrive")];
        let e = eval_scenes(&paths, &SceneChoice::Split(Split::HeldOut), 0, None).unwrap();
        assert!(!e.scenes.is_empty());
        assert!(
            e.scenes
                .iter()
                .all(|s| crate::scenario::dataset::is_held_out(&s.id))
        );
        assert!(e.notes[0].starts_with("dataset: "), "{:?}", e.notes);
    }

    #[test]
    fn every_scene_once_then_synthetic_ones_then_the_cap() {
        // The WOMD scene and its GPUDrive copy share an id: scored once.
        let paths = [
            shared_data("womd/637f20cafde22ff8.tfrecord"),
            shared_data("gpudrive/637f20cafde22ff8.json"),
        ];
        let e = eval_scenes(&paths, &SceneChoice::All { synthetic: 2 }, 0, None).unwrap();
        assert_eq!(e.scenes.len(), 3);
        assert_eq!(e.scenes[0].id, "637f20cafde22ff8");
        assert!(
            e.notes.iter().any(|n| n.contains("1 scene(s) given twice")),
            "{:?}",
            e.notes
        );
        let e = eval_scenes(&paths, &SceneChoice::All { synthetic: 2 }, 0, Some(2)).unwrap();
        assert_eq!(e.scenes.len(), 2);
        let e = eval_scenes(&[], &SceneChoice::All { synthetic: 0 }, 0, None).unwrap_err();
        assert!(e.to_string().contains("no scenes"), "{e}");
        let too_many = SceneChoice::All {
            synthetic: MAX_SYNTHETIC_SCENES + 1,
        };
        let e = eval_scenes(&[], &too_many, 0, None).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }
}
