use super::*;
use crate::scenario::{LaneType, MapFeature, MapFeatureKind, MapPoint, ObjectType};
use crate::tokenized::tests::{scene_of, straight_track};
use crate::training::{Cpu, CpuTrain};
use std::sync::Arc;
use train::{TrainConfig, baselines, evaluate, floor_nll};

/// Three vehicles and a pedestrian near a lane.
pub(crate) fn small_scene(id: &str, speed: f32) -> Scene {
    let mut s = scene_of(
        id,
        vec![
            straight_track(0, ObjectType::Vehicle, (0.0, 0.0, 0.0), speed, |_| true),
            straight_track(1, ObjectType::Vehicle, (-12.0, 0.0, 0.0), speed, |i| i > 4),
            straight_track(
                2,
                ObjectType::Vehicle,
                (20.0, -3.5, 0.0),
                speed * 0.5,
                |_| true,
            ),
            straight_track(3, ObjectType::Pedestrian, (10.0, 6.0, -1.5), 1.2, |i| {
                i < 70
            }),
        ],
    );
    let pts = (0..40)
        .map(|i| MapPoint {
            x: -20.0 + 2.5 * i as f32,
            y: 0.0,
            z: 0.0,
        })
        .collect();
    s.map.push(MapFeature::new(
        5,
        MapFeatureKind::Lane(LaneType::SurfaceStreet),
        pts,
    ));
    s
}

fn vocab() -> Vocabulary {
    Vocabulary::kinematic_grid(200).unwrap()
}

#[test]
fn parameter_counts_match_the_sizes() {
    let dev = Default::default();
    let nano = ReferenceModel::<Cpu>::new(ReferenceConfig::nano(200), vocab(), &dev, 0).unwrap();
    let mini = ReferenceModel::<Cpu>::new(ReferenceConfig::mini(200), vocab(), &dev, 0).unwrap();
    let (n, m) = (nano.num_params(), mini.num_params());
    assert!((250_000..400_000).contains(&n), "nano {n}");
    assert!((2_500_000..3_600_000).contains(&m), "mini {m}");
    assert!(ReferenceModel::<Cpu>::new(ReferenceConfig::nano(100), vocab(), &dev, 0).is_err());
}

#[test]
fn scores_are_distributions_and_causal() {
    let dev = Default::default();
    let v = vocab();
    let cfg = ReferenceConfig::tiny(200);
    let m = ReferenceModel::<Cpu>::new(cfg.clone(), v.clone(), &dev, 1).unwrap();
    let a = PreparedScene::new(small_scene("a", 6.0), &v, &cfg);
    let b = PreparedScene::new(small_scene("b", 3.0), &v, &cfg);
    let s = m.score(&[a.world(), b.world()]);
    assert_eq!((s.worlds, s.agents, s.steps, s.tokens), (2, 4, 45, 200));
    let row = s.get(1, 0, 10).unwrap();
    let total: f32 = row.iter().map(|l| l.exp()).sum();
    assert!((total - 1.0).abs() < 1e-4, "{total}");
    // Agent 1 is not valid at step 0; agent 3 is gone after step 70.
    assert!(s.get(0, 1, 0).is_none() && s.get(0, 3, 40).is_none());
    // A world alone scores as in the batch.
    let alone = m.score(&[b.world()]);
    for (x, y) in alone
        .get(0, 2, 30)
        .unwrap()
        .iter()
        .zip(s.get(1, 2, 30).unwrap())
    {
        assert!((x - y).abs() < 1e-5);
    }
    // Changing what agents do at step 30 and later changes nothing before step 31.
    let mut changed = a.clone();
    for ag in &mut changed.tokens.agents {
        for t in 30..45 {
            ag.tokens[t] = 7;
            ag.poses[t + 1].x += 3.0;
        }
    }
    let s2 = m.score(&[changed.world()]);
    for ai in 0..4 {
        for t in 0..45 {
            let (Some(x), Some(y)) = (s.get(0, ai, t), s2.get(0, ai, t)) else {
                continue;
            };
            let same = x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);
            assert_eq!(same, t <= 30, "agent {ai} step {t}");
        }
    }
}

#[test]
fn sampling_uses_exact_logits_of_the_full_pass() {
    let dev = Default::default();
    let v = vocab();
    let cfg = ReferenceConfig::tiny(200);
    let m = ReferenceModel::<Cpu>::new(cfg.clone(), v.clone(), &dev, 2).unwrap();
    let p = PreparedScene::new(small_scene("c", 5.0), &v, &cfg);
    let full = m.score(&[p.world()]);
    let step = 30;
    let next = m.next_logits(&[p.world()], step);
    assert_eq!(next[0].len(), 4);
    let logits = next[0][0].as_ref().unwrap();
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
    for (l, f) in logits.iter().zip(full.get(0, 0, step).unwrap()) {
        assert!((l - lse - f).abs() < 1e-4, "{} {}", l - lse, f);
    }
    let mut rng = Rng::new(3);
    let greedy = Sampling {
        temperature: 1e-3,
        top_k: 1,
    };
    let toks = m.sample(&[p.world()], step, greedy, &mut rng).unwrap();
    let best = spacer_core::policy::argmax(logits) as u16;
    assert_eq!(toks[0][0], Some(best));
    assert!(toks[0][3].is_some());
    let later = m.sample(&[p.world()], 36, greedy, &mut rng).unwrap();
    assert_eq!(later[0][3], None, "the pedestrian is gone at step 72");
    let bad = Sampling {
        temperature: 0.0,
        top_k: 5,
    };
    assert!(m.sample(&[p.world()], step, bad, &mut rng).is_err());
}

