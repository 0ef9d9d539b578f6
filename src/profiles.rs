//! Finding profiles: a path is used as given; a name is looked up in `./`,
//! the user's profile directory, `/etc/moksha/profiles`, then the profiles
//! built into the binary.

use crate::script::{host, resolver, ProfileSource};
use std::path::{Path, PathBuf};

/// The directories searched for profiles by name, in order.
pub fn profile_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".")];
    if let Ok(cfg) = host::xdg_dir("config") {
        dirs.push(PathBuf::from(cfg).join("moksha/profiles"));
    }
    dirs.push(PathBuf::from("/etc/moksha/profiles"));
    dirs
}

/// Whether the argument names a file rather than a profile name.
fn is_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".rhai")
}

fn read(path: &Path) -> Result<ProfileSource, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read profile {}: {e}", path.display()))?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .map(Path::to_path_buf);
    Ok(ProfileSource {
        name: path.to_string_lossy().into_owned(),
        text,
        dir,
    })
}

/// Resolves a profile argument to its source text.
pub fn find(arg: &str) -> Result<ProfileSource, String> {
    if is_path(arg) {
        return read(Path::new(arg));
    }
    if arg.is_empty()
        || !arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "{arg:?} is not a profile name or a path to a .rhai file"
        ));
    }
    let file = format!("{arg}.rhai");
    for dir in profile_dirs() {
        let candidate = dir.join(&file);
        if candidate.is_file() {
            return read(&candidate);
        }
    }
    if let Some((name, text)) = resolver::embedded_profiles()
        .iter()
        .find(|(n, _)| *n == arg)
    {
        return Ok(ProfileSource {
            name: format!("<profiles>/{name}.rhai"),
            text: text.to_string(),
            dir: None,
        });
    }
    let searched: Vec<String> = profile_dirs()
        .iter()
        .map(|d| d.join(&file).to_string_lossy().into_owned())
        .collect();
    Err(format!(
        "no profile named {arg:?}; looked for {} and the built-in profiles (see `moksha profiles`)",
        searched.join(", ")
    ))
}

/// Every profile found: (name, where). Earlier places shadow later ones.
pub fn list() -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut add = |name: String, place: String| {
        if !found.iter().any(|(n, _)| *n == name) {
            found.push((name, place));
        }
    };
    for dir in profile_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|n| n.strip_suffix(".rhai").map(str::to_string))
            .collect();
        names.sort();
        for name in names {
            let place = dir
                .join(format!("{name}.rhai"))
                .to_string_lossy()
                .into_owned();
            add(name, place);
        }
    }
    for (name, _) in resolver::embedded_profiles() {
        add(name.to_string(), "built in".into());
    }
    found
}
