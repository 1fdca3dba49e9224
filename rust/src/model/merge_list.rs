//! The merge-list rule (`tokenizers`' BPE model): merges applied in the order of the merge
//! list, leftmost first.

use rustc_hash::FxHashMap;

use super::heap::{heap_merge, PairRule};
use crate::error::{Result, TokforgeError};
use crate::util::utf8_width;
use crate::vocab::Rank;

/// `tokenizers`' BPE model: merges applied in the order of the merge list.
#[derive(Debug)]
pub struct MergeModel {
    /// Token (raw bytes in byte-level mode, else the token's UTF-8 text) -> id.
    tokens: FxHashMap<Vec<u8>, Rank>,
    /// (left id, right id) -> (position in the merge list, merged id).
    merges: FxHashMap<(Rank, Rank), (u32, Rank)>,
    options: MergeListOptions,
}

/// How a [`MergeModel`] reads words and treats what its vocabulary lacks: the flags of a
/// tokenizer.json BPE model. The default is a character-level model that fails on unknown
/// characters.
#[derive(Debug, Clone, Default)]
pub struct MergeListOptions {
    /// Words are sequences of bytes (after `ByteLevel`) rather than characters.
    pub byte_level: bool,
    /// Ids of `<0x00>`..`<0xFF>` for the bytes of an unknown character (`byte_fallback`, when
    /// all 256 exist).
    pub byte_fallback: Option<Box<[Rank; 256]>>,
    /// The unknown token, for an unknown character when there is no byte fallback.
    pub unk: Option<Rank>,
    /// Consecutive unknown characters become one unknown token.
    pub fuse_unk: bool,
    /// A word that is itself a token is that token, whatever the merges would make.
    pub ignore_merges: bool,
}

impl PairRule for MergeModel {
    type Part = Rank;

    /// A pair's priority is its place in the merge list.
    #[inline]
    fn pair(&self, left: Rank, right: Rank) -> Option<(u32, Rank)> {
        self.merges.get(&(left, right)).copied()
    }
}

impl MergeModel {
    /// Encodes one word (already normalized and pre-tokenized) and appends its ids.
    ///
    /// ```
    /// # use tokforge::model::{MergeListOptions, MergeModel};
    /// // Merges in list order: ("b", "c") before ("a", "b"), so "abc" -> a|bc.
    /// let m = MergeModel::new(
    ///     vec![(b"a".to_vec(), 0), (b"b".to_vec(), 1), (b"c".to_vec(), 2), (b"bc".to_vec(), 3), (b"ab".to_vec(), 4)],
    ///     &[(1, 2), (0, 1)],
    ///     MergeListOptions::default(),
    /// ).unwrap();
    /// let mut out = vec![];
    /// m.encode_word(b"abc", &mut out).unwrap();
    /// assert_eq!(out, vec![0, 3]);
    /// ```
    pub fn encode_word(&self, word: &[u8], out: &mut Vec<Rank>) -> Result<()> {
        if word.is_empty() {
            return Ok(());
        }
        if self.options.ignore_merges {
            if let Some(&id) = self.tokens.get(word) {
                out.push(id);
                return Ok(());
            }
        }
        let base = out.len();
        // Unknown characters waiting to be pushed as one unknown token (with `fuse_unk`).
        let mut pending_unk: Option<Rank> = None;
        let mut i = 0;
        while i < word.len() {
            let w = if self.options.byte_level {
                1
            } else {
                utf8_width(word[i]).min(word.len() - i)
            };
            let ch = &word[i..i + w];
            i += w;
            if let Some(&id) = self.tokens.get(ch) {
                out.extend(pending_unk.take());
                out.push(id);
                continue;
            }
            if let Some(fb) = &self.options.byte_fallback {
                out.extend(pending_unk.take());
                out.extend(ch.iter().map(|&b| fb[b as usize]));
                continue;
            }
            let Some(unk) = self.options.unk else {
                out.truncate(base);
                return Err(TokforgeError::NotAToken(format!(
                    "{} (not in the vocabulary, which has no byte fallback and no unknown token)",
                    String::from_utf8_lossy(ch)
                )));
            };
            if !self.options.fuse_unk {
                out.extend(pending_unk.take());
            }
            pending_unk = Some(unk);
        }
        out.extend(pending_unk);
        // Always the earliest merge in the list, then the leftmost.
        heap_merge(self, out, base);
        Ok(())
    }

    /// A model from tokens (bytes or UTF-8 text, see [`MergeListOptions::byte_level`]) with
    /// their ids and merges as pairs of ids, in priority order. The merged token of `(a, b)`
    /// must exist.
    pub fn new(
        tokens: Vec<(Vec<u8>, Rank)>,
        merges: &[(Rank, Rank)],
        options: MergeListOptions,
    ) -> Result<Self> {
        Self::with_priorities(tokens, merges, None, options)
    }

