//! Reading a corpus: plain text, JSON lines, either gzip-compressed, cut into blocks at points
//! where the pretokens do not change, so that threads can count them apart.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::error::{Result, TokforgeError};

/// Texts larger than this are cut into blocks (at safe points) so that threads share them.
pub(super) const BLOCK_BYTES: usize = 1 << 20;

/// A file block with no safe cut point grows up to this size before it is cut before a space.
const MAX_BLOCK_BYTES: usize = 16 << 20;

/// What to do with bytes that are not valid UTF-8 in a corpus file or a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf8Errors {
    /// Fail, naming the file, byte offset and line.
    Strict,
    /// Replace each invalid sequence by U+FFFD.
    Replace,
}

impl Utf8Errors {
    /// `"strict"` or `"replace"`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "strict" => Ok(Utf8Errors::Strict),
            "replace" => Ok(Utf8Errors::Replace),
            _ => Err(TokforgeError::InvalidArgument(format!(
                "errors must be \"strict\" or \"replace\", not {name:?}"
            ))),
        }
    }
}

/// How a corpus file holds its text. Gzip compression is recognised by the file's first bytes,
/// whatever its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// Plain UTF-8 text.
    Text,
    /// One JSON object per line; the text is the string under this key.
    Jsonl { field: String },
}

/// A file to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub format: FileFormat,
}

impl CorpusFile {
    /// A file whose format follows its name: `.jsonl` / `.ndjson` (optionally with `.gz`) is
    /// JSON lines read through `field`; anything else is plain text.
    pub fn from_path(path: impl Into<PathBuf>, field: &str) -> Self {
        let path = path.into();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let format = if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") {
            FileFormat::Jsonl {
                field: field.to_string(),
            }
        } else {
            FileFormat::Text
        };
        CorpusFile { path, format }
    }
}

/// Where to cut a text so that the pieces on both sides are the ones the whole text has: the
/// last position in `buf` (not at its very end) that follows a `\n` and starts a character that
/// is neither whitespace nor `/`. No preset match crosses such a point: cl100k's and gpt2's
/// letter, number and punctuation runs never contain a newline except as trailing `[\r\n]*`,
/// whitespace runs stop before non-whitespace, and o200k's punctuation run may end in
/// `[\r\n/]*` (hence the `/`). The whitespace pretokenizer splits at every such point too.
/// Returns `None` when there is no such point.
pub fn safe_cut(buf: &[u8]) -> Option<usize> {
    let mut end = buf.len();
    while let Some(nl) = buf[..end].iter().rposition(|&b| b == b'\n') {
        let next = nl + 1;
        if next < buf.len() && starts_non_space(&buf[next..]) {
            return Some(next);
        }
        end = nl;
    }
    None
}

/// Whether `bytes` starts with a whole character that is neither whitespace nor `/`.
pub(super) fn starts_non_space(bytes: &[u8]) -> bool {
    let b = bytes[0];
    if b < 0x80 {
        return !b.is_ascii_whitespace() && b != 0x0B && b != b'/';
    }
    let width = crate::util::utf8_width(b);
    match bytes.get(..width).and_then(|s| std::str::from_utf8(s).ok()) {
        Some(s) => s.chars().next().is_some_and(|c| !c.is_whitespace()),
        None => false,
    }
}

/// Fallback cut for a text with no safe point: before the last space that follows a character
/// other than whitespace (a word end). The presets split there as well.
pub(super) fn space_cut(buf: &[u8]) -> Option<usize> {
    (1..buf.len())
        .rev()
        .find(|&i| buf[i] == b' ' && !buf[i - 1].is_ascii_whitespace())
}

/// A piece of a file, cut where the pretokens do not change.
pub(super) struct Block {
    pub(super) file: u64,
    /// Offset of the block's first byte in the (decompressed) file, and its 1-based line.
    pub(super) offset: u64,
    pub(super) line: u64,
    pub(super) data: Vec<u8>,
}

/// An error with its place, so that the earliest one can be reported.
pub(super) struct BlockError {
    pub(super) file: u64,
    pub(super) offset: u64,
    pub(super) error: TokforgeError,
}

/// Counts the bytes read through it (the compressed bytes of a gzip file) for progress.
struct CountingReader<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Reads bytes into `buf` until it holds `want` bytes or the stream ends; returns false at EOF.
pub(super) fn fill(r: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    while buf.len() < want {
        let len = buf.len();
        buf.resize(want, 0);
        match r.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(false);
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        }
    }
    Ok(true)
}

