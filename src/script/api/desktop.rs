//! Helpers beside the sandbox (`s.helper`), the X authority file
//! (`s.xauthority`) and warnings (`s.warn`): the primitives the desktop
//! stdlib builds on. The policy (which helper, which filter, which socket)
//! lives in `stdlib/*.rhai`.

use super::{err, options, path_arg, pos, strings, Res, Sandbox};
// `api!` comes from the parent module.
use crate::plan::helper::{self, Expose, Helper, HelperKind, Ready};
use crate::plan::Step;
use rhai::{Array, Engine, FuncRegistration, Map, NativeCallContext};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Default time a helper gets to become ready.
const DEFAULT_TIMEOUT_MS: i64 = 5_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct HelperOpts {
    /// "started" (default), "fd", "file" or "exit".
    ready: Option<String>,
    /// For ready "file": the file name in the helper's directory.
    file: Option<String>,
    /// File name in the helper's directory -> path inside the sandbox.
    expose: BTreeMap<String, String>,
    /// Milliseconds to wait for readiness.
    timeout: Option<i64>,
    optional: bool,
}

fn add_helper(ctx: &NativeCallContext, s: &Sandbox, h: Helper) -> Res<()> {
    s.0.borrow_mut().helpers.push(Step {
        op: h,
        at: pos(ctx),
    });
    Ok(())
}

fn exposes(map: &BTreeMap<String, String>) -> Res<Vec<Expose>> {
    map.iter()
        .map(|(file, target)| {
            Ok(Expose {
                file: file.clone(),
                target: path_arg(target, "helper expose target")?,
                rw: false,
            })
        })
        .collect()
}

fn helper_call(ctx: &NativeCallContext, s: &Sandbox, name: &str, argv: &Array, o: &Map) -> Res<()> {
    let o: HelperOpts = options(o, "helper")?;
    let argv = strings(argv, "helper")?;
    if argv.is_empty() {
        return err("helper: the command needs at least the program name");
    }
    let ready = match (o.ready.as_deref().unwrap_or("started"), o.file) {
        ("started", None) => Ready::Started,
        ("fd", None) => Ready::Fd,
        ("exit", None) => Ready::Exit,
        ("file", Some(file)) => Ready::File { file },
        ("file", None) => return err("helper: ready \"file\" needs file: \"NAME\""),
        (_, Some(_)) => return err("helper: file: is only for ready: \"file\""),
        (other, None) => {
            return err(format!(
                "helper: unknown ready {other:?}; use \"started\", \"fd\", \"file\" or \"exit\""
            ))
        }
    };
    let timeout = o.timeout.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(1..=600_000).contains(&timeout) {
        return err("helper: timeout is in milliseconds, 1 to 600000");
    }
    add_helper(
        ctx,
        s,
        Helper {
            name: name.to_string(),
            kind: HelperKind::Program {
                argv,
                ready,
                timeout_ms: timeout as u64,
            },
            expose: exposes(&o.expose)?,
            optional: o.optional,
        },
    )
}

/// Registers the desktop primitives.
pub fn register(engine: &mut Engine) {
    api!(
        engine,
        "helper",
        "s: Sandbox, name: String, argv: Array, options: Map",
        "Runs the host program `argv` beside the sandbox, outside it, with moksha's own rights
        (e.g. xdg-dbus-proxy). It starts before the sandbox, and is stopped (SIGTERM, then
        SIGKILL after 2 s) and reaped when the sandbox ends, a detached one too (one in the
        foreground ends with moksha). It gets a private host directory: `{dir}` in argv stands
        for it.
        Options: ready: \"started\" (default), \"fd\" (it writes a byte to the descriptor
        `{ready_fd}`), \"file\" (with file: \"NAME\": when {dir}/NAME exists) or \"exit\"
        (a one-shot command that must exit 0);
        expose: #{ NAME: \"/path/inside\" } binds files of its directory into the sandbox;
        timeout: milliseconds to wait for readiness (default 5000);
        optional: true runs the sandbox without it (with a warning) when it cannot start.",
        |ctx: NativeCallContext, s: &mut Sandbox, name: &str, argv: Array, o: Map| helper_call(
            &ctx, s, name, &argv, &o
        )
    );
    api!(
        engine,
        "xauthority",
        "s: Sandbox, display: String, target: String",
        "At launch, writes an X authority file at `target` inside holding only the host's
        cookie for the local X display `display` (\":0\"), read from $XAUTHORITY or
        ~/.Xauthority and rewritten to match any hostname and display number (the sandbox may
        see the display under another number). The cookie never enters the plan.
        Without a cookie for that display the file is empty (with a warning).",
        |ctx: NativeCallContext, s: &mut Sandbox, display: &str, target: &str| -> Res<()> {
            if helper::display_number(display).is_none() {
                return err(format!(
                    "xauthority: {display:?} is not a local X display such as \":0\""
                ));
            }
            let target = path_arg(target, "xauthority target")?;
            add_helper(
                &ctx,
                s,
                Helper {
                    name: "xauthority".into(),
                    kind: HelperKind::Xauthority {
                        display: display.to_string(),
                        file: "Xauthority".into(),
                    },
                    expose: vec![Expose {
                        file: "Xauthority".into(),
                        target,
                        rw: false,
                    }],
                    optional: false,
                },
            )
        }
    );
    api!(
        engine,
        "warn",
        "s: Sandbox, text: String",
        "Records a warning for the user of this profile (a desktop service that is missing,
        a weaker setting): `moksha plan` lists it, `moksha exec` and `moksha check` print it.",
        |ctx: NativeCallContext, s: &mut Sandbox, text: &str| -> Res<()> {
            if text.trim().is_empty() {
                return err("warn: the text is empty");
            }
            s.0.borrow_mut()
                .warnings
                .push(helper::warning(text.trim(), pos(&ctx)));
            Ok(())
        }
    );
}
