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

use std::collections::BinaryHeap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::{Result, TokforgeError};
use crate::pretokenize::{Pretokenizer, PretokenizerSpec};
use crate::util::parallel_map;
use crate::vocab::Rank;

// ------------------------------------------------------------------------------------------
// Counting
// ------------------------------------------------------------------------------------------

/// Texts larger than this are cut into blocks (at safe points) so that threads share them.
const BLOCK_BYTES: usize = 1 << 20;

/// A file block with no safe cut point grows up to this size before it is cut before a space.
const MAX_BLOCK_BYTES: usize = 16 << 20;

/// Pretoken bytes -> how many times the pretoken occurred.
type CountMap = FxHashMap<Box<[u8]>, u64>;

/// What to do with bytes that are not valid UTF-8 in a corpus file or a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf8Errors {
    /// Fail, naming the file, byte offset and line.
    Strict,
    /// Replace each invalid sequence by U+FFFD.
    Replace,
}

impl Utf8Errors {
    /// `"strict"` or `"replace"`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "strict" => Ok(Utf8Errors::Strict),
            "replace" => Ok(Utf8Errors::Replace),
            _ => Err(TokforgeError::InvalidArgument(format!(
                "errors must be \"strict\" or \"replace\", not {name:?}"
            ))),
        }
    }
}

/// How a corpus file holds its text. Gzip compression is recognised by the file's first bytes,
/// whatever its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// Plain UTF-8 text.
    Text,
    /// One JSON object per line; the text is the string under this key.
    Jsonl { field: String },
}

/// A file to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub format: FileFormat,
}

impl CorpusFile {
    /// A file whose format follows its name: `.jsonl` / `.ndjson` (optionally with `.gz`) is
    /// JSON lines read through `field`; anything else is plain text.
    pub fn from_path(path: impl Into<PathBuf>, field: &str) -> Self {
        let path = path.into();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let format = if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") {
            FileFormat::Jsonl {
                field: field.to_string(),
            }
        } else {
            FileFormat::Text
        };
        CorpusFile { path, format }
    }
}

/// Totals of what a [`PretokenCounter`] has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountStats {
    /// Bytes of text counted (after decompression and UTF-8 repair).
    pub bytes: u64,
    /// Pretokens counted, repeats included.
    pub pretokens: u64,
    /// Texts, JSON records or file blocks counted.
    pub documents: u64,
}

impl CountStats {
    fn add(&mut self, o: CountStats) {
        self.bytes += o.bytes;
        self.pretokens += o.pretokens;
        self.documents += o.documents;
    }
}

/// Counts distinct pretokens over texts and files, on several threads.
///
/// ```
/// use tokforge::pretokenize::WhitespacePretokenizer;
/// use tokforge::train::PretokenCounter;
/// let mut c = PretokenCounter::new(Box::new(WhitespacePretokenizer), &[], 2).unwrap();
/// c.add_texts(&["low lower", "low"]).unwrap();
/// let counts = c.sorted_counts();
/// assert_eq!(counts, vec![(b" ".to_vec(), 1), (b"low".to_vec(), 2), (b"lower".to_vec(), 1)]);
/// ```
#[derive(Debug)]
pub struct PretokenCounter {
    /// One pretokenizer per thread: a compiled regex keeps a pool of search caches, and every
    /// thread but the one that created it takes the pool's slow path (a mutex) on each search;
    /// that cost ~15% of counting time with two threads. Rebuilt from the spec (a few ms).
    pretoks: Vec<Box<dyn Pretokenizer>>,
    /// Special tokens' texts, cut out of every text before pretokenizing.
    specials: Option<AhoCorasick>,
    /// The special tokens' texts as given (a counts file records them).
    special_tokens: Vec<String>,
    num_threads: usize,
    counts: CountMap,
    stats: CountStats,
}

/// What a worker needs to count a text: shared, read-only.
#[derive(Clone, Copy)]
struct CountCtx<'a> {
    pretok: &'a dyn Pretokenizer,
    specials: Option<&'a AhoCorasick>,
}

impl CountCtx<'_> {
    /// Adds the pretokens of `text` to `map`.
    fn count(
        &self,
        text: &str,
        map: &mut CountMap,
        ranges: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<CountStats> {
        let mut stats = CountStats {
            bytes: text.len() as u64,
            pretokens: 0,
            documents: 1,
        };
        let mut stretch = |s: &str, map: &mut CountMap| -> Result<()> {
            ranges.clear();
            self.pretok.split(s, ranges)?;
            stats.pretokens += ranges.len() as u64;
            for r in ranges.iter() {
                let piece = &s.as_bytes()[r.clone()];
                // Look up by slice first: most pieces repeat, and only a new one needs a key.
                match map.get_mut(piece) {
                    Some(c) => *c += 1,
                    None => {
                        map.insert(piece.into(), 1);
                    }
                }
            }
            Ok(())
        };
        match self.specials {
            None => stretch(text, map)?,
            Some(ac) => {
                let mut pos = 0;
                for m in ac.find_iter(text) {
                    stretch(&text[pos..m.start()], map)?;
                    pos = m.end();
                }
                stretch(&text[pos..], map)?;
            }
        }
        Ok(stats)
    }
}

/// Adds every entry of `from` to `into` (the larger map should be `into`).
fn merge_counts(into: &mut CountMap, from: CountMap) {
    into.reserve(from.len() / 2);
    for (k, v) in from {
        *into.entry(k).or_insert(0) += v;
    }
}

