//! `moksha-lib.toml`: what a library says of itself. Unknown keys are
//! errors (a misspelt `profles` is not silently an empty list).

use serde::Deserialize;

/// The manifest's file name, at the library's root.
pub const FILE: &str = "moksha-lib.toml";

/// The version of the profile API this moksha provides. A library names
/// the range it needs (`api = ">=1"`); it rises when a change would break
/// existing profiles.
pub const API: u32 = 1;

/// Where a library keeps what it ships, under its root.
pub const MODULES_DIR: &str = "modules";
pub const PROFILES_DIR: &str = "profiles";

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The profile API versions the library works with: `"1"`, `">=1"`,
    /// `">=1, <3"`.
    pub api: String,
    /// Its modules: `browser` is `modules/browser.rhai`, imported as
    /// `import "NAME/browser"`.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Its profiles: `firefox` is `profiles/firefox.rhai`, run as
    /// `moksha exec NAME/firefox`.
    #[serde(default)]
    pub profiles: Vec<String>,
}

/// Names moksha itself gives meaning to as the first part of an import or a
/// profile argument: a library of that name would shadow them.
const RESERVED: &[&str] = &["firejail", "stdlib", "profiles", "lib", "libs"];

/// A library name: what `import "NAME/..."` and `moksha exec NAME/...`
/// start with, and the directory it is installed in.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(format!(
            "{:?} is not a library name: use 1 to 64 lowercase letters, digits, '-' and '_', \
             starting with a letter",
            crate::text::line(name)
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "{name:?} is reserved (moksha gives it a meaning of its own); choose another name"
        ));
    }
    Ok(())
}

/// A module or profile name inside a library: plain names, `/` for
/// subdirectories, no `.`/`..` components (the path stays inside).
fn check_item(kind: &str, item: &str) -> Result<(), String> {
    let ok = !item.is_empty() && item.len() <= 200 && super::tree::plain_components(item);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{kind} {:?}: a name of letters, digits, '_', '-', '.' and '/' between names \
             (no '..', no leading '.' or '/')",
            crate::text::line(item)
        ))
    }
}

impl Manifest {
    /// Parses and checks a manifest; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Manifest, String> {
        let m: Manifest = toml::from_str(text).map_err(|e| {
            format!(
                "{file}: {}",
                crate::text::line(&e.to_string().replace('\n', " "))
            )
        })?;
        let at = |e: String| format!("{file}: {e}");
        check_name(&m.name).map_err(at)?;
        if m.version.trim().is_empty() {
            return Err(at("version is empty".into()));
        }
        let range = ApiRange::parse(&m.api).map_err(at)?;
        if !range.contains(API) {
            return Err(at(format!(
                "library {} needs the profile API {}, and this moksha provides API {API}",
                m.name, m.api
            )));
        }
        for module in &m.modules {
            check_item("module", module).map_err(at)?;
        }
        for profile in &m.profiles {
            check_item("profile", profile).map_err(at)?;
        }
        Ok(m)
    }

    /// The files the manifest names, relative to the library's root.
    pub fn declared_files(&self) -> Vec<String> {
        let modules = self
            .modules
            .iter()
            .map(|m| format!("{MODULES_DIR}/{m}.rhai"));
        let profiles = self
            .profiles
            .iter()
            .map(|p| format!("{PROFILES_DIR}/{p}.rhai"));
        modules.chain(profiles).collect()
    }
}

/// An API version range: lower and upper bounds, both optional.
#[derive(Debug, PartialEq)]
pub struct ApiRange {
    min: Option<(u32, bool)>,
    max: Option<(u32, bool)>,
}

impl ApiRange {
    /// `"1"` (exactly 1), or comparisons joined by `,`: `>=1`, `>1`, `<3`,
    /// `<=2`, `=1`.
    pub fn parse(text: &str) -> Result<ApiRange, String> {
        let bad = || {
            format!(
                "api = {:?}: expected a version (\"1\") or comparisons such as \">=1, <3\"",
                crate::text::line(text)
            )
        };
        let mut range = ApiRange {
            min: None,
            max: None,
        };
        for part in text.split(',').map(str::trim) {
            let (op, num) = ["<=", ">=", "<", ">", "="]
                .iter()
                .find_map(|op| part.strip_prefix(op).map(|n| (*op, n.trim())))
                .unwrap_or(("=", part));
            let n: u32 = num.parse().map_err(|_| bad())?;
            match op {
                ">=" => range.min = Some((n, true)),
                ">" => range.min = Some((n, false)),
                "<=" => range.max = Some((n, true)),
                "<" => range.max = Some((n, false)),
                _ => {
                    range.min = Some((n, true));
                    range.max = Some((n, true));
                }
            }
        }
        Ok(range)
    }

    pub fn contains(&self, v: u32) -> bool {
        let above = match self.min {
            Some((n, true)) => v >= n,
            Some((n, false)) => v > n,
            None => true,
        };
        let below = match self.max {
            Some((n, true)) => v <= n,
            Some((n, false)) => v < n,
            None => true,
        };
        above && below
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "acme"
version = "1.0.0"
description = "Acme's browsers"
api = ">=1, <2"
modules = ["browser", "net/proxy"]
profiles = ["firefox"]
"#;

    #[test]
    fn parses_and_names_its_files() {
        let m = Manifest::parse("m.toml", GOOD).unwrap();
        assert_eq!(m.name, "acme");
        assert_eq!(
            m.declared_files(),
            [
                "modules/browser.rhai",
                "modules/net/proxy.rhai",
                "profiles/firefox.rhai"
            ]
        );
    }

    #[test]
    fn refuses_escapes_unknown_keys_and_other_apis() {
        let with = |from: &str, to: &str| Manifest::parse("m.toml", &GOOD.replace(from, to));
        let e = with("\"browser\"", "\"../../.ssh/id\"").unwrap_err();
        assert!(e.contains("module \"../../.ssh/id\""), "{e}");
        let e = with("\"firefox\"", "\"/etc/passwd\"").unwrap_err();
        assert!(e.contains("profile"), "{e}");
        let e = with("name = \"acme\"", "name = \"../../x\"").unwrap_err();
        assert!(e.contains("is not a library name"), "{e}");
        let e = with("name = \"acme\"", "name = \"firejail\"").unwrap_err();
        assert!(e.contains("reserved"), "{e}");
        let e = with("profiles", "profles").unwrap_err();
        assert!(e.starts_with("m.toml: ") && e.contains("profles"), "{e}");
        let e = with(">=1, <2", ">=2").unwrap_err();
        assert!(e.contains("needs the profile API >=2"), "{e}");
        assert!(with(">=1, <2", "banana").is_err());
    }

    #[test]
    fn api_ranges() {
        let r = |t: &str, v: u32| ApiRange::parse(t).unwrap().contains(v);
        assert!(r("1", 1) && !r("1", 2));
        assert!(r(">=1", 7) && !r(">1", 1) && r("<=2", 2) && !r(">=1, <2", 2));
    }
}
