//! One RFC 5322/MIME message in memory: header lookup, the MIME tree with
//! byte offsets, ENVELOPE, BODY/BODYSTRUCTURE, BODY[section] extraction,
//! Date parsing, charset decoding, SEARCH text matching, and the SORT and
//! THREAD keys of a header (base subject, address keys, message ids).
//!
//! This layer never touches the filesystem and knows no IMAP state. Input is
//! the message in CRLF form (see [`to_crlf`]); every offset and size computed
//! here is in that form, which is what IMAP counts and sends.

mod base_subject;
mod binary_parts;
mod bodystructure;
mod casemap;
mod crlf;
pub mod date;
pub mod decode;
mod envelope;
mod header;
mod mime;
mod quote;
mod rfc822;
mod search;
mod section;
pub use section::UnknownCte;
mod preview;
mod sort_keys;

use std::borrow::Cow;

use crate::protocol::command::Section;

pub use binary_parts::{BinaryScan, base64_binary_parts};
pub use crlf::{ToLf, crlf_len, to_crlf, to_crlf_into};
pub(crate) use header::{fields as header_fields, has_end_line as header_has_end_line};
#[cfg(test)]
pub(crate) use search::decode_counts;
pub use search::{
    Needle, SearchText, address_contains, body_contains, decode_search_string, header_contains,
    subject_contains, text_contains,
};
pub use sort_keys::SortKeys;

/// Where the empty line ending the header block at the start of `data` ends (LF or CRLF
/// line ends), if `data` holds it: a header read in pieces is complete once this is found.
pub fn header_end(data: &[u8]) -> Option<usize> {
    let mut start = 0;
    while start < data.len() {
        let end = start + memchr::memchr(b'\n', &data[start..])? + 1;
        let line = &data[start..end];
        if line == b"\n" || line == b"\r\n" {
            return Some(end);
        }
        start = end;
    }
    None
}

/// The length of the header block of a message: up to and including the empty line that
/// ends it, or the whole text when there is none.
pub fn header_length(data: &[u8]) -> usize {
    header_end(data).unwrap_or(data.len())
}

/// A parsed message borrowing its CRLF bytes.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    data: &'a [u8],
    /// The top-level entity: the message header and its body's MIME tree.
    root: mime::Part,
}

impl<'a> Message<'a> {
    /// Parses `data` (CRLF line ends). Never fails: malformed MIME degrades
    /// to text/plain, and a multipart with no boundary found holds its body as
    /// one part.
    pub fn parse(data: &'a [u8]) -> Message<'a> {
        let root = mime::parse_message(data);
        Message { data, root }
    }

    /// A header block alone (or a message of which only the header matters), its MIME
    /// structure not parsed: for ENVELOPE, HEADER.FIELDS, header SEARCH keys and the Date,
    /// which read the header only, at a fraction of [`Message::parse`]'s cost. Its body,
    /// if any, is one part of no type.
    pub fn header_only(data: &'a [u8]) -> Message<'a> {
        let end = header_length(data);
        Message {
            data,
            root: mime::Part {
                header: 0..end,
                body: end..data.len(),
                content: mime::ContentType::unparsed(),
                declared: false,
                is_mime: false,
                truncated: false,
                kind: mime::PartKind::Single,
            },
        }
    }

    /// The whole message.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Top-level header block including the empty line that ends it
    /// (BODY[HEADER], RFC822.HEADER).
    pub fn header(&self) -> &'a [u8] {
        mime::slice(self.data, &self.root.header)
    }

    /// Everything after the header block (BODY[TEXT], RFC822.TEXT).
    pub fn text(&self) -> &'a [u8] {
        mime::slice(self.data, &self.root.body)
    }

    /// Appends the IMAP ENVELOPE list
    /// `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
    pub fn write_envelope(&self, out: &mut Vec<u8>) {
        envelope::write_envelope(out, self.header());
    }

    /// Appends BODYSTRUCTURE (`extensible`, with extension data) or BODY.
    pub fn write_body_structure(&self, out: &mut Vec<u8>, extensible: bool) {
        bodystructure::write_part(out, self.data, &self.root, extensible);
    }

