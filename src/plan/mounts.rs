//! What building the root does, as data: the plan's filesystem steps
//! compiled into the primitive operations `launch::rootfs` executes, in
//! order. Pure, so that the expansion of `proc`, `dev` and `remount_ro` is
//! tested without root and shown by `moksha plan --resolved`.

use super::{FsOp, Plan, Step};
use std::fmt;

/// Mount flags, by meaning (`launch::rootfs` turns them into the kernel's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub ro: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl Flags {
    const NOSUID_NODEV: Flags = Flags {
        ro: false,
        nosuid: true,
        nodev: true,
        noexec: false,
    };
    const NOSUID_NODEV_NOEXEC: Flags = Flags {
        noexec: true,
        ..Flags::NOSUID_NODEV
    };
    const NOSUID_NOEXEC: Flags = Flags {
        nodev: false,
        ..Flags::NOSUID_NODEV_NOEXEC
    };
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            ("ro", self.ro),
            ("nosuid", self.nosuid),
            ("nodev", self.nodev),
            ("noexec", self.noexec),
        ];
        let on: Vec<&str> = names.iter().filter(|(_, b)| *b).map(|(n, _)| *n).collect();
        write!(f, "{}", if on.is_empty() { "rw" } else { "" })?;
        f.write_str(&on.join(","))
    }
}

/// One primitive operation. Targets are paths inside the new root,
/// resolved there (a symlink never leads out of it).
#[derive(Clone, Debug, PartialEq)]
pub enum MountOp {
    /// The new root: an empty tmpfs.
    RootTmpfs,
    /// The new root: a host directory (`pivot_root(dir)`).
    RootBind {
        source: String,
    },
    /// A detached copy of the host tree at `source`, attached at `target`
    /// with `flags` set before it becomes visible. Every source is opened
    /// before the staging directory exists. `optional`: skipped when the
    /// source is missing.
    Attach {
        source: String,
        target: String,
        flags: Flags,
        optional: bool,
    },
    /// A new filesystem (tmpfs, proc, devpts, mqueue).
    Fs {
        fstype: &'static str,
        target: String,
        flags: Flags,
        data: Option<String>,
    },
    /// Hides a file, if it exists, under an empty read-only file.
    Mask {
        target: String,
    },
    /// Makes the tree at `target`, if it exists, read-only (not following
    /// a symlink at it).
    ReadOnly {
        target: String,
    },
    Mkdir {
        target: String,
        mode: u32,
    },
    Symlink {
        points_to: String,
        target: String,
        replace: bool,
    },
    WriteFile {
        target: String,
        content: String,
        mode: u32,
    },
    Chmod {
        target: String,
        mode: u32,
    },
    /// The paths below `under` matching `patterns` (relative globs),
    /// found now, made read-only; a missing one gets a read-only
    /// placeholder (`launch::protect`). Runs after every other step, so
    /// no later mount covers a protected path.
    Protect {
        under: String,
        patterns: Vec<String>,
    },
    /// overlayfs at `target`: the host directory `source` as the lower
    /// layer, the upper (and work) directory in the changes store `store`
    /// on the host, or in a private tmpfs when `None`.
    Overlay {
        source: String,
        target: String,
        store: Option<String>,
    },
    /// pivot_root into the new root and detach the old one.
    PivotRoot,
    /// After pivot_root: that mount (bound onto itself first when it is not
    /// a mount point) becomes read-only.
    RemountRo {
        target: String,
    },
}

