//! The workspace: protected paths inside a writable bind (s.protect), and
//! copy-on-write directories (s.overlay) with `moksha diff`, `commit` and
//! `discard` — as root and rootless, on the real kernel.

use crate::both;
use crate::common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A test's world: a project owned by the sandbox's identity and a
/// changes store (XDG_DATA_HOME) of the caller's.
struct World {
    _dir: tempfile::TempDir,
    project: PathBuf,
    data: PathBuf,
    who: Who,
}

impl World {
    fn new(who: Who) -> World {
        let dir = world_dir();
        let project = sandbox_dir(dir.path(), "project", who);
        let data = owned_dir(dir.path(), "data", who);
        World {
            project,
            data,
            who,
            _dir: dir,
        }
    }

    fn p(&self) -> String {
        self.project.to_string_lossy().into_owned()
    }

    /// `moksha ARGS` with the store of this world.
    fn moksha(&self, args: &[&str]) -> Run {
        Run::from(
            moksha(self.who, args)
                .env("XDG_DATA_HOME", &self.data)
                .output()
                .unwrap(),
        )
    }

    /// Runs a shell script as the sandbox's identity on the host, in `dir`.
    fn host_sh(&self, dir: &Path, script: &str) -> Run {
        let id = self.who.sandbox_uid();
        let r = Run::from(
            as_user(if id == 0 { Who::Root } else { Who::Other(id) }, "/bin/sh")
                .args(["-c", script])
                .current_dir(dir)
                .env("HOME", dir)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{script}: {r:?}");
        r
    }

    /// Runs `script` in a minimal sandbox with `extra` profile lines,
    /// in the project.
    fn sandbox(&self, extra: &str, script: &str) -> Run {
        let dir = world_dir();
        let text = sh_profile(&format!("{extra}\ns.cwd({:?});", self.p()), script);
        let path = write_profile(dir.path(), "ws.rhai", &text);
        self.moksha(&["exec", &path])
    }

    fn changes_dir(&self) -> PathBuf {
        self.data.join("moksha/changes")
    }
}

fn write(path: &Path, text: &[u8], who: Who) {
    std::fs::write(path, text).unwrap();
    let id = Some(who.sandbox_uid());
    std::os::unix::fs::lchown(path, id, id).unwrap();
}

/// A directory (and its missing parents) owned by the sandbox's identity.
fn mkdir(path: &Path, who: Who) {
    if path.exists() {
        return;
    }
    if let Some(parent) = path.parent() {
        mkdir(parent, who);
    }
    std::fs::create_dir(path).unwrap();
    let id = Some(who.sandbox_uid());
    std::os::unix::fs::lchown(path, id, id).unwrap();
}

/// Everything of a tree but owners and times: kind, mode, content or
/// link target, by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(root, &path, out);
                format!("dir {mode:o}")
            } else {
                let bytes = std::fs::read(&path).unwrap();
                format!("file {mode:o} {bytes:?}")
            };
            out.insert(rel, what);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The protected paths of the acceptance list, and a file beside them.
const PROTECT: &str =
    "s.protect([\".git/hooks\", \".git/config\", \".envrc\"], #{ under: PROJECT });";

