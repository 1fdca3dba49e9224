//! Which format a tokenizer file is in: the one detector for every loader (Python asks it
//! through `_core.detect_format`). JSON is told by its top-level keys, wherever they are: the
//! scan skips strings and nested values without building them, so it is linear in the file and
//! needs no memory.

/// A tokenizer file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// tokforge's JSON file: a JSON object with `"format": "tokforge"`.
    Tokforge,
    /// A Hugging Face `tokenizer.json`: a JSON object with a `"model"` object.
    Hf,
    /// GPT-2's `vocab.json`: a JSON object whose first value is a number (token -> id; the
    /// merges are in `merges.txt` beside it). A token may be spelled `model`; its value is
    /// still a number, not an object.
    Gpt2,
    /// A SentencePiece `.model` file: a serialized `ModelProto`, whose first field is a piece.
    SentencePiece,
    /// Mistral's Tekken JSON (tiktoken-style: base64 token bytes, a pattern, special tokens
    /// before the ranks): a JSON object with a `"config"` object and a `"num_vocab_tokens"` or
    /// `"default_vocab_size"` number.
    Tekken,
    /// A GGUF model file (llama.cpp): it starts with the magic `GGUF`; its tokenizer is in the
    /// `tokenizer.ggml.*` metadata keys.
    Gguf,
    /// A JSON object that is none of the above.
    UnknownJson,
    /// Anything else: a `.tiktoken` rank file (`base64 rank` lines), or text that is none.
    Tiktoken,
}

impl Format {
    /// The format's name: `tokforge`, `hf`, `gpt2`, `sentencepiece`, `tekken`, `gguf`,
    /// `unknown_json` or `tiktoken`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tokforge => "tokforge",
            Format::Hf => "hf",
            Format::Gpt2 => "gpt2",
            Format::SentencePiece => "sentencepiece",
            Format::Tekken => "tekken",
            Format::Gguf => "gguf",
            Format::UnknownJson => "unknown_json",
            Format::Tiktoken => "tiktoken",
        }
    }
}

/// The format of a tokenizer file. A JSON object (after leading
/// whitespace) is, in this order: tokforge's if it says `"format": "tokforge"`, GPT-2's
/// `vocab.json` if its first value is a number, a `tokenizer.json` if it has a `"model"`
/// object, else unknown. Other content that starts like a SentencePiece `ModelProto` (field 1,
/// a length-delimited piece, whose own first field is 1, the piece text) is one, and anything
/// else is read as a rank file.
///
/// JSON is tested first: a `ModelProto` starts with byte 0x0A, which is also a newline, so a
/// JSON file that starts `"\n{\n"` would otherwise pass for one.
///
/// ```
/// use tokforge::io::{detect_format, Format};
/// assert_eq!(detect_format(br#"{"format": "tokforge", "version": 1}"#), Format::Tokforge);
/// assert_eq!(detect_format(br#"{"version": "1.0", "model": {"type": "BPE"}}"#), Format::Hf);
/// assert_eq!(detect_format(br#"{"model": 0, "!": 1}"#), Format::Gpt2);
/// assert_eq!(detect_format(b"\x0a\x09\x0a\x05<unk>"), Format::SentencePiece);
/// assert_eq!(detect_format(b"IQ== 0\n"), Format::Tiktoken);
/// ```
pub fn detect_format(data: &[u8]) -> Format {
    if data.starts_with(b"GGUF") {
        return Format::Gguf;
    }
    let json = trim_start(data);
    if json.first() == Some(&b'{') {
        return if has_key_value(json, b"format", |v| v.starts_with(b"\"tokforge\"")) {
            Format::Tokforge
        } else if is_tekken(json) {
            Format::Tekken
        } else if first_value_is_number(json) {
            Format::Gpt2
        } else if has_key_value(json, b"model", |v| v.first() == Some(&b'{')) {
            Format::Hf
        } else {
            Format::UnknownJson
        };
    }
    if looks_like_sentencepiece(data) {
        return Format::SentencePiece;
    }
    Format::Tiktoken
}

