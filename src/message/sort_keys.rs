//! What SORT (RFC 5256, RFC 5957) and THREAD (RFC 5256) need of one message
//! that its header alone decides: the sent date, the base subject, the first
//! address of From, To and Cc (mailbox and display name), the Message-ID and
//! the references.
//!
//! [`SortKeys::of_header`] is the one boundary: a function of the header
//! bytes and of nothing else, so that a per-folder index can store its
//! result and hand it back without the message being read. The keys that are
//! not in the header (INTERNALDATE, RFC822.SIZE) are the caller's.

use super::base_subject::base_subject;
use super::casemap::fold;
use super::envelope::{Address, first_address};
use super::{date, decode, header};

/// The header-derived sort and thread keys of one message. Strings are
/// folded (see [`fold`]) and compare as SORT compares them, byte by byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortKeys {
    /// The Date: header as a unix time; None when absent or unparsable
    /// (SORT and THREAD then use INTERNALDATE, RFC 5256 §2.2).
    pub sent: Option<i64>,
    /// The base subject (RFC 5256 §2.1); empty without a Subject: header.
    pub subject: String,
    /// The subject was a reply or forward (RFC 5256 §2.1, §4 step 5).
    pub reply_or_forward: bool,
    /// The addr-mailbox of the first From, To and Cc address (a group's
    /// name when the list starts with a group); empty without one.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// RFC 5957: the first From and To address's display name, decoded,
    /// or `mailbox@host` when it has none.
    pub display_from: String,
    pub display_to: String,
    /// The first valid id of Message-ID:, as written (compared exactly).
    pub message_id: Option<String>,
    /// The valid ids of References:, oldest first; when there are none,
    /// the first valid id of In-Reply-To: (RFC 5256 §4 step 1).
    pub references: Vec<String>,
}

impl SortKeys {
    /// The keys of the message whose header block is `header`.
    pub fn of_header(header: &[u8]) -> SortKeys {
        let value = |name: &[u8]| header::first_value(header, name).map(nul_as_replacement);
        let (subject, reply_or_forward) = value(b"subject")
            .map(|s| base_subject(&s))
            .unwrap_or_default();
        let from = value(b"from").and_then(|v| first_address(&v));
        let to = value(b"to").and_then(|v| first_address(&v));
        let cc = value(b"cc").and_then(|v| first_address(&v));
        let mut references = value(b"references")
            .map(|v| message_ids(&v))
            .unwrap_or_default();
        if references.is_empty() {
            references
                .extend(value(b"in-reply-to").and_then(|v| message_ids(&v).into_iter().next()));
        }
        SortKeys {
            sent: value(b"date")
                .and_then(|v| date::parse_date(&v))
                .map(|(t, _)| t),
            subject,
            reply_or_forward,
            from: mailbox_key(from.as_ref()),
            to: mailbox_key(to.as_ref()),
            cc: mailbox_key(cc.as_ref()),
            display_from: display_key(from.as_ref()),
            display_to: display_key(to.as_ref()),
            message_id: value(b"message-id").and_then(|v| message_ids(&v).into_iter().next()),
            references,
        }
    }
}

