//! One entry point for every scene source: WOMD TFRecords, GPUDrive JSON, scene
//! caches, INTERACTION recordings, and directories of them, with every scene
//! validated ([`super::validate`]) on the way in.
//!
//! The format is chosen by name, then by content:
//! - `*.tfrecord`, or a name containing `.tfrecord` (WOMD's own
//!   `training.tfrecord-00000-of-01000`): [`super::womd`];
//! - `*.json`: [`super::gpudrive`];
//! - `*.spc`: the scene cache ([`super::cache`]);
//! - `*.csv`: an INTERACTION recording ([`super::interaction`]); the pedestrian CSV
//!   beside a vehicle CSV joins it, and the map is [`LoadOptions::map`] or found
//!   beside the CSV ([`super::interaction::map_for`]);
//! - anything else is sniffed: the cache magic, a JSON object, or a TFRecord header
//!   whose length checksum holds.
//!
//! A directory stands for the files directly in it, in name order, that have one of
//! the extensions above (documentation, maps and other files are passed over, and a
//! pedestrian CSV is read with its vehicle CSV). Subdirectories are not entered.
//!
//! What happens to a scene that cannot be trusted is the caller's
//! [`BadScenePolicy`]: fail with the error, which names the file, the record and the
//! field; or skip it with a warning and go on. A framing error in a TFRecord or cache
//! loses the rest of that file (the next record cannot be found); a bad protobuf or
//! an invalid scene loses only its record. A file that holds no record at all (an
//! empty TFRecord, a 0-byte file) is a bad file too. A path that does not exist is
//! always an error.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::cache::{CACHE_EXTENSION, CACHE_MAGIC, CacheReader};
use super::interaction::{self, InteractionOptions};
use super::validate::{StepRule, validate_scene};
use super::{Scene, gpudrive, womd};
use crate::error::{DataError, Location};

/// What to do with a scene that fails to read or to validate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BadScenePolicy {
    /// Stop with the error.
    #[default]
    Fail,
    /// Print a warning, keep it in the stream's warnings, and go on.
    Skip,
}

/// A scene file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    /// WOMD `Scenario` TFRecord.
    Womd,
    /// GPUDrive JSON.
    Gpudrive,
    /// spacer's scene cache.
    Cache,
    /// INTERACTION track CSV (+ Lanelet2 map).
    Interaction,
}

impl SourceFormat {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Womd => "womd",
            SourceFormat::Gpudrive => "gpudrive",
            SourceFormat::Cache => "cache",
            SourceFormat::Interaction => "interaction",
        }
    }
}

/// How to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Bad scenes: fail or skip.
    pub policy: BadScenePolicy,
    /// Required step count ([`StepRule::Full`] for anything that simulates).
    pub steps: StepRule,
    /// The Lanelet2 map of INTERACTION CSVs (else found beside them).
    pub map: Option<PathBuf>,
    /// How INTERACTION recordings become scenes.
    pub interaction: InteractionOptions,
    /// Do not print skip warnings (they are still collected).
    pub quiet: bool,
}

impl LoadOptions {
    /// Defaults with `policy`.
    pub fn new(policy: BadScenePolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }
}

/// A loaded scene and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedScene {
    /// The scene.
    pub scene: Scene,
    /// Its file.
    pub path: PathBuf,
    /// Its record (TFRecord/cache record, INTERACTION window), if the file has several.
    pub record: Option<usize>,
}

/// The format of `path`, by name, then by content.
///
/// # Errors
/// [`DataError::Io`] when the file cannot be opened for sniffing;
/// [`DataError::Invalid`] when nothing matches.
pub fn detect_format(path: &Path) -> Result<SourceFormat, DataError> {
    if let Some(f) = format_by_name(path) {
        return Ok(f);
    }
    let mut head = [0u8; 64];
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DataError::io(path, e)),
        }
    }
    let head = &head[..n];
    if head.starts_with(&CACHE_MAGIC) {
        return Ok(SourceFormat::Cache);
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(SourceFormat::Gpudrive);
    }
    if head.len() >= 12 {
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&head[8..12]);
        if u32::from_le_bytes(crc) == womd::masked_crc32c(&head[..8]) {
            return Ok(SourceFormat::Womd);
        }
    }
    Err(DataError::invalid(
        path,
        Location::file(),
        "unknown scene format: expected a WOMD .tfrecord, a GPUDrive .json, a scene cache .spc or an INTERACTION track .csv",
    ))
}

