//! The resolved plan: `moksha plan --resolved` prints the plan `moksha
//! exec` runs, with what the launcher adds, and the instance record stores
//! that same plan (`moksha enter` re-applies it).

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;

fn profile(name: &str) -> String {
    format!(
        "import \"base\" as base;\nlet s = sandbox(\"resolved\");\nbase::minimal(s);\n\
         s.name({name:?});\n\
         s.helper(\"maker\", [\"/bin/sh\", \"-c\", \"echo made > {{dir}}/made; exec sleep 600\"], \
         #{{ ready: \"file\", file: \"made\", expose: #{{ made: \"/run/made\" }} }});\n\
         s.network(\"user\");\n\
         s.exec([\"/bin/sh\", \"-c\", \"cat /run/made; exec sleep 600\"]);\n"
    )
}

both!(
    the_record_stores_the_plan_that_plan_resolved_prints,
    |who: Who| {
        let dir = world_dir();
        let runtime = owned_dir(dir.path(), "run", who);
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let name = format!("resolved-{}-{}", std::process::id(), who.uid());
        let path = write_profile(dir.path(), "p.rhai", &profile(&name));
        let xdg = runtime.to_string_lossy().into_owned();
        let run = |args: &[&str]| {
            let mut cmd = moksha(who, args);
            cmd.env("XDG_RUNTIME_DIR", &xdg);
            Run::from(cmd.output().unwrap())
        };
        let json = |text: &str| -> serde_json::Value {
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        let profile_plan = json(&run(&["plan", "--json", &path]).expect_code(0).stdout);
        let resolved = json(
            &run(&["plan", "--resolved", "--detach", "--json", &path])
                .expect_code(0)
                .stdout,
        );
        // What the launcher adds: the helper's file bound in, /dev/shm as a
        // tmpfs of its own, the resolv.conf of the user network, a size for
        // every tmpfs, the supervision of a detached run.
        let fs = |plan: &serde_json::Value| plan["fs"].as_array().unwrap().clone();
        let (all, before) = (fs(&resolved), fs(&profile_plan));
        assert_eq!(all.len(), before.len() + 3, "{all:#?}");
        let added = &all[all.len() - 2..];
        assert_eq!(added[0]["op"], "bind");
        assert_eq!(added[0]["target"], "/run/made");
        let helper_file = format!("{xdg}/moksha/.helpers-{name}/maker/made");
        assert_eq!(added[0]["source"], helper_file.as_str());
        assert_eq!(added[1]["target"], "/etc/resolv.conf");
        // /dev/shm, a tmpfs of its own right after the dev step.
        let dev = all.iter().position(|s| s["op"] == "dev").unwrap();
        assert_eq!(all[dev + 1]["op"], "tmpfs");
        assert_eq!(all[dev + 1]["target"], "/dev/shm");
        for step in fs(&resolved).iter().filter(|s| s["op"] == "tmpfs") {
            assert!(step["size"].as_u64().is_some(), "an unsized tmpfs: {step}");
        }
        assert_eq!(resolved["supervision"]["detach"], true);
        assert_eq!(
            resolved["security"]["seccomp"] != profile_plan["security"]["seccomp"],
            who == Who::Root,
            "root launches refuse setuid files, rootless ones need not"
        );
        assert_eq!(
            resolved["ids"]["as_nobody"],
            who == Who::Root,
            "{}",
            resolved["ids"]
        );
        let limits = resolved["security"]["rlimits"].as_array().unwrap();
        assert!(
            limits
                .iter()
                .any(|l| l["name"] == "nproc" && l["soft"] == 4096),
            "the default process bound: {limits:?}"
        );
        let human = run(&["plan", "--resolved", &path]).expect_code(0).stdout;
        assert!(
            human.contains(&format!("attach    {helper_file} -> /run/made"))
                && human.contains("pivot_root, old root detached"),
            "the listing shows the mount operations: {human}"
        );

        // The launch runs it, and records it.
        let started = run(&["exec", "--detach", &path]).expect_code(0);
        assert_eq!(started.stdout.trim(), name);
        let record_path = format!("{xdg}/moksha/{name}.json");
        let record = json(&std::fs::read_to_string(&record_path).unwrap());
        let stopped = run(&["stop", &name, "--timeout", "1"]);
        assert_eq!(
            record["plan"], resolved,
            "the record stores the resolved plan"
        );
        stopped.expect_code(0);
        // The helpers' guard stops them (SIGTERM, SIGKILL after 2 s) once the
        // sandbox has ended, then removes their directory.
        let helpers = std::path::PathBuf::from(format!("{xdg}/moksha/.helpers-{name}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while helpers.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            !helpers.exists(),
            "the helpers' directory goes with the sandbox"
        );
    }
);

both!(a_failed_launch_leaves_no_instance_behind, |who: Who| {
    let dir = world_dir();
    let runtime = owned_dir(dir.path(), "run", who);
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let name = format!("failing-{}-{}", std::process::id(), who.uid());
    // The program does not exist inside: the sandbox side reports it after
    // the clone, and the launcher undoes what it made.
    let program = dir.path().join("program");
    std::fs::write(&program, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = format!(
        "import \"base\" as base;\nlet s = sandbox(\"f\");\nbase::minimal(s);\ns.name({name:?});\n\
         s.exec([{:?}]);\n",
        program.display()
    );
    let path = write_profile(dir.path(), "p.rhai", &text);
    let mut cmd = moksha(who, &["exec", "--detach", &path]);
    cmd.env("XDG_RUNTIME_DIR", &runtime);
    let r = Run::from(cmd.output().unwrap()).expect_code(127);
    assert!(r.stderr.contains("does not exist in the sandbox"), "{r:?}");
    let left: Vec<String> = std::fs::read_dir(runtime.join("moksha"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&name))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
});
