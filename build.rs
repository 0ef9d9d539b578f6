//! Embeds every `stdlib/*.rhai` and `profiles/*.rhai` file into the binary,
//! so a new file needs no code change to ship.

use std::fs;
use std::path::Path;

fn embed(dir: &str, out: &mut String, konst: &str) {
    println!("cargo:rerun-if-changed={dir}");
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".rhai"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    out.push_str(&format!("pub const {konst}: &[(&str, &str)] = &[\n"));
    for name in names {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(&name);
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = name.trim_end_matches(".rhai");
        out.push_str(&format!(
            "    ({stem:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
}

fn main() {
    // Relative relocations packed (DT_RELR, glibc >= 2.36 and binutils >=
    // 2.38; older ones ignore the flag): the loader applies ~14,000 of them
    // at every start. Binaries only: proc macros and tests link as before.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    let mut out = String::new();
    embed("stdlib", &mut out, "STDLIB");
    embed("profiles", &mut out, "PROFILES");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    fs::write(dest, out).unwrap();
}
