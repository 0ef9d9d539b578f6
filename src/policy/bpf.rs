//! A small compiler from a seccomp `Policy` to a classic BPF program.
//!
//! Layout of the program:
//!
//! ```text
//!   ld arch
//!   arch == native?  no → (x86_64: arch == i386? → i386 section) else kill
//!   ld nr
//!   (x86_64) nr >= 0x40000000 (x32 bit)? → x32 section
//!   native section: a balanced binary search over syscall-number ranges;
//!     each leaf returns an action, or runs the argument tests of one call
//! ```
//!
//! The i386 and x32 sections return EPERM for everything unless the policy
//! allows those ABIs, in which case they are the same search over those
//! ABIs' numbers. Jumps farther than a conditional jump can reach (255
//! instructions) go through an unconditional `ja` trampoline.

use super::seccomp::{Abi, Action, Cond, Seccomp, Test, Treatment};

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// The kernel's limit on a filter's length.
pub const MAX_INSNS: usize = 4096;

// Classic BPF opcodes.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K (not emitted; libseccomp's)
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

// Offsets into struct seccomp_data (little-endian architectures).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}
const fn arg_hi(i: u8) -> u32 {
    20 + 8 * i as u32
}

/// One instruction, as struct sock_filter lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The architectures moksha compiles for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture moksha was built for, if it is supported.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }
    fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }
    /// The native ABI.
    pub fn abi(self) -> Abi {
        match self {
            Arch::X86_64 => Abi::X86_64,
            Arch::Aarch64 => Abi::Aarch64,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

/// The number of a syscall on the native ABI of `arch`.
pub fn number(arch: Arch, name: &str) -> Option<u32> {
    arch.abi().number(name)
}

pub fn ret_value(a: Action) -> u32 {
    match a {
        Action::Allow => RET_ALLOW,
        Action::Errno(n) => RET_ERRNO | (n as u32 & 0xfff),
        Action::Kill => RET_KILL_PROCESS,
        Action::Log => RET_LOG,
        Action::Trap => RET_TRAP,
    }
}

// ---- a tiny assembler with labels ----------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Next,
    L(usize),
}

#[derive(Clone, Debug)]
enum Ins {
    Ld(u32),
    And(u32),
    Jmp {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ret(u32),
    Label(usize),
}

#[derive(Default)]
struct Asm {
    code: Vec<Ins>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn place(&mut self, l: usize) {
        self.code.push(Ins::Label(l));
    }
    fn ld(&mut self, off: u32) {
        self.code.push(Ins::Ld(off));
    }
    fn and(&mut self, k: u32) {
        self.code.push(Ins::And(k));
    }
    fn jmp(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.code.push(Ins::Jmp { code, k, jt, jf });
    }
    fn ret(&mut self, k: u32) {
        self.code.push(Ins::Ret(k));
    }

    /// Resolves labels into offsets, adding `ja` trampolines after a
    /// conditional jump for each branch that cannot reach its target.
    fn assemble(&self) -> Result<Vec<Insn>, String> {
        let n = self.code.len();
        // Per instruction: whether its true / false branch is long.
        let mut long = vec![(false, false); n];
        loop {
            // Positions with the current trampolines.
            let mut pos = vec![0usize; n + 1];
            let mut label_pos = vec![usize::MAX; self.labels];
            let mut p = 0;
            for (i, ins) in self.code.iter().enumerate() {
                pos[i] = p;
                p += match ins {
                    Ins::Label(l) => {
                        label_pos[*l] = p;
                        0
                    }
                    Ins::Jmp { .. } => 1 + long[i].0 as usize + long[i].1 as usize,
                    _ => 1,
                };
            }
            pos[n] = p;
            let mut changed = false;
            for (i, ins) in self.code.iter().enumerate() {
                if let Ins::Jmp { jt, jf, .. } = ins {
                    let after = pos[i] + 1;
                    let reach = |t: &Target| match t {
                        Target::Next => 0,
                        Target::L(l) => label_pos[*l].saturating_sub(after),
                    };
                    if !long[i].0 && reach(jt) > 255 - 2 {
                        long[i].0 = true;
                        changed = true;
                    }
                    if !long[i].1 && reach(jf) > 255 - 2 {
                        long[i].1 = true;
                        changed = true;
                    }
                }
            }
            if changed {
                continue;
            }
            // Emit.
            let mut out: Vec<Insn> = Vec::with_capacity(p);
            for (i, ins) in self.code.iter().enumerate() {
                match ins {
                    Ins::Label(_) => {}
                    Ins::Ld(off) => out.push(insn(LD_W_ABS, 0, 0, *off)),
                    Ins::And(k) => out.push(insn(ALU_AND_K, 0, 0, *k)),
                    Ins::Ret(k) => out.push(insn(RET_K, 0, 0, *k)),
                    Ins::Jmp { code, k, jt, jf } => {
                        let here = pos[i];
                        let tramps = long[i].0 as usize + long[i].1 as usize;
                        let next = here + 1 + tramps;
                        let target = |t: &Target| -> Result<usize, String> {
                            match t {
                                Target::Next => Ok(next),
                                Target::L(l) if label_pos[*l] == usize::MAX => {
                                    Err(format!("label {l} never placed"))
                                }
                                Target::L(l) if label_pos[*l] <= here => {
                                    Err(format!("label {l} is behind its jump"))
                                }
                                Target::L(l) => Ok(label_pos[*l]),
                            }
                        };
                        let (t, f) = (target(jt)?, target(jf)?);
                        let mut slot = here + 1;
                        let mut off_t = t - (here + 1);
                        let mut off_f = f - (here + 1);
                        let mut extra = Vec::new();
                        if long[i].0 {
                            off_t = slot - (here + 1);
                            extra.push(insn(JA, 0, 0, (t - (slot + 1)) as u32));
                            slot += 1;
                        }
                        if long[i].1 {
                            off_f = slot - (here + 1);
                            extra.push(insn(JA, 0, 0, (f - (slot + 1)) as u32));
                        }
                        if off_t > 255 || off_f > 255 {
                            return Err("a jump is out of reach".into());
                        }
                        out.push(insn(*code, off_t as u8, off_f as u8, *k));
                        out.extend(extra);
                    }
                }
            }
            if out.len() > MAX_INSNS {
                return Err(format!(
                    "the seccomp filter has {} instructions; the kernel takes at most {MAX_INSNS}",
                    out.len()
                ));
            }
            return Ok(out);
        }
    }
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

// ---- the policy ----------------------------------------------------------

/// What a range of syscall numbers gets.
#[derive(Clone, Debug, PartialEq)]
enum Leaf {
    Plain(Action),
    Tests(Treatment),
}

/// Emits the test of `cond`: jumps to `yes` when it holds, else to `no`.
fn emit_cond(a: &mut Asm, cond: &Cond, yes: usize, no: usize) {
    let (y, n) = (Target::L(yes), Target::L(no));
    let lo = |v: u64| v as u32;
    let hi = |v: u64| (v >> 32) as u32;
    let arg = cond.arg;
    // Equality of the argument with v (after the mask): `t` when equal.
    let eq = |a: &mut Asm, mask: u64, v: u64, t: Target, f: Target| {
        if !cond.low32 {
            a.ld(arg_hi(arg));
            if hi(mask) != u32::MAX {
                a.and(hi(mask));
            }
            a.jmp(JEQ_K, hi(v), Target::Next, f);
        }
        a.ld(arg_lo(arg));
        if lo(mask) != u32::MAX {
            a.and(lo(mask));
        }
        a.jmp(JEQ_K, lo(v), t, f);
    };
    match &cond.test {
        Test::Eq(v) => eq(a, u64::MAX, *v, y, n),
        Test::Ne(v) => eq(a, u64::MAX, *v, n, y),
        Test::MaskedEq { mask, value } => eq(a, *mask, *value, y, n),
        Test::AnyBits(m) => {
            a.ld(arg_lo(arg));
            if cond.low32 || hi(*m) == 0 {
                a.jmp(JSET_K, lo(*m), y, n);
            } else {
                a.jmp(JSET_K, lo(*m), y, Target::Next);
                a.ld(arg_hi(arg));
                a.jmp(JSET_K, hi(*m), y, n);
            }
        }
        Test::In(list) | Test::NotIn(list) => {
            let (found, missing) = match cond.test {
                Test::In(_) => (y, n),
                _ => (n, y),
            };
            if cond.low32 {
                a.ld(arg_lo(arg));
                for v in list {
                    a.jmp(JEQ_K, lo(*v), found, Target::Next);
                }
                a.jmp(JEQ_K, 0, missing, missing);
            } else {
                for v in list {
                    let next = a.label();
                    eq(a, u64::MAX, *v, found, Target::L(next));
                    a.place(next);
                }
                a.jmp(JEQ_K, 0, missing, missing);
            }
        }
    }
}

fn emit_leaf(a: &mut Asm, leaf: &Leaf) {
    match leaf {
        Leaf::Plain(act) => a.ret(ret_value(*act)),
        Leaf::Tests(t) => {
            for (cond, act) in &t.tests {
                let (yes, no) = (a.label(), a.label());
                emit_cond(a, cond, yes, no);
                a.place(yes);
                a.ret(ret_value(*act));
                a.place(no);
            }
            a.ret(ret_value(t.action));
        }
    }
}

/// Binary search over ranges: `segs` are (first number, leaf), sorted, the
/// first starting at the lowest number the accumulator can hold here.
fn emit_tree(a: &mut Asm, segs: &[(u32, Leaf)]) {
    if segs.len() == 1 {
        emit_leaf(a, &segs[0].1);
        return;
    }
    let mid = segs.len() / 2;
    let right = a.label();
    a.jmp(JGE_K, segs[mid].0, Target::L(right), Target::Next);
    emit_tree(a, &segs[..mid]);
    a.place(right);
    emit_tree(a, &segs[mid..]);
}

/// The search for one ABI: `offset` is added to each number (the x32 bit),
/// `default` is what unlisted numbers get.
fn emit_section(a: &mut Asm, policy: &Seccomp, abi: Abi, offset: u32, default: Action) {
    let mut entries: Vec<(u32, Leaf)> = Vec::new();
    for name in policy.special_names_on(abi) {
        if let Some(nr) = abi.number(name) {
            let t = policy.treatment_on(abi, name);
            let leaf = if t.tests.is_empty() {
                Leaf::Plain(t.action)
            } else {
                Leaf::Tests(t)
            };
            entries.push((nr + offset, leaf));
        }
    }
    entries.sort_by_key(|(nr, _)| *nr);
    entries.dedup_by_key(|(nr, _)| *nr);
    // Ranges: gaps get the default; neighbours with the same plain action merge.
    let mut segs: Vec<(u32, Leaf)> = Vec::new();
    let push = |segs: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf| {
        if let Some((_, last)) = segs.last() {
            if matches!(last, Leaf::Plain(_)) && *last == leaf {
                return;
            }
        }
        segs.push((start, leaf));
    };
    let mut cursor = offset;
    for (nr, leaf) in entries {
        if nr > cursor {
            push(&mut segs, cursor, Leaf::Plain(default));
        }
        push(&mut segs, nr, leaf);
        cursor = nr + 1;
    }
    push(&mut segs, cursor, Leaf::Plain(default));
    emit_tree(a, &segs);
}

type Last = Option<(Seccomp, Arch, Vec<Insn>)>;
static LAST: std::sync::Mutex<Last> = std::sync::Mutex::new(None);

/// Empties `compile`'s cache: for a process that compiles no more and
/// holds its memory for long (the launcher, once its sandbox is set up).
pub fn forget_compiled() {
    if let Ok(mut last) = LAST.lock() {
        *last = None;
    }
}

/// Compiles the policy for `arch`. The last program compiled is kept: a
/// launch validates the profile's plan and then the launcher's resolved
/// one, `moksha plan` validates and then shows, most often the same
/// policy (a compile is ~0.12 M instructions; comparing, a few thousand).
pub fn compile(policy: &Seccomp, arch: Arch) -> Result<Vec<Insn>, String> {
    let cached = |last: &Last| {
        last.as_ref()
            .filter(|(p, a, _)| *a == arch && p == policy)
            .map(|(.., prog)| prog.clone())
    };
    if let Some(prog) = LAST.lock().ok().and_then(|last| cached(&last)) {
        return Ok(prog);
    }
    let prog = compile_uncached(policy, arch)?;
    if let Ok(mut last) = LAST.lock() {
        *last = Some((policy.clone(), arch, prog.clone()));
    }
    Ok(prog)
}

/// `compile`, without the cache: for a policy compiled once by a process
/// that then holds its memory for long (the supervisor's own filter),
/// which the cache's copy of the policy would add to.
pub fn compile_uncached(policy: &Seccomp, arch: Arch) -> Result<Vec<Insn>, String> {
    let mut a = Asm::default();
    let default = match policy.mode {
        super::seccomp::Mode::Denylist => Action::Allow,
        super::seccomp::Mode::Allowlist => policy.unlisted,
    };
    let refuse = ret_value(Action::EPERM);
    let not_native = a.label();
    a.ld(OFF_ARCH);
    a.jmp(JEQ_K, arch.audit(), Target::Next, Target::L(not_native));
    a.ld(OFF_NR);
    let x32 = a.label();
    if arch == Arch::X86_64 {
        a.jmp(JGE_K, X32_SYSCALL_BIT, Target::L(x32), Target::Next);
    }
    emit_section(&mut a, policy, arch.abi(), 0, default);
    if arch == Arch::X86_64 {
        a.place(x32);
        if policy.x32 {
            emit_section(&mut a, policy, Abi::X32, X32_SYSCALL_BIT, default);
        } else {
            a.ret(refuse);
        }
    }
    a.place(not_native);
    if arch == Arch::X86_64 {
        let unknown = a.label();
        a.jmp(JEQ_K, AUDIT_ARCH_I386, Target::Next, Target::L(unknown));
        if policy.i386 {
            a.ld(OFF_NR);
            emit_section(&mut a, policy, Abi::I386, 0, default);
        } else {
            a.ret(refuse);
        }
        a.place(unknown);
    }
    // An architecture this filter was not written for: nothing it says
    // can be trusted.
    a.ret(RET_KILL_PROCESS);
    a.assemble()
}

/// A human listing of a compiled program (for tests and debugging).
pub fn disassemble(prog: &[Insn]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for (i, x) in prog.iter().enumerate() {
        let _ = match x.code {
            LD_W_ABS => writeln!(o, "{i:4}: ld [{}]", x.k),
            ALU_AND_K => writeln!(o, "{i:4}: and {:#x}", x.k),
            JA => writeln!(o, "{i:4}: ja {}", i + 1 + x.k as usize),
            RET_K => writeln!(o, "{i:4}: ret {:#x}", x.k),
            c => writeln!(
                o,
                "{i:4}: {} {:#x} ? {} : {}",
                match c {
                    JEQ_K => "jeq",
                    JGT_K => "jgt",
                    JGE_K => "jge",
                    JSET_K => "jset",
                    _ => "?",
                },
                x.k,
                i + 1 + x.jt as usize,
                i + 1 + x.jf as usize
            ),
        };
    }
    o
}

/// Runs a program on one call, as the kernel would (for tests, and for
/// libseccomp's programs in the differential test).
pub fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (16..64).contains(&o) => {
                let i = ((o - 16) / 8) as usize;
                if (o - 16) % 8 == 0 {
                    args[i] as u32
                } else {
                    (args[i] >> 32) as u32
                }
            }
            _ => panic!("load from offset {off}"),
        }
    };
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    loop {
        let x = prog[pc];
        pc += 1;
        match x.code {
            LD_W_ABS => acc = word(x.k),
            ALU_AND_K => acc &= x.k,
            JA => pc += x.k as usize,
            RET_K => return x.k,
            JEQ_K | JGT_K | JGE_K | JSET_K => {
                let hit = match x.code {
                    JEQ_K => acc == x.k,
                    JGT_K => acc > x.k,
                    JGE_K => acc >= x.k,
                    _ => acc & x.k != 0,
                };
                pc += if hit { x.jt } else { x.jf } as usize;
            }
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::located::Pos;
    use crate::policy::seccomp::Mode;
    use crate::policy::seccomp::{Entry, I386_ENTRIES};
    use crate::policy::syscalls;

    const X86: u32 = AUDIT_ARCH_X86_64;

    #[test]
    fn the_kept_program_is_only_given_for_the_same_policy_and_arch() {
        let default = Seccomp::default();
        let mut other = Seccomp::default();
        other.rules.remove("ptrace");
        let first = compile_uncached(&default, Arch::X86_64).unwrap();
        let differs = compile_uncached(&other, Arch::X86_64).unwrap();
        assert_ne!(first, differs);
        for _ in 0..2 {
            assert_eq!(compile(&default, Arch::X86_64).unwrap(), first);
            assert_eq!(compile(&other, Arch::X86_64).unwrap(), differs);
        }
        assert_eq!(
            compile(&default, Arch::Aarch64).unwrap(),
            compile_uncached(&default, Arch::Aarch64).unwrap()
        );
    }

    fn nr(name: &str) -> u32 {
        number(Arch::X86_64, name).unwrap()
    }

    fn call(prog: &[Insn], name: &str, args: [u64; 6]) -> u32 {
        run(prog, X86, nr(name), args)
    }

    fn at() -> Pos {
        Pos::default()
    }

    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

    #[test]
    fn default_policy_on_x86_64() {
        let p = compile(&Seccomp::default(), Arch::X86_64).unwrap();
        let z = [0u64; 6];
        assert_eq!(call(&p, "read", z), RET_ALLOW);
        assert_eq!(call(&p, "ptrace", z), EPERM);
        assert_eq!(call(&p, "mount", z), EPERM);
        assert_eq!(call(&p, "fsopen", z), ENOSYS);
        assert_eq!(call(&p, "clone3", z), ENOSYS);
        assert_eq!(call(&p, "setns", z), EPERM);
        // ioctl: TIOCSTI refused even with junk in the upper half.
        assert_eq!(call(&p, "ioctl", [0, 0x5412, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, "ioctl", [0, 0x1_0000_5412, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, "ioctl", [0, 0x541c, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, "ioctl", [0, 0x5401, 0, 0, 0, 0]), RET_ALLOW);
        // socket families.
        let eafno = RET_ERRNO | libc::EAFNOSUPPORT as u32;
        assert_eq!(call(&p, "socket", [17, 3, 0, 0, 0, 0]), eafno);
        assert_eq!(call(&p, "socket", [1, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(&p, "socket", [10, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(&p, "socket", [16, 3, 0, 0, 0, 0]), RET_ALLOW);
        // Namespaces.
        assert_eq!(call(&p, "unshare", [0x1000_0000, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, "unshare", [0x80, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, "unshare", [0x400, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(&p, "clone", [0x1000_0011, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, "clone", [0x01200011, 0, 0, 0, 0, 0]), RET_ALLOW);
        // personality.
        assert_eq!(call(&p, "personality", [0x0040_0000, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            call(&p, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(call(&p, "personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
        // Other ABIs.
        assert_eq!(run(&p, X86, X32_SYSCALL_BIT | 39, z), EPERM);
        assert_eq!(run(&p, AUDIT_ARCH_I386, 20, z), EPERM);
        assert_eq!(run(&p, 0x1234, 20, z), RET_KILL_PROCESS);
    }

    /// The compiled program agrees with the policy's own treatment for every
    /// x86_64 syscall, including through long jumps (a big allow-list).
    #[test]
    fn allowlist_of_every_other_call_matches_the_policy() {
        let mut pol = Seccomp::empty();
        pol.set_mode(Mode::Allowlist, at());
        let names: Vec<String> = syscalls::X86_64
            .iter()
            .enumerate()
            .filter(|(i, (n, _))| i % 2 == 0 || *n == "execve")
            .map(|(_, (n, _))| n.to_string())
            .collect();
        pol.set(&names, Action::Allow, None, &at()).unwrap();
        pol.set(&["ptrace".into()], Action::Kill, None, &at())
            .unwrap();
        let p = compile(&pol, Arch::X86_64).unwrap();
        assert!(p.len() > 300, "big enough to need trampolines: {}", p.len());
        for (name, n) in syscalls::X86_64.iter() {
            let t = pol.treatment(name);
            let want = if t.tests.is_empty() {
                ret_value(t.action)
            } else {
                continue;
            };
            assert_eq!(run(&p, X86, n, [0; 6]), want, "{name}");
        }
        assert_eq!(run(&p, X86, 5000, [0; 6]), EPERM);
    }

    #[test]
    fn conditions_64_and_32_bit() {
        let mut pol = Seccomp::empty();
        let c = |test, low32| Cond {
            arg: 2,
            test,
            low32,
        };
        pol.set(
            &["write".into()],
            Action::Errno(5),
            Some(c(Test::Eq(0x1_0000_0002), false)),
            &at(),
        )
        .unwrap();
        pol.set(
            &["read".into()],
            Action::Kill,
            Some(c(Test::AnyBits(0x8_0000_0000), false)),
            &at(),
        )
        .unwrap();
        pol.set(
            &["close".into()],
            Action::Errno(7),
            Some(c(
                Test::MaskedEq {
                    mask: 0xff,
                    value: 3,
                },
                true,
            )),
            &at(),
        )
        .unwrap();
        pol.set(
            &["dup".into()],
            Action::Errno(9),
            Some(c(Test::Ne(4), false)),
            &at(),
        )
        .unwrap();
        let p = compile(&pol, Arch::X86_64).unwrap();
        let a = |v: u64| [0, 0, v, 0, 0, 0];
        assert_eq!(call(&p, "write", a(0x1_0000_0002)), RET_ERRNO | 5);
        assert_eq!(call(&p, "write", a(2)), RET_ALLOW);
        assert_eq!(call(&p, "read", a(0x8_0000_0000)), RET_KILL_PROCESS);
        assert_eq!(call(&p, "read", a(0x8000)), RET_ALLOW);
        assert_eq!(call(&p, "close", a(0xff_ff03)), RET_ERRNO | 7);
        assert_eq!(call(&p, "close", a(0x04)), RET_ALLOW);
        assert_eq!(call(&p, "dup", a(4)), RET_ALLOW);
        assert_eq!(call(&p, "dup", a(0x1_0000_0004)), RET_ERRNO | 9);
    }

    #[test]
    fn compat_abis_when_allowed() {
        let pol = Seccomp {
            i386: true,
            x32: true,
            ..Default::default()
        };
        let p = compile(&pol, Arch::X86_64).unwrap();
        // i386 getpid is 20, ptrace 26; x32 getpid is 39|bit.
        assert_eq!(run(&p, AUDIT_ARCH_I386, 20, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH_I386, 26, [0; 6]), EPERM);
        assert_eq!(run(&p, X86, X32_SYSCALL_BIT | 39, [0; 6]), RET_ALLOW);
        let ptrace = syscalls::X32
            .iter()
            .find(|(n, _)| *n == "ptrace")
            .unwrap()
            .1;
        assert_eq!(run(&p, X86, X32_SYSCALL_BIT | ptrace, [0; 6]), EPERM);
        // x32's own ioctl number (514) keeps the terminal guard.
        assert_eq!(
            run(&p, X86, X32_SYSCALL_BIT | 514, [0, 0x5412, 0, 0, 0, 0]),
            EPERM
        );
    }

    fn i386(name: &str) -> u32 {
        Abi::I386
            .table()
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
    }

    #[test]
    fn i386_entries_name_real_calls() {
        for (name, entry) in I386_ENTRIES {
            i386(name);
            let calls: Vec<&str> = match entry {
                Entry::Same(c) | Entry::Opaque(c) => vec![c],
                Entry::Multiplexer { calls, .. } => calls.iter().map(|(_, c)| *c).collect(),
            };
            for c in calls {
                assert!(crate::policy::seccomp::is_syscall(c), "{name} -> {c}");
            }
        }
    }

    /// socketcall's arguments are in memory: a call the policy tests by
    /// argument answers ENOSYS there, the others keep their rule.
    #[test]
    fn i386_multiplexers_keep_every_rule() {
        let mut pol = Seccomp {
            i386: true,
            ..Default::default()
        };
        pol.set(&["connect".into()], Action::Errno(5), None, &at())
            .unwrap();
        pol.set(&["shmget".into()], Action::EPERM, None, &at())
            .unwrap();
        let p = compile(&pol, Arch::X86_64).unwrap();
        let sc = |sub: u64| {
            run(
                &p,
                AUDIT_ARCH_I386,
                i386("socketcall"),
                [sub, 0, 0, 0, 0, 0],
            )
        };
        assert_eq!(sc(1), ENOSYS, "socket: families are filtered");
        assert_eq!(sc(8), ENOSYS, "socketpair too");
        assert_eq!(sc(3), RET_ERRNO | 5, "connect: the profile's rule");
        assert_eq!(sc(0x1_0000_0003), RET_ERRNO | 5, "upper half ignored");
        assert_eq!(sc(2), RET_ALLOW);
        // The direct i386 socket call is filtered as on x86_64.
        let sock = |fam| run(&p, AUDIT_ARCH_I386, i386("socket"), [fam, 1, 0, 0, 0, 0]);
        assert_eq!(sock(17), RET_ERRNO | libc::EAFNOSUPPORT as u32);
        assert_eq!(sock(1), RET_ALLOW);
        // ipc reads the low 16 bits as the call.
        let ipc = |sub: u64| run(&p, AUDIT_ARCH_I386, i386("ipc"), [sub, 0, 0, 0, 0, 0]);
        assert_eq!(ipc(23), EPERM);
        assert_eq!(ipc(0x1_0017), EPERM);
        assert_eq!(ipc(21), RET_ALLOW);
        // Any family allowed: socketcall(SYS_SOCKET) runs.
        pol.socket_families = None;
        pol.set(&["socketpair".into()], Action::Allow, None, &at())
            .unwrap();
        let p = compile(&pol, Arch::X86_64).unwrap();
        assert_eq!(
            run(&p, AUDIT_ARCH_I386, i386("socketcall"), [1; 6]),
            RET_ALLOW
        );
        // socketcall denied itself: every call through it.
        pol.set(&["socketcall".into()], Action::EPERM, None, &at())
            .unwrap();
        let p = compile(&pol, Arch::X86_64).unwrap();
        assert_eq!(run(&p, AUDIT_ARCH_I386, i386("socketcall"), [2; 6]), EPERM);
    }

    #[test]
    fn i386_variants_follow_the_call() {
        let mut pol = Seccomp {
            i386: true,
            ..Default::default()
        };
        let cmd = Cond {
            arg: 1,
            test: Test::Eq(1031),
            low32: true,
        };
        pol.set(&["fcntl".into()], Action::Errno(5), Some(cmd), &at())
            .unwrap();
        let p = compile(&pol, Arch::X86_64).unwrap();
        let call = |name, args| run(&p, AUDIT_ARCH_I386, i386(name), args);
        assert_eq!(call("clock_settime64", [0; 6]), EPERM, "as clock_settime");
        assert_eq!(call("clock_adjtime64", [0; 6]), EPERM);
        assert_eq!(call("fcntl64", [3, 1031, 0, 0, 0, 0]), RET_ERRNO | 5);
        assert_eq!(call("fcntl64", [3, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call("fcntl", [3, 1031, 0, 0, 0, 0]), RET_ERRNO | 5);
        // Old mmap takes a pointer: plain while mmap is untested.
        assert_eq!(call("mmap", [0; 6]), RET_ALLOW);
        // Allow-list: listing a call allows its variants.
        let mut pol = Seccomp::empty();
        pol.i386 = true;
        pol.set_mode(Mode::Allowlist, at());
        pol.set(
            &["execve".into(), "getuid".into()],
            Action::Allow,
            None,
            &at(),
        )
        .unwrap();
        let p = compile(&pol, Arch::X86_64).unwrap();
        assert_eq!(
            run(&p, AUDIT_ARCH_I386, i386("getuid32"), [0; 6]),
            RET_ALLOW
        );
        assert_eq!(run(&p, AUDIT_ARCH_I386, i386("getgid32"), [0; 6]), EPERM);
    }

    #[test]
    fn aarch64_compiles() {
        let p = compile(&Seccomp::default(), Arch::Aarch64).unwrap();
        let ptrace = number(Arch::Aarch64, "ptrace").unwrap();
        assert_eq!(run(&p, AUDIT_ARCH_AARCH64, ptrace, [0; 6]), EPERM);
        assert_eq!(run(&p, AUDIT_ARCH_AARCH64, 63, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, X86, 63, [0; 6]), RET_KILL_PROCESS);
    }
}
