//! Text from outside mdimap (a client, a file, another program's answer) made fit for a log
//! line: printable ASCII only and bounded in length, so that a user name cannot start a
//! line of its own, forge the fields of one (`, user=`, `ip=[...]`), turn text around with
//! a right-to-left override, or fill the log.
//!
//! Both `auth` and `server` log such text, and `auth` is below `server`, so this lives at
//! the crate's root, beside no layer and using none. It only formats; where log lines go is
//! `server::logging`'s business.

use std::borrow::Cow;
use std::fmt::Write;

/// The most [`escape`] returns, before the `...` that marks a cut.
pub const MAX_ESCAPED: usize = 256;

/// The most of one log message [`confine`] lets through, before the `...` that marks a
/// cut: with the syslog header it stays within the 1024 bytes RFC 3164 allows a packet.
pub const MAX_MESSAGE: usize = 900;

/// `text` as one field of a log line: printable ASCII stays, every other byte (control
/// characters, DEL, each byte of a non-ASCII character such as U+2028 or U+202E) and the
/// bytes log lines use to delimit fields (`\`, `[`, `]`, `,`) become `\xNN`. At most
/// [`MAX_ESCAPED`] bytes come out, then `...` if the text was cut.
pub fn escape(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_ESCAPED) + 3);
    for &b in text {
        let plain = is_printable(b) && !matches!(b, b'\\' | b'[' | b']' | b',');
        let width = if plain { 1 } else { 4 };
        if out.len() + width > MAX_ESCAPED {
            out.push_str("...");
            break;
        }
        if plain {
            out.push(char::from(b));
        } else {
            push_hex(&mut out, b);
        }
    }
    out
}

/// A whole log message made safe whatever its parts: bytes that are not printable ASCII
/// become `\xNN`, and it is cut after [`MAX_MESSAGE`] bytes (`...` marks the cut). The
/// logger applies this to every line, behind [`escape`], which callers apply to each
/// outside field: backslashes are left alone here, so a field's own `\xNN` escapes read
/// the same in the log.
pub fn confine(message: &str) -> Cow<'_, str> {
    if message.len() <= MAX_MESSAGE && message.bytes().all(is_printable) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE) + 3);
    for b in message.bytes() {
        let width = if is_printable(b) { 1 } else { 4 };
        if out.len() + width > MAX_MESSAGE {
            out.push_str("...");
            break;
        }
        if is_printable(b) {
            out.push(char::from(b));
        } else {
            push_hex(&mut out, b);
        }
    }
    Cow::Owned(out)
}

fn is_printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

fn push_hex(out: &mut String, b: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "\\x{b:02x}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printable_ascii(s: &str) -> bool {
        s.bytes().all(|b| (0x20..0x7f).contains(&b))
    }

    /// Every `\` starts a whole `\xNN`.
    fn whole_escapes(s: &str) -> bool {
        let b = s.as_bytes();
        b.iter().enumerate().all(|(i, &c)| {
            c != b'\\'
                || (b.get(i + 1) == Some(&b'x')
                    && b.get(i + 2..i + 4)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
        })
    }

    #[test]
    fn forgery_attempts_are_escaped() {
        assert_eq!(
            escape(b"bob\nLOGIN, user=root"),
            "bob\\x0aLOGIN\\x2c user=root"
        );
        assert_eq!(escape(b"a]b"), "a\\x5db");
        assert_eq!(escape(b"ip=[1.2.3.4]"), "ip=\\x5b1.2.3.4\\x5d");
        assert_eq!(escape(b"back\\slash"), "back\\x5cslash");
        assert_eq!(escape(b"\x00\x1b\x7f\xff"), "\\x00\\x1b\\x7f\\xff");
        assert_eq!(escape(b"alice@example.org"), "alice@example.org");
    }

    #[test]
    fn line_separator_and_right_to_left_override_are_escaped() {
        // U+2028 LINE SEPARATOR and U+202E RIGHT-TO-LEFT OVERRIDE, each three bytes of UTF-8.
        assert_eq!(
            escape("a\u{2028}b\u{202E}c".as_bytes()),
            "a\\xe2\\x80\\xa8b\\xe2\\x80\\xaec"
        );
        assert_eq!(escape("é".as_bytes()), "\\xc3\\xa9");
    }

    #[test]
    fn long_text_is_capped() {
        let ascii = "x".repeat(7000);
        let out = escape(ascii.as_bytes());
        assert_eq!(out, format!("{}...", "x".repeat(MAX_ESCAPED)));

        // Mostly multi-byte characters: the cap is on what comes out, not on what goes in.
        let hostile = format!("u\u{2028}\u{202E}{}", "\u{202E}".repeat(2400));
        assert!(hostile.len() >= 7000);
        let out = escape(hostile.as_bytes());
        assert!(out.len() <= MAX_ESCAPED + 3, "{} bytes", out.len());
        assert!(out.starts_with("u\\xe2\\x80\\xa8\\xe2\\x80\\xae"), "{out}");
        assert!(out.ends_with("..."), "{out}");
        assert!(printable_ascii(&out), "{out}");
        assert!(
            whole_escapes(out.trim_end_matches("...")),
            "a cut split an escape: {out}"
        );

        let exact = "y".repeat(MAX_ESCAPED);
        assert_eq!(
            escape(exact.as_bytes()),
            exact,
            "no mark when nothing was cut"
        );
    }

    #[test]
    fn confine_keeps_clean_lines_and_fixes_the_rest() {
        let clean = "LOGIN, user=bob\\x2c, ip=[127.0.0.1]";
        assert!(matches!(confine(clean), Cow::Borrowed(s) if s == clean));
        assert_eq!(
            confine("user a\u{2028}b\u{202E}c\nd\\x41"),
            "user a\\xe2\\x80\\xa8b\\xe2\\x80\\xaec\\x0ad\\x41"
        );
        let long = format!("user {}", "\u{202E}".repeat(2400));
        let out = confine(&long);
        assert!(out.len() <= MAX_MESSAGE + 3, "{} bytes", out.len());
        assert!(out.ends_with("...") && printable_ascii(&out), "{out}");
    }
}