impl fmt::Display for MountOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountOp::RootTmpfs => write!(f, "root      tmpfs (nosuid,nodev)"),
            MountOp::RootBind { source } => write!(f, "root      {source} (nosuid,nodev)"),
            MountOp::Attach {
                source,
                target,
                flags,
                optional,
            } => write!(
                f,
                "attach    {source} -> {target} ({flags}){}",
                if *optional { ", if present" } else { "" }
            ),
            MountOp::Fs {
                fstype,
                target,
                flags,
                data,
            } => {
                write!(f, "mount     {fstype} -> {target} ({flags})")?;
                match data {
                    Some(d) => write!(f, " {d}"),
                    None => Ok(()),
                }
            }
            MountOp::Mask { target } => write!(f, "mask      {target}, if present"),
            MountOp::ReadOnly { target } => write!(f, "read-only {target}, if present"),
            MountOp::Mkdir { target, mode } => write!(f, "mkdir     {target} {mode:#o}"),
            MountOp::Symlink {
                points_to, target, ..
            } => write!(f, "symlink   {target} -> {points_to}"),
            MountOp::WriteFile {
                target,
                content,
                mode,
            } => write!(f, "write     {target} {mode:#o}, {} bytes", content.len()),
            MountOp::Chmod { target, mode } => write!(f, "chmod     {target} {mode:#o}"),
            MountOp::Protect { under, patterns } => {
                write!(f, "protect   {under}: {}", patterns.join(" "))
            }
            MountOp::Overlay {
                source,
                target,
                store,
            } => write!(
                f,
                "overlay   {source} -> {target} (nosuid,nodev), upper {}",
                store.as_deref().unwrap_or("tmpfs")
            ),
            MountOp::PivotRoot => write!(f, "pivot_root, old root detached"),
            MountOp::RemountRo { target } => write!(f, "remount   {target} read-only"),
        }
    }
}

/// Host device nodes a `dev` step binds into the sandbox; `tty` is
/// optional (a host without a controlling-terminal device).
pub const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Parts of a fresh proc that act on the whole machine, not the sandbox's
/// namespaces: global sysctls, sysrq, interrupt and bus settings. The kernel
/// lets a uid 0 without capabilities write some of them (sysctl files check
/// only the owner), so they are made read-only, as bubblewrap and Docker do.
pub const PROC_READ_ONLY: [&str; 8] = [
    "sys",
    "sysrq-trigger",
    "irq",
    "bus",
    "fs",
    "acpi",
    "scsi",
    "asound",
];

/// Files of a fresh proc that tell about the whole machine (the keys of
/// every user of the uid, kernel timers and scheduler internals, the kernel
/// image): hidden under an empty read-only file, as Docker does.
pub const PROC_MASKED: [&str; 6] = [
    "keys",
    "timer_list",
    "sched_debug",
    "kcore",
    "latency_stats",
    "timer_stats",
];

fn tmpfs_data(mode: u32, size: Option<u64>) -> String {
    match size {
        Some(size) => format!("mode={mode:o},size={size}"),
        None => format!("mode={mode:o}"),
    }
}

