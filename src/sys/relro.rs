//! The relocated constants of a waiting process, let go and rebuilt page
//! by page when touched again.
//!
//! moksha is a static PIE: at its start the loader adds the load address
//! to every pointer in its RELRO segment (`.data.rel.ro`: vtables, the
//! `&str`s inside constants, ...), 146 KiB (136 of it whole pages) that
//! are then private and dirty in each process. Shared only between a launcher and its
//! supervisor, they were half of what 20 waiting sandboxes held each.
//! `let_go` (from `shed_idle_memory`) tries each page of `.data.rel.ro`
//! (not the dynamic section and the GOT after it) and keeps it unless the
//! file's bytes with the relocations applied again are what it holds now
//! (glibc writes `_dl_random` there at start), then drops it and makes it
//! inaccessible.
//! A touch faults: `on_fault`, a SIGSEGV handler, applies the page's
//! relocations to the file's bytes again, makes the page readable and
//! returns to the instruction, which runs again and finds what was there.
//! Faults anywhere else go on to the action there was before (the default
//! one: moksha's entry installs no stack overflow report, `sys::start`); a
//! SIGSEGV another process sends is let pass (a handler that put the
//! default action back would let the next touch of a dropped page end the
//! process).
//!
//! Only a process of one thread lets go, and it must stay so: a page
//! being tried or mended holds the file's bytes for a moment, which
//! another thread could read. `let_go` checks; the supervisor in trace
//! mode (its tracer thread) keeps its pages.
//!
//! The handler and what it calls touch only atomics, the relocation tables
//! (read-only file pages) and the page it mends: nothing in RELRO itself.
//! A system call given a pointer into a dropped page would fail with
//! EFAULT instead of faulting, but the waiting loops pass none: RELRO
//! holds constants with pointers, which nothing hands the kernel.

use std::cell::UnsafeCell;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};

/// Pages tracked (bits of `DROPPED`): 1 MiB of RELRO at 4 KiB pages; a
/// segment's pages beyond these are kept.
const TRACKED: usize = 256;

static BASE: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(0);
/// The first tracked page's address.
static LOW: AtomicUsize = AtomicUsize::new(0);
static RELR: AtomicUsize = AtomicUsize::new(0);
static RELR_LEN: AtomicUsize = AtomicUsize::new(0);
static RELA: AtomicUsize = AtomicUsize::new(0);
static RELA_LEN: AtomicUsize = AtomicUsize::new(0);
/// One bit per page of the segment, from `LOW`: dropped and not yet mended.
static DROPPED: [AtomicU64; TRACKED / 64] = [const { AtomicU64::new(0) }; TRACKED / 64];

/// The SIGSEGV action there was before ours: a fault that is not ours
/// goes on to it.
struct Previous(UnsafeCell<std::mem::MaybeUninit<libc::sigaction>>);
// SAFETY: written once, by `install`, before any page is dropped (before
// the handler can run for one of ours), and only read after.
unsafe impl Sync for Previous {}
static PREVIOUS: Previous = Previous(UnsafeCell::new(std::mem::MaybeUninit::zeroed()));

const DT_NULL: u64 = 0;
const DT_PLTGOT: u64 = 3;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_RELRSZ: u64 = 35;
const DT_RELR: u64 = 36;
/// si_code of a fault on a page mapped without the access (Linux's
/// asm-generic/siginfo.h; the libc crate has it for other systems only).
const SEGV_ACCERR: libc::c_int = 2;
#[cfg(target_arch = "x86_64")]
const R_RELATIVE: u32 = 8;
#[cfg(target_arch = "aarch64")]
const R_RELATIVE: u32 = 1027;
/// Elsewhere no relocation counts as one we apply: every page with one is
/// kept.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const R_RELATIVE: u32 = u32::MAX;

/// The program's own segments that `let_go` reads.
struct Program {
    /// The load address.
    base: usize,
    /// PT_GNU_RELRO's range, as loaded.
    relro: (usize, usize),
    /// PT_DYNAMIC's address, as loaded.
    dynamic: usize,
}

