//! The tokenizer.json reader: each stage's JSON into its step, checked, with errors that name
//! the file and the part of it.

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::byte_level::{char_to_byte, unmap_token, BYTE_LEVEL_PATTERN};
use super::charsmap::Charsmap;
use super::decoder::{DecodeStep, Decoding};
use super::normalizer::Normalizer;
use super::pre_tokenizer::{Behavior, Matcher, PreTokenizerStep, PrependScheme};
use super::{HfPipeline, NormalizedAdded};
use crate::error::{Result, TokforgeError};
use crate::model::{MergeListOptions, MergeModel};
use crate::pretokenize::compile_pattern as compile;
use crate::vocab::Rank;

/// What [`parse`] returns: the pipeline, and the vocabulary's parts for [`crate::Vocab::new`]
/// (ordinary tokens as decoded bytes, added tokens as specials, byte-fallback ids).
pub struct Parsed {
    pub pipeline: HfPipeline,
    pub ordinary: Vec<(Vec<u8>, Rank)>,
    pub specials: Vec<(String, Rank)>,
    pub fallback: Option<Vec<Rank>>,
}

fn bad(path: &str, reason: impl Into<String>) -> TokforgeError {
    TokforgeError::BadVocabFile {
        path: path.to_string(),
        line: 0,
        reason: reason.into(),
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn flag(v: &Value, key: &str, default: bool, path: &str, what: &str) -> Result<bool> {
    match field(v, key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(path, format!("{what}: {key:?} must be true or false"))),
    }
}

fn string<'a>(v: &'a Value, key: &str, path: &str, what: &str) -> Result<&'a str> {
    field(v, key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(path, format!("{what}: {key:?} must be a string")))
}

fn kind<'a>(v: &'a Value, path: &str, what: &str) -> Result<&'a str> {
    string(v, "type", path, what)
}

/// The steps of a component that may be a `Sequence` of components.
fn flatten<'a>(v: &'a Value, list_key: &str, path: &str, what: &str) -> Result<Vec<&'a Value>> {
    if kind(v, path, what)? == "Sequence" {
        let items = field(v, list_key)
            .and_then(Value::as_array)
            .ok_or_else(|| bad(path, format!("{what} Sequence needs a {list_key:?} list")))?;
        let mut out = Vec::new();
        for item in items {
            out.extend(flatten(item, list_key, path, what)?);
        }
        Ok(out)
    } else {
        Ok(vec![v])
    }
}

fn regex_or_string(v: &Value, path: &str, what: &str) -> Result<Matcher> {
    let p = field(v, "pattern").ok_or_else(|| bad(path, format!("{what} needs a pattern")))?;
    if let Some(s) = p.get("String").and_then(Value::as_str) {
        return Ok(Matcher::Literal(s.to_string()));
    }
    if let Some(r) = p.get("Regex").and_then(Value::as_str) {
        return Ok(Matcher::Pattern(
            compile(r).map_err(|e| bad(path, format!("{what}: {e}")))?,
        ));
    }
    Err(bad(
        path,
        format!("{what}: pattern must be {{\"String\": ..}} or {{\"Regex\": ..}}"),
    ))
}

