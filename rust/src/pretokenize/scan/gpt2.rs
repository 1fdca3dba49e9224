//! GPT-2's pattern (also r50k_base, p50k_base), alternative by alternative:
//!
//! ```text
//! '(?:[sdmt]|ll|ve|re) | ?\p{L}++ | ?\p{N}++ | ?[^\s\p{L}\p{N}]++ | \s++$ | \s+(?!\S) | \s
//! ```
//!
//! 1. `'` followed by `s d m t` or `ll ve re`, case-sensitive.
//! 2. (and 3., 4.) An optional space, then a run of letters, of numbers, or of "punctuation"
//!    (not space, letter or number: marks, symbols, `'`, ...). The space is taken only when the
//!    run follows it; a space itself is in none of the three classes, so without it these fail
//!    at a space.
//! 5. At whitespace: the whole run if it reaches the end of the text.
//! 6. Otherwise `\s+` backs off one character so that `(?!\S)` sees whitespace: the run minus
//!    its last character, when the run has at least two.
//! 7. A lone whitespace character. (A space before a letter, number or punctuation was already
//!    taken by 2.–4.; any other single whitespace character before such a character ends here.)

use super::classes::{Classes, LETTER, NUM, PUNCT};
use super::{split_with, ws_run};

preset_scanner!(
    /// Exact scanner for [`crate::pretokenize::GPT2_PATTERN`].
    ///
    /// ```
    /// use tokforge::pretokenize::Pretokenizer;
    /// let mut out = Vec::new();
    /// tokforge::pretokenize::scan::Gpt2Scanner.split("I'm  here!!\n", &mut out).unwrap();
    /// assert_eq!(out, [0..1, 1..3, 3..4, 4..9, 9..11, 11..12]); // I 'm ␠ ␠here !! \n
    /// ```
    Gpt2Scanner,
    "gpt2",
    |text, out| split_with(text, out, piece_end)
);

#[inline(always)]
fn piece_end(cls: &Classes, b: &[u8], i: usize) -> usize {
    let c = b[i];
    if c == b'\'' {
        if matches!(b.get(i + 1), Some(b's' | b'd' | b'm' | b't')) {
            return i + 2;
        }
        if matches!(b.get(i + 1..i + 3), Some(b"ll" | b"ve" | b"re")) {
            return i + 3;
        }
    }
    let (start, kind) = if c == b' ' {
        (i + 1, cls.kind(b, i + 1))
    } else {
        (i, cls.at(b, i).0)
    };
    if kind & LETTER != 0 {
        return cls.run(b, start, LETTER);
    }
    if kind & NUM != 0 {
        return cls.run(b, start, NUM);
    }
    if kind & PUNCT != 0 {
        return cls.run(b, start, PUNCT);
    }
    // The character at `i` is whitespace.
    let run = ws_run(cls, b, i);
    if run.end == b.len() {
        run.end
    } else if run.last > i {
        run.last
    } else {
        run.end
    }
}
