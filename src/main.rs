use clap::Parser;

fn main() {
    let cli = moksha::cli::Cli::parse();
    std::process::exit(moksha::commands::run(cli));
}
