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

/// Whole and resident kB of the pages of `binary`'s relocated constants
/// (RELRO) that process `pid` let go (`sys::relro`): mapped PROT_NONE
/// until touched.
fn relro_dropped(pid: u32, binary: &std::path::Path) -> (u64, u64) {
    mappings(pid)
        .iter()
        .filter(|(h, _)| {
            h.get(1).map(String::as_str) == Some("---p")
                && h.get(5).map(std::path::Path::new) == Some(binary)
        })
        .fold((0, 0), |(size, rss), (_, c)| {
            (size + c["Size"], rss + c["Rss"])
        })
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
    let supervisor = std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .map(|p| p.parse::<u32>().unwrap());
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
    // Ended by a signal, forwarded to the program: what the two then run
    // (the forwarding, the status message, the exit) finds every page it
    // touches of what they let go as it was.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(launcher as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_eq!(seen.len(), 2, "no supervisor below the launcher: {seen:?}");
    for (pid, (rss, size), (stack, sp), kept, (relro, relro_rss)) in seen {
        // Of the ~150 kB (release) of relocated constants, all but the
        // pages written at start (`_dl_random`'s) or holding the GOT's
        // IRELATIVE slots, and none back before the end.
        assert!(
            relro >= 64 && relro_rss == 0,
            "process {pid} let go of {relro} kB of its relocated constants ({relro_rss} resident)"
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
