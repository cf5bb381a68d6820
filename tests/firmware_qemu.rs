//! The Cortex-M4F firmware under QEMU picks exactly the tokens the host picks for the
//! same blob and scene, and ends in exactly the same states: for an f32 blob and an
//! int8 blob, on both QEMU machines (mps2-an386, and netduinoplus2 with the STM32F405's
//! 1 MiB flash and 128 KiB RAM). It also checks the firmware's own report: the DSP
//! kernels agree with the portable definitions, the instruction counter is calibrated,
//! and flash and RAM use (stack high-water mark included) fit the machine.
//!
//! Builds `firmware-demo` for thumbv7em-none-eabihf (its own target directory), runs it
//! in `qemu-system-arm` (`-icount shift=0`) and compares its semihosting output with
//! `firmware_demo::drive` run here. Needs the `thumbv7em-none-eabihf` target and
//! `qemu-system-arm`: missing tools fail the test under CI and skip it (with a message)
//! elsewhere. `SPACER_KEEP_INT8=FILE` keeps the int8 blob it makes (to run the firmware
//! with it by hand: `SPACER_FIRMWARE_BLOB=FILE cargo run --release`).

mod support;

use std::path::Path;
use std::process::Command;

use spacer::spacer_core::tokenizer::Vocabulary;
use spacer::spacer_core::weights::{Blob, WeightFormat};
use spacer::spacer_train::policy_file::PolicyFile;
use spacer::spacer_train::quantize::{calibrate, quantize};

/// The firmware's default blob (the deterministic initialisation) quantized to int8,
/// calibrated on the firmware scene's own observations.
fn int8_blob() -> PolicyFile {
    let f32_file = PolicyFile::initial(&Vocabulary::kinematic_grid(200).unwrap(), 1);
    assert_eq!(
        f32_file.bytes(),
        &firmware_demo::BLOB.0[..],
        "the default blob"
    );
    let model = f32_file.model();
    let mut observations = Vec::new();
    firmware_demo::drive_observed(
        &model,
        firmware_demo::DECISIONS,
        || 0,
        |_| {},
        |o| observations.extend_from_slice(o),
    )
    .expect("host drive");
    let calibration = calibrate(&model.policy, &observations).expect("calibration");
    quantize(&f32_file, &calibration).expect("quantization")
}

/// The lines the host computes for `blob`: tokens per decision, final states.
fn host_lines(blob: &[u8]) -> (Vec<String>, Vec<String>) {
    let file = PolicyFile::from_bytes(blob, Path::new("blob")).expect("blob");
    let model = file.model();
    let mut tokens = Vec::new();
    let agents = firmware_demo::drive(
        &model,
        firmware_demo::DECISIONS,
        || 0,
        |d| {
            let toks: Vec<String> = d.tokens.iter().map(|t| t.to_string()).collect();
            tokens.push(format!("decision {:2} tokens {}", d.index, toks.join(" ")));
        },
    )
    .expect("host drive");
    let states = agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = a.state.pose;
            format!(
                "state {i} {:08x} {:08x} {:08x}",
                p.x.to_bits(),
                p.y.to_bits(),
                p.yaw.to_bits()
            )
        })
        .collect();
    (tokens, states)
}

/// Builds the firmware for `machine` with `blob` (None: the default) and runs it.
fn run_firmware(fw: &Path, machine: &str, blob: Option<&Path>) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .current_dir(fw)
        .env("SPACER_FIRMWARE_MACHINE", machine)
        .args(["build", "--release", "-q"]);
    match blob {
        Some(b) => build.env("SPACER_FIRMWARE_BLOB", b),
        None => build.env_remove("SPACER_FIRMWARE_BLOB"),
    };
    let status = build.status().expect("run cargo for the firmware");
    assert!(
        status.success(),
        "firmware build failed (is the thumbv7em-none-eabihf target installed?)"
    );
    let elf = fw.join("target/thumbv7em-none-eabihf/release/firmware-demo");
    let out = Command::new("timeout")
        .args([
            "120",
            "qemu-system-arm",
            "-cpu",
            "cortex-m4",
            "-machine",
            machine,
        ])
        .args(["-nographic", "-icount", "shift=0"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(&elf)
        .output()
        .expect("run qemu-system-arm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "firmware failed on {machine}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\ndone"), "{stdout}");
    stdout
}

fn field(line: &str, before: &str) -> u64 {
    line.split(before)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no number after {before:?} in {line:?}"))
}

#[test]
fn firmware_tokens_equal_host_tokens_for_both_formats_on_both_machines() {
    if !support::tool_available("qemu-system-arm", &["--version"]) {
        return;
    }
    let root = support::workspace_root();
    let fw = root.join("firmware-demo");
    let dir = tempfile::tempdir().unwrap();
    let int8 = int8_blob();
    assert_eq!(int8.format(), WeightFormat::Int8);
    let int8_path = dir.path().join("policy-int8.spw");
    int8.write(&int8_path).unwrap();
    if let Some(keep) = std::env::var_os("SPACER_KEEP_INT8") {
        int8.write(Path::new(&keep)).unwrap();
    }
    let f32_bytes = firmware_demo::BLOB.0.to_vec();
    assert_eq!(Blob::parse(&f32_bytes).unwrap().format(), WeightFormat::F32);

    for (machine, ram) in [("mps2-an386", 4u64 << 20), ("netduinoplus2", 128 << 10)] {
        for (name, path, bytes) in [
            ("f32", None, f32_bytes.as_slice()),
            ("int8", Some(int8_path.as_path()), int8.bytes()),
        ] {
            let what = format!("{name} blob on {machine}");
            let stdout = run_firmware(&fw, machine, path);
            assert!(
                stdout.contains(&format!("firmware-demo on {machine}"))
                    && stdout.contains(&format!("K=200 tokens, {name} weights")),
                "{what}:\n{stdout}"
            );
            let (want_tokens, want_states) = host_lines(bytes);
            let got_tokens: Vec<String> = stdout
                .lines()
                .filter(|l| l.starts_with("decision"))
                .map(|l| l.split(" | ").next().unwrap_or("").to_string())
                .collect();
            assert_eq!(
                got_tokens, want_tokens,
                "{what}: firmware and host chose different tokens"
            );
            let got_states: Vec<&str> = stdout.lines().filter(|l| l.starts_with("state")).collect();
            assert_eq!(
                got_states, want_states,
                "{what}: firmware and host ended in different states"
            );
            // The DSP kernels agree with the portable definitions on the board.
            assert!(
                stdout.contains("integer kernels agree with the portable definitions"),
                "{what}:\n{stdout}"
            );
            // The instruction counter was calibrated (25 MHz SysTick: 40 instructions
            // a tick; 168 MHz: 5.952), and inference costs were reported.
            let ratio = if machine == "mps2-an386" {
                "-> 40.000"
            } else {
                "-> 5.952"
            };
            assert!(stdout.contains(ratio), "{what}:\n{stdout}");
            let summary = stdout
                .lines()
                .find(|l| l.starts_with("summary:"))
                .expect("summary line");
            assert!(
                field(summary, "inference instructions mean") > 10_000,
                "{summary}"
            );
            // Flash and RAM fit the machine, stack included.
            let memory = stdout
                .lines()
                .find(|l| l.starts_with("memory:"))
                .expect("memory line");
            let flash = field(memory, "memory: flash");
            let used = field(memory, "stack high-water mark =");
            let stack = field(memory, "bytes static +");
            assert!(flash > bytes.len() as u64 && flash < 1 << 20, "{memory}");
            assert!(stack > 1000 && used < ram, "{memory}");
        }
    }
}
