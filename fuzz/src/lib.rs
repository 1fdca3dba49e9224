//! The fuzz targets of tokforge, as plain functions `fn(&[u8])` that panic when a property fails.
//!
//! Each one is called by a libFuzzer entry point (`fuzz_targets/<name>.rs`, run with
//! `cargo fuzz run <name>`) and by the stable-Rust driver (`src/bin/run.rs`), so both fuzz the
//! same checks. A target never panics on a *rejected* input: errors are the expected answer to
//! garbage. It panics only when tokforge panics itself, loses or invents text, or answers
//! differently from an independent oracle written here.
//!
//! | target | input | checks |
//! | --- | --- | --- |
//! | `encode_presets` | selector byte + text | `decode(encode(s)) == s` for gpt2/cl100k/o200k/whitespace/none, with specials allowed, disallowed and ordinary; the hand-written preset scanners cut exactly as the preset regexes |
//! | `encode_regex` | pattern `\0` text | a custom regex compiles or fails cleanly, never hangs (backtrack limit); pieces are ordered, disjoint, on char boundaries; ids decode to the pieces' text |
//! | `decode_ids` | ids (u32 LE) | decode is `Ok` iff every id is known, and equals the tokens' bytes joined |
//! | `stream_decode` | strict byte + ids | the streaming decoder's output equals a one-shot lossy decode (or fails, when strict, exactly on invalid UTF-8) |
//! | `parse_tiktoken` | file bytes | `.tiktoken` parser: an error or a rank list that builds a vocabulary and writes back identically |
//! | `parse_json` | file bytes | tokforge JSON parser: an error or a file whose vocab/pretokenizer build and which round-trips |
//! | `train` | options + corpus | the trainer's merges and counts equal a naive reference trainer's |
//! | `parse_hf` | tokenizer.json `\0` text | HF tokenizer.json reader: an error, or an encoder whose ids for the text decode; byte-level ones without normalizer round-trip |
//! | `hf_merges` | vocabulary + merge list + word | the merge-list BPE model (heap, lazy invalidation) equals a naive "earliest merge, then leftmost" loop |
//! | `parse_counts` | file bytes | counts-file reader: an error, or a file that re-encodes to a file that decodes identically |
//! | `hf_normalizer_growth` | steps + word | `Replace` normalizers that multiply text: an `InvalidArgument` exactly past the growth limit, else one id per normalized letter |
//! | `merge_chain` | count + byte + shape | merges chaining into long tokens: refused exactly past `MAX_SPLIT_WORK` (before building), else a vocabulary that round-trips a run |

use std::ops::Range;
use std::path::PathBuf;
use std::sync::OnceLock;

use tokforge::io::{parse_tiktoken as tf_parse_tiktoken, ranks_from_merges, TokenizerFile};
use tokforge::pretokenize::{Pretokenizer, PretokenizerSpec, RegexPretokenizer};
use tokforge::train::{PretokenCounter, TrainConfig};
use tokforge::{Encoder, Rank, StreamDecoder, TokforgeError, Vocab};

/// A fuzz target: panics when a property fails.
pub type Target = fn(&[u8]);

/// Every target, by name, in a fixed order.
pub const TARGETS: &[(&str, Target)] = &[
    ("encode_presets", encode_presets),
    ("encode_regex", encode_regex),
    ("decode_ids", decode_ids),
    ("stream_decode", stream_decode),
    ("parse_tiktoken", parse_tiktoken),
    ("parse_json", parse_json),
    ("train", train),
    ("parse_hf", parse_hf),
    ("hf_merges", hf_merges),
    ("parse_counts", parse_counts),
    ("hf_normalizer_growth", hf_normalizer_growth),
    ("merge_chain", merge_chain),
];

/// The special tokens every test encoder carries (cl100k's, plus two that overlap each other).
pub const SPECIALS: &[&str] = &[
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|endofprompt|>",
    "<|end",
    "of",
];

