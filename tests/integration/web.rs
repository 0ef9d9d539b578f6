//! The shipped `web` profile, as the README runs it: detached, serving the
//! current directory on a forwarded port, then stopped.

use crate::both;
use crate::common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// GET `path` from 127.0.0.1:`port`, retried until the server answers.
fn get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = TcpStream::connect(("127.0.0.1", port)).and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut text = String::new();
            c.read_to_string(&mut text)?;
            Ok(text)
        });
        match answer {
            Ok(text) if text.starts_with("HTTP/") => return text,
            _ if Instant::now() > deadline => panic!("no answer on port {port}: {answer:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Stops the instance when dropped, so a failed assertion leaves nothing running.
struct Stop(Who, String);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = moksha(self.0, &["stop", &self.1, "--timeout", "5"]).output();
    }
}

/// Runs the web profile detached from `cwd` with `home` as HOME; returns
/// the answer to GET `path` and what `exec` printed on stderr.
fn serve(who: Who, cwd: &Path, home: &Path, path: &str) -> (String, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let name = format!("web-{}-{}-{port}", std::process::id(), who.uid());
    let r = Run::from(
        moksha(who, &["exec", "--detach", "--name", &name, "web", &port])
            .env("HOME", home)
            .current_dir(cwd)
            .output()
            .unwrap(),
    )
    .expect_code(0);
    let _stop = Stop(who, name.clone());
    assert_eq!(r.stdout.trim(), name, "{r:?}");
    (get(port.parse().unwrap(), path), r.stderr)
}

both!(web_profile_serves_the_current_directory, |who| {
    let dir = world_dir();
    let home = owned_dir(dir.path(), "home", who);
    let site = owned_dir(&home, "site", who);
    std::fs::write(site.join("hello.txt"), "hello from the site\n").unwrap();
    let (answer, stderr) = serve(who, &site, &home, "/hello.txt");
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\nhello from the site\n"),
        "{answer}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
});

both!(web_profile_never_serves_the_root_or_the_home, |who| {
    let dir = world_dir();
    let home = owned_dir(dir.path(), "home", who);
    std::fs::write(home.join("secret.txt"), "").unwrap();
    for cwd in [home.as_path(), Path::new("/")] {
        let (listing, stderr) = serve(who, cwd, &home, "/");
        assert!(listing.starts_with("HTTP/1.0 200"), "{listing}");
        assert!(!listing.contains("secret.txt"), "{listing}");
        assert!(!listing.contains("etc/"), "{listing}");
        assert!(
            stderr.contains("not exposing the current directory"),
            "{stderr}"
        );
    }
});