fn parse_normalizer(v: &Value, path: &str, sentencepiece: bool) -> Result<Vec<Normalizer>> {
    let mut out = Vec::new();
    for step in flatten(v, "normalizers", path, "normalizer")? {
        let t = kind(step, path, "normalizer")?;
        out.push(match t {
            "NFC" => Normalizer::Nfc,
            "NFD" => Normalizer::Nfd,
            "NFKC" => Normalizer::Nfkc,
            "NFKD" => Normalizer::Nfkd,
            "Lowercase" => Normalizer::Lowercase,
            "StripAccents" => Normalizer::StripAccents,
            "ByteLevel" => Normalizer::ByteLevel,
            "Nmt" => Normalizer::Nmt,
            "Precompiled" => {
                use base64::Engine;
                let b64 = field(step, "precompiled_charsmap")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| bad(path, format!("Precompiled: charsmap is not base64: {e}")))?;
                match Charsmap::parse(&raw).map_err(|e| bad(path, e))? {
                    Some(map) => Normalizer::Precompiled {
                        map,
                        longest: sentencepiece,
                    },
                    None => continue,
                }
            }
            "Strip" => Normalizer::Strip {
                left: flag(step, "strip_left", true, path, "Strip")?,
                right: flag(step, "strip_right", true, path, "Strip")?,
            },
            "Prepend" => Normalizer::Prepend(string(step, "prepend", path, "Prepend")?.into()),
            "Replace" => {
                let content = string(step, "content", path, "Replace")?.to_string();
                match regex_or_string(step, path, "Replace normalizer")? {
                    Matcher::Literal(pattern) => Normalizer::ReplaceStr { pattern, content },
                    Matcher::Pattern(pattern) => Normalizer::ReplaceMatches { pattern, content },
                    Matcher::Chars(_) | Matcher::Char(_) => {
                        unreachable!("regex_or_string makes only Literal and Pattern")
                    }
                }
            }
            other => {
                return Err(bad(
                    path,
                    format!(
                        "normalizer {other:?} is not supported (supported: Sequence, NFC, NFD, \
                         NFKC, NFKD, Lowercase, Strip, StripAccents, Prepend, Replace, \
                         Precompiled, ByteLevel, Nmt)"
                    ),
                ))
            }
        });
    }
    Ok(out)
}

fn behavior(step: &Value, path: &str) -> Result<Behavior> {
    Ok(match field(step, "behavior").and_then(Value::as_str) {
        Some("Removed") => Behavior::Removed,
        Some("Isolated") => Behavior::Isolated,
        Some("MergedWithPrevious") => Behavior::MergedWithPrevious,
        Some("MergedWithNext") => Behavior::MergedWithNext,
        Some("Contiguous") => Behavior::Contiguous,
        other => {
            return Err(bad(
                path,
                format!("Split: unknown behavior {other:?} (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)"),
            ))
        }
    })
}

fn prepend_scheme(step: &Value, path: &str) -> Result<PrependScheme> {
    match field(step, "prepend_scheme").and_then(Value::as_str) {
        Some("always") => Ok(PrependScheme::Always),
        Some("first") => Ok(PrependScheme::First),
        Some("never") => Ok(PrependScheme::Never),
        None => Ok(
            if flag(step, "add_prefix_space", true, path, "Metaspace")? {
                PrependScheme::Always
            } else {
                PrependScheme::Never
            },
        ),
        Some(other) => Err(bad(
            path,
            format!("Metaspace: unknown prepend_scheme {other:?} (always, first, never)"),
        )),
    }
}

fn replacement(step: &Value, path: &str, what: &str) -> Result<char> {
    let s = string(step, "replacement", path, what)?;
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(bad(
            path,
            format!("{what}: replacement must be one character"),
        )),
    }
}

/// `tokenizers`' punctuation test (Punctuation, BertPreTokenizer): ASCII punctuation (which
/// includes symbols such as `$`, `+`, `^`) or a Unicode punctuation category (Pc, Pd, Ps, Pe,
/// Pi, Pf, Po).
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || unicode_punctuation(c)
}

fn unicode_punctuation(c: char) -> bool {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"\A\p{P}\z").expect("a valid pattern"));
    let mut buf = [0u8; 4];
    !c.is_ascii() && re.is_match(c.encode_utf8(&mut buf))
}