fn format_by_name(path: &Path) -> Option<SourceFormat> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("json") => Some(SourceFormat::Gpudrive),
        Some("csv") => Some(SourceFormat::Interaction),
        Some(e) if e == CACHE_EXTENSION => Some(SourceFormat::Cache),
        _ if name.ends_with(".tfrecord") || name.contains(".tfrecord-") => Some(SourceFormat::Womd),
        _ => None,
    }
}

/// The scene files `paths` stand for: files as given, directories expanded (module
/// docs).
///
/// # Errors
/// [`DataError::Io`] naming a path that does not exist or a directory that cannot be
/// listed.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| DataError::io(p, e))?;
        if !meta.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| DataError::io(p, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.is_file() && format_by_name(f).is_some())
            .collect();
        files.sort();
        // A pedestrian CSV comes with its vehicle CSV.
        let vehicle_twins: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| {
                let n = f.file_name()?.to_str()?;
                n.contains("pedestrian_tracks")
                    .then(|| f.with_file_name(n.replace("pedestrian_tracks", "vehicle_tracks")))
            })
            .collect();
        files.retain(|f| {
            let n = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !(n.contains("pedestrian_tracks")
                && vehicle_twins.iter().any(|v| {
                    v == &f.with_file_name(n.replace("pedestrian_tracks", "vehicle_tracks"))
                        && v.is_file()
                }))
        });
        out.extend(files);
    }
    Ok(out)
}

type Records = Box<dyn Iterator<Item = (Option<usize>, Result<Scene, DataError>)>>;

/// Scenes from many files, one at a time, validated (module docs).
pub struct SceneStream {
    files: VecDeque<PathBuf>,
    /// The file being read, its records, and how many it has given so far.
    current: Option<(PathBuf, Records, usize)>,
    options: LoadOptions,
    warnings: Vec<DataError>,
    done: bool,
}

impl SceneStream {
    /// Opens the files `paths` stand for (directories expanded).
    ///
    /// # Errors
    /// As [`expand_paths`].
    pub fn open(paths: &[PathBuf], options: LoadOptions) -> Result<Self, DataError> {
        Ok(Self {
            files: expand_paths(paths)?.into(),
            current: None,
            options,
            warnings: Vec::new(),
            done: false,
        })
    }

    /// The problems skipped so far (under [`BadScenePolicy::Skip`]).
    pub fn warnings(&self) -> &[DataError] {
        &self.warnings
    }

    /// Files not started yet.
    pub fn files_left(&self) -> usize {
        self.files.len()
    }

    fn open_file(&self, path: &Path) -> Result<Records, DataError> {
        let format = detect_format(path)?;
        Ok(match format {
            SourceFormat::Womd => Box::new(
                womd::WomdReader::open(path)?
                    .enumerate()
                    .map(|(i, r)| (Some(i), r)),
            ),
            SourceFormat::Cache => Box::new(
                CacheReader::open(path)?
                    .enumerate()
                    .map(|(i, r)| (Some(i), r)),
            ),
            SourceFormat::Gpudrive => Box::new(std::iter::once((None, gpudrive::read_scene(path)))),
            SourceFormat::Interaction => {
                let map = match &self.options.map {
                    Some(m) => m.clone(),
                    None => interaction::map_for(path).ok_or_else(|| {
                        DataError::invalid(
                            path,
                            Location::file(),
                            "no Lanelet2 map (.osm) found beside this track CSV: give one with --map",
                        )
                    })?,
                };
                let (vehicles, pedestrians) = if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("pedestrian_tracks"))
                {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let v =
                        path.with_file_name(name.replace("pedestrian_tracks", "vehicle_tracks"));
                    if v.is_file() {
                        (v, Some(path.to_path_buf()))
                    } else {
                        (path.to_path_buf(), None)
                    }
                } else {
                    (path.to_path_buf(), interaction::pedestrian_csv_for(path))
                };
                let scenes = interaction::read_recording(
                    &vehicles,
                    pedestrians.as_deref(),
                    &map,
                    &self.options.interaction,
                )?;
                Box::new(
                    scenes
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| (Some(i), Ok(s))),
                )
            }
        })
    }

    /// Applies the policy to a problem: `Some(error)` to hand to the caller.
    fn problem(&mut self, e: DataError) -> Option<DataError> {
        match self.options.policy {
            BadScenePolicy::Fail => {
                self.done = true;
                Some(e)
            }
            BadScenePolicy::Skip => {
                if !self.options.quiet {
                    eprintln!("warning: skipped: {e}");
                }
                self.warnings.push(e);
                None
            }
        }
    }
}

