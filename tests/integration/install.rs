//! `moksha install` / `uninstall`: wrappers in ~/.local/bin and .desktop
//! overrides in ~/.local/share/applications, with HOME in a temporary
//! directory; a fixture application (a user profile, a program on PATH,
//! desktop files under XDG_DATA_DIRS) and the system's firefox-esr.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A program that prints each of its arguments as `<arg>`, then whether
/// it runs with no_new_privs (as it does in a sandbox).
const SHOWARGS: &str =
    "#!/bin/sh\nfor a; do printf '<%s>' \"$a\"; done; echo; grep NoNewPrivs /proc/self/status\n";

/// What SHOWARGS prints after the arguments, in the sandbox.
const BOXED: &str = "\nNoNewPrivs:\t1\n";

/// Its desktop file: actions, quoting, field codes, a D-Bus activation
/// and lines that must be kept as they are.
const DESKTOP: &str = r#"[Desktop Entry]
Version=1.0
Type=Application
Name=Show Args
Name[fr]=Montre les arguments
Comment=Shows = arguments
TryExec=showargs
Exec=showargs --title "Show Args" %F
Icon=showargs
DBusActivatable=true
MimeType=text/plain;
Actions=new-window;private;

[Desktop Action new-window]
Name=New Window
Exec=/usr/local/bin/showargs --new-window %u

[Desktop Action private]
Name=Private
Exec=showargs "--private window" "a \\"quoted\\" \\$arg"
"#;

/// A user with a temporary home, a program `showargs` on PATH, its
/// profile in ~/.config/moksha/profiles and desktop files in a data dir.
struct Fixture {
    who: Who,
    _root: tempfile::TempDir,
    home: PathBuf,
    path: String,
    data: PathBuf,
}

impl Fixture {
    fn new(who: Who) -> Fixture {
        let root = world_dir();
        let home = owned_dir(root.path(), "home", who);
        let bin = owned_dir(root.path(), "bin", Who::Root);
        write_profile(&bin, "showargs", SHOWARGS);
        std::fs::set_permissions(bin.join("showargs"), PermissionsExt::from_mode(0o755)).unwrap();
        let profiles = home.join(".config/moksha/profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        let profile = format!(
            "import \"base\" as base;\nlet s = sandbox(\"showargs\");\nbase::minimal(s);\n\
             s.bind({}, \"/opt/showargs\");\n\
             s.env(\"PATH\", \"/opt/showargs:/usr/bin:/bin\");\n\
             s.exec([\"showargs\"] + ARGS);\n",
            rhai_string(&bin.to_string_lossy())
        );
        write_profile(&profiles, "showargs.rhai", &profile);
        write_profile(
            &profiles,
            "missing.rhai",
            "let s = sandbox(\"m\");\ns.exec([\"no-such-program-on-this-host\"]);\n",
        );
        let data = owned_dir(root.path(), "data", Who::Root);
        let apps = owned_dir(&data, "applications", Who::Root);
        write_profile(&apps, "org.example.ShowArgs.desktop", DESKTOP);
        // Another application's file, in a subdirectory: not copied.
        let sub = owned_dir(&apps, "other", Who::Root);
        write_profile(
            &sub,
            "true.desktop",
            "[Desktop Entry]\nType=Application\nName=True\nExec=true\n",
        );
        Fixture {
            who,
            path: format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
            _root: root,
            home,
            data,
        }
    }

    /// `moksha ARGS` as the fixture's user.
    fn moksha(&self, args: &[&str]) -> Run {
        let mut cmd = moksha(self.who, args);
        cmd.env("HOME", &self.home)
            .env("PATH", &self.path)
            .env("XDG_DATA_DIRS", &self.data);
        Run::from(cmd.output().unwrap())
    }

    /// A shell command line as the fixture's user, in the same environment.
    fn sh(&self, line: &str) -> Run {
        let mut cmd = as_user(self.who, "/bin/sh");
        cmd.args(["-c", line])
            .env_clear()
            .env("HOME", &self.home)
            .env(
                "PATH",
                format!("{}:{}", self.home.join(".local/bin").display(), self.path),
            )
            .current_dir("/");
        Run::from(cmd.output().unwrap())
    }

    fn wrapper(&self) -> PathBuf {
        self.home.join(".local/bin/showargs")
    }

    fn desktop(&self) -> PathBuf {
        self.home
            .join(".local/share/applications/org.example.ShowArgs.desktop")
    }

    fn manifest(&self) -> PathBuf {
        self.home.join(".local/share/moksha/installed.json")
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `Exec=` values of a desktop file.
fn execs(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("Exec="))
        .collect()
}

both!(install_writes_a_wrapper_and_desktop_overrides, |who| {
    let f = Fixture::new(who);
    let bin = moksha_bin().to_string_lossy().into_owned();
    let r = f.moksha(&["install", "showargs"]).expect_code(0);
    assert!(
        r.stdout.contains(&f.wrapper().display().to_string()),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "{} (from {}/applications/org.example.ShowArgs.desktop)",
            f.desktop().display(),
            f.data.display()
        )),
        "{r:?}"
    );

