//! Pre-tokenizers: the second stage of a tokenizer.json pipeline, which cuts a normalized
//! stretch into words.

use std::ops::Range;

use super::byte_level::byte_to_char;
use crate::error::Result;
use crate::pretokenize::Pretokenizer;

/// How a split keeps the delimiters it finds (`tokenizers`' `SplitDelimiterBehavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

/// What a split looks for.
#[derive(Debug)]
pub enum Matcher {
    /// A regex: fancy-regex, or for a known pattern its hand-written scanner (see [`compile`]).
    Pattern(Box<dyn Pretokenizer>),
    /// A literal string; non-overlapping occurrences, left to right.
    Literal(String),
    /// One character; each occurrence is a match.
    Char(char),
    /// Every character for which the predicate holds is one match.
    Chars(fn(char) -> bool),
}

impl Matcher {
    /// The whole of `s` as (range, is a match) parts, in order, into `out` (cleared first), as
    /// `tokenizers`' `find_matches` makes them.
    pub(crate) fn find(
        &self,
        s: &str,
        invert: bool,
        out: &mut Vec<(Range<usize>, bool)>,
    ) -> Result<()> {
        out.clear();
        let mut prev = 0;
        let mut push_match = |out: &mut Vec<(Range<usize>, bool)>, r: Range<usize>| {
            if prev != r.start {
                out.push((prev..r.start, false));
            }
            prev = r.end;
            out.push((r, true));
        };
        match self {
            Matcher::Pattern(p) => {
                let mut ranges = Vec::new();
                p.split(s, &mut ranges)?;
                for r in ranges {
                    push_match(out, r);
                }
            }
            Matcher::Literal(p) => {
                if !p.is_empty() {
                    for (i, m) in s.match_indices(p.as_str()) {
                        push_match(out, i..i + m.len());
                    }
                }
            }
            Matcher::Char(c) => {
                for (i, m) in s.match_indices(*c) {
                    push_match(out, i..i + m.len());
                }
            }
            Matcher::Chars(f) => {
                for (i, c) in s.char_indices() {
                    if f(c) {
                        push_match(out, i..i + c.len_utf8());
                    }
                }
            }
        }
        if prev != s.len() {
            out.push((prev..s.len(), false));
        }
        if invert {
            for part in out.iter_mut() {
                part.1 = !part.1;
            }
        }
        Ok(())
    }
}

/// The parts of `s` that a split with `behavior` keeps (before dropping empty ones).
fn split_parts(parts: Vec<(Range<usize>, bool)>, behavior: Behavior) -> Vec<Range<usize>> {
    match behavior {
        Behavior::Isolated => parts.into_iter().map(|(r, _)| r).collect(),
        Behavior::Removed => parts
            .into_iter()
            .filter(|(_, m)| !m)
            .map(|(r, _)| r)
            .collect(),
        Behavior::Contiguous => join_parts(parts.into_iter(), |m, previous| m == previous),
        Behavior::MergedWithPrevious => join_parts(parts.into_iter(), |m, previous| m && !previous),
        Behavior::MergedWithNext => {
            // Right to left: a match joins the part after it.
            let mut acc = join_parts(parts.into_iter().rev(), |m, previous| m && !previous);
            acc.reverse();
            acc
        }
    }
}

/// Folds parts, in the order given, into the previous kept part when `joins(this is a match,
/// the previous part was a match)`; `tokenizers`' folds for the merged behaviors.
fn join_parts(
    parts: impl Iterator<Item = (Range<usize>, bool)>,
    joins: impl Fn(bool, bool) -> bool,
) -> Vec<Range<usize>> {
    let mut acc: Vec<Range<usize>> = Vec::new();
    let mut previous = false;
    for (r, m) in parts {
        match acc.last_mut() {
            Some(last) if joins(m, previous) => {
                last.start = last.start.min(r.start);
                last.end = last.end.max(r.end);
            }
            _ => acc.push(r),
        }
        previous = m;
    }
    acc
}

/// Where `Metaspace` adds its replacement character in front of a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrependScheme {
    Always,
    First,
    Never,
}

/// One pre-tokenizer step.
#[derive(Debug)]
pub enum PreTokenizerStep {
    /// Splits with a matcher; `invert` swaps matches and the text between them.
    Split {
        matcher: Matcher,
        behavior: Behavior,
        invert: bool,
    },
    /// Spaces become `replacement`, which is prepended per `prepend` (unless the word already
    /// starts with it); with `split`, each `replacement` starts a new word.
    Metaspace {
        replacement: char,
        prepend: PrependScheme,
        split: bool,
    },
    /// Prepends a space (if `add_prefix_space` and the word does not start with one), then
    /// splits with [`BYTE_LEVEL_PATTERN`] if `regex` is set; the model then sees bytes.
    ByteLevel {
        add_prefix_space: bool,
        regex: Option<Matcher>,
    },
    /// Rewrites each word as `tokenizers`' ByteLevel leaves it (each byte as its printable
    /// character), for the steps that follow a ByteLevel pre-tokenizer: they see that text.
    /// The pipeline maps the words back to bytes before the model.
    ByteMap,
    /// Cuts each word into pieces of `n` characters (the last may be shorter).
    FixedLength(usize),
}

/// The words of a stretch between pre-tokenizer steps, as byte ranges into text buffers (the
/// normalized stretch, plus one buffer per word a step rewrote): splitting allocates nothing.
pub(crate) struct Words {
    pub(crate) bufs: Vec<String>,
    pub(crate) items: Vec<WordRef>,
}

