//! Arguments several commands share: the dataset and the run directory.

use std::path::PathBuf;

use clap::Args;

use crate::scenario::dataset::{Dataset, DatasetConfig};
use crate::training::{DeviceKind, RunOptions};

/// Which scenes a command reads.
#[derive(Debug, Clone, Args)]
pub struct DatasetArgs {
    /// Real scene files or directories (WOMD *.tfrecord, GPUDrive *.json, INTERACTION
    /// *.csv, *.spc caches). Default: the shipped scenes under ../shared/data when
    /// present (`SPACER_DATA_DIR` overrides), else none.
    #[arg(long, num_args = 1..)]
    pub scenes: Vec<PathBuf>,
    /// Use no real scenes at all (synthetic ones only).
    #[arg(long, conflicts_with = "scenes")]
    pub no_real: bool,
}

impl DatasetArgs {
    /// The real scene paths: the given ones, else the shipped ones if present.
    pub fn paths(&self) -> Vec<PathBuf> {
        if self.no_real {
            Vec::new()
        } else if self.scenes.is_empty() {
            crate::paths::default_scene_paths()
        } else {
            self.scenes.clone()
        }
    }

    /// Loads the dataset with `synthetic` generated training scenes, printing its
    /// summary and warnings.
    ///
    /// # Errors
    /// Unreadable paths.
    pub fn load(&self, synthetic: usize, seed: u64) -> anyhow::Result<Dataset> {
        let d = Dataset::load(&DatasetConfig::new(self.paths(), synthetic, seed), true)?;
        d.warn_left_out();
        println!("dataset: {}", d.summary());
        Ok(d)
    }
}

/// Where a training command writes, and on what it runs.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Output directory (checkpoint, curves, exports).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoint in `--out`.
    #[arg(long)]
    pub resume: bool,
    /// With `--resume`: continue even when the settings differ from the checkpoint's.
    #[arg(long, requires = "resume")]
    pub override_config: bool,
    /// Backend: `cpu`, or `cuda` (a build with `--features cuda` and an NVIDIA GPU).
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
}

impl RunArgs {
    /// The run options, `default_out` when `--out` is not given.
    pub fn options(&self, default_out: &str) -> RunOptions {
        RunOptions {
            out_dir: self
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(default_out)),
            resume: self.resume,
            override_config: self.override_config,
            progress: true,
        }
    }
}
