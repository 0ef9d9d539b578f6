//! Waiting for signals with a deadline.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use std::time::Duration;

/// Unblocks every signal and gives SIGPIPE back its default action (the
/// Rust runtime ignores it, and an ignored signal stays ignored across
/// exec: `yes | head -1` would print "Broken pipe"). Async-signal-safe:
/// used between fork and exec.
pub fn restore_signals() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    );
    // SAFETY: setting a default disposition installs no handler.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
}

/// Runs `f` with the terminal's stop signals (SIGTSTP, SIGTTIN, SIGTTOU)
/// blocked, and a child it starts too: one that stopped while we wait for
/// it could not be continued from the terminal. A stop that arrived
/// meanwhile takes effect after.
pub fn with_stops_blocked<T>(f: impl FnOnce() -> T) -> T {
    let mut stops = SigSet::empty();
    for sig in [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU] {
        stops.add(sig);
    }
    with_blocked(&stops, f)
}

/// Runs `f` with `signals` blocked as well, then puts the mask back as it
/// was; what arrived meanwhile is delivered then.
pub fn with_blocked<T>(signals: &SigSet, f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{sigprocmask, SigmaskHow};
    let mut old = SigSet::empty();
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(signals), Some(&mut old));
    let out = f();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    out
}

/// SIGPIPE ignored, as moksha runs (`sys::start`): a write to a closed
/// pipe fails with EPIPE instead of ending moksha.
pub fn ignore_broken_pipe() {
    // SAFETY: ignoring a signal installs no handler.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn) };
}

/// SIGPIPE back to its default action for a command that only prints:
/// `moksha api | head` ends quietly, as other tools do, instead of
/// panicking on the write that fails.
pub fn die_on_broken_pipe() {
    // SAFETY: setting a default disposition installs no handler.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
}

/// What a timed wait for signals saw.
pub enum Waited {
    Signal(Signal),
    /// The time ran out.
    Timeout,
    /// Interrupted or an unknown signal: look again.
    Nothing,
}

/// sigtimedwait(2): waits for one of `set` (which must be blocked) for at
/// most `timeout`, or forever with `None`.
pub fn wait_signal(set: &SigSet, timeout: Option<Duration>) -> Waited {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: a valid signal set and a NULL or valid timespec; no siginfo wanted.
    let ret = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), ts_ptr) };
    if ret < 0 {
        return match Errno::last() {
            Errno::EAGAIN => Waited::Timeout,
            _ => Waited::Nothing,
        };
    }
    Signal::try_from(ret).map_or(Waited::Nothing, Waited::Signal)
}

/// Sends `sig` to every process of our PID namespace but ourselves (from
/// its PID 1: kill(-1, sig)).
pub fn signal_namespace(sig: Signal) {
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(-1, sig as libc::c_int) };
}

/// Stops the calling process with the stop signal `sig` (SIGTSTP, SIGTTIN,
/// SIGTTOU; anything else stops with SIGTSTP), as the terminal would stop
/// it, so a shell reports the job as it would without a sandbox; returns
/// once it is continued. `sig` may be blocked: it is unblocked for the
/// stop. In an orphaned process group the kernel discards the signal and
/// this returns at once (nobody could continue us).
pub fn stop_as(sig: Signal) {
    let sig = match sig {
        Signal::SIGTTIN | Signal::SIGTTOU => sig,
        _ => Signal::SIGTSTP,
    };
    let mut only = SigSet::empty();
    only.add(sig);
    use nix::sys::signal::{sigprocmask, SigmaskHow};
    let _ = nix::sys::signal::raise(sig);
    // A blocked signal stays pending until the mask opens: then we stop.
    let mut old = SigSet::empty();
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&only), Some(&mut old));
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
}
