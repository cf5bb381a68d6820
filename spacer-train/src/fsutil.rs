//! Small file-system helpers shared by every writer.
//!
//! Every file spacer writes goes first to a temporary file beside it,
//! `.NAME.tmpPID`, and is renamed into place when complete. A process killed
//! (`kill -9`, power loss) in between leaves its temporary file behind; the next write
//! of the same file removes every such file whose process no longer runs
//! ([`remove_stale_temps`]), so nothing piles up.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced,
/// then renamed over `path`, so that a crash never leaves a half-written file. Creates
/// the parent directory if needed.
///
/// # Errors
/// [`DataError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let tmp = prepare_temp(path)?;
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}

/// The temporary file this process writes `path` to before renaming it into place,
/// after creating the directory and removing stale temporary files of `path`.
///
/// # Errors
/// [`DataError::Io`] naming the directory.
pub fn prepare_temp(path: &Path) -> Result<PathBuf, DataError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    for (stale, bytes) in remove_stale_temps(path) {
        eprintln!(
            "note: removed {} ({bytes} bytes), left by an interrupted write",
            stale.display()
        );
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(dir.join(format!(".{name}.tmp{}", std::process::id())))
}

/// Whether process `pid` may still be running: on systems with `/proc`, whether
/// `/proc/PID` exists; elsewhere, assumed to run unless its temporary file is older
/// than a day.
fn process_may_run(pid: u32, file: &Path) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return proc.join(pid.to_string()).exists();
    }
    let day = std::time::Duration::from_secs(24 * 3600);
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < day)
}

/// Removes the temporary files of `path` (`.NAME.tmpPID` beside it) whose process no
/// longer runs; returns them with their sizes. Files it cannot remove are left alone.
pub fn remove_stale_temps(path: &Path) -> Vec<(PathBuf, u64)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let prefix = format!(".{name}.tmp");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let file = entry.path();
        if process_may_run(pid, &file) {
            continue;
        }
        let bytes = entry.metadata().map_or(0, |m| m.len());
        if std::fs::remove_file(&file).is_ok() {
            removed.push((file, bytes));
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_creates_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let leftovers = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn temporary_files_of_killed_writers_are_removed_by_the_next_write() {
        // kill -9 during `data convert` used to leave `.X.spc.tmpPID` files forever.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scenes.spc");
        // PIDs above Linux's largest (4,194,304) never run.
        let dead = dir.path().join(".scenes.spc.tmp4194999");
        let alive = dir
            .path()
            .join(format!(".scenes.spc.tmp{}", std::process::id()));
        let other = dir.path().join(".other.spc.tmp4194999");
        for f in [&dead, &alive, &other] {
            std::fs::write(f, b"half a cache").unwrap();
        }
        let removed = remove_stale_temps(&p);
        if Path::new("/proc/self").exists() {
            assert_eq!(removed, vec![(dead.clone(), 12)]);
            assert!(!dead.exists());
        }
        assert!(alive.exists() && other.exists());
        write_atomic(&p, b"x").unwrap();
        std::fs::remove_file(&alive).ok();
        let w = crate::scenario::cache::CacheWriter::create(&dir.path().join("other.spc"));
        drop(w);
        if Path::new("/proc/self").exists() {
            assert!(!other.exists(), "the cache writer cleans up too");
        }
    }
}
