//! spacer-core hot paths: policy forward (single and batched) for the f32 network and
//! its int8 quantization, observation build, tokenizer encode. Single-threaded.
//!
//! `cargo bench --bench policy`. Forward cost grows with the number of *occupied*
//! observation slots (each adds one encoder pass), so it is measured at three fills:
//! empty (no partners, no road segments), typical (8 partners, 60 road segments) and
//! full (63 partners, 200 road segments). The int8 policy is the f32 one quantized by
//! `spacer_train::quantize`, calibrated on observations like the benchmark's. Both run
//! the widest kernels the CPU has (AVX-512 where detected; `SPACER_NO_AVX512=1` forces
//! the AVX2 build).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spacer::spacer_core::agent::AgentKind;
use spacer::spacer_core::geometry::{Pose, Vec2};
use spacer::spacer_core::math::Rng;
use spacer::spacer_core::observation::{
    self, EgoView, ObservationConfig, PartnerView, RoadKind, RoadSegment,
};
use spacer::spacer_core::policy::{Policy, PolicyDims, init_params, param_count};
use spacer::spacer_core::tokenizer::Vocabulary;
use spacer::spacer_core::weights::BlobHeader;
use spacer::spacer_train::policy_file::PolicyFile;
use spacer::spacer_train::quantize::{calibrate, quantize};

fn params() -> Vec<f32> {
    let mut p = vec![0.0f32; param_count(200)];
    init_params(&PolicyDims::default(), 1, &mut p).unwrap();
    p
}

/// An observation built by the real builder from `partners` agents and `roads`
/// segments scattered within 50 m.
fn observation(partners: usize, roads: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut coord = || (rng.next_f32() - 0.5) * 70.0;
    let ps: Vec<PartnerView> = (0..partners)
        .map(|_| PartnerView {
            pose: Pose::new(coord(), coord(), 0.3),
            speed: 5.0,
            length: 4.5,
            width: 2.0,
        })
        .collect();
    let kinds = [
        RoadKind::Lane,
        RoadKind::RoadEdge,
        RoadKind::RoadLine,
        RoadKind::Crosswalk,
    ];
    let rs: Vec<RoadSegment> = (0..roads)
        .map(|i| RoadSegment {
            center: Vec2::new(coord(), coord()),
            yaw: 0.1 * i as f32,
            half_length: 2.0,
            half_width: 0.1,
            height: 0.0,
            kind: kinds[i % 4],
        })
        .collect();
    let ego = EgoView {
        pose: Pose::IDENTITY,
        speed: 8.0,
        length: 4.6,
        width: 2.0,
        goal: Vec2::new(40.0, 3.0),
        collided: false,
        goal_visible: true,
    };
    let cfg = ObservationConfig::default();
    let mut out = vec![0.0f32; cfg.len()];
    let n = observation::build(&cfg, &ego, &ps, &rs, &mut out).unwrap();
    assert_eq!(
        (n.partners, n.road_segments),
        (partners.min(63), roads.min(200))
    );
    out
}

/// The f32 policy and its int8 quantization.
fn policies() -> (PolicyFile, PolicyFile) {
    let dims = PolicyDims::default();
    let vocab = Vocabulary::kinematic_grid(200).unwrap();
    let f32_file =
        PolicyFile::from_parts(&BlobHeader::new(dims, 50.0, 0), &vocab, &params()).unwrap();
    let calib: Vec<f32> = (0..64)
        .flat_map(|i| observation(i % 64, (i * 7) % 200, 100 + i as u64))
        .collect();
    let cal = calibrate(&f32_file.model().policy, &calib).unwrap();
    let int8 = quantize(&f32_file, &cal).unwrap();
    (f32_file, int8)
}

fn forward_of(c: &mut Criterion, group: &str, policy: &Policy<'_>) {
    let mut logits = vec![0.0f32; 200];
    let mut g = c.benchmark_group(group);
    for (name, np, nr) in [
        ("empty", 0, 0),
        ("typical_8p_60r", 8, 60),
        ("full_63p_200r", 63, 200),
    ] {
        let obs = observation(np, nr, 1);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("batch1/{name}"), |b| {
            b.iter(|| black_box(policy.forward(black_box(&obs), &mut logits).unwrap()))
        });
        let n = 64;
        let batch: Vec<f32> = (0..n).flat_map(|i| observation(np, nr, i as u64)).collect();
        let mut bl = vec![0.0f32; n * 200];
        let mut bv = vec![0.0f32; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("batch64/{name}"), |b| {
            b.iter(|| {
                policy
                    .forward_batch(black_box(&batch), &mut bl, &mut bv)
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn forward(c: &mut Criterion) {
    let p = params();
    let policy = Policy::new(PolicyDims::default(), &p).unwrap();
    forward_of(c, "policy_forward", &policy);
    let (_, int8) = policies();
    forward_of(c, "policy_forward_int8", &int8.model().policy);
}

fn build_observation(c: &mut Criterion) {
    let mut rng = Rng::new(3);
    let mut coord = || (rng.next_f32() - 0.5) * 200.0;
    let ps: Vec<PartnerView> = (0..64)
        .map(|_| PartnerView {
            pose: Pose::new(coord(), coord(), 0.0),
            speed: 3.0,
            length: 4.0,
            width: 2.0,
        })
        .collect();
    let rs: Vec<RoadSegment> = (0..600)
        .map(|_| RoadSegment {
            center: Vec2::new(coord(), coord()),
            kind: RoadKind::Lane,
            ..Default::default()
        })
        .collect();
    let ego = EgoView {
        pose: Pose::IDENTITY,
        speed: 5.0,
        length: 4.5,
        width: 2.0,
        goal: Vec2::new(9.0, 9.0),
        collided: false,
        goal_visible: true,
    };
    let cfg = ObservationConfig::default();
    let mut out = vec![0.0f32; cfg.len()];
    c.bench_function("observation_build/64_partners_600_segments", |b| {
        b.iter(|| observation::build(&cfg, &ego, black_box(&ps), black_box(&rs), &mut out).unwrap())
    });
}

fn tokenizer(c: &mut Criterion) {
    let vocab = Vocabulary::kinematic_grid(200).unwrap();
    // 9.1 s of a vehicle accelerating through a curve.
    let traj: Vec<Pose> = (0..91)
        .map(|i| {
            let t = i as f32 * 0.1;
            let yaw = 0.05 * t * t;
            Pose::new(8.0 * t + 0.4 * t * t, 0.3 * t * t * t / 3.0, yaw)
        })
        .collect();
    let mut out = [0u16; 45];
    c.bench_function("tokenizer_encode/vehicle_91_steps", |b| {
        b.iter(|| {
            vocab
                .encode(AgentKind::Vehicle, black_box(&traj), &mut out)
                .unwrap()
        })
    });
}

criterion_group!(benches, forward, build_observation, tokenizer);
criterion_main!(benches);
