//! Every system call moksha makes that changes kernel state, in one place.
//! Each failure names the call and its arguments, e.g.
//! `mount("/usr" -> "/usr", BIND|REC) failed: EPERM (Operation not permitted)`,
//! and where there is a usual cause, says what to do about it.

pub mod caps;
mod fs;
pub mod landlock;
pub mod limits;
mod mount;
pub mod net;
pub mod notify;
pub mod nss;
mod pidfd;
mod process;
mod relro;
mod resolve;
pub mod seccomp;
pub mod signal;
pub mod start;

pub use fs::*;
pub use mount::*;
pub use pidfd::*;
pub use process::*;

use nix::errno::Errno;
use std::ffi::CString;
use std::fmt;
use std::os::fd::AsRawFd;

#[derive(Debug, Clone)]
pub struct SysError {
    /// The call as a person would write it, with its arguments.
    pub call: String,
    pub errno: Errno,
    /// What usually causes this and what to do.
    pub hint: Option<String>,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {:?} ({})",
            self.call,
            self.errno,
            self.errno.desc()
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SysError {}

impl SysError {
    pub fn new(call: impl Into<String>, errno: Errno) -> Self {
        SysError {
            call: call.into(),
            errno,
            hint: None,
        }
    }
    /// A std I/O error of `call`, with its errno.
    pub fn io(call: impl Into<String>, e: &std::io::Error) -> Self {
        SysError::new(call, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

pub type Result<T> = std::result::Result<T, SysError>;

/// Turns a C-style return value into a Result, capturing errno.
pub(crate) fn check(call: &str, ret: libc::c_int) -> Result<libc::c_int> {
    if ret < 0 {
        Err(SysError::new(call, Errno::last()))
    } else {
        Ok(ret)
    }
}

/// The bytes a path or string of a plan stands for, for the kernel: a
/// byte that is not UTF-8 stands in the text as U+10FF00 + byte
/// (`crate::arg`: a directory name with such a byte, an environment value).
fn cstr(s: &str) -> CString {
    // Paths and strings were validated free of NUL before we get here; a NUL
    // would truncate, so drop it defensively rather than panic.
    let mut bytes = crate::arg::to_bytes(s);
    bytes.retain(|b| *b != 0);
    CString::new(bytes).unwrap_or_default()
}

/// `/proc/self/fd/N`: names an fd as a path for calls that only take paths.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}
