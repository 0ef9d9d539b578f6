//! Writing a parsed Firejail profile as Rhai: the profile, one module per
//! included file (`firejail/NAME.rhai`, exporting its rules as `RULES`),
//! every line in order with Firejail's own words, comments kept, what
//! moksha cannot do kept as a comment with the reason. Every string from
//! the profile is emitted as an escaped Rhai string literal and every
//! comment has its line breaks and control characters replaced, so no
//! profile text can become Rhai code.

use super::directives::Status;
use super::parse::{Item, Tree};
use std::collections::HashSet;

/// The first words of every file the importer writes: what it may overwrite.
pub const MARKER: &str = "imported by `moksha import firejail`";

/// Lines translated, approximated and left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub translated: usize,
    pub approximated: usize,
    pub unsupported: usize,
    /// `file:line: directive — why`, for each unsupported line.
    pub left_out: Vec<String>,
}

impl Summary {
    pub fn lines(&self) -> usize {
        self.translated + self.approximated + self.unsupported
    }

    pub fn add(&mut self, other: &Summary) {
        self.translated += other.translated;
        self.approximated += other.approximated;
        self.unsupported += other.unsupported;
        self.left_out.extend(other.left_out.iter().cloned());
    }
}

/// A profile as Rhai: the profile's text, and its modules by import path
/// (`firejail/disable-common.inc`), in the order they were met.
#[derive(Clone, Debug)]
pub struct Emitted {
    pub main: String,
    pub modules: Vec<(String, String)>,
    /// The summary of each file, by the same index as the tree's files.
    pub per_file: Vec<Summary>,
}

impl Emitted {
    /// The summary over the profile and everything it includes.
    pub fn summary(&self) -> Summary {
        let mut all = Summary::default();
        for s in &self.per_file {
            all.add(s);
        }
        all
    }
}

/// A Rhai string literal holding exactly `text`.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f || is_line_break(c) => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_line_break(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Text safe inside a `//` comment: one line, no control characters.
pub fn comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || is_line_break(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// A Rhai identifier for a module alias, unique among `taken`.
fn alias(key: &str, taken: &mut HashSet<String>) -> String {
    let base = key.rsplit('/').next().unwrap_or(key);
    let mut id: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) || id.starts_with('_') {
        id = format!("f_{id}");
    }
    let mut unique = id.clone();
    let mut n = 2;
    while taken.contains(&unique) || unique == "firejail" || unique == "s" {
        unique = format!("{id}_{n}");
        n += 1;
    }
    taken.insert(unique.clone());
    unique
}

/// `text` with every character but ASCII letters, digits, `-`, `_` and
/// `.` replaced by `_`, never empty and never starting with `.`: a name a
/// profile or module may have.
pub fn plain_name(text: &str) -> String {
    let name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("_{name}")
    } else {
        name
    }
}

/// The module file name for an included file's `key` (its file name, or
/// the name with a short hash for a file outside the profile directories).
pub fn module_path(key: &str) -> String {
    let mut name = plain_name(key);
    while name.contains("..") {
        name = name.replace("..", "._");
    }
    format!("firejail/{name}")
}

