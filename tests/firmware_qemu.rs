//! The Cortex-M4F firmware under QEMU picks exactly the tokens the host picks for the
//! same blob and scene, and ends in exactly the same states.
//!
//! Builds `firmware-demo` for thumbv7em-none-eabihf (its own target directory), runs it
//! in `qemu-system-arm` (machine mps2-an386, `-icount shift=0`) and compares its
//! semihosting output with `firmware_demo::drive` run here. Needs the
//! `thumbv7em-none-eabihf` target and `qemu-system-arm`: missing tools fail the test
//! under CI and skip it (with a message) elsewhere.

mod support;

use std::process::Command;

use spacer::spacer_core::weights::Blob;

#[test]
fn firmware_tokens_equal_host_tokens() {
    if !support::tool_available("qemu-system-arm", &["--version"]) {
        return;
    }
    let root = support::workspace_root();
    let fw = root.join("firmware-demo");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(&cargo)
        .current_dir(&fw)
        .env_remove("SPACER_FIRMWARE_BLOB")
        .args(["build", "--release", "-q"])
        .status()
        .expect("run cargo for the firmware");
    assert!(
        build.success(),
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
            "mps2-an386",
            "-nographic",
        ])
        .args([
            "-icount",
            "shift=0",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ])
        .arg(&elf)
        .output()
        .expect("run qemu-system-arm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "firmware failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\ndone"), "{stdout}");

    // The same loop on the host, same blob bytes.
    let blob = Blob::parse(&firmware_demo::BLOB.0).expect("blob");
    let model = blob.model().expect("model");
    let mut want_tokens = Vec::new();
    let agents = firmware_demo::drive(
        &model,
        firmware_demo::DECISIONS,
        || 0,
        |d| {
            let toks: Vec<String> = d.tokens.iter().map(|t| t.to_string()).collect();
            want_tokens.push(format!("decision {:2} tokens {}", d.index, toks.join(" ")));
        },
    )
    .expect("host drive");
    let got_tokens: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with("decision"))
        .map(|l| l.split(" | ").next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        got_tokens, want_tokens,
        "firmware and host chose different tokens"
    );
    let want_states: Vec<String> = agents
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
    let got_states: Vec<&str> = stdout.lines().filter(|l| l.starts_with("state")).collect();
    assert_eq!(
        got_states, want_states,
        "firmware and host ended in different states"
    );
    // The instruction counter was calibrated, and inference costs were reported.
    assert!(stdout.contains("-> 40 instructions per tick"), "{stdout}");
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .expect("summary line");
    assert!(summary.contains("inference instructions mean"), "{summary}");
}
