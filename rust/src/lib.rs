//! # tokforge
//!
//! Byte-level BPE tokenization with exact tiktoken parity, Hugging Face `tokenizer.json` files,
//! and training.
//!
//! # The pipeline
//!
//! 1. **Specials**: the special tokens a call allows are cut out of the text first
//!    ([`SpecialPolicy`]); each stretch between them is encoded on its own.
//! 2. **Pretokenize**: a [`pretokenize::Pretokenizer`] cuts a stretch into pieces (tiktoken's
//!    regex presets by exact hand-written scanners, any regex, whitespace, none, or a Python
//!    callable). No token crosses a piece boundary.
//! 3. **Model**: each piece becomes ids by a merge rule ([`model`]) over a [`Vocab`].
//! 4. **Decode**: the ids' bytes, concatenated ([`Encoder::decode_bytes`], or a
//!    [`StreamDecoder`] that hands out whole characters).
//!
//! # The engines
//!
//! An [`Encoder`] holds one [`encoder::Engine`], chosen when it is made:
//! - **rank** ([`Encoder::new`]): tiktoken's rule. Repeatedly merge the adjacent pair whose
//!   merged bytes have the lowest rank, the leftmost on ties. Every `.tiktoken` file, every
//!   tokforge JSON file and every vocabulary tokforge trains encodes this way.
//! - **merge list** ([`Encoder::from_hf_json`]): `tokenizers`' rule for a `tokenizer.json` BPE
//!   model. Its normalizers and pre-tokenizers run per stretch ([`hf`]), and the pair listed
//!   first in the merge list merges first.
//!
//! An encoder is immutable and thread-safe. [`train`] counts pretokens and learns merges;
//! [`io`] detects and reads the file formats and writes them atomically.
//!
//! # Layers
//!
//! Each module uses only the ones above it in this list (`rust/tests/layers.rs` holds it):
//! [`error`]; [`util`]; [`vocab`]; [`pretokenize`]; [`model`]; [`hf`]; [`encoder`]; [`train`];
//! [`io`]; and the Python bindings (`py`, behind the `python` feature).
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
//! // Special tokens are cut out first, where the call allows them.
//! let policy = enc.policy(|s| s == "<|endoftext|>", |_| false);
//! let (ids, _) = enc.encode_with_policy("low<|endoftext|>", &policy).unwrap();
//! assert_eq!(ids, vec![257, 258]);
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

pub use encoder::{Encoder, Engine, SpecialPolicy, StreamDecoder};
pub use error::{Result, TokforgeError};
pub use vocab::{Rank, TokenKind, Vocab};
