//! Scene arguments shared by the training commands: files or directories of WOMD
//! TFRecords (`*.tfrecord*`), GPUDrive JSON (`*.json`) and scene caches (`*.spc`),
//! read with the scenario readers, deduplicated by scene id (the shipped data has
//! the same WOMD scenes as TFRecord and as JSON), and split into training and the
//! fixed held-out set ([`crate::training::is_held_out`]).

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{DataError, Location};
use crate::scenario::{Scene, cache, gpudrive, womd};

/// Every scene file under `paths` (directories are searched recursively, sorted).
///
/// # Errors
/// [`DataError::Io`] for a path that cannot be listed.
pub fn scene_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| DataError::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            let nested: Vec<PathBuf> = entries
                .into_iter()
                .filter(|e| e.is_dir() || format_of(e).is_some())
                .collect();
            out.extend(scene_files(&nested)?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Womd,
    Gpudrive,
    Cache,
}

fn format_of(p: &Path) -> Option<Format> {
    let name = p.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".json") {
        Some(Format::Gpudrive)
    } else if name.ends_with(&format!(".{}", cache::CACHE_EXTENSION)) {
        Some(Format::Cache)
    } else if name.contains(".tfrecord") {
        Some(Format::Womd)
    } else {
        None
    }
}

/// Reads the scenes of one file.
///
/// # Errors
/// The reader's error, or [`DataError::Invalid`] for an unknown file type.
pub fn read_file(path: &Path) -> Result<Vec<Scene>, DataError> {
    match format_of(path) {
        Some(Format::Womd) => womd::read_scenes(path),
        Some(Format::Gpudrive) => gpudrive::read_scene(path).map(|s| vec![s]),
        Some(Format::Cache) => cache::read_cache(path),
        None => Err(DataError::invalid(
            path,
            Location::file(),
            "unknown scene format (expected *.tfrecord, *.json or *.spc)",
        )),
    }
}

/// Reads every scene under `paths`, first occurrence of each scene id kept, with a
/// progress bar.
///
/// # Errors
/// The first file that fails to read.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Scene>, DataError> {
    let files = scene_files(paths)?;
    let pb = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("reading scenes {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut scenes: Vec<Scene> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &files {
        pb.set_message(f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        for s in read_file(f)? {
            if seen.insert(s.id.clone()) {
                scenes.push(s);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenes_load_once_each() {
        let dirs = [
            crate::paths::shared_data("womd"),
            crate::paths::shared_data("gpudrive"),
        ];
        let files = scene_files(&dirs).unwrap();
        assert_eq!(files.len(), 14, "{files:?}");
        let scenes = load(&dirs).unwrap();
        // 2 WOMD scenes whose JSON copies are dropped, and 9 other JSON scenes (the
        // two one-step collision fixtures share a scene id).
        assert_eq!(scenes.len(), 11);
        let (train, held) = split(scenes.clone());
        assert_eq!(train.len() + held.len(), 11);
        // The fixtures (one step) and the old-layout scene (headings in degrees).
        let ok = usable_for_motion(scenes);
        assert_eq!(ok.len(), 9);
        let e = read_file(Path::new("x.csv")).unwrap_err().to_string();
        assert!(e.contains("x.csv"));
    }
}
