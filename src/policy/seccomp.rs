//! The seccomp policy: what each system call gets, as plain data.
//!
//! A policy starts from moksha's default (Flatpak's and Docker's default
//! denials together) or from empty, and is edited call by call from Rhai:
//! a later rule for a syscall replaces an earlier one. On top of the
//! per-syscall rules sit a few argument filters with their own settings:
//!
//! - `ioctl` with TIOCSTI, TIOCLINUX or TIOCSETD is always refused (EPERM), whatever the
//!   rules say: those push input into a terminal or drive the console;
//! - `socket` and `socketpair` with a family outside `socket_families` get
//!   EAFNOSUPPORT (default: unix, inet, inet6, netlink), as the kernel
//!   answers for a family it lacks, so programs fall back (socketpair creates
//!   its sockets through the family too);
//! - unless `nested_namespaces` is set, `clone` and `unshare` with any
//!   CLONE_NEW* flag and `setns` get EPERM, and `clone3` gets ENOSYS (its flags
//!   are in memory a filter cannot read; libc then falls back to `clone`);
//! - unless `any_personality` is set, `personality` takes only the harmless
//!   values (PER_LINUX, PER_LINUX32, UNAME26, their union, and the query
//!   0xffffffff); others get EPERM;
//! - syscalls entered through the i386 (`int 0x80`) or x32 ABIs get EPERM
//!   unless `i386`/`x32` are allowed, in which case the same policy is
//!   compiled for those ABIs' numbers. A rule for a call holds on every
//!   entry point to it (`treatment_on`): i386's variants under other names
//!   (`fcntl64`, `clock_settime64`, ...) follow the call's rule, and where
//!   the arguments are out of the filter's reach (`socketcall`, `ipc`, old
//!   `mmap`) a call the policy tests by argument answers ENOSYS.
//!
//! In deny-list mode (the default) a syscall without a rule is allowed; in
//! allow-list mode it gets the `unlisted` action (EPERM by default).

use crate::located::Pos;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

pub use super::groups::*;

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
    pub group: Option<Name>,
}

/// A syscall or group name of a policy: mostly one of the tables' own, so
/// borrowed (the default policy's rules were 128 strings allocated at every
/// start, and copied with each clone of the plan); owned when read back
/// from JSON.
pub type Name = Cow<'static, str>;

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
    pub rules: BTreeMap<Name, Rule>,
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

impl Seccomp {
    /// For sandboxes launched by root: refuse to create files with the
    /// setuid or setgid bit. Their files belong to the host's root, and an
    /// owner needs no capability to set those bits, so a program inside
    /// could otherwise leave a setuid-root binary in a writable bind for
    /// any local user to run. openat2 (its mode sits in a struct the filter
    /// cannot read) answers ENOSYS, so libc and programs fall back to openat.
    pub fn refuse_setid_files(&mut self) {
        for (name, arg) in MODE_ARGS {
            let rule = self.rules.entry(Cow::Borrowed(name)).or_default();
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
        let openat2 = self.rules.entry(Cow::Borrowed("openat2")).or_default();
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
                    Cow::Borrowed(*name),
                    Rule {
                        action: Some(Action::Errno(*errno as u16)),
                        when: Vec::new(),
                        at: None,
                        group: Some(Cow::Borrowed(*group)),
                    },
                )
            })
            .collect();
        Seccomp {
            base: Base::Default,
            rules,
            socket_families: Some(DEFAULT_FAMILIES.to_vec()),
            nested_namespaces: false,
            any_personality: false,
            ..Seccomp::empty()
        }
    }
}

/// A syscall table a filter checks: each architecture's native one, and
/// x86_64's i386 (`int 0x80`) and x32 entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    I386,
    X32,
    Aarch64,
}

/// A syscall table of policy/syscalls.rs: the names, separated by spaces
/// and in byte order, where each starts in `names`, and their numbers in
/// the same order. Plain data: as a slice of `(&str, u32)` it was 37 KB of
/// pointers that every moksha process relocated, so copied, at its start,
/// and held while the sandbox ran.
pub struct Table {
    pub names: &'static str,
    pub starts: &'static [u16],
    pub numbers: &'static [u16],
}

