//! RFC 822/5322 and MIME lexical tokens, read the way Dovecot 2.3 reads
//! them: atoms, dot-atoms, MIME tokens, quoted strings, comments, phrases
//! and domains, each step also passing the whitespace and comments after
//! its token. ENVELOPE addresses and the Content-* fields of BODYSTRUCTURE
//! are built from these tokens so that mdimap gives the same values as
//! Dovecot for the same bytes (issue 9, tests/corpus_dovecot.rs).
//!
//! This module owns tokenizing only; what a field means is decided by
//! `envelope.rs` and `mime.rs`. Every step moves forward over its input,
//! so any value is read in time linear in its length.

/// How a step ended: the input was invalid, or a value was read and the
/// input ends there, or a value was read and more input follows. Ordered
/// so that `step <= Step::End` means "nothing more to read".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Bad,
    End,
    More,
}

/// What a NUL inside a quoted string, comment or domain literal becomes
/// (U+FFFD): NUL may not be sent in an IMAP string.
pub(crate) const NUL_REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// RFC 5322 `atext` (with 8-bit bytes allowed, as RFC 6532 does), marked
/// 1; letters, digits and 8-bit bytes 2; the `atext` characters that MIME
/// counts as `tspecials` (`/`, `=`, `?`) 4.
const fn char_class(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | 0x80..=0xff => 2,
        b'/' | b'=' | b'?' => 4,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'^' | b'_' | b'`'
        | b'{' | b'|' | b'}' | b'~' => 1,
        _ => 0,
    }
}

pub(crate) fn is_atext(c: u8) -> bool {
    char_class(c) != 0
}

/// A MIME token character (RFC 2045 §5.1): `atext` without `/ = ?`.
fn is_token_char(c: u8) -> bool {
    char_class(c) & 3 != 0
}

