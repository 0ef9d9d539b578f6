//! Profile snippets to plans, without privileges: every primitive produces
//! its step at the right position, bad input fails at its line, the stdlib
//! compiles, the engine limits are the explicit constants, and no input
//! makes evaluation panic.

use super::*;
use crate::plan::{EnvOp, Exec, FsOp, Located, Pos, Step};
use diagnostics::ProfileError;

/// The profile name used in positions.
const FILE: &str = "p.rhai";

fn source(text: &str) -> ProfileSource {
    ProfileSource {
        name: FILE.into(),
        text: text.into(),
        dir: None,
    }
}

fn eval_args(text: &str, args: &[&str]) -> Result<Plan, ProfileError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    evaluate(&source(text), &args).map(|(plan, _)| plan)
}

/// `body` between a `sandbox("t")` on line 1 and an exec on the last line.
fn wrap(body: &str) -> String {
    format!("let s = sandbox(\"t\");\n{body}\ns.exec([\"/bin/true\"]);\n")
}

/// Evaluates `wrap(body)`; panics with the rendered error on failure.
#[track_caller]
fn plan_of(body: &str) -> Plan {
    match eval_args(&wrap(body), &[]) {
        Ok(plan) => plan,
        Err(e) => panic!("profile failed:\n{}", e.render()),
    }
}

fn at(line: usize, col: usize) -> Pos {
    Pos {
        file: FILE.into(),
        line,
        col,
    }
}

/// The one filesystem step of `s.<call>` written on line 2, checking that its
/// position is the method name (column 3).
#[track_caller]
fn step(call: &str) -> FsOp {
    let plan = plan_of(&format!("s.{call};"));
    assert_eq!(plan.fs.len(), 1, "{:?}", plan.fs);
    let Step { op, at: pos } = plan.fs.into_iter().next().unwrap();
    assert_eq!(pos, at(2, 3), "position of {call}");
    op
}

/// Evaluates `wrap(body)`, expecting an error; returns (message, position, chain).
#[track_caller]
fn failure(body: &str) -> (String, Option<Pos>, Vec<(String, Pos)>) {
    match eval_args(&wrap(body), &[]) {
        Ok(plan) => panic!("profile should fail, gave {plan:?}"),
        Err(e) => {
            let rendered = e.render();
            let parts = e.parts();
            if let Some(pos) = &parts.1 {
                assert!(
                    rendered.starts_with(&format!("{pos}: error: ")),
                    "{rendered}"
                );
            }
            parts
        }
    }
}

/// Expects `body` to fail at line 2, column `col`, with `needle` in the message.
#[track_caller]
fn fails_at(body: &str, col: usize, needle: &str) {
    let (message, pos, _) = failure(body);
    assert_eq!(pos, Some(at(2, col)), "position for {message:?}");
    assert!(
        message.contains(needle),
        "message {message:?} should contain {needle:?}"
    );
}

fn bind(source: &str, target: &str, rw: bool, dev: bool, optional: bool, replace: bool) -> FsOp {
    FsOp::Bind {
        source: source.into(),
        target: target.into(),
        rw,
        dev,
        optional,
        replace,
        create: false,
    }
}

// ---- primitives: filesystem ------------------------------------------------

#[test]
fn bind_path() {
    assert_eq!(
        step("bind(\"/usr\")"),
        bind("/usr", "/usr", false, false, false, false)
    );
}

#[test]
fn bind_path_options() {
    assert_eq!(
        step("bind(\"/dev/dri\", #{ rw: true, dev: true, optional: true })"),
        bind("/dev/dri", "/dev/dri", true, true, true, false)
    );
}

#[test]
fn bind_source_target() {
    assert_eq!(
        step("bind(\"/srv/data\", \"/data\")"),
        bind("/srv/data", "/data", false, false, false, false)
    );
}

#[test]
fn bind_source_target_options() {
    assert_eq!(
        step("bind(\"/a\", \"/b\", #{ rw: true, replace: true })"),
        bind("/a", "/b", true, false, false, true)
    );
    assert_eq!(
        step("bind(\"/a\", \"/b\", #{ rw: false, dev: false, optional: false, replace: false })"),
        bind("/a", "/b", false, false, false, false)
    );
}

#[test]
fn bind_replace_is_accepted_after_an_earlier_step() {
    let plan = plan_of("s.tmpfs(\"/x\");\ns.bind(\"/srv\", \"/x\", #{ replace: true });");
    assert_eq!(plan.fs.len(), 2);
    assert_eq!(plan.fs[1].at, at(3, 3));
}

fn tmpfs(target: &str, size: Option<u64>, mode: u32, replace: bool) -> FsOp {
    FsOp::Tmpfs {
        target: target.into(),
        size,
        mode,
        replace,
    }
}

#[test]
fn tmpfs_forms() {
    assert_eq!(step("tmpfs(\"/tmp\")"), tmpfs("/tmp", None, 0o755, false));
    assert_eq!(
        step("tmpfs(\"/tmp\", #{ size: \"64M\" })"),
        tmpfs("/tmp", Some(64 << 20), 0o755, false)
    );
    assert_eq!(
        step("tmpfs(\"/tmp\", #{ size: 4096, mode: 0o1777 })"),
        tmpfs("/tmp", Some(4096), 0o1777, false)
    );
    assert_eq!(
        step("tmpfs(\"/t\", #{ size: \"16k\", replace: true })"),
        tmpfs("/t", Some(16 << 10), 0o755, true)
    );
    assert_eq!(
        step("tmpfs(\"/t\", #{ size: \" 2G \" })"),
        tmpfs("/t", Some(2 << 30), 0o755, false)
    );
    assert_eq!(
        step("tmpfs(\"/t\", #{ size: \"100\" })"),
        tmpfs("/t", Some(100), 0o755, false)
    );
}

