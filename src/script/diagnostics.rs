//! Errors in profiles, rendered like a compiler's: `file:line:col`, the
//! source line, a caret, the message, and the chain of calls through library
//! modules that led there.

use super::{limits, Sources};
use crate::plan::{Pos, ValidationError};
use rhai::EvalAltResult;
use std::fmt::Write;

/// Plain data (no Rhai values), so it can outlive the evaluation's engine.
#[derive(Debug, Clone)]
pub enum ProfileError {
    /// The script failed to compile or run.
    Script(Box<ScriptFailure>),
    /// The plan it produced is not valid.
    Validation {
        error: ValidationError,
        sources: Sources,
    },
    /// Anything without a script position (a profile that cannot be read, ...).
    Plain(String),
}

/// A script that failed: the message, where, and the chain of calls
/// (outermost first) that led there.
#[derive(Debug, Clone)]
pub struct ScriptFailure {
    pub message: String,
    pub at: Option<Pos>,
    pub chain: Vec<(String, Pos)>,
    pub sources: Sources,
}

impl ProfileError {
    /// A script error of the profile `main`, unwound through Rhai's nested
    /// errors into words and positions.
    pub fn script(main: &str, error: &EvalAltResult, sources: Sources) -> ProfileError {
        let (message, at, chain) = unwind(main, error);
        ProfileError::Script(Box::new(ScriptFailure {
            message,
            at,
            chain,
            sources,
        }))
    }

    /// Names the command-line flag an error of the overrides comes from, at
    /// the start of its message.
    pub fn naming_flag(mut self, flags: &super::overrides::Overrides) -> ProfileError {
        // The flag's line is the error's position, or where the call chain
        // into a library started (`--home persistent`).
        let (message, at, chain) = match &mut self {
            ProfileError::Script(f) => (&mut f.message, &f.at, f.chain.as_slice()),
            ProfileError::Validation { error, .. } => (&mut error.message, &error.at, &[][..]),
            ProfileError::Plain(_) => return self,
        };
        let line = at
            .iter()
            .chain(chain.iter().map(|(_, pos)| pos))
            .find(|pos| pos.file == super::overrides::SOURCE)
            .map(|pos| pos.line);
        if let Some(flag) = line.and_then(|l| flags.flag_at(l)) {
            *message = format!("{flag}: {message}");
        }
        self
    }

    /// The message, the primary position and the call chain (outermost first).
    pub fn parts(&self) -> (String, Option<Pos>, Vec<(String, Pos)>) {
        match self {
            ProfileError::Script(f) => (f.message.clone(), f.at.clone(), f.chain.clone()),
            ProfileError::Validation { error, .. } => {
                (error.message.clone(), error.at.clone(), Vec::new())
            }
            ProfileError::Plain(m) => (m.clone(), None, Vec::new()),
        }
    }

    /// The full human rendering.
    pub fn render(&self) -> String {
        let (message, at, chain) = self.parts();
        let empty = Sources::new();
        let sources = match self {
            ProfileError::Script(f) => &f.sources,
            ProfileError::Validation { sources, .. } => sources,
            ProfileError::Plain(_) => &empty,
        };
        let mut out = String::new();
        match &at {
            Some(at) => {
                let _ = writeln!(out, "{at}: error: {message}");
                snippet(&mut out, sources, at);
            }
            None => {
                let _ = writeln!(out, "error: {message}");
            }
        }
        for (what, pos) in chain.iter().rev() {
            let _ = writeln!(out, "  = {what}, called at {pos}");
            snippet(&mut out, sources, pos);
        }
        out
    }
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for ProfileError {}

fn to_pos(file: &str, p: rhai::Position) -> Option<Pos> {
    let line = p.line()?;
    Some(Pos {
        file: file.to_string(),
        line,
        col: super::resolver::original_column(file, line, p.position().unwrap_or(1)),
    })
}

/// Walks Rhai's nested errors from the profile down to where it happened.
fn unwind(main: &str, error: &EvalAltResult) -> (String, Option<Pos>, Vec<(String, Pos)>) {
    let mut chain = Vec::new();
    let mut file = main.to_string();
    let mut err = error;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, p) => {
                if let Some(at) = to_pos(&file, *p) {
                    // Name the library a function comes from when the call
                    // crosses into it.
                    let func = if name.starts_with("anon$") {
                        "a closure".to_string()
                    } else {
                        format!("{name}()")
                    };
                    let what = if src.is_empty() || *src == file {
                        format!("in {func}")
                    } else {
                        format!("in {func} from {src}")
                    };
                    chain.push((what, at));
                }
                if !src.is_empty() {
                    file = src.clone();
                }
                err = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, p) => {
                if let Some(at) = to_pos(&file, *p) {
                    chain.push((format!("in module {name}"), at));
                }
                file = name.clone();
                err = inner;
            }
            other => return (describe(other), to_pos(&file, other.position()), chain),
        }
    }
}

