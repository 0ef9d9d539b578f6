//! Instances on disk, per user, without a daemon.
//!
//! Each instance NAME has, in the user's state directory:
//! - `NAME.lock`: held (flock) by the sandbox's supervisor for as long as it
//!   lives — the kernel releases it when the supervisor dies, however it
//!   dies, so liveness never depends on a pid. The supervisor writes
//!   `exit N` into it when the program ends. Taking the lock is also how
//!   exactly one of two launches with the same name wins.
//! - `NAME.json`: the record (profile, pids, start times, namespaces, logs,
//!   the plan), written atomically, mode 0600.
//! - `NAME.out`, `NAME.err`: the program's output when detached.
//!
//! An instance that ended keeps its files (record, exit code, logs) until
//! `moksha rm NAME` or `moksha ps --prune` forgets it, or a new launch of
//! the same name replaces it; a foreground run that ends normally removes
//! its own (its status went to its caller, its output to the terminal).
//!
//! Nothing here trusts a record alone: a pid is used only while the lock is
//! held and the process still has the recorded start time, owner and
//! namespaces.

use crate::plan::{Namespace, Plan};
use crate::sys;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Namespaces recorded for an instance: the supervisor's (not the time
/// namespace, which only its children enter).
pub fn recorded() -> impl Iterator<Item = Namespace> {
    Namespace::ALL.into_iter().filter(|n| *n != Namespace::Time)
}

/// `P` is the plan as held: owned when read, borrowed when written (the
/// launcher writes the plan it runs without a copy of it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Record<P = Plan> {
    pub name: String,
    pub profile: String,
    pub uid: u32,
    /// Host pid of the supervisor (PID 1 inside) and its start time in
    /// clock ticks since boot (/proc/PID/stat field 22).
    pub supervisor_pid: i32,
    pub supervisor_start: u64,
    /// Host pid of the program, and its start time.
    pub program_pid: i32,
    pub program_start: u64,
    /// Namespace inode numbers of the supervisor, by name.
    pub namespaces: Vec<(String, u64)>,
    /// Seconds since the epoch.
    pub started_at: u64,
    pub detached: bool,
    pub stdout_log: Option<String>,
    pub stderr_log: Option<String>,
    pub plan: P,
}

/// Why an instance cannot be used.
pub type Result<T> = std::result::Result<T, String>;

pub mod denials;
mod dir;
pub use dir::state_dir;

/// Instance names: what a file name can safely be.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "instance name {name:?} must be 1 to 64 characters: letters, digits, '-', '_' or '.', not starting with '.'"
        ))
    }
}

