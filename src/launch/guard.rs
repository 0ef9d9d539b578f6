//! Guarded helpers: host programs beside a sandbox that must run exactly as
//! long as the sandbox does, but cannot watch a lifeline descriptor
//! themselves (pasta, slirp4netns). `helper.rs` starts the profile's own
//! helpers before the sandbox exists; these start after the clone (they
//! attach to the sandbox's namespaces) and also stop with a detached
//! sandbox, which the launcher no longer watches.
//!
//! The launcher forks a small guard process, which starts the helper as its
//! own child and watches the sandbox's first process through a pidfd:
//!
//! ```text
//! moksha (launcher) ─┬─ sandbox (PID 1 inside)
//!                    └─ guard ── helper
//! ```
//!
//! - The sandbox exits or is killed: the guard stops the helper (SIGTERM,
//!   then SIGKILL after a grace period), reaps it and exits.
//! - The helper has PR_SET_PDEATHSIG=SIGKILL towards the guard, so it
//!   dies with it whatever happens to the guard, even if the helper changes
//!   its credentials at start (pasta run as root drops to nobody, which
//!   clears a parent-death signal set towards the launcher itself).
//! - The guard has PR_SET_PDEATHSIG=SIGKILL towards the launcher when the
//!   sandbox dies with the launcher, so `kill -9` of moksha takes both down;
//!   a detached sandbox keeps its helper until it exits itself.
//! - Both live in their own session: a Ctrl-C at the terminal reaches the
//!   launcher (which forwards it to the program), not the helper.
//!
//! Readiness: the helper gets the write end of a pipe as a fixed descriptor
//! and writes to it once it is ready (pasta's --pid, slirp4netns's
//! --ready-fd, xdg-dbus-proxy's --fd). End-of-file first means it died;
//! its output (collected in a memory file) then explains why.

use crate::sys::{self, guard as hsys};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How long a helper gets to stop after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// What to start.
pub struct Spec {
    /// For messages ("pasta").
    pub name: String,
    /// The program (a full path) and its arguments.
    pub argv: Vec<String>,
    /// The descriptor number, in the helper, of the readiness pipe.
    pub ready_fd: Option<RawFd>,
    /// The descriptor number, in the helper, of a pipe that reaches
    /// end-of-file when the helper must quit (slirp4netns's --exit-fd).
    pub exit_fd: Option<RawFd>,
    /// Whether the helper dies with the launcher (as the sandbox does).
    pub die_with_launcher: bool,
    /// How long to wait for readiness.
    pub timeout: Duration,
}

/// A running helper, as the launcher sees it.
pub struct Guarded {
    name: String,
    guard: OwnedFd,
    ready: Option<OwnedFd>,
    output: OwnedFd,
    /// Kept open by the launcher (and so by nobody once it is gone).
    _exit: Option<OwnedFd>,
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Starts the helper for the sandbox whose first process is `sandbox`
/// (a child of the caller, so its pid cannot be reused while we look).
/// The caller must be single-threaded.
pub fn spawn(spec: &Spec, sandbox: libc::pid_t) -> Result<Guarded, String> {
    let fail = |e: sys::SysError| format!("cannot start {}: {e}", spec.name);
    let sandbox_fd = sys::pidfd_open(sandbox).map_err(fail)?;
    let output = hsys::memfd(&format!("moksha-{}-output", spec.name)).map_err(fail)?;
    let (ready_r, ready_w) = sys::pipe().map_err(fail)?;
    let (exit_r, exit_w) = sys::pipe().map_err(fail)?;
    let null = sys::open_dev_null().map_err(fail)?;
    let argv: Vec<CString> = spec.argv.iter().map(|a| cstring(a)).collect();
    let launcher = std::process::id() as libc::pid_t;

    // SAFETY: the launcher is single-threaded; the child only runs `guard`,
    // which ends in _exit.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(format!("cannot start {}: fork: {e}", spec.name)),
        Ok(nix::unistd::ForkResult::Child) => {
            let fds = GuardFds {
                sandbox: sandbox_fd,
                output,
                ready: ready_w,
                exit: exit_r,
                null,
            };
            drop(ready_r);
            drop(exit_w);
            guard(spec, &argv, fds, launcher)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(ready_w);
            drop(exit_r);
            let guard = sys::pidfd_open(child.as_raw()).map_err(fail)?;
            Ok(Guarded {
                name: spec.name.clone(),
                guard,
                ready: Some(ready_r),
                output,
                _exit: spec.exit_fd.map(|_| exit_w),
            })
        }
    }
}

struct GuardFds {
    sandbox: OwnedFd,
    output: OwnedFd,
    ready: OwnedFd,
    exit: OwnedFd,
    null: OwnedFd,
}

