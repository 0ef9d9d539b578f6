//! Trace mode's side of the supervisor: the listener of the program's
//! filter notifications (policy/trace.rs), answered on a thread of the
//! supervisor, and the tally of what was refused (state/denials.rs).
//!
//! The listener is made by the program's own process when it installs its
//! filter, and must reach the supervisor before the program's first
//! notified call, without a system call (any call after the filter could
//! be one the filter notifies, and nobody would answer it). So the two
//! share a page (`Handoff`, mapped before the fork): the program writes the
//! listener's number there and spins until the supervisor has taken a copy
//! with pidfd_getfd (which needs the program dumpable for that moment: the
//! supervisor has no capability over it), then goes on to exec. Nothing
//! else runs in the sandbox yet.
//!
//! Each notification is answered by running the program's own compiled
//! filter on the call: its errno, or CONTINUE where it allows the call
//! (a watched call, looked at first). Anything else is refused with EPERM:
//! trace never lets a refused call run.

use crate::plan::validate::normalize;
use crate::plan::Plan;
use crate::policy::bpf::{self, Insn, RET_ALLOW, RET_ERRNO, RET_LOG};
use crate::policy::seccomp::{Abi, Seccomp};
use crate::policy::trace::{self as tp, Use};
use crate::state::denials::{self, Denial, Tally};
use crate::sys::notify;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The page shared by the program's process and the supervisor.
pub struct Handoff {
    page: notify::SharedWords,
}

// The word the listener's number is offered in, and the supervisor's answer.
const OFFERED: usize = 0;
const TAKEN: usize = 1;
/// TAKEN values: the supervisor has the listener, or could not take it.
const GOT: i32 = 1;
const FAILED: i32 = 2;

impl Handoff {
    /// Maps the shared page (before the fork).
    pub fn new() -> Result<Handoff, String> {
        let page = notify::SharedWords::new().map_err(|e| e.to_string())?;
        let h = Handoff { page };
        h.slot(OFFERED).store(-1, Ordering::SeqCst);
        h.slot(TAKEN).store(0, Ordering::SeqCst);
        Ok(h)
    }

    fn slot(&self, i: usize) -> &AtomicI32 {
        self.page.word(i)
    }

    /// The program's side: offers the listener `fd` and waits, without a
    /// system call, until the supervisor has taken it. False if it could not.
    pub fn offer(&self, fd: RawFd) -> bool {
        self.slot(OFFERED).store(fd, Ordering::SeqCst);
        // Bounded (many seconds): a supervisor that never answers ends the
        // launch rather than leaving us spinning.
        for _ in 0..1u64 << 34 {
            match self.slot(TAKEN).load(Ordering::SeqCst) {
                GOT => return true,
                FAILED => return false,
                _ => std::hint::spin_loop(),
            }
        }
        false
    }

