//! Decoders for the encodings found inside messages: Content-Transfer-Encoding
//! (base64, quoted-printable), RFC 2047 encoded words, RFC 2231 extended
//! parameter values, and charsets (via encoding_rs) to UTF-8.
//!
//! Every decoder is lenient: damaged input yields a best-effort result, never
//! an error, because SEARCH must still work on imperfect mail.

use encoding_rs::Encoding;
use std::borrow::Cow;

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn base64_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Base64 (RFC 2045 §6.8): characters outside the alphabet are ignored, as
/// the RFC asks; decoding stops at the first `=` pad.
pub fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in input {
        if b == b'=' {
            break;
        }
        let Some(v) = base64_value(b) else { continue };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7). `underscore_is_space` selects the RFC
/// 2047 "Q" variant. Soft line breaks vanish; malformed `=` stays literal.
pub fn quoted_printable(input: &[u8], underscore_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'=' => {
                let rest = input.get(i + 1..).unwrap_or_default();
                // Soft break: "=" then optional trailing whitespace then line end.
                let ws = rest
                    .iter()
                    .take_while(|&&c| c == b' ' || c == b'\t')
                    .count();
                let after_ws = rest.get(ws..).unwrap_or_default();
                if after_ws.starts_with(b"\r\n") {
                    i += 1 + ws + 2;
                    continue;
                }
                if after_ws.starts_with(b"\n") {
                    i += 1 + ws + 1;
                    continue;
                }
                match (
                    rest.first().and_then(|&c| hex_value(c)),
                    rest.get(1).and_then(|&c| hex_value(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'_' if underscore_is_space => {
                out.push(b' ');
                i += 1;
            }
            b' ' | b'\t' => {
                // Whitespace at the end of a line is transport padding,
                // which decoding deletes (RFC 2045 §6.7, rule 3).
                let rest = input.get(i..).unwrap_or_default();
                let ws = rest
                    .iter()
                    .take_while(|&&c| c == b' ' || c == b'\t')
                    .count();
                let after = rest.get(ws..).unwrap_or_default();
                let at_line_end =
                    after.is_empty() || after.starts_with(b"\r\n") || after.starts_with(b"\n");
                if !at_line_end {
                    out.extend_from_slice(rest.get(..ws).unwrap_or_default());
                }
                i += ws;
            }
            _ => {
                // A run of plain bytes goes over in one copy.
                let rest = input.get(i..).unwrap_or_default();
                let run = rest
                    .iter()
                    .position(|&c| {
                        matches!(c, b'=' | b' ' | b'\t') || (underscore_is_space && c == b'_')
                    })
                    .unwrap_or(rest.len())
                    .max(1);
                out.extend_from_slice(rest.get(..run).unwrap_or_default());
                i += run;
            }
        }
    }
    out
}

/// Decodes a body according to its Content-Transfer-Encoding value; identity
/// encodings (7bit, 8bit, binary, unknown) return the bytes unchanged.
pub fn transfer_decode(encoding: &[u8], body: &[u8]) -> Vec<u8> {
    let encoding = encoding.trim_ascii();
    if encoding.eq_ignore_ascii_case(b"base64") {
        base64(body)
    } else if encoding.eq_ignore_ascii_case(b"quoted-printable") {
        quoted_printable(body, false)
    } else {
        body.to_vec()
    }
}

/// The encoding_rs decoder for a MIME charset name, None when unknown.
/// RFC 2231 §5 allows a `*language` suffix on the charset, which is dropped.
pub fn charset(label: &[u8]) -> Option<&'static Encoding> {
    let label = label.split(|&b| b == b'*').next().unwrap_or_default();
    Encoding::for_label(label.trim_ascii())
}

/// Labels whose bytes are read as UTF-8: Dovecot's `charset_is_utf8`, which
/// takes US-ASCII for UTF-8 so that 8-bit text mislabelled as ASCII is still
/// read (RFC 6532 makes UTF-8 the one 8-bit form a header may hold).
fn is_utf8_label(label: &[u8]) -> bool {
    let l = label.trim_ascii();
    [&b"us-ascii"[..], b"ascii", b"utf-8", b"utf8"]
        .iter()
        .any(|n| l.eq_ignore_ascii_case(n))
}

/// Appends `bytes`, read as UTF-8, to `out`, as Dovecot 2.3 reads text
/// that has no other charset to go by: each byte that is not part of a
/// valid sequence stands for U+FFFD, and a run of them (even after a
/// U+FFFD already in `out`) for one U+FFFD (lib/unichar.c,
/// `output_add_replacement_char`). No charset is guessed: raw Latin-1 in a
/// header is not text RFC 5322 or RFC 6532 allows, and SEARCH and SORT
/// must see it as Dovecot does.
pub(crate) fn push_utf8_lossy(out: &mut String, bytes: &[u8]) {
    // Valid text, nearly all mail, is checked a word at a time.
    if let Ok(text) = std::str::from_utf8(bytes) {
        out.push_str(text);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() && !out.ends_with('\u{FFFD}') {
            out.push('\u{FFFD}');
        }
    }
}

/// [`push_utf8_lossy`] into a new string.
pub(crate) fn utf8_lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    push_utf8_lossy(&mut out, bytes);
    out
}

