//! The functions a `*.test.rhai` file has beside the profile API: plan_of
//! to evaluate a profile into its plan (a map), and the assertions. Each
//! assertion counts, and a failed one is recorded with its file:line:col
//! and the file goes on, so one run shows every failure.

use crate::library::store::Libraries;
use crate::plan::validate::{normalize, within};
use crate::plan::{FsOp, Plan};
use crate::script;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// What a test file's run found.
#[derive(Default, Debug)]
pub struct Outcome {
    pub assertions: usize,
    pub failures: Vec<String>,
}

pub struct State {
    /// The test file's directory: relative profile paths start there.
    pub dir: PathBuf,
    pub libraries: Libraries,
    pub outcome: Outcome,
}

fn at(ctx: &NativeCallContext) -> String {
    let p = ctx.call_position();
    format!(
        "{}:{}:{}",
        crate::text::line(ctx.call_source().unwrap_or("<test>")),
        p.line().unwrap_or(0),
        p.position().unwrap_or(0)
    )
}

fn record(state: &Rc<RefCell<State>>, ctx: &NativeCallContext, failure: Option<String>) {
    let mut s = state.borrow_mut();
    s.outcome.assertions += 1;
    if let Some(message) = failure {
        s.outcome.failures.push(format!(
            "{}: assertion failed: {}",
            at(ctx),
            crate::text::line(&message)
        ));
    }
}

/// The plan a map from `plan_of` stands for.
fn plan(map: &Map) -> Res<Plan> {
    rhai::serde::from_dynamic(&Dynamic::from_map(map.clone())).map_err(|e| {
        format!("the argument is not a plan from plan_of (or was changed into something else): {e}")
            .into()
    })
}

/// A profile argument of a test: a path (ending in .rhai, or starting with
/// ./ or ../) is taken from the test file's directory.
fn profile_arg(dir: &std::path::Path, arg: &str) -> String {
    let path_like = arg.ends_with(".rhai") || arg.starts_with("./") || arg.starts_with("../");
    if path_like && !arg.starts_with('/') {
        dir.join(arg).to_string_lossy().into_owned()
    } else {
        arg.to_string()
    }
}

fn plan_of(state: &Rc<RefCell<State>>, profile: &str, args: &[String]) -> Res<Map> {
    let (dir, libraries) = {
        let s = state.borrow();
        (s.dir.clone(), s.libraries.clone())
    };
    let arg = profile_arg(&dir, profile);
    let found = crate::profiles::find_in(&arg, &libraries)
        .map_err(|e| format!("plan_of({profile:?}): {e}"))?;
    let (plan, _) = script::evaluate(&found.source, args).map_err(|e| {
        format!(
            "plan_of({profile:?}): the profile does not evaluate:\n{}",
            e.render().trim_end()
        )
    })?;
    let value = rhai::serde::to_dynamic(&plan).map_err(|e| format!("plan_of: {e}"))?;
    value
        .try_cast::<Map>()
        .ok_or_else(|| "plan_of: the plan is not a map".into())
}

/// Why `plan` exposes the host path `path`, if it does: a bind of it, of a
/// directory inside it, or of a directory above it (or a root that holds it).
fn exposes(plan: &Plan, path: &str) -> Option<String> {
    let path = normalize(path);
    if let Some(root) = &plan.root {
        if within(&path, &normalize(&root.value)) {
            return Some(format!(
                "the root is the host directory {} [{}], which holds {path}",
                root.value, root.at
            ));
        }
    }
    plan.fs.iter().find_map(|step| match &step.op {
        FsOp::Bind {
            source, target, rw, ..
        } => {
            let src = normalize(source);
            (within(&src, &path) || within(&path, &src)).then(|| {
                format!(
                    "{} is bound {} at {} [{}], which exposes {path}",
                    source,
                    if *rw { "read-write" } else { "read-only" },
                    target,
                    step.at
                )
            })
        }
        _ => None,
    })
}

const NETWORKS: &[&str] = &["none", "host", "user", "join"];

