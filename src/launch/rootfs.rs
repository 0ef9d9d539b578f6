//! Building the new root: executing the operations `plan::mounts`
//! compiled from the plan's filesystem steps. Host sources are opened
//! before anything is mounted; targets are resolved inside the new root
//! with RESOLVE_IN_ROOT, so a symlink made by an earlier step can never
//! lead a later one out of it. Binds are detached clones (open_tree) made
//! read-only/nosuid/nodev before they are attached (move_mount), so a
//! read-only bind is never writable.
//!
//! Kernels without mount_setattr (before 5.12) get the same steps with
//! classic mount(2) (`classic`): a bind is attached, then remounted with
//! its flags, mount by mount, before the program exists.

use super::error::SetupError;
use crate::plan::mounts::{writable_holder, Flags, MountOp};
use crate::plan::validate::normalize;
use crate::plan::Step;
use crate::sys::{self, SysError, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use nix::errno::Errno;
use std::collections::HashMap;
use std::ops::Deref;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

type SysResult<T> = std::result::Result<T, SysError>;

/// The size of the private tmpfs under an `upper: "tmpfs"` overlay.
const OVERLAY_TMPFS: &str = "1g";

/// A detached copy of a host mount tree (on classic kernels, the host
/// object itself), whether its root is a directory, and its host path.
struct Tree {
    fd: OwnedFd,
    is_dir: bool,
    host: String,
}

/// A detached copy of the mount tree at `fd`; on classic kernels, `fd`
/// again (the bind is made when it is attached).
pub(super) fn detached(fd: &OwnedFd, shown: &str) -> SysResult<OwnedFd> {
    if sys::new_mount_api() {
        return sys::clone_tree(fd, shown);
    }
    fd.try_clone()
        .map_err(|e| SysError::io(format!("dup({shown:?})"), &e))
}

/// Opens the host source of a bind. Below `writable` (the source of
/// another, writable bind that holds it) no symlink is followed: a sandbox
/// could have put one there on an earlier run to redirect this bind to
/// anything of the user's.
pub fn open_source(path: &str, writable: Option<&str>) -> SysResult<OwnedFd> {
    Ok(match writable {
        Some(outer) => {
            let dir = sys::open_path(outer)?;
            let (inner, outer_n) = (normalize(path), normalize(outer));
            let rest = inner[outer_n.len()..].trim_start_matches('/');
            sys::open_beneath_no_symlinks(&dir, rest, outer).map_err(|e| {
                if e.errno == Errno::ELOOP {
                    e.hint(format!(
                        "{path} goes through a symlink inside {outer}, which another bind of \
                         this profile makes writable (a sandbox may have put it there): \
                         refused; remove the link, or bind what it points to by its own path"
                    ))
                } else {
                    e
                }
            })?
        }
        None => sys::open_path(path)?,
    })
}

/// The host directories of an overlay, opened before the staging tmpfs
/// exists: the lower layer, and the changes store's upper and work
/// directories (`None`: a private tmpfs holds them).
struct Layers {
    lower: OwnedFd,
    store: Option<(OwnedFd, OwnedFd)>,
}

/// Opens an overlay's host directories, and takes the store's lock for
/// as long as this process (the supervisor, later) lives: two sandboxes
/// on one upper directory would corrupt it, and `moksha commit` must not
/// run while a sandbox writes there.
fn open_layers(source: &str, store: Option<&str>, writable: Option<&str>) -> SysResult<Layers> {
    let lower = open_source(source, writable)?;
    if !sys::is_dir_fd(&lower) {
        return Err(SysError::new(
            format!("overlay {source}: not a directory"),
            Errno::ENOTDIR,
        ));
    }
    let store = match store {
        None => None,
        Some(dir) => {
            let lock = crate::changes::Store::lock_in(dir)
                .map_err(|e| SysError::new(e.to_string(), Errno::EBUSY))?;
            // Held until the supervisor exits; closed on exec.
            std::mem::forget(lock);
            let open = |name: &str| sys::open_path(&format!("{dir}/{name}"));
            Some((open("upper")?, open("work")?))
        }
    };
    Ok(Layers { lower, store })
}

/// Opens a host path (see `open_source`) and clones the mount tree at it;
/// where no symlink needs refusing, open_tree looks the path up itself.
fn clone_host(path: &str, writable: Option<&str>) -> SysResult<Tree> {
    let fd = match writable {
        None if sys::new_mount_api() => sys::clone_path(path)?,
        _ => detached(&open_source(path, writable)?, path)?,
    };
    Ok(Tree {
        is_dir: sys::is_dir_fd(&fd),
        fd,
        host: normalize(path),
    })
}

/// The message for a required host source that cannot be opened.
pub fn missing_source(source: &str, e: &SysError) -> String {
    if e.errno == Errno::ENOENT || e.errno == Errno::ENOTDIR {
        format!(
            "bind source {source} does not exist on the host (pass #{{ optional: true }} to \
             skip it when missing)"
        )
    } else {
        format!("bind source {source} cannot be opened: {e}")
    }
}

/// Copies of every host tree the operations attach, by operation index,
/// taken before the staging tmpfs exists: a bind of an ancestor of the
/// staging directory (e.g. /tmp, or /) cannot reveal it. Optional sources
/// that are missing are left out.
fn open_host(ops: &[Step<MountOp>]) -> Result<Host, SetupError> {
    let mut trees = HashMap::new();
    let mut layers = HashMap::new();
    for (i, step) in ops.iter().enumerate() {
        let tree = match &step.op {
            MountOp::Overlay { source, store, .. } => {
                let opened = open_layers(source, store.as_deref(), writable_holder(ops, source))
                    .map_err(|e| SetupError::at(&step.at, e.to_string()))?;
                layers.insert(i, opened);
                continue;
            }
            MountOp::Attach {
                source, optional, ..
            } => match clone_host(source, writable_holder(ops, source)) {
                Ok(tree) => tree,
                Err(e) if *optional && matches!(e.errno, Errno::ENOENT | Errno::ENOTDIR) => {
                    continue
                }
                Err(e) => return Err(SetupError::at(&step.at, missing_source(source, &e))),
            },
            MountOp::RootBind { source } => {
                let fd = sys::open_path(source)
                    .map_err(|e| SetupError::at(&step.at, format!("pivot_root directory: {e}")))?;
                if !sys::is_dir_fd(&fd) {
                    return Err(SetupError::at(
                        &step.at,
                        format!("pivot_root: {source} is not a directory"),
                    ));
                }
                Tree {
                    fd: detached(&fd, source)?,
                    is_dir: true,
                    host: normalize(source),
                }
            }
            _ => continue,
        };
        trees.insert(i, tree);
    }
    Ok(Host { trees, layers })
}

/// What `open_host` opened, by operation index.
struct Host {
    trees: HashMap<usize, Tree>,
    layers: HashMap<usize, Layers>,
}

/// Builds the root from `ops` (`plan::mounts::compile`) in a staging tmpfs
/// at `base` (a host directory, hidden only in our own mount namespace),
/// pivots into it and applies the read-only remounts.
/// With `owner`, everything made after the host's sources are open
/// belongs to those (inside) ids, as it does when setup runs as the
/// program's own identity.
pub fn build(
    ops: &[Step<MountOp>],
    base: &str,
    owner: Option<(u32, u32)>,
) -> Result<(), SetupError> {
    // Nothing we mount propagates to the host.
    sys::mount(
        None,
        "/",
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
        "none",
        "/",
    )?;
    let host = open_host(ops)?;
    if let Some((uid, gid)) = owner {
        sys::set_fs_ids(uid, gid);
    }
    let built = build_from(ops, base, &host, owner);
    if owner.is_some() {
        sys::set_fs_ids(0, 0);
    }
    built
}

fn build_from(
    ops: &[Step<MountOp>],
    base: &str,
    host: &Host,
    owner: Option<(u32, u32)>,
) -> Result<(), SetupError> {
    let mut builder: Option<Builder> = None;
    for (i, step) in ops.iter().enumerate() {
        let done = match (&step.op, builder.as_mut()) {
            (MountOp::RootTmpfs | MountOp::RootBind { .. }, _) => {
                Builder::new(base, host.trees.get(&i)).map(|b| builder = Some(b))
            }
            (MountOp::PivotRoot, Some(_)) => builder.take().map_or(Ok(()), Builder::pivot),
            (MountOp::RemountRo { target }, None) => remount_read_only(target),
            (MountOp::Overlay { target, .. }, Some(b)) => match host.layers.get(&i) {
                // Writable, and its upper persists between launches: a
                // writable tree for the steps after it (`Root`).
                Some(layers) => b
                    .overlay(target, layers, owner)
                    .map(|()| b.writable.push(normalize(target))),
                None => Err(SysError::new("overlay: layers not opened", Errno::EINVAL)),
            },
            (op, Some(b)) => b.apply(op, host.trees.get(&i)),
            (op, None) => Err(SysError::new(
                format!("{op}: no root to act on"),
                Errno::EINVAL,
            )),
        };
        done.map_err(|e| SetupError::at(&step.at, e.to_string()))?;
    }
    Ok(())
}

/// Splits "/a/b/c" into ("/a/b", "c").
fn split(path: &str) -> (String, String) {
    let norm = normalize(path);
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

/// A directory of the new root as a lookup gives it: one it opened, or
/// a descriptor already held for it (the root itself, for `/`: opening it
/// again would give the same directory).
enum Dir<'a> {
    Opened(OwnedFd),
    Held(&'a OwnedFd),
}

impl Dir<'_> {
    fn into_owned(self) -> SysResult<OwnedFd> {
        match self {
            Dir::Opened(fd) => Ok(fd),
            Dir::Held(fd) => fd
                .try_clone()
                .map_err(|e| SysError::io("dup(<directory of the new root>)", &e)),
        }
    }
}

impl Deref for Dir<'_> {
    type Target = OwnedFd;
    fn deref(&self) -> &OwnedFd {
        match self {
            Dir::Opened(fd) => fd,
            Dir::Held(fd) => fd,
        }
    }
}

