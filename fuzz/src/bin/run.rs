//! Stable-Rust fuzz driver: runs the same target functions as the libFuzzer entry points, on
//! the seed corpus and random mutations of it, for a fixed time. No coverage feedback (that is
//! what `cargo fuzz` adds), but no nightly toolchain needed either.
//!
//! ```text
//! cargo run --release --no-default-features --bin run -- seed            # write corpus/<target>/
//! cargo run --release --no-default-features --bin run -- fuzz all 30     # 30 s per target
//! cargo run --release --no-default-features --bin run -- fuzz train 600
//! cargo run --release --no-default-features --bin run -- replay train artifacts/train/crash-..
//! ```
//! A panicking input is written to `artifacts/<target>/crash-<hash>`, an input running longer
//! than `--hang` seconds (default 10) to `artifacts/<target>/hang-<hash>`; the exit code is 1.

use std::io::Write;
use std::panic;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokforge::io::{ranks_from_merges, TokenizerFile};
use tokforge::pretokenize::PretokenizerSpec;
use tokforge_fuzz::{shared_dir, TARGETS};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// xorshift64*: a small, seedable generator (reproducible runs from `--seed`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Interesting fragments for insertion: regex-engine stressors, UTF-8 edge cases, specials.
const DICT: &[&[u8]] = &[
    b"<|endoftext|>",
    b"<|end",
    b"'s",
    b"'LL",
    b"\r\n",
    b"   ",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xed\xa0\x80",
    b"\xc3",
    b"\xff",
    b"\x00",
    b"123456",
    b"(a+)+$",
    b"(?=a)",
    b"\\p{L}++",
    b"\\s+(?!\\S)",
    b"{1000}",
    b"[^\\r\\n]",
    b"\"merges\": [[1, 2]]",
    b"\"tokens\": [\"YQ==\", null]",
    b"\"special_tokens\": {\"<s>\": 4294967295}",
    b" 4294967295\n",
    b"YWI= 256\n",
    b"\xd8\xa7\xd9\x84",
    b"\xe0\xa4\xa8\xe0\xa4\xbf",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], max_len: usize) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(input.len() + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(i..i, bytes);
            }
            3 if !input.is_empty() => {
                let i = rng.below(input.len());
                let n = 1 + rng.below((input.len() - i).min(64));
                input.drain(i..i + n);
            }
            4 => {
                let i = rng.below(input.len() + 1);
                let word = DICT[rng.below(DICT.len())];
                input.splice(i..i, word.iter().copied());
            }
            5 if !other.is_empty() => {
                // Splice a slice of another corpus entry in.
                let a = rng.below(other.len());
                let b = a + rng.below((other.len() - a).min(256)) + 1;
                let i = rng.below(input.len() + 1);
                input.splice(i..i, other[a..b.min(other.len())].iter().copied());
            }
            6 if !input.is_empty() => {
                // Repeat a slice: long runs are what overflow stacks and trip backtracking.
                let a = rng.below(input.len());
                let b = (a + 1 + rng.below(8)).min(input.len());
                let times = 1 + rng.below(200);
                let chunk = input[a..b].to_vec();
                for _ in 0..times {
                    input.splice(a..a, chunk.iter().copied());
                }
            }
            7 if input.len() > 1 => {
                let n = rng.below(input.len());
                input.truncate(n);
            }
            _ => {}
        }
    }
    input.truncate(max_len);
}

fn load_corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

fn save_artifact(target: &str, kind: &str, data: &[u8]) -> PathBuf {
    let dir = fuzz_dir().join("artifacts").join(target);
    let _ = std::fs::create_dir_all(&dir);
    // FNV-1a names the file by its content.
    let h = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{kind}-{h:016x}"));
    let _ = std::fs::write(&path, data);
    path
}

