//! Egress by name at launch: moksha's own proxy (`moksha __egress`), a
//! helper beside the sandbox like pasta (helper.rs: started by the guard,
//! stopped with the sandbox, a detached sandbox's kept until it ends).
//!
//! The sandbox's network namespace has only loopback. The proxy, on the
//! host, forks a child that joins the sandbox's user and network
//! namespaces, brings lo up, makes the listening socket on 127.0.0.1:3128
//! there and sends it back over a socketpair: a socket stays in the
//! namespace it was made in, so the proxy accepts connections from inside
//! and connects out from the host's network, with no relay and no route
//! for the program but this one.

mod proxy;
pub use proxy::LOG_LIMIT;

use super::helper::{Confine, Helpers, Spec, READY_FD};
use crate::plan::egress::{Egress, PORT};
use crate::plan::helper::Ready;
use crate::plan::Plan;
use crate::sys;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

/// The hidden command line word that runs the proxy.
pub const COMMAND: &str = "__egress";
/// The variable that carries the rules (JSON) to the proxy.
const RULES_VAR: &str = "MOKSHA_EGRESS_RULES";
/// How long the proxy gets to be listening, in milliseconds.
const READY_TIMEOUT_MS: u64 = 10_000;

/// The environment a sandbox with egress gets: the proxy for every
/// protocol, nothing for its own loopback.
pub fn proxy_env() -> Vec<(&'static str, String)> {
    let http = format!("http://127.0.0.1:{PORT}");
    let socks = format!("socks5h://127.0.0.1:{PORT}");
    let no = "localhost,127.0.0.1,::1".to_string();
    vec![
        ("HTTP_PROXY", http.clone()),
        ("HTTPS_PROXY", http.clone()),
        ("ALL_PROXY", socks.clone()),
        ("NO_PROXY", no.clone()),
        ("http_proxy", http.clone()),
        ("https_proxy", http),
        ("all_proxy", socks),
        ("no_proxy", no),
    ]
}

/// After the id maps are written, before the sandbox goes on (its /proc
/// files are ours to open until it makes itself non-dumpable): starts the
/// proxy for the sandbox whose first process is `child` and waits until
/// it listens inside. `log`: the instance's network log. Says whether
/// there was one to start.
pub fn start(
    plan: &Plan,
    child: libc::pid_t,
    log: Option<&std::path::Path>,
    helpers: Option<&mut Helpers>,
) -> Result<bool, String> {
    let (Some(egress), Some(helpers)) = (&plan.network.egress, helpers) else {
        return Ok(false);
    };
    let exe = std::env::current_exe()
        .map_err(|e| format!("egress: cannot find moksha's own binary to run the proxy: {e}"))?;
    let rules = serde_json::to_string(egress).map_err(|e| e.to_string())?;
    let mut argv = vec![
        exe.to_string_lossy().into_owned(),
        COMMAND.to_string(),
        "--pid".into(),
        child.to_string(),
    ];
    if plan.namespaces.user {
        argv.push("--userns".into());
    }
    if let Some(log) = log {
        argv.extend(["--log".into(), log.to_string_lossy().into_owned()]);
    }
    let root = nix::unistd::geteuid().is_root();
    let spec = Spec {
        name: "egress proxy".into(),
        argv,
        ready: Ready::Fd,
        timeout_ms: READY_TIMEOUT_MS,
        dir: None,
        exit_fd: false,
        // Rootless, the proxy joins the sandbox's user namespace as its
        // owner and needs no capability. Run by root it keeps root's until
        // it listens (to join the namespaces without a user namespace of
        // the sandbox's, and to become nobody after), then drops them all.
        confine: if root {
            Confine::NoNewPrivs
        } else {
            Confine::NoCaps
        },
        // The rules in the environment, which only its own user can read
        // (names of a deny list can be telling).
        env: vec![(RULES_VAR.to_string(), rules)],
    };
    helpers.start(&spec).map_err(|e| format!("egress: {e}"))?;
    Ok(true)
}

