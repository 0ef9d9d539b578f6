//! Fetching a library with the `git` program: a fresh clone of the source
//! (no checkout, so no filter, hook or attribute of the repository runs),
//! then the library's files read out of the commit's tree as blobs and
//! written by moksha itself. git runs only in that clone, with hooks and
//! fsmonitor off and remote helpers limited to plain transports, so a
//! repository cannot make git run a command of its own.
//!
//! Why the program and not gix: git is installed wherever moksha users keep
//! libraries, it handles every transport and credential helper the user has
//! set up, and it costs no build time; the few commands used here are
//! plumbing with stable output.

use super::tree::{self, Files};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A commit's library files.
pub struct Fetched {
    pub commit: String,
    pub files: Files,
}

/// Transports git may use (GIT_ALLOW_PROTOCOL): no `ext::` (runs a
/// command), no `fd::`, no other remote helper.
const PROTOCOLS: &str = "file:git:http:https:ssh";

/// A `git` command with the repository-independent hardening.
fn git() -> Command {
    let mut c = Command::new("git");
    c.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "protocol.ext.allow=never",
        "-c",
        "submodule.recurse=false",
    ])
    .env("GIT_ALLOW_PROTOCOL", PROTOCOLS)
    .env("GIT_TERMINAL_PROMPT", "0");
    // The system's and the user's git configuration stay in force: they
    // are the administrator's and the user's (proxies, CAs, credential
    // helpers, insteadOf), never the library's, and what in them could run
    // a command on a clone (hooks, fsmonitor) is overridden above.
    // The user's environment must not point git at another repository.
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CEILING_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
    ] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null());
    c
}

/// Runs `cmd`, returning its stdout; the error quotes git's stderr.
fn run(mut cmd: Command, what: &str) -> Result<Vec<u8>, String> {
    let out = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| format!("{what}: cannot run git: {e} (is git installed?)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{what}: git failed: {}",
            crate::text::line(err.trim())
        ));
    }
    Ok(out.stdout)
}

/// The source as the lock records it: a URL as given, a local path made
/// absolute. Anything git could read as an option is refused.
pub fn normalize_source(source: &str) -> Result<String, String> {
    if source.is_empty() || source.starts_with('-') {
        return Err(format!(
            "{:?} is not a git URL or a path (a source may not start with '-')",
            crate::text::line(source)
        ));
    }
    if source.chars().any(char::is_control) {
        return Err("a library source may not hold control characters".into());
    }
    if source.contains("://") || is_scp_like(source) {
        return Ok(source.to_string());
    }
    let path = std::fs::canonicalize(source).map_err(|e| {
        format!(
            "{}: {e} (a library source is a git URL or a path)",
            crate::text::line(source)
        )
    })?;
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{}: the path is not UTF-8", path.display()))
}

/// `user@host:path`, git's scp-like ssh syntax.
fn is_scp_like(s: &str) -> bool {
    match s.split_once(':') {
        Some((host, _)) => !host.is_empty() && !host.contains('/'),
        None => false,
    }
}

fn check_rev(rev: &str) -> Result<(), String> {
    let ok = !rev.is_empty()
        && !rev.starts_with('-')
        && rev.len() <= 200
        && rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+".contains(c))
        && !rev.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--rev {:?}: a tag, a branch or a commit id",
            crate::text::line(rev)
        ))
    }
}

