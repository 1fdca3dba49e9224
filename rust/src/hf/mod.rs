//! Hugging Face `tokenizer.json` files with a BPE model: the byte-level family (GPT-2, RoBERTa,
//! Llama 3, Qwen: a `Split` regex and the `ByteLevel` pre-tokenizer and decoder) and the
//! SentencePiece family (Llama 2, Mistral: `▁` for spaces through `Prepend`/`Replace`
//! normalizers or the `Metaspace` pre-tokenizer, `<0xNN>` byte fallback, `ByteFallback`, `Fuse`
//! and `Strip` decoders). tokforge's SentencePiece `.model` and GPT-2 `vocab.json`/`merges.txt`
//! readers (in Python) produce the same structure, so this module is the one engine for all
//! three.
//!
//! # The pipeline, as `tokenizers` runs it
//!
//! 1. Added tokens are cut out of the raw text first (the [`crate::Encoder`]'s special tokens).
//! 2. Each stretch between them is normalized on its own ([`Normalizer`]): a `Prepend("▁")`
//!    applies to every stretch, not just the start of the text, exactly as in `tokenizers`.
//! 3. Pre-tokenizers ([`PreTokenizerStep`]) cut the normalized stretch into words. `Metaspace`
//!    with `prepend_scheme: "first"` prepends only to the word at offset 0 of the input.
//! 4. The model ([`MergeModel`]) encodes each word: start from characters (or bytes, after
//!    `ByteLevel`), unknown characters become `<0xNN>` tokens or the unknown token, then merge
//!    the adjacent pair that comes first in the merge list, leftmost first, until none applies.
//!    This is not tiktoken's rule (lowest rank of the merged bytes): two pairs can make the same
//!    token, and a merge list need not be sorted like the ids.
//! 5. Decoding concatenates each token's decoded bytes (computed once per id from the decoder
//!    chain) and strips what a `Strip` or `Metaspace` decoder strips at the start.
//!
//! What `tokenizers` does that tokforge refuses with a clear error rather than approximate:
//! BPE dropout, `continuing_subword_prefix`/`end_of_word_suffix`, added tokens with
//! `lstrip`/`rstrip`/`single_word`, WordPiece/Unigram/WordLevel models, and any normalizer,
//! pre-tokenizer or decoder not listed in [`Normalizer`], [`PreTokenizerStep`] and [`parse`].

mod added;
mod byte_level;
mod charsmap;
mod decoder;
mod normalizer;
mod parse;
mod pre_tokenizer;

use rustc_hash::FxHashMap;

use crate::error::Result;
use crate::model::MergeModel;
use crate::vocab::{Rank, Vocab};

pub use added::NormalizedAdded;
pub use byte_level::{byte_to_char, BYTE_LEVEL_PATTERN};
pub use charsmap::Charsmap;
pub use normalizer::{Normalizer, MAX_GROWTH_FACTOR, MAX_GROWTH_SLACK};
pub use parse::{parse, Parsed};
pub use pre_tokenizer::{Behavior, Matcher, PreTokenizerStep, PrependScheme};

use pre_tokenizer::{WordRef, Words};

/// Encodes `word` as the pieces it has when cut before each `c`.
fn cut_and_encode(
    word: &str,
    c: char,
    encode_word: &mut WordEncoder<'_>,
    out: &mut Vec<Rank>,
) -> Result<()> {
    let mut start = 0;
    for (i, _) in word.match_indices(c) {
        if i > start {
            encode_word(&word.as_bytes()[start..i], out)?;
        }
        start = i;
    }
    encode_word(&word.as_bytes()[start..], out)
}

/// Encodes one word into ids (the model, maybe behind a cache).
pub type WordEncoder<'a> = dyn FnMut(&[u8], &mut Vec<Rank>) -> Result<()> + 'a;

/// A whole `tokenizer.json` pipeline minus the added tokens (which the encoder cuts out).
#[derive(Debug)]
pub struct HfPipeline {
    pub(crate) normalizers: Vec<Normalizer>,
    pub(crate) pretokenizers: Vec<PreTokenizerStep>,
    pub(crate) model: MergeModel,
    /// Characters `content` stripped from the start / end of decoded text (at most start/stop).
    pub(crate) strip: Option<(char, usize, usize)>,
    /// Added tokens whose text the decoder changes (`tokenizers` decodes them through the
    /// decoder chain too: SentencePiece's `<unk>` becomes ` ⁇ `, `<s>` nothing).
    pub(crate) special_decoded: FxHashMap<Rank, Vec<u8>>,
    /// The file this was loaded from, kept to save and pickle it unchanged.
    pub(crate) source: Vec<u8>,
    /// `▁` when words may be cut before each `▁` without changing any id (see
    /// [`MergeModel::splits_before`]): SentencePiece-style models encode a whole stretch as one
    /// word, and the cut pieces are short and repeat, so they hit the piece cache.
    pub(crate) cut_before: Option<char>,
    /// Added tokens matched in the normalized text (`normalized: true`), if any.
    pub(crate) normalized_added: Option<NormalizedAdded>,
    /// Added tokens cut out of the raw text here rather than as the encoder's special tokens:
    /// those sharing an id with a byte-fallback token (`<0x00>`.. as `tokenizers`' trainer
    /// adds them), which the vocabulary keeps as fallback bytes.
    pub(crate) raw_added: Option<NormalizedAdded>,
    /// The pre-tokenizers leave words byte-mapped (steps after a ByteLevel one): the words go
    /// back to bytes before the model.
    pub(crate) byte_mapped: Option<FxHashMap<char, u8>>,
}

