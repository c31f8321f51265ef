//! The IMAP ENVELOPE (RFC 3501 §7.4.2) of one header block, and the RFC 5322
//! address-list parser it needs (with the obsolete forms: source routes,
//! comments anywhere, phrases with dots).
//!
//! Values are the raw unfolded header bytes: encoded words are NOT decoded
//! here, clients do that.

use std::borrow::Cow;

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

/// A token of an address list, borrowing from the header value: only a
/// quoted string with backslash escapes needs bytes of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    /// An atom or quoted string: `text` unquoted (display names), `source` as written (local parts).
    Word {
        text: Cow<'a, [u8]>,
        source: &'a [u8],
    },
    DomainLiteral(&'a [u8]),
    Special(u8),
}

/// The tokens of an address list, one at a time, each with whether
/// whitespace or a comment came before it. Nothing is collected: a header
/// of a million addresses is walked, not copied into a million tokens.
struct Tokens<'a> {
    s: &'a [u8],
    i: usize,
    /// The inside of the last comment passed over, for the obsolete
    /// `user@domain (Real Name)` form, whose name is that comment.
    last_comment: Option<&'a [u8]>,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (Token<'a>, bool);

    fn next(&mut self) -> Option<(Token<'a>, bool)> {
        let s = self.s;
        let mut space = false;
        while let Some(&b) = s.get(self.i) {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    space = true;
                    self.i += 1;
                }
                b'(' => {
                    let mut depth = 0usize;
                    let open = self.i;
                    while let Some(&c) = s.get(self.i) {
                        self.i += 1;
                        match c {
                            b'\\' => self.i += 1,
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
                    let inside = s.get(open + 1..self.i.saturating_sub(1).max(open + 1));
                    self.last_comment = inside;
                    space = true;
                }
                b'"' => {
                    let start = self.i;
                    self.i += 1;
                    let content = self.i;
                    let mut content_end = s.len();
                    let mut unescaped: Option<Vec<u8>> = None;
                    while let Some(&c) = s.get(self.i) {
                        match c {
                            b'"' => {
                                content_end = self.i;
                                self.i += 1;
                                break;
                            }
                            b'\\' => {
                                let text = unescaped.get_or_insert_with(|| {
                                    s.get(content..self.i).unwrap_or_default().to_vec()
                                });
                                if let Some(&n) = s.get(self.i + 1) {
                                    text.push(n);
                                }
                                self.i += 2;
                            }
                            _ => {
                                if let Some(text) = unescaped.as_mut() {
                                    text.push(c);
                                }
                                self.i += 1;
                            }
                        }
                    }
                    let text = match unescaped {
                        Some(t) => Cow::Owned(t),
                        None => Cow::Borrowed(s.get(content..content_end).unwrap_or_default()),
                    };
                    let source = s.get(start..self.i.min(s.len())).unwrap_or_default();
                    return Some((Token::Word { text, source }, space));
                }
                b'[' => {
                    let start = self.i;
                    while let Some(&c) = s.get(self.i) {
                        self.i += 1;
                        if c == b'\\' {
                            self.i += 1;
                        } else if c == b']' {
                            break;
                        }
                    }
                    let lit = s.get(start..self.i.min(s.len())).unwrap_or_default();
                    return Some((Token::DomainLiteral(lit), space));
                }
                b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' => {
                    self.i += 1;
                    return Some((Token::Special(b), space));
                }
                _ => {
                    let start = self.i;
                    while let Some(&c) = s.get(self.i) {
                        if matches!(
                            c,
                            b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'"' | b'[' | b']'
                        ) || matches!(c, b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.')
                        {
                            break;
                        }
                        self.i += 1;
                    }
                    if self.i == start {
                        // A stray `)` or `]`: skip it.
                        self.i += 1;
                        continue;
                    }
                    let text = s.get(start..self.i).unwrap_or_default();
                    return Some((
                        Token::Word {
                            text: Cow::Borrowed(text),
                            source: text,
                        },
                        space,
                    ));
                }
            }
        }
        None
    }
}

fn tokens(s: &[u8]) -> Tokens<'_> {
    Tokens {
        s,
        i: 0,
        last_comment: None,
    }
}

