//! The program's last steps inside the finished sandbox: terminal, working
//! directory, environment, resource limits, file descriptors, capabilities,
//! no_new_privs, landlock, seccomp, exec.

use super::report::{self, Message};
use super::{confine, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP};
use crate::plan::{EnvOp, Plan};
use crate::sys;
use nix::errno::Errno;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::OwnedFd;

/// The path searched for a program name without '/' when the sandbox's
/// environment has no PATH.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The directories a program name without '/' is looked for in: the
/// environment's PATH, else DEFAULT_PATH.
pub fn search_path(env: &BTreeMap<String, String>) -> impl Iterator<Item = &str> {
    env.get("PATH")
        .map_or(DEFAULT_PATH, String::as_str)
        .split(':')
        .filter(|d| !d.is_empty())
}

/// The program's environment: empty or the launcher's, then the plan's
/// operations in order.
pub fn environment(plan: &Plan, launcher: &[(String, String)]) -> BTreeMap<String, String> {
    let env = &plan.process.env;
    let mut out: BTreeMap<String, String> = if env.clear {
        BTreeMap::new()
    } else {
        launcher.iter().cloned().collect()
    };
    for op in &env.ops {
        match op {
            EnvOp::Set { name, value } => {
                out.insert(name.clone(), value.clone());
            }
            EnvOp::Unset { name } => {
                out.remove(name);
            }
            EnvOp::Keep { name } => {
                if let Some((_, v)) = launcher.iter().find(|(k, _)| k == name) {
                    out.insert(name.clone(), v.clone());
                }
            }
        }
    }
    out
}

fn fail(report: &OwnedFd, code: i32, msg: String) -> ! {
    report::send(report, &Message::Error(code, msg));
    sys::exit_now(code)
}

/// Becomes the program. Never returns: exec or exit with the reason reported.
pub fn start(
    plan: &Plan,
    launcher_env: &[(String, String)],
    old_umask: libc::mode_t,
    report: &OwnedFd,
    handoff: Option<&super::tracer::Handoff>,
) -> ! {
    let exec = Exec::of(plan, launcher_env, report).unwrap_or_else(|e| fail(report, EXIT_SETUP, e));
    start_with(
        plan,
        &exec,
        old_umask,
        report,
        handoff,
        None,
        Credentials::Switch,
    )
}

/// What exec needs: the environment, the arguments, the paths to try, and
/// the descriptors to keep. Built before the program's process exists
/// when that process shares the supervisor's memory: what it allocated
/// there would stay allocated in the supervisor for the sandbox's life.
pub struct Exec {
    envp: Vec<CString>,
    argv: Vec<CString>,
    program: String,
    candidates: Vec<String>,
    keep: Vec<std::os::fd::RawFd>,
}

impl Exec {
    pub fn of(
        plan: &Plan,
        launcher_env: &[(String, String)],
        report: &OwnedFd,
    ) -> Result<Exec, String> {
        let env = environment(plan, launcher_env);
        // Bytes that are not UTF-8 (escaped in the text, crate::arg) go back.
        let envp: Vec<CString> = env
            .iter()
            .filter_map(|(k, v)| CString::new(crate::arg::to_bytes(&format!("{k}={v}"))).ok())
            .collect();
        let exec = plan.process.exec.as_ref().ok_or("no command")?;
        // Arguments that were not UTF-8 get their own bytes back (crate::arg).
        let argv: Vec<CString> = exec
            .op
            .argv
            .iter()
            .filter_map(|a| match plan.process.escaped_bytes {
                true => CString::new(crate::arg::to_bytes(a)).ok(),
                false => CString::new(a.as_str()).ok(),
            })
            .collect();
        let program = exec.op.argv[0].clone();
        let candidates: Vec<String> = if program.contains('/') {
            vec![program.clone()]
        } else {
            search_path(&env)
                .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
                .collect()
        };
        // Nothing of the launcher's stays open but 0, 1, 2, the descriptors
        // the plan passes, and the report pipe (close-on-exec).
        let mut keep = plan.process.pass_fds.clone();
        keep.push(std::os::fd::AsRawFd::as_raw_fd(report));
        Ok(Exec {
            envp,
            argv,
            program,
            candidates,
            keep,
        })
    }
}

/// Who gives the program its identity and capabilities.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Credentials {
    /// The program's own setup: the ids, the kept capabilities.
    Switch,
    /// Its parent did, before starting it (it keeps no capabilities): the
    /// setup checks that it holds none.
    Inherited,
}

/// The program's working directory inside.
fn working_dir(plan: &Plan) -> &str {
    plan.process.cwd.as_ref().map_or("/", |c| c.value.as_str())
}

/// Goes to the program's working directory, or says why it cannot.
pub fn enter_working_dir(plan: &Plan) -> Result<(), String> {
    let cwd = working_dir(plan);
    sys::chdir(cwd).map_err(|e| {
        let at = plan
            .process
            .cwd
            .as_ref()
            .map(|c| format!("{}: ", c.at))
            .unwrap_or_default();
        format!("{at}working directory {cwd} is not usable inside the sandbox: {e}")
    })
}

