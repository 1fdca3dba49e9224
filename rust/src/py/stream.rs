//! `StreamDecoder`: ids pushed one at a time, complete UTF-8 text out.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::OrPy;
use super::ids::check_ids;
use crate::encoder::{Encoder, StreamDecoder};
use crate::vocab::Rank;

/// Streaming decoder: push ids one at a time, get back only complete UTF-8 text.
#[pyclass(module = "tokforge._core", name = "StreamDecoder")]
pub(crate) struct PyStreamDecoder {
    pub(super) enc: Arc<Encoder>,
    pub(super) inner: StreamDecoder,
}

#[pymethods]
impl PyStreamDecoder {
    fn push(&mut self, id: i64) -> PyResult<String> {
        check_ids(&[id])?;
        self.inner.push(self.enc.vocab(), id as Rank).or_py()
    }

    fn finish(&mut self) -> PyResult<String> {
        self.inner.finish().or_py()
    }

    #[getter]
    fn pending<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.pending())
    }
}
