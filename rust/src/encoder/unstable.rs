//! tiktoken's `encode_with_unstable`: the stable tokens of a text and every way its last piece
//! could continue.

use rustc_hash::FxHashSet;

use super::{initial_capacity, with_ranges, Encoder, SpecialPolicy};
use crate::error::Result;
use crate::vocab::Rank;

impl Encoder {
    /// Ordinary token bytes in sorted order.
    pub fn sorted_token_bytes(&self) -> &[Vec<u8>] {
        self.sorted_tokens.get_or_init(|| {
            let mut v: Vec<Vec<u8>> = self
                .vocab
                .ordinary_tokens()
                .into_iter()
                .map(|(b, _)| b.to_vec())
                .collect();
            v.sort();
            v
        })
    }

    /// A split can disappear when text is appended ("\n" + " " may become one "\n \n"-like
    /// piece under cl100k's `\s*[\r\n]+`): a trailing run of all-whitespace tokens before the
    /// last piece's `last` tokens counts as part of it (tiktoken's
    /// `_increase_last_piece_token_len`).
    fn widen_last_piece(&self, tokens: &[Rank], last: &mut usize) {
        let all_space = |id: Rank| {
            self.vocab
                .token_bytes(id)
                .is_some_and(|b| b.iter().all(|c| matches!(c, b' ' | b'\n' | b'\t')))
        };
        if *last > 0 && all_space(tokens[tokens.len() - *last]) {
            while *last < tokens.len() && all_space(tokens[tokens.len() - *last - 1]) {
                *last += 1;
            }
        }
    }

    /// Encodes bytes that need not be valid UTF-8, as tiktoken's `_encode_bytes`: valid UTF-8 is
    /// encoded as ordinary text; otherwise its valid prefix is, then the tokens of the prefix's
    /// last piece (widened as for `encode_with_unstable`) are taken back and their bytes, with the
    /// invalid rest, become one token if they are one, else are merged as a single piece.
    pub fn encode_bytes(&self, bytes: &[u8]) -> Result<Vec<Rank>> {
        self.rank_pretokenizer("_encode_bytes")?;
        let valid = match std::str::from_utf8(bytes) {
            Ok(text) => return self.encode_ordinary(text),
            Err(e) => e.valid_up_to(),
        };
        let text = std::str::from_utf8(&bytes[..valid]).expect("checked valid up to here");
        let mut last = 0;
        let mut tokens = Vec::with_capacity(initial_capacity(text));
        with_ranges(|ranges| -> Result<()> {
            last = self.encode_stretch(text, true, ranges, &mut tokens)?;
            Ok(())
        })?;
        self.widen_last_piece(&tokens, &mut last);
        let mut unstable = Vec::new();
        if !tokens.is_empty() && last > 0 {
            unstable = self.decode_bytes(&tokens[tokens.len() - last..])?;
            tokens.truncate(tokens.len() - last);
        }
        unstable.extend_from_slice(&bytes[valid..]);
        match self.vocab.rank(&unstable) {
            Some(id) => tokens.push(id),
            None => self.encode_piece(&unstable, &mut tokens)?,
        }
        Ok(tokens)
    }

    /// Stable tokens of `text` and the set of token sequences that could complete its last piece
    /// (tiktoken's `encode_with_unstable`, same results).
    pub fn encode_with_unstable(
        &self,
        text: &str,
        policy: &SpecialPolicy,
    ) -> Result<(Vec<Rank>, Vec<Vec<Rank>>)> {
        self.rank_pretokenizer("encode_with_unstable")?;
        let (mut tokens, mut last) = self.encode_with_policy(text, policy)?;
        if last == 0 {
            return Ok((tokens, Vec::new()));
        }
        self.widen_last_piece(&tokens, &mut last);
        let unstable = self.decode_bytes(&tokens[tokens.len() - last..])?;
        tokens.truncate(tokens.len() - last);
        let mut completions: FxHashSet<Vec<Rank>> = FxHashSet::default();
        if unstable.is_empty() {
            return Ok((tokens, Vec::new()));
        }
        let sorted = self.sorted_token_bytes();
        fn with_prefix<'a>(
            sorted: &'a [Vec<u8>],
            p: &'a [u8],
        ) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
            let lo = sorted.partition_point(|t| t.as_slice() < p);
            sorted[lo..].iter().take_while(move |t| t.starts_with(p))
        }
        // Single tokens that extend the unstable bytes.
        for t in with_prefix(sorted, &unstable) {
            completions.insert(vec![self.vocab.rank(t).expect("sorted tokens are tokens")]);
        }
        // A token straddling the end at every other position: re-encode prefix + token.
        for i in 1..unstable.len() {
            let (prefix, suffix) = unstable.split_at(i);
            for t in with_prefix(sorted, suffix) {
                let mut possible = prefix.to_vec();
                possible.extend_from_slice(t);
                let encoded = match std::str::from_utf8(&possible) {
                    Ok(s) => self.encode_ordinary(s)?,
                    Err(_) => {
                        let mut v = Vec::new();
                        self.encode_piece(&possible, &mut v)?;
                        v
                    }
                };
                let mut seq = Vec::new();
                let mut len = 0;
                for id in encoded {
                    seq.push(id);
                    len += self.vocab.token_bytes(id).map_or(0, <[u8]>::len);
                    if len >= unstable.len() {
                        break;
                    }
                }
                completions.insert(seq);
            }
        }
        // Regex splits are not stable either: `\s+(?!\S)` can split a trailing whitespace run
        // once more text follows, so the run minus its last character becomes possible.
        if unstable.len() > 1 {
            if let Some((c, w)) = last_char(&unstable) {
                if c.is_whitespace() && unstable.len() > w {
                    let mut v = Vec::new();
                    self.encode_piece(&unstable[..unstable.len() - w], &mut v)?;
                    self.encode_piece(&unstable[unstable.len() - w..], &mut v)?;
                    completions.insert(v);
                }
            }
        }
        let mut completions: Vec<Vec<Rank>> = completions.into_iter().collect();
        completions.sort();
        Ok((tokens, completions))
    }
}

/// The last character of `bytes` when it is valid UTF-8 there, with its width in bytes.
fn last_char(bytes: &[u8]) -> Option<(char, usize)> {
    let start = bytes.len().saturating_sub(4);
    (start..bytes.len()).find_map(|i| {
        std::str::from_utf8(&bytes[i..]).ok().and_then(|s| {
            let mut it = s.chars();
            let c = it.next()?;
            it.next().is_none().then_some((c, bytes.len() - i))
        })
    })
}
