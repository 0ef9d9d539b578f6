//! `moksha ps`, `logs`, `stop` and `enter`: managing the caller's own
//! instances through the state directory (see `state`). A process is
//! signalled or entered only through a pidfd opened while its instance lock
//! is held and checked against the record's start time, owner and
//! namespaces.

use crate::launch;
use crate::state::{self, Record, Status};
use serde::Serialize;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// The exit code of a command that may fail with a message.
fn finish(result: Result<i32, String>) -> i32 {
    result.unwrap_or_else(|e| {
        eprintln!("moksha: {e}");
        1
    })
}

#[derive(Serialize)]
struct Row {
    name: String,
    profile: String,
    pid: i32,
    uptime_seconds: u64,
    status: String,
    exit_code: Option<i32>,
    memory_bytes: u64,
    detached: bool,
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1u64 << 20) as f64),
        b => format!("{}K", b >> 10),
    }
}

/// `moksha ps`: running instances, and those that ended since the last
/// look (shown once, then cleaned). Unusable records are reported, ignored.
pub fn ps(json: bool) -> i32 {
    finish(state::state_dir().map(|dir| ps_in(&dir, json)))
}

fn ps_in(dir: &Path, json: bool) -> i32 {
    let now = state::now();
    let mut rows = Vec::new();
    for name in state::names(dir) {
        let row = |r: &Record, status: String, code: Option<i32>, memory: u64| Row {
            name: name.clone(),
            profile: r.profile.clone(),
            pid: r.supervisor_pid,
            uptime_seconds: now.saturating_sub(r.started_at),
            status,
            exit_code: code,
            memory_bytes: memory,
            detached: r.detached,
        };
        match state::inspect(dir, &name) {
            Status::Running(r) => rows.push(row(
                &r,
                "running".into(),
                None,
                state::memory(r.supervisor_pid),
            )),
            Status::Exited(r, code) => {
                if let Some(r) = r {
                    rows.push(row(&r, format!("exited ({code})"), Some(code), 0));
                }
                state::clean(dir, &name);
            }
            Status::Dead(r) => {
                match r {
                    Some(r) => rows.push(row(&r, "dead (killed)".into(), None, 0)),
                    None => eprintln!("moksha: removing the unusable record of {name} (nothing runs under that name)"),
                }
                state::clean(dir, &name);
            }
            Status::Invalid(reason) => eprintln!("moksha: ignoring instance {name}: {reason}"),
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into())
        );
        return 0;
    }
    println!(
        "{:<24} {:<28} {:>8} {:>8} {:>8}  STATUS",
        "NAME", "PROFILE", "PID", "UPTIME", "MEMORY"
    );
    for r in rows {
        println!(
            "{:<24} {:<28} {:>8} {:>8} {:>8}  {}",
            r.name,
            r.profile,
            r.pid,
            human_duration(r.uptime_seconds),
            if r.memory_bytes > 0 {
                human_bytes(r.memory_bytes)
            } else {
                "-".into()
            },
            r.status
        );
    }
    0
}

/// Finds a running instance, or says why it cannot be used.
fn running(dir: &Path, name: &str) -> Result<Record, String> {
    state::check_name(name)?;
    if !state::names(dir).iter().any(|n| n == name) {
        return Err(format!("no instance named {name:?} (see `moksha ps`)"));
    }
    match state::inspect(dir, name) {
        Status::Running(r) => Ok(r),
        Status::Exited(_, code) => Err(format!(
            "instance {name:?} is not running: it exited with status {code}"
        )),
        Status::Dead(_) => Err(format!("instance {name:?} is not running: it was killed")),
        Status::Invalid(reason) => Err(format!("instance {name:?} cannot be used: {reason}")),
    }
}

