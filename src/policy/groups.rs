//! The tables of the seccomp policy: named syscall groups, the default
//! denials, socket families, and the flag and ioctl numbers the default
//! filter tests (the model that uses them is `seccomp`).

/// The families allowed by default.
pub const DEFAULT_FAMILIES: [u32; 4] = [
    libc::AF_UNIX as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
    libc::AF_NETLINK as u32,
];

/// Socket families by name.
pub const FAMILIES: &[(&str, u32)] = &[
    ("unix", libc::AF_UNIX as u32),
    ("inet", libc::AF_INET as u32),
    ("inet6", libc::AF_INET6 as u32),
    ("netlink", libc::AF_NETLINK as u32),
    ("packet", libc::AF_PACKET as u32),
    ("bluetooth", libc::AF_BLUETOOTH as u32),
    ("can", libc::AF_CAN as u32),
    ("alg", libc::AF_ALG as u32),
    ("vsock", libc::AF_VSOCK as u32),
    ("key", libc::AF_KEY as u32),
    ("appletalk", libc::AF_APPLETALK as u32),
    ("ax25", libc::AF_AX25 as u32),
    ("ipx", libc::AF_IPX as u32),
    ("x25", libc::AF_X25 as u32),
    ("decnet", libc::AF_DECnet as u32),
    ("rds", libc::AF_RDS as u32),
    ("tipc", libc::AF_TIPC as u32),
    ("xdp", libc::AF_XDP as u32),
    ("llc", libc::AF_LLC as u32),
    ("netrom", libc::AF_NETROM as u32),
    ("rose", libc::AF_ROSE as u32),
    ("qipcrtr", 42),
    ("mctp", 45),
    ("smc", 43),
];

pub fn family_name(n: u32) -> String {
    FAMILIES
        .iter()
        .find(|(_, v)| *v == n)
        .map_or_else(|| n.to_string(), |(name, _)| (*name).to_string())
}

/// The personality values allowed unless `any_personality`: PER_LINUX,
/// PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and the query 0xffffffff.
pub const HARMLESS_PERSONAS: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// CLONE_NEW* flags clone(2) takes (CLONE_NEWTIME's bit is part of the exit
/// signal there): NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
pub const CLONE_NS_FLAGS: u64 = 0x7e02_0000;
/// unshare(2) takes CLONE_NEWTIME (0x80) too.
pub const UNSHARE_NS_FLAGS: u64 = CLONE_NS_FLAGS | 0x80;

pub const TIOCSTI: u64 = 0x5412;
pub const TIOCLINUX: u64 = 0x541c;
/// Sets a terminal's line discipline: a sandbox could leave the user's
/// terminal with another one (or load a discipline module) after it exits.
pub const TIOCSETD: u64 = 0x5423;

/// Named groups of syscalls: (name, what it is, members). Members that a
/// given architecture lacks are skipped there.
pub const GROUPS: &[(&str, &str, &[&str])] = &[
    (
        "@mount",
        "mounting and the new mount API",
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "mount_setattr",
        ],
    ),
    (
        "@debug",
        "tracing and reading other processes",
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "perf_event_open",
            "kcmp",
            "lookup_dcookie",
        ],
    ),
    (
        "@module",
        "kernel modules",
        &[
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "query_module",
            "get_kernel_syms",
        ],
    ),
    (
        "@keyring",
        "the kernel keyring",
        &["keyctl", "add_key", "request_key"],
    ),
    (
        "@obsolete",
        "calls unused for decades or never implemented",
        &[
            "uselib",
            "_sysctl",
            "sysfs",
            "ustat",
            "nfsservctl",
            "create_module",
            "get_kernel_syms",
            "query_module",
            "lookup_dcookie",
            "afs_syscall",
            "tuxcall",
            "security",
            "vserver",
            "getpmsg",
            "putpmsg",
            "bdflush",
            "break",
            "ftime",
            "gtty",
            "stty",
            "lock",
            "mpx",
            "prof",
            "profil",
            "idle",
            "ulimit",
        ],
    ),
    (
        "@clock",
        "setting the system clock",
        &[
            "settimeofday",
            "clock_settime",
            "clock_adjtime",
            "adjtimex",
            "stime",
        ],
    ),
    ("@swap", "swap devices", &["swapon", "swapoff"]),
    (
        "@reboot",
        "rebooting and loading kernels",
        &["reboot", "kexec_load", "kexec_file_load"],
    ),
    (
        "@raw-io",
        "raw port and PCI access",
        &[
            "iopl",
            "ioperm",
            "pciconfig_read",
            "pciconfig_write",
            "pciconfig_iobase",
        ],
    ),
    (
        "@cpu-emulation",
        "virtual 8086 mode and the LDT",
        &["vm86", "vm86old", "modify_ldt"],
    ),
    (
        "@io-uring",
        "io_uring",
        &["io_uring_setup", "io_uring_enter", "io_uring_register"],
    ),
    (
        "@privileged",
        "administration calls a sandboxed program has no business making",
        &[
            "acct",
            "bpf",
            "syslog",
            "vhangup",
            "quotactl",
            "quotactl_fd",
            "userfaultfd",
            "open_by_handle_at",
            "name_to_handle_at",
            "nfsservctl",
            "lookup_dcookie",
            "swapon",
            "swapoff",
            "reboot",
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "settimeofday",
            "clock_settime",
            "clock_adjtime",
            "stime",
            "iopl",
            "ioperm",
        ],
    ),
    (
        "@namespaces",
        "creating and entering namespaces (see nested_namespaces for clone flags)",
        &["unshare", "setns", "clone3"],
    ),
];

