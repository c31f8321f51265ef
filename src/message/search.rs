//! SEARCH text matching (RFC 3501 §6.4.4), with the answers Dovecot 2.3
//! gives (issue 9; tests/search_sort.rs compares them on a fixture and on
//! the corpus): a case-insensitive substring match on decoded text, folded
//! by i;unicode-casemap (RFC 5051, as I18NLEVEL=1 asks) on both sides, so
//! case, canonical and compatibility equivalents match (`cafe` with a
//! combining accent is found as `café`, and `cafe` in it too). What each
//! key looks at, as Dovecot's index-search.c and message-search.c do:
//!
//! - HEADER name: each field of that name in the message header. A field's
//!   value is read as Dovecot's header parser reads it: one blank after the
//!   colon dropped, line ends out, a tab that starts a continuation line a
//!   space; then encoded words decoded (RFC 2047).
//! - SUBJECT: the same, every run of blanks one space, leading ones gone.
//! - FROM, TO, CC, BCC: RFC 3501 defines them by "the envelope structure's"
//!   field, so each field's addresses as ENVELOPE parses them, written back
//!   as `"Name" <mailbox@host>` ([`written_addresses`]): comments, and what
//!   a broken address loses, are not found; the raw text is HEADER's.
//! - BODY: the bodies of the text parts: a part whose last Content-Type is a
//!   valid text/* or message/* (or that has none), transfer-decoded by its
//!   last Content-Transfer-Encoding (a body in any encoding but 7bit, 8bit,
//!   binary, base64 and quoted-printable is not searched) and converted to
//!   UTF-8 from its charset. A multipart's preamble and epilogue are not.
//! - TEXT: BODY's bodies, and every field of the message header, of each
//!   body part's header and of each encapsulated message's header, as
//!   `name: value` (RFC 3501: "the header or body"; a part's MIME header is
//!   body text).
//!
//! [`SearchText`] holds one message's decoded text so that a search's keys
//! share one decoding.

use super::Message;
use super::casemap::fold;
use super::decode;
use super::envelope::written_addresses;
use super::header::{self, Field};
use super::mime::{self, Part, PartKind};
use super::rfc822::{Lexer, Step};
use memchr::memmem;
use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};

/// A SEARCH string, case-folded once for all the messages it is matched against.
#[derive(Debug, Clone)]
pub struct Needle {
    folded: String,
    /// Boxed: a finder is a few hundred bytes, and search keys (which hold
    /// needles) are matched by recursion, deep for a deeply nested key.
    finder: Box<memmem::Finder<'static>>,
    /// The folded string is ASCII without a blank or line end: it cannot
    /// span the places where a header field's folded form differs from its
    /// raw bytes ([`raw_answer`]).
    unbroken: bool,
}

impl PartialEq for Needle {
    fn eq(&self, other: &Needle) -> bool {
        self.folded == other.folded
    }
}

impl Eq for Needle {}

impl Needle {
    /// Folds `text` (already UTF-8) as the haystacks are folded.
    pub fn new(text: &str) -> Needle {
        let folded = fold(text);
        let finder = Box::new(memmem::Finder::new(folded.as_bytes()).into_owned());
        let unbroken = folded.is_ascii()
            && !folded
                .bytes()
                .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        Needle {
            folded,
            finder,
            unbroken,
        }
    }

    fn is_empty(&self) -> bool {
        self.folded.is_empty()
    }

    fn found_in(&self, folded_haystack: &str) -> bool {
        self.finder.find(folded_haystack.as_bytes()).is_some()
    }
}

/// Is the ASCII `needle` in the ASCII `text`? Such text folds to its upper
/// case (titlecase is upper case, and NFKD changes nothing, in ASCII), so
/// the fold is made in `buf`, without keeping it.
fn ascii_contains(needle: &Needle, text: &[u8], buf: &mut Vec<u8>) -> bool {
    buf.clear();
    buf.extend_from_slice(text);
    buf.make_ascii_uppercase();
    needle.finder.find(buf).is_some()
}

/// Is `needle` in `raw` (header bytes: a field's value, or a whole block),
/// told from the raw bytes alone? An ASCII value without encoded words
/// folds to its own bytes upper-cased, less the line ends of continuation
/// lines (each followed by a blank, a tab made a space) and, for SUBJECT,
/// runs of blanks made one: a needle without blanks is in the folded form
/// if and only if it is in the raw bytes. `None` when the raw bytes cannot
/// tell (a needle with blanks, 8-bit text, an encoded word).
fn raw_answer(needle: &Needle, raw: &[u8], buf: &mut Vec<u8>) -> Option<bool> {
    (needle.unbroken && raw.is_ascii() && memmem::find(raw, b"=?").is_none())
        .then(|| ascii_contains(needle, raw, buf))
}

