//! Turning a validated plan into a running sandbox.
//!
//! `run` is the launcher side: checks, clone, id maps, then waiting and
//! forwarding signals. `sandbox_main` is the one function that owns the
//! privileged order of operations inside; it becomes the supervisor (PID 1
//! of the sandbox) after forking the program.

mod confine;
mod enter;
pub mod helper;
mod network;
mod program;
mod report;
pub mod rootfs;
mod supervisor;

use crate::plan::{FsOp, Plan};
use crate::state::{self, Claim};
use crate::sys;
pub use enter::enter;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use report::Message;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

/// moksha itself could not set the sandbox up.
pub const EXIT_SETUP: i32 = 125;
/// The program exists in the sandbox but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The program is not in the sandbox.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Signals the launcher and the supervisor pass on to the program.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The signals handled synchronously with sigwait: forwarded ones and SIGCHLD.
fn waited_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Unblocks every signal (the program starts with a clean mask).
/// Unblocks every signal and gives SIGPIPE back its default action (the
/// Rust runtime ignores it, and an ignored signal stays ignored across
/// exec: `yes | head -1` would print "Broken pipe").
pub(crate) fn restore_signals() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: setting a default disposition installs no handler.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
}

/// Where the staging tmpfs goes: a host directory that is hidden only inside
/// our own mount namespace, after every host source has been opened.
fn staging_base() -> Option<&'static str> {
    [
        "/tmp", "/mnt", "/run", "/var/tmp", "/opt", "/srv", "/media", "/home",
    ]
    .into_iter()
    .find(|d| std::path::Path::new(d).is_dir())
}

/// Checks that need the host but no privilege, done before any namespace
/// exists: a clear error here leaves nothing behind.
fn precheck(plan: &Plan) -> Result<(), String> {
    let ns = &plan.namespaces;
    if !ns.user && !nix::unistd::geteuid().is_root() {
        return Err(
            "the profile shares the host's user namespace, which only root can do; \
                    remove s.share([\"user\"]) to run rootless"
                .into(),
        );
    }
    if ns.mount && staging_base().is_none() {
        return Err(
            "no directory to stage the new root in (/tmp, /mnt, /run ... all missing)".into(),
        );
    }
    for step in &plan.fs {
        if let FsOp::Bind {
            source,
            optional: false,
            ..
        } = &step.op
        {
            if let Err(e) = sys::open_path(source) {
                return Err(rootfs::missing_source(source, &step.at, &e).to_string());
            }
        }
    }
    if let Some(root) = &plan.root {
        if !std::path::Path::new(&root.value).is_dir() {
            return Err(format!(
                "{}: pivot_root directory {} is not a directory on the host",
                root.at, root.value
            ));
        }
    }
    Ok(())
}

/// The clone flags for the plan's new namespaces (time is entered with
/// unshare later: clone cannot take it).
fn clone_flags(plan: &Plan) -> (libc::c_int, Vec<&'static str>) {
    let names: Vec<&'static str> = plan
        .namespaces
        .new_ones()
        .into_iter()
        .filter(|n| *n != "time")
        .collect();
    (names.iter().fold(0, |f, n| f | sys::ns_flag(n)), names)
}

/// How `moksha exec` was asked to run the plan.
#[derive(Default, Debug, Clone)]
pub struct Options {
    /// Print phase timings to stderr.
    pub timings: bool,
    /// Instance name from the command line (overrides the profile's).
    pub name: Option<String>,
    /// Return once the program runs; its output goes to log files.
    pub detach: bool,
}

/// The instance name: the command line's, the profile's `s.name()`, or the
/// sandbox name plus a short random id.
fn instance_name(plan: &Plan, opts: &Options) -> String {
    match &opts.name {
        Some(n) => n.clone(),
        None if plan.supervision.named => plan.name.clone(),
        None => format!("{}-{}", plan.name, state::short_id()),
    }
}

