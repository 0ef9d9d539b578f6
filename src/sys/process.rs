//! Processes: clone into namespaces, prctl settings, sessions and the
//! terminal, descriptors, exec.

use super::{check, cstr, Result, SysError};
use crate::plan::Namespace;
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// fork(2): `Some(pid)` in the parent, `None` in the child. The caller
/// must be single-threaded (the child then has a consistent copy of the
/// process, allocator locks included).
pub fn fork() -> Result<Option<libc::pid_t>> {
    // SAFETY: single-threaded caller, as documented above.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => Ok(None),
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Some(child.as_raw())),
        Err(e) => Err(SysError::new("fork()", e)),
    }
}

/// Runs `child` in a new process that shares this one's memory until it
/// executes a program or exits, as posix_spawn does (clone with CLONE_VM
/// and CLONE_VFORK, on a stack of its own): no page tables are copied and
/// neither process takes copy-on-write faults on what the other touches.
/// This process is suspended meanwhile. Returns the child's pid.
///
/// The caller must be single-threaded, and `child` must end in exec or
/// `exit_now`, changing nothing this process relies on later: it runs on
/// this process's heap (what it allocates stays allocated) and thread-local
/// state. What is per task stays its own: credentials, capabilities,
/// signal handlers and mask, the descriptor table, root, working directory
/// and umask, resource limits, no_new_privs, seccomp and landlock. The
/// dumpable flag belongs to the memory, and so is shared. (If `child`
/// panics, the child exits with 125, moksha's setup failure.)
pub fn spawn_sharing_memory(child: impl FnOnce()) -> Result<libc::pid_t> {
    const STACK: usize = 1 << 20;
    let page = page_size();
    // SAFETY: a new anonymous private mapping, nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(SysError::new("mmap(<stack>)", Errno::last()));
    }
    let unmap = || {
        // SAFETY: the mapping made above; the child, which ran on it, has
        // executed a program or exited (CLONE_VFORK) by the time this runs.
        unsafe { libc::munmap(base, STACK + page) };
    };
    // The stack grows down: its lowest page guards what lies below.
    // SAFETY: the first page of the mapping made above.
    if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
        let e = SysError::new("mprotect(<stack guard>)", Errno::last());
        unmap();
        return Err(e);
    }
    // SAFETY: the mapping's pages above the guard, ours until it is unmapped.
    let stack = unsafe { std::slice::from_raw_parts_mut((base as *mut u8).add(page), STACK) };
    let mut once = Some(child);
    let run = Box::new(move || -> isize {
        // A panic must not unwind out of the clone's entry point.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(child) = once.take() {
                child();
            }
        }));
        exit_now(125)
    });
    let flags = nix::sched::CloneFlags::CLONE_VM | nix::sched::CloneFlags::CLONE_VFORK;
    // SAFETY: single-threaded caller (documented above); the child runs
    // `run` on `stack` while this process is suspended, and ends in exec
    // or _exit, after which `stack` and `run` are ours again.
    let pid = unsafe { nix::sched::clone(run, stack, flags, Some(libc::SIGCHLD)) };
    unmap();
    pid.map(|p| p.as_raw())
        .map_err(|e| SysError::new("clone(CLONE_VM|CLONE_VFORK)", e))
}

/// _exit(2): ends a forked process at once, without the exit handlers and
/// buffers it shares with the process it was forked from.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and does not return.
    unsafe { libc::_exit(code) }
}

/// fork(2) into new namespaces. Returns `Some(pid)` in the parent and `None`
/// in the child. The caller must be single-threaded.
pub fn clone_into(namespaces: &[Namespace]) -> Result<Option<libc::pid_t>> {
    let flags = Namespace::flags(namespaces);
    // SAFETY: raw clone without a new stack behaves like fork(); moksha is
    // single-threaded when it calls this, so the child's copy of the process
    // (allocator locks included) is consistent.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        let errno = Errno::last();
        let err = SysError::new(
            format!("clone({})", Namespace::flag_names(namespaces)),
            errno,
        );
        return Err(match errno {
            Errno::ENOSPC | Errno::EUSERS => err.hint(
                "the limit on user namespaces is reached or set to 0: check \
                 `sysctl user.max_user_namespaces` (it must be > 0)",
            ),
            Errno::EPERM if namespaces.contains(&Namespace::User) => err.hint(
                "unprivileged user namespaces are refused here: check \
                 `sysctl kernel.unprivileged_userns_clone` (Debian, must be 1), \
                 `sysctl kernel.apparmor_restrict_unprivileged_userns` (Ubuntu, must be 0 \
                 or an AppArmor profile must allow moksha), or a container's seccomp policy",
            ),
            Errno::EINVAL => err.hint("is moksha running in a chroot or with threads?"),
            _ => err,
        });
    }
    Ok(if ret == 0 {
        None
    } else {
        Some(ret as libc::pid_t)
    })
}

