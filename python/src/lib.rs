//! `spacer._spacer`: the native half of the `spacer` Python package.
//!
//! A thin binding layer over spacer-train: every computation is a library function
//! (scene readers, `metrics`, `env::VecEnv`, spacer-core's policy); this crate only
//! converts arguments (numpy arrays read in place where they are contiguous), releases
//! the GIL around the work and turns errors into Python exceptions. The Python
//! modules in `spacer/` add the argument dispatch and the documentation users see.

use std::borrow::Cow;

use numpy::PyUntypedArrayMethods;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyValueError};
use pyo3::prelude::*;
use spacer_train::DataError;

mod env;
mod policy;
mod scenes;
mod wosac;

/// A Python exception for a data error: `FileNotFoundError` / `OSError` for the
/// operating system's refusals, `ValueError` (naming the file, record and field) for
/// content that cannot be trusted.
pub(crate) fn data_err(e: DataError) -> PyErr {
    match &e {
        DataError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        DataError::Io { .. } => PyOSError::new_err(e.to_string()),
        DataError::Invalid { .. } => PyValueError::new_err(e.to_string()),
    }
}

/// A `ValueError` with `e`'s message.
pub(crate) fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// An array's values in row-major order: its own memory when it is C-contiguous (no
/// copy), a copy otherwise.
pub(crate) fn contiguous<'a, T, D>(a: &'a numpy::PyReadonlyArray<'_, T, D>) -> Cow<'a, [T]>
where
    T: numpy::Element + Copy,
    D: numpy::ndarray::Dimension,
{
    // `as_slice` also accepts Fortran order, whose memory is not row-major.
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// A shape as Python prints it: `(2, 10)`, `(5,)`.
pub(crate) fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs `f` on a rayon pool of `threads` threads (the global pool when `None`).
pub(crate) fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    match threads {
        None => Ok(f()),
        Some(0) => Err(PyValueError::new_err("threads must be at least 1")),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(value_err)?;
            Ok(pool.install(f))
        }
    }
}

#[pymodule]
fn _spacer(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    scenes::register(m)?;
    wosac::register(m)?;
    policy::register(m)?;
    env::register(m)?;
    Ok(())
}
