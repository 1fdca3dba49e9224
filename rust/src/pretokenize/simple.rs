//! The pretokenizers without a regex: whitespace runs, and no split at all.

use std::ops::Range;

use super::{Pretokenizer, PretokenizerSpec};
use crate::error::Result;

/// Alternating runs of whitespace and of non-whitespace characters (Unicode `White_Space`).
/// Lossless: the pieces concatenate to the input. `"low  lower"` -> `low`, `  `, `lower`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhitespacePretokenizer;

impl Pretokenizer for WhitespacePretokenizer {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> Result<()> {
        let mut start = 0;
        let mut in_space: Option<bool> = None;
        for (i, c) in text.char_indices() {
            let sp = c.is_whitespace();
            match in_space {
                Some(prev) if prev != sp => {
                    out.push(start..i);
                    start = i;
                }
                _ => {}
            }
            in_space = Some(sp);
        }
        if start < text.len() {
            out.push(start..text.len());
        }
        Ok(())
    }

    fn spec(&self) -> PretokenizerSpec {
        PretokenizerSpec::Whitespace
    }
}

/// No split: the whole text is one piece (BPE over the entire input).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPretokenizer;

impl Pretokenizer for NoPretokenizer {
    fn split(&self, text: &str, out: &mut Vec<Range<usize>>) -> Result<()> {
        if !text.is_empty() {
            out.push(0..text.len());
        }
        Ok(())
    }

    fn spec(&self) -> PretokenizerSpec {
        PretokenizerSpec::None
    }
}