    /// The supervisor's side: the listener's number, once offered, while
    /// the program lives (`alive`), for at most `limit`.
    fn offered(&self, limit: Duration, alive: impl Fn() -> bool) -> Option<RawFd> {
        let end = Instant::now() + limit;
        while Instant::now() < end && alive() {
            let fd = self.slot(OFFERED).load(Ordering::SeqCst);
            if fd >= 0 {
                return Some(fd);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        None
    }

    fn answer(&self, got: bool) {
        self.slot(TAKEN)
            .store(if got { GOT } else { FAILED }, Ordering::SeqCst);
    }
}

/// The running tracer: its tally, filled by its thread.
pub struct Tracer {
    tally: Arc<Mutex<Tally>>,
}

impl Tracer {
    /// What was refused so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// The supervisor's side, right after the fork: takes the listener from
/// the program (while it may still need its privilege to). `serve` then
/// answers on a thread of its own.
pub fn take(plan: &Plan, program: libc::pid_t, handoff: &Handoff) -> Result<Taken, String> {
    let process = crate::sys::Process::open(program).map_err(|e| e.to_string());
    let alive = || process.as_ref().is_ok_and(|p| !p.has_exited());
    let taken = handoff
        .offered(Duration::from_secs(10), alive)
        .ok_or_else(|| "the program did not offer its filter's listener".to_string())
        .and_then(|fd| {
            let process = process.as_ref().map_err(Clone::clone)?;
            let pidfd = process
                .pidfd()
                .ok_or("this kernel has no pidfds (Linux 5.3) to take the listener with")?;
            notify::pidfd_getfd(pidfd, fd).map_err(|e| e.to_string())
        });
    handoff.answer(taken.is_ok());
    let listener = taken?;
    let own = super::confine::compile(&plan.security.seccomp)?;
    Ok(Taken {
        listener,
        seen: Seen {
            plan: plan.clone(),
            own,
            tally: Arc::new(Mutex::new(Tally::new())),
        },
    })
}

/// The listener, taken, and what its thread will need.
pub struct Taken {
    listener: OwnedFd,
    seen: Seen,
}

impl Taken {
    /// Starts the thread that answers the notifications. Called once the
    /// supervisor is confined: capabilities, no_new_privs and the seccomp
    /// filter are each thread's own, and a new thread gets its creator's.
    pub fn serve(self) -> Result<Tracer, String> {
        let Taken { listener, seen } = self;
        let tally = seen.tally.clone();
        std::thread::Builder::new()
            .name("moksha-trace".into())
            .spawn(move || seen.serve(listener))
            .map_err(|e| format!("cannot start the tracer thread: {e}"))?;
        Ok(Tracer { tally })
    }
}

/// What the thread needs.
struct Seen {
    plan: Plan,
    own: Vec<Insn>,
    tally: Arc<Mutex<Tally>>,
}

/// What to answer a notification.
enum Answer {
    /// The call fails with this errno (0: returns 0 without running).
    Fail(i32),
    /// The call runs, as the program's filter allows it.
    Continue,
}

impl Seen {
    fn serve(self, listener: OwnedFd) {
        use std::os::fd::AsFd;
        loop {
            // Hung up: every process under the filter is gone.
            let ready = crate::sys::poll_readable(&[listener.as_fd()], None);
            if !ready[0] {
                continue;
            }
            let n = match notify::receive(&listener) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::ENOENT) => continue,
                Err(_) => return,
            };
            let answer = self.decide(&listener, &n);
            let r = match answer {
                Answer::Fail(e) => notify::respond(&listener, n.id, e, false),
                Answer::Continue => notify::respond(&listener, n.id, 0, true),
            };
            // ENOENT: the call went away (a signal); nothing to answer.
            let _ = r;
        }
    }

    fn count(&self, d: Denial) {
        if let Ok(mut t) = self.tally.lock() {
            *t.entry(d).or_insert(0) += 1;
        }
    }

    fn decide(&self, listener: &OwnedFd, n: &notify::Notif) -> Answer {
        let d = &n.data;
        let verdict = bpf::run(&self.own, d.arch, d.nr as u32, d.args);
        let (abi, nr) = abi_of(d.arch, d.nr as u32);
        let name = abi
            .and_then(|a| a.table().iter().find(|(_, v)| *v == nr))
            .map_or_else(|| format!("syscall {nr}"), |(n, _)| n.to_string());
        match verdict & 0xffff_0000 {
            RET_ERRNO => {
                let errno = (verdict & 0xffff) as i32;
                let native = abi == crate::policy::bpf::Arch::native().map(|a| a.abi());
                self.count(Denial::Syscall {
                    detail: detail(&name, &d.args),
                    abi: (!native).then(|| abi.map_or("unknown", abi_name).to_string()),
                    name,
                    errno,
                });
                Answer::Fail(errno)
            }
            RET_ALLOW | RET_LOG => {
                if let Some(w) = tp::watched(&name) {
                    self.look(listener, n, w, &name);
                }
                Answer::Continue
            }
            // Kill and trap are never notified; anything else: refused.
            _ => Answer::Fail(libc::EPERM),
        }
    }

    /// A watched call the filter allows: what it will find.
    fn look(&self, listener: &OwnedFd, n: &notify::Notif, w: &tp::Watch, name: &str) {
        let pid = n.pid as i32;
        let args = &n.data.args;
        if w.uses == Use::Connect {
            return self.look_connect(pid, args);
        }
        let Some(raw) = notify::read_c_string(pid, args[w.path as usize], 4096) else {
            return;
        };
        let Ok(path) = String::from_utf8(raw) else {
            return;
        };
        if path.is_empty() {
            return;
        }
        let flags = match (w.flags, w.how) {
            (Some(i), false) => args[i as usize],
            (Some(i), true) => notify::read_bytes(pid, args[i as usize], 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes),
            (None, _) => 0,
        };
        let Some(full) = absolute(
            &self.plan,
            pid,
            &path,
            w.dirfd.map(|i| args[i as usize] as i32),
        ) else {
            return;
        };
        // What was read is the caller's only if its call still waits (its
        // pid was not reused meanwhile).
        if !notify::still_valid(listener, n.id) {
            return;
        }
        let creates = flags & libc::O_CREAT as u64 != 0;
        let writes = w.uses == Use::Change
            || (w.uses == Use::Open
                && flags & (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u64
                    != 0);
        let target = std::path::Path::new(&full);
        let exists = match w.name {
            "lstat" => target.symlink_metadata().is_ok(),
            _ => target.metadata().is_ok() || target.symlink_metadata().is_ok(),
        };
        let parent = target.parent().unwrap_or(target);
        let removes = matches!(w.name, "unlink" | "unlinkat" | "rmdir");
        // Making what exists already fails with EEXIST, whatever the mount.
        let makes =
            matches!(w.name, "mkdir" | "mkdirat") || (creates && flags & libc::O_EXCL as u64 != 0);
        if exists && makes {
            return;
        }
        if !exists && (!(creates || w.uses == Use::Change) || removes || !parent.exists()) {
            self.count(Denial::NotFound {
                call: name.to_string(),
                path: full,
            });
            return;
        }
        if writes
            && read_only(if exists && !removes && w.uses != Use::Change {
                target
            } else {
                parent
            })
        {
            self.count(Denial::ReadOnly {
                call: name.to_string(),
                path: full,
            });
        }
    }

    fn look_connect(&self, pid: i32, args: &[u64; 6]) {
        let len = (args[2] as usize).min(128);
        let Some(sa) = notify::read_bytes(pid, args[1], len) else {
            return;
        };
        if sa.len() < 4 {
            return;
        }
        let family = u16::from_ne_bytes([sa[0], sa[1]]) as i32;
        let port = u16::from_be_bytes([sa[2], sa[3]]);
        let ip: Option<std::net::IpAddr> = match family {
            libc::AF_INET if sa.len() >= 8 => {
                Some(std::net::Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]).into())
            }
            libc::AF_INET6 if sa.len() >= 24 => {
                let b: [u8; 16] = sa[8..24].try_into().unwrap_or([0; 16]);
                Some(std::net::Ipv6Addr::from(b).into())
            }
            libc::AF_UNIX => {
                let path: Vec<u8> = sa[2..].iter().take_while(|b| **b != 0).copied().collect();
                if let (Ok(p), true) = (String::from_utf8(path), sa.get(2) != Some(&0)) {
                    if !std::path::Path::new(&p).exists() {
                        self.count(Denial::NotFound {
                            call: "connect".into(),
                            path: normalize(&p),
                        });
                    }
                }
                None
            }
            _ => None,
        };
        let Some(ip) = ip else { return };
        let address = match ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            v4 => format!("{v4}:{port}"),
        };
        if denials::network_refuses(&self.plan, &ip) {
            self.count(Denial::Connect {
                address,
                why: "network".into(),
            });
        } else if let Some(ports) = &self.plan.security.landlock.connect_tcp {
            if !ports.contains(&port) && crate::sys::landlock::abi() >= 4 {
                self.count(Denial::Connect {
                    address,
                    why: format!(
                        "landlock allows TCP connections to ports {ports:?} only (if a TCP socket)"
                    ),
                });
            }
        }
    }
}

