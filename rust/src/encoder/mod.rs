//! The immutable [`Encoder`]: pretokenize, BPE each piece, and the inverse, decode.
//!
//! Text is first cut at the special tokens the caller allows; each stretch between them is split
//! by the pretokenizer, and each piece is looked up whole (most pieces are one token) or merged
//! by [`crate::model::merge`]. An `Encoder` is `Send + Sync` and never mutated after construction,
//! so one instance serves every thread.
//!
//! # Speed (what was tried and measured)
//!
//! The encode path for a byte-level vocabulary, after the split: a whole-piece lookup in the
//! token map (prefetched 12 pieces ahead), then a per-encoder cache of pieces that took several
//! tokens, then the merge loop on ids ([`crate::model::merge_bytes_into`]): pair ranks from a
//! byte-pair table, then the `(id, id) -> id` pair map behind a Bloom filter, the vector loop
//! with tagged keys up to 256 bytes, and exactly stitched 64-byte chunks above.
//!
//! Measured with a timing loop over the library, the same loops as the criterion groups
//! `cold/`, `corpus/` and `long/` of `cargo bench --bench encode` but timed by the thread's CPU
//! time, which is steadier on a 2-core AMD EPYC shared with other builds (best of 3; figures
//! still move by about 10%): each 4 KB document of a shared corpus encoded once by a new
//! encoder (cold: empty piece cache, as issue 6 measures) and then again (warm); and one call
//! on each 1 MB worst case. MB/s of input; before = the first version (`FxHashMap<Vec<u8>,
//! Rank>`, merges on byte slices, heap above 128 parts), after = this one, both built the same
//! way. `cargo bench --bench encode -- cold/cl100k` reproduces a column in wall time.
//!
//! | cl100k_base     | cold before | cold after | warm before | warm after |
//! |-----------------|------------:|-----------:|------------:|-----------:|
//! | en_docs         |        59.4 |      109.1 |        63.5 |      143.0 |
//! | code_py         |        76.3 |      130.7 |        72.6 |      159.3 |
//! | man_de          |        30.7 |       83.2 |        30.5 |      122.5 |
//! | man_ja          |        20.4 |       39.2 |        20.4 |      160.6 |
//! | man_ru          |        25.4 |       83.7 |        25.6 |      151.7 |
//! | man_zh_CN       |        23.1 |       47.0 |        23.2 |      143.2 |
//!
//! | o200k_base      | cold before | cold after | warm before | warm after |
//! |-----------------|------------:|-----------:|------------:|-----------:|
//! | en_docs         |        63.7 |      101.7 |        64.8 |      137.1 |
//! | code_py         |        73.6 |      121.0 |        74.1 |      149.0 |
//! | man_de          |        30.1 |       85.4 |        30.7 |      119.0 |
//! | man_ja          |        17.7 |       36.6 |        17.8 |      153.0 |
//! | man_ru          |        28.1 |       83.3 |        28.7 |      148.9 |
//! | man_zh_CN       |        22.5 |       42.7 |        22.2 |      129.5 |
//!
//! | 1 MB, one call (cl100k / o200k) | before      | after        |
//! |---------------------------------|------------:|-------------:|
//! | one million `a`                 |   6.6 / 7.2 | 410 / 433    |
//! | one million random letters      |   4.0 / 3.9 | 27.1 / 24.6  |
//! | one million digits              | 201 / 190   | 256 / 247    |
//! | 1 MB of CJK, no punctuation     |  13.6 / 9.3 | 35.0 / 34.2  |
//! | 1 MB of random whitespace       |   7.1 / 6.8 | 31.7 / 30.4  |
//! | `x` + 1 MB of spaces + `y`      |   4.9 / 5.3 | 375 / 378    |
//!
//! In the order they were done, each measured on its own (details in the commit messages and
//! next to each piece of code):
//! 1. Token map: open addressing with the first 8 bytes inline (`perf`: 60% of the time had been
//!    `HashMap::get` and `memcmp`). Merges on ids through the pair map. cl100k en_docs, warm,
//!    criterion: 46 -> 69 MiB/s.
//! 2. The piece cache: 69 -> 122 warm on en_docs; man_de 34 -> 110, man_ru 27 -> 123.
//! 3. Chunked merging of long pieces with exact stitching (`model::merge_long_bytes_into`), with
//!    caches of repeated chunks and seam answers: the worst cases above. A bitmap filter in
//!    front of the pair map: cold man_ja 25 -> 33, man_zh_CN 26 -> 40.
//! 4. Tagged keys in the short merge loop and stack arrays sized by piece length: random letters
//!    21.5 -> 25, cold man_ja 31.7 -> 36.
//! 5. Prefetching the token map slot ahead: cold man_de 68 -> 76, man_ru 70 -> 80. A deeper
//!    two-stage pipeline (also prefetching the piece cache slot) was no faster and was dropped.
//! 6. Piece caches pooled per encoder rather than per thread: batches, whose threads live for
//!    one call, no longer start cold (2 threads, flat output, man_ja 63 -> 189 MB/s).
//! 7. A compact pair map (12-byte slots, 80% full) behind a blocked Bloom filter: cold o200k
//!    man_ja 29.8 -> 34.5, man_de 77 -> 84.
//! 8. 64- and 128-entry classes for the short merge loop: cold man_ja 36.8 -> 40, man_zh_CN
//!    44.6 -> 46.5.
//!
//! 9. The split in 64-byte bit-mask windows (`scan/block.rs`; the numbers are in `scan`): the
//!    split of en_docs' 4 KB documents 339 -> 920 MB/s, and cold encode in Rust 110 -> 135-149.
//! 10. One key per piece (`vocab::PieceKey`): read with whole 8-byte loads and masks
//!     instead of branches on the length, computed once for the prefetch, the token map and
//!     the piece cache; the piece cache compares the first 8 bytes in its slot instead of
//!     hashing every byte again and calling `memcmp`; 8- and 16-entry merge arrays. Cold
//!     en_docs 135-149 -> 185-193, man_de 91 -> 119.
//! 11. The piece-cache slot prefetched with the token-map slot: man_de 111-117 -> 118-120.
//! 12. An AVX2 build of the short merge loop above 8 bytes, picked at run time (SSE2 has no
//!     unsigned 32-bit minimum): man_ja 44-45 -> 46-47, man_zh_CN 51-52 -> 54-55.
//! 13. The key helper as an inline function (as a closure it was a call per piece): en_docs
//!     180-185 -> 188-192, man_de 110-126 -> 125-129.
//! 14. The merge scan rounded up to whole 8-key vectors (no scalar tail): 200 instructions per
//!     merge step on man_ja (cachegrind), 56 of them the scan; man_de 49.5 -> 46.8 ns per merge.
//! 15. (Fourth session.) The AVX2 merge loop keeps the keys of pieces of 9 to 64 bytes in
//!     registers (`model::merge_regs_avx2`): the stack array's vector loads waited on the step's
//!     key stores. Cold, cl100k: man_ja 50.1-50.2 -> 58.3-58.8, man_zh_CN 57.2-57.6 ->
//!     65.0-65.6, man_de 135 -> 138-142, en_docs 198-200 -> 203-204; o200k man_ja 43.3-43.9 ->
//!     50.4-50.8, man_ru 96-98 -> 104-106, man_de and code_py level (best 3 of 9 passes).
//!
//! Items 9-15 were measured with a timing loop over [`Encoder::encode_ordinary`] with a new
//! encoder per pass (what `cargo bench --bench encode -- cold/` does), best of 5-6 passes,
//! alternating the two builds; the machine's noise is about 5%. Merge costs per step were
//! measured by merging each corpus's distinct multi-token pieces.
//!
//! Tried and dropped: merging Japanese and Chinese pieces that miss the cache in chunks of a few
//! characters through the cache, stitched exactly (chunks repeat across pieces far more than
//! whole pieces do). The seam checks cost more than the hits saved: cold man_ja 40 -> 25 with
//! 12-byte chunks above 24 bytes, 40 -> 33 with 30-byte chunks above 60. Also: 64-byte piece-
//! cache slots holding up to ten ids (the bigger table cost what the saved miss gained: man_de
//! 124-131 -> 125-128); loading the pair map's home slot before the filter answers (man_ja 46.7
//! -> 46.6-52 ns per merge, en_docs worse); scanning all 8 or 16 keys instead of the live ones
//! (51 -> 60 ns per merge on man_de); a merge loop without bounds checks over a local id array
//! (45.5 -> 47-49 ns on man_ja: the extra array cost more); the AVX2 loop from 3 bytes (en_docs
//! 42 -> 43-49 ns per merge). Starting Japanese and Chinese merges from whole characters would
//! need each character seam to be one no token crosses: a byte-pair check finds only 20% of
//! seams safe with cl100k and 1% with o200k.
//!
//! Also tried and dropped (fourth session):
//! - Tokens' last 8 bytes in an array beside the token map's slots, so that a 9-16 byte piece
//!   is verified without `offsets[rank]` and the byte table. `perf annotate` put a quarter of
//!   the per-piece loop's samples on those two loads, but the change measured level or worse:
//!   best 3 of 9 cold passes, en_docs 195-200 -> 189-191, code_py 219-221 -> 213-215, man_de
//!   121-127 both; prefetching the tail as well made man_de 130-137 -> 107-127.
//! - Converting a non-ASCII `str` to UTF-8 here (`PyUnicode_AsUCS4`, then an SSE2 encoder 8
//!   characters at a time) instead of CPython's `PyUnicode_AsUTF8AndSize`: per fresh 4 KB
//!   document, man_de 2.93 -> 2.05 us, man_ru 3.88 -> 3.09, man_ja 3.11 -> 2.97. But CPython
//!   keeps the UTF-8 it makes on the `str`, so a text encoded twice (`%timeit`, the warm
//!   benchmark) converts once; this way it would pay 2-3 us every call (about an eighth of warm
//!   Japanese time) to win 2% cold on German.
//! - Prefetching the cached `int` objects 8 and 16 ids ahead while building a list: cold
//!   man_ja list output 37.9-40.4 MB/s without, 37.6-39.7 with (four runs each). Under the
//!   stable ABI each list item costs two calls (`_Py_IncRef`, `PyList_SetItem`): 4.4 ns per id
//!   warm, about 8 cold.
//! - Merging two pieces that miss the cache together, a step of each in turn, so that their
//!   lookups overlap (the first waits for the second; its ids are inserted into place after).
//!   The merges alone went from 44.5 to 40.2 ns per step on man_ja, but cold encode did not
//!   move (man_ja 48.8-49.7 -> 48.5-50.0, man_zh_CN 57-58 -> 58-59) and en_docs lost 4% to the
//!   bookkeeping.
//! - 2 MB pages for the token map, pair map and byte tables (`madvise` HUGEPAGE and COLLAPSE):
//!   no change in three cold runs each on man_de, man_ja and en_docs.
//! - Keys in SSE2 registers for pieces of up to 8 bytes (as item 15 does with AVX2 from 9):
//!   38.3-39.6 -> 38.4-39.1 ns per merge on man_de, worse on code_py. Short pieces take few
//!   steps, so the wait item 15 removes matters little there.
//! - Prefetching the pair map's home slot before the filter answers, again after item 15:
//!   level (man_de 39.3-39.9 -> 39.1-39.7 ns per merge, man_ja 38.2-39.3 -> 38.9-43.1).
//!
//! Where the time goes now (cold, `perf record`): on English, about a quarter in first-time
//! merges, a tenth in the split, and most of the rest in the per-piece loop and the token map;
//! on German a third in merges and a sixth in the split; on Japanese and Chinese 55-60% in
//! merges (about 45 ns per merge step, 22 steps per distinct Japanese piece), which is what
//! still bounds those corpora.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use rustc_hash::FxHashSet;