/// A short random id for default instance names.
pub fn short_id() -> String {
    let mut buf = [0u8; 3];
    let _ = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn path(dir: &Path, name: &str, ext: &str) -> PathBuf {
    dir.join(format!("{name}.{ext}"))
}

/// Creates a file in the state dir, private; fails if it exists.
fn open_new_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens a file in the state dir without following symlinks, private.
pub(crate) fn open_private(path: &Path, write: bool, append: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write && !append)
        .append(append)
        .create(write)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The launcher's hold on a name: the locked lock file. The sandbox's
/// supervisor inherits it and keeps the name taken while it lives.
pub struct Claim {
    pub dir: PathBuf,
    pub name: String,
    pub lock: File,
    committed: bool,
    /// The instance's files besides the lock this launch may have made
    /// (extensions): all that is left to remove when it ends, as a previous
    /// instance's were removed when the name was taken.
    made: std::cell::RefCell<Vec<&'static str>>,
}

impl Claim {
    /// Takes the name, or says that an instance of that name runs.
    pub fn take(name: &str) -> Result<Claim> {
        check_name(name)?;
        let dir = state_dir()?;
        let lock_path = path(&dir, name, "lock");
        // A lock file made now: no instance had the name, and none left
        // files (an instance's lock file is removed last, after the others).
        let created = open_new_private(&lock_path);
        let fresh = created.is_ok();
        let lock = created
            .or_else(|_| open_private(&lock_path, true, false))
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        if !sys::try_flock(&lock, true) {
            return Err(format!(
                "an instance named {name:?} is already running (see `moksha ps`; stop it with `moksha stop {name}`)"
            ));
        }
        if !fresh {
            // A previous instance's leftovers: its lock is free, so it is dead.
            let _ = lock.set_len(0);
            for ext in ["json", "out", "err", "net"] {
                let _ = std::fs::remove_file(path(&dir, name, ext));
            }
        }
        Ok(Claim {
            dir,
            name: name.to_string(),
            lock,
            committed: false,
            made: Default::default(),
        })
    }

    /// Notes a file of the instance's that this launch may make.
    fn may_make(&self, ext: &'static str) {
        let mut made = self.made.borrow_mut();
        if !made.contains(&ext) {
            made.push(ext);
        }
    }

    /// The log files for a detached instance (stdout, stderr).
    pub fn open_logs(&self) -> Result<(File, File, PathBuf, PathBuf)> {
        self.may_make("out");
        self.may_make("err");
        let out = path(&self.dir, &self.name, "out");
        let err = path(&self.dir, &self.name, "err");
        let open = |p: &Path| {
            open_private(p, true, true).map_err(|e| format!("cannot create {}: {e}", p.display()))
        };
        Ok((open(&out)?, open(&err)?, out, err))
    }

    /// The instance's network log: every decision of its egress proxy.
    pub fn net_log(&self) -> PathBuf {
        self.may_make("net");
        net_log_path(&self.dir, &self.name)
    }

    /// Writes the record atomically (temporary file, then rename).
    pub fn write_record(&self, record: &Record<&Plan>) -> Result<()> {
        self.may_make("json");
        let tmp = self.dir.join(format!(".{}.json.tmp", self.name));
        let text = serde_json::to_string(record).map_err(|e| e.to_string())?;
        // (A temporary file left by a launch that died while writing it
        // is replaced.)
        let mut file = open_new_private(&tmp)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    let _ = std::fs::remove_file(&tmp);
                    open_new_private(&tmp)
                }
                _ => Err(e),
            })
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        // No fsync: runtime state need not survive a crash (the lock
        // says what runs), and the rename alone is atomic.
        file.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path(&self.dir, &self.name, "json"))
            .map_err(|e| format!("cannot rename {}: {e}", tmp.display()))
    }

    /// Keeps the instance's files when the claim is dropped: a detached
    /// sandbox's supervisor holds the lock from here on.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Claim {
    /// Removes every file of the instance (a foreground run that ended, or
    /// a launch that failed), unless committed: those it may have made,
    /// then the lock.
    fn drop(&mut self) {
        if !self.committed {
            for ext in self.made.borrow().iter() {
                let _ = std::fs::remove_file(path(&self.dir, &self.name, ext));
            }
            let _ = std::fs::remove_file(path(&self.dir, &self.name, "lock"));
        }
    }
}

fn remove_files(dir: &Path, name: &str) {
    for ext in ["json", "out", "err", "net", "lock"] {
        let _ = std::fs::remove_file(path(dir, name, ext));
    }
}

/// Writes the program's exit code into the lock file (by the supervisor).
pub fn record_exit(lock: &File, code: i32) {
    let mut f = lock;
    let _ = f.rewind();
    let _ = f.write_all(format!("exit {code}\n").as_bytes());
}

