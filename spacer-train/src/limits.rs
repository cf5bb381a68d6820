//! The documented limits on what spacer reads: one rule for sizes, one for numbers.
//!
//! **Sizes.** Every count or size that comes from a file, a config or a flag is checked
//! against one of these limits before anything is allocated for it; files read whole
//! are read through [`read_bounded`], which never reads more than the limit (a file
//! that grows while read, or a device such as `/dev/zero`, is cut off, not swallowed).
//!
//! **Numbers.** Coordinates, sizes, speeds and headings are finite and within the
//! physical ranges below, checked where they enter: scenes by
//! [`crate::scenario::validate`], rollouts by the metrics
//! ([`crate::metrics::ScenarioFeatures::compute`]), metric configs by
//! [`crate::metrics::MetricsConfig::parse`], evaluation settings by
//! [`crate::eval::EvalConfig::validate`]. An input outside a limit is an error that
//! names the file (or flag) and the field, never a panic, a hang or an exhausted
//! memory.
//!
//! | what | limit | where |
//! |---|---|---|
//! | GPUDrive JSON file | [`crate::scenario::gpudrive::MAX_JSON_BYTES`] (256 MiB) | reader |
//! | INTERACTION CSV / OSM file | [`crate::scenario::interaction::MAX_FILE_BYTES`] (512 MiB) | reader |
//! | TFRecord record | [`crate::scenario::womd::MAX_RECORD_BYTES`] (512 MiB) | reader |
//! | scene cache record | [`crate::scenario::cache::MAX_RECORD_BYTES`] (256 MiB) | reader |
//! | submission `.binproto` | [`MAX_SUBMISSION_BYTES`] (2 GiB, protobuf's own limit) | reader |
//! | metric config text | [`MAX_CONFIG_BYTES`] (1 MiB), nesting [`MAX_TEXT_NESTING`] | parser |
//! | histogram bins | [`MAX_HISTOGRAM_BINS`] | config |
//! | rollouts per scene | [`MAX_ROLLOUTS`] | `spacer eval` |
//! | synthetic scenes held in memory | [`MAX_SYNTHETIC_SCENES`] | `spacer eval` |
//! | coordinates (m) | &#124;x&#124;, &#124;y&#124;, &#124;z&#124; <= [`MAX_COORDINATE_M`] | scenes, rollouts |
//! | box length, width, height (m) | <= [`MAX_BOX_SIZE_M`] | scenes |
//! | velocity components (m/s) | &#124;v&#124; <= [`MAX_SPEED_MPS`] | scenes |
//! | headings | &#124;h&#124; <= [`MAX_ABS_HEADING`] | scenes, rollouts |
//! | lane speed limit (mph) | 0 ..= [`MAX_SPEED_LIMIT_MPH`] | scenes |
//! | meta-metric weights | each in \[0, 1\] | config |
//! | sampling temperature | finite, >= 0 | `spacer eval` |
//! | quoted input in an error | [`MAX_QUOTE_CHARS`] characters, a whole message [`MAX_MESSAGE_CHARS`] | every message |

use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Location};

/// Largest coordinate magnitude (m): 1,000 km from the scene's origin. Scenes live in
/// a local frame; `f32` still resolves 6 cm out there, and squared distances cannot
/// overflow.
pub const MAX_COORDINATE_M: f32 = 1.0e6;

/// Largest box length, width or height (m); the longest road trains are about 53 m.
pub const MAX_BOX_SIZE_M: f32 = 100.0;

/// Largest velocity component (m/s), 720 km/h: faster than anything on a road.
pub const MAX_SPEED_MPS: f32 = 200.0;

/// Largest heading magnitude. Headings are radians (degrees in GPUDrive's oldest
/// layout, which reaches 540); anything larger is not an angle.
pub const MAX_ABS_HEADING: f32 = 1.0e4;

/// Largest lane speed limit (mph).
pub const MAX_SPEED_LIMIT_MPH: f32 = 500.0;

/// Largest submission file: protobuf's own 2 GiB limit on a message.
pub const MAX_SUBMISSION_BYTES: u64 = 2 << 30;

