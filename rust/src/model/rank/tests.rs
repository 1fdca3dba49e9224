//! The fast loops against the oracle.

use super::oracle::{merge_large, merge_small};
use super::short::{merge_ids_small, merge_ids_tagged, merge_short_bytes_sized};
use super::*;

fn vocab(extra: &[&[u8]]) -> Vocab {
    let mut ranks: Vec<(Vec<u8>, Rank)> = (0..=255u8).map(|b| (vec![b], b as Rank)).collect();
    for (k, t) in extra.iter().enumerate() {
        ranks.push((t.to_vec(), 256 + k as Rank));
    }
    Vocab::new(ranks, vec![], None).unwrap()
}

fn split<'a>(piece: &'a [u8], starts: &[usize]) -> Vec<&'a [u8]> {
    let mut v = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(piece.len());
        v.push(&piece[s..e]);
    }
    v
}

#[test]
fn textbook_example() {
    // Ranks: "lo" < "low" < "er": "lower" -> low|er.
    let v = vocab(&[b"lo", b"low", b"er", b"lowe"]);
    let p = b"lower";
    let all: Vec<usize> = (0..p.len()).collect();
    // "lo" then "low" then "lowe" (rank 259) beats "er" (258)? No: "er" has rank 258 < 259.
    assert_eq!(split(p, &merge_small(&v, p, &all)), [&b"low"[..], b"er"]);
    assert_eq!(split(p, &merge_large(&v, p, &all)), [&b"low"[..], b"er"]);
}

#[test]
fn ties_go_leftmost() {
    let v = vocab(&[b"aa"]);
    let p = b"aaaaa";
    let all: Vec<usize> = (0..p.len()).collect();
    assert_eq!(merge_small(&v, p, &all), vec![0, 2, 4]);
    assert_eq!(merge_large(&v, p, &all), vec![0, 2, 4]);
}

#[test]
fn small_and_large_agree() {
    // A deterministic pseudo-random walk over a 3-letter alphabet with many merges.
    let toks: Vec<&[u8]> = vec![
        b"ab", b"ba", b"aa", b"abc", b"cab", b"bb", b"abab", b"ca", b"aab", b"bca", b"cc", b"abca",
        b"ccc", b"babc", b"aaaa",
    ];
    let v = vocab(&toks);
    let mut state = 0x9E3779B97F4A7C15u64;
    for len in 1..300 {
        let p: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"abc"[(state % 3) as usize]
            })
            .collect();
        let all: Vec<usize> = (0..p.len()).collect();
        assert_eq!(
            merge_small(&v, &p, &all),
            merge_large(&v, &p, &all),
            "{:?}",
            p
        );
    }
}

/// The reference result: [`merge_small`] on bytes, each part looked up.
fn reference_ids(v: &Vocab, p: &[u8]) -> Vec<Rank> {
    let all: Vec<usize> = (0..p.len()).collect();
    split(p, &merge_small(v, p, &all))
        .into_iter()
        .map(|t| v.rank(t).expect("part is a token"))
        .collect()
}

/// A `.tiktoken` rank file's lines, `base64 rank` (the model layer reads no file formats).
fn parse_rank_file(data: &[u8]) -> Vec<(Vec<u8>, Rank)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    data.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let line = std::str::from_utf8(l).unwrap();
            let (t, r) = line.split_once(' ').unwrap();
            (b64.decode(t).unwrap(), r.trim().parse().unwrap())
        })
        .collect()
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn id_merge_agrees_with_merge_small() {
    let toks: Vec<&[u8]> = vec![
        b"ab", b"ba", b"aa", b"abc", b"cab", b"bb", b"abab", b"ca", b"aab", b"bca", b"cc", b"abca",
        b"ccc", b"babc", b"aaaa", b"bab", b"cabab",
    ];
    let v = vocab(&toks);
    let mut state = 0x2545F4914F6CDD1Du64;
    for len in 1..400 {
        for _ in 0..4 {
            let p: Vec<u8> = (0..len)
                .map(|_| b"abc"[(xorshift(&mut state) % 3) as usize])
                .collect();
            let mut got = vec![7];
            merge_bytes_into(&v, &p, &mut got);
            assert_eq!(got[0], 7);
            assert_eq!(got[1..], reference_ids(&v, &p)[..], "{:?}", p);
            let mut ids = vec![9, 9];
            ids.extend(p.iter().map(|&b| b as Rank));
            merge_ids_into(&v, &mut ids, 2);
            assert_eq!(ids[2..], reference_ids(&v, &p)[..]);
            // Both short loops, directly (the tagged one serves vocabularies whose ids fit
            // 24 bits, the vector one the rest).
            if (2..=SMALL_IDS).contains(&p.len()) {
                let init: Vec<Rank> = p.iter().map(|&b| b as Rank).collect();
                let ranks: Vec<Rank> = init
                    .windows(2)
                    .map(|w| v.merged_or_none(w[0], w[1]))
                    .collect();
                let (mut a, mut b) = (init.clone(), init);
                let na = merge_ids_tagged::<SMALL_IDS>(&v, &mut a, &ranks);
                let nb = merge_ids_small(&v, &mut b, &mut ranks.clone());
                assert_eq!(a[..na], b[..nb]);
                assert_eq!(a[..na], reference_ids(&v, &p)[..]);
            }
        }
    }
}

