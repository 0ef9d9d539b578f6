//! Egress by domain name (issue 16): s.egress rules enforced by moksha's
//! proxy inside the sandbox's network namespace.
//!
//! No traffic leaves this machine: the servers are threads of this test on
//! the host's 127.0.0.1, named through the profile's test resolver
//! (`resolve: #{ "github.test": "127.0.0.1" }`); refused names are refused
//! before any lookup.

use crate::both;
use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// An HTTP server on the host's loopback answering every request with a
/// page naming the Host it was asked for; and an echo server (lines back)
/// for tunnels. Threads of the test; they end with it.
struct Servers {
    http: u16,
    echo: u16,
    /// A server that ignores Connection: close and answers every request
    /// on a connection, naming its Host and body.
    lax: u16,
}

fn servers() -> Servers {
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let lax = TcpListener::bind("127.0.0.1:0").unwrap();
    let ports = Servers {
        http: http.local_addr().unwrap().port(),
        echo: echo.local_addr().unwrap().port(),
        lax: lax.local_addr().unwrap().port(),
    };
    std::thread::spawn(move || {
        for c in lax.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                let mut r = BufReader::new(c);
                loop {
                    let mut first = String::new();
                    if r.read_line(&mut first).unwrap_or(0) == 0 {
                        break;
                    }
                    let (mut host, mut length) = (String::new(), 0);
                    loop {
                        let mut l = String::new();
                        if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                            break;
                        }
                        let (k, v) = l.split_once(':').unwrap_or((&l, ""));
                        match k.to_ascii_lowercase().as_str() {
                            "host" => host = v.trim().to_string(),
                            "content-length" => length = v.trim().parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; length];
                    let _ = r.read_exact(&mut body);
                    let text = format!(
                        "lax saw: {} {host} body={}\n",
                        first.trim(),
                        String::from_utf8_lossy(&body)
                    );
                    let _ = write!(
                        w,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                }
            });
        }
    });
    std::thread::spawn(move || {
        for c in http.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(c);
                let mut host = String::new();
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                        break;
                    }
                    if let Some(h) = l.strip_prefix("Host: ") {
                        host = h.trim().to_string();
                    }
                }
                let body = format!("hello from the test server: {} {host}\n", first.trim());
                let mut c = r.into_inner();
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    std::thread::spawn(move || {
        for c in echo.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                for l in BufReader::new(c).lines() {
                    let Ok(l) = l else { break };
                    if writeln!(w, "echo:{l}").is_err() {
                        break;
                    }
                }
            });
        }
    });
    ports
}