#[test]
fn tmpfs_bad_sizes_and_modes() {
    for bad in [
        "\"64X\"",
        "\"\"",
        "\"M\"",
        "0",
        "-1",
        "\"0M\"",
        "\"-5M\"",
        "\"99999999999G\"",
    ] {
        fails_at(
            &format!("s.tmpfs(\"/t\", #{{ size: {bad} }});"),
            3,
            "size must be bytes or a string like \"64M\"",
        );
    }
    fails_at(
        "s.tmpfs(\"/t\", #{ mode: 0o10000 });",
        3,
        "mode 0o10000 is out of range",
    );
    fails_at("s.tmpfs(\"/t\", #{ mode: -1 });", 3, "out of range");
    fails_at("s.tmpfs(\"/t\", #{ size: true });", 3, "tmpfs options");
}

#[test]
fn mount_types() {
    assert_eq!(
        step("mount(\"tmpfs\", \"/tmp\")"),
        tmpfs("/tmp", None, 0o755, false)
    );
    assert_eq!(
        step("mount(\"tmpfs\", \"/tmp\", #{ size: \"64M\", mode: 0o700 })"),
        tmpfs("/tmp", Some(64 << 20), 0o700, false)
    );
    assert_eq!(
        step("mount(\"proc\", \"/proc\")"),
        FsOp::Proc {
            target: "/proc".into(),
            replace: false
        }
    );
    assert_eq!(
        step("mount(\"mqueue\", \"/dev/mqueue\", #{ replace: true })"),
        FsOp::Mqueue {
            target: "/dev/mqueue".into(),
            replace: true
        }
    );
    fails_at(
        "s.mount(\"ext4\", \"/mnt\");",
        3,
        "filesystem type \"ext4\" is not supported",
    );
    // proc takes no size: the option check names the kind.
    fails_at(
        "s.mount(\"proc\", \"/proc\", #{ size: 1 });",
        3,
        "proc options: unknown field `size`",
    );
}

#[test]
fn proc_dev_mqueue() {
    assert_eq!(
        step("proc()"),
        FsOp::Proc {
            target: "/proc".into(),
            replace: false
        }
    );
    assert_eq!(
        step("proc(\"/p\")"),
        FsOp::Proc {
            target: "/p".into(),
            replace: false
        }
    );
    assert_eq!(
        step("dev()"),
        FsOp::Dev {
            target: "/dev".into(),
            replace: false
        }
    );
    assert_eq!(
        step("dev(\"/d\")"),
        FsOp::Dev {
            target: "/d".into(),
            replace: false
        }
    );
    assert_eq!(
        step("mqueue()"),
        FsOp::Mqueue {
            target: "/dev/mqueue".into(),
            replace: false
        }
    );
}

#[test]
fn mkdir_with_and_without_mode() {
    assert_eq!(
        step("mkdir(\"/a/b\")"),
        FsOp::Mkdir {
            target: "/a/b".into(),
            mode: 0o755
        }
    );
    assert_eq!(
        step("mkdir(\"/a\", 0o700)"),
        FsOp::Mkdir {
            target: "/a".into(),
            mode: 0o700
        }
    );
    fails_at("s.mkdir(\"/a\", 0o77777);", 3, "out of range");
}

#[test]
fn symlink_forms() {
    assert_eq!(
        step("symlink(\"usr/bin\", \"/bin\")"),
        FsOp::Symlink {
            points_to: "usr/bin".into(),
            target: "/bin".into(),
            replace: false
        }
    );
    assert_eq!(
        step("symlink(\"/proc/self/fd\", \"/dev/fd\", #{ replace: true })"),
        FsOp::Symlink {
            points_to: "/proc/self/fd".into(),
            target: "/dev/fd".into(),
            replace: true
        }
    );
    fails_at(
        "s.symlink(\"x\", \"rel\");",
        3,
        "symlink path \"rel\" is relative",
    );
}

#[test]
fn write_file_forms() {
    assert_eq!(
        step("write_file(\"/etc/hostname\", \"box\\n\")"),
        FsOp::WriteFile {
            target: "/etc/hostname".into(),
            content: "box\n".into(),
            mode: 0o644,
            replace: false
        }
    );
    assert_eq!(
        step("write_file(\"/run/x\", \"\", #{ mode: 0o600, replace: true })"),
        FsOp::WriteFile {
            target: "/run/x".into(),
            content: String::new(),
            mode: 0o600,
            replace: true
        }
    );
    fails_at(
        "s.write_file(\"/x\", \"\", #{ mod: 0o600 });",
        3,
        "write_file options: unknown field `mod`",
    );
}

#[test]
fn remount_ro_and_chmod() {
    assert_eq!(
        step("remount_ro(\"/\")"),
        FsOp::RemountRo { target: "/".into() }
    );
    assert_eq!(
        step("chmod(\"/tmp\", 0o1777)"),
        FsOp::Chmod {
            target: "/tmp".into(),
            mode: 0o1777
        }
    );
}

