//! The seccomp policy: what each system call gets, as plain data.
//!
//! A policy starts from moksha's default (Flatpak's and Docker's default
//! denials together) or from empty, and is edited call by call from Rhai:
//! a later rule for a syscall replaces an earlier one. On top of the
//! per-syscall rules sit a few argument filters with their own settings:
//!
//! - `ioctl` with TIOCSTI or TIOCLINUX is always refused (EPERM), whatever the
//!   rules say: those push input into a terminal or drive the console;
//! - `socket` with a family outside `socket_families` gets EAFNOSUPPORT
//!   (default: unix, inet, inet6, netlink), as the kernel answers for a family
//!   it lacks, so programs fall back;
//! - unless `nested_namespaces` is set, `clone` and `unshare` with any
//!   CLONE_NEW* flag and `setns` get EPERM, and `clone3` gets ENOSYS (its flags
//!   are in memory a filter cannot read; libc then falls back to `clone`);
//! - unless `any_personality` is set, `personality` takes only the harmless
//!   values (PER_LINUX, PER_LINUX32, UNAME26, their union, and the query
//!   0xffffffff); others get EPERM;
//! - syscalls entered through the i386 (`int 0x80`) or x32 ABIs get EPERM
//!   unless `i386`/`x32` are allowed, in which case the same policy is
//!   compiled for those ABIs' numbers.
//!
//! In deny-list mode (the default) a syscall without a rule is allowed; in
//! allow-list mode it gets the `unlisted` action (EPERM by default).

use crate::located::Pos;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a filter answers for a call.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Run the call.
    Allow,
    /// Fail the call with this errno, without running it.
    Errno(u16),
    /// Kill the whole process (SECCOMP_RET_KILL_PROCESS).
    Kill,
    /// Run the call and log it to the kernel's audit log (SECCOMP_RET_LOG).
    Log,
    /// Send SIGSYS to the thread (SECCOMP_RET_TRAP).
    Trap,
}

impl Action {
    pub const EPERM: Action = Action::Errno(libc::EPERM as u16);
    pub const ENOSYS: Action = Action::Errno(libc::ENOSYS as u16);

    /// Whether the call runs.
    pub fn runs(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }

    /// "allow", "EPERM", "errno 200", "kill", ...
    pub fn describe(self) -> String {
        match self {
            Action::Allow => "allow".into(),
            Action::Errno(n) => match errno_name(n) {
                Some(name) => name.to_string(),
                None => format!("errno {n}"),
            },
            Action::Kill => "kill".into(),
            Action::Log => "allow and log".into(),
            Action::Trap => "SIGSYS".into(),
        }
    }
}

/// Errno names for the values a profile commonly uses.
pub const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EIO", libc::EIO),
    ("EBADF", libc::EBADF),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("ENODEV", libc::ENODEV),
    ("EINVAL", libc::EINVAL),
    ("ENOTTY", libc::ENOTTY),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
    ("ENOSYS", libc::ENOSYS),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
];

pub fn errno_name(n: u16) -> Option<&'static str> {
    ERRNO_NAMES
        .iter()
        .find(|(_, v)| *v == n as i32)
        .map(|(name, _)| *name)
}

pub fn errno_by_name(name: &str) -> Option<u16> {
    ERRNO_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v as u16)
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Everything not denied runs.
    #[default]
    Denylist,
    /// Everything not allowed gets the `unlisted` action.
    Allowlist,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// moksha's default policy.
    #[default]
    Default,
    /// No rule at all; only the always-on filters (terminal ioctls, 32-bit ABIs).
    Empty,
}

/// A test on one argument of a call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cond {
    /// Which argument, 0 to 5.
    pub arg: u8,
    pub test: Test,
    /// Compare only the low 32 bits. Right for `int` arguments (an ioctl
    /// request, a socket family, flags): the kernel ignores the upper half,
    /// so comparing it would let a program bypass the test by setting it.
    pub low32: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    Eq(u64),
    Ne(u64),
    /// `(arg & mask) == value`
    MaskedEq {
        mask: u64,
        value: u64,
    },
    /// `arg & mask != 0`
    AnyBits(u64),
    In(Vec<u64>),
    NotIn(Vec<u64>),
}

