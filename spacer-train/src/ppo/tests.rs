use std::sync::Arc;

use spacer_core::policy::{Policy, PolicyDims, log_softmax_at};
use spacer_core::tokenizer::Vocabulary;

use super::learner::{BurnLearner, Learner, NativeLearner, UpdateInput};
use super::rollout::{collect, gae};
use super::*;
use crate::late_fusion::LateFusion;
use crate::reference::{ReferenceConfig, ReferenceModel};
use crate::scenario::dataset::{Dataset, synthetic};
use crate::sim::{SceneIndex, Simulator};
use crate::training::{Cpu, CpuTrain, RunOptions, float_tensor, to_vec};

/// A configuration small enough for a test: 2 worlds of up to 6 agents, minibatches
/// of 64, one epoch; GPUDrive's episode ends (agents removed at a goal, a collision or
/// an off-road contact), so that episodes end early and their chains can be checked.
pub(crate) fn tiny(method: Method, agent_steps: u64) -> PpoConfig {
    let mut c = PpoConfig::resolve("cpu-demo").unwrap();
    c.method = method;
    c.run.agent_steps = agent_steps;
    c.run.eval_every = 0;
    c.run.eval_rollouts = 1;
    c.run.checkpoint_every = 1;
    c.env.worlds = 2;
    c.env.max_controlled = 6;
    c.env.synthetic = 3;
    c.ppo.minibatch = 64;
    c.ppo.epochs = 1;
    c.env.on_goal = crate::sim::GoalBehaviour::Remove;
    c.env.on_collision = super::config::CollisionBehaviourName::Remove;
    c
}

pub(crate) fn dataset() -> Dataset {
    Dataset {
        synthetic: synthetic(3, 11, false),
        held_out: synthetic(1, 99, false),
        ..Dataset::default()
    }
}

fn vocab() -> Vocabulary {
    Vocabulary::kinematic_grid(200).unwrap()
}

fn tiny_reference() -> ReferenceModel<Cpu> {
    ReferenceModel::<Cpu>::new(ReferenceConfig::tiny(200), vocab(), &Default::default(), 3).unwrap()
}

/// Indexes of the first two synthetic scenes of `d`.
fn first_two_synthetic(d: &Dataset, sim_cfg: &crate::sim::SimConfig) -> Vec<Arc<SceneIndex>> {
    d.synthetic
        .iter()
        .take(2)
        .map(|s| Arc::new(SceneIndex::new(Arc::new(s.clone()), sim_cfg).unwrap()))
        .collect()
}

fn inputs(d: &Dataset, reference: bool) -> TrainInputs<'_> {
    TrainInputs {
        dataset: d,
        vocab: vocab(),
        reference: reference.then(tiny_reference),
        bc: None,
        init: None,
    }
}

#[test]
fn experience_has_rewards_chains_and_anchor_scores() {
    let d = dataset();
    let cfg = tiny(Method::Spacer, 1);
    let sim_cfg = cfg.sim();
    let mut sim = Simulator::from_indexes(&first_two_synthetic(&d, &sim_cfg), sim_cfg).unwrap();
    let dims = PolicyDims::default();
    let params = crate::late_fusion::tests::lively_params(4);
    let policy = Policy::new(dims, &params).unwrap();
    let exp = collect(&mut sim, &policy, &vocab(), &cfg.reward, 5).unwrap();
    assert!(exp.len() > 20, "{} samples", exp.len());
    assert_eq!(exp.obs.len(), exp.len());
    // Every agent's chain ends with a done sample; nothing follows a done sample.
    for i in 0..exp.len() {
        if exp.dones[i] {
            assert_eq!(exp.next[i], super::rollout::NO_NEXT);
        } else {
            let j = exp.next[i] as usize;
            assert!(j > i && exp.world[j] == exp.world[i] && exp.slot[j] == exp.slot[i]);
            assert_eq!(exp.decision[j], exp.decision[i] + 1);
        }
    }
    let ep = exp.episodes;
    assert_eq!(ep.agent_steps, 2 * exp.len() as u64);
    assert!(ep.agents > 0);
    // Random driving: someone collides or leaves the road, and is removed (done)
    // with its penalty.
    let penalised = exp.task_rewards.iter().filter(|&&r| r < 0.0).count();
    assert!(penalised > 0 && penalised <= ep.agents * 2);
    // The acting log-probabilities are the core's.
    for i in (0..exp.len()).step_by(7) {
        let mut l = vec![0.0f32; 200];
        policy.forward(&exp.obs.dense(i), &mut l).unwrap();
        assert_eq!(log_softmax_at(&l, exp.actions[i] as usize), exp.logp[i]);
    }
    // The reference scores (almost) every sample.
    let mut r = super::anchor::Reference::new(tiny_reference());
    let scores = r.score(&sim, &exp);
    let valid = scores.valid.iter().filter(|&&v| v).count();
    assert!(valid * 10 >= exp.len() * 9, "{valid} of {}", exp.len());
    for i in 0..exp.len() {
        if let Some(lp) = scores.get(i) {
            let total: f32 = lp.iter().map(|l| l.exp()).sum();
            assert!((total - 1.0).abs() < 1e-3, "{total}");
        }
    }
    let (adv, ret) = gae(&exp, 0.99, 0.95);
    assert!(adv.iter().chain(&ret).all(|v| v.is_finite()));
}

