//! The landlock rules derived from the plan's mounts, so a profile gets
//! landlock without repeating itself (the policy types and the reduction
//! to a kernel's ABI are in `policy::landlock`).
//!
//! Derived rules (paths inside the sandbox):
//!
//! | step                       | access                         |
//! |----------------------------|--------------------------------|
//! | read-only bind, pivot_root | read, execute                  |
//! | read-write bind            | read, write                    |
//! | read-write bind, exec      | read, write, execute           |
//! | overlay (exec)             | read, write (execute)          |
//! | tmpfs, mqueue              | read, write                    |
//! | proc                       | read, write                    |
//! | dev                        | read, write, ioctl on devices  |
//! | write_file                 | read                           |
//! | the empty tmpfs root `/`   | list directories only          |
//!
//! Listing the root's directory is allowed so `ls /` works; landlock rules
//! apply beneath a path, so directory names can then be listed everywhere,
//! but no file can be read, written or executed without a rule.

use super::{FsOp, Located, Plan, Step};
use crate::policy::landlock::{self, FsRule, Ruleset};

/// The filesystem rules for a plan: derived ones (when asked) then the
/// profile's, in order.
pub fn fs_rules(plan: &Plan) -> Vec<FsRule> {
    let ll = &plan.security.landlock;
    let mut out = Vec::new();
    let read = landlock::READ_FILE | landlock::READ_DIR;
    let write = landlock::access_by_name("write").unwrap_or(0);
    if ll.derive && plan.namespaces.mount {
        let mut add = |path: &str, access: u64, origin: String| {
            out.push(FsRule {
                path: path.to_string(),
                access,
                optional: true,
                origin,
            })
        };
        match &plan.root {
            Some(Located { value, .. }) => {
                add("/", read | landlock::EXECUTE, format!("root {value}"))
            }
            None => add("/", landlock::READ_DIR, "the tmpfs root".into()),
        }
        for Step { op, .. } in &plan.fs {
            match op {
                FsOp::Bind {
                    target, rw, exec, ..
                } => {
                    // Write-xor-execute unless the bind says exec.
                    let access = match (rw, exec) {
                        (true, true) => read | write | landlock::EXECUTE,
                        (true, false) => read | write,
                        (false, _) => read | landlock::EXECUTE,
                    };
                    add(target, access, "bind".into());
                }
                FsOp::Overlay { target, exec, .. } => {
                    let x = if *exec { landlock::EXECUTE } else { 0 };
                    add(target, read | write | x, "overlay".into())
                }
                FsOp::Tmpfs { target, .. } => add(target, read | write, "tmpfs".into()),
                FsOp::Mqueue { target, .. } => add(target, read | write, "mqueue".into()),
                FsOp::Proc { target, .. } => add(target, read | write, "proc".into()),
                FsOp::Dev { target, .. } => {
                    add(target, read | write | landlock::IOCTL_DEV, "dev".into())
                }
                FsOp::WriteFile { target, .. } => {
                    add(target, landlock::READ_FILE, "write_file".into())
                }
                FsOp::Mkdir { .. }
                | FsOp::Symlink { .. }
                | FsOp::RemountRo { .. }
                | FsOp::Protect { .. }
                | FsOp::Chmod { .. } => {}
            }
        }
    }
    for step in &ll.rules {
        out.push(FsRule {
            path: step.op.path.clone(),
            access: step.op.access,
            optional: step.op.optional,
            origin: format!("{}", step.at),
        });
    }
    out
}

/// The ruleset for `plan` on a kernel with landlock ABI `abi` (0: none).
/// `None` when landlock is off.
pub fn ruleset(plan: &Plan, abi: u32) -> Option<Ruleset> {
    let ll = &plan.security.landlock;
    landlock::ruleset(ll, fs_rules(plan), plan.namespaces.mount, abi)
}

