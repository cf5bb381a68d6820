//! `spacer demo`: the main job on embedded defaults. It gathers the shipped real
//! scenes (WOMD, GPUDrive JSON, INTERACTION) and generated synthetic ones, rolls every
//! sim agent out in the simulator — log replay, constant velocity, the log tokenized and
//! replayed, random tokens, and the policy from a weights blob — scores them with the
//! official WOSAC 2025 metrics, and writes the scores, a chart, the policy blob and a
//! render of one of the policy's rollouts into `--out`.
//!
//! Then (unless `--no-training`) it trains what anchors the policy to human driving,
//! each stage an ordinary `spacer` command printed before it runs (so any stage can be
//! rerun alone, at full size): the vocabulary from the training split
//! (`spacer vocab build`), a behaviour-cloned policy (`spacer bc --width 64`), a short
//! `nano` reference model (`spacer train-ref`), and scores the trained agents against
//! the baselines on the held-out real scenes (`spacer eval --held-out`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser};
use spacer_core::tokenizer::{DEFAULT_TOKENS, Vocabulary};

use super::eval::{EvalInputs, evaluate_agents, gather_scenes, report, selection};
use crate::eval::EvalConfig;
use crate::metrics::MetricsConfig;
use crate::policy_file::PolicyFile;
use crate::render::{RenderOptions, render_to_file};
use crate::scenario::Scene;
use crate::sim::{SimAgentKind, Simulator};

/// Arguments of `spacer demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Real scenes (default: the shipped WOMD and GPUDrive scenes and the first
    /// INTERACTION windows under ../shared/data).
    #[arg(long, num_args = 1..)]
    pub scenes: Vec<PathBuf>,
    /// Synthetic scenes to generate besides the real ones.
    #[arg(long, default_value_t = 24)]
    pub synthetic: usize,
    /// INTERACTION windows to use from the shipped recording (default scenes only).
    #[arg(long, default_value_t = 12)]
    pub interaction_windows: usize,
    /// Rollouts per scene.
    #[arg(long, default_value_t = 8)]
    pub rollouts: usize,
    /// The policy's weights blob (default: the deterministic initialisation).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Seed of the synthetic scenes and the rollouts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the outputs go.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Only the evaluation of the untrained agents: no vocabulary, behaviour cloning,
    /// reference model or held-out evaluation.
    #[arg(long)]
    pub no_training: bool,
    /// Behaviour-cloning steps of the training stage.
    #[arg(long, default_value_t = 200)]
    pub bc_steps: usize,
    /// Reference-model (`nano`) steps of the training stage.
    #[arg(long, default_value_t = 300)]
    pub reference_steps: usize,
    /// Rollouts per held-out scene in the training stage's evaluation.
    #[arg(long, default_value_t = 4)]
    pub heldout_rollouts: usize,
}

/// The `spacer` command lines of the training stage, in order: vocabulary,
/// behaviour cloning, reference model, held-out evaluation. `scenes` are the real
/// scene paths the commands read.
pub fn training_commands(args: &DemoArgs, scenes: &[PathBuf]) -> Vec<Vec<String>> {
    let out = |p: &str| args.out.join(p).display().to_string();
    let with_scenes = |mut argv: Vec<String>| {
        argv.push("--scenes".into());
        argv.extend(scenes.iter().map(|p| p.display().to_string()));
        argv
    };
    let words = |w: &[&str]| w.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let vocab = out("vocab.postcard");
    let policy = out("bc/policy.spw");
    let reference = out("reference/reference.ckpt");
    let seed = args.seed.to_string();
    vec![
        with_scenes(words(&[
            "vocab",
            "build",
            "--k",
            "200",
            "--synthetic",
            "200",
            "--seed",
            &seed,
            "--out",
            &vocab,
        ])),
        with_scenes(words(&[
            "bc",
            "--width",
            "64",
            "--steps",
            &args.bc_steps.to_string(),
            "--eval-every",
            &(args.bc_steps / 4).max(1).to_string(),
            "--vocab",
            &vocab,
            "--seed",
            &seed,
            "--out",
            &out("bc"),
            "--export",
            &policy,
        ])),
        with_scenes(words(&[
            "train-ref",
            "--config",
            "nano",
            "--steps",
            &args.reference_steps.to_string(),
            "--eval-every",
            &(args.reference_steps / 3).max(1).to_string(),
            "--synthetic",
            "200",
            "--vocab",
            &vocab,
            "--seed",
            &seed,
            "--out",
            &out("reference"),
        ])),
        with_scenes(words(&[
            "eval",
            "--held-out",
            "--agents",
            &format!("ref:{reference},policy,const-vel,random,log"),
            "--policy",
            &policy,
            "--rollouts",
            &args.heldout_rollouts.to_string(),
            "--seed",
            &seed,
            "--json",
            &out("heldout.json"),
            "--chart",
            &out("heldout.png"),
        ])),
    ]
}

/// Runs one `spacer` command line, printed first.
fn run_command(argv: &[String]) -> anyhow::Result<()> {
    println!("\n$ spacer {}", argv.join(" "));
    let cli = super::Cli::try_parse_from(
        std::iter::once("spacer".to_string()).chain(argv.iter().cloned()),
    )?;
    super::run(cli)
}