impl Program {
    /// This process's program: the first object dl_iterate_phdr reports,
    /// if it has RELRO and dynamic segments.
    fn this() -> Option<Program> {
        unsafe extern "C" fn first(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            data: *mut libc::c_void,
        ) -> libc::c_int {
            // SAFETY: dl_iterate_phdr passes a valid info, and `data` is
            // the Option below, which outlives the walk.
            let (info, out) = unsafe { (&*info, &mut *data.cast::<Option<Program>>()) };
            // SAFETY: the object's program headers, as the loader keeps them.
            let headers =
                unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
            *out = Program::of(info.dlpi_addr as usize, headers);
            1
        }
        let mut out: Option<Program> = None;
        // SAFETY: `first` keeps no pointer past its call; it stops the walk
        // at the first object.
        unsafe { libc::dl_iterate_phdr(Some(first), std::ptr::from_mut(&mut out).cast()) };
        out
    }

    /// From an object's load address and program headers, if it has RELRO
    /// and dynamic segments.
    fn of(base: usize, headers: &[libc::Elf64_Phdr]) -> Option<Program> {
        let find = |t| headers.iter().find(|h| h.p_type == t);
        let (relro, dynamic) = (find(libc::PT_GNU_RELRO)?, find(libc::PT_DYNAMIC)?);
        let low = base.wrapping_add(relro.p_vaddr as usize);
        Some(Program {
            base,
            relro: (low, low.wrapping_add(relro.p_memsz as usize)),
            dynamic: base.wrapping_add(dynamic.p_vaddr as usize),
        })
    }
}

/// Drops each page of the program's RELRO segment that can be rebuilt from
/// the file (the module's comment), once. Returns how many it dropped.
/// Does nothing in a process of more than one thread, or where its count
/// cannot be read (no /proc): while a page is tried its contents are the
/// file's for a moment. The caller must start no thread after.
pub fn let_go() -> usize {
    let page = super::process::page_size();
    if PAGE.load(Relaxed) != 0 || !one_thread() {
        return 0;
    }
    let Some(program) = Program::this().filter(tables) else {
        return 0;
    };
    let low = program.relro.0.div_ceil(page) * page;
    // Only `.data.rel.ro`: the linkers put the dynamic section, the GOT and
    // the PLT's GOT after it, in that order. The GOT must stay: calls go
    // through it (all of them in a debug build, those of this module
    // too), and its IRELATIVE slots are not ours to redo.
    let high = (program.relro.1.min(program.dynamic) / page * page).min(low + TRACKED * page);
    if high <= low {
        return 0;
    }
    BASE.store(program.base, Relaxed);
    PAGE.store(page, Relaxed);
    LOW.store(low, Relaxed);
    // SAFETY: an anonymous private mapping of one page, ours alone.
    let scratch = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if scratch == libc::MAP_FAILED || !install() {
        if scratch != libc::MAP_FAILED {
            // SAFETY: the mapping just made, unreferenced.
            unsafe { libc::munmap(scratch, page) };
        }
        return 0;
    }
    // While a page is tried it holds the file's bytes: no signal handler
    // may run then and read it. Faults still arrive (blocked, they would
    // end the process).
    use nix::sys::signal::{SigSet, Signal::*};
    let mut held = SigSet::all();
    for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP] {
        held.remove(sig);
    }
    let dropped = super::signal::with_blocked(&held, || {
        let mut dropped = 0;
        for at in (low..high).step_by(page) {
            // SAFETY: `at` is a whole page of this process's RELRO segment,
            // mapped readable; `scratch` a page of our own. One thread:
            // nothing reads the page while `try_page` has its file bytes
            // there.
            if !only_relative(at, at + page) || !unsafe { try_page(at, page, scratch.cast()) } {
                continue;
            }
            let i = (at - low) / page;
            DROPPED[i / 64].fetch_or(1 << (i % 64), Release);
            dropped += 1;
        }
        dropped
    });
    // SAFETY: as above.
    unsafe { libc::munmap(scratch, page) };
    dropped
}

