//! The desktop stdlib and the application profiles, with real programs:
//! Xvfb, weston, a private dbus-daemon, firefox-esr and chromium. Every
//! program these tests need is installed by .ci/run; a missing one fails
//! the test with the package to install.

use crate::both;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A background program, killed and reaped when the test ends.
struct Background(Child);

impl Drop for Background {
    /// SIGTERM first, so an X server or compositor removes its socket.
    fn drop(&mut self) {
        // SAFETY: kill with the pid of our own unreaped child.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program args` as `who`, with a clean environment plus `env`.
fn command_as(who: Who, program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = as_user(who, program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    cmd
}

fn wait_for(what: &str, secs: u64, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `moksha ARGS` as `who` with extra environment variables.
fn moksha_env(who: Who, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = moksha(who, args);
    cmd.envs(env.iter().copied());
    Run::from(cmd.output().unwrap())
}

/// Writes a profile into `dir` (world-readable) and returns its path.
fn profile(dir: &Path, name: &str, body: &str) -> String {
    write_profile(dir, name, body)
}

fn chown(path: &Path, who: Who) {
    if who != Who::Root {
        std::os::unix::fs::chown(path, Some(who.uid()), Some(who.uid())).unwrap();
    }
}

fn write_as(path: &Path, bytes: &[u8], who: Who) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    chown(path, who);
}

// ---- X11 ----------------------------------------------------------------

/// A display number no X server uses, distinct for every call.
fn free_display() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = 150 + (std::process::id() % 40) * 8 + NEXT.fetch_add(1, Ordering::SeqCst) % 8;
        if !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            return n;
        }
    }
}

fn cookie(seed: u32) -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    bytes[0] = seed as u8;
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

