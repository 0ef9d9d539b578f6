//! Reading a store: the upper directory compared with the host directory,
//! as a list of changes (parents before what is inside them).
//!
//! overlayfs records a deletion as a whiteout (a character device 0/0)
//! and a directory that replaced another as opaque (the attribute
//! user.overlay.opaque = "y", with `userxattr`). An entry of the upper
//! directory whose content, mode and kind equal the host's (a file opened
//! for writing and left as it was) is no change. Redirected or metacopy
//! entries are never made by our mounts (`userxattr` without those
//! options): one found means the store was tampered with, and is refused.
//!
//! The host side is read through descriptors, beneath its directory,
//! following no symlink; the upper side is walked by lstat, never into a
//! symlink.

use super::Result;
use crate::sys;
use nix::errno::Errno;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What one entry is.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    File {
        mode: u32,
        size: u64,
    },
    Dir {
        mode: u32,
        opaque: bool,
    },
    Symlink(PathBuf),
    /// A fifo, socket or device node: never applied.
    Other(&'static str),
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self, Node::Dir { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Added,
    Modified,
    Deleted,
}

impl Kind {
    pub fn letter(self) -> char {
        match self {
            Kind::Added => 'A',
            Kind::Modified => 'M',
            Kind::Deleted => 'D',
        }
    }
}

/// One change, at `path` (relative to the overlaid directory). `node` is
/// the upper entry, or for a deletion what the host has there.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub path: PathBuf,
    pub kind: Kind,
    pub node: Node,
}

/// The host directory under an overlay, read beneath it without
/// following links.
pub struct HostDir {
    pub root: OwnedFd,
    pub shown: String,
}

/// What lstat says of a host path.
#[derive(Clone, Debug)]
pub struct HostStat {
    pub node: Node,
    pub ctime: super::Stamp,
    pub uid: u32,
    pub gid: u32,
}

fn node_of(mode: u32, size: u64) -> Node {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Node::File {
            mode: mode & 0o7777,
            size,
        },
        libc::S_IFDIR => Node::Dir {
            mode: mode & 0o7777,
            opaque: false,
        },
        libc::S_IFLNK => Node::Symlink(PathBuf::new()),
        libc::S_IFIFO => Node::Other("fifo"),
        libc::S_IFSOCK => Node::Other("socket"),
        _ => Node::Other("device node"),
    }
}

impl HostDir {
    pub fn open(path: &str) -> Result<HostDir> {
        let root = sys::open_path(path).map_err(|e| e.to_string())?;
        if !sys::is_dir_fd(&root) {
            return Err(format!("{path} is not a directory"));
        }
        Ok(HostDir {
            root,
            shown: path.to_string(),
        })
    }

    pub fn show(&self, rel: &Path) -> String {
        format!("{}/{}", self.shown.trim_end_matches('/'), rel.display())
    }

    /// Opens `rel` beneath the directory (never through a link).
    pub fn open_at(&self, rel: &Path, flags: libc::c_int) -> std::result::Result<OwnedFd, Errno> {
        sys::open_beneath_bytes(&self.root, rel.as_os_str().as_bytes(), flags)
    }

    /// The host's entry at `rel`; `None` when there is none (or a symlink
    /// or non-directory on the way makes it unreachable as a path).
    pub fn stat(&self, rel: &Path) -> Result<Option<HostStat>> {
        let fd = match self.open_at(rel, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", self.show(rel))),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd())
            .map_err(|e| format!("stat {}: {e}", self.show(rel)))?;
        let mut node = node_of(st.st_mode, st.st_size as u64);
        if let Node::Symlink(to) = &mut node {
            *to = self.readlink(rel)?;
        }
        Ok(Some(HostStat {
            node,
            uid: st.st_uid,
            gid: st.st_gid,
            ctime: super::Stamp {
                sec: st.st_ctime,
                nsec: st.st_ctime_nsec,
            },
        }))
    }

    fn readlink(&self, rel: &Path) -> Result<PathBuf> {
        let (parent, name) = split(rel);
        let dir = self
            .open_at(parent, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| format!("{}: {e}", self.show(parent)))?;
        nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)
            .map(PathBuf::from)
            .map_err(|e| format!("readlink {}: {e}", self.show(rel)))
    }

