//! The dataset every learner and every held-out evaluation reads: which real scenes
//! exist, which of them may be trained on, which choose settings, which are the test,
//! and how training scenes are drawn.
//!
//! - **Loading**: files or directories in any format the loader reads
//!   ([`super::load`]), bad scenes skipped with a warning, deduplicated by scene id
//!   (the shipped data holds the same WOMD scenes as TFRecord and as JSON).
//!   INTERACTION recordings are cut into non-overlapping 9.1 s windows (a stride of 91
//!   frames, not the loader's 1 s), so that no window shares traffic with another.
//! - **Usable for motion**: scenes that cannot teach motion
//!   ([`crate::tokenized::motion_problem`], e.g. headings in degrees) are left out,
//!   named in [`Dataset::left_out`].
//! - **Splits** ([`split_of`]), fixed by a hash of the scene id so that they never
//!   change between runs, machines or builds: one real scene in five is *held out*
//!   (the test split: nothing trains on it, nothing is tuned on it); of the rest, one in
//!   five is *validation* (early stopping, sampling temperature and top-k); the others
//!   are *training*. Synthetic scenes only ever add to training.
//! - **Drawing training scenes** ([`SceneSampler`]): a real scene with probability
//!   `real_fraction` (else a synthetic one), and among real scenes each *recording*
//!   ([`recording_of`]: all WOMD-derived scenes form one, each INTERACTION recording
//!   file another) equally likely, so that the 25 windows of one intersection do not
//!   outweigh everything else.
//!
//! Without real scenes (no `../shared/data`, none given), held-out and validation
//! scenes are generated too (from seeds of their own), so that every command still
//! has something to train and to test on; [`Dataset::synthetic_test`] says so.

use std::collections::HashSet;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::load::{BadScenePolicy, LoadOptions, SceneStream};
use super::synthetic::{SyntheticConfig, generate_range};
use super::{NUM_STEPS, Scene, SceneSource};
use crate::error::{DataError, Location};

/// A stable 64-bit FNV-1a hash (for splits that must not change between runs or
/// builds).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Which split a real scene belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Split {
    /// Trained on.
    Train,
    /// Chooses settings (early stopping, sampling); never trained on.
    Validation,
    /// The test: never trained or tuned on.
    HeldOut,
}

/// Whether a scene belongs to the fixed held-out split: one in five scene ids, by
/// their FNV-1a hash. Nothing trains or tunes on these scenes.
pub fn is_held_out(scene_id: &str) -> bool {
    fnv1a(scene_id.as_bytes()).is_multiple_of(5)
}

/// The split of a real scene (see the module docs).
pub fn split_of(scene_id: &str) -> Split {
    if is_held_out(scene_id) {
        Split::HeldOut
    } else if fnv1a(format!("{scene_id}/validation").as_bytes()).is_multiple_of(5) {
        Split::Validation
    } else {
        Split::Train
    }
}

/// The recording a scene comes from, for balancing: INTERACTION windows share their
/// recording (the id without the window's start frame); every WOMD-derived scene
/// (WOMD, GPUDrive JSON, caches of them) is one recording, `"womd"`; synthetic scenes
/// are `"synthetic"`.
pub fn recording_of(scene: &Scene) -> String {
    match scene.source {
        SceneSource::Interaction => scene
            .id
            .rsplit_once('_')
            .filter(|(_, frame)| frame.chars().all(|c| c.is_ascii_digit()))
            .map_or_else(|| scene.id.clone(), |(rec, _)| rec.to_string()),
        SceneSource::Synthetic => "synthetic".into(),
        SceneSource::Womd | SceneSource::Gpudrive => "womd".into(),
    }
}

/// What a dataset is made of.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetConfig {
    /// Real scene files or directories.
    pub paths: Vec<PathBuf>,
    /// Synthetic training scenes to generate.
    pub synthetic: usize,
    /// Seed of the synthetic scenes.
    pub seed: u64,
    /// Synthetic held-out and validation scenes to generate when there is no real one.
    pub synthetic_test: usize,
}

