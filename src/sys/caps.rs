//! Capabilities: names, and the calls that drop or keep them.

use super::{Result, SysError};
use nix::errno::Errno;

/// Every capability the kernel knows by name, with its number.
pub const CAPS: &[(&str, u32)] = &[
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_DAC_READ_SEARCH", 2),
    ("CAP_FOWNER", 3),
    ("CAP_FSETID", 4),
    ("CAP_KILL", 5),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_SETPCAP", 8),
    ("CAP_LINUX_IMMUTABLE", 9),
    ("CAP_NET_BIND_SERVICE", 10),
    ("CAP_NET_BROADCAST", 11),
    ("CAP_NET_ADMIN", 12),
    ("CAP_NET_RAW", 13),
    ("CAP_IPC_LOCK", 14),
    ("CAP_IPC_OWNER", 15),
    ("CAP_SYS_MODULE", 16),
    ("CAP_SYS_RAWIO", 17),
    ("CAP_SYS_CHROOT", 18),
    ("CAP_SYS_PTRACE", 19),
    ("CAP_SYS_PACCT", 20),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_SYS_BOOT", 22),
    ("CAP_SYS_NICE", 23),
    ("CAP_SYS_RESOURCE", 24),
    ("CAP_SYS_TIME", 25),
    ("CAP_SYS_TTY_CONFIG", 26),
    ("CAP_MKNOD", 27),
    ("CAP_LEASE", 28),
    ("CAP_AUDIT_WRITE", 29),
    ("CAP_AUDIT_CONTROL", 30),
    ("CAP_SETFCAP", 31),
    ("CAP_MAC_OVERRIDE", 32),
    ("CAP_MAC_ADMIN", 33),
    ("CAP_SYSLOG", 34),
    ("CAP_WAKE_ALARM", 35),
    ("CAP_BLOCK_SUSPEND", 36),
    ("CAP_AUDIT_READ", 37),
    ("CAP_PERFMON", 38),
    ("CAP_BPF", 39),
    ("CAP_CHECKPOINT_RESTORE", 40),
];

/// The number of a capability by its kernel name (`CAP_...`).
pub fn by_name(name: &str) -> Option<u32> {
    CAPS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The calling thread's effective capabilities, as a mask (0 if the
/// kernel will not say).
pub fn effective() -> u64 {
    sets().map_or(0, |d| mask(d, |c| c.effective))
}

/// The calling thread's permitted capabilities, as a mask (every bit if
/// the kernel will not say: for checks that must fail closed).
pub fn permitted() -> u64 {
    sets().map_or(u64::MAX, |d| mask(d, |c| c.permitted))
}

fn mask(data: [CapData; 2], set: impl Fn(&CapData) -> u32) -> u64 {
    u64::from(set(&data[0])) | (u64::from(set(&data[1])) << 32)
}

/// capget(2) of the calling thread.
fn sets() -> Option<[CapData; 2]> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid, correctly laid out v3 structures.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    (r == 0).then_some(data)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;

/// Which call of `apply` failed: its name, the capability it was about
/// (if any), and the errno.
#[derive(Clone, Copy, Debug)]
pub struct Failed {
    pub call: &'static str,
    pub cap: Option<u32>,
    pub errno: Errno,
}

impl Failed {
    fn into_error(self) -> SysError {
        let call = match self.cap {
            Some(cap) => format!("{}, {cap})", self.call),
            None => self.call.to_string(),
        };
        SysError::new(call, self.errno)
    }
}

/// The core of `restrict_to`, safe between fork and exec: system calls on
/// plain values only, no allocation. `keep_mask`: the capabilities kept;
/// `last`: `last_cap()`, read before; `bounding`: also lock the securebits
/// and drop the bounding set (both need CAP_SETPCAP: a process without it,
/// an unprivileged one, can only empty its other sets).
pub fn apply(keep_mask: u64, last: u32, bounding: bool) -> std::result::Result<(), Failed> {
    let fail = |call, cap| Failed {
        call,
        cap,
        errno: Errno::last(),
    };
    if bounding {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECUREBITS,
                SECBIT_NOROOT | SECBIT_NOROOT_LOCKED,
                0,
                0,
                0,
            )
        };
        if r < 0 {
            return Err(fail("prctl(PR_SET_SECUREBITS, NOROOT|NOROOT_LOCKED)", None));
        }
        for cap in 0..=last.min(63) {
            if keep_mask & (1 << cap) == 0 {
                // SAFETY: prctl with integer arguments only.
                let r =
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                if r < 0 {
                    return Err(fail("prctl(PR_CAPBSET_DROP", Some(cap)));
                }
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r < 0 {
        return Err(fail("prctl(PR_CAP_AMBIENT, CLEAR_ALL)", None));
    }
    let lo = keep_mask as u32;
    let hi = (keep_mask >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: lo,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: hi,
        },
    ];
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: header and data are valid, correctly laid out v3 structures.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if r < 0 {
        return Err(fail("capset(kept capabilities)", None));
    }
    for cap in 0..64u32 {
        if keep_mask & (1 << cap) != 0 {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
            };
            if r < 0 {
                return Err(fail("prctl(PR_CAP_AMBIENT_RAISE", Some(cap)));
            }
        }
    }
    Ok(())
}

/// Drops every capability from all five sets except `keep`, which stay in
/// the bounding, permitted, effective and inheritable sets and are raised
/// into the ambient set so they survive execve. Securebits make sure a
/// uid 0 inside gains nothing extra at exec. (Needs CAP_SETPCAP, which a
/// sandbox's process still holds here.)
pub fn restrict_to(keep: &[u32]) -> Result<()> {
    let keep_mask: u64 = keep.iter().fold(0, |m, c| m | (1u64 << c));
    apply(keep_mask, last_cap(), true).map_err(Failed::into_error)
}

/// CAP_SETPCAP's number: whoever holds it can drop the bounding set.
pub const CAP_SETPCAP: u32 = 8;
