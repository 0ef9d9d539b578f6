//! Turning a plan into a running sandbox, in one ordered sequence.
//!
//! `run` is prepare → spawn → wait. The launcher's side (`launch`) claims
//! the instance, starts the helpers, clones into the new namespaces, writes
//! the id maps and waits; the sandbox's side (`inside`) owns the privileged
//! order of operations in the new namespaces and becomes the supervisor
//! (PID 1 of the sandbox) after forking the program. Each stage below is
//! one short function, in the order it runs; the details live beside it:
//!
//! | module      | holds                                                     |
//! |-------------|-----------------------------------------------------------|
//! | prepare     | the resolved plan: everything the launcher adds, validated |
//! | helper      | host processes beside the sandbox, under one guard        |
//! | network     | the network at launch: helper, joined namespace, lo up    |
//! | egress      | the egress proxy (`moksha __egress`), by domain name      |
//! | rootfs      | executing the root's mount operations (`plan::mounts`)    |
//! | program     | the program's last steps: limits, fds, caps, exec         |
//! | confine     | landlock and seccomp, for the program and the supervisor  |
//! | supervisor  | waiting: forwarding signals, reaping, the timeout         |
//! | enter       | `moksha enter`: a new process in a running sandbox        |

mod confine;
pub mod egress;
mod enter;
mod error;
pub mod helper;
mod net_helper;
mod network;
mod prepare;
mod program;
mod protect;
mod report;
mod rootfs;
mod supervisor;
mod tracer;
mod xauth;

use crate::plan::{mounts, Namespace, Plan};
use crate::state::{self, Claim};
use crate::sys;
pub use enter::enter;
pub use error::SetupError;
use nix::sys::signal::{SigmaskHow, Signal};
pub use prepare::{filter_for_launch, host_checks, prepare, report_of, resolve, Launch, Prepared};
use report::Message;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;
use supervisor::{Child, Relay};
pub(crate) use sys::signal::restore_signals;

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

/// How `moksha exec` was asked to run the plan.
#[derive(Default, Debug, Clone)]
pub struct Options {
    /// Print phase timings to stderr.
    pub timings: bool,
    /// Instance name from the command line (overrides the profile's).
    pub name: Option<String>,
    /// Return once the program runs; its output goes to log files.
    pub detach: bool,
    /// Trace mode (`--trace`), as if the profile said s.trace(true).
    pub trace: bool,
}

/// Launches the sandbox a profile's plan describes and waits for it (or,
/// detached, until the program runs). Returns the exit code for moksha:
/// the program's status, 128+N if it died of signal N, or EXIT_* codes.
pub fn run(plan: Plan, opts: &Options) -> i32 {
    run_traced(plan, opts).0
}

/// `run`, and in trace mode (foreground) the resolved plan with the
/// denial log's tally (for `moksha learn`).
pub fn run_traced(
    plan: Plan,
    opts: &Options,
) -> (i32, Option<(Plan, crate::state::denials::Tally)>) {
    let t0 = Instant::now();
    // The profile's plan is not needed past the preparation, and what the
    // launcher holds while the program runs is packed (`Prepared::kept`).
    let prepared = prepare(&plan, opts).map(Prepared::kept);
    drop(plan);
    match prepared.and_then(|p| {
        launch(&p, opts.timings, t0).map(|(code, tally)| (code, tally.map(|t| (p.plan, t))))
    }) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("moksha: {}", crate::text::shown(e));
            (EXIT_SETUP, None)
        }
    }
}

/// The launcher's side, in order. Whatever it made is undone on every way
/// out by the guards it holds: the claim removes the instance's files, the
/// child guard kills and reaps the sandbox, the helpers stop.
type Traced = Option<crate::state::denials::Tally>;

