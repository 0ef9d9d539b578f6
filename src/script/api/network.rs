//! The network calls: `s.network`, `s.network_join`, `s.forward` and
//! `s.allow_tcp` (landlock's TCP port rules, as a network convenience).
//! The plan side is `plan::network`.

use super::{err, options, path_arg, pos, Res, Sandbox};
// `api!` comes from the parent module.
use crate::plan::{self, Step};
use rhai::{Dynamic, Engine, FuncRegistration, Map, NativeCallContext};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct UserNetOpts {
    helper: Option<String>,
    host_loopback: bool,
    dns: Option<bool>,
    dns_servers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardOpts {
    host: i64,
    sandbox: Option<i64>,
    proto: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TcpOpts {
    connect: Option<Vec<i64>>,
    bind: Option<Vec<i64>>,
}

fn port_arg(port: i64, what: &str) -> Res<u16> {
    match u16::try_from(port) {
        Ok(p) if p > 0 => Ok(p),
        _ => err(format!("{what}: port {port} is out of range (1 to 65535)")),
    }
}

fn set_network(ctx: &NativeCallContext, s: &Sandbox, mode: &str, opts: &Map) -> Res<()> {
    use plan::network::{HelperKind, NetMode, UserNet};
    let mode = match mode {
        "none" | "host" => {
            if !opts.is_empty() {
                return err(format!("network mode {mode:?} takes no options"));
            }
            if mode == "none" {
                NetMode::None
            } else {
                NetMode::Host
            }
        }
        "user" => {
            let o: UserNetOpts = options(opts, "network")?;
            let helper = match o.helper.as_deref() {
                None | Some("auto") => HelperKind::Auto,
                Some("pasta") => HelperKind::Pasta,
                Some("slirp4netns") => HelperKind::Slirp4netns,
                Some(other) => {
                    return err(format!(
                        "network helper {other:?} is not known; use \"auto\", \"pasta\" or \"slirp4netns\""
                    ))
                }
            };
            for server in &o.dns_servers {
                if server.parse::<std::net::IpAddr>().is_err() {
                    return err(format!("dns server {server:?} is not an IP address"));
                }
            }
            NetMode::User(UserNet {
                helper,
                host_loopback: o.host_loopback,
                dns: o.dns.unwrap_or(true),
                dns_servers: o.dns_servers,
            })
        }
        other => {
            return err(format!(
                "network mode {other:?} is not known; use \"none\", \"host\" or \"user\" \
                 (or s.network_join(path) for an existing namespace)"
            ))
        }
    };
    let mut plan = s.0.borrow_mut();
    plan.namespaces.net = !matches!(mode, NetMode::Host);
    plan.network.mode = mode;
    plan.network.set_at = Some(pos(ctx));
    Ok(())
}

fn add_forward(ctx: &NativeCallContext, s: &Sandbox, opts: &Map) -> Res<()> {
    use plan::network::{Forward, Proto};
    let o: ForwardOpts = options(opts, "forward")?;
    let host = port_arg(o.host, "forward host")?;
    let sandbox = port_arg(o.sandbox.unwrap_or(o.host), "forward sandbox")?;
    let proto = match o.proto.as_deref() {
        None | Some("tcp") => Proto::Tcp,
        Some("udp") => Proto::Udp,
        Some(other) => return err(format!("forward proto {other:?}: use \"tcp\" or \"udp\"")),
    };
    let address = o.address.unwrap_or_else(|| "127.0.0.1".into());
    if address.parse::<std::net::Ipv4Addr>().is_err() {
        return err(format!(
            "forward address {address:?} is not an IPv4 address (e.g. \"127.0.0.1\", \"0.0.0.0\")"
        ));
    }
    s.0.borrow_mut().network.forwards.push(Step {
        op: Forward {
            proto,
            address,
            host,
            sandbox,
        },
        at: pos(ctx),
    });
    Ok(())
}

pub fn register(engine: &mut Engine) {
    api!(
        engine,
        "network",
        "s: Sandbox, mode: String",
        "The sandbox's network: \"none\" (default: a new network namespace with only lo, up),
        \"host\" (the host's network, loopback services and abstract sockets included), or
        \"user\" (a new namespace connected to the outside by pasta or slirp4netns; the
        host's loopback is not reachable; DNS through the helper's forwarder).",
        |ctx: NativeCallContext, s: &mut Sandbox, mode: &str| set_network(
            &ctx,
            s,
            mode,
            &Map::new()
        )
    );
    api!(
        engine,
        "network",
        "s: Sandbox, mode: String, options: Map",
        "The sandbox's network, with options for \"user\": helper (\"auto\", \"pasta\",
        \"slirp4netns\"), host_loopback (the gateway 10.0.2.2 leads to the host's 127.0.0.1;
        default false), dns (write /etc/resolv.conf naming the forwarder 10.0.2.3, which asks
        the host's resolvers; default true), dns_servers (name these resolvers in
        /etc/resolv.conf instead; they are reached through the user network).",
        |ctx: NativeCallContext, s: &mut Sandbox, mode: &str, o: Map| set_network(
            &ctx, s, mode, &o
        )
    );
    api!(
        engine,
        "network_join",
        "s: Sandbox, path: String",
        "Runs the sandbox in an existing network namespace, e.g. \"/run/netns/NAME\" made by
        `ip netns add` (entering one needs CAP_SYS_ADMIN over it: root).",
        |ctx: NativeCallContext, s: &mut Sandbox, path: &str| -> Res<()> {
            let path = path_arg(path, "network namespace path")?;
            let mut plan = s.0.borrow_mut();
            plan.namespaces.net = false;
            plan.network.mode = plan::NetMode::Join { path };
            plan.network.set_at = Some(pos(&ctx));
            Ok(())
        }
    );
    api!(
        engine,
        "forward",
        "s: Sandbox, options: Map",
        "Forwards a host port to a port inside (user-mode network only): #{ host: 8080,
        sandbox: 80, proto: \"tcp\" or \"udp\" (default tcp), address: the host address to
        listen on (default \"127.0.0.1\"; \"0.0.0.0\" for every one) }.",
        |ctx: NativeCallContext, s: &mut Sandbox, o: Map| add_forward(&ctx, s, &o)
    );
    api!(
        engine,
        "forward",
        "s: Sandbox, host_port: int, sandbox_port: int",
        "Forwards TCP port `host_port` on the host's 127.0.0.1 to `sandbox_port` inside.",
        |ctx: NativeCallContext, s: &mut Sandbox, host: i64, sandbox: i64| {
            let mut o = Map::new();
            o.insert("host".into(), Dynamic::from(host));
            o.insert("sandbox".into(), Dynamic::from(sandbox));
            add_forward(&ctx, s, &o)
        }
    );
    api!(
        engine,
        "allow_tcp",
        "s: Sandbox, options: Map",
        "Restricts TCP with landlock: #{ connect: [80, 443] } lets the program connect only to
        these ports (on any address), #{ bind: [8080] } bind only these; [] allows none. A key
        left out stays unrestricted. UDP cannot be restricted this way.",
        |ctx: NativeCallContext, s: &mut Sandbox, o: Map| -> Res<()> {
            let o: TcpOpts = options(&o, "allow_tcp")?;
            let list = |l: Option<Vec<i64>>, what: &str| -> Res<Option<Vec<u16>>> {
                l.map(|l| l.into_iter().map(|p| port_arg(p, what)).collect())
                    .transpose()
            };
            let connect = list(o.connect, "allow_tcp connect")?;
            let bind = list(o.bind, "allow_tcp bind")?;
            // The same rules as s.landlock(#{ connect_tcp, bind_tcp }).
            let mut plan = s.0.borrow_mut();
            let l = &mut plan.security.landlock;
            if !l.enabled {
                return err("allow_tcp needs landlock, which this profile turned off");
            }
            if connect.is_some() {
                l.connect_tcp = connect;
            }
            if bind.is_some() {
                l.bind_tcp = bind;
            }
            l.net_at = Some(pos(&ctx));
            Ok(())
        }
    );
}

#[cfg(test)]
mod tests {
    use crate::plan::{NetMode, Plan, Proto};

    fn eval(body: &str) -> Result<Plan, String> {
        crate::script::tests::wrapped(body)
    }

    #[test]
    fn modes_set_the_namespace_and_the_position() {
        let p = eval("s.network(\"user\", #{ host_loopback: true });").unwrap();
        let user = p.network.user().unwrap();
        assert!(user.host_loopback && user.dns);
        assert!(p.namespaces.net);
        assert_eq!(p.network.set_at.as_ref().unwrap().line, 2);
        let p = eval("s.network(\"host\");").unwrap();
        assert_eq!(p.network.mode, NetMode::Host);
        assert!(!p.namespaces.net);
        let p = eval("s.network(\"host\");\ns.network(\"none\");").unwrap();
        assert_eq!(p.network.mode, NetMode::None);
        assert!(p.namespaces.net);
        let p = eval("s.share([\"net\"]);").unwrap();
        assert_eq!(p.network.mode, NetMode::Host);
        let p = eval("s.network_join(\"/run/netns/lab\");").unwrap();
        assert_eq!(
            p.network.mode,
            NetMode::Join {
                path: "/run/netns/lab".into()
            }
        );
        assert!(!p.namespaces.net);
    }

    #[test]
    fn forwards_and_tcp_rules_are_recorded() {
        let p = eval(
            "s.network(\"user\");\ns.forward(8080, 80);\n\
             s.forward(#{ host: 5353, proto: \"udp\", address: \"0.0.0.0\" });\n\
             s.allow_tcp(#{ connect: [80, 443] });",
        )
        .unwrap();
        let f = &p.network.forwards;
        assert_eq!(
            (f[0].op.host, f[0].op.sandbox, f[0].op.proto),
            (8080, 80, Proto::Tcp)
        );
        assert_eq!(f[0].op.address, "127.0.0.1");
        assert_eq!(
            (f[1].op.host, f[1].op.sandbox, f[1].op.proto),
            (5353, 5353, Proto::Udp)
        );
        assert_eq!(f[1].at.line, 4);
        assert_eq!(p.security.landlock.connect_tcp, Some(vec![80, 443]));
        assert_eq!(p.security.landlock.bind_tcp, None);
    }

    #[test]
    fn bad_input_fails_at_its_line() {
        for (body, needle) in [
            ("s.network(\"wifi\");", "not known"),
            ("s.network(\"none\", #{ dns: false });", "takes no options"),
            ("s.network(\"user\", #{ dnss: false });", "dnss"),
            ("s.network(\"user\", #{ helper: \"vpn\" });", "not known"),
            (
                "s.network(\"user\", #{ dns_servers: [\"resolver\"] });",
                "not an IP",
            ),
            ("s.forward(#{ host: 70000 });", "out of range"),
            ("s.forward(#{ host: 80, proto: \"sctp\" });", "sctp"),
            ("s.forward(#{ host: 80, address: \"localhost\" });", "IPv4"),
            ("s.network_join(\"netns/x\");", "relative"),
            ("s.allow_tcp(#{ connect: [0] });", "out of range"),
        ] {
            let e = eval(body).unwrap_err();
            assert!(e.contains(needle), "{body}: {e}");
            assert!(e.contains("p.rhai:2:"), "{body}: {e}");
        }
    }
}
