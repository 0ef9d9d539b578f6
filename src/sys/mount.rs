//! Mounts: the classic mount(2) and the new mount API (open_tree,
//! mount_setattr, move_mount), pivot_root.

use super::{check, cstr, Result, SysError};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

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
        e.hint("the kernel refused the new mount API it offered a moment ago; a filter around moksha may refuse part of it")
    } else {
        e
    }
}

/// A detached copy of the mount tree at `from` (and everything below it).
pub fn clone_tree(from: &OwnedFd, shown: &str) -> Result<OwnedFd> {
    open_tree_clone(
        from.as_raw_fd(),
        "",
        libc::AT_EMPTY_PATH as libc::c_uint,
        shown,
    )
}

/// A detached copy of the mount tree at the host path `path`, followed as
/// the host does (as `open_path` follows it): one call, where opening the
/// path first and cloning the tree at the descriptor took three.
pub fn clone_path(path: &str) -> Result<OwnedFd> {
    open_tree_clone(libc::AT_FDCWD, path, 0, path)
}

/// open_tree(2) with OPEN_TREE_CLONE and AT_RECURSIVE (and `flags`) of
/// `path` at `dir`.
fn open_tree_clone(dir: RawFd, path: &str, flags: libc::c_uint, shown: &str) -> Result<OwnedFd> {
    let c = cstr(path);
    // SAFETY: a valid fd (or AT_FDCWD) and a NUL-terminated path (empty
    // only with AT_EMPTY_PATH).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dir,
            c.as_ptr(),
            OPEN_TREE_CLONE
                | libc::AT_RECURSIVE as libc::c_uint
                | flags
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

/// The id of the mount an object is on: statx's STATX_MNT_ID (Linux 5.8),
/// or the `mnt_id` line of the descriptor's /proc/self/fdinfo (3.15).
pub fn mount_id(fd: &OwnedFd) -> Option<u64> {
    statx_mount_id(fd).or_else(|| fdinfo_mount_id(fd))
}

fn fdinfo_mount_id(fd: &OwnedFd) -> Option<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|n| n.trim().parse().ok())
}

fn statx_mount_id(fd: &OwnedFd) -> Option<u64> {
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

// ---- kernels without the new mount API --------------------------------------

/// Whether the kernel has the new mount API through mount_setattr (Linux
/// 5.12, the newest call moksha uses; open_tree and move_mount are 5.2).
/// Without it, `launch::rootfs` builds the root with classic mount(2).
/// Probed once: a call with no mount and no attributes answers EBADF or
/// EINVAL where it exists, ENOSYS where it does not (or where a filter
/// around moksha refuses it that way).
pub fn new_mount_api() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let empty = cstr("");
        // SAFETY: fd -1 and a NULL attr of size 0: the kernel reads nothing.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                -1,
                empty.as_ptr(),
                0,
                std::ptr::null::<MountAttr>(),
                0usize,
            )
        };
        !(ret < 0 && Errno::last() == Errno::ENOSYS)
    })
}

/// Classic: binds the object `source` is open on (with every mount below
/// it) onto `target`. Both are named by their /proc/self/fd links, so no
/// path is looked up again.
pub fn bind_fd(
    source: &OwnedFd,
    target: &OwnedFd,
    shown_source: &str,
    shown_target: &str,
) -> Result<()> {
    mount(
        Some(&super::fd_path(source)),
        &super::fd_path(target),
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        shown_source,
        shown_target,
    )
}

/// The mount(2) flags the mount at `path` has now (statvfs), which a
/// remount inside a user namespace must keep: the kernel locks those it
/// got from a more privileged namespace.
fn current_flags(path: &str) -> Result<libc::c_ulong> {
    let c = cstr(path);
    // SAFETY: statvfs is plain data; all-zero is a valid initial value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and out pointer.
    check(&format!("statvfs({path:?})"), unsafe {
        libc::statvfs(c.as_ptr(), &mut st)
    })?;
    let mut flags = 0;
    for (st_bit, ms_bit) in [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_bit != 0 {
            flags |= ms_bit;
        }
    }
    Ok(flags)
}

