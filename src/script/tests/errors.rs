//! Bad input: errors at file:line:col.

use super::*;

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
        "tmpfs option sise is unknown; did you mean \"size\"? \
         (options of tmpfs: size, mode, replace)",
    );
    // Too short to guess at (and `rw` is not what `ro` meant): the list only.
    fails_at(
        "s.bind(\"/usr\", #{ ro: true });",
        3,
        "bind option ro is unknown (options of bind: rw, dev, optional, replace, create, exec)",
    );
}

#[test]
fn did_you_mean_an_option_key() {
    fails_at(
        "s.bind(\"/x\", #{ opitonal: true });",
        3,
        "bind option opitonal is unknown; did you mean \"optional\"?",
    );
    fails_at(
        "s.landlock(#{ min_aib: 1 });",
        3,
        "landlock option min_aib is unknown; did you mean \"min_abi\"?",
    );
}

#[test]
fn wrong_option_type_names_the_key() {
    for (body, message) in [
        // bool, int, string, array, map fields.
        (
            "s.bind(\"/x\", #{ rw: \"yes\" });",
            "bind option rw: expected a bool, got a string",
        ),
        (
            "s.bind(\"/x\", #{ rw: () });",
            "bind option rw: expected a bool, got ()",
        ),
        (
            "s.tmpfs(\"/x\", #{ mode: \"755\" });",
            "tmpfs option mode: expected an int, got a string",
        ),
        (
            "s.network(\"user\", #{ helper: true });",
            "network option helper: expected a string, got a bool",
        ),
        (
            "s.allow_tcp(#{ connect: 443 });",
            "allow_tcp option connect: expected an array, got an int",
        ),
        (
            "s.allow_tcp(#{ connect: [\"https\"] });",
            "allow_tcp option connect: every element must be an int, found a string",
        ),
        (
            "s.helper(\"h\", [\"/bin/true\"], #{ expose: #{ a: 1 } });",
            "helper option expose: every value must be a string, found an int",
        ),
        // An option of several types says which.
        (
            "s.tmpfs(\"/x\", #{ size: true });",
            "tmpfs option size: expected bytes as an int or a string like \"64M\", got a bool",
        ),
        // The key at fault, not the other, required one.
        (
            "s.forward(#{ host: 8080, sandbox: \"80\" });",
            "forward option sandbox: expected an int, got a string",
        ),
        (
            "s.forward(#{ sandbox: 80 });",
            "forward option host is required",
        ),
    ] {
        fails_at(body, 3, message);
    }
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
        "  s.xq(\"/usr\", 1);",
        5,
        "unknown function xq(Sandbox, String, int)",
    );
    fails_at("frobnicate();", 1, "unknown function frobnicate()");
    fails_at(
        "s.bind(1, [], #{}, true, ());",
        3,
        "no function bind(Sandbox, int, array, map, bool, ()) (wrong",
    );
}

#[test]
fn did_you_mean_a_sandbox_method() {
    fails_at(
        "  s.bnd(\"/usr\", 1);",
        5,
        "unknown function bnd(Sandbox, String, int); did you mean \"bind\"?",
    );
    fails_at(
        "s.netwrok(\"none\");",
        3,
        "unknown function netwrok(Sandbox, String); did you mean \"network\"?",
    );
}

#[test]
fn did_you_mean_a_free_function() {
    fails_at(
        "let h = home_dri();",
        9,
        "unknown function home_dri(); did you mean \"home_dir\"?",
    );
    // A function of the host is not offered for a call on the sandbox, and
    // the other way round.
    let (message, _, _) = failure("s.home_dri();");
    assert!(!message.contains("did you mean"), "{message}");
    let (message, _, _) = failure("netwrok(\"none\");");
    assert!(!message.contains("did you mean"), "{message}");
}

#[test]
fn no_suggestion_for_garbage() {
    for (body, message) in [
        ("frobnicate();", "unknown function frobnicate()"),
        (
            "s.qqqqzz(\"/usr\");",
            "unknown function qqqqzz(Sandbox, String)",
        ),
        (
            "s.bind(\"/x\", #{ qqqqzz: true });",
            "bind option qqqqzz is unknown (options of bind: rw, dev, optional, replace, create, \
             exec)",
        ),
    ] {
        let (got, _, _) = failure(body);
        assert_eq!(got, message, "{body}");
    }
    let (got, _, _) = failure("import \"qqqqzz\" as q;");
    assert!(got.ends_with(", the embedded stdlib"), "{got}");
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
    // Wherever it is written, `eval` is refused where it stands, before
    // anything runs (as a method or a function's name it is no name); a
    // name that only begins with it is a name.
    const OFF: &str = "reserved keyword 'eval' is disabled";
    for (body, col, expected) in [
        ("eval(\"s.bind(`/usr`)\");", 1, OFF),
        ("let x = `${eval(\"1\")}`;", 12, OFF),
        ("let m = #{ a: eval(\"1\") };", 15, OFF),
        ("let x = \"1\".eval();", 13, "Expecting name of a property"),
        ("fn eval(x) { x }", 4, "Expecting function name"),
        ("let f = Fn(\"eval\");", 12, "reserved keyword"),
        // Built at run time, the name is refused by Fn itself.
        ("let f = Fn(\"ev\" + \"al\");", 17, "reserved keyword"),
        ("call(\"eval\", \"1\");", 6, "expecting Fn"),
    ] {
        let (message, pos, _) = failure(body);
        assert!(message.contains(expected), "{body}: {message}");
        let at = pos.map(|p| (p.line, p.col));
        assert_eq!(at, Some((2, col)), "{body}: {message}");
    }
    let evaluate = "fn evaluate(x) { x }\nlet s = sandbox(\"t\");\ns.exec([evaluate(\"x\")]);\n";
    eval_args(evaluate, &[]).unwrap();
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
