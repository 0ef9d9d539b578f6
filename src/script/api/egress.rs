//! `s.egress(...)`: egress by domain name through moksha's proxy. The plan
//! side, and the decisions, are `plan::egress`.

use super::{err, pos, Res, Sandbox};
use crate::plan::egress::{self, Action, Egress, Rule, DEFAULT_PORTS};
use crate::plan::{NetMode, Step};
use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

const KEYS: [&str; 4] = ["allow", "deny", "ports", "resolve"];
const ENTRY_KEYS: [&str; 3] = ["host", "ports", "reason"];

fn port(v: &Dynamic, what: &str) -> Res<u16> {
    match v.as_int().ok().and_then(|p| u16::try_from(p).ok()) {
        Some(p) if p > 0 => Ok(p),
        _ => err(format!("{what}: {v} is not a port (1 to 65535)")),
    }
}

fn ports(v: &Dynamic, what: &str) -> Res<Vec<u16>> {
    let Some(list) = v.clone().try_cast::<Array>() else {
        return err(format!("{what} is a list of ports, e.g. [80, 443]"));
    };
    if list.is_empty() {
        return err(format!("{what} is empty: give at least one port"));
    }
    list.iter().map(|p| port(p, what)).collect()
}

/// One entry of `allow` or `deny`: a string, or #{ host, ports, reason }.
fn entry(v: &Dynamic, action: Action, call_ports: &[u16]) -> Res<Rule> {
    let list = match action {
        Action::Allow => "allow",
        Action::Deny => "deny",
    };
    let (text, ports_given, reason) = if let Some(s) = v.clone().try_cast::<String>() {
        (s, None, None)
    } else if let Some(m) = v.clone().try_cast::<Map>() {
        if let Some(k) = m.keys().find(|k| !ENTRY_KEYS.contains(&k.as_str())) {
            return err(format!(
                "egress {list} entry option {k} is unknown (options: {})",
                ENTRY_KEYS.join(", ")
            ));
        }
        let Some(host) = m.get("host").and_then(|h| h.clone().try_cast::<String>()) else {
            return err(format!("egress {list} entry: host (a string) is required"));
        };
        let p = m
            .get("ports")
            .map(|p| ports(p, &format!("egress {list} {host:?} ports")))
            .transpose()?;
        let reason = match m.get("reason") {
            None => None,
            Some(r) => match r.clone().try_cast::<String>() {
                Some(r) => Some(r),
                None => return err(format!("egress {list} {host:?} reason is a string")),
            },
        };
        (host, p, reason)
    } else {
        return err(format!(
            "egress {list} entries are strings (\"github.com\", \"*.example.org:443\", \
             \"10.0.0.0/8\") or maps #{{ host, ports, reason }}, not {}",
            v.type_name()
        ));
    };
    if reason.is_some() && action == Action::Allow {
        return err("egress allow entries take no reason (deny entries do)");
    }
    let (host, own) = match egress::parse_entry(&text) {
        Ok(v) => v,
        Err(e) => return err(e),
    };
    if own.is_some() && ports_given.is_some() {
        return err(format!(
            "egress entry {text:?} has a :port and ports: give one"
        ));
    }
    let ports = match (own, ports_given, action) {
        (Some(p), _, _) => Some(vec![p]),
        (None, Some(p), _) => Some(p),
        (None, None, Action::Allow) => Some(call_ports.to_vec()),
        (None, None, Action::Deny) => None,
    };
    Ok(Rule {
        action,
        host,
        ports,
        reason,
    })
}

fn add_egress(ctx: &NativeCallContext, s: &Sandbox, o: &Map) -> Res<()> {
    if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return err(format!(
            "egress option {k} is unknown{} (options of egress: {})",
            crate::suggest::did_you_mean(k, KEYS.iter().copied()),
            KEYS.join(", ")
        ));
    }
    let call_ports = match o.get("ports") {
        Some(p) => ports(p, "egress ports")?,
        None => DEFAULT_PORTS.to_vec(),
    };
    let at = pos(ctx);
    let mut rules = Vec::new();
    for (key, action) in [("deny", Action::Deny), ("allow", Action::Allow)] {
        let Some(v) = o.get(key) else { continue };
        let Some(list) = v.clone().try_cast::<Array>() else {
            return err(format!("egress {key} is a list"));
        };
        for e in &list {
            rules.push(Step {
                op: entry(e, action, &call_ports)?,
                at: at.clone(),
            });
        }
    }
    let mut resolve = Vec::new();
    if let Some(v) = o.get("resolve") {
        let Some(m) = v.clone().try_cast::<Map>() else {
            return err(
                "egress resolve is a map of names to addresses: #{ \"x.test\": \"127.0.0.1\" }",
            );
        };
        for (name, addr) in m {
            let Some(n) = egress::normal_name(&name) else {
                return err(format!("egress resolve: {name:?} is not a domain name"));
            };
            let a = addr
                .clone()
                .try_cast::<String>()
                .and_then(|a| a.parse().ok());
            let Some(a) = a else {
                return err(format!(
                    "egress resolve {name:?}: {addr} is not an IP address"
                ));
            };
            resolve.push((n, a));
        }
    }
    let mut plan = s.0.borrow_mut();
    plan.namespaces.net = true;
    plan.network.mode = NetMode::None;
    plan.network.set_at = Some(at);
    let e = plan.network.egress.get_or_insert_with(Egress::default);
    e.rules.extend(rules);
    e.resolve.extend(resolve);
    Ok(())
}

