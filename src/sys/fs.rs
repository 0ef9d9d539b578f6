//! Files, resolved inside a root with openat2 where it matters.

use super::resolve::Mode;
use super::{check, cstr, fd_path, Result, SysError};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Writes a small file on the host (e.g. /proc/PID/uid_map).
pub fn write_host_file(path: &str, content: &str) -> Result<()> {
    std::fs::write(path, content)
        .map_err(|e| SysError::io(format!("write({path:?}, {:?})", content.trim_end()), &e))
}

/// open(2) with O_CLOEXEC added; `call` names it in errors.
pub(super) fn open_cloexec(path: &str, flags: libc::c_int, call: &str) -> Result<OwnedFd> {
    let c = cstr(path);
    // SAFETY: valid NUL-terminated path.
    let fd = check(call, unsafe {
        libc::open(c.as_ptr(), flags | libc::O_CLOEXEC)
    })?;
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a host path as an O_PATH descriptor, following symlinks as the host does.
pub fn open_path(path: &str) -> Result<OwnedFd> {
    open_cloexec(path, libc::O_PATH, &format!("open({path:?}, O_PATH)"))
}

/// Opens `path` beneath `root` as if `root` were `/`: absolute symlinks and
/// `..` cannot leave it (openat2 with RESOLVE_IN_ROOT).
pub fn open_in_root(root: &OwnedFd, path: &str, flags: libc::c_int) -> Result<OwnedFd> {
    openat2(root, path, flags, IN_ROOT)
        .map_err(|e| SysError::new(format!("openat2(<new root>, {path:?}, RESOLVE_IN_ROOT)"), e))
}

/// openat2 resolution inside a root: `/` and `..` stay in it.
pub(super) const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// openat2 resolution that stays beneath the directory and follows no link.
pub(super) const BENEATH_NO_LINKS: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// Opens `path` (relative) beneath the directory `dir` as an O_PATH
/// descriptor without following any symlink on the way (RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS: ELOOP when there is one). `shown` names `dir`.
pub fn open_beneath_no_symlinks(dir: &OwnedFd, path: &str, shown: &str) -> Result<OwnedFd> {
    openat2(dir, path, libc::O_PATH, BENEATH_NO_LINKS).map_err(|e| {
        SysError::new(
            format!("openat2({shown:?}, {path:?}, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)"),
            e,
        )
    })
}

/// `open_beneath_no_symlinks` with other open flags (O_DIRECTORY|O_RDONLY
/// to read a directory, O_NOFOLLOW|O_PATH for what may be a symlink):
/// the raw errno, for callers that tell ENOENT from the rest.
pub fn open_beneath(
    dir: &OwnedFd,
    path: &str,
    flags: libc::c_int,
) -> std::result::Result<OwnedFd, Errno> {
    openat2(dir, path, flags, BENEATH_NO_LINKS)
}

/// Creates the directories of the relative `path` beneath `dir` that are
/// missing (mode `mode`, given to `owner` when set). Unless
/// `follow_links`, it follows no symlink and never leaves `dir`: a link
/// anywhere on the way, or put there while this runs, is refused with
/// ELOOP (or EXDEV) instead of creating something where it points. What
/// it creates is opened without following links and changed through that
/// descriptor, never by path.
pub fn mkdir_all_beneath(
    dir: &OwnedFd,
    path: &str,
    mode: u32,
    follow_links: bool,
    owner: Option<(u32, u32)>,
    shown: &str,
) -> Result<()> {
    let strict = BENEATH_NO_LINKS;
    let resolve = if follow_links { 0 } else { strict };
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let fail = |e| SysError::new(format!("mkdir -p {shown:?}"), e);
    let mut cur = openat2(dir, ".", flags, resolve).map_err(fail)?;
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let next = match openat2(&cur, part, flags, resolve) {
            Err(Errno::ENOENT) => {
                let c = cstr(part);
                // SAFETY: valid dirfd and NUL-terminated name.
                let r = unsafe { libc::mkdirat(cur.as_raw_fd(), c.as_ptr(), mode) };
                if r < 0 && Errno::last() != Errno::EEXIST {
                    return Err(fail(Errno::last()));
                }
                // Opened again without following a link: what is there now
                // must be the directory (a link made meanwhile is refused).
                let made = openat2(&cur, part, flags, strict).map_err(fail)?;
                if let (Some((uid, gid)), 0) = (owner, r) {
                    // SAFETY: valid O_PATH descriptor and an empty path.
                    let r = unsafe {
                        libc::fchownat(
                            made.as_raw_fd(),
                            c"".as_ptr(),
                            uid,
                            gid,
                            libc::AT_EMPTY_PATH,
                        )
                    };
                    if r < 0 {
                        return Err(fail(Errno::last()));
                    }
                }
                Ok(made)
            }
            other => other,
        };
        cur = next.map_err(fail)?;
    }
    Ok(())
}

