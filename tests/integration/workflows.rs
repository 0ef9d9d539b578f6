//! Development workflows: a program that runs what it wrote (a build that
//! runs its output, a git hook) needs an executable bind; writable binds
//! are not executable otherwise (write-xor-execute), and the refusal says
//! which bind and which option.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;

/// A minimal root with `dir` bound read-write (with `opts`) and the
/// working directory there, running `script`.
fn in_dir(dir: &str, opts: &str, script: &str) -> String {
    sh_profile(
        &format!("s.bind({dir:?}, #{{ rw: true{opts} }});\ns.cwd({dir:?});"),
        script,
    )
}

both!(
    a_writable_bind_runs_what_it_wrote_only_with_exec,
    |who: Who| {
        let dir = world_dir();
        let work = sandbox_dir(dir.path(), "work", who);
        let work = work.to_string_lossy().into_owned();
        let script = "printf '#!/bin/sh\\necho built-and-ran\\n' > hello; chmod +x hello; ./hello";

        let r = exec_profile(who, &in_dir(&work, "", script), &[]);
        assert_ne!(r.code, 0, "write-xor-execute by default: {r:?}");
        assert!(r.stderr.contains("Permission denied"), "{r:?}");

        let r = exec_profile(who, &in_dir(&work, ", exec: true", script), &[]).expect_code(0);
        assert_eq!(r.stdout.trim(), "built-and-ran");
    }
);

