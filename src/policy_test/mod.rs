//! `moksha test`: policy tests. Each `*.test.rhai` file is a Rhai program
//! with the profile API, `plan_of` and assertions (`api`); it passes when
//! it runs to its end, makes at least one assertion and none fails.
//! Inside a library's directory the library is its working copy, so a
//! library's repository tests itself with the same command.

mod api;

use crate::library::store::{Libraries, Library};
use crate::script::{self, diagnostics::ProfileError, ProfileSource, Sources};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const SUFFIX: &str = ".test.rhai";

/// A test failed (`commands::EXIT_PROFILE`).
const EXIT_FAILED: i32 = 1;

/// Every test file under `root` (or `root` itself), sorted; hidden
/// directories and `target` are skipped, symlinks not followed.
fn test_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if meta.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && !name.starts_with('.') && name != "target" {
                dirs.push(entry.path());
            } else if kind.is_file() && name.ends_with(SUFFIX) {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Runs one test file on a stack of the evaluation's size (`script::on_own_stack`).
fn run_file(
    file: &Path,
    libraries: &Libraries,
    library: Option<&Library>,
) -> Result<api::Outcome, String> {
    let text = match script::host::read_bounded(file, script::limits::STRING_BYTES as u64) {
        Ok(t) => t,
        Err(script::host::Unread::Refused(why)) => return Err(why),
        Err(script::host::Unread::Absent) => return Err(format!("cannot read {}", file.display())),
    };
    let in_library = library
        .filter(|l| std::fs::canonicalize(file).is_ok_and(|f| f.starts_with(&l.root)))
        .map(|l| l.name.clone());
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let source = ProfileSource {
        name: file.to_string_lossy().into_owned(),
        text,
        dir: Some(dir.clone()),
        library: in_library,
        libraries: Some(libraries.clone()),
        ..Default::default()
    };
    script::on_own_stack(|| run_here(&source, dir, libraries.clone()))?
}

fn run_here(
    source: &ProfileSource,
    dir: PathBuf,
    libraries: Libraries,
) -> Result<api::Outcome, String> {
    let sources = Rc::new(RefCell::new(Sources::new()));
    sources
        .borrow_mut()
        .insert(source.name.clone(), source.text.clone());
    let (mut engine, _) = script::engine_for(source, sources.clone());
    let state = Rc::new(RefCell::new(api::State {
        dir,
        libraries,
        outcome: api::Outcome::default(),
    }));
    api::register(&mut engine, &state);
    let rendered = |e: rhai::EvalAltResult| {
        ProfileError::script(&source.name, &e, sources.borrow().clone()).render()
    };
    let mut ast = engine
        .compile(&source.text)
        .map_err(|e| rendered(rhai::EvalAltResult::ErrorParsing(*e.0, e.1)))?;
    ast.set_source(source.name.as_str());
    let result = engine.run_ast(&ast);
    let outcome = std::mem::take(&mut state.borrow_mut().outcome);
    match result {
        Ok(()) => Ok(outcome),
        Err(e) => {
            // What failed before the error still counts, and shows.
            let mut text = String::new();
            for f in &outcome.failures {
                text.push_str(f);
                text.push('\n');
            }
            text.push_str(&rendered(*e));
            Err(text)
        }
    }
}

/// `moksha test [DIR]`.
pub fn run(dir: Option<&Path>) -> i32 {
    let root = dir.unwrap_or(Path::new("."));
    let prepared = test_files(root).and_then(|files| {
        let start = if root.is_file() {
            root.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
        } else {
            root
        };
        Ok((files, Library::working_copy_at(start)?))
    });
    let (files, library) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("moksha: test: {}", crate::text::shown(e));
            return EXIT_FAILED;
        }
    };
    if files.is_empty() {
        eprintln!(
            "moksha: test: no *{SUFFIX} file under {}: nothing was tested",
            root.display()
        );
        return EXIT_FAILED;
    }
    let mut libraries = Libraries::installed();
    if let Some(lib) = &library {
        println!(
            "library {} from its working copy {}",
            lib.name,
            lib.root.display()
        );
        libraries = libraries.with(lib.clone());
    }
    let mut failed = 0;
    let mut assertions = 0;
    for file in &files {
        let path = file.to_string_lossy();
        let shown = crate::text::line(&path);
        match run_file(file, &libraries, library.as_ref()) {
            Ok(o) if o.failures.is_empty() && o.assertions > 0 => {
                assertions += o.assertions;
                println!("ok    {shown} ({} assertions)", o.assertions);
            }
            Ok(o) if o.failures.is_empty() => {
                failed += 1;
                println!("FAIL  {shown}: it makes no assertion");
            }
            Ok(o) => {
                failed += 1;
                assertions += o.assertions;
                println!(
                    "FAIL  {shown}: {} of {} assertions failed",
                    o.failures.len(),
                    o.assertions
                );
                for f in &o.failures {
                    println!("  {f}");
                }
            }
            Err(e) => {
                failed += 1;
                println!("FAIL  {shown}: it stopped with an error");
                for line in crate::text::lines(&e).lines() {
                    println!("  {line}");
                }
            }
        }
    }
    println!(
        "\n{} test files, {} failed; {assertions} assertions",
        files.len(),
        failed
    );
    if failed > 0 {
        EXIT_FAILED
    } else {
        0
    }
}
