//! Derived data: what FETCH and SEARCH compute from a message's text that the next client
//! is likely to ask for again, kept in the folder's index so the next time costs no read of
//! the message: the header fields ENVELOPE, SORT and THREAD are made of and that clients
//! fetch with `BODY.PEEK[HEADER.FIELDS (...)]` (Thunderbird's list among them), and
//! BODYSTRUCTURE. Answers made from it are byte for byte those made from the message: the
//! fields are kept raw, in message order, with every occurrence, so ENVELOPE, HEADER.FIELDS
//! and header SEARCH keys limited to them find exactly what they find in the whole header.
//!
//! The encoding (a list of kind, length, bytes) is this module's; the store keeps it as
//! opaque bytes. Must not read files or know the view.

use std::ops::Range;

use crate::message::Message;

/// Header fields kept (compared without regard to case): ENVELOPE's, those SORT and
/// THREAD use, and what Thunderbird, Apple Mail, Evolution and K-9 fetch for a message list.
pub(super) const CACHED_FIELDS: &[&[u8]] = &[
    b"date",
    b"subject",
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"cc",
    b"bcc",
    b"in-reply-to",
    b"message-id",
    b"references",
    b"newsgroups",
    b"content-type",
    b"mime-version",
    b"priority",
    b"x-priority",
    b"importance",
    b"list-post",
];

/// A header whose kept fields are larger than this is not kept (a hostile message must not
/// bloat the index); such messages are read each time, as without an index.
const MAX_FIELDS: usize = 64 * 1024;

/// Kinds of derived data. A kind's number changes whenever what it holds would answer
/// differently (the message layer's answers changed): data of an old number is then passed
/// over, as a kind unknown here, and computed again. (1 and 2: before the message layer
/// read MIME as Dovecot does, and kept fields always ended with an empty line.)
const KIND_FIELDS: u8 = 3;
const KIND_BODYSTRUCTURE: u8 = 4;
/// RFC 8970 PREVIEW text (UTF-8, at most 200 characters).
const KIND_PREVIEW: u8 = 5;

/// True when every name is one of the kept fields.
pub(super) fn covers<N: AsRef<[u8]>>(names: &[N]) -> bool {
    names.iter().all(|n| {
        CACHED_FIELDS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(n.as_ref()))
    })
}

/// One message's derived data: its encoding, and where each kind is in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Derived {
    data: Vec<u8>,
    fields: Option<Range<usize>>,
    bodystructure: Option<Range<usize>>,
    preview: Option<Range<usize>>,
}

impl Derived {
    /// Reads the encoding; a torn one is nothing.
    pub(super) fn decode(data: Vec<u8>) -> Derived {
        let mut d = Derived {
            data,
            ..Derived::default()
        };
        let mut at = 0;
        while let Some(&kind) = d.data.get(at) {
            let len = d
                .data
                .get(at + 1..at + 5)
                .and_then(|l| l.try_into().ok())
                .map(u32::from_le_bytes);
            let value = len.and_then(|len| {
                let start = at + 5;
                let end = start.checked_add(len as usize)?;
                (end <= d.data.len()).then_some(start..end)
            });
            let Some(value) = value else {
                return Derived::default();
            };
            at = value.end;
            match kind {
                KIND_FIELDS => d.fields = Some(value),
                KIND_BODYSTRUCTURE => d.bodystructure = Some(value),
                KIND_PREVIEW => d.preview = Some(value),
                // A kind a later version added: passed over.
                _ => {}
            }
        }
        d
    }

    /// The encoding, for the index.
    pub(super) fn encoded(&self) -> &[u8] {
        &self.data
    }

    /// The kept header fields, raw and in order, followed by an empty line: a header
    /// block that reads as a message of its own (see [`Message::header_only`]).
    pub(super) fn fields(&self) -> Option<&[u8]> {
        self.fields.clone().and_then(|r| self.data.get(r))
    }

    /// BODYSTRUCTURE, with extension data.
    pub(super) fn bodystructure(&self) -> Option<&[u8]> {
        self.bodystructure.clone().and_then(|r| self.data.get(r))
    }

    /// PREVIEW (RFC 8970), as `Message::preview` made it.
    pub(super) fn preview(&self) -> Option<&[u8]> {
        self.preview.clone().and_then(|r| self.data.get(r))
    }

