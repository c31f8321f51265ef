//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2) from the MIME tree, with
//! Dovecot 2.3's values (issue 9): types, parameters and dispositions as
//! written (case kept, RFC 2231 sections joined, encoded words and
//! `charset'lang'%xx` left for the client), the RFC 2045 defaults
//! (`text/plain; charset=us-ascii`, `7bit`) when a field is missing or
//! does not count, Content-Language always as a list. A multipart without
//! parts is described with one empty text/plain part, as the grammar
//! needs at least one.

use super::envelope::{self, unfolded_text};
use super::header::{self, Field};
use super::mime::{self, Params, Part, PartKind};
use super::quote::{push_nstring, push_string};
use super::rfc822::{self, Lexer, Step};

/// `Content-*` field values that BODY and BODYSTRUCTURE report, found in
/// one walk over the header, so that a header of a million fields is
/// walked once and not held as a list.
#[derive(Debug, Default)]
struct MimeFields {
    id: Option<Vec<u8>>,
    description: Option<Vec<u8>>,
    encoding: Option<Vec<u8>>,
    md5: Option<Vec<u8>>,
    disposition: Option<(Vec<u8>, Params)>,
    language: Option<Vec<Vec<u8>>>,
    location: Option<Vec<u8>>,
}

impl MimeFields {
    /// The fields of `header_bytes`; none at all for a part whose Content-*
    /// fields do not count (RFC 2045 §4: no MIME-Version).
    fn of(header_bytes: &[u8], is_mime: bool) -> MimeFields {
        let mut found = MimeFields::default();
        if !is_mime {
            return found;
        }
        for f in header::fields(header_bytes) {
            let Some(name) = f
                .name
                .get(..8)
                .filter(|p| p.eq_ignore_ascii_case(b"content-"))
                .and(f.name.get(8..))
            else {
                continue;
            };
            found.take(name, &f);
        }
        found
    }

    /// Records one `Content-<name>` field. The first of each counts, but a
    /// Content-Transfer-Encoding or Content-Language that says nothing
    /// leaves room for a later one, and so does a Content-Disposition
    /// without parameters (Dovecot's rules).
    fn take(&mut self, name: &[u8], f: &Field<'_>) {
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is("id") {
            self.id.get_or_insert_with(|| unfolded_text(f));
        } else if is("description") {
            self.description.get_or_insert_with(|| unfolded_text(f));
        } else if is("md5") {
            self.md5.get_or_insert_with(|| unfolded_text(f));
        } else if is("location") {
            self.location.get_or_insert_with(|| unfolded_text(f));
        } else if is("transfer-encoding") {
            if self.encoding.is_none() {
                self.encoding = transfer_encoding(&f.full_value());
            }
        } else if is("language") {
            if self.language.is_none() {
                self.language = languages(&f.full_value());
            }
        } else if is("disposition")
            && self
                .disposition
                .as_ref()
                .is_none_or(|(_, params)| params.is_empty())
            && let Some(disposition) = disposition(&f.full_value())
        {
            self.disposition = Some(disposition);
        }
    }
}

/// NUL may not be sent in an IMAP string; U+FFFD stands for it.
pub(crate) fn replace_nul(value: Vec<u8>) -> Vec<u8> {
    if memchr::memchr(0, &value).is_none() {
        return value;
    }
    let mut out = Vec::with_capacity(value.len() + 2);
    for b in value {
        if b == 0 {
            out.extend_from_slice(rfc822::NUL_REPLACEMENT);
        } else {
            out.push(b);
        }
    }
    out
}

/// Line ends removed from a value, a space put where a line did not
/// continue with whitespace (Dovecot's `imap_append_nstring_nolf`).
pub(crate) fn without_line_ends(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for (i, &b) in value.iter().enumerate() {
        if b != b'\r' && b != b'\n' {
            out.push(b);
        } else if value
            .get(i + 1)
            .is_some_and(|&next| !matches!(next, b' ' | b'\t' | b'\r' | b'\n' | 0))
        {
            out.push(b' ');
        }
    }
    out
}

