//! The sandbox's network (plan section `network`), at launch.
//!
//! Launcher side, in `run()`'s order:
//! 1. `find`, while the plan is prepared (prepare.rs): find the user-mode
//!    helper on PATH (a clear error naming the packages otherwise), open a
//!    namespace to join.
//! 2. `enter_joined` / `leave_joined` around clone: the sandbox is cloned
//!    while the launcher stands in the joined namespace, so it starts there.
//! 3. `start_helper`, once the id maps are written and before the sandbox
//!    is told to go on: pasta (or slirp4netns) attaches to the sandbox's
//!    user and network namespaces; we wait until it has configured them.
//!    It runs beside the sandbox under the helpers' guard (helper.rs) and
//!    stops with it.
//!
//! Sandbox side: `configure_inside`: `lo` up in a new namespace.
//!
//! When nothing needs the sandbox's network namespace before the go
//! (`made_later`: no helper attaches to it, no proxy listens in it) the
//! clone leaves it out, and a short-lived child of the launcher (`Maker`)
//! makes it, lo up, in the sandbox's user namespace while the sandbox side
//! builds the root; the sandbox side enters it once the root is built and
//! the maker is gone (`enter_made`). Making a network namespace is most of
//! what a clone with every namespace costs (~0.7 ms of ~1 ms here); this
//! way it runs on another core, and outside the sandbox's PID namespace
//! (the program stays PID 2).
//!
//! (The /etc/resolv.conf naming the helper's DNS forwarder is a step of the
//! resolved plan: prepare.rs.)

use super::helper::{Helpers, Spec, EXIT_FD, READY_FD};
use super::net_helper;
use crate::plan::helper::Ready;
use crate::plan::network::{self as net, HelperKind, NetMode};
use crate::plan::{Plan, Pos};
use crate::sys;
use std::os::fd::{AsRawFd, OwnedFd};

/// How long the helper gets to configure the network, in milliseconds.
const READY_TIMEOUT_MS: u64 = 10_000;

/// What `find` found on the host.
#[derive(Default)]
pub struct Found {
    helper: Option<net::Helper>,
    join: Option<(OwnedFd, String)>,
}

impl Found {
    /// Whether a user-mode helper is to start after the clone.
    pub fn has_helper(&self) -> bool {
        self.helper.is_some()
    }
}

/// Whether the sandbox's new network namespace is made after the clone
/// (see the module's doc): the launcher then does not read it before the
/// go, and records the one it made.
pub fn made_later(plan: &Plan, prep: &Found) -> bool {
    plan.namespaces.net
        && !prep.has_helper()
        && prep.join.is_none()
        && plan.network.egress.is_none()
}

/// Host checks before any namespace exists.
pub fn find(plan: &Plan) -> Result<Found, String> {
    let mut out = Found::default();
    match &plan.network.mode {
        NetMode::User(user) => {
            let helper = net::choose_helper(user.helper, crate::script::host::which)?;
            if helper.kind == HelperKind::Slirp4netns {
                if let Some(f) = plan.network.forwards.first() {
                    return Err(format!(
                        "{}: port forwards need pasta (package passt); only slirp4netns is \
                         installed",
                        f.at
                    ));
                }
            }
            out.helper = Some(helper);
            // A busy port, said before anything exists (pasta's own words
            // for it are harder to read).
            for f in &plan.network.forwards {
                let fw = &f.op;
                let udp = fw.proto == crate::plan::Proto::Udp;
                if let Err(e) = sys::net::port_free(&fw.address, fw.host, udp) {
                    let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                        "is in use on the host: stop what listens there, or forward another host port"
                            .to_string()
                    } else {
                        format!("cannot be listened on: {e}")
                    };
                    return Err(format!(
                        "{}: port {} ({}, {}) {why}",
                        f.at,
                        fw.host,
                        fw.address,
                        if udp { "udp" } else { "tcp" }
                    ));
                }
            }
        }
        NetMode::Join { path } => {
            let fd = sys::net::open_ns(path).map_err(|e| {
                format!(
                    "{}cannot open the network namespace to join: {e}",
                    located(&plan.network.set_at)
                )
            })?;
            out.join = Some((fd, path.clone()));
        }
        NetMode::None | NetMode::Host => {}
    }
    Ok(out)
}

