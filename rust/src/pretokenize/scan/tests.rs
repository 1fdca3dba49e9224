//! The scanners against fancy-regex (tiktoken's engine) on the shared corpora, on pseudo-random
//! strings over the hard cases, and on the worst cases.

use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use crate::pretokenize::{PretokenizerSpec, RegexPretokenizer};

const PRESETS: [(&str, &str); 3] = [
    ("gpt2", GPT2_PATTERN),
    ("cl100k", CL100K_PATTERN),
    ("o200k", O200K_PATTERN),
];

/// Patterns a scanner serves that are not presets: each is held against fancy-regex running
/// exactly that string, like the presets.
const OTHERS: [(&str, &str); 4] = [
    ("llama3", LLAMA3_PATTERN),
    ("qwen2", QWEN2_PATTERN),
    ("cl100k-hf", CL100K_HF_PATTERN),
    ("gpt2-hf", GPT2_HF_PATTERN),
];

/// Every pattern with a scanner.
fn all_scanned() -> impl Iterator<Item = (&'static str, &'static str)> {
    PRESETS.into_iter().chain(OTHERS)
}

fn scanner(pattern: &str) -> Box<dyn Pretokenizer> {
    for_pattern(pattern).expect("a preset pattern")
}

fn ranges(p: &dyn Pretokenizer, text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    p.split(text, &mut out).unwrap();
    out
}

fn pieces<'a>(p: &dyn Pretokenizer, text: &'a str) -> Vec<&'a str> {
    ranges(p, text).into_iter().map(|r| &text[r]).collect()
}

/// Asserts that the scanner and the regex cut `text` into the same pieces; on a difference,
/// shows the first differing piece with some context.
fn assert_same(name: &str, scan: &dyn Pretokenizer, re: &RegexPretokenizer, text: &str) {
    let got = ranges(scan, text);
    let want = ranges(re, text);
    if got == want {
        return;
    }
    let k = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    let around = |v: &[Range<usize>]| -> Vec<String> {
        v[k.saturating_sub(2)..(k + 3).min(v.len())]
            .iter()
            .map(|r| format!("{:?}", &text[r.clone()]))
            .collect()
    };
    let snippet: String = if text.len() < 300 {
        format!("{text:?}")
    } else {
        format!("<{} bytes>", text.len())
    };
    panic!(
        "{name}: piece {k} differs on {snippet}\n  scanner: {:?}\n  regex:   {:?}",
        around(&got),
        around(&want)
    );
}

fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TOKFORGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")));
    if dir.join("corpora").is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "{} has no corpora/: set TOKFORGE_SHARED to the shared data folder",
        dir.display()
    );
    if std::env::var("TOKFORGE_REQUIRE_SHARED").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

