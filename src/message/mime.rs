//! The MIME tree of one message (RFC 2045/2046), read the way Dovecot 2.3
//! reads it, so that BODYSTRUCTURE and every BODY[part] have the same
//! bytes as Dovecot's (issue 9; tests/corpus_dovecot.rs compares them):
//!
//! - A line is a delimiter when it starts with `--` and a boundary of any
//!   multipart being read, innermost first, longest match (RFC 2046 §5.1.1:
//!   "it is sufficient that the boundary appear in its entirety"); a
//!   delimiter of an enclosing multipart ends every part inside it, even in
//!   the middle of a header. The line end before a delimiter belongs to
//!   the delimiter, unless that line end ends the previous delimiter line or
//!   the empty line after a header.
//! - Content-* fields count only in a MIME entity: a body part, or a
//!   message or encapsulated message with MIME-Version or Content-Type.
//! - A multipart without boundary, or whose boundary never comes, has no
//!   parts; every line of a part header counts as header until the empty
//!   line, colon or not.
//!
//! Parsing never fails and reads every byte once. Nesting deeper than
//! [`MAX_NESTED`] levels is left unparsed, so hostile mail cannot exhaust
//! the stack, and past [`MAX_PARTS`] parts no more delimiters are looked
//! for, so it cannot make the tree many times larger than itself.

use std::ops::Range;

use super::header;
use super::rfc822::{self, Lexer, Step};

pub(crate) use super::rfc822::Params;

/// A part this deep (the message is level 0) is not parsed further: a
/// multipart or message/rfc822 there is reported as opaque data.
/// Dovecot's `MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS`.
pub(crate) const MAX_NESTED: usize = 100;

/// Most parts one message is parsed into, the message itself counted. A
/// part costs about 300 bytes of tree, and `--b` CRLF CRLF is a part in 7
/// octets: an 11 MB message of empty parts would have needed more than the
/// session's whole address space (MDIMAP_LIMIT_MEMORY, 512 MiB). 10,000 is
/// Dovecot's limit too (`MESSAGE_PARSER_DEFAULT_MAX_TOTAL_MIME_PARTS`, since
/// CVE-2020-12100). Once it is reached no delimiter is recognised: the part
/// being read keeps the rest of the message, so SEARCH BODY still sees it.
pub(crate) const MAX_PARTS: usize = 10_000;

/// Longest boundary used (RFC 2046 allows 70); longer ones are cut here, as Dovecot does.
const BOUNDARY_MAX_LEN: usize = 80;

/// A parsed `type/subtype; name=value...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    /// As written (case kept); compare with `eq_ignore_ascii_case`. Both
    /// are empty for a value that is not a type at all, the subtype alone
    /// for a type without one.
    pub media_type: Vec<u8>,
    pub subtype: Vec<u8>,
    /// Parameters as written, RFC 2231 sections joined but not decoded
    /// (see [`rfc822::parameters`]).
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

    /// No type at all: for a header block looked at without its body (no allocation).
    pub fn unparsed() -> ContentType {
        ContentType::new(b"", b"", Vec::new())
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

    /// The first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads a Content-Type value (a field's full value). The flag says whether
/// it was a valid `type/subtype`; an invalid one keeps what could be read
/// and no parameters.
pub(crate) fn parse_content_type(value: &[u8]) -> (ContentType, bool) {
    let mut lx = Lexer::new(value);
    let _ = lx.skip_lwsp();
    let mut both = Vec::new();
    let step = lx.content_type(&mut both);
    let (media_type, subtype) = match memchr::memchr(b'/', &both) {
        Some(slash) => (
            both.get(..slash).unwrap_or_default(),
            both.get(slash + 1..).unwrap_or_default(),
        ),
        None => (both.as_slice(), &b""[..]),
    };
    if step == Step::Bad {
        return (ContentType::new(media_type, subtype, Vec::new()), false);
    }
    let params = rfc822::parameters(&mut lx);
    (ContentType::new(media_type, subtype, params), true)
}

/// What a part holds beyond its own bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartKind {
    Single,
    /// The body parts, possibly none (no boundary, or it never came).
    Multipart(Vec<Part>),
    /// message/rfc822: the encapsulated message, whose header and body lie
    /// within this part's body.
    Message(Box<Part>),
}

