//! Stage 0 of a launch: the plan that runs. Everything the launcher adds
//! to a profile's plan is added here, in one place, and the result is
//! validated again: the root-launch rules, the supervision a detached run
//! needs, the binds of the helpers' files, the network's resolv.conf.
//! What runs, what `moksha plan --resolved` prints, what the instance
//! record stores and what `moksha enter` re-applies is this one plan.
//!
//! `prepare` reads the host (bind sources, the network helper on PATH, a
//! namespace to join) but changes nothing on it; `resolve` is the pure part.

use super::error::SetupError;
use super::{helper, network, Options};
use crate::plan::{self, FsOp, Plan, Step, ValidationError};
use crate::state;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A plan ready to run, and what the launch found on the host for it.
pub struct Prepared {
    /// The resolved plan, validated.
    pub plan: Plan,
    /// The instance name (`moksha ps`, the state files).
    pub name: String,
    /// An unnamed foreground run goes on without `moksha ps` when the state
    /// directory is unusable (e.g. inside another user namespace).
    pub claim_optional: bool,
    /// The host directory of the profile's helpers, when it has any.
    pub helper_dir: Option<PathBuf>,
    /// The user-mode network helper found, or the namespace to join.
    pub(super) net: network::Found,
    /// The plan's seccomp program, compiled once by the validation of the
    /// resolved plan and installed as it is (`None`: not compiled here).
    pub(super) filter: Option<Vec<crate::policy::bpf::Insn>>,
}

/// What one launch decides beside the profile.
pub struct Launch<'a> {
    pub name: &'a str,
    /// Run in the background (`--detach`).
    pub detach: bool,
    /// moksha runs as root on the host.
    pub root: bool,
    /// Where the helpers' files are (see `helper::dir_for`).
    pub helper_dir: Option<&'a Path>,
    /// The host terminal moksha runs on (its standard input), if any.
    pub terminal: Option<&'a str>,
    /// moksha's state directory (instance records), hidden from the sandbox.
    pub state_dir: Option<&'a Path>,
    /// Where changes stores are (`changes::base`), hidden from the sandbox.
    pub changes_dir: Option<&'a Path>,
    /// The host's memory in bytes: the sandbox's tmpfs mounts take at most
    /// half of it together (`plan::mounts::size_tmpfs`).
    pub memory: Option<u64>,
    /// The process bound a sandbox with its own user namespace gets when
    /// its profile sets none (`process_bound`).
    pub processes: Option<u64>,
    /// Trace mode asked on the command line.
    pub trace: bool,
}

impl Prepared {
    /// The same, with its plan and filter copied into the kept region
    /// (`heap::kept`) and the BPF compiler's cached copy of the policy
    /// dropped. The launcher holds these while the program runs and the
    /// supervisor has a copy: packed, they fill a few pages the two share,
    /// where, scattered among the evaluation's freed memory, they kept a
    /// heap page apiece resident in each process.
    pub fn kept(self) -> Self {
        crate::policy::bpf::forget_compiled();
        let (plan, filter) = crate::heap::kept(|| (self.plan.clone(), self.filter.clone()));
        Self {
            plan,
            filter,
            ..self
        }
    }
}

/// Whether this launch is by root, which changes the resolved plan
/// (`resolve`): the set-id refusal, the program as nobody.
fn by_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The filter the profile's plan is validated with before it is launched:
/// the one the launch installs (`plan::validate::FilterFor`).
pub fn filter_for_launch() -> plan::validate::FilterFor {
    if by_root() {
        plan::validate::FilterFor::RootLaunch
    } else {
        plan::validate::FilterFor::Plan
    }
}