use crate::error::{Result, TokforgeError};
use crate::hf::HfPipeline;
use crate::model;
use crate::pretokenize::{Pretokenizer, PretokenizerSpec};
use crate::util::{parallel_map, utf8_width};
use crate::vocab::{tail8, PieceKey, Rank, TokenKind, Vocab};

/// Which special tokens a call treats as special (`allowed`) and which make it fail when their
/// text appears (`disallowed`); the rest are encoded as ordinary text. Indexed like
/// [`Encoder::special_tokens`].
#[derive(Debug, Clone, Default)]
pub struct SpecialPolicy {
    allowed: Vec<bool>,
    disallowed: Vec<bool>,
}

impl SpecialPolicy {
    fn any(&self) -> bool {
        self.allowed.iter().chain(&self.disallowed).any(|&b| b)
    }
}

/// Encoder and decoder over one vocabulary and one pretokenizer.
#[derive(Debug)]
pub struct Encoder {
    vocab: Vocab,
    pretok: Box<dyn Pretokenizer>,
    /// Special tokens in id order, and a matcher over them (leftmost, then longest).
    specials: Vec<(String, Rank)>,
    special_matcher: Option<AhoCorasick>,
    /// Ordinary token bytes, sorted; built on first use by `encode_with_unstable`.
    sorted_tokens: OnceLock<Vec<Vec<u8>>>,
    /// Piece caches not in use right now (see [`PieceCache`]).
    caches: CachePool,
    /// A Hugging Face `tokenizer.json` pipeline, which then encodes every stretch between
    /// special tokens instead of the pretokenizer and the rank rule (see [`crate::hf`]).
    hf: Option<Box<HfPipeline>>,
}

