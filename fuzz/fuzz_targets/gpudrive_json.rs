//! The GPUDrive JSON reader on arbitrary bytes, each scene then validated.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spacer_train::scenario::gpudrive;
use spacer_train::scenario::validate::{StepRule, validate_scene};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    if let Ok(scene) = gpudrive::parse_scene(data, path) {
        let _ = validate_scene(&scene, StepRule::Any, path, None);
    }
});
