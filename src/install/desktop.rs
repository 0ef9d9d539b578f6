//! Desktop entries (the freedesktop.org Desktop Entry Specification):
//! finding an application's `.desktop` files and rewriting a copy so that
//! every way of launching it goes through moksha. Pure text work.
//!
//! An `Exec` value is unescaped twice: first as a string (`\s`, `\n`,
//! `\t`, `\r`, `\\`), then as a command line (arguments separated by
//! spaces, double quotes, and inside them `\"`, `` \` ``, `\$`, `\\`).
//! Field codes (`%u`, `%F`, ...) are plain arguments and are kept as they
//! are, so the launcher still expands them.

use std::path::{Path, PathBuf};

/// Characters that make an argument need quotes (the specification's
/// reserved characters).
const RESERVED: &[char] = &[
    ' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')',
    '`',
];

/// Splits an `Exec` value (as written in the file) into arguments.
pub fn split_exec(value: &str) -> Result<Vec<String>, String> {
    let line = unescape_string(value);
    let mut args = Vec::new();
    let mut chars = line.chars();
    let mut arg: Option<String> = None;
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(a) = arg.take() {
                    args.push(a);
                }
            }
            '"' => {
                let a = arg.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated quote in Exec={value}")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '`' | '$' | '\\')) => a.push(e),
                            Some(other) => {
                                a.push('\\');
                                a.push(other);
                            }
                            None => return Err(format!("unterminated quote in Exec={value}")),
                        },
                        Some(other) => a.push(other),
                    }
                }
            }
            other => arg.get_or_insert_with(String::new).push(other),
        }
    }
    args.extend(arg);
    Ok(args)
}

