//! Golden tests against the official metric code's output for scene 637f20cafde22ff8
//! (`wosac/golden/*.json`, computed by waymo-open-dataset: commit 99a4cb3, and the
//! PyPI wheel 1.6.7 for `sdc_go`, which reproduces the constant-velocity file exactly):
//! - `constvel` (32 constant-velocity rollouts) and `logged` (the logged future as one
//!   rollout), under the 2025, 2024, legacy 2023, test and test-dependent-timesteps
//!   configs: every score, and every per-object, per-step feature array;
//! - `noise_large` (the logged future with 1.5 m / 0.1 rad of noise per step, 32
//!   rollouts) and `sdc_go` (the self-driving car, parked in the log, drives straight
//!   across its intersection at 4-8 m/s, 32 rollouts), under 2025 and 2024: every score
//!   and bucket, the per-object collision, off-road and red-light flags and their
//!   log-likelihoods, and for `sdc_go` the per-step red-light arrays of every evaluated
//!   object, the car's current lane at every step and every stop line it crosses
//!   (counted or not).
//!
//! Two levels: the scores from the golden feature arrays (estimators, masks and
//! aggregation alone), and the features themselves from the scene and the rollouts.
//! Run: `cargo test -p spacer-train --lib metrics::golden_tests`.

use std::path::Path;

use serde_json::Value;

use super::config::{Feature, MetricsConfig};
use super::features::{FeatureArray, MetricFeatures, ScenarioFeatures};
use super::scene::{SimAgentMetrics, SimAgentsBucketedMetrics, score_features};
use crate::scenario::ObjectType;

/// The official `testdata/test_config.textproto` (numbers only).
pub(crate) const TEST_CONFIG: &str = "
linear_speed { histogram { min_val: 0.0 max_val: 30.0 num_bins: 10 additive_smoothing_pseudocount: 0.1 } independent_timesteps: true metametric_weight: 1.0 }
linear_acceleration { histogram { min_val: 0.0 max_val: 5.0 num_bins: 10 additive_smoothing_pseudocount: 0.1 } independent_timesteps: true metametric_weight: 1.0 }
angular_speed { histogram { min_val: 0.0 max_val: 1.0 num_bins: 10 additive_smoothing_pseudocount: 0.1 } independent_timesteps: true metametric_weight: 1.0 }
angular_acceleration { histogram { min_val: 0.0 max_val: 0.3 num_bins: 10 additive_smoothing_pseudocount: 0.1 } independent_timesteps: true metametric_weight: 1.0 }
distance_to_nearest_object { histogram { min_val: -5.0 max_val: 100.0 num_bins: 10 additive_smoothing_pseudocount: 0.1 } independent_timesteps: true metametric_weight: 1.0 }
collision_indication { bernoulli {} metametric_weight: 1.0 }
distance_to_road_edge { histogram { min_val: -5.0 max_val: 15.0 num_bins: 10 additive_smoothing_pseudocount: 0.1 } independent_timesteps: true metametric_weight: 1.0 }
offroad_indication { bernoulli {} metametric_weight: 1.0 }
time_to_collision { histogram { min_val: 0.0 max_val: 5.0 num_bins: 10 additive_smoothing_pseudocount: 0.1 } independent_timesteps: true metametric_weight: 1.0 }
traffic_light_violation { bernoulli {} metametric_weight: 1.0 }
";

