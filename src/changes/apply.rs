//! `moksha commit`: the store's changes applied to the host directory,
//! all or those below the given paths.
//!
//! First every change is checked against the host as it is now: a file
//! the sandbox changed that the host changed too since the sandbox
//! started (its ctime is later than the store's start, and not the
//! stamp our own earlier commit left), a path the sandbox added that the
//! host has since created, are conflicts, and nothing is applied while
//! there is one (no lost update). Then each change is applied:
//! files and symlinks are made under a temporary name in their directory
//! and renamed over what is there (a reader sees the old or the new one,
//! never half); directories are made or get their mode; deletions remove
//! the host's tree. Every host lookup is beneath the directory without
//! following a symlink; a symlink of the sandbox's is made as a symlink,
//! never written through. Modes keep the owner's bits and the sticky bit;
//! group and others get only what the host's object gave them already (or,
//! for a new one, what the committer's umask allows): a sandbox cannot open
//! the user's files to other users with a chmod. setuid and setgid bits are
//! dropped (the sandbox made those files).

use super::scan::{self, Change, HostDir, Kind, Node};
use super::{Result, Stamp, Store};
use nix::errno::Errno;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The mode bits a commit keeps.
const KEPT_MODE: u32 = 0o1777;

/// The mode a commit gives an object the sandbox left with `mode`: its
/// owner's bits and the sticky bit, and for group and others only what the
/// object had on the host (`before`), or what `umask` leaves a new one:
/// read, write and execute alike (found in review: a 0600 key came back 0644).
fn granted(mode: u32, before: Option<u32>, umask: u32) -> u32 {
    let others = before.unwrap_or(0o777 & !umask) & 0o077;
    mode & KEPT_MODE & (0o1700 | others)
}

/// What a commit did.
#[derive(Debug, Default)]
pub struct Summary {
    pub applied: Vec<Change>,
}

/// The relative paths `paths` (relative to the overlaid directory, or
/// absolute inside it as the sandbox or the host sees it) name.
pub fn selection(m: &super::Manifest, paths: &[String]) -> Result<Vec<PathBuf>> {
    use crate::plan::validate::normalize;
    paths
        .iter()
        .map(|p| {
            if p.split('/').any(|c| c == "..") {
                return Err(format!("{p}: a path with '..' is refused"));
            }
            let rel = if p.starts_with('/') {
                let n = normalize(p);
                [&m.target, &m.source]
                    .iter()
                    .find_map(|d| {
                        let d = normalize(d);
                        crate::plan::validate::within(&n, &d)
                            .then(|| n[d.len()..].trim_start_matches('/').to_string())
                    })
                    .ok_or_else(|| format!("{p} is not inside {} ({})", m.target, m.source))?
            } else {
                normalize(p).trim_start_matches('/').to_string()
            };
            Ok(PathBuf::from(rel))
        })
        .collect()
}

/// The changes `sel` selects (all when empty); each selection must name
/// at least one.
pub fn select(changes: Vec<Change>, sel: &[PathBuf]) -> Result<Vec<Change>> {
    if sel.is_empty() {
        return Ok(changes);
    }
    for s in sel {
        if !changes.iter().any(|c| c.path.starts_with(s)) {
            return Err(format!("nothing changed at {}", s.display()));
        }
    }
    // What is below a selected path, and the directories that hold it
    // when they are new (they must be made first).
    let wanted = |c: &Change| sel.iter().any(|s| c.path.starts_with(s));
    let needed = |c: &Change| {
        c.node.is_dir() && c.kind != Kind::Deleted && sel.iter().any(|s| s.starts_with(&c.path))
    };
    Ok(changes
        .into_iter()
        .filter(|c| wanted(c) || needed(c))
        .collect())
}

/// Whether the host's entry changed since `m.started` (or since our own
/// commit of it).
fn changed_since(m: &super::Manifest, rel: &Path, ctime: Stamp) -> bool {
    if m.committed.get(&rel.to_string_lossy().into_owned()) == Some(&ctime) {
        return false;
    }
    ctime >= m.started
}

