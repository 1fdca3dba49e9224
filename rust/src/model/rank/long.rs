//! Long pieces: merged in chunks, each stitched exactly to what came before.

use rustc_hash::FxHashMap;

use super::short::merge_short_bytes_into;
use super::{merge_ids_large, SMALL_IDS};
use crate::vocab::{Rank, Vocab, NO_RANK};

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
/// see the table in `docs/performance.md`.
pub(super) fn merge_long_bytes_into(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
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
