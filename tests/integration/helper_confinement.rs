//! Host-side helpers run confined (issue 13, "Host-side helpers run
//! unconfined"): a `s.helper` program reports what it runs under and tries
//! to write outside its directory; the sandbox prints what it found.
//! (The network helpers' part: `launch::net_helper`'s unit tests check
//! slirp4netns's `--enable-seccomp`, and network.rs's fallback test runs it.)

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;

/// The landlock ABI of this kernel (0: none). The query changes nothing.
fn landlock_abi() -> i64 {
    // SAFETY: with the VERSION flag (1) the kernel reads no attribute.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    v.max(0)
}

/// A profile whose helper `name` runs `script` in its directory until it
/// exits, and whose program prints the file `out` the helper left there.
fn report_profile(name: &str, script: &str, out: &str) -> String {
    format!(
        "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         s.helper({name:?}, [\"/bin/sh\", \"-c\", {script}], \
         #{{ ready: \"exit\", expose: #{{ {out:?}: \"/run/report\" }} }});\n\
         s.exec([\"/bin/cat\", \"/run/report\"]);\n",
        script = rhai_string(script)
    )
}

/// The value of field `name` in a /proc/PID/status text.
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

both!(
    a_helper_runs_without_capabilities_with_no_new_privs_and_seccomp,
    |who: Who| {
        let r = exec_profile(
            who,
            &report_profile("status", "cat /proc/self/status > status", "status"),
            &[],
        )
        .expect_code(0);
        let status = r.stdout.as_str();
        for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
            assert_eq!(field(status, set), "0000000000000000", "{set}: {status}");
        }
        if who == Who::Root {
            // Run by root, the bounding set is emptied too (without
            // CAP_SETPCAP, an unprivileged launcher cannot; with no_new_privs
            // nothing it could gain at exec is granted anyway).
            assert_eq!(field(status, "CapBnd"), "0000000000000000", "{status}");
        }
        assert_eq!(field(status, "NoNewPrivs"), "1", "{status}");
        assert_eq!(field(status, "Seccomp"), "2", "{status}");
    }
);

both!(a_helper_cannot_write_outside_its_directory, |who: Who| {
    // Not a skip: a kernel without landlock is not what this suite runs on.
    assert!(
        landlock_abi() > 0,
        "this test needs a kernel with landlock (lsm=...,landlock)"
    );
    // A world-writable directory the helper would otherwise write to.
    let open = world_dir();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let target = open.path().join("escaped");
    let script = format!(
        "if echo x > {0} 2>/dev/null; then echo wrote; else echo refused; fi > result; \
         if mkdir {0}.d 2>/dev/null; then echo made; else echo no-mkdir; fi >> result; \
         echo inside > mine && cat mine >> result; \
         echo quiet > /dev/null && head -c 4 /etc/passwd > /dev/null && echo read >> result",
        target.display()
    );
    let r = exec_profile(who, &report_profile("writer", &script, "result"), &[]).expect_code(0);
    assert_eq!(r.stdout, "refused\nno-mkdir\ninside\nread\n", "{r:?}");
    assert!(!target.exists() && !open.path().join("escaped.d").exists());
});
