//! `spacer eval`: roll sim agents out with the simulator and score them with the
//! official Waymo Sim Agents metrics.
//!
//! ```text
//! spacer eval --agents log,const-vel,logged-tokens --scenes ../shared/data/womd \
//!     --rollouts 32 --config 2025 --out submission.binproto --chart eval.png
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spacer_core::policy::Selection;
use spacer_core::tokenizer::{DEFAULT_TOKENS, Vocabulary};

use crate::eval::{AgentEvaluation, EvalConfig, evaluate, events_table};
use crate::metrics::chart::bar_chart;
use crate::metrics::rollouts::write_submission;
use crate::metrics::{MetricsConfig, MetricsReport};
use crate::policy_file::PolicyFile;
use crate::reference::Sampling;
use crate::reference::agent::ReferenceAgent;
use crate::scenario::Scene;
use crate::scenario::load::{BadScenePolicy, LoadOptions, load_scenes_with};
use crate::scenario::synthetic::{SyntheticConfig, generate_many};
use crate::sim::{SimAgent, SimAgentKind};
use crate::training::Cpu;

/// Arguments of `spacer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Sim agents to evaluate, comma-separated or repeated: `log`, `const-vel`,
    /// `logged-tokens`, `random`, `policy` (the `--policy` blob), `ref:CKPT` (a
    /// reference model checkpoint written by `spacer train-ref`).
    #[arg(long, required = true, value_delimiter = ',')]
    pub agents: Vec<String>,
    /// Scene files or directories (WOMD TFRecord, GPUDrive JSON, INTERACTION CSV, scene
    /// cache). Scenes that are not 91 steps long, or fail validation, are skipped with
    /// a warning.
    #[arg(long, num_args = 1..)]
    pub scenes: Vec<PathBuf>,
    /// Also generate this many synthetic scenes (seeded by `--seed`).
    #[arg(long, default_value_t = 0)]
    pub synthetic: usize,
    /// Use at most this many scenes (the first ones).
    #[arg(long)]
    pub max_scenes: Option<usize>,
    /// Only the fixed held-out split of the real scenes (the one `spacer train-ref`
    /// and `spacer bc` never train on; INTERACTION cut into non-overlapping windows,
    /// scenes that cannot teach motion left out).
    #[arg(long)]
    pub held_out: bool,
    /// Rollouts per scene.
    #[arg(long, default_value_t = 32)]
    pub rollouts: usize,
    /// Metric configuration: `2024`, `2025` or a text-format file.
    #[arg(long, default_value = "2025")]
    pub config: String,
    /// Weights blob for `policy` (default: the deterministic initialisation).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Sampling temperature of the policy (0 = argmax).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Sample among the policy's top-k tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: u16,
    /// Sampling temperature of `ref:` agents.
    #[arg(long, default_value_t = 1.0)]
    pub ref_temperature: f32,
    /// `ref:` agents sample among their top-k tokens (0 = all).
    #[arg(long, default_value_t = 40)]
    pub ref_top_k: u16,
    /// Seed of the rollouts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write each agent's rollouts as a `SimAgentsChallengeSubmission` (with several
    /// agents, `STEM-AGENT.binproto` beside this path).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the scores (proto field names) and event rates as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the agents' average scores as a bar chart (PNG, and SVG beside it).
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

/// What the agents evaluate on and with.
pub struct EvalInputs {
    /// The scenes.
    pub scenes: Vec<Arc<Scene>>,
    /// The token vocabulary of the token agents.
    pub vocabulary: Vocabulary,
    /// The policy blob of `policy`.
    pub policy: PolicyFile,
    /// How the policy samples.
    pub selection: Selection,
    /// How `ref:` agents sample.
    pub ref_sampling: Sampling,
}

/// Loads scenes from `paths` (skipping bad ones with a warning) plus `synthetic`
/// generated ones.
///
/// # Errors
/// Unreadable paths.
pub fn gather_scenes(
    paths: &[PathBuf],
    synthetic: usize,
    seed: u64,
    max: Option<usize>,
) -> anyhow::Result<Vec<Arc<Scene>>> {
    let mut scenes: Vec<Arc<Scene>> = Vec::new();
    if !paths.is_empty() {
        let loaded = load_scenes_with(paths, LoadOptions::new(BadScenePolicy::Skip))?;
        scenes.extend(loaded.scenes.into_iter().map(Arc::new));
    }
    if synthetic > 0 {
        scenes.extend(
            generate_many(&SyntheticConfig::default(), synthetic, seed)
                .into_iter()
                .map(Arc::new),
        );
    }
    if let Some(m) = max {
        scenes.truncate(m);
    }
    if scenes.is_empty() {
        bail!("no scenes: give --scenes PATH... and/or --synthetic N");
    }
    Ok(scenes)
}

