//! `moksha ps`, `logs`, `stop`, `enter` and `rm`: managing the caller's own
//! instances through the state directory (see `state`). A process is
//! signalled or entered only through a handle (`sys::Process`) opened while its instance lock
//! is held and checked against the record's start time, owner and
//! namespaces.

use crate::launch;
use crate::state::{self, Record, Status};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// The exit code of a command that may fail with a message.
fn finish(result: Result<i32, String>) -> i32 {
    result.unwrap_or_else(|e| {
        eprintln!("moksha: {}", crate::text::shown(e));
        1
    })
}

/// One instance as `ps` shows it.
#[derive(Serialize)]
struct Row {
    name: String,
    /// The profile as given (a path, or `<profiles>/NAME.rhai`).
    profile: String,
    /// The sandbox's own name (`sandbox("...")` in the profile).
    sandbox: String,
    /// The supervisor's host pid while it runs; `None` once it ended (the
    /// number may belong to another process by then).
    pid: Option<i32>,
    /// "running", "exited" or "killed".
    status: &'static str,
    exit_code: Option<i32>,
    started_at: u64,
    ended_at: Option<u64>,
    /// How long it has run, or ran (unknown for a killed instance).
    uptime_seconds: Option<u64>,
    memory_bytes: u64,
    detached: bool,
}

impl Row {
    fn new(name: &str, r: &Record, now: u64, ending: Option<state::Ending>) -> Row {
        let (status, until) = match ending {
            None => ("running", Some(now)),
            Some(e) if e.code.is_some() => ("exited", e.at),
            Some(_) => ("killed", None),
        };
        Row {
            name: name.to_string(),
            profile: r.profile.clone(),
            sandbox: r.plan.name.clone(),
            pid: ending.is_none().then_some(r.supervisor_pid),
            status,
            exit_code: ending.and_then(|e| e.code),
            started_at: r.started_at,
            ended_at: ending.and_then(|e| e.at),
            uptime_seconds: until.map(|t| t.saturating_sub(r.started_at)),
            memory_bytes: if ending.is_none() {
                state::memory(r.supervisor_pid)
            } else {
                0
            },
            detached: r.detached,
        }
    }

    /// The STATUS column: "running", "exited (3) 5m ago", "killed".
    fn status_text(&self, now: u64) -> String {
        match (self.exit_code, self.ended_at) {
            (Some(code), Some(at)) => format!(
                "exited ({code}) {} ago",
                human_duration(now.saturating_sub(at))
            ),
            (Some(code), None) => format!("exited ({code})"),
            _ => self.status.to_string(),
        }
    }
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1u64 << 20) as f64),
        b => format!("{}K", b >> 10),
    }
}

/// The profile's short name for the table: `svc` for `/srv/x/svc.rhai`
/// and for the built-in `<profiles>/svc.rhai`.
fn short_profile(profile: &str) -> String {
    Path::new(profile)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| profile.to_string())
}

/// How `moksha ps` shows the instances.
#[derive(Debug, Clone, Copy, Default)]
pub struct PsOptions {
    pub json: bool,
    /// The long table: start and end times, the profile's full path.
    pub long: bool,
    /// Forget the ended instances once listed.
    pub prune: bool,
}

/// `moksha ps`: running instances and those that ended (kept until
/// `moksha rm` or `ps --prune`). Unusable records are reported, ignored.
pub fn ps(opts: PsOptions) -> i32 {
    finish(state::state_dir().map(|dir| ps_in(&dir, opts)))
}

