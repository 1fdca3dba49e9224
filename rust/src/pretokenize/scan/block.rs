//! Piece boundaries of ASCII text 64 bytes at a time, as bit masks, for the cl100k family
//! (cl100k, Llama 3, Qwen 2): the same pieces as the scalar scanner, without its branches.
//!
//! # Why
//!
//! The scalar scanner decides each piece with a few data-dependent branches (which alternative,
//! where the run ends), and on real text about one of them per piece is mispredicted: on
//! en_docs the split ran at 339 MB/s, against 880 MB/s when the same 4 KB document was split
//! over and over (the predictor then knows every branch; `/tmp` probe, 2-core EPYC). Here one
//! window's classes become bit masks (SSE2 compares on x86_64), every rule of the pattern
//! becomes shifts, ANDs and one carry-propagating add, and the boundaries come out as the set
//! bits of one word.
//!
//! # The rules, for a window starting at a piece start `p` (bit `i` = byte `p + i`)
//!
//! Classes: `L` letter, `D` digit, `N` `\r`/`\n`, `S` other whitespace (`\t \x0B \x0C` and
//! space), `SP` the space alone, `P` everything else (punctuation, symbols, other controls).
//! `prev(X)` has bit `i` when `X` has `i - 1` (`X << 1`; bit 0 sees nothing, which is right at
//! a piece start: the pattern has no lookbehind), `next(X)` when `X` has `i + 1`. A piece
//! starts at:
//!
//! 1. a contraction: `'` whose previous character is a letter, digit, `N` or a non-space `S`
//!    (or nothing), followed by `[sdmt]`, `ll`, `ve` or `re` in any case; and right after it.
//!    Any other `'` is `P`: after `P` or a space it is always inside the piece before.
//! 2. a prefix: an `S` followed by a letter, or a `P` followed by a letter whose previous
//!    character is neither `P` (a `P` run takes it, possessively) nor a space (` ?` takes it).
//! 3. the start of a letter run that is not prefixed, and of a digit run, and every
//!    `digits`-th digit into it (`\p{N}{1,3}`).
//! 4. the start of a `P` run, unless a space comes right before it; and that space.
//! 5. whitespace: the `\r`/`\n` right after a `P` run belong to its piece (`[\r\n]*`); the rest
//!    of the run starts a piece (`chain` below); after the run's last `N`, when spaces follow
//!    it (`\s*[\r\n]` ends there); and at the run's last character when that is an `S`
//!    (`\s+(?!\S)` gives it back to the next piece, or it stands alone).
//!
//! A letter run or `P` run that follows a whitespace run or another run starts a piece by
//! 2-4, so run ends need no rule of their own. Two cases are left to the scalar scanner: a run
//! of whitespace that reaches the end of the text (`\s++$`), and any byte >= 0x80.
//!
//! # Which boundaries are final
//!
//! The masks see only the window, so the last run of the window (which may go on past it) and
//! anything after the first non-ASCII byte are unknown. Every boundary before the start of the
//! window's last run depends only on characters up to that start (rule 1 looks two characters
//! ahead, so the window keeps three in hand): those are committed, the next window starts at
//! the last of them, and a window that commits nothing hands its bytes to the scalar scanner.

use std::ops::Range;

/// Class masks of one window: bit `i` for byte `i`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Masks {
    /// `[A-Za-z]`.
    letter: u64,
    /// `[A-Z]`.
    upper: u64,
    /// `[0-9]`.
    digit: u64,
    /// `\r`, `\n`.
    nl: u64,
    /// `\t \x0B \x0C` and space.
    ws: u64,
    /// Space.
    space: u64,
    /// Bytes >= 0x80.
    high: u64,
    /// `'`.
    quote: u64,
    /// `/`.
    slash: u64,
    /// `[sdmtSDMT]`.
    sdmt: u64,
    /// `[lL]`.
    ell: u64,
    /// `[vVrR]`.
    vr: u64,
    /// `[eE]`.
    e: u64,
}

