//! `spacer eval-ref`: the reference model as a closed-loop sim agent, scored with the
//! official Waymo Sim Agents metrics on the held-out scenes, beside constant
//! velocity, random tokens and the logged oracle.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::{AgentScores, MetricsConfig, MetricsReport};
use crate::reference::Sampling;
use crate::reference::agent::ReferenceAgent;
use crate::reference::wosac::evaluate_scene;
use crate::scenario::Scene;
use crate::sim::{ConstantVelocity, LogReplay, RandomTokens, SimAgent, SimConfig};
use crate::training::Cpu;

/// Arguments of `spacer eval-ref`.
#[derive(Debug, Args)]
pub struct EvalRefArgs {
    /// A checkpoint written by `spacer train-ref`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Scene files or directories.
    #[arg(long, num_args = 1.., required = true)]
    pub scenes: Vec<PathBuf>,
    /// Score every scene, not only the held-out split.
    #[arg(long)]
    pub all_scenes: bool,
    /// Rollouts per scene (the challenge uses 32).
    #[arg(long, default_value_t = 32)]
    pub rollouts: usize,
    /// Metric configuration: `2024`, `2025` or a text-format config file.
    #[arg(long, default_value = "2025")]
    pub config: String,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Sample among the top-k tokens (0 = all).
    #[arg(long, default_value_t = 40)]
    pub top_k: u16,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the scores as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `spacer eval-ref`.
pub fn run(a: EvalRefArgs) -> anyhow::Result<()> {
    let metrics = MetricsConfig::resolve(&a.config)?;
    let sampling = Sampling {
        temperature: a.temperature,
        top_k: a.top_k,
    };
    let reference =
        ReferenceAgent::<Cpu>::load(&a.checkpoint, sampling, a.seed, &Default::default())?;
    let vocab = reference.model().vocab.clone();
    let scenes = super::scenes::usable_for_motion(super::scenes::load(&a.scenes)?);
    let scenes: Vec<Scene> = if a.all_scenes {
        scenes
    } else {
        super::scenes::split(scenes).1
    };
    let mut agents: Vec<(String, Box<dyn SimAgent>)> = vec![
        ("reference".into(), Box::new(reference)),
        ("const-vel".into(), Box::new(ConstantVelocity)),
        ("random".into(), Box::new(RandomTokens::new(vocab, a.seed))),
        ("log".into(), Box::new(LogReplay)),
    ];
    let sim = SimConfig::default();
    let pb = ProgressBar::new((scenes.len() * agents.len()) as u64).with_style(
        ProgressStyle::with_template("eval-ref {bar:30} {pos}/{len} {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mut scored = Vec::new();
    let mut seconds = Vec::new();
    for (name, agent) in agents.iter_mut() {
        let t = std::time::Instant::now();
        let mut per_scene = Vec::new();
        for s in &scenes {
            pb.set_message(format!("{name} on {}", s.id));
            match evaluate_scene(
                &Arc::new(s.clone()),
                agent.as_mut(),
                &sim,
                a.rollouts,
                a.seed,
                &metrics,
            ) {
                Ok(m) => per_scene.push(m),
                Err(e) => pb.println(format!("warning: {name} on {}: {e}", s.id)),
            }
            pb.inc(1);
        }
        seconds.push(t.elapsed().as_secs_f64());
        scored.push(AgentScores::new(name.clone(), &metrics, per_scene)?);
    }
    pb.finish_and_clear();
    let report = MetricsReport {
        config: metrics.name.clone(),
        agents: scored,
    };
    println!(
        "{} scenes x {} rollouts, config {}, in {:.1} s",
        scenes.len(),
        a.rollouts,
        metrics.name,
        started.elapsed().as_secs_f64()
    );
    print!("{}", report.table());
    for ((name, _), s) in agents.iter().zip(&seconds) {
        println!("{name}: {s:.1} s");
    }
    if let Some(path) = &a.json {
        crate::fsutil::write_atomic(path, &serde_json::to_vec_pretty(&report)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
