//! Resource limits by name, and the wall-clock timeout.

use serde::{Deserialize, Serialize};

/// Exit status of `moksha exec` when the timeout ended the sandbox (as timeout(1)).
pub const EXIT_TIMEOUT: i32 = 124;

/// Grace period between SIGTERM and SIGKILL when none is given.
pub const DEFAULT_GRACE_MS: u64 = 5_000;

/// Every resource limit: name as in prlimit(1) and setrlimit(2), the
/// resource number, whether it is a size in bytes, and what it limits.
// The casts are needed where libc types resources as c_int (musl).
#[allow(clippy::unnecessary_cast)]
pub const RLIMITS: &[(&str, u32, bool, &str)] = &[
    ("as", libc::RLIMIT_AS as u32, true, "address space (bytes)"),
    (
        "core",
        libc::RLIMIT_CORE as u32,
        true,
        "core file size (bytes)",
    ),
    ("cpu", libc::RLIMIT_CPU as u32, false, "CPU time (seconds)"),
    (
        "data",
        libc::RLIMIT_DATA as u32,
        true,
        "data segment (bytes)",
    ),
    (
        "fsize",
        libc::RLIMIT_FSIZE as u32,
        true,
        "file size (bytes)",
    ),
    ("locks", libc::RLIMIT_LOCKS as u32, false, "file locks"),
    (
        "memlock",
        libc::RLIMIT_MEMLOCK as u32,
        true,
        "locked memory (bytes)",
    ),
    (
        "msgqueue",
        libc::RLIMIT_MSGQUEUE as u32,
        true,
        "POSIX message queues (bytes)",
    ),
    (
        "nice",
        libc::RLIMIT_NICE as u32,
        false,
        "nice ceiling (20 - value)",
    ),
    ("nofile", libc::RLIMIT_NOFILE as u32, false, "open files"),
    (
        "nproc",
        libc::RLIMIT_NPROC as u32,
        false,
        "processes of the user",
    ),
    (
        "rss",
        libc::RLIMIT_RSS as u32,
        true,
        "resident set (bytes, ignored by Linux)",
    ),
    (
        "rtprio",
        libc::RLIMIT_RTPRIO as u32,
        false,
        "real-time priority",
    ),
    (
        "rttime",
        libc::RLIMIT_RTTIME as u32,
        false,
        "real-time CPU time (microseconds)",
    ),
    (
        "sigpending",
        libc::RLIMIT_SIGPENDING as u32,
        false,
        "queued signals",
    ),
    (
        "stack",
        libc::RLIMIT_STACK as u32,
        true,
        "stack size (bytes)",
    ),
];

pub fn rlimit_by_name(name: &str) -> Option<(u32, bool)> {
    let name = name.trim_start_matches("RLIMIT_").to_ascii_lowercase();
    RLIMITS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, r, bytes, _)| (*r, *bytes))
}

pub fn rlimit_names() -> String {
    RLIMITS
        .iter()
        .map(|(n, ..)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The processes (threads included) a sandbox may run at once when its
/// profile sets no `nproc` limit: a fork bomb inside stops here. Since
/// Linux 5.14 RLIMIT_NPROC counts the processes of a uid *in each user
/// namespace*, so in a sandbox with its own user namespace this bounds the
/// sandbox alone, not every process the user runs (`launch::prepare`).
pub const DEFAULT_NPROC: u64 = 4096;

/// The `nproc` limit at `n` processes, soft and hard.
#[allow(clippy::unnecessary_cast)]
pub fn process_bound(n: u64) -> Rlimit {
    Rlimit {
        name: "nproc".into(),
        resource: libc::RLIMIT_NPROC as u32,
        soft: Some(n),
        hard: Some(n),
    }
}

/// One limit: soft and hard values, `None` for unlimited.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    pub name: String,
    pub resource: u32,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

impl Rlimit {
    pub fn describe(&self) -> String {
        let v = |x: Option<u64>| x.map_or("unlimited".to_string(), |n| n.to_string());
        if self.soft == self.hard {
            format!("{} {}", self.name, v(self.soft))
        } else {
            format!("{} soft {}, hard {}", self.name, v(self.soft), v(self.hard))
        }
    }
}

/// The wall-clock limit of a sandbox.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timeout {
    /// From the program's start until SIGTERM.
    pub ms: u64,
    /// From SIGTERM until SIGKILL.
    pub grace_ms: u64,
}

/// "10s", "500ms", "2m", "1h", or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("{text:?} is not a duration like \"30s\", \"500ms\", \"5m\", \"1h\"")
    })?;
    let mult = match unit.trim() {
        "" | "s" => 1000,
        "ms" => 1,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?} has an unknown unit; use ms, s, m or h")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}

/// "1.5s"-style rendering for messages.
pub fn show_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(10_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("2m"), Ok(120_000));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(show_ms(1500), "1500ms");
    }

    #[test]
    fn names() {
        assert_eq!(rlimit_by_name("nofile"), Some((7, false)));
        assert_eq!(rlimit_by_name("RLIMIT_AS").map(|x| x.1), Some(true));
        assert!(rlimit_by_name("files").is_none());
    }
}
