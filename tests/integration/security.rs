//! Security policy, for real: small C probes (compiled here with `cc`) make
//! the system calls the default seccomp policy refuses, and the same probes
//! run under a profile that allows them, proving each check can fail.
//! Landlock, kept capabilities, rlimits, the timeout and bad input too.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// A directory every user can read holding the compiled `probe`.
fn probe_dir() -> std::path::PathBuf {
    compiled_probe("probe")
}

/// Rhai lines binding the probe at /probe/probe.
fn with_probe() -> String {
    format!(
        "s.bind({}, \"/probe\");\n",
        rhai_string(&probe_dir().to_string_lossy())
    )
}

/// Runs `script` (with the probe at /probe/probe) under the minimal
/// sandbox plus `extra`, and returns each probe's result by name.
fn probes(who: Who, extra: &str, script: &str) -> (Run, Vec<(String, String)>) {
    let r = sh(who, &format!("{}{extra}", with_probe()), script);
    let results = r
        .stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, rest)| (n.to_string(), rest.to_string()))
        .collect();
    (r, results)
}

const PROBES: &str = "perf_event_open bpf keyctl add_key userfaultfd io_uring_setup \
    open_by_handle_at mount fsopen move_mount unshare_user clone3 socket_packet socket_unix \
    personality i386 x32";

/// Every probe, and ptrace on a sibling process (a `sleep` the shell started).
fn all_probes_script() -> String {
    format!(
        "sleep 100 & for p in {PROBES}; do /probe/probe $p; done; /probe/probe ptrace $!; kill $!"
    )
}

fn result<'a>(results: &'a [(String, String)], name: &str, r: &Run) -> &'a str {
    results
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| {
            panic!(
                "no result for {name}; stdout:\n{}\nstderr:\n{}",
                r.stdout, r.stderr
            )
        })
}

both!(default_policy_refuses_each_family, |who| {
    let (r, res) = probes(who, "", &all_probes_script());
    let r = r.expect_code(0);
    let expect = [
        ("ptrace", "errno=1 (EPERM)"),
        ("perf_event_open", "errno=1 (EPERM)"),
        ("bpf", "errno=1 (EPERM)"),
        ("keyctl", "errno=1 (EPERM)"),
        ("add_key", "errno=1 (EPERM)"),
        ("userfaultfd", "errno=1 (EPERM)"),
        ("io_uring_setup", "errno=1 (EPERM)"),
        ("open_by_handle_at", "errno=1 (EPERM)"),
        ("mount", "errno=1 (EPERM)"),
        ("fsopen", "errno=38 (ENOSYS)"),
        ("move_mount", "errno=38 (ENOSYS)"),
        ("unshare_user", "errno=1 (EPERM)"),
        ("clone3", "errno=38 (ENOSYS)"),
        ("socket_packet", "errno=97 (EAFNOSUPPORT)"),
        ("socket_unix", "ok"),
        ("personality", "errno=1 (EPERM)"),
        ("i386", "errno=1 (EPERM)"),
        ("x32", "errno=1 (EPERM)"),
    ];
    for (name, want) in expect {
        if (name == "i386" || name == "x32") && !cfg!(target_arch = "x86_64") {
            continue;
        }
        assert_eq!(result(&res, name, &r), want, "{name}");
    }
});

