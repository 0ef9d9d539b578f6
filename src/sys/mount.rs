//! Mounts: the classic mount(2) and the new mount API (open_tree,
//! mount_setattr, move_mount), pivot_root.

use super::{check, cstr, Result, SysError};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