/// The held-out real scenes of `paths`: read as the training commands read them
/// ([`super::scenes::load`]), motion-less scenes left out, the fixed held-out split.
///
/// # Errors
/// Unreadable paths, or no held-out scene among them.
pub fn held_out_scenes(paths: &[PathBuf], max: Option<usize>) -> anyhow::Result<Vec<Arc<Scene>>> {
    let scenes = super::scenes::usable_for_motion(super::scenes::load(paths)?);
    let mut held: Vec<Arc<Scene>> = super::scenes::split(scenes)
        .1
        .into_iter()
        .map(Arc::new)
        .collect();
    if let Some(m) = max {
        held.truncate(m);
    }
    if held.is_empty() {
        bail!("no held-out scene among the --scenes");
    }
    Ok(held)
}

/// Builds a sim agent from its command-line name: a [`SimAgentKind`] or `ref:CKPT`.
///
/// # Errors
/// An unknown name, or a checkpoint that does not load.
pub fn build_agent(
    spec: &str,
    inputs: &EvalInputs,
    seed: u64,
) -> anyhow::Result<Box<dyn SimAgent>> {
    if let Some(path) = spec.strip_prefix("ref:") {
        let agent = ReferenceAgent::<Cpu>::load(
            Path::new(path),
            inputs.ref_sampling,
            seed,
            &Default::default(),
        )?;
        return Ok(Box::new(agent));
    }
    let kind: SimAgentKind = spec.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(kind.build(&inputs.vocabulary, &inputs.policy, inputs.selection, seed))
}

