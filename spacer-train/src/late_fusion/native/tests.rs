use super::*;
use crate::late_fusion::LateFusion;
use crate::late_fusion::tests::{lively_params, real_observations};
use crate::training::{Cpu, CpuTrain, float_tensor, int_tensor, to_vec};
use burn::tensor::activation::log_softmax;
use spacer_core::policy::{ParamLayout, Policy, log_softmax_at};
use spacer_core::tokenizer::Vocabulary;

/// Cross entropy towards `targets` plus half the squared error of the value towards
/// `returns`, averaged.
struct Supervised {
    targets: Vec<usize>,
    returns: Vec<f32>,
}

impl HeadLoss for Supervised {
    type Stats = usize;

    fn loss(
        &self,
        i: usize,
        logits: &[f32],
        value: f32,
        dlogits: &mut [f32],
        stats: &mut usize,
    ) -> SampleLoss {
        let n = self.targets.len() as f32;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let z: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
        for (d, &l) in dlogits.iter_mut().zip(logits) {
            *d = (l - max).exp() / z / n;
        }
        dlogits[self.targets[i]] -= 1.0 / n;
        *stats += 1;
        let lp = logits[self.targets[i]] - max - z.ln();
        let dv = value - self.returns[i];
        SampleLoss {
            loss: (-lp + 0.5 * dv * dv) as f64 / n as f64,
            dvalue: dv / n,
        }
    }
}

fn occupied_slots(obs: &[f32]) -> usize {
    let p_end = EGO_FEATURES + 63 * PARTNER_FEATURES;
    obs[EGO_FEATURES..p_end]
        .chunks(PARTNER_FEATURES)
        .chain(obs[p_end..].chunks(ROAD_FEATURES))
        .filter(|s| s.iter().any(|&v| v != 0.0))
        .count()
}

fn packed(n: usize) -> (PackedBatch, Vec<Vec<f32>>) {
    let vocab = Vocabulary::kinematic_grid(200).unwrap();
    let data = real_observations(&vocab);
    let d = data.row_len;
    let mut batch = PackedBatch::new(PolicyDims::default());
    let mut dense = Vec::new();
    // Every third sample, to mix agents and steps.
    for i in (0..data.len()).step_by(3).take(n) {
        let row = &data.observations[i * d..(i + 1) * d];
        batch.push(row);
        dense.push(row.to_vec());
    }
    (batch, dense)
}

#[test]
fn the_layout_at_width_64_is_the_cores() {
    let core = ParamLayout::new(200);
    let ours = NativeLayout::new(64, 200);
    assert_eq!(ours.total(), core.total());
    let t = core.tensors();
    assert_eq!(ours.ego.l1_w, t[0].offset);
    assert_eq!(ours.partner.gamma, t[8].offset);
    assert_eq!(ours.road.l2_w, t[16].offset);
    assert_eq!(ours.fuse_w, t[18].offset);
    assert_eq!(ours.actor_w, t[20].offset);
    assert_eq!(ours.critic_b, t[23].offset);
    assert_eq!(NativeLayout::new(128, 200).total(), 204_105);
}

#[test]
fn packing_keeps_the_function_and_matches_the_core() {
    let (batch, dense) = packed(64);
    let (p, r) = batch.occupied();
    assert!(p > 0 && r > 0, "real observations have partners and roads");
    let full = dense.len() * dense[0].len() * 4;
    assert!(
        batch.bytes() < full,
        "packing saves memory: {} of {full} bytes",
        batch.bytes()
    );
    assert_eq!(
        p + r,
        dense.iter().map(|o| occupied_slots(o)).sum::<usize>()
    );
    let params = lively_params(3);
    let net = NativeNet::new(64, PolicyDims::default(), params.clone()).unwrap();
    let policy = Policy::new(PolicyDims::default(), &params).unwrap();
    let rows: Vec<usize> = (0..batch.len()).collect();
    let (mut logits, mut values) = (vec![0.0; rows.len() * 200], vec![0.0; rows.len()]);
    net.forward(&batch, &rows, &mut logits, &mut values);
    let mut core = vec![0.0f32; 200];
    let mut worst = 0.0f32;
    for (i, obs) in dense.iter().enumerate() {
        let v = policy.forward(obs, &mut core).unwrap();
        // The packed sample reads back as an equivalent dense observation.
        let v2 = policy
            .forward(&batch.dense(i), &mut vec![0.0; 200])
            .unwrap();
        assert_eq!(v, v2);
        // The same bits as the core.
        assert_eq!(v.to_bits(), values[i].to_bits(), "value of sample {i}");
        let l = &logits[i * 200..(i + 1) * 200];
        assert!(
            l.iter().zip(&core).all(|(a, b)| a.to_bits() == b.to_bits()),
            "sample {i}"
        );
        for t in [0usize, 17, 199] {
            worst = worst.max((log_softmax_at(&core, t) - log_softmax_at(l, t)).abs());
        }
    }
    assert_eq!(worst, 0.0);
}

