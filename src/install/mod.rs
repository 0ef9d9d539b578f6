//! `moksha install NAME...`: the desktop and the shell run an application
//! through moksha, as Firejail's `firecfg` does. For an application that
//! has a profile and is installed on the host, it writes
//! - a wrapper `~/.local/bin/NAME` (`$XDG_BIN_HOME`) that runs
//!   `moksha exec NAME -- "$@"` with this moksha binary's absolute path;
//! - for each system `.desktop` file that launches the program (in
//!   `$XDG_DATA_DIRS/applications`), a copy of the same id in
//!   `~/.local/share/applications` (`$XDG_DATA_HOME`), which shadows it,
//!   with every `Exec` going through moksha (desktop.rs).
//!
//! Every file written is recorded with its hash (manifest.rs). `install`
//! overwrites only files it recorded and that are unchanged; `uninstall`
//! removes only those. Everything is checked before the first write.

mod desktop;
mod manifest;

use crate::script::{self, host};
use manifest::{Manifest, Now, Written};
use std::path::{Path, PathBuf};

/// Where install reads and writes.
struct Places {
    /// `~/.local/bin`: the wrappers.
    bin: PathBuf,
    /// `~/.local/share/applications`: the desktop files.
    applications: PathBuf,
    /// `~/.local/share/moksha/installed.json`.
    manifest: PathBuf,
    /// The system's `applications` directories, in order of precedence.
    system_applications: Vec<PathBuf>,
    /// This moksha binary, which the written files run.
    moksha: PathBuf,
}

impl Places {
    fn find() -> Result<Places, String> {
        let base =
            crate::xdg::base_dirs().ok_or("no home directory: set HOME to an absolute path")?;
        let bin = base
            .executable_dir()
            .ok_or("no directory for programs (set XDG_BIN_HOME)")?
            .to_path_buf();
        let data = base.data_dir();
        // The specification's default when XDG_DATA_DIRS is unset or empty.
        let dirs = std::env::var("XDG_DATA_DIRS")
            .ok()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
        let system_applications = dirs
            .split(':')
            .map(PathBuf::from)
            .filter(|d| d.is_absolute() && d != data)
            .map(|d| d.join("applications"))
            .collect();
        let moksha = std::env::current_exe()
            .ok()
            .filter(|p| p.is_file())
            .ok_or("cannot find the moksha binary itself (/proc/self/exe)")?;
        Ok(Places {
            bin,
            applications: data.join("applications"),
            manifest: data.join("moksha/installed.json"),
            system_applications,
            moksha,
        })
    }
}

/// A file install would write.
struct Planned {
    app: String,
    path: PathBuf,
    content: String,
    mode: u32,
    source: Option<PathBuf>,
}

/// A name `moksha exec NAME` looks up, that is also a safe file name.
fn check_app_name(name: &str) -> Result<(), String> {
    if crate::state::check_name(name).is_ok() && !name.starts_with('-') && !name.ends_with(".rhai")
    {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a profile name; `moksha install` takes the names `moksha profiles` lists"
        ))
    }
}

/// The program a profile runs (its `exec`'s first word), evaluated without
/// arguments.
fn profile_program(name: &str) -> Result<String, String> {
    let source = crate::profiles::find(name)?.source;
    let (plan, _) = script::evaluate(&source, &[])
        .map_err(|e| format!("its profile does not evaluate:\n{}", e.render()))?;
    plan.process
        .exec
        .and_then(|e| e.op.argv.into_iter().next())
        .ok_or_else(|| format!("its profile {} runs no program", source.name))
}

/// Where the program is on the host, not counting moksha's own wrappers.
fn on_host(program: &str, places: &Places) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    host::which_all(program)
        .map(PathBuf::from)
        .find(|p| p.parent() != Some(&places.bin))
}

