//! Base64 for the parts of an APPENDed message that the maildir could not
//! give back byte for byte.
//!
//! A maildir file keeps LF line ends (the store converts CRLF to LF, FETCH
//! converts back), so in a part whose Content-Transfer-Encoding is
//! `binary` a bare LF, a CR before a CRLF or a final CR would come back
//! changed, and NUL, which a part in `7bit`/`8bit` (or none) may not hold
//! at all, could only be sent as 0x80 in BODY[]. Such a leaf part has its
//! body re-encoded as base64 (76-character lines) and its
//! Content-Transfer-Encoding field set to `base64`; every other byte of the
//! message stays as it was, and a message without such a part is not
//! touched (no copy is made).
//!
//! Why this is allowed: RFC 3516 §4.3 (APPEND with literal8) says that a
//! server whose mailbox cannot store binary content has to refuse the
//! APPEND with NO [UNKNOWN-CTE]. A maildir can hold the content, only not
//! with binary line ends as they came; and RFC 3501 §6.3.11 lets a server
//! that cannot keep APPEND data as sent convert it reversibly with a MIME
//! content transfer encoding. Converting is the kinder answer: BINARY[]
//! undoes base64, so a client asking for the content gets the exact octets
//! it sent, and BODY[] gets 7-bit text that survives any client. Dovecot
//! does the same for literal8 APPENDs (`lib-mail/istream-binary-converter.c`),
//! which imaptest's `append-binary` checks.
//!
//! What is left alone, and so stored as before: bare LFs in `7bit`/`8bit`
//! parts (there a line end is a line end, RFC 2045 §2.7-2.8, and the store's
//! normalisation is its meaning), parts in `base64`, `quoted-printable` or
//! an unknown encoding, anything under multipart/signed or
//! multipart/encrypted (re-encoding would break the signature), a message
//! that is not MIME at all, and a message whose MIME tree reached
//! [`super::mime::MAX_PARTS`]. After converting, the result is parsed again
//! and must have the same tree with the same (decoded) contents; if not,
//! the message is stored unconverted.
//!
//! This module only transforms bytes; it does not know IMAP or the store.

use std::ops::Range;

use super::header;
use super::mime::{self, Part, PartKind};

/// Base64 characters per line (RFC 2045 §6.8: at most 76).
const LINE_CHARS: usize = 76;

/// The message with its binary leaf parts in base64, or None when nothing
/// had to change (or could not be changed safely): then the message is
/// stored as it came. `data` is the message as the client sent it (CRLF or
/// LF line ends).
pub fn base64_binary_parts(data: &[u8]) -> Option<Vec<u8>> {
    if !may_need_base64(data) {
        return None;
    }
    let root = mime::parse_message(data);
    if count_parts(&root) >= mime::MAX_PARTS - 1 {
        // The last part may hold undelimited parts after it; re-encoding
        // it would hide them.
        return None;
    }
    let mut edits = Vec::new();
    collect(data, &root, &mut edits);
    if edits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 2);
    let mut copied = 0;
    let mut converted = Vec::new();
    for edit in &edits {
        out.extend_from_slice(data.get(copied..edit.range.start)?);
        out.extend_from_slice(&edit.with);
        copied = edit.range.end;
        if edit.is_body {
            converted.push(edit.range.start);
        }
    }
    out.extend_from_slice(data.get(copied..)?);
    let new_root = mime::parse_message(&out);
    same_content(data, &root, &out, &new_root, &converted).then_some(out)
}

/// Cheap test: can [`base64_binary_parts`] change `data` at all? Only a
/// NUL or the word `binary` (in a Content-Transfer-Encoding field) makes a
/// part need converting.
pub fn may_need_base64(data: &[u8]) -> bool {
    let mut scan = BinaryScan::default();
    scan.feed(data);
    scan.found()
}

/// [`may_need_base64`] over a message read in pieces (a spooled APPEND),
/// without holding it whole.
#[derive(Debug, Default)]
pub struct BinaryScan {
    /// The last bytes of the previous piece, for a word cut between two.
    carry: Vec<u8>,
    found: bool,
}