/// Checks the host for the plan and resolves it; nothing is created.
pub fn prepare(plan: &Plan, opts: &Options) -> Result<Prepared, SetupError> {
    let net = host_checks(plan)?;
    let can_trace = || crate::sys::notify::sizes_match() && crate::sys::notify::takes_descriptors();
    if (opts.trace || plan.supervision.trace) && !can_trace() {
        return Err(super::confine::TRACE_NEEDS.to_string().into());
    }
    program_on_host(plan)?;
    let name = instance_name(plan, opts);
    let helper_dir = (!plan.helpers.is_empty()).then(|| helper::dir_for(&name));
    let detach = opts.detach || plan.supervision.detach;
    let terminal = crate::sys::terminal_name(0);
    let state_dir = state::state_dir().ok();
    let changes_dir = crate::changes::base().ok();
    let (resolved, filter) = resolve_compiled(
        plan,
        &Launch {
            name: &name,
            detach,
            root: by_root(),
            helper_dir: helper_dir.as_deref(),
            terminal: terminal.as_deref(),
            state_dir: state_dir.as_deref(),
            changes_dir: changes_dir.as_deref(),
            memory: crate::sys::memory_total(),
            processes: process_bound(),
            trace: opts.trace,
        },
    )?;
    if resolved.ids.as_nobody {
        note_unwritable_binds(&resolved);
    }
    Ok(Prepared {
        plan: resolved,
        claim_optional: !detach && opts.name.is_none() && !plan.supervision.named,
        name,
        helper_dir,
        net,
        filter,
    })
}

/// Run by root, the program is nobody: a writable bind of a directory
/// only root may write (root's own project) cannot be written inside. Said
/// once per bind, with what to do, before the program finds out.
fn note_unwritable_binds(plan: &Plan) {
    use std::os::unix::fs::MetadataExt;
    let nobody = plan::NOBODY;
    for step in &plan.fs {
        // (Not device nodes: the terminal moksha binds as /dev/console is
        // root's, and the program uses it through the descriptors it has.)
        let FsOp::Bind {
            source,
            target,
            rw: true,
            dev: false,
            ..
        } = &step.op
        else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(crate::arg::to_path(source)) else {
            continue;
        };
        let mode = meta.mode();
        let writable = (meta.uid() == nobody && mode & 0o200 != 0)
            || (meta.gid() == nobody && mode & 0o020 != 0)
            || mode & 0o002 != 0;
        if !writable {
            eprintln!(
                "moksha: note: {}: run by root, the sandbox's program is nobody (uid {nobody}), \
                 and {} (bound writable at {}) is not writable by it; chown it to {nobody}, \
                 run moksha as its owner, or keep the host's root with s.host_root(true)",
                step.at,
                crate::text::line(source),
                crate::text::line(target)
            );
        }
    }
}

/// The default process bound where the kernel makes it the sandbox's own:
/// from Linux 5.14 RLIMIT_NPROC counts per user namespace (before, it would
/// count every process of the user on the host, and a default could make
/// a busy user's sandbox fail to start). A launcher already limited to
/// less keeps its own limit, which the sandbox inherits.
fn process_bound() -> Option<u64> {
    use crate::policy::limits::DEFAULT_NPROC;
    if crate::script::host::kernel_version() < (5, 14) {
        return None;
    }
    let (soft, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC).ok()?;
    (soft == libc::RLIM_INFINITY || soft > DEFAULT_NPROC).then_some(DEFAULT_NPROC)
}

/// The plan with the launcher's additions, validated.
pub fn resolve(plan: &Plan, launch: &Launch) -> Result<Plan, ValidationError> {
    resolve_compiled(plan, launch).map(|(plan, _)| plan)
}

