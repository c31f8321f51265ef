//! The MIME tree of one message (RFC 2045/2046): Content-Type and
//! Content-Disposition values with their parameters (RFC 2231 continuations
//! joined), and the parts with byte offsets into the CRLF message.
//!
//! Parsing never fails: a bad Content-Type is text/plain, a multipart whose
//! boundary never appears holds its whole body as one part, and nesting
//! deeper than [`MAX_DEPTH`] is left unparsed so hostile mail cannot exhaust
//! the stack. Past [`MAX_PARTS`] parts no more boundaries are looked for, so
//! hostile mail cannot make the tree many times larger than itself.

use std::ops::Range;

use super::decode;
use super::header;

/// Parts nested deeper than this are treated as opaque leaves.
pub(crate) const MAX_DEPTH: usize = 50;

/// Most parts one message is parsed into, below its top level. A part costs
/// about 300 bytes of tree, and `--b` CRLF CRLF is a part in 7 octets: an
/// 11 MB message of empty parts would have needed more than the session's
/// whole address space (MDIMAP_LIMIT_MEMORY, 512 MiB). 10,000 is Dovecot's
/// limit too (`MESSAGE_PARSER_DEFAULT_MAX_TOTAL_MIME_PARTS`, since
/// CVE-2020-12100). The text past the last part found stays in that part,
/// so SEARCH BODY still sees it; BODYSTRUCTURE describes 10,000 parts.
pub(crate) const MAX_PARTS: usize = 10_000;

/// MIME parameters in order: (name, value).
pub(crate) type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// A parsed `type/subtype; name=value...` (or a disposition `type; params`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    /// As written (case kept); compare with `eq_ignore_ascii_case`.
    pub media_type: Vec<u8>,
    pub subtype: Vec<u8>,
    /// Parameter names as written (RFC 2231 markers removed) and values
    /// (RFC 2231 extended values decoded to UTF-8 when the charset is known).
    pub params: Params,
}

impl ContentType {
    fn new(media_type: &[u8], subtype: &[u8], params: Params) -> ContentType {
        ContentType {
            media_type: media_type.to_vec(),
            subtype: subtype.to_vec(),
            params,
        }
    }

    /// RFC 2045 §5.2 default: `text/plain; charset=us-ascii`.
    pub fn text_plain() -> ContentType {
        ContentType::new(
            b"text",
            b"plain",
            vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
        )
    }

    /// RFC 2046 §5.1.5 default inside multipart/digest.
    pub fn message_rfc822() -> ContentType {
        ContentType::new(b"message", b"rfc822", Vec::new())
    }

    pub fn is(&self, media_type: &str, subtype: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(media_type.as_bytes())
            && self.subtype.eq_ignore_ascii_case(subtype.as_bytes())
    }

    pub fn is_type(&self, media_type: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(media_type.as_bytes())
    }

    pub fn is_multipart(&self) -> bool {
        self.is_type("multipart")
    }

    /// A type whose body is a complete message we parse recursively.
    pub fn is_message(&self) -> bool {
        self.is("message", "rfc822") || self.is("message", "global")
    }

    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

/// A small lexer for RFC 2045 structured values: tokens, quoted strings and
/// comments.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

fn is_tspecial(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
    )
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skips whitespace and (nested) comments.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.pos += 1,
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ if depth > 0 => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_cfws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn token(&mut self) -> &'a [u8] {
        self.skip_cfws();
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b <= 0x20 || b == 0x7f || is_tspecial(b) {
                break;
            }
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// A quoted string's content (escapes removed); the cursor is on the `"`.
    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.pos += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        out
    }

    /// A parameter value: quoted string, or (leniently) everything up to the
    /// next `;` with surrounding whitespace removed.
    fn value(&mut self) -> Vec<u8> {
        self.skip_cfws();
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b';' || b == b' ' || b == b'\t' || b == b'\r' || b == b'\n' || b == b'(' {
                break;
            }
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default().to_vec()
    }

    /// Moves past the next `;` (or to the end).
    fn skip_to_semicolon(&mut self) {
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == b';' {
                return;
            }
            if b == b'"' {
                self.pos -= 1;
                self.quoted();
            }
        }
    }

    /// `*(";" name "=" value)`, RFC 2231 sections combined.
    fn params(&mut self) -> Params {
        let mut raw = Vec::new();
        loop {
            self.skip_cfws();
            match self.peek() {
                None => break,
                Some(b';') => self.pos += 1,
                Some(_) => {
                    self.skip_to_semicolon();
                    continue;
                }
            }
            let name = self.token();
            if name.is_empty() {
                continue;
            }
            if !self.eat(b'=') {
                continue;
            }
            let value = self.value();
            raw.push((name.to_vec(), value));
        }
        combine_rfc2231(raw)
    }
}

