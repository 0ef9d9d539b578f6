//! The hand-written BPF compiler against the reference: each policy is
//! compiled by moksha and, as equivalent rules, by libseccomp
//! (`seccomp_export_bpf`, through probes/scmp_export.c); both programs run
//! in moksha's BPF interpreter (nothing is installed in the test process)
//! for every syscall number of every allowed ABI and a grid of argument
//! values, and must give the same verdict.

use moksha::located::Pos;
use moksha::policy::bpf::{self, Arch, Insn};
use moksha::policy::seccomp::{Abi, Action, Cond, Mode, Seccomp, Test, GROUPS};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn helper() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("moksha-test-scmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/probes/scmp_export.c");
        let out = Command::new("cc")
            .args(["-O", "-Wall", "-o"])
            .arg(dir.join("scmp_export"))
            .arg(&src)
            .arg("-lseccomp")
            .output()
            .expect("cc is needed to build the libseccomp helper");
        assert!(
            out.status.success(),
            "cc -lseccomp failed (libseccomp-dev is needed):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join("scmp_export")
    })
}

/// `(arg & mask) == value` on one argument; mask 0 holds for any value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cube {
    mask: u64,
    value: u64,
}

impl Cube {
    fn meets(self, o: Cube) -> bool {
        (self.value ^ o.value) & self.mask & o.mask == 0
    }
    fn within(self, o: Cube) -> bool {
        o.mask & !self.mask == 0 && self.meets(o)
    }
}

/// `node` minus the union of `cubes`, as disjoint cubes.
fn minus(node: Cube, cubes: &[Cube]) -> Vec<Cube> {
    let rel: Vec<Cube> = cubes.iter().copied().filter(|c| c.meets(node)).collect();
    if rel.is_empty() {
        return vec![node];
    }
    if rel.iter().any(|c| node.within(*c)) {
        return Vec::new();
    }
    let free = rel
        .iter()
        .map(|c| c.mask & !node.mask)
        .find(|m| *m != 0)
        .unwrap();
    let bit = free & free.wrapping_neg();
    let mask = node.mask | bit;
    let mut out = minus(
        Cube {
            mask,
            value: node.value,
        },
        &rel,
    );
    out.extend(minus(
        Cube {
            mask,
            value: node.value | bit,
        },
        &rel,
    ));
    out
}

/// The cubes whose union is `cond` (on its argument).
fn cubes(cond: &Cond) -> Vec<Cube> {
    let m = if cond.low32 { 0xffff_ffff } else { u64::MAX };
    let eq = |v: u64| Cube {
        mask: m,
        value: v & m,
    };
    let all = Cube { mask: 0, value: 0 };
    match &cond.test {
        Test::Eq(v) => vec![eq(*v)],
        Test::Ne(v) => minus(all, &[eq(*v)]),
        Test::MaskedEq { mask, value } if value & !mask & m != 0 => Vec::new(),
        Test::MaskedEq { mask, value } => vec![Cube {
            mask: mask & m,
            value: value & m,
        }],
        Test::AnyBits(bits) => (0..64)
            .map(|b| 1u64 << b)
            .filter(|b| bits & m & b != 0)
            .map(|b| Cube { mask: b, value: b })
            .collect(),
        Test::In(list) => list.iter().map(|v| eq(*v)).collect(),
        Test::NotIn(list) => minus(all, &list.iter().map(|v| eq(*v)).collect::<Vec<_>>()),
    }
}

fn action(a: Action) -> String {
    match a {
        Action::Allow => "allow".into(),
        Action::Errno(n) => format!("errno {n}"),
        Action::Kill => "kill".into(),
        Action::Log => "log".into(),
        Action::Trap => "trap".into(),
    }
}

fn scmp_abi(abi: Abi) -> &'static str {
    match abi {
        Abi::X86_64 => "x86_64",
        Abi::I386 => "x86",
        Abi::X32 => "x32",
        Abi::Aarch64 => unreachable!(),
    }
}

/// The ABIs the policy lets through on x86_64.
fn abis(p: &Seccomp) -> Vec<Abi> {
    let mut v = vec![Abi::X86_64];
    if p.i386 {
        v.push(Abi::I386);
    }
    if p.x32 {
        v.push(Abi::X32);
    }
    v
}

