//! Development workflows: a program that runs what it wrote (a build that
//! runs its output, a git hook) needs an executable bind; writable binds
//! are not executable otherwise (write-xor-execute), and the refusal says
//! which bind and which option.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;

/// A minimal root with `dir` bound read-write (with `opts`) and the
/// working directory there, running `script`.
fn in_dir(dir: &str, opts: &str, script: &str) -> String {
    sh_profile(
        &format!("s.bind({dir:?}, #{{ rw: true{opts} }});\ns.cwd({dir:?});"),
        script,
    )
}

both!(
    a_writable_bind_runs_what_it_wrote_only_with_exec,
    |who: Who| {
        let dir = world_dir();
        let work = owned_dir(dir.path(), "work", who);
        let work = work.to_string_lossy().into_owned();
        let script = "printf '#!/bin/sh\\necho built-and-ran\\n' > hello; chmod +x hello; ./hello";

        let r = exec_profile(who, &in_dir(&work, "", script), &[]);
        assert_ne!(r.code, 0, "write-xor-execute by default: {r:?}");
        assert!(r.stderr.contains("Permission denied"), "{r:?}");

        let r = exec_profile(who, &in_dir(&work, ", exec: true", script), &[]).expect_code(0);
        assert_eq!(r.stdout.trim(), "built-and-ran");
    }
);

both!(
    an_exec_refused_on_a_writable_bind_names_the_bind_and_the_option,
    |who: Who| {
        let dir = world_dir();
        let work = owned_dir(dir.path(), "work", who);
        let program = work.join("prog");
        std::fs::write(&program, "#!/bin/sh\necho ran\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let work = work.to_string_lossy().into_owned();
        let text = format!(
            "import \"base\" as base;\nlet s = sandbox(\"t\");\nbase::minimal(s);\n\
         s.bind({work:?}, #{{ rw: true }});\ns.cwd({work:?});\ns.exec([\"./prog\"]);\n"
        );
        let r = exec_profile(who, &text, &[]).expect_code(126);
        assert!(
            r.stderr.contains(&format!("read-write bind of {work}"))
                && r.stderr.contains("test.rhai:4:3")
                && r.stderr.contains("exec: true"),
            "{r:?}"
        );
        let plan = Run::from(
            moksha(who, &["plan", &write_profile(dir.path(), "p.rhai", &text)])
                .output()
                .unwrap(),
        )
        .expect_code(0);
        assert!(
            plan.stdout.contains("read-write, not executable"),
            "{}",
            plan.stdout
        );
    }
);
