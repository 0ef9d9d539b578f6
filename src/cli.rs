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
        /// Arguments for the profile, available to it as ARGS.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Evaluate and validate profiles; exit 0 if all are valid, 1 otherwise.
    Check {
        #[arg(required = true)]
        profiles: Vec<String>,
    },
    /// List the profiles moksha can find, and where each comes from.
    Profiles,
    /// Print the profile API (every function with its documentation) as Rhai definitions.
    Api,
}