#[test]
fn learners_keep_the_core_in_step_after_updates() {
    let d = dataset();
    let cfg = tiny(Method::Spacer, 1);
    let sim_cfg = cfg.sim();
    let idx = first_two_synthetic(&d, &sim_cfg);
    let dims = PolicyDims::default();
    let params = crate::late_fusion::tests::lively_params(8);
    let mut native = NativeLearner::new(dims, params.clone()).unwrap();
    let mut burn = BurnLearner::<CpuTrain>::new(dims, params.clone(), Default::default()).unwrap();
    let mut reference = super::anchor::Reference::new(tiny_reference());
    let dev = Default::default();
    for (name, learner) in [
        ("native", &mut native as &mut dyn Learner),
        ("burn", &mut burn as &mut dyn Learner),
    ] {
        for u in 0..3u64 {
            let mut sim = Simulator::from_indexes(&idx, sim_cfg).unwrap();
            let policy = Policy::new(dims, learner.params()).unwrap();
            let exp = collect(&mut sim, &policy, &vocab(), &cfg.reward, u).unwrap();
            let anchor = reference.score(&sim, &exp);
            let (adv, ret) = gae(&exp, 0.99, 0.95);
            let stats = learner
                .update(
                    &UpdateInput {
                        exp: &exp,
                        advantages: &adv,
                        returns: &ret,
                        anchor: Some(&anchor),
                        beta: 0.1,
                        lr: 1e-3,
                        seed: u,
                    },
                    &cfg.ppo,
                )
                .unwrap();
            assert!(
                stats.steps > 0 && stats.loss.kl_samples > 0,
                "{name}: {stats:?}"
            );
            assert!(
                stats.loss.kl.is_finite() && stats.loss.kl >= -1e-3,
                "{name}: {stats:?}"
            );
            // After the update: the core, given the learner's parameters, gives the
            // learner's own log-probabilities on the batch's observations.
            let core = Policy::new(dims, learner.params()).unwrap();
            let net = LateFusion::<Cpu>::from_flat(dims, learner.params(), &dev).unwrap();
            let rows: Vec<usize> = (0..exp.len()).step_by(3).collect();
            let dense: Vec<f32> = rows.iter().flat_map(|&i| exp.obs.dense(i)).collect();
            let (lg, _) = net.forward(float_tensor::<Cpu, 2>(
                dense,
                [rows.len(), dims.observation_len()],
                &dev,
            ));
            let lg = to_vec(lg);
            let mut worst = 0.0f32;
            for (r, &i) in rows.iter().enumerate() {
                let mut l = vec![0.0f32; 200];
                core.forward(&exp.obs.dense(i), &mut l).unwrap();
                let theirs = &lg[r * 200..(r + 1) * 200];
                for t in [exp.actions[i] as usize, 0, 100] {
                    worst = worst.max((log_softmax_at(&l, t) - log_softmax_at(theirs, t)).abs());
                }
            }
            assert!(
                worst < 1e-5,
                "{name}, update {u}: log-probabilities differ by {worst}"
            );
        }
        assert_ne!(
            learner.params(),
            params.as_slice(),
            "{name} learned nothing"
        );
    }
}