impl PretokenCounter {
    /// A counter that splits with `pretok`, cuts out `special_tokens` first, and uses up to
    /// `num_threads` threads (0 means all available cores).
    pub fn new(
        pretok: Box<dyn Pretokenizer>,
        special_tokens: &[String],
        num_threads: usize,
    ) -> Result<Self> {
        let specials = if special_tokens.is_empty() {
            None
        } else {
            if special_tokens.iter().any(|s| s.is_empty()) {
                return Err(TokforgeError::InvalidArgument(
                    "a special token is the empty string".into(),
                ));
            }
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(special_tokens)
                    .map_err(|e| TokforgeError::InvalidArgument(format!("special tokens: {e}")))?,
            )
        };
        let num_threads = if num_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            num_threads
        };
        let mut pretoks = vec![pretok];
        for _ in 1..num_threads {
            match pretoks[0].spec().build() {
                Ok(p) => pretoks.push(p),
                Err(_) => break, // not rebuildable (a callable): the threads share the first
            }
        }
        Ok(PretokenCounter {
            pretoks,
            specials,
            special_tokens: special_tokens.to_vec(),
            num_threads,
            counts: CountMap::default(),
            stats: CountStats::default(),
        })
    }

    /// What thread `i` counts with.
    fn ctx(&self, i: usize) -> CountCtx<'_> {
        CountCtx {
            pretok: &*self.pretoks[i % self.pretoks.len()],
            specials: self.specials.as_ref(),
        }
    }

    /// The number of threads counting uses.
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }

    /// Totals so far.
    pub fn stats(&self) -> CountStats {
        self.stats
    }

    /// Number of distinct pretokens so far.
    pub fn num_distinct(&self) -> usize {
        self.counts.len()
    }

    /// The count of one pretoken (0 when never seen).
    pub fn count_of(&self, pretoken: &[u8]) -> u64 {
        self.counts.get(pretoken).copied().unwrap_or(0)
    }

    /// Counts the pretokens of each text (each text is pretokenized on its own).
    pub fn add_texts<S: AsRef<str> + Sync>(&mut self, texts: &[S]) -> Result<()> {
        // Work items: whole small texts, and ~1 MiB blocks of large ones.
        let mut items: Vec<&str> = Vec::with_capacity(texts.len());
        for t in texts {
            let t = t.as_ref();
            if t.len() <= BLOCK_BYTES {
                items.push(t);
            } else {
                let mut rest = t;
                while rest.len() > BLOCK_BYTES {
                    let cut = safe_cut(&rest.as_bytes()[..BLOCK_BYTES]).unwrap_or(rest.len());
                    items.push(&rest[..cut]);
                    rest = &rest[cut..];
                }
                items.push(rest);
            }
        }
        let total: usize = items.iter().map(|s| s.len()).sum();
        let threads = self.num_threads.min(items.len()).max(1);
        let (maps, stats) = if threads == 1 || total < 64 * 1024 {
            let ctx = CountCtx {
                pretok: &*self.pretoks[0],
                specials: self.specials.as_ref(),
            };
            let mut ranges = Vec::new();
            let mut stats = CountStats::default();
            for s in &items {
                stats.add(ctx.count(s, &mut self.counts, &mut ranges)?);
            }
            (Vec::new(), stats)
        } else {
            // One map per thread; threads take the next item from a shared index, so a slow
            // text (CJK, code) does not stall a fixed share of the others.
            let next = AtomicUsize::new(0);
            let results = parallel_map(&(0..threads).collect::<Vec<_>>(), threads, |&t| {
                let ctx = self.ctx(t);
                let mut map = CountMap::default();
                let mut ranges = Vec::new();
                let mut stats = CountStats::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = items.get(i) else { break };
                    stats.add(ctx.count(s, &mut map, &mut ranges)?);
                }
                Ok((map, stats))
            })?;
            let mut stats = CountStats::default();
            let maps = results
                .into_iter()
                .map(|(m, s)| {
                    stats.add(s);
                    m
                })
                .collect();
            (maps, stats)
        };
        for m in maps {
            self.absorb(m);
        }
        self.stats.add(stats);
        // Every text counts as one document, however many blocks it was cut into.
        self.stats.documents -= (items.len() - texts.len()) as u64;
        Ok(())
    }

    /// Sums another map into the counts, iterating over the smaller of the two.
    fn absorb(&mut self, mut m: CountMap) {
        if m.len() > self.counts.len() {
            std::mem::swap(&mut m, &mut self.counts);
        }
        merge_counts(&mut self.counts, m);
    }

    /// Counts the pretokens of files, read as a stream: memory grows with the number of
    /// distinct pretokens, not with the files' sizes. One thread reads (and decompresses) while
    /// the others count ~1 MiB blocks. Plain text files are cut into blocks after a newline
    /// that is followed by a character other than whitespace and `/` (see [`safe_cut`]): the
    /// presets and the whitespace pretokenizer always split there, so blocks give the same
    /// pretokens as the whole file; a custom regex whose match would cross such a point is cut
    /// there. Each JSON line is one document.
    ///
    /// `progress(bytes_read, bytes_total)` is called from the calling thread after each block
    /// (sizes on disk, so compressed bytes for gzip); an error it returns stops the counting.
    pub fn add_files(
        &mut self,
        files: &[CorpusFile],
        errors: Utf8Errors,
        progress: &mut dyn FnMut(u64, u64) -> Result<()>,
    ) -> Result<()> {
        let mut total = 0u64;
        for f in files {
            let meta = std::fs::metadata(&f.path).map_err(|e| TokforgeError::io(&f.path, e))?;
            if meta.is_dir() {
                return Err(TokforgeError::io(
                    &f.path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "is a directory, not a file",
                    ),
                ));
            }
            total += meta.len();
        }
        let threads = self.num_threads.max(1);
        let (tx, rx) = mpsc::sync_channel::<Block>(2 * threads);
        let rx = Mutex::new(rx);
        let abort = AtomicBool::new(false);
        let (read_result, worker_results) = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let ctx = self.ctx(t);
                    let (rx, abort) = (&rx, &abort);
                    s.spawn(move || count_blocks(ctx, files, errors, rx, abort))
                })
                .collect();
            let read_result = read_files(files, tx, &abort, total, progress);
            if read_result.is_err() {
                abort.store(true, Ordering::Relaxed);
            }
            let worker_results: Vec<_> = workers.into_iter().map(|h| h.join()).collect();
            (read_result, worker_results)
        });
        // The first error in file order wins, whichever thread met it.
        let mut first: Option<(u64, u64, TokforgeError)> = None;
        let mut keep = |e: BlockError| {
            if first
                .as_ref()
                .map_or(true, |(f, o, _)| (e.file, e.offset) < (*f, *o))
            {
                first = Some((e.file, e.offset, e.error));
            }
        };
        if let Err(e) = read_result {
            keep(e);
        }
        let mut maps = Vec::new();
        let mut stats = CountStats::default();
        for r in worker_results {
            match r {
                Ok(Ok((m, st))) => {
                    maps.push(m);
                    stats.add(st);
                }
                Ok(Err(e)) => keep(e),
                Err(_) => keep(BlockError {
                    file: u64::MAX,
                    offset: 0,
                    error: TokforgeError::InvalidArgument("a counting thread panicked".into()),
                }),
            }
        }
        if let Some((_, _, e)) = first {
            return Err(e);
        }
        for m in maps {
            self.absorb(m);
        }
        self.stats.add(stats);
        Ok(())
    }

    /// The distinct pretokens with their counts, sorted by bytes: the training input, in an
    /// order that depends on nothing but the pretokens themselves.
    pub fn sorted_counts(&self) -> Vec<(Vec<u8>, u64)> {
        let mut v: Vec<(Vec<u8>, u64)> =
            self.counts.iter().map(|(k, &c)| (k.to_vec(), c)).collect();
        v.sort_unstable();
        v
    }

    /// The pretokenizer the counter splits with, as a spec that can be saved and rebuilt.
    pub fn spec(&self) -> PretokenizerSpec {
        self.pretoks[0].spec()
    }

    /// The special tokens whose text is cut out before pretokenizing, as given.
    pub fn special_tokens(&self) -> &[String] {
        &self.special_tokens
    }

    /// Adds counts made elsewhere (another process, a counts file) and their totals: the
    /// result is as if this counter had seen that text too. Counts of 0 are ignored.
    ///
    /// ```
    /// use tokforge::pretokenize::WhitespacePretokenizer;
    /// use tokforge::train::{CountStats, PretokenCounter};
    /// let mut c = PretokenCounter::new(Box::new(WhitespacePretokenizer), &[], 1).unwrap();
    /// c.add_texts(&["low low"]).unwrap();
    /// c.add_counts(vec![(b"low".to_vec(), 3)], CountStats::default());
    /// assert_eq!(c.count_of(b"low"), 5);
    /// ```
    pub fn add_counts(
        &mut self,
        counts: impl IntoIterator<Item = (Vec<u8>, u64)>,
        stats: CountStats,
    ) {
        let mut map = CountMap::default();
        for (k, c) in counts {
            if c > 0 {
                *map.entry(k.into_boxed_slice()).or_insert(0) += c;
            }
        }
        self.absorb(map);
        self.stats.add(stats);
    }

    /// Drops every pretoken counted fewer than `min_count` times, to bound memory. Training
    /// on what is left is an approximation: the dropped pretokens' pairs no longer count.
    /// Returns how many distinct pretokens and how many occurrences were dropped.
    pub fn prune(&mut self, min_count: u64) -> (u64, u64) {
        let (mut distinct, mut occurrences) = (0u64, 0u64);
        self.counts.retain(|_, c| {
            let keep = *c >= min_count;
            if !keep {
                distinct += 1;
                occurrences += *c;
            }
            keep
        });
        (distinct, occurrences)
    }

    /// The `n` most frequent pretokens, most frequent first (ties by bytes).
    pub fn most_common(&self, n: usize) -> Vec<(Vec<u8>, u64)> {
        let mut v: Vec<(&[u8], u64)> = self.counts.iter().map(|(k, &c)| (&**k, c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter()
            .take(n)
            .map(|(k, c)| (k.to_vec(), c))
            .collect()
    }

    /// A trainer over the counts so far (the counter can go on counting afterwards).
    ///
    /// The words go in map order, unsorted: the result cannot depend on their order (see the
    /// module docs), and sorting 216 k pretokens cost 40 ms of a 0.6 s run.
    pub fn trainer(&self, config: TrainConfig) -> Result<Trainer> {
        Trainer::new(self.counts.iter().map(|(k, &c)| (&**k, c)), config)
    }

    /// How often each character occurs in the counted pretokens (a pretoken's characters
    /// weighted by its count), most frequent first, ties by code point: what
    /// [`coverage_alphabet`] chooses a byte-fallback alphabet from.
    pub fn char_counts(&self) -> Result<Vec<(char, u64)>> {
        let mut ascii = [0u64; 128];
        let mut other: FxHashMap<char, u64> = FxHashMap::default();
        for (k, &c) in &self.counts {
            for ch in pretoken_str(k)?.chars() {
                match ascii.get_mut(ch as usize) {
                    Some(slot) => *slot += c,
                    None => *other.entry(ch).or_insert(0) += c,
                }
            }
        }
        let mut v: Vec<(char, u64)> = (0u8..128)
            .filter(|&b| ascii[b as usize] > 0)
            .map(|b| (b as char, ascii[b as usize]))
            .chain(other)
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(v)
    }

    /// A trainer for a character-level vocabulary with byte fallback: the symbols are
    /// `alphabet` (symbol `i` is `alphabet[i]`, merge `k` makes id `alphabet.len() + k`), and
    /// each pretoken is cut at every character outside the alphabet (those become byte tokens
    /// that never merge), the pieces being independent words. `reserved` are the other tokens'
    /// bytes, which no merge may spell (see [`Trainer::with_alphabet`]).
    pub fn char_trainer(
        &self,
        alphabet: &[char],
        reserved: &[Vec<u8>],
        config: TrainConfig,
    ) -> Result<Trainer> {
        const NONE: Rank = Rank::MAX;
        let mut ascii = [NONE; 128];
        let mut other: FxHashMap<char, Rank> = FxHashMap::default();
        for (i, &ch) in alphabet.iter().enumerate() {
            let i = Rank::try_from(i)
                .ok()
                .filter(|&i| i != NONE)
                .ok_or_else(|| {
                    TokforgeError::InvalidArgument("the alphabet is too large".into())
                })?;
            match ascii.get_mut(ch as usize) {
                Some(slot) => *slot = i,
                None => {
                    other.insert(ch, i);
                }
            }
        }
        let symbols: Vec<Vec<u8>> = alphabet
            .iter()
            .map(|c| c.to_string().into_bytes())
            .collect();
        let mut t = Trainer::with_alphabet(
            symbols,
            reserved,
            std::iter::empty::<(&[Rank], u64)>(),
            config,
        )?;
        let mut seg: Vec<Rank> = Vec::new();
        for (k, &c) in &self.counts {
            seg.clear();
            for ch in pretoken_str(k)?.chars() {
                let id = match ascii.get(ch as usize) {
                    Some(&id) => id,
                    None => other.get(&ch).copied().unwrap_or(NONE),
                };
                if id == NONE {
                    // A barrier: the word goes on as a separate one after it.
                    t.add_word(&seg, c)?;
                    seg.clear();
                } else {
                    seg.push(id);
                }
            }
            t.add_word(&seg, c)?;
        }
        t.finish();
        Ok(t)
    }
}

/// A pretoken as text (counted text is UTF-8; a counts file could hold anything).
fn pretoken_str(k: &[u8]) -> Result<&str> {
    std::str::from_utf8(k).map_err(|e| TokforgeError::InvalidUtf8 {
        offset: e.valid_up_to(),
        context: format!(" in the pretoken {k:?}: character-level training needs UTF-8 text"),
    })
}

/// The byte-fallback alphabet for `coverage` (SentencePiece's `character_coverage`): the
/// fewest characters, most frequent first, whose occurrences make up at least that share of all
/// of them. `counts` is [`PretokenCounter::char_counts`]' order; a character is taken while the
/// ones before it cover less than `coverage`. `coverage` 1 takes every character.
///
/// ```
/// use tokforge::train::coverage_alphabet;
/// let counts = vec![('a', 90), ('b', 9), ('c', 1)];
/// assert_eq!(coverage_alphabet(&counts, 0.9), vec!['a']);
/// assert_eq!(coverage_alphabet(&counts, 0.95), vec!['a', 'b']);
/// assert_eq!(coverage_alphabet(&counts, 1.0), vec!['a', 'b', 'c']);
/// ```
pub fn coverage_alphabet(counts: &[(char, u64)], coverage: f64) -> Vec<char> {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    let want = coverage * total as f64;
    let mut acc = 0u64;
    let mut out = Vec::new();
    for &(ch, n) in counts {
        if acc as f64 >= want {
            break;
        }
        acc += n;
        out.push(ch);
    }
    out
}

/// Where to cut a text so that the pieces on both sides are the ones the whole text has: the
/// last position in `buf` (not at its very end) that follows a `\n` and starts a character that
/// is neither whitespace nor `/`. No preset match crosses such a point: cl100k's and gpt2's
/// letter, number and punctuation runs never contain a newline except as trailing `[\r\n]*`,
/// whitespace runs stop before non-whitespace, and o200k's punctuation run may end in
/// `[\r\n/]*` (hence the `/`). The whitespace pretokenizer splits at every such point too.
/// Returns `None` when there is no such point.
pub fn safe_cut(buf: &[u8]) -> Option<usize> {
    let mut end = buf.len();
    while let Some(nl) = buf[..end].iter().rposition(|&b| b == b'\n') {
        let next = nl + 1;
        if next < buf.len() && starts_non_space(&buf[next..]) {
            return Some(next);
        }
        end = nl;
    }
    None
}

/// Whether `bytes` starts with a whole character that is neither whitespace nor `/`.
fn starts_non_space(bytes: &[u8]) -> bool {
    let b = bytes[0];
    if b < 0x80 {
        return !b.is_ascii_whitespace() && b != 0x0B && b != b'/';
    }
    let width = crate::util::utf8_width(b);
    match bytes.get(..width).and_then(|s| std::str::from_utf8(s).ok()) {
        Some(s) => s.chars().next().is_some_and(|c| !c.is_whitespace()),
        None => false,
    }
}

/// Fallback cut for a text with no safe point: before the last space that follows a character
/// other than whitespace (a word end). The presets split there as well.
fn space_cut(buf: &[u8]) -> Option<usize> {
    (1..buf.len())
        .rev()
        .find(|&i| buf[i] == b' ' && !buf[i - 1].is_ascii_whitespace())
}

/// A piece of a file, cut where the pretokens do not change.
struct Block {
    file: u64,
    /// Offset of the block's first byte in the (decompressed) file, and its 1-based line.
    offset: u64,
    line: u64,
    data: Vec<u8>,
}

/// An error with its place, so that the earliest one can be reported.
struct BlockError {
    file: u64,
    offset: u64,
    error: TokforgeError,
}

/// Counts the bytes read through it (the compressed bytes of a gzip file) for progress.
struct CountingReader<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Reads bytes into `buf` until it holds `want` bytes or the stream ends; returns false at EOF.
fn fill(r: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    while buf.len() < want {
        let len = buf.len();
        buf.resize(want, 0);
        match r.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(false);
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        }
    }
    Ok(true)
}