/// The folder of shared data: `$TOKFORGE_SHARED`, else `../../shared` from this crate.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("TOKFORGE_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// cl100k's ordinary ranks from `../shared`, or, without shared data, a small byte-level
/// vocabulary (the 256 bytes and a few merges) so that the targets still run.
pub fn base_ranks() -> &'static Vec<(Vec<u8>, Rank)> {
    static RANKS: OnceLock<Vec<(Vec<u8>, Rank)>> = OnceLock::new();
    RANKS.get_or_init(|| {
        let path = shared_dir().join("vocabs/cl100k_base.tiktoken");
        match std::fs::read(&path) {
            Ok(data) => tf_parse_tiktoken(&data, &path.display().to_string())
                .expect("the shared cl100k rank file parses"),
            Err(_) => {
                let merges: Vec<(Rank, Rank)> = vec![
                    (b't' as Rank, b'h' as Rank),
                    (256, b'e' as Rank),
                    (b' ' as Rank, 257),
                    (b'i' as Rank, b'n' as Rank),
                    (259, b'g' as Rank),
                    (0xE2, 0x82),
                    (261, 0xAC),
                ];
                ranks_from_merges(&merges).expect("valid merges")
            }
        }
    })
}

fn specials_for(n: usize) -> Vec<(String, Rank)> {
    SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| (s.to_string(), (n + i) as Rank))
        .collect()
}

/// One encoder per pretokenizer (0 gpt2, 1 cl100k, 2 o200k, 3 whitespace, 4 none), all over the
/// same byte-level vocabulary and special tokens.
fn encoder(which: usize) -> &'static Encoder {
    const NAMES: [&str; 5] = ["gpt2", "cl100k", "o200k", "whitespace", "none"];
    static ENCODERS: [OnceLock<Encoder>; 5] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    ENCODERS[which].get_or_init(|| {
        let ranks = base_ranks().clone();
        let n = ranks
            .iter()
            .map(|(_, r)| *r as usize + 1)
            .max()
            .unwrap_or(0);
        let vocab = Vocab::new(ranks, specials_for(n), None).expect("base vocab");
        let pretok = PretokenizerSpec::from_name(NAMES[which])
            .and_then(|s| s.build())
            .expect("preset builds");
        Encoder::new(vocab, pretok).expect("encoder")
    })
}

/// The same pieces through fancy-regex, for the presets that have a hand-written scanner.
fn preset_regex(which: usize) -> Option<&'static RegexPretokenizer> {
    static REGEXES: [OnceLock<RegexPretokenizer>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let name = ["gpt2", "cl100k", "o200k"].get(which)?;
    Some(REGEXES[which].get_or_init(|| {
        let p = tokforge::pretokenize::preset_pattern(name).expect("preset");
        RegexPretokenizer::new(p).expect("preset regex compiles")
    }))
}

fn decode_text(enc: &Encoder, ids: &[Rank]) -> String {
    let bytes = enc.decode_bytes(ids).expect("ids from encode decode");
    String::from_utf8(bytes).expect("ids from encoding a str decode to UTF-8")
}

fn check_ranges(text: &str, ranges: &[Range<usize>]) {
    let mut prev = 0;
    for r in ranges {
        assert!(
            prev <= r.start && r.start < r.end && r.end <= text.len(),
            "bad piece {r:?} after {prev} in a text of {} bytes",
            text.len()
        );
        assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
        prev = r.end;
    }
}

