//! How a profile argument is found: a bare name never comes from the
//! working directory; the user's profile directory overrides a built-in,
//! and says so; a name that is no profile but a host program runs under the
//! default profile, with a note.

use crate::both;
use crate::common::*;
use std::path::Path;

/// A profile that, if it ever ran, would leave `marker` in its directory.
const PLANTED: &str = r#"import "base" as base;
print("PLANTED PROFILE RAN");
let s = sandbox("planted");
base::minimal(s);
let here = current_dir();
s.bind(here, #{ rw: true, replace: true });
s.exec(["/bin/sh", "-c", "echo pwned > " + here + "/marker"]);
"#;

both!(
    bare_name_never_runs_a_profile_from_the_working_directory,
    |who| {
        let dir = world_dir();
        let repo = sandbox_dir(dir.path(), "repo", who);
        write_profile(&repo, "build.rhai", PLANTED);
        write_profile(&repo, "shell.rhai", PLANTED);
        // The built-in build profile runs instead: `true` in the repository.
        let r = Run::from(
            moksha(who, &["exec", "build", "--", "true"])
                .current_dir(&repo)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert!(!repo.join("marker").exists(), "{r:?}");
        assert!(!r.stderr.contains("PLANTED"), "{r:?}");
        assert!(
        r.stderr.contains("moksha: note: ./build.rhai is not used: a profile name never comes from the working directory"),
        "{r:?}"
    );
        assert!(r.stderr.contains("moksha exec ./build.rhai"), "{r:?}");
        // `plan` resolves the same way.
        let r = Run::from(
            moksha(who, &["plan", "shell"])
                .current_dir(&repo)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert!(r.stdout.contains("<profiles>/shell.rhai"), "{r:?}");
        assert!(!r.stderr.contains("PLANTED"), "{r:?}");
        // Given as a path, the file is used (the user named it).
        let r = Run::from(
            moksha(who, &["exec", "./build.rhai"])
                .current_dir(&repo)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert!(r.stderr.contains("PLANTED PROFILE RAN"), "{r:?}");
        assert_eq!(
            std::fs::read_to_string(repo.join("marker")).unwrap(),
            "pwned\n"
        );
    }
);

both!(user_profile_overrides_a_built_in_and_says_so, |who| {
    let dir = world_dir();
    let home = owned_dir(dir.path(), "home", who);
    let profiles = home.join(".config/moksha/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let text = "import \"base\" as base;\nlet s = sandbox(\"mine\");\nbase::minimal(s);\ns.exec([\"/bin/echo\", \"my own shell\"] + ARGS);\n";
    let mine = write_profile(&profiles, "shell.rhai", text);
    let run = |args: &[&str]| Run::from(moksha(who, args).env("HOME", &home).output().unwrap());
    let r = run(&["exec", "shell", "x"]).expect_code(0);
    assert_eq!(r.stdout, "my own shell x\n", "{r:?}");
    assert_eq!(
        r.stderr,
        format!("moksha: note: using the profile {mine} (it overrides the built-in shell)\n"),
        "{r:?}"
    );
    // `moksha profiles` says which file hides which built-in.
    let r = run(&["profiles"]).expect_code(0);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("shell "))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        line.ends_with(&format!("{mine} (overrides built in)")),
        "{line}"
    );
    // A built-in profile by its name is used without a note.
    let r = run(&["exec", "demo"]).expect_code(0);
    assert!(!r.stderr.contains("note"), "{r:?}");
    assert!(Path::new(&mine).exists());
});