impl Cond {
    pub fn describe(&self) -> String {
        let a = format!(
            "arg{}{}",
            self.arg,
            if self.low32 { " (32 bit)" } else { "" }
        );
        let list = |v: &[u64]| {
            v.iter()
                .map(|x| format!("{x:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.test {
            Test::Eq(v) => format!("{a} == {v:#x}"),
            Test::Ne(v) => format!("{a} != {v:#x}"),
            Test::MaskedEq { mask, value } => format!("{a} & {mask:#x} == {value:#x}"),
            Test::AnyBits(m) => format!("{a} has any of {m:#x}"),
            Test::In(v) => format!("{a} in [{}]", list(v)),
            Test::NotIn(v) => format!("{a} not in [{}]", list(v)),
        }
    }
}

/// A conditional rule: when the test holds, the call gets `action`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CondRule {
    pub when: Cond,
    pub action: Action,
    pub at: Option<Pos>,
}

/// The rule for one syscall.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// What the call gets; `None` follows the mode (allow, or `unlisted`).
    pub action: Option<Action>,
    /// Tested in order before `action`.
    pub when: Vec<CondRule>,
    /// Where the profile set it; `None` for the default policy.
    pub at: Option<Pos>,
    /// The group it came from, for `moksha plan`.
    pub group: Option<String>,
}

/// The whole policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Seccomp {
    pub base: Base,
    pub mode: Mode,
    /// Where allow-list mode was chosen.
    pub mode_at: Option<Pos>,
    /// What a call without a rule gets in allow-list mode.
    pub unlisted: Action,
    /// Rules by syscall name.
    pub rules: BTreeMap<String, Rule>,
    /// Address families `socket` accepts; `None` for any.
    pub socket_families: Option<Vec<u32>>,
    /// Whether the program may create namespaces (clone/unshare flags, setns, clone3).
    pub nested_namespaces: bool,
    pub nested_namespaces_at: Option<Pos>,
    /// Whether `personality` takes any value.
    pub any_personality: bool,
    /// Whether calls through the i386 ABI (`int 0x80`) are filtered like
    /// native ones instead of refused.
    pub i386: bool,
    /// Same for the x32 ABI.
    pub x32: bool,
}

/// The families allowed by default.
pub const DEFAULT_FAMILIES: [u32; 4] = [
    libc::AF_UNIX as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
    libc::AF_NETLINK as u32,
];

/// Socket families by name.
pub const FAMILIES: &[(&str, u32)] = &[
    ("unix", libc::AF_UNIX as u32),
    ("inet", libc::AF_INET as u32),
    ("inet6", libc::AF_INET6 as u32),
    ("netlink", libc::AF_NETLINK as u32),
    ("packet", libc::AF_PACKET as u32),
    ("bluetooth", libc::AF_BLUETOOTH as u32),
    ("can", libc::AF_CAN as u32),
    ("alg", libc::AF_ALG as u32),
    ("vsock", libc::AF_VSOCK as u32),
    ("key", libc::AF_KEY as u32),
    ("appletalk", libc::AF_APPLETALK as u32),
    ("ax25", libc::AF_AX25 as u32),
    ("ipx", libc::AF_IPX as u32),
    ("x25", libc::AF_X25 as u32),
    ("decnet", libc::AF_DECnet as u32),
    ("rds", libc::AF_RDS as u32),
    ("tipc", libc::AF_TIPC as u32),
    ("xdp", libc::AF_XDP as u32),
    ("llc", libc::AF_LLC as u32),
    ("netrom", libc::AF_NETROM as u32),
    ("rose", libc::AF_ROSE as u32),
    ("qipcrtr", 42),
    ("mctp", 45),
    ("smc", 43),
];

