//! The IMAP ENVELOPE (RFC 3501 §7.4.2) of one header block, and the RFC 5322
//! address-list parser it needs, giving the values Dovecot 2.3 gives
//! (issue 9): the last Date, Subject, In-Reply-To and Message-ID count and
//! every From (To, Cc, ...) field adds its addresses; a subject and display
//! names have their whitespace made one space; an address without a
//! mailbox or domain gets `MISSING_MAILBOX` / `MISSING_DOMAIN` (a NIL host
//! would announce a group, RFC 3501), one whose `<...>` is broken
//! `SYNTAX_ERROR`; `user@host (Name)` takes the comment as its name.
//!
//! Two things are read by RFC 5322 where Dovecot does not
//! (tests/corpus/DIFFERENCES.md): empty list members (`a@b,,c@d`, §4.4
//! obs-addr-list) are not addresses, and CFWS may follow a dot in a local
//! part (§4.4 obs-local-part). A value that starts on a continuation line
//! loses the blanks before it, as one that starts after the colon does
//! (§3.2.2: folding is invisible).
//!
//! Values are the header's bytes: encoded words are NOT decoded here,
//! clients do that.

use super::bodystructure::{replace_nul, without_line_ends};
use super::header::{self, Field};
use super::quote::{push_for_humans, push_nstring};
use super::rfc822::{Lexer, Step, is_atext};

/// One entry of an IMAP address list. A group starts with an entry that
/// has a mailbox (the group's name) and no domain, and ends with one that
/// has neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Address {
    pub name: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub domain: Option<Vec<u8>>,
}

/// Reads an address list, handing each entry to `emit` as soon as it is
/// complete, so that what is held at any time is one address however
/// long the list.
struct AddressParser<'a, F: FnMut(Address)> {
    lx: Lexer<'a>,
    addr: Address,
    /// The address broke a rule: a mailbox-like entry may then be a name.
    invalid: bool,
    /// Text being read (a local part, phrase or route).
    text: Vec<u8>,
    emit: F,
}