both!(
    protected_paths_are_read_only_and_not_creatable,
    |who: Who| {
        let w = World::new(who);
        mkdir(&w.project.join(".git/hooks"), who);
        write(&w.project.join(".git/config"), b"[core]\n", who);
        write(
            &w.project.join(".git/hooks/post-commit"),
            b"#!/bin/sh\n",
            who,
        );
        write(&w.project.join("a.txt"), b"a\n", who);
        let before = snapshot(&w.project);
        let extra = format!(
            "s.bind({0:?}, #{{ rw: true }});\n{1}",
            w.p(),
            PROTECT.replace("PROJECT", &format!("{:?}", w.p()))
        );
        // Each attempt prints its name and whether it worked.
        let script = "try() { name=$1; shift; if (\"$@\") 2>/dev/null; then echo \"$name:worked\"; else echo \"$name:failed\"; fi; }
        try create-hook sh -c 'echo x > .git/hooks/pre-commit'
        try write-hook sh -c 'echo x >> .git/hooks/post-commit'
        echo evil > new
        try rename-over-hook mv new .git/hooks/post-commit
        try rename-over-config mv new .git/config
        try delete-config rm .git/config
        try write-config sh -c 'echo x >> .git/config'
        try move-git-away mv .git moved
        try create-envrc sh -c 'echo x > .envrc'
        try write-other sh -c 'echo ok > a.txt'
        try create-other sh -c 'echo b > b.txt'
        rm -f new";
        let r = w.sandbox(&extra, script).expect_code(0);
        let got: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            got,
            [
                "create-hook:failed",
                "write-hook:failed",
                "rename-over-hook:failed",
                "rename-over-config:failed",
                "delete-config:failed",
                "write-config:failed",
                "move-git-away:failed",
                "create-envrc:failed",
                "write-other:worked",
                "create-other:worked",
            ],
            "{r:?}"
        );
        // The host: the protected files as they were, no placeholder left.
        let mut after = snapshot(&w.project);
        assert_eq!(after.remove("a.txt").unwrap(), "file 644 [111, 107, 10]");
        assert!(after.remove("b.txt").is_some());
        let mut expected = before.clone();
        expected.remove("a.txt");
        assert_eq!(after, expected);

        // plan and explain show the list.
        let dir = world_dir();
        let path = write_profile(dir.path(), "p.rhai", &sh_profile(&extra, "true"));
        let plan = w.moksha(&["plan", &path]).expect_code(0);
        assert!(
            plan.stdout.contains("protect")
                && plan.stdout.contains(".git/hooks .git/config .envrc"),
            "{plan:?}"
        );
        let explain = w.moksha(&["explain", &path]).expect_code(0);
        assert!(
            explain.stdout.contains(&format!("{}/.git/hooks", w.p()))
                && explain.stdout.contains("protected"),
            "{explain:?}"
        );
    }
);

