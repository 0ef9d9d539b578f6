//! The whole Rhai surface of moksha, registered in one place. Each function's
//! doc text here is what `moksha api` prints and what editor definitions show.
//!
//! Every sandbox method appends to the shared plan and remembers the script
//! position of the call; host queries only read.

use super::host;
use crate::plan::{self, EnvOp, Exec, FsOp, Located, Plan, Pos, Step};
use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map, NativeCallContext};
use serde::Deserialize;
use std::cell::RefCell;
use std::rc::Rc;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// The sandbox object profiles build: a shared handle, so a library function
/// that receives it and adds a bind really adds it.
#[derive(Clone)]
pub struct Sandbox(pub Rc<RefCell<Plan>>);

/// What the engine's functions need to know about this evaluation.
#[derive(Clone, Default)]
pub struct Context {
    /// The profile path, as recorded in the plan.
    pub profile: String,
    /// Every sandbox the profile created, in order.
    pub sandboxes: Rc<RefCell<Vec<(Sandbox, Pos)>>>,
}

/// Limits on what host queries may return.
const GLOB_LIMIT: usize = 10_000;

fn err<T>(msg: impl Into<String>) -> Res<T> {
    Err(msg.into().into())
}

/// The script position of the current call.
fn pos(ctx: &NativeCallContext) -> Pos {
    let p = ctx.call_position();
    let file = ctx.call_source().unwrap_or("<profile>");
    let line = p.line().unwrap_or(0);
    Pos {
        file: file.to_string(),
        line,
        col: super::resolver::original_column(file, line, p.position().unwrap_or(0)),
    }
}

/// A path argument checked on the spot, so the error points at this call.
fn path_arg(path: &str, what: &str) -> Res<String> {
    plan::validate::check_path(path, what).or_else(err)?;
    Ok(path.to_string())
}

fn mode_arg(mode: i64, what: &str) -> Res<u32> {
    if !(0..=0o7777).contains(&mode) {
        return err(format!(
            "{what}: mode {mode:#o} is out of range (0 to 0o7777; write octal as 0o755)"
        ));
    }
    Ok(mode as u32)
}

fn strings(arr: &Array, what: &str) -> Res<Vec<String>> {
    arr.iter()
        .map(|v| {
            v.clone().into_string().or_else(|t| {
                err(format!(
                    "{what}: every element must be a string, found a {t}"
                ))
            })
        })
        .collect()
}

/// Bytes from a size written with an optional K, M or G suffix ("64M").
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 1 << 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// A size: bytes as an integer, or a string with a K, M or G suffix.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "expected bytes as an int or a string like \"64M\""
)]
enum Size {
    Bytes(i64),
    Text(String),
}

