//! `moksha import firejail` and `firejail:PROFILE`: Firejail's directives
//! with Firejail's meaning, checked on the kernel as root and rootless;
//! the user's .local files and globals.local; and, where firejail is
//! installed, the same probe under firejail and under moksha.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A home owned by `who` with files in it (path relative to the home, text).
fn home_with(dir: &Path, who: Who, files: &[(&str, &str)]) -> PathBuf {
    let home = owned_dir(dir, "home", who);
    for (rel, text) in files {
        let path = home.join(rel);
        let parent = path.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        // Every file ends its line, so that `cat a b` prints one per line.
        let text = if text.ends_with('\n') {
            text.to_string()
        } else {
            format!("{text}\n")
        };
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    chown_tree(&home, who);
    home
}

fn chown_tree(path: &Path, who: Who) {
    if who == Who::Root {
        return;
    }
    std::os::unix::fs::lchown(path, Some(who.uid()), Some(who.uid())).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), who);
        }
    }
}

/// Writes a Firejail profile (world-readable) and returns its path.
fn firejail_profile(dir: &Path, name: &str, text: &str) -> String {
    write_profile(dir, name, text)
}

/// `moksha exec firejail:PROFILE -- sh -c SCRIPT` as `who` with HOME at `home`.
fn run_sh(who: Who, home: &Path, profile: &str, script: &str) -> Run {
    let target = format!("firejail:{profile}");
    let mut cmd = moksha(who, &["exec", &target, "--", "/bin/sh", "-c", script]);
    cmd.env("HOME", home).current_dir(home);
    Run::from(cmd.output().unwrap())
}

both!(whitelist_under_home_hides_the_rest_of_it, |who| {
    let dir = world_dir();
    let home = home_with(
        dir.path(),
        who,
        &[
            ("docs/a", "listed"),
            ("other/b", "hidden"),
            ("top", "hidden"),
        ],
    );
    let p = firejail_profile(dir.path(), "probe.profile", "whitelist ${HOME}/docs\n");
    let h = home.display();
    let r = run_sh(
        who,
        &home,
        &p,
        &format!(
            "cat {h}/docs/a; echo x > {h}/docs/new && echo wrote; ls -A {h}; \
             test -e {h}/other || echo no-other; test -e {h}/top || echo no-top"
        ),
    )
    .expect_code(0);
    assert_eq!(r.stdout, "listed\nwrote\ndocs\nno-other\nno-top\n", "{r:?}");
    // The write went to the host's file.
    assert_eq!(
        std::fs::read_to_string(home.join("docs/new")).unwrap(),
        "x\n"
    );
});

both!(blacklist_globs_hide_every_match, |who| {
    let dir = world_dir();
    let home = home_with(
        dir.path(),
        who,
        &[
            (".bash_history", "SECRET1"),
            (".python_history", "SECRET2"),
            ("keep", "kept"),
            ("d/sub/f", "SECRET3"),
        ],
    );
    let p = firejail_profile(
        dir.path(),
        "probe.profile",
        "blacklist ${HOME}/.*_history\nblacklist ${HOME}/d\n",
    );
    let h = home.display();
    let r = run_sh(
        who,
        &home,
        &p,
        &format!(
            "cat {h}/.bash_history {h}/.python_history {h}/d/sub/f 2>/dev/null; cat {h}/keep; \
             ls {h}/d 2>&1 | grep -q 'Permission denied' && echo d-denied"
        ),
    )
    .expect_code(0);
    assert!(!r.stdout.contains("SECRET"), "{r:?}");
    assert_eq!(r.stdout, "kept\nd-denied\n", "{r:?}");
});