/// A cursor over one (unfolded or folded) header value.
pub(crate) struct Lexer<'a> {
    s: &'a [u8],
    pub pos: usize,
    /// When tracked, the inside of the last comment passed (folds removed,
    /// quoted pairs resolved): the name of `user@host (Name)`.
    pub last_comment: Option<Vec<u8>>,
    /// Replace NUL in quoted strings, comments and domain literals.
    pub replace_nul: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(s: &'a [u8]) -> Lexer<'a> {
        Lexer {
            s,
            pos: 0,
            last_comment: None,
            replace_nul: false,
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn more_or_end(&self) -> Step {
        if self.at_end() { Step::End } else { Step::More }
    }

    fn bytes(&self, from: usize, to: usize) -> &'a [u8] {
        self.s.get(from..to).unwrap_or_default()
    }

    /// Appends `s[from..to]` without a CR that ends it (a fold's CRLF).
    fn push_before_fold(&self, out: &mut Vec<u8>, from: usize, to: usize) {
        let piece = self.bytes(from, to);
        out.extend_from_slice(piece.strip_suffix(b"\r").unwrap_or(piece));
    }

    /// Passes a comment (nested, with quoted pairs); the cursor is on `(`.
    fn skip_comment(&mut self) -> Step {
        let mut comment = self.last_comment.take().map(|mut c| {
            c.clear();
            c
        });
        let mut level = 1usize;
        self.pos += 1;
        let mut start = self.pos;
        while let Some(c) = self.peek() {
            match c {
                0 => {
                    if let Some(out) = comment.as_mut().filter(|_| self.replace_nul) {
                        out.extend_from_slice(self.bytes(start, self.pos));
                        out.extend_from_slice(NUL_REPLACEMENT);
                        start = self.pos + 1;
                    }
                }
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        if let Some(out) = comment.as_mut() {
                            out.extend_from_slice(self.bytes(start, self.pos));
                        }
                        self.pos += 1;
                        self.last_comment = comment;
                        return self.more_or_end();
                    }
                }
                b'\n' => {
                    if let Some(out) = comment.as_mut() {
                        self.push_before_fold(out, start, self.pos);
                        start = self.pos + 1;
                    }
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        None => {
                            self.last_comment = comment;
                            return Step::Bad;
                        }
                        // Not a quoted pair: the backslash stays, the
                        // character after it is read as usual.
                        Some(b'\r' | b'\n' | 0) => self.pos -= 1,
                        Some(_) => {
                            if let Some(out) = comment.as_mut() {
                                out.extend_from_slice(self.bytes(start, self.pos - 1));
                            }
                            start = self.pos;
                        }
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.last_comment = comment;
        Step::Bad
    }

    /// Passes whitespace, line ends and comments.
    pub fn skip_lwsp(&mut self) -> Step {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    if self.skip_comment() == Step::Bad {
                        return Step::Bad;
                    }
                }
                _ => break,
            }
        }
        self.more_or_end()
    }

    /// `1*atext`, then CFWS.
    pub fn atom(&mut self, out: &mut Vec<u8>) -> Step {
        if !self.peek().is_some_and(is_atext) {
            return Step::Bad;
        }
        self.run_then_cfws(out, is_atext)
    }

    /// `atext *("." atext)` with CFWS allowed around the dots (RFC 822).
    pub fn dot_atom(&mut self, out: &mut Vec<u8>) -> Step {
        if !self.peek().is_some_and(is_atext) {
            return Step::Bad;
        }
        let mut start = self.pos;
        self.pos += 1;
        while let Some(c) = self.peek() {
            if is_atext(c) {
                self.pos += 1;
                continue;
            }
            if start == self.pos {
                return Step::Bad;
            }
            out.extend_from_slice(self.bytes(start, self.pos));
            let step = self.skip_lwsp();
            if step <= Step::End {
                return step;
            }
            if self.peek() != Some(b'.') {
                return Step::More;
            }
            self.pos += 1;
            out.push(b'.');
            if self.skip_lwsp() <= Step::End {
                return Step::Bad;
            }
            start = self.pos;
        }
        out.extend_from_slice(self.bytes(start, self.pos));
        Step::End
    }

    /// A MIME token (`.` allowed), possibly empty, then CFWS.
    pub fn mime_token(&mut self, out: &mut Vec<u8>) -> Step {
        self.run_then_cfws(out, |c| is_token_char(c) || c == b'.')
    }

    /// A quoted string's content (folds removed, quoted pairs resolved),
    /// then CFWS; the cursor is on the opening `"`.
    pub fn quoted_string(&mut self, out: &mut Vec<u8>) -> Step {
        self.pos += 1;
        let mut start = self.pos;
        while let Some(c) = self.peek() {
            match c {
                0 if self.replace_nul => {
                    out.extend_from_slice(self.bytes(start, self.pos));
                    out.extend_from_slice(NUL_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'"' => {
                    out.extend_from_slice(self.bytes(start, self.pos));
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    self.push_before_fold(out, start, self.pos);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        None => return Step::Bad,
                        Some(b'\r' | b'\n' | 0) => self.pos -= 1,
                        Some(_) => {
                            out.extend_from_slice(self.bytes(start, self.pos - 1));
                            start = self.pos;
                        }
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Step::Bad
    }

    /// Atext and dots, possibly none, then CFWS (a word of an obsolete phrase).
    fn atom_or_dot(&mut self, out: &mut Vec<u8>) -> Step {
        self.run_then_cfws(out, |c| is_atext(c) || c == b'.')
    }

    /// The bytes `keep` accepts, possibly none, copied to `out`; then CFWS.
    fn run_then_cfws(&mut self, out: &mut Vec<u8>, keep: impl Fn(u8) -> bool) -> Step {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        out.extend_from_slice(self.bytes(start, self.pos));
        if self.at_end() {
            return Step::End;
        }
        self.skip_lwsp()
    }

    /// `phrase` (RFC 5322 §3.2.5 with obs-phrase): words joined by one space.
    pub fn phrase(&mut self, out: &mut Vec<u8>) -> Step {
        match self.peek() {
            None => return Step::End,
            Some(b'.') => return Step::Bad,
            Some(_) => {}
        }
        loop {
            let step = if self.peek() == Some(b'"') {
                self.quoted_string(out)
            } else {
                self.atom_or_dot(out)
            };
            if step <= Step::End {
                return step;
            }
            match self.peek() {
                Some(c) if is_atext(c) || c == b'"' || c == b'.' => out.push(b' '),
                _ => break,
            }
        }
        self.skip_lwsp()
    }

    /// `[ ... ]` kept whole (backslashes too), then CFWS; cursor on `[`.
    fn domain_literal(&mut self, out: &mut Vec<u8>) -> Step {
        let mut start = self.pos;
        self.pos += 1;
        while let Some(c) = self.peek() {
            match c {
                0 if self.replace_nul => {
                    out.extend_from_slice(self.bytes(start, self.pos));
                    out.extend_from_slice(NUL_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'[' => return Step::Bad,
                b']' => {
                    out.extend_from_slice(self.bytes(start, self.pos + 1));
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    self.push_before_fold(out, start, self.pos);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        None => return Step::Bad,
                        Some(b'\r' | b'\n' | 0) => {
                            out.extend_from_slice(self.bytes(start, self.pos));
                            start = self.pos;
                            self.pos -= 1;
                        }
                        Some(_) => {}
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Step::Bad
    }

    /// `"@" domain`; the cursor is on the `@`.
    pub fn domain(&mut self, out: &mut Vec<u8>) -> Step {
        self.pos += 1;
        if self.skip_lwsp() <= Step::End {
            return Step::Bad;
        }
        if self.peek() == Some(b'[') {
            self.domain_literal(out)
        } else {
            self.dot_atom(out)
        }
    }

    /// `type "/" subtype` into `out` as `type/subtype`. Invalid input
    /// leaves what could be read: `text` for a type without subtype,
    /// nothing when the type is followed by anything but `/`.
    pub fn content_type(&mut self, out: &mut Vec<u8>) -> Step {
        let start = out.len();
        if self.skip_lwsp() <= Step::End {
            return Step::Bad;
        }
        if self.mime_token(out) <= Step::End || out.len() == start {
            return Step::Bad;
        }
        if self.peek() != Some(b'/') {
            out.truncate(start);
            return Step::Bad;
        }
        self.pos += 1;
        if self.skip_lwsp() <= Step::End {
            out.truncate(start);
            return Step::Bad;
        }
        out.push(b'/');
        let subtype_start = out.len();
        let step = self.mime_token(out);
        if step == Step::Bad || out.len() == subtype_start || self.peek().is_some_and(|c| c != b';')
        {
            out.truncate(start);
            return Step::Bad;
        }
        step
    }

    /// One `; attribute = value` parameter. `End` when no input is left,
    /// `Bad` (name unset) when what follows is not a parameter.
    pub fn content_param(&mut self, name: &mut Vec<u8>, value: &mut Vec<u8>) -> Step {
        name.clear();
        value.clear();
        match self.peek() {
            None => return Step::End,
            Some(b';') => self.pos += 1,
            Some(_) => return Step::Bad,
        }
        if self.skip_lwsp() <= Step::End {
            return Step::Bad;
        }
        if self.mime_token(name) <= Step::End || self.peek() != Some(b'=') {
            name.clear();
            return Step::Bad;
        }
        self.pos += 1;
        let mut step = self.skip_lwsp();
        if step <= Step::End {
            // No value.
        } else if self.peek() == Some(b'"') {
            step = self.quoted_string(value);
        } else if self.peek() == Some(b'=') {
            // Broken mail writes `name==?utf-8?b?...?=` unquoted.
            while let Some(c) = self.peek() {
                if matches!(c, b';' | b' ' | b'\t' | b'\r' | b'\n') {
                    break;
                }
                value.push(c);
                self.pos += 1;
            }
        } else {
            step = self.mime_token(value);
        }
        if step == Step::Bad {
            Step::Bad
        } else {
            Step::More
        }
    }
}

/// MIME parameters in the order they are reported: plain ones as written,
/// then RFC 2231 ones joined across their sections.
pub(crate) type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// One `name*n[*]=value` section of an RFC 2231 parameter.
struct Section {
    name: Vec<u8>,
    index: u32,
    extended: bool,
    value: Vec<u8>,
}

/// The parameters after a Content-Type or Content-Disposition value.
/// RFC 2231 sections are joined but not decoded (`name*` keeps its
/// `charset'language'%xx` form, as Dovecot reports it); sections with a
/// gap in their numbers are reported one by one under their own names.
/// Broken parameters are skipped a byte at a time.
pub(crate) fn parameters(lx: &mut Lexer<'_>) -> Params {
    let saved = lx.replace_nul;
    lx.replace_nul = true;
    let mut plain = Params::new();
    let mut sections: Vec<Section> = Vec::new();
    let (mut name, mut value) = (Vec::new(), Vec::new());
    // Dovecot carries a section number over to a later `name*=` that has
    // none of its own; so does this, to report the same names.
    let mut index = 0u32;
    loop {
        match lx.content_param(&mut name, &mut value) {
            Step::End => break,
            Step::Bad => {
                if lx.at_end() {
                    break;
                }
                lx.pos += 1;
                continue;
            }
            Step::More => {}
        }
        let Some(star) = memchr::memchr(b'*', &name) else {
            plain.push((std::mem::take(&mut name), std::mem::take(&mut value)));
            continue;
        };
        let mut rest = name.get(star + 1..).unwrap_or_default();
        // `name*` alone is an extended value (section number carried over).
        let mut extended = rest.is_empty();
        if !rest.is_empty() {
            index = 0;
            while let Some((&d, tail)) = rest.split_first().filter(|(d, _)| d.is_ascii_digit()) {
                index = index.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
                rest = tail;
            }
            if let Some(tail) = rest.strip_prefix(b"*") {
                extended = true;
                rest = tail;
            }
        }
        if rest.is_empty() {
            sections.push(Section {
                name: name.get(..star).unwrap_or_default().to_vec(),
                index,
                extended,
                value: std::mem::take(&mut value),
            });
        } else {
            plain.push((std::mem::take(&mut name), std::mem::take(&mut value)));
        }
    }
    lx.replace_nul = saved;
    if sections.is_empty() {
        return plain;
    }
    sections.sort_by(|a, b| a.name.cmp(&b.name).then(a.index.cmp(&b.index)));
    let mut i = 0;
    while let Some(first) = sections.get(i) {
        let group_len = sections
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|s| s.name.eq_ignore_ascii_case(&first.name))
            .count();
        let group = sections.get(i..i + group_len).unwrap_or_default();
        let numbered = group.iter().zip(0u32..).all(|(s, n)| s.index == n);
        let any_extended = group.iter().any(|s| s.extended);
        if numbered {
            let mut joined = Vec::new();
            if !first.extended && any_extended {
                joined.extend_from_slice(b"''");
            }
            for s in group {
                if !s.extended && any_extended {
                    // A plain section inside an encoded value: its `%`
                    // must not read as an escape.
                    for &c in &s.value {
                        if c == b'%' {
                            joined.extend_from_slice(b"%25");
                        } else {
                            joined.push(c);
                        }
                    }
                } else {
                    joined.extend_from_slice(&s.value);
                }
            }
            let mut key = first.name.clone();
            if any_extended {
                key.push(b'*');
            }
            plain.push((key, joined));
        } else {
            for s in group {
                let mut key = s.name.clone();
                key.push(b'*');
                key.extend_from_slice(s.index.to_string().as_bytes());
                if s.extended {
                    key.push(b'*');
                }
                plain.push((key, s.value.clone()));
            }
        }
        i += group_len.max(1);
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Vec<(String, String)> {
        let mut lx = Lexer::new(s.as_bytes());
        parameters(&mut lx)
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn rfc2231_sections_are_joined_not_decoded() {
        // RFC 2231 §4.1 example, as Dovecot reports it.
        assert_eq!(
            params(
                "; title*0*=us-ascii'en'This%20is%20even%20more%20;\n title*1*=%2A%2A%2Afun%2A%2A%2A%20;\n title*2=\"isn't it!\""
            ),
            vec![p(
                "title*",
                "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn't it!"
            )]
        );
        assert_eq!(
            params("; name*1=\"second\"; name*0=\"first\""),
            vec![p("name", "firstsecond")]
        );
        // A gap: reported section by section.
        assert_eq!(
            params("; name*0=\"zero\"; name*2=\"two\""),
            vec![p("name*0", "zero"), p("name*2", "two")]
        );
        // Plain parameters first, then the joined ones.
        assert_eq!(
            params("; filename*=UTF-8''%E2%82%AC; size=3"),
            vec![p("size", "3"), p("filename*", "UTF-8''%E2%82%AC")]
        );
        // A plain section inside an encoded value is escaped.
        assert_eq!(params("; t*0*=''a; t*1=\"50%\""), vec![p("t*", "''a50%25")]);
    }

    #[test]
    fn broken_parameters_are_skipped() {
        assert_eq!(
            params("; charset=utf-8; charset=iso-8859-1; flag; =x; format=fixed"),
            vec![
                p("charset", "utf-8"),
                p("charset", "iso-8859-1"),
                p("format", "fixed")
            ]
        );
        assert_eq!(
            params(" ; a = \"b c\" (comment) ; d=e"),
            vec![p("a", "b c"), p("d", "e")]
        );
        assert_eq!(params("; n==?utf-8?q?x?= ;"), vec![p("n", "=?utf-8?q?x?=")]);
        assert_eq!(params("; n=\"a\0b\""), vec![p("n", "a\u{fffd}b")]);
    }

    #[test]
    fn content_type_forms() {
        let ct = |s: &str| {
            let mut lx = Lexer::new(s.as_bytes());
            let mut out = Vec::new();
            let step = lx.content_type(&mut out);
            (String::from_utf8(out).unwrap(), step)
        };
        assert_eq!(ct("text/plain"), ("text/plain".into(), Step::End));
        assert_eq!(
            ct(" Text (c) / HTML ; x=y"),
            ("Text/HTML".into(), Step::More)
        );
        assert_eq!(ct("text"), ("text".into(), Step::Bad));
        assert_eq!(ct("text/"), ("".into(), Step::Bad));
        assert_eq!(ct("text/plain junk"), ("".into(), Step::Bad));
        assert_eq!(ct("this is not"), ("".into(), Step::Bad));
        assert_eq!(ct(""), ("".into(), Step::Bad));
    }

    #[test]
    fn phrases_comments_and_domains() {
        let mut lx = Lexer::new(b"Joe Q. Public <x>");
        let mut out = Vec::new();
        assert_eq!(lx.phrase(&mut out), Step::More);
        assert_eq!(out, b"Joe Q. Public");
        assert_eq!(lx.peek(), Some(b'<'));

        let mut lx = Lexer::new(b"a (first \\) (nested)\n x) b");
        lx.last_comment = Some(Vec::new());
        let mut out = Vec::new();
        assert_eq!(lx.atom(&mut out), Step::More);
        assert_eq!(lx.last_comment.as_deref(), Some(&b"first ) (nested) x"[..]));

        let mut lx = Lexer::new(b"@ example . org (c)");
        let mut out = Vec::new();
        assert_eq!(lx.domain(&mut out), Step::End);
        assert_eq!(out, b"example.org");

        let mut lx = Lexer::new(b"@[1.2\\.3]");
        let mut out = Vec::new();
        assert_eq!(lx.domain(&mut out), Step::End);
        assert_eq!(out, b"[1.2\\.3]");
        // Unterminated forms are invalid, never a panic or a loop.
        for s in ["\"abc", "(abc", "@[abc", "\"a\\", "(\\"] {
            let mut lx = Lexer::new(s.as_bytes());
            let mut out = Vec::new();
            let step = match s.as_bytes()[0] {
                b'"' => lx.quoted_string(&mut out),
                b'(' => lx.skip_lwsp(),
                _ => lx.domain(&mut out),
            };
            assert_eq!(step, Step::Bad, "{s}");
        }
    }
}