#[test]
fn pivot_root() {
    let plan = plan_of("s.pivot_root(\"/srv/rootfs\");");
    assert_eq!(
        plan.root,
        Some(Located {
            value: "/srv/rootfs".into(),
            at: at(2, 3)
        })
    );
    let (message, pos, _) = failure("s.pivot_root(\"/a\");\ns.pivot_root(\"/b\");");
    assert!(
        message.contains("pivot_root was already called at p.rhai:2:3"),
        "{message}"
    );
    assert_eq!(pos, Some(at(3, 3)));
}

#[test]
fn several_steps_keep_their_order_and_lines() {
    let plan = plan_of("s.tmpfs(\"/tmp\");\n  s.bind(\"/usr\");\ns.proc();");
    let lines: Vec<(usize, usize)> = plan.fs.iter().map(|s| (s.at.line, s.at.col)).collect();
    assert_eq!(lines, [(2, 3), (3, 5), (4, 3)]);
    assert_eq!(plan.fs[1].op.target(), "/usr");
}

// ---- primitives: process, namespaces, supervision ---------------------------

#[test]
fn hostname() {
    let plan = plan_of("s.hostname(\"box\");");
    assert_eq!(
        plan.process.hostname,
        Some(Located {
            value: "box".into(),
            at: at(2, 3)
        })
    );
}

#[test]
fn environment() {
    let plan = plan_of(
        "s.env(\"A\", \"1\"); s.unsetenv(\"B\"); s.keep_env(\"C\"); s.keep_env([\"D\", \"E\"]);",
    );
    assert!(plan.process.env.clear);
    assert_eq!(
        plan.process.env.ops,
        [
            EnvOp::Set {
                name: "A".into(),
                value: "1".into()
            },
            EnvOp::Unset { name: "B".into() },
            EnvOp::Keep { name: "C".into() },
            EnvOp::Keep { name: "D".into() },
            EnvOp::Keep { name: "E".into() },
        ]
    );
    assert!(!plan_of("s.inherit_env();").process.env.clear);
    fails_at(
        "s.env(\"A=B\", \"1\");",
        3,
        "\"A=B\" is not a valid environment variable name",
    );
    fails_at(
        "s.keep_env([\"A\", 1]);",
        3,
        "every element must be a string",
    );
}

#[test]
fn env_value_with_nul_fails_at_its_call() {
    fails_at("s.env(\"A\", \"x\\x00\");", 3, "NUL");
}

#[test]
fn cwd() {
    let plan = plan_of("s.cwd(\"/home/u\");");
    assert_eq!(
        plan.process.cwd,
        Some(Located {
            value: "/home/u".into(),
            at: at(2, 3)
        })
    );
    fails_at(
        "s.cwd(\"home\");",
        3,
        "working directory \"home\" is relative",
    );
}

#[test]
fn exec_with_args() {
    let text = "let s = sandbox(\"t\");\n\ns.exec([\"curl\", \"-s\"] + ARGS);\n";
    let plan = eval_args(text, &["https://example.org", "x y"]).unwrap();
    assert_eq!(
        plan.process.exec,
        Some(Step {
            op: Exec {
                argv: vec![
                    "curl".into(),
                    "-s".into(),
                    "https://example.org".into(),
                    "x y".into()
                ]
            },
            at: at(3, 3)
        })
    );
}

#[test]
fn exec_errors() {
    fails_at("s.exec([]);", 3, "exec needs at least the program name");
    fails_at("s.exec([\"a\", 2]);", 3, "every element must be a string");
    // The second exec (line 3 of wrap: the one wrap adds) is refused and
    // names the first.
    let (message, pos, _) = failure("s.exec([\"/bin/sh\"]);");
    assert_eq!(pos, Some(at(3, 3)));
    assert!(
        message.contains("exec was already called at p.rhai:2:3"),
        "{message}"
    );
}

#[test]
fn args_is_a_constant() {
    let (message, pos, _) = failure("ARGS = [];");
    assert!(message.contains("ARGS"), "{message}");
    assert_eq!(pos.map(|p| p.line), Some(2));
}

#[test]
fn unshare_and_share() {
    let plan = plan_of("s.share([\"net\", \"ipc\"]);\ns.unshare([\"time\"]);");
    let ns = &plan.namespaces;
    assert!(!ns.net && !ns.ipc && ns.time);
    assert!(ns.user && ns.mount && ns.pid && ns.uts && ns.cgroup);
    let plan = plan_of("s.share([\"cgroup\"]); s.unshare([\"cgroup\"]);");
    assert!(plan.namespaces.cgroup);
    fails_at(
        "s.unshare([\"netw\"]);",
        3,
        "unknown namespace \"netw\"; expected one of user, mount",
    );
    fails_at("s.share([1]);", 3, "share: every element must be a string");
}

#[test]
fn uid_and_gid() {
    let plan = plan_of("s.uid(0);\ns.gid(100);");
    assert_eq!(plan.ids.uid, Some(0));
    assert_eq!(plan.ids.gid, Some(100));
    fails_at("s.uid(-1);", 3, "uid out of range");
    fails_at("s.gid(4294967296);", 3, "gid out of range");
}