both!(x11_through_the_module_only, |who| {
    installed("Xvfb", "xvfb");
    installed("xdpyinfo", "x11-utils");
    installed("xauth", "xauth");
    let dir = world_dir();
    let n = free_display();
    // Cookies for our display and for another one: only ours goes in.
    let auth = dir.path().join("Xauthority");
    let auth_s = auth.to_string_lossy().into_owned();
    for (d, seed) in [(n, 1), (n + 1, 2)] {
        let ok = Command::new("xauth")
            .args(["-f", &auth_s, "add", &format!(":{d}"), "."])
            .arg(cookie(seed))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _xvfb = Background(
        Command::new("Xvfb")
            .args([&format!(":{n}"), "-auth", &auth_s, "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = format!("/tmp/.X11-unix/X{n}");
    wait_for("Xvfb's socket", 20, || Path::new(&socket).exists());
    let display = format!(":{n}");
    let env = [
        ("DISPLAY", display.as_str()),
        ("XAUTHORITY", auth_s.as_str()),
    ];

    let with = profile(
        dir.path(),
        "with.rhai",
        r#"import "base" as base;
import "display" as display;
let s = sandbox("x11");
base::minimal(s);
display::x11(s);
s.exec(["/bin/sh", "-c", "xdpyinfo >/dev/null && echo X11-OK; xauth -f \"$XAUTHORITY\" list | wc -l"]);
"#,
    );
    let r = moksha_env(who, &["exec", &with], &env).expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        ["X11-OK", "1"],
        "the client connects, with one cookie only: {r:?}"
    );

    // Without the module, with DISPLAY and the cookie: no socket, and the
    // abstract one is in another network namespace.
    let without = profile(
        dir.path(),
        "without.rhai",
        &format!(
            r#"import "base" as base;
let s = sandbox("x11");
base::minimal(s);
s.keep_env(["DISPLAY", "XAUTHORITY"]);
s.bind({});
s.exec(["xdpyinfo"]);
"#,
            rhai_string(&auth_s)
        ),
    );
    let r = moksha_env(who, &["exec", &without], &env);
    assert_ne!(
        r.code, 0,
        "xdpyinfo reached the display without the module: {r:?}"
    );
    assert!(r.stderr.contains("unable to open display"), "{r:?}");

    // Sharing the host network with X11 is called out.
    let shared = profile(
        dir.path(),
        "shared.rhai",
        r#"import "base" as base;
import "display" as display;
import "network" as network;
let s = sandbox("x11");
base::minimal(s);
network::host(s);
display::x11(s);
s.exec(["xdpyinfo"]);
"#,
    );
    let r = moksha_env(who, &["plan", &shared], &env).expect_code(0);
    assert!(r.stdout.contains("abstract sockets"), "{}", r.stdout);
    // And it works there too: the X libraries try the abstract socket first
    // (landlock may refuse it), then the file.
    let r = moksha_env(who, &["exec", &shared], &env).expect_code(0);
    assert!(r.stdout.contains("name of display"), "{r:?}");
});

// ---- Wayland --------------------------------------------------------------

both!(wayland_through_the_module_only, |who| {
    installed("weston", "weston");
    installed("wayland-info", "wayland-utils");
    let dir = world_dir();
    let runtime = owned_dir(dir.path(), "runtime", who);
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let rt = runtime.to_string_lossy().into_owned();
    let _weston = Background(
        command_as(
            who,
            "weston",
            &[
                "--backend=headless-backend.so",
                "--socket=wayland-moksha",
                "--idle-time=0",
            ],
            &[("XDG_RUNTIME_DIR", &rt)],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_for("weston's socket", 20, || {
        runtime.join("wayland-moksha").exists()
    });
    let env = [
        ("XDG_RUNTIME_DIR", rt.as_str()),
        ("WAYLAND_DISPLAY", "wayland-moksha"),
    ];
    let with = profile(
        dir.path(),
        "with.rhai",
        r#"import "base" as base;
import "display" as display;
let s = sandbox("wl");
base::minimal(s);
display::wayland(s);
s.exec(["wayland-info"]);
"#,
    );
    let r = moksha_env(who, &["exec", &with], &env).expect_code(0);
    assert!(r.stdout.contains("wl_compositor"), "{r:?}");

    let without = profile(
        dir.path(),
        "without.rhai",
        r#"import "base" as base;
let s = sandbox("wl");
base::minimal(s);
s.keep_env(["WAYLAND_DISPLAY"]);
s.exec(["wayland-info"]);
"#,
    );
    let r = moksha_env(who, &["exec", &without], &env);
    assert_ne!(
        r.code, 0,
        "wayland-info connected without the module: {r:?}"
    );
});

// ---- D-Bus ------------------------------------------------------------------

/// A session-bus service owning the names given: GDBus answers
/// org.freedesktop.DBus.Peer.Ping for every connection.
const SERVICE: &str = r#"
import sys
from gi.repository import Gio, GLib
conn = Gio.bus_get_sync(Gio.BusType.SESSION, None)
for n in sys.argv[1:]:
    conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                   "RequestName", GLib.Variant("(su)", (n, 4)), None, 0, -1, None)
print("owned", flush=True)
GLib.MainLoop().run()
"#;

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = entry.path().join("cmdline");
        if let Ok(bytes) = std::fs::read(&cmdline) {
            let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if text.contains(needle) && !text.contains("desktop::") {
                found.push(text);
            }
        }
    }
    found
}

/// A private session bus run by `who` in `dir`, with a service owning
/// org.moksha.Allowed and org.moksha.Hidden: its address, and the processes
/// (stopped when dropped).
fn session_bus(who: Who, dir: &Path) -> (String, [Background; 2]) {
    let busdir = owned_dir(dir, "bus", who);
    let bus = busdir.join("socket");
    let address = format!("unix:path={}", bus.display());
    let daemon = Background(
        command_as(
            who,
            "dbus-daemon",
            &[
                "--session",
                &format!("--address={address}"),
                "--nofork",
                "--nopidfile",
            ],
            &[],
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_for("dbus-daemon's socket", 20, || bus.exists());
    let service_py = dir.join("service.py");
    write_as(&service_py, SERVICE.as_bytes(), Who::Root);
    let mut service = command_as(
        who,
        "/usr/bin/python3",
        &[
            &service_py.to_string_lossy(),
            "org.moksha.Allowed",
            "org.moksha.Hidden",
        ],
        &[("DBUS_SESSION_BUS_ADDRESS", &address)],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(service.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let service = Background(service);
    assert_eq!(line.trim(), "owned");
    (address, [daemon, service])
}

both!(dbus_filter_allows_only_the_named_service, |who| {
    installed("dbus-daemon", "dbus");
    installed("xdg-dbus-proxy", "xdg-dbus-proxy");
    installed("gdbus", "libglib2.0-bin");
    assert!(
        Path::new("/usr/lib/python3/dist-packages/gi").exists(),
        "python3-gi is not installed: apt-get install python3-gi (see .ci/run)"
    );
    let dir = world_dir();
    let (address, _bus) = session_bus(who, dir.path());

    let ping = |name: &str| {
        format!(
            "gdbus call --session --dest {name} --object-path / \
             --method org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1 && echo {name}-reached; "
        )
    };
    let script = format!(
        "{}{}test -e /run/dbus/system_bus_socket && echo system-bus; echo done",
        ping("org.moksha.Allowed"),
        ping("org.moksha.Hidden")
    );
    let p = profile(
        dir.path(),
        "bus.rhai",
        &format!(
            r#"import "base" as base;
import "dbus" as dbus;
let s = sandbox("bus");
base::minimal(s);
dbus::session(s, #{{ talk: ["org.moksha.Allowed"] }});
s.exec(["/bin/sh", "-c", {}]);
"#,
            rhai_string(&script)
        ),
    );
    let env = [("DBUS_SESSION_BUS_ADDRESS", address.as_str())];
    let r = moksha_env(who, &["exec", &p], &env).expect_code(0);
    assert!(r.stdout.contains("org.moksha.Allowed-reached"), "{r:?}");
    assert!(!r.stdout.contains("org.moksha.Hidden-reached"), "{r:?}");
    assert!(!r.stdout.contains("system-bus"), "{r:?}");
    assert!(r.stdout.ends_with("done\n"), "{r:?}");
    // moksha stopped and reaped the proxy before it returned.
    let left = processes_with(&address);
    assert!(
        left.iter().all(|p| !p.contains("xdg-dbus-proxy")),
        "the proxy outlived the sandbox: {left:?}"
    );

    // The plan shows the proxy and its filter.
    let r = moksha_env(who, &["plan", &p], &env).expect_code(0);
    assert!(
        r.stdout.contains("--talk=org.moksha.Allowed"),
        "{}",
        r.stdout
    );
});

both!(
    firejail_dbus_user_filter_talks_and_owns_only_what_it_says,
    |who| {
        installed("dbus-daemon", "dbus");
        installed("xdg-dbus-proxy", "xdg-dbus-proxy");
        installed("gdbus", "libglib2.0-bin");
        let dir = world_dir();
        let (address, _bus) = session_bus(who, dir.path());
        let profile_path = dir.path().join("bus.profile");
        write_as(
        &profile_path,
        b"dbus-user filter\ndbus-user.talk org.moksha.Allowed\ndbus-user.own org.moksha.Mine\ndbus-system none\n",
        Who::Root,
    );
        let own = |name: &str| {
            format!(
            "gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
             --method org.freedesktop.DBus.RequestName {name} 4 2>/dev/null | grep -q '(uint32 1,)' \
             && echo owned-{name}; "
        )
        };
        let ping = |name: &str| {
            format!(
                "gdbus call --session --dest {name} --object-path / \
             --method org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1 && echo {name}-reached; "
            )
        };
        let script = format!(
            "{}{}{}{}echo done",
            ping("org.moksha.Allowed"),
            ping("org.moksha.Hidden"),
            own("org.moksha.Mine"),
            own("org.moksha.Other"),
        );
        let env = [("DBUS_SESSION_BUS_ADDRESS", address.as_str())];
        let target = format!("firejail:{}", profile_path.display());
        let r = moksha_env(
            who,
            &["exec", &target, "--", "/bin/sh", "-c", &script],
            &env,
        )
        .expect_code(0);
        assert_eq!(
            r.stdout, "org.moksha.Allowed-reached\nowned-org.moksha.Mine\ndone\n",
            "{r:?}"
        );
    }
);

// ---- helpers ------------------------------------------------------------------

both!(helper_failures_are_clear, |who| {
    let dir = world_dir();
    let p = profile(
        dir.path(),
        "h.rhai",
        r#"let s = sandbox("h");
s.helper("prep", ["/bin/sh", "-c", "echo no luck >&2; exit 3"], #{ ready: "exit" });
s.exec(["/bin/true"]);
"#,
    );
    let r = moksha_env(who, &["exec", &p], &[]).expect_code(125);
    assert!(
        r.stderr.contains("helper prep exited with status 3") && r.stderr.contains("no luck"),
        "{r:?}"
    );
    let p = profile(
        dir.path(),
        "o.rhai",
        r#"import "base" as base;
let s = sandbox("h");
base::minimal(s);
s.helper("gone", ["moksha-no-such-program"], #{ optional: true });
s.helper("file", ["/bin/sh", "-c", "echo made > made; exec sleep 30"],
         #{ ready: "file", file: "made", expose: #{ made: "/run/made" } });
s.exec(["/bin/cat", "/run/made"]);
"#,
    );
    let r = moksha_env(who, &["exec", &p], &[]).expect_code(0);
    assert!(r.stderr.contains("was not found on the host"), "{r:?}");
    assert_eq!(r.stdout, "made\n");
});

// ---- home ---------------------------------------------------------------------

both!(persistent_home_keeps_files_for_its_app_only, |who| {
    let dir = world_dir();
    let home = sandbox_dir(dir.path(), "home", who);
    let data = sandbox_dir(dir.path(), "data", who);
    let env = [
        ("HOME", home.to_str().unwrap()),
        ("XDG_DATA_HOME", data.to_str().unwrap()),
    ];
    let p = |script: &str| {
        format!(
            "import \"base\" as base;\nimport \"home\" as home;\nlet s = sandbox(\"app\");\n\
             base::minimal(s);\nhome::persistent(s, \"testapp\");\n\
             s.exec([\"/bin/sh\", \"-c\", {}]);\n",
            rhai_string(script)
        )
    };
    let first = profile(
        dir.path(),
        "first.rhai",
        &p("echo kept > \"$HOME/note\" && echo wrote"),
    );
    let r = moksha_env(who, &["exec", &first], &env).expect_code(0);
    assert_eq!(r.stdout, "wrote\n");
    let second = profile(dir.path(), "second.rhai", &p("cat \"$HOME/note\""));
    let r = moksha_env(who, &["exec", &second], &env).expect_code(0);
    assert_eq!(r.stdout, "kept\n");
    let kept = data.join("moksha/homes/testapp/note");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "kept\n");
    assert!(!home.join("note").exists(), "the real home was written");
    // The per-app home is private to the user.
    let mode = std::fs::metadata(data.join("moksha/homes/testapp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
});

// ---- profiles in a bare environment ---------------------------------------------

/// Every shipped profile evaluates and validates on a host without Wayland,
/// X11, D-Bus or sound, and says which desktop service is missing.
#[test]
fn profiles_degrade_with_clear_warnings_without_a_desktop() {
    let dir = world_dir();
    let runtime = owned_dir(dir.path(), "runtime", Who::Root);
    let rt = runtime.to_string_lossy().into_owned();
    let home = owned_dir(dir.path(), "home", Who::Root);
    let home = home.to_string_lossy().into_owned();
    let bare = [("XDG_RUNTIME_DIR", rt.as_str()), ("HOME", home.as_str())];
    let gui = ["firefox", "chromium", "zathura", "mpv"];
    for name in moksha::profiles::list().into_iter().map(|l| l.name) {
        let r = moksha_env(Who::Root, &["plan", &name], &bare);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        if gui.contains(&name.as_str()) {
            for want in [
                "neither WAYLAND_DISPLAY nor DISPLAY",
                "no PipeWire or PulseAudio",
            ] {
                assert!(
                    r.stdout.contains(want),
                    "{name} does not warn {want:?}:\n{}",
                    r.stdout
                );
            }
        }
        if name == "firefox" || name == "chromium" {
            assert!(r.stdout.contains("no session bus"), "{name}:\n{}", r.stdout);
        }
    }
    // Services named but absent: each says what is missing.
    let missing = [
        ("XDG_RUNTIME_DIR", rt.as_str()),
        ("HOME", home.as_str()),
        ("WAYLAND_DISPLAY", "wayland-none"),
        ("DISPLAY", ":987"),
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
    ];
    let r = moksha_env(Who::Root, &["plan", "firefox"], &missing).expect_code(0);
    for want in [
        "wayland-none does not exist",
        "/tmp/.X11-unix/X987 does not exist",
        "/nonexistent/bus does not exist",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?}:\n{}", r.stdout);
    }
    // And `moksha check` passes them all, printing the warnings.
    let paths: Vec<String> = moksha::profiles::list()
        .into_iter()
        .map(|l| l.name)
        .collect();
    let mut args = vec!["check"];
    args.extend(paths.iter().map(String::as_str));
    let r = moksha_env(Who::Root, &args, &bare).expect_code(0);
    assert!(r.stderr.contains("moksha: warning:"), "{r:?}");
}

// ---- browsers -------------------------------------------------------------------

/// A PNG's width, height and RGB pixels at the given points, decoded by a
/// small Python script (no image library in the test's dependencies).
const PIXELS: &str = r#"
import sys, struct, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, w, h = 8, b'', 0, 0
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos+8])
    body = data[pos+8:pos+8+n]
    if kind == b'IHDR':
        w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
        assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        bpp = 3 if ctype == 2 else 4
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
stride = w * bpp
rows, prev, i = [], bytearray(stride), 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
    for x in range(stride):
        a = line[x-bpp] if x >= bpp else 0
        b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
            pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[x] = (line[x] + pr) & 255
    rows.append(line); prev = line
print(w, h)
for pt in sys.argv[2:]:
    x, y = map(int, pt.split(','))
    px = rows[y][x*bpp:x*bpp+3]
    print('%d,%d,%d' % tuple(px))
"#;

/// Runs a browser profile on a page in the exposed ~/Downloads that loads
/// an image beside it (must work) and one elsewhere in the home (must not):
/// the page turns red if the outside image loads, green if it cannot.
fn browser_screenshot(who: Who, profile: &str, screenshot_args: &dyn Fn(&str) -> Vec<String>) {
    let dir = world_dir();
    let home = sandbox_dir(dir.path(), "home", who);
    let downloads = sandbox_dir(&home, "Downloads", who);
    let data = sandbox_dir(dir.path(), "data", who);
    let png = |rgb: [u8; 3]| -> Vec<u8> {
        // An 8x8 RGB PNG, stored (uncompressed) deflate blocks.
        let raw: Vec<u8> = (0..8)
            .flat_map(|_| std::iter::once(0).chain(rgb.iter().copied().cycle().take(24)))
            .collect();
        let mut z = vec![0x78, 0x01, 1];
        z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
        z.extend_from_slice(&raw);
        let (mut a, mut b) = (1u32, 0u32);
        for byte in &raw {
            a = (a + *byte as u32) % 65521;
            b = (b + a) % 65521;
        }
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        let chunk = |kind: &[u8], body: &[u8]| -> Vec<u8> {
            let mut c = (body.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(body);
            let mut crc = 0xffff_ffffu32;
            for byte in kind.iter().chain(body) {
                crc ^= *byte as u32;
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xedb8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            c.extend_from_slice(&(!crc).to_be_bytes());
            c
        };
        let mut ihdr = 8u32.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&8u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend(chunk(b"IHDR", &ihdr));
        out.extend(chunk(b"IDAT", &z));
        out.extend(chunk(b"IEND", b""));
        out
    };
    write_as(&downloads.join("inside.png"), &png([0, 0, 255]), who);
    let secret = home.join("secret.png");
    write_as(&secret, &png([255, 0, 0]), who);
    let page = downloads.join("page.html");
    let html = format!(
        r#"<!doctype html><html><body style="margin:0;background:rgb(255,255,255)">
<img src="inside.png" width="200" height="200" onload="document.getElementById('a').style.background='rgb(0,0,255)'">
<div id="a" style="width:300px;height:100px;background:rgb(0,0,0)"></div>
<img src="file://{}" width="200" height="200"
 onload="document.body.style.background='rgb(255,0,0)'" onerror="document.body.style.background='rgb(0,255,0)'">
</body></html>
"#,
        secret.display()
    );
    write_as(&page, html.as_bytes(), who);
    let shot = downloads.join("shot.png");
    let url = format!("file://{}", page.display());
    let mut args: Vec<String> = vec![
        "180".into(),
        moksha_bin().to_string_lossy().into(),
        "exec".into(),
        profile.into(),
        "--".into(),
    ];
    args.extend(screenshot_args(&shot.to_string_lossy()));
    args.push(url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = command_as(
        who,
        "timeout",
        &args,
        &[
            ("HOME", home.to_str().unwrap()),
            ("XDG_DATA_HOME", data.to_str().unwrap()),
        ],
    )
    .current_dir("/")
    .output()
    .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{profile} failed: {r:?}");
    let size = std::fs::metadata(&shot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}; {r:?}", shot.display()))
        .len();
    assert!(size > 0);
    let script = dir.path().join("pixels.py");
    write_as(&script, PIXELS.as_bytes(), Who::Root);
    let decoded = Command::new("python3")
        .arg(&script)
        .arg(&shot)
        .args(["100,100", "100,250", "300,150"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&decoded.stdout).into_owned();
    assert!(
        decoded.status.success(),
        "not a valid PNG: {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let dims: Vec<u32> = lines[0].split(' ').map(|n| n.parse().unwrap()).collect();
    assert!(dims[0] >= 350 && dims[1] >= 300, "screenshot size {dims:?}");
    assert_eq!(
        lines[1], "0,0,255",
        "the image beside the page was not shown: {text}"
    );
    assert_eq!(lines[2], "0,0,255", "the page's script did not run: {text}");
    assert_eq!(
        lines[3], "0,255,0",
        "the image outside the exposed paths must not load (red: it did): {text}"
    );
    // The browser's profile went into its own home, not the real one.
    assert!(data.join(format!("moksha/homes/{profile}")).is_dir());
}

both!(firefox_screenshot_sees_only_exposed_files, |who| {
    installed("firefox-esr", "firefox-esr");
    browser_screenshot(who, "firefox", &|shot| {
        vec![
            "--headless".into(),
            "--window-size=400,400".into(),
            "--screenshot".into(),
            shot.into(),
        ]
    });
});

both!(chromium_screenshot_sees_only_exposed_files, |who| {
    installed("chromium", "chromium");
    browser_screenshot(who, "chromium", &|shot| {
        vec![
            "--headless".into(),
            "--window-size=400,400".into(),
            // Without a budget the capture can follow the load event before
            // the image's onload handler has run (seen once in CI).
            "--virtual-time-budget=3000".into(),
            format!("--screenshot={shot}"),
        ]
    });
});
