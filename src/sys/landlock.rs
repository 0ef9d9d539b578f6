//! Landlock: the ABI query and applying a ruleset to the calling process.

use super::{check, Result, SysError};
use crate::policy::landlock::{Ruleset, FILE_RIGHTS};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;
const RULE_NET_PORT: libc::c_int = 2;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// The landlock ABI version the running kernel offers; 0 when it has no
/// landlock or it is disabled. Changes nothing.
pub fn abi() -> u32 {
    // SAFETY: with the VERSION flag the kernel only reads the flag; NULL/0 attr.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        0
    } else {
        v as u32
    }
}

/// Restricts the calling process (and its future children) to `rs`.
/// no_new_privs must be set. Paths are resolved now, in the caller's root.
pub fn restrict_self(rs: &Ruleset) -> Result<()> {
    let ruleset = build(rs)?;
    restrict(&ruleset).map_err(|errno| SysError::new("landlock_restrict_self()", errno))
}

/// Makes the ruleset `rs` as a descriptor, to enforce later with
/// `restrict` (in a child, after a fork). Paths are resolved now.
pub fn build(rs: &Ruleset) -> Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: rs.handled_fs,
        handled_access_net: rs.handled_net,
        scoped: rs.scoped,
    };
    // SAFETY: attr is a valid, correctly sized landlock_ruleset_attr; a
    // kernel with an older ABI accepts the larger size when the extra
    // fields are zero, which `ruleset` ensures.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(SysError::new(
            format!(
                "landlock_create_ruleset(fs {:#x}, net {:#x}, scoped {:#x})",
                rs.handled_fs, rs.handled_net, rs.scoped
            ),
            Errno::last(),
        ));
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for rule in &rs.fs {
        if rule.access == 0 {
            continue;
        }
        let path = match super::open_path(&rule.path) {
            Ok(p) => p,
            Err(_) if rule.optional => continue,
            Err(e) => {
                return Err(e.hint(format!(
                    "the landlock rule for {} ({}) names a path missing in the sandbox",
                    rule.path, rule.origin
                )))
            }
        };
        let access = if super::is_dir_fd(&path) {
            rule.access
        } else {
            rule.access & FILE_RIGHTS
        };
        if access == 0 {
            continue;
        }
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: path.as_raw_fd(),
        };
        // SAFETY: valid ruleset fd and a packed landlock_path_beneath_attr.
        check(
            &format!("landlock_add_rule({:?}, {:#x})", rule.path, access),
            unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset.as_raw_fd(),
                    RULE_PATH_BENEATH,
                    &attr as *const PathBeneathAttr,
                    0u32,
                ) as libc::c_int
            },
        )?;
    }
    for (port, access) in &rs.net {
        let attr = NetPortAttr {
            allowed_access: *access,
            port: *port as u64,
        };
        // SAFETY: valid ruleset fd and a landlock_net_port_attr.
        check(
            &format!("landlock_add_rule(port {port}, {access:#x})"),
            unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset.as_raw_fd(),
                    RULE_NET_PORT,
                    &attr as *const NetPortAttr,
                    0u32,
                ) as libc::c_int
            },
        )?;
    }
    Ok(ruleset)
}

/// Enforces a ruleset `build` made on the calling process (no_new_privs
/// must be set). Safe between fork and exec: one system call.
pub fn restrict(ruleset: &OwnedFd) -> std::result::Result<(), Errno> {
    // SAFETY: valid ruleset fd, no flags.
    let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