/// The official `testdata/test_config_dependent_timesteps.textproto` (numbers only).
pub(crate) const TEST_CONFIG_DEPENDENT: &str = "
linear_speed { histogram { min_val: 0.0 max_val: 30.0 num_bins: 10 additive_smoothing_pseudocount: 0.00001 } independent_timesteps: false metametric_weight: 0.11 }
linear_acceleration { histogram { min_val: 0.0 max_val: 5.0 num_bins: 10 additive_smoothing_pseudocount: 0.00001 } independent_timesteps: false metametric_weight: 0.11 }
angular_speed { histogram { min_val: 0.0 max_val: 1.0 num_bins: 10 additive_smoothing_pseudocount: 0.00001 } independent_timesteps: false metametric_weight: 0.11 }
angular_acceleration { histogram { min_val: 0.0 max_val: 0.3 num_bins: 10 additive_smoothing_pseudocount: 0.00001 } independent_timesteps: false metametric_weight: 0.11 }
distance_to_nearest_object { histogram { min_val: -5.0 max_val: 100.0 num_bins: 10 additive_smoothing_pseudocount: 0.00001 } independent_timesteps: false metametric_weight: 0.11 }
collision_indication { bernoulli {} metametric_weight: 0.12 }
distance_to_road_edge { histogram { min_val: -5.0 max_val: 15.0 num_bins: 10 additive_smoothing_pseudocount: 0.00001 } independent_timesteps: false metametric_weight: 0.11 }
offroad_indication { bernoulli {} metametric_weight: 0.11 }
time_to_collision { histogram { min_val: 0.0 max_val: 5.0 num_bins: 10 additive_smoothing_pseudocount: 0.00001 } independent_timesteps: false metametric_weight: 0.11 }
traffic_light_violation { bernoulli {} metametric_weight: 0.0 }
";

/// The 2023 challenge config lacked `traffic_light_violation`; the official code then
/// fails with "invalid estimator".
pub(crate) fn legacy_2023_like() -> MetricsConfig {
    let c25 = MetricsConfig::challenge_2025().unwrap();
    let mut c = c25.clone();
    c.name = "challenge_2023_legacy".into();
    c.set_feature(Feature::TrafficLightViolation, None);
    c
}

/// The config named as in the golden files.
pub(crate) fn config(name: &str) -> MetricsConfig {
    let mut c = match name {
        "challenge_2025_sim_agents" => MetricsConfig::challenge_2025().unwrap(),
        "challenge_2024" => MetricsConfig::challenge_2024().unwrap(),
        "test_config" => MetricsConfig::parse(TEST_CONFIG, Path::new("test_config")).unwrap(),
        "test_config_dependent_timesteps" => {
            MetricsConfig::parse(TEST_CONFIG_DEPENDENT, Path::new(name)).unwrap()
        }
        "challenge_2023_legacy" => legacy_2023_like(),
        other => panic!("unknown golden config {other}"),
    };
    c.name = name.to_string();
    c
}

/// A golden file, with Python's `NaN` tokens read as null.
pub(crate) fn golden(which: &str) -> Value {
    let path = crate::paths::shared_data(format!("wosac/golden/637f20cafde22ff8_{which}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text.replace("NaN", "null")).unwrap()
}

fn floats3(v: &Value) -> FeatureArray<f32> {
    let s = v.as_array().unwrap();
    let rows: Vec<Vec<Vec<f32>>> = s
        .iter()
        .map(|o| {
            o.as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    t.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().map_or(f32::NAN, |x| x as f32))
                        .collect()
                })
                .collect()
        })
        .collect();
    to_array(rows)
}

fn bools3(v: &Value) -> FeatureArray<bool> {
    let rows: Vec<Vec<Vec<bool>>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            o.as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    t.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_bool().unwrap())
                        .collect()
                })
                .collect()
        })
        .collect();
    to_array(rows)
}

fn to_array<T: Copy>(rows: Vec<Vec<Vec<T>>>) -> FeatureArray<T> {
    let n_samples = rows.len();
    let n_objects = rows[0].len();
    let n_steps = rows[0][0].len();
    FeatureArray {
        n_samples,
        n_objects,
        n_steps,
        data: rows.into_iter().flatten().flatten().collect(),
    }
}

