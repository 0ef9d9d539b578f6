//! The egress proxy's connections: one thread each, HTTP CONNECT, plain
//! HTTP (absolute-URI requests, or the Host header) and SOCKS5 on the
//! same port, told apart by the first byte. Every decision goes to the log.

use crate::plan::egress::{Egress, Refusal, Target};
use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest request head (request line and headers) read.
const MAX_HEAD: usize = 64 << 10;
/// How long a client has to send its request, and a connection out to open.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// At most so many connections at once (each is a thread, two when relaying).
const MAX_CONNECTIONS: usize = 2048;
/// The stack of a connection's threads: they only copy through a heap buffer.
const STACK: usize = 128 << 10;
/// The most the log takes (a program making connections in a loop must not
/// fill the state directory's filesystem); a last line says it is full.
pub const LOG_LIMIT: u64 = 32 << 20;

/// What the connections share.
pub struct Proxy {
    pub rules: Egress,
    pub log: Option<Mutex<(std::fs::File, u64)>>,
    open: AtomicUsize,
}

impl Proxy {
    pub fn new(rules: Egress, log: Option<std::fs::File>) -> Proxy {
        Proxy {
            rules,
            log: log.map(|f| {
                let len = f.metadata().map_or(0, |m| m.len());
                Mutex::new((f, len))
            }),
            open: AtomicUsize::new(0),
        }
    }

    /// One line of the log: `TIME VERDICT VIA HOST:PORT DETAIL`.
    fn note(&self, verdict: &str, via: &str, target: &str, detail: &str) {
        let Some(log) = &self.log else { return };
        let line = format!(
            "{} {verdict} {via} {target} {}\n",
            utc_now(),
            crate::text::line(detail)
        );
        let Ok(mut guard) = log.lock() else { return };
        let (file, written) = &mut *guard;
        if *written >= LOG_LIMIT {
            return;
        }
        *written += line.len() as u64;
        let _ = file.write_all(line.as_bytes());
        if *written >= LOG_LIMIT {
            let _ = writeln!(
                file,
                "{} full - - the log reached {} MiB; later decisions are not logged",
                utc_now(),
                LOG_LIMIT >> 20
            );
        }
    }
}

/// Accepts forever; a connection's thread that cannot start is dropped.
pub fn serve(listener: TcpListener, proxy: Arc<Proxy>) -> ! {
    loop {
        let Ok((conn, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if proxy.open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            proxy.open.fetch_sub(1, Ordering::SeqCst);
            proxy.note("refused", "-", "-", "too many connections at once");
            continue;
        }
        let p = proxy.clone();
        let started = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                handle(conn, &p);
                p.open.fetch_sub(1, Ordering::SeqCst);
            });
        if started.is_err() {
            proxy.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn handle(conn: TcpStream, p: &Proxy) {
    let _ = conn.set_read_timeout(Some(HEAD_TIMEOUT));
    let _ = conn.set_nodelay(true);
    let mut first = [0u8; 1];
    match conn.peek(&mut first) {
        Ok(1) if first[0] == 5 => socks5(conn, p),
        Ok(1) => http(conn, p),
        _ => {}
    }
}

/// Why a connection out was not made.
enum Fail {
    /// The rules refused it.
    Refused(String),
    /// Allowed, but it could not be resolved or connected.
    Failed(String),
}

/// Decides on `host`:`port` and connects to the exact address checked.
fn open(p: &Proxy, via: &str, host: &str, port: u16) -> Result<TcpStream, Fail> {
    let shown_target = |t: &str| format!("{t}:{port}");
    let refuse = |target: &str, r: Refusal| {
        p.note("refused", via, &shown_target(target), &r.why);
        Err(Fail::Refused(r.why))
    };
    let target = match Target::parse(host) {
        Ok(t) => t,
        Err(why) => {
            let why = format!("refused: {why}");
            p.note(
                "refused",
                via,
                &shown_target(&crate::text::line(host)),
                &why,
            );
            return Err(Fail::Refused(why));
        }
    };
    let shown = target.to_string();
    let rule = match p.rules.check_target(&target, port) {
        Ok(i) => i,
        Err(r) => return refuse(&shown, r),
    };
    let addrs: Vec<IpAddr> = match &target {
        Target::Ip(ip) => vec![*ip],
        Target::Name(name) => match p.rules.resolve.get(name) {
            Some(ip) => vec![*ip],
            None => match (name.as_str(), port).to_socket_addrs() {
                Ok(a) => a.map(|a| a.ip()).collect(),
                Err(e) => {
                    let why = format!("cannot resolve {name}: {e}");
                    p.note("failed", via, &shown_target(&shown), &why);
                    return Err(Fail::Failed(why));
                }
            },
        },
    };
    // Each address a name resolved to is checked; the first allowed one
    // that answers is the one connected to.
    let mut refusal = None;
    let mut failure = None;
    for ip in addrs {
        if matches!(target, Target::Name(_)) {
            if let Err(r) = p.rules.check_resolved(ip, port) {
                refusal.get_or_insert(r);
                continue;
            }
        }
        let at = SocketAddr::new(ip, port);
        match TcpStream::connect_timeout(&at, CONNECT_TIMEOUT) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                p.note(
                    "allowed",
                    via,
                    &shown_target(&shown),
                    &format!("by {} -> {at}", p.rules.rule_text(rule)),
                );
                return Ok(s);
            }
            Err(e) => failure = Some(format!("cannot connect to {at}: {e}")),
        }
    }
    match (failure, refusal) {
        (Some(why), _) => {
            p.note("failed", via, &shown_target(&shown), &why);
            Err(Fail::Failed(why))
        }
        (None, Some(r)) => refuse(&shown, r),
        (None, None) => {
            let why = format!("{shown} has no address");
            p.note("failed", via, &shown_target(&shown), &why);
            Err(Fail::Failed(why))
        }
    }
}

