//! The WOSAC metrics of one real scene (637f20cafde22ff8: 50 simulated objects, 4
//! evaluated) with the shipped 32-rollout constant-velocity submission: features,
//! scoring, and both, on all cores and on one; and of the densest shipped scene
//! (ee519cf571686d19: 84 simulated objects, 5 evaluated) with 32 log-replay rollouts;
//! and the features of the shipped `sdc_go` submission (the self-driving car crosses
//! stop lines in every rollout, so the red-light current-lane search runs).
//!
//! Run: `cargo bench --bench metrics`.

use criterion::{Criterion, criterion_group, criterion_main};
use spacer_train::metrics::rollouts::read_submission;
use spacer_train::metrics::{
    MetricsConfig, ScenarioFeatures, ScenarioRollouts, score_features, score_scenario,
};
use spacer_train::paths::shared_data;
use spacer_train::scenario::womd::read_scenes;

fn metrics(c: &mut Criterion) {
    let scene = read_scenes(&shared_data("womd/637f20cafde22ff8.tfrecord"))
        .expect("shipped scene")
        .remove(0);
    let rollouts = read_submission(&shared_data(
        "wosac/637f20cafde22ff8_constvel_submission.binproto",
    ))
    .expect("shipped submission")
    .scenario_rollouts
    .remove(0);
    let config = MetricsConfig::challenge_2025().expect("shipped config");
    let features = ScenarioFeatures::compute(&scene, &rollouts).expect("features");

    let mut g = c.benchmark_group("metrics_637f20cafde22ff8_32_rollouts");
    g.sample_size(20);
    g.bench_function("features", |b| {
        b.iter(|| ScenarioFeatures::compute(&scene, &rollouts).expect("features"))
    });
    g.bench_function("score_2025", |b| {
        b.iter(|| score_features(&config, &features).expect("score"))
    });
    g.bench_function("features_and_score_2025", |b| {
        b.iter(|| score_scenario(&config, &scene, &rollouts).expect("score"))
    });
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    g.bench_function("features_and_score_2025_one_thread", |b| {
        b.iter(|| one.install(|| score_scenario(&config, &scene, &rollouts).expect("score")))
    });
    let sdc_go = read_submission(&shared_data(
        "wosac/637f20cafde22ff8_sdc_go_submission.binproto",
    ))
    .expect("shipped submission")
    .scenario_rollouts
    .remove(0);
    g.bench_function("features_sdc_go", |b| {
        b.iter(|| ScenarioFeatures::compute(&scene, &sdc_go).expect("features"))
    });
    g.finish();

    let dense = read_scenes(&shared_data("womd/ee519cf571686d19.tfrecord"))
        .expect("shipped scene")
        .remove(0);
    let mut replay = ScenarioRollouts::logged(&dense);
    let one_rollout = replay.joint_scenes[0].clone();
    replay.joint_scenes = vec![one_rollout; 32];
    let mut g = c.benchmark_group("metrics_ee519cf571686d19_32_log_replays");
    g.sample_size(10);
    g.bench_function("features_and_score_2025", |b| {
        b.iter(|| score_scenario(&config, &dense, &replay).expect("score"))
    });
    g.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