impl HfPipeline {
    /// Encodes one stretch of text between added tokens; `at_origin` says whether it starts at
    /// offset 0 of the input. Each word goes through `encode_word` (the model, maybe behind a
    /// cache).
    pub fn encode_stretch(
        &self,
        text: &str,
        at_origin: bool,
        encode_word: &mut WordEncoder<'_>,
        out: &mut Vec<Rank>,
    ) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        if let Some(raw) = &self.raw_added {
            for (range, token) in raw.segments(text) {
                match token {
                    Some(id) => out.push(id),
                    None => self.normalize_and_encode(
                        &text[range.clone()],
                        at_origin && range.start == 0,
                        encode_word,
                        out,
                    )?,
                }
            }
            return Ok(());
        }
        self.normalize_and_encode(text, at_origin, encode_word, out)
    }

    /// Normalizes one stretch, then encodes it around the normalized added tokens.
    fn normalize_and_encode(
        &self,
        text: &str,
        at_origin: bool,
        encode_word: &mut WordEncoder<'_>,
        out: &mut Vec<Rank>,
    ) -> Result<()> {
        let mut s = text.to_string();
        let limit = normalizer::growth_limit(text.len());
        for n in &self.normalizers {
            s = n.apply(s, limit)?;
        }
        let Some(added) = &self.normalized_added else {
            return self.encode_normalized(s, at_origin, encode_word, out);
        };
        for (range, token) in added.segments(&s) {
            match token {
                Some(id) => out.push(id),
                None => self.encode_normalized(
                    s[range.clone()].to_string(),
                    at_origin && range.start == 0,
                    encode_word,
                    out,
                )?,
            }
        }
        Ok(())
    }

    /// Pre-tokenizes and encodes one normalized stretch.
    fn encode_normalized(
        &self,
        s: String,
        at_origin: bool,
        encode_word: &mut WordEncoder<'_>,
        out: &mut Vec<Rank>,
    ) -> Result<()> {
        if self.pretokenizers.is_empty() {
            return match self.cut_before {
                Some(c) => cut_and_encode(&s, c, encode_word, out),
                None => self.model.encode_word(s.as_bytes(), out),
            };
        }
        let mut words = Words {
            items: vec![WordRef {
                buf: 0,
                range: 0..s.len(),
                at_origin,
            }],
            bufs: vec![s],
        };
        let mut scratch = Vec::new();
        for p in &self.pretokenizers {
            p.apply(&mut words, &mut scratch)?;
        }
        if let Some(unmap) = &self.byte_mapped {
            for w in &words.items {
                let bytes = byte_level::unmap_bytes(words.text(w), unmap);
                encode_word(&bytes, out)?;
            }
            return Ok(());
        }
        for w in &words.items {
            match self.cut_before {
                Some(c) => cut_and_encode(words.text(w), c, encode_word, out)?,
                None => encode_word(words.text(w).as_bytes(), out)?,
            }
        }
        Ok(())
    }

    /// The model.
    pub fn model(&self) -> &MergeModel {
        &self.model
    }

    /// The `tokenizer.json` content this pipeline was read from.
    pub fn source(&self) -> &[u8] {
        &self.source
    }

    /// The decoded bytes of `ids`, as the decoder chain makes them.
    pub fn decode(&self, vocab: &Vocab, ids: &[Rank]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        if self.special_decoded.is_empty() {
            vocab.decode_into(ids, &mut out)?;
        } else {
            for &id in ids {
                match self.special_decoded.get(&id) {
                    Some(b) => out.extend_from_slice(b),
                    None => vocab.decode_into(&[id], &mut out)?,
                }
            }
        }
        Ok(self.finish_decode(out))
    }

    /// Decoded bytes after the decoder's final strip.
    pub fn finish_decode(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let Some((c, start, stop)) = self.strip else {
            return bytes;
        };
        let mut buf = [0u8; 4];
        let c = c.encode_utf8(&mut buf).as_bytes();
        let mut from = 0;
        for _ in 0..start {
            if bytes[from..].starts_with(c) {
                from += c.len();
            } else {
                break;
            }
        }
        let mut to = bytes.len();
        for _ in 0..stop {
            if to >= from + c.len() && bytes[..to].ends_with(c) {
                to -= c.len();
            } else {
                break;
            }
        }
        bytes.truncate(to);
        bytes.drain(..from);
        bytes
    }
}
