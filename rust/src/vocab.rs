//! The vocabulary: token byte strings and their ids. tiktoken's convention holds: an ordinary
//! token's id is its rank, and a lower rank means an earlier merge. Special tokens are strings
//! with ids of their own. A vocabulary whose base alphabet is characters rather than bytes may
//! also carry 256 byte-fallback tokens (`<0x00>`..`<0xFF>`, the SentencePiece / Llama
//! convention): they decode to one raw byte each and are emitted for characters that are not in
//! the vocabulary.

use rustc_hash::FxHashMap;

use crate::error::{Result, TokforgeError};

/// A token id. Ordinary tokens' ids are their merge ranks.
pub type Rank = u32;

/// Token bytes <-> ids, plus special tokens and optional byte-fallback tokens.
#[derive(Debug, Clone)]
pub struct Vocab {
    /// Mergeable token bytes -> rank.
    encoder: FxHashMap<Vec<u8>, Rank>,
    /// Special token text -> id, and its inverse.
    specials: FxHashMap<String, Rank>,
    special_ids: FxHashMap<Rank, String>,
    /// `fallback[b]` is the id of the `<0xbb>` token, when the vocabulary has byte fallback.
    fallback: Option<Box<[Rank; 256]>>,
    /// Decoding table over every id: the bytes of id `i` are `bytes[offsets[i]..offsets[i+1]]`,
    /// and `kind[i]` says whether `i` is used at all. Flat, so decode touches two arrays only.
    offsets: Vec<u32>,
    bytes: Vec<u8>,
    kind: Vec<TokenKind>,
    /// Whether every single byte is an ordinary token (byte-level BPE): then encoding starts
    /// from bytes; otherwise it starts from characters and needs byte fallback for unknowns.
    byte_level: bool,
}

/// What an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// No token has this id (tiktoken vocabularies have gaps before their special tokens).
    Unused,
    /// A mergeable token: its id is its rank.
    Ordinary,
    /// A special token such as `<|endoftext|>`.
    Special,
    /// A `<0xNN>` byte-fallback token.
    ByteFallback,
}

