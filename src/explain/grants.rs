//! A plan turned into grants: one line each of what the program may reach,
//! with the profile line that granted it and the points it adds to the
//! exposure score (weights in `score`).

use super::score as w;
use super::Context;
use crate::plan::helper::HelperKind;
use crate::plan::validate::{normalize, within};
use crate::plan::{EnvOp, FsOp, NetMode, Plan, Pos};
use crate::policy::seccomp::{self, Action, Mode, Seccomp, GROUPS};
use serde::Serialize;
use std::collections::BTreeMap;

/// The sections of `moksha explain`, in the order they are shown.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Namespace,
    File,
    Device,
    Env,
    Network,
    Dbus,
    Syscalls,
    Capability,
    Confinement,
    Limit,
    Helper,
    Warning,
}

impl Kind {
    pub fn title(self) -> &'static str {
        match self {
            Kind::Namespace => "shared with the host",
            Kind::File => "filesystem (path inside: access, from, granted by)",
            Kind::Device => "devices",
            Kind::Env => "environment",
            Kind::Network => "network",
            Kind::Dbus => "D-Bus",
            Kind::Syscalls => "syscalls",
            Kind::Capability => "capabilities kept",
            Kind::Confinement => "confinement",
            Kind::Limit => "limits",
            Kind::Helper => "helpers (host processes beside the sandbox)",
            Kind::Warning => "warnings (what the profile could not give on this host)",
        }
    }
}

/// One thing the program may reach (or, for syscalls, is refused).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Grant {
    pub kind: Kind,
    /// What it is about: a path inside, a variable, a group, a bus name.
    /// Two plans' grants are compared by kind and key (`diff`).
    pub key: String,
    /// What the program gets there.
    pub what: String,
    /// The profile line that granted it, or "default".
    pub at: String,
    /// Points this grant adds to the exposure score (`score`).
    pub points: u32,
}

fn at(p: &Pos) -> String {
    if p.file.is_empty() {
        "default".into()
    } else {
        p.to_string()
    }
}

struct Out(Vec<Grant>);

impl Out {
    fn add(
        &mut self,
        kind: Kind,
        key: impl Into<String>,
        what: impl Into<String>,
        at: String,
        points: u32,
    ) {
        self.0.push(Grant {
            kind,
            key: key.into(),
            what: what.into(),
            at,
            points,
        });
    }
}

/// Every grant of `plan`, in section order, each section sorted by key.
pub fn grants(plan: &Plan, ctx: &Context) -> Vec<Grant> {
    let mut out = Out(Vec::new());
    namespaces(plan, &mut out);
    files(plan, ctx, &mut out);
    environment(plan, &mut out);
    network(plan, &mut out);
    dbus(plan, &mut out);
    syscalls(&plan.security.seccomp, &mut out);
    for c in &plan.security.keep_caps {
        let name = c.value.to_ascii_uppercase();
        let points = if w::ADMIN_CAPS.contains(&name.trim_start_matches("CAP_")) {
            w::CAP_ADMIN
        } else {
            w::CAP
        };
        out.add(
            Kind::Capability,
            &name,
            "kept in the sandbox's user namespace",
            at(&c.at),
            points,
        );
    }
    confinement(plan, &mut out);
    for l in &plan.security.rlimits {
        let described = l.op.describe();
        let value = described
            .strip_prefix(&format!("{} ", l.op.name))
            .unwrap_or(&described);
        out.add(Kind::Limit, &l.op.name, value.to_string(), at(&l.at), 0);
    }
    if let Some(t) = &plan.security.timeout {
        out.add(
            Kind::Limit,
            "timeout",
            format!("ended after {}", crate::policy::limits::show_ms(t.op.ms)),
            at(&t.at),
            0,
        );
    }
    helpers(plan, &mut out);
    // What the profile left out on this host (no display, no bus): often
    // the answer to "why does it not work".
    for w in &plan.warnings {
        out.add(Kind::Warning, &w.value, "", at(&w.at), 0);
    }
    let mut v = out.0;
    // Stable: sections in order, keys sorted; a later grant for the same
    // key replaces an earlier one (a bind with `replace`).
    let mut seen: BTreeMap<(Kind, String), usize> = BTreeMap::new();
    let mut kept: Vec<Grant> = Vec::new();
    for g in v.drain(..) {
        match seen.get(&(g.kind, g.key.clone())) {
            Some(&i) => kept[i] = g,
            None => {
                seen.insert((g.kind, g.key.clone()), kept.len());
                kept.push(g);
            }
        }
    }
    kept.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    kept
}