/// The reading side of [`PretokenCounter::add_files`]: cuts each file into blocks and sends
/// them; stops early when a worker has failed.
fn read_files(
    files: &[CorpusFile],
    tx: mpsc::SyncSender<Block>,
    abort: &AtomicBool,
    total: u64,
    progress: &mut dyn FnMut(u64, u64) -> Result<()>,
) -> std::result::Result<(), BlockError> {
    let mut done_before = 0u64;
    for (fi, f) in files.iter().enumerate() {
        let fail = |offset: u64, error: TokforgeError| BlockError {
            file: fi as u64,
            offset,
            error,
        };
        let file =
            std::fs::File::open(&f.path).map_err(|e| fail(0, TokforgeError::io(&f.path, e)))?;
        // Its size now: a file that ends before this was cut short while being read (truncated
        // or replaced), and training on the part read would silently lose text.
        let size_at_open = file.metadata().map(|m| m.len()).ok();
        let consumed = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let counting = CountingReader {
            inner: file,
            count: consumed.clone(),
        };
        let mut raw = std::io::BufReader::with_capacity(256 * 1024, counting);
        let gz = {
            use std::io::BufRead;
            let head = raw
                .fill_buf()
                .map_err(|e| fail(0, TokforgeError::io(&f.path, e)))?;
            head.starts_with(&[0x1f, 0x8b])
        };
        let mut reader: Box<dyn Read + '_> = if gz {
            Box::new(flate2::bufread::MultiGzDecoder::new(&mut raw))
        } else {
            Box::new(&mut raw)
        };
        let jsonl = matches!(f.format, FileFormat::Jsonl { .. });
        let mut buf: Vec<u8> = Vec::with_capacity(BLOCK_BYTES + 4096);
        let (mut offset, mut line) = (0u64, 1u64);
        loop {
            if abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            let want = (buf.len() + BLOCK_BYTES).max(BLOCK_BYTES);
            let more = fill(&mut reader, &mut buf, want).map_err(|e| {
                let what = if gz {
                    format!("{} (gzip)", f.path.display())
                } else {
                    f.path.display().to_string()
                };
                fail(offset, TokforgeError::io(what, e))
            })?;
            let cut = if !more {
                buf.len()
            } else if jsonl {
                // A record is one line; a block is whole lines.
                match buf.iter().rposition(|&b| b == b'\n') {
                    Some(nl) => nl + 1,
                    None => continue,
                }
            } else {
                match safe_cut(&buf) {
                    Some(c) => c,
                    None if buf.len() >= MAX_BLOCK_BYTES => match space_cut(&buf) {
                        Some(c) => c,
                        None => continue,
                    },
                    None => continue,
                }
            };
            let rest = buf.split_off(cut);
            let data = std::mem::replace(&mut buf, rest);
            let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
            let len = data.len() as u64;
            if !data.is_empty()
                && tx
                    .send(Block {
                        file: fi as u64,
                        offset,
                        line,
                        data,
                    })
                    .is_err()
            {
                return Ok(()); // every worker is gone: they failed and say why
            }
            offset += len;
            line += lines;
            if !more {
                if let Some(size) = size_at_open.filter(|&n| consumed.get() < n) {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "the file shrank while it was being read ({} of the {size} bytes it \
                             had when opened were read); nothing was trained",
                            consumed.get()
                        ),
                    );
                    return Err(fail(offset, TokforgeError::io(&f.path, e)));
                }
            }
            progress((done_before + consumed.get()).min(total), total)
                .map_err(|e| fail(offset, e))?;
            if !more {
                break;
            }
        }
        done_before += consumed.get();
    }
    Ok(())
}

