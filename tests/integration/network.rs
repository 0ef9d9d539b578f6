//! Networking (issue 7): none, host, user (pasta, slirp4netns), joining a
//! namespace, port forwards, the helper's lifetime.
//!
//! No traffic leaves this machine. "The internet" is a network namespace
//! each test makes itself (`ip netns add`), joined to the host by a veth
//! pair with addresses in 10.250.N.0/24 that exist only there; its servers
//! (TCP and UDP echo, a one-name DNS responder) are python3 scripts bound
//! in that namespace. Host-side servers are on 127.0.0.1 or abstract unix
//! sockets. The helper reaches the test namespace through the host's own
//! routing table (the veth route), nothing else.

use crate::both;
use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";

/// The client inside the sandbox: one probe per run, one line of output.
const PROBE: &str = r#"
import socket, sys, time
kind = sys.argv[1]
def out(s):
    print(s, flush=True)
try:
    if kind == "tcp":
        deadline = time.time() + float(sys.argv[4]) if len(sys.argv) > 4 else 0
        while True:
            try:
                c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
                break
            except ConnectionRefusedError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        c.sendall(b"ping")
        out("tcp-ok:" + c.recv(100).decode())
    elif kind == "udp":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        u.sendto(b"ping", (sys.argv[2], int(sys.argv[3])))
        out("udp-ok:" + u.recvfrom(100)[0].decode())
    elif kind == "abstract":
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect("\0" + sys.argv[2])
        out("abstract-ok")
    elif kind == "resolve":
        out("resolve-ok:" + socket.gethostbyname(sys.argv[2]))
    elif kind == "serve":
        addr, port = sys.argv[2], int(sys.argv[3])
        uport = int(sys.argv[4]) if len(sys.argv) > 4 else port
        t = socket.socket()
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, port))
        t.listen(4)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((addr, uport))
        out("listening")
        c, _ = t.accept()
        c.sendall(b"inside-tcp:" + c.recv(100))
        c.close()
        d, peer = u.recvfrom(100)
        u.sendto(b"inside-udp:" + d, peer)
        out("served")
except Exception as e:
    out(kind + "-fail:" + type(e).__name__ + ":" + str(e))
"#;

/// TCP and UDP echo on one address and port, in the test namespace.
const ECHO: &str = r#"
import socket, sys, threading
a, p = sys.argv[1], int(sys.argv[2])
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((a, p))
t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((a, p))
def udp():
    while True:
        d, peer = u.recvfrom(100)
        u.sendto(b"udp-echo:" + d, peer)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, _ = t.accept()
    c.sendall(b"tcp-echo:" + c.recv(100))
    c.close()
"#;

/// A DNS server that knows one name (A record), NXDOMAIN for the rest.
const DNS: &str = r#"
import socket, struct, sys
addr, name, answer = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    i, labels = 12, []
    while q[i] != 0:
        n = q[i]
        labels.append(q[i + 1:i + 1 + n].decode())
        i += 1 + n
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    qname = ".".join(labels).lower()
    if qname == name and qtype == 1:
        body = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(answer)
        s.sendto(q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + body, peer)
    elif qname == name:
        s.sendto(q[:2] + struct.pack(">HHHHH", 0x8180, 1, 0, 0, 0) + question, peer)
    else:
        s.sendto(q[:2] + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + question, peer)
"#;

const TEST_NAME: &str = "internet.moksha.test";
const TEST_ANSWER: &str = "10.250.0.77";
const ECHO_PORT: u16 = 7007;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A child whose first stdout line is awaited and which is killed on drop.
struct Server(Child);

impl Server {
    fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start a test server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the test server did not start: {err}");
        }
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// "The internet": a network namespace of the test's own, reachable from
/// the host at 10.250.N.2 through a veth pair, with an echo server and a
/// DNS server on that address.
struct Internet {
    netns: String,
    pub addr: String,
    servers: Vec<Server>,
}