/// The display name a comment gives: its text with quoting backslashes
/// removed and runs of whitespace made one space; None when empty.
fn comment_name(comment: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(comment.len());
    let mut escaped = false;
    for &b in comment {
        if escaped {
            out.push(b);
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b.is_ascii_whitespace() {
            if out.last().is_some_and(|&l| l != b' ') {
                out.push(b' ');
            }
        } else {
            out.push(b);
        }
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    (!out.is_empty()).then_some(out)
}

/// The tokens of one address-list item as they go by, kept only as the
/// two texts an address is made of: the display-name text (words joined
/// by one space where the source had whitespace, dots kept in place) and
/// the compact source text (whitespace and comments removed: local parts,
/// domains, routes), with where the specials that split it fell.
#[derive(Debug, Default)]
struct Item {
    tokens: usize,
    phrase: Vec<u8>,
    compact: Vec<u8>,
    /// Index in `compact` of the last `@`.
    last_at: Option<usize>,
    /// Index in `compact` of the first `:`.
    first_colon: Option<usize>,
    /// The first token was `@` (a source route, inside angle brackets).
    starts_with_at: bool,
}

impl Item {
    fn push(&mut self, (token, spaced): &(Token<'_>, bool)) {
        if self.tokens > 0 && *spaced {
            self.phrase.push(b' ');
        }
        match token {
            Token::Word { text, source } => {
                self.phrase.extend_from_slice(text);
                self.compact.extend_from_slice(source);
            }
            Token::DomainLiteral(t) => {
                self.phrase.extend_from_slice(t);
                self.compact.extend_from_slice(t);
            }
            Token::Special(c) => {
                if *c == b'@' {
                    self.last_at = Some(self.compact.len());
                    self.starts_with_at |= self.tokens == 0;
                }
                if *c == b':' && self.first_colon.is_none() {
                    self.first_colon = Some(self.compact.len());
                }
                self.phrase.push(*c);
                self.compact.push(*c);
            }
        }
        self.tokens += 1;
    }

    /// The display name; None for an empty phrase.
    fn phrase_text(self) -> Option<Vec<u8>> {
        (self.tokens > 0).then_some(self.phrase)
    }

    /// `local@domain`; without `@` the host is NIL.
    fn addr_spec(self, name: Option<Vec<u8>>) -> Address {
        addr_spec(self.compact, self.last_at, name, None)
    }

    /// `[@route,@route:]local@domain`, the inside of angle brackets.
    fn angle_addr(self, name: Option<Vec<u8>>) -> Address {
        match self.first_colon {
            Some(colon) if self.starts_with_at => {
                let mut adl = self.compact;
                let rest = adl.split_off(colon + 1);
                adl.pop();
                let last_at = self.last_at.and_then(|at| at.checked_sub(colon + 1));
                addr_spec(rest, last_at, name, Some(adl))
            }
            _ => addr_spec(self.compact, self.last_at, name, None),
        }
    }
}

/// Splits compact source text at its last `@` (at `last_at`) into mailbox
/// and host.
fn addr_spec(
    mut compact: Vec<u8>,
    last_at: Option<usize>,
    name: Option<Vec<u8>>,
    adl: Option<Vec<u8>>,
) -> Address {
    let host = match last_at {
        Some(at) if at < compact.len() => {
            let host = compact.split_off(at + 1);
            compact.pop();
            (!host.is_empty()).then_some(host)
        }
        _ => None,
    };
    Address::Mailbox {
        name,
        adl,
        mailbox: compact,
        host,
    }
}

fn is_special(token: &Token<'_>, c: u8) -> bool {
    *token == Token::Special(c)
}

/// Parses an RFC 5322 address-list (unfolded header value) and hands each
/// IMAP address to `emit` as soon as it is complete, so that what is held
/// at any time is one address, however long the list.
fn parse_addresses(value: &[u8], mut emit: impl FnMut(Address)) {
    let mut tokens = tokens(value);
    let mut in_group = false;
    loop {
        // Collect up to the token that decides what this item is.
        let mut item = Item::default();
        tokens.last_comment = None;
        let decision = loop {
            match tokens.next() {
                None => break None,
                Some((t, _))
                    if is_special(&t, b',')
                        || is_special(&t, b';')
                        || is_special(&t, b'<')
                        || (!in_group && is_special(&t, b':')) =>
                {
                    break Some(t);
                }
                Some(spaced) => item.push(&spaced),
            }
        };
        let separator = match decision {
            Some(Token::Special(b':')) => {
                emit(Address::GroupStart(item.phrase_text().unwrap_or_default()));
                in_group = true;
                continue;
            }
            Some(Token::Special(b'<')) => {
                let name = item.phrase_text();
                let mut inner = Item::default();
                for spaced in tokens.by_ref() {
                    if is_special(&spaced.0, b'>') {
                        break;
                    }
                    inner.push(&spaced);
                }
                emit(inner.angle_addr(name));
                // Skip whatever follows `>` up to the next separator.
                tokens
                    .by_ref()
                    .map(|(t, _)| t)
                    .find(|t| is_special(t, b',') || is_special(t, b';'))
            }
            other => {
                if item.tokens > 0 {
                    // `user@domain (Real Name)`: the obsolete form, whose
                    // comment is the name (RFC 822's practice, kept by
                    // Dovecot and Courier).
                    let name = tokens.last_comment.and_then(comment_name);
                    emit(item.addr_spec(name));
                }
                other
            }
        };
        match separator {
            Some(Token::Special(b';')) if in_group => {
                emit(Address::GroupEnd);
                in_group = false;
            }
            Some(_) => {}
            None => break,
        }
    }
    if in_group {
        emit(Address::GroupEnd);
    }
}

/// The addresses of a header value as a person reads them, one per line:
/// `Name <mailbox@host>` (or the bare address), group names as written,
/// comments left out. SEARCH FROM/TO/CC/BCC look here as well as in the
/// raw value, so `user@domain` is found in `<user (comment)@ domain>`.
pub(crate) fn address_text(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    parse_addresses(&header::unfold(value), |a| {
        match a {
            Address::Mailbox {
                name,
                mailbox,
                host,
                ..
            } => {
                if let Some(name) = &name {
                    out.extend_from_slice(name);
                    out.push(b' ');
                }
                out.push(b'<');
                out.extend_from_slice(&mailbox);
                if let Some(host) = &host {
                    out.push(b'@');
                    out.extend_from_slice(host);
                }
                out.push(b'>');
            }
            Address::GroupStart(name) => {
                out.extend_from_slice(&name);
                out.push(b':');
            }
            Address::GroupEnd => out.push(b';'),
        }
        out.push(b'\n');
    });
    out
}

/// The first entry of an address list (a group's start when the list
/// begins with a group), for SORT's FROM, TO, CC, DISPLAYFROM and DISPLAYTO.
pub(crate) fn first_address(value: &[u8]) -> Option<Address> {
    let mut first = None;
    parse_addresses(&header::unfold(value), |a| {
        if first.is_none() {
            first = Some(a);
        }
    });
    first
}

/// Appends one entry of an address list.
fn write_address(out: &mut Vec<u8>, a: &Address) {
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

/// Appends the address list of a header value (raw, folded), or NIL when
/// the header is absent or holds none; returns whether it held any.
fn write_addresses(out: &mut Vec<u8>, value: Option<&[u8]>) -> bool {
    let start = out.len();
    let mut any = false;
    if let Some(value) = value {
        parse_addresses(&header::unfold(value), |a| {
            if !any {
                out.push(b'(');
                any = true;
            }
            write_address(out, &a);
        });
    }
    if any {
        out.push(b')');
    } else {
        out.truncate(start);
        out.extend_from_slice(b"NIL");
    }
    any
}

/// The header fields ENVELOPE reports, found in one walk over the header
/// (the first of each name counts): a header of a million fields is walked
/// once and not held as a list.
#[derive(Debug, Default)]
struct EnvelopeFields<'a> {
    date: Option<&'a [u8]>,
    subject: Option<&'a [u8]>,
    from: Option<&'a [u8]>,
    sender: Option<&'a [u8]>,
    reply_to: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    cc: Option<&'a [u8]>,
    bcc: Option<&'a [u8]>,
    in_reply_to: Option<&'a [u8]>,
    message_id: Option<&'a [u8]>,
}

impl<'a> EnvelopeFields<'a> {
    fn of(header_bytes: &'a [u8]) -> EnvelopeFields<'a> {
        let mut found = EnvelopeFields::default();
        for f in header::fields(header_bytes) {
            let name = f.name;
            let slot = if name.eq_ignore_ascii_case(b"date") {
                &mut found.date
            } else if name.eq_ignore_ascii_case(b"subject") {
                &mut found.subject
            } else if name.eq_ignore_ascii_case(b"from") {
                &mut found.from
            } else if name.eq_ignore_ascii_case(b"sender") {
                &mut found.sender
            } else if name.eq_ignore_ascii_case(b"reply-to") {
                &mut found.reply_to
            } else if name.eq_ignore_ascii_case(b"to") {
                &mut found.to
            } else if name.eq_ignore_ascii_case(b"cc") {
                &mut found.cc
            } else if name.eq_ignore_ascii_case(b"bcc") {
                &mut found.bcc
            } else if name.eq_ignore_ascii_case(b"in-reply-to") {
                &mut found.in_reply_to
            } else if name.eq_ignore_ascii_case(b"message-id") {
                &mut found.message_id
            } else {
                continue;
            };
            slot.get_or_insert(f.value);
        }
        found
    }
}

/// Appends `(date subject from sender reply-to to cc bcc in-reply-to message-id)`
/// for the header block `header`.
pub(crate) fn write_envelope(out: &mut Vec<u8>, header: &[u8]) {
    let f = EnvelopeFields::of(header);
    let unfolded = |v: Option<&[u8]>| v.map(header::unfold);
    out.push(b'(');
    push_nstring(out, unfolded(f.date).as_deref());
    out.push(b' ');
    push_nstring(out, unfolded(f.subject).as_deref());
    out.push(b' ');
    let from_at = out.len();
    write_addresses(out, f.from);
    let from_end = out.len();
    // Sender and Reply-To default to From when they hold no address.
    for value in [f.sender, f.reply_to] {
        out.push(b' ');
        let at = out.len();
        if !write_addresses(out, value) {
            out.truncate(at);
            out.extend_from_within(from_at..from_end);
        }
    }
    for value in [f.to, f.cc, f.bcc] {
        out.push(b' ');
        write_addresses(out, value);
    }
    out.push(b' ');
    push_nstring(out, unfolded(f.in_reply_to).as_deref());
    out.push(b' ');
    push_nstring(out, unfolded(f.message_id).as_deref());
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &str) -> String {
        let mut out = Vec::new();
        write_addresses(&mut out, Some(v.as_bytes()));
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
    fn obsolete_comment_names() {
        // imaptest fetch-envelope: `user@domain (Real Name)`.
        assert_eq!(
            list("user@domain (Real Name)"),
            "((\"Real Name\" NIL \"user\" \"domain\"))"
        );
        // A phrase wins over a comment; an empty comment names nothing.
        assert_eq!(
            list("Phrase <user@domain> (comment)"),
            "((\"Phrase\" NIL \"user\" \"domain\"))"
        );
        assert_eq!(list("user@domain ()"), "((NIL NIL \"user\" \"domain\"))");
        assert_eq!(
            list("a@b (First), c@d"),
            "((\"First\" NIL \"a\" \"b\")(NIL NIL \"c\" \"d\"))"
        );
    }

    #[test]
    fn searchable_address_text() {
        let text = address_text(b"<user-from (comment)@ (comment) domain.org>, Real <r@x>");
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "<user-from@domain.org>\nReal <r@x>\n"
        );
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

    #[test]
    fn long_address_lists_are_written_whole() {
        // Written as parsed, one address at a time: all of them, in order.
        let mut v = String::from("a0@x.test");
        for i in 1..50_000 {
            v.push_str(&format!(",\r\n a{i}@x.test"));
        }
        let out = list(&v);
        assert_eq!(out.matches("\"x.test\")").count(), 50_000);
        assert!(out.starts_with(r#"((NIL NIL "a0" "x.test")(NIL NIL "a1" "x.test")"#));
        assert!(out.ends_with(r#"(NIL NIL "a49999" "x.test"))"#));
    }
}
