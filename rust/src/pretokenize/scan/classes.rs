//! The Unicode classes the preset patterns use, as the `regex` crate (the engine behind
//! `fancy-regex`, and so behind tiktoken) defines them: one *kind* per code point.
//!
//! The patterns only ever ask about `\s`, `\p{L}` (and, for o200k, its parts `\p{Lu}` `\p{Lt}`
//! `\p{Ll}` `\p{Lm}` `\p{Lo}`), `\p{M}`, `\p{N}` and a few ASCII characters. These classes are
//! disjoint (no White_Space character is a letter, mark or number; general categories do not
//! overlap), so every code point has exactly one kind below, and each class of a pattern is a
//! union of kinds: a bit mask.
//!
//! The kinds come from the generated range list in `tables.rs`; the test `tables_are_current`
//! regenerates that list from `regex::Regex` over all 1,114,112 code points and fails if the
//! file differs (run it with `TOKFORGE_REGEN_TABLES=1` to rewrite the file after a `regex`
//! upgrade), and `lookup_agrees_with_regex_on_every_code_point` checks the lookup below against
//! the same classification, including the composite classes as the patterns spell them.
//!
//! Lookup: ASCII through a 128-entry table; everything else through a two-level table (the code
//! point shifted right by 7 picks a 128-entry block, identical blocks shared), built once from
//! the ranges on first use (measured: 46,848 bytes, 1.1 ms). A binary search over the
//! ranges instead was 3-4 times slower on Cyrillic, Japanese and Chinese text (see `scan`).

use std::sync::OnceLock;

use super::tables::RANGES;

/// `\s`: Unicode White_Space (`\t \n \x0B \x0C \r`, space, U+0085, U+00A0, U+1680, U+2000..200A,
/// U+2028, U+2029, U+202F, U+205F, U+3000).
pub(crate) const WS: u8 = 1;
/// Set, together with [`WS`], on `\r` and `\n` only: the `[\r\n]` of the patterns.
pub(crate) const NL: u8 = 2;
/// `\p{Lu}` or `\p{Lt}`.
pub(crate) const UP: u8 = 4;
/// `\p{Ll}`.
pub(crate) const LOW: u8 = 8;
/// `\p{Lm}` or `\p{Lo}` (CJK ideographs, kana, ...): counts as upper *and* lower for o200k.
pub(crate) const LMO: u8 = 16;
/// `\p{M}`: not a letter, but in both of o200k's letter classes.
pub(crate) const MARK: u8 = 32;
/// `\p{N}` (Nd, Nl, No: `Ⅻ`, `①`, `½`, `²` are numbers, not letters).
pub(crate) const NUM: u8 = 64;
/// Anything else (punctuation, symbols such as `Ⓐ`, controls other than whitespace,
/// unassigned code points).
pub(crate) const OTHER: u8 = 128;

/// `\p{L}`.
pub(crate) const LETTER: u8 = UP | LOW | LMO;
/// `[^\s\p{L}\p{N}]`: punctuation, symbols, marks.
pub(crate) const PUNCT: u8 = OTHER | MARK;
/// o200k's `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`.
pub(crate) const O_UPPER: u8 = UP | LMO | MARK;
/// o200k's `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`.
pub(crate) const O_LOWER: u8 = LOW | LMO | MARK;
/// In both o200k letter classes.
pub(crate) const O_BOTH: u8 = LMO | MARK;

/// `[^\r\n\p{L}\p{N}]`, the optional one-character prefix of a cl100k/o200k word.
#[inline(always)]
pub(crate) fn is_word_prefix(kind: u8) -> bool {
    kind & (WS | PUNCT) != 0 && kind & NL == 0
}

const fn ascii_kind(b: u8) -> u8 {
    match b {
        b'\r' | b'\n' => WS | NL,
        b'\t' | 0x0B | 0x0C | b' ' => WS,
        b'A'..=b'Z' => UP,
        b'a'..=b'z' => LOW,
        b'0'..=b'9' => NUM,
        _ => OTHER,
    }
}