impl Internet {
    fn new() -> Internet {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(n < 250);
        let netns = format!("moksha-test-{n}");
        let (host_if, ns_if) = (format!("mkh{n}"), format!("mkn{n}"));
        // Leftovers of an interrupted run use the same names.
        ip_quiet(&["netns", "del", &netns]);
        ip_quiet(&["link", "del", &host_if]);
        ip(&["netns", "add", &netns]);
        let mut net = Internet {
            netns: netns.clone(),
            addr: format!("10.250.{n}.2"),
            servers: Vec::new(),
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", &netns,
        ]);
        ip(&["addr", "add", &format!("10.250.{n}.1/24"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut a = vec!["netns", "exec", netns.as_str(), "ip"];
            a.extend_from_slice(args);
            ip(&a);
        };
        inside(&["addr", "add", &format!("10.250.{n}.2/24"), "dev", &ns_if]);
        inside(&["link", "set", &ns_if, "up"]);
        inside(&["link", "set", "lo", "up"]);
        let py = |script: &str, args: &[&str]| {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &netns, PYTHON, "-c", script]);
            c.args(args);
            c
        };
        let port = ECHO_PORT.to_string();
        net.servers
            .push(Server::start(py(ECHO, &[&net.addr, &port])));
        net.servers
            .push(Server::start(py(DNS, &[&net.addr, TEST_NAME, TEST_ANSWER])));
        net
    }
}

impl Internet {
    /// The namespace is still mounted at /run/netns: a helper run as root
    /// must not unmount the host's shared mounts (slirp4netns's own
    /// sandboxing did).
    fn assert_intact(&self) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            mounts.contains(&format!("/run/netns/{} ", self.netns)),
            "{} was unmounted on the host",
            self.netns
        );
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        self.servers.clear();
        // Deleting the namespace deletes the veth pair with it.
        ip_quiet(&["netns", "del", &self.netns]);
    }
}

/// A profile directory with the probe script, readable by everyone.
fn probe_dir() -> tempfile::TempDir {
    let dir = world_dir();
    write_profile(dir.path(), "probe.py", PROBE);
    dir
}

/// Rhai lines binding the probe at /probe.py.
fn bind_probe(dir: &Path) -> String {
    format!(
        "s.bind({}, \"/probe.py\");\n",
        rhai_string(&dir.join("probe.py").to_string_lossy())
    )
}

/// Runs a shell script in the minimal sandbox with the probe bound and
/// `extra` Rhai lines.
fn run_net(who: Who, extra: &str, script: &str) -> Run {
    let dir = probe_dir();
    let profile = sh_profile(&format!("{}{extra}", bind_probe(dir.path())), script);
    let path = write_profile(dir.path(), "net.rhai", &profile);
    Run::from(moksha(who, &["exec", &path]).output().unwrap())
}

/// A TCP listener and an abstract unix socket on the host, answering
/// every connection with "host".
struct HostServices {
    pub port: u16,
    pub abstract_name: String,
}

fn host_services() -> HostServices {
    use std::os::linux::net::SocketAddrExt;
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    static N: AtomicU32 = AtomicU32::new(0);
    let abstract_name = format!(
        "moksha-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name).unwrap();
    let unix = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    std::thread::spawn(move || {
        for c in tcp.incoming().flatten() {
            // Read the probe's "ping" first: closing with unread data
            // would reset the connection before "host" arrives.
            let mut c = c;
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4];
            let _ = c.read_exact(&mut buf);
            let _ = c.write_all(b"host");
        }
    });
    std::thread::spawn(move || {
        for c in unix.incoming().flatten() {
            let mut c = c;
            let _ = c.write_all(b"host");
        }
    });
    HostServices {
        port,
        abstract_name,
    }
}

// ---- none ---------------------------------------------------------------

