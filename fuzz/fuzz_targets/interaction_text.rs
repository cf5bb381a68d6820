//! The INTERACTION track CSV and Lanelet2 OSM parsers on arbitrary text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spacer_train::scenario::interaction::{self, InteractionOptions};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let options = InteractionOptions::default();
    let _ = interaction::parse_track_csv(&text, Path::new("fuzz.csv"), &options);
    let _ = interaction::parse_lanelet_map(&text, Path::new("fuzz.osm"), &options);
});