fn located(at: &Option<Pos>) -> String {
    at.as_ref().map(|p| format!("{p}: ")).unwrap_or_default()
}

/// Before clone: stand in the namespace to join. Returns the launcher's own
/// namespace, to go back to with `leave_joined` right after clone.
pub fn enter_joined(prep: &Found) -> Result<Option<OwnedFd>, String> {
    let Some((fd, path)) = &prep.join else {
        return Ok(None);
    };
    let own = sys::net::open_ns("/proc/self/ns/net").map_err(|e| e.to_string())?;
    sys::net::setns_net(fd, path).map_err(|e| {
        let e = if e.errno == nix::errno::Errno::EPERM {
            e.hint(
                "entering a network namespace needs CAP_SYS_ADMIN over it: run moksha as root, \
                 or use s.network(\"user\")",
            )
        } else {
            e
        };
        format!("cannot join the network namespace {path}: {e}")
    })?;
    Ok(Some(own))
}

/// After clone, in the launcher: back to its own network namespace.
pub fn leave_joined(own: Option<OwnedFd>) {
    if let Some(fd) = own {
        let _ = sys::net::setns_net(&fd, "/proc/self/ns/net");
    }
}

/// After the id maps are written, before the sandbox goes on: starts the
/// user-mode helper for the sandbox whose first process is `child` under
/// `helpers` (`start_all` made them for it), and waits until it has
/// configured the network. Says whether there was one to start.
pub fn start_helper(
    plan: &Plan,
    prep: &Found,
    child: libc::pid_t,
    helpers: Option<&mut Helpers>,
) -> Result<bool, String> {
    let (Some(found), Some(helpers)) = (&prep.helper, helpers) else {
        return Ok(false);
    };
    let pid = child.to_string();
    let caller = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let target = net_helper::Target::new(plan, &pid, caller);
    let argv = net_helper::helper_argv(plan, found, &target, READY_FD, EXIT_FD);
    let spec = Spec {
        name: found.kind.name().to_string(),
        argv,
        ready: Ready::Fd,
        timeout_ms: READY_TIMEOUT_MS,
        dir: None,
        exit_fd: found.kind == HelperKind::Slirp4netns,
        confine: target.confinement(),
        env: Vec::new(),
    };
    helpers
        .start(&spec)
        .map_err(|e| format!("the user-mode network: {e}"))?;
    Ok(true)
}

/// Sandbox side, once the root is built: a new network namespace gets its
/// loopback interface up (pasta does it too; none does not otherwise).
pub fn configure_inside(plan: &Plan, made_later: bool) -> Result<(), String> {
    // (Made later, it came with lo up.)
    if !plan.namespaces.net || made_later {
        return Ok(());
    }
    sys::net::link_up("lo").map_err(|e| format!("cannot bring lo up in the sandbox: {e}"))
}

/// Launcher side: makes the sandbox's network namespace after the go and
/// hands it to the sandbox side over a socket.
pub struct Maker {
    userns: Option<OwnedFd>,
    to: OwnedFd,
}

impl Maker {
    /// Before the go, while the sandbox side (`child`) is dumpable: its
    /// user namespace, which will own the network namespace.
    pub fn new(plan: &Plan, child: libc::pid_t, to: OwnedFd) -> Result<Maker, String> {
        let userns = match plan.namespaces.user {
            true => Some(
                sys::net::open_ns(&format!("/proc/{child}/ns/user"))
                    .map_err(|e| format!("cannot open the sandbox's user namespace: {e}"))?,
            ),
            false => None,
        };
        Ok(Maker { userns, to })
    }

