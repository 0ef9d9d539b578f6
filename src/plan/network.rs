//! The network section of a plan: which network the sandbox has, the
//! user-mode helper that connects it, port forwards and outbound rules.
//! Pure data and pure functions: `moksha plan` and the launcher build the
//! helper's command line from the same code.

use super::{Plan, Pos, Step};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// The sandbox's address on a user-mode network (both helpers use the
/// addressing of slirp4netns and QEMU's user networking).
pub const USER_ADDRESS: &str = "10.0.2.100";
/// The prefix length of the user-mode network.
pub const USER_PREFIX: u8 = 24;
/// The gateway of the user-mode network. With `host_loopback` it leads to
/// the host's 127.0.0.1.
pub const USER_GATEWAY: &str = "10.0.2.2";
/// The DNS forwarder of the user-mode network: queries to it go to the
/// host's resolvers (those of its /etc/resolv.conf).
pub const USER_DNS: &str = "10.0.2.3";
/// The user-mode network's MTU.
pub const USER_MTU: u32 = 65520;

/// Which network the sandbox has.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NetMode {
    /// A new network namespace with only `lo`, brought up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// A new network namespace connected to the outside by a user-mode
    /// helper (pasta, or slirp4netns).
    User(UserNet),
    /// An existing network namespace, entered by path (e.g. /run/netns/NAME).
    Join { path: String },
}

/// Which program connects a user-mode network.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum HelperKind {
    /// pasta when installed, else slirp4netns.
    #[default]
    Auto,
    Pasta,
    Slirp4netns,
}

impl HelperKind {
    pub fn name(self) -> &'static str {
        match self {
            HelperKind::Auto => "auto",
            HelperKind::Pasta => "pasta",
            HelperKind::Slirp4netns => "slirp4netns",
        }
    }
}

/// Options of a user-mode network.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserNet {
    /// Which helper to run.
    pub helper: HelperKind,
    /// Whether the gateway address leads to the host's loopback services.
    pub host_loopback: bool,
    /// Whether moksha writes /etc/resolv.conf inside (over whatever the
    /// filesystem steps put there): naming the helper's DNS forwarder, or
    /// `dns_servers`.
    pub dns: bool,
    /// Resolvers the sandbox asks directly, through the user-mode network,
    /// instead of the forwarder (which goes to the host's resolvers).
    pub dns_servers: Vec<String>,
}

impl Default for UserNet {
    fn default() -> Self {
        UserNet {
            helper: HelperKind::Auto,
            host_loopback: false,
            dns: true,
            dns_servers: Vec::new(),
        }
    }
}

/// A transport protocol of a port forward.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A host port forwarded to a port inside the sandbox.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub proto: Proto,
    /// The host address the helper listens on (127.0.0.1 unless the
    /// profile says otherwise; "0.0.0.0" is every IPv4 address).
    pub address: String,
    pub host: u16,
    pub sandbox: u16,
}

/// The whole network section.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub mode: NetMode,
    /// Where the mode was chosen (`s.network`, `s.network_join`, `s.share`).
    pub set_at: Option<Pos>,
    pub forwards: Vec<Step<Forward>>,
    /// Egress by name through moksha's proxy (`s.egress`); the mode is
    /// then none: the proxy is the only way out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<super::egress::Egress>,
}

impl Network {
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            NetMode::None => "none",
            NetMode::Host => "host",
            NetMode::User(_) => "user",
            NetMode::Join { .. } => "join",
        }
    }

    pub fn user(&self) -> Option<&UserNet> {
        match &self.mode {
            NetMode::User(u) => Some(u),
            _ => None,
        }
    }
}

/// `s.share(["net"])` (new: false) makes the mode host; `s.unshare(["net"])`
/// (new: true) turns host or a joined namespace into a new, empty one.
pub fn namespace_set(plan: &mut Plan, new: bool) {
    let net = &mut plan.network;
    match (new, &net.mode) {
        (false, _) => net.mode = NetMode::Host,
        (true, NetMode::Host | NetMode::Join { .. }) => net.mode = NetMode::None,
        (true, _) => {}
    }
}

/// The helper a user-mode network will run, once found on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helper {
    pub kind: HelperKind,
    /// Its full path on the host.
    pub path: String,
}

