//! tiktoken's `.tiktoken` rank files: one `base64 token` and its rank per line.

use base64::Engine;

use super::{check_id, B64};
use crate::error::{Result, TokforgeError};
use crate::vocab::{Rank, Vocab};

/// Parses the text of a `.tiktoken` rank file: one `base64 rank` pair per line.
/// `path` is only used in error messages.
pub fn parse_tiktoken(text: &[u8], path: &str) -> Result<Vec<(Vec<u8>, Rank)>> {
    let bad = |line: usize, reason: String| TokforgeError::BadVocabFile {
        path: path.to_string(),
        line,
        reason,
    };
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = 1 + text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        bad(line, "not UTF-8 text".into())
    })?;
    let mut out = Vec::new();
    let mut seen_tokens = rustc_hash::FxHashSet::default();
    let mut seen_ranks = rustc_hash::FxHashSet::default();
    let mut empty = 0usize;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let (tok, rank) = match (parts.next(), parts.next(), parts.next()) {
            (Some(t), Some(r), None) => (t, r),
            _ => {
                return Err(bad(
                    n,
                    format!("expected `<base64 token> <rank>`, got {:?}", trunc(line)),
                ))
            }
        };
        let rank: Rank = rank
            .parse()
            .map_err(|_| bad(n, format!("bad rank {:?}", trunc(rank))))?;
        if !seen_ranks.insert(rank) {
            return Err(bad(n, format!("rank {rank} appears twice")));
        }
        // An empty token (`=`, as Whisper's multilingual.tiktoken has at rank 50256): tiktoken
        // accepts it, and byte pair encoding can never produce it, so its rank stays unused.
        if tok.bytes().all(|b| b == b'=') {
            empty += 1;
            continue;
        }
        let bytes = B64
            .decode(tok)
            .map_err(|e| bad(n, format!("bad base64 {:?}: {e}", trunc(tok))))?;
        if bytes.is_empty() {
            empty += 1;
            continue;
        }
        if !seen_tokens.insert(bytes.clone()) {
            return Err(bad(n, format!("token {tok} appears twice")));
        }
        out.push((bytes, rank));
    }
    if out.is_empty() {
        return Err(bad(0, "no tokens in file".into()));
    }
    if let Some((i, (_, r))) = out.iter().enumerate().max_by_key(|(_, (_, r))| *r) {
        check_id(*r as u64, out.len() + empty, "rank").map_err(|reason| {
            // Name the line: the i-th token line, counting the blank lines skipped before it.
            let line = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .nth(i)
                .map_or(0, |(n, _)| n + 1);
            bad(line, reason)
        })?;
    }
    Ok(out)
}

fn trunc(s: &str) -> String {
    if s.len() <= 60 {
        return s.to_string();
    }
    let mut end = 60;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Writes ordinary tokens as a `.tiktoken` rank file (sorted by rank).
pub fn format_tiktoken(vocab: &Vocab) -> Vec<u8> {
    let mut out = Vec::with_capacity(vocab.n_ordinary() * 12);
    for (bytes, rank) in vocab.ordinary_tokens() {
        out.extend_from_slice(B64.encode(bytes).as_bytes());
        out.push(b' ');
        out.extend_from_slice(rank.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiktoken_round_trip_and_errors() {
        let text = b"YQ== 0\nYg== 1\n\nYWI= 2\n";
        let ranks = parse_tiktoken(text, "x").unwrap();
        assert_eq!(
            ranks,
            vec![(b"a".to_vec(), 0), (b"b".to_vec(), 1), (b"ab".to_vec(), 2)]
        );
        let v = Vocab::new(ranks, vec![], None).unwrap();
        assert_eq!(format_tiktoken(&v), b"YQ== 0\nYg== 1\nYWI= 2\n");
        let err = parse_tiktoken(b"YQ== 0\nYg== zero\n", "v.tiktoken")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("v.tiktoken:2:"), "{err}");
        assert!(parse_tiktoken(b"YQ== 0\nYQ== 1\n", "x")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(parse_tiktoken(b"", "x").is_err());
        assert!(parse_tiktoken(b"!!! 0\n", "x").is_err());
        // One far-out rank would size the vocabulary's tables by it: refused, naming the line.
        let err = parse_tiktoken(b"YQ== 0\n\nYg== 4000000000\n", "big.tiktoken")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("big.tiktoken:3:") && err.contains("far beyond"),
            "{err}"
        );
        assert!(parse_tiktoken(b"YQ== 4294967295\n", "x").is_err());
        assert!(parse_tiktoken(b"YQ== 1000\n", "x").is_ok());
        // An empty token keeps its rank unused, as tiktoken's own reader keeps it unreachable.
        let ranks = parse_tiktoken(b"YQ== 0\nYg== 1\n= 2\n", "x").unwrap();
        assert_eq!(ranks, vec![(b"a".to_vec(), 0), (b"b".to_vec(), 1)]);
        assert!(parse_tiktoken(b"YQ== 0\n= 0\n", "x").is_err());
    }
}