/// Content-Transfer-Encoding: one token and nothing after it but comments.
fn transfer_encoding(value: &[u8]) -> Option<Vec<u8>> {
    let mut lx = Lexer::new(value);
    let _ = lx.skip_lwsp();
    let mut token = Vec::new();
    (lx.mime_token(&mut token) != Step::Bad && lx.skip_lwsp() == Step::End && !token.is_empty())
        .then_some(token)
}

/// Content-Disposition: the type (possibly empty) and its parameters;
/// None when a comment before it never closes.
fn disposition(value: &[u8]) -> Option<(Vec<u8>, Params)> {
    let mut lx = Lexer::new(value);
    let _ = lx.skip_lwsp();
    let mut kind = Vec::new();
    if lx.mime_token(&mut kind) == Step::Bad {
        return None;
    }
    Some((kind, rfc822::parameters(&mut lx)))
}

/// Content-Language (RFC 3282): atoms separated by commas; None when the
/// first is missing.
fn languages(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut lx = Lexer::new(value);
    let _ = lx.skip_lwsp();
    let mut tags = Vec::new();
    loop {
        let mut tag = Vec::new();
        if lx.atom(&mut tag) == Step::Bad {
            break;
        }
        tags.push(tag);
        if lx.peek() != Some(b',') {
            break;
        }
        lx.pos += 1;
        let _ = lx.skip_lwsp();
    }
    (!tags.is_empty()).then_some(tags)
}

/// `("name" "value" ...)` or NIL; `default_charset` adds
/// `"charset" "us-ascii"` when no charset is given (text parts).
fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)], default_charset: bool) {
    if params.is_empty() && !default_charset {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    let mut seen_charset = false;
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        seen_charset |= name.eq_ignore_ascii_case(b"charset");
        push_string(out, name);
        out.push(b' ');
        push_string(out, value);
    }
    if default_charset && !seen_charset {
        if !params.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
    }
    out.push(b')');
}

/// An unstructured field value (already without line ends), or NIL.
fn write_text_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => push_string(out, v),
        None => push_nstring(out, None),
    }
}

