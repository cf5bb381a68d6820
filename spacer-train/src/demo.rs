//! The main job on embedded defaults (`spacer demo`): everything SPACeR needs, small
//! enough for a laptop, ending in a closed-loop comparison on the held-out scenes.
//!
//! 1. The dataset: the shipped real scenes when present (WOMD, GPUDrive JSON,
//!    INTERACTION under `../shared/data`, or the paths given) plus generated ones;
//!    without real scenes, generated validation and held-out scenes stand in.
//! 2. The vocabulary, built from the training scenes (cached).
//! 3. A behaviour-cloned policy (the imitation baseline, width 64).
//! 4. A short `nano` reference model (the anchor): teacher forcing, a short
//!    closed-loop fine-tuning, sampling chosen on the validation split.
//! 5. A SPACeR policy: self-play PPO anchored to that reference (the `cpu-demo`
//!    configuration), starting from the cloned policy (a few minutes of self-play
//!    from scratch give a near-random policy; see the README's "Training").
//! 6. Every agent rolled out on the held-out scenes and scored with the WOSAC 2025
//!    metrics: table, JSON, chart, and renders of one rollout.
//!
//! Each stage is the library function its own command runs (`spacer vocab build`,
//! `spacer bc`, `spacer train-ref`, `spacer train`, `spacer eval`), so any stage can be rerun alone at
//! full size.

use std::path::PathBuf;
use std::sync::Arc;

use crate::bc::{BcConfig, clone_policy};
use crate::eval::report::{Outputs, tables, write};
use crate::eval::{AgentEvaluation, AgentOptions, AgentSpec, EvalConfig, evaluate_specs};
use crate::metrics::MetricsConfig;
use crate::reference::recipe::{Recipe, recipe_vocabulary, train_reference};
use crate::render::{RenderOptions, render_to_file};
use crate::scenario::Scene;
use crate::scenario::dataset::{Dataset, DatasetConfig};
use crate::sim::Simulator;
use crate::training::{DeviceKind, RunOptions};

/// What the demo does.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Real scene paths (empty: synthetic only).
    pub scenes: Vec<PathBuf>,
    /// Synthetic training scenes.
    pub synthetic: usize,
    /// Behaviour-cloning steps.
    pub bc_steps: usize,
    /// Reference-model steps (teacher forcing).
    pub reference_steps: usize,
    /// Reference-model closed-loop fine-tuning steps (0: none).
    pub closed_loop_steps: usize,
    /// Choose the reference's sampling on the validation split (else temperature 1,
    /// top-40).
    pub sampling_search: bool,
    /// SPACeR training budget in 10 Hz agent-steps (0: no SPACeR policy).
    pub spacer_steps: u64,
    /// Rollouts per held-out scene.
    pub rollouts: usize,
    /// Seed of everything.
    pub seed: u64,
    /// Output directory.
    pub out: PathBuf,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            scenes: crate::paths::default_scene_paths(),
            synthetic: 200,
            bc_steps: 300,
            reference_steps: 300,
            closed_loop_steps: 60,
            sampling_search: true,
            spacer_steps: 600_000,
            rollouts: 8,
            seed: 1,
            out: PathBuf::from("out/demo"),
        }
    }
}

