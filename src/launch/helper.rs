//! Helpers: host processes beside a sandbox, outside it, that run exactly as
//! long as it does (the plan side is `plan::helper`). Two kinds use them:
//! the profile's own helpers (`s.helper`: xdg-dbus-proxy, one-shot
//! preparations), started before the clone so that their files can be bound
//! into the sandbox, and the user-mode network's pasta or slirp4netns,
//! started after the clone because they attach to the sandbox's namespaces.
//!
//! The launcher forks one guard process per sandbox, before the clone, and
//! the guard starts every helper as its own child:
//!
//! ```text
//! moksha (launcher) ─┬─ sandbox (PID 1 inside)   holds the lifeline's write end
//!                    └─ guard ─┬─ helper          holds its read end
//!                              └─ helper
//! ```
//!
//! - The launcher sends the guard a `Spec` (a JSON line on a pipe); the
//!   guard starts the helper, waits until it is ready as its `Ready` says
//!   and answers (a JSON line: the error, if any).
//! - The lifeline is a pipe whose write end the launcher holds and the
//!   sandbox's supervisor inherits. Once both are gone (a foreground
//!   sandbox ended and moksha returned or was killed; a detached sandbox
//!   ended) the guard reads end-of-file, stops the helpers, last started
//!   first (SIGTERM, SIGKILL after `STOP_GRACE`), reaps them, removes their
//!   private directory and exits. `kill -9` of moksha ends the lifeline
//!   too: a foreground sandbox dies with the launcher (its parent-death
//!   signal). A foreground launcher waits for the guard before it returns.
//! - Each helper has PR_SET_PDEATHSIG=SIGKILL towards the guard, so a
//!   killed guard takes its helpers along (except one that changes its
//!   credentials at start, which clears that signal: the guard does not
//!   die with the launcher, so it stops such a helper itself).
//! - The guard has its own session and /dev/null as stdio: a Ctrl-C at the
//!   terminal reaches only the launcher (which forwards it to the program),
//!   and whoever reads moksha's output to its end does not wait for the
//!   guard.
//! - A helper's stdout and stderr go to a memory file, shown when it fails.
//!   A helper that signals readiness gets the write end of a pipe at
//!   `READY_FD`; the guard keeps the read end open while the helper runs
//!   (xdg-dbus-proxy --fd quits when it closes), as it keeps the write end
//!   of the pipe at `EXIT_FD` (slirp4netns --exit-fd).

use crate::plan::helper::{self as plan_helper, Helper, HelperKind, Ready, DIR};
use crate::plan::validate::normalize;
use crate::plan::{FsOp, Plan};
use crate::sys;
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a helper gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// The descriptor a helper signals readiness on (`{ready_fd}` in a
/// profile's argv), and the one that reaches end-of-file when it must quit
/// (slirp4netns --exit-fd).
pub const READY_FD: RawFd = 3;
pub const EXIT_FD: RawFd = 4;

/// What to run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Spec {
    /// For messages.
    pub name: String,
    /// The program (found on PATH) and its arguments, placeholders replaced.
    pub argv: Vec<String>,
    pub ready: Ready,
    pub timeout_ms: u64,
    /// Its working directory, where a `Ready::File` is looked for.
    pub dir: Option<PathBuf>,
    /// Whether it gets the read end of a pipe at `EXIT_FD`.
    pub exit_fd: bool,
    /// What it runs under.
    pub confine: Confine,
    /// Variables added to its environment (what its command line would show
    /// to every user of the host, through /proc/PID/cmdline).
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// What a helper runs under, set up between fork and exec. Every helper
/// gets no_new_privs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Confine {
    /// no_new_privs only; the launcher's capabilities stay (a network
    /// helper run by root for a sandbox without a user namespace of its
    /// own needs them on the host's namespaces, and drops the rest itself).
    NoNewPrivs,
    /// no_new_privs and no capabilities: every set emptied; the bounding
    /// set too where the launcher may (root). For the network helpers,
    /// which install their own seccomp filter and namespaces.
    NoCaps,
    /// `NoCaps`, then landlock where the kernel has it (the filesystem
    /// readable and executable, its directory and /dev/null writable), then
    /// moksha's default seccomp filter: for program helpers.
    Program,
}