/// The ABI and plain number of a call as the filter saw it.
fn abi_of(arch: u32, nr: u32) -> (Option<Abi>, u32) {
    match arch {
        bpf::AUDIT_ARCH_X86_64 if nr & bpf::X32_SYSCALL_BIT != 0 => {
            (Some(Abi::X32), nr & !bpf::X32_SYSCALL_BIT)
        }
        bpf::AUDIT_ARCH_X86_64 => (Some(Abi::X86_64), nr),
        bpf::AUDIT_ARCH_I386 => (Some(Abi::I386), nr),
        bpf::AUDIT_ARCH_AARCH64 => (Some(Abi::Aarch64), nr),
        _ => (None, nr),
    }
}

fn abi_name(a: Abi) -> &'static str {
    match a {
        Abi::X86_64 => "x86_64",
        Abi::I386 => "i386",
        Abi::X32 => "x32",
        Abi::Aarch64 => "aarch64",
    }
}

/// The argument that explains a refusal of `name`.
fn detail(name: &str, args: &[u64; 6]) -> Option<String> {
    match name {
        "socket" | "socketpair" => Some(crate::policy::seccomp::family_name(args[0] as u32)),
        "ioctl" => Some(format!("{:#x}", args[1] as u32)),
        "clone" | "unshare" => Some(format!("flags {:#x}", args[0] as u32)),
        "personality" => Some(format!("{:#x}", args[0] as u32)),
        _ => None,
    }
}