fn namespaces(plan: &Plan, out: &mut Out) {
    use crate::plan::Namespace;
    let ns = &plan.namespaces;
    for n in Namespace::ALL {
        if ns.is_new(n) {
            continue;
        }
        // The network is its own section; time is shared by default and
        // gives nothing away.
        let (points, what) = match n {
            Namespace::Net | Namespace::Time => continue,
            Namespace::User => (w::SHARED_USER, "the host's users and capabilities"),
            Namespace::Mount => (w::SHARED_MOUNT, "the host's whole filesystem"),
            Namespace::Pid => (w::SHARED_PID, "the host's processes are visible"),
            Namespace::Ipc => (w::SHARED_IPC, "the host's System V IPC and POSIX queues"),
            Namespace::Uts => (w::SHARED_UTS, "the host's hostname"),
            Namespace::Cgroup => (w::SHARED_CGROUP, "the host's cgroup tree"),
        };
        out.add(Kind::Namespace, n.name(), what, "profile".into(), points);
    }
}

/// Whether `source` on the host is the home or holds it.
fn home_or_above(source: &str, ctx: &Context) -> bool {
    ctx.home
        .as_deref()
        .filter(|h| *h != "/")
        .is_some_and(|h| within(&normalize(h), &normalize(source)))
}

/// Directories of the system that every desktop program reads.
const SYSTEM: [&str; 8] = [
    "/usr", "/etc", "/lib", "/lib64", "/bin", "/sbin", "/opt", "/sys",
];

