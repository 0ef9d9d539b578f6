//! `moksha enter`: a new process inside a running sandbox. It joins the
//! sandbox's namespaces through a handle on the sandbox's program (a pidfd, or
//! its /proc directory on kernels before 5.3), then takes the
//! same last steps as the sandbox's program (program.rs): new session,
//! environment rules, closed descriptors, capabilities, no_new_privs and
//! the seccomp policy — under the plan the instance was started with.

use super::error::SetupError;
use super::{block_signals, launcher_env, program, report, supervisor, EXIT_SETUP};
use crate::plan::network::NetMode;
use crate::plan::{Exec, Namespace, Plan, Pos, Step};
use crate::sys;

/// Runs `argv` in the instance whose program is `program`; returns
/// the command's exit status.
pub fn enter(plan: &Plan, program: &sys::Process, argv: Vec<String>) -> i32 {
    enter_with(plan, program, argv).unwrap_or_else(|e| {
        eprintln!("moksha: {}", crate::text::shown(&e));
        EXIT_SETUP
    })
}

fn enter_with(plan: &Plan, program: &sys::Process, argv: Vec<String>) -> Result<i32, SetupError> {
    let mut plan = plan.clone();
    plan.process.exec = Some(Step {
        op: Exec { argv },
        at: Pos {
            file: "moksha enter".into(),
            line: 0,
            col: 0,
        },
    });
    // At a terminal the command gets the terminal's foreground in a
    // process group of its own (an interactive shell's job control works,
    // and it can give the terminal back when it leaves); otherwise a new
    // session without one.
    plan.supervision.new_session = !sys::in_foreground(0);
    plan.supervision.die_with_parent = true;

    let relay = block_signals(supervisor::Relay::of(&plan))?;
    let foreground = relay.shared_terminal;
    // Non-dumpable before joining: from here until the command is executed
    // this process and the child it forks hold the caller's environment and
    // memory, and the sandbox's processes may share their uid. Its memory
    // belongs to the host's user namespace, so nothing inside can ptrace it
    // or read its /proc files (environ, mem, fd, cwd) even without landlock;
    // exec makes the command dumpable again, as any program inside.
    sys::set_dumpable(false)?;
    // A network namespace the profile joined (s.network_join) is the
    // program's too, though not the sandbox's own: joined first, while we
    // still have the caller's privilege over it (found in review: the
    // command ran in the caller's network).
    if matches!(plan.network.mode, NetMode::Join { .. }) {
        program
            .join(&[Namespace::Net])
            .map_err(|e| format!("cannot enter the sandbox's joined network: {e}"))?;
    }
    // Every namespace the sandbox has of its own (time too: the program
    // is in the sandbox's time namespace).
    program
        .join(&plan.namespaces.new_ones())
        .map_err(|e| format!("cannot enter the sandbox: {e}"))?;
    let (report_read, report_write) = sys::pipe()?;
    let umask = sys::umask(0o022);
    // Forked after setns: the child is a member of the sandbox's PID
    // namespace; it is reaped by us, or by the supervisor if we die.
    // (Single-threaded; the child only runs program::start.)
    let Some(child) = sys::fork()? else {
        drop(report_read);
        program::start(&plan, &launcher_env(), umask, &report_write, None)
    };
    drop(report_write);
    let mut failure = None;
    for msg in report::receive_all(report_read) {
        if let report::Message::Error(code, text) = msg {
            eprintln!("moksha: {}", crate::text::shown(&text));
            failure = Some(code);
        }
    }
    let status = supervisor::wait_for(child, relay);
    if foreground {
        sys::take_terminal(0);
    }
    Ok(failure.unwrap_or(status))
}
