//! `s.protect`: paths below a directory of the new root made read-only
//! and not creatable, found when the root is built (the tree is the
//! sandbox's to change between runs, so a list made by the profile would
//! be stale).
//!
//! Nothing here follows a symlink or leaves `under`: every lookup is
//! openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS from the directory, and a
//! walk reads at most `MAX_ENTRIES` directory entries (an error past that,
//! not a partial list: fail closed).
//!
//! - A path that exists is bound read-only onto itself (a detached clone,
//!   made read-only before it is attached): writes fail with EROFS, and as
//!   a mount point it cannot be renamed over or removed (EBUSY).
//! - Every directory between `under` and it is bound onto itself too,
//!   unchanged: renaming `.git` away and making a new `.git/hooks` beside
//!   it would otherwise escape the protection of `.git/hooks`.
//! - A literal path that does not exist gets a placeholder: an empty
//!   directory (mode 0555) at its first missing component, bound read-only
//!   like the rest. Landlock cannot say "anything but this name" and
//!   making the parent read-only would stop every other write, so the
//!   placeholder is the only way to keep a name from being created; it is
//!   made on the host (the bind is the host's directory) and removed
//!   again when a foreground sandbox ends (`launch::cleanup_placeholders`).
//!   Where setup may not create it (a directory the program may not write
//!   either), nothing is needed and nothing is made.

