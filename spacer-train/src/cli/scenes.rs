//! Scene arguments shared by the training commands: files or directories in any
//! format the scenario loader reads ([`crate::scenario::load`]: WOMD TFRecords,
//! GPUDrive JSON, scene caches, INTERACTION recordings), bad scenes skipped with a
//! warning, deduplicated by scene id (the shipped data holds the same WOMD scenes as
//! TFRecord and as JSON), scenes that cannot teach motion left out
//! ([`crate::tokenized::motion_problem`]), and split into training and the fixed
//! held-out set ([`crate::training::is_held_out`]). Synthetic scenes are for training
//! only.
//!
//! INTERACTION recordings are cut into non-overlapping 9.1 s windows here (a stride
//! of 91 frames, not the loader's 1 s), so that no held-out window shares traffic
//! with a training window.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::DataError;
use crate::scenario::load::{BadScenePolicy, LoadOptions, SceneStream};
use crate::scenario::synthetic::{SyntheticConfig, generate_range};
use crate::scenario::{NUM_STEPS, Scene};

/// Reads every scene `paths` stand for, first occurrence of each scene id kept, with
/// a progress bar.
///
/// # Errors
/// A path that does not exist or cannot be listed.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Scene>, DataError> {
    let mut options = LoadOptions::new(BadScenePolicy::Skip);
    options.interaction.stride_steps = NUM_STEPS;
    let mut stream = SceneStream::open(paths, options)?;
    let pb = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("reading scenes {spinner} {pos} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut scenes: Vec<Scene> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for loaded in stream.by_ref() {
        // Under the skip policy bad scenes become warnings, not errors.
        let Ok(l) = loaded else { continue };
        pb.set_message(l.path.display().to_string());
        if seen.insert(l.scene.id.clone()) {
            scenes.push(l.scene);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(scenes)
}

/// Leaves out (with a warning naming them) scenes that cannot teach motion
/// ([`crate::tokenized::motion_problem`]).
pub fn usable_for_motion(scenes: Vec<Scene>) -> Vec<Scene> {
    scenes
        .into_iter()
        .filter(|s| match crate::tokenized::motion_problem(s) {
            Some(why) => {
                eprintln!("warning: scene {} left out: {why}", s.id);
                false
            }
            None => true,
        })
        .collect()
}

/// Splits scenes into (training, held-out) by the fixed id hash.
pub fn split(scenes: Vec<Scene>) -> (Vec<Scene>, Vec<Scene>) {
    scenes
        .into_iter()
        .partition(|s| !crate::training::is_held_out(&s.id))
}

/// `count` synthetic scenes (seeded), with a progress bar.
pub fn synthetic(count: usize, seed: u64) -> Vec<Scene> {
    if count == 0 {
        return Vec::new();
    }
    let cfg = SyntheticConfig::default();
    let pb = ProgressBar::new(count as u64).with_style(
        ProgressStyle::with_template("generating synthetic scenes {bar:30} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut out = Vec::with_capacity(count);
    let chunk = 16;
    let mut i = 0;
    while i < count {
        let end = (i + chunk).min(count);
        out.extend(generate_range(&cfg, seed, i..end));
        pb.set_position(end as u64);
        i = end;
    }
    pb.finish_and_clear();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenes_load_once_each() {
        let dirs = [
            crate::paths::shared_data("womd"),
            crate::paths::shared_data("gpudrive"),
        ];
        let scenes = load(&dirs).unwrap();
        // 2 WOMD scenes whose JSON copies are dropped, and the 8 other full JSON
        // scenes (the one-step collision fixtures do not pass validation).
        assert_eq!(
            scenes.len(),
            10,
            "{:?}",
            scenes.iter().map(|s| &s.id).collect::<Vec<_>>()
        );
        let (train, held) = split(scenes.clone());
        assert_eq!(train.len() + held.len(), 10);
        let ok = usable_for_motion(scenes);
        assert_eq!(ok.len(), 9, "the old-layout scene has headings in degrees");
        assert!(load(&[PathBuf::from("no/such/dir")]).is_err());
    }
}
