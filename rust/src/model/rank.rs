//! The merge rule for one piece: start from single bytes (or, for a character-level vocabulary,
//! single characters), then repeatedly merge the adjacent pair whose merged bytes have the lowest
//! rank, the leftmost such pair on ties, until no adjacent pair forms a token. This is exactly
//! tiktoken's rule, so the ids are identical.
//!
//! Two implementations give the same result:
//! - [`merge_small`]: a flat vector of parts rescanned after every merge. O(n·m), but n is a
//!   handful of bytes for nearly every piece, where one cache line beats any clever structure.
//! - [`merge_large`]: a doubly linked list of parts and a min-heap of candidate pairs keyed by
//!   (rank, position), with stale entries skipped on pop. O(n log n), so a 1 MB piece (a million
//!   `a`s, a line of base64) encodes in linear-ish time instead of the quadratic blow-up the
//!   vector suffers there.
//!
//! Above [`LARGE_PIECE`] initial parts the heap version is used. Both are tested against each
//! other on random pieces (`tests::small_and_large_agree`).

use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::vocab::{Rank, Vocab, NO_RANK};

/// Pieces with more initial parts than this use the heap-based merge.
pub const LARGE_PIECE: usize = 128;

const NONE: u32 = u32::MAX;

/// Merges the parts of `piece` that start at `starts` (strictly increasing, first is 0; each
/// part must itself be a token) and returns the start offsets of the final parts.
///
/// `merge_small(v, b"aaa", &[0, 1, 2]) -> [0, 2]` when `aa` is a token and `aaa` is not.
pub fn merge(vocab: &Vocab, piece: &[u8], starts: &[usize]) -> Vec<usize> {
    if starts.len() > LARGE_PIECE {
        merge_large(vocab, piece, starts)
    } else {
        merge_small(vocab, piece, starts)
    }
}

/// The vector version of the merge loop (see the module docs).
pub fn merge_small(vocab: &Vocab, piece: &[u8], starts: &[usize]) -> Vec<usize> {
    // parts[i] = (start of part i, rank of merging part i with part i+1). A sentinel part at
    // the end of the piece makes `parts[i + 2]` the end of part i+1.
    let mut parts: Vec<(usize, Rank)> = Vec::with_capacity(starts.len() + 1);
    parts.extend(starts.iter().map(|&s| (s, Rank::MAX)));
    parts.push((piece.len(), Rank::MAX));
    let pair_rank = |parts: &[(usize, Rank)], i: usize| -> Rank {
        if i + 2 < parts.len() {
            vocab
                .rank(&piece[parts[i].0..parts[i + 2].0])
                .unwrap_or(Rank::MAX)
        } else {
            Rank::MAX
        }
    };
    for i in 0..parts.len().saturating_sub(2) {
        parts[i].1 = pair_rank(&parts, i);
    }
    loop {
        // Leftmost minimum: `<` keeps the first of equal ranks.
        let mut best = (Rank::MAX, 0usize);
        for (i, &(_, r)) in parts[..parts.len() - 1].iter().enumerate() {
            if r < best.0 {
                best = (r, i);
            }
        }
        if best.0 == Rank::MAX {
            break;
        }
        let i = best.1;
        parts.remove(i + 1);
        parts[i].1 = pair_rank(&parts, i);
        if i > 0 {
            parts[i - 1].1 = pair_rank(&parts, i - 1);
        }
    }
    parts.pop();
    parts.into_iter().map(|(s, _)| s).collect()
}

/// One part of a piece in the heap version: where it starts, its neighbours, and the rank of
/// merging it with its right neighbour. 16 bytes, one array: the merge loop touches one node
/// and its two neighbours, so keeping them together is worth more than the heap's log factor.
#[derive(Clone, Copy)]
struct Node {
    start: u32,
    next: u32,
    prev: u32,
    rank: Rank,
}

