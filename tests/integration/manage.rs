//! Managed sandboxes: detach, ps, logs, enter, stop; dead and crafted
//! records; two users; two launches racing for one name.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A name unique to this test run and test.
fn unique(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

/// The state directory of `who` as moksha computes it without
/// XDG_RUNTIME_DIR (the tests' environment has none).
fn state_dir(who: Who) -> PathBuf {
    PathBuf::from(format!("/tmp/moksha-{}", who.uid()))
}

const SERVICE: &str = "import \"base\" as base;\nlet s = sandbox(\"svc\");\nbase::minimal(s);\n\
    s.hostname(\"svc-box\");\n\
    s.exec([\"/bin/sh\", \"-c\", \"echo ready > /tmp/marker; echo to-stdout; echo to-stderr >&2; \
    trap 'echo got-term; exit 9' TERM; while :; do sleep 0.1; done\"]);\n";

const STUBBORN: &str = "import \"base\" as base;\nlet s = sandbox(\"stubborn\");\nbase::minimal(s);\n\
    s.exec([\"/bin/sh\", \"-c\", \"trap '' TERM; echo up; sleep 1000 & while :; do sleep 0.1; done\"]);\n";

/// Starts a detached instance named `name` from `profile` as `who`.
/// A detached instance started by a test; stopped when dropped, so a
/// failing assertion does not leave it running.
struct Started {
    who: Who,
    name: String,
    _dir: tempfile::TempDir,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = moksha(self.who, &["stop", &self.name, "--timeout", "1"]).output();
        let _ = moksha(self.who, &["rm", &self.name]).output();
    }
}

fn start(who: Who, name: &str, profile: &str) -> Started {
    let dir = world_dir();
    let path = write_profile(dir.path(), "svc.rhai", profile);
    let r = Run::from(
        moksha(who, &["exec", "--detach", "--name", name, &path])
            .output()
            .unwrap(),
    )
    .expect_code(0);
    assert_eq!(
        r.stdout.trim(),
        name,
        "detach prints the instance name: {r:?}"
    );
    Started {
        who,
        name: name.to_string(),
        _dir: dir,
    }
}

fn run(who: Who, args: &[&str]) -> Run {
    Run::from(moksha(who, args).output().unwrap())
}

/// `moksha ps --json` rows.
fn ps(who: Who) -> Vec<serde_json::Value> {
    let r = run(who, &["ps", "--json"]).expect_code(0);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("ps --json: {e}: {}", r.stdout))
}

fn row(who: Who, name: &str) -> Option<serde_json::Value> {
    ps(who).into_iter().find(|r| r["name"] == name)
}

/// Host pids of a process and everything below it.
fn tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        out.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        i += 1;
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Waits until `f` holds, or panics after 10 s.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

both!(detach_ps_logs_enter_stop, |who| {
    let name = unique("svc");
    let _dir = start(who, &name, SERVICE);
    let r = row(who, &name).expect("ps lists the instance");
    assert_eq!(r["status"], "running");
    assert!(r["profile"].as_str().unwrap().ends_with("svc.rhai"), "{r}");
    let pid = r["pid"].as_u64().unwrap() as u32;
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(),
        "moksha-init\n",
        "ps shows the supervisor's pid"
    );
    assert!(r["memory_bytes"].as_u64().unwrap() > 0, "{r}");

    eventually("the program wrote its output", || {
        run(who, &["logs", &name]).stdout.contains("to-stdout")
    });
    let logs = run(who, &["logs", &name]).expect_code(0);
    assert!(logs.stderr.contains("to-stderr"), "{logs:?}");

    let e = run(
        who,
        &[
            "enter",
            &name,
            "--",
            "/bin/sh",
            "-c",
            "cat /proc/1/comm; hostname; id -u; cat /tmp/marker; ls /proc | grep -c '^[0-9]'; \
           grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
        ],
    )
    .expect_code(0);
    let lines: Vec<&str> = e.stdout.lines().collect();
    assert_eq!(lines[0], "moksha-init", "{e:?}");
    assert_eq!(lines[1], "svc-box", "the instance's hostname: {e:?}");
    assert_eq!(lines[2], who.sandbox_uid().to_string(), "{e:?}");
    assert_eq!(lines[3], "ready", "the instance's own /tmp: {e:?}");
    let procs: usize = lines[4].parse().unwrap();
    assert!(procs <= 8, "only the instance's processes: {e:?}");
    for cap in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(
            e.stdout.contains(&format!("{cap}:\t0000000000000000")),
            "{cap}: {e:?}"
        );
    }
    assert!(e.stdout.contains("NoNewPrivs:\t1"), "{e:?}");
    assert!(
        e.stdout.contains("Seccomp:\t2"),
        "the entered process runs under the filter: {e:?}"
    );
    // The exit status of the entered command comes back.
    run(who, &["enter", &name, "--", "/bin/sh", "-c", "exit 4"]).expect_code(4);

    // A second launch of the same name is refused while it runs.
    let dir = world_dir();
    let path = write_profile(dir.path(), "svc.rhai", SERVICE);
    let dup = run(who, &["exec", "--name", &name, &path]).expect_code(125);
    assert!(dup.stderr.contains("already running"), "{dup:?}");

    let inside = tree(pid);
    let s = run(who, &["stop", &name, "--timeout", "5"]).expect_code(0);
    assert!(
        s.stdout.contains("exited with status 9"),
        "SIGTERM reached the program: {s:?}"
    );
    let left: Vec<u32> = inside.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes left after stop: {left:?}");
    // A stopped instance stays listed as ended, with its logs, until `rm`.
    let r = row(who, &name).expect("a stopped instance stays listed");
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["exit_code"], 9, "{r}");
    assert!(run(who, &["logs", &name]).stdout.contains("got-term"));
    run(who, &["rm", &name]).expect_code(0);
    assert!(row(who, &name).is_none(), "rm forgets it");
});

