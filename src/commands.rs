//! The subcommands: each turns command-line arguments into work and an exit
//! code. Exit codes: 0 success; 1 a profile is invalid; 2 usage error (clap);
//! for `exec`, the program's own status (128+N for a signal), 124 when the
//! profile's timeout ended it, 125 when moksha could not set the sandbox
//! up, 126/127 when the program could not be executed / was not found
//! inside.

use crate::cli::{
    Builtin, Cli, Command, ExecArgs, ImportFrom, LibAction, Nested, PlanArgs, ProfilesAction,
    StdlibAction,
};
use crate::plan::validate::FilterFor;
use crate::plan::Plan;
use crate::script::overrides::Overrides;
use crate::script::{self, Timings};
use crate::text::{self, shown};
use crate::{explain, launch, manage, profiles};

/// Exit code for a profile that does not evaluate or validate.
pub const EXIT_PROFILE: i32 = 1;

pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Exec(ExecArgs {
            timings,
            name,
            detach,
            trace,
            quick,
            target,
        }) => {
            let opts = launch::Options {
                timings,
                name,
                detach,
                trace,
            };
            let flags = crate::quick::overrides(&quick);
            let (args, escaped) = target.args();
            exec(&target.profile(), &args, escaped, &flags, &opts)
        }
        Command::Ps { json, long, prune } => manage::ps(manage::PsOptions { json, long, prune }),
        Command::Rm { names } => manage::rm(&names),
        Command::Diff {
            name,
            stat,
            name_only,
        } => crate::changes::commands::diff(&name, stat, name_only),
        Command::Commit { name, paths } => crate::changes::commands::commit(&name, &paths),
        Command::Discard { name } => crate::changes::commands::discard(&name),
        Command::Install { list: true, .. } => crate::install::list(),
        Command::Install { names, .. } => crate::install::install(&names),
        Command::Uninstall { names, all } => crate::install::uninstall(&names, all),
        Command::Logs { name, follow, net } => manage::logs(&name, follow, net),
        Command::Stop { name, timeout } => manage::stop(&name, timeout),
        Command::Enter { name, command } => manage::enter(&name, command),
        Command::Plan(PlanArgs {
            json,
            resolved,
            name,
            detach,
            quick,
            target,
        }) => {
            let resolve = resolved.then_some(launch::Options {
                timings: false,
                name,
                detach,
                trace: false,
            });
            script::leave_to_exit();
            let flags = crate::quick::overrides(&quick);
            let (args, escaped) = target.args();
            plan(
                &target.profile(),
                &args,
                escaped,
                &flags,
                json,
                resolve.as_ref(),
            )
        }
        Command::Check { profiles } => check(&profiles),
        Command::Nested(Nested::Import {
            from: ImportFrom::Firejail { profiles, all, out },
        }) => import_firejail(&profiles, all, out.as_deref()),
        Command::Learn {
            apply,
            quick,
            target,
        } => {
            let flags = crate::quick::overrides(&quick);
            let (args, escaped) = target.args();
            learn(&target.profile(), &args, escaped, &flags, apply.as_deref())
        }
        Command::Explain {
            json,
            diff,
            quick,
            target,
        } => {
            script::leave_to_exit();
            let flags = crate::quick::overrides(&quick);
            let (args, _) = target.args();
            explain(&target.profile(), &args, &flags, json, diff.as_deref())
        }
        Command::Nested(Nested::Profiles { action: None }) => {
            for l in profiles::list() {
                let (name, place) = (text::line(&l.name), text::line(&l.place));
                if l.hides.is_empty() {
                    println!("{name:<16} {place}");
                } else {
                    println!(
                        "{name:<16} {place} (overrides {})",
                        text::line(&l.hides.join(", "))
                    );
                }
            }
            0
        }
        Command::Nested(Nested::Profiles {
            action: Some(ProfilesAction::Show { name, builtin }),
        }) => show_profile(&name, builtin),
        Command::Builtin(Builtin::Stdlib { action: None }) => {
            for (name, text) in script::resolver::stdlib() {
                println!("{name:<16} {}", summary(text));
            }
            0
        }
        Command::Builtin(Builtin::Stdlib {
            action: Some(StdlibAction::Show { module }),
        }) => show_module(&module),
        Command::Nested(Nested::Lib { action }) => {
            use crate::library_cli as lib;
            match action {
                LibAction::Add { source, name, rev } => {
                    lib::add(&source, name.as_deref(), rev.as_deref())
                }
                LibAction::List => lib::list(),
                LibAction::Update { name, rev, yes } => {
                    lib::update(name.as_deref(), rev.as_deref(), yes)
                }
                LibAction::Remove { name } => lib::remove(&name),
                LibAction::Show { name } => lib::show(&name),
                LibAction::New { name, dir } => lib::new(&name, dir.as_deref()),
            }
        }
        Command::Test { dir } => crate::policy_test::run(dir.as_deref()),
        Command::Completions { shell } => crate::manual::completions(shell),
        Command::Man { out } => crate::manual::man(out.as_deref()),
        Command::Api => {
            print!("{}", script::api_definitions());
            0
        }
    }
}