/// Whether the kernel has openat2 (Linux 5.6), asked once. Where it has
/// none, the same walks are made in user space (`resolve`).
pub fn has_openat2() -> bool {
    static KNOWN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOWN.get_or_init(probe_openat2)
}

/// Asked with an invalid fd, openat2 answers EBADF where it exists.
fn probe_openat2() -> bool {
    // SAFETY: fd -1 and a NULL how of size 0: the kernel reads nothing.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            -1,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::open_how>(),
            0usize,
        )
    };
    !(ret < 0 && Errno::last() == Errno::ENOSYS)
}

fn openat2(
    dir: &OwnedFd,
    path: &str,
    flags: libc::c_int,
    resolve: u64,
) -> std::result::Result<OwnedFd, Errno> {
    // A path's text stands for bytes that need not be UTF-8 (`arg`).
    openat2_bytes(dir, &crate::arg::to_bytes(path), flags, resolve)
}

/// `open_beneath` for a path of any bytes (a host file name need not be UTF-8).
pub fn open_beneath_bytes(
    dir: &OwnedFd,
    path: &[u8],
    flags: libc::c_int,
) -> std::result::Result<OwnedFd, Errno> {
    openat2_bytes(dir, path, flags, BENEATH_NO_LINKS)
}

fn openat2_bytes(
    dir: &OwnedFd,
    path: &[u8],
    flags: libc::c_int,
    resolve: u64,
) -> std::result::Result<OwnedFd, Errno> {
    let mut trimmed = path;
    while let [b'/', rest @ ..] = trimmed {
        trimmed = rest;
    }
    if trimmed.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if !has_openat2() {
        return without_openat2(dir, trimmed, flags, resolve);
    }
    kernel_openat2(dir, trimmed, flags, resolve)
}

/// The openat2 call itself, for a path without leading slashes.
pub(super) fn kernel_openat2(
    dir: &OwnedFd,
    path: &[u8],
    flags: libc::c_int,
    resolve: u64,
) -> std::result::Result<OwnedFd, Errno> {
    let c = std::ffi::CString::new(if path.is_empty() { b"." } else { path })
        .map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // A `..` resolved while a mount or rename happens anywhere on the
    // system makes the kernel answer EAGAIN rather than risk an escape
    // (openat2(2)): asking again is what it expects; bounded.
    let mut tries = 0;
    let fd = loop {
        // SAFETY: valid dirfd, NUL-terminated path and a correctly sized open_how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const _,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            break fd;
        }
        let e = Errno::last();
        tries += 1;
        if e != Errno::EAGAIN || tries >= 128 {
            return Err(e);
        }
    };
    // SAFETY: fd was just returned by openat2 and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// openat(2) with O_CLOEXEC added, following links as the host does.
