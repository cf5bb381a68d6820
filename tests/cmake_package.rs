//! The C/C++ package as a C++ team would use it: `spacer-core/c/install.sh PREFIX`
//! installs the static and shared libraries, the header, the CMake package config and
//! the pkg-config files; the example simulation loop (`examples/cpp-sim`) is built with
//! CMake (`find_package(spacer)`) against each library, and with pkg-config and g++, and
//! runs with an f32 blob and its int8 quantization. Every build prints the same lines.
//!
//! Needs `cmake`, `pkg-config` and `g++`. Without them the test fails under CI (`CI`
//! set) and is skipped with a message elsewhere.

mod support;

use std::path::Path;
use std::process::Command;

use spacer::spacer_core::policy::ParamLayout;
use spacer::spacer_core::tokenizer::Vocabulary;
use spacer::spacer_train::policy_file::PolicyFile;
use spacer::spacer_train::quantize::{calibrate, quantize};

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An f32 policy whose actor is not near-uniform, and its int8 quantization
/// (calibrated on the firmware scene's observations).
fn blobs(dir: &Path) -> [(&'static str, std::path::PathBuf); 2] {
    let vocab = Vocabulary::kinematic_grid(200).unwrap();
    let init = PolicyFile::initial(&vocab, 23);
    let mut params = init.params().to_vec();
    for t in ParamLayout::new(200)
        .tensors()
        .iter()
        .filter(|t| t.name == "actor.w")
    {
        for v in &mut params[t.offset..t.offset + t.rows * t.cols] {
            *v *= 300.0;
        }
    }
    let f32_file = PolicyFile::from_parts(init.blob().header(), &vocab, &params).unwrap();
    let model = f32_file.model();
    let mut observations = Vec::new();
    firmware_demo::drive_observed(
        &model,
        firmware_demo::DECISIONS,
        || 0,
        |_| {},
        |o| observations.extend_from_slice(o),
    )
    .unwrap();
    let int8 = quantize(&f32_file, &calibrate(&model.policy, &observations).unwrap()).unwrap();
    let (a, b) = (dir.join("policy-f32.spw"), dir.join("policy-int8.spw"));
    f32_file.write(&a).unwrap();
    int8.write(&b).unwrap();
    [("f32", a), ("int8", b)]
}

#[test]
fn installed_package_builds_the_example_with_cmake_and_pkg_config() {
    let tools = [
        ("cmake", "--version"),
        ("pkg-config", "--version"),
        ("g++", "--version"),
    ];
    if !tools.iter().all(|(t, a)| support::tool_available(t, &[a])) {
        return;
    }
    let root = support::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    run(
        Command::new("sh")
            .arg(root.join("spacer-core/c/install.sh"))
            .arg(&prefix)
            .env("CARGO_TARGET_DIR", root.join("target/c-library")),
        "install.sh",
    );
    for f in [
        "include/spacer.h",
        "lib/libspacer_core.a",
        "lib/libspacer_core.so.2",
        "lib/libspacer_core.so",
        "lib/cmake/spacer/spacerConfig.cmake",
        "lib/cmake/spacer/spacerConfigVersion.cmake",
        "lib/pkgconfig/spacer.pc",
        "lib/pkgconfig/spacer-static.pc",
    ] {
        assert!(prefix.join(f).exists(), "{f} not installed");
    }

    // CMake, against the shared and the static library.
    let example = root.join("examples/cpp-sim");
    let mut binaries = Vec::new();
    for (name, static_lib) in [("shared", "OFF"), ("static", "ON")] {
        let build = dir.path().join(format!("build-{name}"));
        run(
            Command::new("cmake")
                .arg("-S")
                .arg(&example)
                .arg("-B")
                .arg(&build)
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
                .arg(format!("-DSPACER_STATIC={static_lib}")),
            "cmake configure",
        );
        run(
            Command::new("cmake").arg("--build").arg(&build),
            "cmake build",
        );
        binaries.push(build.join("spacer_sim"));
    }
    // pkg-config and g++, static.
    let pc = run(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "spacer-static"])
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
        "pkg-config",
    );
    let exe = dir.path().join("spacer_sim_pc");
    run(
        Command::new("g++")
            .args(["-std=c++17", "-O2", "-ffp-contract=off"])
            .arg(example.join("sim.cpp"))
            .args(pc.split_whitespace())
            .arg("-o")
            .arg(&exe),
        "g++ with pkg-config",
    );
    binaries.push(exe);

    for (format, blob) in blobs(dir.path()) {
        let outputs: Vec<String> = binaries
            .iter()
            .map(|b| run(Command::new(b).arg(&blob).arg("40"), "spacer_sim"))
            .collect();
        let first = &outputs[0];
        assert!(
            first.contains(&format!("{format} weights, blob format v2")),
            "{first}"
        );
        assert_eq!(
            first.lines().filter(|l| l.starts_with("decision")).count(),
            40
        );
        for o in &outputs[1..] {
            assert_eq!(o, first, "{format}: builds disagree");
        }
        let tokens: std::collections::BTreeSet<&str> = first
            .lines()
            .filter(|l| l.starts_with("decision"))
            .flat_map(|l| l.split(" tokens ").nth(1).unwrap_or("").split(' '))
            .collect();
        assert!(tokens.len() >= 3, "{format}: {tokens:?}");
    }
}