impl Table {
    /// Names and numbers.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u32)> {
        let (names, numbers) = (self.names, self.numbers);
        names.split(' ').zip(numbers.iter().map(|&n| u32::from(n)))
    }

    /// Where `name` is: a binary search of the sorted names. (An index
    /// built at the first lookup, a hash map of the whole table, cost 169 K
    /// instructions for the 67 lookups of the default policy: callgrind,
    /// `moksha plan profiles/demo.rhai`.)
    /// (By index, not with the slice's `binary_search_by`: that hands over
    /// a start only, and finding each name's end by its space cost 84 K
    /// more instructions for the default policy.)
    fn find(&self, name: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.starts.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The `i`th name: from its start to the next one's, less the space.
    fn name(&self, i: usize) -> &'static str {
        let start = usize::from(self.starts[i]);
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.names.len(), |&next| usize::from(next) - 1);
        &self.names[start..end]
    }
}

impl Abi {
    /// Names and numbers (x32's without the x32 bit).
    pub fn table(self) -> &'static Table {
        use super::syscalls::*;
        match self {
            Abi::X86_64 => &X86_64,
            Abi::I386 => &I386,
            Abi::X32 => &X32,
            Abi::Aarch64 => &AARCH64,
        }
    }

    /// The number of `name` in this table.
    pub fn number(self, name: &str) -> Option<u32> {
        let t = self.table();
        t.find(name).map(|i| u32::from(t.numbers[i]))
    }
}

/// Whether `name` is a syscall on any architecture moksha knows.
pub fn is_syscall(name: &str) -> bool {
    known(name).is_some()
}

/// `name` as the tables hold it, when some architecture has it.
fn known(name: &str) -> Option<&'static str> {
    [Abi::X86_64, Abi::I386, Abi::X32, Abi::Aarch64]
        .into_iter()
        .find_map(|abi| {
            let t = abi.table();
            t.find(name).map(|i| t.name(i))
        })
}

fn all_names() -> impl Iterator<Item = &'static str> {
    use super::syscalls::*;
    [&X86_64, &I386, &X32, &AARCH64]
        .into_iter()
        .flat_map(|t| t.iter().map(|(n, _)| n))
}

