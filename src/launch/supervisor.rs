//! Waiting: the supervisor (PID 1 inside) and the launcher both sit in a
//! sigwait loop, pass forwarded signals to the process below them, reap
//! children, and return the exit status of the one they watch.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

use super::confine;
use crate::plan::Plan;
use crate::policy::limits::{show_ms, Timeout, EXIT_TIMEOUT};
use crate::state;
use crate::sys;
use crate::sys::signal::{self, Waited};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The exit code that reports a wait status: the code, or 128+N for signal N.
pub fn code_of(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// What reaping found of the watched process.
enum Reaped {
    /// Its exit code, and the signal that killed it (if one did).
    Exited(i32, Option<Signal>),
    /// Stopped by this signal (a terminal's SIGTSTP, SIGTTIN, SIGTTOU).
    Stopped(Signal),
}

/// Reaps every child that has exited; says whether `watched` exited or
/// stopped among them.
fn reap(watched: Pid) -> Option<Reaped> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(WaitStatus::Stopped(pid, sig)) if pid == watched => {
                found = found.or(Some(Reaped::Stopped(sig)))
            }
            Ok(status) if status.pid() == Some(watched) => {
                if let Some(code) = code_of(status) {
                    let signal = match status {
                        WaitStatus::Signaled(_, sig, _) => Some(sig),
                        _ => None,
                    };
                    return Some(Reaped::Exited(code, signal));
                }
            }
            Ok(_) => {}
        }
    }
}

/// How job control reaches the program, and so what the waiting processes
/// (the launcher, the supervisor, `moksha enter`) do about it.
///
/// - Sharing the caller's terminal, the program is the terminal's
///   foreground process group: Ctrl-Z stops it. The supervisor tells the
///   launcher (on the status pipe), which stops itself with the same
///   signal, so the shell sees its job stop. Continued by `fg` or `bg`,
///   the launcher gives the terminal back to the program's group if it
///   holds the foreground itself (`fg`), and has the supervisor continue
///   the program.
/// - In a session of its own the program has no terminal: Ctrl-Z reaches
///   the launcher, which has the supervisor stop the whole sandbox, then
///   stops itself; continued, it has the supervisor continue it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relay {
    pub shared_terminal: bool,
}

impl Relay {
    pub fn of(plan: &Plan) -> Relay {
        Relay {
            shared_terminal: !plan.supervision.new_session,
        }
    }

    /// The signals waited for (and blocked): the forwarded ones, SIGCHLD,
    /// SIGCONT, and without a shared terminal SIGTSTP.
    pub fn waited(self) -> SigSet {
        let mut set = SigSet::empty();
        for s in super::FORWARDED {
            set.add(s);
        }
        set.add(Signal::SIGCHLD);
        set.add(Signal::SIGCONT);
        if !self.shared_terminal {
            set.add(Signal::SIGTSTP);
        }
        set
    }
}

/// After a process below us stopped with `sig` (the terminal stopped its
/// foreground group): stop ourselves the same way, and once continued,
/// give the terminal back to its group `pgid` if we are in the foreground
/// (`fg`, not `bg`), then `resume` it.
fn stop_with(sig: Signal, pgid: Option<libc::pid_t>, resume: impl FnOnce()) {
    signal::stop_as(sig);
    if let Some(pgid) = pgid.filter(|_| sys::in_foreground(0)) {
        sys::give_terminal(0, pgid);
    }
    resume();
}