impl<F: FnMut(Address)> AddressParser<'_, F> {
    fn add(&mut self) {
        (self.emit)(std::mem::take(&mut self.addr));
        self.invalid = false;
    }

    /// Adds the address with the placeholders for what it lacks.
    fn add_filled(&mut self) {
        if self.addr.mailbox.is_none() {
            self.addr.mailbox = Some(b"MISSING_MAILBOX".to_vec());
            self.invalid = true;
        }
        if self.addr.domain.as_ref().is_none_or(|d| d.is_empty()) {
            self.addr.domain = Some(b"MISSING_DOMAIN".to_vec());
            self.invalid = true;
        }
        self.add();
    }

    /// `1*atext *("." 1*atext)`, lenient about dots: leading, doubled and
    /// trailing ones are kept, and CFWS may come around them.
    fn dot_atom_lenient(&mut self) -> Step {
        let mut step = Step::Bad;
        loop {
            while self.lx.peek() == Some(b'.') {
                self.text.push(b'.');
                self.lx.pos += 1;
                if self.lx.at_end() {
                    return Step::End;
                }
                step = Step::More;
                // RFC 5322 §4.4: obs-local-part = word *("." word), and a
                // word may start with CFWS.
                match self.lx.skip_lwsp() {
                    Step::More => {}
                    other => return other,
                }
            }
            if self.lx.peek() == Some(b'@') {
                break;
            }
            step = self.lx.atom(&mut self.text);
            if step != Step::More || self.lx.peek() != Some(b'.') {
                break;
            }
        }
        step
    }

    fn local_part(&mut self) -> Step {
        self.text.clear();
        let step = if self.lx.peek() == Some(b'"') {
            self.lx.quoted_string(&mut self.text)
        } else {
            self.dot_atom_lenient()
        };
        if step != Step::Bad {
            self.addr.mailbox = Some(self.text.clone());
        }
        step
    }

    fn domain(&mut self) -> Step {
        let mut domain = Vec::new();
        let step = self.lx.domain(&mut domain);
        if step != Step::Bad {
            self.addr.domain = Some(domain);
        }
        step
    }

    /// obs-route: `@a,@b` up to the colon.
    fn route(&mut self) -> Step {
        let mut route = Vec::new();
        loop {
            match self.lx.peek() {
                None => return Step::End,
                Some(b'@') => {}
                Some(_) => break,
            }
            if !route.is_empty() {
                route.push(b',');
            }
            route.push(b'@');
            let step = self.lx.domain(&mut route);
            if step <= Step::End {
                return step;
            }
            while self.lx.skip_lwsp() == Step::More && self.lx.peek() == Some(b',') {
                self.lx.pos += 1;
            }
        }
        self.addr.route = Some(route);
        Step::More
    }

    /// `"<" [route ":"] [local-part ["@" domain]] ">"`; cursor on `<`.
    fn angle_addr(&mut self) -> Step {
        self.lx.pos += 1;
        if self.lx.skip_lwsp() <= Step::End {
            return Step::Bad;
        }
        if self.lx.peek() == Some(b'@') {
            if self.route() == Step::More && self.lx.peek() == Some(b':') {
                self.lx.pos += 1;
            } else {
                self.addr.route = Some(b"INVALID_ROUTE".to_vec());
                if self.lx.at_end() {
                    return Step::Bad;
                }
            }
            if self.lx.skip_lwsp() <= Step::End {
                return Step::Bad;
            }
        }
        if self.lx.peek() != Some(b'>') {
            if self.local_part() <= Step::End {
                return Step::Bad;
            }
            if self.lx.peek() == Some(b'@') && self.domain() <= Step::End {
                return Step::Bad;
            }
        }
        if self.lx.peek() != Some(b'>') {
            return Step::Bad;
        }
        self.lx.pos += 1;
        self.lx.skip_lwsp()
    }

    /// `[phrase] angle-addr`; `Bad` (nothing taken) when it is not one.
    fn name_addr(&mut self) -> Step {
        self.text.clear();
        if self.lx.phrase(&mut self.text) <= Step::End || self.lx.peek() != Some(b'<') {
            return Step::Bad;
        }
        self.addr.name = (!self.text.is_empty()).then(|| self.text.clone());
        if self.angle_addr() == Step::Bad {
            self.addr.domain = Some(b"SYNTAX_ERROR".to_vec());
            self.invalid = true;
        }
        if self.lx.at_end() {
            Step::End
        } else {
            Step::More
        }
    }

    /// `local-part "@" domain`, or a bare word (a mailbox without domain)
    /// or words (then a name).
    fn addr_spec(&mut self) -> Step {
        self.lx.last_comment = Some(Vec::new());
        let quoted = self.lx.peek() == Some(b'"');
        let mut step = self.local_part();
        if step <= Step::End {
            self.invalid = true;
        }
        let mut domain_step = None;
        if step != Step::End && self.lx.peek() == Some(b'@') {
            let d = self.domain();
            domain_step = Some(d);
            if d <= Step::End {
                step = d;
            }
        }
        let comment = self.lx.last_comment.take().filter(|c| !c.is_empty());
        if let Some(comment) = comment {
            // `user@host (Real Name)`: RFC 822's practice, kept by Dovecot.
            self.addr.name = Some(comment);
        } else if domain_step.is_none() {
            // A word without @domain is a mailbox; followed by more words it
            // was a name.
            self.text.push(b' ');
            let before = self.text.len();
            let _ = self.lx.phrase(&mut self.text);
            if self.text.len() != before {
                self.addr.mailbox = None;
                self.addr.name = Some(self.text.clone());
            } else if !quoted {
                self.addr.domain = Some(Vec::new());
            }
            self.invalid = true;
            step = Step::Bad;
        }
        step
    }

    fn mailbox(&mut self) -> Step {
        let start = self.lx.pos;
        let mut step = self.name_addr();
        if step == Step::Bad {
            self.lx.pos = start;
            step = self.addr_spec();
            if self.invalid
                && self.addr.name.is_none()
                && self.addr.mailbox.is_some()
                && self.addr.domain.is_none()
            {
                self.addr.name = self.addr.mailbox.take();
            }
        }
        if step == Step::Bad {
            self.invalid = true;
        }
        self.add_filled();
        step
    }

    /// Passes empty list members (RFC 5322 §4.4: `a@b, ,c@d`); false
    /// when nothing but them is left.
    fn skip_empty_members(&mut self) -> bool {
        while self.lx.peek() == Some(b',') {
            self.lx.pos += 1;
            if self.lx.skip_lwsp() <= Step::End {
                return false;
            }
        }
        true
    }

    /// `display-name ":" [mailbox-list] ";"`; `Bad` (nothing taken) when
    /// it is not a group.
    fn group(&mut self) -> Step {
        self.text.clear();
        if self.lx.phrase(&mut self.text) <= Step::End || self.lx.peek() != Some(b':') {
            return Step::Bad;
        }
        self.lx.pos += 1;
        let mut step = self.lx.skip_lwsp();
        self.addr.mailbox = Some(self.text.clone());
        self.add();
        if step == Step::More && self.lx.peek() != Some(b';') {
            loop {
                if !self.skip_empty_members() {
                    step = Step::Bad;
                    break;
                }
                if self.lx.peek() == Some(b';') {
                    break;
                }
                let _ = self.mailbox();
                if self.lx.peek() != Some(b',') {
                    break;
                }
                self.lx.pos += 1;
                if self.lx.skip_lwsp() <= Step::End {
                    step = Step::Bad;
                    break;
                }
            }
        }
        if step != Step::Bad {
            if self.lx.peek() == Some(b';') {
                self.lx.pos += 1;
                step = self.lx.skip_lwsp();
            } else {
                step = Step::Bad;
            }
        }
        self.add();
        if step == Step::End {
            Step::End
        } else {
            Step::More
        }
    }

    fn address(&mut self) -> Step {
        let start = self.lx.pos;
        let step = self.group();
        if step != Step::Bad {
            return step;
        }
        self.lx.pos = start;
        self.mailbox()
    }

    fn list(&mut self) {
        if self.lx.skip_lwsp() <= Step::End {
            return;
        }
        loop {
            if !self.skip_empty_members() || self.address() == Step::End {
                return;
            }
            if self.lx.peek() != Some(b',') {
                return;
            }
            self.lx.pos += 1;
            match self.lx.skip_lwsp() {
                Step::More => {}
                Step::End => return,
                Step::Bad => {
                    // A list that ends in garbage (an open comment).
                    self.add_filled();
                    return;
                }
            }
        }
    }
}

