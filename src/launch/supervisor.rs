//! Waiting: the supervisor (PID 1 inside) and the launcher both sit in a
//! sigwait loop, pass forwarded signals to the process below them, reap
//! children, and return the exit status of the one they watch.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

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

/// Waits for a child that was killed during setup.
pub fn wait_exit(pid: libc::pid_t) -> Option<i32> {
    waitpid(Pid::from_raw(pid), None).ok().and_then(code_of)
}