fn parse_pretokenizer(v: &Value, path: &str) -> Result<Vec<PreTokenizerStep>> {
    let mut out = Vec::new();
    for step in flatten(v, "pretokenizers", path, "pre_tokenizer")? {
        let t = kind(step, path, "pre_tokenizer")?;
        let step = match t {
            "Split" => PreTokenizerStep::Split {
                matcher: regex_or_string(step, path, "Split")?,
                behavior: behavior(step, path)?,
                invert: flag(step, "invert", false, path, "Split")?,
            },
            "Metaspace" => PreTokenizerStep::Metaspace {
                replacement: replacement(step, path, "Metaspace")?,
                prepend: prepend_scheme(step, path)?,
                split: flag(step, "split", true, path, "Metaspace")?,
            },
            "ByteLevel" => PreTokenizerStep::ByteLevel {
                add_prefix_space: flag(step, "add_prefix_space", true, path, "ByteLevel")?,
                regex: if flag(step, "use_regex", true, path, "ByteLevel")? {
                    Some(Matcher::Pattern(compile(BYTE_LEVEL_PATTERN)?))
                } else {
                    None
                },
            },
            "Digits" => PreTokenizerStep::Split {
                matcher: Matcher::Chars(char::is_numeric),
                behavior: if flag(step, "individual_digits", false, path, "Digits")? {
                    Behavior::Isolated
                } else {
                    Behavior::Contiguous
                },
                invert: false,
            },
            "Punctuation" => PreTokenizerStep::Split {
                matcher: Matcher::Chars(is_punctuation),
                behavior: match field(step, "behavior") {
                    None => Behavior::Isolated,
                    Some(_) => behavior(step, path)?,
                },
                invert: false,
            },
            "BertPreTokenizer" => {
                out.push(PreTokenizerStep::Split {
                    matcher: Matcher::Chars(char::is_whitespace),
                    behavior: Behavior::Removed,
                    invert: false,
                });
                PreTokenizerStep::Split {
                    matcher: Matcher::Chars(is_punctuation),
                    behavior: Behavior::Isolated,
                    invert: false,
                }
            }
            "FixedLength" => {
                let n = field(step, "length").and_then(Value::as_u64).unwrap_or(5);
                match usize::try_from(n) {
                    Ok(n) if n > 0 => PreTokenizerStep::FixedLength(n),
                    _ => return Err(bad(path, "FixedLength: length must be a positive integer")),
                }
            }
            "CharDelimiterSplit" => {
                let d = string(step, "delimiter", path, "CharDelimiterSplit")?;
                let mut chars = d.chars();
                let (Some(c), None) = (chars.next(), chars.next()) else {
                    return Err(bad(
                        path,
                        "CharDelimiterSplit: delimiter must be one character",
                    ));
                };
                PreTokenizerStep::Split {
                    matcher: Matcher::Char(c),
                    behavior: Behavior::Removed,
                    invert: false,
                }
            }
            "WhitespaceSplit" => PreTokenizerStep::Split {
                matcher: Matcher::Chars(char::is_whitespace),
                behavior: Behavior::Removed,
                invert: false,
            },
            "Whitespace" => PreTokenizerStep::Split {
                matcher: Matcher::Pattern(compile(r"\w+|[^\w\s]+")?),
                behavior: Behavior::Removed,
                invert: true,
            },
            other => {
                return Err(bad(
                    path,
                    format!(
                        "pre_tokenizer {other:?} is not supported (supported: Sequence, Split, \
                         Metaspace, ByteLevel, Digits, Punctuation, BertPreTokenizer, \
                         CharDelimiterSplit, FixedLength, WhitespaceSplit, Whitespace)"
                    ),
                ))
            }
        };
        out.push(step);
    }
    if let Some(k) = out
        .iter()
        .position(|p| matches!(p, PreTokenizerStep::ByteLevel { .. }))
    {
        if out[k + 1..]
            .iter()
            .any(|p| matches!(p, PreTokenizerStep::ByteLevel { .. }))
        {
            return Err(bad(path, "two ByteLevel pre-tokenizers are not supported"));
        }
        if k + 1 != out.len() {
            // The steps after it split the byte-mapped text, as in `tokenizers`.
            out.insert(k + 1, PreTokenizerStep::ByteMap);
        }
    }
    Ok(out)
}

