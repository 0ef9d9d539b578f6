//! `~/.config/moksha/libs.lock`: each installed library pinned to a commit
//! and a content hash (and the hash of each file, so that a changed file
//! is named). Written by `moksha lib` only, atomically.

use super::tree::Hashes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const HEADER: &str = "# Written by `moksha lib`: every installed library, pinned. Do not edit.\n";
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    #[serde(default, rename = "library")]
    pub libraries: Vec<Entry>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The name imports use (`import "NAME/module"`).
    pub name: String,
    /// The manifest's version at the pinned commit.
    pub version: String,
    /// The git URL or absolute path it was added from.
    pub source: String,
    /// The tag, branch or commit asked for; none: the default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    pub commit: String,
    /// `tree::content_hash` of `files`.
    pub hash: String,
    pub files: Hashes,
}

/// The lock file's path.
pub fn path() -> Result<PathBuf, String> {
    Ok(super::store::base_dirs()?
        .config_dir()
        .join("moksha/libs.lock"))
}

impl Lock {
    /// The lock at `path`; an empty one when there is no file.
    pub fn read(path: &Path) -> Result<Lock, String> {
        let Some(bytes) = super::tree::read_one(path)? else {
            return Ok(Lock {
                version: VERSION,
                libraries: Vec::new(),
            });
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
        let lock: Lock = toml::from_str(&text).map_err(|e| {
            format!(
                "{}: {}",
                path.display(),
                crate::text::line(&e.to_string().replace('\n', " "))
            )
        })?;
        if lock.version != VERSION {
            return Err(format!(
                "{}: lock version {} is not the {VERSION} this moksha writes",
                path.display(),
                lock.version
            ));
        }
        for e in &lock.libraries {
            let bad = |why: String| format!("{}: library {:?}: {why}", path.display(), e.name);
            super::manifest::check_name(&e.name).map_err(bad)?;
            if super::tree::content_hash(&e.files) != e.hash {
                return Err(bad("its hash is not that of its files".into()));
            }
        }
        Ok(lock)
    }

    /// Writes the lock to `path` (a new file renamed over the old one); a
    /// lock without libraries is removed.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        if self.libraries.is_empty() {
            return match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
            };
        }
        let text = toml::to_string(self).map_err(|e| format!("cannot write the lock: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = path.with_extension(format!("lock.new-{}", std::process::id()));
        std::fs::write(&tmp, format!("{HEADER}{text}"))
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.libraries.iter().find(|e| e.name == name)
    }

    /// Adds or replaces the entry of `entry.name`, keeping names sorted.
    pub fn put(&mut self, entry: Entry) {
        self.libraries.retain(|e| e.name != entry.name);
        self.libraries.push(entry);
        self.libraries.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn remove(&mut self, name: &str) -> Option<Entry> {
        let i = self.libraries.iter().position(|e| e.name == name)?;
        Some(self.libraries.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_hash_that_does_not_match_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libs.lock");
        assert!(Lock::read(&path).unwrap().libraries.is_empty());
        let files: Hashes = [("modules/a.rhai".to_string(), "ab".to_string())].into();
        let mut lock = Lock {
            version: VERSION,
            libraries: Vec::new(),
        };
        lock.put(Entry {
            name: "acme".into(),
            version: "1.0".into(),
            source: "/src/acme".into(),
            rev: Some("v1".into()),
            commit: "0123".into(),
            hash: super::super::tree::content_hash(&files),
            files,
        });
        lock.write(&path).unwrap();
        assert_eq!(Lock::read(&path).unwrap(), lock);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("= \"ab\"", "= \"cd\"")).unwrap();
        let e = Lock::read(&path).unwrap_err();
        assert!(e.contains("its hash is not that of its files"), "{e}");
        lock.remove("acme");
        lock.write(&path).unwrap();
        assert!(!path.exists());
    }
}