/// The golden features of one side (`log_features` or `sim_features`).
pub(crate) fn golden_features(v: &Value) -> MetricFeatures {
    let ade: Vec<Vec<Vec<f32>>> = v["average_displacement_error"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|x| vec![x.as_f64().unwrap() as f32])
                .collect()
        })
        .collect();
    MetricFeatures {
        object_id: v["object_id"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect(),
        object_type: v["object_type"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| ObjectType::from_proto(x.as_i64().unwrap() as i32))
            .collect(),
        valid: bools3(&v["valid"]),
        average_displacement_error: to_array(ade),
        linear_speed: floats3(&v["linear_speed"]),
        linear_acceleration: floats3(&v["linear_acceleration"]),
        angular_speed: floats3(&v["angular_speed"]),
        angular_acceleration: floats3(&v["angular_acceleration"]),
        distance_to_nearest_object: floats3(&v["distance_to_nearest_object"]),
        collision_per_step: bools3(&v["collision_per_step"]),
        time_to_collision: floats3(&v["time_to_collision"]),
        distance_to_road_edge: floats3(&v["distance_to_road_edge"]),
        offroad_per_step: bools3(&v["offroad_per_step"]),
        traffic_light_violation_per_step: bools3(&v["traffic_light_violation_per_step"]),
    }
}

pub(crate) fn golden_scenario_features(g: &Value) -> ScenarioFeatures {
    ScenarioFeatures {
        scenario_id: g["scenario_id"].as_str().unwrap().to_string(),
        log: golden_features(&g["log_features"]),
        sim: golden_features(&g["sim_features"]),
    }
}

/// Asserts every field of the golden `SimAgentMetrics` (and bucketed metrics where
/// present) to 1e-4; returns the number of values compared.
pub(crate) fn assert_scores(
    which: &str,
    config_name: &str,
    expected: &Value,
    metrics: &SimAgentMetrics,
    bucketed: Option<&SimAgentsBucketedMetrics>,
) -> usize {
    let mut n = 0;
    let exp = &expected["SimAgentMetrics"];
    for (name, got) in metrics.fields() {
        let want = exp[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{which}/{config_name}: golden lacks {name}"));
        assert!(
            (got - want).abs() <= 1e-4,
            "{which}/{config_name}: {name} = {got}, official {want}"
        );
        n += 1;
    }
    assert_eq!(exp["scenario_id"], "637f20cafde22ff8");
    if let (Some(b), Some(exp_b)) = (bucketed, expected.get("SimAgentsBucketedMetrics")) {
        for (name, got) in b.fields() {
            let want = exp_b[name].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-4,
                "{which}/{config_name}: bucketed {name} = {got}, official {want}"
            );
            n += 1;
        }
    }
    n
}

/// Scores `features` under every config of golden file `which` and compares.
pub(crate) fn check_all_configs(which: &str, g: &Value, features: &ScenarioFeatures) -> usize {
    let mut compared = 0;
    for (name, expected) in g["metrics"].as_object().unwrap() {
        let cfg = config(name);
        if let Some(err) = expected.get("error") {
            let e = score_features(&cfg, features).unwrap_err().to_string();
            assert!(
                err.as_str().unwrap().contains("invalid estimator") && e.contains("no estimator"),
                "{which}/{name}: official {err}, ours {e}"
            );
            compared += 1;
            continue;
        }
        let m = score_features(&cfg, features).unwrap();
        let b = expected
            .get("SimAgentsBucketedMetrics")
            .map(|_| SimAgentsBucketedMetrics::from_metrics(&cfg, &m).unwrap());
        compared += assert_scores(which, name, expected, &m, b.as_ref());
    }
    compared
}

#[test]
fn scores_from_the_official_features_match_for_every_config() {
    for which in ["constvel", "logged"] {
        let g = golden(which);
        let features = golden_scenario_features(&g);
        let n = check_all_configs(which, &g, &features);
        assert!(n > 3 * 24, "{which}: only {n} values compared");
    }
}