#[test]
fn name_and_supervision() {
    let plan = plan_of("s.name(\"web-1\");\ns.die_with_parent(false);\ns.new_session(false);");
    assert_eq!(plan.name, "web-1");
    assert_eq!(plan.profile, FILE);
    assert!(!plan.supervision.die_with_parent);
    assert!(!plan.supervision.new_session);
    let plan = plan_of("");
    assert_eq!(plan.name, "t");
    assert!(plan.supervision.die_with_parent && plan.supervision.new_session);
    fails_at("s.name(\"a/b\");", 3, "must be 1 to 64 characters");
}

#[test]
fn keep_caps() {
    let plan = plan_of("s.keep_caps([\"net_bind_service\", \"CAP_CHOWN\"]);");
    let caps: Vec<(&str, &Pos)> = plan
        .security
        .keep_caps
        .iter()
        .map(|c| (c.value.as_str(), &c.at))
        .collect();
    assert_eq!(
        caps,
        [
            ("CAP_NET_BIND_SERVICE", &at(2, 3)),
            ("CAP_CHOWN", &at(2, 3))
        ]
    );
    fails_at(
        "s.keep_caps([\"CAP_FLY\"]);",
        3,
        "unknown capability \"CAP_FLY\"",
    );
}

// ---- bad input: errors at file:line:col ------------------------------------

#[test]
fn bad_paths_fail_at_their_call() {
    fails_at("s.bind(\"usr\");", 3, "bind source \"usr\" is relative");
    fails_at(
        "s.bind(\"/usr\", \"usr\");",
        3,
        "bind target \"usr\" is relative",
    );
    fails_at("s.bind(\"/usr/../etc\");", 3, "contains '..'");
    fails_at("s.tmpfs(\"/a/..\");", 3, "contains '..'");
    fails_at("s.bind(\"/usr\\x00\");", 3, "contains a NUL byte");
    fails_at("s.mkdir(\"a\");", 3, "mkdir path \"a\" is relative");
    fails_at("s.remount_ro(\"..\");", 3, "remount_ro path");
    fails_at("s.chmod(\"\", 0o755);", 3, "chmod path");
    fails_at("s.pivot_root(\"rootfs\");", 3, "pivot_root directory");
    fails_at("s.proc(\"proc\");", 3, "proc target");
    fails_at("s.write_file(\"f\", \"\");", 3, "write_file target");
}

#[test]
fn unknown_option_key() {
    fails_at(
        "s.tmpfs(\"/tmp\", #{ sise: \"64M\" });",
        3,
        "tmpfs options: unknown field `sise`, expected one of `size`, `mode`, `replace`",
    );
    fails_at(
        "s.bind(\"/usr\", #{ ro: true });",
        3,
        "bind options: unknown field `ro`",
    );
    fails_at("s.bind(\"/usr\", #{ rw: \"yes\" });", 3, "bind options");
}

#[test]
fn syntax_error() {
    let (message, pos, _) = failure("s.bind(\"/usr\" ;");
    assert!(message.starts_with("syntax error"), "{message}");
    assert_eq!(pos, Some(at(2, 15)));
}

#[test]
fn unknown_function() {
    fails_at(
        "  s.bnd(\"/usr\", 1);",
        5,
        "unknown function bnd(Sandbox, String, int)",
    );
    fails_at("frobnicate();", 1, "unknown function frobnicate()");
    fails_at(
        "s.bind(1, [], #{}, true, ());",
        3,
        "no function bind(Sandbox, int, array, map, bool, ()) (wrong",
    );
}

#[test]
fn wrong_argument_type() {
    let (message, pos, _) = failure("s.bind(42);");
    assert_eq!(pos, Some(at(2, 3)));
    assert!(
        message.starts_with("no function bind(Sandbox, int) (wrong argument types?)"),
        "{message}"
    );
    // The hint lists the real signatures.
    assert!(
        message.contains("bind(s: Sandbox, source: String, target: String)"),
        "{message}"
    );
}

#[test]
fn unknown_variable_is_an_error() {
    fails_at("s.bind(hom);", 8, "hom");
}

#[test]
fn eval_is_disabled() {
    let (_, pos, _) = failure("eval(\"s.bind(`/usr`)\");");
    assert_eq!(pos.map(|p| p.line), Some(2));
}

#[test]
fn infinite_loop_stops_at_the_operation_limit() {
    let (message, pos, _) = failure("loop { }");
    assert!(message.contains("operations and was stopped"), "{message}");
    assert!(message.contains(&limits::OPERATIONS.to_string()));
    assert_eq!(pos.map(|p| (p.file, p.line)), Some((FILE.into(), 2)));
}

#[test]
fn deep_recursion_stops_at_the_call_limit() {
    let text = "fn f(n) { if n == 0 { 0 } else { f(n - 1) + 1 } }\n\
                let s = sandbox(\"t\");\n  f(10000);\ns.exec([\"x\"]);\n";
    let e = eval_args(text, &[]).unwrap_err();
    let (message, pos, _) = e.parts();
    assert!(message.contains("nested deeper than"), "{message}");
    assert_eq!(pos.map(|p| (p.line, p.col)), Some((3, 3)));
    // Within the limit, recursion works.
    let ok = text.replace("10000", "20");
    eval_args(&ok, &[]).unwrap();
}