/// `resolve`, and the seccomp program its validation compiled.
fn resolve_compiled(
    plan: &Plan,
    launch: &Launch,
) -> Result<(Plan, plan::validate::Compiled), ValidationError> {
    let mut plan = plan.clone();
    plan.supervision.trace |= launch.trace;
    if plan.supervision.trace {
        log_bus_proxies(&mut plan);
    }
    if launch.root {
        // Files the sandbox creates belong to the host's root: no setuid
        // or setgid bits on them (policy/seccomp.rs).
        plan.security.seccomp.refuse_setid_files();
        // The host's root only builds the sandbox; the program is nobody
        // (unless the profile says otherwise, or there is no user
        // namespace to map ids in).
        if plan.namespaces.user && plan.ids.host_root.is_none() {
            let ids = &mut plan.ids;
            if ids.uid == Some(0) || ids.gid == Some(0) {
                return Err(ValidationError {
                    message: "run by root, the sandbox's uid or gid 0 would be the host's root: \
                              choose another with s.uid()/s.gid(), or keep the host's root \
                              with s.host_root(true)"
                        .into(),
                    at: None,
                });
            }
            ids.as_nobody = true;
            ids.uid = ids.uid.or(Some(plan::NOBODY));
            ids.gid = ids.gid.or(Some(plan::NOBODY));
        }
    }
    if launch.detach {
        // Nobody is at a terminal for a detached sandbox, and it must
        // outlive its launcher.
        let sup = &mut plan.supervision;
        sup.detach = true;
        sup.die_with_parent = false;
        sup.new_session = true;
    }
    // The files helpers make in their directory, bound where the profile
    // said. An optional helper's files are optional binds: a helper that
    // could not start leaves them out.
    if let Some(dir) = launch.helper_dir {
        let mut binds = Vec::new();
        for step in &plan.helpers {
            let h = &step.op;
            for e in &h.expose {
                binds.push(Step {
                    op: FsOp::Bind {
                        source: dir.join(&h.name).join(&e.file).to_string_lossy().into(),
                        target: e.target.clone(),
                        rw: e.rw,
                        dev: false,
                        optional: h.optional,
                        replace: true,
                        create: false,
                        exec: false,
                    },
                    at: step.at.clone(),
                });
            }
        }
        plan.fs.extend(binds);
    }
    // moksha's state directory, wherever a bind would show it (a bind of
    // /tmp, of the runtime directory): an empty tmpfs over it, so that no
    // sandbox can read or forge the records `moksha enter` and `stop` act on.
    if let Some(state) = launch.state_dir {
        let hidden = hide_under_binds(&plan, state);
        plan.fs.extend(hidden);
    }
    // The changes stores likewise (a sandbox that could write an upper
    // directory, or a manifest, could choose what `moksha commit` does),
    // and each overlay's store found.
    for step in &mut plan.fs {
        if let FsOp::Overlay {
            changes: Some(name),
            store,
            ..
        } = &mut step.op
        {
            let Some(dir) = launch.changes_dir else {
                return Err(ValidationError {
                    message: "the overlay's changes need a home directory (set HOME or \
                              XDG_DATA_HOME), or use #{ upper: \"tmpfs\" }"
                        .into(),
                    at: Some(step.at.clone()),
                });
            };
            *store = Some(dir.join(&*name).to_string_lossy().into_owned());
        }
    }
    // (Only when it exists or this launch makes it: a mount over it makes
    // the directories on the way, e.g. an empty .local in a home the
    // profile builds.)
    let makes_stores = plan.fs.iter().any(|s| {
        matches!(
            &s.op,
            FsOp::Overlay {
                changes: Some(_),
                ..
            }
        )
    });
    if let Some(changes) = launch.changes_dir.filter(|d| makes_stores || d.is_dir()) {
        let hidden = hide_under_binds(&plan, changes);
        plan.fs.extend(hidden);
    }
    // The terminal moksha runs on, as /dev/console in the sandbox's /dev:
    // a fresh devpts has no entry for the host's pty, so without it `tty`
    // and ttyname() find no name for the terminal the program has open.
    let dev = plan.fs.iter().rev().find_map(|s| match &s.op {
        FsOp::Dev { target, .. } => Some((target.clone(), s.at.clone())),
        _ => None,
    });
    if let (Some(tty), Some((dev, at)), false) = (launch.terminal, dev, launch.detach) {
        plan.fs.push(Step {
            op: FsOp::Bind {
                source: tty.to_string(),
                target: format!("{}/console", dev.trim_end_matches('/')),
                rw: true,
                dev: true,
                optional: true,
                replace: true,
                create: false,
                exec: false,
            },
            at,
        });
    }
    // Every tmpfs sized, within half the host's memory in all.
    if let Some(memory) = launch.memory {
        plan::mounts::size_tmpfs(&mut plan, memory / 2).map_err(|(at, message)| {
            ValidationError {
                message,
                at: Some(at),
            }
        })?;
    }
    // At most so many processes, unless the profile says otherwise.
    let own_nproc = plan.security.rlimits.iter().any(|l| l.op.name == "nproc");
    if let (Some(n), true, false) = (launch.processes, plan.namespaces.user, own_nproc) {
        plan.security.rlimits.push(Step {
            op: crate::policy::limits::process_bound(n),
            at: plan::Pos {
                file: "moksha's default process bound (s.rlimit(\"nproc\", ...) sets another)"
                    .into(),
                line: 0,
                col: 0,
            },
        });
    }
    // Egress by name: the proxy inside, for every tool that reads these
    // (set last: the proxy is the only way out, whatever the profile set).
    if plan.network.egress.is_some() {
        // TCP ports landlock restricts (s.allow_tcp) still reach the proxy.
        let port = plan::egress::PORT;
        if let Some(ports) = plan.security.landlock.connect_tcp.as_mut() {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        for (name, value) in super::egress::proxy_env() {
            plan.process.env.ops.push(plan::EnvOp::Set {
                name: name.to_string(),
                value,
            });
        }
    }
    // The user-mode network's DNS forwarder (or the profile's servers).
    if let Some(content) = plan::network::resolv_conf(&plan) {
        plan.fs.push(Step {
            op: FsOp::WriteFile {
                target: "/etc/resolv.conf".into(),
                content,
                mode: 0o644,
                replace: true,
            },
            at: plan.network.set_at.clone().unwrap_or_default(),
        });
    }
    let compiled = plan::validate_compiled(&plan)?;
    Ok((plan, compiled))
}

/// The file in a D-Bus proxy's directory its log goes to in trace mode.
pub const PROXY_LOG: &str = "proxy.log";

/// Trace mode: every xdg-dbus-proxy logs what it filters (`--log`) into
/// PROXY_LOG in its directory, which the launcher reads at the end.
fn log_bus_proxies(plan: &mut Plan) {
    for step in &mut plan.helpers {
        let plan::helper::HelperKind::Program { argv, .. } = &mut step.op.kind else {
            continue;
        };
        if !argv.first().is_some_and(|a| a.ends_with("xdg-dbus-proxy")) {
            continue;
        }
        let mut wrapped: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            format!("exec \"$@\" --log >\"$0/{PROXY_LOG}\" 2>&1"),
            plan::helper::DIR.into(),
        ];
        wrapped.append(argv);
        *argv = wrapped;
    }
}

