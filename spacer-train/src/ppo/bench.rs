//! `spacer bench train`: end-to-end training throughput (agent-steps per second,
//! acting, simulation, reference scoring and updates included) with its breakdown,
//! and the CPU learners compared on the same batches.

use serde::Serialize;

use super::config::{LearnerKind, PpoConfig};
use super::train::{AnchorFiles, PpoError, Timing, train_with_files};
use crate::scenario::dataset::Dataset;
use crate::training::{DeviceKind, RunOptions};

/// One measured run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Updates.
    pub updates: u64,
    /// 10 Hz agent-steps.
    pub agent_steps: u64,
    /// Samples (agent decisions).
    pub samples: u64,
    /// Where the time went.
    pub timing: Timing,
    /// Process CPU seconds over the run (user + system, all threads), if known.
    pub cpu_seconds: Option<f64>,
}

impl Throughput {
    /// Agent-steps per second of training (evaluations and checkpoints left out).
    pub fn agent_steps_per_second(&self) -> f64 {
        self.agent_steps as f64 / self.timing.training().max(1e-9)
    }

    /// Agent-steps per second if only `seconds` of the run were spent.
    pub fn rate_of(&self, seconds: f64) -> f64 {
        self.agent_steps as f64 / seconds.max(1e-9)
    }
}

/// The measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct BenchReport {
    /// With the native learner.
    pub native: Throughput,
    /// With burn's learner (ndarray), when measured.
    pub burn: Option<Throughput>,
}

impl BenchReport {
    /// The report as `spacer bench train` prints it: each learner's end-to-end rate,
    /// where the time went (each part with the rate it alone would allow), the limit
    /// without the learner and without anchor scoring, and the learners compared.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for (name, t) in std::iter::once(("native learner", self.native))
            .chain(self.burn.map(|b| ("burn learner", b)))
        {
            let tm = t.timing;
            let _ = writeln!(
                out,
                "{name}: {} updates, {} agent-steps ({} samples) in {:.1} s: {:.0} agent-steps/s end to end{}",
                t.updates,
                t.agent_steps,
                t.samples,
                tm.training(),
                t.agent_steps_per_second(),
                t.cpu_seconds
                    .map(|c| format!(
                        " ({:.0} per CPU-second)",
                        t.agent_steps as f64 / c.max(1e-9)
                    ))
                    .unwrap_or_default()
            );
            for (part, s) in [
                ("setup", tm.setup),
                ("rollouts (observe, act, step)", tm.rollout),
                ("anchor scoring", tm.anchor),
                ("PPO updates", tm.learn),
            ] {
                let _ = writeln!(
                    out,
                    "  {part:<30} {s:>7.2} s {:>5.1}%  alone {:>9.0} agent-steps/s",
                    100.0 * s / tm.training().max(1e-9),
                    t.rate_of(s)
                );
            }
        }
        let n = self.native.timing;
        let _ = writeln!(
            out,
            "limit with a free learner: {:.0} agent-steps/s; with free anchor scoring: {:.0}",
            self.native.rate_of(n.setup + n.rollout + n.anchor),
            self.native.rate_of(n.setup + n.rollout + n.learn)
        );
        if let Some(b) = self.burn {
            let native = self.native.samples as f64 / n.learn.max(1e-9);
            let burn = b.samples as f64 / b.timing.learn.max(1e-9);
            let _ = writeln!(
                out,
                "learner alone: native {native:.0} samples/s, burn {burn:.0} samples/s ({:.1}x)",
                native / burn.max(1e-9)
            );
        }
        out
    }
}

fn measure(
    config: &PpoConfig,
    files: &AnchorFiles,
    dataset: &Dataset,
    out: &std::path::Path,
) -> Result<Throughput, PpoError> {
    let before = crate::machine::process_cpu_seconds();
    let r = train_with_files(
        config,
        files,
        dataset,
        &RunOptions::new(out).quiet(),
        DeviceKind::Cpu,
    )?;
    let cpu = crate::machine::process_cpu_seconds()
        .zip(before)
        .map(|(a, b)| a - b);
    Ok(Throughput {
        updates: r.updates,
        agent_steps: r.agent_steps,
        samples: r.samples,
        timing: r.timing,
        cpu_seconds: cpu,
    })
}