const WORD: &[u8] = b"binary";

impl BinaryScan {
    pub fn feed(&mut self, piece: &[u8]) {
        if self.found {
            return;
        }
        if memchr::memchr(0, piece).is_some() {
            self.found = true;
            return;
        }
        let mut joined = std::mem::take(&mut self.carry);
        joined.extend_from_slice(piece.get(..WORD.len()).unwrap_or(piece));
        if contains_word(&joined) || contains_word(piece) {
            self.found = true;
            return;
        }
        // Keep the tail of what has been seen (which may be shorter than a
        // word when the pieces are tiny).
        let keep = WORD.len() - 1;
        let tail = if piece.len() >= keep {
            piece.get(piece.len() - keep..).unwrap_or_default().to_vec()
        } else {
            let start = joined.len().saturating_sub(keep);
            joined.get(start..).unwrap_or_default().to_vec()
        };
        self.carry = tail;
    }

    pub fn found(&self) -> bool {
        self.found
    }
}

/// Does `data` hold `binary`, in any case?
fn contains_word(data: &[u8]) -> bool {
    memchr::memchr2_iter(b'b', b'B', data).any(|i| {
        data.get(i..i + WORD.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(WORD))
    })
}

/// One replacement of the output: `range` of the input becomes `with`.
struct Edit {
    range: Range<usize>,
    with: Vec<u8>,
    /// A part's body (its start identifies the part for the check after).
    is_body: bool,
}

fn count_parts(part: &Part) -> usize {
    1 + match &part.kind {
        PartKind::Single => 0,
        PartKind::Message(inner) => count_parts(inner),
        PartKind::Multipart(children) => children.iter().map(count_parts).sum(),
    }
}

/// Adds the edits for `part` and the parts inside it, in data order.
fn collect(data: &[u8], part: &Part, edits: &mut Vec<Edit>) {
    match &part.kind {
        PartKind::Multipart(children) => {
            if part.content.is("multipart", "signed") || part.content.is("multipart", "encrypted") {
                return;
            }
            for child in children {
                collect(data, child, edits);
            }
        }
        PartKind::Message(inner) => collect(data, inner, edits),
        PartKind::Single => {
            if let Some((header_edit, body_edit)) = convert_leaf(data, part) {
                edits.push(header_edit);
                edits.push(body_edit);
            }
        }
    }
}

