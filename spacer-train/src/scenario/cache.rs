//! The scene cache: many [`Scene`]s in one file, so that training and evaluation
//! never re-parse JSON or protobuf.
//!
//! Layout (version 2): the 8-byte magic `SPACERSC`, a little-endian `u16` format
//! version, then one record per scene: `u32` little-endian payload length, the payload
//! (a postcard-encoded [`Scene`]) and the CRC32C of the payload (`u32` little endian);
//! then a footer: the `u32` marker [`FOOTER_MARKER`] where a length would be, the
//! `u64` record count and the CRC32C of marker and count (`u32`), and nothing after
//! it. The footer makes a cache cut exactly between two records an error (it would
//! otherwise read as a shorter cache). Version 1 (no footer) is refused with a request
//! to convert again. Records are read one at a time ([`CacheReader`] is an iterator),
//! so a cache of thousands of scenes is never held in memory whole. [`CacheWriter`]
//! writes to a temporary file and renames it into place on [`CacheWriter::finish`], so
//! an interrupted conversion leaves no half cache.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::Scene;
use crate::error::{DataError, Location};

/// First bytes of a cache file.
pub const CACHE_MAGIC: [u8; 8] = *b"SPACERSC";
/// Cache format version (2: with the footer).
pub const CACHE_VERSION: u16 = 2;
/// Stands where a record length would, to start the footer (larger than any record).
pub const FOOTER_MARKER: u32 = u32::MAX;
/// Largest record accepted (a WOMD scene is a few MB in this form).
pub const MAX_RECORD_BYTES: usize = 256 << 20;
/// The file extension caches use.
pub const CACHE_EXTENSION: &str = "spc";

/// Writes scenes into a cache file.
pub struct CacheWriter {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    count: usize,
}

impl CacheWriter {
    /// Starts a cache at `path` (written to a temporary file beside it until
    /// [`CacheWriter::finish`]; stale temporary files of `path` left by killed runs
    /// are removed, [`crate::fsutil::remove_stale_temps`]).
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file.
    pub fn create(path: &Path) -> Result<Self, DataError> {
        // Also removes temporary files of earlier runs killed mid-write.
        let tmp = crate::fsutil::prepare_temp(path)?;
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        let mut out = BufWriter::new(file);
        let mut head = CACHE_MAGIC.to_vec();
        head.extend_from_slice(&CACHE_VERSION.to_le_bytes());
        out.write_all(&head).map_err(|e| DataError::io(path, e))?;
        Ok(Self {
            out: Some(out),
            tmp,
            path: path.to_path_buf(),
            count: 0,
        })
    }

    /// Appends one scene.
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file, or [`DataError::Invalid`] when the scene
    /// does not serialise.
    pub fn push(&mut self, scene: &Scene) -> Result<(), DataError> {
        let payload = postcard::to_allocvec(scene).map_err(|e| {
            DataError::invalid(
                &self.path,
                Location::record(self.count),
                format!("cannot encode scene {}: {e}", scene.id),
            )
        })?;
        let Some(out) = self.out.as_mut() else {
            return Err(DataError::invalid(
                &self.path,
                Location::file(),
                "cache already finished",
            ));
        };
        let io = |e| DataError::io(&self.path, e);
        out.write_all(&(payload.len() as u32).to_le_bytes())
            .map_err(io)?;
        out.write_all(&payload).map_err(io)?;
        out.write_all(&crc32c::crc32c(&payload).to_le_bytes())
            .map_err(io)?;
        self.count += 1;
        Ok(())
    }

    /// Scenes written so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True before the first [`CacheWriter::push`].
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Flushes, syncs and renames the cache into place; returns the scene count.
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file.
    pub fn finish(mut self) -> Result<usize, DataError> {
        let out = self.out.take().ok_or_else(|| {
            DataError::invalid(&self.path, Location::file(), "cache already finished")
        })?;
        let mut out = out;
        let mut footer = FOOTER_MARKER.to_le_bytes().to_vec();
        footer.extend_from_slice(&(self.count as u64).to_le_bytes());
        let crc = crc32c::crc32c(&footer);
        footer.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&footer)
            .map_err(|e| DataError::io(&self.path, e))?;
        let file = out
            .into_inner()
            .map_err(|e| DataError::io(&self.path, e.into_error()))?;
        file.sync_all().map_err(|e| DataError::io(&self.path, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| DataError::io(&self.path, e))?;
        Ok(self.count)
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `scenes` to a cache at `path`; returns how many.
///
/// # Errors
/// As [`CacheWriter`].
pub fn write_cache<'a>(
    path: &Path,
    scenes: impl IntoIterator<Item = &'a Scene>,
) -> Result<usize, DataError> {
    let mut w = CacheWriter::create(path)?;
    for s in scenes {
        w.push(s)?;
    }
    w.finish()
}

/// Streams the scenes of a cache file, one record at a time.
pub struct CacheReader<R: Read = BufReader<File>> {
    input: R,
    path: PathBuf,
    record: usize,
    done: bool,
}

impl CacheReader {
    /// Opens `path` and checks its magic and version.
    ///
    /// # Errors
    /// [`DataError::Io`], or [`DataError::Invalid`] for a file that is not a cache or
    /// has another version.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        CacheReader::from_reader(BufReader::new(file), path)
    }
}

