//! Pretoken counts files: the part of training that grows with the corpus, saved so that it can
//! be done in pieces (per file, per machine) and summed.
//!
//! Training depends only on the multiset of pretokens (see [`crate::train`]), so counting shards
//! separately, adding the counts, and training on the sum gives exactly the merges that training
//! on all the text at once gives, whatever the sharding. A counts file records the pretokenizer
//! and the special tokens it was made with, and files made with different ones are refused:
//! adding them would describe no corpus.
//!
//! # The counts file (version 1)
//! All integers little-endian; `varint` is unsigned LEB128 (7 bits a byte, low bits first).
//! ```text
//! offset  size  field
//! 0       8     magic b"TFCOUNT\0"
//! 8       4     version (u32) = 1; readers refuse a newer one
//! 12      4     H: header length (u32)
//! 16      H     header: UTF-8 JSON, see below
//! 16+H    ...   records, sorted by pretoken bytes, each pretoken once:
//!                 varint shared   bytes shared with the previous record's pretoken (0 at first)
//!                 varint len      length of the rest of the pretoken
//!                 len bytes       the rest
//!                 varint count    occurrences (u64, at least 1)
//! end-4   4     CRC-32 (u32) of every byte before it
//! ```
//! The header:
//! ```json
//! {"format": "tokforge-counts", "version": 1,
//!  "pretokenizer": {"type": "regex", "pattern": "...", "preset": "cl100k"},
//!  "special_tokens": ["<|endoftext|>"],
//!  "stats": {"bytes": 24000000, "pretokens": 4600000, "documents": 6},
//!  "distinct": 216000, "total": 4600000,
//!  "min_pretoken_count": 1, "pruned": {"distinct": 0, "total": 0}}
//! ```
//! - `pretokenizer` is recorded as the tokforge JSON file records it ([`crate::io`]): `type` is
//!   `regex` (with `pattern`, and `preset` when it is one), `whitespace` or `none`. Counts made
//!   with a Python callable cannot be saved: nothing could check that two files used the same one.
//! - `stats` are the totals of the text counted (bytes after decompression, pretokens with
//!   repeats, documents); `distinct` is the number of records and `total` the sum of their counts.
//! - `min_pretoken_count` > 1 says the file was pruned (pretokens rarer than that were dropped,
//!   `pruned` says how many): training on it approximates training on the corpus. Merging keeps
//!   the largest threshold and sums what was dropped.
//!
//! Pretokens are sorted, so consecutive ones share long prefixes: the 216 k distinct pretokens
//! of the 24 MB shared corpora take ~2 MB. Files are written atomically
//! ([`crate::io::write_atomic`]). Read errors name the file and the byte offset.
//!
//! ```
//! use tokforge::io::counts::{decode, encode};
//! use tokforge::pretokenize::WhitespacePretokenizer;
//! use tokforge::train::PretokenCounter;
//! let mut c = PretokenCounter::new(Box::new(WhitespacePretokenizer), &[], 1).unwrap();
//! c.add_texts(&["low lower lowest"]).unwrap();
//! let data = encode(&c, 1).unwrap();
//! let file = decode(&data, "mem").unwrap();
//! assert_eq!(file.records, c.sorted_counts());
//! assert_eq!(file.header.stats.bytes, 16);
//! ```

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Result, TokforgeError};
use crate::pretokenize::PretokenizerSpec;
use crate::train::{CountStats, PretokenCounter};

/// The first 8 bytes of every counts file.
pub const MAGIC: &[u8; 8] = b"TFCOUNT\0";

/// The counts file version this build writes and the newest it reads.
pub const COUNTS_VERSION: u32 = 1;

/// What a counts file says about its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountsHeader {
    /// The pretokenizer the text was split with.
    pub pretokenizer: PretokenizerSpec,
    /// The special tokens whose text was cut out before splitting.
    pub special_tokens: Vec<String>,
    /// Totals of the text counted.
    pub stats: CountStats,
    /// Pretokens rarer than this were dropped (1: nothing was).
    pub min_pretoken_count: u64,
    /// Distinct pretokens dropped by pruning.
    pub pruned_distinct: u64,
    /// Occurrences dropped by pruning.
    pub pruned_total: u64,
}

/// A decoded counts file.
#[derive(Debug, Clone)]
pub struct CountsFile {
    /// Its header.
    pub header: CountsHeader,
    /// `(pretoken, count)` sorted by pretoken.
    pub records: Vec<(Vec<u8>, u64)>,
}

