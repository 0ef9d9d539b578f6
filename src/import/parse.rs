//! Reading Firejail profiles: lines into directives, and `include` chains
//! resolved as Firejail resolves them (macros; a relative name in
//! ~/.config/firejail, then /etc/firejail, then beside the including file;
//! a missing `.local` is skipped). A profile is untrusted text: files are
//! read bounded, never through a FIFO or device, includes are limited in
//! depth and number, a cycle is an error, and every error names the file
//! and line and what to do.

use super::directives::{self, Status};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The most one profile file may be.
pub const FILE_BYTES: u64 = 1 << 20;
/// The longest line (Firejail's own limit is shorter).
pub const LINE_BYTES: usize = 4096;
/// How deep includes may nest.
pub const DEPTH: usize = 12;
/// How many files one profile may pull in.
pub const FILES: usize = 256;

/// Where Firejail profiles are looked up.
#[derive(Clone, Debug)]
pub struct Dirs {
    /// `~/.config/firejail`.
    pub user: Option<PathBuf>,
    /// `/etc/firejail`.
    pub system: PathBuf,
    /// The home ${HOME} stands for in include lines.
    pub home: String,
}

impl Dirs {
    /// The caller's directories.
    pub fn host() -> Dirs {
        let home = crate::script::host::home_dir();
        Dirs {
            user: (home != "/").then(|| Path::new(&home).join(".config/firejail")),
            system: PathBuf::from("/etc/firejail"),
            home,
        }
    }
}

/// One line of a profile file.
#[derive(Clone, Debug)]
pub enum Item {
    Blank,
    Comment(String),
    Rule {
        line: usize,
        cond: Option<String>,
        name: String,
        arg: String,
        status: Status,
    },
    Include {
        line: usize,
        cond: Option<String>,
        written: String,
        /// The index of the included file, or None for a missing `.local`.
        file: Option<usize>,
    },
    /// An include of a file that is not there (not a `.local`): Firejail
    /// stops with an error, and so does the imported profile.
    Missing {
        line: usize,
        written: String,
        searched: Vec<String>,
    },
}

/// One file of a profile: the profile itself or an included one.
#[derive(Clone, Debug)]
pub struct File {
    pub path: PathBuf,
    pub items: Vec<Item>,
}

/// A profile and everything it includes; `files[0]` is the profile.
#[derive(Clone, Debug)]
pub struct Tree {
    pub files: Vec<File>,
}

/// What went wrong, where.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads the profile at `path` and its includes.
pub fn read(path: &Path, dirs: &Dirs) -> Result<Tree, Error> {
    let mut reader = Reader {
        dirs,
        files: Vec::new(),
        by_path: HashMap::new(),
        stack: Vec::new(),
    };
    reader.file(path, None)?;
    Ok(Tree {
        files: reader.files,
    })
}

/// Parses the text of one file without resolving includes (every include
/// is reported missing): for tests and for input that is not on disk.
pub fn parse_text(name: &str, text: &str) -> Result<Vec<Item>, Error> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        match line_of(name, line, raw)? {
            Parsed::Blank => out.push(Item::Blank),
            Parsed::Comment(c) => out.push(Item::Comment(c)),
            Parsed::Include { cond, written } => out.push(Item::Include {
                line,
                cond,
                written,
                file: None,
            }),
            Parsed::Rule {
                cond,
                name: n,
                arg,
                status,
            } => out.push(Item::Rule {
                line,
                cond,
                name: n,
                arg,
                status,
            }),
        }
    }
    Ok(out)
}

enum Parsed {
    Blank,
    Comment(String),
    Include {
        cond: Option<String>,
        written: String,
    },
    Rule {
        cond: Option<String>,
        name: String,
        arg: String,
        status: Status,
    },
}

/// One line: blank, a comment, an include or a directive.
fn line_of(file: &str, line: usize, raw: &str) -> Result<Parsed, Error> {
    let at = || format!("{file}:{line}");
    if raw.len() > LINE_BYTES {
        return Err(Error(format!(
            "{}: the line is longer than {LINE_BYTES} bytes; a Firejail profile line is one directive",
            at()
        )));
    }
    if raw.contains('\0') {
        return Err(Error(format!(
            "{}: the line holds a NUL byte; this is not a Firejail profile (a text file)",
            at()
        )));
    }
    let text = raw.trim();
    if text.is_empty() {
        return Ok(Parsed::Blank);
    }
    if let Some(c) = text.strip_prefix('#') {
        return Ok(Parsed::Comment(c.to_string()));
    }
    // A comment after a directive, as some stock profiles have
    // (`include x.inc # why`): a '#' after white space.
    let cut = [" #", "\t#"].iter().filter_map(|m| text.find(m)).min();
    let text = cut.map_or(text, |at| text[..at].trim_end());
    let (cond, rest) = match text.strip_prefix('?') {
        Some(c) => {
            let Some((name, rest)) = c.split_once(':') else {
                return Err(Error(format!(
                    "{}: a conditional line is ?CONDITION: DIRECTIVE (e.g. ?BROWSER_DISABLE_U2F: nou2f)",
                    at()
                )));
            };
            let name = name.trim();
            if !directives::known_condition(name) {
                return Ok(Parsed::Rule {
                    cond: None,
                    name: format!("?{name}:"),
                    arg: rest.trim().to_string(),
                    status: Status::Unsupported("not a condition Firejail defines"),
                });
            }
            (Some(name.to_string()), rest.trim())
        }
        None => (None, text),
    };
    let (name, arg) = match rest.split_once([' ', '\t']) {
        Some((n, a)) => (n, a.trim()),
        None => (rest, ""),
    };
    if name == "include" {
        if arg.is_empty() {
            return Err(Error(format!("{}: include needs a file name", at())));
        }
        return Ok(Parsed::Include {
            cond,
            written: arg.to_string(),
        });
    }
    Ok(Parsed::Rule {
        cond,
        name: name.to_string(),
        arg: arg.to_string(),
        status: directives::classify(name, arg),
    })
}