impl AsRawFd for Dir<'_> {
    fn as_raw_fd(&self) -> RawFd {
        (**self).as_raw_fd()
    }
}

/// How many dangling symlinks one `ensure_dir_within` follows (as the kernel's 40).
const MAX_LINKS: usize = 40;

/// The directory `path` inside `root`, created with its parents (mode 0755)
/// when missing. Every lookup stays inside `root`.
fn ensure_dir_within<'a>(root: &'a OwnedFd, path: &str, links: usize) -> SysResult<Dir<'a>> {
    if normalize(path) == "/" {
        return Ok(Dir::Held(root));
    }
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    match sys::open_in_root(root, path, flags) {
        Ok(fd) => return Ok(Dir::Opened(fd)),
        Err(e) if e.errno != Errno::ENOENT => return Err(e),
        Err(_) => {}
    }
    let (parent, name) = split(path);
    let parent_fd = ensure_dir_within(root, &parent, links)?;
    sys::mkdirat(&parent_fd, &name, 0o755, path)?;
    let opened = match sys::open_in_root(root, path, flags) {
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
    };
    opened.map(Dir::Opened)
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

/// The new root as its builder looks paths up in it. Below a writable host
/// tree bound into it (one the sandbox may have changed since its last
/// launch, or another sandbox is changing now) a path is resolved beneath
/// that tree without following any symlink, and missing directories are
/// made the same way: a link planted there cannot send a mount, a mask or
/// a file elsewhere. Everywhere else, in the root (RESOLVE_IN_ROOT).
struct Root<'a> {
    fd: &'a OwnedFd,
    /// The targets of the writable host trees attached so far.
    writable: &'a [String],
}

