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
//! averages (PNG, with an SVG beside it). The scoring is
//! [`crate::metrics::submissions::score_files`].

use std::path::PathBuf;

use clap::Args;

use crate::metrics::MetricsConfig;

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

/// Scores the rollouts, prints the table, writes the JSON and the chart.
pub fn run(args: MetricsArgs) -> anyhow::Result<()> {
    let config = MetricsConfig::resolve(&args.config)?;
    let report =
        crate::metrics::submissions::score_files(&args.scenario, &args.rollouts, &config, true)?;
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
}
