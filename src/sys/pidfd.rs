//! Other processes, through pidfds: a handle that keeps naming one
//! process even after its pid is reused.

use super::{check, Result, SysError};
use crate::plan::Namespace;
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A handle on another process that keeps naming it after it exits, even
/// when its pid is reused: a pidfd (Linux 5.3), or on older kernels the
/// process's /proc directory, whose descriptor answers ESRCH once the
/// process is gone, whatever takes the pid next.
pub struct Process {
    fd: OwnedFd,
    pid: i32,
    is_pidfd: bool,
}

impl Process {
    /// Opens a handle on `pid`. The caller checks afterwards that it is the
    /// process it means (its start time): from then on, the handle pins it.
    pub fn open(pid: i32) -> Result<Process> {
        // SAFETY: pidfd_open with integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
            return Ok(Process {
                fd,
                pid,
                is_pidfd: true,
            });
        }
        if Errno::last() != Errno::ENOSYS {
            return Err(SysError::new(format!("pidfd_open({pid})"), Errno::last()));
        }
        Process::through_proc(pid)
    }

    /// A handle on `pid` through its /proc directory (no pidfd_open).
    fn through_proc(pid: i32) -> Result<Process> {
        Ok(Process {
            fd: Process::open_dir(pid)?,
            pid,
            is_pidfd: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd, where the kernel has them (pidfd_getfd needs one).
    pub fn pidfd(&self) -> Option<&OwnedFd> {
        self.is_pidfd.then_some(&self.fd)
    }

    /// Sends `sig`. Without a pidfd this is kill(2) once the /proc handle
    /// shows the process still there: a process reaped and its pid reused
    /// in between would get the signal, the window every sandbox has on
    /// such kernels (moksha signals its own children and supervisors, whose
    /// pids stay theirs until their parent reaps them).
    pub fn signal(&self, sig: libc::c_int, shown: &str) -> Result<()> {
        let call = || format!("pidfd_send_signal({shown}, {sig})");
        if !self.is_pidfd {
            if self.has_exited() {
                return Err(SysError::new(call(), Errno::ESRCH));
            }
            // SAFETY: kill with integer arguments.
            return check(&call(), unsafe { libc::kill(self.pid, sig) }).map(drop);
        }
        // SAFETY: valid pidfd, no siginfo.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if ret < 0 {
            return Err(SysError::new(call(), Errno::last()));
        }
        Ok(())
    }

    /// Whether the process has exited (a zombie has), as a pidfd tells it:
    /// every thread, not only the first (which may end before the others).
    pub fn has_exited(&self) -> bool {
        if self.is_pidfd {
            return poll_readable(&[self.fd.as_fd()], Some(Duration::ZERO))[0];
        }
        if !ended(&self.fd, b"stat") {
            return false;
        }
        let Ok(tasks) = super::fs::openat(&self.fd, b"task", libc::O_RDONLY | libc::O_DIRECTORY)
        else {
            return true;
        };
        let Ok(mut list) = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(tasks))
        else {
            return true;
        };
        let names: Vec<Vec<u8>> = list
            .iter()
            .flatten()
            .map(|e| e.file_name().to_bytes().to_vec())
            .filter(|n| n.iter().all(u8::is_ascii_digit) && !n.is_empty())
            .collect();
        names.iter().all(|tid| {
            let path = [&b"task/"[..], tid, b"/stat"].concat();
            ended(&self.fd, &path)
        })
    }

    /// Waits until the process has exited, at most `limit`; says whether it has.
    pub fn wait(&self, limit: Duration) -> bool {
        self.wait_with(None, limit).1
    }

    /// Waits until `other` is readable or hung up, or the process has
    /// exited, at most `limit`; says which. Without a pidfd to poll, the
    /// process is looked at every few milliseconds.
    pub fn wait_with(&self, other: Option<BorrowedFd>, limit: Duration) -> (bool, bool) {
        if self.is_pidfd {
            let fds: Vec<BorrowedFd> = other.into_iter().chain([self.fd.as_fd()]).collect();
            let seen = poll_readable(&fds, Some(limit));
            return (other.is_some() && seen[0], seen[seen.len() - 1]);
        }
        const LOOK_EVERY: Duration = Duration::from_millis(5);
        let deadline = Instant::now() + limit;
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(LOOK_EVERY);
            let ready = match other {
                Some(fd) => poll_readable(&[fd], Some(slice))[0],
                None => {
                    std::thread::sleep(slice);
                    false
                }
            };
            let exited = self.has_exited();
            if ready || exited || Instant::now() >= deadline {
                return (ready, exited);
            }
        }
    }

    /// Joins the process's `namespaces`: all at once through a pidfd
    /// (Linux 5.8); otherwise one at a time through its /proc/PID/ns files,
    /// the user namespace first (it gives the capabilities the others need).
    pub fn join(&self, namespaces: &[Namespace]) -> Result<()> {
        let shown = Namespace::flag_names(namespaces);
        if self.is_pidfd {
            // SAFETY: valid pidfd and namespace flags.
            let ret = unsafe { libc::setns(self.fd.as_raw_fd(), Namespace::flags(namespaces)) };
            if ret == 0 {
                return Ok(());
            }
            if Errno::last() != Errno::EINVAL {
                return Err(SysError::new(
                    format!("setns(pidfd, {shown})"),
                    Errno::last(),
                ));
            }
            // Linux 5.3 to 5.7: pidfds, but setns does not take them. The
            // /proc directory opened while the pidfd shows the process alive
            // is that process's.
            let dir = Process::open_dir(self.pid)?;
            if self.has_exited() {
                return Err(SysError::new(
                    format!("setns(pidfd, {shown})"),
                    Errno::ESRCH,
                ));
            }
            return join_through(&dir, namespaces);
        }
        join_through(&self.fd, namespaces)
    }

    fn open_dir(pid: i32) -> Result<OwnedFd> {
        super::fs::open_cloexec(
            &format!("/proc/{pid}"),
            libc::O_RDONLY | libc::O_DIRECTORY,
            &format!("open(\"/proc/{pid}\")"),
        )
    }
}

