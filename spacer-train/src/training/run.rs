//! The training skeleton every learner stands on: a [`Run`] owns the output
//! directory, resumes from the last atomic checkpoint (refusing a changed
//! configuration unless told to override, and saying what differs), decides when to
//! evaluate, keeps the curves (CSV + PNG) and the progress bar, and writes
//! checkpoints atomically, never with non-finite values.
//!
//! A learner's loop looks like this:
//!
//! ```text
//! let (mut run, resumed) = Run::start(&spec, &options, &config)?;
//! if let Some(r) = resumed { /* load model / optimizer / state from r.checkpoint */ }
//! while run.step() < total {
//!     ... one optimizer step ...
//!     run.advance(1, "loss 0.123");
//!     if run.is_eval_step() {
//!         run.record(&[("loss", 0.123)]);
//!         run.save(model, optimizer, state, files)?;
//!     }
//! }
//! run.finish();
//! ```
//!
//! The checkpoint's `config` field holds the *model's* configuration (what a reader
//! needs to rebuild the network); `extra` holds the run's configuration, the curves
//! and the learner's own state ([`RunState`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checkpoint::Checkpoint;
use super::curves::{Curves, Panel};
use crate::error::{DataError, Location};

/// Where and how a run writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Output directory (checkpoint, curves, exports).
    pub out_dir: PathBuf,
    /// Continue from the checkpoint in `out_dir` when there is one.
    pub resume: bool,
    /// Resume even when the configuration differs from the checkpoint's (the new one
    /// is used).
    pub override_config: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl RunOptions {
    /// A fresh run in `out_dir` with a progress bar.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            resume: false,
            override_config: false,
            progress: true,
        }
    }

    /// The same with resuming on.
    pub fn resuming(mut self) -> Self {
        self.resume = true;
        self
    }

    /// The same without progress bar.
    pub fn quiet(mut self) -> Self {
        self.progress = false;
        self
    }
}

/// What a learner tells the skeleton about itself.
#[derive(Clone, Debug)]
pub struct RunSpec<'a> {
    /// Checkpoint kind (`"bc"`, `"reference"`, `"ppo"`); the checkpoint file is
    /// `<file_stem>.ckpt`.
    pub kind: &'a str,
    /// Checkpoint file stem.
    pub file_stem: &'a str,
    /// Curves file stem (`<stem>.csv`, `<stem>.png`).
    pub curves_stem: &'a str,
    /// Label of the progress bar.
    pub label: &'a str,
    /// Steps in all (the progress bar's length).
    pub total_steps: u64,
    /// Evaluate, plot and checkpoint every this many steps (and at the end).
    pub eval_every: u64,
    /// Curve series.
    pub series: &'a [&'a str],
    /// How the curves are drawn.
    pub panels: &'a [Panel<'a>],
    /// Configuration fields that may change when resuming (e.g. `steps`, to train
    /// longer).
    pub resumable_changes: &'a [&'a str],
}

/// What `extra` of a checkpoint written by a [`Run`] holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The run's configuration.
    pub config: Value,
    /// The curves so far.
    pub curves: Curves,
    /// The learner's own state (random streams, counters, ...).
    #[serde(default)]
    pub state: Value,
}

/// A checkpoint a run resumed from.
#[derive(Clone, Debug)]
pub struct Resumed {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Its run state.
    pub state: RunState,
}

impl Resumed {
    /// The learner's state, decoded.
    ///
    /// # Errors
    /// [`DataError::Invalid`] naming the checkpoint when it does not decode.
    pub fn learner_state<T: DeserializeOwned>(&self, path: &Path) -> Result<T, DataError> {
        serde_json::from_value(self.state.state.clone()).map_err(|e| {
            DataError::invalid(path, Location::field(None, "extra.state"), e.to_string())
        })
    }
}

/// Why a run could not start or save.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file could not be read or written.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The checkpoint was written with another configuration.
    #[error(
        "{path} was written with another configuration ({changes}); rerun with the same \
         settings, start a new --out, or pass --override-config to continue with the new ones"
    )]
    ConfigChanged {
        /// The checkpoint.
        path: String,
        /// What differs: `field: old -> new`, comma-separated.
        changes: String,
    },
    /// A value to be saved is not finite.
    #[error("refusing to save {what}: it holds non-finite values (training diverged)")]
    NonFinite {
        /// What.
        what: String,
    },
    /// Something could not be encoded.
    #[error("encoding {0}")]
    Encode(String),
}

/// A training run (see the module docs).
#[derive(Debug)]
pub struct Run {
    dir: PathBuf,
    checkpoint_path: PathBuf,
    curves_stem: String,
    kind: String,
    config: Value,
    curves: Curves,
    panels: Vec<(String, Vec<String>)>,
    progress: ProgressBar,
    eval_every: u64,
    total: u64,
    step: u64,
    first_step: u64,
    started: Instant,
}