impl Vocab {
    /// Builds a vocabulary from ordinary tokens with their ranks, special tokens with their ids,
    /// and optionally the ids of the 256 byte-fallback tokens (index = byte value).
    ///
    /// Rejects empty tokens, a token or a rank given twice, and ids shared between kinds.
    pub fn new(
        ranks: Vec<(Vec<u8>, Rank)>,
        specials: Vec<(String, Rank)>,
        fallback: Option<Vec<Rank>>,
    ) -> Result<Self> {
        let mut max_id: Option<Rank> = None;
        let mut bump = |r: Rank| max_id = Some(max_id.map_or(r, |m| m.max(r)));
        ranks.iter().for_each(|(_, r)| bump(*r));
        specials.iter().for_each(|(_, r)| bump(*r));
        if let Some(f) = &fallback {
            if f.len() != 256 {
                return Err(TokforgeError::InvalidVocab(format!(
                    "byte fallback needs 256 ids, got {}",
                    f.len()
                )));
            }
            f.iter().for_each(|r| bump(*r));
        }
        let n = max_id.map_or(0, |m| m as usize + 1);
        if n > (u32::MAX as usize) {
            return Err(TokforgeError::InvalidVocab("token id too large".into()));
        }
        let mut table: Vec<Option<(TokenKind, Vec<u8>)>> = vec![None; n];
        let mut claim = |id: Rank, kind: TokenKind, b: Vec<u8>, what: &dyn Fn() -> String| {
            let slot = &mut table[id as usize];
            if let Some((k, _)) = slot {
                return Err(TokforgeError::InvalidVocab(format!(
                    "id {id} is used twice ({} and a {:?} token)",
                    what(),
                    k
                )));
            }
            *slot = Some((kind, b));
            Ok(())
        };

        let mut encoder = FxHashMap::with_capacity_and_hasher(ranks.len(), Default::default());
        for (bytes, rank) in ranks {
            if bytes.is_empty() {
                return Err(TokforgeError::InvalidVocab(format!(
                    "token with rank {rank} is empty"
                )));
            }
            claim(rank, TokenKind::Ordinary, bytes.clone(), &|| {
                format!("token {:?}", show(&bytes))
            })?;
            if let Some(prev) = encoder.insert(bytes.clone(), rank) {
                return Err(TokforgeError::InvalidVocab(format!(
                    "token {:?} appears twice, with ranks {prev} and {rank}",
                    show(&bytes)
                )));
            }
        }
        let mut special_map = FxHashMap::default();
        let mut special_ids = FxHashMap::default();
        for (text, id) in specials {
            if text.is_empty() {
                return Err(TokforgeError::InvalidVocab(
                    "special token is the empty string".into(),
                ));
            }
            claim(id, TokenKind::Special, text.as_bytes().to_vec(), &|| {
                format!("special {text:?}")
            })?;
            if special_map.insert(text.clone(), id).is_some() {
                return Err(TokforgeError::InvalidVocab(format!(
                    "special token {text:?} appears twice"
                )));
            }
            special_ids.insert(id, text);
        }
        let fallback = match fallback {
            Some(f) => {
                let mut arr = Box::new([0 as Rank; 256]);
                for (b, id) in f.into_iter().enumerate() {
                    claim(id, TokenKind::ByteFallback, vec![b as u8], &|| {
                        format!("<0x{b:02X}>")
                    })?;
                    arr[b] = id;
                }
                Some(arr)
            }
            None => None,
        };

        let mut offsets = Vec::with_capacity(n + 1);
        let mut bytes = Vec::new();
        let mut kind = Vec::with_capacity(n);
        offsets.push(0u32);
        for slot in table {
            match slot {
                Some((k, b)) => {
                    bytes.extend_from_slice(&b);
                    kind.push(k);
                }
                None => kind.push(TokenKind::Unused),
            }
            let end = u32::try_from(bytes.len())
                .map_err(|_| TokforgeError::InvalidVocab("vocabulary bytes exceed 4 GiB".into()))?;
            offsets.push(end);
        }
        let byte_level = (0..=255u8).all(|b| encoder.contains_key(&[b][..]));
        Ok(Vocab {
            encoder,
            specials: special_map,
            special_ids,
            fallback,
            offsets,
            bytes,
            kind,
            byte_level,
        })
    }

