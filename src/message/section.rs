//! BODY[section] extraction (RFC 3501 §6.4.5): resolving part numbers in the
//! MIME tree and cutting out HEADER, TEXT, HEADER.FIELDS[.NOT], MIME or the
//! part body. Partial `<o.n>` slicing is the caller's job.

use std::borrow::Cow;
use std::collections::HashSet;

use super::header;
use super::mime::{self, Part, PartKind};
use crate::protocol::command::{Section, SectionText};

/// Follows part numbers from a message root. A non-multipart message has one
/// part, itself (its body is part 1); a message/rfc822 part's numbers refer
/// into the encapsulated message. Returns the addressed part.
fn resolve<'p>(root: &'p Part, numbers: &[u32]) -> Option<&'p Part> {
    let mut cur = root;
    let mut at_message = true;
    for &n in numbers {
        if !at_message {
            match &cur.kind {
                PartKind::Multipart(_) => {}
                PartKind::Message(inner) => {
                    cur = inner;
                    at_message = true;
                }
                PartKind::Single => return None,
            }
        }
        let index = usize::try_from(n).ok()?.checked_sub(1)?;
        cur = match &cur.kind {
            PartKind::Multipart(children) => children.get(index)?,
            _ if at_message && index == 0 => cur,
            _ => return None,
        };
        at_message = false;
    }
    Some(cur)
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
/// `not`), in message order with folding kept, followed by the empty line.
fn header_fields(header_bytes: &[u8], names: &[Vec<u8>], not: bool) -> Vec<u8> {
    let names = FieldNames::new(names);
    let mut out = Vec::new();
    for field in header::fields(header_bytes) {
        if names.contains(field.name) != not {
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// HEADER / TEXT / HEADER.FIELDS applied to a message root.
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

/// The bytes of BODY[section]; None when the part does not exist or the
/// section text does not apply to it.
pub(crate) fn extract<'a>(data: &'a [u8], root: &Part, section: &Section) -> Option<Cow<'a, [u8]>> {
    if section.part.is_empty() {
        return match &section.text {
            None => Some(Cow::Borrowed(data)),
            Some(text) => message_text(data, root, text),
        };
    }
    let part = resolve(root, &section.part)?;
    match &section.text {
        None => Some(Cow::Borrowed(mime::slice(data, &part.body))),
        Some(SectionText::Mime) => Some(Cow::Borrowed(mime::slice(data, &part.header))),
        Some(text) => match &part.kind {
            PartKind::Message(inner) => message_text(data, inner, text),
            _ => None,
        },
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
        assert!(
            get(NESTED, &[4], None)
                .unwrap()
                .ends_with(b"iVBO\r\n--rel--")
        );
        assert_eq!(get(NESTED, &[4, 1], None).unwrap(), b"iVBO");
        assert_eq!(get(NESTED, &[4, 1, 1], None), None);
        assert_eq!(get(NESTED, &[5], None), None);
        assert_eq!(get(NESTED, &[0], None), None);
        // HEADER/TEXT only apply to message/rfc822 parts.
        assert_eq!(get(NESTED, &[1], Some(SectionText::Header)), None);
    }

    #[test]
    fn encapsulated_message_sections() {
        let whole = get(NESTED, &[3], None).unwrap();
        assert!(whole.starts_with(b"From: c@d\r\nSubject: inner\r\n"));
        assert!(whole.ends_with(b"au lait</p>\r\n--inner--"));
        assert_eq!(whole.len(), 294);
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
        // A header block without its empty line still yields well-formed fields.
        assert_eq!(
            get(
                b"Subject: x",
                &[],
                Some(SectionText::HeaderFields(names(&["subject"])))
            )
            .unwrap(),
            b"Subject: x\r\n\r\n"
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
