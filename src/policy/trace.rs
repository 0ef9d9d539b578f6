//! The filter of trace mode, as data: the program's own policy, except that
//! what it refuses, and the calls that take a path or an address, go to the
//! supervisor (SECCOMP_RET_USER_NOTIF) instead of being answered in the
//! kernel. The supervisor answers each one by running the program's own
//! compiled filter on the same call (`bpf::run`): the errno it says, or,
//! where it allows the call, CONTINUE (the kernel runs the call as it
//! would have). So the program gets exactly what it gets without trace,
//! and trace never lets through a call the policy refuses: an answer the
//! supervisor cannot give (it died, the filter says kill) is a refusal.
//!
//! Kill and trap actions stay in the kernel (a notification cannot kill).

use super::bpf::{Insn, RET_ERRNO};
use super::seccomp::{Action, Seccomp};

/// SECCOMP_RET_USER_NOTIF.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;

/// The errno that marks, in the traced policy, a call allowed by the
/// program's policy that the supervisor wants to see (no call returns it:
/// errno values end at 4095, and the kernel's own at 133).
pub const MARK: u16 = 4095;

/// What a watched call does with its path, for the denial log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Opens: writes when its flags say so.
    Open,
    /// Looks (stat, access).
    Look,
    /// Executes.
    Exec,
    /// Creates or removes (always a write to the directory).
    Change,
    /// connect(2): the address is a sockaddr.
    Connect,
}

/// A watched call: which argument is the path (or sockaddr), which the
/// directory descriptor it is relative to, and which holds open flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    pub name: &'static str,
    pub path: u8,
    pub dirfd: Option<u8>,
    /// The argument with open(2) flags; for openat2, the struct open_how.
    pub flags: Option<u8>,
    pub how: bool,
    pub uses: Use,
}

const fn w(name: &'static str, path: u8, dirfd: Option<u8>, flags: Option<u8>, uses: Use) -> Watch {
    Watch {
        name,
        path,
        dirfd,
        flags,
        how: false,
        uses,
    }
}

/// The calls whose failures the denial log explains (paths not in the
/// sandbox's view, not writable; connections refused).
pub const WATCHED: &[Watch] = &[
    w("open", 0, None, Some(1), Use::Open),
    w("openat", 1, Some(0), Some(2), Use::Open),
    Watch {
        name: "openat2",
        path: 1,
        dirfd: Some(0),
        flags: Some(2),
        how: true,
        uses: Use::Open,
    },
    w("creat", 0, None, None, Use::Change),
    w("stat", 0, None, None, Use::Look),
    w("lstat", 0, None, None, Use::Look),
    w("newfstatat", 1, Some(0), None, Use::Look),
    w("statx", 1, Some(0), None, Use::Look),
    w("access", 0, None, None, Use::Look),
    w("faccessat", 1, Some(0), None, Use::Look),
    w("faccessat2", 1, Some(0), None, Use::Look),
    w("execve", 0, None, None, Use::Exec),
    w("execveat", 1, Some(0), None, Use::Exec),
    w("mkdir", 0, None, None, Use::Change),
    w("mkdirat", 1, Some(0), None, Use::Change),
    w("unlink", 0, None, None, Use::Change),
    w("unlinkat", 1, Some(0), None, Use::Change),
    w("rmdir", 0, None, None, Use::Change),
    w("connect", 1, None, None, Use::Connect),
];

pub fn watched(name: &str) -> Option<&'static Watch> {
    WATCHED.iter().find(|w| w.name == name)
}

/// The policy trace mode compiles: `p`, with every watched call that `p`
/// lets run (by its base action; argument tests stay as they are)
/// answered MARK instead, so that it reaches the supervisor too.
pub fn traced_policy(p: &Seccomp) -> Seccomp {
    let mut out = p.clone();
    for w in WATCHED {
        if !p.treatment(w.name).action.runs() {
            continue;
        }
        let rule = out.rules.entry(w.name.into()).or_default();
        rule.action = Some(Action::Errno(MARK));
    }
    out
}

/// Every errno a compiled program returns becomes a notification.
pub fn notify_refusals(prog: &mut [Insn]) {
    const RET_K: u16 = 0x06;
    for i in prog.iter_mut() {
        if i.code == RET_K && i.k & 0xffff_0000 == RET_ERRNO {
            i.k = RET_USER_NOTIF;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::bpf::{self, Arch, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, RET_ALLOW};

    /// The traced program notifies exactly where the program's own filter
    /// refuses or a watched call runs; everything else is the same answer.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_traced_filter_differs_only_by_notifying() {
        let mut p = Seccomp::default();
        p.refuse_setid_files();
        let own = bpf::compile(&p, Arch::X86_64).unwrap();
        let mut traced = bpf::compile(&traced_policy(&p), Arch::X86_64).unwrap();
        notify_refusals(&mut traced);
        let watched_nrs: Vec<u32> = WATCHED
            .iter()
            .filter_map(|w| bpf::number(Arch::X86_64, w.name))
            .collect();
        for nr in 0..460u32 {
            for args in [
                [0u64; 6],
                [0, 0x800, 0o4755, 0, 0, 0],
                [0x5412, 0x5412, 0, 0, 0, 0],
            ] {
                let a = bpf::run(&own, AUDIT_ARCH_X86_64, nr, args);
                let t = bpf::run(&traced, AUDIT_ARCH_X86_64, nr, args);
                if a & 0xffff_0000 == RET_ERRNO {
                    assert_eq!(t, RET_USER_NOTIF, "nr {nr}: a refusal is notified");
                } else if a == RET_ALLOW && watched_nrs.contains(&nr) {
                    assert_eq!(t, RET_USER_NOTIF, "nr {nr}: a watched call is notified");
                } else {
                    assert_eq!(t, a, "nr {nr} {args:?}: the same answer");
                }
            }
        }
        // The 32-bit entry points, refused without the i386 ABI: notified.
        assert_eq!(
            bpf::run(&traced, AUDIT_ARCH_I386, 1, [0; 6]),
            RET_USER_NOTIF
        );
        // Kill stays a kill.
        let mut k = Seccomp::default();
        k.set(&["keyctl".into()], Action::Kill, None, &Default::default())
            .unwrap();
        let mut traced = bpf::compile(&traced_policy(&k), Arch::X86_64).unwrap();
        notify_refusals(&mut traced);
        let keyctl = bpf::number(Arch::X86_64, "keyctl").unwrap();
        assert_eq!(
            bpf::run(&traced, AUDIT_ARCH_X86_64, keyctl, [0; 6]),
            bpf::RET_KILL_PROCESS
        );
    }
}
