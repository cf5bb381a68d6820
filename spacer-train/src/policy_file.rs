//! Policy weights on disk: spacer-core's postcard blob ([`spacer_core::weights`]) in a
//! file, read into 4-aligned memory so the core uses the parameters in place. Either
//! weight format (f32 or int8, [`WeightFormat`]); format version 1 blobs (f32, no
//! checksum) load with a warning on stderr, since corruption of their bytes cannot be
//! detected (`spacer quantize --f32` rewrites them in the current version).

use std::path::{Path, PathBuf};

use spacer_core::policy::{PolicyDims, init_params, param_count};
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::{
    Blob, BlobHeader, LEGACY_FORMAT_VERSION, Model, WeightFormat, blob_len, write_blob,
    write_blob_int8,
};

use crate::error::{DataError, Location};

/// A validated weights blob held in 4-aligned memory.
///
/// Invariant: the bytes are immutable after construction, and every constructor has
/// parsed them and built their model, so [`PolicyFile::blob`] and
/// [`PolicyFile::model`] (which parse again) cannot fail.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    words: Vec<u32>,
    len: usize,
    origin: PathBuf,
}

impl PolicyFile {
    /// Reads and validates `path`; warns on stderr when it is a format version 1 blob
    /// (no checksum).
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read, [`DataError::Invalid`] naming
    /// the file when the blob is malformed, corrupt or out of bounds.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let file = Self::from_bytes(&bytes, path)?;
        if let Some(w) = file.warning() {
            eprintln!("warning: {w}");
        }
        Ok(file)
    }

    /// Validates `bytes` (parse, checksum, and the model built once); `origin` names
    /// them in errors.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the blob is malformed.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self, DataError> {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self::validated(words, bytes.len(), origin)
    }

    fn validated(words: Vec<u32>, len: usize, origin: &Path) -> Result<Self, DataError> {
        let file = Self {
            words,
            len,
            origin: origin.to_path_buf(),
        };
        let invalid = |e: spacer_core::weights::WeightsError| -> DataError {
            DataError::invalid(
                origin,
                Location::file(),
                format!("not a usable policy: {e}"),
            )
        };
        // Parsing checks structure, alignment within the blob, checksum and f32 values;
        // building the model checks the int8 bounds. The storage is 4-aligned, so the
        // in-place model cannot be refused for alignment.
        Blob::parse(file.bytes())
            .map_err(invalid)?
            .model()
            .map_err(invalid)?;
        Ok(file)
    }

    /// An f32 blob from its parts.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the parts do not fit together (wrong vocabulary size
    /// or parameter count, NaN weights).
    pub fn from_parts(
        header: &BlobHeader,
        vocabulary: &Vocabulary,
        params: &[f32],
    ) -> Result<Self, DataError> {
        let header = header.with_format(WeightFormat::F32);
        Self::written(&header, |out| write_blob(&header, vocabulary, params, out))
    }

    /// An int8 blob from its parameter words ([`spacer_core::quant::QuantLayout`]).
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the parts do not fit together or a scale, multiplier
    /// or bias is out of its bounds.
    pub fn from_int8_parts(
        header: &BlobHeader,
        vocabulary: &Vocabulary,
        words: &[u32],
    ) -> Result<Self, DataError> {
        let header = header.with_format(WeightFormat::Int8);
        Self::written(&header, |out| {
            write_blob_int8(&header, vocabulary, words, out)
        })
    }

    fn written(
        header: &BlobHeader,
        write: impl FnOnce(&mut [u8]) -> Result<usize, spacer_core::weights::WeightsError>,
    ) -> Result<Self, DataError> {
        let origin = Path::new("<memory>");
        let len = blob_len(header);
        let mut words = vec![0u32; len.div_ceil(4)];
        let out = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..len];
        write(out).map_err(|e| DataError::invalid(origin, Location::file(), e.to_string()))?;
        Self::validated(words, len, origin)
    }

    /// The deterministic initialisation for `seed` (orthogonal, docs/design.md
    /// section 1.4) with `vocabulary`: what runs until a trained policy exists.
    pub fn initial(vocabulary: &Vocabulary, seed: u64) -> Self {
        let dims = PolicyDims {
            actions: vocabulary.len() as u16,
            ..PolicyDims::default()
        };
        let mut params = vec![0.0f32; param_count(dims.actions())];
        // Dimensions come from a valid vocabulary and the default slots: cannot fail.
        init_params(&dims, seed, &mut params).expect("default dimensions are valid");
        let header = BlobHeader::new(dims, 50.0, 0);
        Self::from_parts(&header, vocabulary, &params).expect("a fresh initialisation is valid")
    }

    /// The blob's bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }

    /// Where the blob came from (a path, or `<memory>`).
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The parsed blob.
    pub fn blob(&self) -> Blob<'_> {
        Blob::parse(self.bytes()).expect("parsed when constructed (see the type's invariant)")
    }

    /// The runnable model, parameters in place.
    pub fn model(&self) -> Model<'_> {
        self.blob()
            .model()
            .expect("built when constructed (see the type's invariant)")
    }

    /// How the weights are stored.
    pub fn format(&self) -> WeightFormat {
        self.blob().format()
    }

    /// The f32 parameters (empty for an int8 blob).
    pub fn params(&self) -> &[f32] {
        self.blob().params().unwrap_or(&[])
    }

    /// A warning to show about this blob: format version 1 has no checksum.
    pub fn warning(&self) -> Option<String> {
        (self.blob().header().version == LEGACY_FORMAT_VERSION).then(|| {
            format!(
                "{}: weights format v1 has no checksum, so corruption cannot be detected; \
                 rewrite it with `spacer quantize --f32 --policy {} --out NEW.spw`",
                self.origin.display(),
                self.origin.display()
            )
        })
    }

    /// Writes the blob to `path` atomically (temporary file, then rename).
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file.
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        crate::fsutil::write_atomic(path, self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spacer_core::weights::{blob_len_v1, write_blob_v1};

    #[test]
    fn write_read_round_trip_and_errors_name_the_file() {
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        let f = PolicyFile::initial(&vocab, 1);
        assert_eq!(f.params().len(), 65_289);
        assert_eq!(f.format(), WeightFormat::F32);
        assert!(f.warning().is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.spw");
        f.write(&path).unwrap();
        let g = PolicyFile::read(&path).unwrap();
        assert_eq!(g.bytes(), f.bytes());
        assert_eq!(g.model().policy.actions(), 200);
        let bad = dir.path().join("bad.spw");
        std::fs::write(&bad, &f.bytes()[..1000]).unwrap();
        let e = PolicyFile::read(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.spw") && e.contains("truncated"), "{e}");
        let e = PolicyFile::read(&dir.path().join("missing.spw"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.spw"), "{e}");
        // One flipped bit: the checksum catches it.
        let mut flipped = f.bytes().to_vec();
        flipped[5000] ^= 4;
        let flip = dir.path().join("flip.spw");
        std::fs::write(&flip, &flipped).unwrap();
        let e = PolicyFile::read(&flip).unwrap_err().to_string();
        assert!(e.contains("flip.spw") && e.contains("checksum"), "{e}");
    }

    /// A padding field one byte too long (parameters at an odd offset) is an error
    /// naming the file, not a panic when the model is used.
    #[test]
    fn misaligned_parameters_are_an_error_not_a_panic() {
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        let f = PolicyFile::initial(&vocab, 2);
        let header = *f.blob().header();
        let mut bytes = vec![0u8; blob_len_v1(&header)];
        write_blob_v1(&header, &vocab, f.params(), &mut bytes).unwrap();
        // After the version-1 header (a few dozen bytes) comes the vocabulary field (a
        // 2-byte length, then its bytes), then the padding field.
        let vlen = Vocabulary::byte_len(200);
        let len_bytes = [0x80 | (vlen & 0x7f) as u8, (vlen >> 7) as u8];
        let at = (8..64).find(|&i| bytes[i..i + 2] == len_bytes).unwrap();
        let pad_at = at + 2 + vlen;
        let pad = bytes[pad_at] as usize;
        assert!(pad < 4, "{pad}");
        bytes[pad_at] += 1;
        bytes.insert(pad_at + 1, 0);
        let e = PolicyFile::from_bytes(&bytes, Path::new("odd.spw"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("odd.spw") && e.contains("multiple of 4"), "{e}");
    }

    #[test]
    fn version_1_blobs_load_with_a_warning() {
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        let f = PolicyFile::initial(&vocab, 3);
        let header = *f.blob().header();
        let mut bytes = vec![0u8; blob_len_v1(&header)];
        write_blob_v1(&header, &vocab, f.params(), &mut bytes).unwrap();
        let old = PolicyFile::from_bytes(&bytes, Path::new("old.spw")).unwrap();
        assert_eq!(old.params(), f.params());
        let w = old.warning().unwrap();
        assert!(w.contains("old.spw") && w.contains("no checksum"), "{w}");
    }
}