/// Bytes in charset `label` (None = unspecified) as UTF-8 text. No label,
/// US-ASCII, UTF-8 and labels we do not know are read as UTF-8
/// ([`push_utf8_lossy`]), as Dovecot reads them.
/// Valid UTF-8 read as UTF-8 is borrowed, not copied.
pub fn to_utf8<'a>(label: Option<&[u8]>, bytes: &'a [u8]) -> Cow<'a, str> {
    match label.filter(|l| !is_utf8_label(l)).and_then(charset) {
        Some(enc) => enc.decode_without_bom_handling(bytes).0,
        None => match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => Cow::Owned(utf8_lossy(bytes)),
        },
    }
}

/// One `=?charset?enc?text?=` word at the start of `s`: its decoded text and length.
fn encoded_word(s: &[u8]) -> Option<(String, usize)> {
    let rest = s.strip_prefix(b"=?")?;
    let q1 = memchr::memchr(b'?', rest)?;
    let label = rest.get(..q1)?;
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = memchr::memmem::find(rest.get(text_start..)?, b"?=")?;
    let text = rest.get(text_start..text_start + text_len)?;
    if text
        .iter()
        .any(|&b| b == b' ' || b == b'\t' || b == b'\r' || b == b'\n')
    {
        return None;
    }
    let bytes = match enc {
        b'B' | b'b' => base64(text),
        b'Q' | b'q' => quoted_printable(text, true),
        _ => return None,
    };
    let decoded = if is_utf8_label(label) {
        utf8_lossy(&bytes)
    } else {
        charset(label)?
            .decode_without_bom_handling(&bytes)
            .0
            .into_owned()
    };
    Some((decoded, 2 + text_start + text_len + 2))
}

/// Decodes RFC 2047 encoded words in an (unfolded) header value to UTF-8.
/// Whitespace between two adjacent encoded words is dropped (§6.2); words with
/// an unknown charset or bad syntax stay as written.
pub fn decode_words(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    // Whether the text since `plain_start` follows an encoded word.
    let mut after_word = false;
    let mut plain_start = 0;
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'=', value.get(i..).unwrap_or_default()) {
        i += at;
        let rest = value.get(i..).unwrap_or_default();
        if rest.starts_with(b"=?")
            && let Some((text, len)) = encoded_word(rest)
        {
            let plain = value.get(plain_start..i).unwrap_or_default();
            let only_ws = plain.iter().all(|&b| b == b' ' || b == b'\t');
            if !(after_word && only_ws) {
                push_utf8_lossy(&mut out, plain);
            }
            out.push_str(&text);
            i += len;
            plain_start = i;
            after_word = true;
            continue;
        }
        i += 1;
    }
    push_utf8_lossy(&mut out, value.get(plain_start..).unwrap_or_default());
    out
}

