//! Pure checks of a Plan before anything is touched. Every error carries the
//! script position of the step that caused it (when a step caused it).

use super::{EnvOp, FsOp, Plan, Pos};
use crate::policy::bpf;
use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct ValidationError {
    pub message: String,
    pub at: Option<Pos>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ValidationError {}

fn fail<T>(message: impl Into<String>, at: &Pos) -> Result<T, ValidationError> {
    Err(ValidationError {
        message: message.into(),
        at: Some(at.clone()),
    })
}

/// Checks that `path` is absolute, has no `..` component and no NUL byte.
/// `what` names the role of the path in messages ("bind source", ...).
pub fn check_path(path: &str, what: &str) -> Result<(), String> {
    if path.contains('\0') {
        return Err(format!("{what} {path:?} contains a NUL byte"));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "{what} {path:?} is relative; paths in a profile must be absolute (start with /)"
        ));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(format!(
            "{what} {path:?} contains '..'; write the path without parent references"
        ));
    }
    Ok(())
}

/// Checks a protect pattern: relative, no `..`, not empty, no NUL, every
/// component a valid glob (`**` alone for any number of directories).
pub fn check_protect_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() || p.contains('\0') {
        return Err(format!("protect pattern {p:?} is empty or has a NUL byte"));
    }
    if p.starts_with('/') {
        return Err(format!(
            "protect pattern {p:?} is absolute; patterns are relative to `under`"
        ));
    }
    for c in p.split('/') {
        if c == ".." {
            return Err(format!("protect pattern {p:?} contains '..'"));
        }
        if c != "**" {
            glob::Pattern::new(c).map_err(|e| format!("bad protect pattern {p:?}: {e}"))?;
        }
    }
    Ok(())
}

/// The path with repeated and trailing slashes and `.` components removed,
/// so that `/usr/`, `//usr` and `/usr/.` compare equal.
pub fn normalize(path: &str) -> String {
    // One allocation: validation normalizes every path of a plan, twice
    // for a launch.
    let mut out = String::with_capacity(path.len() + 1);
    for part in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Checks an environment operation: a name without '=' or NUL, not empty;
/// a value without NUL.
pub fn check_env(op: &EnvOp) -> Result<(), String> {
    let name = match op {
        EnvOp::Set { name, value } => {
            if value.contains('\0') {
                return Err(format!(
                    "environment variable {name}: the value contains a NUL byte"
                ));
            }
            name
        }
        EnvOp::Unset { name } | EnvOp::Keep { name } => name,
    };
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(format!(
            "{name:?} is not a valid environment variable name (no '=', not empty)"
        ));
    }
    Ok(())
}

/// Whether the normalized path `path` is `dir` or lies beneath it (both
/// normalized: see `normalize`).
pub fn within(path: &str, dir: &str) -> bool {
    path == dir || dir == "/" || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Validates the whole plan; the first problem found is returned.
pub fn validate(plan: &Plan) -> Result<(), ValidationError> {
    validate_compiled(plan).map(drop)
}

/// The seccomp filter a validation compiles to check that it can be
/// installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterFor {
    /// The plan's own.
    Plan,
    /// The one a launch by root installs: the plan's with the set-id file
    /// modes refused (`launch::prepare`). A launch validates its resolved
    /// plan again before anything is made; compiled here, its filter is
    /// found compiled there (`bpf::compile` keeps the last one), where a
    /// root launch compiled the plan's own here and root's there (0.18 M
    /// instructions each, callgrind). A filter too big to install only
    /// with the set-id rules is so refused at the profile's position.
    RootLaunch,
}

/// `validate`, returning the seccomp program it compiled for this machine
/// (`None` on an architecture moksha cannot compile for), so that a launch
/// installs the program that was checked instead of compiling it again.
pub fn validate_compiled(plan: &Plan) -> Result<Compiled, ValidationError> {
    validate_for(plan, FilterFor::Plan)
}