/// The proxy's options.
struct Args {
    pid: String,
    userns: bool,
    log: Option<String>,
    rules: Egress,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut it = args.iter();
    let (mut pid, mut userns, mut log, mut rules) = (None, false, None, None);
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--pid" => pid = Some(value()?),
            "--userns" => userns = true,
            "--log" => log = Some(value()?),
            "--rules" => {
                rules = Some(
                    serde_json::from_str::<Egress>(&value()?)
                        .map_err(|e| format!("--rules: {e}"))?,
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let pid = pid
        .filter(|p| p.parse::<u32>().is_ok())
        .ok_or("--pid PID is required")?;
    if rules.is_none() {
        if let Ok(text) = std::env::var(RULES_VAR) {
            let parsed = serde_json::from_str::<Egress>(&text);
            rules = Some(parsed.map_err(|e| format!("{RULES_VAR}: {e}"))?);
        }
    }
    Ok(Args {
        pid,
        userns,
        log,
        rules: rules.ok_or(format!(
            "the rules are missing (--rules JSON, or {RULES_VAR})"
        ))?,
    })
}

/// `moksha __egress --pid PID [--userns] [--log FILE] [--rules JSON]`
/// (the rules, else, in MOKSHA_EGRESS_RULES): the proxy, run by the
/// helpers' guard. Reports readiness on READY_FD once it
/// listens inside the sandbox; then serves until it is stopped.
pub fn main(args: &[String]) -> i32 {
    sys::set_name("moksha-egress");
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("moksha __egress: {e} (this command is run by moksha itself)");
            return 2;
        }
    };
    match setup(&args) {
        Ok((listener, log)) => proxy::serve(listener, Arc::new(proxy::Proxy::new(args.rules, log))),
        Err(e) => {
            eprintln!("moksha egress proxy: {e}");
            1
        }
    }
}

fn setup(args: &Args) -> Result<(std::net::TcpListener, Option<std::fs::File>), String> {
    let log = match &args.log {
        Some(path) => Some(
            crate::state::open_private(std::path::Path::new(path), true, true)
                .map_err(|e| format!("cannot open the log {path}: {e}"))?,
        ),
        None => None,
    };
    let listener = listen_inside(&args.pid, args.userns)?;
    confine_self(&args.rules)?;
    // Ready: the guard reads one byte.
    // SAFETY: READY_FD is the readiness pipe the guard gave us, ours alone.
    let ready = unsafe { OwnedFd::from_raw_fd(READY_FD) };
    sys::write_all(&ready, b"1", "<readiness pipe>").map_err(|e| e.to_string())?;
    drop(ready);
    Ok((listener, log))
}

/// Once it listens, the proxy gives up what it no longer needs: run by
/// root it becomes the host's nobody, every capability goes, and it is
/// not dumpable; landlock leaves it the filesystem read-only (the
/// resolver's files) and TCP connections only to the ports the rules
/// allow and DNS's, binding none; moksha's default seccomp filter comes last. (Its
/// threads start after this, under all of it.)
fn confine_self(rules: &Egress) -> Result<(), String> {
    use crate::policy::landlock::{self as ll, FsRule};
    if nix::unistd::geteuid().is_root() {
        let nobody = crate::plan::NOBODY;
        sys::become_ids(nobody, nobody).map_err(|e| e.to_string())?;
    }
    let bounding = sys::caps::effective() & (1 << sys::caps::CAP_SETPCAP) != 0;
    sys::caps::apply(0, sys::caps::last_cap(), bounding)
        .map_err(|f| format!("cannot drop capabilities: {}", f.errno))?;
    sys::set_dumpable(false).map_err(|e| e.to_string())?;
    sys::no_new_privs_raw().map_err(|e| format!("no_new_privs: {e}"))?;
    let settings = ll::Landlock {
        connect_tcp: Some(connect_ports(rules)),
        bind_tcp: Some(Vec::new()),
        scope_abstract_unix: true,
        scope_signals: true,
        ..ll::Landlock::default()
    };
    let fs = vec![FsRule {
        path: "/".into(),
        access: ll::READ_FILE | ll::READ_DIR,
        optional: false,
        origin: "the host's filesystem, read-only".into(),
    }];
    if let Some(rs) = ll::ruleset(&settings, fs, true, sys::landlock::abi()) {
        if rs.abi > 0 {
            sys::landlock::restrict_self(&rs).map_err(|e| format!("landlock: {e}"))?;
        }
    }
    let filter = super::confine::compile(&crate::policy::seccomp::Seccomp::default())?;
    sys::seccomp::Filter::new(&filter)
        .install()
        .map_err(|e| format!("seccomp: {e}"))
}