    // The wrapper runs the program in its sandbox, arguments unchanged.
    let wrapper = read(&f.wrapper());
    assert!(wrapper.starts_with("#!/bin/sh\n"), "{wrapper}");
    assert!(
        wrapper.contains(&format!("\nexec {bin} exec showargs -- \"$@\"\n")),
        "{wrapper}"
    );
    let mode = std::fs::metadata(f.wrapper()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let out = f.sh("showargs 'two words' '' x").expect_code(0);
    assert_eq!(out.stdout, format!("<two words><><x>{BOXED}"), "{out:?}");

    // Every Exec goes through moksha, field codes and quoting kept.
    let desktop = read(&f.desktop());
    assert_eq!(
        execs(&desktop),
        [
            format!("{bin} exec showargs -- --title \"Show Args\" %F"),
            format!("{bin} exec showargs -- --new-window %u"),
            format!(
                "{bin} exec showargs -- \"--private window\" \"a \\\\\"quoted\\\\\" \\\\$arg\""
            ),
        ],
        "{desktop}"
    );
    assert!(desktop.starts_with("# Written by `moksha install showargs`"));
    for line in [
        format!("TryExec={bin}"),
        "DBusActivatable=false".into(),
        "Name[fr]=Montre les arguments".into(),
        "Comment=Shows = arguments".into(),
        "MimeType=text/plain;".into(),
        "[Desktop Action private]".into(),
    ] {
        assert!(desktop.lines().any(|l| l == line), "{line}:\n{desktop}");
    }
    // The launcher's way: the string unescaped, then a shell-compatible line.
    let action = execs(&desktop)[2].replace("\\\\", "\\");
    let out = f.sh(&action).expect_code(0);
    assert_eq!(
        out.stdout,
        format!("<--private window><a \"quoted\" $arg>{BOXED}"),
        "{out:?}"
    );
    let main = execs(&desktop)[0].replace("%F", "/etc/hostname");
    let out = f.sh(&main).expect_code(0);
    assert_eq!(
        out.stdout,
        format!("<--title><Show Args></etc/hostname>{BOXED}"),
        "{out:?}"
    );
    assert!(
        !f.home
            .join(".local/share/applications/other-true.desktop")
            .exists(),
        "another program's desktop file is not copied"
    );

    let list = f.moksha(&["install", "--list"]).expect_code(0);
    for path in [f.wrapper(), f.desktop()] {
        let line = format!("showargs  installed  {}", path.display());
        assert!(list.stdout.contains(&line), "{line}:\n{list:?}");
    }
    // Installing again rewrites its own files.
    f.moksha(&["install", "showargs"]).expect_code(0);

    let r = f.moksha(&["uninstall", "showargs"]).expect_code(0);
    assert!(r.stdout.contains("removed"), "{r:?}");
    assert!(!f.wrapper().exists() && !f.desktop().exists());
    assert!(
        !f.manifest().exists(),
        "the manifest goes with the last file"
    );
    let list = f.moksha(&["install", "--list"]).expect_code(0);
    assert!(list.stdout.contains("installed nothing"), "{list:?}");
    assert!(
        list.stdout.contains("showargs"),
        "it is installable: {list:?}"
    );
});

