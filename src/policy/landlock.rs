//! Landlock as data: the plan's settings, the access rights per ABI, and
//! the reduction of a plan's rules to what the running kernel's ABI offers
//! (the rules themselves are derived from the mounts in `plan::access`).

use crate::located::Step;
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
    pub net_at: Option<crate::located::Pos>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MinAbi {
    pub abi: u32,
    pub at: crate::located::Pos,
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

/// The ruleset for the settings `ll` and the filesystem rules `fs` on a
/// kernel with landlock ABI `abi` (0: none); `restrict_fs`: the filesystem
/// is restricted (the sandbox has a root of its own, or rules to grant).
/// `None` when landlock is off.
pub fn ruleset(ll: &Landlock, fs: Vec<FsRule>, restrict_fs: bool, abi: u32) -> Option<Ruleset> {
    if !ll.enabled {
        return None;
    }
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
    let handled_fs = if restrict_fs || !fs.is_empty() || !ll.derive {
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