both!(
    noblacklist_cancels_only_the_later_blacklists_of_an_include,
    |who| {
        let dir = world_dir();
        let home = home_with(
            dir.path(),
            who,
            &[("k1", "one"), ("k2", "two"), ("k3", "three")],
        );
        let inc = firejail_profile(
            dir.path(),
            "common.inc",
            "blacklist ${HOME}/k1\nblacklist ${HOME}/k2\nblacklist ${HOME}/k3\n",
        );
        let p = firejail_profile(
            dir.path(),
            "probe.profile",
            &format!("noblacklist ${{HOME}}/k1\ninclude {inc}\nnoblacklist ${{HOME}}/k3\n"),
        );
        let h = home.display();
        let r = run_sh(
            who,
            &home,
            &p,
            &format!("for f in k1 k2 k3; do cat {h}/$f 2>/dev/null || echo $f-hidden; done"),
        )
        .expect_code(0);
        assert_eq!(r.stdout, "one\nk2-hidden\nk3-hidden\n", "{r:?}");
    }
);

both!(ignore_drops_the_later_lines_it_names, |who| {
    let dir = world_dir();
    let home = home_with(dir.path(), who, &[("k1", "one"), ("k2", "two")]);
    let inc = firejail_profile(dir.path(), "x.inc", "blacklist ${HOME}/k2\n");
    let p = firejail_profile(
        dir.path(),
        "probe.profile",
        &format!(
            "ignore blacklist ${{HOME}}/k1\nignore include {inc}\nignore net\n\
             blacklist ${{HOME}}/k1\ninclude {inc}\nnet none\nprivate-tmp\nignore private-tmp\n"
        ),
    );
    let h = home.display();
    // net none was ignored: the host's interfaces are there (more than lo);
    // private-tmp came before its ignore, so it holds.
    let marker = dir.path().join("host-tmp-marker");
    std::fs::write(&marker, "m").unwrap();
    let r = run_sh(
        who,
        &home,
        &p,
        &format!(
            "cat {h}/k1 {h}/k2; grep -c : /proc/net/dev; test -e {} || echo private-tmp",
            marker.display()
        ),
    )
    .expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(&lines[..2], ["one", "two"], "{r:?}");
    let host_ifaces = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .matches(':')
        .count();
    assert_eq!(lines[2], host_ifaces.to_string(), "{r:?}");
    assert_eq!(lines[3], "private-tmp", "{r:?}");
});

both!(read_only_and_read_write, |who| {
    let dir = world_dir();
    let home = home_with(
        dir.path(),
        who,
        &[("ro/f", "x"), ("ro/rw/g", "y"), ("free", "z")],
    );
    let p = firejail_profile(
        dir.path(),
        "probe.profile",
        "read-only ${HOME}/ro\nread-write ${HOME}/ro/rw\n",
    );
    let h = home.display();
    let r = run_sh(
        who,
        &home,
        &p,
        &format!(
            "echo 1 > {h}/ro/f 2>/dev/null && echo ro-written; cat {h}/ro/f; \
             echo 2 > {h}/ro/rw/g && echo rw-written; echo 3 > {h}/free && echo free-written"
        ),
    )
    .expect_code(0);
    assert_eq!(r.stdout, "x\nrw-written\nfree-written\n", "{r:?}");
});

both!(private_etc_keeps_only_the_listed_names, |who| {
    let dir = world_dir();
    let home = home_with(dir.path(), who, &[]);
    let p = firejail_profile(
        dir.path(),
        "probe.profile",
        "private-etc os-release,passwd,group\n",
    );
    let r = run_sh(
        who,
        &home,
        &p,
        "ls /etc; grep -c . /etc/os-release >/dev/null && echo read",
    )
    .expect_code(0);
    assert_eq!(r.stdout, "group\nos-release\npasswd\nread\n", "{r:?}");
});