/// Renders the profile `name` read as `tree`; `keys[i]` names the module
/// of file i (files after the first). `source` is how the profile file is
/// shown in the header.
pub fn profile_with_keys(name: &str, tree: &Tree, source: &str, keys: &[String]) -> Emitted {
    let mut taken = HashSet::new();
    let aliases: Vec<String> = (0..tree.files.len())
        .map(|i| {
            if i == 0 {
                String::new()
            } else {
                alias(&keys[i], &mut taken)
            }
        })
        .collect();
    let mut per_file = Vec::new();
    let mut bodies = Vec::new();
    for file in &tree.files {
        let shown = file.path.display().to_string();
        let (body, imports, summary) = rules(&shown, &file.items, keys, &aliases);
        per_file.push(summary);
        bodies.push((body, imports));
    }
    let all = {
        let mut s = Summary::default();
        for f in &per_file {
            s.add(f);
        }
        s
    };
    let mut main = String::new();
    main.push_str(&format!(
        "// {}: the Firejail profile {}, {MARKER}.\n",
        comment(name),
        comment(source)
    ));
    main.push_str(
        "// Edit it as you like. The rules keep Firejail's directives and meaning; the stdlib's\n\
         // firejail module gives them moksha's form (`moksha stdlib show firejail`,\n\
         // docs/firejail.md). Each included file is a module in firejail/ beside this one.\n",
    );
    main.push_str(&format!(
        "// Run: moksha exec {} -- ARGS (with no program of that name, the first argument is the program).\n",
        comment(name)
    ));
    main.push_str(&format!(
        "// {} directive lines: {} translated, {} approximated, {} not supported (kept as comments).\n",
        all.lines(),
        all.translated,
        all.approximated,
        all.unsupported
    ));
    main.push_str("import \"firejail\" as firejail;\n");
    for line in &bodies[0].1 {
        main.push_str(line);
    }
    main.push_str(&format!("\nlet s = sandbox({});\n", string(name)));
    main.push_str("firejail::apply(s, [\n");
    main.push_str(&bodies[0].0);
    main.push_str("]);\n");
    main.push_str(&format!("firejail::exec(s, {}, ARGS);\n", string(name)));

    let mut modules = Vec::new();
    for (i, file) in tree.files.iter().enumerate().skip(1) {
        let mut text = String::new();
        text.push_str(&format!(
            "// {}: the Firejail file {}, {MARKER}\n// for {}.\n",
            comment(&keys[i]),
            comment(&file.path.display().to_string()),
            comment(name)
        ));
        for line in &bodies[i].1 {
            text.push_str(line);
        }
        text.push_str("\nexport const RULES = [\n");
        text.push_str(&bodies[i].0);
        text.push_str("];\n");
        modules.push((module_path(&keys[i]), text));
    }
    Emitted {
        main,
        modules,
        per_file,
    }
}

/// `profile_with_keys` with each included file's name as its key.
pub fn profile(name: &str, tree: &Tree, source: &str) -> Emitted {
    let keys: Vec<String> = tree
        .files
        .iter()
        .map(|f| {
            f.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into())
        })
        .collect();
    profile_with_keys(name, tree, source, &keys)
}

/// The rules of one file: the array's lines, the imports they need, and
/// the file's summary.
fn rules(
    shown: &str,
    items: &[Item],
    keys: &[String],
    aliases: &[String],
) -> (String, Vec<String>, Summary) {
    let mut body = String::new();
    let mut imports = Vec::new();
    let mut summary = Summary::default();
    let mut blank = false;
    for item in items {
        match item {
            Item::Blank => {
                if !blank && !body.is_empty() {
                    body.push('\n');
                }
                blank = true;
                continue;
            }
            Item::Comment(c) => body.push_str(&format!("    //{}\n", comment(c))),
            Item::Include {
                cond,
                written,
                file: Some(f),
                ..
            } => {
                summary.translated += 1;
                let import = format!(
                    "import {} as {};\n",
                    string(&module_path(&keys[*f])),
                    aliases[*f]
                );
                if !imports.contains(&import) {
                    imports.push(import);
                }
                let rule = format!("[\"include\", {}, {}::RULES]", string(written), aliases[*f]);
                body.push_str(&format!("    {},\n", conditional(cond, &rule)));
            }
            Item::Include {
                cond,
                written,
                file: None,
                ..
            } => {
                summary.translated += 1;
                body.push_str(&format!(
                    "    // {}include {}: no such file (a .local file is optional: write one in ~/.config/firejail to add rules)\n",
                    cond.as_ref().map(|c| format!("?{}: ", comment(c))).unwrap_or_default(),
                    comment(written)
                ));
            }
            Item::Missing {
                line,
                written,
                searched,
            } => {
                // Counted as left out: the rules of that file are not there.
                summary.unsupported += 1;
                let why = format!(
                    "the file was not found at import (looked for {}); Firejail refuses to start",
                    searched.join(", ")
                );
                body.push_str(&format!(
                    "    [\"missing-include\", {}, {}],\n",
                    string(written),
                    string(&why)
                ));
                summary.left_out.push(format!(
                    "{}:{line}: include {} — {}",
                    comment(shown),
                    comment(written),
                    comment(&why)
                ));
            }
            Item::Rule {
                line,
                cond,
                name,
                arg,
                status,
            } => {
                let rule = format!("[{}, {}]", string(name), string(arg));
                let rule = conditional(cond, &rule);
                match status {
                    Status::Translated => {
                        summary.translated += 1;
                        body.push_str(&format!("    {rule},\n"));
                    }
                    Status::Approximated(why) => {
                        summary.approximated += 1;
                        body.push_str(&format!("    {rule}, // approximated: {why}\n"));
                    }
                    Status::Unsupported(why) => {
                        summary.unsupported += 1;
                        let text = if arg.is_empty() {
                            name.clone()
                        } else {
                            format!("{name} {arg}")
                        };
                        let text = match cond {
                            Some(c) => format!("?{c}: {text}"),
                            None => text,
                        };
                        body.push_str(&format!(
                            "    // firejail: {} — not supported: {why}\n",
                            comment(&text)
                        ));
                        summary.left_out.push(format!(
                            "{}:{line}: {} — {why}",
                            comment(shown),
                            comment(&text)
                        ));
                    }
                }
            }
        }
        blank = false;
    }
    (body, imports, summary)
}

