//! Finding profiles. A path (anything with a `/`, or ending in `.rhai`) is
//! used as given, and `-` is read from stdin. A bare NAME is never looked up
//! in the working directory — a cloned repository shipping `build.rhai`
//! would otherwise choose its own sandbox — but in the user's profile
//! directory, `/etc/moksha/profiles`, then the profiles built into the
//! binary; a file in the first two overrides the built-in of its name.
//! `LIB/NAME` (one `/`, no `.rhai`) where LIB is an installed library is
//! that library's profile, read from its copy checked against the lock.

use crate::library::store::{self, Libraries, Library};
use crate::script::{host, resolver, ProfileSource};
use std::path::{Path, PathBuf};

/// The profile that runs a program named on the command line when no
/// profile has its name (`moksha exec ls`).
pub const DEFAULT: &str = "default";

/// The directories searched for profiles by name, in order.
pub fn profile_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(cfg) = host::xdg_dir("config") {
        dirs.push(PathBuf::from(cfg).join("moksha/profiles"));
    }
    dirs.push(PathBuf::from("/etc/moksha/profiles"));
    dirs
}

/// Where a profile came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A path or stdin, named by the user.
    Given,
    /// A file in a profile directory found by name.
    Dir,
    /// The profile built into the binary.
    BuiltIn,
    /// A profile of this installed library.
    Library(String),
    /// No profile has this name: the default profile runs the host program
    /// at this path.
    Program(String),
}

/// A profile found for a command-line argument.
#[derive(Debug, Clone)]
pub struct Found {
    pub source: ProfileSource,
    pub origin: Origin,
    /// A `NAME.rhai` in the working directory that a bare name did not use.
    pub ignored_here: Option<String>,
}

impl Found {
    /// The one-line notes `exec` and `plan` print on stderr: a profile that
    /// is not the built-in one, or not a profile at all, is never silent.
    pub fn notes(&self, arg: &str) -> Vec<String> {
        let mut notes = Vec::new();
        match &self.origin {
            Origin::Dir => notes.push(format!(
                "using the profile {}{}",
                self.source.name,
                if builtin(arg).is_some() {
                    format!(" (it overrides the built-in {arg})")
                } else {
                    String::new()
                }
            )),
            Origin::Program(path) => notes.push(format!(
                "no profile named {arg:?}: running {path} under the strict default profile \
                 (no network, an empty private home; `moksha profiles show default`)"
            )),
            Origin::Given | Origin::BuiltIn | Origin::Library(_) => {}
        }
        if let Some(file) = &self.ignored_here {
            notes.push(format!(
                "{file} is not used: a profile name never comes from the working directory; \
                 to run that file, give its path (moksha exec {file})"
            ));
        }
        notes
    }
}

/// Whether the argument names a file rather than a profile name.
fn is_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".rhai")
}