both!(none_has_only_lo_and_it_is_up, |who| {
    let r = sh(who, "", "ip -o link").expect_code(0);
    let links: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(links.len(), 1, "only lo: {}", r.stdout);
    assert!(links[0].starts_with("1: lo:"), "{}", r.stdout);
    assert!(links[0].contains(",UP"), "lo is up: {}", r.stdout);
    // The explicit mode is the same as the default.
    let r2 = sh(who, "s.network(\"none\");", "ip -o link").expect_code(0);
    assert_eq!(r2.stdout.lines().count(), 1, "{}", r2.stdout);
});

// The new network namespace is made after the clone, by a child of the
// launcher, while the sandbox side builds the root (launch/network.rs).
// Where it cannot be made, the launch fails before the program runs and
// says why: the sandbox never goes on in the network the clone started in
// (the host's). The probe makes unshare(CLONE_NEWNET) fail as at the limit.
both!(
    a_network_namespace_that_cannot_be_made_fails_the_launch,
    |who| {
        let dir = world_dir();
        let path = write_profile(
            dir.path(),
            "n.rhai",
            &sh_profile("", "echo the-program-ran; readlink /proc/self/ns/net"),
        );
        let out = as_user(who, compiled_probe("no_netns").join("no_netns"))
            .arg(moksha_bin())
            .args(["exec", &path])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let r = Run::from(out).expect_code(125);
        assert!(!r.stdout.contains("the-program-ran"), "{r:?}");
        assert!(
            r.stderr.contains(
                "cannot create the sandbox's network namespace: unshare(NEWNET) failed: ENOSPC"
            ),
            "{r:?}"
        );
        assert!(
            r.stderr.contains("user.max_net_namespaces"),
            "a hint: {r:?}"
        );
    }
);

