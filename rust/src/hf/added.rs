//! Added tokens with `normalized: true`: `tokenizers` matches them in the normalized text (after
//! cutting the non-normalized ones out of the raw text), and matches the token's own content
//! normalized too. With a `Prepend("▁")` normalizer, `</s>` is looked for as `▁</s>`, so
//! `"hello </s>"` is `▁hello` + `</s>`, not `▁hello` + `▁` + `</s>`.

use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::error::{Result, TokforgeError};
use crate::vocab::Rank;

/// The normalized added tokens of a pipeline, found leftmost-longest (as `tokenizers`' and
/// SentencePiece's matchers do).
#[derive(Debug)]
pub struct NormalizedAdded {
    matcher: AhoCorasick,
    ids: Vec<Rank>,
}

impl NormalizedAdded {
    /// A matcher for `(pattern, id)`: each pattern is the token's content as the pipeline's
    /// normalizers make it (or as it is, for SentencePiece's USER_DEFINED pieces).
    pub fn new(tokens: Vec<(String, Rank)>) -> Result<Self> {
        let (patterns, ids): (Vec<String>, Vec<Rank>) = tokens.into_iter().unzip();
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(|e| TokforgeError::InvalidVocab(format!("normalized added tokens: {e}")))?;
        Ok(NormalizedAdded { matcher, ids })
    }

    /// The stretches of `text` in order: `(range, None)` between matches, `(range, Some(id))`
    /// for a match.
    pub fn segments(&self, text: &str) -> Vec<(Range<usize>, Option<Rank>)> {
        let mut out = Vec::new();
        let mut pos = 0;
        for m in self.matcher.find_iter(text) {
            if m.start() > pos {
                out.push((pos..m.start(), None));
            }
            out.push((m.start()..m.end(), Some(self.ids[m.pattern().as_usize()])));
            pos = m.end();
        }
        if pos < text.len() {
            out.push((pos..text.len(), None));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftmost_longest_with_gaps_between() {
        let a = NormalizedAdded::new(vec![("▁</s>".into(), 2), ("▁<".into(), 9)]).unwrap();
        assert_eq!(
            a.segments("▁hello▁</s>x"),
            vec![(0..8, None), (8..15, Some(2)), (15..16, None)]
        );
    }
}