impl<'a> Root<'a> {
    /// The innermost writable tree `path` is strictly below, and the rest.
    fn holder(&self, path: &str) -> Option<(&str, String)> {
        let norm = normalize(path);
        self.writable
            .iter()
            .filter_map(|h| {
                let rest = norm
                    .strip_prefix(h.trim_end_matches('/'))?
                    .strip_prefix('/')?;
                (!rest.is_empty()).then(|| (h.as_str(), rest.to_string()))
            })
            .max_by_key(|(h, _)| h.len())
    }

    fn open(&self, path: &str, flags: libc::c_int) -> SysResult<OwnedFd> {
        let Some((holder, rest)) = self.holder(path) else {
            return sys::open_in_root(self.fd, path, flags);
        };
        let dir = self.open(holder, libc::O_PATH | libc::O_DIRECTORY)?;
        sys::open_beneath(&dir, &rest, flags).map_err(|e| through(path, holder, e))
    }

    /// The directory `path`, created with its parents (mode 0755) when missing.
    fn ensure_dir(&self, path: &str) -> SysResult<Dir<'a>> {
        let Some((holder, rest)) = self.holder(path) else {
            return ensure_dir_within(self.fd, path, 0);
        };
        let dir = self.open(holder, libc::O_PATH | libc::O_DIRECTORY)?;
        sys::mkdir_all_beneath(&dir, &rest, 0o755, false, None, path)
            .map_err(|e| through(path, holder, e.errno))?;
        self.open(path, libc::O_PATH | libc::O_DIRECTORY)
            .map(Dir::Opened)
    }

    /// The parent directory of `path` (created) and the last component.
    fn parent_of(&self, path: &str) -> SysResult<(Dir<'a>, String)> {
        let (parent, name) = split(path);
        Ok((self.ensure_dir(&parent)?, name))
    }

    /// Opens `path` without following a symlink at it; `None` when nothing
    /// is there.
    fn existing(&self, path: &str) -> SysResult<Option<OwnedFd>> {
        match self.open(path, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.errno == Errno::ENOENT => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The error for `path`, looked up beneath the writable `holder`.
fn through(path: &str, holder: &str, e: Errno) -> SysError {
    let err = SysError::new(format!("open({path:?}) beneath the writable {holder:?}"), e);
    match e {
        Errno::ELOOP | Errno::EXDEV => err.hint(format!(
            "{path} goes through a symlink inside {holder}, which the sandbox may write \
             (a link it left there could send this step anywhere): replace the link by \
             the directory it names, or give the step a path without it"
        )),
        _ => err,
    }
}

/// The kernel's mount(2) flags for `f`.
fn ms_flags(f: Flags) -> libc::c_ulong {
    let mut flags = 0;
    for (on, bit) in [
        (f.ro, libc::MS_RDONLY),
        (f.nosuid, libc::MS_NOSUID),
        (f.nodev, libc::MS_NODEV),
        (f.noexec, libc::MS_NOEXEC),
    ] {
        if on {
            flags |= bit;
        }
    }
    flags
}

/// The mount_setattr(2) attributes for `f` (an attached tree is never
/// noexec: landlock decides execution).
fn attrs(f: Flags) -> u64 {
    let mut attrs = 0;
    for (on, bit) in [
        (f.ro, MOUNT_ATTR_RDONLY),
        (f.nosuid, MOUNT_ATTR_NOSUID),
        (f.nodev, MOUNT_ATTR_NODEV),
    ] {
        if on {
            attrs |= bit;
        }
    }
    attrs
}

/// Attaches `tree` (from `detached`; from the host path `host`, if any)
/// on `target_fd` with the attributes `set`, on every mount of the tree
/// when `recursive`, applied before the program can see them.
pub(super) fn place(
    tree: &OwnedFd,
    host: Option<&str>,
    target_fd: &OwnedFd,
    set: u64,
    recursive: bool,
    shown: &str,
    target: &str,
) -> SysResult<()> {
    if sys::new_mount_api() {
        sys::mount_setattr(tree, set, recursive, shown)?;
        return sys::move_mount(tree, target_fd, shown, target);
    }
    sys::bind_fd(tree, target_fd, shown, target)?;
    if let Some(host) = host {
        classic::hide_staging(host, target_fd, target)?;
    }
    classic::set_flags(target_fd, classic::ms_of(set), recursive, target)
}

/// The root being built: the new root's directory fd and a private scratch
/// directory (outside the new root) for files written by the profile.
struct Builder {
    root: OwnedFd,
    scratch: OwnedFd,
    files: usize,
    /// An empty read-only file to mask others with, made on first use.
    empty: Option<OwnedFd>,
    /// The targets of the writable host trees attached so far (`Root`).
    writable: Vec<String>,
    /// The directory the last file bind or link went into, by path, for
    /// the next ones (/dev's nodes and links): kept only across file binds
    /// and new links, which change no directory a path leads to; any other
    /// operation forgets it. Never one below a writable tree, which others
    /// may change meanwhile (`Root`).
    last_dir: Option<(String, OwnedFd)>,
    /// The directories between a writable tree and a mount made inside
    /// it, bound onto themselves before pivot_root: the sandbox cannot
    /// rename them away (EBUSY), so what the mount hides (a tmpfs over a
    /// secret, a mask) is still hidden at the next launch (found in review:
    /// `mv /w/sub /w/real` left the next launch's tmpfs over a new, empty
    /// /w/sub/secrets).
    pins: Vec<String>,
}

impl Builder {
    /// Mounts the staging tmpfs at `base` with `root/` (the new root: an
    /// empty tmpfs, or the host tree `dir`) and `files/` in it.
    fn new(base: &str, dir: Option<&Tree>) -> SysResult<Builder> {
        sys::mount(
            Some("tmpfs"),
            base,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            // The root's mount points and the files the profile writes.
            Some("mode=0700,size=64m"),
            "tmpfs",
            base,
        )?;
        let base_fd = sys::open_path(base)?;
        sys::mkdirat(&base_fd, "root", 0o755, "<staging>/root")?;
        sys::mkdirat(&base_fd, "files", 0o700, "<staging>/files")?;
        let root_path = format!("{base}/root");
        match dir {
            Some(tree) => {
                let target = sys::open_path(&root_path)?;
                let shown = "<pivot_root directory>";
                let set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
                place(&tree.fd, Some(&tree.host), &target, set, true, shown, "/")?;
            }
            None => sys::mount(
                Some("tmpfs"),
                &root_path,
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some("mode=0755,size=64m"),
                "tmpfs",
                "/",
            )?,
        }
        Ok(Builder {
            root: sys::open_path(&root_path)?,
            scratch: sys::open_path(&format!("{base}/files"))?,
            files: 0,
            empty: None,
            writable: Vec::new(),
            last_dir: None,
            pins: Vec::new(),
        })
    }

    fn lookup(&self) -> Root<'_> {
        Root {
            fd: &self.root,
            writable: &self.writable,
        }
    }

    /// Remembers the directories between the writable tree `target` is in
    /// and `target`, to pin (`pins`).
    fn pin_the_way_to(&mut self, target: &str) {
        let found = self
            .lookup()
            .holder(target)
            .map(|(h, rest)| (h.trim_end_matches('/').to_string(), rest));
        let Some((holder, rest)) = found else {
            return;
        };
        for way in super::protect::on_the_way(&rest) {
            self.pins.push(format!("{holder}/{way}"));
        }
    }

    /// Binds each pinned directory onto itself (outermost first; the clone
    /// is recursive, so what is mounted below stays as it is).
    fn pin(&mut self) -> SysResult<()> {
        let mut pins = std::mem::take(&mut self.pins);
        pins.sort_by_key(|p| (p.matches('/').count(), p.clone()));
        pins.dedup();
        for pin in &pins {
            let Some(fd) = self.lookup().existing(pin)? else {
                continue;
            };
            let tree = detached(&fd, pin)?;
            place(&tree, None, &fd, 0, true, pin, pin)?;
        }
        Ok(())
    }

    /// How `op` (with its host tree `tree`) treats `last_dir`: whether it
    /// may use it (it is valid when the op starts), and whether it leaves
    /// it valid. File binds and new links change no directory a path leads
    /// to (a mount on a file is no step of any directory's path; a new name
    /// is none of a directory already found); a mount on a directory may,
    /// so `last_dir` is forgotten after it; anything else, before.
    fn last_dir_use(op: &MountOp, tree: Option<&Tree>) -> (bool, bool) {
        match op {
            MountOp::Attach { .. } => match tree {
                Some(t) if t.is_dir => (true, false),
                _ => (true, true),
            },
            MountOp::Symlink { replace, .. } => (!replace, !replace),
            MountOp::Fs { .. } => (true, false),
            _ => (false, false),
        }
    }

    /// Whether `last_dir` is the parent `parent` of `path`, and may stand
    /// for it (never below a writable tree).
    fn holds(&self, parent: &str, path: &str) -> bool {
        self.last_dir.as_ref().is_some_and(|(p, _)| p == parent)
            && self.lookup().holder(path).is_none()
    }

    /// The directory `parent` of the new root (created when missing), for a
    /// file bind or a link: the root itself, `last_dir` when it is that
    /// one, or looked up (and kept as `last_dir`).
    fn dir_for_entry(&mut self, parent: &str) -> SysResult<Dir<'_>> {
        let parent = normalize(parent);
        if parent == "/" || self.lookup().holder(&parent).is_some() {
            return self.lookup().ensure_dir(&parent);
        }
        if self.last_dir.as_ref().is_none_or(|(p, _)| *p != parent) {
            let fd = self.lookup().ensure_dir(&parent)?.into_owned()?;
            self.last_dir = Some((parent, fd));
        }
        let (_, fd) = self.last_dir.as_ref().expect("just set");
        Ok(Dir::Held(fd))
    }

    /// What a file is bound on at `path`: what is there, or a new empty
    /// file (its parent made when missing), as the descriptor that created
    /// it. In a directory already held (/dev's nodes) the file is created
    /// first: O_EXCL fails with EEXIST for anything there, and then (or on
    /// any other failure) it is looked up as it would have been first.
    fn file_target(&mut self, path: &str) -> SysResult<OwnedFd> {
        let (parent, name) = split(path);
        let held = self.holds(&parent, path);
        if !held {
            if let Ok(fd) = self.lookup().open(path, libc::O_PATH) {
                return Ok(fd);
            }
        }
        let created = sys::create_file(&*self.dir_for_entry(&parent)?, &name, 0o644, path);
        match created {
            Ok(fd) => Ok(fd),
            Err(e) if e.errno == Errno::EEXIST => self.lookup().open(path, libc::O_PATH),
            Err(e) if held => self.lookup().open(path, libc::O_PATH).map_err(|_| e),
            Err(e) => Err(e),
        }
    }

    /// The directory `target` (created when missing) to mount on, as
    /// `Root::ensure_dir` makes it. When its parent is already held (the
    /// root, or `last_dir`: /usr, /dev, /dev/pts) it is made there first:
    /// where nothing is, that is the mkdir `ensure_dir` would make after
    /// finding nothing, and anything there (EEXIST), or a failure, is left
    /// to `ensure_dir` as it would have found it; one lookup instead of
    /// two and the parent's.
    fn mount_point(&mut self, target: &str) -> SysResult<Dir<'_>> {
        let (parent, name) = split(target);
        let held = if self.lookup().holder(target).is_some() || name.is_empty() {
            None
        } else if parent == "/" {
            Some(&self.root)
        } else {
            self.last_dir
                .as_ref()
                .filter(|(p, _)| *p == parent)
                .map(|(_, fd)| fd)
        };
        if let Some(dir) = held {
            let _ = sys::mkdirat(dir, &name, 0o755, target);
        }
        self.lookup().ensure_dir(target)
    }

    /// One operation before pivot_root; `tree` is the host tree it attaches.
    fn apply(&mut self, op: &MountOp, tree: Option<&Tree>) -> SysResult<()> {
        let (uses, keeps) = Self::last_dir_use(op, tree);
        if !uses {
            self.last_dir = None;
        }
        let done = self.apply_op(op, tree);
        if !keeps {
            self.last_dir = None;
        }
        done
    }

    fn apply_op(&mut self, op: &MountOp, tree: Option<&Tree>) -> SysResult<()> {
        if let MountOp::Attach { target, .. }
        | MountOp::Fs { target, .. }
        | MountOp::Mask { target }
        | MountOp::ReadOnly { target }
        | MountOp::WriteFile { target, .. } = op
        {
            self.pin_the_way_to(target);
        }
        match op {
            MountOp::Attach {
                source,
                target,
                flags,
                ..
            } => {
                // A missing optional source was left out when opening.
                let Some(tree) = tree else { return Ok(()) };
                let target_fd = if tree.is_dir {
                    self.mount_point(target)?
                } else {
                    Dir::Opened(self.file_target(target)?)
                };
                let set = attrs(*flags);
                place(
                    &tree.fd,
                    Some(&tree.host),
                    &target_fd,
                    set,
                    true,
                    source,
                    target,
                )?;
                drop(target_fd);
                if !flags.ro && tree.is_dir {
                    self.writable.push(normalize(target));
                }
                Ok(())
            }
            MountOp::Symlink {
                points_to,
                target,
                replace,
            } => {
                let (parent, name) = split(target);
                let dir = self.dir_for_entry(&parent)?;
                if *replace {
                    // Nothing there is fine; symlinkat reports real conflicts.
                    let _ = sys::unlinkat(&dir, &name, target);
                }
                sys::symlinkat(points_to, &dir, &name, target)
            }
            MountOp::Fs {
                fstype,
                target,
                flags,
                data,
            } => {
                let fd = self.mount_point(target)?;
                let flags = ms_flags(*flags);
                let path = sys::fd_path(&fd);
                sys::mount(
                    Some(fstype),
                    &path,
                    Some(fstype),
                    flags,
                    data.as_deref(),
                    fstype,
                    target,
                )
            }
            op => self.apply_other(op),
        }
    }

    /// `apply` for the operations that need no `last_dir`.
    fn apply_other(&mut self, op: &MountOp) -> SysResult<()> {
        let root = &self.lookup();
        match op {
            MountOp::Mask { target } => {
                let Some(fd) = root.existing(target)? else {
                    return Ok(());
                };
                let tree = detached(self.empty_file()?, target)?;
                let set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
                place(&tree, None, &fd, set, false, target, target)
            }
            MountOp::ReadOnly { target } => {
                let Some(fd) = root.existing(target)? else {
                    return Ok(());
                };
                let tree = detached(&fd, target)?;
                let set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
                place(&tree, None, &fd, set, true, target, target)
            }
            MountOp::Mkdir { target, mode } => {
                let existed = root.open(target, libc::O_PATH).is_ok();
                let fd = root.ensure_dir(target)?;
                if !existed {
                    sys::chmod_fd(&fd, *mode, target)?;
                }
                Ok(())
            }
            MountOp::WriteFile {
                target,
                content,
                mode,
            } => self.write_file(target, content, *mode),
            MountOp::Chmod { target, mode } => {
                let fd = root.open(target, libc::O_PATH)?;
                sys::chmod_fd(&fd, *mode, target)
            }
            MountOp::Protect { under, patterns } => {
                let dir = root.open(under, libc::O_PATH | libc::O_DIRECTORY)?;
                super::protect::apply(&dir, under, patterns).map(drop)
            }
            MountOp::Attach { .. }
            | MountOp::Symlink { .. }
            | MountOp::Fs { .. }
            | MountOp::RootTmpfs
            | MountOp::RootBind { .. }
            | MountOp::Overlay { .. }
            | MountOp::PivotRoot
            | MountOp::RemountRo { .. } => {
                Err(SysError::new(format!("{op}: out of order"), Errno::EINVAL))
            }
        }
    }

    /// overlayfs at `target`, over the host directory `layers.lower`.
    /// The upper and work directories are the store's, or made in a
    /// private tmpfs outside the new root (reachable only through the
    /// overlay, and gone with it). Mounted inside our user namespace, so
    /// with `userxattr` (Linux 5.11): the layers' own attributes are in
    /// the user.overlay.* namespace. The directories are passed by
    /// descriptor, so no host path is parsed as an option.
    ///
    /// With `owner` (a root launch building as nobody), the mount itself
    /// is made with our own ids: overlayfs acts on its layers with the
    /// mounter's credentials (each access is first checked with the
    /// program's, on the overlay), and nobody's would not reach the host
    /// directory's files as the host's root launching it does.
    fn overlay(
        &mut self,
        target: &str,
        layers: &Layers,
        owner: Option<(u32, u32)>,
    ) -> SysResult<()> {
        // A mount on a directory: what a path leads to may change.
        self.last_dir = None;
        self.pin_the_way_to(target);
        let target_fd = self.lookup().ensure_dir(target)?.into_owned()?;
        let scratch;
        let (upper, work) = match &layers.store {
            Some((upper, work)) => (upper, work),
            None => {
                scratch = self.tmpfs_layers()?;
                (&scratch.0, &scratch.1)
            }
        };
        let data = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            sys::fd_path(&layers.lower),
            sys::fd_path(upper),
            sys::fd_path(work)
        );
        if owner.is_some() {
            sys::set_fs_ids(0, 0);
        }
        let mounted = sys::mount(
            Some("overlay"),
            &sys::fd_path(&target_fd),
            Some("overlay"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(&data),
            "overlay",
            target,
        );
        if let Some((uid, gid)) = owner {
            sys::set_fs_ids(uid, gid);
        }
        mounted.map_err(|e| {
            if crate::script::host::kernel_version() < (5, 11) {
                e.hint("overlayfs in a user namespace needs Linux 5.11 or newer")
            } else {
                e.hint(
                    "the host directory's filesystem may not be usable as an overlay's lower \
                     layer, or the store's as its upper (it needs user extended attributes)",
                )
            }
        })
    }

    /// A private tmpfs in the scratch space (outside the new root) with
    /// an overlay's upper and work directories.
    fn tmpfs_layers(&mut self) -> SysResult<(OwnedFd, OwnedFd)> {
        let name = self.scratch_name();
        let dir = &self.scratch;
        sys::mkdirat(dir, &name, 0o700, "<overlay tmpfs>")?;
        let at = sys::open_in_root(dir, &name, libc::O_PATH | libc::O_DIRECTORY)?;
        sys::mount(
            Some("tmpfs"),
            &sys::fd_path(&at),
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(&format!("mode=0700,size={OVERLAY_TMPFS}")),
            "tmpfs",
            "<overlay tmpfs>",
        )?;
        let tmp = sys::open_in_root(dir, &name, libc::O_PATH | libc::O_DIRECTORY)?;
        sys::mkdirat(&tmp, "upper", 0o755, "<overlay tmpfs>/upper")?;
        sys::mkdirat(&tmp, "work", 0o700, "<overlay tmpfs>/work")?;
        let open = |n| sys::open_in_root(&tmp, n, libc::O_PATH | libc::O_DIRECTORY);
        Ok((open("upper")?, open("work")?))
    }

    /// pivot_root into the new root (the pins made first); the old root
    /// is detached.
    fn pivot(mut self) -> SysResult<()> {
        self.pin()?;
        sys::fchdir(&self.root, "<new root>")?;
        drop(self);
        sys::pivot_root_here("<new root>")?;
        sys::umount_detach(".", "<old root>")?;
        sys::chdir("/")
    }

    /// A file with the given content: created in place when nothing is
    /// there, otherwise written in the private scratch space and mounted
    /// over what is there (e.g. /etc/passwd under a read-only /etc).
    fn write_file(&mut self, target: &str, content: &str, mode: u32) -> SysResult<()> {
        let existing = match self.lookup().open(target, libc::O_PATH) {
            Ok(fd) => Some(fd),
            Err(e) if e.errno == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        let (dir, name) = match existing {
            Some(_) => {
                let name = self.scratch_name();
                (Dir::Held(&self.scratch), name)
            }
            None => self.lookup().parent_of(target)?,
        };
        let fd = sys::create_file(&dir, &name, mode, target)?;
        sys::write_all(&fd, content.as_bytes(), target)?;
        drop(fd);
        let file = sys::open_in_root(&dir, &name, libc::O_PATH)?;
        sys::chmod_fd(&file, mode, target)?;
        // Nothing changed at the target since it was opened: only a file
        // in the scratch space was made.
        if let Some(target_fd) = existing {
            let tree = detached(&file, target)?;
            let set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
            place(&tree, None, &target_fd, set, false, target, target)?;
        }
        Ok(())
    }

    /// A new name in the scratch directory (`scratch`).
    fn scratch_name(&mut self) -> String {
        self.files += 1;
        self.files.to_string()
    }

    /// The empty file (mode 0444) in the scratch space that masks others.
    fn empty_file(&mut self) -> SysResult<&OwnedFd> {
        let fd = match self.empty.take() {
            Some(fd) => fd,
            // The descriptor that created it: only cloned (open_tree, or
            // bound by its /proc/self/fd name), never written; closed with
            // the builder before pivot_root.
            None => {
                let name = self.scratch_name();
                sys::create_file(&self.scratch, &name, 0o444, "<empty file>")?
            }
        };
        Ok(self.empty.insert(fd))
    }
}