fn is_name(arg: &str) -> bool {
    !arg.is_empty()
        && !arg.starts_with('.')
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The source of the built-in profile `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    resolver::embedded_profiles()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

fn builtin_source(name: &str) -> Option<ProfileSource> {
    builtin(name).map(|text| ProfileSource {
        name: format!("<profiles>/{name}.rhai"),
        text: text.to_string(),
        ..Default::default()
    })
}

/// Profile text from bytes: a program or other binary file gets a message
/// that says what it is and what to run instead.
fn text_of(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        if bytes.starts_with(b"\x7fELF") {
            format!(
                "{name} is a program, not a Rhai profile; to run it in a strict sandbox: \
                 moksha exec {DEFAULT} -- {name} (or `moksha exec shell` for a shell; \
                 `moksha profiles` lists the profiles)"
            )
        } else {
            format!("{name} is not a Rhai profile: it is not UTF-8 text")
        }
    })
}

/// The bytes of a profile file: a regular file (a symlink the user named is
/// followed), read up to the engine's string limit and one byte more, never
/// waiting on a FIFO or reading a device forever.
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: std::io::Error| format!("cannot read profile {}: {e}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(format!(
            "{} is not a regular file; a profile is a .rhai file",
            path.display()
        ));
    }
    let limit = crate::script::limits::STRING_BYTES as u64;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    Ok(bytes)
}

fn read(path: &Path) -> Result<ProfileSource, String> {
    let bytes = read_file(path)?;
    let name = path.to_string_lossy().into_owned();
    if bytes.len() > crate::script::limits::STRING_BYTES && !bytes.starts_with(b"\x7fELF") {
        return Err(format!(
            "profile {} is larger than {} bytes, the most a profile may be",
            path.display(),
            crate::script::limits::STRING_BYTES
        ));
    }
    let text = text_of(&name, bytes)?;
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
        name,
        text,
        dir,
        ..Default::default()
    })
}

fn read_stdin() -> Result<ProfileSource, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the profile from stdin: {e}"))?;
    let name = "<stdin>".to_string();
    Ok(ProfileSource {
        text: text_of(&name, bytes)?,
        name,
        ..Default::default()
    })
}

/// The first `NAME.rhai` in the profile directories.
fn in_dirs(name: &str) -> Option<PathBuf> {
    profile_dirs()
        .into_iter()
        .map(|d| d.join(format!("{name}.rhai")))
        .find(|p| p.is_file())
}

/// Resolves a profile argument (a path, `-`, or a name).
pub fn find(arg: &str) -> Result<Found, String> {
    lookup(arg, false, &Libraries::installed())
}

/// `find` with library profiles and imports from `libraries`.
pub fn find_in(arg: &str, libraries: &Libraries) -> Result<Found, String> {
    lookup(arg, false, libraries)
}

/// Like `find`, but a name that is no profile and names a program on the
/// host's PATH runs that program under the default profile.
pub fn find_or_program(arg: &str) -> Result<Found, String> {
    lookup(arg, true, &Libraries::installed())
}

/// The profile `profile` of library `lib`, when `lib` is one: its text
/// from the copy checked against the lock.
pub fn library_profile(
    lib: &str,
    profile: &str,
    libraries: &Libraries,
) -> Result<Option<ProfileSource>, String> {
    let Some(library) = libraries.get(lib)? else {
        return Ok(None);
    };
    libraries.mark_used(lib);
    let files = library.load()?;
    let file = Library::profile_file(profile);
    let Some(bytes) = files.get(&file) else {
        let names: Vec<String> = files
            .keys()
            .filter_map(|f| f.strip_prefix("profiles/")?.strip_suffix(".rhai"))
            .map(|p| format!("{lib}/{p}"))
            .collect();
        return Err(format!(
            "library {lib} has no profile {profile:?}; its profiles: {}",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        ));
    };
    let name = library.display(&file);
    Ok(Some(ProfileSource {
        text: text_of(&name, bytes.clone())?,
        name,
        library: Some(lib.to_string()),
        libraries: Some(libraries.clone()),
        ..Default::default()
    }))
}

fn lookup(arg: &str, program: bool, libraries: &Libraries) -> Result<Found, String> {
    let found = |source, origin| Found {
        source,
        origin,
        ignored_here: None,
    };
    if arg == "-" {
        return Ok(found(read_stdin()?, Origin::Given));
    }
    if let Some(firejail) = arg.strip_prefix(crate::import::PREFIX) {
        return Ok(found(
            crate::import::profile_source(firejail)?,
            Origin::Given,
        ));
    }
    // An installed library's profile comes before a file of that relative
    // path (a cloned repository could otherwise plant ./acme/firefox); the
    // file, when there is one, is noted as not used.
    if let Some((lib, profile)) = store::split(arg).filter(|_| !arg.ends_with(".rhai")) {
        let file_here = Path::new(arg).is_file();
        match library_profile(lib, profile, libraries) {
            Ok(Some(source)) => {
                let mut result = found(source, Origin::Library(lib.to_string()));
                if file_here {
                    result.ignored_here = Some(format!("./{arg}"));
                }
                return Ok(result);
            }
            Ok(None) => {}
            // A broken lock, or a library without that profile: the file
            // the user may have meant is used only when it exists.
            Err(_) if file_here && libraries.get(lib).is_err() => {}
            Err(e) => return Err(e),
        }
    }
    if is_path(arg) {
        let mut source = read(Path::new(arg))?;
        source.libraries = Some(libraries.clone());
        // A library's profile run from its working copy (its author's
        // `moksha exec profiles/x.rhai`) imports from that copy.
        let in_library = source
            .dir
            .as_deref()
            .filter(|d| {
                d.file_name()
                    .is_some_and(|n| n == crate::library::manifest::PROFILES_DIR)
            })
            .and_then(Path::parent)
            .map(|root| {
                if root.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    root
                }
            })
            .filter(|root| root.join(crate::library::manifest::FILE).is_file());
        if let Some(root) = in_library {
            if let Some(lib) = Library::working_copy_at(root)? {
                source.library = Some(lib.name.clone());
                source.libraries = Some(libraries.clone().with(lib));
            }
        }
        return Ok(found(source, Origin::Given));
    }
    let here = format!("./{arg}.rhai");
    let mut result = if !is_name(arg) {
        None
    } else if let Some(path) = in_dirs(arg) {
        Some(found(read(&path)?, Origin::Dir))
    } else {
        builtin_source(arg).map(|s| found(s, Origin::BuiltIn))
    };
    if result.is_none() && program {
        if let (Some(path), Some(source)) = (host::which(arg), builtin_source(DEFAULT)) {
            result = Some(found(source, Origin::Program(path)));
        }
    }
    let Some(mut result) = result else {
        return Err(not_found(arg, program));
    };
    result.source.libraries = Some(libraries.clone());
    if Path::new(&here).is_file() {
        result.ignored_here = Some(here);
    }
    Ok(result)
}

fn not_found(arg: &str, program: bool) -> String {
    let here = format!("./{arg}.rhai");
    let hint = if Path::new(&here).is_file() {
        format!("; {here} is not used for a name, give its path to run it (moksha exec {here})")
    } else {
        String::new()
    };
    if !is_name(arg) && !program {
        return format!("{arg:?} is not a profile name or a path to a .rhai file");
    }
    let searched: Vec<String> = profile_dirs()
        .iter()
        .map(|d| d.join(format!("{arg}.rhai")).to_string_lossy().into_owned())
        .collect();
    let program = if program {
        " and no program of that name is on PATH"
    } else {
        ""
    };
    format!(
        "no profile named {arg:?}{program}; looked for {} and the built-in profiles \
         (see `moksha profiles`){hint}",
        searched.join(", ")
    )
}

/// One profile `moksha profiles` lists: its name, where it is, and the
/// files or built-in of the same name it hides.
pub struct Listed {
    pub name: String,
    pub place: String,
    pub hides: Vec<String>,
}

/// Every profile found, each name once, with what it overrides.
pub fn list() -> Vec<Listed> {
    let mut found: Vec<Listed> = Vec::new();
    let mut add = |name: String, place: String| {
        match found.iter_mut().find(|l| l.name == name) {
            Some(first) => first.hides.push(place),
            None => found.push(Listed {
                name,
                place,
                hides: Vec::new(),
            }),
        };
    };
    for dir in profile_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|n| n.strip_suffix(".rhai").map(str::to_string))
            .filter(|n| is_name(n))
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
    let libraries = Libraries::installed();
    for lib in libraries.names() {
        let Ok(Some(library)) = libraries.get(&lib) else {
            continue;
        };
        let files = match library.load() {
            Ok(files) => files,
            Err(e) => {
                add(format!("{lib}/*"), format!("refused: {e}"));
                continue;
            }
        };
        for file in files.keys() {
            if let Some(p) = file
                .strip_prefix("profiles/")
                .and_then(|f| f.strip_suffix(".rhai"))
            {
                add(
                    format!("{lib}/{p}"),
                    format!("{} (library {lib})", library.display(file)),
                );
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(is_path("./build.rhai") && is_path("build.rhai") && is_path("a/b"));
        assert!(!is_path("build"));
        assert!(is_name("build") && is_name("my-app_2.x"));
        assert!(!is_name("") && !is_name(".hidden") && !is_name("g++"));
    }

    #[test]
    fn binaries_are_named_for_what_they_are() {
        let elf = text_of("/bin/ls", b"\x7fELF\x02\x01\x01\xff".to_vec()).unwrap_err();
        assert!(elf.contains("is a program, not a Rhai profile"), "{elf}");
        assert!(elf.contains("moksha exec default -- /bin/ls"), "{elf}");
        let other = text_of("x", vec![0xff, 0xfe]).unwrap_err();
        assert!(other.contains("not UTF-8 text"), "{other}");
    }
}
