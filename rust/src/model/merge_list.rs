//! The merge-list rule (`tokenizers`' BPE model): merges applied in the order of the merge
//! list, leftmost first.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::error::{Result, TokforgeError};
use crate::vocab::Rank;

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
    /// # use tokforge::model::MergeModel;
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
}
