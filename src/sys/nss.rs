//! The name services of a statically linked moksha (`.cargo/config.toml`
//! links glibc statically).
//!
//! Static glibc still loads the NSS modules that nsswitch.conf names beyond
//! its built-in `files` and `dns` (systemd, mdns, resolve, sss) with a
//! dlopen of its own, and a module built against the shared libc can crash
//! such a process: on Debian 12, `getpwuid` of a uid that /etc/passwd lacks
//! is a SIGSEGV inside libnss_systemd. So a static moksha asks only what is
//! built in: /etc/passwd and /etc/group, /etc/hosts, then DNS through
//! /etc/resolv.conf (systemd-resolved's stub answers there).
//!
//! What that leaves out: user names that only a directory service knows
//! (`user_name()` then says `$USER`; the home is `$HOME` as before), and
//! host names that only mDNS or resolved's own interface answer, for the
//! egress proxy. A dynamically linked build asks every module as usual.

/// Limits the password, group and host databases to glibc's built-in
/// modules, before anything looks a name up.
#[cfg(all(target_env = "gnu", target_feature = "crt-static"))]
pub fn builtin_modules_only() {
    use std::ffi::{c_char, c_int};
    extern "C" {
        // glibc's <nss.h>: overrides nsswitch.conf for one database.
        fn __nss_configure_lookup(db: *const c_char, services: *const c_char) -> c_int;
    }
    for (db, services) in [
        (c"passwd", c"files"),
        (c"group", c"files"),
        (c"hosts", c"files dns"),
    ] {
        // SAFETY: both are NUL-terminated strings that outlive the call, and
        // glibc copies what it parses; called before any thread exists.
        let ok = unsafe { __nss_configure_lookup(db.as_ptr(), services.as_ptr()) } == 0;
        // Only an unknown database name fails, and these three are glibc's.
        debug_assert!(ok, "__nss_configure_lookup({db:?})");
    }
}

/// A dynamically linked moksha loads the modules safely: nothing to limit.
#[cfg(not(all(target_env = "gnu", target_feature = "crt-static")))]
pub fn builtin_modules_only() {}
