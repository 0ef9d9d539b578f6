//! The security part of `moksha plan`: the seccomp policy as it will be
//! compiled, what landlock will enforce on this kernel, limits and timeout.

use super::bpf::{self, Arch};
use super::landlock::{self, Landlock, Ruleset};
use super::seccomp::{family_name, Action, Base, Mode, Seccomp};
use std::collections::BTreeMap;
use std::fmt::Write;

fn wrap(o: &mut String, indent: &str, words: &[String]) {
    let mut line = String::from(indent);
    for w in words {
        if line.len() + w.len() + 1 > 96 && !line.trim().is_empty() {
            let _ = writeln!(o, "{}", line.trim_end());
            line = format!("{indent}    ");
        }
        line.push_str(w);
        line.push(' ');
    }
    if !line.trim().is_empty() {
        let _ = writeln!(o, "{}", line.trim_end());
    }
}

/// The seccomp lines of `moksha plan`.
pub fn seccomp(o: &mut String, p: &Seccomp) {
    let arch = Arch::native();
    let size = arch
        .map(|a| match bpf::compile(p, a) {
            Ok(prog) => format!("{} instructions for {}", prog.len(), a.name()),
            Err(e) => format!("does not compile: {e}"),
        })
        .unwrap_or_else(|| "no compiler for this architecture".into());
    let _ = writeln!(
        o,
        "  seccomp: {} from {}, {size}",
        match p.mode {
            Mode::Denylist => "deny-list (what is not denied runs)",
            Mode::Allowlist => "allow-list (what is not allowed is refused)",
        },
        match p.base {
            Base::Default => "moksha's default",
            Base::Empty => "an empty policy",
        }
    );
    if p.mode == Mode::Allowlist {
        let _ = writeln!(
            o,
            "    unlisted calls: {}{}",
            p.unlisted.describe(),
            p.mode_at
                .as_ref()
                .map(|a| format!("    [{a}]"))
                .unwrap_or_default()
        );
    }
    // Rules of the default policy, grouped by action and group.
    let mut grouped: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut own: Vec<String> = Vec::new();
    for (name, rule) in &p.rules {
        if let Some(at) = &rule.at {
            let mut line = format!(
                "{name}: {}",
                rule.action
                    .map_or("as the mode says".into(), Action::describe)
            );
            for c in &rule.when {
                let _ = write!(line, "; {} when {}", c.action.describe(), c.when.describe());
            }
            own.push(format!("{line}    [{at}]"));
            continue;
        }
        let action = rule.action.map_or("-".into(), Action::describe);
        grouped
            .entry((
                action,
                rule.group.as_deref().unwrap_or_default().to_string(),
            ))
            .or_default()
            .push(name.to_string());
    }
    if !grouped.is_empty() {
        let _ = writeln!(o, "    from the default policy:");
        for ((action, group), names) in &grouped {
            let mut words = vec![format!("{action:<6} {group}:")];
            words.extend(names.iter().cloned());
            wrap(o, "      ", &words);
        }
    }
    let _ = writeln!(o, "    argument filters:");
    let _ = writeln!(
        o,
        "      ioctl TIOCSTI, TIOCLINUX, TIOCSETD: EPERM (always: no typing into the terminal, \
         no other line discipline)"
    );
    match &p.socket_families {
        Some(f) => {
            let names: Vec<String> = f.iter().map(|n| family_name(*n)).collect();
            let _ = writeln!(
                o,
                "      socket: families other than {}: EAFNOSUPPORT",
                names.join(", ")
            );
        }
        None => {
            let _ = writeln!(o, "      socket: any family");
        }
    }
    if p.nested_namespaces {
        let _ = writeln!(
            o,
            "      namespaces: the program may create them{}",
            p.nested_namespaces_at
                .as_ref()
                .map(|a| format!("    [{a}]"))
                .unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            o,
            "      namespaces: clone/unshare with CLONE_NEW* flags and setns: EPERM; clone3: ENOSYS"
        );
    }
    let _ = writeln!(
        o,
        "      personality: {}",
        if p.any_personality {
            "any value"
        } else {
            "values other than PER_LINUX, PER_LINUX32, UNAME26 and the query: EPERM"
        }
    );
    let abis: Vec<&str> = [("i386", p.i386), ("x32", p.x32)]
        .iter()
        .filter(|(_, on)| !on)
        .map(|(n, _)| *n)
        .collect();
    if arch == Some(Arch::X86_64) {
        let _ = writeln!(
            o,
            "    32-bit entry points: {}",
            if abis.is_empty() {
                "i386 and x32 filtered like native calls".to_string()
            } else {
                format!("{} refused (EPERM)", abis.join(" and "))
            }
        );
    }
    if !own.is_empty() {
        let _ = writeln!(o, "    the profile's rules:");
        for line in own {
            let _ = writeln!(o, "      {line}");
        }
    }
}

/// The landlock lines of `moksha plan`: the settings `ll`, reduced to
/// `ruleset` on this kernel's ABI `abi`.
pub fn landlock(o: &mut String, ll: &Landlock, ruleset: Option<&Ruleset>, abi: u32) {
    if !ll.enabled {
        let _ = writeln!(o, "  landlock: off");
        return;
    }
    let required = ll
        .min_abi
        .as_ref()
        .map(|m| format!("required: ABI {} or newer    [{}]", m.abi, m.at))
        .unwrap_or_else(|| "best effort".into());
    let Some(rs) = ruleset else {
        return;
    };
    if abi == 0 {
        let _ = writeln!(
            o,
            "  landlock: this kernel has none ({required}); nothing is enforced"
        );
        return;
    }
    let _ = writeln!(o, "  landlock: ABI {abi} used (this kernel's), {required}");
    if let Some(min) = &ll.min_abi {
        if abi < min.abi {
            let _ = writeln!(
                o,
                "    error: this kernel is older than the profile requires; exec will refuse to run"
            );
        }
    }
    if rs.handled_fs == 0 {
        let _ = writeln!(
            o,
            "    filesystem: not restricted (no mount namespace, no rules)"
        );
    } else {
        let _ = writeln!(o, "    filesystem: nothing but");
        for r in &rs.fs {
            let _ = writeln!(
                o,
                "      {:<24} {:<24} ({})",
                r.path,
                landlock::access_names(r.access),
                r.origin
            );
        }
    }
    let ports = |v: &Option<Vec<u16>>| match v {
        None => "any port".to_string(),
        Some(p) if p.is_empty() => "no port".to_string(),
        Some(p) => p
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    if rs.handled_net != 0 || ll.bind_tcp.is_some() || ll.connect_tcp.is_some() {
        let _ = writeln!(
            o,
            "    tcp: bind {}; connect {}",
            ports(&ll.bind_tcp),
            ports(&ll.connect_tcp)
        );
    }
    let mut scopes = Vec::new();
    if rs.scoped & landlock::SCOPE_ABSTRACT_UNIX_SOCKET != 0 {
        scopes.push("abstract unix sockets");
    }
    if rs.scoped & landlock::SCOPE_SIGNAL != 0 {
        scopes.push("signals");
    }
    if !scopes.is_empty() {
        let _ = writeln!(o, "    scoped to the sandbox: {}", scopes.join(", "));
    }
    if !rs.left_out.is_empty() {
        let _ = writeln!(o, "    left out on this kernel: {}", rs.left_out.join("; "));
    }
}
