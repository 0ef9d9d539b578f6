//! `moksha explain`: golden files for every shipped profile, made on a
//! fixed host (tests/golden/host.rhai: the same user, home, programs and
//! devices on every machine), the score's order, `--diff` and `--json`.
//!
//! To re-bless the golden files after a deliberate change, review the diff
//! this prints, then run
//!
//!     MOKSHA_BLESS=1 cargo test --test integration explain
//!
//! and commit tests/golden/*.txt with the change.

use crate::common::*;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// `moksha ARGS` run inside the golden host, as root.
fn on_golden_host(args: &[&str]) -> Run {
    let host = golden_dir().join("host.rhai");
    let bin = moksha_bin().to_string_lossy().into_owned();
    let mut all = vec!["exec", host.to_str().unwrap(), "--", &bin];
    all.extend_from_slice(args);
    Run::from(moksha(Who::Root, &all).output().unwrap())
}

fn shipped_profiles() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rhai").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    names
}

/// The exposure score from the first line of `moksha explain`.
fn exposure(out: &str) -> u32 {
    let first = out.lines().next().unwrap_or("");
    let n = first.split("exposure ").nth(1).unwrap_or("");
    n.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn every_shipped_profile_matches_its_golden_file() {
    let bless = std::env::var_os("MOKSHA_BLESS").is_some();
    let mut stale = Vec::new();
    for name in shipped_profiles() {
        let r = on_golden_host(&["explain", &name]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        let file = golden_dir().join(format!("{name}.txt"));
        if bless {
            std::fs::write(&file, &r.stdout).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_default();
        if want != r.stdout {
            eprintln!(
                "--- {} (golden)\n{want}\n+++ (now)\n{}",
                file.display(),
                r.stdout
            );
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "explain's output changed for {stale:?}: review the output above, then re-bless with \
         MOKSHA_BLESS=1 cargo test --test integration explain"
    );
}

#[test]
fn the_score_orders_shell_build_firefox() {
    let score = |name: &str| {
        let r = on_golden_host(&["explain", name]).expect_code(0);
        exposure(&r.stdout)
    };
    let (shell, build, firefox) = (score("shell"), score("build"), score("firefox"));
    assert!(
        shell < build && build < firefox,
        "shell {shell}, build {build}, firefox {firefox}"
    );
}

#[test]
fn diff_lists_what_one_profile_grants_and_the_other_not() {
    let dir = world_dir();
    let a = write_profile(
        dir.path(),
        "a.rhai",
        "import \"base\" as base;\nlet s = sandbox(\"a\");\nbase::minimal(s);\ns.exec([\"true\"]);\n",
    );
    let b = write_profile(
        dir.path(),
        "b.rhai",
        "import \"base\" as base;\nlet s = sandbox(\"a\");\nbase::minimal(s);\n\
         s.bind(\"/srv\", \"/srv\", #{ rw: true });\ns.network(\"host\");\n\
         s.seccomp_allow([\"@keyring\"]);\ns.exec([\"true\"]);\n",
    );
    let r = Run::from(
        moksha(Who::Root, &["explain", &a, "--diff", &b])
            .output()
            .unwrap(),
    )
    .expect_code(0);
    let only_b = r.stdout.split("only B grants").nth(1).unwrap_or("");
    assert!(
        only_b.contains("/srv  read, write  from /srv"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("only A grants"), "{}", r.stdout);
    let changed = r.stdout.split("both, differently").nth(1).unwrap_or("");
    assert!(
        changed.contains("network mode") && changed.contains("B: host"),
        "{}",
        r.stdout
    );
    assert!(
        changed.contains("syscalls @keyring") && changed.contains(&format!("[{b}:6:3]")),
        "{}",
        r.stdout
    );
    // The same profile twice: nothing differs.
    let r = Run::from(
        moksha(Who::Root, &["explain", &a, "--diff", &a])
            .output()
            .unwrap(),
    )
    .expect_code(0);
    assert!(r.stdout.contains("the same grants"), "{}", r.stdout);
    // JSON for tools.
    let r = Run::from(
        moksha(Who::Root, &["explain", "--json", &a, "--diff", &b])
            .output()
            .unwrap(),
    )
    .expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["score_b"].as_u64().unwrap() > v["score_a"].as_u64().unwrap(),
        "{v}"
    );
    assert!(
        v["only_b"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["key"] == "/srv"),
        "{v}"
    );
}

#[test]
fn json_has_every_grant_and_the_score() {
    for who in [Who::Root, Who::Nobody] {
        let r = Run::from(
            moksha(who, &["explain", "--json", "shell"])
                .output()
                .unwrap(),
        )
        .expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let grants = v["grants"].as_array().unwrap();
        assert!(
            grants
                .iter()
                .any(|g| g["kind"] == "file" && g["key"] == "/usr"),
            "{v}"
        );
        assert!(
            grants
                .iter()
                .any(|g| g["kind"] == "syscalls" && g["key"] == "@debug"),
            "{v}"
        );
        let total: u64 = grants.iter().map(|g| g["points"].as_u64().unwrap()).sum();
        assert_eq!(v["score"]["total"].as_u64().unwrap(), total);
    }
}

#[test]
fn a_bad_profile_names_its_line() {
    let dir = world_dir();
    let bad = write_profile(
        dir.path(),
        "bad.rhai",
        "let s = sandbox(\"x\");\ns.bind(\"/usr\", #{ rww: true });\n",
    );
    let r = Run::from(moksha(Who::Root, &["explain", &bad]).output().unwrap()).expect_code(1);
    assert!(r.stderr.contains("bad.rhai:2:"), "{r:?}");
    let r = Run::from(
        moksha(Who::Root, &["explain", "shell", "--diff", &bad])
            .output()
            .unwrap(),
    )
    .expect_code(1);
    assert!(r.stderr.contains("bad.rhai:2:"), "{r:?}");
}