// The sandbox's network namespace is made after the clone, by a child of
// the launcher while the sandbox side builds the root (launch/network.rs):
// the record still names the namespace the program is in, not the one the
// clone started in (the host's), and `moksha enter` lands there, lo up.
both!(the_record_names_the_network_the_program_is_in, |who| {
    let name = unique("netns");
    let _dir = start(who, &name, SERVICE);
    let text = std::fs::read_to_string(state_dir(who).join(format!("{name}.json"))).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    let recorded: Vec<(String, u64)> =
        serde_json::from_value(record["namespaces"].clone()).unwrap();
    let net = recorded
        .iter()
        .find(|(ns, _)| ns == "net")
        .unwrap_or_else(|| panic!("the record names a network namespace: {recorded:?}"))
        .1;
    let program = record["program_pid"].as_u64().unwrap();
    let link = |path: String| std::fs::read_link(path).unwrap().display().to_string();
    let programs = link(format!("/proc/{program}/ns/net"));
    assert_eq!(programs, format!("net:[{net}]"), "{record}");
    assert_ne!(programs, link("/proc/self/ns/net".into()), "not the host's");
    // Every namespace recorded is the program's.
    for (ns, ino) in &recorded {
        assert_eq!(
            link(format!("/proc/{program}/ns/{ns}")),
            format!("{ns}:[{ino}]")
        );
    }
    let e = run(
        who,
        &[
            "enter",
            &name,
            "--",
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/net; ip -o link",
        ],
    )
    .expect_code(0);
    let lines: Vec<&str> = e.stdout.lines().collect();
    assert_eq!(lines[0], programs, "{e:?}");
    assert_eq!(lines.len(), 2, "only lo: {e:?}");
    assert!(
        lines[1].starts_with("1: lo:") && lines[1].contains(",UP"),
        "{e:?}"
    );
});