#[test]
fn huge_string_stops_at_the_size_limit() {
    let (message, pos, _) =
        failure("let x = \"0123456789\";\nwhile x.len() < 100000000 { x += x; }");
    assert!(
        message.contains("string data grew past the profile limit of 1048576 bytes"),
        "{message}"
    );
    assert_eq!(pos.map(|p| p.line), Some(3));
}

#[test]
fn huge_array_and_map_stop_at_their_limits() {
    let (message, _, _) = failure("let a = [];\nloop { a.push(1); }");
    assert!(
        message.contains("an array grew past the profile limit of 16384 items"),
        "{message}"
    );
    let (message, _, _) =
        failure("let m = #{};\nlet i = 0;\nloop { m[`k${i}`] = i; i += 1; m.len(); }");
    assert!(
        message.contains("a map grew past the profile limit of 4096 items"),
        "{message}"
    );
}

#[test]
fn data_that_escapes_the_size_checks_stops_at_the_memory_limit() {
    // `m[k] = v` is not size-checked by Rhai: a map of large strings would
    // take gigabytes within the operation limit.
    let (message, pos, _) = failure(
        "let big = \"x\";\nwhile big.len() < 500000 { big += big; }\n\
         let m = #{};\nlet i = 0;\nloop { m[`k${i}`] = big + i; i += 1; }",
    );
    assert!(
        message.contains("held more than 256 MiB of data and was stopped"),
        "{message}"
    );
    assert_eq!(pos.map(|p| p.line), Some(6));
}

#[test]
fn no_sandbox_or_two() {
    let e = eval_args("let x = 1;", &[]).unwrap_err();
    assert!(e
        .render()
        .contains("p.rhai: the profile never calls sandbox"));
    let e = eval_args(
        "let a = sandbox(\"a\");\nlet b = sandbox(\"b\");\na.exec([\"x\"]);",
        &[],
    )
    .unwrap_err();
    let (message, pos, _) = e.parts();
    assert!(message.contains("exactly one sandbox"), "{message}");
    assert_eq!(pos, Some(at(2, 9)));
}

#[test]
fn validation_errors_carry_the_step_position() {
    let (message, pos, _) = failure("s.share([\"pid\"]);\n  s.proc();");
    assert!(
        message.contains("proc needs a new PID namespace"),
        "{message}"
    );
    assert_eq!(pos, Some(at(3, 5)));
    let (message, pos, _) = failure("s.tmpfs(\"/tmp\");\ns.bind(\"/x\", \"/tmp\");");
    assert!(
        message.contains("already set up at p.rhai:2:3"),
        "{message}"
    );
    assert_eq!(pos, Some(at(3, 3)));
}

#[test]
fn validation_errors_without_a_step_point_at_the_sandbox() {
    // No exec: nothing to point at but the sandbox itself.
    let e = eval_args("\nlet s = sandbox(\"t\");\ns.tmpfs(\"/tmp\");", &[]).unwrap_err();
    let (message, pos, _) = e.parts();
    assert!(message.contains("never calls exec"), "{message}");
    assert_eq!(pos, Some(at(2, 9)));
    let (message, pos, _) = failure("s.share([\"user\"]);\ns.uid(0);");
    assert!(message.contains("need a new user namespace"), "{message}");
    assert_eq!(pos, Some(at(1, 9)));
}

// ---- modules --------------------------------------------------------------

#[test]
fn every_stdlib_module_compiles_and_evaluates() {
    let stdlib = resolver::stdlib();
    assert!(stdlib.iter().any(|(name, _)| *name == "base"));
    for (name, text) in stdlib {
        let (engine, _) = engine_for(&source(""), Default::default());
        let mut ast = engine
            .compile(text)
            .unwrap_or_else(|e| panic!("stdlib {name} does not compile: {e}"));
        ast.set_source(resolver::stdlib_source_name(name));
        let module = rhai::Module::eval_ast_as_new(Scope::new(), &ast, &engine)
            .unwrap_or_else(|e| panic!("stdlib {name} does not evaluate: {e}"));
        assert!(
            module.iter_script_fn_info().next().is_some(),
            "stdlib {name} defines no function"
        );
    }
}