/// Removes the clone when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Clones `source` into a scratch directory inside `work_dir` and reads the
/// library's files at `rev` (default: the default branch's head).
pub fn fetch(source: &str, rev: Option<&str>, work_dir: &Path) -> Result<Fetched, String> {
    if let Some(rev) = rev {
        check_rev(rev)?;
    }
    std::fs::create_dir_all(work_dir)
        .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
    let scratch = Scratch(work_dir.join(format!(".fetch-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let repo = scratch.0.join("repo");
    let mut clone = git();
    clone
        .args(["clone", "--quiet", "--no-checkout", "--template=", "--"])
        .arg(source)
        .arg(&repo);
    run(clone, &format!("cloning {}", crate::text::line(source)))?;
    let in_repo = || {
        let mut c = git();
        c.arg("-C").arg(&repo);
        c
    };
    let commit = resolve(&in_repo, rev)?;
    let mut ls = in_repo();
    ls.args(["ls-tree", "-r", "-z", "-l", "--full-tree", &commit]);
    let listing = run(ls, "listing the commit's files")?;
    let mut wanted: Vec<(String, String)> = Vec::new();
    let mut total = 0u64;
    for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = std::str::from_utf8(entry)
            .map_err(|_| "the commit holds a file name that is not UTF-8".to_string())?;
        let (meta, path) = entry
            .split_once('\t')
            .ok_or_else(|| format!("unexpected ls-tree output {entry:?}"))?;
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let [mode, kind, oid, size] = fields[..] else {
            return Err(format!("unexpected ls-tree output {entry:?}"));
        };
        if !tree::is_in_library(path) {
            continue;
        }
        let shown = crate::text::line(path);
        match (mode, kind) {
            ("120000", _) => {
                return Err(format!(
                "{shown} is a symbolic link in commit {commit}; a library holds regular files only"
            ))
            }
            (_, "commit") => {
                return Err(format!(
                    "{shown} is a submodule in commit {commit}; a library holds regular files only"
                ))
            }
            ("100644" | "100755", "blob") => {}
            _ => return Err(format!("{shown} is not a regular file in commit {commit}")),
        }
        if !tree::is_library_file(path) {
            if path.ends_with(".rhai") || path == super::manifest::FILE {
                return Err(format!(
                    "{shown}: not a plain name; a library's files are named with letters, digits, '_', '-' and '.'"
                ));
            }
            continue;
        }
        let size: u64 = size
            .parse()
            .map_err(|_| format!("unexpected size {size:?}"))?;
        if size > tree::MAX_FILE_BYTES {
            return Err(format!(
                "{shown} is larger than {} bytes, the most a library file may be",
                tree::MAX_FILE_BYTES
            ));
        }
        total += size;
        if wanted.len() >= tree::MAX_FILES || total > tree::MAX_TOTAL_BYTES {
            return Err(format!(
                "a library may hold at most {} files and {} bytes",
                tree::MAX_FILES,
                tree::MAX_TOTAL_BYTES
            ));
        }
        wanted.push((path.to_string(), oid.to_string()));
    }
    let files = blobs(&in_repo, &wanted)?;
    Ok(Fetched { commit, files })
}

/// The commit `rev` names: a tag, a local or remote branch, a commit id.
fn resolve(in_repo: &dyn Fn() -> Command, rev: Option<&str>) -> Result<String, String> {
    let candidates: Vec<String> = match rev {
        None => vec!["HEAD".into()],
        Some(r) => vec![r.to_string(), format!("origin/{r}")],
    };
    for candidate in &candidates {
        let mut c = in_repo();
        c.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{candidate}^{{commit}}"));
        if let Ok(out) = run(c, "rev-parse") {
            let id = String::from_utf8_lossy(&out).trim().to_string();
            if id.len() >= 40 && id.chars().all(|c| c.is_ascii_hexdigit()) {
                return Ok(id);
            }
        }
    }
    Err(format!(
        "no commit {:?} in the repository (a tag, a branch or a commit id)",
        rev.unwrap_or("HEAD")
    ))
}

/// The contents of `wanted` blobs, through one `git cat-file --batch`.
fn blobs(in_repo: &dyn Fn() -> Command, wanted: &[(String, String)]) -> Result<Files, String> {
    let mut c = in_repo();
    c.args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot run git cat-file: {e}"))?;
    let mut input = String::new();
    for (_, oid) in wanted {
        input.push_str(oid);
        input.push('\n');
    }
    // Written from a thread: git's output fills its pipe before it reads
    // all of its input.
    let mut stdin = child.stdin.take().ok_or("git cat-file: no stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut out = Vec::new();
    let read = child
        .stdout
        .take()
        .ok_or("git cat-file: no stdout")?
        .read_to_end(&mut out);
    let _ = writer.join();
    let status = child.wait().map_err(|e| format!("git cat-file: {e}"))?;
    read.map_err(|e| format!("git cat-file: {e}"))?;
    if !status.success() {
        return Err("git cat-file failed".into());
    }
    let mut files = Files::new();
    let mut rest = &out[..];
    for (path, oid) in wanted {
        let nl = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("git cat-file: truncated output")?;
        let header = std::str::from_utf8(&rest[..nl]).map_err(|_| "git cat-file: bad header")?;
        let fields: Vec<&str> = header.split(' ').collect();
        let [id, "blob", size] = fields[..] else {
            return Err(format!("git cat-file: unexpected {header:?}"));
        };
        if id != oid {
            return Err(format!("git cat-file: asked for {oid}, got {id}"));
        }
        let size: usize = size.parse().map_err(|_| "git cat-file: bad size")?;
        let body = rest
            .get(nl + 1..nl + 1 + size)
            .ok_or("git cat-file: truncated output")?;
        files.insert(path.clone(), body.to_vec());
        rest = rest.get(nl + 2 + size..).unwrap_or(&[]);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_revs_that_git_would_read_as_options_are_refused() {
        assert!(normalize_source("--upload-pack=touch /tmp/x")
            .unwrap_err()
            .contains("may not start with '-'"));
        assert!(normalize_source("-q").is_err());
        assert!(normalize_source("a\nb").is_err());
        assert_eq!(
            normalize_source("https://example.org/acme.git").unwrap(),
            "https://example.org/acme.git"
        );
        assert_eq!(normalize_source("git@host:acme").unwrap(), "git@host:acme");
        assert_eq!(normalize_source("/").unwrap(), "/");
        for bad in ["--output=/x", "-x", "a..b", "a b", ""] {
            assert!(check_rev(bad).is_err(), "{bad}");
        }
        assert!(check_rev("v1.2.0").is_ok() && check_rev("feature/x").is_ok());
    }
}
