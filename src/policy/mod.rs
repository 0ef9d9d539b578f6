//! Security policy as data, and the pure code that turns it into what the
//! kernel takes: the seccomp policy model with its groups and defaults
//! (`seccomp`), a classic-BPF compiler for it (`bpf`), landlock rules derived
//! from a plan (`landlock`), and resource limits by name (`limits`).
//!
//! Nothing here makes a system call; `sys` applies the results.

pub mod bpf;
pub mod landlock;
pub mod limits;
pub mod seccomp;
pub mod show;
pub mod syscalls;

use crate::plan::{Plan, Pos};

/// Pure checks of a plan's security sections: the program must be able to
/// start under the filter, and the filter must compile for this machine.
pub fn check(plan: &Plan) -> Result<(), (String, Option<Pos>)> {
    let sec = &plan.security;
    sec.seccomp.check()?;
    if let Some(arch) = bpf::Arch::native() {
        bpf::compile(&sec.seccomp, arch).map_err(|e| (e, sec.seccomp.mode_at.clone()))?;
    }
    if let Some(t) = &sec.timeout {
        if t.op.ms == 0 {
            return Err((
                "the timeout must be longer than 0".into(),
                Some(t.at.clone()),
            ));
        }
    }
    Ok(())
}