/// The class masks of `w`, byte by byte (the reference for the SIMD version, and the version
/// where there is none).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(crate) fn masks_scalar(w: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (i, &c) in w.iter().enumerate() {
        let bit = 1u64 << i;
        let lower = c | 0x20;
        let set = |x: &mut u64, on: bool| {
            if on {
                *x |= bit
            }
        };
        set(&mut m.letter, lower.is_ascii_lowercase());
        set(&mut m.upper, c.is_ascii_uppercase());
        set(&mut m.digit, c.is_ascii_digit());
        set(&mut m.nl, c == b'\r' || c == b'\n');
        set(&mut m.ws, c == b' ' || c == b'\t' || c == 0x0B || c == 0x0C);
        set(&mut m.space, c == b' ');
        set(&mut m.high, c >= 0x80);
        set(&mut m.quote, c == b'\'');
        set(&mut m.slash, c == b'/');
        set(&mut m.sdmt, matches!(lower, b's' | b'd' | b'm' | b't'));
        set(&mut m.ell, lower == b'l');
        set(&mut m.vr, lower == b'v' || lower == b'r');
        set(&mut m.e, lower == b'e');
    }
    let byte_set = |f: &dyn Fn(u8) -> bool| {
        w.iter()
            .enumerate()
            .fold(0u64, |acc, (i, &c)| acc | ((f(c) as u64) << i))
    };
    latin1(
        &mut m,
        byte_set(&|c| c == 0xC3),
        byte_set(&|c| (0x80..=0x9E).contains(&c) && c != 0x97),
        byte_set(&|c| (0x9F..=0xBF).contains(&c) && c != 0xB7),
    );
    m
}

/// Adds the letters of Latin-1 (U+00C0..U+00FF but `×` and `÷`: `\xC3` then a continuation
/// byte) to `m`, both of their bytes, so that German, French or Spanish words stay in the
/// window. `c3`: the `\xC3` bytes; `upper`/`lower`: continuation bytes of the capitals
/// (U+00C0..U+00DE) and of the small letters (U+00DF..U+00FF). Every other byte >= 0x80
/// stays unknown.
#[inline(always)]
fn latin1(m: &mut Masks, c3: u64, upper: u64, lower: u64) {
    let capital = c3 & (upper >> 1);
    let small = c3 & (lower >> 1);
    let capital = capital | (capital << 1);
    let letter = capital | small | (small << 1);
    m.letter |= letter;
    m.upper |= capital;
    m.high &= !letter;
}

/// The class masks of `w` with SSE2 (part of every x86_64 CPU): 16 bytes per compare.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn masks(w: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    let mut m = Masks::default();
    for k in 0..4 {
        // SAFETY: SSE2 is in the x86_64 baseline; the load reads 16 of the window's 64 bytes
        // (unaligned load, in bounds: k * 16 + 16 <= 64).
        unsafe {
            let x = _mm_loadu_si128(w.as_ptr().add(k * 16).cast());
            let eq = |c: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8));
            // `v + (128 - lo) < -128 + len` as signed bytes is `lo <= v < lo + len` unsigned,
            // for ASCII `v` (high bytes are masked out below).
            let range = |v: __m128i, lo: u8, len: u8| {
                let t = _mm_add_epi8(v, _mm_set1_epi8(128u8.wrapping_sub(lo) as i8));
                _mm_cmplt_epi8(t, _mm_set1_epi8((128u8.wrapping_add(len)) as i8))
            };
            let lower = _mm_or_si128(x, _mm_set1_epi8(0x20));
            let leq = |c: u8| _mm_cmpeq_epi8(lower, _mm_set1_epi8(c as i8));
            let bits = |v: __m128i| (_mm_movemask_epi8(v) as u32 as u64) << (k * 16);
            let high = bits(x);
            let ascii = !high;
            m.high |= high;
            m.letter |= bits(range(lower, b'a', 26)) & ascii;
            m.upper |= bits(range(x, b'A', 26)) & ascii;
            m.digit |= bits(range(x, b'0', 10)) & ascii;
            m.nl |= bits(_mm_or_si128(eq(b'\r'), eq(b'\n')));
            let sp = eq(b' ');
            m.space |= bits(sp);
            m.ws |= bits(_mm_or_si128(
                _mm_or_si128(sp, eq(b'\t')),
                _mm_or_si128(eq(0x0B), eq(0x0C)),
            ));
            m.quote |= bits(eq(b'\''));
            m.slash |= bits(eq(b'/'));
            m.sdmt |= bits(_mm_or_si128(
                _mm_or_si128(leq(b's'), leq(b'd')),
                _mm_or_si128(leq(b'm'), leq(b't')),
            )) & ascii;
            m.ell |= bits(leq(b'l')) & ascii;
            m.vr |= bits(_mm_or_si128(leq(b'v'), leq(b'r'))) & ascii;
            m.e |= bits(leq(b'e')) & ascii;
        }
    }
    if m.high == 0 {
        // ASCII only (most English and code windows): no Latin-1 pass, which cost 10% of the
        // split on en_docs when it ran on every window.
        return m;
    }
    let (mut c3, mut cont_upper, mut cont_lower) = (0u64, 0u64, 0u64);
    for k in 0..4 {
        // SAFETY: as above.
        unsafe {
            let x = _mm_loadu_si128(w.as_ptr().add(k * 16).cast());
            let eq = |c: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8));
            let lt = |c: u8| _mm_cmplt_epi8(x, _mm_set1_epi8(c as i8));
            let gt = |c: u8| _mm_cmpgt_epi8(x, _mm_set1_epi8(c as i8));
            let bits = |v: __m128i| (_mm_movemask_epi8(v) as u32 as u64) << (k * 16);
            // Signed, the continuation bytes 0x80..0x9E are below -97 and 0x9F..0xBF between
            // -98 and -64 (ASCII bytes are positive: masked by `high`).
            c3 |= bits(eq(0xC3));
            cont_upper |= bits(_mm_andnot_si128(eq(0x97), lt(0x9F)));
            cont_lower |= bits(_mm_andnot_si128(
                eq(0xB7),
                _mm_and_si128(gt(0x9E), lt(0xC0)),
            ));
        }
    }
    let high = m.high;
    latin1(&mut m, c3, cont_upper, cont_lower & high);
    m
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn masks(w: &[u8; 64]) -> Masks {
    masks_scalar(w)
}

