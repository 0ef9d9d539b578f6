//! Trace mode and the SIGSYS line, for real: a probe (probes/denials.c)
//! makes a refused call, opens a path outside its view, writes to a
//! read-only bind and connects with network none; with `--trace` each is
//! in the summary with its count and cause, and the probe's own output is
//! the same with and without trace. As root and rootless.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A directory every user can read holding the compiled `denials`.
fn probe_dir() -> std::path::PathBuf {
    compiled_probe("denials")
}

/// A profile running the probe with `args`, after `extra` lines.
fn profile(extra: &str, args: &[&str]) -> String {
    let argv: Vec<String> = args.iter().map(|a| rhai_string(a)).collect();
    format!(
        "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         s.bind({}, \"/probe\");\n{extra}\ns.exec([\"/probe/denials\", {}]);\n",
        rhai_string(&probe_dir().to_string_lossy()),
        argv.join(", ")
    )
}

fn run(who: Who, text: &str, flags: &[&str]) -> Run {
    let dir = world_dir();
    let path = write_profile(dir.path(), "t.rhai", text);
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(&path);
    Run::from(moksha(who, &args).output().unwrap())
}

/// The summary line containing all of `parts`.
fn line_with<'a>(r: &'a Run, parts: &[&str]) -> &'a str {
    r.stderr
        .lines()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no summary line with {parts:?}; stderr:\n{}", r.stderr))
}

both!(
    the_four_denials_are_counted_with_their_cause_and_the_program_sees_the_same,
    |who: Who| {
        // A host directory the sandbox does not show (it exists on the host).
        let outside = world_dir();
        let secret = outside.path().join("secret.txt");
        std::fs::write(&secret, "x").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let secret = secret.to_string_lossy().into_owned();
        let args = [
            "keyctl",
            "keyctl",
            "keyctl",
            "fsopen",
            "open",
            &secret,
            "write",
            "/usr/moksha-ro",
            "connect",
            "192.0.2.1",
            "80",
        ];
        let text = profile("", &args);
        let plain = run(who, &text, &[]).expect_code(0);
        let traced = run(who, &text, &["--trace"]).expect_code(0);
        // The program's own results: the same errno for every call.
        assert_eq!(plain.stdout, traced.stdout, "{plain:?}\n{traced:?}");
        assert_eq!(
        plain.stdout,
        format!(
            "keyctl errno={e}\nkeyctl errno={e}\nkeyctl errno={e}\nfsopen errno={nosys}\nopen errno={noent}\n\
             write errno={rofs}\nconnect errno={unreach}\n",
            e = libc::EPERM,
            nosys = libc::ENOSYS,
            noent = libc::ENOENT,
            rofs = libc::EROFS,
            unreach = libc::ENETUNREACH
        )
    );
        assert!(
            !plain.stderr.contains("trace"),
            "no trace without --trace: {plain:?}"
        );
        // (1) the refused call, by name, with its count and group.
        line_with(
            &traced,
            &[
                "3x",
                "syscall keyctl refused (EPERM)",
                "default @keyring group",
                "s.seccomp_allow([\"@keyring\"])",
            ],
        );
        line_with(
            &traced,
            &["1x", "syscall fsopen refused (ENOSYS)", "@mount"],
        );
        // (2) the path outside its view, with the bind that would show it.
        line_with(
            &traced,
            &[
                "1x",
                &format!("{secret} not found (openat)"),
                "not in the sandbox's view",
                &format!("s.bind(\"{secret}\")"),
            ],
        );
        // (3) the write on the read-only /usr bind, with the profile line.
        line_with(
            &traced,
            &[
                "1x",
                "/usr/moksha-ro not writable (openat, EROFS)",
                "read-only bind of /usr at <stdlib>/base.rhai:",
            ],
        );
        // (4) the connection network none refuses.
        line_with(
            &traced,
            &[
                "1x",
                "connect to 192.0.2.1:80 refused",
                "network none (the default)",
            ],
        );
    }
);