both!(
    private_bin_keeps_the_listed_programs_and_their_interpreters,
    |who| {
        let dir = world_dir();
        let home = home_with(dir.path(), who, &[]);
        // zcat is a shell script (#!/bin/sh): the interpreter comes with it.
        assert!(
            std::fs::read_to_string("/usr/bin/zcat")
                .unwrap()
                .starts_with("#!/bin/sh"),
            "zcat is expected to be a #!/bin/sh script (apt-get install gzip)"
        );
        let gz = home.join("f.gz");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("echo compressed-text | gzip > {}", gz.display()))
            .status()
            .unwrap();
        assert!(out.success());
        std::fs::set_permissions(&gz, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = firejail_profile(dir.path(), "zcat.profile", "private-bin zcat,gzip\n");
        let mut cmd = moksha(
            who,
            &[
                "exec",
                &format!("firejail:{p}"),
                "--",
                &gz.to_string_lossy(),
            ],
        );
        cmd.env("HOME", &home);
        let r = Run::from(cmd.output().unwrap()).expect_code(0);
        assert_eq!(r.stdout, "compressed-text\n", "{r:?}");

        let p = firejail_profile(dir.path(), "probe.profile", "private-bin sh,ls\n");
        let r = run_sh(
            who,
            &home,
            &p,
            "for b in cat gzip cp; do test -e /usr/bin/$b && echo has-$b; done; ls /usr/bin /bin",
        )
        .expect_code(0);
        let mut names: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| !l.is_empty() && !l.ends_with(':'))
            .collect();
        names.sort();
        names.dedup();
        assert!(!r.stdout.contains("has-"), "{r:?}");
        assert!(names.contains(&"ls") && names.contains(&"sh"), "{r:?}");
        assert!(
            names.len() <= 3,
            "only sh, ls (and sh's target) are there: {r:?}"
        );
    }
);

both!(private_dev_shows_only_the_usual_devices, |who| {
    let dir = world_dir();
    let home = home_with(dir.path(), who, &[]);
    let p = firejail_profile(dir.path(), "probe.profile", "private-dev\nnosound\nno3d\n");
    let r = run_sh(
        who,
        &home,
        &p,
        "echo x > /dev/null && echo null-ok; for d in kmsg mem port snd dri loop0 vda sda; do \
         test -e /dev/$d && echo has-$d; done; echo done",
    )
    .expect_code(0);
    assert_eq!(r.stdout, "null-ok\ndone\n", "{r:?}");
});

both!(net_none_leaves_only_loopback, |who| {
    let dir = world_dir();
    let home = home_with(dir.path(), who, &[]);
    let p = firejail_profile(dir.path(), "probe.profile", "net none\n");
    let r = run_sh(
        who,
        &home,
        &p,
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    )
    .expect_code(0);
    assert_eq!(r.stdout, "lo\n", "{r:?}");
});

both!(caps_seccomp_and_nonewprivs_hold, |who| {
    let dir = world_dir();
    let home = home_with(dir.path(), who, &[]);
    let p = firejail_profile(
        dir.path(),
        "probe.profile",
        "caps.drop all\nnonewprivs\nseccomp\nseccomp.drop mkdir,mkdirat\nprotocol unix\n",
    );
    let h = home.display();
    let r = run_sh(
        who,
        &home,
        &p,
        &format!(
            "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t'; \
             mkdir {h}/newdir 2>&1 | grep -q 'not permitted' && echo mkdir-denied; \
             test -d {h}/newdir && echo made; true"
        ),
    )
    .expect_code(0);
    assert_eq!(
        r.stdout,
        "CapEff:0000000000000000\nCapBnd:0000000000000000\nNoNewPrivs:1\nSeccomp:2\nmkdir-denied\n",
        "{r:?}"
    );
    // protocol unix: an inet socket is refused.
    let r = run_sh(
        who,
        &home,
        &p,
        "python3 -c 'import socket; socket.socket(socket.AF_INET)' 2>&1 | grep -q 'not supported' && echo inet-refused",
    )
    .expect_code(0);
    assert_eq!(r.stdout, "inet-refused\n", "{r:?}");
});

