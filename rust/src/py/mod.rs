//! Every PyO3 item, and nothing else: a thin adapter over the core, one file per Python class
//! (`core_bpe.rs`: `CoreBPE`, `stream.rs`: `StreamDecoder`, `train.rs`: `PretokenCounter`), the
//! error conversion (`errors.rs`), the module's functions, and the one unsafe FFI helper
//! (`ffi.rs`). Hot calls release the GIL (`py.detach`); errors become the Python exceptions of
//! `tokforge.errors`, here and only here.

mod core_bpe;
mod errors;
mod ffi;
mod ids;
mod pretokenizer;
mod stream;
mod train;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::io;

/// The format of a tokenizer file's content, from its first 64 KiB: `"tokforge"` (tokforge
/// JSON), `"hf"` (a Hugging Face `tokenizer.json`), `"gpt2"` (GPT-2's `vocab.json`, which
/// needs `merges.txt` beside it), `"sentencepiece"` (a SentencePiece `.model`),
/// `"unknown_json"` (a JSON object that is none of these) or `"tiktoken"` (anything else, read
/// as a `.tiktoken` rank file).
#[pyfunction]
fn detect_format(data: &Bound<'_, PyBytes>) -> &'static str {
    io::detect_format(data.as_bytes()).name()
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<core_bpe::PyCore>()?;
    m.add_class::<stream::PyStreamDecoder>()?;
    m.add_function(wrap_pyfunction!(pretokenizer::preset_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(detect_format, m)?)?;
    m.add("FORMAT_VERSION", io::FORMAT_VERSION)?;
    train::register(m)?;
    Ok(())
}