/// What `Confine` needs, made before the fork (it reads files, allocates,
/// compiles the filter) so that the child only makes system calls.
struct Prepared {
    /// `last_cap()` and whether the bounding set can be dropped.
    caps: Option<(u32, bool)>,
    landlock: Option<OwnedFd>,
    seccomp: Option<sys::seccomp::Filter>,
}

impl Prepared {
    fn new(confine: Confine, dir: Option<&Path>) -> Result<Prepared, String> {
        let bounding = sys::caps::effective() & (1 << sys::caps::CAP_SETPCAP) != 0;
        let caps = (confine != Confine::NoNewPrivs).then(|| (sys::caps::last_cap(), bounding));
        if confine != Confine::Program {
            return Ok(Prepared {
                caps,
                landlock: None,
                seccomp: None,
            });
        }
        let dir = dir.ok_or("a program helper needs its directory")?;
        let landlock = match program_ruleset(dir, sys::landlock::abi()) {
            Some(rs) => Some(sys::landlock::build(&rs).map_err(|e| format!("landlock: {e}"))?),
            None => None,
        };
        // moksha's default filter; run by root, also the sandbox's rule for
        // root launches: no setuid or setgid bits on the files it creates
        // (they belong to the host's root).
        let mut policy = crate::policy::seccomp::Seccomp::default();
        if nix::unistd::geteuid().is_root() {
            policy.refuse_setid_files();
        }
        let seccomp = super::confine::compile(&policy)?;
        Ok(Prepared {
            caps,
            landlock,
            seccomp: Some(sys::seccomp::Filter::new(&seccomp)),
        })
    }

    /// Applies it to the calling process: in the child, before exec. Only
    /// system calls on values made before the fork.
    fn apply(&self) -> std::io::Result<()> {
        let errno = |e: Errno| std::io::Error::from_raw_os_error(e as i32);
        if let Some((last, bounding)) = self.caps {
            sys::caps::apply(0, last, bounding).map_err(|f| errno(f.errno))?;
        }
        sys::no_new_privs_raw().map_err(errno)?;
        if let Some(ruleset) = &self.landlock {
            sys::landlock::restrict(ruleset).map_err(errno)?;
        }
        if let Some(filter) = &self.seccomp {
            filter.install().map_err(errno)?;
        }
        Ok(())
    }
}

/// A program helper's landlock ruleset for the kernel's ABI `abi` (`None`
/// without landlock): the filesystem readable and executable, its own
/// directory `dir` readable and writable (it makes its socket there),
/// /dev/null writable. Abstract unix sockets are not scoped (a session bus
/// may listen on one); signals are.
pub fn program_ruleset(dir: &Path, abi: u32) -> Option<crate::policy::landlock::Ruleset> {
    use crate::policy::landlock::{self as ll, FsRule};
    if abi == 0 {
        return None;
    }
    let read = ll::READ_FILE | ll::READ_DIR;
    let write = ll::access_by_name("write").unwrap_or(0);
    let rule = |path: &str, access: u64, origin: &str| FsRule {
        path: path.to_string(),
        access,
        optional: false,
        origin: origin.to_string(),
    };
    let fs = vec![
        rule("/", read | ll::EXECUTE, "the host's filesystem, read-only"),
        rule(
            &dir.to_string_lossy(),
            read | write,
            "the helper's directory",
        ),
        rule("/dev/null", ll::READ_FILE | ll::WRITE_FILE, "/dev/null"),
    ];
    let settings = ll::Landlock {
        scope_abstract_unix: false,
        ..ll::Landlock::default()
    };
    ll::ruleset(&settings, fs, true, abi)
}

