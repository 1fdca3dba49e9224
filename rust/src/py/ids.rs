//! Token ids across the boundary: checked on the way in, as `bytes` on the way out.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::error_class;
use crate::vocab::Rank;

/// Ids as little-endian u32 bytes in a new `bytes` object (one copy, no per-id work).
pub(super) fn ids_to_bytes<'py>(py: Python<'py>, ids: &[Rank]) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, ids.len() * 4, |buf| {
        for (chunk, id) in buf.chunks_exact_mut(4).zip(ids) {
            chunk.copy_from_slice(&id.to_le_bytes());
        }
        Ok(())
    })
}

/// Ids as ranks, after `check_ids` has ruled out negative and too-large values.
pub(super) fn ids_to_ranks(ids: Vec<i64>) -> PyResult<Vec<Rank>> {
    check_ids(&ids)?;
    Ok(ids.into_iter().map(|i| i as Rank).collect())
}

pub(super) fn check_ids(ids: &[i64]) -> PyResult<()> {
    for &i in ids {
        if i < 0 || i > u32::MAX as i64 {
            return Python::attach(|py| {
                let cls = error_class(py, "UnknownTokenError")?;
                Err(PyErr::from_type(cls, (format!("unknown token id {i}"),)))
            });
        }
    }
    Ok(())
}
