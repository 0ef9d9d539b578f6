//! Validation rules, one bad plan each, built directly in Rust: every rule
//! rejects with its message and the position of the offending step.

use super::*;

fn at(line: usize) -> Pos {
    Pos {
        file: "p.rhai".into(),
        line,
        col: 3,
    }
}

/// A valid plan: default namespaces and one command at line 1.
fn plan() -> Plan {
    let mut p = Plan::new("t", "p.rhai");
    p.process.exec = Some(Step {
        op: Exec {
            argv: vec!["/bin/true".into()],
        },
        at: at(1),
    });
    p
}

fn with_steps(ops: Vec<FsOp>) -> Plan {
    let mut p = plan();
    p.fs = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| Step { op, at: at(i + 2) })
        .collect();
    p
}

fn tmpfs(target: &str, replace: bool) -> FsOp {
    FsOp::Tmpfs {
        target: target.into(),
        size: None,
        mode: 0o755,
        replace,
    }
}

fn bind(source: &str, target: &str, replace: bool) -> FsOp {
    FsOp::Bind {
        source: source.into(),
        target: target.into(),
        rw: false,
        dev: false,
        optional: false,
        replace,
        create: false,
        exec: false,
    }
}

/// Asserts `p` is rejected at `line` with a message containing `needle`.
#[track_caller]
fn rejected(p: &Plan, line: usize, needle: &str) -> ValidationError {
    let e = validate(p).expect_err("the plan should be rejected");
    assert_eq!(e.at, Some(at(line)), "position of: {e}");
    assert!(
        e.message.contains(needle),
        "message {:?} should contain {needle:?}",
        e.message
    );
    assert!(e.to_string().starts_with(&format!("p.rhai:{line}:3: ")));
    e
}

#[test]
fn a_plain_plan_is_valid() {
    validate(&plan()).unwrap();
    validate(&with_steps(vec![
        tmpfs("/tmp", false),
        bind("/usr", "/usr", false),
        FsOp::Proc {
            target: "/proc".into(),
            replace: false,
        },
        FsOp::Dev {
            target: "/dev".into(),
            replace: false,
        },
        FsOp::Mqueue {
            target: "/dev/mqueue".into(),
            replace: false,
        },
        FsOp::Mkdir {
            target: "/a".into(),
            mode: 0o700,
        },
        FsOp::Symlink {
            points_to: "usr/bin".into(),
            target: "/bin".into(),
            replace: false,
        },
        FsOp::WriteFile {
            target: "/etc/x".into(),
            content: "hi\n".into(),
            mode: 0o644,
            replace: false,
        },
        FsOp::RemountRo { target: "/".into() },
        FsOp::Chmod {
            target: "/a".into(),
            mode: 0o755,
        },
    ]))
    .unwrap();
}

#[test]
fn check_path_rules() {
    assert!(validate::check_path("/a/b", "x").is_ok());
    assert!(validate::check_path("/a/..b/c.", "x").is_ok());
    let rel = validate::check_path("a/b", "bind source").unwrap_err();
    assert!(rel.contains("bind source \"a/b\" is relative"), "{rel}");
    let up = validate::check_path("/a/../b", "x").unwrap_err();
    assert!(up.contains("'..'"), "{up}");
    assert!(validate::check_path("/a/..", "x").is_err());
    let nul = validate::check_path("/a\0b", "x").unwrap_err();
    assert!(nul.contains("NUL"), "{nul}");
    assert!(validate::check_path("", "x").is_err());
}

#[test]
fn normalize_paths() {
    assert_eq!(validate::normalize("/usr/"), "/usr");
    assert_eq!(validate::normalize("//usr/./lib//"), "/usr/lib");
    assert_eq!(validate::normalize("/"), "/");
    assert_eq!(validate::normalize("/."), "/");
    assert_eq!(validate::normalize(""), "/");
    assert_eq!(validate::normalize("usr//lib/."), "/usr/lib");
}

