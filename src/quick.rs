//! The quick flags of `exec` and `plan` as the Rhai calls they stand for,
//! run after the profile (`script::overrides`): `--net` is `s.network()`,
//! `--home` the `home` module's functions, `--bind` `s.bind()`, `--env`
//! `s.env()`, `--cwd` `s.cwd()`.

use crate::cli::{BindSpec, HomeKind, NetMode, Quick};
use crate::script::overrides::{Flag, Overrides};

fn flag(text: String, code: &'static str, values: Vec<String>) -> Flag {
    Flag { text, code, values }
}

fn bind(name: &str, spec: &BindSpec, code: &'static str) -> Flag {
    let text = match &spec.target {
        Some(t) => format!("{name} {}:{t}", spec.source),
        None => format!("{name} {}", spec.source),
    };
    let target = spec.target.clone().unwrap_or_else(|| spec.source.clone());
    flag(text, code, vec![spec.source.clone(), target])
}

/// The flags in their fixed order: network, home, binds, environment,
/// working directory (so `--home private --bind ~/x` shows ~/x).
pub fn overrides(q: &Quick) -> Overrides {
    let mut flags = Vec::new();
    if let Some(net) = q.net {
        let mode = match net {
            NetMode::None => "none",
            NetMode::Host => "host",
            NetMode::User => "user",
        };
        flags.push(flag(
            format!("--net {mode}"),
            "s.network(V[0]);",
            vec![mode.into()],
        ));
    }
    match q.home {
        Some(HomeKind::Private) => flags.push(flag(
            "--home private".into(),
            "import \"home\" as home; home::empty(s);",
            vec![],
        )),
        Some(HomeKind::Persistent) => flags.push(flag(
            "--home persistent".into(),
            "import \"home\" as home; home::persistent(s, SANDBOX);",
            vec![],
        )),
        None => {}
    }
    for spec in &q.binds {
        flags.push(bind(
            "--bind",
            spec,
            "s.bind(V[0], V[1], #{ replace: true });",
        ));
    }
    for spec in &q.rw_binds {
        flags.push(bind(
            "--rw-bind",
            spec,
            "s.bind(V[0], V[1], #{ rw: true, replace: true });",
        ));
    }
    for (name, value) in &q.envs {
        flags.push(flag(
            format!("--env {name}={value}"),
            "s.env(V[0], V[1]);",
            vec![name.clone(), value.clone()],
        ));
    }
    if let Some(dir) = &q.cwd {
        flags.push(flag(
            format!("--cwd {dir}"),
            "s.cwd(V[0]);",
            vec![dir.clone()],
        ));
    }
    Overrides(flags)
}
