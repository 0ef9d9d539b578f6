fn main() {
    // moksha's own helper (the egress proxy), started by moksha beside a
    // sandbox: not a command of the command line.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(moksha::launch::egress::COMMAND) {
        std::process::exit(moksha::launch::egress::main(&args[2..]));
    }
    let cli = moksha::cli::parse();
    std::process::exit(moksha::commands::run(cli));
}
