//! The X authority a sandbox gets: the host's entries for one display,
//! rewritten as wildcard entries (the sandbox may see the display under
//! another number and hostname).

use crate::plan::helper as plan_helper;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// X authority families (Xauth.h).
const FAMILY_LOCAL: u16 = 256;
const FAMILY_WILD: u16 = 65535;

/// One entry of an X authority file.
#[derive(Debug, Clone, PartialEq)]
pub struct XauthEntry {
    pub family: u16,
    pub address: Vec<u8>,
    pub number: Vec<u8>,
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

/// Parses an X authority file: entries of a big-endian family and four
/// length-prefixed fields. A truncated tail is ignored.
pub fn parse_xauth(mut bytes: &[u8]) -> Vec<XauthEntry> {
    fn u16_of(b: &mut &[u8]) -> Option<u16> {
        let (head, rest) = b.split_first_chunk::<2>()?;
        *b = rest;
        Some(u16::from_be_bytes(*head))
    }
    fn field(b: &mut &[u8]) -> Option<Vec<u8>> {
        let len = u16_of(b)? as usize;
        if b.len() < len {
            return None;
        }
        let (v, rest) = b.split_at(len);
        *b = rest;
        Some(v.to_vec())
    }
    let mut out = Vec::new();
    loop {
        let entry = (|| {
            Some(XauthEntry {
                family: u16_of(&mut bytes)?,
                address: field(&mut bytes)?,
                number: field(&mut bytes)?,
                name: field(&mut bytes)?,
                data: field(&mut bytes)?,
            })
        })();
        match entry {
            Some(e) => out.push(e),
            None => return out,
        }
    }
}

/// The entries for local display `number`, rewritten as wildcard entries
/// (any address, any display number: the sandbox may see the display under
/// another number), as an X authority file's bytes.
pub fn filter_xauth(entries: &[XauthEntry], number: u32) -> Vec<u8> {
    let number = number.to_string();
    let mut out = Vec::new();
    for e in entries {
        let local = e.family == FAMILY_LOCAL || e.family == FAMILY_WILD;
        if !local || e.number != number.as_bytes() {
            continue;
        }
        out.extend_from_slice(&FAMILY_WILD.to_be_bytes());
        for f in [&b""[..], &b""[..], &e.name, &e.data] {
            out.extend_from_slice(&(f.len() as u16).to_be_bytes());
            out.extend_from_slice(f);
        }
    }
    out
}

/// Writes the X authority for `display` to `path` (mode 0600). Returns a
/// warning when there is nothing to write.
pub fn write_xauthority(display: &str, path: &Path) -> Result<Option<String>, String> {
    let number = plan_helper::display_number(display)
        .ok_or_else(|| format!("{display:?} is not a local X display"))?;
    let source = std::env::var("XAUTHORITY")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("{}/.Xauthority", crate::script::host::home_dir()));
    let (bytes, warning) = match std::fs::read(&source) {
        Ok(all) => {
            let filtered = filter_xauth(&parse_xauth(&all), number);
            let warning = filtered.is_empty().then(|| {
                format!(
                    "X11: {source} has no cookie for display {display}; the sandbox gets an \
                     empty Xauthority, so the X server must accept it without one"
                )
            });
            (filtered, warning)
        }
        Err(e) => (
            Vec::new(),
            Some(format!(
                "X11: cannot read the X authority file {source} ({e}); the sandbox gets an \
                 empty one, so the X server must accept it without one"
            )),
        ),
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(family: u16, number: &str, data: &[u8]) -> XauthEntry {
        XauthEntry {
            family,
            address: b"host".to_vec(),
            number: number.as_bytes().to_vec(),
            name: b"MIT-MAGIC-COOKIE-1".to_vec(),
            data: data.to_vec(),
        }
    }

    fn serialize(entries: &[XauthEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            out.extend_from_slice(&e.family.to_be_bytes());
            for f in [&e.address, &e.number, &e.name, &e.data] {
                out.extend_from_slice(&(f.len() as u16).to_be_bytes());
                out.extend_from_slice(f);
            }
        }
        out
    }

    #[test]
    fn xauth_keeps_only_the_display_as_wildcard() {
        let file = serialize(&[
            entry(FAMILY_LOCAL, "0", &[1; 16]),
            entry(FAMILY_LOCAL, "1", &[2; 16]),
            entry(0, "0", &[3; 16]),
            entry(FAMILY_WILD, "0", &[4; 16]),
        ]);
        let parsed = parse_xauth(&file);
        assert_eq!(parsed.len(), 4);
        let out = parse_xauth(&filter_xauth(&parsed, 0));
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|e| e.family == FAMILY_WILD && e.address.is_empty() && e.number.is_empty()));
        assert_eq!(out[0].data, vec![1; 16]);
        assert_eq!(out[1].data, vec![4; 16]);
        assert!(filter_xauth(&parsed, 7).is_empty());
    }

    #[test]
    fn truncated_xauth_is_ignored_at_the_tail() {
        let mut file = serialize(&[entry(FAMILY_LOCAL, "0", &[1; 16])]);
        file.extend_from_slice(&[1, 0, 0, 9, b'x']);
        assert_eq!(parse_xauth(&file).len(), 1);
    }
}