#[test]
fn tiny_training_learns_resumes_and_reloads() {
    let dev = Default::default();
    let v = vocab();
    let cfg = ReferenceConfig::tiny(200);
    let scenes: Vec<PreparedScene> = [4.0f32, 6.0, 8.0]
        .iter()
        .enumerate()
        .map(|(i, &s)| PreparedScene::new(small_scene(&format!("t{i}"), s), &v, &cfg))
        .collect();
    let held = vec![PreparedScene::new(small_scene("h", 5.0), &v, &cfg)];
    let tc = TrainConfig {
        steps: 6,
        batch_scenes: 2,
        max_agents: 3,
        lr: 3e-3,
        warmup: 2,
        eval_every: 3,
        ..TrainConfig::for_model("tiny")
    };
    let dir = tempfile::tempdir().unwrap();
    let before = evaluate(
        &ReferenceModel::<Cpu>::new(cfg.clone(), v.clone(), &dev, tc.seed).unwrap(),
        &held,
    );
    let splits = |train: &[PreparedScene]| train::RefSplits {
        train: train.to_vec(),
        synthetic: Vec::new(),
        validation: held.clone(),
        heldout: held.clone(),
    };
    let data = splits(&scenes);
    let opts = |d: &std::path::Path| crate::training::RunOptions::new(d).quiet();
    let full = train::train::<CpuTrain>(&cfg, &tc, &v, &data, &opts(dir.path()), &dev).unwrap();
    assert_eq!((full.step, full.steps_run), (6, 6));
    assert!(
        full.heldout.nll < before.nll,
        "{:?} vs {:?}",
        full.heldout,
        before
    );
    assert!(dir.path().join("curves.csv").is_file() && dir.path().join("curves.png").is_file());
    let csv = std::fs::read_to_string(dir.path().join("curves.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // Interrupted after 3 steps, then resumed: the same model.
    let dir2 = tempfile::tempdir().unwrap();
    let half = TrainConfig {
        steps: 3,
        ..tc.clone()
    };
    train::train::<CpuTrain>(&cfg, &half, &v, &data, &opts(dir2.path()), &dev).unwrap();
    let resumed =
        train::train::<CpuTrain>(&cfg, &tc, &v, &data, &opts(dir2.path()).resuming(), &dev)
            .unwrap();
    assert_eq!((resumed.step, resumed.steps_run), (6, 3));
    let a = ReferenceModel::<Cpu>::load(&full.checkpoint, &dev).unwrap();
    let b = ReferenceModel::<Cpu>::load(&resumed.checkpoint, &dev).unwrap();
    let (sa, sb) = (a.score(&[held[0].world()]), b.score(&[held[0].world()]));
    let diff = sa
        .log_probs
        .iter()
        .zip(&sb.log_probs)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "resumed run differs by {diff}");
    let (again, want) = (evaluate(&a.clone().with_native(), &held), &full.heldout);
    assert_eq!(
        (again.targets, again.accuracy),
        (want.targets, want.accuracy)
    );
    assert!((again.nll - want.nll).abs() < 1e-6, "{again:?} vs {want:?}");
    // A wrong kind of file is refused with its name.
    let bad = dir.path().join("curves.csv");
    let e = ReferenceModel::<Cpu>::load(&bad, &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("curves.csv"), "{e}");
    // Baselines: straight constant-speed motion is what constant velocity predicts.
    let b = baselines(&held, &v, 0);
    assert!(b.constant_velocity > 0.9 && b.random < 0.1, "{b:?}");
    assert!(b.repeat_last_motion > 0.9, "{b:?}");
    assert_eq!(
        b.repeat_last_motion_nll,
        floor_nll(b.repeat_last_motion, v.len())
    );
    // The anchor prior: before any training the model already predicts the motion
    // it sees continuing (nearly all held-out targets but the first, which has no
    // earlier pose).
    assert!(
        before.accuracy > 0.8 * b.repeat_last_motion,
        "{before:?} vs {b:?}"
    );
}

/// Mean distance (m) between each rolled-out agent's decision-step poses and its
/// log, over the simulated steps.
fn rollout_error(r: &catk::Rollout, scene: &Scene) -> f32 {
    let (mut sum, mut n) = (0.0f32, 0usize);
    for a in &r.agents {
        for t in 6..=r.steps {
            let Some(s) = scene.tracks[a.track].states.get(2 * t).filter(|s| s.valid) else {
                continue;
            };
            if !a.pose_valid[t] {
                continue;
            }
            let p = a.poses[t];
            sum += ((p.x - s.x).powi(2) + (p.y - s.y).powi(2)).sqrt();
            n += 1;
        }
    }
    assert!(n > 50, "{n} poses compared");
    sum / n as f32
}

#[test]
fn closest_among_top_k_follows_the_log_when_k_covers_the_vocabulary() {
    let dev = Default::default();
    let v = vocab();
    let cfg = ReferenceConfig::tiny(200);
    let m = ReferenceModel::<Cpu>::new(cfg.clone(), v.clone(), &dev, 4).unwrap();
    let native = native::NativeReference::new(m.net.plain());
    let scene = small_scene("k", 6.0);
    let sim = crate::sim::SimConfig::default();
    let index = Arc::new(crate::sim::SceneIndex::new(Arc::new(scene.clone()), &sim).unwrap());
    let maps = std::collections::HashMap::new();
    let roll = |k: usize| {
        catk::closed_loop_rollouts(
            &native,
            &cfg,
            &v,
            std::slice::from_ref(&index),
            &maps,
            sim,
            k,
            0,
        )
        .unwrap()
    };
    let all = roll(200);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].steps, 45);
    let one = roll(1);
    let (e_all, e_one) = (
        rollout_error(&all[0], &scene),
        rollout_error(&one[0], &scene),
    );
    // With every token allowed the rule is the logged-token agent: within the
    // tokenizer's error. With one token it is the untrained model's argmax.
    assert!(e_all < 0.5, "top-200 error {e_all} m");
    assert!(e_one > 2.0 * e_all, "top-1 {e_one} m vs top-200 {e_all} m");
}

