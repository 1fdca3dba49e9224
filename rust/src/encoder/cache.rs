//! The piece cache: pieces that took several tokens, with their tokens, pooled per encoder.

use crate::vocab::{prefetch_read, tail8, PieceKey, Rank};

/// Pieces longer than this are merged every time, never cached.
pub(super) const CACHE_MAX_PIECE: usize = 256;
/// A cache holds at most this many pieces, and this many bytes of pieces and ids kept apart from
/// its slots; then it starts over.
pub(super) const CACHE_MAX_ENTRIES: usize = 1 << 16;
/// The same for a tokenizer.json pipeline, which caches every word (there is no whole-piece
/// lookup in front): en_docs alone has 78k distinct words cut at `▁`, so a 2^16 cache started
/// over on every pass. tokenizer.json with Llama 2's layout, en_docs, warm: 23 -> 58 MB/s
/// (Llama 3's layout, man_ja: 23.5 -> 64). The rank path keeps 2^16: 2^17 made its warm
/// Japanese and Chinese runs slower (man_zh_CN 120 -> 109 MB/s), a bigger table to miss in.
pub(super) const HF_CACHE_MAX_ENTRIES: usize = 1 << 17;
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
pub(super) struct PieceCache {
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
/// points to are not; a second prefetch stage was tried and dropped, see `docs/performance.md`), and
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
    pub(super) fn prefetch(&self, key: &PieceKey) {
        if !self.slots.is_empty() {
            prefetch_read(&self.slots[key.hash as usize & (self.slots.len() - 1)]);
        }
    }

    #[inline]
    pub(super) fn get(&self, key: &PieceKey, piece: &[u8]) -> Option<&[Rank]> {
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

    pub(super) fn insert(
        &mut self,
        key: &PieceKey,
        piece: &[u8],
        ids: &[Rank],
        max_entries: usize,
    ) {
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
///
/// The lock is only ever tried, never waited for: a call that finds it taken works with a new
/// cache (and drops its cache instead of returning it). So the merge loop cannot block on it,
/// and a process forked while another thread held it (the child gets the lock copied in the
/// locked state, with no thread left to release it) keeps encoding, with cold caches, instead
/// of hanging. The lock is held for a pop or a push, so in one process a miss is rare.
#[derive(Default)]
pub(super) struct CachePool(std::sync::Mutex<Vec<PieceCache>>);

impl std::fmt::Debug for CachePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachePool")
    }
}

impl CachePool {
    /// Runs `f` with a cache of this pool's (a new one when all are taken or the lock is
    /// held), then puts it back when the lock is free.
    #[inline]
    pub(super) fn with<R>(&self, f: impl FnOnce(Option<&mut PieceCache>) -> R) -> R {
        let mut cache = match self.0.try_lock() {
            Ok(mut idle) => idle.pop().unwrap_or_default(),
            Err(_) => PieceCache::default(),
        };
        let r = f(Some(&mut cache));
        if let Ok(mut idle) = self.0.try_lock() {
            if idle.len() < POOLED_CACHES {
                idle.push(cache);
            }
        }
        r
    }

    /// Holds the pool's lock while `f` runs (for tests of a lock left held, as in a child
    /// forked mid-call).
    #[cfg(test)]
    pub(super) fn while_locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.0.lock();
        f()
    }
}

/// Appends `ids` to `out`; a cached piece has a few ids, for which a loop beats a call to
/// `memmove` (5% of cold encode time on man_de in `perf report`).
#[inline(always)]
pub(super) fn push_ids(out: &mut Vec<Rank>, ids: &[Rank]) {
    if ids.len() <= 8 {
        out.reserve(ids.len());
        for &id in ids {
            out.push(id);
        }
    } else {
        out.extend_from_slice(ids);
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
}