both!(
    local_files_and_globals_local_of_the_user_are_honoured,
    |who| {
        let dir = world_dir();
        let home = home_with(
            dir.path(),
            who,
            &[
                ("k1", "one"),
                ("k2", "two"),
                ("k3", "three"),
                (".config/firejail/probe.local", "blacklist ${HOME}/k1\n"),
                (".config/firejail/globals.local", "blacklist ${HOME}/k2\n"),
            ],
        );
        let p = firejail_profile(
            dir.path(),
            "probe.profile",
            "include probe.local\ninclude globals.local\ninclude absent.local\n",
        );
        let h = home.display();
        let script =
            format!("for f in k1 k2 k3; do cat {h}/$f 2>/dev/null || echo $f-hidden; done");
        let r = run_sh(who, &home, &p, &script).expect_code(0);
        assert_eq!(r.stdout, "k1-hidden\nk2-hidden\nthree\n", "{r:?}");

        // The same through `moksha import firejail NAME`: NAME is found in
        // ~/.config/firejail first, and the written profile runs.
        let user_profile = home.join(".config/firejail/probe.profile");
        std::fs::copy(&p, &user_profile).unwrap();
        chown_tree(&user_profile, who);
        let out = owned_dir(dir.path(), "out", who);
        let mut cmd = moksha(
            who,
            &["import", "firejail", "probe", "-o", &out.to_string_lossy()],
        );
        cmd.env("HOME", &home);
        let r = Run::from(cmd.output().unwrap()).expect_code(0);
        assert!(r.stdout.contains("probe.profile -> "), "{r:?}");
        assert!(out.join("firejail/probe.local.rhai").is_file());
        assert!(out.join("firejail/globals.local.rhai").is_file());
        let written = out.join("probe.rhai");
        let mut cmd = moksha(
            who,
            &[
                "exec",
                &written.to_string_lossy(),
                "--",
                "/bin/sh",
                "-c",
                &script,
            ],
        );
        cmd.env("HOME", &home);
        let r = Run::from(cmd.output().unwrap()).expect_code(0);
        assert_eq!(r.stdout, "k1-hidden\nk2-hidden\nthree\n", "{r:?}");
    }
);

#[test]
fn import_refuses_to_overwrite_a_file_it_did_not_write() {
    let dir = world_dir();
    let p = firejail_profile(dir.path(), "mine.profile", "net none\n");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("mine.rhai"), "// my own work\n").unwrap();
    let r = Run::from(
        moksha(
            Who::Root,
            &["import", "firejail", &p, "-o", &out.to_string_lossy()],
        )
        .output()
        .unwrap(),
    )
    .expect_code(1);
    assert!(
        r.stderr
            .contains("was not written by `moksha import firejail`"),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("mine.rhai")).unwrap(),
        "// my own work\n"
    );
    std::fs::remove_file(out.join("mine.rhai")).unwrap();
    Run::from(
        moksha(
            Who::Root,
            &["import", "firejail", &p, "-o", &out.to_string_lossy()],
        )
        .output()
        .unwrap(),
    )
    .expect_code(0);
    // Its own file it replaces.
    Run::from(
        moksha(
            Who::Root,
            &["import", "firejail", &p, "-o", &out.to_string_lossy()],
        )
        .output()
        .unwrap(),
    )
    .expect_code(0);
}

#[test]
fn hostile_profile_text_stays_data() {
    let dir = world_dir();
    let evil = dir
        .path()
        .join("evil\"]); s.exec([\"/bin/touch\", \"/tmp/pwned\"]); //");
    let p = firejail_profile(
        dir.path(),
        "hostile.profile",
        &format!(
            "# comment\u{2028}]); s.exec([\"x\"]);\nblacklist {}\nwhitelist /tmp/a\\\"b\nnet none\n",
            evil.display()
        ),
    );
    let r = Run::from(
        moksha(
            Who::Root,
            &["plan", &format!("firejail:{p}"), "--", "/bin/true"],
        )
        .output()
        .unwrap(),
    )
    .expect_code(0);
    assert!(r.stdout.contains("/bin/true"), "{r:?}");
    assert!(!r.stdout.contains("/tmp/pwned"), "{r:?}");
    // An include cycle and a missing include are errors naming the line.
    let a = dir.path().join("a.inc");
    let b = dir.path().join("b.inc");
    std::fs::write(&a, format!("include {}\n", b.display())).unwrap();
    std::fs::write(&b, format!("net none\ninclude {}\n", a.display())).unwrap();
    let r = Run::from(
        moksha(Who::Root, &["plan", &format!("firejail:{}", a.display())])
            .output()
            .unwrap(),
    )
    .expect_code(1);
    assert!(r.stderr.contains("b.inc:2: include cycle"), "{r:?}");
}

