//! Scoring submission files against scene files, the pipeline of `spacer metrics`:
//! rollouts named `NAME=FILES` (or by their file stem), a submission given as one
//! file, as its shards separated by commas or as the directory of its shards (the
//! official format: `NAME.binproto-00000-of-00150` and so on), every covered scene
//! scored in parallel, one [`MetricsReport`] for all agents.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::rollouts::read_submission_shards;
use super::{
    AgentScores, MetricsConfig, MetricsError, MetricsReport, ScenarioFeatures, score_features,
};
use crate::error::{DataError, Location};
use crate::scenario::Scene;
use crate::scenario::load::{BadScenePolicy, load_scenes};

/// An agent name and its rollouts from `NAME=FILES` or `FILES`, where `FILES` is a
/// file, shards separated by commas, or a directory of shards.
pub fn named(spec: &str) -> (String, String) {
    match spec.split_once('=') {
        Some((name, files)) if !name.is_empty() && !Path::new(spec).exists() => {
            (name.to_string(), files.to_string())
        }
        _ => {
            let first = spec.split(',').next().unwrap_or_default();
            let path = Path::new(first.trim_end_matches('/'));
            let stem = path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = stem.split('.').next().unwrap_or_default().to_string();
            (stem, spec.to_string())
        }
    }
}

/// The shard files of `files`: one path, paths separated by commas (a path that
/// exists as given is never split), or a directory (its files whose name contains
/// `.binproto`, in name order).
pub fn shard_paths(files: &str) -> Result<Vec<PathBuf>, DataError> {
    let whole = Path::new(files);
    if whole.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(whole)
            .map_err(|e| DataError::io(whole, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().contains(".binproto"))
            })
            .collect();
        v.sort();
        if v.is_empty() {
            return Err(DataError::invalid(
                whole,
                Location::file(),
                "no .binproto shard in the directory",
            ));
        }
        return Ok(v);
    }
    if whole.exists() || !files.contains(',') {
        return Ok(vec![whole.to_path_buf()]);
    }
    Ok(files
        .split(',')
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .collect())
}

/// A note when shard names say how many shards there are (`...-00003-of-00150`) and
/// that many were not given.
pub fn missing_shards_note(paths: &[PathBuf]) -> Option<String> {
    let total = paths.iter().find_map(|p| {
        let name = p.file_name()?.to_string_lossy().into_owned();
        let (_, of) = name.rsplit_once("-of-")?;
        of.parse::<usize>().ok()
    })?;
    (total != paths.len()).then(|| {
        format!(
            "note: {} shards given, their names say the submission has {total}",
            paths.len()
        )
    })
}

