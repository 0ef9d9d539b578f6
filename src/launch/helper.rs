//! Helpers beside the sandbox: host processes moksha starts before the
//! sandbox, waits for, and stops and reaps after it (the plan side is
//! `plan::helper`). Reusable by anything that needs a host process next to
//! a sandbox: `spawn` + `Running::wait_ready` + `Running::stop` work on
//! their own, `start_all` runs a plan's helpers.
//!
//! Lifetime: an attached sandbox's helpers get SIGKILL when the launcher
//! dies (PR_SET_PDEATHSIG) and are stopped by it when the sandbox ends
//! (SIGTERM, SIGKILL after a grace period, then reaped). A helper that
//! signals readiness on a pipe also has the pipe's read end kept open by
//! the sandbox's supervisor: a helper that exits when its end breaks
//! (xdg-dbus-proxy --fd) never outlives the sandbox, even a detached one.

use crate::plan::helper::{self as plan_helper, Expose, Helper, HelperKind, Ready, DIR, READY_FD};
use crate::plan::{FsOp, Plan, Step};
use crate::sys;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a helper gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// What to run.
pub struct Spec<'a> {
    pub name: &'a str,
    /// argv with the placeholders already replaced, except `{ready_fd}`.
    pub argv: Vec<String>,
    pub ready: Ready,
    pub timeout: Duration,
    /// Where the helper's stderr goes (shown when it fails).
    pub log: PathBuf,
    /// Kill the helper when the launcher dies.
    pub die_with_parent: bool,
    /// Its working directory (the helper's private directory).
    pub dir: PathBuf,
}

/// A started helper process.
pub struct Running {
    pub name: String,
    pub pid: libc::pid_t,
    pidfd: OwnedFd,
    log: PathBuf,
    /// For ready "fd": the read end of the readiness pipe, to keep open for
    /// as long as the sandbox lives.
    pub lifeline: Option<OwnedFd>,
    stopped: bool,
}

/// The last lines of a helper's log, for error messages.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(2000)));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(8)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!("; it said:\n    {}", tail.join("\n    "))
    }
}

/// Starts a helper process. Nothing of moksha's stays open in it but its
/// readiness descriptor; its signal mask is clean.
pub fn spawn(spec: &Spec) -> Result<Running, String> {
    let program = spec.argv[0].clone();
    let ready_pipe = match spec.ready {
        Ready::Fd => Some(sys::pipe().map_err(|e| e.to_string())?),
        _ => None,
    };
    let ready_fd: RawFd = ready_pipe.as_ref().map_or(-1, |(_, w)| w.as_raw_fd());
    let argv: Vec<String> = spec
        .argv
        .iter()
        .map(|a| a.replace(READY_FD, &ready_fd.to_string()))
        .collect();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&spec.log)
        .map_err(|e| format!("cannot create {}: {e}", spec.log.display()))?;
    let mut cmd = Command::new(&program);
    cmd.args(&argv[1..])
        .current_dir(&spec.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let parent = std::process::id() as libc::pid_t;
    let die_with_parent = spec.die_with_parent;
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe system calls (prctl, getppid, kill, sigprocmask,
    // close_range, fcntl), without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if die_with_parent {
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
                // The launcher may have died before prctl: then die now.
                if libc::getppid() != parent {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
            super::restore_signals();
            // Nothing but 0, 1, 2 and the readiness descriptor survives the
            // exec: everything else is marked close-on-exec (not closed, so
            // std's own pipe still reports an exec failure).
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
            if ready_fd >= 3 && libc::fcntl(ready_fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "helper {}: program {program:?} was not found on the host (install it, or fix PATH)",
                spec.name
            )
        } else {
            format!("helper {}: cannot start {program:?}: {e}", spec.name)
        }
    })?;
    let pid = child.id() as libc::pid_t;
    // The process is ours to reap (with waitpid); std's handle is not needed.
    drop(child);
    let pidfd = sys::pidfd_open(pid).map_err(|e| e.to_string())?;
    let lifeline = ready_pipe.map(|(read, write)| {
        drop(write);
        read
    });
    Ok(Running {
        name: spec.name.to_string(),
        pid,
        pidfd,
        log: spec.log.clone(),
        lifeline,
        stopped: false,
    })
}