/// The string-level escapes of a value.
fn unescape_string(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            // Not a string escape: the command-line level reads it.
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Joins arguments into an `Exec` value that `split_exec` reads back.
pub fn join_exec(args: &[String]) -> String {
    let line: Vec<String> = args
        .iter()
        .map(|a| {
            if !a.is_empty() && !a.contains(RESERVED) {
                return a.clone();
            }
            let mut q = String::from("\"");
            for c in a.chars() {
                if matches!(c, '"' | '`' | '$' | '\\') {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        })
        .collect();
    escape_string(&line.join(" "))
}

fn escape_string(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The program an `Exec` command runs, and where its arguments start:
/// `env VAR=value ... program args` runs `program`.
fn program_index(args: &[String]) -> Option<usize> {
    let mut i = 0;
    if args.first().map(String::as_str) == Some("env") {
        i = 1;
        while args
            .get(i)
            .is_some_and(|a| a.contains('=') && !a.starts_with('-'))
        {
            i += 1;
        }
    }
    (i < args.len()).then_some(i)
}

pub fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// A key=value line: the key (trimmed) and the value (leading spaces
/// trimmed, as the specification says).
fn key_value(line: &str) -> Option<(&str, &str)> {
    if line.starts_with('#') || line.starts_with('[') {
        return None;
    }
    let (k, v) = line.split_once('=')?;
    Some((k.trim(), v.trim_start()))
}

/// What an entry's `[Desktop Entry]` group says about launching it.
#[derive(Debug, Default)]
struct Entry {
    exec: Option<String>,
    hidden: bool,
    application: bool,
}

fn main_entry(text: &str) -> Entry {
    let mut entry = Entry::default();
    let mut in_main = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with('[') {
            in_main = line == "[Desktop Entry]";
            continue;
        }
        match key_value(line) {
            Some(("Exec", v)) if in_main => entry.exec = Some(v.to_string()),
            Some(("Hidden", v)) if in_main => entry.hidden = v == "true",
            Some(("Type", v)) if in_main => entry.application = v == "Application",
            _ => {}
        }
    }
    entry
}

/// Whether a desktop file launches `program` (compared by base name: the
/// file may name `/usr/lib/firefox-esr/firefox-esr` where the profile runs
/// `firefox-esr`). Hidden entries count as deleted.
pub fn launches(text: &str, program: &str) -> bool {
    let entry = main_entry(text);
    if entry.hidden || !entry.application {
        return false;
    }
    let Some(args) = entry.exec.and_then(|e| split_exec(&e).ok()) else {
        return false;
    };
    program_index(&args).is_some_and(|i| base_name(&args[i]) == base_name(program))
}

/// The copy of a desktop file that runs through moksha: every `Exec` line,
/// in every group (`[Desktop Action ...]` too), becomes
/// `MOKSHA exec PROFILE -- ARGS` with the original arguments and field
/// codes; `TryExec` names the moksha binary; D-Bus activation, which would
/// start the program without `Exec`, is turned off. Every other line is
/// kept as it is. An `Exec` that runs another program is refused: it cannot
/// be put in this profile's sandbox, and leaving it would launch it outside.
pub fn rewrite(
    text: &str,
    source: &Path,
    profile: &str,
    program: &str,
    moksha: &Path,
) -> Result<String, String> {
    let moksha_text = moksha.to_string_lossy().into_owned();
    let mut out = format!(
        "# Written by `moksha install {profile}` from {}:\n\
         # every Exec runs the program in moksha's {profile:?} sandbox.\n\
         # `moksha uninstall {profile}` removes this file (unless you change it).\n",
        source.display()
    );
    let mut group = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.starts_with('[') {
            group = line.to_string();
        }
        let at = || format!("{}:{}", source.display(), n + 1);
        match key_value(line) {
            Some(("Exec", value)) => {
                let args = split_exec(value).map_err(|e| format!("{}: {e}", at()))?;
                let i = program_index(&args)
                    .ok_or_else(|| format!("{}: Exec names no program", at()))?;
                if base_name(&args[i]) != base_name(program) {
                    return Err(format!(
                        "{}: {group} runs {:?}, not {program:?}; moksha cannot run it in the {profile:?} sandbox",
                        at(),
                        args[i]
                    ));
                }
                let mut new: Vec<String> = args[..i].to_vec();
                new.extend([
                    moksha_text.clone(),
                    "exec".into(),
                    profile.into(),
                    "--".into(),
                ]);
                new.extend_from_slice(&args[i + 1..]);
                out.push_str(&format!("Exec={}\n", join_exec(&new)));
            }
            Some(("TryExec", _)) => {
                out.push_str(&format!("TryExec={}\n", escape_string(&moksha_text)))
            }
            Some(("DBusActivatable", _)) => out.push_str("DBusActivatable=false\n"),
            _ => {
                out.push_str(raw);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// Every `.desktop` file under the `applications` directories, by desktop
/// file id (`kde/foo.desktop` is `kde-foo.desktop`); for an id found in
/// several directories, the first directory wins, as for the launcher.
pub fn find_all(application_dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for dir in application_dirs {
        let mut todo = vec![(dir.clone(), String::new(), 0)];
        while let Some((d, prefix, depth)) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                let path = e.path();
                if path.is_dir() && depth < 4 {
                    todo.push((path, format!("{prefix}{name}-"), depth + 1));
                } else if name.ends_with(".desktop") && path.is_file() {
                    let id = format!("{prefix}{name}");
                    if !found.iter().any(|(i, _)| *i == id) {
                        found.push((id, path));
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exec_values_split_as_the_specification_says() {
        assert_eq!(
            split_exec("/usr/lib/firefox-esr/firefox-esr %u").unwrap(),
            strings(&["/usr/lib/firefox-esr/firefox-esr", "%u"])
        );
        assert_eq!(
            split_exec(r#"app "two words" "a \\"q\\" \\$x \\\\ b" --x=%f"#).unwrap(),
            strings(&["app", "two words", r#"a "q" $x \ b"#, "--x=%f"])
        );
        assert_eq!(split_exec(r"app\sone").unwrap(), strings(&["app", "one"]));
        assert!(split_exec(r#"app "open"#).is_err());
    }

    #[test]
    fn joined_exec_values_read_back() {
        for args in [
            strings(&["/opt/my app/moksha", "exec", "x", "--", "%U"]),
            strings(&["a", "", "b\"c", "d$e`f\\g", "new\nline", "%f"]),
        ] {
            assert_eq!(split_exec(&join_exec(&args)).unwrap(), args);
        }
    }

    const FILE: &str = "[Desktop Entry]\nType=Application\nName=Fx\nTryExec=fx\n\
        Exec=env A=1 /usr/lib/fx/fx %u\nDBusActivatable=true\nActions=new;\n\n\
        [Desktop Action new]\nName=New\nExec=fx --new-window \"a b\"\n";

    #[test]
    fn rewriting_puts_every_exec_through_moksha() {
        let out = rewrite(
            FILE,
            Path::new("/usr/share/applications/fx.desktop"),
            "fox",
            "fx",
            Path::new("/usr/bin/moksha"),
        )
        .unwrap();
        assert!(
            out.contains("\nExec=env A=1 /usr/bin/moksha exec fox -- %u\n"),
            "{out}"
        );
        assert!(
            out.contains("\nExec=/usr/bin/moksha exec fox -- --new-window \"a b\"\n"),
            "{out}"
        );
        assert!(out.contains("\nTryExec=/usr/bin/moksha\n"), "{out}");
        assert!(out.contains("\nDBusActivatable=false\n"), "{out}");
        assert!(out.contains("\nName=Fx\n") && out.contains("[Desktop Action new]\n"));
        assert!(launches(FILE, "fx") && !launches(FILE, "other"));
    }

    #[test]
    fn an_exec_of_another_program_is_refused() {
        let file = format!("{FILE}\n[Desktop Action sh]\nExec=sh -c 'fx'\n");
        let e = rewrite(&file, Path::new("/a.desktop"), "fox", "fx", Path::new("/m")).unwrap_err();
        assert!(e.contains("/a.desktop:14") && e.contains("\"sh\""), "{e}");
    }
}
