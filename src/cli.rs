//! Command-line definitions.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "moksha",
    version,
    about = "A programmable Linux application sandbox: profiles are Rhai programs",
    after_help = "A PROFILE is a path to a .rhai file, or a name looked up in ./, \
                  ~/.config/moksha/profiles, /etc/moksha/profiles and the built-in profiles."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a program in the sandbox a profile describes.
    Exec {
        /// The profile (path or name).
        profile: String,
        /// Print how long each phase of startup took, to stderr.
        #[arg(long)]
        timings: bool,
        /// Instance name for `moksha ps/logs/stop/enter` (default: the
        /// sandbox name plus a short id, or the profile's `s.name()`).
        #[arg(long)]
        name: Option<String>,
        /// Return once the program runs; its output goes to log files.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Arguments for the profile, available to it as ARGS.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Print the plan a profile evaluates to, without running anything.
    Plan {
        profile: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Print the plan `moksha exec` would run with the same options: with
        /// what the launcher adds (helper binds, the network's resolv.conf,
        /// the rules for root launches) and the mount operations that build
        /// the root. It is what the instance record stores.
        #[arg(long)]
        resolved: bool,
        /// With --resolved: the instance name `moksha exec --name` would get.
        #[arg(long, requires = "resolved")]
        name: Option<String>,
        /// With --resolved: as `moksha exec --detach` would run it.
        #[arg(long, short = 'd', requires = "resolved")]
        detach: bool,
        /// Arguments for the profile, available to it as ARGS.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Evaluate and validate profiles; exit 0 if all are valid, 1 otherwise.
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
    /// List the profiles moksha can find, and where each comes from.
    Profiles,
    /// Print the profile API (every function with its documentation) as Rhai definitions.
    Api,
}