/// `decode(encode(s)) == s` with every preset pretokenizer, in each special-token mode; the
/// hand-written scanners cut exactly as their regexes.
pub fn encode_presets(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let which = sel as usize % 5;
    let text = String::from_utf8_lossy(rest);
    let text = text.as_ref();
    let enc = encoder(which);

    let ids = enc
        .encode_ordinary(text)
        .expect("encode_ordinary never fails here");
    assert_eq!(decode_text(enc, &ids), text, "ordinary round trip");

    let all = enc.policy(|_| true, |_| false);
    let (ids_all, _) = enc.encode_with_policy(text, &all).expect("all allowed");
    assert_eq!(
        decode_text(enc, &ids_all),
        text,
        "round trip, specials allowed"
    );
    if !SPECIALS.iter().any(|s| text.contains(s)) {
        assert_eq!(ids_all, ids, "no special in the text: same ids as ordinary");
    }

    match enc.encode_with_policy(text, &enc.default_policy()) {
        Ok((ids_def, _)) => {
            assert_eq!(ids_def, ids, "default policy without specials = ordinary");
            assert!(!SPECIALS.iter().any(|s| text.contains(s)));
        }
        Err(TokforgeError::DisallowedSpecial(s)) => assert!(text.contains(s.as_str())),
        Err(e) => panic!("default policy failed with {e}"),
    }

    if let Some(re) = preset_regex(which) {
        let scanned = enc.split(text).expect("scanner never fails");
        check_ranges(text, &scanned);
        let mut by_regex = Vec::new();
        match re.split(text, &mut by_regex) {
            Ok(()) => assert_eq!(scanned, by_regex, "scanner and regex disagree"),
            // The regex may give up on hostile input (backtrack limit); the scanner may not.
            Err(TokforgeError::RegexRuntime(_)) => {}
            Err(e) => panic!("preset regex failed with {e}"),
        }
        let joined: usize = scanned.iter().map(|r| r.len()).sum();
        assert_eq!(joined, text.len(), "a preset scanner dropped text");
    }
}

/// A custom pattern (up to the first NUL, at most 200 bytes) over the text after it.
pub fn encode_regex(data: &[u8]) {
    let cut = data
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(data.len().min(16));
    let (pat, text) = data.split_at(cut.min(200));
    let text = text.get(1..).unwrap_or_default();
    let Ok(pattern) = std::str::from_utf8(pat) else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let text = text.as_ref();
    let re = match RegexPretokenizer::new(pattern) {
        Ok(re) => re,
        Err(TokforgeError::InvalidPattern { .. }) => return,
        Err(e) => panic!("compiling {pattern:?} failed with a {e:?}"),
    };
    let mut ranges = Vec::new();
    match re.split(text, &mut ranges) {
        Ok(()) => {}
        Err(TokforgeError::RegexRuntime(_)) => return,
        Err(e) => panic!("split with {pattern:?} failed with {e:?}"),
    }
    check_ranges(text, &ranges);
    let enc = encoder(4);
    let mut ids = Vec::new();
    let mut expected = String::new();
    for r in &ranges {
        enc.encode_piece(&text.as_bytes()[r.clone()], &mut ids)
            .expect("byte-level pieces always encode");
        expected.push_str(&text[r.clone()]);
    }
    assert_eq!(decode_text(enc, &ids), expected);
}

/// Ids from the input: mostly in (or just past) the vocabulary, sometimes any `u32`.
fn ids_from(data: &[u8], n_ids: usize) -> Vec<Rank> {
    data.chunks(4)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            let raw = u32::from_le_bytes(b);
            if raw & 0x8000_0000 != 0 && raw & 0x4000_0000 != 0 {
                raw // any u32, including u32::MAX
            } else {
                raw % (n_ids as u32 + 8)
            }
        })
        .collect()
}

/// Decode of arbitrary ids: `Ok` exactly when every id is known.
pub fn decode_ids(data: &[u8]) {
    let enc = encoder(1);
    let v = enc.vocab();
    let ids = ids_from(data, v.n_ids());
    let known: Option<Vec<u8>> = ids.iter().try_fold(Vec::new(), |mut acc, &id| {
        acc.extend_from_slice(v.token_bytes(id)?);
        Some(acc)
    });
    match (enc.decode_bytes(&ids), known) {
        (Ok(b), Some(k)) => assert_eq!(b, k),
        (Err(TokforgeError::UnknownToken(id)), None) => {
            assert!(v.token_bytes(id as Rank).is_none() || id > u32::MAX as u64)
        }
        (got, want) => panic!(
            "decode {ids:?}: got {got:?}, every id known: {}",
            want.is_some()
        ),
    }
}

