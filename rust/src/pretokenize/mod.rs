//! Pretokenizers: the first stage of the pipeline, which cuts text into pieces that BPE then
//! encodes independently. A piece never spans two pieces' tokens, so the split decides which
//! merges are possible at all (a leading space stays with its word, digits come in groups, ...).
//!
//! Every implementation is a [`Pretokenizer`]: it reports byte ranges of the input, in order.
//! The presets `gpt2`, `cl100k` and `o200k` are the exact patterns tiktoken uses; any other
//! regex (with lookahead and possessive quantifiers, through `fancy-regex`) is accepted too.

mod patterns;
mod regex;
pub mod scan;
mod simple;

use std::ops::Range;

use crate::error::{Result, TokforgeError};

pub use patterns::{
    preset_pattern, CL100K_PATTERN, GPT2_PATTERN, LLAMA3_PATTERN, O200K_PATTERN, QWEN2_PATTERN,
};
pub use regex::RegexPretokenizer;
pub use simple::{NoPretokenizer, WhitespacePretokenizer};

use patterns::canonical_preset;

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
            PretokenizerSpec::Regex { pattern, .. } => compile_pattern(pattern),
            PretokenizerSpec::Whitespace => Ok(Box::new(WhitespacePretokenizer)),
            PretokenizerSpec::None => Ok(Box::new(NoPretokenizer)),
            PretokenizerSpec::Callable => Err(TokforgeError::InvalidArgument(
                "a callable pretokenizer can only be supplied from Python".into(),
            )),
        }
    }
}

/// A regex as a pretokenizer. The presets' exact patterns (and Llama 3's and Qwen 2's) get a
/// hand-written scanner: same pieces, several times faster, no backtracking stack (see
/// [`scan`]). Other regexes: fancy-regex.
pub fn compile_pattern(pattern: &str) -> Result<Box<dyn Pretokenizer>> {
    match scan::for_pattern(pattern) {
        Some(scanner) => Ok(scanner),
        None => Ok(Box::new(RegexPretokenizer::new(pattern)?)),
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
