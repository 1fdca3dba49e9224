//! Merging: the greedy loop over the counted pretokens, with the state that makes it fast.

use std::collections::BinaryHeap;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::{Result, TokforgeError};
use crate::vocab::Rank;

/// Two adjacent token ids, packed so that comparing the `u64`s compares `(left, right)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair(u64);

impl Pair {
    /// The pair `(left, right)`.
    #[inline]
    pub fn new(left: Rank, right: Rank) -> Self {
        Pair(((left as u64) << 32) | right as u64)
    }
    /// The left id.
    #[inline]
    pub fn left(self) -> Rank {
        (self.0 >> 32) as Rank
    }
    /// The right id.
    #[inline]
    pub fn right(self) -> Rank {
        self.0 as Rank
    }
}

/// One merge of a training run: the pair, and its count when it was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    /// The ids joined; the new id is the alphabet's size (256 for bytes) plus this merge's
    /// index.
    pub pair: (Rank, Rank),
    /// The pair's total count at the time it was merged.
    pub count: u64,
}

/// Options of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainConfig {
    /// How many merges to make at most (the vocabulary size minus 256 and the special tokens).
    pub merges: usize,
    /// Stop when the best pair occurs fewer times than this (values below 1 act as 1).
    pub min_frequency: u64,
    /// Never make a token longer than this many bytes.
    pub max_token_bytes: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            merges: 0,
            min_frequency: 2,
            max_token_bytes: None,
        }
    }
}

/// Why a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// It made the requested number of merges.
    Done,
    /// Every pair left occurs fewer than `min_frequency` times.
    MinFrequency,
    /// No eligible pair was left (every pretoken is one token, or the rest are ineligible).
    NoPairs,
}

/// The distinct pretokens being merged, in one flat `u32` array. Each word is a header and
/// its symbols: `[len, stamp, count_lo, count_hi, sym_0, .., sym_len-1]`, and it keeps its
/// original room when merging shortens it. A word is named by the offset of its header.
///
/// Why inline headers: a merge visits millions of words in random order, and each visit used
/// to miss the cache three times (the span, the stamp, the symbols). With the header next to
/// the symbols one miss (prefetched, see [`Words::prefetch`]) brings in all of it.
#[derive(Debug, Default)]
struct Words {
    data: Vec<u32>,
}

/// Offset of a word's header in [`Words::data`].
type WordRef = u32;

const HEADER: usize = 4;

/// How many words ahead [`Trainer::apply`] prefetches.
const PREFETCH_AHEAD: usize = 8;

impl Words {
    fn push(&mut self, syms: &[Rank], count: u64) -> Result<WordRef> {
        let at = WordRef::try_from(self.data.len())
            .ok()
            .filter(|_| self.data.len() + HEADER + syms.len() <= u32::MAX as usize)
            .ok_or_else(|| {
                TokforgeError::InvalidArgument("the distinct pretokens exceed 16 GiB".into())
            })?;
        self.data.extend([
            syms.len() as u32,
            u32::MAX,
            count as u32,
            (count >> 32) as u32,
        ]);
        self.data.extend_from_slice(syms);
        Ok(at)
    }

    /// Hints the processor to load the word's header (no effect where unsupported).
    #[inline]
    fn prefetch(&self, w: WordRef) {
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = self.data.get(w as usize) {
            // SAFETY: a prefetch is only a hint; it reads nothing and cannot fault, and the
            // pointer comes from a live reference anyway.
            #[allow(unused_unsafe)]
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                let p = (p as *const u32).cast::<i8>();
                _mm_prefetch::<_MM_HINT_T0>(p);
                // Half the words visited are longer than the header's cache line holds.
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = w;
    }

    #[inline]
    fn count(&self, w: WordRef) -> u64 {
        let o = w as usize;
        self.data[o + 2] as u64 | (self.data[o + 3] as u64) << 32
    }

    /// Marks the word as visited by merge `stamp`; false when it already was.
    #[inline]
    fn visit(&mut self, w: WordRef, stamp: u32) -> bool {
        let o = w as usize + 1;
        let first = self.data[o] != stamp;
        self.data[o] = stamp;
        first
    }

    /// The word's current symbols, and its length slot to update after merging.
    #[inline]
    fn syms_mut(&mut self, w: WordRef) -> (&mut [Rank], &mut u32) {
        let o = w as usize;
        let (head, rest) = self.data[o..].split_at_mut(HEADER);
        let len = head[0] as usize;
        (&mut rest[..len], &mut head[0])
    }
}

/// A pair's total count and the words it occurs in. `words` may hold a word twice or a word
/// that no longer has the pair: merging checks each word anyway, so cleaning up is not needed.
#[derive(Debug, Default)]
struct PairStats {
    count: u64,
    words: Vec<WordRef>,
}

/// A heap entry: max-heap by count; among equal counts the smallest pair comes first, which
/// makes the order total and the result deterministic.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct MergeJob {
    pub(super) count: u64,
    pub(super) pair: Pair,
}

