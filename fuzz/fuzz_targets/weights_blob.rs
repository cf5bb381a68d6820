//! The weights blob from bytes to actions: parse, build the model (either format, in
//! place and from copied parameters), run the forward pass and pick tokens. Nothing may
//! panic, and a model that loads must act on any valid observation.
//!
//! The first input byte picks the mode: 0 parses the rest as a blob; 1 and 2 patch the
//! rest into a valid f32 or int8 blob (pairs of offset and value bytes) and reseal its
//! checksum, so that mutations reach the content checks behind the checksum.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use spacer_core::math::Rng;
use spacer_core::policy::{Policy, Selection};
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::{Blob, CHECKSUM_BYTES, WeightFormat, crc32c};
use spacer_train::policy_file::PolicyFile;
use spacer_train::quantize::{calibrate, quantize};

/// A valid f32 blob (the deterministic initialisation) and its int8 quantization.
fn bases() -> &'static (Vec<u8>, Vec<u8>) {
    static BASES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    BASES.get_or_init(|| {
        let f = PolicyFile::initial(&Vocabulary::kinematic_grid(200).unwrap(), 1);
        let d = f.model().policy.observation_len();
        let mut rng = Rng::new(1);
        let obs: Vec<f32> = (0..16 * d).map(|_| rng.normal() * 0.05).collect();
        let q = quantize(&f, &calibrate(&f.model().policy, &obs).unwrap()).unwrap();
        (f.bytes().to_vec(), q.bytes().to_vec())
    })
}

/// Runs a loaded policy on a few observations; everything must succeed.
fn exercise(policy: &Policy<'_>, seed: &[u8]) {
    let d = policy.observation_len();
    let k = policy.actions();
    let mut rng = Rng::new(seed.iter().fold(0u64, |h, &b| h.wrapping_mul(31) ^ b as u64));
    let mut obs = vec![0.0f32; d];
    let mut logits = vec![0.0f32; k];
    for round in 0..3 {
        if round > 0 {
            for v in obs.iter_mut() {
                *v = match rng.below(4) {
                    0 => 0.0,
                    1 => (rng.next_f32() - 0.5) * 2.0e4,
                    _ => rng.normal() * 0.1,
                };
            }
        }
        let v = policy.forward(&obs, &mut logits).expect("forward on a loaded policy");
        assert!(v.is_finite() && logits.iter().all(|l| l.is_finite()));
        let a = policy.act(&obs, Selection::Argmax, &mut rng).expect("argmax");
        assert!((a.token as usize) < k);
        let s = Selection::Sample { temperature: 0.7, top_k: 8 };
        let a = policy.act(&obs, s, &mut rng).expect("sample");
        assert!((a.token as usize) < k && a.log_prob <= 0.0);
    }
    let mut values = vec![0.0f32; 2];
    let mut batch = vec![0.0f32; 2 * k];
    let two: Vec<f32> = obs.iter().chain(obs.iter()).copied().collect();
    policy.forward_batch(&two, &mut batch, &mut values).expect("batch");
    assert_eq!(batch[..k], batch[k..]);
}

fn check(bytes: &[u8]) {
    // 4-aligned storage, so that the parameters can be used in place.
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    for (w, c) in words.iter_mut().zip(bytes.chunks(4)) {
        let mut b = [0u8; 4];
        b[..c.len()].copy_from_slice(c);
        *w = u32::from_le_bytes(b);
    }
    let aligned: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let Ok(blob) = Blob::parse(&aligned[..bytes.len()]) else {
        return;
    };
    let Ok(model) = blob.model() else {
        return;
    };
    exercise(&model.policy, bytes);
    // The copied-parameter path builds the same model.
    match blob.format() {
        WeightFormat::F32 => {
            let mut p = vec![0.0f32; model.policy.params().len()];
            blob.copy_params(&mut p).expect("copy");
            let m = blob.model_with(&p).expect("copied f32 parameters load");
            exercise(&m.policy, bytes);
        }
        WeightFormat::Int8 => {
            let mut w = vec![0u32; model.policy.int8_words().len()];
            blob.copy_int8_words(&mut w).expect("copy");
            let m = blob.model_with_int8(&w).expect("copied int8 words load");
            exercise(&m.policy, bytes);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check(rest),
        m => {
            let (f32_base, int8_base) = bases();
            let mut blob = if m == 1 { f32_base.clone() } else { int8_base.clone() };
            let body = blob.len() - CHECKSUM_BYTES;
            for pair in rest.chunks_exact(3) {
                let at = u16::from_le_bytes([pair[0], pair[1]]) as usize;
                // Spread the offsets over the whole blob.
                let at = at * body / 65_536;
                blob[at] ^= pair[2];
            }
            let crc = crc32c(&blob[..body]);
            blob[body..].copy_from_slice(&crc.to_le_bytes());
            check(&blob);
        }
    }
});
