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
        let work = owned_dir(dir.path(), "work", who);
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
        let work = owned_dir(dir.path(), "work", who);
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
    let screen = t.expect(&format!("tick-{}", stopped_at + 3), 10);
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
