//! `spacer quantize`: an f32 policy blob to an int8 one (post-training quantization,
//! calibrated on the training scenes' observations, compared with the f32 policy on
//! the held-out scenes'), or `--f32`: rewritten in the current blob format version.

use std::path::PathBuf;

use clap::Args;

use crate::policy_file::PolicyFile;
use crate::quantize::quantize_with_scenes;
use crate::scenario::dataset::{Dataset, DatasetConfig};

/// Arguments of `spacer quantize`.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The f32 weights blob.
    #[arg(long)]
    pub policy: PathBuf,
    /// Where to write the new blob.
    #[arg(long)]
    pub out: PathBuf,
    /// Scene files or directories: calibration on the training split, agreement on the
    /// held-out split (required for int8; the validation split is not used).
    #[arg(long, num_args = 1..)]
    pub scenes: Vec<PathBuf>,
    /// Calibration observations at most (evenly spaced over the recorded ones).
    #[arg(long, default_value_t = 8192)]
    pub max_calibration: usize,
    /// Seed of the goal dropout while recording observations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Do not quantize: rewrite the f32 weights in the current format version (adds a
    /// checksum to a version-1 blob).
    #[arg(long)]
    pub f32: bool,
}

/// Runs `spacer quantize`.
pub fn run(a: QuantizeArgs) -> anyhow::Result<()> {
    let file = PolicyFile::read(&a.policy)?;
    if a.f32 {
        let model = file.model();
        let vocab = model
            .tokens
            .to_vocabulary()
            .map_err(|e| anyhow::anyhow!("{}: {e}", a.policy.display()))?;
        let out = PolicyFile::from_parts(&model.header, &vocab, file.params())?;
        out.write(&a.out)?;
        println!(
            "f32 weights {} -> {} ({} bytes, format v{})",
            a.policy.display(),
            a.out.display(),
            out.bytes().len(),
            out.blob().header().version
        );
        return Ok(());
    }
    if a.scenes.is_empty() {
        anyhow::bail!("--scenes is required to calibrate an int8 policy");
    }
    let data = Dataset::load(&DatasetConfig::new(a.scenes.clone(), 0, a.seed), true)?;
    data.warn_left_out();
    let (train, held) = (&data.train, &data.held_out);
    let start = std::time::Instant::now();
    let (int8, r) = quantize_with_scenes(&file, train, held, a.max_calibration, a.seed)?;
    int8.write(&a.out)?;
    let h = &r.held_out;
    println!(
        "calibrated on {} observations of {} training scenes; compared on {} observations of {} held-out scenes ({:.1} s)",
        r.calibration.samples,
        train.len(),
        h.samples,
        held.len(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "int8 vs f32 on held-out observations: argmax agreement {:.4}, mean KL {:.2e} nats (max {:.2e}), largest logit error {:.4}, mean value error {:.4}",
        h.argmax, h.mean_kl, h.max_kl, h.max_logit_error, h.mean_value_error
    );
    println!(
        "int8 weights {} ({} bytes, {:.3} of the f32 blob's {} bytes)",
        a.out.display(),
        r.int8_bytes,
        r.int8_bytes as f64 / r.f32_bytes as f64,
        r.f32_bytes
    );
    Ok(())
}