/// The files that install one application.
fn plan_app(name: &str, places: &Places) -> Result<Vec<Planned>, String> {
    check_app_name(name)?;
    let program = profile_program(name)?;
    on_host(&program, places).ok_or_else(|| {
        format!(
            "its program {program:?} is not installed on the host (not in PATH); \
             install it with your package manager first"
        )
    })?;
    let moksha = places.moksha.to_string_lossy();
    let mut files = vec![Planned {
        app: name.to_string(),
        path: places.bin.join(name),
        content: format!(
            "#!/bin/sh\n\
             # Written by `moksha install {name}`: runs {program} in moksha's {name:?} sandbox.\n\
             # `moksha uninstall {name}` removes this file (unless you change it).\n\
             exec {} exec {name} -- \"$@\"\n",
            shell_quote(&moksha)
        ),
        mode: 0o755,
        source: None,
    }];
    for (id, path) in desktop::find_all(&places.system_applications) {
        let Some(text) = manifest::read_regular(&path)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            continue;
        };
        if !desktop::launches(&text, &program) {
            continue;
        }
        let content = desktop::rewrite(&text, &path, name, &program, &places.moksha)?;
        files.push(Planned {
            app: name.to_string(),
            path: places.applications.join(id),
            content,
            mode: 0o644,
            source: Some(path),
        });
    }
    Ok(files)
}

/// A word for sh: single-quoted unless it is plainly safe.
fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Whether install may write `path`: nothing is there, or moksha wrote it
/// and it is unchanged.
fn may_write(path: &Path, manifest: &Manifest) -> Result<(), String> {
    if path.symlink_metadata().is_err() {
        return Ok(());
    }
    match manifest.entry(path).map(Written::now) {
        Some(Now::AsWritten) => Ok(()),
        Some(_) => Err(format!(
            "{} was changed since moksha wrote it; not overwriting it \
             (move it away, then run `moksha install` again)",
            path.display()
        )),
        None => Err(format!(
            "{} exists and moksha did not write it; not overwriting it \
             (move it away, then run `moksha install` again)",
            path.display()
        )),
    }
}

/// Where to write, and what was written before.
fn open() -> Result<(Places, Manifest), String> {
    let places = Places::find()?;
    let manifest = Manifest::load(&places.manifest)?;
    Ok((places, manifest))
}

fn fail(e: String) -> i32 {
    eprintln!("moksha: {}", crate::text::shown(&e));
    1
}

/// Prints every error; true if there was one.
fn report(errors: &[String]) -> bool {
    for e in errors {
        eprintln!("moksha: {}", crate::text::shown(e));
    }
    !errors.is_empty()
}

/// `moksha install NAME...`.
pub fn install(names: &[String]) -> i32 {
    let (places, mut manifest) = match open() {
        Ok(opened) => opened,
        Err(e) => return fail(e),
    };
    // Check everything first: on any error nothing is written.
    let mut planned: Vec<Planned> = Vec::new();
    let mut errors = Vec::new();
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    names.dedup();
    for name in names {
        match plan_app(name, &places) {
            Ok(files) => planned.extend(files),
            Err(e) => errors.push(format!("cannot install {name}: {e}")),
        }
    }
    for (i, p) in planned.iter().enumerate() {
        if let Some(other) = planned[..i].iter().find(|o| o.path == p.path) {
            errors.push(format!(
                "{} and {} would both write {}; install them one at a time",
                other.app,
                p.app,
                p.path.display()
            ));
        }
        if let Err(e) = may_write(&p.path, &manifest) {
            errors.push(format!("cannot install {}: {e}", p.app));
        }
    }
    if report(&errors) {
        eprintln!("moksha: nothing was installed");
        return 1;
    }
    let mut code = 0;
    for p in &planned {
        match manifest::write_atomic(&p.path, p.content.as_bytes(), p.mode) {
            Ok(()) => {
                manifest.record(Written {
                    app: p.app.clone(),
                    path: p.path.clone(),
                    sha256: manifest::sha256(p.content.as_bytes()),
                    source: p.source.clone(),
                });
                match &p.source {
                    Some(s) => println!("{}: {} (from {})", p.app, p.path.display(), s.display()),
                    None => println!("{}: {}", p.app, p.path.display()),
                }
            }
            Err(e) => {
                code = fail(e);
                break;
            }
        }
    }
    // What was written is recorded, even when a later write failed.
    if let Err(e) = manifest.save(&places.manifest) {
        code = fail(e);
    }
    if !path_finds_first(&places.bin) {
        eprintln!(
            "moksha: note: {} is not on your PATH before /usr/bin; the wrappers are used only from the desktop \
             until it is (e.g. PATH=\"{}:$PATH\" in ~/.profile)",
            places.bin.display(),
            places.bin.display()
        );
    }
    code
}

