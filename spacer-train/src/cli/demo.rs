//! `spacer demo`: the main job on embedded defaults. It gathers the shipped real
//! scenes (WOMD, GPUDrive JSON, INTERACTION) and generated synthetic ones, rolls every
//! sim agent out in the simulator — log replay, constant velocity, the log tokenized and
//! replayed, random tokens, and the policy from a weights blob — scores them with the
//! official WOSAC 2025 metrics, and writes the scores, a chart, the policy blob and a
//! render of one of the policy's rollouts into `--out`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
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
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