/// Why landlock keeps the program from executing `path` (an absolute
/// path inside), when the mount it lies on is writable and not
/// executable: the step, and what to change. `None` when that is not why.
pub fn why_not_executable(plan: &Plan, path: &str) -> Option<String> {
    let ll = &plan.security.landlock;
    if !ll.enabled || !ll.derive || !plan.namespaces.mount {
        return None;
    }
    let path = super::validate::normalize(path);
    // The last step that mounts something over the path decides.
    let step = super::mounts::holder(plan, &path)?;
    let (what, fix) = match &step.op {
        FsOp::Bind {
            target,
            rw: true,
            exec: false,
            ..
        } => (
            format!("the read-write bind of {target}"),
            "add exec: true to that bind if the program must run what is written there",
        ),
        FsOp::Tmpfs { target, .. } => (
            format!("the tmpfs at {target}"),
            "files written at run time are not executable (write-xor-execute); run it from a \
             read-only bind, or bind a directory with #{ rw: true, exec: true }",
        ),
        _ => return None,
    };
    Some(format!(
        "{path} is on {what} ({}), which landlock keeps from executing: {fix}",
        step.at
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::located::Pos;
    use crate::policy::landlock::{
        access_names, EXECUTE, IOCTL_DEV, NET_CONNECT_TCP, READ_DIR, READ_FILE,
        SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL, WRITE_FILE,
    };

    fn step(op: FsOp) -> Step<FsOp> {
        Step {
            op,
            at: Pos::default(),
        }
    }

    fn plan() -> Plan {
        let mut p = Plan::new("t", "t.rhai");
        p.fs = vec![
            step(FsOp::Bind {
                source: "/usr".into(),
                target: "/usr".into(),
                rw: false,
                dev: false,
                optional: false,
                replace: false,
                create: false,
                exec: false,
            }),
            step(FsOp::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                rw: true,
                dev: false,
                optional: false,
                replace: false,
                create: false,
                exec: false,
            }),
            step(FsOp::Tmpfs {
                target: "/tmp".into(),
                size: None,
                mode: 0o1777,
                replace: false,
            }),
            step(FsOp::Dev {
                target: "/dev".into(),
                replace: false,
            }),
        ];
        p
    }

    #[test]
    fn rules_derive_from_mounts() {
        let rules = fs_rules(&plan());
        let get = |p: &str| rules.iter().find(|r| r.path == p).unwrap().access;
        assert_eq!(get("/"), READ_DIR);
        assert_eq!(get("/usr"), READ_FILE | READ_DIR | EXECUTE);
        assert_eq!(get("/data") & EXECUTE, 0);
        assert_ne!(get("/data") & WRITE_FILE, 0);
        assert_ne!(get("/dev") & IOCTL_DEV, 0);
        assert_eq!(access_names(get("/usr")), "read, execute");
        assert_eq!(access_names(get("/tmp")), "read, write");
    }

    #[test]
    fn best_effort_reduces_to_the_abi() {
        let mut p = plan();
        p.security.landlock.connect_tcp = Some(vec![443]);
        let r = ruleset(&p, 3).unwrap();
        assert_eq!(r.handled_net, 0);
        assert!(r.left_out.iter().any(|l| l.contains("TCP connect")));
        assert!(r.left_out.iter().any(|l| l.contains("signal scoping")));
        assert_eq!(r.handled_fs & IOCTL_DEV, 0);
        let r = ruleset(&p, 7).unwrap();
        assert_eq!(r.handled_net, NET_CONNECT_TCP);
        assert_eq!(r.net, vec![(443, NET_CONNECT_TCP)]);
        assert_eq!(r.scoped, SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET);
        assert!(r.left_out.is_empty(), "{:?}", r.left_out);
    }

    #[test]
    fn no_derivation_without_a_mount_namespace() {
        let mut p = Plan::new("t", "t.rhai");
        p.namespaces.mount = false;
        assert!(fs_rules(&p).is_empty());
        assert_eq!(ruleset(&p, 7).unwrap().handled_fs, 0);
    }

    #[test]
    fn a_writable_bind_says_why_it_does_not_execute() {
        let mut p = plan();
        let why = why_not_executable(&p, "/data/build/hello").unwrap();
        assert!(
            why.contains("read-write bind of /data") && why.contains("exec: true"),
            "{why}"
        );
        assert!(why_not_executable(&p, "/tmp/x")
            .unwrap()
            .contains("tmpfs at /tmp"));
        assert_eq!(why_not_executable(&p, "/usr/bin/true"), None);
        if let FsOp::Bind { exec, .. } = &mut p.fs[1].op {
            *exec = true;
        }
        assert_eq!(why_not_executable(&p, "/data/build/hello"), None);
        let rules = fs_rules(&p);
        let data = rules.iter().find(|r| r.path == "/data").unwrap().access;
        assert_ne!(data & EXECUTE, 0);
        assert_ne!(data & WRITE_FILE, 0);
        p.security.landlock.enabled = false;
        assert_eq!(why_not_executable(&p, "/tmp/x"), None);
    }
}
