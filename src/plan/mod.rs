//! The Plan: a plain, serializable description of one sandbox.
//!
//! A profile evaluates to a Plan; `validate` checks it without privileges;
//! `launch` turns it into kernel state. Nothing here touches the host.

pub mod access;
pub mod egress;
pub mod helper;
pub mod mounts;
pub mod namespace;
pub mod network;
mod show;
pub use show::HostView;
#[cfg(test)]
mod tests;
pub mod validate;

pub use crate::located::{Located, Pos, Step};
pub use namespace::Namespace;
pub use network::{Forward, NetMode, Network, Proto, UserNet};
pub use validate::{validate, validate_compiled, ValidationError};

use serde::{Deserialize, Serialize};

/// The whole sandbox.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Instance name (the profile may set it; defaults to the sandbox name).
    pub name: String,
    /// The profile file this plan came from, as given.
    pub profile: String,
    pub namespaces: Namespaces,
    pub ids: Ids,
    /// A host directory bind-mounted as the new root, instead of an empty tmpfs.
    pub root: Option<Located>,
    /// Filesystem steps, applied in order inside the new root.
    pub fs: Vec<Step<FsOp>>,
    pub process: Process,
    pub supervision: Supervision,
    pub security: Security,
    /// Host processes and files prepared beside the sandbox (helper.rs).
    #[serde(default)]
    pub helpers: Vec<Step<helper::Helper>>,
    /// Warnings the profile left for its user (a missing desktop service).
    #[serde(default)]
    pub warnings: Vec<Located>,
    /// The network: none, host, user-mode (pasta), or a joined namespace.
    #[serde(default)]
    pub network: Network,
}

/// Which namespaces are new (true) or shared with the host (false).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    pub user: bool,
    pub mount: bool,
    pub pid: bool,
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    pub cgroup: bool,
    pub time: bool,
}

impl Default for Namespaces {
    /// Strict by default: everything but the time namespace is new.
    fn default() -> Self {
        Namespaces {
            user: true,
            mount: true,
            pid: true,
            net: true,
            ipc: true,
            uts: true,
            cgroup: true,
            time: false,
        }
    }
}

impl Namespaces {
    /// The flag for one namespace: true when the sandbox has its own.
    pub fn flag_mut(&mut self, ns: Namespace) -> &mut bool {
        match ns {
            Namespace::User => &mut self.user,
            Namespace::Mount => &mut self.mount,
            Namespace::Pid => &mut self.pid,
            Namespace::Net => &mut self.net,
            Namespace::Ipc => &mut self.ipc,
            Namespace::Uts => &mut self.uts,
            Namespace::Cgroup => &mut self.cgroup,
            Namespace::Time => &mut self.time,
        }
    }

    /// Whether the sandbox has its own `ns`.
    pub fn is_new(&self, ns: Namespace) -> bool {
        let mut copy = *self;
        *copy.flag_mut(ns)
    }

    /// The new namespaces, in a stable order.
    pub fn new_ones(&self) -> Vec<Namespace> {
        Namespace::ALL
            .into_iter()
            .filter(|n| self.is_new(*n))
            .collect()
    }
}

/// The ids the program has inside the user namespace. The caller's own
/// uid/gid are mapped to them (the only mapping an unprivileged user may write).
/// `None` maps the caller to itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct Ids {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The profile keeps the host's root as the sandbox's identity when
    /// moksha runs as root (`s.host_root(true)`, flagged by `moksha plan`).
    #[serde(default)]
    pub host_root: Option<Pos>,
    /// Set by `launch::prepare` for a root launch without `host_root`: the
    /// host's root is mapped in only for setup; the program, and every file
    /// setup creates, is the host's nobody (`NOBODY`).
    #[serde(default)]
    pub as_nobody: bool,
}

impl Ids {
    /// The ids (inside) a root launch's program runs as, and owns what
    /// setup creates with, when it runs as nobody (`as_nobody`; resolve
    /// always sets them then). `None` otherwise: setup already runs as the
    /// program's identity.
    pub fn nobody_inside(&self) -> Option<(u32, u32)> {
        self.as_nobody
            .then(|| (self.uid.unwrap_or(NOBODY), self.gid.unwrap_or(NOBODY)))
    }
}

