use super::*;
use crate::late_fusion::tests::real_observations;
use crate::training::{Cpu, CpuTrain};

#[test]
fn tiny_bc_learns_exports_a_policy_and_resumes() {
    let vocab = Vocabulary::kinematic_grid(200).unwrap();
    let obs = real_observations(&vocab);
    let data = BcSplits {
        train: obs.clone(),
        validation: obs.clone(),
        heldout: obs.clone(),
    };
    let dev = Default::default();
    let cfg = BcConfig {
        width: 64,
        steps: 8,
        batch: 32,
        lr: 3e-3,
        warmup: 2,
        eval_every: 4,
        ..BcConfig::default()
    };
    let shape = cfg.shape(200);
    let before = evaluate(
        &LateFusion::<Cpu>::new(shape.dims, 64, 1, &dev),
        &obs,
        &dev,
        usize::MAX,
    );
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions::new(dir.path()).quiet();
    let r = train::<CpuTrain>(&cfg, &vocab, &data, &options, &dev).unwrap();
    assert_eq!((r.step, r.params), (8, 65_289));
    assert!(r.heldout.nll < before.nll, "{:?} vs {before:?}", r.heldout);
    assert_eq!(r.validation, r.heldout);
    assert!(dir.path().join("bc_curves.png").is_file());
    let (net, s, v) = load::<Cpu>(&r.checkpoint, &dev).unwrap();
    assert_eq!((s, &v), (shape, &vocab));
    assert_eq!(evaluate(&net, &obs, &dev, usize::MAX), r.heldout);
    let file = policy_file(&net, &vocab, 50.0, 8).unwrap();
    let p = dir.path().join("bc.spw");
    file.write(&p).unwrap();
    let back = PolicyFile::read(&p).unwrap();
    assert_eq!(back.blob().header().trained_steps, 8);
    assert_eq!(back.params(), net.to_flat().unwrap().as_slice());
    // Resuming at the end runs nothing and reports the same.
    let again = train::<CpuTrain>(&cfg, &vocab, &data, &options.clone().resuming(), &dev).unwrap();
    assert_eq!((again.steps_run, again.heldout), (0, r.heldout));
    // Resuming with another learning rate is refused, naming it.
    let other = BcConfig {
        lr: 1e-2,
        ..cfg.clone()
    };
    let e = train::<CpuTrain>(&other, &vocab, &data, &options.clone().resuming(), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("lr: 0.003 -> 0.01"), "{e}");
}

#[test]
fn a_diverging_run_stops_with_an_error_and_saves_nothing_broken() {
    let vocab = Vocabulary::kinematic_grid(200).unwrap();
    let obs = real_observations(&vocab);
    let data = BcSplits {
        train: obs.clone(),
        validation: obs.clone(),
        heldout: obs,
    };
    let cfg = BcConfig {
        width: 64,
        steps: 6,
        batch: 32,
        lr: 1.0,
        warmup: 1,
        eval_every: 1,
        clip_norm: 1e30,
        ..BcConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions::new(dir.path()).quiet();
    // A huge learning rate with no clipping: the loss or the weights blow up; either
    // the run stops with an error, or whatever it saved is finite.
    match train::<CpuTrain>(&cfg, &vocab, &data, &options, &Default::default()) {
        Err(e) => {
            let s = e.to_string();
            assert!(s.contains("diverged") || s.contains("non-finite"), "{s}");
        }
        Ok(r) => {
            let (net, _, _) = load::<Cpu>(&r.checkpoint, &Default::default()).unwrap();
            assert!(module_is_finite(&net));
        }
    }
    let bad = BcConfig {
        lr: f64::NAN,
        ..cfg
    };
    assert!(train::<CpuTrain>(&bad, &vocab, &data, &options, &Default::default()).is_err());
}
