//! Synthetic scene generation throughput: one scene per layout, and a parallel batch
//! of 64 (rayon, all cores). The target is thousands of scenes per minute on
//! 2 cores; `spacer data gen` prints the same figure for a whole run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use spacer::spacer_train::scenario::synthetic::{
    Layout, LayoutMix, SyntheticConfig, generate, generate_many, scene_seed,
};

fn synthetic(c: &mut Criterion) {
    let config = SyntheticConfig::default();
    let mut g = c.benchmark_group("synthetic");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    for layout in Layout::ALL {
        let cfg = SyntheticConfig {
            layouts: LayoutMix::only(layout),
            ..config.clone()
        };
        let mut i = 0;
        g.bench_function(BenchmarkId::new("generate", layout.name()), |b| {
            b.iter(|| {
                i += 1;
                generate(&cfg, scene_seed(7, i))
            })
        });
    }
    let batch = 64;
    g.throughput(Throughput::Elements(batch as u64));
    let mut seed = 0;
    g.bench_function(BenchmarkId::new("generate_many", batch), |b| {
        b.iter(|| {
            seed += 1;
            generate_many(&config, batch, seed)
        })
    });
    g.finish();
}

criterion_group!(benches, synthetic);
criterion_main!(benches);
