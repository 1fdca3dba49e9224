//! PyO3 adapter for training (filled in by the training work).

use pyo3::prelude::*;

/// Adds the training functions to the `_core` module.
pub(super) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