// Two sandboxes on one project: the first to end must not remove the
// placeholders the other relies on (the kernel would unmount the other's
// read-only mount of them, and the names would become creatable there);
// a placeholder another sandbox made on the way is read-only too (chmod
// would open it); the last one out removes them.
both!(
    two_sandboxes_on_one_project_keep_each_others_placeholders,
    |who: Who| {
        let w = World::new(who);
        let extra = format!(
            "s.bind({0:?}, #{{ rw: true }});\ns.protect([\".envrc\", \".git/hooks\"], #{{ under: {0:?} }});",
            w.p()
        );
        let spawn = |script: &str| {
            let dir = world_dir();
            let text = sh_profile(&format!("{extra}\ns.cwd({:?});", w.p()), script);
            let path = write_profile(dir.path(), "ws.rhai", &text);
            let child = moksha(who, &["exec", &path])
                .env("XDG_DATA_HOME", &w.data)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (dir, child)
        };
        let wait_for = |what: &str, f: &dyn Fn() -> bool| {
            let t = std::time::Instant::now();
            while !f() {
                assert!(t.elapsed().as_secs() < 30, "{what}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        };
        // The first makes the placeholders and waits for the second (each
        // wait bounded: a failing assertion must not leave them running).
        let (_a_dir, a) = spawn(
            "i=0; while [ ! -e b-started ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done",
        );
        wait_for("the first sandbox's placeholders", &|| {
            w.project.join(".envrc").is_dir() && w.project.join(".git").is_dir()
        });
        let script = "touch b-started; i=0; while [ ! -e a-ended ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done
        try() { name=$1; shift; if (\"$@\") 2>/dev/null; then echo \"$name:worked\"; else echo \"$name:failed\"; fi; }
        try create-envrc sh -c 'echo x > .envrc'
        try create-hooks mkdir .git/hooks
        try open-git chmod 755 .git
        try create-hooks-after mkdir .git/hooks";
        let (_b_dir, b) = spawn(script);
        let a = Run::from(a.wait_with_output().unwrap()).expect_code(0);
        // The second still uses them: they stay.
        assert!(w.project.join(".envrc").is_dir(), "{a:?}");
        assert!(w.project.join(".git").is_dir(), "{a:?}");
        write(&w.project.join("a-ended"), b"", who);
        let b = Run::from(b.wait_with_output().unwrap()).expect_code(0);
        assert_eq!(
            b.stdout.lines().collect::<Vec<_>>(),
            [
                "create-envrc:failed",
                "create-hooks:failed",
                "open-git:failed",
                "create-hooks-after:failed"
            ],
            "{b:?}"
        );
        // The last one out removed them.
        assert!(!w.project.join(".envrc").exists(), "{b:?}");
        assert!(!w.project.join(".git").exists(), "{b:?}");
    }
);

both!(a_protected_path_that_is_a_symlink_is_refused, |who: Who| {
    let w = World::new(who);
    std::os::unix::fs::symlink("/etc/passwd", w.project.join(".envrc")).unwrap();
    let extra = format!(
        "s.bind({0:?}, #{{ rw: true }});\n{1}",
        w.p(),
        PROTECT.replace("PROJECT", &format!("{:?}", w.p()))
    );
    let r = w.sandbox(&extra, "echo ran");
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains(".envrc: it is a symlink"), "{r:?}");
    assert!(!r.stdout.contains("ran"));
});

/// The tree the overlay tests start from.
fn overlay_tree(w: &World) {
    let (p, who) = (&w.project, w.who);
    write(&p.join("a.txt"), b"one\ntwo\nthree\n", who);
    write(&p.join("b.txt"), b"to delete\n", who);
    write(&p.join("bin.dat"), &[0u8, 1, 2, 255, 0], who);
    write(&p.join("run.sh"), b"#!/bin/sh\n", who);
    std::fs::set_permissions(p.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("a.txt", p.join("link")).unwrap();
    std::os::unix::fs::lchown(
        p.join("link"),
        Some(who.sandbox_uid()),
        Some(who.sandbox_uid()),
    )
    .unwrap();
    mkdir(&p.join("gone/deep"), who);
    write(&p.join("gone/deep/f"), b"old\n", who);
    write(&p.join("gone/keep-not"), b"old\n", who);
    mkdir(&p.join("d"), who);
}

/// What the program does to the overlay tree: edit, add, delete, a mode
/// change, links (one pointing out of the tree: made as a link, never
/// followed), a directory removed and made anew (opaque).
const EDIT: &str = "set -e
    printf 'one\\n2\\nthree\\nfour\\n' > a.txt
    rm b.txt
    printf '\\0\\1new' > bin.dat
    chmod 700 run.sh
    printf 'new\\n' > d/n.txt
    chmod 750 d/n.txt
    mkdir -p d/e/f
    ln -s ../a.txt d/rel
    ln -s /etc/passwd out
    rm link
    ln -s b.txt link
    rm -rf gone
    mkdir gone
    printf 'fresh\\n' > gone/g";

both!(
    an_overlay_keeps_the_host_unchanged_until_commit,
    |who: Who| {
        let w = World::new(who);
        overlay_tree(&w);
        let before = snapshot(&w.project);
        // The oracle: the same edit made on a copy, on the host.
        let copy = w._dir.path().join("copy");
        let r = Run::from(
            std::process::Command::new("cp")
                .args(["-a", &w.p(), copy.to_str().unwrap()])
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{r:?}");
        w.host_sh(&copy, EDIT);
        let expected = snapshot(&copy);

        let extra = format!("s.overlay({:?});", w.p());
        // Inside, the program sees its own writes; the host does not.
        let r = w
            .sandbox(&extra, &format!("{EDIT}\ncat a.txt; ls gone"))
            .expect_code(0);
        assert_eq!(r.stdout, "one\n2\nthree\nfour\ng\n", "{r:?}");
        assert_eq!(snapshot(&w.project), before, "the host changed");

        // diff lists exactly those changes.
        let list = w.moksha(&["diff", "t", "--name-only"]).expect_code(0);
        let lines: Vec<&str> = list
            .stdout
            .lines()
            .map(|l| l.split("  (").next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "M a.txt",
                "D b.txt",
                "M bin.dat",
                "A d/e/",
                "A d/e/f/",
                "A d/n.txt",
                "A d/rel",
                "M gone/",
                "D gone/deep/",
                "D gone/keep-not",
                "A gone/g",
                "M link",
                "A out",
                "M run.sh",
            ],
            "{list:?}"
        );
        assert!(
            list.stdout.contains("A out  (symlink -> /etc/passwd)"),
            "{list:?}"
        );
        let diff = w.moksha(&["diff", "t"]).expect_code(0);
        assert!(
            diff.stdout.contains(
                "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,4 @@\n one\n-two\n+2\n three\n+four\n"
            ),
            "{diff:?}"
        );
        assert!(
            diff.stdout
                .contains("Binary files a/bin.dat and b/bin.dat differ"),
            "{diff:?}"
        );
        let stat = w.moksha(&["diff", "t", "--stat"]).expect_code(0);
        assert!(
            stat.stdout
                .contains("14 changes: 6 added, 5 modified, 3 deleted"),
            "{stat:?}"
        );
        // ps shows them pending.
        let ps = w.moksha(&["ps"]).expect_code(0);
        assert!(
            ps.stdout
                .lines()
                .any(|l| l.starts_with("t ") && l.contains("pending") && l.contains(" 14 ")),
            "{ps:?}"
        );

        // commit applies them byte-exactly: the host is what the oracle made.
        w.moksha(&["commit", "t"]).expect_code(0);
        assert_eq!(snapshot(&w.project), expected);
        assert!(!w.changes_dir().join("t").exists(), "the store is gone");
        assert!(w
            .moksha(&["diff", "t"])
            .stderr
            .contains("no changes named \"t\""));
    }
);

both!(
    discard_leaves_nothing_and_a_tmpfs_upper_keeps_nothing,
    |who: Who| {
        let w = World::new(who);
        overlay_tree(&w);
        let before = snapshot(&w.project);
        w.sandbox(&format!("s.overlay({:?});", w.p()), EDIT)
            .expect_code(0);
        assert!(w.changes_dir().join("t/upper/a.txt").exists());
        w.moksha(&["discard", "t"]).expect_code(0);
        assert_eq!(
            std::fs::read_dir(w.changes_dir()).unwrap().count(),
            0,
            "nothing left in the store"
        );
        assert_eq!(snapshot(&w.project), before);
        // A run that changes nothing leaves no store behind.
        w.sandbox(&format!("s.overlay({:?});", w.p()), "cat a.txt >/dev/null")
            .expect_code(0);
        assert_eq!(std::fs::read_dir(w.changes_dir()).unwrap().count(), 0);

        // A tmpfs upper layer: the same inside, nothing kept anywhere.
        let r = w
            .sandbox(
                &format!("s.overlay({:?}, #{{ upper: \"tmpfs\" }});", w.p()),
                &format!("{EDIT}\ncat gone/g"),
            )
            .expect_code(0);
        assert_eq!(r.stdout, "fresh\n");
        assert_eq!(snapshot(&w.project), before);
        assert_eq!(std::fs::read_dir(w.changes_dir()).unwrap().count(), 0);
    }
);

both!(
    commit_refuses_a_file_the_host_changed_meanwhile,
    |who: Who| {
        let w = World::new(who);
        write(&w.project.join("a.txt"), b"a\n", who);
        write(&w.project.join("b.txt"), b"b\n", who);
        w.sandbox(
            &format!("s.overlay({:?});", w.p()),
            "echo sandbox > a.txt; echo sandbox > b.txt; echo new > c.txt",
        )
        .expect_code(0);
        // Changed on the host after the sandbox started.
        std::fs::write(w.project.join("a.txt"), "host\n").unwrap();
        let r = w.moksha(&["commit", "t"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr.contains("a.txt: changed on the host since") && !r.stderr.contains("b.txt"),
            "{r:?}"
        );
        // Nothing applied: not even what did not conflict.
        assert_eq!(
            std::fs::read_to_string(w.project.join("a.txt")).unwrap(),
            "host\n"
        );
        assert_eq!(
            std::fs::read_to_string(w.project.join("b.txt")).unwrap(),
            "b\n"
        );
        assert!(!w.project.join("c.txt").exists());
        // The others can be committed by name; the conflict stays pending.
        w.moksha(&["commit", "t", "b.txt", "c.txt"]).expect_code(0);
        assert_eq!(
            std::fs::read_to_string(w.project.join("b.txt")).unwrap(),
            "sandbox\n"
        );
        assert_eq!(
            std::fs::read_to_string(w.project.join("c.txt")).unwrap(),
            "new\n"
        );
        let left = w.moksha(&["diff", "t", "--name-only"]).expect_code(0);
        assert_eq!(left.stdout, "M a.txt  (file 0644)\n");
        // A second run on the same store goes on from its changes, and the
        // files it committed are not conflicts with themselves.
        let r = w
            .sandbox(
                &format!("s.overlay({:?});", w.p()),
                "cat a.txt; echo again > b.txt",
            )
            .expect_code(0);
        assert_eq!(r.stdout, "sandbox\n");
        w.moksha(&["commit", "t", "b.txt"]).expect_code(0);
        assert_eq!(
            std::fs::read_to_string(w.project.join("b.txt")).unwrap(),
            "again\n"
        );
    }
);

both!(
    what_a_sandbox_plants_in_its_changes_is_not_followed,
    |who: Who| {
        let w = World::new(who);
        let outside = w._dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        write(&w.project.join("a.txt"), b"a\n", who);
        // A link out of the tree, then a write "through" it, a setuid file, a fifo.
        let extra = format!(
            "s.overlay({:?});\ns.bind({:?}, #{{ rw: true }});",
            w.p(),
            w.data.to_string_lossy()
        );
        let script = format!(
        "ln -s {0} escape; echo pwned > escape/x 2>/dev/null; printf x > suid; chmod 755 suid; chmod 4755 suid 2>/dev/null; \
         ls -A {1}/moksha/changes | wc -l; mkfifo pipe",
        outside.display(),
        w.data.display()
    );
        let r = w.sandbox(&extra, &script).expect_code(0);
        // The changes store is hidden wherever a bind would show it.
        assert_eq!(r.stdout.trim(), "0", "{r:?}");
        // A fifo is not something a commit makes: refused, nothing applied.
        let r = w.moksha(&["commit", "t"]);
        assert!(r.stderr.contains("pipe: a fifo"), "{r:?}");
        assert!(!w.project.join("escape").exists());
        w.moksha(&["commit", "t", "escape", "suid"]).expect_code(0);
        let link = std::fs::symlink_metadata(w.project.join("escape")).unwrap();
        assert!(link.file_type().is_symlink());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        let mode = std::fs::metadata(w.project.join("suid")).unwrap().mode();
        assert_eq!(mode & 0o7777, 0o755);
    }
);

// A sandbox's chmod cannot open the user's files to other users: write for
// group or others reaches the host only where the host object had it, or
// the committer's umask gives it to a new one; other bits (x) are applied.
both!(
    a_commit_does_not_widen_write_access_for_others,
    |who: Who| {
        let w = World::new(who);
        mkdir(&w.project.join("d"), who);
        write(&w.project.join("f"), b"f\n", who);
        write(&w.project.join("shared"), b"s\n", who);
        write(&w.project.join("x.sh"), b"true\n", who);
        write(&w.project.join("key"), b"k\n", who);
        w.host_sh(
            &w.project,
            "chmod 755 d; chmod 644 f x.sh; chmod 664 shared; chmod 600 key",
        )
        .expect_code(0);
        let extra = format!("s.overlay({:?});", w.p());
        let script = "chmod 777 d; chmod 666 f shared; chmod 755 x.sh; chmod 644 key; umask 0; \
                      echo n > new; chmod 666 new; mkdir -m 777 nd";
        w.sandbox(&extra, script).expect_code(0);
        w.moksha(&["commit", "t"]).expect_code(0);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
            .unwrap();
        let mode = |name: &str| std::fs::metadata(w.project.join(name)).unwrap().mode() & 0o7777;
        assert_eq!(mode("d"), 0o755);
        assert_eq!(mode("f"), 0o644);
        assert_eq!(mode("shared"), 0o664, "group write the host gave stays");
        assert_eq!(
            mode("x.sh"),
            0o744,
            "the owner's new execute bit is applied, not others'"
        );
        assert_eq!(mode("key"), 0o600, "a private file stays private");
        assert_eq!(mode("new"), 0o666 & !(umask & 0o022));
        assert_eq!(mode("nd"), 0o777 & !(umask & 0o022));
    }
);

both!(
    git_commit_under_an_overlay_reaches_the_host_by_moksha_commit,
    |who: Who| {
        installed("git", "git");
        let w = World::new(who);
        w.host_sh(
            &w.project,
            "git init -q -b main && git config user.name T && git config user.email t@example.org \
         && echo a > a.txt && git add a.txt && git commit -q -m first",
        );
        let extra = format!(
            "s.overlay({:?});\ns.env(\"HOME\", {:?});\ns.env(\"GIT_CONFIG_NOSYSTEM\", \"1\");",
            w.p(),
            w.p()
        );
        w.sandbox(
            &extra,
            "echo b > b.txt && git add b.txt && git commit -q -m second",
        )
        .expect_code(0);
        let host_log = w.host_sh(&w.project, "git log --format=%s");
        assert_eq!(
            host_log.stdout, "first\n",
            "the host repository is unchanged"
        );
        let list = w.moksha(&["diff", "t", "--name-only"]).expect_code(0);
        assert!(
            list.stdout
                .lines()
                .any(|l| l.starts_with("A .git/objects/")),
            "{list:?}"
        );
        assert!(list.stdout.contains("A b.txt"), "{list:?}");
        w.moksha(&["commit", "t"]).expect_code(0);
        let host_log = w.host_sh(&w.project, "git log --format=%s && git status --porcelain");
        assert_eq!(host_log.stdout, "second\nfirst\n");
        w.host_sh(&w.project, "git fsck --no-progress");
    }
);

#[test]
fn ten_thousand_files_overlay_and_commit() {
    let who = Who::Root;
    let w = World::new(who);
    w.host_sh(
        &w.project,
        "mkdir -p t && i=0; while [ $i -lt 100 ]; do mkdir t/$i; j=0; \
         while [ $j -lt 100 ]; do echo $i.$j > t/$i/$j; j=$((j+1)); done; i=$((i+1)); done",
    );
    let start = std::time::Instant::now();
    // Every file changed, through the overlay (one copy-up each).
    w.sandbox(
        &format!("s.overlay({:?});", w.p()),
        "find t -type f -exec sed -i s/$/x/ {} +",
    )
    .expect_code(0);
    let ran = start.elapsed();
    let stat = w.moksha(&["diff", "t", "--stat"]).expect_code(0);
    assert!(
        stat.stdout
            .contains("10000 changes: 0 added, 10000 modified"),
        "{stat:?}"
    );
    let t0 = std::time::Instant::now();
    w.moksha(&["commit", "t"]).expect_code(0);
    let committed = t0.elapsed();
    eprintln!(
        "workspace: 10,000 files: sandbox run (overlay, every file rewritten) {ran:?}, \
         moksha commit {committed:?}"
    );
    assert_eq!(
        std::fs::read_to_string(w.project.join("t/42/7")).unwrap(),
        "42.7x\n"
    );
}

both!(
    a_detached_sandboxs_changes_are_in_use_until_it_stops,
    |who: Who| {
        let w = World::new(who);
        write(&w.project.join("a.txt"), b"a\n", who);
        let name = format!("ws-detached-{}-{}", std::process::id(), who.uid());
        // Protected inside the overlay too: the placeholder for the missing
        // .envrc lands in the upper directory, and is no change of the sandbox's.
        let extra = format!(
            "s.overlay({0:?});\ns.protect([\".envrc\"], #{{ under: {0:?} }});",
            w.p()
        );
        let dir = world_dir();
        let text = sh_profile(
            &format!("{extra}\ns.cwd({:?});", w.p()),
            "echo sandbox > a.txt; echo > ready; exec sleep 60",
        );
        let path = write_profile(dir.path(), "ws.rhai", &text);
        w.moksha(&["exec", "--detach", "--name", &name, &path])
            .expect_code(0);
        let mut seen = String::new();
        for _ in 0..100 {
            seen = w.moksha(&["diff", "t", "--name-only"]).stdout;
            if seen.contains("A ready") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(seen, "M a.txt  (file 0644)\nA ready  (file 0644)\n");
        let ps = w.moksha(&["ps"]).expect_code(0);
        assert!(
            ps.stdout
                .lines()
                .any(|l| l.starts_with("t ") && l.contains("in use")),
            "{ps:?}"
        );
        let r = w.moksha(&["commit", "t"]);
        assert!(r.stderr.contains("in use by a running sandbox"), "{r:?}");
        assert_eq!(
            std::fs::read_to_string(w.project.join("a.txt")).unwrap(),
            "a\n"
        );
        w.moksha(&["stop", &name]).expect_code(0);
        w.moksha(&["rm", &name]).expect_code(0);
        w.moksha(&["commit", "t"]).expect_code(0);
        assert_eq!(
            std::fs::read_to_string(w.project.join("a.txt")).unwrap(),
            "sandbox\n"
        );
        assert!(!w.project.join(".envrc").exists());
    }
);

// The store is hidden by what a bind shows, not by how its path is
// written: a symlink to the data directory (or a second mount of it) is a
// bind of the same directory. Seen in review: through such a bind a
// sandbox rewrote its store's overlay.json, and `moksha commit` then wrote
// where that pointed.
both!(
    the_changes_store_is_hidden_behind_a_symlinked_bind_too,
    |who: Who| {
        let w = World::new(who);
        write(&w.project.join("a.txt"), b"a\n", who);
        w.sandbox(
            &format!("s.overlay({:?}, #{{ name: \"t\" }});", w.p()),
            "echo b > b.txt",
        )
        .expect_code(0);
        assert!(w.changes_dir().join("t/overlay.json").exists());
        let link = w.project.parent().unwrap().join("data-link");
        std::os::unix::fs::symlink(&w.data, &link).unwrap();
        let script = format!(
            "ls -A {0}/moksha/changes | wc -l; \
             echo '{{}}' > {0}/moksha/changes/t/overlay.json 2>/dev/null && echo rewritten; exit 0",
            link.display()
        );
        let dir = world_dir();
        let extra = format!("s.bind({:?}, #{{ rw: true }});", link.to_string_lossy());
        let path = write_profile(dir.path(), "link.rhai", &sh_profile(&extra, &script));
        let r = w.moksha(&["exec", &path]).expect_code(0);
        assert_eq!(r.stdout.trim(), "0", "{r:?}");
        let manifest = std::fs::read_to_string(w.changes_dir().join("t/overlay.json")).unwrap();
        assert!(manifest.contains(&w.p()), "{manifest}");
    }
);

// The stdlib's default list protects all of .git: found in review, a
// sandbox that could write the rest of it made .git/commondir name a
// directory of its own, whose config's core.fsmonitor the host's next
// `git status` ran. A worktree's .git file is protected too (it could be
// pointed at another git directory).
both!(
    the_default_list_keeps_git_from_being_redirected,
    |who: Who| {
        let w = World::new(who);
        mkdir(&w.project.join(".git/hooks"), who);
        write(&w.project.join(".git/config"), b"[core]\n", who);
        let wt = w.project.join("wt");
        mkdir(&wt, who);
        write(&wt.join(".git"), b"gitdir: ../.git/worktrees/wt\n", who);
        write(&w.project.join("a.txt"), b"a\n", who);
        let extra = format!(
            "s.bind({0:?}, #{{ rw: true }});\nimport \"workspace\" as workspace;\n\
             workspace::protect_dir(s, {0:?});\ns.protect([\"wt/.git/hooks\"], #{{ under: {0:?} }});",
            w.p()
        );
        let script = "try() { name=$1; shift; if (\"$@\") 2>/dev/null; then echo \"$name:worked\"; else echo \"$name:failed\"; fi; }
        try commondir sh -c 'echo ../.evil > .git/commondir'
        try worktree-gitdir sh -c 'echo gitdir: .evil > wt/.git'
        try replace-worktree-gitdir sh -c 'rm -f wt/.git && mkdir wt/.git'
        try write-other sh -c 'echo ok > a.txt'";
        let r = w.sandbox(&extra, script).expect_code(0);
        let got: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            got,
            [
                "commondir:failed",
                "worktree-gitdir:failed",
                "replace-worktree-gitdir:failed",
                "write-other:worked",
            ],
            "{r:?}"
        );
        assert!(!w.project.join(".git/commondir").exists());
        assert_eq!(
            std::fs::read(wt.join(".git")).unwrap(),
            b"gitdir: ../.git/worktrees/wt\n"
        );
    }
);