/// What a probe sees: for each path, whether it exists, whether its content
/// can be read (a blacklisted file is empty: Firejail's can be opened by
/// root, moksha's by nobody) and whether it can be written, and the
/// network interfaces.
const PROBE: &str = r#"for p in "$@"; do
  e=-; r=-; w=-
  test -e "$p" && e=e
  if test -d "$p"; then ls "$p" >/dev/null 2>&1 && r=r; else test -n "$(head -c1 "$p" 2>/dev/null)" && r=r; fi
  if test -d "$p"; then touch "$p/.probe" 2>/dev/null && w=w && rm -f "$p/.probe"; else test -e "$p" && (: >> "$p") 2>/dev/null && w=w; fi
  echo "$p $e$r$w"
done
echo "net: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ')"
"#;

/// The same profile and probe under the real firejail and under moksha
/// (as root: firejail refuses uid 65534): the same paths are visible,
/// readable and writable, and the network is the same.
#[test]
fn differential_against_firejail() {
    let firejail = Path::new("/usr/bin/firejail");
    assert!(
        firejail.exists(),
        "firejail is not installed: apt-get install firejail (see .ci/run)"
    );
    let dir = world_dir();
    let base = dir.path();
    for (rel, text) in [
        ("docs/a", "a"),
        ("docs/secret", "s"),
        ("docs/ro/f", "f"),
        ("docs/h_history", "h"),
        ("other/b", "b"),
    ] {
        let p = base.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let b = base.display();
    let profile = firejail_profile(
        base,
        "fjprobe.profile",
        &format!(
            "caps.drop all\nnonewprivs\nnet none\nwhitelist {b}/docs\nblacklist {b}/docs/secret\n\
             blacklist {b}/docs/*_history\nread-only {b}/docs/ro\nblacklist /etc/fstab\n"
        ),
    );
    let paths: Vec<String> = [
        "docs",
        "docs/a",
        "docs/secret",
        "docs/ro",
        "docs/ro/f",
        "docs/h_history",
        "other",
        "other/b",
    ]
    .iter()
    .map(|r| format!("{b}/{r}"))
    .chain(["/etc/passwd", "/etc/shadow", "/etc/fstab", "/usr/bin/sh"].map(String::from))
    .collect();
    let mut args = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        PROBE.into(),
        "probe".into(),
    ];
    args.extend(paths.iter().cloned());

    let out = std::process::Command::new(firejail)
        .arg("--quiet")
        .arg(format!("--profile={profile}"))
        .arg("--")
        .args(&args)
        .current_dir("/")
        .output()
        .unwrap();
    let theirs = Run::from(out).expect_code(0);
    let target = format!("firejail:{profile}");
    let mut all = vec!["exec", target.as_str(), "--"];
    all.extend(args.iter().map(String::as_str));
    let ours = Run::from(moksha(Who::Root, &all).output().unwrap()).expect_code(0);
    assert_eq!(
        ours.stdout, theirs.stdout,
        "moksha and firejail see different things\nmoksha:\n{}\nfirejail:\n{}",
        ours.stdout, theirs.stdout
    );
    // And it is the view the profile asks for.
    assert!(
        theirs.stdout.contains(&format!("{b}/other -")),
        "{}",
        theirs.stdout
    );
    assert!(theirs.stdout.contains("net: lo"), "{}", theirs.stdout);
}