/// Every conflict of `changes` with the host as it is now.
pub fn conflicts(m: &super::Manifest, host: &HostDir, changes: &[Change]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in changes {
        let show = c.path.display();
        if let Node::Other(what) = &c.node {
            if c.kind != Kind::Deleted {
                out.push(format!("{show}: a {what}, which a commit does not make"));
                continue;
            }
        }
        let now = host.stat(&c.path)?;
        match (c.kind, now) {
            (Kind::Added, Some(_)) => out.push(format!("{show}: created on the host since")),
            (Kind::Added, None) => {}
            (Kind::Modified, None) => out.push(format!("{show}: removed on the host since")),
            (Kind::Modified, Some(h)) => {
                // A directory of both merges: only its own mode is applied,
                // which entries added on the host do not conflict with.
                let merged = h.node.is_dir() && c.node.is_dir();
                if !merged && changed_since(m, &c.path, h.ctime) {
                    out.push(format!("{show}: changed on the host since"));
                }
                if merged && matches!(c.node, Node::Dir { opaque: true, .. }) {
                    tree_conflicts(m, host, &c.path, true, &mut out)?;
                }
            }
            (Kind::Deleted, None) => {}
            (Kind::Deleted, Some(h)) => {
                if changed_since(m, &c.path, h.ctime) {
                    out.push(format!("{show}: changed on the host since"));
                } else if h.node.is_dir() {
                    tree_conflicts(m, host, &c.path, false, &mut out)?;
                }
            }
        }
    }
    Ok(out)
}

/// Conflicts anywhere in the host's tree at `rel` (to be removed or
/// replaced): anything in it changed since the start. `top`: the tree's
/// own directory is not checked (merged).
fn tree_conflicts(
    m: &super::Manifest,
    host: &HostDir,
    rel: &Path,
    top: bool,
    out: &mut Vec<String>,
) -> Result<()> {
    let Some(h) = host.stat(rel)? else {
        return Ok(());
    };
    if !top && changed_since(m, rel, h.ctime) {
        out.push(format!("{}: changed on the host since", rel.display()));
        return Ok(());
    }
    if h.node.is_dir() {
        for n in host.list(rel)? {
            tree_conflicts(m, host, &rel.join(n), false, out)?;
        }
    }
    Ok(())
}

fn cstr(name: &OsStr) -> Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| "a name with a NUL byte".to_string())
}

fn fail(what: &str, host: &HostDir, rel: &Path, e: Errno) -> String {
    format!("{what} {}: {e}", host.show(rel))
}

/// The host directory holding `rel`, opened beneath without links.
fn parent_dir(host: &HostDir, rel: &Path) -> Result<(OwnedFd, CString)> {
    let (parent, name) = scan::split(rel);
    let dir = host
        .open_at(parent, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| fail("open", host, parent, e))?;
    Ok((dir, cstr(name)?))
}

/// Removes whatever the host has at `rel` (a tree, a file, a link).
fn remove(host: &HostDir, rel: &Path) -> Result<()> {
    let Some(h) = host.stat(rel)? else {
        return Ok(());
    };
    if h.node.is_dir() {
        for n in host.list(rel)? {
            remove(host, &rel.join(n))?;
        }
    }
    let (dir, name) = parent_dir(host, rel)?;
    let flags = if h.node.is_dir() {
        libc::AT_REMOVEDIR
    } else {
        0
    };
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) } < 0 {
        return Err(fail("remove", host, rel, Errno::last()));
    }
    Ok(())
}

/// A name in `dir` for a file being made.
fn temp_name(name: &CString, n: u32) -> CString {
    let mut bytes = b".moksha-commit-".to_vec();
    bytes.extend(format!("{}-{n}-", std::process::id()).as_bytes());
    bytes.extend(name.as_bytes().iter().take(100));
    CString::new(bytes).expect("no NUL")
}