fn launch(p: &Prepared, timings: bool, t0: Instant) -> Result<(i32, Traced), SetupError> {
    let plan = &p.plan;
    // 1. The instance name, held until the sandbox ends, and a detached
    //    sandbox's log files.
    let claim = claim(p)?;
    let (stdio, logs) = detached_stdio(plan, claim.as_ref())?;
    // 2. Host directories the profile asked to create; the helpers beside
    //    the sandbox, started first so that their files can be bound in
    //    (and the guard the network helper will run under).
    helper::create_sources(plan)?;
    // 2b. The overlays' changes stores, and the placeholders protect
    //     steps may make (removed when a foreground sandbox ends).
    let stores = prepare_stores(plan)?;
    let placeholders = protect::Placeholders::of(plan);
    placeholders.record_in_stores()?;
    let later = p.net.has_helper() || plan.network.egress.is_some();
    let mut helpers = helper::start_all(plan, p.helper_dir.as_deref(), later)?;
    // 3. Signals are handled synchronously from here on (the sandbox side
    //    restores its mask before running the program); the pipes to it.
    let relay = block_signals(Relay::of(plan))?;
    // Whether we hold the terminal's foreground, to take it back at the end
    // from a program that gave it to one of its own jobs; and the terminal's
    // settings, to restore those a program left behind (raw mode, no echo).
    let foreground = sys::in_foreground(0);
    let terminal = sys::terminal_settings(0);
    let net_later = network::made_later(plan, &p.net);
    let pipes = Pipes::new(net_later)?;
    let (net_ours, net_theirs) = pipes.netns.unzip();
    // 4. clone into the new namespaces (from inside a joined network
    //    namespace, if any). The child runs `inside` and never returns.
    let inherited = Inherited {
        go: pipes.go.0,
        report: pipes.report.1,
        lock: claim.as_ref().map(|c| &c.lock),
        stdio,
        lifeline: helpers.as_ref().and_then(helper::Helpers::lifeline),
        status: pipes.status.1,
        filter: p.filter.as_deref(),
        netns: net_theirs,
    };
    let child = spawn(plan, &p.net, inherited, t0)?;
    let t_clone = t0.elapsed();
    // 5. The id maps, written from outside (an unprivileged user may map
    //    only itself, and only from its parent namespace).
    write_id_maps(plan, child.pid)?;
    if timings {
        eprintln!(
            "moksha timings: id maps written by the launcher at {:?}",
            t0.elapsed()
        );
    }
    // The namespaces, for the instance record: read now, while the child is
    //    still dumpable (its /proc links close to us once it is not).
    let mut namespaces = recorded_namespaces(child.pid, net_later);
    //    The network namespace made after the go: the user namespace that
    //    will own it, opened now for the same reason (network.rs).
    let maker = net_ours
        .map(|to| network::Maker::new(plan, child.pid, to))
        .transpose()?;
    // 6. The user-mode network helper, attached to the sandbox's namespaces
    //    and ready before the sandbox goes on.
    if network::start_helper(plan, &p.net, child.pid, helpers.as_mut())? && timings {
        eprintln!("moksha timings: network helper ready at {:?}", t0.elapsed());
    }
    //    The egress proxy, listening inside the sandbox's network namespace.
    let net_log = claim
        .as_ref()
        .filter(|_| plan.network.egress.is_some())
        .map(Claim::net_log);
    if egress::start(plan, child.pid, net_log.as_deref(), helpers.as_mut())? && timings {
        eprintln!("moksha timings: egress proxy ready at {:?}", t0.elapsed());
    }
    // 7. Go. Setup errors and phase timings arrive on the report pipe; it
    //    closes when the program has been executed.
    if timings {
        eprintln!("moksha timings: go sent at {:?}", t0.elapsed());
    }
    let failure = go_and_listen(pipes.go.1, maker, pipes.report.0, timings, &mut namespaces);
    if timings {
        eprintln!(
            "moksha timings: clone returned at {t_clone:?}, program executed at {:?}",
            t0.elapsed()
        );
    }
    // 8. The record `moksha ps/enter/stop` read: the resolved plan. A
    //    foreground sandbox nobody named gets it once it has run for a
    //    moment (supervisor::RECORD_AFTER; `moksha ps` does not list it
    //    before): a short command does not pay for it (~0.3 ms here). Not
    //    one that may outlive us (die_with_parent off): killed within that
    //    moment, we would leave it running without a record, out of reach
    //    of `moksha stop`.
    //    Why a record could not be written: said at once, or, for one
    //    written later, once the sandbox has ended (not in the middle of
    //    the program's output).
    let supervisor = child.pid;
    let unrecorded = std::cell::RefCell::new(None::<String>);
    let write_record = || {
        if let Some(c) = &claim {
            let record = record_of(p, supervisor, namespaces, logs);
            if let Err(e) = c.write_record(&record) {
                *unrecorded.borrow_mut() = Some(crate::text::shown(&e).to_string());
            }
        }
    };
    let mut record_later: Option<Box<dyn FnOnce() + '_>> = None;
    if failure.is_none() {
        if p.claim_optional && plan.supervision.die_with_parent {
            record_later = Some(Box::new(write_record));
        } else {
            write_record();
            if let Some(e) = unrecorded.take() {
                eprintln!("moksha: warning: the instance will not show in `moksha ps`: {e}");
            }
        }
        if plan.supervision.detach {
            // The supervisor holds the lock and the helpers' lifeline from
            // here on; the launcher goes. (Its record is written.)
            drop(record_later);
            println!("{}", p.name);
            child.release();
            placeholders.release();
            stores.release();
            claim.into_iter().for_each(Claim::commit);
            helpers.into_iter().for_each(helper::Helpers::release);
            return Ok((0, None));
        }
    }
    // 9. Wait: signals forwarded to the supervisor, the program's status
    //    returned as soon as the supervisor sends it (once it is gone
    //    when an overlay's changes store must be free on return, or the
    //    placeholders it holds are to be removed).
    let reap = !stores.0.is_empty() || placeholders.any();
    let (status, trace) = child.wait(relay, pipes.status.0, reap, record_later);
    if let Some(e) = unrecorded.take() {
        eprintln!("moksha: warning: the sandbox did not show in `moksha ps` while it ran: {e}");
    }
    // Trace mode: the denial log, with the paths missing inside checked
    // on the host (a path the host lacks too is not the profile's doing),
    // and what the D-Bus proxies refused (read before they stop).
    let tally = trace.map(|body| {
        let mut tally = tracer::tally_of(&body);
        tracer::add_bus_log(plan, p.helper_dir.as_deref(), &mut tally);
        tracer::add_egress_log(plan, net_log.as_deref(), &mut tally);
        let on_host = |p: &str| std::path::Path::new(p).exists();
        eprint!(
            "{}",
            crate::state::denials::render(plan, &tally, Some(&on_host))
        );
        tally
    });
    drop(helpers);
    if relay.shared_terminal && foreground {
        // Take the terminal back from a job of the program's (an
        // interactive shell inside that did not give it back).
        sys::take_terminal(0);
    }
    if let Some(settings) = terminal.filter(|_| sys::in_foreground(0)) {
        sys::restore_terminal(0, &settings);
    }
    Ok((failure.unwrap_or(status), tally))
}

