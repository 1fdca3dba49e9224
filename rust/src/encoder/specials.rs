//! Special tokens: which a call allows, and finding them in text (leftmost, then longest).
//!
//! The rule, tiktoken's: a call fails when the text holds a disallowed special token's text
//! anywhere, even inside or across an allowed one; otherwise the text is cut at the allowed
//! special tokens. Where allowed ones overlap, tokforge takes the leftmost, then the longest
//! (tiktoken takes whichever its hash map lists first); a special token's text that is neither
//! allowed nor disallowed is ordinary text, and the search for the next one resumes one byte
//! after its start, as tiktoken's does.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};

use crate::error::{Result, TokforgeError};
use crate::vocab::{Rank, Vocab};

/// Special tokens whose texts add up to more bytes than this are matched by a contiguous NFA
/// rather than a DFA: the DFA's construction grows with the square of a long token's length (a
/// 20 000-byte token took 13 s, a 100 000-byte one minutes), the NFA's linearly.
pub const DFA_MAX_BYTES: usize = 1024;

/// Which special tokens a call treats as special (`allowed`) and which make it fail when their
/// text appears (`disallowed`, which wins over `allowed`); the rest are encoded as ordinary
/// text. Indexed like [`Encoder::special_tokens`].
#[derive(Debug, Clone, Default)]
pub struct SpecialPolicy {
    pub(super) allowed: Vec<bool>,
    pub(super) disallowed: Vec<bool>,
}

impl SpecialPolicy {
    pub(super) fn any(&self) -> bool {
        self.allowed.iter().chain(&self.disallowed).any(|&b| b)
    }

    /// Whether the cutting loop alone can miss a disallowed token: it sees every occurrence only
    /// when no token is allowed (nothing is jumped over) and every token is disallowed (the
    /// longest match at a position stands for the shorter ones there).
    fn needs_full_check(&self) -> bool {
        let any_disallowed = self.disallowed.iter().any(|&b| b);
        let all_disallowed = self.disallowed.iter().all(|&b| b);
        let any_allowed = self.allowed.iter().any(|&b| b);
        any_disallowed && (any_allowed || !all_disallowed)
    }
}

/// An encoder's special tokens in id order, and matchers over their texts.
#[derive(Debug)]
pub(super) struct Specials {
    pub(super) list: Vec<(String, Rank)>,
    /// Leftmost-longest, for cutting.
    matcher: Option<AhoCorasick>,
    /// Every occurrence, overlapping ones included, for the disallowed check; built on first use.
    every: OnceLock<std::result::Result<AhoCorasick, String>>,
}

/// A matcher over special-token texts with `kind` semantics, built in time linear in their
/// total length (see [`DFA_MAX_BYTES`]). Training cuts text with one too.
pub fn special_matcher<S: AsRef<str>>(
    texts: &[S],
    kind: MatchKind,
) -> std::result::Result<AhoCorasick, aho_corasick::BuildError> {
    let bytes: usize = texts.iter().map(|s| s.as_ref().len()).sum();
    let mut builder = AhoCorasickBuilder::new();
    builder.match_kind(kind);
    if bytes > DFA_MAX_BYTES {
        builder.kind(Some(AhoCorasickKind::ContiguousNFA));
    }
    builder.build(texts.iter().map(|s| s.as_ref().as_bytes()))
}

fn automaton(list: &[(String, Rank)], kind: MatchKind) -> Result<AhoCorasick> {
    let texts: Vec<&str> = list.iter().map(|(s, _)| s.as_str()).collect();
    special_matcher(&texts, kind)
        .map_err(|e| TokforgeError::InvalidVocab(format!("special tokens: {e}")))
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
            Some(automaton(&list, MatchKind::LeftmostLongest)?)
        };
        Ok(Specials {
            list,
            matcher,
            every: OnceLock::new(),
        })
    }

    /// The kind of automaton that cuts text at special tokens (`None` without special tokens).
    #[cfg(test)]
    pub(super) fn matcher_kind(&self) -> Option<AhoCorasickKind> {
        self.matcher.as_ref().map(AhoCorasick::kind)
    }

    /// Whether a call with `policy` needs to look for special tokens at all.
    pub(super) fn active(&self, policy: &SpecialPolicy) -> bool {
        self.matcher.is_some() && policy.any()
    }

    /// Fails when a special token that `policy` disallows occurs anywhere in `text`, naming the
    /// leftmost occurrence (the longest of those starting there). Only done when the cutting
    /// loop could miss one (see [`SpecialPolicy::needs_full_check`]).
    pub(super) fn check_disallowed(&self, text: &str, policy: &SpecialPolicy) -> Result<()> {
        if self.matcher.is_none() || !policy.needs_full_check() {
            return Ok(());
        }
        let every = self
            .every
            .get_or_init(|| automaton(&self.list, MatchKind::Standard).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| TokforgeError::InvalidVocab(e.clone()))?;
        let longest = self.list.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
        // Overlapping matches come in order of their end, so once one ends past the best
        // start plus the longest token, no match can start before the best one.
        let mut best: Option<(usize, usize, usize)> = None;
        for m in every.find_overlapping_iter(text) {
            if let Some((start, _, _)) = best {
                if m.end() >= start + longest {
                    break;
                }
            }
            let k = m.pattern().as_usize();
            if !policy.disallowed[k] {
                continue;
            }
            let better = match best {
                None => true,
                Some((s, e, _)) => m.start() < s || (m.start() == s && m.end() > e),
            };
            if better {
                best = Some((m.start(), m.end(), k));
            }
        }
        match best {
            Some((_, _, k)) => Err(TokforgeError::DisallowedSpecial(self.list[k].0.clone())),
            None => Ok(()),
        }
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
                    if policy.disallowed[k] {
                        return Err(TokforgeError::DisallowedSpecial(self.list[k].0.clone()));
                    }
                    if policy.allowed[k] {
                        return Ok(Some((m.start(), m.end(), self.list[k].1)));
                    }
                    from = m.start() + 1;
                }
            }
        }
    }
}
