//! Escape attempts from inside a sandbox, against the real kernel, as root
//! and rootless. Each test makes the attack and checks that it fails; where
//! another layer would also stop it (landlock's ptrace and abstract-socket
//! scoping), that layer is turned off so the test watches the protection
//! it is named after.

use crate::both;
use crate::common::*;
use std::time::{Duration, Instant};

/// A profile running `script` with /bin/sh in the minimal root, landlock off.
fn no_landlock(extra: &str) -> String {
    format!("s.landlock(#{{ enabled: false }});\n{extra}")
}

// The supervisor (PID 1 inside) is a copy of the launcher: its memory and
// environ hold the caller's whole environment, its fds the instance lock.
// Same uid, no capabilities on either side: only its being non-dumpable
// keeps the program out (landlock off here, it would stop it too).
both!(supervisor_environ_fds_root_and_memory_are_closed, |who| {
    let script = "for f in environ mem cmdline; do \
            if head -c 64 /proc/1/$f >/dev/null 2>&1; then echo \"read $f\"; else echo \"denied $f\"; fi; \
        done; \
        if ls /proc/1/fd/ >/dev/null 2>&1 && ls -l /proc/1/fd/ | grep -q -- '->'; then echo 'read fd'; else echo 'denied fd'; fi; \
        if ls /proc/1/root/ >/dev/null 2>&1; then echo 'read root'; else echo 'denied root'; fi; \
        if ls /proc/1/cwd/ >/dev/null 2>&1; then echo 'read cwd'; else echo 'denied cwd'; fi; \
        sleep 100 & \
        if head -c 64 /proc/$!/environ >/dev/null 2>&1; then echo 'sibling environ readable'; fi; \
        kill $!";
    for extra in [no_landlock(""), String::new()] {
        let r = sh(who, &extra, script).expect_code(0);
        for what in ["environ", "mem", "fd", "root", "cwd"] {
            assert!(
                r.stdout.contains(&format!("denied {what}")),
                "/proc/1/{what} of the supervisor was readable ({extra}):\n{}{}",
                r.stdout,
                r.stderr
            );
        }
        if extra.contains("enabled: false") {
            // The same reads work on an ordinary process of the sandbox:
            // the check can fail.
            assert!(
                r.stdout.contains("sibling environ readable"),
                "{}{}",
                r.stdout,
                r.stderr
            );
        }
    }
});

fn unique(test: &str) -> String {
    format!("e{}-{test}", std::process::id())
}

/// Stops the instance when the test ends, passed or not.
struct Instance {
    who: Who,
    name: String,
    _dir: tempfile::TempDir,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = moksha(self.who, &["stop", &self.name, "--timeout", "1"]).output();
    }
}

/// A spy inside the sandbox: it reads the environ of every other process
/// that appears in the sandbox, as fast as it can, and writes down what it
/// read (and whether it ever found SECRET_TOKEN).
const SPY: &str = r#"
import os
me = os.getpid()
reads = 0
while True:
    for p in os.listdir('/proc'):
        if not p.isdigit() or int(p) in (1, me):
            continue
        try:
            with open('/proc/%s/environ' % p, 'rb') as f:
                d = f.read()
        except OSError:
            continue
        reads += 1
        if reads == 1:
            open('/tmp/read-one', 'w').close()
        if b'SECRET_TOKEN' in d:
            with open('/tmp/leaked', 'ab') as o:
                o.write(d.replace(b'\0', b' ') + b'\n')
"#;