/// Stage 2b: every overlay's changes store made ready, its upper and work
/// directories owned by the ids the overlay writes with (the host's
/// nobody, run by root).
fn prepare_stores(plan: &Plan) -> Result<Stores, SetupError> {
    let owner = plan
        .ids
        .as_nobody
        .then_some((crate::plan::NOBODY, crate::plan::NOBODY));
    let mut stores = Stores(Vec::new());
    for step in &plan.fs {
        if let crate::plan::FsOp::Overlay {
            source,
            target,
            changes: Some(name),
            ..
        } = &step.op
        {
            let store =
                crate::changes::Store::named(name).map_err(|e| SetupError::at(&step.at, e))?;
            store
                .prepare(source, target, owner)
                .map_err(|e| SetupError::at(&step.at, e))?;
            stores.0.push(store);
        }
    }
    Ok(stores)
}

/// The stores a foreground sandbox used: those it left without a change
/// are removed when it ends (or fails to start), so that `moksha ps`
/// lists only changes to review.
struct Stores(Vec<crate::changes::Store>);

impl Stores {
    /// A detached sandbox goes on with them.
    fn release(mut self) {
        self.0.clear();
    }
}

impl Drop for Stores {
    fn drop(&mut self) {
        for store in &self.0 {
            store.remove_if_unchanged();
        }
    }
}