/// `path` as an absolute path inside, from the caller's working directory
/// or directory descriptor (read in /proc when the sandbox has it).
fn absolute(plan: &Plan, pid: i32, path: &str, dirfd: Option<i32>) -> Option<String> {
    if path.starts_with('/') {
        return Some(normalize(path));
    }
    let base = match dirfd {
        Some(fd) if fd != libc::AT_FDCWD => {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?
        }
        _ => std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_else(|_| {
            plan.process
                .cwd
                .as_ref()
                .map_or("/".into(), |c| c.value.clone().into())
        }),
    };
    Some(normalize(&format!("{}/{path}", base.to_string_lossy())))
}

/// Whether the mount holding `p` is read-only.
fn read_only(p: &std::path::Path) -> bool {
    nix::sys::statvfs::statvfs(p)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

/// The policy the program's filter is compiled from in trace mode.
pub fn traced(p: &Seccomp) -> Seccomp {
    tp::traced_policy(p)
}

/// The tally the supervisor sent the launcher (JSON pairs).
pub fn tally_of(body: &[u8]) -> Tally {
    serde_json::from_slice::<Vec<(Denial, u64)>>(body)
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

/// What the D-Bus proxies logged as refused (prepare.rs has them log into
/// their directories in trace mode), added to `tally`.
pub fn add_bus_log(plan: &Plan, helper_dir: Option<&std::path::Path>, tally: &mut Tally) {
    let Some(dir) = helper_dir else { return };
    for h in &plan.helpers {
        let log = dir.join(&h.op.name).join(super::prepare::PROXY_LOG);
        // The proxy's own file, in our private directory: bounded anyway.
        add_log(&log, 16 << 20, denials::bus_denials, tally);
    }
}

/// Trace mode with egress rules: what the proxy refused, from the
/// instance's network log.
pub fn add_egress_log(plan: &Plan, net_log: Option<&std::path::Path>, tally: &mut Tally) {
    let (Some(_), Some(log)) = (&plan.network.egress, net_log) else {
        return;
    };
    // The proxy stops logging at its limit, after one more line and the
    // line that says so.
    let most = super::egress::LOG_LIMIT + (64 << 10);
    add_log(log, most, denials::egress_denials, tally);
}

/// The refusals `parse` finds in the log at `path` (read up to `most`
/// bytes; a longer or missing log adds nothing), added to `tally`.
fn add_log(path: &std::path::Path, most: u64, parse: fn(&str) -> Vec<Denial>, tally: &mut Tally) {
    let Ok(text) = crate::script::host::read_bounded(path, most) else {
        return;
    };
    for d in parse(&text) {
        *tally.entry(d).or_insert(0) += 1;
    }
}
