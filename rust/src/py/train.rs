//! PyO3 adapter for training: a `PretokenCounter` that counts Python strings (in batches, the
//! GIL released while counting) and files (read and counted in Rust), then trains. Progress goes
//! to an optional Python callable, throttled; log lines go to the `tokforge.train` logger.
//! Ctrl-C is honoured: every progress tick checks for signals and stops the run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::errors::to_py_err;
use crate::error::TokforgeError;
use crate::io::counts;
use crate::pretokenize::PretokenizerSpec;
use crate::train::{CorpusFile, PretokenCounter, StopReason, TrainConfig, Trainer, Utf8Errors};
use crate::vocab::Rank;

/// Adds the training classes to the `_core` module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPretokenCounter>()?;
    Ok(())
}

/// Sends a line to the `tokforge.train` logger.
fn log(py: Python<'_>, level: u8, msg: &str) -> PyResult<()> {
    let logger = py
        .import("logging")?
        .call_method1("getLogger", ("tokforge.train",))?;
    logger.call_method1("log", (level, msg))?;
    Ok(())
}

const INFO: u8 = 20;

/// What `PretokenCounter.train` returns: the merges, their counts, and the stop reason.
type Trained = (Vec<(Rank, Rank)>, Vec<u64>, &'static str);

/// Calls the Python progress callback at most every `PERIOD`, and checks for signals at every
/// tick. A Python exception (KeyboardInterrupt, or one the callback raised) is kept aside and the
/// core is told to stop with a placeholder error; [`Ticker::finish`] puts the real one back.
struct Ticker {
    callback: Option<Py<PyAny>>,
    phase: &'static str,
    last: Option<Instant>,
    error: Option<PyErr>,
}

const PERIOD: Duration = Duration::from_millis(100);

impl Ticker {
    fn new(callback: Option<Py<PyAny>>, phase: &'static str) -> Self {
        Ticker {
            callback,
            phase,
            last: None,
            error: None,
        }
    }

    /// A tick from a thread that does not hold the GIL.
    fn tick(&mut self, done: u64, total: Option<u64>, last: bool) -> crate::Result<()> {
        let now = Instant::now();
        if !last && self.last.is_some_and(|t| now.duration_since(t) < PERIOD) {
            return Ok(());
        }
        self.last = Some(now);
        let r = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(cb) = &self.callback {
                cb.call1(py, (self.phase, done, total))?;
            }
            Ok(())
        });
        r.map_err(|e| {
            self.error = Some(e);
            TokforgeError::InvalidArgument("stopped by the progress callback".into())
        })
    }

    /// The result of a detached run, with the Python error restored when there was one.
    fn finish<T>(&mut self, r: crate::Result<T>) -> PyResult<T> {
        match (r, self.error.take()) {
            (Err(_), Some(e)) => Err(e),
            (r, _) => r.map_err(to_py_err),
        }
    }
}

/// Distinct pretokens and their counts, gathered from texts and files; then training.
///
/// `PretokenCounter(pattern=None, preset=None, special_tokens=[], num_threads=0)`: give a
/// regex `pattern` or a `preset` name (`cl100k`, `o200k`, `gpt2`, `whitespace`, `none`);
/// `num_threads=0` uses every core. Special tokens' text is cut out before pretokenizing.
#[pyclass(module = "tokforge._core", name = "PretokenCounter")]
pub(crate) struct PyPretokenCounter {
    inner: PretokenCounter,
    spec: PretokenizerSpec,
    /// `(min_pretoken_count, distinct, total)` dropped by pruning, here or in loaded files.
    pruning: (u64, u64, u64),
}

/// One text from the iterable as a Rust string. A `str` that is not valid UTF-8 (it holds a
/// lone surrogate) is an error, or with `errors="replace"` goes through UTF-16 as tiktoken does
/// (surrogate pairs join, lone ones become U+FFFD).
fn text_of(item: &Bound<'_, PyAny>, index: usize, errors: Utf8Errors) -> PyResult<String> {
    let Ok(s) = item.cast::<PyString>() else {
        let what = item
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        return Err(PyTypeError::new_err(format!(
            "texts must be str, got {what} at index {index} (pass files as pathlib.Path objects)"
        )));
    };
    match s.to_str() {
        Ok(t) => Ok(t.to_string()),
        Err(_) if errors == Utf8Errors::Replace => {
            let fixed = s
                .call_method1("encode", ("utf-16", "surrogatepass"))?
                .call_method1("decode", ("utf-16", "replace"))?;
            Ok(fixed.cast::<PyString>()?.to_str()?.to_string())
        }
        Err(_) => Err(to_py_err(TokforgeError::InvalidUtf8 {
            offset: 0,
            context: format!(
                " in text {index}: it holds a lone surrogate; use errors=\"replace\" to substitute U+FFFD"
            ),
        })),
    }
}

