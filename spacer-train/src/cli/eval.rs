//! `spacer eval`: roll sim agents out with the simulator and score them with the
//! official Waymo Sim Agents metrics.
//!
//! ```text
//! spacer eval --agents log,const-vel,spacer=policy:out/spacer/policy.spw --held-out \
//!     --rollouts 32 --config 2025 --out submission.binproto --chart eval.png
//! ```

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::args::DatasetArgs;
use crate::eval::report::{Outputs, tables, write};
use crate::eval::scenes::{SceneChoice, eval_scenes};
use crate::eval::tuning::{
    DEFAULT_TEMPERATURE_GRID, choices_table, choose_temperatures, evaluate_at_chosen,
};
use crate::eval::{
    AgentOptions, EvalConfig, check_ref_temperature, evaluate_specs, parse_specs, policy_selection,
};
use crate::metrics::MetricsConfig;
use crate::reference::Sampling;
use crate::scenario::dataset::Split;

/// Arguments of `spacer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Sim agents, comma-separated or repeated, each `[NAME=]SPEC`: `log`,
    /// `const-vel`, `logged-tokens`, `random`, `policy` (the untrained
    /// initialisation), `policy:FILE` (a weights blob), `ref:CKPT` (a reference model
    /// checkpoint).
    #[arg(long, required = true, value_delimiter = ',')]
    pub agents: Vec<String>,
    /// The scenes.
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Also generate this many synthetic scenes (seeded by `--seed`).
    #[arg(long, default_value_t = 0)]
    pub synthetic: usize,
    /// Use at most this many scenes (the first ones).
    #[arg(long)]
    pub max_scenes: Option<usize>,
    /// Only the fixed held-out split of the real scenes (nothing trains or tunes on
    /// it; INTERACTION cut into non-overlapping windows, scenes that cannot teach
    /// motion left out).
    #[arg(long, conflicts_with = "validation")]
    pub held_out: bool,
    /// Only the validation split of the real scenes.
    #[arg(long)]
    pub validation: bool,
    /// Rollouts per scene.
    #[arg(long, default_value_t = 32)]
    pub rollouts: usize,
    /// Metric configuration: `2024`, `2025` or a text-format file.
    #[arg(long, default_value = "2025")]
    pub config: String,
    /// Vocabulary of `logged-tokens`, `random` and `policy` (default: the kinematic
    /// grid of 200 tokens).
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Sampling temperature of policies (0 = argmax).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Choose each policy's sampling temperature on the validation split: the one of
    /// these (comma-separated; without values the default grid 0.5, 0.65, 0.8, 1,
    /// 1.25, 1.6) with the best realism there; then evaluate it at that temperature
    /// (`--temperature` is then unused).
    #[arg(long, value_delimiter = ',', num_args = 0.., conflicts_with = "validation")]
    pub choose_temperature: Option<Vec<f32>>,
    /// Policies sample among their top-k tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: u16,
    /// Sampling temperature of `ref:` agents (default: each checkpoint's own).
    #[arg(long)]
    pub ref_temperature: Option<f32>,
    /// `ref:` agents sample among their top-k tokens (default: each checkpoint's own).
    #[arg(long)]
    pub ref_top_k: Option<u16>,
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

/// Runs `spacer eval`.
///
/// # Errors
/// Bad arguments, unreadable inputs, failing agents.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let specs = parse_specs(&args.agents)?;
    let metrics = MetricsConfig::resolve(&args.config)?;
    let selection = policy_selection(args.temperature, args.top_k)?;
    if let Some(t) = args.ref_temperature {
        check_ref_temperature(t)?;
    }
    let config = EvalConfig::new(metrics, args.rollouts, args.seed);
    config.validate()?;
    let choice = if args.held_out {
        SceneChoice::Split(Split::HeldOut)
    } else if args.validation {
        SceneChoice::Split(Split::Validation)
    } else {
        SceneChoice::All {
            synthetic: args.synthetic,
        }
    };
    if matches!(choice, SceneChoice::Split(_)) && args.synthetic > 0 {
        bail!("--held-out and --validation take real scenes only; leave out --synthetic");
    }
    let chosen = eval_scenes(&args.data.paths(), &choice, args.seed, args.max_scenes)?;
    for note in &chosen.notes {
        println!("{note}");
    }
    let scenes = chosen.scenes;
    let mut options = AgentOptions::new(crate::vocab::read_or_grid(args.vocab.as_deref())?);
    options.policy_selection = selection;
    if args.ref_temperature.is_some() || args.ref_top_k.is_some() {
        let d = Sampling::default();
        options.ref_sampling = Some(Sampling {
            temperature: args.ref_temperature.unwrap_or(d.temperature),
            top_k: args.ref_top_k.unwrap_or(d.top_k),
        });
    }
    println!(
        "spacer eval: {} scenes x {} rollouts, config {}, agents {}",
        scenes.len(),
        config.rollouts,
        config.metrics.name,
        specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let results = match &args.choose_temperature {
        None => evaluate_specs(&specs, &scenes, &options, &config, true)?,
        Some(grid) => {
            let grid = if grid.is_empty() {
                DEFAULT_TEMPERATURE_GRID.to_vec()
            } else {
                grid.clone()
            };
            let validation = eval_scenes(
                &args.data.paths(),
                &SceneChoice::Split(Split::Validation),
                args.seed,
                None,
            )?;
            println!(
                "choosing policy temperatures on {} validation scenes",
                validation.scenes.len()
            );
            let choices = choose_temperatures(
                &specs,
                &validation.scenes,
                &options,
                &config,
                &grid,
                args.top_k,
                true,
            )?;
            print!("{}", choices_table(&choices));
            evaluate_at_chosen(
                &specs, &scenes, &options, &config, &choices, args.top_k, true,
            )?
        }
    };
    print!("{}", tables(&results, &config));
    let outputs = Outputs {
        json: args.json,
        chart: args.chart,
        submission: args.out,
    };
    for p in write(&results, &config, &outputs)? {
        println!("wrote {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::eval::AgentSpec;
    use crate::reference::{ReferenceConfig, ReferenceModel};
    use crate::training::Cpu;
    use spacer_core::tokenizer::{DEFAULT_TOKENS, Vocabulary};

    #[test]
    fn reference_checkpoints_are_sim_agents_scored_by_eval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.ckpt");
        let v = Vocabulary::kinematic_grid(DEFAULT_TOKENS).unwrap();
        let model = ReferenceModel::<Cpu>::new(
            ReferenceConfig::tiny(DEFAULT_TOKENS),
            v.clone(),
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
        let spec: AgentSpec = format!("tiny=ref:{}", path.display()).parse().unwrap();
        let config = EvalConfig::new(MetricsConfig::challenge_2025().unwrap(), 1, 0);
        let results = evaluate_specs(
            std::slice::from_ref(&spec),
            &[Arc::new(scene)],
            &AgentOptions::new(v),
            &config,
            false,
        )
        .unwrap();
        assert_eq!(results[0].0, "tiny");
        let m = results[0].1.scores.average.metrics.metametric;
        assert!(m > 0.0 && m < 1.0, "{m}");
        assert_eq!(results[0].1.submission.scenario_rollouts.len(), 1);
        let json = crate::eval::report::json(&results, &config).unwrap();
        assert!(
            json.contains("\"name\": \"tiny\"") && !json.contains("seconds"),
            "{json}"
        );
    }
}