/// The streaming decoder against a one-shot decode of the same (known) ids.
pub fn stream_decode(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let strict = sel & 1 == 1;
    let enc = encoder(1);
    let v = enc.vocab();
    // Small ids are bytes and short tokens: far more partial characters than random ids give.
    let ids: Vec<Rank> = ids_from(rest, v.n_ids())
        .into_iter()
        .map(|id| if sel & 2 == 2 { id % 512 } else { id })
        .collect();
    let mut d = StreamDecoder::new(strict);
    let mut out = String::new();
    let mut all = Vec::new();
    let mut failed = false;
    for &id in &ids {
        let before = d.pending().to_vec();
        match d.push(v, id) {
            Ok(s) => out.push_str(&s),
            Err(TokforgeError::UnknownToken(_)) => {
                assert!(v.token_bytes(id).is_none());
                assert_eq!(
                    d.pending(),
                    before,
                    "a rejected id changed the pending bytes"
                );
                continue;
            }
            Err(TokforgeError::InvalidUtf8 { .. }) if strict => failed = true,
            Err(e) => panic!("push({id}) failed with {e:?}"),
        }
        all.extend_from_slice(v.token_bytes(id).expect("pushed ids are known"));
        assert!(d.pending().len() <= 3, "more than 3 bytes pending");
    }
    match d.finish() {
        Ok(s) => out.push_str(&s),
        Err(TokforgeError::InvalidUtf8 { .. }) if strict => failed = true,
        Err(e) => panic!("finish failed with {e:?}"),
    }
    if strict {
        assert_eq!(
            failed,
            std::str::from_utf8(&all).is_err(),
            "strict error iff invalid"
        );
        if !failed {
            assert_eq!(out.as_bytes(), all.as_slice());
        }
    } else {
        assert_eq!(
            out,
            String::from_utf8_lossy(&all),
            "stream != one-shot lossy decode"
        );
    }
}

/// The `.tiktoken` parser: an error, or ranks that build a vocabulary and write back the same.
pub fn parse_tiktoken(data: &[u8]) {
    let ranks = match tf_parse_tiktoken(data, "fuzz.tiktoken") {
        Ok(r) => r,
        Err(TokforgeError::BadVocabFile { .. }) => return,
        Err(e) => panic!("parse_tiktoken failed with a {e:?}"),
    };
    let vocab = match Vocab::new(ranks.clone(), vec![], None) {
        Ok(v) => v,
        Err(TokforgeError::InvalidVocab(_)) => return,
        Err(e) => panic!("Vocab::new failed with a {e:?}"),
    };
    let text = tokforge::io::format_tiktoken(&vocab);
    let mut again = tf_parse_tiktoken(&text, "again").expect("written file parses");
    let mut sorted = ranks;
    sorted.sort_by_key(|(_, r)| *r);
    again.sort_by_key(|(_, r)| *r);
    assert_eq!(again, sorted, "rank file round trip");
}

/// The tokforge JSON parser: an error, or a file that builds and round-trips.
pub fn parse_json(data: &[u8]) {
    let file = match TokenizerFile::parse(data, "fuzz.json") {
        Ok(f) => f,
        Err(TokforgeError::BadVocabFile { .. }) => return,
        Err(e) => panic!("parse failed with a {e:?}"),
    };
    let vocab = match file.vocab() {
        Ok(v) => v,
        Err(TokforgeError::InvalidVocab(_)) => return,
        Err(e) => panic!("vocab() failed with a {e:?}"),
    };
    let again = TokenizerFile::parse(&file.to_json(), "again").expect("written file parses");
    assert_eq!(again.ranks.len(), file.ranks.len());
    assert_eq!(again.special_tokens, file.special_tokens);
    assert_eq!(again.pretokenizer, file.pretokenizer);
    assert_eq!(again.byte_fallback, file.byte_fallback);
    if let Ok(pretok) = file.pretokenizer.build() {
        if let Ok(enc) = Encoder::new(vocab, pretok) {
            // Whatever the file says, encoding must not panic; byte-level ones round-trip.
            let text = "hello wörld 123 <|endoftext|> 日本";
            if let Ok(ids) = enc.encode_ordinary(text) {
                let bytes = enc.decode_bytes(&ids).expect("encoded ids decode");
                if enc.vocab().is_byte_level() && enc.pretokenizer_spec().pattern().is_none() {
                    assert_eq!(bytes, text.as_bytes());
                }
            }
        }
    }
}

