//! The sandbox seen from inside and from outside: each test runs the real
//! binary, as root and rootless (uid 65534), and checks what the kernel
//! really enforces.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

both!(host_files_outside_binds_are_invisible, |who| {
    let dir = world_dir();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "top secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = format!(
        "test -e {0} && echo visible:{0}; test -e /root/.bashrc && echo visible:bashrc; \
         test -e /home && echo visible:home; test -e /var && echo visible:var; \
         test -e /etc/shadow && echo visible:shadow; ls /; echo done",
        secret.display()
    );
    let r = sh(who, "", &script).expect_code(0);
    assert!(
        !r.stdout.contains("visible:"),
        "host files leaked: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("usr"),
        "the root lists /usr: {}",
        r.stdout
    );
    assert!(r.stdout.ends_with("done\n"), "{}", r.stdout);
});

both!(read_only_bind_cannot_be_written_or_remounted, |who| {
    let dir = world_dir();
    let data = sandbox_dir(dir.path(), "data", who);
    std::fs::write(data.join("f"), "original").unwrap();
    let extra = format!(
        "s.bind({}, \"/data\");",
        rhai_string(&data.to_string_lossy())
    );
    let script = "echo changed > /data/f && echo WROTE; \
                  touch /data/new && echo CREATED; \
                  mount -o remount,rw /data && echo REMOUNTED; \
                  mount -o remount,bind,rw /data && echo REMOUNTED2; \
                  grep ' /data ' /proc/self/mountinfo | cut -d' ' -f6; \
                  cat /data/f";
    let r = sh(who, &extra, script).expect_code(0);
    for bad in ["WROTE", "CREATED", "REMOUNTED"] {
        assert!(!r.stdout.contains(bad), "{bad}: {}\n{}", r.stdout, r.stderr);
    }
    assert!(
        r.stdout.contains("ro,"),
        "mount flags show ro: {}",
        r.stdout
    );
    assert!(r.stdout.trim_end().ends_with("original"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "original");
    assert!(!data.join("new").exists());
});

both!(
    writable_bind_writes_through_and_nothing_else_is_writable,
    |who| {
        let dir = world_dir();
        let data = sandbox_dir(dir.path(), "rw", who);
        let extra = format!(
            "s.bind({}, \"/out\", #{{ rw: true }});",
            rhai_string(&data.to_string_lossy())
        );
        let script = "echo hello > /out/result && echo OUT_OK; \
                  for p in /usr/x /etc/x /x /bin/x /lib/x; do touch $p 2>/dev/null && echo WROTE:$p; done; \
                  touch /tmp/ok && echo TMP_OK; echo end";
        let r = sh(who, &extra, script).expect_code(0);
        assert!(
            r.stdout.contains("OUT_OK") && r.stdout.contains("TMP_OK"),
            "{r:?}"
        );
        assert!(!r.stdout.contains("WROTE:"), "{}", r.stdout);
        assert_eq!(
            std::fs::read_to_string(data.join("result")).unwrap(),
            "hello\n"
        );
        let meta = std::fs::metadata(data.join("result")).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            who.sandbox_uid(),
            "file owned by the caller on the host"
        );
    }
);

both!(
    program_is_child_of_supervisor_in_private_pid_namespace,
    |who| {
        let script = "echo pid=$$; grep PPid /proc/$$/status; cat /proc/1/comm; \
                  ls /proc | grep -c '^[0-9]'; echo end";
        let r = sh(who, "", script).expect_code(0);
        assert!(
            !r.stdout.contains("pid=1\n"),
            "program must not be PID 1: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains("PPid:\t1\n"),
            "parent is PID 1: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains("moksha-init"),
            "PID 1 is the supervisor: {}",
            r.stdout
        );
        let count: usize = r.stdout.lines().nth(3).unwrap().trim().parse().unwrap();
        assert!(
            count <= 5,
            "only sandbox processes in /proc, got {count}: {}",
            r.stdout
        );
    }
);