/// `dir` + "/" + `name`, without a doubled slash.
fn under(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// The operations one filesystem step compiles to.
fn compile_step(op: &FsOp, out: &mut Vec<MountOp>) {
    match op {
        FsOp::Bind {
            source,
            target,
            rw,
            dev,
            optional,
            ..
        } => out.push(MountOp::Attach {
            source: source.clone(),
            target: target.clone(),
            flags: Flags {
                ro: !rw,
                nosuid: true,
                nodev: !dev,
                noexec: false,
            },
            optional: *optional,
        }),
        FsOp::Overlay {
            source,
            target,
            store,
            changes,
            ..
        } => out.push(MountOp::Overlay {
            source: source.clone(),
            target: target.clone(),
            // Unresolved (a plan not prepared): the store by its name.
            store: changes
                .as_ref()
                .map(|n| store.clone().unwrap_or_else(|| format!("<changes {n}>"))),
        }),
        // After every other step (compile).
        FsOp::Protect { .. } => {}
        FsOp::Tmpfs {
            target, size, mode, ..
        } => out.push(MountOp::Fs {
            fstype: "tmpfs",
            target: target.clone(),
            flags: Flags::NOSUID_NODEV,
            data: Some(tmpfs_data(*mode, *size)),
        }),
        FsOp::Proc { target, .. } => {
            out.push(MountOp::Fs {
                fstype: "proc",
                target: target.clone(),
                flags: Flags::NOSUID_NODEV_NOEXEC,
                data: None,
            });
            out.extend(PROC_MASKED.iter().map(|e| MountOp::Mask {
                target: under(target, e),
            }));
            out.extend(PROC_READ_ONLY.iter().map(|e| MountOp::ReadOnly {
                target: under(target, e),
            }));
        }
        FsOp::Mqueue { target, .. } => out.push(MountOp::Fs {
            fstype: "mqueue",
            target: target.clone(),
            flags: Flags::NOSUID_NODEV_NOEXEC,
            data: None,
        }),
        FsOp::Dev { target, .. } => compile_dev(target, true, out),
        FsOp::Mkdir { target, mode } => out.push(MountOp::Mkdir {
            target: target.clone(),
            mode: *mode,
        }),
        FsOp::Symlink {
            points_to,
            target,
            replace,
        } => out.push(MountOp::Symlink {
            points_to: points_to.clone(),
            target: target.clone(),
            replace: *replace,
        }),
        FsOp::WriteFile {
            target,
            content,
            mode,
            ..
        } => out.push(MountOp::WriteFile {
            target: target.clone(),
            content: content.clone(),
            mode: *mode,
        }),
        FsOp::Chmod { target, mode } => out.push(MountOp::Chmod {
            target: target.clone(),
            mode: *mode,
        }),
        // After pivot_root (see `compile`).
        FsOp::RemountRo { .. } => {}
    }
}

/// A minimal /dev: a tmpfs with the host's harmless device nodes bound in,
/// a private devpts, shm (unless `shm` is false: a later step's tmpfs
/// covers it), and the usual links.
fn compile_dev(target: &str, shm: bool, out: &mut Vec<MountOp>) {
    out.push(MountOp::Fs {
        fstype: "tmpfs",
        target: target.to_string(),
        flags: Flags::NOSUID_NOEXEC,
        // Device nodes and links only.
        data: Some("mode=755,size=1m".into()),
    });
    out.extend(DEV_NODES.iter().map(|node| MountOp::Attach {
        source: format!("/dev/{node}"),
        target: under(target, node),
        flags: Flags {
            nosuid: true,
            ..Flags::default()
        },
        optional: *node == "tty",
    }));
    out.push(MountOp::Fs {
        fstype: "devpts",
        target: under(target, "pts"),
        flags: Flags::NOSUID_NOEXEC,
        data: Some("newinstance,ptmxmode=0666,mode=620".into()),
    });
    if shm {
        out.push(MountOp::Fs {
            fstype: "tmpfs",
            target: under(target, "shm"),
            flags: Flags::NOSUID_NODEV,
            data: Some("mode=1777".into()),
        });
    }
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        out.push(MountOp::Symlink {
            points_to: to.into(),
            target: under(target, link),
            replace: false,
        });
    }
}

/// The whole root: the new root, every step in order (each operation
/// carries the position of the step it came from), pivot_root, then the
/// read-only remounts. Empty without a mount namespace.
pub fn compile(plan: &Plan) -> Vec<Step<MountOp>> {
    if !plan.namespaces.mount {
        return Vec::new();
    }
    let mut out = vec![match &plan.root {
        Some(root) => Step {
            op: MountOp::RootBind {
                source: root.value.clone(),
            },
            at: root.at.clone(),
        },
        None => Step {
            op: MountOp::RootTmpfs,
            at: Default::default(),
        },
    }];
    let mut ops = Vec::new();
    for (i, step) in plan.fs.iter().enumerate() {
        match &step.op {
            // The launcher's sized /dev/shm (`size_tmpfs`), or any tmpfs
            // there, right after: the dev step's own would be covered at
            // once, a superblock made for nothing.
            FsOp::Dev { target, .. } => {
                let shm = under(target, "shm");
                let covered = plan.fs.get(i + 1).is_some_and(|next| {
                    matches!(&next.op, FsOp::Tmpfs { target, .. }
                        if super::validate::normalize(target) == super::validate::normalize(&shm))
                });
                compile_dev(target, !covered, &mut ops)
            }
            op => compile_step(op, &mut ops),
        }
        out.extend(ops.drain(..).map(|op| Step {
            op,
            at: step.at.clone(),
        }));
    }
    out.extend(plan.fs.iter().filter_map(|step| match &step.op {
        FsOp::Protect { under, patterns } => Some(Step {
            op: MountOp::Protect {
                under: under.clone(),
                patterns: patterns.clone(),
            },
            at: step.at.clone(),
        }),
        _ => None,
    }));
    out.push(Step {
        op: MountOp::PivotRoot,
        at: Default::default(),
    });
    out.extend(plan.fs.iter().filter_map(|step| match &step.op {
        FsOp::RemountRo { target } => Some(Step {
            op: MountOp::RemountRo {
                target: target.clone(),
            },
            at: step.at.clone(),
        }),
        _ => None,
    }));
    out
}