/// Copies both ways until both sides are done; a side that ends its
/// sending ends ours to the other.
fn relay(client: TcpStream, upstream: TcpStream) {
    let _ = client.set_read_timeout(None);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || copy_then_close(c2, u2));
    copy_then_close(upstream, client);
    if let Ok(t) = up {
        let _ = t.join();
    }
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Read);
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

// ---- HTTP -------------------------------------------------------------------

/// Reads the request head; returns it and what came after it.
fn read_head(conn: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + i + 4;
            let rest = buf.split_off(end);
            return Some((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

fn respond(conn: &mut TcpStream, status: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\nX-Moksha-Egress: refused\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(msg.as_bytes());
}

fn answer_failure(conn: &mut TcpStream, target: &str, f: Fail) {
    match f {
        Fail::Refused(why) => respond(
            conn,
            "403 Forbidden",
            &format!("moksha egress: {target} refused: {why}\n"),
        ),
        Fail::Failed(why) => respond(
            conn,
            "502 Bad Gateway",
            &format!("moksha egress: {target}: {why}\n"),
        ),
    }
}

/// `host[:port]` (IPv6 in brackets) and the port to use without one.
fn split_authority(a: &str, default: u16) -> Option<(String, u16)> {
    if let Some(rest) = a.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((format!("[{h}]"), port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((a.to_string(), default)),
    }
}

fn http(mut conn: TcpStream, p: &Proxy) {
    let Some((head, rest)) = read_head(&mut conn) else {
        return;
    };
    // A bare CR or LF, a NUL or another control byte: a server may end a
    // line there that the checks below did not (found in review: `X: a\n
    // Host: evil` was one header here and two at the server).
    if !clean_head(&head) {
        respond(
            &mut conn,
            "400 Bad Request",
            "moksha egress: a request head with a bare CR or LF, or a control character\n",
        );
        return;
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut words = request.split(' ');
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        respond(
            &mut conn,
            "400 Bad Request",
            "moksha egress: not an HTTP request\n",
        );
        return;
    };
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    if method == "CONNECT" {
        let Some((host, port)) = split_authority(target, 0).filter(|(_, port)| *port != 0) else {
            respond(
                &mut conn,
                "400 Bad Request",
                "moksha egress: CONNECT needs host:port\n",
            );
            return;
        };
        match open(p, "CONNECT", &host, port) {
            Ok(mut upstream) => {
                if conn
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .is_err()
                    || (!rest.is_empty() && upstream.write_all(&rest).is_err())
                {
                    return;
                }
                relay(conn, upstream);
            }
            Err(f) => answer_failure(&mut conn, target, f),
        }
        return;
    }
    // A folded line or a name with spaces: the server may read it otherwise
    // than the rules do (RFC 9112 has servers refuse both).
    if let Some(bad) = headers.iter().find(|h| !well_formed(h)) {
        respond(
            &mut conn,
            "400 Bad Request",
            &format!(
                "moksha egress: a malformed header line {:?}\n",
                crate::text::line(bad)
            ),
        );
        return;
    }
    let hosts: Vec<String> = headers
        .iter()
        .filter_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("host")
                .then(|| v.trim().to_string())
        })
        .collect();
    // Two Host headers: the server might read the other one (RFC 9112
    // answers them with 400 too).
    if hosts.len() > 1 {
        respond(
            &mut conn,
            "400 Bad Request",
            "moksha egress: a request with more than one Host header\n",
        );
        return;
    }
    let host_header = hosts.into_iter().next();
    // The target: an absolute URI (what a client sends to a proxy), or the
    // Host header (a client that took the proxy for the server).
    let (authority, path) = if let Some(after) = target.strip_prefix("http://") {
        match after.find('/') {
            Some(i) => (after[..i].to_string(), after[i..].to_string()),
            None => (after.to_string(), "/".to_string()),
        }
    } else if target.starts_with('/') {
        match &host_header {
            Some(h) => (h.clone(), target.to_string()),
            None => {
                respond(
                    &mut conn,
                    "400 Bad Request",
                    "moksha egress: a request without a host\n",
                );
                return;
            }
        }
    } else {
        respond(
            &mut conn,
            "400 Bad Request",
            "moksha egress: only http:// URIs go as plain requests (https goes through CONNECT)\n",
        );
        return;
    };
    // userinfo@ is not part of the host.
    let authority = authority.rsplit('@').next().unwrap_or("").to_string();
    let Some((host, port)) = split_authority(&authority, 80) else {
        respond(&mut conn, "400 Bad Request", "moksha egress: a bad host\n");
        return;
    };
    let body = match body_of(&headers) {
        Ok(body) => body,
        Err(why) => {
            respond(
                &mut conn,
                "400 Bad Request",
                &format!("moksha egress: {why}\n"),
            );
            return;
        }
    };
    if let Some(h) = &host_header {
        let same = split_authority(h, 80)
            .is_some_and(|(hh, hp)| hh.eq_ignore_ascii_case(&host) && hp == port);
        if !same {
            let why = format!(
                "the Host header {:?} is not the request's host {authority:?}",
                crate::text::line(h)
            );
            p.note("refused", "HTTP", &format!("{host}:{port}"), &why);
            answer_failure(&mut conn, &authority, Fail::Refused(why));
            return;
        }
    }
    match open(p, "HTTP", &host, port) {
        Ok(mut upstream) => {
            // One request per connection out, and only its body after its
            // head: a second request on the connection, whatever its Host,
            // never reaches the server (one that ignores Connection: close
            // would answer it, a virtual host the rules never saw).
            let mut out = format!("{method} {path} {version}\r\n");
            for h in &headers {
                let name = h
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if name.starts_with("proxy-") || name == "connection" || name == "keep-alive" {
                    continue;
                }
                out.push_str(h);
                out.push_str("\r\n");
            }
            if host_header.is_none() {
                out.push_str(&format!("Host: {authority}\r\n"));
            }
            out.push_str("Connection: close\r\n\r\n");
            if upstream.write_all(out.as_bytes()).is_err() {
                return;
            }
            relay_request(conn, upstream, &rest, body);
        }
        Err(f) => answer_failure(&mut conn, &authority, f),
    }
}

/// Whether every line of the head ends in CRLF and holds no control byte
/// but HTAB.
fn clean_head(head: &[u8]) -> bool {
    let mut prev = 0u8;
    for (i, &b) in head.iter().enumerate() {
        let ok = match b {
            b'\n' => prev == b'\r',
            b'\r' => head.get(i + 1) == Some(&b'\n'),
            b'\t' => true,
            0..=31 | 127 => false,
            _ => true,
        };
        if !ok {
            return false;
        }
        prev = b;
    }
    true
}

/// A header line is `name: value` with a token for a name (no space,
/// nothing folded onto the line before).
fn well_formed(line: &str) -> bool {
    line.split_once(':').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    })
}

