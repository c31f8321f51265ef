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
    let body = decode::transfer_decode(&encoding, mime::slice(data, &part.body));
    let text = decode::to_utf8(part.content.param("charset"), &body);
    let text = if html {
        Cow::Owned(strip_tags(&text))
    } else {
        text
    };
    collapse(&text)
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
fn collapse(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut blank = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            if count + 1 >= PREVIEW_CHARS {
                break;
            }
            out.push(' ');
            count += 1;
            blank = false;
        }
        if count >= PREVIEW_CHARS {
            break;
        }
        out.push(c);
        count += 1;
    }
    out
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
}