/// Largest metric config text file (the official ones are about 2 KB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Deepest nesting of messages in a text-format file (the official configs nest 3).
pub const MAX_TEXT_NESTING: usize = 64;

/// Most bins of one histogram estimate (the official configs use at most 20). Every
/// histogram allocates its bins once per object or step it pools.
pub const MAX_HISTOGRAM_BINS: u32 = 10_000;

/// Most rollouts per scene in closed-loop evaluation (the challenge uses 32). Memory
/// grows with rollouts: eight scenes are simulated together, each world holding its
/// scene's states and observations.
pub const MAX_ROLLOUTS: usize = 256;

/// Most synthetic scenes one evaluation generates (they are held in memory, about
/// 230 KB each); larger sets belong in a scene cache (`spacer data gen`).
pub const MAX_SYNTHETIC_SCENES: usize = 100_000;

/// Longest piece of input quoted in an error message; the rest is elided.
pub const MAX_QUOTE_CHARS: usize = 80;

/// Reads a whole file of at most `max` bytes.
///
/// # Errors
/// [`DataError::Io`] naming the file; [`DataError::Invalid`] naming it when it holds
/// more than `max` bytes (`what` says what kind of file, for the message).
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, DataError> {
    let too_big = |n: u64| {
        DataError::invalid(
            path,
            Location::file(),
            format!("{what} of {n} bytes or more exceeds the {max}-byte limit"),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// `text` for an error message: as is when short, else its first
/// [`MAX_QUOTE_CHARS`] characters and how long it was.
pub fn quote(text: &str) -> String {
    if text.len() <= MAX_QUOTE_CHARS {
        return text.to_string();
    }
    clip(text.to_string(), MAX_QUOTE_CHARS)
}

/// Longest error message or field path kept whole; longer ones (which can only come
/// from echoing input) keep their first [`MAX_MESSAGE_CHARS`] characters.
pub const MAX_MESSAGE_CHARS: usize = 400;

/// `text` cut to `max` characters, with how long it was.
pub fn clip(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text,
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
    }
}

/// Whether `v` is a finite coordinate within [`MAX_COORDINATE_M`].
pub fn coordinate_ok(v: f32) -> bool {
    v.is_finite() && v.abs() <= MAX_COORDINATE_M
}

/// Whether `v` is a finite heading within [`MAX_ABS_HEADING`].
pub fn heading_ok(v: f32) -> bool {
    v.is_finite() && v.abs() <= MAX_ABS_HEADING
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        std::fs::write(&p, [7u8; 100]).unwrap();
        assert_eq!(read_bounded(&p, 100, "test file").unwrap().len(), 100);
        let e = read_bounded(&p, 99, "test file").unwrap_err().to_string();
        assert!(
            e.starts_with(&p.display().to_string()) && e.contains("99-byte limit"),
            "{e}"
        );
        // A device with no length is cut off at the limit, not read forever.
        if Path::new("/dev/zero").exists() {
            let e = read_bounded(Path::new("/dev/zero"), 1 << 20, "config")
                .unwrap_err()
                .to_string();
            assert!(e.contains("limit"), "{e}");
        }
        let missing = read_bounded(&dir.path().join("none"), 10, "x").unwrap_err();
        assert!(matches!(missing, DataError::Io { .. }));
    }

    #[test]
    fn quotes_are_short() {
        assert_eq!(quote("abc"), "abc");
        let long = "é".repeat(10_000);
        let q = quote(&long);
        assert!(q.chars().count() < MAX_QUOTE_CHARS + 30, "{q}");
        assert!(q.ends_with("(20000 bytes)"), "{q}");
    }

    #[test]
    fn number_rules() {
        assert!(coordinate_ok(-7792.2) && coordinate_ok(MAX_COORDINATE_M));
        assert!(!coordinate_ok(3e38) && !coordinate_ok(f32::NAN));
        assert!(heading_ok(540.0) && !heading_ok(f32::INFINITY) && !heading_ok(1e5));
    }
}
