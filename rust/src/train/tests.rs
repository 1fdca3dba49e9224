//! The trainer against a naive one, the counter's invariances, the corpus readers.

use rustc_hash::FxHashMap;

use super::corpus::{extract_field, space_cut, BLOCK_BYTES};
use super::trainer::{merge_word, MergeJob};
use super::*;
use crate::pretokenize::{PretokenizerSpec, WhitespacePretokenizer};
use crate::vocab::Rank;

fn counter(name: &str, threads: usize) -> PretokenCounter {
    PretokenCounter::new(
        PretokenizerSpec::from_name(name).unwrap().build().unwrap(),
        &[],
        threads,
    )
    .unwrap()
}

fn train_texts(
    name: &str,
    texts: &[&str],
    config: TrainConfig,
    threads: usize,
) -> (Vec<Merge>, StopReason) {
    let mut c = counter(name, threads);
    c.add_texts(texts).unwrap();
    let mut t = c.trainer(config).unwrap();
    let stop = t.run(&mut |_| Ok(())).unwrap();
    (t.merges().to_vec(), stop)
}

/// The textbook walkthrough: `lo` (4), then `low` (4), then `lowe` (2); every other pair
/// occurs once, below the default min_frequency of 2.
#[test]
fn textbook_low_lower_lowest_lowly() {
    let config = TrainConfig {
        merges: 100,
        ..Default::default()
    };
    let (merges, stop) = train_texts("whitespace", &["low lower lowest lowly"], config, 1);
    let l = b'l' as Rank;
    let pairs: Vec<_> = merges.iter().map(|m| (m.pair, m.count)).collect();
    assert_eq!(
        pairs,
        vec![
            ((l, b'o' as Rank), 4),
            ((256, b'w' as Rank), 4),
            ((257, b'e' as Rank), 2)
        ]
    );
    assert_eq!(stop, StopReason::MinFrequency);
}

#[test]
fn merge_word_example() {
    let (a, b, c) = (1, 2, 9);
    let mut w = vec![a, b, a, b];
    let mut changes = Vec::new();
    let n = merge_word(&mut w, a, b, c, |p, up| {
        changes.push((p.left(), p.right(), up))
    });
    assert_eq!(&w[..n], &[c, c]);
    assert_eq!(
        changes,
        vec![(b, a, false), (c, a, true), (c, a, false), (c, c, true)]
    );
    // Overlapping run: "aaa" with (a, a) -> [c, a]; the second (a, a) disappears too.
    let mut w = vec![a, a, a];
    let mut changes = Vec::new();
    let n = merge_word(&mut w, a, a, c, |p, up| {
        changes.push((p.left(), p.right(), up))
    });
    assert_eq!(&w[..n], &[c, a]);
    assert_eq!(changes, vec![(a, a, false), (c, a, true)]);
}

#[test]
fn pair_order_is_left_then_right() {
    assert!(Pair::new(1, 300) < Pair::new(2, 0));
    assert_eq!((Pair::new(7, 9).left(), Pair::new(7, 9).right()), (7, 9));
    let a = MergeJob {
        count: 5,
        pair: Pair::new(1, 2),
    };
    let b = MergeJob {
        count: 5,
        pair: Pair::new(1, 3),
    };
    let c = MergeJob {
        count: 6,
        pair: Pair::new(9, 9),
    };
    assert!(a > b && c > a, "max count first, then the smallest pair");
}

/// Recounts every pair before every merge: slow and obviously right.
fn naive_train(words: &[(Vec<u8>, u64)], config: TrainConfig) -> Vec<Merge> {
    let mut syms: Vec<(Vec<Rank>, u64)> = words
        .iter()
        .map(|(w, c)| (w.iter().map(|&b| b as Rank).collect(), *c))
        .collect();
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut merges = Vec::new();
    while merges.len() < config.merges {
        let mut counts: std::collections::BTreeMap<(Rank, Rank), u64> = Default::default();
        for (w, c) in &syms {
            for p in w.windows(2) {
                *counts.entry((p[0], p[1])).or_default() += c;
            }
        }
        let best = counts
            .iter()
            .filter(|(&(l, r), _)| {
                let m = [tokens[l as usize].as_slice(), tokens[r as usize].as_slice()].concat();
                config.max_token_bytes.map_or(true, |x| m.len() <= x) && !tokens.contains(&m)
            })
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)));
        let Some((&(l, r), &count)) = best else { break };
        if count < config.min_frequency.max(1) {
            break;
        }
        let id = tokens.len() as Rank;
        tokens.push([tokens[l as usize].as_slice(), tokens[r as usize].as_slice()].concat());
        for (w, _) in &mut syms {
            let mut out = Vec::with_capacity(w.len());
            let mut i = 0;
            while i < w.len() {
                if i + 1 < w.len() && w[i] == l && w[i + 1] == r {
                    out.push(id);
                    i += 2;
                } else {
                    out.push(w[i]);
                    i += 1;
                }
            }
            *w = out;
        }
        merges.push(Merge {
            pair: (l, r),
            count,
        });
    }
    merges
}