#[test]
fn a_run_trains_exports_and_resumes_to_the_same_weights() {
    let d = dataset();
    let cfg = tiny(Method::Spacer, 600);
    let full_dir = tempfile::tempdir().unwrap();
    let full = train(
        &cfg,
        inputs(&d, true),
        &RunOptions::new(full_dir.path()).quiet(),
        crate::training::DeviceKind::Cpu,
        Control::default(),
    )
    .unwrap();
    assert!(full.updates >= 2, "{full:?}");
    assert!(full.held_out.is_some(), "evaluated at the end");
    let blob = crate::policy_file::PolicyFile::read(&full.policy).unwrap();
    assert_eq!(blob.blob().header().trained_steps, full.agent_steps);
    assert!(full_dir.path().join("curves.png").is_file());
    let csv = std::fs::read_to_string(full_dir.path().join("curves.csv")).unwrap();
    assert_eq!(csv.lines().count() as u64, full.updates + 1, "{csv}");

    // Interrupted after one update (its checkpoint written), then the same command
    // with --resume: the same final weights, bit for bit.
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions::new(dir.path()).quiet();
    let first = train(
        &cfg,
        inputs(&d, true),
        &opts,
        crate::training::DeviceKind::Cpu,
        Control {
            max_updates: Some(1),
        },
    )
    .unwrap();
    assert_eq!(first.updates, 1);
    let rest = train(
        &cfg,
        inputs(&d, true),
        &opts.clone().resuming(),
        crate::training::DeviceKind::Cpu,
        Control::default(),
    )
    .unwrap();
    assert_eq!(
        (rest.updates, rest.updates_run),
        (full.updates, full.updates - 1)
    );
    let a = std::fs::read(&full.policy).unwrap();
    let b = std::fs::read(&rest.policy).unwrap();
    assert!(a == b, "a resumed run ends with other weights");

    // Resuming with another learning rate is refused, naming it.
    let mut other = cfg.clone();
    other.ppo.lr = 1e-2;
    let e = train(
        &other,
        inputs(&d, true),
        &opts.clone().resuming(),
        crate::training::DeviceKind::Cpu,
        Control::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ppo.lr"), "{e}");
}

#[test]
fn methods_check_their_anchors_and_cuda_fails_cleanly() {
    let d = dataset();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions::new(dir.path()).quiet();
    let e = train(
        &tiny(Method::Spacer, 100),
        inputs(&d, false),
        &opts,
        crate::training::DeviceKind::Cpu,
        Control::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--reference"), "{e}");
    let e = train(
        &tiny(Method::HrPpo, 100),
        inputs(&d, false),
        &opts,
        crate::training::DeviceKind::Cpu,
        Control::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--bc"), "{e}");
    // Plain PPO needs neither.
    let r = train(
        &tiny(Method::Ppo, 100),
        inputs(&d, false),
        &opts,
        crate::training::DeviceKind::Cpu,
        Control::default(),
    )
    .unwrap();
    assert_eq!(r.updates, 1);
    if crate::training::cuda_probe().is_err() {
        let e = train(
            &tiny(Method::Ppo, 100),
            inputs(&d, false),
            &RunOptions::new(dir.path().join("cuda")).quiet(),
            crate::training::DeviceKind::Cuda,
            Control::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--device cuda"), "{e}");
    }
}

#[test]
fn a_run_starts_from_given_parameters_and_a_resume_with_others_is_refused() {
    let d = dataset();
    let cfg = tiny(Method::Ppo, 300);
    let run = |init: Option<Vec<f32>>, dir: &std::path::Path, resume: bool| {
        let mut opts = RunOptions::new(dir).quiet();
        if resume {
            opts = opts.resuming();
        }
        let inputs = TrainInputs {
            init,
            ..inputs(&d, false)
        };
        train(
            &cfg,
            inputs,
            &opts,
            crate::training::DeviceKind::Cpu,
            Control {
                max_updates: Some(1),
            },
        )
    };
    let params = |seed| {
        crate::policy_file::PolicyFile::initial(&vocab(), seed)
            .params()
            .to_vec()
    };
    // The seed's own initialisation given explicitly: the same weights as none.
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let plain = run(None, a.path(), false).unwrap();
    let same = run(Some(params(cfg.run.seed)), b.path(), false).unwrap();
    let other = run(Some(params(cfg.run.seed + 1)), c.path(), false).unwrap();
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    assert!(read(&plain.policy) == read(&same.policy));
    assert!(read(&plain.policy) != read(&other.policy));
    // Resuming the second run from other starting parameters is refused, naming them.
    let e = run(Some(params(cfg.run.seed + 2)), b.path(), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("init"), "{e}");
    // A starting policy of another size is refused.
    let e = run(
        Some(vec![0.0; 10]),
        tempfile::tempdir().unwrap().path(),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("10 parameters"), "{e}");
}

#[test]
fn under_the_evaluations_conditions_agents_act_to_the_end_and_are_paid_one_goal() {
    let d = dataset();
    let mut cfg = tiny(Method::Ppo, 1);
    cfg.env.on_goal = crate::sim::GoalBehaviour::Continue;
    cfg.env.on_collision = super::config::CollisionBehaviourName::Ignore;
    // Penalties off: every positive reward is a goal payment.
    cfg.reward.collision = 0.0;
    cfg.reward.offroad = 0.0;
    // Goals wide enough that random drivers reach some.
    cfg.env.goal_radius = 25.0;
    let sim_cfg = cfg.sim();
    let mut sim = Simulator::from_indexes(&first_two_synthetic(&d, &sim_cfg), sim_cfg).unwrap();
    let params = crate::late_fusion::tests::lively_params(4);
    let policy = Policy::new(PolicyDims::default(), &params).unwrap();
    let exp = collect(&mut sim, &policy, &vocab(), &cfg.reward, 5).unwrap();
    let decisions = sim_cfg.sim_steps / 2;
    // Every agent decides at every one of the 40 decisions; only the last is done.
    assert_eq!(exp.len(), exp.episodes.agents * decisions);
    for i in 0..exp.len() {
        let last = usize::from(exp.decision[i]) + 1 == decisions;
        assert_eq!(exp.dones[i], last, "sample {i}");
    }
    // The goal reward is paid exactly once per agent that reached its goal during the
    // episode, however long it stays there (not to one that starts at it).
    let paid = exp.task_rewards.iter().filter(|&&r| r > 0.0).count();
    let reached = (0..exp.len())
        .filter(|&i| exp.decision[i] == 0)
        .filter(|&i| {
            let w = &sim.worlds()[exp.world[i] as usize];
            let cur = w.index().current_step();
            w.first_goal(usize::from(exp.slot[i]))
                .is_some_and(|g| g > cur)
        })
        .count();
    assert!(reached > 0, "someone reaches a goal");
    assert_eq!(paid, reached);
}