/// Whether a JSON object is a Tekken file: top-level `"config"` object and `"vocab"` list (a
/// tokenizer.json's vocab is an object inside `"model"`, and it has no `"config"`; a GPT-2
/// vocab.json maps every key to a number).
fn is_tekken(json: &[u8]) -> bool {
    has_key_value(json, b"config", |v| v.first() == Some(&b'{'))
        && has_key_value(json, b"vocab", |v| v.first() == Some(&b'['))
}

/// JSON's whitespace, and the vertical tab and form feed (as Python's `bytes.strip` has them).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| is_space(c)).count();
    &b[n..]
}

/// Whether the top-level object `json` (which starts with `{`) has the key `key` (spelled
/// without escapes) with a value for which `value` holds (given the bytes from the value on).
/// Keys inside nested values or strings do not count. A malformed or truncated object counts
/// the keys read before the fault.
fn has_key_value(json: &[u8], key: &[u8], value: impl Fn(&[u8]) -> bool) -> bool {
    let mut rest = &json[1..];
    loop {
        rest = trim_start(rest);
        let Some(after_quote) = rest.strip_prefix(b"\"") else {
            return false;
        };
        let Some(len) = string_len(after_quote) else {
            return false;
        };
        let k = &after_quote[..len];
        let Some(v) = trim_start(&after_quote[len + 1..]).strip_prefix(b":") else {
            return false;
        };
        let v = trim_start(v);
        if k == key && value(v) {
            return true;
        }
        let Some(n) = value_len(v) else {
            return false;
        };
        rest = trim_start(&v[n..]);
        match rest.split_first() {
            Some((b',', tail)) => rest = tail,
            _ => return false,
        }
    }
}

