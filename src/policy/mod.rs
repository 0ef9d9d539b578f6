//! Security policy as data, and the pure code that turns it into what the
//! kernel takes: the seccomp policy model with its groups and defaults
//! (`seccomp`), a classic-BPF compiler for it (`bpf`), landlock rules derived
//! from a plan (`landlock`), and resource limits by name (`limits`).
//!
//! Nothing here makes a system call or reads the host, and nothing here
//! knows the plan: `plan` holds these types and `sys` applies the results.

pub mod bpf;
pub mod groups;
pub mod landlock;
pub mod limits;
pub mod seccomp;
pub mod show;
pub mod syscalls;
pub mod trace;
