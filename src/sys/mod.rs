//! Every system call moksha makes that changes kernel state, in one place.
//! Each failure names the call and its arguments, e.g.
//! `mount("/usr" -> "/usr", BIND|REC) failed: EPERM (Operation not permitted)`,
//! and where there is a usual cause, says what to do about it.

pub mod caps;
pub mod landlock;
pub mod limits;
pub mod net;

use nix::errno::Errno;
use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, Clone)]
pub struct SysError {
    /// The call as a person would write it, with its arguments.
    pub call: String,
    pub errno: Errno,
    /// What usually causes this and what to do.
    pub hint: Option<String>,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {:?} ({})",
            self.call,
            self.errno,
            self.errno.desc()
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SysError {}

impl SysError {
    pub fn new(call: impl Into<String>, errno: Errno) -> Self {
        SysError {
            call: call.into(),
            errno,
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

pub type Result<T> = std::result::Result<T, SysError>;

/// Turns a C-style return value into a Result, capturing errno.
pub(crate) fn check(call: &str, ret: libc::c_int) -> Result<libc::c_int> {
    if ret < 0 {
        Err(SysError::new(call, Errno::last()))
    } else {
        Ok(ret)
    }
}

fn cstr(s: &str) -> CString {
    // Paths and strings were validated free of NUL before we get here; a NUL
    // would truncate, so replace defensively rather than panic.
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// `/proc/self/fd/N`: names an fd as a path for calls that only take paths.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

// ---- processes -------------------------------------------------------------

/// Namespace flags for clone, by plan name.
/// Namespace names as flags, for messages: "NEWUSER|NEWPID".
pub fn ns_flag_names(names: &[&str]) -> String {
    let flags: Vec<String> = names
        .iter()
        .map(|n| format!("NEW{}", n.to_uppercase()))
        .collect();
    flags.join("|")
}

pub fn ns_flag(name: &str) -> libc::c_int {
    match name {
        "user" => libc::CLONE_NEWUSER,
        "mount" => libc::CLONE_NEWNS,
        "pid" => libc::CLONE_NEWPID,
        "net" => libc::CLONE_NEWNET,
        "ipc" => libc::CLONE_NEWIPC,
        "uts" => libc::CLONE_NEWUTS,
        "cgroup" => libc::CLONE_NEWCGROUP,
        "time" => 0x80, // CLONE_NEWTIME: only for unshare(2)
        _ => 0,
    }
}

/// fork(2) into new namespaces. Returns `Some(pid)` in the parent and `None`
/// in the child. The caller must be single-threaded.
pub fn clone_into(flags: libc::c_int, names: &[&str]) -> Result<Option<libc::pid_t>> {
    // SAFETY: raw clone without a new stack behaves like fork(); moksha is
    // single-threaded when it calls this, so the child's copy of the process
    // (allocator locks included) is consistent.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        let errno = Errno::last();
        let err = SysError::new(format!("clone({})", ns_flag_names(names)), errno);
        return Err(match errno {
            Errno::ENOSPC | Errno::EUSERS => err.hint(
                "the limit on user namespaces is reached or set to 0: check \
                 `sysctl user.max_user_namespaces` (it must be > 0)",
            ),
            Errno::EPERM if names.contains(&"user") => err.hint(
                "unprivileged user namespaces are refused here: check \
                 `sysctl kernel.unprivileged_userns_clone` (Debian, must be 1), \
                 `sysctl kernel.apparmor_restrict_unprivileged_userns` (Ubuntu, must be 0 \
                 or an AppArmor profile must allow moksha), or a container's seccomp policy",
            ),
            Errno::EINVAL => err.hint("is moksha running in a chroot or with threads?"),
            _ => err,
        });
    }
    Ok(if ret == 0 {
        None
    } else {
        Some(ret as libc::pid_t)
    })
}

/// unshare(2) for namespaces that can only be entered that way (time).
pub fn unshare(flags: libc::c_int, what: &str) -> Result<()> {
    // SAFETY: unshare with integer flags.
    check(&format!("unshare({what})"), unsafe { libc::unshare(flags) }).map(drop)
}

pub fn set_pdeathsig(sig: libc::c_int) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    check("prctl(PR_SET_PDEATHSIG)", unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0)
    })
    .map(drop)
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    check("prctl(PR_SET_NO_NEW_PRIVS, 1)", unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    })
    .map(drop)
}

/// Non-dumpable processes cannot be ptraced or have their /proc entries
/// read by unprivileged processes (the program, for the supervisor).
pub fn set_dumpable(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    check("prctl(PR_SET_DUMPABLE)", unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0)
    })
    .map(drop)
}