use crate::sys::{self, SysError, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

type SysResult<T> = std::result::Result<T, SysError>;

/// How many directory entries one `protect` step's globs may read.
pub const MAX_ENTRIES: usize = 100_000;
use crate::changes::PLACEHOLDER_MODE;
/// How deep `**` descends.
const MAX_DEPTH: usize = 32;

/// Whether a pattern component has glob syntax.
pub fn is_glob(component: &str) -> bool {
    component.contains(['*', '?', '['])
}

/// The components of a pattern, without empty and `.` ones.
fn components(p: &str) -> Vec<&str> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// The directories on the way to the relative `path`, outermost first
/// (`a`, `a/b` for `a/b/c`), without `path` itself.
pub(super) fn on_the_way(path: &str) -> Vec<String> {
    let parts = components(path);
    (1..parts.len()).map(|i| parts[..i].join("/")).collect()
}

/// What the globs of one step found, as paths relative to `under`.
#[derive(Debug, Default, PartialEq)]
pub struct Found {
    /// Paths that exist (not followed if symlinks).
    pub existing: Vec<String>,
    /// Literal patterns' first missing component.
    pub missing: Vec<String>,
}

struct Walk {
    entries: usize,
    under: String,
}

impl Walk {
    /// Entries of the directory `rel` (relative to `dir`), not `.`/`..`.
    fn list(&mut self, dir: &OwnedFd) -> SysResult<Vec<(String, bool)>> {
        let fd = sys::open_beneath(dir, ".", libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| SysError::new(format!("open({:?})", self.under), e))?;
        let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
            .map_err(|e| SysError::new(format!("opendir({:?})", self.under), e))?;
        let mut out = Vec::new();
        for entry in d.iter() {
            let entry =
                entry.map_err(|e| SysError::new(format!("readdir({:?})", self.under), e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return Err(SysError::new(
                    format!(
                        "protect under {}: the patterns read more than {MAX_ENTRIES} directory \
                         entries; name the directories more precisely (fewer **)",
                        self.under
                    ),
                    Errno::E2BIG,
                ));
            }
            // As a profile's text sees it (bytes that are not UTF-8 as
            // private-use characters, `arg`), to match and to open again.
            let (name, _) = crate::arg::to_text(std::ffi::OsStr::from_bytes(name));
            let is_dir = entry.file_type() == Some(nix::dir::Type::Directory);
            out.push((name, is_dir));
        }
        Ok(out)
    }

    /// Matches `pat` (components) at the directory `dir` (`rel` below under).
    fn matches(
        &mut self,
        dir: &OwnedFd,
        rel: &str,
        pat: &[&str],
        depth: usize,
        out: &mut Vec<String>,
    ) -> SysResult<()> {
        let Some((first, rest)) = pat.split_first() else {
            out.push(rel.to_string());
            return Ok(());
        };
        let join = |name: &str| {
            if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            }
        };
        if *first == "**" {
            // Zero directories, then one more level of any directory.
            self.matches(dir, rel, rest, depth, out)?;
            if depth >= MAX_DEPTH {
                return Ok(());
            }
            for (name, is_dir) in self.list(dir)? {
                // A repository's internals are named, not searched.
                if !is_dir || name == ".git" {
                    continue;
                }
                if let Ok(sub) = sys::open_beneath(dir, &name, libc::O_PATH | libc::O_DIRECTORY) {
                    self.matches(&sub, &join(&name), pat, depth + 1, out)?;
                }
            }
            return Ok(());
        }
        let names: Vec<String> = if is_glob(first) {
            let m = glob::Pattern::new(first).map_err(|e| {
                SysError::new(format!("protect pattern {first:?}: {e}"), Errno::EINVAL)
            })?;
            self.list(dir)?
                .into_iter()
                .filter(|(n, _)| m.matches(n))
                .map(|(n, _)| n)
                .collect()
        } else {
            vec![first.to_string()]
        };
        for name in names {
            if rest.is_empty() {
                match sys::open_beneath(dir, &name, libc::O_PATH | libc::O_NOFOLLOW) {
                    Ok(_) => out.push(join(&name)),
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(SysError::new(format!("open({:?})", join(&name)), e)),
                }
            } else {
                match sys::open_beneath(dir, &name, libc::O_PATH | libc::O_DIRECTORY) {
                    Ok(sub) => self.matches(&sub, &join(&name), rest, depth, out)?,
                    // Not there, not a directory, or a symlink: nothing below.
                    Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {}
                    Err(e) => return Err(SysError::new(format!("open({:?})", join(&name)), e)),
                }
            }
        }
        Ok(())
    }
}

/// Where the literal relative `path` below `dir` stops existing.
enum Ends {
    /// Every component is there.
    Whole,
    /// This prefix is the first missing component: a placeholder goes there.
    Missing(String),
    /// This prefix exists but is a file (the `.git` file of a worktree):
    /// nothing is below it, but the writable tree could replace it by a
    /// directory holding the path (or point it at another git directory),
    /// so the file is protected itself. Found in review.
    NotADirectory(String),
}

fn ends(dir: &OwnedFd, path: &str) -> SysResult<Ends> {
    let parts = components(path);
    for i in 1..=parts.len() {
        let rel = parts[..i].join("/");
        match sys::open_beneath(dir, &rel, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(_) => {}
            Err(Errno::ENOENT) => return Ok(Ends::Missing(rel)),
            Err(Errno::ENOTDIR) => return Ok(Ends::NotADirectory(parts[..i - 1].join("/"))),
            // A symlink: nothing is matched through it (see docs/workspace.md).
            Err(Errno::ELOOP) => return Ok(Ends::Whole),
            Err(e) => return Err(SysError::new(format!("open({rel:?})"), e)),
        }
    }
    Ok(Ends::Whole)
}

/// What `patterns` find below the directory `dir` (`under`, for messages).
pub fn find(dir: &OwnedFd, under: &str, patterns: &[String]) -> SysResult<Found> {
    let mut walk = Walk {
        entries: 0,
        under: under.to_string(),
    };
    let mut found = Found::default();
    for p in patterns {
        let pat = components(p);
        let mut hits = Vec::new();
        walk.matches(dir, "", &pat, 0, &mut hits)?;
        if hits.is_empty() && !pat.iter().any(|c| is_glob(c)) {
            match ends(dir, p)? {
                Ends::Whole => {}
                Ends::Missing(rel) => found.missing.push(rel),
                Ends::NotADirectory(rel) if !rel.is_empty() => found.existing.push(rel),
                Ends::NotADirectory(_) => {}
            }
        }
        found.existing.extend(hits);
    }
    found.existing.sort();
    found.existing.dedup();
    found.missing.sort();
    found.missing.dedup();
    Ok(found)
}

/// Binds the object at `rel` below `dir` onto itself with `attrs` set.
fn bind_onto_itself(dir: &OwnedFd, rel: &str, attrs: u64, shown: &str) -> SysResult<()> {
    let fd = sys::open_beneath(dir, rel, libc::O_PATH | libc::O_NOFOLLOW)
        .map_err(|e| SysError::new(format!("open({shown:?})"), e))?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())
        .map_err(|e| SysError::new(format!("stat({shown:?})"), e))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(SysError::new(
            format!("protect {shown}: it is a symlink, and a link cannot be made read-only"),
            Errno::ELOOP,
        )
        .hint("replace the link by what it points to, or leave it out of the patterns"));
    }
    // Through rootfs, so that kernels without the new mount API get it too.
    let tree = super::rootfs::detached(&fd, shown)?;
    super::rootfs::place(&tree, None, &fd, attrs, true, shown, shown)
}

