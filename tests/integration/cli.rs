//! The command line without sandboxes: `plan`, `check`, `profiles`, `api`,
//! exit codes, and how bad profiles are reported (file:line:col, never a
//! panic).

use crate::common::*;
use moksha::plan::Plan;
use moksha::script::{self, ProfileSource};
use std::path::Path;

fn run(args: &[&str]) -> Run {
    Run::from(moksha(Who::Root, args).output().unwrap())
}

/// The profiles shipped in the repository's profiles/ directory.
fn shipped_profiles() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut paths: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no profiles in {}", dir.display());
    paths
}

/// Writes `text` as `p.rhai` (and `extra` files beside it) and runs
/// `moksha check` on it; expects exit 1, no panic, and an error at
/// `p.rhai:line:col` (or at `file:line:col` for an error inside a module).
/// Returns the stderr and the profile's path.
#[track_caller]
fn bad_profile(text: &str, extra: &[(&str, &str)], at: (&str, usize, usize)) -> (String, String) {
    let dir = world_dir();
    let path = write_profile(dir.path(), "p.rhai", text);
    for (name, body) in extra {
        write_profile(dir.path(), name, body);
    }
    let r = run(&["check", &path]).expect_code(1);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let file = dir.path().join(at.0).to_string_lossy().into_owned();
    let want = format!("{file}:{}:{}: error: ", at.1, at.2);
    assert!(
        r.stderr.starts_with(&want),
        "expected an error at {want:?}; stderr:\n{}",
        r.stderr
    );
    // The source line and a caret under the column follow.
    let caret = format!("| {}^", " ".repeat(at.2 - 1));
    assert!(r.stderr.contains(&caret), "no caret: {}", r.stderr);
    assert!(r.stderr.contains("moksha: 1 of 1 profiles failed"));
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    (r.stderr, path)
}

/// The first line of an error report.
fn headline(stderr: &str) -> &str {
    stderr.lines().next().unwrap_or("")
}

const START: &str = "let s = sandbox(\"t\");\n";

