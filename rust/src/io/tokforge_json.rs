//! tokforge's own single-file JSON format.
//!
//! # Version 1
//! One JSON object, UTF-8:
//! ```json
//! {
//!   "format": "tokforge", "version": 1, "name": "my-vocab",
//!   "pretokenizer": {"type": "regex", "pattern": "...", "preset": "cl100k"},
//!   "model": {"type": "merges", "merges": [[108, 111], [256, 119]]},
//!   "special_tokens": {"<|endoftext|>": 258},
//!   "byte_fallback": null,
//!   "metadata": {}
//! }
//! ```
//! - `pretokenizer.type` is `regex` (with `pattern`, and `preset` when it is one), `whitespace`,
//!   `none`, or `callable` (a Python function, which the file cannot hold: loading such a file
//!   needs the function passed again).
//! - `model.type` is `merges` (byte-level BPE: ids 0..=255 are the single bytes, merge `k` joins
//!   two ids into id `256 + k`; the merges are the source of truth and the vocabulary is derived)
//!   or `ranks` (`tokens[i]` is the base64 of the token whose id/rank is `i`, `null` for an unused
//!   id; used for vocabularies such as cl100k whose merges are not known).
//! - `byte_fallback` is `null` or the 256 ids of the `<0x00>`..`<0xFF>` tokens.
//! - Readers refuse a `version` newer than they know.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{check_id, B64};
use crate::error::{Result, TokforgeError};
use crate::pretokenize::PretokenizerSpec;
use crate::vocab::{Rank, Vocab};

/// The tokforge file format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The ordinary tokens of a byte-level BPE defined by its merges: ids 0..=255 are the bytes and
/// merge `k` makes id `256 + k` from two earlier ids.
///
/// The lengths are worked out first and checked with [`crate::vocab::check_token_lengths`], so
/// merges that chain into very long tokens are refused before any is built.
pub fn ranks_from_merges(merges: &[(Rank, Rank)]) -> Result<Vec<(Vec<u8>, Rank)>> {
    let mut lengths: Vec<u64> = vec![1; 256];
    lengths.reserve(merges.len());
    for (k, &(a, b)) in merges.iter().enumerate() {
        let id = 256 + k;
        let (a, b) = (a as usize, b as usize);
        if a >= id || b >= id {
            return Err(TokforgeError::InvalidVocab(format!(
                "merge {k} ({a}, {b}) refers to an id not yet defined (merge {k} defines id {id})"
            )));
        }
        lengths.push(lengths[a].saturating_add(lengths[b]));
    }
    crate::vocab::check_token_lengths(lengths.iter().copied())?;
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for (k, &(a, b)) in merges.iter().enumerate() {
        let id = 256 + k;
        let (a, b) = (a as usize, b as usize);
        if a >= id || b >= id {
            return Err(TokforgeError::InvalidVocab(format!(
                "merge {k} ({a}, {b}) refers to an id not yet defined (merge {k} defines id {id})"
            )));
        }
        let mut t = tokens[a].clone();
        t.extend_from_slice(&tokens[b]);
        tokens.push(t);
    }
    Ok(tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as Rank))
        .collect())
}

