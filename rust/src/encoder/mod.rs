//! The immutable [`Encoder`]: special tokens, then the engine, and the inverse, decode.
//!
//! Text is first cut at the special tokens the caller allows ([`SpecialPolicy`]); each stretch
//! between them goes to the [`Engine`] chosen when the encoder was made: the rank engine splits
//! it with a pretokenizer and looks each piece up whole (most pieces are one token), then in a
//! per-encoder cache of pieces that took several tokens, then merges it by the rank rule
//! ([`crate::model::rank`]); the merge-list engine runs a tokenizer.json pipeline
//! ([`crate::hf`]) with every word behind the same cache. An `Encoder` is `Send + Sync` and never
//! mutated after construction, so one instance serves every thread.
//!
//! Why it looks like this: the engine is matched once per stretch of text, never per piece,
//! so the rank engine's loop is the loop it would be alone; the token map lookup is prefetched
//! a dozen pieces ahead with each piece hashed once for the map and the cache; caches are pooled
//! per encoder, so batch threads, which live for one call, start warm. What was tried, measured,
//! kept and dropped is in `docs/performance.md`.

mod cache;
mod engine;
mod specials;
mod stream;
#[cfg(test)]
mod tests;
mod unstable;

use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

use crate::error::{Result, TokforgeError};
use crate::model;
use crate::pretokenize::{Pretokenizer, PretokenizerSpec};
use crate::util::parallel_map;
use crate::vocab::{Rank, TokenKind, Vocab};

use cache::CachePool;
use specials::Specials;

pub use engine::Engine;
pub use specials::{special_matcher, SpecialPolicy};
pub use stream::StreamDecoder;

/// Encoder and decoder over one vocabulary and one pretokenizer.
#[derive(Debug)]
pub struct Encoder {
    vocab: Vocab,
    /// How a stretch between special tokens becomes ids.
    engine: Engine,
    /// Special tokens in id order, and a matcher over them (leftmost, then longest).
    specials: Specials,
    /// Ordinary token bytes, sorted; built on first use by `encode_with_unstable`.
    sorted_tokens: OnceLock<Vec<Vec<u8>>>,
    /// Piece caches not in use right now (see [`PieceCache`]).
    caches: CachePool,
}

impl Encoder {
    /// An encoder over `vocab` that splits text with `pretok` and merges by the rank rule.
    pub fn new(vocab: Vocab, pretok: Box<dyn Pretokenizer>) -> Result<Self> {
        Encoder::with_engine(vocab, Engine::Rank(pretok))
    }

    /// An encoder for a Hugging Face `tokenizer.json` document (BPE models; see [`crate::hf`]).
    /// Added tokens become special tokens; `path` names the file in errors; `sentencepiece`
    /// makes a `Precompiled` normalizer follow `sentencepiece` rather than `tokenizers`.
    pub fn from_hf_json(data: &[u8], path: &str, sentencepiece: bool) -> Result<Self> {
        let parsed = crate::hf::parse(data, path, sentencepiece)?;
        let vocab = Vocab::new(parsed.ordinary, parsed.specials, parsed.fallback).map_err(|e| {
            TokforgeError::BadVocabFile {
                path: path.to_string(),
                line: 0,
                reason: e.to_string(),
            }
        })?;
        Encoder::with_engine(vocab, Engine::MergeList(Box::new(parsed.pipeline)))
    }

    /// An encoder over `vocab` with the given engine.
    pub fn with_engine(vocab: Vocab, engine: Engine) -> Result<Self> {
        Ok(Encoder {
            specials: Specials::new(&vocab)?,
            vocab,
            engine,
            sorted_tokens: OnceLock::new(),
            caches: CachePool::default(),
        })
    }

