//! How the strings of ENVELOPE and BODYSTRUCTURE are written: quoted or as
//! a literal, chosen as Dovecot 2.3 chooses (its `imap-quote.c`), so that a
//! FETCH answer is the same bytes as Dovecot's (tests/corpus_dovecot.rs).
//! Either form is the same string to a client (RFC 3501 §4.3); what this
//! module adds is that no NUL is ever sent (RFC 3501 §9: CHAR8 is
//! %x01-ff), whatever the message holds.
//!
//! It owns only the choice of form; values are made by the callers.

use super::rfc822::NUL_REPLACEMENT;

/// Quoted-specials a quoted string may escape before a literal is shorter.
const QUOTED_MAX_ESCAPES: usize = 4;

fn push_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

fn push_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `s` without NUL (U+FFFD instead).
fn without_nul(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if memchr::memchr(0, s).is_none() {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len() + 2);
    for &b in s {
        if b == 0 {
            out.extend_from_slice(NUL_REPLACEMENT);
        } else {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A string: a literal when it holds a line end, an 8-bit byte or more
/// than four quoted-specials, else quoted.
pub(crate) fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    let s = without_nul(s);
    let mut escapes = 0;
    let literal = s.iter().any(|&b| match b {
        b'"' | b'\\' => {
            escapes += 1;
            escapes > QUOTED_MAX_ESCAPES
        }
        b'\r' | b'\n' => true,
        _ => b >= 0x80,
    });
    if literal {
        push_literal(out, &s);
    } else {
        push_quoted(out, &s);
    }
}

/// An nstring: NIL for None.
pub(crate) fn push_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => push_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A string "for humans" (a subject, a display name): every run of
/// blanks and line ends one space, none at either end, NUL as 0x80.
/// Written quoted when that changed nothing, else as a literal.
pub(crate) fn push_for_humans(out: &mut Vec<u8>, s: &[u8]) {
    let mut shown = Vec::with_capacity(s.len());
    let mut last_blank = true;
    for &b in s {
        match b {
            0 => {
                shown.push(0x80);
                last_blank = false;
            }
            b'\r' | b'\n' | b'\t' | b' ' => {
                if !last_blank {
                    shown.push(b' ');
                }
                last_blank = true;
            }
            _ => {
                shown.push(b);
                last_blank = false;
            }
        }
    }
    if last_blank && shown.last() == Some(&b' ') {
        shown.pop();
    }
    let changed = shown.as_slice() != s || s.iter().any(|&b| b == b'"' || b == b'\\' || b >= 0x80);
    if shown.is_empty() {
        out.extend_from_slice(b"\"\"");
    } else if changed {
        push_literal(out, &shown);
    } else {
        push_quoted(out, &shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn quoted_or_literal_as_dovecot_chooses() {
        assert_eq!(s(|o| push_string(o, b"plain")), "\"plain\"");
        assert_eq!(s(|o| push_string(o, b"")), "\"\"");
        assert_eq!(s(|o| push_string(o, br#"a "b" \c\"#)), r#""a \"b\" \\c\\""#);
        assert_eq!(s(|o| push_string(o, br#"""""""#)), "{5}\r\n\"\"\"\"\"");
        assert_eq!(s(|o| push_string(o, "é".as_bytes())), "{2}\r\né");
        assert_eq!(s(|o| push_string(o, b"a\r\nb")), "{4}\r\na\r\nb");
        // Long strings stay quoted when nothing else asks for a literal.
        let long = vec![b'x'; 5000];
        assert!(s(|o| push_string(o, &long)).starts_with("\"xxx"));
        // NUL is never sent.
        assert_eq!(s(|o| push_string(o, b"a\0b")), "{5}\r\na\u{fffd}b");
        assert_eq!(s(|o| push_nstring(o, None)), "NIL");
    }

    #[test]
    fn for_humans() {
        assert_eq!(s(|o| push_for_humans(o, b"Hello world")), "\"Hello world\"");
        assert_eq!(s(|o| push_for_humans(o, b"  \t ")), "\"\"");
        assert_eq!(s(|o| push_for_humans(o, b"")), "\"\"");
        assert_eq!(
            s(|o| push_for_humans(o, b"spaced\tout  ")),
            "{10}\r\nspaced out"
        );
        assert_eq!(s(|o| push_for_humans(o, b"a\n b")), "{3}\r\na b");
        assert_eq!(s(|o| push_for_humans(o, b"\"q\"")), "{3}\r\n\"q\"");
        let mut out = Vec::new();
        push_for_humans(&mut out, b"a\0b");
        assert_eq!(out, b"{3}\r\na\x80b");
    }
}
