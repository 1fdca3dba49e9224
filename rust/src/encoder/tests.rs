//! The encoder's behaviour: specials, fallback, lineage, streams, batches, the piece cache.

use super::*;

use crate::pretokenize::{NoPretokenizer, PretokenizerSpec};
use crate::TokforgeError;

fn byte_vocab(extra: &[&str], specials: &[(&str, Rank)]) -> Vocab {
    let mut ranks: Vec<(Vec<u8>, Rank)> = (0..=255u8).map(|b| (vec![b], b as Rank)).collect();
    for (k, t) in extra.iter().enumerate() {
        ranks.push((t.as_bytes().to_vec(), 256 + k as Rank));
    }
    Vocab::new(
        ranks,
        specials.iter().map(|(s, i)| (s.to_string(), *i)).collect(),
        None,
    )
    .unwrap()
}

fn cl100k_like(extra: &[&str], specials: &[(&str, Rank)]) -> Encoder {
    let pre = PretokenizerSpec::from_name("cl100k")
        .unwrap()
        .build()
        .unwrap();
    Encoder::new(byte_vocab(extra, specials), pre).unwrap()
}

#[test]
fn specials_allowed_disallowed_and_plain() {
    let enc = cl100k_like(&["he", "hel", "hell", "hello"], &[("<|eot|>", 1000)]);
    let all = enc.policy(|_| true, |_| false);
    let (ids, last) = enc.encode_with_policy("hello<|eot|>", &all).unwrap();
    assert_eq!(ids, vec![259, 1000]);
    assert_eq!(last, 0);
    let err = enc
        .encode_with_policy("hi <|eot|>", &enc.default_policy())
        .unwrap_err();
    assert!(matches!(err, TokforgeError::DisallowedSpecial(ref s) if s == "<|eot|>"));
    let plain = enc.policy(|_| false, |_| false);
    let (ids, _) = enc.encode_with_policy("<|eot|>", &plain).unwrap();
    assert_eq!(enc.decode_bytes(&ids).unwrap(), b"<|eot|>");
    assert!(!ids.contains(&1000));
}

#[test]
fn byte_fallback_for_unknown_characters() {
    // Character-level vocabulary: a, b, ab, and the 256 fallback tokens at 0..256.
    let ranks = vec![
        (b"a".to_vec(), 256),
        (b"b".to_vec(), 257),
        (b"ab".to_vec(), 258),
    ];
    let vocab = Vocab::new(ranks, vec![], Some((0..256).collect())).unwrap();
    let enc = Encoder::new(vocab, Box::new(NoPretokenizer)).unwrap();
    let ids = enc.encode_ordinary("ab€ba").unwrap();
    assert_eq!(ids, vec![258, 0xE2, 0x82, 0xAC, 257, 256]);
    assert_eq!(enc.decode_bytes(&ids).unwrap(), "ab€ba".as_bytes());
}

#[test]
fn char_vocab_without_fallback_is_an_error() {
    let vocab = Vocab::new(vec![(b"a".to_vec(), 0)], vec![], None).unwrap();
    let enc = Encoder::new(vocab, Box::new(NoPretokenizer)).unwrap();
    assert!(matches!(
        enc.encode_ordinary("ax"),
        Err(TokforgeError::NotAToken(_))
    ));
}

#[test]
fn merge_parts_below_recovers_merges() {
    let enc = cl100k_like(&["lo", "low", "er", "lower"], &[]);
    assert_eq!(
        enc.merge_parts_below(b"lower", 259).unwrap(),
        vec![257, 258]
    );
    assert_eq!(enc.merge_parts_below(b"low", 257).unwrap(), vec![256, 119]);
    assert_eq!(enc.merge_parts_below(b"lo", 256).unwrap(), vec![108, 111]);
    assert_eq!(
        enc.merge_parts_below(b"lower", u32::MAX).unwrap(),
        vec![259]
    );
}

#[test]
fn stream_decoder_emits_whole_characters() {
    let vocab = byte_vocab(&[], &[]);
    let mut d = StreamDecoder::new(false);
    let euro = "€".as_bytes();
    assert_eq!(d.push(&vocab, euro[0] as Rank).unwrap(), "");
    assert_eq!(d.push(&vocab, euro[1] as Rank).unwrap(), "");
    assert_eq!(d.push(&vocab, euro[2] as Rank).unwrap(), "€");
    assert_eq!(d.push(&vocab, 0xFF).unwrap(), "\u{FFFD}");
    assert_eq!(d.push(&vocab, 0xE2).unwrap(), "");
    assert_eq!(d.finish().unwrap(), "\u{FFFD}");
    let mut strict = StreamDecoder::new(true);
    assert!(strict.push(&vocab, 0xFF).is_err());
}