/// How a plain request's body ends (RFC 9112 section 6).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Body {
    Length(u64),
    Chunked,
}

/// The body framing the headers give; a request whose end is ambiguous
/// (both framings, two lengths, an unknown coding) is refused, as request
/// smuggling needs exactly that.
fn body_of(headers: &[&str]) -> Result<Body, &'static str> {
    let (mut length, mut chunked) = (None, false);
    for h in headers {
        let Some((k, v)) = h.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            let n: u64 = v.parse().map_err(|_| "a bad Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("two different Content-Lengths");
            }
            length = Some(n);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            if chunked || !v.eq_ignore_ascii_case("chunked") {
                return Err("a Transfer-Encoding other than chunked");
            }
            chunked = true;
        }
    }
    match (length, chunked) {
        (Some(_), true) => Err("both Content-Length and Transfer-Encoding"),
        (Some(n), false) => Ok(Body::Length(n)),
        (None, true) => Ok(Body::Chunked),
        (None, false) => Ok(Body::Length(0)),
    }
}

/// Relays one plain request: its body (`rest` first, then the client)
/// goes up, nothing after it; the answer comes back until the server
/// closes (it was sent Connection: close) or the client does.
fn relay_request(client: TcpStream, upstream: TcpStream, rest: &[u8], body: Body) {
    let _ = client.set_read_timeout(None);
    let (Ok(c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let down = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || copy_then_close(upstream, c2));
    let mut input = std::io::BufReader::new(rest.chain(&client));
    let how = match copy_body(&mut input, &mut u2, body) {
        Ok(()) => {
            // What the client sends after the request is dropped until it
            // closes or half-closes; then the server hears the end too.
            let _ = std::io::copy(&mut input, &mut std::io::sink());
            Shutdown::Write
        }
        Err(_) => Shutdown::Both,
    };
    let _ = u2.shutdown(how);
    if let Ok(t) = down {
        let _ = t.join();
    }
}

/// Copies exactly one body framed as `body` from `from` to `to`.
fn copy_body(from: &mut impl BufRead, to: &mut impl Write, body: Body) -> std::io::Result<()> {
    let short = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
    let exactly = |from: &mut dyn BufRead, to: &mut dyn Write, n: u64| {
        let copied = std::io::copy(&mut from.take(n), to)?;
        if copied == n {
            Ok(())
        } else {
            Err(short())
        }
    };
    match body {
        Body::Length(n) => exactly(from, to, n),
        Body::Chunked => loop {
            let bad = || std::io::Error::from(std::io::ErrorKind::InvalidData);
            let line = bounded_line(from)?;
            // Exactly 1 to 16 hex digits, then an extension or the CRLF:
            // no sign, no space, nothing a lenient server reads otherwise.
            let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
            if !(1..=16).contains(&digits) || !matches!(line[digits], b';' | b'\r') {
                return Err(bad());
            }
            let size = std::str::from_utf8(&line[..digits])
                .ok()
                .and_then(|n| u64::from_str_radix(n, 16).ok())
                .ok_or_else(bad)?;
            to.write_all(&line)?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let line = bounded_line(from)?;
                    to.write_all(&line)?;
                    if line == b"\r\n" {
                        return Ok(());
                    }
                }
            }
            exactly(from, to, size)?;
            // The data's own CRLF, exactly.
            let mut end = [0u8; 2];
            from.read_exact(&mut end)?;
            if &end != b"\r\n" {
                return Err(bad());
            }
            to.write_all(&end)?;
        },
    }
}