const fn ascii_table() -> [u8; 128] {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        t[b] = ascii_kind(b as u8);
        b += 1;
    }
    t
}

/// Kind of each ASCII byte.
pub(crate) static ASCII: [u8; 128] = ascii_table();

const BLOCK_BITS: u32 = 7;
const BLOCK: usize = 1 << BLOCK_BITS;

/// The kind of every code point.
#[derive(Debug)]
pub(crate) struct Classes {
    /// Block number of each 128-code-point block.
    index: Box<[u16]>,
    /// The distinct blocks, concatenated.
    blocks: Box<[u8]>,
}

impl Classes {
    pub(super) fn build() -> Self {
        let mut flat = vec![OTHER; 0x11_0000];
        for &(lo, hi, kind) in RANGES {
            flat[lo as usize..=hi as usize].fill(kind);
        }
        let mut seen: std::collections::HashMap<&[u8], u16> = Default::default();
        let mut index = Vec::with_capacity(flat.len() / BLOCK);
        let mut blocks = Vec::new();
        for block in flat.chunks(BLOCK) {
            let n = seen.len() as u16;
            let id = *seen.entry(block).or_insert_with(|| {
                blocks.extend_from_slice(block);
                n
            });
            index.push(id);
        }
        Classes {
            index: index.into(),
            blocks: blocks.into(),
        }
    }

    /// Bytes of the two-level table (for the notes on speed and size).
    #[cfg(test)]
    pub(super) fn table_bytes(&self) -> usize {
        self.index.len() * 2 + self.blocks.len()
    }

    /// The kind of a code point (`cp` <= 0x10FFFF).
    #[inline(always)]
    pub(crate) fn kind_of(&self, cp: u32) -> u8 {
        let block = self.index[(cp >> BLOCK_BITS) as usize] as usize;
        self.blocks[(block << BLOCK_BITS) | (cp as usize & (BLOCK - 1))]
    }

    /// The kind and UTF-8 length of the character starting at byte `i` of `b`, which must be the
    /// bytes of a `str` with `i` a character boundary before its end.
    #[inline(always)]
    pub(crate) fn at(&self, b: &[u8], i: usize) -> (u8, usize) {
        let b0 = b[i];
        if b0 < 0x80 {
            return (ASCII[b0 as usize], 1);
        }
        let (cp, len) = decode_multibyte(b, i);
        (self.kind_of(cp), len)
    }

    /// The kind of the character at `i`, or 0 (no class) at the end of the text.
    #[inline(always)]
    pub(crate) fn kind(&self, b: &[u8], i: usize) -> u8 {
        if i < b.len() {
            self.at(b, i).0
        } else {
            0
        }
    }

    /// The end of the longest run of characters from `i` whose kind is in `mask`.
    #[inline(always)]
    pub(crate) fn run(&self, b: &[u8], mut i: usize, mask: u8) -> usize {
        while i < b.len() {
            let b0 = b[i];
            if b0 < 0x80 {
                if ASCII[b0 as usize] & mask == 0 {
                    break;
                }
                i += 1;
            } else {
                let (cp, len) = decode_multibyte(b, i);
                if self.kind_of(cp) & mask == 0 {
                    break;
                }
                i += len;
            }
        }
        i
    }

    /// The end of at most `max` characters from `i` whose kind is in `mask`.
    #[inline(always)]
    pub(crate) fn run_max(&self, b: &[u8], mut i: usize, mask: u8, max: usize) -> usize {
        for _ in 0..max {
            if i >= b.len() {
                break;
            }
            let (kind, len) = self.at(b, i);
            if kind & mask == 0 {
                break;
            }
            i += len;
        }
        i
    }
}

