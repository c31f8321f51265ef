//! SEARCH text matching (RFC 3501 §6.4.4): case-insensitive substring match
//! on decoded text. Header values have their RFC 2047 encoded words decoded;
//! bodies of text parts are transfer-decoded and converted to UTF-8.
//! Case folding is Unicode `to_lowercase` on both sides.

use super::Message;
use super::decode;
use super::header;
use super::mime::{self, Part, PartKind};

fn contains_folded(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

/// Does the header field `name` contain `needle` (already UTF-8)? Encoded
/// words are decoded first. An empty needle matches if the field exists.
pub fn header_contains(msg: &Message, name: &[u8], needle: &str) -> bool {
    let needle = needle.to_lowercase();
    header::fields(msg.header())
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name))
        .any(|f| {
            needle.is_empty()
                || contains_folded(&decode::decode_words(&header::unfold(f.value)), &needle)
        })
}

/// Calls `visit` with the decoded text of every text part, depth first.
fn for_each_text_part(data: &[u8], part: &Part, visit: &mut dyn FnMut(&str) -> bool) -> bool {
    match &part.kind {
        PartKind::Multipart(children) => {
            children.iter().any(|c| for_each_text_part(data, c, visit))
        }
        PartKind::Message(inner) => for_each_text_part(data, inner, visit),
        PartKind::Single => {
            if !part.content.is_type("text") {
                return false;
            }
            let encoding = header::first_value(
                mime::slice(data, &part.header),
                b"content-transfer-encoding",
            )
            .unwrap_or_default();
            let bytes = decode::transfer_decode(&encoding, mime::slice(data, &part.body));
            let text = decode::to_utf8(part.content.param("charset"), &bytes);
            visit(&text)
        }
    }
}

/// Does the body (every text part, transfer- and charset-decoded) contain `needle`?
pub fn body_contains(msg: &Message, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    if needle.is_empty() {
        return true;
    }
    for_each_text_part(msg.data, &msg.root, &mut |text| {
        contains_folded(text, &needle)
    })
}

/// TEXT key: the header (any field, name or decoded value) or the body.
pub fn text_contains(msg: &Message, needle: &str) -> bool {
    let lower = needle.to_lowercase();
    if lower.is_empty() {
        return true;
    }
    let in_header = header::fields(msg.header()).iter().any(|f| {
        let line = format!(
            "{}: {}",
            String::from_utf8_lossy(f.name),
            decode::decode_words(&header::unfold(f.value))
        );
        contains_folded(&line, &lower)
    });
    in_header || body_contains(msg, needle)
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
