//! The rank rule in its plainest form, on byte strings: the oracle the fast loops are tested
//! against. Parts are byte spans of the piece, looked up by their bytes; nothing is
//! precomputed. Tests only.

use crate::model::heap::{heap_merge, PairRule};
use crate::vocab::{Rank, Vocab};

/// Merges the parts of `piece` that start at `starts` (strictly increasing, first is 0; each
/// part must itself be a token) and returns the start offsets of the final parts, with a flat
/// vector of parts rescanned after every merge: O(n·m).
///
/// `merge_small(v, b"aaa", &[0, 1, 2]) -> [0, 2]` when `aa` is a token and `aaa` is not.
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

/// [`merge_small`] by the shared lazy heap ([`heap_merge`] over byte spans): O(n log n).
pub fn merge_large(vocab: &Vocab, piece: &[u8], starts: &[usize]) -> Vec<usize> {
    if piece.len() >= (u32::MAX - 1) as usize {
        // Offsets are stored as u32; a piece this large (4 GiB) takes the slow path.
        return merge_small(vocab, piece, starts);
    }
    /// Spans merge into their union when its bytes are a token, by that token's rank.
    struct Spans<'a> {
        vocab: &'a Vocab,
        piece: &'a [u8],
    }
    impl PairRule for Spans<'_> {
        type Part = (u32, u32);
        fn pair(&self, l: (u32, u32), r: (u32, u32)) -> Option<(u32, (u32, u32))> {
            let rank = self.vocab.rank(&self.piece[l.0 as usize..r.1 as usize])?;
            Some((rank, (l.0, r.1)))
        }
    }
    let mut spans: Vec<(u32, u32)> = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            (
                s as u32,
                starts.get(k + 1).map_or(piece.len(), |&e| e) as u32,
            )
        })
        .collect();
    heap_merge(&Spans { vocab, piece }, &mut spans, 0);
    spans.into_iter().map(|(s, _)| s as usize).collect()
}
