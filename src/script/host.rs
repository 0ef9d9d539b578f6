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

/// `$HOME`, or the home in the password database, or "/".
pub fn home_dir() -> String {
    std::env::var("HOME")
        .ok()
        .filter(|h| h.starts_with('/'))
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "/".into())
}

/// An XDG base directory by kind: config, data, cache, state or runtime.
pub fn xdg_dir(kind: &str) -> Result<String, String> {
    let var = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| v.starts_with('/'))
            .unwrap_or_else(|| format!("{}/{default}", home_dir().trim_end_matches('/')))
    };
    Ok(match kind {
        "config" => var("XDG_CONFIG_HOME", ".config"),
        "data" => var("XDG_DATA_HOME", ".local/share"),
        "cache" => var("XDG_CACHE_HOME", ".cache"),
        "state" => var("XDG_STATE_HOME", ".local/state"),
        "runtime" => std::env::var("XDG_RUNTIME_DIR")
            .ok()
            .filter(|v| v.starts_with('/'))
            .unwrap_or_else(|| format!("/run/user/{}", uid())),
        other => {
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
    use std::os::unix::fs::PermissionsExt;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .find_map(|dir| {
            let candidate = Path::new(dir).join(name);
            let meta = candidate.metadata().ok()?;
            (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .then(|| candidate.to_string_lossy().into_owned())
        })
}
