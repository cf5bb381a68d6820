//! The INTERACTION track CSV and Lanelet2 OSM parsers on arbitrary text, then what a
//! recording becomes: the tracks (and the map, when both parse) cut into windows, each
//! scene validated as the loader does.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spacer_train::scenario::interaction::{self, InteractionOptions};
use spacer_train::scenario::validate::{StepRule, validate_scene};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let options = InteractionOptions::default();
    let path = Path::new("fuzz.csv");
    let tracks = interaction::parse_track_csv(&text, path, &options);
    let map = interaction::parse_lanelet_map(&text, Path::new("fuzz.osm"), &options);
    let Ok(tracks) = tracks else {
        return;
    };
    // Frames span up to 10^8 (one window per stride): keep an input's windows few.
    let frames = tracks.agents.iter().flat_map(|a| a.frames());
    let (lo, hi) = frames.fold((i64::MAX, i64::MIN), |(lo, hi), f| (lo.min(f), hi.max(f)));
    if hi.saturating_sub(lo) > 2_000 {
        return;
    }
    let features = map.unwrap_or_default();
    for (i, scene) in interaction::cut_windows(&tracks.agents, &features, "fuzz", &options)
        .iter()
        .enumerate()
    {
        let _ = validate_scene(scene, StepRule::Full, path, Some(i));
    }
});
