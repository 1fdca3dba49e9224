//! Token bytes -> id: the whole-piece lookup (see the module docs of [`crate::vocab`]).

use super::key::{hash_bytes, load_head, prefetch_read, tail8, PieceKey};
use super::Rank;

/// One slot of [`TokenMap`]: the token's first 8 bytes, its length (0 = empty) and its rank.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(16))]
struct Slot {
    head: u64,
    len: u32,
    rank: Rank,
}

/// Token bytes -> rank, open addressing (see the module docs). Tokens longer than 8 bytes are
/// verified against the vocabulary's flat byte table, which the caller passes in.
#[derive(Debug, Clone)]
pub(super) struct TokenMap {
    slots: Vec<Slot>,
    mask: usize,
    pub(super) len: usize,
}

impl TokenMap {
    pub(super) fn with_capacity(n: usize) -> Self {
        let cap = (n.max(4) * 2).next_power_of_two();
        TokenMap {
            slots: vec![Slot::default(); cap],
            mask: cap - 1,
            len: 0,
        }
    }

    /// Inserts a token known to be absent (`Vocab::new` has checked duplicates).
    pub(super) fn insert(&mut self, b: &[u8], rank: Rank) {
        let head = load_head(b);
        let mut i = hash_bytes(head, b) as usize & self.mask;
        while self.slots[i].len != 0 {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot {
            head,
            len: b.len() as u32,
            rank,
        };
        self.len += 1;
    }

    #[inline(always)]
    pub(super) fn prefetch(&self, key: &PieceKey) {
        prefetch_read(&self.slots[key.hash as usize & self.mask]);
    }

    #[inline]
    pub(super) fn get(&self, b: &[u8], bytes: &[u8], offsets: &[u32]) -> Option<Rank> {
        self.get_key(b, &PieceKey::of(b), bytes, offsets)
    }

    #[inline(always)]
    pub(super) fn get_key(
        &self,
        b: &[u8],
        key: &PieceKey,
        bytes: &[u8],
        offsets: &[u32],
    ) -> Option<Rank> {
        let head = key.head;
        let mut i = key.hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s.len == 0 {
                return None;
            }
            if s.head == head && s.len as usize == b.len() {
                if b.len() <= 8 {
                    return Some(s.rank);
                }
                let start = offsets[s.rank as usize] as usize;
                let t = &bytes[start..start + b.len()];
                let same = if b.len() <= 16 {
                    // The first 8 bytes matched; the last 8 (overlapping them) cover the rest,
                    // in one load instead of a call to memcmp.
                    tail8(t) == tail8(b)
                } else {
                    t[8..] == b[8..]
                };
                if same {
                    return Some(s.rank);
                }
            }
            i = (i + 1) & self.mask;
        }
    }
}
