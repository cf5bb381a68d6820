//! Converting scenes into a scene cache (`spacer data convert`): scenes from any
//! source ([`super::load`]), validated for simulation (91 steps), written into one
//! cache through a temporary file that is renamed only when complete, with a
//! progress bar over the input files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::cache::CacheWriter;
use super::{LoadOptions, SceneStream};
use crate::error::{DataError, Location};

/// What a conversion wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertReport {
    /// Scenes written.
    pub scenes: usize,
    /// Their tracks.
    pub agents: usize,
    /// Their map features.
    pub features: usize,
    /// Input files read.
    pub files: usize,
    /// Bad scenes or files skipped (with [`super::BadScenePolicy::Skip`]).
    pub skipped: usize,
    /// Size of the cache.
    pub bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl ConvertReport {
    /// The lines `spacer data convert` prints.
    pub fn text(&self, out: &Path) -> String {
        let mut t = format!(
            "wrote {} scene(s) ({} agents, {} map features) from {} file(s) to {} ({:.1} MB) in {:.2} s ({:.0} scenes/s)\n",
            self.scenes,
            self.agents,
            self.features,
            self.files,
            out.display(),
            self.bytes as f64 / 1e6,
            self.seconds,
            self.scenes as f64 / self.seconds.max(1e-9)
        );
        if self.skipped > 0 {
            t += &format!(
                "skipped {} bad scene(s) or file(s); the warnings above name them\n",
                self.skipped
            );
        }
        t
    }
}

/// Reads every scene of `inputs` (files or directories) and writes them into the
/// cache `out`. Nothing is left at `out` unless the whole conversion succeeds.
///
/// # Errors
/// `out` is a directory; no scene files; the first unreadable input or bad scene
/// (unless `options` skip them); no scene at all to write; a failed write.
pub fn convert_to_cache(
    inputs: &[PathBuf],
    out: &Path,
    options: LoadOptions,
    progress: bool,
) -> Result<ConvertReport, DataError> {
    if out.is_dir() {
        return Err(DataError::invalid(
            out,
            Location::file(),
            "the output is a directory; give a cache file name such as scenes.spc",
        ));
    }
    let mut stream = SceneStream::open(inputs, options)?;
    let files = stream.files_left();
    if files == 0 {
        let first = inputs
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new(""));
        return Err(DataError::invalid(
            first,
            Location::file(),
            "no scene files",
        ));
    }
    let bar = if progress {
        ProgressBar::new(files as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files, {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut writer = CacheWriter::create(out)?;
    let (mut agents, mut features) = (0usize, 0usize);
    while let Some(loaded) = stream.next() {
        // On an error the writer is dropped, which removes its temporary file.
        let loaded = loaded.inspect_err(|_| bar.abandon())?;
        agents += loaded.scene.tracks.len();
        features += loaded.scene.map.len();
        writer.push(&loaded.scene)?;
        bar.set_position((files - stream.files_left()).saturating_sub(1) as u64);
        bar.set_message(format!("{} scenes", writer.len()));
    }
    bar.set_position(files as u64);
    bar.finish_and_clear();
    let skipped = stream.warnings().len();
    if writer.is_empty() {
        return Err(DataError::invalid(
            out,
            Location::file(),
            format!(
                "no scene could be converted from {files} file(s) ({skipped} skipped); nothing was written"
            ),
        ));
    }
    let scenes = writer.finish()?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(ConvertReport {
        scenes,
        agents,
        features,
        files,
        skipped,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;
    use crate::scenario::BadScenePolicy;
    use crate::scenario::summary::SceneSummary;

    fn options(skip_bad: bool) -> LoadOptions {
        let mut o = LoadOptions::new(if skip_bad {
            BadScenePolicy::Skip
        } else {
            BadScenePolicy::Fail
        });
        o.quiet = true;
        o
    }

    #[test]
    fn convert_writes_a_cache_that_inspects_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.spc");
        let inputs = [
            shared_data("womd"),
            shared_data("gpudrive/637f20cafde22ff8.json"),
        ];
        let r = convert_to_cache(&inputs, &out, options(false), false).unwrap();
        assert_eq!((r.scenes, r.files, r.skipped), (3, 3, 0));
        assert_eq!(r.bytes, std::fs::metadata(&out).unwrap().len());
        assert!(
            r.text(&out).starts_with("wrote 3 scene(s)"),
            "{}",
            r.text(&out)
        );
        let v: Vec<SceneSummary> =
            SceneStream::open(std::slice::from_ref(&out), LoadOptions::default())
                .unwrap()
                .map(|s| SceneSummary::of(&s.unwrap()))
                .collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].valid_states, 4596);
        assert_eq!(v[1].agent_count(), 257);
        assert_eq!(
            r.agents,
            v.iter().map(SceneSummary::agent_count).sum::<usize>()
        );
        // The fixtures are one step long: without skipping the conversion fails and
        // leaves no cache behind; with it, they are counted as skipped.
        let bad_out = dir.path().join("t.spc");
        let e = convert_to_cache(&[shared_data("gpudrive")], &bad_out, options(false), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("agent-agent-collision.json") && e.contains("expected 91"),
            "{e}"
        );
        assert!(!bad_out.exists());
        let r =
            convert_to_cache(&[shared_data("gpudrive")], &bad_out, options(true), false).unwrap();
        assert_eq!(r.skipped, 2);
        assert!(
            r.text(&bad_out).contains("skipped 2 bad"),
            "{}",
            r.text(&bad_out)
        );
        // A directory as the output is refused.
        let e = convert_to_cache(&inputs, dir.path(), options(false), false).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn converting_nothing_is_an_error_and_writes_nothing() {
        // A 0-byte TFRecord used to convert into an empty cache with exit 0.
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.tfrecord");
        std::fs::write(&empty, b"").unwrap();
        for skip_bad in [false, true] {
            let out = dir.path().join("e.spc");
            let e = convert_to_cache(std::slice::from_ref(&empty), &out, options(skip_bad), false)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("empty.tfrecord") || e.contains("no scene could be converted"),
                "{e}"
            );
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "only the input remains: {left:?}");
        }
    }
}