both!(host_processes_cannot_be_signalled, |who| {
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = victim.id();
    let script =
        format!("kill -9 {pid} && echo KILLED; kill -0 1 && echo SUPERVISOR_VISIBLE; echo end");
    let r = sh(who, "", &script).expect_code(0);
    assert!(!r.stdout.contains("KILLED"), "{}", r.stdout);
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the host process survived"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
});

both!(hostname_is_private, |who| {
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let r = sh(
        who,
        "s.hostname(\"inside-box\");",
        "cat /proc/sys/kernel/hostname; hostname evil 2>/dev/null && echo CHANGED; \
         echo evil > /proc/sys/kernel/hostname 2>/dev/null && echo CHANGED2; cat /proc/sys/kernel/hostname",
    )
    .expect_code(0);
    // No capability to change it, and /proc/sys is read-only.
    assert_eq!(r.stdout, "inside-box\ninside-box\n", "{r:?}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_before
    );
});

both!(machine_wide_proc_files_are_read_only, |who| {
    // Written back with their own values: harmless if the protection failed.
    let script = "for f in /proc/sys/kernel/core_pattern /proc/sys/kernel/printk_ratelimit /proc/sys/vm/overcommit_memory; do \
                    v=$(cat $f); echo \"$v\" > $f 2>/dev/null && echo WROTE:$f; done; \
                  echo h > /proc/sysrq-trigger 2>/dev/null && echo WROTE:sysrq; \
                  grep -E ' /proc/(sys|sysrq-trigger|irq|bus) ' /proc/self/mountinfo | cut -d' ' -f5,6";
    let r = sh(who, "", script).expect_code(0);
    assert!(!r.stdout.contains("WROTE"), "{r:?}");
    assert!(r.stdout.contains("/proc/sys ro,"), "{r:?}");
    assert!(r.stdout.contains("/proc/irq ro,"), "{r:?}");
    // This kernel may be built without magic sysrq; where it has it, it is covered.
    if Path::new("/proc/sysrq-trigger").exists() {
        assert!(r.stdout.contains("/proc/sysrq-trigger ro,"), "{r:?}");
    }
});

both!(no_capabilities_and_no_new_privs, |who| {
    let r = sh(
        who,
        "",
        "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status",
    )
    .expect_code(0);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            r.stdout.contains(&format!("{set}:\t0000000000000000")),
            "{set}: {}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("NoNewPrivs:\t1"), "{}", r.stdout);
    // The supervisor holds nothing either.
    let r = sh(who, "", "grep -E '^Cap(Prm|Eff|Bnd)' /proc/1/status").expect_code(0);
    assert_eq!(
        r.stdout.matches("0000000000000000").count(),
        3,
        "{}",
        r.stdout
    );
});

// Every thread of PID 1, trace mode's too (capabilities, no_new_privs and
// the seccomp filter are each thread's own): none holds a capability, each
// has no_new_privs and the supervisor's filter.
fn supervisor_threads_hold_nothing(who: Who, options: &[&str]) {
    let script = "sleep 0.3; for t in /proc/1/task/*; do \
                  echo \"task $(cat $t/comm)\"; \
                  grep -E '^(Cap(Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' $t/status; done";
    let dir = world_dir();
    let path = write_profile(dir.path(), "t.rhai", &sh_profile("", script));
    let mut args = vec!["exec"];
    args.extend_from_slice(options);
    args.push(&path);
    let r = Run::from(moksha(who, &args).output().unwrap()).expect_code(0);
    let tasks = r.stdout.matches("task ").count();
    assert!(tasks >= 1, "{}", r.stdout);
    for set in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let zero = format!("{set}:\t0000000000000000");
        assert_eq!(
            r.stdout.matches(&zero).count(),
            tasks,
            "{set}: {}",
            r.stdout
        );
    }
    assert_eq!(
        r.stdout.matches("NoNewPrivs:\t1").count(),
        tasks,
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.matches("Seccomp:\t2").count(),
        tasks,
        "{}",
        r.stdout
    );
}