    /// The bytes of BODY[section] before any partial slicing, NUL sent as
    /// 0x80; None when the part number does not exist (the caller then
    /// sends an empty string).
    pub fn section(&self, section: &Section) -> Option<Cow<'a, [u8]>> {
        section::extract(self.data, &self.root, section)
    }

    /// The bytes of BINARY[part] (RFC 3516), transfer encoding undone.
    pub fn binary(&self, part: &[u32]) -> Result<Cow<'a, [u8]>, UnknownCte> {
        section::binary(self.data, &self.root, part)
    }

    /// Raw (unfolded, CRLF-free) values of every top-level header field
    /// called `name` (case-insensitive), in message order.
    pub fn header_values(&self, name: &[u8]) -> Vec<Vec<u8>> {
        header::values(self.header(), name)
    }

    /// `bytes` ready for an IMAP literal: NUL (which RFC 3501 does not
    /// allow in one) as 0x80, as in [`Message::section`].
    pub fn literal_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
        section::without_nul(Cow::Borrowed(bytes))
    }

    /// The first field called `name`, unfolded and with RFC 2047 encoded words
    /// decoded to UTF-8 (for SORT keys and base subjects).
    pub fn header_decoded(&self, name: &[u8]) -> Option<String> {
        header::first_value(self.header(), name).map(|v| decode::decode_words(&v))
    }

    /// RFC 8970 PREVIEW text (see `preview`), of a message from [`Message::parse`].
    pub fn preview(&self) -> String {
        preview::preview(self.data, &self.root)
    }

    /// The Date: header as (unix time UTC, the header's own zone offset in
    /// seconds); `unix + offset` gives the sender's local date for SENTON etc.
    /// None if absent or unparsable.
    pub fn sent_date(&self) -> Option<(i64, i32)> {
        header::first_value(self.header(), b"date").and_then(|v| date::parse_date(&v))
    }
}

/// Test messages shared by the unit tests of several submodules.
#[cfg(test)]
pub(crate) mod fixtures {
    /// multipart/mixed holding: text, a base64 text attachment (RFC 3501
    /// §7.4.2 example values), a message/rfc822 with a multipart/alternative
    /// inside, and a multipart/related with an image.
    pub const NESTED: &[u8] = b"From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: test\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
hello\r\n\
--outer\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n\
Content-ID: <960723163407.20117h@cac.washington.edu>\r\n\
Content-Description: Compiler diff\r\n\
Content-Transfer-Encoding: BASE64\r\n\
\r\n\
aGVsbG8gd29ybGQ=\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: c@d\r\n\
Subject: inner\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain\r\n\
\r\n\
inner text\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
Content-Disposition: inline\r\n\
\r\n\
<p>caf=C3=A9 =\r\n\
au lait</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: multipart/related; boundary=rel\r\n\
\r\n\
--rel\r\n\
Content-Type: image/png\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename*0*=UTF-8''%E2%82%AC; filename*1=\".png\"\r\n\
Content-Language: en, de\r\n\
Content-Location: http://x/y\r\n\
Content-MD5: abc=\r\n\
\r\n\
iVBO\r\n\
--rel--\r\n\
--outer--\r\n\
epilogue\r\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    // An LF-only file as stored in a maildir, converted first as the session does.
    const LF_FILE: &[u8] = b"Date: Fri, 21 Nov 1997 09:55:06 -0600\nSubject: Saying\n Hello\nTo: b@c\nsubject: second\n\nThis is a message.\nTwo lines.\n";