pub fn register(engine: &mut Engine) {
    api!(
        engine,
        "egress",
        "s: Sandbox, rules: Map",
        "Lets the sandbox reach the network by domain name only, through moksha's proxy:
        the sandbox gets a network namespace of its own with only loopback, and a proxy on
        127.0.0.1:3128 inside (HTTP CONNECT, plain HTTP and SOCKS5; HTTP_PROXY, HTTPS_PROXY,
        ALL_PROXY and NO_PROXY are set) that connects out from the host for what the rules
        allow. Rules: allow: [\"github.com\", \"*.githubusercontent.com\" (names below, not the
        name itself), \"crates.io:443\", \"10.0.0.0/8\" (IP rules: addresses as targets, and
        loopback or private addresses a name resolves to)], deny: [\"*.corp.example\", #{ host:
        \"x.example\", reason: \"said in the refusal\" }] (deny wins), ports: the ports of
        entries without :port (default [80, 443]), resolve: #{ \"name.test\": \"127.0.0.1\" }
        (a test resolver, instead of DNS). Calls add up; a later s.network() call conflicts.",
        |ctx: NativeCallContext, s: &mut Sandbox, o: Map| add_egress(&ctx, s, &o)
    );
}

#[cfg(test)]
mod tests {
    use crate::plan::egress::{Action, Host};
    use crate::plan::{NetMode, Plan};

    fn eval(body: &str) -> Result<Plan, String> {
        crate::script::tests::wrapped(body)
    }

    #[test]
    fn rules_are_recorded_with_their_ports_and_reasons() {
        let p = eval(
            "s.network(\"host\");\n\
             s.egress(#{ allow: [\"github.com\", \"crates.io:443\", #{ host: \"*.x.test\", ports: [8080] }],\n\
             deny: [#{ host: \"*.internal.example\", reason: \"company network\" }], ports: [443],\n\
             resolve: #{ \"a.test\": \"127.0.0.1\" } });",
        )
        .unwrap();
        assert_eq!(p.network.mode, NetMode::None);
        assert!(p.namespaces.net);
        let e = p.network.egress.as_ref().unwrap();
        let r: Vec<_> = e.rules.iter().map(|r| &r.op).collect();
        assert_eq!(r[0].action, Action::Deny);
        assert_eq!(r[0].reason.as_deref(), Some("company network"));
        assert_eq!(r[0].ports, None);
        assert_eq!(r[1].host, Host::Name("github.com".into()));
        assert_eq!(r[1].ports, Some(vec![443]));
        assert_eq!(r[3].ports, Some(vec![8080]));
        assert_eq!(e.rules[0].at.line, 3);
        assert_eq!(e.resolve["a.test"].to_string(), "127.0.0.1");
        crate::plan::validate(&p).unwrap();
        // Calls add up; a later network mode conflicts at validation.
        let p = eval("s.egress(#{ allow: [\"a.test\"] });\ns.egress(#{ allow: [\"b.test\"] });")
            .unwrap();
        assert_eq!(p.network.egress.unwrap().rules.len(), 2);
        let e = eval("s.egress(#{ allow: [\"a.test\"] });\ns.network(\"user\");").unwrap_err();
        assert!(
            e.contains("egress rules need") && e.contains("p.rhai:3:"),
            "{e}"
        );
    }

    #[test]
    fn bad_rules_fail_at_their_line() {
        for (body, needle) in [
            ("s.egress(#{ alow: [] });", "alow"),
            ("s.egress(#{ allow: \"a.test\" });", "is a list"),
            ("s.egress(#{ allow: [\"a b\"] });", "not a domain name"),
            ("s.egress(#{ allow: [\"a.test:0\"] });", "port"),
            (
                "s.egress(#{ allow: [#{ host: \"a.test\", reason: \"x\" }] });",
                "no reason",
            ),
            ("s.egress(#{ deny: [#{ hots: \"a.test\" }] });", "hots"),
            ("s.egress(#{ ports: [] });", "empty"),
            (
                "s.egress(#{ resolve: #{ \"a.test\": \"local\" } });",
                "not an IP",
            ),
            ("s.egress(#{ allow: [42] });", "strings"),
        ] {
            let e = eval(body).unwrap_err();
            assert!(e.contains(needle), "{body}: {e}");
            assert!(e.contains("p.rhai:2:"), "{body}: {e}");
        }
    }
}