/// The counting side of [`PretokenCounter::add_files`]: decodes and counts blocks until the
/// channel closes. After a failure it keeps draining, so the reader never blocks on a full
/// channel.
fn count_blocks(
    ctx: CountCtx<'_>,
    files: &[CorpusFile],
    errors: Utf8Errors,
    rx: &Mutex<mpsc::Receiver<Block>>,
    abort: &AtomicBool,
) -> std::result::Result<(CountMap, CountStats), BlockError> {
    let mut map = CountMap::default();
    let mut stats = CountStats::default();
    let mut ranges = Vec::new();
    let mut failed: Option<BlockError> = None;
    loop {
        let block = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => break,
        };
        let Ok(block) = block else { break };
        if failed.is_some() || abort.load(Ordering::Relaxed) {
            continue;
        }
        let f = &files[block.file as usize];
        let r = match &f.format {
            FileFormat::Text => decode_block(&block, &f.path, errors).and_then(|text| {
                let st = ctx.count(&text, &mut map, &mut ranges);
                st.map(|st| stats.add(st)).map_err(|error| BlockError {
                    file: block.file,
                    offset: block.offset,
                    error,
                })
            }),
            FileFormat::Jsonl { field } => count_jsonl(
                ctx,
                &block,
                &f.path,
                field,
                errors,
                &mut map,
                &mut ranges,
                &mut stats,
            ),
        };
        if let Err(e) = r {
            failed = Some(e);
            abort.store(true, Ordering::Relaxed);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok((map, stats)),
    }
}

