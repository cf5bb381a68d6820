//! Helpers shared by the integration tests that drive external tools.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `tool` runs. When it does not: under CI (`CI` set) the test fails, elsewhere
/// it prints why it is skipped and returns false.
pub fn tool_available(tool: &str, args: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required under CI (.ci/run installs it)"
        );
        eprintln!("skipping: {tool} not found (install it to run this test; .ci/run does)");
    }
    ok
}

/// Builds spacer-core as a host static library with the C ABI (its own target
/// directory, so it does not wait on the outer cargo's lock) and returns its path.
pub fn build_core_staticlib() -> PathBuf {
    let root = workspace_root();
    let target = root.join("target/ffi-staticlib");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "rustc",
            "-q",
            "-p",
            "spacer-core",
            "--release",
            "--features",
            "ffi,std",
            "--crate-type",
            "staticlib",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "building the spacer-core staticlib failed"
    );
    let lib = target.join("release/libspacer_core.a");
    assert!(lib.is_file(), "{} missing", lib.display());
    lib
}

/// Reads a file or panics naming it.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