#[test]
fn closed_loop_fine_tuning_trains_on_rollouts_and_resumes() {
    let dev = Default::default();
    let v = vocab();
    let cfg = ReferenceConfig::tiny(200);
    let scenes: Vec<PreparedScene> = [4.0f32, 7.0]
        .iter()
        .enumerate()
        .map(|(i, &s)| PreparedScene::new(small_scene(&format!("c{i}"), s), &v, &cfg))
        .collect();
    let held = vec![PreparedScene::new(small_scene("h", 5.0), &v, &cfg)];
    let data = train::RefSplits {
        train: scenes,
        synthetic: Vec::new(),
        validation: held.clone(),
        heldout: held,
    };
    let cc = catk::CatkConfig {
        steps: 4,
        rollout_every: 2,
        rollout_worlds: 2,
        eval_every: 2,
        batch_scenes: 2,
        max_agents: 3,
        warmup: 1,
        lr: 3e-3,
        ..catk::CatkConfig::for_model("tiny")
    };
    let start = || ReferenceModel::<CpuTrain>::new(cfg.clone(), v.clone(), &dev, 0).unwrap();
    let opts = |d: &std::path::Path| crate::training::RunOptions::new(d).quiet();
    let dir = tempfile::tempdir().unwrap();
    let before = evaluate(
        &ReferenceModel::<Cpu>::new(cfg.clone(), v.clone(), &dev, 0).unwrap(),
        &data.heldout,
    );
    let r = catk::fine_tune::<CpuTrain>(start(), &cc, &data, &opts(dir.path()), &dev).unwrap();
    assert_eq!((r.step, r.steps_run), (4, 4));
    assert!(r.checkpoint.is_file() && dir.path().join("curves.png").is_file());
    // Trained: the model moved, and stayed finite.
    assert!(r.heldout.nll.is_finite() && (r.heldout.nll - before.nll).abs() > 1e-4);
    let csv = std::fs::read_to_string(dir.path().join("curves.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().next().unwrap().contains("train_loss"), "{csv}");
    // Resuming a finished run does nothing and reports the same model.
    let again =
        catk::fine_tune::<CpuTrain>(start(), &cc, &data, &opts(dir.path()).resuming(), &dev)
            .unwrap();
    assert_eq!((again.step, again.steps_run), (4, 0));
    assert_eq!(again.heldout.accuracy, r.heldout.accuracy);
    assert!((again.heldout.nll - r.heldout.nll).abs() < 1e-6);
    // Nonsense settings are refused by name.
    let bad = catk::CatkConfig {
        eval_every: 3,
        ..cc.clone()
    };
    let e = catk::fine_tune::<CpuTrain>(start(), &bad, &data, &opts(dir.path()), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("eval_every"), "{e}");
}

#[test]
fn the_floor_nll_is_that_of_the_best_fitted_guess_distribution() {
    // Always right: no loss; never right: the rest spread over k - 1 tokens.
    assert_eq!(floor_nll(1.0, 200), 0.0);
    assert!((floor_nll(0.0, 200) - 199f64.ln()).abs() < 1e-12);
    // Right on 0.787 of 200-token targets: 1.645 nats (the README's baseline).
    let f = floor_nll(0.787, 200);
    assert!((f - 1.645).abs() < 5e-4, "{f}");
    // p = accuracy is the best p: any other p costs more.
    let nll = |a: f64, p: f64| -(a * p.ln() + (1.0 - a) * ((1.0 - p) / 199.0).ln());
    for p in [0.5, 0.7, 0.78, 0.8, 0.9] {
        assert!(nll(0.787, p) >= f - 1e-12, "p {p}");
    }
}