fn spec_json(spec: &PretokenizerSpec) -> Result<Value> {
    Ok(match spec {
        PretokenizerSpec::Regex { pattern, preset } => match preset {
            Some(p) => json!({"type": "regex", "pattern": pattern, "preset": p}),
            None => json!({"type": "regex", "pattern": pattern}),
        },
        PretokenizerSpec::Whitespace => json!({"type": "whitespace"}),
        PretokenizerSpec::None => json!({"type": "none"}),
        PretokenizerSpec::Callable => {
            return Err(TokforgeError::InvalidArgument(
                "counts made with a Python callable pretokenizer cannot be saved: a counts file \
                 must name its pretokenizer so that files from different ones are never mixed"
                    .into(),
            ))
        }
    })
}

/// A short human name for a pretokenizer, for error messages.
pub fn describe(spec: &PretokenizerSpec) -> String {
    match spec {
        PretokenizerSpec::Regex {
            preset: Some(p), ..
        } => p.clone(),
        PretokenizerSpec::Regex { pattern, .. } => {
            let short: String = pattern.chars().take(40).collect();
            let more = if pattern.chars().count() > 40 {
                "..."
            } else {
                ""
            };
            format!("the regex {short:?}{more}")
        }
        PretokenizerSpec::Whitespace => "whitespace".into(),
        PretokenizerSpec::None => "none".into(),
        PretokenizerSpec::Callable => "a Python callable".into(),
    }
}