both!(
    install_never_overwrites_or_removes_files_it_did_not_write,
    |who| {
        let f = Fixture::new(who);
        let local = owned_dir(&f.home, ".local", who);
        let bin = owned_dir(&local, "bin", who);
        std::fs::write(bin.join("showargs"), "#!/bin/sh\necho mine\n").unwrap();
        let r = f.moksha(&["install", "showargs"]).expect_code(1);
        assert!(
            r.stderr.contains(&format!(
                "{} exists and moksha did not write it",
                f.wrapper().display()
            )) && r.stderr.contains("nothing was installed"),
            "{r:?}"
        );
        assert_eq!(read(&f.wrapper()), "#!/bin/sh\necho mine\n");
        assert!(
            !f.desktop().exists() && !f.manifest().exists(),
            "nothing touched"
        );

        // A symlink there is not followed, not replaced.
        let target = f.home.join("target");
        std::fs::write(&target, "keep").unwrap();
        std::fs::remove_file(f.wrapper()).unwrap();
        std::os::unix::fs::symlink(&target, f.wrapper()).unwrap();
        f.moksha(&["install", "showargs"]).expect_code(1);
        assert_eq!(read(&target), "keep");
        assert!(std::fs::symlink_metadata(f.wrapper())
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_file(f.wrapper()).unwrap();

        // Uninstall removes what is unchanged and keeps what the user edited.
        f.moksha(&["install", "showargs"]).expect_code(0);
        let edited = format!("{}\n# my change\n", read(&f.desktop()));
        std::fs::write(f.desktop(), &edited).unwrap();
        let r = f.moksha(&["uninstall", "--all"]).expect_code(0);
        assert!(!f.wrapper().exists(), "{r:?}");
        assert_eq!(read(&f.desktop()), edited, "the edited file is kept");
        assert!(
            r.stderr
                .contains(&format!("kept {}", f.desktop().display()))
                && r.stderr.contains("changed since moksha wrote it"),
            "{r:?}"
        );
        // It is the user's file now: install refuses to overwrite it.
        let r = f.moksha(&["install", "showargs"]).expect_code(1);
        assert!(r.stderr.contains("moksha did not write it"), "{r:?}");
        assert!(!f.wrapper().exists(), "nothing touched: {r:?}");
        let r = f.moksha(&["uninstall", "showargs"]).expect_code(1);
        assert!(r.stderr.contains("installed nothing"), "{r:?}");
        assert_eq!(read(&f.desktop()), edited);

        // A file changed after install shows in the list.
        std::fs::remove_file(f.desktop()).unwrap();
        f.moksha(&["install", "showargs"]).expect_code(0);
        std::fs::write(f.wrapper(), "#!/bin/sh\n").unwrap();
        let list = f.moksha(&["install", "--list"]).expect_code(0);
        assert!(
            list.stdout
                .contains(&format!("changed since  {}", f.wrapper().display())),
            "{list:?}"
        );
        let r = f.moksha(&["install", "showargs"]).expect_code(1);
        assert!(
            r.stderr.contains("was changed since moksha wrote it"),
            "{r:?}"
        );
    }
);

both!(install_refuses_what_it_cannot_put_in_a_sandbox, |who| {
    let f = Fixture::new(who);
    let fails = |args: &[&str], want: &str| {
        let r = f.moksha(args).expect_code(1);
        assert!(r.stderr.contains(want), "{args:?}: {want}: {r:?}");
        assert!(!f.home.join(".local").exists(), "{args:?} touched nothing");
    };
    fails(&["install", "no-such-profile"], "no profile named");
    fails(&["install", "missing"], "is not installed on the host");
    fails(&["install", "../showargs"], "is not a profile name");
    fails(&["install", "./showargs.rhai"], "is not a profile name");
    fails(&["install", "showargs", "missing"], "nothing was installed");
    fails(&["uninstall", "showargs"], "installed nothing");
    // A desktop action that runs another program would escape the sandbox.
    let apps = f.data.join("applications");
    let text = format!("{DESKTOP}\n[Desktop Action shell]\nName=Shell\nExec=sh -c showargs\n");
    write_profile(&apps, "org.example.ShowArgs.desktop", &text);
    fails(
        &["install", "showargs"],
        "org.example.ShowArgs.desktop:24: [Desktop Action shell] runs \"sh\", not \"showargs\"",
    );
});

both!(install_firefox_from_the_system_desktop_file, |who| {
    let system = Path::new("/usr/share/applications/firefox-esr.desktop");
    assert!(
        system.exists() && Path::new("/usr/bin/firefox-esr").exists(),
        "this test needs firefox-esr (apt-get install firefox-esr)"
    );
    let root = world_dir();
    let home = owned_dir(root.path(), "home", who);
    let mk = |args: &[&str]| {
        let mut cmd = moksha(who, args);
        cmd.env("HOME", &home);
        Run::from(cmd.output().unwrap())
    };
    mk(&["install", "firefox"]).expect_code(0);
    let bin = moksha_bin().to_string_lossy().into_owned();
    let copy = read(&home.join(".local/share/applications/firefox-esr.desktop"));
    let original = read(system);
    assert_eq!(execs(&copy).len(), execs(&original).len(), "{copy}");
    assert!(
        execs(&copy)
            .iter()
            .all(|e| e.starts_with(&format!("{bin} exec firefox -- "))),
        "{copy}"
    );
    assert!(
        execs(&copy).contains(&format!("{bin} exec firefox -- %u").as_str()),
        "{copy}"
    );
    // Every other line is the system's.
    let kept = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| {
                !l.starts_with('#') && !l.starts_with("Exec=") && !l.starts_with("TryExec=")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(kept(&copy), kept(&original));
    assert!(read(&home.join(".local/bin/firefox")).contains(" exec firefox -- \"$@\""));
    mk(&["uninstall", "--all"]).expect_code(0);
    assert!(!home.join(".local/bin/firefox").exists());
    assert!(!home
        .join(".local/share/applications/firefox-esr.desktop")
        .exists());
});