/// A group's name as the group table holds it (any other, copied).
fn group_name(name: &str) -> Name {
    GROUPS
        .iter()
        .map(|(g, _, _)| *g)
        .chain(["@default"])
        .find(|g| *g == name)
        .map_or_else(|| Cow::Owned(name.to_string()), Cow::Borrowed)
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
                crate::suggest::did_you_mean(
                    name,
                    GROUPS.iter().map(|(g, _, _)| *g).chain(["@default"])
                ),
                GROUPS
                    .iter()
                    .map(|(g, _, _)| *g)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    match known(name) {
        Some(n) => Ok(vec![n]),
        None => Err(format!(
            "unknown syscall {name:?}{}",
            crate::suggest::did_you_mean(name, all_names())
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
        // Written out, not `..Seccomp::default()`: building the default's
        // rules (and sorting them) was 44 k instructions, thrown away.
        Seccomp {
            base: Base::Empty,
            mode: Mode::Denylist,
            mode_at: None,
            unlisted: Action::EPERM,
            rules: BTreeMap::new(),
            socket_families: None,
            nested_namespaces: true,
            nested_namespaces_at: None,
            any_personality: true,
            i386: false,
            x32: false,
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
            .map(|g| group_name(g));
        for call in calls {
            let rule = self.rules.entry(Cow::Borrowed(call)).or_default();
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
                tests.push((
                    low32(1, Test::In(vec![TIOCSTI, TIOCLINUX, TIOCSETD])),
                    Action::EPERM,
                ));
            }
            "socket" | "socketpair" => {
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

    /// The treatment of `name` entered through `abi`: as `treatment`, except
    /// for i386 entry points that are another call (`I386_ENTRIES`).
    pub fn treatment_on(&self, abi: Abi, name: &str) -> Treatment {
        let entry = match abi {
            Abi::I386 => I386_ENTRIES.iter().find(|(n, _)| *n == name),
            _ => None,
        };
        // A call whose arguments the filter cannot see: its plain action,
        // or ENOSYS when its rule depends on them.
        let opaque = |t: Treatment| match t.tests.is_empty() {
            true => t,
            false => Treatment {
                tests: Vec::new(),
                action: Action::ENOSYS,
            },
        };
        let own = || self.rules.contains_key(name);
        match entry.map(|(_, e)| *e) {
            None => self.treatment(name),
            Some(Entry::Same(call)) => self.treatment(if own() { name } else { call }),
            Some(Entry::Opaque(call)) => opaque(self.treatment(if own() { name } else { call })),
            Some(Entry::Multiplexer { mask, calls }) => {
                let mut t = self.treatment(name);
                if t.action.runs() {
                    for (sub, call) in calls {
                        let action = opaque(self.treatment(call)).action;
                        if action != t.action {
                            let when = Cond {
                                arg: 0,
                                test: Test::MaskedEq { mask, value: *sub },
                                low32: true,
                            };
                            t.tests.push((when, action));
                        }
                    }
                }
                t
            }
        }
    }

    /// The names of `abi` whose treatment may differ from the mode's
    /// default, sorted, each once.
    pub fn special_names_on(&self, abi: Abi) -> Vec<&str> {
        let mut names = self.special_names();
        if abi == Abi::I386 {
            names.extend(I386_ENTRIES.iter().map(|(n, _)| *n));
            names.sort_unstable();
            names.dedup();
        }
        names
    }

    /// Every syscall name with a treatment other than the mode's default,
    /// sorted, each once.
    pub fn special_names(&self) -> Vec<&str> {
        // The rules' names come sorted; each built-in one is put in place.
        let mut names: Vec<&str> = self.rules.keys().map(|k| &**k).collect();
        for n in [
            "ioctl",
            "socket",
            "socketpair",
            "clone",
            "unshare",
            "personality",
            "clone3",
            "setns",
        ] {
            if let Err(i) = names.binary_search(&n) {
                names.insert(i, n);
            }
        }
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
    fn the_empty_policy_differs_from_the_default_only_in_what_it_drops() {
        let (default, empty) = (Seccomp::default(), Seccomp::empty());
        let dropped = Seccomp {
            base: Base::Empty,
            rules: BTreeMap::new(),
            socket_families: None,
            nested_namespaces: true,
            any_personality: true,
            ..default
        };
        assert_eq!(dropped, empty);
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
    fn each_table_pairs_every_name_with_a_number() {
        for abi in [Abi::X86_64, Abi::I386, Abi::X32, Abi::Aarch64] {
            let t = abi.table();
            let names: Vec<&str> = t.names.split(' ').collect();
            assert_eq!(names.len(), t.numbers.len(), "{abi:?}");
            assert_eq!(names.len(), t.starts.len(), "{abi:?}");
            // Sorted, and each found where it is, with its own number.
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{abi:?} unsorted");
            for (i, (n, nr)) in t.iter().enumerate() {
                assert_eq!(
                    (t.name(i), t.find(n), abi.number(n)),
                    (n, Some(i), Some(nr))
                );
            }
            assert_eq!(abi.number("no_such_call"), None);
            assert_eq!(abi.number(""), None);
            assert_eq!(abi.number("read write"), None);
            let mut seen = std::collections::HashSet::new();
            for n in &names {
                assert!(!n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                assert!(seen.insert(n), "{abi:?}: {n} twice");
            }
        }
        assert_eq!(Abi::X86_64.number("read"), Some(0));
        assert_eq!(Abi::X86_64.number("file_setattr"), Some(469));
        assert_eq!(Abi::I386.number("socketcall"), Some(102));
        assert_eq!(Abi::X32.number("ioctl"), Some(514));
        assert_eq!(Abi::Aarch64.number("openat"), Some(56));
    }

    #[test]
    fn borrowed_names_read_back_the_same() {
        // The rules' names and groups are the tables' own strings; read
        // back from JSON (an instance record) they are owned, and equal.
        let mut p = Seccomp::default();
        p.set(&["@keyring".into()], Action::Allow, None, &at())
            .unwrap();
        assert!(matches!(p.rules["keyctl"].group, Some(Cow::Borrowed(_))));
        let back: Seccomp = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert_eq!(group_name("@nonesuch"), "@nonesuch");
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
