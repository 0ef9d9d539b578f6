//! Changes stores: what a sandbox wrote through `s.overlay`, kept on the
//! host until `moksha commit` applies it or `moksha discard` drops it.
//!
//! Each store NAME is `$XDG_DATA_HOME/moksha/changes/NAME/` (mode 0700):
//! - `upper/`, `work/`: the overlay's upper and work directories;
//! - `overlay.json`: the manifest — the host directory, where the sandbox
//!   saw it, and when the first sandbox on this store started (commit
//!   refuses host files changed since: no lost update);
//! - `lock`: held (flock) by the supervisor of the sandbox using the
//!   store; commit and discard refuse while it is held.
//!
//! The sandbox reaches none of it: the launcher hides the changes
//! directory wherever a bind would show it, and the overlay's layers are
//! passed to the kernel by descriptor. What is in `upper/` is still the
//! sandbox's doing, so reading it (`scan`) and applying it (`apply`) trust
//! nothing there: no symlink is followed, only regular files, directories,
//! symlinks and whiteouts are taken, and setuid/setgid bits are dropped.

pub mod apply;
pub mod commands;
pub mod scan;
pub mod show;

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub type Result<T> = std::result::Result<T, String>;

/// The mode of the placeholder a protect step makes for a missing path
/// (`launch::protect`): readable, so that a walk of the project (cp -r,
/// find, tar) inside does not stop at it; writable by nobody.
pub const PLACEHOLDER_MODE: u32 = 0o555;

/// A point in time, as the kernel stamps a file's ctime.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Stamp {
    pub sec: i64,
    pub nsec: i64,
}

impl Stamp {
    /// Now, by the clock file timestamps come from (the coarse real-time
    /// clock: a change made after this has a ctime at or after it).
    pub fn now() -> Stamp {
        let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE)
            .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
        Stamp {
            sec: t.tv_sec(),
            nsec: t.tv_nsec(),
        }
    }

    /// The ctime of `meta`.
    pub fn ctime(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            sec: meta.ctime(),
            nsec: meta.ctime_nsec(),
        }
    }
}

/// The manifest of one store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The host directory under the overlay.
    pub source: String,
    /// Where the sandbox saw it.
    pub target: String,
    /// When the first sandbox on this store started.
    pub started: Stamp,
    /// Host paths (relative) a partial commit wrote, with the ctime they
    /// had after it: changed again later by the sandbox, they are not a
    /// conflict with themselves.
    #[serde(default)]
    pub committed: std::collections::BTreeMap<String, Stamp>,
    /// Relative paths where a protect step may have put a placeholder
    /// (`launch::protect`): an empty directory of its mode there is not
    /// the sandbox's change.
    #[serde(default)]
    pub placeholders: Vec<String>,
}

/// `$XDG_DATA_HOME/moksha/changes` (`~/.local/share/moksha/changes`).
pub fn base() -> Result<PathBuf> {
    let dirs = crate::xdg::base_dirs()
        .ok_or("no home directory for the changes store (set HOME or XDG_DATA_HOME)")?;
    Ok(dirs.data_dir().join("moksha/changes"))
}

/// A store by name.
#[derive(Clone, Debug)]
pub struct Store {
    pub name: String,
    pub dir: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

impl Store {
    /// The store NAME (a valid instance name), whether or not it exists.
    pub fn named(name: &str) -> Result<Store> {
        crate::state::check_name(name).map_err(|e| e.replace("instance name", "changes name"))?;
        Ok(Store {
            name: name.to_string(),
            dir: base()?.join(name),
        })
    }

