//! Rhai side: the engine, the API, host queries, module resolution and
//! error rendering. `evaluate` turns a profile into a validated Plan.

pub mod api;
pub mod diagnostics;
pub mod host;
pub mod overrides;
pub mod resolver;
// The comment stripping build.rs applies to the embedded stdlib.
#[cfg(test)]
mod strip;
#[cfg(test)]
pub(crate) mod tests;

use crate::plan::{self, Plan};
use diagnostics::ProfileError;
use rhai::{Dynamic, Engine, EvalAltResult, Scope};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Script texts by the name used in positions, for rendering errors.
pub type Sources = HashMap<String, String>;

/// Limits, the same in debug and release builds.
pub mod limits {
    pub const OPERATIONS: u64 = 1_000_000;
    pub const CALL_LEVELS: usize = 48;
    pub const EXPR_DEPTH: usize = 64;
    pub const FN_EXPR_DEPTH: usize = 32;
    pub const STRING_BYTES: usize = 1 << 20;
    pub const ARRAY_LEN: usize = 16_384;
    /// ARGS is input, not growth: the array limit grows by its length and
    /// the operation limit by this much per argument, so a profile can pass
    /// on (and look at) as many arguments as the kernel's ARG_MAX allows.
    pub const OPERATIONS_PER_ARG: u64 = 64;
    pub const MAP_LEN: usize = 4_096;
    pub const MODULES: usize = 64;
    pub const VARIABLES: usize = 1_024;
    pub const FUNCTIONS: usize = 1_024;
    /// The stack profiles are evaluated on (`on_own_stack`). Rhai recurses on
    /// the native stack; at the limits above a debug build needs several
    /// MiB, more than a test thread (2 MiB) or a small `ulimit -s` gives, so
    /// evaluation gets its own stack of a known size (reserved, not used).
    pub const STACK_BYTES: usize = 64 << 20;
    /// Heap the evaluation may hold (all its strings, arrays, maps, ...).
    pub const MEMORY_BYTES: usize = 256 << 20;
}