impl DatasetConfig {
    /// `paths` plus `synthetic` generated training scenes; 8 synthetic test scenes
    /// stand in when there are no real ones.
    pub fn new(paths: Vec<PathBuf>, synthetic: usize, seed: u64) -> Self {
        Self {
            paths,
            synthetic,
            seed,
            synthetic_test: 8,
        }
    }
}

/// The scenes of a dataset, by split.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Real training scenes.
    pub train: Vec<Scene>,
    /// Real validation scenes (generated ones when there is no real scene).
    pub validation: Vec<Scene>,
    /// Real held-out scenes (generated ones when there is no real scene).
    pub held_out: Vec<Scene>,
    /// Synthetic training scenes.
    pub synthetic: Vec<Scene>,
    /// Scenes left out as unusable for motion: (id, why).
    pub left_out: Vec<(String, String)>,
    /// True when the validation and held-out scenes are generated (no real scene).
    pub synthetic_test: bool,
}

/// Seeds of the generated test scenes, far from any training seed.
const TEST_SEED: u64 = 0x7E57_0000_0000_0000;
const VALIDATION_SEED: u64 = 0x7A11_0000_0000_0000;

impl Dataset {
    /// Loads and splits `config`'s scenes; with `progress`, spinners and bars on
    /// stderr.
    ///
    /// # Errors
    /// As [`load_real`].
    pub fn load(config: &DatasetConfig, progress: bool) -> Result<Self, DataError> {
        let mut d = Dataset::default();
        let real = load_real(&config.paths, progress)?;
        for scene in real {
            if let Some(why) = crate::tokenized::motion_problem(&scene) {
                d.left_out.push((scene.id.clone(), why));
                continue;
            }
            match split_of(&scene.id) {
                Split::Train => d.train.push(scene),
                Split::Validation => d.validation.push(scene),
                Split::HeldOut => d.held_out.push(scene),
            }
        }
        d.synthetic = synthetic(config.synthetic, config.seed, progress);
        if d.train.is_empty() && d.validation.is_empty() && d.held_out.is_empty() {
            d.synthetic_test = true;
            let n = config.synthetic_test;
            d.validation = synthetic(n, VALIDATION_SEED ^ config.seed, progress);
            d.held_out = synthetic(n, TEST_SEED ^ config.seed, progress);
        }
        Ok(d)
    }

    /// The scenes of the given split.
    pub fn split(&self, split: Split) -> &[Scene] {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
            Split::HeldOut => &self.held_out,
        }
    }

    /// Every training scene: the real ones, then the synthetic ones.
    pub fn training(&self) -> impl Iterator<Item = &Scene> {
        self.train.iter().chain(&self.synthetic)
    }

    /// Prints the left-out scenes as warnings on stderr.
    pub fn warn_left_out(&self) {
        for (id, why) in &self.left_out {
            eprintln!("warning: scene {id} left out: {why}");
        }
    }

    /// One line: scene and agent counts per split.
    pub fn summary(&self) -> String {
        let agents = |v: &[Scene]| v.iter().map(|s| s.tracks.len()).sum::<usize>();
        format!(
            "{} real training scenes ({} tracks) + {} synthetic ({} tracks), {} validation, \
             {} held-out{}",
            self.train.len(),
            agents(&self.train),
            self.synthetic.len(),
            agents(&self.synthetic),
            self.validation.len(),
            self.held_out.len(),
            if self.synthetic_test {
                " (generated: no real scenes)"
            } else {
                ""
            }
        )
    }
}

