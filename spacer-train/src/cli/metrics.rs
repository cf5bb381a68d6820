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
//! compare several agents (`NAME=FILE` names one; else the file stem does). The table
//! goes to stdout; `--json` writes per-scene and average `SimAgentMetrics` and
//! `SimAgentsBucketedMetrics` with the proto field names; `--chart` draws the agents'
//! averages (PNG, with an SVG beside it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::metrics::rollouts::read_submission;
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
    /// optionally named `NAME=FILE`. Repeat to compare agents.
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

/// An agent name and its rollouts file from `NAME=FILE` or `FILE`.
fn named(spec: &str) -> (String, PathBuf) {
    match spec.split_once('=') {
        Some((name, file)) if !name.is_empty() && !Path::new(spec).exists() => {
            (name.to_string(), PathBuf::from(file))
        }
        _ => {
            let path = PathBuf::from(spec);
            let stem = path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = stem.split('.').next().unwrap_or_default().to_string();
            (stem, path)
        }
    }
}

/// Scores one agent's rollouts file against the scenes it covers.
fn score_agent(
    name: &str,
    path: &Path,
    scenes: &HashMap<&str, &Scene>,
    config: &MetricsConfig,
) -> anyhow::Result<AgentScores> {
    let submission = read_submission(path)?;
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
        let (name, path) = named(spec);
        agents.push(score_agent(&name, &path, &scenes, config)?);
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
    fn names_and_missing_scenes() {
        assert_eq!(
            named("a=b/c.binproto"),
            ("a".into(), PathBuf::from("b/c.binproto"))
        );
        assert_eq!(
            named("dir/sub.mission.binproto"),
            ("sub".into(), PathBuf::from("dir/sub.mission.binproto"))
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