both!(allowed_calls_reach_the_kernel, |who| {
    let extra = "s.seccomp(#{ nested_namespaces: true, socket_families: \"any\", \
        personality: \"any\", abi: [\"i386\", \"x32\"], \
        allow: [\"@debug\", \"bpf\", \"@keyring\", \"userfaultfd\", \"@io-uring\", \
        \"open_by_handle_at\", \"@mount\", \"clone3\"] });\n";
    let (r, res) = probes(who, extra, &all_probes_script());
    let r = r.expect_code(0);
    // What the kernel itself answers (bad pointers, missing paths, missing
    // privileges): anything but the filter's errno shows the call ran.
    let expect = [
        ("ptrace", "ok"),
        ("perf_event_open", "errno=14 (EFAULT)"),
        ("bpf", "errno=14 (EFAULT)"),
        ("keyctl", "ok"),
        ("add_key", "errno=14 (EFAULT)"),
        ("userfaultfd", "ok"),
        ("io_uring_setup", "errno=14 (EFAULT)"),
        ("mount", "errno=2 (ENOENT)"),
        ("unshare_user", "ok"),
        ("clone3", "errno=22 (EINVAL)"),
        ("personality", "ok"),
        ("i386", "ok"),
    ];
    for (name, want) in expect {
        if name == "i386" && !cfg!(target_arch = "x86_64") {
            continue;
        }
        assert_eq!(result(&res, name, &r), want, "{name}");
    }
    for (name, filtered) in [
        ("open_by_handle_at", "errno=1 (EPERM)"),
        ("fsopen", "errno=38 (ENOSYS)"),
        ("move_mount", "errno=38 (ENOSYS)"),
        ("socket_packet", "errno=97 (EAFNOSUPPORT)"),
        ("x32", "errno=1 (EPERM)"),
    ] {
        assert_ne!(
            result(&res, name, &r),
            filtered,
            "{name} was still filtered"
        );
    }
});

/// The i386 entry points' results, in order.
#[cfg(target_arch = "x86_64")]
fn i386_entry_points(who: Who, extra: &str) -> Vec<(String, String)> {
    let script = "for a in 'i386_socketcall 40' 'i386_socket 40' 'i386_socket 1' \
        i386_fcntl64; do /probe/probe $a; done";
    let (r, res) = probes(who, extra, script);
    let r = r.expect_code(0);
    assert_eq!(res.len(), 4, "{}{}", r.stdout, r.stderr);
    res
}

// With the i386 ABI allowed, a call the policy tests by argument is tested
// however the program enters it: socketcall (its arguments in memory)
// refuses the socket call with ENOSYS, the direct i386 socket call gets the
// family filter, and fcntl64 the profile's rule for fcntl.
#[cfg(target_arch = "x86_64")]
both!(argument_filters_hold_on_i386_entry_points, |who| {
    let res = i386_entry_points(
        who,
        "s.seccomp(#{ abi: [\"i386\"] });\n\
         s.seccomp_deny(\"fcntl\", #{ arg: 1, eq: 1031, errno: \"EIO\" });\n",
    );
    let want = [
        ("i386_socketcall", "errno=38 (ENOSYS)"),
        ("i386_socket", "errno=97 (EAFNOSUPPORT)"),
        ("i386_socket", "ok"),
        ("i386_fcntl64", "errno=5 (EIO)"),
    ];
    let got: Vec<(&str, &str)> = res.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(got, want);

    // Without the filters the same calls reach the kernel (vsock is a
    // family it creates unprivileged): the checks can fail.
    let res = i386_entry_points(
        who,
        "s.seccomp(#{ abi: [\"i386\"], socket_families: \"any\" });\n",
    );
    let got: Vec<(&str, &str)> = res.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(got[0], ("i386_socketcall", "ok"));
    assert_eq!(got[1], ("i386_socket", "ok"));
    assert_eq!(got[3], ("i386_fcntl64", "errno=9 (EBADF)"));
});

both!(profile_rules_choose_the_action, |who| {
    let extra = "s.seccomp_deny(\"ioctl\", #{ arg: 1, eq: 0x5401, errno: \"EIO\" });\n\
        s.seccomp_deny(\"uname\", #{ action: \"kill\" });\n";
    let r = sh(who, extra, "stty -F /dev/null 2>&1; uname; echo after $?");
    let r = r.expect_code(0);
    // TCGETS (0x5401) answers EIO, as configured, instead of the kernel's
    // ENOTTY; uname is killed (SIGSYS, 31).
    assert!(r.stdout.contains("Input/output error"), "{}", r.stdout);
    assert!(r.stdout.contains("after 159"), "{}", r.stdout);
});

