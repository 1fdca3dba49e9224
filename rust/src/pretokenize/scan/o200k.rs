//! o200k_base's pattern, alternative by alternative. With `U` = `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`,
//! `W` = `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`, `P` = `[^\r\n\p{L}\p{N}]` and `C` the optional
//! case-insensitive contraction `(?i:'s|'t|'re|'ve|'m|'ll|'d)?`:
//!
//! ```text
//! A  P?U*W+C      B  P?U+W*C      C  \p{N}{1,3}      D   ?[^\s\p{L}\p{N}]+[\r\n/]*
//! E  \s*[\r\n]+   F  \s+(?!\S)    G  \s+
//! ```
//!
//! None of the quantifiers is possessive, so the backtracking order decides:
//!
//! - A and B are each tried first with the prefix (when the character is in `P`), then without.
//!   Without it matters only for a mark: marks are in `P` *and* in `U` and `W`.
//! - `U*W+` from `s`: `U*` takes the longest `U` run; if a `W` character follows (necessarily
//!   `Ll`, since it is not in `U`), `W+` takes the longest `W` run from there. Otherwise `U*`
//!   gives characters back until `W+` can match one: the match ends right after the last
//!   character of the run that is in both classes (`Lm`, `Lo`, `M`), and fails if there is none
//!   (an all-caps word: `HELLO` goes to B).
//! - `U+W*`: the longest `U` run (at least one), then the longest `W` run.
//! - The contraction is optional and last, so it is taken whenever it is there. `'ſ` counts.
//! - E ends right after the last `\r`/`\n` of the whitespace run (there is no `\s++$` here: the
//!   rest of a run that ends the text becomes its own piece through F).
//! - F: the whole run at the end of the text, else the run minus its last character when it has
//!   two or more; G: a lone whitespace character.

use super::block::split_blocks;
use super::classes::classes;
use super::classes::{folds_to, is_word_prefix, Classes, NUM, O_BOTH, O_LOWER, O_UPPER, PUNCT};
use super::{byte_run, ws_run};

preset_scanner!(
    /// Exact scanner for [`crate::pretokenize::O200K_PATTERN`].
    ///
    /// ```
    /// use tokforge::pretokenize::Pretokenizer;
    /// let text = "HelloWorld I'M ABCdef 12345 \n\n x";
    /// let mut out = Vec::new();
    /// tokforge::pretokenize::scan::O200kScanner.split(text, &mut out).unwrap();
    /// let pieces: Vec<&str> = out.into_iter().map(|r| &text[r]).collect();
    /// assert_eq!(
    ///     pieces,
    ///     ["Hello", "World", " I'M", " ABCdef", " ", "123", "45", " \n\n", " x"]
    /// );
    /// ```
    O200kScanner,
    "o200k",
    |text, out| {
        let (cls, b) = (classes(), text.as_bytes());
        split_blocks::<true>(text, out, 3, |i| piece_end(cls, b, i));
    }
);

/// `U*W+` from `s`: its end, or `None`.
#[inline(always)]
fn lower_word(cls: &Classes, b: &[u8], s: usize) -> Option<usize> {
    let mut j = s;
    let mut after_both = None;
    while j < b.len() {
        let (kind, len) = cls.at(b, j);
        if kind & O_UPPER == 0 {
            if kind & O_LOWER != 0 {
                return Some(cls.run(b, j + len, O_LOWER));
            }
            break;
        }
        j += len;
        if kind & O_BOTH != 0 {
            after_both = Some(j);
        }
    }
    after_both
}

/// `U+W*` from `s`: its end, or `None`.
#[inline(always)]
fn upper_word(cls: &Classes, b: &[u8], s: usize) -> Option<usize> {
    if cls.kind(b, s) & O_UPPER == 0 {
        return None;
    }
    let j = cls.run(b, s, O_UPPER);
    Some(cls.run(b, j, O_LOWER))
}

/// `e` extended by `(?i:'s|'t|'re|'ve|'m|'ll|'d)?`.
#[inline(always)]
fn with_contraction(b: &[u8], e: usize) -> usize {
    if b.get(e) != Some(&b'\'') {
        return e;
    }
    let i = e + 1;
    for x in [b's', b't'] {
        let n = folds_to(b, i, x);
        if n != 0 {
            return i + n;
        }
    }
    for [x, y] in [[b'r', b'e'], [b'v', b'e']] {
        if let Some(end) = pair(b, i, x, y) {
            return end;
        }
    }
    let n = folds_to(b, i, b'm');
    if n != 0 {
        return i + n;
    }
    if let Some(end) = pair(b, i, b'l', b'l') {
        return end;
    }
    let n = folds_to(b, i, b'd');
    if n != 0 {
        return i + n;
    }
    e
}

/// The end of `(?i:xy)` at `i`, or `None`.
#[inline(always)]
fn pair(b: &[u8], i: usize, x: u8, y: u8) -> Option<usize> {
    let n = folds_to(b, i, x);
    if n == 0 {
        return None;
    }
    let m = folds_to(b, i + n, y);
    (m != 0).then_some(i + n + m)
}

#[inline(always)]
fn piece_end(cls: &Classes, b: &[u8], i: usize) -> usize {
    let c = b[i];
    let (kind, len) = cls.at(b, i);
    let prefix = is_word_prefix(kind);
    let letterish = kind & (O_UPPER | O_LOWER) != 0;
    // A, with then without the prefix.
    if prefix {
        if let Some(e) = lower_word(cls, b, i + len) {
            return with_contraction(b, e);
        }
    }
    if letterish {
        if let Some(e) = lower_word(cls, b, i) {
            return with_contraction(b, e);
        }
    }
    // B, with then without the prefix.
    if prefix {
        if let Some(e) = upper_word(cls, b, i + len) {
            return with_contraction(b, e);
        }
    }
    if letterish {
        if let Some(e) = upper_word(cls, b, i) {
            return with_contraction(b, e);
        }
    }
    // C
    if kind & NUM != 0 {
        return cls.run_max(b, i, NUM, 3);
    }
    // D
    let (start, skind) = if c == b' ' {
        (i + 1, cls.kind(b, i + 1))
    } else {
        (i, kind)
    };
    if skind & PUNCT != 0 {
        let e = cls.run(b, start, PUNCT);
        return byte_run(b, e, b"\r\n/");
    }
    // E, F, G: the character at `i` is whitespace.
    let run = ws_run(cls, b, i);
    if let Some(nl) = run.last_nl {
        nl + 1
    } else if run.end == b.len() || run.last == i {
        run.end
    } else {
        run.last
    }
}