/// Makes what `patterns` find below `dir` (the new root's `under`)
/// read-only and not creatable. Returns the placeholders made (relative).
pub fn apply(dir: &OwnedFd, under: &str, patterns: &[String]) -> SysResult<Vec<String>> {
    let shown = |rel: &str| format!("{}/{rel}", under.trim_end_matches('/'));
    let mut made = Vec::new();
    // Another sandbox's launcher may remove a placeholder between the walk
    // and the hold: walked again then (a few times; it is a short window).
    for _ in 0..8 {
        let found = find(dir, under, patterns)?;
        for rel in &found.missing {
            if make_placeholder(dir, rel, &shown(rel))? {
                made.push(rel.clone());
            }
        }
        let mut leaves: Vec<&String> = found.existing.iter().chain(&found.missing).collect();
        leaves.sort();
        leaves.dedup();
        // The directories on the way, outermost first, pinned as they are.
        let mut pins: Vec<String> = leaves.iter().flat_map(|l| on_the_way(l)).collect();
        pins.sort_by_key(|p| p.matches('/').count());
        pins.dedup();
        pins.retain(|p| !leaves.contains(&p));
        let mut gone = false;
        let mut held = Vec::new();
        for rel in pins.iter().chain(leaves.iter().copied()) {
            match hold(dir, rel, &shown(rel))? {
                Hold::Held => held.push(rel.clone()),
                Hold::Gone => gone = true,
                Hold::Other => {}
            }
        }
        if gone {
            continue;
        }
        const READ_ONLY: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        for pin in &pins {
            // Another sandbox's placeholder on the way (its `.git` where
            // ours is `.git/hooks`) is read-only here too: a pin keeps its
            // mode changeable, and chmod would open it.
            let attrs = if held.contains(pin) { READ_ONLY } else { 0 };
            bind_onto_itself(dir, pin, attrs, &shown(pin))?;
        }
        // Innermost last, so an outer read-only clone does not copy an inner one twice.
        for leaf in leaves {
            // A missing path nobody may create (no placeholder made): nothing to bind.
            let there = sys::open_beneath(dir, leaf, libc::O_PATH | libc::O_NOFOLLOW);
            if matches!(there, Err(Errno::ENOENT)) {
                continue;
            }
            bind_onto_itself(dir, leaf, READ_ONLY, &shown(leaf))?;
        }
        return Ok(made);
    }
    Err(SysError::new(
        format!("protect {under}: its placeholders were removed while the root was built, again and again"),
        Errno::EAGAIN,
    ))
}

