//! What ships inside the binary and comes out of it: profile and stdlib
//! sources (`profiles show`, `stdlib show`), manual pages and shell
//! completions.

use crate::common::*;
use std::path::Path;

fn run(args: &[&str]) -> Run {
    Run::from(moksha(Who::Root, args).output().unwrap())
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn profiles_show_prints_the_source_to_copy_and_edit() {
    let r = run(&["profiles", "show", "firefox"]).expect_code(0);
    assert_eq!(r.stdout, repo_file("profiles/firefox.rhai"));
    // Copy, edit, run: only the binary is needed.
    let dir = world_dir();
    let demo = run(&["profiles", "show", "demo"]).expect_code(0).stdout;
    let mine = write_profile(
        dir.path(),
        "mine.rhai",
        &demo.replace("moksha-demo", "my-edited-box"),
    );
    for who in [Who::Root, Who::Nobody] {
        let r = Run::from(moksha(who, &["exec", &mine]).output().unwrap()).expect_code(0);
        assert!(r.stdout.contains("hostname:  my-edited-box"), "{r:?}");
    }
    // An override is what `show` prints (with a note); --builtin the original.
    let home = world_dir();
    let profiles = home.path().join(".config/moksha/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let over = write_profile(&profiles, "demo.rhai", "// mine\n");
    let show = |args: &[&str]| {
        Run::from(
            moksha(Who::Root, args)
                .env("HOME", home.path())
                .output()
                .unwrap(),
        )
    };
    let r = show(&["profiles", "show", "demo"]).expect_code(0);
    assert_eq!(r.stdout, "// mine\n");
    assert!(r.stderr.contains(&over), "{r:?}");
    let r = show(&["profiles", "show", "--builtin", "demo"]).expect_code(0);
    assert_eq!(r.stdout, repo_file("profiles/demo.rhai"));
    let r = run(&["profiles", "show", "no-such"]).expect_code(1);
    assert!(r.stderr.contains("no profile named \"no-such\""), "{r:?}");
}

#[test]
fn stdlib_lists_and_shows_the_embedded_modules() {
    let r = run(&["stdlib"]).expect_code(0);
    let names: Vec<&str> = r
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    for module in [
        "audio", "base", "dbus", "desktop", "devices", "display", "home", "network",
    ] {
        assert!(names.contains(&module), "{module} not in:\n{}", r.stdout);
    }
    assert!(
        r.stdout.lines().any(|l| l.starts_with("base ")
            && l.ends_with("a minimal, read-only root for programs from the host's /usr.")),
        "{}",
        r.stdout
    );
    for module in ["home", "home.rhai"] {
        let r = run(&["stdlib", "show", module]).expect_code(0);
        assert_eq!(r.stdout, repo_file("stdlib/home.rhai"));
    }
    let r = run(&["stdlib", "show", "bsae"]).expect_code(1);
    assert!(
        r.stderr.contains("no stdlib module named \"bsae\""),
        "{r:?}"
    );
    assert!(r.stderr.contains("base"), "{r:?}");
}

#[test]
fn bash_completion_loads_and_completes() {
    let dir = world_dir();
    let script = run(&["completions", "bash"]).expect_code(0).stdout;
    let file = write_profile(dir.path(), "moksha.bash", &script);
    // Load it, then ask the completion function for `moksha exe<TAB>` (not
    // explain) and
    // `moksha exec --ne<TAB>`.
    let probe = format!(
        "source {file} && complete -p moksha && \
         COMP_WORDS=(moksha exe); COMP_CWORD=1; _moksha moksha exe moksha; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(moksha exec --ne); COMP_CWORD=2; _moksha moksha --ne exec; echo \"${{COMPREPLY[@]}}\""
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .unwrap();
    let r = Run::from(out).expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("complete ") && lines[0].ends_with(" -F _moksha moksha"),
        "{r:?}"
    );
    assert_eq!(lines[1], "exec", "{r:?}");
    assert_eq!(lines[2], "--net", "{r:?}");
    for (shell, head) in [("zsh", "#compdef moksha"), ("fish", "complete -c moksha")] {
        let r = run(&["completions", shell]).expect_code(0);
        assert!(r.stdout.contains(head), "{shell}: {}", r.stdout);
        assert!(r.stdout.contains("rw-bind"), "{shell}");
    }
}

#[test]
fn man_pages_render() {
    let page = run(&["man"]).expect_code(0).stdout;
    assert!(page.contains("\n.TH moksha 1 "), "{page}");
    let dir = world_dir();
    let out = dir.path().join("man1");
    let r = run(&["man", "-o", out.to_str().unwrap()]).expect_code(0);
    for name in ["moksha", "moksha-exec", "moksha-plan", "moksha-profiles"] {
        let path = out.join(format!("{name}.1"));
        assert!(r.stdout.contains(path.to_str().unwrap()), "{r:?}");
        let rendered = std::process::Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "200")
            .output()
            .unwrap();
        let text = Run::from(rendered).expect_code(0).stdout;
        assert!(text.contains("NAME"), "{name}: {text}");
        assert!(text.contains(name), "{name}: {text}");
    }
    let exec = std::process::Command::new("man")
        .arg("-l")
        .arg(out.join("moksha-exec.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "200")
        .output()
        .unwrap();
    let text = Run::from(exec).expect_code(0).stdout;
    assert!(text.contains("--rw-bind"), "{text}");
}