impl PyPretokenCounter {
    /// Builds a trainer without the GIL, runs it with progress and logs the outcome.
    fn run_trainer(
        &self,
        py: Python<'_>,
        config: TrainConfig,
        progress: Option<Py<PyAny>>,
        build: impl FnOnce(&PretokenCounter) -> crate::Result<Trainer> + Send,
    ) -> PyResult<Trained> {
        let mut ticker = Ticker::new(progress, "merge");
        let start = Instant::now();
        let num_merges = config.merges;
        let r = py.detach(|| {
            let mut trainer = build(&self.inner)?;
            let total = num_merges as u64;
            let stop = trainer.run(&mut |done| ticker.tick(done as u64, Some(total), false))?;
            let done = trainer.merges().len() as u64;
            ticker.tick(done, Some(total), true)?;
            Ok((trainer.merges().to_vec(), stop))
        });
        let (merges, stop) = ticker.finish(r)?;
        let reason = match stop {
            StopReason::Done => "done",
            StopReason::MinFrequency => "min_frequency",
            StopReason::NoPairs => "no_pairs",
        };
        log(
            py,
            INFO,
            &format!(
                "learned {} merges in {:.2} s from {} distinct pretokens (stop: {reason})",
                merges.len(),
                start.elapsed().as_secs_f64(),
                self.inner.num_distinct()
            ),
        )?;
        Ok((
            merges.iter().map(|m| m.pair).collect(),
            merges.iter().map(|m| m.count).collect(),
            reason,
        ))
    }

    /// A counter from summed counts files, with the pruning they record.
    fn from_merged(r: crate::Result<(PretokenCounter, (u64, u64, u64))>) -> PyResult<Self> {
        let (inner, pruning) = r.map_err(to_py_err)?;
        Ok(PyPretokenCounter {
            spec: inner.spec(),
            inner,
            pruning,
        })
    }

    /// A counts file of the counts, recording earlier pruning too.
    fn encode_counts(&self, min_count: u64) -> crate::Result<Vec<u8>> {
        counts::encode_pruned(&self.inner, &self.spec, self.pruning, min_count)
    }
}

#[pymethods]
impl PyPretokenCounter {
    #[new]
    #[pyo3(signature = (*, pattern=None, preset=None, special_tokens=Vec::new(), num_threads=0))]
    fn new(
        pattern: Option<String>,
        preset: Option<String>,
        special_tokens: Vec<String>,
        num_threads: usize,
    ) -> PyResult<Self> {
        let spec = match (pattern, preset) {
            (Some(p), None) => match crate::pretokenize::preset_pattern(&p) {
                // A preset's own regex, given as a pattern, is that preset.
                Some(_) => PretokenizerSpec::from_name(&p).map_err(to_py_err)?,
                None => PretokenizerSpec::Regex {
                    pattern: p,
                    preset: None,
                },
            },
            (None, Some(name)) => PretokenizerSpec::from_name(&name).map_err(to_py_err)?,
            (None, None) => PretokenizerSpec::from_name("cl100k").map_err(to_py_err)?,
            (Some(_), Some(_)) => {
                return Err(PyTypeError::new_err(
                    "give either pattern or preset, not both",
                ))
            }
        };
        let pretok = spec.build().map_err(to_py_err)?;
        let inner =
            PretokenCounter::new(pretok, &special_tokens, num_threads).map_err(to_py_err)?;
        Ok(PyPretokenCounter {
            inner,
            spec,
            pruning: (1, 0, 0),
        })
    }

    /// Sums counts files (see `tokforge.counts` for the format) into a new counter, which can
    /// train, count more text, or be saved again. Files made with a different pretokenizer or
    /// different special tokens are refused.
    #[staticmethod]
    #[pyo3(signature = (paths, *, num_threads=0))]
    fn load_counts(py: Python<'_>, paths: Vec<PathBuf>, num_threads: usize) -> PyResult<Self> {
        let r = py.detach(|| -> crate::Result<_> {
            let mut blobs = Vec::with_capacity(paths.len());
            for p in &paths {
                let data = std::fs::read(p).map_err(|e| TokforgeError::io(p, e))?;
                blobs.push((p.display().to_string(), data));
            }
            counts::merge(
                blobs.iter().map(|(n, d)| (n.clone(), d.as_slice())),
                num_threads,
            )
        });
        Self::from_merged(r)
    }

