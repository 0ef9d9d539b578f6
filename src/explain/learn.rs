//! `moksha learn`: the profile edits that would have made what the program
//! was refused in trace mode work, as a Rhai snippet to review, grouped by
//! kind. Pure: the tally comes from a traced run, `on_host` answers
//! whether a host path exists.
//!
//! Paths are generalised as a person would grant them: a file under
//! `~/.config/APP/` (or `~/.cache/APP`, `~/.local/share/APP`) gives that
//! directory, anything else in the home its first component below it
//! (`~/.gitconfig`, `~/Documents`), and outside the home the file's
//! directory unless that is a top-level one (`/etc`, `/srv`, ...). Never
//! the home itself, nor `/`: such a path is left as a comment.

use crate::plan::mounts::{holder, origin, Origin};
use crate::plan::validate::{normalize, within};
use crate::plan::{FsOp, Plan};
use crate::policy::seccomp::Mode;
use crate::state::denials::{Denial, Tally};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Top-level directories whose files are granted one by one.
const TOP: [&str; 14] = [
    "/etc", "/usr", "/var", "/opt", "/srv", "/run", "/tmp", "/home", "/mnt", "/media", "/dev",
    "/proc", "/sys", "/root",
];

/// Directories of the home whose children are applications' own.
const PER_APP: [&str; 5] = [
    ".config",
    ".cache",
    ".local/share",
    ".local/state",
    ".local/lib",
];

/// The directory (or file) to grant for `path`; `None` for the home, `/`,
/// or anything above the home.
pub fn generalise(path: &str, home: &str) -> Option<String> {
    let path = normalize(path);
    let home = normalize(home);
    if path == "/" || (home != "/" && within(&home, &path)) {
        return None;
    }
    if home != "/" && within(&path, &home) {
        let rel = &path[home.len() + 1..];
        let parts: Vec<&str> = rel.split('/').collect();
        let take = PER_APP
            .iter()
            .find(|d| rel == **d || rel.starts_with(&format!("{d}/")))
            .map_or(1, |d| d.split('/').count() + 1);
        return Some(format!(
            "{home}/{}",
            parts[..take.min(parts.len())].join("/")
        ));
    }
    let parent = path.rsplit_once('/').map_or("/", |(p, _)| p);
    if parent.is_empty() {
        // A top-level directory itself: too much to grant whole.
        None
    } else if TOP.contains(&parent) {
        Some(path)
    } else {
        Some(parent.to_string())
    }
}

/// A Rhai string for a host path: under the home, `home_dir() + "..."`.
fn rhai_path(path: &str, home: &str) -> String {
    let quoted = |t: &str| format!("{t:?}");
    match path.strip_prefix(home) {
        Some(rest) if home != "/" && rest.starts_with('/') => {
            format!("home_dir() + {}", quoted(rest))
        }
        _ => quoted(path),
    }
}

/// Keeps the outermost of paths that hold one another.
fn outermost(set: BTreeSet<String>) -> Vec<String> {
    let all: Vec<String> = set.into_iter().collect();
    all.iter()
        .filter(|p| !all.iter().any(|q| q != *p && within(p, q)))
        .cloned()
        .collect()
}