/// The default policy's denials: name, errno, group shown in `moksha plan`.
/// Flatpak's and Docker's default denials together.
pub(super) const DEFAULT_DENIED: &[(&str, i32, &str)] = &[
    ("ptrace", libc::EPERM, "@debug"),
    ("process_vm_readv", libc::EPERM, "@debug"),
    ("process_vm_writev", libc::EPERM, "@debug"),
    ("perf_event_open", libc::EPERM, "@debug"),
    ("bpf", libc::EPERM, "@privileged"),
    ("userfaultfd", libc::EPERM, "@privileged"),
    ("keyctl", libc::EPERM, "@keyring"),
    ("add_key", libc::EPERM, "@keyring"),
    ("request_key", libc::EPERM, "@keyring"),
    ("kexec_load", libc::EPERM, "@reboot"),
    ("kexec_file_load", libc::EPERM, "@reboot"),
    ("reboot", libc::EPERM, "@reboot"),
    ("init_module", libc::EPERM, "@module"),
    ("finit_module", libc::EPERM, "@module"),
    ("delete_module", libc::EPERM, "@module"),
    ("create_module", libc::EPERM, "@module"),
    ("query_module", libc::EPERM, "@module"),
    ("get_kernel_syms", libc::EPERM, "@module"),
    ("mount", libc::EPERM, "@mount"),
    ("umount", libc::EPERM, "@mount"),
    ("umount2", libc::EPERM, "@mount"),
    ("pivot_root", libc::EPERM, "@mount"),
    // The new mount API: ENOSYS, so programs fall back to mount(2), which
    // is refused with EPERM (as Flatpak does).
    ("fsopen", libc::ENOSYS, "@mount"),
    ("fsconfig", libc::ENOSYS, "@mount"),
    ("fsmount", libc::ENOSYS, "@mount"),
    ("fspick", libc::ENOSYS, "@mount"),
    ("move_mount", libc::ENOSYS, "@mount"),
    ("open_tree", libc::ENOSYS, "@mount"),
    ("open_tree_attr", libc::ENOSYS, "@mount"),
    ("mount_setattr", libc::ENOSYS, "@mount"),
    ("open_by_handle_at", libc::EPERM, "@privileged"),
    ("name_to_handle_at", libc::EPERM, "@privileged"),
    ("io_uring_setup", libc::EPERM, "@io-uring"),
    ("io_uring_enter", libc::EPERM, "@io-uring"),
    ("io_uring_register", libc::EPERM, "@io-uring"),
    ("acct", libc::EPERM, "@privileged"),
    ("swapon", libc::EPERM, "@swap"),
    ("swapoff", libc::EPERM, "@swap"),
    ("settimeofday", libc::EPERM, "@clock"),
    ("clock_settime", libc::EPERM, "@clock"),
    ("clock_adjtime", libc::EPERM, "@clock"),
    ("stime", libc::EPERM, "@clock"),
    ("syslog", libc::EPERM, "@privileged"),
    ("uselib", libc::EPERM, "@obsolete"),
    ("vhangup", libc::EPERM, "@privileged"),
    ("quotactl", libc::EPERM, "@privileged"),
    ("quotactl_fd", libc::EPERM, "@privileged"),
    ("lookup_dcookie", libc::EPERM, "@obsolete"),
    ("nfsservctl", libc::EPERM, "@obsolete"),
    ("_sysctl", libc::EPERM, "@obsolete"),
    ("sysfs", libc::EPERM, "@obsolete"),
    ("ustat", libc::EPERM, "@obsolete"),
    ("afs_syscall", libc::EPERM, "@obsolete"),
    ("tuxcall", libc::EPERM, "@obsolete"),
    ("security", libc::EPERM, "@obsolete"),
    ("vserver", libc::EPERM, "@obsolete"),
    ("getpmsg", libc::EPERM, "@obsolete"),
    ("putpmsg", libc::EPERM, "@obsolete"),
    ("iopl", libc::EPERM, "@raw-io"),
    ("ioperm", libc::EPERM, "@raw-io"),
    ("vm86", libc::EPERM, "@cpu-emulation"),
    ("vm86old", libc::EPERM, "@cpu-emulation"),
];