fn conditional(cond: &Option<String>, rule: &str) -> String {
    match cond {
        Some(c) => format!("[{}, {rule}]", string(&format!("?{c}"))),
        None => rule.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::parse::{parse_text, File};

    /// Evaluates an emitted rules array with a bare Rhai engine.
    fn eval_rules(body: &str) -> rhai::Array {
        let engine = rhai::Engine::new();
        engine
            .eval::<rhai::Array>(&format!("[\n{body}]"))
            .unwrap_or_else(|e| panic!("{e}\n{body}"))
    }

    #[test]
    fn strings_round_trip_as_data() {
        let nasty = [
            "a\"b",
            "a\\b",
            "x\n]); s.exec([\"sh\"]); //",
            "${HOME}/`x`",
            "\u{2028}\u{85}\r\t\u{7f}\u{1}",
            "é\u{10FF80}",
        ];
        for n in nasty {
            let engine = rhai::Engine::new();
            let back: String = engine.eval(&string(n)).unwrap();
            assert_eq!(back, n);
        }
    }

    #[test]
    fn emitted_rules_hold_the_profile_text_exactly() {
        let text = "# comment \u{2028} ]); evil()\nblacklist /a\"b\\c\nwhitelist ${HOME}/x y\n?BROWSER_DISABLE_U2F: nou2f\nx11 xpra\n";
        let items = parse_text("t", text).unwrap();
        let tree = Tree {
            files: vec![File {
                path: "/p/t.profile".into(),
                items,
            }],
        };
        let out = profile("t", &tree, "/p/t.profile");
        let start = out.main.find("firejail::apply(s, [\n").unwrap() + 21;
        let end = out.main.rfind("]);").unwrap();
        let rules = eval_rules(&out.main[start..end]);
        assert_eq!(rules.len(), 3, "{}", out.main);
        let first = rules[0].clone().into_array().unwrap();
        assert_eq!(first[1].clone().into_string().unwrap(), "/a\"b\\c");
        assert!(out.main.contains("// firejail: x11 xpra — not supported"));
        let s = out.summary();
        assert_eq!((s.translated, s.approximated, s.unsupported), (3, 0, 1));
    }

    #[test]
    fn module_names_stay_importable() {
        assert_eq!(
            module_path("disable-common.inc"),
            "firejail/disable-common.inc"
        );
        assert_eq!(module_path("../x y"), "firejail/_.__x_y");
        assert_eq!(module_path(".."), "firejail/_._");
        let mut taken = HashSet::new();
        assert_eq!(alias("firejail/7z.profile", &mut taken), "f_7z_profile");
        assert_eq!(alias("firejail/7z.profile", &mut taken), "f_7z_profile_2");
    }
}
