//! Other processes, through pidfds: a handle that keeps naming one
//! process even after its pid is reused.

use super::{check, Result, SysError};
use crate::plan::Namespace;
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A pidfd for `pid`: a handle that keeps naming this process even if the
/// pid is reused after it exits.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(SysError::new(format!("pidfd_open({pid})"), Errno::last()));
    }
    // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `sig` to the process behind a pidfd.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: libc::c_int, shown: &str) -> Result<()> {
    // SAFETY: valid pidfd, no siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(SysError::new(
            format!("pidfd_send_signal({shown}, {sig})"),
            Errno::last(),
        ));
    }
    Ok(())
}

/// Joins the `namespaces` of the process behind a pidfd, all at once.
pub fn setns_pidfd(pidfd: &OwnedFd, namespaces: &[Namespace]) -> Result<()> {
    let shown = format!("pidfd, {}", Namespace::flag_names(namespaces));
    // SAFETY: valid pidfd and namespace flags.
    check(&format!("setns({shown})"), unsafe {
        libc::setns(pidfd.as_raw_fd(), Namespace::flags(namespaces))
    })
    .map(drop)
}

/// Waits until one of `fds` is readable or hung up (a pidfd: its process
/// has exited), at most `limit` (`None`: without limit); says which are.
/// An interrupted wait goes on for the time left.
pub fn poll_readable(fds: &[BorrowedFd], limit: Option<Duration>) -> Vec<bool> {
    let deadline = limit.map(|l| Instant::now() + l);
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Rounded up: a wait of 0.4 ms must not become a busy loop.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: `pfds` is a valid array of pollfds for the call's duration.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n >= 0 || Errno::last() != Errno::EINTR {
            return pfds.iter().map(|p| n > 0 && p.revents != 0).collect();
        }
    }
}

/// Waits until the process behind `pidfd` has exited, at most `limit`.
pub fn pidfd_wait(pidfd: &OwnedFd, limit: Duration) -> bool {
    poll_readable(&[pidfd.as_fd()], Some(limit))[0]
}