/// The snippet for `tally` (of a run of `plan`), or `None` when nothing
/// was refused that an edit would grant.
pub fn snippet(
    plan: &Plan,
    tally: &Tally,
    home: &str,
    on_host: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let mut ro: BTreeSet<String> = BTreeSet::new();
    let mut rw: BTreeSet<String> = BTreeSet::new();
    let mut tmpfs: BTreeSet<String> = BTreeSet::new();
    let mut calls: BTreeSet<String> = BTreeSet::new();
    let mut network: BTreeSet<String> = BTreeSet::new();
    let mut bus: BTreeSet<String> = BTreeSet::new();
    let mut notes: BTreeSet<String> = BTreeSet::new();
    let p = &plan.security.seccomp;
    // Directories looked at on the way to a deeper path are not needed
    // themselves.
    let missing: Vec<String> = tally
        .keys()
        .filter_map(|d| match d {
            Denial::NotFound { path, .. } => Some(normalize(path)),
            _ => None,
        })
        .collect();
    let traversed = |path: &str| missing.iter().any(|m| m != path && within(m, path));
    // The calls behind each syscall line, for its comment.
    let mut behind: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for d in tally.keys() {
        match d {
            Denial::NotFound { path, .. } => {
                let path = normalize(path);
                if traversed(&path) {
                    continue;
                }
                // Under a bind: the host lacks it too.
                if matches!(origin(plan, &path), Origin::Host(_)) || !on_host(&path) {
                    continue;
                }
                match generalise(&path, home) {
                    Some(g) => {
                        ro.insert(g);
                    }
                    None => {
                        notes.insert(format!(
                            "// {path}: not granted (the home, /, or a whole top-level directory)"
                        ));
                    }
                }
            }
            Denial::ReadOnly { path, .. } => {
                let path = normalize(path);
                match holder(plan, &path).map(|s| (&s.op, &s.at)) {
                    Some((FsOp::Bind { target, source, .. }, at))
                        if !["/usr", "/etc", "/bin", "/lib", "/sbin"]
                            .iter()
                            .any(|s| within(&normalize(source), s)) =>
                    {
                        notes.insert(format!(
                            "// {target} is bound read-only at {at}: add rw: true there"
                        ));
                        rw.insert(normalize(source));
                    }
                    Some((FsOp::Bind { target, .. }, _)) => {
                        notes.insert(format!(
                            "// {path}: a write into the system's {target}, not granted"
                        ));
                    }
                    _ => match generalise(&path, home) {
                        Some(g) if on_host(&g) => {
                            rw.insert(g);
                        }
                        Some(g) => {
                            tmpfs.insert(g);
                        }
                        None => {
                            notes.insert(format!("// {path}: not granted (the home or /)"));
                        }
                    },
                }
            }
            Denial::Syscall {
                name, abi, detail, ..
            } => {
                if let Some(abi) = abi {
                    calls.insert(format!("s.seccomp(#{{ abi: [{abi:?}] }});"));
                    continue;
                }
                // ENOSYS by design: libc falls back to clone.
                if name == "clone3" && !p.nested_namespaces {
                    continue;
                }
                let rule = p.rules.get(name.as_str());
                let line = match (rule.and_then(|r| r.at.as_ref()), rule) {
                    (Some(at), _) => format!("// {name}: refused by the profile's own rule at {at}"),
                    (None, Some(r)) if r.group.is_some() => {
                        format!("s.seccomp_allow([{:?}]);", r.group.as_deref().unwrap_or(name))
                    }
                    _ => match name.as_str() {
                        "ioctl" => format!(
                            "// ioctl {}: a terminal ioctl moksha always refuses",
                            detail.as_deref().unwrap_or("")
                        ),
                        "socket" | "socketpair" => format!(
                            "// socket family {}: add it to s.seccomp(#{{ socket_families: [...] }})",
                            detail.as_deref().unwrap_or("?")
                        ),
                        "clone" | "clone3" | "unshare" | "setns" => {
                            "s.seccomp(#{ nested_namespaces: true });".into()
                        }
                        "personality" => "s.seccomp(#{ personality: \"any\" });".into(),
                        _ if p.mode == Mode::Allowlist => format!("s.seccomp_allow([{name:?}]);"),
                        _ => format!("// {name}: refused by the filter's defaults"),
                    },
                };
                behind.entry(line.clone()).or_default().insert(name.clone());
                calls.insert(line);
            }
            Denial::Connect { why, address } => {
                if why == "network" {
                    network.insert(
                        "s.network(\"user\");   // the internet, not the host's services (or \"host\")"
                            .into(),
                    );
                } else {
                    network.insert(format!("// connect to {address}: {why}"));
                }
            }
            Denial::Egress { target, .. } => {
                network.insert(format!("s.egress(#{{ allow: [{target:?}] }});"));
            }
            Denial::Bus { name, line } => {
                let kind = if line.starts_with("own") {
                    "own"
                } else {
                    "talk"
                };
                bus.insert(format!("//   {kind}: [{name:?}]"));
            }
        }
    }
    let ro = outermost(ro);
    let rw = outermost(rw);
    let ro: Vec<String> = ro
        .into_iter()
        .filter(|p| !rw.iter().any(|w| within(p, w)))
        .collect();
    if [
        ro.is_empty(),
        rw.is_empty(),
        tmpfs.is_empty(),
        calls.is_empty(),
    ]
    .iter()
    .all(|e| *e)
        && network.is_empty()
        && bus.is_empty()
        && notes.is_empty()
    {
        return None;
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "// moksha learn: what {} was refused, and the edits that grant it.\n\
         // Review each line: every one gives the program more. (`s` is the sandbox.)",
        plan.profile
    );
    let section = |o: &mut String, title: &str, lines: &[String]| {
        if !lines.is_empty() {
            let _ = writeln!(o, "// {title}");
            for l in lines {
                let _ = writeln!(o, "{l}");
            }
        }
    };
    let binds = |list: &[String], opts: &str| -> Vec<String> {
        list.iter()
            .map(|p| format!("s.bind({}{opts});", rhai_path(p, home)))
            .collect()
    };
    section(&mut o, "binds, read-only", &binds(&ro, ""));
    section(
        &mut o,
        "binds, read-write",
        &binds(&rw, ", #{ rw: true, replace: true }"),
    );
    let t: Vec<String> = tmpfs
        .iter()
        .map(|p| {
            format!(
                "s.tmpfs({});   // not on the host: a private, empty directory",
                rhai_path(p, home)
            )
        })
        .collect();
    section(
        &mut o,
        "directories to write that the host does not have",
        &t,
    );
    let calls: Vec<String> = calls
        .into_iter()
        .map(|l| match behind.get(&l) {
            Some(names) if !l.starts_with("//") => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                format!("{l}   // {}", names.join(" "))
            }
            _ => l,
        })
        .collect();
    section(&mut o, "syscalls", &calls);
    section(&mut o, "network", &network.into_iter().collect::<Vec<_>>());
    if !bus.is_empty() {
        let mut lines = vec!["// add to the rules given to dbus::session:".to_string()];
        lines.extend(bus);
        section(&mut o, "D-Bus", &lines);
    }
    section(
        &mut o,
        "not granted",
        &notes.into_iter().collect::<Vec<_>>(),
    );
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_generalise_to_what_a_person_grants() {
        let h = "/home/u";
        assert_eq!(
            generalise("/home/u/.config/app/a/b.conf", h).as_deref(),
            Some("/home/u/.config/app")
        );
        assert_eq!(
            generalise("/home/u/.local/share/app/db", h).as_deref(),
            Some("/home/u/.local/share/app")
        );
        assert_eq!(
            generalise("/home/u/.gitconfig", h).as_deref(),
            Some("/home/u/.gitconfig")
        );
        assert_eq!(
            generalise("/home/u/Documents/x/y.pdf", h).as_deref(),
            Some("/home/u/Documents")
        );
        assert_eq!(
            generalise("/srv/data/set/file.dat", h).as_deref(),
            Some("/srv/data/set")
        );
        assert_eq!(
            generalise("/etc/app.conf", h).as_deref(),
            Some("/etc/app.conf")
        );
        // Never the home, above it, or the root.
        assert_eq!(generalise("/home/u", h), None);
        assert_eq!(generalise("/home", h), None);
        assert_eq!(generalise("/", h), None);
        assert_eq!(
            generalise("/home/u/.config", h).as_deref(),
            Some("/home/u/.config")
        );
        assert_eq!(
            generalise("/home/u/.local/share", h).as_deref(),
            Some("/home/u/.local/share")
        );
        assert_eq!(generalise("/var", h), None, "a whole top-level directory");
    }

    #[test]
    fn the_snippet_groups_by_kind_and_merges_paths() {
        let mut p = Plan::new("t", "p.rhai");
        p.fs.push(crate::plan::Step {
            op: FsOp::Tmpfs {
                target: "/home/u".into(),
                size: None,
                mode: 0o700,
                replace: false,
            },
            at: Default::default(),
        });
        let mut t = Tally::new();
        for f in ["a", "b", "c/d"] {
            t.insert(
                Denial::NotFound {
                    call: "openat".into(),
                    path: format!("/home/u/.config/app/{f}"),
                },
                1,
            );
        }
        t.insert(
            Denial::NotFound {
                call: "openat".into(),
                path: "/srv/data/file.dat".into(),
            },
            1,
        );
        t.insert(
            Denial::NotFound {
                call: "openat".into(),
                path: "/nowhere/x".into(),
            },
            1,
        );
        t.insert(
            Denial::Syscall {
                name: "keyctl".into(),
                errno: 1,
                detail: None,
                abi: None,
            },
            4,
        );
        let on_host = |p: &str| !p.starts_with("/nowhere");
        let s = snippet(&p, &t, "/home/u", &on_host).unwrap();
        assert!(s.contains("// binds, read-only\ns.bind(home_dir() + \"/.config/app\");\ns.bind(\"/srv/data\");\n"), "{s}");
        assert!(
            s.contains("// syscalls\ns.seccomp_allow([\"@keyring\"]);   // keyctl\n"),
            "{s}"
        );
        assert!(!s.contains("nowhere"), "{s}");
        assert_eq!(s.matches("s.bind").count(), 2, "{s}");
    }
}
