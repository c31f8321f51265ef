//! SEARCH text matching (RFC 3501 §6.4.4): case-insensitive substring match
//! on decoded text. Header values have their RFC 2047 encoded words decoded;
//! bodies of text parts are transfer-decoded and converted to UTF-8.
//! Case folding is i;unicode-casemap (RFC 5051, as I18NLEVEL=1 asks) on both
//! sides: case, canonical and compatibility equivalents match (`cafe` with
//! a combining accent is found as `café`, and `cafe` in it too). [`SearchText`] holds
//! one message's decoded text so that a search's keys share one decoding.

use super::Message;
use super::casemap::fold;
use super::decode;
use super::header;
use super::mime::{self, Part, PartKind};
use std::cell::{Cell, OnceCell, RefCell};

/// A SEARCH string, case-folded once for all the messages it is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle(String);

impl Needle {
    /// Folds `text` (already UTF-8) as the haystacks are folded.
    pub fn new(text: &str) -> Needle {
        Needle(fold(text))
    }

    fn found_in(&self, folded_haystack: &str) -> bool {
        folded_haystack.contains(self.0.as_str())
    }
}

/// One message as SEARCH sees it. Each header field and each text part is
/// decoded and case-folded at most once, when a key first needs it, and then
/// shared by every key of the search: a search with hundreds of BODY or TEXT
/// keys costs one decoding of the message, and a message that a flag key has
/// already decided is never decoded. It lives for one message, so what it
/// holds is bounded by that message's decoded text, plus 12 bytes a header
/// field: a header of millions of fields is not millions of anything larger.
pub struct SearchText<'m> {
    msg: &'m Message<'m>,
    fields: OnceCell<Vec<FieldSlot>>,
    /// The folded lines of the fields decoded so far, back to back.
    folded: RefCell<String>,
    parts: OnceCell<Vec<TextPart<'m>>>,
}

/// One header field: where it starts in the header (it is read again from
/// there when needed), and where its folded line `name: decoded value` lies
/// in [`SearchText::folded`] once decoded. Offsets are u32 to keep a slot
/// small: fields past 4 GiB of header are not searched, and a line that
/// would lie past 4 GiB of folded text is decoded again each time.
struct FieldSlot {
    start: u32,
    line_at: Cell<u32>,
    line_len: Cell<u32>,
}

/// `line_at` of a field not decoded yet.
const NOT_FOLDED: u32 = u32::MAX;

impl FieldSlot {
    fn new(start: u32) -> FieldSlot {
        FieldSlot {
            start,
            line_at: Cell::new(NOT_FOLDED),
            line_len: Cell::new(0),
        }
    }
}

/// `name: decoded value`, folded, and the byte offset of the value in it.
fn fold_field(field: &header::Field<'_>) -> (String, usize) {
    #[cfg(test)]
    decode_counts::FIELDS.with(|c| c.set(c.get() + 1));
    // Folding the name and the value apart gives the same string as
    // folding the whole line: the fold maps character by character, and
    // nothing decomposes across ": ".
    let mut line = fold(&String::from_utf8_lossy(field.name));
    line.push_str(": ");
    let at = line.len();
    line.push_str(&fold(&decode::decode_words(&header::unfold(field.value))));
    if is_address_field(field.name) {
        // The addresses as parsed too (comments out, `Name <user@host>`),
        // on lines of their own so no needle spans the two forms: RFC 3501
        // asks for a match in the field, and a client searching for
        // `user@host` means the address, however the sender wrote it.
        let addresses = super::envelope::address_text(field.value);
        line.push('\n');
        line.push_str(&fold(&decode::decode_words(&addresses)));
    }
    (line, at)
}

