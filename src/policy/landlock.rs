//! Landlock as data: the plan's settings, the access rights per ABI, and the
//! filesystem rules derived from the plan's mounts so a profile gets
//! landlock without repeating itself.
//!
//! Derived rules (paths inside the sandbox):
//!
//! | step                       | access                         |
//! |----------------------------|--------------------------------|
//! | read-only bind, pivot_root | read, execute                  |
//! | read-write bind            | read, write                    |
//! | tmpfs, mqueue              | read, write                    |
//! | proc                       | read, write                    |
//! | dev                        | read, write, ioctl on devices  |
//! | write_file                 | read                           |
//! | the empty tmpfs root `/`   | list directories only          |
//!
//! Listing the root's directory is allowed so `ls /` works; landlock rules
//! apply beneath a path, so directory names can then be listed everywhere,
//! but no file can be read, written or executed without a rule.

use crate::plan::{FsOp, Located, Plan, Step};
use serde::{Deserialize, Serialize};

// Filesystem access rights (uapi/linux/landlock.h).
pub const EXECUTE: u64 = 1 << 0;
pub const WRITE_FILE: u64 = 1 << 1;
pub const READ_FILE: u64 = 1 << 2;
pub const READ_DIR: u64 = 1 << 3;
pub const REMOVE_DIR: u64 = 1 << 4;
pub const REMOVE_FILE: u64 = 1 << 5;
pub const MAKE_CHAR: u64 = 1 << 6;
pub const MAKE_DIR: u64 = 1 << 7;
pub const MAKE_REG: u64 = 1 << 8;
pub const MAKE_SOCK: u64 = 1 << 9;
pub const MAKE_FIFO: u64 = 1 << 10;
pub const MAKE_BLOCK: u64 = 1 << 11;
pub const MAKE_SYM: u64 = 1 << 12;
/// ABI 2.
pub const REFER: u64 = 1 << 13;
/// ABI 3.
pub const TRUNCATE: u64 = 1 << 14;
/// ABI 5.
pub const IOCTL_DEV: u64 = 1 << 15;

// Network (ABI 4).
pub const NET_BIND_TCP: u64 = 1 << 0;
pub const NET_CONNECT_TCP: u64 = 1 << 1;

// Scopes (ABI 6).
pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
pub const SCOPE_SIGNAL: u64 = 1 << 1;

/// Rights that apply to a file (not only to a directory).
pub const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

/// The access names a profile uses, and the rights each stands for.
pub const ACCESS_NAMES: &[(&str, u64)] = &[
    ("read", READ_FILE | READ_DIR),
    (
        "write",
        WRITE_FILE
            | REMOVE_DIR
            | REMOVE_FILE
            | MAKE_DIR
            | MAKE_REG
            | MAKE_SOCK
            | MAKE_FIFO
            | MAKE_SYM
            | REFER
            | TRUNCATE,
    ),
    ("execute", EXECUTE),
    ("list", READ_DIR),
    ("ioctl", IOCTL_DEV),
    ("make_device", MAKE_CHAR | MAKE_BLOCK),
];

pub fn access_by_name(name: &str) -> Option<u64> {
    ACCESS_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
}

/// "read, write" for a set of rights, by the profile's names.
pub fn access_names(rights: u64) -> String {
    let write = access_by_name("write").unwrap_or(0);
    let mut out = Vec::new();
    if rights & READ_FILE != 0 {
        out.push("read");
    } else if rights & READ_DIR != 0 {
        out.push("list");
    }
    if rights & write != 0 {
        out.push("write");
    }
    if rights & EXECUTE != 0 {
        out.push("execute");
    }
    if rights & IOCTL_DEV != 0 {
        out.push("ioctl");
    }
    if rights & (MAKE_CHAR | MAKE_BLOCK) != 0 {
        out.push("make_device");
    }
    if out.is_empty() {
        out.push("nothing");
    }
    out.join(", ")
}

/// Every filesystem right an ABI knows.
pub fn fs_rights(abi: u32) -> u64 {
    let mut r = (1 << 13) - 1;
    if abi >= 2 {
        r |= REFER;
    }
    if abi >= 3 {
        r |= TRUNCATE;
    }
    if abi >= 5 {
        r |= IOCTL_DEV;
    }
    r
}

