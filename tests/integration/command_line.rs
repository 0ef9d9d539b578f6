//! The command line of `exec` and `plan` as people type it: arguments
//! after the profile without `--`, a profile from stdin, a program given as
//! a profile, a bad --name, programs without a profile, the quick flags and
//! the number of arguments.

use crate::both;
use crate::common::*;
use std::io::Write;
use std::process::Stdio;

fn run(who: Who, args: &[&str]) -> Run {
    Run::from(moksha(who, args).output().unwrap())
}

/// A profile that prints its arguments one per line, `[like this]`.
const ECHO_ARGS: &str = "import \"base\" as base;\nlet s = sandbox(\"args\");\nbase::minimal(s);\ns.exec([\"/bin/sh\", \"-c\", \"for a in \\\"$@\\\"; do echo \\\"[$a]\\\"; done\", \"sh\"] + ARGS);\n";

both!(program_arguments_follow_the_profile_without_dashes, |who| {
    let dir = world_dir();
    let p = write_profile(dir.path(), "args.rhai", ECHO_ARGS);
    // Everything after the profile is the program's, options included.
    let r = run(who, &["exec", &p, "a  b", "--name", "x", "-d", ""]).expect_code(0);
    assert_eq!(r.stdout, "[a  b]\n[--name]\n[x]\n[-d]\n[]\n", "{r:?}");
    // `--` after the profile still works, and only the first is dropped.
    let r = run(who, &["exec", &p, "--", "--", "-d"]).expect_code(0);
    assert_eq!(r.stdout, "[--]\n[-d]\n", "{r:?}");
    // `plan` takes them the same way.
    let r = run(who, &["plan", "--json", &p, "one", "-v"]).expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let argv = &plan["process"]["exec"]["argv"];
    assert_eq!(argv[4], "one", "{argv}");
    assert_eq!(argv[5], "-v", "{argv}");
    // As the README has it: moksha exec python script.py.
    let proj = owned_dir(dir.path(), "proj", who);
    std::fs::write(proj.join("script.py"), "import sys\nprint(sys.argv[1:])\n").unwrap();
    let r = Run::from(
        moksha(who, &["exec", "python", "script.py", "x", "--y"])
            .current_dir(&proj)
            .output()
            .unwrap(),
    )
    .expect_code(0);
    assert_eq!(r.stdout, "['x', '--y']\n", "{r:?}");
});

#[test]
fn moksha_option_after_the_profile_is_a_usage_error() {
    for (args, fix) in [
        (&["exec", "shell", "-d"][..], "moksha exec shell -- -d"),
        (
            &["exec", "shell", "--name=x"][..],
            "moksha exec --name=x shell",
        ),
        (&["plan", "shell", "--json"][..], "moksha plan --json shell"),
    ] {
        let r = run(Who::Root, args).expect_code(2);
        assert!(r.stderr.contains("after the profile is ambiguous"), "{r:?}");
        assert!(r.stderr.contains(fix), "{args:?}: {r:?}");
        assert!(r.stderr.contains("Usage: moksha"), "{r:?}");
    }
}

#[test]
fn a_program_given_as_the_profile_says_what_to_run_instead() {
    let r = run(Who::Root, &["exec", "/bin/ls"]).expect_code(1);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "moksha: /bin/ls is a program, not a Rhai profile; to run it in a strict sandbox: \
         moksha exec default -- /bin/ls (or `moksha exec shell` for a shell; `moksha profiles` \
         lists the profiles)",
        "{r:?}"
    );
    assert!(!r.stderr.contains("UTF-8"), "{r:?}");
}

