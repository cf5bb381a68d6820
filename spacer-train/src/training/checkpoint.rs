//! Resumable training checkpoints: model, optimizer state, step and run metadata in
//! one file, written atomically (temporary file, then rename) so that a crash never
//! leaves a half-written checkpoint.
//!
//! Layout: magic `"SPACERCK"`, format version (u16 LE), a postcard-encoded
//! [`Checkpoint`], then a CRC32C (u32 LE) of everything before it. The model and
//! optimizer records inside are burn records in named MessagePack
//! ([`burn::record::NamedMpkBytesRecorder`], full precision), which report decoding
//! errors instead of panicking.

use std::path::Path;

use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Location};

/// File magic of a checkpoint.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"SPACERCK";
/// Version of the checkpoint format.
pub const CHECKPOINT_VERSION: u16 = 1;

/// Everything needed to resume a run or to use its model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// What was trained (`"reference"`, `"bc"`, ...): a reader refuses other kinds.
    pub kind: String,
    /// The model's configuration (JSON).
    pub config: String,
    /// Optimizer steps taken.
    pub step: u64,
    /// The model record.
    pub model: Vec<u8>,
    /// The optimizer record (empty for an exported, inference-only checkpoint).
    pub optimizer: Vec<u8>,
    /// The run's curves so far, and anything else the trainer keeps (JSON).
    pub extra: String,
    /// Named binary attachments (the vocabulary file, for instance).
    pub files: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    /// The attachment called `name`.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }
}

type Rec = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Serializes a burn record.
///
/// # Errors
/// The recorder's message.
pub fn record_to_bytes<B: Backend, R: Record<B>>(record: R) -> Result<Vec<u8>, String> {
    Recorder::<B>::record(&Rec::default(), record, ()).map_err(|e| e.to_string())
}

/// Deserializes a burn record onto `device`.
///
/// # Errors
/// The recorder's message (a record of another model or a corrupt one).
pub fn record_from_bytes<B: Backend, R: Record<B>>(
    bytes: &[u8],
    device: &B::Device,
) -> Result<R, String> {
    Recorder::<B>::load(&Rec::default(), bytes.to_vec(), device).map_err(|e| e.to_string())
}

impl Checkpoint {
    /// The file's bytes.
    ///
    /// # Errors
    /// A postcard error message (never for well-formed values).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = CHECKPOINT_MAGIC.to_vec();
        out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        let body = postcard::to_stdvec(self).map_err(|e| e.to_string())?;
        out.extend_from_slice(&body);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Parses a checkpoint of `kind`; `origin` names the data in errors.
    ///
    /// # Errors
    /// [`DataError::Invalid`] naming `origin` for a bad magic, version, checksum,
    /// encoding or kind.
    pub fn from_bytes(bytes: &[u8], origin: &Path, kind: &str) -> Result<Self, DataError> {
        let bad = |field: &str, msg: String| {
            DataError::invalid(origin, Location::field(None, field), msg)
        };
        if bytes.len() < 14 || bytes[..8] != CHECKPOINT_MAGIC {
            return Err(DataError::invalid(
                origin,
                Location::file(),
                "not a spacer checkpoint (bad magic or truncated)",
            ));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != CHECKPOINT_VERSION {
            return Err(bad(
                "version",
                format!("format version {version}, this build reads {CHECKPOINT_VERSION}"),
            ));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32c::crc32c(body) != stored {
            return Err(bad(
                "crc32c",
                "checksum mismatch: the checkpoint is truncated or corrupt".into(),
            ));
        }
        let ck: Checkpoint =
            postcard::from_bytes(&body[10..]).map_err(|e| bad("body", e.to_string()))?;
        if ck.kind != kind {
            return Err(bad(
                "kind",
                format!("a '{}' checkpoint, expected '{kind}'", ck.kind),
            ));
        }
        Ok(ck)
    }

    /// Writes the checkpoint to `path` atomically.
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file, [`DataError::Invalid`] if it cannot be
    /// encoded.
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        let bytes = self
            .to_bytes()
            .map_err(|e| DataError::invalid(path, Location::file(), e))?;
        crate::fsutil::write_atomic(path, &bytes)
    }

    /// Reads a checkpoint of `kind` from `path`.
    ///
    /// # Errors
    /// [`DataError::Io`] or [`DataError::Invalid`], naming the file.
    pub fn read(path: &Path, kind: &str) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::from_bytes(&bytes, path, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::Cpu;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn round_trip_and_corruption_is_named() {
        let dev = Default::default();
        let lin: Linear<Cpu> = LinearConfig::new(3, 2).init(&dev);
        // Parameters initialise lazily: read once so the clone shares the values.
        let _ = lin.weight.val();
        let model = record_to_bytes::<Cpu, _>(lin.clone().into_record()).unwrap();
        let ck = Checkpoint {
            kind: "test".into(),
            config: "{}".into(),
            step: 7,
            model,
            optimizer: Vec::new(),
            extra: String::new(),
            files: vec![("a".into(), vec![1, 2])],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.ckpt");
        ck.write(&p).unwrap();
        let back = Checkpoint::read(&p, "test").unwrap();
        assert_eq!(back, ck);
        assert_eq!(back.file("a"), Some(&[1u8, 2][..]));
        let rec = record_from_bytes::<Cpu, _>(&back.model, &dev).unwrap();
        let lin2: Linear<Cpu> = LinearConfig::new(3, 2).init(&dev).load_record(rec);
        assert_eq!(lin2.weight.val().into_data(), lin.weight.val().into_data());
        let e = Checkpoint::read(&p, "other").unwrap_err().to_string();
        assert!(
            e.contains("c.ckpt") && e.contains("expected 'other'"),
            "{e}"
        );
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[20] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        let e = Checkpoint::read(&p, "test").unwrap_err().to_string();
        assert!(e.contains("corrupt"), "{e}");
        assert!(
            record_from_bytes::<Cpu, <Linear<Cpu> as Module<Cpu>>::Record>(b"junk", &dev).is_err()
        );
    }
}
