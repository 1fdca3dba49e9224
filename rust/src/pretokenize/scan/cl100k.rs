//! cl100k_base's pattern, alternative by alternative:
//!
//! ```text
//! '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+ | ?[^\s\p{L}\p{N}]++[\r\n]*+
//!   | \s++$ | \s*[\r\n] | \s+(?!\S) | \s
//! ```
//!
//! 1. `'` and a contraction, case-insensitive under Unicode simple case folding (`'S`, `'Ll`,
//!    `'ſ` all count; see [`folds_to`]).
//! 2. A run of letters, optionally after one character that is not `\r`, `\n`, a letter or a
//!    number: a space, any other whitespace (tab, U+00A0, U+3000, ...), punctuation, a mark.
//!    The possessive `?+` changes nothing here: a prefix character is never a letter, so giving
//!    it back could not let the run start earlier.
//! 3. One to three numbers.
//! 4. An optional space, a run of punctuation (marks included), then any `\r`/`\n`.
//! 5. At whitespace: the whole run if it reaches the end of the text.
//! 6. `\s*[\r\n]`: the greedy `\s*` backs off to the last `\r`/`\n` of the run, so the piece
//!    ends right after the run's last newline (one piece for `"  \n\n \n"`).
//! 7. No newline in the run: the run minus its last character, when it has at least two.
//! 8. A lone whitespace character.

use std::ops::Range;

use super::block::split_blocks;
use super::classes::classes;
use super::classes::{folds_to, is_word_prefix, Classes, LETTER, NUM, PUNCT};
use super::{byte_run, ws_run};
use crate::error::Result;
use crate::pretokenize::{Pretokenizer, PretokenizerSpec};

preset_scanner!(
    /// Exact scanner for [`crate::pretokenize::CL100K_PATTERN`].
    ///
    /// ```
    /// use tokforge::pretokenize::Pretokenizer;
    /// let text = "Don'T  stop\n\n1234";
    /// let mut out = Vec::new();
    /// tokforge::pretokenize::scan::Cl100kScanner.split(text, &mut out).unwrap();
    /// let pieces: Vec<&str> = out.into_iter().map(|r| &text[r]).collect();
    /// assert_eq!(pieces, ["Don", "'T", " ", " stop", "\n\n", "123", "4"]);
    /// ```
    Cl100kScanner,
    "cl100k",
    |text, out| {
        let (cls, b) = (classes(), text.as_bytes());
        split_blocks::<false>(text, out, 3, |i| piece_end(cls, b, i));
    }
);

/// The end of `(?i:[sdmt]|ll|ve|re)` at `i`, or `None`.
#[inline(always)]
fn contraction(b: &[u8], i: usize) -> Option<usize> {
    for x in [b's', b'd', b'm', b't'] {
        let n = folds_to(b, i, x);
        if n != 0 {
            return Some(i + n);
        }
    }
    for [x, y] in [[b'l', b'l'], [b'v', b'e'], [b'r', b'e']] {
        let n = folds_to(b, i, x);
        if n != 0 {
            let m = folds_to(b, i + n, y);
            if m != 0 {
                return Some(i + n + m);
            }
        }
    }
    None
}

#[inline(always)]
fn piece_end(cls: &Classes, b: &[u8], i: usize) -> usize {
    family_piece_end::<true>(cls, b, i, 3)
}

/// Exact scanner for Llama 3's pattern ([`crate::pretokenize::LLAMA3_PATTERN`], `digits` 3)
/// and Qwen 2's ([`crate::pretokenize::QWEN2_PATTERN`], `digits` 1). Against cl100k, their
/// alternatives differ only where they could matter in two places, both in the whitespace
/// branch below: there is no `\s++$`, so a run at the end of the text that holds a newline ends
/// after its last newline (`\s*[\r\n]+`), and the rest is one more piece (`\s+(?!\S)` at
/// the end); and the last alternative is `\s+`, which is only ever reached on a lone
/// whitespace character before a non-space (a longer run is taken by `\s+(?!\S)`), as
/// cl100k's `\s`. Without possessive quantifiers nothing else changes: each backtracking
/// point gives back characters that no later part of its alternative can take.
#[derive(Debug, Clone, Copy)]
pub struct Llama3Scanner {
    digits: usize,
    pattern: &'static str,
}

impl Llama3Scanner {
    /// Llama 3's pattern (numbers in runs of up to three).
    pub const LLAMA3: Llama3Scanner = Llama3Scanner {
        digits: 3,
        pattern: crate::pretokenize::LLAMA3_PATTERN,
    };
    /// Qwen 2's pattern (one number per piece).
    pub const QWEN2: Llama3Scanner = Llama3Scanner {
        digits: 1,
        pattern: crate::pretokenize::QWEN2_PATTERN,
    };
}

impl Pretokenizer for Llama3Scanner {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> Result<()> {
        let digits = self.digits;
        let cls = classes();
        let b = text.as_bytes();
        split_blocks::<false>(text, out, digits as u32, |i| {
            family_piece_end::<false>(cls, b, i, digits)
        });
        Ok(())
    }

    fn spec(&self) -> PretokenizerSpec {
        PretokenizerSpec::Regex {
            pattern: self.pattern.to_string(),
            preset: None,
        }
    }
}

/// The piece at `i` for cl100k (`END_RUN`: with `\s++$`) and the Llama 3 family (without).
#[inline(always)]
fn family_piece_end<const END_RUN: bool>(
    cls: &Classes,
    b: &[u8],
    i: usize,
    digits: usize,
) -> usize {
    let c = b[i];
    if c == b'\'' {
        if let Some(e) = contraction(b, i + 1) {
            return e;
        }
    }
    let (kind, len) = cls.at(b, i);
    if kind & LETTER != 0 {
        return cls.run(b, i + len, LETTER);
    }
    if is_word_prefix(kind) && cls.kind(b, i + len) & LETTER != 0 {
        return cls.run(b, i + len, LETTER);
    }
    if kind & NUM != 0 {
        return cls.run_max(b, i, NUM, digits);
    }
    let (start, skind) = if c == b' ' {
        (i + 1, cls.kind(b, i + 1))
    } else {
        (i, kind)
    };
    if skind & PUNCT != 0 {
        let e = cls.run(b, start, PUNCT);
        return byte_run(b, e, b"\r\n");
    }
    // The character at `i` is whitespace.
    let run = ws_run(cls, b, i);
    if END_RUN && run.end == b.len() {
        run.end
    } else if let Some(nl) = run.last_nl {
        nl + 1
    } else if run.end == b.len() {
        // `\s+(?!\S)` at the end of the text (only reached without `\s++$`).
        run.end
    } else if run.last > i {
        run.last
    } else {
        run.end
    }
}