pub fn family_name(n: u32) -> String {
    FAMILIES
        .iter()
        .find(|(_, v)| *v == n)
        .map_or_else(|| n.to_string(), |(name, _)| (*name).to_string())
}

/// The personality values allowed unless `any_personality`: PER_LINUX,
/// PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and the query 0xffffffff.
pub const HARMLESS_PERSONAS: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// CLONE_NEW* flags clone(2) takes (CLONE_NEWTIME's bit is part of the exit
/// signal there): NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
pub const CLONE_NS_FLAGS: u64 = 0x7e02_0000;
/// unshare(2) takes CLONE_NEWTIME (0x80) too.
pub const UNSHARE_NS_FLAGS: u64 = CLONE_NS_FLAGS | 0x80;

pub const TIOCSTI: u64 = 0x5412;
pub const TIOCLINUX: u64 = 0x541c;

/// Named groups of syscalls: (name, what it is, members). Members that a
/// given architecture lacks are skipped there.
pub const GROUPS: &[(&str, &str, &[&str])] = &[
    (
        "@mount",
        "mounting and the new mount API",
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "mount_setattr",
        ],
    ),
    (
        "@debug",
        "tracing and reading other processes",
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "perf_event_open",
            "kcmp",
            "lookup_dcookie",
        ],
    ),
    (
        "@module",
        "kernel modules",
        &[
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "query_module",
            "get_kernel_syms",
        ],
    ),
    (
        "@keyring",
        "the kernel keyring",
        &["keyctl", "add_key", "request_key"],
    ),
    (
        "@obsolete",
        "calls unused for decades or never implemented",
        &[
            "uselib",
            "_sysctl",
            "sysfs",
            "ustat",
            "nfsservctl",
            "create_module",
            "get_kernel_syms",
            "query_module",
            "lookup_dcookie",
            "afs_syscall",
            "tuxcall",
            "security",
            "vserver",
            "getpmsg",
            "putpmsg",
            "bdflush",
            "break",
            "ftime",
            "gtty",
            "stty",
            "lock",
            "mpx",
            "prof",
            "profil",
            "idle",
            "ulimit",
        ],
    ),
    (
        "@clock",
        "setting the system clock",
        &[
            "settimeofday",
            "clock_settime",
            "clock_adjtime",
            "adjtimex",
            "stime",
        ],
    ),
    ("@swap", "swap devices", &["swapon", "swapoff"]),
    (
        "@reboot",
        "rebooting and loading kernels",
        &["reboot", "kexec_load", "kexec_file_load"],
    ),
    (
        "@raw-io",
        "raw port and PCI access",
        &[
            "iopl",
            "ioperm",
            "pciconfig_read",
            "pciconfig_write",
            "pciconfig_iobase",
        ],
    ),
    (
        "@cpu-emulation",
        "virtual 8086 mode and the LDT",
        &["vm86", "vm86old", "modify_ldt"],
    ),
    (
        "@io-uring",
        "io_uring",
        &["io_uring_setup", "io_uring_enter", "io_uring_register"],
    ),
    (
        "@privileged",
        "administration calls a sandboxed program has no business making",
        &[
            "acct",
            "bpf",
            "syslog",
            "vhangup",
            "quotactl",
            "quotactl_fd",
            "userfaultfd",
            "open_by_handle_at",
            "name_to_handle_at",
            "nfsservctl",
            "lookup_dcookie",
            "swapon",
            "swapoff",
            "reboot",
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "settimeofday",
            "clock_settime",
            "clock_adjtime",
            "stime",
            "iopl",
            "ioperm",
        ],
    ),
    (
        "@namespaces",
        "creating and entering namespaces (see nested_namespaces for clone flags)",
        &["unshare", "setns", "clone3"],
    ),
];

