//! The vocabulary: token byte strings and their ids. tiktoken's convention holds: an ordinary
//! token's id is its rank, and a lower rank means an earlier merge. Special tokens are strings
//! with ids of their own. A vocabulary whose base alphabet is characters rather than bytes may
//! also carry 256 byte-fallback tokens (`<0x00>`..`<0xFF>`, the SentencePiece / Llama
//! convention): they decode to one raw byte each and are emitted for characters that are not in
//! the vocabulary.
//!
//! # Lookup structures (what was tried and measured)
//!
//! Encoding asks two questions millions of times: "is this byte string a token, and which?"
//! (the whole-piece lookup, most pieces are one token) and "do these two adjacent tokens merge,
//! and into which?" (the merge loop). Profiling `cargo bench --bench encode` under `perf record`
//! with the first layout, an `FxHashMap<Vec<u8>, Rank>`, put 36% of cl100k encode time on
//! en_docs in `HashMap::get` and 24% in `memcmp`: every probe hashed the bytes one word at a time
//! and then followed the key's heap pointer to compare, a cache miss per lookup.
//!
//! Kept, after measuring:
//! - [`TokenMap`]: open addressing with linear probing, power-of-two capacity at most half full,
//!   16-byte slots holding the token's first 8 bytes inline, its length and its rank. The hash
//!   reads the first and last 8 bytes in at most two loads and one folded multiply, whatever the
//!   length; a token of up to 8 bytes (80% of cl100k's) is compared without leaving the slot,
//!   longer ones compare their remaining bytes against the flat decoding table.
//! - [`PairMap`]: `(left id, right id) -> merged id` for every split of every token into two
//!   tokens (233k entries for cl100k, 446k for o200k). Because every part in the merge loop is a
//!   token, "the concatenation of parts `a` and `b` is token `c`" is exactly
//!   `merged(a, b) == Some(c)`, and the loop never touches bytes after the first step. A probe
//!   is a multiply and a compare, behind a filter that answers most misses (see [`PairMap`]).
//! - two direct tables for the first step: the rank of each byte, and of each byte pair
//!   (65,536 entries, 256 KB).
//!
//! Numbers, before/after, are in `docs/performance.md`.

mod key;
mod pair_map;
mod token_map;

use rustc_hash::FxHashMap;

use crate::error::{Result, TokforgeError};

pub(crate) use key::{prefetch_read, tail8, PieceKey};
use pair_map::PairMap;
use token_map::TokenMap;

/// A token id. Ordinary tokens' ids are their merge ranks.
pub type Rank = u32;

/// How many ids past its token count a vocabulary (and a file) may use. A vocabulary's tables are sized by its
/// largest id, so without this bound one line such as `YQ== 4000000000` would make a 12-byte
/// file allocate gigabytes (or abort the process). Real files are dense (cl100k's and o200k's
/// gaps are a few dozen ids); a million spare ids is far more than any needs.
pub const MAX_ID_GAP: u64 = 1 << 20;

/// Token bytes <-> ids, plus special tokens and optional byte-fallback tokens.
#[derive(Debug, Clone)]
pub struct Vocab {
    /// Mergeable token bytes -> rank.
    map: TokenMap,
    /// (left rank, right rank) -> rank of their concatenation, for every such token.
    pairs: PairMap,
    /// Rank of each single byte (`NO_RANK` when the byte is not a token).
    byte_ranks: Box<[Rank; 256]>,
    /// Rank of each two-byte string `[a, b]` at index `a * 256 + b` (`NO_RANK` when none).
    byte_pairs: Box<[Rank]>,
    /// A number no other vocabulary built by this process has (clones share it: same tokens),
    /// for per-thread caches of answers that depend on the vocabulary.
    uid: u64,
    /// Special token text -> id, and its inverse.
    specials: FxHashMap<String, Rank>,
    special_ids: FxHashMap<Rank, String>,
    /// `fallback[b]` is the id of the `<0xbb>` token, when the vocabulary has byte fallback.
    fallback: Option<Box<[Rank; 256]>>,
    /// Decoding table over every id: the bytes of id `i` are `bytes[offsets[i]..offsets[i+1]]`,
    /// and `kind[i]` says whether `i` is used at all. Flat, so decode touches two arrays only.
    offsets: Vec<u32>,
    bytes: Vec<u8>,
    kind: Vec<TokenKind>,
    /// Whether every single byte is an ordinary token (byte-level BPE): then encoding starts
    /// from bytes; otherwise it starts from characters and needs byte fallback for unknowns.
    byte_level: bool,
}