/// Waits until one of `fds` is readable or hung up, at most `ms`
/// milliseconds; says which are.
fn poll_in(fds: &[BorrowedFd], ms: u64) -> Vec<bool> {
    sys::poll_readable(fds, Some(Duration::from_millis(ms)))
}

// ---- the launcher's side -----------------------------------------------

/// The helpers of one sandbox: its guard, as the launcher sees it, and
/// their private directory. Dropped, it lets the guard end them (once the
/// sandbox has ended too) and waits for that.
pub struct Helpers {
    guard: Pid,
    requests: Option<File>,
    replies: BufReader<File>,
    lifeline: Option<OwnedFd>,
    dir: Option<PathBuf>,
    started: u32,
}

impl Helpers {
    /// Forks the guard, which removes `dir` when it ends. The caller must
    /// be single-threaded.
    fn spawn(dir: Option<PathBuf>) -> Result<Helpers, String> {
        let fail = |e: sys::SysError| format!("cannot start the helpers' guard: {e}");
        let (requests_r, requests_w) = sys::pipe().map_err(fail)?;
        let (replies_r, replies_w) = sys::pipe().map_err(fail)?;
        let (life_r, life_w) = sys::pipe().map_err(fail)?;
        let null = sys::open_dev_null().map_err(fail)?;
        // (The launcher is single-threaded; the child only runs `guard`,
        // which ends in _exit.)
        match sys::fork().map_err(fail)? {
            None => guard(requests_r, replies_w, life_r, null, dir.as_deref()),
            Some(child) => Ok(Helpers {
                guard: Pid::from_raw(child),
                requests: Some(requests_w.into()),
                replies: BufReader::new(replies_r.into()),
                lifeline: Some(life_w),
                dir,
                started: 0,
            }),
        }
    }

    /// Starts a helper and waits until it is ready (or has failed).
    pub fn start(&mut self, spec: &Spec) -> Result<(), String> {
        let gone = || format!("helper {}: the helpers' guard has gone", spec.name);
        let request = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        let requests = self.requests.as_mut().ok_or_else(gone)?;
        writeln!(requests, "{request}").map_err(|_| gone())?;
        let mut reply = String::new();
        if !matches!(self.replies.read_line(&mut reply), Ok(n) if n > 0) {
            return Err(gone());
        }
        self.started += 1;
        serde_json::from_str::<Result<(), String>>(&reply).map_err(|_| gone())?
    }

