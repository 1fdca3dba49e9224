//! GPT-2's byte alphabet: every byte as a printable character, as `ByteLevel` tokenizer.json
//! files spell their tokens, and the split regex of the `ByteLevel` pre-tokenizer.

use rustc_hash::FxHashMap;

/// The split regex of `tokenizers`' `ByteLevel` pre-tokenizer when `use_regex` is true.
pub const BYTE_LEVEL_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// GPT-2's table from bytes to printable characters: printable Latin-1 bytes map to
/// themselves, the other 68 to U+0100 upwards, in byte order.
pub fn byte_to_char() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in out.iter_mut().enumerate() {
        let b = b as u32;
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
        *slot = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            next += 1;
            char::from_u32(next - 1).unwrap_or('\0')
        };
    }
    out
}

/// The inverse of [`byte_to_char`].
pub(crate) fn char_to_byte() -> FxHashMap<char, u8> {
    byte_to_char()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// `s` with every character of GPT-2's byte alphabet turned back into its byte; other
/// characters keep their UTF-8 bytes.
pub(crate) fn unmap_bytes(s: &str, table: &FxHashMap<char, u8>) -> Vec<u8> {
    // As `tokenizers`' ByteLevel decoder: a token holding a character outside the byte alphabet
    // (a raw UTF-8 token, like Command-R's "🇸") is its own UTF-8 text, all of it.
    unmap_token(s, table).unwrap_or_else(|| s.as_bytes().to_vec())
}

/// The bytes a byte-level token stands for, or `None` when it holds a character outside the
/// byte alphabet: byte-level BPE never produces such a token (its words are mapped bytes).
pub(crate) fn unmap_token(s: &str, table: &FxHashMap<char, u8>) -> Option<Vec<u8>> {
    s.chars().map(|c| table.get(&c).copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = byte_to_char();
        assert_eq!(t[b'!' as usize], '!');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[0], 'Ā');
        let unmap = char_to_byte();
        assert_eq!(unmap.len(), 256);
        assert_eq!(unmap_bytes("Ġhello", &unmap), b" hello");
    }
}
