//! The IMAP ENVELOPE (RFC 3501 §7.4.2) of one header block, and the RFC 5322
//! address-list parser it needs (with the obsolete forms: source routes,
//! comments anywhere, phrases with dots).
//!
//! Values are the raw unfolded header bytes: encoded words are NOT decoded
//! here, clients do that.

use super::header;
use crate::protocol::encode::{push_nstring, push_string};

/// One entry of an IMAP address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    Mailbox {
        name: Option<Vec<u8>>,
        adl: Option<Vec<u8>>,
        mailbox: Vec<u8>,
        host: Option<Vec<u8>>,
    },
    /// `(NIL NIL "name" NIL)`: the start of a group.
    GroupStart(Vec<u8>),
    /// `(NIL NIL NIL NIL)`: the end of a group.
    GroupEnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An atom or quoted string: `text` unquoted (display names), `source` as written (local parts).
    Word {
        text: Vec<u8>,
        source: Vec<u8>,
    },
    DomainLiteral(Vec<u8>),
    Special(u8),
}

/// A token and whether whitespace or a comment came before it.
type Spaced = (Token, bool);

fn tokenize(s: &[u8]) -> Vec<Spaced> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    while let Some(&b) = s.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                space = true;
                i += 1;
            }
            b'(' => {
                let mut depth = 0usize;
                while let Some(&c) = s.get(i) {
                    i += 1;
                    match c {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                space = true;
            }
            b'"' => {
                let start = i;
                let mut text = Vec::new();
                i += 1;
                while let Some(&c) = s.get(i) {
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            if let Some(&n) = s.get(i) {
                                text.push(n);
                                i += 1;
                            }
                        }
                        _ => text.push(c),
                    }
                }
                let source = s.get(start..i).unwrap_or_default().to_vec();
                out.push((Token::Word { text, source }, space));
                space = false;
            }
            b'[' => {
                let start = i;
                while let Some(&c) = s.get(i) {
                    i += 1;
                    if c == b'\\' {
                        i += 1;
                    } else if c == b']' {
                        break;
                    }
                }
                let lit = s.get(start..i.min(s.len())).unwrap_or_default().to_vec();
                out.push((Token::DomainLiteral(lit), space));
                space = false;
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' => {
                out.push((Token::Special(b), space));
                space = false;
                i += 1;
            }
            _ => {
                let start = i;
                while let Some(&c) = s.get(i) {
                    if matches!(
                        c,
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'"' | b'[' | b']'
                    ) || matches!(c, b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.')
                    {
                        break;
                    }
                    i += 1;
                }
                if i == start {
                    // A stray `)` or `]`: skip it.
                    i += 1;
                    continue;
                }
                let text = s.get(start..i).unwrap_or_default().to_vec();
                out.push((
                    Token::Word {
                        source: text.clone(),
                        text,
                    },
                    space,
                ));
                space = false;
            }
        }
    }
    out
}

/// Display-name text of a phrase: words joined by one space where the source
/// had whitespace, dots kept in place. None for an empty phrase.
fn phrase_text(tokens: &[Spaced]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for (i, (tok, spaced)) in tokens.iter().enumerate() {
        if i > 0 && *spaced {
            out.push(b' ');
        }
        match tok {
            Token::Word { text, .. } => out.extend_from_slice(text),
            Token::DomainLiteral(t) => out.extend_from_slice(t),
            Token::Special(c) => out.push(*c),
        }
    }
    (!tokens.is_empty()).then_some(out)
}

/// Source text of tokens with whitespace and comments removed (local parts, domains).
fn compact_text(tokens: &[Spaced]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tok, _) in tokens {
        match tok {
            Token::Word { source, .. } => out.extend_from_slice(source),
            Token::DomainLiteral(t) => out.extend_from_slice(t),
            Token::Special(c) => out.push(*c),
        }
    }
    out
}

fn is_special(t: &Spaced, c: u8) -> bool {
    t.0 == Token::Special(c)
}