/// The policy as libseccomp rules: first-match tests become disjoint
/// regions of the tested argument.
fn rules(p: &Seccomp) -> String {
    let default = match p.mode {
        Mode::Denylist => Action::Allow,
        Mode::Allowlist => p.unlisted,
    };
    let mut o = format!("default {}\n", action(default));
    for abi in abis(p) {
        o += &format!("abi {}\n", scmp_abi(abi));
        // i386 arguments are 32 bits: their upper half is known zero.
        let start = match abi {
            Abi::I386 => Cube {
                mask: 0xffff_ffff_0000_0000,
                value: 0,
            },
            _ => Cube { mask: 0, value: 0 },
        };
        for (name, _) in abi.table().iter() {
            let t = p.treatment_on(abi, name);
            let args: BTreeSet<u8> = t.tests.iter().map(|(c, _)| c.arg).collect();
            assert!(args.len() <= 1, "{name}: tests on several arguments");
            let arg = args.first().copied().unwrap_or(0);
            let mut covered: Vec<Cube> = Vec::new();
            let emit = |region: Vec<Cube>, a: Action, o: &mut String| {
                if a == default {
                    return;
                }
                for c in region {
                    let c = Cube {
                        mask: c.mask & !start.mask,
                        value: c.value & !start.mask,
                    };
                    if c.mask == 0 {
                        *o += &format!("rule {name} {} 0\n", action(a));
                    } else {
                        *o += &format!(
                            "rule {name} {} 1 {arg} {:#x} {:#x}\n",
                            action(a),
                            c.mask,
                            c.value
                        );
                    }
                }
            };
            for (cond, a) in &t.tests {
                let cs = cubes(cond);
                let region = cs
                    .iter()
                    .flat_map(|c| minus(*c, &covered))
                    .collect::<Vec<_>>();
                let region: Vec<Cube> = region.into_iter().filter(|c| c.meets(start)).collect();
                emit(region, *a, &mut o);
                covered.extend(cs);
            }
            emit(minus(start, &covered), t.action, &mut o);
        }
    }
    o
}

