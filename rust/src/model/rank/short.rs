//! The vector merge loops for pieces of at most [`SMALL_IDS`] parts, with their arrays on the
//! stack: where nearly every piece is merged, and where the measuring went.

use super::SMALL_IDS;
use crate::vocab::{Rank, Vocab, NO_RANK};

/// [`merge_bytes_into`] for a piece of at most [`SMALL_IDS`] bytes: the vector loop with its
/// rank array on the stack.
pub(super) fn merge_short_bytes_into(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    #[cfg(target_arch = "x86_64")]
    if piece.len() > 8 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { merge_short_bytes_avx2(vocab, piece, out) };
        return;
    }
    merge_short_bytes_sized(vocab, piece, out);
}

/// [`merge_short_bytes_sized`] compiled for AVX2, whose unsigned 32-bit minimum (`vpminud`,
/// eight lanes) serves the merge loop's scan for the lowest key; SSE2, the x86_64 baseline,
/// has no unsigned minimum and emulates it with compares and blends, four lanes at a time.
/// Japanese and Chinese pieces (30 to 100 bytes, a scan per merge) spent 55-60% of cold encode
/// time in this loop. From 9 bytes up: merging the distinct multi-token pieces of man_de took
/// 47 ns per merge with SSE2 up to 16 bytes and 45.5 with AVX2 from 9; from 3 bytes, en_docs'
/// went from 42 to 43-49 (the dispatch costs more than the 8-slot scan it speeds up).
///
/// Pieces of up to 64 bytes keep their keys in registers ([`merge_regs_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn merge_short_bytes_avx2(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    if vocab.n_ids() >= TAG_LIMIT as usize {
        merge_short_bytes_sized(vocab, piece, out);
        return;
    }
    match piece.len() {
        0..=16 => merge_regs_avx2::<2>(vocab, piece, out),
        17..=32 => merge_regs_avx2::<4>(vocab, piece, out),
        33..=64 => merge_regs_avx2::<8>(vocab, piece, out),
        _ => merge_short_bytes_sized(vocab, piece, out),
    }
}

/// [`merge_ids_tagged`] for a piece of at most `8 * R` bytes with its keys in `R` AVX2
/// registers instead of a stack array. The array version stores two or three keys a step and
/// then reads all of them back with vector loads, which cannot take their data from stores
/// still in flight and wait for them; here a key is set by a blend, and the keys never leave
/// the registers.
///
/// Merging each corpus's distinct multi-token pieces (cl100k, best of 3-4 runs): man_de 43-44
/// -> 40 ns per merge step, man_ja 44 -> 37, man_zh_CN 43 -> 38-40. Up to 128 bytes (16
/// registers, which spill) was level with 64 on man_zh_CN and 2.5% better on man_ja: not
/// kept. From 3 bytes instead of 9, en_docs gained and man_de and code_py lost.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn merge_regs_avx2<const R: usize>(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    use std::arch::x86_64::*;
    let n = piece.len();
    debug_assert!(n >= 2 && n <= 8 * R && R <= 8);
    let base = out.len();
    out.extend(piece.iter().map(|&b| vocab.byte_rank(b)));
    let ids = &mut out[base..];
    let mut next = [END; 64];
    let mut prev = [END; 64];
    let mut keys = [_mm256_set1_epi32(-1); R];
    let mut lanes = [_mm256_setzero_si256(); R];
    {
        let mut init = [GONE; 64];
        for (i, w) in piece.windows(2).enumerate() {
            init[i] = tag(vocab.byte_pair_rank(w[0], w[1]), i);
            next[i] = i as u16 + 1;
            prev[i + 1] = i as u16;
        }
        for (r, (k, l)) in keys.iter_mut().zip(lanes.iter_mut()).enumerate() {
            *k = _mm256_loadu_si256(init.as_ptr().add(8 * r).cast());
            let first = 8 * r as i32;
            *l = _mm256_add_epi32(
                _mm256_set1_epi32(first),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            );
        }
    }
    // The step and the compaction below are `merge_ids_tagged`'s, written out again: helpers
    // shared by both loops (keys set through a closure) measured man_ja 6% faster but code_py
    // 10% slower per merge, and cold man_de, en_docs and code_py encode 1-3% slower.
    let set = |keys: &mut [__m256i; R], lane: usize, key: u32| {
        let at = _mm256_set1_epi32(lane as i32);
        let key = _mm256_set1_epi32(key as i32);
        for (k, l) in keys.iter_mut().zip(&lanes) {
            *k = _mm256_blendv_epi8(*k, key, _mm256_cmpeq_epi32(*l, at));
        }
    };
    loop {
        let m = keys[1..]
            .iter()
            .fold(keys[0], |a, &b| _mm256_min_epu32(a, b));
        let m = _mm_min_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256::<1>(m));
        let m = _mm_min_epu32(m, _mm_shuffle_epi32::<0b01_00_11_10>(m));
        let m = _mm_min_epu32(m, _mm_shuffle_epi32::<0b10_11_00_01>(m));
        let best = _mm_cvtsi128_si32(m) as u32;
        if best == GONE {
            break;
        }
        let (r, i) = (best >> 8, (best & 0xFF) as usize);
        let j = next[i] as usize;
        let k = next[j];
        ids[i] = r;
        next[i] = k;
        set(&mut keys, j, GONE);
        let key_i = if k == END {
            GONE
        } else {
            prev[k as usize] = i as u16;
            tag(vocab.merged_or_none(r, ids[k as usize]), i)
        };
        set(&mut keys, i, key_i);
        let p = prev[i];
        if p != END {
            let p = p as usize;
            set(&mut keys, p, tag(vocab.merged_or_none(ids[p], r), p));
        }
    }
    let mut len = 0;
    let mut i = 0u16;
    while i != END {
        ids[len] = ids[i as usize];
        len += 1;
        i = next[i as usize];
    }
    out.truncate(base + len);
}

