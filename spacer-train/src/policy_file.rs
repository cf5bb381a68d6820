//! Policy weights on disk: spacer-core's postcard blob ([`spacer_core::weights`]) in a
//! file, read into 4-aligned memory so the core uses the parameters in place.

use std::path::{Path, PathBuf};

use spacer_core::policy::{PolicyDims, init_params, param_count};
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::{Blob, BlobHeader, Model, blob_len, write_blob};

use crate::error::{DataError, Location};

/// A validated weights blob held in 4-aligned memory.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    words: Vec<u32>,
    len: usize,
    origin: PathBuf,
}

impl PolicyFile {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read, [`DataError::Invalid`] naming
    /// the file when the blob is malformed.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Validates `bytes`; `origin` names them in errors.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the blob is malformed.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self, DataError> {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        let file = Self {
            words,
            len: bytes.len(),
            origin: origin.to_path_buf(),
        };
        Blob::parse(file.bytes()).map_err(|e| {
            DataError::invalid(
                origin,
                Location::file(),
                format!("not a usable policy: {e}"),
            )
        })?;
        Ok(file)
    }

    /// A blob from its parts.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the parts do not fit together (wrong vocabulary size
    /// or parameter count, NaN weights).
    pub fn from_parts(
        header: &BlobHeader,
        vocabulary: &Vocabulary,
        params: &[f32],
    ) -> Result<Self, DataError> {
        let origin = Path::new("<memory>");
        let len = blob_len(header);
        let mut words = vec![0u32; len.div_ceil(4)];
        let out = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..len];
        write_blob(header, vocabulary, params, out)
            .map_err(|e| DataError::invalid(origin, Location::file(), e.to_string()))?;
        let file = Self {
            words,
            len,
            origin: origin.to_path_buf(),
        };
        Blob::parse(file.bytes())
            .map_err(|e| DataError::invalid(origin, Location::file(), e.to_string()))?;
        Ok(file)
    }

    /// The deterministic initialisation for `seed` (orthogonal, DESIGN.md) with
    /// `vocabulary`: what runs until a trained policy exists.
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
        Blob::parse(self.bytes()).expect("validated when constructed")
    }

    /// The runnable model, parameters in place.
    pub fn model(&self) -> Model<'_> {
        self.blob()
            .model()
            .expect("4-aligned and validated when constructed")
    }

    /// The parameters.
    pub fn params(&self) -> &[f32] {
        self.blob()
            .params()
            .expect("4-aligned and validated when constructed")
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

    #[test]
    fn write_read_round_trip_and_errors_name_the_file() {
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        let f = PolicyFile::initial(&vocab, 1);
        assert_eq!(f.params().len(), 65_289);
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
    }
}