/// Runs one target for `secs` seconds; returns (executions, failures).
fn fuzz(name: &str, f: fn(&[u8]), secs: f64, seed: u64, max_len: usize, hang: f64) -> (u64, u64) {
    let corpus = load_corpus(name);
    let mut rng = Rng(seed.max(1) ^ (name.len() as u64 * 0x9E37_79B9));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let execs = Arc::new(AtomicU64::new(0));
    let current: Arc<Mutex<Vec<u8>>> = Arc::default();
    let started = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    // Watchdog: an input running longer than `hang` seconds is saved and the process exits.
    {
        let (current, started, name) = (current.clone(), started.clone(), name.to_string());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let s = started.load(Ordering::Relaxed);
            if s != 0 && t0.elapsed().as_millis() as u64 > s + (hang * 1000.0) as u64 {
                let data = current.lock().map(|d| d.clone()).unwrap_or_default();
                let p = save_artifact(&name, "hang", &data);
                eprintln!(
                    "HANG in {name}: an input ran over {hang} s; saved to {}",
                    p.display()
                );
                std::process::exit(1);
            }
        });
    }
    // Warm up (loads the vocabulary) outside the timed hang check.
    f(&corpus[0]);
    let mut failures = 0;
    let mut i = 0usize;
    while Instant::now() < deadline {
        let mut input = corpus[i % corpus.len()].clone();
        i += 1;
        if i > corpus.len() {
            let other = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, &mut input, other, max_len);
        }
        *current.lock().expect("lock") = input.clone();
        started.store(t0.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        let r = panic::catch_unwind(|| f(&input));
        started.store(0, Ordering::Relaxed);
        execs.fetch_add(1, Ordering::Relaxed);
        if r.is_err() {
            failures += 1;
            let p = save_artifact(name, "crash", &input);
            eprintln!("CRASH in {name}: saved to {}", p.display());
            if failures >= 5 {
                break;
            }
        }
    }
    (execs.load(Ordering::Relaxed), failures)
}

fn write_seed(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    std::fs::write(dir.join(name), data).expect("write seed");
}

/// Cuts `text` into `n` pieces of about `size` bytes at char boundaries.
fn chunks(text: &str, n: usize, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let step = (text.len() / n.max(1)).max(1);
    let mut at = 0;
    while out.len() < n && at < text.len() {
        let mut s = at;
        while !text.is_char_boundary(s) {
            s += 1;
        }
        let mut e = (s + size).min(text.len());
        while !text.is_char_boundary(e) {
            e -= 1;
        }
        if s < e {
            out.push(&text[s..e]);
        }
        at += step;
    }
    out
}