/// The landlock settings of a plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Landlock {
    /// Whether landlock is applied at all.
    pub enabled: bool,
    /// Whether filesystem rules are derived from the plan's mounts.
    pub derive: bool,
    /// Rules the profile added.
    pub rules: Vec<Step<PathRule>>,
    /// TCP ports the program may bind; `None` leaves bind unrestricted.
    pub bind_tcp: Option<Vec<u16>>,
    /// TCP ports the program may connect to; `None` leaves connect unrestricted.
    pub connect_tcp: Option<Vec<u16>>,
    /// Keep the program from connecting to abstract unix sockets created
    /// outside its landlock domain (ABI 6).
    pub scope_abstract_unix: bool,
    /// Keep the program from signalling processes outside its domain (ABI 6).
    pub scope_signals: bool,
    /// The lowest ABI the profile accepts; below it the launch fails.
    /// Without it landlock is best effort.
    pub min_abi: Option<MinAbi>,
    /// Where the network rules were set (for errors).
    pub net_at: Option<crate::plan::Pos>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MinAbi {
    pub abi: u32,
    pub at: crate::plan::Pos,
}

impl Default for Landlock {
    fn default() -> Self {
        Landlock {
            enabled: true,
            derive: true,
            rules: Vec::new(),
            bind_tcp: None,
            connect_tcp: None,
            scope_abstract_unix: true,
            scope_signals: true,
            min_abi: None,
            net_at: None,
        }
    }
}

/// One filesystem rule: `access` beneath `path` (inside the sandbox).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    pub path: String,
    pub access: u64,
    /// A missing path is skipped instead of failing the launch.
    pub optional: bool,
}

/// A filesystem rule ready to apply, and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct FsRule {
    pub path: String,
    pub access: u64,
    pub optional: bool,
    /// The step that produced it, for messages ("bind /usr", "profile").
    pub origin: String,
}

/// The filesystem rules for a plan: derived ones (when asked) then the
/// profile's, in order.
pub fn fs_rules(plan: &Plan) -> Vec<FsRule> {
    let ll = &plan.security.landlock;
    let mut out = Vec::new();
    let read = READ_FILE | READ_DIR;
    let write = access_by_name("write").unwrap_or(0);
    if ll.derive && plan.namespaces.mount {
        let mut add = |path: &str, access: u64, origin: String| {
            out.push(FsRule {
                path: path.to_string(),
                access,
                optional: true,
                origin,
            })
        };
        match &plan.root {
            Some(Located { value, .. }) => add("/", read | EXECUTE, format!("root {value}")),
            None => add("/", READ_DIR, "the tmpfs root".into()),
        }
        for Step { op, .. } in &plan.fs {
            match op {
                FsOp::Bind { target, rw, .. } => {
                    let access = if *rw { read | write } else { read | EXECUTE };
                    add(target, access, "bind".into());
                }
                FsOp::Tmpfs { target, .. } => add(target, read | write, "tmpfs".into()),
                FsOp::Mqueue { target, .. } => add(target, read | write, "mqueue".into()),
                FsOp::Proc { target, .. } => add(target, read | write, "proc".into()),
                FsOp::Dev { target, .. } => add(target, read | write | IOCTL_DEV, "dev".into()),
                FsOp::WriteFile { target, .. } => add(target, READ_FILE, "write_file".into()),
                FsOp::Mkdir { .. }
                | FsOp::Symlink { .. }
                | FsOp::RemountRo { .. }
                | FsOp::Chmod { .. } => {}
            }
        }
    }
    for step in &ll.rules {
        out.push(FsRule {
            path: step.op.path.clone(),
            access: step.op.access,
            optional: step.op.optional,
            origin: format!("{}", step.at),
        });
    }
    out
}

/// What a plan asks of landlock, reduced to what ABI `abi` offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Ruleset {
    pub abi: u32,
    pub handled_fs: u64,
    pub handled_net: u64,
    pub scoped: u64,
    pub fs: Vec<FsRule>,
    /// (port, NET_BIND_TCP / NET_CONNECT_TCP)
    pub net: Vec<(u16, u64)>,
    /// What the plan asked for that this ABI cannot do.
    pub left_out: Vec<String>,
}

/// Whether the plan restricts the filesystem (it has rules to grant).
fn restricts_fs(plan: &Plan, rules: &[FsRule]) -> bool {
    let ll = &plan.security.landlock;
    !rules.is_empty() || (!ll.derive) || plan.namespaces.mount
}