fn files(plan: &Plan, ctx: &Context, out: &mut Out) {
    if let Some(root) = &plan.root {
        out.add(
            Kind::File,
            "/",
            format!(
                "read, execute: the host directory {} as the root",
                root.value
            ),
            at(&root.at),
            w::ROOT_DIR,
        );
    }
    if !plan.namespaces.mount {
        return;
    }
    let ll = &plan.security.landlock;
    let landlock = ll.enabled && ll.derive;
    // Targets remounted read-only later on.
    let ro: Vec<String> = plan
        .fs
        .iter()
        .filter_map(|s| match &s.op {
            FsOp::RemountRo { target } => Some(normalize(target)),
            _ => None,
        })
        .collect();
    for step in &plan.fs {
        let target = normalize(step.op.target());
        let where_ = at(&step.at);
        match &step.op {
            FsOp::Bind {
                source,
                rw,
                dev,
                optional,
                exec,
                create,
                ..
            } => {
                let rw = *rw && !ro.contains(&target);
                let access = match (rw, *exec || !landlock) {
                    (true, true) => "read, write, execute",
                    (true, false) => "read, write",
                    (false, _) => "read, execute",
                };
                let mut what = format!("{access}  from {source}");
                if *optional {
                    what.push_str(" (if present)");
                }
                if *create {
                    what.push_str(" (created when missing)");
                }
                let source = normalize(source);
                let kind = if *dev { Kind::Device } else { Kind::File };
                // A helper's file (the D-Bus proxy's socket) counts under
                // what the helper gives (the D-Bus section).
                let from_helper = plan.helpers.iter().any(|h| {
                    h.op.expose.iter().any(|e| {
                        normalize(&e.target) == target
                            && source.ends_with(&format!("/{}/{}", h.op.name, e.file))
                    })
                });
                let points = if from_helper {
                    0
                } else if *dev {
                    w::DEVICE
                } else if source == "/" {
                    if rw {
                        w::HOST_ROOT_RW
                    } else {
                        w::HOST_ROOT_RO
                    }
                } else if home_or_above(&source, ctx) {
                    if rw {
                        w::HOME_RW
                    } else {
                        w::HOME_RO
                    }
                } else if SYSTEM.iter().any(|d| within(&source, d)) && !rw {
                    0
                } else if source.starts_with("/run/") || source.starts_with("/tmp/.") {
                    // Sockets of host services (display, sound, agents).
                    w::HOST_SOCKET
                } else {
                    match (rw, *exec) {
                        (true, true) => w::BIND_RW_EXEC,
                        (true, false) => w::BIND_RW,
                        (false, _) => w::BIND_RO,
                    }
                };
                out.add(kind, target, what, where_, points);
            }
            FsOp::Tmpfs { .. } => {
                let access = if ro.contains(&target) {
                    "read"
                } else {
                    "read, write"
                };
                out.add(
                    Kind::File,
                    target,
                    format!("{access}  private, empty (tmpfs)"),
                    where_,
                    0,
                );
            }
            FsOp::Proc { .. } => out.add(
                Kind::File,
                target,
                "read  the sandbox's own processes (proc)",
                where_,
                0,
            ),
            FsOp::Dev { .. } => out.add(
                Kind::Device,
                target,
                "null zero full random urandom tty pts shm (a private /dev)",
                where_,
                0,
            ),
            FsOp::Mqueue { .. } => out.add(
                Kind::File,
                target,
                "read, write  private POSIX queues",
                where_,
                0,
            ),
            FsOp::WriteFile { content, .. } => out.add(
                Kind::File,
                target,
                format!("read  a file the profile writes ({} bytes)", content.len()),
                where_,
                0,
            ),
            FsOp::Overlay {
                source,
                changes,
                exec,
                ..
            } => {
                let access = if *exec || !landlock {
                    "read, write, execute"
                } else {
                    "read, write"
                };
                let upper = match changes {
                    Some(name) => format!("kept as changes {name} for moksha diff/commit"),
                    None => "thrown away at the end".into(),
                };
                // The host sees none of it until `moksha commit`: a
                // read-only view of the host directory, as far as it goes.
                out.add(
                    Kind::File,
                    target,
                    format!("{access}  copy-on-write over {source}; writes {upper}"),
                    where_,
                    w::BIND_RO,
                );
            }
            FsOp::Protect { under, patterns } => {
                for p in patterns {
                    let path = format!("{}/{p}", under.trim_end_matches('/'));
                    out.add(
                        Kind::File,
                        path,
                        "read  protected: read-only, not creatable (s.protect)",
                        where_.clone(),
                        0,
                    );
                }
            }
            FsOp::Symlink { .. }
            | FsOp::Mkdir { .. }
            | FsOp::RemountRo { .. }
            | FsOp::Chmod { .. } => {}
        }
    }
}

fn environment(plan: &Plan, out: &mut Out) {
    let env = &plan.process.env;
    if !env.clear {
        out.add(
            Kind::Env,
            "*",
            "the launcher's whole environment",
            "profile".into(),
            w::WHOLE_ENV,
        );
    }
    // The final value of each name: later operations win.
    let mut last: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for op in &env.ops {
        match op {
            EnvOp::Set { name, value } => {
                last.insert(name, Some(format!("= {value}")));
            }
            EnvOp::Keep { name } => {
                last.insert(name, Some("kept from the launcher's environment".into()));
            }
            EnvOp::Unset { name } => {
                last.insert(name, None);
            }
        }
    }
    for (name, what) in last {
        if let Some(what) = what {
            out.add(Kind::Env, name, what, "profile".into(), 0);
        }
    }
}

