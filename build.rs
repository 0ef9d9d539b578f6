//! Embeds every `stdlib/*.rhai` and `profiles/*.rhai` file into the binary,
//! so a new file needs no code change to ship. The stdlib also goes in
//! with its comment lines blanked (`STDLIB_CODE`, see src/script/strip.rs):
//! that copy is what imports compile.

use std::fs;
use std::path::Path;

#[path = "src/script/strip.rs"]
mod strip;

/// `(stem, path)` of the `.rhai` files in `dir`, sorted.
fn rhai_files(dir: &str) -> Vec<(String, String)> {
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
    names
        .into_iter()
        .map(|name| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(&name);
            println!("cargo:rerun-if-changed={}", path.display());
            let stem = name.trim_end_matches(".rhai").to_string();
            (stem, path.display().to_string())
        })
        .collect()
}

fn table(out: &mut String, konst: &str, files: &[(String, String)]) {
    out.push_str(&format!("pub const {konst}: &[(&str, &str)] = &[\n"));
    for (stem, path) in files {
        out.push_str(&format!("    ({stem:?}, include_str!({path:?})),\n"));
    }
    out.push_str("];\n");
}

fn main() {
    // Relative relocations packed (DT_RELR, glibc >= 2.36 and binutils >=
    // 2.38; older ones ignore the flag): the loader applies ~14,000 of them
    // at every start. Binaries only: proc macros and tests link as before.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    let out_dir = std::env::var("OUT_DIR").unwrap();
    let mut out = String::new();
    let stdlib = rhai_files("stdlib");
    table(&mut out, "STDLIB", &stdlib);
    let code_dir = Path::new(&out_dir).join("stdlib-code");
    fs::create_dir_all(&code_dir).unwrap();
    let code: Vec<(String, String)> = stdlib
        .iter()
        .map(|(stem, path)| {
            let text = fs::read_to_string(path).unwrap();
            let dest = code_dir.join(format!("{stem}.rhai"));
            fs::write(&dest, strip::blank_comment_lines(&text)).unwrap();
            (stem.clone(), dest.display().to_string())
        })
        .collect();
    table(&mut out, "STDLIB_CODE", &code);
    table(&mut out, "PROFILES", &rhai_files("profiles"));
    fs::write(Path::new(&out_dir).join("embedded.rs"), out).unwrap();
}