/// The default policy's denials: name, errno, group shown in `moksha plan`.
/// Flatpak's and Docker's default denials together.
const DEFAULT_DENIED: &[(&str, i32, &str)] = &[
    ("ptrace", libc::EPERM, "@debug"),
    ("process_vm_readv", libc::EPERM, "@debug"),
    ("process_vm_writev", libc::EPERM, "@debug"),
    ("perf_event_open", libc::EPERM, "@debug"),
    ("bpf", libc::EPERM, "@privileged"),
    ("userfaultfd", libc::EPERM, "@privileged"),
    ("keyctl", libc::EPERM, "@keyring"),
    ("add_key", libc::EPERM, "@keyring"),
    ("request_key", libc::EPERM, "@keyring"),
    ("kexec_load", libc::EPERM, "@reboot"),
    ("kexec_file_load", libc::EPERM, "@reboot"),
    ("reboot", libc::EPERM, "@reboot"),
    ("init_module", libc::EPERM, "@module"),
    ("finit_module", libc::EPERM, "@module"),
    ("delete_module", libc::EPERM, "@module"),
    ("create_module", libc::EPERM, "@module"),
    ("query_module", libc::EPERM, "@module"),
    ("get_kernel_syms", libc::EPERM, "@module"),
    ("mount", libc::EPERM, "@mount"),
    ("umount", libc::EPERM, "@mount"),
    ("umount2", libc::EPERM, "@mount"),
    ("pivot_root", libc::EPERM, "@mount"),
    // The new mount API: ENOSYS, so programs fall back to mount(2), which
    // is refused with EPERM (as Flatpak does).
    ("fsopen", libc::ENOSYS, "@mount"),
    ("fsconfig", libc::ENOSYS, "@mount"),
    ("fsmount", libc::ENOSYS, "@mount"),
    ("fspick", libc::ENOSYS, "@mount"),
    ("move_mount", libc::ENOSYS, "@mount"),
    ("open_tree", libc::ENOSYS, "@mount"),
    ("open_tree_attr", libc::ENOSYS, "@mount"),
    ("mount_setattr", libc::ENOSYS, "@mount"),
    ("open_by_handle_at", libc::EPERM, "@privileged"),
    ("name_to_handle_at", libc::EPERM, "@privileged"),
    ("io_uring_setup", libc::EPERM, "@io-uring"),
    ("io_uring_enter", libc::EPERM, "@io-uring"),
    ("io_uring_register", libc::EPERM, "@io-uring"),
    ("acct", libc::EPERM, "@privileged"),
    ("swapon", libc::EPERM, "@swap"),
    ("swapoff", libc::EPERM, "@swap"),
    ("settimeofday", libc::EPERM, "@clock"),
    ("clock_settime", libc::EPERM, "@clock"),
    ("clock_adjtime", libc::EPERM, "@clock"),
    ("stime", libc::EPERM, "@clock"),
    ("syslog", libc::EPERM, "@privileged"),
    ("uselib", libc::EPERM, "@obsolete"),
    ("vhangup", libc::EPERM, "@privileged"),
    ("quotactl", libc::EPERM, "@privileged"),
    ("quotactl_fd", libc::EPERM, "@privileged"),
    ("lookup_dcookie", libc::EPERM, "@obsolete"),
    ("nfsservctl", libc::EPERM, "@obsolete"),
    ("_sysctl", libc::EPERM, "@obsolete"),
    ("sysfs", libc::EPERM, "@obsolete"),
    ("ustat", libc::EPERM, "@obsolete"),
    ("afs_syscall", libc::EPERM, "@obsolete"),
    ("tuxcall", libc::EPERM, "@obsolete"),
    ("security", libc::EPERM, "@obsolete"),
    ("vserver", libc::EPERM, "@obsolete"),
    ("getpmsg", libc::EPERM, "@obsolete"),
    ("putpmsg", libc::EPERM, "@obsolete"),
    ("iopl", libc::EPERM, "@raw-io"),
    ("ioperm", libc::EPERM, "@raw-io"),
    ("vm86", libc::EPERM, "@cpu-emulation"),
    ("vm86old", libc::EPERM, "@cpu-emulation"),
];