/// The tmpfs steps that hide the host directory `dir` in every place a
/// bind of it or of a directory above it shows it. A source is matched by
/// its path and by what it is (device and inode): a symlink or a second
/// mount of a directory above `dir` shows it as well.
fn hide_under_binds(plan: &Plan, dir: &Path) -> Vec<Step<FsOp>> {
    let dir_text = plan::validate::normalize(&dir.to_string_lossy());
    let above = identities_above(dir);
    let mut out: Vec<Step<FsOp>> = Vec::new();
    for step in &plan.fs {
        let (FsOp::Bind { source, target, .. } | FsOp::Overlay { source, target, .. }) = &step.op
        else {
            continue;
        };
        let source = plan::validate::normalize(source);
        // The part of `dir` below the bind's source ("" for the source itself).
        let rest = if plan::validate::within(&dir_text, &source) {
            if source == "/" {
                dir_text.clone()
            } else {
                dir_text[source.len()..].to_string()
            }
        } else {
            // As the bind opens it: symlinks followed.
            let Ok(meta) = std::fs::metadata(crate::arg::to_path(&source)) else {
                continue;
            };
            match above.iter().find(|(id, _)| *id == (meta.dev(), meta.ino())) {
                Some((_, rest)) => rest.clone(),
                None => continue,
            }
        };
        let inside = format!(
            "{}{rest}",
            plan::validate::normalize(target).trim_end_matches('/')
        );
        let inside = if inside.is_empty() {
            "/".to_string()
        } else {
            inside
        };
        if out.iter().any(|s| s.op.target() == inside) {
            continue;
        }
        out.push(Step {
            op: FsOp::Tmpfs {
                target: inside,
                size: Some(4096),
                mode: 0o700,
                replace: true,
            },
            at: step.at.clone(),
        });
    }
    out
}

