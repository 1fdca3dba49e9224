//! `CoreBPE`: the compiled tokenizer, an immutable, thread-safe encoder plus what its file
//! records. Every method that encodes or decodes releases the GIL around the core call.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::errors::{to_py_err, OrPy};
use super::ffi::IntCache;
use super::ids::{check_ids, ids_to_bytes, ids_to_ranks};
use super::pretokenizer::{build_pretokenizer, CallablePretokenizer};
use super::stream::PyStreamDecoder;
use crate::encoder::{Encoder, Engine, SpecialPolicy, StreamDecoder};
use crate::error::TokforgeError;
use crate::hf::HfPipeline;
use crate::io::{self, Format, TokenizerFile};
use crate::pretokenize::{Pretokenizer, PretokenizerSpec};
use crate::vocab::{Rank, TokenKind, Vocab};

/// Which special tokens a single-text encode call treats as special.
#[derive(Clone, Copy)]
enum Specials<'a> {
    /// None: every special token's text is ordinary text (`encode_ordinary`).
    None,
    /// tiktoken's default: none allowed, all disallowed.
    Default,
    /// The ones allowed, and the ones that make the call fail.
    Lists(&'a [String], &'a [String]),
}

/// The compiled tokenizer: an immutable, thread-safe encoder plus what its file records.
#[pyclass(frozen, module = "tokforge._core", name = "CoreBPE")]
pub(crate) struct PyCore {
    enc: Arc<Encoder>,
    name: String,
    merges: Option<Vec<(Rank, Rank)>>,
    metadata: serde_json::Value,
    /// tiktoken's default policy (no special allowed, all disallowed), built once.
    default_policy: SpecialPolicy,
    ints: IntCache,
}

impl PyCore {
    fn from_file(file: TokenizerFile, callable: Option<Py<PyAny>>) -> PyResult<Self> {
        let pretok: Box<dyn Pretokenizer> = match (&file.pretokenizer, callable) {
            (_, Some(f)) => Box::new(CallablePretokenizer { func: f }),
            (PretokenizerSpec::Callable, None) => {
                return Err(to_py_err(TokforgeError::InvalidArgument(
                    "this tokenizer was saved with a Python callable pretokenizer: pass it again \
                     (pretokenizer=...) when loading"
                        .into(),
                )))
            }
            (spec, None) => spec.build().or_py()?,
        };
        let vocab = file.vocab().or_py()?;
        let enc = Encoder::new(vocab, pretok).or_py()?;
        Ok(PyCore::new(enc, file.name, file.merges, file.metadata))
    }

    fn new(
        enc: Encoder,
        name: String,
        merges: Option<Vec<(Rank, Rank)>>,
        metadata: serde_json::Value,
    ) -> Self {
        PyCore {
            default_policy: enc.default_policy(),
            ints: IntCache::new(enc.vocab().n_ids()),
            enc: Arc::new(enc),
            name,
            merges,
            metadata,
        }
    }

    fn to_file(&self) -> TokenizerFile {
        let v = self.enc.vocab();
        TokenizerFile {
            name: self.name.clone(),
            pretokenizer: self.enc.pretokenizer_spec(),
            ranks: v
                .ordinary_tokens()
                .into_iter()
                .map(|(b, r)| (b.to_vec(), r))
                .collect(),
            merges: self.merges.clone(),
            special_tokens: self.enc.special_tokens().to_vec(),
            byte_fallback: v.fallback_ids().map(|f| f.to_vec()),
            metadata: self.metadata.clone(),
        }
    }

    /// Encodes `text` with the GIL released: the step every single-text encode method shares,
    /// whatever it returns.
    #[inline]
    fn encode_ids(
        &self,
        py: Python<'_>,
        text: &str,
        specials: Specials<'_>,
    ) -> PyResult<Vec<Rank>> {
        match specials {
            Specials::None => py.detach(|| self.enc.encode_ordinary(text)),
            Specials::Default => py.detach(|| {
                self.enc
                    .encode_with_policy(text, &self.default_policy)
                    .map(|(ids, _)| ids)
            }),
            Specials::Lists(allowed, disallowed) => {
                let policy = self.policy(allowed, disallowed);
                py.detach(|| {
                    self.enc
                        .encode_with_policy(text, &policy)
                        .map(|(ids, _)| ids)
                })
            }
        }
        .or_py()
    }