impl Run {
    /// Opens the run: creates the directory, and with `options.resume` reads its
    /// checkpoint when there is one, checking that `config` equals the one it was
    /// written with (but for `spec.resumable_changes`).
    ///
    /// # Errors
    /// [`RunError::ConfigChanged`] naming the differences; unreadable or corrupt
    /// checkpoints; an unwritable directory.
    pub fn start<C: Serialize>(
        spec: &RunSpec<'_>,
        options: &RunOptions,
        config: &C,
    ) -> Result<(Self, Option<Resumed>), RunError> {
        std::fs::create_dir_all(&options.out_dir)
            .map_err(|e| DataError::io(&options.out_dir, e))?;
        let config = serde_json::to_value(config).map_err(|e| RunError::Encode(e.to_string()))?;
        let checkpoint_path = options.out_dir.join(format!("{}.ckpt", spec.file_stem));
        let progress = if options.progress {
            ProgressBar::new(spec.total_steps).with_style(
                ProgressStyle::with_template(&format!(
                    "{} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta_precise}}] {{msg}}",
                    spec.label
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        } else {
            ProgressBar::hidden()
        };
        let mut run = Self {
            dir: options.out_dir.clone(),
            checkpoint_path,
            curves_stem: spec.curves_stem.to_string(),
            kind: spec.kind.to_string(),
            config,
            curves: Curves::new(spec.series),
            panels: spec
                .panels
                .iter()
                .map(|p| {
                    (
                        p.title.to_string(),
                        p.series.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
            progress,
            eval_every: spec.eval_every.max(1),
            total: spec.total_steps,
            step: 0,
            first_step: 0,
            started: Instant::now(),
        };
        let mut resumed = None;
        if options.resume && run.checkpoint_path.exists() {
            let ck = Checkpoint::read(&run.checkpoint_path, spec.kind)?;
            let state: RunState = serde_json::from_str(&ck.extra).map_err(|e| {
                DataError::invalid(
                    &run.checkpoint_path,
                    Location::field(None, "extra"),
                    format!("not a resumable run state: {e}"),
                )
            })?;
            let changes = config_changes(&state.config, &run.config, spec.resumable_changes);
            if !changes.is_empty() && !options.override_config {
                return Err(RunError::ConfigChanged {
                    path: run.checkpoint_path.display().to_string(),
                    changes: changes.join(", "),
                });
            }
            if !changes.is_empty() {
                eprintln!(
                    "warning: resuming {} with a changed configuration: {}",
                    run.checkpoint_path.display(),
                    changes.join(", ")
                );
            }
            // The curves keep their series; new ones are added.
            let mut curves = state.curves.clone();
            for name in &run.curves.names {
                if !curves.names.contains(name) {
                    curves.names.push(name.clone());
                    for (_, row) in &mut curves.rows {
                        row.push(None);
                    }
                }
            }
            run.curves = curves;
            run.step = ck.step;
            run.first_step = ck.step;
            run.progress.set_position(ck.step);
            resumed = Some(Resumed {
                checkpoint: ck,
                state,
            });
        }
        Ok((run, resumed))
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint file.
    pub fn checkpoint_path(&self) -> &Path {
        &self.checkpoint_path
    }

    /// Steps done (resumed ones included).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Steps done by this process.
    pub fn steps_this_run(&self) -> u64 {
        self.step - self.first_step
    }

    /// Seconds since the run started in this process.
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// True when the run is complete.
    pub fn is_done(&self) -> bool {
        self.step >= self.total
    }

    /// Counts `steps` more and shows `message` beside the bar.
    pub fn advance(&mut self, steps: u64, message: &str) {
        self.step += steps;
        self.progress.set_position(self.step);
        if !message.is_empty() {
            self.progress.set_message(message.to_string());
        }
    }

    /// Whether this step is one to evaluate, plot and checkpoint at: every
    /// `eval_every` steps and the last one.
    pub fn is_eval_step(&self) -> bool {
        self.step.is_multiple_of(self.eval_every) || self.step >= self.total
    }

    /// Adds a row of curve values at the current step (non-finite values are left
    /// empty).
    pub fn record(&mut self, values: &[(&str, f64)]) {
        self.curves.push(self.step, values);
    }

    /// The curves so far.
    pub fn curves(&self) -> &Curves {
        &self.curves
    }

    /// Prints a line above the progress bar.
    pub fn println(&self, line: &str) {
        if self.progress.is_hidden() {
            println!("{line}");
        } else {
            self.progress.println(line);
        }
    }

    /// Writes the checkpoint (atomically) at the current step, and the curves.
    /// `model_config` goes in the checkpoint's `config` (what a reader needs to build
    /// the model), `state` with the run's configuration and curves into `extra`.
    ///
    /// # Errors
    /// [`RunError`] when the files cannot be written or encoded.
    pub fn save<S: Serialize>(
        &mut self,
        model_config: String,
        model: Vec<u8>,
        optimizer: Vec<u8>,
        state: &S,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<(), RunError> {
        let extra = RunState {
            config: self.config.clone(),
            curves: self.curves.clone(),
            state: serde_json::to_value(state).map_err(|e| RunError::Encode(e.to_string()))?,
        };
        let ck = Checkpoint {
            kind: self.kind.clone(),
            config: model_config,
            step: self.step,
            model,
            optimizer,
            extra: serde_json::to_string(&extra).map_err(|e| RunError::Encode(e.to_string()))?,
            files,
        };
        ck.write(&self.checkpoint_path)?;
        self.write_curves()
    }

    /// Writes `<curves_stem>.csv` and `.png`.
    ///
    /// # Errors
    /// [`RunError::Data`] when a file cannot be written.
    pub fn write_curves(&self) -> Result<(), RunError> {
        self.curves
            .write_csv(&self.dir.join(format!("{}.csv", self.curves_stem)))?;
        let titles: Vec<(&str, Vec<&str>)> = self
            .panels
            .iter()
            .map(|(t, s)| (t.as_str(), s.iter().map(String::as_str).collect()))
            .collect();
        let panels: Vec<Panel<'_>> = titles
            .iter()
            .map(|(t, s)| Panel {
                title: t,
                series: s.as_slice(),
            })
            .collect();
        self.curves
            .write_png(&self.dir.join(format!("{}.png", self.curves_stem)), &panels)?;
        Ok(())
    }

    /// Clears the progress bar.
    pub fn finish(&self) {
        self.progress.finish_and_clear();
    }
}

/// `Err(RunError::NonFinite)` when any value is NaN or infinite.
///
/// # Errors
/// [`RunError::NonFinite`] naming `what`.
pub fn ensure_finite(what: &str, values: &[f32]) -> Result<(), RunError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(RunError::NonFinite {
            what: what.to_string(),
        })
    }
}

/// The fields of `now` that differ from `saved` (dotted paths, `old -> new`), but
/// for the paths in `allowed` (e.g. `steps`, `train.steps`).
pub fn config_changes(saved: &Value, now: &Value, allowed: &[&str]) -> Vec<String> {
    fn walk(path: &str, a: &Value, b: &Value, allowed: &[&str], out: &mut Vec<String>) {
        if allowed.contains(&path) {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        allowed,
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (u, v)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), u, v, allowed, out);
                }
            }
            _ if a == b => {}
            _ => {
                let short = |v: &Value| {
                    let s = v.to_string();
                    if s.len() > 60 {
                        format!("{}...", &s[..s.floor_char_boundary(57)])
                    } else {
                        s
                    }
                };
                out.push(format!("{path}: {} -> {}", short(a), short(b)));
            }
        }
    }
    let mut out = Vec::new();
    walk("", saved, now, allowed, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Cfg {
        steps: u64,
        lr: f64,
        seed: u64,
        nested: Nested,
    }
    #[derive(Serialize)]
    struct Nested {
        width: usize,
    }

    fn spec() -> RunSpec<'static> {
        RunSpec {
            kind: "test",
            file_stem: "test",
            curves_stem: "curves",
            label: "test",
            total_steps: 4,
            eval_every: 2,
            series: &["loss"],
            panels: &[Panel {
                title: "loss",
                series: &["loss"],
            }],
            resumable_changes: &["steps"],
        }
    }

    fn cfg(steps: u64, lr: f64, width: usize) -> Cfg {
        Cfg {
            steps,
            lr,
            seed: 1,
            nested: Nested { width },
        }
    }

    #[test]
    fn resume_continues_and_refuses_changed_configs_with_the_differences() {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions::new(dir.path()).quiet();
        let (mut run, resumed) = Run::start(&spec(), &opts, &cfg(4, 1e-3, 8)).unwrap();
        assert!(resumed.is_none());
        run.advance(2, "");
        assert!(run.is_eval_step());
        run.record(&[("loss", 1.5)]);
        run.save("{}".into(), vec![1, 2], vec![], &7u32, vec![])
            .unwrap();
        assert!(dir.path().join("curves.csv").exists() && dir.path().join("curves.png").exists());

        // Same config (and a longer run): resumes at step 2 with the curves.
        let opts = opts.resuming();
        let (run, resumed) = Run::start(&spec(), &opts, &cfg(10, 1e-3, 8)).unwrap();
        let r = resumed.unwrap();
        assert_eq!((run.step(), r.checkpoint.model.clone()), (2, vec![1, 2]));
        assert_eq!(r.learner_state::<u32>(run.checkpoint_path()).unwrap(), 7);
        assert_eq!(run.curves().series("loss"), vec![(2.0, 1.5)]);

        // A changed learning rate and width: refused, naming both.
        let e = Run::start(&spec(), &opts, &cfg(4, 1e-2, 16))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lr: 0.001 -> 0.01") && e.contains("nested.width: 8 -> 16"),
            "{e}"
        );
        assert!(
            e.contains("test.ckpt") && e.contains("--override-config"),
            "{e}"
        );
        let mut o = opts.clone();
        o.override_config = true;
        assert!(
            Run::start(&spec(), &o, &cfg(4, 1e-2, 16))
                .unwrap()
                .1
                .is_some()
        );
    }

    #[test]
    fn non_finite_values_are_refused() {
        assert!(ensure_finite("w", &[1.0, 2.0]).is_ok());
        let e = ensure_finite("policy", &[1.0, f32::NAN]).unwrap_err();
        assert!(e.to_string().contains("policy"), "{e}");
        assert!(ensure_finite("w", &[f32::INFINITY]).is_err());
    }
}