/// The Debian (and most distributions') package of each helper.
pub const HELPER_PACKAGES: &str = "pasta (package passt) or slirp4netns";

/// Picks the helper for `want` among the programs `find` locates (by name,
/// on the launcher's PATH). The error names the packages to install.
pub fn choose_helper(
    want: HelperKind,
    find: impl Fn(&str) -> Option<String>,
) -> Result<Helper, String> {
    let try_kind = |kind: HelperKind| {
        find(kind.name()).map(|path| Helper {
            kind,
            path: path.to_string(),
        })
    };
    match want {
        HelperKind::Auto => try_kind(HelperKind::Pasta)
            .or_else(|| try_kind(HelperKind::Slirp4netns))
            .ok_or_else(|| {
                format!(
                    "the user-mode network needs {HELPER_PACKAGES}, and neither `pasta` nor \
                     `slirp4netns` is on PATH; install one (Debian/Ubuntu: apt install passt, \
                     or apt install slirp4netns; Fedora: dnf install passt)"
                )
            }),
        kind => try_kind(kind).ok_or_else(|| {
            let package = if kind == HelperKind::Pasta {
                "passt"
            } else {
                "slirp4netns"
            };
            format!(
                "the profile asks for the network helper `{}`, which is not on PATH; \
                 install the package {package}, or let moksha choose (helper: \"auto\")",
                kind.name()
            )
        }),
    }
}

/// The resolv.conf a user-mode network writes inside, if any: the
/// forwarder, or the profile's servers.
pub fn resolv_conf(plan: &Plan) -> Option<String> {
    let user = plan.network.user()?;
    if !user.dns || !plan.namespaces.mount {
        return None;
    }
    let servers = if user.dns_servers.is_empty() {
        vec![USER_DNS.to_string()]
    } else {
        user.dns_servers.clone()
    };
    Some(
        servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect(),
    )
}

fn ports(list: &Option<Vec<u16>>) -> String {
    match list {
        None => "any".into(),
        Some(l) if l.is_empty() => "none".into(),
        Some(l) => l.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
    }
}