#[inline(always)]
pub(super) fn merge_short_bytes_sized(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    // Stack arrays sized by class: most pieces are a few bytes, and filling 256-entry arrays
    // for them cost 5% of encode time on long letter runs (`memset` in `perf report`). The
    // classes between help Japanese and Chinese, whose pieces are runs of 30 to 100 bytes.
    match piece.len() {
        0..=8 => merge_short_bytes_n::<8>(vocab, piece, out),
        9..=16 => merge_short_bytes_n::<16>(vocab, piece, out),
        17..=32 => merge_short_bytes_n::<32>(vocab, piece, out),
        33..=64 => merge_short_bytes_n::<64>(vocab, piece, out),
        65..=128 => merge_short_bytes_n::<128>(vocab, piece, out),
        _ => merge_short_bytes_n::<SMALL_IDS>(vocab, piece, out),
    }
}

#[inline(always)]
fn merge_short_bytes_n<const N: usize>(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    let n = piece.len();
    debug_assert!(n <= N && N <= SMALL_IDS);
    let base = out.len();
    out.extend(piece.iter().map(|&b| vocab.byte_rank(b)));
    if n <= 1 {
        return;
    }
    let mut ranks = [NO_RANK; N];
    for (r, w) in ranks.iter_mut().zip(piece.windows(2)) {
        *r = vocab.byte_pair_rank(w[0], w[1]);
    }
    let len = if vocab.n_ids() < TAG_LIMIT as usize {
        merge_ids_tagged::<N>(vocab, &mut out[base..], &ranks[..n - 1])
    } else {
        merge_ids_small(vocab, &mut out[base..], &mut ranks[..n - 1])
    };
    out.truncate(base + len);
}

/// The merge loop for at most [`SMALL_IDS`] parts: [`merge_ids_tagged`] when every id fits in
/// 24 bits (all tiktoken vocabularies), else [`merge_ids_small`].
#[inline]
pub(super) fn merge_ids_short(vocab: &Vocab, ids: &mut [Rank], ranks: &mut [Rank]) -> usize {
    if vocab.n_ids() < TAG_LIMIT as usize {
        merge_ids_tagged::<SMALL_IDS>(vocab, ids, ranks)
    } else {
        merge_ids_small(vocab, ids, ranks)
    }
}

/// Ids below this fit a tagged key (`rank << 8 | slot`) in a `u32`.
pub(super) const TAG_LIMIT: u32 = (1 << 24) - 1;