/// Finds, evaluates and validates a profile; prints the error and returns
/// None when that fails. With `program`, a name that is no profile but a
/// program on the host runs under the default profile; how the profile was
/// found is noted on stderr unless it is the built-in one named.
pub fn load(
    profile: &str,
    args: &[String],
    flags: &Overrides,
    program: bool,
    filter: FilterFor,
) -> Option<(Plan, Timings)> {
    let found = if program {
        profiles::find_or_program(profile)
    } else {
        profiles::find(profile)
    };
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            eprintln!("moksha: {}", shown(e));
            return None;
        }
    };
    for note in found.notes(profile) {
        eprintln!("moksha: note: {}", shown(note));
    }
    let with_program;
    let args = if let profiles::Origin::Program(_) = found.origin {
        // The default profile runs ARGS: the program as typed, then its
        // arguments, unchanged.
        with_program = [&[profile.to_string()], args].concat();
        &with_program
    } else {
        args
    };
    match script::evaluate_with(&found.source, args, flags, filter) {
        Ok(done) => Some(done),
        Err(e) => {
            eprint!("{}", text::lines(&e.render()));
            None
        }
    }
}

/// `moksha plan`: the profile's plan, or with `resolve` the plan `moksha
/// exec` would run with those options (nothing is started or created).
fn plan(
    profile: &str,
    args: &[String],
    escaped_bytes: bool,
    flags: &Overrides,
    json: bool,
    resolve: Option<&launch::Options>,
) -> i32 {
    // With `resolve`, validated with the filter the launch would install.
    let filter = resolve.map_or(FilterFor::Plan, |_| launch::filter_for_launch());
    let Some((mut plan, _)) = load(profile, args, flags, true, filter) else {
        return EXIT_PROFILE;
    };
    plan.process.escaped_bytes = escaped_bytes;
    let (plan, instance) = match resolve.map(|opts| launch::prepare(&plan, opts)) {
        None => (plan, None),
        Some(Ok(prepared)) => (prepared.plan, Some(prepared.name)),
        Some(Err(e)) => {
            eprintln!("moksha: {}", shown(e));
            return launch::EXIT_SETUP;
        }
    };
    if json {
        match serde_json::to_string_pretty(&plan) {
            Ok(json) => println!("{}", text::json(&json)),
            Err(e) => {
                eprintln!("moksha: cannot serialize the plan: {e}");
                return EXIT_PROFILE;
            }
        }
    } else {
        print!("{}", shown(plan.describe(&launch::host_view(&plan))));
        if let Some(name) = instance {
            println!("\ninstance {}", text::line(&name));
            print!("{}", shown(plan.describe_mounts()));
        }
    }
    0
}

/// `moksha explain`: the grants of the plan `moksha exec` would run, and
/// with `diff` what they have that another profile's have not.
fn explain(
    profile: &str,
    args: &[String],
    flags: &Overrides,
    json: bool,
    diff: Option<&str>,
) -> i32 {
    let a = match explained(profile, args, flags) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let Some(other) = diff else {
        print!(
            "{}",
            if json {
                explain::json(&a) + "\n"
            } else {
                explain::text(&a)
            }
        );
        return 0;
    };
    let b = match explained(other, args, flags) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let d = explain::diff(&a, &b);
    print!(
        "{}",
        if json {
            explain::json_diff(&d) + "\n"
        } else {
            explain::text_diff(&d)
        }
    );
    0
}

/// The report of one profile (`launch::report_of`).
fn explained(profile: &str, args: &[String], flags: &Overrides) -> Result<explain::Report, i32> {
    let (plan, _) = load(profile, args, flags, true, FilterFor::Plan).ok_or(EXIT_PROFILE)?;
    launch::report_of(&plan).map_err(|e| {
        eprintln!("moksha: {}", shown(e));
        EXIT_PROFILE
    })
}