pub fn set_name(name: &str) {
    let name = cstr(name);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (truncated to 16 bytes).
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

pub fn setsid() -> Result<()> {
    // SAFETY: no arguments.
    check("setsid()", unsafe { libc::setsid() }).map(drop)
}

pub fn setpgid_self() -> Result<()> {
    // SAFETY: integer arguments only.
    check("setpgid(0, 0)", unsafe { libc::setpgid(0, 0) }).map(drop)
}

/// Makes our process group the terminal's foreground group, if fd is a tty.
/// SIGTTOU is ignored around the call so a background caller is not stopped.
pub fn take_terminal(fd: RawFd) {
    // SAFETY: isatty/tcsetpgrp/signal with plain integer arguments; the old
    // SIGTTOU disposition is restored.
    unsafe {
        if libc::isatty(fd) == 1 {
            let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(fd, libc::getpgrp());
            libc::signal(libc::SIGTTOU, old);
        }
    }
}

pub fn sethostname(name: &str) -> Result<()> {
    // SAFETY: pointer and length of a valid buffer.
    check(&format!("sethostname({name:?})"), unsafe {
        libc::sethostname(name.as_ptr() as *const libc::c_char, name.len())
    })
    .map(drop)
}

/// Closes every fd >= 3 except those in `keep`.
pub fn close_fds_except(keep: &[RawFd]) -> Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd >= 3).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from: u32 = 3;
    for fd in keep.into_iter().chain(std::iter::once(-1)) {
        let to = if fd < 0 { u32::MAX } else { fd as u32 - 1 };
        if from <= to {
            // SAFETY: close_range on a range of descriptors we own.
            check(&format!("close_range({from}, {to})"), unsafe {
                libc::syscall(libc::SYS_close_range, from, to, 0) as libc::c_int
            })?;
        }
        if fd >= 0 {
            from = fd as u32 + 1;
        }
    }
    Ok(())
}

pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SysError::new("pipe2(O_CLOEXEC)", e))
}

/// execve(2); returns only on failure, with the errno.
pub fn execve(path: &str, argv: &[CString], envp: &[CString]) -> Errno {
    let path = cstr(path);
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of pointers into CStrings that outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    Errno::last()
}

/// Installs a classic BPF seccomp filter (no_new_privs must be set).
pub fn seccomp_install(prog: &[libc::sock_filter]) -> Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: fprog points at `prog`, which outlives the call.
    check("prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)", unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const _ as libc::c_ulong,
            0,
            0,
        )
    })
    .map(drop)
}

// ---- files -----------------------------------------------------------------

/// Writes a small file on the host (e.g. /proc/PID/uid_map).
pub fn write_host_file(path: &str, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(|e| {
        SysError::new(
            format!("write({path:?}, {:?})", content.trim_end()),
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })
}

/// open(2) with O_CLOEXEC added; `call` names it in errors.
fn open_cloexec(path: &str, flags: libc::c_int, call: &str) -> Result<OwnedFd> {
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
    let c = cstr(path.trim_start_matches('/'));
    let c = if c.as_bytes().is_empty() {
        cstr(".")
    } else {
        c
    };
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid dirfd, NUL-terminated path and a correctly sized open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const _,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(SysError::new(
            format!("openat2(<new root>, {path:?}, RESOLVE_IN_ROOT)"),
            Errno::last(),
        ));
    }
    // SAFETY: fd was just returned by openat2 and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
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

// ---- mounts ----------------------------------------------------------------

/// Human names of mount flags for messages.
pub fn mount_flags_str(flags: libc::c_ulong) -> String {
    const NAMES: &[(libc::c_ulong, &str)] = &[
        (libc::MS_BIND, "BIND"),
        (libc::MS_REC, "REC"),
        (libc::MS_RDONLY, "RDONLY"),
        (libc::MS_REMOUNT, "REMOUNT"),
        (libc::MS_NOSUID, "NOSUID"),
        (libc::MS_NODEV, "NODEV"),
        (libc::MS_NOEXEC, "NOEXEC"),
        (libc::MS_PRIVATE, "PRIVATE"),
        (libc::MS_SLAVE, "SLAVE"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

/// mount(2). `shown_source`/`shown_target` are the paths as the profile
/// wrote them (the real arguments may be /proc/self/fd names).
#[allow(clippy::too_many_arguments)]
pub fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
    shown_source: &str,
    shown_target: &str,
) -> Result<()> {
    let (s, t, f, d) = (
        source.map(cstr),
        cstr(target),
        fstype.map(cstr),
        data.map(cstr),
    );
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either NULL or a valid NUL-terminated string.
    let ret = unsafe {
        libc::mount(
            ptr(&s),
            t.as_ptr(),
            ptr(&f),
            flags,
            ptr(&d) as *const libc::c_void,
        )
    };
    let what = match fstype {
        Some(fs) => format!(
            "mount({fs} -> {shown_target:?}, {}{})",
            mount_flags_str(flags),
            data.map(|d| format!(", {d:?}")).unwrap_or_default()
        ),
        None => format!(
            "mount({shown_source:?} -> {shown_target:?}, {})",
            mount_flags_str(flags)
        ),
    };
    check(&what, ret).map(drop)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn too_old(e: SysError) -> SysError {
    if e.errno == Errno::ENOSYS {
        e.hint("moksha needs Linux 5.12 or newer (the new mount API)")
    } else {
        e
    }
}

/// A detached copy of the mount tree at `from` (and everything below it).
pub fn clone_tree(from: &OwnedFd, shown: &str) -> Result<OwnedFd> {
    let empty = cstr("");
    // SAFETY: valid fd and empty path with AT_EMPTY_PATH.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            from.as_raw_fd(),
            empty.as_ptr(),
            OPEN_TREE_CLONE
                | libc::AT_RECURSIVE as libc::c_uint
                | libc::AT_EMPTY_PATH as libc::c_uint
                | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(too_old(SysError::new(
            format!("open_tree({shown:?}, CLONE|RECURSIVE)"),
            Errno::last(),
        )));
    }
    // SAFETY: fd was just returned by open_tree and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sets mount attributes on the mount at `fd` (and below it if `recursive`).
/// Only sets flags, never clears: flags the kernel locked stay as they are.
pub fn mount_setattr(fd: &OwnedFd, set: u64, recursive: bool, shown: &str) -> Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = cstr("");
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let names: Vec<&str> = [
        (MOUNT_ATTR_RDONLY, "RDONLY"),
        (MOUNT_ATTR_NOSUID, "NOSUID"),
        (MOUNT_ATTR_NODEV, "NODEV"),
    ]
    .iter()
    .filter(|(f, _)| set & f != 0)
    .map(|(_, n)| *n)
    .collect();
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, correctly sized attr.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(too_old(SysError::new(
            format!("mount_setattr({shown:?}, {})", names.join("|")),
            Errno::last(),
        )));
    }
    Ok(())
}

/// Attaches the detached tree `tree` on top of `target`.
pub fn move_mount(
    tree: &OwnedFd,
    target: &OwnedFd,
    shown_source: &str,
    shown_target: &str,
) -> Result<()> {
    let empty = cstr("");
    // SAFETY: valid fds and empty paths with the EMPTY_PATH flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(too_old(SysError::new(
            format!("move_mount({shown_source:?} -> {shown_target:?})"),
            Errno::last(),
        )));
    }
    Ok(())
}