fn ps_in(dir: &Path, opts: PsOptions) -> i32 {
    let now = state::now();
    let mut rows = Vec::new();
    for name in state::names(dir) {
        match state::inspect(dir, &name) {
            Status::Running(r) => rows.push(Row::new(&name, &r, now, None)),
            Status::Ended(Some(r), ending) => {
                rows.push(Row::new(&name, &r, now, Some(ending)));
                if opts.prune {
                    state::clean(dir, &name);
                }
            }
            Status::Ended(None, _) => {
                eprintln!(
                    "moksha: removing the unusable record of {name} (nothing runs under that name)"
                );
                state::clean(dir, &name);
            }
            Status::Invalid(reason) => eprintln!(
                "moksha: ignoring instance {}: {}",
                crate::text::line(&name),
                crate::text::shown(reason)
            ),
            // Not listed until it has a record.
            Status::Starting => {}
        }
    }
    if opts.json {
        println!(
            "{}",
            crate::text::json(&serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into()))
        );
        return 0;
    }
    let dash = || "-".to_string();
    let cells = |r: &Row| {
        let pid = r.pid.map_or_else(dash, |p| p.to_string());
        let uptime = r.uptime_seconds.map_or_else(dash, human_duration);
        let memory = match r.memory_bytes {
            0 => dash(),
            b => human_bytes(b),
        };
        (pid, uptime, memory, r.status_text(now))
    };
    let mut table = Vec::new();
    if opts.long {
        table.push(
            [
                "NAME", "SANDBOX", "PID", "STARTED", "UPTIME", "MEMORY", "STATUS", "PROFILE",
            ]
            .map(String::from)
            .to_vec(),
        );
        for r in &rows {
            let (pid, uptime, memory, status) = cells(r);
            let started = format!("{} ago", human_duration(now.saturating_sub(r.started_at)));
            table.push(vec![
                r.name.clone(),
                r.sandbox.clone(),
                pid,
                started,
                uptime,
                memory,
                status,
                r.profile.clone(),
            ]);
        }
        crate::table::print(&table, &[2, 3, 4, 5]);
    } else {
        table.push(
            ["NAME", "PROFILE", "PID", "UPTIME", "MEMORY", "STATUS"]
                .map(String::from)
                .to_vec(),
        );
        for r in &rows {
            let (pid, uptime, memory, status) = cells(r);
            table.push(vec![
                r.name.clone(),
                short_profile(&r.profile),
                pid,
                uptime,
                memory,
                status,
            ]);
        }
        crate::table::print(&table, &[2, 3, 4]);
    }
    // Changes kept by overlays, until `moksha commit` or `discard`.
    let pending = crate::changes::commands::pending();
    if !pending.is_empty() {
        println!();
        let mut table = vec![["CHANGES", "DIRECTORY", "COUNT", "STATE"]
            .map(String::from)
            .to_vec()];
        table.extend(pending);
        crate::table::print(&table, &[2]);
    }
    0
}

/// Whether an instance of that name is on disk.
fn known(dir: &Path, name: &str) -> Result<(), String> {
    state::check_name(name)?;
    if state::names(dir).iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(format!("no instance named {name:?} (see `moksha ps`)"))
    }
}

/// How an ended instance ended, for messages.
fn ended_text(ending: state::Ending) -> String {
    match ending.code {
        Some(code) => format!("it exited with status {code}"),
        None => "it was killed".to_string(),
    }
}

/// Finds a running instance, or says why it cannot be used.
fn running(dir: &Path, name: &str) -> Result<Record, String> {
    known(dir, name)?;
    match state::inspect(dir, name) {
        Status::Running(r) => Ok(r),
        Status::Ended(_, ending) => Err(format!(
            "instance {name:?} is not running: {} (`moksha logs {name}` shows its output, \
             `moksha rm {name}` forgets it)",
            ended_text(ending)
        )),
        Status::Invalid(reason) => Err(format!("instance {name:?} cannot be used: {reason}")),
        Status::Starting => Err(format!(
            "instance {name:?} is still starting: try again in a moment"
        )),
    }
}