/// What the sandbox side inherits from the launcher.
struct Inherited<'a> {
    go: OwnedFd,
    report: OwnedFd,
    /// The instance's lock: the supervisor holds it for as long as it lives
    /// and writes the program's exit code into it.
    lock: Option<&'a std::fs::File>,
    /// When detached: /dev/null, the stdout log and the stderr log.
    stdio: Option<[OwnedFd; 3]>,
    /// The helpers' lifeline (helper.rs), kept open while the sandbox lives.
    lifeline: Option<std::os::fd::RawFd>,
    /// Where the supervisor sends the program's exit code, so the launcher
    /// can return it without waiting for the PID namespace's teardown.
    status: OwnedFd,
}

/// Launches the sandbox and waits for it (or, detached, until the program
/// runs). Returns the exit code for moksha: the program's status, 128+N if
/// it died of signal N, or EXIT_* codes.
pub fn run(plan: &Plan, opts: &Options) -> i32 {
    let t0 = Instant::now();
    let show_timings = opts.timings;
    let mut plan = plan.clone();
    if nix::unistd::geteuid().is_root() {
        // Files the sandbox creates belong to the host's root: no setuid
        // or setgid bits on them (policy/seccomp.rs).
        plan.security.seccomp.refuse_setid_files();
    }
    if opts.detach || plan.supervision.detach {
        // Nobody is at a terminal for a detached sandbox, and it must
        // outlive its launcher.
        plan.supervision.detach = true;
        plan.supervision.die_with_parent = false;
        plan.supervision.new_session = true;
    }
    // Host directories the profile asked for; the network (network.rs):
    // find the user-mode helper, or open the namespace to join; then the
    // helpers beside the sandbox (helper.rs: xdg-dbus-proxy, ..., and the
    // guard the network helper will run under): their files become binds.
    // Dropping `helpers` stops them, on every way out of this function.
    let prepared = helper::create_sources(&plan).and_then(|_| network::prepare(&plan));
    let started =
        prepared.and_then(|net| Ok((helper::start_all(&mut plan, net.has_helper())?, net)));
    let (mut helpers, net) = match started {
        Ok(h) => h,
        Err(e) => {
            eprintln!("moksha: {e}");
            return EXIT_SETUP;
        }
    };
    let plan = &plan;
    if let Err(e) = precheck(plan) {
        eprintln!("moksha: {e}");
        return EXIT_SETUP;
    }
    let name = instance_name(plan, opts);
    // A foreground sandbox nobody named still runs when the state
    // directory is unusable (e.g. inside another user namespace); it just
    // does not show in `moksha ps`.
    let optional = !plan.supervision.detach && opts.name.is_none() && !plan.supervision.named;
    let claim = match Claim::take(&name) {
        Ok(c) => Some(c),
        Err(e) if optional && state::state_dir().is_err() => {
            eprintln!("moksha: warning: {e}; this sandbox will not show in `moksha ps`");
            None
        }
        Err(e) => {
            eprintln!("moksha: {e}");
            return EXIT_SETUP;
        }
    };
    let remove = |claim: Option<Claim>| claim.into_iter().for_each(Claim::remove);
    let mut logs = None;
    let stdio = if plan.supervision.detach {
        // Detached sandboxes always have a claim (it is not optional then).
        let opened = claim
            .as_ref()
            .ok_or_else(|| "no state directory".to_string())
            .and_then(Claim::open_logs)
            .and_then(|(out, err, out_path, err_path)| {
                let null = sys::open_dev_null().map_err(|e| e.to_string())?;
                logs = Some((out_path, err_path));
                Ok([null, out.into(), err.into()])
            });
        match opened {
            Ok(fds) => Some(fds),
            Err(e) => {
                eprintln!("moksha: {e}");
                remove(claim);
                return EXIT_SETUP;
            }
        }
    } else {
        None
    };
    let launcher_env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();

    // Signals are handled with sigwait from here on; the sandbox side
    // restores its mask before running the program.
    let waited = waited_signals();
    if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None) {
        eprintln!("moksha: sigprocmask: {e}");
        return EXIT_SETUP;
    }
    let pipes = sys::pipe().and_then(|go| Ok((go, sys::pipe()?, sys::pipe()?)));
    let ((go_read, go_write), (report_read, report_write), (status_read, status_write)) =
        match pipes {
            Ok(p) => p,
            Err(e) => {
                eprintln!("moksha: {e}");
                return EXIT_SETUP;
            }
        };

    let (flags, names) = clone_flags(plan);
    // A joined network namespace: clone from inside it (network.rs).
    let own_net = match network::enter_joined(&net) {
        Ok(own) => own,
        Err(e) => {
            eprintln!("moksha: {e}");
            remove(claim);
            return EXIT_SETUP;
        }
    };
    let child = match sys::clone_into(flags, &names) {
        Err(e) => {
            eprintln!("moksha: cannot create the sandbox's namespaces: {e}");
            remove(claim);
            return EXIT_SETUP;
        }
        Ok(None) => {
            drop(go_write);
            drop(report_read);
            let inherited = Inherited {
                go: go_read,
                report: report_write,
                lock: claim.as_ref().map(|c| &c.lock),
                stdio,
                lifeline: helpers.as_ref().and_then(helper::Helpers::lifeline),
                status: status_write,
            };
            sandbox_main(plan, &launcher_env, inherited, t0)
        }
        Ok(Some(pid)) => pid,
    };
    network::leave_joined(own_net);
    drop(go_read);
    drop(report_write);
    drop(status_write);
    drop(stdio);
    let t_clone = t0.elapsed();

    // Rootless or not, the new user namespace maps the caller to the ids the
    // plan asks for (itself by default). setgroups must be denied before an
    // unprivileged gid_map can be written.
    if plan.namespaces.user {
        let inside_uid = plan.ids.uid.unwrap_or(uid);
        let inside_gid = plan.ids.gid.unwrap_or(gid);
        let maps = sys::write_host_file(&format!("/proc/{child}/setgroups"), "deny")
            .and_then(|_| {
                sys::write_host_file(
                    &format!("/proc/{child}/uid_map"),
                    &format!("{inside_uid} {uid} 1\n"),
                )
            })
            .and_then(|_| {
                sys::write_host_file(
                    &format!("/proc/{child}/gid_map"),
                    &format!("{inside_gid} {gid} 1\n"),
                )
            });
        if let Err(e) = maps {
            eprintln!("moksha: cannot map ids into the sandbox: {e}");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL);
            let _ = supervisor::wait_exit(child);
            remove(claim);
            return EXIT_SETUP;
        }
    }
    // The namespaces, for the instance record: read now, while the child
    // is still dumpable (its /proc links close to us once it is not).
    let namespaces: Vec<(String, u64)> = state::NAMESPACES
        .iter()
        .filter_map(|ns| Some((ns.to_string(), state::ns_inode(child, ns)?)))
        .collect();
    // The user-mode network helper (network.rs): attached to the sandbox's
    // namespaces and ready before the sandbox goes on; stops with it.
    let net_helper = match network::start_helper(plan, &net, child, helpers.as_mut()) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("moksha: {e}");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL);
            let _ = supervisor::wait_exit(child);
            remove(claim);
            return EXIT_SETUP;
        }
    };
    if show_timings && net_helper {
        eprintln!("moksha timings: network helper ready at {:?}", t0.elapsed());
    }
    // Tell the sandbox side to go on.
    let _ = nix::unistd::write(&go_write, b"1");
    drop(go_write);

    // Setup errors and timings arrive on the report pipe; it closes when the
    // program has been executed.
    let messages = report::receive_all(report_read);
    let t_exec = t0.elapsed();
    let mut failure = None;
    for msg in &messages {
        match msg {
            Message::Error(code, text) => {
                eprintln!("moksha: {text}");
                failure = Some(*code);
            }
            Message::Phase(name, us) if show_timings => {
                eprintln!("moksha timings: {name} at {us} us after start")
            }
            Message::Phase(..) => {}
        }
    }
    if show_timings {
        eprintln!("moksha timings: clone returned at {t_clone:?}, program executed at {t_exec:?}");
    }
    if failure.is_none() {
        let record = record_of(plan, &name, child, namespaces, logs);
        let written = match &claim {
            Some(c) => c.write_record(&record),
            None => Ok(()),
        };
        if let Err(e) = written {
            eprintln!("moksha: warning: the instance will not show in `moksha ps`: {e}");
        }
        if plan.supervision.detach {
            // The supervisor holds the lock from here on; the launcher goes.
            println!("{name}");
            if let Some(h) = helpers {
                h.release();
            }
            return 0;
        }
    }
    let status = supervisor::wait_launcher(child, &waited, status_read);
    drop(helpers);
    remove(claim);
    if !plan.supervision.new_session {
        // Take the terminal back from the program's process group.
        for fd in 0..3 {
            sys::take_terminal(fd);
        }
    }
    failure.unwrap_or(status)
}