/// One word: `bufs[buf][range]`, and whether it starts at offset 0 of the input.
#[derive(Clone)]
pub(crate) struct WordRef {
    pub(crate) buf: usize,
    pub(crate) range: Range<usize>,
    pub(crate) at_origin: bool,
}

impl Words {
    pub(crate) fn text(&self, w: &WordRef) -> &str {
        &self.bufs[w.buf][w.range.clone()]
    }
}

impl PreTokenizerStep {
    pub(crate) fn apply(
        &self,
        words: &mut Words,
        scratch: &mut Vec<(Range<usize>, bool)>,
    ) -> Result<()> {
        let items = std::mem::take(&mut words.items);
        let mut out = Vec::with_capacity(items.len() * 2);
        for w in items {
            match self {
                PreTokenizerStep::Split {
                    matcher,
                    behavior,
                    invert,
                } => {
                    matcher.find(words.text(&w), *invert, scratch)?;
                    push_parts(&mut out, &w, scratch, *behavior);
                }
                PreTokenizerStep::Metaspace {
                    replacement,
                    prepend,
                    split,
                } => {
                    let mut text = words
                        .text(&w)
                        .replace(' ', replacement.encode_utf8(&mut [0; 4]));
                    let add = match prepend {
                        PrependScheme::Always => true,
                        PrependScheme::First => w.at_origin,
                        PrependScheme::Never => false,
                    };
                    if add && !text.starts_with(*replacement) {
                        text.insert(0, *replacement);
                    }
                    let w = WordRef {
                        buf: words.bufs.len(),
                        range: 0..text.len(),
                        at_origin: w.at_origin,
                    };
                    words.bufs.push(text);
                    if *split {
                        Matcher::Char(*replacement).find(words.text(&w), false, scratch)?;
                        push_parts(&mut out, &w, scratch, Behavior::MergedWithNext);
                    } else if !w.range.is_empty() {
                        out.push(w);
                    }
                }
                PreTokenizerStep::FixedLength(n) => {
                    let text = words.text(&w);
                    let mut start = 0;
                    let mut count = 0;
                    for (i, _) in text.char_indices() {
                        if count == *n {
                            out.push(WordRef {
                                buf: w.buf,
                                range: w.range.start + start..w.range.start + i,
                                at_origin: w.at_origin && start == 0,
                            });
                            start = i;
                            count = 0;
                        }
                        count += 1;
                    }
                    if start < text.len() {
                        out.push(WordRef {
                            buf: w.buf,
                            range: w.range.start + start..w.range.end,
                            at_origin: w.at_origin && start == 0,
                        });
                    }
                }
                PreTokenizerStep::ByteMap => {
                    let table = byte_to_char();
                    let text: String = words.text(&w).bytes().map(|b| table[b as usize]).collect();
                    let w = WordRef {
                        buf: words.bufs.len(),
                        range: 0..text.len(),
                        at_origin: w.at_origin,
                    };
                    words.bufs.push(text);
                    out.push(w);
                }
                PreTokenizerStep::ByteLevel {
                    add_prefix_space,
                    regex,
                } => {
                    let mut w = w;
                    if *add_prefix_space && !words.text(&w).starts_with(' ') {
                        let text = format!(" {}", words.text(&w));
                        w = WordRef {
                            buf: words.bufs.len(),
                            range: 0..text.len(),
                            at_origin: w.at_origin,
                        };
                        words.bufs.push(text);
                    }
                    match regex {
                        Some(re) => {
                            re.find(words.text(&w), false, scratch)?;
                            push_parts(&mut out, &w, scratch, Behavior::Isolated);
                        }
                        None if !w.range.is_empty() => out.push(w),
                        None => {}
                    }
                }
            }
        }
        words.items = out;
        Ok(())
    }
}

/// Appends the non-empty parts a split of `w` keeps.
fn push_parts(
    out: &mut Vec<WordRef>,
    w: &WordRef,
    parts: &mut Vec<(Range<usize>, bool)>,
    behavior: Behavior,
) {
    for r in split_parts(std::mem::take(parts), behavior) {
        if r.start < r.end {
            out.push(WordRef {
                buf: w.buf,
                at_origin: w.at_origin && r.start == 0,
                range: w.range.start + r.start..w.range.start + r.end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_behaviors_match_tokenizers_docs() {
        // The examples of `SplitDelimiterBehavior` in tokenizers' docs, splitting on '-' in
        // "the-final--countdown".
        let s = "the-final--countdown";
        let m = Matcher::Literal("-".into());
        let run = |b| {
            let mut parts = Vec::new();
            m.find(s, false, &mut parts).unwrap();
            split_parts(parts, b)
                .into_iter()
                .filter(|r| r.start < r.end)
                .map(|r| &s[r])
                .collect::<Vec<_>>()
        };
        assert_eq!(run(Behavior::Removed), ["the", "final", "countdown"]);
        assert_eq!(
            run(Behavior::Isolated),
            ["the", "-", "final", "-", "-", "countdown"]
        );
        assert_eq!(
            run(Behavior::MergedWithPrevious),
            ["the-", "final-", "-", "countdown"]
        );
        assert_eq!(
            run(Behavior::MergedWithNext),
            ["the", "-final", "-", "-countdown"]
        );
        assert_eq!(
            run(Behavior::Contiguous),
            ["the", "-", "final", "--", "countdown"]
        );
    }
}
