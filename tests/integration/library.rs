//! Profile libraries end to end, with local git repositories: added at a
//! tag, imported, run in a real sandbox; an upstream commit updated with
//! its grant diff shown first; a tampered installed copy refused naming
//! the file; removed without a trace; and what a hostile library tries.

use crate::both;
use crate::common::*;
use std::path::{Path, PathBuf};

/// A home for `who`, with moksha's XDG directories under it.
pub struct Home {
    pub dir: PathBuf,
    pub who: Who,
}

impl Home {
    pub fn new(parent: &Path, who: Who) -> Home {
        Home {
            dir: owned_dir(parent, "home", who),
            who,
        }
    }

    pub fn moksha(&self, args: &[&str]) -> Run {
        Run::from(
            moksha(self.who, args)
                .env("HOME", &self.dir)
                .output()
                .unwrap(),
        )
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join(".config/moksha/libs.lock")
    }

    pub fn store(&self, name: &str) -> PathBuf {
        self.dir.join(".local/share/moksha/libs").join(name)
    }

    /// Writes a user profile (~/.config/moksha/profiles/NAME.rhai).
    pub fn profile(&self, name: &str, text: &str) {
        let dir = self.dir.join(".config/moksha/profiles");
        std::fs::create_dir_all(&dir).unwrap();
        write_profile(&dir, &format!("{name}.rhai"), text);
        chown_tree(&self.dir.join(".config"), self.who);
    }
}