/// The least a tmpfs of the profile's gets when the budget is shared out.
pub const MIN_TMPFS: u64 = 16 << 20;

/// Sizes the sandbox's tmpfs mounts within `budget` bytes in total (the
/// launcher gives half of the host's memory): tmpfs pages belong to no
/// process, so the OOM killer cannot take them back by killing the sandbox,
/// and the kernel's own default (half the memory, for each mount) would let
/// a few of them fill the machine. A tmpfs with a size keeps it (they must
/// fit in the budget together); the others share what is left, at least
/// `MIN_TMPFS` each. Every `dev` step's /dev/shm is a tmpfs of its own
/// here. Returns the position and message of a size that does not fit.
pub fn size_tmpfs(plan: &mut Plan, budget: u64) -> Result<(), (crate::located::Pos, String)> {
    // /dev/shm of each dev step, as a sized tmpfs over the one it makes,
    // right after it (so what later steps put there stays on top).
    let mut i = 0;
    while i < plan.fs.len() {
        if let FsOp::Dev { target, .. } = &plan.fs[i].op {
            let shm = Step {
                op: FsOp::Tmpfs {
                    target: under(target, "shm"),
                    size: None,
                    mode: 0o1777,
                    replace: true,
                },
                at: plan.fs[i].at.clone(),
            };
            plan.fs.insert(i + 1, shm);
            i += 1;
        }
        i += 1;
    }
    let mut asked = 0u64;
    let mut open = 0u64;
    for step in &plan.fs {
        if let FsOp::Tmpfs { size, target, .. } = &step.op {
            match size {
                Some(n) => {
                    asked = asked.saturating_add(*n);
                    if asked > budget {
                        return Err((
                            step.at.clone(),
                            format!(
                                "tmpfs {target}: the tmpfs sizes add up to {} MiB, more than \
                                 the {} MiB all of a sandbox's tmpfs may take on this machine \
                                 (half its memory): give smaller sizes",
                                asked >> 20,
                                budget >> 20
                            ),
                        ));
                    }
                }
                None => open += 1,
            }
        }
    }
    if let Some(share) = (budget - asked).checked_div(open) {
        let each = share.max(MIN_TMPFS) / 4096 * 4096;
        for step in &mut plan.fs {
            if let FsOp::Tmpfs {
                size: size @ None, ..
            } = &mut step.op
            {
                *size = Some(each);
            }
        }
    }
    Ok(())
}

/// The source of a writable bind among `ops` that holds the host path
/// `source` below it: symlinks there are the sandbox's to make.
pub fn writable_holder<'a>(ops: &'a [Step<MountOp>], source: &str) -> Option<&'a str> {
    use super::validate::normalize;
    ops.iter().find_map(|s| match &s.op {
        MountOp::Attach {
            source: outer,
            flags,
            ..
        } if !flags.ro && {
            let (inner, outer) = (normalize(source), normalize(outer));
            inner != outer && super::validate::within(&inner, &outer)
        } =>
        {
            Some(outer.as_str())
        }
        _ => None,
    })
}

/// Where a path of the sandbox comes from, as far as the plan tells.
#[derive(Debug, PartialEq)]
pub enum Origin {
    /// A host path: what a bind shows there.
    Host(String),
    /// Something else: a tmpfs, proc, a file or link the profile makes.
    Elsewhere,
    /// Nothing: the empty root has nothing there.
    Missing,
}

/// The last step that mounts something holding the normalized path `path`
/// inside (the mount a program sees there; remounts only change flags).
pub fn holder<'a>(plan: &'a Plan, path: &str) -> Option<&'a Step<FsOp>> {
    use super::validate::{normalize, within};
    plan.fs.iter().rev().find(|s| {
        s.op.is_mount()
            && !matches!(s.op, FsOp::RemountRo { .. } | FsOp::Protect { .. })
            && within(path, &normalize(s.op.target()))
    })
}