/// Every existing directory from `/` down to `dir` (symlinks resolved), by
/// device and inode, with the part of `dir` below it ("" for `dir`).
fn identities_above(dir: &Path) -> Vec<((u64, u64), String)> {
    // The deepest part of `dir` that exists, resolved, and what follows it.
    let mut existing = dir.to_path_buf();
    let mut tail = std::path::PathBuf::new();
    let real = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                tail = Path::new(name).join(&tail);
                existing = parent.to_path_buf();
            }
            _ => return Vec::new(),
        }
    };
    let full = crate::arg::path_text(&real.join(&tail));
    let full = plan::validate::normalize(&full);
    let mut out = Vec::new();
    for ancestor in real.ancestors() {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            continue;
        };
        let a = plan::validate::normalize(&crate::arg::path_text(ancestor));
        let rest = if a == "/" {
            full.clone()
        } else {
            full[a.len()..].to_string()
        };
        out.push(((meta.dev(), meta.ino()), rest));
    }
    out
}

/// The instance name: the command line's, the profile's `s.name()`, or the
/// sandbox name plus a short random id.
fn instance_name(plan: &Plan, opts: &Options) -> String {
    match &opts.name {
        Some(n) => n.clone(),
        None if plan.supervision.named => plan.name.clone(),
        None => format!("{}-{}", plan.name, state::short_id()),
    }
}

/// The oldest kernel moksha runs on (RHEL 8's): older ones lack calls the
/// launch needs with no fallback (e.g. SECCOMP_RET_KILL_PROCESS, 4.14).
const MIN_KERNEL: (i64, i64) = (4, 18);

/// Checks that need the host but no privilege, done before anything
/// exists (and by `moksha check`): a clear error here leaves nothing behind.
/// Returns what the network found on the host (its helper, a namespace to
/// join), for the launch.
pub fn host_checks(plan: &Plan) -> Result<network::Found, SetupError> {
    let ns = &plan.namespaces;
    if !ns.user && !nix::unistd::geteuid().is_root() {
        return Err(
            "the profile shares the host's user namespace, which only root can do; \
             remove s.share([\"user\"]) to run rootless"
                .to_string()
                .into(),
        );
    }
    if crate::script::host::kernel_version() < MIN_KERNEL {
        return Err(format!(
            "this kernel ({}) is older than Linux {}.{}, the oldest moksha runs on",
            crate::script::host::kernel_release(),
            MIN_KERNEL.0,
            MIN_KERNEL.1
        )
        .into());
    }
    if ns.mount && super::staging_base().is_none() {
        return Err(
            "no directory to stage the new root in (/tmp, /mnt, /run ... all missing)"
                .to_string()
                .into(),
        );
    }
    let ops = plan::mounts::compile(plan);
    for step in &plan.fs {
        if let FsOp::Bind {
            source,
            optional: false,
            create,
            ..
        } = &step.op
        {
            // A source to create at launch may be missing now.
            if *create && crate::arg::to_path(source).symlink_metadata().is_err() {
                continue;
            }
            let holder = plan::mounts::writable_holder(&ops, source);
            if let Err(e) = super::rootfs::open_source(source, holder) {
                return Err(SetupError::at(
                    &step.at,
                    super::rootfs::missing_source(source, &e),
                ));
            }
        }
    }
    let exists = |p: &str| crate::arg::to_path(p).symlink_metadata().is_ok();
    if let Some((at, msg)) = plan::mounts::needs_a_mount_point_in_a_read_only_bind(plan, exists) {
        return Err(SetupError::at(&at, msg));
    }
    let net = network::find(plan)?;
    if let Some(root) = &plan.root {
        if !crate::arg::to_path(&root.value).is_dir() {
            return Err(SetupError::at(
                &root.at,
                format!(
                    "pivot_root directory {} is not a directory on the host",
                    root.value
                ),
            ));
        }
    }
    Ok(net)
}

