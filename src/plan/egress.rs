//! Egress by domain name (plan section `network.egress`): the rules a
//! profile gives with `s.egress(...)`, and the pure decisions the proxy
//! (launch/egress/) makes with them. A sandbox with egress has a network
//! namespace of its own with only loopback; the proxy listens on
//! 127.0.0.1:`PORT` inside it and connects out from the host, so a
//! connection either goes through these rules or nowhere.

use super::{Pos, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

/// The proxy's port on the sandbox's own 127.0.0.1 (squid's, the one
/// proxy-aware tools guess first). The namespace is the sandbox's alone, so
/// nothing else can hold it.
pub const PORT: u16 = 3128;
/// The ports an allow entry without its own `:port` gets when the call
/// names none.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// What a rule matches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Host {
    /// Every name (not IP addresses: those need IP rules).
    AnyName,
    /// Exactly this name (lowercase, no trailing dot).
    Name(String),
    /// `*.suffix`: every name below `suffix`, not `suffix` itself.
    Below(String),
    /// An address or a network (`prefix` bits).
    Net { addr: IpAddr, prefix: u8 },
}

impl Host {
    /// The rule's host as a profile writes it.
    pub fn shown(&self) -> String {
        match self {
            Host::AnyName => "*".into(),
            Host::Name(n) => n.clone(),
            Host::Below(s) => format!("*.{s}"),
            Host::Net { addr, prefix } => {
                let full = if addr.is_ipv4() { 32 } else { 128 };
                if *prefix == full {
                    addr.to_string()
                } else {
                    format!("{addr}/{prefix}")
                }
            }
        }
    }

    fn matches_name(&self, name: &str) -> bool {
        match self {
            Host::AnyName => true,
            Host::Name(n) => n == name,
            Host::Below(s) => name
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            Host::Net { .. } => false,
        }
    }

    fn matches_addr(&self, ip: IpAddr) -> bool {
        let Host::Net { addr, prefix } = self else {
            return false;
        };
        in_net(ip, *addr, *prefix)
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let ip = canonical(ip);
    match (ip, canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Allow or deny.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Deny,
}

/// One rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub action: Action,
    pub host: Host,
    /// The ports it covers; `None` (deny rules without `:port`) is every port.
    pub ports: Option<Vec<u16>>,
    /// Why (deny rules): said in the refusal, the 403's body and the log.
    pub reason: Option<String>,
}

impl Rule {
    fn covers_port(&self, port: u16) -> bool {
        self.ports.as_ref().is_none_or(|p| p.contains(&port))
    }

    /// The rule as a profile writes it, ports included.
    pub fn shown(&self) -> String {
        let host = self.host.shown();
        let host = match (&self.host, &self.ports) {
            (Host::Net { addr, .. }, Some(_)) if addr.is_ipv6() => format!("[{host}]"),
            _ => host,
        };
        match &self.ports {
            None => host,
            Some(p) => format!(
                "{host}:{}",
                p.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
            ),
        }
    }
}

/// The egress section: rules in the order given, and the test resolver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    pub rules: Vec<Step<Rule>>,
    /// Names the proxy resolves to these addresses instead of asking DNS
    /// (like curl --resolve): for tests against local servers. A mapped
    /// address is checked like any other (loopback needs an IP rule).
    #[serde(default)]
    pub resolve: BTreeMap<String, IpAddr>,
}

/// Parses an entry of `allow` or `deny`: `name`, `*.name`, `*`,
/// `name:port`, an IPv4 address or network (`10.0.0.0/8`, with `:port`),
/// an IPv6 one (`::1`, `fd00::/8`, `[::1]:443`). Returns the host and the
/// entry's own port, if any.
pub fn parse_entry(text: &str) -> Result<(Host, Option<u16>), String> {
    let bad = |why: &str| Err(format!("egress entry {text:?}: {why}"));
    let t = text.trim();
    if t.is_empty() {
        return bad("empty");
    }
    // [v6]:port, or a bare v6 (more than one colon), or host[:port].
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return bad("no closing ]");
        };
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return bad("text after ]"),
        }
    } else if t.matches(':').count() > 1 {
        (t, None)
    } else {
        match t.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (t, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return bad("the port is not a number from 1 to 65535"),
        },
    };
    if let Some((a, p)) = host.split_once('/') {
        let Ok(addr) = a.parse::<IpAddr>() else {
            return bad("a /prefix needs an IP address before it");
        };
        let full = if addr.is_ipv4() { 32 } else { 128 };
        return match p.parse::<u8>() {
            Ok(n) if n <= full => Ok((Host::Net { addr, prefix: n }, port)),
            _ => bad(&format!("the prefix is not a number from 0 to {full}")),
        };
    }
    if let Ok(addr) = host.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Ok((Host::Net { addr, prefix }, port));
    }
    if host == "*" {
        return Ok((Host::AnyName, port));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        return match normal_name(suffix) {
            Some(s) => Ok((Host::Below(s), port)),
            None => bad("not a domain name after *."),
        };
    }
    match normal_name(host) {
        Some(n) => Ok((Host::Name(n), port)),
        None => bad(
            "not a domain name, `*.name`, `*`, an IP address or a network (a `*` only stands \
             first, as `*.`)",
        ),
    }
}

