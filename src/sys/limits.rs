//! Resource limits.

use super::{check, Result};
use crate::policy::limits::Rlimit;
use nix::errno::Errno;

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
