//! The channel from the sandbox's setup back to the launching `moksha`:
//! a close-on-exec pipe. Setup errors and phase timings travel over it;
//! end-of-file means the program was executed (or everything exited).

use std::io::Read;
use std::os::fd::OwnedFd;

/// One message from the sandbox side.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// Setup or exec failed: exit code and the message to show.
    Error(i32, String),
    /// A named phase finished after this many microseconds since clone.
    Phase(String, u64),
}

/// Writes one message; errors are ignored (the reader may be gone).
pub fn send(fd: &OwnedFd, msg: &Message) {
    send_checked(fd, msg);
}

/// `send`, saying whether the message was written (false: nobody reads
/// the pipe any more).
pub fn send_checked(fd: &OwnedFd, msg: &Message) -> bool {
    let line = match msg {
        Message::Error(code, text) => {
            format!(
                "E {code} {}\n",
                serde_json::to_string(text).unwrap_or_default()
            )
        }
        Message::Phase(name, us) => format!("P {us} {name}\n"),
    };
    crate::sys::write_all(fd, line.as_bytes(), "<report pipe>").is_ok()
}

/// Reads every message until end-of-file.
pub fn receive_all(fd: OwnedFd) -> Vec<Message> {
    let mut text = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut text);
    text.lines().filter_map(parse).collect()
}

fn parse(line: &str) -> Option<Message> {
    let (kind, rest) = line.split_once(' ')?;
    let (num, rest) = rest.split_once(' ')?;
    match kind {
        "E" => Some(Message::Error(
            num.parse().ok()?,
            serde_json::from_str(rest).ok()?,
        )),
        "P" => Some(Message::Phase(rest.to_string(), num.parse().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (r, w) = crate::sys::pipe().unwrap();
        send(&w, &Message::Error(127, "line one\nline \"two\"".into()));
        send(&w, &Message::Phase("mounts".into(), 1234));
        drop(w);
        assert_eq!(
            receive_all(r),
            vec![
                Message::Error(127, "line one\nline \"two\"".into()),
                Message::Phase("mounts".into(), 1234)
            ]
        );
    }
}