/// Waits until `fds` has something to read, at most `ms` milliseconds.
fn poll_in(fds: &[&OwnedFd], ms: u64) -> Vec<bool> {
    let mut pfds: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
        .collect();
    let timeout = PollTimeout::try_from(ms.min(10_000) as i32).unwrap_or(PollTimeout::MAX);
    loop {
        match nix::poll::poll(&mut pfds, timeout) {
            Ok(_) => {
                return pfds
                    .iter()
                    .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                    .collect()
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return vec![false; fds.len()],
        }
    }
}

/// The exit code of a helper that has exited (reaping it), if it has.
fn exit_code(pid: libc::pid_t) -> Option<i32> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(code),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(128 + sig as i32),
        Ok(_) => None,
        // Already reaped (by the launcher's wait loop): it has exited.
        Err(_) => Some(-1),
    }
}

impl Running {
    /// Waits until the helper is ready as `ready` says, at most `timeout`.
    /// A `Ready::File` is looked for in `dir`.
    pub fn wait_ready(
        &mut self,
        ready: &Ready,
        dir: &Path,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let died = |me: &Self, code: i32| {
            let how = if code > 128 {
                format!("was killed by signal {}", code - 128)
            } else if code >= 0 {
                format!("exited with status {code}")
            } else {
                "exited".to_string()
            };
            format!(
                "helper {} {how} before it was ready{}",
                me.name,
                log_tail(&me.log)
            )
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready {
                Ready::Started => return Ok(()),
                Ready::Exit => {
                    if let Some(code) = exit_code(self.pid) {
                        self.stopped = true;
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(died(self, code).replace(" before it was ready", ""))
                        };
                    }
                    poll_in(&[&self.pidfd], left.as_millis() as u64);
                }
                Ready::Fd => {
                    let Some(pipe) = &self.lifeline else {
                        return Err(format!("helper {}: no readiness pipe", self.name));
                    };
                    let seen = poll_in(&[pipe, &self.pidfd], left.as_millis() as u64);
                    if seen[0] {
                        let mut byte = [0u8; 1];
                        match nix::unistd::read(pipe.as_raw_fd(), &mut byte) {
                            Ok(1) => return Ok(()),
                            _ => {
                                // End of file: it closed the pipe without a word.
                                let code = self.wait_exit(Duration::from_millis(500));
                                return Err(died(self, code.unwrap_or(-1)));
                            }
                        }
                    }
                    if seen[1] {
                        if let Some(code) = exit_code(self.pid) {
                            self.stopped = true;
                            return Err(died(self, code));
                        }
                    }
                }
                Ready::File { file } => {
                    if dir.join(file).exists() {
                        return Ok(());
                    }
                    if let Some(code) = exit_code(self.pid) {
                        self.stopped = true;
                        return Err(died(self, code));
                    }
                    poll_in(&[&self.pidfd], left.as_millis().min(20) as u64);
                }
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "helper {} was not ready after {} ms (stopped it){}",
                    self.name,
                    timeout.as_millis(),
                    log_tail(&self.log)
                ));
            }
        }
    }

    /// Waits for the helper to exit, at most `limit`; reaps it.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(code) = exit_code(self.pid) {
                self.stopped = true;
                return Some(code);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            poll_in(&[&self.pidfd], left.as_millis() as u64 + 1);
        }
    }

    /// Stops the helper: SIGTERM, SIGKILL after `STOP_GRACE`, reaped.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        let _ = sys::pidfd_send_signal(&self.pidfd, libc::SIGTERM, &self.name);
        if self.wait_exit(STOP_GRACE).is_none() {
            let _ = sys::pidfd_send_signal(&self.pidfd, libc::SIGKILL, &self.name);
            let _ = self.wait_exit(Duration::from_secs(5));
        }
        self.stopped = true;
        self.lifeline = None;
    }
}

