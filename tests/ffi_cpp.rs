//! The C ABI from C++: a g++-compiled program links spacer-core's static library,
//! drives a small scene through `spacer.h` and must choose exactly the tokens (and reach
//! exactly the states) that the same loop computes in Rust, for an f32 blob and for its
//! int8 quantization. It also checks the error paths (null pointers, short buffers,
//! misaligned, corrupt and bit-flipped blobs) and the ABI version.
//!
//! Needs `g++`. Without it the test fails under CI (`CI` set) and is skipped with a
//! message elsewhere.

mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use spacer::spacer_core::agent::{AgentKind, AgentState};
use spacer::spacer_core::geometry::{Pose, Vec2};
use spacer::spacer_core::kinematics::apply_token;
use spacer::spacer_core::math::Rng;
use spacer::spacer_core::observation::{
    self, EgoView, PartnerView, RoadKind, RoadSegment, polyline_segments,
};
use spacer::spacer_core::policy::{Selection, param_count};
use spacer::spacer_core::tokenizer::Vocabulary;
use spacer::spacer_core::weights::WeightFormat;
use spacer::spacer_train::policy_file::PolicyFile;
use spacer::spacer_train::quantize::{calibrate, quantize};

struct Agent {
    kind: AgentKind,
    state: AgentState,
    length: f32,
    width: f32,
    goal: Vec2,
    selection: Selection,
    rng: Rng,
}

fn scene() -> (Vec<Agent>, Vec<(RoadKind, Vec<Vec2>)>) {
    let sample = Selection::Sample {
        temperature: 1.0,
        top_k: 20,
    };
    let agent = |kind, x: f32, y: f32, yaw: f32, speed: f32, sel, seed| Agent {
        kind,
        state: AgentState::new(Pose::new(x, y, yaw), Vec2::from_angle(yaw) * speed),
        length: if kind == AgentKind::Vehicle { 4.6 } else { 0.8 },
        width: if kind == AgentKind::Vehicle { 1.9 } else { 0.8 },
        goal: Vec2::new(x + 60.0 * yaw.cos(), y + 60.0 * yaw.sin()),
        selection: sel,
        rng: Rng::new(seed),
    };
    let agents = vec![
        agent(
            AgentKind::Vehicle,
            0.0,
            -1.75,
            0.0,
            8.0,
            Selection::Argmax,
            1,
        ),
        agent(AgentKind::Vehicle, 18.0, -1.75, 0.02, 6.5, sample, 2),
        agent(
            AgentKind::Vehicle,
            40.0,
            1.75,
            std::f32::consts::PI,
            9.0,
            Selection::Argmax,
            3,
        ),
        agent(AgentKind::Pedestrian, 25.0, 6.0, -1.5, 1.2, sample, 4),
        agent(
            AgentKind::Cyclist,
            -10.0,
            -3.2,
            0.0,
            4.0,
            Selection::Argmax,
            5,
        ),
    ];
    let line = |y: f32| {
        (0..40)
            .map(|i| Vec2::new(-30.0 + 3.0 * i as f32, y))
            .collect()
    };
    let curve: Vec<Vec2> = (0..30)
        .map(|i| {
            let a = i as f32 * 0.05;
            Vec2::new(50.0 + 20.0 * a.sin(), 3.5 + 20.0 * (1.0 - a.cos()))
        })
        .collect();
    let roads = vec![
        (RoadKind::RoadEdge, line(-3.5)),
        (RoadKind::RoadEdge, line(3.5)),
        (RoadKind::Lane, line(-1.75)),
        (RoadKind::Lane, line(1.75)),
        (RoadKind::RoadLine, line(0.0)),
        (RoadKind::Lane, curve),
        (
            RoadKind::Crosswalk,
            vec![
                Vec2::new(24.0, -3.5),
                Vec2::new(24.0, 3.5),
                Vec2::new(27.0, 3.5),
            ],
        ),
        (RoadKind::StopSign, vec![Vec2::new(22.0, 4.0)]),
    ];
    (agents, roads)
}

const DECISIONS: usize = 12;