fn network(plan: &Plan, out: &mut Out) {
    let net = &plan.network;
    let where_ = net.set_at.as_ref().map_or("default".into(), at);
    let (what, points) = match &net.mode {
        NetMode::None if net.egress.is_some() => (
            "none: its own loopback, and out only through moksha's egress proxy, by name"
                .to_string(),
            0,
        ),
        NetMode::None => ("none: only its own loopback".to_string(), 0),
        NetMode::Host => (
            "host: the host's network, its loopback services included".to_string(),
            w::NET_HOST,
        ),
        NetMode::User(u) => (
            format!(
                "user-mode (pasta/slirp4netns): the internet{}",
                if u.host_loopback {
                    ", and the host's loopback services through the gateway"
                } else {
                    ", not the host's loopback"
                }
            ),
            if u.host_loopback {
                w::NET_USER + w::NET_HOST_LOOPBACK
            } else {
                w::NET_USER
            },
        ),
        NetMode::Join { path } => (format!("the network namespace {path}"), w::NET_JOIN),
    };
    out.add(Kind::Network, "mode", what, where_.clone(), points);
    if let Some(e) = &net.egress {
        use crate::plan::egress::{Action, Host};
        for r in &e.rules {
            let key = format!("egress {}", r.op.shown());
            let (what, points) = match (&r.op.action, &r.op.host) {
                (Action::Deny, _) => (
                    format!(
                        "denied{}",
                        r.op.reason
                            .as_ref()
                            .map(|w| format!(": {w}"))
                            .unwrap_or_default()
                    ),
                    0,
                ),
                (Action::Allow, Host::AnyName) => (
                    "allowed: every name, through the proxy".into(),
                    w::EGRESS_ANY,
                ),
                (Action::Allow, Host::Net { .. }) => (
                    "allowed: these addresses, loopback and private ones included".into(),
                    w::EGRESS_NET,
                ),
                (Action::Allow, _) => ("allowed, through the proxy".into(), w::EGRESS_NAME),
            };
            out.add(Kind::Network, key, what, at(&r.at), points);
        }
        for (name, ip) in &e.resolve {
            out.add(
                Kind::Network,
                format!("egress resolve {name}"),
                format!("{ip} (test resolver)"),
                where_.clone(),
                0,
            );
        }
    }
    for f in &net.forwards {
        let fw = &f.op;
        out.add(
            Kind::Network,
            format!("forward {} {}:{}", fw.proto.name(), fw.address, fw.host),
            format!("to port {} inside", fw.sandbox),
            at(&f.at),
            w::FORWARD,
        );
    }
    let ll = &plan.security.landlock;
    let ports = |v: &Option<Vec<u16>>| match v {
        None => "any port".to_string(),
        Some(p) if p.is_empty() => "no port".to_string(),
        Some(p) => p.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
    };
    if !matches!(net.mode, NetMode::None) {
        out.add(
            Kind::Network,
            "tcp connect",
            ports(&ll.connect_tcp),
            "profile".into(),
            0,
        );
        out.add(
            Kind::Network,
            "tcp bind",
            ports(&ll.bind_tcp),
            "profile".into(),
            0,
        );
    }
}

fn dbus(plan: &Plan, out: &mut Out) {
    for step in &plan.helpers {
        let h = &step.op;
        let HelperKind::Program { argv, .. } = &h.kind else {
            continue;
        };
        if !argv.first().is_some_and(|a| a.ends_with("xdg-dbus-proxy")) {
            continue;
        }
        let bus = h.name.strip_prefix("dbus-").unwrap_or(&h.name);
        let filtered = argv.iter().any(|a| a == "--filter");
        if !filtered {
            out.add(
                Kind::Dbus,
                format!("{bus} *"),
                "everything on the bus (no filter)",
                at(&step.at),
                w::DBUS_UNFILTERED,
            );
            continue;
        }
        for a in argv {
            let Some((rule, name)) = a.strip_prefix("--").and_then(|r| r.split_once('=')) else {
                continue;
            };
            let points = match rule {
                "own" => w::DBUS_OWN,
                "talk" => w::DBUS_TALK,
                "call" => w::DBUS_CALL,
                _ => 0,
            };
            if !["see", "talk", "own", "call", "broadcast"].contains(&rule) {
                continue;
            }
            let points = if name == "*" || name.starts_with("*=") {
                w::DBUS_UNFILTERED
            } else {
                points
            };
            out.add(
                Kind::Dbus,
                format!("{bus} {rule} {name}"),
                "through xdg-dbus-proxy",
                at(&step.at),
                points,
            );
        }
    }
}