/// A message for one Rhai error, in words a profile author can act on.
fn describe(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorParsing(p, _) => format!("syntax error: {p}"),
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "the profile ran more than {} operations and was stopped (an infinite loop?)",
            limits::OPERATIONS
        ),
        EvalAltResult::ErrorTerminated(token, _)
            if token.clone().into_string().ok().as_deref() == Some(super::OUT_OF_MEMORY) =>
        {
            format!(
                "the profile held more than {} MiB of data and was stopped",
                limits::MEMORY_BYTES >> 20
            )
        }
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "function calls nested deeper than {} levels (runaway recursion?)",
            limits::CALL_LEVELS
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            let (thing, limit) = if what.contains("string") {
                ("string data", format!("{} bytes", limits::STRING_BYTES))
            } else if what.contains("array") {
                ("an array", format!("{} items", limits::ARRAY_LEN))
            } else if what.contains("map") {
                ("a map", format!("{} items", limits::MAP_LEN))
            } else {
                (what.as_str(), "its limit".to_string())
            };
            format!("{thing} grew past the profile limit of {limit} and was stopped")
        }
        EvalAltResult::ErrorTooManyModules(_) => {
            format!("more than {} modules imported", limits::MODULES)
        }
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            let name = sig.split(['(', ' ']).next().unwrap_or(sig);
            let api = super::api_functions();
            let prefix = format!("{name}(");
            let known: Vec<&str> = api
                .iter()
                .map(String::as_str)
                .filter(|s| s.starts_with(&prefix))
                .collect();
            let shown = tidy_signature(sig);
            if known.is_empty() {
                format!(
                    "unknown function {shown}{}",
                    similar_function(name, sig, &api)
                )
            } else {
                format!(
                    "no function {shown} (wrong argument types?); available: {}",
                    known.join("; ")
                )
            }
        }
        EvalAltResult::ErrorVariableNotFound(name, _) => format!("unknown variable {name}"),
        EvalAltResult::ErrorModuleNotFound(m, _) => m.clone(),
        EvalAltResult::ErrorRuntime(d, _) => match d.clone().into_string() {
            Ok(s) => s,
            Err(_) => format!("error thrown: {d}"),
        },
        other => {
            // Rhai's own text; drop its trailing position, we print ours.
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

/// "Did you mean" among the API's functions (`api`: the engine's
/// registrations) that take what the call (`rhai_sig`) passed first: the
/// sandbox's methods for `s.bnd(...)`, the other functions for `home_dri()`.
fn similar_function(name: &str, rhai_sig: &str, api: &[String]) -> String {
    let on_sandbox = rhai_sig
        .split_once(" (")
        .is_some_and(|(_, args)| args.trim_start_matches("&mut ").starts_with("Sandbox"));
    let names = api.iter().filter_map(|sig| {
        let (name, params) = sig.split_once('(')?;
        // `s: Sandbox, ...` with parameter names; `_: &mut Sandbox` without.
        let first = params.split([',', ')']).next()?;
        let first = first.rsplit(": ").next()?.trim_start_matches("&mut ");
        ((first == "Sandbox") == on_sandbox).then_some(name)
    });
    crate::suggest::did_you_mean(name, names)
}

/// A type's name in the profile language's words: `String` for Rhai's and
/// Rust's string types, `int` for `i64`; other names as they are.
pub fn type_word(name: &str) -> &str {
    match name.trim_start_matches("&mut ") {
        "&str | ImmutableString | String" | "ImmutableString" | "&str" | "string" => "String",
        "i64" => "int",
        other => other,
    }
}

/// Rhai's `bnd (Sandbox, &str | ImmutableString | String, i64)` in the
/// profile language's words: `bnd(Sandbox, String, int)`.
fn tidy_signature(sig: &str) -> String {
    let Some((name, args)) = sig.split_once(" (") else {
        return sig.to_string();
    };
    let args: Vec<&str> = args
        .strip_suffix(')')
        .unwrap_or(args)
        .split(", ")
        .filter(|a| !a.is_empty())
        .map(type_word)
        .collect();
    format!("{name}({})", args.join(", "))
}

/// The source line at `pos` with a caret under the column.
fn snippet(out: &mut String, sources: &Sources, pos: &Pos) {
    let Some(line) = sources
        .get(&pos.file)
        .and_then(|text| text.lines().nth(pos.line.saturating_sub(1)))
    else {
        return;
    };
    let num = pos.line.to_string();
    let pad = " ".repeat(num.len());
    // The line as shown (tabs as one space, anything a terminal could act
    // on escaped), and the caret under the same character of it.
    let line = line.replace('\t', " ");
    let before: String = line.chars().take(pos.col.saturating_sub(1)).collect();
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{num} | {}", crate::text::line(&line));
    let _ = writeln!(out, "{pad} | {}^", " ".repeat(crate::text::width(&before)));
}
