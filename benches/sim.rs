//! The batched simulator: whole episodes (11 logged steps, 80 simulated, 40
//! decisions) of a batch of worlds, with and without observations.
//!
//! `cargo bench --bench sim`. Throughput is in controlled agent-steps (agents x 80
//! simulated steps); observations, when built, are built at every decision (every
//! second step) for every agent. Worlds: the built-in dense four-lane road (64
//! controlled vehicles, 16 pedestrians, 2,113 road segments) and the shipped WOMD
//! scenes (637f20cafde22ff8: 83 objects; ee519cf571686d19: 257 objects, at most 64
//! controlled), each repeated to fill the batch.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spacer::spacer_core::tokenizer::Vocabulary;
use spacer::spacer_train::paths::shared_data;
use spacer::spacer_train::scenario::Scene;
use spacer::spacer_train::scenario::womd::read_scenes;
use spacer::spacer_train::sim::{LogReplay, RandomTokens, SimAgent, SimConfig, Simulator, testing};

/// Worlds per batch.
const WORLDS: usize = 16;

fn batch(scenes: &[Scene]) -> Vec<Arc<Scene>> {
    let arcs: Vec<Arc<Scene>> = scenes.iter().cloned().map(Arc::new).collect();
    (0..WORLDS)
        .map(|w| Arc::clone(&arcs[w % arcs.len()]))
        .collect()
}

fn womd() -> Vec<Scene> {
    ["637f20cafde22ff8", "ee519cf571686d19"]
        .iter()
        .flat_map(|id| {
            read_scenes(&shared_data(format!("womd/{id}.tfrecord")))
                .expect("the shipped WOMD scenes read")
        })
        .collect()
}

fn episodes(c: &mut Criterion) {
    let vocabulary = Vocabulary::kinematic_grid(200).expect("a valid size");
    let cases: [(&str, Vec<Scene>); 2] = [
        ("dense-road", vec![testing::dense_road(4, 64)]),
        ("womd", womd()),
    ];
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    for (name, scenes) in &cases {
        for observe in [true, false] {
            let config = SimConfig {
                always_observe: observe,
                ..SimConfig::default()
            };
            let mut sim = Simulator::new(&batch(scenes), config).expect("scenes simulate");
            let agent_steps = (sim.rows().len() * config.sim_steps) as u64;
            group.throughput(Throughput::Elements(agent_steps));
            let label = if observe { "observed" } else { "unobserved" };
            let mut random = RandomTokens::new(vocabulary.clone(), 1);
            let agents: [(&str, &mut dyn SimAgent); 2] =
                [("random", &mut random), ("log", &mut LogReplay)];
            for (agent_name, agent) in agents {
                let id = format!("{name}/{agent_name}/{label}");
                let mut seed = 0;
                group.bench_function(id, |b| {
                    b.iter(|| {
                        seed += 1;
                        black_box(sim.run(agent, seed).expect("runs"))
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, episodes);
criterion_main!(benches);