/// What an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// No token has this id (tiktoken vocabularies have gaps before their special tokens).
    Unused,
    /// A mergeable token: its id is its rank.
    Ordinary,
    /// A special token such as `<|endoftext|>`.
    Special,
    /// A `<0xNN>` byte-fallback token.
    ByteFallback,
}

/// The most work [`Vocab::new`] spends indexing how tokens split into two: the sum, over
/// tokens, of the square of their length in bytes (each cut of a token is looked up, and a
/// lookup reads the part). cl100k needs about 10^7; a vocabulary past the limit is refused
/// rather than indexed for minutes, such as one whose merges chain `a`, `aa`, `aaa`... to
/// thousands of bytes (its tokens alone would take gigabytes).
pub const MAX_SPLIT_WORK: u64 = 1 << 33;

/// Refuses token lengths whose split index would cost more than [`MAX_SPLIT_WORK`], naming the
/// longest token. Loaders that derive tokens (from merges) call it on the lengths before
/// building any token.
pub fn check_token_lengths(lengths: impl IntoIterator<Item = u64>) -> Result<()> {
    let (mut work, mut longest, mut total) = (0u64, 0u64, 0u64);
    for len in lengths {
        work = work.saturating_add(len.saturating_mul(len));
        total = total.saturating_add(len);
        longest = longest.max(len);
    }
    if work > MAX_SPLIT_WORK {
        return Err(TokforgeError::InvalidVocab(format!(
            "the tokens are too long: the longest has {longest} bytes and all together {total}; \
             tokforge indexes a vocabulary with at most {MAX_SPLIT_WORK} for the sum of the \
             squares of its token lengths (this one has {work})"
        )));
    }
    Ok(())
}

