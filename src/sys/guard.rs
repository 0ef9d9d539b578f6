//! Calls for guarded helper processes (launch/guard.rs): reaping and
//! polling through pidfds, memory files for their output, descriptors put
//! at fixed numbers.

use super::{check, cstr, Result, SysError};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Reaps our child behind `pidfd`, blocking until it exits. Returns its
/// exit code (128+N for signal N), or `None` when it was reaped already.
pub fn pidfd_reap(pidfd: &OwnedFd) -> Option<i32> {
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(P_PIDFD) on a valid pidfd with a valid out pointer.
        let ret = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if ret == 0 {
            // SAFETY: after a successful waitid the status fields are set.
            let (code, status) = unsafe { (info.si_code, info.si_status()) };
            return Some(if code == libc::CLD_EXITED {
                status
            } else {
                128 + status
            });
        }
        if Errno::last() != Errno::EINTR {
            return None;
        }
    }
}

/// Waits until one of `fds` is readable (or hung up), at most `timeout_ms`
/// milliseconds (-1: no limit). Returns which ones are.
pub fn poll_readable(fds: &[&OwnedFd], timeout_ms: i32) -> Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n >= 0 {
            return Ok(pfds.iter().map(|p| p.revents != 0).collect());
        }
        if Errno::last() != Errno::EINTR {
            return Err(SysError::new("poll()", Errno::last()));
        }
    }
}

/// An anonymous memory file (memfd_create), e.g. to collect a helper's
/// error output without a pipe that could fill up.
pub fn memfd(name: &str) -> Result<OwnedFd> {
    let c = cstr(name);
    // SAFETY: valid NUL-terminated name.
    let fd = check(&format!("memfd_create({name:?})"), unsafe {
        libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC)
    })?;
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `fd` also the descriptor `target`, inherited across exec.
pub fn dup_to(fd: RawFd, target: RawFd) -> Result<()> {
    if fd == target {
        // Already there: only clear close-on-exec.
        // SAFETY: fcntl on a descriptor number with integer arguments.
        return check(&format!("fcntl({fd}, F_SETFD, 0)"), unsafe {
            libc::fcntl(fd, libc::F_SETFD, 0)
        })
        .map(drop);
    }
    // SAFETY: dup2 between descriptor numbers.
    check(&format!("dup2({fd}, {target})"), unsafe {
        libc::dup2(fd, target)
    })
    .map(drop)
}

/// Resets SIGPIPE to its default action: Rust's runtime ignores it, and an
/// ignored signal stays ignored across exec (pasta even refuses to start).
pub fn default_sigpipe() {
    // SAFETY: signal with a valid signal number and SIG_DFL.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// The parent process id.
pub fn getppid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::getppid() }
}
