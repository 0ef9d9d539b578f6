//! Profiles that expose the current directory do it through the one stdlib
//! function `home::current_dir`, which refuses `/`, the home and anything
//! above it: run from there, the program sees an empty private home.

use crate::both;
use crate::common::*;
use std::path::Path;

/// Each profile that exposes the current directory, with arguments that
/// list the home directory and the working directory.
const PROBES: &[(&str, &[&str])] = &[
    ("build", &["sh", "-c", "ls -A \"$HOME\" ."]),
    ("git", &["-c", "alias.probe=!ls -A \"$HOME\" .", "probe"]),
    (
        "node",
        &[
            "-e",
            "const fs = require('fs'); console.log(fs.readdirSync(process.env.HOME), fs.readdirSync('.'))",
        ],
    ),
    (
        "python",
        &[
            "-c",
            "import os; print(os.listdir(os.environ['HOME']), os.listdir('.'))",
        ],
    ),
];

const REFUSED: &str = "not exposing the current directory";

fn probe(who: Who, profile: &str, args: &[&str], home: &Path, cwd: &Path) -> Run {
    let mut all = vec!["exec", profile, "--"];
    all.extend_from_slice(args);
    Run::from(
        moksha(who, &all)
            .env("HOME", home)
            .current_dir(cwd)
            .output()
            .unwrap(),
    )
    .expect_code(0)
}

both!(cwd_profiles_never_expose_the_root_or_the_home, |who| {
    let dir = world_dir();
    let home = owned_dir(dir.path(), "home", who);
    std::fs::write(home.join("secret.txt"), "").unwrap();
    let proj = owned_dir(&home, "proj", who);
    std::fs::write(proj.join("proj-file"), "").unwrap();
    for (profile, args) in PROBES {
        for cwd in [home.as_path(), Path::new("/"), dir.path()] {
            let r = probe(who, profile, args, &home, cwd);
            assert!(
                !r.stdout.contains("secret.txt"),
                "{profile} from {}: {r:?}",
                cwd.display()
            );
            assert!(
                r.stderr.contains(REFUSED),
                "{profile} from {}: {r:?}",
                cwd.display()
            );
        }
        // A project directory in the home is exposed, and only it.
        let r = probe(who, profile, args, &home, &proj);
        assert!(r.stdout.contains("proj-file"), "{profile}: {r:?}");
        assert!(!r.stdout.contains("secret.txt"), "{profile}: {r:?}");
        assert!(!r.stderr.contains(REFUSED), "{profile}: {r:?}");
    }
});

/// Every shipped profile that mentions the current directory uses the
/// stdlib function rather than binding `current_dir()` itself.
#[test]
fn shipped_profiles_expose_the_cwd_only_through_home_current_dir() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // current_dir() is read only to find the repository around it; the
        // directory is bound only by the stdlib's functions, which refuse
        // the root and the home.
        let uses = text.matches("current_dir(").count();
        let through_stdlib = text.matches("home::current_dir(").count()
            + text.matches("let here = current_dir();").count();
        assert_eq!(uses, through_stdlib, "{}", path.display());
        assert!(
            !text.contains("s.bind(here") && !text.contains("s.bind(current_dir"),
            "{}",
            path.display()
        );
    }
}
