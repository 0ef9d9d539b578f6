//! The last confinement of the program and of the supervisor: landlock
//! (paths are those inside the new root, so after pivot_root), then the
//! seccomp filter, last before exec so that setup is not filtered.

use crate::plan::Plan;
use crate::policy::bpf::{self, Arch};
use crate::policy::seccomp;
use crate::policy::seccomp::{Action, Seccomp};
use crate::sys;

/// Compiles a policy for the running architecture.
pub fn compile(policy: &Seccomp) -> Result<Vec<bpf::Insn>, String> {
    let arch = Arch::native().ok_or_else(|| {
        format!(
            "moksha's seccomp compiler knows x86_64 and aarch64, not {}; the filter cannot be built",
            std::env::consts::ARCH
        )
    })?;
    bpf::compile(policy, arch)
}

/// Landlock, then seccomp, for the program. no_new_privs must be set.
pub fn program(plan: &Plan) -> Result<(), String> {
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
    let prog = compile(&plan.security.seccomp)?;
    sys::seccomp::seccomp_filter(&prog).map_err(|e| e.to_string())
}

/// The supervisor's filter: moksha's default policy whatever the profile
/// says, and no exec or sockets at all: the supervisor only waits, reaps
/// and signals.
pub fn supervisor_policy() -> Seccomp {
    let mut p = Seccomp::default();
    for name in ["execve", "execveat", "socket", "socketpair", "ptrace"] {
        p.rules.insert(
            name.to_string(),
            seccomp::Rule {
                action: Some(Action::EPERM),
                group: Some("supervisor".into()),
                ..Default::default()
            },
        );
    }
    p
}

/// Confines the supervisor after it has forked the program.
pub fn supervisor() -> Result<(), String> {
    let prog = compile(&supervisor_policy())?;
    sys::seccomp::seccomp_filter(&prog).map_err(|e| e.to_string())
}
