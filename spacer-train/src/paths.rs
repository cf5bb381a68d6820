//! Where the shipped real data lives.
//!
//! The recorded scenes and official files sit beside the repository, in
//! `../shared/data` relative to the workspace root; they are read by path, never
//! copied in. `SPACER_DATA_DIR` overrides the location.

use std::path::{Path, PathBuf};

/// The environment variable that overrides [`shared_data_dir`].
pub const DATA_DIR_VAR: &str = "SPACER_DATA_DIR";

/// The shared data directory: `$SPACER_DATA_DIR` if set, else `../shared/data` from the
/// current directory if it exists, else `../shared/data` from the workspace root this
/// binary was built in.
pub fn shared_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_VAR) {
        return PathBuf::from(dir);
    }
    let cwd = Path::new("../shared/data");
    if cwd.is_dir() {
        return cwd.to_path_buf();
    }
    workspace_root().join("../shared/data")
}

/// The workspace root this crate was compiled in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped real scenes, when they are present: the WOMD, GPUDrive and
/// INTERACTION directories under [`shared_data_dir`] that exist. Empty when there is
/// no shared data (every command then falls back to synthetic scenes).
pub fn default_scene_paths() -> Vec<PathBuf> {
    let dir = shared_data_dir();
    ["womd", "gpudrive", "interaction"]
        .iter()
        .map(|d| dir.join(d))
        .filter(|p| p.is_dir())
        .collect()
}

/// A file under the shared data directory, e.g. `shared_data("womd/637f20cafde22ff8.tfrecord")`.
pub fn shared_data(relative: impl AsRef<Path>) -> PathBuf {
    shared_data_dir().join(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_data_is_found() {
        let readme = shared_data("README.md");
        assert!(
            readme.is_file(),
            "expected the shared data at {}",
            readme.display()
        );
    }
}