/// Start time of a process in clock ticks since boot, from /proc/PID/stat.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let field = sys::stat_fields(&stat)?.nth(19)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Inode of one of a process's namespaces.
pub fn ns_inode(pid: i32, ns: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// Real uid of a process.
fn proc_uid(pid: i32) -> Option<u32> {
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

/// What is known of an instance found on disk.
#[derive(Debug)]
pub enum Status {
    /// Its supervisor lives and matches the record.
    Running(Record),
    /// The supervisor is gone. The record is `None` when it is missing or
    /// unusable.
    Ended(Option<Record>, Ending),
    /// The files are unusable: corrupt, truncated, crafted or not matching
    /// the process they name. The reason says which.
    Invalid(String),
    /// Its lock is held and it has no record yet: a launch still setting
    /// up, or a foreground sandbox nobody named in its first moments (its
    /// record is written once it has run for a while: launch/mod.rs).
    Starting,
}

/// How an instance ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ending {
    /// The program's exit code, written by the supervisor; `None` when the
    /// supervisor died without writing one (killed).
    pub code: Option<i32>,
    /// When the code was written (seconds since the epoch).
    pub at: Option<u64>,
}

/// Reads and checks one instance.
pub fn inspect(dir: &Path, name: &str) -> Status {
    let record = read_record(dir, name);
    let killed = Ending {
        code: None,
        at: None,
    };
    // No lock file: nothing can be running under this name.
    let Ok(lock) = open_private(&path(dir, name, "lock"), false, false) else {
        return Status::Ended(record.ok().flatten(), killed);
    };
    // If we can take the lock, nobody holds it: the supervisor is gone.
    if sys::try_flock(&lock, false) {
        let mut text = String::new();
        let _ = (&lock).read_to_string(&mut text);
        let code = text
            .trim()
            .strip_prefix("exit ")
            .and_then(|c| c.parse().ok());
        // The supervisor's write of the code is the lock file's last change.
        let at = code
            .and(lock.metadata().ok())
            .and_then(|m| u64::try_from(m.mtime()).ok());
        return Status::Ended(record.ok().flatten(), Ending { code, at });
    }
    let record = match record {
        Ok(Some(r)) => r,
        // A launch still starting has a held lock and no record yet.
        Ok(None) => return Status::Starting,
        Err(e) => return Status::Invalid(e),
    };
    match verify(&record) {
        Ok(()) => Status::Running(record),
        Err(e) => Status::Invalid(e),
    }
}

/// The record of `name`; `None` when there is none (no file of that name).
fn read_record(dir: &Path, name: &str) -> Result<Option<Record>> {
    let p = path(dir, name, "json");
    let mut text = String::new();
    match open_private(&p, false, false).and_then(|mut f| f.read_to_string(&mut text)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", p.display())),
        Ok(_) => {}
    }
    let record: Record =
        serde_json::from_str(&text).map_err(|e| format!("{}: corrupt record: {e}", p.display()))?;
    if record.name != name {
        return Err(format!(
            "{}: the record names another instance ({:?})",
            p.display(),
            record.name
        ));
    }
    Ok(Some(record))
}

/// Checks that the record's processes are really this instance: same
/// owner, same start times, same namespaces, program a child of the
/// supervisor. A crafted record naming another process fails here.
pub fn verify(r: &Record) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    if r.uid != me {
        return Err(format!(
            "record {:?} belongs to uid {}, not to you",
            r.name, r.uid
        ));
    }
    // Run by root, a sandbox's supervisor is nobody once the root is built.
    let runs_as = if r.plan.ids.as_nobody {
        crate::plan::NOBODY
    } else {
        me
    };
    let sup = r.supervisor_pid;
    if sup <= 1 || start_time(sup) != Some(r.supervisor_start) || proc_uid(sup) != Some(runs_as) {
        return Err(format!(
            "record {:?} names pid {sup}, which is not its supervisor (gone, reused or not yours)",
            r.name
        ));
    }
    // The namespace links of a non-dumpable supervisor are readable only by
    // root; where we can read them, they must match.
    for (ns, ino) in &r.namespaces {
        if matches!(ns_inode(sup, ns), Some(found) if found != *ino) {
            return Err(format!(
                "record {:?}: pid {sup} is not in the recorded {ns} namespace",
                r.name
            ));
        }
    }
    // A supervisor is called moksha-init, and with a PID namespace it is
    // PID 1 there, in a user namespace that is not ours.
    let status = std::fs::read_to_string(format!("/proc/{sup}/status")).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let not_ours = |why: &str| {
        Err(format!(
            "record {:?}: pid {sup} is not a moksha supervisor ({why})",
            r.name
        ))
    };
    if field("Name:") != "moksha-init" {
        return not_ours("its name is not moksha-init");
    }
    if r.plan.namespaces.pid && field("NSpid:").split_whitespace().last() != Some("1") {
        return not_ours("it is not PID 1 of its own PID namespace");
    }
    let theirs = ns_inode(sup, "user");
    if r.plan.namespaces.user
        && theirs.is_some()
        && theirs == ns_inode(std::process::id() as i32, "user")
    {
        return not_ours("it is in our own user namespace");
    }
    if r.namespaces.is_empty() {
        return not_ours("the record lists no namespaces");
    }
    Ok(())
}