impl Ord for MergeJob {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| other.pair.cmp(&self.pair))
    }
}

impl PartialOrd for MergeJob {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The pairs that may be merged next, best first. Only the likely ones sit in the max-heap;
/// the others are parked in buckets by the octave of the count they had when parked
/// (`[2^k, 2^(k+1))`). Every heap entry was pushed with a count of at least `threshold`, a power
/// of two, and every parked one below it; counts only fall, so whenever the heap's best entry is
/// fresh it beats every parked pair outright. When the heap runs dry, the highest non-empty
/// bucket becomes the heap (heapified in one pass) and the threshold comes down to its octave.
///
/// Why: with every pair in one heap (~300 k entries on the 24 MB benchmark) each pop's
/// sift-down missed the cache on the lower levels; now the heap holds one octave's pairs.
#[derive(Debug)]
struct Candidates {
    heap: BinaryHeap<MergeJob>,
    parked: Vec<Vec<MergeJob>>,
    threshold: u64,
}

impl Default for Candidates {
    fn default() -> Self {
        Candidates {
            heap: BinaryHeap::new(),
            parked: (0..64).map(|_| Vec::new()).collect(),
            threshold: u64::MAX,
        }
    }
}

impl Candidates {
    /// The octave of a count: `k` with `2^k <= count < 2^(k+1)`.
    fn octave(count: u64) -> usize {
        63 - count.max(1).leading_zeros() as usize
    }

    fn new(jobs: Vec<MergeJob>) -> Self {
        let mut c = Candidates::default();
        for j in jobs {
            c.push(j);
        }
        c
    }

    fn push(&mut self, job: MergeJob) {
        if job.count >= self.threshold {
            self.heap.push(job);
        } else {
            self.parked[Self::octave(job.count)].push(job);
        }
    }