// `moksha enter` forks inside the sandbox's PID namespace from a process
// that holds the caller's whole environment; until exec, that child must
// not be readable from inside (the program applies the plan's environment
// rules only at exec). Landlock is off: it would also keep the spy out.
both!(enter_does_not_show_the_callers_environment, |who| {
    let dir = world_dir();
    let profile = write_profile(
        dir.path(),
        "spy.rhai",
        &format!(
            "import \"base\" as base;\nlet s = sandbox(\"spy\");\nbase::minimal(s);\n{}\
             s.exec([\"python3\", \"-c\", {}]);\n",
            no_landlock(""),
            rhai_string(SPY)
        ),
    );
    let name = unique("spy");
    Run::from(
        moksha(who, &["exec", "--detach", "--name", &name, &profile])
            .output()
            .unwrap(),
    )
    .expect_code(0);
    let _instance = Instance {
        who,
        name: name.clone(),
        _dir: dir,
    };
    let enter = |args: &[&str], secret: bool| {
        let mut all = vec!["enter", name.as_str(), "--"];
        all.extend_from_slice(args);
        let mut cmd = moksha(who, &all);
        if secret {
            cmd.env("SECRET_TOKEN", "hunter2");
        }
        Run::from(cmd.output().unwrap())
    };
    // Entered processes that live a little: the spy reads their environ
    // after exec (the plan's environment, without the secret), proof that
    // it can read what is readable.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        enter(&["sleep", "0.3"], false).expect_code(0);
        if enter(&["test", "-e", "/tmp/read-one"], false).code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the spy never read an environ");
    }
    for _ in 0..40 {
        enter(&["true"], true).expect_code(0);
    }
    let r = enter(&["sh", "-c", "cat /tmp/leaked 2>/dev/null; true"], false).expect_code(0);
    assert!(
        !r.stdout.contains("hunter2"),
        "the caller's environment was read from inside:\n{}",
        r.stdout
    );
});

// An abstract unix socket listening on the host: a sandbox with its own
// network namespace (the default) cannot connect to it, even without
// landlock's abstract-socket scoping.
both!(host_abstract_sockets_are_unreachable, |who: Who| {
    use std::os::linux::net::SocketAddrExt;
    let name = unique(&format!("abstract-{}", who.uid()));
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let script = format!(
        "python3 -c 'import socket\ns = socket.socket(socket.AF_UNIX)\n\
         try:\n    s.connect(\"\\0{name}\"); print(\"connected\")\n\
         except OSError as e: print(\"refused\", e)'"
    );
    for extra in [no_landlock(""), String::new()] {
        let r = sh(who, &extra, &script).expect_code(0);
        assert!(r.stdout.contains("refused"), "{}{}", r.stdout, r.stderr);
        assert!(
            listener.accept().is_err(),
            "the host listener got a connection"
        );
    }
    // Sharing the host's network, the same script connects: the check can fail.
    let r = sh(who, &no_landlock("s.share([\"net\"]);\n"), &script).expect_code(0);
    assert!(r.stdout.contains("connected"), "{}{}", r.stdout, r.stderr);
});

/// Whether any host process has `marker` among its arguments.
fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| c.split(|b| *b == 0).any(|a| a == marker.as_bytes()))
            .unwrap_or(false)
    })
}

// Double fork, new session, ignored SIGHUP and SIGTERM: nothing started
// inside outlives the sandbox.
both!(daemons_do_not_survive_the_sandbox, |who| {
    let secs = format!("{}", 900_000 + std::process::id() % 90_000);
    let script = format!(
        "(setsid sh -c 'trap \"\" HUP TERM; sleep {secs} & sleep {secs}' </dev/null >/dev/null 2>&1 &); \
         sleep 0.3; echo started"
    );
    let r = sh(who, "", &script).expect_code(0);
    assert!(r.stdout.contains("started"), "{}{}", r.stdout, r.stderr);
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&secs) {
        assert!(
            Instant::now() < deadline,
            "a process started in the sandbox is still running after it ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
});

// A sandbox launched by root creates files that belong to the host's root;
// an owner may set the setuid bit without any capability, so a program
// could leave a setuid-root binary in a writable bind. Root launches refuse
// the bits (chmod family, open/creat/mknod modes; openat2 answers ENOSYS).
// Rootless, the file would be setuid to the unprivileged caller: allowed.
both!(setuid_files_cannot_be_made_for_the_host, |who| {
    let dir = world_dir();
    let out = sandbox_dir(dir.path(), "rw", who);
    let extra = format!(
        "s.bind({}, \"/rw\", #{{ rw: true }});",
        rhai_string(&out.to_string_lossy())
    );
    let script = "cp /bin/true /rw/a; chmod 4755 /rw/a; echo chmod=$?; \
        chmod 2755 /rw/a; echo chmod_g=$?; \
        python3 -c 'import os; os.close(os.open(\"/rw/b\", os.O_CREAT|os.O_WRONLY, 0o4755))'; echo open=$?; \
        chmod 755 /rw/a; echo plain=$?";
    let r = sh(who, &extra, script).expect_code(0);
    let setid = |name: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(out.join(name))
            .map(|m| m.permissions().mode() & 0o6000 != 0)
            .unwrap_or(false)
    };
    assert!(r.stdout.contains("plain=0"), "ordinary chmod works: {r:?}");
    if who == Who::Root {
        for call in ["chmod=1", "chmod_g=1", "open=1"] {
            assert!(r.stdout.contains(call), "{call}: {r:?}");
        }
        assert!(
            !setid("a") && !setid("b"),
            "a setuid/setgid file reached the host: {r:?}"
        );
    } else {
        assert!(r.stdout.contains("chmod=0"), "rootless may: {r:?}");
    }
});