/// Scores one agent's rollouts file against the scenes it covers.
///
/// # Errors
/// An unreadable shard, rollouts of a scene not in `scenes`, rollouts that do not
/// fit their scene.
pub fn score_agent(
    name: &str,
    paths: &[PathBuf],
    scenes: &HashMap<&str, &Scene>,
    config: &MetricsConfig,
    progress: bool,
) -> Result<AgentScores, MetricsError> {
    let submission = read_submission_shards(paths)?;
    if let Some(note) = missing_shards_note(paths) {
        eprintln!("{note}");
    }
    let path = paths.first().map(PathBuf::as_path).unwrap_or(Path::new(""));
    for r in &submission.scenario_rollouts {
        if !scenes.contains_key(r.scenario_id.as_str()) {
            return Err(DataError::invalid(
                path,
                Location::file(),
                format!(
                    "rollouts for scene {} that is not among the --scenario scenes",
                    crate::limits::quote(&r.scenario_id)
                ),
            )
            .into());
        }
        if r.joint_scenes.len() != 32 {
            eprintln!(
                "note: {}: scene {} has {} rollouts (the challenge uses 32)",
                path.display(),
                r.scenario_id,
                r.joint_scenes.len()
            );
        }
    }
    let n = submission.scenario_rollouts.len() as u64;
    let bar = if progress {
        ProgressBar::new(n)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} scenes {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    let metrics = submission
        .scenario_rollouts
        .par_iter()
        .map(|r| {
            let scene = scenes[r.scenario_id.as_str()];
            let features = ScenarioFeatures::compute(scene, r)?;
            let m = score_features(config, &features)?;
            bar.inc(1);
            Ok(m)
        })
        .collect::<Result<Vec<_>, MetricsError>>()
        .map_err(|e| match e {
            MetricsError::Data(d) => MetricsError::Data(d),
            e => DataError::invalid(path, Location::file(), e.to_string()).into(),
        })?;
    bar.finish_and_clear();
    AgentScores::new(name, config, metrics)
}

/// Scores every rollouts spec (`NAME=FILES` or `FILES`, see [`named`] and
/// [`shard_paths`]) against the scenes of `scenario` (files or directories).
///
/// # Errors
/// Unreadable files, rollouts for scenes not given, rollouts that do not fit their
/// scene, a config that cannot score.
pub fn score_files(
    scenario: &[PathBuf],
    rollouts: &[String],
    config: &MetricsConfig,
    progress: bool,
) -> Result<MetricsReport, MetricsError> {
    let mut all_scenes = Vec::new();
    for p in scenario {
        all_scenes.extend(load_scenes(p, BadScenePolicy::Fail)?);
    }
    let scenes: HashMap<&str, &Scene> = all_scenes.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut agents = Vec::new();
    for spec in rollouts {
        let (name, files) = named(spec);
        let paths = shard_paths(&files)?;
        agents.push(score_agent(&name, &paths, &scenes, config, progress)?);
    }
    Ok(MetricsReport {
        config: config.name.clone(),
        agents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;

    #[test]
    fn a_submission_in_shards_scores_like_its_parts() {
        use crate::metrics::rollouts::{ScenarioRollouts, Submission, write_submission};
        let dir = tempfile::tempdir().unwrap();
        let shards = dir.path().join("cv");
        std::fs::create_dir(&shards).unwrap();
        // Shard 0: the shipped constant-velocity rollouts of 637f20cafde22ff8; shard 1:
        // the logged future of the other WOMD scene.
        let first = shards.join("cv.binproto-00000-of-00002");
        std::fs::copy(
            shared_data("wosac/637f20cafde22ff8_constvel_submission.binproto"),
            &first,
        )
        .unwrap();
        let other_path = shared_data("womd/ee519cf571686d19.tfrecord");
        let other = crate::scenario::womd::read_scenes(&other_path)
            .unwrap()
            .remove(0);
        let logged = ScenarioRollouts::logged(&other);
        let second = shards.join("cv.binproto-00001-of-00002");
        let part = Submission {
            scenario_rollouts: vec![logged.clone()],
            ..Submission::default()
        };
        write_submission(&second, &part).unwrap();
        std::fs::write(shards.join("README.txt"), "not a shard").unwrap();
        let config = MetricsConfig::resolve("2025").unwrap();
        let report = score_files(
            &[shared_data("womd/637f20cafde22ff8.tfrecord"), other_path],
            &[
                shards.display().to_string(),
                format!("listed={},{}", first.display(), second.display()),
            ],
            &config,
            false,
        )
        .unwrap();
        let alone = crate::metrics::score_scenario(&config, &other, &logged).unwrap();
        assert_eq!(report.agents[0].name, "cv");
        assert_eq!(report.agents[1].name, "listed");
        for a in &report.agents {
            assert_eq!(a.scenes.len(), 2, "{}", a.name);
            let cv = &a.scenes[0].metrics;
            assert_eq!(cv.scenario_id.as_deref(), Some("637f20cafde22ff8"));
            assert!((cv.metametric - 0.25824).abs() < 1e-4, "{}", cv.metametric);
            assert_eq!(a.scenes[1].metrics, alone);
        }
        assert_eq!(missing_shards_note(&[first.clone(), second]), None);
        let note = missing_shards_note(&[first]).unwrap();
        assert!(
            note.contains("1 shards given") && note.contains("has 2"),
            "{note}"
        );
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = shard_paths(&empty.display().to_string()).unwrap_err();
        assert!(e.to_string().contains("no .binproto shard"), "{e}");
    }

    #[test]
    fn names_and_missing_scenes() {
        assert_eq!(named("a=b/c.binproto"), ("a".into(), "b/c.binproto".into()));
        assert_eq!(
            named("dir/sub.mission.binproto"),
            ("sub".into(), "dir/sub.mission.binproto".into())
        );
        assert_eq!(
            named("x/s.binproto-00000-of-00002,x/s.binproto-00001-of-00002"),
            (
                "s".into(),
                "x/s.binproto-00000-of-00002,x/s.binproto-00001-of-00002".into()
            )
        );
        let config = MetricsConfig::resolve("2024").unwrap();
        let e = score_files(
            &[shared_data("womd/ee519cf571686d19.tfrecord")],
            &[
                shared_data("wosac/637f20cafde22ff8_constvel_submission.binproto")
                    .display()
                    .to_string(),
            ],
            &config,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not among the --scenario scenes"), "{e}");
    }
}