/// Classic: sets `set` (MS_RDONLY, MS_NOSUID, MS_NODEV) on the bind mount
/// at `path`, the topmost one there, keeping every flag it has: like
/// mount_setattr, it only ever adds.
pub fn remount_bind(path: &str, set: libc::c_ulong, shown: &str) -> Result<()> {
    let flags = libc::MS_REMOUNT | libc::MS_BIND | set | current_flags(path)?;
    mount(None, path, None, flags, None, "none", shown)
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq)]
pub struct MountEntry {
    pub id: u64,
    pub parent: u64,
    /// The device, as `major:minor`.
    pub dev: String,
    /// Where it is mounted, as seen from this process's root (text as
    /// `crate::arg` keeps bytes).
    pub point: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) | (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Parses mountinfo (bytes: a mount point need not be UTF-8).
pub fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    let field = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    text.split(|c| *c == b'\n')
        .filter_map(|line| {
            let mut f = line.split(|c| *c == b' ');
            let id = field(f.next()?).parse().ok()?;
            let parent = field(f.next()?).parse().ok()?;
            let dev = field(f.next()?);
            let _root = f.next()?;
            let point = unescape(f.next()?);
            let point = crate::arg::to_text(std::ffi::OsStr::from_bytes(&point)).0;
            Some(MountEntry {
                id,
                parent,
                dev,
                point,
            })
        })
        .collect()
}

/// This process's mounts.
pub fn mounts() -> Result<Vec<MountEntry>> {
    let text = std::fs::read("/proc/self/mountinfo")
        .map_err(|e| SysError::io("read(/proc/self/mountinfo)", &e))?;
    Ok(parse_mountinfo(&text))
}

/// The mount `id` and every mount below it, parents first.
pub fn tree_of(all: &[MountEntry], id: u64) -> Vec<MountEntry> {
    let mut out: Vec<MountEntry> = all.iter().filter(|m| m.id == id).cloned().collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].id;
        let children: Vec<MountEntry> = all
            .iter()
            .filter(|m| m.parent == parent && !out.iter().any(|o| o.id == m.id))
            .cloned()
            .collect();
        out.extend(children);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_and_escapes() {
        let text = b"22 1 0:21 / / rw - tmpfs tmpfs rw\n\
            30 22 254:0 /a /with\\040space\\134x rw - ext4 /dev/vda rw\n\
            31 30 0:5 / /with\\040space\\134x/\xff rw - tmpfs t rw\n\
            garbage\n";
        let all = parse_mountinfo(text);
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].point, "/with space\\x");
        assert_eq!(all[1].dev, "254:0");
        // A byte that is not UTF-8 comes back as crate::arg's stand-in.
        let back = crate::arg::to_bytes(&all[2].point);
        assert_eq!(back, b"/with space\\x/\xff");
        let tree: Vec<u64> = tree_of(&all, 30).iter().map(|m| m.id).collect();
        assert_eq!(tree, [30, 31]);
        assert!(tree_of(&all, 99).is_empty());
    }

    /// The fdinfo answer (kernels before 5.8) is statx's, for objects on
    /// different mounts.
    #[test]
    fn fdinfo_gives_the_mount_id_statx_gives() {
        let mut ids = Vec::new();
        for path in ["/", "/proc", "/dev", "/sys"] {
            let fd = OwnedFd::from(std::fs::File::open(path).unwrap());
            let statx = statx_mount_id(&fd).expect("this kernel's statx has mount ids");
            assert_eq!(fdinfo_mount_id(&fd), Some(statx), "{path}");
            ids.push(statx);
        }
        ids.dedup();
        assert_eq!(ids.len(), 4, "four mounts: {ids:?}");
    }
}
