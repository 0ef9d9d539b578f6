//! A Firejail profile is text from anywhere (a downloaded profile, a
//! `.local` file): importing it must never panic, and what the importer
//! emits must be Rhai that parses, the profile's text only ever data in it
//! (an escaping bug shows as a syntax error here). The result is evaluated
//! as `firejail:PATH` would be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moksha::import::{import, Dirs};
use moksha::script::{evaluate, ProfileSource};

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("moksha-fuzz-firejail-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("fuzz.profile");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let dirs = Dirs {
        user: None,
        system: dir.clone(),
        home: "/home/user".into(),
    };
    let Ok(imported) = import(&path, &dirs) else {
        return;
    };
    let emitted = imported.emitted;
    let engine = rhai::Engine::new_raw();
    if let Err(e) = engine.compile(&emitted.main) {
        panic!("the emitted profile does not parse: {e}\n{}", emitted.main);
    }
    for (name, text) in &emitted.modules {
        if let Err(e) = engine.compile(text) {
            panic!("the emitted module {name} does not parse: {e}\n{text}");
        }
    }
    let profile = ProfileSource {
        name: "<firejail>/fuzz.rhai".into(),
        text: emitted.main,
        dir: None,
        modules: emitted.modules,
        ..Default::default()
    };
    if let Err(e) = evaluate(&profile, &[]) {
        let _ = e.to_string();
    }
});
