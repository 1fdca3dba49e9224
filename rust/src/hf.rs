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
//! 3. Pre-tokenizers ([`PreTokenizer`]) cut the normalized stretch into words. `Metaspace`
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
//! pre-tokenizer or decoder not listed in [`Normalizer`], [`PreTokenizer`] and [`parse`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use rustc_hash::FxHashMap;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use crate::error::{Result, TokforgeError};
use crate::pretokenize::{compile_pattern as compile, Pretokenizer};
use crate::vocab::Rank;

/// The split regex of `tokenizers`' `ByteLevel` pre-tokenizer when `use_regex` is true.
pub const BYTE_LEVEL_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// GPT-2's table from bytes to printable characters: printable Latin-1 bytes map to
/// themselves, the other 68 to U+0100 upwards, in byte order.
pub fn byte_to_char() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in out.iter_mut().enumerate() {
        let b = b as u32;
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
        *slot = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            next += 1;
            char::from_u32(next - 1).unwrap_or('\0')
        };
    }
    out
}

/// The inverse of [`byte_to_char`].
fn char_to_byte() -> FxHashMap<char, u8> {
    byte_to_char()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// `s` with every character of GPT-2's byte alphabet turned back into its byte; other
/// characters keep their UTF-8 bytes.
fn unmap_bytes(s: &str, table: &FxHashMap<char, u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match table.get(&c) {
            Some(&b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

/// One normalizer step, applied to each stretch of text between added tokens.
#[derive(Debug)]
pub enum Normalizer {
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
    Lowercase,
    /// Strips Unicode whitespace on the chosen sides.
    Strip {
        left: bool,
        right: bool,
    },
    /// Prepends the string to a non-empty stretch.
    Prepend(String),
    /// Replaces every occurrence of a literal string.
    ReplaceStr {
        pattern: String,
        content: String,
    },
    /// Replaces every match of a regex (the replacement is literal).
    ReplaceMatches {
        pattern: Box<dyn Pretokenizer>,
        content: String,
    },
    /// A SentencePiece `precompiled_charsmap` (e.g. `nmt_nfkc`). `tokenizers` applies it per
    /// grapheme cluster (see [`Charsmap::normalize_like_hf`]); `sentencepiece` itself takes the
    /// longest rule at each position ([`Charsmap::normalize_like_sentencepiece`]). tokforge
    /// follows `tokenizers` for tokenizer.json files and `sentencepiece` for `.model` files.
    Precompiled {
        map: Charsmap,
        longest: bool,
    },
}

/// SentencePiece's precompiled normalization rules: a darts-clone double-array trie over the
/// source strings whose values are offsets of NUL-terminated replacements in a string blob.
/// Layout: `u32` (LE) trie size in bytes, the trie's `u32` units, then the blob.
#[derive(Debug)]
pub struct Charsmap {
    units: Vec<u32>,
    blob: Vec<u8>,
}

impl Charsmap {
    /// Parses the binary charsmap; an empty one is `None` (no rules).
    pub fn parse(data: &[u8]) -> std::result::Result<Option<Self>, String> {
        if data.is_empty() {
            return Ok(None);
        }
        if data.len() < 4 {
            return Err("precompiled_charsmap shorter than its 4-byte header".into());
        }
        let size = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if size % 4 != 0 || size == 0 || 4 + size > data.len() {
            return Err(format!(
                "precompiled_charsmap: trie size {size} does not fit the {} bytes",
                data.len()
            ));
        }
        let units = data[4..4 + size]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Some(Charsmap {
            units,
            blob: data[4 + size..].to_vec(),
        }))
    }

    /// Values of every key that is a prefix of `key`, shortest first (darts-clone's
    /// `commonPrefixSearch`). Out-of-range units end the search (a corrupt map cannot panic).
    fn prefixes(&self, key: &[u8]) -> Vec<(usize, usize)> {
        let unit = |i: usize| self.units.get(i).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let mut out = Vec::new();
        let Some(first) = unit(0) else { return out };
        let mut pos = offset(first);
        for (k, &c) in key.iter().enumerate() {
            if c == 0 {
                break;
            }
            pos ^= c as usize;
            let Some(u) = unit(pos) else { return out };
            if u & ((1 << 31) | 0xFF) != c as u32 {
                return out;
            }
            pos ^= offset(u);
            if (u >> 8) & 1 == 1 {
                let Some(leaf) = unit(pos) else { return out };
                out.push((k + 1, (leaf & ((1 << 31) - 1)) as usize));
            }
        }
        out
    }

    /// The replacement stored at `value` (up to its NUL).
    fn replacement(&self, value: usize) -> &[u8] {
        let tail = self.blob.get(value..).unwrap_or(&[]);
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        &tail[..end]
    }

    /// `tokenizers`' `Precompiled`: each grapheme cluster shorter than 6 bytes with a rule for
    /// a prefix of it is replaced whole by the shortest such rule's replacement; otherwise each
    /// character is replaced by its own rule, if any.
    pub fn normalize_like_hf(&self, s: &str) -> String {
        use unicode_segmentation::UnicodeSegmentation;
        let mut out: Vec<u8> = Vec::with_capacity(s.len());
        for g in s.graphemes(true) {
            if g.len() < 6 {
                if let Some(&(_, v)) = self.prefixes(g.as_bytes()).first() {
                    out.extend_from_slice(self.replacement(v));
                    continue;
                }
            }
            for (i, c) in g.char_indices() {
                let part = &g.as_bytes()[i..i + c.len_utf8()];
                match self.prefixes(part).first() {
                    Some(&(_, v)) => out.extend_from_slice(self.replacement(v)),
                    None => out.extend_from_slice(part),
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `sentencepiece`'s normalizer: at each position the longest rule applies; without one,
    /// one character is copied.
    pub fn normalize_like_sentencepiece(&self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out: Vec<u8> = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < b.len() {
            match self.prefixes(&b[i..]).last() {
                Some(&(len, v)) => {
                    out.extend_from_slice(self.replacement(v));
                    i += len;
                }
                None => {
                    let w = crate::util::utf8_width(b[i]).min(b.len() - i);
                    out.extend_from_slice(&b[i..i + w]);
                    i += w;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Normalizer {
    fn apply(&self, s: String) -> Result<String> {
        Ok(match self {
            Normalizer::Nfc => s.nfc().collect(),
            Normalizer::Nfd => s.nfd().collect(),
            Normalizer::Nfkc => s.nfkc().collect(),
            Normalizer::Nfkd => s.nfkd().collect(),
            Normalizer::Lowercase => s.to_lowercase(),
            Normalizer::Strip { left, right } => {
                let t = if *left { s.trim_start() } else { &s[..] };
                let t = if *right { t.trim_end() } else { t };
                t.to_string()
            }
            Normalizer::Prepend(p) => {
                if s.is_empty() {
                    s
                } else {
                    let mut out = String::with_capacity(p.len() + s.len());
                    out.push_str(p);
                    out.push_str(&s);
                    out
                }
            }
            Normalizer::ReplaceStr { pattern, content } => {
                if pattern.is_empty() {
                    s
                } else {
                    s.replace(pattern.as_str(), content)
                }
            }
            Normalizer::Precompiled { map, longest } => {
                if *longest {
                    map.normalize_like_sentencepiece(&s)
                } else {
                    map.normalize_like_hf(&s)
                }
            }
            Normalizer::ReplaceMatches { pattern, content } => {
                replace_matches(&s, pattern.as_ref(), content)?
            }
        })
    }
}

/// `s` with every match of `p` replaced by `content`.
fn replace_matches(s: &str, p: &dyn Pretokenizer, content: &str) -> Result<String> {
    let mut ranges = Vec::new();
    p.split(s, &mut ranges)?;
    let mut out = String::with_capacity(s.len());
    let mut prev = 0;
    for r in ranges {
        out.push_str(&s[prev..r.start]);
        out.push_str(content);
        prev = r.end;
    }
    out.push_str(&s[prev..]);
    Ok(out)
}

/// How a split keeps the delimiters it finds (`tokenizers`' `SplitDelimiterBehavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

/// What a split looks for.
#[derive(Debug)]
pub enum Matcher {
    /// A regex: fancy-regex, or for a known pattern its hand-written scanner (see [`compile`]).
    Pattern(Box<dyn Pretokenizer>),
    /// A literal string; non-overlapping occurrences, left to right.
    Literal(String),
    /// One character; each occurrence is a match.
    Char(char),
    /// Every character for which the predicate holds is one match.
    Chars(fn(char) -> bool),
}

impl Matcher {
    /// The whole of `s` as (range, is a match) parts, in order, into `out` (cleared first), as
    /// `tokenizers`' `find_matches` makes them.
    fn find(&self, s: &str, invert: bool, out: &mut Vec<(Range<usize>, bool)>) -> Result<()> {
        out.clear();
        let mut prev = 0;
        let mut push_match = |out: &mut Vec<(Range<usize>, bool)>, r: Range<usize>| {
            if prev != r.start {
                out.push((prev..r.start, false));
            }
            prev = r.end;
            out.push((r, true));
        };
        match self {
            Matcher::Pattern(p) => {
                let mut ranges = Vec::new();
                p.split(s, &mut ranges)?;
                for r in ranges {
                    push_match(out, r);
                }
            }
            Matcher::Literal(p) => {
                if !p.is_empty() {
                    for (i, m) in s.match_indices(p.as_str()) {
                        push_match(out, i..i + m.len());
                    }
                }
            }
            Matcher::Char(c) => {
                for (i, m) in s.match_indices(*c) {
                    push_match(out, i..i + m.len());
                }
            }
            Matcher::Chars(f) => {
                for (i, c) in s.char_indices() {
                    if f(c) {
                        push_match(out, i..i + c.len_utf8());
                    }
                }
            }
        }
        if prev != s.len() {
            out.push((prev..s.len(), false));
        }
        if invert {
            for part in out.iter_mut() {
                part.1 = !part.1;
            }
        }
        Ok(())
    }
}

/// The parts of `s` that a split with `behavior` keeps (before dropping empty ones).
fn split_parts(parts: Vec<(Range<usize>, bool)>, behavior: Behavior) -> Vec<Range<usize>> {
    match behavior {
        Behavior::Isolated => parts.into_iter().map(|(r, _)| r).collect(),
        Behavior::Removed => parts
            .into_iter()
            .filter(|(_, m)| !m)
            .map(|(r, _)| r)
            .collect(),
        Behavior::Contiguous => join_parts(parts.into_iter(), |m, previous| m == previous),
        Behavior::MergedWithPrevious => join_parts(parts.into_iter(), |m, previous| m && !previous),
        Behavior::MergedWithNext => {
            // Right to left: a match joins the part after it.
            let mut acc = join_parts(parts.into_iter().rev(), |m, previous| m && !previous);
            acc.reverse();
            acc
        }
    }
}

/// Folds parts, in the order given, into the previous kept part when `joins(this is a match,
/// the previous part was a match)`; `tokenizers`' folds for the merged behaviors.
fn join_parts(
    parts: impl Iterator<Item = (Range<usize>, bool)>,
    joins: impl Fn(bool, bool) -> bool,
) -> Vec<Range<usize>> {
    let mut acc: Vec<Range<usize>> = Vec::new();
    let mut previous = false;
    for (r, m) in parts {
        match acc.last_mut() {
            Some(last) if joins(m, previous) => {
                last.start = last.start.min(r.start);
                last.end = last.end.max(r.end);
            }
            _ => acc.push(r),
        }
        previous = m;
    }
    acc
}

/// Where `Metaspace` adds its replacement character in front of a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrependScheme {
    Always,
    First,
    Never,
}

/// One pre-tokenizer step.
#[derive(Debug)]
pub enum PreTokenizer {
    /// Splits with a matcher; `invert` swaps matches and the text between them.
    Split {
        matcher: Matcher,
        behavior: Behavior,
        invert: bool,
    },
    /// Spaces become `replacement`, which is prepended per `prepend` (unless the word already
    /// starts with it); with `split`, each `replacement` starts a new word.
    Metaspace {
        replacement: char,
        prepend: PrependScheme,
        split: bool,
    },
    /// Prepends a space (if `add_prefix_space` and the word does not start with one), then
    /// splits with [`BYTE_LEVEL_PATTERN`] if `regex` is set; the model then sees bytes.
    ByteLevel {
        add_prefix_space: bool,
        regex: Option<Matcher>,
    },
}

/// The words of a stretch between pre-tokenizer steps, as byte ranges into text buffers (the
/// normalized stretch, plus one buffer per word a step rewrote): splitting allocates nothing.
struct Words {
    bufs: Vec<String>,
    items: Vec<WordRef>,
}

/// One word: `bufs[buf][range]`, and whether it starts at offset 0 of the input.
#[derive(Clone)]
struct WordRef {
    buf: usize,
    range: Range<usize>,
    at_origin: bool,
}

impl Words {
    fn text(&self, w: &WordRef) -> &str {
        &self.bufs[w.buf][w.range.clone()]
    }
}

impl PreTokenizer {
    fn apply(&self, words: &mut Words, scratch: &mut Vec<(Range<usize>, bool)>) -> Result<()> {
        let items = std::mem::take(&mut words.items);
        let mut out = Vec::with_capacity(items.len() * 2);
        for w in items {
            match self {
                PreTokenizer::Split {
                    matcher,
                    behavior,
                    invert,
                } => {
                    matcher.find(words.text(&w), *invert, scratch)?;
                    push_parts(&mut out, &w, scratch, *behavior);
                }
                PreTokenizer::Metaspace {
                    replacement,
                    prepend,
                    split,
                } => {
                    let mut text = words
                        .text(&w)
                        .replace(' ', replacement.encode_utf8(&mut [0; 4]));
                    let add = match prepend {
                        PrependScheme::Always => true,
                        PrependScheme::First => w.at_origin,
                        PrependScheme::Never => false,
                    };
                    if add && !text.starts_with(*replacement) {
                        text.insert(0, *replacement);
                    }
                    let w = WordRef {
                        buf: words.bufs.len(),
                        range: 0..text.len(),
                        at_origin: w.at_origin,
                    };
                    words.bufs.push(text);
                    if *split {
                        Matcher::Char(*replacement).find(words.text(&w), false, scratch)?;
                        push_parts(&mut out, &w, scratch, Behavior::MergedWithNext);
                    } else if !w.range.is_empty() {
                        out.push(w);
                    }
                }
                PreTokenizer::ByteLevel {
                    add_prefix_space,
                    regex,
                } => {
                    let mut w = w;
                    if *add_prefix_space && !words.text(&w).starts_with(' ') {
                        let text = format!(" {}", words.text(&w));
                        w = WordRef {
                            buf: words.bufs.len(),
                            range: 0..text.len(),
                            at_origin: w.at_origin,
                        };
                        words.bufs.push(text);
                    }
                    match regex {
                        Some(re) => {
                            re.find(words.text(&w), false, scratch)?;
                            push_parts(&mut out, &w, scratch, Behavior::Isolated);
                        }
                        None if !w.range.is_empty() => out.push(w),
                        None => {}
                    }
                }
            }
        }
        words.items = out;
        Ok(())
    }
}

/// Appends the non-empty parts a split of `w` keeps.
fn push_parts(
    out: &mut Vec<WordRef>,
    w: &WordRef,
    parts: &mut Vec<(Range<usize>, bool)>,
    behavior: Behavior,
) {
    for r in split_parts(std::mem::take(parts), behavior) {
        if r.start < r.end {
            out.push(WordRef {
                buf: w.buf,
                at_origin: w.at_origin && r.start == 0,
                range: w.range.start + r.start..w.range.start + r.end,
            });
        }
    }
}

/// `tokenizers`' BPE model: merges applied in the order of the merge list.
#[derive(Debug)]
pub struct MergeModel {
    /// Token (raw bytes in byte-level mode, else the token's UTF-8 text) -> id.
    tokens: FxHashMap<Vec<u8>, Rank>,
    /// (left id, right id) -> (position in the merge list, merged id).
    merges: FxHashMap<(Rank, Rank), (u32, Rank)>,
    /// Words are sequences of bytes (after `ByteLevel`) rather than characters.
    byte_level: bool,
    /// Ids of `<0x00>`..`<0xFF>`, when `byte_fallback` is set and all 256 exist.
    fallback: Option<Box<[Rank; 256]>>,
    unk: Option<Rank>,
    fuse_unk: bool,
    ignore_merges: bool,
}

/// A symbol of a word being merged: its id, byte length, and neighbours (linked list).
#[derive(Clone, Copy)]
struct Symbol {
    id: Rank,
    prev: u32,
    next: u32,
    len: u32,
}

const NONE: u32 = u32::MAX;

impl MergeModel {
    /// Encodes one word (already normalized and pre-tokenized) and appends its ids.
    ///
    /// ```
    /// # use tokforge::hf::MergeModel;
    /// // Merges in list order: ("b", "c") before ("a", "b"), so "abc" -> a|bc.
    /// let m = MergeModel::new(
    ///     vec![(b"a".to_vec(), 0), (b"b".to_vec(), 1), (b"c".to_vec(), 2), (b"bc".to_vec(), 3), (b"ab".to_vec(), 4)],
    ///     &[(1, 2), (0, 1)], false, None, None, false, false,
    /// ).unwrap();
    /// let mut out = vec![];
    /// m.encode_word(b"abc", &mut out).unwrap();
    /// assert_eq!(out, vec![0, 3]);
    /// ```
    pub fn encode_word(&self, word: &[u8], out: &mut Vec<Rank>) -> Result<()> {
        if word.is_empty() {
            return Ok(());
        }
        if self.ignore_merges {
            if let Some(&id) = self.tokens.get(word) {
                out.push(id);
                return Ok(());
            }
        }
        let mut syms: Vec<Symbol> = Vec::with_capacity(word.len());
        let push = |syms: &mut Vec<Symbol>, id: Rank, len: usize| {
            let k = syms.len() as u32;
            syms.push(Symbol {
                id,
                prev: if k == 0 { NONE } else { k - 1 },
                next: NONE,
                len: len as u32,
            });
            if k > 0 {
                syms[k as usize - 1].next = k;
            }
        };
        let mut pending_unk: Option<(Rank, usize)> = None;
        let mut i = 0;
        while i < word.len() {
            let w = if self.byte_level {
                1
            } else {
                crate::util::utf8_width(word[i]).min(word.len() - i)
            };
            let ch = &word[i..i + w];
            i += w;
            if let Some(&id) = self.tokens.get(ch) {
                if let Some((u, l)) = pending_unk.take() {
                    push(&mut syms, u, l);
                }
                push(&mut syms, id, w);
                continue;
            }
            if let Some(fb) = &self.fallback {
                if let Some((u, l)) = pending_unk.take() {
                    push(&mut syms, u, l);
                }
                for &b in ch {
                    push(&mut syms, fb[b as usize], 1);
                }
                continue;
            }
            let Some(unk) = self.unk else {
                return Err(TokforgeError::NotAToken(format!(
                    "{} (not in the vocabulary, which has no byte fallback and no unknown token)",
                    String::from_utf8_lossy(ch)
                )));
            };
            pending_unk = match pending_unk {
                Some((u, l)) if self.fuse_unk => Some((u, l + w)),
                Some((u, l)) => {
                    push(&mut syms, u, l);
                    Some((unk, w))
                }
                None => Some((unk, w)),
            };
        }
        if let Some((u, l)) = pending_unk {
            push(&mut syms, u, l);
        }
        self.merge_symbols(&mut syms);
        let mut k = 0u32;
        while k != NONE {
            out.push(syms[k as usize].id);
            k = syms[k as usize].next;
        }
        Ok(())
    }

    /// Applies merges, always the earliest in the list and then the leftmost, with a heap of
    /// candidate merges invalidated lazily (O(n log n) in the word length).
    fn merge_symbols(&self, syms: &mut [Symbol]) {
        if syms.len() < 2 {
            return;
        }
        let mut heap: BinaryHeap<Reverse<(u32, u32, Rank)>> = BinaryHeap::new();
        for k in 0..syms.len() - 1 {
            if let Some(&(p, new)) = self.merges.get(&(syms[k].id, syms[k + 1].id)) {
                heap.push(Reverse((p, k as u32, new)));
            }
        }
        while let Some(Reverse((_, pos, new))) = heap.pop() {
            let left = syms[pos as usize];
            if left.len == 0 || left.next == NONE {
                continue;
            }
            let right = syms[left.next as usize];
            match self.merges.get(&(left.id, right.id)) {
                Some(&(_, id)) if id == new => {}
                _ => continue,
            }
            // Merge right into left.
            let r = left.next as usize;
            syms[pos as usize].id = new;
            syms[pos as usize].len += right.len;
            syms[pos as usize].next = right.next;
            syms[r].len = 0;
            if right.next != NONE {
                syms[right.next as usize].prev = pos;
            }
            let merged = syms[pos as usize];
            if merged.prev != NONE {
                let p = syms[merged.prev as usize];
                if let Some(&(q, id)) = self.merges.get(&(p.id, new)) {
                    heap.push(Reverse((q, merged.prev, id)));
                }
            }
            if merged.next != NONE {
                let n = syms[merged.next as usize];
                if let Some(&(q, id)) = self.merges.get(&(new, n.id)) {
                    heap.push(Reverse((q, pos, id)));
                }
            }
        }
        // Re-link from the first symbol: symbol 0 is never merged away (merges keep the left).
    }

    /// A model from tokens (bytes or UTF-8 text, see `byte_level`) with their ids and merges
    /// as pairs of ids, in priority order. The merged token of `(a, b)` must exist.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tokens: Vec<(Vec<u8>, Rank)>,
        merges: &[(Rank, Rank)],
        byte_level: bool,
        fallback: Option<Box<[Rank; 256]>>,
        unk: Option<Rank>,
        fuse_unk: bool,
        ignore_merges: bool,
    ) -> Result<Self> {
        let mut bytes_of: FxHashMap<Rank, &[u8]> = FxHashMap::default();
        for (b, id) in &tokens {
            bytes_of.insert(*id, b);
        }
        let mut map: FxHashMap<Vec<u8>, Rank> = FxHashMap::default();
        for (b, id) in &tokens {
            map.insert(b.clone(), *id);
        }
        let mut pairs = FxHashMap::default();
        for (k, &(a, b)) in merges.iter().enumerate() {
            let (Some(x), Some(y)) = (bytes_of.get(&a), bytes_of.get(&b)) else {
                return Err(TokforgeError::InvalidVocab(format!(
                    "merge {k} uses an id that is not a token ({a}, {b})"
                )));
            };
            let joined = [*x, *y].concat();
            let Some(&new) = map.get(&joined) else {
                return Err(TokforgeError::InvalidVocab(format!(
                    "merge {k} makes {:?}, which is not in the vocabulary",
                    String::from_utf8_lossy(&joined)
                )));
            };
            // The first occurrence of a pair wins, as when `tokenizers` builds its map.
            pairs.entry((a, b)).or_insert((k as u32, new));
        }
        Ok(MergeModel {
            tokens: map,
            merges: pairs,
            byte_level,
            fallback,
            unk,
            fuse_unk,
            ignore_merges,
        })
    }

    /// Whether cutting a word before each `c` never changes its ids: true when `c` is a token,
    /// no merge has a right part starting with `c` (so no token made by merges holds `c` after
    /// its first character, and no merge can join across the cut), and whole-word lookup
    /// (`ignore_merges`) is off (it would look up the pieces instead of the word). Unknown
    /// characters cannot fuse across the cut either, since `c` is known.
    pub fn splits_before(&self, c: char) -> bool {
        let mut buf = [0u8; 4];
        let c = c.encode_utf8(&mut buf).as_bytes();
        if self.byte_level || self.ignore_merges || !self.tokens.contains_key(c) {
            return false;
        }
        let mut starts_with_c: rustc_hash::FxHashSet<Rank> = Default::default();
        for (t, &id) in &self.tokens {
            if t.starts_with(c) {
                starts_with_c.insert(id);
            }
        }
        !self.merges.keys().any(|(_, b)| starts_with_c.contains(b))
    }

    /// The merges as (left, right, merged) ids in priority order (a pair listed twice keeps
    /// its first place, as when encoding).
    pub fn merge_list(&self) -> Vec<(Rank, Rank, Rank)> {
        let mut v: Vec<(u32, Rank, Rank, Rank)> = self
            .merges
            .iter()
            .map(|(&(a, b), &(p, new))| (p, a, b, new))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, a, b, new)| (a, b, new)).collect()
    }
}

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
    normalizers: Vec<Normalizer>,
    pretokenizers: Vec<PreTokenizer>,
    model: MergeModel,
    /// Characters `content` stripped from the start / end of decoded text (at most start/stop).
    strip: Option<(char, usize, usize)>,
    /// Added tokens whose text the decoder changes (`tokenizers` decodes them through the
    /// decoder chain too: SentencePiece's `<unk>` becomes ` ⁇ `, `<s>` nothing).
    special_decoded: FxHashMap<Rank, Vec<u8>>,
    /// The file this was loaded from, kept to save and pickle it unchanged.
    source: Vec<u8>,
    /// `▁` when words may be cut before each `▁` without changing any id (see
    /// [`MergeModel::splits_before`]): SentencePiece-style models encode a whole stretch as one
    /// word, and the cut pieces are short and repeat, so they hit the piece cache.
    cut_before: Option<char>,
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
        let mut s = text.to_string();
        for n in &self.normalizers {
            s = n.apply(s)?;
        }
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
    pub fn decode(&self, vocab: &crate::Vocab, ids: &[Rank]) -> Result<Vec<u8>> {
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

/// What [`parse`] returns: the pipeline, and the vocabulary's parts for [`crate::Vocab::new`]
/// (ordinary tokens as decoded bytes, added tokens as specials, byte-fallback ids).
pub struct Parsed {
    pub pipeline: HfPipeline,
    pub ordinary: Vec<(Vec<u8>, Rank)>,
    pub specials: Vec<(String, Rank)>,
    pub fallback: Option<Vec<Rank>>,
}

fn bad(path: &str, reason: impl Into<String>) -> TokforgeError {
    TokforgeError::BadVocabFile {
        path: path.to_string(),
        line: 0,
        reason: reason.into(),
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn flag(v: &Value, key: &str, default: bool, path: &str, what: &str) -> Result<bool> {
    match field(v, key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(path, format!("{what}: {key:?} must be true or false"))),
    }
}

fn string<'a>(v: &'a Value, key: &str, path: &str, what: &str) -> Result<&'a str> {
    field(v, key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(path, format!("{what}: {key:?} must be a string")))
}

fn kind<'a>(v: &'a Value, path: &str, what: &str) -> Result<&'a str> {
    string(v, "type", path, what)
}

/// The steps of a component that may be a `Sequence` of components.
fn flatten<'a>(v: &'a Value, list_key: &str, path: &str, what: &str) -> Result<Vec<&'a Value>> {
    if kind(v, path, what)? == "Sequence" {
        let items = field(v, list_key)
            .and_then(Value::as_array)
            .ok_or_else(|| bad(path, format!("{what} Sequence needs a {list_key:?} list")))?;
        let mut out = Vec::new();
        for item in items {
            out.extend(flatten(item, list_key, path, what)?);
        }
        Ok(out)
    } else {
        Ok(vec![v])
    }
}

fn regex_or_string(v: &Value, path: &str, what: &str) -> Result<Matcher> {
    let p = field(v, "pattern").ok_or_else(|| bad(path, format!("{what} needs a pattern")))?;
    if let Some(s) = p.get("String").and_then(Value::as_str) {
        return Ok(Matcher::Literal(s.to_string()));
    }
    if let Some(r) = p.get("Regex").and_then(Value::as_str) {
        return Ok(Matcher::Pattern(
            compile(r).map_err(|e| bad(path, format!("{what}: {e}")))?,
        ));
    }
    Err(bad(
        path,
        format!("{what}: pattern must be {{\"String\": ..}} or {{\"Regex\": ..}}"),
    ))
}

fn parse_normalizer(v: &Value, path: &str, sentencepiece: bool) -> Result<Vec<Normalizer>> {
    let mut out = Vec::new();
    for step in flatten(v, "normalizers", path, "normalizer")? {
        let t = kind(step, path, "normalizer")?;
        out.push(match t {
            "NFC" => Normalizer::Nfc,
            "NFD" => Normalizer::Nfd,
            "NFKC" => Normalizer::Nfkc,
            "NFKD" => Normalizer::Nfkd,
            "Lowercase" => Normalizer::Lowercase,
            "Precompiled" => {
                use base64::Engine;
                let b64 = field(step, "precompiled_charsmap")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| bad(path, format!("Precompiled: charsmap is not base64: {e}")))?;
                match Charsmap::parse(&raw).map_err(|e| bad(path, e))? {
                    Some(map) => Normalizer::Precompiled {
                        map,
                        longest: sentencepiece,
                    },
                    None => continue,
                }
            }
            "Strip" => Normalizer::Strip {
                left: flag(step, "strip_left", true, path, "Strip")?,
                right: flag(step, "strip_right", true, path, "Strip")?,
            },
            "Prepend" => Normalizer::Prepend(string(step, "prepend", path, "Prepend")?.into()),
            "Replace" => {
                let content = string(step, "content", path, "Replace")?.to_string();
                match regex_or_string(step, path, "Replace normalizer")? {
                    Matcher::Literal(pattern) => Normalizer::ReplaceStr { pattern, content },
                    Matcher::Pattern(pattern) => Normalizer::ReplaceMatches { pattern, content },
                    Matcher::Chars(_) | Matcher::Char(_) => {
                        unreachable!("regex_or_string makes only Literal and Pattern")
                    }
                }
            }
            other => {
                return Err(bad(
                    path,
                    format!(
                        "normalizer {other:?} is not supported (supported: Sequence, NFC, NFD, \
                         NFKC, NFKD, Lowercase, Strip, Prepend, Replace, Precompiled)"
                    ),
                ))
            }
        });
    }
    Ok(out)
}

fn behavior(step: &Value, path: &str) -> Result<Behavior> {
    Ok(match field(step, "behavior").and_then(Value::as_str) {
        Some("Removed") => Behavior::Removed,
        Some("Isolated") => Behavior::Isolated,
        Some("MergedWithPrevious") => Behavior::MergedWithPrevious,
        Some("MergedWithNext") => Behavior::MergedWithNext,
        Some("Contiguous") => Behavior::Contiguous,
        other => {
            return Err(bad(
                path,
                format!("Split: unknown behavior {other:?} (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)"),
            ))
        }
    })
}

fn prepend_scheme(step: &Value, path: &str) -> Result<PrependScheme> {
    match field(step, "prepend_scheme").and_then(Value::as_str) {
        Some("always") => Ok(PrependScheme::Always),
        Some("first") => Ok(PrependScheme::First),
        Some("never") => Ok(PrependScheme::Never),
        None => Ok(
            if flag(step, "add_prefix_space", true, path, "Metaspace")? {
                PrependScheme::Always
            } else {
                PrependScheme::Never
            },
        ),
        Some(other) => Err(bad(
            path,
            format!("Metaspace: unknown prepend_scheme {other:?} (always, first, never)"),
        )),
    }
}

fn replacement(step: &Value, path: &str, what: &str) -> Result<char> {
    let s = string(step, "replacement", path, what)?;
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(bad(
            path,
            format!("{what}: replacement must be one character"),
        )),
    }
}

fn parse_pretokenizer(v: &Value, path: &str) -> Result<Vec<PreTokenizer>> {
    let mut out = Vec::new();
    for step in flatten(v, "pretokenizers", path, "pre_tokenizer")? {
        let t = kind(step, path, "pre_tokenizer")?;
        out.push(match t {
            "Split" => PreTokenizer::Split {
                matcher: regex_or_string(step, path, "Split")?,
                behavior: behavior(step, path)?,
                invert: flag(step, "invert", false, path, "Split")?,
            },
            "Metaspace" => PreTokenizer::Metaspace {
                replacement: replacement(step, path, "Metaspace")?,
                prepend: prepend_scheme(step, path)?,
                split: flag(step, "split", true, path, "Metaspace")?,
            },
            "ByteLevel" => PreTokenizer::ByteLevel {
                add_prefix_space: flag(step, "add_prefix_space", true, path, "ByteLevel")?,
                regex: if flag(step, "use_regex", true, path, "ByteLevel")? {
                    Some(Matcher::Pattern(compile(BYTE_LEVEL_PATTERN)?))
                } else {
                    None
                },
            },
            "Digits" => PreTokenizer::Split {
                matcher: Matcher::Chars(char::is_numeric),
                behavior: if flag(step, "individual_digits", false, path, "Digits")? {
                    Behavior::Isolated
                } else {
                    Behavior::Contiguous
                },
                invert: false,
            },
            "WhitespaceSplit" => PreTokenizer::Split {
                matcher: Matcher::Chars(char::is_whitespace),
                behavior: Behavior::Removed,
                invert: false,
            },
            "Whitespace" => PreTokenizer::Split {
                matcher: Matcher::Pattern(compile(r"\w+|[^\w\s]+")?),
                behavior: Behavior::Removed,
                invert: true,
            },
            other => {
                return Err(bad(
                    path,
                    format!(
                        "pre_tokenizer {other:?} is not supported (supported: Sequence, Split, \
                         Metaspace, ByteLevel, Digits, WhitespaceSplit, Whitespace)"
                    ),
                ))
            }
        });
    }
    if let Some(k) = out
        .iter()
        .position(|p| matches!(p, PreTokenizer::ByteLevel { .. }))
    {
        if k + 1 != out.len() {
            return Err(bad(
                path,
                "a ByteLevel pre-tokenizer followed by other pre-tokenizers is not supported",
            ));
        }
    }
    Ok(out)
}

/// How the decoder chain turns each token's text into bytes, and the final strip.
struct Decoding {
    steps: Vec<DecodeStep>,
    strip: Option<(char, usize, usize)>,
}

enum DecodeStep {
    ByteLevel,
    ByteFallback,
    Replace(String, String),
    /// `Metaspace` decoding: the replacement character becomes a space.
    Metaspace(char),
    /// A `Strip` before `Fuse`: applies to every token.
    StripEach(char, usize, usize),
}

fn parse_decoder(v: Option<&Value>, path: &str) -> Result<Decoding> {
    let mut d = Decoding {
        steps: Vec::new(),
        strip: None,
    };
    let Some(v) = v else { return Ok(d) };
    let mut fused = false;
    for step in flatten(v, "decoders", path, "decoder")? {
        match kind(step, path, "decoder")? {
            "ByteLevel" => d.steps.push(DecodeStep::ByteLevel),
            "ByteFallback" => d.steps.push(DecodeStep::ByteFallback),
            "Fuse" => fused = true,
            "Replace" => {
                let content = string(step, "content", path, "Replace decoder")?.to_string();
                match regex_or_string(step, path, "Replace decoder")? {
                    Matcher::Literal(p) => d.steps.push(DecodeStep::Replace(p, content)),
                    _ => {
                        return Err(bad(
                            path,
                            "a Replace decoder with a regex pattern is not supported",
                        ))
                    }
                }
            }
            "Metaspace" => {
                let r = replacement(step, path, "Metaspace decoder")?;
                d.steps.push(DecodeStep::Metaspace(r));
                if prepend_scheme(step, path)? != PrependScheme::Never {
                    d.strip = Some((' ', 1, 0));
                }
            }
            "Strip" => {
                let content = string(step, "content", path, "Strip decoder")?;
                let mut cs = content.chars();
                let c = match (cs.next(), cs.next()) {
                    (Some(c), None) => c,
                    _ => return Err(bad(path, "Strip decoder: content must be one character")),
                };
                let n = |k: &str| field(step, k).and_then(Value::as_u64).unwrap_or(0) as usize;
                if fused {
                    d.strip = Some((c, n("start"), n("stop")));
                } else {
                    d.steps
                        .push(DecodeStep::StripEach(c, n("start"), n("stop")));
                }
            }
            other => {
                return Err(bad(
                    path,
                    format!(
                        "decoder {other:?} is not supported (supported: Sequence, ByteLevel, \
                         ByteFallback, Fuse, Replace, Metaspace, Strip)"
                    ),
                ))
            }
        }
    }
    Ok(d)
}

/// `<0xNN>` -> NN.
fn fallback_byte(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

impl Decoding {
    fn decode(&self, token: &str, unmap: &FxHashMap<char, u8>) -> Vec<u8> {
        let mut b = token.as_bytes().to_vec();
        for step in &self.steps {
            b = match step {
                DecodeStep::ByteLevel => unmap_bytes(&String::from_utf8_lossy(&b), unmap),
                DecodeStep::ByteFallback => {
                    match std::str::from_utf8(&b).ok().and_then(fallback_byte) {
                        Some(x) => vec![x],
                        None => b,
                    }
                }
                DecodeStep::Replace(p, c) => replace_bytes(&b, p.as_bytes(), c.as_bytes()),
                DecodeStep::Metaspace(r) => {
                    let mut buf = [0u8; 4];
                    replace_bytes(&b, r.encode_utf8(&mut buf).as_bytes(), b" ")
                }
                DecodeStep::StripEach(c, start, stop) => {
                    let s = String::from_utf8_lossy(&b).into_owned();
                    let mut t = &s[..];
                    for _ in 0..*start {
                        match t.strip_prefix(*c) {
                            Some(r) => t = r,
                            None => break,
                        }
                    }
                    for _ in 0..*stop {
                        match t.strip_suffix(*c) {
                            Some(r) => t = r,
                            None => break,
                        }
                    }
                    t.as_bytes().to_vec()
                }
            };
        }
        b
    }
}

fn replace_bytes(b: &[u8], p: &[u8], c: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b.to_vec();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(p) {
            out.extend_from_slice(c);
            i += p.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Reads a `tokenizer.json` document. `path` names it in errors. With `sentencepiece`, a
/// `Precompiled` normalizer follows `sentencepiece`'s longest-match rule instead of
/// `tokenizers`' per-grapheme one (for tokenizers converted from a `.model` file).
pub fn parse(data: &[u8], path: &str, sentencepiece: bool) -> Result<Parsed> {
    let root: Value =
        serde_json::from_slice(data).map_err(|e| bad(path, format!("not valid JSON: {e}")))?;
    let model = field(&root, "model").ok_or_else(|| bad(path, "no \"model\" object"))?;
    match field(model, "type").and_then(Value::as_str) {
        Some("BPE") | None if model.get("merges").is_some() => {}
        Some(other) => {
            return Err(bad(
                path,
                format!("model type {other:?} is not supported (only BPE)"),
            ))
        }
        None => return Err(bad(path, "the model has no \"type\" and no merges")),
    }
    if let Some(d) = field(model, "dropout").and_then(Value::as_f64) {
        if d > 0.0 {
            return Err(bad(
                path,
                format!("BPE dropout ({d}) makes encoding random; tokforge does not support it"),
            ));
        }
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if field(model, key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(bad(path, format!("BPE {key} is not supported")));
        }
    }
    let vocab_obj = field(model, "vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| bad(path, "model.vocab must be an object of token -> id"))?;
    let mut vocab: Vec<(String, Rank)> = Vec::with_capacity(vocab_obj.len());
    let mut id_of: FxHashMap<&str, Rank> = FxHashMap::default();
    for (tok, id) in vocab_obj {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .filter(|&i| i != u32::MAX)
            .ok_or_else(|| bad(path, format!("token {tok:?} has id {id}, not a u32")))?;
        id_of.insert(tok, id);
        vocab.push((tok.clone(), id));
    }

    let normalizers = match field(&root, "normalizer") {
        Some(n) => parse_normalizer(n, path, sentencepiece)?,
        None => Vec::new(),
    };
    let pretokenizers = match field(&root, "pre_tokenizer") {
        Some(p) => parse_pretokenizer(p, path)?,
        None => Vec::new(),
    };
    let byte_level = pretokenizers
        .iter()
        .any(|p| matches!(p, PreTokenizer::ByteLevel { .. }));
    let decoding = parse_decoder(field(&root, "decoder"), path)?;
    let unmap = char_to_byte();

    // Added tokens: cut out before everything else, as special tokens.
    let mut specials: Vec<(String, Rank)> = Vec::new();
    let mut special_ids: FxHashMap<Rank, ()> = FxHashMap::default();
    if let Some(added) = field(&root, "added_tokens") {
        let list = added
            .as_array()
            .ok_or_else(|| bad(path, "added_tokens must be a list"))?;
        for (k, t) in list.iter().enumerate() {
            let what = format!("added_tokens[{k}]");
            let content = string(t, "content", path, &what)?;
            let id = field(t, "id")
                .and_then(Value::as_u64)
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| bad(path, format!("{what}: id must be a u32")))?;
            for key in ["lstrip", "rstrip", "single_word"] {
                if flag(t, key, false, path, &what)? {
                    return Err(bad(
                        path,
                        format!("{what} ({content:?}) sets {key}, which tokforge does not support"),
                    ));
                }
            }
            if content.is_empty() {
                return Err(bad(path, format!("{what} is empty")));
            }
            if let Some(&v) = id_of.get(content) {
                if v != id {
                    return Err(bad(
                        path,
                        format!("{what} {content:?} has id {id} but the vocabulary says {v}"),
                    ));
                }
            }
            if special_ids.insert(id, ()).is_none() {
                specials.push((content.to_string(), id));
            }
        }
    }

    // Byte fallback: the 256 <0xNN> tokens.
    let byte_fallback = flag(model, "byte_fallback", false, path, "model")?;
    let mut fallback_ids: Option<Vec<Rank>> = None;
    if byte_fallback {
        let ids: Option<Vec<Rank>> = (0..=255u8)
            .map(|b| id_of.get(format!("<0x{b:02X}>").as_str()).copied())
            .collect();
        // `tokenizers` falls back to the unknown token when any of the 256 is missing.
        fallback_ids = ids;
    }
    // Without a ByteFallback decoder, `tokenizers` decodes `<0x0A>` as that text: then they are
    // ordinary tokens to the decoder (the model still falls back to them).
    let decodes_bytes = decoding
        .steps
        .iter()
        .any(|s| matches!(s, DecodeStep::ByteFallback));
    let vocab_fallback = fallback_ids.clone().filter(|_| decodes_bytes);
    let is_fallback = |id: Rank| vocab_fallback.as_ref().is_some_and(|f| f.contains(&id));

    let unk = match field(model, "unk_token").and_then(Value::as_str) {
        Some(u) => Some(
            *id_of
                .get(u)
                .ok_or_else(|| bad(path, format!("unk_token {u:?} is not in the vocabulary")))?,
        ),
        None => None,
    };

    // Model tokens: raw bytes (byte-level) or the token text.
    let model_tokens: Vec<(Vec<u8>, Rank)> = vocab
        .iter()
        .map(|(t, id)| {
            let key = if byte_level {
                unmap_bytes(t, &unmap)
            } else {
                t.as_bytes().to_vec()
            };
            (key, *id)
        })
        .collect();
    let merges_v = field(model, "merges")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(path, "model.merges must be a list"))?;
    let mut merges: Vec<(Rank, Rank)> = Vec::with_capacity(merges_v.len());
    for (k, m) in merges_v.iter().enumerate() {
        let (a, b) = match m {
            Value::String(s) => s
                .split_once(' ')
                .ok_or_else(|| bad(path, format!("merges[{k}] {s:?} is not \"left right\"")))?,
            Value::Array(p) if p.len() == 2 => match (p[0].as_str(), p[1].as_str()) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(bad(path, format!("merges[{k}] is not two strings"))),
            },
            _ => return Err(bad(path, format!("merges[{k}] is not a pair"))),
        };
        let look = |s: &str| {
            id_of.get(s).copied().ok_or_else(|| {
                bad(
                    path,
                    format!("merges[{k}] uses {s:?}, which is not in the vocabulary"),
                )
            })
        };
        let (ia, ib) = (look(a)?, look(b)?);
        if !id_of.contains_key(format!("{a}{b}").as_str()) {
            return Err(bad(
                path,
                format!(
                    "merges[{k}] makes {:?}, which is not in the vocabulary",
                    format!("{a}{b}")
                ),
            ));
        }
        merges.push((ia, ib));
    }
    let fallback_box = fallback_ids.as_ref().map(|f| {
        let mut arr = Box::new([0 as Rank; 256]);
        arr.copy_from_slice(f);
        arr
    });
    let model = MergeModel::new(
        model_tokens,
        &merges,
        byte_level,
        fallback_box,
        unk,
        flag(model, "fuse_unk", false, path, "model")?,
        flag(model, "ignore_merges", false, path, "model")?,
    )
    .map_err(|e| bad(path, e.to_string()))?;

    // The vocabulary tokforge decodes with: every model token that is not an added token or a
    // byte-fallback token, as its decoded bytes.
    let mut ordinary = Vec::with_capacity(vocab.len());
    let mut seen: FxHashMap<Vec<u8>, Rank> = FxHashMap::default();
    vocab.sort_by_key(|(_, id)| *id);
    for (t, id) in &vocab {
        if special_ids.contains_key(id) || is_fallback(*id) {
            continue;
        }
        let b = decoding.decode(t, &unmap);
        if b.is_empty() {
            return Err(bad(
                path,
                format!("token {t:?} (id {id}) decodes to nothing; tokforge cannot represent it"),
            ));
        }
        if let Some(prev) = seen.insert(b.clone(), *id) {
            return Err(bad(
                path,
                format!(
                    "tokens {prev} and {id} decode to the same bytes {:?}; tokforge needs them \
                     distinct",
                    String::from_utf8_lossy(&b)
                ),
            ));
        }
        ordinary.push((b, *id));
    }
    let cut_before = Some('▁').filter(|&c| model.splits_before(c));
    Ok(Parsed {
        pipeline: HfPipeline {
            normalizers,
            pretokenizers,
            model,
            strip: decoding.strip,
            special_decoded: specials
                .iter()
                .filter_map(|(t, id)| {
                    let b = decoding.decode(t, &unmap);
                    (b != t.as_bytes()).then_some((*id, b))
                })
                .collect(),
            source: data.to_vec(),
            cut_before,
        },
        ordinary,
        specials,
        fallback: vocab_fallback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = byte_to_char();
        assert_eq!(t[b'!' as usize], '!');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[0], 'Ā');
        let unmap = char_to_byte();
        assert_eq!(unmap.len(), 256);
        assert_eq!(unmap_bytes("Ġhello", &unmap), b" hello");
    }

    #[test]
    fn merge_priority_is_the_list_order_not_the_id() {
        // "abc": (b,c) is listed first, so a|bc even though "ab" has the smaller id.
        let toks = vec![
            (b"a".to_vec(), 0),
            (b"b".to_vec(), 1),
            (b"c".to_vec(), 2),
            (b"ab".to_vec(), 3),
            (b"bc".to_vec(), 4),
        ];
        let m = MergeModel::new(toks, &[(1, 2), (0, 1)], false, None, None, false, false).unwrap();
        let mut out = vec![];
        m.encode_word(b"abc", &mut out).unwrap();
        assert_eq!(out, vec![0, 4]);
        out.clear();
        m.encode_word(b"abab", &mut out).unwrap();
        assert_eq!(out, vec![3, 3]);
    }

    #[test]
    fn cutting_before_the_meta_space_only_when_no_merge_crosses_it() {
        let m = |merges: &[(Rank, Rank)], ignore| {
            let toks = vec![
                ("▁".as_bytes().to_vec(), 0),
                (b"a".to_vec(), 1),
                ("▁a".as_bytes().to_vec(), 2),
                ("a▁".as_bytes().to_vec(), 3),
            ];
            MergeModel::new(toks, merges, false, None, None, false, ignore).unwrap()
        };
        assert!(m(&[(0, 1)], false).splits_before('▁'));
        assert!(!m(&[(0, 1), (1, 0)], false).splits_before('▁'));
        assert!(!m(&[(0, 1)], true).splits_before('▁'));
        assert!(!m(&[(0, 1)], false).splits_before('x'));
    }

    #[test]
    fn leftmost_first_among_equal_merges() {
        let toks = vec![(b"a".to_vec(), 0), (b"aa".to_vec(), 1)];
        let m = MergeModel::new(toks, &[(0, 0)], false, None, None, false, false).unwrap();
        let mut out = vec![];
        m.encode_word(b"aaa", &mut out).unwrap();
        assert_eq!(out, vec![1, 0]);
    }

    #[test]
    fn unknowns_fuse_or_fall_back_to_bytes() {
        let toks = vec![(b"a".to_vec(), 0), (b"<unk>".to_vec(), 1)];
        let m = MergeModel::new(toks.clone(), &[], false, None, Some(1), true, false).unwrap();
        let mut out = vec![];
        m.encode_word("aéüa".as_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 0]);
        let m = MergeModel::new(toks.clone(), &[], false, None, Some(1), false, false).unwrap();
        out.clear();
        m.encode_word("aéüa".as_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 1, 0]);
        let mut fb = Box::new([0 as Rank; 256]);
        for (b, slot) in fb.iter_mut().enumerate() {
            *slot = 10 + b as Rank;
        }
        let m = MergeModel::new(toks.clone(), &[], false, Some(fb), Some(1), true, false).unwrap();
        out.clear();
        m.encode_word("aé".as_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![0, 10 + 0xC3, 10 + 0xA9]);
        let m = MergeModel::new(toks, &[], false, None, None, false, false).unwrap();
        assert!(matches!(
            m.encode_word("é".as_bytes(), &mut out),
            Err(TokforgeError::NotAToken(_))
        ));
    }

    #[test]
    fn split_behaviors_match_tokenizers_docs() {
        // The examples of `SplitDelimiterBehavior` in tokenizers' docs, splitting on '-' in
        // "the-final--countdown".
        let s = "the-final--countdown";
        let m = Matcher::Literal("-".into());
        let run = |b| {
            let mut parts = Vec::new();
            m.find(s, false, &mut parts).unwrap();
            split_parts(parts, b)
                .into_iter()
                .filter(|r| r.start < r.end)
                .map(|r| &s[r])
                .collect::<Vec<_>>()
        };
        assert_eq!(run(Behavior::Removed), ["the", "final", "countdown"]);
        assert_eq!(
            run(Behavior::Isolated),
            ["the", "-", "final", "-", "-", "countdown"]
        );
        assert_eq!(
            run(Behavior::MergedWithPrevious),
            ["the-", "final-", "-", "countdown"]
        );
        assert_eq!(
            run(Behavior::MergedWithNext),
            ["the", "-final", "-", "-countdown"]
        );
        assert_eq!(
            run(Behavior::Contiguous),
            ["the", "-", "final", "--", "countdown"]
        );
    }

    #[test]
    fn bad_files_are_clear_errors() {
        for (doc, needle) in [
            (&b"{"[..], "not valid JSON"),
            (b"{}", "no \"model\""),
            (
                br#"{"model": {"type": "WordPiece", "vocab": {}}}"#,
                "only BPE",
            ),
            (
                br#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#,
                "not in the vocabulary",
            ),
            (
                br#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}}"#,
                "dropout",
            ),
            (
                br#"{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}"#,
                "not a u32",
            ),
        ] {
            let err = parse(doc, "t.json", false)
                .err()
                .expect("must fail")
                .to_string();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
            assert!(err.starts_with("t.json"), "{err}");
        }
    }
}