/// `start`, installing `filter` (the plan's seccomp policy, compiled when
/// it was validated) rather than compiling the policy again.
pub fn start_with(
    plan: &Plan,
    exec_as: &Exec,
    old_umask: libc::mode_t,
    report: &OwnedFd,
    handoff: Option<&super::tracer::Handoff>,
    filter: Option<&[crate::policy::bpf::Insn]>,
    creds: Credentials,
) -> ! {
    let setup = |r: sys::Result<()>| {
        if let Err(e) = r {
            fail(report, EXIT_SETUP, e.to_string())
        }
    };
    let sup = &plan.supervision;
    // Until exec, this process is a copy of the launcher (or of `moksha
    // enter`): its memory and /proc/PID/environ hold the caller's whole
    // environment, and it is already in the sandbox's PID namespace, where
    // the sandbox's processes run with the same uid. Non-dumpable, nobody
    // inside can read it; exec makes the new program dumpable again.
    // (Both callers, the supervisor and `moksha enter`, are non-dumpable
    // already and the child inherits it; said again so that this start
    // holds on its own.)
    setup(sys::set_dumpable(false));
    if plan.supervision.die_with_parent {
        setup(sys::set_pdeathsig(libc::SIGKILL));
    }
    // A process group of its own, which the supervisor stops and continues
    // as a whole (job control: supervisor.rs, Relay). Sharing the terminal,
    // it is the terminal's foreground group, so Ctrl-C, Ctrl-Z and window
    // changes reach the program and not moksha.
    setup(sys::setpgid_self());
    if !sup.new_session {
        for fd in 0..3 {
            sys::take_terminal(fd);
        }
    }
    let cwd = working_dir(plan);
    // (Inherited: the parent went there, with the privilege it had.)
    if creds == Credentials::Switch {
        if let Err(e) = enter_working_dir(plan) {
            fail(report, EXIT_SETUP, e);
        }
    }
    let Some(exec) = &plan.process.exec else {
        fail(report, EXIT_SETUP, "no command".into())
    };
    let Exec {
        envp,
        argv,
        program,
        candidates,
        keep,
    } = exec_as;

    for limit in &plan.security.rlimits {
        if let Err(e) = sys::limits::setrlimit(&limit.op) {
            fail(report, EXIT_SETUP, format!("{}: {e}", limit.at));
        }
    }

    setup(sys::close_fds_except(keep));

    match creds {
        Credentials::Switch => {
            // Run by root as nobody: the program's own ids now (setup
            // needed root).
            if let Some((uid, gid)) = plan.ids.nobody_inside() {
                setup(sys::become_ids(uid, gid));
            }
            let kept: Vec<u32> = plan
                .security
                .keep_caps
                .iter()
                .filter_map(|c| sys::caps::by_name(&c.value))
                .collect();
            setup(sys::caps::restrict_to(&kept));
        }
        Credentials::Inherited => {
            if sys::caps::permitted() != 0 {
                fail(
                    report,
                    EXIT_SETUP,
                    "the program's parent kept capabilities it should have dropped".into(),
                );
            }
        }
    }
    setup(sys::set_no_new_privs());
    // Credentials changed: set the parent-death signal again to be sure.
    if plan.supervision.die_with_parent {
        setup(sys::set_pdeathsig(libc::SIGKILL));
    }
    super::restore_signals();
    sys::umask(old_umask);
    // Landlock, then the seccomp filter (it always refuses TIOCSTI and
    // TIOCLINUX); nothing but exec runs after it.
    if let Err(msg) = confine::program(plan, handoff, filter) {
        fail(report, EXIT_SETUP, msg);
    }

    let mut denied = None;
    for path in candidates {
        match sys::execve(path, argv, envp) {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => denied = Some(path),
            Errno::ENOEXEC => fail(
                report,
                EXIT_NOT_EXECUTABLE,
                format!(
                    "{}: {path} is not executable: not a format this kernel runs, and no #! line",
                    exec.at
                ),
            ),
            other => fail(
                report,
                EXIT_NOT_EXECUTABLE,
                format!(
                    "{}: exec {path:?} failed: {other:?} ({})",
                    exec.at,
                    other.desc()
                ),
            ),
        }
    }
    if let Some(path) = denied {
        let absolute = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{cwd}/{path}")
        };
        let why = crate::plan::access::why_not_executable(plan, &absolute).unwrap_or_else(|| {
            format!(
                "{path} exists in the sandbox but is not executable (permission denied, or on \
                 a noexec mount)"
            )
        });
        fail(report, EXIT_NOT_EXECUTABLE, format!("{}: {why}", exec.at));
    }
    let msg = if program.contains('/') {
        if crate::arg::to_path(program).exists() {
            format!("{}: {program} exists in the sandbox but its interpreter or dynamic loader is missing there (bind the libraries it needs)", exec.at)
        } else {
            format!("{}: {program} does not exist in the sandbox's view of the filesystem (bind it, or the directory holding it)", exec.at)
        }
    } else {
        let dirs: Vec<&str> = candidates
            .iter()
            .filter_map(|c| c.rsplit_once('/').map(|(d, _)| d))
            .collect();
        format!(
            "{}: program {program:?} was not found in the sandbox (looked in {}); bind it or set PATH",
            exec.at,
            dirs.join(", ")
        )
    };
    fail(report, EXIT_NOT_FOUND, msg)
}
