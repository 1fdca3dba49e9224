//! The one error type of the crate. Every fallible function returns [`Result`]; the Python
//! bindings turn each variant into a `TokforgeError` subclass once, in `py/errors.rs`.

use thiserror::Error;

/// Everything that can go wrong in tokforge, with the data needed to say what and where.
#[derive(Debug, Error)]
pub enum TokforgeError {
    /// A token id that is neither an ordinary nor a special token of the vocabulary.
    #[error("unknown token id {0}")]
    UnknownToken(u64),

    /// Bytes or text that is not a single token of the vocabulary.
    #[error("not a single token of the vocabulary: {0:?}")]
    NotAToken(String),

    /// A pretokenizer regex that does not compile.
    #[error("invalid pretokenizer pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: String },

    /// A regex that failed while running (for instance its backtracking limit was hit).
    #[error("pretokenizer regex failed on the input: {0}")]
    RegexRuntime(String),

    /// A preset name that tokforge does not know.
    #[error("unknown pretokenizer preset {0:?} (known: gpt2, cl100k, o200k, whitespace, none)")]
    UnknownPreset(String),

    /// Text that the encoder was told not to accept as a special token.
    #[error("encountered text corresponding to disallowed special token {0:?}")]
    DisallowedSpecial(String),

    /// A vocabulary that is inconsistent (duplicate ranks, overlapping ids, ...).
    #[error("invalid vocabulary: {0}")]
    InvalidVocab(String),

    /// A vocabulary or tokenizer file that cannot be parsed; `line` is 1-based, 0 when unknown.
    #[error("{path}:{line}: {reason}")]
    BadVocabFile {
        path: String,
        line: usize,
        reason: String,
    },

    /// Bytes that are not valid UTF-8 where text was required.
    #[error("invalid UTF-8 at byte {offset}{context}")]
    InvalidUtf8 { offset: usize, context: String },

    /// A pretokenizer (for instance a Python callable) that returned pieces not covering its input.
    #[error("pretokenizer error: {0}")]
    Pretokenizer(String),

    /// An argument outside its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An I/O failure, with the path involved.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, TokforgeError>;

impl TokforgeError {
    /// Wraps an [`std::io::Error`] with the path it concerns.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        TokforgeError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// [`TokforgeError::NotAToken`] for `bytes`, quoting at most 64 of them: the message of a
    /// 4 GB argument must not be a 16 GB string (found by tests/test_api_fuzz.py).
    pub fn not_a_token(bytes: &[u8]) -> Self {
        const SHOWN: usize = 64;
        if bytes.len() <= SHOWN {
            return TokforgeError::NotAToken(String::from_utf8_lossy(bytes).into_owned());
        }
        TokforgeError::NotAToken(format!(
            "{}... ({} bytes)",
            String::from_utf8_lossy(&bytes[..SHOWN]),
            bytes.len()
        ))
    }
}