/// Parses an RFC 5322 address-list (a field's full value).
fn parse_addresses(value: &[u8], emit: impl FnMut(Address)) {
    let mut lx = Lexer::new(value);
    lx.replace_nul = true;
    AddressParser {
        lx,
        addr: Address::default(),
        invalid: false,
        text: Vec::new(),
        emit,
    }
    .list();
}

/// The addresses of an address-list value (a field's full value) written
/// back as one line, as Dovecot 2.3 writes them for SEARCH FROM, TO, CC and
/// BCC to match (lib-mail `message_address_write`): `"Name" <mailbox@host>`,
/// a name or mailbox quoted when it is not all `atext` (dots allowed in a
/// mailbox), a name holding `=?` (an encoded word) left as written, a route
/// as `<@route:mailbox@host>`, entries joined by `, `, a group as
/// `name: <a@b>, <c@d>;` (`name:;` when empty). Comments and everything the
/// parser drops are not in it: RFC 3501 defines these keys by the envelope's
/// address structure.
pub(crate) fn written_addresses(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut first = true;
    let mut in_group = false;
    parse_addresses(value, |a| {
        if !first {
            out.extend_from_slice(b", ");
        }
        first = false;
        match (&a.mailbox, &a.domain) {
            (group, None) if !in_group => {
                match group.as_deref() {
                    Some(name) if !name.is_empty() => push_phrase(&mut out, name),
                    _ => out.extend_from_slice(b"\"\""),
                }
                out.extend_from_slice(b": ");
                first = true;
                in_group = true;
            }
            (_, None) => {
                // The end of a group: the separator after its last member
                // (or the blank after its colon) goes.
                if out.ends_with(b", ") {
                    out.truncate(out.len() - 2);
                } else if out.ends_with(b": ") {
                    out.truncate(out.len() - 1);
                }
                out.push(b';');
                in_group = false;
            }
            (mailbox, Some(domain)) => {
                let mailbox = mailbox.as_deref().unwrap_or_default();
                let name = a.name.as_deref().unwrap_or_default();
                push_phrase(&mut out, name);
                if a.route.is_some() || !mailbox.is_empty() || !domain.is_empty() {
                    if !name.is_empty() {
                        out.push(b' ');
                    }
                    out.push(b'<');
                    if let Some(route) = &a.route {
                        out.extend_from_slice(route);
                        out.push(b':');
                    }
                    if mailbox.is_empty() {
                        out.extend_from_slice(b"\"\"");
                    } else {
                        push_maybe_quoted(&mut out, mailbox, false);
                    }
                    if !domain.is_empty() {
                        out.push(b'@');
                        out.extend_from_slice(domain);
                    }
                    out.push(b'>');
                }
            }
        }
    });
    out
}