/// What the demo produced.
#[derive(Debug)]
pub struct DemoReport {
    /// The held-out evaluation, per agent.
    pub results: Vec<(String, AgentEvaluation)>,
    /// Its configuration.
    pub eval: EvalConfig,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Runs the demo, calling `log` with a line at each stage.
///
/// # Errors
/// Any stage's error.
pub fn run(config: &DemoConfig, log: &mut dyn FnMut(&str)) -> anyhow::Result<DemoReport> {
    let out = &config.out;
    std::fs::create_dir_all(out).map_err(|e| crate::error::DataError::io(out, e))?;
    let dataset = Dataset::load(
        &DatasetConfig::new(config.scenes.clone(), config.synthetic, config.seed),
        true,
    )?;
    log(&format!("dataset: {}", dataset.summary()));

    let mut recipe = Recipe::for_model("nano");
    recipe.train.steps = config.reference_steps;
    recipe.train.eval_every = (config.reference_steps / 3).max(1);
    recipe.train.seed = config.seed;
    recipe.closed_loop = (config.closed_loop_steps > 0).then(|| {
        let mut c = crate::reference::catk::CatkConfig::for_model("nano");
        c.steps = config.closed_loop_steps;
        c.eval_every = config.closed_loop_steps.div_ceil(c.rollout_every) * c.rollout_every;
        c.seed = config.seed;
        c
    });
    if !config.sampling_search {
        recipe.sampling = None;
    }
    if let Some(search) = &mut recipe.sampling {
        search.rollouts = 4;
    }
    let (vocab, source) = recipe_vocabulary(&recipe, &dataset, out)?;
    log(&format!("vocabulary: {source:?}"));

    let bc = BcConfig {
        width: 64,
        steps: config.bc_steps,
        eval_every: (config.bc_steps / 4).max(1),
        seed: config.seed,
        ..BcConfig::default()
    };
    let bc_blob = out.join("bc/policy.spw");
    log(&format!(
        "behaviour cloning: width 64, {} steps -> {}",
        bc.steps,
        bc_blob.display()
    ));
    let (bc_report, _) = clone_policy(
        &bc,
        &dataset,
        &vocab,
        &RunOptions::new(out.join("bc")),
        DeviceKind::Cpu,
        Some(&bc_blob),
    )?;
    log(&format!(
        "  held-out next-token accuracy {:.3} (NLL {:.3})",
        bc_report.heldout.accuracy, bc_report.heldout.nll
    ));

    recipe.vocab = Some(match &source {
        crate::vocab::VocabularySource::Given(p)
        | crate::vocab::VocabularySource::Cached(p)
        | crate::vocab::VocabularySource::Built(p) => p.clone(),
    });
    log(&format!(
        "reference model: nano, {} steps -> {}",
        recipe.train.steps,
        out.join("reference").display()
    ));
    let r = train_reference(
        &recipe,
        &dataset,
        &RunOptions::new(out.join("reference")),
        DeviceKind::Cpu,
    )?;
    log(&format!(
        "  held-out next-token accuracy {:.3} (NLL {:.3}; repeating the last motion {:.3})",
        r.train.heldout.accuracy, r.train.heldout.nll, r.train.baselines.repeat_last_motion
    ));

    log(&format!(
        "  sampling chosen on the validation split: temperature {:.2}, top-{}",
        r.sampling.temperature, r.sampling.top_k
    ));

    let mut specs = vec![
        format!("bc=policy:{}", bc_blob.display()),
        format!("reference=ref:{}", r.checkpoint.display()),
    ];
    if config.spacer_steps > 0 {
        let mut ppo = crate::ppo::PpoConfig::resolve("cpu-demo")?;
        ppo.run.agent_steps = config.spacer_steps;
        ppo.run.seed = config.seed;
        let dir = out.join("spacer");
        log(&format!(
            "SPACeR: cpu-demo, {} agent-steps from the cloned policy -> {}",
            ppo.run.agent_steps,
            dir.display()
        ));
        let files = crate::ppo::AnchorFiles {
            reference: Some(r.checkpoint.clone()),
            bc: None,
            vocab: None,
            init: Some(bc_blob.clone()),
        };
        let p = crate::ppo::train_with_files(
            &ppo,
            &files,
            &dataset,
            &RunOptions::new(&dir),
            DeviceKind::Cpu,
        )?;
        log(&format!(
            "  {} updates, {:.0} agent-steps/s",
            p.updates,
            p.agent_steps as f64 / p.timing.total().max(1e-9)
        ));
        specs.insert(0, format!("spacer=policy:{}", p.policy.display()));
    }
    specs.push("const-vel".into());
    specs.push("log".into());
    let specs: Vec<AgentSpec> = specs.iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    let scenes: Vec<Arc<Scene>> = dataset.held_out.iter().cloned().map(Arc::new).collect();
    let eval = EvalConfig::new(
        MetricsConfig::challenge_2025()?,
        config.rollouts,
        config.seed,
    );
    log(&format!(
        "held-out evaluation: {} scenes x {} rollouts, agents {}",
        scenes.len(),
        config.rollouts,
        specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut options = AgentOptions::new(vocab);
    options.policy_selection = spacer_core::policy::Selection::Sample {
        temperature: 1.0,
        top_k: 0,
    };
    let results = evaluate_specs(&specs, &scenes, &options, &eval, true)?;
    log(&tables(&results, &eval));
    let mut files = write(
        &results,
        &eval,
        &Outputs {
            json: Some(out.join("heldout.json")),
            chart: Some(out.join("heldout.png")),
            submission: None,
        },
    )?;
    if let Some(scene) = scenes.first() {
        for spec in specs
            .iter()
            .filter(|s| s.name == "spacer" || s.name == "bc")
        {
            let path = out.join(format!("{}-rollout.png", spec.name));
            render_rollout(scene, spec, &options, eval.sim, config.seed, &path)?;
            files.push(path);
        }
    }
    Ok(DemoReport {
        results,
        eval,
        files,
    })
}

/// Draws 4 s into one rollout of `spec` on `scene`.
fn render_rollout(
    scene: &Arc<Scene>,
    spec: &AgentSpec,
    options: &AgentOptions,
    sim: crate::sim::SimConfig,
    seed: u64,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut simulator = Simulator::new(std::slice::from_ref(scene), sim)?;
    let mut agent = spec.build(options, seed)?;
    simulator.run(agent.as_mut(), seed)?;
    if let Some(r) = simulator.rollouts().first() {
        let mut drawn = (**scene).clone();
        for (t, o) in drawn.tracks.iter_mut().zip(&r.objects) {
            t.states.clone_from(&o.states);
        }
        let options = RenderOptions {
            step: Some(scene.current_step + 40),
            radius: Some(60.0),
            ..RenderOptions::default()
        };
        render_to_file(&drawn, &options, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole demo, tiny, on generated scenes only (no data directory).
    #[test]
    fn the_demo_runs_without_real_scenes() {
        let dir = tempfile::tempdir().unwrap();
        let config = DemoConfig {
            scenes: Vec::new(),
            synthetic: 6,
            bc_steps: 2,
            reference_steps: 2,
            closed_loop_steps: 0,
            sampling_search: false,
            spacer_steps: 1,
            rollouts: 1,
            seed: 3,
            out: dir.path().to_path_buf(),
        };
        let mut lines = Vec::new();
        let report = run(&config, &mut |l| lines.push(l.to_string())).unwrap();
        let names: Vec<&str> = report.results.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["spacer", "bc", "reference", "const-vel", "log"]);
        for f in [
            "heldout.json",
            "heldout.png",
            "spacer/policy.spw",
            "bc/policy.spw",
        ] {
            assert!(dir.path().join(f).is_file(), "{f} missing; log: {lines:?}");
        }
        assert!(
            report
                .files
                .iter()
                .any(|f| f.ends_with("spacer-rollout.png"))
        );
    }
}