/// What the policy does to the members of a group on this architecture.
fn refusal(p: &Seccomp, members: &[&str]) -> (Vec<String>, Vec<String>) {
    let (mut refused, mut allowed) = (Vec::new(), Vec::new());
    for m in members {
        if !on_this_arch(m) {
            continue;
        }
        let t = p.treatment(m);
        if t.action.runs() {
            allowed.push(m.to_string());
        } else {
            refused.push(format!("{m} ({})", t.action.describe()));
        }
    }
    (refused, allowed)
}

/// A list of calls, the first few by name.
fn names(list: &[&str]) -> String {
    const SHOWN: usize = 5;
    if list.len() <= SHOWN {
        list.join(" ")
    } else {
        format!(
            "{} and {} more",
            list[..SHOWN - 1].join(" "),
            list.len() - SHOWN + 1
        )
    }
}

fn on_this_arch(name: &str) -> bool {
    crate::policy::bpf::Arch::native()
        .map(|a| a.abi().number(name).is_some())
        .unwrap_or(true)
}

fn syscalls(p: &Seccomp, out: &mut Out) {
    let default = Seccomp::default();
    if p.mode == Mode::Allowlist {
        out.add(
            Kind::Syscalls,
            "mode",
            format!(
                "allow-list: calls not allowed get {}",
                p.unlisted.describe()
            ),
            p.mode_at.as_ref().map_or("profile".into(), at),
            0,
        );
    }
    for (group, desc, members) in GROUPS {
        let (refused, allowed) = refusal(p, members);
        let (_, was_allowed) = refusal(&default, members);
        // Only what the default refuses matters: a group the default lets
        // run (and the profile too) says nothing.
        let newly: Vec<&String> = allowed
            .iter()
            .filter(|a| !was_allowed.contains(a))
            .collect();
        let rule_at = members
            .iter()
            .find_map(|m| p.rules.get(*m).and_then(|r| r.at.as_ref()))
            .map_or("default".to_string(), at);
        if refused.is_empty() && newly.is_empty() {
            continue;
        }
        let (what, points) = if newly.is_empty() {
            let all: Vec<&str> = refused
                .iter()
                .map(|r| r.split(' ').next().unwrap_or(""))
                .collect();
            let actions: Vec<&str> = {
                let mut a: Vec<&str> = refused
                    .iter()
                    .filter_map(|r| r.split(' ').nth(1))
                    .map(|a| a.trim_matches(|c| c == '(' || c == ')'))
                    .collect();
                a.sort();
                a.dedup();
                a
            };
            (
                format!("refused ({}): {desc}: {}", actions.join("/"), names(&all)),
                0,
            )
        } else {
            let list: Vec<&str> = newly.iter().map(|s| s.as_str()).collect();
            (
                format!(
                    "ALLOWED, though the default refuses it: {desc}: {}",
                    names(&list)
                ),
                w::group_points(group),
            )
        };
        out.add(Kind::Syscalls, *group, what, rule_at, points);
    }
    // The profile's own rules outside any group's defaults.
    for (name, rule) in &p.rules {
        let Some(pos) = &rule.at else { continue };
        if GROUPS.iter().any(|(_, _, m)| m.contains(&&**name)) {
            continue;
        }
        let action = rule
            .action
            .map_or("as the mode says".into(), Action::describe);
        out.add(Kind::Syscalls, &**name, action, at(pos), 0);
    }
    let d = |b: bool, what: &str| {
        if b {
            format!("allowed: {what}")
        } else {
            format!("refused: {what}")
        }
    };
    if p.nested_namespaces {
        out.add(
            Kind::Syscalls,
            "nested namespaces",
            d(true, "the program may create namespaces"),
            p.nested_namespaces_at.as_ref().map_or("profile".into(), at),
            w::NESTED_NAMESPACES,
        );
    }
    if p.any_personality {
        out.add(
            Kind::Syscalls,
            "personality",
            d(true, "any personality"),
            "profile".into(),
            w::ANY_PERSONALITY,
        );
    }
    match &p.socket_families {
        None => out.add(
            Kind::Syscalls,
            "socket families",
            "any family",
            "profile".into(),
            w::ANY_FAMILY,
        ),
        Some(f) => {
            let extra = f
                .iter()
                .filter(|x| !seccomp::DEFAULT_FAMILIES.contains(x))
                .count() as u32;
            let names: Vec<String> = f.iter().map(|n| seccomp::family_name(*n)).collect();
            out.add(
                Kind::Syscalls,
                "socket families",
                names.join(" "),
                "profile".into(),
                extra * w::FAMILY,
            );
        }
    }
    for (abi, on) in [("i386", p.i386), ("x32", p.x32)] {
        if on {
            out.add(
                Kind::Syscalls,
                format!("{abi} entry points"),
                "filtered like native calls",
                "profile".into(),
                w::COMPAT_ABI,
            );
        }
    }
}

