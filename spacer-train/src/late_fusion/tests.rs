use super::*;
use crate::bc::{BcData, collect};
use crate::scenario::Scene;
use crate::sim::SimConfig;
use crate::training::{Cpu, float_tensor, to_vec};
use burn::module::Module;
use spacer_core::policy::{Policy, init_params, param_count};
use spacer_core::tokenizer::Vocabulary;

pub(crate) fn womd_scene() -> Scene {
    crate::scenario::womd::read_scenes(&crate::paths::shared_data("womd/637f20cafde22ff8.tfrecord"))
        .unwrap()
        .remove(0)
}

/// Real observations: the simulator's, while the WOMD scene replays its log.
pub(crate) fn real_observations(vocab: &Vocabulary) -> BcData {
    let cfg = SimConfig {
        sim_steps: 4,
        ..SimConfig::default()
    };
    collect(&[womd_scene()], vocab, &cfg, 0).unwrap()
}

/// Core parameters whose heads matter (the actor's init gain is 0.01): scaled up.
pub(crate) fn lively_params(seed: u64) -> Vec<f32> {
    let mut flat = vec![0.0f32; param_count(200)];
    init_params(&PolicyDims::default(), seed, &mut flat).unwrap();
    for v in &mut flat[param_count(200) - 200 * 128 - 200 - 129..] {
        *v *= 50.0;
    }
    flat
}

#[test]
fn sizes() {
    assert_eq!(late_fusion_params(64, 200), param_count(200));
    assert_eq!(late_fusion_params(64, 200), 65_289);
    assert_eq!(late_fusion_params(128, 200), 204_105);
    let dev = Default::default();
    let net = LateFusion::<Cpu>::new(PolicyDims::default(), 128, 0, &dev);
    assert_eq!(net.num_params(), 204_105);
    // Orthogonal: the fusion weight's columns (256 of length 384) are orthonormal
    // up to the gain sqrt 2.
    let w = to_vec(net.fuse.weight.val());
    let dot = |a: usize, b: usize| {
        (0..384)
            .map(|i| w[i * 256 + a] as f64 * w[i * 256 + b] as f64)
            .sum::<f64>()
    };
    assert!((dot(3, 3) - 2.0).abs() < 1e-4 && dot(3, 4).abs() < 1e-4);
}

#[test]
fn burn_and_core_compute_the_same_function_on_real_observations() {
    let vocab = Vocabulary::kinematic_grid(200).unwrap();
    let data = real_observations(&vocab);
    assert!(data.len() > 50, "{} samples", data.len());
    let dims = PolicyDims::default();
    let dev = Default::default();
    let flat = lively_params(7);
    let net = LateFusion::<Cpu>::from_flat(dims, &flat, &dev).unwrap();
    assert_eq!(
        net.to_flat().unwrap(),
        flat,
        "import then export is the identity"
    );
    let policy = Policy::new(dims, &flat).unwrap();
    let n = data.len().min(256);
    let d = data.row_len;
    let obs = float_tensor::<Cpu, 2>(data.observations[..n * d].to_vec(), [n, d], &dev);
    let (logits, values) = net.forward(obs);
    let (logits, values) = (to_vec(logits), to_vec(values));
    let mut worst = 0.0f32;
    let mut core_logits = vec![0.0f32; 200];
    for i in 0..n {
        let v = policy
            .forward(&data.observations[i * d..(i + 1) * d], &mut core_logits)
            .unwrap();
        worst = worst.max((v - values[i]).abs());
        for (a, b) in core_logits.iter().zip(&logits[i * 200..(i + 1) * 200]) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst < 1e-4, "largest difference {worst}");
    // A burn-initialised network exported to the core computes the same too.
    let fresh = LateFusion::<Cpu>::new(dims, 64, 1, &dev);
    let flat2 = fresh.to_flat().unwrap();
    let policy2 = Policy::new(dims, &flat2).unwrap();
    let one = float_tensor::<Cpu, 2>(data.observations[..d].to_vec(), [1, d], &dev);
    let (l, v) = fresh.forward(one);
    let v2 = policy2
        .forward(&data.observations[..d], &mut core_logits)
        .unwrap();
    assert!((to_vec(v)[0] - v2).abs() < 1e-4);
    for (a, b) in to_vec(l).iter().zip(&core_logits) {
        assert!((a - b).abs() < 1e-4);
    }
    // Width 128 has no core layout.
    let wide = LateFusion::<Cpu>::new(dims, 128, 2, &dev);
    assert!(wide.to_flat().unwrap_err().contains("width"));
    assert!(LateFusion::<Cpu>::from_flat(dims, &flat[1..], &dev).is_err());
}