/// Percent-decoding for RFC 2231 extended values (`%E2%82%AC`).
pub fn percent(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).and_then(|&c| hex_value(c)),
                input.get(i + 2).and_then(|&c| hex_value(c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_answers() {
        assert_eq!(base64(b"SGVsbG8sIFdvcmxkIQ=="), b"Hello, World!");
        assert_eq!(base64(b"SGVs\r\nbG8="), b"Hello");
        assert_eq!(base64(b"Zm9vYmFy"), b"foobar");
        assert_eq!(base64(b""), b"");
    }

    #[test]
    fn quoted_printable_known_answers() {
        assert_eq!(
            quoted_printable(b"caf=C3=A9 soft=\r\nbreak", false),
            "café softbreak".as_bytes()
        );
        assert_eq!(quoted_printable(b"a=3Db=\nc =ZZ=", false), b"a=bc =ZZ=");
        assert_eq!(quoted_printable(b"a_b", true), b"a b");
        assert_eq!(quoted_printable(b"a_b", false), b"a_b");
        // Trailing whitespace is transport padding (RFC 2045 §6.7 rule 3);
        // inside a line it is content.
        assert_eq!(
            quoted_printable(b"hello  \r\nfoo \t= \r\nbar\nx  y\t", false),
            b"hello\r\nfoo \tbar\nx  y"
        );
    }

    #[test]
    fn rfc2047_section8_examples() {
        assert_eq!(decode_words(b"=?US-ASCII?Q?Keith_Moore?="), "Keith Moore");
        assert_eq!(
            decode_words(b"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?="),
            "Keld Jørn Simonsen"
        );
        assert_eq!(
            decode_words(b"=?ISO-8859-1?Q?Andr=E9?= Pirard"),
            "André Pirard"
        );
        assert_eq!(
            decode_words(b"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="),
            "If you can read this you understand the example."
        );
        // §8 table: whitespace between adjacent encoded words disappears.
        assert_eq!(decode_words(b"(=?ISO-8859-1?Q?a?=)"), "(a)");
        assert_eq!(decode_words(b"(=?ISO-8859-1?Q?a?= b)"), "(a b)");
        assert_eq!(
            decode_words(b"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)"),
            "(ab)"
        );
        assert_eq!(
            decode_words(b"(=?ISO-8859-1?Q?a?=  \t =?ISO-8859-1?Q?b?=)"),
            "(ab)"
        );
        assert_eq!(decode_words(b"(=?ISO-8859-1?Q?a_b?=)"), "(a b)");
        assert_eq!(
            decode_words(b"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)"),
            "(a b)"
        );
    }

    #[test]
    fn encoded_words_lenient() {
        assert_eq!(decode_words(b"=?x-unknown?Q?a?= z"), "=?x-unknown?Q?a?= z");
        assert_eq!(decode_words(b"=?utf-8?q?broken"), "=?utf-8?q?broken");
        assert_eq!(decode_words(b"=?UTF-8*en?B?4oKs?="), "€");
        assert_eq!(decode_words("plain é".as_bytes()), "plain é");
    }

    #[test]
    fn charsets_and_percent() {
        assert_eq!(to_utf8(Some(b"iso-8859-1"), b"\xe9"), "é");
        assert_eq!(to_utf8(Some(b"us-ascii"), "é".as_bytes()), "é");
        assert_eq!(to_utf8(None, "é".as_bytes()), "é");
        assert_eq!(
            to_utf8(Some(b"koi8-r"), b"\xf0\xd2\xc9\xd7\xc5\xd4"),
            "Привет"
        );
        assert_eq!(
            percent(b"This%20is%20%2A%2A%2Afun%2A%2A%2A%zz"),
            b"This is ***fun***%zz"
        );
    }

    #[test]
    fn transfer_encodings() {
        assert_eq!(transfer_decode(b"BASE64", b"aGk="), b"hi");
        assert_eq!(transfer_decode(b" Quoted-Printable ", b"h=69"), b"hi");
        assert_eq!(transfer_decode(b"8bit", b"h=69"), b"h=69");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_one_replacement_character_a_run() {
        // Raw Latin-1 in a header or an unlabelled body is not guessed at.
        assert_eq!(to_utf8(None, b"J\xf6rg"), "J\u{FFFD}rg");
        assert_eq!(
            to_utf8(Some(b"US-ASCII"), b"\xe9t\xe9"),
            "\u{FFFD}t\u{FFFD}"
        );
        assert_eq!(
            to_utf8(Some(b"x-no-such-charset"), b"a\xe9\xe9b"),
            "a\u{FFFD}b"
        );
        // A truncated sequence and a stray continuation byte: one run.
        assert_eq!(to_utf8(Some(b"utf-8"), b"a\xe2\x82\xff\xfeb"), "a\u{FFFD}b");
        // Runs apart stay apart; valid UTF-8 is kept as it is.
        assert_eq!(
            to_utf8(None, b"\xc3\n\xa9 \xc3\xa9"),
            "\u{FFFD}\n\u{FFFD} é"
        );
        // A known charset still maps every byte.
        assert_eq!(to_utf8(Some(b"iso-8859-1"), b"J\xf6rg"), "Jörg");
        // Header text: around encoded words too, and a run continues
        // across the end of one.
        assert_eq!(decode_words(b"J\xf6rg"), "J\u{FFFD}rg");
        assert_eq!(decode_words(b"=?utf-8?q?a=FF?=\xff b"), "a\u{FFFD} b");
    }
}