/// A small deterministic generator (xorshift64*), so the test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn matches_naive_trainer_on_random_corpora() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..60 {
        // Few distinct bytes: many ties, long runs, overlapping pairs.
        let alphabet: &[u8] = if case % 3 == 0 { b"ab" } else { b"abcab d" };
        let n_words = 1 + rng.below(30) as usize;
        let words: Vec<(Vec<u8>, u64)> = (0..n_words)
            .map(|_| {
                let len = 1 + rng.below(12) as usize;
                let w = (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect();
                (w, 1 + rng.below(5))
            })
            .collect();
        // Same word twice: sum the counts, as the counter would.
        let mut map: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
        for (w, c) in words {
            *map.entry(w).or_default() += c;
        }
        let words: Vec<(Vec<u8>, u64)> = map.into_iter().collect();
        let config = TrainConfig {
            merges: 40,
            min_frequency: 1 + (case % 2) as u64,
            max_token_bytes: if case % 4 == 1 { Some(3) } else { None },
        };
        let expected = naive_train(&words, config);
        let mut t = Trainer::new(words.iter().map(|(w, c)| (w, *c)), config).unwrap();
        t.run(&mut |_| Ok(())).unwrap();
        assert_eq!(t.merges(), expected.as_slice(), "case {case}: {words:?}");
        // The order of the words does not matter.
        let mut t = Trainer::new(words.iter().rev().map(|(w, c)| (w, *c)), config).unwrap();
        t.run(&mut |_| Ok(())).unwrap();
        assert_eq!(t.merges(), expected.as_slice(), "case {case}, reversed");
    }
}

#[test]
fn arbitrary_alphabet_matches_bytes_and_barriers_split_words() {
    // The byte alphabet given explicitly: the same merges as `Trainer::new`.
    let words: Vec<(Vec<u8>, u64)> = vec![
        (b"abab".to_vec(), 3),
        (b"bab".to_vec(), 2),
        (b"aab".to_vec(), 1),
    ];
    let config = TrainConfig {
        merges: 10,
        min_frequency: 1,
        max_token_bytes: None,
    };
    let mut t = Trainer::new(words.iter().map(|(w, c)| (w, *c)), config).unwrap();
    t.run(&mut |_| Ok(())).unwrap();
    let syms: Vec<(Vec<Rank>, u64)> = words
        .iter()
        .map(|(w, c)| (w.iter().map(|&b| b as Rank).collect(), *c))
        .collect();
    let alphabet: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut u = Trainer::with_alphabet(alphabet, &[], syms, config).unwrap();
    u.run(&mut |_| Ok(())).unwrap();
    assert_eq!(t.merges(), u.merges());

    // Characters: 'x' is outside the alphabet, so "abxab" is the words "ab" and "ab";
    // "ab" is reserved, so (a, b) is never merged and (b, a) never occurs.
    let mut c = PretokenCounter::new(Box::new(WhitespacePretokenizer), &[], 1).unwrap();
    c.add_texts(&["abxab abxab é日é日"]).unwrap();
    let alphabet = ['a', 'b', 'é', '日'];
    let mut t = c.char_trainer(&alphabet, &[], config).unwrap();
    t.run(&mut |_| Ok(())).unwrap();
    assert_eq!(t.merges()[0].pair, (0, 1));
    assert_eq!(t.merges()[0].count, 4);
    assert_eq!(t.token_bytes(4), Some(b"ab".as_slice()));
    let mut t = c
        .char_trainer(&alphabet, &[b"ab".to_vec()], config)
        .unwrap();
    t.run(&mut |_| Ok(())).unwrap();
    assert_eq!(t.merges()[0].pair, (2, 3));
    assert_eq!(t.token_bytes(4), Some("é日".as_bytes()));
    let counts = c.char_counts().unwrap();
    assert_eq!(counts[0], ('a', 4));
    // 16 characters: a and b cover exactly half; then ties of 2 go by code point.
    assert_eq!(coverage_alphabet(&counts, 0.5), vec!['a', 'b']);
    assert_eq!(coverage_alphabet(&counts, 0.51), vec!['a', 'b', ' ']);
    assert!(Trainer::with_alphabet(
        vec![vec![1], vec![1]],
        &[],
        Vec::<(Vec<Rank>, u64)>::new(),
        config
    )
    .is_err());
}