#[test]
fn batch_equals_single() {
    let enc = cl100k_like(&["he", "ll", "llo"], &[]);
    let texts: Vec<String> = (0..50)
        .map(|i| format!("hello {i} world {}", "x".repeat(i)))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let p = enc.default_policy();
    let batch = enc.encode_batch(&refs, &p, 4).unwrap();
    for (t, b) in refs.iter().zip(batch) {
        assert_eq!(enc.encode_ordinary(t).unwrap(), b);
    }
}

#[test]
fn long_piece_round_trips() {
    let enc = cl100k_like(&["aa", "aaaa", "aaaaaaaa"], &[]);
    let text = "a".repeat(100_001);
    let ids = enc.encode_ordinary(&text).unwrap();
    assert_eq!(enc.decode_bytes(&ids).unwrap(), text.as_bytes());
    assert_eq!(ids.len(), 100_001 / 8 + 1);
}

#[test]
fn a_disallowed_special_anywhere_fails_even_inside_an_allowed_one() {
    // "<s>" = 256, "<s><s>" = 257; bytes are their own ids ('<' 60, 's' 115, '>' 62).
    let enc = cl100k_like(&[], &[("<s>", 256), ("<s><s>", 257)]);
    let only_long = enc.policy(|s| s == "<s><s>", |s| s == "<s>");
    let err = enc.encode_with_policy("<s><s>", &only_long).unwrap_err();
    assert!(matches!(err, TokforgeError::DisallowedSpecial(ref s) if s == "<s>"));
    // disallowed wins over allowed for the same token
    let both = enc.policy(|_| true, |s| s == "<s><s>");
    assert!(enc.encode_with_policy("x<s><s>", &both).is_err());
    // a shorter disallowed token at the start of a longer plain one
    let short = enc.policy(|_| false, |s| s == "<s>");
    assert!(enc.encode_with_policy("<s><s>", &short).is_err());
    let long_allowed = enc.policy(|s| s == "<s><s>", |_| false);
    assert_eq!(
        enc.encode_with_policy("<s><s><s>", &long_allowed)
            .unwrap()
            .0,
        // "<s><s>" at 0..6 is allowed; "<s>" at 6..9 is plain text
        vec![257, 60, 115, 62]
    );
}

#[test]
fn long_special_tokens_are_matched_by_an_automaton_built_in_linear_time() {
    let long = "y".repeat(100_000);
    let enc = cl100k_like(&[], &[(&long, 256), ("<s>", 257)]);
    assert_eq!(
        enc.specials.matcher_kind(),
        Some(aho_corasick::AhoCorasickKind::ContiguousNFA)
    );
    let all = enc.policy(|_| true, |_| false);
    let text = format!("a{long}b");
    assert_eq!(
        enc.encode_with_policy(&text, &all).unwrap().0,
        vec![97, 256, 98]
    );
    // short special tokens keep the faster DFA
    let short = cl100k_like(&[], &[("<s>", 256)]);
    assert_eq!(
        short.specials.matcher_kind(),
        Some(aho_corasick::AhoCorasickKind::DFA)
    );
}

#[test]
fn encoding_never_waits_for_the_cache_pool() {
    // A child forked while another thread held the pool's lock finds it held forever. Encoding
    // must go on (with a cold cache) and give the same ids; a wait would hang, so the call runs
    // on a thread and the test fails when it does not answer in time.
    let enc = std::sync::Arc::new(cl100k_like(&["he", "hel", "hell", "hello"], &[]));
    let text = "hello hello, hell and help ".repeat(50);
    let want = enc.encode_ordinary(&text).unwrap();
    let got = enc.caches.while_locked(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let (e, t) = (enc.clone(), text.clone());
        std::thread::spawn(move || {
            let batch = e.encode_batch(&[t.as_str(), "hello"], &e.default_policy(), 2);
            let _ = tx.send((e.encode_ordinary(&t), batch));
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("encoding waited for the held cache-pool lock")
    });
    assert_eq!(got.0.unwrap(), want);
    assert_eq!(got.1.unwrap()[0], want);
}
