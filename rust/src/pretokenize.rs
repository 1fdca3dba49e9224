//! Pretokenizers: the first stage of the pipeline, which cuts text into pieces that BPE then
//! encodes independently. A piece never spans two pieces' tokens, so the split decides which
//! merges are possible at all (a leading space stays with its word, digits come in groups, ...).
//!
//! Every implementation is a [`Pretokenizer`]: it reports byte ranges of the input, in order.
//! The presets `gpt2`, `cl100k` and `o200k` are the exact patterns tiktoken uses; any other
//! regex (with lookahead and possessive quantifiers, through `fancy-regex`) is accepted too.

use std::ops::Range;

use crate::error::{Result, TokforgeError};

/// GPT-2 / r50k_base / p50k_base split pattern, as tiktoken writes it.
pub const GPT2_PATTERN: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";

/// cl100k_base split pattern, as tiktoken writes it.
pub const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

/// o200k_base split pattern: tiktoken's seven alternatives joined with `|`.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"\p{N}{1,3}",
    "|",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    "|",
    r"\s*[\r\n]+",
    "|",
    r"\s+(?!\S)",
    "|",
    r"\s+",
);

/// Llama 3's split pattern (its tokenizer.json `Split`): cl100k's alternatives without
/// possessive quantifiers and without `\s++$`; a hand-written scanner runs it exactly.
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen 2's split pattern: Llama 3's with one digit per piece; scanned by hand too.
pub const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Returns the regex of a named preset (`gpt2`, `r50k_base`, `p50k_base`, `cl100k`,
/// `cl100k_base`, `o200k`, `o200k_base`), or `None` for an unknown name.
pub fn preset_pattern(name: &str) -> Option<&'static str> {
    match name {
        "gpt2" | "r50k" | "r50k_base" | "p50k" | "p50k_base" | "p50k_edit" => Some(GPT2_PATTERN),
        "cl100k" | "cl100k_base" => Some(CL100K_PATTERN),
        "o200k" | "o200k_base" | "o200k_harmony" => Some(O200K_PATTERN),
        _ => None,
    }
}

/// What a pretokenizer is, in a form that can be saved to a file and built again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PretokenizerSpec {
    /// A regex (a preset's or the user's); `preset` keeps the preset's name when there is one.
    Regex {
        pattern: String,
        preset: Option<String>,
    },
    /// Runs of whitespace and runs of everything else, alternating; nothing is dropped.
    Whitespace,
    /// The whole text is one piece.
    None,
    /// A Python callable; it cannot be saved in a file, only pickled alongside.
    Callable,
}

impl PretokenizerSpec {
    /// The spec for a name: a preset, `whitespace` or `none`; anything else is an error.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "whitespace" => Ok(PretokenizerSpec::Whitespace),
            "none" => Ok(PretokenizerSpec::None),
            _ => match preset_pattern(name) {
                Some(p) => Ok(PretokenizerSpec::Regex {
                    pattern: p.to_string(),
                    preset: Some(canonical_preset(name).to_string()),
                }),
                None => Err(TokforgeError::UnknownPreset(name.to_string())),
            },
        }
    }

    /// The regex, when this is a regex pretokenizer.
    pub fn pattern(&self) -> Option<&str> {
        match self {
            PretokenizerSpec::Regex { pattern, .. } => Some(pattern),
            _ => None,
        }
    }

    /// Builds the pretokenizer this spec describes. `Callable` cannot be built here: the Python
    /// bindings supply their own implementation.
    pub fn build(&self) -> Result<Box<dyn Pretokenizer>> {
        match self {
            PretokenizerSpec::Regex { pattern, .. } => match crate::scan::for_pattern(pattern) {
                // The presets' exact patterns get a hand-written scanner: same pieces, several
                // times faster, no backtracking stack (see `scan`). Other regexes: fancy-regex.
                Some(scanner) => Ok(scanner),
                None => Ok(Box::new(RegexPretokenizer::new(pattern)?)),
            },
            PretokenizerSpec::Whitespace => Ok(Box::new(WhitespacePretokenizer)),
            PretokenizerSpec::None => Ok(Box::new(NoPretokenizer)),
            PretokenizerSpec::Callable => Err(TokforgeError::InvalidArgument(
                "a callable pretokenizer can only be supplied from Python".into(),
            )),
        }
    }
}

fn canonical_preset(name: &str) -> &'static str {
    match preset_pattern(name) {
        Some(GPT2_PATTERN) => "gpt2",
        Some(CL100K_PATTERN) => "cl100k",
        _ => "o200k",
    }
}

/// Cuts text into pieces. Implementations are immutable and shared across threads.
pub trait Pretokenizer: Send + Sync + std::fmt::Debug {
    /// Appends the byte ranges of the pieces of `text` to `out`, in order and without overlap.
    /// Every range starts and ends on a character boundary.
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> Result<()>;

    /// How to build this pretokenizer again.
    fn spec(&self) -> PretokenizerSpec;
}

