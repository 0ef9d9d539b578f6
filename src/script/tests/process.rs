//! Process, namespace and supervision primitives.

use super::*;

#[test]
fn hostname() {
    let plan = plan_of("s.hostname(\"box\");");
    assert_eq!(
        plan.process.hostname,
        Some(Located {
            value: "box".into(),
            at: at(2, 3)
        })
    );
}

#[test]
fn environment() {
    let plan = plan_of(
        "s.env(\"A\", \"1\"); s.unsetenv(\"B\"); s.keep_env(\"C\"); s.keep_env([\"D\", \"E\"]);",
    );
    assert!(plan.process.env.clear);
    assert_eq!(
        plan.process.env.ops,
        [
            EnvOp::Set {
                name: "A".into(),
                value: "1".into()
            },
            EnvOp::Unset { name: "B".into() },
            EnvOp::Keep { name: "C".into() },
            EnvOp::Keep { name: "D".into() },
            EnvOp::Keep { name: "E".into() },
        ]
    );
    assert!(!plan_of("s.inherit_env();").process.env.clear);
    fails_at(
        "s.env(\"A=B\", \"1\");",
        3,
        "\"A=B\" is not a valid environment variable name",
    );
    fails_at(
        "s.keep_env([\"A\", 1]);",
        3,
        "every element must be a string",
    );
}

#[test]
fn env_value_with_nul_fails_at_its_call() {
    fails_at("s.env(\"A\", \"x\\x00\");", 3, "NUL");
}

#[test]
fn cwd() {
    let plan = plan_of("s.cwd(\"/home/u\");");
    assert_eq!(
        plan.process.cwd,
        Some(Located {
            value: "/home/u".into(),
            at: at(2, 3)
        })
    );
    fails_at(
        "s.cwd(\"home\");",
        3,
        "working directory \"home\" is relative",
    );
}

#[test]
fn exec_with_args() {
    let text = "let s = sandbox(\"t\");\n\ns.exec([\"curl\", \"-s\"] + ARGS);\n";
    let plan = eval_args(text, &["https://example.org", "x y"]).unwrap();
    assert_eq!(
        plan.process.exec,
        Some(Step {
            op: Exec {
                argv: vec![
                    "curl".into(),
                    "-s".into(),
                    "https://example.org".into(),
                    "x y".into()
                ]
            },
            at: at(3, 3)
        })
    );
}

#[test]
fn exec_errors() {
    fails_at("s.exec([]);", 3, "exec needs at least the program name");
    fails_at("s.exec([\"a\", 2]);", 3, "every element must be a string");
    // The second exec (line 3 of wrap: the one wrap adds) is refused and
    // names the first.
    let (message, pos, _) = failure("s.exec([\"/bin/sh\"]);");
    assert_eq!(pos, Some(at(3, 3)));
    assert!(
        message.contains("exec was already called at p.rhai:2:3"),
        "{message}"
    );
}

#[test]
fn args_is_a_constant() {
    let (message, pos, _) = failure("ARGS = [];");
    assert!(message.contains("ARGS"), "{message}");
    assert_eq!(pos.map(|p| p.line), Some(2));
}

#[test]
fn unshare_and_share() {
    let plan = plan_of("s.share([\"net\", \"ipc\"]);\ns.unshare([\"time\"]);");
    let ns = &plan.namespaces;
    assert!(!ns.net && !ns.ipc && ns.time);
    assert!(ns.user && ns.mount && ns.pid && ns.uts && ns.cgroup);
    let plan = plan_of("s.share([\"cgroup\"]); s.unshare([\"cgroup\"]);");
    assert!(plan.namespaces.cgroup);
    fails_at(
        "s.unshare([\"netw\"]);",
        3,
        "unknown namespace \"netw\"; expected one of user, mount",
    );
    fails_at("s.share([1]);", 3, "share: every element must be a string");
}

#[test]
fn uid_and_gid() {
    let plan = plan_of("s.uid(0);\ns.gid(100);");
    assert_eq!(plan.ids.uid, Some(0));
    assert_eq!(plan.ids.gid, Some(100));
    fails_at("s.uid(-1);", 3, "uid out of range");
    fails_at("s.gid(4294967296);", 3, "gid out of range");
}

#[test]
fn name_and_supervision() {
    let plan = plan_of("s.name(\"web-1\");\ns.die_with_parent(false);\ns.new_session(false);");
    assert_eq!(plan.name, "web-1");
    assert_eq!(plan.profile, FILE);
    assert!(!plan.supervision.die_with_parent);
    assert!(!plan.supervision.new_session);
    let plan = plan_of("");
    assert_eq!(plan.name, "t");
    assert!(plan.supervision.die_with_parent && plan.supervision.new_session);
    fails_at("s.name(\"a/b\");", 3, "must be 1 to 64 characters");
}

#[test]
fn keep_caps() {
    let plan = plan_of("s.keep_caps([\"net_bind_service\", \"CAP_CHOWN\"]);");
    let caps: Vec<(&str, &Pos)> = plan
        .security
        .keep_caps
        .iter()
        .map(|c| (c.value.as_str(), &c.at))
        .collect();
    assert_eq!(
        caps,
        [
            ("CAP_NET_BIND_SERVICE", &at(2, 3)),
            ("CAP_CHOWN", &at(2, 3))
        ]
    );
    fails_at(
        "s.keep_caps([\"CAP_FLY\"]);",
        3,
        "unknown capability \"CAP_FLY\"",
    );
}
