//! Helpers: host processes (and host files) that moksha prepares beside a
//! sandbox, and the warnings a profile leaves for its user.
//!
//! A helper runs on the host, outside the sandbox, with the launcher's
//! rights: `xdg-dbus-proxy` filtering the session bus, a network helper, a
//! one-shot command. Each gets a private directory on the host (mode 0700,
//! in moksha's state directory, removed when the sandbox ends); files it
//! creates there (a socket) are bound into the sandbox at the targets the
//! profile names. moksha starts the helpers before the sandbox, waits until
//! each is ready, and stops them (SIGTERM, then SIGKILL) and reaps them when
//! the sandbox ends, a detached one too. Pure data here; `launch::helper`
//! does the work.

use super::validate::check_path;
use super::{Located, Plan, Pos, Step};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Placeholder in a helper's argv for its private directory on the host.
pub const DIR: &str = "{dir}";
/// Placeholder in a helper's argv for the descriptor it signals readiness on.
pub const READY_FD: &str = "{ready_fd}";

/// One helper.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Helper {
    /// A short name, for messages and `moksha plan`.
    pub name: String,
    pub kind: HelperKind,
    /// Files of the helper's directory bound into the sandbox.
    pub expose: Vec<Expose>,
    /// When the helper cannot start, warn and run the sandbox without it
    /// (and without its exposed files) instead of failing.
    pub optional: bool,
}

/// A file of the helper's private directory and where the sandbox sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expose {
    /// A plain file name in the helper's directory.
    pub file: String,
    /// The path inside the sandbox.
    pub target: String,
    /// Bound read-write (a socket needs no write permission on the mount).
    pub rw: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HelperKind {
    /// A host program. `{dir}` and `{ready_fd}` in argv are replaced by the
    /// helper's directory and the readiness descriptor.
    Program {
        argv: Vec<String>,
        ready: Ready,
        /// How long to wait for readiness, in milliseconds.
        timeout_ms: u64,
    },
    /// moksha writes `file` itself: the entries of the host's X authority
    /// file ($XAUTHORITY, else ~/.Xauthority) for `display` only, rewritten
    /// as wildcard entries so they match under any hostname and display
    /// number.
    Xauthority { display: String, file: String },
}

/// When a program helper counts as ready.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "when", rename_all = "snake_case", deny_unknown_fields)]
pub enum Ready {
    /// As soon as it is started.
    Started,
    /// When it writes a byte to the descriptor `{ready_fd}` (3). moksha
    /// keeps the other end of that pipe open while the helper runs (one that
    /// exits when it closes, as xdg-dbus-proxy --fd, would quit at once).
    Fd,
    /// When `file` exists in its directory.
    File { file: String },
    /// When it has exited with status 0 (a one-shot preparation).
    Exit,
}

/// Whether a name is a plain file name (no '/', not empty, not . or ..).
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// Pure checks of the helpers; messages point at the call.
pub fn validate(plan: &Plan) -> Result<(), (String, Pos)> {
    let mut names: Vec<&str> = Vec::new();
    for step in &plan.helpers {
        let h = &step.op;
        let fail = |m: String| Err((m, step.at.clone()));
        if !plain_name(&h.name) || h.name.len() > 64 {
            return fail(format!(
                "helper name {:?} must be a short plain name (no '/')",
                h.name
            ));
        }
        if names.contains(&h.name.as_str()) {
            return fail(format!(
                "a helper named {:?} was already added; give each helper its own name",
                h.name
            ));
        }
        names.push(&h.name);
        match &h.kind {
            HelperKind::Program { argv, ready, .. } => {
                if argv.is_empty() || argv[0].is_empty() {
                    return fail(format!("helper {}: the command is empty", h.name));
                }
                if argv.iter().any(|a| a.contains('\0')) {
                    return fail(format!(
                        "helper {}: an argument contains a NUL byte",
                        h.name
                    ));
                }
                let fd_used = argv.iter().any(|a| a.contains(READY_FD));
                if *ready == Ready::Fd && !fd_used {
                    return fail(format!(
                        "helper {}: ready \"fd\" needs {READY_FD} in the command, where the \
                         helper is told which descriptor to signal on",
                        h.name
                    ));
                }
                if *ready != Ready::Fd && fd_used {
                    return fail(format!(
                        "helper {}: {READY_FD} is only given to helpers with ready: \"fd\"",
                        h.name
                    ));
                }
                if let Ready::File { file } = ready {
                    if !plain_name(file) {
                        return fail(format!(
                            "helper {}: ready file {file:?} must be a plain file name in its directory",
                            h.name
                        ));
                    }
                }
            }
            HelperKind::Xauthority { display, file } => {
                if display_number(display).is_none() {
                    return fail(format!(
                        "xauthority: {display:?} is not a local X display (like \":0\")"
                    ));
                }
                if !plain_name(file) {
                    return fail(format!("xauthority: bad file name {file:?}"));
                }
            }
        }
        for e in &h.expose {
            if !plain_name(&e.file) {
                return fail(format!(
                    "helper {}: exposed file {:?} must be a plain file name in its directory",
                    h.name, e.file
                ));
            }
            check_path(&e.target, "helper target").or_else(fail)?;
            if !plan.namespaces.mount {
                return fail(format!(
                    "helper {}: exposing files needs a mount namespace",
                    h.name
                ));
            }
        }
    }
    for note in &plan.warnings {
        if note.value.is_empty() {
            return Err(("a warning needs some text".into(), note.at.clone()));
        }
    }
    Ok(())
}