/// One line of chunk framing, its CRLF included (a bare CR or LF in it is
/// refused); at most 4 KiB.
fn bounded_line(from: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    from.take(4096).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") || !clean_head(&line) {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(line)
}

// ---- SOCKS5 (RFC 1928), CONNECT only, no authentication ----------------------

fn socks5(mut conn: TcpStream, p: &Proxy) {
    let mut hello = [0u8; 2];
    if conn.read_exact(&mut hello).is_err() {
        return;
    }
    let mut methods = vec![0u8; hello[1] as usize];
    if conn.read_exact(&mut methods).is_err() {
        return;
    }
    if !methods.contains(&0) {
        let _ = conn.write_all(&[5, 0xff]);
        return;
    }
    if conn.write_all(&[5, 0]).is_err() {
        return;
    }
    let mut req = [0u8; 4];
    if conn.read_exact(&mut req).is_err() || req[0] != 5 {
        return;
    }
    let reply = |conn: &mut TcpStream, code: u8| {
        let _ = conn.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    };
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            if conn.read_exact(&mut a).is_err() {
                return;
            }
            std::net::Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            if conn.read_exact(&mut a).is_err() {
                return;
            }
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        3 => {
            let mut len = [0u8; 1];
            if conn.read_exact(&mut len).is_err() {
                return;
            }
            let mut name = vec![0u8; len[0] as usize];
            if conn.read_exact(&mut name).is_err() {
                return;
            }
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            reply(&mut conn, 8);
            return;
        }
    };
    let mut port = [0u8; 2];
    if conn.read_exact(&mut port).is_err() {
        return;
    }
    let port = u16::from_be_bytes(port);
    if req[1] != 1 {
        p.note(
            "refused",
            "SOCKS5",
            &format!("{host}:{port}"),
            "only CONNECT is supported (no BIND, no UDP)",
        );
        reply(&mut conn, 7);
        return;
    }
    match open(p, "SOCKS5", &host, port) {
        Ok(upstream) => {
            reply(&mut conn, 0);
            relay(conn, upstream);
        }
        // 2: not allowed by the ruleset; 4: host unreachable.
        Err(Fail::Refused(_)) => reply(&mut conn, 2),
        Err(Fail::Failed(_)) => reply(&mut conn, 4),
    }
}

