//! Any regex as a pretokenizer, through fancy-regex (lookaround, possessive quantifiers).

use std::ops::Range;

use super::patterns::preset_of_pattern;
use super::{Pretokenizer, PretokenizerSpec};
use crate::error::{Result, TokforgeError};

/// A regex pretokenizer: the pieces are the regex's successive leftmost matches, and text
/// between matches is dropped (the presets match every character, so they drop nothing).
#[derive(Debug)]
pub struct RegexPretokenizer {
    pattern: String,
    regex: fancy_regex::Regex,
}

impl RegexPretokenizer {
    /// Compiles `pattern` (fancy-regex syntax: `\p{..}`, lookaround, possessive quantifiers).
    pub fn new(pattern: &str) -> Result<Self> {
        let regex = fancy_regex::RegexBuilder::new(pattern)
            // A pathological user pattern must end in a clear error, not hang: fancy-regex counts
            // backtracking steps and fails past this limit. The presets stay far below it.
            .backtrack_limit(10_000_000)
            .build()
            .map_err(|e| TokforgeError::InvalidPattern {
                pattern: pattern.to_string(),
                reason: e.to_string(),
            })?;
        Ok(RegexPretokenizer {
            pattern: pattern.to_string(),
            regex,
        })
    }

    /// The regex source.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

impl Pretokenizer for RegexPretokenizer {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> Result<()> {
        for m in self.regex.find_iter(text) {
            let m = m.map_err(|e| TokforgeError::RegexRuntime(e.to_string()))?;
            // An empty match carries no text and would become an empty piece: skip it, as
            // tiktoken's BPE of an empty piece yields nothing either.
            if m.start() < m.end() {
                out.push(m.start()..m.end());
            }
        }
        Ok(())
    }

    fn spec(&self) -> PretokenizerSpec {
        let preset = preset_of_pattern(&self.pattern).map(str::to_string);
        PretokenizerSpec::Regex {
            pattern: self.pattern.clone(),
            preset,
        }
    }
}