/// Trains about `updates` updates of `config` (no held-out evaluation) with the
/// native learner, and with `burn_updates` > 0 about as many with burn's, in a
/// scratch directory under `scratch`. The budget is a number of agent-steps (that
/// many times a first probe batch's), and batches differ in size with the scenes
/// drawn, so a run can take an update more or fewer; the report counts what ran.
///
/// # Errors
/// [`PpoError`] from the runs.
pub fn bench_train(
    config: &PpoConfig,
    files: &AnchorFiles,
    dataset: &Dataset,
    updates: u64,
    burn_updates: u64,
    scratch: &std::path::Path,
) -> Result<BenchReport, PpoError> {
    // Without a reference checkpoint an untrained nano model stands in: it costs
    // the same to run.
    let mut files = files.clone();
    if files.reference.is_none() && config.needs_reference() {
        let vocab = crate::vocab::read_or_grid(files.vocab.as_deref())?;
        let cfg = crate::reference::ReferenceConfig::nano(vocab.len());
        let m = crate::reference::ReferenceModel::<crate::training::Cpu>::new(
            cfg,
            vocab,
            &Default::default(),
            0,
        )
        .map_err(PpoError::Config)?;
        std::fs::create_dir_all(scratch).map_err(|e| crate::error::DataError::io(scratch, e))?;
        let path = scratch.join("nano-untrained.ckpt");
        m.to_checkpoint(0, String::new())
            .map_err(PpoError::Config)?
            .write(&path)?;
        files.reference = Some(path);
    }
    let files = &files;
    let mut d = dataset.clone();
    d.held_out.clear();
    d.validation.clear();
    // A budget of `updates` batches: one batch is about worlds x agents x 80 steps.
    let mut c = config.clone();
    c.run.eval_every = 0;
    c.run.checkpoint_every = u64::MAX;
    c.ppo.learner = LearnerKind::Native;
    // Measure one batch to size the budget.
    c.run.agent_steps = 1;
    let probe = measure(&c, files, &d, &scratch.join("probe"))?;
    let per_update = probe.agent_steps.max(1);
    c.run.agent_steps = per_update * updates.max(1);
    let native = measure(&c, files, &d, &scratch.join("native"))?;
    let burn = if burn_updates > 0 {
        c.ppo.learner = LearnerKind::Burn;
        c.run.agent_steps = per_update * burn_updates;
        Some(measure(&c, files, &d, &scratch.join("burn"))?)
    } else {
        None
    };
    Ok(BenchReport { native, burn })
}

#[cfg(test)]
mod tests {
    use super::super::Method;
    use super::super::tests::{dataset, tiny};
    use super::*;

    #[test]
    fn both_learners_are_measured_on_the_same_batches_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let files = AnchorFiles {
            reference: None,
            bc: None,
            vocab: None,
            init: None,
        };
        let r = bench_train(&tiny(Method::Ppo, 1), &files, &dataset(), 2, 1, dir.path()).unwrap();
        // A budget of about 2 (1) batches of agent-steps; batches differ in size.
        assert!((1..=4).contains(&r.native.updates), "{}", r.native.updates);
        let burn = r.burn.unwrap();
        assert!((1..=3).contains(&burn.updates), "{}", burn.updates);
        assert!(r.native.agent_steps > 0 && r.native.samples > 0);
        assert!(
            r.native.timing.anchor < 0.01 * r.native.timing.training(),
            "PPO scores nothing"
        );
        let t = r.text();
        let line = format!("native learner: {} updates", r.native.updates);
        assert!(t.contains(&line) && t.contains("burn learner: "), "{t}");
        assert!(
            t.contains("limit with a free learner") && t.contains("learner alone: native"),
            "{t}"
        );
        let native_only = BenchReport { burn: None, ..r };
        assert!(!native_only.text().contains("burn"));
    }
}