struct Reader<'a> {
    dirs: &'a Dirs,
    files: Vec<File>,
    /// Files already read, by their canonical path: included twice, read once.
    by_path: HashMap<PathBuf, usize>,
    /// The files being read, outermost first (a cycle is one of these again).
    stack: Vec<PathBuf>,
}

impl Reader<'_> {
    /// Reads `path` (and what it includes); returns its index. `from` is
    /// the including file and line, for messages.
    fn file(&mut self, path: &Path, from: Option<&str>) -> Result<usize, Error> {
        let canonical = std::fs::canonicalize(path).map_err(|e| {
            Error(format!(
                "{}cannot read {}: {e}",
                from.map(|f| format!("{f}: ")).unwrap_or_default(),
                path.display()
            ))
        })?;
        if self.stack.contains(&canonical) {
            let chain: Vec<String> = self
                .stack
                .iter()
                .chain([&canonical])
                .map(|p| p.display().to_string())
                .collect();
            return Err(Error(format!(
                "{}: include cycle: {}; remove one of these includes",
                from.unwrap_or("?"),
                chain.join(" includes ")
            )));
        }
        if let Some(i) = self.by_path.get(&canonical) {
            return Ok(*i);
        }
        if self.stack.len() >= DEPTH {
            return Err(Error(format!(
                "{}: includes nested deeper than {DEPTH} files; flatten the chain",
                from.unwrap_or("?")
            )));
        }
        if self.files.len() >= FILES {
            return Err(Error(format!(
                "{}: the profile includes more than {FILES} files",
                from.unwrap_or("?")
            )));
        }
        let text = read_bounded(path, from)?;
        let shown = path.display().to_string();
        let index = self.files.len();
        self.files.push(File {
            path: path.to_path_buf(),
            items: Vec::new(),
        });
        self.by_path.insert(canonical.clone(), index);
        self.stack.push(canonical);
        let mut items = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            let item = match line_of(&shown, line, raw)? {
                Parsed::Blank => Item::Blank,
                Parsed::Comment(c) => Item::Comment(c),
                Parsed::Rule {
                    cond,
                    name,
                    arg,
                    status,
                } => Item::Rule {
                    line,
                    cond,
                    name,
                    arg,
                    status,
                },
                Parsed::Include { cond, written } => {
                    let here = format!("{shown}:{line}");
                    let file = match self.resolve(&written, path) {
                        Some(target) => Some(self.file(&target, Some(&here))?),
                        None if written.ends_with(".local") => None,
                        None => {
                            // Firejail refuses to start; the imported
                            // profile refuses too (fail closed), when it runs.
                            let searched = self.searched(&written, path);
                            items.push(Item::Missing {
                                line,
                                written,
                                searched,
                            });
                            continue;
                        }
                    };
                    Item::Include {
                        line,
                        cond,
                        written,
                        file,
                    }
                }
            };
            items.push(item);
        }
        self.stack.pop();
        self.files[index].items = items;
        Ok(index)
    }

    /// The candidates for an include name, in Firejail's order.
    fn searched(&self, written: &str, from: &Path) -> Vec<String> {
        let name = self.expand(written);
        if name.starts_with('/') {
            return vec![name];
        }
        let mut out = Vec::new();
        if let Some(user) = &self.dirs.user {
            out.push(user.join(&name));
        }
        out.push(self.dirs.system.join(&name));
        if let Some(dir) = from.parent() {
            let beside = dir.join(&name);
            if !out.contains(&beside) {
                out.push(beside);
            }
        }
        out.into_iter().map(|p| p.display().to_string()).collect()
    }

    /// The file an include names, or None when none of the candidates exists.
    fn resolve(&self, written: &str, from: &Path) -> Option<PathBuf> {
        self.searched(written, from)
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    }

    fn expand(&self, written: &str) -> String {
        written
            .replace("${HOME}", &self.dirs.home)
            .replace("${CFG}", &self.dirs.system.display().to_string())
    }
}

