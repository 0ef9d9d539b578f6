use super::*;
use crate::located::Pos;
use crate::plan::{FsOp, NetMode, Plan, Step};
use crate::policy::seccomp::Action;

fn pos(line: usize) -> Pos {
    Pos::in_test(line, 1)
}

fn bind(source: &str, target: &str, rw: bool, line: usize) -> Step<FsOp> {
    Step {
        op: FsOp::plain_bind(source, target, rw),
        at: pos(line),
    }
}

fn base() -> Plan {
    let mut p = Plan::new("t", "p.rhai");
    p.fs = vec![
        bind("/usr", "/usr", false, 1),
        Step {
            op: FsOp::Tmpfs {
                target: "/tmp".into(),
                size: None,
                mode: 0o1777,
                replace: false,
            },
            at: pos(2),
        },
    ];
    p
}

fn ctx() -> Context {
    Context {
        home: Some("/home/u".into()),
    }
}

fn report(p: &Plan) -> Report {
    Report::of(p, &ctx())
}

#[test]
fn the_same_plan_has_no_difference() {
    let d = diff(&report(&base()), &report(&base()));
    assert!(d.is_empty(), "{d:?}");
    assert!(text_diff(&d).contains("the same grants"));
}

#[test]
fn diff_lists_exactly_the_differing_grants() {
    let a = base();
    let mut b = base();
    // B: one more writable bind, the host network, @keyring allowed, and
    // /usr read-write instead of read-only.
    b.fs.push(bind("/home/u/.config/app", "/home/u/.config/app", true, 7));
    b.fs[0] = bind("/usr", "/usr", true, 1);
    b.network.mode = NetMode::Host;
    b.security
        .seccomp
        .set(&["@keyring".into()], Action::Allow, None, &pos(9))
        .unwrap();
    let d = diff(&report(&a), &report(&b));
    let keys = |l: &[Grant]| {
        l.iter()
            .map(|g| format!("{:?} {}", g.kind, g.key))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&d.only_b),
        vec![
            "File /home/u/.config/app",
            "Network tcp bind",
            "Network tcp connect"
        ]
    );
    assert!(d.only_a.is_empty(), "{:?}", d.only_a);
    let changed: Vec<String> = d
        .changed
        .iter()
        .map(|(a, _)| format!("{:?} {}", a.kind, a.key))
        .collect();
    assert_eq!(
        changed,
        vec!["File /usr", "Network mode", "Syscalls @keyring"]
    );
    let (ka, kb) = &d.changed[2];
    assert!(ka.what.starts_with("refused (EPERM)"), "{}", ka.what);
    assert!(kb.what.starts_with("ALLOWED"), "{}", kb.what);
    assert_eq!(kb.at, "p.rhai:9:1");
    assert!(d.score_b > d.score_a);
    // The other way round, the same grants change sides.
    let back = diff(&report(&b), &report(&a));
    assert_eq!(keys(&back.only_a), keys(&d.only_b));
    assert_eq!(back.changed.len(), 3);
}

#[test]
fn a_replaced_bind_counts_once_as_its_last_step() {
    let mut p = base();
    p.fs.push(bind("/srv/a", "/data", false, 3));
    p.fs.push(bind("/srv/b", "/data", true, 4));
    let r = report(&p);
    let data: Vec<&Grant> = r.grants.iter().filter(|g| g.key == "/data").collect();
    assert_eq!(data.len(), 1);
    assert!(data[0].what.contains("/srv/b") && data[0].what.starts_with("read, write"));
    assert_eq!(data[0].at, "p.rhai:4:1");
}

#[test]
fn the_score_weighs_what_reaches_the_host() {
    let strict = report(&base()).score.total;
    assert_eq!(strict, 0, "{:?}", report(&base()).score);
    let mut home = base();
    home.fs.push(bind("/home/u", "/home/u", false, 5));
    let mut home_rw = base();
    home_rw.fs.push(bind("/home/u", "/home/u", true, 5));
    let mut above = base();
    above.fs.push(bind("/home", "/home", false, 5));
    let mut one_dir = base();
    one_dir.fs.push(bind("/home/u/notes", "/notes", true, 5));
    let s = |p: &Plan| report(p).score.total;
    assert_eq!(s(&home), score::HOME_RO);
    assert_eq!(
        s(&above),
        score::HOME_RO,
        "a directory above the home holds it"
    );
    assert_eq!(s(&home_rw), score::HOME_RW);
    assert_eq!(s(&one_dir), score::BIND_RW);
    let mut net = base();
    net.network.mode = NetMode::Host;
    assert_eq!(s(&net), score::NET_HOST);
    let mut shared = base();
    shared.namespaces.mount = false;
    assert!(s(&shared) >= score::SHARED_MOUNT);
    let r = report(&home_rw);
    assert_eq!(
        r.score.items,
        vec![(score::HOME_RW, "file: /home/u".to_string())]
    );
}

#[test]
fn text_from_the_profile_is_escaped_and_json_parses() {
    let mut p = base();
    p.fs.push(bind("/srv/\u{1b}[2Jx", "/x\ny", false, 3));
    let r = report(&p);
    let t = text(&r);
    assert!(!t.contains('\u{1b}') && t.contains("\\x1b[2Jx"), "{t}");
    assert!(t.contains("/x\\x0ay"), "{t}");
    let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
    assert_eq!(v["score"]["total"], 1);
    assert!(v["grants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["key"] == "/x\ny"));
}