#[test]
fn no_exec() {
    let mut p = plan();
    p.process.exec = None;
    let e = validate(&p).unwrap_err();
    assert!(e.message.contains("never calls exec"), "{e}");
    assert_eq!(e.at, None);
}

#[test]
fn empty_argv() {
    let mut p = plan();
    p.process.exec.as_mut().unwrap().op.argv.clear();
    rejected(&p, 1, "command is empty");
    p.process.exec.as_mut().unwrap().op.argv = vec![String::new(), "x".into()];
    rejected(&p, 1, "command is empty");
}

#[test]
fn nul_in_argv() {
    let mut p = plan();
    p.process.exec.as_mut().unwrap().op.argv = vec!["/bin/echo".into(), "a\0b".into()];
    rejected(&p, 1, "NUL");
}

#[test]
fn relative_target() {
    rejected(&with_steps(vec![tmpfs("tmp", false)]), 2, "is relative");
    rejected(
        &with_steps(vec![tmpfs("/tmp", false), bind("/usr", "usr", false)]),
        3,
        "target \"usr\" is relative",
    );
}

#[test]
fn relative_bind_source() {
    rejected(
        &with_steps(vec![bind("usr", "/usr", false)]),
        2,
        "bind source \"usr\" is relative",
    );
}

#[test]
fn dotdot_in_paths() {
    rejected(&with_steps(vec![tmpfs("/a/../b", false)]), 2, "'..'");
    rejected(
        &with_steps(vec![bind("/usr/../etc", "/etc", false)]),
        2,
        "bind source \"/usr/../etc\" contains '..'",
    );
    let mut p = plan();
    p.process.cwd = Some(Located {
        value: "/home/..".into(),
        at: at(5),
    });
    rejected(&p, 5, "working directory");
}

#[test]
fn nul_in_paths() {
    rejected(&with_steps(vec![tmpfs("/t\0mp", false)]), 2, "NUL");
    rejected(
        &with_steps(vec![bind("/us\0r", "/usr", false)]),
        2,
        "bind source",
    );
}

#[test]
fn duplicate_target_needs_replace() {
    let e = rejected(
        &with_steps(vec![tmpfs("/tmp", false), bind("/x", "/tmp/", false)]),
        3,
        "/tmp was already set up at p.rhai:2:3",
    );
    assert!(e.message.contains("replace: true"), "{e}");
    validate(&with_steps(vec![
        tmpfs("/tmp", false),
        bind("/x", "/tmp/", true),
    ]))
    .unwrap();
    // Every creating kind counts, after normalization.
    rejected(
        &with_steps(vec![
            FsOp::Proc {
                target: "/proc".into(),
                replace: false,
            },
            FsOp::Symlink {
                points_to: "x".into(),
                target: "//proc/.".into(),
                replace: false,
            },
        ]),
        3,
        "already set up",
    );
    rejected(
        &with_steps(vec![
            FsOp::WriteFile {
                target: "/etc/hosts".into(),
                content: String::new(),
                mode: 0o644,
                replace: false,
            },
            FsOp::WriteFile {
                target: "/etc/hosts".into(),
                content: "x".into(),
                mode: 0o644,
                replace: false,
            },
        ]),
        3,
        "already set up at p.rhai:2:3",
    );
}

#[test]
fn adjusting_steps_are_not_duplicates() {
    validate(&with_steps(vec![
        FsOp::Mkdir {
            target: "/tmp".into(),
            mode: 0o755,
        },
        tmpfs("/tmp", false),
        FsOp::Chmod {
            target: "/tmp".into(),
            mode: 0o1777,
        },
        FsOp::RemountRo {
            target: "/tmp".into(),
        },
        FsOp::RemountRo {
            target: "/tmp".into(),
        },
    ]))
    .unwrap();
}

#[test]
fn creating_at_root() {
    rejected(
        &with_steps(vec![tmpfs("/", false)]),
        2,
        "cannot mount or create at /",
    );
    rejected(
        &with_steps(vec![bind("/srv", "//.", true)]),
        2,
        "at / itself",
    );
}

