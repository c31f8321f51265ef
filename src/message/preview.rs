//! PREVIEW (RFC 8970): the start of a message's text for a client's message list. The
//! first text/plain part not inside an attached message (else the first text/html, its
//! tags and entities dropped), transfer encoding and charset undone, blanks collapsed to
//! single spaces, cut at 200 characters (RFC 8970 §3.1's limit). A message with no such
//! text part has the empty preview. Pure: a function of the message bytes.

use super::decode;
use super::header;
use super::mime::{self, Part, PartKind};
use std::borrow::Cow;

/// RFC 8970 §3.1: at most 256 octets; 200 characters is what its algorithm suggests.
const PREVIEW_CHARS: usize = 200;

/// The preview text of the message whose top-level entity is `root`.
pub(crate) fn preview(data: &[u8], root: &Part) -> String {
    let part = first_text(root, "plain").map(|p| (p, false));
    let part = part.or_else(|| first_text(root, "html").map(|p| (p, true)));
    let Some((part, html)) = part else {
        return String::new();
    };
    let head = mime::slice(data, &part.header);
    let encoding = header::first_value(head, b"content-transfer-encoding").unwrap_or_default();
    let body = mime::slice(data, &part.body);
    // Most text parts give their 200 characters in their first kilobytes: the start of
    // the body is decoded first, and the whole only when the start was not enough.
    if let Some(start) = body.get(..PREFIX)
        && let (preview, Reached::WithRoomToSpare) = preview_of(&encoding, start, part, html)
    {
        return preview;
    }
    preview_of(&encoding, body, part, html).0
}

/// How much of a body is decoded first.
const PREFIX: usize = 4 * 1024;

/// The preview of `body`, and whether the text reached the limit well before its end.
/// Decoding a body cut short leaves a mark only at its end (a split escape or tag, a
/// character cut in two, an unclosed `<style>` that swallows the rest), so a preview
/// that reached the limit [`MARGIN`] bytes or more before the end of the text is the
/// preview of the whole body.
fn preview_of(encoding: &[u8], body: &[u8], part: &Part, html: bool) -> (String, Reached) {
    let body = decode::transfer_decode(encoding, body);
    let text = decode::to_utf8(part.content.param("charset"), &body);
    let text = if html {
        Cow::Owned(strip_tags(&text))
    } else {
        text
    };
    let (preview, used) = collapse(&text);
    let reached = match used {
        Some(used) if used + MARGIN <= text.len() => Reached::WithRoomToSpare,
        _ => Reached::NotSurely,
    };
    (preview, reached)
}

/// Bytes of text past the end of a preview that a cut body cannot have changed.
const MARGIN: usize = 64;

#[derive(Debug, PartialEq, Eq)]
enum Reached {
    WithRoomToSpare,
    NotSurely,
}

/// The first part of type text/`subtype`, depth first, not looking inside message/rfc822
/// (an attached message's text is not this message's).
fn first_text<'p>(part: &'p Part, subtype: &str) -> Option<&'p Part> {
    match &part.kind {
        PartKind::Multipart(children) => children.iter().find_map(|c| first_text(c, subtype)),
        PartKind::Message(_) => None,
        PartKind::Single => part.content.is("text", subtype).then_some(part),
    }
}

