//! What an evaluation writes: the metrics table and the simulator's event table as
//! text, the scores as JSON (proto field names), a bar chart, and each agent's
//! rollouts as a challenge submission.

use std::path::{Path, PathBuf};

use super::{AgentEvaluation, EvalConfig, EventRates, events_table};
use crate::error::DataError;
use crate::metrics::MetricsReport;
use crate::metrics::chart::bar_chart;
use crate::metrics::rollouts::write_submission;

/// The realism table and the event table of `results`.
pub fn tables(results: &[(String, AgentEvaluation)], config: &EvalConfig) -> String {
    let report = metrics_report(results, config);
    let events: Vec<(&str, &EventRates)> = results
        .iter()
        .map(|(n, e)| (n.as_str(), &e.events))
        .collect();
    format!(
        "{}\nsimulator events (share of controlled agents over all rollouts) and speed:\n{}",
        report.table(),
        events_table(&events)
    )
}

fn metrics_report(results: &[(String, AgentEvaluation)], config: &EvalConfig) -> MetricsReport {
    MetricsReport {
        config: config.metrics.name.clone(),
        agents: results.iter().map(|(_, e)| e.scores.clone()).collect(),
    }
}

/// The scores and event rates as JSON: `{config, rollouts, agents: [{name, scores,
/// events}]}`. Event rates carry no wall-clock timings, so identical runs give
/// identical files.
///
/// # Errors
/// An encoding failure (never for finite scores).
pub fn json(results: &[(String, AgentEvaluation)], config: &EvalConfig) -> Result<String, String> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        config: &'a str,
        rollouts: usize,
        agents: Vec<AgentOut<'a>>,
    }
    #[derive(serde::Serialize)]
    struct AgentOut<'a> {
        name: &'a str,
        scores: &'a crate::metrics::AgentScores,
        events: Events,
    }
    #[derive(serde::Serialize)]
    struct Events {
        agents: usize,
        collision: f64,
        offroad: f64,
        goal: f64,
    }
    let o = Out {
        config: &config.metrics.name,
        rollouts: config.rollouts,
        agents: results
            .iter()
            .map(|(n, e)| AgentOut {
                name: n,
                scores: &e.scores,
                events: Events {
                    agents: e.events.agents,
                    collision: e.events.collision,
                    offroad: e.events.offroad,
                    goal: e.events.goal,
                },
            })
            .collect(),
    };
    serde_json::to_string_pretty(&o).map_err(|e| e.to_string())
}

/// Where to write an evaluation's outputs.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Scores and event rates as JSON.
    pub json: Option<PathBuf>,
    /// Bar chart (PNG, SVG beside it).
    pub chart: Option<PathBuf>,
    /// Submission(s): with several agents `STEM-AGENT.binproto` beside this path.
    pub submission: Option<PathBuf>,
}

/// Writes the requested outputs; returns the files written.
///
/// # Errors
/// [`DataError`] naming an unwritable file.
pub fn write(
    results: &[(String, AgentEvaluation)],
    config: &EvalConfig,
    outputs: &Outputs,
) -> Result<Vec<PathBuf>, DataError> {
    let mut written = Vec::new();
    if let Some(path) = &outputs.json {
        let text = json(results, config)
            .map_err(|e| DataError::invalid(path, crate::error::Location::file(), e))?;
        crate::fsutil::write_atomic(path, text.as_bytes())?;
        written.push(path.clone());
    }
    if let Some(path) = &outputs.chart {
        let report = metrics_report(results, config);
        let averages = report.averages();
        written.extend(bar_chart(
            &format!(
                "WOSAC {} realism, {} rollouts per scene",
                config.metrics.name, config.rollouts
            ),
            &averages,
            path,
        )?);
    }
    if let Some(path) = &outputs.submission {
        for (name, e) in results {
            let p = if results.len() == 1 {
                path.clone()
            } else {
                suffixed(path, name)
            };
            write_submission(&p, &e.submission)?;
            written.push(p);
        }
    }
    Ok(written)
}

/// `dir/stem-suffix.ext` from `dir/stem.ext` (the suffix made file-name safe).
pub fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|s| format!(".{}", s.to_string_lossy()))
        .unwrap_or_default();
    let safe: String = suffix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    path.with_file_name(format!("{stem}-{safe}{ext}"))
}