/// unshare(2) for namespaces that can only be entered that way (time).
pub fn unshare(namespaces: &[Namespace]) -> Result<()> {
    let what = Namespace::flag_names(namespaces);
    // SAFETY: unshare with integer flags.
    check(&format!("unshare({what})"), unsafe {
        libc::unshare(Namespace::flags(namespaces))
    })
    .map(drop)
}

/// Sets the file mode creation mask; returns the previous one.
pub fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask only sets the process's file mode mask.
    unsafe { libc::umask(mask) }
}

/// A handle on the list of the calling thread's children
/// (/proc/self/task/TID/children), to read again whenever asked: opened
/// while the host's /proc is still reachable.
pub fn open_children() -> Result<std::fs::File> {
    // SAFETY: gettid has no arguments.
    let tid = unsafe { libc::gettid() };
    let path = format!("/proc/self/task/{tid}/children");
    std::fs::File::open(&path).map_err(|e| SysError::io(format!("open({path:?})"), &e))
}

/// The pids in a children list opened by `open_children`, as it is now.
pub fn read_children(list: &std::fs::File) -> Vec<libc::pid_t> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 * 1024];
    let n = list.read_at(&mut buf, 0).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Makes the calling process adopt its descendants' orphans
/// (PR_SET_CHILD_SUBREAPER), as PID 1 of a namespace does anyway.
pub fn set_child_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    check("prctl(PR_SET_CHILD_SUBREAPER, 1)", unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    })
    .map(drop)
}

pub fn set_pdeathsig(sig: libc::c_int) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    check("prctl(PR_SET_PDEATHSIG)", unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0)
    })
    .map(drop)
}

/// no_new_privs, safe between fork and exec (no allocation, even failing).
pub fn no_new_privs_raw() -> std::result::Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    match unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } {
        r if r < 0 => Err(Errno::last()),
        _ => Ok(()),
    }
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    check("prctl(PR_SET_NO_NEW_PRIVS, 1)", unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    })
    .map(drop)
}

/// Non-dumpable processes cannot be ptraced or have their /proc entries
/// read by unprivileged processes (the program, for the supervisor).
pub fn set_dumpable(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    check("prctl(PR_SET_DUMPABLE)", unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0)
    })
    .map(drop)
}

