//! Command-line bytes as profile text, and back. Profiles are text, and an
//! argument may not be: a byte that is not part of valid UTF-8 reaches the
//! profile as the private-use character U+10FF00 + byte (as Python's
//! "surrogateescape", with characters a Rust string can hold), and the
//! program gets the original byte back. Valid text is unchanged both ways;
//! the plan says (`Exec::escaped_bytes`) when the way back is to be taken,
//! so a genuine U+10FF80..U+10FFFF character is only ever taken for a byte
//! in a run whose arguments had invalid bytes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

const BASE: u32 = 0x10_FF00;

/// The argument as profile text, and whether a byte had to be escaped.
pub fn to_text(arg: &OsStr) -> (String, bool) {
    let mut out = String::new();
    let mut escaped = false;
    for chunk in arg.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            escaped = true;
            out.push(char::from_u32(BASE + u32::from(*b)).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }
    (out, escaped)
}

/// The bytes an argument's text stands for (see `to_text`).
pub fn to_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        match u32::from(c).checked_sub(BASE) {
            Some(b @ 0x80..=0xff) => out.push(b as u8),
            _ => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    out
}

/// A host path as profile text: lossless, bytes that are not UTF-8
/// escaped as in `to_text` (a home or a file name in Latin-1 stays itself).
pub fn path_text(path: &std::path::Path) -> String {
    to_text(path.as_os_str()).0
}

/// The host path a profile's text names (see `path_text`), for `std::fs`.
pub fn to_path(text: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(to_bytes(text)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_comes_back() {
        let all: Vec<u8> = (1..=255u8).collect();
        let (text, escaped) = to_text(OsStr::from_bytes(&all));
        assert!(escaped);
        assert_eq!(to_bytes(&text), all);
        for b in 1..=255u8 {
            let (text, _) = to_text(OsStr::from_bytes(&[b, b'x', b]));
            assert_eq!(to_bytes(&text), [b, b'x', b]);
        }
        let (text, escaped) = to_text(OsStr::new("héllo wörld"));
        assert_eq!((text.as_str(), escaped), ("héllo wörld", false));
    }

    #[test]
    fn host_paths_come_back_byte_for_byte() {
        let latin1 = std::path::Path::new(OsStr::from_bytes(b"/home/j\xf6rg/caf\xe9"));
        let text = path_text(latin1);
        assert_eq!(text, "/home/j\u{10fff6}rg/caf\u{10ffe9}");
        assert_eq!(to_path(&text), latin1);
        assert_eq!(to_path("/plain/ü"), std::path::Path::new("/plain/ü"));
    }
}