/// libseccomp's program for the rules, and the names it skipped.
fn reference(rules: &str) -> (Vec<Insn>, BTreeSet<(String, String)>) {
    let mut child = Command::new(helper())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "scmp_export: {:?}", out.status);
    let prog = out
        .stdout
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let skipped = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("skip "))
        .filter_map(|l| {
            let mut w = l.split(' ');
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    (prog, skipped)
}

/// Argument values around every value and bit the policy tests.
fn grid(p: &Seccomp, abi: Abi, name: &str) -> Vec<u64> {
    let mut g: BTreeSet<u64> = [0, 1, 0xffff_ffff, 0x8000_0000, 1 << 32, u64::MAX].into();
    for (c, _) in p.treatment_on(abi, name).tests {
        let vals: Vec<u64> = match &c.test {
            Test::Eq(v) | Test::Ne(v) | Test::AnyBits(v) => vec![*v],
            Test::MaskedEq { mask, value } => vec![*mask, *value, mask | value],
            Test::In(l) | Test::NotIn(l) => l.clone(),
        };
        for v in vals {
            g.extend([
                v,
                v.wrapping_add(1),
                v.wrapping_sub(1),
                v | 1 << 32,
                !v,
                v & 0xffff_ffff,
            ]);
            g.extend((0..64).map(|b| 1u64 << b).filter(|b| v & b != 0));
            g.extend([v & v.wrapping_sub(1), v ^ 0xffff_0000]);
        }
    }
    if abi == Abi::I386 {
        g = g.into_iter().map(|v| v & 0xffff_ffff).collect();
    }
    g.into_iter().collect()
}

/// Compares the two programs; returns the disagreements.
fn compare(p: &Seccomp) -> Vec<String> {
    let mine = bpf::compile(p, Arch::X86_64).unwrap();
    let text = rules(p);
    let (theirs, skipped) = reference(&text);
    let mut bad = Vec::new();
    for abi in abis(p) {
        let (arch, bit) = match abi {
            Abi::I386 => (bpf::AUDIT_ARCH_I386, 0),
            Abi::X32 => (bpf::AUDIT_ARCH_X86_64, bpf::X32_SYSCALL_BIT),
            _ => (bpf::AUDIT_ARCH_X86_64, 0),
        };
        let table = abi.table();
        let max = table.iter().map(|(_, n)| n).max().unwrap();
        for nr in (0..max + 20).chain([1000, 0x3fff_ffff]) {
            let name = table.iter().find(|(_, n)| *n == nr).map(|(n, _)| n);
            let skip = |n: &str| skipped.contains(&(scmp_abi(abi).to_string(), n.to_string()));
            // libseccomp 2.5 compares only the low 32 bits of x32
            // arguments, but the kernel gives an x32 filter the whole
            // register: 64-bit tests are moksha's alone there.
            let wide = |n: &str| {
                let t = p.treatment_on(abi, n);
                abi == Abi::X32 && t.tests.iter().any(|(c, _)| !c.low32)
            };
            if name.is_some_and(|n| skip(n) || wide(n)) {
                continue;
            }
            let values = name.map_or(vec![0], |n| grid(p, abi, n));
            for arg in 0..6 {
                for v in &values {
                    let mut args = [0u64; 6];
                    args[arg] = *v;
                    let (a, b) = (
                        bpf::run(&mine, arch, nr | bit, args),
                        bpf::run(&theirs, arch, nr | bit, args),
                    );
                    if a != b {
                        bad.push(format!(
                            "{abi:?} {} ({nr}) args {args:x?}: moksha {a:#x}, libseccomp {b:#x}",
                            name.unwrap_or("-")
                        ));
                    }
                }
                if values.len() == 1 {
                    break;
                }
            }
        }
    }
    if !skipped.is_empty() {
        eprintln!("libseccomp skipped (unknown to it, or refused): {skipped:?}");
    }
    bad
}

fn at() -> Pos {
    Pos::default()
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The policies of the cross-check.
fn policies() -> Vec<(&'static str, Seccomp)> {
    let mut out = vec![("default", Seccomp::default())];
    let all_abis = Seccomp {
        i386: true,
        x32: true,
        ..Seccomp::default()
    };
    out.push(("default, i386 and x32", all_abis.clone()));
    let mut root = all_abis.clone();
    root.refuse_setid_files();
    out.push(("root launch", root));

    let mut allow = Seccomp::empty();
    allow.set_mode(Mode::Allowlist, at());
    allow.i386 = true;
    allow.x32 = true;
    let list = names(&[
        "execve",
        "read",
        "write",
        "ioctl",
        "socket",
        "clone",
        "clone3",
        "personality",
        "fcntl",
        "getuid",
        "socketcall",
        "mmap",
        "exit_group",
    ]);
    allow.set(&list, Action::Allow, None, &at()).unwrap();
    allow.nested_namespaces = false;
    allow.any_personality = false;
    allow.socket_families = Some(vec![1, 2, 10]);
    out.push(("allow-list", allow.clone()));
    allow.unlisted = Action::Kill;
    out.push(("allow-list, kill", allow));

    let mut groups = Seccomp {
        i386: true,
        ..Seccomp::default()
    };
    let acts = [
        Action::EPERM,
        Action::Kill,
        Action::Trap,
        Action::Log,
        Action::Errno(5),
    ];
    for (i, (g, _, _)) in GROUPS.iter().enumerate() {
        if *g == "@namespaces" {
            continue;
        }
        groups
            .set(&names(&[g]), acts[i % acts.len()], None, &at())
            .unwrap();
    }
    out.push(("every group", groups));

    let mut conds = Seccomp {
        i386: true,
        x32: true,
        nested_namespaces: true,
        any_personality: true,
        socket_families: Some(vec![1, 16]),
        ..Seccomp::default()
    };
    let c = |arg, test, low32| Some(Cond { arg, test, low32 });
    let rules: Vec<(&str, Action, Option<Cond>)> = vec![
        ("ioctl", Action::Errno(5), c(1, Test::Eq(0x5401), true)),
        (
            "write",
            Action::Errno(5),
            c(2, Test::Eq(0x1_0000_0002), false),
        ),
        (
            "read",
            Action::Kill,
            c(2, Test::AnyBits(0x8_0000_0001), false),
        ),
        (
            "close",
            Action::Errno(7),
            c(
                0,
                Test::MaskedEq {
                    mask: 0xff,
                    value: 3,
                },
                true,
            ),
        ),
        ("dup", Action::Errno(9), c(0, Test::Ne(4), false)),
        (
            "fcntl",
            Action::Errno(22),
            c(1, Test::In(vec![1031, 1032, 0x1_0000_0001]), false),
        ),
        (
            "fcntl",
            Action::Trap,
            c(1, Test::NotIn(vec![0, 1, 2, 3, 4]), true),
        ),
        ("lseek", Action::Allow, c(2, Test::Eq(0), true)),
    ];
    for (name, a, cond) in rules {
        conds.set(&names(&[name]), a, cond, &at()).unwrap();
    }
    conds
        .set(&names(&["lseek"]), Action::EPERM, None, &at())
        .unwrap();
    conds
        .set(
            &names(&["lseek"]),
            Action::Allow,
            c(2, Test::Eq(0), true),
            &at(),
        )
        .unwrap();
    out.push(("argument conditions", conds));
    out
}

#[test]
fn compiler_agrees_with_libseccomp() {
    let mut report = Vec::new();
    for (what, p) in policies() {
        let bad = compare(&p);
        if !bad.is_empty() {
            report.push(format!(
                "{what}: {} disagreements, e.g.\n  {}",
                bad.len(),
                bad[..bad.len().min(200)].join("\n  ")
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// ABIs a policy refuses answer EPERM for every number (libseccomp cannot
/// give an ABI its own default action, so this half is checked alone).
#[test]
fn refused_abis_answer_eperm() {
    let p = bpf::compile(&Seccomp::default(), Arch::X86_64).unwrap();
    let eperm = bpf::RET_ERRNO | libc::EPERM as u32;
    for nr in 0..1000 {
        assert_eq!(bpf::run(&p, bpf::AUDIT_ARCH_I386, nr, [0; 6]), eperm);
        assert_eq!(
            bpf::run(
                &p,
                bpf::AUDIT_ARCH_X86_64,
                nr | bpf::X32_SYSCALL_BIT,
                [0; 6]
            ),
            eperm
        );
    }
}