/// Whether this process has one thread: field 20 of /proc/self/stat.
/// False if unreadable.
fn one_thread() -> bool {
    let Ok(fd) = super::fs::open_cloexec("/proc/self/stat", libc::O_RDONLY, "open") else {
        return false;
    };
    let mut buf = [0u8; 1024];
    let n = nix::unistd::read(fd.as_raw_fd(), &mut buf).unwrap_or(0);
    // Field 3 is the first after the name.
    super::stat_fields(&buf[..n]).and_then(|mut f| f.nth(17)) == Some(b"1")
}

/// mprotect that must not fail: a page left writable, or unreadable with
/// what was there lost, is worse than the end of the process.
///
/// # Safety
/// [at, at + page) is a page of the segment.
unsafe fn protect(at: usize, page: usize, prot: libc::c_int) {
    // SAFETY: the caller's contract.
    if unsafe { libc::mprotect(at as *mut libc::c_void, page, prot) } != 0 {
        // SAFETY: no preconditions; async-signal-safe.
        unsafe { libc::abort() };
    }
}

/// Finds the relocation tables in the dynamic section. False without any.
fn tables(program: &Program) -> bool {
    let base = program.base;
    // A d_ptr is the file's address, or already the loaded one when the
    // loader adjusted it in place (glibc does on most machines).
    let loaded = |v: u64| {
        let v = v as usize;
        if v < base {
            v.wrapping_add(base)
        } else {
            v
        }
    };
    let (mut relr, mut relr_len, mut rela, mut rela_len, mut got) = (0, 0, 0, 0, 0);
    let mut at = program.dynamic as *const u64;
    for _ in 0..1024 {
        // SAFETY: PT_DYNAMIC's entries, (tag, value) pairs up to DT_NULL,
        // mapped readable for as long as the program runs.
        let (tag, value) = unsafe { (at.read(), at.add(1).read()) };
        match tag {
            DT_NULL => break,
            DT_RELR => relr = loaded(value),
            DT_RELRSZ => relr_len = value as usize / 8,
            DT_RELA => rela = loaded(value),
            DT_RELASZ => rela_len = value as usize / 24,
            DT_PLTGOT => got = loaded(value),
            _ => {}
        }
        // SAFETY: the next entry: the table ends with DT_NULL.
        at = unsafe { at.add(2) };
    }
    RELR.store(relr, Relaxed);
    RELR_LEN.store(if relr == 0 { 0 } else { relr_len }, Relaxed);
    RELA.store(rela, Relaxed);
    RELA_LEN.store(if rela == 0 { 0 } else { rela_len }, Relaxed);
    // The GOT must lie above the dynamic section (`let_go` never tries
    // a page from there on): else this is no layout we know.
    (relr != 0 || rela != 0) && (got == 0 || got >= program.dynamic)
}

/// Whether every RELA relocation touching [lo, hi) is a relative one to
/// an aligned word wholly inside it (`relocate` applies only those, and
/// RELR's, whose words are aligned by definition).
fn only_relative(lo: usize, hi: usize) -> bool {
    (0..RELA_LEN.load(Relaxed)).all(|i| {
        let (at, kind, _) = rela_entry(i);
        let touches = at < hi && at.wrapping_add(8) > lo;
        !touches || (kind == R_RELATIVE && at.is_multiple_of(8))
    })
}

/// Entry `i` (below RELA_LEN) of the RELA table: the address it relocates
/// (as loaded), its type, and its addend.
fn rela_entry(i: usize) -> (usize, u32, usize) {
    let (base, rela) = (BASE.load(Relaxed), RELA.load(Relaxed) as *const u64);
    // SAFETY: entry i of the table (r_offset, r_info, r_addend), in the
    // program's read-only segment.
    let (offset, info, addend) = unsafe {
        (
            rela.add(3 * i).read(),
            rela.add(3 * i + 1).read(),
            rela.add(3 * i + 2).read(),
        )
    };
    (
        base.wrapping_add(offset as usize),
        info as u32,
        addend as usize,
    )
}

