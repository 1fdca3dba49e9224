//! Hand-written scanners for the preset patterns: the same pieces as the regex, without a regex.
//!
//! Each preset's pattern is an alternation tried leftmost-first at the current position (the
//! first alternative that matches wins, not the longest), so a scanner is a function from a start
//! position to the end of the piece that starts there, written as the alternatives in order;
//! `split_with` calls it until the text is used up. Every alternative of the presets is a run
//! of one class, optionally preceded by one character, and the backtracking the regex does inside
//! it has a closed form (`\s+(?!\S)` backs off exactly one character, `\s*[\r\n]` ends after the
//! last newline of the run, o200k's `U*W+` ends at the last character in both classes, ...); the
//! per-preset files spell out each case. Classes come from `classes.rs`, which agrees with the
//! `regex` crate on every code point.
//!
//! No recursion and no backtracking stack: a piece costs a bounded number of passes over the
//! characters it covers plus the run right after it, so a split is linear in the text, including
//! the inputs that break the regex (`"x" + " " * 1_000_000 + "y"` overflows fancy-regex's
//! backtracking stack and tiktoken's, and splits here in about a millisecond).
//!
//! The scanners are wired in by [`crate::pretokenize::PretokenizerSpec::build`] for exactly the
//! three preset pattern strings; any other regex still goes to fancy-regex. Their `spec()` is the
//! one the regex pretokenizer reports for the same pattern, so files and pickles do not change.
//!
//! # Exactness
//!
//! The tests in `scan/tests.rs` hold each scanner against [`crate::pretokenize::RegexPretokenizer`] (fancy-regex,
//! tiktoken's engine) on every shared corpus, on thousands of pseudo-random strings over an
//! alphabet of the hard cases (every kind of whitespace and `\r\n` mix, contractions in every case
//! and with `ſ`, letters of each category, marks, numbers of several scripts, `Ⅻ Ⓐ ① ½ ²`,
//! emoji, CJK, `/`), and on the worst cases; `tests/test_scan.py` does the same from Python
//! against the `regex` module with hypothesis.
//!
//! # Speed
//!
//! The scalar scanner splits the shared corpora 10-25x faster than fancy-regex (350-560 MB/s
//! against 18-62), and the bit-mask windows of `block.rs` (64 bytes of ASCII classified at once,
//! the pattern's rules as shifts and ANDs) double that again on ASCII text for the cl100k family
//! and o200k. Non-ASCII code points are classified through a two-level table, not a binary
//! search over ranges (three to four times faster on other scripts). The measurements are in
//! `docs/performance.md`; `cargo test --release --lib split_throughput -- --ignored
//! --nocapture` reproduces them.

/// Declares a preset's exact scanner: a unit struct whose `split` runs the body given as
/// `|text, out| body` and whose `spec` is the preset's, as the regex pretokenizer reports it for
/// the same pattern.
macro_rules! preset_scanner {
    ($(#[$doc:meta])* $name:ident, $preset:literal, |$text:ident, $out:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl $crate::pretokenize::Pretokenizer for $name {
            fn split(
                &self,
                $text: &str,
                $out: &mut Vec<std::ops::Range<usize>>,
            ) -> $crate::error::Result<()> {
                $body;
                Ok(())
            }

            fn spec(&self) -> $crate::pretokenize::PretokenizerSpec {
                $crate::pretokenize::PretokenizerSpec::from_name($preset).expect("a preset")
            }
        }
    };
}

mod block;
mod cl100k;
mod classes;
mod gpt2;
mod o200k;
mod tables;

use std::ops::Range;

pub use cl100k::{Cl100kScanner, Llama3Scanner};
pub use gpt2::Gpt2Scanner;
pub use o200k::O200kScanner;

use crate::pretokenize::{
    Pretokenizer, PretokenizerSpec, CL100K_PATTERN, GPT2_PATTERN, LLAMA3_PATTERN, O200K_PATTERN,
    QWEN2_PATTERN,
};
use classes::{classes, Classes, NL, WS};