// A foreground sandbox nobody named gets its record once it has run for a
// moment (a short command does not pay for writing it): `moksha ps` says
// nothing of it before, not even a warning, and lists it after; `enter`
// works from then on.
both!(
    a_foreground_sandbox_nobody_named_shows_in_ps_once_it_runs,
    |who| {
        let dir = world_dir();
        let path = write_profile(
            dir.path(),
            "fg.rhai",
            "import \"base\" as base;\nlet s = sandbox(\"fgstart\");\nbase::minimal(s);\n\
         s.exec([\"/bin/sh\", \"-c\", \"echo up > /tmp/up; sleep 30\"]);\n",
        );
        let mut launcher = moksha(who, &["exec", &path])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let row = listed_soon(who, &path, "fgstart-");
        assert_eq!(row["status"], "running", "{row}");
        let name = row["name"].as_str().unwrap().to_string();
        let e = run(who, &["enter", &name, "--", "cat", "/tmp/up"]).expect_code(0);
        assert_eq!(e.stdout, "up\n", "{e:?}");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(launcher.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let status = launcher.wait().unwrap();
        assert_eq!(status.code(), Some(143), "SIGTERM reached the program");
        assert!(files_gone(who, &name), "its files are removed when it ends");
    }
);

// When the record of a foreground sandbox nobody named cannot be written
// (its moment comes while the state directory refuses it), the warning
// comes once the sandbox has ended, after the program's output, not in the
// middle of it. Rootless: root writes in a read-only directory.
#[test]
fn a_record_written_later_that_fails_is_said_after_the_output() {
    use std::io::Read;
    use std::os::fd::OwnedFd;
    let who = Who::Nobody;
    let dir = world_dir();
    let path = write_profile(
        dir.path(),
        "late.rhai",
        "import \"base\" as base;\nlet s = sandbox(\"late\");\nbase::minimal(s);\n\
         s.exec([\"/bin/sh\", \"-c\", \"echo first; sleep 0.3; echo second\"]);\n",
    );
    // The record is written 20 ms after the program starts: the state
    // directory is made read-only once the lock exists, which can come
    // too late on a busy machine (then the record is there, and we try
    // again, in a state directory of its own: the missed try's lock and
    // record stay behind in the read-only one).
    for _ in 0..5 {
        let runtime = tempfile::Builder::new()
            .prefix("moksha-rt-")
            .tempdir()
            .unwrap();
        std::os::unix::fs::chown(runtime.path(), Some(who.uid()), Some(who.uid())).unwrap();
        std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let state = runtime.path().join("moksha");
        // Close-on-exec: other tests' children, started meanwhile, must
        // not hold its write end open.
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let write2: OwnedFd = write.try_clone().unwrap();
        let mut launcher = moksha(who, &["exec", &path])
            .env("XDG_RUNTIME_DIR", runtime.path())
            .stdout(std::process::Stdio::from(write))
            .stderr(std::process::Stdio::from(write2))
            .spawn()
            .unwrap();
        let locked = || {
            std::fs::read_dir(&state).is_ok_and(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".lock"))
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !locked() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o500)).unwrap();
        let status = launcher.wait().unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        drop(launcher);
        let mut out = String::new();
        std::fs::File::from(read).read_to_string(&mut out).unwrap();
        assert_eq!(status.code(), Some(0), "{out}");
        let Some(warned) = out.find("did not show in `moksha ps` while it ran") else {
            assert!(!out.contains("warning"), "{out}");
            continue;
        };
        let second = out.find("second").expect(&out);
        assert!(out.find("first").unwrap() < second, "{out}");
        assert!(
            second < warned,
            "the warning came before the program's output ended:\n{out}"
        );
        return;
    }
    panic!("in 5 tries, the record was always written before the state directory became read-only");
}

// Found in review: one that stops before that moment (a job stopped at
// once) is recorded when it stops, not only once it runs again; and one
// that may outlive its launcher (die_with_parent off) is recorded at once.
both!(
    a_stopped_or_lasting_sandbox_nobody_named_is_recorded_at_once,
    |who| {
        let dir = world_dir();
        let stopped = write_profile(
            dir.path(),
            "st.rhai",
            "import \"base\" as base;\nlet s = sandbox(\"fgstop\");\nbase::minimal(s);\n\
         s.new_session(false);\n\
         s.exec([\"/bin/sh\", \"-c\", \"kill -STOP $$; echo continued\"]);\n",
        );
        // In a process group of its own in our session, so that its group
        // is not orphaned: the kernel discards a stop signal to an orphaned
        // one, and the launcher would not stop with its program (as in CI).
        use std::os::unix::process::CommandExt;
        let launcher = moksha(who, &["exec", &stopped])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let row = listed_soon(who, &stopped, "fgstop-");
        let pid = nix::unistd::Pid::from_raw(launcher.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        let out = launcher.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "continued\n", "{row}");
        assert!(files_gone(who, row["name"].as_str().unwrap()));

        let lasting = write_profile(
            dir.path(),
            "la.rhai",
            "import \"base\" as base;\nlet s = sandbox(\"fglast\");\nbase::minimal(s);\n\
         s.die_with_parent(false);\ns.exec([\"/bin/sleep\", \"30\"]);\n",
        );
        let mut launcher = moksha(who, &["exec", &lasting]).spawn().unwrap();
        let started = Instant::now();
        let row = listed_soon(who, &lasting, "fglast-");
        let name = row["name"].as_str().unwrap().to_string();
        // Killed right away, it leaves a sandbox moksha can still stop.
        let _ = launcher.kill();
        let _ = launcher.wait();
        assert!(started.elapsed() < Duration::from_secs(10));
        run(who, &["stop", &name, "--timeout", "1"]).expect_code(0);
        run(who, &["rm", &name]).expect_code(0);
    }
);

/// The `ps --json` row of the sandbox of `profile` once it is listed;
/// `ps` says nothing meanwhile of an instance named `prefix`...
fn listed_soon(who: Who, profile: &str, prefix: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = run(who, &["ps", "--json"]).expect_code(0);
        // (Other tests' crafted records make ps speak of theirs.)
        assert!(
            !r.stderr.contains(prefix),
            "ps says nothing of a sandbox still starting: {r:?}"
        );
        let rows: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
        if let Some(row) = rows.into_iter().find(|r| r["profile"] == profile) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "ps lists the sandbox of {profile}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn files_gone(who: Who, name: &str) -> bool {
    !state_dir(who).join(format!("{name}.json")).exists()
        && !state_dir(who).join(format!("{name}.lock")).exists()
}