/// The guard process. Never returns.
fn guard(spec: &Spec, argv: &[CString], fds: GuardFds, launcher: libc::pid_t) -> ! {
    let quit = |code: i32| -> ! {
        // SAFETY: _exit ends the forked process without the launcher's exit handlers.
        unsafe { libc::_exit(code) }
    };
    if spec.die_with_launcher
        && (sys::set_pdeathsig(libc::SIGKILL).is_err() || hsys::getppid() != launcher)
    {
        quit(1);
    }
    let _ = sys::setsid();
    sys::set_name("moksha-helper");
    // Keep nothing of the launcher's (its pipes, its instance lock) and no
    // terminal: the launcher's stdout may be a pipe someone reads to EOF.
    for target in 0..3 {
        let _ = hsys::dup_to(fds.null.as_raw_fd(), target);
    }
    let keep = [
        fds.sandbox.as_raw_fd(),
        fds.output.as_raw_fd(),
        fds.ready.as_raw_fd(),
        fds.exit.as_raw_fd(),
        fds.null.as_raw_fd(),
    ];
    if sys::close_fds_except(&keep).is_err() {
        quit(1);
    }
    let guard_pid = std::process::id() as libc::pid_t;

    // SAFETY: the guard is single-threaded; the child only sets itself up
    // and execs (or _exits).
    let helper = match unsafe { nix::unistd::fork() } {
        Err(_) => quit(1),
        Ok(nix::unistd::ForkResult::Child) => exec_helper(spec, argv, &fds, guard_pid),
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
    };
    drop(fds.ready);
    drop(fds.exit);
    let Ok(helper_fd) = sys::pidfd_open(helper.as_raw()) else {
        let _ = nix::sys::signal::kill(helper, nix::sys::signal::Signal::SIGKILL);
        quit(1)
    };

    // Watch both: the helper exiting on its own ends the guard with its
    // status; the sandbox exiting stops the helper.
    loop {
        match hsys::poll_readable(&[&fds.sandbox, &helper_fd], -1) {
            Ok(r) if r[1] => quit(hsys::pidfd_reap(&helper_fd).unwrap_or(1)),
            Ok(r) if r[0] => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = sys::pidfd_send_signal(&helper_fd, libc::SIGTERM, "helper");
    let grace = GRACE.as_millis() as i32;
    if !matches!(hsys::poll_readable(&[&helper_fd], grace), Ok(r) if r[0]) {
        let _ = sys::pidfd_send_signal(&helper_fd, libc::SIGKILL, "helper");
    }
    hsys::pidfd_reap(&helper_fd);
    quit(0)
}

/// The helper's side of the fork: its descriptors, signals, then exec.
fn exec_helper(spec: &Spec, argv: &[CString], fds: &GuardFds, guard_pid: libc::pid_t) -> ! {
    let quit = |code: i32| -> ! {
        // SAFETY: _exit ends the forked process without the launcher's exit handlers.
        unsafe { libc::_exit(code) }
    };
    if sys::set_pdeathsig(libc::SIGKILL).is_err() || hsys::getppid() != guard_pid {
        quit(1);
    }
    super::restore_signals();
    hsys::default_sigpipe();
    // Move the pipes above the numbers they are going to take, then put
    // every descriptor at its place: stdin /dev/null, stdout and stderr the
    // output file, the readiness and exit pipes where the helper is told.
    let high = |fd: &OwnedFd| {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a valid descriptor.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) }
    };
    let (ready, exit) = (high(&fds.ready), high(&fds.exit));
    let mut places = vec![
        (fds.null.as_raw_fd(), 0),
        (fds.output.as_raw_fd(), 1),
        (fds.output.as_raw_fd(), 2),
    ];
    if let Some(n) = spec.ready_fd {
        places.push((ready, n));
    }
    if let Some(n) = spec.exit_fd {
        places.push((exit, n));
    }
    for (fd, target) in &places {
        if *fd < 0 || hsys::dup_to(*fd, *target).is_err() {
            quit(1);
        }
    }
    let keep: Vec<RawFd> = places.iter().map(|(_, t)| *t).collect();
    if sys::close_fds_except(&keep).is_err() {
        quit(1);
    }
    let Some(path) = argv.first() else { quit(1) };
    let _ = nix::unistd::execv(path, argv);
    let msg = format!(
        "moksha: cannot execute {}: {}\n",
        spec.argv[0],
        nix::errno::Errno::last().desc()
    );
    // SAFETY: writing a valid buffer to stderr.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    quit(127)
}

impl Guarded {
    /// Waits until the helper says it is ready, it dies, or the timeout
    /// passes. An error carries the helper's own output.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let Some(ready) = self.ready.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill();
                return Err(self.failure(&format!(
                    "was not ready after {} seconds",
                    timeout.as_secs()
                )));
            }
            let r = hsys::poll_readable(&[&ready], left.as_millis().min(i32::MAX as u128) as i32)
                .map_err(|e| e.to_string())?;
            if !r[0] {
                continue;
            }
            let mut byte = [0u8; 64];
            return match nix::unistd::read(ready.as_raw_fd(), &mut byte) {
                Ok(n) if n > 0 => Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                _ => {
                    // Give the guard a moment to collect the exit status.
                    let _ = hsys::poll_readable(&[&self.guard], 1000);
                    Err(self.failure("exited before it was ready"))
                }
            };
        }
    }

    /// The message for a helper that failed, with what it printed.
    fn failure(&self, what: &str) -> String {
        let mut text = String::new();
        // SAFETY: pread into a valid buffer from a descriptor we own.
        let mut buf = vec![0u8; 8192];
        let n = unsafe {
            libc::pread(
                self.output.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
            )
        };
        if n > 0 {
            buf.truncate(n as usize);
            text = String::from_utf8_lossy(&buf).trim().to_string();
        }
        let mut msg = format!("the network helper {} {what}", self.name);
        if !text.is_empty() {
            msg.push_str(&format!("; it said:\n  {}", text.replace('\n', "\n  ")));
        }
        msg
    }

    /// Kills the guard (the helper dies with it) and reaps it.
    pub fn kill(&self) {
        let _ = sys::pidfd_send_signal(&self.guard, libc::SIGKILL, "guard");
        hsys::pidfd_reap(&self.guard);
    }

    /// After the sandbox has exited: waits for the guard to have stopped
    /// the helper, and reaps it. The launcher's own reaping may have taken
    /// the guard already; that is fine.
    pub fn finish(self) {
        let limit = (GRACE + Duration::from_secs(1)).as_millis() as i32;
        if !matches!(hsys::poll_readable(&[&self.guard], limit), Ok(r) if r[0]) {
            self.kill();
            return;
        }
        hsys::pidfd_reap(&self.guard);
    }
}
