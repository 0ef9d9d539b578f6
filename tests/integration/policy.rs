//! `moksha test`: the repository's own policy tests pass (so CI fails when
//! a shipped profile or the stdlib loosens what they assert), a broken test
//! fails naming its line, and a new library passes its own tests.

use crate::both;
use crate::common::*;
use std::path::Path;

fn repo_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

both!(the_repository_s_policy_tests_pass, |who| {
    let r = Run::from(
        moksha(who, &["test", "tests/policy"])
            .current_dir(repo_dir())
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("ok    tests/policy/profiles.test.rhai"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("ok    tests/policy/stdlib.test.rhai"),
        "{r:?}"
    );
    assert!(r.stdout.contains(", 0 failed;"), "{r:?}");
});

#[test]
fn a_broken_test_fails_with_its_line_and_message() {
    let dir = world_dir();
    let fixtures = repo_dir().join("tests/policy/fixtures");
    let minimal = fixtures.join("minimal.rhai").display().to_string();
    let test = format!(
        "let plan = plan_of({minimal:?});\n\
         assert_network(plan, \"none\");\n\
         assert_network(plan, \"host\");\n\
         assert(plan.fs.len() == 0, \"the plan has no filesystem step\");\n\
         assert_no_bind(plan, \"/usr/bin\");\n\
         assert_denied(plan, \"read\");\n"
    );
    let file = write_profile(dir.path(), "broken.test.rhai", &test);
    let r = Run::from(moksha(Who::Root, &["test", &file]).output().unwrap()).expect_code(1);
    assert!(r.stdout.contains("4 of 5 assertions failed"), "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "{file}:3:1: assertion failed: the network is none"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "{file}:4:1: assertion failed: the plan has no filesystem step"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "{file}:5:1: assertion failed: /usr is bound read-only at /usr"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "{file}:6:1: assertion failed: read is not refused"
        )),
        "{r:?}"
    );
    // A profile that does not evaluate stops the file at the call.
    let bad = write_profile(
        dir.path(),
        "bad.rhai",
        "let s = sandbox(\"x\");\ns.bind(\"relative\");\n",
    );
    write_profile(
        dir.path(),
        "stops.test.rhai",
        &format!("assert(true, \"runs\");\nlet p = plan_of({bad:?});\n"),
    );
    let r = Run::from(
        moksha(
            Who::Root,
            &[
                "test",
                &dir.path().join("stops.test.rhai").display().to_string(),
            ],
        )
        .output()
        .unwrap(),
    )
    .expect_code(1);
    assert!(r.stdout.contains("stops.test.rhai:2:9"), "{r:?}");
    assert!(r.stdout.contains("bad.rhai:2:"), "{r:?}");
    // No test file, or one without an assertion, is a failure too.
    let empty = owned_dir(dir.path(), "empty", Who::Root);
    let r = Run::from(
        moksha(Who::Root, &["test", &empty.display().to_string()])
            .output()
            .unwrap(),
    )
    .expect_code(1);
    assert!(r.stderr.contains("nothing was tested"), "{r:?}");
    write_profile(&empty, "none.test.rhai", "let x = 1;\n");
    let r = Run::from(
        moksha(Who::Root, &["test", &empty.display().to_string()])
            .output()
            .unwrap(),
    )
    .expect_code(1);
    assert!(r.stdout.contains("it makes no assertion"), "{r:?}");
}

both!(
    a_new_library_passes_its_own_tests_from_its_working_copy,
    |who| {
        let dir = world_dir();
        let work = owned_dir(dir.path(), "work", who);
        let r = Run::from(
            moksha(who, &["lib", "new", "acme"])
                .current_dir(&work)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert!(r.stdout.contains("created the library acme"), "{r:?}");
        let lib = work.join("acme");
        for file in [
            "moksha-lib.toml",
            "modules/tools.rhai",
            "profiles/hello.rhai",
            "tests/hello.test.rhai",
        ] {
            assert!(lib.join(file).is_file(), "{file}");
        }
        // From the library's root, as its CI runs it: the library is the
        // working copy (nothing is installed).
        let r =
            Run::from(moksha(who, &["test"]).current_dir(&lib).output().unwrap()).expect_code(0);
        assert!(
            r.stdout.contains("library acme from its working copy"),
            "{r:?}"
        );
        assert!(
            r.stdout
                .contains("ok    ./tests/hello.test.rhai (4 assertions)"),
            "{r:?}"
        );
        // An edit that loosens the policy fails the library's test at its line.
        let tools = lib.join("modules/tools.rhai");
        let text = std::fs::read_to_string(&tools).unwrap();
        std::fs::write(
            &tools,
            text.replace("s.network(\"none\");", "s.network(\"host\");"),
        )
        .unwrap();
        let r =
            Run::from(moksha(who, &["test"]).current_dir(&lib).output().unwrap()).expect_code(1);
        assert!(
            r.stdout
                .contains("./tests/hello.test.rhai:3:1: assertion failed: the network is host"),
            "{r:?}"
        );
        // Its profiles run from the working copy too, for real.
        std::fs::write(&tools, text).unwrap();
        let r = Run::from(
            moksha(who, &["exec", "profiles/hello.rhai", "x"])
                .current_dir(&lib)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert_eq!(r.stdout, "hello from a sandbox x\n", "{r:?}");
    }
);
