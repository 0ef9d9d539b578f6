//! Profile snippets to plans, without privileges, by API area: every
//! primitive produces its step at the right position (`fs`, `process`),
//! bad input fails at its line (`errors`), modules and the stdlib resolve
//! and compile (`modules`), the engine limits are the explicit constants
//! and no input makes evaluation panic (`engine`). The helpers are here.

mod engine;
mod errors;
mod fs;
mod modules;
mod process;

use super::*;
use crate::plan::{EnvOp, Exec, FsOp, Located, Pos, Step};
use diagnostics::ProfileError;

/// The profile name used in positions.
const FILE: &str = "p.rhai";

fn source(text: &str) -> ProfileSource {
    ProfileSource {
        name: FILE.into(),
        text: text.into(),
        dir: None,
        modules: Vec::new(),
        ..Default::default()
    }
}

fn eval_args(text: &str, args: &[&str]) -> Result<Plan, ProfileError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    evaluate(&source(text), &args).map(|(plan, _)| plan)
}

/// `body` between a `sandbox("t")` on line 1 and an exec on the last line.
fn wrap(body: &str) -> String {
    format!("let s = sandbox(\"t\");\n{body}\ns.exec([\"/bin/true\"]);\n")
}

/// Evaluates `wrap(body)`; the rendered error on failure (for the API
/// areas' own tests, beside their registration).
pub(crate) fn wrapped(body: &str) -> Result<Plan, String> {
    eval_args(&wrap(body), &[]).map_err(|e| e.render())
}

/// Evaluates `wrap(body)`; panics with the rendered error on failure.
#[track_caller]
fn plan_of(body: &str) -> Plan {
    match eval_args(&wrap(body), &[]) {
        Ok(plan) => plan,
        Err(e) => panic!("profile failed:\n{}", e.render()),
    }
}

fn at(line: usize, col: usize) -> Pos {
    Pos {
        file: FILE.into(),
        line,
        col,
    }
}

/// The one filesystem step of `s.<call>` written on line 2, checking that its
/// position is the method name (column 3).
#[track_caller]
fn step(call: &str) -> FsOp {
    let plan = plan_of(&format!("s.{call};"));
    assert_eq!(plan.fs.len(), 1, "{:?}", plan.fs);
    let Step { op, at: pos } = plan.fs.into_iter().next().unwrap();
    assert_eq!(pos, at(2, 3), "position of {call}");
    op
}

/// Evaluates `wrap(body)`, expecting an error; returns (message, position, chain).
#[track_caller]
fn failure(body: &str) -> (String, Option<Pos>, Vec<(String, Pos)>) {
    match eval_args(&wrap(body), &[]) {
        Ok(plan) => panic!("profile should fail, gave {plan:?}"),
        Err(e) => {
            let rendered = e.render();
            let parts = e.parts();
            if let Some(pos) = &parts.1 {
                assert!(
                    rendered.starts_with(&format!("{pos}: error: ")),
                    "{rendered}"
                );
            }
            parts
        }
    }
}

/// Expects `body` to fail at line 2, column `col`, with `needle` in the message.
#[track_caller]
fn fails_at(body: &str, col: usize, needle: &str) {
    let (message, pos, _) = failure(body);
    assert_eq!(pos, Some(at(2, col)), "position for {message:?}");
    assert!(
        message.contains(needle),
        "message {message:?} should contain {needle:?}"
    );
}

/// A bind step as the API makes it.
fn bind(source: &str, target: &str, rw: bool, dev: bool, optional: bool, replace: bool) -> FsOp {
    FsOp::Bind {
        source: source.into(),
        target: target.into(),
        rw,
        dev,
        optional,
        replace,
        create: false,
        exec: false,
    }
}
