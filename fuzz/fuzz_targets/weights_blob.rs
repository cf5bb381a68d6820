//! The weights-blob parser on arbitrary bytes; a blob that parses must also load and
//! run (its parameters copied into aligned storage).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacer_core::weights::Blob;

fuzz_target!(|data: &[u8]| {
    let Ok(blob) = Blob::parse(data) else { return };
    let k = blob.header().dims.actions();
    let mut params = vec![0.0f32; spacer_core::policy::param_count(k)];
    blob.copy_params(&mut params).expect("parsed blobs have the right parameter count");
    let model = blob.model_with(&params).expect("parsed blobs load");
    let obs = vec![0.0f32; model.policy.observation_len()];
    let mut logits = vec![0.0f32; k];
    model.policy.forward(&obs, &mut logits).expect("forward on a valid blob");
    assert!(logits.iter().all(|v| v.is_finite()));
});
