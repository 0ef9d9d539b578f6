//! `moksha diff`: the changes of a store, as a list (A/M/D), a summary
//! (`--stat`) or a unified diff of text files (git's test for text: no NUL
//! byte in the first 8000; the diff is `similar`'s Myers diff of lines).

use super::scan::{Change, HostDir, Kind, Node};
use super::Result;
use std::fmt::Write;
use std::path::Path;

/// Whether `bytes` look like text.
fn is_text(bytes: &[u8]) -> bool {
    !bytes.iter().take(8000).any(|b| *b == 0)
}

/// What a change is, in a few words (kind and mode).
fn what(node: &Node) -> String {
    match node {
        Node::File { mode, .. } => format!("file {mode:04o}"),
        Node::Dir { mode, opaque } => format!(
            "directory {mode:04o}{}",
            if *opaque { ", replaced whole" } else { "" }
        ),
        Node::Symlink(to) => format!("symlink -> {}", crate::text::line(&to.to_string_lossy())),
        Node::Other(w) => format!("{w} (not applied by commit)"),
    }
}

/// The path as one line (control characters escaped).
fn shown(p: &Path) -> String {
    crate::text::line(&p.to_string_lossy()).into_owned()
}

/// `A path  (what)` lines.
pub fn list(changes: &[Change]) -> String {
    let mut o = String::new();
    for c in changes {
        let suffix = if c.node.is_dir() { "/" } else { "" };
        let _ = writeln!(
            o,
            "{} {}{suffix}  ({})",
            c.kind.letter(),
            shown(&c.path),
            what(&c.node)
        );
    }
    o
}

/// The old and new content of a file change (empty when absent).
fn contents(c: &Change, upper: &Path, host: &HostDir) -> Result<(Vec<u8>, Vec<u8>)> {
    let old = match (c.kind, host.stat(&c.path)?) {
        (Kind::Added, _) | (_, None) => Vec::new(),
        (_, Some(h)) if matches!(h.node, Node::File { .. }) => host.read(&c.path)?,
        _ => Vec::new(),
    };
    let new = match (&c.kind, &c.node) {
        (Kind::Deleted, _) => Vec::new(),
        (_, Node::File { .. }) => {
            let p = upper.join(&c.path);
            std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?
        }
        _ => Vec::new(),
    };
    Ok((old, new))
}

/// Lines removed and added.
fn counts(old: &[u8], new: &[u8]) -> (usize, usize) {
    use similar::{ChangeTag, TextDiff};
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    let diff = TextDiff::from_lines(&old[..], &new[..]);
    let (mut minus, mut plus) = (0, 0);
    for ch in diff.iter_all_changes() {
        match ch.tag() {
            ChangeTag::Delete => minus += 1,
            ChangeTag::Insert => plus += 1,
            ChangeTag::Equal => {}
        }
    }
    (minus, plus)
}

/// `--stat`: one line per file with its lines removed/added, and a total.
pub fn stat(changes: &[Change], upper: &Path, host: &HostDir) -> Result<String> {
    let mut o = String::new();
    let (mut a, mut m, mut d) = (0, 0, 0);
    for c in changes {
        match c.kind {
            Kind::Added => a += 1,
            Kind::Modified => m += 1,
            Kind::Deleted => d += 1,
        }
        let detail = if matches!(c.node, Node::File { .. }) {
            let (old, new) = contents(c, upper, host)?;
            if is_text(&old) && is_text(&new) {
                let (minus, plus) = counts(&old, &new);
                format!("{} +{plus} -{minus}", c.kind.letter())
            } else {
                format!(
                    "{} binary, {} -> {} bytes",
                    c.kind.letter(),
                    old.len(),
                    new.len()
                )
            }
        } else {
            format!("{} {}", c.kind.letter(), what(&c.node))
        };
        let _ = writeln!(o, " {} | {detail}", shown(&c.path));
    }
    let _ = writeln!(
        o,
        " {} changes: {a} added, {m} modified, {d} deleted",
        changes.len()
    );
    Ok(o)
}

/// A unified diff of every text file, and a line for each other change.
pub fn unified(changes: &[Change], upper: &Path, host: &HostDir) -> Result<String> {
    let mut o = String::new();
    for c in changes {
        let p = shown(&c.path);
        if !matches!(c.node, Node::File { .. }) {
            let _ = writeln!(o, "{} {p}  ({})", c.kind.letter(), what(&c.node));
            continue;
        }
        let (old, new) = contents(c, upper, host)?;
        let (a, b) = match c.kind {
            Kind::Added => ("/dev/null".to_string(), format!("b/{p}")),
            Kind::Deleted => (format!("a/{p}"), "/dev/null".to_string()),
            Kind::Modified => (format!("a/{p}"), format!("b/{p}")),
        };
        let _ = writeln!(o, "diff {} {p}  ({})", c.kind.letter(), what(&c.node));
        if !(is_text(&old) && is_text(&new)) {
            let _ = writeln!(o, "Binary files {a} and {b} differ");
            continue;
        }
        if old == new {
            continue; // only the mode changed
        }
        // Shown as text: bytes that are not UTF-8 as U+FFFD.
        let (old, new) = (String::from_utf8_lossy(&old), String::from_utf8_lossy(&new));
        let diff = similar::TextDiff::from_lines(&old[..], &new[..]);
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header(&a, &b)
            .to_string();
        o.push_str(&text);
        if !text.ends_with('\n') {
            o.push('\n');
        }
    }
    Ok(o)
}
