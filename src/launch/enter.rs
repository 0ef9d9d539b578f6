//! `moksha enter`: a new process inside a running sandbox. It joins the
//! sandbox's namespaces through a pidfd of the sandbox's program, then takes the
//! same last steps as the sandbox's program (program.rs): new session,
//! environment rules, closed descriptors, capabilities, no_new_privs and
//! the seccomp policy — under the plan the instance was started with.

use super::{program, report, supervisor, waited_signals, EXIT_SETUP};
use crate::plan::{Exec, Plan, Pos, Step};
use crate::sys;
use nix::sys::signal::SigmaskHow;
use std::os::fd::OwnedFd;

/// Runs `argv` in the instance whose program is behind `pidfd`; returns
/// the command's exit status.
pub fn enter(plan: &Plan, pidfd: &OwnedFd, argv: Vec<String>) -> i32 {
    let mut plan = plan.clone();
    plan.process.exec = Some(Step {
        op: Exec { argv },
        at: Pos {
            file: "moksha enter".into(),
            line: 0,
            col: 0,
        },
    });
    plan.supervision.new_session = true;
    plan.supervision.die_with_parent = true;

    // Every namespace the sandbox has of its own (time too: the program
    // is in the sandbox's time namespace).
    let namespaces = plan.namespaces.new_ones();
    let waited = waited_signals();
    if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None) {
        eprintln!("moksha: sigprocmask: {e}");
        return EXIT_SETUP;
    }
    if let Err(e) = sys::setns_pidfd(pidfd, &namespaces) {
        eprintln!("moksha: cannot enter the sandbox: {e}");
        return EXIT_SETUP;
    }
    let launcher_env = super::launcher_env();
    let (report_read, report_write) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("moksha: {e}");
            return EXIT_SETUP;
        }
    };
    let umask = sys::umask(0o022);
    // Forked after setns: the child is a member of the sandbox's PID
    // namespace; it is reaped by us, or by the supervisor if we die.
    // SAFETY: single-threaded; the child only runs program::start.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(report_read);
            program::start(&plan, &launcher_env, umask, &report_write)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("moksha: fork: {e}");
            return EXIT_SETUP;
        }
    };
    drop(report_write);
    let mut failure = None;
    for msg in report::receive_all(report_read) {
        if let report::Message::Error(code, text) = msg {
            eprintln!("moksha: {text}");
            failure = Some(code);
        }
    }
    let status = supervisor::wait_for(child.as_raw(), &waited);
    failure.unwrap_or(status)
}