impl Vocab {
    /// Builds a vocabulary from ordinary tokens with their ranks, special tokens with their ids,
    /// and optionally the ids of the 256 byte-fallback tokens (index = byte value).
    ///
    /// Rejects empty tokens, a token or a rank given twice, and ids shared between kinds.
    pub fn new(
        ranks: Vec<(Vec<u8>, Rank)>,
        specials: Vec<(String, Rank)>,
        fallback: Option<Vec<Rank>>,
    ) -> Result<Self> {
        check_token_lengths(ranks.iter().map(|(b, _)| b.len() as u64))?;
        let mut max_id: Option<Rank> = None;
        let mut bump = |r: Rank| max_id = Some(max_id.map_or(r, |m| m.max(r)));
        ranks.iter().for_each(|(_, r)| bump(*r));
        specials.iter().for_each(|(_, r)| bump(*r));
        if let Some(f) = &fallback {
            if f.len() != 256 {
                return Err(TokforgeError::InvalidVocab(format!(
                    "byte fallback needs 256 ids, got {}",
                    f.len()
                )));
            }
            f.iter().for_each(|r| bump(*r));
        }
        let n = max_id.map_or(0, |m| m as usize + 1);
        // The decoding table is sized by the largest id: one stray id near 2**32 would allocate
        // ~128 GB and abort the process. Vocabularies are dense (cl100k leaves a few dozen ids
        // unused), so allow at most `MAX_ID_GAP` unused ids, as the file readers do.
        let n_tokens = ranks.len() + specials.len() + fallback.as_ref().map_or(0, Vec::len);
        if n as u64 > n_tokens as u64 + MAX_ID_GAP || n > u32::MAX as usize {
            return Err(TokforgeError::InvalidVocab(format!(
                "the largest id, {}, is far beyond the {n_tokens} tokens given (ids may leave at \
                 most {} unused)",
                n - 1,
                MAX_ID_GAP
            )));
        }
        let mut table: Vec<Option<(TokenKind, Vec<u8>)>> = vec![None; n];
        let mut claim = |id: Rank, kind: TokenKind, b: Vec<u8>, what: &dyn Fn(&[u8]) -> String| {
            let slot = &mut table[id as usize];
            if let Some((k, _)) = slot {
                return Err(TokforgeError::InvalidVocab(format!(
                    "id {id} is used twice ({} and a {:?} token)",
                    what(&b),
                    k
                )));
            }
            *slot = Some((kind, b));
            Ok(())
        };

        let mut seen: FxHashMap<&[u8], Rank> =
            FxHashMap::with_capacity_and_hasher(ranks.len(), Default::default());
        for (bytes, rank) in &ranks {
            if bytes.is_empty() {
                return Err(TokforgeError::InvalidVocab(format!(
                    "token with rank {rank} is empty"
                )));
            }
            if bytes.len() > u32::MAX as usize {
                return Err(TokforgeError::InvalidVocab(
                    "token longer than 4 GiB".into(),
                ));
            }
            if let Some(prev) = seen.insert(bytes.as_slice(), *rank) {
                return Err(TokforgeError::InvalidVocab(format!(
                    "token {:?} appears twice, with ranks {prev} and {rank}",
                    show(bytes)
                )));
            }
        }
        drop(seen);
        let n_ordinary = ranks.len();
        for (bytes, rank) in ranks {
            claim(rank, TokenKind::Ordinary, bytes, &|b| {
                format!("token {:?}", show(b))
            })?;
        }
        let mut special_map = FxHashMap::default();
        let mut special_ids = FxHashMap::default();
        for (text, id) in specials {
            if text.is_empty() {
                return Err(TokforgeError::InvalidVocab(
                    "special token is the empty string".into(),
                ));
            }
            claim(id, TokenKind::Special, text.as_bytes().to_vec(), &|_| {
                format!("special {text:?}")
            })?;
            if special_map.insert(text.clone(), id).is_some() {
                return Err(TokforgeError::InvalidVocab(format!(
                    "special token {text:?} appears twice"
                )));
            }
            special_ids.insert(id, text);
        }
        let fallback = match fallback {
            Some(f) => {
                let mut arr = Box::new([0 as Rank; 256]);
                for (b, id) in f.into_iter().enumerate() {
                    claim(id, TokenKind::ByteFallback, vec![b as u8], &|_| {
                        format!("<0x{b:02X}>")
                    })?;
                    arr[b] = id;
                }
                Some(arr)
            }
            None => None,
        };

        let mut offsets = Vec::with_capacity(n + 1);
        let mut bytes = Vec::new();
        let mut kind = Vec::with_capacity(n);
        offsets.push(0u32);
        for slot in table {
            match slot {
                Some((k, b)) => {
                    bytes.extend_from_slice(&b);
                    kind.push(k);
                }
                None => kind.push(TokenKind::Unused),
            }
            let end = u32::try_from(bytes.len())
                .map_err(|_| TokforgeError::InvalidVocab("vocabulary bytes exceed 4 GiB".into()))?;
            offsets.push(end);
        }
        let mut map = TokenMap::with_capacity(n_ordinary);
        for (id, k) in kind.iter().enumerate() {
            if *k == TokenKind::Ordinary {
                let b = &bytes[offsets[id] as usize..offsets[id + 1] as usize];
                map.insert(b, id as Rank);
            }
        }
        let mut byte_ranks = Box::new([NO_RANK; 256]);
        let mut byte_pairs = vec![NO_RANK; 1 << 16].into_boxed_slice();
        let pairs = {
            let get = |b: &[u8]| map.get(b, &bytes, &offsets);
            for (b, slot) in byte_ranks.iter_mut().enumerate() {
                *slot = get(&[b as u8]).unwrap_or(NO_RANK);
            }
            for (ab, slot) in byte_pairs.iter_mut().enumerate() {
                *slot = get(&[(ab >> 8) as u8, ab as u8]).unwrap_or(NO_RANK);
            }
            // Every split of every token into two tokens. Counted first so the table is sized
            // once.
            let mut found: Vec<(Rank, Rank, Rank)> = Vec::with_capacity(n_ordinary * 3);
            for (id, k) in kind.iter().enumerate() {
                if *k != TokenKind::Ordinary {
                    continue;
                }
                let t = &bytes[offsets[id] as usize..offsets[id + 1] as usize];
                for cut in 1..t.len() {
                    if let (Some(a), Some(b)) = (get(&t[..cut]), get(&t[cut..])) {
                        found.push((a, b, id as Rank));
                    }
                }
            }
            let mut pairs = PairMap::with_capacity(found.len());
            for (a, b, c) in found {
                pairs.insert(a, b, c);
            }
            pairs
        };
        let byte_level = byte_ranks.iter().all(|&r| r != NO_RANK);
        static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Vocab {
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            map,
            pairs,
            byte_ranks,
            byte_pairs,
            specials: special_map,
            special_ids,
            fallback,
            offsets,
            bytes,
            kind,
            byte_level,
        })
    }

    /// The rank of a mergeable token.
    #[inline]
    pub fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        match bytes.len() {
            1 => some_rank(self.byte_ranks[bytes[0] as usize]),
            2 => some_rank(self.byte_pairs[(bytes[0] as usize) << 8 | bytes[1] as usize]),
            _ => self.map.get(bytes, &self.bytes, &self.offsets),
        }
    }

    /// Asks the CPU to start loading the token map's slot for the piece whose key is `key`, so
    /// that a later [`Vocab::rank_key`] of it finds the slot in cache. The encoder calls this a
    /// few pieces ahead: whole-piece lookups were a quarter of cold encode time on en_docs,
    /// nearly all of it waiting for the slot (`perf annotate`), and pieces are independent, so
    /// their loads can overlap.
    #[inline(always)]
    pub(crate) fn prefetch(&self, key: &PieceKey) {
        self.map.prefetch(key);
    }

    /// [`Vocab::rank`] of `bytes` (a mergeable token's bytes or not), whose key is `key`: one
    /// probe of the token map, whatever the length.
    #[inline(always)]
    pub(crate) fn rank_key(&self, bytes: &[u8], key: &PieceKey) -> Option<Rank> {
        self.map.get_key(bytes, key, &self.bytes, &self.offsets)
    }

    /// The rank of the token whose bytes are token `a`'s followed by token `b`'s, if there is
    /// one: the merge rule's question, asked without touching bytes.
    #[inline]
    pub fn merged(&self, a: Rank, b: Rank) -> Option<Rank> {
        some_rank(self.pairs.get(a, b))
    }

    /// Like [`Vocab::merged`], with `NO_RANK` for "no such token" (the merge loop's form).
    #[inline]
    pub(crate) fn merged_or_none(&self, a: Rank, b: Rank) -> Rank {
        self.pairs.get(a, b)
    }

    /// This vocabulary's process-unique number (see the field).
    #[inline]
    pub(crate) fn uid(&self) -> u64 {
        self.uid
    }

    /// The rank of single byte `b` (`NO_RANK` when it is not a token).
    #[inline]
    pub(crate) fn byte_rank(&self, b: u8) -> Rank {
        self.byte_ranks[b as usize]
    }

    /// The rank of the two-byte string `[a, b]` (`NO_RANK` when it is not a token).
    #[inline]
    pub(crate) fn byte_pair_rank(&self, a: u8, b: u8) -> Rank {
        self.byte_pairs[(a as usize) << 8 | b as usize]
    }

    /// The id of a special token.
    pub fn special_id(&self, text: &str) -> Option<Rank> {
        self.specials.get(text).copied()
    }

    /// The text of a special token id.
    pub fn special_text(&self, id: Rank) -> Option<&str> {
        self.special_ids.get(&id).map(String::as_str)
    }

    /// Special tokens, sorted by id.
    pub fn specials(&self) -> Vec<(&str, Rank)> {
        let mut v: Vec<_> = self
            .specials
            .iter()
            .map(|(s, &i)| (s.as_str(), i))
            .collect();
        v.sort_by_key(|&(_, i)| i);
        v
    }

    /// The byte-fallback id for byte `b`, when the vocabulary has byte fallback.
    #[inline]
    pub fn fallback_id(&self, b: u8) -> Option<Rank> {
        self.fallback.as_ref().map(|f| f[b as usize])
    }

    /// Whether this vocabulary has `<0xNN>` byte-fallback tokens.
    pub fn has_byte_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Whether every single byte is an ordinary token, so that any text can be encoded.
    pub fn is_byte_level(&self) -> bool {
        self.byte_level
    }

    /// The bytes an id decodes to (a special token's UTF-8 text, a fallback token's one byte).
    #[inline]
    pub fn token_bytes(&self, id: Rank) -> Option<&[u8]> {
        let i = id as usize;
        match self.kind.get(i) {
            Some(TokenKind::Unused) | None => None,
            Some(_) => Some(&self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]),
        }
    }

    /// What an id is.
    pub fn kind(&self, id: Rank) -> TokenKind {
        self.kind
            .get(id as usize)
            .copied()
            .unwrap_or(TokenKind::Unused)
    }

    /// One more than the largest id (tiktoken's `n_vocab`).
    pub fn n_ids(&self) -> usize {
        self.kind.len()
    }

    /// Number of ordinary (mergeable) tokens.
    pub fn n_ordinary(&self) -> usize {
        self.map.len
    }

    /// Ordinary tokens as `(bytes, rank)`, sorted by rank.
    pub fn ordinary_tokens(&self) -> Vec<(&[u8], Rank)> {
        self.kind
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == TokenKind::Ordinary)
            .map(|(i, _)| {
                let r = i as Rank;
                (self.token_bytes(r).expect("ordinary ids have bytes"), r)
            })
            .collect()
    }

    /// The byte-fallback ids, index = byte value.
    pub fn fallback_ids(&self) -> Option<&[Rank; 256]> {
        self.fallback.as_deref()
    }

    /// Appends the bytes of `ids` to `out`; fails on the first unknown id.
    pub fn decode_into(&self, ids: &[Rank], out: &mut Vec<u8>) -> Result<()> {
        for &id in ids {
            match self.token_bytes(id) {
                Some(b) => out.extend_from_slice(b),
                None => return Err(TokforgeError::UnknownToken(id as u64)),
            }
        }
        Ok(())
    }
}

