//! The metric configuration's text-format parser on arbitrary text, then every
//! configuration it accepts put to use: the features of a small synthetic scene scored
//! under it and bucketed. Whatever the parser lets through (bin counts, ranges,
//! bandwidths, pseudocounts, weights) must score without a panic or a runaway
//! allocation, with likelihoods in [0, 1].
//!
//! Seed it with the shipped configurations:
//! `cargo +nightly fuzz run metric_config corpus/metric_config ../spacer-train/configs/wosac`.
#![no_main]

#[path = "common/metrics_fixture.rs"]
mod metrics_fixture;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use metrics_fixture::{check_scores, fixture};
use spacer_train::metrics::{MetricsConfig, SimAgentsBucketedMetrics, score_features};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = MetricsConfig::parse(text, Path::new("fuzz.textproto")) else {
        return;
    };
    let f = fixture();
    if let Ok(m) = score_features(&config, &f.features) {
        check_scores(&config, &m);
        let _ = SimAgentsBucketedMetrics::from_metrics(&config, &m);
    }
});