/// Calls that set a file's mode, and which argument holds the mode.
pub(super) const MODE_ARGS: [(&str, u8); 9] = [
    ("chmod", 1),
    ("fchmod", 1),
    ("fchmodat", 2),
    ("fchmodat2", 2),
    ("creat", 1),
    ("open", 2),
    ("openat", 3),
    ("mknod", 1),
    ("mknodat", 2),
];

/// How an i386 entry point relates to the call a policy names, so that a
/// rule for a call holds however the program enters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The same call with its arguments in the same registers: the call's
    /// rule holds as it is (unless the entry point has a rule of its own).
    Same(&'static str),
    /// The same call with its arguments elsewhere (in memory, split over two
    /// registers, reordered): the call's rule holds when it tests no
    /// argument; otherwise the entry point answers ENOSYS.
    Opaque(&'static str),
    /// One entry point for many calls, chosen by `arg0 & mask`; each gets
    /// its call's rule as an `Opaque` entry would (the arguments are in
    /// memory, which a filter cannot read).
    Multiplexer {
        mask: u64,
        calls: &'static [(u64, &'static str)],
    },
}

/// socketcall(2)'s calls (linux/net.h SYS_*). send, recv and accept are
/// sendto, recvfrom and accept on x86_64.
pub const SOCKETCALL: &[(u64, &str)] = &[
    (1, "socket"),
    (2, "bind"),
    (3, "connect"),
    (4, "listen"),
    (5, "accept"),
    (6, "getsockname"),
    (7, "getpeername"),
    (8, "socketpair"),
    (9, "sendto"),
    (10, "recvfrom"),
    (11, "sendto"),
    (12, "recvfrom"),
    (13, "shutdown"),
    (14, "setsockopt"),
    (15, "getsockopt"),
    (16, "sendmsg"),
    (17, "recvmsg"),
    (18, "accept4"),
    (19, "recvmmsg"),
    (20, "sendmmsg"),
];

/// ipc(2)'s calls (linux/ipc.h); the kernel reads the low 16 bits of the
/// first argument as the call (the rest is a version).
pub const IPC: &[(u64, &str)] = &[
    (1, "semop"),
    (2, "semget"),
    (3, "semctl"),
    (4, "semtimedop"),
    (11, "msgsnd"),
    (12, "msgrcv"),
    (13, "msgget"),
    (14, "msgctl"),
    (21, "shmat"),
    (22, "shmdt"),
    (23, "shmget"),
    (24, "shmctl"),
];

