//! The scene cache reader on arbitrary bytes: as a whole file (magic, version, record
//! lengths and checksums, the footer with the record count), and as one record's
//! payload (the postcard scene), each scene then validated. Nothing may panic or
//! allocate what a length field claims.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spacer_train::scenario::cache::{CacheReader, decode_payload};
use spacer_train::scenario::validate::{StepRule, validate_scene};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.spc");
    if let Ok(reader) = CacheReader::from_reader(data, path) {
        for (i, scene) in reader.enumerate() {
            match scene {
                Ok(scene) => {
                    let _ = validate_scene(&scene, StepRule::Any, path, Some(i));
                }
                Err(_) => break,
            }
        }
    }
    if let Ok(scene) = decode_payload(data, path, 0) {
        let _ = validate_scene(&scene, StepRule::Any, path, Some(0));
    }
});
