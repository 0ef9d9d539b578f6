//! Helpers: run the `moksha` binary as root or as uid 65534 on profiles
//! written to world-readable temporary directories.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Who runs moksha.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Who {
    Root,
    /// uid/gid 65534 via setpriv, no supplementary groups.
    Nobody,
    /// Another unprivileged uid (= gid), for tests between two users.
    Other(u32),
}

impl Who {
    pub fn uid(self) -> u32 {
        match self {
            Who::Root => 0,
            Who::Nobody => NOBODY,
            Who::Other(uid) => uid,
        }
    }

    /// The host uid (= gid) the sandbox's program runs as: the caller's
    /// own, except for root, whose sandboxes run as nobody unless the
    /// profile says `s.host_root(true)`.
    pub fn sandbox_uid(self) -> u32 {
        match self {
            Who::Root => NOBODY,
            other => other.uid(),
        }
    }
}

pub const NOBODY: u32 = 65534;

static BIN: OnceLock<PathBuf> = OnceLock::new();

/// Removes the copy of the binary when the test process exits (it is large:
/// a debug build).
extern "C" fn remove_the_copy() {
    if let Some(dir) = BIN.get().and_then(|b| b.parent()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A copy of the binary in a directory every user can reach.
pub fn moksha_bin() -> &'static Path {
    BIN.get_or_init(|| {
        // SAFETY: registers a function without arguments, run once at exit.
        unsafe { libc::atexit(remove_the_copy) };
        let dir = std::env::temp_dir().join(format!("moksha-test-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("moksha");
        std::fs::copy(env!("CARGO_BIN_EXE_moksha"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    })
}

/// A temporary directory readable (and traversable) by everyone.
pub fn world_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("moksha-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A directory owned by `who` (writable by them), inside `parent`.
pub fn owned_dir(parent: &Path, name: &str, who: Who) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if who != Who::Root {
        std::os::unix::fs::chown(&dir, Some(who.uid()), Some(who.uid())).unwrap();
    }
    dir
}

/// A directory the sandboxes of `who` may write, inside `parent`: owned
/// by the host identity their program runs as (`Who::sandbox_uid`; for
/// root that is nobody, and the directory is not root's).
pub fn sandbox_dir(parent: &Path, name: &str, who: Who) -> PathBuf {
    let dir = owned_dir(parent, name, who);
    let id = who.sandbox_uid();
    std::os::unix::fs::chown(&dir, Some(id), Some(id)).unwrap();
    dir
}

/// A command running `program` as `who`: itself for root, through setpriv
/// (uid = gid, no supplementary groups) for the others.
pub fn as_user(who: Who, program: impl AsRef<std::ffi::OsStr>) -> Command {
    if who == Who::Root {
        return Command::new(program);
    }
    let id = who.uid();
    let mut c = Command::new("setpriv");
    c.args([
        format!("--reuid={id}"),
        format!("--regid={id}"),
        "--clear-groups".into(),
        "--".into(),
    ]);
    c.arg(program);
    c
}

/// A command running `moksha ARGS` as `who`, with a small clean environment.
///
/// With MOKSHA_TEST_OLD_KERNEL in the suite's environment, moksha runs as
/// on an older kernel (probes/old_kernel.c): `5.8`, without the new mount
/// API, so its classic mount(2) fallback builds every root; `4.18`, also
/// without openat2 and pidfds, so paths are walked in user space and other
/// processes are reached through /proc (scripts/test does a 4.18 pass over
/// the launch tests).
pub fn moksha(who: Who, args: &[&str]) -> Command {
    match std::env::var("MOKSHA_TEST_OLD_KERNEL").as_deref() {
        Ok(v @ ("5.8" | "4.18")) => {
            let probe = compiled_probe("old_kernel").join("old_kernel");
            let first: &[&str] = if v == "4.18" { &["--4.18"] } else { &[] };
            moksha_under(who, &probe, first, args)
        }
        Ok(other) => panic!("MOKSHA_TEST_OLD_KERNEL={other}: say 5.8 or 4.18"),
        Err(_) => with_clean_env(as_user(who, moksha_bin()), who, args),
    }
}

/// `moksha ARGS` as `moksha()` runs it, but started by `wrapper FIRST...`
/// (a probe that changes what moksha runs under, then executes it).
pub fn moksha_under(who: Who, wrapper: &Path, first: &[&str], args: &[&str]) -> Command {
    let mut c = as_user(who, wrapper);
    c.args(first).arg(moksha_bin());
    with_clean_env(c, who, args)
}

fn with_clean_env(mut cmd: Command, who: Who, args: &[&str]) -> Command {
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env(
            "HOME",
            if who == Who::Root {
                "/root"
            } else {
                "/nonexistent"
            },
        )
        .current_dir("/")
        .stdin(Stdio::null());
    cmd
}

/// Waits for `child` up to `limit`, and kills it past that (a test must
/// not hang on a moksha that does not end): its output, and whether it
/// ended by itself.
pub fn wait_within(mut child: std::process::Child, limit: std::time::Duration) -> (Output, bool) {
    let until = std::time::Instant::now() + limit;
    let mut ended = true;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            ended = false;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), ended)
}

/// The result of a run, with text output.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        let code = out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Run {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Writes `text` as `name` in `dir` (world-readable) and returns its path.
pub fn write_profile(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path.to_string_lossy().into_owned()
}

/// Runs `moksha exec` on a profile text as `who`.
pub fn exec_profile(who: Who, text: &str, extra: &[&str]) -> Run {
    let dir = world_dir();
    let path = write_profile(dir.path(), "test.rhai", text);
    let mut args = vec!["exec", path.as_str()];
    args.extend_from_slice(extra);
    Run::from(moksha(who, &args).output().unwrap())
}

/// A profile: the base minimal root plus `extra` Rhai lines, running `script`
/// with /bin/sh.
pub fn sh_profile(extra: &str, script: &str) -> String {
    format!(
        "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n{extra}\ns.exec([\"/bin/sh\", \"-c\", {}]);\n",
        rhai_string(script)
    )
}

/// Runs a shell script in the minimal sandbox as `who`.
pub fn sh(who: Who, extra: &str, script: &str) -> Run {
    exec_profile(who, &sh_profile(extra, script), &[])
}

/// Fails, naming the Debian package, when `program` is not installed: a
/// test of a real program never skips (.ci/run installs them).
pub fn installed(program: &str, package: &str) {
    installed_by(program, &format!("apt-get install {package}"));
}

/// `installed`, for a program that `install` (a command) installs.
pub fn installed_by(program: &str, install: &str) {
    let found = ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(program).exists());
    assert!(found, "{program} is not installed: {install} (see .ci/run)");
}

/// A Rhai string literal for arbitrary text.
pub fn rhai_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Defines a test twice: `root` and `rootless` (uid 65534).
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn root() {
                ($body)($crate::common::Who::Root)
            }
            #[test]
            fn rootless() {
                ($body)($crate::common::Who::Nobody)
            }
        }
    };
}

