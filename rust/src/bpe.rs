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

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::vocab::{Rank, Vocab};

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

/// The heap version of the merge loop (see the module docs).
pub fn merge_large(vocab: &Vocab, piece: &[u8], starts: &[usize]) -> Vec<usize> {
    let n = starts.len();
    let start: Vec<usize> = starts.to_vec();
    let mut next: Vec<u32> = (1..=n as u32).collect();
    next[n - 1] = NONE;
    let mut prev: Vec<u32> = (0..n as u32).map(|i| i.wrapping_sub(1)).collect();
    prev[0] = NONE;
    let mut alive = vec![true; n];
    // The current rank of the pair (i, next[i]); heap entries disagreeing with it are stale.
    let mut rank = vec![Rank::MAX; n];

    let end_of = |next: &[u32], i: usize| -> usize {
        match next[i] {
            NONE => piece.len(),
            j => start[j as usize],
        }
    };
    let pair_rank = |next: &[u32], i: usize| -> Rank {
        match next[i] {
            NONE => Rank::MAX,
            j => vocab
                .rank(&piece[start[i]..end_of(next, j as usize)])
                .unwrap_or(Rank::MAX),
        }
    };

    // Min-heap by (rank, part index); part index order is position order, so ties go leftmost.
    let mut heap: BinaryHeap<Reverse<(Rank, u32)>> = BinaryHeap::with_capacity(n);
    for i in 0..n {
        rank[i] = pair_rank(&next, i);
        if rank[i] != Rank::MAX {
            heap.push(Reverse((rank[i], i as u32)));
        }
    }
    while let Some(Reverse((r, i))) = heap.pop() {
        let i = i as usize;
        if !alive[i] || rank[i] != r {
            continue;
        }
        // Merge part i with its right neighbour j.
        let j = next[i] as usize;
        alive[j] = false;
        next[i] = next[j];
        if next[j] != NONE {
            prev[next[j] as usize] = i as u32;
        }
        rank[i] = pair_rank(&next, i);
        if rank[i] != Rank::MAX {
            heap.push(Reverse((rank[i], i as u32)));
        }
        if prev[i] != NONE {
            let p = prev[i] as usize;
            rank[p] = pair_rank(&next, p);
            if rank[p] != Rank::MAX {
                heap.push(Reverse((rank[p], p as u32)));
            }
        }
    }
    let mut out = Vec::new();
    let mut i = 0u32;
    while i != NONE {
        out.push(start[i as usize]);
        i = next[i as usize];
    }
    out
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
}