/// HTML with its tags and comments removed, `<style>`/`<script>` content too, and the
/// commonest entities replaced: enough for a one-line preview, not a renderer.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let lower: String = after
            .chars()
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        let skip_to = if lower.starts_with("<!--") {
            after.find("-->").map(|e| e + 3)
        } else if lower.starts_with("<style") {
            find_ci(after, "</style>").map(|e| e + 8)
        } else if lower.starts_with("<script") {
            find_ci(after, "</script>").map(|e| e + 9)
        } else {
            after.find('>').map(|e| e + 1)
        };
        match skip_to {
            Some(n) => {
                out.push(' ');
                rest = &after[n..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(needle)
}

/// Runs of white space (and control characters) as one space, trimmed, at most
/// [`PREVIEW_CHARS`] characters.
/// `text` with blanks collapsed, cut at [`PREVIEW_CHARS`] characters, and how many bytes
/// of `text` it took when the cut came before the text's end (`None`: all of it).
fn collapse(text: &str) -> (String, Option<usize>) {
    let mut out = String::new();
    let mut count = 0;
    let mut blank = false;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() || c.is_control() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            if count + 1 >= PREVIEW_CHARS {
                return (out, Some(at));
            }
            out.push(' ');
            count += 1;
            blank = false;
        }
        if count >= PREVIEW_CHARS {
            return (out, Some(at));
        }
        out.push(c);
        count += 1;
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::super::Message;

    #[test]
    fn plain_text_decoded_and_collapsed() {
        let m = Message::parse(
            b"Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9\r\n\r\n   ol=\r\n=E9  \r\n",
        );
        assert_eq!(m.preview(), "Café olé");
    }

    #[test]
    fn first_plain_part_of_a_multipart_and_html_fallback() {
        let m = Message::parse(b"Content-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n");
        assert_eq!(m.preview(), "plain");
        let h = Message::parse(
            b"Content-Type: text/html\r\n\r\n<style>p{}</style><p>Hi &amp; bye</p>\r\n",
        );
        assert_eq!(h.preview(), "Hi & bye");
    }

    #[test]
    fn at_most_200_characters() {
        let body = "é ".repeat(300);
        let raw = format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n");
        let p = Message::parse(raw.as_bytes()).preview();
        assert!(
            p.chars().count() <= 200 && p.chars().count() >= 199,
            "{}",
            p.chars().count()
        );
        assert!(!p.ends_with(' '));
    }

    /// A long body's preview from its first kilobytes is the whole body's, whatever is
    /// cut where: quoted-printable escapes, base64, multi-byte characters, HTML tags and
    /// entities, and a `<style>` block that runs past the first kilobytes.
    #[test]
    fn the_start_of_a_long_body_gives_the_whole_bodys_preview() {
        let whole = |raw: &[u8]| {
            let m = Message::parse(raw);
            let part = super::first_text(&m.root, "plain")
                .map(|p| (p, false))
                .or_else(|| super::first_text(&m.root, "html").map(|p| (p, true)))
                .expect("text part");
            let head = super::mime::slice(m.data, &part.0.header);
            let cte =
                super::header::first_value(head, b"content-transfer-encoding").unwrap_or_default();
            super::preview_of(
                &cte,
                super::mime::slice(m.data, &part.0.body),
                part.0,
                part.1,
            )
            .0
        };
        let words = "Grüße, naïve café — ".repeat(3000);
        let qp: String = words
            .bytes()
            .map(|b| {
                if b.is_ascii() {
                    (b as char).to_string()
                } else {
                    format!("={b:02X}")
                }
            })
            .collect::<Vec<_>>()
            .chunks(70)
            .map(|c| c.concat())
            .collect::<Vec<_>>()
            .join("=\r\n");
        let b64 = String::from_utf8(super::super::binary_parts::base64_lines(
            words.as_bytes(),
            b"\r\n",
        ))
        .expect("base64 is ASCII");
        let style = format!(
            "<style>{}</style><p>after &amp; {}</p>",
            "x{}".repeat(9000),
            words
        );
        let cases = [
            format!(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n"
            ),
            format!(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
            ),
            format!(
                "Content-Type: text/plain; charset=utf-8\r\n\r\n{}{words}\r\n",
                " \r\n".repeat(9000)
            ),
            format!("Content-Type: text/html; charset=utf-8\r\n\r\n{style}\r\n"),
        ];
        for raw in &cases {
            let m = Message::parse(raw.as_bytes());
            assert!(raw.len() > 2 * super::PREFIX);
            let p = m.preview();
            assert_eq!(p, whole(raw.as_bytes()));
            assert!(p.contains("Grüße"), "{p}");
        }
    }
}
