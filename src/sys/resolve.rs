//! Path resolution beneath a directory on kernels without openat2 (before
//! Linux 5.6): the walks RESOLVE_IN_ROOT and RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS make in the kernel, one component at a time in
//! user space.
//!
//! Each component is opened with O_PATH|O_NOFOLLOW relative to the
//! directory reached so far, so the kernel never follows a symlink or a
//! `..` on the walk's behalf: a symlink is read and its target walked the
//! same way (from the root when it is absolute), and `..` returns to the
//! directory the walk came from, kept on a stack, never above the first.
//! A link swapped while the walk runs is read as it is then, and walked in
//! the root. What this cannot do that openat2 does: check at the end that
//! the directories it holds are still beneath the root. One moved out
//! while the walk runs (by someone who may write inside the root and
//! outside it) takes the walk with it, where openat2 answers EXDEV. The
//! stack holds a descriptor per level: a tree deeper than RLIMIT_NOFILE
//! fails (EMFILE), closed.
//! Links in procfs whose text is not a plain relative path (the magic
//! links /proc/PID/fd/N, exe, cwd, root, ns/...) are refused with ELOOP, as
//! RESOLVE_NO_MAGICLINKS refuses them.

use super::fs::openat;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd};

/// How far a walk may go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mode {
    /// RESOLVE_IN_ROOT: the directory is `/`; absolute links and `..`
    /// stay in it.
    InRoot,
    /// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: no symlink at all (ELOOP;
    /// the last one is returned itself with O_PATH|O_NOFOLLOW), and a `..`
    /// above the directory is EXDEV.
    BeneathNoLinks,
}

/// As many links as the kernel follows in one lookup.
const MAX_LINKS: usize = 40;

const PROC_SUPER_MAGIC: libc::c_long = 0x9fa0;

/// Opens the relative `path` beneath `dir` with `flags` (O_CLOEXEC added;
/// no O_CREAT), resolved as `mode` says.
pub(super) fn open(
    dir: &OwnedFd,
    path: &[u8],
    flags: libc::c_int,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    if flags & libc::O_CREAT != 0 {
        return Err(Errno::EINVAL);
    }
    let follow_last = flags & libc::O_NOFOLLOW == 0;
    // Components still to walk, the next one last. A trailing slash asks
    // for a directory, following a link there: a final "." does both.
    let mut todo = components(path);
    let mut stack = vec![dup(dir)?];
    let mut links = 0;
    while let Some(part) = todo.pop() {
        let last = todo.is_empty();
        let cur = stack.last().expect("the stack keeps its root");
        match part.as_slice() {
            b"." => {}
            b".." if stack.len() > 1 => drop(stack.pop()),
            b".." if mode == Mode::BeneathNoLinks => return Err(Errno::EXDEV),
            b".." => {}
            name => {
                let fd = openat(cur, name, libc::O_PATH | libc::O_NOFOLLOW)?;
                let st = fstat(&fd)?;
                let kind = st.st_mode & libc::S_IFMT;
                if kind == libc::S_IFLNK {
                    if last && !follow_last {
                        return if flags & libc::O_DIRECTORY != 0 {
                            Err(Errno::ENOTDIR)
                        } else if flags & libc::O_PATH != 0 {
                            Ok(fd)
                        } else {
                            Err(Errno::ELOOP)
                        };
                    }
                    links += 1;
                    if mode == Mode::BeneathNoLinks || links > MAX_LINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = readlink(&fd)?;
                    if is_proc(cur)? && (target.starts_with(b"/") || target.contains(&b':')) {
                        return Err(Errno::ELOOP);
                    }
                    if target.starts_with(b"/") {
                        stack.truncate(1);
                    }
                    todo.extend(components(&target));
                    continue;
                }
                if last {
                    return finish(cur, name, fd, &st, flags);
                }
                if kind != libc::S_IFDIR {
                    return Err(Errno::ENOTDIR);
                }
                stack.push(fd);
                continue;
            }
        }
    }
    // The path ended in `.` or `..`, or was empty: the directory reached.
    let cur = stack.last().expect("the stack keeps its root");
    finish(cur, b".", dup(cur)?, &fstat(cur)?, flags)
}

/// The components of `path`, the first last (a stack to pop); a trailing
/// slash becomes a final ".".
fn components(path: &[u8]) -> Vec<Vec<u8>> {
    let mut parts: Vec<Vec<u8>> = path
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    if path.ends_with(b"/") && !parts.is_empty() {
        parts.push(b".".to_vec());
    }
    parts.reverse();
    parts
}

/// The last component, found as `found` (an O_PATH descriptor of what
/// `name` in `dir` was): returned as it is for O_PATH, otherwise opened
/// with `flags` and checked to be the same object (a swap in between is
/// EAGAIN, which the caller retries).
fn finish(
    dir: &OwnedFd,
    name: &[u8],
    found: OwnedFd,
    st: &libc::stat,
    flags: libc::c_int,
) -> Result<OwnedFd, Errno> {
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if flags & libc::O_DIRECTORY != 0 && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    if flags & libc::O_PATH != 0 {
        return Ok(found);
    }
    let fd = openat(dir, name, flags | libc::O_NOFOLLOW)?;
    let now = fstat(&fd)?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Errno::EAGAIN);
    }
    Ok(fd)
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    fd.try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))
}

fn fstat(fd: &OwnedFd) -> Result<libc::stat, Errno> {
    // SAFETY: stat is plain data; the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(Errno::last());
    }
    Ok(st)
}