/// A block as text: checked (strict) or repaired (replace). An invalid sequence cannot span a
/// block boundary's `\n`, so repairing per block repairs the file as a whole would.
fn decode_block<'a>(
    block: &'a Block,
    path: &Path,
    errors: Utf8Errors,
) -> std::result::Result<std::borrow::Cow<'a, str>, BlockError> {
    match std::str::from_utf8(&block.data) {
        Ok(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Err(_) if errors == Utf8Errors::Replace => Ok(String::from_utf8_lossy(&block.data)),
        Err(e) => Err(utf8_error(block, path, e.valid_up_to())),
    }
}

fn utf8_error(block: &Block, path: &Path, at: usize) -> BlockError {
    let line = block.line + block.data[..at].iter().filter(|&&b| b == b'\n').count() as u64;
    let offset = block.offset + at as u64;
    BlockError {
        file: block.file,
        offset,
        error: TokforgeError::InvalidUtf8 {
            offset: offset as usize,
            context: format!(
                " of {} (line {line}); use errors=\"replace\" (--errors replace) to substitute U+FFFD",
                path.display()
            ),
        },
    }
}

/// Counts the texts of a block of JSON lines.
#[allow(clippy::too_many_arguments)]
fn count_jsonl(
    ctx: CountCtx<'_>,
    block: &Block,
    path: &Path,
    field: &str,
    errors: Utf8Errors,
    map: &mut CountMap,
    ranges: &mut Vec<std::ops::Range<usize>>,
    stats: &mut CountStats,
) -> std::result::Result<(), BlockError> {
    let mut start = 0usize;
    let mut line_no = block.line;
    while start < block.data.len() {
        let end = block.data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.data.len(), |p| start + p);
        let raw = &block.data[start..end];
        let fail = |reason: String| BlockError {
            file: block.file,
            offset: block.offset + start as u64,
            error: TokforgeError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {line_no}: {reason}"),
                ),
            ),
        };
        let line: std::borrow::Cow<'_, str> = match std::str::from_utf8(raw) {
            Ok(s) => s.into(),
            Err(_) if errors == Utf8Errors::Replace => String::from_utf8_lossy(raw),
            Err(e) => return Err(utf8_error(block, path, start + e.valid_up_to())),
        };
        if !line.trim().is_empty() {
            let text = extract_field(&line, field).map_err(fail)?;
            if let Some(text) = text {
                let s = ctx.count(&text, map, ranges).map_err(|e| BlockError {
                    file: block.file,
                    offset: block.offset + start as u64,
                    error: e,
                })?;
                stats.add(s);
            }
        }
        start = end + 1;
        line_no += 1;
    }
    Ok(())
}