    fn add(&mut self, kind: u8, value: &[u8]) -> Option<Range<usize>> {
        let len = u32::try_from(value.len()).ok()?;
        self.data.push(kind);
        self.data.extend_from_slice(&len.to_le_bytes());
        let start = self.data.len();
        self.data.extend_from_slice(value);
        Some(start..self.data.len())
    }

    /// Fills in what `msg` (a whole message when `whole`, else its header) gives and this
    /// does not have yet; true when something was added.
    pub(super) fn complete_from(&mut self, msg: &Message<'_>, whole: bool) -> bool {
        let mut added = false;
        if self.fields.is_none()
            && let Some(fields) = kept_fields(msg.header())
        {
            self.fields = self.add(KIND_FIELDS, &fields);
            added = true;
        }
        if whole && self.bodystructure.is_none() {
            let mut bs = Vec::new();
            msg.write_body_structure(&mut bs, true);
            self.bodystructure = self.add(KIND_BODYSTRUCTURE, &bs);
            added = true;
        }
        // Kept with the structure, from the same read: a client that shows previews asks
        // for every message's, each time it lists the folder.
        if whole && self.preview.is_none() {
            self.preview = self.add(KIND_PREVIEW, msg.preview().as_bytes());
            added = true;
        }
        added
    }
}