/// Could a field of the header block `header` hold `needle` in its folded
/// form? False only when it surely cannot ([`raw_answer`] on the whole
/// block: a needle in no field's raw bytes is in no folded field).
fn raw_may_hold(needle: &Needle, header: &[u8], buf: &mut Vec<u8>) -> bool {
    raw_answer(needle, header, buf).unwrap_or(true)
}

/// One message as SEARCH sees it. Each header field and each text part is
/// decoded and case-folded at most once, when a key first needs it, and then
/// shared by every key of the search: a search with hundreds of BODY or TEXT
/// keys costs one decoding of the message, and a message that a flag key has
/// already decided is never decoded. It lives for one message, so what it
/// holds is bounded by that message's decoded text, plus 28 bytes a header
/// field: a header of millions of fields is not millions of anything larger.
pub struct SearchText<'m> {
    msg: &'m Message<'m>,
    /// The fields of the message header, which the header keys look at.
    fields: OnceCell<Vec<FieldSlot>>,
    /// The other header blocks (body parts', encapsulated messages'), for TEXT.
    inner_headers: OnceCell<Vec<HeaderBlock<'m>>>,
    /// The folded texts of the fields decoded so far, back to back.
    folded: RefCell<String>,
    parts: OnceCell<Vec<TextPart<'m>>>,
    /// Room for the upper case of ASCII text matched by [`ascii_contains`].
    upper: RefCell<Vec<u8>>,
}

/// A header block other than the message's own, and its fields.
struct HeaderBlock<'m> {
    header: &'m [u8],
    fields: Vec<FieldSlot>,
}

/// One header field: where it starts in its header block (it is read again
/// from there when needed), and where its folded texts lie in
/// [`SearchText::folded`] once made. Offsets are u32 to keep a slot small:
/// fields past 4 GiB of header are not searched, and a text that would lie
/// past 4 GiB of folded text is made again each time.
struct FieldSlot {
    start: u32,
    /// `name: value`, for TEXT, and HEADER (which looks past the name).
    line: FoldedText,
    /// SUBJECT's form of a Subject field, or the written addresses of an
    /// address field for FROM, TO, CC and BCC.
    key_form: FoldedText,
}

/// Where a folded text lies, and where in it the value starts.
struct FoldedText {
    at: Cell<u32>,
    len: Cell<u32>,
    value_at: Cell<u32>,
}

/// `at` of a text not made yet.
const NOT_FOLDED: u32 = u32::MAX;

impl FoldedText {
    fn new() -> FoldedText {
        FoldedText {
            at: Cell::new(NOT_FOLDED),
            len: Cell::new(0),
            value_at: Cell::new(0),
        }
    }
}

impl FieldSlot {
    fn new(start: u32) -> FieldSlot {
        FieldSlot {
            start,
            line: FoldedText::new(),
            key_form: FoldedText::new(),
        }
    }
}

/// The slots of the fields of `header`.
fn field_slots(header: &[u8]) -> Vec<FieldSlot> {
    // One walk over the fields; the list is cut to its size afterwards, so
    // that a header of millions of fields keeps 28 bytes a field.
    let mut slots: Vec<FieldSlot> = header::fields(header)
        .map_while(|f| u32::try_from(f.start).ok().map(FieldSlot::new))
        .collect();
    slots.shrink_to_fit();
    slots
}

/// A field as Dovecot's header parser splits it (message-header-parser.c,
/// as its search reads headers): what lies between the name and the value
/// (the blanks before the colon, the colon, and at most one blank after
/// it), and the value. A line without a colon, or whose name is too long,
/// is all value.
fn split_field<'a>(f: &Field<'a>) -> (&'a [u8], &'a [u8]) {
    // The value is a slice of the field's bytes; where it starts in them
    // tells whether there was a colon before it.
    let value_at = (f.value.as_ptr() as usize).saturating_sub(f.raw.as_ptr() as usize);
    if value_at == 0 {
        return (&[], f.value);
    }
    let blank = usize::from(matches!(f.value.first(), Some(b' ' | b'\t')));
    let middle = f
        .raw
        .get(f.name.len()..value_at + blank)
        .unwrap_or_default();
    (middle, f.value.get(blank..).unwrap_or_default())
}