/// Registers plan_of and the assertions on a test file's engine.
pub fn register(engine: &mut Engine, state: &Rc<RefCell<State>>) {
    // plan_of(profile) -> Map: the plan of a profile (a name, LIB/NAME, or
    // a path from the test file's directory) evaluated with no ARGS; an
    // error (at this call) when it does not evaluate or validate.
    let s = state.clone();
    engine.register_fn("plan_of", move |profile: &str| plan_of(&s, profile, &[]));
    // plan_of(profile, args) -> Map: the same with ARGS.
    let s = state.clone();
    engine.register_fn("plan_of", move |profile: &str, args: Array| -> Res<Map> {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| {
                a.into_string()
                    .map_err(|t| format!("plan_of: ARGS are strings, found a {t}"))
            })
            .collect::<Result<_, _>>()?;
        plan_of(&s, profile, &args)
    });
    // assert(condition, message): fails with `message` when false.
    let s = state.clone();
    engine.register_fn(
        "assert",
        move |ctx: NativeCallContext, cond: bool, message: &str| {
            record(&s, &ctx, (!cond).then(|| message.to_string()));
        },
    );
    // assert(condition): fails when false.
    let s = state.clone();
    engine.register_fn("assert", move |ctx: NativeCallContext, cond: bool| {
        record(
            &s,
            &ctx,
            (!cond).then(|| "the condition is false".to_string()),
        );
    });
    // assert_no_bind(plan, host_path): fails when the sandbox can see
    // host_path: a bind of it, of something inside it, or of a directory
    // above it.
    let s = state.clone();
    engine.register_fn(
        "assert_no_bind",
        move |ctx: NativeCallContext, plan_map: Map, path: &str| -> Res<()> {
            if !path.starts_with('/') {
                return Err(
                    format!("assert_no_bind: {path:?} is not an absolute host path").into(),
                );
            }
            let p = plan(&plan_map)?;
            record(&s, &ctx, exposes(&p, path));
            Ok(())
        },
    );
    // assert_network(plan, mode): fails unless the network is `mode`
    // ("none", "host", "user" or "join").
    let s = state.clone();
    engine.register_fn(
        "assert_network",
        move |ctx: NativeCallContext, plan_map: Map, mode: &str| -> Res<()> {
            if !NETWORKS.contains(&mode) {
                return Err(format!(
                    "assert_network: {mode:?} is not a network mode; one of {}",
                    NETWORKS.join(", ")
                )
                .into());
            }
            let p = plan(&plan_map)?;
            let has = p.network.mode_name();
            record(
                &s,
                &ctx,
                (has != mode).then(|| {
                    let set = p
                        .network
                        .set_at
                        .as_ref()
                        .map_or_else(String::new, |at| format!(" (set at {at})"));
                    format!("the network is {has}{set}, not {mode}")
                }),
            );
            Ok(())
        },
    );
    // assert_denied(plan, syscall): fails when the plan's seccomp policy
    // lets `syscall` run.
    let s = state.clone();
    engine.register_fn(
        "assert_denied",
        move |ctx: NativeCallContext, plan_map: Map, syscall: &str| -> Res<()> {
            if !crate::policy::seccomp::is_syscall(syscall) {
                return Err(format!("assert_denied: {syscall:?} is not a system call").into());
            }
            let p = plan(&plan_map)?;
            let action = p.security.seccomp.treatment(syscall).action;
            record(
                &s,
                &ctx,
                action.runs().then(|| {
                    format!(
                        "{syscall} is not refused: the seccomp policy's action is {}",
                        action.describe()
                    )
                }),
            );
            Ok(())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_survives_the_map() {
        let profile = script::ProfileSource {
            name: "t.rhai".into(),
            text: "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
                   s.tmpfs(\"/scratch\", #{ size: \"64M\" });\n\
                   s.bind(\"/etc\", \"/x\", #{ rw: true });\ns.exec([\"/bin/true\"]);\n"
                .into(),
            libraries: Some(Libraries::default()),
            ..Default::default()
        };
        let (plan, _) = script::evaluate(&profile, &[]).unwrap();
        let map = rhai::serde::to_dynamic(&plan).unwrap().cast::<Map>();
        assert_eq!(super::plan(&map).unwrap(), plan);
        assert!(exposes(&plan, "/etc/passwd")
            .unwrap()
            .contains("/etc is bound read-write at /x"));
        assert!(exposes(&plan, "/").is_some());
        assert_eq!(exposes(&plan, "/home/someone"), None);
    }
}
