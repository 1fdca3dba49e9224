//! # tokforge
//!
//! Byte-level BPE tokenization with exact tiktoken parity. The pipeline has three stages:
//! a [`pretokenize::Pretokenizer`] cuts text into pieces (tiktoken's regex presets, any regex,
//! whitespace, none, or a Python callable); each piece is encoded by the merge rule over a
//! [`Vocab`] (repeatedly merge the adjacent pair whose merged bytes have the lowest rank; see
//! [`model`]); decoding concatenates the tokens' bytes. Special tokens are cut out before
//! pretokenizing, where the caller allows them. [`Encoder`] ties the stages together and is
//! immutable and thread-safe; [`io`] reads and writes `.tiktoken` and tokforge's JSON files.
//!
//! ```
//! use tokforge::{Encoder, Vocab, pretokenize::PretokenizerSpec};
//! // A byte-level vocabulary: the 256 bytes, then the merges "lo" and "low".
//! let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
//! ranks.push((b"lo".to_vec(), 256));
//! ranks.push((b"low".to_vec(), 257));
//! let vocab = Vocab::new(ranks, vec![("<|endoftext|>".into(), 258)], None).unwrap();
//! let pretok = PretokenizerSpec::from_name("cl100k").unwrap().build().unwrap();
//! let enc = Encoder::new(vocab, pretok).unwrap();
//! let ids = enc.encode_ordinary("low lower").unwrap();
//! assert_eq!(ids, vec![257, 32, 257, 101, 114]);
//! assert_eq!(enc.decode_bytes(&ids).unwrap(), b"low lower");
//! ```

pub mod encoder;
pub mod error;
pub mod hf;
pub mod io;
pub mod model;
pub mod pretokenize;
pub mod train;
pub mod util;
pub mod vocab;

#[cfg(feature = "python")]
mod py;

pub use encoder::{Encoder, SpecialPolicy, StreamDecoder};
pub use error::{Result, TokforgeError};
pub use vocab::{Rank, TokenKind, Vocab};