/// One RFC 2231 section of a parameter: `name*3*=` is ("name", Some(3), true).
fn split_section_name(name: &[u8]) -> (&[u8], Option<u32>, bool) {
    let Some(star) = memchr::memchr(b'*', name) else {
        return (name, None, false);
    };
    let base = name.get(..star).unwrap_or_default();
    let rest = name.get(star + 1..).unwrap_or_default();
    if rest.is_empty() {
        return (base, Some(0), true);
    }
    let (digits, extended) = match rest.strip_suffix(b"*") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    match std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u32>().ok())
    {
        Some(n) if digits.iter().all(u8::is_ascii_digit) => (base, Some(n), extended),
        _ => (name, None, false),
    }
}

/// Joins RFC 2231 continuations (`title*0*=...; title*1=...`), decodes
/// `charset'language'%xx` values to UTF-8, and keeps plain parameters as
/// given. A parameter given in both forms keeps the RFC 2231 one.
fn combine_rfc2231(raw: Params) -> Params {
    struct Sections {
        name: Vec<u8>,
        plain: Option<Vec<u8>>,
        parts: Vec<(u32, bool, Vec<u8>)>,
    }
    let mut groups: Vec<Sections> = Vec::new();
    for (name, value) in raw {
        let (base, index, extended) = split_section_name(&name);
        let pos = match groups
            .iter()
            .position(|g| g.name.eq_ignore_ascii_case(base))
        {
            Some(p) => p,
            None => {
                groups.push(Sections {
                    name: base.to_vec(),
                    plain: None,
                    parts: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let Some(group) = groups.get_mut(pos) else {
            continue;
        };
        match index {
            None => {
                if group.plain.is_none() {
                    group.plain = Some(value);
                }
            }
            Some(i) => {
                if !group.parts.iter().any(|(j, _, _)| *j == i) {
                    group.parts.push((i, extended, value));
                }
            }
        }
    }
    groups
        .into_iter()
        .filter_map(|mut g| {
            if g.parts.is_empty() {
                return g.plain.map(|v| (g.name, v));
            }
            g.parts.sort_by_key(|(i, _, _)| *i);
            let mut charset: Option<Vec<u8>> = None;
            let mut bytes = Vec::new();
            for (n, (_, extended, value)) in g.parts.iter().enumerate() {
                if *extended {
                    let mut v = value.as_slice();
                    if n == 0 {
                        // charset'language'value
                        let mut it = v.splitn(3, |&b| b == b'\'');
                        if let (Some(cs), Some(_lang), Some(rest)) =
                            (it.next(), it.next(), it.next())
                        {
                            if !cs.is_empty() {
                                charset = Some(cs.to_vec());
                            }
                            v = rest;
                        }
                    }
                    bytes.extend_from_slice(&decode::percent(v));
                } else {
                    bytes.extend_from_slice(value);
                }
            }
            let value = match charset.as_deref().and_then(decode::charset) {
                Some(enc) => enc
                    .decode_without_bom_handling(&bytes)
                    .0
                    .into_owned()
                    .into_bytes(),
                None => bytes,
            };
            Some((g.name, value))
        })
        .collect()
}

/// Parses a Content-Type value; None when it has no `type/subtype`.
pub(crate) fn parse_content_type(value: &[u8]) -> Option<ContentType> {
    let mut lx = Lexer { s: value, pos: 0 };
    let media_type = lx.token();
    if media_type.is_empty() || !lx.eat(b'/') {
        return None;
    }
    let subtype = lx.token();
    if subtype.is_empty() {
        return None;
    }
    let params = lx.params();
    Some(ContentType::new(media_type, subtype, params))
}

/// Parses a Content-Disposition value: (disposition type, params).
pub(crate) fn parse_disposition(value: &[u8]) -> Option<(Vec<u8>, Params)> {
    let mut lx = Lexer { s: value, pos: 0 };
    let kind = lx.token();
    if kind.is_empty() {
        return None;
    }
    Some((kind.to_vec(), lx.params()))
}

/// What a part holds beyond its own bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartKind {
    Single,
    /// Never empty: a multipart without usable boundaries gets one part holding its body.
    Multipart(Vec<Part>),
    /// message/rfc822 or message/global: the encapsulated message, whose
    /// header and body lie within this part's body.
    Message(Box<Part>),
}

/// One node of the MIME tree. A message (top level or encapsulated) is a
/// `Part` whose header is the message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// The header block including the empty line that ends it.
    pub header: Range<usize>,
    pub body: Range<usize>,
    pub content: ContentType,
    pub kind: PartKind,
}

/// Byte slice of `data` for a range, empty if out of bounds.
pub(crate) fn slice<'a>(data: &'a [u8], r: &Range<usize>) -> &'a [u8] {
    data.get(r.clone()).unwrap_or_default()
}