/// Decodes the multi-byte UTF-8 sequence at `i` (the input is a `str`, so it is well formed).
#[inline(always)]
fn decode_multibyte(b: &[u8], i: usize) -> (u32, usize) {
    let b0 = b[i] as u32;
    let cont = |k: usize| (b[i + k] & 0x3F) as u32;
    if b0 < 0xE0 {
        (((b0 & 0x1F) << 6) | cont(1), 2)
    } else if b0 < 0xF0 {
        (((b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (
            ((b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
            4,
        )
    }
}

/// The shared class table, built on first use.
pub(crate) fn classes() -> &'static Classes {
    static CLASSES: OnceLock<Classes> = OnceLock::new();
    CLASSES.get_or_init(Classes::build)
}

/// If the character at `i` matches `(?i:x)` for an ASCII lowercase letter `x` of the
/// contractions (`s d m t l v e r`), its byte length, else 0.
///
/// Under the simple case folding that `regex` (and fancy-regex's own case-insensitive literals,
/// which fold with `regex-syntax`) apply, these letters match only themselves and their ASCII
/// capitals, except `s`, which also matches `ſ` (U+017F LATIN SMALL LETTER LONG S). So `'ſ` is a
/// contraction for cl100k and o200k, exactly as in the regex. (The Kelvin sign U+212A folds to
/// `k`, which no contraction uses: it is just an uppercase letter here.) Checked for every code
/// point by `contraction_folds_agree_with_regex`.
#[inline(always)]
pub(crate) fn folds_to(b: &[u8], i: usize, x: u8) -> usize {
    match b.get(i) {
        Some(&c) if c | 0x20 == x => 1,
        Some(0xC5) if x == b's' && b.get(i + 1) == Some(&0xBF) => 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    /// Every Unicode scalar value, in order, and for each its byte offset in that string.
    fn all_chars() -> String {
        (0..=0x10_FFFFu32).filter_map(char::from_u32).collect()
    }

    /// The code points (as a membership vector) that `pattern+` matches somewhere in
    /// `all_chars()`: one regex scan per class instead of a million `is_match` calls.
    fn members(all: &str, class: &str) -> Vec<bool> {
        let re = Regex::new(&format!("(?:{class})+")).unwrap();
        let mut v = vec![false; 0x11_0000];
        for m in re.find_iter(all) {
            for c in m.as_str().chars() {
                v[c as usize] = true;
            }
        }
        v
    }

    /// The kind of every code point according to `regex::Regex`.
    fn kinds_from_regex() -> Vec<u8> {
        let all = all_chars();
        let mut kinds = vec![OTHER; 0x11_0000];
        for (class, kind) in [
            (r"\s", WS),
            (r"\p{Lu}", UP),
            (r"\p{Lt}", UP),
            (r"\p{Ll}", LOW),
            (r"\p{Lm}", LMO),
            (r"\p{Lo}", LMO),
            (r"\p{M}", MARK),
            (r"\p{N}", NUM),
        ] {
            for (cp, is) in members(&all, class).into_iter().enumerate() {
                if is {
                    assert_eq!(kinds[cp], OTHER, "U+{cp:04X} is in two classes");
                    kinds[cp] = kind;
                }
            }
        }
        kinds['\r' as usize] |= NL;
        kinds['\n' as usize] |= NL;
        kinds
    }

    fn kind_name(k: u8) -> &'static str {
        match k {
            WS => "WS",
            x if x == WS | NL => "WS | NL",
            UP => "UP",
            LOW => "LOW",
            LMO => "LMO",
            MARK => "MARK",
            NUM => "NUM",
            _ => unreachable!("no range is written for OTHER"),
        }
    }

    fn render_tables(kinds: &[u8]) -> String {
        let mut s = String::from(
            "//! GENERATED by `TOKFORGE_REGEN_TABLES=1 cargo test --lib tables_are_current` from\n\
             //! `regex::Regex` over every code point: do not edit by hand. Each entry is an\n\
             //! inclusive code point range and its kind (see `classes.rs`); code points in no\n\
             //! range are `OTHER`.\n\n\
             use super::classes::{LMO, LOW, MARK, NL, NUM, UP, WS};\n\n\
             #[rustfmt::skip]\n\
             pub(super) static RANGES: &[(u32, u32, u8)] = &[\n",
        );
        let mut cp = 0usize;
        while cp < kinds.len() {
            let k = kinds[cp];
            let mut end = cp;
            while end + 1 < kinds.len() && kinds[end + 1] == k {
                end += 1;
            }
            if k != OTHER {
                s.push_str(&format!(
                    "    (0x{cp:04X}, 0x{end:04X}, {}),\n",
                    kind_name(k)
                ));
            }
            cp = end + 1;
        }
        s.push_str("];\n");
        s
    }

    #[test]
    fn tables_are_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/rust/src/pretokenize/scan/tables.rs"
        );
        let want = render_tables(&kinds_from_regex());
        if std::env::var("TOKFORGE_REGEN_TABLES").as_deref() == Ok("1") {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap();
        assert!(
            have == want,
            "tables.rs is out of date with the regex crate: rerun with TOKFORGE_REGEN_TABLES=1"
        );
    }

    #[test]
    fn lookup_agrees_with_regex_on_every_code_point() {
        let kinds = kinds_from_regex();
        let cls = classes();
        for (cp, &k) in kinds.iter().enumerate() {
            assert_eq!(cls.kind_of(cp as u32), k, "U+{cp:04X}");
            if let Some(c) = char::from_u32(cp as u32) {
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                assert_eq!(cls.at(s.as_bytes(), 0), (k, s.len()), "U+{cp:04X}");
            }
        }
        for b in 0..128u8 {
            assert_eq!(ASCII[b as usize], kinds[b as usize], "byte {b:#04x}");
        }
        // The composite classes exactly as the patterns spell them.
        let all = all_chars();
        type Pred = fn(u8) -> bool;
        let composite: [(&str, Pred); 7] = [
            (r"\p{L}", |k| k & LETTER != 0),
            (r"[^\s\p{L}\p{N}]", |k| k & PUNCT != 0),
            (r"[^\r\n\p{L}\p{N}]", is_word_prefix),
            (r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", |k| k & O_UPPER != 0),
            (r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]", |k| k & O_LOWER != 0),
            (r"[\r\n]", |k| k & NL != 0),
            (r"\s", |k| k & WS != 0),
        ];
        for (class, pred) in composite {
            for (cp, is) in members(&all, class).into_iter().enumerate() {
                if char::from_u32(cp as u32).is_some() {
                    assert_eq!(pred(kinds[cp]), is, "{class} on U+{cp:04X}");
                }
            }
        }
        // The famous traps: numbers and symbols that look like letters.
        for (c, k) in [
            ('Ⅻ', NUM),
            ('Ⓐ', OTHER),
            ('ⓐ', OTHER),
            ('①', NUM),
            ('½', NUM),
        ] {
            assert_eq!(cls.kind_of(c as u32), k, "{c}");
        }
        assert_eq!(cls.kind_of('\u{212A}' as u32), UP);
        assert_eq!(cls.kind_of('\u{3000}' as u32), WS);
        assert_eq!(cls.kind_of('\u{85}' as u32), WS);
    }

    #[test]
    fn contraction_folds_agree_with_regex() {
        let all = all_chars();
        for x in *b"sdmtlver" {
            let regex_says = members(&all, &format!("(?i:{})", x as char));
            for c in all.chars() {
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                let ours = folds_to(s.as_bytes(), 0, x);
                assert_eq!(
                    ours != 0,
                    regex_says[c as usize],
                    "(?i:{}) on U+{:04X}",
                    x as char,
                    c as u32
                );
                if ours != 0 {
                    assert_eq!(ours, s.len());
                }
            }
        }
        assert_eq!(folds_to("ſ".as_bytes(), 0, b's'), 2);
        assert_eq!(folds_to("K".as_bytes(), 0, b's'), 0);
    }
}
