//! Real Debian programs under their own Firejail profiles, imported on the
//! fly (`firejail:NAME`), as root and rootless: each does its job on a
//! small input, and cannot read a path its profile blacklists. A program
//! or profile that is missing fails the test (.ci/run installs them).

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What the profile hides, for the read check: `History` is
/// ~/.bash_history (disable-common.inc's `${HOME}/.*_history`), `Perl`
/// /usr/bin/perl (disable-interpreters.inc's `${PATH}/perl`).
#[derive(Clone, Copy, PartialEq)]
enum Hidden {
    History,
    Perl,
}

const SECRET: &str = "SECRET-HISTORY-LINE";

struct Home {
    _dir: tempfile::TempDir,
    home: PathBuf,
    work: PathBuf,
    who: Who,
}

/// A home owned by `who` with ~/.bash_history and ~/work holding the inputs.
fn setup(who: Who) -> Home {
    let dir = world_dir();
    let home = owned_dir(dir.path(), "home", who);
    let work = home.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let write = |p: &Path, text: &[u8]| {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    write(
        &home.join(".bash_history"),
        format!("{SECRET}\n").as_bytes(),
    );
    write(&work.join("in.txt"), b"hello from the input\n");
    write(
        &work.join("t.1"),
        b".TH T 1\n.SH NAME\nmokshaman \\- a test page\n",
    );
    write(&work.join("Makefile"), b"all:\n\t@echo made-it\n");
    write(
        &work.join("fix.diff"),
        b"--- in.txt\n+++ in.txt\n@@ -1 +1 @@\n-hello from the input\n+patched line\n",
    );
    let sh = |cmd: &str| {
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(&work)
            .status()
            .unwrap()
            .success();
        assert!(ok, "{cmd} failed on the host");
    };
    sh("gzip -c in.txt > in.txt.gz");
    sh("python3 -c \"import zipfile; z = zipfile.ZipFile('in.zip', 'w'); z.write('in.txt'); z.close()\"");
    for entry in std::fs::read_dir(&work).unwrap() {
        let p = entry.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    chown_tree(&home, who);
    Home {
        _dir: dir,
        home,
        work,
        who,
    }
}

fn chown_tree(path: &Path, who: Who) {
    if who == Who::Root {
        return;
    }
    std::os::unix::fs::lchown(path, Some(who.uid()), Some(who.uid())).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), who);
        }
    }
}

impl Home {
    /// `moksha exec firejail:NAME -- ARGS` in ~/work.
    fn run(&self, name: &str, args: &[&str]) -> Run {
        assert!(
            Path::new(&format!("/etc/firejail/{name}.profile")).is_file(),
            "/etc/firejail/{name}.profile is missing: apt-get install firejail-profiles (see .ci/run)"
        );
        let target = format!("firejail:{name}");
        let mut all = vec!["exec", target.as_str(), "--"];
        all.extend_from_slice(args);
        let mut cmd = moksha(self.who, &all);
        cmd.env("HOME", &self.home).current_dir(&self.work);
        Run::from(cmd.output().unwrap())
    }

    fn hidden(&self, which: Hidden) -> String {
        match which {
            Hidden::History => self.home.join(".bash_history").display().to_string(),
            Hidden::Perl => "/usr/bin/perl".into(),
        }
    }
}

/// The read of the hidden path failed: no content, and the program said so.
fn refused(r: &Run, which: Hidden) {
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        !all.contains(SECRET),
        "the blacklisted file was read: {r:?}"
    );
    if which == Hidden::Perl {
        assert!(
            !all.contains("ELF"),
            "the blacklisted program was read: {r:?}"
        );
    }
    let said = [
        "ermission denied",
        "can't open",
        "cannot open",
        "Cannot open",
        "EACCES",
        "no read permission",
        "cannot find or open",
        "Couldn't open",
        // file(1) sees the empty file put over it
        ": empty",
    ];
    assert!(
        said.iter().any(|s| all.contains(s)),
        "the program did not report that it cannot read the file: {r:?}"
    );
}