both!(none_loopback_works_inside_but_not_the_hosts, |who| {
    let host = host_services();
    let script = format!(
        "python3 /probe.py serve 127.0.0.1 9000 & \
         python3 /probe.py tcp 127.0.0.1 9000 5; \
         python3 /probe.py udp 127.0.0.1 9000; wait; \
         python3 /probe.py tcp 127.0.0.1 {}; \
         python3 /probe.py abstract {}",
        host.port, host.abstract_name
    );
    let r = run_net(who, "", &script).expect_code(0);
    assert!(
        r.stdout.contains("tcp-ok:inside-tcp:ping"),
        "a server inside on 127.0.0.1 answers: {}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("udp-ok:inside-udp:ping"), "{}", r.stdout);
    assert!(
        r.stdout.contains("tcp-fail:ConnectionRefusedError"),
        "the host's 127.0.0.1 is not reachable: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("abstract-fail:ConnectionRefusedError"),
        "host abstract sockets are not reachable: {}",
        r.stdout
    );
});

// ---- host ---------------------------------------------------------------

both!(host_mode_sees_the_hosts_interfaces_and_services, |who| {
    let host = host_services();
    let script = format!(
        "ip -o link | cut -d: -f2; python3 /probe.py tcp 127.0.0.1 {}; \
         python3 /probe.py abstract {}",
        host.port, host.abstract_name
    );
    let r = run_net(who, "s.network(\"host\");", &script).expect_code(0);
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let host_links = String::from_utf8_lossy(&out.stdout);
    for link in host_links.lines() {
        let name = link.split(':').nth(1).unwrap().trim();
        let name = name.split('@').next().unwrap();
        if name.starts_with("mkh") {
            // Another test's veth, which may come and go meanwhile.
            continue;
        }
        assert!(
            r.stdout.contains(name),
            "host interface {name} is seen inside: {}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("tcp-ok:host"), "{}", r.stdout);
    // Abstract sockets are the host's too; landlock's scoping (on by
    // default, where the kernel has it) may still refuse them.
    assert!(
        r.stdout.contains("abstract-ok") || r.stdout.contains("abstract-fail:PermissionError"),
        "{}",
        r.stdout
    );
});

#[test]
fn plan_warns_when_the_host_network_is_shared() {
    for line in ["s.network(\"host\");", "s.share([\"net\"]);"] {
        let dir = world_dir();
        let path = write_profile(dir.path(), "p.rhai", &sh_profile(line, "true"));
        let r = Run::from(moksha(Who::Root, &["plan", &path]).output().unwrap()).expect_code(0);
        assert!(
            r.stdout.contains("mode       host")
                && r.stdout.contains("warning: the host network is shared"),
            "{}",
            r.stdout
        );
    }
    let dir = world_dir();
    let path = write_profile(dir.path(), "p.rhai", &sh_profile("", "true"));
    let r = Run::from(moksha(Who::Root, &["plan", &path]).output().unwrap()).expect_code(0);
    assert!(r.stdout.contains("mode       none"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("warning: the host network"),
        "{}",
        r.stdout
    );
}

// ---- user (pasta) ---------------------------------------------------------

fn user_line(opts: &str) -> String {
    format!("s.network(\"user\", #{{ helper: \"pasta\" {opts} }});")
}

both!(user_reaches_the_internet_over_tcp_and_udp, |who| {
    let inet = Internet::new();
    let script = format!(
        "python3 /probe.py tcp {0} {1}; python3 /probe.py udp {0} {1}; ip -o -4 addr show scope global",
        inet.addr, ECHO_PORT
    );
    let r = run_net(who, &user_line(""), &script).expect_code(0);
    assert!(
        r.stdout.contains("tcp-ok:tcp-echo:ping"),
        "TCP through pasta: {}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains("udp-ok:udp-echo:ping"),
        "UDP through pasta: {}",
        r.stdout
    );
    assert!(r.stdout.contains("inet 10.0.2.100/24"), "{}", r.stdout);
    inet.assert_intact();
});

/// `moksha` as `who`, in a private mount namespace whose /etc/resolv.conf
/// names `server`: pasta's forwarder reads the host's resolvers there.
fn moksha_with_resolver(who: Who, server: &str, dir: &Path, args: &[&str]) -> Command {
    let conf = dir.join("resolv.conf");
    std::fs::write(&conf, format!("nameserver {server}\n")).unwrap();
    let inner = moksha(who, args);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--"])
        .arg("/bin/sh")
        .arg("-c")
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(&conf)
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir("/")
        .stdin(Stdio::null());
    cmd
}

both!(user_resolves_names_through_the_forwarder, |who| {
    let inet = Internet::new();
    let dir = probe_dir();
    let script = format!(
        "cat /etc/resolv.conf; python3 /probe.py resolve {TEST_NAME}; \
         python3 /probe.py resolve unknown.moksha.test"
    );
    let profile = sh_profile(
        &format!("{}{}", bind_probe(dir.path()), user_line("")),
        &script,
    );
    let path = write_profile(dir.path(), "dns.rhai", &profile);
    let out = moksha_with_resolver(who, &inet.addr, dir.path(), &["exec", &path])
        .output()
        .unwrap();
    let r = Run::from(out).expect_code(0);
    assert!(r.stdout.contains("nameserver 10.0.2.3"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("resolve-ok:{TEST_ANSWER}")),
        "DNS through pasta's forwarder: {}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("resolve-fail:"), "{}", r.stdout);
});

both!(user_dns_servers_are_asked_directly, |who| {
    let inet = Internet::new();
    let line = format!(
        "s.network(\"user\", #{{ dns_servers: [\"{}\"] }});",
        inet.addr
    );
    let script = format!("cat /etc/resolv.conf; python3 /probe.py resolve {TEST_NAME}");
    let r = run_net(who, &line, &script).expect_code(0);
    assert!(
        r.stdout.contains(&format!("nameserver {}", inet.addr)),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("resolve-ok:{TEST_ANSWER}")),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
});

both!(user_does_not_reach_host_loopback_unless_asked, |who| {
    let host = host_services();
    let script = format!(
        "python3 /probe.py tcp 127.0.0.1 {0}; python3 /probe.py abstract {1}",
        host.port, host.abstract_name
    );
    let r = run_net(who, &user_line(""), &script).expect_code(0);
    assert!(
        r.stdout.contains("tcp-fail:ConnectionRefusedError"),
        "127.0.0.1 inside is the sandbox's own: {}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains("abstract-fail:ConnectionRefusedError"),
        "{}",
        r.stdout
    );
    // Asked for: the gateway leads to the host's loopback.
    let script = format!("python3 /probe.py tcp 10.0.2.2 {}", host.port);
    let r = run_net(who, &user_line(", host_loopback: true"), &script).expect_code(0);
    assert!(
        r.stdout.contains("tcp-ok:host"),
        "host_loopback: true reaches the host's 127.0.0.1 at 10.0.2.2: {}\n{}",
        r.stdout,
        r.stderr
    );
});

/// A free port on the host's 127.0.0.1 (TCP and UDP).
fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts `moksha exec` on a profile with its stdout read line by line.
fn spawn_moksha(who: Who, profile: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = moksha(who, &["exec", profile])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn expect_line(rx: &mpsc::Receiver<String>, want: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(want) => return,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("no {want:?} from the sandbox; stderr:\n{err}");
            }
        }
    }
}

fn wait_exit(child: &mut Child, secs: u64) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("moksha did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

both!(user_port_forwards_reach_a_server_inside, |who| {
    let (tcp_port, udp_port) = (free_port(), free_port());
    let dir = probe_dir();
    let extra = format!(
        "{}s.network(\"user\", #{{ helper: \"pasta\" }});\n\
         s.forward(#{{ host: {tcp_port}, sandbox: 8000 }});\n\
         s.forward(#{{ host: {udp_port}, proto: \"udp\" }});",
        bind_probe(dir.path())
    );
    // UDP keeps its port number: the pasta of Debian 12 (2023-03) does not
    // carry replies back through a spliced UDP forward that changes it.
    let profile = sh_profile(
        &extra,
        &format!("exec python3 /probe.py serve 0.0.0.0 8000 {udp_port}"),
    );
    let path = write_profile(dir.path(), "fwd.rhai", &profile);
    let (mut child, rx) = spawn_moksha(who, &path);
    expect_line(&rx, "listening", &mut child);

    let mut tcp = TcpStream::connect(("127.0.0.1", tcp_port)).expect("forwarded TCP port");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"hello").unwrap();
    let mut got = String::new();
    tcp.read_to_string(&mut got).unwrap();
    assert_eq!(got, "inside-tcp:hello");

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 100];
    let mut answer = None;
    for _ in 0..20 {
        udp.send_to(b"hello", ("127.0.0.1", udp_port)).unwrap();
        if let Ok((n, _)) = udp.recv_from(&mut buf) {
            answer = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            break;
        }
    }
    assert_eq!(answer.as_deref(), Some("inside-udp:hello"));
    expect_line(&rx, "served", &mut child);
    assert_eq!(wait_exit(&mut child, 20), 0);
});

// ---- the helper's lifetime ---------------------------------------------------

/// (pid, ppid, state, comm) of every process.
fn processes() -> Vec<(i32, i32, char, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
        let state = rest[0].chars().next().unwrap_or('?');
        let ppid = rest[1].parse().unwrap_or(0);
        out.push((pid, ppid, state, comm));
    }
    out
}

/// The live descendants of `pid`, with their names.
fn descendants(pid: i32) -> Vec<(i32, String)> {
    let all = processes();
    let mut found = vec![];
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (child, ppid, state, comm) in &all {
            if *ppid == p && *state != 'Z' {
                found.push((*child, comm.clone()));
                frontier.push(*child);
            }
        }
    }
    found
}