/// Every instance name in the state dir (by its lock or record file).
pub fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| {
                    n.strip_suffix(".lock")
                        .or_else(|| n.strip_suffix(".json"))
                        .map(str::to_string)
                })
                .filter(|n| check_name(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// Forgets an ended instance: removes its files, only if it is still
/// ended now (its lock taken exclusively first). False if it runs again.
pub fn clean(dir: &Path, name: &str) -> bool {
    if let Ok(lock) = open_private(&path(dir, name, "lock"), false, false) {
        if !sys::try_flock(&lock, true) {
            return false;
        }
    }
    remove_files(dir, name);
    true
}

/// The network log of an instance (`moksha logs NAME --net`).
pub fn net_log_path(dir: &Path, name: &str) -> PathBuf {
    path(dir, name, "net")
}

/// The log paths of an instance, only inside our state dir.
pub fn log_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (path(dir, name, "out"), path(dir, name, "err"))
}

/// Opens the supervisor of a running, verified instance.
/// The handle cannot be confused with a later process of the same pid: it
/// is opened, then checked against the record.
pub fn open_supervisor(r: &Record) -> Result<crate::sys::Process> {
    let process = crate::sys::Process::open(r.supervisor_pid).map_err(|e| e.to_string())?;
    // Checked after opening: if the pid was reused before the open, the
    // start time differs now; after the open the handle pins the process.
    verify(r)?;
    Ok(process)
}

/// Opens the program of a running, verified instance: the process `enter`
/// joins. (The supervisor is non-dumpable, so only root could join through
/// it; the program is an ordinary process of ours, in every namespace of
/// the sandbox.) It must be the supervisor's child, with the recorded start
/// time and the recorded namespaces.
pub fn open_program(r: &Record) -> Result<crate::sys::Process> {
    verify(r)?;
    let pid = r.program_pid;
    let process = crate::sys::Process::open(pid).map_err(|e| e.to_string())?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let parent = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(str::trim);
    if pid <= 1
        || start_time(pid) != Some(r.program_start)
        || parent != Some(&r.supervisor_pid.to_string())
    {
        return Err(format!(
            "the program of {:?} (pid {pid}) has ended or is not the one recorded",
            r.name
        ));
    }
    for (ns, ino) in &r.namespaces {
        if ns_inode(pid, ns) != Some(*ino) {
            return Err(format!(
                "the program of {:?} (pid {pid}) is not in the sandbox's {ns} namespace",
                r.name
            ));
        }
    }
    Ok(process)
}

/// Resident memory of a process tree in bytes (the supervisor and below).
pub fn memory(pid: i32) -> u64 {
    // SAFETY: sysconf with a constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let mut total = 0;
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if let Ok(statm) = std::fs::read_to_string(format!("/proc/{p}/statm")) {
            total += statm
                .split(' ')
                .nth(1)
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
                * page;
        }
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        todo.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok()),
        );
    }
    total
}

/// The first child of a process (the program, for a supervisor).
pub fn first_child(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
