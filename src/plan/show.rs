//! The human listing of a plan printed by `moksha plan`.

use super::{EnvOp, FsOp, Plan};
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
            "tmpfs      {target}  mode {}{}{}",
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
        } => {
            let dest = if source == target {
                String::new()
            } else {
                format!(" -> {target}")
            };
            format!(
                "bind       {source}{dest}  {}{}",
                if *rw { "read-write" } else { "read-only" },
                flags(&[
                    ("devices", *dev),
                    ("optional", *optional),
                    ("replace", *replace),
                    ("created when missing", *create)
                ])
            )
        }
        FsOp::Proc { target, .. } => format!("proc       {target}"),
        FsOp::Dev { target, .. } => {
            format!("dev        {target}  (null zero full random urandom tty pts shm)")
        }
        FsOp::Mqueue { target, .. } => format!("mqueue     {target}"),
        FsOp::Mkdir { target, mode: m } => format!("mkdir      {target}  mode {}", mode(*m)),
        FsOp::Symlink {
            points_to, target, ..
        } => format!("symlink    {target} -> {points_to}"),
        FsOp::WriteFile {
            target,
            content,
            mode: m,
            ..
        } => {
            format!(
                "write_file {target}  mode {}, {} bytes",
                mode(*m),
                content.len()
            )
        }
        FsOp::RemountRo { target } => format!("remount_ro {target}"),
        FsOp::Chmod { target, mode: m } => format!("chmod      {target}  {}", mode(*m)),
    }
}

impl Plan {
    /// An ordered, readable listing of everything the sandbox will be.
    pub fn describe(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "sandbox {:?}  (profile {})", self.name, self.profile);
        let ns = &self.namespaces;
        let new = ns.new_ones();
        let shared: Vec<&str> = super::NAMESPACE_NAMES
            .iter()
            .copied()
            .filter(|n| !new.contains(n))
            // A joined network namespace is not the host's (see "network").
            .filter(|n| *n != "net" || !matches!(self.network.mode, super::NetMode::Join { .. }))
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
        }

        let _ = writeln!(o, "\nfilesystem");
        match &self.root {
            Some(root) => {
                let _ = writeln!(
                    o,
                    "  root       host directory {}    [{}]",
                    root.value, root.at
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
        let _ = writeln!(o, "  cwd        {cwd}");
        if let Some(h) = &self.process.hostname {
            let _ = writeln!(o, "  hostname   {}", h.value);
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
                EnvOp::Set { name, value } => format!("set   {name}={value}"),
                EnvOp::Unset { name } => format!("unset {name}"),
                EnvOp::Keep { name } => format!("keep  {name} (from the launcher)"),
            };
            let _ = writeln!(o, "             {line}");
        }

        super::helper::describe(self, &mut o);

        // The network section, with the helper that would run on this host
        // (plan/network.rs); it carries the host-network warning.
        let helper = self
            .network
            .user()
            .map(|u| super::network::choose_helper(u.helper, crate::script::host::which));
        super::network::describe(self, &helper.unwrap_or(Err(String::new())), &mut o);

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
        crate::policy::show::describe(self, &mut o);
        o
    }
}