/// Naive BPE training, written from the definition (the oracle of `train`): recount every pair
/// each round, take the highest count (ties: smallest pair), skip pairs whose token would be too
/// long or already exists, stop below `min_frequency`.
pub fn reference_train(
    counts: &[(Vec<u8>, u64)],
    num_merges: usize,
    min_frequency: u64,
    max_token_bytes: Option<usize>,
) -> Vec<((Rank, Rank), u64)> {
    let mut words: Vec<(Vec<Rank>, u64)> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(w, n)| (w.iter().map(|&b| b as Rank).collect(), *n))
        .collect();
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut known: std::collections::HashSet<Vec<u8>> = tokens.iter().cloned().collect();
    let mut merges = Vec::new();
    while merges.len() < num_merges {
        let mut pairs: std::collections::BTreeMap<(Rank, Rank), u64> = Default::default();
        for (w, n) in &words {
            for p in w.windows(2) {
                *pairs.entry((p[0], p[1])).or_default() += n;
            }
        }
        let best = pairs
            .iter()
            .filter(|(&(a, b), _)| {
                let len = tokens[a as usize].len() + tokens[b as usize].len();
                let mut joined = tokens[a as usize].clone();
                joined.extend_from_slice(&tokens[b as usize]);
                max_token_bytes.is_none_or(|m| len <= m) && !known.contains(&joined)
            })
            .max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0)));
        let Some((&pair, &n)) = best else { break };
        if n < min_frequency.max(1) {
            break;
        }
        let id = tokens.len() as Rank;
        let mut joined = tokens[pair.0 as usize].clone();
        joined.extend_from_slice(&tokens[pair.1 as usize]);
        known.insert(joined.clone());
        tokens.push(joined);
        for (w, _) in &mut words {
            let mut out = Vec::with_capacity(w.len());
            let mut i = 0;
            while i < w.len() {
                if i + 1 < w.len() && (w[i], w[i + 1]) == pair {
                    out.push(id);
                    i += 2;
                } else {
                    out.push(w[i]);
                    i += 1;
                }
            }
            *w = out;
        }
        merges.push((pair, n));
    }
    merges
}

/// Whitespace pretokens counted independently of tokforge (runs of `char::is_whitespace` and
/// of the rest, alternating).
fn whitespace_counts(text: &str) -> Vec<(Vec<u8>, u64)> {
    let mut counts: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
    let mut start = 0;
    let mut prev: Option<bool> = None;
    for (i, c) in text.char_indices() {
        let sp = c.is_whitespace();
        if prev.is_some_and(|p| p != sp) {
            *counts
                .entry(text.as_bytes()[start..i].to_vec())
                .or_default() += 1;
            start = i;
        }
        prev = Some(sp);
    }
    if start < text.len() {
        *counts.entry(text.as_bytes()[start..].to_vec()).or_default() += 1;
    }
    counts.into_iter().collect()
}