/// The length of a JSON string's body (`s` starts just after its opening quote, the result
/// is the index of the closing quote), or `None` when it does not end.
fn string_len(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// The length of the JSON value `v` starts with (a string, an object or array with all it
/// nests, or a scalar up to the next `,`, `}` or `]`), or `None` when it does not end. Depth
/// is a counter, so deep nesting costs nothing.
fn value_len(v: &[u8]) -> Option<usize> {
    match v.first()? {
        b'"' => string_len(&v[1..]).map(|n| n + 2),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = 0;
            while i < v.len() {
                match v[i] {
                    b'"' => i += string_len(&v[i + 1..])? + 1,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => Some(
            v.iter()
                .position(|&c| matches!(c, b',' | b'}' | b']'))
                .unwrap_or(v.len()),
        ),
    }
}

/// Whether `json` (which starts with `{`) is `{"any string": <number>...`: its first value is
/// a number, possibly negative.
fn first_value_is_number(json: &[u8]) -> bool {
    let Some(mut rest) = trim_start(&json[1..]).strip_prefix(b"\"") else {
        return false;
    };
    // The key: any bytes but an unescaped quote.
    loop {
        match rest {
            [] => return false,
            [b'"', ..] => break,
            [b'\\', _, tail @ ..] => rest = tail,
            [_, tail @ ..] => rest = tail,
        }
    }
    let Some(rest) = trim_start(&rest[1..]).strip_prefix(b":") else {
        return false;
    };
    let rest = trim_start(rest);
    let rest = rest.strip_prefix(b"-").unwrap_or(rest);
    rest.first().is_some_and(u8::is_ascii_digit)
}

/// Whether `data` starts like a SentencePiece `ModelProto`: byte 0x0A (field 1, length
/// delimited), a varint length, then 0x0A again (the piece's field 1, its text).
fn looks_like_sentencepiece(data: &[u8]) -> bool {
    if data.len() < 4 || data[0] != 0x0A {
        return false;
    }
    let mut i = 1;
    while i < data.len().min(6) && data[i] & 0x80 != 0 {
        i += 1;
    }
    i + 1 < data.len() && data[i + 1] == 0x0A
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_and_the_cases_between() {
        let cases: &[(&[u8], Format)] = &[
            (
                b"  {\n \"format\" : \"tokforge\", \"model\": {}}",
                Format::Tokforge,
            ),
            // A tokenizer.json that mentions tokforge is still a tokenizer.json.
            (
                b"{\"added_tokens\": [], \"model\": {\"vocab\": {\"tokforge\": 1}}}",
                Format::Hf,
            ),
            (
                b"{\"version\": \"1.0\", \"model\" :\n{\"type\": \"BPE\"}}",
                Format::Hf,
            ),
            (b"{\"model\": 12, \"a\": 3}", Format::Gpt2),
            (b"{\"\\\"q\": -1}", Format::Gpt2),
            (b"{\"model\": null}", Format::UnknownJson),
            (b"{}", Format::UnknownJson),
            (b"\n{\n  \"format\": \"tokforge\"}", Format::Tokforge),
            (b"\x0a\x85\x01\x0a\x05<unk>", Format::SentencePiece),
            (b"\x0a\x0b\x0a", Format::Tiktoken),
            (b"IQ== 0\nIg== 1\n", Format::Tiktoken),
            (b"", Format::Tiktoken),
            (b"GGUF\x03\x00\x00\x00", Format::Gguf),
            (
                b"{\"config\": {\"pattern\": \"x\", \"num_vocab_tokens\": 150000}, \"vocab\": []}",
                Format::Tekken,
            ),
            (
                b"{\"config\": {\"default_vocab_size\": 131072}, \"vocab\": []}",
                Format::Tekken,
            ),
            // A tokenizer.json with a `config` key but no Tekken size is not Tekken.
            (b"{\"config\": {}, \"model\": {}}", Format::Hf),
        ];
        for &(data, want) in cases {
            let shown = String::from_utf8_lossy(data);
            assert_eq!(detect_format(data), want, "{shown:?}");
        }
        assert_eq!(Format::UnknownJson.name(), "unknown_json");
    }

    #[test]
    fn top_level_keys_count_wherever_they_are() {
        // A tokenizer.json whose "model" comes after megabytes of added tokens, some of which
        // spell `"model": {` inside their content.
        let mut f = String::from("{\"version\": \"1.0\", \"added_tokens\": [");
        for i in 0..20_000 {
            f.push_str(&format!(
                "{{\"id\": {i}, \"content\": \"<t{i} \\\"model\\\": {{ ]>\", \"special\": true}},"
            ));
        }
        f.push_str("{\"id\": 0, \"content\": \"x\"}], \"model\": {\"type\": \"BPE\"}}");
        assert!(f.len() > 1 << 20);
        assert_eq!(detect_format(f.as_bytes()), Format::Hf);
        // The same keys nested, or inside a string, are not the object's.
        let cases: &[(&[u8], Format)] = &[
            (b"{\"a\": {\"model\": {}}}", Format::UnknownJson),
            (b"{\"a\": \"\\\"model\\\": {\"}", Format::UnknownJson),
            (
                b"{\"a\": [{\"format\": \"tokforge\"}]}",
                Format::UnknownJson,
            ),
            (
                b"{\"a\": [1, {\"b\": \"]}\"}], \"format\": \"tokforge\"}",
                Format::Tokforge,
            ),
            (b"{\"a\": true, \"model\": {", Format::Hf),
            (b"{\"a\": [[[[[[", Format::UnknownJson),
            (b"{\"a\" 1, \"model\": {}}", Format::UnknownJson),
        ];
        for &(data, want) in cases {
            let shown = String::from_utf8_lossy(data);
            assert_eq!(detect_format(data), want, "{shown:?}");
        }
        let deep = format!(
            "{{\"a\": {}{}, \"model\": {{}}}}",
            "[".repeat(1 << 20),
            "]".repeat(1 << 20)
        );
        assert_eq!(detect_format(deep.as_bytes()), Format::Hf);
    }
}
