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

    /// A field of a record (a path longer than [`crate::limits::MAX_MESSAGE_CHARS`],
    /// which only echoed input makes, is cut).
    pub fn field(record: Option<usize>, field: impl Into<String>) -> Self {
        Self {
            record,
            field: Some(crate::limits::clip(
                field.into(),
                crate::limits::MAX_MESSAGE_CHARS,
            )),
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
    /// The operating system refused (missing file, permissions, ...). The message
    /// carries the OS's words; the error is not also exposed as a `source`, so that a
    /// chain printer (`{:#}`) does not say "(os error N)" twice.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
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
    pub fn io(path: &Path, error: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    /// Malformed content in `path` at `location`. A message longer than
    /// [`crate::limits::MAX_MESSAGE_CHARS`] (only echoed input makes one) is cut, so
    /// that a 10 MB token never comes back in an error.
    pub fn invalid(path: &Path, location: Location, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            location,
            message: crate::limits::clip(message.into(), crate::limits::MAX_MESSAGE_CHARS),
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

    #[test]
    fn the_os_error_is_said_once_in_a_chain() {
        let source = std::fs::File::open("/nonexistent/x.tfrecord").unwrap_err();
        let e = anyhow::Error::from(DataError::io(Path::new("/nonexistent/x.tfrecord"), source));
        let chain = format!("{e:#}");
        assert_eq!(chain.matches("os error").count(), 1, "{chain}");
        assert!(chain.starts_with("/nonexistent/x.tfrecord: "), "{chain}");
    }

    #[test]
    fn echoed_input_is_cut_in_messages_and_fields() {
        let huge = "x".repeat(10_000_000);
        let e = DataError::invalid(
            Path::new("a.json"),
            Location::field(Some(1), format!("tl_states.{huge}")),
            format!("unknown object type {huge:?}"),
        );
        let text = e.to_string();
        assert!(text.len() < 2_000, "{} bytes", text.len());
        assert!(
            text.starts_with("a.json, record 1, field tl_states.xxx"),
            "{}",
            &text[..100]
        );
        assert!(text.contains("bytes)"), "{}", &text[..100]);
    }
}