/// The client inside: raw CONNECTs (to read the 403's body), a connection
/// that ignores the proxy, a long-lived tunnel, many tunnels at once.
const PROBE: &str = r#"
import socket, sys, time
def tunnel(host, port):
    c = socket.create_connection(("127.0.0.1", 3128), timeout=20)
    c.sendall(("CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n" % (host, port, host, port)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(1)
        if not d:
            break
        head += d
    return c, head.decode(errors="replace")
kind = sys.argv[1]
try:
    if kind == "connect":
        c, head = tunnel(sys.argv[2], sys.argv[3])
        body = b""
        if not head.startswith("HTTP/1.1 200"):
            while True:
                d = c.recv(4096)
                if not d:
                    break
                body += d
        print("status:" + head.split("\r\n")[0])
        print("body:" + body.decode(errors="replace").strip())
    elif kind == "mismatch":
        c = socket.create_connection(("127.0.0.1", 3128), timeout=20)
        c.sendall(("GET http://%s:%s/ HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[2], sys.argv[3], sys.argv[4])).encode())
        got = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            got += d
        text = got.decode(errors="replace")
        print("status:" + text.split("\r\n")[0])
        print("body:" + text.split("\r\n\r\n", 1)[-1].strip())
    elif kind == "plain":
        # A raw plain-HTTP exchange through the proxy: what it sends, and
        # everything that comes back within the timeout.
        c = socket.create_connection(("127.0.0.1", 3128), timeout=3)
        c.sendall(sys.argv[2].encode().decode("unicode_escape").encode())
        got = b""
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    break
                got += d
        except socket.timeout:
            pass
        print("plain-got:" + got.decode(errors="replace").replace("\r\n", "|"))
    elif kind == "raw":
        s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=3)
        print("raw-connected")
    elif kind == "long":
        c, head = tunnel(sys.argv[2], sys.argv[3])
        assert head.startswith("HTTP/1.1 200"), head
        f = c.makefile("rb")
        for i in range(3):
            c.sendall(b"ping%d\n" % i)
            print(f.readline().decode().strip(), flush=True)
            time.sleep(float(sys.argv[4]))
        print("long-ok")
    elif kind == "many":
        n = int(sys.argv[4])
        conns = []
        for i in range(n):
            c, head = tunnel(sys.argv[2], sys.argv[3])
            assert head.startswith("HTTP/1.1 200"), head
            conns.append(c)
        ok = 0
        for i, c in enumerate(conns):
            c.sendall(b"n%d\n" % i)
        for i, c in enumerate(conns):
            if c.makefile("rb").readline() == b"echo:n%d\n" % i:
                ok += 1
        print("many-ok:%d" % ok)
except Exception as e:
    print(kind + "-fail:" + type(e).__name__ + ":" + str(e))
"#;

fn profile(s: &Servers, script: &str) -> String {
    let rules = format!(
        "s.egress(#{{ allow: [\"github.test\", \"*.pages.test\", \"localhost\", \"127.0.0.1\"], \
         deny: [#{{ host: \"*.internal.test\", reason: \"company network\" }}], \
         ports: [{}, {}, {}], resolve: #{{ \"github.test\": \"127.0.0.1\", \
         \"www.pages.test\": \"127.0.0.1\", \"db.internal.test\": \"127.0.0.1\", \
         \"other.test\": \"127.0.0.1\" }} }});",
        s.http, s.echo, s.lax
    );
    sh_profile(&rules, script)
}

/// The same servers, without an IP rule: loopback answers refused.
fn strict_profile(s: &Servers, script: &str) -> String {
    let rules = format!(
        "s.egress(#{{ allow: [\"rebind.test\"], ports: [{}], \
         resolve: #{{ \"rebind.test\": \"127.0.0.1\" }} }});",
        s.http
    );
    sh_profile(&rules, script)
}

fn probe(args: &str) -> String {
    format!("python3 -c {} {args}", shell_quote(PROBE))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// moksha-egress processes (by name) whose command line names `pid`.
fn proxies_for(pid: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'));
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        if comm.trim() == "moksha-egress"
            && !zombie
            && cmdline.split(|b| *b == 0).any(|a| a == pid.as_bytes())
        {
            out.push(p);
        }
    }
    out
}

fn gone_soon(pids: &[i32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids
        .iter()
        .any(|p| std::path::Path::new(&format!("/proc/{p}/status")).exists())
    {
        assert!(Instant::now() < deadline, "{what} still runs: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

both!(
    allowed_names_pass_and_the_rest_is_refused_with_a_reason,
    |who| {
        let s = servers();
        let (h, e) = (s.http, s.echo);
        let script = format!(
        "curl -sS -m 10 http://github.test:{h}/plain; echo; \
         curl -sS -m 10 -p http://github.test:{h}/tunnel; echo; \
         curl -sS -m 10 -x '' --socks5-hostname 127.0.0.1:3128 http://www.pages.test:{h}/socks; echo; \
         curl -sS -m 10 --noproxy '' -p http://localhost:{h}/resolved; echo; \
         {p1}; {p2}; {p3}; {p4}; {p5}; {p6}; {p7}",
        p1 = probe(&format!("connect other.test {h}")),
        p2 = probe(&format!("connect db.internal.test {h}")),
        p3 = probe(&format!("connect github.test {}", e + 1)),
        p4 = probe(&format!("raw 127.0.0.1 {h}")),
        p5 = probe("raw 192.0.2.1 80"),
        p6 = probe(&format!("long github.test {e} 1")),
        p7 = probe(&format!("many github.test {e} 200")),
    );
        let r = exec_profile(who, &profile(&s, &script), &[]).expect_code(0);
        let out = &r.stdout;
        for want in [
            "hello from the test server: GET /plain HTTP/1.1 github.test",
            "hello from the test server: GET /tunnel HTTP/1.1 github.test",
            "hello from the test server: GET /socks HTTP/1.1 www.pages.test",
        ] {
            assert!(out.contains(want), "{want:?} in {r:?}");
        }
        let blocks: Vec<&str> = out.split("status:").skip(1).collect();
        assert_eq!(blocks.len(), 3, "{r:?}");
        assert!(
            blocks[0].starts_with("HTTP/1.1 403") && blocks[0].contains("not on the allow list"),
            "outside the list: {r:?}"
        );
        assert!(
            blocks[1].starts_with("HTTP/1.1 403") && blocks[1].contains("company network"),
            "denied, with its reason: {r:?}"
        );
        assert!(
            blocks[2].starts_with("HTTP/1.1 403") && blocks[2].contains("is not allowed"),
            "a wrong port: {r:?}"
        );
        // Ignoring the proxy: the sandbox's own loopback (nothing listens
        // there), and no route to anywhere else.
        assert!(out.contains("raw-fail:ConnectionRefusedError"), "{r:?}");
        assert!(out.contains("raw-fail:OSError:[Errno 101]"), "{r:?}");
        assert!(!out.contains("raw-connected"), "{r:?}");
        assert!(
            out.contains("echo:ping0\necho:ping1\necho:ping2\nlong-ok"),
            "a tunnel stays up: {r:?}"
        );
        assert!(out.contains("many-ok:200"), "200 at once: {r:?}");
    }
);

// Plain HTTP carries one request per connection: a request pipelined
// behind an allowed one never reaches the server, even one that ignores
// Connection: close (it would answer a virtual host the rules never saw);
// the allowed request's body arrives whole; an ambiguous request is refused.
both!(a_plain_request_carries_one_request_to_the_server, |who| {
    let s = servers();
    let l = s.lax;
    let send = |raw: &str| probe(&format!("plain {}", shell_quote(raw)));
    let script = [
            send(&format!(
                "POST http://github.test:{l}/one HTTP/1.1\\r\\nHost: github.test:{l}\\r\\n\
                 Content-Length: 5\\r\\n\\r\\nhelloGET /two HTTP/1.1\\r\\nHost: other.test\\r\\n\\r\\n"
            )),
            send(&format!(
                "POST http://github.test:{l}/chunked HTTP/1.1\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n\
                 3\\r\\nabc\\r\\n0\\r\\n\\r\\nGET /three HTTP/1.1\\r\\nHost: other.test\\r\\n\\r\\n"
            )),
            send(&format!(
                "GET http://github.test:{l}/two-hosts HTTP/1.1\\r\\nHost: github.test:{l}\\r\\n\
                 Host: other.test\\r\\n\\r\\n"
            )),
            send(&format!(
                "POST http://github.test:{l}/smuggle HTTP/1.1\\r\\nContent-Length: 3\\r\\n\
                 Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
            )),
            send(&format!(
                "GET http://github.test:{l}/lf HTTP/1.1\\r\\nX: a\\nHost: other.test\\r\\n\
                 Host: github.test:{l}\\r\\n\\r\\n"
            )),
        ]
        .join("; ");
    let r = exec_profile(who, &profile(&s, &script), &[]).expect_code(0);
    let got: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("plain-got:"))
        .collect();
    assert_eq!(got.len(), 5, "{r:?}");
    assert!(
        got[4].contains("400 Bad Request") && got[4].contains("bare CR or LF"),
        "a bare LF would have made a second Host at the server: {r:?}"
    );
    assert!(!got[4].contains("lax saw"), "{r:?}");
    assert!(
        got[0].contains(&format!(
            "lax saw: POST /one HTTP/1.1 github.test:{l} body=hello"
        )),
        "{r:?}"
    );
    assert!(
        got[1].contains("lax saw: POST /chunked HTTP/1.1") && !got[1].contains("/three"),
        "{r:?}"
    );
    for g in &got[..2] {
        assert!(!g.contains("other.test") && !g.contains("/two "), "{r:?}");
        assert_eq!(g.matches("lax saw").count(), 1, "one request only: {r:?}");
    }
    assert!(
        got[2].contains("400 Bad Request") && got[2].contains("more than one Host header"),
        "{r:?}"
    );
    assert!(
        got[3].contains("400 Bad Request") && got[3].contains("both Content-Length"),
        "{r:?}"
    );
    assert!(
        !got[2].contains("lax saw") && !got[3].contains("lax saw"),
        "{r:?}"
    );
});

both!(
    ip_literals_and_names_resolving_to_loopback_need_an_ip_rule,
    |who| {
        let s = servers();
        let h = s.http;
        let script = format!(
            "{}; {}; {}; curl -sS -m 10 --noproxy '' http://127.0.0.1:{h}/ip",
            probe(&format!("connect 127.0.0.1 {h}")),
            probe(&format!("connect rebind.test {h}")),
            probe(&format!("mismatch rebind.test {h} elsewhere.test")),
        );
        let r = exec_profile(who, &strict_profile(&s, &script), &[]);
        let blocks: Vec<&str> = r.stdout.split("status:").skip(1).collect();
        assert_eq!(blocks.len(), 3, "{r:?}");
        assert!(
            blocks[0].starts_with("HTTP/1.1 403") && blocks[0].contains("IP address"),
            "an IP literal: {r:?}"
        );
        assert!(
            blocks[1].starts_with("HTTP/1.1 403") && blocks[1].contains("DNS rebinding"),
            "a name resolving to 127.0.0.1: {r:?}"
        );
        assert!(
            blocks[2].starts_with("HTTP/1.1 403") && blocks[2].contains("the Host header"),
            "a Host header naming another host: {r:?}"
        );
        assert!(!r.stdout.contains("hello from"), "{r:?}");
        assert!(
            r.stdout.contains("moksha egress: 127.0.0.1"),
            "the plain request's 403: {r:?}"
        );
    }
);

both!(
    a_detached_sandbox_keeps_its_proxy_and_logs_every_decision,
    |who: Who| {
        let s = servers();
        let h = s.http;
        let dir = world_dir();
        let path = write_profile(dir.path(), "eg.rhai", &profile(&s, "sleep 1000"));
        let name = format!("t{}-egress-{}", std::process::id(), who.uid());
        Run::from(
            moksha(who, &["exec", "--detach", "--name", &name, &path])
                .output()
                .unwrap(),
        )
        .expect_code(0);
        let ps = Run::from(moksha(who, &["ps", "--json"]).output().unwrap()).expect_code(0);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&ps.stdout).unwrap();
        let row = rows.iter().find(|r| r["name"] == name.as_str()).unwrap();
        let proxies = proxies_for(&row["pid"].to_string());
        assert_eq!(proxies.len(), 1, "one proxy for {row}");
        // moksha has returned; the proxy serves the sandbox.
        let url = format!("http://github.test:{h}/detached");
        let curl = ["enter", &name, "--", "curl", "-sS", "-m", "10", &url];
        let r = Run::from(moksha(who, &curl).output().unwrap()).expect_code(0);
        assert!(r.stdout.contains("GET /detached"), "{r:?}");
        let refused = format!("http://db.internal.test:{h}/");
        let curl = ["enter", &name, "--", "curl", "-sS", "-m", "10", &refused];
        let r = Run::from(moksha(who, &curl).output().unwrap());
        assert!(r.stdout.contains("company network"), "{r:?}");
        let logs =
            Run::from(moksha(who, &["logs", &name, "--net"]).output().unwrap()).expect_code(0);
        let lines: Vec<&str> = logs.stdout.lines().collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains(" allowed HTTP github.test:")
                    && l.contains("by \"github.test:")
                    && l.contains("-> 127.0.0.1:")),
            "{logs:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(" refused HTTP db.internal.test:")
                    && l.contains("company network")),
            "{logs:?}"
        );
        Run::from(moksha(who, &["stop", &name]).output().unwrap()).expect_code(0);
        gone_soon(&proxies, "the proxy of a stopped detached sandbox");
        let _ = moksha(who, &["rm", &name]).output();
    }
);

both!(the_proxy_stops_with_a_foreground_sandbox, |who: Who| {
    let s = servers();
    let dir = world_dir();
    let path = write_profile(dir.path(), "eg.rhai", &profile(&s, "echo up; sleep 2"));
    let mut child = moksha(who, &["exec", &path])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "up\n");
    // Its proxy: a moksha-egress below this moksha.
    let mine: Vec<i32> = (0..100)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            proxies_below(child.id() as i32)
        })
        .find(|p| !p.is_empty())
        .unwrap_or_default();
    assert_eq!(mine.len(), 1, "one proxy while it runs");
    let mut rest = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut rest);
    assert!(child.wait().unwrap().success());
    gone_soon(&mine, "the proxy of an ended sandbox");
});