/// The text of a profile file: regular, at most FILE_BYTES, UTF-8.
fn read_bounded(path: &Path, from: Option<&str>) -> Result<String, Error> {
    use crate::script::host::{read_bounded, Unread};
    let prefix = from.map(|f| format!("{f}: ")).unwrap_or_default();
    // A symlink the user or a profile named is followed to its file (the
    // stock profiles link names to one another); read_bounded refuses
    // symlinks, so it reads the file they lead to.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match read_bounded(&real, FILE_BYTES) {
        Ok(text) => Ok(text),
        Err(Unread::Absent) => Err(Error(format!(
            "{prefix}cannot read {}: no such file, or not readable",
            path.display()
        ))),
        Err(Unread::Refused(why)) => Err(Error(format!(
            "{prefix}{why}; a Firejail profile is a text file of at most {FILE_BYTES} bytes"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(dir: &Path) -> Dirs {
        Dirs {
            user: Some(dir.join("user")),
            system: dir.join("system"),
            home: "/home/u".into(),
        }
    }

    #[test]
    fn lines() {
        let items = parse_text(
            "t",
            "# c\n\nblacklist ${HOME}/a b\n?BROWSER_DISABLE_U2F: nou2f\ninclude x.inc\nnet none\n",
        )
        .unwrap();
        assert!(matches!(&items[0], Item::Comment(c) if c == " c"));
        assert!(matches!(&items[1], Item::Blank));
        assert!(
            matches!(&items[2], Item::Rule { name, arg, .. } if name == "blacklist" && arg == "${HOME}/a b")
        );
        assert!(
            matches!(&items[3], Item::Rule { cond: Some(c), name, .. } if c == "BROWSER_DISABLE_U2F" && name == "nou2f")
        );
        assert!(matches!(&items[4], Item::Include { written, .. } if written == "x.inc"));
    }

    #[test]
    fn includes_resolve_user_first_and_local_is_optional() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        std::fs::create_dir_all(t.path().join("user")).unwrap();
        std::fs::create_dir_all(t.path().join("system")).unwrap();
        std::fs::write(
            t.path().join("system/p.profile"),
            "include p.local\ninclude common.inc\ninclude missing.local\n",
        )
        .unwrap();
        std::fs::write(t.path().join("system/common.inc"), "blacklist /a\n").unwrap();
        std::fs::write(t.path().join("system/p.local"), "net none\n").unwrap();
        std::fs::write(t.path().join("user/p.local"), "nosound\n").unwrap();
        let tree = read(&t.path().join("system/p.profile"), &d).unwrap();
        assert_eq!(tree.files.len(), 3);
        assert_eq!(tree.files[1].path, t.path().join("user/p.local"));
        assert!(matches!(
            &tree.files[0].items[2],
            Item::Include { file: None, .. }
        ));
    }

    #[test]
    fn cycles_depth_and_missing_includes_are_errors_naming_the_line() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        std::fs::create_dir_all(t.path().join("system")).unwrap();
        let sys = t.path().join("system");
        std::fs::write(sys.join("a.inc"), "include b.inc\n").unwrap();
        std::fs::write(sys.join("b.inc"), "\ninclude a.inc\n").unwrap();
        let e = read(&sys.join("a.inc"), &d).unwrap_err().0;
        assert!(e.contains("b.inc:2: include cycle"), "{e}");
        std::fs::write(sys.join("m.profile"), "include nothere.inc # why\n").unwrap();
        let tree = read(&sys.join("m.profile"), &d).unwrap();
        assert!(
            matches!(&tree.files[0].items[0], Item::Missing { written, .. } if written == "nothere.inc")
        );
        for i in 0..20 {
            std::fs::write(
                sys.join(format!("d{i}.inc")),
                format!("include d{}.inc\n", i + 1),
            )
            .unwrap();
        }
        std::fs::write(sys.join("d20.inc"), "net none\n").unwrap();
        let e = read(&sys.join("d0.inc"), &d).unwrap_err().0;
        assert!(e.contains("nested deeper"), "{e}");
        std::fs::write(
            sys.join("same.profile"),
            "include d20.inc\ninclude d20.inc\n",
        )
        .unwrap();
        assert_eq!(read(&sys.join("same.profile"), &d).unwrap().files.len(), 2);
    }

    #[test]
    fn garbage_never_panics() {
        // Deterministic pseudo-random bytes, lines and near-directives.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let words = [
            "include",
            "?",
            "?HAS_X11:",
            "blacklist",
            "#",
            "\"",
            "\\",
            "${HOME}",
            ":",
            ",",
            "private-bin",
            "\t",
            " ",
            "\n",
            "\r",
            "\u{2028}",
            "é",
            "ignore",
            "?:",
        ];
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push_str(words[(x % words.len() as u64) as usize]);
                if x.is_multiple_of(5) {
                    text.push(char::from_u32((x >> 20) as u32 % 0x11_0000).unwrap_or('x'));
                }
            }
            if let Ok(items) = parse_text("g", &text) {
                let tree = Tree {
                    files: vec![File {
                        path: "g".into(),
                        items,
                    }],
                };
                let out = super::super::emit::profile("g", &tree, "g");
                assert!(!out.main.is_empty());
            }
        }
        let long = "a".repeat(LINE_BYTES + 1);
        assert!(parse_text("g", &long).unwrap_err().0.contains("g:1:"));
        assert!(parse_text("g", "x\0y").is_err());
    }
}