/// Parses the entity in `data[start..end]` (header block then body).
pub(crate) fn parse_part(
    data: &[u8],
    start: usize,
    end: usize,
    default: &ContentType,
    depth: usize,
) -> Part {
    let mut budget = MAX_PARTS;
    parse_part_within(data, start, end, default, depth, &mut budget)
}

/// [`parse_part`], making at most `budget` parts below this one (and
/// taking those it makes from it).
fn parse_part_within(
    data: &[u8],
    start: usize,
    end: usize,
    default: &ContentType,
    depth: usize,
    budget: &mut usize,
) -> Part {
    let body_start = header::header_end(data, start, end);
    parse_entity(data, start, body_start, end, default, depth, budget)
}

/// Builds the part whose header is `data[start..body_start]` and body runs to `end`.
fn parse_entity(
    data: &[u8],
    start: usize,
    body_start: usize,
    end: usize,
    default: &ContentType,
    depth: usize,
    budget: &mut usize,
) -> Part {
    let header_range = start..body_start;
    let content = header::first_value(slice(data, &header_range), b"content-type")
        .and_then(|v| parse_content_type(&v))
        .unwrap_or_else(|| default.clone());
    let kind = if depth >= MAX_DEPTH || *budget == 0 {
        PartKind::Single
    } else if content.is_multipart() {
        PartKind::Multipart(parse_multipart(
            data, body_start, end, &content, depth, budget,
        ))
    } else if content.is_message() {
        *budget -= 1;
        PartKind::Message(Box::new(parse_part_within(
            data,
            body_start,
            end,
            &ContentType::text_plain(),
            depth + 1,
            budget,
        )))
    } else {
        PartKind::Single
    };
    Part {
        header: header_range,
        body: body_start..end,
        content,
        kind,
    }
}

/// Is `line` a delimiter for `boundary`? Some(true) for the close delimiter.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    if rest.starts_with(b"--") {
        return Some(true);
    }
    rest.iter()
        .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(false)
}

/// Start of the line end before `pos` (the CRLF belonging to a delimiter), not before `floor`.
fn before_line_end(data: &[u8], pos: usize, floor: usize) -> usize {
    let cut = if pos >= 2 && data.get(pos - 2..pos) == Some(b"\r\n") {
        pos - 2
    } else if pos >= 1 && data.get(pos - 1) == Some(&b'\n') {
        pos - 1
    } else {
        pos
    };
    cut.max(floor)
}