pub fn set_name(name: &str) {
    let name = cstr(name);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (truncated to 16 bytes).
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

/// The ids files are created with and checked against (setfsuid(2),
/// setfsgid(2)), the rest of the credentials unchanged. Away from 0 the
/// kernel clears the filesystem capabilities from the effective set, back
/// at 0 it restores them.
pub fn set_fs_ids(uid: u32, gid: u32) {
    // SAFETY: integer arguments only; these calls cannot fail, they return
    // the previous id.
    unsafe {
        libc::setfsgid(gid);
        libc::setfsuid(uid);
    }
}

/// Becomes `uid`/`gid` with no supplementary groups, keeping every
/// capability (SECBIT_NO_SETUID_FIXUP) for the steps that drop them.
pub fn become_ids(uid: u32, gid: u32) -> Result<()> {
    const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
    // SAFETY: prctl with integer arguments only.
    check("prctl(PR_SET_SECUREBITS, NO_SETUID_FIXUP)", unsafe {
        libc::prctl(libc::PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0)
    })?;
    // SAFETY: an empty list.
    check("setgroups([])", unsafe {
        libc::setgroups(0, std::ptr::null())
    })?;
    // SAFETY: integer arguments only.
    check(&format!("setresgid({gid})"), unsafe {
        libc::setresgid(gid, gid, gid)
    })?;
    // SAFETY: integer arguments only.
    check(&format!("setresuid({uid})"), unsafe {
        libc::setresuid(uid, uid, uid)
    })
    .map(drop)
}

pub fn setsid() -> Result<()> {
    // SAFETY: no arguments.
    check("setsid()", unsafe { libc::setsid() }).map(drop)
}

pub fn setpgid_self() -> Result<()> {
    // SAFETY: integer arguments only.
    check("setpgid(0, 0)", unsafe { libc::setpgid(0, 0) }).map(drop)
}

/// The host's memory (RAM) in bytes.
pub fn memory_total() -> Option<u64> {
    nix::sys::sysinfo::sysinfo().ok().map(|i| i.ram_total())
}

/// The path of the terminal at `fd` (e.g. /dev/pts/3), if it is one.
pub fn terminal_name(fd: RawFd) -> Option<String> {
    // SAFETY: borrowing a descriptor number for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::unistd::ttyname(fd)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The settings (termios) of the terminal at `fd`, if it is one.
pub fn terminal_settings(fd: RawFd) -> Option<nix::sys::termios::Termios> {
    // SAFETY: borrowing a descriptor number for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::sys::termios::tcgetattr(fd).ok()
}

/// Puts the terminal at `fd` back to `settings` (what a program that died
/// in raw mode, or without echo, left behind is undone).
pub fn restore_terminal(fd: RawFd, settings: &nix::sys::termios::Termios) {
    // SAFETY: borrowing a descriptor number for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, settings);
}

/// Whether `fd` is a terminal whose foreground process group is ours.
pub fn in_foreground(fd: RawFd) -> bool {
    // SAFETY: isatty/tcgetpgrp/getpgrp with integer arguments.
    unsafe { libc::isatty(fd) == 1 && libc::tcgetpgrp(fd) == libc::getpgrp() }
}

/// Makes our process group the terminal's foreground group, if fd is a tty.
/// SIGTTOU is ignored around the call so a background caller is not stopped.
pub fn take_terminal(fd: RawFd) {
    // SAFETY: getpgrp has no arguments.
    give_terminal(fd, unsafe { libc::getpgrp() });
}

/// Makes process group `pgid` the terminal's foreground group, if fd is a
/// tty (SIGTTOU ignored around the call, as in `take_terminal`).
pub fn give_terminal(fd: RawFd, pgid: libc::pid_t) {
    // SAFETY: isatty/tcsetpgrp/signal with plain integer arguments; the old
    // SIGTTOU disposition is restored.
    unsafe {
        if libc::isatty(fd) == 1 {
            let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(fd, pgid);
            libc::signal(libc::SIGTTOU, old);
        }
    }
}

pub fn sethostname(name: &str) -> Result<()> {
    // SAFETY: pointer and length of a valid buffer.
    check(&format!("sethostname({name:?})"), unsafe {
        libc::sethostname(name.as_ptr() as *const libc::c_char, name.len())
    })
    .map(drop)
}

/// Closes every fd >= 3 except those in `keep`.
pub fn close_fds_except(keep: &[RawFd]) -> Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd >= 3).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from: u32 = 3;
    for fd in keep.into_iter().chain(std::iter::once(-1)) {
        let to = if fd < 0 { u32::MAX } else { fd as u32 - 1 };
        if from <= to {
            // SAFETY: close_range on a range of descriptors we own.
            let ret = unsafe { libc::syscall(libc::SYS_close_range, from, to, 0) as libc::c_int };
            if ret < 0 && Errno::last() == Errno::ENOSYS {
                close_listed(from, to)?;
            } else {
                check(&format!("close_range({from}, {to})"), ret)?;
            }
        }
        if fd >= 0 {
            from = fd as u32 + 1;
        }
    }
    Ok(())
}

/// close_range for kernels before 5.9: the open fds in `from..=to`, as
/// /proc/self/fd lists them (read to the end before any is closed), or
/// every number below the fd limit where no /proc is mounted.
fn close_listed(from: u32, to: u32) -> Result<()> {
    let open: Vec<u32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => {
            let (soft, _) =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .map_err(|e| SysError::new("getrlimit(RLIMIT_NOFILE)", e))?;
            (from..=to.min(soft.saturating_sub(1).min(u32::MAX as u64) as u32)).collect()
        }
    };
    for fd in open.into_iter().filter(|fd| (from..=to).contains(fd)) {
        // SAFETY: closing a descriptor we own; one that is not open (the
        // directory's own, closed already) answers EBADF, ignored.
        unsafe { libc::close(fd as RawFd) };
    }
    Ok(())
}

pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SysError::new("pipe2(O_CLOEXEC)", e))
}

/// execve(2); returns only on failure, with the errno.
pub fn execve(path: &str, argv: &[CString], envp: &[CString]) -> Errno {
    let path = cstr(path);
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of pointers into CStrings that outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    Errno::last()
}

