//! JSON round trips, the engine limits, and no panic on any input.

use super::*;

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

    // What the fuzzer found (scripts/fuzz): kept as regressions.
    let found =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/eval_profile");
    for entry in std::fs::read_dir(found).into_iter().flatten().flatten() {
        inputs.push(String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned());
    }
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

/// Each evaluation has its glob budget to itself: what earlier ones in the
/// same process spent (`moksha check a b c`, `moksha test`) is not taken
/// from it, and what it spends is not left to the caller's.
#[test]
fn each_evaluation_has_a_glob_budget_of_its_own() {
    use crate::script::host::{glob_limits, glob_spent, set_glob_spent};
    let spent = (glob_limits::ENTRIES, std::time::Duration::ZERO);
    set_glob_spent(spent);
    let plan = eval_args(&wrap("let n = glob(\"/*\").len();"), &[]);
    assert!(plan.is_ok(), "{plan:?}");
    assert_eq!(glob_spent(), spent);
    // Without an evaluation of its own, the spent budget refuses the glob.
    let refused = crate::script::host::glob("/*", 100);
    assert!(refused.is_err_and(|e| e.contains("directory entries")));
    set_glob_spent((0, std::time::Duration::ZERO));
}
