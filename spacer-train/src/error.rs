//! Errors of the data layer: every one names the file, and where it can, the record
//! and the field, so that a bad input is found without a debugger.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a file something went wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// Record number (0-based) in a multi-record file, or line number (1-based) in a
    /// text file, as the message says.
    pub record: Option<usize>,
    /// Field path, e.g. `tracks[3].states[12].center_x`.
    pub field: Option<String>,
}

impl Location {
    /// Nowhere in particular.
    pub fn file() -> Self {
        Self::default()
    }

    /// A record.
    pub fn record(record: usize) -> Self {
        Self {
            record: Some(record),
            field: None,
        }
    }

    /// A field of a record.
    pub fn field(record: Option<usize>, field: impl Into<String>) -> Self {
        Self {
            record,
            field: Some(field.into()),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = self.record {
            write!(f, ", record {r}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        Ok(())
    }
}

/// A data file could not be read or cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused (missing file, permissions, ...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The content is malformed, truncated or implausible.
    #[error("{}{location}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Record and field.
        location: Location,
        /// What is wrong, and what to do where that is not obvious.
        message: String,
    },
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Malformed content in `path` at `location`.
    pub fn invalid(path: &Path, location: Location, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            location,
            message: message.into(),
        }
    }

    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            DataError::Io { path, .. } | DataError::Invalid { path, .. } => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_record_and_field() {
        let e = DataError::invalid(
            Path::new("a/b.tfrecord"),
            Location::field(Some(3), "tracks[2].states"),
            "expected 91 states, found 12",
        );
        assert_eq!(
            e.to_string(),
            "a/b.tfrecord, record 3, field tracks[2].states: expected 91 states, found 12"
        );
        let io = DataError::io(Path::new("x.json"), std::io::ErrorKind::NotFound.into());
        assert!(io.to_string().starts_with("x.json: "));
        assert_eq!(io.path(), Path::new("x.json"));
    }
}
