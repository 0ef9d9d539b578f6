//! The record of what `moksha install` wrote: each file with the SHA-256
//! of the content it wrote, so that `uninstall` removes only files that
//! are still exactly that, and `install` overwrites only those.

use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub files: Vec<Written>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Written {
    /// The profile it was installed for.
    pub app: String,
    pub path: PathBuf,
    pub sha256: String,
    /// The system desktop file it was copied from, if any.
    pub source: Option<PathBuf>,
}

/// A written file now.
#[derive(Debug, PartialEq, Clone, Copy)]
pub enum Now {
    /// Exactly what moksha wrote.
    AsWritten,
    /// Changed since, or replaced (by a symlink, a directory, ...).
    Changed,
    Missing,
}

impl Now {
    pub fn describe(self) -> &'static str {
        match self {
            Now::AsWritten => "installed",
            Now::Changed => "changed since",
            Now::Missing => "missing",
        }
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The content of a regular file, not following a symlink; `None` when
/// there is nothing at `path`.
pub fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

impl Written {
    pub fn now(&self) -> Now {
        match read_regular(&self.path) {
            Ok(None) => Now::Missing,
            Ok(Some(bytes)) if sha256(&bytes) == self.sha256 => Now::AsWritten,
            _ => Now::Changed,
        }
    }
}

impl Manifest {
    /// Reads the manifest; a missing one is empty, a corrupt one an error
    /// (nothing is touched then).
    pub fn load(path: &Path) -> Result<Manifest, String> {
        let bytes = read_regular(path)
            .map_err(|e| format!("cannot read the install manifest {}: {e}", path.display()))?;
        let Some(bytes) = bytes else {
            return Ok(Manifest::default());
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the install manifest {} is corrupt ({e}); fix or remove it",
                path.display()
            )
        })
    }

    /// Writes it atomically, or removes it when it lists nothing.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        if self.files.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!(
                    "cannot remove the install manifest {}: {e}",
                    path.display()
                )),
                _ => Ok(()),
            };
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        write_atomic(path, text.as_bytes(), 0o600)
            .map_err(|e| format!("cannot write the install manifest: {e}"))
    }

    pub fn entry(&self, path: &Path) -> Option<&Written> {
        self.files.iter().find(|w| w.path == path)
    }

    pub fn record(&mut self, written: Written) {
        self.files.retain(|w| w.path != written.path);
        self.files.push(written);
    }
}

/// Writes `bytes` to `path` through a new file beside it and a rename, so
/// that a symlink at `path` is replaced, never followed, and a reader sees
/// the old or the new file, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no directory", path.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.moksha-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            // The mode is exact, whatever the umask.
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}
