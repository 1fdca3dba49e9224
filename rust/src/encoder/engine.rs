//! The engine: how an encoder turns a stretch of text between special tokens into ids. It is
//! chosen once, when the encoder is made, and each call matches on it once per stretch, never
//! per piece.

use std::ops::Range;

use super::cache::{push_ids, CACHE_MAX_ENTRIES, CACHE_MAX_PIECE, HF_CACHE_MAX_ENTRIES};
use super::Encoder;
use crate::error::Result;
use crate::hf::HfPipeline;
use crate::model;
use crate::pretokenize::Pretokenizer;
use crate::vocab::{PieceKey, Rank};

/// The two ways to encode a stretch of text.
#[derive(Debug)]
pub enum Engine {
    /// tiktoken's: a pretokenizer cuts the text into pieces, and each piece is merged by the
    /// rank rule ([`crate::model::rank`]) over the encoder's vocabulary.
    Rank(Box<dyn Pretokenizer>),
    /// A Hugging Face `tokenizer.json` pipeline: normalizers, pre-tokenizers, and the
    /// merge-list rule ([`crate::model::MergeModel`]).
    MergeList(Box<HfPipeline>),
}

impl Encoder {
    /// Encodes a stretch of text with no special tokens in it; returns the number of ids of its
    /// last piece.
    pub(super) fn encode_stretch(
        &self,
        text: &str,
        at_origin: bool,
        ranges: &mut Vec<Range<usize>>,
        out: &mut Vec<Rank>,
    ) -> Result<usize> {
        match &self.engine {
            Engine::Rank(pretok) => self.encode_stretch_by_rank(&**pretok, text, ranges, out),
            Engine::MergeList(hf) => self.encode_stretch_by_merge_list(hf, text, at_origin, out),
        }
    }

    /// [`Encoder::encode_stretch`] for a tokenizer.json pipeline: every word goes through the
    /// piece cache (there is no whole-piece lookup in front).
    #[inline(always)]
    fn encode_stretch_by_merge_list(
        &self,
        hf: &HfPipeline,
        text: &str,
        at_origin: bool,
        out: &mut Vec<Rank>,
    ) -> Result<usize> {
        {
            let before = out.len();
            self.caches.with(|mut cache| {
                let mut encode_word = |word: &[u8], out: &mut Vec<Rank>| -> Result<()> {
                    match cache
                        .as_deref_mut()
                        .filter(|_| word.len() <= CACHE_MAX_PIECE)
                    {
                        Some(cache) => {
                            let key = PieceKey::of(word);
                            if let Some(ids) = cache.get(&key, word) {
                                push_ids(out, ids);
                                return Ok(());
                            }
                            let b = out.len();
                            hf.model().encode_word(word, out)?;
                            cache.insert(&key, word, &out[b..], HF_CACHE_MAX_ENTRIES);
                            Ok(())
                        }
                        None => hf.model().encode_word(word, out),
                    }
                };
                hf.encode_stretch(text, at_origin, &mut encode_word, out)
            })?;
            Ok(out.len() - before)
        }
    }

    /// [`Encoder::encode_stretch`] by the rank rule: split, then per piece a whole-piece lookup
    /// (most pieces are one token), the piece cache, and the merge loop.
    #[inline(always)]
    fn encode_stretch_by_rank(
        &self,
        pretok: &dyn Pretokenizer,
        text: &str,
        ranges: &mut Vec<Range<usize>>,
        out: &mut Vec<Rank>,
    ) -> Result<usize> {
        ranges.clear();
        pretok.split(text, ranges)?;
        let bytes = text.as_bytes();
        let mut last = 0;
        if !self.vocab.is_byte_level() {
            for r in ranges.iter() {
                let before = out.len();
                self.encode_piece(&bytes[r.clone()], out)?;
                last = out.len() - before;
            }
            return Ok(last);
        }
        // How many pieces ahead to prefetch the token map's slot (see `Vocab::prefetch`): 12
        // measured a little better than 6 and 3 (cold en_docs 107/101/102 MB/s, man_ru
        // 84/77/75). Tried and dropped: a two-stage pipeline that also looked pieces up D ahead
        // and prefetched their piece-cache slot; no faster (en_docs 94-97 against 98-99), and
        // more code. The keys computed for the prefetch wait in a ring for their piece, so each
        // piece is hashed once, for the token map and the piece cache alike.
        const AHEAD: usize = 12;
        const RING: usize = 16;
        let whole_words = bytes.len() >= 8;
        // A function, not a closure: the closure was compiled as a call per piece.
        #[inline(always)]
        fn key_of(bytes: &[u8], whole_words: bool, r: &Range<usize>) -> PieceKey {
            if whole_words {
                PieceKey::at(bytes, r.start, r.end)
            } else {
                PieceKey::of(&bytes[r.clone()])
            }
        }
        let mut ring = [PieceKey::default(); RING];
        for (k, r) in ranges.iter().take(AHEAD).enumerate() {
            ring[k] = key_of(bytes, whole_words, r);
            self.vocab.prefetch(&ring[k]);
        }
        self.caches.with(|mut cache| {
            for (k, r) in ranges.iter().enumerate() {
                if let Some(ahead) = ranges.get(k + AHEAD) {
                    let key = key_of(bytes, whole_words, ahead);
                    self.vocab.prefetch(&key);
                    if let Some(c) = cache.as_deref() {
                        c.prefetch(&key);
                    }
                    ring[(k + AHEAD) % RING] = key;
                }
                let key = ring[k % RING];
                let piece = &bytes[r.clone()];
                let before = out.len();
                if let Some(id) = self.vocab.rank_key(piece, &key) {
                    out.push(id);
                } else if let Some(cache) = cache
                    .as_deref_mut()
                    .filter(|_| piece.len() <= CACHE_MAX_PIECE)
                {
                    match cache.get(&key, piece) {
                        Some(ids) => push_ids(out, ids),
                        None => {
                            model::merge_bytes_into(&self.vocab, piece, out);
                            cache.insert(&key, piece, &out[before..], CACHE_MAX_ENTRIES);
                        }
                    }
                } else {
                    model::merge_bytes_into(&self.vocab, piece, out);
                }
                last = out.len() - before;
            }
        });
        Ok(last)
    }

    /// Encodes one piece with the merge rule, without any pretokenizing or special tokens
    /// (tiktoken's `_encode_single_piece`).
    #[inline]
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<Rank>) -> Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        if let Engine::MergeList(hf) = &self.engine {
            return hf.model().encode_word(piece, out);
        }
        if let Some(r) = self.vocab.rank(piece) {
            out.push(r);
            return Ok(());
        }
        if self.vocab.is_byte_level() {
            model::merge_bytes_into(&self.vocab, piece, out);
            return Ok(());
        }
        model::merge_chars_into(&self.vocab, piece, out)
    }
}