/// One node of the MIME tree. A message (top level or encapsulated) is a
/// `Part` whose header is the message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// The header block, with the empty line that ends it when there is one.
    pub header: Range<usize>,
    pub body: Range<usize>,
    /// The type in force: the Content-Type field's, else the default
    /// (text/plain, or message/rfc822 in a multipart/digest).
    pub content: ContentType,
    /// Whether `content` comes from a Content-Type field.
    pub declared: bool,
    /// Whether the part's Content-* fields count (RFC 2045 §4): a body
    /// part, or a message with MIME-Version or Content-Type.
    pub is_mime: bool,
    /// A multipart or message/rfc822 left unparsed at [`MAX_NESTED`] or
    /// [`MAX_PARTS`]: reported as application/octet-stream.
    pub truncated: bool,
    pub kind: PartKind,
}

/// Byte slice of `data` for a range, empty if out of bounds.
pub(crate) fn slice<'a>(data: &'a [u8], r: &Range<usize>) -> &'a [u8] {
    data.get(r.clone()).unwrap_or_default()
}

/// Parses a whole message.
pub(crate) fn parse_message(data: &[u8]) -> Part {
    let mut parser = Parser {
        data,
        boundaries: Vec::new(),
        total_parts: 1,
    };
    parser.entity(0, 0, false, false).0
}

/// The boundary of a multipart being read.
struct Boundary {
    text: Vec<u8>,
    /// Nesting level of the multipart it belongs to.
    owner: usize,
}

/// Where reading a part stopped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// At the end of the data.
    End,
    /// At a delimiter line starting at `line`, of the multipart at nesting
    /// level `owner`. The part that found it ends at `cut`, before the line
    /// end that belongs to the delimiter; the parts around it end at
    /// `outer`. They differ when the delimiter cut a header short: the
    /// line end then goes to the parent of the part whose header it was
    /// (Dovecot's accounting, which decides their sizes and bytes).
    Delimiter {
        line: usize,
        cut: usize,
        outer: usize,
        owner: usize,
        close: bool,
    },
}

impl Stop {
    /// Where a part ends: `finder` is the part that found the delimiter.
    fn end(&self, data_len: usize, finder: bool) -> usize {
        match self {
            Stop::End => data_len,
            Stop::Delimiter { cut, .. } if finder => *cut,
            Stop::Delimiter { outer, .. } => *outer,
        }
    }
}

/// What a part's header says about its type.
struct HeaderType {
    mime_version: bool,
    /// The first Content-Type field: (value, whether valid).
    content_type: Option<(ContentType, bool)>,
}

impl HeaderType {
    fn of(header: &[u8]) -> HeaderType {
        let mut found = HeaderType {
            mime_version: false,
            content_type: None,
        };
        for f in header::fields(header) {
            if f.name.eq_ignore_ascii_case(b"mime-version") {
                found.mime_version = true;
            } else if f.name.eq_ignore_ascii_case(b"content-type") && found.content_type.is_none() {
                found.content_type = Some(parse_content_type(&f.full_value()));
            }
        }
        found
    }
}

struct Parser<'d> {
    data: &'d [u8],
    /// Boundaries of the multiparts being read, innermost last.
    boundaries: Vec<Boundary>,
    /// Parts made so far, the message itself counted.
    total_parts: usize,
}

