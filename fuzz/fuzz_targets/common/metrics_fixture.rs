//! One small synthetic scene and valid rollouts for it, shared by the metrics targets.

// Each target uses part of it.
#![allow(dead_code)]

use std::sync::OnceLock;

use spacer_train::metrics::{
    Feature, MetricsConfig, ScenarioFeatures, ScenarioRollouts, SimAgentMetrics, score_scenario,
};
use spacer_train::scenario::Scene;
use spacer_train::scenario::synthetic::{SyntheticConfig, generate};

pub struct Fixture {
    /// A synthetic scene with a few agents, in its local frame.
    pub scene: Scene,
    /// Two rollouts: the log, and the log moved 1 m east.
    pub rollouts: ScenarioRollouts,
    /// The 2025 challenge configuration.
    pub config: MetricsConfig,
    /// The features of `rollouts` on `scene`.
    pub features: ScenarioFeatures,
}

/// Built once; it must score, or the targets would test nothing.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let synthetic = SyntheticConfig {
            max_agents: 6,
            pedestrians: (0, 1),
            cyclists: (0, 0),
            burn_in_steps: 10,
            world_extent: 0.0,
            ..SyntheticConfig::default()
        };
        let scene = generate(&synthetic, 7);
        let mut rollouts = ScenarioRollouts::logged(&scene);
        let mut nudged = rollouts.joint_scenes[0].clone();
        for t in &mut nudged.trajectories {
            t.x.iter_mut().for_each(|x| *x += 1.0);
        }
        rollouts.joint_scenes.push(nudged);
        let config = MetricsConfig::challenge_2025().expect("the 2025 config");
        score_scenario(&config, &scene, &rollouts).expect("the fixture scores");
        let features = ScenarioFeatures::compute(&scene, &rollouts).expect("features");
        Fixture {
            scene,
            rollouts,
            config,
            features,
        }
    })
}

/// Likelihoods are probabilities and the meta-metric lies within the sum of the
/// weights (NaN where nothing was measured); displacement errors are not negative.
pub fn check_scores(config: &MetricsConfig, m: &SimAgentMetrics) {
    let within = |v: f64, hi: f64| v.is_nan() || (0.0..=hi + 1e-5).contains(&v);
    let total: f64 = Feature::ALL.iter().map(|&f| f64::from(config.weight(f))).sum();
    assert!(within(m.metametric, total), "metametric {}", m.metametric);
    for f in Feature::ALL {
        assert!(within(m.likelihood(f), 1.0), "{}: {}", f.name(), m.likelihood(f));
    }
    for ade in [m.average_displacement_error, m.min_average_displacement_error] {
        assert!(ade.is_nan() || (ade.is_finite() && ade >= 0.0), "ADE {ade}");
    }
}