/// Applies to [lo, hi) the relocations that fall in it, to the file's
/// bytes there. Called from the signal handler: atomics and the read-only
/// tables only.
///
/// # Safety
/// [lo, hi) is a writable page of the segment holding the file's bytes.
unsafe fn relocate(lo: usize, hi: usize) {
    let base = BASE.load(Relaxed);
    let put = |at: usize, value: Option<usize>| {
        if (lo..hi).contains(&at) {
            let word = at as *mut usize;
            // SAFETY: an aligned word of the page the caller made writable.
            unsafe { word.write(value.unwrap_or_else(|| word.read().wrapping_add(base))) };
        }
    };
    let relr = RELR.load(Relaxed) as *const u64;
    let mut next = 0usize;
    for i in 0..RELR_LEN.load(Relaxed) {
        // SAFETY: entry i of the RELR table.
        let entry = unsafe { relr.add(i).read() } as usize;
        if entry & 1 == 0 {
            // An address: relocate the word there, then go on from it.
            put(base.wrapping_add(entry), None);
            next = base.wrapping_add(entry).wrapping_add(8);
        } else {
            // A bitmap of the 63 words from `next`, walked only when they
            // reach into the page: one page's mend, or try, then costs a
            // pass over the table instead of every bit of it (63 times
            // fewer steps, and the handler's mend is on the path of a
            // waiting process's wake-up).
            let mut bits = entry >> 1;
            let mut at = next;
            if at >= hi || at.wrapping_add(63 * 8) <= lo {
                bits = 0;
            }
            while bits != 0 {
                if bits & 1 == 1 {
                    put(at, None);
                }
                bits >>= 1;
                at = at.wrapping_add(8);
            }
            next = next.wrapping_add(63 * 8);
        }
    }
    for i in 0..RELA_LEN.load(Relaxed) {
        let (at, kind, addend) = rela_entry(i);
        if kind == R_RELATIVE {
            put(at, Some(base.wrapping_add(addend)));
        }
    }
}

/// Drops the page at `at` if its file bytes, relocated again, are what it
/// holds; else leaves it as it was. True if dropped.
///
/// # Safety
/// As `let_go`'s loop says.
unsafe fn try_page(at: usize, page: usize, scratch: *mut u64) -> bool {
    let here = at as *mut u64;
    let words = page / 8;
    // SAFETY: both are whole pages, aligned (the caller's contract), so
    // `words` aligned words; volatile so that no call to memcpy (reached
    // through the GOT, which may be in this very page) stands for the
    // loops.
    unsafe {
        for i in 0..words {
            scratch.add(i).write_volatile(here.add(i).read_volatile());
        }
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        if libc::madvise(here.cast(), page, libc::MADV_DONTNEED) != 0
            || libc::mprotect(here.cast(), page, rw) != 0
        {
            // The page may hold the file's bytes now: put ours back.
            restore(here, scratch, page);
            return false;
        }
        relocate(at, at + page);
        let same = (0..words).all(|i| here.add(i).read_volatile() == scratch.add(i).read());
        if same
            && libc::mprotect(here.cast(), page, libc::PROT_NONE) == 0
            && libc::madvise(here.cast(), page, libc::MADV_DONTNEED) == 0
        {
            return true;
        }
        restore(here, scratch, page);
    }
    false
}

/// Writes `scratch` back over the page at `here` and makes it read-only.
///
/// # Safety
/// Both are whole aligned pages; `here` one of the segment.
unsafe fn restore(here: *mut u64, scratch: *const u64, page: usize) {
    // SAFETY: the caller's contract; a page of the segment, made
    // writable for the copy.
    unsafe {
        protect(here as usize, page, libc::PROT_READ | libc::PROT_WRITE);
        for i in 0..page / 8 {
            here.add(i).write_volatile(scratch.add(i).read());
        }
        protect(here as usize, page, libc::PROT_READ);
    }
}