/// The heap version of the merge loop (see the module docs).
///
/// Heap entries are `rank << 32 | part index` in one `u64`: the minimum is the lowest rank and,
/// among equal ranks, the leftmost part, which is tiktoken's tie rule. An entry is stale when its
/// rank no longer equals the node's current rank (distinct byte strings have distinct ranks, and
/// a part's pair only ever grows), or when the part was merged away (`DEAD`).
/// Measured on one core, 1 MB of random lowercase letters with cl100k: separate vectors for
/// start/next/prev/alive/rank and `(Rank, u32)` tuple entries pushed one by one took 0.60 s; this
/// layout with a heapified initial vector is what is kept (numbers in benches/encode_bench.py
/// `--scaling`).
pub fn merge_large(vocab: &Vocab, piece: &[u8], starts: &[usize]) -> Vec<usize> {
    const DEAD: u32 = u32::MAX - 1;
    let n = starts.len();
    if piece.len() >= (u32::MAX - 1) as usize {
        // Offsets are stored as u32; a piece this large (4 GiB) takes the slow path.
        return merge_small(vocab, piece, starts);
    }
    let mut nodes: Vec<Node> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| Node {
            start: s as u32,
            next: if i + 1 < n { i as u32 + 1 } else { NONE },
            prev: if i == 0 { NONE } else { i as u32 - 1 },
            rank: Rank::MAX,
        })
        .collect();
    let pair_rank = |nodes: &[Node], i: usize| -> Rank {
        let j = nodes[i].next;
        if j == NONE {
            return Rank::MAX;
        }
        let k = nodes[j as usize].next;
        let end = if k == NONE {
            piece.len()
        } else {
            nodes[k as usize].start as usize
        };
        vocab
            .rank(&piece[nodes[i].start as usize..end])
            .unwrap_or(Rank::MAX)
    };
    let key = |rank: Rank, i: usize| std::cmp::Reverse(((rank as u64) << 32) | i as u64);

    let mut initial = Vec::with_capacity(n);
    for i in 0..n {
        let r = pair_rank(&nodes, i);
        nodes[i].rank = r;
        if r != Rank::MAX {
            initial.push(key(r, i));
        }
    }
    let mut heap = BinaryHeap::from(initial);
    while let Some(std::cmp::Reverse(entry)) = heap.pop() {
        let (r, i) = ((entry >> 32) as Rank, (entry & 0xFFFF_FFFF) as usize);
        if nodes[i].prev == DEAD || nodes[i].rank != r {
            continue;
        }
        // Merge part i with its right neighbour j.
        let j = nodes[i].next as usize;
        let after = nodes[j].next;
        nodes[j].prev = DEAD;
        nodes[i].next = after;
        if after != NONE {
            nodes[after as usize].prev = i as u32;
        }
        let r = pair_rank(&nodes, i);
        nodes[i].rank = r;
        if r != Rank::MAX {
            heap.push(key(r, i));
        }
        let p = nodes[i].prev;
        if p != NONE {
            let p = p as usize;
            let r = pair_rank(&nodes, p);
            nodes[p].rank = r;
            if r != Rank::MAX {
                heap.push(key(r, p));
            }
        }
    }
    let mut out = Vec::new();
    let mut i = 0u32;
    while i != NONE {
        out.push(nodes[i as usize].start as usize);
        i = nodes[i as usize].next;
    }
    out
}

/// Appends the tokens of `piece` to `out`, starting from its single bytes: the encoder's path
/// for a byte-level vocabulary. Every byte must be a token (`Vocab::is_byte_level`).
///
/// Same result as [`merge`] followed by a lookup of each part, but on ids: the first step reads
/// the byte and byte-pair tables, every later step asks [`Vocab::merged`] about two ids, and the
/// bytes are never hashed.
pub fn merge_bytes_into(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    if piece.len() <= SMALL_IDS {
        merge_short_bytes_into(vocab, piece, out);
    } else {
        merge_long_bytes_into(vocab, piece, out);
    }
}