/// The reading side of [`PretokenCounter::add_files`]: cuts each file into blocks and sends
/// them; stops early when a worker has failed.
pub(super) fn read_files(
    files: &[CorpusFile],
    tx: mpsc::SyncSender<Block>,
    abort: &AtomicBool,
    total: u64,
    progress: &mut dyn FnMut(u64, u64) -> Result<()>,
) -> std::result::Result<(), BlockError> {
    let mut done_before = 0u64;
    for (fi, f) in files.iter().enumerate() {
        let fail = |offset: u64, error: TokforgeError| BlockError {
            file: fi as u64,
            offset,
            error,
        };
        let file =
            std::fs::File::open(&f.path).map_err(|e| fail(0, TokforgeError::io(&f.path, e)))?;
        // Its size now: a file that ends before this was cut short while being read (truncated
        // or replaced), and training on the part read would silently lose text.
        let size_at_open = file.metadata().map(|m| m.len()).ok();
        let consumed = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let counting = CountingReader {
            inner: file,
            count: consumed.clone(),
        };
        let mut raw = std::io::BufReader::with_capacity(256 * 1024, counting);
        let gz = {
            use std::io::BufRead;
            let head = raw
                .fill_buf()
                .map_err(|e| fail(0, TokforgeError::io(&f.path, e)))?;
            head.starts_with(&[0x1f, 0x8b])
        };
        let mut reader: Box<dyn Read + '_> = if gz {
            Box::new(flate2::bufread::MultiGzDecoder::new(&mut raw))
        } else {
            Box::new(&mut raw)
        };
        let jsonl = matches!(f.format, FileFormat::Jsonl { .. });
        let mut buf: Vec<u8> = Vec::with_capacity(BLOCK_BYTES + 4096);
        let (mut offset, mut line) = (0u64, 1u64);
        loop {
            if abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            let want = (buf.len() + BLOCK_BYTES).max(BLOCK_BYTES);
            let more = fill(&mut reader, &mut buf, want).map_err(|e| {
                let what = if gz {
                    format!("{} (gzip)", f.path.display())
                } else {
                    f.path.display().to_string()
                };
                fail(offset, TokforgeError::io(what, e))
            })?;
            let cut = if !more {
                buf.len()
            } else if jsonl {
                // A record is one line; a block is whole lines.
                match buf.iter().rposition(|&b| b == b'\n') {
                    Some(nl) => nl + 1,
                    None => continue,
                }
            } else {
                match safe_cut(&buf) {
                    Some(c) => c,
                    None if buf.len() >= MAX_BLOCK_BYTES => match space_cut(&buf) {
                        Some(c) => c,
                        None => continue,
                    },
                    None => continue,
                }
            };
            let rest = buf.split_off(cut);
            let data = std::mem::replace(&mut buf, rest);
            let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
            let len = data.len() as u64;
            if !data.is_empty()
                && tx
                    .send(Block {
                        file: fi as u64,
                        offset,
                        line,
                        data,
                    })
                    .is_err()
            {
                return Ok(()); // every worker is gone: they failed and say why
            }
            offset += len;
            line += lines;
            if !more {
                if let Some(size) = size_at_open.filter(|&n| consumed.get() < n) {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "the file shrank while it was being read ({} of the {size} bytes it \
                             had when opened were read); nothing was trained",
                            consumed.get()
                        ),
                    );
                    return Err(fail(offset, TokforgeError::io(&f.path, e)));
                }
            }
            progress((done_before + consumed.get()).min(total), total)
                .map_err(|e| fail(offset, e))?;
            if !more {
                break;
            }
        }
        done_before += consumed.get();
    }
    Ok(())
}

/// A block as text: checked (strict) or repaired (replace). An invalid sequence cannot span a
/// block boundary's `\n`, so repairing per block repairs the file as a whole would.
pub(super) fn decode_block<'a>(
    block: &'a Block,
    path: &Path,
    errors: Utf8Errors,
) -> std::result::Result<std::borrow::Cow<'a, str>, BlockError> {
    match std::str::from_utf8(&block.data) {
        Ok(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Err(_) if errors == Utf8Errors::Replace => Ok(String::from_utf8_lossy(&block.data)),
        Err(e) => Err(utf8_error(block, path, e.valid_up_to())),
    }
}

pub(super) fn utf8_error(block: &Block, path: &Path, at: usize) -> BlockError {
    let line = block.line + block.data[..at].iter().filter(|&&b| b == b'\n').count() as u64;
    let offset = block.offset + at as u64;
    BlockError {
        file: block.file,
        offset,
        error: TokforgeError::InvalidUtf8 {
            offset: offset as usize,
            context: format!(
                " of {} (line {line}); use errors=\"replace\" (--errors replace) to substitute U+FFFD",
                path.display()
            ),
        },
    }
}

/// The string under `field` of a JSON object (`None` when it is `null`). Other keys are
/// skipped without building values for them.
pub(super) fn extract_field(
    line: &str,
    field: &str,
) -> std::result::Result<Option<String>, String> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Seed<'f>(&'f str);
    struct Found(Option<Option<String>>);

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Found;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Found, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Found;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Found, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.0 && found.is_none() {
                    found = Some(map.next_value::<Option<String>>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Found(found))
        }
    }

    let mut de = serde_json::Deserializer::from_str(line);
    let is_object = line.trim_start().starts_with('{');
    let found = Seed(field).deserialize(&mut de).map_err(|e| {
        if e.is_data() && is_object {
            format!("the value of {field:?} is not a string ({e})")
        } else {
            format!("not a JSON object: {e}")
        }
    })?;
    de.end().map_err(|e| format!("not a JSON object: {e}"))?;
    match found.0 {
        Some(v) => Ok(v),
        None => Err(format!("no field {field:?}")),
    }
}