/// The kept fields of a header block, as a header block; `None` when they are too large.
/// Each field raw, as HEADER.FIELDS gives it, and the empty line only when the header has
/// one (a header that runs to the end of the message has none, and its last field may have
/// no line end): read as a message of its own, the block answers as the header does.
pub(super) fn kept_fields(header: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for field in crate::message::header_fields(header) {
        if CACHED_FIELDS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(field.name))
        {
            out.extend_from_slice(field.raw);
            if out.len() > MAX_FIELDS {
                return None;
            }
        }
    }
    if crate::message::header_has_end_line(header) {
        out.extend_from_slice(b"\r\n");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::fixtures::NESTED;
    use crate::message::{SortKeys, to_crlf};
    use crate::protocol::command::{Section, SectionText};

    #[test]
    fn round_trip_and_unknown_kinds() {
        let mut d = Derived::default();
        let msg = Message::parse(b"Subject: x\r\nX-No: y\r\n\r\nbody\r\n");
        assert!(d.complete_from(&msg, true));
        assert!(!d.complete_from(&msg, true), "nothing more to add");
        assert_eq!(d.fields(), Some(&b"Subject: x\r\n\r\n"[..]));
        assert!(
            d.bodystructure()
                .unwrap()
                .starts_with(b"(\"text\" \"plain\"")
        );
        let mut bytes = d.encoded().to_vec();
        assert_eq!(Derived::decode(bytes.clone()), d);
        bytes.extend_from_slice(&[9, 1, 0, 0, 0, b'z']);
        let later = Derived::decode(bytes.clone());
        assert_eq!(later.fields(), d.fields(), "a later kind is passed over");
        assert_eq!(later.bodystructure(), d.bodystructure());
        assert_eq!(d.preview(), Some(&b"body"[..]));
        assert_eq!(later.preview(), d.preview());
        bytes.truncate(bytes.len() - 1);
        assert_eq!(Derived::decode(bytes), Derived::default(), "torn: nothing");
        assert_eq!(Derived::decode(Vec::new()), Derived::default());
        // Header only: fields, no BODYSTRUCTURE.
        let mut h = Derived::default();
        assert!(h.complete_from(&Message::header_only(b"Subject: x\r\n\r\n"), false));
        assert_eq!(h.bodystructure(), None);
        assert_eq!(h.fields(), d.fields());
    }

    /// ENVELOPE, HEADER.FIELDS of kept names and header search keys give the same answer
    /// from the kept fields as from the message, whatever its header looks like.
    #[test]
    fn answers_from_kept_fields_equal_answers_from_the_message() {
        let headers: &[&[u8]] = &[
            NESTED,
            b"Subject: one\nsubject: two\nX-Other: x\n  folded\nFrom: \"A\" <a@b>\nTo: c@d,\n e@f\nbogus line\nCc:\nMessage-ID: <m@x>\nReferences: <a@x>\n <b@x>\n\nbody\n",
            b"From: no blank line at the end",
            b"\nbody only\n",
            b"Sender: s@x\nReply-To: r@x\nDate: Fri, 21 Nov 1997 09:55:06 -0600\nIn-Reply-To: <i@x>\nBcc: b@x\n\n",
            b"X-Mailer: x\nSubject: Re: [list] Fwd: =?UTF-8?Q?J=C3=B6rg?=\nFrom: =?UTF-8?Q?J=C3=B6rg?= <j@x>\nTo: \"Zed\" <z@x>, y@x\nCc: group: a@x, b@x;\nIn-Reply-To: <p@x> <q@x>\nDate: 2 Jan 2000 00:00 +0000\nMessage-Id: <n@x>\n\nbody\n",
            // What SUBJECT and FROM/TO/CC/BCC read (blanks made one, the addresses as
            // Dovecot writes them): comments, blanks before the colon, 8-bit text.
            b"Subject:  two \t  blanks\nX-A: 1\nFrom : a (c) @ b (Real Name),\n Ann\xe9 <ann@x>\nTO: Group: <g@x>;\nbcc: \"Pat O'Brien\" <o@x>\nSubject: caf\xe9\n\n",
        ];
        let names: Vec<Vec<u8>> = [
            "From",
            "To",
            "Cc",
            "Bcc",
            "Subject",
            "Date",
            "Message-ID",
            "Priority",
            "X-Priority",
            "References",
            "Newsgroups",
            "In-Reply-To",
            "Content-Type",
            "Reply-To",
        ]
        .iter()
        .map(|n| n.as_bytes().to_vec())
        .collect();
        assert!(covers(&names));
        assert!(!covers(&[b"x-other".to_vec()]));
        let mut found = Vec::new();
        for raw in headers {
            let data = to_crlf(raw);
            let msg = Message::parse(&data);
            let mut d = Derived::default();
            assert!(d.complete_from(&msg, true));
            let kept = Message::header_only(d.fields().unwrap());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            msg.write_envelope(&mut a);
            kept.write_envelope(&mut b);
            assert_eq!(a, b, "{}", String::from_utf8_lossy(raw));
            // SORT and THREAD keys (session/sort.rs takes them from the kept fields).
            assert_eq!(
                SortKeys::of_header(msg.header()),
                SortKeys::of_header(kept.header()),
                "{}",
                String::from_utf8_lossy(raw)
            );
            let section = Section {
                part: vec![],
                text: Some(SectionText::HeaderFields(names.clone())),
            };
            assert_eq!(msg.section(&section), kept.section(&section));
            for (name, needle) in [("subject", "two"), ("to", "e@f"), ("from", "a@b")] {
                assert_eq!(
                    crate::message::header_contains(&msg, name.as_bytes(), needle),
                    crate::message::header_contains(&kept, name.as_bytes(), needle)
                );
            }
            // SEARCH SUBJECT and FROM/TO/CC/BCC (session/search.rs answers them from the
            // kept fields too).
            for needle in ["two blanks", "two", "caf\u{fffd}", "fwd: jörg", ""] {
                let hit = crate::message::subject_contains(&msg, needle);
                found.push(("subject", needle, hit));
                assert_eq!(
                    hit,
                    crate::message::subject_contains(&kept, needle),
                    "{needle} in {}",
                    String::from_utf8_lossy(raw)
                );
            }
            for (name, needle) in [
                ("from", "<a@b>"),
                ("from", "\"real name\" <a@b>"),
                ("from", "jörg <j@x>"),
                ("from", "ann"),
                ("to", "group: <g@x>;"),
                ("to", "zed <z@x>, <y@x>"),
                ("cc", "group: <a@x>, <b@x>;"),
                ("bcc", "o\\'brien"),
                ("bcc", ""),
            ] {
                let hit = crate::message::address_contains(&msg, name.as_bytes(), needle);
                found.push((name, needle, hit));
                assert_eq!(
                    hit,
                    crate::message::address_contains(&kept, name.as_bytes(), needle),
                    "{name} {needle} in {}",
                    String::from_utf8_lossy(raw)
                );
            }
            assert_eq!(msg.sent_date(), kept.sent_date());
        }
        // Each needle is in some header, so the comparisons are not all of misses.
        for (name, needle, _) in &found {
            assert!(
                found
                    .iter()
                    .any(|f| (f.0, f.1, f.2) == (*name, *needle, true)),
                "{name} {needle} found nowhere"
            );
        }
    }

    #[test]
    fn huge_headers_are_not_kept() {
        let mut raw = b"To: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_FIELDS + 1));
        raw.extend_from_slice(b"\r\n\r\n");
        assert_eq!(kept_fields(&raw), None);
    }
}
