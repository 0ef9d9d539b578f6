fn main() {
    let cli = moksha::cli::parse();
    std::process::exit(moksha::commands::run(cli));
}