/// The host identity a sandbox launched by root runs as: nobody/nogroup
/// (the kernel's overflow ids, 65534 on every common distribution).
pub const NOBODY: u32 = 65534;

/// One filesystem step. Targets are paths as the sandboxed program sees them;
/// bind sources are host paths.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum FsOp {
    Tmpfs {
        target: String,
        size: Option<u64>,
        mode: u32,
        replace: bool,
    },
    Bind {
        source: String,
        target: String,
        rw: bool,
        dev: bool,
        optional: bool,
        replace: bool,
        /// Create the host source (a directory, mode 0700, with parents)
        /// when it is missing, at launch.
        #[serde(default)]
        create: bool,
        /// The program may execute files of a read-write bind (landlock
        /// grants read-only binds execution, writable ones not: W^X).
        #[serde(default)]
        exec: bool,
    },
    Proc {
        target: String,
        replace: bool,
    },
    Dev {
        target: String,
        replace: bool,
    },
    Mqueue {
        target: String,
        replace: bool,
    },
    Mkdir {
        target: String,
        mode: u32,
    },
    Symlink {
        /// What the link points to (may be relative); not validated as a path.
        points_to: String,
        target: String,
        replace: bool,
    },
    WriteFile {
        target: String,
        content: String,
        mode: u32,
        replace: bool,
    },
    RemountRo {
        target: String,
    },
    Chmod {
        target: String,
        mode: u32,
    },
    /// Paths below `under` (a directory inside) made read-only and not
    /// creatable, found when the sandbox starts (`launch::protect`).
    Protect {
        under: String,
        /// Relative shell globs (`**` for any number of directories).
        patterns: Vec<String>,
    },
    /// The host directory `source` at `target` through overlayfs: reads
    /// see the host's files, writes land in the upper layer.
    Overlay {
        source: String,
        target: String,
        /// The changes store's name (`moksha diff NAME`); `None`: the upper
        /// layer is a private tmpfs, thrown away with the sandbox.
        changes: Option<String>,
        /// Execution of files there is allowed (as a writable bind's `exec`).
        #[serde(default)]
        exec: bool,
        /// Set by `launch::prepare`: the host directory of the changes
        /// store (holding `upper/` and `work/`).
        #[serde(default)]
        store: Option<String>,
    },
}

impl FsOp {
    /// The path inside the sandbox this step acts on.
    pub fn target(&self) -> &str {
        match self {
            FsOp::Tmpfs { target, .. }
            | FsOp::Bind { target, .. }
            | FsOp::Proc { target, .. }
            | FsOp::Dev { target, .. }
            | FsOp::Mqueue { target, .. }
            | FsOp::Mkdir { target, .. }
            | FsOp::Symlink { target, .. }
            | FsOp::WriteFile { target, .. }
            | FsOp::RemountRo { target }
            | FsOp::Overlay { target, .. }
            | FsOp::Chmod { target, .. } => target,
            FsOp::Protect { under, .. } => under,
        }
    }

    /// Whether this step creates something at its target (a mount, a link, a
    /// file) as opposed to adjusting what is there. Two creating steps on the
    /// same target are a conflict unless the later one says `replace`.
    /// Returns the `replace` flag for creating steps.
    pub fn creates(&self) -> Option<bool> {
        match self {
            FsOp::Tmpfs { replace, .. }
            | FsOp::Bind { replace, .. }
            | FsOp::Proc { replace, .. }
            | FsOp::Dev { replace, .. }
            | FsOp::Mqueue { replace, .. }
            | FsOp::Symlink { replace, .. }
            | FsOp::WriteFile { replace, .. } => Some(*replace),
            FsOp::Overlay { .. } => Some(false),
            FsOp::Mkdir { .. }
            | FsOp::RemountRo { .. }
            | FsOp::Chmod { .. }
            | FsOp::Protect { .. } => None,
        }
    }