/// Forwards signals to `watched` (a child of ours) and reaps children until
/// it exits; returns its code. Used by `moksha enter` and by the launcher
/// when it cannot read its signals from a signalfd. `relay.waited()` must
/// be blocked.
pub fn wait_for(watched: libc::pid_t, relay: Relay) -> i32 {
    let pid = Pid::from_raw(watched);
    let waited = relay.waited();
    loop {
        match reap(pid) {
            Some(Reaped::Exited(code, _)) => return code,
            Some(Reaped::Stopped(sig)) if relay.shared_terminal => {
                stop_with(sig, Some(watched), || {
                    let _ = nix::sys::signal::killpg(pid, Signal::SIGCONT);
                })
            }
            _ => {}
        }
        match signal::wait_signal(&waited, None) {
            Waited::Signal(Signal::SIGCHLD | Signal::SIGCONT)
            | Waited::Nothing
            | Waited::Timeout => {}
            Waited::Signal(Signal::SIGTSTP) => stop_with(Signal::SIGTSTP, None, || {
                let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
            }),
            Waited::Signal(sig) => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    }
}

/// Stops or continues everything in the sandbox: in its own PID namespace
/// every process but PID 1 (the supervisor), else the program's process
/// group.
fn whole_sandbox(program: Pid, own_pid_ns: bool, sig: Signal) {
    if own_pid_ns {
        signal::signal_namespace(sig);
    } else {
        let _ = nix::sys::signal::killpg(program, sig);
    }
}

/// How long a sandbox runs before the launcher and the supervisor let go
/// of the memory their setup used (`sys::shed_idle_memory`): later than a
/// short command's whole run, so it costs those nothing.
const SHED_AFTER: Duration = Duration::from_millis(200);

/// How long a foreground sandbox nobody named runs before the launcher
/// writes its instance record (`moksha ps` lists it from then on; or as
/// soon as it stops): a command that ends sooner does not pay for it.
const RECORD_AFTER: Duration = Duration::from_millis(20);

/// What the supervisor tells the launcher on the status pipe: 5 bytes,
/// written at once (a pipe keeps them together).
const EXITED: u8 = b'x';
const STOPPED: u8 = b's';
/// Trace mode's tally follows: `value` bytes of JSON.
const TRACE: u8 = b't';

fn tell(status: &OwnedFd, tag: u8, value: i32) {
    let mut msg = [tag, 0, 0, 0, 0];
    msg[1..].copy_from_slice(&value.to_le_bytes());
    let _ = sys::write_all(status, &msg, "<status pipe>");
}

/// The supervisor's loop: forwards signals to the program, reaps orphans,
/// passes job control on (see `Relay`; a stop of the program is told on
/// `status`), and enforces the wall-clock limit: when the timeout passes,
/// the program gets SIGTERM, and SIGKILL if it is still there after the
/// grace period; the result is then EXIT_TIMEOUT (124, as timeout(1))
/// whatever the program's own status, and a message says why.
/// `relay.waited()` must be blocked. Returns the code, and the signal that
/// killed the program if one did.
fn supervise(
    watched: libc::pid_t,
    relay: Relay,
    own_pid_ns: bool,
    timeout: Option<&Timeout>,
    status: &OwnedFd,
) -> (i32, Option<Signal>) {
    let pid = Pid::from_raw(watched);
    let waited = relay.waited();
    let mut deadline = timeout.map(|t| Instant::now() + Duration::from_millis(t.ms));
    // Signals the timeout sent so far: none, TERM, then KILL.
    let mut sent: Option<Signal> = None;
    let mut shed_at = Some(Instant::now() + SHED_AFTER);
    loop {
        match reap(pid) {
            Some(Reaped::Exited(code, signal)) => {
                return match sent {
                    Some(_) => (EXIT_TIMEOUT, None),
                    None => (code, signal),
                }
            }
            Some(Reaped::Stopped(sig)) if relay.shared_terminal => {
                tell(status, STOPPED, sig as i32)
            }
            _ => {}
        }
        let left = deadline
            .filter(|_| sent != Some(Signal::SIGKILL))
            .map(|d| d.saturating_duration_since(Instant::now()));
        let until_shed = shed_at.map(|t| t.saturating_duration_since(Instant::now()));
        let wait = match (left, until_shed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (signal::wait_signal(&waited, wait), timeout) {
            (Waited::Timeout, _) if shed_at.is_some_and(|t| Instant::now() >= t) => {
                sys::shed_idle_memory();
                shed_at = None;
            }
            (Waited::Signal(Signal::SIGCHLD) | Waited::Nothing, _) => {}
            // From the launcher: Ctrl-Z and fg/bg for a program without the
            // terminal, or the program's own group continued after a stop.
            (Waited::Signal(Signal::SIGTSTP), _) => whole_sandbox(pid, own_pid_ns, Signal::SIGSTOP),
            (Waited::Signal(Signal::SIGCONT), _) if relay.shared_terminal => {
                let _ = nix::sys::signal::killpg(pid, Signal::SIGCONT);
            }
            (Waited::Signal(Signal::SIGCONT), _) => whole_sandbox(pid, own_pid_ns, Signal::SIGCONT),
            (Waited::Signal(sig), _) => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
            (Waited::Timeout, None) => {}
            (Waited::Timeout, Some(limit)) if sent.is_none() => {
                eprintln!(
                    "moksha: timeout: the sandbox ran for {}; sending SIGTERM (SIGKILL after {})",
                    show_ms(limit.ms),
                    show_ms(limit.grace_ms)
                );
                let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
                // A stopped program must run to see its SIGTERM.
                whole_sandbox(pid, own_pid_ns, Signal::SIGCONT);
                sent = Some(Signal::SIGTERM);
                deadline = Some(Instant::now() + Duration::from_millis(limit.grace_ms));
            }
            (Waited::Timeout, Some(limit)) => {
                eprintln!(
                    "moksha: timeout: the program was still running {} after SIGTERM; sending SIGKILL",
                    show_ms(limit.grace_ms)
                );
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                sent = Some(Signal::SIGKILL);
            }
        }
    }
}

/// The launcher's wait: forwards signals to the supervisor, passes job
/// control on as `Relay` says, and returns the program's exit code as soon
/// as the supervisor sends it on `status` — without waiting for the PID
/// namespace's teardown, as bubblewrap does. If the supervisor dies
/// without sending it (killed), returns its own status. `relay.waited()`
/// must be blocked.
fn wait_launcher(
    supervisor: libc::pid_t,
    relay: Relay,
    status: OwnedFd,
    trace: &mut Option<Vec<u8>>,
    mut later: Option<Box<dyn FnOnce() + '_>>,
) -> i32 {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let Ok(signals) = SignalFd::with_flags(&relay.waited(), SfdFlags::SFD_CLOEXEC) else {
        if let Some(later) = later {
            later();
        }
        return wait_for(supervisor, relay);
    };
    let pid = Pid::from_raw(supervisor);
    let resume = || {
        let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
    };
    let started = Instant::now();
    let mut shed_at = Some(started + SHED_AFTER);
    let mut later_at = later.is_some().then_some(started + RECORD_AFTER);
    // `later`, once: at its time, or sooner when the program stops.
    let mut run_later = || {
        if let Some(later) = later.take() {
            later();
        }
    };
    loop {
        if let Some(Reaped::Exited(code, _)) = reap(pid) {
            // What it sent before it went (trace mode's tally) is still
            // in the pipe.
            while sys::poll_readable(&[status.as_fd()], Some(Duration::ZERO))[0] {
                let mut msg = [0u8; 5];
                match nix::unistd::read(status.as_raw_fd(), &mut msg) {
                    Ok(5) if msg[0] == TRACE => {
                        *trace = read_body(&status, &msg).or(trace.take());
                    }
                    Ok(5) => {}
                    _ => break,
                }
            }
            return code;
        }
        let next = later_at.into_iter().chain(shed_at).min();
        let until = next.map(|t| t.saturating_duration_since(Instant::now()));
        let ready = sys::poll_readable(&[signals.as_fd(), status.as_fd()], until);
        if !ready.contains(&true) {
            let now = Instant::now();
            if later_at.is_some_and(|t| t <= now) {
                later_at = None;
                run_later();
            }
            if shed_at.is_some_and(|t| t <= now) {
                shed_at = None;
                sys::shed_idle_memory();
            }
            continue;
        }
        if ready[1] {
            let mut msg = [0u8; 5];
            let n = nix::unistd::read(status.as_raw_fd(), &mut msg).unwrap_or(0);
            let value = i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]);
            match (n, msg[0]) {
                (5, EXITED) => return value,
                (5, TRACE) => *trace = read_body(&status, &msg),
                (5, STOPPED) => {
                    // A stopped program is no short command: recorded
                    // now, as it may stay stopped for long.
                    run_later();
                    // The program's group is the supervisor's first child's.
                    let program = state::first_child(supervisor);
                    let sig = Signal::try_from(value).unwrap_or(Signal::SIGTSTP);
                    stop_with(sig, program, resume);
                }
                // End of file: the supervisor died without a word.
                _ => return wait_for(supervisor, relay),
            }
            continue;
        }
        let Ok(Some(info)) = signals.read_signal() else {
            continue;
        };
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGCHLD | Signal::SIGCONT) | Err(_) => {}
            // Ctrl-Z for a program without the terminal: the sandbox
            // stops, then we do, so the shell gets its prompt back.
            Ok(Signal::SIGTSTP) => {
                run_later();
                let _ = nix::sys::signal::kill(pid, Signal::SIGTSTP);
                stop_with(Signal::SIGTSTP, None, resume);
            }
            Ok(sig) => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    }
}