/// Training on a small corpus: counting and merges equal the naive reference's.
pub fn train(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let (opts, corpus) = data.split_at(3);
    let num_merges = opts[0] as usize % 48;
    let min_frequency = 1 + (opts[1] % 3) as u64;
    let max_token_bytes = (opts[2] & 8 == 8).then_some(2 + (opts[2] % 8) as usize);
    let preset = if opts[2] & 16 == 16 {
        "cl100k"
    } else {
        "whitespace"
    };
    let text = String::from_utf8_lossy(&corpus[..corpus.len().min(2048)]);
    let pretok = PretokenizerSpec::from_name(preset)
        .and_then(|s| s.build())
        .expect("preset");
    let mut counter = PretokenCounter::new(pretok, &[], 1).expect("counter");
    counter.add_texts(&[text.as_ref()]).expect("counting a str");
    let counts = counter.sorted_counts();
    if preset == "whitespace" {
        assert_eq!(counts, whitespace_counts(&text), "pretoken counts");
    }
    let config = TrainConfig {
        merges: num_merges,
        min_frequency,
        max_token_bytes,
    };
    let mut trainer = counter.trainer(config).expect("trainer");
    trainer.run(&mut |_| Ok(())).expect("training");
    let got: Vec<((Rank, Rank), u64)> =
        trainer.merges().iter().map(|m| (m.pair, m.count)).collect();
    let want = reference_train(&counts, num_merges, min_frequency, max_token_bytes);
    assert_eq!(got, want, "trainer != reference ({config:?})");
}

/// The HF tokenizer.json reader on arbitrary bytes (up to the first NUL; the rest is text to
/// encode): a clean error, or an encoder that encodes without panicking and whose ids decode.
pub fn parse_hf(data: &[u8]) {
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (json, rest) = (&data[..cut], data.get(cut + 1..).unwrap_or(&[]));
    let text = String::from_utf8_lossy(rest);
    for sentencepiece in [false, true] {
        let enc = match Encoder::from_hf_json(json, "fuzz.json", sentencepiece) {
            Ok(e) => e,
            Err(TokforgeError::BadVocabFile { .. }) => return,
            Err(e) => panic!("from_hf_json failed with a {e:?}"),
        };
        let policy = enc.policy(|_| true, |_| false);
        match enc.encode_with_policy(&text, &policy) {
            Ok((ids, _)) => {
                enc.decode_bytes(&ids).expect("encoded ids decode");
            }
            // Characters outside a vocabulary without byte fallback or unknown token; a
            // pattern's backtracking limit.
            Err(TokforgeError::NotAToken(_) | TokforgeError::RegexRuntime(_)) => {}
            Err(e) => panic!("encode failed with a {e:?}"),
        }
    }
}

/// Naive merge-list BPE, from the definition: repeatedly find the adjacent pair that comes
/// earliest in the merge list (leftmost among equals) and merge it.
pub fn reference_merge_list(
    mut syms: Vec<Rank>,
    merges: &std::collections::HashMap<(Rank, Rank), (u32, Rank)>,
) -> Vec<Rank> {
    loop {
        let best = syms
            .windows(2)
            .enumerate()
            .filter_map(|(i, w)| merges.get(&(w[0], w[1])).map(|&(p, new)| (p, i, new)))
            .min();
        let Some((_, i, new)) = best else { return syms };
        syms[i] = new;
        syms.remove(i + 1);
    }
}