/// Everything a tokforge file holds.
#[derive(Debug, Clone)]
pub struct TokenizerFile {
    /// The tokenizer's name.
    pub name: String,
    /// The pretokenizer.
    pub pretokenizer: PretokenizerSpec,
    /// Ordinary tokens with their ranks.
    pub ranks: Vec<(Vec<u8>, Rank)>,
    /// The merges, when the vocabulary was defined by them (byte-level BPE).
    pub merges: Option<Vec<(Rank, Rank)>>,
    /// Special tokens and their ids.
    pub special_tokens: Vec<(String, Rank)>,
    /// Ids of `<0x00>`..`<0xFF>`, for byte fallback.
    pub byte_fallback: Option<Vec<Rank>>,
    /// Free-form metadata (training options, source, ...), kept as JSON.
    pub metadata: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    format: String,
    version: u32,
    #[serde(default)]
    name: String,
    pretokenizer: PretokJson,
    model: ModelJson,
    #[serde(default)]
    special_tokens: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    byte_fallback: Option<Vec<Rank>>,
    #[serde(default)]
    metadata: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum PretokJson {
    Regex {
        pattern: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preset: Option<String>,
    },
    Whitespace,
    None,
    Callable,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ModelJson {
    Merges { merges: Vec<(Rank, Rank)> },
    Ranks { tokens: Vec<Option<String>> },
}

impl TokenizerFile {
    /// Parses a tokforge JSON file; `path` is only used in error messages.
    pub fn parse(text: &[u8], path: &str) -> Result<Self> {
        let bad = |line: usize, reason: String| TokforgeError::BadVocabFile {
            path: path.to_string(),
            line,
            reason,
        };
        // Check the header first so that a wrong file type gets a clear message.
        let value: serde_json::Value = serde_json::from_slice(text)
            .map_err(|e| bad(e.line(), format!("not valid JSON: {e}")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some("tokforge") => {}
            _ => {
                return Err(bad(
                    1,
                    "not a tokforge file (no \"format\": \"tokforge\")".into(),
                ))
            }
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v >= 1 && v <= FORMAT_VERSION as u64 => {}
            Some(v) => {
                return Err(bad(
                    1,
                    format!("file format version {v}; this tokforge reads up to {FORMAT_VERSION}"),
                ))
            }
            None => return Err(bad(1, "missing \"version\"".into())),
        }
        let f: FileJson = serde_json::from_slice(text).map_err(|e| bad(e.line(), e.to_string()))?;
        let pretokenizer = match f.pretokenizer {
            PretokJson::Regex { pattern, preset } => PretokenizerSpec::Regex { pattern, preset },
            PretokJson::Whitespace => PretokenizerSpec::Whitespace,
            PretokJson::None => PretokenizerSpec::None,
            PretokJson::Callable => PretokenizerSpec::Callable,
        };
        let (ranks, merges) = match f.model {
            ModelJson::Merges { merges } => (
                ranks_from_merges(&merges).map_err(|e| bad(0, e.to_string()))?,
                Some(merges),
            ),
            ModelJson::Ranks { tokens } => {
                let mut ranks = Vec::with_capacity(tokens.len());
                for (i, t) in tokens.into_iter().enumerate() {
                    if let Some(t) = t {
                        let b = B64
                            .decode(&t)
                            .map_err(|e| bad(0, format!("model.tokens[{i}]: bad base64: {e}")))?;
                        ranks.push((b, i as Rank));
                    }
                }
                (ranks, None)
            }
        };
        let mut special_tokens = Vec::new();
        for (k, v) in f.special_tokens {
            let id = v
                .as_u64()
                .filter(|&i| i <= u32::MAX as u64)
                .ok_or_else(|| {
                    bad(
                        0,
                        format!("special token {k:?}: id must be a non-negative integer"),
                    )
                })?;
            check_id(id, ranks.len(), &format!("special token {k:?}: id"))
                .map_err(|r| bad(0, r))?;
            special_tokens.push((k, id as Rank));
        }
        if let Some(f) = &f.byte_fallback {
            if let Some(&id) = f.iter().max() {
                check_id(id as u64, ranks.len(), "byte_fallback id").map_err(|r| bad(0, r))?;
            }
        }
        special_tokens.sort_by_key(|(_, i)| *i);
        Ok(TokenizerFile {
            name: f.name,
            pretokenizer,
            ranks,
            merges,
            special_tokens,
            byte_fallback: f.byte_fallback,
            metadata: f.metadata,
        })
    }

    /// Serialises to the tokforge JSON format.
    pub fn to_json(&self) -> Vec<u8> {
        let model = match &self.merges {
            Some(m) => ModelJson::Merges { merges: m.clone() },
            None => {
                let n = self
                    .ranks
                    .iter()
                    .map(|(_, r)| *r as usize + 1)
                    .max()
                    .unwrap_or(0);
                let mut tokens = vec![None; n];
                for (b, r) in &self.ranks {
                    tokens[*r as usize] = Some(B64.encode(b));
                }
                ModelJson::Ranks { tokens }
            }
        };
        let pretokenizer = match &self.pretokenizer {
            PretokenizerSpec::Regex { pattern, preset } => PretokJson::Regex {
                pattern: pattern.clone(),
                preset: preset.clone(),
            },
            PretokenizerSpec::Whitespace => PretokJson::Whitespace,
            PretokenizerSpec::None => PretokJson::None,
            PretokenizerSpec::Callable => PretokJson::Callable,
        };
        let special_tokens = self
            .special_tokens
            .iter()
            .map(|(s, i)| (s.clone(), serde_json::Value::from(*i)))
            .collect();
        let f = FileJson {
            format: "tokforge".into(),
            version: FORMAT_VERSION,
            name: self.name.clone(),
            pretokenizer,
            model,
            special_tokens,
            byte_fallback: self.byte_fallback.clone(),
            metadata: if self.metadata.is_null() {
                serde_json::json!({})
            } else {
                self.metadata.clone()
            },
        };
        let mut out = serde_json::to_vec(&f).expect("a tokenizer file always serialises");
        out.push(b'\n');
        out
    }

    /// Builds the vocabulary this file describes.
    pub fn vocab(&self) -> Result<Vocab> {
        Vocab::new(
            self.ranks.clone(),
            self.special_tokens.clone(),
            self.byte_fallback.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_chain_is_refused_before_its_tokens_are_built() {
        // a, aa, aaa, ...: 100k merges would make 5 GB of tokens.
        let chain = |n: u32| -> Vec<(Rank, Rank)> {
            std::iter::once((97, 97))
                .chain((0..n - 1).map(|i| (256 + i, 97)))
                .collect()
        };
        let err = ranks_from_merges(&chain(100_000)).unwrap_err();
        assert!(
            matches!(&err, TokforgeError::InvalidVocab(m) if m.contains("the longest has 100001 bytes")),
            "{err}"
        );
        // Doubling chains overflow no counter.
        let doubling: Vec<(Rank, Rank)> = std::iter::once((97, 97))
            .chain((0..200).map(|i| (256 + i, 256 + i)))
            .collect();
        assert!(ranks_from_merges(&doubling).is_err());
        let r = ranks_from_merges(&chain(1000)).unwrap();
        assert_eq!(r.last().unwrap().0, vec![b'a'; 1001]);
        assert!(Vocab::new(r, vec![], None).is_ok());
    }

    #[test]
    fn merges_define_tokens() {
        let r = ranks_from_merges(&[(108, 111), (256, 119)]).unwrap();
        assert_eq!(r[256], (b"lo".to_vec(), 256));
        assert_eq!(r[257], (b"low".to_vec(), 257));
        assert!(ranks_from_merges(&[(300, 1)]).is_err());
    }

    #[test]
    fn json_round_trip() {
        let f = TokenizerFile {
            name: "t".into(),
            pretokenizer: PretokenizerSpec::Whitespace,
            ranks: ranks_from_merges(&[(108, 111)]).unwrap(),
            merges: Some(vec![(108, 111)]),
            special_tokens: vec![("<|eot|>".into(), 257)],
            byte_fallback: None,
            metadata: serde_json::json!({"k": 1}),
        };
        let text = f.to_json();
        let g = TokenizerFile::parse(&text, "t.json").unwrap();
        assert_eq!(g.ranks, f.ranks);
        assert_eq!(g.special_tokens, f.special_tokens);
        assert_eq!(g.pretokenizer, f.pretokenizer);
        assert_eq!(g.metadata, f.metadata);
        let bad = TokenizerFile::parse(b"{\"format\": \"tokforge\",\n \"version\": 99}", "b.json")
            .unwrap_err();
        assert!(bad.to_string().contains("version 99"), "{bad}");
        let bad = TokenizerFile::parse(
            b"{\n\"format\": \"tokforge\", \"version\": 1,\n\"model\": 3}",
            "b.json",
        );
        assert!(bad.is_err());
        for extra in [
            r#""special_tokens": {"<s>": 4000000000}"#,
            r#""byte_fallback": [4000000000]"#,
        ] {
            let text = format!(
                r#"{{"format": "tokforge", "version": 1, "pretokenizer": {{"type": "none"}},
                "model": {{"type": "merges", "merges": []}}, {extra}}}"#
            );
            let err = TokenizerFile::parse(text.as_bytes(), "b.json").unwrap_err();
            assert!(err.to_string().contains("far beyond"), "{err}");
        }
    }
}
