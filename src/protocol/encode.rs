//! Encoding of strings in server responses: the choice between atom, quoted
//! string and literal (RFC 3501 §4.3, §9 `string`/`nstring`/`astring`).
//!
//! A quoted string may not hold CR, LF, NUL or 8-bit bytes (unless the client
//! enabled UTF8=ACCEPT, which callers signal with `utf8`), so anything else is
//! sent as a literal. Everything here appends to a byte buffer: responses are
//! built in memory and written with one call.

use super::chars::is_atom_char;

/// Appends `s` as an IMAP `string`: quoted when possible, else a literal.
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    push_string_utf8(out, s, false)
}

/// As [`push_string`], allowing valid UTF-8 in quoted strings when `utf8` is set.
pub fn push_string_utf8(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if quotable(s, utf8) {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        push_literal(out, s);
    }
}

/// Appends `s` as a synchronising-style literal header plus data: `{n}\r\n<data>`.
pub fn push_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

/// Appends an `nstring`: `NIL` for `None`.
pub fn push_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => push_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends an `astring`: a bare atom when the text is a valid atom, else a string.
pub fn push_astring(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if !s.is_empty() && s.iter().all(|&b| is_atom_char(b)) && !s.eq_ignore_ascii_case(b"NIL") {
        out.extend_from_slice(s);
    } else {
        push_string_utf8(out, s, utf8);
    }
}

fn quotable(s: &[u8], utf8: bool) -> bool {
    if s.len() > 1024 {
        return false;
    }
    if s.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
        return false;
    }
    if s.is_ascii() {
        return true;
    }
    utf8 && std::str::from_utf8(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn quoted_and_escaped() {
        assert_eq!(s(|o| push_string(o, b"hello")), "\"hello\"");
        assert_eq!(s(|o| push_string(o, b"a\"b\\c")), "\"a\\\"b\\\\c\"");
        assert_eq!(s(|o| push_string(o, b"")), "\"\"");
    }

    #[test]
    fn literal_for_crlf_and_8bit() {
        assert_eq!(s(|o| push_string(o, b"a\r\nb")), "{4}\r\na\r\nb");
        assert_eq!(s(|o| push_string(o, "é".as_bytes())), "{2}\r\né");
        assert_eq!(s(|o| push_string_utf8(o, "é".as_bytes(), true)), "\"é\"");
    }

    #[test]
    fn nstring_and_astring() {
        assert_eq!(s(|o| push_nstring(o, None)), "NIL");
        assert_eq!(s(|o| push_astring(o, b"INBOX.Sent", false)), "INBOX.Sent");
        assert_eq!(s(|o| push_astring(o, b"My Folder", false)), "\"My Folder\"");
        assert_eq!(s(|o| push_astring(o, b"NIL", false)), "\"NIL\"");
    }
}