    /// [`MergeModel::new`] with an explicit priority per merge (lower first) instead of the
    /// merge's place in the list. Merges may share a priority: among them the leftmost pair in
    /// the word merges first, whichever pair it is. That is SentencePiece's BPE rule (the pair
    /// whose merged piece scores highest, leftmost on ties), which a merge list cannot express
    /// when two different pieces score the same (Mistral's runs of `▁` all score -1e9).
    pub fn with_priorities(
        tokens: Vec<(Vec<u8>, Rank)>,
        merges: &[(Rank, Rank)],
        priorities: Option<&[u32]>,
        options: MergeListOptions,
    ) -> Result<Self> {
        if let Some(p) = priorities {
            if p.len() != merges.len() {
                return Err(TokforgeError::InvalidVocab(format!(
                    "{} merge priorities for {} merges",
                    p.len(),
                    merges.len()
                )));
            }
            if p.iter().any(|&x| x >= u32::MAX - 1) {
                return Err(TokforgeError::InvalidVocab(
                    "a merge priority must be below 4294967294".into(),
                ));
            }
        }
        crate::vocab::check_token_lengths(tokens.iter().map(|(b, _)| b.len() as u64))?;
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
            if pairs.contains_key(&(a, b)) {
                // A repeat: its place is taken, and joining long tokens again costs their length.
                continue;
            }
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
            let priority = priorities.map_or(k as u32, |p| p[k]);
            pairs.insert((a, b), (priority, new));
        }
        Ok(MergeModel {
            tokens: map,
            merges: pairs,
            options,
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
        if self.options.byte_level || self.options.ignore_merges || !self.tokens.contains_key(c) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let m = MergeModel::new(toks, &[(1, 2), (0, 1)], MergeListOptions::default()).unwrap();
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
            MergeModel::new(
                toks,
                merges,
                MergeListOptions {
                    ignore_merges: ignore,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        assert!(m(&[(0, 1)], false).splits_before('▁'));
        assert!(!m(&[(0, 1), (1, 0)], false).splits_before('▁'));
        assert!(!m(&[(0, 1)], true).splits_before('▁'));
        assert!(!m(&[(0, 1)], false).splits_before('x'));
    }

    #[test]
    fn equal_priorities_merge_leftmost_first_whatever_the_pair() {
        // SentencePiece on Mistral's runs of "▁" (all scored alike): the leftmost pair grows
        // first, so 15 spaces give 14 + 1 and 17 give 16 + 1 (after 14 + 2 joins into 16).
        let mut toks: Vec<(Vec<u8>, Rank)> = (1..=14u32)
            .chain([16])
            .map(|n| (vec![b's'; n as usize], n))
            .collect();
        toks.sort();
        let id = |n: usize| n as Rank;
        let mut merges = vec![];
        for n in [2usize, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16] {
            for k in 1..n {
                if (k <= 14 || k == 16) && (n - k <= 14 || n - k == 16) {
                    merges.push((id(k), id(n - k)));
                }
            }
        }
        let prio = vec![0u32; merges.len()];
        let m =
            MergeModel::with_priorities(toks, &merges, Some(&prio), Default::default()).unwrap();
        for (n, want) in [(15, vec![14, 1]), (17, vec![16, 1]), (31, vec![16, 14, 1])] {
            let mut out = vec![];
            m.encode_word(&vec![b's'; n], &mut out).unwrap();
            assert_eq!(out, want, "{n}");
        }
    }

    #[test]
    fn leftmost_first_among_equal_merges() {
        let toks = vec![(b"a".to_vec(), 0), (b"aa".to_vec(), 1)];
        let m = MergeModel::new(toks, &[(0, 0)], MergeListOptions::default()).unwrap();
        let mut out = vec![];
        m.encode_word(b"aaa", &mut out).unwrap();
        assert_eq!(out, vec![1, 0]);
    }

    #[test]
    fn unknowns_fuse_or_fall_back_to_bytes() {
        let unk = |byte_fallback, fuse_unk| MergeListOptions {
            byte_fallback,
            unk: Some(1),
            fuse_unk,
            ..Default::default()
        };
        let toks = vec![(b"a".to_vec(), 0), (b"<unk>".to_vec(), 1)];
        let m = MergeModel::new(toks.clone(), &[], unk(None, true)).unwrap();
        let mut out = vec![];
        m.encode_word("aéüa".as_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 0]);
        let m = MergeModel::new(toks.clone(), &[], unk(None, false)).unwrap();
        out.clear();
        m.encode_word("aéüa".as_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 1, 0]);
        let mut fb = Box::new([0 as Rank; 256]);
        for (b, slot) in fb.iter_mut().enumerate() {
            *slot = 10 + b as Rank;
        }
        let m = MergeModel::new(toks.clone(), &[], unk(Some(fb), true)).unwrap();
        out.clear();
        m.encode_word("aé".as_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![0, 10 + 0xC3, 10 + 0xA9]);
        let m = MergeModel::new(toks, &[], MergeListOptions::default()).unwrap();
        assert!(matches!(
            m.encode_word("é".as_bytes(), &mut out),
            Err(TokforgeError::NotAToken(_))
        ));
    }
}