both!(the_supervisor_holds_nothing_on_any_thread, |who| {
    supervisor_threads_hold_nothing(who, &[]);
});

// Trace mode answers the filter's notifications on a thread of PID 1's.
both!(
    the_supervisor_holds_nothing_on_any_thread_in_trace_mode,
    |who| {
        supervisor_threads_hold_nothing(who, &["--trace"]);
    }
);

// Fail closed: a supervisor that cannot install its own filter stops the
// sandbox instead of waiting on unfiltered. probes/filters_left.c leaves
// moksha only N instructions of the kernel's budget for the filters along
// a process (as deep nesting in other sandboxes would): the smallest N at
// which the program's filter (an empty policy's) goes in leaves no room
// for the supervisor's, which holds the default policy.
both!(
    a_supervisor_that_cannot_filter_itself_stops_the_sandbox,
    |who| {
        let dir = world_dir();
        let out = world_dir();
        std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let marker = out.path().join("still-running");
        let extra = format!(
            "s.seccomp(#{{ base: \"empty\" }});\ns.bind({}, \"/out\", #{{ rw: true }});",
            rhai_string(&out.path().to_string_lossy())
        );
        let profile = sh_profile(&extra, "echo started; sleep 0.5; touch /out/still-running");
        let path = write_profile(dir.path(), "t.rhai", &profile);
        let probe = compiled_probe("filters_left").join("filters_left");
        let run = |left: usize| {
            let mut cmd = moksha_under(who, &probe, &[&left.to_string()], &["exec", &path]);
            Run::from(cmd.output().unwrap())
        };
        // Enough room for both: it runs as always.
        run(4000).expect_code(0);
        assert!(marker.exists());
        std::fs::remove_file(&marker).unwrap();
        let program_refused = |r: &Run| {
            r.stderr.lines().any(|l| {
                l.contains("SECCOMP_MODE_FILTER")
                    && l.contains("ENOMEM")
                    && !l.contains("supervisor")
            })
        };
        let (left, r) = (32..2048)
            .step_by(8)
            .map(|left| (left, run(left)))
            .find(|(_, r)| {
                assert!(
                    !r.stderr.contains("filters_left:"),
                    "the probe failed: {r:?}"
                );
                !program_refused(r)
            })
            .expect("the program's filter never fits");
        assert_eq!(r.code, 125, "{left} left: {r:?}");
        assert!(
            r.stderr
                .contains("the supervisor could not filter its own system calls")
                && r.stderr.contains("ENOMEM")
                && r.stderr
                    .contains("the kernel allows 32768 instructions along a process's filters"),
            "{left} left: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            !marker.exists(),
            "the program went on after the supervisor failed"
        );
    }
);

// The working directory is entered while setup still has its privilege,
// as before the program started sharing the supervisor's memory: a
// directory of the caller's that the program's own ids could not enter
// (root's 0700 one for a program run as nobody; a mode 000 one of the
// user's, rootless) stays usable as the working directory.
both!(
    a_working_directory_only_setup_can_enter_still_works,
    |who| {
        let dir = world_dir();
        let work = owned_dir(dir.path(), "work", who);
        let mode = if who == Who::Root { 0o700 } else { 0o000 };
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(mode)).unwrap();
        let at = rhai_string(&work.to_string_lossy());
        let extra = format!("s.bind({at}); s.cwd({at});");
        let r = sh(who, &extra, "pwd").expect_code(0);
        assert_eq!(r.stdout.trim_end(), work.to_string_lossy(), "{}", r.stderr);
    }
);

