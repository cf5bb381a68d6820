//! `spacer demo`: the main job on embedded defaults ([`crate::demo`]).

use std::path::PathBuf;

use clap::Args;

use crate::demo::{DemoConfig, run as run_demo};

/// Arguments of `spacer demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Real scenes (default: the shipped WOMD, GPUDrive and INTERACTION scenes under
    /// ../shared/data when present; synthetic scenes only otherwise).
    #[arg(long, num_args = 1..)]
    pub scenes: Vec<PathBuf>,
    /// Synthetic training scenes to generate besides the real ones.
    #[arg(long, default_value_t = 200)]
    pub synthetic: usize,
    /// Behaviour-cloning steps.
    #[arg(long, default_value_t = 300)]
    pub bc_steps: usize,
    /// Reference-model (`nano`) steps.
    #[arg(long, default_value_t = 300)]
    pub reference_steps: usize,
    /// Reference-model closed-loop fine-tuning steps (0: none).
    #[arg(long, default_value_t = 60)]
    pub closed_loop_steps: usize,
    /// Keep the reference's sampling at temperature 1 / top-40 instead of choosing
    /// it on the validation split.
    #[arg(long)]
    pub no_sampling_search: bool,
    /// SPACeR training budget in 10 Hz agent-steps (0: skip the SPACeR policy).
    #[arg(long, default_value_t = 600_000)]
    pub spacer_steps: u64,
    /// Rollouts per held-out scene.
    #[arg(long, default_value_t = 8)]
    pub rollouts: usize,
    /// Seed of everything.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the outputs go.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
}

/// Runs `spacer demo`.
///
/// # Errors
/// Any stage's error.
pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let defaults = DemoConfig::default();
    let config = DemoConfig {
        scenes: if a.scenes.is_empty() {
            defaults.scenes
        } else {
            a.scenes
        },
        synthetic: a.synthetic,
        bc_steps: a.bc_steps,
        reference_steps: a.reference_steps,
        closed_loop_steps: a.closed_loop_steps,
        sampling_search: !a.no_sampling_search,
        spacer_steps: a.spacer_steps,
        rollouts: a.rollouts,
        seed: a.seed,
        out: a.out,
    };
    let report = run_demo(&config, &mut |line| println!("{line}"))?;
    for f in &report.files {
        println!("wrote {}", f.display());
    }
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
