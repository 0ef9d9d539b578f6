//! `moksha lib`: add, list, show, update, remove and scaffold libraries.
//! Nothing is installed that does not evaluate, and an update shows what
//! it changes in every sandbox that imports the library before it applies.

use crate::library::git;
use crate::library::lock::{self, Entry, Lock};
use crate::library::manifest::{self, Manifest};
use crate::library::store::{self, Libraries, Library};
use crate::library::tree::{self, Files};
use crate::script::{self, ProfileSource};
use crate::text::{self, shown};
use std::path::{Path, PathBuf};

/// `commands::EXIT_PROFILE`: a library that does not install or evaluate.
const EXIT_PROFILE: i32 = 1;

fn fail(e: impl std::fmt::Display) -> i32 {
    eprintln!("moksha: lib: {}", shown(e.to_string()));
    EXIT_PROFILE
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The paths every subcommand needs.
struct Paths {
    lock: PathBuf,
    libs: PathBuf,
}

fn paths() -> Result<Paths, String> {
    Ok(Paths {
        lock: lock::path()?,
        libs: store::libs_dir()?,
    })
}

/// A fetched commit, written to a staging directory beside the installed
/// copies and checked: removed on drop unless installed.
struct Staged {
    name: String,
    dir: PathBuf,
    manifest: Manifest,
    commit: String,
    files: Files,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Staged {
    fn library(&self) -> Library {
        Library {
            name: self.name.clone(),
            root: self.dir.clone(),
            pinned: None,
            label: Some(format!("{}@{}", self.name, short(&self.commit))),
        }
    }

    fn entry(&self, source: &str, rev: Option<&str>) -> Entry {
        let files = tree::hashes(&self.files);
        Entry {
            name: self.name.clone(),
            version: self.manifest.version.clone(),
            source: source.to_string(),
            rev: rev.map(str::to_string),
            commit: self.commit.clone(),
            hash: tree::content_hash(&files),
            files,
        }
    }

    /// Moves the staged copy into place (the old one, if any, out of the
    /// way first) and pins it in the lock.
    fn install(self, paths: &Paths, lock: &mut Lock, entry: Entry) -> Result<(), String> {
        let target = paths.libs.join(&self.name);
        let old = store::staging(&paths.libs, &self.name, "old");
        let had = target.exists();
        if had {
            std::fs::rename(&target, &old)
                .map_err(|e| format!("cannot move {} aside: {e}", target.display()))?;
        }
        if let Err(e) = std::fs::rename(&self.dir, &target) {
            if had {
                let _ = std::fs::rename(&old, &target);
            }
            return Err(format!("cannot install {}: {e}", target.display()));
        }
        let _ = std::fs::remove_dir_all(&old);
        lock.put(entry);
        lock.write(&paths.lock)
    }
}

/// Fetches `source` at `rev`, stages it as library `name` (default: the
/// manifest's) and checks that every module and profile evaluates.
fn stage(
    paths: &Paths,
    source: &str,
    rev: Option<&str>,
    name: Option<&str>,
    others: &Libraries,
) -> Result<Staged, String> {
    if let Some(n) = name {
        manifest::check_name(n)?;
    }
    let fetched = git::fetch(source, rev, &paths.libs)?;
    let origin = format!("{} at {}", text::line(source), short(&fetched.commit));
    let manifest = tree::manifest_of(&fetched.files, &origin)?;
    let name = name.unwrap_or(&manifest.name).to_string();
    let dir = store::staging(&paths.libs, &name, "new");
    let _ = std::fs::remove_dir_all(&dir);
    tree::write_dir(&dir, &fetched.files)?;
    let staged = Staged {
        name,
        dir,
        manifest,
        commit: fetched.commit,
        files: fetched.files,
    };
    check_evaluates(&staged, others)?;
    Ok(staged)
}

/// Every module of the library imports and every profile evaluates: a
/// library that does not is not installed.
fn check_evaluates(staged: &Staged, others: &Libraries) -> Result<(), String> {
    let set = others.clone().with(staged.library());
    let name = &staged.name;
    let failed = |what: String, e: crate::script::diagnostics::ProfileError| {
        format!(
            "library {name} does not evaluate, so it is not installed: {what}:\n{}",
            e.render()
        )
    };
    for file in staged.files.keys() {
        let Some(module) = file
            .strip_prefix("modules/")
            .and_then(|f| f.strip_suffix(".rhai"))
        else {
            continue;
        };
        let probe = ProfileSource {
            name: format!("<import {name}/{module}>"),
            text: format!(
                "import {:?} as m;\nlet s = sandbox(\"check\");\ns.exec([\"/bin/true\"]);\n",
                format!("{name}/{module}")
            ),
            libraries: Some(set.clone()),
            ..Default::default()
        };
        script::evaluate(&probe, &[]).map_err(|e| failed(format!("module {module}"), e))?;
    }
    for profile in &staged.manifest.profiles {
        let source = crate::profiles::library_profile(name, profile, &set)?
            .ok_or_else(|| format!("library {name} is not in the set"))?;
        script::evaluate(&source, &[])
            .map_err(|e| failed(format!("profile {name}/{profile}"), e))?;
    }
    Ok(())
}

/// `moksha lib add SOURCE [--name N] [--rev R]`.
pub fn add(source: &str, name: Option<&str>, rev: Option<&str>) -> i32 {
    let run = || -> Result<(), String> {
        let paths = paths()?;
        let source = git::normalize_source(source)?;
        let mut lock = Lock::read(&paths.lock)?;
        if let Some(n) = name {
            if lock.get(n).is_some() {
                return Err(format!(
                    "a library named {n} is installed; `moksha lib update {n}` updates it"
                ));
            }
        }
        let staged = stage(&paths, &source, rev, name, &Libraries::installed())?;
        if let Some(e) = lock.get(&staged.name) {
            return Err(format!(
                "a library named {} is installed (from {}); `moksha lib update {}` updates it, \
                 or add this one with --name OTHER",
                staged.name,
                text::line(&e.source),
                staged.name
            ));
        }
        if paths.libs.join(&staged.name).exists() {
            return Err(format!(
                "{} exists but is not in {}; remove it first",
                paths.libs.join(&staged.name).display(),
                paths.lock.display()
            ));
        }
        let entry = staged.entry(&source, rev);
        let (n, m) = (staged.name.clone(), staged.manifest.clone());
        staged.install(&paths, &mut lock, entry.clone())?;
        println!(
            "added {n} {} at {} (commit {}, {})",
            text::line(&m.version),
            rev.unwrap_or("the default branch"),
            short(&entry.commit),
            entry.hash
        );
        println!("  import \"{n}/MODULE\" in a profile; `moksha lib show {n}` lists what it holds");
        Ok(())
    };
    run().map_or_else(
        |e| {
            // A failed first add leaves no empty store behind.
            if let Ok(p) = paths() {
                remove_empty_store(&p);
            }
            fail(e)
        },
        |()| 0,
    )
}

/// Removes the store directory, and moksha's data directory above it, if
/// they are empty.
fn remove_empty_store(paths: &Paths) {
    if std::fs::remove_dir(&paths.libs).is_ok() {
        if let Some(parent) = paths.libs.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// `moksha lib list`.
pub fn list() -> i32 {
    let run = || -> Result<(), String> {
        let paths = paths()?;
        let lock = Lock::read(&paths.lock)?;
        if lock.libraries.is_empty() {
            println!("no libraries installed (moksha lib add URL)");
            return Ok(());
        }
        let installed = Libraries::installed();
        for e in &lock.libraries {
            let state = match installed.get(&e.name).ok().flatten().map(Library::load) {
                Some(Ok(_)) => "ok".to_string(),
                Some(Err(_)) => "MODIFIED (moksha lib show)".to_string(),
                None => "missing".to_string(),
            };
            println!(
                "{:<16} {:<10} {} {} {}  {}",
                text::line(&e.name),
                text::line(&e.version),
                short(&e.commit),
                e.rev.as_deref().map_or("-".into(), text::line),
                text::line(&e.source),
                state
            );
        }
        Ok(())
    };
    run().map_or_else(fail, |()| 0)
}

/// `moksha lib show NAME`: the pin, the manifest, and where each module
/// and profile comes from.
pub fn show(name: &str) -> i32 {
    let run = || -> Result<(), String> {
        let paths = paths()?;
        let lock = Lock::read(&paths.lock)?;
        let e = lock.get(name).ok_or_else(|| not_installed(name, &lock))?;
        let root = paths.libs.join(name);
        println!("library {}", text::line(name));
        println!("  source   {}", text::line(&e.source));
        println!(
            "  rev      {}",
            e.rev
                .as_deref()
                .map_or("(the default branch)".into(), text::line)
        );
        println!("  commit   {}", e.commit);
        println!("  hash     {}", e.hash);
        println!("  path     {}", root.display());
        let lib = Library {
            name: name.to_string(),
            root: root.clone(),
            pinned: Some(e.files.clone()),
            label: None,
        };
        let files = match lib.load() {
            Ok(f) => {
                println!(
                    "  check    the installed copy matches {}",
                    paths.lock.display()
                );
                f
            }
            Err(err) => {
                println!("  check    REFUSED: {}", text::line(&err));
                return Ok(());
            }
        };
        if let Ok(m) = tree::manifest_of(&files, &root.display().to_string()) {
            println!("  version  {}", text::line(&m.version));
            if !m.description.is_empty() {
                println!("  about    {}", text::line(&m.description));
            }
            println!(
                "  api      {} (this moksha: {})",
                text::line(&m.api),
                manifest::API
            );
        }
        println!("modules (import \"{name}/MODULE\")");
        for file in files.keys() {
            if let Some(module) = file
                .strip_prefix("modules/")
                .and_then(|f| f.strip_suffix(".rhai"))
            {
                let import = format!("{name}/{module}");
                let over = crate::script::resolver::library_dirs()
                    .into_iter()
                    .map(|d| d.join(format!("{import}.rhai")))
                    .find(|p| p.exists());
                match over {
                    Some(p) => println!(
                        "  {:<24} {} (overridden by {})",
                        text::line(&import),
                        lib.display(file),
                        p.display()
                    ),
                    None => println!("  {:<24} {}", text::line(&import), lib.display(file)),
                }
            }
        }
        println!("profiles (moksha exec {name}/PROFILE)");
        for file in files.keys() {
            if let Some(p) = file
                .strip_prefix("profiles/")
                .and_then(|f| f.strip_suffix(".rhai"))
            {
                println!(
                    "  {:<24} {}",
                    text::line(&format!("{name}/{p}")),
                    lib.display(file)
                );
            }
        }
        Ok(())
    };
    run().map_or_else(fail, |()| 0)
}

fn not_installed(name: &str, lock: &Lock) -> String {
    let names: Vec<&str> = lock.libraries.iter().map(|e| e.name.as_str()).collect();
    format!(
        "no library named {:?} is installed{}",
        text::line(name),
        if names.is_empty() {
            String::new()
        } else {
            format!(" (installed: {})", names.join(", "))
        }
    )
}

/// `moksha lib remove NAME`: the installed copy and its pin.
pub fn remove(name: &str) -> i32 {
    let run = || -> Result<(), String> {
        let paths = paths()?;
        let mut lock = Lock::read(&paths.lock)?;
        lock.remove(name)
            .ok_or_else(|| not_installed(name, &lock))?;
        let root = paths.libs.join(name);
        match std::fs::remove_dir_all(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", root.display())),
        }
        lock.write(&paths.lock)?;
        // An empty store goes too (and moksha's data directory, if that
        // leaves it empty).
        remove_empty_store(&paths);
        println!("removed {}", text::line(name));
        Ok(())
    };
    run().map_or_else(fail, |()| 0)
}

/// One profile's grants with the library before and after the update.
struct Effect {
    profile: String,
    before: Option<Result<crate::explain::Report, String>>,
    after: Option<Result<crate::explain::Report, String>>,
}

/// The report of profile `arg` with `libraries`, and whether it loaded
/// library `name` (`None` when it did not).
fn evaluate_with(
    arg: &str,
    name: &str,
    libraries: &Libraries,
) -> Option<Result<crate::explain::Report, String>> {
    let set = libraries.clone().with_fresh_use();
    let found = match crate::profiles::find_in(arg, &set) {
        Ok(f) => f,
        Err(e) => return set.used().contains(name).then_some(Err(e)),
    };
    let result = script::evaluate(&found.source, &[]);
    if !set.used().contains(name) {
        return None;
    }
    Some(
        result
            .map_err(|e| e.render())
            .and_then(|(plan, _)| crate::launch::report_of(&plan)),
    )
}

/// The profiles to compare: every profile `moksha profiles` lists, and the
/// staged library's own.
fn candidates(staged: &Staged) -> Vec<String> {
    let mut names: Vec<String> = crate::profiles::list()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| !n.ends_with("/*"))
        .collect();
    for p in &staged.manifest.profiles {
        let n = format!("{}/{p}", staged.name);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

fn effects(staged: &Staged, installed: &Libraries) -> Vec<Effect> {
    let after_set = installed.clone().with(staged.library());
    candidates(staged)
        .into_iter()
        .filter_map(|profile| {
            let before = evaluate_with(&profile, &staged.name, installed);
            let after = evaluate_with(&profile, &staged.name, &after_set);
            (before.is_some() || after.is_some()).then_some(Effect {
                profile,
                before,
                after,
            })
        })
        .collect()
}

/// Prints each effect; returns whether a profile that evaluated before
/// does not after (the update is then not applied).
fn print_effects(effects: &[Effect], from: &str, to: &str) -> bool {
    use crate::explain;
    let mut broken = false;
    if effects.is_empty() {
        println!("\nno profile imports it");
    }
    for e in effects {
        let name = text::line(&e.profile);
        match (&e.before, &e.after) {
            (Some(Ok(a)), Some(Ok(b))) => {
                let (mut a, mut b) = (a.clone(), b.clone());
                a.profile = format!("{} with {from}", a.profile);
                b.profile = format!("{} with {to}", b.profile);
                let d = explain::diff(&a, &b);
                if d.is_empty() {
                    println!("\nprofile {name}: no change in what its sandbox may do");
                } else {
                    println!("\nprofile {name}:");
                    print!("{}", explain::text_diff_as(&d, &explain::BEFORE_AFTER));
                }
            }
            (_, Some(Err(err))) => {
                broken |= matches!(e.before, Some(Ok(_)) | None);
                println!("\nprofile {name}: does not evaluate after the update:");
                print!("{}", text::lines(err));
            }
            (None | Some(Err(_)), Some(Ok(b))) => {
                println!(
                    "\nprofile {name}: {} before the update; with it, it grants:",
                    if e.before.is_some() {
                        "did not evaluate"
                    } else {
                        "did not exist or did not use the library"
                    }
                );
                print!("{}", explain::text(b));
            }
            (Some(_), None) => {
                println!("\nprofile {name}: no longer uses the library after the update");
            }
            (None, None) => {}
        }
    }
    broken
}

/// Asks on the terminal; without one, only `--yes` applies.
fn confirm(question: &str, yes: bool) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return true;
    }
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "moksha: lib: not applied: standard input is not a terminal to confirm on; \
             review the changes above and run again with --yes to apply them"
        );
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// `moksha lib update [NAME] [--rev R] [--yes]`.
pub fn update(name: Option<&str>, rev: Option<&str>, yes: bool) -> i32 {
    let run = || -> Result<bool, String> {
        let paths = paths()?;
        let lock = Lock::read(&paths.lock)?;
        let names: Vec<String> = match name {
            Some(n) => {
                lock.get(n).ok_or_else(|| not_installed(n, &lock))?;
                vec![n.to_string()]
            }
            None if rev.is_some() => return Err("--rev needs the NAME of one library".into()),
            None => lock.libraries.iter().map(|e| e.name.clone()).collect(),
        };
        if names.is_empty() {
            println!("no libraries installed");
        }
        let mut all_ok = true;
        for n in names {
            all_ok &= update_one(&paths, &n, rev, yes)?;
        }
        Ok(all_ok)
    };
    match run() {
        Ok(true) => 0,
        Ok(false) => EXIT_PROFILE,
        Err(e) => fail(e),
    }
}

/// Updates one library; Ok(false) when it was not applied.
fn update_one(paths: &Paths, name: &str, rev: Option<&str>, yes: bool) -> Result<bool, String> {
    let mut lock = Lock::read(&paths.lock)?;
    let old = lock
        .get(name)
        .cloned()
        .ok_or_else(|| not_installed(name, &lock))?;
    let rev = rev.or(old.rev.as_deref());
    let installed = Libraries::installed();
    let intact = installed
        .get(name)?
        .map(Library::load)
        .is_some_and(|r| r.is_ok());
    let staged = stage(paths, &old.source, rev, Some(name), &installed)?;
    if staged.commit == old.commit && intact && staged.entry(&old.source, rev).hash == old.hash {
        println!(
            "{name} is up to date: {} at {} (commit {})",
            text::line(&old.version),
            rev.unwrap_or("the default branch"),
            short(&old.commit)
        );
        if rev != old.rev.as_deref() {
            lock.put(staged.entry(&old.source, rev));
            lock.write(&paths.lock)?;
        }
        return Ok(true);
    }
    let from = format!(
        "{name} {} ({})",
        text::line(&old.version),
        short(&old.commit)
    );
    let to = format!(
        "{name} {} ({})",
        text::line(&staged.manifest.version),
        short(&staged.commit)
    );
    println!("update {from} -> {to}");
    if !intact {
        println!(
            "  the installed copy does not match its pin: it is replaced by the source's files"
        );
    }
    let effects = effects(&staged, &installed);
    if print_effects(&effects, &from, &to) {
        eprintln!(
            "moksha: lib: not applied: a profile that evaluated with {from} does not with {to}"
        );
        return Ok(false);
    }
    println!();
    if !confirm(&format!("apply the update to {to}?"), yes) {
        return Ok(false);
    }
    let entry = staged.entry(&old.source, rev);
    staged.install(paths, &mut lock, entry)?;
    println!("updated {from} -> {to}");
    Ok(true)
}

/// `moksha lib new NAME [DIR]`: a library to start from, whose test
/// passes `moksha test`.
pub fn new(name: &str, dir: Option<&Path>) -> i32 {
    let run = || -> Result<PathBuf, String> {
        manifest::check_name(name)?;
        let root = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
        if root.exists() {
            return Err(format!("{} exists; give a new directory", root.display()));
        }
        let mut files = Files::new();
        for (file, text) in scaffold(name) {
            files.insert(file.to_string(), text.into_bytes());
        }
        tree::write_dir(&root, &files)?;
        Ok(root)
    };
    match run() {
        Ok(root) => {
            let root = root.display();
            println!("created the library {name} in {root}:");
            println!("  {root}/moksha-lib.toml              name, version, API range, contents");
            println!("  {root}/modules/tools.rhai           import \"{name}/tools\"");
            println!("  {root}/profiles/hello.rhai          moksha exec {name}/hello");
            println!("  {root}/tests/hello.test.rhai        moksha test {root}");
            println!("publish it as a git repository; users run `moksha lib add URL --rev TAG`");
            0
        }
        Err(e) => fail(e),
    }
}

fn scaffold(name: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            manifest::FILE,
            format!(
                "# A moksha profile library (docs/libraries.md).\n\
                 name = \"{name}\"\n\
                 version = \"0.1.0\"\n\
                 description = \"\"\n\
                 # The profile API versions it works with.\n\
                 api = \">={api}\"\n\
                 # modules/NAME.rhai, imported as \"{name}/NAME\".\n\
                 modules = [\"tools\"]\n\
                 # profiles/NAME.rhai, run as `moksha exec {name}/NAME`.\n\
                 profiles = [\"hello\"]\n",
                api = manifest::API
            ),
        ),
        (
            "modules/tools.rhai",
            "// tools: the policy this library shares. Profiles import it as\n\
             // `import \"LIB/tools\" as tools;`; inside the library `import \"tools\"`\n\
             // finds it too. The stdlib's modules are importable as usual.\n\
             import \"base\" as base;\n\n\
             // A minimal root (base::minimal), no network, a private empty home.\n\
             fn locked_down(s) {\n    base::minimal(s);\n    s.network(\"none\");\n}\n"
                .to_string(),
        ),
        (
            "profiles/hello.rhai",
            "// hello: a profile of this library (moksha exec LIB/hello -- ARGS).\n\
             import \"tools\" as tools;\n\n\
             let s = sandbox(\"hello\");\n\
             tools::locked_down(s);\n\
             s.exec([\"/bin/echo\", \"hello from a sandbox\"] + ARGS);\n"
                .to_string(),
        ),
        (
            "tests/hello.test.rhai",
            format!(
                "// Run with `moksha test` in the library's directory (and in its CI).\n\
                 let plan = plan_of(\"{name}/hello\");\n\
                 assert_network(plan, \"none\");\n\
                 assert_no_bind(plan, home_dir());\n\
                 assert_denied(plan, \"ptrace\");\n\
                 assert(plan.process.exec.argv[0] == \"/bin/echo\", \"hello runs echo\");\n"
            ),
        ),
    ]
}
