//! The seccomp filter, as the kernel takes it.

use super::{check, Result, SysError};
use crate::policy::bpf::Insn;

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
    install(&filter).map_err(|e| {
        SysError::new(
            format!("{} ({} instructions)", e.call, filter.len()),
            e.errno,
        )
    })
}

/// Installs a classic BPF seccomp filter (no_new_privs must be set).
fn install(prog: &[libc::sock_filter]) -> Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: fprog points at `prog`, which outlives the call.
    check("prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)", unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const _ as libc::c_ulong,
            0,
            0,
        )
    })
    .map(drop)
}