/// The body of a TRACE message whose header is `msg`.
fn read_body(status: &OwnedFd, msg: &[u8; 5]) -> Option<Vec<u8>> {
    let len = i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]);
    let mut body = vec![0u8; len.clamp(0, 1 << 26) as usize];
    let mut got = 0;
    while got < body.len() {
        match nix::unistd::read(status.as_raw_fd(), &mut body[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    (got == body.len()).then_some(body)
}

/// Kills and reaps every child we have (descendants reparented to us as
/// their parents die become children in turn), until none is left.
fn end_children(list: &std::fs::File) {
    // Bounded: each round kills all that are there; a killed process
    // cannot fork again.
    for _ in 0..1000 {
        let children = sys::read_children(list);
        if children.is_empty() {
            return;
        }
        for pid in children {
            // Our own child: its pid is not reused before we reap it. Each
            // reaped by its pid: the children of one that dies become ours,
            // alive (they are killed next round), and a wait for any child
            // would wait for them. One we may not signal is left.
            let pid = Pid::from_raw(pid);
            if nix::sys::signal::kill(pid, Signal::SIGKILL).is_ok() {
                let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
            }
        }
    }
}

/// The launcher's hold on the sandbox's first process: dropped before it
/// was waited for or released (a setup step failed), it kills and reaps it.
pub struct Child {
    pub pid: libc::pid_t,
    armed: bool,
}

impl Child {
    pub fn new(pid: libc::pid_t) -> Child {
        Child { pid, armed: true }
    }

    /// A detached sandbox lives on without the launcher.
    pub fn release(mut self) {
        self.armed = false;
    }

    /// Waits for the sandbox (`wait_launcher`); returns the program's code
    /// and, in trace mode, the supervisor's tally (JSON).
    /// With `reap`, returns only once the supervisor is gone too: its
    /// mount namespace (and an overlay's hold on its changes, with their
    /// lock) is gone then, so `moksha exec ... && moksha commit` works.
    /// Without, returns with the code, as bubblewrap does, and the PID
    /// namespace's teardown (~0.8 ms) is not waited for.
    /// `later` runs once the program has run for RECORD_AFTER, or when it
    /// stops first (not at all if it ends before).
    pub fn wait(
        mut self,
        relay: Relay,
        status: OwnedFd,
        reap: bool,
        later: Option<Box<dyn FnOnce() + '_>>,
    ) -> (i32, Option<Vec<u8>>) {
        self.armed = false;
        let mut trace = None;
        let code = wait_launcher(self.pid, relay, status, &mut trace, later);
        if reap {
            let _ = waitpid(Pid::from_raw(self.pid), Some(WaitPidFlag::__WALL));
        }
        (code, trace)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.armed {
            let pid = Pid::from_raw(self.pid);
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// The supervisor could not install its own filter (the program's is on:
/// the same kernel took it). Fail closed: the sandbox's PID 1 does not
/// wait on unfiltered beside the program; the program, executed a moment
/// ago, is killed with everything it started, and the code is EXIT_SETUP.
/// The kernel refuses a filter mostly when the filters along a process
/// would pass its limit (MAX_INSNS_PER_PATH: ENOMEM), as in deeply nested
/// sandboxes.
fn refuse_unfiltered(
    error: &str,
    program: libc::pid_t,
    own_pid_ns: bool,
    lock: Option<&std::fs::File>,
    status: &OwnedFd,
    leftovers: Option<std::fs::File>,
) -> ! {
    let pid = Pid::from_raw(program);
    whole_sandbox(pid, own_pid_ns, Signal::SIGKILL);
    // Waited for only once killed (a program that changed its ids may
    // refuse our signal); our own exit ends a PID namespace of ours anyway.
    if nix::sys::signal::kill(pid, Signal::SIGKILL).is_ok() {
        let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
    }
    if let Some(children) = &leftovers {
        end_children(children);
    }
    eprintln!(
        "moksha: the supervisor could not filter its own system calls, so the sandbox \
         was stopped rather than leave its PID 1 unfiltered: {}",
        crate::text::lines(error)
    );
    exit_with(super::EXIT_SETUP, lock, status)
}

/// The supervisor's end: `code` recorded in the instance lock, then sent
/// to the launcher, which may return it at once; our exit still tears the
/// PID namespace down (the launcher gone, EPIPE is ignored: SIGPIPE is).
fn exit_with(code: i32, lock: Option<&std::fs::File>, status: &OwnedFd) -> ! {
    if let Some(lock) = lock {
        state::record_exit(lock, code);
    }
    tell(status, EXITED, code);
    sys::exit_now(code)
}

/// The sandbox's PID 1 after it forked the program: it keeps nothing (the
/// report pipe is closed, no capabilities, no_new_privs, a seccomp filter
/// stricter than the default), then waits, forwards signals, reaps orphans
/// and enforces the timeout; records the program's code in the instance
/// lock and sends it to the launcher on `status`. Never returns.
pub fn become_supervisor(
    plan: &Plan,
    program: libc::pid_t,
    lock: Option<&std::fs::File>,
    status: OwnedFd,
    leftovers: Option<std::fs::File>,
    handoff: Option<super::tracer::Handoff>,
    privileged: bool,
) -> ! {
    // Trace mode: the listener of the program's filter, taken before we
    // drop our capabilities (the program may keep some); its thread
    // started after the filter, so that it has none of them either.
    let report = |e: String| eprintln!("moksha: trace: {}", crate::text::line(&e));
    let taken = handoff.and_then(|h| super::tracer::take(plan, program, &h).map_err(report).ok());
    // (Given up already when the program shared our memory.)
    if privileged {
        let _ = super::drop_privilege(plan);
    }
    if let Err(e) = confine::supervisor(taken.is_some()) {
        refuse_unfiltered(&e, program, plan.namespaces.pid, lock, &status, leftovers);
    }
    let tracer = taken.and_then(|t| t.serve().map_err(report).ok());
    let timeout = plan.security.timeout.as_ref().map(|t| &t.op);
    let (code, signal) = supervise(
        program,
        Relay::of(plan),
        plan.namespaces.pid,
        timeout,
        &status,
    );
    // Killed by the filter: which call, and the profile line to change.
    if signal == Some(Signal::SIGSYS) {
        let line = crate::explain::cause::sigsys(&plan.security.seccomp);
        eprintln!("moksha: {}", crate::text::line(&line));
    }
    // Sharing the host's PID namespace, what the program left behind would
    // outlive us (a PID namespace's end would have killed it): we adopted
    // it as subreaper, so it is our children now.
    if let Some(children) = &leftovers {
        end_children(children);
    }
    // The denial log: to the launcher, which checks the host and prints it;
    // detached, into the log ourselves.
    if let Some(t) = &tracer {
        let tally = t.tally();
        if plan.supervision.detach {
            eprint!("{}", crate::state::denials::render(plan, &tally, None));
        } else {
            let list: Vec<(&crate::state::denials::Denial, &u64)> = tally.iter().collect();
            let body = serde_json::to_vec(&list).unwrap_or_default();
            tell(&status, TRACE, body.len() as i32);
            let _ = sys::write_all(&status, &body, "<status pipe>");
        }
    }
    exit_with(code, lock, &status)
}