/// Decodes one record's payload (a postcard [`Scene`]); `path` and `record` name it in
/// errors.
///
/// # Errors
/// [`DataError::Invalid`] for bytes that are not a scene.
pub fn decode_payload(payload: &[u8], path: &Path, record: usize) -> Result<Scene, DataError> {
    postcard::from_bytes(payload).map_err(|e| {
        DataError::invalid(
            path,
            Location::record(record),
            format!("undecodable scene: {e}"),
        )
    })
}

impl<R: Read> CacheReader<R> {
    /// Reads a cache from `input` (`path` names it in errors) and checks its magic and
    /// version.
    ///
    /// # Errors
    /// As [`CacheReader::open`].
    pub fn from_reader(mut input: R, path: &Path) -> Result<Self, DataError> {
        let mut head = [0u8; 10];
        input.read_exact(&mut head).map_err(|_| {
            DataError::invalid(path, Location::file(), "too short to be a scene cache")
        })?;
        if head[..8] != CACHE_MAGIC {
            return Err(DataError::invalid(
                path,
                Location::file(),
                "not a spacer scene cache (bad magic)",
            ));
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version != CACHE_VERSION {
            return Err(DataError::invalid(
                path,
                Location::file(),
                format!(
                    "scene cache version {version}, this build reads {CACHE_VERSION}: convert the sources again"
                ),
            ));
        }
        Ok(Self {
            input,
            path: path.to_path_buf(),
            record: 0,
            done: false,
        })
    }

    fn next_scene(&mut self) -> Result<Option<Scene>, DataError> {
        let mut len = [0u8; 4];
        // The end of the file must come after the footer; one between two records is
        // a cut file.
        match read_some(&mut self.input, &mut len[..1]) {
            Ok(0) => {
                return Err(DataError::invalid(
                    &self.path,
                    Location::record(self.record),
                    format!(
                        "truncated: the cache ends after {} record(s) without its footer (a cut or unfinished file)",
                        self.record
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(DataError::io(&self.path, e)),
        }
        let at = Location::record(self.record);
        let truncated = |what: &str| {
            DataError::invalid(
                &self.path,
                Location::record(self.record),
                format!("truncated {what}"),
            )
        };
        self.input
            .read_exact(&mut len[1..])
            .map_err(|_| truncated("record length"))?;
        if u32::from_le_bytes(len) == FOOTER_MARKER {
            self.footer(len)?;
            return Ok(None);
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_RECORD_BYTES {
            return Err(DataError::invalid(
                &self.path,
                at,
                format!("record of {len} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"),
            ));
        }
        let mut payload = vec![0u8; len];
        self.input
            .read_exact(&mut payload)
            .map_err(|_| truncated("record"))?;
        let mut crc = [0u8; 4];
        self.input
            .read_exact(&mut crc)
            .map_err(|_| truncated("record checksum"))?;
        if u32::from_le_bytes(crc) != crc32c::crc32c(&payload) {
            return Err(DataError::invalid(
                &self.path,
                at,
                "checksum mismatch (corrupted cache)",
            ));
        }
        let scene = decode_payload(&payload, &self.path, self.record)?;
        self.record += 1;
        Ok(Some(scene))
    }

    /// Checks the footer after its marker: the count, its checksum, nothing after.
    fn footer(&mut self, marker: [u8; 4]) -> Result<(), DataError> {
        let bad = |msg: String| DataError::invalid(&self.path, Location::file(), msg);
        let mut rest = [0u8; 12];
        self.input
            .read_exact(&mut rest)
            .map_err(|_| bad("truncated footer".into()))?;
        let mut covered = marker.to_vec();
        covered.extend_from_slice(&rest[..8]);
        let count = u64::from_le_bytes(rest[..8].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(rest[8..].try_into().unwrap_or_default());
        if crc != crc32c::crc32c(&covered) {
            return Err(bad("footer checksum mismatch (corrupted cache)".into()));
        }
        if count != self.record as u64 {
            return Err(bad(format!(
                "the footer counts {count} record(s) but the cache holds {}",
                self.record
            )));
        }
        let mut after = [0u8; 1];
        match read_some(&mut self.input, &mut after) {
            Ok(0) => Ok(()),
            Ok(_) => Err(bad("bytes after the footer".into())),
            Err(e) => Err(DataError::io(&self.path, e)),
        }
    }
}

/// `read`, retried when interrupted.
fn read_some(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

impl<R: Read> Iterator for CacheReader<R> {
    type Item = Result<Scene, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_scene();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r.transpose()
    }
}

/// Reads every scene of a cache.
///
/// # Errors
/// The first record that fails.
pub fn read_cache(path: &Path) -> Result<Vec<Scene>, DataError> {
    CacheReader::open(path)?.collect()
}

#[cfg(test)]
mod tests {
    use super::super::{NUM_STEPS, ObjectState, ObjectType, SceneSource, Track};
    use super::*;

    fn scene(id: &str, n: usize) -> Scene {
        let tracks = (0..n)
            .map(|i| Track {
                id: i as i64,
                object_type: ObjectType::Vehicle,
                states: vec![
                    ObjectState {
                        x: i as f32,
                        valid: true,
                        length: 4.0,
                        width: 2.0,
                        ..Default::default()
                    };
                    NUM_STEPS
                ],
            })
            .collect();
        Scene {
            id: id.into(),
            source: SceneSource::Synthetic,
            current_step: 10,
            tracks,
            map: vec![],
            signals: vec![vec![]; NUM_STEPS],
            sdc_index: Some(0),
            tracks_to_predict: vec![],
            objects_of_interest: vec![],
        }
    }

    #[test]
    fn round_trip_streams_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.spc");
        let scenes = [scene("a", 3), scene("b", 1)];
        assert_eq!(write_cache(&p, &scenes).unwrap(), 2);
        let back = read_cache(&p).unwrap();
        assert_eq!(back, scenes);
        let mut r = CacheReader::open(&p).unwrap();
        assert_eq!(r.next().unwrap().unwrap().id, "a");
    }

    #[test]
    fn corruption_is_reported_with_file_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.spc");
        write_cache(&p, &[scene("a", 2), scene("b", 2)]).unwrap();
        let good = std::fs::read(&p).unwrap();
        let bad = dir.path().join("bad.spc");
        // Flip a byte in the second record's payload (before its CRC and the footer).
        let mut b = good.clone();
        let n = b.len();
        b[n - 16 - 10] ^= 0xff;
        std::fs::write(&bad, &b).unwrap();
        let e = read_cache(&bad).unwrap_err().to_string();
        assert!(
            e.contains("bad.spc") && e.contains("record 1") && e.contains("checksum"),
            "{e}"
        );
        // Truncation inside a record.
        let footer = 16;
        std::fs::write(&bad, &good[..good.len() - footer - 3]).unwrap();
        let e = read_cache(&bad).unwrap_err().to_string();
        assert!(e.contains("record 1") && e.contains("truncated"), "{e}");
        // Cut exactly between records, or the footer lost: it used to read as a
        // shorter cache.
        let first_record_end =
            10 + 4 + u32::from_le_bytes(good[10..14].try_into().unwrap()) as usize + 4;
        for cut in [first_record_end, good.len() - footer] {
            std::fs::write(&bad, &good[..cut]).unwrap();
            let e = read_cache(&bad).unwrap_err().to_string();
            assert!(
                e.contains("bad.spc") && e.contains("without its footer"),
                "{cut}: {e}"
            );
        }
        // A damaged or lying footer, bytes after it.
        let mut b = good.clone();
        let n = b.len();
        b[n - 8] ^= 1;
        std::fs::write(&bad, &b).unwrap();
        assert!(
            read_cache(&bad)
                .unwrap_err()
                .to_string()
                .contains("footer checksum")
        );
        let mut b = good.clone();
        b.push(0);
        std::fs::write(&bad, &b).unwrap();
        assert!(
            read_cache(&bad)
                .unwrap_err()
                .to_string()
                .contains("after the footer")
        );
        // A version 1 cache asks to be converted again.
        let mut b = good.clone();
        b[8..10].copy_from_slice(&1u16.to_le_bytes());
        std::fs::write(&bad, &b).unwrap();
        let e = read_cache(&bad).unwrap_err().to_string();
        assert!(e.contains("version 1") && e.contains("convert"), "{e}");
        // An empty cache is complete: zero records and a footer.
        let other = tempfile::tempdir().unwrap();
        let empty = other.path().join("empty.spc");
        write_cache(&empty, &[]).unwrap();
        assert!(read_cache(&empty).unwrap().is_empty());
        // Not a cache.
        std::fs::write(&bad, b"{\"name\": 1}").unwrap();
        assert!(
            read_cache(&bad)
                .unwrap_err()
                .to_string()
                .contains("bad magic")
        );
        // A dropped writer leaves nothing behind.
        let w = CacheWriter::create(&dir.path().join("never.spc")).unwrap();
        drop(w);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