    /// The lifeline's write end, for the sandbox's supervisor to keep open.
    pub fn lifeline(&self) -> Option<RawFd> {
        self.lifeline.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// For a detached sandbox: the guard goes on alone and ends the helpers
    /// when the sandbox ends.
    pub fn release(mut self) {
        self.lifeline = None;
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        self.requests = None;
        if self.lifeline.take().is_none() {
            return;
        }
        // The guard closes its end of the replies when it exits; it has
        // this long to stop the helpers.
        let deadline = Instant::now() + (STOP_GRACE + Duration::from_secs(1)) * (self.started + 1);
        let replies = self.replies.get_ref().as_fd();
        let mut exited = false;
        while !exited && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            exited = poll_in(&[replies], left.as_millis() as u64 + 1)[0];
        }
        if !exited {
            let _ = nix::sys::signal::kill(self.guard, nix::sys::signal::Signal::SIGKILL);
        }
        // (The launcher's own wait loop may have reaped it already.)
        let _ = waitpid(self.guard, None);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

// ---- the guard ------------------------------------------------------------

/// The guard process: starts helpers as asked until the launcher closes
/// the requests, then waits for the lifeline to end and ends them. Never
/// returns.
fn guard(
    requests: OwnedFd,
    replies: OwnedFd,
    lifeline: OwnedFd,
    null: OwnedFd,
    dir: Option<&Path>,
) -> ! {
    let _ = sys::setsid();
    sys::set_name("moksha-guard");
    for target in 0..3 {
        let _ = sys::dup_onto(&null, target);
    }
    drop(null);
    // Nothing of the launcher's stays open: its pipes, the lifeline's
    // write end, the caller's descriptors.
    let keep = [&requests, &replies, &lifeline].map(AsRawFd::as_raw_fd);
    let _ = sys::close_fds_except(&keep);
    let mut replies = File::from(replies);
    let mut running: Vec<Running> = Vec::new();
    for line in BufReader::new(File::from(requests)).lines() {
        let Ok(line) = line else { break };
        let reply = serde_json::from_str::<Spec>(&line)
            .map_err(|e| e.to_string())
            .and_then(|spec| {
                let mut helper = Running::spawn(&spec)?;
                helper.wait_ready(&spec)?;
                if !helper.stopped {
                    running.push(helper);
                }
                Ok(())
            });
        let reply = serde_json::to_string(&reply).unwrap_or_default();
        let _ = writeln!(replies, "{reply}");
    }
    // Nobody writes on the lifeline: the read returns at end-of-file.
    let mut byte = [0u8; 1];
    while nix::unistd::read(lifeline.as_raw_fd(), &mut byte) == Err(Errno::EINTR) {}
    for helper in running.iter_mut().rev() {
        helper.stop();
    }
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    sys::exit_now(0)
}

/// A started helper, in the guard.
struct Running {
    name: String,
    pid: Pid,
    process: sys::Process,
    /// Its stdout and stderr.
    output: File,
    /// The read end of its readiness pipe, open while it runs.
    ready: Option<OwnedFd>,
    /// The write end of its exit pipe.
    exit: Option<OwnedFd>,
    stopped: bool,
}

/// The last lines a helper printed, for error messages.
fn said(output: &File) -> String {
    let len = output.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(2000);
    let mut buf = vec![0u8; (len - from) as usize];
    let n = output.read_at(&mut buf, from).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(8)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!("; it said:\n    {}", tail.join("\n    "))
    }
}

impl Running {
    /// Starts a helper as a child of the calling process. Nothing stays
    /// open in it but 0, 1, 2 and its pipes; its signal mask is clean.
    fn spawn(spec: &Spec) -> Result<Running, String> {
        let fail = |e: String| format!("helper {}: {e}", spec.name);
        let memfd_name =
            std::ffi::CString::new(format!("moksha-{}", spec.name)).unwrap_or_default();
        let output = nix::sys::memfd::memfd_create(
            &memfd_name,
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
        )
        .map(File::from)
        .map_err(|e| fail(format!("memfd_create: {e}")))?;
        let pipe = |wanted: bool| match wanted {
            true => sys::pipe().map(Some).map_err(|e| fail(e.to_string())),
            false => Ok(None),
        };
        let ready = pipe(spec.ready == Ready::Fd)?;
        let exit = pipe(spec.exit_fd)?;
        // The child's ends and the numbers they take in it.
        let places = [
            (ready.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()), READY_FD),
            (exit.as_ref().map_or(-1, |(r, _)| r.as_raw_fd()), EXIT_FD),
        ];
        let copy = |f: &File| f.try_clone().map_err(|e| fail(e.to_string()));
        let Some((program, args)) = spec.argv.split_first() else {
            return Err(fail("the command is empty".into()));
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(copy(&output)?)
            .stderr(copy(&output)?);
        if let Some(dir) = &spec.dir {
            cmd.current_dir(dir);
        }
        let parent = std::process::id() as libc::pid_t;
        let confine = Prepared::new(spec.confine, spec.dir.as_deref()).map_err(fail)?;
        // SAFETY: the closure runs in the forked child before exec and makes
        // only async-signal-safe system calls (prctl, getppid, kill,
        // sigprocmask, signal, capset, landlock_restrict_self, fcntl,
        // close_range, dup2), without allocating: `confine` was made before.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl: then die now.
                if libc::getppid() != parent {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
                super::restore_signals();
                // Capabilities, no_new_privs, landlock, seccomp (which
                // allows what follows: fcntl, close_range, dup2).
                confine.apply()?;
                // The pipes first go above the numbers they take; then all
                // but 0, 1, 2 is marked close-on-exec (not closed, so std's
                // own pipe still reports an exec failure); then the pipes
                // take their numbers (without close-on-exec).
                let high = places.map(|(fd, _)| match fd {
                    -1 => -1,
                    fd => libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10),
                });
                const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
                for ((fd, target), high) in places.into_iter().zip(high) {
                    if fd >= 0 && (high < 0 || libc::dup2(high, target) < 0) {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail(format!(
                "program {program:?} was not found on the host (install it, or fix PATH)"
            )),
            _ => fail(format!(
                "cannot start {program:?} (confined as {:?}): {e}",
                spec.confine
            )),
        })?;
        let pid = Pid::from_raw(child.id() as libc::pid_t);
        // The process is ours to reap (with waitpid); std's handle is not needed.
        drop(child);
        let process = sys::Process::open(pid.as_raw()).map_err(|e| fail(e.to_string()))?;
        Ok(Running {
            name: spec.name.clone(),
            pid,
            process,
            output,
            ready: ready.map(|(read, _)| read),
            exit: exit.map(|(_, write)| write),
            stopped: false,
        })
    }