/// The merge-list model against [`reference_merge_list`]: a vocabulary of single letters `a..`
/// plus tokens made by a fuzzed merge list (pairs may repeat, two pairs may make the same
/// token), then a fuzzed word over those letters.
pub fn hf_merges(data: &[u8]) {
    let Some((&n_letters, rest)) = data.split_first() else {
        return;
    };
    let n_letters = 1 + (n_letters % 6) as usize;
    let Some((&n_merges, rest)) = rest.split_first() else {
        return;
    };
    let n_merges = (n_merges % 24) as usize;
    if rest.len() < 2 * n_merges {
        return;
    }
    let (pairs, word) = rest.split_at(2 * n_merges);
    let mut tokens: Vec<Vec<u8>> = (0..n_letters).map(|i| vec![b'a' + i as u8]).collect();
    let mut id_of: std::collections::HashMap<Vec<u8>, Rank> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as Rank))
        .collect();
    let mut merge_ids = Vec::new();
    for p in pairs.chunks(2) {
        let a = p[0] as usize % tokens.len();
        let b = p[1] as usize % tokens.len();
        let joined = [tokens[a].clone(), tokens[b].clone()].concat();
        if joined.len() > 12 {
            continue;
        }
        if !id_of.contains_key(&joined) {
            id_of.insert(joined.clone(), tokens.len() as Rank);
            tokens.push(joined);
        }
        merge_ids.push((a as Rank, b as Rank));
    }
    let vocab: Vec<(Vec<u8>, Rank)> = id_of.iter().map(|(t, &i)| (t.clone(), i)).collect();
    let options = tokforge::model::MergeListOptions::default();
    let model =
        tokforge::model::MergeModel::new(vocab, &merge_ids, options).expect("a valid merge list");
    let mut table = std::collections::HashMap::new();
    for (k, &(a, b)) in merge_ids.iter().enumerate() {
        let new = id_of[&[tokens[a as usize].clone(), tokens[b as usize].clone()].concat()];
        table.entry((a, b)).or_insert((k as u32, new));
    }
    let word: Vec<u8> = word
        .iter()
        .take(200)
        .map(|&c| b'a' + c % n_letters as u8)
        .collect();
    let mut got = Vec::new();
    model
        .encode_word(&word, &mut got)
        .expect("letters are tokens");
    let start: Vec<Rank> = word.iter().map(|&c| (c - b'a') as Rank).collect();
    assert_eq!(got, reference_merge_list(start, &table), "word {word:?}");
}

/// The counts-file reader: an error, or a file that writes back to bytes that read back equal.
pub fn parse_counts(data: &[u8]) {
    let file = match tokforge::io::counts::decode(data, "fuzz.counts") {
        Ok(f) => f,
        // A bad counts file is reported as invalid data at a byte offset (a TokforgeIOError).
        Err(TokforgeError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::InvalidData =>
        {
            return
        }
        Err(e) => panic!("decode failed with a {e:?}"),
    };
    let bytes = match tokforge::io::counts::encode_records(&file.header, &file.records) {
        Ok(b) => b,
        Err(TokforgeError::InvalidArgument(_)) => return,
        Err(e) => panic!("re-encoding a decoded file failed with a {e:?}"),
    };
    let again = tokforge::io::counts::decode(&bytes, "again").expect("written counts file reads");
    assert_eq!(again.records, file.records);
    assert_eq!(again.header.pretokenizer, file.header.pretokenizer);
    assert_eq!(again.header.special_tokens, file.header.special_tokens);
}

/// A tokenizer.json whose normalizer is a `Sequence` of fuzzed `Replace` steps over the letters
/// `a`, `b`, `c` (a step may multiply text), then a fuzzed word. Oracle: the steps applied with
/// `str::replace`, stopping where the text would pass the documented growth limit
/// ([`tokforge::hf::MAX_GROWTH_FACTOR`] times the input plus [`tokforge::hf::MAX_GROWTH_SLACK`]
/// bytes). Encoding must fail with `InvalidArgument` exactly then, and otherwise give one id per
/// normalized letter (the model has no merges).
pub fn hf_normalizer_growth(data: &[u8]) {
    let Some((&n_steps, rest)) = data.split_first() else {
        return;
    };
    let letter = |b: u8| (b'a' + b % 3) as char;
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut rest = rest;
    for _ in 0..(n_steps % 12) {
        let [p0, p1, n, tail @ ..] = rest else { return };
        let pattern: String = if p1 % 2 == 0 {
            letter(*p0).to_string()
        } else {
            [letter(*p0), letter(*p1 / 2)].iter().collect()
        };
        let n = (*n % 16) as usize;
        if tail.len() < n {
            return;
        }
        let content: String = tail[..n].iter().map(|&b| letter(b)).collect();
        steps.push((pattern, content));
        rest = &tail[n..];
    }
    let text: String = rest.iter().take(300).map(|&b| letter(b)).collect();
    let replaces: Vec<String> = steps
        .iter()
        .map(|(p, c)| {
            format!(r#"{{"type": "Replace", "pattern": {{"String": "{p}"}}, "content": "{c}"}}"#)
        })
        .collect();
    let json = format!(
        r#"{{"normalizer": {{"type": "Sequence", "normalizers": [{}]}},
            "model": {{"type": "BPE", "vocab": {{"a": 0, "b": 1, "c": 2}}, "merges": []}}}}"#,
        replaces.join(", ")
    );
    let enc = Encoder::from_hf_json(json.as_bytes(), "fuzz.json", false)
        .unwrap_or_else(|e| panic!("a valid tokenizer.json is refused: {e:?}\n{json}"));
    let limit = text.len() * tokforge::hf::MAX_GROWTH_FACTOR + tokforge::hf::MAX_GROWTH_SLACK;
    let mut want = Some(text.clone());
    if !text.is_empty() {
        for (p, c) in &steps {
            let s = want.take().expect("still within the limit");
            let n = s.matches(p.as_str()).count();
            if s.len() - n * p.len() + n * c.len() > limit {
                break;
            }
            want = Some(s.replace(p.as_str(), c));
        }
    }
    let policy = enc.policy(|_| false, |_| false);
    match (enc.encode_with_policy(&text, &policy), want) {
        (Ok((ids, _)), Some(want)) => assert_eq!(ids.len(), want.len(), "{text:?} {steps:?}"),
        (Err(TokforgeError::InvalidArgument(_)), None) => {}
        (got, want) => panic!("text {text:?} steps {steps:?}: got {got:?}, expected {want:?}"),
    }
}

