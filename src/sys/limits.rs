//! Resource limits, the seccomp filter as the kernel takes it, and waiting
//! for signals with a deadline.

use super::{check, Result, SysError};
use crate::policy::bpf::Insn;
use crate::policy::limits::Rlimit;
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use std::time::Duration;

/// setrlimit(2) for one limit of the plan.
pub fn setrlimit(l: &Rlimit) -> Result<()> {
    let v = |x: Option<u64>| x.unwrap_or(libc::RLIM_INFINITY);
    let lim = libc::rlimit {
        rlim_cur: v(l.soft),
        rlim_max: v(l.hard),
    };
    // SAFETY: a valid rlimit structure; the resource number comes from the table.
    let ret = unsafe { libc::setrlimit(l.resource as _, &lim) };
    check(&format!("setrlimit({})", l.describe()), ret)
        .map(drop)
        .map_err(|e| {
            if e.errno == Errno::EPERM {
                e.hint(
                    "only real root may raise a hard limit above the one moksha was started with \
                 (`ulimit -H`); lower the value or raise the limit outside moksha",
                )
            } else if e.errno == Errno::EINVAL {
                e.hint("the soft limit must not exceed the hard limit")
            } else {
                e
            }
        })
}

/// Installs a seccomp filter on the calling thread (no_new_privs must be set).
pub fn seccomp_filter(prog: &[Insn]) -> Result<()> {
    let filter: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    super::seccomp_install(&filter).map_err(|e| {
        SysError::new(
            format!("{} ({} instructions)", e.call, filter.len()),
            e.errno,
        )
    })
}

/// What a timed wait for signals saw.
pub enum Waited {
    Signal(Signal),
    /// The time ran out.
    Timeout,
    /// Interrupted or an unknown signal: look again.
    Nothing,
}

/// sigtimedwait(2): waits for one of `set` (which must be blocked) for at
/// most `timeout`, or forever with `None`.
pub fn wait_signal(set: &SigSet, timeout: Option<Duration>) -> Waited {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: a valid signal set and a NULL or valid timespec; no siginfo wanted.
    let ret = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), ts_ptr) };
    if ret < 0 {
        return match Errno::last() {
            Errno::EAGAIN => Waited::Timeout,
            _ => Waited::Nothing,
        };
    }
    Signal::try_from(ret).map_or(Waited::Nothing, Waited::Signal)
}