/// The sandbox side, in its new namespaces. Owns the privileged order of
/// operations; becomes the supervisor. Never returns.
fn sandbox_main(
    plan: &Plan,
    launcher_env: &[(String, String)],
    inherited: Inherited,
    t0: Instant,
) -> ! {
    let Inherited {
        go,
        report,
        lock,
        stdio,
        lifeline,
        status,
    } = inherited;
    let fail = |msg: String| -> ! {
        report::send(&report, &Message::Error(EXIT_SETUP, msg));
        // SAFETY: _exit ends the process without running the launcher's exit handlers.
        unsafe { libc::_exit(EXIT_SETUP) }
    };
    let phase = |name: &str| {
        report::send(
            &report,
            &Message::Phase(name.into(), t0.elapsed().as_micros() as u64),
        )
    };

    // 1. Die with the launcher (unless detached), take the log files as
    //    stdio when detached, and close everything inherited from the
    //    launcher but our pipes, the instance lock and the descriptors the
    //    plan passes on.
    if plan.supervision.die_with_parent {
        if let Err(e) = sys::set_pdeathsig(libc::SIGKILL) {
            fail(e.to_string());
        }
    }
    if let Some(fds) = &stdio {
        for (target, fd) in fds.iter().enumerate() {
            if let Err(e) = sys::dup_onto(fd, target as i32) {
                fail(e.to_string());
            }
        }
    }
    drop(stdio);
    let mut keep = plan.process.pass_fds.clone();
    keep.extend([go.as_raw_fd(), report.as_raw_fd(), status.as_raw_fd()]);
    keep.extend(lock.map(|l| l.as_raw_fd()));
    keep.extend(lifeline);
    if let Err(e) = sys::close_fds_except(&keep) {
        fail(e.to_string());
    }
    // Exact modes for the files and directories setup creates.
    // SAFETY: umask only sets the process's file mode mask.
    let old_umask = unsafe { libc::umask(0) };

    // 2. Wait until the launcher has written the id maps. End-of-file
    //    without the byte means the launcher died: stop here.
    let mut byte = [0u8; 1];
    if !matches!(nix::unistd::read(go.as_raw_fd(), &mut byte), Ok(1)) {
        // SAFETY: see above.
        unsafe { libc::_exit(EXIT_SETUP) }
    }
    drop(go);
    // Nobody inside may ptrace us or read our memory. Not earlier: a
    // non-dumpable process's /proc files belong to root, and the launcher
    // could not have written our id maps.
    let _ = sys::set_dumpable(false);
    phase("id maps written");
    // 2b. The network: lo up in a new network namespace (network.rs).
    if let Err(e) = network::configure_inside(plan) {
        fail(e);
    }

    // 3. The filesystem: private propagation, host sources opened, the new
    //    root built in a staging tmpfs, pivot_root, old root detached,
    //    read-only remounts.
    if plan.namespaces.mount {
        if let Err(e) = build_root(plan) {
            fail(e.to_string());
        }
        phase("root built");
    }

    // 4. Hostname, and the time namespace (entered by unshare; it applies to
    //    the program we fork next).
    if let Some(host) = &plan.process.hostname {
        if let Err(e) = sys::sethostname(&host.value) {
            fail(format!("{}: {e}", host.at));
        }
    }
    if plan.namespaces.time {
        if let Err(e) = sys::unshare(sys::ns_flag("time"), "CLONE_NEWTIME") {
            fail(
                e.hint("the time namespace needs Linux 5.6 or newer")
                    .to_string(),
            );
        }
    }

    // 5. Sessions: by default the supervisor starts a new session, so the
    //    program has no controlling terminal and terminal signals reach only
    //    the launcher, which forwards them. A program that shares the
    //    terminal gets its own foreground process group (program.rs).
    let session = if plan.supervision.new_session {
        sys::setsid()
    } else {
        sys::setpgid_self()
    };
    if let Err(e) = session {
        fail(e.to_string());
    }
    // Adopt orphans even when the PID namespace is shared.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    phase("forking the program");

    // 6. The program: its own last steps (rlimits, fds, capabilities,
    //    no_new_privs, landlock, seccomp) and exec happen in program::start.
    // SAFETY: single-threaded; the child only runs program::start, which execs or exits.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            program::start(plan, launcher_env, old_umask, &report)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => fail(format!("fork: {e}")),
    };

    // 7. The supervisor keeps nothing: no report pipe, no capabilities,
    //    no_new_privs, a seccomp filter stricter than the default; then it
    //    waits, forwards signals, reaps orphans and enforces the timeout.
    drop(report);
    let _ = sys::caps::restrict_to(&[]);
    let _ = sys::set_no_new_privs();
    if plan.supervision.die_with_parent {
        let _ = sys::set_pdeathsig(libc::SIGKILL);
    }
    sys::set_name("moksha-init");
    if let Err(e) = confine::supervisor() {
        eprintln!("moksha: the supervisor runs unfiltered: {e}");
    }
    let timeout = plan.security.timeout.as_ref().map(|t| &t.op);
    let code = supervisor::supervise(child.as_raw(), &waited_signals(), timeout);
    if let Some(lock) = lock {
        state::record_exit(lock, code);
    }
    // The launcher may return the code now; our exit still tears the PID
    // namespace down (the launcher gone, EPIPE is ignored: SIGPIPE is).
    let _ = nix::unistd::write(&status, &code.to_le_bytes());
    // SAFETY: see above.
    unsafe { libc::_exit(code) }
}

