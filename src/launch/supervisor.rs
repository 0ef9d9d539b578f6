//! Waiting: the supervisor (PID 1 inside) and the launcher both sit in a
//! sigwait loop, pass forwarded signals to the process below them, reap
//! children, and return the exit status of the one they watch.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

use super::confine;
use crate::plan::Plan;
use crate::policy::limits::{show_ms, Timeout, EXIT_TIMEOUT};
use crate::state;
use crate::sys;
use crate::sys::signal::{self, Waited};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The exit code that reports a wait status: the code, or 128+N for signal N.
pub fn code_of(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Reaps every child that has exited; returns the code of `watched` if it
/// is among them.
fn reap(watched: Pid) -> Option<i32> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(status) if status.pid() == Some(watched) => {
                if let Some(code) = code_of(status) {
                    found = Some(code);
                }
            }
            Ok(_) => {}
        }
    }
}

/// Forwards signals to `watched` and reaps children until it exits; returns
/// its code. Used by the supervisor (watching the program, reaping the PID
/// namespace's orphans) and by the launcher (watching the supervisor).
/// The signals in `waited` must be blocked.
pub fn wait_for(watched: libc::pid_t, waited: &SigSet) -> i32 {
    let watched = Pid::from_raw(watched);
    loop {
        if let Some(code) = reap(watched) {
            return code;
        }
        match waited.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(watched, sig);
            }
        }
    }
}

/// The supervisor's loop: `wait_for` with a wall-clock limit. When the
/// timeout passes, the program gets SIGTERM, and SIGKILL if it is still
/// there after the grace period; the result is then EXIT_TIMEOUT (124, as
/// timeout(1)) whatever the program's own status, and a message says why.
pub fn supervise(watched: libc::pid_t, waited: &SigSet, timeout: Option<&Timeout>) -> i32 {
    let Some(limit) = timeout else {
        return wait_for(watched, waited);
    };
    let pid = Pid::from_raw(watched);
    let mut deadline = Instant::now() + Duration::from_millis(limit.ms);
    // Signals sent so far: none, TERM, then KILL.
    let mut sent: Option<Signal> = None;
    loop {
        if let Some(code) = reap(pid) {
            return if sent.is_some() { EXIT_TIMEOUT } else { code };
        }
        let left = (sent != Some(Signal::SIGKILL))
            .then(|| deadline.saturating_duration_since(Instant::now()));
        match signal::wait_signal(waited, left) {
            Waited::Signal(Signal::SIGCHLD) | Waited::Nothing => {}
            Waited::Signal(sig) => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
            Waited::Timeout if sent.is_none() => {
                eprintln!(
                    "moksha: timeout: the sandbox ran for {}; sending SIGTERM (SIGKILL after {})",
                    show_ms(limit.ms),
                    show_ms(limit.grace_ms)
                );
                let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
                sent = Some(Signal::SIGTERM);
                deadline = Instant::now() + Duration::from_millis(limit.grace_ms);
            }
            Waited::Timeout => {
                eprintln!(
                    "moksha: timeout: the program was still running {} after SIGTERM; sending SIGKILL",
                    show_ms(limit.grace_ms)
                );
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                sent = Some(Signal::SIGKILL);
            }
        }
    }
}

/// The launcher's wait: forwards signals to the supervisor, and returns the
/// program's exit code as soon as the supervisor sends it on `status` —
/// without waiting for the PID namespace's teardown, as bubblewrap does. If
/// the supervisor dies without sending it (killed), returns its own status.
/// The signals in `waited` must be blocked.
fn wait_launcher(supervisor: libc::pid_t, waited: &SigSet, status: OwnedFd) -> i32 {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let Ok(signals) = SignalFd::with_flags(waited, SfdFlags::SFD_CLOEXEC) else {
        return wait_for(supervisor, waited);
    };
    let pid = Pid::from_raw(supervisor);
    loop {
        if let Some(code) = reap(pid) {
            return code;
        }
        let ready = sys::poll_readable(&[signals.as_fd(), status.as_fd()], None);
        if ready[1] {
            let mut buf = [0u8; 4];
            match nix::unistd::read(status.as_raw_fd(), &mut buf) {
                Ok(4) => return i32::from_le_bytes(buf),
                // End of file: the supervisor died without a word.
                _ => return wait_for(supervisor, waited),
            }
        }
        if ready[0] {
            if let Ok(Some(info)) = signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) | Err(_) => {}
                    Ok(sig) => {
                        let _ = nix::sys::signal::kill(pid, sig);
                    }
                }
            }
        }
    }
}

/// The launcher's hold on the sandbox's first process: dropped before it
/// was waited for or released (a setup step failed), it kills and reaps it.
pub struct Child {
    pub pid: libc::pid_t,
    armed: bool,
}

impl Child {
    pub fn new(pid: libc::pid_t) -> Child {
        Child { pid, armed: true }
    }

    /// A detached sandbox lives on without the launcher.
    pub fn release(mut self) {
        self.armed = false;
    }

    /// Waits for the sandbox (`wait_launcher`).
    pub fn wait(mut self, waited: &SigSet, status: OwnedFd) -> i32 {
        self.armed = false;
        wait_launcher(self.pid, waited, status)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.armed {
            let pid = Pid::from_raw(self.pid);
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// The sandbox's PID 1 after it forked the program: it keeps nothing (the
/// report pipe is closed, no capabilities, no_new_privs, a seccomp filter
/// stricter than the default), then waits, forwards signals, reaps orphans
/// and enforces the timeout; records the program's code in the instance
/// lock and sends it to the launcher on `status`. Never returns.
pub fn become_supervisor(
    plan: &Plan,
    program: libc::pid_t,
    lock: Option<&std::fs::File>,
    status: OwnedFd,
) -> ! {
    let _ = sys::caps::restrict_to(&[]);
    let _ = sys::set_no_new_privs();
    if plan.supervision.die_with_parent {
        let _ = sys::set_pdeathsig(libc::SIGKILL);
    }
    sys::set_name("moksha-init");
    if let Err(e) = confine::supervisor() {
        eprintln!("moksha: the supervisor runs unfiltered: {e}");
    }
    let timeout = plan.security.timeout.as_ref().map(|t| &t.op);
    let code = supervise(program, &super::waited_signals(), timeout);
    if let Some(lock) = lock {
        state::record_exit(lock, code);
    }
    // The launcher may return the code now; our exit still tears the PID
    // namespace down (the launcher gone, EPIPE is ignored: SIGPIPE is).
    let _ = sys::write_all(&status, &code.to_le_bytes(), "<status pipe>");
    sys::exit_now(code)
}