// A home of /tmp (containers, service accounts): the minimal root's
// private /tmp is the private home, not a step that collides with it.
both!(a_home_of_tmp_is_the_private_tmp, |who| {
    let dir = world_dir();
    let path = write_profile(dir.path(), "t.rhai", &sh_profile("", "pwd; echo $HOME"));
    let r = Run::from(
        moksha(who, &["exec", &path])
            .env("HOME", "/tmp")
            .output()
            .unwrap(),
    )
    .expect_code(0);
    assert_eq!(r.stdout, "/tmp\n/tmp\n", "{}", r.stderr);
    let r = sh(who, "", "echo ok").expect_code(0);
    assert_eq!(r.stdout, "ok\n");
});

both!(caller_fds_do_not_leak_in, |who| {
    let dir = world_dir();
    let path = write_profile(
        dir.path(),
        "p.rhai",
        &sh_profile("", "ls /proc/self/fd | tr '\\n' ' '"),
    );
    let root = std::fs::File::open("/").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&root);
    let mut cmd = moksha(who, &["exec", &path]);
    // SAFETY: dup2 between valid descriptors, async-signal-safe, in the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = Run::from(cmd.output().unwrap()).expect_code(0);
    // ls itself opens one directory fd (3); nothing else may be there.
    assert_eq!(r.stdout.trim(), "0 1 2 3", "{r:?}");
});

both!(setuid_binaries_gain_nothing, |who| {
    let dir = world_dir();
    let id = dir.path().join("id");
    std::fs::copy("/usr/bin/id", &id).unwrap();
    // setuid root: the program is nobody in both runs (a root launch runs
    // it as nobody too).
    std::os::unix::fs::chown(&id, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o6755)).unwrap();
    let extra = format!(
        "s.bind({}, \"/suid\");",
        rhai_string(&dir.path().to_string_lossy())
    );
    let r = sh(
        who,
        &extra,
        "ls -ln /suid/id | cut -c1-10; /suid/id -u; /suid/id -g",
    )
    .expect_code(0);
    let me = who.sandbox_uid().to_string();
    assert!(
        r.stdout.starts_with("-rwsr-sr-x"),
        "the bit is there: {}",
        r.stdout
    );
    assert_eq!(
        r.stdout.lines().skip(1).collect::<Vec<_>>(),
        vec![me.as_str(), me.as_str()],
        "{r:?}"
    );
});

both!(exit_codes_and_signal_deaths_propagate, |who| {
    sh(who, "", "exit 3").expect_code(3);
    sh(who, "", "kill -9 $$").expect_code(137);
    sh(who, "", "kill -TERM $$").expect_code(143);
    sh(who, "", "true").expect_code(0);
});

/// Host pids of the processes below `pid` (children, recursively).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// Whether a process is gone (or a zombie nobody reaped yet: not running).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
    }
}