/// A value on one line as Dovecot's search reads it (the parser's
/// CLEAN_ONELINE): line ends out, and a tab that starts a continuation line
/// made a space; other blanks kept.
fn one_line(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for (i, line) in value.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.split_first() {
            Some((b'\t', rest)) if i > 0 => {
                out.push(b' ');
                out.extend_from_slice(rest);
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// SUBJECT's value: each run of blanks one space, leading blanks gone
/// (index-search.c `compress_lwsp`).
fn compress_blanks(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut after_blank = true;
    for &b in value {
        if b == b' ' || b == b'\t' {
            if !after_blank {
                out.push(b' ');
            }
            after_blank = true;
        } else {
            out.push(b);
            after_blank = false;
        }
    }
    out
}

fn count_decode() {
    #[cfg(test)]
    decode_counts::FIELDS.with(|c| c.set(c.get() + 1));
}

/// `name`, the colon and the value, folded, and the byte offset of the
/// value in it.
fn fold_line(field: &Field<'_>) -> (String, usize) {
    count_decode();
    let (middle, value) = split_field(field);
    // Folding the name and the value apart gives the same string as
    // folding the whole line: the fold maps character by character, and
    // nothing decomposes across the colon.
    let mut line = fold(&decode::utf8_lossy(field.name));
    decode::push_utf8_lossy(&mut line, middle);
    let at = line.len();
    line.push_str(&fold(&decode::decode_words(&one_line(value))));
    (line, at)
}

/// SUBJECT's folded form of a field.
fn fold_subject(field: &Field<'_>) -> (String, usize) {
    count_decode();
    let value = compress_blanks(&one_line(split_field(field).1));
    (fold(&decode::decode_words(&value)), 0)
}

/// The folded addresses of an address field, written as Dovecot writes them.
fn fold_addresses(field: &Field<'_>) -> (String, usize) {
    count_decode();
    let written = written_addresses(&one_line(split_field(field).1));
    (fold(&decode::decode_words(&written)), 0)
}

/// How a body part's content is transfer-encoded, for SEARCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferEncoding {
    /// 7bit, 8bit, binary, or no Content-Transfer-Encoding at all.
    Identity,
    Base64,
    QuotedPrintable,
    /// Anything else: the body is not searched.
    Unknown,
}

/// A Content-Transfer-Encoding value read as Dovecot reads it for SEARCH
/// (message-decoder.c `message_decoder_parse_cte`): a token, which comments
/// may surround and a `;` (parameters, which RFC 2045 does not have) may
/// follow, but nothing else.
fn transfer_encoding(value: &[u8]) -> TransferEncoding {
    let mut lx = Lexer::new(value);
    let _ = lx.skip_lwsp();
    let mut token = Vec::new();
    if lx.mime_token(&mut token) == Step::More && lx.peek() != Some(b';') {
        return TransferEncoding::Unknown;
    }
    let is = |name: &[u8]| token.eq_ignore_ascii_case(name);
    if is(b"7bit") || is(b"8bit") || is(b"binary") {
        TransferEncoding::Identity
    } else if is(b"base64") {
        TransferEncoding::Base64
    } else if is(b"quoted-printable") {
        TransferEncoding::QuotedPrintable
    } else {
        TransferEncoding::Unknown
    }
}

/// How SEARCH reads the body of a part with header block `header`: None
/// when it does not. A part's body is text unless its last Content-Type
/// says otherwise: a valid type/subtype of another type than text and
/// message, or no valid type at all (message-search.c). Its last
/// Content-Transfer-Encoding counts.
fn body_encoding(header: &[u8]) -> Option<TransferEncoding> {
    let mut text = true;
    let mut encoding = TransferEncoding::Identity;
    for f in header::fields(header) {
        if f.name.eq_ignore_ascii_case(b"content-type") {
            let (content, valid) = mime::parse_content_type(&one_line(split_field(&f).1));
            text = valid && (content.is_type("text") || content.is_type("message"));
        } else if f.name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            encoding = transfer_encoding(&one_line(split_field(&f).1));
        }
    }
    (text && encoding != TransferEncoding::Unknown).then_some(encoding)
}

struct TextPart<'m> {
    data: &'m [u8],
    part: &'m Part,
    encoding: TransferEncoding,
    /// The body, transfer-decoded, converted to UTF-8 and folded.
    folded: OnceCell<String>,
}