/// Makes `fd` the descriptor `target` (for the standard streams).
pub fn dup_onto(fd: &OwnedFd, target: RawFd) -> Result<()> {
    // SAFETY: dup2 between valid descriptors.
    check(&format!("dup2({}, {target})", fd.as_raw_fd()), unsafe {
        libc::dup2(fd.as_raw_fd(), target)
    })
    .map(drop)
}

/// Runs `f` on a stack of its own of `bytes` (rounded up to pages), with an
/// inaccessible page below it and one above, unmapped again afterwards; a
/// panic in `f` goes on from here. The `stacker` crate's way, without what
/// it costs first: glibc's bounds of the current stack (`stacker` asks for
/// them to restore its own limit after), which read /proc/self/maps, a
/// tenth of `moksha plan`'s system calls. Fails, having run nothing, when
/// the stack cannot be mapped (a small `ulimit -v`, strict overcommit).
pub fn on_new_stack<R>(bytes: usize, f: impl FnOnce() -> R) -> Result<R> {
    let page = page_size();
    let stack = bytes.div_ceil(page).max(1) * page;
    let mapped = stack + 2 * page;
    // SAFETY: a new private anonymous mapping that nothing else refers to;
    // unmapped below on every path, after `on_stack` has returned (a panic
    // in `f` is caught on that stack and resumed only here).
    unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            mapped,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if at == libc::MAP_FAILED {
            return Err(SysError::new("mmap(stack)", Errno::last()));
        }
        let base = at.cast::<u8>().add(page);
        if libc::mprotect(base.cast(), stack, libc::PROT_READ | libc::PROT_WRITE) != 0 {
            let errno = Errno::last();
            libc::munmap(at, mapped);
            return Err(SysError::new("mprotect(stack, read-write)", errno));
        }
        // psm's contract: a page-aligned base and size (more than the
        // target's alignment), and a callback that does not unwind.
        let outcome = psm::on_stack(base, stack, move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        });
        libc::munmap(at, mapped);
        match outcome {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// A new private anonymous read-write mapping of `bytes` whose pages take
/// memory only once written (`MAP_NORESERVE`): its address, or None.
/// Neither allocates nor panics, as the allocator calls it (heap::kept).
pub fn map_reserved(bytes: usize) -> Option<usize> {
    // SAFETY: a new private anonymous mapping, touching no existing one.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (at != libc::MAP_FAILED).then_some(at as usize)
}

/// Unmaps what `map_reserved` mapped at `at`.
///
/// # Safety
/// `at` and `bytes` are a `map_reserved` mapping that nothing refers to.
pub unsafe fn unmap_unused(at: usize, bytes: usize) {
    // SAFETY: the caller's mapping, unreferenced (the contract above).
    unsafe { libc::munmap(at as *mut libc::c_void, bytes) };
}

/// Lets go of memory a waiting process keeps but no longer uses: the
/// mapped pages of its code and constants (every PT_LOAD segment that is
/// not writable, of moksha and of each library: never written, so the page
/// cache holds the same bytes, shared, and what runs later faults its few
/// pages back in), the heap's free pages (malloc_trim, after the thread
/// cache's chunks are given back: `flush_thread_cache`) and the stack below
/// the caller's frames (`drop_dead_stack`). The launcher and the supervisor
/// call it once their sandbox has run a while: the setup code they ran is
/// most of their resident size.
///
/// The segments are gathered, the heap trimmed and the stack cut first,
/// and the code pages dropped last, in one loop: code that runs after the
/// drop faults its pages back (fault-around maps a whole window, or folio,
/// each time), so as little as may runs after it (README "Performance" has
/// the figures).
pub fn shed_idle_memory() {
    /// Up to `SEGMENTS` whole-page ranges gathered; any beyond are dropped
    /// at once (a binary with many libraries).
    const SEGMENTS: usize = 32;
    struct Gathered {
        ranges: [(usize, usize); SEGMENTS],
        len: usize,
    }
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes back the pointer given to it: our
        // `Gathered`, alive and not otherwise borrowed during the walk.
        let gathered = unsafe { &mut *data.cast::<Gathered>() };
        // SAFETY: the loader passes a valid info for the duration of the
        // call, with dlpi_phnum headers at dlpi_phdr.
        let info = unsafe { &*info };
        let name = if info.dlpi_name.is_null() {
            &b""[..]
        } else {
            // SAFETY: a NUL-terminated name the loader owns.
            unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        // The vDSO is the kernel's own mapping: left alone.
        if name.starts_with(b"linux-vdso") || name.starts_with(b"linux-gate") {
            return 0;
        }
        if info.dlpi_phdr.is_null() {
            return 0;
        }
        // SAFETY: as above.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let page = page_size();
        for h in headers {
            if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
                continue;
            }
            // Whole pages inside the segment only: a page it shares with
            // a writable neighbour may hold written data.
            let start = (info.dlpi_addr as usize + h.p_vaddr as usize).div_ceil(page) * page;
            let end = (info.dlpi_addr as usize + (h.p_vaddr + h.p_memsz) as usize) / page * page;
            if end <= start {
                continue;
            }
            if gathered.len < SEGMENTS {
                gathered.ranges[gathered.len] = (start, end - start);
                gathered.len += 1;
            } else {
                drop_file_pages(start, end - start);
            }
        }
        0
    }
    let mut gathered = Gathered {
        ranges: [(0, 0); SEGMENTS],
        len: 0,
    };
    // SAFETY: `each` follows dl_iterate_phdr's callback contract, keeps no
    // pointer past its call, and `gathered` outlives the walk.
    unsafe {
        libc::dl_iterate_phdr(Some(each), std::ptr::from_mut(&mut gathered).cast());
        #[cfg(moksha_tcache_flush)]
        flush_thread_cache();
        libc::malloc_trim(0);
    }
    drop_dead_stack();
    super::relro::let_go();
    for &(start, len) in &gathered.ranges[..gathered.len] {
        drop_file_pages(start, len);
    }
}