/// The string under `field` of a JSON object (`None` when it is `null`). Other keys are
/// skipped without building values for them.
fn extract_field(line: &str, field: &str) -> std::result::Result<Option<String>, String> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Seed<'f>(&'f str);
    struct Found(Option<Option<String>>);

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Found;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Found, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Found;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Found, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.0 && found.is_none() {
                    found = Some(map.next_value::<Option<String>>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Found(found))
        }
    }

    let mut de = serde_json::Deserializer::from_str(line);
    let is_object = line.trim_start().starts_with('{');
    let found = Seed(field).deserialize(&mut de).map_err(|e| {
        if e.is_data() && is_object {
            format!("the value of {field:?} is not a string ({e})")
        } else {
            format!("not a JSON object: {e}")
        }
    })?;
    de.end().map_err(|e| format!("not a JSON object: {e}"))?;
    match found.0 {
        Some(v) => Ok(v),
        None => Err(format!("no field {field:?}")),
    }
}

// ------------------------------------------------------------------------------------------
// Merging
// ------------------------------------------------------------------------------------------

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
struct MergeJob {
    count: u64,
    pair: Pair,
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
fn merge_word(
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
    fn add_word(&mut self, syms: &[Rank], count: u64) -> Result<()> {
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
    fn finish(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretokenize::{PretokenizerSpec, WhitespacePretokenizer};

    fn counter(name: &str, threads: usize) -> PretokenCounter {
        PretokenCounter::new(
            PretokenizerSpec::from_name(name).unwrap().build().unwrap(),
            &[],
            threads,
        )
        .unwrap()
    }

    fn train_texts(
        name: &str,
        texts: &[&str],
        config: TrainConfig,
        threads: usize,
    ) -> (Vec<Merge>, StopReason) {
        let mut c = counter(name, threads);
        c.add_texts(texts).unwrap();
        let mut t = c.trainer(config).unwrap();
        let stop = t.run(&mut |_| Ok(())).unwrap();
        (t.merges().to_vec(), stop)
    }

    /// The textbook walkthrough: `lo` (4), then `low` (4), then `lowe` (2); every other pair
    /// occurs once, below the default min_frequency of 2.
    #[test]
    fn textbook_low_lower_lowest_lowly() {
        let config = TrainConfig {
            merges: 100,
            ..Default::default()
        };
        let (merges, stop) = train_texts("whitespace", &["low lower lowest lowly"], config, 1);
        let l = b'l' as Rank;
        let pairs: Vec<_> = merges.iter().map(|m| (m.pair, m.count)).collect();
        assert_eq!(
            pairs,
            vec![
                ((l, b'o' as Rank), 4),
                ((256, b'w' as Rank), 4),
                ((257, b'e' as Rank), 2)
            ]
        );
        assert_eq!(stop, StopReason::MinFrequency);
    }

    #[test]
    fn merge_word_example() {
        let (a, b, c) = (1, 2, 9);
        let mut w = vec![a, b, a, b];
        let mut changes = Vec::new();
        let n = merge_word(&mut w, a, b, c, |p, up| {
            changes.push((p.left(), p.right(), up))
        });
        assert_eq!(&w[..n], &[c, c]);
        assert_eq!(
            changes,
            vec![(b, a, false), (c, a, true), (c, a, false), (c, c, true)]
        );
        // Overlapping run: "aaa" with (a, a) -> [c, a]; the second (a, a) disappears too.
        let mut w = vec![a, a, a];
        let mut changes = Vec::new();
        let n = merge_word(&mut w, a, a, c, |p, up| {
            changes.push((p.left(), p.right(), up))
        });
        assert_eq!(&w[..n], &[c, a]);
        assert_eq!(changes, vec![(a, a, false), (c, a, true)]);
    }

    #[test]
    fn pair_order_is_left_then_right() {
        assert!(Pair::new(1, 300) < Pair::new(2, 0));
        assert_eq!((Pair::new(7, 9).left(), Pair::new(7, 9).right()), (7, 9));
        let a = MergeJob {
            count: 5,
            pair: Pair::new(1, 2),
        };
        let b = MergeJob {
            count: 5,
            pair: Pair::new(1, 3),
        };
        let c = MergeJob {
            count: 6,
            pair: Pair::new(9, 9),
        };
        assert!(a > b && c > a, "max count first, then the smallest pair");
    }

    /// Recounts every pair before every merge: slow and obviously right.
    fn naive_train(words: &[(Vec<u8>, u64)], config: TrainConfig) -> Vec<Merge> {
        let mut syms: Vec<(Vec<Rank>, u64)> = words
            .iter()
            .map(|(w, c)| (w.iter().map(|&b| b as Rank).collect(), *c))
            .collect();
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut merges = Vec::new();
        while merges.len() < config.merges {
            let mut counts: std::collections::BTreeMap<(Rank, Rank), u64> = Default::default();
            for (w, c) in &syms {
                for p in w.windows(2) {
                    *counts.entry((p[0], p[1])).or_default() += c;
                }
            }
            let best = counts
                .iter()
                .filter(|(&(l, r), _)| {
                    let m = [tokens[l as usize].as_slice(), tokens[r as usize].as_slice()].concat();
                    config.max_token_bytes.map_or(true, |x| m.len() <= x) && !tokens.contains(&m)
                })
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)));
            let Some((&(l, r), &count)) = best else { break };
            if count < config.min_frequency.max(1) {
                break;
            }
            let id = tokens.len() as Rank;
            tokens.push([tokens[l as usize].as_slice(), tokens[r as usize].as_slice()].concat());
            for (w, _) in &mut syms {
                let mut out = Vec::with_capacity(w.len());
                let mut i = 0;
                while i < w.len() {
                    if i + 1 < w.len() && w[i] == l && w[i + 1] == r {
                        out.push(id);
                        i += 2;
                    } else {
                        out.push(w[i]);
                        i += 1;
                    }
                }
                *w = out;
            }
            merges.push(Merge {
                pair: (l, r),
                count,
            });
        }
        merges
    }