#[test]
fn counts_beyond_32_bits_are_kept_whole() {
    // Word counts past u32::MAX, as a huge corpus gives: the header splits each count in
    // two halves, and pair counts add them up.
    let big = 5u64 << 32;
    let words = vec![
        (b"abab".to_vec(), big + 7),
        (b"ba".to_vec(), (1u64 << 40) + 1),
    ];
    let config = TrainConfig {
        merges: 3,
        min_frequency: 1,
        max_token_bytes: None,
    };
    let mut t = Trainer::new(words.iter().map(|(w, c)| (w, *c)), config).unwrap();
    t.run(&mut |_| Ok(())).unwrap();
    // (b, a): once in "abab" and once in "ba"; (a, b): twice in "abab".
    assert_eq!(
        t.merges()[0],
        Merge {
            pair: (98, 97),
            count: big + 7 + (1u64 << 40) + 1
        }
    );
    assert_eq!(t.merges(), naive_train(&words, config).as_slice());
}

#[test]
fn thread_count_and_text_order_do_not_matter() {
    let base = "the cat sat on the mat; the dog sat on the log.\n12345 6789 ok\n";
    let texts: Vec<String> = (0..200)
        .map(|i| format!("{base}{} {}\n", i % 7, "the ".repeat(i % 5)))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let config = TrainConfig {
        merges: 60,
        ..Default::default()
    };
    let (one, _) = train_texts("cl100k", &refs, config, 1);
    assert!(!one.is_empty());
    for threads in [2, 4] {
        assert_eq!(train_texts("cl100k", &refs, config, threads).0, one);
    }
    let rev: Vec<&str> = refs.iter().rev().copied().collect();
    assert_eq!(train_texts("cl100k", &rev, config, 3).0, one);
}

#[test]
fn large_texts_are_cut_without_changing_counts() {
    let line = "Hello world, 12345 numbers!\n  indented line\n/path/x\nfoo  \n\n";
    let big = line.repeat(BLOCK_BYTES / line.len() * 2 + 7);
    let mut whole = counter("cl100k", 1);
    whole.add_texts(&[big.as_str()]).unwrap(); // one thread: still cut, but sequential
    let mut reference: FxHashMap<Vec<u8>, u64> = FxHashMap::default();
    let pre = PretokenizerSpec::from_name("cl100k")
        .unwrap()
        .build()
        .unwrap();
    let mut ranges = Vec::new();
    pre.split(&big, &mut ranges).unwrap();
    for r in ranges {
        *reference.entry(big.as_bytes()[r].to_vec()).or_default() += 1;
    }
    let mut expected: Vec<(Vec<u8>, u64)> = reference.into_iter().collect();
    expected.sort();
    assert_eq!(whole.sorted_counts(), expected);
    let mut par = counter("cl100k", 4);
    par.add_texts(&[big.as_str()]).unwrap();
    assert_eq!(par.sorted_counts(), expected);
    assert_eq!(par.stats().documents, 1);
}

#[test]
fn safe_cut_points() {
    assert_eq!(safe_cut(b"ab\ncd\nef"), Some(6));
    assert_eq!(
        safe_cut(b"ab\ncd\n ef"),
        Some(3),
        "a line starting with a space is not a cut"
    );
    assert_eq!(
        safe_cut(b"ab\n/cd\n\n"),
        None,
        "o200k may join `\\n/`; a trailing newline neither"
    );
    assert_eq!(
        safe_cut("a\n\u{3000}b".as_bytes()),
        None,
        "ideographic space is whitespace"
    );
    assert_eq!(safe_cut("a\n\u{4e2d}b".as_bytes()), Some(2));
    assert_eq!(space_cut(b"ab  cd ef"), Some(6));
}

#[test]
fn specials_are_cut_out() {
    let specials = vec!["<|endoftext|>".to_string()];
    let pre = PretokenizerSpec::from_name("cl100k")
        .unwrap()
        .build()
        .unwrap();
    let mut c = PretokenCounter::new(pre, &specials, 1).unwrap();
    c.add_texts(&["hi<|endoftext|>hi"]).unwrap();
    assert_eq!(c.sorted_counts(), vec![(b"hi".to_vec(), 2)]);
}