    /// The content of the regular file at `rel`.
    pub fn read(&self, rel: &Path) -> Result<Vec<u8>> {
        let fd = self
            .open_at(rel, libc::O_RDONLY | libc::O_NOFOLLOW)
            .map_err(|e| format!("open {}: {e}", self.show(rel)))?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut out)
            .map_err(|e| format!("read {}: {e}", self.show(rel)))?;
        Ok(out)
    }

    /// The names in the directory at `rel`.
    pub fn list(&self, rel: &Path) -> Result<Vec<OsString>> {
        let fd = self
            .open_at(rel, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| format!("open {}: {e}", self.show(rel)))?;
        let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
            .map_err(|e| format!("opendir {}: {e}", self.show(rel)))?;
        let mut names = Vec::new();
        for e in d.iter() {
            let e = e.map_err(|e| format!("readdir {}: {e}", self.show(rel)))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// ("a/b", "c") of "a/b/c"; ("", "c") of "c".
pub fn split(rel: &Path) -> (&Path, &OsStr) {
    (
        rel.parent().unwrap_or(Path::new("")),
        rel.file_name().unwrap_or(OsStr::new(".")),
    )
}

/// The value of the extended attribute `name` of `path` (not followed).
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of the given size.
    let len = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            n.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

/// The upper entry at `path`, as a node; whiteouts are `None`.
fn upper_node(path: &Path) -> Result<Option<Node>> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ft = meta.file_type();
    if ft.is_char_device() && meta.rdev() == 0 {
        return Ok(None);
    }
    for refused in [
        "user.overlay.redirect",
        "user.overlay.metacopy",
        "user.overlay.whiteout",
        "user.overlay.whiteouts",
    ] {
        if xattr(path, refused).is_some() {
            return Err(format!(
                "{}: has {refused}, which moksha's overlays never make: refusing the store",
                path.display()
            ));
        }
    }
    let mut node = node_of(meta.mode(), meta.size());
    match &mut node {
        Node::Symlink(to) => {
            *to = std::fs::read_link(path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        Node::Dir { opaque, .. } => {
            *opaque = xattr(path, "user.overlay.opaque").is_some_and(|v| v == b"y")
        }
        _ => {}
    }
    Ok(Some(node))
}

/// Whether the upper directory `dir` holds nothing (or is missing).
pub fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// Gives the owner access to every directory below `dir`, so it can be
/// removed (overlayfs leaves its work directory mode 0).
pub fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        make_removable(&e.path());
    }
}

/// Whether the host's file at `rel` has the content of the upper one.
fn same_content(host: &HostDir, rel: &Path, upper: &Path) -> Result<bool> {
    let theirs = std::fs::read(upper).map_err(|e| format!("{}: {e}", upper.display()))?;
    Ok(host.read(rel)? == theirs)
}

/// The changes in the upper directory `upper` over the host directory.
pub fn scan(upper: &Path, host: &HostDir) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), host, true, &mut out)?;
    Ok(out)
}

/// The entries of the upper directory `upper/rel`; `host_dir`: the host
/// has a directory at `rel` the upper one merges with.
fn walk(
    upper: &Path,
    rel: &Path,
    host: &HostDir,
    host_dir: bool,
    out: &mut Vec<Change>,
) -> Result<()> {
    let here = upper.join(rel);
    let mut names: Vec<OsString> = std::fs::read_dir(&here)
        .map_err(|e| format!("{}: {e}", here.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| format!("{}: {e}", here.display()))?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let path = upper.join(&rel);
        let theirs = if host_dir { host.stat(&rel)? } else { None };
        match (upper_node(&path)?, theirs) {
            // A whiteout of what the host has: deleted.
            (None, Some(h)) => out.push(Change {
                path: rel,
                kind: Kind::Deleted,
                node: h.node,
            }),
            (None, None) => {}
            (Some(node @ Node::Dir { .. }), theirs) => {
                let Node::Dir { mode, opaque } = node else {
                    unreachable!()
                };
                match theirs.map(|h| h.node) {
                    Some(Node::Dir { mode: hmode, .. }) => {
                        if opaque || mode != hmode {
                            out.push(Change {
                                path: rel.clone(),
                                kind: Kind::Modified,
                                node: node.clone(),
                            });
                        }
                        if opaque {
                            // What the host has there and the upper one does not: deleted.
                            for n in host.list(&rel)? {
                                if std::fs::symlink_metadata(path.join(&n)).is_err() {
                                    let r = rel.join(&n);
                                    if let Some(h) = host.stat(&r)? {
                                        out.push(Change {
                                            path: r,
                                            kind: Kind::Deleted,
                                            node: h.node,
                                        });
                                    }
                                }
                            }
                        }
                        walk(upper, &rel, host, true, out)?;
                    }
                    other => {
                        // Nothing there, or something that is not a directory.
                        let kind = if other.is_some() {
                            Kind::Modified
                        } else {
                            Kind::Added
                        };
                        out.push(Change {
                            path: rel.clone(),
                            kind,
                            node: node.clone(),
                        });
                        walk(upper, &rel, host, false, out)?;
                    }
                }
            }
            (Some(node), None) => out.push(Change {
                path: rel,
                kind: Kind::Added,
                node,
            }),
            (Some(node), Some(h)) => {
                let same = match (&node, &h.node) {
                    (Node::File { mode, size }, Node::File { mode: m2, size: s2 }) => {
                        mode == m2 && size == s2 && same_content(host, &rel, &path)?
                    }
                    (Node::Symlink(a), Node::Symlink(b)) => a == b,
                    _ => false,
                };
                if !same {
                    out.push(Change {
                        path: rel,
                        kind: Kind::Modified,
                        node,
                    });
                }
            }
        }
    }
    Ok(())
}
