//! Command-line definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const AFTER_HELP: &str = "\
A PROFILE is a path (anything with a '/' or ending in .rhai; - reads it from stdin),
or a name looked up in ~/.config/moksha/profiles, /etc/moksha/profiles, then the
built-in profiles; a file in those directories overrides the built-in of its name.
A name never comes from the working directory: give ./NAME.rhai for a file there.
LIB/NAME, where LIB is an installed library (`moksha lib list`), is that library's
profile NAME.
For exec and plan, a name that is no profile but a program on PATH runs under the
strict `default` profile.

Everything after the profile is the program's: moksha's options go before it.
`--` after the profile is optional, and needed when the first argument is one of
moksha's options (moksha exec ls -- -d).";

#[derive(Parser, Debug)]
#[command(
    name = "moksha",
    version,
    about = "A programmable Linux application sandbox: profiles are Rhai programs",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// The profile and the program's arguments: everything after the profile
// belongs to the program, byte for byte. (Plain comments here and on
// `Quick`: a doc comment on a flattened struct is an `about`, and with the
// subcommands deferred it would replace the subcommand's own.)
#[derive(Args, Debug)]
pub struct Target {
    /// The profile (path, name, or - for stdin), then the arguments it gets as ARGS.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "PROFILE [ARGS]",
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    pub words: Vec<std::ffi::OsString>,
}

// The quick flags: sugar for the same Rhai calls, applied after the
// profile (in this order: network, home, binds, environment, working
// directory).
#[derive(Args, Debug, Default)]
pub struct Quick {
    /// The network: none, host or user (s.network(MODE)).
    #[arg(long, value_name = "MODE")]
    pub net: Option<NetMode>,
    /// A private empty home, or a persistent one kept for this sandbox's name
    /// under ~/.local/share/moksha/homes (home::persistent).
    #[arg(long, value_name = "KIND")]
    pub home: Option<HomeKind>,
    /// Bind the host path SRC read-only at DST (default: the same path);
    /// repeatable. A relative SRC is taken from the working directory; it
    /// must exist.
    #[arg(long = "bind", value_name = "SRC[:DST]", value_parser = BindSpec::parse)]
    pub binds: Vec<BindSpec>,
    /// Like --bind, read-write.
    #[arg(long = "rw-bind", value_name = "SRC[:DST]", value_parser = BindSpec::parse)]
    pub rw_binds: Vec<BindSpec>,
    /// Set an environment variable for the program; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = env_pair)]
    pub envs: Vec<(String, String)>,
    /// The program's working directory inside the sandbox.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum NetMode {
    None,
    Host,
    User,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum HomeKind {
    Private,
    Persistent,
}

/// `SRC[:DST]` of --bind and --rw-bind, split at the first ':'.
#[derive(Clone, Debug, PartialEq)]
pub struct BindSpec {
    pub source: String,
    pub target: Option<String>,
}

impl BindSpec {
    fn parse(text: &str) -> Result<BindSpec, String> {
        let (source, target) = match text.split_once(':') {
            Some((s, t)) => (s, Some(t)),
            None => (text, None),
        };
        if source.is_empty() {
            return Err("the source is empty; write SRC or SRC:DST".into());
        }
        // A host path: a relative one is taken from the working directory.
        let source = if source.starts_with('/') {
            source.to_string()
        } else {
            let here = std::env::current_dir()
                .map_err(|e| format!("cannot resolve the relative path {source}: {e}"))?;
            here.join(source).to_string_lossy().into_owned()
        };
        if std::fs::symlink_metadata(&source).is_err() {
            return Err(format!("{source} does not exist on the host"));
        }
        if target.is_some_and(|t| !t.starts_with('/')) {
            return Err(
                "DST is a path inside the sandbox and must be absolute (start with /)".into(),
            );
        }
        Ok(BindSpec {
            source,
            target: target.map(Into::into),
        })
    }
}

fn env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.into(), value.into())),
        _ => Err("expected NAME=VALUE".into()),
    }
}

/// An instance name, checked by the same rules as `s.name()`.
fn instance_name(name: &str) -> Result<String, String> {
    crate::state::check_name(name).map(|()| name.to_string())
}