fn parse_decoder(v: Option<&Value>, path: &str) -> Result<Decoding> {
    let mut d = Decoding {
        steps: Vec::new(),
        strip: None,
    };
    let Some(v) = v else { return Ok(d) };
    let mut fused = false;
    for step in flatten(v, "decoders", path, "decoder")? {
        match kind(step, path, "decoder")? {
            "ByteLevel" => d.steps.push(DecodeStep::ByteLevel),
            "ByteFallback" => d.steps.push(DecodeStep::ByteFallback),
            "Fuse" => fused = true,
            "Replace" => {
                let content = string(step, "content", path, "Replace decoder")?.to_string();
                match regex_or_string(step, path, "Replace decoder")? {
                    Matcher::Literal(p) => d.steps.push(DecodeStep::Replace(p, content)),
                    _ => {
                        return Err(bad(
                            path,
                            "a Replace decoder with a regex pattern is not supported",
                        ))
                    }
                }
            }
            "Metaspace" => {
                let r = replacement(step, path, "Metaspace decoder")?;
                d.steps.push(DecodeStep::Metaspace(r));
                if prepend_scheme(step, path)? != PrependScheme::Never {
                    d.strip = Some((' ', 1, 0));
                }
            }
            "Strip" => {
                let content = string(step, "content", path, "Strip decoder")?;
                let mut cs = content.chars();
                let c = match (cs.next(), cs.next()) {
                    (Some(c), None) => c,
                    _ => return Err(bad(path, "Strip decoder: content must be one character")),
                };
                let n = |k: &str| field(step, k).and_then(Value::as_u64).unwrap_or(0) as usize;
                if fused {
                    d.strip = Some((c, n("start"), n("stop")));
                } else {
                    d.steps
                        .push(DecodeStep::StripEach(c, n("start"), n("stop")));
                }
            }
            other => {
                return Err(bad(
                    path,
                    format!(
                        "decoder {other:?} is not supported (supported: Sequence, ByteLevel, \
                         ByteFallback, Fuse, Replace, Metaspace, Strip)"
                    ),
                ))
            }
        }
    }
    Ok(d)
}

