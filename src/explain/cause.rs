//! The one line moksha prints when the program dies of SIGSYS, outside
//! trace mode: which call the filter kills, and the profile line to change.
//!
//! moksha's default filter never kills: it refuses with an errno (EPERM,
//! ENOSYS, EAFNOSUPPORT), which the program sees as a failed call and
//! reports itself, or works around. SIGSYS comes only from a rule the
//! profile wrote with `kill` or `trap` (or an allow-list whose unlisted
//! calls are killed). The kernel tells a waiting parent the signal, not the
//! call, so the line names the calls the policy kills: exactly, when there
//! is one; otherwise the candidates, and `--trace` names the one.

use crate::policy::seccomp::{Action, Mode, Seccomp};

fn kills(a: Action) -> bool {
    matches!(a, Action::Kill | Action::Trap)
}

/// The line for a program killed by SIGSYS under policy `p`.
pub fn sigsys(p: &Seccomp) -> String {
    let mut calls: Vec<String> = Vec::new();
    for (name, rule) in &p.rules {
        let by_rule = rule.action.is_some_and(kills);
        let by_cond = rule.when.iter().any(|c| kills(c.action));
        if !(by_rule || by_cond) {
            continue;
        }
        let at = rule
            .at
            .as_ref()
            .map_or("the default policy".to_string(), |a| a.to_string());
        let group = rule
            .group
            .as_deref()
            .map(|g| format!(" by the {g} group"))
            .unwrap_or_default();
        let when = if by_rule { "" } else { " for some arguments" };
        let allow = rule.group.as_deref().unwrap_or(name);
        calls.push(format!(
            "{name} (killed{when}{group} at {at}; allow with s.seccomp_allow([\"{allow}\"]))"
        ));
    }
    let unlisted = p.mode == Mode::Allowlist && kills(p.unlisted);
    let tail = "; `moksha exec --trace` names the call";
    match (calls.len(), unlisted) {
        (0, false) => "killed by SIGSYS, but no rule of the seccomp policy kills or traps: the \
                       program (or another process) sent it"
            .into(),
        (0, true) => format!(
            "killed by seccomp: a call the allow-list does not name (unlisted calls are killed{}){tail}",
            p.mode_at
                .as_ref()
                .map(|a| format!(", set at {a}"))
                .unwrap_or_default()
        ),
        (1, false) => format!("killed by seccomp: {}", calls[0]),
        _ => {
            let shown: Vec<&str> = calls.iter().take(4).map(String::as_str).collect();
            let more = calls.len().saturating_sub(4);
            format!(
                "killed by seccomp: one of {}{}{}{tail}",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
                if unlisted {
                    ", or a call the allow-list does not name"
                } else {
                    ""
                }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::located::Pos;

    fn at(line: usize) -> Pos {
        Pos::in_test(line, 3)
    }

    #[test]
    fn one_killing_rule_is_named_with_its_line_and_fix() {
        let mut p = Seccomp::default();
        p.set(&["@keyring".into()], Action::Kill, None, &at(4))
            .unwrap();
        let line = sigsys(&p);
        assert!(
            line.starts_with("killed by seccomp: one of add_key"),
            "{line}"
        );
        assert!(line.contains("s.seccomp_allow([\"@keyring\"])"), "{line}");
        let mut p = Seccomp::default();
        p.set(&["keyctl".into()], Action::Kill, None, &at(4))
            .unwrap();
        assert_eq!(
            sigsys(&p),
            "killed by seccomp: keyctl (killed at p.rhai:4:3; allow with \
             s.seccomp_allow([\"keyctl\"]))"
        );
    }

    #[test]
    fn the_default_policy_never_kills() {
        assert!(sigsys(&Seccomp::default()).contains("no rule of the seccomp policy kills"));
        let mut p = Seccomp::empty();
        p.set_mode(Mode::Allowlist, at(2));
        p.unlisted = Action::Kill;
        let line = sigsys(&p);
        assert!(
            line.contains("allow-list does not name") && line.contains("p.rhai:2:3"),
            "{line}"
        );
    }
}