/// A domain name as rules compare it: lowercase, without a trailing dot;
/// `None` unless it is letters, digits, `-`, `_` and dots, in labels of 1
/// to 63 bytes, 253 in all.
pub fn normal_name(name: &str) -> Option<String> {
    let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(n)
}

/// A target as the program names it: a domain name or an IP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Name(String),
    Ip(IpAddr),
}

impl Target {
    /// Parses a host as it comes in a request (brackets around IPv6 allowed).
    pub fn parse(host: &str) -> Result<Target, String> {
        let h = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = h.parse::<IpAddr>() {
            return Ok(Target::Ip(canonical(ip)));
        }
        normal_name(h)
            .map(Target::Name)
            .ok_or_else(|| format!("{:?} is not a domain name or an IP address", host))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => f.write_str(n),
            Target::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Target::Ip(a) => write!(f, "{a}"),
        }
    }
}

/// Whether an address is one of the host's own or a private network's:
/// loopback, RFC 1918, shared (CGNAT), link-local, unique-local,
/// unspecified, multicast, broadcast, reserved, benchmarking. A name that
/// resolves to one needs an IP rule (DNS rebinding).
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                // NAT64 and IPv4-compatible addresses carry an IPv4 address
                // the host may route anywhere.
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || s[..6].iter().all(|&x| x == 0)
        }
    }
}

/// A refusal: why, and the rule that refused (none: nothing allowed it).
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub why: String,
    pub rule: Option<usize>,
}

impl Egress {
    fn refused(&self, i: Option<usize>, why: String) -> Refusal {
        Refusal { why, rule: i }
    }

    /// The rule `i` and where the profile gave it, for messages.
    pub fn rule_text(&self, i: usize) -> String {
        let r = &self.rules[i];
        format!("{:?} at {}", r.op.shown(), r.at)
    }

    fn deny(&self, i: usize) -> Refusal {
        let r = &self.rules[i];
        let why = match &r.op.reason {
            Some(reason) => format!("denied by {}: {reason}", self.rule_text(i)),
            None => format!("denied by {}", self.rule_text(i)),
        };
        self.refused(Some(i), why)
    }

