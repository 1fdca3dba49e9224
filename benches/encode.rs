//! Criterion benches of the encode core, in bytes/s of UTF-8 input:
//!
//! - `corpus/<encoding>/<corpus>`: `Encoder::encode_ordinary` over every 4 KB document of a
//!   shared corpus (the unit `benches/encode_bench.py` measures), one thread;
//! - `cold/<encoding>/<corpus>`: the same, but each pass with a new encoder, so the piece cache
//!   starts empty (the cold measure: each document encoded once; building the encoder is
//!   not timed);
//! - `split/<encoding>/<corpus>`: the pretokenizer alone on the same documents, so the
//!   difference is BPE plus output;
//! - `long/<encoding>/<case>`: one long piece (`a` * n, random letters, digits, CJK), where the
//!   merge algorithm dominates.
//!
//! Needs the shared data (`../shared`, or `$TOKFORGE_SHARED`); without it the benches say so and
//! do nothing. Run: `cargo bench --bench encode` (add `-- corpus/cl100k` to filter, or
//! `-- --profile-time 10 corpus/cl100k_base/en_docs` to run one bench under a profiler).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tokforge::io::parse_tiktoken;
use tokforge::pretokenize::PretokenizerSpec;
use tokforge::{Encoder, Vocab};

const CORPORA: [&str; 6] = [
    "en_docs",
    "code_py",
    "man_de",
    "man_ja",
    "man_ru",
    "man_zh_CN",
];
const ENCODINGS: [(&str, &str); 2] = [("cl100k_base", "cl100k"), ("o200k_base", "o200k")];

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("TOKFORGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    p.join("vocabs").is_dir().then_some(p)
}

fn encoder(shared: &std::path::Path, name: &str, preset: &str) -> Encoder {
    let path = shared.join("vocabs").join(format!("{name}.tiktoken"));
    let data = std::fs::read(&path).expect("rank file");
    let ranks = parse_tiktoken(&data, &path.to_string_lossy()).expect("rank file parses");
    let vocab = Vocab::new(ranks, vec![], None).expect("vocab");
    let pretok = PretokenizerSpec::from_name(preset)
        .and_then(|s| s.build())
        .expect("preset");
    Encoder::new(vocab, pretok).expect("encoder")
}

/// `text` cut into documents of about `size` bytes, at character boundaries.
fn documents(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

/// A deterministic pseudo-random generator (xorshift), so every run sees the same input.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn long_cases(n: usize) -> Vec<(&'static str, String)> {
    let mut s = 0x2545F4914F6CDD1Du64;
    let letters: String = (0..n)
        .map(|_| (b'a' + (xorshift(&mut s) % 26) as u8) as char)
        .collect();
    let digits: String = (0..n)
        .map(|_| (b'0' + (xorshift(&mut s) % 10) as u8) as char)
        .collect();
    let cjk: String = (0..n / 3)
        .map(|_| char::from_u32(0x4E00 + (xorshift(&mut s) % 0x51A5) as u32).unwrap())
        .collect();
    vec![
        ("a", "a".repeat(n)),
        ("letters", letters),
        ("digits", digits),
        ("cjk", cjk),
        ("spaces", format!("x{}y", " ".repeat(n))),
    ]
}

/// One group `group`, one bench per corpus: `f` on each of its ~4 KB documents, one thread.
fn per_document(c: &mut Criterion, group: &str, corpora: &[(&str, String)], f: impl Fn(&str)) {
    let mut g = c.benchmark_group(group);
    for (corpus, text) in corpora {
        let docs = documents(text, 4096);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(corpus), |b| {
            b.iter(|| docs.iter().for_each(|d| f(d)))
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let Some(shared) = shared() else {
        eprintln!("benches/encode.rs: ../shared not found (set TOKFORGE_SHARED); nothing to run");
        return;
    };
    // Each shared corpus as ~4 KB documents, read once for every group.
    let corpora: Vec<(&str, String)> = CORPORA
        .iter()
        .filter_map(|corpus| {
            let path = shared.join("corpora").join(format!("{corpus}.txt"));
            Some((*corpus, std::fs::read_to_string(path).ok()?))
        })
        .collect();
    for (name, preset) in ENCODINGS {
        let enc = encoder(&shared, name, preset);
        per_document(c, &format!("corpus/{name}"), &corpora, |d| {
            std::hint::black_box(enc.encode_ordinary(d).unwrap());
        });
        let mut g = c.benchmark_group(format!("cold/{name}"));
        g.sample_size(10);
        for (corpus, text) in &corpora {
            let docs = documents(text, 4096);
            g.throughput(Throughput::Bytes(text.len() as u64));
            g.bench_function(BenchmarkId::from_parameter(corpus), |b| {
                b.iter_batched(
                    || encoder(&shared, name, preset),
                    |enc| {
                        for d in &docs {
                            std::hint::black_box(enc.encode_ordinary(d).unwrap());
                        }
                        enc
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        g.finish();
        per_document(c, &format!("split/{name}"), &corpora, |d| {
            std::hint::black_box(enc.split(d).unwrap());
        });
        let mut g = c.benchmark_group(format!("long/{name}"));
        g.sample_size(10);
        for (label, text) in long_cases(1 << 20) {
            g.throughput(Throughput::Bytes(text.len() as u64));
            g.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| std::hint::black_box(enc.encode_ordinary(&text).unwrap()))
            });
        }
        g.finish();
    }
}

criterion_group!(encode, benches);
criterion_main!(encode);
