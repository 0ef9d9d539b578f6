//! The subcommands: each turns command-line arguments into work and an exit
//! code. Exit codes: 0 success; 1 a profile is invalid; 2 usage error (clap);
//! for `exec`, the program's own status (128+N for a signal), 124 when the
//! profile's timeout ended it, 125 when moksha could not set the sandbox
//! up, 126/127 when the program could not be executed / was not found
//! inside.

use crate::cli::{Cli, Command};
use crate::plan::Plan;
use crate::script::{self, Timings};
use crate::{launch, manage, profiles};

/// Exit code for a profile that does not evaluate or validate.
pub const EXIT_PROFILE: i32 = 1;

pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Exec {
            profile,
            timings,
            name,
            detach,
            args,
        } => {
            let opts = launch::Options {
                timings,
                name,
                detach,
            };
            exec(&profile, &args, &opts)
        }
        Command::Ps { json, long, prune } => manage::ps(manage::PsOptions { json, long, prune }),
        Command::Rm { names } => manage::rm(&names),
        Command::Install { list: true, .. } => crate::install::list(),
        Command::Install { names, .. } => crate::install::install(&names),
        Command::Uninstall { names, all } => crate::install::uninstall(&names, all),
        Command::Logs { name, follow } => manage::logs(&name, follow),
        Command::Stop { name, timeout } => manage::stop(&name, timeout),
        Command::Enter { name, command } => manage::enter(&name, command),
        Command::Plan {
            profile,
            json,
            resolved,
            name,
            detach,
            args,
        } => {
            let resolve = resolved.then_some(launch::Options {
                timings: false,
                name,
                detach,
            });
            plan(&profile, &args, json, resolve.as_ref())
        }
        Command::Check { profiles } => check(&profiles),
        Command::Profiles => {
            for (name, place) in profiles::list() {
                println!("{name:<16} {place}");
            }
            0
        }
        Command::Api => {
            print!("{}", script::api_definitions());
            0
        }
    }
}

/// Finds, evaluates and validates a profile; prints the error and returns
/// None when that fails.
pub fn load(profile: &str, args: &[String]) -> Option<(Plan, Timings)> {
    let source = match profiles::find(profile) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("moksha: {e}");
            return None;
        }
    };
    match script::evaluate(&source, args) {
        Ok(done) => Some(done),
        Err(e) => {
            eprint!("{}", e.render());
            None
        }
    }
}

/// `moksha plan`: the profile's plan, or with `resolve` the plan `moksha
/// exec` would run with those options (nothing is started or created).
fn plan(profile: &str, args: &[String], json: bool, resolve: Option<&launch::Options>) -> i32 {
    let Some((plan, _)) = load(profile, args) else {
        return EXIT_PROFILE;
    };
    let (plan, instance) = match resolve.map(|opts| launch::prepare(&plan, opts)) {
        None => (plan, None),
        Some(Ok(prepared)) => (prepared.plan, Some(prepared.name)),
        Some(Err(e)) => {
            eprintln!("moksha: {e}");
            return launch::EXIT_SETUP;
        }
    };
    if json {
        match serde_json::to_string_pretty(&plan) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("moksha: cannot serialize the plan: {e}");
                return EXIT_PROFILE;
            }
        }
    } else {
        print!("{}", plan.describe(&launch::host_view(&plan)));
        if let Some(name) = instance {
            println!("\ninstance {name}");
            print!("{}", plan.describe_mounts());
        }
    }
    0
}

fn check(list: &[String]) -> i32 {
    let mut bad = 0;
    for profile in list {
        match load(profile, &[]) {
            Some((plan, _)) => {
                println!("{profile}: ok");
                for w in crate::plan::helper::warnings(&plan) {
                    eprintln!("moksha: warning: {w}");
                }
            }
            None => bad += 1,
        }
    }
    if bad > 0 {
        eprintln!("moksha: {bad} of {} profiles failed", list.len());
        EXIT_PROFILE
    } else {
        0
    }
}

fn exec(profile: &str, args: &[String], opts: &launch::Options) -> i32 {
    let start = std::time::Instant::now();
    let Some((plan, timings)) = load(profile, args) else {
        return EXIT_PROFILE;
    };
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
    for w in crate::plan::helper::warnings(&plan) {
        eprintln!("moksha: warning: {w}");
    }
    launch::run(&plan, opts)
}