/// Starts a sandbox running `script`, which writes /out/ready (an rw bind)
/// once it is set up; waits until it is ready. Returns the child and the
/// directory.
fn start_ready(who: Who, script: &str) -> (std::process::Child, tempfile::TempDir) {
    let dir = world_dir();
    let out = sandbox_dir(dir.path(), "out", who);
    let extra = format!(
        "s.bind({}, \"/out\", #{{ rw: true }});",
        rhai_string(&out.to_string_lossy())
    );
    let path = write_profile(dir.path(), "p.rhai", &sh_profile(&extra, script));
    let mut child = moksha(who, &["exec", &path])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.join("ready").exists() {
        if Instant::now() > deadline {
            // Not left running behind a failed test.
            let _ = child.kill();
            let r = Run::from(child.wait_with_output().unwrap());
            panic!("the sandbox never became ready: {r:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, dir)
}

both!(sigterm_to_moksha_reaches_the_program, |who| {
    let (child, dir) = start_ready(
        who,
        // Ready once the trap is set: a TERM before it would end the shell.
        "trap 'echo got-term > /out/term; exit 7' TERM; touch /out/ready; \
         while :; do sleep 0.05; done",
    );
    // SAFETY: kill with a pid we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let r = Run::from(child.wait_with_output().unwrap()).expect_code(7);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/term")).unwrap(),
        "got-term\n",
        "{r:?}"
    );
});

both!(sigkill_to_moksha_leaves_no_sandbox_process, |who| {
    let (mut child, _dir) = start_ready(who, "touch /out/ready; sleep 1000 & sleep 1000");
    // (The shell starts its sleeps just after the ready file: seen in CI.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut inside = descendants(child.id());
    while inside.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        inside = descendants(child.id());
    }
    assert!(
        inside.len() >= 3,
        "supervisor, shell and sleeps: {inside:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let alive: Vec<u32> = inside.into_iter().filter(|p| !gone(*p)).collect();
    assert!(alive.is_empty(), "sandbox processes still alive: {alive:?}");
});

both!(orphaned_grandchildren_are_reaped, |who| {
    // The subshell exits at once; its sleep is orphaned to the supervisor,
    // exits after 0.2 s and must be reaped, not left a zombie.
    let r = sh(
        who,
        "",
        "(sleep 0.2 &); sleep 1; grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l",
    )
    .expect_code(0);
    assert_eq!(r.stdout.trim(), "0", "zombies left: {r:?}");
});

both!(
    missing_bind_source_is_a_clear_error_before_anything_starts,
    |who| {
        let profile = sh_profile("s.bind(\"/no/such/dir\");", "echo RAN");
        let r = exec_profile(who, &profile, &[]).expect_code(125);
        assert!(!r.stdout.contains("RAN"));
        assert!(
            r.stderr.contains("test.rhai:4:3"),
            "position of the bind: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("/no/such/dir") && r.stderr.contains("does not exist"),
            "{}",
            r.stderr
        );
        // An optional one is skipped.
        let profile = sh_profile(
            "s.bind(\"/no/such/dir\", #{ optional: true });",
            "test -e /no/such/dir || echo SKIPPED",
        );
        let r = exec_profile(who, &profile, &[]).expect_code(0);
        assert_eq!(r.stdout, "SKIPPED\n");
    }
);

both!(exec_of_absent_program_says_so, |who| {
    // Installed nowhere: said before the sandbox is made (host_checks.rs).
    let r = exec_profile(who, "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\ns.exec([\"no-such-program\"]);\n", &[]).expect_code(125);
    assert!(
        r.stderr.contains("no-such-program") && r.stderr.contains("not installed on the host"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("test.rhai:4:3"), "{}", r.stderr);
    // A host program that is not in the sandbox's view.
    let dir = world_dir();
    let tool = dir.path().join("tool");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = format!(
        "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\ns.exec([{:?}]);\n",
        tool.display()
    );
    let r = exec_profile(who, &text, &[]).expect_code(127);
    assert!(
        r.stderr
            .contains(&format!("{} does not exist in the sandbox", tool.display())),
        "{}",
        r.stderr
    );
    // Present but not executable.
    let r = exec_profile(who, "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\ns.exec([\"/etc/group\"]);\n", &[]).expect_code(126);
    assert!(r.stderr.contains("not executable"), "{}", r.stderr);
});

both!(refused_user_namespaces_give_a_clear_error, |who| {
    // A user namespace whose limit on further user namespaces is 0: the
    // kernel refuses moksha's clone, as on hosts that disable them.
    let dir = world_dir();
    let path = write_profile(dir.path(), "p.rhai", &sh_profile("", "echo RAN"));
    let inner = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} exec {path}",
        moksha_bin().display()
    );
    let mut wrapped = as_user(who, "unshare");
    wrapped.args(["-U", "-r", "--fork", "sh", "-c", &inner]);
    wrapped
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .stdin(Stdio::null());
    let r = Run::from(wrapped.output().unwrap()).expect_code(125);
    assert!(!r.stdout.contains("RAN"));
    assert!(
        r.stderr.contains("clone(NEWUSER"),
        "names the call: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("max_user_namespaces"),
        "says what to do: {}",
        r.stderr
    );
});

both!(private_tmp_home_and_network, |who| {
    let r = sh(
        who,
        "",
        "ls -A /tmp | wc -l; echo home=$HOME; ls -A \"$HOME\" | wc -l; \
         awk -F: 'NR>2 {print $1}' /proc/net/dev | tr -d ' '",
    )
    .expect_code(0);
    let home = if who == Who::Root {
        "/root"
    } else {
        "/nonexistent"
    };
    assert_eq!(r.stdout, format!("0\nhome={home}\n0\nlo\n"), "{r:?}");
});

both!(environment_is_exactly_the_plan, |who| {
    let profile = "let s = sandbox(\"t\");\ns.bind(\"/usr\");\ns.symlink(\"usr/bin\", \"/bin\");\ns.symlink(\"usr/lib\", \"/lib\");\ns.symlink(\"usr/lib64\", \"/lib64\");\ns.env(\"A\", \"1\");\ns.keep_env(\"KEEP_ME\");\ns.keep_env(\"NOT_SET\");\ns.exec([\"/usr/bin/env\"]);\n";
    let dir = world_dir();
    let path = write_profile(dir.path(), "p.rhai", profile);
    let r = Run::from(
        moksha(who, &["exec", &path])
            .env("KEEP_ME", "yes")
            .env("SECRET", "no")
            .output()
            .unwrap(),
    )
    .expect_code(0);
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["A=1", "KEEP_ME=yes"], "{r:?}");
});