fn is_address_field(name: &[u8]) -> bool {
    [&b"from"[..], b"to", b"cc", b"bcc", b"sender", b"reply-to"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

struct TextPart<'m> {
    data: &'m [u8],
    part: &'m Part,
    /// The body, transfer-decoded, converted to UTF-8 and folded.
    folded: OnceCell<String>,
}

impl TextPart<'_> {
    fn folded(&self) -> &str {
        self.folded.get_or_init(|| {
            #[cfg(test)]
            decode_counts::PARTS.with(|c| c.set(c.get() + 1));
            let encoding = header::first_value(
                mime::slice(self.data, &self.part.header),
                b"content-transfer-encoding",
            )
            .unwrap_or_default();
            let bytes = decode::transfer_decode(&encoding, mime::slice(self.data, &self.part.body));
            fold(&decode::to_utf8(self.part.content.param("charset"), &bytes))
        })
    }
}

/// Every text part under `part`, depth first.
fn collect_text_parts<'m>(data: &'m [u8], part: &'m Part, out: &mut Vec<TextPart<'m>>) {
    match &part.kind {
        PartKind::Multipart(children) => {
            for c in children {
                collect_text_parts(data, c, out);
            }
        }
        PartKind::Message(inner) => collect_text_parts(data, inner, out),
        PartKind::Single => {
            if part.content.is_type("text") {
                out.push(TextPart {
                    data,
                    part,
                    folded: OnceCell::new(),
                });
            }
        }
    }
}

impl<'m> SearchText<'m> {
    pub fn new(msg: &'m Message<'m>) -> SearchText<'m> {
        SearchText {
            msg,
            fields: OnceCell::new(),
            folded: RefCell::new(String::new()),
            parts: OnceCell::new(),
        }
    }

    /// The message itself, for keys that read it otherwise (SENT*).
    pub fn message(&self) -> &'m Message<'m> {
        self.msg
    }

    fn fields(&self) -> &[FieldSlot] {
        self.fields.get_or_init(|| {
            let header = self.msg.header();
            // Counted first, so that the list is allocated once, at its size.
            let mut slots = Vec::with_capacity(header::fields(header).count());
            for f in header::fields(header) {
                match u32::try_from(f.start) {
                    Ok(start) => slots.push(FieldSlot::new(start)),
                    Err(_) => break,
                }
            }
            slots
        })
    }

    /// The field a slot stands for, read again from the header.
    fn field(&self, slot: &FieldSlot) -> Option<header::Field<'m>> {
        header::field_at(self.msg.header(), slot.start as usize)
    }

    /// Calls `f` with the folded line of `field` (the field of `slot`) and
    /// the offset of its value in it, decoding the field the first time.
    fn with_line(
        &self,
        slot: &FieldSlot,
        field: &header::Field<'_>,
        f: impl FnOnce(&str, usize) -> bool,
    ) -> bool {
        if slot.line_at.get() != NOT_FOLDED {
            let at = slot.line_at.get() as usize;
            let folded = self.folded.borrow();
            if let Some(line) = folded.get(at..at + slot.line_len.get() as usize) {
                // Names are printable ASCII, which folds to as many bytes.
                return f(line, field.name.len() + 2);
            }
        }
        let (line, value_at) = fold_field(field);
        let mut folded = self.folded.borrow_mut();
        if let (Ok(at), Ok(len), Ok(_)) = (
            u32::try_from(folded.len()),
            u32::try_from(line.len()),
            u32::try_from(folded.len() + line.len()),
        ) {
            folded.push_str(&line);
            slot.line_at.set(at);
            slot.line_len.set(len);
        }
        drop(folded);
        f(&line, value_at)
    }

    fn parts(&self) -> &[TextPart<'m>] {
        self.parts.get_or_init(|| {
            let mut out = Vec::new();
            collect_text_parts(self.msg.data, &self.msg.root, &mut out);
            out
        })
    }

    /// Does the header field `name` contain `needle`? Encoded words are
    /// decoded first. An empty needle matches if the field exists.
    pub fn header_contains(&self, name: &[u8], needle: &Needle) -> bool {
        let header = self.msg.header();
        self.fields().iter().any(|slot| {
            // A field called `name` starts with it: most fields are passed
            // over on that, without being read again.
            let start = slot.start as usize;
            let named = header
                .get(start..start + name.len())
                .is_some_and(|b| b.eq_ignore_ascii_case(name));
            named
                && self.field(slot).is_some_and(|field| {
                    field.name.eq_ignore_ascii_case(name)
                        && (needle.0.is_empty()
                            || self.with_line(slot, &field, |line, at| {
                                needle.found_in(line.get(at..).unwrap_or_default())
                            }))
                })
        })
    }

    /// Does the body (every text part, transfer- and charset-decoded)
    /// contain `needle`? Parts are decoded in order until one matches.
    pub fn body_contains(&self, needle: &Needle) -> bool {
        needle.0.is_empty() || self.parts().iter().any(|p| needle.found_in(p.folded()))
    }

    /// TEXT key: the header (any field, name or decoded value) or the body.
    pub fn text_contains(&self, needle: &Needle) -> bool {
        needle.0.is_empty()
            || self.fields().iter().any(|slot| {
                self.field(slot).is_some_and(|field| {
                    self.with_line(slot, &field, |line, _| needle.found_in(line))
                })
            })
            || self.body_contains(needle)
    }
}