/// `moksha learn`: a traced run, then the snippet that grants what it was
/// refused (printed, or appended to `apply`). Returns the program's code.
fn learn(
    profile: &str,
    args: &[String],
    escaped_bytes: bool,
    flags: &Overrides,
    apply: Option<&std::path::Path>,
) -> i32 {
    let Some((mut plan, _)) = load(profile, args, flags, true, FilterFor::Plan) else {
        return EXIT_PROFILE;
    };
    plan.process.escaped_bytes = escaped_bytes;
    warn(&plan);
    let opts = launch::Options {
        trace: true,
        ..Default::default()
    };
    let (code, traced) = launch::run_traced(plan, &opts);
    let Some((resolved, tally)) = traced else {
        eprintln!("moksha: learn: the traced run left no denial log (see above)");
        return if code == 0 { launch::EXIT_SETUP } else { code };
    };
    let home = script::host::home_dir();
    let on_host = |p: &str| std::path::Path::new(p).exists();
    let Some(snippet) = explain::learn::snippet(&resolved, &tally, &home, &on_host) else {
        eprintln!("moksha: learn: nothing was refused that a profile edit would grant");
        return code;
    };
    let Some(file) = apply else {
        print!("{}", text::lines(&snippet));
        return code;
    };
    match append_learned(profile, file, &snippet) {
        Ok(()) => {
            eprintln!(
                "moksha: learn: appended to {}; review it, then run it with moksha exec {}",
                file.display(),
                file.display()
            );
            code
        }
        Err(e) => {
            eprintln!("moksha: learn: {}", shown(e));
            EXIT_PROFILE
        }
    }
}

/// Appends `snippet` to `file`, a user copy of `profile` (made from the
/// profile's source when it does not exist yet).
fn append_learned(profile: &str, file: &std::path::Path, snippet: &str) -> Result<(), String> {
    use std::io::Write;
    let shown_file = file.display();
    if !file.exists() {
        let found = profiles::find_or_program(profile).map_err(|e| e.to_string())?;
        std::fs::write(file, &found.source.text)
            .map_err(|e| format!("cannot write {shown_file}: {e}"))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .map_err(|e| format!("cannot open {shown_file}: {e}"))?;
    write!(
        f,
        "\n// ---- added by `moksha learn` (review before use) ----\n{snippet}"
    )
    .map_err(|e| format!("cannot write {shown_file}: {e}"))
}

fn check(list: &[String]) -> i32 {
    let mut bad = 0;
    for profile in list {
        let Some((plan, _)) = load(profile, &[], &Overrides::default(), false, FilterFor::Plan)
        else {
            bad += 1;
            continue;
        };
        warn(&plan);
        // What the host can tell without a namespace: bind sources, mount
        // points inside read-only binds, the network helper, busy ports.
        match launch::host_checks(&plan).map(drop) {
            Ok(()) => println!("{}: ok", text::line(profile)),
            Err(e) => {
                eprintln!("moksha: {}: {}", text::line(profile), shown(e));
                bad += 1;
            }
        }
    }
    if bad > 0 {
        eprintln!("moksha: {bad} of {} profiles failed", list.len());
        EXIT_PROFILE
    } else {
        0
    }
}

fn exec(
    profile: &str,
    args: &[String],
    escaped_bytes: bool,
    flags: &Overrides,
    opts: &launch::Options,
) -> i32 {
    let start = std::time::Instant::now();
    let Some((mut plan, timings)) = load(profile, args, flags, true, launch::filter_for_launch())
    else {
        return EXIT_PROFILE;
    };
    plan.process.escaped_bytes = escaped_bytes;
    if opts.timings {
        eprintln!(
            "moksha timings: engine {:?}, compile {:?}, eval {:?}, validate {:?}, total {:?}",
            timings.engine,
            timings.compile,
            timings.eval,
            timings.validate,
            start.elapsed()
        );
    }
    warn(&plan);
    launch::run(plan, opts)
}

/// `moksha import firejail`: each profile converted and written, a
/// summary line for each, the lines left out, and the totals (each file
/// counted once, however many profiles include it).
fn import_firejail(names: &[String], all: bool, out: Option<&std::path::Path>) -> i32 {
    use crate::import;
    let dirs = import::Dirs::host();
    let out = match out {
        Some(dir) => dir.to_path_buf(),
        None => match profiles::profile_dirs().into_iter().next() {
            Some(dir) => dir,
            None => {
                eprintln!("moksha: no configuration directory is known; give one with -o DIR");
                return 2;
            }
        },
    };
    let mut paths = Vec::new();
    let mut failed = 0;
    if all {
        paths.extend(import::all(&dirs));
    }
    for name in names {
        match import::find(name, &dirs) {
            Ok(path) => paths.push(path),
            Err(e) => {
                eprintln!("moksha: {}", shown(e.0));
                failed += 1;
            }
        }
    }
    let mut total = import::Summary::default();
    let mut counted = std::collections::HashSet::new();
    let mut done = 0;
    for path in &paths {
        let imported = match import::import(path, &dirs) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("moksha: {}", shown(e.0));
                failed += 1;
                continue;
            }
        };
        let written = match import::write(&imported, &out) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("moksha: {}", shown(e.0));
                failed += 1;
                continue;
            }
        };
        done += 1;
        let s = imported.emitted.summary();
        println!(
            "{}: {} -> {}: {} lines: {} translated, {} approximated, {} not supported",
            text::line(&imported.name),
            text::line(&path.display().to_string()),
            text::line(&written.display().to_string()),
            s.lines(),
            s.translated,
            s.approximated,
            s.unsupported
        );
        for (file, summary) in imported.files.iter().zip(&imported.emitted.per_file) {
            if counted.insert(file.clone()) {
                total.add(summary);
                for line in &summary.left_out {
                    println!("  not supported: {}", text::line(line));
                }
            }
        }
    }
    if paths.len() > 1 {
        let pct = |n: usize| {
            if total.lines() == 0 {
                100.0
            } else {
                100.0 * n as f64 / total.lines() as f64
            }
        };
        println!(
            "total: {done} of {} profiles imported; {} directive lines in their files: \
             {} translated, {} approximated ({:.1}% in all), {} not supported",
            paths.len(),
            total.lines(),
            total.translated,
            total.approximated,
            pct(total.translated + total.approximated),
            total.unsupported
        );
    }
    if failed > 0 {
        eprintln!("moksha: {failed} profiles could not be imported");
        EXIT_PROFILE
    } else {
        0
    }
}