both!(
    the_profile_s_own_rule_and_errno_are_what_trace_answers,
    |who: Who| {
        // A profile's own errno for an allowed-by-default call, and s.trace.
        let text = profile(
            "s.seccomp_deny([\"getcpu\"], #{ errno: \"EIO\" });\ns.trace(true);",
            &["getcpu", "getcpu"],
        );
        let r = run(who, &text, &[]).expect_code(0);
        assert_eq!(
            r.stdout,
            format!("getcpu errno={e}\ngetcpu errno={e}\n", e = libc::EIO),
            "{r:?}"
        );
        line_with(
            &r,
            &[
                "2x",
                "syscall getcpu refused (EIO)",
                "the profile's rule at",
                "t.rhai:5:3",
            ],
        );
    }
);

both!(nothing_refused_says_so, |who: Who| {
    let r = run(who, &profile("", &["open", "/usr"]), &["--trace"]).expect_code(0);
    assert_eq!(r.stdout, "open ok\n");
    assert!(
        r.stderr.contains("moksha: trace: nothing was refused"),
        "{r:?}"
    );
});

both!(
    a_program_killed_by_seccomp_gets_one_line_naming_the_call,
    |who: Who| {
        let text = profile(
            "s.seccomp_deny([\"keyctl\"], #{ action: \"kill\" });",
            &["keyctl"],
        );
        let r = run(who, &text, &[]);
        assert_eq!(r.code, 128 + libc::SIGSYS, "{r:?}");
        assert!(
            r.stderr
                .contains("moksha: killed by seccomp: keyctl (killed at")
                && r.stderr
                    .contains("t.rhai:5:3; allow with s.seccomp_allow([\"keyctl\"]))"),
            "{r:?}"
        );
        // The default policy never kills: a refused call is an errno.
        let r = run(who, &profile("", &["keyctl"]), &[]).expect_code(0);
        assert!(!r.stderr.contains("killed"), "{r:?}");
    }
);

/// A private session bus for `who`, stopped when dropped.
struct Bus(std::process::Child);

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