/// Stage 1: the instance's claim. A foreground sandbox nobody named still
/// runs when the state directory is unusable; it just does not show in
/// `moksha ps`.
fn claim(p: &Prepared) -> Result<Option<Claim>, SetupError> {
    match Claim::take(&p.name) {
        Ok(c) => Ok(Some(c)),
        Err(e) if p.claim_optional && state::state_dir().is_err() => {
            eprintln!(
                "moksha: warning: {}; this sandbox will not show in `moksha ps`",
                crate::text::shown(&e)
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The log files of a detached sandbox (stdin /dev/null), and their paths
/// for the record.
type Logs = Option<(std::path::PathBuf, std::path::PathBuf)>;

fn detached_stdio(
    plan: &Plan,
    claim: Option<&Claim>,
) -> Result<(Option<[OwnedFd; 3]>, Logs), SetupError> {
    if !plan.supervision.detach {
        return Ok((None, None));
    }
    // A detached sandbox always has a claim: its name is not optional.
    let claim = claim.ok_or_else(|| "no state directory".to_string())?;
    let (out, err, out_path, err_path) = claim.open_logs()?;
    let null = sys::open_dev_null()?;
    Ok((
        Some([null, out.into(), err.into()]),
        Some((out_path, err_path)),
    ))
}

/// Stage 3: blocks the signals waited for (see `Relay`).
fn block_signals(relay: Relay) -> Result<Relay, SetupError> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&relay.waited()), None)
        .map_err(|e| format!("sigprocmask: {e}"))?;
    Ok(relay)
}

/// The pipes between the launcher and the sandbox side, (read, write):
/// `go` (the launcher lets the sandbox go on), `report` (setup errors and
/// timings back), `status` (the program's exit code back); and with
/// `net_later`, the socket the network namespace made after the go comes
/// over (network.rs).
struct Pipes {
    go: (OwnedFd, OwnedFd),
    report: (OwnedFd, OwnedFd),
    status: (OwnedFd, OwnedFd),
    netns: Option<(OwnedFd, OwnedFd)>,
}

impl Pipes {
    fn new(net_later: bool) -> Result<Pipes, SetupError> {
        Ok(Pipes {
            go: sys::pipe()?,
            report: sys::pipe()?,
            status: sys::pipe()?,
            netns: net_later.then(sys::net::socketpair).transpose()?,
        })
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
    /// The program's seccomp filter, compiled when the plan was validated.
    filter: Option<&'a [crate::policy::bpf::Insn]>,
    /// Where the network namespace made after the go comes from.
    netns: Option<OwnedFd>,
}

/// Stage 4: clone. The launcher gets the child's guard; the child runs
/// `inside` and never returns. The sandbox side's pipe ends close in the
/// launcher when `inherited` is dropped here.
fn spawn(
    plan: &Plan,
    net: &network::Found,
    inherited: Inherited,
    t0: Instant,
) -> Result<Child, SetupError> {
    // Time is entered with unshare later: clone cannot take it.
    let namespaces: Vec<Namespace> = plan
        .namespaces
        .new_ones()
        .into_iter()
        .filter(|n| *n != Namespace::Time)
        .filter(|n| !(inherited.netns.is_some() && *n == Namespace::Net))
        .collect();
    let own_net = network::enter_joined(net)?;
    let cloned = match sys::clone_into(&namespaces) {
        Ok(None) => inside(plan, inherited, t0),
        Ok(Some(pid)) => Ok(pid),
        Err(e) => Err(e),
    };
    network::leave_joined(own_net);
    let pid = cloned.map_err(|e| {
        format!(
            "cannot create the sandbox's namespaces: {e}{}",
            userns_restriction_hint()
        )
    })?;
    Ok(Child::new(pid))
}

/// Stage 5: the new user namespace maps the caller to the ids the plan
/// asks for (itself by default). setgroups must be denied before an
/// unprivileged gid_map can be written.
fn write_id_maps(plan: &Plan, child: libc::pid_t) -> Result<(), SetupError> {
    if !plan.namespaces.user {
        return Ok(());
    }
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let inside_uid = plan.ids.uid.unwrap_or(uid);
    let inside_gid = plan.ids.gid.unwrap_or(gid);
    // Run by root for a sandbox that is nobody: root is mapped in for
    // setup (to open what the profile binds), the program's ids to the
    // host's nobody; setgroups stays allowed for the program to drop
    // root's groups (program.rs).
    let (uid_map, gid_map) = if plan.ids.as_nobody {
        let nobody = crate::plan::NOBODY;
        (
            format!("0 {uid} 1\n{inside_uid} {nobody} 1\n"),
            format!("0 {gid} 1\n{inside_gid} {nobody} 1\n"),
        )
    } else {
        (
            format!("{inside_uid} {uid} 1\n"),
            format!("{inside_gid} {gid} 1\n"),
        )
    };
    let setgroups = if plan.ids.as_nobody {
        Ok(())
    } else {
        sys::write_host_file(&format!("/proc/{child}/setgroups"), "deny")
    };
    setgroups
        .and_then(|_| sys::write_host_file(&format!("/proc/{child}/uid_map"), &uid_map))
        .and_then(|_| sys::write_host_file(&format!("/proc/{child}/gid_map"), &gid_map))
        .map_err(|e| {
            format!(
                "cannot map ids into the sandbox: {e}{}",
                userns_restriction_hint()
            )
            .into()
        })
}

/// What to do when the host restricts unprivileged user namespaces with
/// AppArmor (Ubuntu 23.10+: the clone succeeds, what follows is refused),
/// or "" when it does not.
fn userns_restriction_hint() -> String {
    let setting = std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    apparmor_hint(setting.ok().as_deref(), nix::unistd::geteuid().is_root())
}

fn apparmor_hint(setting: Option<&str>, root: bool) -> String {
    if root || setting.map(str::trim) != Some("1") {
        return String::new();
    }
    "\n  hint: this system restricts unprivileged user namespaces with AppArmor \
     (kernel.apparmor_restrict_unprivileged_userns = 1). Allow moksha with the profile it \
     ships: sudo install -m 644 dist/apparmor/moksha /etc/apparmor.d/moksha && sudo \
     apparmor_parser -r /etc/apparmor.d/moksha (the profile names the usual install paths; \
     add yours if moksha lives elsewhere)"
        .into()
}

/// The sandbox's namespaces by their /proc names and inodes (but for the
/// network namespace made later, which `network::Maker::make` gives).
fn recorded_namespaces(child: libc::pid_t, net_later: bool) -> Vec<(String, u64)> {
    state::recorded()
        .filter(|ns| !(net_later && *ns == Namespace::Net))
        .filter_map(|ns| {
            let ino = state::ns_inode(child, ns.proc_name())?;
            Some((ns.proc_name().to_string(), ino))
        })
        .collect()
}

/// Stage 7: lets the sandbox go on, makes its network namespace if that
/// is ours to do now (adding it to `namespaces`), and reads its reports
/// until the program runs. Returns the exit code of a failed setup.
fn go_and_listen(
    go: OwnedFd,
    maker: Option<network::Maker>,
    report: OwnedFd,
    timings: bool,
    namespaces: &mut Vec<(String, u64)>,
) -> Option<i32> {
    let _ = sys::write_all(&go, b"1", "<go pipe>");
    drop(go);
    if let Some(inode) = maker.and_then(network::Maker::make) {
        namespaces.push(("net".into(), inode));
    }
    let mut failure = None;
    for msg in report::receive_all(report) {
        match msg {
            Message::Error(code, text) => {
                eprintln!("moksha: {}", crate::text::shown(text));
                failure = Some(code);
            }
            Message::Phase(name, us) if timings => {
                eprintln!("moksha timings: {name} at {us} us after start")
            }
            Message::Phase(..) => {}
        }
    }
    failure
}

/// The record of a sandbox whose program runs: pids with their start
/// times, namespaces, logs, the resolved plan.
fn record_of(
    p: &Prepared,
    supervisor: libc::pid_t,
    namespaces: Vec<(String, u64)>,
    logs: Logs,
) -> state::Record<&Plan> {
    let program = state::first_child(supervisor).unwrap_or(0);
    let show = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let (stdout_log, stderr_log) = match logs {
        Some((o, e)) => (Some(show(o)), Some(show(e))),
        None => (None, None),
    };
    state::Record {
        name: p.name.clone(),
        profile: p.plan.profile.clone(),
        uid: nix::unistd::geteuid().as_raw(),
        supervisor_pid: supervisor,
        supervisor_start: state::start_time(supervisor).unwrap_or(0),
        program_pid: program,
        program_start: state::start_time(program).unwrap_or(0),
        namespaces,
        started_at: state::now(),
        detached: p.plan.supervision.detach,
        stdout_log,
        stderr_log,
        plan: &p.plan,
    }
}

/// What `moksha plan` shows of this host for `plan`.
pub fn host_view(plan: &Plan) -> crate::plan::HostView {
    crate::plan::HostView {
        net_helper: network::shown_helper(plan),
        landlock_abi: sys::landlock::abi(),
    }
}

/// The environment of the launching process, as text.
pub(crate) fn launcher_env() -> Vec<(String, String)> {
    // A byte that is not UTF-8 stands as U+10FF00 + byte (`crate::arg`);
    // the program's environment gets the byte back (program.rs).
    std::env::vars_os()
        .map(|(k, v)| (crate::arg::to_text(&k).0, crate::arg::to_text(&v).0))
        .collect()
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

// ---- the sandbox's side -----------------------------------------------------

/// The sandbox side, in its new namespaces: the privileged order of
/// operations, then the supervisor. Never returns; a failure is reported
/// to the launcher and ends the process with EXIT_SETUP.
fn inside(plan: &Plan, inherited: Inherited, t0: Instant) -> ! {
    let Inherited {
        go,
        report,
        lock,
        stdio,
        lifeline,
        status,
        filter,
        netns,
    } = inherited;
    let mut keep = vec![report.as_raw_fd(), status.as_raw_fd()];
    keep.extend(netns.as_ref().map(AsRawFd::as_raw_fd));
    keep.extend(lock.map(AsRawFd::as_raw_fd));
    keep.extend(lifeline);
    let setup = Setup {
        go,
        stdio,
        keep: &keep,
        filter,
        netns,
    };
    match setup_inside(plan, setup, &report, t0) {
        Ok(started) => {
            // The report pipe closes for the launcher once the program has
            // been executed (its copy is close-on-exec) and this one is gone.
            drop(report);
            supervisor::become_supervisor(
                plan,
                started.program,
                lock,
                status,
                started.leftovers,
                started.handoff,
                started.privileged,
            )
        }
        Err(e) => {
            report::send(&report, &Message::Error(EXIT_SETUP, e.to_string()));
            sys::exit_now(EXIT_SETUP)
        }
    }
}

/// What the sandbox side sets up with, of what it inherited.
struct Setup<'a> {
    go: OwnedFd,
    stdio: Option<[OwnedFd; 3]>,
    /// The descriptors the supervisor keeps.
    keep: &'a [std::os::fd::RawFd],
    filter: Option<&'a [crate::policy::bpf::Insn]>,
    netns: Option<OwnedFd>,
}

/// The stages inside, in order, up to the program's start; returns what
/// the supervisor goes on with.
fn setup_inside(
    plan: &Plan,
    setup: Setup,
    report: &OwnedFd,
    t0: Instant,
) -> Result<Started, SetupError> {
    let Setup {
        go,
        stdio,
        keep,
        filter,
        netns,
    } = setup;
    let phase = |name: &str| {
        report::send(
            report,
            &Message::Phase(name.into(), t0.elapsed().as_micros() as u64),
        )
    };
    // 1. Die with the launcher (unless detached), take the log files as
    //    stdio when detached, and close everything inherited from the
    //    launcher but our pipes, the instance lock and the descriptors the
    //    plan passes on.
    if plan.supervision.die_with_parent {
        sys::set_pdeathsig(libc::SIGKILL)?;
    }
    for (target, fd) in stdio.iter().flatten().enumerate() {
        sys::dup_onto(fd, target as i32)?;
    }
    drop(stdio);
    let mut kept = plan.process.pass_fds.clone();
    kept.extend(keep);
    kept.push(go.as_raw_fd());
    sys::close_fds_except(&kept)?;
    // Exact modes for the files and directories setup creates.
    let old_umask = sys::umask(0);

    // 2. Wait until the launcher has written the id maps. End-of-file
    //    without the byte means the launcher died: stop here.
    let mut byte = [0u8; 1];
    if !matches!(nix::unistd::read(go.as_raw_fd(), &mut byte), Ok(1)) {
        return Err("the launcher went away before the sandbox was set up"
            .to_string()
            .into());
    }
    drop(go);
    // Nobody inside may ptrace us or read our memory. Not earlier: a
    // non-dumpable process's /proc files belong to root, and the launcher
    // could not have written our id maps.
    let _ = sys::set_dumpable(false);
    phase("id maps written");
    // Without a PID namespace of its own, the list of our children, read
    // at the end through the host's /proc (gone from view after pivot_root).
    let leftovers = if plan.namespaces.pid {
        None
    } else {
        Some(sys::open_children()?)
    };

    // 3. The filesystem: private propagation, host sources opened, the new
    //    root built in a staging tmpfs, pivot_root, old root detached,
    //    read-only remounts (rootfs.rs runs what plan::mounts compiled).
    if plan.namespaces.mount {
        let base = staging_base().ok_or_else(|| "no staging directory".to_string())?;
        // What setup creates (tmpfs roots, directories, the files the
        // profile writes) belongs to the program's identity.
        rootfs::build(&mounts::compile(plan), base, plan.ids.nobody_inside())?;
        phase("root built");
    }
    // 3b. The network: the new namespace entered if it was made while we
    //     built the root (nothing so far used the network), lo up in it
    //     (network.rs).
    let made_later = netns.is_some();
    if let Some(from) = netns {
        network::enter_made(from)?;
    }
    network::configure_inside(plan, made_later)?;

    // 4. Hostname, and the time namespace (entered by unshare; it applies to
    //    the program we fork next).
    if let Some(host) = &plan.process.hostname {
        sys::sethostname(&host.value).map_err(|e| SetupError::at(&host.at, e.to_string()))?;
    }
    if plan.namespaces.time {
        sys::unshare(&[Namespace::Time])
            .map_err(|e| e.hint("the time namespace needs Linux 5.6 or newer"))?;
    }

    // 5. Sessions: by default the supervisor starts a new session, so the
    //    program has no controlling terminal and terminal signals reach only
    //    the launcher, which passes them on. A program that shares the
    //    terminal gets its own foreground process group (program.rs); the
    //    supervisor one of its own, so the terminal's signals do not reach
    //    it. Job control goes through the launcher (supervisor.rs, Relay).
    if plan.supervision.new_session {
        sys::setsid()?;
    } else {
        sys::setpgid_self()?;
    }
    // Adopt orphans even when the PID namespace is shared.
    sys::set_child_subreaper()?;
    // Run by root as nobody: the supervisor too, now that the root is
    // built, as it is the caller in a rootless sandbox (it signals the
    // program's processes, which need the same uid).
    if let Some((uid, gid)) = plan.ids.nobody_inside() {
        sys::become_ids(uid, gid)?;
        // A change of ids (and the filesystem ids setup used) clears the
        // parent-death signal: set again, then make sure the launcher did
        // not die before it was (its end of the report pipe is open until
        // the program runs; a write to a pipe nobody reads fails).
        if plan.supervision.die_with_parent {
            sys::set_pdeathsig(libc::SIGKILL)?;
            let switched = Message::Phase(
                "ids switched to nobody".into(),
                t0.elapsed().as_micros() as u64,
            );
            if !report::send_checked(report, &switched) {
                return Err("the launcher went away while the sandbox was set up"
                    .to_string()
                    .into());
            }
        }
    }
    phase("forking the program");
    // Named before the program exists, so that whatever it starts sees
    // the supervisor by its name (the program's copy is renamed by exec).
    sys::set_name("moksha-init");

    // 6. The program: its own last steps (rlimits, fds, capabilities,
    //    no_new_privs, landlock, seccomp) and exec happen in program::start.
    //    In trace mode it hands its filter's listener over through a shared
    //    page (tracer.rs).
    // (Single-threaded; the child only runs program::start, which execs or exits.)
    let handoff = match plan.supervision.trace {
        true => Some(tracer::Handoff::new()?),
        false => None,
    };
    // The program shares our memory until its exec (as posix_spawn does:
    // no page tables copied, no copy-on-write faults on either side) when
    // we can give up our privilege first: suspended until that exec, we
    // would otherwise still hold capabilities while the program runs.
    // Trace mode's handoff needs both processes running at once, and
    // capabilities the program keeps would stay ours too (dropping them
    // later needs CAP_SETPCAP): those fork. Without a user namespace of
    // its own the program's setup may need root's power (a hard rlimit
    // raised), which it would no longer have.
    let share = handoff.is_none() && plan.security.keep_caps.is_empty() && plan.namespaces.user;
    let exec = program::Exec::of(plan, &launcher_env(), report)?;
    let program = if share {
        // The program's working directory, entered while we may still
        // need capabilities to (as the program did when it was forked);
        // the program inherits it, and we go back to / after.
        program::enter_working_dir(plan)?;
        drop_privilege(plan)?;
        let started = sys::spawn_sharing_memory(|| {
            program::start_with(
                plan,
                &exec,
                old_umask,
                report,
                None,
                filter,
                program::Credentials::Inherited,
            )
        });
        let _ = sys::chdir("/");
        started?
    } else {
        match sys::fork()? {
            None => program::start_with(
                plan,
                &exec,
                old_umask,
                report,
                handoff.as_ref(),
                filter,
                program::Credentials::Switch,
            ),
            Some(child) => child,
        }
    };
    Ok(Started {
        program,
        leftovers,
        handoff,
        privileged: !share,
    })
}

/// What `setup_inside` started, for the supervisor.
struct Started {
    program: libc::pid_t,
    /// Sharing the host's PID namespace: our children, to end at the end.
    leftovers: Option<std::fs::File>,
    handoff: Option<tracer::Handoff>,
    /// Whether we still hold capabilities (the program was forked).
    privileged: bool,
}

/// The supervisor's privilege given up (before the program starts, or
/// right after a forked one did): every capability, no_new_privs, and the
/// parent-death signal again. Each is tried; the first failure is said.
fn drop_privilege(plan: &Plan) -> Result<(), SetupError> {
    let caps = sys::caps::restrict_to(&[]);
    let nnp = sys::set_no_new_privs();
    let pdeath = match plan.supervision.die_with_parent {
        true => sys::set_pdeathsig(libc::SIGKILL),
        false => Ok(()),
    };
    caps.and(nnp).and(pdeath).map_err(SetupError::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_apparmor_restriction_is_named_with_what_to_do() {
        let hint = super::apparmor_hint(Some("1\n"), false);
        assert!(
            hint.contains("apparmor_restrict_unprivileged_userns = 1")
                && hint.contains("/etc/apparmor.d/moksha")
                && hint.contains("apparmor_parser -r"),
            "{hint}"
        );
        assert_eq!(super::apparmor_hint(Some("0\n"), false), "");
        assert_eq!(super::apparmor_hint(None, false), "");
        assert_eq!(
            super::apparmor_hint(Some("1"), true),
            "",
            "root is not restricted"
        );
        let profile = include_str!("../../dist/apparmor/moksha");
        assert!(profile.contains("userns,") && profile.contains("flags=(unconfined)"));
    }
}