/// The parts of a multipart body; `budget` is at least 1.
fn parse_multipart(
    data: &[u8],
    start: usize,
    end: usize,
    content: &ContentType,
    depth: usize,
    budget: &mut usize,
) -> Vec<Part> {
    let child_default = if content.subtype.eq_ignore_ascii_case(b"digest") {
        ContentType::message_rfc822()
    } else {
        ContentType::text_plain()
    };
    let boundary = content.param("boundary").filter(|b| !b.is_empty());
    // (start of delimiter line, end of it)
    let mut delims: Vec<(usize, usize)> = Vec::new();
    let mut close_at: Option<usize> = None;
    if let Some(boundary) = boundary {
        let mut pos = start;
        // At the budget the search stops: the last part keeps the rest.
        while pos < end && delims.len() < *budget {
            let next = header::line_end(data, pos, end);
            match delimiter(slice(data, &(pos..next)), boundary) {
                Some(true) => {
                    close_at = Some(pos);
                    break;
                }
                Some(false) => delims.push((pos, next)),
                None => {}
            }
            pos = next;
        }
    }
    if delims.is_empty() {
        *budget -= 1;
        let whole = Part {
            header: start..start,
            body: start..end,
            content: ContentType::text_plain(),
            kind: PartKind::Single,
        };
        return vec![whole];
    }
    // This level's parts are taken from the budget before their children.
    *budget -= delims.len();
    let mut parts = Vec::with_capacity(delims.len());
    for (i, &(_, part_start)) in delims.iter().enumerate() {
        let part_end = match delims.get(i + 1).map(|d| d.0).or(close_at) {
            Some(next_line) => before_line_end(data, next_line, part_start),
            None => end,
        };
        // A body part that starts with text rather than a header field has
        // lost its empty line; reading its text as header would hide it.
        let first_line = slice(
            data,
            &(part_start..header::line_end(data, part_start, part_end)),
        );
        let part = if header::starts_with_field(first_line) || first_line.trim_ascii().is_empty() {
            parse_part_within(
                data,
                part_start,
                part_end,
                &child_default,
                depth + 1,
                budget,
            )
        } else {
            parse_entity(
                data,
                part_start,
                part_start,
                part_end,
                &child_default,
                depth + 1,
                budget,
            )
        };
        parts.push(part);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (name.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    #[test]
    fn content_type_basic() {
        let ct = parse_content_type(b"Text/HTML; charset=\"ISO-8859-1\" (comment); format=flowed")
            .unwrap();
        assert_eq!(ct.media_type, b"Text");
        assert_eq!(ct.subtype, b"HTML");
        assert_eq!(
            ct.params,
            vec![p("charset", "ISO-8859-1"), p("format", "flowed")]
        );
        assert!(ct.is("text", "html"));
        assert_eq!(parse_content_type(b"text"), None);
        assert_eq!(parse_content_type(b""), None);
        let ct = parse_content_type(b"multipart/mixed; boundary=\"simple boundary\"").unwrap();
        assert_eq!(ct.param("BOUNDARY"), Some(&b"simple boundary"[..]));
        let ct = parse_content_type(b"text/plain; junk; charset=utf-8;").unwrap();
        assert_eq!(ct.params, vec![p("charset", "utf-8")]);
    }

    #[test]
    fn rfc2231_examples() {
        // RFC 2231 §3, §4, §4.1 examples.
        let ct = parse_content_type(
            b"message/external-body; access-type=URL;\r\n URL*0=\"ftp://\";\r\n URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"",
        )
        .unwrap();
        assert_eq!(
            ct.param("url"),
            Some(&b"ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"[..])
        );
        let ct = parse_content_type(
            b"application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
        )
        .unwrap();
        assert_eq!(ct.params, vec![p("title", "This is ***fun***")]);
        let ct = parse_content_type(
            b"application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
        )
        .unwrap();
        assert_eq!(
            ct.params,
            vec![p("title", "This is even more ***fun*** isn't it!")]
        );
        let (kind, params) =
            parse_disposition(b"attachment; filename*=UTF-8''%E2%82%AC%20rates.txt").unwrap();
        assert_eq!(kind, b"attachment");
        assert_eq!(params, vec![p("filename", "€ rates.txt")]);
        let (_, params) =
            parse_disposition(b"inline; filename*0=\"a\"; filename*1=\"b.txt\"").unwrap();
        assert_eq!(params, vec![p("filename", "ab.txt")]);
    }

    // RFC 2046 §5.1.1 example.
    const RFC2046: &[u8] = b"Content-Type: multipart/mixed; boundary=\"simple boundary\"\r\n\r\nThis is the preamble.  It is to be ignored, though it\r\nis a handy place for composition agents to include an\r\nexplanatory note to non-MIME conformant readers.\r\n\r\n--simple boundary\r\n\r\nThis is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak.\r\n--simple boundary\r\nContent-type: text/plain; charset=us-ascii\r\n\r\nThis is explicitly typed plain US-ASCII text.\r\nIt DOES end with a linebreak.\r\n\r\n--simple boundary--\r\n\r\nThis is the epilogue.  It is also to be ignored.\r\n";

    #[test]
    fn rfc2046_multipart() {
        let part = parse_part(RFC2046, 0, RFC2046.len(), &ContentType::text_plain(), 0);
        let PartKind::Multipart(children) = &part.kind else {
            panic!("not multipart")
        };
        assert_eq!(children.len(), 2);
        assert_eq!(slice(RFC2046, &children[0].header), b"\r\n");
        assert_eq!(
            slice(RFC2046, &children[0].body),
            b"This is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak."
        );
        assert_eq!(
            slice(RFC2046, &children[1].body),
            b"This is explicitly typed plain US-ASCII text.\r\nIt DOES end with a linebreak.\r\n"
        );
        assert_eq!(children[1].content.params, vec![p("charset", "us-ascii")]);
    }

    #[test]
    fn missing_boundary_gives_one_part() {
        let m = b"Content-Type: multipart/mixed; boundary=nope\r\n\r\nhello\r\n";
        let part = parse_part(m, 0, m.len(), &ContentType::text_plain(), 0);
        let PartKind::Multipart(children) = &part.kind else {
            panic!("not multipart")
        };
        assert_eq!(children.len(), 1);
        assert_eq!(slice(m, &children[0].body), b"hello\r\n");
        assert!(children[0].content.is("text", "plain"));
    }

    #[test]
    fn unterminated_and_empty_parts() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\nlast\r\n";
        let part = parse_part(m, 0, m.len(), &ContentType::text_plain(), 0);
        let PartKind::Multipart(children) = &part.kind else {
            panic!("not multipart")
        };
        assert_eq!(children.len(), 2);
        assert_eq!(slice(m, &children[0].body), b"");
        assert_eq!(slice(m, &children[1].body), b"last\r\n");
    }

    #[test]
    fn part_without_header_is_all_body() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nno header here\r\n--b\r\nX: y\r\n--b--\r\n";
        let part = parse_part(m, 0, m.len(), &ContentType::text_plain(), 0);
        let PartKind::Multipart(children) = &part.kind else {
            panic!("not multipart")
        };
        assert_eq!(slice(m, &children[0].header), b"");
        assert_eq!(slice(m, &children[0].body), b"no header here");
        // A header with no empty line after it is still a header.
        assert_eq!(slice(m, &children[1].header), b"X: y");
        assert_eq!(slice(m, &children[1].body), b"");
    }

    #[test]
    fn digest_default_is_message() {
        let m = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\nhi\r\n--d--\r\n";
        let part = parse_part(m, 0, m.len(), &ContentType::text_plain(), 0);
        let PartKind::Multipart(children) = &part.kind else {
            panic!("not multipart")
        };
        let PartKind::Message(inner) = &children[0].kind else {
            panic!("not message")
        };
        assert_eq!(slice(m, &inner.header), b"Subject: x\r\n\r\n");
        assert_eq!(slice(m, &inner.body), b"hi");
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let mut m = Vec::new();
        for _ in 0..10_000 {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"body\r\n");
        let part = parse_part(&m, 0, m.len(), &ContentType::text_plain(), 0);
        let mut depth = 0;
        let mut cur = &part;
        while let PartKind::Message(inner) = &cur.kind {
            cur = inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
    }

    /// Counts the parts below `part`.
    fn count_parts(part: &Part) -> usize {
        match &part.kind {
            PartKind::Single => 0,
            PartKind::Message(inner) => 1 + count_parts(inner),
            PartKind::Multipart(children) => {
                children.len() + children.iter().map(count_parts).sum::<usize>()
            }
        }
    }

    #[test]
    fn part_count_is_bounded() {
        // 100,000 empty parts in 700 KB: the tree stops at MAX_PARTS, and
        // the last part holds the rest of the body.
        let mut m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..100_000 {
            m.extend_from_slice(b"--b\r\n\r\n");
        }
        m.extend_from_slice(b"--b--\r\n");
        let part = parse_part(&m, 0, m.len(), &ContentType::text_plain(), 0);
        let PartKind::Multipart(children) = &part.kind else {
            panic!("not multipart")
        };
        assert_eq!(children.len(), MAX_PARTS);
        assert_eq!(count_parts(&part), MAX_PARTS);
        let last = &children[MAX_PARTS - 1];
        assert_eq!(last.body.end, m.len(), "the last part keeps the rest");
        assert!(slice(&m, &last.body).ends_with(b"--b\r\n\r\n--b--\r\n"));

        // Nested: the budget is shared by every level, message/rfc822 included.
        let mut m = b"Content-Type: multipart/mixed; boundary=o\r\n\r\n".to_vec();
        for _ in 0..30 {
            m.extend_from_slice(b"--o\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n");
            for _ in 0..1_000 {
                m.extend_from_slice(b"--i\r\n\r\nx\r\n");
            }
            m.extend_from_slice(b"--i--\r\n");
        }
        m.extend_from_slice(b"--o--\r\n");
        let part = parse_part(&m, 0, m.len(), &ContentType::text_plain(), 0);
        assert_eq!(count_parts(&part), MAX_PARTS);
        // Below the budget nothing changes.
        let part = parse_part(RFC2046, 0, RFC2046.len(), &ContentType::text_plain(), 0);
        assert_eq!(count_parts(&part), 2);
    }
}
