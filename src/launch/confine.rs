//! The last confinement of the program and of the supervisor: landlock
//! (paths are those inside the new root, so after pivot_root), then the
//! seccomp filter, last before exec so that setup is not filtered.

use crate::plan::Plan;
use crate::policy::bpf::{self, Arch};
use crate::policy::seccomp;
use crate::policy::seccomp::{Action, Seccomp};
use crate::sys;

/// Why trace mode cannot run on this kernel (checked before launch, and
/// again by the program before it installs the filter).
pub const TRACE_NEEDS: &str = "trace mode needs seccomp user notification and pidfd_getfd \
     (Linux 5.6 or newer) with the structures moksha knows; run without --trace";

/// Compiles a policy for the running architecture.
pub fn compile(policy: &Seccomp) -> Result<Vec<bpf::Insn>, String> {
    bpf::compile(policy, native_arch()?)
}

fn native_arch() -> Result<Arch, String> {
    Arch::native().ok_or_else(|| {
        format!(
            "moksha's seccomp compiler knows x86_64 and aarch64, not {}; the filter cannot be built",
            std::env::consts::ARCH
        )
    })
}

/// Landlock, then seccomp, for the program. no_new_privs must be set.
/// `compiled`: the plan's policy compiled already (by its validation).
/// In trace mode (`handoff`), the filter notifies the supervisor, which
/// takes its listener before this returns (tracer.rs).
pub fn program(
    plan: &Plan,
    handoff: Option<&super::tracer::Handoff>,
    compiled: Option<&[bpf::Insn]>,
) -> Result<(), String> {
    let ll = &plan.security.landlock;
    let abi = sys::landlock::abi();
    if let Some(min) = &ll.min_abi {
        if abi < min.abi {
            return Err(format!(
                "{}: the profile requires landlock ABI {} or newer, but this kernel offers {}; \
                 refusing to run without it (drop the requirement to run best-effort)",
                min.at,
                min.abi,
                if abi == 0 {
                    "none (landlock is missing or disabled: check the lsm= boot parameter)".into()
                } else {
                    format!("ABI {abi}")
                }
            ));
        }
    }
    if abi > 0 {
        if let Some(rs) = crate::plan::access::ruleset(plan, abi) {
            sys::landlock::restrict_self(&rs).map_err(|e| e.to_string())?;
        }
    }
    let Some(handoff) = handoff else {
        let prog = match compiled {
            Some(prog) => std::borrow::Cow::Borrowed(prog),
            None => std::borrow::Cow::Owned(compile(&plan.security.seccomp)?),
        };
        return sys::seccomp::seccomp_filter(&prog).map_err(|e| e.to_string());
    };
    if !sys::notify::sizes_match() {
        return Err(TRACE_NEEDS.into());
    }
    let mut prog = compile(&super::tracer::traced(&plan.security.seccomp))?;
    crate::policy::trace::notify_refusals(&mut prog);
    let filter = sys::seccomp::Filter::new(&prog);
    // For the moment of the handoff only: the supervisor, without
    // capabilities over us, may take a descriptor of a dumpable process of
    // its own uid. exec sets it again for the program.
    sys::set_dumpable(true).map_err(|e| e.to_string())?;
    let fd = sys::notify::install_with_listener(&filter).map_err(|e| {
        format!(
            "seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER) ({} instructions) failed: {e}",
            filter.len()
        )
    })?;
    // From here on every call may be notified: nothing but atomics until
    // the supervisor holds the listener.
    if !handoff.offer(std::os::fd::AsRawFd::as_raw_fd(&fd)) {
        // Nobody will answer: end here, without a call the filter could hold.
        sys::exit_now(super::EXIT_SETUP);
    }
    // Our copy is close-on-exec; closing it is a call the supervisor answers.
    drop(fd);
    Ok(())
}

/// The supervisor's filter: moksha's default policy whatever the profile
/// says, and no exec or sockets at all: the supervisor only waits, reaps
/// and signals.
pub fn supervisor_policy(trace: bool) -> Seccomp {
    let mut p = Seccomp::default();
    if trace {
        // The tracer reads the path or address a notified call passed.
        p.rules.remove("process_vm_readv");
    }
    for name in ["execve", "execveat", "socket", "socketpair", "ptrace"] {
        p.rules.insert(
            name.into(),
            seccomp::Rule {
                action: Some(Action::EPERM),
                group: Some("supervisor".into()),
                ..Default::default()
            },
        );
    }
    p
}

/// Confines the supervisor after it has started the program (the program
/// runs meanwhile: the compilation is not on its way to exec).
pub fn supervisor(trace: bool) -> Result<(), String> {
    let prog = bpf::compile_uncached(&supervisor_policy(trace), native_arch()?)?;
    sys::seccomp::seccomp_filter(&prog).map_err(|e| e.to_string())
}