/// Set by commands that print the plan and exit: see `leave_to_exit`.
static LEAVE_TO_EXIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Evaluations from now on leave their engine (its modules and their
/// ASTs) and the profile's AST to the end of the process instead of
/// freeing them: for a command that evaluates once and exits (`moksha
/// plan`), where freeing them was 6% of its instructions (callgrind, plan
/// firefox). Not for anything that evaluates many profiles, or that keeps
/// running after (the launcher holds its memory while the program runs).
pub fn leave_to_exit() {
    LEAVE_TO_EXIT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// What the progress callback throws when the profile holds too much memory.
const OUT_OF_MEMORY: &str = "moksha: memory limit";

/// A profile to evaluate: its display name (a path, or `<profiles>/x.rhai`),
/// its text, and the directory its relative imports are looked up in.
#[derive(Clone, Debug, Default)]
pub struct ProfileSource {
    pub name: String,
    pub text: String,
    pub dir: Option<PathBuf>,
    /// Modules that exist only in memory, by import path, found before any
    /// directory (a Firejail profile imported on the fly).
    pub modules: Vec<(String, String)>,
    /// The library this profile is part of (`moksha exec acme/firefox`):
    /// its imports look in that library first.
    pub library: Option<String>,
    /// The libraries imports may use; `None`: the installed ones.
    pub libraries: Option<crate::library::store::Libraries>,
}

/// How long each phase of evaluation took, for `--timings`.
#[derive(Default, Debug, Clone)]
pub struct Timings {
    pub engine: Duration,
    pub compile: Duration,
    pub eval: Duration,
    pub validate: Duration,
}

/// Builds an engine with every limit set explicitly, strict variables, no
/// `eval`, print/debug to stderr, the moksha API and the module resolver.
pub fn new_engine(cx: &api::Context, resolver: resolver::Resolver) -> Engine {
    use rhai::packages::{
        BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, LogicPackage,
        MoreStringPackage, Package,
    };
    let mut engine = Engine::new_raw();
    // The standard library less what a profile has no use for (bit fields,
    // byte blobs): registering functions is most of the engine's cost.
    engine.register_global_module(CorePackage::new().as_shared_module());
    engine.register_global_module(LogicPackage::new().as_shared_module());
    engine.register_global_module(BasicMathPackage::new().as_shared_module());
    engine.register_global_module(BasicArrayPackage::new().as_shared_module());
    engine.register_global_module(BasicMapPackage::new().as_shared_module());
    engine.register_global_module(MoreStringPackage::new().as_shared_module());
    engine
        .set_max_operations(limits::OPERATIONS)
        .set_max_call_levels(limits::CALL_LEVELS)
        .set_max_expr_depths(limits::EXPR_DEPTH, limits::FN_EXPR_DEPTH)
        .set_max_string_size(limits::STRING_BYTES)
        .set_max_array_size(limits::ARRAY_LEN)
        .set_max_map_size(limits::MAP_LEN)
        .set_max_modules(limits::MODULES)
        .set_max_variables(limits::VARIABLES)
        .set_max_functions(limits::FUNCTIONS)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        // No optimizer: it would drop an unused `import` inside a block, and
        // with it the error for a module that does not exist.
        .set_optimization_level(rhai::OptimizationLevel::None);
    // Checked at every operation: data Rhai's own size checks miss (a map
    // grown by `m[k] = v`) cannot exhaust memory.
    let base = crate::heap::in_use();
    engine.on_progress(move |_| {
        let used = crate::heap::in_use().saturating_sub(base);
        (used > limits::MEMORY_BYTES as isize).then(|| Dynamic::from(OUT_OF_MEMORY))
    });
    refuse_eval(&mut engine);
    // A profile's own output is shared text too: shown, not interpreted.
    engine.on_print(|text| eprintln!("{}", crate::text::lines(text)));
    engine.on_debug(|text, source, pos| {
        let text = crate::text::lines(text);
        match (source, pos.line()) {
            (Some(src), Some(line)) => eprintln!("[{}:{line}] {text}", crate::text::line(src)),
            _ => eprintln!("{text}"),
        }
    });
    engine.set_module_resolver(resolver);
    api::register(&mut engine, cx);
    engine
}

/// Makes `eval` a syntax error where it is written, with the message
/// `disable_symbol("eval")` gives. Not that call: with a symbol disabled,
/// Rhai's tokenizer looks every operator and keyword token up in the
/// disabled set (161 K instructions of `plan chromium`'s 8.5 M), where
/// this mapper is one match per token (67 K). The tokenizer hands `eval`
/// over as a reserved keyword wherever it is written; after a `.` or a
/// `fn` the parser refuses it as no name, and `Fn("eval")` and
/// `call("eval", ..)` Rhai refuses itself, as with `disable_symbol`
/// (`errors::eval_is_disabled`).
fn refuse_eval(engine: &mut Engine) {
    use rhai::{LexError, Token};
    // on_parse_token is marked deprecated only as "volatile" (Rhai's words).
    #[allow(deprecated)]
    engine.on_parse_token(|token, _, _| match token {
        Token::Reserved(s) if s.as_str() == "eval" => Token::LexError(Box::new(
            LexError::ImproperSymbol(s.to_string(), "reserved keyword 'eval' is disabled".into()),
        )),
        token => token,
    });
}

/// A context for evaluating `profile` with no imports resolved yet; used by
/// `evaluate` and by tools that only want the API (e.g. `moksha api`).
pub fn engine_for(
    profile: &ProfileSource,
    sources: Rc<RefCell<Sources>>,
) -> (Engine, api::Context) {
    let cx = api::Context {
        profile: profile.name.clone(),
        sandboxes: Default::default(),
    };
    let resolver = resolver::Resolver::new(profile, sources);
    (new_engine(&cx, resolver), cx)
}

/// Evaluates a profile with `args` as `ARGS` and validates the plan.
///
/// The evaluation runs on a stack of its own of `limits::STACK_BYTES`
/// (`on_own_stack`), so that the same profile gives the same result
/// whatever thread calls this and however it was built. It runs on the
/// calling thread: nothing is left running when this returns (the caller
/// forks next).
pub fn evaluate(profile: &ProfileSource, args: &[String]) -> Result<(Plan, Timings), ProfileError> {
    evaluate_with(
        profile,
        args,
        &overrides::Overrides::default(),
        plan::validate::FilterFor::Plan,
    )
}

/// `evaluate`, then the command line's overrides against the sandbox the
/// profile created, before validation; the validation compiles the
/// seccomp filter `filter` names.
pub fn evaluate_with(
    profile: &ProfileSource,
    args: &[String],
    flags: &overrides::Overrides,
    filter: plan::validate::FilterFor,
) -> Result<(Plan, Timings), ProfileError> {
    on_own_stack(|| evaluate_here(profile, args, flags, filter).map_err(|e| e.naming_flag(flags)))
        .map_err(ProfileError::Plain)?
}

/// Runs the evaluation `f` on a fresh stack of `limits::STACK_BYTES`
/// (mapped, and unmapped after; a panic passes through), on the calling
/// thread, with a glob budget of its own (`host::with_own_glob_budget`,
/// which a thread of its own gave before). Rhai recurses on the native
/// stack, and at the limits a debug build needs more than a test thread or
/// a small `ulimit -s` gives. A thread with that stack did the same, but
/// starting it on the other core and joining it made `moksha plan` 0.5 ms
/// slower (4.1–4.4 against 3.65 ms, perf stat) and `moksha exec` 0.17–0.35
/// ms (bench/compare.py). Fails, with what to do, when no such stack can
/// be mapped.
pub fn on_own_stack<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    crate::sys::on_new_stack(limits::STACK_BYTES, || host::with_own_glob_budget(f)).map_err(|e| {
        format!(
            "cannot map the {} MiB stack profiles are evaluated on: {e} (is `ulimit -v` \
             set lower than that?)",
            limits::STACK_BYTES >> 20
        )
    })
}

/// `evaluate` on the calling thread.
fn evaluate_here(
    profile: &ProfileSource,
    args: &[String],
    flags: &overrides::Overrides,
    filter: plan::validate::FilterFor,
) -> Result<(Plan, Timings), ProfileError> {
    let mut timings = Timings::default();
    let sources = Rc::new(RefCell::new(Sources::new()));
    sources
        .borrow_mut()
        .insert(profile.name.clone(), profile.text.clone());
    let script_err = |e: EvalAltResult, sources: &Rc<RefCell<Sources>>| {
        ProfileError::script(&profile.name, &e, sources.borrow().clone())
    };

    let t = Instant::now();
    let (mut engine, cx) = engine_for(profile, sources.clone());
    engine
        .set_max_array_size(limits::ARRAY_LEN.saturating_add(args.len()))
        .set_max_operations(
            limits::OPERATIONS.saturating_add(limits::OPERATIONS_PER_ARG * args.len() as u64),
        );
    timings.engine = t.elapsed();

    let t = Instant::now();
    let mut scope = Scope::new();
    let args: rhai::Array = args.iter().cloned().map(Dynamic::from).collect();
    scope.push_constant("ARGS", args);
    let mut ast = engine
        .compile_with_scope(&scope, resolver::compiled(&profile.name, &profile.text))
        .map_err(|e| script_err(EvalAltResult::ErrorParsing(*e.0, e.1), &sources))?;
    ast.set_source(profile.name.as_str());
    timings.compile = t.elapsed();

    let t = Instant::now();
    engine
        .run_ast_with_scope(&mut scope, &ast)
        .map_err(|e| script_err(*e, &sources))?;
    let only = match cx.sandboxes.borrow().as_slice() {
        [(s, _)] => Some(s.clone()),
        _ => None,
    };
    if let Some(s) = only {
        flags
            .apply(&engine, &s, &sources)
            .map_err(|e| ProfileError::script(overrides::SOURCE, &e, sources.borrow().clone()))?;
    }
    timings.eval = t.elapsed();

    let t = Instant::now();
    let created = cx.sandboxes.borrow();
    let (plan, created_at) = match created.as_slice() {
        [] => {
            return Err(ProfileError::Plain(format!(
                "{}: the profile never calls sandbox(\"name\"), so there is nothing to run",
                profile.name
            )))
        }
        [(only, created_at)] => (only.0.borrow().clone(), created_at.clone()),
        [_, (_, second), ..] => {
            return Err(ProfileError::Validation {
                error: plan::ValidationError {
                    message: "a profile describes exactly one sandbox, but this is the second \
                              call to sandbox()"
                        .into(),
                    at: Some(second.clone()),
                },
                sources: sources.borrow().clone(),
            })
        }
    };
    plan::validate::validate_for(&plan, filter).map_err(|mut error| {
        // A problem of the whole plan (no command, ids without a user
        // namespace) points at the sandbox it concerns.
        error.at.get_or_insert(created_at);
        ProfileError::Validation {
            error,
            sources: sources.borrow().clone(),
        }
    })?;
    timings.validate = t.elapsed();
    drop(created);
    if LEAVE_TO_EXIT.load(std::sync::atomic::Ordering::Relaxed) {
        std::mem::forget((engine, ast, scope));
    }
    Ok((plan, timings))
}

/// Every API function's signature with parameter names, sorted, as the
/// engine registered them (`bind(s: Sandbox, source: String)`): what "did
/// you mean" and "wrong argument types" hints offer.
pub fn api_functions() -> Vec<String> {
    let mut sigs: Vec<String> = registered_api().iter().map(api::ApiFn::signature).collect();
    sigs.sort();
    sigs
}

/// The API reference as Rhai definitions (what editors load), from the
/// registrations themselves.
pub fn api_definitions() -> String {
    let mut fns = registered_api();
    fns.sort_by(api::ApiFn::order);
    let defs: Vec<String> = fns.iter().map(api::ApiFn::definition).collect();
    format!("module static;\n\n{}\n\n\n", defs.join("\n\n"))
}

/// The API functions an engine registers.
fn registered_api() -> Vec<api::ApiFn> {
    let profile = ProfileSource {
        name: "<api>".into(),
        text: String::new(),
        ..Default::default()
    };
    api::documented(|| drop(engine_for(&profile, Default::default()))).1
}