/// The golden scene, with the raw values of invalid states restored from the
/// protobuf. WOMD sets only `center_z` (about -4e-4 m) in invalid states and the
/// official code reads the proto defaults for the rest; the scene reader stores zeros.
/// The difference reaches only feature values at steps the scoring masks out (the
/// scores match either way, see `features_and_scores_of_the_plain_scene`).
pub(crate) fn golden_scene_raw() -> crate::scenario::Scene {
    use crate::scenario::womd::{WomdReader, read_scenes};
    let path = crate::paths::shared_data("womd/637f20cafde22ff8.tfrecord");
    let mut scene = read_scenes(&path).unwrap().remove(0);
    let (_, proto) = WomdReader::open(&path)
        .unwrap()
        .next_scenario()
        .unwrap()
        .unwrap();
    for (track, pt) in scene.tracks.iter_mut().zip(&proto.tracks) {
        for (st, ps) in track.states.iter_mut().zip(&pt.states) {
            if !st.valid {
                st.x = ps.center_x.unwrap_or(0.0) as f32;
                st.y = ps.center_y.unwrap_or(0.0) as f32;
                st.z = ps.center_z.unwrap_or(0.0) as f32;
                st.heading = ps.heading.unwrap_or(0.0);
                st.length = ps.length.unwrap_or(0.0);
                st.width = ps.width.unwrap_or(0.0);
                st.height = ps.height.unwrap_or(0.0);
            }
        }
    }
    scene
}

pub(crate) fn golden_rollouts(
    which: &str,
    scene: &crate::scenario::Scene,
) -> super::ScenarioRollouts {
    match which {
        "constvel" => super::rollouts::read_submission(&crate::paths::shared_data(
            "wosac/637f20cafde22ff8_constvel_submission.binproto",
        ))
        .unwrap()
        .scenario_rollouts
        .remove(0),
        "logged" => super::ScenarioRollouts::logged(scene),
        "noise_large" | "sdc_go" => super::rollouts::read_submission(&crate::paths::shared_data(
            format!("wosac/637f20cafde22ff8_{which}_submission.binproto"),
        ))
        .unwrap()
        .scenario_rollouts
        .remove(0),
        other => panic!("{other}"),
    }
}

/// Whether `got` reproduces the official `want` (rounded to 5 decimals in the file):
/// 1e-4 absolute, relative for values beyond 1 (the placeholder-driven speeds of 5e4
/// carry an `f32` resolution of 4e-3).
fn close(got: f32, want: f32) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    let (g, w) = (got as f64, want as f64);
    (g - w).abs() <= 1e-4 * w.abs().max(1.0)
}

/// Compares every array of `ours` with the golden `theirs`; returns (compared,
/// mismatches with their description).
fn compare_features(
    side: &str,
    ours: &MetricFeatures,
    theirs: &MetricFeatures,
    skip: impl Fn(usize, usize, usize) -> bool,
) -> (usize, Vec<String>) {
    assert_eq!(ours.object_id, theirs.object_id, "{side}: object ids");
    assert_eq!(ours.object_type, theirs.object_type, "{side}: object types");
    let mut bad = Vec::new();
    let mut n = 0;
    let mut floats = |name: &str, a: &FeatureArray<f32>, b: &FeatureArray<f32>| {
        assert_eq!(
            (a.n_samples, a.n_objects, a.n_steps),
            (b.n_samples, b.n_objects, b.n_steps),
            "{side} {name} shape"
        );
        for s in 0..a.n_samples {
            for o in 0..a.n_objects {
                for t in 0..a.n_steps {
                    if skip(s, o, t) {
                        continue;
                    }
                    n += 1;
                    let (x, y) = (a.get(s, o, t), b.get(s, o, t));
                    if !close(x, y) {
                        bad.push(format!(
                            "{side} {name}[{s}][{o}][{t}]: ours {x}, official {y}"
                        ));
                    }
                }
            }
        }
    };
    floats(
        "average_displacement_error",
        &ours.average_displacement_error,
        &theirs.average_displacement_error,
    );
    floats("linear_speed", &ours.linear_speed, &theirs.linear_speed);
    floats(
        "linear_acceleration",
        &ours.linear_acceleration,
        &theirs.linear_acceleration,
    );
    floats("angular_speed", &ours.angular_speed, &theirs.angular_speed);
    floats(
        "angular_acceleration",
        &ours.angular_acceleration,
        &theirs.angular_acceleration,
    );
    floats(
        "distance_to_nearest_object",
        &ours.distance_to_nearest_object,
        &theirs.distance_to_nearest_object,
    );
    floats(
        "time_to_collision",
        &ours.time_to_collision,
        &theirs.time_to_collision,
    );
    floats(
        "distance_to_road_edge",
        &ours.distance_to_road_edge,
        &theirs.distance_to_road_edge,
    );
    let mut bools = |name: &str, a: &FeatureArray<bool>, b: &FeatureArray<bool>| {
        for s in 0..a.n_samples {
            for o in 0..a.n_objects {
                for t in 0..a.n_steps {
                    if skip(s, o, t) {
                        continue;
                    }
                    n += 1;
                    if a.get(s, o, t) != b.get(s, o, t) {
                        bad.push(format!(
                            "{side} {name}[{s}][{o}][{t}]: ours {}",
                            a.get(s, o, t)
                        ));
                    }
                }
            }
        }
    };
    bools("valid", &ours.valid, &theirs.valid);
    bools(
        "collision_per_step",
        &ours.collision_per_step,
        &theirs.collision_per_step,
    );
    bools(
        "offroad_per_step",
        &ours.offroad_per_step,
        &theirs.offroad_per_step,
    );
    bools(
        "traffic_light_violation_per_step",
        &ours.traffic_light_violation_per_step,
        &theirs.traffic_light_violation_per_step,
    );
    (n, bad)
}

