//! The exposure score, in the manner of `systemd-analyze security`: 0 is
//! the strictest sandbox moksha can build, and each grant that lets the
//! program reach something of the host adds the points below. The weights
//! are documented (and justified) in docs/explain.md; change both together.
//!
//! The score compares profiles; it is not a measure of safety. Its scale
//! is the sum of points, so one more writable directory always counts.

use super::Grant;
use serde::Serialize;

// Namespaces shared with the host.
pub const SHARED_USER: u32 = 10;
pub const SHARED_MOUNT: u32 = 30;
pub const SHARED_PID: u32 = 5;
pub const SHARED_IPC: u32 = 3;
pub const SHARED_UTS: u32 = 1;
pub const SHARED_CGROUP: u32 = 1;

// The filesystem. Read-only binds of the system (/usr, /etc, ...) count 0:
// every program reads them and they hold nothing of the user's.
pub const ROOT_DIR: u32 = 20;
pub const HOST_ROOT_RO: u32 = 25;
pub const HOST_ROOT_RW: u32 = 40;
pub const HOME_RO: u32 = 15;
pub const HOME_RW: u32 = 25;
pub const BIND_RO: u32 = 1;
pub const BIND_RW: u32 = 3;
pub const BIND_RW_EXEC: u32 = 4;
/// A bind from /run/ or /tmp/.X11-unix and the like: a host service's socket.
pub const HOST_SOCKET: u32 = 3;
/// A host device node (GPU, sound, webcam).
pub const DEVICE: u32 = 2;

// The environment.
pub const WHOLE_ENV: u32 = 5;

// The network.
pub const NET_HOST: u32 = 20;
pub const NET_USER: u32 = 10;
pub const NET_HOST_LOOPBACK: u32 = 5;
pub const NET_JOIN: u32 = 10;
pub const FORWARD: u32 = 1;
/// Egress through the proxy: an allowed name or wildcard, every name, an
/// IP rule (it opens loopback and private addresses too).
pub const EGRESS_NAME: u32 = 1;
pub const EGRESS_ANY: u32 = 10;
pub const EGRESS_NET: u32 = 3;

// D-Bus through the filtering proxy.
pub const DBUS_TALK: u32 = 1;
pub const DBUS_OWN: u32 = 1;
pub const DBUS_CALL: u32 = 1;
pub const DBUS_UNFILTERED: u32 = 15;

// Syscalls and the filter's argument checks.
pub const NESTED_NAMESPACES: u32 = 5;
pub const ANY_PERSONALITY: u32 = 1;
pub const ANY_FAMILY: u32 = 2;
pub const FAMILY: u32 = 1;
pub const COMPAT_ABI: u32 = 1;

/// Points for a syscall group the default refuses and the profile allows.
pub fn group_points(group: &str) -> u32 {
    match group {
        "@debug" | "@mount" | "@privileged" | "@module" | "@reboot" | "@raw-io" => 8,
        "@namespaces" | "@io-uring" | "@keyring" | "@clock" | "@swap" => 3,
        _ => 1,
    }
}

// Capabilities (in the sandbox's user namespace).
pub const CAP: u32 = 2;
pub const CAP_ADMIN: u32 = 8;
/// Capabilities that administer the namespace's resources.
pub const ADMIN_CAPS: [&str; 5] = [
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_PTRACE",
    "DAC_OVERRIDE",
    "SYS_MODULE",
];

// Confinement.
pub const LANDLOCK_OFF: u32 = 5;
pub const LANDLOCK_NO_DERIVE: u32 = 3;
pub const TERMINAL: u32 = 2;
/// Run by root, the program stays the host's root (`s.host_root(true)`):
/// root-owned files in writable binds are its own, no process bound.
pub const HOST_ROOT: u32 = 10;

/// The total and the grants that made it, largest first.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Score {
    pub total: u32,
    /// (points, kind and key), for the grants with points.
    pub items: Vec<(u32, String)>,
}

pub fn score(grants: &[Grant]) -> Score {
    let mut items: Vec<(u32, String)> = grants
        .iter()
        .filter(|g| g.points > 0)
        .map(|g| {
            (
                g.points,
                format!("{}: {}", super::render::kind_name(g.kind), g.key),
            )
        })
        .collect();
    items.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Score {
        total: items.iter().map(|i| i.0).sum(),
        items,
    }
}