both!(detached_helpers_end_with_the_sandbox, |who: Who| {
    // Helpers that cannot watch the sandbox themselves ("started", "file")
    // go with a detached sandbox too: their guard stops them when it ends,
    // and removes their private directory.
    let name = unique("helped");
    // The helper writes only into its own directory (landlock keeps it
    // from writing elsewhere: docs/security.md, "Helpers").
    let out = state_dir(who).join(format!(".helpers-{name}/bg"));
    let record = "pwd > dir; echo $$ > pid; exec sleep 1000";
    let profile = format!(
        "import \"base\" as base;\nlet s = sandbox(\"helped\");\nbase::minimal(s);\n\
         s.helper(\"bg\", [\"/bin/sh\", \"-c\", {}], #{{ ready: \"started\" }});\n\
         s.helper(\"made\", [\"/bin/sh\", \"-c\", \"echo made > made; exec sleep 1000\"],\n\
         #{{ ready: \"file\", file: \"made\", expose: #{{ made: \"/run/made\" }} }});\n\
         s.exec([\"/bin/sh\", \"-c\", \"cat /run/made; exec sleep 1000\"]);\n",
        rhai_string(record)
    );
    let _dir = start(who, &name, &profile);
    eventually("the helper file reached the sandbox", || {
        run(who, &["logs", &name]).stdout.contains("made")
    });
    eventually("the started helper ran", || out.join("pid").exists());
    let pid: u32 = std::fs::read_to_string(out.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let helpers_dir = PathBuf::from(std::fs::read_to_string(out.join("dir")).unwrap().trim())
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        helpers_dir.starts_with(state_dir(who)),
        "{}",
        helpers_dir.display()
    );
    assert!(alive(pid) && helpers_dir.is_dir());
    run(who, &["stop", &name, "--timeout", "5"]).expect_code(0);
    eventually("the helpers stopped and their directory went", || {
        !alive(pid) && !helpers_dir.exists()
    });
});

both!(stop_kills_a_program_that_ignores_sigterm, |who| {
    let name = unique("stubborn");
    let _dir = start(who, &name, STUBBORN);
    eventually("it runs", || {
        run(who, &["logs", &name]).stdout.contains("up")
    });
    let pid = row(who, &name).unwrap()["pid"].as_u64().unwrap() as u32;
    let inside = tree(pid);
    assert!(inside.len() >= 3, "{inside:?}");
    let t = Instant::now();
    let s = run(who, &["stop", &name, "--timeout", "1"]).expect_code(0);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(s.stdout.contains("killed"), "{s:?}");
    let left: Vec<u32> = inside.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes left after stop: {left:?}");
});

both!(killed_supervisor_stays_listed_until_prune, |who| {
    let name = unique("killed");
    let _dir = start(who, &name, SERVICE);
    eventually("it wrote its output", || {
        run(who, &["logs", &name]).stdout.contains("to-stdout")
    });
    let pid = row(who, &name).unwrap()["pid"].as_u64().unwrap() as i32;
    // SAFETY: kill with a pid that ps just reported for our own instance.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    eventually("the supervisor is gone", || !alive(pid as u32));
    row(who, &name).expect("listed at the first look after its death");
    let r = row(who, &name).expect("and still at the second");
    assert_eq!(r["status"], "killed", "{r}");
    assert!(r["exit_code"].is_null() && r["pid"].is_null(), "{r}");
    let logs = run(who, &["logs", &name]).expect_code(0);
    assert!(
        logs.stdout.contains("to-stdout"),
        "the log survives: {logs:?}"
    );
    let table = run(who, &["ps"]).expect_code(0).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&name) && l.ends_with("killed")),
        "{table}"
    );
    // --prune lists it one last time, then forgets it.
    let pruned = run(who, &["ps", "--prune"]).expect_code(0).stdout;
    assert!(pruned.contains(&name), "{pruned}");
    assert!(row(who, &name).is_none(), "pruned");
    assert!(!state_dir(who).join(format!("{name}.json")).exists());
    let gone = run(who, &["logs", &name]);
    assert!(gone.stderr.contains("no such instance"), "{gone:?}");
});

const JOB: &str = "import \"base\" as base;\nlet s = sandbox(\"job\");\nbase::minimal(s);\n\
    s.exec([\"/bin/sh\", \"-c\", \"echo job-out; echo job-err >&2; exit 3\"]);\n";