/// `local@domain` from an addr-spec's tokens; without `@` the host is NIL.
fn addr_spec(tokens: &[Spaced], name: Option<Vec<u8>>, adl: Option<Vec<u8>>) -> Address {
    match tokens.iter().rposition(|t| is_special(t, b'@')) {
        Some(at) => {
            let host = compact_text(tokens.get(at + 1..).unwrap_or_default());
            Address::Mailbox {
                name,
                adl,
                mailbox: compact_text(tokens.get(..at).unwrap_or_default()),
                host: (!host.is_empty()).then_some(host),
            }
        }
        None => Address::Mailbox {
            name,
            adl,
            mailbox: compact_text(tokens),
            host: None,
        },
    }
}

/// `[@route,@route:]local@domain` inside angle brackets.
fn angle_addr(tokens: &[Spaced], name: Option<Vec<u8>>) -> Address {
    let starts_with_route = tokens.first().is_some_and(|t| is_special(t, b'@'));
    if starts_with_route && let Some(colon) = tokens.iter().position(|t| is_special(t, b':')) {
        let adl = compact_text(tokens.get(..colon).unwrap_or_default());
        return addr_spec(tokens.get(colon + 1..).unwrap_or_default(), name, Some(adl));
    }
    addr_spec(tokens, name, None)
}

/// Parses an RFC 5322 address-list (unfolded header value) into IMAP addresses.
pub(crate) fn parse_addresses(value: &[u8]) -> Vec<Address> {
    let tokens = tokenize(value);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut i = 0;
    while i < tokens.len() {
        let start = i;
        // Collect up to the token that decides what this item is.
        while let Some(t) = tokens.get(i) {
            if is_special(t, b',')
                || is_special(t, b';')
                || is_special(t, b'<')
                || (!in_group && is_special(t, b':'))
            {
                break;
            }
            i += 1;
        }
        let collected = tokens.get(start..i).unwrap_or_default();
        match tokens.get(i).map(|t| &t.0) {
            Some(Token::Special(b':')) => {
                out.push(Address::GroupStart(
                    phrase_text(collected).unwrap_or_default(),
                ));
                in_group = true;
                i += 1;
            }
            Some(Token::Special(b'<')) => {
                let inner_start = i + 1;
                let mut j = inner_start;
                while tokens.get(j).is_some_and(|t| !is_special(t, b'>')) {
                    j += 1;
                }
                let inner = tokens.get(inner_start..j).unwrap_or_default();
                out.push(angle_addr(inner, phrase_text(collected)));
                // Skip whatever follows `>` up to the next separator.
                i = j + 1;
                while tokens
                    .get(i)
                    .is_some_and(|t| !is_special(t, b',') && !is_special(t, b';'))
                {
                    i += 1;
                }
            }
            _ => {
                if !collected.is_empty() {
                    out.push(addr_spec(collected, None, None));
                }
                if tokens.get(i).is_some_and(|t| is_special(t, b';')) && in_group {
                    out.push(Address::GroupEnd);
                    in_group = false;
                }
                i += 1;
            }
        }
    }
    if in_group {
        out.push(Address::GroupEnd);
    }
    out
}

/// Appends an address list, or NIL when the header is absent or holds none.
fn write_addresses(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        match a {
            Address::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                out.push(b'(');
                push_nstring(out, name.as_deref());
                out.push(b' ');
                push_nstring(out, adl.as_deref());
                out.push(b' ');
                push_string(out, mailbox);
                out.push(b' ');
                push_nstring(out, host.as_deref());
                out.push(b')');
            }
            Address::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                push_string(out, name);
                out.extend_from_slice(b" NIL)");
            }
            Address::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}