/// Reads a `tokenizer.json` document. `path` names it in errors. With `sentencepiece`, a
/// `Precompiled` normalizer follows `sentencepiece`'s longest-match rule instead of
/// `tokenizers`' per-grapheme one (for tokenizers converted from a `.model` file).
pub fn parse(data: &[u8], path: &str, sentencepiece: bool) -> Result<Parsed> {
    let root: Value =
        serde_json::from_slice(data).map_err(|e| bad(path, format!("not valid JSON: {e}")))?;
    let model = field(&root, "model").ok_or_else(|| bad(path, "no \"model\" object"))?;
    match field(model, "type").and_then(Value::as_str) {
        Some("BPE") | None if model.get("merges").is_some() => {}
        Some(other) => {
            return Err(bad(
                path,
                format!("model type {other:?} is not supported (only BPE)"),
            ))
        }
        None => return Err(bad(path, "the model has no \"type\" and no merges")),
    }
    if let Some(d) = field(model, "dropout").and_then(Value::as_f64) {
        if d > 0.0 {
            return Err(bad(
                path,
                format!("BPE dropout ({d}) makes encoding random; tokforge does not support it"),
            ));
        }
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if field(model, key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(bad(path, format!("BPE {key} is not supported")));
        }
    }
    let vocab_obj = field(model, "vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| bad(path, "model.vocab must be an object of token -> id"))?;
    let mut vocab: Vec<(String, Rank)> = Vec::with_capacity(vocab_obj.len());
    let mut id_of: FxHashMap<&str, Rank> = FxHashMap::default();
    for (tok, id) in vocab_obj {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .filter(|&i| i != u32::MAX)
            .ok_or_else(|| bad(path, format!("token {tok:?} has id {id}, not a u32")))?;
        id_of.insert(tok, id);
        vocab.push((tok.clone(), id));
    }

    let normalizers = match field(&root, "normalizer") {
        Some(n) => parse_normalizer(n, path, sentencepiece)?,
        None => Vec::new(),
    };
    let pretokenizers = match field(&root, "pre_tokenizer") {
        Some(p) => parse_pretokenizer(p, path)?,
        None => Vec::new(),
    };
    let byte_level = pretokenizers
        .iter()
        .any(|p| matches!(p, PreTokenizerStep::ByteLevel { .. }));
    let decoding = parse_decoder(field(&root, "decoder"), path)?;
    let unmap = char_to_byte();

    // Added tokens: cut out before everything else, as special tokens.
    // An added token may repeat a model token (same text, same id: `tokenizers`' trainer
    // writes `<unk>` and `<0x00>`... so), but not take an id the model gives to another text:
    // `tokenizers` decodes such an id as the model's token, and encoding the model's text
    // would come back as the added one.
    let mut specials: Vec<(String, Rank)> = Vec::new();
    let mut special_ids: FxHashMap<Rank, ()> = FxHashMap::default();
    let mut added_at: FxHashMap<Rank, &str> = FxHashMap::default();
    let model_at: FxHashMap<Rank, &str> = vocab.iter().map(|(t, id)| (*id, t.as_str())).collect();
    let mut normalized_added: Vec<(String, Rank)> = Vec::new();
    let mut added_ordinary: Vec<(String, Rank)> = Vec::new();
    let mut raw_added: Vec<(String, Rank)> = Vec::new();
    if let Some(added) = field(&root, "added_tokens") {
        let list = added
            .as_array()
            .ok_or_else(|| bad(path, "added_tokens must be a list"))?;
        for (k, t) in list.iter().enumerate() {
            let what = format!("added_tokens[{k}]");
            let content = string(t, "content", path, &what)?;
            let id = field(t, "id")
                .and_then(Value::as_u64)
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| bad(path, format!("{what}: id must be a u32")))?;
            for key in ["lstrip", "rstrip", "single_word"] {
                if flag(t, key, false, path, &what)? {
                    return Err(bad(
                        path,
                        format!("{what} ({content:?}) sets {key}, which tokforge does not support"),
                    ));
                }
            }
            if content.is_empty() {
                return Err(bad(path, format!("{what} is empty")));
            }
            if let Some(&v) = id_of.get(content) {
                if v != id {
                    return Err(bad(
                        path,
                        format!("{what} {content:?} has id {id} but the vocabulary says {v}"),
                    ));
                }
            }
            if let Some(&other) = model_at.get(&id) {
                if other != content {
                    return Err(bad(
                        path,
                        format!(
                            "{what} {content:?} has id {id}, which the model's vocabulary gives \
                             to {other:?} (tokenizers would decode {id} as {other:?})"
                        ),
                    ));
                }
            }
            if let Some(&other) = added_at.get(&id) {
                if other != content {
                    return Err(bad(
                        path,
                        format!("{what} {content:?} has id {id}, already the id of {other:?}"),
                    ));
                }
            }
            added_at.insert(id, content);
            let special = flag(t, "special", false, path, &what)?;
            if flag(t, "normalized", !special, path, &what)? {
                // Matched in the normalized text, as its own content normalized (tokforge's
                // `tokforge_literal`: as it is, like SentencePiece's USER_DEFINED pieces).
                let mut pattern = content.to_string();
                if !flag(t, "tokforge_literal", false, path, &what)? {
                    let limit = super::normalizer::growth_limit(pattern.len());
                    for n in &normalizers {
                        pattern = n.apply(pattern, limit)?;
                    }
                }
                if !pattern.is_empty() && !normalized_added.iter().any(|(_, i)| *i == id) {
                    normalized_added.push((pattern, id));
                    if !id_of.contains_key(content) {
                        added_ordinary.push((content.to_string(), id));
                    }
                }
                continue;
            }
            if special_ids.insert(id, ()).is_none() {
                specials.push((content.to_string(), id));
            }
            if !raw_added.iter().any(|(_, i)| *i == id) {
                raw_added.push((content.to_string(), id));
            }
        }
    }

    // Byte fallback: the 256 <0xNN> tokens.
    let byte_fallback = flag(model, "byte_fallback", false, path, "model")?;
    let mut fallback_ids: Option<Vec<Rank>> = None;
    if byte_fallback {
        let ids: Option<Vec<Rank>> = (0..=255u8)
            .map(|b| id_of.get(format!("<0x{b:02X}>").as_str()).copied())
            .collect();
        // `tokenizers` falls back to the unknown token when any of the 256 is missing.
        fallback_ids = ids;
    }
    // Without a ByteFallback decoder, `tokenizers` decodes `<0x0A>` as that text: then they are
    // ordinary tokens to the decoder (the model still falls back to them).
    let decodes_bytes = decoding
        .steps
        .iter()
        .any(|s| matches!(s, DecodeStep::ByteFallback));
    let vocab_fallback = fallback_ids.clone().filter(|_| decodes_bytes);
    let is_fallback = |id: Rank| vocab_fallback.as_ref().is_some_and(|f| f.contains(&id));
    // An added token that is also a byte-fallback token (same id) stays a fallback byte for
    // decoding and is cut out of the raw text by the pipeline instead.
    raw_added.retain(|(_, id)| is_fallback(*id));
    specials.retain(|(_, id)| !is_fallback(*id));
    special_ids.retain(|id, _| !is_fallback(*id));

    let unk = match field(model, "unk_token").and_then(Value::as_str) {
        Some(u) => Some(
            *id_of
                .get(u)
                .ok_or_else(|| bad(path, format!("unk_token {u:?} is not in the vocabulary")))?,
        ),
        None => None,
    };

    // Model tokens: raw bytes (byte-level) or the token text.
    // In byte-level mode a token with a character outside the byte alphabet can never be
    // produced (`tokenizers` loads it, never emits it, and decodes it as its UTF-8 text).
    let mut unproducible: FxHashMap<Rank, ()> = FxHashMap::default();
    let model_tokens: Vec<(Vec<u8>, Rank)> = vocab
        .iter()
        .filter_map(|(t, id)| {
            let key = if byte_level {
                match unmap_token(t, &unmap) {
                    Some(k) => k,
                    None => {
                        unproducible.insert(*id, ());
                        return None;
                    }
                }
            } else {
                t.as_bytes().to_vec()
            };
            Some((key, *id))
        })
        .collect();
    let merges_v = field(model, "merges")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(path, "model.merges must be a list"))?;
    let mut merges: Vec<(Rank, Rank)> = Vec::with_capacity(merges_v.len());
    let mut kept: Vec<usize> = Vec::with_capacity(merges_v.len());
    for (k, m) in merges_v.iter().enumerate() {
        let (a, b) = match m {
            Value::String(s) => s
                .split_once(' ')
                .ok_or_else(|| bad(path, format!("merges[{k}] {s:?} is not \"left right\"")))?,
            Value::Array(p) if p.len() == 2 => match (p[0].as_str(), p[1].as_str()) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(bad(path, format!("merges[{k}] is not two strings"))),
            },
            _ => return Err(bad(path, format!("merges[{k}] is not a pair"))),
        };
        let look = |s: &str| {
            id_of.get(s).copied().ok_or_else(|| {
                bad(
                    path,
                    format!("merges[{k}] uses {s:?}, which is not in the vocabulary"),
                )
            })
        };
        let (ia, ib) = (look(a)?, look(b)?);
        if !id_of.contains_key(format!("{a}{b}").as_str()) {
            return Err(bad(
                path,
                format!(
                    "merges[{k}] makes {:?}, which is not in the vocabulary",
                    format!("{a}{b}")
                ),
            ));
        }
        if unproducible.contains_key(&ia) || unproducible.contains_key(&ib) {
            // Its pair never forms.
            continue;
        }
        kept.push(k);
        merges.push((ia, ib));
    }
    let fallback_box = fallback_ids.as_ref().map(|f| {
        let mut arr = Box::new([0 as Rank; 256]);
        arr.copy_from_slice(f);
        arr
    });
    let options = MergeListOptions {
        byte_level,
        byte_fallback: fallback_box,
        unk,
        fuse_unk: flag(model, "fuse_unk", false, path, "model")?,
        ignore_merges: flag(model, "ignore_merges", false, path, "model")?,
    };
    // tokforge's own key (files read from SentencePiece `.model`s carry it): a priority per
    // merge, equal ones merging leftmost first (see [`MergeModel::with_priorities`]).
    let priorities: Option<Vec<u32>> = match field(model, "tokforge_merge_priorities") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|v| v.as_u64().and_then(|x| u32::try_from(x).ok()))
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| bad(path, "model.tokforge_merge_priorities must hold u32s"))?,
        ),
        Some(_) => return Err(bad(path, "model.tokforge_merge_priorities must be a list")),
    };
    let priorities = match priorities {
        Some(p) if p.len() == merges_v.len() => {
            Some(kept.iter().map(|&k| p[k]).collect::<Vec<u32>>())
        }
        Some(p) => {
            return Err(bad(
                path,
                format!("{} merge priorities for {} merges", p.len(), merges_v.len()),
            ))
        }
        None => None,
    };
    let model = MergeModel::with_priorities(model_tokens, &merges, priorities.as_deref(), options)
        .map_err(|e| bad(path, e.to_string()))?;

    // The vocabulary tokforge decodes with: every model token that is not an added token or a
    // byte-fallback token, as its decoded bytes.
    let mut ordinary = Vec::with_capacity(vocab.len());
    let mut seen: FxHashMap<Vec<u8>, Rank> = FxHashMap::default();
    vocab.extend(added_ordinary);
    // Producible tokens first: an unproducible one decoding to the same bytes (Command-R's
    // 470 and 6705, both "🇸") is only decoded, aside from the vocabulary.
    vocab.sort_by_key(|(_, id)| (unproducible.contains_key(id), *id));
    let mut aliases: Vec<(Rank, Vec<u8>)> = Vec::new();
    for (t, id) in &vocab {
        if special_ids.contains_key(id) || is_fallback(*id) {
            continue;
        }
        let b = decoding.decode(t, &unmap);
        let normalized_token = normalized_added.iter().any(|(_, i)| i == id);
        if (unproducible.contains_key(id) || normalized_token)
            && (b.is_empty() || seen.contains_key(&b))
        {
            // Decoded aside from the vocabulary (a normalized added token the decoder renders
            // as nothing, like `</s>`, is still emitted by the pipeline).
            aliases.push((*id, b));
            continue;
        }
        if b.is_empty() {
            return Err(bad(
                path,
                format!("token {t:?} (id {id}) decodes to nothing; tokforge cannot represent it"),
            ));
        }
        if let Some(prev) = seen.insert(b.clone(), *id) {
            return Err(bad(
                path,
                format!(
                    "tokens {prev} and {id} decode to the same bytes {:?}; tokforge needs them \
                     distinct",
                    String::from_utf8_lossy(&b)
                ),
            ));
        }
        ordinary.push((b, *id));
    }
    let cut_before = Some('▁').filter(|&c| model.splits_before(c));
    let byte_mapped = pretokenizers
        .iter()
        .any(|p| matches!(p, PreTokenizerStep::ByteMap))
        .then(char_to_byte);
    Ok(Parsed {
        pipeline: HfPipeline {
            normalizers,
            pretokenizers,
            model,
            strip: decoding.strip,
            special_decoded: specials
                .iter()
                .filter_map(|(t, id)| {
                    let b = decoding.decode(t, &unmap);
                    (b != t.as_bytes()).then_some((*id, b))
                })
                .chain(aliases)
                .collect(),
            source: data.to_vec(),
            cut_before,
            byte_mapped,
            raw_added: if raw_added.is_empty() {
                None
            } else {
                Some(NormalizedAdded::new(raw_added).map_err(|e| bad(path, e.to_string()))?)
            },
            normalized_added: if normalized_added.is_empty() {
                None
            } else {
                Some(NormalizedAdded::new(normalized_added).map_err(|e| bad(path, e.to_string()))?)
            },
        },
        ordinary,
        specials,
        fallback: vocab_fallback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_clear_errors() {
        for (doc, needle) in [
            (&b"{"[..], "not valid JSON"),
            (b"{}", "no \"model\""),
            (
                br#"{"model": {"type": "WordPiece", "vocab": {}}}"#,
                "only BPE",
            ),
            (
                br#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#,
                "not in the vocabulary",
            ),
            (
                br#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}}"#,
                "dropout",
            ),
            (
                br#"{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}"#,
                "not a u32",
            ),
        ] {
            let err = parse(doc, "t.json", false)
                .err()
                .expect("must fail")
                .to_string();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
            assert!(err.starts_with("t.json"), "{err}");
        }
    }
}