both!(ended_instances_keep_status_and_logs_until_rm, |who| {
    let name = unique("ended");
    let _job = start(who, &name, JOB);
    eventually("the job ended", || {
        row(who, &name).is_some_and(|r| r["status"] == "exited")
    });
    // Every look shows it, with its status, end time and logs.
    for _ in 0..2 {
        let r = row(who, &name).expect("an ended instance stays listed");
        assert_eq!(r["exit_code"], 3, "{r}");
        assert!(r["pid"].is_null(), "an ended instance has no pid: {r}");
        let (started, ended) = (
            r["started_at"].as_u64().unwrap(),
            r["ended_at"].as_u64().unwrap(),
        );
        assert!(ended >= started && ended <= started + 60, "{r}");
        let logs = run(who, &["logs", &name]).expect_code(0);
        assert!(logs.stdout.contains("job-out"), "{logs:?}");
        assert!(logs.stderr.contains("job-err"), "{logs:?}");
    }
    let table = run(who, &["ps"]).expect_code(0).stdout;
    let line = table.lines().find(|l| l.starts_with(&name)).unwrap();
    assert!(
        line.contains("exited (3)") && line.ends_with(" ago"),
        "{table}"
    );
    // stop and enter say it ended, and keep it.
    let s = run(who, &["stop", &name]).expect_code(1);
    assert!(s.stderr.contains("exited with status 3"), "{s:?}");
    run(who, &["enter", &name, "--", "true"]).expect_code(1);
    assert!(row(who, &name).is_some());

    // A new run under the name replaces it: new record, fresh logs.
    let _svc = start(who, &name, SERVICE);
    let r = row(who, &name).unwrap();
    assert_eq!(r["status"], "running", "{r}");
    assert!(r["exit_code"].is_null() && r["ended_at"].is_null(), "{r}");
    eventually("the new run wrote its output", || {
        run(who, &["logs", &name]).stdout.contains("to-stdout")
    });
    let logs = run(who, &["logs", &name]).expect_code(0);
    assert!(
        !logs.stdout.contains("job-out"),
        "old logs are gone: {logs:?}"
    );
    let busy = run(who, &["rm", &name]).expect_code(1);
    assert!(busy.stderr.contains("is running"), "{busy:?}");
    run(who, &["stop", &name, "--timeout", "5"]).expect_code(0);

    run(who, &["rm", &name]).expect_code(0);
    assert!(row(who, &name).is_none());
    for ext in ["json", "lock", "out", "err"] {
        assert!(
            !state_dir(who).join(format!("{name}.{ext}")).exists(),
            "{ext}"
        );
    }
    let gone = run(who, &["logs", &name]);
    assert!(gone.stderr.contains("no such instance"), "{gone:?}");
    run(who, &["rm", &name]).expect_code(1);
});

both!(ps_columns_stay_aligned_with_long_profile_paths, |who| {
    let long = unique("a-sandbox-with-a-rather-long-instance-name");
    let short = unique("s");
    let dir = world_dir();
    let deep = dir
        .path()
        .join("profiles-kept-in-a-deeply-nested/directory-with-long-names");
    std::fs::create_dir_all(&deep).unwrap();
    for d in [deep.parent().unwrap(), &deep] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = write_profile(&deep, "my-service-profile.rhai", SERVICE);
    let mut started = Vec::new();
    for name in [&long, &short] {
        run(who, &["exec", "--detach", "--name", name, &path]).expect_code(0);
        started.push(Started {
            who,
            name: name.clone(),
            _dir: world_dir(),
        });
    }
    let check = |args: &[&str], profile_shown: &str| {
        let out = run(who, args).expect_code(0).stdout;
        let header = out.lines().next().unwrap();
        let status_at = header.find("STATUS").unwrap();
        let pid_end = header.find("PID").unwrap() + 3;
        for name in [&long, &short] {
            let line = out
                .lines()
                .find(|l| l.starts_with(name.as_str()))
                .unwrap_or_else(|| panic!("{name} in:\n{out}"));
            assert_eq!(
                line.get(status_at..status_at + 7),
                Some("running"),
                "STATUS aligned:\n{out}"
            );
            let pid = line[..pid_end].rsplit(' ').next().unwrap();
            assert!(pid.parse::<u32>().is_ok(), "PID aligned ({pid:?}):\n{out}");
            assert!(line.contains(profile_shown), "{profile_shown}:\n{out}");
        }
        out
    };
    let table = check(&["ps"], " my-service-profile ");
    assert!(
        !table.contains(&path),
        "the table shows the short name:\n{table}"
    );
    check(&["ps", "-l"], &path);
    assert_eq!(row(who, &long).unwrap()["profile"], path.as_str());
});