fn chown_tree(path: &Path, who: Who) {
    if who == Who::Root {
        return;
    }
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{0}:{0}", who.uid())])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs git as `who` in `repo` (a repository of theirs), failing loudly.
pub fn git(who: Who, repo: &Path, args: &[&str]) -> String {
    let out = as_user(who, "git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .env("HOME", repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A library repository owned by `who` with `files` committed (and tagged
/// when `tag` is given).
pub fn repo(
    parent: &Path,
    name: &str,
    who: Who,
    files: &[(&str, &str)],
    tag: Option<&str>,
) -> PathBuf {
    let dir = owned_dir(parent, name, who);
    git(who, &dir, &["init", "-q", "-b", "main"]);
    commit(who, &dir, files, "first", tag);
    dir
}

/// Writes `files` into `repo` and commits them.
pub fn commit(who: Who, repo: &Path, files: &[(&str, &str)], message: &str, tag: Option<&str>) {
    for (file, text) in files {
        let path = repo.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    chown_tree(repo, who);
    git(who, repo, &["add", "-A"]);
    git(who, repo, &["commit", "-q", "-m", message]);
    if let Some(tag) = tag {
        git(who, repo, &["tag", tag]);
    }
}

pub fn manifest(name: &str, modules: &[&str], profiles: &[&str]) -> String {
    let list = |l: &[&str]| {
        l.iter()
            .map(|m| format!("{m:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "name = {name:?}\nversion = \"1.0.0\"\napi = \">=1\"\nmodules = [{}]\nprofiles = [{}]\n",
        list(modules),
        list(profiles)
    )
}

/// acme's browser module: a minimal root, and (with `share`) a read-write
/// bind of that host directory.
fn browser(share: Option<&Path>) -> String {
    let extra = share.map_or_else(String::new, |p| {
        format!(
            "    s.bind({:?}, #{{ rw: true }});\n",
            p.display().to_string()
        )
    });
    format!(
        "import \"base\" as base;\n\
         fn setup(s) {{\n    base::minimal(s);\n{extra}}}\n\
         fn greeting() {{ \"hello from acme\" }}\n"
    )
}

const DEMO: &str = "import \"browser\" as b;\n\
let s = sandbox(\"demo\");\nb::setup(s);\n\
s.exec([\"/bin/sh\", \"-c\", \"echo demo: $0\", b::greeting()]);\n";

const MINE: &str = "import \"acme/browser\" as browser;\n\
let s = sandbox(\"mine\");\nbrowser::setup(s);\n\
s.exec([\"/bin/sh\", \"-c\", \"echo mine: $0; ls /srv/shared 2>&1 | head -1\", browser::greeting()] + ARGS);\n";

both!(
    added_at_a_tag_imported_run_updated_with_its_grant_diff_tampered_removed,
    |who| {
        let dir = world_dir();
        let home = Home::new(dir.path(), who);
        let shared = sandbox_dir(dir.path(), "shared", who);
        std::fs::write(shared.join("shared-marker"), "x").unwrap();
        let upstream = repo(
            dir.path(),
            "acme",
            who,
            &[
                (
                    "moksha-lib.toml",
                    &manifest("acme", &["browser"], &["demo"]),
                ),
                ("modules/browser.rhai", &browser(None)),
                ("profiles/demo.rhai", DEMO),
                ("README.md", "not part of the library"),
            ],
            Some("v1"),
        );
        let url = format!("file://{}", upstream.display());
        // A commit after the tag is not what the tag pins.
        commit(
            who,
            &upstream,
            &[("modules/later.rhai", "fn x() { 1 }\n")],
            "later",
            None,
        );

        let r = home
            .moksha(&["lib", "add", &url, "--rev", "v1"])
            .expect_code(0);
        assert!(r.stdout.contains("added acme 1.0.0 at v1"), "{r:?}");
        let v1 = git(who, &upstream, &["rev-parse", "v1"]).trim().to_string();
        let lock = std::fs::read_to_string(home.lock()).unwrap();
        assert!(lock.contains(&format!("commit = \"{v1}\"")), "{lock}");
        assert!(!home.store("acme").join("modules/later.rhai").exists());
        assert!(!home.store("acme").join("README.md").exists());

        // Imported by a user profile, and the library's own profile: real runs.
        home.profile(
            "mine",
            &MINE.replace("/srv/shared", &shared.display().to_string()),
        );
        let r = home.moksha(&["exec", "mine"]).expect_code(0);
        assert!(r.stdout.starts_with("mine: hello from acme\n"), "{r:?}");
        assert!(
            !r.stdout.contains("shared-marker"),
            "the share is not bound yet: {r:?}"
        );
        let r = home.moksha(&["exec", "acme/demo"]).expect_code(0);
        assert_eq!(r.stdout, "demo: hello from acme\n", "{r:?}");
        // A file of that relative path in the working directory is not used.
        let cwd = owned_dir(dir.path(), "cwd", who);
        std::fs::create_dir_all(cwd.join("acme")).unwrap();
        write_profile(&cwd.join("acme"), "demo", "print(\"PLANTED\");\n");
        let r = Run::from(
            moksha(who, &["exec", "acme/demo"])
                .env("HOME", &home.dir)
                .current_dir(&cwd)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert_eq!(r.stdout, "demo: hello from acme\n", "{r:?}");
        assert!(!r.stderr.contains("PLANTED"), "{r:?}");
        assert!(r.stderr.contains("./acme/demo is not used"), "{r:?}");
        let r = home.moksha(&["profiles"]).expect_code(0);
        assert!(
            r.stdout.contains(&format!(
                "acme/demo        {} (library acme)",
                home.store("acme").join("profiles/demo.rhai").display()
            )),
            "{r:?}"
        );
        let r = home.moksha(&["lib", "show", "acme"]).expect_code(0);
        assert!(
            r.stdout.contains(&format!(
                "acme/browser             {}",
                home.store("acme").join("modules/browser.rhai").display()
            )),
            "{r:?}"
        );

        // Upstream binds a host directory read-write: the update shows it
        // before anything is applied, and without a terminal or --yes applies
        // nothing.
        commit(
            who,
            &upstream,
            &[("modules/browser.rhai", &browser(Some(&shared)))],
            "share a directory",
            Some("v2"),
        );
        let r = home
            .moksha(&["lib", "update", "acme", "--rev", "v2"])
            .expect_code(1);
        let bind_line = r
            .stdout
            .lines()
            .find(|l| l.contains(&shared.display().to_string()) && l.contains("read, write"))
            .unwrap_or_else(|| panic!("no new rw bind in the diff: {r:?}"));
        assert!(bind_line.contains("acme@"), "{bind_line}");
        assert!(r.stdout.contains("profile mine:"), "{r:?}");
        assert!(r.stdout.contains("added by the update"), "{r:?}");
        assert!(r.stderr.contains("not applied"), "{r:?}");
        assert_eq!(std::fs::read_to_string(home.lock()).unwrap(), lock);
        let r = home
            .moksha(&["lib", "update", "acme", "--rev", "v2", "--yes"])
            .expect_code(0);
        assert!(r.stdout.contains("updated acme 1.0.0"), "{r:?}");
        let v2 = git(who, &upstream, &["rev-parse", "v2"]).trim().to_string();
        let lock2 = std::fs::read_to_string(home.lock()).unwrap();
        assert!(
            lock2.contains(&format!("commit = \"{v2}\"")) && lock2.contains("rev = \"v2\""),
            "{lock2}"
        );
        let r = home.moksha(&["exec", "mine"]).expect_code(0);
        assert_eq!(r.stdout, "mine: hello from acme\nshared-marker\n", "{r:?}");

        // A library that does not evaluate is not applied.
        commit(
            who,
            &upstream,
            &[("modules/browser.rhai", "fn setup(s) { s.no_such_call(); \n")],
            "broken",
            Some("v3"),
        );
        let r = home
            .moksha(&["lib", "update", "acme", "--rev", "v3", "--yes"])
            .expect_code(1);
        assert!(
            r.stderr
                .contains("does not evaluate, so it is not installed"),
            "{r:?}"
        );
        assert!(r.stderr.contains("modules/browser.rhai:"), "{r:?}");
        assert_eq!(std::fs::read_to_string(home.lock()).unwrap(), lock2);

        // Tampered with: refused, naming the file, until pinned again.
        let installed = home.store("acme").join("modules/browser.rhai");
        let mut text = std::fs::read_to_string(&installed).unwrap();
        text.push_str("fn greeting() { \"tampered\" }\n");
        std::fs::write(&installed, text).unwrap();
        let r = home.moksha(&["exec", "mine"]).expect_code(1);
        assert!(
            r.stderr.contains(&format!(
                "{} was modified since it was pinned",
                installed.display()
            )),
            "{r:?}"
        );
        assert!(!r.stdout.contains("tampered"), "{r:?}");
        let r = home.moksha(&["exec", "acme/demo"]).expect_code(1);
        assert!(r.stderr.contains(&installed.display().to_string()), "{r:?}");
        let r = home
            .moksha(&["lib", "update", "acme", "--yes"])
            .expect_code(0);
        assert!(r.stdout.contains("does not match its pin"), "{r:?}");
        let r = home.moksha(&["exec", "mine"]).expect_code(0);
        assert!(r.stdout.starts_with("mine: hello from acme\n"), "{r:?}");

        // Removed: no copy, no lock, no empty directories; the import fails.
        home.moksha(&["lib", "remove", "acme"]).expect_code(0);
        assert!(!home.lock().exists());
        assert!(!home.dir.join(".local/share/moksha").exists());
        let r = home.moksha(&["exec", "mine"]).expect_code(1);
        assert!(
            r.stderr.contains("module \"acme/browser\" not found"),
            "{r:?}"
        );
        let r = home.moksha(&["lib", "list"]).expect_code(0);
        assert!(r.stdout.contains("no libraries installed"), "{r:?}");
    }
);

both!(
    two_libraries_with_a_module_of_the_same_name_do_not_clash,
    |who| {
        let dir = world_dir();
        let home = Home::new(dir.path(), who);
        for name in ["acme", "zeta"] {
            let path = repo(
                dir.path(),
                name,
                who,
                &[
                    ("moksha-lib.toml", &manifest(name, &["util", "api"], &[])),
                    ("modules/util.rhai", &format!("fn who() {{ {name:?} }}\n")),
                    // Its own `util`, by the library-relative import.
                    (
                        "modules/api.rhai",
                        "import \"util\" as u;\nfn who() { u::who() }\n\
                         fn planted() { import \"planted\" as p; p::x() }\n",
                    ),
                ],
                None,
            );
            home.moksha(&["lib", "add", &path.display().to_string()])
                .expect_code(0);
        }
        let profile = "import \"acme/api\" as a;\nimport \"zeta/api\" as z;\n\
        import \"acme/util\" as au;\nimport \"zeta/util\" as zu;\n\
        import \"base\" as base;\nlet s = sandbox(\"both\");\nbase::minimal(s);\n\
        s.exec([\"/bin/echo\", a::who(), z::who(), au::who(), zu::who()]);\n";
        home.profile("both", profile);
        let r = home.moksha(&["exec", "both"]).expect_code(0);
        assert_eq!(r.stdout, "acme zeta acme zeta\n", "{r:?}");
        // A library's import (even one run later, inside a function) never
        // looks beside the profile that imported the library.
        home.profile("planted", "fn x() { \"PLANTED\" }\n");
        home.profile(
            "uses",
            &profile.replace("a::who(), z::who()", "a::planted()"),
        );
        let r = home.moksha(&["plan", "uses"]).expect_code(1);
        assert!(r.stderr.contains("module \"planted\" not found"), "{r:?}");
        assert!(!r.stdout.contains("PLANTED"), "{r:?}");
    }
);

#[test]
fn what_a_published_library_tries_is_refused() {
    let who = Who::Root;
    let dir = world_dir();
    let home = Home::new(dir.path(), who);
    let secret = home.dir.join(".ssh");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("id_ed25519"), "PRIVATE KEY").unwrap();
    let add = |repo: &Path, extra: &[&str]| {
        let source = repo.display().to_string();
        let mut args = vec!["lib", "add", source.as_str()];
        args.extend_from_slice(extra);
        home.moksha(&args)
    };
    let nothing_installed = || {
        assert!(!home.lock().exists());
        let data = home.dir.join(".local/share/moksha");
        assert!(!data.exists(), "a failed add left {}", data.display());
    };

    // A manifest path that climbs out.
    let r = repo(
        dir.path(),
        "climb",
        who,
        &[(
            "moksha-lib.toml",
            &manifest("climb", &["../../.ssh/id_ed25519"], &[]),
        )],
        None,
    );
    let out = add(&r, &[]).expect_code(1);
    assert!(
        out.stderr.contains("module \"../../.ssh/id_ed25519\""),
        "{out:?}"
    );
    nothing_installed();

    // A symlink in the repository pointing at the user's keys, as a module
    // and as the whole modules directory.
    let r = repo(
        dir.path(),
        "link",
        who,
        &[("moksha-lib.toml", &manifest("link", &["key"], &[]))],
        None,
    );
    std::fs::create_dir_all(r.join("modules")).unwrap();
    std::os::unix::fs::symlink(secret.join("id_ed25519"), r.join("modules/key.rhai")).unwrap();
    git(who, &r, &["add", "-A"]);
    git(who, &r, &["commit", "-q", "-m", "link"]);
    let out = add(&r, &[]).expect_code(1);
    assert!(
        out.stderr.contains("modules/key.rhai is a symbolic link"),
        "{out:?}"
    );
    nothing_installed();
    let r2 = repo(
        dir.path(),
        "dirlink",
        who,
        &[("moksha-lib.toml", &manifest("dirlink", &[], &[]))],
        None,
    );
    std::os::unix::fs::symlink(&secret, r2.join("modules")).unwrap();
    git(who, &r2, &["add", "-A"]);
    git(who, &r2, &["commit", "-q", "-m", "link"]);
    let out = add(&r2, &[]).expect_code(1);
    assert!(out.stderr.contains("modules is a symbolic link"), "{out:?}");
    nothing_installed();

    // A huge module.
    let big = format!("// {}\n", "x".repeat(2 << 20));
    let r = repo(
        dir.path(),
        "big",
        who,
        &[
            ("moksha-lib.toml", &manifest("big", &["big"], &[])),
            ("modules/big.rhai", &big),
        ],
        None,
    );
    let out = add(&r, &[]).expect_code(1);
    assert!(
        out.stderr
            .contains("modules/big.rhai is larger than 1048576 bytes"),
        "{out:?}"
    );
    nothing_installed();

    // A name that is a path, by the manifest or by --name.
    let good = repo(
        dir.path(),
        "good",
        who,
        &[
            ("moksha-lib.toml", &manifest("good", &["m"], &[])),
            ("modules/m.rhai", "fn f() { 1 }\n"),
        ],
        None,
    );
    let out = add(&good, &["--name", "../../x"]).expect_code(1);
    assert!(
        out.stderr.contains("\"../../x\" is not a library name"),
        "{out:?}"
    );
    let r = repo(
        dir.path(),
        "named",
        who,
        &[("moksha-lib.toml", &manifest("../../x", &[], &[]))],
        None,
    );
    let out = add(&r, &[]).expect_code(1);
    assert!(out.stderr.contains("is not a library name"), "{out:?}");
    nothing_installed();

    // Options for git, as the source or the rev; the ext:: transport.
    let marker = dir.path().join("ran");
    let inject = format!("--upload-pack=touch {}", marker.display());
    let out = home.moksha(&["lib", "add", "--", &inject]).expect_code(1);
    assert!(out.stderr.contains("may not start with '-'"), "{out:?}");
    let out = add(&good, &["--rev", "--output=/tmp/x"]);
    assert_ne!(out.code, 0, "{out:?}");
    let ext = format!("ext::sh -c touch% {}", marker.display());
    let out = home.moksha(&["lib", "add", &ext]).expect_code(1);
    assert!(out.stderr.contains("git failed"), "{out:?}");
    assert!(!marker.exists(), "git ran a command of the source's");
    nothing_installed();

    // Hooks: the user's own hooksPath (here a stand-in for any hook a
    // clone might run) is not used for moksha's clone.
    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in [
        "post-checkout",
        "reference-transaction",
        "post-index-change",
    ] {
        let path = hooks.join(hook);
        std::fs::write(&path, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    std::fs::write(
        home.dir.join(".gitconfig"),
        format!("[core]\n\thooksPath = {}\n", hooks.display()),
    )
    .unwrap();
    let out = add(&good, &[]).expect_code(0);
    assert!(!marker.exists(), "a hook ran: {out:?}");
    home.moksha(&["lib", "remove", "good"]).expect_code(0);

    // Rhai only, and what a profile may do: eval is no function, and the
    // module fails at its line, so nothing is installed.
    let r = repo(
        dir.path(),
        "evil",
        who,
        &[
            ("moksha-lib.toml", &manifest("evil", &["m"], &[])),
            ("modules/m.rhai", "fn f() { 1 }\nlet x = eval(\"1\");\n"),
        ],
        None,
    );
    let out = add(&r, &[]).expect_code(1);
    assert!(out.stderr.contains("modules/m.rhai:2:"), "{out:?}");
    assert!(
        out.stderr
            .contains("does not evaluate, so it is not installed"),
        "{out:?}"
    );
    nothing_installed();

    // A library's import stays inside it: no `..`, and nothing beside the
    // profile that imports it.
    let r = repo(
        dir.path(),
        "inside",
        who,
        &[
            ("moksha-lib.toml", &manifest("inside", &["m"], &[])),
            (
                "modules/m.rhai",
                "import \"../../../.ssh/id_ed25519\" as k;\n",
            ),
        ],
        None,
    );
    let out = add(&r, &[]).expect_code(1);
    assert!(
        out.stderr
            .contains("'..', '.' and empty components are refused"),
        "{out:?}"
    );
    nothing_installed();
}

#[test]
fn an_update_at_a_terminal_applies_only_when_confirmed() {
    let who = Who::Root;
    let dir = world_dir();
    let home = Home::new(dir.path(), who);
    let upstream = repo(
        dir.path(),
        "acme",
        who,
        &[
            (
                "moksha-lib.toml",
                &manifest("acme", &["browser"], &["demo"]),
            ),
            ("modules/browser.rhai", &browser(None)),
            ("profiles/demo.rhai", DEMO),
        ],
        Some("v1"),
    );
    home.moksha(&["lib", "add", &upstream.display().to_string(), "--rev", "v1"])
        .expect_code(0);
    commit(
        who,
        &upstream,
        &[("modules/browser.rhai", &browser(Some(dir.path())))],
        "share",
        Some("v2"),
    );
    let lock = std::fs::read_to_string(home.lock()).unwrap();
    let update = || {
        let mut cmd = moksha(who, &["lib", "update", "acme", "--rev", "v2"]);
        cmd.env("HOME", &home.dir).env("TERM", "dumb");
        Pty::spawn(cmd)
    };
    let mut t = update();
    t.expect("apply the update to acme 1.0.0", 30);
    t.send("n\n");
    assert_eq!(t.wait(), 1);
    assert_eq!(std::fs::read_to_string(home.lock()).unwrap(), lock);
    let mut t = update();
    let screen = t.expect("[y/N]", 30);
    assert!(screen.contains("added by the update"), "{screen}");
    t.send("y\n");
    t.expect("updated acme 1.0.0", 30);
    assert_eq!(t.wait(), 0);
    assert!(std::fs::read_to_string(home.lock())
        .unwrap()
        .contains("rev = \"v2\""));
}

#[test]
fn an_update_under_which_a_profile_no_longer_evaluates_is_not_applied() {
    let who = Who::Root;
    let dir = world_dir();
    let home = Home::new(dir.path(), who);
    let upstream = repo(
        dir.path(),
        "acme",
        who,
        &[
            ("moksha-lib.toml", &manifest("acme", &["browser"], &[])),
            ("modules/browser.rhai", &browser(None)),
        ],
        None,
    );
    home.moksha(&["lib", "add", &upstream.display().to_string()])
        .expect_code(0);
    home.profile("mine", MINE);
    home.moksha(&["exec", "mine"]).expect_code(0);
    // The module still evaluates, but the function the profile calls is gone.
    let without = browser(None).replace("fn greeting() { \"hello from acme\" }\n", "");
    commit(
        who,
        &upstream,
        &[("modules/browser.rhai", &without)],
        "drop greeting",
        None,
    );
    let lock = std::fs::read_to_string(home.lock()).unwrap();
    let r = home
        .moksha(&["lib", "update", "acme", "--yes"])
        .expect_code(1);
    assert!(
        r.stdout
            .contains("profile mine: does not evaluate after the update"),
        "{r:?}"
    );
    assert!(r.stdout.contains("greeting"), "{r:?}");
    assert!(
        r.stderr
            .contains("not applied: a profile that evaluated with acme 1.0.0"),
        "{r:?}"
    );
    assert_eq!(std::fs::read_to_string(home.lock()).unwrap(), lock);
    home.moksha(&["exec", "mine"]).expect_code(0);
}