/// Where the sandbox's `path` comes from: the profile's symlinks followed
/// (as seen inside), then the last mount that holds it — a bind gives its
/// source plus the rest of the path.
pub fn origin(plan: &Plan, path: &str) -> Origin {
    use super::validate::normalize;
    let holds = |t: &str, p: &str| super::validate::within(p, t);
    let mut path = normalize(path);
    // The profile's own links (/bin -> usr/bin), at most as many as the kernel follows.
    for _ in 0..40 {
        let link = plan.fs.iter().rev().find_map(|s| match &s.op {
            FsOp::Symlink {
                points_to, target, ..
            } if holds(&normalize(target), &path) => Some((normalize(target), points_to.clone())),
            _ => None,
        });
        let Some((target, points_to)) = link else {
            break;
        };
        let rest = path[target.len()..].to_string();
        let parent = target.rsplit_once('/').map_or("", |(p, _)| p);
        let dest = if points_to.starts_with('/') {
            points_to
        } else {
            format!("{parent}/{points_to}")
        };
        path = normalize(&format!("{dest}{rest}"));
    }
    match holder(plan, &path).map(|s| &s.op) {
        Some(FsOp::Bind { source, target, .. } | FsOp::Overlay { source, target, .. }) => {
            let rest = &path[normalize(target).len()..];
            Origin::Host(format!("{}{rest}", source.trim_end_matches('/')))
        }
        Some(_) => Origin::Elsewhere,
        None if plan.root.is_some() || plan.fs.iter().any(|s| normalize(s.op.target()) == path) => {
            Origin::Elsewhere
        }
        None => Origin::Missing,
    }
}

