//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2) from the MIME tree. Values are
//! sent as the message gives them (case kept, encoded words not decoded);
//! missing ones get the RFC 2045 defaults (`text/plain; charset=us-ascii`,
//! `7bit`).

use super::envelope;
use super::header;
use super::mime::{self, ContentType, Part, PartKind};
use crate::protocol::encode::{push_nstring, push_string};

/// The fields of a part's header that BODY and BODYSTRUCTURE report, found
/// in one walk over the header (the first of each name counts), so that a
/// header of a million fields is walked once and not held as a list.
#[derive(Debug, Default)]
struct MimeFields<'a> {
    id: Option<&'a [u8]>,
    description: Option<&'a [u8]>,
    encoding: Option<&'a [u8]>,
    md5: Option<&'a [u8]>,
    disposition: Option<&'a [u8]>,
    language: Option<&'a [u8]>,
    location: Option<&'a [u8]>,
}

impl<'a> MimeFields<'a> {
    fn of(header_bytes: &'a [u8]) -> MimeFields<'a> {
        let mut found = MimeFields::default();
        for f in header::fields(header_bytes) {
            let name = f.name;
            let slot = if name.eq_ignore_ascii_case(b"content-id") {
                &mut found.id
            } else if name.eq_ignore_ascii_case(b"content-description") {
                &mut found.description
            } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
                &mut found.encoding
            } else if name.eq_ignore_ascii_case(b"content-md5") {
                &mut found.md5
            } else if name.eq_ignore_ascii_case(b"content-disposition") {
                &mut found.disposition
            } else if name.eq_ignore_ascii_case(b"content-language") {
                &mut found.language
            } else if name.eq_ignore_ascii_case(b"content-location") {
                &mut found.location
            } else {
                continue;
            };
            slot.get_or_insert(f.value);
        }
        found
    }
}

/// The unfolded value of a field found by [`MimeFields::of`].
fn unfolded(value: Option<&[u8]>) -> Option<Vec<u8>> {
    value.map(header::unfold)
}

/// `("name" "value" ...)` or NIL.
fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        push_string(out, name);
        out.push(b' ');
        push_string(out, value);
    }
    out.push(b')');
}

/// `("attachment" ("filename" "x"))` or NIL.
fn write_disposition(out: &mut Vec<u8>, fields: &MimeFields<'_>) {
    match unfolded(fields.disposition).and_then(|v| mime::parse_disposition(&v)) {
        Some((kind, params)) => {
            out.push(b'(');
            push_string(out, &kind);
            out.push(b' ');
            write_params(out, &params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Content-Language: one string, a list of them, or NIL.
fn write_language(out: &mut Vec<u8>, fields: &MimeFields<'_>) {
    let value = unfolded(fields.language).unwrap_or_default();
    let tags: Vec<&[u8]> = value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect();
    match tags.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => push_string(out, one),
        many => {
            out.push(b'(');
            for (i, t) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                push_string(out, t);
            }
            out.push(b')');
        }
    }
}

/// The trailing `disposition language location` shared by both part kinds.
fn write_common_extensions(out: &mut Vec<u8>, fields: &MimeFields<'_>) {
    out.push(b' ');
    write_disposition(out, fields);
    out.push(b' ');
    write_language(out, fields);
    out.push(b' ');
    push_nstring(out, unfolded(fields.location).as_deref());
}

/// Appends the structure of `part` (a message root or any part).
pub(crate) fn write_part(out: &mut Vec<u8>, data: &[u8], part: &Part, extensible: bool) {
    let header_bytes = mime::slice(data, &part.header);
    let fields = MimeFields::of(header_bytes);
    out.push(b'(');
    match &part.kind {
        PartKind::Multipart(children) => {
            for child in children {
                write_part(out, data, child, extensible);
            }
            out.push(b' ');
            push_string(out, &part.content.subtype);
            if extensible {
                out.push(b' ');
                write_params(out, &part.content.params);
                write_common_extensions(out, &fields);
            }
        }
        kind => {
            // A multipart or message left unparsed at the depth limit cannot be
            // described with its own type; report it as opaque data.
            let opaque = matches!(kind, PartKind::Single)
                && (part.content.is_multipart() || part.content.is_message());
            let fallback;
            let content: &ContentType = if opaque {
                fallback = ContentType {
                    media_type: b"application".to_vec(),
                    subtype: b"octet-stream".to_vec(),
                    params: Vec::new(),
                };
                &fallback
            } else {
                &part.content
            };
            push_string(out, &content.media_type);
            out.push(b' ');
            push_string(out, &content.subtype);
            out.push(b' ');
            let is_text = content.is_type("text");
            if is_text && content.param("charset").is_none() {
                let mut params = content.params.clone();
                params.push((b"charset".to_vec(), b"us-ascii".to_vec()));
                write_params(out, &params);
            } else {
                write_params(out, &content.params);
            }
            out.push(b' ');
            push_nstring(out, unfolded(fields.id).as_deref());
            out.push(b' ');
            push_nstring(out, unfolded(fields.description).as_deref());
            out.push(b' ');
            let encoding = unfolded(fields.encoding).filter(|e| !e.is_empty());
            push_string(out, encoding.as_deref().unwrap_or(b"7bit"));
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
                push_nstring(out, unfolded(fields.md5).as_deref());
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
        // Unparsable Content-Type is text/plain too; text without charset
        // gets us-ascii. A last line without a line end is not counted.
        let m = b"Content-Type: garbage\r\n\r\nx";
        assert_eq!(
            structure(m, false),
            r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0)"#
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
            r#"("message" "rfc822" NIL NIL NIL "7bit" 294 (NIL "inner" ((NIL NIL "c" "d")) ((NIL NIL "c" "d")) ((NIL NIL "c" "d")) NIL NIL NIL NIL NIL) "#,
            r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)"#,
            r#"("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 27 1 NIL ("inline" NIL) NIL NIL)"#,
            r#" "alternative" ("boundary" "inner") NIL NIL NIL) 15 NIL NIL NIL NIL)"#,
            r#"(("image" "png" NIL NIL NIL "base64" 4 "abc=" ("attachment" ("filename" {7}"#,
            "\r\n€.png)) (\"en\" \"de\") \"http://x/y\")",
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
            r#"("message" "rfc822" NIL NIL NIL "7bit" 294 (NIL "inner" ((NIL NIL "c" "d")) ((NIL NIL "c" "d")) ((NIL NIL "c" "d")) NIL NIL NIL NIL NIL) "#,
            r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0)"#,
            r#"("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 27 1) "alternative") 15)"#,
            r#"(("image" "png" NIL NIL NIL "base64" 4) "related") "mixed")"#,
        );
        assert_eq!(structure(NESTED, false), expected);
    }

    #[test]
    fn depth_limit_reports_opaque_part() {
        let mut m = Vec::new();
        for _ in 0..60 {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"x");
        let s = structure(&m, false);
        assert!(s.contains(r#"("application" "octet-stream" NIL NIL NIL "7bit" "#));
        assert_eq!(s.matches('(').count(), s.matches(')').count());
    }
}
