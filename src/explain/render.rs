//! The text and JSON forms of `moksha explain`. Every value from a profile
//! is shown on one line (`text::line`); JSON goes through `text::json`.

use super::{Diff, Grant, Kind, Report};
use crate::text::line as one;
use std::fmt::Write;

/// The short name of a section, in score items and diffs.
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Namespace => "namespace",
        Kind::File => "file",
        Kind::Device => "device",
        Kind::Env => "env",
        Kind::Network => "network",
        Kind::Dbus => "dbus",
        Kind::Syscalls => "syscalls",
        Kind::Capability => "capability",
        Kind::Confinement => "confinement",
        Kind::Limit => "limit",
        Kind::Helper => "helper",
        Kind::Warning => "warning",
    }
}

fn rows(o: &mut String, grants: &[&Grant], indent: &str) {
    let width = grants
        .iter()
        .map(|g| crate::text::width(&g.key))
        .max()
        .unwrap_or(0)
        .min(40);
    for g in grants {
        let key = one(&g.key);
        let pad = width.saturating_sub(crate::text::width(&g.key));
        let points = if g.points > 0 {
            format!("  +{}", g.points)
        } else {
            String::new()
        };
        if g.what.is_empty() {
            let _ = writeln!(o, "{indent}{key}    [{}]{points}", one(&g.at));
            continue;
        }
        let _ = writeln!(
            o,
            "{indent}{key}{}  {}    [{}]{points}",
            " ".repeat(pad),
            one(&g.what),
            one(&g.at)
        );
    }
}

/// `moksha explain PROFILE`.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "sandbox {:?} (profile {}): exposure {} (0 is the strictest; docs/explain.md)",
        r.sandbox,
        one(&r.profile),
        r.score.total
    );
    let mut kinds: Vec<Kind> = r.grants.iter().map(|g| g.kind).collect();
    kinds.dedup();
    for kind in kinds {
        let _ = writeln!(o, "\n{}", kind.title());
        let list: Vec<&Grant> = r.grants.iter().filter(|g| g.kind == kind).collect();
        rows(&mut o, &list, "  ");
    }
    if !r.score.items.is_empty() {
        let _ = writeln!(o, "\nexposure {}:", r.score.total);
        for (points, what) in &r.score.items {
            let _ = writeln!(o, "  {points:>3}  {}", one(what));
        }
    }
    o
}

/// How a diff names its two sides: `moksha explain --diff` says A and B,
/// `moksha lib update` before and after.
pub struct Sides {
    pub a: &'static str,
    pub b: &'static str,
    pub only_a: &'static str,
    pub only_b: &'static str,
}

pub const A_B: Sides = Sides {
    a: "A",
    b: "B",
    only_a: "only A grants",
    only_b: "only B grants",
};

pub const BEFORE_AFTER: Sides = Sides {
    a: "before",
    b: "after",
    only_a: "taken away by the update (only before grants)",
    only_b: "added by the update (only after grants)",
};

/// `moksha explain A --diff B`.
pub fn text_diff(d: &Diff) -> String {
    text_diff_as(d, &A_B)
}

/// A diff, its sides named by `sides`.
pub fn text_diff_as(d: &Diff, sides: &Sides) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} (exposure {})\n{}: {} (exposure {})",
        sides.a,
        one(&d.a),
        d.score_a,
        sides.b,
        one(&d.b),
        d.score_b
    );
    if d.is_empty() {
        let _ = writeln!(o, "\nthe same grants");
        return o;
    }
    let section = |o: &mut String, title: &str, list: &[Grant]| {
        if list.is_empty() {
            return;
        }
        let _ = writeln!(o, "\n{title}");
        let mut kinds: Vec<Kind> = list.iter().map(|g| g.kind).collect();
        kinds.dedup();
        for kind in kinds {
            let _ = writeln!(o, "  {}", kind_name(kind));
            let l: Vec<&Grant> = list.iter().filter(|g| g.kind == kind).collect();
            rows(o, &l, "    ");
        }
    };
    section(&mut o, sides.only_a, &d.only_a);
    section(&mut o, sides.only_b, &d.only_b);
    if !d.changed.is_empty() {
        let _ = writeln!(o, "\nboth, differently");
        for (a, b) in &d.changed {
            let _ = writeln!(o, "  {} {}", kind_name(a.kind), one(&a.key));
            let _ = writeln!(o, "    {}: {}    [{}]", sides.a, one(&a.what), one(&a.at));
            let _ = writeln!(o, "    {}: {}    [{}]", sides.b, one(&b.what), one(&b.at));
        }
    }
    o
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_string_pretty(v) {
        Ok(s) => crate::text::json(&s).into_owned(),
        // Plain data of strings and numbers: serializing cannot fail.
        Err(e) => format!("{{\"error\": {:?}}}", e.to_string()),
    }
}

pub fn json(r: &Report) -> String {
    to_json(r)
}

pub fn json_diff(d: &Diff) -> String {
    to_json(d)
}