/// `moksha rm NAME...`: forgets ended instances (record, exit code, logs).
/// A running instance is refused: stop it first.
pub fn rm(names: &[String]) -> i32 {
    let dir = match state::state_dir() {
        Ok(d) => d,
        Err(e) => return finish(Err(e)),
    };
    let mut code = 0;
    for name in names {
        let removed = known(&dir, name).and_then(|()| match state::inspect(&dir, name) {
            Status::Ended(..) if state::clean(&dir, name) => Ok(()),
            Status::Ended(..) => Err(format!(
                "instance {name:?} was started again meanwhile; not removed"
            )),
            Status::Running(_) => Err(format!(
                "instance {name:?} is running; stop it first with `moksha stop {name}`"
            )),
            Status::Invalid(reason) => Err(format!(
                "instance {name:?} is not removed: its lock is held but {reason}"
            )),
            Status::Starting => Err(format!(
                "instance {name:?} is starting; wait a moment, or end the moksha that runs it"
            )),
        });
        code = code.max(finish(removed.map(|()| 0)));
    }
    code
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

/// `moksha logs NAME [-f] [--net]`: the program's stdout and stderr, or
/// with `--net` its egress proxy's decisions, from the log files in the
/// state dir (never from a path a record names).
pub fn logs(name: &str, follow: bool, net: bool) -> i32 {
    finish(logs_of(name, follow, net))
}

fn logs_of(name: &str, follow: bool, net: bool) -> Result<i32, String> {
    state::check_name(name)?;
    let dir = state::state_dir()?;
    if net {
        return net_log(&dir, name, follow);
    }
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
        if !follow || !followed(&dir, name) {
            // One last read: output written just before the end.
            copy_new(&mut out, &mut std::io::stdout());
            copy_new(&mut err, &mut std::io::stderr());
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `moksha logs NAME --net`: one line per decision of the egress proxy.
fn net_log(dir: &Path, name: &str, follow: bool) -> Result<i32, String> {
    let path = state::net_log_path(dir, name);
    let mut log = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nofollow()
        .open(&path)
        .ok();
    if log.is_none() {
        let why = match state::inspect(dir, name) {
            Status::Running(r) if r.plan.network.egress.is_none() => {
                "its profile has no egress rules (s.egress)".to_string()
            }
            _ if !state::names(dir).iter().any(|n| n == name) => {
                "no such instance (see `moksha ps`)".to_string()
            }
            _ => "it has no network log".to_string(),
        };
        return Err(format!("no network log for {name:?}: {why}"));
    }
    loop {
        copy_new(&mut log, &mut std::io::stdout());
        if !follow || !followed(dir, name) {
            copy_new(&mut log, &mut std::io::stdout());
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `logs -f` goes on following: the instance runs, or its lock is
/// held without a record (a foreground sandbox nobody named is recorded
/// after its first 20 ms, and its egress proxy logs from the first
/// connection on; or its record could not be written at all).
fn followed(dir: &Path, name: &str) -> bool {
    matches!(
        state::inspect(dir, name),
        Status::Running(_) | Status::Starting
    )
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

/// `moksha stop NAME`: SIGTERM to the program (through the supervisor,
/// which forwards it), then SIGKILL to the supervisor — PID 1 of the
/// sandbox, so the kernel kills everything in it — after the timeout.
pub fn stop(name: &str, timeout: u64) -> i32 {
    finish(stop_in(name, timeout))
}

fn stop_in(name: &str, timeout: u64) -> Result<i32, String> {
    let dir = state::state_dir()?;
    let record = running(&dir, name)?;
    let sup = state::open_supervisor(&record)?;
    let shown = format!("{name} (pid {})", sup.pid());
    if let Err(e) = sup.signal(libc::SIGTERM, &shown) {
        eprintln!("moksha: {e}");
    }
    let mut killed = false;
    if !sup.wait(Duration::from_secs(timeout)) {
        killed = true;
        if let Err(e) = sup.signal(libc::SIGKILL, &shown) {
            eprintln!("moksha: {e}");
        }
        if !sup.wait(Duration::from_secs(10)) {
            return Err(format!("{shown} did not end after SIGKILL"));
        }
    }
    // The instance stays listed as ended, with its logs, until `moksha rm`.
    match state::inspect(&dir, name) {
        Status::Ended(
            _,
            state::Ending {
                code: Some(code), ..
            },
        ) => {
            println!("{name}: exited with status {code}")
        }
        _ if killed => println!("{name}: killed after {timeout}s"),
        _ => println!("{name}: stopped"),
    }
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
    Ok(launch::enter(&record.plan, &program, argv))
}