/// Does the header field `name` contain `needle` (already UTF-8)? The
/// one-key form of [`SearchText::header_contains`].
pub fn header_contains(msg: &Message, name: &[u8], needle: &str) -> bool {
    SearchText::new(msg).header_contains(name, &Needle::new(needle))
}

/// The one-key form of [`SearchText::body_contains`].
pub fn body_contains(msg: &Message, needle: &str) -> bool {
    SearchText::new(msg).body_contains(&Needle::new(needle))
}

/// The one-key form of [`SearchText::text_contains`].
pub fn text_contains(msg: &Message, needle: &str) -> bool {
    SearchText::new(msg).text_contains(&Needle::new(needle))
}

/// Converts a SEARCH string in `charset` (None = US-ASCII, read as UTF-8) to
/// UTF-8; Err(()) for a charset we do not know (the caller sends BADCHARSET).
// The unit error is the agreed interface: the only failure is "unknown charset".
#[allow(clippy::result_unit_err)]
pub fn decode_search_string(charset: Option<&str>, s: &[u8]) -> Result<String, ()> {
    let utf8 = || String::from_utf8_lossy(s).into_owned();
    let Some(label) = charset else {
        return Ok(utf8());
    };
    let label = label.trim();
    if label.eq_ignore_ascii_case("us-ascii")
        || label.eq_ignore_ascii_case("ascii")
        || label.eq_ignore_ascii_case("utf-8")
    {
        return Ok(utf8());
    }
    match encoding_rs::Encoding::for_label(label.as_bytes()) {
        Some(enc) => Ok(enc.decode_without_bom_handling(s).0.into_owned()),
        None => Err(()),
    }
}