both!(args_reach_the_profile, |who| {
    let profile = "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
                   s.exec([\"/bin/sh\", \"-c\", \"echo \\\"$@\\\"\", \"sh\"] + ARGS);\n";
    let r = exec_profile(who, profile, &["--", "a b", "c"]).expect_code(0);
    assert_eq!(r.stdout, "a b c\n", "{r:?}");
});

#[test]
fn demo_profile_runs_as_documented() {
    for who in [Who::Root, Who::Nobody] {
        let r = Run::from(moksha(who, &["exec", "demo"]).output().unwrap()).expect_code(0);
        assert!(r.stdout.contains("hostname:  moksha-demo"), "{r:?}");
        assert!(r.stdout.contains("NoNewPrivs:\t1"), "{r:?}");
        assert!(r.stdout.contains("pid:       2 (parent 1)"), "{r:?}");
    }
}

#[test]
fn python_profile_sees_only_the_current_directory() {
    let dir = world_dir();
    let work = owned_dir(dir.path(), "proj", Who::Nobody);
    // Writable by both runs: root in the sandbox has no CAP_DAC_OVERRIDE.
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(work.join("hello.py"), "import os\nopen('out.txt','w').write('written')\nprint(sorted(os.listdir('.')), os.path.exists('/etc/shadow'))\n").unwrap();
    for who in [Who::Root, Who::Nobody] {
        let r = Run::from(
            moksha(who, &["exec", "python", "--", "hello.py"])
                .current_dir(&work)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        // The placeholders of the protected paths missing here
        // (workspace::protected_paths(), docs/workspace.md), for the run only.
        assert_eq!(
            r.stdout, "['.envrc', '.git', '.idea', '.vscode', 'hello.py', 'out.txt'] False\n",
            "{r:?}"
        );
        assert_eq!(
            std::fs::read_to_string(work.join("out.txt")).unwrap(),
            "written"
        );
        std::fs::remove_file(work.join("out.txt")).unwrap();
        let left: Vec<_> = std::fs::read_dir(&work).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "only hello.py: {left:?}");
    }
    assert!(Path::new(&work).exists());
}

both!(
    interactive_shell_has_job_control_signals_and_window_size,
    |who| {
        let mut cmd = moksha(who, &["exec", "shell"]);
        cmd.env("TERM", "dumb");
        let mut t = Pty::spawn(cmd);
        t.expect("@moksha:", 20);
        t.send("set -o | grep -w monitor | tr -s ' \\t' ' '\n");
        t.expect("monitor on", 10);
        // Ctrl-C reaches the program's foreground job, not moksha.
        t.send("sleep 100\n");
        std::thread::sleep(Duration::from_millis(500));
        t.send("\x03");
        t.send("echo rc=$?\n");
        t.expect("rc=130", 10);
        // Ctrl-Z stops the job: job control works.
        t.send("sleep 100\n");
        std::thread::sleep(Duration::from_millis(500));
        t.send("\x1a");
        t.expect("Stopped", 10);
        t.send("kill -9 %1; wait; echo killed-job\n");
        t.expect("killed-job", 10);
        // Window size changes reach it.
        t.send("trap 'echo GOT-WINCH' WINCH; sleep 1; echo slept\n");
        std::thread::sleep(Duration::from_millis(300));
        t.resize(40, 100);
        t.expect("slept", 10);
        t.send("stty size\n");
        let screen = t.expect("40 100", 10);
        assert!(screen.contains("GOT-WINCH"), "{screen}");
        t.send("exit 5\n");
        assert_eq!(t.wait(), 5);
    }
);

both!(
    symlinks_made_by_the_profile_cannot_lead_setup_out_of_the_root,
    |who| {
        // A profile (or a library) links /evil to a host directory, then writes
        // and mounts "through" it: everything must land inside the new root.
        let dir = world_dir();
        let host = owned_dir(dir.path(), "host", who);
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777)).unwrap();
        let h = host.to_string_lossy();
        let extra = format!(
        "s.symlink({0}, \"/evil\");\ns.symlink(\"../../../../..{h}\", \"/tmp/rel\");\n\
         s.write_file(\"/evil/pwned\", \"x\");\ns.tmpfs(\"/tmp/rel/mnt\");\ns.mkdir(\"/evil/dir\");",
        rhai_string(&h)
    );
        let r = sh(who, &extra, "ls -A /evil/ | tr '\\n' ' '").expect_code(0);
        assert_eq!(r.stdout.trim(), "dir mnt pwned", "{r:?}");
        let left: Vec<_> = std::fs::read_dir(&host)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "setup wrote to the host: {left:?}");
    }
);