    /// The rank of a mergeable token.
    #[inline]
    pub fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        self.encoder.get(bytes).copied()
    }

    /// The id of a special token.
    pub fn special_id(&self, text: &str) -> Option<Rank> {
        self.specials.get(text).copied()
    }

    /// The text of a special token id.
    pub fn special_text(&self, id: Rank) -> Option<&str> {
        self.special_ids.get(&id).map(String::as_str)
    }

    /// Special tokens, sorted by id.
    pub fn specials(&self) -> Vec<(&str, Rank)> {
        let mut v: Vec<_> = self
            .specials
            .iter()
            .map(|(s, &i)| (s.as_str(), i))
            .collect();
        v.sort_by_key(|&(_, i)| i);
        v
    }

    /// The byte-fallback id for byte `b`, when the vocabulary has byte fallback.
    #[inline]
    pub fn fallback_id(&self, b: u8) -> Option<Rank> {
        self.fallback.as_ref().map(|f| f[b as usize])
    }

    /// Whether this vocabulary has `<0xNN>` byte-fallback tokens.
    pub fn has_byte_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Whether every single byte is an ordinary token, so that any text can be encoded.
    pub fn is_byte_level(&self) -> bool {
        self.byte_level
    }

    /// The bytes an id decodes to (a special token's UTF-8 text, a fallback token's one byte).
    #[inline]
    pub fn token_bytes(&self, id: Rank) -> Option<&[u8]> {
        let i = id as usize;
        match self.kind.get(i) {
            Some(TokenKind::Unused) | None => None,
            Some(_) => Some(&self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]),
        }
    }

    /// What an id is.
    pub fn kind(&self, id: Rank) -> TokenKind {
        self.kind
            .get(id as usize)
            .copied()
            .unwrap_or(TokenKind::Unused)
    }

    /// One more than the largest id (tiktoken's `n_vocab`).
    pub fn n_ids(&self) -> usize {
        self.kind.len()
    }

    /// Number of ordinary (mergeable) tokens.
    pub fn n_ordinary(&self) -> usize {
        self.encoder.len()
    }

    /// Ordinary tokens as `(bytes, rank)`, sorted by rank.
    pub fn ordinary_tokens(&self) -> Vec<(&[u8], Rank)> {
        let mut v: Vec<_> = self
            .encoder
            .iter()
            .map(|(b, &r)| (b.as_slice(), r))
            .collect();
        v.sort_by_key(|&(_, r)| r);
        v
    }

    /// The byte-fallback ids, index = byte value.
    pub fn fallback_ids(&self) -> Option<&[Rank; 256]> {
        self.fallback.as_deref()
    }

    /// Appends the bytes of `ids` to `out`; fails on the first unknown id.
    pub fn decode_into(&self, ids: &[Rank], out: &mut Vec<u8>) -> Result<()> {
        for &id in ids {
            match self.token_bytes(id) {
                Some(b) => out.extend_from_slice(b),
                None => return Err(TokforgeError::UnknownToken(id as u64)),
            }
        }
        Ok(())
    }
}

/// A short printable form of token bytes, for error messages.
pub(crate) fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn byte_vocab() -> Vec<(Vec<u8>, Rank)> {
        (0..=255u8).map(|b| (vec![b], b as Rank)).collect()
    }

    #[test]
    fn byte_level_vocab_with_gap_and_specials() {
        let mut ranks = byte_vocab();
        ranks.push((b"ab".to_vec(), 256));
        let v = Vocab::new(ranks, vec![("<|eot|>".into(), 300)], None).unwrap();
        assert!(v.is_byte_level());
        assert_eq!(v.n_ids(), 301);
        assert_eq!(v.token_bytes(256), Some(&b"ab"[..]));
        assert_eq!(v.token_bytes(280), None);
        assert_eq!(v.kind(300), TokenKind::Special);
        assert_eq!(v.token_bytes(300), Some(&b"<|eot|>"[..]));
        let mut out = Vec::new();
        assert!(matches!(
            v.decode_into(&[97, 280], &mut out),
            Err(TokforgeError::UnknownToken(280))
        ));
    }

    #[test]
    fn duplicates_are_rejected() {
        let mut ranks = byte_vocab();
        ranks.push((b"a".to_vec(), 256));
        assert!(matches!(
            Vocab::new(ranks, vec![], None),
            Err(TokforgeError::InvalidVocab(_))
        ));
        let mut ranks = byte_vocab();
        ranks.push((b"ab".to_vec(), 255));
        assert!(matches!(
            Vocab::new(ranks, vec![], None),
            Err(TokforgeError::InvalidVocab(_))
        ));
        assert!(Vocab::new(byte_vocab(), vec![("x".into(), 3)], None).is_err());
        assert!(Vocab::new(vec![(vec![], 0)], vec![], None).is_err());
    }

    #[test]
    fn fallback_ids_decode_to_single_bytes() {
        let ranks = vec![(b"a".to_vec(), 256), (b"b".to_vec(), 257)];
        let v = Vocab::new(ranks, vec![], Some((0..256).collect())).unwrap();
        assert!(!v.is_byte_level());
        assert_eq!(v.fallback_id(0xE2), Some(0xE2));
        assert_eq!(v.kind(0xE2), TokenKind::ByteFallback);
        assert_eq!(v.token_bytes(0xE2), Some(&[0xE2u8][..]));
    }
}