    /// The entry with the highest `(count, smallest pair)` among the heap, refilling it from
    /// the highest parked octave when it is empty; `None` when nothing is left.
    fn pop(&mut self) -> Option<MergeJob> {
        if self.heap.is_empty() {
            let top = Self::octave(self.threshold.saturating_sub(1).max(1));
            if let Some(k) = (0..=top).rev().find(|&k| !self.parked[k].is_empty()) {
                self.threshold = 1 << k;
                self.heap = BinaryHeap::from(std::mem::take(&mut self.parked[k]));
            }
        }
        self.heap.pop()
    }
}

/// Merges `(a, b)` into `c` in one word, left to right, and reports each neighbouring pair that
/// disappears (`-1`) or appears (`+1`). The symbols are rewritten in place; returns the new
/// length. Reporting against the already-merged left neighbour keeps overlapping runs right:
///
/// `merge_word([a, b, a, b], (a, b), c)` -> `[c, c]`, reporting `(b, a) -1`, `(c, a) +1`,
/// `(c, a) -1`, `(c, c) +1`: net `(b, a) -1`, `(c, c) +1`.
pub(super) fn merge_word(
    syms: &mut [Rank],
    a: Rank,
    b: Rank,
    c: Rank,
    mut change: impl FnMut(Pair, bool),
) -> usize {
    let n = syms.len();
    let (mut i, mut j) = (0, 0);
    while i < n {
        if i + 1 < n && syms[i] == a && syms[i + 1] == b {
            if j > 0 {
                let x = syms[j - 1];
                change(Pair::new(x, a), false);
                change(Pair::new(x, c), true);
            }
            if i + 2 < n {
                let y = syms[i + 2];
                change(Pair::new(b, y), false);
                change(Pair::new(c, y), true);
            }
            syms[j] = c;
            i += 2;
        } else {
            syms[j] = syms[i];
            i += 1;
        }
        j += 1;
    }
    j
}

/// The merge loop's state. [`Trainer::step`] makes one merge; [`Trainer::run`] makes them all.
#[derive(Debug)]
pub struct Trainer {
    config: TrainConfig,
    words: Words,
    num_words: usize,
    pairs: FxHashMap<Pair, PairStats>,
    candidates: Candidates,
    /// The bytes of every id so far, and the set of them (to refuse duplicate tokens).
    tokens: Vec<Vec<u8>>,
    token_set: FxHashSet<Vec<u8>>,
    merges: Vec<Merge>,
    stop: Option<StopReason>,
    /// Whether some pair was dropped for occurring fewer than `min_frequency` times.
    set_aside: bool,
    /// Reused buffer for a candidate token's bytes.
    scratch: Vec<u8>,
}

impl Trainer {
    /// A trainer over distinct pretokens and their counts, in any order: the order does not
    /// change the result. The alphabet is the 256 bytes, so merge `k` makes id `256 + k`.
    pub fn new<B: AsRef<[u8]>>(
        words: impl IntoIterator<Item = (B, u64)>,
        config: TrainConfig,
    ) -> Result<Self> {
        let mut t = Trainer::empty((0..=255u8).map(|b| vec![b]).collect(), &[], config);
        let mut syms: Vec<Rank> = Vec::new();
        for (bytes, count) in words {
            let bytes = bytes.as_ref();
            syms.clear();
            syms.extend(bytes.iter().map(|&b| b as Rank));
            t.add_word(&syms, count)?;
        }
        t.finish();
        Ok(t)
    }

    /// A trainer over words made of the symbols of any alphabet: `alphabet[i]` is the bytes of
    /// symbol `i` (distinct, not empty), and merge `k` makes id `alphabet.len() + k`. Words are
    /// symbol ids with their counts, in any order (the same word may come several times: its
    /// counts add up). `reserved` are byte strings no merge may spell (besides the alphabet's):
    /// the tokens of a vocabulary that are not symbols here, such as `<0x41>` byte-fallback
    /// tokens or special tokens. The rule is the byte-level one (see the module docs).
    ///
    /// ```
    /// use tokforge::train::{Trainer, TrainConfig};
    /// let alphabet = vec!["l".as_bytes().to_vec(), "ö".as_bytes().to_vec()];
    /// let words = vec![(vec![0, 1, 0, 1], 3u64)];
    /// let config = TrainConfig { merges: 5, ..Default::default() };
    /// let mut t = Trainer::with_alphabet(alphabet, &[], words, config).unwrap();
    /// t.run(&mut |_| Ok(())).unwrap();
    /// assert_eq!(t.merges()[0].pair, (0, 1));
    /// assert_eq!(t.token_bytes(2), Some("lö".as_bytes()));
    /// ```
    pub fn with_alphabet<S: AsRef<[Rank]>>(
        alphabet: Vec<Vec<u8>>,
        reserved: &[Vec<u8>],
        words: impl IntoIterator<Item = (S, u64)>,
        config: TrainConfig,
    ) -> Result<Self> {
        let n = alphabet.len();
        if Rank::try_from(n).is_err() {
            return Err(TokforgeError::InvalidArgument(
                "the alphabet has 2^32 symbols or more".into(),
            ));
        }
        let distinct: FxHashSet<&[u8]> = alphabet.iter().map(Vec::as_slice).collect();
        if distinct.len() != n || alphabet.iter().any(Vec::is_empty) {
            return Err(TokforgeError::InvalidArgument(
                "the alphabet's symbols must be distinct and not empty".into(),
            ));
        }
        let mut t = Trainer::empty(alphabet, reserved, config);
        for (syms, count) in words {
            let syms = syms.as_ref();
            if let Some(&bad) = syms.iter().find(|&&s| s as usize >= n) {
                return Err(TokforgeError::InvalidArgument(format!(
                    "symbol {bad} is outside the alphabet of {n} symbols"
                )));
            }
            t.add_word(syms, count)?;
        }
        t.finish();
        Ok(t)
    }

