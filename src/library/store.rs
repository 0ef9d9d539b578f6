//! Installed libraries: `~/.local/share/moksha/libs/NAME`, each checked
//! against the lock when it is loaded. What the resolver and the profile
//! lookup see is a `Libraries` set: the installed ones, or (for `moksha
//! lib update` and `moksha test`) a set where one library is a staged or
//! working copy.

use super::lock::{self, Lock};
use super::tree::{self, Files, Hashes};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where libraries are installed.
pub fn libs_dir() -> Result<PathBuf, String> {
    Ok(base_dirs()?.data_dir().join("moksha/libs"))
}

/// The XDG base directories (`$XDG_CONFIG_HOME`, `$XDG_DATA_HOME`, else
/// under `$HOME`), as the rest of moksha finds them.
pub fn base_dirs() -> Result<directories::BaseDirs, String> {
    directories::BaseDirs::new()
        .ok_or_else(|| "no home directory is known ($HOME is not set), so no library either".into())
}

/// One library the resolver may use.
#[derive(Clone, Debug)]
pub struct Library {
    pub name: String,
    pub root: PathBuf,
    /// The hashes the lock pins; `None` for a working or staged copy
    /// (read as it is).
    pub pinned: Option<Hashes>,
    /// How its files are named in messages when not by their path: a
    /// staged commit is `acme@0123456789ab:modules/x.rhai` (its directory
    /// is gone once the update is applied or refused).
    pub label: Option<String>,
}

/// The libraries an evaluation may import from, and which it did.
#[derive(Clone, Debug, Default)]
pub struct Libraries {
    list: Vec<Library>,
    /// Why the installed set could not be read (a broken lock): the error
    /// of any import that needs a library.
    broken: Option<String>,
    /// The libraries an evaluation loaded (shared with its caller).
    used: Arc<Mutex<BTreeSet<String>>>,
}

impl Libraries {
    /// The installed libraries, as the lock lists them. A lock that cannot
    /// be read breaks only what imports a library.
    pub fn installed() -> Libraries {
        match Self::try_installed() {
            Ok(set) => set,
            Err(e) => Libraries {
                broken: Some(e),
                ..Default::default()
            },
        }
    }

    fn try_installed() -> Result<Libraries, String> {
        let lock = Lock::read(&lock::path()?)?;
        if lock.libraries.is_empty() {
            return Ok(Libraries::default());
        }
        let dir = libs_dir()?;
        Ok(Libraries {
            list: lock
                .libraries
                .into_iter()
                .map(|e| Library {
                    root: dir.join(&e.name),
                    name: e.name,
                    pinned: Some(e.files),
                    label: None,
                })
                .collect(),
            ..Default::default()
        })
    }

    /// This set, with `lib` in place of the library of its name.
    pub fn with(mut self, lib: Library) -> Libraries {
        self.list.retain(|l| l.name != lib.name);
        self.list.push(lib);
        self.used = Arc::default();
        self
    }

    /// This set with its own record of what is used.
    pub fn with_fresh_use(mut self) -> Libraries {
        self.used = Arc::default();
        self
    }

    /// The library `name`; an error when the installed set is broken.
    pub fn get(&self, name: &str) -> Result<Option<&Library>, String> {
        match (self.list.iter().find(|l| l.name == name), &self.broken) {
            (Some(l), _) => Ok(Some(l)),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Ok(None),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|l| l.name.clone()).collect()
    }

    /// Records that an evaluation loaded `name`.
    pub fn mark_used(&self, name: &str) {
        if let Ok(mut used) = self.used.lock() {
            used.insert(name.to_string());
        }
    }

