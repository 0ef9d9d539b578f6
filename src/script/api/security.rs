//! The security calls: seccomp, landlock, resource limits and the timeout.
//! Each edits the plan's policy as data; a later rule for the same syscall
//! replaces an earlier one, so a profile can start from a library's policy
//! and adjust it.

use super::{err, options, pos, strings, Res, Sandbox};
// `api!` comes from the parent module.
use crate::plan::Step;
use crate::policy::landlock::{self, MinAbi, PathRule};
use crate::policy::limits::{self, Rlimit, Timeout};
use crate::policy::seccomp::{self, Action, Base, Cond, Mode, Test, FAMILIES};
use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};
use serde::Deserialize;

/// An integer or a name ("EPERM", "unlimited", "10s").
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged, expecting = "expected an int or a string")]
enum IntOr {
    Int(i64),
    Text(String),
}

impl IntOr {
    fn show(&self) -> String {
        match self {
            IntOr::Int(n) => n.to_string(),
            IntOr::Text(t) => format!("{t:?}"),
        }
    }
}

/// The names of a table, for messages: "EPERM, ENOENT, ...".
fn known<T>(table: &[(&str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// One syscall name or an array of them.
fn names(v: &Dynamic, what: &str) -> Res<Vec<String>> {
    if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
        return Ok(vec![s.to_string()]);
    }
    match v.clone().try_cast::<Array>() {
        Some(a) => strings(&a, what),
        None => err(format!(
            "{what}: expected a syscall name or an array of names, found a {}",
            v.type_name()
        )),
    }
}

fn errno_arg(v: &IntOr) -> Res<u16> {
    match v {
        IntOr::Int(n) if (1..=4095).contains(n) => Ok(*n as u16),
        IntOr::Text(t) => seccomp::errno_by_name(t).map_or_else(
            || {
                err(format!(
                    "unknown errno {t:?}; use a number or one of {}",
                    known(seccomp::ERRNO_NAMES)
                ))
            },
            Ok,
        ),
        _ => err(format!("errno {} is out of range (1 to 4095)", v.show())),
    }
}

/// The options of a rule: its action and an optional argument condition.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RuleOpts {
    errno: Option<IntOr>,
    action: Option<String>,
    arg: Option<i64>,
    eq: Option<i64>,
    ne: Option<i64>,
    mask: Option<i64>,
    any_bits: Option<i64>,
    #[serde(rename = "in")]
    in_: Option<Vec<i64>>,
    not_in: Option<Vec<i64>>,
    bits: Option<i64>,
}

/// Arguments the kernel reads as 32-bit ints: a condition on them compares
/// only the low half unless the profile says `bits: 64`.
const INT_ARGS: &[(&str, u8)] = &[
    ("ioctl", 1),
    ("socket", 0),
    ("socket", 1),
    ("socket", 2),
    ("socketpair", 0),
    ("personality", 0),
    ("unshare", 0),
    ("setns", 1),
    ("fcntl", 1),
    ("prctl", 0),
    ("kill", 1),
    ("tgkill", 2),
    ("setsockopt", 1),
    ("setsockopt", 2),
    ("getsockopt", 1),
    ("getsockopt", 2),
    ("open", 1),
    ("openat", 2),
    ("mprotect", 2),
    ("mmap", 2),
    ("mmap", 3),
];

impl RuleOpts {
    fn action(&self, default: Action) -> Res<Action> {
        match (self.action.as_deref(), &self.errno) {
            (None, None) => Ok(default),
            (None | Some("errno"), Some(e)) => Ok(Action::Errno(errno_arg(e)?)),
            (Some("errno"), None) => Ok(Action::EPERM),
            (Some(a), Some(_)) => err(format!(
                "action {a:?} and errno contradict each other: errno goes with action \"errno\""
            )),
            (Some("kill"), None) => Ok(Action::Kill),
            (Some("log"), None) => Ok(Action::Log),
            (Some("trap"), None) => Ok(Action::Trap),
            (Some("allow"), None) => Ok(Action::Allow),
            (Some(a), None) => err(format!(
                "unknown action {a:?}; use \"errno\" (with errno: N), \"kill\", \"log\", \"trap\" or \"allow\""
            )),
        }
    }

    fn cond(&self, calls: &[String]) -> Res<Option<Cond>> {
        let tests: Vec<Test> = [
            self.eq.map(|v| match self.mask {
                Some(m) => Test::MaskedEq {
                    mask: m as u64,
                    value: v as u64,
                },
                None => Test::Eq(v as u64),
            }),
            self.ne.map(|v| Test::Ne(v as u64)),
            self.any_bits.map(|v| Test::AnyBits(v as u64)),
            self.in_
                .as_ref()
                .map(|v| Test::In(v.iter().map(|x| *x as u64).collect())),
            self.not_in
                .as_ref()
                .map(|v| Test::NotIn(v.iter().map(|x| *x as u64).collect())),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.mask.is_some() && self.eq.is_none() {
            return err("mask goes with eq: #{ arg: 0, mask: 0xff, eq: 3 }");
        }
        let test = match (self.arg, tests.len()) {
            (None, 0) if self.bits.is_none() => return Ok(None),
            (None, _) => return err("a condition needs arg: the argument's index, 0 to 5"),
            (Some(_), 0) => {
                return err("arg needs a test: one of eq (with mask), ne, any_bits, in, not_in")
            }
            (Some(_), 1) => tests.into_iter().next().expect("one test"),
            (Some(_), _) => {
                return err("one condition per rule: give only one of eq, ne, any_bits, in, not_in")
            }
        };
        let arg = self.arg.unwrap_or(0);
        if !(0..=5).contains(&arg) {
            return err(format!(
                "arg {arg} is out of range: syscalls have arguments 0 to 5"
            ));
        }
        let arg = arg as u8;
        let low32 = match self.bits {
            Some(32) => true,
            Some(64) => false,
            Some(b) => return err(format!("bits must be 32 or 64, not {b}")),
            None => {
                let expanded = seccomp::expand_all(calls).or_else(err)?;
                expanded.iter().all(|c| INT_ARGS.contains(&(c, arg)))
            }
        };
        Ok(Some(Cond { arg, test, low32 }))
    }
}

fn rule(
    ctx: &NativeCallContext,
    s: &Sandbox,
    names_v: &Dynamic,
    opts: &Map,
    allow: bool,
) -> Res<()> {
    let what = if allow {
        "seccomp_allow"
    } else {
        "seccomp_deny"
    };
    let list = names(names_v, what)?;
    let o: RuleOpts = options(opts, what)?;
    let action = if allow {
        if o.action.is_some() || o.errno.is_some() {
            return err("seccomp_allow takes no action or errno; use seccomp_deny for those");
        }
        Action::Allow
    } else {
        let a = o.action(Action::EPERM)?;
        if a == Action::Allow {
            return err("seccomp_deny with action \"allow\" contradicts itself; use seccomp_allow");
        }
        a
    };
    let cond = o.cond(&list)?;
    let at = pos(ctx);
    s.0.borrow_mut()
        .security
        .seccomp
        .set(&list, action, cond, &at)
        .or_else(err)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct SeccompOpts {
    base: Option<String>,
    mode: Option<String>,
    unlisted: Option<IntOr>,
    nested_namespaces: Option<bool>,
    socket_families: Option<Families>,
    personality: Option<String>,
    abi: Option<Vec<String>>,
    allow: Option<Vec<String>>,
    deny: Option<Vec<String>>,
    errno: Option<IntOr>,
    action: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "expected an array of strings or a string")]
enum Families {
    Names(Vec<String>),
    Any(String),
}

fn mode_arg(m: &str) -> Res<Mode> {
    match m {
        "denylist" | "deny-list" | "blacklist" => Ok(Mode::Denylist),
        "allowlist" | "allow-list" | "whitelist" => Ok(Mode::Allowlist),
        _ => err(format!(
            "unknown seccomp mode {m:?}; use \"denylist\" (everything not denied runs) or \
             \"allowlist\" (everything not allowed is refused)"
        )),
    }
}

fn seccomp_map(ctx: &NativeCallContext, s: &Sandbox, opts: &Map) -> Res<()> {
    let o: SeccompOpts = options(opts, "seccomp")?;
    let at = pos(ctx);
    let mut plan = s.0.borrow_mut();
    let p = &mut plan.security.seccomp;
    if let Some(base) = &o.base {
        p.reset(match base.as_str() {
            "default" => Base::Default,
            "empty" => Base::Empty,
            _ => {
                return err(format!(
                    "unknown seccomp base {base:?}; use \"default\" or \"empty\""
                ))
            }
        });
    }
    if let Some(m) = &o.mode {
        p.set_mode(mode_arg(m)?, at.clone());
    }
    if let Some(u) = &o.unlisted {
        p.unlisted = match u {
            IntOr::Text(t) if t == "kill" => Action::Kill,
            IntOr::Text(t) if t == "log" => Action::Log,
            IntOr::Text(t) if t == "trap" => Action::Trap,
            other => Action::Errno(errno_arg(other)?),
        };
    }
    if let Some(on) = o.nested_namespaces {
        p.set_nested_namespaces(on, at.clone()).or_else(err)?;
    }
    match &o.socket_families {
        None => {}
        Some(Families::Any(a)) if a == "any" => p.socket_families = None,
        Some(Families::Any(a)) => {
            return err(format!(
                "socket_families: {a:?} is neither \"any\" nor a list of families"
            ))
        }
        Some(Families::Names(list)) => {
            let mut fams = Vec::new();
            for name in list {
                match FAMILIES.iter().find(|(n, _)| n == name) {
                    Some((_, v)) => fams.push(*v),
                    None => {
                        return err(format!(
                            "unknown socket family {name:?}; known: {}",
                            known(FAMILIES)
                        ))
                    }
                }
            }
            p.socket_families = Some(fams);
        }
    }
    match o.personality.as_deref() {
        None => {}
        Some("any") => p.any_personality = true,
        Some("restricted") => p.any_personality = false,
        Some(x) => {
            return err(format!(
                "personality {x:?}: use \"restricted\" (only the harmless values) or \"any\""
            ))
        }
    }
    if let Some(abis) = &o.abi {
        p.i386 = false;
        p.x32 = false;
        for a in abis {
            match a.as_str() {
                "i386" => p.i386 = true,
                "x32" => p.x32 = true,
                "native" => {}
                _ => {
                    return err(format!(
                        "unknown ABI {a:?}; 32-bit entry points are \"i386\" and \"x32\""
                    ))
                }
            }
        }
    }
    let ro = RuleOpts {
        errno: o.errno.clone(),
        action: o.action.clone(),
        ..RuleOpts::default()
    };
    let deny_action = ro.action(Action::EPERM)?;
    if (o.errno.is_some() || o.action.is_some()) && o.deny.is_none() {
        return err("errno and action apply to deny: give the calls to deny");
    }
    if deny_action == Action::Allow {
        return err("action \"allow\" goes in allow: [...], not with deny");
    }
    let allow = o.allow.unwrap_or_default();
    let deny = o.deny.unwrap_or_default();
    let a = seccomp::expand_all(&allow).or_else(err)?;
    let d = seccomp::expand_all(&deny).or_else(err)?;
    if let Some(both) = a.iter().find(|x| d.contains(x)) {
        return err(format!(
            "{both} is both allowed and denied in this call; keep it in one list"
        ));
    }
    if !allow.is_empty() {
        p.set(&allow, Action::Allow, None, &at).or_else(err)?;
    }
    if !deny.is_empty() {
        p.set(&deny, deny_action, None, &at).or_else(err)?;
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct LandlockOpts {
    enabled: Option<bool>,
    derive: Option<bool>,
    min_abi: Option<i64>,
    bind_tcp: Option<Ports>,
    connect_tcp: Option<Ports>,
    scope_signals: Option<bool>,
    scope_abstract_unix: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "expected an array of ints or \"any\"")]
enum Ports {
    List(Vec<i64>),
    Any(String),
}

fn ports(p: &Ports, what: &str) -> Res<Option<Vec<u16>>> {
    match p {
        Ports::Any(a) if a == "any" => Ok(None),
        Ports::Any(a) => err(format!(
            "{what}: {a:?} is neither \"any\" nor a list of port numbers"
        )),
        Ports::List(list) => list
            .iter()
            .map(|n| {
                u16::try_from(*n)
                    .or_else(|_| err(format!("{what}: port {n} is out of range (0 to 65535)")))
            })
            .collect::<Res<Vec<u16>>>()
            .map(Some),
    }
}

fn landlock_map(ctx: &NativeCallContext, s: &Sandbox, opts: &Map) -> Res<()> {
    let o: LandlockOpts = options(opts, "landlock")?;
    let at = pos(ctx);
    let mut plan = s.0.borrow_mut();
    let l = &mut plan.security.landlock;
    if let Some(on) = o.enabled {
        l.enabled = on;
    }
    if let Some(on) = o.derive {
        l.derive = on;
    }
    if let Some(abi) = o.min_abi {
        if !(1..=64).contains(&abi) {
            return err(format!(
                "min_abi {abi} is not a landlock ABI version (1, 2, ...)"
            ));
        }
        if !l.enabled {
            return err("min_abi requires landlock, which this profile turned off");
        }
        l.min_abi = Some(MinAbi {
            abi: abi as u32,
            at: at.clone(),
        });
    }
    if let Some(p) = &o.bind_tcp {
        l.bind_tcp = ports(p, "bind_tcp")?;
        l.net_at = Some(at.clone());
    }
    if let Some(p) = &o.connect_tcp {
        l.connect_tcp = ports(p, "connect_tcp")?;
        l.net_at = Some(at.clone());
    }
    if let Some(on) = o.scope_signals {
        l.scope_signals = on;
    }
    if let Some(on) = o.scope_abstract_unix {
        l.scope_abstract_unix = on;
    }
    if !l.enabled && l.min_abi.is_some() && o.enabled == Some(false) {
        return err("landlock cannot be turned off: min_abi was required earlier");
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct PathOpts {
    optional: bool,
}

fn landlock_allow(
    ctx: &NativeCallContext,
    s: &Sandbox,
    path: &str,
    access: &Dynamic,
    opts: &Map,
) -> Res<()> {
    let o: PathOpts = options(opts, "landlock_allow")?;
    let path = super::path_arg(path, "landlock path")?;
    let list = names(access, "landlock_allow access")?;
    let mut bits = 0;
    for a in &list {
        bits |= landlock::access_by_name(a).map_or_else(
            || {
                err(format!(
                    "unknown landlock access {a:?}; use {}",
                    known(landlock::ACCESS_NAMES)
                ))
            },
            Ok,
        )?;
    }
    s.0.borrow_mut().security.landlock.rules.push(Step {
        op: PathRule {
            path,
            access: bits,
            optional: o.optional,
        },
        at: pos(ctx),
    });
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftHard {
    soft: Option<IntOr>,
    hard: Option<IntOr>,
}

fn limit_value(v: &IntOr, bytes: bool, name: &str) -> Res<Option<u64>> {
    match v {
        IntOr::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
        IntOr::Int(n) => err(format!("rlimit {name}: {n} is negative")),
        IntOr::Text(t) if t == "unlimited" || t == "infinity" => Ok(None),
        IntOr::Text(t) if bytes => super::parse_size(t).map_or_else(
            || {
                err(format!(
                    "rlimit {name}: {:?} is not a size like \"64M\" or \"unlimited\"",
                    t.trim()
                ))
            },
            |n| Ok(Some(n)),
        ),
        IntOr::Text(t) => err(format!(
            "rlimit {name}: {t:?} is not a number or \"unlimited\""
        )),
    }
}

fn rlimit(ctx: &NativeCallContext, s: &Sandbox, name: &str, value: &Dynamic) -> Res<()> {
    let Some((resource, bytes)) = limits::rlimit_by_name(name) else {
        return err(format!(
            "unknown resource limit {name:?}; known: {}",
            limits::rlimit_names()
        ));
    };
    let parsed: IntOr = if let Some(m) = value.clone().try_cast::<Map>() {
        let sh: SoftHard = options(&m, "rlimit")?;
        let soft = sh
            .soft
            .as_ref()
            .map(|v| limit_value(v, bytes, name))
            .transpose()?;
        let hard = sh
            .hard
            .as_ref()
            .map(|v| limit_value(v, bytes, name))
            .transpose()?;
        let (soft, hard) = match (soft, hard) {
            (Some(s), Some(h)) => (s, h),
            (Some(s), None) => (s, s),
            (None, Some(h)) => (h, h),
            (None, None) => return err(format!("rlimit {name}: give soft, hard or both")),
        };
        if let (Some(s), Some(h)) = (soft, hard) {
            if s > h {
                return err(format!(
                    "rlimit {name}: the soft limit {s} is above the hard limit {h}"
                ));
            }
        }
        if let (None, Some(_)) = (soft, hard) {
            return err(format!(
                "rlimit {name}: an unlimited soft limit is above the hard limit"
            ));
        }
        return push_rlimit(ctx, s, name, resource, soft, hard);
    } else if let Ok(n) = value.as_int() {
        IntOr::Int(n)
    } else if let Some(t) = value.clone().try_cast::<rhai::ImmutableString>() {
        IntOr::Text(t.to_string())
    } else {
        return err(format!(
            "rlimit {name}: expected a number, a string or #{{ soft, hard }}, found a {}",
            value.type_name()
        ));
    };
    let v = limit_value(&parsed, bytes, name)?;
    push_rlimit(ctx, s, name, resource, v, v)
}

fn push_rlimit(
    ctx: &NativeCallContext,
    s: &Sandbox,
    name: &str,
    resource: u32,
    soft: Option<u64>,
    hard: Option<u64>,
) -> Res<()> {
    let name = name.trim_start_matches("RLIMIT_").to_ascii_lowercase();
    let mut plan = s.0.borrow_mut();
    let list = &mut plan.security.rlimits;
    list.retain(|l| l.op.resource != resource);
    list.push(Step {
        op: Rlimit {
            name,
            resource,
            soft,
            hard,
        },
        at: pos(ctx),
    });
    Ok(())
}

fn duration(v: &IntOr, what: &str) -> Res<u64> {
    let ms = match v {
        IntOr::Int(n) if *n > 0 => (*n as u64)
            .checked_mul(1000)
            .map_or_else(|| err(format!("{what}: {n} seconds is too long")), Ok)?,
        IntOr::Int(n) => return err(format!("{what}: {n} is not a positive number of seconds")),
        IntOr::Text(t) => limits::parse_duration(t).or_else(|e| err(format!("{what}: {e}")))?,
    };
    if ms == 0 {
        return err(format!("{what} must be longer than 0"));
    }
    Ok(ms)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutOpts {
    after: IntOr,
    grace: Option<IntOr>,
}

fn timeout(ctx: &NativeCallContext, s: &Sandbox, value: &Dynamic) -> Res<()> {
    let (after, grace) = if let Some(m) = value.clone().try_cast::<Map>() {
        let o: TimeoutOpts = options(&m, "timeout")?;
        (o.after, o.grace)
    } else if let Ok(n) = value.as_int() {
        (IntOr::Int(n), None)
    } else if let Some(t) = value.clone().try_cast::<rhai::ImmutableString>() {
        (IntOr::Text(t.to_string()), None)
    } else {
        return err(format!(
            "timeout: expected seconds, a duration like \"30s\", or #{{ after, grace }}, found a {}",
            value.type_name()
        ));
    };
    let ms = duration(&after, "timeout")?;
    let grace_ms = match &grace {
        Some(g) => duration(g, "timeout grace")?,
        None => limits::DEFAULT_GRACE_MS,
    };
    s.0.borrow_mut().security.timeout = Some(Step {
        op: Timeout { ms, grace_ms },
        at: pos(ctx),
    });
    Ok(())
}

/// Registers the security calls and the `landlock_abi()` host query.
pub fn register(engine: &mut Engine) {
    let none = Map::new;
    api!(
        engine,
        "landlock_abi",
        "-> int",
        "The landlock ABI version the running kernel offers (0: no landlock).",
        || crate::sys::landlock::abi() as i64
    );
    api!(
        engine,
        "seccomp",
        "s: Sandbox, options: Map",
        "Edits the seccomp policy. Every sandbox starts from moksha's default filter (Flatpak's
        and Docker's default denials: @mount, @module, @debug, @keyring, @clock, @swap,
        @reboot, @obsolete, @raw-io, @io-uring, bpf, userfaultfd, open_by_handle_at, ...).
        Options, applied in this order:
        base: \"default\" or \"empty\" (start over; empty keeps only the always-on filters);
        mode: \"denylist\" (default: what is not denied runs) or \"allowlist\" (what is not
        allowed gets `unlisted`, EPERM by default; the list must include execve);
        unlisted: errno number or name, or \"kill\", for allow-list mode;
        nested_namespaces: true lets the program create namespaces (clone/unshare flags,
        setns, clone3; default false: EPERM, and ENOSYS for clone3);
        socket_families: [\"unix\", \"inet\", \"inet6\", \"netlink\", \"packet\", ...] or
        \"any\" (others get EAFNOSUPPORT);
        personality: \"restricted\" (default) or \"any\";
        abi: [\"i386\", \"x32\"] filters 32-bit entry points like native ones instead of
        refusing them (EPERM);
        allow: [names]; deny: [names] with errno (number or \"EPERM\"-style name) or
        action (\"kill\", \"log\", \"trap\"). Names are syscalls or @groups. A later rule for
        a syscall replaces an earlier one; TIOCSTI and TIOCLINUX ioctls are always refused.",
        |ctx: NativeCallContext, s: &mut Sandbox, o: Map| seccomp_map(&ctx, s, &o)
    );
    api!(
        engine,
        "seccomp_mode",
        "s: Sandbox, mode: String",
        "\"allowlist\": every syscall not allowed is refused (EPERM); \"denylist\" (default):
        every syscall not denied runs.",
        |ctx: NativeCallContext, s: &mut Sandbox, m: &str| -> Res<()> {
            let mode = mode_arg(m)?;
            s.0.borrow_mut().security.seccomp.set_mode(mode, pos(&ctx));
            Ok(())
        }
    );
    api!(
        engine,
        "seccomp_allow",
        "s: Sandbox, calls: Array",
        "Allows syscalls or @groups (a name or an array), replacing earlier rules for them.
        The argument filters (ioctl TIOCSTI, socket families, namespace flags, personality)
        stay: change them with seccomp(#{ ... }).",
        move |ctx: NativeCallContext, s: &mut Sandbox, n: Dynamic| rule(&ctx, s, &n, &none(), true)
    );
    api!(
        engine,
        "seccomp_allow",
        "s: Sandbox, calls: Array, condition: Map",
        "Allows syscalls only when an argument matches, e.g. #{ arg: 1, eq: 0x5401 } (allow-list
        mode). Conditions: arg (0-5) with eq (and mask), ne, any_bits, in: [...] or
        not_in: [...]; bits: 32 compares the low half only (the default for int arguments
        such as an ioctl request or a socket family).",
        |ctx: NativeCallContext, s: &mut Sandbox, n: Dynamic, o: Map| rule(&ctx, s, &n, &o, true)
    );
    api!(
        engine,
        "seccomp_deny",
        "s: Sandbox, calls: Array",
        "Denies syscalls or @groups (a name or an array) with EPERM, replacing earlier rules.",
        move |ctx: NativeCallContext, s: &mut Sandbox, n: Dynamic| rule(
            &ctx,
            s,
            &n,
            &none(),
            false
        )
    );
    api!(
        engine,
        "seccomp_deny",
        "s: Sandbox, calls: Array, options: Map",
        "Denies syscalls or @groups with a chosen action: #{ errno: 38 } or #{ errno: \"ENOSYS\" },
        #{ action: \"kill\" } (kills the process), #{ action: \"log\" } (runs it and logs it),
        #{ action: \"trap\" } (SIGSYS). With a condition (as for seccomp_allow), only matching
        calls are denied, e.g. seccomp_deny(\"ioctl\", #{ arg: 1, eq: 0x4004_5432 }).",
        |ctx: NativeCallContext, s: &mut Sandbox, n: Dynamic, o: Map| rule(&ctx, s, &n, &o, false)
    );
    api!(
        engine,
        "landlock",
        "s: Sandbox, options: Map",
        "Edits the landlock policy. Landlock is on by default, best effort (what the kernel's
        ABI offers; `moksha plan` says what was left out), with filesystem rules derived from
        the mounts: read-only binds read+execute, read-write binds, tmpfs, proc and dev
        read+write, write_file read; the tmpfs root can only be listed. Options:
        enabled (false turns landlock off); derive (false: only landlock_allow rules);
        min_abi: N (fail before running on a kernel with an older ABI);
        bind_tcp / connect_tcp: [ports] allowed, or \"any\" (default, ABI 4);
        scope_signals, scope_abstract_unix (default true, ABI 6): the program cannot signal
        processes or reach abstract unix sockets outside the sandbox.",
        |ctx: NativeCallContext, s: &mut Sandbox, o: Map| landlock_map(&ctx, s, &o)
    );
    api!(
        engine,
        "landlock_allow",
        "s: Sandbox, path: String, access: Array",
        "Grants access beneath `path` (inside the sandbox): \"read\", \"write\", \"execute\",
        \"list\" (directories only), \"ioctl\" (devices), \"make_device\".",
        move |ctx: NativeCallContext, s: &mut Sandbox, p: &str, a: Dynamic| landlock_allow(
            &ctx,
            s,
            p,
            &a,
            &none()
        )
    );
    api!(
        engine,
        "landlock_allow",
        "s: Sandbox, path: String, access: Array, options: Map",
        "As landlock_allow(path, access); options: optional (skip the rule when the path is
        missing inside).",
        |ctx: NativeCallContext, s: &mut Sandbox, p: &str, a: Dynamic, o: Map| landlock_allow(
            &ctx, s, p, &a, &o
        )
    );
    api!(
        engine,
        "rlimit",
        "s: Sandbox, name: String, value: ?",
        "Sets a resource limit for the program: nofile, nproc, as, cpu, fsize, core, memlock,
        stack, data, locks, msgqueue, nice, rss, rtprio, rttime, sigpending. The value is a
        number (soft and hard), \"unlimited\", a size like \"512M\" for byte limits, or
        #{ soft: N, hard: M }. Only real root can raise a hard limit.",
        |ctx: NativeCallContext, s: &mut Sandbox, name: &str, v: Dynamic| rlimit(&ctx, s, name, &v)
    );
    api!(
        engine,
        "rlimits",
        "s: Sandbox, limits: Map",
        "Sets several resource limits at once: #{ nofile: 1024, nproc: 64, as: \"4G\" }.",
        |ctx: NativeCallContext, s: &mut Sandbox, m: Map| -> Res<()> {
            for (name, v) in m {
                rlimit(&ctx, s, &name, &v)?;
            }
            Ok(())
        }
    );
    api!(
        engine,
        "timeout",
        "s: Sandbox, limit: ?",
        "Ends the sandbox after a wall-clock time: seconds, \"500ms\", \"30s\", \"5m\", \"1h\",
        or #{ after: \"30s\", grace: \"2s\" }. The program gets SIGTERM, then SIGKILL after the
        grace period (default 5s), and `moksha exec` exits with status 124 and a message.",
        |ctx: NativeCallContext, s: &mut Sandbox, v: Dynamic| timeout(&ctx, s, &v)
    );
}