impl TextPart<'_> {
    /// The body, transfer-decoded.
    fn decoded(&self) -> Cow<'_, [u8]> {
        let body = mime::slice(self.data, &self.part.body);
        match self.encoding {
            TransferEncoding::Base64 => Cow::Owned(decode::base64(body)),
            TransferEncoding::QuotedPrintable => Cow::Owned(decode::quoted_printable(body, false)),
            TransferEncoding::Identity | TransferEncoding::Unknown => Cow::Borrowed(body),
        }
    }

    fn folded(&self) -> &str {
        self.folded.get_or_init(|| self.fold_of(&self.decoded()))
    }

    /// The body folded. `to_utf8` borrows ASCII in any ASCII-compatible
    /// charset, and `fold` upper-cases all-ASCII text at once: the common
    /// case costs a check and a copy.
    fn fold_of(&self, bytes: &[u8]) -> String {
        #[cfg(test)]
        decode_counts::PARTS.with(|c| c.set(c.get() + 1));
        fold(&decode::to_utf8(self.part.content.param("charset"), bytes))
    }
}

/// Every text part under `part`, depth first.
fn collect_text_parts<'m>(data: &'m [u8], part: &'m Part, out: &mut Vec<TextPart<'m>>) {
    match &part.kind {
        PartKind::Multipart(children) => {
            for c in children {
                collect_text_parts(data, c, out);
            }
        }
        PartKind::Message(inner) => collect_text_parts(data, inner, out),
        PartKind::Single => {
            if let Some(encoding) = body_encoding(mime::slice(data, &part.header)) {
                out.push(TextPart {
                    data,
                    part,
                    encoding,
                    folded: OnceCell::new(),
                });
            }
        }
    }
}

/// The header blocks of the parts under `part` (not its own), depth first.
fn collect_inner_headers<'m>(data: &'m [u8], part: &'m Part, out: &mut Vec<HeaderBlock<'m>>) {
    let add = |p: &'m Part, out: &mut Vec<HeaderBlock<'m>>| {
        let header = mime::slice(data, &p.header);
        out.push(HeaderBlock {
            header,
            fields: field_slots(header),
        });
        collect_inner_headers(data, p, out);
    };
    match &part.kind {
        PartKind::Multipart(children) => {
            for c in children {
                add(c, out);
            }
        }
        PartKind::Message(inner) => add(inner, out),
        PartKind::Single => {}
    }
}