/// Puts what is made at `tmp` in `dir` at `name`, over what is there
/// (a directory there is removed first: a file replaced it). What
/// replaces a file keeps its owner when we may give it (run by root).
fn put(host: &HostDir, rel: &Path, dir: &OwnedFd, tmp: &CString, name: &CString) -> Result<()> {
    match host.stat(rel)? {
        Some(h) if h.node.is_dir() => remove(host, rel)?,
        Some(h) => {
            // SAFETY: a valid directory descriptor and a NUL-terminated name.
            unsafe {
                libc::fchownat(
                    dir.as_raw_fd(),
                    tmp.as_ptr(),
                    h.uid,
                    h.gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
        }
        None => {}
    }
    // SAFETY: valid directory descriptors and NUL-terminated names.
    let r = unsafe {
        libc::renameat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
        )
    };
    if r < 0 {
        let e = Errno::last();
        // SAFETY: as above.
        unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
        return Err(fail("rename into", host, rel, e));
    }
    Ok(())
}

/// Applies one change; `upper` is the store's upper directory.
fn apply_one(host: &HostDir, upper: &Path, c: &Change, n: u32, umask: u32) -> Result<()> {
    let rel = &c.path;
    if c.kind == Kind::Deleted {
        return remove(host, rel);
    }
    let before = host.stat(rel)?.and_then(|h| match h.node {
        Node::File { mode, .. } | Node::Dir { mode, .. } => Some(mode),
        _ => None,
    });
    let (dir, name) = parent_dir(host, rel)?;
    let from = upper.join(rel);
    match &c.node {
        Node::Dir { mode, .. } => {
            let there = host.stat(rel)?;
            if there.as_ref().is_some_and(|h| !h.node.is_dir()) {
                remove(host, rel)?;
            }
            if !there.is_some_and(|h| h.node.is_dir()) {
                // SAFETY: a valid directory descriptor and a NUL-terminated name.
                if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o700) } < 0 {
                    return Err(fail("mkdir", host, rel, Errno::last()));
                }
            }
            let fd = host
                .open_at(rel, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| fail("open", host, rel, e))?;
            nix::sys::stat::fchmod(
                fd.as_raw_fd(),
                nix::sys::stat::Mode::from_bits_truncate(granted(*mode, before, umask)),
            )
            .map_err(|e| fail("chmod", host, rel, e))
        }
        Node::Symlink(to) => {
            let tmp = temp_name(&name, n);
            let to = cstr(to.as_os_str())?;
            // SAFETY: valid NUL-terminated strings and a directory descriptor.
            if unsafe { libc::symlinkat(to.as_ptr(), dir.as_raw_fd(), tmp.as_ptr()) } < 0 {
                return Err(fail("symlink", host, rel, Errno::last()));
            }
            put(host, rel, &dir, &tmp, &name)
        }
        Node::File { mode, .. } => {
            let tmp = temp_name(&name, n);
            let src = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&from)
                .map_err(|e| format!("open {}: {e}", from.display()))?;
            use std::os::unix::fs::OpenOptionsExt;
            // SAFETY: a valid directory descriptor and a NUL-terminated name.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    tmp.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o600,
                )
            };
            if fd < 0 {
                return Err(fail("create a file beside", host, rel, Errno::last()));
            }
            // SAFETY: fd was just returned by openat and is owned by nobody else.
            let mut out = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let copied = std::io::copy(&mut &src, &mut out)
                .map_err(|e| format!("copy {} to {}: {e}", from.display(), host.show(rel)))
                .and_then(|_| {
                    let meta = src.metadata().map_err(|e| e.to_string())?;
                    nix::sys::stat::fchmod(
                        out.as_raw_fd(),
                        nix::sys::stat::Mode::from_bits_truncate(granted(*mode, before, umask)),
                    )
                    .map_err(|e| fail("chmod", host, rel, e))?;
                    // The sandbox's modification time (make and friends look at it).
                    use std::os::unix::fs::MetadataExt;
                    let times = [
                        nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec()),
                        nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
                    ];
                    nix::sys::stat::futimens(out.as_raw_fd(), &times[0], &times[1])
                        .map_err(|e| fail("set times of", host, rel, e))
                });
            drop(out);
            if let Err(e) = copied {
                // SAFETY: as above.
                unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
                return Err(e);
            }
            put(host, rel, &dir, &tmp, &name)
        }
        Node::Other(what) => Err(format!("{}: a {what} is not applied", rel.display())),
    }
}

/// Commits the store's changes below `paths` (all when empty). A whole
/// commit removes the store; a partial one keeps it, with the stamps of
/// what it wrote.
pub fn commit(store: &Store, paths: &[String]) -> Result<Summary> {
    store.manifest()?; // "no changes named ..." before the lock is made
    let lock = store.lock()?;
    let mut m = store.manifest()?;
    let host = HostDir::open(&m.source)?;
    let all = store.scan(&m, &host)?;
    let sel = selection(&m, paths)?;
    let changes = select(all, &sel)?;
    let conflicts = conflicts(&m, &host, &changes)?;
    if !conflicts.is_empty() {
        return Err(format!(
            "nothing committed: the host changed since the sandbox started, so the sandbox's \
             version would overwrite that change:\n  {}\n(commit the other paths by name, or \
             `moksha discard {}` the changes)",
            conflicts.join("\n  "),
            store.name
        ));
    }
    let umask = crate::sys::umask(0o077);
    crate::sys::umask(umask);
    for (n, c) in changes.iter().enumerate() {
        apply_one(&host, &store.upper(), c, n as u32, umask)?;
    }
    if sel.is_empty() {
        store.remove(&lock)?;
    } else {
        for c in &changes {
            if let Some(h) = host.stat(&c.path)? {
                m.committed
                    .insert(c.path.to_string_lossy().into_owned(), h.ctime);
            }
        }
        store.write_manifest(&m)?;
    }
    Ok(Summary { applied: changes })
}

