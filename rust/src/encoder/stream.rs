//! Decoding as a stream: ids in one at a time, complete UTF-8 text out.

use crate::error::{Result, TokforgeError};
use crate::vocab::{Rank, Vocab};

/// Decodes ids one at a time and hands out only complete UTF-8 text, for serving loops that
/// stream tokens to a user. Invalid sequences become U+FFFD (or an error when strict).
#[derive(Debug, Default, Clone)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    strict: bool,
}

impl StreamDecoder {
    /// A decoder; `strict` makes invalid UTF-8 an error instead of U+FFFD.
    pub fn new(strict: bool) -> Self {
        StreamDecoder {
            pending: Vec::new(),
            strict,
        }
    }

    /// Adds one id and returns the text that is now complete (possibly empty).
    pub fn push(&mut self, vocab: &Vocab, id: Rank) -> Result<String> {
        let b = vocab
            .token_bytes(id)
            .ok_or(TokforgeError::UnknownToken(id as u64))?;
        self.pending.extend_from_slice(b);
        self.drain(false)
    }

    /// Ends the stream: returns what is left (an incomplete tail becomes U+FFFD, or an error
    /// when strict).
    pub fn finish(&mut self) -> Result<String> {
        self.drain(true)
    }

    /// Bytes received but not yet emitted.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    fn drain(&mut self, at_end: bool) -> Result<String> {
        let mut text = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    text.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = start + e.valid_up_to();
                    text.push_str(
                        std::str::from_utf8(&self.pending[start..valid]).expect("valid prefix"),
                    );
                    match e.error_len() {
                        Some(n) => {
                            if self.strict {
                                let offset = valid;
                                self.pending.clear();
                                return Err(TokforgeError::InvalidUtf8 {
                                    offset,
                                    context: " in the token stream".into(),
                                });
                            }
                            text.push('\u{FFFD}');
                            start = valid + n;
                        }
                        None if at_end => {
                            if self.strict {
                                self.pending.clear();
                                return Err(TokforgeError::InvalidUtf8 {
                                    offset: valid,
                                    context: ": the stream ended inside a character".into(),
                                });
                            }
                            text.push('\u{FFFD}');
                            start = self.pending.len();
                            break;
                        }
                        None => {
                            start = valid;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        Ok(text)
    }
}
