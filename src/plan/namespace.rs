//! The kernel's namespaces, one type: the name a profile uses, the name of
//! its `/proc/PID/ns` link, and its clone flag (pure constants; `sys`
//! makes the calls).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    User,
    Mount,
    Pid,
    Net,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

impl Namespace {
    /// Every namespace, in the stable order plans list them (and the order
    /// `moksha enter` joins them: the user namespace first).
    pub const ALL: [Namespace; 8] = [
        Namespace::User,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Net,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// The name profiles and plans use.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mount",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    /// The namespace by a profile's name, or by its `/proc` name and the
    /// long spelling of net ("mnt", "network").
    pub fn by_name(name: &str) -> Option<Namespace> {
        match name {
            "mnt" => Some(Namespace::Mount),
            "network" => Some(Namespace::Net),
            _ => Namespace::ALL.into_iter().find(|n| n.name() == name),
        }
    }

    /// The name of its link in `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Mount => "mnt",
            other => other.name(),
        }
    }

    /// Its `CLONE_NEW*` flag (the time namespace's is for unshare(2) and
    /// setns(2) only: clone(2) cannot take it).
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Time => 0x80, // CLONE_NEWTIME
        }
    }

    /// The flags of several namespaces together.
    pub fn flags(list: &[Namespace]) -> libc::c_int {
        list.iter().fold(0, |f, n| f | n.clone_flag())
    }

    /// Several namespaces as flags, for messages: "NEWUSER|NEWPID".
    pub fn flag_names(list: &[Namespace]) -> String {
        let names: Vec<String> = list
            .iter()
            .map(|n| format!("NEW{}", n.name().to_uppercase()))
            .collect();
        names.join("|")
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_flags_and_proc_links() {
        for ns in Namespace::ALL {
            assert_eq!(Namespace::by_name(ns.name()), Some(ns));
            assert_eq!(Namespace::by_name(ns.proc_name()), Some(ns));
            assert_ne!(ns.clone_flag(), 0);
        }
        assert_eq!(Namespace::by_name("network"), Some(Namespace::Net));
        assert_eq!(Namespace::by_name("nope"), None);
        assert_eq!(Namespace::Mount.proc_name(), "mnt");
        assert_eq!(
            Namespace::flag_names(&[Namespace::User, Namespace::Pid]),
            "NEWUSER|NEWPID"
        );
        let all = Namespace::flags(&Namespace::ALL);
        assert_eq!(all.count_ones(), 8, "every flag is distinct");
    }
}