/// A program running on a pseudo-terminal, as a person at a terminal would
/// run it: its own session, the pty as controlling terminal.
pub struct Pty {
    master: std::fs::File,
    pub child: std::process::Child,
    pub seen: String,
    waited: bool,
}

impl Drop for Pty {
    /// A test that failed half-way leaves nothing running: the session
    /// leader is killed, and the kernel hangs up its terminal's jobs.
    fn drop(&mut self) {
        if !self.waited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Pty {
    pub fn spawn(mut cmd: Command) -> Pty {
        use std::os::fd::FromRawFd;
        use std::os::unix::process::CommandExt;
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors; the name/termios/winsize pointers may be NULL.
        let ret = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(ret, 0, "openpty failed");
        // SAFETY: both descriptors were just returned by openpty and are owned here.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                std::fs::File::from_raw_fd(slave),
            )
        };
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe; run in the child before exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd);
        Pty {
            master,
            child,
            seen: String::new(),
            waited: false,
        }
    }

    pub fn send(&mut self, text: &str) {
        use std::io::Write;
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Reads until `want` appears (returns everything read so far) or panics
    /// with the screen after `secs`.
    pub fn expect(&mut self, want: &str, secs: u64) -> String {
        self.expect_after(0, want, secs)
    }

    /// `expect`, for `want` after the first `from` bytes seen.
    pub fn expect_after(&mut self, from: usize, want: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if self.seen.get(from..).is_some_and(|s| s.contains(want)) {
                return self.seen.clone();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {want:?}; the terminal showed:\n{}",
                self.seen
            );
            if !self.read_some(left.min(std::time::Duration::from_secs(1))) {
                panic!("terminal closed before {want:?}:\n{}", self.seen);
            }
        }
    }

    /// Reads until the terminal closes (at most `secs`); returns the screen.
    pub fn rest(&mut self, secs: u64) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline
            && self.read_some(std::time::Duration::from_millis(200))
        {}
        self.seen.clone()
    }

    /// Appends what the terminal shows within `wait`; false once it closed.
    fn read_some(&mut self, wait: std::time::Duration) -> bool {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
        if n <= 0 {
            return true;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
        }
    }

    /// Sets the terminal's window size (the kernel signals SIGWINCH to its
    /// foreground process group).
    pub fn resize(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        let ret = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(ret, 0, "TIOCSWINSZ failed");
    }

    /// Waits for the program and returns its exit code.
    pub fn wait(mut self) -> i32 {
        self.waited = true;
        use std::os::unix::process::ExitStatusExt;
        let status = self.child.wait().unwrap();
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    }
}

/// A directory every user can read holding the probe NAME, compiled once
/// per test run from tests/integration/probes/NAME.c with `cc`.
pub fn compiled_probe(name: &str) -> PathBuf {
    static DIRS: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, dir)) = dirs.iter().find(|(n, _)| n == name) {
        return dir.clone();
    }
    let dir = std::env::temp_dir().join(format!("moksha-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/integration/probes/{name}.c"));
    let out = Command::new("cc")
        .args(["-O", "-Wall", "-o"])
        .arg(dir.join(name))
        .arg(&src)
        .output()
        .expect("cc (gcc) is needed to build the test probes");
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    dirs.push((name.to_string(), dir.clone()));
    dir
}
