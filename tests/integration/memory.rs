//! What a running sandbox costs in memory: the launcher and the supervisor
//! wait for the program, and once it has run a while they let go of the
//! setup code they ran (`sys::shed_idle_memory`), most of their resident
//! size; what they hold while they wait lies packed in pages the two share
//! (`heap::kept`). The figures are in the README's Performance section
//! (bench/startup.sh); this checks the mechanism, not a size.

use crate::both;
use crate::common::*;
use std::time::Duration;

/// Each mapping of process `pid` (smaps): its header line's fields and its
/// counters in kB.
fn mappings(pid: u32) -> Vec<(Vec<String>, std::collections::HashMap<String, u64>)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut out: Vec<(Vec<String>, std::collections::HashMap<String, u64>)> = Vec::new();
    for line in smaps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first()
            .is_some_and(|a| a.contains('-') && !a.ends_with(':'))
        {
            out.push((
                f.iter().map(|s| s.to_string()).collect(),
                Default::default(),
            ));
        } else if let (Some((_, counters)), [key, kb, ..]) = (out.last_mut(), &f[..]) {
            if let (Some(key), Ok(kb)) = (key.strip_suffix(':'), kb.parse::<u64>()) {
                counters.insert(key.to_string(), kb);
            }
        }
    }
    out
}

/// Resident and whole size (kB) of the executable mapping of `binary` in
/// process `pid`.
fn text_resident(pid: u32, binary: &std::path::Path) -> (u64, u64) {
    mappings(pid)
        .iter()
        .filter(|(h, _)| {
            h.get(1).map(String::as_str) == Some("r-xp")
                && h.get(5).map(std::path::Path::new) == Some(binary)
        })
        .fold((0, 0), |(rss, size), (_, c)| {
            (rss + c["Rss"], size + c["Size"])
        })
}

/// Resident and private kB of the kept region (`heap::kept`: an anonymous
/// mapping of 4 MiB) of process `pid`, if it has one.
fn kept_region(pid: u32) -> Option<(u64, u64)> {
    mappings(pid)
        .iter()
        .find(|(h, c)| h.len() == 5 && h[1] == "rw-p" && c["Size"] == 4096)
        .map(|(_, c)| (c["Rss"], c["Private_Dirty"] + c["Private_Clean"]))
}

/// kB of `binary`'s relocated constants (RELRO) that process `pid` let
/// go (`sys::relro`) and has not touched since: mapped PROT_NONE until
/// then (a page mended is readable again, and leaves the mapping).
fn relro_dropped(pid: u32, binary: &std::path::Path) -> u64 {
    mappings(pid)
        .iter()
        .filter(|(h, _)| {
            h.get(1).map(String::as_str) == Some("---p")
                && h.get(5).map(std::path::Path::new) == Some(binary)
        })
        .map(|(_, c)| c["Size"])
        .sum()
}

/// The first child of `pid` (the supervisor, below a launcher).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .map(|p| p.parse().unwrap())
}

fn send(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
}

/// Pages of process `pid`'s stack mapping wholly below its stack pointer
/// that are resident, and the stack pointer: read while the process waits
/// in a system call (/proc/PID/syscall ends with its sp and pc).
fn stack_resident_below_sp(pid: u32) -> (usize, u64) {
    use std::os::unix::fs::FileExt;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let sp = (0..50)
        .find_map(|_| {
            let line = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap();
            let f: Vec<&str> = line.split_whitespace().collect();
            let sp = (f.len() == 9).then(|| u64::from_str_radix(&f[7][2..], 16).unwrap());
            if sp.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            sp
        })
        .unwrap_or_else(|| panic!("process {pid} is never in a system call"));
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let range = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no [stack] in {maps}"));
    let (lo, _) = range.split_once('-').unwrap();
    let lo = u64::from_str_radix(lo, 16).unwrap();
    let pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).unwrap();
    let resident = (lo..sp / page * page)
        .step_by(page as usize)
        .filter(|a| {
            let mut entry = [0u8; 8];
            pagemap.read_exact_at(&mut entry, a / page * 8).unwrap();
            u64::from_le_bytes(entry) >> 63 == 1
        })
        .count();
    (resident, sp)
}

