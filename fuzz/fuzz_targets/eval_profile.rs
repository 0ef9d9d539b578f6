//! A profile's text, evaluated with the real API (every registered
//! function, the stdlib, the engine's limits): evaluation, validation, the
//! rendering of its errors (carets under multi-byte text) and of its plan
//! must never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moksha::plan::{mounts, HostView};
use moksha::script::{evaluate, ProfileSource};

fuzz_target!(|data: &[u8]| {
    let profile = ProfileSource {
        name: "fuzz.rhai".into(),
        text: String::from_utf8_lossy(data).into_owned(),
        dir: None,
        modules: Vec::new(),
        ..Default::default()
    };
    match evaluate(&profile, &["--flag".into(), "\u{10ff41}".into()]) {
        Ok((plan, _)) => {
            let _ = mounts::compile(&plan);
            let _ = plan.describe(&HostView {
                net_helper: None,
                landlock_abi: 6,
            });
            let _ = serde_json::to_string(&plan);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