/// Gives the thread cache's free chunks back to the heap, and turns it off
/// for this thread: glibc keeps up to 7 free chunks of each small size
/// aside for the next malloc, ~35 KiB after a launch, and malloc_trim does
/// not look there, so they kept most pages of the heap resident. What glibc
/// runs at a thread's exit (its static archive has it; build.rs checks);
/// from then on the thread's malloc and free use the heap's bins, as they
/// do for a chunk the cache has no room for. Its arena goes back on the
/// free list, and the thread's next malloc takes it again.
#[cfg(moksha_tcache_flush)]
fn flush_thread_cache() {
    extern "C" {
        fn __malloc_arena_thread_freeres();
    }
    // SAFETY: no allocation of this thread is in progress (we are between
    // calls), the cache's chunks are free ones, and a second call finds
    // the cache gone and does nothing to it.
    unsafe { __malloc_arena_thread_freeres() }
}

/// Drops the pages of the stack below this call's frame: the setup's deep
/// calls (the mount steps, the BPF compile, the record's JSON) wrote them,
/// and what the waiting process calls from here needs a few. A page read
/// again comes back zeroed, as a stack that grows finds it anyway: what is
/// below the stack pointer is garbage.
///
/// The stack mapping's low end is found by asking mincore (which fails with
/// ENOMEM on an unmapped page) about each page below, not by reading
/// /proc/self/maps, which the supervisor may not have, or may have from a
/// procfs the sandbox mounted: the kernel keeps a gap of unmapped pages
/// below the main thread's stack (stack_guard_gap, 1 MiB unless set
/// otherwise at boot) and places other mappings far below it. Only there:
/// a thread's stack, or the evaluation's (`on_new_stack`), is a mapping of
/// its own with a PROT_NONE guard page under it, which mincore counts as
/// mapped, and the walk would go on into whatever lies below. Returns how
/// many bytes it cut.
#[inline(never)]
fn drop_dead_stack() -> usize {
    /// Kept below the stack pointer: madvise's own call.
    const MARGIN: usize = 1024;
    /// How far down it looks: a stack the setup grew deeper is cut to
    /// this much (the limit only bounds the walk's cost).
    const DEPTH: usize = 8 << 20;
    /// How far below the stack's top a frame of the main thread may be:
    /// other mappings (threads' stacks among them) start at least 128 MiB
    /// under it (the kernel's mmap_base).
    const MAIN: usize = 64 << 20;
    extern "C" {
        /// glibc's: the stack pointer at the process's entry, at the top
        /// of the main thread's stack.
        static __libc_stack_end: *const libc::c_void;
    }
    let page = page_size();
    let here = stack_pointer();
    // SAFETY: glibc sets it before main and never writes it again.
    let stack_end = unsafe { __libc_stack_end } as usize;
    if here >= stack_end || stack_end - here > MAIN {
        return 0;
    }
    let Some(top) = here.checked_sub(MARGIN).map(|a| a / page * page) else {
        return 0;
    };
    let floor = top.saturating_sub(DEPTH);
    let mut low = top;
    let mut resident = 0u8;
    while low >= floor.max(page) + page
        // SAFETY: mincore only reports on the page (whether it is mapped
        // and resident) into the one byte given.
        && unsafe { libc::mincore((low - page) as *mut libc::c_void, page, &mut resident) } == 0
    {
        low -= page;
    }
    if low < top {
        // SAFETY: [low, top) is the part of this thread's stack mapping
        // below the live frames (mapped, as mincore said, and contiguous
        // with the page below `here`); MADV_DONTNEED on private anonymous
        // memory replaces its pages with zero-filled ones on next touch.
        unsafe {
            libc::madvise(low as *mut libc::c_void, top - low, libc::MADV_DONTNEED);
        }
    }
    top - low
}

