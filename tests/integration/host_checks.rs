//! What the host can tell before any namespace exists: `moksha check` and
//! `moksha exec` say it with the profile's line and the usual fix, and
//! nothing is created first.

use crate::both;
use crate::common::*;

fn run(who: Who, args: &[&str]) -> Run {
    Run::from(moksha(who, args).output().unwrap())
}

both!(check_finds_a_missing_bind_source, |who: Who| {
    let dir = world_dir();
    let text = sh_profile("s.bind(\"/nonexistent/moksha-source\");", "true");
    let path = write_profile(dir.path(), "p.rhai", &text);
    let r = run(who, &["check", &path]).expect_code(1);
    assert!(
        r.stderr.contains("p.rhai:4:3")
            && r.stderr
                .contains("/nonexistent/moksha-source does not exist on the host")
            && r.stderr.contains("optional: true"),
        "{r:?}"
    );
});

both!(
    a_mount_point_inside_a_read_only_bind_is_found_before_launch,
    |who: Who| {
        let dir = world_dir();
        // /usr is bound read-only by base::minimal; nothing on the host has
        // this path, so its mount point would have to be made in /usr.
        let text = sh_profile("s.tmpfs(\"/usr/moksha-nowhere/cache\");", "true");
        let path = write_profile(dir.path(), "p.rhai", &text);
        for command in ["check", "exec"] {
            let r = run(who, &[command, &path]);
            assert_eq!(r.code, if command == "check" { 1 } else { 125 }, "{r:?}");
            assert!(
                r.stderr.contains("p.rhai:4:3")
                    && r.stderr.contains("inside the read-only bind of /usr")
                    && r.stderr.contains("rw: true"),
                "{command}: {r:?}"
            );
            assert!(!r.stderr.contains("EROFS"), "{command}: {r:?}");
        }
    }
);

both!(
    a_program_missing_on_the_host_is_not_installed_and_nothing_is_made,
    |who: Who| {
        let dir = world_dir();
        let home = owned_dir(dir.path(), "home", who);
        let text = "import \"base\" as base;\nimport \"home\" as home;\nlet s = sandbox(\"t\");\n\
                base::minimal(s);\nhome::persistent(s, \"nowhere-app\");\n\
                s.exec([\"moksha-no-such-program\", \"--help\"]);\n";
        let path = write_profile(dir.path(), "p.rhai", text);
        let r = Run::from(
            moksha(who, &["exec", &path])
                .env("HOME", &home)
                .output()
                .unwrap(),
        )
        .expect_code(125);
        assert!(
            r.stderr.contains("p.rhai:6:3")
                && r.stderr
                    .contains("\"moksha-no-such-program\" is not installed on the host")
                && r.stderr.contains("apt install moksha-no-such-program"),
            "{r:?}"
        );
        assert!(!r.stderr.contains("bind it"), "{r:?}");
        assert!(
            !home.join(".local/share/moksha/homes/nowhere-app").exists(),
            "the persistent home was created before the check"
        );
    }
);

both!(a_busy_forward_port_is_named, |who: Who| {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = world_dir();
    let text = sh_profile(
        &format!("s.network(\"user\");\ns.forward(#{{ host: {port}, sandbox: 80 }});"),
        "true",
    );
    let path = write_profile(dir.path(), "p.rhai", &text);
    for command in ["check", "exec"] {
        let r = run(who, &[command, &path]);
        assert_eq!(r.code, if command == "check" { 1 } else { 125 }, "{r:?}");
        assert!(
            r.stderr.contains(&format!(
                "port {port} (127.0.0.1, tcp) is in use on the host"
            )) && r.stderr.contains("p.rhai:5:3"),
            "{command}: {r:?}"
        );
    }
    drop(listener);
});

both!(every_tmpfs_is_sized_within_half_the_memory, |who: Who| {
    // tmpfs pages belong to no process: without a size each mount could take
    // half the machine's memory, out of the OOM killer's reach.
    let memory = {
        let info = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kb: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kb * 1024
    };
    let r = sh(
        who,
        "",
        "df -k --output=size,target /tmp /run /dev /dev/shm | tail -n +2",
    )
    .expect_code(0);
    let mut total = 0;
    for line in r.stdout.lines() {
        let kb: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
        assert!(kb * 1024 < memory / 2, "{line}: {r:?}");
        total += kb * 1024;
    }
    assert!(
        total <= memory / 2 + (64 << 20),
        "{} in all: {r:?}",
        total >> 20
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.ends_with(" /dev") && l.trim().starts_with("1024")),
        "{r:?}"
    );
    // More than the budget, asked for: refused at its line, before launch.
    let half_gib = ((memory / 2) >> 30) + 1;
    let text = sh_profile(
        &format!("s.tmpfs(\"/big\", #{{ size: \"{half_gib}G\" }});"),
        "true",
    );
    let dir = world_dir();
    let path = write_profile(dir.path(), "p.rhai", &text);
    let r = Run::from(moksha(who, &["exec", &path]).output().unwrap()).expect_code(125);
    assert!(
        r.stderr.contains("p.rhai:4:3") && r.stderr.contains("half its memory"),
        "{r:?}"
    );
});