/// The network section of `moksha plan`. `helper` is the command line of
/// the helper that would run on this host (or why none would).
pub fn describe(plan: &Plan, helper: Option<&Result<Vec<String>, String>>, o: &mut String) {
    let net = &plan.network;
    let at = net
        .set_at
        .as_ref()
        .map(|p| format!("    [{p}]"))
        .unwrap_or_default();
    let _ = writeln!(o, "\nnetwork");
    match &net.mode {
        NetMode::None => {
            let _ = writeln!(
                o,
                "  mode       none: a new network namespace with only lo (up){at}"
            );
            let reach = if net.egress.is_some() {
                "the sandbox itself on 127.0.0.1/::1, and through the proxy the names the egress \
                 rules allow"
            } else {
                "the sandbox itself on 127.0.0.1/::1; nothing of the host or beyond"
            };
            let _ = writeln!(o, "  reachable  {reach}");
        }
        NetMode::Host => {
            let _ = writeln!(o, "  mode       host: the host's network namespace{at}");
            let _ = writeln!(o, "  reachable  everything the host reaches");
            let scoped =
                plan.security.landlock.enabled && plan.security.landlock.scope_abstract_unix;
            let _ = writeln!(
                o,
                "  warning: the host network is shared: host loopback services are reachable, \
                 and abstract unix sockets (X11's among them){}",
                if scoped {
                    " where the kernel's landlock cannot scope them (ABI 6, Linux 6.12)"
                } else {
                    ""
                }
            );
        }
        NetMode::Join { path } => {
            let _ = writeln!(o, "  mode       join the network namespace {path}{at}");
            let _ = writeln!(
                o,
                "  reachable  whatever that namespace reaches (entered before the sandbox's other \
                 namespaces are made; needs CAP_SYS_ADMIN over it, i.e. root)"
            );
        }
        NetMode::User(user) => {
            let _ = writeln!(
                o,
                "  mode       user: a new network namespace connected by a user-mode helper{at}"
            );
            match helper.unwrap_or(&Err(String::new())) {
                Ok(argv) => {
                    let _ = writeln!(o, "  helper     {}", argv.join(" "));
                    let _ = writeln!(
                        o,
                        "             (started beside the sandbox, stopped with it; <PID> is the \
                         sandbox's first process)"
                    );
                }
                Err(e) => {
                    let _ = writeln!(o, "  helper     none found on this host: {e}");
                }
            }
            let _ = writeln!(
                o,
                "  addresses  sandbox {USER_ADDRESS}/{USER_PREFIX}, gateway {USER_GATEWAY}, \
                 DNS forwarder {USER_DNS}"
            );
            let upstream = "the host's resolvers (its /etc/resolv.conf)";
            match resolv_conf(plan) {
                Some(text) if user.dns_servers.is_empty() => {
                    let _ = writeln!(
                        o,
                        "  dns        /etc/resolv.conf: {} (written after the filesystem steps); \
                         the forwarder goes to {upstream}",
                        text.trim()
                    );
                }
                Some(text) => {
                    let _ = writeln!(
                        o,
                        "  dns        /etc/resolv.conf: {} (written after the filesystem steps)",
                        text.trim().replace('\n', ", ")
                    );
                }
                None => {
                    let _ = writeln!(
                        o,
                        "  dns        /etc/resolv.conf as the filesystem steps leave it; the \
                         forwarder {USER_DNS} goes to {upstream}"
                    );
                }
            }
            let _ = writeln!(
                o,
                "  reachable  what the host reaches, as connections made by the helper on the host"
            );
            if user.host_loopback {
                let _ = writeln!(
                    o,
                    "             and the host's loopback services, at {USER_GATEWAY} \
                     (host_loopback: true)"
                );
            } else {
                let _ = writeln!(
                    o,
                    "             but not the host's loopback services (127.0.0.1 inside is the \
                     sandbox's own) nor abstract unix sockets"
                );
            }
        }
    }
    if let Some(egress) = &net.egress {
        egress.describe(o);
    }
    for f in &net.forwards {
        let _ = writeln!(
            o,
            "  forward    {} {}:{} on the host -> port {} in the sandbox    [{}]",
            f.op.proto.name(),
            f.op.address,
            f.op.host,
            f.op.sandbox,
            f.at
        );
    }
    // s.allow_tcp() is landlock's TCP rules (security section).
    let ll = &plan.security.landlock;
    if ll.connect_tcp.is_some() || ll.bind_tcp.is_some() {
        let at = ll
            .net_at
            .as_ref()
            .map(|p| format!("    [{p}]"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  tcp        connect to ports: {}; bind ports: {} (landlock, where the kernel has \
             ABI 4){at}",
            ports(&ll.connect_tcp),
            ports(&ll.bind_tcp)
        );
    }
}

/// The network rules of `validate`.
pub fn validate(plan: &Plan) -> Result<(), (String, Option<Pos>)> {
    let net = &plan.network;
    let ns_net = plan.namespaces.net;
    let at = net.set_at.clone();
    match &net.mode {
        NetMode::Host if ns_net => {
            return Err((
                "network mode host but a new network namespace: use s.network(\"host\")".into(),
                at,
            ))
        }
        NetMode::None | NetMode::User(_) if !ns_net => {
            return Err((
                format!(
                    "network mode {} needs a new network namespace, but the profile shares the \
                     host's (remove s.share([\"net\"]))",
                    net.mode_name()
                ),
                at,
            ))
        }
        NetMode::Join { path } => {
            super::validate::check_path(path, "network namespace path")
                .map_err(|m| (m, at.clone()))?;
            if ns_net {
                return Err((
                    "joining a network namespace excludes a new one: use s.network_join(path)"
                        .into(),
                    at,
                ));
            }
        }
        NetMode::User(user) => {
            for server in &user.dns_servers {
                if server.parse::<std::net::IpAddr>().is_err() {
                    return Err((
                        format!("dns server {server:?} is not an IP address"),
                        at.clone(),
                    ));
                }
            }
            if !net.forwards.is_empty() && user.helper == HelperKind::Slirp4netns {
                return Err((
                    "port forwards need the pasta helper (package passt)".into(),
                    net.forwards.first().map(|f| f.at.clone()),
                ));
            }
        }
        _ => {}
    }
    if let Some(egress) = &net.egress {
        if net.mode != NetMode::None {
            return Err((
                format!(
                    "egress rules need the sandbox's own network namespace with only loopback \
                     (the proxy is its only way out), but the network mode is {}: remove the \
                     s.network(...) call made after s.egress",
                    net.mode_name()
                ),
                at.clone(),
            ));
        }
        egress.validate()?;
    }
    let mut seen: Vec<(Proto, &str, u16)> = Vec::new();
    for f in &net.forwards {
        if net.user().is_none() {
            return Err((
                format!(
                    "port forwards need the user-mode network (s.network(\"user\")); the mode is {}",
                    net.mode_name()
                ),
                Some(f.at.clone()),
            ));
        }
        if f.op.host == 0 || f.op.sandbox == 0 {
            return Err(("port 0 cannot be forwarded".into(), Some(f.at.clone())));
        }
        if f.op.address.parse::<std::net::Ipv4Addr>().is_err() {
            return Err((
                format!(
                    "forward address {:?} is not an IPv4 address (e.g. \"127.0.0.1\", \"0.0.0.0\")",
                    f.op.address
                ),
                Some(f.at.clone()),
            ));
        }
        let key = (f.op.proto, f.op.address.as_str(), f.op.host);
        if seen.contains(&key) {
            return Err((
                format!(
                    "host port {} {} is forwarded twice",
                    f.op.proto.name(),
                    f.op.host
                ),
                Some(f.at.clone()),
            ));
        }
        seen.push(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Exec, Plan};

    fn at(line: usize) -> Pos {
        Pos {
            file: "p.rhai".into(),
            line,
            col: 3,
        }
    }

    fn plan(mode: NetMode) -> Plan {
        let mut p = Plan::new("t", "p.rhai");
        p.process.exec = Some(Step {
            op: Exec {
                argv: vec!["/bin/true".into()],
            },
            at: at(1),
        });
        p.namespaces.net = !matches!(mode, NetMode::Host | NetMode::Join { .. });
        p.network.mode = mode;
        p.network.set_at = Some(at(2));
        p
    }

    fn forward(proto: Proto, address: &str, host: u16, sandbox: u16, line: usize) -> Step<Forward> {
        Step {
            op: Forward {
                proto,
                address: address.into(),
                host,
                sandbox,
            },
            at: at(line),
        }
    }

    #[test]
    fn every_mode_validates_and_round_trips_through_json() {
        for mode in [
            NetMode::None,
            NetMode::Host,
            NetMode::User(UserNet::default()),
            NetMode::Join {
                path: "/run/netns/x".into(),
            },
        ] {
            let p = plan(mode);
            crate::plan::validate(&p).unwrap();
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), p);
        }
        // Plans written before the network section existed still load.
        let mut v = serde_json::to_value(plan(NetMode::None)).unwrap();
        v.as_object_mut().unwrap().remove("network");
        let p: Plan = serde_json::from_value(v).unwrap();
        assert_eq!(p.network.mode, NetMode::None);
    }

    #[test]
    fn validation_rejects_inconsistent_or_bad_networks() {
        let mut p = plan(NetMode::User(UserNet::default()));
        p.network
            .forwards
            .push(forward(Proto::Tcp, "127.0.0.1", 0, 80, 5));
        let e = crate::plan::validate(&p).unwrap_err();
        assert_eq!(e.at, Some(at(5)));
        assert!(e.message.contains("port 0"), "{e}");

        let mut p = plan(NetMode::User(UserNet::default()));
        p.network
            .forwards
            .push(forward(Proto::Udp, "127.0.0.1", 53, 53, 5));
        p.network
            .forwards
            .push(forward(Proto::Udp, "127.0.0.1", 53, 54, 6));
        let e = crate::plan::validate(&p).unwrap_err();
        assert_eq!(e.at, Some(at(6)));
        assert!(e.message.contains("forwarded twice"), "{e}");

        let mut p = plan(NetMode::None);
        p.network
            .forwards
            .push(forward(Proto::Tcp, "127.0.0.1", 8080, 80, 4));
        let e = crate::plan::validate(&p).unwrap_err();
        assert!(e.message.contains("user-mode network"), "{e}");

        let mut p = plan(NetMode::User(UserNet::default()));
        p.namespaces.net = false;
        let e = crate::plan::validate(&p).unwrap_err();
        assert_eq!(e.at, Some(at(2)));

        let p = plan(NetMode::Join {
            path: "run/netns/x".into(),
        });
        let e = crate::plan::validate(&p).unwrap_err();
        assert!(e.message.contains("relative"), "{e}");

        let mut p = plan(NetMode::User(UserNet {
            helper: HelperKind::Slirp4netns,
            ..UserNet::default()
        }));
        p.network
            .forwards
            .push(forward(Proto::Tcp, "127.0.0.1", 8080, 80, 7));
        let e = crate::plan::validate(&p).unwrap_err();
        assert!(e.message.contains("pasta"), "{e}");
    }

    #[test]
    fn sharing_and_unsharing_net_follow_the_mode() {
        let mut p = plan(NetMode::User(UserNet::default()));
        namespace_set(&mut p, false);
        assert_eq!(p.network.mode, NetMode::Host);
        namespace_set(&mut p, true);
        assert_eq!(p.network.mode, NetMode::None);
        let mut p = plan(NetMode::User(UserNet::default()));
        namespace_set(&mut p, true);
        assert!(p.network.user().is_some(), "unshare keeps a user network");
    }

    #[test]
    fn the_helper_is_pasta_then_slirp4netns_and_the_error_names_both_packages() {
        let both = |n: &str| Some(format!("/usr/bin/{n}"));
        assert_eq!(
            choose_helper(HelperKind::Auto, both).unwrap().kind,
            HelperKind::Pasta
        );
        let slirp = |n: &str| (n == "slirp4netns").then(|| "/usr/bin/slirp4netns".to_string());
        assert_eq!(
            choose_helper(HelperKind::Auto, slirp).unwrap().kind,
            HelperKind::Slirp4netns
        );
        let e = choose_helper(HelperKind::Auto, |_| None).unwrap_err();
        assert!(e.contains("passt") && e.contains("slirp4netns"), "{e}");
        let e = choose_helper(HelperKind::Pasta, slirp).unwrap_err();
        assert!(e.contains("passt"), "{e}");
    }

    #[test]
    fn resolv_conf_names_the_forwarder_or_the_profiles_servers() {
        let p = plan(NetMode::User(UserNet::default()));
        assert_eq!(resolv_conf(&p).unwrap(), "nameserver 10.0.2.3\n");
        let p = plan(NetMode::User(UserNet {
            dns_servers: vec!["192.0.2.53".into(), "2001:db8::53".into()],
            ..UserNet::default()
        }));
        assert_eq!(
            resolv_conf(&p).unwrap(),
            "nameserver 192.0.2.53\nnameserver 2001:db8::53\n"
        );
        let p = plan(NetMode::User(UserNet {
            dns: false,
            ..UserNet::default()
        }));
        assert_eq!(resolv_conf(&p), None);
        assert_eq!(resolv_conf(&plan(NetMode::None)), None);
    }

    #[test]
    fn the_listing_says_what_is_reachable() {
        let mut o = String::new();
        describe(&plan(NetMode::None), None, &mut o);
        assert!(
            o.contains("mode       none") && o.contains("nothing of the host"),
            "{o}"
        );
        let mut o = String::new();
        describe(&plan(NetMode::Host), None, &mut o);
        assert!(o.contains("warning: the host network is shared"), "{o}");
        let mut o = String::new();
        let mut p = plan(NetMode::User(UserNet::default()));
        p.network
            .forwards
            .push(forward(Proto::Tcp, "127.0.0.1", 8080, 80, 3));
        describe(&p, Some(&Ok(vec!["/usr/bin/pasta".into()])), &mut o);
        assert!(o.contains("helper     /usr/bin/pasta"), "{o}");
        assert!(o.contains("not the host's loopback services"), "{o}");
        assert!(
            o.contains("forward    tcp 127.0.0.1:8080 on the host -> port 80 in the sandbox"),
            "{o}"
        );
        let mut o = String::new();
        describe(&p, Some(&Err("no helper".into())), &mut o);
        assert!(o.contains("none found on this host: no helper"), "{o}");
    }
}
