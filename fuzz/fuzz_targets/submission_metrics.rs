//! A WOSAC submission from bytes to scores: the `.binproto` reader (a
//! `SimAgentsChallengeSubmission` or a bare `ScenarioRollouts`), then every decoded
//! scene's rollouts scored with the 2025 configuration against one small synthetic
//! scene built in code. Nothing may panic; the scores that come out are in range.
//!
//! The first input byte picks the mode: 0 decodes the rest as it is; 1 patches the rest
//! (triples of a 16-bit offset and a byte to XOR) into a valid two-rollout submission
//! for the scene, so that mutations reach the rollout checks and the features behind
//! the decoder (packed floats take any bit pattern, lengths and ids change).
#![no_main]

#[path = "common/metrics_fixture.rs"]
mod metrics_fixture;

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use metrics_fixture::{check_scores, fixture};
use spacer_train::metrics::rollouts::{decode_submission, encode_submission};
use spacer_train::metrics::{Submission, score_scenario};

fn valid_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let bytes = encode_submission(&Submission {
            scenario_rollouts: vec![fixture().rollouts.clone()],
            ..Submission::default()
        })
        .expect("encode");
        assert_eq!(
            decode_submission(&bytes, Path::new("fixture")).expect("decode").scenario_rollouts,
            [fixture().rollouts.clone()]
        );
        bytes
    })
}

fn score(bytes: &[u8]) {
    let f = fixture();
    let Ok(submission) = decode_submission(bytes, Path::new("fuzz.binproto")) else {
        return;
    };
    for r in &submission.scenario_rollouts {
        if let Ok(m) = score_scenario(&f.config, &f.scene, r) {
            check_scores(&f.config, &m);
        }
    }
    // What decodes encodes again (object ids came from the proto's int32).
    encode_submission(&submission).expect("a decoded submission encodes");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        score(rest);
    } else {
        let mut bytes = valid_bytes().to_vec();
        let n = bytes.len();
        for t in rest.chunks_exact(3) {
            let at = u16::from_le_bytes([t[0], t[1]]) as usize * n / 65_536;
            bytes[at] ^= t[2];
        }
        score(&bytes);
    }
});