fn alive(pid: i32) -> bool {
    processes()
        .iter()
        .any(|(p, _, state, _)| *p == pid && *state != 'Z')
}

/// The helper processes (pasta runs as passt.avx2 or passt) below moksha.
fn helpers_of(moksha_pid: i32) -> Vec<i32> {
    descendants(moksha_pid)
        .into_iter()
        .filter(|(_, comm)| comm.starts_with("pas") || comm.starts_with("slirp4netns"))
        .map(|(p, _)| p)
        .collect()
}

fn assert_gone_soon(pids: &[i32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "{what}: {pids:?} still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How the sandbox ends in a lifetime test.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Exits,
    SandboxKilled,
    MokshaKilled,
}

fn helper_lifetime(who: Who, end: End) {
    let dir = world_dir();
    let script = if end == End::Exits {
        "echo started; read x; true"
    } else {
        "echo started; sleep 60"
    };
    let profile = sh_profile("s.network(\"user\", #{ helper: \"pasta\" });", script);
    let path = write_profile(dir.path(), "life.rhai", &profile);
    let mut cmd = moksha(who, &["exec", &path]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    expect_line(&rx, "started", &mut child);
    let moksha_pid = child.id() as i32;
    let below = descendants(moksha_pid);
    let helpers = helpers_of(moksha_pid);
    assert_eq!(helpers.len(), 1, "one helper below moksha: {below:?}");
    let everything: Vec<i32> = below.iter().map(|(p, _)| *p).collect();
    match end {
        End::Exits => {
            drop(stdin);
            assert_eq!(wait_exit(&mut child, 20), 0);
            // moksha waits for the helper to be stopped before it exits.
            assert!(!alive(helpers[0]), "the helper outlived moksha");
        }
        End::SandboxKilled => {
            let init = below
                .iter()
                .find(|(_, comm)| comm == "moksha-init")
                .expect("the supervisor")
                .0;
            // SAFETY: kill with a pid and a signal number.
            unsafe { libc::kill(init, libc::SIGKILL) };
            assert_eq!(wait_exit(&mut child, 20), 128 + libc::SIGKILL);
            assert!(!alive(helpers[0]), "the helper outlived moksha");
        }
        End::MokshaKilled => {
            child.kill().unwrap();
            let _ = child.wait();
            drop(stdin);
        }
    }
    assert_gone_soon(&everything, "the sandbox, the guard and the helper");
}

both!(helper_stops_when_the_sandbox_exits, |who| {
    helper_lifetime(who, End::Exits)
});

both!(helper_stops_when_the_sandbox_is_killed, |who| {
    helper_lifetime(who, End::SandboxKilled)
});

both!(helper_stops_when_moksha_is_killed, |who| {
    helper_lifetime(who, End::MokshaKilled)
});

/// The helper processes (by name) whose arguments name `pid`, the
/// sandbox they connect.
fn helpers_for(pid: &str) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|(p, _, state, comm)| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            *state != 'Z'
                && (comm.starts_with("pas") || comm.starts_with("slirp4netns"))
                && cmdline.split(|b| *b == 0).any(|arg| arg == pid.as_bytes())
        })
        .map(|(p, ..)| p)
        .collect()
}

