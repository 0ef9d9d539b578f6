//! Read-only questions the Firejail stdlib asks beyond the basic host
//! queries: the interpreter a program's `#!` line names (private-bin),
//! whether a path matches one of a list of globs (noblacklist and
//! nowhitelist against the paths of later rules), and whether moksha's
//! seccomp tables know a name, and whether a path is a glob (Firejail's lists name calls of other
//! architectures and groups of its own). None changes anything.

use super::{err, Res};
use crate::script::host;
use rhai::{Array, Dynamic, Engine, FuncRegistration};

/// More patterns than a profile could write is a mistake, not a question.
const MAX_PATTERNS: usize = 100_000;

pub fn register(engine: &mut Engine) {
    api!(
        engine,
        "shebang",
        "path: String -> ?",
        "The interpreter the `#!` line of the host program `path` names, as [interpreter] or
        [interpreter, argument], or `()` when it has none (an ELF program, a missing file).",
        |p: &str| host::shebang(p)
            .map(|v| Dynamic::from(v.into_iter().map(Dynamic::from).collect::<Array>()))
            .unwrap_or(Dynamic::UNIT)
    );
    api!(
        engine,
        "glob_match_any",
        "patterns: Array, path: String -> bool",
        "Whether `path` matches one of the shell globs `patterns` as fnmatch(3) with
        FNM_PATHNAME does (`*` and `?` never match a `/`); a pattern without wildcards
        matches itself only.",
        |patterns: Array, path: &str| -> Res<bool> {
            if patterns.len() > MAX_PATTERNS {
                return err("glob_match_any: too many patterns");
            }
            let opts = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            };
            for p in patterns {
                let Some(p) = p
                    .read_lock::<rhai::ImmutableString>()
                    .map(|s| s.to_string())
                else {
                    return err("glob_match_any: patterns must be strings");
                };
                if p == path {
                    return Ok(true);
                }
                if let Ok(pattern) = glob::Pattern::new(&p) {
                    if pattern.matches_with(path, opts) {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        }
    );
    api!(
        engine,
        "is_glob",
        "pattern: String -> bool",
        "Whether `pattern` is a shell glob that glob() accepts: it has a wildcard (`*`, `?`,
        `[...]`) and is well formed. A path with an unbalanced `[` is a plain path.",
        |p: &str| p.contains(['*', '?', '['])
            && !p.contains("**")
            && p.split('/').all(|level| glob::Pattern::new(level).is_ok())
    );
    api!(
        engine,
        "seccomp_known",
        "name: String -> bool",
        "Whether `name` is a system call or @group moksha's seccomp policy knows (what
        seccomp_allow and seccomp_deny accept).",
        |name: &str| crate::policy::seccomp::expand(name).is_ok()
    );
}
