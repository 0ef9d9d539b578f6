//! The seccomp filter, as the kernel takes it.

use super::{Result, SysError};
use crate::policy::bpf::Insn;
use nix::errno::Errno;

/// A compiled filter in the kernel's layout, ready to install: made before
/// a fork, installed in the child with `install`, which allocates nothing.
pub struct Filter(Vec<libc::sock_filter>);

impl Filter {
    pub fn new(prog: &[Insn]) -> Filter {
        Filter(
            prog.iter()
                .map(|i| libc::sock_filter {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The program as the kernel takes it; it points into `self`.
    pub fn fprog(&self) -> libc::sock_fprog {
        libc::sock_fprog {
            len: self.0.len() as u16,
            filter: self.0.as_ptr() as *mut _,
        }
    }

    /// Installs the filter on the calling thread (no_new_privs must be
    /// set). Safe between fork and exec: one prctl, no allocation.
    pub fn install(&self) -> std::result::Result<(), Errno> {
        let fprog = self.fprog();
        // SAFETY: fprog points at the filter, which outlives the call.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &fprog as *const _ as libc::c_ulong,
                0,
                0,
            )
        };
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(())
        }
    }
}

/// Installs a seccomp filter on the calling thread (no_new_privs must be set).
pub fn seccomp_filter(prog: &[Insn]) -> Result<()> {
    let filter = Filter::new(prog);
    filter.install().map_err(|errno| {
        let e = SysError::new(
            format!(
                "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) ({} instructions)",
                filter.len()
            ),
            errno,
        );
        // The kernel's limit on the instructions along a process's filters
        // (MAX_INSNS_PER_PATH), met in deeply nested sandboxes: when this
        // process was under filters already (mode 2) before this one.
        // SAFETY: prctl with integer arguments only.
        let filtered = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } == 2;
        match errno {
            Errno::ENOMEM if filtered => e.hint(
                "the seccomp filters already on this process (from the sandbox or container \
                 moksha runs in) leave no room for another: the kernel allows 32768 \
                 instructions along a process's filters; run moksha from outside it",
            ),
            _ => e,
        }
    })
}
