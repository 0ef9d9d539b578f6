//! The human listing of a plan printed by `moksha plan`.

use super::{EnvOp, FsOp, Namespace, Plan};
use crate::policy::limits::show_ms;
use crate::policy::show as policy_show;
use crate::text::line as one;
use std::fmt::Write;

fn mode(m: u32) -> String {
    format!("{m:#o}")
}

fn flags(list: &[(&str, bool)]) -> String {
    let on: Vec<&str> = list.iter().filter(|(_, b)| *b).map(|(n, _)| *n).collect();
    if on.is_empty() {
        String::new()
    } else {
        format!(" ({})", on.join(", "))
    }
}

/// One line describing a filesystem step.
pub fn describe_step(op: &FsOp) -> String {
    match op {
        FsOp::Tmpfs {
            target,
            size,
            mode: m,
            replace,
        } => format!(
            "tmpfs      {}  mode {}{}{}",
            one(target),
            mode(*m),
            size.map(|s| format!(", size {s} bytes"))
                .unwrap_or_default(),
            flags(&[("replace", *replace)])
        ),
        FsOp::Bind {
            source,
            target,
            rw,
            dev,
            optional,
            replace,
            create,
            exec,
        } => {
            let dest = if source == target {
                String::new()
            } else {
                format!(" -> {}", one(target))
            };
            format!(
                "bind       {}{dest}  {}{}",
                one(source),
                match (rw, exec) {
                    (true, true) => "read-write, executable",
                    (true, false) => "read-write, not executable",
                    (false, _) => "read-only",
                },
                flags(&[
                    ("devices", *dev),
                    ("optional", *optional),
                    ("replace", *replace),
                    ("created when missing", *create)
                ])
            )
        }
        FsOp::Proc { target, .. } => format!("proc       {}", one(target)),
        FsOp::Dev { target, .. } => {
            format!(
                "dev        {}  (null zero full random urandom tty pts shm)",
                one(target)
            )
        }
        FsOp::Mqueue { target, .. } => format!("mqueue     {}", one(target)),
        FsOp::Mkdir { target, mode: m } => {
            format!("mkdir      {}  mode {}", one(target), mode(*m))
        }
        FsOp::Symlink {
            points_to, target, ..
        } => format!("symlink    {} -> {}", one(target), one(points_to)),
        FsOp::WriteFile {
            target,
            content,
            mode: m,
            ..
        } => {
            format!(
                "write_file {}  mode {}, {} bytes",
                one(target),
                mode(*m),
                content.len()
            )
        }
        FsOp::RemountRo { target } => format!("remount_ro {}", one(target)),
        FsOp::Protect { under, patterns } => format!(
            "protect    {}  read-only, not creatable: {}",
            one(under),
            patterns
                .iter()
                .map(|p| one(p))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        FsOp::Overlay {
            source,
            target,
            changes,
            exec,
            store,
        } => {
            let dest = if source == target {
                String::new()
            } else {
                format!(" -> {}", one(target))
            };
            let upper = match (changes, store) {
                (None, _) => "a private tmpfs (thrown away at the end)".to_string(),
                (Some(name), None) => format!("the changes store {}", one(name)),
                (Some(name), Some(dir)) => {
                    format!("the changes store {} ({})", one(name), one(dir))
                }
            };
            format!(
                "overlay    {}{dest}  copy-on-write{}, writes go to {upper}",
                one(source),
                if *exec { ", executable" } else { "" }
            )
        }
        FsOp::Chmod { target, mode: m } => format!("chmod      {}  {}", one(target), mode(*m)),
    }
}

/// What the listing shows of the host it would run on, read by the caller:
/// nothing in `plan` reads the host.
#[derive(Clone, Debug, Default)]
pub struct HostView {
    /// The user-mode network helper's command line, or why none would run.
    pub net_helper: Option<Result<Vec<String>, String>>,
    /// The landlock ABI of the running kernel (0: none).
    pub landlock_abi: u32,
}

impl Plan {
    /// An ordered, readable listing of everything the sandbox will be on a
    /// host that looks like `host`.
    pub fn describe(&self, host: &HostView) -> String {
        let mut o = String::new();
        // Every value from the profile is shown on one line (`text::line`);
        // `{:?}` escapes by itself.
        let _ = writeln!(
            o,
            "sandbox {:?}  (profile {})",
            self.name,
            one(&self.profile)
        );
        let ns = &self.namespaces;
        let new: Vec<&str> = ns.new_ones().iter().map(|n| n.name()).collect();
        let shared: Vec<&str> = Namespace::ALL
            .into_iter()
            .filter(|n| !ns.is_new(*n))
            // A joined network namespace is not the host's (see "network").
            .filter(|n| {
                *n != Namespace::Net || !matches!(self.network.mode, super::NetMode::Join { .. })
            })
            .map(Namespace::name)
            .collect();
        let _ = writeln!(o, "\nnamespaces");
        let _ = writeln!(o, "  new:    {}", new.join(" "));
        let _ = writeln!(
            o,
            "  shared with the host: {}",
            if shared.is_empty() {
                "none".into()
            } else {
                shared.join(" ")
            }
        );
        if ns.user {
            let show = |v: Option<u32>| v.map_or("the caller's own".to_string(), |v| v.to_string());
            let _ = writeln!(
                o,
                "  ids inside: uid {}, gid {}",
                show(self.ids.uid),
                show(self.ids.gid)
            );
            if self.ids.as_nobody {
                let _ = writeln!(
                    o,
                    "  run by root: the program is the host's nobody ({}); the host's root \
                     only builds the sandbox",
                    super::NOBODY
                );
            }
            if let Some(at) = &self.ids.host_root {
                let _ = writeln!(
                    o,
                    "  warning: run by root, the program is the host's root (no capabilities)    [{at}]"
                );
            }
        }

        let _ = writeln!(o, "\nfilesystem");
        match &self.root {
            Some(root) => {
                let _ = writeln!(
                    o,
                    "  root       host directory {}    [{}]",
                    one(&root.value),
                    root.at
                );
            }
            None if ns.mount => {
                let _ = writeln!(o, "  root       empty tmpfs");
            }
            None => {
                let _ = writeln!(
                    o,
                    "  the host's filesystem, unchanged (mount namespace shared)"
                );
            }
        }
        for (i, step) in self.fs.iter().enumerate() {
            let _ = writeln!(
                o,
                "  {:>2}. {}    [{}]",
                i + 1,
                describe_step(&step.op),
                step.at
            );
        }

        let _ = writeln!(o, "\nprocess");
        if let Some(exec) = &self.process.exec {
            let _ = writeln!(o, "  exec       {:?}    [{}]", exec.op.argv, exec.at);
        }
        let cwd = self.process.cwd.as_ref().map_or("/", |c| c.value.as_str());
        let _ = writeln!(o, "  cwd        {}", one(cwd));
        if let Some(h) = &self.process.hostname {
            let _ = writeln!(o, "  hostname   {}", one(&h.value));
        }
        let env = &self.process.env;
        let _ = writeln!(
            o,
            "  env        starts {}",
            if env.clear {
                "empty"
            } else {
                "from the launcher's environment"
            }
        );
        for op in &env.ops {
            let line = match op {
                EnvOp::Set { name, value } => format!("set   {}={}", one(name), one(value)),
                EnvOp::Unset { name } => format!("unset {}", one(name)),
                EnvOp::Keep { name } => format!("keep  {} (from the launcher)", one(name)),
            };
            let _ = writeln!(o, "             {line}");
        }

        super::helper::describe(self, &mut o);

        // The network section, with the helper that would run on this host
        // (plan/network.rs); it carries the host-network warning.
        super::network::describe(self, host.net_helper.as_ref(), &mut o);

        let _ = writeln!(o, "\nsupervision");
        let s = &self.supervision;
        let _ = writeln!(
            o,
            "  instance:  {}",
            if s.named {
                self.name.clone()
            } else {
                format!("{}-<id> (or --name)", self.name)
            }
        );
        if s.detach {
            let _ = writeln!(o, "  detached:  yes (output to `moksha logs`)");
        }
        if s.trace {
            let _ = writeln!(
                o,
                "  trace:     on: what the program is refused is counted and summed up at exit"
            );
        }
        let _ = writeln!(
            o,
            "  dies with the launcher: {}",
            if s.die_with_parent && !s.detach {
                "yes"
            } else {
                "no"
            }
        );
        let _ = writeln!(
            o,
            "  terminal:  {}",
            if s.new_session {
                "none (new session)"
            } else {
                "shared (TIOCSTI/TIOCLINUX filtered)"
            }
        );

        let _ = writeln!(o, "\nsecurity");
        let caps: Vec<&str> = self
            .security
            .keep_caps
            .iter()
            .map(|c| c.value.as_str())
            .collect();
        let _ = writeln!(
            o,
            "  capabilities: {}",
            if caps.is_empty() {
                "all dropped".into()
            } else {
                format!("all dropped except {}", caps.join(", "))
            }
        );
        let _ = writeln!(o, "  no_new_privs: yes");
        security(self, host, &mut o);
        o
    }

    /// What `moksha plan --resolved` adds: the operations that build the
    /// root, in the order they run (`plan::mounts`).
    pub fn describe_mounts(&self) -> String {
        let mut o = String::from("\nroot filesystem, as built\n");
        for step in super::mounts::compile(self) {
            let at = if step.at.line > 0 {
                format!("    [{}]", step.at)
            } else {
                String::new()
            };
            let _ = writeln!(o, "  {}{at}", step.op);
        }
        o
    }
}

/// The security lines after capabilities and no_new_privs.
fn security(plan: &Plan, host: &HostView, o: &mut String) {
    let sec = &plan.security;
    policy_show::seccomp(o, &sec.seccomp);
    let _ = writeln!(
        o,
        "    the supervisor: the default policy, and no exec or sockets, whatever the profile says"
    );
    let rs = super::access::ruleset(plan, host.landlock_abi);
    policy_show::landlock(o, &sec.landlock, rs.as_ref(), host.landlock_abi);
    for l in &sec.rlimits {
        let _ = writeln!(o, "  rlimit {}    [{}]", l.op.describe(), l.at);
    }
    if let Some(t) = &sec.timeout {
        let _ = writeln!(
            o,
            "  timeout: SIGTERM after {}, SIGKILL {} later; `moksha exec` then exits 124    [{}]",
            show_ms(t.op.ms),
            show_ms(t.op.grace_ms),
            t.at
        );
    }
}