/// pivot_root(".", "."): the current directory becomes `/`, and the old root
/// is stacked on top of it, ready to be detached with `umount2(".", DETACH)`.
pub fn pivot_root_here(shown: &str) -> Result<()> {
    let dot = cstr(".");
    // SAFETY: valid NUL-terminated paths.
    check(&format!("pivot_root({shown:?})"), unsafe {
        libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int
    })
    .map(drop)
}

pub fn umount_detach(path: &str, shown: &str) -> Result<()> {
    let c = cstr(path);
    // SAFETY: valid NUL-terminated path.
    check(&format!("umount2({shown:?}, MNT_DETACH)"), unsafe {
        libc::umount2(c.as_ptr(), libc::MNT_DETACH)
    })
    .map(drop)
}

/// The id of the mount an object is on (statx STATX_MNT_ID).
pub fn mount_id(fd: &OwnedFd) -> Option<u64> {
    let empty = cstr("");
    // SAFETY: statx is plain data; all-zero is a valid initial value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, valid out pointer.
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    (ret == 0 && stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id)
}

// ---- other processes --------------------------------------------------------

/// A pidfd for `pid`: a handle that keeps naming this process even if the
/// pid is reused after it exits.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(SysError::new(format!("pidfd_open({pid})"), Errno::last()));
    }
    // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `sig` to the process behind a pidfd.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: libc::c_int, shown: &str) -> Result<()> {
    // SAFETY: valid pidfd, no siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(SysError::new(
            format!("pidfd_send_signal({shown}, {sig})"),
            Errno::last(),
        ));
    }
    Ok(())
}

/// Joins the namespaces `flags` of the process behind a pidfd, all at once.
pub fn setns_pidfd(pidfd: &OwnedFd, flags: libc::c_int, shown: &str) -> Result<()> {
    // SAFETY: valid pidfd and namespace flags.
    check(&format!("setns({shown})"), unsafe {
        libc::setns(pidfd.as_raw_fd(), flags)
    })
    .map(drop)
}

/// /dev/null opened read-write (stdin of a detached sandbox).
pub fn open_dev_null() -> Result<OwnedFd> {
    open_cloexec("/dev/null", libc::O_RDWR, "open(\"/dev/null\")")
}

/// Makes `fd` the descriptor `target` (for the standard streams).
pub fn dup_onto(fd: &OwnedFd, target: RawFd) -> Result<()> {
    // SAFETY: dup2 between valid descriptors.
    check(&format!("dup2({}, {target})", fd.as_raw_fd()), unsafe {
        libc::dup2(fd.as_raw_fd(), target)
    })
    .map(drop)
}