/// Writes seed corpora from `../shared` (corpora and rank files) plus hand-made hostile seeds.
fn seed() {
    let shared = shared_dir();
    let mut texts: Vec<String> = Vec::new();
    for name in [
        "en_docs",
        "code_py",
        "man_de",
        "man_ja",
        "man_ru",
        "man_zh_CN",
    ] {
        match std::fs::read_to_string(shared.join(format!("corpora/{name}.txt"))) {
            Ok(t) => texts.extend(chunks(&t, 8, 600).into_iter().map(str::to_string)),
            Err(e) => eprintln!("note: {name}: {e} (seeding without it)"),
        }
    }
    texts.extend(
        [
            "hello world <|endoftext|> x",
            "<|end<|endoftext|>of",
            "I'm   here\r\n\r\n\t  'S 'll 123456789",
            "a\u{0301}\u{200d}\u{1F600}\u{FFFD}",
            "",
            "    \n",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let enc = PretokenizerSpec::from_name("cl100k")
        .and_then(|s| s.build())
        .expect("cl100k");
    let ranks = tokforge_fuzz::base_ranks().clone();
    let vocab = tokforge::Vocab::new(ranks, vec![], None).expect("vocab");
    let encoder = tokforge::Encoder::new(vocab, enc).expect("encoder");
    for (i, t) in texts.iter().enumerate() {
        for sel in 0..5u8 {
            let mut d = vec![sel];
            d.extend_from_slice(t.as_bytes());
            if i % 5 == sel as usize || t.len() < 64 {
                write_seed("encode_presets", &format!("s{i}-{sel}"), &d);
            }
        }
        let ids = encoder.encode_ordinary(t).expect("encode");
        let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        write_seed("decode_ids", &format!("s{i}"), &bytes);
        let mut d = vec![(i % 4) as u8];
        d.extend_from_slice(&bytes);
        write_seed("stream_decode", &format!("s{i}"), &d);
        let mut d = vec![(i * 7 % 48) as u8, (i % 3) as u8, (i * 8 % 32) as u8];
        d.extend_from_slice(t.as_bytes());
        write_seed("train", &format!("s{i}"), &d);
    }
    let patterns = [
        tokforge::pretokenize::CL100K_PATTERN,
        tokforge::pretokenize::GPT2_PATTERN,
        r"\w+|\s+|[^\w\s]+",
        r"(?i:the)|\p{Han}+|.",
        r"(a+)+$",
        r"(?=\s)\s|\S+",
        r"\X",
        r"\b",
        r"",
    ];
    for (i, p) in patterns.iter().enumerate() {
        let mut d = p.as_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(texts[i * 3 % texts.len()].as_bytes());
        write_seed("encode_regex", &format!("p{i}"), &d);
    }
    // Rank files: slices of the shared ones, and small ones.
    for name in ["cl100k_base", "o200k_base"] {
        if let Ok(t) = std::fs::read_to_string(shared.join(format!("vocabs/{name}.tiktoken"))) {
            for (k, c) in chunks(&t, 4, 3000).iter().enumerate() {
                let start = c.find('\n').map_or(0, |i| i + 1);
                write_seed(
                    "parse_tiktoken",
                    &format!("{name}-{k}"),
                    &c.as_bytes()[start..],
                );
            }
        }
    }
    write_seed("parse_tiktoken", "small", b"YQ== 0\nYg== 1\nYWI= 2\n");
    write_seed("parse_tiktoken", "dup", b"YQ== 0\nYQ== 1\n");
    // tokforge JSON files of each shape.
    let merges = vec![(108, 111), (256, 119), (32, 257)];
    let specs = [
        PretokenizerSpec::from_name("cl100k").expect("preset"),
        PretokenizerSpec::Whitespace,
        PretokenizerSpec::None,
        PretokenizerSpec::Regex {
            pattern: r"\w+|\W".into(),
            preset: None,
        },
    ];
    for (i, spec) in specs.into_iter().enumerate() {
        let mut f = TokenizerFile {
            name: format!("seed{i}"),
            pretokenizer: spec,
            ranks: ranks_from_merges(&merges).expect("merges"),
            merges: Some(merges.clone()),
            special_tokens: vec![("<|endoftext|>".into(), 259)],
            byte_fallback: None,
            metadata: Default::default(),
        };
        write_seed("parse_json", &format!("merges{i}"), &f.to_json());
        f.merges = None;
        write_seed("parse_json", &format!("ranks{i}"), &f.to_json());
    }
    // HF tokenizer.json documents of both families, each followed by NUL and a text.
    let hf_docs = [
        r#"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"Ġab":4},"merges":["a b",["Ġ","ab"]],"ignore_merges":true},"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":true,"use_regex":true},"decoder":{"type":"ByteLevel"},"added_tokens":[{"id":5,"content":"<|endoftext|>","special":true}]}"#,
        r#"{"model":{"type":"BPE","vocab":{"<unk>":0,"▁":1,"a":2,"▁a":3,"<0x41>":4},"merges":[["▁","a"]],"byte_fallback":true,"unk_token":"<unk>","fuse_unk":true},"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},"decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}}"#,
        r#"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true},{"type":"Digits","individual_digits":true},{"type":"Split","pattern":{"Regex":"\s+"},"behavior":"MergedWithNext","invert":false}]},"decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first"}}"#,
    ];
    for (i, doc) in hf_docs.iter().enumerate() {
        for (k, t) in texts.iter().step_by(97).enumerate().take(8) {
            let mut d = doc.as_bytes().to_vec();
            d.push(0);
            d.extend_from_slice(t.as_bytes());
            write_seed("parse_hf", &format!("d{i}-{k}"), &d);
        }
    }
    for (i, t) in texts.iter().step_by(131).enumerate().take(20) {
        let mut d = vec![(i % 6) as u8, (i * 5 % 24) as u8];
        d.extend_from_slice(t.as_bytes());
        write_seed("hf_merges", &format!("s{i}"), &d);
    }
    // Normalizers: nine steps `a` -> ten `a`s (past the growth limit at the fourth), one step
    // within it, and a mix of two-letter patterns.
    let mut nine = vec![9u8];
    for _ in 0..9 {
        nine.extend_from_slice(&[0, 0, 10]);
        nine.extend_from_slice(&[0; 10]);
    }
    nine.extend_from_slice(&[0, 1]);
    write_seed("hf_normalizer_growth", "nine", &nine);
    write_seed(
        "hf_normalizer_growth",
        "one",
        &[1, 0, 0, 3, 1, 1, 1, 0, 1, 2, 0],
    );
    write_seed(
        "hf_normalizer_growth",
        "pairs",
        &[3, 0, 3, 2, 1, 2, 1, 1, 0, 4, 5, 2, 0, 0, 1, 2],
    );
    // Merge chains: short ones that build, long ones refused (65,535 merges of one letter).
    for (i, n) in [50u16, 900, 2900, 3100, 65535].into_iter().enumerate() {
        let mut d = n.to_le_bytes().to_vec();
        d.push(b'a');
        d.extend_from_slice(if i % 2 == 0 { b"aaaa" } else { b"a\x07b" });
        write_seed("merge_chain", &format!("n{n}"), &d);
    }
    // Counts files: small real ones, per pretokenizer.
    for (i, spec) in [
        PretokenizerSpec::from_name("cl100k").expect("preset"),
        PretokenizerSpec::Whitespace,
        PretokenizerSpec::None,
    ]
    .into_iter()
    .enumerate()
    {
        let header = tokforge::io::counts::CountsHeader {
            pretokenizer: spec,
            special_tokens: vec!["<|endoftext|>".into()],
            stats: Default::default(),
            min_pretoken_count: 1,
            pruned_distinct: 0,
            pruned_total: 0,
        };
        let records: Vec<(Vec<u8>, u64)> = vec![
            (b" the".to_vec(), 1000),
            (b"hello".to_vec(), 3),
            ("日本".as_bytes().to_vec(), 1 << 40),
        ];
        let bytes = tokforge::io::counts::encode_records(&header, &records).expect("counts file");
        write_seed("parse_counts", &format!("c{i}"), &bytes);
    }
    let mut n = 0;
    for t in TARGETS {
        n += std::fs::read_dir(fuzz_dir().join("corpus").join(t.0)).map_or(0, |d| d.count());
    }
    println!(
        "seeded {n} files under {}",
        fuzz_dir().join("corpus").display()
    );
}

fn usage() -> ! {
    eprintln!(
        "usage: run seed | run fuzz <target|all> <seconds per target> [--seed N] [--max-len N] \
         [--hang SECONDS] | run replay <target> FILE..."
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: f64| -> f64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().unwrap_or_else(|_| usage()))
    };
    match args.first().map(String::as_str) {
        Some("seed") => seed(),
        Some("fuzz") => {
            let which = args.get(1).unwrap_or_else(|| usage());
            let secs: f64 = args
                .get(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| usage());
            let (seed, max_len, hang) = (
                flag("--seed", 1.0) as u64,
                flag("--max-len", 4096.0) as usize,
                flag("--hang", 10.0),
            );
            // Panics are caught and reported per input; keep the default message short.
            panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
            let mut failed = false;
            println!(
                "{:<16} {:>10} {:>8} {:>9}",
                "target", "execs", "seconds", "failures"
            );
            for (name, f) in TARGETS {
                if which != "all" && which != name {
                    continue;
                }
                let t = Instant::now();
                let (execs, fails) = fuzz(name, *f, secs, seed, max_len, hang);
                println!(
                    "{:<16} {:>10} {:>8.1} {:>9}",
                    name,
                    execs,
                    t.elapsed().as_secs_f64(),
                    fails
                );
                let _ = std::io::stdout().flush();
                failed |= fails > 0;
            }
            std::process::exit(i32::from(failed));
        }
        Some("replay") => {
            let name = args.get(1).unwrap_or_else(|| usage());
            let f = TARGETS
                .iter()
                .find(|t| t.0 == name)
                .unwrap_or_else(|| usage())
                .1;
            for p in &args[2..] {
                let data = std::fs::read(Path::new(p)).expect("read input");
                f(&data);
                println!("{p}: ok");
            }
        }
        _ => usage(),
    }
}