#[test]
fn proc_needs_pid_namespace() {
    let mut p = with_steps(vec![FsOp::Proc {
        target: "/proc".into(),
        replace: false,
    }]);
    p.namespaces.pid = false;
    rejected(&p, 2, "proc needs a new PID namespace");
}

#[test]
fn mounts_need_mount_namespace() {
    let kinds = vec![
        tmpfs("/tmp", false),
        bind("/usr", "/usr", false),
        FsOp::Dev {
            target: "/dev".into(),
            replace: false,
        },
        FsOp::Mkdir {
            target: "/a".into(),
            mode: 0o755,
        },
        FsOp::RemountRo { target: "/".into() },
    ];
    for op in kinds {
        let mut p = with_steps(vec![op.clone()]);
        p.namespaces.mount = false;
        rejected(&p, 2, "need a mount namespace");
    }
    let mut p = plan();
    p.namespaces.mount = false;
    p.root = Some(Located {
        value: "/srv/root".into(),
        at: at(4),
    });
    rejected(&p, 4, "pivot_root needs a mount namespace");
}

#[test]
fn pivot_root_path() {
    let mut p = plan();
    p.root = Some(Located {
        value: "srv/root".into(),
        at: at(4),
    });
    rejected(&p, 4, "pivot_root directory \"srv/root\" is relative");
}

#[test]
fn mqueue_needs_ipc_namespace() {
    let mut p = with_steps(vec![FsOp::Mqueue {
        target: "/dev/mqueue".into(),
        replace: false,
    }]);
    p.namespaces.ipc = false;
    rejected(&p, 2, "mqueue needs a new IPC namespace");
}

#[test]
fn symlink_destination() {
    for bad in ["", "a\0b"] {
        rejected(
            &with_steps(vec![FsOp::Symlink {
                points_to: bad.into(),
                target: "/l".into(),
                replace: false,
            }]),
            2,
            "symlink destination",
        );
    }
}

#[test]
fn write_file_content_nul() {
    rejected(
        &with_steps(vec![FsOp::WriteFile {
            target: "/f".into(),
            content: "a\0".into(),
            mode: 0o644,
            replace: false,
        }]),
        2,
        "content contains a NUL",
    );
}

#[test]
fn relative_cwd() {
    let mut p = plan();
    p.process.cwd = Some(Located {
        value: "home".into(),
        at: at(6),
    });
    rejected(&p, 6, "working directory \"home\" is relative");
}

#[test]
fn hostname_needs_uts_namespace() {
    let mut p = plan();
    p.process.hostname = Some(Located {
        value: "box".into(),
        at: at(7),
    });
    validate(&p).unwrap();
    p.namespaces.uts = false;
    rejected(&p, 7, "hostname needs a new UTS namespace");
}

#[test]
fn hostname_shape() {
    for bad in [String::new(), "a/b".into(), "a\0".into(), "x".repeat(65)] {
        let mut p = plan();
        p.process.hostname = Some(Located {
            value: bad,
            at: at(7),
        });
        rejected(&p, 7, "is not valid");
    }
    let mut p = plan();
    p.process.hostname = Some(Located {
        value: "x".repeat(64),
        at: at(7),
    });
    validate(&p).unwrap();
}

#[test]
fn env_names_and_values() {
    for bad in ["", "A=B", "A\0"] {
        let mut p = plan();
        p.process.env.ops.push(EnvOp::Keep { name: bad.into() });
        let e = validate(&p).unwrap_err();
        assert!(e.message.contains("not a valid environment variable name"));
    }
    let mut p = plan();
    p.process.env.ops.push(EnvOp::Set {
        name: "A".into(),
        value: "x\0y".into(),
    });
    let e = validate(&p).unwrap_err();
    assert!(e.message.contains("value contains a NUL byte"), "{e}");
}