/// The i386 entry points that are another call under another name or
/// convention. x32 uses the x86_64 names and registers, so it needs none.
pub const I386_ENTRIES: &[(&str, Entry)] = {
    use Entry::*;
    &[
        (
            "socketcall",
            Multiplexer {
                mask: 0xffff_ffff,
                calls: SOCKETCALL,
            },
        ),
        (
            "ipc",
            Multiplexer {
                mask: 0xffff,
                calls: IPC,
            },
        ),
        // old_mmap and old_select: one pointer to the real arguments.
        ("mmap", Opaque("mmap")),
        ("select", Opaque("select")),
        // 64-bit time.
        ("clock_gettime64", Same("clock_gettime")),
        ("clock_settime64", Same("clock_settime")),
        ("clock_adjtime64", Same("clock_adjtime")),
        ("clock_getres_time64", Same("clock_getres")),
        ("clock_nanosleep_time64", Same("clock_nanosleep")),
        ("timer_gettime64", Same("timer_gettime")),
        ("timer_settime64", Same("timer_settime")),
        ("timerfd_gettime64", Same("timerfd_gettime")),
        ("timerfd_settime64", Same("timerfd_settime")),
        ("utimensat_time64", Same("utimensat")),
        ("pselect6_time64", Same("pselect6")),
        ("ppoll_time64", Same("ppoll")),
        ("io_pgetevents_time64", Same("io_pgetevents")),
        ("recvmmsg_time64", Same("recvmmsg")),
        ("mq_timedsend_time64", Same("mq_timedsend")),
        ("mq_timedreceive_time64", Same("mq_timedreceive")),
        ("semtimedop_time64", Same("semtimedop")),
        ("rt_sigtimedwait_time64", Same("rt_sigtimedwait")),
        ("futex_time64", Same("futex")),
        (
            "sched_rr_get_interval_time64",
            Same("sched_rr_get_interval"),
        ),
        // 32-bit ids.
        ("chown32", Same("chown")),
        ("lchown32", Same("lchown")),
        ("fchown32", Same("fchown")),
        ("getuid32", Same("getuid")),
        ("geteuid32", Same("geteuid")),
        ("getgid32", Same("getgid")),
        ("getegid32", Same("getegid")),
        ("setuid32", Same("setuid")),
        ("setgid32", Same("setgid")),
        ("setreuid32", Same("setreuid")),
        ("setregid32", Same("setregid")),
        ("setresuid32", Same("setresuid")),
        ("getresuid32", Same("getresuid")),
        ("setresgid32", Same("setresgid")),
        ("getresgid32", Same("getresgid")),
        ("setfsuid32", Same("setfsuid")),
        ("setfsgid32", Same("setfsgid")),
        ("getgroups32", Same("getgroups")),
        ("setgroups32", Same("setgroups")),
        // Large files and other same-register variants.
        ("fcntl64", Same("fcntl")),
        ("mmap2", Same("mmap")),
        ("ugetrlimit", Same("getrlimit")),
        ("sendfile64", Same("sendfile")),
        ("_newselect", Same("select")),
        ("stat64", Same("stat")),
        ("lstat64", Same("lstat")),
        ("fstat64", Same("fstat")),
        ("fstatat64", Same("newfstatat")),
        ("oldstat", Same("stat")),
        ("oldlstat", Same("lstat")),
        ("oldfstat", Same("fstat")),
        ("olduname", Same("uname")),
        ("oldolduname", Same("uname")),
        // Arguments split or reordered.
        ("_llseek", Opaque("lseek")),
        ("truncate64", Opaque("truncate")),
        ("ftruncate64", Opaque("ftruncate")),
        ("fadvise64_64", Opaque("fadvise64")),
        ("statfs64", Opaque("statfs")),
        ("fstatfs64", Opaque("fstatfs")),
        ("waitpid", Opaque("wait4")),
        ("readdir", Opaque("getdents")),
        ("umount", Opaque("umount2")),
        ("nice", Opaque("setpriority")),
        ("stime", Opaque("settimeofday")),
        // The old signal calls.
        ("sigaction", Opaque("rt_sigaction")),
        ("signal", Opaque("rt_sigaction")),
        ("sigprocmask", Opaque("rt_sigprocmask")),
        ("sgetmask", Opaque("rt_sigprocmask")),
        ("ssetmask", Opaque("rt_sigprocmask")),
        ("sigpending", Opaque("rt_sigpending")),
        ("sigsuspend", Opaque("rt_sigsuspend")),
        ("sigreturn", Opaque("rt_sigreturn")),
    ]
};