    /// A small deterministic generator (xorshift64*), so the test needs no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn matches_naive_trainer_on_random_corpora() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..60 {
            // Few distinct bytes: many ties, long runs, overlapping pairs.
            let alphabet: &[u8] = if case % 3 == 0 { b"ab" } else { b"abcab d" };
            let n_words = 1 + rng.below(30) as usize;
            let words: Vec<(Vec<u8>, u64)> = (0..n_words)
                .map(|_| {
                    let len = 1 + rng.below(12) as usize;
                    let w = (0..len)
                        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                        .collect();
                    (w, 1 + rng.below(5))
                })
                .collect();
            // Same word twice: sum the counts, as the counter would.
            let mut map: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
            for (w, c) in words {
                *map.entry(w).or_default() += c;
            }
            let words: Vec<(Vec<u8>, u64)> = map.into_iter().collect();
            let config = TrainConfig {
                merges: 40,
                min_frequency: 1 + (case % 2) as u64,
                max_token_bytes: if case % 4 == 1 { Some(3) } else { None },
            };
            let expected = naive_train(&words, config);
            let mut t = Trainer::new(words.iter().map(|(w, c)| (w, *c)), config).unwrap();
            t.run(&mut |_| Ok(())).unwrap();
            assert_eq!(t.merges(), expected.as_slice(), "case {case}: {words:?}");
            // The order of the words does not matter.
            let mut t = Trainer::new(words.iter().rev().map(|(w, c)| (w, *c)), config).unwrap();
            t.run(&mut |_| Ok(())).unwrap();
            assert_eq!(t.merges(), expected.as_slice(), "case {case}, reversed");
        }
    }

    #[test]
    fn arbitrary_alphabet_matches_bytes_and_barriers_split_words() {
        // The byte alphabet given explicitly: the same merges as `Trainer::new`.
        let words: Vec<(Vec<u8>, u64)> = vec![
            (b"abab".to_vec(), 3),
            (b"bab".to_vec(), 2),
            (b"aab".to_vec(), 1),
        ];
        let config = TrainConfig {
            merges: 10,
            min_frequency: 1,
            max_token_bytes: None,
        };
        let mut t = Trainer::new(words.iter().map(|(w, c)| (w, *c)), config).unwrap();
        t.run(&mut |_| Ok(())).unwrap();
        let syms: Vec<(Vec<Rank>, u64)> = words
            .iter()
            .map(|(w, c)| (w.iter().map(|&b| b as Rank).collect(), *c))
            .collect();
        let alphabet: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut u = Trainer::with_alphabet(alphabet, &[], syms, config).unwrap();
        u.run(&mut |_| Ok(())).unwrap();
        assert_eq!(t.merges(), u.merges());

        // Characters: 'x' is outside the alphabet, so "abxab" is the words "ab" and "ab";
        // "ab" is reserved, so (a, b) is never merged and (b, a) never occurs.
        let mut c = PretokenCounter::new(Box::new(WhitespacePretokenizer), &[], 1).unwrap();
        c.add_texts(&["abxab abxab é日é日"]).unwrap();
        let alphabet = ['a', 'b', 'é', '日'];
        let mut t = c.char_trainer(&alphabet, &[], config).unwrap();
        t.run(&mut |_| Ok(())).unwrap();
        assert_eq!(t.merges()[0].pair, (0, 1));
        assert_eq!(t.merges()[0].count, 4);
        assert_eq!(t.token_bytes(4), Some(b"ab".as_slice()));
        let mut t = c
            .char_trainer(&alphabet, &[b"ab".to_vec()], config)
            .unwrap();
        t.run(&mut |_| Ok(())).unwrap();
        assert_eq!(t.merges()[0].pair, (2, 3));
        assert_eq!(t.token_bytes(4), Some("é日".as_bytes()));
        let counts = c.char_counts().unwrap();
        assert_eq!(counts[0], ('a', 4));
        // 16 characters: a and b cover exactly half; then ties of 2 go by code point.
        assert_eq!(coverage_alphabet(&counts, 0.5), vec!['a', 'b']);
        assert_eq!(coverage_alphabet(&counts, 0.51), vec!['a', 'b', ' ']);
        assert!(Trainer::with_alphabet(
            vec![vec![1], vec![1]],
            &[],
            Vec::<(Vec<Rank>, u64)>::new(),
            config
        )
        .is_err());
    }

    #[test]
    fn counts_beyond_32_bits_are_kept_whole() {
        // Word counts past u32::MAX, as a huge corpus gives: the header splits each count in
        // two halves, and pair counts add them up.
        let big = 5u64 << 32;
        let words = vec![
            (b"abab".to_vec(), big + 7),
            (b"ba".to_vec(), (1u64 << 40) + 1),
        ];
        let config = TrainConfig {
            merges: 3,
            min_frequency: 1,
            max_token_bytes: None,
        };
        let mut t = Trainer::new(words.iter().map(|(w, c)| (w, *c)), config).unwrap();
        t.run(&mut |_| Ok(())).unwrap();
        // (b, a): once in "abab" and once in "ba"; (a, b): twice in "abab".
        assert_eq!(
            t.merges()[0],
            Merge {
                pair: (98, 97),
                count: big + 7 + (1u64 << 40) + 1
            }
        );
        assert_eq!(t.merges(), naive_train(&words, config).as_slice());
    }

    #[test]
    fn thread_count_and_text_order_do_not_matter() {
        let base = "the cat sat on the mat; the dog sat on the log.\n12345 6789 ok\n";
        let texts: Vec<String> = (0..200)
            .map(|i| format!("{base}{} {}\n", i % 7, "the ".repeat(i % 5)))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let config = TrainConfig {
            merges: 60,
            ..Default::default()
        };
        let (one, _) = train_texts("cl100k", &refs, config, 1);
        assert!(!one.is_empty());
        for threads in [2, 4] {
            assert_eq!(train_texts("cl100k", &refs, config, threads).0, one);
        }
        let rev: Vec<&str> = refs.iter().rev().copied().collect();
        assert_eq!(train_texts("cl100k", &rev, config, 3).0, one);
    }

    #[test]
    fn large_texts_are_cut_without_changing_counts() {
        let line = "Hello world, 12345 numbers!\n  indented line\n/path/x\nfoo  \n\n";
        let big = line.repeat(BLOCK_BYTES / line.len() * 2 + 7);
        let mut whole = counter("cl100k", 1);
        whole.add_texts(&[big.as_str()]).unwrap(); // one thread: still cut, but sequential
        let mut reference: FxHashMap<Vec<u8>, u64> = FxHashMap::default();
        let pre = PretokenizerSpec::from_name("cl100k")
            .unwrap()
            .build()
            .unwrap();
        let mut ranges = Vec::new();
        pre.split(&big, &mut ranges).unwrap();
        for r in ranges {
            *reference.entry(big.as_bytes()[r].to_vec()).or_default() += 1;
        }
        let mut expected: Vec<(Vec<u8>, u64)> = reference.into_iter().collect();
        expected.sort();
        assert_eq!(whole.sorted_counts(), expected);
        let mut par = counter("cl100k", 4);
        par.add_texts(&[big.as_str()]).unwrap();
        assert_eq!(par.sorted_counts(), expected);
        assert_eq!(par.stats().documents, 1);
    }

    #[test]
    fn safe_cut_points() {
        assert_eq!(safe_cut(b"ab\ncd\nef"), Some(6));
        assert_eq!(
            safe_cut(b"ab\ncd\n ef"),
            Some(3),
            "a line starting with a space is not a cut"
        );
        assert_eq!(
            safe_cut(b"ab\n/cd\n\n"),
            None,
            "o200k may join `\\n/`; a trailing newline neither"
        );
        assert_eq!(
            safe_cut("a\n\u{3000}b".as_bytes()),
            None,
            "ideographic space is whitespace"
        );
        assert_eq!(safe_cut("a\n\u{4e2d}b".as_bytes()), Some(2));
        assert_eq!(space_cut(b"ab  cd ef"), Some(6));
    }

    #[test]
    fn specials_are_cut_out() {
        let specials = vec!["<|endoftext|>".to_string()];
        let pre = PretokenizerSpec::from_name("cl100k")
            .unwrap()
            .build()
            .unwrap();
        let mut c = PretokenCounter::new(pre, &specials, 1).unwrap();
        c.add_texts(&["hi<|endoftext|>hi"]).unwrap();
        assert_eq!(c.sorted_counts(), vec![(b"hi".to_vec(), 2)]);
    }

    #[test]
    fn max_token_bytes_and_stop_reasons() {
        let config = TrainConfig {
            merges: 50,
            min_frequency: 1,
            max_token_bytes: Some(2),
        };
        let (merges, stop) = train_texts("whitespace", &["aaaa bbbb aaaa"], config, 1);
        assert_eq!(
            merges.iter().map(|m| m.pair).collect::<Vec<_>>(),
            vec![(97, 97), (98, 98)]
        );
        assert_eq!(stop, StopReason::NoPairs);
        let config = TrainConfig {
            merges: 1,
            min_frequency: 1,
            max_token_bytes: None,
        };
        assert_eq!(
            train_texts("whitespace", &["abab"], config, 1).1,
            StopReason::Done
        );
    }

    #[test]
    fn files_plain_jsonl_gzip_and_errors() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("tokforge-train-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "low lower\nlowest lowly\n";
        let plain = dir.join("a.txt");
        std::fs::write(&plain, text).unwrap();
        let jsonl = dir.join("b.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"id\": 1, \"text\": \"low lower\\n\"}\n\n{\"text\": \"lowest lowly\\n\", \"x\": [1, {}]}\n")
            .unwrap();
        std::fs::write(&jsonl, gz.finish().unwrap()).unwrap();

        let mut from_texts = counter("whitespace", 1);
        from_texts.add_texts(&[text]).unwrap();
        for (files, threads) in [(vec![plain.clone()], 1), (vec![jsonl.clone()], 3)] {
            let files: Vec<CorpusFile> = files
                .iter()
                .map(|p| CorpusFile::from_path(p, "text"))
                .collect();
            let mut c = counter("whitespace", threads);
            let mut last = (0, 0);
            c.add_files(&files, Utf8Errors::Strict, &mut |d, t| {
                last = (d, t);
                Ok(())
            })
            .unwrap();
            assert_eq!(c.sorted_counts(), from_texts.sorted_counts(), "{files:?}");
            assert_eq!(last.0, last.1);
        }

        let bad = dir.join("bad.txt");
        std::fs::write(&bad, b"ok line\nsecond \xff line\n").unwrap();
        let mut c = counter("whitespace", 2);
        let err = c.add_files(
            &[CorpusFile::from_path(&bad, "text")],
            Utf8Errors::Strict,
            &mut |_, _| Ok(()),
        );
        let msg = err.unwrap_err().to_string();
        assert!(
            msg.contains("byte 15") && msg.contains("bad.txt (line 2)"),
            "{msg}"
        );
        let mut c = counter("whitespace", 2);
        c.add_files(
            &[CorpusFile::from_path(&bad, "text")],
            Utf8Errors::Replace,
            &mut |_, _| Ok(()),
        )
        .unwrap();
        assert_eq!(c.count_of("\u{fffd}".as_bytes()), 1);

        let badjson = dir.join("c.jsonl");
        std::fs::write(&badjson, "{\"text\": \"a\"}\n{\"body\": \"b\"}\n").unwrap();
        let mut c = counter("whitespace", 2);
        let msg = c
            .add_files(
                &[CorpusFile::from_path(&badjson, "text")],
                Utf8Errors::Strict,
                &mut |_, _| Ok(()),
            )
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("c.jsonl") && msg.contains("line 2") && msg.contains("no field \"text\""),
            "{msg}"
        );

        let missing = dir.join("missing.txt");
        let mut c = counter("whitespace", 2);
        let msg = c
            .add_files(
                &[CorpusFile::from_path(&missing, "text")],
                Utf8Errors::Strict,
                &mut |_, _| Ok(()),
            )
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing.txt"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extract_field_cases() {
        assert_eq!(
            extract_field(r#"{"text": "a\nb", "n": 1}"#, "text"),
            Ok(Some("a\nb".into()))
        );
        assert_eq!(extract_field(r#"{"text": null}"#, "text"), Ok(None));
        assert!(extract_field(r#"{"text": 3}"#, "text")
            .unwrap_err()
            .contains("not a string"));
        assert!(extract_field(r#"[1]"#, "text")
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(extract_field(r#"{"a": 1} x"#, "text").is_err());
    }

    #[test]
    fn whitespace_counter_example() {
        let mut c = PretokenCounter::new(Box::new(WhitespacePretokenizer), &[], 2).unwrap();
        c.add_texts(&["a b", "a"]).unwrap();
        assert_eq!(c.most_common(1), vec![(b"a".to_vec(), 2)]);
        assert_eq!(
            c.stats(),
            CountStats {
                bytes: 4,
                pretokens: 4,
                documents: 2
            }
        );
    }
}