#[test]
fn ids_need_user_namespace() {
    let mut p = plan();
    p.ids.uid = Some(0);
    validate(&p).unwrap();
    p.namespaces.user = false;
    let e = validate(&p).unwrap_err();
    assert!(e.message.contains("need a new user namespace"), "{e}");
    let mut p = plan();
    p.namespaces.user = false;
    p.ids.gid = Some(0);
    assert!(validate(&p).is_err());
}

#[test]
fn the_first_problem_is_reported() {
    // Steps are checked in order: the earlier bad step wins.
    let p = with_steps(vec![
        tmpfs("/ok", false),
        tmpfs("bad1", false),
        tmpfs("bad2", false),
    ]);
    rejected(&p, 3, "\"bad1\"");
}

#[test]
fn namespaces_by_name() {
    let mut ns = Namespaces::default();
    let names = |ns: &Namespaces| -> Vec<&str> { ns.new_ones().iter().map(|n| n.name()).collect() };
    assert_eq!(
        names(&ns),
        ["user", "mount", "pid", "net", "ipc", "uts", "cgroup"]
    );
    for name in ["mnt", "network"] {
        *ns.flag_mut(Namespace::by_name(name).unwrap()) = false;
    }
    *ns.flag_mut(Namespace::Time) = true;
    assert!(Namespace::by_name("nope").is_none());
    assert_eq!(names(&ns), ["user", "pid", "ipc", "uts", "cgroup", "time"]);
}

#[test]
fn json_round_trip_of_every_step() {
    let mut p = with_steps(vec![
        FsOp::Tmpfs {
            target: "/tmp".into(),
            size: Some(64 << 20),
            mode: 0o1777,
            replace: true,
        },
        FsOp::Bind {
            source: "/a".into(),
            target: "/b".into(),
            rw: true,
            dev: true,
            optional: true,
            replace: false,
            create: true,
            exec: false,
        },
        FsOp::Proc {
            target: "/proc".into(),
            replace: false,
        },
        FsOp::Dev {
            target: "/dev".into(),
            replace: false,
        },
        FsOp::Mqueue {
            target: "/dev/mqueue".into(),
            replace: false,
        },
        FsOp::Mkdir {
            target: "/a".into(),
            mode: 0o700,
        },
        FsOp::Symlink {
            points_to: "../x".into(),
            target: "/l".into(),
            replace: true,
        },
        FsOp::WriteFile {
            target: "/f".into(),
            content: "line\n\"quoted\" ✓".into(),
            mode: 0o600,
            replace: false,
        },
        FsOp::RemountRo { target: "/".into() },
        FsOp::Chmod {
            target: "/a".into(),
            mode: 0o711,
        },
    ]);
    p.root = Some(Located {
        value: "/srv".into(),
        at: at(9),
    });
    p.ids = Ids {
        uid: Some(0),
        gid: Some(100),
        host_root: Some(at(10)),
        as_nobody: true,
    };
    p.process.env.clear = false;
    p.process.env.ops = vec![
        EnvOp::Set {
            name: "A".into(),
            value: "1".into(),
        },
        EnvOp::Unset { name: "B".into() },
        EnvOp::Keep { name: "C".into() },
    ];
    p.process.cwd = Some(Located {
        value: "/a".into(),
        at: at(10),
    });
    p.process.hostname = Some(Located {
        value: "h".into(),
        at: at(11),
    });
    p.supervision.die_with_parent = false;
    p.supervision.new_session = false;
    p.security.keep_caps.push(Located {
        value: "CAP_CHOWN".into(),
        at: at(12),
    });
    let text = serde_json::to_string(&p).unwrap();
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
    assert!(text.contains("\"op\":\"write_file\""), "{text}");
    // Unknown fields are refused when reading a plan back.
    let bad = text.replacen("\"name\":\"t\"", "\"name\":\"t\",\"nmae\":1", 1);
    assert!(serde_json::from_str::<Plan>(&bad).is_err());
}