/// Throws the store away.
pub fn discard(store: &Store) -> Result<()> {
    store.manifest()?;
    let lock = store.lock()?;
    store.remove(&lock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Manifest;

    fn manifest(started: Stamp) -> Manifest {
        Manifest {
            source: "/srv/proj".into(),
            target: "/proj".into(),
            started,
            committed: Default::default(),
            placeholders: Vec::new(),
        }
    }

    #[test]
    fn a_commit_gives_no_write_to_others_the_host_did_not() {
        assert_eq!(granted(0o777, Some(0o755), 0o022), 0o755);
        assert_eq!(granted(0o666, Some(0o664), 0o022), 0o664);
        assert_eq!(granted(0o755, Some(0o644), 0o022), 0o744);
        assert_eq!(granted(0o755, Some(0o755), 0o022), 0o755);
        assert_eq!(granted(0o644, Some(0o600), 0o022), 0o600);
        assert_eq!(granted(0o600, Some(0o666), 0o022), 0o600);
        assert_eq!(granted(0o4777, None, 0o022), 0o755);
        assert_eq!(granted(0o1777, None, 0o002), 0o1775);
        assert_eq!(granted(0o666, None, 0o000), 0o666);
        assert_eq!(granted(0o644, None, 0o077), 0o600);
    }

    #[test]
    fn paths_are_relative_to_the_directory_as_either_side_sees_it() {
        let m = manifest(Stamp::default());
        let got = selection(
            &m,
            &["/proj/a/b".into(), "/srv/proj/c".into(), "d/./e/".into()],
        )
        .unwrap();
        assert_eq!(got, [PathBuf::from("a/b"), "c".into(), "d/e".into()]);
        assert!(selection(&m, &["/etc/passwd".into()])
            .unwrap_err()
            .contains("not inside"));
        assert!(selection(&m, &["a/../../x".into()])
            .unwrap_err()
            .contains(".."));
    }

    #[test]
    fn a_selection_takes_what_is_below_it_and_the_new_directories_above() {
        let change = |p: &str, kind, node| Change {
            path: p.into(),
            kind,
            node,
        };
        let dir = Node::Dir {
            mode: 0o755,
            opaque: false,
        };
        let file = Node::File {
            mode: 0o644,
            size: 1,
        };
        let all = vec![
            change("new", Kind::Added, dir.clone()),
            change("new/a", Kind::Added, file.clone()),
            change("new/b", Kind::Added, file.clone()),
            change("x", Kind::Modified, file.clone()),
        ];
        let got = select(all.clone(), &["new/a".into()]).unwrap();
        let paths: Vec<&Path> = got.iter().map(|c| c.path.as_path()).collect();
        assert_eq!(paths, [Path::new("new"), Path::new("new/a")]);
        assert_eq!(select(all.clone(), &[]).unwrap(), all);
        assert!(select(all, &["nope".into()])
            .unwrap_err()
            .contains("nothing changed at nope"));
    }

    #[test]
    fn a_host_file_changed_after_the_start_is_a_conflict_unless_we_wrote_it() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("old"), "o").unwrap();
        let mut m = manifest(Stamp::now());
        std::fs::write(t.path().join("new"), "n").unwrap();
        let host = HostDir::open(t.path().to_str().unwrap()).unwrap();
        let file = Node::File {
            mode: 0o644,
            size: 1,
        };
        let changes: Vec<Change> = ["old", "new", "gone"]
            .iter()
            .map(|p| Change {
                path: (*p).into(),
                kind: Kind::Modified,
                node: file.clone(),
            })
            .collect();
        // (A file written within the same tick as the start counts as changed.)
        let got = conflicts(&m, &host, &changes).unwrap();
        assert!(
            got.contains(&"new: changed on the host since".to_string()),
            "{got:?}"
        );
        assert!(
            got.contains(&"gone: removed on the host since".to_string()),
            "{got:?}"
        );
        let ctime = host.stat(Path::new("new")).unwrap().unwrap().ctime;
        m.committed.insert("new".into(), ctime);
        let got = conflicts(&m, &host, &changes[1..2]).unwrap();
        assert!(got.is_empty(), "{got:?}");
    }
}