#[test]
fn another_user_cannot_see_enter_stop_or_read_logs() {
    let owner = Who::Nobody;
    let other = Who::Other(54321);
    let name = unique("private");
    let _dir = start(owner, &name, SERVICE);
    eventually("output", || {
        run(owner, &["logs", &name]).stdout.contains("to-stdout")
    });
    assert!(
        row(other, &name).is_none(),
        "another uid's ps does not list it"
    );
    for args in [
        vec!["enter", &name, "--", "true"],
        vec!["stop", &name],
        vec!["logs", &name],
    ] {
        let r = run(other, &args);
        assert_ne!(r.code, 0, "{args:?} must fail for another uid: {r:?}");
        assert!(
            r.stderr.contains("no instance") || r.stderr.contains("no logs"),
            "{args:?}: {r:?}"
        );
    }
    // Pointing at the owner's state directory does not help: it is private.
    let mut cmd = moksha(other, &["ps"]);
    cmd.env("XDG_RUNTIME_DIR", state_dir(owner).parent().unwrap());
    let r = Run::from(cmd.output().unwrap());
    assert!(!r.stdout.contains(&name), "{r:?}");
    let mode = std::fs::metadata(state_dir(owner))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    // Still running for its owner.
    assert_eq!(row(owner, &name).unwrap()["status"], "running");
    run(owner, &["stop", &name, "--timeout", "2"]).expect_code(0);
}

// An instance still starting (its lock held, no record yet: a foreground
// sandbox nobody named in its first 20 ms) is followed by `logs -f` until
// its lock goes, not left at once. The lock is held by flock here, so the
// instance stays "starting" as long as the test needs.
both!(logs_follow_an_instance_that_is_still_starting, |who| {
    let dir = state_dir(who);
    run(who, &["ps"]).expect_code(0);
    let name = unique("starting");
    let lock = dir.join(format!("{name}.lock"));
    let net = dir.join(format!("{name}.net"));
    // Whatever happens, the processes are killed and the files removed.
    let mut left = Leftovers {
        children: Vec::new(),
        files: vec![net.clone(), lock.clone()],
    };
    std::fs::write(&net, "allow example.org:443\n").unwrap();
    std::os::unix::fs::chown(&net, Some(who.uid()), Some(who.uid())).unwrap();
    let mut holder = as_user(who, "flock");
    holder.arg(&lock).args(["sleep", "30"]);
    left.children.push(holder.spawn().unwrap());
    eventually("the lock file exists", || lock.exists());
    let follow = moksha(who, &["logs", &name, "--net", "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    left.children.push(follow);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        left.children[1].try_wait().unwrap().is_none(),
        "logs -f left an instance that is starting"
    );
    // flock and its child, sleep, which holds the lock too.
    let started = Instant::now();
    let mut holder = left.children.remove(0);
    kill_tree(&mut holder);
    let out = left.children.remove(0).wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "logs -f went on after the lock went"
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("allow example.org:443"));
});