/// Evaluates every agent of `specs` and prints the tables; returns the evaluations.
///
/// # Errors
/// A failing agent.
pub fn evaluate_agents(
    specs: &[String],
    inputs: &EvalInputs,
    config: &EvalConfig,
) -> anyhow::Result<Vec<(String, AgentEvaluation)>> {
    let mut results = Vec::new();
    for spec in specs {
        let mut agent = build_agent(spec, inputs, config.seed)?;
        let bar = ProgressBar::new(inputs.scenes.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} scenes {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(spec.clone());
        let e = evaluate(spec, &inputs.scenes, agent.as_mut(), config, |n| {
            bar.set_position(n as u64)
        })
        .with_context(|| format!("evaluating {spec}"))?;
        bar.finish_and_clear();
        for (id, why) in &e.skipped {
            eprintln!("warning: {spec}: scene {id} not scored: {why}");
        }
        results.push((spec.clone(), e));
    }
    Ok(results)
}

/// Prints the realism table, the event table, and writes the requested outputs.
///
/// # Errors
/// Unwritable outputs.
pub fn report(
    results: &[(String, AgentEvaluation)],
    config: &EvalConfig,
    json: Option<&Path>,
    chart: Option<&Path>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let report = MetricsReport {
        config: config.metrics.name.clone(),
        agents: results.iter().map(|(_, e)| e.scores.clone()).collect(),
    };
    println!("{}", report.table());
    let events: Vec<(&str, &crate::eval::EventRates)> = results
        .iter()
        .map(|(n, e)| (n.as_str(), &e.events))
        .collect();
    println!("simulator events (share of controlled agents over all rollouts) and speed:");
    print!("{}", events_table(&events));
    if let Some(path) = json {
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
            events: &'a crate::eval::EventRates,
        }
        let o = Out {
            config: &config.metrics.name,
            rollouts: config.rollouts,
            agents: results
                .iter()
                .map(|(n, e)| AgentOut {
                    name: n,
                    scores: &e.scores,
                    events: &e.events,
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&o)?;
        crate::fsutil::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = chart {
        let averages = report.averages();
        bar_chart(
            &format!(
                "WOSAC {} realism, {} rollouts per scene",
                config.metrics.name, config.rollouts
            ),
            &averages,
            path,
        )?;
        println!("wrote {} (and .svg)", path.display());
    }
    if let Some(path) = out {
        for (name, e) in results {
            let p = if results.len() == 1 {
                path.to_path_buf()
            } else {
                suffixed(path, name)
            };
            write_submission(&p, &e.submission)?;
            println!(
                "wrote {} ({} scenes)",
                p.display(),
                e.submission.scenario_rollouts.len()
            );
        }
    }
    Ok(())
}

/// `dir/stem-suffix.ext` from `dir/stem.ext`.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
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

/// The policy's selection from a temperature and top-k.
pub fn selection(temperature: f32, top_k: u16) -> Selection {
    if temperature > 0.0 {
        Selection::Sample { temperature, top_k }
    } else {
        Selection::Argmax
    }
}

/// Runs `spacer eval`.
///
/// # Errors
/// Bad arguments, unreadable inputs, failing agents.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let metrics = MetricsConfig::resolve(&args.config)?;
    let scenes = if args.held_out {
        if args.synthetic > 0 {
            bail!("--held-out takes real scenes only; leave out --synthetic");
        }
        held_out_scenes(&args.scenes, args.max_scenes)?
    } else {
        gather_scenes(&args.scenes, args.synthetic, args.seed, args.max_scenes)?
    };
    let vocabulary =
        Vocabulary::kinematic_grid(DEFAULT_TOKENS).map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = match &args.policy {
        Some(p) => PolicyFile::read(p)?,
        None => PolicyFile::initial(&vocabulary, 1),
    };
    let inputs = EvalInputs {
        scenes,
        vocabulary,
        policy,
        selection: selection(args.temperature, args.top_k),
        ref_sampling: Sampling {
            temperature: args.ref_temperature,
            top_k: args.ref_top_k,
        },
    };
    let config = EvalConfig::new(metrics, args.rollouts, args.seed);
    println!(
        "spacer eval: {} scenes x {} rollouts, config {}, agents {}",
        inputs.scenes.len(),
        config.rollouts,
        config.metrics.name,
        args.agents.join(", ")
    );
    let results = evaluate_agents(&args.agents, &inputs, &config)?;
    report(
        &results,
        &config,
        args.json.as_deref(),
        args.chart.as_deref(),
        args.out.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{ReferenceConfig, ReferenceModel};

    fn inputs(scenes: Vec<Arc<Scene>>) -> EvalInputs {
        let vocabulary = Vocabulary::kinematic_grid(DEFAULT_TOKENS).unwrap();
        EvalInputs {
            scenes,
            policy: PolicyFile::initial(&vocabulary, 1),
            vocabulary,
            selection: Selection::Argmax,
            ref_sampling: Sampling::default(),
        }
    }

    #[test]
    fn reference_checkpoints_are_sim_agents_scored_by_eval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.ckpt");
        let v = Vocabulary::kinematic_grid(DEFAULT_TOKENS).unwrap();
        let model = ReferenceModel::<Cpu>::new(
            ReferenceConfig::tiny(DEFAULT_TOKENS),
            v,
            &Default::default(),
            0,
        )
        .unwrap();
        model
            .to_checkpoint(0, String::new())
            .unwrap()
            .write(&path)
            .unwrap();
        let scene = crate::scenario::womd::read_scenes(&crate::paths::shared_data(
            "womd/637f20cafde22ff8.tfrecord",
        ))
        .unwrap()
        .remove(0);
        let inputs = inputs(vec![Arc::new(scene)]);
        let spec = format!("ref:{}", path.display());
        let config = EvalConfig::new(MetricsConfig::challenge_2025().unwrap(), 1, 0);
        let results = evaluate_agents(std::slice::from_ref(&spec), &inputs, &config).unwrap();
        let m = results[0].1.scores.average.metrics.metametric;
        assert!(m > 0.0 && m < 1.0, "{m}");
        assert_eq!(results[0].1.submission.scenario_rollouts.len(), 1);

        // A missing checkpoint and an unknown agent are errors naming them.
        let Err(e) = build_agent("ref:no/such.ckpt", &inputs, 0) else {
            panic!("a missing checkpoint loaded");
        };
        assert!(format!("{e:#}").contains("no/such.ckpt"), "{e:#}");
        let Err(e) = build_agent("oracle", &inputs, 0) else {
            panic!("an unknown agent was built");
        };
        assert!(format!("{e:#}").contains("oracle"), "{e:#}");
    }

    #[test]
    fn held_out_scenes_are_the_fixed_split() {
        let dirs = [
            crate::paths::shared_data("womd"),
            crate::paths::shared_data("gpudrive"),
        ];
        let held = held_out_scenes(&dirs, None).unwrap();
        assert!(!held.is_empty());
        assert!(held.iter().all(|s| crate::training::is_held_out(&s.id)));
        assert!(held_out_scenes(&[PathBuf::from("no/such/dir")], None).is_err());
    }
}