    fn find(&self, action: Action, m: impl Fn(&Rule) -> bool) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.op.action == action && m(&r.op))
    }

    /// The first decision, on the target as the program named it: the
    /// rule that allows it, or why not. (A name is checked again once
    /// resolved: `check_resolved`.)
    pub fn check_target(&self, target: &Target, port: u16) -> Result<usize, Refusal> {
        match target {
            Target::Ip(ip) => {
                if let Some(i) = self.find(Action::Deny, |r| {
                    r.host.matches_addr(*ip) && r.covers_port(port)
                }) {
                    return Err(self.deny(i));
                }
                if let Some(i) = self.find(Action::Allow, |r| {
                    r.host.matches_addr(*ip) && r.covers_port(port)
                }) {
                    return Ok(i);
                }
                match self.find(Action::Allow, |r| r.host.matches_addr(*ip)) {
                    Some(i) => Err(self.refused(
                        Some(i),
                        format!(
                            "port {port} is not allowed ({} allows others)",
                            self.rule_text(i)
                        ),
                    )),
                    None => Err(self.refused(
                        None,
                        "an IP address, and no IP rule allows it (name the host instead, or add \
                         the address or its network to allow)"
                            .into(),
                    )),
                }
            }
            Target::Name(name) => {
                if let Some(i) = self.find(Action::Deny, |r| {
                    r.host.matches_name(name) && r.covers_port(port)
                }) {
                    return Err(self.deny(i));
                }
                if let Some(i) = self.find(Action::Allow, |r| {
                    r.host.matches_name(name) && r.covers_port(port)
                }) {
                    return Ok(i);
                }
                match self.find(Action::Allow, |r| r.host.matches_name(name)) {
                    Some(i) => Err(self.refused(
                        Some(i),
                        format!(
                            "port {port} is not allowed ({} allows others)",
                            self.rule_text(i)
                        ),
                    )),
                    None => Err(self.refused(None, "not on the allow list".into())),
                }
            }
        }
    }

    /// The decision on an address a name resolved to: deny rules apply;
    /// an internal address needs an IP rule that allows it on `port`.
    pub fn check_resolved(&self, ip: IpAddr, port: u16) -> Result<(), Refusal> {
        if let Some(i) = self.find(Action::Deny, |r| {
            r.host.matches_addr(ip) && r.covers_port(port)
        }) {
            return Err(self.deny(i));
        }
        if !is_internal(ip) {
            return Ok(());
        }
        match self.find(Action::Allow, |r| {
            r.host.matches_addr(ip) && r.covers_port(port)
        }) {
            Some(_) => Ok(()),
            None => Err(self.refused(
                None,
                format!(
                    "it resolves to {}, a loopback or private address, which no IP rule allows \
                     (DNS rebinding guard; allow the address or its network to reach it)",
                    canonical(ip)
                ),
            )),
        }
    }

    /// The section of `moksha plan`.
    pub fn describe(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "  egress     by name, through moksha's proxy on 127.0.0.1:{PORT} inside (HTTP \
             CONNECT, plain HTTP, SOCKS5); no other route out"
        );
        for r in &self.rules {
            let verb = match r.op.action {
                Action::Allow => "allow",
                Action::Deny => "deny ",
            };
            let reason =
                r.op.reason
                    .as_ref()
                    .map(|w| format!(" ({})", crate::text::line(w)))
                    .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {verb}      {}{reason}    [{}]",
                crate::text::line(&r.op.shown()),
                r.at
            );
        }
        for (name, ip) in &self.resolve {
            let _ = writeln!(
                o,
                "  resolve    {} -> {ip} (test resolver: instead of DNS)",
                crate::text::line(name)
            );
        }
    }

    /// Checks the rules: they come from Rhai (parsed there) or a JSON plan.
    pub fn validate(&self) -> Result<(), (String, Option<Pos>)> {
        for r in &self.rules {
            let bad = |m: String| Err((m, Some(r.at.clone())));
            match &r.op.host {
                Host::Name(n) | Host::Below(n) if normal_name(n).as_deref() != Some(n) => {
                    return bad(format!("egress rule {n:?} is not a lowercase domain name"))
                }
                Host::Net { addr, prefix } if *prefix > if addr.is_ipv4() { 32 } else { 128 } => {
                    return bad(format!(
                        "egress rule {addr}/{prefix}: the prefix is too long"
                    ))
                }
                _ => {}
            }
            if r.op
                .ports
                .as_ref()
                .is_some_and(|p| p.is_empty() || p.contains(&0))
            {
                return bad(format!(
                    "egress rule {:?}: ports must be 1 to 65535, at least one",
                    r.op.shown()
                ));
            }
            if r.op.action == Action::Allow && r.op.ports.is_none() {
                return bad(format!("egress allow rule {:?} has no ports", r.op.shown()));
            }
        }
        for name in self.resolve.keys() {
            if normal_name(name).as_deref() != Some(name) {
                return Err((
                    format!("egress resolve: {name:?} is not a lowercase domain name"),
                    self.rules.first().map(|r| r.at.clone()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule for the tests: action, entry, ports without its own, reason.
    type Entry<'a> = (Action, &'a str, Option<Vec<u16>>, Option<&'a str>);

    fn rules(list: &[Entry]) -> Egress {
        Egress {
            rules: list
                .iter()
                .enumerate()
                .map(|(i, (action, host, ports, reason))| {
                    let (host, own) = parse_entry(host).unwrap();
                    Step {
                        op: Rule {
                            action: *action,
                            host,
                            ports: own.map(|p| vec![p]).or(ports.clone()),
                            reason: reason.map(str::to_string),
                        },
                        at: Pos {
                            file: "p.rhai".into(),
                            line: i + 1,
                            col: 1,
                        },
                    }
                })
                .collect(),
            resolve: BTreeMap::new(),
        }
    }

    fn name(n: &str) -> Target {
        Target::parse(n).unwrap()
    }

    #[test]
    fn entries_parse_as_names_wildcards_ports_and_networks() {
        let p = |t: &str| parse_entry(t).unwrap();
        assert_eq!(p("GitHub.com."), (Host::Name("github.com".into()), None));
        assert_eq!(
            p("crates.io:443"),
            (Host::Name("crates.io".into()), Some(443))
        );
        assert_eq!(
            p("*.example.org"),
            (Host::Below("example.org".into()), None)
        );
        assert_eq!(p("*"), (Host::AnyName, None));
        let v4: IpAddr = "10.0.0.0".parse().unwrap();
        assert_eq!(
            p("10.0.0.0/8:22"),
            (
                Host::Net {
                    addr: v4,
                    prefix: 8
                },
                Some(22)
            )
        );
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(
            p("[::1]:443"),
            (
                Host::Net {
                    addr: v6,
                    prefix: 128
                },
                Some(443)
            )
        );
        assert_eq!(
            p("::1"),
            (
                Host::Net {
                    addr: v6,
                    prefix: 128
                },
                None
            )
        );
        for bad in [
            "",
            "a:0",
            "a:x",
            "x/8",
            "10.0.0.0/33",
            "a.*.b",
            "ex ample.com",
            "[::1",
        ] {
            assert!(parse_entry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_match_exactly_or_below_a_wildcard_on_their_ports() {
        let web = Some(vec![80, 443]);
        let e = rules(&[
            (Action::Allow, "github.com", web.clone(), None),
            (Action::Allow, "*.githubusercontent.com", web.clone(), None),
            (Action::Allow, "crates.io:443", None, None),
            (
                Action::Deny,
                "*.internal.example",
                None,
                Some("company network"),
            ),
            (Action::Allow, "*.example", web.clone(), None),
        ]);
        assert_eq!(e.check_target(&name("GITHUB.com"), 443), Ok(0));
        assert_eq!(
            e.check_target(&name("raw.githubusercontent.com"), 80),
            Ok(1)
        );
        assert!(e.check_target(&name("githubusercontent.com"), 443).is_err());
        assert!(e
            .check_target(&name("evilgithubusercontent.com"), 443)
            .is_err());
        assert_eq!(e.check_target(&name("crates.io"), 443), Ok(2));
        let r = e.check_target(&name("crates.io"), 80).unwrap_err();
        assert!(r.why.contains("port 80 is not allowed"), "{r:?}");
        let r = e
            .check_target(&name("db.internal.example"), 443)
            .unwrap_err();
        assert!(
            r.why.contains("company network") && r.rule == Some(3),
            "{r:?}"
        );
        assert_eq!(e.check_target(&name("www.example"), 443), Ok(4));
        let r = e.check_target(&name("example.net"), 443).unwrap_err();
        assert_eq!(r.why, "not on the allow list");
        let r = e.check_target(&name("140.82.112.3"), 443).unwrap_err();
        assert!(r.why.contains("IP address"), "{r:?}");
    }

    #[test]
    fn ip_rules_allow_literals_and_internal_resolutions() {
        let e = rules(&[
            (Action::Allow, "github.test", Some(vec![8080]), None),
            (Action::Allow, "127.0.0.1", Some(vec![8080]), None),
            (Action::Deny, "169.254.169.254", None, Some("metadata")),
        ]);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(e.check_target(&Target::Ip(lo), 8080), Ok(1));
        assert!(e.check_target(&Target::Ip(lo), 22).is_err());
        assert_eq!(e.check_resolved(lo, 8080), Ok(()));
        let r = e
            .check_resolved("10.1.2.3".parse().unwrap(), 8080)
            .unwrap_err();
        assert!(r.why.contains("DNS rebinding"), "{r:?}");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(e.check_resolved(mapped, 8080), Ok(()));
        assert!(e
            .check_resolved("::ffff:10.0.0.1".parse().unwrap(), 80)
            .is_err());
        assert_eq!(
            e.check_resolved("140.82.112.3".parse().unwrap(), 443),
            Ok(())
        );
        let r = e
            .check_resolved("169.254.169.254".parse().unwrap(), 80)
            .unwrap_err();
        assert!(r.why.contains("metadata"), "{r:?}");
    }

    #[test]
    fn internal_ranges() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(is_internal(a.parse().unwrap()), "{a}");
        }
        for a in ["140.82.112.3", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_internal(a.parse().unwrap()), "{a}");
        }
    }
}