    /// Encodes `texts` on Rust threads with the GIL released: the step both batch outputs share.
    fn batch(
        &self,
        py: Python<'_>,
        texts: &[String],
        allowed: &[String],
        disallowed: &[String],
        num_threads: usize,
    ) -> PyResult<Vec<Vec<Rank>>> {
        let policy = self.policy(allowed, disallowed);
        py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.enc.encode_batch(&refs, &policy, num_threads)
        })
        .or_py()
    }

    /// The tokenizer.json pipeline, for a tokenizer read from one.
    fn hf(&self) -> Option<&HfPipeline> {
        match self.enc.engine() {
            Engine::MergeList(h) => Some(h),
            Engine::Rank(_) => None,
        }
    }

    fn policy(&self, allowed: &[String], disallowed: &[String]) -> SpecialPolicy {
        self.enc.policy(
            |s| allowed.iter().any(|a| a == s),
            |s| disallowed.iter().any(|d| d == s),
        )
    }
}

fn metadata_from_json(text: Option<&str>) -> PyResult<serde_json::Value> {
    match text {
        None => Ok(serde_json::json!({})),
        Some(t) => serde_json::from_str(t).map_err(|e| {
            to_py_err(TokforgeError::InvalidArgument(format!(
                "metadata is not valid JSON: {e}"
            )))
        }),
    }
}

