//! Waiting: the supervisor (PID 1 inside) and the launcher both sit in a
//! sigwait loop, pass forwarded signals to the process below them, reap
//! children, and return the exit status of the one they watch.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

use crate::policy::limits::{show_ms, Timeout, EXIT_TIMEOUT};
use crate::sys::limits::{self, Waited};

/// The exit code that reports a wait status: the code, or 128+N for signal N.
fn code_of(status: WaitStatus) -> Option<i32> {
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
        match limits::wait_signal(waited, left) {
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
pub fn wait_launcher(
    supervisor: libc::pid_t,
    waited: &SigSet,
    status: std::os::fd::OwnedFd,
) -> i32 {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::{AsFd, AsRawFd};
    let Ok(signals) = SignalFd::with_flags(waited, SfdFlags::SFD_CLOEXEC) else {
        return wait_for(supervisor, waited);
    };
    let pid = Pid::from_raw(supervisor);
    loop {
        if let Some(code) = reap(pid) {
            return code;
        }
        let mut fds = [
            libc::pollfd {
                fd: signals.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: status.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut buf = [0u8; 4];
            match nix::unistd::read(status.as_raw_fd(), &mut buf) {
                Ok(4) => return i32::from_le_bytes(buf),
                // End of file: the supervisor died without a word.
                _ => return wait_for(supervisor, waited),
            }
        }
        if fds[0].revents != 0 {
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

/// Waits for a child that was killed during setup.
pub fn wait_exit(pid: libc::pid_t) -> Option<i32> {
    waitpid(Pid::from_raw(pid), None).ok().and_then(code_of)
}