both!(
    a_detached_sandbox_keeps_its_network_until_it_ends,
    |who: Who| {
        let inet = Internet::new();
        let dir = probe_dir();
        for helper in ["pasta", "slirp4netns"] {
            let name = format!("t{}-net-{helper}-{}", std::process::id(), who.uid());
            let extra = format!(
                "{}s.network(\"user\", #{{ helper: \"{helper}\" }});",
                bind_probe(dir.path())
            );
            let path = write_profile(
                dir.path(),
                &format!("{helper}.rhai"),
                &sh_profile(&extra, "sleep 1000"),
            );
            let detach = ["exec", "--detach", "--name", &name, &path];
            Run::from(moksha(who, &detach).output().unwrap()).expect_code(0);
            // moksha has returned; the helper goes on connecting the sandbox.
            std::thread::sleep(Duration::from_millis(300));
            let port = ECHO_PORT.to_string();
            let probe = ["python3", "/probe.py", "tcp", &inet.addr, &port];
            let args = [&["enter", &name, "--"][..], &probe[..]].concat();
            let r = Run::from(moksha(who, &args).output().unwrap()).expect_code(0);
            assert!(r.stdout.contains("tcp-ok:tcp-echo:ping"), "{helper}: {r:?}");
            let ps = Run::from(moksha(who, &["ps", "--json"]).output().unwrap()).expect_code(0);
            let rows: Vec<serde_json::Value> = serde_json::from_str(&ps.stdout).unwrap();
            let row = rows.iter().find(|r| r["name"] == name.as_str()).unwrap();
            let helpers = helpers_for(&row["pid"].to_string());
            assert_eq!(helpers.len(), 1, "{helper}: {row}");
            Run::from(moksha(who, &["stop", &name]).output().unwrap()).expect_code(0);
            assert_gone_soon(&helpers, "the helper of a stopped detached sandbox");
        }
        inet.assert_intact();
    }
);

