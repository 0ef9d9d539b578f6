//! A library's files as data: the manifest and the `.rhai` files under
//! `modules/`, `profiles/` and `tests/`, by path relative to its root, and
//! their hashes. Everything else in a library's repository is not part of
//! it and is never installed or read.

use super::manifest::{self, Manifest};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// A library's files: relative path → contents.
pub type Files = BTreeMap<String, Vec<u8>>;

/// Per-file SHA-256 (hex) by relative path: what the lock pins.
pub type Hashes = BTreeMap<String, String>;

/// The directories a library's `.rhai` files live in.
pub const DIRS: &[&str] = &[manifest::MODULES_DIR, manifest::PROFILES_DIR, "tests"];

/// At most this many files, each at most the engine's string size, and this
/// much in all: a library is a few small scripts, not a place to hide a
/// gigabyte.
pub const MAX_FILES: usize = 1_000;
/// The engine's string limit (`script::limits::STRING_BYTES`, checked by
/// a test): a module larger than that could not be read anyway.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
pub const MAX_TOTAL_BYTES: u64 = 32 << 20;

/// Whether `path` (relative, `/`-separated) is part of a library, and
/// safe to write below its root: the manifest, or a `.rhai` file below
/// one of `DIRS` whose every component is a plain name.
pub fn is_library_file(path: &str) -> bool {
    if path == manifest::FILE {
        return true;
    }
    let Some((top, _)) = path.split_once('/') else {
        return false;
    };
    DIRS.contains(&top) && path.ends_with(".rhai") && plain_components(path)
}

/// Every component a plain name: no `.`/`..`, no empty, no hidden file, no
/// byte a terminal or a shell would read differently.
pub fn plain_components(path: &str) -> bool {
    path.split('/').all(|c| {
        !c.is_empty()
            && !c.starts_with('.')
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
    })
}

/// Whether an entry at `path` would sit where a library file or one of its
/// directories goes (a symlink named `modules` is as bad as one named
/// `modules/x.rhai`).
pub fn is_in_library(path: &str) -> bool {
    path == manifest::FILE
        || DIRS.iter().any(|d| {
            path == *d
                || path
                    .strip_prefix(d)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hashes(files: &Files) -> Hashes {
    files
        .iter()
        .map(|(p, b)| (p.clone(), sha256_hex(b)))
        .collect()
}

/// The content hash of a library: SHA-256 over its sorted `path\0hash\n`
/// lines, written `sha256:HEX`.
pub fn content_hash(hashes: &Hashes) -> String {
    let mut all = Vec::new();
    for (path, hash) in hashes {
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        all.extend_from_slice(hash.as_bytes());
        all.push(b'\n');
    }
    format!("sha256:{}", sha256_hex(&all))
}

/// The manifest in `files`, parsed, with every file it declares present.
pub fn manifest_of(files: &Files, origin: &str) -> Result<Manifest, String> {
    let file = format!("{origin}/{}", manifest::FILE);
    let bytes = files.get(manifest::FILE).ok_or_else(|| {
        format!(
            "{origin} has no {}: a library's root holds its manifest (see `moksha lib new`)",
            manifest::FILE
        )
    })?;
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{file} is not UTF-8 text"))?;
    let m = Manifest::parse(&file, text)?;
    for declared in m.declared_files() {
        if !files.contains_key(&declared) {
            return Err(format!(
                "{file} declares {declared}, which is not in {origin}"
            ));
        }
    }
    Ok(m)
}

/// Reads a library's files from a directory (an installed copy or a
/// working copy): only `is_library_file` paths, never through a symlink,
/// never a FIFO or device, within the size limits.
pub fn read_dir(root: &Path) -> Result<Files, String> {
    let mut files = Files::new();
    let mut total = 0u64;
    let manifest_path = root.join(manifest::FILE);
    match read_one(&manifest_path)? {
        Some(bytes) => {
            total += bytes.len() as u64;
            files.insert(manifest::FILE.to_string(), bytes);
        }
        None => {
            return Err(format!(
                "{} is missing: a library's root holds its manifest",
                manifest_path.display()
            ))
        }
    }
    for dir in DIRS {
        walk(root, dir, &mut files, &mut total)?;
    }
    Ok(files)
}

fn walk(root: &Path, rel: &str, files: &mut Files, total: &mut u64) -> Result<(), String> {
    let path = root.join(rel);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if meta.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link; a library holds regular files only",
            path.display()
        ));
    }
    if !meta.is_dir() {
        if !is_library_file(rel) {
            return Ok(());
        }
        let bytes = read_one(&path)?.ok_or_else(|| format!("{} vanished", path.display()))?;
        *total += bytes.len() as u64;
        if files.len() >= MAX_FILES || *total > MAX_TOTAL_BYTES {
            return Err(format!(
                "{}: a library may hold at most {MAX_FILES} files and {MAX_TOTAL_BYTES} bytes",
                root.display()
            ));
        }
        files.insert(rel.to_string(), bytes);
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(format!(
                "{}: a file name that is not UTF-8; a library's names are plain",
                path.display()
            ));
        };
        let child = format!("{rel}/{name}");
        // Another file (a README, an editor's backup) is not part of the
        // library, unless it would be read as one.
        let meta = entry
            .metadata()
            .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        if meta.is_dir() || meta.file_type().is_symlink() || is_library_file(&child) {
            walk(root, &child, files, total)?;
        } else if name.ends_with(".rhai") {
            return Err(format!(
                "{}: not a plain name; a library's files are named with letters, digits, '_', '-' and '.'",
                entry.path().display()
            ));
        }
    }
    Ok(())
}