/// After pivot_root: makes the mount at `target` read-only (that mount
/// only). A path that is not a mount point is first bound onto itself, so
/// only it, not the mount containing it, becomes read-only.
fn remount_read_only(target: &str) -> SysResult<()> {
    let root = sys::open_path("/")?;
    let mut fd = sys::open_in_root(&root, target, libc::O_PATH)?;
    if !is_mount_point(&root, target, &fd) {
        let tree = detached(&fd, target)?;
        place(&tree, None, &fd, 0, false, target, target)?;
        fd = sys::open_in_root(&root, target, libc::O_PATH)?;
    }
    if !sys::new_mount_api() {
        return classic::set_flags(&fd, libc::MS_RDONLY, false, target);
    }
    sys::mount_setattr(&fd, MOUNT_ATTR_RDONLY, false, target)
}

/// Whether `fd` (the object at `path`) is the root of a mount.
fn is_mount_point(root: &OwnedFd, path: &str, fd: &OwnedFd) -> bool {
    let norm = normalize(path);
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

/// The steps a classic kernel needs beyond mount(2) itself.
mod classic {
    use super::SysResult;
    use crate::plan::validate::normalize;
    use crate::sys::{self, SysError, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
    use nix::errno::Errno;
    use std::os::fd::OwnedFd;

    /// mount(2) flags for mount_setattr attributes.
    pub fn ms_of(set: u64) -> libc::c_ulong {
        let mut flags = 0;
        for (attr, bit) in [
            (MOUNT_ATTR_RDONLY, libc::MS_RDONLY),
            (MOUNT_ATTR_NOSUID, libc::MS_NOSUID),
            (MOUNT_ATTR_NODEV, libc::MS_NODEV),
        ] {
            if set & attr != 0 {
                flags |= bit;
            }
        }
        flags
    }

    /// The path `fd` is at, as the kernel names it (no symlink in it).
    fn real_path(fd: &OwnedFd, shown: &str) -> SysResult<String> {
        std::fs::read_link(sys::fd_path(fd))
            .map(|p| crate::arg::path_text(&p))
            .map_err(|e| SysError::io(format!("readlink(<fd of {shown:?}>)"), &e))
    }

    /// The mount now on top at the path `covered` was open on (a bind was
    /// just made there), with every mount below it in `all`, parents first.
    fn new_tree(
        covered: &OwnedFd,
        all: &[sys::MountEntry],
        shown: &str,
    ) -> SysResult<(String, Vec<sys::MountEntry>)> {
        let at = real_path(covered, shown)?;
        let top = sys::open_path(&at)?;
        let id = sys::mount_id(&top).ok_or_else(|| {
            SysError::new(
                format!("mount id of {shown:?} (statx, /proc/self/fdinfo)"),
                Errno::ENOSYS,
            )
            .hint("moksha reads it from /proc/self/fdinfo where statx has none: is /proc mounted?")
        })?;
        Ok((at, sys::tree_of(all, id)))
    }

    /// Adds `set` to the bind just made at `covered`: to its every mount
    /// when `recursive` (as mount_setattr's AT_RECURSIVE), else its top.
    pub fn set_flags(
        covered: &OwnedFd,
        set: libc::c_ulong,
        recursive: bool,
        shown: &str,
    ) -> SysResult<()> {
        if set == 0 {
            return Ok(());
        }
        if !recursive {
            return sys::remount_bind(&real_path(covered, shown)?, set, shown);
        }
        let (at, tree) = new_tree(covered, &sys::mounts()?, shown)?;
        // The bind just made is on top at its point: a tree without it
        // would leave the bind as it came, writable (fail closed).
        if tree.first().is_none_or(|m| m.point != at) {
            return Err(SysError::new(
                format!("find the mounts of {shown:?} at {at:?} to remount them"),
                Errno::ENOENT,
            ));
        }
        for m in &tree {
            // A mount another one covers is out of reach: only the top
            // one at a point is remounted, and it is what paths reach.
            sys::remount_bind(&m.point, set, shown)?;
        }
        Ok(())
    }

    /// A host tree bound after the staging tmpfs was mounted holds a copy
    /// of it when its source is the staging directory or an ancestor (a
    /// bind of `/` or `/tmp`): detached here, as the new API's trees were
    /// copied before the staging existed.
    pub fn hide_staging(host: &str, covered: &OwnedFd, shown: &str) -> SysResult<()> {
        let Some(base) = super::super::staging_base() else {
            return Ok(());
        };
        if !crate::plan::validate::within(base, host) {
            return Ok(());
        }
        let all = sys::mounts()?;
        let (at, tree) = new_tree(covered, &all, shown)?;
        let rest = normalize(base)[normalize(host).len()..].to_string();
        let copy = normalize(&format!("{at}/{rest}"));
        let staging = all.iter().rev().find(|m| m.point == base).map(|m| &m.dev);
        let copied = tree
            .iter()
            .any(|m| m.point == copy && Some(&m.dev) == staging);
        if copied {
            sys::umount_detach(&copy, shown)?;
        }
        Ok(())
    }
}