impl Iterator for SceneStream {
    type Item = Result<LoadedScene, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if self.current.is_none() {
                let path = self.files.pop_front()?;
                match self.open_file(&path) {
                    Ok(records) => self.current = Some((path, records, 0)),
                    Err(e) => {
                        if let Some(e) = self.problem(e) {
                            return Some(Err(e));
                        }
                    }
                }
                continue;
            }
            let Some((path, records, count)) = self.current.as_mut() else {
                continue;
            };
            let Some((record, result)) = records.next() else {
                let (path, _, count) = self.current.take()?;
                if count == 0 {
                    // An empty TFRecord or cache used to pass as a source of no scenes.
                    let e = DataError::invalid(
                        &path,
                        Location::file(),
                        "no scenes: the file is empty or holds no records",
                    );
                    if let Some(e) = self.problem(e) {
                        return Some(Err(e));
                    }
                }
                continue;
            };
            *count += 1;
            let path = path.clone();
            let checked = result.and_then(|scene| {
                validate_scene(&scene, self.options.steps, &path, record).map(|()| scene)
            });
            match checked {
                Ok(scene) => {
                    return Some(Ok(LoadedScene {
                        scene,
                        path,
                        record,
                    }));
                }
                Err(e) => {
                    if let Some(e) = self.problem(e) {
                        return Some(Err(e));
                    }
                }
            }
        }
        None
    }
}

/// Scenes and the problems skipped while loading them.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The scenes that passed.
    pub scenes: Vec<Scene>,
    /// What was skipped (empty under [`BadScenePolicy::Fail`]).
    pub warnings: Vec<DataError>,
}

/// Loads every scene `paths` stand for.
///
/// # Errors
/// A missing path; under [`BadScenePolicy::Fail`], the first bad file or scene.
pub fn load_scenes_with(paths: &[PathBuf], options: LoadOptions) -> Result<Loaded, DataError> {
    let mut stream = SceneStream::open(paths, options)?;
    let mut scenes = Vec::new();
    for s in stream.by_ref() {
        scenes.push(s?.scene);
    }
    Ok(Loaded {
        scenes,
        warnings: stream.warnings,
    })
}