#[pymethods]
impl PyCore {
    /// Builds a tokenizer from ordinary tokens with ranks, special tokens and a pretokenizer.
    #[staticmethod]
    #[pyo3(signature = (ranks, special_tokens, *, preset=None, pattern=None, callable=None, byte_fallback=None, name=String::new(), merges=None, metadata_json=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_ranks(
        py: Python<'_>,
        ranks: Vec<(Vec<u8>, i64)>,
        special_tokens: Vec<(String, i64)>,
        preset: Option<&str>,
        pattern: Option<&str>,
        callable: Option<Py<PyAny>>,
        byte_fallback: Option<Vec<i64>>,
        name: String,
        merges: Option<Vec<(i64, i64)>>,
        metadata_json: Option<&str>,
    ) -> PyResult<Self> {
        let to_rank = |r: i64, what: &dyn Fn() -> String| {
            u32::try_from(r).map_err(|_| {
                to_py_err(TokforgeError::InvalidVocab(format!(
                    "{}: id {r} is not in 0..2**32",
                    what()
                )))
            })
        };
        let mut rk = Vec::with_capacity(ranks.len());
        for (b, r) in ranks {
            let r = to_rank(r, &|| format!("token {:?}", String::from_utf8_lossy(&b)))?;
            rk.push((b, r));
        }
        let mut sp = Vec::with_capacity(special_tokens.len());
        for (s, r) in special_tokens {
            let r = to_rank(r, &|| format!("special token {s:?}"))?;
            sp.push((s, r));
        }
        let fb = match byte_fallback {
            Some(v) => Some(
                v.into_iter()
                    .map(|r| to_rank(r, &|| "byte fallback".into()))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
            None => None,
        };
        let merges = match merges {
            Some(m) => Some(
                m.into_iter()
                    .map(|(a, b)| {
                        Ok((
                            to_rank(a, &|| "merge".into())?,
                            to_rank(b, &|| "merge".into())?,
                        ))
                    })
                    .collect::<PyResult<Vec<_>>>()?,
            ),
            None => None,
        };
        let pretok = build_pretokenizer(preset, pattern, callable)?;
        let metadata = metadata_from_json(metadata_json)?;
        let enc = py
            .detach(|| Vocab::new(rk, sp, fb).and_then(|v| Encoder::new(v, pretok)))
            .or_py()?;
        Ok(PyCore::new(enc, name, merges, metadata))
    }

    /// Builds a byte-level tokenizer from merges (ids 0..=255 are bytes, merge k is id 256+k).
    #[staticmethod]
    #[pyo3(signature = (merges, special_tokens, *, preset=None, pattern=None, callable=None, name=String::new(), metadata_json=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_merges(
        py: Python<'_>,
        merges: Vec<(i64, i64)>,
        special_tokens: Vec<(String, i64)>,
        preset: Option<&str>,
        pattern: Option<&str>,
        callable: Option<Py<PyAny>>,
        name: String,
        metadata_json: Option<&str>,
    ) -> PyResult<Self> {
        let mut m = Vec::with_capacity(merges.len());
        for (k, (a, b)) in merges.into_iter().enumerate() {
            match (u32::try_from(a), u32::try_from(b)) {
                (Ok(a), Ok(b)) => m.push((a, b)),
                _ => {
                    return Err(to_py_err(TokforgeError::InvalidVocab(format!(
                        "merge {k} ({a}, {b}) has a negative or too large id"
                    ))))
                }
            }
        }
        let ranks = io::ranks_from_merges(&m).or_py()?;
        let ranks = ranks.into_iter().map(|(b, r)| (b, r as i64)).collect();
        let merges = Some(m.into_iter().map(|(a, b)| (a as i64, b as i64)).collect());
        Self::from_ranks(
            py,
            ranks,
            special_tokens,
            preset,
            pattern,
            callable,
            None,
            name,
            merges,
            metadata_json,
        )
    }

    /// Parses a `.tiktoken` rank file's content.
    #[staticmethod]
    #[pyo3(signature = (data, special_tokens, *, path=String::from("<bytes>"), preset=None, pattern=None, callable=None, name=String::new()))]
    #[allow(clippy::too_many_arguments)]
    fn from_tiktoken_bytes(
        py: Python<'_>,
        data: &[u8],
        special_tokens: Vec<(String, i64)>,
        path: String,
        preset: Option<&str>,
        pattern: Option<&str>,
        callable: Option<Py<PyAny>>,
        name: String,
    ) -> PyResult<Self> {
        let ranks = py.detach(|| io::parse_tiktoken(data, &path)).or_py()?;
        let ranks = ranks.into_iter().map(|(b, r)| (b, r as i64)).collect();
        Self::from_ranks(
            py,
            ranks,
            special_tokens,
            preset,
            pattern,
            callable,
            None,
            name,
            None,
            None,
        )
    }

    /// Parses a tokforge JSON file's content; `callable` replaces a saved callable pretokenizer.
    #[staticmethod]
    #[pyo3(signature = (data, *, path=String::from("<bytes>"), callable=None))]
    fn from_json_bytes(
        py: Python<'_>,
        data: &[u8],
        path: String,
        callable: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        if io::detect_format(data) == Format::Hf {
            return Self::from_hf_json(py, data, path, String::new(), false);
        }
        let file = py.detach(|| TokenizerFile::parse(data, &path)).or_py()?;
        PyCore::from_file(file, callable)
    }

    /// Reads a Hugging Face `tokenizer.json` document (BPE models).
    #[staticmethod]
    #[pyo3(signature = (data, path=String::from("<bytes>"), name=String::new(), sentencepiece=false))]
    fn from_hf_json(
        py: Python<'_>,
        data: &[u8],
        path: String,
        name: String,
        sentencepiece: bool,
    ) -> PyResult<Self> {
        let enc = py
            .detach(|| Encoder::from_hf_json(data, &path, sentencepiece))
            .or_py()?;
        Ok(PyCore::new(enc, name, None, serde_json::Value::Null))
    }

    /// The `tokenizer.json` content, for a tokenizer read from one.
    #[getter]
    fn hf_json<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.hf().map(|h| PyBytes::new(py, h.source()))
    }

    /// The tokforge JSON file content.
    fn to_json_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        if let Some(h) = self.hf() {
            return PyBytes::new(py, h.source());
        }
        let data = py.detach(|| self.to_file().to_json());
        PyBytes::new(py, &data)
    }

    /// The `.tiktoken` rank file content (ordinary tokens only).
    fn to_tiktoken_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let data = py.detach(|| io::format_tiktoken(self.enc.vocab()));
        PyBytes::new(py, &data)
    }

    /// Writes `data` to `path` atomically (temporary file, then rename).
    #[staticmethod]
    fn write_atomic(py: Python<'_>, path: std::path::PathBuf, data: &[u8]) -> PyResult<()> {
        py.detach(|| io::write_atomic(&path, data)).or_py()
    }

    fn encode_ordinary<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyList>> {
        let ids = self.encode_ids(py, text, Specials::None)?;
        self.ints.list(py, &ids)
    }

    fn encode<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        allowed: Vec<String>,
        disallowed: Vec<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let ids = self.encode_ids(py, text, Specials::Lists(&allowed, &disallowed))?;
        self.ints.list(py, &ids)
    }

    /// `encode` with tiktoken's default policy (no special token allowed, all disallowed),
    /// without passing or converting the lists.
    fn encode_default<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyList>> {
        let ids = self.encode_ids(py, text, Specials::Default)?;
        self.ints.list(py, &ids)
    }

    /// Token ids as little-endian u32 bytes, for `numpy.frombuffer` without a Python list.
    fn encode_to_bytes<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        allowed: Vec<String>,
        disallowed: Vec<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ids = self.encode_ids(py, text, Specials::Lists(&allowed, &disallowed))?;
        ids_to_bytes(py, &ids)
    }

    /// `encode_ordinary` as little-endian u32 bytes.
    fn encode_ordinary_to_bytes<'py>(
        &self,
        py: Python<'py>,
        text: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ids = self.encode_ids(py, text, Specials::None)?;
        ids_to_bytes(py, &ids)
    }

    /// `encode_to_bytes` with tiktoken's default policy.
    fn encode_to_bytes_default<'py>(
        &self,
        py: Python<'py>,
        text: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ids = self.encode_ids(py, text, Specials::Default)?;
        ids_to_bytes(py, &ids)
    }

    #[pyo3(signature = (texts, allowed, disallowed, num_threads))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        allowed: Vec<String>,
        disallowed: Vec<String>,
        num_threads: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let docs = self.batch(py, &texts, &allowed, &disallowed, num_threads)?;
        let lists = docs
            .iter()
            .map(|ids| self.ints.list(py, ids))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, lists)
    }

    /// Batch encoding into one flat little-endian u32 buffer plus document offsets (n + 1 u64).
    fn encode_batch_flat<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        allowed: Vec<String>,
        disallowed: Vec<String>,
        num_threads: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let docs = self.batch(py, &texts, &allowed, &disallowed, num_threads)?;
        let total: usize = docs.iter().map(Vec::len).sum();
        let ids = PyBytes::new_with(py, total * 4, |buf| {
            let mut chunks = buf.chunks_exact_mut(4);
            for id in docs.iter().flatten() {
                chunks
                    .next()
                    .expect("sized")
                    .copy_from_slice(&id.to_le_bytes());
            }
            Ok(())
        })?;
        let offsets = PyBytes::new_with(py, (docs.len() + 1) * 8, |buf| {
            let mut acc = 0u64;
            let mut chunks = buf.chunks_exact_mut(8);
            chunks
                .next()
                .expect("sized")
                .copy_from_slice(&acc.to_le_bytes());
            for d in &docs {
                acc += d.len() as u64;
                chunks
                    .next()
                    .expect("sized")
                    .copy_from_slice(&acc.to_le_bytes());
            }
            Ok(())
        })?;
        Ok((ids, offsets))
    }

    fn encode_with_unstable(
        &self,
        py: Python<'_>,
        text: &str,
        allowed: Vec<String>,
        disallowed: Vec<String>,
    ) -> PyResult<(Vec<Rank>, Vec<Vec<Rank>>)> {
        let policy = self.policy(&allowed, &disallowed);
        py.detach(|| self.enc.encode_with_unstable(text, &policy))
            .or_py()
    }

    /// Bytes that need not be valid UTF-8, encoded as tiktoken's `_encode_bytes` does.
    fn encode_bytes<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyList>> {
        let ids = py.detach(|| self.enc.encode_bytes(data)).or_py()?;
        self.ints.list(py, &ids)
    }

    fn encode_single_token(&self, piece: &[u8]) -> PyResult<Rank> {
        self.enc.encode_single_token(piece).or_py()
    }

    fn encode_single_piece(&self, py: Python<'_>, piece: &[u8]) -> PyResult<Vec<Rank>> {
        py.detach(|| {
            let mut out = Vec::new();
            self.enc.encode_piece(piece, &mut out).map(|_| out)
        })
        .or_py()
    }

    /// The parts `piece` ends in when only merges with rank below `limit` apply.
    fn merge_parts_below(&self, piece: &[u8], limit: i64) -> PyResult<Vec<Rank>> {
        let limit = limit.clamp(0, u32::MAX as i64) as Rank;
        self.enc.merge_parts_below(piece, limit).or_py()
    }

    /// The pretokenizer's pieces of `text` (no special-token handling).
    fn split<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyList>> {
        let ranges = py.detach(|| self.enc.split(text)).or_py()?;
        PyList::new(py, ranges.into_iter().map(|r| &text[r]))
    }

    fn decode_bytes<'py>(&self, py: Python<'py>, ids: Vec<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let ids = ids_to_ranks(ids)?;
        let data = py.detach(|| self.enc.decode_bytes(&ids)).or_py()?;
        Ok(PyBytes::new(py, &data))
    }

    /// `decode_bytes` for ids given as little-endian u32 bytes (a NumPy array's buffer, range
    /// checked by the caller), without a Python list.
    fn decode_bytes_le32<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        if data.len() % 4 != 0 {
            return Err(to_py_err(TokforgeError::InvalidArgument(format!(
                "ids as u32 bytes must be a multiple of 4 bytes long, not {}",
                data.len()
            ))));
        }
        let out = py
            .detach(|| {
                let ids: Vec<Rank> = data
                    .chunks_exact(4)
                    .map(|c| Rank::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                self.enc.decode_bytes(&ids)
            })
            .or_py()?;
        Ok(PyBytes::new(py, &out))
    }

    fn decode_bytes_batch<'py>(
        &self,
        py: Python<'py>,
        batch: Vec<Vec<i64>>,
        num_threads: usize,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let mut ranks = Vec::with_capacity(batch.len());
        for ids in batch {
            ranks.push(ids_to_ranks(ids)?);
        }
        let out = py
            .detach(|| {
                crate::util::parallel_map(&ranks, num_threads, |ids| self.enc.decode_bytes(ids))
            })
            .or_py()?;
        Ok(out.iter().map(|b| PyBytes::new(py, b)).collect())
    }

    fn decode_single_token_bytes<'py>(
        &self,
        py: Python<'py>,
        id: i64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        check_ids(&[id])?;
        match self.enc.vocab().token_bytes(id as Rank) {
            Some(b) => Ok(PyBytes::new(py, b)),
            None => Err(to_py_err(TokforgeError::UnknownToken(id as u64))),
        }
    }

    fn decode_tokens_bytes<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<i64>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        check_ids(&ids)?;
        let v = self.enc.vocab();
        ids.into_iter()
            .map(|id| match v.token_bytes(id as Rank) {
                Some(b) => Ok(PyBytes::new(py, b)),
                None => Err(to_py_err(TokforgeError::UnknownToken(id as u64))),
            })
            .collect()
    }

    fn token_byte_values<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.enc
            .sorted_token_bytes()
            .iter()
            .map(|b| PyBytes::new(py, b))
            .collect()
    }

    /// `{token bytes: rank}` of the ordinary tokens.
    fn mergeable_ranks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (b, r) in self.enc.vocab().ordinary_tokens() {
            d.set_item(PyBytes::new(py, b), r)?;
        }
        Ok(d)
    }

    /// `"ordinary"`, `"special"`, `"byte_fallback"` or `"unused"`.
    fn token_kind(&self, id: i64) -> &'static str {
        if id < 0 || id > u32::MAX as i64 {
            return "unused";
        }
        match self.enc.vocab().kind(id as Rank) {
            TokenKind::Unused => "unused",
            TokenKind::Ordinary => "ordinary",
            TokenKind::Special => "special",
            TokenKind::ByteFallback => "byte_fallback",
        }
    }

    fn stream_decoder(&self, strict: bool) -> PyStreamDecoder {
        PyStreamDecoder {
            enc: self.enc.clone(),
            inner: StreamDecoder::new(strict),
        }
    }

    #[getter]
    fn special_tokens(&self) -> Vec<(String, Rank)> {
        self.enc.special_tokens().to_vec()
    }

    #[getter]
    fn n_ids(&self) -> usize {
        self.enc.vocab().n_ids()
    }

    #[getter]
    fn n_ordinary(&self) -> usize {
        self.enc.vocab().n_ordinary()
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The regex, for a regex pretokenizer.
    #[getter]
    fn pattern(&self) -> Option<String> {
        self.enc.pretokenizer_spec().pattern().map(str::to_string)
    }

    /// `"regex"`, `"whitespace"`, `"none"` or `"callable"`, and the preset name if any.
    #[getter]
    fn pretokenizer_kind(&self) -> (&'static str, Option<String>) {
        if self.hf().is_some() {
            return ("hf", None);
        }
        match self.enc.pretokenizer_spec() {
            PretokenizerSpec::Regex { preset, .. } => ("regex", preset),
            PretokenizerSpec::Whitespace => ("whitespace", None),
            PretokenizerSpec::None => ("none", None),
            PretokenizerSpec::Callable => ("callable", None),
        }
    }

    #[getter]
    fn merges(&self) -> Option<Vec<(Rank, Rank)>> {
        self.merges.clone()
    }

    /// For a tokenizer read from tokenizer.json: its merge list as (left, right, merged) ids.
    #[getter]
    fn hf_merges(&self) -> Option<Vec<(Rank, Rank, Rank)>> {
        self.hf().map(|h| h.model().merge_list())
    }

    #[getter]
    fn byte_fallback(&self) -> Option<Vec<Rank>> {
        self.enc.vocab().fallback_ids().map(|f| f.to_vec())
    }

    #[getter]
    fn metadata_json(&self) -> String {
        self.metadata.to_string()
    }
}
