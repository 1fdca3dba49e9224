//! Writing a file so that readers see the old content or the new, never a part.

use std::io::Write;
use std::path::Path;

use crate::error::{Result, TokforgeError};

/// Writes `data` to `path` atomically: a temporary file in the same folder, flushed, then
/// renamed over the target. A crash mid-write leaves the old file intact and no partial file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        TokforgeError::InvalidArgument(format!("{}: not a file path", path.display()))
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:x}",
        file_name.to_string_lossy(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        TokforgeError::io(path, e)
    })
}