/// Makes the placeholder for the missing `rel`; says whether it made one
/// (not when it appeared meanwhile, or when setup may not create it there:
/// then the program may not either).
fn make_placeholder(dir: &OwnedFd, rel: &str, shown: &str) -> SysResult<bool> {
    let parts = components(rel);
    let (name, parent) = parts.split_last().expect("a missing path has a component");
    let parent_fd = sys::open_beneath(dir, &parent.join("/"), libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| SysError::new(format!("open the directory of {shown:?}"), e))?;
    // Inside another sandbox's placeholder: that one is bound read-only
    // here, so nothing is creatable below it (and a placeholder inside it
    // could not be removed by its unprivileged launcher).
    if !parent.is_empty() && is_placeholder(dir, &parent.join("/")) {
        return Ok(false);
    }
    let c = std::ffi::CString::new(crate::arg::to_bytes(name))
        .map_err(|_| SysError::new(format!("protect {shown}: a NUL byte"), Errno::EINVAL))?;
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    let r = unsafe { libc::mkdirat(parent_fd.as_raw_fd(), c.as_ptr(), PLACEHOLDER_MODE) };
    match (r, Errno::last()) {
        (0, _) => Ok(true),
        (_, Errno::EACCES | Errno::EPERM | Errno::EROFS | Errno::EEXIST) => Ok(false),
        (_, e) => Err(SysError::new(format!("mkdir({shown:?})"), e)),
    }
}

/// Shared locks on the placeholders this sandbox's root relies on, its own
/// and other sandboxes', held by the supervisor (which builds the root)
/// until it exits. A launcher removes a placeholder only under an exclusive
/// lock: removing one in use would unmount this sandbox's read-only mount
/// of it (the kernel detaches a mount point deleted in another namespace)
/// and make the name creatable inside.
static HELD: std::sync::Mutex<Vec<OwnedFd>> = std::sync::Mutex::new(Vec::new());

#[derive(PartialEq)]
enum Hold {
    /// A placeholder, locked.
    Held,
    /// Something else (nothing to keep).
    Other,
    /// Removed before it was locked: walk again.
    Gone,
}