/// Calls that set a file's mode, and which argument holds the mode.
const MODE_ARGS: [(&str, u8); 9] = [
    ("chmod", 1),
    ("fchmod", 1),
    ("fchmodat", 2),
    ("fchmodat2", 2),
    ("creat", 1),
    ("open", 2),
    ("openat", 3),
    ("mknod", 1),
    ("mknodat", 2),
];

impl Seccomp {
    /// For sandboxes launched by root: refuse to create files with the
    /// setuid or setgid bit. Their files belong to the host's root, and an
    /// owner needs no capability to set those bits, so a program inside
    /// could otherwise leave a setuid-root binary in a writable bind for
    /// any local user to run. openat2 (its mode sits in a struct the filter
    /// cannot read) answers ENOSYS, so libc and programs fall back to openat.
    pub fn refuse_setid_files(&mut self) {
        for (name, arg) in MODE_ARGS {
            let rule = self.rules.entry(name.to_string()).or_default();
            rule.when.insert(
                0,
                CondRule {
                    when: Cond {
                        arg,
                        test: Test::AnyBits((libc::S_ISUID | libc::S_ISGID) as u64),
                        low32: true,
                    },
                    action: Action::EPERM,
                    at: None,
                },
            );
        }
        let openat2 = self.rules.entry("openat2".to_string()).or_default();
        if openat2.action.is_none_or(Action::runs) {
            openat2.action = Some(Action::ENOSYS);
            openat2.when.clear();
            openat2.group = Some("root launch".into());
        }
    }
}

impl Default for Seccomp {
    /// moksha's default policy.
    fn default() -> Self {
        let rules = DEFAULT_DENIED
            .iter()
            .map(|(name, errno, group)| {
                (
                    name.to_string(),
                    Rule {
                        action: Some(Action::Errno(*errno as u16)),
                        when: Vec::new(),
                        at: None,
                        group: Some(group.to_string()),
                    },
                )
            })
            .collect();
        Seccomp {
            base: Base::Default,
            mode: Mode::Denylist,
            mode_at: None,
            unlisted: Action::EPERM,
            rules,
            socket_families: Some(DEFAULT_FAMILIES.to_vec()),
            nested_namespaces: false,
            nested_namespaces_at: None,
            any_personality: false,
            i386: false,
            x32: false,
        }
    }
}

/// Whether `name` is a syscall on any architecture moksha knows.
pub fn is_syscall(name: &str) -> bool {
    use super::syscalls::*;
    [X86_64, I386, X32, AARCH64]
        .iter()
        .any(|t| t.iter().any(|(n, _)| *n == name))
}

fn all_names() -> impl Iterator<Item = &'static str> {
    use super::syscalls::*;
    [X86_64, I386, X32, AARCH64]
        .into_iter()
        .flat_map(|t| t.iter().map(|(n, _)| *n))
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (row[j] + 1).min(cur + 1).min(prev + usize::from(ca != *cb));
            prev = cur;
        }
    }
    row[b.len()]
}

fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let best = candidates
        .map(|c| (distance(name, c), c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 2.max(name.len() / 4) => format!("; did you mean {c:?}?"),
        _ => String::new(),
    }
}