#[test]
fn features_and_scores_match_the_official_ones() {
    let scene = golden_scene_raw();
    for which in ["constvel", "logged"] {
        let g = golden(which);
        let official = golden_scenario_features(&g);
        let rollouts = golden_rollouts(which, &scene);
        let ours = ScenarioFeatures::compute(&scene, &rollouts).unwrap();
        let mut report = Vec::new();
        let mut compared = 0;
        for (side, a, b) in [
            ("log", &ours.log, &official.log),
            ("sim", &ours.sim, &official.sim),
        ] {
            let (n, bad) = compare_features(side, a, b, |_, _, _| false);
            compared += n;
            report.extend(bad);
        }
        let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
        for r in &report {
            let key: String = r.split('[').next().unwrap().to_string();
            *kinds.entry(key).or_default() += 1;
        }
        eprintln!("{which}: {compared} feature values compared, mismatches {kinds:?}");
        assert!(
            report.is_empty(),
            "{which}: {} of {compared} feature values differ:\n{}",
            report.len(),
            report
                .iter()
                .take(40)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        let scores = check_all_configs(which, &g, &ours);
        eprintln!("{which}: {scores} scores compared");
    }
}

#[test]
fn features_and_scores_of_the_plain_scene() {
    // The scene as the reader gives it (invalid states zeroed): scores still match, and
    // every feature value the scoring uses (log-valid steps) too.
    let path = crate::paths::shared_data("womd/637f20cafde22ff8.tfrecord");
    let scene = crate::scenario::womd::read_scenes(&path).unwrap().remove(0);
    let g = golden("constvel");
    let official = golden_scenario_features(&g);
    let ours = ScenarioFeatures::compute(&scene, &golden_rollouts("constvel", &scene)).unwrap();
    check_all_configs("constvel (plain scene)", &g, &ours);
    let log_valid = official.log.valid.clone();
    let (_, bad) = compare_features("log", &ours.log, &official.log, |_, o, t| {
        // Skip steps whose stencil touches an invalid logged state.
        (t.saturating_sub(2)..(t + 3).min(log_valid.n_steps)).any(|u| !log_valid.get(0, o, u))
    });
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_gpudrive_json_copy_of_the_scene_scores_nearly_the_same() {
    // GPUDrive's JSON keeps one box size per object instead of one per step, so the
    // box-based features (object and road-edge distances) move slightly.
    use crate::scenario::load::{BadScenePolicy, load_scenes};
    let path = crate::paths::shared_data("gpudrive/637f20cafde22ff8.json");
    let scene = load_scenes(&path, BadScenePolicy::Fail).unwrap().remove(0);
    let g = golden("constvel");
    let ours = ScenarioFeatures::compute(&scene, &golden_rollouts("constvel", &scene)).unwrap();
    let m = score_features(&config("challenge_2025_sim_agents"), &ours).unwrap();
    let want = &g["metrics"]["challenge_2025_sim_agents"]["SimAgentMetrics"];
    for (name, got) in m.fields() {
        let w = want[name].as_f64().unwrap();
        let tol = if name.starts_with("distance_to") {
            2e-3
        } else {
            1e-4
        };
        assert!((got - w).abs() <= tol, "{name}: {got} vs official {w}");
    }
}

/// A golden `[samples][objects]` (or `[objects]`) boolean array, flattened.
fn golden_bools(v: &Value) -> Vec<bool> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<bool>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Bool(b) => out.push(*b),
            other => panic!("not a boolean: {other}"),
        }
    }
    walk(v, &mut out);
    out
}