/// Reads every scene `paths` stand for, first occurrence of each scene id kept.
///
/// # Errors
/// A path that does not exist or cannot be listed; paths that hold no readable scene
/// at all (empty or broken files: a typo must not silently train on nothing).
pub fn load_real(paths: &[PathBuf], progress: bool) -> Result<Vec<Scene>, DataError> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut options = LoadOptions::new(BadScenePolicy::Skip);
    options.interaction.stride_steps = NUM_STEPS;
    let mut stream = SceneStream::open(paths, options)?;
    let pb = if progress {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("reading scenes {spinner} {pos} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut scenes: Vec<Scene> = Vec::new();
    let mut seen = HashSet::new();
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
    if scenes.is_empty() {
        let first = stream
            .warnings()
            .first()
            .map_or_else(String::new, |w| format!("; the first problem: {w}"));
        return Err(DataError::invalid(
            &paths[0],
            Location::file(),
            format!(
                "no readable scene in the {} path(s) given ({} skipped){first}",
                paths.len(),
                stream.warnings().len()
            ),
        ));
    }
    Ok(scenes)
}

/// `count` synthetic scenes (seeded), with a progress bar when `progress`.
pub fn synthetic(count: usize, seed: u64, progress: bool) -> Vec<Scene> {
    if count == 0 {
        return Vec::new();
    }
    let cfg = SyntheticConfig::default();
    let pb = if progress {
        ProgressBar::new(count as u64).with_style(
            ProgressStyle::with_template("generating synthetic scenes {bar:30} {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
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

/// Draws training scenes: a real one with probability `real_fraction` (when there
/// are both kinds), each real recording equally likely and each scene equally likely
/// within its recording (or every real scene equally likely, unbalanced); else a
/// synthetic one, uniformly.
#[derive(Clone, Debug)]
pub struct SceneSampler {
    /// Per recording, the indices of its scenes among the real ones.
    recordings: Vec<Vec<usize>>,
    real: usize,
    synthetic: usize,
    real_fraction: f64,
    balanced: bool,
}

/// Which scene a [`SceneSampler`] drew.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Drawn {
    /// Index into the real training scenes.
    Real(usize),
    /// Index into the synthetic scenes.
    Synthetic(usize),
}

impl SceneSampler {
    /// A sampler over `real` and `synthetic` scene counts (`real` described by
    /// `real_scenes` for the recordings).
    pub fn new(
        real_scenes: &[Scene],
        synthetic: usize,
        real_fraction: f64,
        balanced: bool,
    ) -> Self {
        let mut names: Vec<String> = Vec::new();
        let mut recordings: Vec<Vec<usize>> = Vec::new();
        for (i, s) in real_scenes.iter().enumerate() {
            let r = recording_of(s);
            match names.iter().position(|n| *n == r) {
                Some(k) => recordings[k].push(i),
                None => {
                    names.push(r);
                    recordings.push(vec![i]);
                }
            }
        }
        Self {
            recordings,
            real: real_scenes.len(),
            synthetic,
            real_fraction: if real_fraction.is_finite() {
                real_fraction.clamp(0.0, 1.0)
            } else {
                0.5
            },
            balanced,
        }
    }

    /// Scenes to draw from.
    pub fn is_empty(&self) -> bool {
        self.real == 0 && self.synthetic == 0
    }

    /// Real recordings.
    pub fn recordings(&self) -> usize {
        self.recordings.len()
    }

    /// One draw, or `None` when there is nothing to draw from.
    pub fn draw(&self, rng: &mut impl Rng) -> Option<Drawn> {
        let real = self.real > 0 && (self.synthetic == 0 || rng.random_bool(self.real_fraction));
        if real {
            if self.balanced {
                let r = &self.recordings[rng.random_range(0..self.recordings.len())];
                Some(Drawn::Real(r[rng.random_range(0..r.len())]))
            } else {
                Some(Drawn::Real(rng.random_range(0..self.real)))
            }
        } else if self.synthetic > 0 {
            Some(Drawn::Synthetic(rng.random_range(0..self.synthetic)))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn splits_are_stable_and_disjoint() {
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let ids: Vec<String> = (0..2000).map(|i| format!("scene-{i}")).collect();
        let count = |s: Split| ids.iter().filter(|i| split_of(i) == s).count();
        let (held, val, train) = (
            count(Split::HeldOut),
            count(Split::Validation),
            count(Split::Train),
        );
        assert_eq!(held + val + train, 2000);
        assert!((320..480).contains(&held), "{held}");
        assert!((250..390).contains(&val), "{val}");
        assert!(
            ids.iter()
                .all(|i| is_held_out(i) == (split_of(i) == Split::HeldOut))
        );
        // The shipped held-out WOMD scene stays held out.
        assert_eq!(split_of("637f20cafde22ff8"), Split::HeldOut);
    }

    #[test]
    fn shipped_scenes_load_once_each_and_split() {
        let dirs = [
            crate::paths::shared_data("womd"),
            crate::paths::shared_data("gpudrive"),
        ];
        let scenes = load_real(&dirs, false).unwrap();
        // 2 WOMD scenes whose JSON copies are dropped, and the 8 other full JSON
        // scenes (the one-step collision fixtures do not pass validation).
        assert_eq!(
            scenes.len(),
            10,
            "{:?}",
            scenes.iter().map(|s| &s.id).collect::<Vec<_>>()
        );
        let d = Dataset::load(&DatasetConfig::new(dirs.to_vec(), 2, 1), false).unwrap();
        assert_eq!(
            d.left_out.len(),
            1,
            "the old-layout scene has headings in degrees"
        );
        assert_eq!(d.train.len() + d.validation.len() + d.held_out.len(), 9);
        assert!(!d.held_out.is_empty() && !d.validation.is_empty() && !d.synthetic_test);
        assert_eq!(d.synthetic.len(), 2);
        assert!(load_real(&[PathBuf::from("no/such/dir")], false).is_err());
    }

    #[test]
    fn without_real_scenes_the_test_splits_are_generated() {
        let mut c = DatasetConfig::new(Vec::new(), 1, 3);
        c.synthetic_test = 2;
        let d = Dataset::load(&c, false).unwrap();
        assert!(d.synthetic_test && d.train.is_empty());
        assert_eq!(
            (d.validation.len(), d.held_out.len(), d.synthetic.len()),
            (2, 2, 1)
        );
        let ids: HashSet<&str> = d
            .validation
            .iter()
            .chain(&d.held_out)
            .chain(&d.synthetic)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(
            ids.len(),
            5,
            "generated test scenes differ from training ones"
        );
    }

    #[test]
    fn balanced_sampling_weighs_recordings_equally() {
        let mut scenes = Vec::new();
        for i in 0..9 {
            let mut s = crate::sim::testing::straight_road(1, 1);
            s.source = SceneSource::Interaction;
            s.id = format!("DR_X_{i}");
            scenes.push(s);
        }
        let mut w = crate::sim::testing::straight_road(1, 1);
        w.source = SceneSource::Womd;
        scenes.push(w);
        let sampler = SceneSampler::new(&scenes, 0, 1.0, true);
        assert_eq!(sampler.recordings(), 2);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let womd = (0..4000)
            .filter(|_| sampler.draw(&mut rng) == Some(Drawn::Real(9)))
            .count();
        assert!((1800..2200).contains(&womd), "{womd}");
        let flat = SceneSampler::new(&scenes, 0, 1.0, false);
        let womd = (0..4000)
            .filter(|_| flat.draw(&mut rng) == Some(Drawn::Real(9)))
            .count();
        assert!((300..500).contains(&womd), "{womd}");
        let syn = SceneSampler::new(&scenes, 5, 0.25, true);
        let s = (0..4000)
            .filter(|_| matches!(syn.draw(&mut rng), Some(Drawn::Synthetic(_))))
            .count();
        assert!((2800..3200).contains(&s), "{s}");
        assert_eq!(SceneSampler::new(&[], 0, 0.5, true).draw(&mut rng), None);
    }
}