both!(
    an_exec_refused_on_a_writable_bind_names_the_bind_and_the_option,
    |who: Who| {
        let dir = world_dir();
        let work = sandbox_dir(dir.path(), "work", who);
        let program = work.join("prog");
        std::fs::write(&program, "#!/bin/sh\necho ran\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let work = work.to_string_lossy().into_owned();
        let text = format!(
            "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         s.bind({work:?}, #{{ rw: true }});\ns.cwd({work:?});\ns.exec([\"./prog\"]);\n"
        );
        let r = exec_profile(who, &text, &[]).expect_code(126);
        assert!(
            r.stderr.contains(&format!("read-write bind of {work}"))
                && r.stderr.contains("test.rhai:4:3")
                && r.stderr.contains("exec: true"),
            "{r:?}"
        );
        let plan = Run::from(
            moksha(who, &["plan", &write_profile(dir.path(), "p.rhai", &text)])
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert!(
            plan.stdout.contains("read-write, not executable"),
            "{}",
            plan.stdout
        );
    }
);

// ---- job control: Ctrl-Z, fg, bg through the launcher ---------------------

/// An interactive bash on a terminal, as a person uses moksha.
fn shell_at_a_terminal(who: Who) -> Pty {
    let mut cmd = as_user(who, "/bin/bash");
    cmd.args(["--norc", "--noprofile", "-i"])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", if who == Who::Root { "/root" } else { "/" })
        .env("TERM", "dumb")
        .env("PS1", "PROMPT$ ")
        .current_dir("/");
    let mut t = Pty::spawn(cmd);
    t.expect("PROMPT$ ", 20);
    t
}

/// The highest N of the `tick-N` lines in `text`.
fn last_tick(text: &str) -> u32 {
    text.split("tick-")
        .skip(1)
        .filter_map(|rest| {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            n.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// Types Ctrl-Z as a person would: not at the instant a tick was printed.
/// (dash runs `sleep` with vfork; a stop that lands between its vfork and
/// the child's exec leaves dash waiting for a stopped child, unstoppable
/// itself until continued — dash's and the kernel's behaviour, with or
/// without a sandbox. A test that types right after reading a tick hits
/// that window.)
fn ctrl_z(t: &mut Pty) {
    std::thread::sleep(std::time::Duration::from_millis(150));
    t.send("\x1a");
}

/// Ctrl-Z stops the sandboxed program and gives the shell its prompt back;
/// `fg` continues it in the foreground (Ctrl-C then reaches it), `bg` in the
/// background (`kill %1` ends it through moksha).
fn job_control(who: Who, new_session: bool) {
    let dir = world_dir();
    let profile = write_profile(
        dir.path(),
        "ticks.rhai",
        &sh_profile(
            &format!("s.new_session({new_session});"),
            "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.3; done",
        ),
    );
    let moksha = moksha_bin().display().to_string();
    let mut t = shell_at_a_terminal(who);
    t.send(&format!("{moksha} exec {profile}\n"));
    t.expect("tick-3", 20);
    ctrl_z(&mut t);
    let screen = t.expect("Stopped", 10);
    let stopped_at = last_tick(&screen);
    // The prompt is back, and the program does not run meanwhile.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    t.send("echo prompt-is-back\n");
    let screen = t.expect("prompt-is-back\r\n", 10);
    assert!(
        last_tick(&screen) <= stopped_at + 1,
        "the program went on while stopped:\n{screen}"
    );
    // fg: it goes on where it was, in the foreground.
    t.send("fg\n");
    t.expect(&format!("tick-{}", stopped_at + 3), 10);
    t.send("\x03");
    t.send("echo rc=$?\n");
    t.expect("rc=130", 10);
    // bg: it goes on in the background while the shell takes commands.
    let before = t.seen.len();
    t.send(&format!("{moksha} exec {profile}\n"));
    t.expect_after(before, "tick-3", 20);
    ctrl_z(&mut t);
    t.expect_after(before, "Stopped", 10);
    let mark = t.seen.len();
    t.send("bg\n");
    let screen = t.expect_after(mark, "tick-", 10);
    let resumed = last_tick(&screen[mark..]);
    t.expect_after(mark, &format!("tick-{}", resumed + 3), 10);
    // bash tells of the job's end at the prompt after it.
    t.send("kill %1; sleep 1\n");
    t.send("true\n");
    t.expect_after(mark, "Exit 143", 10);
    t.send("exit\n");
    t.wait();
}

both!(
    ctrl_z_fg_and_bg_with_a_program_of_its_own_session,
    |who: Who| { job_control(who, true) }
);

both!(
    ctrl_z_fg_and_bg_with_a_program_sharing_the_terminal,
    |who: Who| { job_control(who, false) }
);

// ---- the shipped profiles, doing what their headers promise ---------------

/// Runs `moksha exec ARGS` as `who` in `dir`.
fn exec_in(who: Who, dir: &std::path::Path, args: &[&str]) -> Run {
    let mut full = vec!["exec"];
    full.extend_from_slice(args);
    Run::from(moksha(who, &full).current_dir(dir).output().unwrap())
}

/// Runs a host program as `who` in `dir` (to set up a repository).
fn host(who: Who, dir: &std::path::Path, program: &str, args: &[&str]) -> Run {
    let r = Run::from(
        // As the project's owner: the sandbox's identity (nobody for root).
        as_user(owner_of_project(who), program)
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{program} {args:?}: {r:?}");
    r
}

/// Who owns a project the sandboxes of `who` write: `who`, or nobody for
/// root (a root launch runs the program as nobody).
fn owner_of_project(who: Who) -> Who {
    if who == Who::Root {
        Who::Nobody
    } else {
        who
    }
}

/// A directory the sandboxes of `who` may write, under a world-readable
/// temporary one.
fn project(who: Who) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = world_dir();
    let work = sandbox_dir(dir.path(), "project", who);
    (dir, work)
}

fn write(path: &std::path::Path, text: &str, who: Who) {
    std::fs::write(path, text).unwrap();
    let id = Some(who.sandbox_uid());
    std::os::unix::fs::chown(path, id, id).unwrap();
}

both!(build_runs_a_crate_with_a_build_script, |who: Who| {
    let (_dir, work) = project(who);
    std::fs::create_dir(work.join("src")).unwrap();
    let id = Some(who.sandbox_uid());
    std::os::unix::fs::chown(work.join("src"), id, id).unwrap();
    write(
        &work.join("Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2018\"\nbuild = \"build.rs\"\n",
        who,
    );
    write(
        &work.join("build.rs"),
        r#"fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(format!("{}/greeting.txt", out), "made by build.rs").unwrap();
}
"#,
        who,
    );
    write(
        &work.join("src/main.rs"),
        "fn main() {\n    println!(\"{}\", include_str!(concat!(env!(\"OUT_DIR\"), \"/greeting.txt\")));\n}\n",
        who,
    );
    let r = exec_in(
        who,
        &work,
        &["build", "--", "cargo", "run", "--offline", "--quiet"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "made by build.rs", "{r:?}");
});

both!(build_runs_a_makefile_that_runs_what_it_built, |who: Who| {
    let (_dir, work) = project(who);
    write(
        &work.join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"compiled and ran\"); return 0; }\n",
        who,
    );
    write(
        &work.join("Makefile"),
        "run: hello\n\t./hello\nhello: hello.c\n\tcc -o hello hello.c\n",
        who,
    );
    let r = exec_in(who, &work, &["build"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("compiled and ran"), "{r:?}");
});

/// A repository with one commit, owned by `who`, with a local identity.
fn repository(who: Who, work: &std::path::Path) {
    host(who, work, "git", &["init", "-q", "-b", "main"]);
    host(who, work, "git", &["config", "user.name", "Test"]);
    host(
        who,
        work,
        "git",
        &["config", "user.email", "test@example.org"],
    );
    write(&work.join("a.txt"), "a\n", who);
    host(who, work, "git", &["add", "a.txt"]);
    host(who, work, "git", &["commit", "-q", "-m", "first"]);
}

both!(git_commit_runs_the_repositorys_hook, |who: Who| {
    let (_dir, work) = project(who);
    repository(who, &work);
    let hook = work.join(".git/hooks/pre-commit");
    write(&hook, "#!/bin/sh\necho hook-ran > hook-output\n", who);
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    write(&work.join("b.txt"), "b\n", who);
    host(who, &work, "git", &["add", "b.txt"]);
    let r = exec_in(who, &work, &["git", "--", "commit", "-q", "-m", "second"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(work.join("hook-output")).unwrap(),
        "hook-ran\n"
    );
    let log = host(who, &work, "git", &["log", "--format=%s"]);
    assert_eq!(log.stdout, "second\nfirst\n");
});

both!(
    git_works_from_a_subdirectory_and_in_a_worktree,
    |who: Who| {
        let (dir, work) = project(who);
        repository(who, &work);
        let sub = work.join("deep/sub");
        std::fs::create_dir_all(&sub).unwrap();
        for d in [work.join("deep"), sub.clone()] {
            let id = Some(who.sandbox_uid());
            std::os::unix::fs::chown(&d, id, id).unwrap();
        }
        let r = exec_in(who, &sub, &["git", "--", "status", "--short", "--branch"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stdout.starts_with("## main"), "{r:?}");

        // A worktree beside the repository: its .git file names the main
        // repository's git directory, which the profile exposes too.
        let trees = sandbox_dir(dir.path(), "trees", who);
        let tree = trees.join("side");
        host(
            who,
            &work,
            "git",
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "side",
                tree.to_str().unwrap(),
            ],
        );
        write(&tree.join("c.txt"), "c\n", who);
        let r = exec_in(who, &tree, &["git", "--", "add", "c.txt"]);
        assert_eq!(r.code, 0, "{r:?}");
        let r = exec_in(
            who,
            &tree,
            &["git", "--", "commit", "-q", "-m", "in the worktree"],
        );
        assert_eq!(r.code, 0, "{r:?}");
        let log = host(who, &work, "git", &["log", "--format=%s", "side"]);
        assert_eq!(log.stdout, "in the worktree\nfirst\n");
    }
);

#[test]
fn a_git_file_naming_the_home_or_a_non_repository_exposes_nothing() {
    // A cloned (or unpacked) project can ship a `.git` file of its own:
    // whatever it names must be a git directory, never the home or /.
    let who = Who::Root;
    let (dir, work) = project(who);
    // A home whose dotfiles are a git repository.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".git/objects")).unwrap();
    std::fs::write(home.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let dotfiles = format!("{}/.git", home.display());
    for target in ["/root", "/", "/etc", dotfiles.as_str()] {
        write(&work.join(".git"), &format!("gitdir: {target}\n"), who);
        let r = Run::from(
            moksha(who, &["plan", "git"])
                .current_dir(&work)
                .env("HOME", &home)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        // The only writable bind is the project itself.
        let writable: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| l.contains(" bind ") && l.contains("read-write"))
            .collect();
        let own = format!("bind       {}  read-write", work.display());
        assert!(
            writable.len() == 1 && writable[0].contains(&own),
            "{target}: {writable:#?}"
        );
    }
}

// ---- the terminal inside ----------------------------------------------------

/// `moksha ARGS` as `who` on a terminal of its own.
fn on_a_terminal(who: Who, args: &[&str]) -> Pty {
    let mut cmd = moksha(who, args);
    cmd.env("TERM", "dumb");
    Pty::spawn(cmd)
}

both!(the_terminal_has_a_name_inside, |who: Who| {
    let dir = world_dir();
    for session in ["true", "false"] {
        let profile = write_profile(
            dir.path(),
            &format!("tty-{session}.rhai"),
            &sh_profile(&format!("s.new_session({session});"), "tty; echo rc=$?"),
        );
        let mut t = on_a_terminal(who, &["exec", &profile]);
        let screen = t.expect("rc=", 20);
        assert!(screen.contains("/dev/console\r\nrc=0"), "{screen}");
        assert_eq!(t.wait(), 0);
    }
});

both!(
    leaving_an_entered_shell_gives_the_terminal_back_quietly,
    |who: Who| {
        let dir = world_dir();
        let profile = write_profile(
            dir.path(),
            "svc.rhai",
            &sh_profile("", "while :; do sleep 1; done"),
        );
        let name = format!("enter-tty-{}-{}", std::process::id(), who.uid());
        Run::from(
            moksha(who, &["exec", "--detach", "--name", &name, &profile])
                .output()
                .unwrap(),
        )
        .expect_code(0);
        let mut t = on_a_terminal(who, &["enter", &name, "--", "/bin/sh", "-i"]);
        // The prompt is "# " or "$ " depending on the uid inside.
        t.expect(" ", 20);
        t.send("sleep 0.1; echo inside\n");
        t.expect("inside", 10);
        t.send("exit\n");
        let screen = t.rest(10);
        let code = t.wait();
        let _ = moksha(who, &["stop", &name, "--timeout", "1"]).output();
        let _ = moksha(who, &["rm", &name]).output();
        assert_eq!(code, 0, "{screen}");
        // The shell could give the terminal back to the group it started in.
        assert!(!screen.contains("Cannot set tty process group"), "{screen}");
    }
);

both!(
    a_program_that_leaves_the_terminal_raw_does_not_break_it,
    |who: Who| {
        let dir = world_dir();
        let out = sandbox_dir(dir.path(), "out", who);
        let moksha = moksha_bin().display().to_string();
        let mut t = shell_at_a_terminal(who);
        for session in ["true", "false"] {
            let profile = write_profile(
                dir.path(),
                &format!("raw-{session}.rhai"),
                &sh_profile(
                    &format!("s.new_session({session});"),
                    "stty raw -echo; echo left-it-raw",
                ),
            );
            let before = out.join(format!("before-{session}"));
            let after = out.join(format!("after-{session}"));
            t.send(&format!(
                "stty -g > {b}; {moksha} exec {profile}; stty -g > {a}; \
             cmp -s {b} {a} && echo settings-KE''PT-{session} || echo settings-CHA''NGED\n",
                b = before.display(),
                a = after.display()
            ));
            // (The typed line says KE''PT: only the output says KEPT.)
            let screen = t.expect(&format!("settings-KEPT-{session}"), 20);
            assert!(!screen.contains("settings-CHANGED"), "{screen}");
        }
        t.send("exit\n");
        t.wait();
    }
);

// ---- sharing the host's PID namespace ----------------------------------------

both!(
    what_the_program_leaves_behind_ends_with_the_sandbox_without_a_pid_namespace,
    |who: Who| {
        // No PID namespace whose end would kill them: a daemon the program
        // started (its own session, reparented) must still end with the sandbox,
        // and so must one that has a child of its own when it is killed (that
        // child becomes the supervisor's only then: a wait for any child used
        // to wait for it, and the sandbox never ended).
        // (Root's and nobody's runs both leave nobody's processes: each its
        // own sleep.)
        let secs = if who == Who::Root { 1013 } else { 1014 };
        let text = format!(
            "let s = sandbox(\"t\");\ns.share([\"pid\"]);\ns.bind(\"/usr\");\n\
                s.symlink(\"usr/bin\", \"/bin\");\ns.symlink(\"usr/lib\", \"/lib\");\n\
                s.symlink(\"usr/lib64\", \"/lib64\");\ns.tmpfs(\"/tmp\");\ns.dev(\"/dev\");\n\
                s.exec([\"/bin/sh\", \"-c\", \"setsid sleep {secs} >/dev/null 2>&1 & echo $!; (sleep {secs} >/dev/null 2>&1 &) ; \
                setsid sh -c 'sleep {secs} & wait' >/dev/null 2>&1 & sleep 0.3\"]);\n"
        );
        // Within a bound: the bug this guards against was a sandbox that
        // never ended.
        let dir = world_dir();
        let path = write_profile(dir.path(), "test.rhai", &text);
        let child = moksha(who, &["exec", &path])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (out, ended) = wait_within(child, std::time::Duration::from_secs(30));
        assert!(
            ended,
            "moksha exec did not end within 30 s of its program's end"
        );
        let r = Run::from(out).expect_code(0);
        let daemon: u32 = r.stdout.trim().parse().unwrap_or_else(|_| panic!("{r:?}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let alive = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        };
        while alive(daemon) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!alive(daemon), "pid {daemon} outlived the sandbox");
        // Nothing else of it either: no `sleep SECS` of this uid is left.
        let left = std::process::Command::new("pgrep")
            .args([
                "-u",
                &who.sandbox_uid().to_string(),
                "-f",
                &format!("^sleep {secs}$"),
            ])
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "left: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
);