/// Compares the per-object flags and log-likelihoods of the Bernoulli features with
/// the official intermediate values of golden file `which`; returns the number of
/// values compared.
fn check_per_object(which: &str, g: &Value, ours: &ScenarioFeatures) -> usize {
    let po = &g["per_object"];
    let ids: Vec<i64> = po["object_id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(ours.log.object_id, ids, "{which}: evaluated objects");
    let log = super::EventIndications::of(ours, false);
    let sim = super::EventIndications::of(ours, true);
    let cfg = config("challenge_2025_sim_agents");
    let mut n = 0;
    for (name, feature, ours_log, ours_sim) in [
        (
            "collision",
            Feature::CollisionIndication,
            &log.collision,
            &sim.collision,
        ),
        (
            "offroad",
            Feature::OffroadIndication,
            &log.offroad,
            &sim.offroad,
        ),
        (
            "traffic_light_violation",
            Feature::TrafficLightViolation,
            &log.traffic_light_violation,
            &sim.traffic_light_violation,
        ),
    ] {
        let want_sim = golden_bools(&po[format!("sim_{name}_indication")]);
        let want_log = golden_bools(&po[format!("log_{name}_indication")]);
        assert_eq!(ours_sim, &want_sim, "{which}: sim_{name}_indication");
        assert_eq!(ours_log, &want_log, "{which}: log_{name}_indication");
        let ll = super::likelihood::log_likelihood_per_object(
            cfg.feature(feature).unwrap(),
            ours_log,
            ours_sim,
        )
        .unwrap();
        let key = if name == "traffic_light_violation" {
            "traffic_light_violation_log_likelihood".to_string()
        } else {
            format!("{name}_indication_log_likelihood")
        };
        for (o, want) in po[&key].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            assert!(
                (ll[o] - want).abs() <= 1e-4,
                "{which}: {key}[{o}] = {}, official {want}",
                ll[o]
            );
        }
        n += want_sim.len() + want_log.len() + ll.len();
    }
    if let Some(rate) = po.get("sim_traffic_light_violation_indication_for_rate") {
        assert_eq!(
            sim.traffic_light_violation_any_type,
            golden_bools(rate),
            "{which}: sim_traffic_light_violation_indication_for_rate"
        );
        n += sim.traffic_light_violation_any_type.len();
    }
    n
}

#[test]
fn red_light_cases_match_the_official_scores_and_flags() {
    let scene = golden_scene_raw();
    for which in ["noise_large", "sdc_go"] {
        let g = golden(which);
        let ours = ScenarioFeatures::compute(&scene, &golden_rollouts(which, &scene)).unwrap();
        let flags = check_per_object(which, &g, &ours);
        let scores = check_all_configs(which, &g, &ours);
        assert!(scores >= 2 * 24, "{which}: only {scores} scores compared");
        eprintln!("{which}: {flags} per-object values and {scores} scores compared");
    }
}

