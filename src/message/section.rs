//! BODY[section] extraction (RFC 3501 §6.4.5): resolving part numbers in the
//! MIME tree and cutting out HEADER, TEXT, HEADER.FIELDS[.NOT], MIME or the
//! part body, with Dovecot 2.3's bytes (issue 9). Partial `<o.n>` slicing
//! is the caller's job. NUL, which an IMAP literal may not hold, is sent as
//! 0x80, as Dovecot does.

use std::borrow::Cow;
use std::collections::HashSet;

use super::header;
use super::mime::{self, Part, PartKind};
use crate::protocol::command::{Section, SectionText};

/// Follows part numbers from a message root, as Dovecot does: in a
/// multipart the n-th part; anything else has one part, itself (so `1`
/// of a single-part message is its body, and `2.1` of a non-multipart
/// part 2 is part 2 again); a message/rfc822 part's further numbers refer
/// into the encapsulated message.
fn resolve<'p>(root: &'p Part, numbers: &[u32]) -> Option<&'p Part> {
    let mut part = root;
    for (i, &n) in numbers.iter().enumerate() {
        let more = i + 1 < numbers.len();
        match &part.kind {
            PartKind::Multipart(children) => {
                let index = usize::try_from(n).ok()?.checked_sub(1)?;
                part = children.get(index)?;
            }
            PartKind::Message(_) if n == 1 => {}
            _ if n == 1 && !more => {}
            _ => return None,
        }
        if more && let PartKind::Message(inner) = &part.kind {
            part = inner;
        }
    }
    Some(part)
}

/// Field names of a HEADER.FIELDS list as a set, once the list is long
/// enough that comparing each field with every name would cost more than
/// hashing: a client may send hundreds of thousands of names (as literals),
/// and a hostile message may have a million fields.
enum FieldNames<'n> {
    Few(&'n [Vec<u8>]),
    Many(HashSet<Vec<u8>, foldhash::fast::RandomState>),
}

impl<'n> FieldNames<'n> {
    /// Lists longer than this are hashed.
    const FEW: usize = 16;

    fn new(names: &'n [Vec<u8>]) -> FieldNames<'n> {
        if names.len() <= Self::FEW {
            FieldNames::Few(names)
        } else {
            FieldNames::Many(names.iter().map(|n| n.to_ascii_lowercase()).collect())
        }
    }

    fn contains(&self, name: &[u8]) -> bool {
        match self {
            FieldNames::Few(names) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
            FieldNames::Many(set) => set.contains(&name.to_ascii_lowercase()),
        }
    }
}

/// The header fields selected by a HEADER.FIELDS list (or all others with
/// `not`; a line without a colon is one of those), in message order with
/// folding kept, then the empty line if the header has one (RFC 3501
/// §6.4.5: "except in the case of a message which has no body and no
/// blank line").
fn header_fields(header_bytes: &[u8], names: &[Vec<u8>], not: bool) -> Vec<u8> {
    let names = FieldNames::new(names);
    let mut out = Vec::new();
    for field in header::fields(header_bytes) {
        if names.contains(field.name) != not {
            out.extend_from_slice(field.raw);
        }
    }
    if header::has_end_line(header_bytes) {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// HEADER / TEXT / HEADER.FIELDS applied to a message.
fn message_text<'a>(data: &'a [u8], msg: &Part, text: &SectionText) -> Option<Cow<'a, [u8]>> {
    let header_bytes = mime::slice(data, &msg.header);
    Some(match text {
        SectionText::Header => Cow::Borrowed(header_bytes),
        SectionText::Text => Cow::Borrowed(mime::slice(data, &msg.body)),
        SectionText::HeaderFields(names) => Cow::Owned(header_fields(header_bytes, names, false)),
        SectionText::HeaderFieldsNot(names) => Cow::Owned(header_fields(header_bytes, names, true)),
        SectionText::Mime => return None,
    })
}

/// `bytes` with every NUL as 0x80 (RFC 3501 §9: a literal is CHAR8,
/// %x01-ff), borrowed when there is none.
pub(crate) fn without_nul(bytes: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    if memchr::memchr(0, &bytes).is_none() {
        return bytes;
    }
    let mut owned = bytes.into_owned();
    for b in owned.iter_mut().filter(|b| **b == 0) {
        *b = 0x80;
    }
    Cow::Owned(owned)
}

/// The bytes of BODY[section]; None when the part does not exist or the
/// section text does not apply to it.
pub(crate) fn extract<'a>(data: &'a [u8], root: &Part, section: &Section) -> Option<Cow<'a, [u8]>> {
    let bytes = if section.part.is_empty() {
        match &section.text {
            None => Some(Cow::Borrowed(data)),
            Some(text) => message_text(data, root, text),
        }
    } else {
        let part = resolve(root, &section.part)?;
        match &section.text {
            None => Some(Cow::Borrowed(mime::slice(data, &part.body))),
            Some(SectionText::Mime) => Some(Cow::Borrowed(mime::slice(data, &part.header))),
            Some(text) => match &part.kind {
                PartKind::Message(inner) => message_text(data, inner, text),
                _ => None,
            },
        }
    };
    bytes.map(without_nul)
}