/// The bytes of a regular file, `None` when absent; symlinks, FIFOs,
/// devices and files over `MAX_FILE_BYTES` are refused naming the file.
pub fn read_one(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!(
                "{} is a symbolic link; a library holds regular files only",
                path.display()
            ))
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes, the most a library file may be",
            path.display()
        ));
    }
    Ok(Some(bytes))
}

/// Writes `files` into `root`, a directory that must not exist yet (it is
/// created mode 0755, and so is every directory below it): nothing is
/// followed, nothing outside is touched.
pub fn write_dir(root: &Path, files: &Files) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mkdir = |p: &Path| {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(p)
            .map_err(|e| format!("cannot create {}: {e}", p.display()))
    };
    mkdir(root)?;
    for (rel, bytes) in files {
        if !is_library_file(rel) {
            return Err(format!("{rel}: not a library file"));
        }
        let mut dir = root.to_path_buf();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(format!("{} is not a directory", dir.display())),
                Err(_) => mkdir(&dir)?,
            }
        }
        let path = root.join(rel);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        f.write_all(bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_at_most_what_the_engine_reads() {
        assert_eq!(MAX_FILE_BYTES, crate::script::limits::STRING_BYTES as u64);
    }

    #[test]
    fn only_plain_rhai_files_below_the_library_dirs() {
        assert!(is_library_file("moksha-lib.toml"));
        assert!(is_library_file("modules/browser.rhai"));
        assert!(is_library_file("tests/a/b.test.rhai"));
        for bad in [
            "modules/../x.rhai",
            "modules/.hidden.rhai",
            "README.md",
            "modules/x.sh",
            "other/x.rhai",
            "modules//x.rhai",
            "/modules/x.rhai",
            "modules/a b.rhai",
        ] {
            assert!(!is_library_file(bad), "{bad}");
        }
        assert!(is_in_library("modules") && is_in_library("modules/x"));
        assert!(!is_in_library("modulesx") && !is_in_library("README"));
    }

    #[test]
    fn the_content_hash_covers_names_and_bytes() {
        let mut files = Files::new();
        files.insert("modules/a.rhai".into(), b"1".to_vec());
        let one = content_hash(&hashes(&files));
        files.insert("modules/a.rhai".into(), b"2".to_vec());
        let two = content_hash(&hashes(&files));
        let renamed: Files = [("modules/b.rhai".to_string(), b"2".to_vec())].into();
        assert!(one.starts_with("sha256:") && one != two);
        assert_ne!(two, content_hash(&hashes(&renamed)));
    }

    #[test]
    fn written_and_read_back_unchanged_and_symlinks_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lib");
        let mut files = Files::new();
        files.insert("moksha-lib.toml".into(), b"name = \"x\"".to_vec());
        files.insert("modules/net/a.rhai".into(), b"fn f() {}".to_vec());
        write_dir(&root, &files).unwrap();
        std::fs::write(root.join("modules/README"), "not part of it").unwrap();
        assert_eq!(read_dir(&root).unwrap(), files);
        std::os::unix::fs::symlink("/etc/passwd", root.join("modules/b.rhai")).unwrap();
        let e = read_dir(&root).unwrap_err();
        assert!(e.contains("modules/b.rhai is a symbolic link"), "{e}");
        assert!(write_dir(&root, &files).is_err(), "the root must be new");
    }
}