impl AsFd for Process {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether the /proc stat file at `path` below `dir` is gone or shows a
/// zombie or dead task ("pid (comm) S ...": the state follows the last
/// closing parenthesis).
fn ended(dir: &OwnedFd, path: &[u8]) -> bool {
    let Ok(stat) = super::fs::openat(dir, path, libc::O_RDONLY) else {
        return true;
    };
    let mut buf = [0u8; 512];
    let n = nix::unistd::read(stat.as_raw_fd(), &mut buf).unwrap_or(0);
    let ended = match super::stat_fields(&buf[..n]) {
        Some(mut fields) => matches!(fields.next(), Some([b'Z' | b'X', ..])),
        None => true,
    };
    ended
}

/// setns into each of `namespaces` of the process whose /proc directory is
/// `dir`: every file opened first (joining the mount namespace changes what
/// /proc shows), the user namespace joined first.
fn join_through(dir: &OwnedFd, namespaces: &[Namespace]) -> Result<()> {
    let mut ordered: Vec<Namespace> = namespaces.to_vec();
    ordered.sort_by_key(|ns| *ns != Namespace::User);
    let mut files = Vec::new();
    for ns in &ordered {
        let name = format!("ns/{}", ns.proc_name());
        // A magic link: opened as the kernel follows it, into the process.
        let fd = super::fs::openat(dir, name.as_bytes(), libc::O_RDONLY)
            .map_err(|e| SysError::new(format!("open(/proc/PID/{name})"), e))?;
        files.push((ns, fd));
    }
    for (ns, fd) in files {
        // SAFETY: a valid namespace file descriptor and its own type.
        check(&format!("setns(/proc/PID/ns/{})", ns.proc_name()), unsafe {
            libc::setns(fd.as_raw_fd(), ns.clone_flag())
        })?;
    }
    Ok(())
}

/// Waits until one of `fds` is readable or hung up (a pidfd: its process
/// has exited), at most `limit` (`None`: without limit); says which are.
/// An interrupted wait goes on for the time left.
pub fn poll_readable(fds: &[BorrowedFd], limit: Option<Duration>) -> Vec<bool> {
    let deadline = limit.map(|l| Instant::now() + l);
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Rounded up: a wait of 0.4 ms must not become a busy loop.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: `pfds` is a valid array of pollfds for the call's duration.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n >= 0 || Errno::last() != Errno::EINTR {
            return pfds.iter().map(|p| n > 0 && p.revents != 0).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The /proc handle of kernels before 5.3 sees a process end, signals
    /// it, and answers ESRCH after it is reaped, as a pidfd does.
    #[test]
    fn a_proc_handle_follows_one_process() {
        for through_proc in [false, true] {
            let mut child = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let p = if through_proc {
                Process::through_proc(pid).unwrap()
            } else {
                Process::open(pid).unwrap()
            };
            assert_eq!(p.pidfd().is_some(), !through_proc);
            assert!(!p.has_exited());
            assert!(!p.wait(Duration::from_millis(20)));
            p.signal(libc::SIGTERM, "sleep").unwrap();
            assert!(p.wait(Duration::from_secs(5)), "a zombie has exited");
            child.wait().unwrap();
            assert!(p.has_exited());
            let e = p.signal(libc::SIGTERM, "sleep").unwrap_err();
            assert_eq!(e.errno, Errno::ESRCH);
        }
    }

    /// A process whose first thread ended while another runs has not
    /// exited, for the /proc handle as for a pidfd (found in review).
    #[test]
    fn a_process_with_a_thread_left_has_not_exited() {
        let script = "import ctypes, threading, time\n\
                      threading.Thread(target=time.sleep, args=(30,)).start()\n\
                      ctypes.CDLL(None).pthread_exit(None)";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let p = Process::through_proc(pid).unwrap();
        let leader_gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|s| s.contains("State:\tZ"))
        };
        let t = std::time::Instant::now();
        while !leader_gone() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "python3 did not start its thread"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let pidfd = Process::open(pid).unwrap();
        assert!(!pidfd.has_exited(), "a pidfd says it runs");
        assert!(!p.has_exited(), "so does the /proc handle");
        p.signal(libc::SIGKILL, "python3").unwrap();
        assert!(p.wait(Duration::from_secs(5)));
        child.wait().unwrap();
    }
}