both!(
    names_the_dbus_proxy_refused_are_in_the_summary,
    |who: Who| {
        for program in ["dbus-daemon", "xdg-dbus-proxy", "dbus-send"] {
            assert!(
                Path::new("/usr/bin").join(program).exists(),
                "{program} is not installed (see .ci/run: dbus, xdg-dbus-proxy)"
            );
        }
        let dir = world_dir();
        let busdir = owned_dir(dir.path(), "bus", who);
        let socket = busdir.join("socket");
        let address = format!("unix:path={}", socket.display());
        let _bus = Bus(as_user(who, "dbus-daemon")
            .args([
                "--session",
                &format!("--address={address}"),
                "--nofork",
                "--nopidfile",
            ])
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "dbus-daemon did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let script = "dbus-send --session --print-reply --dest=org.moksha.Refused /x org.moksha.Foo.Bar; \
                  dbus-send --session --print-reply --dest=org.moksha.Refused /x org.moksha.Foo.Bar; \
                  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                  org.freedesktop.DBus.RequestName string:org.moksha.Mine uint32:0; true";
        let text = format!(
        "import \"base\" as base;\nimport \"dbus\" as dbus;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         dbus::session(s, #{{ talk: [\"org.moksha.Allowed\"] }});\ns.exec([\"sh\", \"-c\", {}]);\n",
        rhai_string(script)
    );
        let pdir = world_dir();
        let path = write_profile(pdir.path(), "t.rhai", &text);
        let run = |flags: &[&str]| {
            let mut args = vec!["exec"];
            args.extend_from_slice(flags);
            args.push(&path);
            let mut cmd = moksha(who, &args);
            cmd.env("DBUS_SESSION_BUS_ADDRESS", &address);
            Run::from(cmd.output().unwrap())
        };
        let plain = run(&[]).expect_code(0);
        let traced = run(&["--trace"]).expect_code(0);
        assert_eq!(plain.stdout, traced.stdout);
        assert!(plain.stderr.contains("ServiceUnknown"), "{plain:?}");
        line_with(
            &traced,
            &[
                "2x",
                "D-Bus org.moksha.Refused refused by the proxy's filter (talk, org.moksha.Foo.Bar)",
                "#{ talk: [\"org.moksha.Refused\"] }",
            ],
        );
        line_with(
            &traced,
            &[
                "1x",
                "D-Bus org.moksha.Mine refused by the proxy's filter (own, RequestName)",
                "#{ own: [\"org.moksha.Mine\"] }",
            ],
        );
    }
);

both!(
    learn_writes_a_snippet_that_makes_the_program_succeed,
    |who: Who| {
        // The program needs a config directory in the home, a data file
        // elsewhere, and the @keyring group.
        let top = world_dir();
        let home = owned_dir(top.path(), "home", who);
        let config = owned_dir(&home, ".config", who);
        let app = owned_dir(&config, "myapp", who);
        std::fs::write(app.join("conf"), "conf\n").unwrap();
        let data = owned_dir(top.path(), "data", who);
        std::fs::write(data.join("file.dat"), "data\n").unwrap();
        for f in [app.join("conf"), data.join("file.dat")] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let script = format!(
            "ok=0; cat $HOME/.config/myapp/conf || ok=1; cat {}/file.dat || ok=1; \
         /probe/denials keyctl | grep -q errno=1 && ok=1; exit $ok",
            data.display()
        );
        let text = format!(
            "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         s.bind({}, \"/probe\");\ns.exec([\"sh\", \"-c\", {}]);\n",
            rhai_string(&probe_dir().to_string_lossy()),
            rhai_string(&script)
        );
        let pdir = world_dir();
        let profile = write_profile(pdir.path(), "app.rhai", &text);
        let mine = owned_dir(top.path(), "mine", who).join("mine.rhai");
        let mine = mine.to_string_lossy().into_owned();
        let with_home = |args: &[&str]| {
            let mut cmd = moksha(who, args);
            cmd.env("HOME", &home);
            Run::from(cmd.output().unwrap())
        };
        // Refused as it is.
        let r = with_home(&["exec", &profile]);
        assert_eq!(r.code, 1, "{r:?}");
        // learn prints the snippet, grouped, generalised to the directory.
        let r = with_home(&["learn", &profile]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stdout.contains("// binds, read-only\n"), "{r:?}");
        assert!(
            r.stdout
                .contains("\ns.bind(home_dir() + \"/.config/myapp\");\n"),
            "{r:?}"
        );
        assert!(
            r.stdout
                .contains(&format!("s.bind({:?});", data.to_string_lossy())),
            "{r:?}"
        );
        assert!(
            r.stdout
                .contains("// syscalls\ns.seccomp_allow([\"@keyring\"]);   // keyctl\n"),
            "{r:?}"
        );
        assert!(
            !r.stdout
                .contains(&format!("s.bind({:?})", home.to_string_lossy())),
            "never the whole home: {r:?}"
        );
        // --apply makes a user copy with it appended; the copy succeeds.
        let r = with_home(&["learn", "--apply", &mine, &profile]);
        assert!(r.stderr.contains("appended to"), "{r:?}");
        let copy = std::fs::read_to_string(&mine).unwrap();
        assert!(
            copy.starts_with(&text) && copy.contains("// ---- added by `moksha learn`"),
            "{copy}"
        );
        let r = with_home(&["exec", &mine]).expect_code(0);
        assert_eq!(r.stdout, "conf\ndata\n");
    }
);

#[test]
fn learn_on_firefox_headless_gives_a_snippet_a_person_reads() {
    assert!(
        Path::new("/usr/bin/firefox-esr").exists() || Path::new("/usr/bin/firefox").exists(),
        "firefox is not installed (see .ci/run: firefox-esr)"
    );
    let bin = if Path::new("/usr/bin/firefox-esr").exists() {
        "firefox-esr"
    } else {
        "firefox"
    };
    let home = world_dir();
    let text = format!(
        "import \"base\" as base;\nlet s = sandbox(\"ff-strict\");\nbase::minimal(s);\n\
         s.env(\"MOZ_HEADLESS\", \"1\");\ns.timeout(\"90s\");\n\
         s.exec([\"{bin}\", \"--headless\", \"--screenshot\", \"/tmp/shot.png\", \"about:blank\"]);\n"
    );
    let dir = world_dir();
    let profile = write_profile(dir.path(), "strict.rhai", &text);
    let mut cmd = moksha(Who::Root, &["learn", &profile]);
    cmd.env("HOME", home.path());
    let r = Run::from(cmd.output().unwrap());
    assert_ne!(r.code, 124, "firefox timed out: {r:?}");
    let snippet = &r.stdout;
    eprintln!("{snippet}");
    let lines = snippet.lines().count();
    assert!(
        (4..40).contains(&lines),
        "{lines} lines:\n{snippet}\n{}",
        r.stderr
    );
    // What firefox reads on every machine, granted as directories.
    assert!(snippet.contains("s.bind(\"/etc/fonts\");"), "{snippet}");
    assert!(
        !snippet.contains("s.bind(\"/\")") && !snippet.contains("s.bind(home_dir())"),
        "{snippet}"
    );
    // Every line is Rhai a profile takes: the snippet appended evaluates.
    let applied = write_profile(dir.path(), "applied.rhai", &format!("{text}{snippet}"));
    let r = Run::from(moksha(Who::Root, &["check", &applied]).output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
}

both!(
    a_detached_sandbox_s_denial_log_is_in_its_logs,
    |who: Who| {
        let name = format!("trace-logs-{}", who.uid());
        let _ = moksha(who, &["rm", &name]).output();
        let dir = world_dir();
        let path = write_profile(dir.path(), "t.rhai", &profile("", &["keyctl", "keyctl"]));
        let r = Run::from(
            moksha(
                who,
                &["exec", "--detach", "--trace", "--name", &name, &path],
            )
            .output()
            .unwrap(),
        )
        .expect_code(0);
        assert_eq!(r.stdout.trim(), name);
        // The supervisor writes the summary into the log as the sandbox ends.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let logs = loop {
            let r = Run::from(moksha(who, &["logs", &name]).output().unwrap());
            if r.stdout.contains("moksha: trace:") || r.stderr.contains("moksha: trace:") {
                break r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no trace summary in the logs: {r:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let _ = moksha(who, &["rm", &name]).output();
        let all = format!("{}{}", logs.stdout, logs.stderr);
        assert!(
            all.contains(&format!("keyctl errno={}", libc::EPERM)),
            "{all}"
        );
        assert!(
            all.contains(
                "2x  syscall keyctl refused (EPERM): refused by the default @keyring group"
            ),
            "{all}"
        );
    }
);

both!(
    a_trace_counts_what_came_after_the_memory_was_let_go,
    |who: Who| {
        // Past SHED_AFTER (0.2 s) the launcher and the supervisor give their
        // setup's memory back (sys::shed_idle_memory: the thread cache turned
        // off, the stack below the wait cut): the tracer thread's counts, the
        // supervisor's JSON of them and the launcher's summary all come later.
        let text = profile("", &["keyctl", "sleep", "600", "keyctl"]);
        let traced = run(who, &text, &["--trace"]).expect_code(0);
        assert_eq!(
            traced.stdout,
            format!("keyctl errno={e}\nkeyctl errno={e}\n", e = libc::EPERM)
        );
        line_with(&traced, &["2x", "syscall keyctl refused (EPERM)"]);
    }
);