/// The real vocabularies, when `../shared` is there: random byte strings built from the
/// corpora's bytes (so merges happen) and from random bytes, up to 300 bytes, id merge
/// against `merge_small`.
#[test]
fn id_merge_agrees_on_shared_vocabularies() {
    let shared = std::env::var_os("TOKFORGE_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    for name in ["cl100k_base", "o200k_base"] {
        let path = shared.join("vocabs").join(format!("{name}.tiktoken"));
        let Ok(data) = std::fs::read(&path) else {
            // The only test of the production merge paths on real vocabularies: CI sets
            // TOKFORGE_REQUIRE_SHARED=1, where a missing file is a failure, not a skip.
            assert!(
                std::env::var("TOKFORGE_REQUIRE_SHARED").as_deref() != Ok("1"),
                "{} not found and TOKFORGE_REQUIRE_SHARED=1 (set TOKFORGE_SHARED to the shared data)",
                path.display()
            );
            eprintln!(
                "SKIPPED id_merge_agrees_on_shared_vocabularies: {} not found (set \
                 TOKFORGE_SHARED; TOKFORGE_REQUIRE_SHARED=1 makes this a failure)",
                path.display()
            );
            return;
        };
        let ranks = parse_rank_file(&data);
        let v = Vocab::new(ranks, vec![], None).unwrap();
        let mut text = Vec::new();
        for corpus in ["en_docs", "man_ja", "man_ru", "code_py"] {
            if let Ok(t) = std::fs::read(shared.join("corpora").join(format!("{corpus}.txt"))) {
                text.extend_from_slice(&t[..t.len().min(200_000)]);
            }
        }
        let mut state = 0x9E3779B97F4A7C15u64;
        for k in 0..3000 {
            // Mostly short pieces, and every tenth up to 1,500 bytes (the chunked path).
            let max = if k % 10 == 0 { 1500 } else { 300 };
            let len = 1 + (xorshift(&mut state) % max) as usize;
            let p: Vec<u8> = if k % 3 == 0 || text.len() < 1000 {
                (0..len).map(|_| xorshift(&mut state) as u8).collect()
            } else {
                let start = (xorshift(&mut state) as usize) % (text.len() - len);
                text[start..start + len].to_vec()
            };
            let mut got = Vec::new();
            merge_bytes_into(&v, &p, &mut got);
            assert_eq!(got, reference_ids(&v, &p), "{name} {:?}", p);
            if p.len() <= SMALL_IDS {
                // The baseline build of the short loop too, where the CPU picks AVX2.
                let mut baseline = Vec::new();
                merge_short_bytes_sized(&v, &p, &mut baseline);
                assert_eq!(baseline, got, "{name} {:?}", p);
            }
        }
        // Runs of one byte and of short periods, across many lengths: the seams of the
        // chunked path fall everywhere relative to the tokens.
        for unit in [
            &b"a"[..],
            b" ",
            b"0",
            b"ab",
            b"\xe4\xb8\xad",
            b"\t\n",
            b"=-",
        ] {
            for reps in [129, 200, 255, 256, 257, 300, 511, 777, 1024, 1500] {
                let p = unit.repeat(reps);
                let mut got = Vec::new();
                merge_bytes_into(&v, &p, &mut got);
                assert_eq!(got, reference_ids(&v, &p), "{name} {unit:?} x {reps}");
            }
        }
    }
}

#[test]
fn chunked_long_pieces_agree_with_merge_small() {
    let toks: Vec<&[u8]> = vec![
        b"ab",
        b"ba",
        b"aa",
        b"abc",
        b"cab",
        b"bb",
        b"abab",
        b"ca",
        b"aab",
        b"bca",
        b"cc",
        b"abca",
        b"ccc",
        b"babc",
        b"aaaa",
        b"bab",
        b"cabab",
        b"aaaaaaaa",
        b"aaa",
        b"bbbb",
        b"ccccc",
        b"abcabc",
        b"cabcab",
    ];
    let v = vocab(&toks);
    let mut state = 0x1234_5678_9ABC_DEF1u64;
    for k in 0..120 {
        let len = 257 + (xorshift(&mut state) % 2500) as usize;
        // Low-entropy alphabets make long tokens and many failed seams.
        let alphabet: &[u8] = match k % 3 {
            0 => b"abc",
            1 => b"aab",
            _ => b"a",
        };
        let p: Vec<u8> = (0..len)
            .map(|_| alphabet[(xorshift(&mut state) % alphabet.len() as u64) as usize])
            .collect();
        let mut got = vec![1, 2];
        merge_bytes_into(&v, &p, &mut got);
        assert_eq!(got[..2], [1, 2]);
        assert_eq!(got[2..], reference_ids(&v, &p)[..], "{:?}", p);
    }
}