/// Whether `dir` comes on PATH before the system's program directories.
fn path_finds_first(dir: &Path) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    for entry in path.split(':').map(Path::new) {
        if entry == dir {
            return true;
        }
        if entry == Path::new("/usr/bin") || entry == Path::new("/bin") {
            return false;
        }
    }
    false
}

/// `moksha uninstall NAME...` / `--all`: removes the files install wrote
/// for those applications, if they are unchanged.
pub fn uninstall(names: &[String], all: bool) -> i32 {
    let (places, mut manifest) = match open() {
        Ok(opened) => opened,
        Err(e) => return fail(e),
    };
    let apps: Vec<String> = if all {
        let mut apps: Vec<String> = manifest.files.iter().map(|w| w.app.clone()).collect();
        apps.sort();
        apps.dedup();
        apps
    } else {
        names.to_vec()
    };
    let mut errors = Vec::new();
    for a in &apps {
        if let Err(e) = check_app_name(a) {
            errors.push(e);
        } else if !manifest.files.iter().any(|w| w.app == *a) {
            let wrapper = places.bin.join(a);
            let hint = match wrapper.symlink_metadata() {
                Ok(_) => format!(
                    "; {} was not written by moksha and is left alone",
                    wrapper.display()
                ),
                Err(_) => String::new(),
            };
            errors.push(format!(
                "moksha installed nothing for {a:?} (see `moksha install --list`){hint}"
            ));
        }
    }
    if report(&errors) {
        eprintln!("moksha: nothing was uninstalled");
        return 1;
    }
    let mut code = 0;
    let (mine, others): (Vec<Written>, Vec<Written>) = std::mem::take(&mut manifest.files)
        .into_iter()
        .partition(|w| apps.contains(&w.app));
    manifest.files = others;
    for w in mine {
        let path = w.path.display();
        match w.now() {
            Now::AsWritten => match std::fs::remove_file(&w.path) {
                Ok(()) => println!("{}: removed {path}", w.app),
                Err(e) => {
                    code = fail(format!("cannot remove {path}: {e}"));
                    manifest.files.push(w);
                }
            },
            Now::Changed => eprintln!(
                "moksha: {}: kept {path}: it was changed since moksha wrote it (it is yours now)",
                w.app
            ),
            Now::Missing => eprintln!("moksha: {}: {path} was already removed", w.app),
        }
    }
    if let Err(e) = manifest.save(&places.manifest) {
        code = fail(e);
    }
    code
}

/// `moksha install --list`: what moksha installed and the state of each
/// file, then the applications it could install.
pub fn list() -> i32 {
    let (places, manifest) = match open() {
        Ok(opened) => opened,
        Err(e) => return fail(e),
    };
    if manifest.files.is_empty() {
        println!("moksha installed nothing for this user");
    } else {
        let mut table = vec![["APP", "STATE", "FILE"].map(String::from).to_vec()];
        for w in &manifest.files {
            table.push(vec![
                w.app.clone(),
                w.now().describe().to_string(),
                w.path.display().to_string(),
            ]);
        }
        crate::table::print(&table, &[]);
    }
    // Applications: the program is on the host and is called like the
    // profile, or has a desktop file (tools like `build` can still be
    // installed by name).
    let installed = |app: &str| manifest.files.iter().any(|w| w.app == app);
    let desktop_files: Vec<String> = desktop::find_all(&places.system_applications)
        .into_iter()
        .filter_map(|(_, path)| std::fs::read_to_string(path).ok())
        .collect();
    let available: Vec<String> = crate::profiles::list()
        .into_iter()
        .map(|l| l.name)
        .filter(|name| !installed(name) && check_app_name(name).is_ok())
        .filter(|name| {
            profile_program(name).ok().is_some_and(|p| {
                on_host(&p, &places).is_some()
                    && (desktop::base_name(&p) == name
                        || desktop_files.iter().any(|t| desktop::launches(t, &p)))
            })
        })
        .collect();
    if !available.is_empty() {
        println!(
            "\nalso installable (a profile, and the program on this host): {}",
            available.join(" ")
        );
    }
    0
}