fn corpora() -> Vec<(String, String)> {
    let Some(dir) = shared_dir() else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("corpora"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpora in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn build_picks_the_scanner_for_presets_only() {
    for (name, pattern) in PRESETS {
        let spec = PretokenizerSpec::from_name(name).unwrap();
        let built = spec.build().unwrap();
        assert_eq!(built.spec(), spec, "{name}");
        assert_eq!(scanner(pattern).spec(), spec, "{name}");
        assert_eq!(RegexPretokenizer::new(pattern).unwrap().spec(), spec);
        // The preset's scanner, not fancy-regex: only a scanner survives this input.
        let huge = format!("x{}y", " ".repeat(200_000));
        assert_eq!(ranges(&*built, &huge).len(), 3, "{name}");
    }
    assert!(for_pattern(r"\p{L}+|\s").is_none());
    let custom = PretokenizerSpec::Regex {
        pattern: r"\d++|\S".into(),
        preset: None,
    };
    assert_eq!(pieces(&*custom.build().unwrap(), "12x"), ["12", "x"]);
}

#[test]
fn known_examples() {
    let gpt2 = scanner(GPT2_PATTERN);
    let cl = scanner(CL100K_PATTERN);
    let o2 = scanner(O200K_PATTERN);
    assert_eq!(
        pieces(&*gpt2, "Hello world 12345!"),
        ["Hello", " world", " 12345", "!"]
    );
    assert_eq!(pieces(&*gpt2, "I'LL x  \n"), ["I", "'", "LL", " x", "  \n"]);
    assert_eq!(
        pieces(&*cl, "Hello world 12345!"),
        ["Hello", " world", " ", "123", "45", "!"]
    );
    assert_eq!(
        pieces(&*cl, "don't  stop\n\n"),
        ["don", "'t", " ", " stop", "\n\n"]
    );
    assert_eq!(pieces(&*cl, "I'LL 'ſ x"), ["I", "'LL", " '", "ſ", " x"]);
    assert_eq!(pieces(&*cl, "a'ſb"), ["a", "'ſ", "b"]);
    assert_eq!(
        pieces(&*cl, "\u{a0}word\u{3000}日本"),
        ["\u{a0}word", "\u{3000}日本"]
    );
    assert_eq!(pieces(&*cl, "x  \n \n  y"), ["x", "  \n \n", " ", " y"]);
    assert_eq!(pieces(&*cl, "x  \n\n  "), ["x", "  \n\n  "]);
    assert_eq!(pieces(&*o2, "HelloWorld I'M"), ["Hello", "World", " I'M"]);
    assert_eq!(pieces(&*o2, "x  \n\n  "), ["x", "  \n\n", "  "]);
    assert_eq!(pieces(&*o2, "a'ſ HELLO's"), ["a'ſ", " HELLO's"]);
    assert_eq!(pieces(&*o2, "ab\u{301}c"), ["ab\u{301}c"]);
    // Numbers and symbols that look like letters are not letters.
    assert_eq!(pieces(&*cl, "aⅫb"), ["a", "Ⅻ", "b"]);
    assert_eq!(pieces(&*cl, "Ⓐb"), ["Ⓐb"]);
    assert_eq!(pieces(&*gpt2, "aⓐb"), ["a", "ⓐ", "b"]);
    assert!(pieces(&*o2, "").is_empty());
}

/// Fragments the random strings are made of: everything the patterns treat specially.
#[rustfmt::skip]
const ALPHABET: &[&str] = &[
    // whitespace of every kind, and newline mixes
    " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", "\n \n", " \r\n ", "\u{a0}",
    "\u{2009}", "\u{3000}", "\u{85}", "\u{b}", "\u{c}", "\u{1680}", "\u{2028}", "\u{2029}",
    "\u{202f}", "\u{205f}", "\u{2000}", "\u{200a}",
    // not whitespace although they look like it
    "\u{200b}", "\u{180e}", "\u{feff}", "\u{1c}", "\u{1f}",
    // contractions in every case, and their near misses
    "'", "'", "'s", "'S", "'d", "'D", "'m", "'M", "'t", "'T", "'ll", "'LL", "'Ll", "'lL",
    "'ve", "'VE", "'vE", "'re", "'RE", "'Re", "'ſ", "'K", "'l", "'v", "'r", "''", "s", "ſ",
    "S", "t", "d", "m", "l", "e", "v", "r", "K", "k", "ll", "re",
    // letters: Lu, Ll, Lt, Lm, Lo, in several scripts
    "a", "Z", "hello", "World", "ABC", "xY", "ǅ", "ǈ", "ᾼ", "ʰ", "ˆ", "ー", "ª", "º", "日本",
    "中", "ひらがな", "カタカナ", "한국어", "é", "É", "ß", "İ", "ı", "Ω", "ω", "ς", "Привет",
    "ДОМ", "ﬁ", "ǲ", "𝐀", "𝐚", "א", "ع",
    // combining marks (Mn, Mc, Me)
    "\u{301}", "\u{300}\u{301}", "\u{20dd}", "\u{903}", "\u{64b}", "\u{fe0f}",
    // numbers of several scripts and kinds
    "0", "7", "12", "123", "4567", "٣", "१२", "５", "Ⅻ", "ⅻ", "①", "½", "²", "𝟙", "〇",
    // symbols and punctuation, emoji, controls, private use, unassigned
    "Ⓐ", "ⓐ", "!", ".", ",", "/", "//", "-", "_", "@", "#", "(", ")", "\"", "`", "~", "...",
    "😀", "👍🏽", "€", "—", "…", "。", "、", "\u{0}", "\u{7f}", "\u{e000}", "\u{10ffff}",
    "\u{378}",
];

/// splitmix64: a small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `count` fragments drawn from `alphabet`, each repeated `1 + below(max_run)` times one time
/// in `run_odds` (long runs exercise the run logic). A non-ASCII fragment is kept only one time
/// in `high_odds` (1: always).
fn fragment_text(
    rng: &mut Rng,
    alphabet: &[&str],
    count: usize,
    high_odds: usize,
    run_odds: usize,
    max_run: usize,
) -> String {
    let mut s = String::new();
    for _ in 0..count {
        let frag = loop {
            let f = alphabet[rng.below(alphabet.len())];
            if high_odds <= 1 || f.is_ascii() || rng.below(high_odds) == 0 {
                break f;
            }
        };
        let times = if rng.below(run_odds) == 0 {
            1 + rng.below(max_run)
        } else {
            1
        };
        for _ in 0..times {
            s.push_str(frag);
        }
    }
    s
}

/// Every scanner against fancy-regex running its pattern, on every text.
fn all_scanners_match_the_regex(texts: &[String]) {
    for (name, pattern) in all_scanned() {
        let scan = scanner(pattern);
        let re = RegexPretokenizer::new(pattern).unwrap();
        for text in texts {
            assert_same(name, &*scan, &re, text);
        }
    }
}

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(24);
    fragment_text(rng, ALPHABET, n, 1, 16, 40)
}

#[test]
fn random_strings_match_the_regex() {
    let mut rng = Rng(0x7F4A_2024);
    let texts: Vec<String> = (0..6000).map(|_| random_text(&mut rng)).collect();
    all_scanners_match_the_regex(&texts);
}

/// Mostly ASCII text longer than the 64-byte windows of `block.rs`, from an alphabet dense in
/// what its rules tell apart: contraction letters in both cases after `'`, every ASCII
/// whitespace byte, punctuation runs before letters and newlines, digit runs, and now and then
/// a non-ASCII letter, space or ideograph where a window must stop.
fn ascii_text(rng: &mut Rng) -> String {
    #[rustfmt::skip]
    const ASCII: &[&str] = &[
        "a", "s", "S", "d", "D", "m", "t", "T", "l", "L", "v", "V", "e", "E", "r", "R", "x", "Z",
        "0", "1", "9", " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "'", "'",
        ".", "(", "/", "-", "\"", "\0", "\x7f", "\x1f", "ſ", "é", "ü", "\u{a0}", "中", "Ⅻ",
        "À", "Ä", "Ö", "Ü", "Þ", "ß", "ä", "ÿ", "×", "÷", "ª", "µ", "²", "Я",
    ];
    // A non-ASCII fragment about one time in ten (a quarter of the draws that pick one).
    let n = 60 + rng.below(240);
    fragment_text(rng, ASCII, n, 4, 20, 70)
}

#[test]
fn ascii_windows_match_the_regex() {
    let mut rng = Rng(0x64_B10C);
    let texts: Vec<String> = (0..4000).map(|_| ascii_text(&mut rng)).collect();
    all_scanners_match_the_regex(&texts);
}

#[test]
fn every_pair_and_triple_of_kinds_matches_the_regex() {
    // One representative per class the patterns distinguish, in every order of two and three.
    #[rustfmt::skip]
    let reps = [
        " ", "\t", "\n", "\r", "\u{a0}", "'", "s", "S", "ſ", "l", "a", "Z", "ǅ", "ʰ", "中",
        "\u{301}", "1", "Ⅻ", "!", "/", "Ⓐ",
    ];
    let mut texts = Vec::new();
    for a in reps {
        for b in reps {
            texts.push(format!("{a}{b}"));
            for c in reps {
                texts.push(format!("{a}{b}{c}"));
                texts.push(format!("x{a}{b}{c}y"));
            }
        }
    }
    all_scanners_match_the_regex(&texts);
}

fn corpora_match_the_regex(name: &str, pattern: &str) {
    let scan = scanner(pattern);
    let re = RegexPretokenizer::new(pattern).unwrap();
    for (corpus, text) in corpora() {
        assert_same(&format!("{name} on {corpus}"), &*scan, &re, &text);
    }
}

// One test per preset so that the test harness runs them in parallel (fancy-regex over 24 MB
// is the slow part in a debug build).
#[test]
fn shared_corpora_match_the_regex_gpt2() {
    corpora_match_the_regex("gpt2", GPT2_PATTERN);
}

#[test]
fn shared_corpora_match_the_regex_cl100k() {
    corpora_match_the_regex("cl100k", CL100K_PATTERN);
}

#[test]
fn shared_corpora_match_the_regex_o200k() {
    corpora_match_the_regex("o200k", O200K_PATTERN);
}

#[test]
fn shared_corpora_match_the_regex_llama3_and_qwen2() {
    corpora_match_the_regex("llama3", LLAMA3_PATTERN);
    corpora_match_the_regex("qwen2", QWEN2_PATTERN);
}

#[test]
fn shared_corpora_match_the_regex_hf_rewrites() {
    corpora_match_the_regex("cl100k-hf", CL100K_HF_PATTERN);
    corpora_match_the_regex("gpt2-hf", GPT2_HF_PATTERN);
}

#[test]
fn non_preset_scanners_keep_their_own_pattern_in_the_spec() {
    for (name, pattern) in OTHERS {
        let spec = scanner(pattern).spec();
        assert_eq!(spec.pattern(), Some(pattern), "{name}");
        let built = PretokenizerSpec::Regex {
            pattern: pattern.into(),
            preset: None,
        }
        .build()
        .unwrap();
        assert_eq!(built.spec(), spec, "{name}");
        let huge = format!("x{}y", " ".repeat(200_000));
        assert_eq!(ranges(&*built, &huge).len(), 3, "{name}");
    }
}

#[test]
fn llama3_differs_from_cl100k_only_where_expected() {
    let l3 = scanner(LLAMA3_PATTERN);
    let cl = scanner(CL100K_PATTERN);
    // A trailing run holding a newline: cl100k's `\s++$` takes it whole.
    assert_eq!(pieces(&*cl, "a\n  "), ["a", "\n  "]);
    assert_eq!(pieces(&*l3, "a\n  "), ["a", "\n", "  "]);
    assert_eq!(
        pieces(&*scanner(QWEN2_PATTERN), "x 2024"),
        ["x", " ", "2", "0", "2", "4"]
    );
    assert_eq!(pieces(&*l3, "x 2024"), ["x", " ", "202", "4"]);
}

/// The adversarial inputs of the benchmark, built at `n` characters.
fn worst_cases(n: usize) -> Vec<(&'static str, String)> {
    let mut rng = Rng(42);
    let letters: Vec<char> = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéßДжΩ日ǅʰ"
        .chars()
        .collect();
    let cjk: String = (0..n)
        .map(|_| char::from_u32(0x4E00 + rng.below(0x5000) as u32).unwrap())
        .collect();
    let spaces = ["  ", " ", "\n", "\t", "\r\n", "\u{3000}", "\u{a0}"];
    vec![
        ("a", "a".repeat(n)),
        (
            "random letters",
            (0..n).map(|_| letters[rng.below(letters.len())]).collect(),
        ),
        (
            "digits",
            (0..n)
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect(),
        ),
        ("cjk", cjk),
        ("spaces", " ".repeat(n)),
        (
            "mixed whitespace",
            (0..n / 2)
                .map(|_| spaces[rng.below(spaces.len())])
                .collect(),
        ),
        ("x spaces y", format!("x{}y", " ".repeat(n))),
        ("x newlines y", format!("x{}y", " \n".repeat(n / 2))),
        ("marks", format!("a{}", "\u{301}".repeat(n))),
        ("uppercase", "A".repeat(n)),
        ("apostrophes", "'".repeat(n)),
    ]
}

#[test]
fn worst_cases_match_the_regex_where_it_still_works() {
    for (name, pattern) in PRESETS {
        let scan = scanner(pattern);
        let re = RegexPretokenizer::new(pattern).unwrap();
        for (case, text) in worst_cases(20_000) {
            assert_same(&format!("{name} on {case}"), &*scan, &re, &text);
        }
    }
}

#[test]
fn worst_cases_are_linear() {
    const N: usize = 1_000_000;
    let cases = worst_cases(N);
    for (name, pattern) in PRESETS {
        let scan = scanner(pattern);
        for (case, text) in &cases {
            let t0 = Instant::now();
            let got = ranges(&*scan, text);
            let took = t0.elapsed();
            // Quadratic time would be ~10^12 steps here; linear is milliseconds (debug builds
            // included). The bound is loose on purpose: it catches complexity, not speed.
            assert!(took < Duration::from_secs(5), "{name} on {case}: {took:?}");
            // The pieces tile the text.
            assert_eq!(got.first().map(|r| r.start), Some(0));
            assert_eq!(got.last().map(|r| r.end), Some(text.len()));
            assert!(got.windows(2).all(|w| w[0].end == w[1].start));
            let n_pieces = got.len();
            match *case {
                "a" | "cjk" | "uppercase" => assert_eq!(n_pieces, 1, "{name} {case}"),
                // A mark is not a letter: it starts a punctuation run, except for o200k, whose
                // letter classes include marks.
                "marks" if name == "o200k" => assert_eq!(n_pieces, 1),
                "marks" => assert_eq!(pieces(&*scan, text)[0], "a"),
                "spaces" => assert_eq!(n_pieces, 1, "{name} {case}"),
                "x spaces y" => assert_eq!(
                    pieces(&*scan, text),
                    ["x", &" ".repeat(N - 1), " y"],
                    "{name}"
                ),
                "digits" if name == "gpt2" => assert_eq!(n_pieces, 1),
                "digits" => assert_eq!(n_pieces, N.div_ceil(3)),
                "random letters" if name != "o200k" => assert_eq!(n_pieces, 1),
                _ => {}
            }
        }
    }
}

#[test]
fn fancy_regex_fails_where_the_scanner_does_not() {
    // The reason for the scanners (besides speed): fancy-regex's backtracking stack.
    let text = format!("x{}y", " ".repeat(1_000_000));
    let re = RegexPretokenizer::new(GPT2_PATTERN).unwrap();
    let mut out = Vec::new();
    let regex_result = re.split(&text, &mut out);
    eprintln!("fancy-regex on x + 1M spaces + y: {regex_result:?}");
    assert_eq!(ranges(&Gpt2Scanner, &text).len(), 3);
}

/// Split throughput of scanner and regex on each corpus. Run with
/// `cargo test --release --lib scan::tests::split_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn split_throughput() {
    fn best(repeat: usize, p: &dyn Pretokenizer, text: &str) -> f64 {
        let mut out = Vec::with_capacity(text.len() / 3);
        let mut best = f64::INFINITY;
        for _ in 0..repeat {
            out.clear();
            let t0 = Instant::now();
            p.split(text, &mut out).unwrap();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        text.len() as f64 / best / 1e6
    }
    let t0 = Instant::now();
    let table = classes::Classes::build();
    println!(
        "class table: {} bytes, built in {:?}",
        table.table_bytes(),
        t0.elapsed()
    );
    for (case, text) in worst_cases(1_000_000) {
        let mbs: Vec<String> = PRESETS
            .iter()
            .map(|(_, p)| format!("{:.0}", best(3, &*scanner(p), &text)))
            .collect();
        println!(
            "worst case {case}: {} MB/s (gpt2, cl100k, o200k)",
            mbs.join(", ")
        );
    }
    println!("| corpus | preset | regex MB/s | scanner MB/s | speed-up |");
    println!("|---|---|---:|---:|---:|");
    for (corpus, text) in corpora() {
        for (name, pattern) in PRESETS {
            let re = RegexPretokenizer::new(pattern).unwrap();
            let r = best(3, &re, &text);
            let s = best(7, &*scanner(pattern), &text);
            println!("| {corpus} | {name} | {r:.1} | {s:.1} | {:.1}x |", s / r);
        }
    }
}