/// `scenes` with each scene id kept once (the first), and how many were dropped: the
/// shipped data holds the same WOMD scenes as TFRecord and as GPUDrive JSON, and a scene
/// given twice must not be scored or averaged twice.
pub fn unique_by_id(scenes: Vec<Scene>) -> (Vec<Scene>, usize) {
    let mut seen = std::collections::HashSet::new();
    let before = scenes.len();
    let kept: Vec<Scene> = scenes
        .into_iter()
        .filter(|s| seen.insert(s.id.clone()))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

/// Loads every scene of a file or directory, each validated for simulation (91
/// steps), bad ones failing or skipped (with a printed warning) by `policy`.
///
/// # Errors
/// As [`load_scenes_with`].
pub fn load_scenes(path: &Path, policy: BadScenePolicy) -> Result<Vec<Scene>, DataError> {
    Ok(load_scenes_with(&[path.to_path_buf()], LoadOptions::new(policy))?.scenes)
}

/// Reads scene `index` (from 0) of `path`, a file of any format [`detect_format`]
/// knows. Scenes are streamed, so only those up to `index` are read; a scene with
/// fewer steps than 91 (a one-step fixture) is accepted, as for rendering.
///
/// # Errors
/// The file cannot be read, a scene up to `index` is malformed, or the file has
/// fewer scenes.
pub fn load_nth_scene(path: &Path, index: usize) -> Result<Scene, DataError> {
    let options = LoadOptions {
        steps: StepRule::Any,
        quiet: true,
        ..LoadOptions::new(BadScenePolicy::Fail)
    };
    let mut n = 0;
    for loaded in SceneStream::open(&[path.to_path_buf()], options)? {
        let loaded = loaded?;
        if n == index {
            return Ok(loaded.scene);
        }
        n += 1;
    }
    Err(DataError::invalid(
        path,
        Location::file(),
        format!("holds {n} scenes, so there is no scene --index {index}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;

    #[test]
    fn formats_are_found_by_name_and_content() {
        assert_eq!(
            format_by_name(Path::new("a/training.tfrecord-00000-of-01000")),
            Some(SourceFormat::Womd)
        );
        assert_eq!(
            format_by_name(Path::new("x.tfrecord")),
            Some(SourceFormat::Womd)
        );
        assert_eq!(
            format_by_name(Path::new("x.JSON")),
            Some(SourceFormat::Gpudrive)
        );
        assert_eq!(
            format_by_name(Path::new("x.spc")),
            Some(SourceFormat::Cache)
        );
        assert_eq!(format_by_name(Path::new("x.osm")), None);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("scene.bin");
        std::fs::copy(shared_data("womd/637f20cafde22ff8.tfrecord"), &copy).unwrap();
        assert_eq!(detect_format(&copy).unwrap(), SourceFormat::Womd);
        std::fs::write(&copy, b"  {\"objects\": []}").unwrap();
        assert_eq!(detect_format(&copy).unwrap(), SourceFormat::Gpudrive);
        std::fs::write(&copy, b"hello world, not a scene").unwrap();
        let e = detect_format(&copy).unwrap_err().to_string();
        assert!(
            e.contains("scene.bin") && e.contains("unknown scene format"),
            "{e}"
        );
    }

    #[test]
    fn every_shipped_womd_and_gpudrive_scene_validates() {
        let womd = load_scenes(&shared_data("womd"), BadScenePolicy::Fail).unwrap();
        assert_eq!(womd.len(), 2);
        let mut o = LoadOptions::new(BadScenePolicy::Fail);
        o.steps = StepRule::Any;
        let g = load_scenes_with(&[shared_data("gpudrive")], o).unwrap();
        assert_eq!(g.scenes.len(), 12);
        // Under the simulation rule the two one-step fixtures are skipped, named.
        let mut o = LoadOptions::new(BadScenePolicy::Skip);
        o.quiet = true;
        let g = load_scenes_with(&[shared_data("gpudrive")], o).unwrap();
        assert_eq!(g.scenes.len(), 10);
        assert_eq!(g.warnings.len(), 2);
        assert!(
            g.warnings[0]
                .to_string()
                .contains("agent-agent-collision.json"),
            "{}",
            g.warnings[0]
        );
        assert!(
            g.warnings[0].to_string().contains("1 steps, expected 91"),
            "{}",
            g.warnings[0]
        );
    }

    #[test]
    fn interaction_directories_and_csvs_load() {
        let dir = shared_data("interaction");
        let files = expand_paths(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        let scenes = load_scenes(&dir, BadScenePolicy::Fail).unwrap();
        assert_eq!(scenes.len(), 292);
        let ped = dir.join("DR_USA_Intersection_EP0_pedestrian_tracks_000.csv");
        assert_eq!(load_scenes(&ped, BadScenePolicy::Fail).unwrap().len(), 292);
    }

    #[test]
    fn a_cache_round_trips_through_the_loader() {
        let dir = tempfile::tempdir().unwrap();
        let scenes = load_scenes(&shared_data("womd"), BadScenePolicy::Fail).unwrap();
        let p = dir.path().join("c.spc");
        crate::scenario::cache::write_cache(&p, &scenes).unwrap();
        assert_eq!(load_scenes(&p, BadScenePolicy::Fail).unwrap(), scenes);
    }

    #[test]
    fn scenes_given_twice_are_kept_once() {
        let mut o = LoadOptions::new(BadScenePolicy::Skip);
        o.quiet = true;
        let both = load_scenes_with(&[shared_data("womd"), shared_data("gpudrive")], o)
            .unwrap()
            .scenes;
        let (unique, dropped) = unique_by_id(both.clone());
        assert_eq!((both.len(), unique.len(), dropped), (12, 10, 2));
        assert_eq!(unique[0], both[0], "the first copy is kept");
    }

    #[test]
    fn empty_files_are_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.tfrecord");
        std::fs::write(&empty, b"").unwrap();
        let e = load_scenes(&empty, BadScenePolicy::Fail)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("empty.tfrecord") && e.contains("no scenes"),
            "{e}"
        );
        let mut o = LoadOptions::new(BadScenePolicy::Skip);
        o.quiet = true;
        let l = load_scenes_with(&[empty, shared_data("womd")], o).unwrap();
        assert_eq!((l.scenes.len(), l.warnings.len()), (2, 1));
    }

    #[test]
    fn missing_paths_fail_whatever_the_policy() {
        let e = load_scenes(Path::new("/nonexistent/x.json"), BadScenePolicy::Skip).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.json"), "{e}");
    }
}
