//! The name services of a statically linked moksha (`.cargo/config.toml`
//! links glibc statically on x86_64).
//!
//! Static glibc still loads the NSS modules that nsswitch.conf names beyond
//! its built-in `files` and `dns` (systemd, mdns, resolve, sss) with a
//! dlopen of its own, and a module built against the shared libc can crash
//! such a process: on Debian 12, `getpwuid` of a uid that /etc/passwd lacks
//! is a SIGSEGV inside libnss_systemd. So a static moksha asks only what is
//! built in: /etc/passwd, /etc/group and the other files, /etc/hosts, then
//! DNS through /etc/resolv.conf (systemd-resolved's stub answers there).
//!
//! What that leaves out: user names that only a directory service knows
//! (`user_name()` then says `$USER`; the home is `$HOME` as before), and
//! host names that only mDNS, `myhostname` or resolved's own interface
//! answer, for the egress proxy. A dynamically linked build asks every
//! module as usual.

/// The databases and the built-in modules each may ask: every database
/// glibc has (`nss/databases.def`), so that none loads a module.
#[cfg(all(target_env = "gnu", target_feature = "crt-static"))]
const BUILT_IN: &[(&std::ffi::CStr, &std::ffi::CStr)] = &[
    (c"passwd", c"files"),
    (c"group", c"files"),
    (c"shadow", c"files"),
    (c"gshadow", c"files"),
    (c"initgroups", c"files"),
    (c"hosts", c"files dns"),
    (c"networks", c"files"),
    (c"services", c"files"),
    (c"protocols", c"files"),
    (c"ethers", c"files"),
    (c"rpc", c"files"),
    (c"netgroup", c"files"),
    (c"aliases", c"files"),
    (c"publickey", c"files"),
];

/// Limits every NSS database to glibc's built-in modules. It runs as a
/// constructor, before `main` and before any thread (a test binary's
/// harness included); `main` calls it too, which keeps this object in the
/// link (the linker leaves out an archive member nobody refers to, and its
/// constructor with it). Later calls do nothing.
#[cfg(all(target_env = "gnu", target_feature = "crt-static"))]
pub fn builtin_modules_only() {
    use std::ffi::{c_char, c_int};
    use std::sync::atomic::{AtomicBool, Ordering};
    extern "C" {
        // glibc's <nss.h>: overrides nsswitch.conf for one database (and
        // stops glibc from reading it again).
        fn __nss_configure_lookup(db: *const c_char, services: *const c_char) -> c_int;
    }
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    for (db, services) in BUILT_IN {
        // SAFETY: both are NUL-terminated strings that outlive the call, and
        // glibc copies what it parses; the first call runs before any thread.
        if unsafe { __nss_configure_lookup(db.as_ptr(), services.as_ptr()) } != 0 {
            // An unknown database or no memory for the parse: a lookup
            // could then load a module, and crash. No allocation here (a
            // constructor), so the message is written as it is.
            let msg = b"moksha: cannot limit name lookups to glibc's built-in modules \
                        (__nss_configure_lookup failed); build moksha dynamically \
                        (RUSTFLAGS=) on this system\n";
            // SAFETY: writes a static buffer to stderr, then leaves.
            unsafe {
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(1);
            }
        }
    }
}

#[cfg(all(target_env = "gnu", target_feature = "crt-static"))]
#[used]
#[link_section = ".init_array"]
static AT_START: extern "C" fn() = {
    extern "C" fn at_start() {
        builtin_modules_only();
    }
    at_start
};

/// A dynamically linked moksha loads the modules safely: nothing to limit.
#[cfg(not(all(target_env = "gnu", target_feature = "crt-static")))]
pub fn builtin_modules_only() {}