/// The first step whose target lies inside an earlier read-only bind and
/// does not exist in that bind's host source: building the root would have
/// to create its mount point (or file, directory, link) in a read-only
/// mount, which fails (EROFS). `exists` answers for host paths. Returns the
/// step's position and a message naming both steps and the usual fixes.
pub fn needs_a_mount_point_in_a_read_only_bind(
    plan: &Plan,
    exists: impl Fn(&str) -> bool,
) -> Option<(crate::located::Pos, String)> {
    use super::validate::normalize;
    // Mounts made so far: (target, host source if a read-only bind, step).
    let mut mounts: Vec<(String, Option<&str>, &Step<FsOp>)> = Vec::new();
    for step in &plan.fs {
        let op = &step.op;
        if matches!(
            op,
            FsOp::RemountRo { .. } | FsOp::Chmod { .. } | FsOp::Protect { .. }
        ) {
            continue;
        }
        let target = normalize(op.target());
        // The latest mount that holds the target (not the target itself).
        let holder = mounts
            .iter()
            .rev()
            .find(|(t, _, _)| t != &target && super::validate::within(&target, t));
        if let Some((outer, Some(source), outer_step)) = holder {
            let rest = &target[outer.len()..];
            let host = format!("{}{}", source.trim_end_matches('/'), rest);
            if !exists(&host) {
                return Some((
                    step.at.clone(),
                    format!(
                        "{target} is inside the read-only bind of {outer} ({}), and {host} does \
                         not exist on the host, so its mount point cannot be made: create it on \
                         the host, bind {outer} with rw: true, or put a tmpfs at a parent of \
                         {target} first",
                        outer_step.at
                    ),
                ));
            }
        }
        if op.is_mount() {
            let ro_source = match op {
                FsOp::Bind {
                    source,
                    rw: false,
                    optional,
                    ..
                } => {
                    if *optional && !exists(source) {
                        continue; // left out at launch
                    }
                    Some(source.as_str())
                }
                _ => None,
            };
            mounts.push((target, ro_source, step));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Located, Pos};

    fn at(line: usize) -> Pos {
        Pos {
            file: "p.rhai".into(),
            line,
            col: 1,
        }
    }

    fn plan(ops: Vec<FsOp>) -> Plan {
        let mut p = Plan::new("t", "p.rhai");
        p.fs = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| Step { op, at: at(i + 1) })
            .collect();
        p
    }

    fn ops(p: &Plan) -> Vec<MountOp> {
        compile(p).into_iter().map(|s| s.op).collect()
    }

    #[test]
    fn binds_keep_their_flags_and_remounts_come_after_pivot_root() {
        let p = plan(vec![
            FsOp::RemountRo {
                target: "/home".into(),
            },
            FsOp::Bind {
                source: "/usr".into(),
                target: "/usr".into(),
                rw: false,
                dev: false,
                optional: false,
                replace: false,
                create: false,
                exec: false,
            },
            FsOp::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                rw: true,
                dev: true,
                optional: true,
                replace: false,
                create: false,
                exec: false,
            },
        ]);
        let compiled = compile(&p);
        let got: Vec<MountOp> = compiled.iter().map(|s| s.op.clone()).collect();
        assert_eq!(
            got,
            vec![
                MountOp::RootTmpfs,
                MountOp::Attach {
                    source: "/usr".into(),
                    target: "/usr".into(),
                    flags: Flags {
                        ro: true,
                        ..Flags::NOSUID_NODEV
                    },
                    optional: false
                },
                MountOp::Attach {
                    source: "/srv/data".into(),
                    target: "/data".into(),
                    flags: Flags {
                        nosuid: true,
                        ..Flags::default()
                    },
                    optional: true
                },
                MountOp::PivotRoot,
                MountOp::RemountRo {
                    target: "/home".into()
                },
            ]
        );
        // Each operation points at the step it came from.
        assert_eq!(compiled[1].at, at(2));
        assert_eq!(compiled[4].at, at(1));
        assert_eq!(
            got[1].to_string(),
            "attach    /usr -> /usr (ro,nosuid,nodev)"
        );
    }

    #[test]
    fn proc_is_protected_and_dev_is_minimal() {
        let p = plan(vec![
            FsOp::Proc {
                target: "/proc/".into(),
                replace: false,
            },
            FsOp::Dev {
                target: "/dev".into(),
                replace: false,
            },
        ]);
        let got = ops(&p);
        assert!(got.contains(&MountOp::Mask {
            target: "/proc/kcore".into()
        }));
        assert!(got.contains(&MountOp::ReadOnly {
            target: "/proc/sys".into()
        }));
        let proc_at = got
            .iter()
            .position(|o| matches!(o, MountOp::Fs { fstype: "proc", .. }))
            .unwrap();
        let first_mask = got
            .iter()
            .position(|o| matches!(o, MountOp::Mask { .. }))
            .unwrap();
        assert!(proc_at < first_mask, "proc is mounted before it is masked");
        let attached: Vec<(&str, bool)> = got
            .iter()
            .filter_map(|o| match o {
                MountOp::Attach {
                    source, optional, ..
                } => Some((source.as_str(), *optional)),
                _ => None,
            })
            .collect();
        assert_eq!(attached.len(), DEV_NODES.len());
        assert!(attached.contains(&("/dev/tty", true)));
        assert!(attached.contains(&("/dev/null", false)));
        assert!(got.contains(&MountOp::Fs {
            fstype: "devpts",
            target: "/dev/pts".into(),
            flags: Flags::NOSUID_NOEXEC,
            data: Some("newinstance,ptmxmode=0666,mode=620".into()),
        }));
        assert!(got.contains(&MountOp::Symlink {
            points_to: "pts/ptmx".into(),
            target: "/dev/ptmx".into(),
            replace: false
        }));
    }

    /// The launcher's sized /dev/shm replaces the dev step's own, which
    /// it would cover: one tmpfs there, the sized one.
    #[test]
    fn a_sized_dev_shm_is_mounted_once() {
        let mut p = plan(vec![FsOp::Dev {
            target: "/dev/".into(),
            replace: false,
        }]);
        let shm = |p: &Plan| -> Vec<Option<String>> {
            ops(p)
                .into_iter()
                .filter_map(|o| match o {
                    MountOp::Fs { target, data, .. } if target == "/dev/shm" => Some(data),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(shm(&p), [Some("mode=1777".to_string())]);
        size_tmpfs(&mut p, 1 << 30).unwrap();
        assert_eq!(shm(&p), [Some(format!("mode=1777,size={}", 1u64 << 30))]);
    }

    #[test]
    fn pivot_root_dir_and_no_mount_namespace() {
        let mut p = plan(vec![FsOp::Tmpfs {
            target: "/tmp".into(),
            size: Some(1 << 20),
            mode: 0o1777,
            replace: false,
        }]);
        p.root = Some(Located {
            value: "/srv/root".into(),
            at: at(9),
        });
        let got = ops(&p);
        assert_eq!(
            got[0],
            MountOp::RootBind {
                source: "/srv/root".into()
            }
        );
        assert_eq!(
            got[1].to_string(),
            "mount     tmpfs -> /tmp (nosuid,nodev) mode=1777,size=1048576"
        );
        p.namespaces.mount = false;
        assert!(compile(&p).is_empty());
    }

    #[test]
    fn a_target_inside_a_read_only_bind_must_exist_on_the_host() {
        let bind = FsOp::plain_bind;
        let host = ["/usr", "/usr/share", "/usr/lib", "/srv/data"];
        let exists = |p: &str| host.contains(&p);
        let p = plan(vec![
            bind("/usr", "/usr", false),
            bind("/srv/data", "/usr/share", false),
            bind("/srv/data", "/usr/lib/app", false),
        ]);
        let (at_, msg) = needs_a_mount_point_in_a_read_only_bind(&p, exists).unwrap();
        assert_eq!(at_, at(3));
        assert!(
            msg.contains("/usr/lib/app is inside the read-only bind of /usr (p.rhai:1:1)")
                && msg.contains("/usr/lib/app does not exist on the host"),
            "{msg}"
        );
        // A writable outer bind, or a tmpfs in between, can take the mount point.
        let p = plan(vec![
            bind("/usr", "/usr", true),
            bind("/srv/data", "/usr/lib/app", false),
        ]);
        assert_eq!(needs_a_mount_point_in_a_read_only_bind(&p, exists), None);
        let p = plan(vec![
            bind("/usr", "/usr", false),
            FsOp::Tmpfs {
                target: "/usr/lib".into(),
                size: None,
                mode: 0o755,
                replace: false,
            },
            bind("/srv/data", "/usr/lib/app", false),
        ]);
        assert_eq!(needs_a_mount_point_in_a_read_only_bind(&p, exists), None);
    }

    #[test]
    fn origins_follow_the_profiles_links_into_its_binds() {
        let p = plan(vec![
            FsOp::Bind {
                source: "/usr".into(),
                target: "/usr".into(),
                rw: false,
                dev: false,
                optional: false,
                replace: false,
                create: false,
                exec: false,
            },
            FsOp::Symlink {
                points_to: "usr/bin".into(),
                target: "/bin".into(),
                replace: false,
            },
            FsOp::Tmpfs {
                target: "/tmp".into(),
                size: None,
                mode: 0o1777,
                replace: false,
            },
        ]);
        assert_eq!(origin(&p, "/bin/sh"), Origin::Host("/usr/bin/sh".into()));
        assert_eq!(
            origin(&p, "/usr/local/bin/x"),
            Origin::Host("/usr/local/bin/x".into())
        );
        assert_eq!(origin(&p, "/tmp/x"), Origin::Elsewhere);
        assert_eq!(origin(&p, "/opt/x"), Origin::Missing);
    }

    #[test]
    fn tmpfs_mounts_share_a_budget() {
        let tmpfs = |target: &str, size: Option<u64>| FsOp::Tmpfs {
            target: target.into(),
            size,
            mode: 0o755,
            replace: false,
        };
        let mut p = plan(vec![
            tmpfs("/tmp", None),
            tmpfs("/run", Some(64 << 20)),
            FsOp::Dev {
                target: "/dev".into(),
                replace: false,
            },
        ]);
        size_tmpfs(&mut p, 1 << 30).unwrap();
        let sizes: Vec<(&str, Option<u64>)> =
            p.fs.iter()
                .filter_map(|s| match &s.op {
                    FsOp::Tmpfs { target, size, .. } => Some((target.as_str(), *size)),
                    _ => None,
                })
                .collect();
        let each = ((1u64 << 30) - (64 << 20)) / 2;
        assert_eq!(
            sizes,
            [
                ("/tmp", Some(each)),
                ("/run", Some(64 << 20)),
                ("/dev/shm", Some(each))
            ]
        );
        let mut p = plan(vec![
            tmpfs("/a", Some(600 << 20)),
            tmpfs("/b", Some(600 << 20)),
        ]);
        let (at_, msg) = size_tmpfs(&mut p, 1 << 30).unwrap_err();
        assert_eq!(at_, at(2));
        assert!(
            msg.contains("1200 MiB") && msg.contains("1024 MiB"),
            "{msg}"
        );
    }
}