// Files of a fresh proc that describe the whole machine are masked.
both!(machine_wide_proc_files_are_masked, |who| {
    let r = sh(
        who,
        "",
        "for f in keys timer_list; do printf '%s=' $f; wc -c < /proc/$f; done; \
         grep -E ' /proc/(keys|timer_list) ' /proc/self/mountinfo | cut -d' ' -f5,6",
    )
    .expect_code(0);
    assert!(
        r.stdout.contains("keys=0\n") && r.stdout.contains("timer_list=0\n"),
        "{r:?}"
    );
    assert!(r.stdout.contains("/proc/keys ro,"), "{r:?}");
});

both!(
    the_state_directory_is_hidden_from_a_sandbox_that_binds_tmp,
    |who: Who| {
        // Without XDG_RUNTIME_DIR the records live in /tmp/moksha-UID: a
        // profile that binds the host's /tmp read-write must still not see
        // them, nor forge the record `moksha enter` would apply.
        let state = format!("/tmp/moksha-{}", who.uid());
        let script = format!(
            "ls -A {state} | wc -l; echo forged > {state}/forged.json && echo wrote-inside"
        );
        let r = sh(
            who,
            "s.bind(\"/tmp\", #{ rw: true, replace: true });",
            &script,
        )
        .expect_code(0);
        let mut lines = r.stdout.lines();
        assert_eq!(lines.next(), Some("0"), "the records are visible: {r:?}");
        assert_eq!(lines.next(), Some("wrote-inside"), "{r:?}");
        assert!(
            !std::path::Path::new(&format!("{state}/forged.json")).exists(),
            "the write reached the host's state directory"
        );
    }
);

both!(
    a_symlink_planted_in_a_writable_bind_cannot_redirect_another_bind,
    |who: Who| {
        // The profile binds a project read-write and one of its directories
        // read-only elsewhere. A sandbox replaced that directory with a link to
        // the user's secrets: the next launch must refuse, not show them.
        let dir = world_dir();
        let work = owned_dir(dir.path(), "work", who);
        let secrets = owned_dir(dir.path(), "secrets", who);
        std::fs::write(secrets.join("key"), "secret").unwrap();
        std::fs::create_dir(work.join("vendor")).unwrap();
        let extra = format!(
            "s.bind({w:?}, #{{ rw: true }});\ns.bind({w:?} + \"/vendor\", \"/vendor\");",
            w = work.display().to_string()
        );
        let r = sh(who, &extra, "ls /vendor | wc -l").expect_code(0);
        assert_eq!(r.stdout.trim(), "0", "{r:?}");
        std::fs::remove_dir(work.join("vendor")).unwrap();
        std::os::unix::fs::symlink(&secrets, work.join("vendor")).unwrap();
        let r = sh(who, &extra, "cat /vendor/key");
        assert_eq!(r.code, 125, "{r:?}");
        assert!(!r.stdout.contains("secret"), "{r:?}");
        assert!(r.stderr.contains("goes through a symlink"), "{r:?}");
    }
);

both!(
    a_symlink_planted_in_a_writable_bind_cannot_redirect_a_created_source,
    |who: Who| {
        // A directory the profile creates on the host (`create: true`) lies
        // inside a project bound read-write. The sandbox made its parent a
        // link to the user's secrets: the next launch must neither create
        // anything there nor bind it.
        let dir = world_dir();
        let work = owned_dir(dir.path(), "work", who);
        let secrets = owned_dir(dir.path(), "secrets", who);
        let extra = format!(
            "s.bind({w:?}, #{{ rw: true }});\n\
             s.bind({w:?} + \"/cache/app\", \"/cache\", #{{ rw: true, create: true }});",
            w = work.display().to_string()
        );
        let r = sh(who, &extra, "echo made > /cache/f && cat /cache/f").expect_code(0);
        assert_eq!(r.stdout.trim(), "made", "{r:?}");
        std::fs::remove_dir_all(work.join("cache")).unwrap();
        std::os::unix::fs::symlink(&secrets, work.join("cache")).unwrap();
        let r = sh(who, &extra, "echo planted > /cache/f");
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("goes through a symlink"), "{r:?}");
        assert!(
            std::fs::read_dir(&secrets).unwrap().next().is_none(),
            "something was created in the link's target"
        );
    }
);