fn copy_new(file: &mut Option<std::fs::File>, out: &mut dyn Write) {
    if let Some(f) = file {
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_ok() {
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
    }
}

/// `moksha logs NAME [-f]`: the program's stdout and stderr, from the log
/// files in the state dir (never from a path a record names).
pub fn logs(name: &str, follow: bool) -> i32 {
    finish(logs_of(name, follow))
}

fn logs_of(name: &str, follow: bool) -> Result<i32, String> {
    state::check_name(name)?;
    let dir = state::state_dir()?;
    let (out_path, err_path) = state::log_paths(&dir, name);
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nofollow()
            .open(p)
            .ok()
    };
    let (mut out, mut err) = (open(&out_path), open(&err_path));
    if out.is_none() && err.is_none() {
        let why = match state::inspect(&dir, name) {
            Status::Running(r) if !r.detached => {
                "it runs in the foreground: its output goes to its terminal".to_string()
            }
            _ if !state::names(&dir).iter().any(|n| n == name) => {
                "no such instance (see `moksha ps`)".to_string()
            }
            _ => "it has no logs".to_string(),
        };
        return Err(format!("no logs for {name:?}: {why}"));
    }
    loop {
        copy_new(&mut out, &mut std::io::stdout());
        copy_new(&mut err, &mut std::io::stderr());
        if !follow || !matches!(state::inspect(&dir, name), Status::Running(_)) {
            // One last read: output written just before the end.
            copy_new(&mut out, &mut std::io::stdout());
            copy_new(&mut err, &mut std::io::stderr());
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
    }
}

/// Waits until the process behind a pidfd has exited, up to `limit`.
fn wait_exit(pidfd: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n > 0 {
            return true;
        }
        if left.is_zero() || (n < 0 && nix::errno::Errno::last() != nix::errno::Errno::EINTR) {
            return false;
        }
    }
}

/// `moksha stop NAME`: SIGTERM to the program (through the supervisor,
/// which forwards it), then SIGKILL to the supervisor — PID 1 of the
/// sandbox, so the kernel kills everything in it — after the timeout.
pub fn stop(name: &str, timeout: u64) -> i32 {
    finish(stop_in(name, timeout))
}

fn stop_in(name: &str, timeout: u64) -> Result<i32, String> {
    let dir = state::state_dir()?;
    let record = running(&dir, name).inspect_err(|_| {
        // A dead instance's files are cleaned; invalid ones are left alone.
        if matches!(
            state::inspect(&dir, name),
            Status::Exited(..) | Status::Dead(_)
        ) {
            state::clean(&dir, name);
        }
    })?;
    let sup = state::open_supervisor(&record)?;
    let shown = format!("{name} (pid {})", sup.pid);
    if let Err(e) = crate::sys::pidfd_send_signal(&sup.pidfd, libc::SIGTERM, &shown) {
        eprintln!("moksha: {e}");
    }
    let mut killed = false;
    if !wait_exit(&sup.pidfd, Duration::from_secs(timeout)) {
        killed = true;
        if let Err(e) = crate::sys::pidfd_send_signal(&sup.pidfd, libc::SIGKILL, &shown) {
            eprintln!("moksha: {e}");
        }
        if !wait_exit(&sup.pidfd, Duration::from_secs(10)) {
            return Err(format!("{shown} did not end after SIGKILL"));
        }
    }
    match state::inspect(&dir, name) {
        Status::Exited(_, code) => println!("{name}: exited with status {code}"),
        _ if killed => println!("{name}: killed after {timeout}s"),
        _ => println!("{name}: stopped"),
    }
    state::clean(&dir, name);
    Ok(0)
}

/// `moksha enter NAME [-- CMD]`: a command inside a running instance, with
/// the instance's own policy.
pub fn enter(name: &str, command: Vec<String>) -> i32 {
    finish(enter_in(name, command))
}

fn enter_in(name: &str, command: Vec<String>) -> Result<i32, String> {
    let dir = state::state_dir()?;
    let record = running(&dir, name)?;
    let program =
        state::open_program(&record).map_err(|e| format!("cannot enter {name:?}: {e}"))?;
    let argv = if command.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        command
    };
    Ok(launch::enter(&record.plan, &program.pidfd, argv))
}