/// moksha-egress processes among the descendants of `pid`.
fn proxies_below(pid: i32) -> Vec<i32> {
    let parent = |p: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if comm.trim() != "moksha-egress" {
            continue;
        }
        let mut up = parent(p);
        while let Some(q) = up.filter(|q| *q > 1) {
            if q == pid {
                out.push(p);
                break;
            }
            up = parent(q);
        }
    }
    out
}

both!(
    an_agent_cli_runs_under_its_profile_with_only_the_project,
    |who: Who| {
        installed_by("claude", "npm install -g @anthropic-ai/claude-code");
        let dir = world_dir();
        let home = owned_dir(dir.path(), "home", who);
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(home.join(".ssh/id_ed25519"), "secret").unwrap();
        let project = sandbox_dir(dir.path(), "project", who);
        std::fs::write(project.join("README"), "the project\n").unwrap();
        let run = |args: &[&str]| {
            Run::from(
                moksha(who, args)
                    .env("HOME", &home)
                    .current_dir(&project)
                    .output()
                    .unwrap(),
            )
        };
        let r = run(&["exec", "claude", "--", "--version"]).expect_code(0);
        assert!(r.stdout.contains("Claude Code"), "{r:?}");
        // The same box, looking around: the project read-write, its config,
        // nothing else of the home; out only to Anthropic's hosts.
        let script = format!(
            "cat README; echo ok > written && echo wrote; ls -A \"$HOME\"; \
         test -e \"$HOME/.ssh\" && echo SSH-VISIBLE; {}; {}",
            probe("connect github.com 443"),
            probe("connect example.org 443")
        );
        let text = format!(
        "import \"agent\" as agent;\nlet s = sandbox(\"a\");\nagent::box(s, agent::claude());\n\
         s.exec([\"/bin/sh\", \"-c\", {}]);\n",
        rhai_string(&script)
    );
        let path = write_profile(dir.path(), "look.rhai", &text);
        let r = run(&["exec", &path]).expect_code(0);
        assert!(r.stdout.contains("the project\nwrote\n"), "{r:?}");
        assert!(!r.stdout.contains("SSH-VISIBLE"), "{r:?}");
        assert!(r.stdout.contains(".claude"), "its config dir: {r:?}");
        assert_eq!(
            r.stdout.matches("not on the allow list").count(),
            2,
            "{r:?}"
        );
        let plan = run(&["plan", "--json", "claude"]).expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
        let rules = v["network"]["egress"]["rules"].as_array().unwrap();
        let hosts: Vec<String> = rules
            .iter()
            .map(|r| r["host"]["value"].as_str().unwrap_or("*").to_string())
            .collect();
        assert!(
            hosts.contains(&"api.anthropic.com".to_string()),
            "{hosts:?}"
        );
        assert!(!hosts.iter().any(|h| h.contains("github")), "{hosts:?}");
    }
);

both!(trace_mode_counts_what_the_proxy_refused, |who| {
    let s = servers();
    let script = format!(
        "curl -sS -m 10 http://other.test:{h}/; curl -sS -m 10 http://other.test:{h}/",
        h = s.http
    );
    let dir = world_dir();
    let path = write_profile(dir.path(), "t.rhai", &profile(&s, &script));
    let r = Run::from(moksha(who, &["exec", "--trace", &path]).output().unwrap());
    let want = format!(
        "2x  egress to other.test:{} refused by the proxy: not on the allow list",
        s.http
    );
    assert!(r.stderr.contains(&want), "{r:?}");
});
