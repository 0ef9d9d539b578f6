//! Text and files a profile, a library or a sandbox controls are data: shown
//! escaped, never interpreted by the terminal (no raw ESC or BEL byte on
//! moksha's stdout or stderr), and read only within the engine's limits
//! (imports of regular files only, bounded globs) so evaluation always ends.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A title change and a screen clear: what a hostile profile would print.
const ATTACK: &str = "\x1b]0;pwned\x07\x1b[2J";
/// How the attack shows once escaped.
const SHOWN: &str = "\\x1b]0;pwned\\x07\\x1b[2J";

/// Panics if moksha's output holds a byte a terminal would act on.
fn assert_no_raw_escape(what: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !bytes
                .iter()
                .any(|b| *b == 0x1b || *b == 0x07 || *b == b'\r'),
            "{what}: raw control byte on {stream}:\n{}",
            String::from_utf8_lossy(bytes).escape_debug()
        );
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A world-readable directory whose name is the attack, inside `parent`.
fn hostile_dir(parent: &Path) -> std::path::PathBuf {
    let dir = parent.join(format!("dir{ATTACK}"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A profile that puts the attack everywhere a profile's text can go.
fn hostile_profile() -> String {
    let a = rhai_string(ATTACK);
    format!(
        "import \"base\" as base;\n\
         let s = sandbox(\"t\");\n\
         base::minimal(s);\n\
         s.warn({a});\n\
         s.env(\"X\", {a});\n\
         s.bind(\"/nonexistent/\" + {a}, \"/srv/\" + {a});\n\
         s.mkdir(\"/m\" + {a});\n\
         print({a});\n\
         s.exec([\"/bin/true\", {a}]);\n"
    )
}

both!(plan_check_and_exec_show_escape_sequences_escaped, |who| {
    let dir = world_dir();
    let dir = hostile_dir(dir.path());
    let path = write_profile(&dir, &format!("p{ATTACK}.rhai"), &hostile_profile());
    for args in [
        vec!["plan", path.as_str()],
        vec!["plan", "--json", path.as_str()],
        vec!["check", path.as_str()],
        vec!["exec", path.as_str()],
    ] {
        let out = moksha(who, &args).output().unwrap();
        assert_no_raw_escape(&args.join(" "), &out);
        let shown = text(&out);
        if args[1] != "--json" {
            assert!(
                shown.contains(SHOWN),
                "{args:?}: not shown escaped:\n{shown}"
            );
        }
    }
    // `check` and `exec` stop at the missing bind source, which they name.
    let out = moksha(who, &["check", &path]).output().unwrap();
    assert!(
        text(&out).contains(&format!("/nonexistent/{SHOWN}")),
        "{}",
        text(&out)
    );
});

both!(
    an_error_shows_its_source_line_escaped_with_the_caret_under_it,
    |who| {
        let dir = world_dir();
        let dir = hostile_dir(dir.path());
        // Raw ESC and BEL in the source itself, before the error's column.
        let source = format!("let x = \"{ATTACK}\"; undefined_thing();\n");
        let path = write_profile(&dir, "p.rhai", &source);
        let out = moksha(who, &["plan", &path]).output().unwrap();
        assert_no_raw_escape("error", &out);
        let shown = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(shown.contains(&format!("dir{SHOWN}/p.rhai:1:")), "{shown}");
        let line = shown
            .lines()
            .find(|l| l.starts_with("1 | "))
            .unwrap_or_else(|| panic!("no source line:\n{shown}"));
        let caret = shown
            .lines()
            .skip_while(|l| !l.starts_with("1 | "))
            .nth(1)
            .unwrap_or_default();
        let col = caret
            .find('^')
            .unwrap_or_else(|| panic!("no caret:\n{shown}"));
        assert!(line[col..].starts_with("undefined_thing"), "{shown}");
    }
);

both!(
    a_sandbox_name_or_instance_name_with_escapes_is_refused_escaped,
    |who| {
        for extra in [
            format!("let s = sandbox({});", rhai_string(ATTACK)),
            format!("let s = sandbox(\"t\"); s.name({});", rhai_string(ATTACK)),
        ] {
            let profile = format!("{extra}\ns.exec([\"/bin/true\"]);\n");
            let dir = world_dir();
            let path = write_profile(dir.path(), "p.rhai", &profile);
            for cmd in ["plan", "exec"] {
                let out = moksha(who, &[cmd, &path]).output().unwrap();
                assert_no_raw_escape(cmd, &out);
            }
        }
    }
);

// Sandbox and instance names are restricted to a few characters (above);
// the profile's path is what a record holds of the attacker's text.
both!(ps_shows_the_profile_path_escaped, |who| {
    let dir = world_dir();
    let dir = hostile_dir(dir.path());
    let profile = "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         s.exec([\"/bin/sh\", \"-c\", \"sleep 30\"]);\n";
    let path = write_profile(&dir, &format!("p{ATTACK}.rhai"), profile);
    let name = format!("t{}-ps", std::process::id());
    let out = moksha(who, &["exec", "--detach", "--name", &name, &path])
        .output()
        .unwrap();
    assert_no_raw_escape("exec --detach", &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for args in [vec!["ps"], vec!["ps", "--long"], vec!["ps", "--json"]] {
        let out = moksha(who, &args).output().unwrap();
        assert_no_raw_escape(&args.join(" "), &out);
        assert!(text(&out).contains(&name), "{}", text(&out));
    }
    let _ = moksha(who, &["stop", "--timeout", "1", &name]).output();
    let _ = moksha(who, &["rm", &name]).output();
});

/// Runs `moksha ARGS` as `who` and kills it after `secs`: a profile that
/// blocks the evaluation must not hang the test.
fn bounded(who: Who, args: &[&str], secs: u64) -> (Output, Duration) {
    let start = Instant::now();
    let child = moksha(who, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, _) = wait_within(child, Duration::from_secs(secs));
    (out, start.elapsed())
}

/// `moksha plan` of a profile that imports `lib`, placed beside it by
/// `make`, ends quickly with an error naming the import's line and `want`.
fn import_is_refused(who: Who, make: impl Fn(&Path), want: &str) {
    let dir = world_dir();
    make(dir.path());
    let path = write_profile(
        dir.path(),
        "p.rhai",
        "let s = sandbox(\"t\");\n\nimport \"lib\" as lib;\ns.exec([\"/bin/true\"]);\n",
    );
    let (out, took) = bounded(who, &["plan", &path], 20);
    let shown = text(&out);
    assert!(took < Duration::from_secs(15), "took {took:?}:\n{shown}");
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("p.rhai:3:"),
        "not at the import's line:\n{shown}"
    );
    assert!(shown.contains(want), "wanted {want:?}:\n{shown}");
}

both!(an_import_of_a_fifo_is_refused_not_waited_on, |who| {
    import_is_refused(
        who,
        |dir| {
            let fifo = dir.join("lib.rhai");
            let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
            assert!(ok.success());
            std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o666)).unwrap();
        },
        "not a regular file",
    );
});

both!(
    an_import_of_a_symlink_to_dev_zero_is_refused_not_read,
    |who| {
        import_is_refused(
            who,
            |dir| std::os::unix::fs::symlink("/dev/zero", dir.join("lib.rhai")).unwrap(),
            "symlink",
        );
    }
);

both!(an_import_of_a_directory_is_refused, |who| {
    import_is_refused(
        who,
        |dir| {
            std::fs::create_dir(dir.join("lib.rhai")).unwrap();
        },
        "not a regular file",
    );
});

both!(an_import_of_a_huge_file_is_refused_unread, |who| {
    import_is_refused(
        who,
        |dir| {
            let f = std::fs::File::create(dir.join("lib.rhai")).unwrap();
            // Sparse: 1 GiB that takes no disk.
            f.set_len(1 << 30).unwrap();
            std::fs::set_permissions(dir.join("lib.rhai"), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        },
        "larger than",
    );
});

both!(
    a_glob_over_proc_and_sys_ends_quickly_with_an_error_at_its_line,
    |who| {
        for pattern in [
            "/proc/*/*/*/*/*",
            "/sys/*/*/*/*/*/*/*/*",
            "/sys/class/*/*/subsystem/*/subsystem/*/subsystem/*/subsystem/*",
        ] {
            let profile = format!(
                "let s = sandbox(\"t\");\n\nlet g = glob({});\ns.exec([\"/bin/true\"]);\n",
                rhai_string(pattern)
            );
            let dir = world_dir();
            let path = write_profile(dir.path(), "p.rhai", &profile);
            let (out, took) = bounded(who, &["plan", &path], 30);
            let shown = text(&out);
            assert!(
                took < Duration::from_secs(20),
                "{pattern}: took {took:?}:\n{shown}"
            );
            assert_eq!(out.status.code(), Some(1), "{pattern}:\n{shown}");
            assert!(
                shown.contains("p.rhai:3:"),
                "{pattern}: not at its line:\n{shown}"
            );
            assert!(shown.contains("glob"), "{pattern}:\n{shown}");
        }
    }
);

// A library the profile imports cannot evaluate text it builds: `eval`,
// even in a function nobody calls, is refused at its own line and column
// before the sandbox exists, and the program never runs.
both!(
    eval_in_an_imported_library_is_refused_before_anything_runs,
    |who| {
        let dir = world_dir();
        let lib = write_profile(
            dir.path(),
            "lib.rhai",
            "fn run(s) {\n    s.exec([\"/bin/echo\", \"ran\"]); eval(\"s\")\n}\n",
        );
        let text = format!("import \"lib\" as lib;\n{}", sh_profile("", "echo ran"));
        let path = write_profile(dir.path(), "p.rhai", &text);
        let r = Run::from(moksha(who, &["exec", &path]).output().unwrap()).expect_code(1);
        assert!(
            r.stderr.starts_with(&format!(
                "{lib}:2:35: error: syntax error: reserved keyword 'eval' is disabled"
            )),
            "{}",
            r.stderr
        );
        assert!(!r.stdout.contains("ran"), "the program ran: {}", r.stdout);
    }
);
