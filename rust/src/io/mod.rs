//! File formats: one detector ([`detect_format`]) and one module per format.
//!
//! - [`tiktoken`]: tiktoken's `.tiktoken` rank files;
//! - [`tokforge_json`]: tokforge's own single-file JSON;
//! - [`counts`]: pretoken counts files, the part of training that can be done in pieces;
//! - Hugging Face `tokenizer.json` is read by [`crate::hf::parse`], the pipeline it describes;
//!   GPT-2's `vocab.json` + `merges.txt` and SentencePiece `.model` files are converted in
//!   Python (`tokforge.interop`) into that pipeline's form.
//!
//! Every file is written through [`write_atomic`].

mod atomic;
pub mod counts;
mod detect;
pub mod tiktoken;
pub mod tokforge_json;

use crate::vocab::MAX_ID_GAP;

pub use atomic::write_atomic;
pub use detect::{detect_format, Format};
pub use tiktoken::{format_tiktoken, parse_tiktoken};
pub use tokforge_json::{ranks_from_merges, TokenizerFile, FORMAT_VERSION};

/// Fails when `id` is beyond what `n_tokens` tokens plus [`MAX_ID_GAP`] unused ids can justify.
pub(crate) fn check_id(id: u64, n_tokens: usize, what: &str) -> std::result::Result<(), String> {
    if id >= n_tokens as u64 + MAX_ID_GAP || id >= u32::MAX as u64 {
        return Err(format!(
            "{what} {id} is far beyond the {n_tokens} tokens of the file (ids may leave at most \
             {MAX_ID_GAP} unused)"
        ));
    }
    Ok(())
}

pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