/// "No such token" in the lookup tables' `Rank` form. No id can be `u32::MAX`: `Vocab::new`
/// sizes its tables by the largest id plus one, which must fit in `u32`.
pub(crate) const NO_RANK: Rank = Rank::MAX;

#[inline(always)]
fn some_rank(r: Rank) -> Option<Rank> {
    (r != NO_RANK).then_some(r)
}

/// A short printable form of token bytes, for error messages.
pub(crate) fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn byte_vocab() -> Vec<(Vec<u8>, Rank)> {
        (0..=255u8).map(|b| (vec![b], b as Rank)).collect()
    }

    #[test]
    fn piece_key_at_equals_piece_key_of() {
        // Every piece of up to 20 bytes at every place in texts of 8 to 40 bytes: the start,
        // the middle, and the last 8 bytes, where `at` shifts a word down.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for len in 8..=40usize {
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            for s in 0..len {
                for e in s + 1..=(s + 20).min(len) {
                    assert_eq!(
                        PieceKey::at(&text, s, e),
                        PieceKey::of(&text[s..e]),
                        "text of {len} bytes, piece {s}..{e}"
                    );
                }
            }
        }
    }

    #[test]
    fn byte_level_vocab_with_gap_and_specials() {
        let mut ranks = byte_vocab();
        ranks.push((b"ab".to_vec(), 256));
        let v = Vocab::new(ranks, vec![("<|eot|>".into(), 300)], None).unwrap();
        assert!(v.is_byte_level());
        assert_eq!(v.n_ids(), 301);
        assert_eq!(v.token_bytes(256), Some(&b"ab"[..]));
        assert_eq!(v.token_bytes(280), None);
        assert_eq!(v.kind(300), TokenKind::Special);
        assert_eq!(v.token_bytes(300), Some(&b"<|eot|>"[..]));
        let mut out = Vec::new();
        assert!(matches!(
            v.decode_into(&[97, 280], &mut out),
            Err(TokforgeError::UnknownToken(280))
        ));
    }

    #[test]
    fn a_far_out_id_is_an_error_not_an_allocation() {
        let err = Vocab::new(
            vec![(b"a".to_vec(), 0), (b"b".to_vec(), 4_000_000_000)],
            vec![],
            None,
        );
        assert!(matches!(err, Err(TokforgeError::InvalidVocab(ref m)) if m.contains("far beyond")));
        let err = Vocab::new(byte_vocab(), vec![("<s>".into(), u32::MAX)], None);
        assert!(matches!(err, Err(TokforgeError::InvalidVocab(_))));
    }

    #[test]
    fn duplicates_are_rejected() {
        let mut ranks = byte_vocab();
        ranks.push((b"a".to_vec(), 256));
        assert!(matches!(
            Vocab::new(ranks, vec![], None),
            Err(TokforgeError::InvalidVocab(_))
        ));
        let mut ranks = byte_vocab();
        ranks.push((b"ab".to_vec(), 255));
        assert!(matches!(
            Vocab::new(ranks, vec![], None),
            Err(TokforgeError::InvalidVocab(_))
        ));
        assert!(Vocab::new(byte_vocab(), vec![("x".into(), 3)], None).is_err());
        assert!(Vocab::new(vec![(vec![], 0)], vec![], None).is_err());
    }

    #[test]
    fn fallback_ids_decode_to_single_bytes() {
        let ranks = vec![(b"a".to_vec(), 256), (b"b".to_vec(), 257)];
        let v = Vocab::new(ranks, vec![], Some((0..256).collect())).unwrap();
        assert!(!v.is_byte_level());
        assert_eq!(v.fallback_id(0xE2), Some(0xE2));
        assert_eq!(v.kind(0xE2), TokenKind::ByteFallback);
        assert_eq!(v.token_bytes(0xE2), Some(&[0xE2u8][..]));
    }
}