/// The ruleset for `plan` on a kernel with landlock ABI `abi` (0: none).
/// `None` when landlock is off or there is nothing to restrict.
pub fn ruleset(plan: &Plan, abi: u32) -> Option<Ruleset> {
    let ll = &plan.security.landlock;
    if !ll.enabled {
        return None;
    }
    let fs = fs_rules(plan);
    let mut left_out = Vec::new();
    if abi == 0 {
        left_out.push("all of landlock (the kernel has none, or it is disabled)".into());
        return Some(Ruleset {
            abi,
            handled_fs: 0,
            handled_net: 0,
            scoped: 0,
            fs: Vec::new(),
            net: Vec::new(),
            left_out,
        });
    }
    let handled_fs = if restricts_fs(plan, &fs) {
        fs_rights(abi)
    } else {
        0
    };
    if abi < 2 {
        left_out
            .push("renaming and linking across directories (needs ABI 2; refused instead)".into());
    }
    if abi < 3 {
        left_out.push("truncate control (needs ABI 3)".into());
    }
    if abi < 5 && fs.iter().any(|r| r.access & IOCTL_DEV != 0) {
        left_out.push("device ioctl control (needs ABI 5)".into());
    }
    let mut handled_net = 0;
    let mut net = Vec::new();
    for (ports, right, what) in [
        (&ll.bind_tcp, NET_BIND_TCP, "TCP bind"),
        (&ll.connect_tcp, NET_CONNECT_TCP, "TCP connect"),
    ] {
        if let Some(ports) = ports {
            if abi >= 4 {
                handled_net |= right;
                net.extend(ports.iter().map(|p| (*p, right)));
            } else {
                left_out.push(format!("{what} port rules (need ABI 4)"));
            }
        }
    }
    let mut scoped = 0;
    let wanted = [
        (
            ll.scope_abstract_unix,
            SCOPE_ABSTRACT_UNIX_SOCKET,
            "abstract unix socket scoping",
        ),
        (ll.scope_signals, SCOPE_SIGNAL, "signal scoping"),
    ];
    for (on, bit, what) in wanted {
        if on {
            if abi >= 6 {
                scoped |= bit;
            } else {
                left_out.push(format!("{what} (needs ABI 6)"));
            }
        }
    }
    let fs = fs
        .into_iter()
        .map(|mut r| {
            r.access &= handled_fs;
            r
        })
        .collect();
    Some(Ruleset {
        abi,
        handled_fs,
        handled_net,
        scoped,
        fs,
        net,
        left_out,
    })
}

/// The ABI the plan needs for everything it asks (for messages).
pub fn abi_needed(plan: &Plan) -> u32 {
    let ll = &plan.security.landlock;
    if ll.scope_abstract_unix || ll.scope_signals {
        6
    } else if ll.bind_tcp.is_some() || ll.connect_tcp.is_some() {
        4
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Pos;

    fn step(op: FsOp) -> Step<FsOp> {
        Step {
            op,
            at: Pos::default(),
        }
    }

    fn plan() -> Plan {
        let mut p = Plan::new("t", "t.rhai");
        p.fs = vec![
            step(FsOp::Bind {
                source: "/usr".into(),
                target: "/usr".into(),
                rw: false,
                dev: false,
                optional: false,
                replace: false,
                create: false,
            }),
            step(FsOp::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                rw: true,
                dev: false,
                optional: false,
                replace: false,
                create: false,
            }),
            step(FsOp::Tmpfs {
                target: "/tmp".into(),
                size: None,
                mode: 0o1777,
                replace: false,
            }),
            step(FsOp::Dev {
                target: "/dev".into(),
                replace: false,
            }),
        ];
        p
    }

    #[test]
    fn rules_derive_from_mounts() {
        let rules = fs_rules(&plan());
        let get = |p: &str| rules.iter().find(|r| r.path == p).unwrap().access;
        assert_eq!(get("/"), READ_DIR);
        assert_eq!(get("/usr"), READ_FILE | READ_DIR | EXECUTE);
        assert_eq!(get("/data") & EXECUTE, 0);
        assert_ne!(get("/data") & WRITE_FILE, 0);
        assert_ne!(get("/dev") & IOCTL_DEV, 0);
        assert_eq!(access_names(get("/usr")), "read, execute");
        assert_eq!(access_names(get("/tmp")), "read, write");
    }

    #[test]
    fn best_effort_reduces_to_the_abi() {
        let mut p = plan();
        p.security.landlock.connect_tcp = Some(vec![443]);
        let r = ruleset(&p, 3).unwrap();
        assert_eq!(r.handled_net, 0);
        assert!(r.left_out.iter().any(|l| l.contains("TCP connect")));
        assert!(r.left_out.iter().any(|l| l.contains("signal scoping")));
        assert_eq!(r.handled_fs & IOCTL_DEV, 0);
        let r = ruleset(&p, 7).unwrap();
        assert_eq!(r.handled_net, NET_CONNECT_TCP);
        assert_eq!(r.net, vec![(443, NET_CONNECT_TCP)]);
        assert_eq!(r.scoped, SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET);
        assert!(r.left_out.is_empty(), "{:?}", r.left_out);
        assert_eq!(abi_needed(&p), 6);
    }

    #[test]
    fn no_derivation_without_a_mount_namespace() {
        let mut p = Plan::new("t", "t.rhai");
        p.namespaces.mount = false;
        assert!(fs_rules(&p).is_empty());
        assert_eq!(ruleset(&p, 7).unwrap().handled_fs, 0);
    }
}