/// A Content-Transfer-Encoding BINARY cannot undo (RFC 3516 §4.2: the
/// answer is `NO [UNKNOWN-CTE]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCte(pub Vec<u8>);

/// The bytes of BINARY[part] (RFC 3516) before partial slicing: a leaf
/// part's content with base64 or quoted-printable undone; a multipart or
/// message/rfc822 part (which may only be 7bit, 8bit or binary) and the
/// whole message (`BINARY[]`) as they are. NUL stays: the caller sends
/// literal8 when there is one. An empty answer for a part that does not exist, as
/// BODY[] gives.
pub(crate) fn binary<'a>(
    data: &'a [u8],
    root: &Part,
    numbers: &[u32],
) -> Result<Cow<'a, [u8]>, UnknownCte> {
    if numbers.is_empty() {
        return Ok(Cow::Borrowed(data));
    }
    let Some(part) = resolve(root, numbers) else {
        return Ok(Cow::Borrowed(&[]));
    };
    let body = mime::slice(data, &part.body);
    if !matches!(part.kind, PartKind::Single) || !part.is_mime {
        return Ok(Cow::Borrowed(body));
    }
    let encoding = header::first_value(
        mime::slice(data, &part.header),
        b"Content-Transfer-Encoding",
    )
    .unwrap_or_default();
    let encoding = encoding.trim_ascii();
    match encoding.to_ascii_lowercase().as_slice() {
        b"" | b"7bit" | b"8bit" | b"binary" => Ok(Cow::Borrowed(body)),
        b"base64" => Ok(Cow::Owned(super::decode::base64(body))),
        b"quoted-printable" => Ok(Cow::Owned(super::decode::quoted_printable(body, false))),
        _ => Err(UnknownCte(encoding.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use crate::message::Message;
    use crate::message::fixtures::NESTED;
    use crate::protocol::command::{Section, SectionText};

    fn get(data: &[u8], part: &[u32], text: Option<SectionText>) -> Option<Vec<u8>> {
        Message::parse(data)
            .section(&Section {
                part: part.to_vec(),
                text,
            })
            .map(|c| c.into_owned())
    }

    fn names(n: &[&str]) -> Vec<Vec<u8>> {
        n.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn top_level_sections() {
        let msg = Message::parse(NESTED);
        assert_eq!(get(NESTED, &[], None).unwrap(), NESTED);
        assert_eq!(
            get(NESTED, &[], Some(SectionText::Header)).unwrap(),
            msg.header()
        );
        assert_eq!(
            get(NESTED, &[], Some(SectionText::Text)).unwrap(),
            msg.text()
        );
        assert_eq!(msg.header().len() + msg.text().len(), NESTED.len());
        assert_eq!(
            get(
                NESTED,
                &[],
                Some(SectionText::HeaderFields(names(&[
                    "SUBJECT", "from", "x-none"
                ])))
            )
            .unwrap(),
            b"From: Terry Gray <gray@cac.washington.edu>\r\nSubject: test\r\n\r\n"
        );
        assert_eq!(
            get(
                NESTED,
                &[],
                Some(SectionText::HeaderFieldsNot(names(&[
                    "from",
                    "subject",
                    "content-type"
                ])))
            )
            .unwrap(),
            b"MIME-Version: 1.0\r\n\r\n"
        );
        assert_eq!(
            get(NESTED, &[], Some(SectionText::HeaderFields(names(&["cc"])))).unwrap(),
            b"\r\n"
        );
        assert_eq!(get(NESTED, &[], Some(SectionText::Mime)), None);
    }

    #[test]
    fn numbered_parts() {
        assert_eq!(get(NESTED, &[1], None).unwrap(), b"hello");
        assert_eq!(get(NESTED, &[2], None).unwrap(), b"aGVsbG8gd29ybGQ=");
        assert_eq!(
            get(NESTED, &[1], Some(SectionText::Mime)).unwrap(),
            b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"
        );
        assert!(
            get(NESTED, &[4], None)
                .unwrap()
                .starts_with(b"--rel\r\nContent-Type: image/png")
        );
        // The rest of the close delimiter's line is the multipart's.
        assert!(
            get(NESTED, &[4], None)
                .unwrap()
                .ends_with(b"iVBO\r\n--rel--\r\n")
        );
        assert_eq!(get(NESTED, &[4, 1], None).unwrap(), b"iVBO");
        // A non-multipart part is its own part 1 (Dovecot's reading).
        assert_eq!(get(NESTED, &[4, 1, 1], None).unwrap(), b"iVBO");
        assert_eq!(get(NESTED, &[4, 1, 2], None), None);
        assert_eq!(get(NESTED, &[4, 1, 1, 1], None), None);
        assert_eq!(get(NESTED, &[5], None), None);
        assert_eq!(get(NESTED, &[0], None), None);
        // HEADER/TEXT only apply to message/rfc822 parts.
        assert_eq!(get(NESTED, &[1], Some(SectionText::Header)), None);
    }

    #[test]
    fn encapsulated_message_sections() {
        let whole = get(NESTED, &[3], None).unwrap();
        assert!(whole.starts_with(b"From: c@d\r\nSubject: inner\r\n"));
        assert!(whole.ends_with(b"au lait</p>\r\n--inner--\r\n"));
        assert_eq!(whole.len(), 296);
        assert_eq!(
            get(NESTED, &[3], Some(SectionText::Header)).unwrap(),
            b"From: c@d\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
        );
        assert!(
            get(NESTED, &[3], Some(SectionText::Text))
                .unwrap()
                .starts_with(b"--inner\r\n")
        );
        assert_eq!(
            get(
                NESTED,
                &[3],
                Some(SectionText::HeaderFields(names(&["subject"])))
            )
            .unwrap(),
            b"Subject: inner\r\n\r\n"
        );
        assert_eq!(
            get(NESTED, &[3], Some(SectionText::Mime)).unwrap(),
            b"Content-Type: message/rfc822\r\n\r\n"
        );
        assert_eq!(get(NESTED, &[3, 1], None).unwrap(), b"inner text");
        assert_eq!(
            get(NESTED, &[3, 2], None).unwrap(),
            b"<p>caf=C3=A9 =\r\nau lait</p>"
        );
        assert_eq!(
            get(NESTED, &[3, 2], Some(SectionText::Mime)).unwrap(),
            b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Disposition: inline\r\n\r\n"
        );
        assert_eq!(get(NESTED, &[3, 3], None), None);
    }

    #[test]
    fn single_part_message() {
        let m = b"Subject: one\r\nX-Folded: a\r\n b\r\n\r\nbody\r\n";
        assert_eq!(get(m, &[1], None).unwrap(), b"body\r\n");
        assert_eq!(get(m, &[1], None), get(m, &[], Some(SectionText::Text)));
        assert_eq!(
            get(m, &[1], Some(SectionText::Mime)).unwrap(),
            b"Subject: one\r\nX-Folded: a\r\n b\r\n\r\n"
        );
        assert_eq!(get(m, &[2], None), None);
        assert_eq!(get(m, &[1, 1], None), None);
        assert_eq!(
            get(
                m,
                &[],
                Some(SectionText::HeaderFields(names(&["x-folded"])))
            )
            .unwrap(),
            b"X-Folded: a\r\n b\r\n\r\n"
        );
        // RFC 3501 §6.4.5: no empty line where the message has none.
        assert_eq!(
            get(
                b"Subject: x",
                &[],
                Some(SectionText::HeaderFields(names(&["subject"])))
            )
            .unwrap(),
            b"Subject: x"
        );
        assert_eq!(
            get(
                b"Subject: x\r\nX: y\r\n",
                &[],
                Some(SectionText::HeaderFieldsNot(names(&["x"])))
            )
            .unwrap(),
            b"Subject: x\r\n"
        );
    }

    #[test]
    fn top_level_message_rfc822() {
        let m = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner body\r\n";
        assert_eq!(
            get(m, &[1], None).unwrap(),
            b"Subject: in\r\n\r\ninner body\r\n"
        );
        assert_eq!(
            get(m, &[1], Some(SectionText::Header)).unwrap(),
            b"Subject: in\r\n\r\n"
        );
        assert_eq!(get(m, &[1, 1], None).unwrap(), b"inner body\r\n");
    }

    #[test]
    fn long_header_field_lists_are_hashed() {
        // Past FieldNames::FEW names the list is a set: same answers.
        let header = Message::parse(NESTED).header().to_vec();
        let mut many: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("X-None-{i}").into_bytes())
            .collect();
        many.push(b"sUbJeCt".to_vec());
        many.push(b"FROM".to_vec());
        let few = names(&["subject", "from"]);
        for not in [false, true] {
            assert_eq!(
                super::header_fields(&header, &many, not),
                super::header_fields(&header, &few, not)
            );
        }
        assert_eq!(
            super::header_fields(&header, &many, false),
            b"From: Terry Gray <gray@cac.washington.edu>\r\nSubject: test\r\n\r\n"
        );
    }
}