/// Takes a shared lock on `rel` if it is a placeholder (an empty directory
/// of PLACEHOLDER_MODE), waiting a little while a launcher holds it to
/// remove it. Not for ever: a sandbox could chmod a directory of its own
/// to that mode and hold an exclusive lock on it (found in review).
fn hold(dir: &OwnedFd, rel: &str, shown: &str) -> SysResult<Hold> {
    let fd = match sys::open_beneath(dir, rel, libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(Hold::Other),
        Err(Errno::ENOTDIR | Errno::ELOOP | Errno::EACCES) => return Ok(Hold::Other),
        Err(e) => return Err(SysError::new(format!("open({shown:?})"), e)),
    };
    let stat = |fd: &OwnedFd| {
        nix::sys::stat::fstat(fd.as_raw_fd())
            .map_err(|e| SysError::new(format!("stat({shown:?})"), e))
    };
    if !is_placeholder_fd(&fd) {
        return Ok(Hold::Other);
    }
    let mut tries = 0;
    while !sys::try_flock(&fd, false) {
        tries += 1;
        if tries > 200 {
            return Err(
                SysError::new(format!("flock({shown:?}, LOCK_SH)"), Errno::EWOULDBLOCK)
                    .hint("another process has held this placeholder locked for a second"),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    if stat(&fd)?.st_nlink == 0 {
        return Ok(Hold::Gone);
    }
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(fd);
    Ok(Hold::Held)
}

/// The placeholders a sandbox's protect steps may make on the host, found
/// before it starts (a literal pattern's first missing component), and
/// removed when the guard drops: an empty directory of PLACEHOLDER_MODE there then
/// is ours. Under an overlay, they are made in its upper directory.
#[derive(Default)]
pub struct Placeholders {
    /// (the host directory, the relative path) of each.
    candidates: Vec<(String, String)>,
    /// (a changes store, the path relative to its overlay) of those
    /// under an overlay.
    stores: Vec<(String, String)>,
}

impl Placeholders {
    /// The candidates of `plan`'s protect steps (none without a host
    /// directory under them).
    pub fn of(plan: &crate::plan::Plan) -> Placeholders {
        use crate::plan::validate::normalize;
        use crate::plan::FsOp;
        let mut candidates = Vec::new();
        let mut stores = Vec::new();
        for step in &plan.fs {
            let FsOp::Protect { under, patterns } = &step.op else {
                continue;
            };
            let under = normalize(under);
            // Under an overlay: the store, and `under` relative to its root.
            let mut in_store: Option<(String, String)> = None;
            let (lower, base) = match crate::plan::mounts::holder(plan, &under).map(|s| &s.op) {
                Some(FsOp::Bind { source, target, .. }) => {
                    let host = format!(
                        "{}{}",
                        source.trim_end_matches('/'),
                        &under[normalize(target).len()..]
                    );
                    (host.clone(), host)
                }
                Some(FsOp::Overlay {
                    source,
                    target,
                    store: Some(store),
                    ..
                }) => {
                    let rest = &under[normalize(target).len()..];
                    in_store = Some((store.clone(), rest.trim_start_matches('/').to_string()));
                    (
                        format!("{}{rest}", source.trim_end_matches('/')),
                        format!("{store}/upper{rest}"),
                    )
                }
                _ => continue,
            };
            let Ok(fd) = sys::open_path(&lower) else {
                continue;
            };
            for p in patterns
                .iter()
                .filter(|p| !components(p).iter().any(|c| is_glob(c)))
            {
                // Another sandbox's placeholders on the way, to remove once
                // nobody uses them (a detached sandbox leaves its own).
                let mut ways = on_the_way(p);
                ways.extend(Some(components(p).join("/")).filter(|w| !w.is_empty()));
                for rel in ways {
                    if in_store.is_none() && is_placeholder(&fd, &rel) {
                        candidates.push((base.clone(), rel));
                    }
                }
                if let Ok(Ends::Missing(rel)) = ends(&fd, p) {
                    if let Some((store, rest)) = &in_store {
                        let path = if rest.is_empty() {
                            rel.clone()
                        } else {
                            format!("{rest}/{rel}")
                        };
                        stores.push((store.clone(), path));
                    }
                    candidates.push((base.clone(), rel));
                }
            }
        }
        // Deepest first: a placeholder inside another goes before it.
        candidates.sort_by_key(|(_, rel)| std::cmp::Reverse(rel.matches('/').count()));
        candidates.dedup();
        Placeholders { candidates, stores }
    }

    /// Whether there are any (the launcher then waits until the supervisor,
    /// which holds their locks, is gone).
    pub fn any(&self) -> bool {
        !self.candidates.is_empty()
    }

    /// Tells each overlay's store where placeholders may appear in it (a
    /// detached sandbox's stay: they are not changes to commit).
    pub fn record_in_stores(&self) -> Result<(), String> {
        // One manifest write per store, however many paths it gets.
        let mut by_store: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (store, path) in &self.stores {
            by_store.entry(store).or_default().push(path.clone());
        }
        for (store, paths) in by_store {
            let dir = std::path::PathBuf::from(store);
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::changes::Store { name, dir }.add_placeholders(&paths)?;
        }
        Ok(())
    }

    /// Keeps them (a detached sandbox outlives the launcher).
    pub fn release(mut self) {
        self.candidates.clear();
    }
}

impl Drop for Placeholders {
    fn drop(&mut self) {
        for (base, rel) in &self.candidates {
            let Ok(dir) = sys::open_path(base) else {
                continue;
            };
            remove_placeholder(&dir, rel);
        }
    }
}

/// Whether `rel` below `dir` is a placeholder: an empty directory of
/// PLACEHOLDER_MODE.
fn is_placeholder(dir: &OwnedFd, rel: &str) -> bool {
    sys::open_beneath(dir, rel, libc::O_RDONLY | libc::O_DIRECTORY)
        .is_ok_and(|fd| is_placeholder_fd(&fd))
}

/// `is_placeholder` for the directory open (O_RDONLY) at `fd`.
fn is_placeholder_fd(fd: &OwnedFd) -> bool {
    let ours = nix::sys::stat::fstat(fd.as_raw_fd())
        .is_ok_and(|st| st.st_mode & 0o7777 == PLACEHOLDER_MODE && st.st_nlink <= 2);
    ours && is_empty(fd)
}

/// Whether the directory open at `fd` has no entries but `.` and `..`.
fn is_empty(fd: &OwnedFd) -> bool {
    let Ok(dup) = fd.try_clone() else {
        return false;
    };
    let Ok(mut d) = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup)) else {
        return false;
    };
    let empty = d
        .iter()
        .flatten()
        .all(|e| matches!(e.file_name().to_bytes(), b"." | b".."));
    empty
}

/// Removes the placeholder `rel` below `dir` unless a sandbox holds it
/// (its shared lock, `HELD`) or it is not one (rmdir refuses a directory
/// with anything in it; the mode tells ours).
fn remove_placeholder(dir: &OwnedFd, rel: &str) {
    let parts = components(rel);
    let Some((name, parent)) = parts.split_last() else {
        return;
    };
    let Ok(parent) = sys::open_beneath(dir, &parent.join("/"), libc::O_PATH | libc::O_DIRECTORY)
    else {
        return;
    };
    let Ok(fd) = sys::open_beneath(&parent, name, libc::O_RDONLY | libc::O_DIRECTORY) else {
        return;
    };
    let Ok(st) = nix::sys::stat::fstat(fd.as_raw_fd()) else {
        return;
    };
    if st.st_mode & 0o7777 != PLACEHOLDER_MODE || !sys::try_flock(&fd, true) {
        return;
    }
    // Still the directory locked (not one renamed there meanwhile).
    let name = crate::arg::to_path(name);
    let same = nix::sys::stat::fstatat(
        Some(parent.as_raw_fd()),
        &name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok_and(|now| (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino));
    if same {
        let _ = nix::unistd::unlinkat(
            Some(parent.as_raw_fd()),
            &name,
            nix::unistd::UnlinkatFlags::RemoveDir,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_relative_globs_without_dotdot() {
        use crate::plan::validate::check_protect_pattern as check;
        assert!(check(".git/hooks").is_ok());
        assert!(check("**/.git/hooks").is_ok());
        assert!(check("/etc").unwrap_err().contains("absolute"));
        assert!(check("a/../b").unwrap_err().contains(".."));
        assert!(check("").is_err());
        assert!(check("[").is_err());
    }

    #[test]
    fn globs_find_what_exists_and_the_first_missing_part_of_literals() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join(".git/hooks")).unwrap();
        std::fs::create_dir_all(d.join("sub/.git/hooks")).unwrap();
        std::fs::create_dir_all(d.join("sub/.git/x/.git/hooks")).unwrap();
        std::fs::write(d.join(".git/config"), "").unwrap();
        std::fs::create_dir_all(d.join("out")).unwrap();
        // A worktree's .git is a file: protected itself.
        std::fs::create_dir_all(d.join("wt")).unwrap();
        std::fs::write(d.join("wt/.git"), "gitdir: ../.git/worktrees/wt\n").unwrap();
        // A link out of the tree is neither followed nor matched through.
        std::os::unix::fs::symlink("/etc", d.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("out/.envrc")).unwrap();
        let fd = sys::open_path(d.to_str().unwrap()).unwrap();
        let pats: Vec<String> = [
            "**/.git/hooks",
            ".git/config",
            ".envrc",
            ".vscode/tasks.json",
            "link/passwd",
            "*/.envrc",
            "wt/.git/hooks",
        ]
        .map(String::from)
        .to_vec();
        let f = find(&fd, "/p", &pats).unwrap();
        assert_eq!(
            f.existing,
            [
                ".git/config",
                ".git/hooks",
                "out/.envrc",
                "sub/.git/hooks",
                "wt/.git"
            ]
        );
        assert_eq!(f.missing, [".envrc", ".vscode"]);
    }
}