/// The merge loop over at most 256 parts, with keys that carry their slot: `keys[i]` is
/// `rank << 8 | i` for the pair that starts at slot `i` (`u32::MAX` when it does not merge or
/// slot `i` is gone). Slots keep their place (no shifting) and live ones are linked, so one
/// vectorized minimum over the keys gives both the lowest rank and, among equal ranks, the
/// leftmost slot: the tie rule falls out of the key order.
///
/// Measured against [`merge_ids_small`] (minimum, then a scalar search for its position, then
/// two shifts): the position search alone was 35% of encode time on long runs of spaces
/// (`perf annotate`); numbers in `docs/performance.md`.
#[inline(always)]
pub(super) fn merge_ids_tagged<const N: usize>(
    vocab: &Vocab,
    ids: &mut [Rank],
    ranks: &[Rank],
) -> usize {
    let n = ids.len();
    debug_assert!(n <= N && N <= SMALL_IDS && ranks.len() + 1 == n);
    let mut keys = [GONE; N];
    let mut next = [END; N];
    let mut prev = [END; N];
    for i in 0..n - 1 {
        keys[i] = tag(ranks[i], i);
        next[i] = i as u16 + 1;
        prev[i + 1] = i as u16;
    }
    // The scan covers the live prefix rounded up to whole 8-key vectors (slots past `n` hold
    // GONE): no scalar tail loop. Counted by cachegrind on man_ja's distinct pieces, the scan
    // of the exact prefix was 56 of the 200 instructions of a merge step.
    let keys = &mut keys[..n.next_multiple_of(8).min(N)];
    loop {
        let best = keys.iter().copied().fold(GONE, u32::min);
        if best == GONE {
            break;
        }
        let (r, i) = (best >> 8, (best & 0xFF) as usize);
        let j = next[i] as usize;
        let k = next[j];
        ids[i] = r;
        keys[j] = GONE;
        next[i] = k;
        keys[i] = if k == END {
            GONE
        } else {
            prev[k as usize] = i as u16;
            tag(vocab.merged_or_none(r, ids[k as usize]), i)
        };
        let p = prev[i];
        if p != END {
            let p = p as usize;
            keys[p] = tag(vocab.merged_or_none(ids[p], r), p);
        }
    }
    // Compact the live slots to the front, in order.
    let mut len = 0;
    let mut i = 0u16;
    while i != END {
        ids[len] = ids[i as usize];
        len += 1;
        i = next[i as usize];
    }
    len
}

/// A tagged key for a pair that does not merge, or a slot that is gone.
const GONE: u32 = u32::MAX;
/// The end of the tagged loops' slot lists.
const END: u16 = u16::MAX;

/// The tagged key of the pair at slot `i` that merges into `r` (`NO_RANK`: does not merge).
#[inline(always)]
fn tag(r: Rank, i: usize) -> u32 {
    if r == NO_RANK {
        GONE
    } else {
        r << 8 | i as u32
    }
}

/// The vector merge loop over ids: `ranks[i]` is the id `ids[i]` and `ids[i + 1]` merge into
/// (`NO_RANK` if none), which is also that merge's rank. Returns how many ids remain at the
/// front of `ids`.
#[inline]
pub(super) fn merge_ids_small(vocab: &Vocab, ids: &mut [Rank], ranks: &mut [Rank]) -> usize {
    let mut n = ids.len();
    debug_assert_eq!(ranks.len() + 1, n);
    loop {
        // Leftmost minimum: `<` keeps the first of equal ranks.
        // Two passes (the minimum, then its first position) vectorize; one pass that tracks the
        // position does not.
        let live = &ranks[..n - 1];
        let best = live.iter().copied().fold(NO_RANK, Rank::min);
        if best == NO_RANK {
            return n;
        }
        let i = live
            .iter()
            .position(|&r| r == best)
            .expect("the minimum is there");
        ids[i] = best;
        ids.copy_within(i + 2..n, i + 1);
        ranks.copy_within(i + 1..n - 1, i);
        n -= 1;
        if i + 1 < n {
            ranks[i] = vocab.merged_or_none(ids[i], ids[i + 1]);
        }
        if i > 0 {
            ranks[i - 1] = vocab.merged_or_none(ids[i - 1], ids[i]);
        }
        if n == 1 {
            return 1;
        }
    }
}