/// Merges that chain (`a`, `aa`, `aaa`... and branches of it), as a tokforge merge list: the
/// derived vocabulary is refused with `InvalidVocab` exactly when its token lengths pass
/// [`tokforge::vocab::MAX_SPLIT_WORK`] (computed here from the merges, without building a
/// token), before anything large is built; otherwise it builds, and a run of the chain's letter
/// round-trips through an encoder without a pretokenizer.
pub fn merge_chain(data: &[u8]) {
    let [n0, n1, step, rest @ ..] = data else {
        return;
    };
    // Up to 65,535 merges: long chains reach the limit, short ones build.
    let n = u16::from_le_bytes([*n0, *n1]) as usize;
    let mut merges: Vec<(Rank, Rank)> = Vec::with_capacity(n);
    let mut lengths: Vec<u64> = vec![1; 256];
    for k in 0..n {
        let id = 256 + k as Rank;
        // Mostly extend the last token by a byte; a fuzzed byte sometimes joins two earlier
        // tokens instead (doubling lengths).
        let b = rest.get(k % rest.len().max(1)).copied().unwrap_or(0);
        let pair = if k == 0 {
            (*step as Rank, *step as Rank)
        } else if b % 7 == 0 {
            (id - 1, 256 + (b as Rank * 31) % (id - 256))
        } else {
            (id - 1, *step as Rank)
        };
        lengths.push(lengths[pair.0 as usize].saturating_add(lengths[pair.1 as usize]));
        merges.push(pair);
    }
    let work: u64 = lengths
        .iter()
        .fold(0u64, |w, &l| w.saturating_add(l.saturating_mul(l)));
    let fits = work <= tokforge::vocab::MAX_SPLIT_WORK;
    let ranks = match ranks_from_merges(&merges) {
        Ok(r) => r,
        Err(TokforgeError::InvalidVocab(_)) if !fits => return,
        Err(e) => panic!("{n} merges (work {work}) refused: {e:?}"),
    };
    assert!(fits, "{n} merges with work {work} were built");
    let vocab = Vocab::new(ranks, vec![], None).expect("derived tokens build a vocabulary");
    let enc =
        Encoder::new(vocab, Box::new(tokforge::pretokenize::NoPretokenizer)).expect("an encoder");
    let text = vec![*step; 1 + rest.len() * 7];
    let text = String::from_utf8_lossy(&text).into_owned();
    let ids = enc.encode_ordinary(&text).expect("bytes are tokens");
    assert_eq!(enc.decode_bytes(&ids).unwrap(), text.as_bytes());
}