    /// A trainer with no words yet: [`Self::add_word`] them, then [`Self::finish`].
    fn empty(alphabet: Vec<Vec<u8>>, reserved: &[Vec<u8>], config: TrainConfig) -> Self {
        let mut token_set: FxHashSet<Vec<u8>> = alphabet.iter().cloned().collect();
        token_set.extend(reserved.iter().cloned());
        Trainer {
            config,
            words: Words::default(),
            num_words: 0,
            pairs: FxHashMap::default(),
            candidates: Candidates::default(),
            tokens: alphabet,
            token_set,
            merges: Vec::new(),
            stop: None,
            set_aside: false,
            scratch: Vec::new(),
        }
    }

    /// Adds one word (symbol ids, all in the alphabet) with its count.
    pub(super) fn add_word(&mut self, syms: &[Rank], count: u64) -> Result<()> {
        // A one-symbol word has no pair: it can never take part in a merge.
        if syms.len() < 2 || count == 0 {
            return Ok(());
        }
        let wi = self.words.push(syms, count)?;
        self.num_words += 1;
        for w in syms.windows(2) {
            let st = self.pairs.entry(Pair::new(w[0], w[1])).or_default();
            st.count += count;
            if st.words.last() != Some(&wi) {
                st.words.push(wi);
            }
        }
        Ok(())
    }

    /// Drops the pairs that can never be merged and queues the others.
    pub(super) fn finish(&mut self) {
        // A pair's count only ever falls, so one already below min_frequency can never be
        // merged: forget it now. (With min_frequency 2 that drops about half of all pairs, and
        // the map and the heap shrink with them.)
        let floor = self.config.min_frequency.max(1);
        let before = self.pairs.len();
        self.pairs.retain(|_, st| st.count >= floor);
        self.set_aside = self.pairs.len() < before;
        let jobs: Vec<MergeJob> = self
            .pairs
            .iter()
            .filter(|(p, _)| self.fits(**p))
            .map(|(&pair, st)| MergeJob {
                count: st.count,
                pair,
            })
            .collect();
        self.candidates = Candidates::new(jobs);
    }

    /// Whether the merged token would respect `max_token_bytes`.
    fn fits(&self, p: Pair) -> bool {
        self.config.max_token_bytes.map_or(true, |max| {
            self.tokens[p.left() as usize].len() + self.tokens[p.right() as usize].len() <= max
        })
    }

    /// The merges made so far.
    pub fn merges(&self) -> &[Merge] {
        &self.merges
    }

    /// Why the run ended, once it has.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }

    /// Number of words with at least two symbols (the words merging works on).
    pub fn num_words(&self) -> usize {
        self.num_words
    }

    /// The bytes of a token id made so far.
    pub fn token_bytes(&self, id: Rank) -> Option<&[u8]> {
        self.tokens.get(id as usize).map(Vec::as_slice)
    }

    /// The eligible pair with the highest count (ties: smallest pair), and its count.
    fn best_pair(&mut self) -> Option<(Pair, u64)> {
        while let Some(job) = self.candidates.pop() {
            let current = self.pairs.get(&job.pair).map_or(0, |s| s.count);
            if current == 0 {
                continue; // gone: every occurrence was merged into something else
            }
            if current != job.count {
                // Stale: the count fell since the entry was pushed. Put it back where it now
                // belongs (the heap or a parked octave); entries above it are then fresh or
                // stale-but-higher.
                self.candidates.push(MergeJob {
                    count: current,
                    pair: job.pair,
                });
                continue;
            }
            let (l, r) = (job.pair.left() as usize, job.pair.right() as usize);
            let merged = &mut self.scratch;
            merged.clear();
            merged.extend_from_slice(&self.tokens[l]);
            merged.extend_from_slice(&self.tokens[r]);
            if self.token_set.contains(merged) {
                continue; // spells an existing token: never eligible (see the module docs)
            }
            return Some((job.pair, current));
        }
        None
    }

