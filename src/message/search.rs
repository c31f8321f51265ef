//! SEARCH text matching (RFC 3501 §6.4.4): case-insensitive substring match
//! on decoded text. Header values have their RFC 2047 encoded words decoded;
//! bodies of text parts are transfer-decoded and converted to UTF-8.
//! Case folding is Unicode `to_lowercase` on both sides. [`SearchText`] holds
//! one message's decoded text so that a search's keys share one decoding.

use super::Message;
use super::decode;
use super::header;
use super::mime::{self, Part, PartKind};
use std::cell::OnceCell;

/// A SEARCH string, case-folded once for all the messages it is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle(String);

impl Needle {
    /// Folds `text` (already UTF-8) as the haystacks are folded.
    pub fn new(text: &str) -> Needle {
        Needle(text.to_lowercase())
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
/// holds is bounded by that message's decoded text.
pub struct SearchText<'m> {
    msg: &'m Message<'m>,
    fields: OnceCell<Vec<FoldedField<'m>>>,
    parts: OnceCell<Vec<TextPart<'m>>>,
}

struct FoldedField<'m> {
    name: &'m [u8],
    value: &'m [u8],
    /// `name: decoded value`, folded, and the byte offset of the value in it.
    line: OnceCell<(String, usize)>,
}

impl FoldedField<'_> {
    fn line(&self) -> &str {
        &self.folded().0
    }

    fn value(&self) -> &str {
        let (line, at) = self.folded();
        line.get(*at..).unwrap_or_default()
    }

    fn folded(&self) -> &(String, usize) {
        self.line.get_or_init(|| {
            #[cfg(test)]
            decode_counts::FIELDS.with(|c| c.set(c.get() + 1));
            // Folding the name and the value apart gives the same string as
            // folding the whole line: the only context-dependent lowercase
            // mapping (final sigma) looks across case-ignorable characters
            // only, and the space after the colon is not one.
            let mut line = String::from_utf8_lossy(self.name).to_lowercase();
            line.push_str(": ");
            let at = line.len();
            line.push_str(&decode::decode_words(&header::unfold(self.value)).to_lowercase());
            (line, at)
        })
    }
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
            decode::to_utf8(self.part.content.param("charset"), &bytes).to_lowercase()
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
            parts: OnceCell::new(),
        }
    }

    /// The message itself, for keys that read it otherwise (SENT*).
    pub fn message(&self) -> &'m Message<'m> {
        self.msg
    }

    fn fields(&self) -> &[FoldedField<'m>] {
        self.fields.get_or_init(|| {
            header::fields(self.msg.header())
                .map(|f| FoldedField {
                    name: f.name,
                    value: f.value,
                    line: OnceCell::new(),
                })
                .collect()
        })
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
        self.fields()
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .any(|f| needle.0.is_empty() || needle.found_in(f.value()))
    }

    /// Does the body (every text part, transfer- and charset-decoded)
    /// contain `needle`? Parts are decoded in order until one matches.
    pub fn body_contains(&self, needle: &Needle) -> bool {
        needle.0.is_empty() || self.parts().iter().any(|p| needle.found_in(p.folded()))
    }

    /// TEXT key: the header (any field, name or decoded value) or the body.
    pub fn text_contains(&self, needle: &Needle) -> bool {
        needle.0.is_empty()
            || self.fields().iter().any(|f| needle.found_in(f.line()))
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
}
