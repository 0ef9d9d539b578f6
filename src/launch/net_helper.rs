//! The user-mode network helper's command line: pasta's, or
//! slirp4netns's, for a plan and the sandbox's first process.

use super::helper::Confine;
use crate::plan::network::{
    Helper, HelperKind, Proto, USER_ADDRESS, USER_DNS, USER_GATEWAY, USER_MTU, USER_PREFIX,
};
use crate::plan::Plan;

/// Where the helper attaches: the sandbox's first process, and whether the
/// sandbox has its own user namespace (the helper joins it too).
pub struct Target<'a> {
    pub pid: &'a str,
    pub own_userns: bool,
    /// moksha runs as root: pasta must not drop to nobody before it has
    /// opened the sandbox's namespaces (it stays uid 0 but joins the
    /// sandbox's user namespace, without capabilities on the host).
    pub root: bool,
}

impl Target<'_> {
    /// What the helper runs under (helper.rs). Both filter themselves:
    /// pasta always (its own namespaces, an empty root, capabilities
    /// dropped, its seccomp filter), slirp4netns with `--enable-seccomp`;
    /// moksha's filter, which refuses namespaces, would break pasta's. They get no_new_privs, and no
    /// capabilities unless they must join namespaces that only the host's
    /// capabilities open: a root launch without a user namespace of its
    /// own. (With one, they join it and hold every capability there, as
    /// its owner, without any on the host.)
    pub fn confinement(&self) -> Confine {
        if self.root && !self.own_userns {
            Confine::NoNewPrivs
        } else {
            Confine::NoCaps
        }
    }

    /// The target for `plan` run by uid/gid `caller` on the host.
    pub fn new<'a>(plan: &Plan, pid: &'a str, caller: (u32, u32)) -> Target<'a> {
        Target {
            pid,
            own_userns: plan.namespaces.user,
            root: caller.0 == 0,
        }
    }
}

