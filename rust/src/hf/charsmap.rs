//! SentencePiece's `precompiled_charsmap`, the rules of its `nmt_nfkc` normalizers.

use crate::util::utf8_width;

/// SentencePiece's precompiled normalization rules: a darts-clone double-array trie over the
/// source strings whose values are offsets of NUL-terminated replacements in a string blob.
/// Layout: `u32` (LE) trie size in bytes, the trie's `u32` units, then the blob.
#[derive(Debug)]
pub struct Charsmap {
    units: Vec<u32>,
    blob: Vec<u8>,
}

impl Charsmap {
    /// Parses the binary charsmap; an empty one is `None` (no rules).
    pub fn parse(data: &[u8]) -> std::result::Result<Option<Self>, String> {
        if data.is_empty() {
            return Ok(None);
        }
        if data.len() < 4 {
            return Err("precompiled_charsmap shorter than its 4-byte header".into());
        }
        let size = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if size % 4 != 0 || size == 0 || 4 + size > data.len() {
            return Err(format!(
                "precompiled_charsmap: trie size {size} does not fit the {} bytes",
                data.len()
            ));
        }
        let units = data[4..4 + size]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Some(Charsmap {
            units,
            blob: data[4 + size..].to_vec(),
        }))
    }

    /// Values of every key that is a prefix of `key`, shortest first (darts-clone's
    /// `commonPrefixSearch`). Out-of-range units end the search (a corrupt map cannot panic).
    fn prefixes(&self, key: &[u8]) -> Vec<(usize, usize)> {
        let unit = |i: usize| self.units.get(i).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let mut out = Vec::new();
        let Some(first) = unit(0) else { return out };
        let mut pos = offset(first);
        for (k, &c) in key.iter().enumerate() {
            if c == 0 {
                break;
            }
            pos ^= c as usize;
            let Some(u) = unit(pos) else { return out };
            if u & ((1 << 31) | 0xFF) != c as u32 {
                return out;
            }
            pos ^= offset(u);
            if (u >> 8) & 1 == 1 {
                let Some(leaf) = unit(pos) else { return out };
                out.push((k + 1, (leaf & ((1 << 31) - 1)) as usize));
            }
        }
        out
    }

    /// The replacement stored at `value` (up to its NUL).
    fn replacement(&self, value: usize) -> &[u8] {
        let tail = self.blob.get(value..).unwrap_or(&[]);
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        &tail[..end]
    }

    /// `tokenizers`' `Precompiled`: each grapheme cluster shorter than 6 bytes with a rule for
    /// a prefix of it is replaced whole by the shortest such rule's replacement; otherwise each
    /// character is replaced by its own rule, if any.
    pub fn normalize_like_hf(&self, s: &str) -> String {
        use unicode_segmentation::UnicodeSegmentation;
        let mut out: Vec<u8> = Vec::with_capacity(s.len());
        for g in s.graphemes(true) {
            if g.len() < 6 {
                if let Some(&(_, v)) = self.prefixes(g.as_bytes()).first() {
                    out.extend_from_slice(self.replacement(v));
                    continue;
                }
            }
            for (i, c) in g.char_indices() {
                let part = &g.as_bytes()[i..i + c.len_utf8()];
                match self.prefixes(part).first() {
                    Some(&(_, v)) => out.extend_from_slice(self.replacement(v)),
                    None => out.extend_from_slice(part),
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `sentencepiece`'s normalizer: at each position the longest rule applies; without one,
    /// one character is copied.
    pub fn normalize_like_sentencepiece(&self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out: Vec<u8> = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < b.len() {
            match self.prefixes(&b[i..]).last() {
                Some(&(len, v)) => {
                    out.extend_from_slice(self.replacement(v));
                    i += len;
                }
                None => {
                    let w = utf8_width(b[i]).min(b.len() - i);
                    out.extend_from_slice(&b[i..i + w]);
                    i += w;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
