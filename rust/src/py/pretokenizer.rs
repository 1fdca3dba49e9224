//! Pretokenizers from Python: a preset name, a pattern, or a callable `str -> list[str]`.

use std::ops::Range;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::errors::{to_py_err, OrPy};
use crate::error::TokforgeError;
use crate::pretokenize::{Pretokenizer, PretokenizerSpec};

/// A Python callable `str -> list[str]` as a pretokenizer. The pieces must concatenate to the
/// input: anything else would lose text silently, so it is an error.
pub(super) struct CallablePretokenizer {
    pub(super) func: Py<PyAny>,
}

impl std::fmt::Debug for CallablePretokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallablePretokenizer")
    }
}

impl Pretokenizer for CallablePretokenizer {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> crate::Result<()> {
        Python::attach(|py| {
            let fail = |msg: String| TokforgeError::Pretokenizer(msg);
            let result = self
                .func
                .call1(py, (text,))
                .map_err(|e| fail(format!("the pretokenizer callable raised {e}")))?;
            let items = result.bind(py);
            let iter = items
                .try_iter()
                .map_err(|_| fail("the pretokenizer callable must return a list of str".into()))?;
            let mut pos = 0;
            for item in iter {
                let item = item.map_err(|e| fail(e.to_string()))?;
                let piece = item.cast::<PyString>().map_err(|_| {
                    fail("the pretokenizer callable must return a list of str".into())
                })?;
                let piece = piece.to_str().map_err(|e| fail(e.to_string()))?;
                if piece.is_empty() {
                    continue;
                }
                if !text[pos..].starts_with(piece) {
                    return Err(fail(format!(
                        "the pieces returned by the pretokenizer callable must concatenate to its input; \
                         piece {piece:?} does not continue the text at character offset {}",
                        text[..pos].chars().count()
                    )));
                }
                out.push(pos..pos + piece.len());
                pos += piece.len();
            }
            if pos != text.len() {
                return Err(fail(format!(
                    "the pieces returned by the pretokenizer callable cover only {} of {} characters of its input",
                    text[..pos].chars().count(),
                    text.chars().count()
                )));
            }
            Ok(())
        })
    }

    fn spec(&self) -> PretokenizerSpec {
        PretokenizerSpec::Callable
    }
}

pub(super) fn build_pretokenizer(
    spec: Option<&str>,
    pattern: Option<&str>,
    callable: Option<Py<PyAny>>,
) -> PyResult<Box<dyn Pretokenizer>> {
    match (spec, pattern, callable) {
        (None, None, Some(f)) => Ok(Box::new(CallablePretokenizer { func: f })),
        (Some(name), None, None) => PretokenizerSpec::from_name(name)
            .and_then(|s| s.build())
            .or_py(),
        (None, Some(p), None) => PretokenizerSpec::Regex {
            pattern: p.to_string(),
            preset: None,
        }
        .build()
        .or_py(),
        (None, None, None) => Err(PyTypeError::new_err(
            "a pretokenizer is required: a preset name, a pattern or a callable",
        )),
        _ => Err(PyTypeError::new_err(
            "give only one of a preset name, a pattern or a callable",
        )),
    }
}

/// The patterns of the presets, by name.
#[pyfunction]
pub(super) fn preset_pattern(name: &str) -> PyResult<String> {
    crate::pretokenize::preset_pattern(name)
        .map(str::to_string)
        .ok_or_else(|| to_py_err(TokforgeError::UnknownPreset(name.to_string())))
}