/// A regex pretokenizer: the pieces are the regex's successive leftmost matches, and text
/// between matches is dropped (the presets match every character, so they drop nothing).
#[derive(Debug)]
pub struct RegexPretokenizer {
    pattern: String,
    regex: fancy_regex::Regex,
}

impl RegexPretokenizer {
    /// Compiles `pattern` (fancy-regex syntax: `\p{..}`, lookaround, possessive quantifiers).
    pub fn new(pattern: &str) -> Result<Self> {
        let regex = fancy_regex::RegexBuilder::new(pattern)
            // A pathological user pattern must end in a clear error, not hang: fancy-regex counts
            // backtracking steps and fails past this limit. The presets stay far below it.
            .backtrack_limit(10_000_000)
            .build()
            .map_err(|e| TokforgeError::InvalidPattern {
                pattern: pattern.to_string(),
                reason: e.to_string(),
            })?;
        Ok(RegexPretokenizer {
            pattern: pattern.to_string(),
            regex,
        })
    }

    /// The regex source.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

impl Pretokenizer for RegexPretokenizer {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> Result<()> {
        for m in self.regex.find_iter(text) {
            let m = m.map_err(|e| TokforgeError::RegexRuntime(e.to_string()))?;
            // An empty match carries no text and would become an empty piece: skip it, as
            // tiktoken's BPE of an empty piece yields nothing either.
            if m.start() < m.end() {
                out.push(m.start()..m.end());
            }
        }
        Ok(())
    }

    fn spec(&self) -> PretokenizerSpec {
        let preset = [
            ("gpt2", GPT2_PATTERN),
            ("cl100k", CL100K_PATTERN),
            ("o200k", O200K_PATTERN),
        ]
        .iter()
        .find(|(_, p)| *p == self.pattern)
        .map(|(n, _)| n.to_string());
        PretokenizerSpec::Regex {
            pattern: self.pattern.clone(),
            preset,
        }
    }
}

/// Alternating runs of whitespace and of non-whitespace characters (Unicode `White_Space`).
/// Lossless: the pieces concatenate to the input. `"low  lower"` -> `low`, `  `, `lower`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhitespacePretokenizer;

impl Pretokenizer for WhitespacePretokenizer {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> Result<()> {
        let mut start = 0;
        let mut in_space: Option<bool> = None;
        for (i, c) in text.char_indices() {
            let sp = c.is_whitespace();
            match in_space {
                Some(prev) if prev != sp => {
                    out.push(start..i);
                    start = i;
                }
                _ => {}
            }
            in_space = Some(sp);
        }
        if start < text.len() {
            out.push(start..text.len());
        }
        Ok(())
    }

    fn spec(&self) -> PretokenizerSpec {
        PretokenizerSpec::Whitespace
    }
}

/// No split: the whole text is one piece (BPE over the entire input).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPretokenizer;

impl Pretokenizer for NoPretokenizer {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> Result<()> {
        if !text.is_empty() {
            out.push(0..text.len());
        }
        Ok(())
    }

    fn spec(&self) -> PretokenizerSpec {
        PretokenizerSpec::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces<'a>(p: &dyn Pretokenizer, text: &'a str) -> Vec<&'a str> {
        let mut out = Vec::new();
        p.split(text, &mut out).unwrap();
        out.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn presets_compile_and_split_known_examples() {
        let cl = PretokenizerSpec::from_name("cl100k")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            pieces(&*cl, "Hello world 12345!"),
            ["Hello", " world", " ", "123", "45", "!"]
        );
        assert_eq!(
            pieces(&*cl, "don't  stop\n\n"),
            ["don", "'t", " ", " stop", "\n\n"]
        );
        let gpt2 = PretokenizerSpec::from_name("gpt2")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            pieces(&*gpt2, "Hello world 12345!"),
            ["Hello", " world", " 12345", "!"]
        );
        let o200k = PretokenizerSpec::from_name("o200k")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            pieces(&*o200k, "HelloWorld I'M"),
            ["Hello", "World", " I'M"]
        );
    }

    #[test]
    fn whitespace_is_lossless() {
        let text = "low  lower\tlowest\n lowly ";
        let got = pieces(&WhitespacePretokenizer, text);
        assert_eq!(
            got,
            ["low", "  ", "lower", "\t", "lowest", "\n ", "lowly", " "]
        );
        assert_eq!(got.concat(), text);
    }

    #[test]
    fn none_is_one_piece() {
        assert_eq!(pieces(&NoPretokenizer, "a b c"), ["a b c"]);
        assert!(pieces(&NoPretokenizer, "").is_empty());
    }

    #[test]
    fn bad_pattern_and_preset_are_errors() {
        assert!(matches!(
            RegexPretokenizer::new("(unclosed"),
            Err(TokforgeError::InvalidPattern { .. })
        ));
        assert!(matches!(
            PretokenizerSpec::from_name("nope"),
            Err(TokforgeError::UnknownPreset(_))
        ));
    }

    #[test]
    fn spec_remembers_preset() {
        let p = RegexPretokenizer::new(CL100K_PATTERN).unwrap();
        assert_eq!(
            p.spec(),
            PretokenizerSpec::from_name("cl100k_base").unwrap()
        );
    }
}
