//! `spacer metrics`: scores sim-agent rollouts made anywhere with the official Waymo
//! Sim Agents metrics.
//!
//! ```text
//! spacer metrics --scenario ../shared/data/womd/637f20cafde22ff8.tfrecord \
//!     --rollouts ../shared/data/wosac/637f20cafde22ff8_constvel_submission.binproto \
//!     --config 2025 --json metrics.json --chart metrics.png
//! ```
//!
//! `--scenario` takes scene files or directories (any format `scenario::load` reads);
//! every scene that a rollouts file covers is scored. `--rollouts` may be repeated to
//! compare several agents (`NAME=FILE` names one; else the file stem does). A
//! submission split into shards (the official format: `NAME.binproto-00000-of-00150`
//! and so on) is given as its files separated by commas or as the directory holding
//! them (every file whose name contains `.binproto`). The table
//! goes to stdout; `--json` writes per-scene and average `SimAgentMetrics` and
//! `SimAgentsBucketedMetrics` with the proto field names; `--chart` draws the agents'
//! averages (PNG, with an SVG beside it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::metrics::rollouts::read_submission_shards;
use crate::metrics::{AgentScores, MetricsConfig, MetricsReport, ScenarioFeatures, score_features};
use crate::scenario::Scene;
use crate::scenario::load::{BadScenePolicy, load_scenes};

/// Arguments of `spacer metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Scene file(s) or directories the rollouts start from (WOMD TFRecord, GPUDrive
    /// JSON, scene cache, ...).
    #[arg(long, required = true, num_args = 1..)]
    pub scenario: Vec<PathBuf>,
    /// Rollouts: a `SimAgentsChallengeSubmission` (or `ScenarioRollouts`) `.binproto`,
    /// optionally named `NAME=FILE`; a sharded submission as `FILE,FILE,...` or the
    /// directory of its shards. Repeat to compare agents.
    #[arg(long, required = true)]
    pub rollouts: Vec<String>,
    /// Metric configuration: `2024`, `2025`, or a text-format `SimAgentMetricsConfig`.
    #[arg(long, default_value = "2025")]
    pub config: String,
    /// Write the scores as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the agents' average scores as a bar chart PNG here (and an SVG beside it).
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

/// An agent name and its rollouts from `NAME=FILES` or `FILES`, where `FILES` is a
/// file, shards separated by commas, or a directory of shards.
fn named(spec: &str) -> (String, String) {
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
fn shard_paths(files: &str) -> anyhow::Result<Vec<PathBuf>> {
    let whole = Path::new(files);
    if whole.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(whole)
            .with_context(|| format!("reading directory {}", whole.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().contains(".binproto"))
            })
            .collect();
        v.sort();
        if v.is_empty() {
            bail!("{}: no .binproto shard in the directory", whole.display());
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
fn missing_shards_note(paths: &[PathBuf]) -> Option<String> {
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
fn score_agent(
    name: &str,
    paths: &[PathBuf],
    scenes: &HashMap<&str, &Scene>,
    config: &MetricsConfig,
) -> anyhow::Result<AgentScores> {
    let submission = read_submission_shards(paths)?;
    if let Some(note) = missing_shards_note(paths) {
        eprintln!("{note}");
    }
    let path = paths.first().map(PathBuf::as_path).unwrap_or(Path::new(""));
    for r in &submission.scenario_rollouts {
        if !scenes.contains_key(r.scenario_id.as_str()) {
            bail!(
                "{}: rollouts for scene {} that is not among the --scenario scenes",
                path.display(),
                crate::limits::quote(&r.scenario_id)
            );
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
    let bar = ProgressBar::new(submission.scenario_rollouts.len() as u64);
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
        .collect::<Result<Vec<_>, crate::metrics::MetricsError>>()
        .with_context(|| format!("scoring {}", path.display()))?;
    bar.finish_and_clear();
    Ok(AgentScores::new(name, config, metrics)?)
}

/// Scores the rollouts, prints the table, writes the JSON and the chart.
pub fn run(args: MetricsArgs) -> anyhow::Result<()> {
    let config = MetricsConfig::resolve(&args.config)?;
    let report = score(&args, &config)?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report)?;
        crate::fsutil::write_atomic(path, &json)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.chart {
        let title = format!("WOSAC METRICS  CONFIG {}", report.config);
        let [png, svg] = crate::metrics::chart::bar_chart(&title, &report.averages(), path)?;
        println!("wrote {} and {}", png.display(), svg.display());
    }
    Ok(())
}

/// The report `run` prints and writes.
///
/// # Errors
/// Unreadable files, rollouts for scenes not given, rollouts that do not fit their
/// scene, a config that cannot score.
pub fn score(args: &MetricsArgs, config: &MetricsConfig) -> anyhow::Result<MetricsReport> {
    let mut all_scenes = Vec::new();
    for p in &args.scenario {
        all_scenes.extend(load_scenes(p, BadScenePolicy::Fail)?);
    }
    let scenes: HashMap<&str, &Scene> = all_scenes.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut agents = Vec::new();
    for spec in &args.rollouts {
        let (name, files) = named(spec);
        let paths = shard_paths(&files)?;
        agents.push(score_agent(&name, &paths, &scenes, config)?);
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
    fn scores_the_shipped_submission_like_the_official_code() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("m.json");
        let chart = dir.path().join("m.png");
        let args = MetricsArgs {
            scenario: vec![shared_data("womd/637f20cafde22ff8.tfrecord")],
            rollouts: vec![format!(
                "constvel={}",
                shared_data("wosac/637f20cafde22ff8_constvel_submission.binproto").display()
            )],
            config: "2025".into(),
            json: Some(json.clone()),
            chart: Some(chart.clone()),
        };
        run(args).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(v["config"], "2025");
        let a = &v["agents"][0];
        assert_eq!(a["name"], "constvel");
        let m = &a["scenes"][0]["SimAgentMetrics"];
        assert_eq!(m["scenario_id"], "637f20cafde22ff8");
        assert!((m["metametric"].as_f64().unwrap() - 0.25824).abs() < 1e-4);
        let b = &a["average"]["SimAgentsBucketedMetrics"];
        assert!((b["map_based_metrics"].as_f64().unwrap() - 0.25285164).abs() < 1e-4);
        assert!(std::fs::metadata(&chart).unwrap().len() > 1000);
        assert!(chart.with_extension("svg").is_file());
    }

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
        let args = MetricsArgs {
            scenario: vec![shared_data("womd/637f20cafde22ff8.tfrecord"), other_path],
            rollouts: vec![
                shards.display().to_string(),
                format!("listed={},{}", first.display(), second.display()),
            ],
            config: "2025".into(),
            json: None,
            chart: None,
        };
        let config = MetricsConfig::resolve("2025").unwrap();
        let report = score(&args, &config).unwrap();
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
        let args = MetricsArgs {
            scenario: vec![shared_data("womd/ee519cf571686d19.tfrecord")],
            rollouts: vec![
                shared_data("wosac/637f20cafde22ff8_constvel_submission.binproto")
                    .display()
                    .to_string(),
            ],
            config: "2024".into(),
            json: None,
            chart: None,
        };
        let config = MetricsConfig::resolve(&args.config).unwrap();
        let e = score(&args, &config).unwrap_err().to_string();
        assert!(e.contains("not among the --scenario scenes"), "{e}");
    }
}