    /// Its exit code (128+N for signal N), reaping it, if it has exited.
    fn reap(&mut self) -> Option<i32> {
        let code = match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(status) => super::supervisor::code_of(status)?,
            Err(_) => -1,
        };
        self.stopped = true;
        Some(code)
    }

    /// The message for a helper that exited with `code`.
    fn died(&self, code: i32, when: &str) -> String {
        let how = if code > 128 {
            format!("was killed by signal {}", code - 128)
        } else if code >= 0 {
            format!("exited with status {code}")
        } else {
            "exited".to_string()
        };
        format!("helper {} {how}{when}{}", self.name, said(&self.output))
    }

    /// Waits until the helper is ready as `spec.ready` says, at most
    /// `spec.timeout_ms`. A one-shot helper (`Ready::Exit`) is reaped.
    fn wait_ready(&mut self, spec: &Spec) -> Result<(), String> {
        const BEFORE: &str = " before it was ready";
        let deadline = Instant::now() + Duration::from_millis(spec.timeout_ms);
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            match &spec.ready {
                Ready::Started => return Ok(()),
                Ready::Exit => {
                    match self.reap() {
                        Some(0) => return Ok(()),
                        Some(code) => return Err(self.died(code, "")),
                        None => {}
                    }
                    self.process.wait(Duration::from_millis(left));
                }
                Ready::Fd => {
                    let Some(pipe) = &self.ready else {
                        return Err(format!("helper {}: no readiness pipe", self.name));
                    };
                    let (readable, exited) = self
                        .process
                        .wait_with(Some(pipe.as_fd()), Duration::from_millis(left));
                    if readable {
                        let mut byte = [0u8; 1];
                        if nix::unistd::read(pipe.as_raw_fd(), &mut byte) == Ok(1) {
                            return Ok(());
                        }
                        // End of file: it closed the pipe without a word.
                        let code = self.wait_exit(Duration::from_millis(500));
                        return Err(self.died(code.unwrap_or(-1), BEFORE));
                    }
                    if let Some(code) = exited.then(|| self.reap()).flatten() {
                        return Err(self.died(code, BEFORE));
                    }
                }
                Ready::File { file } => {
                    if spec.dir.as_ref().is_some_and(|d| d.join(file).exists()) {
                        return Ok(());
                    }
                    if let Some(code) = self.reap() {
                        return Err(self.died(code, BEFORE));
                    }
                    self.process.wait(Duration::from_millis(left.min(20)));
                }
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "helper {} was not ready after {} ms (stopped it){}",
                    self.name,
                    spec.timeout_ms,
                    said(&self.output)
                ));
            }
        }
    }

    /// Waits for the helper to exit, at most `limit`; reaps it.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(code) = self.reap() {
                return Some(code);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.process.wait(left + Duration::from_millis(1));
        }
    }

    /// Stops the helper: its exit pipe closed, SIGTERM, SIGKILL after
    /// `STOP_GRACE`; reaped. Dropping it does the same.
    fn stop(&mut self) {
        self.exit = None;
        if !self.stopped {
            let _ = self.process.signal(libc::SIGTERM, &self.name);
            if self.wait_exit(STOP_GRACE).is_none() {
                let _ = self.process.signal(libc::SIGKILL, &self.name);
                let _ = self.wait_exit(Duration::from_secs(5));
            }
        }
        self.stopped = true;
        self.ready = None;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- a plan's helpers -----------------------------------------------------

/// The private directory of the helpers of instance `name`: in moksha's
/// state directory when it is usable, else in /tmp. The name is held while
/// the instance runs, so the path is the instance's alone.
pub fn dir_for(name: &str) -> PathBuf {
    let base = crate::state::state_dir().unwrap_or_else(|_| std::env::temp_dir());
    base.join(format!(".helpers-{name}"))
}

/// Creates the host directories of binds marked `create` (mode 0700, with
/// missing parents), before anything checks that bind sources exist.
pub fn create_sources(plan: &Plan) -> Result<(), String> {
    // Compiled only when a source is to be made (most launches make none).
    let mut ops = None;
    // Run by root as nobody, the sandbox must be able to use them.
    let owner = plan
        .ids
        .as_nobody
        .then_some((crate::plan::NOBODY, crate::plan::NOBODY));
    for step in &plan.fs {
        let FsOp::Bind {
            source,
            create: true,
            ..
        } = &step.op
        else {
            continue;
        };
        if crate::arg::to_path(source).symlink_metadata().is_ok() {
            continue;
        }
        let failed = |e: &dyn std::fmt::Display| {
            format!(
                "{}: cannot create the host directory {source} for this bind: {e}",
                step.at
            )
        };
        // Inside another writable bind's source the sandbox may have made
        // the path's directories symlinks (on an earlier run): created
        // without following any, as the bind itself is opened (rootfs.rs).
        // Elsewhere the path is followed as the profile wrote it.
        let ops = ops.get_or_insert_with(|| crate::plan::mounts::compile(plan));
        let holder = crate::plan::mounts::writable_holder(ops, source);
        let from = holder.unwrap_or("/");
        let rest = &normalize(source)[normalize(from).len()..];
        sys::open_path(from)
            .and_then(|dir| {
                sys::mkdir_all_beneath(&dir, rest, 0o700, holder.is_none(), owner, source)
            })
            .map_err(|e| match holder {
                Some(outer) if e.errno == Errno::ELOOP || e.errno == Errno::EXDEV => {
                    failed(&format!(
                        "it goes through a symlink inside {outer}, which another bind of this \
                     profile makes writable (a sandbox may have put it there): refused; \
                     remove the link"
                    ))
                }
                _ => failed(&e),
            })?;
    }
    Ok(())
}

/// Starts the plan's helpers in order in `dir` (`dir_for`) and waits for
/// each to be ready; with `later`, a guard is started even without them,
/// for helpers that start after the clone. Their exposed files are binds
/// of the resolved plan (prepare.rs). An optional helper that fails is
/// left out with a warning; another failure is returned (and what was
/// started stops).
pub fn start_all(plan: &Plan, dir: Option<&Path>, later: bool) -> Result<Option<Helpers>, String> {
    let Some(root) = dir.filter(|_| !plan.helpers.is_empty()) else {
        return later.then(|| Helpers::spawn(None)).transpose();
    };
    // Left by an instance of this name that was killed with its guard.
    let _ = std::fs::remove_dir_all(root);
    let private = |d: &Path| {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(d)
            .map_err(|e| format!("cannot create the helpers' directory {}: {e}", d.display()))
    };
    private(root)?;
    let mut helpers = Helpers::spawn(Some(root.to_path_buf())).inspect_err(|_| {
        let _ = std::fs::remove_dir(root);
    })?;
    for step in &plan.helpers {
        let h = &step.op;
        let dir = root.join(&h.name);
        private(&dir)?;
        match start_one(&mut helpers, h, &dir) {
            Ok(()) => {}
            Err(e) if h.optional => {
                eprintln!(
                    "moksha: warning: {}: {}\nmoksha: warning: going on without helper {}",
                    step.at,
                    crate::text::shown(&e),
                    crate::text::line(&h.name)
                );
                continue;
            }
            Err(e) => return Err(format!("{}: {e}", step.at)),
        }
        for e in &h.expose {
            // A sandbox run as nobody must be able to use them (connect to
            // a socket needs write permission on it, a file read).
            if plan.ids.as_nobody {
                let nobody = Some(crate::plan::NOBODY);
                let _ = std::os::unix::fs::lchown(dir.join(&e.file), nobody, nobody);
            }
            if !dir.join(&e.file).exists() {
                let msg = format!(
                    "{}: helper {} is ready but {{dir}}/{} does not exist, so it cannot be \
                     exposed at {}",
                    step.at, h.name, e.file, e.target
                );
                if !h.optional {
                    return Err(msg);
                }
                eprintln!("moksha: warning: {}", crate::text::shown(&msg));
            }
        }
    }
    Ok(Some(helpers))
}

/// Starts one helper of the plan in its directory `dir` and waits for it.
fn start_one(helpers: &mut Helpers, h: &Helper, dir: &Path) -> Result<(), String> {
    match &h.kind {
        HelperKind::Xauthority { display, file } => {
            if let Some(warning) = super::xauth::write_xauthority(display, &dir.join(file))? {
                eprintln!("moksha: warning: {}", crate::text::shown(&warning));
            }
            Ok(())
        }
        HelperKind::Program {
            argv,
            ready,
            timeout_ms,
        } => {
            let dir_text = dir.to_string_lossy();
            let fd = READY_FD.to_string();
            helpers.start(&Spec {
                name: h.name.clone(),
                argv: argv
                    .iter()
                    .map(|a| {
                        a.replace(DIR, &dir_text)
                            .replace(plan_helper::READY_FD, &fd)
                    })
                    .collect(),
                ready: ready.clone(),
                timeout_ms: *timeout_ms,
                dir: Some(dir.to_path_buf()),
                exit_fd: false,
                confine: Confine::Program,
                env: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_run_and_stop() {
        let dir = std::env::temp_dir().join(format!("moksha-helper-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = Spec {
            name: "sleeper".into(),
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "touch ready; exec sleep 60".into(),
            ],
            ready: Ready::File {
                file: "ready".into(),
            },
            timeout_ms: 10_000,
            dir: Some(dir.clone()),
            exit_fd: false,
            confine: Confine::Program,
            env: Vec::new(),
        };
        let mut r = Running::spawn(&spec).unwrap();
        r.wait_ready(&spec).unwrap();
        let pid = r.pid.as_raw();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        r.stop();
        assert!(!Path::new(&format!("/proc/{pid}/status")).exists());
        let failing = Spec {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo oops >&2; exit 3".into(),
            ],
            ready: Ready::Exit,
            ..spec.clone()
        };
        let mut r = Running::spawn(&failing).unwrap();
        let e = r.wait_ready(&failing).unwrap_err();
        assert!(e.contains("status 3") && e.contains("oops"), "{e}");
        // The readiness pipe at 3, the exit pipe at 4, nothing else open.
        let piped = Spec {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "for fd in 5 6 7 8 9 10 11 12; do [ -e /proc/$$/fd/$fd ] && echo leak $fd; done; \
                 echo >&3; cat <&4; echo gone"
                    .into(),
            ],
            ready: Ready::Fd,
            exit_fd: true,
            ..spec
        };
        let mut r = Running::spawn(&piped).unwrap();
        r.wait_ready(&piped).unwrap();
        assert!(!r.stopped);
        r.exit = None;
        assert_eq!(r.wait_exit(Duration::from_secs(5)), Some(0));
        let out = said(&r.output);
        assert!(out.contains("gone") && !out.contains("leak"), "{out}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