both!(allowlist_mode_refuses_the_rest, |who| {
    // A shell needs few calls; anything else gets EPERM.
    let extra = "s.seccomp(#{ base: \"empty\", mode: \"allowlist\" });\n\
        s.seccomp_allow([\"execve\", \"brk\", \"mmap\", \"munmap\", \"mprotect\", \"arch_prctl\", \
        \"set_tid_address\", \"set_robust_list\", \"rseq\", \"prlimit64\", \"openat\", \"read\", \
        \"close\", \"newfstatat\", \"fstat\", \"pread64\", \"access\", \"getrandom\", \"write\", \
        \"exit_group\", \"getpid\", \"getppid\", \"getuid\", \"geteuid\", \"getgid\", \"getegid\", \
        \"rt_sigaction\", \"rt_sigprocmask\", \"rt_sigreturn\", \"fcntl\", \"dup2\", \"ioctl\", \
        \"uname\", \"getcwd\", \"chdir\", \"stat\", \"lseek\", \"faccessat\", \"faccessat2\", \
        \"sysinfo\", \"getpgrp\", \"readlink\", \"statx\", \"wait4\", \"futex\", \"clone\", \"vfork\", \"statfs\", \"exit\"]);\n";
    let r = sh(who, extra, "echo started; mkdir /tmp/x || echo refused");
    let r = r.expect_code(0);
    assert!(r.stdout.contains("started"), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("refused"), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
});

/// `program` run as `who`, for a shell line.
fn as_who(who: Who, program: &str) -> String {
    match who {
        Who::Root => program.to_string(),
        other => {
            let id = other.uid();
            format!("setpriv --reuid={id} --regid={id} --clear-groups -- {program}")
        }
    }
}

/// The command that runs moksha as `who`, for a shell line.
fn moksha_line(who: Who, args: &str) -> String {
    as_who(who, &format!("{} {args}", moksha_bin().display()))
}

fn pty_shell(line: &str) -> Pty {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", line])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("TERM", "dumb")
        .current_dir("/");
    Pty::spawn(cmd)
}

/// Runs `probe tiocsti` (through `run`) on a terminal, then reads a line from
/// the terminal: a line pushed by TIOCSTI would be read there.
fn tiocsti_on_a_terminal(run: &str) -> String {
    let line = format!("{run}; echo reading; read -r line; echo \"after:[$line]END\"");
    let mut t = pty_shell(&line);
    t.expect("reading", 30);
    t.send("clean\n");
    let seen = t.expect("]END", 10);
    let _ = t.wait();
    seen
}

both!(tiocsti_cannot_type_into_the_terminal, |who| {
    let dir = world_dir();
    let profile = write_profile(
        dir.path(),
        "tty.rhai",
        &sh_profile(
            &format!("{}s.new_session(false);\n", with_probe()),
            "/probe/probe tiocsti",
        ),
    );
    let seen = tiocsti_on_a_terminal(&moksha_line(who, &format!("exec {profile}")));
    assert!(seen.contains("tiocsti errno=1 (EPERM)"), "{seen}");
    assert!(
        !seen.contains("INJECTED"),
        "characters were injected:\n{seen}"
    );
    assert!(seen.contains("after:[clean"), "{seen}");

    // The same probe outside the sandbox does inject (where the kernel
    // still allows TIOCSTI at all): the check can fail.
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti")
        .map(|s| s.trim() == "1")
        .unwrap_or(true);
    if legacy {
        let run = as_who(
            who,
            &format!("{} tiocsti", probe_dir().join("probe").display()),
        );
        let seen = tiocsti_on_a_terminal(&run);
        assert!(seen.contains("tiocsti ok"), "{seen}");
        assert!(seen.contains("after:[echo INJECTED"), "{seen}");
    }
});

both!(
    the_line_discipline_of_the_terminal_cannot_be_changed,
    |who| {
        let dir = world_dir();
        let profile = write_profile(
            dir.path(),
            "ldisc.rhai",
            &sh_profile(
                &format!("{}s.new_session(false);\n", with_probe()),
                "/probe/probe tiocsetd",
            ),
        );
        let mut t = pty_shell(&moksha_line(who, &format!("exec {profile}")));
        let seen = t.expect("tiocsetd", 30);
        let _ = t.rest(10);
        assert!(t.seen.contains("tiocsetd errno=1 (EPERM)"), "{seen}");
        // The same call outside the sandbox goes through: the check can fail.
        let run = as_who(
            who,
            &format!("{} tiocsetd", probe_dir().join("probe").display()),
        );
        let mut t = pty_shell(&run);
        t.expect("tiocsetd", 30);
        let seen = t.rest(10);
        assert!(seen.contains("tiocsetd ok"), "{seen}");
    }
);

both!(landlock_hides_what_the_rules_leave_out, |who| {
    let data = world_dir();
    std::fs::create_dir(data.path().join("public")).unwrap();
    std::fs::write(data.path().join("public/a"), "public\n").unwrap();
    std::fs::write(data.path().join("secret"), "secret\n").unwrap();
    for p in ["public", "public/a", "secret"] {
        let mode = if p == "public" { 0o755 } else { 0o644 };
        std::fs::set_permissions(data.path().join(p), std::fs::Permissions::from_mode(mode))
            .unwrap();
    }
    let extra = format!(
        "s.bind({}, \"/data\");\n\
         s.landlock(#{{ derive: false }});\n\
         s.landlock_allow(\"/\", [\"list\"]);\n\
         s.landlock_allow(\"/usr\", [\"read\", \"execute\"]);\n\
         s.landlock_allow(\"/etc\", [\"read\"]);\n\
         s.landlock_allow(\"/dev\", [\"read\", \"write\"]);\n\
         s.landlock_allow(\"/proc\", [\"read\"]);\n\
         s.landlock_allow(\"/data/public\", [\"read\"]);\n",
        rhai_string(&data.path().to_string_lossy())
    );
    let r = sh(
        who,
        &extra,
        "cat /data/public/a; ls /data; cat /data/secret || echo refused",
    )
    .expect_code(0);
    assert!(r.stdout.contains("public\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("secret\n"),
        "the directory lists: {}",
        r.stdout
    );
    assert!(!r.stdout.contains("secret\nsecret"), "{}", r.stdout);
    assert!(r.stdout.contains("refused"), "{}", r.stdout);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);

    // Without landlock, the bind exposes it: the check can fail.
    let r = sh(
        who,
        &format!(
            "s.bind({}, \"/data\");\ns.landlock(#{{ enabled: false }});\n",
            rhai_string(&data.path().to_string_lossy())
        ),
        "cat /data/secret",
    )
    .expect_code(0);
    assert_eq!(r.stdout, "secret\n");
});

both!(derived_landlock_rules_keep_tmp_from_executing, |who| {
    // /tmp is a tmpfs: read and write, but not execute.
    let r = sh(
        who,
        "",
        "cp /bin/true /tmp/t && chmod +x /tmp/t && { /tmp/t && echo ran || echo refused; }",
    )
    .expect_code(0);
    assert!(r.stdout.contains("refused"), "{}{}", r.stdout, r.stderr);
    let r = sh(
        who,
        "s.landlock(#{ enabled: false });\n",
        "cp /bin/true /tmp/t && chmod +x /tmp/t && /tmp/t && echo ran",
    )
    .expect_code(0);
    assert!(r.stdout.contains("ran"), "{}{}", r.stdout, r.stderr);
});

both!(landlock_limits_tcp_connect, |who| {
    // The private network's loopback is down: a connect the rules allow
    // fails with a network error, one they refuse with EACCES first.
    let (r, res) = probes(
        who,
        "s.landlock(#{ connect_tcp: [1] });\n",
        "/probe/probe connect 8080; /probe/probe connect 1",
    );
    let r = r.expect_code(0);
    let lines: Vec<&str> = res
        .iter()
        .filter(|(n, _)| n == "connect")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(lines.len(), 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(lines[0], "errno=13 (EACCES)");
    assert_ne!(lines[1], "errno=13 (EACCES)");
});

#[test]
fn plan_names_the_landlock_abi() {
    let dir = world_dir();
    let path = write_profile(dir.path(), "p.rhai", &sh_profile("", "true"));
    let r = Run::from(moksha(Who::Root, &["plan", &path]).output().unwrap()).expect_code(0);
    // SAFETY: the VERSION query only reads its flag.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if abi > 0 {
        assert!(
            r.stdout.contains(&format!("landlock: ABI {abi} used")),
            "{}",
            r.stdout
        );
    } else {
        assert!(
            r.stdout.contains("landlock: this kernel has none"),
            "{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("seccomp: deny-list"), "{}", r.stdout);
    assert!(r.stdout.contains("i386 and x32 refused"), "{}", r.stdout);
}

both!(required_landlock_abi_fails_closed, |who| {
    let r = sh(who, "s.landlock(#{ min_abi: 60 });\n", "echo ran").expect_code(125);
    assert!(!r.stdout.contains("ran"));
    assert!(
        r.stderr.contains("test.rhai:4:") && r.stderr.contains("requires landlock ABI 60"),
        "{}",
        r.stderr
    );
});

both!(kept_net_bind_service_binds_port_80, |who| {
    // uid 1000 inside, so only the capability can allow port 80.
    let ids = "s.uid(1000);\ns.gid(1000);\n";
    let (r, res) = probes(
        who,
        &format!("{ids}s.keep_caps([\"CAP_NET_BIND_SERVICE\"]);\n"),
        "grep CapEff /proc/self/status; /probe/probe bind80",
    );
    let r = r.expect_code(0);
    assert_eq!(result(&res, "bind80", &r), "ok");
    assert!(
        r.stdout.contains("CapEff:\t0000000000000400"),
        "{}",
        r.stdout
    );
    let (r, res) = probes(who, ids, "/probe/probe bind80");
    assert_eq!(result(&res, "bind80", &r), "errno=13 (EACCES)");
});

both!(rlimit_nofile_limits_open_files, |who| {
    let (r, res) = probes(
        who,
        "s.rlimit(\"nofile\", 16);\ns.rlimits(#{ core: 0, fsize: \"1M\" });\n",
        "ulimit -n; ulimit -f; /probe/probe nofile",
    );
    let r = r.expect_code(0);
    assert!(r.stdout.starts_with("16\n2048\n"), "{}", r.stdout);
    assert_eq!(result(&res, "nofile", &r), "opened=13 errno=EMFILE");
});

/// The "Max processes" line of /proc/self/limits inside.
fn max_processes(r: &Run) -> String {
    let line = r.stdout.lines().find(|l| l.starts_with("Max processes"));
    let line = line.unwrap_or_else(|| panic!("no limits line:\n{}\n{}", r.stdout, r.stderr));
    line.split_whitespace()
        .skip(2)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

both!(a_fork_bomb_stops_at_the_default_process_bound, |who| {
    let script = "grep 'Max processes' /proc/self/limits; /probe/probe forks 6000";
    let (r, res) = probes(who, "", script);
    let r = r.expect_code(0);
    assert_eq!(max_processes(&r), "4096 4096", "{}", r.stderr);
    let forks = result(&res, "forks", &r);
    // (As root too: the program is nobody; Linux exempts only the host's
    // root from RLIMIT_NPROC.)
    let started: u32 = forks["started=".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..4096).contains(&started), "{forks}");
    assert!(forks.ends_with("errno=EAGAIN"), "{forks}");
    // A profile's own limit replaces the default.
    let (r, _) = probes(who, "s.rlimit(\"nproc\", 5000);\n", script);
    assert_eq!(max_processes(&r.expect_code(0)), "5000 5000");
});

#[test]
fn the_process_bound_counts_one_sandbox_alone() {
    // Two sandboxes of the same user with room for 40 processes each: 30
    // in one do not take from the other (Linux counts RLIMIT_NPROC per
    // user namespace), while 60 in one stop at 40.
    let who = Who::Nobody;
    let dir = world_dir();
    let text = format!(
        "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n{}\
         s.rlimit(\"nproc\", 40);\ns.exec([\"/probe/probe\", \"forks\"] + ARGS);\n",
        with_probe()
    );
    let profile = write_profile(dir.path(), "forks.rhai", &text);
    let mut first = moksha(who, &["exec", &profile, "--", "30", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(first.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "forks started=30 errno=0\n");
    let second = Run::from(
        moksha(who, &["exec", &profile, "--", "30"])
            .output()
            .unwrap(),
    );
    assert_eq!(second.expect_code(0).stdout, "forks started=30 errno=0\n");
    let bomb = Run::from(
        moksha(who, &["exec", &profile, "--", "60"])
            .output()
            .unwrap(),
    );
    let out = bomb.expect_code(0).stdout;
    assert!(
        out.ends_with("errno=EAGAIN\n") && !out.contains("=60 "),
        "{out}"
    );
    let _ = first.kill();
    let _ = first.wait();
}

both!(timeout_ends_the_sandbox, |who| {
    let t = Instant::now();
    let r = sh(
        who,
        "s.timeout(#{ after: \"1s\", grace: \"2s\" });\n",
        "sleep 1000",
    )
    .expect_code(124);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(
        r.stderr
            .contains("moksha: timeout: the sandbox ran for 1s; sending SIGTERM"),
        "{}",
        r.stderr
    );
    // A program that ignores SIGTERM is killed after the grace period.
    let r = sh(
        who,
        "s.timeout(#{ after: \"500ms\", grace: \"1s\" });\n",
        "trap '' TERM; sleep 1000; echo survived",
    )
    .expect_code(124);
    assert!(r.stderr.contains("sending SIGKILL"), "{}", r.stderr);
    assert!(!r.stdout.contains("survived"));
});

/// `moksha plan` on a profile whose line 3 is `line`; returns stderr.
fn bad(line: &str) -> String {
    let dir = world_dir();
    let text = format!("let s = sandbox(\"t\");\ns.exec([\"/bin/true\"]);\n{line}\n");
    let path = write_profile(dir.path(), "bad.rhai", &text);
    let r = Run::from(moksha(Who::Root, &["plan", &path]).output().unwrap()).expect_code(1);
    r.stderr
}

#[test]
fn bad_security_input_is_an_error_at_its_line() {
    let cases = [
        (
            "s.seccomp_deny([\"ptrac\"]);",
            "unknown syscall \"ptrac\"; did you mean \"ptrace\"?",
        ),
        (
            "s.seccomp_allow([\"@mnt\"]);",
            "unknown syscall group \"@mnt\"",
        ),
        (
            "s.keep_caps([\"CAP_NET_BIND\"]);",
            "unknown capability \"CAP_NET_BIND\"",
        ),
        (
            "s.seccomp(#{ mode: \"allowlist\", allow: [\"read\"] });",
            "the seccomp allow-list does not allow execve",
        ),
        (
            "s.seccomp(#{ allow: [\"ptrace\"], deny: [\"@debug\"] });",
            "ptrace is both allowed and denied in this call",
        ),
        (
            "s.seccomp_allow(\"clone3\");",
            "clone3 cannot be allowed while nested namespaces are forbidden",
        ),
        ("s.seccomp_deny(\"execve\");", "execve cannot be denied"),
        (
            "s.seccomp(#{ modes: \"allowlist\" });",
            "seccomp option modes is unknown; did you mean \"mode\"?",
        ),
        (
            "s.rlimit(\"files\", 10);",
            "unknown resource limit \"files\"",
        ),
        ("s.timeout(\"10 parsecs\");", "has an unknown unit"),
        (
            "s.landlock_allow(\"/x\", [\"fly\"]);",
            "unknown landlock access \"fly\"",
        ),
    ];
    for (line, want) in cases {
        let err = bad(line);
        assert!(err.contains("bad.rhai:3:"), "{line}: no position in\n{err}");
        assert!(err.contains(want), "{line}: expected {want:?} in\n{err}");
    }
}

#[test]
fn a_root_launch_runs_the_program_as_nobody() {
    // Root-owned files in a writable bind stay root's: the program is the
    // host's nobody, without root's groups; what setup made is its own.
    let dir = world_dir();
    let rw = owned_dir(dir.path(), "rw", Who::Root);
    std::fs::write(rw.join("roots"), "root's\n").unwrap();
    std::fs::set_permissions(rw.join("roots"), std::fs::Permissions::from_mode(0o664)).unwrap();
    let extra = format!(
        "s.bind({}, \"/rw\", #{{ rw: true }});\ns.tmpfs(\"/t\");\ns.mkdir(\"/t/made\");\n",
        rhai_string(&rw.to_string_lossy())
    );
    let script = "id -u; id -g; grep Groups /proc/self/status; \
                  echo x >> /rw/roots && echo WROTE-ROOTS; touch /rw/new && echo MADE-NEW; \
                  touch /tmp/t /t/made/f && echo SETUP-FILES-OURS; stat -c %u /rw/roots";
    let r = sh(Who::Root, &extra, script).expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[..2], ["65534", "65534"], "{r:?}");
    assert_eq!(lines[2].trim(), "Groups:", "no supplementary group: {r:?}");
    assert!(
        !r.stdout.contains("WROTE") && !r.stdout.contains("MADE-NEW"),
        "{r:?}"
    );
    assert!(r.stdout.contains("SETUP-FILES-OURS"), "{r:?}");
    assert_eq!(
        lines.last(),
        Some(&"0"),
        "root's files show as root's: {r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(rw.join("roots")).unwrap(),
        "root's\n"
    );

    // At a terminal (root's pty, bound as /dev/console) only the note on
    // the bind nobody cannot write: not one on the terminal.
    let at_tty = write_profile(dir.path(), "tty.rhai", &sh_profile(&extra, "echo tty-done"));
    let mut t = Pty::spawn(moksha(Who::Root, &["exec", &at_tty]));
    let screen = t.expect("tty-done", 20);
    assert_eq!(screen.matches("moksha: note:").count(), 1, "{screen}");
    assert!(screen.contains("(bound writable at /rw)"), "{screen}");
    t.wait();

    // The profile's explicit choice keeps the host's root, and says so.
    let keep = format!("{extra}s.host_root(true);\n");
    let r = sh(
        Who::Root,
        &keep,
        "id -u; echo x >> /rw/roots && echo WROTE-ROOTS",
    );
    assert_eq!(r.expect_code(0).stdout, "0\nWROTE-ROOTS\n");
    let path = write_profile(dir.path(), "keep.rhai", &sh_profile(&keep, "true"));
    let plan = Run::from(moksha(Who::Root, &["plan", &path]).output().unwrap()).expect_code(0);
    assert!(
        plan.stdout
            .contains("warning: run by root, the program is the host's root"),
        "{}",
        plan.stdout
    );

    // uid 0 inside would be the host's root: refused before anything runs.
    let r = sh(Who::Root, "s.uid(0);\n", "true");
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("s.host_root(true)"), "{r:?}");
}
