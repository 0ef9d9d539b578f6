//! The denial log of trace mode: what the supervisor saw the program be
//! refused (`Denial`), counted, and the summary printed at exit, each line
//! with its count and the profile line or default that caused it. Pure:
//! the supervisor collects (launch/tracer.rs), this explains.

use crate::plan::mounts::{holder, origin, Origin};
use crate::plan::validate::normalize;
use crate::plan::{FsOp, NetMode, Plan};
use crate::policy::seccomp::{self, Action, Mode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One kind of thing the program was refused or did not find.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Denial {
    /// The seccomp filter refused a call with `errno`; `detail` names the
    /// argument that mattered (a socket family, an ioctl request, flags).
    Syscall {
        name: String,
        errno: i32,
        detail: Option<String>,
        /// Entered through the i386 or x32 ABI.
        abi: Option<String>,
    },
    /// A path the program looked for that is not in the sandbox.
    NotFound { call: String, path: String },
    /// A path it tried to write on a read-only mount.
    ReadOnly { call: String, path: String },
    /// A connection the network refuses.
    Connect { address: String, why: String },
    /// A D-Bus name the proxy refused.
    Bus { name: String, line: String },
    /// A host and port the egress proxy refused (`HOST:PORT`), and why.
    Egress { target: String, why: String },
}

/// Denials and how often each happened.
pub type Tally = BTreeMap<Denial, u64>;

fn errno_text(e: i32) -> String {
    seccomp::errno_name(e as u16).map_or_else(|| format!("errno {e}"), str::to_string)
}

/// Why the policy refused `name` (the call's rule, its group, an argument
/// filter), and how a profile allows it.
fn syscall_cause(plan: &Plan, name: &str, detail: Option<&str>, abi: Option<&str>) -> String {
    let p = &plan.security.seccomp;
    if let Some(abi) = abi {
        return format!(
            "the {abi} entry points are refused; allow them with s.seccomp(#{{ {abi}: true }})"
        );
    }
    if let Some(rule) = p.rules.get(name) {
        if let Some(at) = &rule.at {
            let cond = rule.when.iter().find(|c| !c.action.runs());
            return match cond {
                Some(c) if rule.action.is_none_or(Action::runs) => format!(
                    "the profile's rule at {} ({} when {})",
                    c.at.as_ref().unwrap_or(at),
                    c.action.describe(),
                    c.when.describe()
                ),
                _ => format!("the profile's rule at {at}"),
            };
        }
        if rule.action.is_some_and(|a| !a.runs()) {
            let group = rule.group.as_deref().unwrap_or(name);
            return format!(
                "refused by the default {group} group; allow with s.seccomp_allow([\"{group}\"])"
            );
        }
    }
    match name {
        "ioctl" => "TIOCSTI, TIOCLINUX and TIOCSETD are always refused (no typing into the \
                    terminal)"
            .into(),
        "socket" | "socketpair" => format!(
            "the socket family{} is outside the allowed families; allow it with \
             s.seccomp(#{{ socket_families: [...] }})",
            detail.map(|d| format!(" {d}")).unwrap_or_default()
        ),
        "clone3" if !p.nested_namespaces => "its flags are out of a filter's reach, so it \
                                              answers ENOSYS and libc falls back to clone \
                                              (expected, harmless)"
            .into(),
        "clone" | "unshare" | "setns" if !p.nested_namespaces => {
            "creating namespaces is refused by default; allow with \
             s.seccomp(#{ nested_namespaces: true })"
                .into()
        }
        "personality" => "only the harmless personalities are allowed; allow any with \
                          s.seccomp(#{ any_personality: true })"
            .into(),
        _ if p.mode == Mode::Allowlist => format!(
            "not on the allow-list{}; allow with s.seccomp_allow([\"{name}\"])",
            p.mode_at
                .as_ref()
                .map(|a| format!(" (chosen at {a})"))
                .unwrap_or_default()
        ),
        _ => "the filter's default".into(),
    }
}

/// Why `path` (normalized) is not writable: the read-only mount that holds it.
fn read_only_cause(plan: &Plan, path: &str) -> String {
    match holder(plan, path) {
        Some(step) => match &step.op {
            FsOp::Bind {
                target, rw: false, ..
            } => format!(
                "the read-only bind of {target} at {}; #{{ rw: true }} there allows writes",
                step.at
            ),
            other => {
                let target = normalize(other.target());
                let remount = plan.fs.iter().find(
                    |s| matches!(&s.op, FsOp::RemountRo { target: t } if normalize(t) == target),
                );
                match remount {
                    Some(r) => format!("{target} is remounted read-only at {}", r.at),
                    None => format!("the mount at {target} ({})", step.at),
                }
            }
        },
        None => match plan
            .fs
            .iter()
            .find(|s| matches!(&s.op, FsOp::RemountRo { target } if normalize(target) == "/"))
        {
            Some(r) => format!(
                "no mount holds it, and the root is read-only (remount_ro at {}); \
                 bind a host directory there with #{{ rw: true }}, or a tmpfs",
                r.at
            ),
            None => "no mount holds it".into(),
        },
    }
}

/// Why a path is missing: `None` when a bind holds it (the host has no
/// such file either, so the profile is not why).
fn not_found_cause(
    plan: &Plan,
    path: &str,
    on_host: Option<&dyn Fn(&str) -> bool>,
) -> Option<String> {
    match origin(plan, path) {
        Origin::Host(_) => None,
        Origin::Elsewhere | Origin::Missing => match on_host {
            Some(exists) if !exists(path) => None,
            Some(_) => Some(format!(
                "not in the sandbox's view (the host has it; no bind shows it): \
                     s.bind(\"{path}\")"
            )),
            None => Some("not in the sandbox's view (no bind shows it)".into()),
        },
    }
}

fn connect_cause(plan: &Plan, why: &str) -> String {
    let at = plan
        .network
        .set_at
        .as_ref()
        .map_or("the default".to_string(), |a| format!("set at {a}"));
    match why {
        "network" if plan.network.egress.is_some() => format!(
            "network none with egress rules ({at}): only the proxy at 127.0.0.1:{} leads out; \
             the program ignored HTTPS_PROXY/HTTP_PROXY/ALL_PROXY (give it its proxy option)",
            crate::plan::egress::PORT
        ),
        "network" => format!(
            "network none ({at}): only the sandbox's loopback; s.network(\"user\") or \
             s.network(\"host\") gives it a network"
        ),
        other => other.to_string(),
    }
}

/// From this many missing paths in one directory, the summary shows the
/// directory.
const GROUPED: usize = 4;

/// The summary lines (no trailing newline each), largest count first
/// within each kind. `on_host` says whether a path exists on the host
/// (the launcher asks it; a detached supervisor cannot).
pub fn summary(plan: &Plan, tally: &Tally, on_host: Option<&dyn Fn(&str) -> bool>) -> Vec<String> {
    let mut lines: Vec<(u8, u64, String)> = Vec::new();
    // Many missing files of one directory (a cache's) make one line.
    let mut by_dir: BTreeMap<String, (u64, usize, String)> = BTreeMap::new();
    for (d, n) in tally {
        if let Denial::NotFound { path, .. } = d {
            let path = normalize(path);
            if let Some((dir, _)) = path.rsplit_once('/') {
                if not_found_cause(plan, &path, on_host).is_some() {
                    let e = by_dir
                        .entry(dir.to_string())
                        .or_insert((0, 0, path.clone()));
                    e.0 += n;
                    e.1 += 1;
                }
            }
        }
    }
    by_dir.retain(|_, (_, files, _)| *files >= GROUPED);
    for (dir, (n, files, example)) in &by_dir {
        lines.push((
            1,
            *n,
            format!(
                "{dir}/: {files} paths not found (e.g. {example}): not in the sandbox's view; \
                 s.bind(\"{dir}\")"
            ),
        ));
    }
    for (d, n) in tally {
        let n = *n;
        let line =
            match d {
                Denial::Syscall {
                    name,
                    errno,
                    detail,
                    abi,
                } => {
                    let shown = match (abi, detail) {
                        (Some(abi), _) => format!("{name} ({abi})"),
                        (None, Some(d)) => format!("{name}({d})"),
                        (None, None) => name.clone(),
                    };
                    (
                        0,
                        format!(
                            "syscall {shown} refused ({}): {}",
                            errno_text(*errno),
                            syscall_cause(plan, name, detail.as_deref(), abi.as_deref())
                        ),
                    )
                }
                Denial::NotFound { call, path } => {
                    let Some(cause) = not_found_cause(plan, &normalize(path), on_host) else {
                        continue;
                    };
                    let dir = normalize(path).rsplit_once('/').map(|(d, _)| d.to_string());
                    if dir.is_some_and(|d| by_dir.contains_key(&d)) {
                        continue;
                    }
                    (1, format!("{path} not found ({call}): {cause}"))
                }
                Denial::ReadOnly { call, path } => (
                    2,
                    format!(
                        "{path} not writable ({call}, EROFS): {}",
                        read_only_cause(plan, &normalize(path))
                    ),
                ),
                Denial::Connect { address, why } => (
                    3,
                    format!("connect to {address} refused: {}", connect_cause(plan, why)),
                ),
                Denial::Egress { target, why } => (
                    3,
                    format!(
                        "egress to {target} refused by the proxy: {why}{}",
                        plan.network
                            .set_at
                            .as_ref()
                            .map(|a| format!(" (egress rules at {a}; allow it there)"))
                            .unwrap_or_default()
                    ),
                ),
                Denial::Bus { name, line } => {
                    (
                        4,
                        format!(
                    "D-Bus {name} refused by the proxy's filter ({line}): not in the rules \
                     given to dbus::session{}; add it, e.g. #{{ {}: [\"{name}\"] }}",
                    plan.helpers
                        .iter()
                        .find(|h| h.op.name.starts_with("dbus-"))
                        .map(|h| format!(" at {}", h.at))
                        .unwrap_or_default(),
                    if line.starts_with("own") { "own" } else { "talk" }
                ),
                    )
                }
            };
        lines.push((line.0, n, line.1));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    lines
        .into_iter()
        .map(|(_, n, l)| format!("{n:>5}x  {}", crate::text::line(&l)))
        .collect()
}

/// The summary as printed at exit, on stderr.
pub fn render(plan: &Plan, tally: &Tally, on_host: Option<&dyn Fn(&str) -> bool>) -> String {
    let lines = summary(plan, tally, on_host);
    let mut o = String::new();
    if lines.is_empty() {
        let _ = writeln!(o, "moksha: trace: nothing was refused");
        return o;
    }
    let _ = writeln!(
        o,
        "moksha: trace: what the program was refused (count, what, why):"
    );
    for l in lines {
        let _ = writeln!(o, "moksha: {l}");
    }
    o
}

/// What the egress proxy's log (`moksha logs NAME --net`) says it refused:
/// its lines are `TIME VERDICT VIA HOST:PORT WHY`.
pub fn egress_denials(log: &str) -> Vec<Denial> {
    log.lines()
        .filter_map(|l| {
            let mut w = l.splitn(5, ' ');
            let (_time, verdict, _via) = (w.next()?, w.next()?, w.next()?);
            let (target, why) = (w.next()?, w.next().unwrap_or(""));
            (verdict == "refused" && target != "-").then(|| Denial::Egress {
                target: target.to_string(),
                why: why.to_string(),
            })
        })
        .collect()
}

/// The names xdg-dbus-proxy's log (`--log`) says it refused: a call to a
/// name the program may not talk to (`*HIDDEN*` after the call), or a bus
/// method on a name it may not own or see ("Filtering message due to
/// arg0 NAME, policy: P (required R)").
pub fn bus_denials(log: &str) -> Vec<Denial> {
    let mut out = Vec::new();
    // The last call: its destination and member, and whether a filtering
    // line already explained it.
    let mut call: Option<(String, String)> = None;
    let mut explained = false;
    for l in log.lines() {
        if let Some((_, rest)) = l.split_once(": -> ") {
            let mut words = rest.split_whitespace();
            let dest = words.next().unwrap_or("").to_string();
            let member = words.nth(1).unwrap_or("").to_string();
            call = Some((dest, member));
            explained = false;
        } else if let Some(rest) = l.strip_prefix("Filtering message due to arg0 ") {
            let (name, policy) = rest.split_once(", policy: ").unwrap_or((rest, ""));
            let required = policy
                .split("required ")
                .nth(1)
                .map(|r| r.trim_end_matches(')'));
            let what = match required {
                Some("3") => "own",
                Some("2") => "talk",
                _ => "see",
            };
            let member = call.as_ref().map_or("", |c| c.1.as_str());
            out.push(Denial::Bus {
                name: name.to_string(),
                line: format!("{what}, {}", member.rsplit('.').next().unwrap_or(member)),
            });
            explained = true;
        } else if l.starts_with("*HIDDEN*") && !explained {
            if let Some((dest, member)) = call.take() {
                out.push(Denial::Bus {
                    name: dest,
                    line: format!("talk, {member}"),
                });
            }
        }
    }
    out
}

/// Whether the network refuses a connection to `address` (an IP
/// address): no network but loopback.
pub fn network_refuses(plan: &Plan, ip: &std::net::IpAddr) -> bool {
    matches!(plan.network.mode, NetMode::None) && !ip.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::located::Pos;
    use crate::plan::Step;

    fn at(line: usize) -> Pos {
        Pos::in_test(line, 1)
    }

    fn plan() -> Plan {
        let mut p = Plan::new("t", "p.rhai");
        p.fs = vec![
            Step {
                op: FsOp::plain_bind("/usr", "/usr", false),
                at: at(2),
            },
            Step {
                op: FsOp::RemountRo { target: "/".into() },
                at: at(3),
            },
        ];
        p
    }

    #[test]
    fn each_line_has_its_count_and_cause() {
        let p = plan();
        let mut t = Tally::new();
        t.insert(
            Denial::Syscall {
                name: "keyctl".into(),
                errno: libc::EPERM,
                detail: None,
                abi: None,
            },
            3,
        );
        t.insert(
            Denial::NotFound {
                call: "openat".into(),
                path: "/home/u/.config/app/x".into(),
            },
            1,
        );
        // Under the /usr bind: the host has no such file either; not shown.
        t.insert(
            Denial::NotFound {
                call: "openat".into(),
                path: "/usr/lib/nothing".into(),
            },
            9,
        );
        t.insert(
            Denial::ReadOnly {
                call: "openat".into(),
                path: "/usr/x".into(),
            },
            2,
        );
        t.insert(
            Denial::Connect {
                address: "192.0.2.1:80".into(),
                why: "network".into(),
            },
            1,
        );
        let lines = summary(&p, &t, None);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].contains("3x  syscall keyctl refused (EPERM): refused by the default @keyring group; allow with s.seccomp_allow([\"@keyring\"])"), "{}", lines[0]);
        assert!(
            lines[1].contains(
                "1x  /home/u/.config/app/x not found (openat): not in the sandbox's view"
            ),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("the read-only bind of /usr at p.rhai:2:1"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains("network none (the default)"),
            "{}",
            lines[3]
        );
        // The host's answer filters what is missing there too.
        let none = |_: &str| false;
        assert_eq!(summary(&p, &t, Some(&none)).len(), 3);
        let all = |_: &str| true;
        assert!(summary(&p, &t, Some(&all))[1].contains("s.bind(\"/home/u/.config/app/x\")"));
    }

    #[test]
    fn the_proxy_log_names_refused_calls_and_names() {
        let log = "C1: -> org.freedesktop.DBus call org.freedesktop.DBus.Hello at /org/freedesktop/DBus\n\
                   B1: <- org.freedesktop.DBus return from C1\n\
                   C4: -> org.example.Refused call org.example.Foo.Bar at /x\n\
                   *HIDDEN* (ping)\n\
                   C5: -> org.freedesktop.DBus call org.freedesktop.DBus.RequestName at /org/freedesktop/DBus\n\
                   Filtering message due to arg0 org.example.Mine, policy: 0 (required 3)\n\
                   *HIDDEN* (ping)\n";
        assert_eq!(
            bus_denials(log),
            vec![
                Denial::Bus {
                    name: "org.example.Refused".into(),
                    line: "talk, org.example.Foo.Bar".into()
                },
                Denial::Bus {
                    name: "org.example.Mine".into(),
                    line: "own, RequestName".into()
                },
            ]
        );
    }

    #[test]
    fn text_from_the_sandbox_is_escaped() {
        let mut t = Tally::new();
        t.insert(
            Denial::NotFound {
                call: "openat".into(),
                path: "/x\u{1b}]0;owned\u{7}\n".into(),
            },
            1,
        );
        let out = render(&plan(), &t, None);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out}");
        assert_eq!(out.lines().count(), 2, "{out}");
    }

    #[test]
    fn the_egress_proxys_refusals_are_read_from_its_log() {
        let log = "2026-12-01T14:20:01.512Z allowed CONNECT github.com:443 by \"github.com:443\" at p.rhai:3:3 -> 140.82.121.4:443\n\
                   2026-12-01T14:20:02.040Z refused HTTP db.internal.example:80 denied by \"*.internal.example\" at p.rhai:3:3: company network\n\
                   2026-12-01T14:20:03.001Z failed CONNECT github.com:443 cannot connect\n\
                   2026-12-01T14:20:04.000Z refused - - too many connections at once\n";
        let d = egress_denials(log);
        assert_eq!(
            d,
            vec![Denial::Egress {
                target: "db.internal.example:80".into(),
                why: "denied by \"*.internal.example\" at p.rhai:3:3: company network".into()
            }]
        );
        let mut p = plan();
        p.network.egress = Some(crate::plan::egress::Egress::default());
        p.network.set_at = Some(at(4));
        let mut t = Tally::new();
        t.insert(d[0].clone(), 3);
        let out = render(&p, &t, None);
        assert!(
            out.contains("3x  egress to db.internal.example:80 refused by the proxy: denied by")
                && out.contains("(egress rules at p.rhai:4"),
            "{out}"
        );
    }
}