/// What a test started and made, killed and removed when it is dropped
/// (also when an assertion fails).
struct Leftovers {
    children: Vec<std::process::Child>,
    files: Vec<PathBuf>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for child in &mut self.children {
            kill_tree(child);
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// SIGKILL to `child` and everything below it, then `child` reaped.
fn kill_tree(child: &mut std::process::Child) {
    for pid in tree(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.wait();
}

both!(corrupt_truncated_and_crafted_records_are_ignored, |who| {
    let dir = state_dir(who);
    // Make sure the directory exists with the right owner.
    run(who, &["ps"]).expect_code(0);
    let write = |name: &str, text: &str| {
        let p = dir.join(format!("{name}.json"));
        std::fs::write(&p, text).unwrap();
        std::os::unix::fs::chown(&p, Some(who.uid()), Some(who.uid())).unwrap();
    };
    // An unrelated process of the same user, holding a lock file of the
    // right name, so liveness alone would say "running".
    let victim_name = unique("crafted");
    let lock = dir.join(format!("{victim_name}.lock"));
    let mut holder = as_user(who, "flock");
    holder.arg(&lock).args(["sleep", "30"]);
    let mut holder = holder.spawn().unwrap();
    eventually("the lock file exists", || lock.exists());
    std::thread::sleep(Duration::from_millis(200));
    let sleep_pid = tree(holder.id()).into_iter().last().unwrap();
    let start = std::fs::read_to_string(format!("/proc/{sleep_pid}/stat")).unwrap();
    let start: u64 = start
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let ns = |n: &str| {
        std::fs::metadata(format!("/proc/{sleep_pid}/ns/{n}"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap()
    };
    let plan = run(who, &["plan", "--json", "demo"]).expect_code(0).stdout;
    let crafted = format!(
        r#"{{"name":"{victim_name}","profile":"x","uid":{uid},"supervisor_pid":{sleep_pid},"supervisor_start":{start},"program_pid":{sleep_pid},"program_start":{start},"namespaces":[["user",{u}],["pid",{p}]],"started_at":0,"detached":true,"stdout_log":"/etc/shadow","stderr_log":null,"plan":{plan}}}"#,
        uid = who.uid(),
        u = ns("user"),
        p = ns("pid"),
    );
    write(&victim_name, &crafted);
    // The same record without a lock: listed as ended, never signalled.
    let unlocked = unique("unlocked");
    write(&unlocked, &crafted.replace(&victim_name, &unlocked));
    let corrupt = unique("corrupt");
    write(&corrupt, "{ not json");
    let truncated = unique("truncated");
    write(
        &truncated,
        &crafted[..crafted.len() / 2].replace(&victim_name, &truncated),
    );

    let r = run(who, &["ps"]).expect_code(0);
    assert!(
        r.stderr
            .contains(&format!("ignoring instance {victim_name}")),
        "{r:?}"
    );
    assert!(r.stderr.contains("not a moksha supervisor"), "{r:?}");
    assert!(!r.stdout.contains(&victim_name), "{r:?}");
    for args in [
        vec!["stop", victim_name.as_str(), "--timeout", "1"],
        vec!["enter", &victim_name, "--", "true"],
    ] {
        let out = run(who, &args);
        assert_ne!(out.code, 0, "{args:?}: {out:?}");
        assert!(out.stderr.contains("cannot be used"), "{args:?}: {out:?}");
    }
    let listed = row(who, &unlocked).expect("an unlocked record is an ended instance");
    assert_eq!(listed["status"], "killed", "{listed}");
    assert!(listed["pid"].is_null(), "{listed}");
    for args in [
        vec!["stop", unlocked.as_str(), "--timeout", "1"],
        vec!["enter", &unlocked, "--", "true"],
    ] {
        let out = run(who, &args);
        assert!(out.stderr.contains("is not running"), "{args:?}: {out:?}");
    }
    run(who, &["rm", &unlocked]).expect_code(0);
    assert!(alive(sleep_pid), "the unrelated process was not signalled");
    // Logs come only from the state directory, never from a path a record names.
    let l = run(who, &["logs", &victim_name]);
    assert!(!l.stdout.contains("root:"), "{l:?}");
    // Corrupt and truncated records without a live lock are cleaned.
    run(who, &["ps"]).expect_code(0);
    assert!(!dir.join(format!("{corrupt}.json")).exists());
    assert!(!dir.join(format!("{truncated}.json")).exists());
    holder.kill().unwrap();
    holder.wait().unwrap();
    let _ = std::fs::remove_file(dir.join(format!("{victim_name}.json")));
    let _ = std::fs::remove_file(&lock);
});

both!(two_launches_of_one_name_exactly_one_wins, |who| {
    let name = unique("race");
    let dir = world_dir();
    let path = write_profile(dir.path(), "svc.rhai", SERVICE);
    let spawn = || {
        moksha(who, &["exec", "--detach", "--name", &name, &path])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        Run::from(a.wait_with_output().unwrap()),
        Run::from(b.wait_with_output().unwrap()),
    );
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(codes, [0, 125], "{a:?} {b:?}");
    let loser = if a.code == 125 { &a } else { &b };
    assert!(loser.stderr.contains("already running"), "{loser:?}");
    run(who, &["stop", &name, "--timeout", "2"]).expect_code(0);
});

/// Without landlock, a program that reads every process's environment
/// in a loop: it sees its own sandbox's (a dumpable sibling), proving the
/// reads work; it never sees the caller's environment that `moksha enter`
/// holds until it executes the command.
const ENVIRON_WATCHER: &str =
    "import \"base\" as base;\nlet s = sandbox(\"watch\");\nbase::minimal(s);\n\
    s.landlock(#{ enabled: false });\ns.env(\"OWN_MARK\", \"own-visible\");\n\
    s.exec([\"/bin/sh\", \"-c\", \"sleep 1000 & while :; do \
    grep -h -a -o -e own-visible -e enter-secret /proc/[0-9]*/environ >> /tmp/seen 2>/dev/null; \
    done\"]);\n";

both!(
    entering_hides_the_callers_environment_without_landlock,
    |who| {
        let name = unique("watch");
        let _s = start(who, &name, ENVIRON_WATCHER);
        for _ in 0..30 {
            moksha(who, &["enter", &name, "--", "true"])
                .env("MOKSHA_TEST_SECRET", "enter-secret")
                .output()
                .unwrap();
        }
        let seen = run(who, &["enter", &name, "--", "sort", "-u", "/tmp/seen"]).expect_code(0);
        assert!(
            seen.stdout.contains("own-visible"),
            "the watcher reads: {seen:?}"
        );
        assert!(!seen.stdout.contains("enter-secret"), "{seen:?}");
    }
);

both!(a_sandbox_cannot_enter_another, |who| {
    // Sandbox A gets the moksha binary and the state directory, and tries
    // to enter sandbox B of the same user.
    let target = unique("target");
    let _dir = start(who, &target, SERVICE);
    let bin_dir = moksha_bin()
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let state = state_dir(who).to_string_lossy().into_owned();
    let extra = format!(
        "s.bind({}, \"/mk\");\ns.bind({}, {}, #{{ rw: true }});",
        rhai_string(&bin_dir),
        rhai_string(&state),
        rhai_string(&state)
    );
    let r = sh(
        who,
        &extra,
        &format!("/mk/moksha enter {target} -- /bin/sh -c 'echo INSIDE-B'; echo rc=$?"),
    );
    assert!(!r.stdout.contains("INSIDE-B"), "{r:?}");
    assert!(
        r.stdout.contains("rc=1") || r.stdout.contains("rc=125"),
        "{r:?}"
    );
    run(who, &["stop", &target, "--timeout", "2"]).expect_code(0);
});

/// A `/tmp/moksha-UID` made by root before the user's first run; removed
/// when the test ends.
struct Squatted(PathBuf);

impl Drop for Squatted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_state_dir_taken_by_another_user_falls_back_to_a_private_one() {
    // A uid of its own, so that the other tests' /tmp/moksha-65534 stays usable.
    let who = Who::Other(54323);
    let taken = state_dir(who);
    let _ = std::fs::remove_dir_all(&taken);
    std::fs::create_dir(&taken).unwrap();
    std::fs::set_permissions(&taken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _squatted = Squatted(taken.clone());
    let root = world_dir();
    let home = owned_dir(root.path(), "home", who);
    let profile = write_profile(root.path(), "svc.rhai", SERVICE);
    let name = unique("fallback");
    let mk = |args: &[&str]| {
        let mut cmd = moksha(who, args);
        cmd.env("HOME", &home);
        Run::from(cmd.output().unwrap())
    };
    struct Stop<'a>(&'a dyn Fn(&[&str]) -> Run, &'a str);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            (self.0)(&["stop", self.1, "--timeout", "1"]);
        }
    }
    let fallback = home.join(".local/state/moksha/run");
    let note = format!("using {} instead", fallback.display());

    let r = mk(&["exec", "--detach", "--name", &name, &profile]).expect_code(0);
    let _stop = Stop(&mk, &name);
    assert_eq!(r.stdout.trim(), name, "{r:?}");
    assert!(
        r.stderr.contains("/tmp/moksha-54323 is owned by uid 0") && r.stderr.contains(&note),
        "a one-line note says where: {r:?}"
    );
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let meta = std::fs::symlink_metadata(&fallback).unwrap();
    assert!(meta.is_dir());
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), who.uid());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert!(fallback.join(format!("{name}.json")).exists());
    assert!(
        std::fs::read_dir(&taken).unwrap().next().is_none(),
        "nothing was written into the taken directory"
    );

    let ps = mk(&["ps", "--json"]).expect_code(0);
    assert!(ps.stderr.contains(&note), "{ps:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&ps.stdout).unwrap();
    let row = rows.iter().find(|r| r["name"] == name.as_str()).unwrap();
    assert_eq!(row["status"], "running", "{row}");
    eventually("its output is logged", || {
        mk(&["logs", &name]).stdout.contains("to-stdout")
    });
    mk(&["enter", &name, "--", "/bin/sh", "-c", "exit 5"]).expect_code(5);
    let s = mk(&["stop", &name, "--timeout", "5"]).expect_code(0);
    assert!(s.stdout.contains("exited with status 9"), "{s:?}");
    mk(&["rm", &name]).expect_code(0);
    assert!(!fallback.join(format!("{name}.json")).exists());

    // Without a usable home either, the error says what to do.
    let mut cmd = moksha(who, &["ps"]);
    cmd.env("HOME", "/nonexistent");
    let r = Run::from(cmd.output().unwrap()).expect_code(1);
    assert!(
        r.stderr.contains("refusing to use it") && r.stderr.contains("XDG_RUNTIME_DIR"),
        "{r:?}"
    );
}
