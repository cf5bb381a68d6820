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

/// CPU time (user + system, all threads) of this process so far, from
/// `/proc/self/stat`; `None` where that file does not exist.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn measure(
    config: &PpoConfig,
    files: &AnchorFiles,
    dataset: &Dataset,
    out: &std::path::Path,
) -> Result<Throughput, PpoError> {
    let before = process_cpu_seconds();
    let r = train_with_files(
        config,
        files,
        dataset,
        &RunOptions::new(out).quiet(),
        DeviceKind::Cpu,
    )?;
    let cpu = process_cpu_seconds().zip(before).map(|(a, b)| a - b);
    Ok(Throughput {
        updates: r.updates,
        agent_steps: r.agent_steps,
        samples: r.samples,
        timing: r.timing,
        cpu_seconds: cpu,
    })
}

/// Trains `updates` updates of `config` (no held-out evaluation) with the native
/// learner, and with `burn_updates` > 0 as many with burn's, in a scratch
/// directory under `scratch`.
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