    /// After the go: a child sharing our memory (we wait meanwhile, while
    /// the sandbox side builds its root) joins the sandbox's user namespace,
    /// makes the network namespace with lo up and sends it; or sends why
    /// not, which the sandbox side reports. Returns the namespace's inode,
    /// for the record. Our end closes once the child is reaped: the
    /// sandbox side waits for that end-of-file before it goes on, so the
    /// child (our memory, in the sandbox's user namespace) is gone before
    /// anything runs there.
    pub fn make(self) -> Option<u64> {
        let Maker { userns, to } = self;
        let inode = std::cell::Cell::new(None);
        let made = || -> Result<OwnedFd, String> {
            sys::unshare(&[crate::plan::Namespace::Net]).map_err(|e| match e.errno {
                nix::errno::Errno::ENOSPC => e
                    .hint(
                        "the limit on network namespaces is reached or set to 0: check \
                         `sysctl user.max_net_namespaces` (it must be > 0)",
                    )
                    .to_string(),
                _ => e.to_string(),
            })?;
            sys::net::link_up("lo").map_err(|e| format!("cannot bring lo up: {e}"))?;
            let ns = sys::net::open_ns("/proc/self/ns/net").map_err(|e| e.to_string())?;
            inode.set(
                nix::sys::stat::fstat(ns.as_raw_fd())
                    .ok()
                    .map(|st| st.st_ino),
            );
            Ok(ns)
        };
        // (Single-threaded: the evaluation ran on this thread.)
        send_made_in(userns.as_ref(), &to, made)
            .then(|| inode.get())
            .flatten()
    }
}

/// Runs `make` in a child that shares our memory (we wait meanwhile) and
/// first joins the sandbox's user namespace `userns`, where given; sends
/// the descriptor it made over `to` (SCM_RIGHTS), or why there is none
/// (text, read with `sys::net::recv_fd_or_text`), and reaps the child.
/// Says whether the descriptor was sent. The caller must be
/// single-threaded; `make` only makes system calls (what it sets in our
/// memory, we see).
pub fn send_made_in(
    userns: Option<&OwnedFd>,
    to: &OwnedFd,
    make: impl FnOnce() -> Result<OwnedFd, String>,
) -> bool {
    // What the child sent: Some(true) the descriptor, Some(false) why not.
    let sent = std::cell::Cell::new(None);
    let send = |made: Result<OwnedFd, String>| {
        let done = match &made {
            Ok(fd) => sys::net::send_fd(to, fd),
            Err(e) => sys::write_all(to, e.as_bytes(), "<socketpair>"),
        };
        sent.set(done.is_ok().then_some(made.is_ok()));
    };
    let made = || -> Result<OwnedFd, String> {
        if let Some(user) = userns {
            sys::net::setns_user(user, "the sandbox's user namespace")
                .map_err(|e| e.to_string())?;
        }
        make()
    };
    // A stop while we wait in the vfork would stop the child, with nobody
    // to continue it.
    let ended = sys::signal::with_stops_blocked(|| {
        sys::spawn_sharing_memory(|| {
            send(made());
            sys::exit_now(0)
        })
        .map(|pid| nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None))
    });
    let why = match ended {
        _ if sent.get().is_some() => return sent.get() == Some(true),
        Ok(status) => format!("the process making it ended without a word ({status:?})"),
        Err(e) => e.to_string(),
    };
    let _ = sys::write_all(to, why.as_bytes(), "<socketpair>");
    false
}

/// Sandbox side, once the root is built: enters the network namespace the
/// `Maker` sent, once the maker is gone (failing closed: without one the
/// setup fails).
pub fn enter_made(from: OwnedFd) -> Result<(), String> {
    let fail = |why: String| format!("cannot create the sandbox's network namespace: {why}");
    let ns = match sys::net::recv_fd_or_text(&from).map_err(|e| fail(e.to_string()))? {
        Ok(ns) => ns,
        Err(why) if why.is_empty() => return Err(fail("the launcher sent none".into())),
        Err(why) => return Err(fail(why)),
    };
    // End-of-file: the launcher closes its end once the maker is reaped.
    let mut more = [0u8; 1];
    if !matches!(nix::unistd::read(from.as_raw_fd(), &mut more), Ok(0)) {
        return Err(fail("more than the namespace arrived".into()));
    }
    sys::net::setns_net(&ns, "the sandbox's network namespace").map_err(|e| fail(e.to_string()))
}

/// The helper's command line `moksha plan` shows: the one that would run
/// on this host for the sandbox's first process `<PID>`, or why none would.
pub fn shown_helper(plan: &Plan) -> Option<Result<Vec<String>, String>> {
    let user = plan.network.user()?;
    let caller = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    Some(
        net::choose_helper(user.helper, crate::script::host::which).map(|found| {
            let target = net_helper::Target::new(plan, "<PID>", caller);
            net_helper::helper_argv(plan, &found, &target, READY_FD, EXIT_FD)
        }),
    )
}