// A tmpfs that hides a secret inside a project bound read-write: the
// sandbox must not move the directories on the way aside (the next launch
// would mount its tmpfs over a new, empty directory and show the secret
// under the old one's new name), and a symlink another sandbox left on the
// way must not take the tmpfs elsewhere (found in review).
both!(
    what_a_mount_inside_a_writable_bind_hides_stays_hidden_at_the_next_launch,
    |who: Who| {
        let dir = world_dir();
        let work = sandbox_dir(dir.path(), "work", who);
        let w = work.display().to_string();
        let secrets = work.join("sub/secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::write(secrets.join("key"), "secret\n").unwrap();
        let id = who.sandbox_uid();
        for d in ["sub", "sub/secrets"] {
            std::os::unix::fs::chown(work.join(d), Some(id), Some(id)).unwrap();
        }
        let hiding =
            format!("s.bind({w:?}, \"/w\", #{{ rw: true }});\ns.tmpfs(\"/w/sub/secrets\");");
        let script = "cat /w/sub/secrets/key 2>/dev/null || echo hidden; \
                      mv /w/sub /w/real 2>/dev/null && echo moved || echo pinned; \
                      cat /w/real/secrets/key 2>/dev/null; exit 0";
        let r = sh(who, &hiding, script).expect_code(0);
        assert_eq!(r.stdout, "hidden\npinned\n", "{r:?}");
        let r = sh(who, &hiding, script).expect_code(0);
        assert_eq!(r.stdout, "hidden\npinned\n", "the next launch: {r:?}");
        // Another profile, without the tmpfs, moves the directory and
        // leaves a link where it was.
        let plain = format!("s.bind({w:?}, \"/w\", #{{ rw: true }});");
        sh(who, &plain, "mv /w/sub /w/real && ln -s /tmp /w/sub").expect_code(0);
        let r = sh(who, &hiding, "cat /w/real/secrets/key");
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("goes through a symlink"), "{r:?}");
        assert!(!r.stdout.contains("secret"), "{r:?}");
    }
);

// The staging tmpfs the root is built in sits on a host directory (/tmp
// here) in the sandbox's mount namespace. A bind of that directory or of an
// ancestor must show the host's files, never the staging (the sandbox's own
// root and the files moksha writes): the new mount API copies host trees
// before the staging exists, the classic fallback detaches the copy
// (scripts/test runs this on both).
both!(
    a_bind_of_the_staging_directory_shows_the_host_not_the_staging,
    |who: Who| {
        let marker = format!("moksha-staging-marker-{}-{}", std::process::id(), who.uid());
        let host = std::path::Path::new("/tmp").join(&marker);
        std::fs::write(&host, "host").unwrap();
        let script = format!(
            "cat /seen-tmp/{marker}; echo; grep -c ' /seen-tmp ' /proc/self/mountinfo; \
         ls /seen-tmp/root/proc/self >/dev/null 2>&1 && echo 'staging root visible'; exit 0"
        );
        let bound = sh(who, "s.bind(\"/tmp\", \"/seen-tmp\");", &script);
        let pivot = exec_profile(
            who,
            &format!(
                "let s = sandbox(\"t\");\ns.pivot_root(\"/\");\ns.proc();\ns.dev();\n\
             s.exec([\"/bin/sh\", \"-c\", {}]);\n",
                rhai_string(&format!(
                    "cat /tmp/{marker}; echo; grep -c ' /tmp ' /proc/self/mountinfo; exit 0"
                ))
            ),
            &[],
        );
        std::fs::remove_file(&host).unwrap();
        let r = bound.expect_code(0);
        assert_eq!(r.stdout, "host\n1\n", "{r:?}");
        let r = pivot.expect_code(0);
        let mounts_at_tmp = if is_mount_point("/tmp") { "1" } else { "0" };
        assert_eq!(r.stdout, format!("host\n{mounts_at_tmp}\n"), "{r:?}");
    }
);

/// Whether `path` is a mount point on the host.
fn is_mount_point(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}
