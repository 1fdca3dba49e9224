//! The piece key: a byte string's first and last 8 bytes and hash, read in a few loads, shared
//! by the token map and the encoder's piece cache so a piece is hashed once.

/// The first (up to) 8 bytes of `b`, little-endian, zero-padded, in at most two loads.
#[inline(always)]
pub(super) fn load_head(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 8 {
        u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
    } else if n >= 4 {
        // Two overlapping 4-byte loads; the overlap holds the same bytes, so OR is exact.
        let lo = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as u64;
        let hi = u32::from_le_bytes(b[n - 4..].try_into().expect("4 bytes")) as u64;
        lo | hi << ((n - 4) * 8)
    } else if n > 0 {
        b[0] as u64 | (b[n / 2] as u64) << (n / 2 * 8) | (b[n - 1] as u64) << ((n - 1) * 8)
    } else {
        0
    }
}

/// The last 8 bytes of `b` (which has at least 8).
#[inline(always)]
pub(crate) fn tail8(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[b.len() - 8..].try_into().expect("8 bytes"))
}

/// A hint to load the cache line holding `x` (no effect where there is no such instruction).
#[inline(always)]
pub(crate) fn prefetch_read<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults and reads no memory visibly.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// A folded 64x64 -> 128-bit multiply: a cheap mix whose high and low halves both depend on
/// every input bit.
#[inline(always)]
pub(super) fn fold_mul(x: u64, k: u64) -> u64 {
    let m = (x as u128) * (k as u128);
    (m as u64) ^ ((m >> 64) as u64)
}

pub(super) const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xD6E8_FEB8_6659_FD93;

#[inline(always)]
pub(super) fn hash_bytes(head: u64, b: &[u8]) -> u64 {
    let n = b.len();
    let tail = if n > 8 { tail8(b) } else { 0 };
    hash_parts(head, n, tail)
}

/// The hash of a piece of `n` bytes from its head and (past 8 bytes) its last 8 bytes.
#[inline(always)]
fn hash_parts(head: u64, n: usize, tail: u64) -> u64 {
    fold_mul(head ^ K1.wrapping_mul(n as u64), K0 ^ tail)
}

/// A piece's lookup key: its first 8 bytes (zero-padded) and the hash of those, its length and
/// its last 8 bytes. The token map and the encoder's piece cache both index by it, so a piece
/// is hashed once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PieceKey {
    pub(crate) head: u64,
    pub(crate) hash: u64,
}

impl PieceKey {
    /// The key of `b`.
    #[inline(always)]
    pub(crate) fn of(b: &[u8]) -> Self {
        let head = load_head(b);
        PieceKey {
            head,
            hash: hash_bytes(head, b),
        }
    }

    /// The key of `text[s..e]` (not empty), for a `text` of at least 8 bytes: whole 8-byte
    /// loads and masks instead of [`PieceKey::of`]'s branches on the length, which pieces of
    /// every length from 1 to 10 bytes mispredict.
    #[inline(always)]
    pub(crate) fn at(text: &[u8], s: usize, e: usize) -> Self {
        debug_assert!(text.len() >= 8 && s < e && e <= text.len());
        let n = e - s;
        // The 8 bytes from `s`, or, near the end of the text, the last 8 shifted down to `s`.
        let at = s.min(text.len() - 8);
        let word = u64::from_le_bytes(text[at..at + 8].try_into().expect("8 bytes"));
        let head = (word >> (8 * (s - at))) & (u64::MAX >> (64 - 8 * n.min(8)));
        let end = e.max(8);
        let last = u64::from_le_bytes(text[end - 8..end].try_into().expect("8 bytes"));
        let tail = last & ((n > 8) as u64).wrapping_neg();
        PieceKey {
            head,
            hash: hash_parts(head, n, tail),
        }
    }
}