impl Size {
    fn bytes(&self) -> Res<u64> {
        let bad = || {
            err(format!(
                "size must be bytes or a string like \"64M\"; got {}",
                self.show()
            ))
        };
        match self {
            Size::Bytes(n) if *n > 0 => Ok(*n as u64),
            Size::Bytes(_) => bad(),
            Size::Text(t) => parse_size(t).filter(|n| *n > 0).map_or_else(bad, Ok),
        }
    }
    fn show(&self) -> String {
        match self {
            Size::Bytes(n) => n.to_string(),
            Size::Text(t) => format!("{t:?}"),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct BindOpts {
    rw: bool,
    dev: bool,
    optional: bool,
    replace: bool,
    create: bool,
    exec: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProtectOpts {
    under: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct OverlayOpts {
    /// "changes" (the default: kept for moksha diff/commit) or "tmpfs".
    upper: Option<String>,
    /// The changes' name (default: the sandbox's name).
    name: Option<String>,
    target: Option<String>,
    exec: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TmpfsOpts {
    size: Option<Size>,
    mode: Option<i64>,
    replace: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ReplaceOpts {
    replace: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct FileOpts {
    mode: Option<i64>,
    replace: bool,
}

impl Sandbox {
    fn step(&self, ctx: &NativeCallContext, op: FsOp) {
        self.0.borrow_mut().fs.push(Step { op, at: pos(ctx) });
    }

    fn bind(&self, ctx: &NativeCallContext, source: &str, target: &str, opts: &Map) -> Res<()> {
        let o: BindOpts = options(opts, "bind")?;
        let source = path_arg(source, "bind source")?;
        let target = path_arg(target, "bind target")?;
        self.step(
            ctx,
            FsOp::Bind {
                source,
                target,
                rw: o.rw,
                dev: o.dev,
                optional: o.optional,
                replace: o.replace,
                create: o.create,
                exec: o.exec,
            },
        );
        Ok(())
    }

    fn protect(&self, ctx: &NativeCallContext, patterns: &Array, opts: &Map) -> Res<()> {
        let o: ProtectOpts = options(opts, "protect")?;
        let under = path_arg(&o.under, "protect under")?;
        let patterns = strings(patterns, "protect")?;
        if patterns.is_empty() {
            return err("protect: give at least one pattern");
        }
        for p in &patterns {
            plan::validate::check_protect_pattern(p).or_else(err)?;
        }
        self.step(ctx, FsOp::Protect { under, patterns });
        Ok(())
    }

    fn overlay(&self, ctx: &NativeCallContext, dir: &str, opts: &Map) -> Res<()> {
        let o: OverlayOpts = options(opts, "overlay")?;
        let source = path_arg(dir, "overlay directory")?;
        let target = match &o.target {
            Some(t) => path_arg(t, "overlay target")?,
            None => source.clone(),
        };
        let changes = match o.upper.as_deref() {
            None | Some("changes") => {
                let name = o.name.unwrap_or_else(|| self.0.borrow().name.clone());
                crate::changes::Store::named(&name).map_err(|e| format!("overlay: {e}"))?;
                Some(name)
            }
            Some("tmpfs") if o.name.is_none() => None,
            Some("tmpfs") => return err("overlay: a tmpfs upper layer has no name (drop name)"),
            Some(other) => {
                return err(format!(
                    "overlay option upper: {other:?} is neither \"changes\" (kept in                      ~/.local/share/moksha/changes/NAME for moksha diff/commit/discard) nor                      \"tmpfs\" (thrown away at the end)"
                ))
            }
        };
        self.step(
            ctx,
            FsOp::Overlay {
                source,
                target,
                changes,
                exec: o.exec,
                store: None,
            },
        );
        Ok(())
    }

    fn tmpfs(&self, ctx: &NativeCallContext, target: &str, opts: &Map) -> Res<()> {
        let o: TmpfsOpts = options(opts, "tmpfs")?;
        let target = path_arg(target, "tmpfs target")?;
        let size = o.size.as_ref().map(Size::bytes).transpose()?;
        let mode = mode_arg(o.mode.unwrap_or(0o755), "tmpfs")?;
        self.step(
            ctx,
            FsOp::Tmpfs {
                target,
                size,
                mode,
                replace: o.replace,
            },
        );
        Ok(())
    }

    /// proc, dev and mqueue: a kind of mount that takes only `replace`.
    fn special(&self, ctx: &NativeCallContext, kind: &str, target: &str, opts: &Map) -> Res<()> {
        let o: ReplaceOpts = options(opts, kind)?;
        let target = path_arg(target, &format!("{kind} target"))?;
        let replace = o.replace;
        let op = match kind {
            "proc" => FsOp::Proc { target, replace },
            "dev" => FsOp::Dev { target, replace },
            _ => FsOp::Mqueue { target, replace },
        };
        self.step(ctx, op);
        Ok(())
    }

    fn symlink(&self, ctx: &NativeCallContext, to: &str, link: &str, opts: &Map) -> Res<()> {
        let o: ReplaceOpts = options(opts, "symlink")?;
        let target = path_arg(link, "symlink path")?;
        self.step(
            ctx,
            FsOp::Symlink {
                points_to: to.to_string(),
                target,
                replace: o.replace,
            },
        );
        Ok(())
    }

    /// mkdir and chmod: a path and a mode.
    fn path_mode(&self, ctx: &NativeCallContext, what: &str, path: &str, mode: i64) -> Res<()> {
        let target = path_arg(path, &format!("{what} path"))?;
        let mode = mode_arg(mode, what)?;
        let op = match what {
            "chmod" => FsOp::Chmod { target, mode },
            _ => FsOp::Mkdir { target, mode },
        };
        self.step(ctx, op);
        Ok(())
    }

    fn write_file(
        &self,
        ctx: &NativeCallContext,
        target: &str,
        content: &str,
        opts: &Map,
    ) -> Res<()> {
        let o: FileOpts = options(opts, "write_file")?;
        let target = path_arg(target, "write_file target")?;
        let mode = mode_arg(o.mode.unwrap_or(0o644), "write_file")?;
        self.step(
            ctx,
            FsOp::WriteFile {
                target,
                content: content.to_string(),
                mode,
                replace: o.replace,
            },
        );
        Ok(())
    }

    fn set_namespaces(&self, names: &Array, on: bool) -> Res<()> {
        let names = strings(names, if on { "unshare" } else { "share" })?;
        let mut plan = self.0.borrow_mut();
        for name in names {
            if name == "net" || name == "network" {
                // The network mode follows: share → host, unshare → none.
                plan::network::namespace_set(&mut plan, on);
            }
            match plan::Namespace::by_name(&name) {
                Some(ns) => *plan.namespaces.flag_mut(ns) = on,
                None => {
                    let known: Vec<&str> = plan::Namespace::ALL.iter().map(|n| n.name()).collect();
                    return err(format!(
                        "unknown namespace {name:?}; expected one of {}",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    fn env_op(&self, op: EnvOp) -> Res<()> {
        plan::validate::check_env(&op).or_else(err)?;
        self.0.borrow_mut().process.env.ops.push(op);
        Ok(())
    }
}

/// Registers one function; while `documented` runs, also notes its
/// signature and documentation (`moksha api`, "did you mean" hints).
/// `sig` is "name: Type, ..." followed by "-> Ret" when it returns a value.
/// (Rhai's `metadata` feature would keep these in the engine, with the
/// documentation of every standard function: copying it all was ~40% of
/// building an engine for every profile.)
macro_rules! api {
    ($engine:expr, $name:literal, $sig:literal, $doc:literal, $f:expr) => {{
        $crate::script::api::note($name, $sig, $doc);
        FuncRegistration::new($name).register_into_engine($engine, $f);
    }};
}

/// One API function as registered: its name, its parameters ("name:
/// Type, ...", then "-> Ret" when it returns a value) and documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFn {
    pub name: &'static str,
    pub sig: &'static str,
    pub doc: &'static str,
}

impl ApiFn {
    /// The parameters, and the return type (`()` for none).
    fn parts(&self) -> (Vec<&'static str>, &'static str) {
        let (params, ret) = match self.sig.split_once("->") {
            Some((p, r)) => (p, r.trim()),
            None => (self.sig, "()"),
        };
        let params = params
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        (params, ret)
    }

    /// `bind(s: Sandbox, path: String)`, and ` -> Ret` when it returns a
    /// value: as hints show it (a parameter of any type by its name).
    pub fn signature(&self) -> String {
        let (params, ret) = self.parts();
        let params: Vec<String> = params
            .iter()
            .map(|p| match param(p) {
                (name, None | Some("" | "?" | "_")) => name.to_string(),
                (name, Some(ty)) => format!("{name}: {ty}"),
            })
            .collect();
        let ret = match ret {
            "()" => String::new(),
            r => format!(" -> {}", shown(r)),
        };
        format!("{}({}){ret}", self.name, params.join(", "))
    }

    /// The Rhai definition editors load: `/// doc` lines, then
    /// `fn name(params) -> Ret;`.
    pub fn definition(&self) -> String {
        let (params, ret) = self.parts();
        let params: Vec<String> = params
            .iter()
            .map(|p| match param(p) {
                (name, Some(ty)) => format!("{name}: {ty}"),
                (name, None) => name.to_string(),
            })
            .collect();
        let mut out: String = self
            .doc
            .lines()
            .map(|l| format!("/// {}\n", l.trim()))
            .collect();
        out += &format!("fn {}({}) -> {};", self.name, params.join(", "), shown(ret));
        out
    }

    /// Rhai's order of definitions: by name, number of parameters, then
    /// the parameters' text.
    pub fn order(a: &Self, b: &Self) -> std::cmp::Ordering {
        let (pa, ra) = a.parts();
        let (pb, rb) = b.parts();
        a.name
            .cmp(b.name)
            .then(pa.len().cmp(&pb.len()))
            .then_with(|| (pa.concat() + ra).cmp(&(pb.concat() + rb)))
    }
}

/// A parameter's name and type ("name: Type"), the type as Rhai shows it.
fn param(p: &str) -> (&str, Option<&str>) {
    match p.split_once(':') {
        Some((name, ty)) => (name.trim(), Some(shown(ty.trim()))),
        None => (p, None),
    }
}

/// A type as Rhai shows it: `map` and `array` for Map and Array (the
/// API's signatures name each type by one word).
fn shown(ty: &str) -> &str {
    match ty {
        "Map" => "map",
        "Array" => "array",
        ty => ty,
    }
}

thread_local! {
    static NOTED: std::cell::RefCell<Option<Vec<ApiFn>>> = const { std::cell::RefCell::new(None) };
}

/// Notes a registration, while `documented` runs.
pub(crate) fn note(name: &'static str, sig: &'static str, doc: &'static str) {
    NOTED.with(|n| {
        if let Some(list) = n.borrow_mut().as_mut() {
            list.push(ApiFn { name, sig, doc });
        }
    });
}

/// Runs `f` (which builds an engine), and returns with its result every
/// API function registered meanwhile. Profiles run without: nothing noted.
pub fn documented<T>(f: impl FnOnce() -> T) -> (T, Vec<ApiFn>) {
    NOTED.with(|n| *n.borrow_mut() = Some(Vec::new()));
    let out = f();
    let noted = NOTED.with(|n| n.borrow_mut().take()).unwrap_or_default();
    (out, noted)
}

// Options maps into option structs, with errors that name the key.
mod opts;
use opts::options;
// The security calls (seccomp, landlock, rlimits, timeout) use `api!`.
mod security;
// Helpers beside the sandbox (xdg-dbus-proxy, ...), Xauthority, warnings.
mod desktop;
// The network: none, host, user-mode with forwards, joined; allow_tcp.
mod network;
// Egress by domain name through moksha's proxy.
mod egress;
// Read-only questions for the Firejail stdlib: #! lines, glob matching,
// seccomp names.
mod questions;

/// Registers the host queries, `sandbox()` and every sandbox method.
pub fn register(engine: &mut Engine, cx: &Context) {
    engine.register_type_with_name::<Sandbox>("Sandbox");
    // The printing hooks Rhai calls by convention (undocumented).
    note("to_debug", "_: Sandbox -> string", "");
    note("to_string", "_: Sandbox -> string", "");
    engine.register_fn("to_string", |s: &mut Sandbox| {
        format!("sandbox({:?})", s.0.borrow().name)
    });
    engine.register_fn("to_debug", |s: &mut Sandbox| {
        format!("sandbox({:?})", s.0.borrow().name)
    });
    register_host(engine);
    register_sandbox(engine, cx);
    register_fs(engine);
    register_process(engine);
    security::register(engine);
    desktop::register(engine);
    network::register(engine);
    egress::register(engine);
    questions::register(engine);
}

fn register_host(engine: &mut Engine) {
    api!(
        engine,
        "env",
        "name: String -> ?",
        "The launcher's environment variable `name`, or `()` when it is unset. Bytes that are
        not UTF-8 come as U+10FF00 + byte and go back to the program as the byte.",
        |name: &str| host::env(name).map(Dynamic::from).unwrap_or(Dynamic::UNIT)
    );
    api!(
        engine,
        "env",
        "name: String, default: String -> String",
        "The launcher's environment variable `name`, or `default` when it is unset.",
        |name: &str, default: &str| host::env(name).unwrap_or_else(|| default.to_string())
    );
    api!(
        engine,
        "uid",
        "-> int",
        "The caller's effective uid on the host.",
        || host::uid() as i64
    );
    api!(
        engine,
        "gid",
        "-> int",
        "The caller's effective gid on the host.",
        || host::gid() as i64
    );
    api!(
        engine,
        "user_name",
        "-> String",
        "The caller's login name (password database, then $USER, then the uid).",
        host::user_name
    );
    api!(
        engine,
        "home_dir",
        "-> String",
        "The caller's home directory on the host.",
        host::home_dir
    );
    api!(engine, "xdg_dir", "kind: String -> String",
        "An XDG base directory on the host: \"config\", \"data\", \"cache\", \"state\" or \"runtime\".",
        |kind: &str| host::xdg_dir(kind).or_else(err));
    api!(
        engine,
        "current_dir",
        "-> String",
        "The directory `moksha` was started in.",
        host::current_dir
    );
    api!(
        engine,
        "exists",
        "path: String -> bool",
        "Whether `path` exists on the host (a dangling symlink exists).",
        |p: &str| host::exists(p)
    );
    api!(engine, "read_link", "path: String -> ?",
        "Where the host symlink `path` points (as written in the link), or `()` if it is not a symlink.",
        |p: &str| host::read_link(p).map(Dynamic::from).unwrap_or(Dynamic::UNIT));
    api!(
        engine,
        "read_text",
        "path: String -> ?",
        "The text of the small regular host file `path` (at most 4096 bytes, not through a
        symlink at `path`), or `()` if it is missing, larger, not a regular file or not text.
        For files that say where things are (git's `.git` file of a worktree).",
        |p: &str| host::read_text(p, 4096)
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT)
    );
    api!(engine, "real_path", "path: String -> ?",
        "The host path `path` with every symlink, `.` and `..` resolved, or `()` if it does not exist.",
        |p: &str| host::real_path(p).map(Dynamic::from).unwrap_or(Dynamic::UNIT));
    api!(
        engine,
        "is_dir",
        "path: String -> bool",
        "Whether `path` is a directory on the host.",
        |p: &str| host::is_dir(p)
    );
    api!(
        engine,
        "is_file",
        "path: String -> bool",
        "Whether `path` is a regular file on the host.",
        |p: &str| host::is_file(p)
    );
    api!(
        engine,
        "glob",
        "pattern: String -> Array",
        "Host paths matching a shell glob such as \"/dev/video*\", sorted. More than 10000
        matches is an error, as is a walk beyond the profile's budget for all its globs
        (200000 directory entries, 5 s); `**` is refused.",
        |p: &str| -> Res<Array> {
            Ok(host::glob(p, GLOB_LIMIT)
                .or_else(err)?
                .into_iter()
                .map(Dynamic::from)
                .collect())
        }
    );
    api!(
        engine,
        "kernel_version",
        "-> String",
        "The running kernel's release, e.g. \"6.18.4\".",
        host::kernel_release
    );
    api!(
        engine,
        "kernel_at_least",
        "major: int, minor: int -> bool",
        "Whether the running kernel is at least `major.minor`.",
        |major: i64, minor: i64| host::kernel_version() >= (major, minor)
    );
    api!(
        engine,
        "which",
        "name: String -> ?",
        "The full path of the program `name` on the launcher's $PATH, or `()` when absent.",
        |name: &str| host::which(name)
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT)
    );
}

fn register_sandbox(engine: &mut Engine, cx: &Context) {
    let cx = cx.clone();
    api!(
        engine,
        "sandbox",
        "name: String -> Sandbox",
        "Creates the sandbox this profile describes. It starts strict: new user, mount, pid,
        net, ipc, uts and cgroup namespaces, an empty tmpfs root, no command. A profile
        creates exactly one.",
        move |ctx: NativeCallContext, name: &str| -> Res<Sandbox> {
            crate::state::check_name(name)
                .map_err(|e| e.replace("instance name", "sandbox name"))
                .or_else(err)?;
            let s = Sandbox(Rc::new(RefCell::new(Plan::new(name, &cx.profile))));
            cx.sandboxes.borrow_mut().push((s.clone(), pos(&ctx)));
            Ok(s)
        }
    );
    api!(
        engine,
        "unshare",
        "s: Sandbox, namespaces: Array",
        "Gives the sandbox new namespaces, by name: user, mount, pid, net, ipc, uts, cgroup, time.",
        |s: &mut Sandbox, names: Array| s.set_namespaces(&names, true)
    );
    api!(engine, "share", "s: Sandbox, namespaces: Array",
        "Makes the sandbox share these host namespaces instead (e.g. [\"net\"] for host networking).",
        |s: &mut Sandbox, names: Array| s.set_namespaces(&names, false));
    api!(engine, "uid", "s: Sandbox, uid: int",
        "The uid the program has inside; the caller's uid is mapped to it (0 makes it root in the box).",
        |s: &mut Sandbox, uid: i64| -> Res<()> {
            s.0.borrow_mut().ids.uid = Some(u32::try_from(uid).or_else(|_| err("uid out of range"))?);
            Ok(())
        });
    api!(
        engine,
        "host_root",
        "s: Sandbox, keep: bool",
        "Run by root, moksha maps the host's root into the sandbox only to build it: the program
        runs as the host's nobody (uid and gid 65534), so root-owned files in writable binds stay
        read-only to it and it is charged the process bound. `s.host_root(true)` keeps the
        caller's own uid instead (the program is the host's root, without capabilities), for
        what needs root's own sockets or files (a root desktop session's Wayland, D-Bus,
        PulseAudio). `moksha plan` flags it. No effect for an unprivileged caller.",
        |ctx: NativeCallContext, s: &mut Sandbox, keep: bool| {
            s.0.borrow_mut().ids.host_root = keep.then(|| pos(&ctx));
        }
    );
    api!(
        engine,
        "gid",
        "s: Sandbox, gid: int",
        "The gid the program has inside; the caller's gid is mapped to it.",
        |s: &mut Sandbox, gid: i64| -> Res<()> {
            s.0.borrow_mut().ids.gid =
                Some(u32::try_from(gid).or_else(|_| err("gid out of range"))?);
            Ok(())
        }
    );
    api!(
        engine,
        "name",
        "s: Sandbox, name: String",
        "Sets the instance name shown by `moksha ps` (default: the sandbox name plus a
        short id). Only one instance of a name runs at a time.",
        |s: &mut Sandbox, name: &str| -> Res<()> {
            crate::state::check_name(name).or_else(err)?;
            let mut plan = s.0.borrow_mut();
            plan.name = name.to_string();
            plan.supervision.named = true;
            Ok(())
        }
    );
    api!(
        engine,
        "die_with_parent",
        "s: Sandbox, on: bool",
        "Whether the sandbox is killed when the `moksha` that launched it dies (default true).",
        |s: &mut Sandbox, on: bool| s.0.borrow_mut().supervision.die_with_parent = on
    );
    api!(
        engine,
        "detach",
        "s: Sandbox, on: bool",
        "Whether `moksha exec` returns once the program runs, leaving the sandbox in the
        background (its output goes to log files: `moksha logs NAME`). Same as `--detach`.",
        |s: &mut Sandbox, on: bool| s.0.borrow_mut().supervision.detach = on
    );
    api!(
        engine,
        "trace",
        "s: Sandbox, on: bool",
        "Trace mode (same as `moksha exec --trace`; default off, and then it costs nothing):
        while the program runs, moksha records what it was refused (seccomp refusals by
        call, paths not in its view or not writable, connections the network refuses) and
        prints a summary at exit, each line with its count and the profile line or default
        that caused it (detached: into `moksha logs`). The program gets the same answers
        as without trace: the supervisor answers each refused call with the filter's own
        errno. See docs/explain.md.",
        |s: &mut Sandbox, on: bool| s.0.borrow_mut().supervision.trace = on
    );
    api!(
        engine,
        "new_session",
        "s: Sandbox, on: bool",
        "Whether the program starts in a new session without a controlling terminal (default true).
        `false` lets an interactive program use the terminal (job control, Ctrl-C, window
        size); TIOCSTI and TIOCLINUX are always filtered, so it cannot type into the
        caller's shell.",
        |s: &mut Sandbox, on: bool| s.0.borrow_mut().supervision.new_session = on
    );
    api!(
        engine,
        "keep_caps",
        "s: Sandbox, caps: Array",
        "Keeps these capabilities (e.g. [\"CAP_NET_BIND_SERVICE\"]) for the program, within
        the sandbox's user namespace. Every other capability is dropped.",
        |ctx: NativeCallContext, s: &mut Sandbox, caps: Array| -> Res<()> {
            for cap in strings(&caps, "keep_caps")? {
                let name = cap.to_ascii_uppercase();
                let name = if name.starts_with("CAP_") {
                    name
                } else {
                    format!("CAP_{name}")
                };
                if crate::sys::caps::by_name(&name).is_none() {
                    return err(format!(
                        "unknown capability {cap:?} (see capabilities(7) for names)"
                    ));
                }
                s.0.borrow_mut().security.keep_caps.push(Located {
                    value: name,
                    at: pos(&ctx),
                });
            }
            Ok(())
        }
    );
}

fn register_fs(engine: &mut Engine) {
    let none = Map::new;
    api!(
        engine,
        "bind",
        "s: Sandbox, path: String",
        "Bind-mounts the host `path` at the same place inside, read-only, nosuid, nodev.",
        move |ctx: NativeCallContext, s: &mut Sandbox, path: &str| s.bind(
            &ctx,
            path,
            path,
            &none()
        )
    );
    api!(
        engine,
        "bind",
        "s: Sandbox, path: String, options: Map",
        "Bind-mounts the host `path` at the same place inside. Options: rw (writable),
        exec (with rw: the program may also execute what is there, e.g. what a build
        just compiled or a git hook; read-only binds are always executable, writable ones
        not unless asked: write-xor-execute), dev (device nodes work), optional (skip
        when the source is missing), replace (this step replaces an earlier one at the
        same target), create (make the host directory, mode 0700, when it is missing: a
        per-application home).",
        |ctx: NativeCallContext, s: &mut Sandbox, path: &str, o: Map| s.bind(&ctx, path, path, &o)
    );
    api!(
        engine,
        "bind",
        "s: Sandbox, source: String, target: String",
        "Bind-mounts the host `source` at `target` inside, read-only, nosuid, nodev.",
        move |ctx: NativeCallContext, s: &mut Sandbox, src: &str, dst: &str| s.bind(
            &ctx,
            src,
            dst,
            &none()
        )
    );
    api!(
        engine,
        "bind",
        "s: Sandbox, source: String, target: String, options: Map",
        "Bind-mounts the host `source` at `target` inside; options as for bind(path, options).",
        |ctx: NativeCallContext, s: &mut Sandbox, src: &str, dst: &str, o: Map| s
            .bind(&ctx, src, dst, &o)
    );
    api!(
        engine,
        "protect",
        "s: Sandbox, patterns: Array, options: Map",
        "Makes the paths below the directory `under` (inside; option, required) that match
        `patterns` read-only and not creatable, even inside a writable bind or overlay:
        `s.protect([\".git/hooks\", \".envrc\"], #{ under: \"/src\" })`. Patterns are
        relative shell globs (`*`, `?`, `[...]`, and `**` for any number of directories,
        which does not descend into .git); they are matched when the sandbox starts,
        without following symlinks or leaving `under`. What exists is bound read-only onto
        itself (writes fail with EROFS, renaming over it or removing it with EBUSY); a
        literal path that does not exist gets an empty read-only placeholder directory,
        removed again when a foreground sandbox ends (see docs/workspace.md). The
        workspace library's protected_paths() is a default list.",
        |ctx: NativeCallContext, s: &mut Sandbox, p: Array, o: Map| s.protect(&ctx, &p, &o)
    );
    api!(
        engine,
        "overlay",
        "s: Sandbox, dir: String",
        "The host directory `dir` at the same place inside, copy-on-write (overlayfs): the
        program reads the real files and every write lands in the changes named after the
        sandbox, which `moksha diff NAME`, `moksha commit NAME` and `moksha discard NAME`
        show, apply and throw away. The host directory is not changed.",
        move |ctx: NativeCallContext, s: &mut Sandbox, d: &str| s.overlay(&ctx, d, &none())
    );
    api!(
        engine,
        "overlay",
        "s: Sandbox, dir: String, options: Map",
        "overlay(dir) with options: upper (\"changes\", the default, or \"tmpfs\": writes go to
        a private tmpfs and are thrown away at the end), name (the changes' name, default
        the sandbox's), target (where the program sees it, default `dir`), exec (the
        program may execute files there, as a writable bind's exec).",
        |ctx: NativeCallContext, s: &mut Sandbox, d: &str, o: Map| s.overlay(&ctx, d, &o)
    );
    api!(
        engine,
        "tmpfs",
        "s: Sandbox, target: String",
        "Mounts an empty private tmpfs at `target` (mode 0o755).",
        move |ctx: NativeCallContext, s: &mut Sandbox, t: &str| s.tmpfs(&ctx, t, &none())
    );
    api!(
        engine,
        "tmpfs",
        "s: Sandbox, target: String, options: Map",
        "Mounts an empty private tmpfs at `target`. Options: size (bytes or \"64M\"),
        mode (e.g. 0o1777), replace.",
        |ctx: NativeCallContext, s: &mut Sandbox, t: &str, o: Map| s.tmpfs(&ctx, t, &o)
    );
    api!(
        engine,
        "mount",
        "s: Sandbox, fstype: String, target: String",
        "Mounts a fresh filesystem of type \"tmpfs\", \"proc\" or \"mqueue\" at `target`.",
        move |ctx: NativeCallContext, s: &mut Sandbox, fstype: &str, t: &str| mount(
            &ctx,
            s,
            fstype,
            t,
            &none()
        )
    );
    api!(
        engine,
        "mount",
        "s: Sandbox, fstype: String, target: String, options: Map",
        "Mounts a fresh filesystem of type \"tmpfs\", \"proc\" or \"mqueue\" at `target`, with
        the options of tmpfs(), proc() or mqueue().",
        |ctx: NativeCallContext, s: &mut Sandbox, fstype: &str, t: &str, o: Map| mount(
            &ctx, s, fstype, t, &o
        )
    );
    api!(
        engine,
        "proc",
        "s: Sandbox",
        "Mounts a fresh /proc for the sandbox's PID namespace.",
        move |ctx: NativeCallContext, s: &mut Sandbox| s.special(&ctx, "proc", "/proc", &none())
    );
    api!(
        engine,
        "proc",
        "s: Sandbox, target: String",
        "Mounts a fresh proc for the sandbox's PID namespace at `target`.",
        move |ctx: NativeCallContext, s: &mut Sandbox, t: &str| s.special(&ctx, "proc", t, &none())
    );
    api!(
        engine,
        "dev",
        "s: Sandbox",
        "Mounts a minimal /dev: null, zero, full, random, urandom, tty, a private devpts
        with ptmx, /dev/shm, and the fd/stdin/stdout/stderr links.",
        move |ctx: NativeCallContext, s: &mut Sandbox| s.special(&ctx, "dev", "/dev", &none())
    );
    api!(
        engine,
        "dev",
        "s: Sandbox, target: String",
        "Mounts a minimal dev tree (see dev()) at `target`.",
        move |ctx: NativeCallContext, s: &mut Sandbox, t: &str| s.special(&ctx, "dev", t, &none())
    );
    api!(
        engine,
        "mqueue",
        "s: Sandbox",
        "Mounts the POSIX message queue filesystem of the sandbox's IPC namespace at /dev/mqueue.",
        move |ctx: NativeCallContext, s: &mut Sandbox| s.special(
            &ctx,
            "mqueue",
            "/dev/mqueue",
            &none()
        )
    );
    api!(
        engine,
        "mkdir",
        "s: Sandbox, path: String",
        "Creates the directory `path` (and missing parents) with mode 0o755.",
        |ctx: NativeCallContext, s: &mut Sandbox, p: &str| s.path_mode(&ctx, "mkdir", p, 0o755)
    );
    api!(
        engine,
        "mkdir",
        "s: Sandbox, path: String, mode: int",
        "Creates the directory `path` (and missing parents) with `mode`, e.g. 0o700.",
        |ctx: NativeCallContext, s: &mut Sandbox, p: &str, mode: i64| s
            .path_mode(&ctx, "mkdir", p, mode)
    );
    api!(
        engine,
        "symlink",
        "s: Sandbox, points_to: String, link: String",
        "Creates the symlink `link` pointing to `points_to`, as symlink(2) and `ln -s` order them.",
        move |ctx: NativeCallContext, s: &mut Sandbox, to: &str, link: &str| s.symlink(
            &ctx,
            to,
            link,
            &none()
        )
    );
    api!(
        engine,
        "symlink",
        "s: Sandbox, points_to: String, link: String, options: Map",
        "Creates the symlink `link` pointing to `points_to`. Options: replace.",
        |ctx: NativeCallContext, s: &mut Sandbox, to: &str, link: &str, o: Map| s
            .symlink(&ctx, to, link, &o)
    );
    api!(
        engine,
        "write_file",
        "s: Sandbox, path: String, content: String",
        "Writes a file with `content` (mode 0o644) at `path` inside. If something is already
        there (e.g. from a read-only bind), the new file is mounted over it.",
        move |ctx: NativeCallContext, s: &mut Sandbox, p: &str, c: &str| s.write_file(
            &ctx,
            p,
            c,
            &none()
        )
    );
    api!(
        engine,
        "write_file",
        "s: Sandbox, path: String, content: String, options: Map",
        "Writes a file with `content` at `path` inside. Options: mode (default 0o644), replace.",
        |ctx: NativeCallContext, s: &mut Sandbox, p: &str, c: &str, o: Map| s
            .write_file(&ctx, p, c, &o)
    );
    api!(
        engine,
        "remount_ro",
        "s: Sandbox, path: String",
        "Makes the mount at `path` read-only once the root is built (only that mount,
        not those below it). A path that is not a mount point is first bound onto itself.",
        |ctx: NativeCallContext, s: &mut Sandbox, p: &str| -> Res<()> {
            let target = path_arg(p, "remount_ro path")?;
            s.step(&ctx, FsOp::RemountRo { target });
            Ok(())
        }
    );
    api!(
        engine,
        "chmod",
        "s: Sandbox, path: String, mode: int",
        "Changes the mode of `path` inside the new root.",
        |ctx: NativeCallContext, s: &mut Sandbox, p: &str, mode: i64| s
            .path_mode(&ctx, "chmod", p, mode)
    );
    api!(
        engine,
        "pivot_root",
        "s: Sandbox, host_dir: String",
        "Uses the host directory `host_dir` (e.g. an unpacked root filesystem) as the sandbox's
        root instead of an empty tmpfs; later steps build on top of it.",
        |ctx: NativeCallContext, s: &mut Sandbox, dir: &str| -> Res<()> {
            let value = path_arg(dir, "pivot_root directory")?;
            let mut plan = s.0.borrow_mut();
            if let Some(earlier) = &plan.root {
                return err(format!("pivot_root was already called at {}", earlier.at));
            }
            plan.root = Some(Located {
                value,
                at: pos(&ctx),
            });
            Ok(())
        }
    );
}

fn mount(ctx: &NativeCallContext, s: &Sandbox, fstype: &str, target: &str, o: &Map) -> Res<()> {
    match fstype {
        "tmpfs" => s.tmpfs(ctx, target, o),
        "proc" | "mqueue" => s.special(ctx, fstype, target, o),
        other => err(format!(
            "mount: filesystem type {other:?} is not supported; use \"tmpfs\", \"proc\", \"mqueue\", \
             or bind() for host paths"
        )),
    }
}

fn register_process(engine: &mut Engine) {
    api!(
        engine,
        "exec",
        "s: Sandbox, argv: Array",
        "The command the sandbox runs: program and arguments. A name without '/' is looked
        up on the sandbox's PATH, inside the sandbox. Called exactly once.",
        |ctx: NativeCallContext, s: &mut Sandbox, argv: Array| -> Res<()> {
            let argv = strings(&argv, "exec")?;
            if argv.is_empty() {
                return err("exec needs at least the program name");
            }
            let mut plan = s.0.borrow_mut();
            if let Some(earlier) = &plan.process.exec {
                return err(format!(
                    "exec was already called at {}; a sandbox runs exactly one command",
                    earlier.at
                ));
            }
            plan.process.exec = Some(Step {
                op: Exec { argv },
                at: pos(&ctx),
            });
            Ok(())
        }
    );
    api!(
        engine,
        "hostname",
        "s: Sandbox, name: String",
        "Sets the hostname inside the sandbox's UTS namespace.",
        |ctx: NativeCallContext, s: &mut Sandbox, name: &str| {
            s.0.borrow_mut().process.hostname = Some(Located {
                value: name.to_string(),
                at: pos(&ctx),
            });
        }
    );
    api!(
        engine,
        "cwd",
        "s: Sandbox, path: String",
        "The program's working directory inside the sandbox (default /).",
        |ctx: NativeCallContext, s: &mut Sandbox, p: &str| -> Res<()> {
            let value = path_arg(p, "working directory")?;
            s.0.borrow_mut().process.cwd = Some(Located {
                value,
                at: pos(&ctx),
            });
            Ok(())
        }
    );
    api!(
        engine,
        "env",
        "s: Sandbox, name: String, value: String",
        "Sets the environment variable `name` for the program. The environment starts empty.",
        |s: &mut Sandbox, name: &str, value: &str| {
            s.env_op(EnvOp::Set {
                name: name.into(),
                value: value.into(),
            })
        }
    );
    api!(
        engine,
        "unsetenv",
        "s: Sandbox, name: String",
        "Removes the environment variable `name` from the program's environment.",
        |s: &mut Sandbox, name: &str| s.env_op(EnvOp::Unset { name: name.into() })
    );
    api!(
        engine,
        "keep_env",
        "s: Sandbox, name: String",
        "Passes the launcher's variable `name` through, when it is set.",
        |s: &mut Sandbox, name: &str| s.env_op(EnvOp::Keep { name: name.into() })
    );
    api!(
        engine,
        "keep_env",
        "s: Sandbox, names: Array",
        "Passes the launcher's variables `names` through, those that are set.",
        |s: &mut Sandbox, names: Array| -> Res<()> {
            for name in strings(&names, "keep_env")? {
                s.env_op(EnvOp::Keep { name })?;
            }
            Ok(())
        }
    );
    api!(
        engine,
        "inherit_env",
        "s: Sandbox",
        "Starts the program's environment from the launcher's whole environment instead of
        an empty one (later env/unsetenv calls still apply).",
        |s: &mut Sandbox| s.0.borrow_mut().process.env.clear = false
    );
}