#[test]
fn base_minimal_builds_a_root() {
    let text = "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
                s.exec([\"/bin/true\"]);\n";
    let plan = eval_args(text, &[]).unwrap();
    let usr = plan.fs.iter().find(|s| s.op.target() == "/usr").unwrap();
    assert_eq!(usr.op, bind("/usr", "/usr", false, false, false, false));
    assert_eq!(usr.at.file, "<stdlib>/base.rhai");
    assert!(usr.at.line > 1);
    assert!(plan.fs.iter().any(|s| matches!(s.op, FsOp::Proc { .. })));
    assert!(matches!(
        plan.fs.last().unwrap().op,
        FsOp::RemountRo { ref target } if target == "/"
    ));
}

#[test]
fn every_embedded_profile_evaluates() {
    let profiles = resolver::embedded_profiles();
    assert!(!profiles.is_empty());
    for (name, text) in profiles {
        let src = ProfileSource {
            name: format!("<profiles>/{name}.rhai"),
            text: text.to_string(),
            dir: None,
        };
        if let Err(e) = evaluate(&src, &[]) {
            panic!("profile {name} fails:\n{}", e.render());
        }
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn in_dir(dir: &std::path::Path, text: &str) -> Result<Plan, ProfileError> {
    let src = ProfileSource {
        name: write(dir, "p.rhai", text),
        text: text.into(),
        dir: Some(dir.to_path_buf()),
    };
    evaluate(&src, &[]).map(|(plan, _)| plan)
}

#[test]
fn a_library_function_adds_to_the_shared_handle() {
    let dir = tempfile::tempdir().unwrap();
    let lib = write(
        dir.path(),
        "mylib.rhai",
        "// helpers\nfn data(s) {\n    s.bind(\"/srv/data\", \"/data\", #{ rw: true });\n}\n",
    );
    let plan = in_dir(
        dir.path(),
        "import \"mylib\" as l;\nlet s = sandbox(\"t\");\nl::data(s);\ns.exec([\"x\"]);",
    )
    .unwrap();
    assert_eq!(plan.fs.len(), 1);
    assert_eq!(
        plan.fs[0].op,
        bind("/srv/data", "/data", true, false, false, false)
    );
    assert_eq!(
        plan.fs[0].at,
        Pos {
            file: lib,
            line: 3,
            col: 7
        }
    );
}

#[test]
fn a_module_next_to_the_profile_overrides_the_stdlib() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "base.rhai",
        "fn minimal(s) { s.tmpfs(\"/mine\"); }\n",
    );
    let plan = in_dir(
        dir.path(),
        "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\ns.exec([\"x\"]);",
    )
    .unwrap();
    let targets: Vec<&str> = plan.fs.iter().map(|s| s.op.target()).collect();
    assert_eq!(targets, ["/mine"]);
}

#[test]
fn subdirectory_imports() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(dir.path(), "sub/m.rhai", "fn f(s) { s.proc(); }\n");
    let plan = in_dir(
        dir.path(),
        "import \"sub/m\" as m;\nlet s = sandbox(\"t\");\nm::f(s);\ns.exec([\"x\"]);",
    )
    .unwrap();
    assert_eq!(plan.fs.len(), 1);
}

#[test]
fn an_error_in_a_library_shows_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let lib = write(
        dir.path(),
        "mylib.rhai",
        "fn inner(s) {\n  s.bind(\"rel\");\n}\nfn outer(s) {\n    inner(s);\n}\n",
    );
    let e = in_dir(
        dir.path(),
        "import \"mylib\" as l;\nlet s = sandbox(\"t\");\n  l::outer(s);\ns.exec([\"x\"]);",
    )
    .unwrap_err();
    let (message, pos, chain) = e.parts();
    assert!(
        message.contains("bind source \"rel\" is relative"),
        "{message}"
    );
    assert_eq!(
        pos,
        Some(Pos {
            file: lib.clone(),
            line: 2,
            col: 5
        })
    );
    let profile = dir.path().join("p.rhai").to_string_lossy().into_owned();
    let chain: Vec<(String, String)> = chain
        .into_iter()
        .map(|(what, pos)| (what, pos.to_string()))
        .collect();
    assert_eq!(
        chain,
        [
            (format!("in outer() from {lib}"), format!("{profile}:3:6")),
            ("in inner()".to_string(), format!("{lib}:5:5")),
        ]
    );
    let rendered = e.render();
    assert!(
        rendered.contains(&format!("called at {profile}:3:6")),
        "{rendered}"
    );
}

#[test]
fn steps_made_through_function_pointers_and_closures_keep_positions() {
    let plan = plan_of(
        "let f = Fn(\"proc\"); s.call(f);\nlet g = |p| s.bind(p);\ng.call(\"/usr\");\n\
         [\"/a\", \"/b\"].for_each(|| s.tmpfs(this));",
    );
    let got: Vec<(&str, usize)> = plan.fs.iter().map(|s| (s.op.target(), s.at.line)).collect();
    assert_eq!(got, [("/proc", 2), ("/usr", 3), ("/a", 5), ("/b", 5)]);
    assert!(plan.fs.iter().all(|s| s.at.file == FILE && s.at.col > 0));
}

#[test]
fn an_error_in_a_closure_says_closure() {
    let (message, pos, chain) = failure("let g = |p| s.bind(p);\ng.call(\"rel\");");
    assert!(message.contains("is relative"), "{message}");
    assert_eq!(pos, Some(at(2, 15)));
    assert_eq!(chain.len(), 1, "{chain:?}");
    assert_eq!(chain[0].0, "in a closure");
    assert_eq!(chain[0].1.line, 3);
}

#[test]
fn import_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (import, needle) in [
        ("/etc/passwd", "absolute paths are refused"),
        ("../x", "'..'"),
        ("./x", "'.'"),
        ("a//b", "empty components"),
        ("a b", "module names may use"),
        ("nope", "module \"nope\" not found"),
    ] {
        let text = format!("let s = sandbox(\"t\");\n  import \"{import}\" as m;\n");
        let e = in_dir(dir.path(), &text).unwrap_err();
        let (message, pos, _) = e.parts();
        assert!(message.contains(needle), "{import}: {message}");
        assert_eq!(
            pos.map(|p| (p.line, p.col)),
            Some((2, 10)),
            "{import}: {message}"
        );
    }
}