/// Appends `(date subject from sender reply-to to cc bcc in-reply-to message-id)`
/// for the header block `header`.
pub(crate) fn write_envelope(out: &mut Vec<u8>, header: &[u8]) {
    let fields: Vec<header::Field> = header::fields(header).collect();
    let first = |name: &[u8]| {
        fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| header::unfold(f.value))
    };
    let addresses = |name: &[u8]| first(name).map(|v| parse_addresses(&v)).unwrap_or_default();

    out.push(b'(');
    push_nstring(out, first(b"date").as_deref());
    out.push(b' ');
    push_nstring(out, first(b"subject").as_deref());
    let from = addresses(b"from");
    let mut sender = addresses(b"sender");
    if sender.is_empty() {
        sender = from.clone();
    }
    let mut reply_to = addresses(b"reply-to");
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    for list in [
        &from,
        &sender,
        &reply_to,
        &addresses(b"to"),
        &addresses(b"cc"),
        &addresses(b"bcc"),
    ] {
        out.push(b' ');
        write_addresses(out, list);
    }
    out.push(b' ');
    push_nstring(out, first(b"in-reply-to").as_deref());
    out.push(b' ');
    push_nstring(out, first(b"message-id").as_deref());
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &str) -> String {
        let mut out = Vec::new();
        write_addresses(&mut out, &parse_addresses(v.as_bytes()));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn simple_addresses() {
        assert_eq!(
            list("john@example.com"),
            r#"((NIL NIL "john" "example.com"))"#
        );
        assert_eq!(
            list("John Doe <jdoe@machine.example>"),
            r#"(("John Doe" NIL "jdoe" "machine.example"))"#
        );
        assert_eq!(
            list(r#""Joe Q. Public" <john.q.public@example.com>, Mary Smith <mary@x.test>"#),
            r#"(("Joe Q. Public" NIL "john.q.public" "example.com")("Mary Smith" NIL "mary" "x.test"))"#
        );
        assert_eq!(list("postmaster"), r#"((NIL NIL "postmaster" NIL))"#);
        assert_eq!(list(""), "NIL");
        assert_eq!(list(" , "), "NIL");
    }

    #[test]
    fn rfc5322_appendix_a_obsolete_forms() {
        // A.5: comments everywhere.
        assert_eq!(
            list("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            r#"(("Pete" NIL "pete" "silly.test"))"#
        );
        // A.6.1: obsolete phrase with a dot, unquoted.
        assert_eq!(
            list("Joe Q. Public <john.q.public@example.com>"),
            r#"(("Joe Q. Public" NIL "john.q.public" "example.com"))"#
        );
        // A.6.2/obs-route: source route goes to adl.
        assert_eq!(
            list("<@machine.tld:mary@example.net>, Some One <@a.test,@b.test:one@c.test>"),
            r#"((NIL "@machine.tld" "mary" "example.net")("Some One" "@a.test,@b.test" "one" "c.test"))"#
        );
        // Spaces around dots and at-sign in an addr-spec.
        assert_eq!(
            list("jdoe . x @ example . org"),
            r#"((NIL NIL "jdoe.x" "example.org"))"#
        );
        assert_eq!(list("a@[192.0.2.1]"), r#"((NIL NIL "a" "[192.0.2.1]"))"#);
    }

    #[test]
    fn groups() {
        assert_eq!(
            list("undisclosed-recipients:;"),
            r#"((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))"#
        );
        // RFC 5322 A.1.3.
        assert_eq!(
            list("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, x@y.test"),
            concat!(
                r#"((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")"#,
                r#"("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL)(NIL NIL "x" "y.test"))"#
            )
        );
        // A group never closed still gets its end marker.
        assert_eq!(
            list("g: a@b"),
            r#"((NIL NIL "g" NIL)(NIL NIL "a" "b")(NIL NIL NIL NIL))"#
        );
    }

    #[test]
    fn encoded_words_stay_raw() {
        assert_eq!(
            list("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>"),
            r#"(("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=" NIL "keld" "dkuug.dk"))"#
        );
    }

    #[test]
    fn rfc3501_style_envelope() {
        let h = b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg summary and minutes\r\nTo: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US,\r\n John Klensin <KLENSIN@MIT.EDU>\r\nMessage-Id: <B27397-0100000@cac.washington.edu>\r\n\r\n";
        let mut out = Vec::new();
        write_envelope(&mut out, h);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" "#,
                r#"(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) "#,
                r#"(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) "#,
                r#"((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "#,
                r#""<B27397-0100000@cac.washington.edu>")"#
            )
        );
    }

    #[test]
    fn empty_envelope_and_literals() {
        let mut out = Vec::new();
        write_envelope(&mut out, b"Subject: caf\xc3\xa9\r\nSender:\r\n\r\n");
        assert_eq!(
            out,
            "(NIL {5}\r\ncafé NIL NIL NIL NIL NIL NIL NIL NIL)".as_bytes()
        );
        let mut out = Vec::new();
        write_envelope(
            &mut out,
            b"From: a@b\r\nSender: \r\nReply-To: c@d\r\nIn-Reply-To: <x@y>\r\n\r\n",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"(NIL NIL ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "c" "d")) NIL NIL NIL "<x@y>" NIL)"#
        );
    }
}
