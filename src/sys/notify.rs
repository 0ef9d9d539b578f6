//! Seccomp user notification (seccomp_unotify(2)), for trace mode: a filter
//! whose refusals go to a listener, which answers them; reading the
//! notifying process's memory (the path it passed); taking a descriptor
//! from another process (pidfd_getfd).

use super::{Result, SysError};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const SECCOMP_GET_NOTIF_SIZES: libc::c_uint = 3;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_uint = 1 << 3;
/// Answer: let the call run as the filter had allowed it.
pub const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// struct seccomp_data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// struct seccomp_notif.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Notif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

/// struct seccomp_notif_resp.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// struct seccomp_notif_sizes.
#[repr(C)]
#[derive(Default)]
struct NotifSizes {
    notif: u16,
    resp: u16,
    data: u16,
}

// _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct
// seccomp_notif_resp), _IOW('!', 2, __u64).
const IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const IOCTL_NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;

/// Whether this kernel's notification structures are the ones moksha
/// knows (it refuses to trace otherwise rather than misread them).
pub fn sizes_match() -> bool {
    let mut s = NotifSizes::default();
    // SAFETY: the kernel writes a struct seccomp_notif_sizes into `s`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut s as *mut NotifSizes,
        )
    };
    r == 0
        && s.notif as usize == std::mem::size_of::<Notif>()
        && s.resp as usize == std::mem::size_of::<NotifResp>()
        && s.data as usize == std::mem::size_of::<SeccompData>()
}

/// Installs `filter` on the calling thread (no_new_privs set) and returns
/// the listener of its notifications (close-on-exec). No allocation.
pub fn install_with_listener(
    filter: &super::seccomp::Filter,
) -> std::result::Result<OwnedFd, Errno> {
    let fprog = filter.fprog();
    // SAFETY: fprog points at the filter, which outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: just returned by seccomp, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

/// Whether the kernel has pidfd_getfd (Linux 5.6), which the supervisor
/// takes the listener with: asked with an invalid pidfd, it answers EBADF.
pub fn takes_descriptors() -> bool {
    // SAFETY: integer arguments; fd -1 is refused before anything is done.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, -1, 0, 0) };
    !(r < 0 && Errno::last() == Errno::ENOSYS)
}

/// The descriptor `fd` of the process behind `pidfd`, as our own.
pub fn pidfd_getfd(pidfd: &OwnedFd, fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: integer arguments; the result is a new descriptor of ours.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(SysError::new(
            format!("pidfd_getfd(pidfd, {fd})"),
            Errno::last(),
        ));
    }
    // SAFETY: just returned by pidfd_getfd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// The next notification on `listener` (blocks). `Err(ENOENT)`: the
/// notifying call went away (a signal) before we read it.
pub fn receive(listener: &OwnedFd) -> std::result::Result<Notif, Errno> {
    let mut n = Notif::default();
    // SAFETY: the kernel fills a struct seccomp_notif (zeroed, as it must be).
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), IOCTL_NOTIF_RECV as _, &mut n) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(n)
    }
}

/// Answers notification `id`: with `run`, the call runs as the filter had
/// allowed it (CONTINUE); otherwise it fails with `errno` (0: returns 0
/// without running, as SECCOMP_RET_ERRNO with 0 does).
pub fn respond(
    listener: &OwnedFd,
    id: u64,
    errno: i32,
    run: bool,
) -> std::result::Result<(), Errno> {
    let resp = NotifResp {
        id,
        val: 0,
        error: if run { 0 } else { -errno },
        flags: if run {
            SECCOMP_USER_NOTIF_FLAG_CONTINUE
        } else {
            0
        },
    };
    // SAFETY: a struct seccomp_notif_resp the kernel reads.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), IOCTL_NOTIF_SEND as _, &resp) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Whether notification `id` still waits for an answer (its process has
/// not gone away, so what was read of its memory was its).
pub fn still_valid(listener: &OwnedFd, id: u64) -> bool {
    // SAFETY: reads a u64.
    unsafe { libc::ioctl(listener.as_raw_fd(), IOCTL_NOTIF_ID_VALID as _, &id) == 0 }
}

/// Up to `len` bytes of process `pid`'s memory at `addr`, stopping at a
/// page boundary (which the next call continues from).
fn read_chunk(pid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let page = 4096u64;
    let len = len.min((page - addr % page) as usize);
    let mut buf = vec![0u8; len];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: `local` is our buffer of `len` bytes; the remote side is
    // only read, by the kernel, with the access checks of ptrace.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n <= 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// The NUL-terminated string at `addr` in process `pid`, at most `max`
/// bytes; `None` when unreadable or longer.
pub fn read_c_string(pid: i32, addr: u64, max: usize) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        let chunk = read_chunk(pid, at, max - out.len())?;
        if let Some(end) = chunk.iter().position(|b| *b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some(out);
        }
        at += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    None
}

/// `len` bytes of process `pid`'s memory at `addr`.
pub fn read_bytes(pid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < len {
        let chunk = read_chunk(pid, at, len - out.len())?;
        at += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    Some(out)
}

/// A page of memory shared with the processes forked after it was made
/// (MAP_SHARED): a few atomic words two processes exchange without a
/// system call.
pub struct SharedWords {
    page: *mut std::sync::atomic::AtomicI32,
}

/// How many words a `SharedWords` holds.
pub const SHARED_WORDS: usize = 1024;

impl SharedWords {
    pub fn new() -> Result<SharedWords> {
        // SAFETY: a new anonymous shared mapping of one page; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(SysError::new(
                "mmap(4096, MAP_SHARED|MAP_ANONYMOUS)",
                Errno::last(),
            ));
        }
        Ok(SharedWords { page: p.cast() })
    }

    /// Word `i` (< SHARED_WORDS).
    pub fn word(&self, i: usize) -> &std::sync::atomic::AtomicI32 {
        assert!(i < SHARED_WORDS);
        // SAFETY: the page stays mapped for the process's life (it is never
        // unmapped) and holds SHARED_WORDS i32s; AtomicI32 has i32's layout
        // and a zeroed page is valid for it.
        unsafe { &*self.page.add(i) }
    }
}