/// The piece starts of a window (bit 0, the window's own start, included) and the bound below
/// which they are final (see the module docs); `digits` is the pattern's `\p{N}{1,digits}`,
/// and `O200K` picks o200k's rules over cl100k's (see the module docs).
#[inline(always)]
pub(crate) fn boundaries<const O200K: bool>(m: &Masks, digits: u32) -> (u64, u32) {
    // Only the bytes before the first high byte are known.
    let known_len = m.high.trailing_zeros();
    let known = if known_len == 64 {
        u64::MAX
    } else {
        (1u64 << known_len) - 1
    };
    let prev = |x: u64| x << 1;
    let next = |x: u64| x >> 1;
    let letter = m.letter & known;
    let digit = m.digit & known;
    let nl = m.nl & known;
    let ws = m.ws & known;
    let space = m.space & known;
    let white = ws | nl;
    let punct = known & !(letter | digit | white);
    // Finality bound: the start of the window's last run (classes L, D, P, whitespace), from
    // the classes before contractions and chains reshape them.
    let run_starts = (letter & !prev(letter))
        | (digit & !prev(digit))
        | (punct & !prev(punct))
        | (white & !prev(white));
    let mut limit = 64;

    // 1. Contractions: `'` and `[sdmt]`, `ll`, `ve` or `re` in any case. cl100k: a piece of
    // its own where a piece may start; o200k: the end of the word right before the `'`.
    let q = if O200K {
        m.quote & known & prev(letter)
    } else {
        m.quote & known & (prev(letter | digit | nl | (ws & !space)) | 1)
    };
    let q1 = q & next(m.sdmt);
    let q2 = q & ((next(m.ell) & next(next(m.ell))) | (next(m.vr) & next(next(m.e))));
    let q2 = q2 & !q1;
    let contraction = q1 | q2;
    let body = contraction | (contraction << 1) | (q2 << 2);
    let after_contraction = (q1 << 2) | (q2 << 3);
    if O200K {
        // A contraction right after another one ends a word only if that word did not end
        // with the first one (`I'M'S` is `I'M` then `'S`, `I'M'S'T` then `'S'T`): a chain of
        // them is left to the scalar scanner.
        let chained = contraction & after_contraction;
        if chained != 0 {
            limit = chained.trailing_zeros().saturating_sub(3);
        }
    }
    let letter = letter & !body;
    // `chain`: the newlines right after a punctuation run, which its piece takes (`[\r\n]*`;
    // o200k's `[\r\n/]*` goes on over slashes after the first newline).
    let punct = punct & !body;
    let chain_start = nl & prev(punct);
    let chain = if O200K {
        // A slash of the chain is punctuation, so a newline after it is also a `chain_start`:
        // the carry trick below would see two starts in one run. Fill rightwards instead.
        fill_right(chain_start, nl | (m.slash & known))
    } else {
        // Carry each start through its run of newlines.
        nl & !nl.wrapping_add(chain_start)
    };
    let punct = punct & !chain;

    // 2, 3. Letters and their prefix.
    let letter_start = letter & !prev(letter);
    let prefix = next(letter_start) & (ws | (punct & !prev(punct | space)));
    let mut b = after_contraction | prefix | (letter_start & !prev(prefix));
    if O200K {
        // o200k's words are `U*W+` or `U+W*`: a capital right after a small letter starts one.
        b |= m.upper & letter & prev(letter & !m.upper);
    } else {
        b |= contraction;
    }

    // 3. Digits, in groups of `digits` from each run's start.
    let digit_start = digit & !prev(digit);
    b |= digit_start;
    let mut full = digit; // bit i: digits at i - digits + 1 ..= i
    for k in 1..digits {
        full &= digit << k;
    }
    let mut group = digit_start;
    loop {
        group = (group << digits) & full;
        if group == 0 {
            break;
        }
        b |= group;
    }

    // 4. Punctuation runs, with the space before them.
    let punct_start = punct & !prev(punct);
    b |= (punct_start & !prev(space)) | (next(punct_start) & space);

    // 5. Whitespace, but for the chain.
    let runs = white & !chain;
    b |= runs & !prev(runs);
    // The last character of a run, when it is an `S` and a known non-space character follows.
    let solid = known & !white;
    let last_s = ws & next(solid);
    b |= last_s;
    // After the run's last newline: the `S` segment that ends at `last_s` starts right after a
    // newline. Propagate from each segment's end back to the character before it (bit-reversed
    // add), and keep it when that character is a newline.
    let (rws, rlast) = (ws.reverse_bits(), last_s.reverse_bits());
    let before_segment = (rws.wrapping_add(rlast) & !rws).reverse_bits();
    b |= (before_segment & nl) << 1;

    // Final below the start of the last run among known bytes, and three bytes before the end
    // of what is known.
    let last_run = if run_starts == 0 {
        0
    } else {
        63 - run_starts.leading_zeros()
    };
    let limit = limit.min(last_run).min(known_len.saturating_sub(3));
    (b | 1, limit)
}

