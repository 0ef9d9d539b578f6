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
                FsOp::Bind { target, rw, .. } => {
                    let access = if *rw {
                        read | write
                    } else {
                        read | landlock::EXECUTE
                    };
                    add(target, access, "bind".into());
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
            }),
            step(FsOp::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                rw: true,
                dev: false,
                optional: false,
                replace: false,
                create: false,
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
}
