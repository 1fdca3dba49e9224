//! Normalizers: the first stage of a tokenizer.json pipeline, applied to each stretch of text
//! between added tokens.

use unicode_normalization::UnicodeNormalization;

use super::charsmap::Charsmap;
use crate::error::Result;
use crate::pretokenize::Pretokenizer;

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
}

impl Normalizer {
    pub(crate) fn apply(&self, s: String) -> Result<String> {
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
            Normalizer::ReplaceMatches { pattern, content } => {
                replace_matches(&s, pattern.as_ref(), content)?
            }
        })
    }
}

/// `s` with every match of `p` replaced by `content`.
fn replace_matches(s: &str, p: &dyn Pretokenizer, content: &str) -> Result<String> {
    let mut ranges = Vec::new();
    p.split(s, &mut ranges)?;
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