/// The program, looked up as the sandbox will (its PATH, the host paths
/// its binds show): when it is nowhere, and not on the host's PATH either,
/// it is not installed, which the exec inside could not tell apart from a
/// missing bind. Said before anything exists; nothing is created first.
fn program_on_host(plan: &Plan) -> Result<(), SetupError> {
    let Some(exec) = &plan.process.exec else {
        return Ok(());
    };
    let Some(program) = exec.op.argv.first() else {
        return Ok(());
    };
    // An own root, the host's filesystem, a path relative to the working
    // directory: the launch tells.
    if plan.root.is_some()
        || !plan.namespaces.mount
        || (program.contains('/') && !program.starts_with('/'))
    {
        return Ok(());
    }
    let candidates: Vec<String> = if program.starts_with('/') {
        if crate::arg::to_path(program).exists() {
            return Ok(()); // on the host, maybe not in the sandbox's view: exec says so
        }
        vec![program.clone()]
    } else {
        let env = super::program::environment(plan, &super::launcher_env());
        super::program::search_path(&env)
            .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
            .collect()
    };
    for inside in &candidates {
        match plan::mounts::origin(plan, inside) {
            // Not from the host (a tmpfs, a file the profile writes): unknown.
            plan::mounts::Origin::Elsewhere => return Ok(()),
            plan::mounts::Origin::Host(host) if crate::arg::to_path(&host).exists() => {
                return Ok(())
            }
            _ => {}
        }
    }
    let name = program.rsplit('/').next().unwrap_or(program);
    if crate::script::host::which(name).is_some() {
        return Ok(()); // installed, not in the sandbox's view: exec says so
    }
    Err(SetupError::at(
        &exec.at,
        format!(
            "{program:?} is not installed on the host (looked in {}): install it (Debian, \
             Ubuntu: apt install {name}; Fedora: dnf install {name}; the package may be named \
             differently), or run another program",
            candidates
                .iter()
                .map(|c| c.rsplit_once('/').map_or(c.as_str(), |(d, _)| d))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// The `moksha explain` report of an evaluated plan: resolved as `moksha
/// exec` would, but the same on every run (no terminal, no tmpfs sizes from
/// this machine's memory), so that two runs and two machines compare.
pub fn report_of(plan: &Plan) -> Result<crate::explain::Report, String> {
    let helper_dir = super::helper::dir_for(&plan.name);
    let state_dir = crate::state::state_dir().ok();
    let launch = Launch {
        name: &plan.name,
        detach: plan.supervision.detach,
        root: nix::unistd::geteuid().is_root(),
        helper_dir: (!plan.helpers.is_empty()).then_some(helper_dir.as_path()),
        terminal: None,
        state_dir: state_dir.as_deref(),
        // The same on every machine.
        changes_dir: Some(Path::new("~/.local/share/moksha/changes")),
        memory: None,
        // The default every kernel since 5.14 gives (the host's own limit
        // would make the output differ between machines).
        processes: Some(crate::policy::limits::DEFAULT_NPROC),
        trace: false,
    };
    let resolved = resolve(plan, &launch).map_err(|e| e.to_string())?;
    let ctx = crate::explain::Context {
        home: Some(crate::script::host::home_dir()),
    };
    Ok(crate::explain::Report::of(&resolved, &ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::helper::{Expose, Helper, HelperKind, Ready};
    use crate::plan::{Exec, NetMode, Pos, UserNet};

    fn at(line: usize) -> Pos {
        Pos {
            file: "p.rhai".into(),
            line,
            col: 1,
        }
    }

    fn base() -> Plan {
        let mut p = Plan::new("t", "p.rhai");
        p.process.exec = Some(Step {
            op: Exec {
                argv: vec!["/bin/true".into()],
            },
            at: at(1),
        });
        p
    }

    fn launch(root: bool, detach: bool, dir: Option<&Path>) -> Launch<'_> {
        Launch {
            name: "t",
            detach,
            root,
            helper_dir: dir,
            terminal: None,
            state_dir: None,
            changes_dir: None,
            processes: None,
            memory: None,
            trace: false,
        }
    }

    #[test]
    fn egress_sets_the_proxy_variables_and_keeps_its_port_reachable() {
        let mut p = base();
        p.network.egress = Some(crate::plan::egress::Egress::default());
        p.security.landlock.connect_tcp = Some(vec![443]);
        let r = resolve(&p, &launch(false, false, None)).unwrap();
        let set = |name: &str| {
            r.process.env.ops.iter().rev().find_map(|o| match o {
                plan::EnvOp::Set { name: n, value } if n == name => Some(value.clone()),
                _ => None,
            })
        };
        assert_eq!(set("HTTPS_PROXY").as_deref(), Some("http://127.0.0.1:3128"));
        assert_eq!(set("no_proxy").as_deref(), Some("localhost,127.0.0.1,::1"));
        assert_eq!(r.security.landlock.connect_tcp, Some(vec![443, 3128]));
        // Without egress, nothing of it.
        let r = resolve(&base(), &launch(false, false, None)).unwrap();
        assert!(!r.process.env.ops.iter().any(|o| matches!(o,
            plan::EnvOp::Set { name, .. } if name == "HTTPS_PROXY")));
    }

    #[test]
    fn the_resolved_plan_has_the_helper_binds_and_resolv_conf_and_validates() {
        let mut p = base();
        p.helpers.push(Step {
            op: Helper {
                name: "proxy".into(),
                kind: HelperKind::Program {
                    argv: vec!["xdg-dbus-proxy".into(), "--fd={ready_fd}".into()],
                    ready: Ready::Fd,
                    timeout_ms: 1000,
                },
                expose: vec![Expose {
                    file: "bus".into(),
                    target: "/run/bus".into(),
                    rw: true,
                }],
                optional: true,
            },
            at: at(3),
        });
        p.network.mode = NetMode::User(UserNet::default());
        p.network.set_at = Some(at(4));
        let dir = Path::new("/run/user/1/moksha/.helpers-t");
        let r = resolve(&p, &launch(false, false, Some(dir))).unwrap();
        let n = p.fs.len();
        assert_eq!(r.fs.len(), n + 2);
        assert_eq!(
            r.fs[n],
            Step {
                op: FsOp::Bind {
                    source: "/run/user/1/moksha/.helpers-t/proxy/bus".into(),
                    target: "/run/bus".into(),
                    rw: true,
                    dev: false,
                    optional: true,
                    replace: true,
                    create: false,
                    exec: false,
                },
                at: at(3),
            }
        );
        match &r.fs[n + 1].op {
            FsOp::WriteFile {
                target, content, ..
            } => {
                assert_eq!(target, "/etc/resolv.conf");
                assert_eq!(content, "nameserver 10.0.2.3\n");
            }
            other => panic!("not the resolv.conf step: {other:?}"),
        }
        assert_eq!(r.fs[n + 1].at, at(4));
        plan::validate(&r).unwrap();
        // Without a helper directory (no helpers) nothing is bound.
        assert_eq!(
            resolve(&p, &launch(false, false, None)).unwrap().fs.len(),
            n + 1
        );
    }

    #[test]
    fn root_launches_refuse_setid_files_and_detach_sets_supervision() {
        let p = base();
        let plain = resolve(&p, &launch(false, false, None)).unwrap();
        assert_eq!(plain, p, "nothing to add for a rootless foreground run");
        let as_root = resolve(&p, &launch(true, false, None)).unwrap();
        assert_ne!(as_root.security.seccomp, p.security.seccomp);
        let mut expected = p.security.seccomp.clone();
        expected.refuse_setid_files();
        assert_eq!(as_root.security.seccomp, expected);
        let detached = resolve(&p, &launch(false, true, None)).unwrap();
        let sup = &detached.supervision;
        assert!(sup.detach && sup.new_session && !sup.die_with_parent);
    }

    #[test]
    fn a_launch_installs_the_filter_its_profile_was_validated_with() {
        use crate::plan::validate::{validate_for, FilterFor};
        let mut p = base();
        p.security.seccomp.i386 = true;
        for (root, filter) in [(false, FilterFor::Plan), (true, FilterFor::RootLaunch)] {
            let checked = validate_for(&p, filter).unwrap();
            let (resolved, installed) = resolve_compiled(&p, &launch(root, false, None)).unwrap();
            assert_eq!(installed, checked, "root {root}");
            // The same policy, so `bpf::compile` finds it compiled.
            let mut policy = p.security.seccomp.clone();
            if root {
                policy.refuse_setid_files();
            }
            assert_eq!(resolved.security.seccomp, policy, "root {root}");
        }
        assert_eq!(filter_for_launch() == FilterFor::RootLaunch, by_root());
    }

    #[test]
    fn a_sandbox_with_its_own_user_namespace_gets_the_default_process_bound() {
        let mut p = base();
        let bounded = Launch {
            processes: Some(4096),
            ..launch(false, false, None)
        };
        let nproc = |p: &Plan| -> Vec<(Option<u64>, Option<u64>)> {
            let r = resolve(p, &bounded).unwrap();
            let l = r.security.rlimits.iter().filter(|l| l.op.name == "nproc");
            l.map(|l| (l.op.soft, l.op.hard)).collect()
        };
        p.namespaces.user = false;
        assert_eq!(nproc(&p), [], "no user namespace: the count is the host's");
        p.namespaces.user = true;
        assert_eq!(nproc(&p), [(Some(4096), Some(4096))]);
        assert_eq!(
            resolve(&p, &launch(false, false, None)).unwrap(),
            p,
            "no bound known"
        );
        p.security.rlimits.push(Step {
            op: crate::policy::limits::Rlimit {
                soft: None,
                hard: None,
                ..crate::policy::limits::process_bound(0)
            },
            at: at(3),
        });
        assert_eq!(nproc(&p), [(None, None)], "the profile's own limit stays");
    }

    #[test]
    fn the_terminal_is_the_consoles_of_the_sandboxs_dev() {
        let mut p = base();
        let with_tty = |p: &Plan, detach: bool| {
            let l = Launch {
                terminal: Some("/dev/pts/7"),
                ..launch(false, detach, None)
            };
            resolve(p, &l).unwrap()
        };
        assert_eq!(with_tty(&p, false), p, "no /dev of its own: nothing");
        p.fs.push(Step {
            op: FsOp::Dev {
                target: "/dev".into(),
                replace: false,
            },
            at: at(5),
        });
        let r = with_tty(&p, false);
        match &r.fs.last().unwrap().op {
            FsOp::Bind {
                source,
                target,
                rw: true,
                dev: true,
                ..
            } => assert_eq!(
                (source.as_str(), target.as_str()),
                ("/dev/pts/7", "/dev/console")
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            with_tty(&p, true).fs.len(),
            p.fs.len(),
            "detached: no terminal"
        );
    }

    #[test]
    fn the_state_directory_is_hidden_wherever_a_bind_shows_it() {
        let mut p = base();
        let bind = |source: &str, target: &str| Step {
            op: FsOp::Bind {
                source: source.into(),
                target: target.into(),
                rw: true,
                dev: false,
                optional: false,
                replace: false,
                create: false,
                exec: false,
            },
            at: at(7),
        };
        p.fs.push(bind("/tmp", "/tmp"));
        p.fs.push(bind("/tmp", "/scratch"));
        p.fs.push(bind("/usr", "/usr"));
        let l = Launch {
            state_dir: Some(Path::new("/tmp/moksha-1000")),
            ..launch(false, false, None)
        };
        let r = resolve(&p, &l).unwrap();
        let hidden: Vec<&str> = r.fs[p.fs.len()..].iter().map(|s| s.op.target()).collect();
        assert_eq!(hidden, ["/tmp/moksha-1000", "/scratch/moksha-1000"]);
        assert!(matches!(
            r.fs[p.fs.len()].op,
            FsOp::Tmpfs { mode: 0o700, .. }
        ));
    }

    #[test]
    fn a_resolved_plan_that_does_not_validate_is_refused() {
        let mut p = base();
        // Validation is skipped by nobody: an invalid profile plan stays invalid.
        p.process.exec = None;
        assert!(resolve(&p, &launch(false, false, None)).is_err());
    }
}