impl Parser<'_> {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn line_end(&self, pos: usize) -> usize {
        header::line_end(self.data, pos, self.len())
    }

    /// Length of the line end just before `line`, if it lies at or after `floor`.
    fn line_end_before(&self, line: usize, floor: usize) -> usize {
        if line <= floor || self.data.get(line - 1) != Some(&b'\n') {
            return 0;
        }
        if line >= floor + 2 && self.data.get(line - 2) == Some(&b'\r') {
            2
        } else {
            1
        }
    }

    /// Is the line at `pos` a delimiter of a multipart being read? Returns
    /// (owner, close). Innermost boundary first; the longest that the line
    /// starts with wins, and one the line holds exactly (or with `--`
    /// after it) at once.
    fn delimiter_at(&self, pos: usize) -> Option<(usize, bool)> {
        if self.boundaries.is_empty() || self.total_parts >= MAX_PARTS {
            return None;
        }
        let after = self.data.get(pos..)?.strip_prefix(b"--")?;
        let (line_len, trailing_dashes) = match memchr::memchr(b'\n', after) {
            Some(lf) => {
                let len = if lf > 0 && after.get(lf - 1) == Some(&b'\r') {
                    lf - 1
                } else {
                    lf
                };
                (len, len > 2 && after.get(len - 2..len) == Some(b"--"))
            }
            None => (after.len().min(BOUNDARY_MAX_LEN + 4), false),
        };
        let mut best: Option<&Boundary> = None;
        for b in self.boundaries.iter().rev() {
            let n = b.text.len();
            if n <= line_len
                && after.starts_with(&b.text)
                && best.is_none_or(|best| best.text.len() < n)
            {
                best = Some(b);
                if n == line_len || (n + 2 == line_len && trailing_dashes) {
                    break;
                }
            }
        }
        let b = best?;
        let n = b.text.len();
        Some((b.owner, after.get(n..n + 2) == Some(b"--")))
    }

    /// The first delimiter line at or after `from` (a line start), where the
    /// text before it ends; the line end before it belongs to the
    /// delimiter unless the line is the first one read from `from`.
    fn next_delimiter(&self, from: usize) -> Stop {
        if self.boundaries.is_empty() {
            return Stop::End;
        }
        let mut line = from;
        while line < self.len() {
            if let Some((owner, close)) = self.delimiter_at(line) {
                let cut = line - self.line_end_before(line, from);
                return Stop::Delimiter {
                    line,
                    cut,
                    outer: cut,
                    owner,
                    close,
                };
            }
            line = self.line_end(line);
        }
        Stop::End
    }

    /// Reads the entity (header, then body) starting at `start`, at nesting
    /// level `depth`. `in_digest`: a part of a multipart/digest;
    /// `body_part`: a part of any multipart (so a MIME entity).
    fn entity(
        &mut self,
        start: usize,
        depth: usize,
        in_digest: bool,
        body_part: bool,
    ) -> (Part, Stop) {
        // The header: up to the empty line, the end, or a delimiter, which
        // takes the line end before it.
        let mut pos = start;
        let mut last_line_end = 0;
        let (mut header_end, mut header_stop, closed) = loop {
            if pos >= self.len() {
                break (self.len(), None, false);
            }
            if let Some((owner, close)) = self.delimiter_at(pos) {
                let cut = pos - last_line_end;
                let stop = Stop::Delimiter {
                    line: pos,
                    cut,
                    outer: pos,
                    owner,
                    close,
                };
                break (cut, Some(stop), false);
            }
            let next = self.line_end(pos);
            let line = self.data.get(pos..next).unwrap_or_default();
            if line == b"\r\n" || line == b"\n" {
                last_line_end = line.len();
                break (next, None, true);
            }
            last_line_end = if line.ends_with(b"\r\n") {
                2
            } else {
                usize::from(line.ends_with(b"\n"))
            };
            pos = next;
        };
        let found = HeaderType::of(self.data.get(start..header_end).unwrap_or_default());
        let is_mime = body_part || found.mime_version || found.content_type.is_some();
        let (content, declared, valid) = match found.content_type {
            Some((ct, valid)) => (ct, true, valid),
            None if in_digest => (ContentType::message_rfc822(), false, false),
            None => (ContentType::text_plain(), false, false),
        };
        let multipart = declared && content.is_type("multipart") && !content.subtype.is_empty();
        let message = if declared {
            content.is("message", "rfc822")
        } else {
            in_digest
        };
        let can_nest = depth + 1 < MAX_NESTED;
        // A multipart's parts are looked for only after a complete header,
        // and not below MAX_NESTED (the multipart is then opaque data).
        let boundary = (multipart && valid && closed)
            .then(|| content.param("boundary"))
            .flatten();
        let overflow = boundary.is_some() && !can_nest;
        let boundary = boundary
            .filter(|_| can_nest)
            .map(|b| b.get(..BOUNDARY_MAX_LEN).unwrap_or(b).to_vec());
        if closed {
            // A delimiter right after the empty line (other than this
            // multipart's own first one) takes that line's line end, as
            // one in the header would.
            if let Some(text) = &boundary {
                self.boundaries.push(Boundary {
                    text: text.clone(),
                    owner: depth,
                });
            }
            let first = self.delimiter_at(header_end);
            if boundary.is_some() {
                self.boundaries.pop();
            }
            if let Some((owner, close)) =
                first.filter(|&(owner, _)| boundary.is_none() || owner != depth)
            {
                let cut = header_end - last_line_end;
                header_stop = Some(Stop::Delimiter {
                    line: header_end,
                    cut,
                    outer: header_end,
                    owner,
                    close,
                });
                header_end = cut;
            }
        }
        let header_range = start..header_end;
        let body_start = header_end;
        let mut truncated = false;

        // (kind, the stop, whether this part found it itself)
        let (kind, stop, found_here) = if let Some(stop) = header_stop {
            let kind = if message && can_nest && self.total_parts < MAX_PARTS {
                // The encapsulated message is empty.
                self.total_parts += 1;
                PartKind::Message(Box::new(empty_part(body_start)))
            } else if multipart && !overflow {
                PartKind::Multipart(Vec::new())
            } else {
                truncated = message || overflow;
                PartKind::Single
            };
            (kind, stop, true)
        } else if message {
            if can_nest && self.total_parts < MAX_PARTS {
                self.total_parts += 1;
                let (inner, stop) = self.entity(body_start, depth + 1, false, false);
                (PartKind::Message(Box::new(inner)), stop, false)
            } else {
                truncated = true;
                (PartKind::Single, self.next_delimiter(body_start), true)
            }
        } else if overflow {
            truncated = true;
            (PartKind::Single, self.next_delimiter(body_start), true)
        } else if let Some(boundary) = boundary {
            let digest = content.subtype.eq_ignore_ascii_case(b"digest");
            let (kind, stop) = self.body_parts(body_start, depth, boundary, digest);
            (kind, stop, false)
        } else if multipart {
            (
                PartKind::Multipart(Vec::new()),
                self.next_delimiter(body_start),
                true,
            )
        } else {
            (PartKind::Single, self.next_delimiter(body_start), true)
        };
        let body_end = stop.end(self.len(), found_here).max(body_start);
        let part = Part {
            header: header_range,
            body: body_start..body_end,
            content,
            declared,
            is_mime,
            truncated,
            kind,
        };
        (part, stop)
    }

    /// The body of a multipart at level `depth` with `boundary`: preamble,
    /// body parts, epilogue. Stops at the end or at a delimiter of an
    /// enclosing multipart.
    fn body_parts(
        &mut self,
        start: usize,
        depth: usize,
        boundary: Vec<u8>,
        digest: bool,
    ) -> (PartKind, Stop) {
        self.boundaries.push(Boundary {
            text: boundary,
            owner: depth,
        });
        let mut parts = Vec::new();
        let mut stop = self.next_delimiter(start);
        loop {
            match stop {
                Stop::Delimiter {
                    line, owner, close, ..
                } if owner == depth => {
                    let after = self.line_end(line);
                    if close {
                        self.boundaries.retain(|b| b.owner < depth);
                        // The epilogue, up to a delimiter of an enclosing multipart.
                        stop = self.next_delimiter(after);
                        break;
                    }
                    self.total_parts += 1;
                    let (part, next) = self.entity(after, depth + 1, digest, true);
                    parts.push(part);
                    stop = next;
                }
                _ => break,
            }
        }
        self.boundaries.retain(|b| b.owner < depth);
        (PartKind::Multipart(parts), stop)
    }
}