both!(profile_from_stdin, |who| {
    let mut child = moksha(who, &["exec", "-", "from", "stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ECHO_ARGS.as_bytes())
        .unwrap();
    let r = Run::from(child.wait_with_output().unwrap()).expect_code(0);
    assert_eq!(r.stdout, "[from]\n[stdin]\n", "{r:?}");
    // Errors name it.
    let mut child = moksha(who, &["plan", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"let s = 1 +;\n")
        .unwrap();
    let r = Run::from(child.wait_with_output().unwrap()).expect_code(1);
    assert!(r.stderr.starts_with("<stdin>:1:"), "{r:?}");
});

#[test]
fn an_invalid_instance_name_is_a_usage_error() {
    for name in ["../x", "", ".hidden", "a/b"] {
        let r = run(Who::Root, &["exec", "--name", name, "shell"]).expect_code(2);
        assert!(r.stderr.contains("invalid value"), "{r:?}");
        assert!(r.stderr.contains("--name"), "{r:?}");
        assert!(r.stderr.contains("must be 1 to 64 characters"), "{r:?}");
    }
}

both!(
    a_program_without_a_profile_runs_under_the_default_profile,
    |who| {
        let dir = world_dir();
        let here = owned_dir(dir.path(), "here", who);
        std::fs::write(here.join("visible-only-outside"), "").unwrap();
        // Arguments byte for byte.
        let r = Run::from(
            moksha(who, &["exec", "printf", "[%s]", "a  b", "ü\tx", "", "-d"])
                .current_dir(&here)
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert_eq!(r.stdout, "[a  b][ü\tx][][-d]", "{r:?}");
        assert_eq!(
            r.stderr,
            "moksha: note: no profile named \"printf\": running /usr/bin/printf under the strict \
         default profile (no network, an empty private home; `moksha profiles show default`)\n",
            "{r:?}"
        );
        // Strict: no network but lo, an empty home, the cwd not exposed.
        let r = Run::from(
            moksha(
                who,
                &[
                    "exec",
                    "sh",
                    "-c",
                    "ls -A \"$HOME\"; pwd; ls; tail -n +3 /proc/net/dev | cut -d: -f1",
                ],
            )
            .env("HOME", &here)
            .current_dir(&here)
            .output()
            .unwrap(),
        )
        .expect_code(0);
        assert_eq!(
            r.stdout.split_whitespace().collect::<Vec<_>>(),
            [here.to_str().unwrap(), "lo"],
            "{r:?}"
        );
        // Neither a profile nor a program.
        let r = run(who, &["exec", "no-such-program-anywhere"]).expect_code(1);
        assert!(
        r.stderr.contains("no profile named \"no-such-program-anywhere\" and no program of that name is on PATH"),
        "{r:?}"
    );
    }
);

both!(hundred_thousand_program_arguments, |who| {
    let many: Vec<String> = (0..100_000).map(|i| (i % 10).to_string()).collect();
    let count = "import \"base\" as base;\nlet s = sandbox(\"count\");\nbase::minimal(s);\ns.exec([\"/bin/sh\", \"-c\", \"echo $# $1 ${100000}\", \"sh\"] + ARGS);\n";
    let dir = world_dir();
    let p = write_profile(dir.path(), "count.rhai", count);
    let mut args = vec!["exec", p.as_str()];
    args.extend(many.iter().map(String::as_str));
    let r = run(who, &args).expect_code(0);
    assert_eq!(r.stdout, "100000 0 9\n", "{}", r.stderr);
    // And through the default profile.
    let mut args = vec!["exec", "sh", "-c", "echo $#", "sh"];
    args.extend(many.iter().map(String::as_str));
    let r = run(who, &args).expect_code(0);
    assert_eq!(r.stdout, "100000\n", "{}", r.stderr);
});

both!(quick_flags_compose_with_a_profile, |who| {
    let dir = world_dir();
    let data = sandbox_dir(dir.path(), "data", who);
    let home = sandbox_dir(dir.path(), "home", who);
    let data_s = data.to_str().unwrap();
    let rw = format!("{data_s}:/data");
    let quick = [
        "--rw-bind",
        rw.as_str(),
        "--bind",
        "/etc/hostname:/opt/hostname",
        "--env",
        "GREETING=hi  there",
        "--cwd",
        "/data",
        "--net",
        "host",
        "--home",
        "persistent",
    ];
    let script = "echo \"$GREETING\" > out; pwd; cat /opt/hostname; \
                  echo kept > \"$HOME/f\"; tail -n +3 /proc/net/dev | wc -l";
    let mut args = vec!["exec"];
    args.extend_from_slice(&quick);
    args.extend_from_slice(&["default", "--", "sh", "-c", script]);
    let r = Run::from(moksha(who, &args).env("HOME", &home).output().unwrap()).expect_code(0);
    let host_name = std::fs::read_to_string("/etc/hostname").unwrap();
    let host_ifaces = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .count()
        - 2;
    assert_eq!(
        r.stdout,
        format!("/data\n{host_name}{host_ifaces}\n"),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("out")).unwrap(),
        "hi  there\n"
    );
    let kept = home.join(".local/share/moksha/homes/default/f");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "kept\n");
    // `plan` shows them, each step at <command line>, after the profile's.
    let mut args = vec!["plan"];
    args.extend_from_slice(&quick[..quick.len() - 2]);
    args.extend_from_slice(&["--home", "private", "shell"]);
    let r = run(who, &args).expect_code(0);
    let out = &r.stdout;
    for want in [
        format!("bind       {data_s} -> /data  read-write, not executable (replace)    [<command line>:4:"),
        "bind       /etc/hostname -> /opt/hostname  read-only (replace)    [<command line>:3:"
            .into(),
        "set   GREETING=hi  there".into(),
        "cwd        /data".into(),
        "shared with the host: net".into(),
    ] {
        assert!(out.contains(&want), "no {want:?} in:\n{out}");
    }
    let home_tmpfs = out
        .rfind(&format!(
            "tmpfs      {}  mode 0o700 (replace)",
            home_dir(who)
        ))
        .expect(out);
    assert!(home_tmpfs > out.find("remount_ro").unwrap(), "{out}");
});

fn home_dir(who: Who) -> &'static str {
    if who == Who::Root {
        "/root"
    } else {
        "/nonexistent"
    }
}

#[test]
fn quick_flag_errors_name_the_flag() {
    let r = run(Who::Root, &["exec", "--cwd", "relative", "shell"]).expect_code(1);
    assert!(r.stderr.starts_with("<command line>:1:"), "{r:?}");
    assert!(
        r.stderr
            .contains("error: --cwd relative: working directory \"relative\" is relative"),
        "{r:?}"
    );
    assert!(r.stderr.contains("// \"--cwd relative\""), "{r:?}");
    for (args, flag) in [
        (
            &["exec", "--bind", "/nonexistent/x", "shell"][..],
            "--bind <SRC[:DST]>",
        ),
        (
            &["exec", "--rw-bind", "/tmp:data", "shell"][..],
            "--rw-bind <SRC[:DST]>",
        ),
        (
            &["plan", "--env", "NOVALUE", "shell"][..],
            "--env <NAME=VALUE>",
        ),
        (&["plan", "--net", "wifi", "shell"][..], "--net <MODE>"),
        (&["plan", "--home", "shared", "shell"][..], "--home <KIND>"),
    ] {
        let r = run(Who::Root, args).expect_code(2);
        assert!(
            r.stderr.contains(&format!("for '{flag}'")),
            "{args:?}: {r:?}"
        );
    }
    let r = run(Who::Root, &["plan", "--bind", "/nonexistent/x", "shell"]).expect_code(2);
    assert!(
        r.stderr
            .contains("/nonexistent/x does not exist on the host"),
        "{r:?}"
    );
}

both!(arguments_reach_the_program_byte_for_byte, |who: Who| {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    // Every byte value 1..=255 as an argument of its own, all of them in one
    // argument, and invalid UTF-8 beside valid text: the program gets each
    // exactly, and the profile sees text (lossless where the bytes are).
    let mut args: Vec<std::ffi::OsString> = (1..=255u8)
        .map(|b| std::ffi::OsString::from_vec(vec![b]))
        .collect();
    args.push(std::ffi::OsString::from_vec((1..=255u8).collect()));
    args.push(std::ffi::OsString::from_vec(
        b"h\xc3\xa9-\xff\xfe-ok".to_vec(),
    ));
    let dir = world_dir();
    let out = sandbox_dir(dir.path(), "out", who);
    let dump = out.join("argv");
    let code = format!(
        "import os, sys; open({:?}, 'wb').write(b'\\0'.join(os.fsencode(a) for a in sys.argv[1:]))",
        dump.display()
    );
    let text = format!(
        "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         s.bind({:?}, #{{ rw: true }});\n\
         s.exec([\"python3\", \"-c\", {}] + ARGS);\n",
        out.display().to_string(),
        rhai_string(&code)
    );
    let path = write_profile(dir.path(), "p.rhai", &text);
    let mut cmd = moksha(who, &["exec", &path, "--"]);
    cmd.args(&args);
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    let got = std::fs::read(&dump).unwrap();
    let want: Vec<u8> = args
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect::<Vec<_>>()
        .join(&0u8);
    assert_eq!(got, want, "the program got other bytes");
});

both!(
    environment_values_and_the_working_directory_pass_byte_for_byte,
    |who: Who| {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        // A project directory whose name is not UTF-8, and a kept environment
        // variable that is not either: the program sees both exactly.
        let dir = world_dir();
        let name = std::ffi::OsString::from_vec(b"proj-\xff\xfe-\xc3\xa9".to_vec());
        let work = dir.path().join(&name);
        std::fs::create_dir(&work).unwrap();
        if who != Who::Root {
            std::os::unix::fs::chown(&work, Some(who.uid()), Some(who.uid())).unwrap();
        }
        let value = std::ffi::OsString::from_vec(b"v-\x80\xff-ok".to_vec());
        let code = "import os, sys; sys.stdout.buffer.write(os.getcwdb() + b'\\0' + os.environb[b'MOKSHA_T'])";
        let text = format!(
            "import \"base\" as base;\nimport \"home\" as home;\nlet s = sandbox(\"t\");\n\
         base::minimal(s);\nhome::project(s);\ns.keep_env([\"MOKSHA_T\"]);\n\
         s.exec([\"python3\", \"-c\", {}]);\n",
            rhai_string(code)
        );
        let path = write_profile(dir.path(), "p.rhai", &text);
        let out = moksha(who, &["exec", &path])
            .current_dir(&work)
            .env("MOKSHA_T", &value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{:?}", Run::from(out.clone()));
        let mut want = work.as_os_str().as_bytes().to_vec();
        want.push(0);
        want.extend_from_slice(value.as_bytes());
        assert_eq!(out.stdout, want);
    }
);

both!(host_queries_keep_paths_that_are_not_utf8, |who: Who| {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    // A home whose name is not UTF-8 (Latin-1, as an old system may have),
    // holding a file whose name is not either: what home_dir(), glob(),
    // exists(), real_path() and env() answer names them exactly, so the
    // bind made from them shows the real file and the program gets the
    // bytes.
    let dir = world_dir();
    let home = dir
        .path()
        .join(std::ffi::OsString::from_vec(b"j\xf6rg".to_vec()));
    std::fs::create_dir(&home).unwrap();
    let file = std::ffi::OsString::from_vec(b"caf\xe9.txt".to_vec());
    std::fs::write(home.join(&file), "latin-1 file\n").unwrap();
    let text = "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         let found = glob(home_dir() + \"/*.txt\");\n\
         if found.len() != 1 || !exists(found[0]) || real_path(found[0]) != found[0] \
            || env(\"HOME\") != home_dir() { throw `lossy: ${found}`; }\n\
         s.bind(found[0], \"/data/file\");\n\
         s.env(\"FOUND\", found[0]);\n\
         s.exec([\"python3\", \"-c\", \"import os, sys; sys.stdout.buffer.write(\
            os.environb[b'FOUND'] + b'|' + open('/data/file', 'rb').read())\"]);\n";
    let path = write_profile(dir.path(), "p.rhai", text);
    let out = moksha(who, &["exec", &path])
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", Run::from(out.clone()));
    let mut want = home.join(&file).as_os_str().as_bytes().to_vec();
    want.extend_from_slice(b"|latin-1 file\n");
    assert_eq!(out.stdout, want);
});

#[test]
fn a_user_missing_from_etc_passwd_is_named_by_the_environment() {
    // A uid that /etc/passwd lacks, as a directory service's user (LDAP,
    // sssd, systemd-homed) is: the lookup falls through files to the next
    // module nsswitch.conf names (this machine's lists systemd), which a
    // statically linked glibc used to load and crash in (SIGSEGV). moksha
    // asks only the built-in modules (src/sys/nss.rs), so the name is
    // $USER, the home $HOME, and without $HOME the root.
    let who = Who::Other(54329);
    let dir = world_dir();
    let profile = write_profile(
        dir.path(),
        "who.rhai",
        "let s = sandbox(\"t\");\n\
         if user_name() != env(\"WANT_USER\") || home_dir() != env(\"WANT_HOME\") {\n\
             throw `user_name() ${user_name()}, home_dir() ${home_dir()}`;\n\
         }\n\
         s.exec([\"/bin/true\"]);\n",
    );
    let named = moksha(who, &["plan", &profile])
        .env("USER", "dora")
        .env("HOME", "/srv/dora")
        .env("WANT_USER", "dora")
        .env("WANT_HOME", "/srv/dora")
        .output()
        .unwrap();
    Run::from(named).expect_code(0);
    let bare = moksha(who, &["plan", &profile])
        .env_remove("HOME")
        .env("WANT_USER", "54329")
        .env("WANT_HOME", "/")
        .output()
        .unwrap();
    Run::from(bare).expect_code(0);
}