    #[test]
    fn header_lengths() {
        assert_eq!(header_length(b"A: b\n\nbody\n"), 6);
        assert_eq!(header_length(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_length(b"A: b\n"), 5);
        assert_eq!(header_length(b"\nbody"), 1);
        assert_eq!(header_end(b"A: b\nC: d"), None);
        assert_eq!(header_end(b"A: b\n\n"), Some(6));
        assert_eq!(header_end(b"A: b\n \nC: d\n\r\nx"), Some(14));
    }

    #[test]
    fn lf_file_converted_then_parsed() {
        let data = to_crlf(LF_FILE);
        assert_eq!(data.len() as u64, crlf_len(LF_FILE));
        let msg = Message::parse(&data);
        assert_eq!(
            msg.header(),
            b"Date: Fri, 21 Nov 1997 09:55:06 -0600\r\nSubject: Saying\r\n Hello\r\nTo: b@c\r\nsubject: second\r\n\r\n"
        );
        assert_eq!(msg.text(), b"This is a message.\r\nTwo lines.\r\n");
        assert_eq!(msg.header().len() + msg.text().len(), data.len());
        assert_eq!(
            msg.header_values(b"SUBJECT"),
            vec![b"Saying Hello".to_vec(), b"second".to_vec()]
        );
        assert_eq!(msg.header_values(b"cc"), Vec::<Vec<u8>>::new());
        assert_eq!(msg.sent_date(), Some((880_127_706, -21_600)));
    }

    #[test]
    fn degenerate_messages() {
        let msg = Message::parse(b"");
        assert_eq!(msg.header(), b"");
        assert_eq!(msg.text(), b"");
        let mut out = Vec::new();
        msg.write_body_structure(&mut out, false);
        assert_eq!(
            out,
            b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
        );
        // No empty line: everything is header.
        let msg = Message::parse(b"Subject: x\r\n");
        assert_eq!(msg.header(), b"Subject: x\r\n");
        assert_eq!(msg.text(), b"");
        // Empty header.
        let msg = Message::parse(b"\r\nbody\r\n");
        assert_eq!(msg.header(), b"\r\n");
        assert_eq!(msg.text(), b"body\r\n");
        assert_eq!(msg.sent_date(), None);
    }

    /// Counts the top-level items of one IMAP parenthesized list that makes
    /// up all of `out` (quoted strings with escapes, literals, atoms, nested
    /// lists); panics when `out` is not exactly one well-formed list, which
    /// a client's parser would choke on.
    fn list_items(out: &[u8]) -> usize {
        let mut i = 0;
        let mut depth = 0usize;
        let mut items = 0;
        let mut at_item_start = true;
        while i < out.len() {
            let b = out[i];
            if depth == 1 && at_item_start && b != b' ' && b != b')' {
                items += 1;
            }
            at_item_start = false;
            match b {
                b'(' => {
                    depth += 1;
                    at_item_start = true;
                }
                b')' => {
                    depth = depth.checked_sub(1).expect("unbalanced )");
                    if depth == 0 {
                        assert_eq!(i + 1, out.len(), "text after the list: {out:?}");
                    }
                }
                b' ' => at_item_start = true,
                b'"' => {
                    i += 1;
                    while out[i] != b'"' {
                        assert!(
                            out[i] != b'\r' && out[i] != b'\n',
                            "CR/LF in a quoted string"
                        );
                        i += if out[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'{' => {
                    let close = i + out[i..].iter().position(|&c| c == b'}').expect("}");
                    let n: usize = std::str::from_utf8(&out[i + 1..close])
                        .unwrap()
                        .parse()
                        .expect("literal size");
                    assert_eq!(&out[close + 1..close + 3], b"\r\n");
                    i = close + 2 + n;
                }
                _ => assert!(depth > 0, "atom outside the list: {out:?}"),
            }
            i += 1;
        }
        assert_eq!(depth, 0, "unterminated list: {out:?}");
        items
    }

    fn exercise(data: &[u8]) {
        use crate::protocol::command::SectionText;
        let msg = Message::parse(data);
        let mut out = Vec::new();
        msg.write_envelope(&mut out);
        assert_eq!(list_items(&out), 10, "ENVELOPE has ten fields");
        for extensible in [true, false] {
            out.clear();
            msg.write_body_structure(&mut out, extensible);
            assert!(list_items(&out) >= 2, "a BODYSTRUCTURE: {out:?}");
        }
        let range = data.as_ptr_range();
        for part in [vec![], vec![1], vec![3], vec![3, 2], vec![4, 1, 1]] {
            for text in [
                None,
                Some(SectionText::Header),
                Some(SectionText::Text),
                Some(SectionText::Mime),
            ] {
                let whole = part.is_empty() && text.is_none();
                let section = msg.section(&Section {
                    part: part.clone(),
                    text,
                });
                // Sections are slices of the message, never invented bytes.
                if let Some(std::borrow::Cow::Borrowed(bytes)) = &section
                    && !bytes.is_empty()
                {
                    let r = bytes.as_ptr_range();
                    assert!(range.start <= r.start && r.end <= range.end);
                }
                if whole {
                    assert_eq!(section.as_deref(), Some(data), "BODY[] is the message");
                }
            }
        }
        let _ = (
            msg.sent_date(),
            body_contains(&msg, "é"),
            text_contains(&msg, "x"),
        );
    }

    #[test]
    fn truncated_and_garbled_input_never_panics() {
        let nested = fixtures::NESTED;
        for len in 0..=nested.len() {
            exercise(&nested[..len]);
        }
        let pieces: [&[u8]; 16] = [
            b"--outer",
            b"\r\n",
            b"\n",
            b"Content-Type: multipart/mixed; boundary=outer",
            b": ",
            b"\"",
            b"(",
            b")",
            b"<",
            b">",
            b"@",
            b",",
            b";",
            b"=?utf-8?b?",
            b"Content-Type: message/rfc822",
            b"\xff",
        ];
        let mut seed: u32 = 12345;
        for _ in 0..300 {
            let mut data = Vec::new();
            for _ in 0..60 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                data.extend_from_slice(pieces[(seed >> 16) as usize % pieces.len()]);
            }
            exercise(&data);
        }
    }

    #[test]
    fn decoded_header() {
        let msg = Message::parse(b"Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\r\n\r\n");
        assert_eq!(
            msg.header_decoded(b"subject").as_deref(),
            Some("If you can read this you understand the example.")
        );
    }
}