/// Puts `on_fault` in front of the SIGSEGV action there is.
fn install() -> bool {
    // SAFETY: a zeroed sigaction is a valid one to fill; `PREVIOUS` is
    // written before the handler can run for a page of ours (none is
    // dropped yet), and sigaction writes the old action there.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_fault;
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // Every signal held while a page is mended: a handler that
        // interrupted us and touched RELRO would fault with SIGSEGV held.
        libc::sigfillset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSEGV, &action, (*PREVIOUS.0.get()).as_mut_ptr()) == 0
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    // Sent by a process (kill, sigqueue, tgkill: si_code <= 0; a process
    // cannot claim a kernel code), not a fault: nothing to mend, and
    // passed on, Rust's handler would put the default action back.
    if code <= 0 {
        return;
    }
    let (low, page) = (LOW.load(Relaxed), PAGE.load(Relaxed));
    let i = addr.wrapping_sub(low) / page.max(1);
    if code == SEGV_ACCERR && page != 0 && addr >= low && i < TRACKED {
        let bit = 1u64 << (i % 64);
        if DROPPED[i / 64].load(Acquire) & bit != 0 {
            let at = low + i * page;
            // SAFETY: a dropped page of the segment: made writable it holds
            // the file's bytes, which `relocate` turns into what was there.
            // errno is the interrupted code's: kept.
            unsafe {
                let errno = *libc::__errno_location();
                protect(at, page, libc::PROT_READ | libc::PROT_WRITE);
                relocate(at, at + page);
                protect(at, page, libc::PROT_READ);
                *libc::__errno_location() = errno;
            }
            DROPPED[i / 64].fetch_and(!bit, Release);
            return;
        }
    }
    // Not ours: the action there was before.
    // SAFETY: written by `install` before any page was dropped.
    let previous = unsafe { (*PREVIOUS.0.get()).assume_init_ref() };
    if previous.sa_flags & libc::SA_SIGINFO != 0 && previous.sa_sigaction > libc::SIG_IGN {
        // SAFETY: an SA_SIGINFO handler, called as the kernel would.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(previous.sa_sigaction) };
        f(sig, info, context);
    } else if previous.sa_sigaction > libc::SIG_IGN {
        // SAFETY: a plain handler, as above.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(previous.sa_sigaction) };
        f(sig);
    } else {
        // The default action: back in place, the instruction faults again
        // and the kernel ends the process with SIGSEGV.
        // SAFETY: a zeroed sigaction is SIG_DFL with no flags.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGSEGV, &default, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    /// In a child of one thread (the test harness has many): its RELRO
    /// dropped, a SIGSEGV sent to it let pass, what then runs through
    /// vtables and constants with pointers (formatting, a boxed error, a
    /// panic caught) finds them mended, and a fault elsewhere still ends
    /// the process with SIGSEGV.
    #[test]
    fn dropped_pages_come_back_relocated() {
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult};
        let run = |crash: bool| {
            // SAFETY: the child only runs what is below and exits.
            match unsafe { fork() }.unwrap() {
                ForkResult::Child => {
                    let dropped = super::let_go();
                    // SAFETY: a signal to ourselves, handled by on_fault.
                    unsafe { libc::raise(libc::SIGSEGV) };
                    let error: Box<dyn std::error::Error> = "boxed".into();
                    let text = format!("{error} {:?} {}", [1u8, 2], 3.5f32);
                    let caught = std::panic::catch_unwind(|| panic!("caught")).is_err();
                    if crash {
                        // SAFETY: none: a fault on purpose, at a page of
                        // no mapping.
                        unsafe { std::ptr::null_mut::<u8>().add(4096).write_volatile(1) };
                    }
                    let left: u32 = super::DROPPED
                        .iter()
                        .map(|w| w.load(std::sync::atomic::Ordering::Relaxed).count_ones())
                        .sum();
                    let mended = (left as usize) < dropped;
                    let ok = dropped > 0 && mended && text == "boxed [1, 2] 3.5" && caught;
                    std::process::exit(if ok { 0 } else { 1 });
                }
                ForkResult::Parent { child } => waitpid(child, None).unwrap(),
            }
        };
        assert!(matches!(run(false), WaitStatus::Exited(_, 0)));
        assert!(matches!(
            run(true),
            WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGSEGV, _)
        ));
    }

    /// With a second thread running, nothing is let go.
    #[test]
    fn a_process_of_two_threads_keeps_its_pages() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        assert!(!super::one_thread());
        drop(tx);
        let _ = other.join();
    }
}