fn confinement(plan: &Plan, out: &mut Out) {
    let ll = &plan.security.landlock;
    let (what, points) = match (ll.enabled, ll.derive) {
        (false, _) => (
            "landlock off: only the mounts limit the filesystem",
            w::LANDLOCK_OFF,
        ),
        (true, false) => (
            "landlock on, with the profile's rules only",
            w::LANDLOCK_NO_DERIVE,
        ),
        (true, true) => ("landlock on: the filesystem access above, enforced", 0),
    };
    let where_ = ll.min_abi.as_ref().map_or("default".into(), |m| at(&m.at));
    out.add(Kind::Confinement, "landlock", what, where_, points);
    let (what, points) = if plan.supervision.new_session {
        ("none: a session of its own", 0)
    } else {
        (
            "shared with the caller (TIOCSTI/TIOCLINUX refused)",
            w::TERMINAL,
        )
    };
    out.add(
        Kind::Confinement,
        "terminal",
        what,
        "profile".into(),
        points,
    );
    if let Some(uid) = plan.ids.uid {
        let mapped = if plan.ids.as_nobody {
            "the host's nobody: moksha runs as root"
        } else {
            "mapped to the caller"
        };
        out.add(
            Kind::Confinement,
            "uid",
            format!("{uid} inside ({mapped})"),
            "profile".into(),
            0,
        );
    }
    if let Some(pos) = &plan.ids.host_root {
        out.add(
            Kind::Confinement,
            "host root",
            "run by root, the program stays the host's root (no capabilities)",
            at(pos),
            w::HOST_ROOT,
        );
    }
}

fn helpers(plan: &Plan, out: &mut Out) {
    for step in &plan.helpers {
        let h = &step.op;
        let what = match &h.kind {
            HelperKind::Program { argv, .. } => format!(
                "runs {} on the host",
                argv.first().map_or("", String::as_str)
            ),
            HelperKind::Xauthority { display, .. } => {
                format!("an X authority for display {display} only")
            }
        };
        let files: Vec<&str> = h.expose.iter().map(|e| e.target.as_str()).collect();
        let what = if files.is_empty() {
            what
        } else {
            format!("{what}; inside: {}", files.join(" "))
        };
        out.add(Kind::Helper, &h.name, what, at(&step.at), 0);
    }
}