/// The loop of policy_parity.cpp, in Rust; `observed` sees every observation.
fn rust_run(file: &PolicyFile, mut observed: impl FnMut(&[f32])) -> String {
    let model = file.model();
    let (mut agents, polylines) = scene();
    let mut roads = Vec::new();
    for (kind, pts) in &polylines {
        let mut segs = vec![RoadSegment::default(); pts.len() + 1];
        let n = polyline_segments(pts, *kind, &mut segs).unwrap();
        roads.extend_from_slice(&segs[..n]);
    }
    let mut out = String::new();
    let d = model.policy.dims();
    let _ = writeln!(
        out,
        "info {} {} {} format {} version {}",
        d.actions,
        d.observation_len(),
        param_count(d.actions()),
        model.policy.format() as u32,
        model.header.version
    );
    let mut obs = vec![0.0f32; d.observation_len()];
    for dec in 0..DECISIONS {
        let mut tokens = Vec::new();
        for i in 0..agents.len() {
            let partners: Vec<PartnerView> = agents
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, b)| PartnerView {
                    pose: b.state.pose,
                    speed: b.state.speed(),
                    length: b.length,
                    width: b.width,
                })
                .collect();
            let a = &agents[i];
            let ego = EgoView {
                pose: a.state.pose,
                speed: a.state.speed(),
                length: a.length,
                width: a.width,
                goal: a.goal,
                collided: false,
                goal_visible: true,
            };
            observation::build(&model.observation, &ego, &partners, &roads, &mut obs).unwrap();
            observed(&obs);
            let sel = a.selection;
            let act = model.policy.act(&obs, sel, &mut agents[i].rng).unwrap();
            let _ = writeln!(
                out,
                "token {dec} {i} {} {:08x}",
                act.token,
                act.log_prob.to_bits()
            );
            tokens.push(act.token);
        }
        for (a, t) in agents.iter_mut().zip(tokens) {
            let tok = model.tokens.get(a.kind, t as usize).unwrap();
            a.state = apply_token(&a.state, &tok)[1];
        }
    }
    for (i, a) in agents.iter().enumerate() {
        let p = a.state.pose;
        let _ = writeln!(
            out,
            "state {i} {:08x} {:08x} {:08x}",
            p.x.to_bits(),
            p.y.to_bits(),
            p.yaw.to_bits()
        );
    }
    out
}

fn input_file(blob: &Path) -> String {
    let (agents, roads) = scene();
    let mut s = format!("blob {}\ndecisions {DECISIONS}\n", blob.display());
    for a in &agents {
        let (mode, top_k, t) = match a.selection {
            Selection::Argmax => (0, 0, 1.0),
            Selection::Sample { temperature, top_k } => (1, top_k, temperature),
        };
        let p = a.state.pose;
        let _ = writeln!(
            s,
            "agent {} {:.9e} {:.9e} {:.9e} {:.9e} {:.9e} {:.9e} {:.9e} {:.9e} {:.9e} {mode} {top_k} {t:.9e} {}",
            a.kind as u8,
            p.x,
            p.y,
            p.yaw,
            a.state.velocity.x,
            a.state.velocity.y,
            a.length,
            a.width,
            a.goal.x,
            a.goal.y,
            a.rng.state
        );
    }
    for (kind, pts) in &roads {
        let _ = write!(s, "polyline {} {}", *kind as u8, pts.len());
        for p in pts {
            let _ = write!(s, " {:.9e} {:.9e}", p.x, p.y);
        }
        s.push('\n');
    }
    s
}

#[test]
fn cpp_program_matches_rust_bit_for_bit() {
    if !support::tool_available("g++", &["--version"]) {
        return;
    }
    let root = support::workspace_root();
    let lib = support::build_core_staticlib();
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("policy_parity");
    let status = Command::new("g++")
        .args([
            "-O2",
            "-std=c++17",
            "-ffp-contract=off",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
        ])
        .arg(root.join("spacer-core/include"))
        .arg(root.join("tests/ffi/policy_parity.cpp"))
        .arg(&lib)
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
            "-o",
        ])
        .arg(&exe)
        .status()
        .expect("run g++");
    assert!(status.success(), "g++ failed");

    // A policy whose actor is not near-uniform, so token choices are informative.
    let vocab = Vocabulary::kinematic_grid(200).unwrap();
    let init = PolicyFile::initial(&vocab, 17);
    let mut params = init.params().to_vec();
    let layout = spacer::spacer_core::policy::ParamLayout::new(200);
    for t in layout.tensors().iter().filter(|t| t.name == "actor.w") {
        for v in &mut params[t.offset..t.offset + t.rows * t.cols] {
            *v *= 300.0;
        }
    }
    let file = PolicyFile::from_parts(init.blob().header(), &vocab, &params).unwrap();
    // Its int8 quantization, calibrated on the scene's own observations.
    let mut observations = Vec::new();
    let f32_run = rust_run(&file, |o| observations.extend_from_slice(o));
    let calibration = calibrate(&file.model().policy, &observations).unwrap();
    let int8 = quantize(&file, &calibration).unwrap();
    assert_eq!(int8.format(), WeightFormat::Int8);

    for (name, f) in [("f32", &file), ("int8", &int8)] {
        let blob = dir.path().join(format!("policy-{name}.spw"));
        f.write(&blob).unwrap();
        let input = dir.path().join(format!("input-{name}.txt"));
        std::fs::write(&input, input_file(&blob)).unwrap();
        let out = Command::new(&exe)
            .arg(&input)
            .output()
            .expect("run the C++ program");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: C++ checks failed:\n{}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = rust_run(f, |_| {});
        assert_eq!(stdout, want, "{name}: C++ and Rust disagree");
        assert!(
            want.starts_with(&format!(
                "info 200 2984 65289 format {} version 2",
                f.format() as u32
            )),
            "{want}"
        );
        // The run is not trivial: agents chose several distinct tokens.
        let distinct: std::collections::BTreeSet<&str> = want
            .lines()
            .filter(|l| l.starts_with("token"))
            .map(|l| l.split(' ').nth(3).unwrap())
            .collect();
        assert!(distinct.len() >= 3, "{name}: {distinct:?}");
    }
    assert_eq!(f32_run, rust_run(&file, |_| {}));
}
