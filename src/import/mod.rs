//! `moksha import firejail`: Firejail profiles as moksha profiles. The
//! Rust side only reads Firejail's language (`parse`: lines, includes,
//! bounds) and writes Rhai (`emit`); what each directive means is the
//! stdlib's `firejail` module, so the rules are fixed in one place and
//! the output stays short. `directives` says which lines are translated,
//! approximated or left out (as comments, with the reason).

pub mod directives;
pub mod emit;
pub mod parse;

use crate::script::ProfileSource;
pub use emit::Summary;
pub use parse::{Dirs, Error};
use std::path::{Path, PathBuf};

/// The prefix that runs a Firejail profile without converting it first:
/// `moksha exec firejail:vlc -- file.mp4`.
pub const PREFIX: &str = "firejail:";

/// A Firejail profile converted in memory.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The profile's name (its file name without `.profile`).
    pub name: String,
    pub source: PathBuf,
    pub emitted: emit::Emitted,
    /// The paths of the files it reads, by the emitted summaries' index.
    pub files: Vec<PathBuf>,
}

/// The profile file an argument names: a path (with a `/` or ending in
/// `.profile`) as given, or a NAME as Firejail finds it:
/// ~/.config/firejail/NAME.profile, then /etc/firejail/NAME.profile.
pub fn find(arg: &str, dirs: &Dirs) -> Result<PathBuf, Error> {
    if arg.contains('/') || arg.ends_with(".profile") {
        return Ok(PathBuf::from(arg));
    }
    if arg.is_empty() || arg.starts_with('.') {
        return Err(Error(format!("{arg:?} is not a Firejail profile name")));
    }
    let file = format!("{arg}.profile");
    let candidates: Vec<PathBuf> = dirs
        .user
        .iter()
        .map(|d| d.join(&file))
        .chain([dirs.system.join(&file)])
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            Error(format!(
            "no Firejail profile named {arg:?}; looked for {} (is firejail-profiles installed?)",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        ))
        })
}

/// Every installed profile: those in ~/.config/firejail, then those in
/// /etc/firejail that the user has none of the same name, sorted by name.
pub fn all(dirs: &Dirs) -> Vec<PathBuf> {
    let mut by_name: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for dir in dirs.user.iter().chain([&dirs.system]) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".profile"))
            else {
                continue;
            };
            if path.is_file() {
                by_name.entry(name.to_string()).or_insert(path);
            }
        }
    }
    by_name.into_values().collect()
}

/// The moksha profile name for a Firejail profile file: its name without
/// `.profile`, with characters a profile name cannot have replaced.
pub fn name_of(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file.strip_suffix(".profile").unwrap_or(&file);
    emit::plain_name(stem)
}

/// The module key of an included file: its name when it comes from a
/// profile directory (so every profile shares one module for it), else the
/// name and a hash of its path.
fn key_of(path: &Path, dirs: &Dirs) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let parent = path.parent();
    let standard = parent == Some(dirs.system.as_path())
        || (dirs.user.is_some() && parent == dirs.user.as_deref());
    if standard {
        return name;
    }
    // FNV-1a: a stable short name, not a secret.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("{name}-{:08x}", h as u32)
}

/// Reads the Firejail profile at `path` and converts it.
pub fn import(path: &Path, dirs: &Dirs) -> Result<Imported, Error> {
    let tree = parse::read(path, dirs)?;
    let keys: Vec<String> = tree.files.iter().map(|f| key_of(&f.path, dirs)).collect();
    let name = name_of(path);
    let emitted = emit::profile_with_keys(&name, &tree, &path.display().to_string(), &keys);
    Ok(Imported {
        name,
        source: path.to_path_buf(),
        files: tree.files.iter().map(|f| f.path.clone()).collect(),
        emitted,
    })
}

/// `firejail:NAME` (or `firejail:PATH`) as a profile to evaluate, its
/// modules in memory.
pub fn profile_source(arg: &str) -> Result<ProfileSource, String> {
    let dirs = Dirs::host();
    let path = find(arg, &dirs).map_err(|e| e.0)?;
    let imported = import(&path, &dirs).map_err(|e| e.0)?;
    Ok(ProfileSource {
        name: format!("<firejail>/{}.rhai", imported.name),
        text: imported.emitted.main,
        dir: None,
        modules: imported.emitted.modules,
        ..Default::default()
    })
}

/// Whether the file at `path` may be overwritten: missing, or written by
/// the importer (its first line says so).
fn ours(path: &Path) -> Result<bool, Error> {
    match crate::script::host::read_bounded(path, crate::script::limits::STRING_BYTES as u64) {
        Ok(text) => Ok(text
            .lines()
            .next()
            .is_some_and(|l| l.contains(emit::MARKER))),
        Err(crate::script::host::Unread::Absent) if !path.exists() => Ok(true),
        Err(_) => Ok(false),
    }
}

/// Writes the converted profile into `dir` (`NAME.rhai`, modules in
/// `dir/firejail/`); returns the profile's path. A file the importer did
/// not write is never overwritten.
pub fn write(imported: &Imported, dir: &Path) -> Result<PathBuf, Error> {
    let main = dir.join(format!("{}.rhai", imported.name));
    let mut files = vec![(main.clone(), imported.emitted.main.clone())];
    for (module, text) in &imported.emitted.modules {
        files.push((dir.join(format!("{module}.rhai")), text.clone()));
    }
    for (path, _) in &files {
        if !ours(path)? {
            return Err(Error(format!(
                "{} exists and was not written by `moksha import firejail`; move it away or choose another directory with -o",
                path.display()
            )));
        }
    }
    let made = |e: std::io::Error, p: &Path| Error(format!("cannot write {}: {e}", p.display()));
    std::fs::create_dir_all(dir.join("firejail")).map_err(|e| made(e, dir))?;
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|e| made(e, &path))?;
    }
    Ok(main)
}