#[test]
fn gradients_equal_burns_autodiff() {
    let (batch, dense) = packed(24);
    let n = dense.len();
    let dev = Default::default();
    for width in [64usize, 128] {
        let dims = PolicyDims::default();
        let fresh = LateFusion::<Cpu>::new(dims, width, 5, &dev);
        let mut params = fresh.to_flat_any_width();
        // Lively heads, so that every layer gets a real gradient.
        let layout = NativeLayout::new(width, 200);
        for v in &mut params[layout.actor_w..layout.critic_b + 1] {
            *v *= 30.0;
        }
        let targets: Vec<usize> = (0..n).map(|i| (i * 37) % 200).collect();
        let returns: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).sin()).collect();
        let net = NativeNet::new(width, dims, params.clone()).unwrap();
        let rows: Vec<usize> = (0..n).collect();
        let mut grads = vec![0.0f32; layout.total()];
        let loss = Supervised {
            targets: targets.clone(),
            returns: returns.clone(),
        };
        let (ours_loss, count) =
            net.loss_and_grad(&batch, &rows, &loss, &mut grads, &mut Vec::new());
        assert_eq!(count, n);

        // The same loss in burn.
        let b = LateFusion::<CpuTrain>::from_flat_any_width(dims, width, &params, &dev).unwrap();
        let flat: Vec<f32> = dense.concat();
        let obs = float_tensor::<CpuTrain, 2>(flat, [n, dims.observation_len()], &dev);
        let (logits, values) = b.forward(obs);
        let logp = log_softmax(logits, 1);
        let picked = logp
            .gather(
                1,
                int_tensor(targets.iter().map(|&t| t as i64).collect(), &dev).reshape([n, 1]),
            )
            .reshape([n]);
        let dv = values - float_tensor::<CpuTrain, 1>(returns, [n], &dev);
        let total = (picked.neg() + dv.clone() * dv * 0.5).mean();
        let burn_loss = to_vec(total.clone().inner())[0];
        let g = b.flat_grads(&total.backward());
        assert!(
            (burn_loss as f64 - ours_loss).abs() < 1e-4 * (1.0 + ours_loss.abs()),
            "{burn_loss} vs {ours_loss}"
        );
        assert_eq!(g.len(), grads.len());
        let norm = g.iter().map(|x| x * x).sum::<f32>().sqrt();
        let diff = g
            .iter()
            .zip(&grads)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt();
        assert!(norm > 1e-3, "width {width}: a real gradient ({norm})");
        assert!(
            diff < 1e-4 * norm,
            "width {width}: |burn - native| {diff} vs |burn| {norm}"
        );
        // Every tensor gets its gradient (the pooled encoders through their winners).
        for (name, at) in [
            ("ego.l1.w", layout.ego.l1_w),
            ("partner.l1.w", layout.partner.l1_w),
            ("road.l2.w", layout.road.l2_w),
            ("road.gamma", layout.road.gamma),
            ("fuse.w", layout.fuse_w),
        ] {
            let len = 32.min(layout.total() - at);
            assert!(
                grads[at..at + len].iter().any(|&x| x != 0.0),
                "width {width}: {name} has no gradient"
            );
        }
    }
}

#[test]
fn gradients_do_not_depend_on_the_thread_count() {
    let (batch, _) = packed(80);
    let net = NativeNet::new(64, PolicyDims::default(), lively_params(9)).unwrap();
    let rows: Vec<usize> = (0..batch.len()).rev().collect();
    let loss = Supervised {
        targets: (0..batch.len()).map(|i| i % 200).collect(),
        returns: vec![0.5; batch.len()],
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut g = vec![0.0f32; net.layout().total()];
            net.loss_and_grad(&batch, &rows, &loss, &mut g, &mut Vec::new());
            g
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn adam_and_clipping() {
    let mut p = vec![1.0f32, -1.0];
    let mut adam = Adam::new(2);
    adam.step(&mut p, &[0.5, -2.0], 0.1);
    // The first Adam step moves each parameter by about lr against its gradient's sign.
    assert!(
        (p[0] - 0.9).abs() < 1e-3 && (p[1] + 0.9).abs() < 1e-3,
        "{p:?}"
    );
    let mut g = vec![3.0f32, 4.0];
    assert_eq!(clip_global_norm(&mut g, 1.0), 5.0);
    assert!((g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5);
    let mut small = vec![0.1f32];
    clip_global_norm(&mut small, 1.0);
    assert_eq!(small, vec![0.1]);
}
