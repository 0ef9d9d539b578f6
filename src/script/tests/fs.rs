//! The filesystem primitives.

use super::*;

#[test]
fn bind_path() {
    assert_eq!(
        step("bind(\"/usr\")"),
        bind("/usr", "/usr", false, false, false, false)
    );
}

#[test]
fn bind_path_options() {
    assert_eq!(
        step("bind(\"/dev/dri\", #{ rw: true, dev: true, optional: true })"),
        bind("/dev/dri", "/dev/dri", true, true, true, false)
    );
}

#[test]
fn bind_source_target() {
    assert_eq!(
        step("bind(\"/srv/data\", \"/data\")"),
        bind("/srv/data", "/data", false, false, false, false)
    );
}

#[test]
fn bind_source_target_options() {
    assert_eq!(
        step("bind(\"/a\", \"/b\", #{ rw: true, replace: true })"),
        bind("/a", "/b", true, false, false, true)
    );
    assert_eq!(
        step("bind(\"/a\", \"/b\", #{ rw: false, dev: false, optional: false, replace: false })"),
        bind("/a", "/b", false, false, false, false)
    );
}

#[test]
fn bind_replace_is_accepted_after_an_earlier_step() {
    let plan = plan_of("s.tmpfs(\"/x\");\ns.bind(\"/srv\", \"/x\", #{ replace: true });");
    assert_eq!(plan.fs.len(), 2);
    assert_eq!(plan.fs[1].at, at(3, 3));
}

fn tmpfs(target: &str, size: Option<u64>, mode: u32, replace: bool) -> FsOp {
    FsOp::Tmpfs {
        target: target.into(),
        size,
        mode,
        replace,
    }
}

#[test]
fn tmpfs_forms() {
    assert_eq!(step("tmpfs(\"/tmp\")"), tmpfs("/tmp", None, 0o755, false));
    assert_eq!(
        step("tmpfs(\"/tmp\", #{ size: \"64M\" })"),
        tmpfs("/tmp", Some(64 << 20), 0o755, false)
    );
    assert_eq!(
        step("tmpfs(\"/tmp\", #{ size: 4096, mode: 0o1777 })"),
        tmpfs("/tmp", Some(4096), 0o1777, false)
    );
    assert_eq!(
        step("tmpfs(\"/t\", #{ size: \"16k\", replace: true })"),
        tmpfs("/t", Some(16 << 10), 0o755, true)
    );
    assert_eq!(
        step("tmpfs(\"/t\", #{ size: \" 2G \" })"),
        tmpfs("/t", Some(2 << 30), 0o755, false)
    );
    assert_eq!(
        step("tmpfs(\"/t\", #{ size: \"100\" })"),
        tmpfs("/t", Some(100), 0o755, false)
    );
}

#[test]
fn tmpfs_bad_sizes_and_modes() {
    for bad in [
        "\"64X\"",
        "\"\"",
        "\"M\"",
        "0",
        "-1",
        "\"0M\"",
        "\"-5M\"",
        "\"99999999999G\"",
    ] {
        fails_at(
            &format!("s.tmpfs(\"/t\", #{{ size: {bad} }});"),
            3,
            "size must be bytes or a string like \"64M\"",
        );
    }
    fails_at(
        "s.tmpfs(\"/t\", #{ mode: 0o10000 });",
        3,
        "mode 0o10000 is out of range",
    );
    fails_at("s.tmpfs(\"/t\", #{ mode: -1 });", 3, "out of range");
    fails_at("s.tmpfs(\"/t\", #{ size: true });", 3, "tmpfs option size");
}

#[test]
fn mount_types() {
    assert_eq!(
        step("mount(\"tmpfs\", \"/tmp\")"),
        tmpfs("/tmp", None, 0o755, false)
    );
    assert_eq!(
        step("mount(\"tmpfs\", \"/tmp\", #{ size: \"64M\", mode: 0o700 })"),
        tmpfs("/tmp", Some(64 << 20), 0o700, false)
    );
    assert_eq!(
        step("mount(\"proc\", \"/proc\")"),
        FsOp::Proc {
            target: "/proc".into(),
            replace: false
        }
    );
    assert_eq!(
        step("mount(\"mqueue\", \"/dev/mqueue\", #{ replace: true })"),
        FsOp::Mqueue {
            target: "/dev/mqueue".into(),
            replace: true
        }
    );
    fails_at(
        "s.mount(\"ext4\", \"/mnt\");",
        3,
        "filesystem type \"ext4\" is not supported",
    );
    // proc takes no size: the option check names the kind.
    fails_at(
        "s.mount(\"proc\", \"/proc\", #{ size: 1 });",
        3,
        "proc option size is unknown (options of proc: replace)",
    );
}