#[test]
fn a_profile_that_is_a_device_or_a_fifo_is_refused_not_read() {
    let dir = world_dir();
    let fifo = dir.path().join("fifo.rhai");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    for path in ["/dev/zero", fifo.to_str().unwrap()] {
        let child = moksha(Who::Root, &["plan", path])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (out, ended) = wait_within(child, std::time::Duration::from_secs(10));
        assert!(ended, "moksha plan {path} did not end");
        let r = Run::from(out).expect_code(1);
        assert!(r.stderr.contains("is not a regular file"), "{path}: {r:?}");
    }
}

// A kernel as old as RHEL 8's 4.18 (no openat2, pidfds, clone3, close_range
// or new mount API): the sandbox runs, its paths walked in user space. The
// old-kernel pass of scripts/test runs the escape tests that way.
both!(a_kernel_as_old_as_rhel_8s_runs_the_sandbox, |who: Who| {
    let probe = compiled_probe("old_kernel").join("old_kernel");
    let dir = world_dir();
    let path = write_profile(
        dir.path(),
        "p.rhai",
        &sh_profile("", "test -d /usr/bin && echo inside"),
    );
    let mut probed = as_user(who, &probe);
    probed
        .arg("--4.18")
        .arg(moksha_bin())
        .args(["exec", &path])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .stdin(std::process::Stdio::null());
    let r = Run::from(probed.output().unwrap()).expect_code(0);
    assert_eq!(r.stdout.trim(), "inside", "{r:?}");
    // Trace mode needs calls such a kernel lacks: refused before launch,
    // in one line that says what to do.
    let mut traced = as_user(who, &probe);
    traced
        .arg("--4.18")
        .arg(moksha_bin())
        .args(["exec", "--trace", &path])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .stdin(std::process::Stdio::null());
    let r = Run::from(traced.output().unwrap()).expect_code(125);
    assert_eq!(r.stdout, "", "{r:?}");
    assert_eq!(
        r.stderr.trim(),
        "moksha: trace mode needs seccomp user notification and pidfd_getfd (Linux 5.6 or \
         newer) with the structures moksha knows; run without --trace",
        "{r:?}"
    );
});

both!(
    a_filter_too_big_to_install_is_refused_before_anything_is_made,
    |who: Who| {
        let dir = world_dir();
        let home = owned_dir(dir.path(), "home", who);
        let text = "import \"base\" as base;\nimport \"home\" as home;\nlet s = sandbox(\"t\");\n\
                base::minimal(s);\nhome::persistent(s, \"big-filter-app\");\n\
                for i in 0..1500 { s.seccomp_deny(\"ioctl\", #{ arg: 1, eq: 0x5401 + i }); }\n\
                s.exec([\"/bin/true\"]);\n";
        let path = write_profile(dir.path(), "p.rhai", text);
        let count = |command: &str| -> u64 {
            let r = Run::from(
                moksha(who, &[command, &path])
                    .env("HOME", &home)
                    .output()
                    .unwrap(),
            )
            .expect_code(1);
            let (before, _) = r
                .stderr
                .split_once(" instructions; the kernel takes at most 4096")
                .unwrap_or_else(|| panic!("{command}: {r:?}"));
            assert!(r.stderr.contains("p.rhai:3:9"), "{command}: {r:?}");
            before.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let planned = count("plan");
        assert_eq!(count("check"), planned);
        // A launch by root checks the filter it would install: the
        // profile's with set-id file modes refused, which is longer.
        let launched = count("exec");
        if who == Who::Root {
            assert!(launched > planned, "{launched} against {planned}");
        } else {
            assert_eq!(launched, planned);
        }
        assert!(
            !home
                .join(".local/share/moksha/homes/big-filter-app")
                .exists(),
            "the persistent home was created before the check"
        );
        // The most rules whose filter `plan` takes: root's launch adds
        // the set-id refusal to it, which no longer fits, and says so at
        // the profile's line like the profile's own errors, before the
        // launch (it was a setup error without a position, exit 125).
        let with = |n: u32| {
            let text = format!(
                "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
                 for i in 0..{n} {{ s.seccomp_deny(\"ioctl\", #{{ arg: 1, eq: 0x5401 + i }}); }}\n\
                 s.exec([\"/bin/true\"]);\n"
            );
            write_profile(dir.path(), "edge.rhai", &text)
        };
        let fits = |n: u32| run(who, &["plan", &with(n)]).code == 0;
        let (mut lo, mut hi) = (1, 1500);
        assert!(fits(lo) && !fits(hi));
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let r = run(who, &["exec", &with(lo)]);
        if who == Who::Root {
            let r = r.expect_code(1);
            assert!(
                r.stderr.contains("edge.rhai:2:9") && r.stderr.contains("at most 4096"),
                "{r:?}"
            );
        } else {
            r.expect_code(0);
        }
    }
);