/// A display or group name: as written when it holds an encoded word (which
/// may not stand in a quoted string, RFC 2047 §5), else quoted if needed.
fn push_phrase(out: &mut Vec<u8>, name: &[u8]) {
    if memchr::memmem::find(name, b"=?").is_some() {
        out.extend_from_slice(name);
    } else {
        push_maybe_quoted(out, name, true);
    }
}

/// `text` as is when every byte is `atext` (or a dot, unless `dot_needs_quotes`),
/// else in double quotes with `"`, `\` and `'` escaped (Dovecot's
/// `str_append_maybe_escape`).
fn push_maybe_quoted(out: &mut Vec<u8>, text: &[u8], dot_needs_quotes: bool) {
    if text
        .iter()
        .all(|&c| is_atext(c) || (c == b'.' && !dot_needs_quotes))
    {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'"');
    for &c in text {
        if matches!(c, b'"' | b'\\' | b'\'') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
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
    out.push(b'(');
    match &a.name {
        Some(name) => push_for_humans(out, name),
        None => push_nstring(out, None),
    }
    for part in [&a.route, &a.mailbox, &a.domain] {
        out.push(b' ');
        push_nstring(out, part.as_deref());
    }
    out.push(b')');
}

/// An unstructured value (Date, Message-ID, Content-ID...) as sent: line
/// ends out, NUL as U+FFFD. A value that starts on a continuation line
/// loses the blanks before it, as one that starts after the colon does
/// (RFC 5322 §3.2.2: folding is invisible; Dovecot keeps them).
pub(crate) fn unfolded_text(f: &Field<'_>) -> Vec<u8> {
    let full = f.full_value();
    let folded_start = full
        .iter()
        .find(|&&b| b != b' ' && b != b'\t')
        .is_some_and(|&b| b == b'\n');
    let text = without_line_ends(&replace_nul(full));
    if !folded_start {
        return text;
    }
    let blanks = text
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    text.get(blanks..).unwrap_or_default().to_vec()
}

/// Which ENVELOPE member a field fills.
#[derive(Clone, Copy)]
enum Member {
    Date,
    Subject,
    InReplyTo,
    MessageId,
    /// An address list: From, Sender, Reply-To, To, Cc, Bcc.
    Addresses(usize),
}

fn member(name: &[u8]) -> Option<Member> {
    const NAMES: [(&str, Member); 10] = [
        ("date", Member::Date),
        ("subject", Member::Subject),
        ("in-reply-to", Member::InReplyTo),
        ("message-id", Member::MessageId),
        ("from", Member::Addresses(0)),
        ("sender", Member::Addresses(1)),
        ("reply-to", Member::Addresses(2)),
        ("to", Member::Addresses(3)),
        ("cc", Member::Addresses(4)),
        ("bcc", Member::Addresses(5)),
    ];
    NAMES
        .iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
        .map(|&(_, m)| m)
}

/// Appends `(date subject from sender reply-to to cc bcc in-reply-to message-id)`
/// for the header block `header`, found in one walk over it. Address lists
/// are written as they are parsed: what is held is the answer, not a list
/// of a million addresses.
pub(crate) fn write_envelope(out: &mut Vec<u8>, header: &[u8]) {
    let mut date = None;
    let mut subject = None;
    let mut in_reply_to = None;
    let mut message_id = None;
    let mut lists: [Vec<u8>; 6] = Default::default();
    for f in header::fields(header) {
        match member(f.name) {
            None => {}
            Some(Member::Date) => date = Some(unfolded_text(&f)),
            Some(Member::Subject) => subject = Some(replace_nul(f.full_value())),
            Some(Member::InReplyTo) => in_reply_to = Some(unfolded_text(&f)),
            Some(Member::MessageId) => message_id = Some(unfolded_text(&f)),
            Some(Member::Addresses(i)) => {
                if let Some(list) = lists.get_mut(i) {
                    parse_addresses(&f.full_value(), |a| write_address(list, &a));
                }
            }
        }
    }
    let [from, sender, reply_to, to, cc, bcc] = &lists;
    let write_list = |out: &mut Vec<u8>, list: &[u8]| {
        if list.is_empty() {
            out.extend_from_slice(b"NIL");
        } else {
            out.push(b'(');
            out.extend_from_slice(list);
            out.push(b')');
        }
    };
    out.push(b'(');
    push_nstring(out, date.as_deref());
    out.push(b' ');
    match &subject {
        Some(subject) => push_for_humans(out, subject),
        None => push_nstring(out, None),
    }
    // Sender and Reply-To default to From when they hold no address.
    for list in [from, pick(sender, from), pick(reply_to, from), to, cc, bcc] {
        out.push(b' ');
        write_list(out, list);
    }
    out.push(b' ');
    push_nstring(out, in_reply_to.as_deref());
    out.push(b' ');
    push_nstring(out, message_id.as_deref());
    out.push(b')');
}

fn pick<'a>(list: &'a Vec<u8>, default: &'a Vec<u8>) -> &'a Vec<u8> {
    if list.is_empty() { default } else { list }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &str) -> String {
        let mut entries = Vec::new();
        parse_addresses(v.as_bytes(), |a| write_address(&mut entries, &a));
        if entries.is_empty() {
            return "NIL".into();
        }
        format!("({})", String::from_utf8(entries).unwrap())
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
        // A NIL host would announce a group (RFC 3501 §7.4.2).
        assert_eq!(
            list("postmaster"),
            r#"((NIL NIL "postmaster" "MISSING_DOMAIN"))"#
        );
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
    fn addresses_written_for_search_as_dovecot_writes_them() {
        let written = |v: &str| String::from_utf8(written_addresses(v.as_bytes())).unwrap();
        // Comments go; a name that is not all atext is quoted, with escapes.
        assert_eq!(
            written("<user-from (comment)@ (comment) domain.org>, Real <r@x>"),
            "<user-from@domain.org>, Real <r@x>"
        );
        assert_eq!(
            written("\"Joe Q. Public\" <john@example.com>, user@example.org (Real Name)"),
            "\"Joe Q. Public\" <john@example.com>, \"Real Name\" <user@example.org>"
        );
        assert_eq!(
            written(r#""a\"b" <q@x>, O'Brien <o@x>"#),
            r#""a\"b" <q@x>, O'Brien <o@x>"#
        );
        assert_eq!(written("\"Pat O'Brien\" <o@x>"), r#""Pat O\'Brien" <o@x>"#);
        // Encoded words stay as written; a quoted local part is quoted again.
        assert_eq!(
            written("=?utf-8?q?J=C3=B6rg?= <j@x.y>, \"quoted local\"@example.org"),
            "=?utf-8?q?J=C3=B6rg?= <j@x.y>, <\"quoted local\"@example.org>"
        );
        // Groups, empty and not; routes; what a broken address lacks.
        assert_eq!(
            written("Group: a@b.c, d@e.f;, undisclosed-recipients:;, x@y"),
            "Group: <a@b.c>, <d@e.f>;, undisclosed-recipients:;, <x@y>"
        );
        assert_eq!(
            written("Route <@r1,@r2:user@host>"),
            "Route <@r1,@r2:user@host>"
        );
        assert_eq!(
            written("Broken <unclosed@example.org"),
            "Broken <unclosed@SYNTAX_ERROR>"
        );
        assert_eq!(written("justaword"), "<justaword@MISSING_DOMAIN>");
        assert_eq!(written(""), "");
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
    fn dovecot_address_forms() {
        // Quoted local parts are given unquoted, as c-client and Dovecot do.
        assert_eq!(
            list(r#""john doe"@example.org, "esc\"aped"@x"#),
            r#"((NIL NIL "john doe" "example.org")(NIL NIL "esc\"aped" "x"))"#
        );
        // What is missing gets a placeholder; a broken <...> SYNTAX_ERROR.
        assert_eq!(
            list("<>, trailing@, Name <nodomain>"),
            concat!(
                r#"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "trailing" "MISSING_DOMAIN")"#,
                r#"("Name" NIL "nodomain" "MISSING_DOMAIN"))"#
            )
        );
        assert_eq!(
            list("Broken <unclosed@example.org"),
            r#"(("Broken" NIL "unclosed" "SYNTAX_ERROR"))"#
        );
        assert_eq!(
            list("<@a.test one@b.test>"),
            r#"((NIL "INVALID_ROUTE" "one" "b.test"))"#
        );
        // Words without @ are a name.
        assert_eq!(
            list("just some words"),
            r#"(("just some words" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#
        );
        // Display names "for humans": whitespace made one space.
        assert_eq!(
            list("\"a  \tb \" <x@y>, x@y (c\r\n d)"),
            // Changed, so a literal, as Dovecot writes it.
            "(({3}\r\na b NIL \"x\" \"y\")(\"c d\" NIL \"x\" \"y\"))"
        );
        // NUL inside a quoted string is U+FFFD; an atom stops at it.
        assert_eq!(
            list("\"a\0b\" <x@y>"),
            "((\"a\u{fffd}b\" NIL \"x\" \"y\"))".replace("\"a\u{fffd}b\"", "{5}\r\na\u{fffd}b")
        );
    }

    #[test]
    fn obsolete_lists_read_by_rfc5322() {
        // §4.4 obs-addr-list: empty members are not addresses (Dovecot
        // makes MISSING_MAILBOX entries of them), in groups too.
        assert_eq!(
            list("a@b.test,, ,c@d.test,"),
            r#"((NIL NIL "a" "b.test")(NIL NIL "c" "d.test"))"#
        );
        assert_eq!(list(" , ,"), "NIL");
        assert_eq!(
            list("g: ,a@b,;"),
            r#"((NIL NIL "g" NIL)(NIL NIL "a" "b")(NIL NIL NIL NIL))"#
        );
        // §4.4 obs-local-part: CFWS after a dot too.
        assert_eq!(
            list("jdoe . (c) x @ example . org, user@[192.0.2.1]"),
            r#"(("c" NIL "jdoe.x" "example.org")(NIL NIL "user" "[192.0.2.1]"))"#
        );
    }

    #[test]
    fn envelope_members_as_dovecot_gives_them() {
        let h = concat!(
            "Date: first\r\nDate: second\r\n",
            "Subject: one\r\nSubject:    \t spaced\tout  \r\n",
            "From: a@x\r\nFrom: b@x\r\n",
            "Reply-To: ,\r\n",
            "Message-ID:\r\n <folded@x>\r\n",
            "In-Reply-To: <a@x>\r\n\t(comment) <b@x>\r\n",
            "\r\n"
        );
        let mut out = Vec::new();
        write_envelope(&mut out, h.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                "(\"second\" {10}\r\nspaced out ",
                r#"((NIL NIL "a" "x")(NIL NIL "b" "x")) ((NIL NIL "a" "x")(NIL NIL "b" "x")) "#,
                r#"((NIL NIL "a" "x")(NIL NIL "b" "x")) NIL NIL NIL "#,
                "\"<a@x>\t(comment) <b@x>\" \"<folded@x>\")"
            )
        );
        let mut out = Vec::new();
        write_envelope(&mut out, b"Subject: a\0b\r\nDate: \0\r\n\r\n");
        assert_eq!(
            out,
            "(\u{fffd} {5}\r\na\u{fffd}b NIL NIL NIL NIL NIL NIL NIL NIL)"
                .replacen("\u{fffd}", "{3}\r\n\u{fffd}", 1)
                .as_bytes()
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