/// The syscalls a name stands for: a group's members, or the syscall itself.
pub fn expand(name: &str) -> Result<Vec<&'static str>, String> {
    if name.starts_with('@') {
        if name == "@default" {
            return Ok(DEFAULT_DENIED.iter().map(|(n, _, _)| *n).collect());
        }
        return match GROUPS.iter().find(|(g, _, _)| *g == name) {
            Some((_, _, members)) => Ok(members.to_vec()),
            None => Err(format!(
                "unknown syscall group {name:?}{}; groups: @default, {}",
                suggest(name, GROUPS.iter().map(|(g, _, _)| *g).chain(["@default"])),
                GROUPS
                    .iter()
                    .map(|(g, _, _)| *g)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    match all_names().find(|n| *n == name) {
        Some(n) => Ok(vec![n]),
        None => Err(format!(
            "unknown syscall {name:?}{}",
            suggest(name, all_names())
        )),
    }
}

/// Every syscall the names stand for, once each, in order.
pub fn expand_all(names: &[String]) -> Result<Vec<&'static str>, String> {
    let mut out: Vec<&'static str> = Vec::new();
    for name in names {
        for n in expand(name)? {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Syscalls whose rule is tied to the `nested_namespaces` setting.
const NAMESPACE_CALLS: [&str; 2] = ["clone3", "setns"];

impl Seccomp {
    /// An empty policy: no rules, any socket family, nested namespaces and
    /// any personality allowed. 32-bit ABIs stay refused.
    pub fn empty() -> Self {
        Seccomp {
            base: Base::Empty,
            rules: BTreeMap::new(),
            socket_families: None,
            nested_namespaces: true,
            any_personality: true,
            ..Seccomp::default()
        }
    }

    /// Starts over from `base`.
    pub fn reset(&mut self, base: Base) {
        *self = match base {
            Base::Default => Seccomp::default(),
            Base::Empty => Seccomp::empty(),
        };
    }

    pub fn set_mode(&mut self, mode: Mode, at: Pos) {
        self.mode = mode;
        self.mode_at = Some(at);
    }

    pub fn set_nested_namespaces(&mut self, on: bool, at: Pos) -> Result<(), String> {
        if !on {
            for name in NAMESPACE_CALLS {
                if let Some(Rule {
                    action: Some(a),
                    at: Some(p),
                    ..
                }) = self.rules.get(name)
                {
                    if a.runs() {
                        return Err(format!(
                            "nested namespaces cannot be forbidden: {name} was allowed at {p}, \
                             and a filter cannot check its flags"
                        ));
                    }
                }
            }
        }
        self.nested_namespaces = on;
        self.nested_namespaces_at = Some(at);
        Ok(())
    }

    /// Gives each named syscall (or group) `action`, replacing earlier rules;
    /// with `when`, adds a conditional rule instead.
    pub fn set(
        &mut self,
        names: &[String],
        action: Action,
        when: Option<Cond>,
        at: &Pos,
    ) -> Result<(), String> {
        let calls = expand_all(names)?;
        for call in &calls {
            if action.runs()
                && when.is_none()
                && !self.nested_namespaces
                && NAMESPACE_CALLS.contains(call)
            {
                return Err(format!(
                    "{call} cannot be allowed while nested namespaces are forbidden: a \
                     filter cannot check its flags; allow them first with \
                     s.seccomp(#{{ nested_namespaces: true }})"
                ));
            }
            if *call == "execve" && !action.runs() && when.is_none() {
                return Err(
                    "execve cannot be denied: moksha starts the program with it, so the \
                     program could never start"
                        .into(),
                );
            }
        }
        let group = names
            .iter()
            .find(|n| n.starts_with('@'))
            .filter(|_| names.len() == 1)
            .cloned();
        for call in calls {
            let rule = self.rules.entry(call.to_string()).or_default();
            match &when {
                None => {
                    *rule = Rule {
                        action: Some(action),
                        when: Vec::new(),
                        at: Some(at.clone()),
                        group: group.clone(),
                    }
                }
                Some(cond) => {
                    rule.when.push(CondRule {
                        when: cond.clone(),
                        action,
                        at: Some(at.clone()),
                    });
                    if rule.at.is_none() {
                        rule.at = Some(at.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// What a call gets when nothing more specific applies.
    fn base_action(&self, rule: Option<&Rule>) -> Action {
        match rule.and_then(|r| r.action) {
            Some(a) => a,
            None => match self.mode {
                Mode::Denylist => Action::Allow,
                Mode::Allowlist => self.unlisted,
            },
        }
    }

    /// The complete treatment of one syscall: the argument tests in order
    /// (the built-in filters first, then the profile's), then the action.
    pub fn treatment(&self, name: &str) -> Treatment {
        let rule = self.rules.get(name);
        let mut base = self.base_action(rule);
        if !self.nested_namespaces && NAMESPACE_CALLS.contains(&name) && base.runs() {
            base = if name == "clone3" {
                Action::ENOSYS
            } else {
                Action::EPERM
            };
        }
        // clone3 refused without a rule of the profile's own (allow-list
        // mode): ENOSYS, or libc would not fall back to clone and threads
        // could not start.
        if name == "clone3" && !base.runs() && rule.and_then(|r| r.action).is_none() {
            base = Action::ENOSYS;
        }
        let mut tests: Vec<(Cond, Action)> = Vec::new();
        let low32 = |arg: u8, test: Test| Cond {
            arg,
            test,
            low32: true,
        };
        match name {
            "ioctl" => {
                tests.push((low32(1, Test::In(vec![TIOCSTI, TIOCLINUX])), Action::EPERM));
            }
            "socket" => {
                if let Some(fams) = &self.socket_families {
                    let list = fams.iter().map(|f| *f as u64).collect();
                    tests.push((
                        low32(0, Test::NotIn(list)),
                        Action::Errno(libc::EAFNOSUPPORT as u16),
                    ));
                }
            }
            "clone" if !self.nested_namespaces => {
                tests.push((low32(0, Test::AnyBits(CLONE_NS_FLAGS)), Action::EPERM));
            }
            "unshare" if !self.nested_namespaces => {
                tests.push((low32(0, Test::AnyBits(UNSHARE_NS_FLAGS)), Action::EPERM));
            }
            "personality" if !self.any_personality => {
                tests.push((
                    low32(0, Test::NotIn(HARMLESS_PERSONAS.to_vec())),
                    Action::EPERM,
                ));
            }
            _ => {}
        }
        // A built-in filter is pointless when the call never runs anyway.
        if !base.runs() && name != "ioctl" {
            tests.clear();
        }
        if let Some(r) = rule {
            tests.extend(r.when.iter().map(|c| (c.when.clone(), c.action)));
        }
        Treatment {
            tests,
            action: base,
        }
    }

    /// Every syscall name with a treatment other than the mode's default.
    pub fn special_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.rules.keys().cloned().collect();
        for n in [
            "ioctl",
            "socket",
            "clone",
            "unshare",
            "personality",
            "clone3",
            "setns",
        ] {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
        names.sort();
        names
    }

    /// Checks that need the whole policy: the program must be able to start.
    pub fn check(&self) -> Result<(), (String, Option<Pos>)> {
        let t = self.treatment("execve");
        if !t.action.runs() {
            let at = self
                .rules
                .get("execve")
                .and_then(|r| r.at.clone())
                .or_else(|| self.mode_at.clone());
            let msg = match self.mode {
                Mode::Allowlist => {
                    "the seccomp allow-list does not allow execve, so the program could never \
                     start; add \"execve\" to the allowed calls"
                }
                Mode::Denylist => "execve is denied, so the program could never start",
            };
            return Err((msg.into(), at));
        }
        Ok(())
    }
}

/// How one syscall is handled.
#[derive(Clone, Debug, PartialEq)]
pub struct Treatment {
    pub tests: Vec<(Cond, Action)>,
    pub action: Action,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Pos {
        Pos {
            file: "t.rhai".into(),
            line: 3,
            col: 2,
        }
    }

    #[test]
    fn default_denies_the_issue_list() {
        let p = Seccomp::default();
        for name in [
            "ptrace",
            "perf_event_open",
            "bpf",
            "userfaultfd",
            "keyctl",
            "add_key",
            "request_key",
            "kexec_load",
            "init_module",
            "finit_module",
            "delete_module",
            "mount",
            "umount2",
            "pivot_root",
            "open_by_handle_at",
            "name_to_handle_at",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "acct",
            "swapon",
            "swapoff",
            "reboot",
            "settimeofday",
            "clock_settime",
            "syslog",
            "uselib",
            "vhangup",
            "quotactl",
            "lookup_dcookie",
            "nfsservctl",
        ] {
            assert_eq!(p.treatment(name).action, Action::EPERM, "{name}");
        }
        for name in [
            "fsopen",
            "fsconfig",
            "fsmount",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "clone3",
        ] {
            assert_eq!(p.treatment(name).action, Action::ENOSYS, "{name}");
        }
        assert_eq!(p.treatment("read").action, Action::Allow);
        assert_eq!(p.treatment("setns").action, Action::EPERM);
        for name in ["ioctl", "socket", "clone", "unshare", "personality"] {
            let t = p.treatment(name);
            assert_eq!(t.action, Action::Allow);
            assert_eq!(t.tests.len(), 1, "{name}");
        }
        p.check().unwrap();
    }

    #[test]
    fn allow_replaces_and_groups_expand() {
        let mut p = Seccomp::default();
        p.set(&["@keyring".into()], Action::Allow, None, &at())
            .unwrap();
        assert_eq!(p.treatment("add_key").action, Action::Allow);
        assert_eq!(p.rules["keyctl"].group.as_deref(), Some("@keyring"));
        p.set(&["add_key".into()], Action::Kill, None, &at())
            .unwrap();
        assert_eq!(p.treatment("add_key").action, Action::Kill);
    }

    #[test]
    fn unknown_names_suggest() {
        let e = expand("ptrac").unwrap_err();
        assert!(
            e.contains("unknown syscall \"ptrac\"; did you mean \"ptrace\""),
            "{e}"
        );
        let e = expand("@mnt").unwrap_err();
        assert!(e.contains("unknown syscall group"), "{e}");
        assert!(expand("socketcall").is_ok(), "an i386 name is known");
    }

    #[test]
    fn namespace_calls_contradict_the_setting() {
        let mut p = Seccomp::default();
        let e = p
            .set(&["clone3".into()], Action::Allow, None, &at())
            .unwrap_err();
        assert!(e.contains("nested namespaces are forbidden"), "{e}");
        p.set_nested_namespaces(true, at()).unwrap();
        p.set(&["clone3".into()], Action::Allow, None, &at())
            .unwrap();
        assert_eq!(p.treatment("clone3").action, Action::Allow);
        assert!(p.treatment("unshare").tests.is_empty());
        let e = p.set_nested_namespaces(false, at()).unwrap_err();
        assert!(e.contains("clone3 was allowed at t.rhai:3:2"), "{e}");
    }

    #[test]
    fn allowlist_needs_execve() {
        let mut p = Seccomp::empty();
        p.set_mode(Mode::Allowlist, at());
        let (msg, pos) = p.check().unwrap_err();
        assert!(msg.contains("does not allow execve"));
        assert_eq!(pos, Some(at()));
        p.set(&["execve".into()], Action::Allow, None, &at())
            .unwrap();
        p.check().unwrap();
        assert_eq!(p.treatment("read").action, Action::EPERM);
        // Unlisted clone3 answers ENOSYS so libc falls back to clone.
        assert_eq!(p.treatment("clone3").action, Action::ENOSYS);
        let e = p
            .set(&["execve".into()], Action::EPERM, None, &at())
            .unwrap_err();
        assert!(e.contains("could never start"));
    }

    #[test]
    fn ioctl_guard_survives_everything() {
        let mut p = Seccomp::empty();
        p.set(&["ioctl".into()], Action::Allow, None, &at())
            .unwrap();
        let t = p.treatment("ioctl");
        assert_eq!(t.tests[0].1, Action::EPERM);
        assert!(p.treatment("socket").tests.is_empty());
    }
}