/// `validate_compiled`, compiling the filter `filter` names.
pub fn validate_for(plan: &Plan, filter: FilterFor) -> Result<Compiled, ValidationError> {
    let ns = &plan.namespaces;

    let exec = match &plan.process.exec {
        None => {
            return Err(ValidationError {
                message: "the profile never calls exec: a sandbox needs exactly one command \
                          (e.g. s.exec([\"/bin/sh\"]))"
                    .into(),
                at: None,
            })
        }
        Some(exec) => exec,
    };
    if exec.op.argv.is_empty() || exec.op.argv[0].is_empty() {
        return fail("exec needs a program: the command is empty", &exec.at);
    }
    if let Some(arg) = exec.op.argv.iter().find(|a| a.contains('\0')) {
        return fail(
            format!("command argument {arg:?} contains a NUL byte"),
            &exec.at,
        );
    }

    if let Some(root) = &plan.root {
        check_path(&root.value, "pivot_root directory").or_else(|m| fail(m, &root.at))?;
        if !ns.mount {
            return fail("pivot_root needs a mount namespace", &root.at);
        }
    }

    // Creating steps by normalized target, to find conflicts.
    let mut created: HashMap<String, &Pos> = HashMap::new();
    for step in &plan.fs {
        let target = step.op.target();
        check_path(target, "target").or_else(|m| fail(m, &step.at))?;
        if !ns.mount {
            return fail(
                "filesystem steps need a mount namespace, but the profile shares the host's \
                 (remove s.share([\"mount\"]) or the step)",
                &step.at,
            );
        }
        match &step.op {
            FsOp::Bind { source, .. } => {
                check_path(source, "bind source").or_else(|m| fail(m, &step.at))?
            }
            FsOp::Overlay {
                source, changes, ..
            } => {
                check_path(source, "overlay directory").or_else(|m| fail(m, &step.at))?;
                // (The name itself is checked where the store is opened.)
                if let Some(name) = changes {
                    let twice = plan.fs.iter().filter(
                        |s| matches!(&s.op, FsOp::Overlay { changes: Some(n), .. } if n == name),
                    );
                    if twice.count() > 1 {
                        return fail(
                            format!(
                                "two overlays keep their changes as {name:?}: give each its \
                                 own #{{ name: ... }}"
                            ),
                            &step.at,
                        );
                    }
                }
            }
            FsOp::Protect { patterns, .. } => {
                for p in patterns {
                    check_protect_pattern(p).or_else(|m| fail(m, &step.at))?;
                }
            }
            FsOp::Proc { .. } if !ns.pid => {
                return fail(
                    "proc needs a new PID namespace: a proc of the host's PID namespace \
                     would show every host process (remove s.share([\"pid\"]) or the proc step)",
                    &step.at,
                )
            }
            FsOp::Mqueue { .. } if !ns.ipc => {
                return fail(
                    "mqueue needs a new IPC namespace (remove s.share([\"ipc\"]) or the step)",
                    &step.at,
                )
            }
            FsOp::Symlink { points_to, .. } if points_to.is_empty() || points_to.contains('\0') => {
                return fail(
                    format!("symlink destination {points_to:?} is empty or contains a NUL byte"),
                    &step.at,
                )
            }
            FsOp::WriteFile { content, .. } if content.contains('\0') => {
                return fail("write_file content contains a NUL byte", &step.at)
            }
            _ => {}
        }
        let key = normalize(target);
        if let Some(replace) = step.op.creates() {
            if key == "/" {
                return fail(
                    "cannot mount or create at / itself: the root is the sandbox's own tmpfs \
                     (use pivot_root to make a host directory the root)",
                    &step.at,
                );
            }
            if let Some(earlier) = created.get(&key) {
                if !replace {
                    return fail(
                        format!(
                            "{key} was already set up at {earlier}; pass #{{ replace: true }} \
                             if this step is meant to replace it"
                        ),
                        &step.at,
                    );
                }
            }
            created.insert(key, &step.at);
        }
    }

    if let Some(cwd) = &plan.process.cwd {
        check_path(&cwd.value, "working directory").or_else(|m| fail(m, &cwd.at))?;
    }
    if let Some(host) = &plan.process.hostname {
        if !ns.uts {
            return fail(
                "hostname needs a new UTS namespace (remove s.share([\"uts\"]))",
                &host.at,
            );
        }
        let h = &host.value;
        if h.is_empty() || h.len() > 64 || h.contains('\0') || h.contains('/') {
            return fail(
                format!("hostname {h:?} is not valid: 1 to 64 characters, no NUL or /"),
                &host.at,
            );
        }
    }
    for op in &plan.process.env.ops {
        check_env(op).map_err(|message| ValidationError {
            message,
            at: Some(exec.at.clone()),
        })?;
    }
    let compiled = check_security(&plan.security, filter)
        .map_err(|(message, at)| ValidationError { message, at })?;
    super::network::validate(plan).map_err(|(message, at)| ValidationError { message, at })?;
    super::helper::validate(plan).map_err(|(message, at)| ValidationError {
        message,
        at: Some(at),
    })?;
    if (plan.ids.uid.is_some() || plan.ids.gid.is_some()) && !ns.user {
        return Err(ValidationError {
            message: "uid/gid inside the sandbox need a new user namespace".into(),
            at: None,
        });
    }
    Ok(compiled)
}

/// A seccomp program compiled for this machine, if moksha compiles for it.
pub type Compiled = Option<Vec<bpf::Insn>>;

/// Pure checks of the security section: the program must be able to start
/// under the filter, and the filter must compile for this machine (the
/// compiled program is returned).
fn check_security(
    sec: &super::Security,
    filter: FilterFor,
) -> Result<Compiled, (String, Option<Pos>)> {
    sec.seccomp.check()?;
    let policy = match filter {
        FilterFor::Plan => std::borrow::Cow::Borrowed(&sec.seccomp),
        FilterFor::RootLaunch => {
            let mut root = sec.seccomp.clone();
            root.refuse_setid_files();
            std::borrow::Cow::Owned(root)
        }
    };
    let compiled = match bpf::Arch::native() {
        Some(arch) => {
            Some(bpf::compile(&policy, arch).map_err(|e| (e, sec.seccomp.mode_at.clone()))?)
        }
        None => None,
    };
    if let Some(t) = &sec.timeout {
        if t.op.ms == 0 {
            return Err((
                "the timeout must be longer than 0".into(),
                Some(t.at.clone()),
            ));
        }
    }
    Ok(compiled)
}