/// A program test: installed, does its job (`job` checks the run), refuses
/// to read what its profile hides (`read` are the arguments with {} for the
/// hidden path).
fn program(
    who: Who,
    name: &str,
    package: &str,
    args: &[&str],
    job: impl Fn(&Home, Run),
    which: Hidden,
    read: &[&str],
) {
    installed(name, package);
    let b = setup(who);
    let work = b.work.display().to_string();
    let args: Vec<String> = args.iter().map(|a| a.replace("{work}", &work)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = b.run(name, &args);
    job(&b, r);
    let path = b.hidden(which);
    assert!(
        Path::new(&path).is_file(),
        "{path} must exist on the host for this test"
    );
    let read: Vec<String> = read.iter().map(|a| a.replace("{}", &path)).collect();
    let read: Vec<&str> = read.iter().map(String::as_str).collect();
    refused(&b.run(name, &read), which);
}

fn prints(want: &'static str) -> impl Fn(&Home, Run) {
    move |_, r| {
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.contains(want),
            "expected {want:?} in the output: {r:?}"
        );
    }
}

/// The job made `file` in ~/work, and `check` (a host command on it) prints `want`.
fn made(file: &'static str, check: &'static str, want: &'static str) -> impl Fn(&Home, Run) {
    move |b, r| {
        assert_eq!(r.code, 0, "{r:?}");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(check)
            .current_dir(&b.work)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(b.work.join(file).exists(), "{file} was not written: {r:?}");
        assert!(
            text.contains(want),
            "{check}: {text:?} lacks {want:?}; {r:?}"
        );
    }
}

both!(curl, |who| program(
    who,
    "curl",
    "curl",
    &["-sS", "file://{work}/in.txt"],
    prints("hello from the input"),
    Hidden::History,
    &["-sS", "file://{}"]
));

both!(git, |who| program(
    who,
    "git",
    "git",
    &[
        "--no-pager",
        "diff",
        "--no-index",
        "--stat",
        "/dev/null",
        "in.txt"
    ],
    // diff exits 1 when the files differ.
    |_, r| assert!(r.code == 1 && r.stdout.contains("1 insertion"), "{r:?}"),
    Hidden::History,
    &["--no-pager", "diff", "--no-index", "/dev/null", "{}"]
));

both!(less, |who| program(
    who,
    "less",
    "less",
    &["in.txt"],
    prints("hello from the input"),
    Hidden::Perl,
    &["{}"]
));

both!(gzip, |who| program(
    who,
    "gzip",
    "gzip",
    &["-k", "-f", "in.txt"],
    made("in.txt.gz", "gzip -dc in.txt.gz", "hello from the input"),
    Hidden::Perl,
    &["-c", "{}"]
));

both!(zcat, |who| program(
    who,
    "zcat",
    "gzip",
    &["in.txt.gz"],
    prints("hello from the input"),
    Hidden::Perl,
    &["{}"]
));

both!(gunzip, |who| program(
    who,
    "gunzip",
    "gzip",
    &["-c", "in.txt.gz"],
    prints("hello from the input"),
    Hidden::Perl,
    &["-c", "{}"]
));

both!(xz, |who| program(
    who,
    "xz",
    "xz-utils",
    &["-k", "-f", "in.txt"],
    made("in.txt.xz", "xz -dc in.txt.xz", "hello from the input"),
    Hidden::Perl,
    &["-c", "{}"]
));

both!(bzip2, |who| program(
    who,
    "bzip2",
    "bzip2",
    &["-k", "-f", "in.txt"],
    made("in.txt.bz2", "bzip2 -dc in.txt.bz2", "hello from the input"),
    Hidden::Perl,
    &["-c", "{}"]
));