/// The two edits that put a leaf part in base64, if it needs them and can have them.
fn convert_leaf(data: &[u8], part: &Part) -> Option<(Edit, Edit)> {
    if part.truncated || !part.is_mime {
        return None;
    }
    let head = mime::slice(data, &part.header);
    if !header::has_end_line(head) {
        return None;
    }
    let mut cte_fields =
        header::fields(head).filter(|f| f.name.eq_ignore_ascii_case(b"content-transfer-encoding"));
    let field = cte_fields.next();
    if cte_fields.next().is_some() {
        // Two encodings named: which one a reader believes is anyone's guess.
        return None;
    }
    let encoding = field
        .map(|f| f.full_value().trim_ascii().to_ascii_lowercase())
        .unwrap_or_default();
    let body = mime::slice(data, &part.body);
    let at_end = part.body.end == data.len();
    let needed = match encoding.as_slice() {
        b"binary" => !survives_storage(body, at_end),
        b"" | b"7bit" | b"8bit" => memchr::memchr(0, body).is_some(),
        _ => false,
    };
    if !needed {
        return None;
    }
    // The header's own line end, for the lines written into it and the body.
    let eol: &[u8] = if head.ends_with(b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    let header_edit = match field {
        Some(f) => {
            let start = part.header.start + f.start;
            let mut with = f.name.to_vec();
            with.extend_from_slice(b": base64");
            with.extend_from_slice(eol);
            Edit {
                range: start..start + f.raw.len(),
                with,
                is_body: false,
            }
        }
        None => {
            // Before the empty line that ends the header.
            let at = part.header.end - eol.len();
            let mut with = b"Content-Transfer-Encoding: base64".to_vec();
            with.extend_from_slice(eol);
            Edit {
                range: at..at,
                with,
                is_body: false,
            }
        }
    };
    let body_edit = Edit {
        range: part.body.clone(),
        with: base64_lines(body, eol),
        is_body: true,
    };
    Some((header_edit, body_edit))
}

/// Would a `binary` body come back from the maildir as it went in? The
/// store turns CRLF into LF (a lone CR stays) and adds a final LF to a
/// message without one; FETCH turns every LF into CRLF. So a bare LF, a CR
/// right before a CRLF or at the very end (where the delimiter's line end
/// follows), a missing final line end at the end of the message, and NUL
/// (which BODY[] cannot send) all break it.
fn survives_storage(body: &[u8], at_end: bool) -> bool {
    if memchr::memchr(0, body).is_some() || body.ends_with(b"\r") {
        return false;
    }
    if at_end && !body.is_empty() && !body.ends_with(b"\r\n") {
        return false;
    }
    memchr::memchr_iter(b'\n', body).all(|i| {
        i >= 1 && body.get(i - 1) == Some(&b'\r') && (i < 2 || body.get(i - 2) != Some(&b'\r'))
    })
}

/// `body` in base64, lines of [`LINE_CHARS`] joined by `eol`, without a
/// final line end (the one before a delimiter belongs to the delimiter).
pub(super) fn base64_lines(body: &[u8], eol: &[u8]) -> Vec<u8> {
    let per_line = LINE_CHARS / 4 * 3;
    let mut out = Vec::with_capacity(body.len() / 3 * 4 + body.len() / per_line * eol.len() + 8);
    for (i, chunk) in body.chunks(per_line).enumerate() {
        if i > 0 {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(crate::protocol::base64::encode(chunk).as_bytes());
    }
    out
}

/// The check after converting: the new tree has the old one's shape, each
/// converted part (named by its old body's start) decodes to the old body,
/// and every other leaf has the same bytes.
fn same_content(
    old_data: &[u8],
    old: &Part,
    new_data: &[u8],
    new: &Part,
    converted: &[usize],
) -> bool {
    match (&old.kind, &new.kind) {
        (PartKind::Multipart(a), PartKind::Multipart(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(a, b)| same_content(old_data, a, new_data, b, converted))
        }
        (PartKind::Message(a), PartKind::Message(b)) => {
            same_content(old_data, a, new_data, b, converted)
        }
        (PartKind::Single, PartKind::Single) => {
            let before = mime::slice(old_data, &old.body);
            let after = mime::slice(new_data, &new.body);
            if converted.contains(&old.body.start) {
                let cte = header::first_value(
                    mime::slice(new_data, &new.header),
                    b"Content-Transfer-Encoding",
                );
                cte.is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"base64"))
                    && super::decode::base64(after) == before
            } else {
                before == after
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// imaptest's `append-binary`: one part, CTE binary, NUL, 8-bit, bare
    /// LFs and a CRLF.
    const IMAPTEST: &[u8] = b"From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x2d\xe4\x0a\x0d\x0a\x0a";

    #[test]
    fn imaptest_message_becomes_base64() {
        let out = base64_binary_parts(IMAPTEST).expect("converted");
        assert_eq!(
            out,
            b"From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAC3kCg0KCg=="
        );
        let msg = crate::message::Message::parse(&out);
        assert_eq!(
            msg.binary(&[1]).unwrap().as_ref(),
            b"\x00\x2d\xe4\x0a\x0d\x0a\x0a"
        );
        assert!(out.iter().all(|&b| b < 0x80 && b != 0));
    }

    #[test]
    fn ordinary_messages_are_left_alone() {
        for m in [
            &b"Subject: hi\r\n\r\nbinary is a word here\r\n"[..],
            b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\nbare LF\r\n",
            // Binary content that survives the store: CRLF lines, lone CRs.
            b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n\xff\xfe a\rb\r\n",
            // Already base64, quoted-printable, unknown: not ours to judge.
            b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n\x00AA==\r\n",
            b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n\x00\n",
            // Not MIME: Content-* fields do not count.
            b"Content-Transfer-Encoding: binary\r\n\r\n\x00\n",
            // Two encodings named.
            b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\x00\n",
        ] {
            assert_eq!(base64_binary_parts(m), None, "{:?}", String::from_utf8_lossy(m));
        }
    }

    #[test]
    fn what_survives_storage() {
        assert!(survives_storage(b"a\r\nb\rc\r\n", true));
        assert!(survives_storage(b"a\r\nb", false));
        assert!(survives_storage(b"", true));
        assert!(!survives_storage(b"a\nb", false), "bare LF");
        assert!(!survives_storage(b"\nb", false), "bare LF first");
        assert!(!survives_storage(b"a\r\r\nb", false), "CR before CRLF");
        assert!(
            !survives_storage(b"a\r", false),
            "CR before the delimiter's line end"
        );
        assert!(!survives_storage(b"a\r\nb", true), "no final line end");
        assert!(!survives_storage(b"a\x00b", false), "NUL");
    }

    #[test]
    fn nested_parts_at_any_depth() {
        let m: &[u8] = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\npreamble\r\n--o\r\nContent-Type: text/plain\r\n\r\nkept\nas is\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: image/png\r\nContent-transfer-encoding:\r\n  BINARY\r\n\r\n\x89PNG\n\x1a\n\x00\r\n--i\r\nContent-Type: text/plain\r\n\r\nNUL\x00here\r\n--i--\r\n--o--\r\nepilogue\r\n";
        let out = base64_binary_parts(m).expect("converted");
        let expected: &[u8] = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\npreamble\r\n--o\r\nContent-Type: text/plain\r\n\r\nkept\nas is\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: image/png\r\nContent-transfer-encoding: base64\r\n\r\niVBORwoaCgA=\r\n--i\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nTlVMAGhlcmU=\r\n--i--\r\n--o--\r\nepilogue\r\n";
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected)
        );
        let msg = crate::message::Message::parse(&out);
        assert_eq!(
            msg.binary(&[2, 1]).unwrap().as_ref(),
            b"\x89PNG\n\x1a\n\x00"
        );
        assert_eq!(msg.binary(&[2, 2]).unwrap().as_ref(), b"NUL\x00here");
        assert_eq!(msg.binary(&[1]).unwrap().as_ref(), b"kept\nas is");
    }

    #[test]
    fn signed_content_is_not_touched() {
        let m: &[u8] = b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\r\n\r\n--s\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\n\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n";
        assert_eq!(base64_binary_parts(m), None);
    }

    #[test]
    fn lf_messages_and_long_bodies() {
        // A message sent with LF line ends gets LF lines; 76 characters a line.
        let mut m = b"MIME-Version: 1.0\nContent-Transfer-Encoding: binary\n\n".to_vec();
        let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        m.extend_from_slice(&body);
        let out = base64_binary_parts(&m).expect("converted");
        let blank = out
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("header end");
        let text = &out[blank + 2..];
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 1000usize.div_ceil(57));
        assert!(lines.iter().all(|l| l.len() <= 76 && !l.ends_with(b"\r")));
        assert_eq!(lines[0].len(), 76);
        assert_eq!(crate::message::decode::base64(text), body);
    }

    #[test]
    fn scan_finds_words_across_pieces() {
        let data = b"xxContent-Transfer-Encoding: BiNaRy\r\n";
        for at in 0..=data.len() {
            let mut scan = BinaryScan::default();
            scan.feed(&data[..at]);
            scan.feed(&data[at..]);
            assert!(scan.found(), "cut at {at}");
        }
        // One byte at a time.
        let mut scan = BinaryScan::default();
        for b in b"x binary y" {
            scan.feed(std::slice::from_ref(b));
        }
        assert!(scan.found());
        let mut scan = BinaryScan::default();
        for piece in [&b"bin"[..], b"ar", b"x y"] {
            scan.feed(piece);
        }
        assert!(!scan.found());
        assert!(may_need_base64(b"a\x00b"));
        assert!(!may_need_base64(b"Subject: 8bit\r\n\r\nhi\r\n"));
    }
}
