//! Decoders: how a tokenizer.json's decoder chain turns each token's text into bytes, and the
//! strip it applies to the decoded text.

use rustc_hash::FxHashMap;

use super::byte_level::unmap_bytes;

/// How the decoder chain turns each token's text into bytes, and the final strip.
pub(crate) struct Decoding {
    pub(crate) steps: Vec<DecodeStep>,
    pub(crate) strip: Option<(char, usize, usize)>,
}

pub(crate) enum DecodeStep {
    ByteLevel,
    ByteFallback,
    Replace(String, String),
    /// `Metaspace` decoding: the replacement character becomes a space.
    Metaspace(char),
    /// A `Strip` before `Fuse`: applies to every token.
    StripEach(char, usize, usize),
}

/// `<0xNN>` -> NN.
fn fallback_byte(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

impl Decoding {
    pub(crate) fn decode(&self, token: &str, unmap: &FxHashMap<char, u8>) -> Vec<u8> {
        let mut b = token.as_bytes().to_vec();
        for step in &self.steps {
            b = match step {
                DecodeStep::ByteLevel => unmap_bytes(&String::from_utf8_lossy(&b), unmap),
                DecodeStep::ByteFallback => {
                    match std::str::from_utf8(&b).ok().and_then(fallback_byte) {
                        Some(x) => vec![x],
                        None => b,
                    }
                }
                DecodeStep::Replace(p, c) => replace_bytes(&b, p.as_bytes(), c.as_bytes()),
                DecodeStep::Metaspace(r) => {
                    let mut buf = [0u8; 4];
                    replace_bytes(&b, r.encode_utf8(&mut buf).as_bytes(), b" ")
                }
                DecodeStep::StripEach(c, start, stop) => {
                    let s = String::from_utf8_lossy(&b).into_owned();
                    let mut t = &s[..];
                    for _ in 0..*start {
                        match t.strip_prefix(*c) {
                            Some(r) => t = r,
                            None => break,
                        }
                    }
                    for _ in 0..*stop {
                        match t.strip_suffix(*c) {
                            Some(r) => t = r,
                            None => break,
                        }
                    }
                    t.as_bytes().to_vec()
                }
            };
        }
        b
    }
}

fn replace_bytes(b: &[u8], p: &[u8], c: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b.to_vec();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(p) {
            out.extend_from_slice(c);
            i += p.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}