    /// Every store there is, by name.
    pub fn all() -> Vec<Store> {
        let Ok(base) = base() else {
            return Vec::new();
        };
        let mut names: Vec<String> = std::fs::read_dir(&base)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| crate::state::check_name(n).is_ok())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| Store {
                dir: base.join(&name),
                name,
            })
            .collect()
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join("overlay.json")
    }

    pub fn exists(&self) -> bool {
        self.manifest_path().exists()
    }

    pub fn manifest(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "no changes named {:?} (moksha ps lists those there are)",
                    self.name
                )
            } else {
                io("cannot read", &path, e)
            }
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let path = self.manifest_path();
        let tmp = self.dir.join(".overlay.json.new");
        let text = serde_json::to_string_pretty(m).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text + "\n")
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| io("cannot write", &path, e))
    }

    /// Takes the store's lock, without waiting: `Err` while a sandbox
    /// uses the store.
    pub fn lock(&self) -> Result<File> {
        Store::lock_in(&self.dir.to_string_lossy())
    }

    /// The lock of the store directory `dir`.
    pub fn lock_in(dir: &str) -> Result<File> {
        let path = Path::new(dir).join("lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io("cannot open", &path, e))?;
        if !crate::sys::try_flock(&file, true) {
            return Err(format!(
                "the changes in {dir} are in use by a running sandbox: stop it first"
            ));
        }
        Ok(file)
    }

    /// Whether a sandbox uses the store now.
    pub fn in_use(&self) -> bool {
        self.exists() && self.lock().is_err()
    }

    /// Makes the store ready for a sandbox on the host directory
    /// `source` seen at `target`: created (upper and work owned by
    /// `owner`, the ids the overlay writes with), or reused when it holds
    /// changes of the same directory (the sandbox goes on from them; the
    /// start time stays the first one's). Run by the launcher.
    pub fn prepare(&self, source: &str, target: &str, owner: Option<(u32, u32)>) -> Result<()> {
        // Below the data directory no symlink is followed (a sandbox that
        // could write there might have planted one). `moksha/` may be
        // entered (setup as nobody, run by root, must reach `changes/` to
        // hide it); `changes/` and the store are private.
        let data = self
            .dir
            .ancestors()
            .nth(3)
            .expect("a store is DATA/moksha/changes/NAME");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(data)
            .map_err(|e| io("cannot create", data, e))?;
        let data_fd = crate::sys::open_path(&data.to_string_lossy()).map_err(|e| e.to_string())?;
        for (rel, mode) in [
            ("moksha".to_string(), 0o755),
            ("moksha/changes".to_string(), 0o700),
            (format!("moksha/changes/{}", self.name), 0o700),
        ] {
            crate::sys::mkdir_all_beneath(&data_fd, &rel, mode, false, None, &rel)
                .map_err(|e| format!("{}: {e}", data.display()))?;
        }
        let meta = self
            .dir
            .symlink_metadata()
            .map_err(|e| io("cannot read", &self.dir, e))?;
        if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(format!(
                "{} is not a directory of yours; refusing to use it",
                self.dir.display()
            ));
        }
        let fresh = match self.manifest() {
            Ok(m) if m.source != source => {
                return Err(format!(
                    "the changes {:?} hold changes of {}, not {source}: commit or discard them \
                     first (moksha commit/discard {0}), or name other changes",
                    self.name, m.source
                ))
            }
            Ok(_) => scan::is_empty(&self.upper()),
            Err(_) => true,
        };
        for (name, mode) in [("upper", 0o755), ("work", 0o700)] {
            let dir = self.dir.join(name);
            match std::fs::DirBuilder::new().mode(mode).create(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                        .map_err(|e| io("cannot set the mode of", &dir, e))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("cannot create", &dir, e)),
            }
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))
                    .map_err(|e| io("cannot chown", &dir, e))?;
            }
        }
        if fresh {
            self.write_manifest(&Manifest {
                source: source.to_string(),
                target: target.to_string(),
                started: Stamp::now(),
                committed: Default::default(),
                placeholders: Vec::new(),
            })?;
        }
        Ok(())
    }

    /// Records where placeholders may be made in the upper directory.
    pub fn add_placeholders(&self, paths: &[String]) -> Result<()> {
        let mut m = self.manifest()?;
        for p in paths {
            if !m.placeholders.contains(p) {
                m.placeholders.push(p.clone());
            }
        }
        self.write_manifest(&m)
    }

    /// The changes of the store, over the host directory `host`.
    pub fn scan(&self, m: &Manifest, host: &scan::HostDir) -> Result<Vec<scan::Change>> {
        let mut changes = scan::scan(&self.upper(), host)?;
        changes.retain(|c| {
            let placeholder = c.kind == scan::Kind::Added
                && c.node
                    == scan::Node::Dir {
                        mode: PLACEHOLDER_MODE,
                        opaque: false,
                    }
                && m.placeholders
                    .iter()
                    .any(|p| Path::new(p) == c.path.as_path())
                && scan::is_empty(&self.upper().join(&c.path));
            !placeholder
        });
        Ok(changes)
    }

    /// Removes the store when its upper directory is empty (nothing was
    /// written; a scan is not worth it at the end of every run) and no
    /// sandbox uses it.
    pub fn remove_if_unchanged(&self) {
        let Ok(lock) = self.lock() else {
            return;
        };
        if scan::is_empty(&self.upper()) {
            let _ = self.remove(&lock);
        }
    }

    /// Removes the store: its changes are gone. Needs the lock.
    pub fn remove(&self, _lock: &File) -> Result<()> {
        scan::make_removable(&self.dir);
        std::fs::remove_dir_all(&self.dir).map_err(|e| io("cannot remove", &self.dir, e))
    }
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_not_ahead_of_file_times() {
        let t = tempfile::tempdir().unwrap();
        let before = Stamp::now();
        std::fs::write(t.path().join("f"), "x").unwrap();
        let meta = std::fs::symlink_metadata(t.path().join("f")).unwrap();
        assert!(Stamp::ctime(&meta) >= before);
    }
}
