//! Normalizers: the first stage of a tokenizer.json pipeline, applied to each stretch of text
//! between added tokens.

use unicode_normalization::UnicodeNormalization;

use super::charsmap::Charsmap;
use crate::error::{Result, TokforgeError};
use crate::pretokenize::Pretokenizer;

/// A normalized stretch may grow to at most this many times its bytes...
pub const MAX_GROWTH_FACTOR: usize = 32;
/// ...plus this many bytes. Real normalizers grow text a little (`Replace(" ", "▁")` triples a
/// space, `NFKC` turns one ligature into a few letters, `Prepend` adds a prefix); a file whose
/// `Replace` steps multiply text (nine times `a` -> ten `a`s make a billion of `ab`) is refused
/// with an error when the output would pass the limit, before it is built.
pub const MAX_GROWTH_SLACK: usize = 1 << 10;

/// The largest normalized form allowed for a stretch of `n` bytes.
pub(crate) fn growth_limit(n: usize) -> usize {
    n.saturating_mul(MAX_GROWTH_FACTOR)
        .saturating_add(MAX_GROWTH_SLACK)
}

fn too_long(step: &Normalizer, len: usize, limit: usize) -> TokforgeError {
    let step = format!("{step:?}");
    let step: String = step.chars().take(80).collect();
    TokforgeError::InvalidArgument(format!(
        "the tokenizer's normalizers would grow the text to {len} bytes, past the limit of \
         {limit} ({MAX_GROWTH_FACTOR} times its length plus {MAX_GROWTH_SLACK}), at {step}"
    ))
}

/// One normalizer step, applied to each stretch of text between added tokens.
#[derive(Debug)]
pub enum Normalizer {
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
    Lowercase,
    /// Strips Unicode whitespace on the chosen sides.
    Strip {
        left: bool,
        right: bool,
    },
    /// Prepends the string to a non-empty stretch.
    Prepend(String),
    /// Replaces every occurrence of a literal string.
    ReplaceStr {
        pattern: String,
        content: String,
    },
    /// Replaces every match of a regex (the replacement is literal).
    ReplaceMatches {
        pattern: Box<dyn Pretokenizer>,
        content: String,
    },
    /// A SentencePiece `precompiled_charsmap` (e.g. `nmt_nfkc`). `tokenizers` applies it per
    /// grapheme cluster (see [`Charsmap::normalize_like_hf`]); `sentencepiece` itself takes the
    /// longest rule at each position ([`Charsmap::normalize_like_sentencepiece`]). tokforge
    /// follows `tokenizers` for tokenizer.json files and `sentencepiece` for `.model` files.
    Precompiled {
        map: Charsmap,
        longest: bool,
    },
    /// Drops combining marks (`tokenizers`' StripAccents; meant to follow NFD/NFKD).
    StripAccents,
    /// Each byte of the text as its ByteLevel character (the model then reads those
    /// characters, as in `tokenizers`).
    ByteLevel,
    /// `tokenizers`' Nmt: drops some control characters and turns others, and a few
    /// invisible or separator characters, into spaces.
    Nmt,
}

impl Normalizer {
    /// The step applied to `s`; an error when the result would be longer than `limit` bytes
    /// (steps that multiply text are checked before their output is built).
    pub(crate) fn apply(&self, s: String, limit: usize) -> Result<String> {
        let before = match self {
            Normalizer::Prepend(p) if !s.is_empty() => p.len().saturating_add(s.len()),
            Normalizer::ReplaceStr { pattern, content } if !pattern.is_empty() => {
                let n = s.matches(pattern.as_str()).count();
                (s.len() - n * pattern.len()).saturating_add(n.saturating_mul(content.len()))
            }
            _ => 0,
        };
        if before > limit {
            return Err(too_long(self, before, limit));
        }
        let out = self.apply_unchecked(s, limit)?;
        if out.len() > limit {
            return Err(too_long(self, out.len(), limit));
        }
        Ok(out)
    }

    fn apply_unchecked(&self, s: String, limit: usize) -> Result<String> {
        Ok(match self {
            Normalizer::Nfc => s.nfc().collect(),
            Normalizer::Nfd => s.nfd().collect(),
            Normalizer::Nfkc => s.nfkc().collect(),
            Normalizer::Nfkd => s.nfkd().collect(),
            Normalizer::Lowercase => s.to_lowercase(),
            Normalizer::Strip { left, right } => {
                let t = if *left { s.trim_start() } else { &s[..] };
                let t = if *right { t.trim_end() } else { t };
                t.to_string()
            }
            Normalizer::Prepend(p) => {
                if s.is_empty() {
                    s
                } else {
                    let mut out = String::with_capacity(p.len() + s.len());
                    out.push_str(p);
                    out.push_str(&s);
                    out
                }
            }
            Normalizer::ReplaceStr { pattern, content } => {
                if pattern.is_empty() {
                    s
                } else {
                    s.replace(pattern.as_str(), content)
                }
            }
            Normalizer::Precompiled { map, longest } => {
                if *longest {
                    map.normalize_like_sentencepiece(&s)
                } else {
                    map.normalize_like_hf(&s)
                }
            }
            Normalizer::StripAccents => s
                .chars()
                .filter(|&c| !unicode_normalization::char::is_combining_mark(c))
                .collect(),
            Normalizer::ByteLevel => {
                let table = super::byte_level::byte_to_char();
                s.bytes().map(|b| table[b as usize]).collect()
            }
            Normalizer::Nmt => s
                .chars()
                .filter(
                    |&c| !matches!(c as u32, 0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0x8F | 0x9F),
                )
                .map(|c| match c as u32 {
                    0x09
                    | 0x0A
                    | 0x0C
                    | 0x0D
                    | 0x1680
                    | 0x200B..=0x200F
                    | 0x2028
                    | 0x2029
                    | 0x2581
                    | 0xFEFF
                    | 0xFFFD => ' ',
                    _ => c,
                })
                .collect(),
            Normalizer::ReplaceMatches { pattern, content } => {
                replace_matches(&s, pattern.as_ref(), content, limit)?
            }
        })
    }
}

/// `s` with every match of `p` replaced by `content`.
fn replace_matches(s: &str, p: &dyn Pretokenizer, content: &str, limit: usize) -> Result<String> {
    let mut ranges = Vec::new();
    p.split(s, &mut ranges)?;
    let matched: usize = ranges.iter().map(|r| r.len()).sum();
    let len = (s.len() - matched).saturating_add(ranges.len().saturating_mul(content.len()));
    if len > limit {
        return Err(TokforgeError::InvalidArgument(format!(
            "the tokenizer's normalizers would grow the text to {len} bytes, past the limit of \
             {limit} ({MAX_GROWTH_FACTOR} times its length plus {MAX_GROWTH_SLACK}), at a \
             Replace of a regex by {:?}",
            content.chars().take(40).collect::<String>()
        )));
    }
    let mut out = String::with_capacity(s.len());
    let mut prev = 0;
    for r in ranges {
        out.push_str(&s[prev..r.start]);
        out.push_str(content);
        prev = r.end;
    }
    out.push_str(&s[prev..]);
    Ok(out)
}