/// The running helpers of one sandbox and their private directory.
/// Dropping it stops them and removes the directory.
pub struct Helpers {
    dir: Option<PathBuf>,
    running: Vec<Running>,
    released: bool,
}

impl Helpers {
    /// Descriptors the sandbox's supervisor keeps open (the lifelines).
    pub fn lifelines(&self) -> Vec<RawFd> {
        self.running
            .iter()
            .filter_map(|r| r.lifeline.as_ref().map(|l| l.as_raw_fd()))
            .collect()
    }

    /// For a detached sandbox: leave the helpers running (their lifelines
    /// end them with the sandbox) and their directory in place.
    pub fn release(mut self) {
        self.released = true;
    }

    /// Stops every helper, last started first, and removes the directory.
    pub fn stop_all(&mut self) {
        for r in self.running.iter_mut().rev() {
            r.stop();
        }
        self.running.clear();
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        if !self.released {
            self.stop_all();
        }
    }
}

/// A private directory for the helpers of one launch: in moksha's state
/// directory when it is usable, else in /tmp.
fn private_dir() -> Result<PathBuf, String> {
    let base = crate::state::state_dir().unwrap_or_else(|_| std::env::temp_dir());
    let template = base.join(".helpers-XXXXXX");
    nix::unistd::mkdtemp(&template).map_err(|e| {
        format!(
            "cannot create a directory for helpers in {}: {e}",
            base.display()
        )
    })
}

/// Creates the host directories of binds marked `create` (mode 0700, with
/// missing parents), before anything checks that bind sources exist.
pub fn create_sources(plan: &Plan) -> Result<(), String> {
    for step in &plan.fs {
        if let FsOp::Bind {
            source,
            create: true,
            ..
        } = &step.op
        {
            if Path::new(source).symlink_metadata().is_ok() {
                continue;
            }
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(source)
                .map_err(|e| {
                    format!(
                        "{}: cannot create the host directory {source} for this bind: {e}",
                        step.at
                    )
                })?;
        }
    }
    Ok(())
}

