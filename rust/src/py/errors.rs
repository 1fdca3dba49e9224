//! The one place core errors become Python exceptions: each `TokforgeError` variant maps to a
//! class of `tokforge.errors`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::error::TokforgeError;

static ERRORS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

pub(super) fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module = ERRORS.get_or_try_init(py, || {
        py.import("tokforge.errors").map(|m| m.into_any().unbind())
    })?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

/// Converts a core error into the matching `tokforge.errors` exception.
pub(crate) fn to_py_err(e: TokforgeError) -> PyErr {
    Python::attach(|py| {
        let (class, args): (&str, (String,)) = match &e {
            TokforgeError::UnknownToken(_) => ("UnknownTokenError", (e.to_string(),)),
            TokforgeError::NotAToken(_) => ("UnknownTokenError", (e.to_string(),)),
            TokforgeError::InvalidPattern { .. } | TokforgeError::UnknownPreset(_) => {
                ("PatternError", (e.to_string(),))
            }
            TokforgeError::RegexRuntime(_) => ("PatternError", (e.to_string(),)),
            TokforgeError::DisallowedSpecial(tok) => {
                ("DisallowedSpecialTokenError", (tok.clone(),))
            }
            TokforgeError::InvalidVocab(_) => ("VocabError", (e.to_string(),)),
            TokforgeError::BadVocabFile { .. } => ("VocabFileError", (e.to_string(),)),
            TokforgeError::InvalidUtf8 { .. } => ("TokforgeError", (e.to_string(),)),
            TokforgeError::Pretokenizer(_) => ("PretokenizerError", (e.to_string(),)),
            TokforgeError::InvalidArgument(_) => ("TokforgeError", (e.to_string(),)),
            TokforgeError::Io { .. } => ("TokforgeIOError", (e.to_string(),)),
        };
        match error_class(py, class) {
            Ok(cls) => PyErr::from_type(cls, args),
            Err(import_err) => import_err,
        }
    })
}

/// `?` for core results inside PyO3 methods.
pub(super) trait OrPy<T> {
    fn or_py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for crate::Result<T> {
    fn or_py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