fn default_scenes(interaction_windows: usize) -> anyhow::Result<Vec<Arc<Scene>>> {
    let data = crate::paths::shared_data_dir();
    let mut scenes = gather_scenes(&[data.join("womd"), data.join("gpudrive")], 0, 0, None)?;
    if interaction_windows > 0 {
        let csv = data.join("interaction/DR_USA_Intersection_EP0_vehicle_tracks_000.csv");
        let windows = gather_scenes(&[csv], 0, 0, None)?;
        // Windows start every second; keep non-overlapping ones (every tenth).
        scenes.extend(windows.into_iter().step_by(10).take(interaction_windows));
    }
    Ok(scenes)
}

/// Runs `spacer demo`.
///
/// # Errors
/// Missing data, failing agents, unwritable outputs.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    std::fs::create_dir_all(&args.out).map_err(|e| crate::error::DataError::io(&args.out, e))?;
    let mut scenes = if args.scenes.is_empty() {
        default_scenes(args.interaction_windows)?
    } else {
        gather_scenes(&args.scenes, 0, args.seed, None)?
    };
    let real = scenes.len();
    if args.synthetic > 0 {
        scenes.extend(gather_scenes(&[], args.synthetic, args.seed, None)?);
    }
    let agents_total: usize = scenes.iter().map(|s| s.tracks.len()).sum();
    println!(
        "spacer demo: {} scenes ({} real, {} synthetic; {} tracks), {} rollouts each, WOSAC 2025",
        scenes.len(),
        real,
        scenes.len() - real,
        agents_total,
        args.rollouts
    );

    let vocabulary =
        Vocabulary::kinematic_grid(DEFAULT_TOKENS).map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = match &args.weights {
        Some(p) => PolicyFile::read(p)?,
        None => PolicyFile::initial(&vocabulary, 1),
    };
    let header = *policy.blob().header();
    println!(
        "policy: {} ({} parameters, {} training steps{})",
        args.weights
            .as_ref()
            .map_or("deterministic initialisation".to_string(), |p| p
                .display()
                .to_string()),
        policy.params().len(),
        header.trained_steps,
        if header.trained_steps == 0 {
            ", untrained"
        } else {
            ""
        }
    );
    let policy_path = args.out.join("policy.spw");
    policy.write(&policy_path)?;

    let metrics = MetricsConfig::challenge_2025()?;
    let config = EvalConfig::new(metrics, args.rollouts, args.seed);
    let inputs = EvalInputs {
        scenes,
        vocabulary,
        policy,
        selection: selection(1.0, 0),
        ref_sampling: crate::reference::Sampling::default(),
    };
    let specs: Vec<String> = SimAgentKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    let results = evaluate_agents(&specs, &inputs, &config)?;
    let json = args.out.join("eval.json");
    let chart = args.out.join("eval.png");
    report(&results, &config, Some(&json), Some(&chart), None)?;

    // One of the policy's rollouts, drawn: the first real scene, world 0.
    if let Some(scene) = inputs.scenes.first() {
        let mut sim = Simulator::new(std::slice::from_ref(scene), config.sim)?;
        let mut agent = super::eval::build_agent("policy", &inputs, args.seed)?;
        sim.run(agent.as_mut(), args.seed)?;
        if let Some(r) = sim.rollouts().first() {
            let mut drawn = (**scene).clone();
            for (t, o) in drawn.tracks.iter_mut().zip(&r.objects) {
                t.states.clone_from(&o.states);
            }
            let path = args.out.join("policy-rollout.png");
            let options = RenderOptions {
                step: Some(scene.current_step + 40),
                radius: Some(60.0),
                ..RenderOptions::default()
            };
            render_to_file(&drawn, &options, &path)?;
            println!(
                "wrote {} (scene {}, 4 s into the policy's rollout)",
                path.display(),
                scene.id
            );
        }
    }
    println!("wrote {}", policy_path.display());
    println!(
        "evaluation of the untrained agents done in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    if !args.no_training {
        let data = crate::paths::shared_data_dir();
        let real = if args.scenes.is_empty() {
            vec![
                data.join("womd"),
                data.join("gpudrive"),
                data.join("interaction"),
            ]
        } else {
            args.scenes.clone()
        };
        println!(
            "\ntraining stage: vocabulary, behaviour cloning ({} steps), nano reference ({} steps), held-out evaluation",
            args.bc_steps, args.reference_steps
        );
        for argv in training_commands(&args, &real) {
            run_command(&argv)?;
        }
    }
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_training_stage_is_made_of_valid_commands() {
        let cli =
            super::super::Cli::try_parse_from(["spacer", "demo", "--bc-steps", "8", "--out", "o"]);
        let Ok(super::super::Cli {
            command: super::super::Command::Demo(args),
        }) = cli
        else {
            panic!("{cli:?}");
        };
        let cmds = training_commands(&args, &[PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(cmds.len(), 4);
        for argv in &cmds {
            let parsed = super::super::Cli::try_parse_from(
                std::iter::once("spacer".to_string()).chain(argv.iter().cloned()),
            );
            assert!(parsed.is_ok(), "{argv:?}: {parsed:?}");
            assert!(argv.ends_with(&["--scenes".into(), "a".into(), "b".into()]));
        }
        assert!(cmds[1].contains(&"8".to_string()));
        assert!(cmds[3].iter().any(|w| w.starts_with("ref:o")));
    }
}