/// The helper's command line. `ready_fd` is the descriptor on which it
/// reports readiness, `exit_fd` one whose closing tells slirp4netns to quit.
pub fn helper_argv(
    plan: &Plan,
    helper: &Helper,
    target: &Target,
    ready_fd: i32,
    exit_fd: i32,
) -> Vec<String> {
    let Some(user) = plan.network.user() else {
        return Vec::new();
    };
    let mut a: Vec<String> = vec![helper.path.clone()];
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    match helper.kind {
        HelperKind::Pasta | HelperKind::Auto => {
            push(&["--foreground", "--quiet"]);
            if target.root {
                push(&["--runas", "0:0"]);
            }
            let prefix = USER_PREFIX.to_string();
            push(&[
                "--config-net",
                "--address",
                USER_ADDRESS,
                "--netmask",
                &prefix,
                "--gateway",
                USER_GATEWAY,
                "--dns-forward",
                USER_DNS,
            ]);
            if !user.host_loopback {
                push(&["--no-map-gw"]);
            }
            // Forwards from the host, and nothing from the sandbox to the
            // host's own ports (pasta's default would map them).
            for (flag, proto) in [("--tcp-ports", Proto::Tcp), ("--udp-ports", Proto::Udp)] {
                let specs: Vec<String> = plan
                    .network
                    .forwards
                    .iter()
                    .filter(|f| f.op.proto == proto)
                    .map(|f| {
                        let addr = if f.op.address == "0.0.0.0" {
                            String::new()
                        } else {
                            format!("{}/", f.op.address)
                        };
                        format!("{addr}{}:{}", f.op.host, f.op.sandbox)
                    })
                    .collect();
                let spec = if specs.is_empty() {
                    "none".to_string()
                } else {
                    specs.join(",")
                };
                push(&[flag, &spec]);
            }
            push(&["--tcp-ns", "none", "--udp-ns", "none"]);
            let pid_file = format!("/proc/self/fd/{ready_fd}");
            push(&["--pid", &pid_file]);
            if !target.own_userns {
                push(&["--netns-only"]);
            }
            push(&[target.pid]);
        }
        HelperKind::Slirp4netns => {
            let ready = format!("--ready-fd={ready_fd}");
            let exit = format!("--exit-fd={exit_fd}");
            let mtu = format!("--mtu={USER_MTU}");
            // Its own seccomp filter, always. Not its --enable-sandbox (a
            // mount namespace with an empty root): run as root, slirp4netns
            // makes that mount namespace without a user namespace and its
            // cleanup unmounts the host's shared mounts (ip netns's
            // /run/netns/*); rootless, it joins the sandbox's user namespace
            // for it and becomes gid 0 there, which fails (EINVAL) where
            // the sandbox maps the caller to itself, and would put the
            // helper under the sandbox's own user namespace.
            push(&["--configure", &mtu, &ready, &exit, "--enable-seccomp"]);
            if !user.host_loopback {
                push(&["--disable-host-loopback"]);
            }
            if target.own_userns {
                let userns = format!("--userns-path=/proc/{}/ns/user", target.pid);
                push(&[&userns]);
            }
            push(&[target.pid, "tap0"]);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::network::{Forward, NetMode, UserNet};
    use crate::plan::{Pos, Step};

    fn plan(mode: NetMode) -> Plan {
        let mut p = Plan::new("t", "p.rhai");
        p.network.mode = mode;
        p
    }

    fn forward(proto: Proto, address: &str, host: u16, sandbox: u16) -> Step<Forward> {
        Step {
            op: Forward {
                proto,
                address: address.into(),
                host,
                sandbox,
            },
            at: Pos::default(),
        }
    }

    fn pasta() -> Helper {
        Helper {
            kind: HelperKind::Pasta,
            path: "/usr/bin/pasta".into(),
        }
    }

    #[test]
    fn pasta_keeps_host_loopback_out_and_forwards_only_what_is_asked() {
        let mut p = plan(NetMode::User(UserNet::default()));
        p.network
            .forwards
            .push(forward(Proto::Tcp, "127.0.0.1", 8080, 80));
        p.network
            .forwards
            .push(forward(Proto::Udp, "0.0.0.0", 5353, 5353));
        let target = Target::new(&p, "42", (1000, 1000));
        let argv = helper_argv(&p, &pasta(), &target, 3, 4).join(" ");
        for want in [
            "--foreground",
            "--config-net",
            "--address 10.0.2.100",
            "--gateway 10.0.2.2",
            "--dns-forward 10.0.2.3",
            "--no-map-gw",
            "--tcp-ports 127.0.0.1/8080:80",
            "--udp-ports 5353:5353",
            "--tcp-ns none --udp-ns none",
            "--pid /proc/self/fd/3",
        ] {
            assert!(argv.contains(want), "{want:?} in {argv}");
        }
        assert!(argv.ends_with(" 42"), "{argv}");
        assert!(!argv.contains("--runas"), "rootless: {argv}");

        let mut p = plan(NetMode::User(UserNet {
            host_loopback: true,
            ..UserNet::default()
        }));
        p.ids.uid = Some(0);
        let target = Target::new(&p, "42", (0, 0));
        let argv = helper_argv(&p, &pasta(), &target, 3, 4).join(" ");
        assert!(!argv.contains("--no-map-gw"), "{argv}");
        assert!(argv.contains("--runas 0:0"), "root: {argv}");
        assert!(argv.contains("--tcp-ports none --udp-ports none"), "{argv}");
    }

    #[test]
    fn slirp4netns_gets_its_fds_and_no_host_loopback() {
        let p = plan(NetMode::User(UserNet::default()));
        let slirp = Helper {
            kind: HelperKind::Slirp4netns,
            path: "/usr/bin/slirp4netns".into(),
        };
        let target = Target::new(&p, "42", (1000, 1000));
        let argv = helper_argv(&p, &slirp, &target, 3, 4).join(" ");
        for want in [
            "--configure",
            "--ready-fd=3",
            "--exit-fd=4",
            "--disable-host-loopback",
            "--userns-path=/proc/42/ns/user",
            "42 tap0",
        ] {
            assert!(argv.contains(want), "{want:?} in {argv}");
        }
        assert!(argv.contains("--enable-seccomp"), "{argv}");
        assert!(!argv.contains("--enable-sandbox"), "rootless: {argv}");
        assert_eq!(target.confinement(), Confine::NoCaps);
        // As root: its sandbox would unmount the host's shared mounts.
        let target = Target::new(&p, "42", (0, 0));
        let argv = helper_argv(&p, &slirp, &target, 3, 4).join(" ");
        assert!(argv.contains("--enable-seccomp"), "{argv}");
        assert!(!argv.contains("--enable-sandbox"), "root: {argv}");
        assert_eq!(target.confinement(), Confine::NoCaps);
        let mut shared = plan(NetMode::User(UserNet::default()));
        shared.namespaces.user = false;
        let target = Target::new(&shared, "42", (0, 0));
        assert_eq!(target.confinement(), Confine::NoNewPrivs);
    }
}