/// The stack pointer, where it is known; else the address of a local,
/// above it by at most this frame.
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; touches no memory, stack or flags.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let marker = 0u8;
        sp = std::hint::black_box(&marker) as *const u8 as usize;
    }
    sp
}

/// Drops the page table entries of `len` bytes at `start`, a read-only,
/// never-written file mapping of this process (shed_idle_memory).
fn drop_file_pages(start: usize, len: usize) {
    // SAFETY: MADV_DONTNEED on such a mapping only drops its page table
    // entries; the contents come back from the file unchanged. A range
    // gathered before is still that mapping: moksha never unloads an
    // object (no dlclose; glibc keeps NSS modules loaded), so nothing else
    // can have been mapped there since.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

/// The fields of a /proc stat file after the name, the state (field 3)
/// first: "pid (name) S ...", where the name may hold spaces and ')', so
/// they start after the last ')'. None without one.
pub fn stat_fields(stat: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let end = stat.iter().rposition(|&b| b == b')')?;
    Some(
        stat[end + 1..]
            .split(|&b| b == b' ')
            .filter(|f| !f.is_empty()),
    )
}

pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

#[cfg(test)]
mod tests {
    /// The fields after a name holding spaces and parentheses.
    #[test]
    fn stat_fields_start_after_the_last_parenthesis() {
        let stat = b"42 (a) b (c)) S 1 42 42 0 -1\n";
        let fields: Vec<&[u8]> = super::stat_fields(stat).unwrap().collect();
        assert_eq!(fields[..3], [&b"S"[..], b"1", b"42"]);
        assert!(super::stat_fields(b"42 no name").is_none());
    }

    /// `on_new_stack` runs its function on the new stack, deeper (4 MiB and
    /// more) than a test thread's 2 MiB would hold, returns its value, and
    /// lets a panic go on from the caller's stack.
    #[test]
    fn a_new_stack_runs_deep_frames_and_passes_panics_on() {
        #[inline(never)]
        fn deep(n: usize) -> usize {
            let frame = std::hint::black_box([1u8; 1024]);
            frame[0] as usize + if n == 0 { 0 } else { deep(n - 1) }
        }
        let outer = super::stack_pointer();
        let (inner, sum) =
            super::on_new_stack(32 << 20, || (super::stack_pointer(), deep(4096))).unwrap();
        assert_eq!(sum, 4096 + 1);
        assert!(outer.abs_diff(inner) > 1 << 20, "{outer:#x} {inner:#x}");
        let panicked = std::panic::catch_unwind(|| {
            super::on_new_stack(1 << 20, || panic!("inside")).unwrap();
        });
        let message = panicked.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"inside"));
        assert!(super::on_new_stack(usize::MAX / 2, || ()).is_err());
    }

    /// A thread's stack is a mapping of its own, with a guard page under it
    /// that mincore counts as mapped: the cut leaves it alone, and whatever
    /// lies below. (The main thread's cut is tests/integration/memory.rs'.)
    #[test]
    fn a_thread_stack_is_not_cut() {
        /// A deep frame, returned from: pages written below the caller's.
        #[inline(never)]
        fn deep() -> usize {
            let frame = std::hint::black_box([1u8; 64 * 1024]);
            frame.iter().map(|&b| b as usize).sum()
        }
        let cut = std::thread::spawn(|| {
            assert_eq!(deep(), 64 * 1024);
            super::drop_dead_stack()
        })
        .join()
        .unwrap();
        assert_eq!(cut, 0);
    }
}