// `exec`'s and `plan`'s arguments, shared by `Command` and the parser that
// builds only the subcommand given (`parse`). (Plain comments: see `Target`.)
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Print how long each phase of startup took, to stderr.
    #[arg(long)]
    pub timings: bool,
    /// Instance name for `moksha ps/logs/stop/enter` (default: the
    /// sandbox name plus a short id, or the profile's `s.name()`).
    #[arg(long, value_parser = instance_name)]
    pub name: Option<String>,
    /// Return once the program runs; its output goes to log files.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Trace mode (the profile's s.trace(true)): record what the program
    /// is refused (seccomp refusals, paths not in its view or not
    /// writable, connections refused) and print a summary at exit, each
    /// with its count and the profile line or default that caused it.
    /// The program gets the same answers as without it.
    #[arg(long)]
    pub trace: bool,
    #[command(flatten)]
    pub quick: Quick,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the plan `moksha exec` would run with the same options: with
    /// what the launcher adds (helper binds, the network's resolv.conf,
    /// the rules for root launches) and the mount operations that build
    /// the root. It is what the instance record stores.
    #[arg(long)]
    pub resolved: bool,
    /// With --resolved: the instance name `moksha exec --name` would get.
    #[arg(long, requires = "resolved")]
    pub name: Option<String>,
    /// With --resolved: as `moksha exec --detach` would run it.
    #[arg(long, short = 'd', requires = "resolved")]
    pub detach: bool,
    #[command(flatten)]
    pub quick: Quick,
    #[command(flatten)]
    pub target: Target,
}

