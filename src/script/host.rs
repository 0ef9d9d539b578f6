//! Read-only questions a profile may ask about the host. Nothing here changes
//! anything; these are the only ways a profile learns about the machine.

use std::path::Path;

/// The kernel release, e.g. "6.18.4".
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Major and minor of the running kernel.
pub fn kernel_version() -> (i64, i64) {
    let rel = kernel_release();
    let mut nums = rel
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<i64>().ok());
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}

pub fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

pub fn gid() -> u32 {
    nix::unistd::getegid().as_raw()
}

/// The caller's login name from the password database, or `$USER`, or the uid.
pub fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid().to_string())
}

/// The XDG base directories (`directories`: `$HOME`, else the password
/// database; each `XDG_*` variable when it is an absolute path, else its
/// default under the home). A relative home is not a home.
fn base_dirs() -> Option<directories::BaseDirs> {
    directories::BaseDirs::new().filter(|b| b.home_dir().is_absolute())
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `$HOME`, or the home in the password database, or "/".
pub fn home_dir() -> String {
    base_dirs().map_or_else(|| "/".into(), |b| text(b.home_dir()))
}

/// An XDG base directory by kind: config, data, cache, state or runtime
/// (without `$XDG_RUNTIME_DIR`: `/run/user/UID`).
pub fn xdg_dir(kind: &str) -> Result<String, String> {
    let dirs = base_dirs();
    let under_root = |default: &str| format!("/{default}");
    Ok(match (kind, &dirs) {
        ("config", Some(d)) => text(d.config_dir()),
        ("data", Some(d)) => text(d.data_dir()),
        ("cache", Some(d)) => text(d.cache_dir()),
        ("state", Some(d)) => d.state_dir().map_or_else(|| under_root(".local/state"), text),
        ("config", None) => under_root(".config"),
        ("data", None) => under_root(".local/share"),
        ("cache", None) => under_root(".cache"),
        ("state", None) => under_root(".local/state"),
        ("runtime", _) => dirs
            .as_ref()
            .and_then(|d| d.runtime_dir().map(text))
            .unwrap_or_else(|| format!("/run/user/{}", uid())),
        (other, _) => {
            return Err(format!(
                "unknown XDG directory kind {other:?}; expected one of config, data, cache, state, runtime"
            ))
        }
    })
}

pub fn current_dir() -> String {
    std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".into())
}

pub fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

/// Where the symlink `path` points, or None if it is not a symlink.
pub fn read_link(path: &str) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// `path` with every symlink resolved, or None if it does not exist.
pub fn real_path(path: &str) -> Option<String> {
    std::fs::canonicalize(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

pub fn is_dir(path: &str) -> bool {
    Path::new(path).is_dir()
}

pub fn is_file(path: &str) -> bool {
    Path::new(path).is_file()
}

/// Paths matching a shell glob, sorted; at most `limit` of them.
pub fn glob(pattern: &str, limit: usize) -> Result<Vec<String>, String> {
    // A recursive walk of the host could take minutes that the operation
    // limit does not see: refused.
    if pattern.contains("**") {
        return Err(format!(
            "glob {pattern:?}: recursive patterns (**) are not supported; name the directory levels"
        ));
    }
    let paths = glob::glob(pattern).map_err(|e| format!("bad glob pattern {pattern:?}: {e}"))?;
    let mut out: Vec<String> = paths
        .filter_map(Result::ok)
        .take(limit)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    out.sort();
    Ok(out)
}

/// The first executable called `name` on the launcher's `$PATH`.
pub fn which(name: &str) -> Option<String> {
    which_all(name).next()
}

/// Every executable called `name` on the launcher's `$PATH`, in order.
pub fn which_all(name: &str) -> impl Iterator<Item = String> + '_ {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let dirs: Vec<String> = if name.is_empty() || name.contains('/') {
        Vec::new()
    } else {
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(str::to_string)
            .collect()
    };
    dirs.into_iter().filter_map(move |dir| {
        let candidate = Path::new(&dir).join(name);
        let meta = candidate.metadata().ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .then(|| candidate.to_string_lossy().into_owned())
    })
}

/// The text of a small regular file: not through a symlink at `path`, at
/// most `max` bytes (a larger file gives `None`, as does one that is not
/// UTF-8), never blocking (a FIFO is not a regular file).
pub fn read_text(path: &str, max: u64) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text).ok()?;
    (text.len() as u64 <= max).then_some(text)
}
