//! The crate's layers: a top-level module may refer only to modules of a lower layer, so the
//! crate has no cycle and each module can be read knowing only what is below it.
//!
//! This reads `rust/src` as text: every `crate::x` path (including `use crate::{x, ..}` lists and
//! root re-exports such as `crate::Vocab`) and every `super::` chain that climbs to the crate
//! root, outside comments. A module that is not in the table fails the test: place it first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first. Modules of one layer may not refer to each other.
const LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("util", 1),
    ("vocab", 2),
    ("pretokenize", 3),
    ("model", 4),
    ("hf", 5),
    ("encoder", 6),
    ("train", 7),
    ("io", 8),
    ("py", 9),
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rust/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("rust/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(top-level module, depth of the file's module below the crate root)` for a file in
/// `rust/src`; `None` for `lib.rs`. `a.rs` and `a/mod.rs` are depth 1, `a/b.rs` depth 2.
fn module_of(rel: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts == ["lib.rs"] {
        return None;
    }
    let top = parts[0].trim_end_matches(".rs").to_string();
    let depth = if parts.last().is_some_and(|f| f == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((top, depth))
}

/// The identifier that starts `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The code of a line: without a line comment (a `//` that does not follow `:` as in a URL).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    let mut from = 0;
    while let Some(i) = line[from..].find("//") {
        let at = from + i;
        if at == 0 || line.as_bytes()[at - 1] != b':' {
            return &line[..at];
        }
        from = at + 2;
    }
    line
}

/// The crate-root names a line refers to: `crate::x` and `crate::{x, y::z}`, and `super::`
/// chains longer than `depth` (the line's module depth), which reach the crate root.
fn root_refs(line: &str, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `mycrate::`
        }
        if let Some(list) = rest.strip_prefix('{') {
            let end = list.find('}').unwrap_or(list.len());
            for item in list[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.push(name.to_string());
                }
            }
        } else {
            out.push(ident(rest).to_string());
        }
    }
    let mut rest = line;
    while let Some(i) = rest.find("super::") {
        let before = rest[..i].chars().last();
        let mut chain = &rest[i..];
        let mut k = 0;
        while let Some(r) = chain.strip_prefix("super::") {
            chain = r;
            k += 1;
        }
        rest = chain;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if k >= depth {
            out.push(ident(chain).to_string());
        }
    }
    out
}

/// What `lib.rs` re-exports at the root (`pub use module::{A, B}`): name -> module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = ident(rest).to_string();
        let tail = &rest[module.len()..];
        let names: Vec<&str> = match tail.find('{') {
            Some(i) => tail[i + 1..]
                .trim_end_matches(';')
                .trim_end_matches('}')
                .split(',')
                .collect(),
            None => vec![tail.rsplit("::").next().unwrap_or("").trim_end_matches(';')],
        };
        for n in names {
            let n = n.trim();
            let n = n.rsplit(" as ").next().unwrap_or(n);
            if !n.is_empty() {
                map.insert(ident(n).to_string(), module.clone());
            }
        }
    }
    map
}

/// Every reference from a module to one of the same or a higher layer, as readable lines.
fn violations(src: &Path) -> Vec<String> {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for path in files {
        let rel = path.strip_prefix(src).expect("under src");
        let Some((top, file_depth)) = module_of(rel) else {
            continue;
        };
        let Some(&own) = layers.get(top.as_str()) else {
            bad.push(format!(
                "{}: module `{top}` is not in the layer table",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("readable");
        // Inline modules (`mod tests { .. }`) sit at the end of their file, one level deeper.
        let mut depth = file_depth;
        for (n, line) in text.lines().enumerate() {
            let code = code(line);
            let t = code.trim_start();
            if (t.starts_with("mod ")
                || t.starts_with("pub mod ")
                || t.starts_with("pub(crate) mod "))
                && t.trim_end().ends_with('{')
            {
                depth = file_depth + 1;
            }
            for name in root_refs(code, depth) {
                let target = reexports.get(&name).cloned().unwrap_or(name.clone());
                if target == top {
                    continue;
                }
                match layers.get(target.as_str()) {
                    Some(&layer) if layer < own => {}
                    Some(&layer) => bad.push(format!(
                        "{}:{}: `{top}` (layer {own}) refers to `{target}` (layer {layer}): {}",
                        rel.display(),
                        n + 1,
                        line.trim()
                    )),
                    None if name.chars().next().is_some_and(char::is_uppercase) => {
                        bad.push(format!(
                            "{}:{}: `crate::{name}` is not a known re-export",
                            rel.display(),
                            n + 1
                        ))
                    }
                    None => bad.push(format!(
                        "{}:{}: `{target}` is not in the layer table",
                        rel.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    bad
}

#[test]
fn modules_refer_only_to_lower_layers() {
    let bad = violations(&src_dir());
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

/// The checker itself: a cycle written into a scratch copy of a tiny crate is found.
#[test]
fn a_cycle_is_caught() {
    let dir = std::env::temp_dir().join(format!("tokforge-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("vocab")).unwrap();
    std::fs::write(
        dir.join("lib.rs"),
        "pub mod util;\npub mod vocab;\npub use vocab::Vocab;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("util.rs"),
        "// crate::vocab in a comment is fine\nuse crate::Vocab;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("vocab/mod.rs"),
        "mod map;\nuse crate::util::x;\npub struct Vocab;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("vocab/map.rs"),
        "use super::Vocab;\nuse super::super::vocab::Vocab as V;\nuse crate::{error::E, util};\n",
    )
    .unwrap();
    let bad = violations(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(
        bad[0].starts_with("util.rs:2: `util` (layer 1) refers to `vocab` (layer 2)"),
        "{bad:#?}"
    );
}