#[test]
fn syntax_error() {
    let (err, _) = bad_profile(
        &format!("{START}s.bind(\"/usr\" ;\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 2, 15),
    );
    assert!(headline(&err).contains("syntax error"), "{err}");
    assert!(err.contains("2 | s.bind(\"/usr\" ;"), "{err}");
}

#[test]
fn unknown_function() {
    let (err, _) = bad_profile(
        &format!("{START}  s.bnd(\"/usr\");\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 2, 5),
    );
    assert!(
        headline(&err).contains("unknown function bnd(Sandbox, String)"),
        "{err}"
    );
}

#[test]
fn wrong_argument_type() {
    let (err, _) = bad_profile(
        &format!("{START}s.tmpfs(42);\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 2, 3),
    );
    let head = headline(&err);
    assert!(head.contains("no function tmpfs(Sandbox, int)"), "{err}");
    assert!(head.contains("wrong argument types"), "{err}");
    assert!(head.contains("tmpfs(s: Sandbox, target: String)"), "{err}");
}

#[test]
fn unknown_option_key() {
    let (err, _) = bad_profile(
        &format!("{START}s.tmpfs(\"/tmp\", #{{ sise: \"64M\" }});\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 2, 3),
    );
    assert!(
        headline(&err).contains(
            "tmpfs option sise is unknown; did you mean \"size\"? (options of tmpfs: size, mode, \
             replace)"
        ),
        "{err}"
    );
}

#[test]
fn typos_get_a_did_you_mean() {
    // `moksha check` on a misspelt method, module and option type: exit 1,
    // the suggestion, at the line and column of the mistake.
    let (err, _) = bad_profile(
        &format!("{START}s.netwrok(\"none\");\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 2, 3),
    );
    assert!(
        headline(&err)
            .ends_with("unknown function netwrok(Sandbox, String); did you mean \"network\"?"),
        "{err}"
    );
    let (err, _) = bad_profile("import \"bsae\" as base;\n", &[], ("p.rhai", 1, 8));
    assert!(headline(&err).ends_with("did you mean \"base\"?"), "{err}");
    let (err, _) = bad_profile(
        &format!("{START}\n  s.bind(\"/x\", #{{ rw: \"yes\" }});\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 3, 5),
    );
    assert!(
        headline(&err).ends_with("error: bind option rw: expected a bool, got a string"),
        "{err}"
    );
}

#[test]
fn relative_path() {
    let (err, _) = bad_profile(
        &format!("{START}\n    s.bind(\"usr/lib\");\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 3, 7),
    );
    assert!(
        headline(&err).contains("bind source \"usr/lib\" is relative"),
        "{err}"
    );
}

#[test]
fn dotdot_path() {
    let (err, _) = bad_profile(
        &format!("{START}s.bind(\"/usr\", \"/usr/../etc\");\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 2, 3),
    );
    assert!(
        headline(&err).contains("bind target \"/usr/../etc\" contains '..'"),
        "{err}"
    );
}

#[test]
fn nul_in_path() {
    let (err, _) = bad_profile(
        &format!("{START}s.tmpfs(\"/tmp\\x00x\");\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 2, 3),
    );
    assert!(headline(&err).contains("contains a NUL byte"), "{err}");
}

#[test]
fn infinite_loop() {
    let (err, _) = bad_profile(
        &format!("{START}let i = 0;\nloop {{ i += 1; }}\ns.exec([\"x\"]);"),
        &[],
        ("p.rhai", 3, 10),
    );
    assert!(
        headline(&err).contains("ran more than 1000000 operations and was stopped"),
        "{err}"
    );
}

#[test]
fn deep_recursion() {
    let (err, _) = bad_profile(
        &format!("fn f(n) {{ if n == 0 {{ 0 }} else {{ 1 + f(n - 1) }} }}\n{START}f(10000);\n"),
        &[],
        ("p.rhai", 3, 1),
    );
    assert!(
        headline(&err).contains("function calls nested deeper than"),
        "{err}"
    );
}

/// `moksha check PATH` with the soft limit on `resource` set to `bytes`
/// (or the hard limit, if lower).
fn check_with_limit(path: &str, resource: libc::__rlimit_resource_t, bytes: u64) -> Run {
    use std::os::unix::process::CommandExt;
    let mut cmd = moksha(Who::Root, &["check", path]);
    // SAFETY: getrlimit and setrlimit are async-signal-safe; run in the
    // child before exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(resource, &mut limit);
            limit.rlim_cur = limit.rlim_max.min(bytes);
            match libc::setrlimit(resource, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    Run::from(cmd.output().unwrap())
}

/// A profile evaluates on a stack of its own: one nested as deep as the
/// limits allow evaluates under a small `ulimit -s` as anywhere (the debug
/// build needs more than 2 MiB for it on the caller's stack), and one
/// nested deeper stops at the call limit there too, with the message.
#[test]
fn how_deep_a_profile_nests_does_not_depend_on_the_callers_stack() {
    let dir = world_dir();
    let deep = |n: usize| {
        format!(
            "fn f(n) {{ if n == 0 {{ 0 }} else {{ 1 + f(n - 1) }} }}\n{START}f({n});\n\
             s.exec([\"/bin/true\"]);\n"
        )
    };
    // 512 KiB: what the debug build's command line parsing needs.
    let small_stack = |path: &str| check_with_limit(path, libc::RLIMIT_STACK, 512 << 10);
    let deepest = write_profile(dir.path(), "deepest.rhai", &deep(47));
    let r = small_stack(&deepest).expect_code(0);
    assert!(r.stdout.contains("deepest.rhai: ok"), "{}", r.stdout);
    let deeper = write_profile(dir.path(), "deeper.rhai", &deep(48));
    let r = small_stack(&deeper).expect_code(1);
    assert!(
        headline(&r.stderr).contains("function calls nested deeper than"),
        "{}",
        r.stderr
    );
}

/// Without room for the evaluation's stack (a small `ulimit -v`), the
/// profile fails with what to do, never a panic; with room, it evaluates.
#[test]
fn no_room_for_the_evaluations_stack_is_said() {
    let dir = world_dir();
    let path = write_profile(
        dir.path(),
        "p.rhai",
        &format!("{START}s.exec([\"/bin/true\"]);\n"),
    );
    let mut said = 0;
    for mib in (32..=256).step_by(16) {
        let r = check_with_limit(&path, libc::RLIMIT_AS, mib << 20);
        assert!(!r.stderr.contains("panicked"), "{mib} MiB: {}", r.stderr);
        if r.stderr
            .contains("cannot map the 64 MiB stack profiles are evaluated on")
        {
            assert_eq!(r.code, 1, "{mib} MiB: {}", r.stderr);
            assert!(r.stderr.contains("ulimit -v"), "{}", r.stderr);
            said += 1;
        }
    }
    assert!(
        said > 0,
        "no limit between 32 and 256 MiB left too little room"
    );
    check_with_limit(&path, libc::RLIMIT_AS, 256 << 20).expect_code(0);
}

#[test]
fn huge_string() {
    // Doubling towards 100 MB: stopped at the string size limit.
    let (err, _) = bad_profile(
        &format!("{START}let x = \"0123456789\";\nwhile x.len() < 100000000 {{ x += x; }}\n"),
        &[],
        ("p.rhai", 3, 31),
    );
    assert!(
        headline(&err).contains("string data grew past the profile limit"),
        "{err}"
    );
}

#[test]
fn import_of_an_absolute_path() {
    let (err, _) = bad_profile("import \"/etc/passwd\" as p;\n", &[], ("p.rhai", 1, 8));
    assert!(
        headline(&err).contains("import \"/etc/passwd\": absolute paths are refused"),
        "{err}"
    );
    assert!(!err.contains("root:"), "the file was read: {err}");
}

#[test]
fn import_of_a_parent_path() {
    let (err, _) = bad_profile("\n  import \"../x\" as p;\n", &[], ("p.rhai", 2, 10));
    assert!(headline(&err).contains("'..'"), "{err}");
}

#[test]
fn missing_import() {
    let (err, path) = bad_profile("import \"nope\" as p;\n", &[], ("p.rhai", 1, 8));
    let beside = Path::new(&path).with_file_name("nope.rhai");
    assert!(
        headline(&err).contains(&format!(
            "module \"nope\" not found; looked in {}",
            beside.display()
        )),
        "{err}"
    );
    assert!(headline(&err).contains("the embedded stdlib"), "{err}");
}

#[test]
fn import_cycle() {
    let (err, _) = bad_profile(
        "import \"a\" as a;\n",
        &[
            ("a.rhai", "import \"b\" as b;\n"),
            ("b.rhai", "import \"a\" as a;\n"),
        ],
        ("b.rhai", 1, 8),
    );
    assert!(
        headline(&err).contains("import \"a\" is a cycle: a imports b imports a"),
        "{err}"
    );
}

#[test]
fn error_inside_a_library_shows_the_chain() {
    let lib = "// helpers\nfn data(s) {\n    s.bind(\"data\");\n}\n";
    let (err, path) = bad_profile(
        &format!("import \"mylib\" as l;\n{START}l::data(s);\ns.exec([\"x\"]);"),
        &[("mylib.rhai", lib)],
        ("mylib.rhai", 3, 7),
    );
    let lib_path = Path::new(&path).with_file_name("mylib.rhai");
    assert!(
        headline(&err).contains("bind source \"data\" is relative"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "= in data() from {}, called at {path}:3:4",
            lib_path.display()
        )),
        "{err}"
    );
    // Both source lines are shown.
    assert!(err.contains("3 |     s.bind(\"data\");"), "{err}");
    assert!(err.contains("3 | l::data(s);"), "{err}");
}

#[test]
fn validation_error_points_into_the_stdlib() {
    let dir = world_dir();
    let path = write_profile(
        dir.path(),
        "p.rhai",
        &format!(
            "import \"base\" as base;\n{START}s.share([\"pid\"]);\nbase::minimal(s);\ns.exec([\"x\"]);"
        ),
    );
    let r = run(&["check", &path]).expect_code(1);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let head = headline(&r.stderr);
    assert!(head.starts_with("<stdlib>/base.rhai:"), "{}", r.stderr);
    assert!(
        head.contains("proc needs a new PID namespace"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("s.proc();"), "{}", r.stderr);
}

#[test]
fn missing_profile_file() {
    let r = run(&["check", "/nonexistent/p.rhai"]).expect_code(1);
    assert!(
        r.stderr.contains("cannot read profile /nonexistent/p.rhai"),
        "{}",
        r.stderr
    );
    let r = run(&["plan", "no-such-profile"]).expect_code(1);
    assert!(
        r.stderr.contains("no profile named \"no-such-profile\""),
        "{}",
        r.stderr
    );
}

/// A profile that uses every primitive and the arguments, without host
/// queries, so its plan is the same in this process and in the binary.
const EVERYTHING: &str = r#"let s = sandbox("all");
s.name("all-1");
s.unshare(["time"]);
s.share(["net"]);
s.uid(0);
s.gid(0);
s.tmpfs("/tmp", #{ size: "64M", mode: 0o1777 });
s.mount("tmpfs", "/run", #{ size: 1048576 });
s.bind("/usr");
s.bind("/etc/hosts", #{ optional: true });
s.bind("/srv", "/data", #{ rw: true, dev: true, replace: true });
s.proc();
s.dev();
s.mqueue();
s.mkdir("/work", 0o700);
s.symlink("usr/bin", "/bin");
s.write_file("/etc/motd", "hello\n", #{ mode: 0o600 });
s.chmod("/work", 0o750);
s.remount_ro("/");
s.hostname("box");
s.env("A", "1");
s.unsetenv("B");
s.keep_env(["TERM"]);
s.cwd("/work");
s.keep_caps(["net_bind_service"]);
s.die_with_parent(false);
s.new_session(false);
s.exec(["/bin/echo"] + ARGS);
"#;

#[test]
fn plan_json_round_trips_into_the_same_plan() {
    let dir = world_dir();
    let path = write_profile(dir.path(), "all.rhai", EVERYTHING);
    let r = run(&["plan", "--json", &path, "--", "one", "two words"]).expect_code(0);
    let from_cli: Plan = serde_json::from_str(&r.stdout).unwrap();
    let source = ProfileSource {
        name: path.clone(),
        text: EVERYTHING.into(),
        dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let (direct, _) = script::evaluate(&source, &["one".into(), "two words".into()]).unwrap();
    assert_eq!(from_cli, direct);
    assert_eq!(
        direct.process.exec.as_ref().unwrap().op.argv,
        ["/bin/echo", "one", "two words"]
    );
    assert_eq!(direct.fs.len(), 13);
    assert_eq!(direct.fs[2].at.to_string(), format!("{path}:9:3"));
}

#[test]
fn plan_for_people_lists_the_steps_in_order() {
    let dir = world_dir();
    let path = write_profile(dir.path(), "all.rhai", EVERYTHING);
    let r = run(&["plan", &path]).expect_code(0);
    let out = &r.stdout;
    let tmp = out.find("/tmp").expect(out);
    let usr = out.find("/usr").expect(out);
    let ro = out.find("remount").expect(out);
    assert!(tmp < usr && usr < ro, "{out}");
    assert!(out.contains(&format!("{path}:7:3")), "{out}");
    assert!(out.contains("/bin/echo"), "{out}");
}

#[test]
fn check_several_profiles() {
    let dir = world_dir();
    let good1 = write_profile(
        dir.path(),
        "a.rhai",
        "let s = sandbox(\"a\");\ns.exec([\"x\"]);",
    );
    let good2 = write_profile(dir.path(), "b.rhai", EVERYTHING);
    let r = run(&["check", &good1, &good2]).expect_code(0);
    assert_eq!(r.stdout, format!("{good1}: ok\n{good2}: ok\n"));
    let bad = write_profile(dir.path(), "c.rhai", "let s = sandbox(\"c\");\n");
    let r = run(&["check", &good1, &bad, &good2]).expect_code(1);
    assert_eq!(r.stdout, format!("{good1}: ok\n{good2}: ok\n"));
    assert!(r.stderr.contains("never calls exec"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{bad}:1:9: error:")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("moksha: 1 of 3 profiles failed"),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["plan"][..],
        &["check"][..],
        &["frobnicate"][..],
        &["plan", "--jsno", "demo"][..],
        &["profiles", "extra"][..],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("Usage"), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"));
    }
}

#[test]
fn profiles_lists_the_built_in_profiles() {
    let r = run(&["profiles"]).expect_code(0);
    for path in shipped_profiles() {
        let name = Path::new(&path)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", r.stdout));
        assert!(line.ends_with("built in"), "{line}");
    }
}

#[test]
fn every_shipped_profile_passes_check() {
    let paths = shipped_profiles();
    let mut args = vec!["check"];
    args.extend(paths.iter().map(String::as_str));
    let r = run(&args).expect_code(0);
    for path in &paths {
        assert!(r.stdout.contains(&format!("{path}: ok")), "{}", r.stdout);
    }
    // And by name, as the built-in copies.
    for path in &paths {
        let name = Path::new(path)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let r = run(&["check", &name]).expect_code(0);
        assert_eq!(r.stdout, format!("{name}: ok\n"));
    }
}

#[test]
fn api_prints_documented_definitions() {
    let r = run(&["api"]).expect_code(0);
    let out = &r.stdout;
    assert!(
        out.contains("/// Bind-mounts the host `path` at the same place inside"),
        "{out}"
    );
    assert!(
        out.contains("fn bind(s: Sandbox, path: String) -> ();"),
        "{out}"
    );
    assert!(
        out.contains("fn exec(s: Sandbox, argv: array) -> ();"),
        "{out}"
    );
    assert!(!out.contains("-> ;"), "{out}");
}

// A reader that stops early (`moksha completions bash | head -1`) ends a
// printing command quietly, by SIGPIPE as other tools end, not with a
// panic on the failed write.
#[test]
fn a_closed_pipe_ends_a_printing_command_quietly() {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2, owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A one-page pipe: the 50 KB of completions cannot fit before we close it.
    // SAFETY: F_SETPIPE_SZ on a pipe we own.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) };
    let mut child = moksha(Who::Root, &["completions", "bash"])
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::fs::File::from(read);
    let mut first = [0u8; 10];
    reader.read_exact(&mut first).unwrap();
    drop(reader);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

// moksha started with its standard input and output closed opens /dev/null
// in their place before anything else, as the Rust runtime's start would
// (moksha has its own entry, src/sys/start.rs): otherwise the first file it
// opened would become fd 0 or 1, and the program would be handed that file.
// The program sees what it sees when moksha is given /dev/null.
crate::both!(closed_standard_descriptors_become_dev_null, |who| {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let script = "stat -L -c %F:%s /proc/self/fd/0 /proc/self/fd/1 >&2";
    let args = ["exec", "default", "--", "sh", "-c", script];
    let mut closed = moksha(who, &args);
    closed.stdin(Stdio::inherit()).stdout(Stdio::inherit());
    // SAFETY: close(2) only, between fork and exec (of the inherited
    // descriptors, which std leaves alone).
    unsafe {
        closed.pre_exec(|| {
            libc::close(0);
            libc::close(1);
            Ok(())
        });
    }
    let closed = closed.output().unwrap();
    let null = moksha(who, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let (got, want) = (
        String::from_utf8_lossy(&closed.stderr),
        String::from_utf8_lossy(&null.stderr),
    );
    assert!(closed.status.success(), "{:?}: {got}", closed.status);
    assert!(null.status.success() && want.lines().count() == 2, "{want}");
    assert_eq!(got, want);
});
