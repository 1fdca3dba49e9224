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
//! # Speed (what was tried and measured)
//!
//! Split throughput on one thread, whole 4 MB shared corpora, best of 3 (regex) and 7 (scanner)
//! runs, from the `--release` test binary: `cargo test --release --lib split_throughput --
//! --ignored --nocapture`. 2-core dev machine with other builds running, so figures move by
//! ±20% between runs; the ratios hold. Before = fancy-regex (`RegexPretokenizer`), after = scanner:
//!
//! | MB/s      | gpt2 before | after | cl100k before | after | o200k before | after |
//! |-----------|------------:|------:|--------------:|------:|-------------:|------:|
//! | code_py   |        20.7 |   453 |          17.6 |   390 |         30.8 |   346 |
//! | en_docs   |        25.4 |   399 |          23.2 |   352 |         41.3 |   339 |
//! | man_de    |        24.9 |   443 |          24.7 |   403 |         41.4 |   354 |
//! | man_ja    |        34.3 |   565 |          39.1 |   561 |         62.2 |   325 |
//! | man_ru    |        22.3 |   491 |          32.1 |   489 |         53.0 |   433 |
//! | man_zh_CN |        24.5 |   502 |          26.8 |   490 |         46.8 |   425 |
//!
//! The 1 MB worst cases split at 200 (o200k on random mixed-case letters: a piece every few
//! characters) to 2,400 MB/s (one million `a`); `"x" + 1 MB of spaces + "y"` at about
//! 1,000 MB/s, where fancy-regex stops with "Max stack size exceeded for backtracking".
//! Encoding (`benches/encode_bench.py`) is now bound by BPE, not by the split.
//!
//! Then the cl100k family and o200k got bit-mask windows (`block.rs`): 64 bytes of ASCII (and
//! Latin-1 letters) classified with SSE2 compares, every rule of the pattern as shifts and
//! ANDs, the boundaries as the set bits of one word; the scalar scanner above takes over at
//! any other non-ASCII character and where a window cannot decide. The scalar scanner had been
//! losing most of its time to mispredicted branches: en_docs split at 339 MB/s in a probe,
//! and at 880 when one 4 KB document was split over and over, so the predictor knew every
//! branch. Same command, run back to back on the commit before the windows (18582bd, in a
//! worktree) and after them; gpt2 keeps the scalar scanner (294-548 MB/s):
//!
//! | MB/s      | cl100k before | after | o200k before | after |
//! |-----------|--------------:|------:|-------------:|------:|
//! | code_py   |           401 |  1019 |          346 |   911 |
//! | en_docs   |           370 |  1018 |          338 |   914 |
//! | man_de    |           425 |   849 |          348 |   756 |
//! | man_ja    |           574 |   579 |          470 |   494 |
//! | man_ru    |           504 |   544 |          436 |   476 |
//! | man_zh_CN |           517 |   550 |          422 |   473 |
//!
//! The worst cases split at 159 MB/s (o200k on random mixed-case letters) to 2,461 MB/s.
//!
//! Tried: looking non-ASCII code points up by binary search over the ~2,400 generated ranges
//! instead of the two-level table. ASCII text barely changed (the 128-entry table serves it
//! either way), but other scripts fell to between a quarter and a third: man_ru 121/123/113 MB/s (gpt2/cl100k/o200k)
//! against 506/503/428 with the table, man_ja 126/157/139 against 383/567/460, man_zh_CN
//! 181/191/113 against 504/514/419 (same machine, back to back). Kept: the two-level table,
//! 47 KB, built in about 1 ms on first use.

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