    /// Whether this step is a mount (needs a mount namespace).
    pub fn is_mount(&self) -> bool {
        matches!(
            self,
            FsOp::Tmpfs { .. }
                | FsOp::Bind { .. }
                | FsOp::Proc { .. }
                | FsOp::Dev { .. }
                | FsOp::Mqueue { .. }
                | FsOp::RemountRo { .. }
                | FsOp::Overlay { .. }
                | FsOp::Protect { .. }
        )
    }
}

#[cfg(test)]
impl FsOp {
    /// A bind with no option but `rw`, for tests.
    pub fn plain_bind(source: &str, target: &str, rw: bool) -> FsOp {
        FsOp::Bind {
            source: source.into(),
            target: target.into(),
            rw,
            dev: false,
            optional: false,
            replace: false,
            create: false,
            exec: false,
        }
    }
}

/// How the environment of the program is built: start empty (or from the
/// launcher's environment when `clear` is false), then apply `ops` in order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvPlan {
    pub clear: bool,
    pub ops: Vec<EnvOp>,
}

impl Default for EnvPlan {
    fn default() -> Self {
        EnvPlan {
            clear: true,
            ops: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnvOp {
    /// Set a variable to a value.
    Set { name: String, value: String },
    /// Remove a variable.
    Unset { name: String },
    /// Copy a variable from the launcher's environment, if it is set there.
    Keep { name: String },
}

/// The program and how it starts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// The command; `None` until the profile calls `exec`.
    pub exec: Option<Step<Exec>>,
    pub env: EnvPlan,
    pub cwd: Option<Located>,
    pub hostname: Option<Located>,
    /// File descriptors of the launcher passed into the sandbox as they are.
    pub pass_fds: Vec<i32>,
    /// The command line had arguments that are not UTF-8: their bytes stand
    /// escaped in the command's text (`crate::arg`) and go back to bytes at
    /// exec.
    #[serde(default)]
    pub escaped_bytes: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    pub argv: Vec<String>,
}

/// How the sandbox lives and dies.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Supervision {
    /// Kill the sandbox when the launching `moksha` dies.
    pub die_with_parent: bool,
    /// Start the program in a new session without a controlling terminal.
    /// When false the program shares the terminal (its own foreground
    /// process group); the TIOCSTI/TIOCLINUX ioctls are refused by the
    /// seccomp filter in both cases, so it cannot push input into the
    /// caller's shell.
    pub new_session: bool,
    /// The profile chose the instance name (`s.name()`); otherwise a short
    /// id is appended to the sandbox name so several can run at once.
    pub named: bool,
    /// Run in the background: the launcher returns once the program runs,
    /// output goes to log files.
    pub detach: bool,
    /// Trace mode: refused calls go to the supervisor, which answers them
    /// as the filter would and prints a summary at exit (policy/trace.rs).
    #[serde(default)]
    pub trace: bool,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            die_with_parent: true,
            new_session: true,
            named: false,
            detach: false,
            trace: false,
        }
    }
}

/// Security knobs: capabilities, the syscall filter, landlock, resource
/// limits and the wall-clock timeout (their types live in `crate::policy`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// Capabilities kept (in the sandbox's user namespace), by kernel name.
    pub keep_caps: Vec<Located>,
    /// The seccomp policy; moksha's default unless the profile edits it.
    #[serde(default)]
    pub seccomp: crate::policy::seccomp::Seccomp,
    /// Landlock: on by default, rules derived from the mounts.
    #[serde(default)]
    pub landlock: crate::policy::landlock::Landlock,
    /// Resource limits for the program, applied in order.
    #[serde(default)]
    pub rlimits: Vec<Step<crate::policy::limits::Rlimit>>,
    /// Wall-clock limit after which the supervisor ends the sandbox.
    #[serde(default)]
    pub timeout: Option<Step<crate::policy::limits::Timeout>>,
}

impl Plan {
    /// An empty plan for a sandbox called `name`, strict defaults.
    pub fn new(name: &str, profile: &str) -> Plan {
        Plan {
            name: name.to_string(),
            profile: profile.to_string(),
            ..Plan::default()
        }
    }
}