/// The plan's warnings on stderr, one line each (a warning is one line by
/// design: a newline in it cannot forge a line of moksha's own).
fn warn(plan: &Plan) {
    for w in crate::plan::helper::warnings(plan) {
        eprintln!("moksha: warning: {}", text::line(&w));
    }
}

/// `moksha profiles show NAME`: the source `exec NAME` would use (or the
/// built-in one), to copy and edit.
fn show_profile(name: &str, builtin: bool) -> i32 {
    let text = if builtin {
        profiles::builtin(name)
            .map(str::to_string)
            .ok_or_else(|| format!("no built-in profile named {name:?} (see `moksha profiles`)"))
    } else {
        profiles::find(name).map(|found| {
            for note in found.notes(name) {
                eprintln!("moksha: note: {}", shown(note));
            }
            found.source.text
        })
    };
    match text {
        Ok(source) => {
            // The exact bytes to copy into a file; on a terminal, shown.
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                print!("{}", text::lines(&source));
            } else {
                print!("{source}");
            }
            0
        }
        Err(e) => {
            eprintln!("moksha: {}", shown(e));
            EXIT_PROFILE
        }
    }
}

/// `moksha stdlib show MODULE`: an embedded stdlib module's source.
fn show_module(module: &str) -> i32 {
    let module = module.strip_suffix(".rhai").unwrap_or(module);
    match script::resolver::stdlib()
        .iter()
        .find(|(n, _)| *n == module)
    {
        Some((_, text)) => {
            print!("{text}");
            0
        }
        None => {
            let names: Vec<&str> = script::resolver::stdlib().iter().map(|(n, _)| *n).collect();
            eprintln!(
                "moksha: no stdlib module named {module:?}; the modules are {}",
                names.join(", ")
            );
            EXIT_PROFILE
        }
    }
}

/// The first sentence of a module's header comment, without the `NAME:`.
fn summary(text: &str) -> String {
    let head: Vec<&str> = text
        .lines()
        .map_while(|l| l.strip_prefix("//"))
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let head = head.join(" ");
    let head = head
        .split_once(": ")
        .map_or(head.as_str(), |(_, rest)| rest);
    match head.find(". ") {
        Some(end) => head[..=end].to_string(),
        None => head.to_string(),
    }
}
