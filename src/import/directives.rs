//! What becomes of each Firejail directive: translated (the stdlib's
//! firejail module gives it Firejail's meaning), approximated (it does
//! something close, and the emitted line says how it differs), or
//! unsupported (kept as a comment with the reason). The stdlib's
//! `firejail::rule` handles exactly the first two kinds.

/// The fate of one directive line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Translated,
    Approximated(&'static str),
    Unsupported(&'static str),
}

/// Directives that map to moksha calls of the same meaning, or that ask for
/// what moksha always does.
const TRANSLATED: &[&str] = &[
    "include",
    "ignore",
    "noblacklist",
    "nowhitelist",
    "blacklist",
    "blacklist-nolog",
    "whitelist",
    "whitelist-ro",
    "read-only",
    "read-write",
    "tmpfs",
    "mkdir",
    "bind",
    "private",
    "private-cache",
    "private-tmp",
    "private-dev",
    "private-etc",
    "private-bin",
    "private-opt",
    "private-srv",
    "private-cwd",
    "disable-mnt",
    "caps",
    "caps.drop",
    "caps.keep",
    "nonewprivs",
    "noroot",
    "nogroups",
    "seccomp",
    "seccomp.drop",
    "seccomp.keep",
    "seccomp.block-secondary",
    "memory-deny-write-execute",
    "protocol",
    "hostname",
    "ipc-namespace",
    "rlimit-as",
    "rlimit-cpu",
    "rlimit-fsize",
    "rlimit-nofile",
    "rlimit-nproc",
    "rlimit-sigpending",
    "timeout",
    "env",
    "rmenv",
    "name",
    "quiet",
    "deterministic-exit-code",
    "dns",
    "hosts-file",
    "dbus-user",
    "dbus-system",
    "dbus-user.talk",
    "dbus-user.own",
    "dbus-user.see",
    "dbus-user.call",
    "dbus-user.broadcast",
    "dbus-system.talk",
    "dbus-system.own",
    "dbus-system.see",
    "dbus-system.call",
    "dbus-system.broadcast",
    "nodbus",
    "no3d",
    "nosound",
    "novideo",
    "nodvd",
    "notv",
    "nou2f",
    "noinput",
    "noprinters",
    "keep-dev-shm",
    "keep-var-tmp",
    "writable-etc",
    "writable-var",
    "writable-var-log",
    "writable-run-user",
    "allow-debuggers",
    "allusers",
];

/// Directives moksha gives a close equivalent for, and how it differs.
const APPROXIMATED: &[(&str, &str)] = &[
    ("mkfile", "moksha creates missing directories on the host, not files: a missing file stays missing"),
    ("noexec", "writable paths lose execute (a bind without exec); read-only paths stay executable, as landlock grants execute with read"),
    ("private-home", "the listed files are bound read-only instead of copied into a throwaway home"),
    ("private-lib", "/usr/lib stays whole: the libraries are read-only, not reduced to the program's closure"),
    ("seccomp.32", "32-bit system calls are refused altogether by moksha's filter"),
    ("seccomp-error-action", "moksha's filter answers EPERM (ENOSYS for some calls), whatever the action asked"),
    ("restrict-namespaces", "moksha refuses every new namespace, not only the listed types"),
    ("machine-id", "/etc/machine-id is a fixed id shared by these sandboxes, not a new random one each run"),
    ("join-or-start", "each run starts a sandbox; join a running one with `moksha enter NAME`"),
    ("deterministic-shutdown", "the sandbox ends with its program; moksha's PID 1 then kills what is left"),
    ("netfilter", "best effort: the rules are not loaded; net none has no network and a user-mode network takes no incoming connections"),
    ("netfilter6", "best effort: the rules are not loaded; net none has no network and a user-mode network takes no incoming connections"),
    ("apparmor", "no AppArmor profile is loaded; moksha's own confinement (landlock, seccomp) applies"),
    ("apparmor-replace", "no AppArmor profile is loaded; moksha's own confinement (landlock, seccomp) applies"),
    ("apparmor-stack", "no AppArmor profile is loaded; moksha's own confinement (landlock, seccomp) applies"),
    ("tracelog", "denials are not logged to syslog; blacklisted paths are simply empty and unreadable"),
    ("keep-config-pulse", "moksha never rewrites the PulseAudio client configuration"),
    ("dbus-user.log", "xdg-dbus-proxy's log is not collected"),
    ("dbus-system.log", "xdg-dbus-proxy's log is not collected"),
    ("noautopulse", "moksha never rewrites the PulseAudio client configuration"),
];

/// The status of the directive `name` with its argument `arg`.
pub fn classify(name: &str, arg: &str) -> Status {
    match (name, arg) {
        ("shell", "none") => return Status::Translated,
        ("shell", _) => {
            return Status::Unsupported("moksha runs the program directly, never through a shell")
        }
        ("x11", "none") => return Status::Translated,
        ("x11", _) => {
            return Status::Unsupported(
                "moksha starts no X server (xpra, xephyr, xvfb); use x11 none, or the host display as it is",
            )
        }
        ("net", "none") => return Status::Translated,
        ("net", _) => {
            return Status::Approximated(
                "a user-mode network (pasta or slirp4netns) instead of a bridge or interface of the host",
            )
        }
        ("restrict-namespaces", "") => return Status::Translated,
        _ => {}
    }
    if TRANSLATED.contains(&name) {
        return Status::Translated;
    }
    if let Some((_, why)) = APPROXIMATED.iter().find(|(n, _)| *n == name) {
        return Status::Approximated(why);
    }
    Status::Unsupported(unsupported(name))
}

/// Why a directive moksha has no equivalent for is left out.
fn unsupported(name: &str) -> &'static str {
    match name {
        "keep-fd" => "moksha closes every inherited file descriptor",
        "ip" | "ip6" | "iprange" | "mac" | "mtu" | "defaultgw" | "veth-name" | "netns"
        | "interface" | "netmask" => "moksha does not configure host network interfaces",
        "cpu" | "nice" | "cgroup" | "rlimit-memlock" => {
            "moksha sets no CPU affinity, priority or cgroup"
        }
        "overlay" | "overlay-named" | "overlay-tmpfs" | "chroot" => {
            "moksha builds its own root; no overlay or chroot of the host"
        }
        "xephyr-screen" | "x11-xpra" => "moksha starts no X server",
        "tab" => "not a Firejail directive any more (tab completion is always on)",
        _ => "not a Firejail directive moksha knows",
    }
}

/// The `?NAME:` conditions Firejail defines.
pub fn known_condition(name: &str) -> bool {
    [
        "HAS_APPIMAGE",
        "HAS_NET",
        "HAS_NODBUS",
        "HAS_NOSOUND",
        "HAS_PRIVATE",
        "HAS_X11",
        "ALLOW_TRAY",
        "BROWSER_DISABLE_U2F",
        "BROWSER_ALLOW_DRM",
    ]
    .contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify("blacklist", "${HOME}/.ssh"), Status::Translated);
        assert_eq!(classify("net", "none"), Status::Translated);
        assert!(matches!(classify("net", "eth0"), Status::Approximated(_)));
        assert!(matches!(classify("x11", "xpra"), Status::Unsupported(_)));
        assert!(matches!(classify("keep-fd", "all"), Status::Unsupported(_)));
        assert!(matches!(classify("frobnicate", ""), Status::Unsupported(_)));
    }
}
