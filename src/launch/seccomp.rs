//! The terminal guard: a small seccomp filter that refuses the ioctls which
//! push input into a terminal (TIOCSTI) or drive the console (TIOCLINUX),
//! for programs that share the caller's terminal. Syscalls entered through
//! another ABI (i386 `int 0x80`, x32) are refused too, since their ioctl
//! numbers would bypass the check.

use libc::sock_filter;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// x32 syscalls arrive with the native arch but this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Offsets into struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of args[1] (little-endian): the ioctl request.
const OFF_ARG1_LO: u32 = 16 + 8;

const fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The filter program.
pub fn terminal_guard() -> Vec<sock_filter> {
    let deny = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    vec![
        /* 0 */ stmt(LD_W_ABS, OFF_ARCH),
        /* 1 */ jump(JEQ_K, AUDIT_ARCH, 1, 0),
        /* 2 */ stmt(RET_K, deny),
        /* 3 */ stmt(LD_W_ABS, OFF_NR),
        /* 4 */ jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        /* 5 */ stmt(RET_K, deny),
        /* 6 */ jump(JEQ_K, libc::SYS_ioctl as u32, 1, 0),
        /* 7 */ stmt(RET_K, SECCOMP_RET_ALLOW),
        /* 8 */ stmt(LD_W_ABS, OFF_ARG1_LO),
        /* 9 */ jump(JEQ_K, libc::TIOCSTI as u32, 2, 0),
        /* 10 */ jump(JEQ_K, libc::TIOCLINUX as u32, 1, 0),
        /* 11 */ stmt(RET_K, SECCOMP_RET_ALLOW),
        /* 12 */ stmt(RET_K, deny),
    ]
}
