//! Building the new root. Host sources are opened before anything is
//! mounted; targets are resolved inside the new root with RESOLVE_IN_ROOT, so
//! a symlink made by an earlier step can never lead a later one out of it.
//! Binds are detached clones (open_tree) made read-only/nosuid/nodev before
//! they are attached (move_mount), so a read-only bind is never writable.

use crate::plan::{FsOp, Plan, Pos, Step};
use crate::sys::{self, SysError, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use nix::errno::Errno;
use std::collections::HashMap;
use std::os::fd::OwnedFd;

/// A setup failure, with the script position of the step when there is one.
#[derive(Debug)]
pub struct StepError {
    pub at: Option<Pos>,
    pub message: String,
}

impl StepError {
    pub fn plain(message: impl Into<String>) -> Self {
        StepError {
            at: None,
            message: message.into(),
        }
    }
}

impl From<SysError> for StepError {
    fn from(e: SysError) -> Self {
        StepError::plain(e.to_string())
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

type Result<T> = std::result::Result<T, StepError>;

/// Host device nodes a `dev` step binds into the sandbox.
pub const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// A detached copy of a host mount tree, and whether its root is a directory.
struct Tree {
    fd: OwnedFd,
    is_dir: bool,
}

/// Host objects copied before anything is mounted: bind sources by step
/// index, the pivot_root directory, and device nodes. They are detached
/// clones (open_tree), taken before the staging tmpfs exists, so a bind of
/// an ancestor of the staging directory (e.g. /tmp, or /) cannot reveal it.
pub struct HostFds {
    binds: HashMap<usize, Tree>,
    root: Option<OwnedFd>,
    dev: Vec<(&'static str, Tree)>,
}

/// Opens a host path and clones the mount tree at it.
fn clone_host(path: &str) -> std::result::Result<Tree, SysError> {
    let fd = sys::open_path(path)?;
    let is_dir = sys::is_dir_fd(&fd);
    Ok(Tree {
        fd: sys::clone_tree(&fd, path)?,
        is_dir,
    })
}

/// Whether a required host source is missing: the message says which step.
pub fn missing_source(source: &str, at: &Pos, e: &SysError) -> StepError {
    let what = if e.errno == Errno::ENOENT || e.errno == Errno::ENOTDIR {
        format!("bind source {source} does not exist on the host (pass #{{ optional: true }} to skip it when missing)")
    } else {
        format!("bind source {source} cannot be opened: {e}")
    };
    StepError {
        at: Some(at.clone()),
        message: what,
    }
}

/// Opens every host path the plan needs, following the host's symlinks.
/// Optional binds whose source is missing are left out.
pub fn open_host(plan: &Plan) -> Result<HostFds> {
    let mut fds = HostFds {
        binds: HashMap::new(),
        root: None,
        dev: Vec::new(),
    };
    if let Some(root) = &plan.root {
        let fd = sys::open_path(&root.value).map_err(|e| StepError {
            at: Some(root.at.clone()),
            message: format!("pivot_root directory {}: {e}", root.value),
        })?;
        if !sys::is_dir_fd(&fd) {
            return Err(StepError {
                at: Some(root.at.clone()),
                message: format!("pivot_root: {} is not a directory", root.value),
            });
        }
        fds.root = Some(sys::clone_tree(&fd, &root.value)?);
    }
    for (i, step) in plan.fs.iter().enumerate() {
        match &step.op {
            FsOp::Bind {
                source, optional, ..
            } => match clone_host(source) {
                Ok(tree) => {
                    fds.binds.insert(i, tree);
                }
                Err(e) if *optional && matches!(e.errno, Errno::ENOENT | Errno::ENOTDIR) => {}
                Err(e) => return Err(missing_source(source, &step.at, &e)),
            },
            FsOp::Dev { .. } if fds.dev.is_empty() => {
                for node in DEV_NODES {
                    let path = format!("/dev/{node}");
                    match clone_host(&path) {
                        Ok(fd) => fds.dev.push((node, fd)),
                        // No controlling-terminal device on some hosts: skip tty only.
                        Err(_) if node == "tty" => {}
                        Err(e) => {
                            return Err(StepError {
                                at: Some(step.at.clone()),
                                message: e.to_string(),
                            })
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(fds)
}

/// Splits "/a/b/c" into ("/a/b", "c").
fn split(path: &str) -> (String, String) {
    let norm = crate::plan::validate::normalize(path);
    match norm.rsplit_once('/') {
        Some((parent, name)) => (
            if parent.is_empty() {
                "/".into()
            } else {
                parent.into()
            },
            name.into(),
        ),
        None => ("/".into(), norm),
    }
}

/// The directory `path` inside `root`, created with its parents (mode 0755)
/// when missing. Every lookup stays inside `root`.
fn ensure_dir(root: &OwnedFd, path: &str) -> std::result::Result<OwnedFd, SysError> {
    ensure_dir_within(root, path, 0)
}

/// How many dangling symlinks one `ensure_dir` follows (as the kernel's 40).
const MAX_LINKS: usize = 40;

fn ensure_dir_within(
    root: &OwnedFd,
    path: &str,
    links: usize,
) -> std::result::Result<OwnedFd, SysError> {
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    match sys::open_in_root(root, path, flags) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.errno != Errno::ENOENT => return Err(e),
        Err(_) => {}
    }
    let (parent, name) = split(path);
    let parent_fd = ensure_dir_within(root, &parent, links)?;
    sys::mkdirat(&parent_fd, &name, 0o755, path)?;
    match sys::open_in_root(root, path, flags) {
        // Still missing after mkdir: `name` is a dangling symlink. Create
        // what it points to, as seen inside the new root, like `mkdir -p`
        // through a link would.
        Err(e) if e.errno == Errno::ENOENT && links < MAX_LINKS => {
            let Some(link) = sys::readlinkat(&parent_fd, &name) else {
                return Err(e);
            };
            let target = if link.starts_with('/') {
                link
            } else {
                format!("{parent}/{link}")
            };
            ensure_dir_within(root, &resolve_dots(&target), links + 1)?;
            sys::open_in_root(root, path, flags)
        }
        other => other,
    }
}

/// `path` with `.` and `..` resolved textually, `..` stopping at `/` as it
/// does in the new root.
fn resolve_dots(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Opens the parent directory of `path` (creating it) and returns it with
/// the last component.
fn parent_of(root: &OwnedFd, path: &str) -> std::result::Result<(OwnedFd, String), SysError> {
    let (parent, name) = split(path);
    Ok((ensure_dir(root, &parent)?, name))
}

/// Makes an empty file at `path` to mount a file on (keeps one that exists).
fn ensure_file(root: &OwnedFd, path: &str) -> std::result::Result<OwnedFd, SysError> {
    if let Ok(fd) = sys::open_in_root(root, path, libc::O_PATH) {
        return Ok(fd);
    }
    let (dir, name) = parent_of(root, path)?;
    match sys::create_file(&dir, &name, 0o644, path) {
        Ok(_) => {}
        Err(e) if e.errno == Errno::EEXIST => {}
        Err(e) => return Err(e),
    }
    sys::open_in_root(root, path, libc::O_PATH)
}

/// Attaches a detached host tree at `target` in the root, with the given
/// mount attributes applied before it becomes visible.
fn attach(
    root: &OwnedFd,
    tree: &Tree,
    target: &str,
    attrs: u64,
    shown_source: &str,
) -> std::result::Result<(), SysError> {
    let target_fd = if tree.is_dir {
        ensure_dir(root, target)?
    } else {
        ensure_file(root, target)?
    };
    sys::mount_setattr(&tree.fd, attrs, true, shown_source)?;
    sys::move_mount(&tree.fd, &target_fd, shown_source, target)
}

fn mount_fs(
    root: &OwnedFd,
    fstype: &str,
    target: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> std::result::Result<(), SysError> {
    let fd = ensure_dir(root, target)?;
    sys::mount(
        Some(fstype),
        &sys::fd_path(&fd),
        Some(fstype),
        flags,
        data,
        fstype,
        target,
    )
}

/// Parts of a fresh proc that act on the whole machine, not the sandbox's
/// namespaces: global sysctls, sysrq, interrupt and bus settings. The kernel
/// lets a uid 0 without capabilities write some of them (sysctl files check
/// only the owner), so they are made read-only, as bubblewrap and Docker do.
const PROC_READ_ONLY: [&str; 8] = [
    "sys",
    "sysrq-trigger",
    "irq",
    "bus",
    "fs",
    "acpi",
    "scsi",
    "asound",
];

/// Files of a fresh proc that tell about the whole machine (the keys of
/// every user of the uid, kernel timers and scheduler internals, the kernel
/// image): hidden under an empty read-only file, as Docker does.
const PROC_MASKED: [&str; 6] = [
    "keys",
    "timer_list",
    "sched_debug",
    "kcore",
    "latency_stats",
    "timer_stats",
];

/// Makes the machine-wide parts of the proc at `target` read-only and
/// masks its machine-wide files with `empty` (an empty file, detached).
fn protect_proc(
    root: &OwnedFd,
    target: &str,
    empty: &OwnedFd,
) -> std::result::Result<(), SysError> {
    let proc_dir = target.trim_end_matches('/');
    for entry in PROC_MASKED {
        let path = format!("{proc_dir}/{entry}");
        let fd = match sys::open_in_root(root, &path, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.errno == Errno::ENOENT => continue,
            Err(e) => return Err(e),
        };
        let tree = sys::clone_tree(empty, &path)?;
        sys::mount_setattr(
            &tree,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            false,
            &path,
        )?;
        sys::move_mount(&tree, &fd, &path, &path)?;
    }
    for entry in PROC_READ_ONLY {
        let path = format!("{proc_dir}/{entry}");
        let fd = match sys::open_in_root(root, &path, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.errno == Errno::ENOENT => continue,
            Err(e) => return Err(e),
        };
        let tree = sys::clone_tree(&fd, &path)?;
        sys::mount_setattr(
            &tree,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            true,
            &path,
        )?;
        sys::move_mount(&tree, &fd, &path, &path)?;
    }
    Ok(())
}

fn tmpfs_data(mode: u32, size: Option<u64>) -> String {
    match size {
        Some(size) => format!("mode={mode:o},size={size}"),
        None => format!("mode={mode:o}"),
    }
}

/// The root being built: the new root's directory fd and a private scratch
/// directory (outside the new root) for files written by the profile.
pub struct Builder<'a> {
    pub root: OwnedFd,
    pub scratch: OwnedFd,
    pub host: &'a HostFds,
    files: usize,
}

impl<'a> Builder<'a> {
    /// Mounts the staging tmpfs at `base` (a host directory, hidden only in
    /// our mount namespace) with `root/` (the new root) and `files/` in it.
    pub fn new(base: &str, plan: &Plan, host: &'a HostFds) -> Result<Builder<'a>> {
        sys::mount(
            Some("tmpfs"),
            base,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=0700"),
            "tmpfs",
            base,
        )?;
        let base_fd = sys::open_path(base)?;
        sys::mkdirat(&base_fd, "root", 0o755, "<staging>/root")?;
        sys::mkdirat(&base_fd, "files", 0o700, "<staging>/files")?;
        let root_path = format!("{base}/root");
        match (&plan.root, &host.root) {
            (Some(located), Some(tree)) => {
                sys::mount_setattr(
                    tree,
                    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    true,
                    &located.value,
                )?;
                let target = sys::open_path(&root_path)?;
                sys::move_mount(tree, &target, &located.value, "/").map_err(|e| StepError {
                    at: Some(located.at.clone()),
                    message: e.to_string(),
                })?;
            }
            _ => sys::mount(
                Some("tmpfs"),
                &root_path,
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some("mode=0755"),
                "tmpfs",
                "/",
            )?,
        }
        Ok(Builder {
            root: sys::open_path(&root_path)?,
            scratch: sys::open_path(&format!("{base}/files"))?,
            host,
            files: 0,
        })
    }

    /// Applies every step but remount_ro (done after pivot_root), in order.
    pub fn apply_all(&mut self, steps: &[Step<FsOp>]) -> Result<()> {
        for (i, step) in steps.iter().enumerate() {
            self.apply(i, &step.op).map_err(|e| StepError {
                at: Some(step.at.clone()),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    fn apply(&mut self, index: usize, op: &FsOp) -> std::result::Result<(), SysError> {
        let root = &self.root;
        let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
        match op {
            FsOp::Bind {
                source,
                target,
                rw,
                dev,
                ..
            } => {
                // A missing optional source was left out when opening.
                let Some(src) = self.host.binds.get(&index) else {
                    return Ok(());
                };
                let mut attrs = MOUNT_ATTR_NOSUID;
                if !rw {
                    attrs |= MOUNT_ATTR_RDONLY;
                }
                if !dev {
                    attrs |= MOUNT_ATTR_NODEV;
                }
                attach(root, src, target, attrs, source)
            }
            FsOp::Tmpfs {
                target, size, mode, ..
            } => mount_fs(
                root,
                "tmpfs",
                target,
                nosuid_nodev,
                Some(&tmpfs_data(*mode, *size)),
            ),
            FsOp::Proc { target, .. } => {
                mount_fs(root, "proc", target, nosuid_nodev | libc::MS_NOEXEC, None)?;
                let empty = self.empty_file()?;
                protect_proc(&self.root, target, &empty)
            }
            FsOp::Mqueue { target, .. } => {
                mount_fs(root, "mqueue", target, nosuid_nodev | libc::MS_NOEXEC, None)
            }
            FsOp::Dev { target, .. } => self.dev(target),
            FsOp::Mkdir { target, mode } => {
                let existed = sys::open_in_root(root, target, libc::O_PATH).is_ok();
                let fd = ensure_dir(root, target)?;
                if !existed {
                    sys::chmod_fd(&fd, *mode, target)?;
                }
                Ok(())
            }
            FsOp::Symlink {
                points_to,
                target,
                replace,
            } => {
                let (dir, name) = parent_of(root, target)?;
                if *replace {
                    let c = std::ffi::CString::new(name.clone()).unwrap_or_default();
                    // SAFETY: valid dirfd and NUL-terminated name; a failure
                    // (nothing there) is fine, symlinkat reports real conflicts.
                    unsafe { libc::unlinkat(std::os::fd::AsRawFd::as_raw_fd(&dir), c.as_ptr(), 0) };
                }
                sys::symlinkat(points_to, &dir, &name, target)
            }
            FsOp::WriteFile {
                target,
                content,
                mode,
                ..
            } => self.write_file(target, content, *mode),
            FsOp::Chmod { target, mode } => {
                let fd = sys::open_in_root(root, target, libc::O_PATH)?;
                sys::chmod_fd(&fd, *mode, target)
            }
            FsOp::RemountRo { .. } => Ok(()),
        }
    }

    /// A file with the given content: created in place when nothing is
    /// there, otherwise written in the private scratch space and mounted
    /// over what is there (e.g. /etc/passwd under a read-only /etc).
    fn write_file(
        &mut self,
        target: &str,
        content: &str,
        mode: u32,
    ) -> std::result::Result<(), SysError> {
        let existing = sys::open_in_root(&self.root, target, libc::O_PATH);
        let overlay = existing.is_ok();
        let (dir, name) = match existing {
            Ok(_) => {
                self.files += 1;
                (
                    sys::open_in_root(&self.scratch, "/", libc::O_PATH | libc::O_DIRECTORY)?,
                    self.files.to_string(),
                )
            }
            Err(e) if e.errno == Errno::ENOENT => parent_of(&self.root, target)?,
            Err(e) => return Err(e),
        };
        let fd = sys::create_file(&dir, &name, mode, target)?;
        sys::write_all(&fd, content.as_bytes(), target)?;
        drop(fd);
        let file = sys::open_in_root(&dir, &name, libc::O_PATH)?;
        sys::chmod_fd(&file, mode, target)?;
        if overlay {
            let target_fd = sys::open_in_root(&self.root, target, libc::O_PATH)?;
            let tree = sys::clone_tree(&file, target)?;
            sys::mount_setattr(&tree, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false, target)?;
            sys::move_mount(&tree, &target_fd, target, target)?;
        }
        Ok(())
    }

    /// A new empty file (mode 0444) in the scratch space, to mask others with.
    fn empty_file(&mut self) -> std::result::Result<OwnedFd, SysError> {
        self.files += 1;
        let name = self.files.to_string();
        let dir = sys::open_in_root(&self.scratch, "/", libc::O_PATH | libc::O_DIRECTORY)?;
        drop(sys::create_file(&dir, &name, 0o444, "<empty file>")?);
        sys::open_in_root(&dir, &name, libc::O_PATH)
    }

    /// A minimal /dev: a tmpfs with the host's harmless device nodes bound
    /// in, a private devpts, shm, and the usual links.
    fn dev(&mut self, target: &str) -> std::result::Result<(), SysError> {
        let root = &self.root;
        mount_fs(
            root,
            "tmpfs",
            target,
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some("mode=755"),
        )?;
        let dev = target.trim_end_matches('/');
        for (node, fd) in &self.host.dev {
            attach(
                root,
                fd,
                &format!("{dev}/{node}"),
                MOUNT_ATTR_NOSUID,
                &format!("/dev/{node}"),
            )?;
        }
        let pts = format!("{dev}/pts");
        mount_fs(
            root,
            "devpts",
            &pts,
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=620"),
        )?;
        mount_fs(
            root,
            "tmpfs",
            &format!("{dev}/shm"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=1777"),
        )?;
        let dir = ensure_dir(root, dev)?;
        for (link, to) in [
            ("ptmx", "pts/ptmx"),
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            sys::symlinkat(to, &dir, link, &format!("{dev}/{link}"))?;
        }
        Ok(())
    }
}

/// After pivot_root: make each remount_ro target read-only (that mount
/// only). A path that is not a mount point is first bound onto itself, so
/// only it, not the mount containing it, becomes read-only.
pub fn remount_read_only(steps: &[Step<FsOp>]) -> Result<()> {
    let root = sys::open_path("/")?;
    for step in steps {
        let FsOp::RemountRo { target } = &step.op else {
            continue;
        };
        let at = |e: SysError| StepError {
            at: Some(step.at.clone()),
            message: e.to_string(),
        };
        let mut fd = sys::open_in_root(&root, target, libc::O_PATH).map_err(at)?;
        if !is_mount_point(&root, target, &fd) {
            let tree = sys::clone_tree(&fd, target).map_err(at)?;
            sys::move_mount(&tree, &fd, target, target).map_err(at)?;
            fd = sys::open_in_root(&root, target, libc::O_PATH).map_err(at)?;
        }
        sys::mount_setattr(&fd, MOUNT_ATTR_RDONLY, false, target).map_err(at)?;
    }
    Ok(())
}

/// Whether `fd` (the object at `path`) is the root of a mount.
fn is_mount_point(root: &OwnedFd, path: &str, fd: &OwnedFd) -> bool {
    let norm = crate::plan::validate::normalize(path);
    if norm == "/" {
        return true;
    }
    let (parent, _) = split(&norm);
    match (
        sys::mount_id(fd),
        sys::open_in_root(root, &parent, libc::O_PATH)
            .ok()
            .and_then(|p| sys::mount_id(&p)),
    ) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}