/// The display number of a local X display name (":0", ":1.0", "unix:2").
pub fn display_number(display: &str) -> Option<u32> {
    let rest = display
        .strip_prefix(':')
        .or_else(|| display.strip_prefix("unix:"))?;
    let number = rest.split('.').next()?;
    number.parse().ok()
}

/// Every warning for this plan: the profile's own, then what moksha sees
/// in the plan itself.
pub fn warnings(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = plan
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.at, w.value))
        .collect();
    let x11 = plan.fs.iter().any(|s| match &s.op {
        super::FsOp::Bind { target, .. } => target.starts_with("/tmp/.X11-unix"),
        _ => false,
    });
    if x11 && !plan.namespaces.net {
        out.push(
            "X11 with the host network: the X servers' abstract sockets \
             (@/tmp/.X11-unix/X*) are reachable from the sandbox too unless landlock's \
             abstract-socket scope (Linux 6.12+, on by default) refuses them, so the \
             Xauthority cookie may be the only protection; a sandbox with its own network \
             reaches only the socket file it is given"
                .into(),
        );
    }
    out
}

/// The `helpers` and `warnings` sections of `moksha plan`.
pub fn describe(plan: &Plan, o: &mut String) {
    if !plan.helpers.is_empty() {
        let _ = writeln!(
            o,
            "\nhelpers (on the host, beside the sandbox; stopped when it ends)"
        );
        for step in &plan.helpers {
            let h = &step.op;
            let what = match &h.kind {
                HelperKind::Program {
                    argv,
                    ready,
                    timeout_ms,
                } => {
                    let ready = match ready {
                        Ready::Started => "once started".to_string(),
                        Ready::Fd => "when it signals on {ready_fd}".to_string(),
                        Ready::File { file } => format!("when {{dir}}/{file} exists"),
                        Ready::Exit => "when it has exited successfully".to_string(),
                    };
                    format!("runs {argv:?}\n               ready {ready} (at most {timeout_ms} ms)")
                }
                HelperKind::Xauthority { display, file } => format!(
                    "writes {{dir}}/{file}: the host's X authority for display {display} only"
                ),
            };
            let _ = writeln!(
                o,
                "  {:<12} {what}{}    [{}]",
                h.name,
                if h.optional { " (optional)" } else { "" },
                step.at
            );
            if matches!(h.kind, HelperKind::Program { .. }) {
                // launch::helper::Confine::Program.
                let _ = writeln!(
                    o,
                    "               under no capabilities, no_new_privs, moksha's default seccomp \
                     filter, landlock where the kernel has it (host read-only, {{dir}} and \
                     /dev/null writable)"
                );
            }
            for e in &h.expose {
                let _ = writeln!(
                    o,
                    "               expose {{dir}}/{} -> {}{}",
                    e.file,
                    e.target,
                    if e.rw { " (read-write)" } else { "" }
                );
            }
        }
    }
    let notes = warnings(plan);
    if !notes.is_empty() {
        let _ = writeln!(o, "\nwarnings");
        for n in notes {
            let _ = writeln!(o, "  {n}");
        }
    }
}

/// A helper step, for constructing plans in code and tests.
pub fn step(helper: Helper, at: Pos) -> Step<Helper> {
    Step { op: helper, at }
}

/// A warning as the profile records it.
pub fn warning(text: &str, at: Pos) -> Located {
    Located {
        value: text.to_string(),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(name: &str, argv: &[&str], ready: Ready) -> Step<Helper> {
        step(
            Helper {
                name: name.into(),
                kind: HelperKind::Program {
                    argv: argv.iter().map(|s| s.to_string()).collect(),
                    ready,
                    timeout_ms: 1000,
                },
                expose: vec![Expose {
                    file: "bus".into(),
                    target: "/run/bus".into(),
                    rw: false,
                }],
                optional: false,
            },
            Pos::default(),
        )
    }

    #[test]
    fn display_numbers() {
        assert_eq!(display_number(":0"), Some(0));
        assert_eq!(display_number(":12.0"), Some(12));
        assert_eq!(display_number("unix:3"), Some(3));
        assert_eq!(display_number("localhost:10.0"), None);
        assert_eq!(display_number(""), None);
    }

    #[test]
    fn helpers_are_checked() {
        let mut plan = Plan::new("t", "t.rhai");
        plan.helpers
            .push(program("p", &["x", "--fd={ready_fd}"], Ready::Fd));
        assert!(validate(&plan).is_ok());
        plan.helpers.push(program("p", &["y"], Ready::Started));
        assert!(validate(&plan).unwrap_err().0.contains("already"));
        plan.helpers.pop();
        plan.helpers.push(program("q", &["y"], Ready::Fd));
        assert!(validate(&plan).unwrap_err().0.contains("{ready_fd}"));
        plan.helpers.pop();
        let mut bad = program("r", &["y"], Ready::Started);
        bad.op.expose[0].file = "../x".into();
        plan.helpers.push(bad);
        assert!(validate(&plan).unwrap_err().0.contains("plain file name"));
    }

    #[test]
    fn x11_on_the_host_network_is_flagged() {
        let mut plan = Plan::new("t", "t.rhai");
        plan.fs.push(Step {
            op: super::super::FsOp::Bind {
                source: "/tmp/.X11-unix/X0".into(),
                target: "/tmp/.X11-unix/X0".into(),
                rw: false,
                dev: false,
                optional: false,
                replace: false,
                create: false,
                exec: false,
            },
            at: Pos::default(),
        });
        assert!(warnings(&plan).is_empty());
        plan.namespaces.net = false;
        assert!(warnings(&plan)[0].contains("abstract socket"));
    }
}