pub(super) fn openat(
    dir: &OwnedFd,
    path: &[u8],
    flags: libc::c_int,
) -> std::result::Result<OwnedFd, Errno> {
    let c = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid dirfd and NUL-terminated path.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The walks openat2 makes, on a kernel without it (`resolve`); with no
/// resolve flags, a plain openat that follows links as the host does.
fn without_openat2(
    dir: &OwnedFd,
    path: &[u8],
    flags: libc::c_int,
    resolve: u64,
) -> std::result::Result<OwnedFd, Errno> {
    let mode = match resolve {
        0 => return openat(dir, if path.is_empty() { b"." } else { path }, flags),
        BENEATH_NO_LINKS => Mode::BeneathNoLinks,
        IN_ROOT => Mode::InRoot,
        _ => return Err(Errno::EINVAL),
    };
    // A swap of the last component while it is opened is EAGAIN: asked
    // again, bounded, as openat2's own EAGAIN is.
    let mut tries = 0;
    loop {
        match super::resolve::open(dir, path, flags, mode) {
            Err(Errno::EAGAIN) if tries < 128 => tries += 1,
            other => return other,
        }
    }
}

pub fn mkdirat(dir: &OwnedFd, name: &str, mode: u32, shown: &str) -> Result<()> {
    let c = cstr(name);
    // SAFETY: valid dirfd and NUL-terminated name.
    match check(&format!("mkdir({shown:?}, {mode:#o})"), unsafe {
        libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode)
    }) {
        Err(e) if e.errno == Errno::EEXIST => Ok(()),
        other => other.map(drop),
    }
}

/// Where the symlink `name` in `dir` points, if it is one.
pub fn readlinkat(dir: &OwnedFd, name: &str) -> Option<String> {
    nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Removes the file or symlink `name` in `dir`.
pub fn unlinkat(dir: &OwnedFd, name: &str, shown: &str) -> Result<()> {
    let c = cstr(name);
    // SAFETY: a valid directory fd and a NUL-terminated name.
    check(&format!("unlinkat({shown:?})"), unsafe {
        libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0)
    })
    .map(drop)
}

/// Creates the symlink `name` in `dir`, pointing to `points_to`.
pub fn symlinkat(points_to: &str, dir: &OwnedFd, name: &str, shown: &str) -> Result<()> {
    let (t, n) = (cstr(points_to), cstr(name));
    // SAFETY: valid dirfd and NUL-terminated strings.
    check(&format!("symlink({points_to:?}, {shown:?})"), unsafe {
        libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr())
    })
    .map(drop)
}

/// Creates a new regular file `name` in `dir`, never following a symlink.
pub fn create_file(dir: &OwnedFd, name: &str, mode: u32, shown: &str) -> Result<OwnedFd> {
    let c = cstr(name);
    // SAFETY: valid dirfd and NUL-terminated name.
    let fd = check(
        &format!("open({shown:?}, O_CREAT|O_EXCL, {mode:#o})"),
        unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode,
            )
        },
    )?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn write_all(fd: &OwnedFd, mut data: &[u8], shown: &str) -> Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(SysError::new(format!("write({shown:?})"), e)),
        }
    }
    Ok(())
}

/// chmod through an O_PATH descriptor (via its /proc/self/fd name).
pub fn chmod_fd(fd: &OwnedFd, mode: u32, shown: &str) -> Result<()> {
    let c = cstr(&fd_path(fd));
    // SAFETY: valid NUL-terminated path.
    check(&format!("chmod({shown:?}, {mode:#o})"), unsafe {
        libc::chmod(c.as_ptr(), mode)
    })
    .map(drop)
}

pub fn fchdir(fd: &OwnedFd, shown: &str) -> Result<()> {
    // SAFETY: valid descriptor.
    check(&format!("chdir({shown:?})"), unsafe {
        libc::fchdir(fd.as_raw_fd())
    })
    .map(drop)
}

pub fn chdir(path: &str) -> Result<()> {
    let c = cstr(path);
    // SAFETY: valid NUL-terminated path.
    check(&format!("chdir({path:?})"), unsafe {
        libc::chdir(c.as_ptr())
    })
    .map(drop)
}

/// Kind of an inode behind an fd: directory or not.
pub fn is_dir_fd(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false)
}

/// /dev/null opened read-write (stdin of a detached sandbox).
pub fn open_dev_null() -> Result<OwnedFd> {
    open_cloexec("/dev/null", libc::O_RDWR, "open(\"/dev/null\")")
}

/// Tries to take (`exclusive`) or test an flock(2) on `file` without
/// waiting; true when it was taken.
pub fn try_flock(file: &impl AsRawFd, exclusive: bool) -> bool {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: flock on a descriptor the caller owns.
    unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) == 0 }
}