    /// How this encoder encodes a stretch of text.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The pretokenizer of the rank engine; for the merge-list engine, an error saying that
    /// `what` needs token ranks.
    fn rank_pretokenizer(&self, what: &str) -> Result<&dyn Pretokenizer> {
        match &self.engine {
            Engine::Rank(pretok) => Ok(&**pretok),
            Engine::MergeList(_) => Err(TokforgeError::InvalidArgument(format!(
                "{what} is not available for a tokenizer read from tokenizer.json (its merges \
                 follow the merge list, not token ranks)"
            ))),
        }
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// How to build the pretokenizer again (`None` for a tokenizer.json pipeline, whose
    /// pre-tokenizers run after its normalizers, inside the engine).
    pub fn pretokenizer_spec(&self) -> PretokenizerSpec {
        match &self.engine {
            Engine::Rank(pretok) => pretok.spec(),
            Engine::MergeList(_) => PretokenizerSpec::None,
        }
    }

    /// Special tokens in id order.
    pub fn special_tokens(&self) -> &[(String, Rank)] {
        &self.specials.list
    }

    /// A policy from two predicates over special-token text.
    pub fn policy(
        &self,
        allowed: impl Fn(&str) -> bool,
        disallowed: impl Fn(&str) -> bool,
    ) -> SpecialPolicy {
        SpecialPolicy {
            allowed: self.specials.list.iter().map(|(s, _)| allowed(s)).collect(),
            disallowed: self
                .specials
                .list
                .iter()
                .map(|(s, _)| disallowed(s))
                .collect(),
        }
    }

    /// tiktoken's default: no special token allowed, all of them disallowed.
    pub fn default_policy(&self) -> SpecialPolicy {
        self.policy(|_| false, |_| true)
    }

    /// Splits `text` into pieces (byte ranges), as the pretokenizer does between specials. A
    /// tokenizer.json pipeline normalizes before it splits, so to it the text is one piece.
    pub fn split(&self, text: &str) -> Result<Vec<Range<usize>>> {
        let mut out = Vec::new();
        match &self.engine {
            Engine::Rank(pretok) => pretok.split(text, &mut out)?,
            Engine::MergeList(_) if text.is_empty() => {}
            Engine::MergeList(_) => out.push(0..text.len()),
        }
        Ok(out)
    }

    /// Encodes `text` with every special token's text treated as ordinary text.
    ///
    /// ```
    /// # use tokforge::{Encoder, Vocab, pretokenize::WhitespacePretokenizer};
    /// let ranks = (0..=255u8).map(|b| (vec![b], b as u32)).chain([(b"ab".to_vec(), 256)]).collect();
    /// let enc = Encoder::new(Vocab::new(ranks, vec![], None).unwrap(), Box::new(WhitespacePretokenizer)).unwrap();
    /// assert_eq!(enc.encode_ordinary("abc ab").unwrap(), vec![256, 99, 32, 256]);
    /// ```
    pub fn encode_ordinary(&self, text: &str) -> Result<Vec<Rank>> {
        let mut out = Vec::with_capacity(initial_capacity(text));
        with_ranges(|ranges| self.encode_stretch(text, true, ranges, &mut out))?;
        Ok(out)
    }

    /// Encodes `text`, cutting at the special tokens `policy` allows; fails when a disallowed
    /// one occurs anywhere, even inside an allowed one (see [`SpecialPolicy`]). Returns the ids and how many of them come from the last piece (0 when the
    /// text ends with a special token), which `encode_with_unstable` needs.
    pub fn encode_with_policy(
        &self,
        text: &str,
        policy: &SpecialPolicy,
    ) -> Result<(Vec<Rank>, usize)> {
        let mut out = Vec::with_capacity(initial_capacity(text));
        if !self.specials.active(policy) {
            // Neither allowed nor disallowed tokens: nothing to look for.
            let last = with_ranges(|ranges| self.encode_stretch(text, true, ranges, &mut out))?;
            return Ok((out, last));
        }
        self.specials.check_disallowed(text, policy)?;
        let mut ranges = Vec::new();
        let mut pos = 0;
        let mut last = 0;
        loop {
            let next = self.specials.next_allowed(text, pos, policy)?;
            let end = next.map_or(text.len(), |(s, _, _)| s);
            let n = self.encode_stretch(&text[pos..end], pos == 0, &mut ranges, &mut out)?;
            if pos < end {
                last = n;
            }
            match next {
                Some((_, e, id)) => {
                    out.push(id);
                    pos = e;
                    last = 0;
                }
                None => break,
            }
        }
        Ok((out, last))
    }

    /// Encodes many texts on up to `num_threads` threads; the result is in input order.
    pub fn encode_batch(
        &self,
        texts: &[&str],
        policy: &SpecialPolicy,
        num_threads: usize,
    ) -> Result<Vec<Vec<Rank>>> {
        parallel_map(texts, num_threads, |t| {
            self.encode_with_policy(t, policy).map(|(v, _)| v)
        })
    }

    /// The id of a single token given by its bytes: an ordinary token, or a special token's text.
    pub fn encode_single_token(&self, bytes: &[u8]) -> Result<Rank> {
        if let Some(r) = self.vocab.rank(bytes) {
            return Ok(r);
        }
        if let Ok(s) = std::str::from_utf8(bytes) {
            if let Some(id) = self.vocab.special_id(s) {
                return Ok(id);
            }
        }
        Err(TokforgeError::not_a_token(bytes))
    }

    /// Concatenated bytes of `ids` (special tokens decode to their text).
    pub fn decode_bytes(&self, ids: &[Rank]) -> Result<Vec<u8>> {
        match &self.engine {
            Engine::Rank(_) => {
                let mut out = Vec::with_capacity(ids.len() * 4);
                self.vocab.decode_into(ids, &mut out)?;
                Ok(out)
            }
            Engine::MergeList(hf) => hf.decode(&self.vocab, ids),
        }
    }

    /// The parts `piece` ends in when only merges of rank below `limit` may apply (see
    /// [`crate::model::rank::merge_parts_below`]).
    pub fn merge_parts_below(&self, piece: &[u8], limit: Rank) -> Result<Vec<Rank>> {
        self.rank_pretokenizer("merge_parts")?;
        model::rank::merge_parts_below(&self.vocab, piece, limit)
    }

    /// Whether `id` is a special token.
    pub fn is_special(&self, id: Rank) -> bool {
        self.vocab.kind(id) == TokenKind::Special
    }
}

thread_local! {
    /// The piece ranges of the last text this thread encoded, kept for the next one: a 4 KB
    /// document has about a thousand pieces, and growing a new vector to hold them was 3% of
    /// encode time (`memmove` under `RawVec::grow` in `perf report`).
    static RANGES: RefCell<Vec<Range<usize>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's range buffer (a fresh one when it is in use further up).
#[inline]
fn with_ranges<R>(f: impl FnOnce(&mut Vec<Range<usize>>) -> R) -> R {
    RANGES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut ranges) => {
            let r = f(&mut ranges);
            if ranges.capacity() > 1 << 16 {
                // Do not keep a huge buffer alive after one huge text.
                *ranges = Vec::new();
            }
            r
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// Room for the ids of `text` up front: a third of its bytes, which German, Russian and Chinese
/// text (0.31-0.36 ids per byte with cl100k, against 0.23 for English) mostly stay within, so
/// their output is not copied on the way.
#[inline]
fn initial_capacity(text: &str) -> usize {
    text.len() / 3 + 8
}