/// [`merge_bytes_into`] for a piece of at most [`SMALL_IDS`] bytes: the vector loop with its
/// rank array on the stack.
fn merge_short_bytes_into(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
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
fn merge_short_bytes_sized(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
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

/// Bytes per chunk of a long piece (see [`merge_long_bytes_into`]).
const CHUNK: usize = 32;

/// Whether BPE leaves tokens `a` and `b` apart when they are all there is: the merge rule on
/// the bytes of `a` followed by those of `b` ends in exactly `[a, b]`.
fn compatible(vocab: &Vocab, a: Rank, b: Rank, scratch: &mut Vec<u8>, ids: &mut Vec<Rank>) -> bool {
    if vocab.merged_or_none(a, b) != NO_RANK {
        return false;
    }
    thread_local! {
        /// Recent answers, direct-mapped by the pair: long runs of one pattern (spaces, `a`,
        /// digits of a table) meet the same seam over and over, and for them the check is the
        /// costliest step (two long tokens merged from bytes). An entry is
        /// `[vocabulary uid, a << 32 | b, answer]`.
        static SEEN: std::cell::RefCell<Vec<[u64; 3]>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    const SLOTS: usize = 1024;
    let key = (a as u64) << 32 | b as u64;
    let slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % SLOTS;
    let uid = vocab.uid();
    let (Some(x), Some(y)) = (vocab.token_bytes(a), vocab.token_bytes(b)) else {
        return false;
    };
    if let Some(answer) = SEEN.with(|s| {
        let s = s.borrow();
        s.get(slot)
            .filter(|e| e[0] == uid && e[1] == key)
            .map(|e| e[2] == 1)
    }) {
        return answer;
    }
    scratch.clear();
    scratch.extend_from_slice(x);
    scratch.extend_from_slice(y);
    ids.clear();
    merge_any_bytes_into(vocab, scratch, ids);
    let answer = ids.len() == 2 && ids[0] == a && ids[1] == b;
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() != SLOTS {
            *s = vec![[0, u64::MAX, 0]; SLOTS];
        }
        s[slot] = [uid, key, answer as u64];
    });
    answer
}

/// [`merge_bytes_into`] without the chunking, for the stitching regions of
/// [`merge_long_bytes_into`] (which may themselves be long).
fn merge_any_bytes_into(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    if piece.len() <= SMALL_IDS {
        merge_short_bytes_into(vocab, piece, out);
    } else {
        let base = out.len();
        out.extend(piece.iter().map(|&b| vocab.byte_rank(b)));
        merge_ids_large(vocab, out, base);
    }
}

/// A long piece in chunks of [`CHUNK`] bytes, each merged on its own and stitched to what came
/// before, with the same result as merging the whole piece.
///
/// Why this is exact. Write `bpe(s)` for the merge rule's tokens of `s`, and call tokens `a`,
/// `b` *compatible* when `bpe(a ++ b) == [a, b]` (their bytes, concatenated). Then
/// `bpe(l ++ r) == bpe(l) ++ bpe(r)` whenever the last token of `bpe(l)` and the first of
/// `bpe(r)` are compatible. Proof sketch: run the rule on `l ++ r` and look at the region
/// covered by those two tokens. A merge is always the lowest-ranked pair of the whole text, so
/// it is also the lowest of any region it falls in; by induction over the steps, the left part
/// of the text goes through exactly the merges of `bpe(l)` (whose token boundaries, the region's
/// outer edges among them, are never crossed), the right part those of `bpe(r)`, and the region
/// those of `bpe(a ++ b)`, in the same order. A merge across the seam would be the region's
/// lowest pair at some step, and so would be taken by `bpe(a ++ b)` too, which compatibility
/// rules out. The same argument shows that the tokens of `bpe(s)` before any of its boundaries
/// are `bpe` of the bytes before it.
///
/// So: merge the next chunk; if the seam's two tokens are compatible, append. Otherwise take
/// back `j` tokens on each side of the seam (`j` = 1, 2, 4, ...), merge the bytes they cover,
/// and check the two new seams the same way; at worst the region grows to everything, which is
/// the plain merge. Compatibility is one merge of two tokens' bytes (a few to 256 bytes).
///
/// Measured (`cargo bench --bench encode -- long/cl100k`, one core, MiB/s): before, the heap over
/// the whole piece: 1M `a` 8.4, 1M random letters 4.4, 1 MB CJK 15, 1 MB of spaces 5.9; after:
/// see the table in `docs/performance-encoder.md`.
fn merge_long_bytes_into(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    let base = out.len();
    // ends[k] = where token out[base + k] ends in `piece`.
    let mut ends: Vec<usize> = Vec::with_capacity(piece.len() / 2);
    let mut chunk: Vec<Rank> = Vec::with_capacity(CHUNK);
    let mut region: Vec<Rank> = Vec::new();
    let (mut scratch, mut ids) = (Vec::new(), Vec::new());
    let len_of = |id: Rank| vocab.token_bytes(id).map_or(0, <[u8]>::len);
    // Chunks and stitching regions seen in this piece, by their bytes: a run of one pattern
    // (a million spaces) repeats them, and then each chunk is a lookup.
    let mut seen: FxHashMap<&[u8], Vec<Rank>> = FxHashMap::default();
    let mut merge_cached = |span: std::ops::Range<usize>, into: &mut Vec<Rank>| {
        let bytes = &piece[span];
        if bytes.len() > SMALL_IDS {
            merge_any_bytes_into(vocab, bytes, into);
            return;
        }
        if let Some(ids) = seen.get(bytes) {
            into.extend_from_slice(ids);
            return;
        }
        let at = into.len();
        merge_short_bytes_into(vocab, bytes, into);
        if seen.len() < 4096 {
            seen.insert(bytes, into[at..].to_vec());
        }
    };
    let mut pos = 0;
    while pos < piece.len() {
        let end = (pos + CHUNK).min(piece.len());
        chunk.clear();
        merge_cached(pos..end, &mut chunk);
        let have = out.len() - base;
        if have == 0 {
            let mut at = pos;
            for &id in &chunk {
                at += len_of(id);
                out.push(id);
                ends.push(at);
            }
            pos = end;
            continue;
        }
        let mut j = 1;
        loop {
            let keep = have.saturating_sub(j); // tokens kept on the left
            let take = j.min(chunk.len()); // chunk tokens taken into the region
            let start = if keep == 0 { 0 } else { ends[keep - 1] };
            let stop = pos + chunk[..take].iter().map(|&id| len_of(id)).sum::<usize>();
            region.clear();
            merge_cached(start..stop, &mut region);
            let left_ok = keep == 0
                || compatible(
                    vocab,
                    out[base + keep - 1],
                    region[0],
                    &mut scratch,
                    &mut ids,
                );
            let right_ok = take == chunk.len()
                || compatible(
                    vocab,
                    region[region.len() - 1],
                    chunk[take],
                    &mut scratch,
                    &mut ids,
                );
            if left_ok && right_ok {
                out.truncate(base + keep);
                ends.truncate(keep);
                let mut at = start;
                for &id in region.iter().chain(&chunk[take..]) {
                    at += len_of(id);
                    out.push(id);
                    ends.push(at);
                }
                break;
            }
            j *= 2;
        }
        pos = end;
    }
}

/// Merges the parts `out[base..]` (each an id) in place: afterwards `out[base..]` holds the
/// piece's tokens. The general form of [`merge_bytes_into`], for pieces whose first parts are
/// characters rather than bytes.
pub fn merge_ids_into(vocab: &Vocab, out: &mut Vec<Rank>, base: usize) {
    let n = out.len() - base;
    if n <= 1 {
        return;
    }
    if n <= SMALL_IDS {
        let mut ranks = [NO_RANK; SMALL_IDS];
        for i in 0..n - 1 {
            ranks[i] = vocab.merged_or_none(out[base + i], out[base + i + 1]);
        }
        let len = merge_ids_short(vocab, &mut out[base..], &mut ranks[..n - 1]);
        out.truncate(base + len);
    } else {
        merge_ids_large(vocab, out, base);
    }
}

/// The merge loop for at most [`SMALL_IDS`] parts: [`merge_ids_tagged`] when every id fits in
/// 24 bits (all tiktoken vocabularies), else [`merge_ids_small`].
#[inline]
fn merge_ids_short(vocab: &Vocab, ids: &mut [Rank], ranks: &mut [Rank]) -> usize {
    if vocab.n_ids() < TAG_LIMIT as usize {
        merge_ids_tagged::<SMALL_IDS>(vocab, ids, ranks)
    } else {
        merge_ids_small(vocab, ids, ranks)
    }
}

/// Ids below this fit a tagged key (`rank << 8 | slot`) in a `u32`.
const TAG_LIMIT: u32 = (1 << 24) - 1;

/// The merge loop over at most 256 parts, with keys that carry their slot: `keys[i]` is
/// `rank << 8 | i` for the pair that starts at slot `i` (`u32::MAX` when it does not merge or
/// slot `i` is gone). Slots keep their place (no shifting) and live ones are linked, so one
/// vectorized minimum over the keys gives both the lowest rank and, among equal ranks, the
/// leftmost slot: the tie rule falls out of the key order.
///
/// Measured against [`merge_ids_small`] (minimum, then a scalar search for its position, then
/// two shifts): the position search alone was 35% of encode time on long runs of spaces
/// (`perf annotate`); numbers in `docs/performance-encoder.md`.
#[inline(always)]
fn merge_ids_tagged<const N: usize>(vocab: &Vocab, ids: &mut [Rank], ranks: &[Rank]) -> usize {
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

/// Pieces of at most this many parts are merged by [`merge_ids_small`] with its rank array on
/// the stack; longer ones by [`merge_ids_large`].
const SMALL_IDS: usize = 256;

/// The vector merge loop over ids: `ranks[i]` is the id `ids[i]` and `ids[i + 1]` merge into
/// (`NO_RANK` if none), which is also that merge's rank. Returns how many ids remain at the
/// front of `ids`.
#[inline]
fn merge_ids_small(vocab: &Vocab, ids: &mut [Rank], ranks: &mut [Rank]) -> usize {
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

/// One part in [`merge_ids_large`]: its id, its neighbours, and the id it merges into with its
/// right neighbour (`NO_RANK` if none).
#[derive(Clone, Copy)]
struct IdNode {
    id: Rank,
    next: u32,
    prev: u32,
    rank: Rank,
}

/// The heap merge loop over ids (the same rule and tie order as [`merge_large`]), on
/// `out[base..]` in place.
fn merge_ids_large(vocab: &Vocab, out: &mut Vec<Rank>, base: usize) {
    const DEAD: u32 = u32::MAX - 1;
    let n = out.len() - base;
    if n >= (u32::MAX - 1) as usize {
        // Indices are stored as u32; a piece of 4 G parts takes the vector loop.
        let mut ranks: Vec<Rank> = out[base..]
            .windows(2)
            .map(|w| vocab.merged_or_none(w[0], w[1]))
            .collect();
        let len = merge_ids_small(vocab, &mut out[base..], &mut ranks);
        out.truncate(base + len);
        return;
    }
    let mut nodes: Vec<IdNode> = out[base..]
        .iter()
        .enumerate()
        .map(|(i, &id)| IdNode {
            id,
            next: if i + 1 < n { i as u32 + 1 } else { NONE },
            prev: if i == 0 { NONE } else { i as u32 - 1 },
            rank: NO_RANK,
        })
        .collect();
    let key = |rank: Rank, i: usize| std::cmp::Reverse(((rank as u64) << 32) | i as u64);
    let mut initial = Vec::with_capacity(n);
    for i in 0..n - 1 {
        let r = vocab.merged_or_none(nodes[i].id, nodes[i + 1].id);
        nodes[i].rank = r;
        if r != NO_RANK {
            initial.push(key(r, i));
        }
    }
    let mut heap = BinaryHeap::from(initial);
    while let Some(std::cmp::Reverse(entry)) = heap.pop() {
        let (r, i) = ((entry >> 32) as Rank, (entry & 0xFFFF_FFFF) as usize);
        if nodes[i].prev == DEAD || nodes[i].rank != r {
            continue;
        }
        let j = nodes[i].next as usize;
        let after = nodes[j].next;
        nodes[j].prev = DEAD;
        nodes[i].next = after;
        nodes[i].id = r;
        let r = if after != NONE {
            nodes[after as usize].prev = i as u32;
            vocab.merged_or_none(r, nodes[after as usize].id)
        } else {
            NO_RANK
        };
        nodes[i].rank = r;
        if r != NO_RANK {
            heap.push(key(r, i));
        }
        let p = nodes[i].prev;
        if p != NONE {
            let p = p as usize;
            let r = vocab.merged_or_none(nodes[p].id, nodes[i].id);
            nodes[p].rank = r;
            if r != NO_RANK {
                heap.push(key(r, p));
            }
        }
    }
    out.truncate(base);
    let mut i = 0u32;
    while i != NONE {
        out.push(nodes[i as usize].id);
        i = nodes[i as usize].next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(extra: &[&[u8]]) -> Vocab {
        let mut ranks: Vec<(Vec<u8>, Rank)> = (0..=255u8).map(|b| (vec![b], b as Rank)).collect();
        for (k, t) in extra.iter().enumerate() {
            ranks.push((t.to_vec(), 256 + k as Rank));
        }
        Vocab::new(ranks, vec![], None).unwrap()
    }

    fn split<'a>(piece: &'a [u8], starts: &[usize]) -> Vec<&'a [u8]> {
        let mut v = Vec::new();
        for (k, &s) in starts.iter().enumerate() {
            let e = starts.get(k + 1).copied().unwrap_or(piece.len());
            v.push(&piece[s..e]);
        }
        v
    }

    #[test]
    fn textbook_example() {
        // Ranks: "lo" < "low" < "er": "lower" -> low|er.
        let v = vocab(&[b"lo", b"low", b"er", b"lowe"]);
        let p = b"lower";
        let all: Vec<usize> = (0..p.len()).collect();
        // "lo" then "low" then "lowe" (rank 259) beats "er" (258)? No: "er" has rank 258 < 259.
        assert_eq!(split(p, &merge_small(&v, p, &all)), [&b"low"[..], b"er"]);
        assert_eq!(split(p, &merge_large(&v, p, &all)), [&b"low"[..], b"er"]);
    }

    #[test]
    fn ties_go_leftmost() {
        let v = vocab(&[b"aa"]);
        let p = b"aaaaa";
        let all: Vec<usize> = (0..p.len()).collect();
        assert_eq!(merge_small(&v, p, &all), vec![0, 2, 4]);
        assert_eq!(merge_large(&v, p, &all), vec![0, 2, 4]);
    }

    #[test]
    fn small_and_large_agree() {
        // A deterministic pseudo-random walk over a 3-letter alphabet with many merges.
        let toks: Vec<&[u8]> = vec![
            b"ab", b"ba", b"aa", b"abc", b"cab", b"bb", b"abab", b"ca", b"aab", b"bca", b"cc",
            b"abca", b"ccc", b"babc", b"aaaa",
        ];
        let v = vocab(&toks);
        let mut state = 0x9E3779B97F4A7C15u64;
        for len in 1..300 {
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b"abc"[(state % 3) as usize]
                })
                .collect();
            let all: Vec<usize> = (0..p.len()).collect();
            assert_eq!(
                merge_small(&v, &p, &all),
                merge_large(&v, &p, &all),
                "{:?}",
                p
            );
        }
    }

    /// The reference result: [`merge_small`] on bytes, each part looked up.
    fn reference_ids(v: &Vocab, p: &[u8]) -> Vec<Rank> {
        let all: Vec<usize> = (0..p.len()).collect();
        split(p, &merge_small(v, p, &all))
            .into_iter()
            .map(|t| v.rank(t).expect("part is a token"))
            .collect()
    }

    /// A `.tiktoken` rank file's lines, `base64 rank` (the model layer reads no file formats).
    fn parse_rank_file(data: &[u8]) -> Vec<(Vec<u8>, Rank)> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        data.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let line = std::str::from_utf8(l).unwrap();
                let (t, r) = line.split_once(' ').unwrap();
                (b64.decode(t).unwrap(), r.trim().parse().unwrap())
            })
            .collect()
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn id_merge_agrees_with_merge_small() {
        let toks: Vec<&[u8]> = vec![
            b"ab", b"ba", b"aa", b"abc", b"cab", b"bb", b"abab", b"ca", b"aab", b"bca", b"cc",
            b"abca", b"ccc", b"babc", b"aaaa", b"bab", b"cabab",
        ];
        let v = vocab(&toks);
        let mut state = 0x2545F4914F6CDD1Du64;
        for len in 1..400 {
            for _ in 0..4 {
                let p: Vec<u8> = (0..len)
                    .map(|_| b"abc"[(xorshift(&mut state) % 3) as usize])
                    .collect();
                let mut got = vec![7];
                merge_bytes_into(&v, &p, &mut got);
                assert_eq!(got[0], 7);
                assert_eq!(got[1..], reference_ids(&v, &p)[..], "{:?}", p);
                let mut ids = vec![9, 9];
                ids.extend(p.iter().map(|&b| b as Rank));
                merge_ids_into(&v, &mut ids, 2);
                assert_eq!(ids[2..], reference_ids(&v, &p)[..]);
                // Both short loops, directly (the tagged one serves vocabularies whose ids fit
                // 24 bits, the vector one the rest).
                if (2..=SMALL_IDS).contains(&p.len()) {
                    let init: Vec<Rank> = p.iter().map(|&b| b as Rank).collect();
                    let ranks: Vec<Rank> = init
                        .windows(2)
                        .map(|w| v.merged_or_none(w[0], w[1]))
                        .collect();
                    let (mut a, mut b) = (init.clone(), init);
                    let na = merge_ids_tagged::<SMALL_IDS>(&v, &mut a, &ranks);
                    let nb = merge_ids_small(&v, &mut b, &mut ranks.clone());
                    assert_eq!(a[..na], b[..nb]);
                    assert_eq!(a[..na], reference_ids(&v, &p)[..]);
                }
            }
        }
    }

    /// The real vocabularies, when `../shared` is there: random byte strings built from the
    /// corpora's bytes (so merges happen) and from random bytes, up to 300 bytes, id merge
    /// against `merge_small`.
    #[test]
    fn id_merge_agrees_on_shared_vocabularies() {
        let shared = std::env::var_os("TOKFORGE_SHARED")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
            });
        for name in ["cl100k_base", "o200k_base"] {
            let path = shared.join("vocabs").join(format!("{name}.tiktoken"));
            let Ok(data) = std::fs::read(&path) else {
                eprintln!("skipped: {} not found", path.display());
                return;
            };
            let ranks = parse_rank_file(&data);
            let v = Vocab::new(ranks, vec![], None).unwrap();
            let mut text = Vec::new();
            for corpus in ["en_docs", "man_ja", "man_ru", "code_py"] {
                if let Ok(t) = std::fs::read(shared.join("corpora").join(format!("{corpus}.txt"))) {
                    text.extend_from_slice(&t[..t.len().min(200_000)]);
                }
            }
            let mut state = 0x9E3779B97F4A7C15u64;
            for k in 0..3000 {
                // Mostly short pieces, and every tenth up to 1,500 bytes (the chunked path).
                let max = if k % 10 == 0 { 1500 } else { 300 };
                let len = 1 + (xorshift(&mut state) % max) as usize;
                let p: Vec<u8> = if k % 3 == 0 || text.len() < 1000 {
                    (0..len).map(|_| xorshift(&mut state) as u8).collect()
                } else {
                    let start = (xorshift(&mut state) as usize) % (text.len() - len);
                    text[start..start + len].to_vec()
                };
                let mut got = Vec::new();
                merge_bytes_into(&v, &p, &mut got);
                assert_eq!(got, reference_ids(&v, &p), "{name} {:?}", p);
                if p.len() <= SMALL_IDS {
                    // The baseline build of the short loop too, where the CPU picks AVX2.
                    let mut baseline = Vec::new();
                    merge_short_bytes_sized(&v, &p, &mut baseline);
                    assert_eq!(baseline, got, "{name} {:?}", p);
                }
            }
            // Runs of one byte and of short periods, across many lengths: the seams of the
            // chunked path fall everywhere relative to the tokens.
            for unit in [
                &b"a"[..],
                b" ",
                b"0",
                b"ab",
                b"\xe4\xb8\xad",
                b"\t\n",
                b"=-",
            ] {
                for reps in [129, 200, 255, 256, 257, 300, 511, 777, 1024, 1500] {
                    let p = unit.repeat(reps);
                    let mut got = Vec::new();
                    merge_bytes_into(&v, &p, &mut got);
                    assert_eq!(got, reference_ids(&v, &p), "{name} {unit:?} x {reps}");
                }
            }
        }
    }

    #[test]
    fn chunked_long_pieces_agree_with_merge_small() {
        let toks: Vec<&[u8]> = vec![
            b"ab",
            b"ba",
            b"aa",
            b"abc",
            b"cab",
            b"bb",
            b"abab",
            b"ca",
            b"aab",
            b"bca",
            b"cc",
            b"abca",
            b"ccc",
            b"babc",
            b"aaaa",
            b"bab",
            b"cabab",
            b"aaaaaaaa",
            b"aaa",
            b"bbbb",
            b"ccccc",
            b"abcabc",
            b"cabcab",
        ];
        let v = vocab(&toks);
        let mut state = 0x1234_5678_9ABC_DEF1u64;
        for k in 0..120 {
            let len = 257 + (xorshift(&mut state) % 2500) as usize;
            // Low-entropy alphabets make long tokens and many failed seams.
            let alphabet: &[u8] = match k % 3 {
                0 => b"abc",
                1 => b"aab",
                _ => b"a",
            };
            let p: Vec<u8> = (0..len)
                .map(|_| alphabet[(xorshift(&mut state) % alphabet.len() as u64) as usize])
                .collect();
            let mut got = vec![1, 2];
            merge_bytes_into(&v, &p, &mut got);
            assert_eq!(got[..2], [1, 2]);
            assert_eq!(got[2..], reference_ids(&v, &p)[..], "{:?}", p);
        }
    }
}
