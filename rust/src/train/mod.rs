//! Byte-level BPE training: count the pretokens of a corpus, then merge pairs greedily.
//!
//! # The rule
//! Ids `0..=255` are the single bytes in byte order; merge `k` adds id `256 + k`.
//! 1. Pretokenize every text with the chosen [`Pretokenizer`] (special tokens' text is cut out
//!    first and never takes part) and count each distinct pretoken, with `u64` counts.
//! 2. Repeatedly take the adjacent pair with the highest total count (every occurrence inside a
//!    pretoken counts, weighted by the pretoken's count); ties go to the smallest
//!    `(left id, right id)`. Replace it everywhere, left to right, by the next id.
//! 3. Stop after the requested number of merges, or earlier when the best pair's count is below
//!    `min_frequency`.
//!
//! Two kinds of pair are never merged, and are skipped as if they were absent:
//! - a pair whose merged token would be longer than `max_token_bytes` (when set);
//! - a pair whose merged bytes are already a token, i.e. a second pair spelling the same bytes
//!   (`(ab, c)` after `(a, bc)`). tiktoken's encoding rule looks tokens up by their bytes, so a
//!   vocabulary must not hold the same bytes twice, and [`crate::Vocab::new`] rejects it.
//!   Whether greedy merging can reach such a pair at all is not obvious (a search of millions
//!   of random small corpora found none), so this guard costs one set lookup per candidate and
//!   makes "every trained vocabulary loads" hold by construction. `tokforge.reference` applies
//!   the same rule.
//!
//! The result depends only on the multiset of pretokens: not on the thread count (per-thread
//! counts are summed), not on the order of texts or files, not on hash iteration order. The
//! choice of each merge is a total order on `(count, pair)`, and a merge's effect on the counts
//! is a sum over the words holding the pair, so the order in which words are stored or visited
//! cannot change anything (a test trains on the words forwards and backwards).
//!
//! # Performance notes
//! Measured on the 24 MB of shared corpora, cl100k pattern, vocab 32768 (32,512 merges over
//! 216 k distinct pretokens), 2 cores shared with other work (so +-20%).
//! - Counting is the pretokenizer's cost. With fancy-regex running the cl100k pattern (its
//!   possessive quantifiers and lookahead need the backtracking VM) it was ~21 MB/s per core;
//!   with the core's preset scanner the 24 MB count in ~0.12 s on 2 threads. Texts and file
//!   blocks are counted on every thread into a per-thread `FxHashMap`, summed at the end; large
//!   texts are cut into ~1 MiB blocks at points where every preset splits (see [`safe_cut`]),
//!   so one huge document still uses all threads. Each thread has its own pretokenizer: a
//!   compiled regex serves other threads through a mutex-guarded pool, which cost ~15% of the
//!   counting time with two threads sharing one.
//! - The counting map is probed with the piece's `&[u8]` and allocates a key only for a new
//!   pretoken: 95% of the 4.6 M pieces are repeats.
//! - Merging keeps, per pair, its count and the words it occurs in (stale entries are skipped),
//!   and a max-heap of `(count, pair)` with lazy invalidation: counts only ever fall for pairs
//!   already in the heap (every new pair contains the new id), so an entry whose count is stale
//!   is re-pushed with the current count when it reaches the top, and the first fresh entry is
//!   the true maximum. A merge touches only the words that hold the pair.
//! - The merge phase is bound by memory latency: 3.7 M word visits in random order, scanning
//!   62 M symbols. What was tried (CPU time of the merge phase):
//!   - words as `(start, len)` spans into a flat array plus a separate stamp array, and each
//!     occurrence updating the big pair map (12.5 M updates): ~0.95 s. `perf` put half of the
//!     visit time on the cache miss at a word's first symbol.
//!   - the header (length, stamp, count) inline before the symbols, one miss per visit instead
//!     of three, and count changes gathered per merge in small maps, then applied once per
//!     distinct pair: no clear change on its own; the first-touch miss still dominated.
//!   - dropping pairs below `min_frequency` for good (their counts only fall; with the default
//!     of 2 that halves the pair map and the heap) and prefetching the word 8 places ahead in
//!     the pair's list: ~0.55 s. Also prefetching the header's next cache line (half the words
//!     visited are longer than the 12 symbols the first line holds): ~0.45 s. Prefetching 4 or
//!     16 places ahead was no better than 8. Identical merges throughout.
//!   - not sorting the words before training (the result does not depend on their order):
//!     -40 ms.
//!   - inside the Python extension the same phase took ~0.95 s, and `perf` put the largest
//!     single cost on `BinaryHeap::pop` missing the cache while sifting down a heap of every
//!     pair. Keeping only the likely pairs in the heap and parking the rest (`Candidates`):
//!     ~0.6 s there, ~0.45-0.55 s standalone. Parking in buckets by octave of the count and
//!     heapifying the top bucket measured the same as selecting the top 16 k parked pairs at
//!     each refill, and is simpler.
//!   - not done: the first 8 k merges take ~80% of the time, and their word lists could be
//!     split over two threads with per-thread word lists.

mod corpus;
mod count;
#[cfg(test)]
mod tests;
mod trainer;

pub use corpus::{safe_cut, CorpusFile, FileFormat, Utf8Errors};
pub use count::{coverage_alphabet, CountStats, PretokenCounter};
pub use trainer::{Merge, Pair, StopReason, TrainConfig, Trainer};
