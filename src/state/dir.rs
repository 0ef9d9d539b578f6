//! Where the instances live: `$XDG_RUNTIME_DIR/moksha`, else
//! `/tmp/moksha-UID`. Anyone can create `/tmp/moksha-UID` first; such a
//! directory is refused, and the state moves to `$XDG_STATE_HOME/moksha/run`
//! (`~/.local/state/moksha/run`), which only the user can create. The
//! fallback is deterministic so that the next `moksha ps` finds what this
//! `moksha exec --detach` started, and it is checked the same way: a
//! directory (not a symlink), owned by us, mode 0700.

use super::Result;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The user's state directory, created if needed and checked. Located once
/// per process, so the note about a fallback is printed once.
pub fn state_dir() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf>> = OnceLock::new();
    DIR.get_or_init(locate).clone()
}

fn locate() -> Result<PathBuf> {
    let uid = nix::unistd::geteuid().as_raw();
    let primary = primary(uid);
    let refused = match ensure_private(&primary, uid) {
        Ok(()) => return Ok(primary),
        Err(e) => e,
    };
    let fallback = fallback().and_then(|dir| {
        if let Some(parent) = dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        ensure_private(&dir, uid).map(|()| dir)
    });
    match fallback {
        Ok(dir) => {
            eprintln!("moksha: note: {refused}; using {} instead", dir.display());
            Ok(dir)
        }
        Err(e) => Err(format!(
            "{refused}, and the fallback cannot be used either: {e}; \
             set XDG_RUNTIME_DIR to a private directory of yours"
        )),
    }
}

/// `$XDG_RUNTIME_DIR/moksha` when that is a directory of ours, else
/// `/tmp/moksha-UID`.
fn primary(uid: u32) -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .filter(|d| {
            d.symlink_metadata()
                .map(|m| m.is_dir() && m.uid() == uid)
                .unwrap_or(false)
        })
        .map(|d| d.join("moksha"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/moksha-{uid}")))
}

/// `$XDG_STATE_HOME/moksha/run`, under an absolute home.
fn fallback() -> Result<PathBuf> {
    let base = crate::xdg::base_dirs().ok_or("no home directory (set HOME)")?;
    let state = base
        .state_dir()
        .ok_or("no XDG state directory (set XDG_STATE_HOME)")?;
    Ok(state.join("moksha/run"))
}

/// Creates `dir` mode 0700 if it is missing, then checks that it is a
/// directory (not a symlink), owned by `uid`, that nobody else can enter.
fn ensure_private(dir: &Path, uid: u32) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        // The umask may have narrowed the mode, never widened it; set it
        // exactly anyway.
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(format!(
                "cannot create the state directory {}: {e}",
                dir.display()
            ))
        }
    }
    let meta = dir
        .symlink_metadata()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let what = if meta.file_type().is_symlink() {
        "a symlink".to_string()
    } else if !meta.is_dir() {
        "not a directory".to_string()
    } else if meta.uid() != uid {
        format!("owned by uid {}", meta.uid())
    } else if meta.mode() & 0o077 != 0 {
        format!("open to others (mode {:o})", meta.mode() & 0o7777)
    } else {
        return Ok(());
    };
    Err(format!(
        "the state directory {} is {what}, not a private directory of uid {uid}; refusing to use it",
        dir.display()
    ))
}