/// Each subcommand's arguments are built only when it is the one given
/// (`defer`): building all of them was half of `moksha --version`'s own
/// instructions. Help, man pages and completions build the whole tree.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Run a program in the sandbox a profile describes.
    Exec(ExecArgs),
    /// Print the plan a profile evaluates to, without running anything.
    Plan(PlanArgs),
    /// What the program in a profile's sandbox can reach, in words: files
    /// (path inside, access, host source, the profile line that granted
    /// it), environment, network, devices, D-Bus names, syscalls refused,
    /// capabilities, limits, helpers; and an exposure score (0 is the
    /// strictest; weights in docs/explain.md). Nothing is started.
    Explain {
        /// Print the grants and the score as JSON.
        #[arg(long)]
        json: bool,
        /// Compare with this profile (same arguments and options): list
        /// what one grants that the other does not. May also follow the
        /// profile: `moksha explain A --diff B`.
        #[arg(long, value_name = "PROFILE_B")]
        diff: Option<String>,
        #[command(flatten)]
        quick: Quick,
        #[command(flatten)]
        target: Target,
    },
    /// Run the program in trace mode and print the profile edits that would
    /// have made what it was refused work: a Rhai snippet to review, grouped
    /// by kind (binds read-only / read-write, syscalls, network, D-Bus).
    /// Nothing is applied unless --apply names a file.
    Learn {
        /// Append the snippet, with a comment header, to this copy of the
        /// profile (created from the profile's source when missing).
        #[arg(long, value_name = "FILE")]
        apply: Option<std::path::PathBuf>,
        #[command(flatten)]
        quick: Quick,
        #[command(flatten)]
        target: Target,
    },
    /// Evaluate and validate profiles, and check what the host can tell without
    /// a namespace (bind sources, mount points inside read-only binds, the
    /// network helper, busy ports); exit 0 if all are fine, 1 otherwise.
    Check {
        #[arg(required = true)]
        profiles: Vec<String>,
    },
    /// List your sandboxes: running, and those that ended (until `moksha rm`).
    Ps {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The long table: start times and the profile's full path.
        #[arg(long, short = 'l')]
        long: bool,
        /// Forget the ended sandboxes once listed.
        #[arg(long)]
        prune: bool,
    },
    /// Show what a sandbox changed in a directory it had as an overlay
    /// (s.overlay): added (A), modified (M) and deleted (D) files, with a
    /// unified diff of text files.
    Diff {
        /// The changes' name (the sandbox's name unless the overlay says
        /// #{ name: ... }; `moksha ps` lists them).
        name: String,
        /// One line per change with the lines added and removed, and a total.
        #[arg(long)]
        stat: bool,
        /// Only the list of changed paths, with their kind.
        #[arg(long)]
        name_only: bool,
    },
    /// Apply a sandbox's changes (s.overlay) to the real directory: all of
    /// them, or those below the given paths. Refused, with nothing
    /// applied, when the host changed one of those files since the sandbox
    /// started, or while a sandbox uses the changes.
    Commit {
        name: String,
        /// Paths relative to the directory (or absolute inside it); none: all.
        paths: Vec<String>,
    },
    /// Throw a sandbox's changes (s.overlay) away.
    Discard { name: String },
    /// Forget ended sandboxes: their record, exit status and logs.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print the output of a detached sandbox.
    Logs {
        name: String,
        /// Keep printing new output until the sandbox ends.
        #[arg(long, short = 'f')]
        follow: bool,
        /// The egress proxy's decisions instead (allowed / refused, name,
        /// port, rule, reason), one a line; for foreground sandboxes too,
        /// while they run.
        #[arg(long)]
        net: bool,
    },
    /// Stop a sandbox: SIGTERM to the program, SIGKILL to everything in it
    /// after the timeout.
    Stop {
        name: String,
        /// Seconds to wait after SIGTERM before killing.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Run a command inside a running sandbox, under the same policy.
    Enter {
        name: String,
        /// The command (default: /bin/sh).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run applications through moksha from the shell and the desktop: a
    /// wrapper in ~/.local/bin and .desktop overrides in
    /// ~/.local/share/applications (like Firejail's firecfg).
    Install {
        /// Profiles whose application to install (see `moksha profiles`).
        #[arg(required_unless_present = "list", conflicts_with = "list")]
        names: Vec<String>,
        /// Show what moksha installed, and what it could install.
        #[arg(long)]
        list: bool,
    },
    /// Remove what `moksha install` wrote (files changed since are kept).
    Uninstall {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        names: Vec<String>,
        /// Everything moksha installed.
        #[arg(long)]
        all: bool,
    },
    // Subcommands with subcommands of their own are built with the whole
    // tree: `help`'s copy of the tree is made before deferred parts are
    // built, and would lack theirs (`moksha help lib <TAB>`).
    #[command(flatten)]
    Nested(Nested),
    /// Run the policy tests: every *.test.rhai file under DIR (default: the
    /// working directory) evaluates profiles and asserts on their plans;
    /// each failed assertion is printed with its file:line:column. Exit 0
    /// when all pass, 1 otherwise (also when there is no test file).
    #[command(after_help = TEST_HELP)]
    Test {
        /// A directory to search for *.test.rhai files, or one such file.
        dir: Option<std::path::PathBuf>,
    },
    #[command(flatten)]
    Builtin(Builtin),
    /// Print the profile API (every function with its documentation) as Rhai definitions.
    Api,
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    Completions { shell: Shell },
    /// Write the manual pages: moksha.1 to stdout, or every page into DIR.
    Man {
        /// Write moksha.1 and a page per subcommand (moksha-exec.1, ...) here.
        #[arg(long, short = 'o', value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
}

/// `Command`'s subcommands that have their own, in its order (not deferred).
#[derive(Subcommand, Debug)]
pub enum Nested {
    /// Convert another sandbox's profiles into moksha profiles.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// List the profiles moksha can find, where each comes from and what it
    /// overrides; `show NAME` prints one.
    Profiles {
        #[command(subcommand)]
        action: Option<ProfilesAction>,
    },
    /// Profile libraries: modules and profiles shared as git repositories,
    /// installed pinned to a commit and a content hash (libs.lock) and
    /// checked against it whenever they are loaded.
    #[command(after_help = LIB_HELP)]
    Lib {
        #[command(subcommand)]
        action: LibAction,
    },
}

/// `moksha stdlib`, after `test` among `Command`'s subcommands (not deferred).
#[derive(Subcommand, Debug)]
pub enum Builtin {
    /// List the stdlib modules built into the binary; `show MODULE` prints one.
    Stdlib {
        #[command(subcommand)]
        action: Option<StdlibAction>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProfilesAction {
    /// Print the source of the profile NAME resolves to (to copy and edit).
    Show {
        name: String,
        /// The built-in profile, even when a file overrides it.
        #[arg(long)]
        builtin: bool,
    },
}

pub const LIB_HELP: &str = "\
A library is a directory with moksha-lib.toml, modules/*.rhai and profiles/*.rhai
(`moksha lib new NAME` makes one). It is installed in ~/.local/share/moksha/libs/NAME
and pinned in ~/.config/moksha/libs.lock. A profile imports its modules as
`import \"NAME/MODULE\" as m;` and its profiles run as `moksha exec NAME/PROFILE`.
A library whose installed files changed since they were pinned is refused, naming
the file, until `moksha lib update NAME` installs the pinned source again.
docs/libraries.md has the details.";

pub const TEST_HELP: &str = "\
In a test file, plan_of(PROFILE) (or plan_of(PROFILE, ARGS)) evaluates a profile (a
name, LIB/NAME, or a path relative to the test file) into its plan as a map, and
these check it: assert(COND, MESSAGE), assert_no_bind(PLAN, HOST_PATH),
assert_network(PLAN, \"none\"|\"host\"|\"user\"|\"join\"), assert_denied(PLAN, SYSCALL).
In a library's directory (or below it), the library is the working copy: its
imports and LIB/NAME profiles are read from there.";

#[derive(Subcommand, Debug)]
pub enum LibAction {
    /// Install a library from a git URL or a local repository's path, at a
    /// tag, branch or commit (default: the default branch). Every module and
    /// profile must evaluate, or nothing is installed.
    Add {
        /// A git URL (https://, ssh, file://) or a path to a git repository.
        source: String,
        /// Install under this name (default: the manifest's).
        #[arg(long)]
        name: Option<String>,
        /// The tag, branch or commit to pin.
        #[arg(long)]
        rev: Option<String>,
    },
    /// List the installed libraries: name, version, commit, rev, source and
    /// whether the installed copy matches its pin.
    List,
    /// Fetch a library again (or every one) at its rev or --rev, print what
    /// changes in every sandbox whose profile imports it (the grants, as
    /// `moksha explain --diff` shows them), and apply it once confirmed.
    Update {
        /// The library (default: all).
        name: Option<String>,
        /// Move to this tag, branch or commit.
        #[arg(long)]
        rev: Option<String>,
        /// Apply without asking (without a terminal, nothing is applied
        /// unless this is given).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Remove a library: its installed copy and its pin.
    Remove { name: String },
    /// Show a library's pin, manifest, and where each of its modules and
    /// profiles comes from.
    Show { name: String },
    /// Create a new library directory: a manifest, a module, a profile and a
    /// test that passes `moksha test`.
    New {
        name: String,
        /// The directory to create (default: ./NAME).
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportFrom {
    /// Convert Firejail profiles into readable .rhai profiles that keep
    /// Firejail's directives and meaning (the stdlib's firejail module).
    #[command(after_help = IMPORT_FIREJAIL_HELP)]
    Firejail {
        /// Profiles: a path (with a '/' or ending in .profile), or a NAME looked up as
        /// Firejail does: ~/.config/firejail/NAME.profile, then /etc/firejail/NAME.profile.
        #[arg(required_unless_present = "all", value_name = "FILE|NAME")]
        profiles: Vec<String>,
        /// Every profile in /etc/firejail and ~/.config/firejail.
        #[arg(long)]
        all: bool,
        /// Write into DIR instead of ~/.config/moksha/profiles.
        #[arg(long, short = 'o', value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
}

pub const IMPORT_FIREJAIL_HELP: &str = "\
Each profile becomes DIR/NAME.rhai, and each file it includes (disable-common.inc,
NAME.local, globals.local, ...) a module DIR/firejail/FILE.rhai, so `moksha exec NAME`
runs it. Your .local files and globals.local are read as Firejail reads them, at
import time: import again after changing them. A line moksha cannot express is kept
as a comment with the reason; a summary per profile says how many lines were
translated, approximated and left out. Files the importer did not write are never
overwritten.

Without converting: `moksha exec firejail:NAME -- ARGS` and `moksha plan firejail:NAME`
import the profile in memory. docs/firejail.md says what maps to what.";

#[derive(Subcommand, Debug)]
pub enum StdlibAction {
    /// Print the source of the built-in stdlib module MODULE.
    Show { module: String },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Target {
    /// The profile argument.
    pub fn profile(&self) -> String {
        crate::arg::to_text(&self.words[0]).0
    }

    /// The program's arguments: everything after the profile, less one `--`
    /// right after it, as profile text (see `crate::arg`), and whether a
    /// byte that is not UTF-8 had to be escaped.
    pub fn args(&self) -> (Vec<String>, bool) {
        let rest = &self.words[1..];
        let rest = match rest.first() {
            Some(first) if first == "--" => &rest[1..],
            _ => rest,
        };
        let texts: Vec<(String, bool)> = rest.iter().map(|a| crate::arg::to_text(a)).collect();
        let escaped = texts.iter().any(|(_, e)| *e);
        (texts.into_iter().map(|(t, _)| t).collect(), escaped)
    }

    /// `PROFILE --diff B [ARGS]` or `PROFILE --diff=B [ARGS]`: takes B into
    /// `diff` (unless it was given before the profile) and leaves the rest.
    fn diff_after_profile(&mut self, diff: &mut Option<String>) {
        let Some(first) = self.words.get(1).and_then(|w| w.to_str()) else {
            return;
        };
        let (value, taken) = if first == "--diff" {
            match self.words.get(2) {
                Some(b) => (crate::arg::to_text(b).0, 2),
                None => return,
            }
        } else if let Some(b) = first.strip_prefix("--diff=") {
            (b.to_string(), 1)
        } else {
            return;
        };
        if diff.is_none() {
            *diff = Some(value);
            self.words.drain(1..1 + taken);
        }
    }

    /// The first argument when it is one of moksha's own options for
    /// `sub`: likely meant for moksha, so refused rather than guessed.
    fn misplaced_option(&self, sub: &clap::Command) -> Option<&str> {
        let first = self.words.get(1)?.to_str()?;
        // Help and version are left to the program (`ls -h`): moksha's own
        // come before the profile.
        let known = sub
            .get_arguments()
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .any(|a| {
                if let Some(long) = first.strip_prefix("--") {
                    let name = long.split('=').next().unwrap_or(long);
                    !name.is_empty() && a.get_long() == Some(name)
                } else if let Some(short) = first.strip_prefix('-') {
                    short.chars().next().is_some() && a.get_short() == short.chars().next()
                } else {
                    false
                }
            });
        known.then_some(first)
    }
}

impl Command {
    /// Whether the command's work is printing, so that a reader who stops
    /// reading (`| head`) may end it: not the ones that run sandboxes,
    /// talk to a sandbox or to git, or change files.
    pub fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Plan(_)
                | Command::Explain { .. }
                | Command::Check { .. }
                | Command::Ps { .. }
                | Command::Diff { .. }
                | Command::Logs { .. }
                | Command::Nested(Nested::Profiles { .. })
                | Command::Builtin(Builtin::Stdlib { .. })
                | Command::Api
                | Command::Completions { .. }
                | Command::Man { .. }
                | Command::Test { .. }
        )
    }
}

/// `exec` and `plan` alone: the commands run most often, parsed without
/// building the other subcommands (building and dropping the whole tree
/// was 0.14 M of `moksha plan bench/workload.rhai`'s 1.55 M instructions,
/// measured with callgrind).
#[derive(Parser, Debug)]
#[command(name = "moksha", version)]
struct Hot {
    #[command(subcommand)]
    command: HotCommand,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
enum HotCommand {
    Exec(ExecArgs),
    Plan(PlanArgs),
}

/// The command line parsed by `Hot` when it names `exec` or `plan` and
/// `Hot` accepts it; anything else, an error or a request for help
/// included, is left to the whole tree, which words it.
fn parse_hot(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<Cli> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if !matches!(args.get(1)?.to_str()?, "exec" | "plan") {
        return None;
    }
    let command = match Hot::try_parse_from(args).ok()?.command {
        HotCommand::Exec(a) => Command::Exec(a),
        HotCommand::Plan(a) => Command::Plan(a),
    };
    Some(Cli { command })
}

/// Parses the command line; exits with status 2 and usage on bad input,
/// including one of moksha's options written where the program's
/// arguments start.
pub fn parse() -> Cli {
    use clap::CommandFactory;
    let mut cli = parse_hot(std::env::args_os()).unwrap_or_else(Cli::parse);
    // `moksha explain A --diff B`, as one reads it: the profile to compare
    // with may follow the first one.
    if let Command::Explain { diff, target, .. } = &mut cli.command {
        target.diff_after_profile(diff);
    }
    let (name, target) = match &cli.command {
        Command::Exec(ExecArgs { target, .. }) => ("exec", target),
        Command::Plan(PlanArgs { target, .. }) => ("plan", target),
        Command::Explain { target, .. } => ("explain", target),
        Command::Learn { target, .. } => ("learn", target),
        _ => return cli,
    };
    // Building the whole command again costs more than the rest of parsing
    // (~0.6 M instructions, measured with callgrind): only when it may matter.
    let first_is_option = target
        .words
        .get(1)
        .is_some_and(|w| w.as_encoded_bytes().starts_with(b"-") && w != "--");
    if !first_is_option {
        return cli;
    }
    let mut cmd = Cli::command();
    // Built, so the usage of the subcommand reads `moksha exec`.
    cmd.build();
    let sub = cmd
        .find_subcommand_mut(name)
        .expect("exec, plan, explain and learn exist");
    if let Some(option) = target.misplaced_option(sub) {
        let profile = target.profile();
        let msg = format!(
            "{option} after the profile is ambiguous: moksha's options go before the \
             profile (moksha {name} {option} {profile} ...), the program's arguments after \
             it; to pass {option} to the program write moksha {name} {profile} -- {option} ..."
        );
        sub.error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit();
    }
    cli
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_specs() {
        let spec = BindSpec::parse("/etc/hostname:/opt/h").unwrap();
        assert_eq!(spec.source, "/etc/hostname");
        assert_eq!(spec.target.as_deref(), Some("/opt/h"));
        assert_eq!(BindSpec::parse("/etc").unwrap().target, None);
        assert!(BindSpec::parse(":/x").unwrap_err().contains("empty"));
        assert!(BindSpec::parse("/etc:rel")
            .unwrap_err()
            .contains("absolute"));
        assert!(BindSpec::parse("/nonexistent/x")
            .unwrap_err()
            .contains("does not exist on the host"));
    }

    #[test]
    fn env_pairs_split_at_the_first_equals() {
        assert_eq!(env_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(env_pair("A=").unwrap(), ("A".into(), String::new()));
        assert!(env_pair("=x").is_err() && env_pair("A").is_err());
    }

    #[test]
    fn help_after_the_profile_is_the_program_s() {
        use clap::CommandFactory;
        let cli = Cli::try_parse_from(["moksha", "exec", "ls", "-h"]).unwrap();
        let Command::Exec(ExecArgs { target, .. }) = &cli.command else {
            panic!("{cli:?}")
        };
        let mut cmd = Cli::command();
        cmd.build();
        let exec = cmd.find_subcommand("exec").unwrap();
        assert_eq!(target.misplaced_option(exec), None);
        assert_eq!(target.args(), (vec!["-h".to_string()], false));
        let cli = Cli::try_parse_from(["moksha", "exec", "ls", "--detach"]).unwrap();
        let Command::Exec(ExecArgs { target, .. }) = &cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(target.misplaced_option(exec), Some("--detach"));
    }

    #[test]
    fn the_hot_parser_takes_exactly_what_the_whole_tree_takes() {
        // Each line an argv after "moksha"; both parsers on each.
        let table = "exec ls|exec -d --name n.1 --trace --timings ls -l|exec --net none \
            --home private --bind /etc:/opt/e --rw-bind /tmp --env A=b=c --cwd /tmp ls|\
            exec ls -- -d|exec ls --detach|exec -- ls|plan --json demo|plan --resolved \
            --name n -d demo x|plan --net=host demo|plan -dj demo|plan --name n demo|\
            exec|exec --help|exec -h|exec -V|exec --version|exec --bogus ls|\
            exec --net bogus ls|exec --name .x ls|exec --bind /nonexistent/x ls|\
            exec --env A ls|exec --timings=x ls|plan --home|exe ls|EXEC ls|\
            --version|help exec|explain ls|ps";
        for line in table.split('|') {
            let argv: Vec<std::ffi::OsString> = std::iter::once("moksha")
                .chain(line.split_whitespace())
                .map(Into::into)
                .collect();
            let whole = Cli::try_parse_from(&argv).map(|c| format!("{c:?}"));
            let hot = parse_hot(argv.clone()).map(|c| format!("{c:?}"));
            let hot_named = matches!(argv[1].to_str(), Some("exec" | "plan"));
            match (&whole, &hot) {
                (Ok(w), Some(h)) => assert_eq!(w, h, "{line}"),
                (Ok(_), None) => assert!(!hot_named, "{line}: left to the whole tree"),
                (Err(_), Some(h)) => panic!("{line}: the hot parser took {h}"),
                (Err(_), None) => {}
            }
        }
    }
}