/// The record of a sandbox whose program runs: pids with their start
/// times, namespaces, logs, the plan.
fn record_of(
    plan: &Plan,
    name: &str,
    supervisor: libc::pid_t,
    namespaces: Vec<(String, u64)>,
    logs: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> state::Record {
    use sha2::Digest;
    let json = serde_json::to_string(plan).unwrap_or_default();
    let digest = sha2::Sha256::digest(json.as_bytes());
    let program = state::first_child(supervisor).unwrap_or(0);
    let show = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let (stdout_log, stderr_log) = match logs {
        Some((o, e)) => (Some(show(o)), Some(show(e))),
        None => (None, None),
    };
    state::Record {
        name: name.to_string(),
        profile: plan.profile.clone(),
        plan_digest: digest.iter().map(|b| format!("{b:02x}")).collect(),
        uid: nix::unistd::geteuid().as_raw(),
        supervisor_pid: supervisor,
        supervisor_start: state::start_time(supervisor).unwrap_or(0),
        program_pid: program,
        program_start: state::start_time(program).unwrap_or(0),
        namespaces,
        started_at: state::now(),
        detached: plan.supervision.detach,
        stdout_log,
        stderr_log,
        plan: plan.clone(),
    }
}

/// Step 3 of `sandbox_main`.
fn build_root(plan: &Plan) -> Result<(), rootfs::StepError> {
    sys::mount(
        None,
        "/",
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
        "none",
        "/",
    )?;
    let host = rootfs::open_host(plan)?;
    let base = staging_base().ok_or_else(|| rootfs::StepError::plain("no staging directory"))?;
    let mut builder = rootfs::Builder::new(base, plan, &host)?;
    builder.apply_all(&plan.fs)?;
    builder.apply_all(&network::root_steps(plan))?;
    sys::fchdir(&builder.root, "<new root>")?;
    drop(builder);
    drop(host);
    sys::pivot_root_here("<new root>")?;
    sys::umount_detach(".", "<old root>")?;
    sys::chdir("/")?;
    rootfs::remount_read_only(&plan.fs)
}