// ---- time ---------------------------------------------------------------------

/// The time now, UTC, as `2026-12-01T14:20:00.123Z`.
pub fn utc_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_authority("a.test:8080", 80),
            Some(("a.test".into(), 8080))
        );
        assert_eq!(split_authority("a.test", 80), Some(("a.test".into(), 80)));
        assert_eq!(
            split_authority("[::1]:443", 80),
            Some(("[::1]".into(), 443))
        );
        assert_eq!(split_authority("[::1]", 80), Some(("[::1]".into(), 80)));
        assert_eq!(split_authority("a.test:x", 80), None);
    }

    #[test]
    fn a_body_ends_where_its_framing_says_and_ambiguity_is_refused() {
        for bad in [
            " Content-Length: 5",
            "Content-Length : 5",
            "\tHost: x",
            "no colon",
            ": x",
        ] {
            assert!(!well_formed(bad), "{bad:?}");
        }
        assert!(well_formed("X-Custom_1: a: b") && well_formed("Host:x"));
        assert_eq!(body_of(&["Host: a"]), Ok(Body::Length(0)));
        assert_eq!(body_of(&["content-length: 5"]), Ok(Body::Length(5)));
        assert_eq!(
            body_of(&["Content-Length: 5", "Content-Length: 5"]),
            Ok(Body::Length(5))
        );
        assert_eq!(body_of(&["Transfer-Encoding: chunked"]), Ok(Body::Chunked));
        for bad in [
            &["Content-Length: 5", "Content-Length: 6"][..],
            &["Content-Length: 5", "Transfer-Encoding: chunked"],
            &["Transfer-Encoding: gzip, chunked"],
            &["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
            &["Content-Length: -1"],
        ] {
            assert!(body_of(bad).is_err(), "{bad:?}");
        }
        // Exactly the body goes on; what follows it (a second request) not.
        let next = b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n";
        let chunked = b"4;x=y\r\nabcd\r\n0\r\nTrailer: t\r\n\r\n";
        for (body, framing) in [
            (&b"hello"[..], Body::Length(5)),
            (&chunked[..], Body::Chunked),
            (&b""[..], Body::Length(0)),
        ] {
            let input = [body, &next[..]].concat();
            let mut out = Vec::new();
            copy_body(&mut &input[..], &mut out, framing).unwrap();
            assert_eq!(out, body);
        }
        // Lenient spellings a server might read otherwise are refused.
        for bad in [
            &b"+0\r\n\r\n"[..],
            b" 0\r\n\r\n",
            b"0 40\r\n\r\n",
            b"ffffffffffffffff0\r\n",
            b"0\n\n",
            b"3\r\nabcXY0\r\n\r\n",
        ] {
            assert!(
                copy_body(&mut &bad[..], &mut Vec::new(), Body::Chunked).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(clean_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: b\tc\r\n\r\n"));
        for bad in [
            &b"GET / HTTP/1.1\r\nX: a\nHost: e\r\n\r\n"[..],
            b"X: a\rb\r\n",
            b"X: \0\r\n",
        ] {
            assert!(!clean_head(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        // A body cut short, or a bad chunk size, is an error.
        assert!(copy_body(&mut &b"hel"[..], &mut Vec::new(), Body::Length(5)).is_err());
        assert!(copy_body(&mut &b"zz\r\n"[..], &mut Vec::new(), Body::Chunked).is_err());
        assert!(copy_body(&mut &b"4\r\nab"[..], &mut Vec::new(), Body::Chunked).is_err());
    }

    #[test]
    fn the_clock_reads_as_utc() {
        let t = utc_now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
