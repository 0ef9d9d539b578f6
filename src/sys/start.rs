//! What the Rust runtime's start does that moksha needs, done by moksha's
//! own entry (`main.rs`, `#![no_main]`).
//!
//! The runtime's start (`std::rt::lang_start`) also asks glibc for the main
//! thread's stack bounds, to name the thread in a stack overflow's report:
//! `pthread_getattr_np`, which reads and parses /proc/self/maps and asks
//! for the CPU affinity, then maps an alternate signal stack for the
//! report's handler: 46 k of `moksha plan`'s 1.35 M instructions and 17 of
//! its 61 system calls (callgrind, strace). Without it a stack overflow is
//! a SIGSEGV like any other; the guard below the stack is the kernel's.

/// The standard descriptors opened on /dev/null when closed (or a file
/// opened later would get fd 1, and what moksha prints would go there),
/// and SIGPIPE ignored: moksha's writes to a closed pipe fail with EPIPE
/// instead of ending it (`signal::die_on_broken_pipe` for the commands
/// that only print, `signal::restore_signals` for a program it starts).
pub fn runtime() {
    open_standard_fds();
    super::signal::ignore_broken_pipe();
}

fn open_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: three pollfds, a zero timeout.
    let closed = if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0 {
        fds.map(|p| p.revents & libc::POLLNVAL != 0)
    } else {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        [0, 1, 2].map(|fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1)
    };
    for fd in (0..3).filter(|&fd| closed[fd as usize]) {
        // SAFETY: a constant path; the lowest free descriptor is `fd`,
        // the lower ones being open by now.
        let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if got != fd {
            let msg = b"moksha: a standard descriptor (0, 1 or 2) is closed and /dev/null \
                        cannot be opened in its place\n";
            // SAFETY: a static buffer to stderr (wherever it is), then out.
            unsafe {
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(125);
            }
        }
    }
}