impl Encoder {
    /// An encoder over `vocab` that splits text with `pretok`.
    pub fn new(vocab: Vocab, pretok: Box<dyn Pretokenizer>) -> Result<Self> {
        let specials: Vec<(String, Rank)> = vocab
            .specials()
            .into_iter()
            .map(|(s, i)| (s.to_string(), i))
            .collect();
        let special_matcher = if specials.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(specials.iter().map(|(s, _)| s.as_bytes()))
                    .map_err(|e| TokforgeError::InvalidVocab(format!("special tokens: {e}")))?,
            )
        };
        Ok(Encoder {
            vocab,
            pretok,
            specials,
            special_matcher,
            sorted_tokens: OnceLock::new(),
            caches: CachePool::default(),
            hf: None,
        })
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
        let mut enc = Encoder::new(vocab, Box::new(crate::pretokenize::NoPretokenizer))?;
        enc.hf = Some(Box::new(parsed.pipeline));
        Ok(enc)
    }

    /// The Hugging Face pipeline, for an encoder made by [`Encoder::from_hf_json`].
    pub fn hf(&self) -> Option<&HfPipeline> {
        self.hf.as_deref()
    }

    fn not_for_hf(&self, what: &str) -> Result<()> {
        match self.hf {
            Some(_) => Err(TokforgeError::InvalidArgument(format!(
                "{what} is not available for a tokenizer read from tokenizer.json (its merges \
                 follow the merge list, not token ranks)"
            ))),
            None => Ok(()),
        }
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The pretokenizer.
    pub fn pretokenizer(&self) -> &dyn Pretokenizer {
        &*self.pretok
    }

    /// How to build the pretokenizer again.
    pub fn pretokenizer_spec(&self) -> PretokenizerSpec {
        self.pretok.spec()
    }

    /// Special tokens in id order.
    pub fn special_tokens(&self) -> &[(String, Rank)] {
        &self.specials
    }

    /// A policy from two predicates over special-token text.
    pub fn policy(
        &self,
        allowed: impl Fn(&str) -> bool,
        disallowed: impl Fn(&str) -> bool,
    ) -> SpecialPolicy {
        SpecialPolicy {
            allowed: self.specials.iter().map(|(s, _)| allowed(s)).collect(),
            disallowed: self.specials.iter().map(|(s, _)| disallowed(s)).collect(),
        }
    }

    /// tiktoken's default: no special token allowed, all of them disallowed.
    pub fn default_policy(&self) -> SpecialPolicy {
        self.policy(|_| false, |_| true)
    }

    /// Splits `text` into pieces (byte ranges), as the pretokenizer does between specials.
    pub fn split(&self, text: &str) -> Result<Vec<Range<usize>>> {
        let mut out = Vec::new();
        self.pretok.split(text, &mut out)?;
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

    /// Encodes `text`, cutting at the special tokens `policy` allows and failing on the first
    /// disallowed one. Returns the ids and how many of them come from the last piece (0 when the
    /// text ends with a special token), which `encode_with_unstable` needs.
    pub fn encode_with_policy(
        &self,
        text: &str,
        policy: &SpecialPolicy,
    ) -> Result<(Vec<Rank>, usize)> {
        let mut out = Vec::with_capacity(initial_capacity(text));
        let matcher = match (&self.special_matcher, policy.any()) {
            (Some(m), true) => m,
            _ => {
                let last = with_ranges(|ranges| self.encode_stretch(text, true, ranges, &mut out))?;
                return Ok((out, last));
            }
        };
        let mut ranges = Vec::new();
        let mut pos = 0;
        let mut last = 0;
        loop {
            // The next allowed special at or after `pos`; a disallowed one is an error, any other
            // is text, and the search resumes one byte after its start (as tiktoken does).
            let mut from = pos;
            let next = loop {
                match matcher.find(Input::new(text).range(from..)) {
                    None => break None,
                    Some(m) => {
                        let k = m.pattern().as_usize();
                        if policy.allowed[k] {
                            break Some((m.start(), m.end(), self.specials[k].1));
                        }
                        if policy.disallowed[k] {
                            return Err(TokforgeError::DisallowedSpecial(
                                self.specials[k].0.clone(),
                            ));
                        }
                        from = m.start() + 1;
                    }
                }
            };
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

    /// Encodes a stretch of text with no special tokens in it; returns the number of ids of its
    /// last piece.
    fn encode_stretch(
        &self,
        text: &str,
        at_origin: bool,
        ranges: &mut Vec<Range<usize>>,
        out: &mut Vec<Rank>,
    ) -> Result<usize> {
        if let Some(hf) = &self.hf {
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
            return Ok(out.len() - before);
        }
        ranges.clear();
        self.pretok.split(text, ranges)?;
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
        if let Some(hf) = &self.hf {
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
        if let Some(hf) = &self.hf {
            return hf.decode(&self.vocab, ids);
        }
        let mut out = Vec::with_capacity(ids.len() * 4);
        self.vocab.decode_into(ids, &mut out)?;
        Ok(out)
    }

    /// Ordinary token bytes in sorted order.
    pub fn sorted_token_bytes(&self) -> &[Vec<u8>] {
        self.sorted_tokens.get_or_init(|| {
            let mut v: Vec<Vec<u8>> = self
                .vocab
                .ordinary_tokens()
                .into_iter()
                .map(|(b, _)| b.to_vec())
                .collect();
            v.sort();
            v
        })
    }

    /// Stable tokens of `text` and the set of token sequences that could complete its last piece
    /// (tiktoken's `encode_with_unstable`, same results).
    pub fn encode_with_unstable(
        &self,
        text: &str,
        policy: &SpecialPolicy,
    ) -> Result<(Vec<Rank>, Vec<Vec<Rank>>)> {
        self.not_for_hf("encode_with_unstable")?;
        let (mut tokens, mut last) = self.encode_with_policy(text, policy)?;
        if last == 0 {
            return Ok((tokens, Vec::new()));
        }
        // A split can disappear when text is appended ("\n" + " " may become one "\n \n"-like
        // piece under cl100k's `\s*[\r\n]+`): treat a trailing run of all-whitespace tokens as
        // unstable too.
        let all_space = |id: Rank| {
            self.vocab
                .token_bytes(id)
                .is_some_and(|b| b.iter().all(|c| matches!(c, b' ' | b'\n' | b'\t')))
        };
        if all_space(tokens[tokens.len() - last]) {
            while last < tokens.len() && all_space(tokens[tokens.len() - last - 1]) {
                last += 1;
            }
        }
        let unstable = self.decode_bytes(&tokens[tokens.len() - last..])?;
        tokens.truncate(tokens.len() - last);
        let mut completions: FxHashSet<Vec<Rank>> = FxHashSet::default();
        if unstable.is_empty() {
            return Ok((tokens, Vec::new()));
        }
        let sorted = self.sorted_token_bytes();
        fn with_prefix<'a>(
            sorted: &'a [Vec<u8>],
            p: &'a [u8],
        ) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
            let lo = sorted.partition_point(|t| t.as_slice() < p);
            sorted[lo..].iter().take_while(move |t| t.starts_with(p))
        }
        // Single tokens that extend the unstable bytes.
        for t in with_prefix(sorted, &unstable) {
            completions.insert(vec![self.vocab.rank(t).expect("sorted tokens are tokens")]);
        }
        // A token straddling the end at every other position: re-encode prefix + token.
        for i in 1..unstable.len() {
            let (prefix, suffix) = unstable.split_at(i);
            for t in with_prefix(sorted, suffix) {
                let mut possible = prefix.to_vec();
                possible.extend_from_slice(t);
                let encoded = match std::str::from_utf8(&possible) {
                    Ok(s) => self.encode_ordinary(s)?,
                    Err(_) => {
                        let mut v = Vec::new();
                        self.encode_piece(&possible, &mut v)?;
                        v
                    }
                };
                let mut seq = Vec::new();
                let mut len = 0;
                for id in encoded {
                    seq.push(id);
                    len += self.vocab.token_bytes(id).map_or(0, <[u8]>::len);
                    if len >= unstable.len() {
                        break;
                    }
                }
                completions.insert(seq);
            }
        }
        // Regex splits are not stable either: `\s+(?!\S)` can split a trailing whitespace run
        // once more text follows, so the run minus its last character becomes possible.
        if unstable.len() > 1 {
            if let Some((c, w)) = last_char(&unstable) {
                if c.is_whitespace() && unstable.len() > w {
                    let mut v = Vec::new();
                    self.encode_piece(&unstable[..unstable.len() - w], &mut v)?;
                    self.encode_piece(&unstable[unstable.len() - w..], &mut v)?;
                    completions.insert(v);
                }
            }
        }
        let mut completions: Vec<Vec<Rank>> = completions.into_iter().collect();
        completions.sort();
        Ok((tokens, completions))
    }

    /// The parts `piece` ends in when only merges of rank below `limit` may apply: for a token of
    /// rank `r`, `merge_parts_below(bytes, r)` gives the two tokens it was merged from (tiktoken's
    /// rule recovers a rank vocabulary's merges this way), and recursing gives its lineage.
    /// Parts are ids; bytes that are not tokens on their own come back as their fallback id or,
    /// failing that, make this an error.
    pub fn merge_parts_below(&self, piece: &[u8], limit: Rank) -> Result<Vec<Rank>> {
        self.not_for_hf("merge_parts")?;
        let mut parts: Vec<&[u8]> = if self.vocab.is_byte_level() {
            piece.chunks(1).collect()
        } else {
            let mut v = Vec::new();
            let mut i = 0;
            while i < piece.len() {
                let w = utf8_width(piece[i]).min(piece.len() - i);
                v.push(&piece[i..i + w]);
                i += w;
            }
            v
        };
        loop {
            let mut best: Option<(Rank, usize)> = None;
            for i in 0..parts.len().saturating_sub(1) {
                let joined = [parts[i], parts[i + 1]].concat();
                if let Some(r) = self.vocab.rank(&joined) {
                    if r < limit && !matches!(best, Some((b, _)) if b <= r) {
                        best = Some((r, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            // Both parts are subslices of `piece`, adjacent, so the merged part is one subslice.
            let start = parts[i].as_ptr() as usize - piece.as_ptr() as usize;
            let len = parts[i].len() + parts[i + 1].len();
            parts[i] = &piece[start..start + len];
            parts.remove(i + 1);
        }
        parts
            .into_iter()
            .map(|p| {
                self.vocab
                    .rank(p)
                    .or_else(|| {
                        (p.len() == 1)
                            .then(|| self.vocab.fallback_id(p[0]))
                            .flatten()
                    })
                    .ok_or_else(|| TokforgeError::not_a_token(p))
            })
            .collect()
    }

    /// Whether `id` is a special token.
    pub fn is_special(&self, id: Rank) -> bool {
        self.vocab.kind(id) == TokenKind::Special
    }
}

/// Pieces longer than this are merged every time, never cached.
const CACHE_MAX_PIECE: usize = 256;
/// A cache holds at most this many pieces, and this many bytes of pieces and ids kept apart from
/// its slots; then it starts over.
const CACHE_MAX_ENTRIES: usize = 1 << 16;
/// The same for a tokenizer.json pipeline, which caches every word (there is no whole-piece
/// lookup in front): en_docs alone has 78k distinct words cut at `▁`, so a 2^16 cache started
/// over on every pass. tokenizer.json with Llama 2's layout, en_docs, warm: 23 -> 58 MB/s
/// (Llama 3's layout, man_ja: 23.5 -> 64). The rank path keeps 2^16: 2^17 made its warm
/// Japanese and Chinese runs slower (man_zh_CN 120 -> 109 MB/s), a bigger table to miss in.
const HF_CACHE_MAX_ENTRIES: usize = 1 << 17;
const CACHE_MAX_BYTES: usize = 1 << 23;
/// An encoder keeps at most this many idle caches (one per thread that encodes at once).
const POOLED_CACHES: usize = 8;

/// Pieces that took more than one token, with their tokens: real text repeats its words, and a
/// repeat costs one hash and one compare instead of a merge loop. Bounded (see the constants
/// above), and cleared whole when full, which costs less than any eviction bookkeeping.
///
/// An encoder owns a pool of them; a call takes one for its duration, so the merge loop never
/// locks, and returns it warm for the next call on any thread. The first version kept one cache
/// per thread in a thread-local: batch calls run on threads that live for one call, so every
/// batch started cold (2 threads, 4 KB documents, en_docs: the flat batch reached 1.2x one
/// thread's warm speed).
#[derive(Default)]
struct PieceCache {
    /// Open addressing; `key_len == 0` marks an empty slot.
    slots: Vec<CacheSlot>,
    entries: usize,
    keys: Vec<u8>,
    ids: Vec<Rank>,
}

/// A cached piece: its first and last 8 bytes (so a piece of up to 16 bytes is compared in the
/// slot, without a trip to `keys`), the low half of its hash (for `grow`), and `at`: the ids
/// themselves when the piece is at most 16 bytes and took two (German and English words split
/// in two, the most common entry), else where the rest of the piece (if longer than 16 bytes)
/// and its ids are in `keys` and `ids`.
///
/// Ids in the slot spare a hit the dependent load from `ids` (the slot is prefetched, the ids it
/// points to are not; a second prefetch stage was tried and dropped, see the module docs), and
/// pieces of up to 16 bytes are no longer copied to `keys`. Best 3 of 9 passes in Rust, same
/// machine, builds alternated: warm man_de 224-227 -> 228-229 MB/s, en_docs 299-302 -> 305-311,
/// man_ja 233-237 -> 236-239; cold en_docs 193-196 -> 198-202, man_de and man_ru level.
#[derive(Clone, Copy, Default)]
struct CacheSlot {
    head: u64,
    tail: u64,
    hash: u32,
    key_len: u16,
    ids_len: u16,
    at: [u32; 2],
}

impl CacheSlot {
    /// Whether the ids are in `at` (see the type).
    #[inline(always)]
    fn inline(key_len: usize, ids_len: usize) -> bool {
        key_len <= 16 && ids_len <= 2
    }
}

impl PieceCache {
    /// Slots of a new cache: en_docs holds about 15k distinct multi-token pieces, so starting
    /// small only costs rehashing.
    const FIRST_SLOTS: usize = 1 << 13;

    /// Starts loading the slot where `key`'s piece would be.
    #[inline(always)]
    fn prefetch(&self, key: &PieceKey) {
        if !self.slots.is_empty() {
            crate::vocab::prefetch_read(&self.slots[key.hash as usize & (self.slots.len() - 1)]);
        }
    }

    #[inline]
    fn get(&self, key: &PieceKey, piece: &[u8]) -> Option<&[Rank]> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = key.hash as usize & mask;
        loop {
            let s = &self.slots[i];
            if s.key_len == 0 {
                return None;
            }
            if s.head == key.head && s.key_len as usize == piece.len() && self.rest_is(s, piece) {
                let n = s.ids_len as usize;
                return Some(if CacheSlot::inline(piece.len(), n) {
                    &s.at[..n]
                } else {
                    &self.ids[s.at[1] as usize..][..n]
                });
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether the bytes of `s` past the first 8 (which match) are those of `piece` (as long).
    #[inline(always)]
    fn rest_is(&self, s: &CacheSlot, piece: &[u8]) -> bool {
        let n = piece.len();
        if n <= 8 {
            return true;
        }
        if s.tail != tail8(piece) {
            return false;
        }
        // The last 8 bytes, overlapping the first 8, cover a piece of up to 16.
        n <= 16 || self.keys[s.at[0] as usize + 8..s.at[0] as usize + n] == piece[8..]
    }

    fn insert(&mut self, key: &PieceKey, piece: &[u8], ids: &[Rank], max_entries: usize) {
        debug_assert!(piece.len() <= CACHE_MAX_PIECE && ids.len() <= u16::MAX as usize);
        let full = self.keys.len() + 4 * self.ids.len() + piece.len() + 4 * ids.len();
        if self.entries >= max_entries || full > CACHE_MAX_BYTES {
            self.entries = 0;
            self.keys.clear();
            self.ids.clear();
            self.slots
                .iter_mut()
                .for_each(|s| *s = CacheSlot::default());
        }
        if (self.entries + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let at = if CacheSlot::inline(piece.len(), ids.len()) {
            [
                ids.first().copied().unwrap_or(0),
                ids.get(1).copied().unwrap_or(0),
            ]
        } else {
            let key_at = self.keys.len() as u32;
            if piece.len() > 16 {
                self.keys.extend_from_slice(piece);
            }
            let ids_at = self.ids.len() as u32;
            self.ids.extend_from_slice(ids);
            [key_at, ids_at]
        };
        let slot = CacheSlot {
            head: key.head,
            tail: if piece.len() > 8 { tail8(piece) } else { 0 },
            hash: key.hash as u32,
            key_len: piece.len() as u16,
            ids_len: ids.len() as u16,
            at,
        };
        self.place(slot);
        self.entries += 1;
    }

    fn place(&mut self, slot: CacheSlot) {
        let mask = self.slots.len() - 1;
        // The table has at most 2^18 slots: the hash's low half picks them as the whole did.
        let mut i = slot.hash as usize & mask;
        while self.slots[i].key_len != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(Self::FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![CacheSlot::default(); cap]);
        for s in old.into_iter().filter(|s| s.key_len != 0) {
            self.place(s);
        }
    }
}

/// The idle piece caches of an encoder.
#[derive(Default)]
struct CachePool(std::sync::Mutex<Vec<PieceCache>>);

impl std::fmt::Debug for CachePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachePool")
    }
}

impl CachePool {
    /// Runs `f` with a cache of this pool's (a new one when all are taken), then puts it back.
    /// `f` gets `None` only if the pool's lock is poisoned.
    #[inline]
    fn with<R>(&self, f: impl FnOnce(Option<&mut PieceCache>) -> R) -> R {
        let Ok(mut idle) = self.0.lock() else {
            return f(None);
        };
        let mut cache = idle.pop().unwrap_or_default();
        drop(idle);
        let r = f(Some(&mut cache));
        if let Ok(mut idle) = self.0.lock() {
            if idle.len() < POOLED_CACHES {
                idle.push(cache);
            }
        }
        r
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

/// Appends `ids` to `out`; a cached piece has a few ids, for which a loop beats a call to
/// `memmove` (5% of cold encode time on man_de in `perf report`).
#[inline(always)]
fn push_ids(out: &mut Vec<Rank>, ids: &[Rank]) {
    if ids.len() <= 8 {
        out.reserve(ids.len());
        for &id in ids {
            out.push(id);
        }
    } else {
        out.extend_from_slice(ids);
    }
}

/// The last character of `bytes` when it is valid UTF-8 there, with its width in bytes.
fn last_char(bytes: &[u8]) -> Option<(char, usize)> {
    let start = bytes.len().saturating_sub(4);
    (start..bytes.len()).find_map(|i| {
        std::str::from_utf8(&bytes[i..]).ok().and_then(|s| {
            let mut it = s.chars();
            let c = it.next()?;
            it.next().is_none().then_some((c, bytes.len() - i))
        })
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of entry (ids in the slot or in `ids`, piece compared in the slot or in
    /// `keys`) comes back as inserted, through growth and through starting over when full;
    /// pieces that differ only past their first 8 bytes, or only in the middle, are told apart.
    #[test]
    fn piece_cache_returns_what_was_inserted() {
        let piece = |k: usize| -> Vec<u8> {
            let len = [4, 5, 8, 9, 12, 16, 17, 24, 40, 256][k % 10];
            let mut p = vec![b'a' + (k % 7) as u8; len];
            // The number's bytes at four distinct places (middle, end, start, a third in), so
            // pieces share heads and tails.
            let tag = (k as u32).to_le_bytes();
            for (i, &b) in tag.iter().enumerate() {
                let at = [len / 2, len - 1, 0, len / 3][i];
                p[at] ^= b;
            }
            p
        };
        let ids =
            |k: usize| -> Vec<Rank> { (0..1 + k % 5).map(|i| (k * 10 + i) as Rank).collect() };
        let mut cache = PieceCache::default();
        let max = 3000;
        let mut since_reset = 0;
        let mut seen = std::collections::HashSet::new();
        for k in 0..7000 {
            let p = piece(k);
            assert!(seen.insert(p.clone()), "the pieces are distinct");
            let key = PieceKey::of(&p);
            assert_eq!(cache.get(&key, &p), None, "{k} before insert");
            if cache.entries >= max {
                since_reset = k;
            }
            cache.insert(&key, &p, &ids(k), max);
            for j in [k, since_reset, (since_reset + k) / 2] {
                let q = piece(j);
                assert_eq!(
                    cache.get(&PieceKey::of(&q), &q),
                    Some(&ids(j)[..]),
                    "{j} after {k}"
                );
            }
        }
        assert!(cache.slots.len() >= 2 * max, "the table grew");
    }
    use crate::pretokenize::{NoPretokenizer, PretokenizerSpec};

    fn byte_vocab(extra: &[&str], specials: &[(&str, Rank)]) -> Vocab {
        let mut ranks: Vec<(Vec<u8>, Rank)> = (0..=255u8).map(|b| (vec![b], b as Rank)).collect();
        for (k, t) in extra.iter().enumerate() {
            ranks.push((t.as_bytes().to_vec(), 256 + k as Rank));
        }
        Vocab::new(
            ranks,
            specials.iter().map(|(s, i)| (s.to_string(), *i)).collect(),
            None,
        )
        .unwrap()
    }

    fn cl100k_like(extra: &[&str], specials: &[(&str, Rank)]) -> Encoder {
        let pre = PretokenizerSpec::from_name("cl100k")
            .unwrap()
            .build()
            .unwrap();
        Encoder::new(byte_vocab(extra, specials), pre).unwrap()
    }

    #[test]
    fn specials_allowed_disallowed_and_plain() {
        let enc = cl100k_like(&["he", "hel", "hell", "hello"], &[("<|eot|>", 1000)]);
        let all = enc.policy(|_| true, |_| false);
        let (ids, last) = enc.encode_with_policy("hello<|eot|>", &all).unwrap();
        assert_eq!(ids, vec![259, 1000]);
        assert_eq!(last, 0);
        let err = enc
            .encode_with_policy("hi <|eot|>", &enc.default_policy())
            .unwrap_err();
        assert!(matches!(err, TokforgeError::DisallowedSpecial(ref s) if s == "<|eot|>"));
        let plain = enc.policy(|_| false, |_| false);
        let (ids, _) = enc.encode_with_policy("<|eot|>", &plain).unwrap();
        assert_eq!(enc.decode_bytes(&ids).unwrap(), b"<|eot|>");
        assert!(!ids.contains(&1000));
    }

    #[test]
    fn byte_fallback_for_unknown_characters() {
        // Character-level vocabulary: a, b, ab, and the 256 fallback tokens at 0..256.
        let ranks = vec![
            (b"a".to_vec(), 256),
            (b"b".to_vec(), 257),
            (b"ab".to_vec(), 258),
        ];
        let vocab = Vocab::new(ranks, vec![], Some((0..256).collect())).unwrap();
        let enc = Encoder::new(vocab, Box::new(NoPretokenizer)).unwrap();
        let ids = enc.encode_ordinary("ab€ba").unwrap();
        assert_eq!(ids, vec![258, 0xE2, 0x82, 0xAC, 257, 256]);
        assert_eq!(enc.decode_bytes(&ids).unwrap(), "ab€ba".as_bytes());
    }

    #[test]
    fn char_vocab_without_fallback_is_an_error() {
        let vocab = Vocab::new(vec![(b"a".to_vec(), 0)], vec![], None).unwrap();
        let enc = Encoder::new(vocab, Box::new(NoPretokenizer)).unwrap();
        assert!(matches!(
            enc.encode_ordinary("ax"),
            Err(TokforgeError::NotAToken(_))
        ));
    }

    #[test]
    fn merge_parts_below_recovers_merges() {
        let enc = cl100k_like(&["lo", "low", "er", "lower"], &[]);
        assert_eq!(
            enc.merge_parts_below(b"lower", 259).unwrap(),
            vec![257, 258]
        );
        assert_eq!(enc.merge_parts_below(b"low", 257).unwrap(), vec![256, 119]);
        assert_eq!(enc.merge_parts_below(b"lo", 256).unwrap(), vec![108, 111]);
        assert_eq!(
            enc.merge_parts_below(b"lower", u32::MAX).unwrap(),
            vec![259]
        );
    }

    #[test]
    fn stream_decoder_emits_whole_characters() {
        let vocab = byte_vocab(&[], &[]);
        let mut d = StreamDecoder::new(false);
        let euro = "€".as_bytes();
        assert_eq!(d.push(&vocab, euro[0] as Rank).unwrap(), "");
        assert_eq!(d.push(&vocab, euro[1] as Rank).unwrap(), "");
        assert_eq!(d.push(&vocab, euro[2] as Rank).unwrap(), "€");
        assert_eq!(d.push(&vocab, 0xFF).unwrap(), "\u{FFFD}");
        assert_eq!(d.push(&vocab, 0xE2).unwrap(), "");
        assert_eq!(d.finish().unwrap(), "\u{FFFD}");
        let mut strict = StreamDecoder::new(true);
        assert!(strict.push(&vocab, 0xFF).is_err());
    }

    #[test]
    fn batch_equals_single() {
        let enc = cl100k_like(&["he", "ll", "llo"], &[]);
        let texts: Vec<String> = (0..50)
            .map(|i| format!("hello {i} world {}", "x".repeat(i)))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let p = enc.default_policy();
        let batch = enc.encode_batch(&refs, &p, 4).unwrap();
        for (t, b) in refs.iter().zip(batch) {
            assert_eq!(enc.encode_ordinary(t).unwrap(), b);
        }
    }

    #[test]
    fn long_piece_round_trips() {
        let enc = cl100k_like(&["aa", "aaaa", "aaaaaaaa"], &[]);
        let text = "a".repeat(100_001);
        let ids = enc.encode_ordinary(&text).unwrap();
        assert_eq!(enc.decode_bytes(&ids).unwrap(), text.as_bytes());
        assert_eq!(ids.len(), 100_001 / 8 + 1);
    }
}
