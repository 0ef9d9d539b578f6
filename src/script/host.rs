//! Read-only questions a profile may ask about the host. Nothing here changes
//! anything; these are the only ways a profile learns about the machine.

use crate::xdg::base_dirs;
use std::path::Path;

/// The kernel release, e.g. "6.18.4".
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Major and minor of the running kernel.
pub fn kernel_version() -> (i64, i64) {
    let rel = kernel_release();
    let mut nums = rel
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<i64>().ok());
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}

pub fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

pub fn gid() -> u32 {
    nix::unistd::getegid().as_raw()
}

/// The caller's login name from the password database, or `$USER`, or the uid.
pub fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid().to_string())
}

/// A host path as profile text, lossless (`crate::arg::path_text`); the
/// queries below take such text back with `host`.
fn text(p: &Path) -> String {
    crate::arg::path_text(p)
}

fn host(path: &str) -> std::path::PathBuf {
    crate::arg::to_path(path)
}

/// The launcher's environment variable, lossless (`crate::arg::to_text`).
pub fn env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| crate::arg::to_text(&v).0)
}

/// `$HOME`, or the home in the password database, or "/".
pub fn home_dir() -> String {
    base_dirs().map_or_else(|| "/".into(), |b| text(b.home_dir()))
}

/// An XDG base directory by kind: config, data, cache, state or runtime
/// (without `$XDG_RUNTIME_DIR`: `/run/user/UID`).
pub fn xdg_dir(kind: &str) -> Result<String, String> {
    let dirs = base_dirs();
    let under_root = |default: &str| format!("/{default}");
    Ok(match (kind, dirs) {
        ("config", Some(d)) => text(d.config_dir()),
        ("data", Some(d)) => text(d.data_dir()),
        ("cache", Some(d)) => text(d.cache_dir()),
        ("state", Some(d)) => d.state_dir().map_or_else(|| under_root(".local/state"), text),
        ("config", None) => under_root(".config"),
        ("data", None) => under_root(".local/share"),
        ("cache", None) => under_root(".cache"),
        ("state", None) => under_root(".local/state"),
        ("runtime", _) => dirs
            .and_then(|d| d.runtime_dir().map(text))
            .unwrap_or_else(|| format!("/run/user/{}", uid())),
        (other, _) => {
            return Err(format!(
                "unknown XDG directory kind {other:?}; expected one of config, data, cache, state, runtime"
            ))
        }
    })
}

/// The working directory; a byte of its path that is not UTF-8 stands as
/// U+10FF00 + byte (`crate::arg`), which `sys` turns back into the byte.
pub fn current_dir() -> String {
    std::env::current_dir()
        .map(|p| text(&p))
        .unwrap_or_else(|_| "/".into())
}

pub fn exists(path: &str) -> bool {
    host(path).symlink_metadata().is_ok()
}

/// Where the symlink `path` points, or None if it is not a symlink.
pub fn read_link(path: &str) -> Option<String> {
    std::fs::read_link(host(path)).ok().map(|p| text(&p))
}

/// `path` with every symlink resolved, or None if it does not exist.
pub fn real_path(path: &str) -> Option<String> {
    std::fs::canonicalize(host(path)).ok().map(|p| text(&p))
}

pub fn is_dir(path: &str) -> bool {
    host(path).is_dir()
}

pub fn is_file(path: &str) -> bool {
    host(path).is_file()
}

/// What globs may cost one evaluation, together: directory entries read
/// and time spent. With the matches per call (`glob`'s `limit`) and the
/// levels of a pattern, they keep a profile's globs from walking the host
/// for minutes (the operation limit counts a call as one operation).
pub mod glob_limits {
    use std::time::Duration;
    pub const LEVELS: usize = 32;
    pub const ENTRIES: u64 = 200_000;
    pub const TIME: Duration = Duration::from_secs(5);
}

thread_local! {
    /// Entries read and time spent by the globs of the evaluation running
    /// on this thread (`with_own_glob_budget`).
    static GLOB_SPENT: std::cell::Cell<(u64, std::time::Duration)> =
        const { std::cell::Cell::new((0, std::time::Duration::ZERO)) };
}

/// Runs an evaluation with a glob budget of its own: none of it spent at
/// the start, and the caller's as it was after (an evaluation inside
/// another, `plan_of` in a policy test, neither uses nor leaves the outer
/// one's). Several evaluations run one after another in one process
/// (`moksha check a b c`, `moksha test`, a library's review of its
/// effects): without this, a profile's globs would leave less to the next.
pub fn with_own_glob_budget<R>(f: impl FnOnce() -> R) -> R {
    let outer = GLOB_SPENT.replace((0, std::time::Duration::ZERO));
    struct Restore((u64, std::time::Duration));
    impl Drop for Restore {
        fn drop(&mut self) {
            GLOB_SPENT.set(self.0);
        }
    }
    let _restore = Restore(outer);
    f()
}

