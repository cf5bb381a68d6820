//! The WOMD reader on arbitrary bytes: as a TFRecord stream (framing, checksums,
//! lengths), and as one record's payload (protobuf decoding, conversion), each
//! scene then validated. Nothing may panic or allocate what a length field claims.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spacer_train::scenario::validate::{StepRule, validate_scene};
use spacer_train::scenario::womd;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.tfrecord");
    for scene in womd::WomdReader::from_reader(data, path).flatten() {
        let _ = validate_scene(&scene, StepRule::Any, path, None);
    }
    if let Ok(s) = womd::decode_scenario(data, path, 0)
        && let Ok(scene) = womd::scenario_to_scene(&s, path, 0)
    {
        let _ = validate_scene(&scene, StepRule::Any, path, Some(0));
    }
});