/// Whether two specs split identically (a preset and its own regex are the same).
fn same_split(a: &PretokenizerSpec, b: &PretokenizerSpec) -> bool {
    match (a, b) {
        (
            PretokenizerSpec::Regex { pattern: x, .. },
            PretokenizerSpec::Regex { pattern: y, .. },
        ) => x == y,
        (PretokenizerSpec::Callable, _) | (_, PretokenizerSpec::Callable) => false,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The bytes of a counts file holding `header` and `records` (sorted, distinct, counts >= 1).
pub fn encode_records(header: &CountsHeader, records: &[(Vec<u8>, u64)]) -> Result<Vec<u8>> {
    let total: u64 = records.iter().map(|r| r.1).sum();
    let head = json!({
        "format": "tokforge-counts",
        "version": COUNTS_VERSION,
        "pretokenizer": spec_json(&header.pretokenizer)?,
        "special_tokens": header.special_tokens,
        "stats": {
            "bytes": header.stats.bytes,
            "pretokens": header.stats.pretokens,
            "documents": header.stats.documents,
        },
        "distinct": records.len() as u64,
        "total": total,
        "min_pretoken_count": header.min_pretoken_count,
        "pruned": {"distinct": header.pruned_distinct, "total": header.pruned_total},
    });
    let head = serde_json::to_vec(&head)
        .map_err(|e| TokforgeError::InvalidArgument(format!("counts header: {e}")))?;
    let body: usize = records.iter().map(|r| r.0.len() / 2 + 6).sum();
    let mut out = Vec::with_capacity(24 + head.len() + body);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&COUNTS_VERSION.to_le_bytes());
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    let mut prev: &[u8] = &[];
    for (k, c) in records {
        let shared = prev
            .iter()
            .zip(k.iter())
            .take_while(|(a, b)| a == b)
            .count();
        put_varint(&mut out, shared as u64);
        put_varint(&mut out, (k.len() - shared) as u64);
        out.extend_from_slice(&k[shared..]);
        put_varint(&mut out, *c);
        prev = k;
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    Ok(out)
}

/// The bytes of a counts file of everything `counter` holds, dropping pretokens counted fewer
/// than `min_count` times (1 keeps all; anything more makes training approximate).
pub fn encode(counter: &PretokenCounter, min_count: u64) -> Result<Vec<u8>> {
    encode_pruned(counter, &counter.spec(), (1, 0, 0), min_count)
}

/// [`encode`] for counts that were pruned before: `prior` is the `(min_pretoken_count,
/// distinct, total)` the files they were summed from record (see [`merge`]), and `spec` the
/// pretokenizer to record.
pub fn encode_pruned(
    counter: &PretokenCounter,
    spec: &PretokenizerSpec,
    prior: (u64, u64, u64),
    min_count: u64,
) -> Result<Vec<u8>> {
    let mut records = counter.sorted_counts();
    let (mut pruned_distinct, mut pruned_total) = (prior.1, prior.2);
    if min_count > 1 {
        records.retain(|(_, c)| {
            let keep = *c >= min_count;
            if !keep {
                pruned_distinct += 1;
                pruned_total += *c;
            }
            keep
        });
    }
    let header = CountsHeader {
        pretokenizer: spec.clone(),
        special_tokens: counter.special_tokens().to_vec(),
        stats: counter.stats(),
        min_pretoken_count: prior.0.max(min_count),
        pruned_distinct,
        pruned_total,
    };
    encode_records(&header, &records)
}

/// Writes a counts file of `counter` to `path`, atomically. See [`encode`].
pub fn save(counter: &PretokenCounter, path: &Path, min_count: u64) -> Result<()> {
    crate::io::write_atomic(path, &encode(counter, min_count)?)
}

/// An error at a byte offset of a counts file.
fn bad(path: &str, offset: usize, reason: impl std::fmt::Display) -> TokforgeError {
    TokforgeError::Io {
        path: path.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a valid tokforge counts file: at byte {offset}: {reason}"),
        ),
    }
}

/// Reads bytes of a counts file, keeping the offset for error messages.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        if self.data.len() - self.pos < n {
            return Err(bad(
                self.path,
                self.pos,
                format!("the file ends inside {what} (truncated?)"),
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn varint(&mut self, what: &str) -> Result<u64> {
        let start = self.pos;
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.take(1, what)?[0];
            if shift == 63 && b > 1 {
                return Err(bad(
                    self.path,
                    start,
                    format!("{what} does not fit in 64 bits"),
                ));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad(
            self.path,
            start,
            format!("{what} does not fit in 64 bits"),
        ))
    }
}

fn u64_at(v: &Value, key: &[&str]) -> Option<u64> {
    key.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

fn parse_header(head: &[u8], path: &str) -> Result<(CountsHeader, u64, u64)> {
    let v: Value =
        serde_json::from_slice(head).map_err(|e| bad(path, 16 + e.column(), e.to_string()))?;
    let field = |key: &[&str]| {
        u64_at(&v, key).ok_or_else(|| {
            bad(
                path,
                16,
                format!("the header has no number at {:?}", key.join(".")),
            )
        })
    };
    if v.get("format").and_then(Value::as_str) != Some("tokforge-counts") {
        return Err(bad(
            path,
            16,
            "the header's format is not \"tokforge-counts\"",
        ));
    }
    let pre = v.get("pretokenizer").cloned().unwrap_or(Value::Null);
    let ty = pre.get("type").and_then(Value::as_str);
    let pretokenizer = match ty {
        Some("regex") => {
            let pattern = pre
                .get("pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(path, 16, "the header's regex pretokenizer has no pattern"))?;
            PretokenizerSpec::Regex {
                pattern: pattern.to_string(),
                preset: pre
                    .get("preset")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }
        }
        Some("whitespace") => PretokenizerSpec::Whitespace,
        Some("none") => PretokenizerSpec::None,
        _ => {
            return Err(bad(
                path,
                16,
                format!("unknown pretokenizer in the header: {pre}"),
            ))
        }
    };
    let special_tokens = match v.get("special_tokens") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(path, 16, "special_tokens must be a list of strings"))?,
        _ => return Err(bad(path, 16, "the header has no special_tokens list")),
    };
    let header = CountsHeader {
        pretokenizer,
        special_tokens,
        stats: CountStats {
            bytes: field(&["stats", "bytes"])?,
            pretokens: field(&["stats", "pretokens"])?,
            documents: field(&["stats", "documents"])?,
        },
        min_pretoken_count: field(&["min_pretoken_count"])?,
        pruned_distinct: field(&["pruned", "distinct"])?,
        pruned_total: field(&["pruned", "total"])?,
    };
    Ok((header, field(&["distinct"])?, field(&["total"])?))
}

/// Decodes and checks the bytes of a counts file; `path` is only used in error messages.
pub fn decode(data: &[u8], path: &str) -> Result<CountsFile> {
    let mut cur = Cursor { data, pos: 0, path };
    if data.len() < 8 || &data[..8] != MAGIC {
        return Err(bad(
            path,
            0,
            "it does not start with b\"TFCOUNT\\0\" (make one with `tokforge count`)",
        ));
    }
    cur.pos = 8;
    let version = u32::from_le_bytes(cur.take(4, "the version")?.try_into().unwrap_or([0; 4]));
    if version == 0 || version > COUNTS_VERSION {
        return Err(bad(
            path,
            8,
            format!("version {version}; this tokforge reads versions up to {COUNTS_VERSION}"),
        ));
    }
    if data.len() < 20 {
        return Err(bad(path, data.len(), "the file is too short (truncated?)"));
    }
    // Everything but the checksum; records must end exactly there.
    let (body, crc_bytes) = data.split_at(data.len() - 4);
    cur.data = body;
    let hlen = u32::from_le_bytes(
        cur.take(4, "the header length")?
            .try_into()
            .unwrap_or([0; 4]),
    );
    let head = cur.take(hlen as usize, "the header")?;
    let (header, distinct, total) = parse_header(head, path)?;
    // A record takes at least 3 bytes, so a header cannot make us reserve much more than the
    // file's size.
    let mut records: Vec<(Vec<u8>, u64)> =
        Vec::with_capacity((distinct as usize).min(body.len() / 3));
    let mut sum = 0u64;
    let mut prev: Vec<u8> = Vec::new();
    while cur.pos < body.len() {
        let at = cur.pos;
        let shared = cur.varint("a record's shared length")? as usize;
        let len = cur.varint("a record's length")? as usize;
        if shared > prev.len() {
            return Err(bad(
                path,
                at,
                format!(
                    "a record shares {shared} bytes with a previous pretoken of {}",
                    prev.len()
                ),
            ));
        }
        let rest = cur.take(len, "a record's bytes")?;
        let mut key = Vec::with_capacity(shared + len);
        key.extend_from_slice(&prev[..shared]);
        key.extend_from_slice(rest);
        let count = cur.varint("a record's count")?;
        if count == 0 {
            return Err(bad(path, at, "a record has count 0"));
        }
        if key.is_empty() || (!records.is_empty() && key <= prev) {
            return Err(bad(
                path,
                at,
                "records are not sorted by pretoken, or one is empty or repeated",
            ));
        }
        sum = sum
            .checked_add(count)
            .ok_or_else(|| bad(path, at, "the counts add up past 2^64"))?;
        prev.clone_from(&key);
        records.push((key, count));
    }
    if records.len() as u64 != distinct || sum != total {
        return Err(bad(
            path,
            body.len(),
            format!(
                "the header promises {distinct} pretokens counted {total} times, the records \
                 hold {} counted {sum} times (truncated?)",
                records.len()
            ),
        ));
    }
    let mut crc = flate2::Crc::new();
    crc.update(body);
    let stored = u32::from_le_bytes(crc_bytes.try_into().unwrap_or([0; 4]));
    if crc.sum() != stored {
        return Err(bad(
            path,
            body.len(),
            format!(
                "checksum mismatch (stored {stored:08x}, computed {:08x}): the file is corrupt",
                crc.sum()
            ),
        ));
    }
    Ok(CountsFile { header, records })
}

/// Reads and checks a counts file.
pub fn read(path: &Path) -> Result<CountsFile> {
    let data = std::fs::read(path).map_err(|e| TokforgeError::io(path, e))?;
    decode(&data, &path.display().to_string())
}

/// Sums counts files (given as `(name, bytes)`, the name for error messages) into one counter
/// that splits as they did, counting with `num_threads` threads if used further. Files made
/// with a different pretokenizer or different special tokens than the first are refused.
/// Returns the counter and the pruning totals `(min_pretoken_count, distinct, total)`.
pub fn merge<'a>(
    files: impl IntoIterator<Item = (String, &'a [u8])>,
    num_threads: usize,
) -> Result<(PretokenCounter, (u64, u64, u64))> {
    let mut counter: Option<(PretokenCounter, String)> = None;
    let mut pruning = (1u64, 0u64, 0u64);
    for (name, data) in files {
        let file = decode(data, &name)?;
        let h = &file.header;
        if let Some((c, first)) = &counter {
            let spec = c.spec();
            if !same_split(&spec, &h.pretokenizer) {
                return Err(TokforgeError::InvalidArgument(format!(
                    "cannot mix counts made with different pretokenizers: {first} was counted \
                     with {}, {name} with {}",
                    describe(&spec),
                    describe(&h.pretokenizer)
                )));
            }
            let (mut a, mut b) = (c.special_tokens().to_vec(), h.special_tokens.clone());
            a.sort();
            b.sort();
            if a != b {
                return Err(TokforgeError::InvalidArgument(format!(
                    "cannot mix counts made with different special tokens: {first} cut out \
                     {a:?}, {name} cut out {b:?}"
                )));
            }
        } else {
            let pretok = h.pretokenizer.build()?;
            let c = PretokenCounter::new(pretok, &h.special_tokens, num_threads)?;
            counter = Some((c, name.clone()));
        }
        pruning.0 = pruning.0.max(h.min_pretoken_count);
        pruning.1 += h.pruned_distinct;
        pruning.2 += h.pruned_total;
        let stats = h.stats;
        if let Some((c, _)) = counter.as_mut() {
            c.add_counts(file.records, stats);
        }
    }
    match counter {
        Some((c, _)) => Ok((c, pruning)),
        None => Err(TokforgeError::InvalidArgument(
            "no counts files given".into(),
        )),
    }
}

/// Reads counts files and sums them; see [`merge`].
pub fn load(paths: &[impl AsRef<Path>], num_threads: usize) -> Result<PretokenCounter> {
    let mut blobs = Vec::with_capacity(paths.len());
    for p in paths {
        let p = p.as_ref();
        let data = std::fs::read(p).map_err(|e| TokforgeError::io(p, e))?;
        blobs.push((p.display().to_string(), data));
    }
    Ok(merge(
        blobs.iter().map(|(n, d)| (n.clone(), d.as_slice())),
        num_threads,
    )?
    .0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::TrainConfig;

    fn counter(preset: &str, texts: &[&str]) -> PretokenCounter {
        let pre = PretokenizerSpec::from_name(preset)
            .unwrap()
            .build()
            .unwrap();
        let mut c = PretokenCounter::new(pre, &["<|eot|>".to_string()], 2).unwrap();
        c.add_texts(texts).unwrap();
        c
    }

    fn merges_of(c: &PretokenCounter) -> Vec<crate::train::Merge> {
        let config = TrainConfig {
            merges: 80,
            ..Default::default()
        };
        let mut t = c.trainer(config).unwrap();
        t.run(&mut |_| Ok(())).unwrap();
        t.merges().to_vec()
    }

    #[test]
    fn round_trip_and_merge_equal_whole() {
        let texts: Vec<String> = (0..120)
            .map(|i| {
                format!(
                    "the cat {i} sat<|eot|> on the mat, Привет мир {} ok\n",
                    i % 9
                )
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let whole = counter("cl100k", &refs);
        for shards in [1, 2, 3, 7] {
            let blobs: Vec<Vec<u8>> = refs
                .chunks(refs.len().div_ceil(shards))
                .map(|ch| encode(&counter("cl100k", ch), 1).unwrap())
                .collect();
            let (merged, pruning) = merge(
                blobs
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (format!("s{i}"), b.as_slice())),
                1,
            )
            .unwrap();
            assert_eq!(pruning, (1, 0, 0));
            assert_eq!(merged.sorted_counts(), whole.sorted_counts());
            assert_eq!(merged.stats(), whole.stats());
            assert_eq!(merged.special_tokens(), whole.special_tokens());
            assert_eq!(merges_of(&merged), merges_of(&whole), "{shards} shards");
        }
    }

    #[test]
    fn refuses_mixing_and_reports_offsets() {
        let a = encode(&counter("cl100k", &["hello world"]), 1).unwrap();
        let b = encode(&counter("o200k", &["hello world"]), 1).unwrap();
        let err = merge([("a".to_string(), &a[..]), ("b".to_string(), &b[..])], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("different pretokenizers") && err.contains("o200k"),
            "{err}"
        );

        // Truncation, corruption, wrong magic, newer version: each names file and byte.
        let err = decode(&a[..a.len() - 9], "x.counts")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.counts: ") && err.contains("at byte"),
            "{err}"
        );
        let mut c = a.clone();
        let n = c.len();
        c[n - 6] ^= 0x40;
        let err = decode(&c, "x.counts").unwrap_err().to_string();
        assert!(err.contains("at byte"), "{err}");
        let err = decode(b"hello world, not counts", "y")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at byte 0"), "{err}");
        let mut v = a.clone();
        v[8] = 9;
        let err = decode(&v, "z").unwrap_err().to_string();
        assert!(
            err.contains("at byte 8") && err.contains("version 9"),
            "{err}"
        );
    }

    #[test]
    fn pruning_is_recorded() {
        let c = counter("whitespace", &["a a a b b c"]);
        let data = encode(&c, 2).unwrap();
        let f = decode(&data, "p").unwrap();
        assert_eq!(f.header.min_pretoken_count, 2);
        assert_eq!((f.header.pruned_distinct, f.header.pruned_total), (1, 1));
        assert_eq!(
            f.records,
            vec![(b" ".to_vec(), 5), (b"a".to_vec(), 3), (b"b".to_vec(), 2)]
        );
    }

    #[test]
    fn varints_and_big_counts() {
        let header = CountsHeader {
            pretokenizer: PretokenizerSpec::Whitespace,
            special_tokens: vec![],
            stats: CountStats::default(),
            min_pretoken_count: 1,
            pruned_distinct: 0,
            pruned_total: 0,
        };
        let records = vec![
            (b"ab".to_vec(), u64::MAX / 2),
            (b"abc".to_vec(), 1),
            (vec![0xff; 300], 128),
        ];
        let data = encode_records(&header, &records).unwrap();
        assert_eq!(decode(&data, "v").unwrap().records, records);
    }
}