/// An entity with no bytes at `at`.
fn empty_part(at: usize) -> Part {
    Part {
        header: at..at,
        body: at..at,
        content: ContentType::text_plain(),
        declared: false,
        is_mime: false,
        truncated: false,
        kind: PartKind::Single,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (name.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    fn children(part: &Part) -> &[Part] {
        match &part.kind {
            PartKind::Multipart(children) => children,
            other => panic!("not multipart: {other:?}"),
        }
    }

    #[test]
    fn content_type_basic() {
        let (ct, valid) =
            parse_content_type(b"Text/HTML; charset=\"ISO-8859-1\" (comment); format=flowed");
        assert!(valid);
        assert_eq!(ct.media_type, b"Text");
        assert_eq!(ct.subtype, b"HTML");
        assert_eq!(
            ct.params,
            vec![p("charset", "ISO-8859-1"), p("format", "flowed")]
        );
        assert!(ct.is("text", "html"));
        // A type without subtype keeps the type; anything else is nothing.
        let (ct, valid) = parse_content_type(b"text");
        assert!(!valid);
        assert_eq!(
            (ct.media_type.as_slice(), ct.subtype.as_slice()),
            (&b"text"[..], &b""[..])
        );
        let (ct, valid) = parse_content_type(b"this is not a type; charset=utf-8");
        assert!(!valid);
        assert_eq!(ct, ContentType::new(b"", b"", Vec::new()));
        let (ct, _) = parse_content_type(b"multipart/mixed; boundary=\"simple boundary\"");
        assert_eq!(ct.param("BOUNDARY"), Some(&b"simple boundary"[..]));
    }

    // RFC 2046 §5.1.1 example.
    const RFC2046: &[u8] = b"Content-Type: multipart/mixed; boundary=\"simple boundary\"\r\n\r\nThis is the preamble.  It is to be ignored, though it\r\nis a handy place for composition agents to include an\r\nexplanatory note to non-MIME conformant readers.\r\n\r\n--simple boundary\r\n\r\nThis is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak.\r\n--simple boundary\r\nContent-type: text/plain; charset=us-ascii\r\n\r\nThis is explicitly typed plain US-ASCII text.\r\nIt DOES end with a linebreak.\r\n\r\n--simple boundary--\r\n\r\nThis is the epilogue.  It is also to be ignored.\r\n";

    #[test]
    fn rfc2046_multipart() {
        let part = parse_message(RFC2046);
        let parts = children(&part);
        assert_eq!(parts.len(), 2);
        assert_eq!(slice(RFC2046, &parts[0].header), b"\r\n");
        assert_eq!(
            slice(RFC2046, &parts[0].body),
            b"This is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak."
        );
        assert_eq!(
            slice(RFC2046, &parts[1].body),
            b"This is explicitly typed plain US-ASCII text.\r\nIt DOES end with a linebreak.\r\n"
        );
        assert_eq!(parts[1].content.params, vec![p("charset", "us-ascii")]);
        assert!(parts[0].is_mime && !parts[0].declared);
        assert_eq!(
            part.body.end,
            RFC2046.len(),
            "the epilogue is the multipart's"
        );
    }

    #[test]
    fn multipart_without_parts() {
        // No boundary parameter, a boundary that never comes, only a close:
        // no parts at all (Dovecot's reading).
        for m in [
            &b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhello\r\n"[..],
            b"Content-Type: multipart/mixed; boundary=nope\r\n\r\nhello\r\n",
            b"Content-Type: multipart/mixed; boundary=z\r\n\r\npreamble\r\n--z--\r\n",
        ] {
            let part = parse_message(m);
            assert!(children(&part).is_empty(), "{m:?}");
            assert_eq!(
                slice(m, &part.body),
                &m[m.len() - slice(m, &part.body).len()..]
            );
        }
        // An empty boundary is a boundary.
        let m = b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n----\r\n";
        let part = parse_message(m);
        assert_eq!(slice(m, &children(&part)[0].body), b"x");
    }

    #[test]
    fn unterminated_and_empty_parts() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\nlast\r\n";
        let parts = children(&parse_message(m)).to_vec();
        assert_eq!(parts.len(), 2);
        assert_eq!(slice(m, &parts[0].header), b"");
        assert_eq!(slice(m, &parts[0].body), b"");
        assert_eq!(slice(m, &parts[1].body), b"last\r\n");
        // The empty line right before a delimiter is the delimiter's: the
        // header ends without it.
        let m = b"Content-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\n\r\n--e\r\nContent-Type: text/plain\r\n\r\n--e--\r\n";
        let parts = children(&parse_message(m)).to_vec();
        assert_eq!(slice(m, &parts[0].header), b"");
        assert_eq!(slice(m, &parts[1].header), b"Content-Type: text/plain\r\n");
        assert_eq!(parts[1].body, parts[1].header.end..parts[1].header.end);
    }

    #[test]
    fn part_without_empty_line_is_all_header() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nno header here\r\n--b\r\nX: y\r\n--b--\r\n";
        let parts = children(&parse_message(m)).to_vec();
        assert_eq!(slice(m, &parts[0].header), b"no header here");
        assert_eq!(slice(m, &parts[0].body), b"");
        assert_eq!(slice(m, &parts[1].header), b"X: y");
        assert_eq!(slice(m, &parts[1].body), b"");
    }

    #[test]
    fn delimiters_are_prefixes_and_close_inner_parts() {
        // RFC 2046 §5.1.1: the boundary need only start the line.
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--bx more\r\n\r\ntwo\r\n--b--\r\n";
        let parts = children(&parse_message(m)).to_vec();
        assert_eq!(parts.len(), 2);
        assert_eq!(slice(m, &parts[0].body), b"one");
        // An outer delimiter ends an inner multipart that never closed.
        let m = b"Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n--in\r\n\r\na\r\n--out\r\n\r\nb\r\n--out--\r\n";
        let outer = parse_message(m);
        let parts = children(&outer);
        assert_eq!(parts.len(), 2);
        assert_eq!(slice(m, &children(&parts[0])[0].body), b"a");
        assert_eq!(slice(m, &parts[1].body), b"b");
        // The same boundary inside: the innermost multipart's.
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ninner\r\n--b--\r\n--b--\r\n";
        let outer = parse_message(m);
        let inner = &children(&outer)[0];
        assert_eq!(slice(m, &children(inner)[0].body), b"inner");
        // After the close, the rest of the line and the epilogue are the multipart's.
        assert_eq!(slice(m, &inner.body), b"--b\r\n\r\ninner\r\n--b--\r\n");
    }

    #[test]
    fn cut_header_line_end_goes_to_the_parent() {
        // An encapsulated message whose header a delimiter cuts: the line
        // end is the message/rfc822 part's, not the inner message's.
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nnot a field\r\n--b--\r\n";
        let outer = parse_message(m);
        let rfc822 = &children(&outer)[0];
        assert_eq!(slice(m, &rfc822.body), b"not a field\r\n");
        let PartKind::Message(inner) = &rfc822.kind else {
            panic!("not message")
        };
        assert_eq!(slice(m, &inner.header), b"not a field");
    }

    #[test]
    fn digest_default_is_message() {
        let m = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\nhi\r\n--d--\r\n";
        let part = parse_message(m);
        let PartKind::Message(inner) = &children(&part)[0].kind else {
            panic!("not message")
        };
        assert_eq!(slice(m, &inner.header), b"Subject: x\r\n\r\n");
        assert_eq!(slice(m, &inner.body), b"hi");
    }

    #[test]
    fn content_fields_need_mime() {
        // RFC 2045 §4: without MIME-Version or Content-Type, Content-* fields
        // of a message do not count; a body part's always do.
        let part = parse_message(b"Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n");
        assert!(!part.is_mime && !part.declared);
        let part = parse_message(b"MIME-Version: 1.0\r\n\r\nx");
        assert!(part.is_mime && !part.declared);
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let mut m = Vec::new();
        for _ in 0..10_000 {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"body\r\n");
        let part = parse_message(&m);
        let mut depth = 0;
        let mut cur = &part;
        while let PartKind::Message(inner) = &cur.kind {
            cur = inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_NESTED - 1);
        assert!(cur.truncated);
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
        // 100,000 empty parts in 700 KB: the tree stops at MAX_PARTS (the
        // message counted), and the last part holds the rest of the body.
        let mut m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..100_000 {
            m.extend_from_slice(b"--b\r\n\r\n");
        }
        m.extend_from_slice(b"--b--\r\n");
        let part = parse_message(&m);
        let parts = children(&part);
        assert_eq!(parts.len(), MAX_PARTS - 1);
        assert_eq!(count_parts(&part), MAX_PARTS - 1);
        let last = &parts[MAX_PARTS - 2];
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
        assert_eq!(count_parts(&parse_message(&m)), MAX_PARTS - 1);
        // Below the budget nothing changes.
        assert_eq!(count_parts(&parse_message(RFC2046)), 2);
    }
}
