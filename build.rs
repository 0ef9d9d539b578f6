//! Embeds every `stdlib/*.rhai` and `profiles/*.rhai` file into the binary,
//! so a new file needs no code change to ship. Each also goes in with its
//! comment lines blanked and its code lines unindented (`STDLIB_CODE`,
//! `PROFILES_CODE`, and `DROPPED` the blanks taken from each line's start,
//! by display name; see src/script/strip.rs): that copy is what compiles.

use std::fs;
use std::path::Path;

#[path = "src/script/strip.rs"]
mod strip;

/// The package's directory, as cargo gives it to this run: `env!` would be
/// where the build script was compiled, which cargo may reuse for another
/// checkout sharing the target directory.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap()
}

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
            let path = Path::new(&manifest_dir()).join(dir).join(&name);
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

/// A variable of the build's environment, or "" when it is not set.
fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// Lays the binary's functions out in link/order.txt's order (written by
/// link/order, which says why): those a launch runs sit together, and the
/// launcher's and the supervisor's waits in a few pages of their own; the
/// launcher maps a third as much of the binary's code. GNU ld has no such
/// option, so only where the linker takes it: release builds for
/// x86_64-unknown-linux-gnu where a test link with it succeeds (rustup's
/// rustc links that target with its own LLD from 1.90; a distribution's
/// may not). `MOKSHA_NO_FUNCTION_ORDER=1` turns it off. A name the file
/// lists and the binary lacks is skipped.
fn order_functions() {
    for var in [
        "MOKSHA_NO_FUNCTION_ORDER",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let order = Path::new(&manifest_dir()).join("link/order.txt");
    if var("TARGET") != "x86_64-unknown-linux-gnu"
        || var("PROFILE") != "release"
        || !var("MOKSHA_NO_FUNCTION_ORDER").is_empty()
        || !order.is_file()
    {
        return;
    }
    if !links_with_an_order() {
        println!(
            "cargo:warning=the linker does not take --symbol-ordering-file: functions \
             are laid out unordered (see README, How it is built)"
        );
        return;
    }
    println!("cargo:rerun-if-changed={}", order.display());
    for arg in [
        format!("--symbol-ordering-file={}", order.display()),
        "--no-warn-symbol-ordering".into(),
    ] {
        // -Xlinker: a path with a comma would split under -Wl.
        println!("cargo:rustc-link-arg-bins=-Xlinker");
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}

/// Whether an empty program links with an ordering file, by the rustc,
/// target, flags and linker this build uses.
fn links_with_an_order() -> bool {
    links(
        "order-probe",
        "fn main() {}\n",
        "-Clink-arg=-Wl,--symbol-ordering-file=/dev/null",
    )
}

/// Lets a waiting process give its thread cache's free chunks back to the
/// heap (`sys::shed_idle_memory`, cfg `moksha_tcache_flush`), where it links
/// glibc statically and the archive has the function that does it at a
/// thread's exit: glibc's own, not its API (the shared libc does not
/// export it), so a test link says whether this glibc has it.
fn flush_tcache() {
    println!("cargo:rustc-check-cfg=cfg(moksha_tcache_flush)");
    if var("CARGO_CFG_TARGET_ENV") != "gnu"
        || !var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
    {
        return;
    }
    let probe = "extern \"C\" { fn __malloc_arena_thread_freeres(); }\n\
                 fn main() { if std::env::args().count() > 9 { unsafe { __malloc_arena_thread_freeres() } } }\n";
    if links("tcache-probe", probe, "-Copt-level=0") {
        println!("cargo:rustc-cfg=moksha_tcache_flush");
    }
}

/// Whether `source` links into a program, with `extra` and the rustc,
/// target, flags and linker this build uses.
fn links(name: &str, source: &str, extra: &str) -> bool {
    let out = Path::new(&var("OUT_DIR")).join(name);
    if fs::create_dir_all(&out).is_err() || fs::write(out.join("probe.rs"), source).is_err() {
        return false;
    }
    let mut rustc = std::process::Command::new(var("RUSTC"));
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    rustc.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    if let Ok(linker) = std::env::var("RUSTC_LINKER") {
        rustc.arg(format!("-Clinker={linker}"));
    }
    rustc
        .args(["--target", &var("TARGET"), "--crate-type", "bin", "-o"])
        .arg(out.join("probe"))
        .arg(out.join("probe.rs"))
        .arg(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    // Relative relocations packed (DT_RELR, glibc >= 2.36 and binutils >=
    // 2.38; older ones ignore the flag): the loader applies ~14,000 of them
    // at every start. Binaries only: proc macros and tests link as before.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    order_functions();
    flush_tcache();
    let out_dir = std::env::var("OUT_DIR").unwrap();
    let mut out = String::new();
    let mut dropped = String::from("pub const DROPPED: &[(&str, &[u8])] = &[\n");
    for (konst, dir, prefix) in [
        ("STDLIB", "stdlib", "<stdlib>"),
        ("PROFILES", "profiles", "<profiles>"),
    ] {
        let files = rhai_files(dir);
        table(&mut out, konst, &files);
        let code_dir = Path::new(&out_dir).join(format!("{dir}-code"));
        fs::create_dir_all(&code_dir).unwrap();
        let code: Vec<(String, String)> = files
            .iter()
            .map(|(stem, path)| {
                let text = fs::read_to_string(path).unwrap();
                let dest = code_dir.join(format!("{stem}.rhai"));
                let (code, blanks) = strip::compact(&text);
                fs::write(&dest, code).unwrap();
                dropped.push_str(&format!("    (\"{prefix}/{stem}.rhai\", &{blanks:?}),\n"));
                (stem.clone(), dest.display().to_string())
            })
            .collect();
        table(&mut out, &format!("{konst}_CODE"), &code);
    }
    out.push_str(&dropped);
    out.push_str("];\n");
    fs::write(Path::new(&out_dir).join("embedded.rs"), out).unwrap();
}