/// The trailing `disposition language location` shared by both part kinds.
fn write_common_extensions(out: &mut Vec<u8>, fields: &MimeFields) {
    out.push(b' ');
    match &fields.disposition {
        Some((kind, params)) => {
            out.push(b'(');
            push_string(out, kind);
            out.push(b' ');
            write_params(out, params, false);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match &fields.language {
        Some(tags) => {
            out.push(b'(');
            for (i, t) in tags.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                push_string(out, t);
            }
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    write_text_field(out, fields.location.as_deref());
}

/// Where a multipart without parts has its one empty part.
const EMPTY_PART: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0";

/// Appends the structure of `part` (a message root or any part).
pub(crate) fn write_part(out: &mut Vec<u8>, data: &[u8], part: &Part, extensible: bool) {
    let fields = MimeFields::of(mime::slice(data, &part.header), part.is_mime);
    out.push(b'(');
    match &part.kind {
        PartKind::Multipart(children) => {
            for child in children {
                write_part(out, data, child, extensible);
            }
            if children.is_empty() {
                out.extend_from_slice(EMPTY_PART);
                if extensible {
                    out.extend_from_slice(b" NIL NIL NIL NIL");
                }
                out.push(b')');
            }
            out.push(b' ');
            push_string(out, &part.content.subtype);
            if extensible {
                out.push(b' ');
                write_params(out, &part.content.params, false);
                write_common_extensions(out, &fields);
            }
        }
        kind => {
            let params: &[(Vec<u8>, Vec<u8>)] = if part.declared {
                &part.content.params
            } else {
                &[]
            };
            let is_text = match kind {
                PartKind::Message(_) => {
                    out.extend_from_slice(b"\"message\" \"rfc822\"");
                    false
                }
                // Left unparsed at a limit: a multipart or message cannot
                // be described with its own type.
                _ if part.truncated => {
                    out.extend_from_slice(b"\"application\" \"octet-stream\"");
                    false
                }
                _ if !part.declared => {
                    out.extend_from_slice(b"\"text\" \"plain\"");
                    true
                }
                _ => {
                    push_string(out, &part.content.media_type);
                    out.push(b' ');
                    push_string(out, &part.content.subtype);
                    part.content.is_type("text")
                }
            };
            out.push(b' ');
            write_params(out, params, is_text);
            out.push(b' ');
            write_text_field(out, fields.id.as_deref());
            out.push(b' ');
            write_text_field(out, fields.description.as_deref());
            out.push(b' ');
            push_string(out, fields.encoding.as_deref().unwrap_or(b"7bit"));
            let body = mime::slice(data, &part.body);
            out.push(b' ');
            out.extend_from_slice(body.len().to_string().as_bytes());
            if let PartKind::Message(inner) = kind {
                out.push(b' ');
                envelope::write_envelope(out, mime::slice(data, &inner.header));
                out.push(b' ');
                write_part(out, data, inner, extensible);
                out.push(b' ');
                out.extend_from_slice(header::count_lines(body).to_string().as_bytes());
            } else if is_text {
                out.push(b' ');
                out.extend_from_slice(header::count_lines(body).to_string().as_bytes());
            }
            if extensible {
                out.push(b' ');
                write_text_field(out, fields.md5.as_deref());
                write_common_extensions(out, &fields);
            }
        }
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use crate::message::Message;
    use crate::message::fixtures::NESTED;

    fn structure(data: &[u8], extensible: bool) -> String {
        let mut out = Vec::new();
        Message::parse(data).write_body_structure(&mut out, extensible);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc3501_single_part_example_shape() {
        // RFC 3501 §7.4.2: ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)
        let m = b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\nContent-Transfer-Encoding: 7BIT\r\n\r\nab\r\ncd\r\n";
        assert_eq!(
            structure(m, false),
            r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 2)"#
        );
        assert_eq!(
            structure(m, true),
            r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 2 NIL NIL NIL NIL)"#
        );
    }

    #[test]
    fn defaults_without_mime_headers() {
        let m = b"Subject: x\r\n\r\nHello world\r\n";
        assert_eq!(
            structure(m, true),
            r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 1 NIL NIL NIL NIL)"#
        );
        // A Content-Type without subtype keeps its type (Dovecot), one that
        // is no type at all has an empty one; neither is text. Text without
        // charset gets us-ascii. A last line without a line end is not counted.
        let m = b"Content-Type: garbage\r\n\r\nx";
        assert_eq!(
            structure(m, false),
            r#"("garbage" "" NIL NIL NIL "7bit" 1)"#
        );
        let m = b"Content-Type: text\r\n\r\nx";
        assert_eq!(
            structure(m, false),
            r#"("text" "" ("charset" "us-ascii") NIL NIL "7bit" 1 0)"#
        );
        let m = b"Content-Type: this is not; charset=x\r\n\r\nx";
        assert_eq!(structure(m, false), r#"("" "" NIL NIL NIL "7bit" 1)"#);
        // Without MIME-Version or Content-Type, Content-* fields do not count.
        let m = b"Content-Transfer-Encoding: base64\r\nContent-ID: <a@b>\r\n\r\naGk=";
        assert_eq!(
            structure(m, false),
            r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0)"#
        );
        let m = b"Content-Type: text/html; format=flowed\r\n\r\nx";
        assert_eq!(
            structure(m, false),
            r#"("text" "html" ("format" "flowed" "charset" "us-ascii") NIL NIL "7bit" 1 0)"#
        );
        let m = b"Content-Type: application/pdf\r\n\r\nx";
        assert_eq!(
            structure(m, true),
            r#"("application" "pdf" NIL NIL NIL "7bit" 1 NIL NIL NIL NIL)"#
        );
    }

    #[test]
    fn nested_bodystructure() {
        let expected = concat!(
            r#"(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)"#,
            r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 16 0 NIL NIL NIL NIL)"#,
            // The line end after `--inner--` is the message/rfc822 part's.
            r#"("message" "rfc822" NIL NIL NIL "7bit" 296 (NIL "inner" ((NIL NIL "c" "d")) ((NIL NIL "c" "d")) ((NIL NIL "c" "d")) NIL NIL NIL NIL NIL) "#,
            r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)"#,
            r#"("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 27 1 NIL ("inline" NIL) NIL NIL)"#,
            r#" "alternative" ("boundary" "inner") NIL NIL NIL) 16 NIL NIL NIL NIL)"#,
            // RFC 2231 sections joined, not decoded; languages always a list.
            r#"(("image" "png" NIL NIL NIL "base64" 4 "abc=" ("attachment" ("filename*" "UTF-8''%E2%82%AC.png"))"#,
            r#" ("en" "de") "http://x/y")"#,
            r#" "related" ("boundary" "rel") NIL NIL NIL)"#,
            r#" "mixed" ("boundary" "outer") NIL NIL NIL)"#,
        );
        assert_eq!(structure(NESTED, true), expected);
    }

    #[test]
    fn nested_body_has_no_extension_data() {
        let expected = concat!(
            r#"(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 5 0)"#,
            r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 16 0)"#,
            r#"("message" "rfc822" NIL NIL NIL "7bit" 296 (NIL "inner" ((NIL NIL "c" "d")) ((NIL NIL "c" "d")) ((NIL NIL "c" "d")) NIL NIL NIL NIL NIL) "#,
            r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0)"#,
            r#"("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 27 1) "alternative") 16)"#,
            r#"(("image" "png" NIL NIL NIL "base64" 4) "related") "mixed")"#,
        );
        assert_eq!(structure(NESTED, false), expected);
    }

    #[test]
    fn depth_limit_reports_opaque_part() {
        let mut m = Vec::new();
        for _ in 0..150 {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"x");
        let s = structure(&m, false);
        assert!(s.contains(r#"("application" "octet-stream" NIL NIL NIL "7bit" "#));
        assert_eq!(s.matches('(').count(), s.matches(')').count());
        // A multipart there keeps its parameters.
        let mut m = Vec::new();
        for _ in 0..99 {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        );
        let s = structure(&m, true);
        assert!(s.contains(r#"("application" "octet-stream" ("boundary" "b") NIL NIL "7bit" 17 NIL NIL NIL NIL)"#), "{s}");
    }

    #[test]
    fn multipart_without_parts_has_an_empty_one() {
        let m = b"Content-Type: multipart/mixed; boundary=z\r\n\r\npreamble\r\n--z--\r\n";
        assert_eq!(
            structure(m, true),
            r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "z") NIL NIL NIL)"#
        );
        assert_eq!(
            structure(m, false),
            r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")"#
        );
    }

    #[test]
    fn content_fields_as_dovecot_reads_them() {
        let m = concat!(
            "Content-Type: text/plain; charset=utf-8; charset=latin1\r\n",
            "Content-Transfer-Encoding: quoted-printable (comment)\r\n",
            "Content-Language: en, de (German),\r\n fr\r\n",
            "Content-Disposition: inline\r\n",
            "Content-Disposition: attachment; filename=a.txt\r\n",
            "Content-ID:\r\n <folded@x>\r\n",
            "Content-Description: a\r\n b\0c\r\n",
            "\r\nx"
        );
        assert_eq!(
            structure(m.as_bytes(), true),
            concat!(
                r#"("text" "plain" ("charset" "utf-8" "charset" "latin1") "<folded@x>" {7}"#,
                "\r\na b\u{fffd}c",
                r#" "quoted-printable" 1 0 NIL ("attachment" ("filename" "a.txt")) ("en" "de" "fr") NIL)"#
            )
        );
    }
}