#[test]
fn proc_dev_mqueue() {
    assert_eq!(
        step("proc()"),
        FsOp::Proc {
            target: "/proc".into(),
            replace: false
        }
    );
    assert_eq!(
        step("proc(\"/p\")"),
        FsOp::Proc {
            target: "/p".into(),
            replace: false
        }
    );
    assert_eq!(
        step("dev()"),
        FsOp::Dev {
            target: "/dev".into(),
            replace: false
        }
    );
    assert_eq!(
        step("dev(\"/d\")"),
        FsOp::Dev {
            target: "/d".into(),
            replace: false
        }
    );
    assert_eq!(
        step("mqueue()"),
        FsOp::Mqueue {
            target: "/dev/mqueue".into(),
            replace: false
        }
    );
}

#[test]
fn mkdir_with_and_without_mode() {
    assert_eq!(
        step("mkdir(\"/a/b\")"),
        FsOp::Mkdir {
            target: "/a/b".into(),
            mode: 0o755
        }
    );
    assert_eq!(
        step("mkdir(\"/a\", 0o700)"),
        FsOp::Mkdir {
            target: "/a".into(),
            mode: 0o700
        }
    );
    fails_at("s.mkdir(\"/a\", 0o77777);", 3, "out of range");
}

#[test]
fn symlink_forms() {
    assert_eq!(
        step("symlink(\"usr/bin\", \"/bin\")"),
        FsOp::Symlink {
            points_to: "usr/bin".into(),
            target: "/bin".into(),
            replace: false
        }
    );
    assert_eq!(
        step("symlink(\"/proc/self/fd\", \"/dev/fd\", #{ replace: true })"),
        FsOp::Symlink {
            points_to: "/proc/self/fd".into(),
            target: "/dev/fd".into(),
            replace: true
        }
    );
    fails_at(
        "s.symlink(\"x\", \"rel\");",
        3,
        "symlink path \"rel\" is relative",
    );
}

#[test]
fn write_file_forms() {
    assert_eq!(
        step("write_file(\"/etc/hostname\", \"box\\n\")"),
        FsOp::WriteFile {
            target: "/etc/hostname".into(),
            content: "box\n".into(),
            mode: 0o644,
            replace: false
        }
    );
    assert_eq!(
        step("write_file(\"/run/x\", \"\", #{ mode: 0o600, replace: true })"),
        FsOp::WriteFile {
            target: "/run/x".into(),
            content: String::new(),
            mode: 0o600,
            replace: true
        }
    );
    fails_at(
        "s.write_file(\"/x\", \"\", #{ mod: 0o600 });",
        3,
        "write_file option mod is unknown; did you mean \"mode\"?",
    );
}

#[test]
fn remount_ro_and_chmod() {
    assert_eq!(
        step("remount_ro(\"/\")"),
        FsOp::RemountRo { target: "/".into() }
    );
    assert_eq!(
        step("chmod(\"/tmp\", 0o1777)"),
        FsOp::Chmod {
            target: "/tmp".into(),
            mode: 0o1777
        }
    );
}

#[test]
fn pivot_root() {
    let plan = plan_of("s.pivot_root(\"/srv/rootfs\");");
    assert_eq!(
        plan.root,
        Some(Located {
            value: "/srv/rootfs".into(),
            at: at(2, 3)
        })
    );
    let (message, pos, _) = failure("s.pivot_root(\"/a\");\ns.pivot_root(\"/b\");");
    assert!(
        message.contains("pivot_root was already called at p.rhai:2:3"),
        "{message}"
    );
    assert_eq!(pos, Some(at(3, 3)));
}

#[test]
fn several_steps_keep_their_order_and_lines() {
    let plan = plan_of("s.tmpfs(\"/tmp\");\n  s.bind(\"/usr\");\ns.proc();");
    let lines: Vec<(usize, usize)> = plan.fs.iter().map(|s| (s.at.line, s.at.col)).collect();
    assert_eq!(lines, [(2, 3), (3, 5), (4, 3)]);
    assert_eq!(plan.fs[1].op.target(), "/usr");
}
