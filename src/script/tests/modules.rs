//! Modules: imports, the stdlib, the embedded profiles.

use super::*;

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

/// What the embedded stdlib and profiles compile (the comment lines
/// blanked, the code unindented) is their text itself: the same functions and statements, each on the
/// original's line, at the original's column once `stdlib_column` adds
/// back what its line lost.
#[test]
fn the_compiled_copies_are_the_embedded_files_less_comments_and_indentation() {
    let (engine, _) = engine_for(&source(""), Default::default());
    let profiles = resolver::embedded_profiles().iter();
    let files = resolver::stdlib()
        .iter()
        .map(|(name, text)| (resolver::stdlib_source_name(name), *text))
        .chain(profiles.map(|(name, text)| (format!("<profiles>/{name}.rhai"), *text)));
    for (name, text) in files {
        let file = name.as_str();
        let code = resolver::compiled(file, text);
        assert_ne!(code, text, "{name}: compiled as it is");
        assert_eq!(code, strip::compact(text).0, "{name}");
        assert_eq!(code.split('\n').count(), text.split('\n').count(), "{name}");
        let fns = |src: &str, map: bool| {
            let mut scope = Scope::new();
            scope.push_constant("ARGS", rhai::Array::new());
            let ast = engine.compile_with_scope(&scope, src).unwrap();
            let mut fns: Vec<String> = ast
                .iter_functions()
                .map(|f| {
                    // A closure's name hashes its text.
                    let name = if f.name.starts_with("anon$") {
                        "anon"
                    } else {
                        f.name
                    };
                    format!("{name}({})", f.params.join(","))
                })
                .collect();
            fns.sort();
            // Every position of the AST's Debug form (`@ line:col`),
            // mapped back for the compiled copy.
            let body = format!("{ast:?}");
            let number = |s: &str| -> (usize, usize) {
                let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
                (digits.parse().unwrap_or(0), digits.len())
            };
            let mut positions: Vec<(usize, usize)> = body
                .split(" @ ")
                .skip(1)
                .filter_map(|rest| {
                    let (line, len) = number(rest);
                    let col = match rest[len..].strip_prefix(':') {
                        Some(after) => number(after).0,
                        None => 0,
                    };
                    let col = if map {
                        resolver::original_column(file, line, col)
                    } else {
                        col
                    };
                    (line > 0).then_some((line, col))
                })
                .collect();
            // In the order of the functions' hashes, which a closure's changes.
            positions.sort();
            (fns, positions)
        };
        let (compiled, original) = (fns(code, true), fns(text, false));
        assert!(!original.1.is_empty(), "{name}: no positions found");
        assert_eq!(compiled, original, "{name}");
    }
}

/// The positions a plan records for the stdlib's calls, and an error's
/// inside it, are the original text's: the same as those of a copy of it
/// beside the profile, which is compiled as it is.
#[test]
fn stdlib_positions_are_the_original_texts() {
    let dir = tempfile::tempdir().unwrap();
    let text = "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
                s.exec([\"/bin/true\"]);\n";
    let embedded = evaluate(&source(text), &[]).unwrap().0;
    let original = resolver::stdlib()
        .iter()
        .find(|(n, _)| *n == "base")
        .unwrap()
        .1;
    let copy = write(dir.path(), "base.rhai", original);
    let beside = in_dir(dir.path(), text).unwrap();
    let at = |plan: &Plan| -> Vec<(usize, usize)> {
        plan.fs.iter().map(|s| (s.at.line, s.at.col)).collect()
    };
    assert!(embedded
        .fs
        .iter()
        .all(|s| s.at.file == "<stdlib>/base.rhai"));
    assert!(beside.fs.iter().all(|s| s.at.file == copy));
    assert_eq!(at(&embedded), at(&beside));
    assert!(
        embedded.fs.iter().any(|s| s.at.col > 5),
        "{:?}",
        at(&embedded)
    );

    let bad = "import \"base\" as base;\nbase::etc(5);\n";
    let error = |src: &ProfileSource| -> Vec<(usize, usize)> {
        let e = evaluate(src, &[]).unwrap_err();
        let (_, pos, chain) = e.parts();
        let mut all: Vec<Pos> = chain.into_iter().map(|(_, p)| p).collect();
        all.extend(pos);
        all.iter().map(|p| (p.line, p.col)).collect()
    };
    let embedded = error(&source(bad));
    let beside = error(&ProfileSource {
        name: write(dir.path(), "p.rhai", bad),
        text: bad.into(),
        dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    });
    assert_eq!(embedded, beside);
    assert!(
        embedded.len() >= 2 && embedded.last().unwrap().1 > 5,
        "{embedded:?}"
    );
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
            modules: Vec::new(),
            ..Default::default()
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
        modules: Vec::new(),
        ..Default::default()
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

#[test]
fn did_you_mean_a_module() {
    let dir = tempfile::tempdir().unwrap();
    // Among the stdlib's modules...
    let e = in_dir(
        dir.path(),
        "let s = sandbox(\"t\");\n  import \"bsae\" as base;\n",
    )
    .unwrap_err();
    let (message, pos, _) = e.parts();
    assert!(
        message.starts_with("module \"bsae\" not found; looked in "),
        "{message}"
    );
    assert!(message.ends_with("; did you mean \"base\"?"), "{message}");
    assert_eq!(pos.map(|p| (p.line, p.col)), Some((2, 10)));
    // ... the modules beside the profile, in subdirectories too ...
    write(dir.path(), "mylib.rhai", "fn f() {}\n");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(dir.path(), "sub/tools.rhai", "fn f() {}\n");
    for (import, meant) in [("mylbi", "mylib"), ("sub/tols", "sub/tools")] {
        let text = format!("import \"{import}\" as m;\n");
        let (message, _, _) = in_dir(dir.path(), &text).unwrap_err().parts();
        assert!(
            message.ends_with(&format!("; did you mean \"{meant}\"?")),
            "{import}: {message}"
        );
    }
    // ... and nothing for a name like none of them.
    let (message, _, _) = in_dir(dir.path(), "import \"qqqqzz\" as m;\n")
        .unwrap_err()
        .parts();
    assert!(!message.contains("did you mean"), "{message}");
}