both!(a_waiting_sandbox_lets_go_of_its_setup_code, |who: Who| {
    let dir = world_dir();
    let path = write_profile(dir.path(), "p.rhai", &sh_profile("", "sleep 30"));
    let mut child = moksha(who, &["exec", &path])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let launcher = child.id();
    let supervisor = first_child(launcher);
    let binary = moksha_bin().canonicalize().unwrap();
    let seen: Vec<_> = [Some(launcher), supervisor]
        .into_iter()
        .flatten()
        .map(|pid| {
            (
                pid,
                text_resident(pid, &binary),
                stack_resident_below_sp(pid),
                kept_region(pid),
                relro_dropped(pid, &binary),
            )
        })
        .collect();
    // Waiting touches none of what was let go.
    std::thread::sleep(Duration::from_millis(700));
    let later: Vec<u64> = seen.iter().map(|s| relro_dropped(s.0, &binary)).collect();
    // A SIGSEGV sent (not a fault) is let pass, and leaves the mending in
    // place: then ended by a signal, forwarded to the program, what the
    // launcher runs (the forwarding, the status, the exit) finds every
    // page it touches of what it let go as it was.
    for s in &seen {
        send(s.0, nix::sys::signal::Signal::SIGSEGV);
    }
    send(launcher, nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_eq!(seen.len(), 2, "no supervisor below the launcher: {seen:?}");
    for ((pid, (rss, size), (stack, sp), kept, relro), later) in seen.into_iter().zip(later) {
        // Of the 146 kB (release) of `.data.rel.ro`, the whole pages but
        // the one glibc writes at start (`_dl_random`'s), and none touched
        // while the sandbox waits.
        assert!(
            relro >= 64 && later == relro,
            "process {pid} let go of {relro} kB of its relocated constants, {later} kB 0.7 s later"
        );
        // The resolved plan the launcher holds (and the supervisor a copy
        // of) lies packed in the kept region, which neither writes after
        // the fork: its pages are shared between the two.
        let Some((kept_rss, kept_private)) = kept else {
            panic!("process {pid} has no kept region (heap::kept)")
        };
        assert!(
            kept_rss > 0 && kept_private == 0,
            "process {pid}: {kept_private} of the kept region's {kept_rss} kB resident are its own"
        );
        // The setup's deep calls left pages written below the waiting
        // frames (68 in a debug build, 5-6 in a release one); once cut, a
        // page or two the waiting loop's deepest call touched since.
        assert!(
            stack <= 2,
            "process {pid} keeps {stack} stack pages below its stack pointer {sp:#x}"
        );
        // Before it lets go, the launcher has ~90% of moksha's code
        // resident and the supervisor ~60% (debug build); after, 20% and 8%.
        assert!(
            size > 0 && rss * 100 / size < 40,
            "process {pid} still has {rss} of {size} kB of moksha's code resident"
        );
    }
});

// The supervisor's timeout, after both let go of their relocated constants
// and were sent a SIGSEGV (which a sandboxed program can send its PID 1
// where landlock does not scope signals): the timeout's report and the
// ending run through the pages let go, mended.
both!(
    a_waiting_supervisor_times_out_after_a_sigsegv,
    |who: Who| {
        let dir = world_dir();
        let profile = sh_profile(
            "s.timeout(#{ after: \"2s\", grace: \"1s\" });\n",
            "sleep 1000",
        );
        let path = write_profile(dir.path(), "p.rhai", &profile);
        let child = moksha(who, &["exec", &path])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        let launcher = child.id();
        let supervisor = first_child(launcher).expect("a supervisor below the launcher");
        send(supervisor, nix::sys::signal::Signal::SIGSEGV);
        send(launcher, nix::sys::signal::Signal::SIGSEGV);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(124), "{:?}: {stderr}", out.status);
        assert!(
            stderr.contains("moksha: timeout: the sandbox ran for 2s"),
            "{stderr}"
        );
    }
);