/// A header value with each NUL made U+FFFD, as Dovecot hands a header
/// value to its SORT and THREAD code (lib-mail `message_header_strdup`):
/// `a<NUL>b` sorts after every `a` followed by a letter, not before.
fn nul_as_replacement(value: Vec<u8>) -> Vec<u8> {
    if !value.contains(&0) {
        return value;
    }
    let mut out = Vec::with_capacity(value.len() + 8);
    for b in value {
        if b == 0 {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn mailbox_key(a: Option<&Address>) -> String {
    match a {
        // A group's start: its name stands where a mailbox would.
        Some(Address {
            mailbox: Some(name),
            domain: None,
            ..
        }) => fold(&decode::decode_words(name)),
        Some(Address {
            mailbox: Some(mailbox),
            ..
        }) => fold(&decode::utf8_lossy(mailbox)),
        // A group's end.
        Some(Address { mailbox: None, .. }) | None => String::new(),
    }
}

/// RFC 5957 §3: the addr-name, decoded; when there is none (or it decodes
/// to nothing), `addr-mailbox@addr-host`. An address that lacks a part has
/// the ENVELOPE's placeholder there (`MISSING_DOMAIN`), as Dovecot sorts it.
fn display_key(a: Option<&Address>) -> String {
    match a {
        Some(Address {
            name,
            mailbox: Some(mailbox),
            domain: Some(domain),
            ..
        }) => {
            let name = name
                .as_deref()
                .map(decode::decode_words)
                .unwrap_or_default();
            if !name.is_empty() {
                return fold(&name);
            }
            let mut text = decode::utf8_lossy(mailbox);
            text.push('@');
            decode::push_utf8_lossy(&mut text, domain);
            fold(&text)
        }
        other => mailbox_key(other),
    }
}

/// The message ids of a Message-ID, References or In-Reply-To value, in
/// order: each `<...>` holding an `@`, blanks inside removed. Anything else
/// (phrases in In-Reply-To, broken ids) is passed over.
fn message_ids(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = memchr::memchr(b'<', rest) {
        let after = &rest[open + 1..];
        let Some(close) = memchr::memchr2(b'>', b'<', after) else {
            break;
        };
        if after[close] == b'>' {
            let id: Vec<u8> = after[..close]
                .iter()
                .copied()
                .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .collect();
            if id.contains(&b'@') {
                out.push(String::from_utf8_lossy(&id).into_owned());
            }
            rest = &after[close + 1..];
        } else {
            rest = &after[close..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_header() {
        let k = SortKeys::of_header(
            b"From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n\
To: undisclosed-recipients:;\r\n\
Cc: <bob@example.org>, carol@example.org\r\n\
Subject: Re: [list] hello\r\n\
Date: Fri, 21 Nov 1997 09:55:06 -0600\r\n\
Message-ID: < 1234 @ local.machine.example >\r\n\
In-Reply-To: <parent@x>\r\n\
References: <root@x>\r\n (comment) <parent@x> <no-at-sign>\r\n\
\r\n",
        );
        assert_eq!(
            k,
            SortKeys {
                sent: Some(880_127_706),
                subject: "HELLO".into(),
                reply_or_forward: true,
                from: "PIRARD".into(),
                to: "UNDISCLOSED-RECIPIENTS".into(),
                cc: "BOB".into(),
                display_from: "ANDRE\u{301} PIRARD".into(),
                display_to: "UNDISCLOSED-RECIPIENTS".into(),
                message_id: Some("1234@local.machine.example".into()),
                references: vec!["root@x".into(), "parent@x".into()],
            }
        );
    }

    #[test]
    fn missing_fields_and_fallbacks() {
        let k = SortKeys::of_header(b"X-Other: 1\r\n\r\n");
        assert_eq!(k, SortKeys::default());
        let k = SortKeys::of_header(
            b"From: bare@example.org\r\nTo: \"\" <empty@example.org>\r\nDate: not a date\r\n\
In-Reply-To: a phrase <first@x> <second@x>\r\nReferences: <broken\r\n\r\n",
        );
        assert_eq!(k.display_from, "BARE@EXAMPLE.ORG");
        assert_eq!(k.display_to, "EMPTY@EXAMPLE.ORG");
        assert_eq!(k.sent, None);
        assert_eq!(k.references, vec!["first@x".to_string()]);
    }

    #[test]
    fn message_id_forms() {
        assert_eq!(message_ids(b"<a@b> <c@d>"), vec!["a@b", "c@d"]);
        assert_eq!(message_ids(b"<a<b@c>"), vec!["b@c"]);
        assert_eq!(message_ids(b"<x> junk <y@z"), Vec::<String>::new());
    }

    #[test]
    fn a_nul_in_a_header_value_sorts_as_a_replacement_character() {
        // Dovecot 2.3 orders `alternative` before `a<NUL>b`: U+FFFD (EF BF BD)
        // is above every letter, where NUL is below.
        let k = SortKeys::of_header(b"Subject: a\0b\r\nFrom: \"x\0y\" <a\0b@example.org>\r\n\r\n");
        assert_eq!(k.subject, "A\u{FFFD}B");
        assert!(k.subject > SortKeys::of_header(b"Subject: alternative\r\n\r\n").subject);
        assert_eq!(k.display_from, "X\u{FFFD}Y");
        // In an address the NUL is in the middle of the local part.
        assert_eq!(k.from, "A\u{FFFD}B");
    }

    #[test]
    fn raw_latin1_in_a_display_name_sorts_as_a_replacement_character() {
        // RFC 6532 allows UTF-8 in a header, nothing else: a Latin-1 byte is
        // U+FFFD, as Dovecot reads it, and sorts after the UTF-8 name.
        let latin1 = SortKeys::of_header(b"From: J\xf6rg <joerg@example.org>\r\n\r\n");
        let utf8 = SortKeys::of_header("From: Jörg <jörg@example.org>\r\n\r\n".as_bytes());
        assert_eq!(latin1.display_from, "J\u{FFFD}RG");
        assert_eq!(utf8.display_from, "JO\u{308}RG");
        assert!(utf8.display_from < latin1.display_from);
        let k = SortKeys::of_header(b"To: <\xe9\xe9t\xe9@x.example>\r\n\r\n");
        assert_eq!(k.to, "\u{FFFD}T\u{FFFD}");
        assert_eq!(k.display_to, "\u{FFFD}T\u{FFFD}@X.EXAMPLE");
    }
}