#[test]
fn max_token_bytes_and_stop_reasons() {
    let config = TrainConfig {
        merges: 50,
        min_frequency: 1,
        max_token_bytes: Some(2),
    };
    let (merges, stop) = train_texts("whitespace", &["aaaa bbbb aaaa"], config, 1);
    assert_eq!(
        merges.iter().map(|m| m.pair).collect::<Vec<_>>(),
        vec![(97, 97), (98, 98)]
    );
    assert_eq!(stop, StopReason::NoPairs);
    let config = TrainConfig {
        merges: 1,
        min_frequency: 1,
        max_token_bytes: None,
    };
    assert_eq!(
        train_texts("whitespace", &["abab"], config, 1).1,
        StopReason::Done
    );
}

#[test]
fn files_plain_jsonl_gzip_and_errors() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("tokforge-train-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = "low lower\nlowest lowly\n";
    let plain = dir.join("a.txt");
    std::fs::write(&plain, text).unwrap();
    let jsonl = dir.join("b.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"id\": 1, \"text\": \"low lower\\n\"}\n\n{\"text\": \"lowest lowly\\n\", \"x\": [1, {}]}\n")
        .unwrap();
    std::fs::write(&jsonl, gz.finish().unwrap()).unwrap();

    let mut from_texts = counter("whitespace", 1);
    from_texts.add_texts(&[text]).unwrap();
    for (files, threads) in [(vec![plain.clone()], 1), (vec![jsonl.clone()], 3)] {
        let files: Vec<CorpusFile> = files
            .iter()
            .map(|p| CorpusFile::from_path(p, "text"))
            .collect();
        let mut c = counter("whitespace", threads);
        let mut last = (0, 0);
        c.add_files(&files, Utf8Errors::Strict, &mut |d, t| {
            last = (d, t);
            Ok(())
        })
        .unwrap();
        assert_eq!(c.sorted_counts(), from_texts.sorted_counts(), "{files:?}");
        assert_eq!(last.0, last.1);
    }

    let bad = dir.join("bad.txt");
    std::fs::write(&bad, b"ok line\nsecond \xff line\n").unwrap();
    let mut c = counter("whitespace", 2);
    let err = c.add_files(
        &[CorpusFile::from_path(&bad, "text")],
        Utf8Errors::Strict,
        &mut |_, _| Ok(()),
    );
    let msg = err.unwrap_err().to_string();
    assert!(
        msg.contains("byte 15") && msg.contains("bad.txt (line 2)"),
        "{msg}"
    );
    let mut c = counter("whitespace", 2);
    c.add_files(
        &[CorpusFile::from_path(&bad, "text")],
        Utf8Errors::Replace,
        &mut |_, _| Ok(()),
    )
    .unwrap();
    assert_eq!(c.count_of("\u{fffd}".as_bytes()), 1);

    let badjson = dir.join("c.jsonl");
    std::fs::write(&badjson, "{\"text\": \"a\"}\n{\"body\": \"b\"}\n").unwrap();
    let mut c = counter("whitespace", 2);
    let msg = c
        .add_files(
            &[CorpusFile::from_path(&badjson, "text")],
            Utf8Errors::Strict,
            &mut |_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("c.jsonl") && msg.contains("line 2") && msg.contains("no field \"text\""),
        "{msg}"
    );

    let missing = dir.join("missing.txt");
    let mut c = counter("whitespace", 2);
    let msg = c
        .add_files(
            &[CorpusFile::from_path(&missing, "text")],
            Utf8Errors::Strict,
            &mut |_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing.txt"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn extract_field_cases() {
    assert_eq!(
        extract_field(r#"{"text": "a\nb", "n": 1}"#, "text"),
        Ok(Some("a\nb".into()))
    );
    assert_eq!(extract_field(r#"{"text": null}"#, "text"), Ok(None));
    assert!(extract_field(r#"{"text": 3}"#, "text")
        .unwrap_err()
        .contains("not a string"));
    assert!(extract_field(r#"[1]"#, "text")
        .unwrap_err()
        .contains("not a JSON object"));
    assert!(extract_field(r#"{"a": 1} x"#, "text").is_err());
}

#[test]
fn whitespace_counter_example() {
    let mut c = PretokenCounter::new(Box::new(WhitespacePretokenizer), &[], 2).unwrap();
    c.add_texts(&["a b", "a"]).unwrap();
    assert_eq!(c.most_common(1), vec![(b"a".to_vec(), 2)]);
    assert_eq!(
        c.stats(),
        CountStats {
            bytes: 4,
            pretokens: 4,
            documents: 2
        }
    );
}