both!(sigpipe_has_its_default_action_inside, |who| {
    // A writer whose reader went away dies of SIGPIPE, quietly, as on the host.
    let r = sh(who, "", "yes | head -1; grep SigIgn /proc/self/status").expect_code(0);
    assert!(!r.stderr.contains("Broken pipe"), "{r:?}");
    let ignored = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:\t"))
        .unwrap();
    let mask = u64::from_str_radix(ignored, 16).unwrap();
    assert_eq!(
        mask & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE is not ignored: {r:?}"
    );
});

both!(
    a_mount_on_a_directory_covers_earlier_binds_in_it_and_not_later_ones,
    |who| {
        // Setup keeps the directory of consecutive file binds and links for the
        // next ones (rootfs.rs, `last_dir`): a mount on that directory must end
        // it, or later binds would go under the mount, out of sight.
        let dir = world_dir();
        let (f, g) = (dir.path().join("f"), dir.path().join("g"));
        for (path, text) in [(&f, "first"), (&g, "second")] {
            std::fs::write(path, text).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let bind = |from: &Path, to: &str| {
            format!("s.bind({}, {to:?});", rhai_string(&from.to_string_lossy()))
        };
        let extra = format!(
        "{} {} s.symlink(\"f\", \"/a/early\"); s.tmpfs(\"/a\"); {} s.symlink(\"g\", \"/a/late\");",
        bind(&f, "/a/f"),
        bind(&g, "/a/f2"),
        bind(&g, "/a/g"),
    );
        let script = "ls -A /a; cat /a/late";
        let r = sh(who, &extra, script).expect_code(0);
        assert_eq!(r.stdout, "g\nlate\nsecond", "{r:?}");
    }
);