    /// The libraries loaded through this set (or a clone of it) so far.
    pub fn used(&self) -> BTreeSet<String> {
        self.used.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

impl Library {
    /// Reads the library's files and checks them against the lock: a file
    /// changed, added or removed since it was pinned is refused, named.
    pub fn load(&self) -> Result<Files, String> {
        let files =
            tree::read_dir(&self.root).map_err(|e| format!("library {}: {e}", self.name))?;
        if let Some(pinned) = &self.pinned {
            let now = tree::hashes(&files);
            let lock = lock::path().map_or_else(|_| "the lock".into(), |p| p.display().to_string());
            let refused = |file: &str, what: &str| {
                format!(
                    "library {}: {} {what} since it was pinned (it does not match {lock}); \
                     the library is refused until it is pinned again: `moksha lib update {}` \
                     installs the pinned source again",
                    self.name,
                    self.root.join(file).display(),
                    self.name
                )
            };
            for (file, hash) in pinned {
                match now.get(file) {
                    None => return Err(refused(file, "was removed")),
                    Some(h) if h != hash => return Err(refused(file, "was modified")),
                    Some(_) => {}
                }
            }
            if let Some(file) = now.keys().find(|f| !pinned.contains_key(*f)) {
                return Err(refused(file, "was added"));
            }
        }
        Ok(files)
    }

    /// The library whose working copy `dir` is in: the nearest directory
    /// at or above it with a manifest, read as it is (not pinned).
    pub fn working_copy_at(dir: &Path) -> Result<Option<Library>, String> {
        let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for root in dir.ancestors() {
            if root.join(super::manifest::FILE).is_file() {
                let files = tree::read_dir(root)?;
                let m = tree::manifest_of(&files, &root.display().to_string())?;
                return Ok(Some(Library {
                    name: m.name,
                    root: root.to_path_buf(),
                    pinned: None,
                    label: None,
                }));
            }
        }
        Ok(None)
    }

    /// The file of module `module` (`browser` → `modules/browser.rhai`).
    pub fn module_file(module: &str) -> String {
        format!("{}/{module}.rhai", super::manifest::MODULES_DIR)
    }

    pub fn profile_file(profile: &str) -> String {
        format!("{}/{profile}.rhai", super::manifest::PROFILES_DIR)
    }

    /// How a file of this library is named in messages and positions.
    pub fn display(&self, file: &str) -> String {
        match &self.label {
            Some(label) => format!("{label}:{file}"),
            None => self.root.join(file).to_string_lossy().into_owned(),
        }
    }
}

/// The library a profile argument or import path names: `NAME/rest` with
/// NAME a library name, and the rest.
pub fn split(path: &str) -> Option<(&str, &str)> {
    let (name, rest) = path.split_once('/')?;
    (super::manifest::check_name(name).is_ok() && !rest.is_empty()).then_some((name, rest))
}

/// A path for a new directory beside `root`'s (same filesystem, so a
/// rename moves it into place).
pub fn staging(dir: &Path, name: &str, what: &str) -> PathBuf {
    dir.join(format!(".{name}.{what}-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_that_differs_from_its_pin_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("acme");
        let mut files = Files::new();
        files.insert("moksha-lib.toml".into(), b"name = \"acme\"\n".to_vec());
        files.insert("modules/a.rhai".into(), b"fn a() { 1 }\n".to_vec());
        tree::write_dir(&root, &files).unwrap();
        let lib = Library {
            name: "acme".into(),
            root: root.clone(),
            pinned: Some(tree::hashes(&files)),
            label: None,
        };
        assert_eq!(lib.load().unwrap(), files);
        let a = root.join("modules/a.rhai");
        std::fs::write(&a, "fn a() { 2 }\n").unwrap();
        let e = lib.load().unwrap_err();
        assert!(
            e.contains(&format!("{} was modified since it was pinned", a.display())),
            "{e}"
        );
        std::fs::write(&a, "fn a() { 1 }\n").unwrap();
        std::fs::write(root.join("modules/b.rhai"), "fn b() {}\n").unwrap();
        assert!(lib.load().unwrap_err().contains("modules/b.rhai was added"));
        std::fs::remove_file(root.join("modules/b.rhai")).unwrap();
        std::fs::remove_file(&a).unwrap();
        assert!(lib
            .load()
            .unwrap_err()
            .contains("modules/a.rhai was removed"));
        // Unpinned (a working copy): read as it is.
        let work = Library {
            pinned: None,
            ..lib
        };
        assert_eq!(work.load().unwrap().len(), 1);
    }

    #[test]
    fn library_names_in_paths() {
        assert_eq!(split("acme/firefox"), Some(("acme", "firefox")));
        assert_eq!(split("acme/net/proxy"), Some(("acme", "net/proxy")));
        assert_eq!(split("./x"), None);
        assert_eq!(split("Acme/x"), None);
        assert_eq!(split("acme/"), None);
        assert_eq!(split("firejail/x"), None);
    }
}