/// cl100k's pattern as `tokforge.interop.hf_export.to_oniguruma` writes it into tokenizer.json
/// (`{1,3}+` as an atomic group, `$` as `\z`): the same pieces under fancy-regex too, so the
/// cl100k scanner serves it (the scan tests hold it against fancy-regex running this string).
pub const CL100K_HF_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|(?>\p{N}{1,3})| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++\z|\s*[\r\n]|\s+(?!\S)|\s";

/// GPT-2's pattern as written into tokenizer.json (`$` as `\z`).
pub const GPT2_HF_PATTERN: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++\z|\s+(?!\S)|\s";

/// A scanner serving a pattern string other than the one it is named for, and saying so.
#[derive(Debug)]
struct Aliased {
    inner: Box<dyn Pretokenizer>,
    pattern: &'static str,
}

impl Pretokenizer for Aliased {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> crate::Result<()> {
        self.inner.split(text, out)
    }

    fn spec(&self) -> PretokenizerSpec {
        PretokenizerSpec::Regex {
            pattern: self.pattern.to_string(),
            preset: None,
        }
    }
}

/// The scanner for a pattern string that one implements exactly (the three presets, Llama 3's
/// and Qwen 2's patterns, and the presets as written into tokenizer.json files), or `None`.
pub fn for_pattern(pattern: &str) -> Option<Box<dyn Pretokenizer>> {
    match pattern {
        GPT2_PATTERN => Some(Box::new(Gpt2Scanner)),
        CL100K_PATTERN => Some(Box::new(Cl100kScanner)),
        O200K_PATTERN => Some(Box::new(O200kScanner)),
        LLAMA3_PATTERN => Some(Box::new(Llama3Scanner::LLAMA3)),
        QWEN2_PATTERN => Some(Box::new(Llama3Scanner::QWEN2)),
        CL100K_HF_PATTERN => Some(Box::new(Aliased {
            inner: Box::new(Cl100kScanner),
            pattern: CL100K_HF_PATTERN,
        })),
        GPT2_HF_PATTERN => Some(Box::new(Aliased {
            inner: Box::new(Gpt2Scanner),
            pattern: GPT2_HF_PATTERN,
        })),
        _ => None,
    }
}

/// Appends the pieces of `text` to `out`: `piece_end(classes, bytes, i)` gives the end of the
/// piece that starts at `i` (always past `i`).
#[inline(always)]
fn split_with(
    text: &str,
    out: &mut Vec<Range<usize>>,
    piece_end: impl Fn(&Classes, &[u8], usize) -> usize,
) {
    let b = text.as_bytes();
    let cls = classes();
    let mut i = 0;
    while i < b.len() {
        let e = piece_end(cls, b, i);
        debug_assert!(e > i && text.is_char_boundary(e));
        out.push(i..e);
        i = e;
    }
}

/// A maximal run of whitespace.
struct WsRun {
    /// Where the run ends (the first non-whitespace character, or the end of the text).
    end: usize,
    /// Where its last character starts.
    last: usize,
    /// Where its last `\r` or `\n` is, if any.
    last_nl: Option<usize>,
}

/// The whitespace run starting at `i` (the character at `i` is whitespace).
#[inline(always)]
fn ws_run(cls: &Classes, b: &[u8], i: usize) -> WsRun {
    let mut run = WsRun {
        end: i,
        last: i,
        last_nl: None,
    };
    while run.end < b.len() {
        let (kind, len) = cls.at(b, run.end);
        if kind & WS == 0 {
            break;
        }
        if kind & NL != 0 {
            run.last_nl = Some(run.end);
        }
        run.last = run.end;
        run.end += len;
    }
    run
}

/// The end of the longest run of the ASCII bytes `set` from `i` (`[\r\n]*`, `[\r\n/]*`).
#[inline(always)]
fn byte_run(b: &[u8], mut i: usize, set: &[u8]) -> usize {
    while i < b.len() && set.contains(&b[i]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests;
