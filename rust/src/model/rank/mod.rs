//! The rank rule (tiktoken's) for one piece: start from single bytes (or, for a
//! character-level vocabulary, single characters), then repeatedly merge the adjacent pair whose
//! merged bytes have the lowest rank, the leftmost such pair on ties, until no adjacent pair
//! forms a token. tiktoken's rule, so the ids are identical.
//!
//! The encoder calls [`merge_bytes_into`] (byte-level vocabularies) and [`merge_chars_into`]
//! (vocabularies over characters with byte fallback). Both work on ids, never on bytes after the
//! first step: every part is a token, so "parts `a` and `b` make token `c`" is the vocabulary's
//! pair map answering `merged(a, b) == c`, and `c` is also the merge's rank.
//! - up to [`SMALL_IDS`] parts: vector loops with stack arrays sized by piece length, keys
//!   tagged with their slot so one vectorized minimum finds the leftmost lowest pair, and an
//!   AVX2 build that keeps the keys in registers (`short.rs`);
//! - longer byte pieces: chunks of 32 bytes merged on their own and stitched exactly
//!   (`long.rs`, with the proof);
//! - longer id sequences: the lazy heap shared with the merge-list rule (`super::heap`).
//!
//! The tests hold every loop against the oracle (`oracle.rs`: the rule on byte strings, a
//! vector and a heap version) on random pieces and, when the shared data is there, on cl100k
//! and o200k. Why the loops look as they do, with the measurements, is in
//! `docs/performance.md`.

mod long;
#[cfg(test)]
mod oracle;
mod short;
#[cfg(test)]
mod tests;

use super::heap::{heap_merge, PairRule};
use crate::error::{Result, TokforgeError};
use crate::util::utf8_width;
use crate::vocab::{Rank, Vocab, NO_RANK};

use long::merge_long_bytes_into;
use short::{merge_ids_short, merge_ids_small, merge_short_bytes_into};

/// Pieces of at most this many parts are merged by [`merge_ids_small`] with its rank array on
/// the stack; longer ones by [`merge_ids_large`].
const SMALL_IDS: usize = 256;

/// Appends the tokens of `piece` to `out`, starting from its single bytes: the encoder's path
/// for a byte-level vocabulary. Every byte must be a token (`Vocab::is_byte_level`).
///
/// Same result as the oracle's merge followed by a lookup of each part, but on ids: the first step reads
/// the byte and byte-pair tables, every later step asks [`Vocab::merged`] about two ids, and the
/// bytes are never hashed.
pub fn merge_bytes_into(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) {
    if piece.len() <= SMALL_IDS {
        merge_short_bytes_into(vocab, piece, out);
    } else {
        merge_long_bytes_into(vocab, piece, out);
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

/// For a vocabulary whose base alphabet is characters: merges runs of known characters, and
/// emits each unknown character as its UTF-8 bytes' fallback tokens (or, without fallback,
/// as its bytes' tokens; failing that, an error).
pub fn merge_chars_into(vocab: &Vocab, piece: &[u8], out: &mut Vec<Rank>) -> Result<()> {
    let mut run = out.len();
    let mut i = 0;
    while i < piece.len() {
        let w = utf8_width(piece[i]).min(piece.len() - i);
        let ch = &piece[i..i + w];
        if let Some(r) = vocab.rank(ch) {
            out.push(r);
        } else {
            merge_ids_into(vocab, out, run);
            for &b in ch {
                match vocab.fallback_id(b).or_else(|| vocab.rank(&[b])) {
                    Some(id) => out.push(id),
                    None => {
                        return Err(TokforgeError::NotAToken(format!(
                            "{} (not in the vocabulary, which has no byte fallback)",
                            String::from_utf8_lossy(ch)
                        )))
                    }
                }
            }
            run = out.len();
        }
        i += w;
    }
    merge_ids_into(vocab, out, run);
    Ok(())
}

/// The rank rule on ids: two ids merge into the token their bytes make, whose id is also the
/// merge's priority.
struct IdPairs<'a>(&'a Vocab);

impl PairRule for IdPairs<'_> {
    type Part = Rank;

    #[inline]
    fn pair(&self, left: Rank, right: Rank) -> Option<(u32, Rank)> {
        let m = self.0.merged_or_none(left, right);
        (m != NO_RANK).then_some((m, m))
    }
}

/// The heap merge loop over ids, on `out[base..]` in place.
fn merge_ids_large(vocab: &Vocab, out: &mut Vec<Rank>, base: usize) {
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
    heap_merge(&IdPairs(vocab), out, base);
}

/// The parts `piece` ends in when only merges of rank below `limit` may apply: for a token of
/// rank `r`, `merge_parts_below(bytes, r)` gives the two tokens it was merged from (tiktoken's
/// rule recovers a rank vocabulary's merges this way), and recursing gives its lineage.
/// Parts are ids; bytes that are not tokens on their own come back as their fallback id or,
/// failing that, make this an error.
pub fn merge_parts_below(vocab: &Vocab, piece: &[u8], limit: Rank) -> Result<Vec<Rank>> {
    let mut parts: Vec<&[u8]> = if vocab.is_byte_level() {
        piece.chunks(1).collect()
    } else {
        let mut v = Vec::new();
        let mut i = 0;
        while i < piece.len() {
            let w = utf8_width(piece[i]).min(piece.len() - i);
            v.push(&piece[i..i + w]);
            i += w;
        }
        v
    };
    loop {
        let mut best: Option<(Rank, usize)> = None;
        for i in 0..parts.len().saturating_sub(1) {
            let joined = [parts[i], parts[i + 1]].concat();
            if let Some(r) = vocab.rank(&joined) {
                if r < limit && !matches!(best, Some((b, _)) if b <= r) {
                    best = Some((r, i));
                }
            }
        }
        let Some((_, i)) = best else { break };
        // Both parts are subslices of `piece`, adjacent, so the merged part is one subslice.
        let start = parts[i].as_ptr() as usize - piece.as_ptr() as usize;
        let len = parts[i].len() + parts[i + 1].len();
        parts[i] = &piece[start..start + len];
        parts.remove(i + 1);
    }
    parts
        .into_iter()
        .map(|p| {
            vocab
                .rank(p)
                .or_else(|| (p.len() == 1).then(|| vocab.fallback_id(p[0])).flatten())
                .ok_or_else(|| TokforgeError::not_a_token(p))
        })
        .collect()
}
