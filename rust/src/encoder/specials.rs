//! Special tokens: which a call allows, and finding them in text (leftmost, then longest).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};

use crate::error::{Result, TokforgeError};
use crate::vocab::{Rank, Vocab};

/// Which special tokens a call treats as special (`allowed`) and which make it fail when their
/// text appears (`disallowed`); the rest are encoded as ordinary text. Indexed like
/// [`Encoder::special_tokens`].
#[derive(Debug, Clone, Default)]
pub struct SpecialPolicy {
    pub(super) allowed: Vec<bool>,
    pub(super) disallowed: Vec<bool>,
}

impl SpecialPolicy {
    pub(super) fn any(&self) -> bool {
        self.allowed.iter().chain(&self.disallowed).any(|&b| b)
    }
}

/// An encoder's special tokens in id order, and a matcher over their texts.
#[derive(Debug)]
pub(super) struct Specials {
    pub(super) list: Vec<(String, Rank)>,
    matcher: Option<AhoCorasick>,
}

impl Specials {
    pub(super) fn new(vocab: &Vocab) -> Result<Self> {
        let list: Vec<(String, Rank)> = vocab
            .specials()
            .into_iter()
            .map(|(s, i)| (s.to_string(), i))
            .collect();
        let matcher = if list.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(list.iter().map(|(s, _)| s.as_bytes()))
                    .map_err(|e| TokforgeError::InvalidVocab(format!("special tokens: {e}")))?,
            )
        };
        Ok(Specials { list, matcher })
    }

    /// Whether a call with `policy` needs to look for special tokens at all.
    pub(super) fn active(&self, policy: &SpecialPolicy) -> bool {
        self.matcher.is_some() && policy.any()
    }

    /// The next special token at or after `from` that `policy` allows, as (start, end, id); a
    /// disallowed one is an error, any other is text, and the search resumes one byte after its
    /// start (as tiktoken does).
    pub(super) fn next_allowed(
        &self,
        text: &str,
        mut from: usize,
        policy: &SpecialPolicy,
    ) -> Result<Option<(usize, usize, Rank)>> {
        let Some(matcher) = &self.matcher else {
            return Ok(None);
        };
        loop {
            match matcher.find(Input::new(text).range(from..)) {
                None => return Ok(None),
                Some(m) => {
                    let k = m.pattern().as_usize();
                    if policy.allowed[k] {
                        return Ok(Some((m.start(), m.end(), self.list[k].1)));
                    }
                    if policy.disallowed[k] {
                        return Err(TokforgeError::DisallowedSpecial(self.list[k].0.clone()));
                    }
                    from = m.start() + 1;
                }
            }
        }
    }
}
