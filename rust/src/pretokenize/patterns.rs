//! The preset split patterns, as tiktoken and the Hugging Face files write them, and their names.

/// GPT-2 / r50k_base / p50k_base split pattern, as tiktoken writes it.
pub const GPT2_PATTERN: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";

/// cl100k_base split pattern, as tiktoken writes it.
pub const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

/// o200k_base split pattern: tiktoken's seven alternatives joined with `|`.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"\p{N}{1,3}",
    "|",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    "|",
    r"\s*[\r\n]+",
    "|",
    r"\s+(?!\S)",
    "|",
    r"\s+",
);

/// Llama 3's split pattern (its tokenizer.json `Split`): cl100k's alternatives without
/// possessive quantifiers and without `\s++$`; a hand-written scanner runs it exactly.
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen 2's split pattern: Llama 3's with one digit per piece; scanned by hand too.
pub const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Returns the regex of a named preset (`gpt2`, `r50k_base`, `p50k_base`, `cl100k`,
/// `cl100k_base`, `o200k`, `o200k_base`), or `None` for an unknown name.
pub fn preset_pattern(name: &str) -> Option<&'static str> {
    match name {
        "gpt2" | "r50k" | "r50k_base" | "p50k" | "p50k_base" | "p50k_edit" => Some(GPT2_PATTERN),
        "cl100k" | "cl100k_base" => Some(CL100K_PATTERN),
        "o200k" | "o200k_base" | "o200k_harmony" => Some(O200K_PATTERN),
        _ => None,
    }
}

pub(crate) fn canonical_preset(name: &str) -> &'static str {
    match preset_pattern(name) {
        Some(GPT2_PATTERN) => "gpt2",
        Some(CL100K_PATTERN) => "cl100k",
        _ => "o200k",
    }
}

/// The canonical preset name of an exact preset pattern (`gpt2`, `cl100k`, `o200k`).
pub(crate) fn preset_of_pattern(pattern: &str) -> Option<&'static str> {
    [
        ("gpt2", GPT2_PATTERN),
        ("cl100k", CL100K_PATTERN),
        ("o200k", O200K_PATTERN),
    ]
    .iter()
    .find(|(_, p)| *p == pattern)
    .map(|(n, _)| *n)
}