/// What the globs of this thread's evaluation have spent (for tests).
#[cfg(test)]
pub fn glob_spent() -> (u64, std::time::Duration) {
    GLOB_SPENT.get()
}

/// Sets what the globs of this thread's evaluation have spent (for tests).
#[cfg(test)]
pub fn set_glob_spent(spent: (u64, std::time::Duration)) {
    GLOB_SPENT.set(spent)
}

/// Paths matching a shell glob, sorted. More than `limit` matches, or a
/// walk beyond the evaluation's budget (`glob_limits`), is an error, not a
/// partial list: a profile would silently bind some devices and not others.
/// Symlinks to directories are followed as the shell does; loops end with
/// the pattern's levels, which `**` (unbounded) is refused to keep finite.
pub fn glob(pattern: &str, limit: usize) -> Result<Vec<String>, String> {
    use glob_limits::*;
    if pattern.contains("**") {
        return Err(format!(
            "glob {pattern:?}: recursive patterns (**) are not supported; name the directory levels"
        ));
    }
    glob::Pattern::new(pattern).map_err(|e| format!("bad glob pattern {pattern:?}: {e}"))?;
    let levels: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    if levels.len() > LEVELS {
        return Err(format!(
            "glob {pattern:?}: more than {LEVELS} levels; name a shorter path"
        ));
    }
    let start = std::time::Instant::now();
    let (spent_entries, spent_time) = GLOB_SPENT.get();
    let mut entries = spent_entries;
    let over = |entries: u64| {
        if entries > ENTRIES {
            Some(format!("read more than {ENTRIES} directory entries"))
        } else if spent_time + start.elapsed() > TIME {
            Some(format!("took more than {}s", TIME.as_secs()))
        } else {
            None
        }
    };
    let mut paths = vec![std::path::PathBuf::from(if pattern.starts_with('/') {
        "/"
    } else {
        "."
    })];
    let result = (|| {
        for (i, level) in levels.iter().enumerate() {
            let last = i + 1 == levels.len();
            let mut next = Vec::new();
            if !level.contains(['*', '?', '[']) {
                for p in &paths {
                    let candidate = p.join(host(level));
                    if candidate.symlink_metadata().is_ok() {
                        next.push(candidate);
                    }
                }
            } else {
                let matcher = glob::Pattern::new(level).map_err(|e| e.to_string())?;
                for dir in &paths {
                    let Ok(list) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    for entry in list.flatten() {
                        entries += 1;
                        if let Some(why) = over(entries) {
                            return Err(why);
                        }
                        let name = entry.file_name();
                        if matcher.matches(&crate::arg::path_text(Path::new(&name))) {
                            next.push(entry.path());
                        }
                    }
                }
            }
            if !last {
                next.retain(|p| p.is_dir());
            }
            if let Some(why) = over(entries) {
                return Err(why);
            }
            paths = next;
        }
        Ok(())
    })();
    GLOB_SPENT.set((entries, spent_time + start.elapsed()));
    result.map_err(|why| {
        format!(
            "glob {pattern:?} {why} (the limit of all globs of a profile); name the directories more precisely"
        )
    })?;
    if paths.len() > limit {
        return Err(format!(
            "glob {pattern:?} matches more than {limit} paths; narrow the pattern"
        ));
    }
    let relative = !pattern.starts_with('/');
    let mut out: Vec<String> = paths
        .into_iter()
        .map(|p| {
            let p = if relative {
                p.strip_prefix(".").map(|q| q.to_path_buf()).unwrap_or(p)
            } else {
                p
            };
            text(&p)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The first executable called `name` on the launcher's `$PATH`.
pub fn which(name: &str) -> Option<String> {
    which_all(name).next()
}

/// Every executable called `name` on the launcher's `$PATH`, in order.
pub fn which_all(name: &str) -> impl Iterator<Item = String> + '_ {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let dirs: Vec<String> = if name.is_empty() || name.contains('/') {
        Vec::new()
    } else {
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(str::to_string)
            .collect()
    };
    dirs.into_iter().filter_map(move |dir| {
        let candidate = Path::new(&dir).join(name);
        let meta = candidate.metadata().ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then(|| text(&candidate))
    })
}

/// Why `read_bounded` read nothing.
#[derive(Debug, PartialEq)]
pub enum Unread {
    /// Nothing there, or not for us: not found, permission denied, a
    /// parent that is not a directory.
    Absent,
    /// Something that is not a small regular text file, and why.
    Refused(String),
}

/// The text of a small regular file: not through a symlink at `path`, at
/// most `max` bytes, never blocking (a FIFO or device is opened without
/// waiting and refused unread).
pub fn read_bounded(path: &Path, max: u64) -> Result<String, Unread> {
    use std::io::{ErrorKind, Read};
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let refused = |why: String| Unread::Refused(format!("{}: {why}", path.display()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::NotADirectory => {
                Unread::Absent
            }
            _ if e.raw_os_error() == Some(libc::ELOOP) => {
                refused("is a symlink; only regular files are read (copy the file there)".into())
            }
            _ => refused(format!("cannot open: {e}")),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| refused(format!("cannot stat: {e}")))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = match () {
            _ if kind.is_dir() => "a directory",
            _ if kind.is_fifo() => "a FIFO",
            _ if kind.is_char_device() => "a character device",
            _ if kind.is_block_device() => "a block device",
            _ if kind.is_socket() => "a socket",
            _ => "not a file",
        };
        return Err(refused(format!("not a regular file ({what})")));
    }
    let too_big = || {
        refused(format!(
            "larger than {max} bytes, the limit of what is read"
        ))
    };
    if meta.len() > max {
        return Err(too_big());
    }
    // The file may grow while it is read: no more than the limit is.
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refused(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|_| refused("is not UTF-8 text".into()))
}

/// `read_text` for profiles: the text, or `None` for anything
/// `read_bounded` does not read (a larger file, one that is not UTF-8).
pub fn read_text(path: &str, max: u64) -> Option<String> {
    read_bounded(&host(path), max).ok()
}

/// The interpreter a program's `#!` line names, and its one argument if
/// any (as the kernel passes it), or `None` when `path` is not a regular
/// file starting with `#!`. Only the first 256 bytes are read, without
/// waiting on a FIFO or device.
pub fn shebang(path: &str) -> Option<Vec<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut head = Vec::new();
    file.take(256).read_to_end(&mut head).ok()?;
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|b| *b == b'\n')?];
    let line = std::str::from_utf8(line).ok()?.trim();
    let (interpreter, arg) = match line.split_once([' ', '\t']) {
        Some((i, a)) => (i, a.trim()),
        None => (line, ""),
    };
    if !interpreter.starts_with('/') {
        return None;
    }
    let mut out = vec![interpreter.to_string()];
    if !arg.is_empty() {
        out.push(arg.to_string());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_as_the_shell_does() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a1", "a2", "b1", ".hidden"] {
            std::fs::create_dir_all(dir.path().join(f).join("x")).unwrap();
        }
        let d = dir.path().display();
        let got = glob(&format!("{d}/a*/x"), 10).unwrap();
        assert_eq!(got, [format!("{d}/a1/x"), format!("{d}/a2/x")]);
        assert_eq!(glob(&format!("{d}/[b]?"), 10).unwrap(), [format!("{d}/b1")]);
        assert!(glob(&format!("{d}/none*"), 10).unwrap().is_empty());
        assert_eq!(glob(&format!("{d}/b1"), 10).unwrap(), [format!("{d}/b1")]);
    }

    #[test]
    fn glob_beyond_its_limits_is_an_error_not_a_partial_list() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join(i.to_string()), "").unwrap();
        }
        let d = dir.path().display();
        let e = glob(&format!("{d}/*"), 4).unwrap_err();
        assert!(e.contains("matches more than 4 paths"), "{e}");
        assert!(glob("/a/**", 4).unwrap_err().contains("recursive"));
        let deep = "/x".repeat(glob_limits::LEVELS + 1);
        assert!(glob(&deep, 4).unwrap_err().contains("levels"));
        // A walk of /proc's symlinked roots: ends within the budget.
        let e = glob("/proc/*/root/proc/*/root/proc/*/root/proc/*", 1 << 30).unwrap_err();
        assert!(
            e.contains("directory entries") || e.contains("took more than"),
            "{e}"
        );
        // The budget is spent: the next glob that reads a directory fails too.
        assert!(glob(&format!("{d}/*"), 10).is_err());
    }

    fn refused(r: Result<String, Unread>, want: &str) {
        match r {
            Err(Unread::Refused(why)) => assert!(why.contains(want), "{why}"),
            other => panic!("{other:?}, wanted a refusal with {want:?}"),
        }
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "text").unwrap();
        assert_eq!(read_bounded(&file, 4), Ok("text".into()));
        refused(read_bounded(&file, 3), "larger than 3 bytes");
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        refused(read_bounded(&dir.path().join("zero"), 10), "symlink");
        refused(read_bounded(Path::new("/dev/zero"), 10), "character device");
        refused(read_bounded(dir.path(), 10), "a directory");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        refused(read_bounded(&fifo, 10), "a FIFO");
        assert_eq!(
            read_bounded(&dir.path().join("none"), 10),
            Err(Unread::Absent)
        );
        assert_eq!(read_bounded(&file.join("below"), 10), Err(Unread::Absent));
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        refused(read_bounded(&file, 10), "not UTF-8");
    }
}