    /// Like `load_counts`, from the bytes of counts files (as `to_counts_bytes` returns them).
    #[staticmethod]
    #[pyo3(signature = (blobs, *, num_threads=0))]
    fn from_counts_bytes(
        py: Python<'_>,
        blobs: Vec<Vec<u8>>,
        num_threads: usize,
    ) -> PyResult<Self> {
        let r = py.detach(|| {
            counts::merge(
                blobs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (format!("counts #{i}"), d.as_slice())),
                num_threads,
            )
        });
        Self::from_merged(r)
    }

    /// The counts as the bytes of a counts file, dropping pretokens seen fewer than
    /// `min_count` times (1 keeps all; more makes training approximate).
    #[pyo3(signature = (*, min_count=1))]
    fn to_counts_bytes<'py>(
        &self,
        py: Python<'py>,
        min_count: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let data = py
            .detach(|| self.encode_counts(min_count))
            .map_err(to_py_err)?;
        Ok(PyBytes::new(py, &data))
    }

    /// Writes a counts file, atomically; see `to_counts_bytes`.
    #[pyo3(signature = (path, *, min_count=1))]
    fn save_counts(&self, py: Python<'_>, path: PathBuf, min_count: u64) -> PyResult<()> {
        py.detach(|| crate::io::write_atomic(&path, &self.encode_counts(min_count)?))
            .map_err(to_py_err)
    }

    /// Drops the pretokens counted fewer than `min_count` times (approximate training, less
    /// memory). Returns `(distinct, total)`: what was dropped.
    fn prune(&mut self, py: Python<'_>, min_count: u64) -> (u64, u64) {
        let inner = &mut self.inner;
        let (d, t) = py.detach(|| inner.prune(min_count));
        self.pruning = (
            self.pruning.0.max(min_count),
            self.pruning.1 + d,
            self.pruning.2 + t,
        );
        (d, t)
    }

    /// `(min_pretoken_count, distinct, total)`: the largest pruning threshold applied to these
    /// counts (1: none, the counts are exact) and how many pretokens and occurrences it dropped.
    #[getter]
    fn pruning(&self) -> (u64, u64, u64) {
        self.pruning
    }

    /// The special tokens whose text is cut out before pretokenizing.
    #[getter]
    fn special_tokens(&self) -> Vec<String> {
        self.inner.special_tokens().to_vec()
    }

    /// Counts the texts of an iterable of `str`. They are gathered into batches of about
    /// `batch_bytes` under the GIL, and each batch is counted on all threads without it.
    /// `progress(phase, done, total)` gets `("count", bytes_counted, None)`.
    #[pyo3(signature = (texts, *, errors="strict", batch_bytes=16 << 20, progress=None))]
    fn add_texts(
        &mut self,
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        errors: &str,
        batch_bytes: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let errors = Utf8Errors::from_name(errors).map_err(to_py_err)?;
        let mut ticker = Ticker::new(progress, "count");
        let mut batch: Vec<String> = Vec::new();
        let mut pending = 0usize;
        let mut done = self.inner.stats().bytes;
        let mut flush =
            |batch: &mut Vec<String>, ticker: &mut Ticker, last: bool| -> PyResult<()> {
                let inner = &mut self.inner;
                let r = py.detach(|| {
                    inner.add_texts(batch)?;
                    done = inner.stats().bytes;
                    ticker.tick(done, None, last)
                });
                batch.clear();
                ticker.finish(r)
            };
        for (i, item) in texts.try_iter()?.enumerate() {
            let text = text_of(&item?, i, errors)?;
            pending += text.len();
            batch.push(text);
            if pending >= batch_bytes {
                flush(&mut batch, &mut ticker, false)?;
                pending = 0;
            }
        }
        flush(&mut batch, &mut ticker, true)
    }

    /// Counts files: plain text, or JSON lines (`.jsonl`, `.ndjson`) read through `text_field`;
    /// gzip is recognised by content. Read as a stream in Rust, counted on all threads.
    /// `progress(phase, done, total)` gets `("count", bytes_read, bytes_total)` (on-disk sizes).
    #[pyo3(signature = (paths, *, text_field="text", errors="strict", progress=None))]
    fn add_files(
        &mut self,
        py: Python<'_>,
        paths: Vec<PathBuf>,
        text_field: &str,
        errors: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let errors = Utf8Errors::from_name(errors).map_err(to_py_err)?;
        let files: Vec<CorpusFile> = paths
            .iter()
            .map(|p| CorpusFile::from_path(p, text_field))
            .collect();
        let mut ticker = Ticker::new(progress, "count");
        let start = Instant::now();
        let before = self.inner.stats().bytes;
        let inner = &mut self.inner;
        let r = py.detach(|| {
            let mut tick = |done: u64, total: u64| ticker.tick(done, Some(total), done == total);
            inner.add_files(&files, errors, &mut tick)
        });
        ticker.finish(r)?;
        let read = self.inner.stats().bytes - before;
        let secs = start.elapsed().as_secs_f64();
        log(
            py,
            INFO,
            &format!(
                "counted {} file(s): {:.1} MB of text in {secs:.2} s ({:.1} MB/s), {} distinct pretokens so far",
                files.len(),
                read as f64 / 1e6,
                read as f64 / 1e6 / secs.max(1e-9),
                self.inner.num_distinct()
            ),
        )?;
        Ok(())
    }

    /// Bytes of text counted so far.
    #[getter]
    fn num_bytes(&self) -> u64 {
        self.inner.stats().bytes
    }

    /// Pretokens counted so far, repeats included.
    #[getter]
    fn num_pretokens(&self) -> u64 {
        self.inner.stats().pretokens
    }

    /// Texts, JSON records and file blocks counted so far.
    #[getter]
    fn num_documents(&self) -> u64 {
        self.inner.stats().documents
    }

    /// Distinct pretokens so far.
    #[getter]
    fn num_distinct(&self) -> usize {
        self.inner.num_distinct()
    }

    /// The regex the counter splits with (`None` for `whitespace` and `none`).
    #[getter]
    fn pattern(&self) -> Option<String> {
        self.spec.pattern().map(str::to_string)
    }

    /// The preset name when the pretokenizer is one (`whitespace` and `none` included).
    #[getter]
    fn preset(&self) -> Option<String> {
        match &self.spec {
            PretokenizerSpec::Regex { preset, .. } => preset.clone(),
            PretokenizerSpec::Whitespace => Some("whitespace".into()),
            PretokenizerSpec::None => Some("none".into()),
            PretokenizerSpec::Callable => None,
        }
    }

    /// The `n` most frequent pretokens as `(bytes, count)`, most frequent first.
    fn most_common<'py>(&self, py: Python<'py>, n: usize) -> Vec<(Bound<'py, PyBytes>, u64)> {
        let top = self.inner.most_common(n);
        top.into_iter()
            .map(|(b, c)| (PyBytes::new(py, &b), c))
            .collect()
    }

    /// Every distinct pretoken as `(bytes, count)`, sorted by bytes.
    fn counts<'py>(&self, py: Python<'py>) -> Vec<(Bound<'py, PyBytes>, u64)> {
        let all = py.detach(|| self.inner.sorted_counts());
        all.into_iter()
            .map(|(b, c)| (PyBytes::new(py, &b), c))
            .collect()
    }

    /// Learns up to `num_merges` merges from the counts. Returns `(merges, counts, stop)`: the
    /// merged pairs in order, each one's count when it was chosen, and why the run ended
    /// (`"done"`; `"min_frequency"`: every pair left is rarer; `"no_pairs"`: none is left).
    /// `progress(phase, done, total)` gets `("merge", merges_done, num_merges)`.
    #[pyo3(signature = (num_merges, *, min_frequency=2, max_token_bytes=None, progress=None))]
    fn train(
        &self,
        py: Python<'_>,
        num_merges: usize,
        min_frequency: u64,
        max_token_bytes: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Trained> {
        let config = TrainConfig {
            merges: num_merges,
            min_frequency,
            max_token_bytes,
        };
        self.run_trainer(py, config, progress, |inner| inner.trainer(config))
    }

    /// Each character's number of occurrences in the counted pretokens (weighted by their
    /// counts), most frequent first, ties by code point.
    fn char_counts(&self, py: Python<'_>) -> PyResult<Vec<(char, u64)>> {
        py.detach(|| self.inner.char_counts()).map_err(to_py_err)
    }

    /// Learns up to `num_merges` merges of a character-level vocabulary with byte fallback:
    /// the symbols are `alphabet` (one-character strings; symbol `i` is `alphabet[i]`, merge `k`
    /// makes id `len(alphabet) + k`), and every pretoken is cut at each character outside it.
    /// No merge may spell one of `reserved` (the other tokens' UTF-8). Returns as `train`.
    #[pyo3(signature = (alphabet, num_merges, *, reserved=Vec::new(), min_frequency=2, max_token_bytes=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn train_chars(
        &self,
        py: Python<'_>,
        alphabet: Vec<String>,
        num_merges: usize,
        reserved: Vec<Vec<u8>>,
        min_frequency: u64,
        max_token_bytes: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Trained> {
        let mut chars = Vec::with_capacity(alphabet.len());
        for (i, s) in alphabet.iter().enumerate() {
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => chars.push(c),
                _ => {
                    return Err(to_py_err(TokforgeError::InvalidArgument(format!(
                        "alphabet[{i}] = {s:?} is not one character"
                    ))))
                }
            }
        }
        let config = TrainConfig {
            merges: num_merges,
            min_frequency,
            max_token_bytes,
        };
        self.run_trainer(py, config, progress, |inner| {
            inner.char_trainer(&chars, &reserved, config)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "PretokenCounter(distinct={}, bytes={}, pretokens={})",
            self.inner.num_distinct(),
            self.inner.stats().bytes,
            self.inner.stats().pretokens
        )
    }
}
