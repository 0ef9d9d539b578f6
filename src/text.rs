//! Text from profiles, libraries, instance records, helpers and the kernel
//! is shown, never interpreted: before it reaches a terminal, every
//! character a terminal could act on is replaced by a visible escape
//! (`\x1b`, `\u{202e}`). Valid text is otherwise kept as it is.
//!
//! Escaped: the C0 and C1 control characters and DEL (a terminal acts on
//! ESC, BEL, CR, backspace, CSI...), and the bidirectional formatting
//! characters that make text read differently than it is ("Trojan Source").
//! A backslash is kept: an escape that was typed stays readable, and a
//! terminal does nothing with it.

use std::borrow::Cow;

/// Whether a terminal could act on `c` (or show text other than it is).
fn acts(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// The one escaping function: `text` with every character a terminal
/// could act on escaped, except the newlines (and tabs) of multi-line text
/// when `lines` is true.
fn escape_with(text: &str, lines: bool) -> Cow<'_, str> {
    let keep = |c: char| !acts(c) || (lines && matches!(c, '\n' | '\t'));
    // Printable ASCII (most of what is shown) needs no look at characters:
    // a byte scan, where decoding every character of a plan's listing was
    // 4% of `moksha plan`'s instructions.
    let plain = |b: u8| (b' '..b'\x7f').contains(&b) || (lines && matches!(b, b'\n' | b'\t'));
    if text.bytes().all(plain) || text.chars().all(keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if keep(c) => out.push(c),
            '\u{0}'..='\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// A value shown on one line (a name, a path, an argument, a table cell):
/// a newline in it is escaped too, so it cannot forge a line of its own.
pub fn line(text: &str) -> Cow<'_, str> {
    escape_with(text, false)
}

/// A message that is multi-line by design (a rendered error with its
/// source snippet, the listing of a plan): its newlines and tabs are kept.
pub fn lines(text: &str) -> Cow<'_, str> {
    escape_with(text, true)
}

/// A message as `lines` shows it, from anything printable (an error type).
pub fn shown(message: impl std::fmt::Display) -> String {
    lines(&message.to_string()).into_owned()
}

/// JSON for the terminal: the characters a terminal could act on that a
/// JSON serializer leaves raw (DEL, C1, bidi) written as `\uXXXX`, which
/// decode to the same text. The serializer has escaped the rest inside
/// strings, so a raw newline or tab here is layout.
pub fn json(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| acts(c) && !matches!(c, '\n' | '\t')) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            // Every such character is in the Basic Multilingual Plane.
            c if acts(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// How many columns `text` takes once shown as a line: where a caret goes
/// under an escaped source line.
pub fn width(text: &str) -> usize {
    line(text).chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_text() {
        let attack = "a\x1b]0;pwned\x07b\x1b[2J\r\u{8}\u{7f}";
        assert_eq!(line(attack), "a\\x1b]0;pwned\\x07b\\x1b[2J\\x0d\\x08\\x7f");
        assert_eq!(lines(attack), line(attack));
    }

    #[test]
    fn c1_controls_and_bidi_overrides_are_escaped() {
        assert_eq!(line("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(line("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(line("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
    }

    #[test]
    fn newlines_are_kept_only_in_multi_line_text() {
        assert_eq!(line("a\nb\tc"), "a\\x0ab\\x09c");
        assert_eq!(lines("a\nb\tc"), "a\nb\tc");
    }

    #[test]
    fn valid_text_is_unchanged_and_not_copied() {
        for text in ["", "plain", "ünïcödé ✓ 日本", "back\\slash \\x1b typed"] {
            assert!(matches!(line(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn json_stays_json_and_means_the_same() {
        let value = serde_json::json!({ "argv": ["a\u{1b}[2J", "\u{9b}x\u{7f}", "\u{202e}"] });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let shown = json(&text);
        assert!(!shown.chars().any(|c| acts(c) && c != '\n'));
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn width_counts_the_escapes() {
        assert_eq!(width("\x1bab"), 6);
        assert_eq!(width("ab"), 2);
    }

    #[test]
    fn no_output_byte_is_a_control_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let shown = lines(&all);
        assert!(shown
            .bytes()
            .all(|b| b == b'\n' || b == b'\t' || !(b < 0x20 || b == 0x7f)));
        assert!(!shown.chars().any(|c| acts(c) && c != '\n' && c != '\t'));
    }
}
