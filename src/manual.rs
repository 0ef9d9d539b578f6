//! Manual pages and shell completions, generated at run time from the clap
//! definitions, so they always match the binary that prints them (and
//! packaging needs nothing but the binary: `moksha man -o DIR`,
//! `moksha completions bash > ...`).

use crate::cli::{Cli, Shell};
use clap::CommandFactory;
use std::path::Path;

/// `moksha completions SHELL`: the completion script on stdout.
pub fn completions(shell: Shell) -> i32 {
    use clap_complete::shells;
    let mut cmd = Cli::command();
    let out = &mut std::io::stdout();
    match shell {
        Shell::Bash => clap_complete::generate(shells::Bash, &mut cmd, "moksha", out),
        Shell::Zsh => clap_complete::generate(shells::Zsh, &mut cmd, "moksha", out),
        Shell::Fish => clap_complete::generate(shells::Fish, &mut cmd, "moksha", out),
    }
    0
}

/// `moksha man`: moksha.1 on stdout; with a directory, moksha.1 and one
/// page per subcommand (moksha-exec.1, ...) written there.
pub fn man(dir: Option<&Path>) -> i32 {
    let result = match dir {
        None => render(Cli::command()).and_then(|page| {
            use std::io::Write;
            std::io::stdout().write_all(&page)
        }),
        Some(dir) => write_all(dir),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("moksha: cannot write the manual pages: {e}");
            1
        }
    }
}

fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page)?;
    Ok(page)
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    std::fs::write(dir.join("moksha.1"), render(cmd.clone())?)?;
    for sub in cmd.get_subcommands() {
        let name = format!("moksha-{}", sub.get_name());
        let page = render(sub.clone().name(name.clone()))?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
        println!("{}", dir.join(format!("{name}.1")).display());
    }
    println!("{}", dir.join("moksha.1").display());
    Ok(())
}