/// Starts the plan's helpers in order and waits for each to be ready. Their
/// exposed files are appended to the plan as binds. An optional helper that
/// fails is left out with a warning; another failure stops those started
/// and is returned.
pub fn start_all(plan: &mut Plan) -> Result<Helpers, String> {
    let mut helpers = Helpers {
        dir: None,
        running: Vec::new(),
        released: false,
    };
    if plan.helpers.is_empty() {
        return Ok(helpers);
    }
    let detached = plan.supervision.detach;
    if detached {
        if let Some(step) = plan.helpers.iter().find(|s| {
            matches!(
                s.op.kind,
                HelperKind::Program {
                    ready: Ready::Started | Ready::File { .. },
                    ..
                }
            )
        }) {
            return Err(format!(
                "{}: helper {} cannot go with a detached sandbox: only helpers with \
                 ready: \"fd\" (which end with the sandbox) or ready: \"exit\" can",
                step.at, step.op.name
            ));
        }
    }
    let root = private_dir()?;
    helpers.dir = Some(root.clone());
    let steps = plan.helpers.clone();
    for step in &steps {
        let h = &step.op;
        let dir = root.join(&h.name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let started = start_one(h, &dir, !detached);
        let running = match started {
            Ok(r) => r,
            Err(e) if h.optional => {
                eprintln!(
                    "moksha: warning: {}: {e}\nmoksha: warning: going on without helper {}",
                    step.at, h.name
                );
                continue;
            }
            Err(e) => return Err(format!("{}: {e}", step.at)),
        };
        if let Some(r) = running {
            helpers.running.push(r);
        }
        for e in &h.expose {
            let source = dir.join(&e.file);
            if !source.exists() {
                let msg = format!(
                    "{}: helper {} is ready but {{dir}}/{} does not exist, so it cannot be \
                     exposed at {}",
                    step.at, h.name, e.file, e.target
                );
                if h.optional {
                    eprintln!("moksha: warning: {msg}");
                    continue;
                }
                return Err(msg);
            }
            plan.fs.push(expose_bind(&source, e, step));
        }
    }
    Ok(helpers)
}

fn expose_bind(source: &Path, e: &Expose, step: &Step<Helper>) -> Step<FsOp> {
    Step {
        op: FsOp::Bind {
            source: source.to_string_lossy().into_owned(),
            target: e.target.clone(),
            rw: e.rw,
            dev: false,
            optional: false,
            replace: true,
            create: false,
        },
        at: step.at.clone(),
    }
}

/// Starts one helper and waits for it; `None` for helpers that are done
/// once ready (one-shot commands, files moksha writes).
fn start_one(h: &Helper, dir: &Path, die_with_parent: bool) -> Result<Option<Running>, String> {
    match &h.kind {
        HelperKind::Xauthority { display, file } => {
            if let Some(warning) = write_xauthority(display, &dir.join(file))? {
                eprintln!("moksha: warning: {warning}");
            }
            Ok(None)
        }
        HelperKind::Program {
            argv,
            ready,
            timeout_ms,
        } => {
            let dir_text = dir.to_string_lossy();
            let spec = Spec {
                name: &h.name,
                argv: argv.iter().map(|a| a.replace(DIR, &dir_text)).collect(),
                ready: ready.clone(),
                timeout: Duration::from_millis(*timeout_ms),
                log: dir.with_extension("log"),
                die_with_parent,
                dir: dir.to_path_buf(),
            };
            let mut running = spawn(&spec)?;
            running.wait_ready(ready, dir, spec.timeout)?;
            Ok((*ready != Ready::Exit).then_some(running))
        }
    }
}

// ---- X authority -------------------------------------------------------

/// X authority families (Xauth.h).
const FAMILY_LOCAL: u16 = 256;
const FAMILY_WILD: u16 = 65535;

/// One entry of an X authority file.
#[derive(Debug, Clone, PartialEq)]
pub struct XauthEntry {
    pub family: u16,
    pub address: Vec<u8>,
    pub number: Vec<u8>,
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

/// Parses an X authority file: entries of a big-endian family and four
/// length-prefixed fields. A truncated tail is ignored.
pub fn parse_xauth(mut bytes: &[u8]) -> Vec<XauthEntry> {
    fn u16_of(b: &mut &[u8]) -> Option<u16> {
        let (head, rest) = b.split_first_chunk::<2>()?;
        *b = rest;
        Some(u16::from_be_bytes(*head))
    }
    fn field(b: &mut &[u8]) -> Option<Vec<u8>> {
        let len = u16_of(b)? as usize;
        if b.len() < len {
            return None;
        }
        let (v, rest) = b.split_at(len);
        *b = rest;
        Some(v.to_vec())
    }
    let mut out = Vec::new();
    loop {
        let entry = (|| {
            Some(XauthEntry {
                family: u16_of(&mut bytes)?,
                address: field(&mut bytes)?,
                number: field(&mut bytes)?,
                name: field(&mut bytes)?,
                data: field(&mut bytes)?,
            })
        })();
        match entry {
            Some(e) => out.push(e),
            None => return out,
        }
    }
}

/// The entries for local display `number`, rewritten as wildcard entries
/// (any address, any display number: the sandbox may see the display under
/// another number), as an X authority file's bytes.
pub fn filter_xauth(entries: &[XauthEntry], number: u32) -> Vec<u8> {
    let number = number.to_string();
    let mut out = Vec::new();
    for e in entries {
        let local = e.family == FAMILY_LOCAL || e.family == FAMILY_WILD;
        if !local || e.number != number.as_bytes() {
            continue;
        }
        out.extend_from_slice(&FAMILY_WILD.to_be_bytes());
        for f in [&b""[..], &b""[..], &e.name, &e.data] {
            out.extend_from_slice(&(f.len() as u16).to_be_bytes());
            out.extend_from_slice(f);
        }
    }
    out
}

/// Writes the X authority for `display` to `path` (mode 0600). Returns a
/// warning when there is nothing to write.
fn write_xauthority(display: &str, path: &Path) -> Result<Option<String>, String> {
    let number = plan_helper::display_number(display)
        .ok_or_else(|| format!("{display:?} is not a local X display"))?;
    let source = std::env::var("XAUTHORITY")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("{}/.Xauthority", crate::script::host::home_dir()));
    let (bytes, warning) = match std::fs::read(&source) {
        Ok(all) => {
            let filtered = filter_xauth(&parse_xauth(&all), number);
            let warning = filtered.is_empty().then(|| {
                format!(
                    "X11: {source} has no cookie for display {display}; the sandbox gets an \
                     empty Xauthority, so the X server must accept it without one"
                )
            });
            (filtered, warning)
        }
        Err(e) => (
            Vec::new(),
            Some(format!(
                "X11: cannot read the X authority file {source} ({e}); the sandbox gets an \
                 empty one, so the X server must accept it without one"
            )),
        ),
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(family: u16, number: &str, data: &[u8]) -> XauthEntry {
        XauthEntry {
            family,
            address: b"host".to_vec(),
            number: number.as_bytes().to_vec(),
            name: b"MIT-MAGIC-COOKIE-1".to_vec(),
            data: data.to_vec(),
        }
    }

    fn serialize(entries: &[XauthEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            out.extend_from_slice(&e.family.to_be_bytes());
            for f in [&e.address, &e.number, &e.name, &e.data] {
                out.extend_from_slice(&(f.len() as u16).to_be_bytes());
                out.extend_from_slice(f);
            }
        }
        out
    }

    #[test]
    fn xauth_keeps_only_the_display_as_wildcard() {
        let file = serialize(&[
            entry(FAMILY_LOCAL, "0", &[1; 16]),
            entry(FAMILY_LOCAL, "1", &[2; 16]),
            entry(0, "0", &[3; 16]),
            entry(FAMILY_WILD, "0", &[4; 16]),
        ]);
        let parsed = parse_xauth(&file);
        assert_eq!(parsed.len(), 4);
        let out = parse_xauth(&filter_xauth(&parsed, 0));
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|e| e.family == FAMILY_WILD && e.address.is_empty() && e.number.is_empty()));
        assert_eq!(out[0].data, vec![1; 16]);
        assert_eq!(out[1].data, vec![4; 16]);
        assert!(filter_xauth(&parsed, 7).is_empty());
    }

    #[test]
    fn truncated_xauth_is_ignored_at_the_tail() {
        let mut file = serialize(&[entry(FAMILY_LOCAL, "0", &[1; 16])]);
        file.extend_from_slice(&[1, 0, 0, 9, b'x']);
        assert_eq!(parse_xauth(&file).len(), 1);
    }

    #[test]
    fn helpers_run_and_stop() {
        let dir = std::env::temp_dir().join(format!("moksha-helper-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = Spec {
            name: "sleeper",
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "touch ready; exec sleep 60".into(),
            ],
            ready: Ready::File {
                file: "ready".into(),
            },
            timeout: Duration::from_secs(10),
            log: dir.join("log"),
            die_with_parent: false,
            dir: dir.clone(),
        };
        let mut r = spawn(&spec).unwrap();
        r.wait_ready(&spec.ready, &dir, spec.timeout).unwrap();
        let pid = r.pid;
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
            ..spec
        };
        let mut r = spawn(&failing).unwrap();
        let e = r
            .wait_ready(&failing.ready, &dir, failing.timeout)
            .unwrap_err();
        assert!(e.contains("status 3") && e.contains("oops"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