// ---- helpers missing, slirp4netns --------------------------------------------

/// A directory to use as PATH holding only links to the named host programs.
fn path_with(dir: &Path, programs: &[&str]) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for p in programs {
        let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(p))
            .find(|c| c.exists());
        if let Some(found) = found {
            std::os::unix::fs::symlink(found, bin.join(p)).unwrap();
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin.to_string_lossy().into_owned()
}

both!(missing_helpers_are_named_before_any_namespace, |who| {
    let dir = world_dir();
    let path_dir = path_with(dir.path(), &["setpriv"]);
    let profile = sh_profile("s.network(\"user\");", "echo RAN");
    let path = write_profile(dir.path(), "p.rhai", &profile);
    let out = moksha(who, &["exec", "--timings", &path])
        .env("PATH", &path_dir)
        .output()
        .unwrap();
    let r = Run::from(out).expect_code(125);
    assert!(!r.stdout.contains("RAN"));
    assert!(
        r.stderr.contains("passt") && r.stderr.contains("slirp4netns"),
        "the error names both packages: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("clone returned") && !r.stderr.contains("id maps"),
        "no namespace was made: {}",
        r.stderr
    );
});

both!(slirp4netns_is_the_fallback, |who| {
    assert!(
        Path::new("/usr/bin/slirp4netns").exists(),
        "this test needs slirp4netns (apt-get install slirp4netns; .ci/run installs it)"
    );
    let inet = Internet::new();
    let dir = probe_dir();
    let path_dir = path_with(dir.path(), &["setpriv", "slirp4netns"]);
    let profile = sh_profile(
        &format!("{}s.network(\"user\");", bind_probe(dir.path())),
        &format!(
            "python3 /probe.py tcp {0} {1}; python3 /probe.py udp {0} {1}; cat /etc/resolv.conf",
            inet.addr, ECHO_PORT
        ),
    );
    let path = write_profile(dir.path(), "p.rhai", &profile);
    let out = moksha(who, &["exec", &path])
        .env("PATH", &path_dir)
        .output()
        .unwrap();
    let r = Run::from(out).expect_code(0);
    assert!(
        r.stdout.contains("tcp-ok:tcp-echo:ping"),
        "TCP through slirp4netns: {}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("udp-ok:udp-echo:ping"), "{}", r.stdout);
    assert!(r.stdout.contains("nameserver 10.0.2.3"), "{}", r.stdout);
    inet.assert_intact();
});

// ---- joining a namespace -------------------------------------------------------

both!(join_enters_an_existing_namespace_as_root, |who| {
    let inet = Internet::new();
    let extra = format!("s.network_join(\"/run/netns/{}\");", inet.netns);
    let script = format!(
        "ip -o -4 addr show scope global; python3 /probe.py tcp {} {ECHO_PORT}",
        inet.addr
    );
    let r = run_net(who, &extra, &script);
    if who == Who::Root {
        let r = r.expect_code(0);
        assert!(r.stdout.contains(&inet.addr), "{}", r.stdout);
        assert!(r.stdout.contains("tcp-ok:tcp-echo:ping"), "{}", r.stdout);
    } else {
        let r = r.expect_code(125);
        assert!(r.stderr.contains("CAP_SYS_ADMIN"), "{}", r.stderr);
    }
});

// `moksha enter` puts the command in the network the profile joined, as
// the program is (found in review: it ran in the caller's network).
#[test]
fn enter_joins_the_network_the_profile_joined() {
    let inet = Internet::new();
    let dir = world_dir();
    let extra = format!("s.network_join(\"/run/netns/{}\");", inet.netns);
    let path = write_profile(dir.path(), "j.rhai", &sh_profile(&extra, "sleep 60"));
    let name = format!("join-enter-{}", std::process::id());
    let r = Run::from(
        moksha(Who::Root, &["exec", "--detach", "--name", &name, &path])
            .output()
            .unwrap(),
    );
    let r = r.expect_code(0);
    let joined = std::fs::metadata(format!("/run/netns/{}", inet.netns)).unwrap();
    let entered = Run::from(
        moksha(
            Who::Root,
            &["enter", &name, "--", "readlink", "/proc/self/ns/net"],
        )
        .output()
        .unwrap(),
    );
    let _ = moksha(Who::Root, &["stop", "--timeout", "1", &name]).output();
    let _ = moksha(Who::Root, &["rm", &name]).output();
    let entered = entered.expect_code(0);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        entered.stdout.trim(),
        format!("net:[{}]", joined.ino()),
        "{r:?} {entered:?}"
    );
}

