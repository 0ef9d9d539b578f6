// moksha's own entry instead of the Rust runtime's start, which spends
// 46 k instructions and 17 system calls on the main thread's stack bounds
// and a stack overflow report (sys::start says what it does instead). A
// test build keeps the harness's.
#![cfg_attr(not(test), no_main)]

// SAFETY: the one `main` symbol of the program, which the C runtime calls
// once, as it would the runtime's.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    moksha::sys::start::runtime();
    // A panic's message is printed by the hook; its status is the runtime's.
    let code = std::panic::catch_unwind(run).unwrap_or(101);
    // exit flushes stdout, as the runtime's return from main would.
    std::process::exit(code)
}

#[cfg(not(test))]
fn run() -> i32 {
    // Done already by a constructor; called here so that it is linked in.
    moksha::sys::nss::builtin_modules_only();
    // moksha's own helper (the egress proxy), started by moksha beside a
    // sandbox: not a command of the command line.
    // (args_os: the command line may hold any bytes; the helper's are moksha's.)
    if std::env::args_os().nth(1).as_deref() == Some(moksha::launch::egress::COMMAND.as_ref()) {
        let args: Vec<String> = std::env::args_os()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return moksha::launch::egress::main(&args);
    }
    // One malloc arena for every thread: moksha's threads are few and
    // short-lived (trace mode's listener, a writer to git's input), and
    // glibc grows a thread arena's heap one mprotect per page, where the
    // main arena's brk grows 128 KiB at a time.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter, before any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let cli = moksha::cli::parse();
    if cli.command.only_prints() {
        moksha::sys::signal::die_on_broken_pipe();
    }
    moksha::commands::run(cli)
}