#[test]
fn sdc_go_violations_match_the_official_ones_at_every_step() {
    let scene = golden_scene_raw();
    let g = golden("sdc_go");
    let po = &g["per_object"];
    let ours = ScenarioFeatures::compute(&scene, &golden_rollouts("sdc_go", &scene)).unwrap();
    let mut bad = Vec::new();
    for (side, ours_side, key) in [
        ("sim", &ours.sim, "sim_traffic_light_violation_per_step"),
        ("log", &ours.log, "log_traffic_light_violation_per_step"),
    ] {
        let want = bools3(&po[key]);
        let got = &ours_side.traffic_light_violation_per_step;
        assert_eq!(
            (got.n_samples, got.n_objects, got.n_steps),
            (want.n_samples, want.n_objects, want.n_steps),
            "{side} shape"
        );
        for s in 0..got.n_samples {
            for o in 0..got.n_objects {
                for t in 0..got.n_steps {
                    if got.get(s, o, t) != want.get(s, o, t) {
                        bad.push(format!(
                            "{side}[{s}][{o}][{t}] (step {}): ours {}",
                            t + 11,
                            got.get(s, o, t)
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(ours.log.valid, bools3(&po["log_valid"]), "log validity");
    assert!(
        bad.is_empty(),
        "{} steps differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // The official finding: the car crosses lane 455's stop line in every rollout but
    // is counted in 14 of them, at the steps listed per rollout.
    for (r, steps) in po["sdc_violation_feature_indices_per_rollout"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let want: Vec<usize> = steps
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let o = ours
            .sim
            .object_id
            .iter()
            .position(|&id| id == 2406)
            .unwrap();
        let got: Vec<usize> = ours
            .sim
            .traffic_light_violation_per_step
            .series(r, o)
            .iter()
            .enumerate()
            .filter_map(|(t, &v)| v.then_some(t))
            .collect();
        assert_eq!(
            got, want,
            "rollout {r}: violation steps of the self-driving car"
        );
    }
}

#[test]
fn sdc_go_nearest_lanes_and_stop_line_crossings_match_the_official_ones() {
    use super::features::traffic_light::TrafficLights;
    let scene = golden_scene_raw();
    let g = golden("sdc_go");
    let po = &g["per_object"];
    let rollouts = golden_rollouts("sdc_go", &scene);
    let lights = TrafficLights::from_scene(&scene, scene.num_steps());
    let sdc = scene.sdc_index.unwrap();
    assert_eq!(scene.tracks[sdc].id, 2406);
    let c = scene.current_step;
    let nearest = po["sdc_nearest_lane_id_per_step"].as_array().unwrap();
    let crossings = po["sdc_stop_line_crossings"].as_array().unwrap();
    let mut compared = 0;
    for (r, js) in rollouts.joint_scenes.iter().enumerate() {
        let t = js
            .trajectories
            .iter()
            .find(|t| t.object_id == 2406)
            .unwrap();
        let hist = &scene.tracks[sdc].states[..=c];
        let x: Vec<f32> = hist
            .iter()
            .map(|s| s.x)
            .chain(t.x.iter().copied())
            .collect();
        let y: Vec<f32> = hist
            .iter()
            .map(|s| s.y)
            .chain(t.y.iter().copied())
            .collect();
        let valid: Vec<bool> = hist
            .iter()
            .map(|s| s.valid)
            .chain(std::iter::repeat_n(true, t.x.len()))
            .collect();
        for (j, want) in nearest[r].as_array().unwrap().iter().enumerate() {
            let got = lights.current_lane([x[c + 1 + j], y[c + 1 + j]]);
            assert_eq!(got, want.as_i64(), "rollout {r}, step {}", c + 1 + j);
            compared += 1;
        }
        let mut got = lights.red_crossings(&x, &y, &valid);
        got.retain(|&(step, _, _)| step > c);
        got.sort();
        let mut want: Vec<(usize, i64, bool)> = crossings
            .iter()
            .filter(|k| k["rollout"].as_u64() == Some(r as u64))
            .map(|k| {
                (
                    k["scenario_step"].as_u64().unwrap() as usize,
                    k["signal_lane_id"].as_i64().unwrap(),
                    k["counted_as_violation"].as_bool().unwrap(),
                )
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "rollout {r}: stop-line crossings");
        compared += want.len();
    }
    assert_eq!(compared, 32 * 80 + 192);
}