#[test]
fn import_cycles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.rhai", "import \"b\" as b;\nfn f() {}\n");
    let b = write(dir.path(), "b.rhai", "\nimport \"a\" as a;\n");
    let e = in_dir(dir.path(), "import \"a\" as a;\nlet s = sandbox(\"t\");").unwrap_err();
    let (message, pos, chain) = e.parts();
    assert_eq!(message, "import \"a\" is a cycle: a imports b imports a");
    assert_eq!(
        pos,
        Some(Pos {
            file: b,
            line: 2,
            col: 8
        })
    );
    assert_eq!(chain.len(), 2, "{chain:?}");
    // Importing itself.
    write(dir.path(), "self.rhai", "import \"self\" as me;\n");
    let e = in_dir(dir.path(), "import \"self\" as m;").unwrap_err();
    assert!(e.parts().0.contains("is a cycle: self imports self"));
}

#[test]
fn import_nesting_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let n = limits::MODULES + 5;
    for i in 0..n {
        write(
            dir.path(),
            &format!("m{i}.rhai"),
            &format!(
                "import \"m{}\" as n;\nlet x = (1 + (1 + (1 + 1)));\n",
                i + 1
            ),
        );
    }
    write(dir.path(), &format!("m{n}.rhai"), "fn f() {}\n");
    let e = in_dir(dir.path(), "import \"m0\" as m;\nlet s = sandbox(\"t\");").unwrap_err();
    let (message, pos, _) = e.parts();
    assert!(
        message.contains(&format!(
            "imports nested deeper than {} modules",
            limits::MODULES
        )),
        "{message}"
    );
    assert!(pos
        .unwrap()
        .file
        .ends_with(&format!("m{}.rhai", limits::MODULES - 1)));
    // Just within the limit, it works.
    let last = limits::MODULES - 1;
    write(dir.path(), &format!("m{last}.rhai"), "fn f() {}\n");
    in_dir(
        dir.path(),
        "import \"m0\" as m;\nlet s = sandbox(\"t\");\ns.exec([\"x\"]);",
    )
    .unwrap();
}

#[test]
fn errors_at_module_level_name_the_module() {
    let dir = tempfile::tempdir().unwrap();
    let lib = write(dir.path(), "broken.rhai", "fn f() {\n  1 +\n}\n");
    let e = in_dir(dir.path(), "import \"broken\" as b;\n").unwrap_err();
    let (message, pos, chain) = e.parts();
    assert!(message.starts_with("syntax error"), "{message}");
    assert_eq!(pos.map(|p| p.file), Some(lib.clone()));
    assert_eq!(chain.len(), 1);
    assert!(chain[0].0.contains(&lib), "{chain:?}");
    assert_eq!(chain[0].1.line, 1);
}

// ---- JSON and limits --------------------------------------------------------

#[test]
fn json_round_trip_of_an_evaluated_plan() {
    let plan = plan_of(
        "s.bind(\"/a\", \"/b\", #{ rw: true, dev: true, optional: true });\n\
         s.tmpfs(\"/t\", #{ size: \"1M\", mode: 0o700 });\ns.symlink(\"x\", \"/l\");\n\
         s.write_file(\"/f\", \"é\\\"\\n\");\ns.mkdir(\"/m\", 0o711);\ns.chmod(\"/m\", 0o700);\n\
         s.proc(); s.dev(); s.mqueue(); s.remount_ro(\"/\");\ns.pivot_root(\"/srv\");\n\
         s.env(\"A\", \"1\"); s.unsetenv(\"B\"); s.keep_env(\"C\"); s.inherit_env();\n\
         s.cwd(\"/m\"); s.hostname(\"h\"); s.uid(0); s.gid(0); s.unshare([\"time\"]);\n\
         s.keep_caps([\"chown\"]); s.die_with_parent(false); s.new_session(false);",
    );
    let text = serde_json::to_string(&plan).unwrap();
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, plan);
    let pretty = serde_json::to_string_pretty(&plan).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&pretty).unwrap(), plan);
}

#[test]
fn engine_limits_are_the_explicit_constants() {
    let (engine, _) = engine_for(&source(""), Default::default());
    assert_eq!(engine.max_operations(), limits::OPERATIONS);
    assert_eq!(engine.max_call_levels(), limits::CALL_LEVELS);
    assert_eq!(engine.max_expr_depth(), limits::EXPR_DEPTH);
    assert_eq!(engine.max_function_expr_depth(), limits::FN_EXPR_DEPTH);
    assert_eq!(engine.max_string_size(), limits::STRING_BYTES);
    assert_eq!(engine.max_array_size(), limits::ARRAY_LEN);
    assert_eq!(engine.max_map_size(), limits::MAP_LEN);
    assert_eq!(engine.max_modules(), limits::MODULES);
    assert_eq!(engine.max_variables(), limits::VARIABLES);
    assert_eq!(engine.max_functions(), limits::FUNCTIONS);
    assert!(engine.strict_variables());
    assert!(engine.fail_on_invalid_map_property());
    assert_eq!(engine.optimization_level(), rhai::OptimizationLevel::None);
}

#[test]
fn the_operation_limit_is_exact_enough_to_be_the_same_everywhere() {
    // A loop well under the limit finishes; ten times the limit does not.
    let under = format!(
        "let i = 0;\nwhile i < {} {{ i += 1; }}",
        limits::OPERATIONS / 10
    );
    plan_of(&under);
    let over = format!(
        "let i = 0;\nwhile i < {} {{ i += 1; }}",
        limits::OPERATIONS * 10
    );
    let (message, _, _) = failure(&over);
    assert!(message.contains("operations"), "{message}");
}