both!(zstd, |who| program(
    who,
    "zstd",
    "zstd",
    &["-q", "-f", "in.txt"],
    made("in.txt.zst", "zstd -dc in.txt.zst", "hello from the input"),
    Hidden::Perl,
    &["-c", "{}"]
));

both!(tar, |who| program(
    who,
    "tar",
    "tar",
    &["cf", "out.tar", "in.txt"],
    made("out.tar", "tar tf out.tar", "in.txt"),
    Hidden::Perl,
    &["cf", "out2.tar", "{}"]
));

both!(unzip, |who| program(
    who,
    "unzip",
    "unzip",
    &["-p", "in.zip", "in.txt"],
    prints("hello from the input"),
    Hidden::Perl,
    &["-p", "{}"]
));

both!(ar, |who| program(
    who,
    "ar",
    "binutils",
    &["rc", "out.a", "in.txt"],
    made("out.a", "ar t out.a", "in.txt"),
    Hidden::Perl,
    &["rc", "out2.a", "{}"]
));

both!(strings, |who| program(
    who,
    "strings",
    "binutils",
    &["in.txt"],
    prints("hello from the input"),
    Hidden::Perl,
    &["{}"]
));

both!(xxd, |who| program(
    who,
    "xxd",
    "xxd",
    &["in.txt"],
    prints("hello from the i"),
    Hidden::Perl,
    &["{}"]
));

both!(file, |who| program(
    who,
    "file",
    "file",
    &["in.txt"],
    prints("ASCII text"),
    Hidden::History,
    &["{}"]
));

both!(man, |who| program(
    who,
    "man",
    "man-db",
    &["-P", "cat", "-l", "t.1"],
    prints("mokshaman"),
    Hidden::History,
    &["-P", "cat", "-l", "{}"]
));

both!(node, |who| program(
    who,
    "node",
    "nodejs",
    &[
        "-e",
        "process.stdout.write(require('fs').readFileSync('in.txt', 'utf8'))"
    ],
    prints("hello from the input"),
    Hidden::History,
    &[
        "-e",
        "process.stdout.write(require('fs').readFileSync(process.argv[1], 'utf8'))",
        "{}"
    ]
));

both!(make, |who| program(
    who,
    "make",
    "make",
    &[],
    prints("made-it"),
    Hidden::History,
    &["-f", "{}"]
));

both!(patch, |who| program(
    who,
    "patch",
    "patch",
    &["-o", "out.txt", "in.txt", "fix.diff"],
    made("out.txt", "cat out.txt", "patched line"),
    Hidden::History,
    &["--dry-run", "in.txt", "{}"]
));

both!(vim, |who| program(
    who,
    "vim",
    "vim",
    &["-u", "NONE", "-es", "+%print", "+q!", "in.txt"],
    prints("hello from the input"),
    Hidden::History,
    &[
        "-u",
        "NONE",
        "-es",
        "+put =filereadable('{}') ? 'readable' : 'refused: cannot open'",
        "+%print",
        "+q!",
    ]
));

both!(gpg, |who| program(
    who,
    "gpg",
    "gnupg",
    &["--batch", "--print-md", "SHA256", "in.txt"],
    prints("in.txt: "),
    Hidden::History,
    &["--batch", "--print-md", "SHA256", "{}"]
));

both!(wget, |who| {
    installed("wget", "wget");
    let b = setup(who);
    // A local web server on the host's loopback: wget's profile keeps the
    // host network.
    // A port free now (the kernel's pick), not one derived from the pid,
    // which another test's server may hold.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&b.work)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the web server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/in.txt");
    let r = b.run("wget", &["-q", "-O", "-", &url]);
    let hidden = b.hidden(Hidden::History);
    let read = b.run("wget", &["-i", &hidden, "-O", "/dev/null"]);
    let _ = server.kill();
    let _ = server.wait();
    prints("hello from the input")(&b, r);
    refused(&read, Hidden::History);
});
