//! A plan as JSON (what an instance record holds and `moksha enter` reads
//! back): parsing, validation, the launcher's pure additions, the mount
//! compiler and the listing must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moksha::launch::{resolve, Launch};
use moksha::plan::{mounts, validate, HostView, Plan};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(plan) = serde_json::from_slice::<Plan>(data) else {
        return;
    };
    if validate(&plan).is_err() {
        return;
    }
    let launch = Launch {
        name: "fuzz",
        detach: data.len() % 2 == 0,
        root: data.len() % 3 == 0,
        helper_dir: Some(Path::new("/run/user/1000/moksha/.helpers-fuzz")),
        terminal: Some("/dev/pts/3"),
        state_dir: Some(Path::new("/run/user/1000/moksha")),
        memory: Some(1 << 34),
        processes: Some(4096),
        trace: data.len() % 5 == 0,
    };
    if let Ok(resolved) = resolve(&plan, &launch) {
        let _ = mounts::compile(&resolved);
        let _ = resolved.describe(&HostView {
            net_helper: None,
            landlock_abi: 6,
        });
        let _ = resolved.describe_mounts();
    }
});