impl<'m> SearchText<'m> {
    pub fn new(msg: &'m Message<'m>) -> SearchText<'m> {
        SearchText {
            msg,
            fields: OnceCell::new(),
            inner_headers: OnceCell::new(),
            folded: RefCell::new(String::new()),
            parts: OnceCell::new(),
            upper: RefCell::new(Vec::new()),
        }
    }

    /// The message itself, for keys that read it otherwise (SENT*).
    pub fn message(&self) -> &'m Message<'m> {
        self.msg
    }

    fn fields(&self) -> &[FieldSlot] {
        self.fields.get_or_init(|| field_slots(self.msg.header()))
    }

    fn inner_headers(&self) -> &[HeaderBlock<'m>] {
        self.inner_headers.get_or_init(|| {
            let mut out = Vec::new();
            collect_inner_headers(self.msg.data, &self.msg.root, &mut out);
            out
        })
    }

    /// Calls `f` with the folded text `text` and the offset of the value in
    /// it, making it with `make` (from the field of `slot`, in `header`)
    /// the first time.
    fn with_text(
        &self,
        header: &[u8],
        slot: &FieldSlot,
        text: impl Fn(&FieldSlot) -> &FoldedText,
        make: fn(&Field<'_>) -> (String, usize),
        f: impl FnOnce(&str, usize) -> bool,
    ) -> bool {
        let cached = text(slot);
        if cached.at.get() != NOT_FOLDED {
            let at = cached.at.get() as usize;
            let folded = self.folded.borrow();
            if let Some(s) = folded.get(at..at + cached.len.get() as usize) {
                return f(s, cached.value_at.get() as usize);
            }
        }
        let Some(field) = header::field_at(header, slot.start as usize) else {
            return false;
        };
        let (s, value_at) = make(&field);
        let mut folded = self.folded.borrow_mut();
        if let (Ok(at), Ok(len), Ok(value_at), Ok(_)) = (
            u32::try_from(folded.len()),
            u32::try_from(s.len()),
            u32::try_from(value_at),
            u32::try_from(folded.len() + s.len()),
        ) {
            folded.push_str(&s);
            cached.at.set(at);
            cached.len.set(len);
            cached.value_at.set(value_at);
        }
        drop(folded);
        f(&s, value_at)
    }

    fn parts(&self) -> &[TextPart<'m>] {
        self.parts.get_or_init(|| {
            let mut out = Vec::new();
            collect_text_parts(self.msg.data, &self.msg.root, &mut out);
            out
        })
    }

    /// Does a field of the message header called `name` have `needle` in
    /// the form `make` gives (kept in `text` of its slot)? An empty needle
    /// matches if the field exists.
    fn field_contains(
        &self,
        name: &[u8],
        needle: &Needle,
        text: impl Fn(&FieldSlot) -> &FoldedText + Copy,
        make: fn(&Field<'_>) -> (String, usize),
        raw_exact: bool,
    ) -> bool {
        let header = self.msg.header();
        self.fields().iter().any(|slot| {
            // A field called `name` starts with it: most fields are passed
            // over on that, without being read again.
            let start = slot.start as usize;
            let field = header
                .get(start..start + name.len())
                .is_some_and(|b| b.eq_ignore_ascii_case(name))
                .then(|| header::field_at(header, start))
                .flatten()
                .filter(|f| f.name.eq_ignore_ascii_case(name));
            let Some(field) = field else {
                return false;
            };
            if needle.is_empty() {
                return true;
            }
            // HEADER's and SUBJECT's forms differ from the raw value only as
            // `raw_answer` allows; the addresses' written form does not.
            if raw_exact
                && let Some(found) = raw_answer(needle, field.value, &mut self.upper.borrow_mut())
            {
                return found;
            }
            self.with_text(header, slot, text, make, |s, at| {
                needle.found_in(s.get(at..).unwrap_or_default())
            })
        })
    }

    /// HEADER: does a header field `name` contain `needle` in its value?
    /// Encoded words are decoded first. An empty needle matches if the
    /// field exists.
    pub fn header_contains(&self, name: &[u8], needle: &Needle) -> bool {
        self.field_contains(name, needle, |s| &s.line, fold_line, true)
    }

    /// SUBJECT: [`SearchText::header_contains`] on Subject, blanks made one.
    pub fn subject_contains(&self, needle: &Needle) -> bool {
        self.field_contains(b"subject", needle, |s| &s.key_form, fold_subject, true)
    }

    /// FROM, TO, CC, BCC: does an address field `name` hold `needle` in its
    /// addresses, written as Dovecot writes them?
    pub fn address_contains(&self, name: &[u8], needle: &Needle) -> bool {
        self.field_contains(name, needle, |s| &s.key_form, fold_addresses, false)
    }

    /// Does the body (every text part, transfer- and charset-decoded)
    /// contain `needle`? Parts are decoded in order until one matches.
    pub fn body_contains(&self, needle: &Needle) -> bool {
        needle.is_empty() || self.parts().iter().any(|p| needle.found_in(p.folded()))
    }

    /// TEXT key: a field of any header block (name or decoded value), or
    /// the body.
    pub fn text_contains(&self, needle: &Needle) -> bool {
        let in_block = |header: &[u8], fields: &[FieldSlot]| {
            // Its own statement: the scratch buffer is given back before the fields are read.
            let may_hold = raw_may_hold(needle, header, &mut self.upper.borrow_mut());
            may_hold
                && fields.iter().any(|slot| {
                    self.with_text(
                        header,
                        slot,
                        |s| &s.line,
                        fold_line,
                        |s, _| needle.found_in(s),
                    )
                })
        };
        needle.is_empty()
            || in_block(self.msg.header(), self.fields())
            || self.body_contains(needle)
            || self
                .inner_headers()
                .iter()
                .any(|b| in_block(b.header, &b.fields))
    }
}

/// Does the header field `name` contain `needle` (already UTF-8)? The
/// one-key form of [`SearchText::header_contains`].
pub fn header_contains(msg: &Message, name: &[u8], needle: &str) -> bool {
    SearchText::new(msg).header_contains(name, &Needle::new(needle))
}

/// The one-key form of [`SearchText::subject_contains`].
pub fn subject_contains(msg: &Message, needle: &str) -> bool {
    SearchText::new(msg).subject_contains(&Needle::new(needle))
}

/// The one-key form of [`SearchText::address_contains`].
pub fn address_contains(msg: &Message, name: &[u8], needle: &str) -> bool {
    SearchText::new(msg).address_contains(name, &Needle::new(needle))
}

/// The one-key form of [`SearchText::body_contains`].
pub fn body_contains(msg: &Message, needle: &str) -> bool {
    SearchText::new(msg).body_contains(&Needle::new(needle))
}

/// The one-key form of [`SearchText::text_contains`].
pub fn text_contains(msg: &Message, needle: &str) -> bool {
    SearchText::new(msg).text_contains(&Needle::new(needle))
}

/// Converts a SEARCH string in `charset` (None = US-ASCII, read as UTF-8) to
/// UTF-8; Err(()) for a charset we do not know (the caller sends BADCHARSET).
// The unit error is the agreed interface: the only failure is "unknown charset".
#[allow(clippy::result_unit_err)]
pub fn decode_search_string(charset: Option<&str>, s: &[u8]) -> Result<String, ()> {
    let utf8 = || String::from_utf8_lossy(s).into_owned();
    let Some(label) = charset else {
        return Ok(utf8());
    };
    let label = label.trim();
    if label.eq_ignore_ascii_case("us-ascii")
        || label.eq_ignore_ascii_case("ascii")
        || label.eq_ignore_ascii_case("utf-8")
    {
        return Ok(utf8());
    }
    match encoding_rs::Encoding::for_label(label.as_bytes()) {
        Some(enc) => Ok(enc.decode_without_bom_handling(s).0.into_owned()),
        None => Err(()),
    }
}

/// How many header fields and text parts have been decoded on this thread,
/// for tests that check each is decoded once per search.
#[cfg(test)]
pub(crate) mod decode_counts {
    use std::cell::Cell;
    thread_local! {
        pub(crate) static FIELDS: Cell<usize> = const { Cell::new(0) };
        pub(crate) static PARTS: Cell<usize> = const { Cell::new(0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::fixtures::NESTED;

    #[test]
    fn header_matching_decodes_encoded_words() {
        let m = b"From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>\r\nSubject: =?ISO-8859-1?Q?Andr=E9?= Pirard\r\nX-Empty:\r\n\r\nx";
        let msg = Message::parse(m);
        assert!(header_contains(&msg, b"from", "JØRN"));
        assert!(header_contains(&msg, b"FROM", "keld@dkuug"));
        assert!(header_contains(&msg, b"subject", "andré pir"));
        assert!(!header_contains(&msg, b"subject", "=?ISO"));
        assert!(header_contains(&msg, b"x-empty", ""));
        assert!(!header_contains(&msg, b"cc", ""));
        assert!(!header_contains(&msg, b"subject", "absent"));
    }

    #[test]
    fn addresses_are_found_as_parsed() {
        // imaptest search-addresses: comments inside the address.
        let raw = b"From: <user-from (comment)@ (comment) domain.org>\r\nTo: x@y\r\n\r\nbody\r\n";
        let msg = Message::parse(raw);
        assert!(address_contains(&msg, b"From", "user-from@domain.org"));
        assert!(address_contains(&msg, b"from", "<USER-FROM@"));
        assert!(!address_contains(&msg, b"To", "user-from@domain.org"));
        // FROM looks at the addresses, HEADER FROM at the text: only HEADER
        // finds the comment, and only FROM the address without it.
        assert!(!address_contains(&msg, b"From", "comment"));
        assert!(header_contains(&msg, b"From", "comment"));
        assert!(!header_contains(&msg, b"From", "user-from@domain.org"));
    }

    #[test]
    fn from_to_cc_and_bcc_match_the_envelope_addresses_not_the_raw_field() {
        // address-oddities.eml: an unclosed <...> loses its host, as in
        // ENVELOPE; nul-in-header.eml: the local part ends at the NUL.
        let raw = b"From: nul\0user@example.org\r\nBcc: Broken <unclosed@example.org\r\n\r\nx\r\n";
        let msg = Message::parse(raw);
        assert!(!address_contains(&msg, b"Bcc", "example"));
        assert!(address_contains(
            &msg,
            b"Bcc",
            "Broken <unclosed@SYNTAX_ERROR>"
        ));
        assert!(!address_contains(&msg, b"From", "example.org"));
        assert!(address_contains(&msg, b"From", "<nul@MISSING_DOMAIN>"));
        assert!(header_contains(&msg, b"Bcc", "example"));
        // Names are quoted as Dovecot writes them, encoded words decoded.
        let raw =
            b"To: Joe Q. Public <j@x>, =?utf-8?q?J=C3=B6rg?= <g@x>\r\nCc: G: a@b, c@d;\r\n\r\n";
        let msg = Message::parse(raw);
        assert!(address_contains(
            &msg,
            b"To",
            "\"joe q. public\" <j@x>, jörg <g@x>"
        ));
        assert!(!address_contains(&msg, b"To", "public <j@x>"));
        assert!(address_contains(&msg, b"Cc", "g: <a@b>, <c@d>;"));
        assert!(address_contains(&msg, b"Cc", ""));
        assert!(!address_contains(&msg, b"Bcc", ""));
    }

    #[test]
    fn header_values_are_read_as_dovecot_reads_them() {
        // One blank after the colon goes, others stay; a tab starting a
        // continuation line is a space, line ends go.
        let raw =
            b"Subject:  a \t  b   c  \r\nX-Fold: three\r\n\tfour\r\nX-Two: five\r\n  six\r\n\r\n";
        let msg = Message::parse(raw);
        assert!(header_contains(&msg, b"subject", " a \t  b"));
        assert!(!header_contains(&msg, b"subject", "a b c"));
        assert!(header_contains(&msg, b"x-fold", "three four"));
        assert!(header_contains(&msg, b"x-two", "five  six"));
        // SUBJECT makes each run of blanks one space and drops leading ones.
        assert!(subject_contains(&msg, "a b c "));
        assert!(!subject_contains(&msg, " a"));
        assert!(!subject_contains(&msg, "c  "));
        // TEXT sees the name, the colon and the one blank after it.
        assert!(text_contains(&msg, "subject:  a"));
        assert!(!text_contains(&msg, "subject: a"));
        assert!(text_contains(&msg, "x-fold: three four"));
    }

    #[test]
    fn text_searches_the_header_of_every_part_and_encapsulated_message() {
        // disposition-variants.eml and the like: words only in part headers.
        let raw = b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f.bin\"\r\n\r\n\
AAAA\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nX-Inner: oscar\r\n\r\npapa\r\n--b--\r\n";
        let msg = Message::parse(raw);
        for word in [
            "octet-stream",
            "filename",
            "f.bin",
            "x-inner: oscar",
            "papa",
        ] {
            assert!(text_contains(&msg, word), "{word}");
        }
        // BODY does not look at any header.
        for word in ["octet-stream", "filename", "oscar"] {
            assert!(!body_contains(&msg, word), "{word}");
        }
        assert!(body_contains(&msg, "papa"));
    }

    /// TEXT passes over an ASCII header block without encoded words when a
    /// needle without blanks is not in its raw bytes; every needle a field
    /// holds in its folded form must still be found, whichever way.
    #[test]
    fn text_finds_what_the_raw_header_prefilter_lets_through() {
        let raw = b"X-Tight:Value\r\nX-Long: first\r\n\tsecond\r\n third\r\n\
Subject: =?utf-8?q?caf=C3=A9?= ok\r\nX-Eight: na\xc3\xafve\r\n\r\nbody\r\n";
        let msg = Message::parse(raw);
        for (word, found) in [
            ("x-tight:value", true),
            ("X-TIGHT: VALUE", false),
            ("second", true),
            ("first second", true),
            ("first\tsecond", false),
            ("third", true),
            ("café", true),
            ("naïve", true),
            ("NAIVE", false),
            ("x-long:", true),
            ("absent", false),
        ] {
            assert_eq!(text_contains(&msg, word), found, "{word:?}");
        }
        // The same fields in a block the prefilter does look at (ASCII, no
        // encoded word): the answers do not change.
        let plain =
            Message::parse(b"X-Tight:Value\r\nX-Long: first\r\n\tsecond\r\n third\r\n\r\nb\r\n");
        for (word, found) in [
            ("x-tight:value", true),
            ("second", true),
            ("first second", true),
            ("third", true),
            ("x-long:", true),
            ("absent", false),
        ] {
            assert_eq!(text_contains(&plain, word), found, "{word:?}");
        }
    }

    #[test]
    fn which_bodies_are_text_as_dovecot_decides() {
        let body = |header: &str, body: &str, word: &str| {
            let raw = format!("Subject: s\r\n{header}\r\n{body}\r\n");
            body_contains(&Message::parse(raw.as_bytes()), word)
        };
        // No Content-Type, or a valid text/* or message/* last one: text.
        assert!(body("", "alpha", "alpha"));
        assert!(body("Content-Type: Text/Plain\r\n", "romeo", "romeo"));
        assert!(body(
            "Content-Type: message/delivery-status\r\n",
            "Action: failed",
            "failed"
        ));
        assert!(body(
            "Content-Type: application/octet-stream\r\nContent-Type: text/plain\r\n",
            "delta",
            "delta"
        ));
        // Not a valid type, or the last one is not text: not searched.
        assert!(!body("Content-Type: text\r\n", "bravo", "bravo"));
        assert!(!body("Content-Type: text/\r\n", "sierra", "sierra"));
        assert!(!body(
            "Content-Type: text/plain\r\nContent-Type: application/octet-stream\r\n",
            "charlie",
            "charlie"
        ));
        // The last Content-Transfer-Encoding counts; comments around it and
        // parameters after it are passed over; anything else hides the body.
        let qp = "Content-Transfer-Encoding: quoted-printable (comment)\r\n";
        assert!(body(qp, "x=3Decho", "x=echo"));
        let b64 = "Content-Transfer-Encoding: base64; foo=bar\r\n";
        assert!(body(b64, "cXVlYmVj", "quebec"));
        let last = "Content-Transfer-Encoding: base64\r\nContent-Transfer-Encoding: 7bit\r\n";
        assert!(body(last, "aG90ZWw=", "aG90ZWw"));
        for hidden in ["x-unknown", "", "base64 binary"] {
            let cte = format!("Content-Transfer-Encoding: {hidden}\r\n");
            assert!(!body(&cte, "foxtrot", "foxtrot"), "{hidden:?}");
        }
        assert!(body(
            "Content-Transfer-Encoding: 8BIT\r\n",
            "eight",
            "eight"
        ));
    }

    #[test]
    fn body_matching_decodes_transfer_encodings() {
        let msg = Message::parse(NESTED);
        assert!(body_contains(&msg, "HELLO WORLD")); // base64 part
        assert!(body_contains(&msg, "CAFÉ AU LAIT")); // QP soft break, UTF-8
        assert!(body_contains(&msg, "inner text")); // inside message/rfc822
        assert!(!body_contains(&msg, "aGVsbG8")); // encoded form is not searched
        assert!(!body_contains(&msg, "preamble"));
        assert!(!body_contains(&msg, "iVBO")); // image part is not text
        assert!(!body_contains(&msg, "Subject: test"));
        assert!(text_contains(&msg, "subject: TEST"));
        assert!(text_contains(&msg, "café"));
        assert!(!text_contains(&msg, "absent"));
    }

    #[test]
    fn body_charsets() {
        let m = b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n";
        assert!(body_contains(&Message::parse(m), "grüße"));
        let m = b"Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n8NLJ18XU\r\n";
        assert!(body_contains(&Message::parse(m), "привет"));
        let m = "Subject: x\r\n\r\nplain UTF-8 ünïcode\r\n";
        assert!(body_contains(&Message::parse(m.as_bytes()), "ÜNÏ"));
    }

    #[test]
    fn search_string_charsets() {
        assert_eq!(decode_search_string(None, b"abc"), Ok("abc".to_owned()));
        assert_eq!(
            decode_search_string(Some("UTF-8"), "é".as_bytes()),
            Ok("é".to_owned())
        );
        assert_eq!(
            decode_search_string(Some("us-ascii"), b"abc"),
            Ok("abc".to_owned())
        );
        assert_eq!(
            decode_search_string(Some("ISO-8859-1"), b"\xe9"),
            Ok("é".to_owned())
        );
        assert_eq!(decode_search_string(Some("x-nonsense"), b"a"), Err(()));
    }

    #[test]
    fn many_fields_are_searched_and_each_decoded_once() {
        let mut m = Vec::new();
        for i in 0..20_000 {
            m.extend_from_slice(format!("X-Filler: n {i}\r\n").as_bytes());
        }
        m.extend_from_slice(b"Subject : =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n");
        let msg = Message::parse(&m);
        let text = SearchText::new(&msg);
        let decoded = || decode_counts::FIELDS.with(|c| c.get());
        decode_counts::FIELDS.with(|c| c.set(0));
        // A needle without blanks is matched on the raw bytes of ASCII
        // fields without encoded words: nothing is decoded.
        assert!(text.header_contains(b"x-filler", &Needle::new("19999")));
        assert!(!text.header_contains(b"x-filler", &Needle::new("20000")));
        assert_eq!(decoded(), 0);
        // A header key decodes only the fields of its name.
        assert!(text.header_contains(b"subject", &Needle::new("CAFÉ")));
        assert_eq!(decoded(), 1);
        assert!(text.header_contains(b"X-FILLER", &Needle::new("n 19999")));
        assert!(!text.header_contains(b"x-filler", &Needle::new("n 20000")));
        assert!(!text.header_contains(b"x-fille", &Needle::new("")));
        assert_eq!(decoded(), 20_001);
        // TEXT reuses them all.
        assert!(text.text_contains(&Needle::new("x-filler: n 12345")));
        assert!(text.text_contains(&Needle::new("subject : café")));
        assert!(!text.text_contains(&Needle::new("nowhere")));
        assert_eq!(decoded(), 20_001);
    }
}
