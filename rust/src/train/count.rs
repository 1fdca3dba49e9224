//! Counting: the distinct pretokens of texts and files, with `u64` counts, on several threads.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use aho_corasick::{AhoCorasick, MatchKind};
use rustc_hash::FxHashMap;

use super::corpus::{
    decode_block, extract_field, read_files, safe_cut, utf8_error, Block, BlockError, CorpusFile,
    FileFormat, Utf8Errors, BLOCK_BYTES,
};
use super::trainer::{TrainConfig, Trainer};
use crate::encoder::special_matcher;
use crate::error::{Result, TokforgeError};
use crate::pretokenize::{Pretokenizer, PretokenizerSpec};
use crate::util::parallel_map;
use crate::vocab::Rank;

/// Pretoken bytes -> how many times the pretoken occurred.
type CountMap = FxHashMap<Box<[u8]>, u64>;

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
                special_matcher(special_tokens, MatchKind::LeftmostLongest)
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