/// The text of the symlink behind an O_PATH|O_NOFOLLOW descriptor.
fn readlink(fd: &OwnedFd) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: valid fd, empty path (the link itself, Linux 2.6.39) and a
    // buffer of the length given.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(Errno::last());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn is_proc(dir: &OwnedFd) -> Result<bool, Errno> {
    // SAFETY: statfs is plain data; the kernel fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out pointer.
    if unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) } < 0 {
        return Err(Errno::last());
    }
    Ok(st.f_type == PROC_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// The kernel's openat2 for the same walk.
    fn kernel(
        dir: &OwnedFd,
        path: &[u8],
        flags: libc::c_int,
        mode: Mode,
    ) -> Result<OwnedFd, Errno> {
        assert!(
            super::super::fs::has_openat2(),
            "the comparison needs a kernel with openat2"
        );
        let resolve = match mode {
            Mode::InRoot => super::super::fs::IN_ROOT,
            Mode::BeneathNoLinks => super::super::fs::BENEATH_NO_LINKS,
        };
        super::super::fs::kernel_openat2(dir, path, flags, resolve)
    }

    fn identity(r: Result<OwnedFd, Errno>) -> Result<(u64, u64, u32), Errno> {
        r.and_then(|fd| fstat(&fd).map(|st| (st.st_dev, st.st_ino, st.st_mode & libc::S_IFMT)))
    }

    /// Every walk of a tree full of links gives what the kernel gives
    /// (the same object, or the same errno), for each flag set and mode.
    #[test]
    fn walks_as_openat2_does() {
        let top = tempfile::tempdir().unwrap();
        // Outside the root: what an escape would reach.
        std::fs::create_dir(top.path().join("outside")).unwrap();
        std::fs::write(top.path().join("outside/secret"), "x").unwrap();
        let root = top.path().join("root");
        for d in ["a/b/c", "d", "e"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("a/file"), "f").unwrap();
        std::fs::write(root.join("secret"), "in").unwrap();
        let links: &[(&str, &str)] = &[
            ("abs", "/a/b"),
            ("up", "../../.."),
            ("a/b/rel", "../file"),
            ("a/b/esc", "../../../outside/secret"),
            ("a/b/absesc", "/../outside"),
            ("loop1", "loop2"),
            ("loop2", "loop1"),
            ("dangling", "nowhere/x"),
            ("chain", "abs/c"),
            ("tofile", "a/file"),
            ("d/self", "."),
            ("proc", "/proc/self/cwd"),
        ];
        for (at, to) in links {
            symlink(to, root.join(at)).unwrap();
        }
        let dir = OwnedFd::from(std::fs::File::open(&root).unwrap());
        let paths = [
            "",
            ".",
            "..",
            "a",
            "a/",
            "a/b/c",
            "a/b/c/../../file",
            "../outside",
            "a/../../outside",
            "abs",
            "abs/",
            "abs/c",
            "up",
            "up/outside/secret",
            "a/b/rel",
            "a/b/esc",
            "a/b/absesc",
            "a/b/absesc/secret",
            "loop1",
            "dangling",
            "chain",
            "chain/..",
            "tofile",
            "tofile/",
            "a/file/x",
            "d/self/self/self",
            "missing",
            "a/missing/x",
            "secret",
            "abs/../../secret",
            "/secret",
            "//a//b/",
            "proc",
            "e/..",
        ];
        let flag_sets = [
            libc::O_PATH,
            libc::O_PATH | libc::O_NOFOLLOW,
            libc::O_PATH | libc::O_DIRECTORY,
            libc::O_RDONLY,
            libc::O_RDONLY | libc::O_DIRECTORY,
            libc::O_RDONLY | libc::O_NOFOLLOW,
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_DIRECTORY,
        ];
        let mut compared = 0;
        for mode in [Mode::InRoot, Mode::BeneathNoLinks] {
            for flags in flag_sets {
                for p in paths {
                    let p = p.trim_start_matches('/').as_bytes();
                    let ours = identity(open(&dir, p, flags, mode));
                    let theirs = identity(kernel(&dir, p, flags, mode));
                    assert_eq!(
                        ours,
                        theirs,
                        "{:?} {mode:?} flags {flags:#o}",
                        String::from_utf8_lossy(p)
                    );
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 2 * 8 * 34);
    }

    /// procfs's magic links are refused as RESOLVE_NO_MAGICLINKS refuses
    /// them; its plain links (self, thread-self, mounts) are followed.
    #[test]
    fn magic_links_are_refused_plain_proc_links_followed() {
        let dir = OwnedFd::from(std::fs::File::open("/proc").unwrap());
        let paths = [
            "self/status",
            "thread-self/status",
            "mounts",
            "self/cwd",
            "self/exe",
            "self/root",
            "self/fd/0",
            "self/ns/user",
            "self/cwd/x",
        ];
        for mode in [Mode::InRoot, Mode::BeneathNoLinks] {
            for flags in [
                libc::O_PATH,
                libc::O_RDONLY,
                libc::O_PATH | libc::O_NOFOLLOW,
            ] {
                for p in paths {
                    let ours = open(&dir, p.as_bytes(), flags, mode).map(|_| ());
                    let theirs = kernel(&dir, p.as_bytes(), flags, mode).map(|_| ());
                    assert_eq!(ours, theirs, "{p} {mode:?} flags {flags:#o}");
                }
            }
        }
    }
}