/// How many header fields and text parts have been decoded on this thread,
/// for tests that check each is decoded once per search.
#[cfg(test)]
pub(crate) mod decode_counts {
    use std::cell::Cell;
    thread_local! {
        pub(crate) static FIELDS: Cell<usize> = const { Cell::new(0) };
        pub(crate) static PARTS: Cell<usize> = const { Cell::new(0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::fixtures::NESTED;

    #[test]
    fn header_matching_decodes_encoded_words() {
        let m = b"From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>\r\nSubject: =?ISO-8859-1?Q?Andr=E9?= Pirard\r\nX-Empty:\r\n\r\nx";
        let msg = Message::parse(m);
        assert!(header_contains(&msg, b"from", "JØRN"));
        assert!(header_contains(&msg, b"FROM", "keld@dkuug"));
        assert!(header_contains(&msg, b"subject", "andré pir"));
        assert!(!header_contains(&msg, b"subject", "=?ISO"));
        assert!(header_contains(&msg, b"x-empty", ""));
        assert!(!header_contains(&msg, b"cc", ""));
        assert!(!header_contains(&msg, b"subject", "absent"));
    }

    #[test]
    fn addresses_are_found_as_parsed() {
        // imaptest search-addresses: comments inside the address.
        let raw = b"From: <user-from (comment)@ (comment) domain.org>\r\nTo: x@y\r\n\r\nbody\r\n";
        let msg = Message::parse(raw);
        assert!(header_contains(&msg, b"From", "user-from@domain.org"));
        assert!(!header_contains(&msg, b"To", "user-from@domain.org"));
        // The raw text is still searched: the comment's words are found.
        assert!(header_contains(&msg, b"From", "comment"));
    }

    #[test]
    fn body_matching_decodes_transfer_encodings() {
        let msg = Message::parse(NESTED);
        assert!(body_contains(&msg, "HELLO WORLD")); // base64 part
        assert!(body_contains(&msg, "CAFÉ AU LAIT")); // QP soft break, UTF-8
        assert!(body_contains(&msg, "inner text")); // inside message/rfc822
        assert!(!body_contains(&msg, "aGVsbG8")); // encoded form is not searched
        assert!(!body_contains(&msg, "preamble"));
        assert!(!body_contains(&msg, "iVBO")); // image part is not text
        assert!(!body_contains(&msg, "Subject: test"));
        assert!(text_contains(&msg, "subject: TEST"));
        assert!(text_contains(&msg, "café"));
        assert!(!text_contains(&msg, "absent"));
    }

    #[test]
    fn body_charsets() {
        let m = b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n";
        assert!(body_contains(&Message::parse(m), "grüße"));
        let m = b"Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n8NLJ18XU\r\n";
        assert!(body_contains(&Message::parse(m), "привет"));
        let m = "Subject: x\r\n\r\nplain UTF-8 ünïcode\r\n";
        assert!(body_contains(&Message::parse(m.as_bytes()), "ÜNÏ"));
    }

    #[test]
    fn search_string_charsets() {
        assert_eq!(decode_search_string(None, b"abc"), Ok("abc".to_owned()));
        assert_eq!(
            decode_search_string(Some("UTF-8"), "é".as_bytes()),
            Ok("é".to_owned())
        );
        assert_eq!(
            decode_search_string(Some("us-ascii"), b"abc"),
            Ok("abc".to_owned())
        );
        assert_eq!(
            decode_search_string(Some("ISO-8859-1"), b"\xe9"),
            Ok("é".to_owned())
        );
        assert_eq!(decode_search_string(Some("x-nonsense"), b"a"), Err(()));
    }

    #[test]
    fn many_fields_are_searched_and_each_decoded_once() {
        let mut m = Vec::new();
        for i in 0..20_000 {
            m.extend_from_slice(format!("X-Filler: {i}\r\n").as_bytes());
        }
        m.extend_from_slice(b"Subject : =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n");
        let msg = Message::parse(&m);
        let text = SearchText::new(&msg);
        let decoded = || decode_counts::FIELDS.with(|c| c.get());
        decode_counts::FIELDS.with(|c| c.set(0));
        // A header key decodes only the fields of its name.
        assert!(text.header_contains(b"subject", &Needle::new("CAFÉ")));
        assert_eq!(decoded(), 1);
        assert!(text.header_contains(b"X-FILLER", &Needle::new("19999")));
        assert!(!text.header_contains(b"x-filler", &Needle::new("20000")));
        assert!(!text.header_contains(b"x-fille", &Needle::new("")));
        assert_eq!(decoded(), 20_001);
        // TEXT reuses them all.
        assert!(text.text_contains(&Needle::new("x-filler: 12345")));
        assert!(text.text_contains(&Needle::new("subject: café")));
        assert!(!text.text_contains(&Needle::new("nowhere")));
        assert_eq!(decoded(), 20_001);
    }
}