#[test]
fn api_definitions_are_documented() {
    let defs = api_definitions();
    assert!(defs.contains("fn bind(s: Sandbox, path: String)"), "{defs}");
    assert!(defs.contains("/// Bind-mounts the host `path`"), "{defs}");
    // Functions without a value declare `()`, never an empty return type.
    assert!(!defs.contains("-> ;"), "{defs}");
    // Every registered function has a doc comment (but the printing hooks
    // Rhai calls by convention).
    let mut previous = "";
    for line in defs.lines() {
        let hook = line.starts_with("fn to_string(") || line.starts_with("fn to_debug(");
        if line.starts_with("fn ") && !hook {
            assert!(previous.starts_with("///"), "undocumented: {line}");
        }
        previous = line;
    }
}

// ---- no panic on any input ---------------------------------------------------

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Garbled profile texts: truncations of real profiles and the stdlib, random
/// bytes, random token soup, and deep nesting.
fn garbled_inputs() -> Vec<String> {
    let mut inputs = Vec::new();
    let real: Vec<&str> = resolver::embedded_profiles()
        .iter()
        .chain(resolver::stdlib())
        .map(|(_, text)| *text)
        .collect();
    for text in &real {
        let cuts: Vec<usize> = (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        let step = (cuts.len() / 60).max(1);
        for cut in cuts.iter().step_by(step) {
            inputs.push(text[..*cut].to_string());
            inputs.push(text[*cut..].to_string());
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..60 {
        let len = rng.below(400);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let tokens = [
        "let",
        "s",
        "=",
        "sandbox",
        "(",
        ")",
        "\"t\"",
        ";",
        ".",
        "bind",
        "tmpfs",
        "exec",
        "[",
        "]",
        "{",
        "}",
        "#{",
        ":",
        ",",
        "fn",
        "f",
        "import",
        "as",
        "\"base\"",
        "loop",
        "while",
        "if",
        "else",
        "1",
        "-",
        "+",
        "*",
        "/",
        "0o777",
        "\"/usr\"",
        "ARGS",
        "return",
        "throw",
        "::",
        "\n",
        "this",
        "Fn",
        "call",
        "`${",
        "`",
        "\\",
        "'x'",
        "switch",
        "=>",
        "?.",
        "??",
        "!",
        "&&",
        "||",
        "..",
        "..=",
        "in",
        "for",
        "do",
        "until",
        "break",
        "continue",
        "private",
        "export",
        "const",
        "x",
        "99999999999999999999",
        "i64",
        "\"\\x00\"",
        "#",
        "@",
        "$",
    ];
    for _ in 0..120 {
        let n = 1 + rng.below(60);
        let text: Vec<&str> = (0..n).map(|_| tokens[rng.below(tokens.len())]).collect();
        inputs.push(text.join(" "));
    }
    for open in [
        "(",
        "[",
        "{",
        "#{a:",
        "-",
        "!",
        "f(",
        "s.bind(",
        "if true {",
        "`${",
    ] {
        inputs.push(open.repeat(5000));
        inputs.push(format!(
            "let s = sandbox(\"t\"); let x = {}1;",
            open.repeat(5000)
        ));
    }
    inputs.push(format!("let x = {};", vec!["1"; 50_000].join(" + ")));
    inputs.push(format!("let x = {};", vec!["[1]"; 5_000].join(",")));
    inputs.push(format!("let x = [{}];", vec!["1"; 50_000].join(",")));
    inputs.push(format!("fn f(x) {{ {} }}", "x = x + 1; ".repeat(5_000)));
    inputs.push("fn f() { g() }\nfn g() { f() }\nf();".into());
    inputs.push("let f = Fn(\"f\"); fn f() { call(Fn(\"f\")) }\nf();".into());
    inputs.push("let s = sandbox(\"t\"); s.exec([\"x\"]); let a = [s]; a.push(a);".into());
    inputs.push("import \"base\" as a; import \"base\" as b; import \"demo\" as c;".into());
    inputs.push(
        "env(\"\"); env(\"A=B\"); env(\"A\\x00\", \"d\"); exists(\"/\\x00\"); is_dir(\"\\x00\");\n\
         is_file(\"\"); read_link(\"\\x00\"); which(\"\\x00\"); which(\"/bin/sh\"); glob(\"[\");\n\
         glob(\"\\x00\"); kernel_at_least(-1, 9999999999); xdg_dir(\"\\x00\");"
            .into(),
    );

    inputs
}

#[test]
fn no_panic_on_any_input() {
    let inputs = garbled_inputs();
    assert!(inputs.len() > 300, "only {} inputs", inputs.len());
    for (i, text) in inputs.iter().enumerate() {
        let outcome = std::panic::catch_unwind(|| {
            let result = evaluate(&source(text), &["a".into()]);
            // Rendering an error must not panic either.
            if let Err(e) = &result {
                let _ = e.render();
            }
            result.is_ok()
        });
        assert!(
            outcome.is_ok(),
            "input {i} panicked:\n{}",
            text.chars().take(300).collect::<String>()
        );
    }
}

#[test]
fn recursive_globs_are_refused_at_their_line() {
    fails_at(
        "let x = glob(\"/**/passwd\");",
        9,
        "recursive patterns (**) are not supported",
    );
}

#[test]
fn an_unused_import_of_a_missing_module_is_still_an_error() {
    fails_at("{ import \"no_such_module\" as m; }", 10, "not found");
}