// ---- the plan -------------------------------------------------------------------

#[test]
fn plan_shows_the_user_network() {
    let dir = world_dir();
    let extra = "s.network(\"user\", #{ helper: \"pasta\" });\n\
                 s.forward(#{ host: 8080, sandbox: 80 });\n\
                 s.forward(#{ host: 5353, sandbox: 53, proto: \"udp\", address: \"0.0.0.0\" });";
    let path = write_profile(dir.path(), "p.rhai", &sh_profile(extra, "true"));
    let r = Run::from(moksha(Who::Root, &["plan", &path]).output().unwrap()).expect_code(0);
    for want in [
        "mode       user",
        "pasta --foreground",
        "--no-map-gw",
        "--tcp-ports 127.0.0.1/8080:80",
        "--udp-ports 5353:53",
        "--tcp-ns none --udp-ns none",
        "forward    tcp 127.0.0.1:8080 on the host -> port 80 in the sandbox",
        "forward    udp 0.0.0.0:5353 on the host -> port 53 in the sandbox",
        "not the host's loopback services",
        "nameserver 10.0.2.3",
    ] {
        assert!(r.stdout.contains(want), "{want:?} in:\n{}", r.stdout);
    }
}

#[test]
fn forwards_need_the_user_network() {
    let dir = world_dir();
    let path = write_profile(
        dir.path(),
        "p.rhai",
        &sh_profile("s.forward(8080, 80);", "true"),
    );
    let r = Run::from(moksha(Who::Root, &["check", &path]).output().unwrap()).expect_code(1);
    assert!(
        r.stderr
            .contains("port forwards need the user-mode network"),
        "{}",
        r.stderr
    );
}

// ---- outbound TCP rules -----------------------------------------------------------

both!(allow_tcp_limits_the_ports_the_program_connects_to, |who| {
    let inet = Internet::new();
    let extra = format!(
        "{}s.allow_tcp(#{{ connect: [{ECHO_PORT}] }});",
        user_line("")
    );
    let script = format!(
        "python3 /probe.py tcp {0} {ECHO_PORT}; python3 /probe.py tcp {0} {1}",
        inet.addr,
        ECHO_PORT + 1
    );
    let r = run_net(who, &extra, &script).expect_code(0);
    assert!(
        r.stdout.contains("tcp-ok:tcp-echo:ping"),
        "the allowed port: {}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains("tcp-fail:PermissionError"),
        "any other port is refused by landlock: {}",
        r.stdout
    );
});
