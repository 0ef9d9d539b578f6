//! The layering, checked: which top-level modules may use which, read from
//! the source. The pure layers (`plan`, `policy`, `located`, `suggest`, `text`) make no system
//! call and read nothing from the host; the modules do not import each
//! other in a circle, so each has one place in the pipeline
//! (script → plan → validate/prepare → launch → state).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules and the files that make them up.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str();
            let name = first.to_string_lossy().trim_end_matches(".rs").to_string();
            if ["lib", "main", "architecture"].contains(&name.as_str()) {
                continue;
            }
            out.entry(name).or_default().push(path);
        }
    }
    out
}

/// The source of a file without its `#[cfg(test)] mod tests` (tests may
/// build plans from anywhere).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Which top-level modules each one names as `crate::X`.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let mut out = BTreeMap::new();
    for (name, files) in &mods {
        let mut used = BTreeSet::new();
        for f in files {
            let code = code_of(f);
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + 7..];
                let end = rest
                    .find(|c: char| !c.is_alphanumeric() && c != '_')
                    .unwrap_or(rest.len());
                let other = &rest[..end];
                if other != name && mods.contains_key(other) {
                    used.insert(other.to_string());
                }
            }
        }
        out.insert(name.clone(), used);
    }
    out
}

#[test]
fn no_module_imports_another_in_a_circle() {
    let graph = uses();
    // Depth-first search for a back edge, with the path for the message.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import circle: {} -> {node}", path[at..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
    // The pipeline's order, as the design has it.
    let allowed: [(&str, &[&str]); 5] = [
        ("text", &[]),
        ("located", &["text"]),
        ("suggest", &[]),
        ("policy", &["located", "suggest", "text"]),
        ("plan", &["located", "policy", "suggest", "text"]),
    ];
    for (module, may) in allowed {
        let used = &graph[module];
        let extra: Vec<&String> = used.iter().filter(|u| !may.contains(&u.as_str())).collect();
        assert!(extra.is_empty(), "{module} uses {extra:?}");
    }
}

#[test]
fn the_pure_layers_make_no_system_call_and_read_nothing_from_the_host() {
    let forbidden = [
        "unsafe",
        "nix::",
        "std::fs",
        "std::env",
        "std::process",
        "TcpStream",
        "UdpSocket",
        "File::",
        "crate::sys",
        "crate::script",
        "libc::syscall",
        "libc::open",
    ];
    let mods = modules();
    for module in ["plan", "policy", "located", "suggest", "text"] {
        for f in &mods[module] {
            let code = code_of(f);
            for word in forbidden {
                assert!(
                    !code.contains(word),
                    "{} uses {word}: `{module}` must stay pure (pass what it needs in)",
                    f.display()
                );
            }
        }
    }
}
