//! `(id, id) -> id`: which two tokens make which token (see the module docs of
//! [`crate::vocab`]).

use super::key::{fold_mul, K0};
use super::{Rank, NO_RANK};

/// `(a, b) -> c`: token `c` is token `a`'s bytes followed by token `b`'s (see the module docs).
///
/// Open addressing with linear probing over 12-byte slots `[a, b, c]` (`a == NO_RANK`: empty),
/// about 80% full; the slot is picked by a multiply-high of the hash onto the table size, so
/// the size need not be a power of two. In front of it, a blocked Bloom filter (two bits in one
/// 64-bit word, 8 bits per pair) answers most "no such token" questions from L2: counted on
/// man_ja with cl100k, 71% of the merge loop's pair lookups find nothing (32% on en_docs).
///
/// Tried: 16-byte slots `(u64 key, u32)` at most half full (8 MB for cl100k, 16 MB for
/// o200k) behind a one-bit-per-hash filter of 16 bits per pair. The merge loop waited on the
/// filter word (1 MB for o200k, past what stays in L2) and on the slot (`perf annotate`);
/// this layout is 3.4 MB / 6.6 MB with a 256 KB / 512 KB filter (numbers in `docs/performance.md`).
#[derive(Debug, Clone)]
pub(super) struct PairMap {
    slots: Vec<[Rank; 3]>,
    filter: Vec<u64>,
    filter_mask: usize,
}

impl PairMap {
    pub(super) fn with_capacity(n: usize) -> Self {
        let cap = (n + n / 4).max(16);
        let words = (n.max(512) * 8 / 64).next_power_of_two();
        PairMap {
            slots: vec![[NO_RANK; 3]; cap],
            filter: vec![0; words],
            filter_mask: words - 1,
        }
    }

    #[inline(always)]
    fn hash(a: Rank, b: Rank) -> u64 {
        fold_mul((a as u64) << 32 | b as u64, K0)
    }

    /// The filter word and its two bits for hash `h` (low bits; the slot uses the high ones).
    #[inline(always)]
    fn filter_bits(&self, h: u64) -> (usize, u64) {
        let word = (h >> 12) as usize & self.filter_mask;
        (word, 1 << (h & 63) | 1 << ((h >> 6) & 63))
    }

    #[inline(always)]
    fn home(&self, h: u64) -> usize {
        ((h as u128 * self.slots.len() as u128) >> 64) as usize
    }

    pub(super) fn insert(&mut self, a: Rank, b: Rank, c: Rank) {
        let h = Self::hash(a, b);
        let (w, bits) = self.filter_bits(h);
        self.filter[w] |= bits;
        let mut i = self.home(h);
        while self.slots[i][0] != NO_RANK {
            if self.slots[i][0] == a && self.slots[i][1] == b {
                return;
            }
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
        self.slots[i] = [a, b, c];
    }

    #[inline(always)]
    pub(super) fn get(&self, a: Rank, b: Rank) -> Rank {
        let h = Self::hash(a, b);
        let (w, bits) = self.filter_bits(h);
        if self.filter[w] & bits != bits {
            return NO_RANK;
        }
        let mut i = self.home(h);
        loop {
            let [x, y, c] = self.slots[i];
            if x == a && y == b {
                return c;
            }
            if x == NO_RANK {
                return NO_RANK;
            }
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
    }
}