    /// Makes the next merge, or returns `None` when the run is over (see [`Self::stop_reason`]).
    pub fn step(&mut self) -> Option<Merge> {
        if self.stop.is_some() {
            return None;
        }
        if self.merges.len() >= self.config.merges {
            self.stop = Some(StopReason::Done);
            return None;
        }
        let Some((pair, count)) = self.best_pair() else {
            self.stop = Some(if self.set_aside {
                StopReason::MinFrequency
            } else {
                StopReason::NoPairs
            });
            return None;
        };
        let new_id = Rank::try_from(self.tokens.len()).expect("fewer than 2^32 tokens");
        // Register the new token first: `apply` checks the new pairs' lengths against it.
        let mut bytes = self.tokens[pair.left() as usize].clone();
        bytes.extend_from_slice(&self.tokens[pair.right() as usize]);
        self.token_set.insert(bytes.clone());
        self.tokens.push(bytes);
        self.apply(pair, new_id);
        let m = Merge {
            pair: (pair.left(), pair.right()),
            count,
        };
        self.merges.push(m);
        Some(m)
    }

    /// Makes merges until the run ends. `progress(merges_done)` is called every 64 merges and
    /// at the end; an error it returns (an interrupt, say) stops the run and is returned.
    pub fn run(&mut self, progress: &mut dyn FnMut(usize) -> Result<()>) -> Result<StopReason> {
        while self.step().is_some() {
            if self.merges.len() % 64 == 0 {
                progress(self.merges.len())?;
            }
        }
        progress(self.merges.len())?;
        Ok(self.stop.unwrap_or(StopReason::Done))
    }

    /// Rewrites every word that holds `pair`, updates the pair counts, and queues the pairs the
    /// merge created (all of which contain `new_id`).
    ///
    /// The changes are gathered per merge before they touch the big pair map: an old pair only
    /// loses occurrences (`lost`), a pair with the new id is new (`fresh`). Both maps stay small
    /// and cache-resident, and the big map then sees one update per distinct pair instead of
    /// one per occurrence.
    fn apply(&mut self, pair: Pair, new_id: Rank) {
        let Some(stats) = self.pairs.remove(&pair) else {
            return;
        };
        let (a, b) = (pair.left(), pair.right());
        let stamp = self.merges.len() as u32;
        // Sized for the common small merge; a big one grows them a few times.
        let hint = stats.words.len().min(256);
        let mut lost: FxHashMap<Pair, u64> =
            FxHashMap::with_capacity_and_hasher(hint, Default::default());
        let mut fresh: FxHashMap<Pair, PairStats> =
            FxHashMap::with_capacity_and_hasher(hint, Default::default());
        let words = &mut self.words;
        for (k, &wi) in stats.words.iter().enumerate() {
            // The words are scattered over the array and each first touch misses the cache;
            // asking for the one PREFETCH_AHEAD places later overlaps those misses.
            if let Some(&ahead) = stats.words.get(k + PREFETCH_AHEAD) {
                words.prefetch(ahead);
            }
            if !words.visit(wi, stamp) {
                continue; // listed twice
            }
            let w = words.count(wi);
            let (syms, len) = words.syms_mut(wi);
            *len = merge_word(syms, a, b, new_id, |p, appears| {
                if p == pair {
                    // Its entry is already gone. (Only `(a, a)` runs report it: `aaa`.)
                } else if p.left() == new_id || p.right() == new_id {
                    let st = fresh.entry(p).or_default();
                    if appears {
                        st.count += w;
                        if st.words.last() != Some(&wi) {
                            st.words.push(wi);
                        }
                    } else {
                        // `abab` -> `c ab` -> `c c`: (c, a) appeared, then went again.
                        st.count -= w;
                    }
                } else {
                    debug_assert!(!appears, "every pair that appears contains the new id");
                    *lost.entry(p).or_default() += w;
                }
            }) as u32;
        }
        let floor = self.config.min_frequency.max(1);
        for (p, n) in lost {
            if let Some(st) = self.pairs.get_mut(&p) {
                st.count -= n;
                if st.count < floor {
                    // Below the floor for good: forget it (its heap entry goes stale).
                    self.set_aside |= st.count > 0;
                    self.pairs.remove(&p);
                }
            }
        }
        for (p, st) in fresh {
            if st.count < floor {
                self.set_aside |= st.count > 0;
                continue; // can never be merged (see `new`)
            }
            if self.fits(p) {
                self.candidates.push(MergeJob {
                    count: st.count,
                    pair: p,
                });
            }
            self.pairs.insert(p, st);
        }
    }
}