/// The TCP ports the proxy may connect to: those the allow rules name, and
/// DNS's. glibc's resolver (moksha asks it only through /etc/resolv.conf,
/// `sys::nss`) asks again over TCP when an answer was too long for UDP.
fn connect_ports(rules: &Egress) -> Vec<u16> {
    let mut ports: Vec<u16> = rules
        .rules
        .iter()
        .filter(|r| r.op.action == crate::plan::egress::Action::Allow)
        .flat_map(|r| r.op.ports.clone().unwrap_or_default())
        .chain([DNS_PORT])
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

const DNS_PORT: u16 = 53;

/// The listening socket, made in the sandbox's network namespace by a
/// child that joins it (the proxy itself stays in the host's).
fn listen_inside(pid: &str, userns: bool) -> Result<std::net::TcpListener, String> {
    let open = |ns: &str| {
        sys::net::open_ns(&format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| format!("cannot open the sandbox's {ns} namespace: {e}"))
    };
    let user = if userns { Some(open("user")?) } else { None };
    let net = open("net")?;
    let (ours, theirs) = sys::net::socketpair().map_err(|e| e.to_string())?;
    // In the child: join, lo up, listen. (Single-threaded: no thread has
    // started yet.)
    let listen = || -> Result<OwnedFd, String> {
        sys::net::setns_net(&net, "the sandbox's network namespace").map_err(|e| e.to_string())?;
        sys::net::link_up("lo").map_err(|e| e.to_string())?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", PORT))
            .map_err(|e| format!("cannot listen on 127.0.0.1:{PORT}: {e}"))?;
        Ok(listener.into())
    };
    super::network::send_made_in(user.as_ref(), &theirs, listen);
    drop(theirs);
    match sys::net::recv_fd_or_text(&ours) {
        Ok(Ok(fd)) => Ok(std::net::TcpListener::from(fd)),
        Ok(Err(said)) => Err(format!("inside the sandbox's network namespace: {said}")),
        Err(e) => Err(format!("no listening socket from inside the sandbox ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_need_a_pid_and_rules() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let ok = a(&["--pid", "42", "--userns", "--rules", r#"{"rules":[]}"#]).unwrap();
        assert!(ok.userns && ok.pid == "42" && ok.log.is_none());
        assert!(a(&["--rules", "{}"]).is_err());
        assert!(a(&["--pid", "x", "--rules", "{}"]).is_err());
        assert!(a(&["--pid", "1", "--rules", "[]"]).is_err());
        assert!(a(&["--pid", "1", "--rules", "{}", "--what"]).is_err());
        let rules: Egress = serde_json::from_str(
            r#"{"rules": [{"action": "allow", "host": {"kind": "name", "value": "a.test"},
                "ports": [443, 80, 443], "reason": null,
                "at": {"file": "p.rhai", "line": 1, "col": 1}}]}"#,
        )
        .unwrap();
        assert_eq!(connect_ports(&rules), vec![53, 80, 443]);
        let env = proxy_env();
        assert!(env.contains(&("HTTPS_PROXY", "http://127.0.0.1:3128".into())));
        assert!(env.contains(&("all_proxy", "socks5h://127.0.0.1:3128".into())));
    }
}