/// The bits of `set` reachable from a bit of `from` (a subset of `set`) by steps to the next
/// bit inside `set`: doubling steps, six of them for 64 bits.
#[inline(always)]
fn fill_right(from: u64, set: u64) -> u64 {
    let (mut r, mut x) = (from, set);
    for k in [1, 2, 4, 8, 16, 32] {
        r |= (r << k) & x;
        x &= x << k;
    }
    r
}

/// Splits `text` into `out` with `piece_end` (the exact scalar scanner), taking ASCII windows
/// 64 bytes at a time through [`boundaries`].
#[inline(always)]
pub(crate) fn split_blocks<const O200K: bool>(
    text: &str,
    out: &mut Vec<Range<usize>>,
    digits: u32,
    mut piece_end: impl FnMut(usize) -> usize,
) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Where the scalar scanner takes over up to: the end of a window the masks could not
        // finish, or the end of the text for its last 64 bytes.
        let stop = if i + 64 < b.len() {
            let head = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            const HIGH: u64 = 0x8080_8080_8080_8080;
            // Lead bytes (0b11xxxxxx) other than 0xC3 (where Latin-1 letters start); a byte
            // wrongly taken for 0xC3 only costs a window's masks.
            let lead = head & (head << 1) & HIGH;
            let y = head ^ 0xC3C3_C3C3_C3C3_C3C3;
            let c3 = y.wrapping_sub(0x0101_0101_0101_0101) & !y & HIGH;
            // Non-Latin text goes straight to the scalar scanner: the window would end within
            // 8 bytes, and its masks cost more than they save.
            if lead & !c3 == 0 {
                let w: &[u8; 64] = b[i..i + 64].try_into().expect("64 bytes");
                let m = masks(w);
                let (mut bits, limit) = boundaries::<O200K>(&m, digits);
                // Keep the final ones: bits below `limit`.
                bits &= (1u64 << limit) - 1;
                if bits > 1 {
                    // Every piece but the last committed one ends at the next set bit.
                    let last = 63 - bits.leading_zeros();
                    let mut rest = bits & !(1u64 << last);
                    while rest != 0 {
                        let s = rest.trailing_zeros();
                        rest &= rest - 1;
                        let e = if rest == 0 {
                            last
                        } else {
                            rest.trailing_zeros()
                        };
                        out.push(i + s as usize..i + e as usize);
                    }
                    let window = i;
                    i += last as usize;
                    if m.high == 0 {
                        continue;
                    }
                    // A high byte ahead: the scalar scanner takes the rest of the window.
                    // (Going back to the masks right after it cost more than it saved on
                    // Russian text, where a window then held one ASCII space: man_ru split
                    // 390 MB/s against 490 for the scalar scanner alone.)
                    window + 64
                } else {
                    i + 64
                }
            } else {
                i + 64
            }
        } else {
            b.len()
        };
        while i < stop {
            let e = piece_end(i);
            out.push(i..e);
            i = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_masks_equal_scalar_masks_on_every_byte() {
        // Every byte value in every lane position.
        for shift in 0..64u32 {
            let mut w = [0u8; 64];
            for (k, x) in w.iter_mut().enumerate() {
                *x = ((k as u32 * 4 + shift * 7) % 256) as u8;
            }
            assert_eq!(masks(&w), masks_scalar(&w), "shift {shift}");
            for b in 0..=255u8 {
                let mut w = [b'a'; 64];
                w[shift as usize] = b;
                assert_eq!(masks(&w), masks_scalar(&w), "byte {b:#x} at {shift}");
            }
        }
    }
}
