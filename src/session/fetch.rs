//! FETCH and UID FETCH: message data out of the store, in the CRLF form
//! IMAP requires, whatever line ends the file on disk has.
//!
//! What the folder's index keeps (sizes, dates, the header fields clients
//! list messages by, BODYSTRUCTURE: see `derived`) answers without reading
//! the message; a message that must be read anyway teaches the index all of
//! it at once, so the next command need not read it again.

use std::fs::File;
use std::io::Read;

use super::derived::{self, Derived};
use super::objectid;
use super::view::SelectedView;
use super::{Completion, Session};
use crate::conn::Io;
use crate::maildir::acl::right;
use crate::maildir::{Facts, InfoFlags, OpenedMessage, StoreError};
use crate::message::{Message, UnknownCte, crlf_len, header_end, header_length, to_crlf_into};
use crate::protocol::command::{FetchItem, Section, SectionText};
use crate::protocol::datetime::{format_date_time, local_offset};
use crate::protocol::encode::{push_astring, push_string};
use crate::protocol::response::Code;
use crate::protocol::sequence::SequenceSet;

/// Buffers a session reads messages into, reused from message to message.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    raw: Vec<u8>,
    crlf: Vec<u8>,
    /// `crlf` holds the text (the file had bare LFs); else `raw` is already CRLF.
    converted: bool,
}

/// Capacity a buffer may keep between commands; a large message's memory goes back.
const SCRATCH_KEEP: usize = 1 << 20;

impl Scratch {
    /// The text last read, in CRLF form.
    fn text(&self) -> &[u8] {
        if self.converted {
            &self.crlf
        } else {
            &self.raw
        }
    }

    /// Gives back what one large message needed.
    pub(super) fn trim(&mut self) {
        for buf in [&mut self.raw, &mut self.crlf] {
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
        }
    }

    fn convert(&mut self) {
        self.converted = to_crlf_into(&self.raw, &mut self.crlf);
    }
}

fn io_error(e: StoreError) -> std::io::Error {
    match e {
        StoreError::Io { path, error } => {
            std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
        }
        other => std::io::Error::other(other.to_string()),
    }
}

/// Opens message `i` through the store (which follows a rename by another
/// process and never a symbolic link), recording its current name. `None`:
/// it is gone.
fn open_message(view: &mut SelectedView, i: usize) -> std::io::Result<Option<OpenedMessage>> {
    let name = view.filename(i).map_err(io_error)?;
    let opened = view.folder.open_message(&name).map_err(io_error)?;
    if let Some(o) = &opened
        && o.name != name
    {
        view.found_as(i, &o.name);
    }
    Ok(opened)
}

/// Reads all of `file` into `buf` (cleared first), `expected` being its
/// length as fstat gave it: the buffer is sized for one byte more, so that a
/// message is read with one read(2), and a read shorter than asked is the
/// end of the file (a maildir message is never written once it is in cur/
/// or new/). A file longer than expected is read on to its end.
fn read_whole(file: &mut File, expected: u64, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let mut want = usize::try_from(expected)
        .unwrap_or(usize::MAX / 2)
        .saturating_add(1);
    loop {
        buf.reserve(want);
        let start = buf.len();
        buf.resize(start + want, 0);
        let n = loop {
            match file.read(&mut buf[start..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        };
        buf.truncate(start + n);
        if n < want {
            return Ok(());
        }
        want = (buf.len() / 2).max(64 * 1024);
    }
}

/// Reads the header block of an open message into `buf`: `known` bytes when
/// the index knows its length, else chunk by chunk until the empty line.
fn read_header(f: File, known: Option<u32>, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    if let Some(n) = known {
        f.take(u64::from(n)).read_to_end(buf)?;
        return Ok(());
    }
    let mut f = f;
    let mut chunk = vec![0u8; 64 * 1024];
    // Where the last, unfinished line of what was read begins: only from
    // there can the empty line be found, so each byte is looked at once.
    let mut line_start = 0;
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let unsearched = buf.get(line_start..).unwrap_or_default();
        if let Some(end) = header_end(unsearched) {
            buf.truncate(line_start + end);
            return Ok(());
        }
        if let Some(lf) = memchr::memrchr(b'\n', unsearched) {
            line_start += lf + 1;
        }
    }
}

/// What a command needs of each message.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Needs {
    /// The whole text, whatever is kept.
    pub full: bool,
    /// The header, whatever is kept.
    pub header: bool,
    /// RFC822.SIZE.
    pub size: bool,
    /// INTERNALDATE.
    pub date: bool,
    /// The kept header fields (or the header they come from).
    pub fields: bool,
    /// BODYSTRUCTURE (or the whole text it comes from).
    pub bodystructure: bool,
    /// PREVIEW (or the whole text it comes from).
    pub preview: bool,
}

/// What was read or is kept of one message, for the items of a command.
pub(super) struct Prepared<'s> {
    /// The message (or its header), parsed, when it was read.
    pub parsed: Option<Message<'s>>,
    /// The whole message was read (else only the header, or nothing).
    pub whole: bool,
    pub facts: Facts,
    pub derived: Derived,
    /// What FETCH learnt of the file's name and metadata (empty for other commands).
    known: Known,
}

impl Prepared<'_> {
    /// The kept fields as a message of their own, when the text was not read.
    pub(super) fn fields_message(&self) -> Option<Message<'_>> {
        self.derived.fields().map(Message::header_only)
    }
}

/// Reads message `i` as far as `needs` requires given what the index keeps, and keeps
/// what the read taught. `None`: the message is gone.
pub(super) fn prepare<'s>(
    view: &mut SelectedView,
    i: usize,
    needs: Needs,
    scratch: &'s mut Scratch,
) -> std::io::Result<Option<Prepared<'s>>> {
    let mut facts = if needs.size || needs.date || needs.header || needs.fields {
        view.facts(i)
    } else {
        Facts::default()
    };
    let mut derived = if needs.fields || needs.bodystructure || needs.preview {
        view.derived(i).map(Derived::decode).unwrap_or_default()
    } else {
        Derived::default()
    };
    let full = needs.full
        || (needs.bodystructure && derived.bodystructure().is_none())
        || (needs.preview && derived.preview().is_none());
    // A size not known yet means reading the whole file, but only to count
    // its lines: the header is parsed (its fields are learnt for ENVELOPE
    // and the header fetches that follow a first sync), the body is not.
    // The MIME structure and the preview are learnt when first asked for.
    let sized = !full && needs.size && facts.size.is_none();
    let header = !full && (sized || needs.header || (needs.fields && derived.fields().is_none()));
    let mut learnt = Facts::default();
    if full || header {
        let Some(OpenedMessage {
            mut file,
            len,
            mtime,
            ..
        }) = open_message(view, i)?
        else {
            return Ok(None);
        };
        if facts.date.is_none() {
            learnt.date = Some(mtime);
        }
        if full || sized {
            read_whole(&mut file, len, &mut scratch.raw)?;
            let header_len = header_length(&scratch.raw);
            learnt.header_len = u32::try_from(header_len).ok();
            if sized {
                learnt.size = Some(crlf_len(&scratch.raw));
                scratch.raw.truncate(header_len);
            }
        } else {
            read_header(file, facts.header_len, &mut scratch.raw)?;
        }
        scratch.convert();
        if full {
            // The CRLF form is made anyway; its length is RFC822.SIZE.
            learnt.size = Some(scratch.text().len() as u64);
        }
    } else if needs.date && facts.date.is_none() {
        let name = view.filename(i).map_err(io_error)?;
        learnt.date = view.folder.internal_date(&name).ok().flatten();
        // The file's time is its INTERNALDATE; a file without one is gone.
        if learnt.date.is_none() {
            return Ok(None);
        }
    }
    let scratch: &'s Scratch = scratch;
    let parsed = if full {
        Some(Message::parse(scratch.text()))
    } else if header {
        // Only the header is read: nothing needs its MIME structure.
        Some(Message::header_only(scratch.text()))
    } else {
        None
    };
    let added = match &parsed {
        Some(msg) => derived.complete_from(msg, full),
        None => false,
    };
    if added || learnt != Facts::default() {
        view.learn(i, learnt, added.then(|| derived.encoded()));
    }
    facts = learnt.or(facts);
    Ok(Some(Prepared {
        parsed,
        whole: full,
        facts,
        derived,
        known: Known::default(),
    }))
}

/// What an item needs of a message.
fn add_needs(item: &FetchItem, n: &mut Needs) {
    match item {
        // EMAILID and SAVEDATE come from the file's name and metadata (see `Known`).
        FetchItem::Flags
        | FetchItem::Uid
        | FetchItem::EmailId
        | FetchItem::SaveDate
        | FetchItem::ModSeq => {}
        // The References, In-Reply-To and Message-ID fields, which the index keeps.
        FetchItem::ThreadId => n.fields = true,
        FetchItem::InternalDate => n.date = true,
        FetchItem::Rfc822Size => n.size = true,
        FetchItem::Envelope => n.fields = true,
        FetchItem::BodyStructure => n.bodystructure = true,
        FetchItem::Preview { .. } => n.preview = true,
        FetchItem::Rfc822Header => n.header = true,
        FetchItem::BodySection { section, .. } if section.part.is_empty() => match &section.text {
            Some(SectionText::HeaderFields(names)) if derived::covers(names) => n.fields = true,
            Some(
                SectionText::Header
                | SectionText::HeaderFields(_)
                | SectionText::HeaderFieldsNot(_),
            ) => n.header = true,
            _ => n.full = true,
        },
        _ => n.full = true,
    }
}

fn sets_seen(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Rfc822
            | FetchItem::Rfc822Text
            | FetchItem::BodySection { peek: false, .. }
            | FetchItem::Binary { peek: false, .. }
    )
}

/// Writes RFC 3516's part numbers, dotted, as the client sent them.
fn write_binary_part(out: &mut Vec<u8>, part: &[u32]) {
    for (n, p) in part.iter().enumerate() {
        if n > 0 {
            out.push(b'.');
        }
        push_number(out, u64::from(*p));
    }
}

/// The first BINARY item whose part has a transfer encoding that cannot be
/// undone (RFC 3516 §4.2).
fn unknown_cte(items: &[FetchItem], msg: &Message<'_>) -> Option<UnknownCte> {
    items.iter().find_map(|item| match item {
        FetchItem::Binary { part, .. } | FetchItem::BinarySize { part } => msg.binary(part).err(),
        _ => None,
    })
}

/// Writes the section spec as the client will expect it echoed back.
fn write_section_spec(out: &mut Vec<u8>, section: &Section) {
    let mut parts: Vec<String> = section.part.iter().map(|p| p.to_string()).collect();
    let fields = |out: &mut Vec<u8>, names: &[Vec<u8>]| {
        out.extend_from_slice(b" (");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            push_astring(out, n, false);
        }
        out.push(b')');
    };
    match &section.text {
        None => {
            out.extend_from_slice(parts.join(".").as_bytes());
        }
        Some(t) => {
            parts.push(
                match t {
                    SectionText::Header => "HEADER",
                    SectionText::HeaderFields(_) => "HEADER.FIELDS",
                    SectionText::HeaderFieldsNot(_) => "HEADER.FIELDS.NOT",
                    SectionText::Text => "TEXT",
                    SectionText::Mime => "MIME",
                }
                .to_string(),
            );
            out.extend_from_slice(parts.join(".").as_bytes());
            if let SectionText::HeaderFields(n) | SectionText::HeaderFieldsNot(n) = t {
                fields(out, n);
            }
        }
    }
}

/// What FETCH learns of a message from its file's name and metadata, for the items that
/// need no reading of the text.
#[derive(Debug, Default)]
struct Known {
    /// The message's current file name, for EMAILID and THREADID.
    name: String,
    /// SAVEDATE; `None` when the item was not asked for.
    save_date: Option<i64>,
    /// MODSEQ (RFC 7162), for the MODSEQ item and for the FETCH answering a `\Seen` set
    /// by this FETCH when CONDSTORE is enabled.
    modseq: u64,
}

impl Known {
    /// `None`: the file is gone.
    fn of(
        view: &mut SelectedView,
        i: usize,
        items: &[FetchItem],
    ) -> std::io::Result<Option<Known>> {
        let wanted = |k: fn(&FetchItem) -> bool| items.iter().any(k);
        if !wanted(|i| {
            matches!(
                i,
                FetchItem::EmailId | FetchItem::ThreadId | FetchItem::SaveDate
            )
        }) {
            return Ok(Some(Known::default()));
        }
        let name = view.filename(i).map_err(io_error)?;
        let save_date = if wanted(|i| matches!(i, FetchItem::SaveDate)) {
            match view.folder.save_date(&name).map_err(io_error)? {
                Some(t) => Some(t),
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some(Known {
            name,
            save_date,
            modseq: 0,
        }))
    }
}

impl Session<'_> {
    pub(super) fn cmd_fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        items: &[FetchItem],
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Completion {
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        let ranges = match view.resolve(uid, set) {
            Ok(r) => r,
            Err(d) => return d,
        };
        // RFC 7162 §3.2.6: the UIDs asked for that are gone, before the FETCH responses.
        if vanished {
            let gone = view.vanished_among(set.normalized(view.last_uid_given()).iter());
            if !gone.is_empty() {
                self.pending
                    .push(format!("VANISHED (EARLIER) {gone}").into_bytes());
            }
        }
        let mut needs = Needs::default();
        for item in items {
            add_needs(item, &mut needs);
        }
        let marks_seen =
            !view.read_only && view.rights.has(right::SEEN) && items.iter().any(sets_seen);
        let mut items: Vec<FetchItem> = items.to_vec();
        if uid && !items.contains(&FetchItem::Uid) {
            items.insert(0, FetchItem::Uid);
        }
        // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ.
        if changed_since.is_some() && !items.contains(&FetchItem::ModSeq) {
            items.push(FetchItem::ModSeq);
        }
        let wants_modseq = items.contains(&FetchItem::ModSeq);
        // Only FLAGS, UID and MODSEQ are known without the file (see `render_expunged`).
        let needs_file = items
            .iter()
            .any(|i| !matches!(i, FetchItem::Flags | FetchItem::Uid | FetchItem::ModSeq));
        let mut gone = false;
        let mut failed = false;
        // BINARY of a part whose transfer encoding is unknown: that message
        // is left out, and the command fails (RFC 3516 §4.2).
        let mut unknown: Option<Vec<u8>> = None;
        // Untagged responses held back by earlier commands go first.
        self.flush_pending();
        let mut out = Vec::with_capacity(256);
        'messages: for range in ranges {
            for i in range {
                let Some(view) = self.selected.as_mut() else {
                    break 'messages;
                };
                if let Some(since) = changed_since
                    && view.modseq(i) <= since
                {
                    continue;
                }
                // Expunged by another process, not yet reported: answered as gone, whatever
                // the index still knows of it (as Dovecot answers: mdimapd(8), EXPUNGED
                // MESSAGES).
                let prepared = if view.is_expunged(i) && needs_file {
                    Ok(None)
                } else {
                    prepare(view, i, needs, &mut self.scratch)
                };
                let prepared = match prepared.and_then(|p| {
                    Ok(match p {
                        Some(mut p) => Known::of(view, i, &items)?.map(|known| {
                            p.known = known;
                            p
                        }),
                        None => None,
                    })
                }) {
                    Ok(Some(p)) => p,
                    Ok(None) => {
                        gone = true;
                        out.clear();
                        let modseq = view.modseq(i);
                        render_expunged(view, i, &items, modseq, &mut out, self.io);
                        if self.io.is_broken() {
                            break 'messages;
                        }
                        continue;
                    }
                    Err(e) => {
                        log::error!("reading a message in {}: {e}", view.folder.path().display());
                        failed = true;
                        continue;
                    }
                };
                if let Some(msg) = prepared.parsed.as_ref()
                    && let Some(UnknownCte(cte)) = unknown_cte(&items, msg)
                {
                    unknown = Some(cte);
                    continue;
                }
                let seen_now = marks_seen && mark_seen(view, i);
                let mut prepared = prepared;
                // Only when it is sent (a lookup per message otherwise), and after
                // `mark_seen`, which gives the message a new one.
                if wants_modseq || (seen_now && view.condstore) {
                    prepared.known.modseq = view.modseq(i);
                }
                // Each answer goes out as it is made: however many items the
                // client asks for, one message is in memory at a time.
                out.clear();
                render_fetch(view, i, &items, &prepared, seen_now, &mut out, self.io);
                if self.io.is_broken() {
                    break 'messages;
                }
            }
        }
        self.scratch.trim();
        if let Some(cte) = unknown {
            Completion::no_code(
                Code::UnknownCte,
                &format!(
                    "Unknown Content-Transfer-Encoding {}.",
                    String::from_utf8_lossy(&cte).escape_debug()
                ),
            )
        } else if failed {
            Completion::no_code(Code::Unavailable, "Some messages could not be read.")
        } else if gone && needs_file {
            Completion::ok_code(Code::ExpungeIssued, "Some messages were already expunged.")
        } else {
            Completion::ok("FETCH completed.")
        }
    }
}

/// Adds `\Seen` to message `i` on disk, starting from the flags there now
/// (another session may have changed them since this one last looked).
/// True when the flag was added by this call.
fn mark_seen(view: &mut SelectedView, i: usize) -> bool {
    if view.has_flag(i, b'S') || view.is_expunged(i) {
        return false;
    }
    let known = match view.filename(i) {
        Ok(name) => name,
        Err(e) => {
            log::error!("setting \\Seen: {e}");
            return false;
        }
    };
    match view.folder.current_name(&known) {
        Ok(Some(name)) => {
            let mut flags = InfoFlags::from_filename(&name);
            flags.set(b'S', true);
            match view.folder.set_flags(&name, &flags) {
                Ok(Some(newname)) => {
                    view.renamed(i, &newname, &flags);
                    let m = view.new_modseq();
                    view.set_modseq(i, m);
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    log::error!("setting \\Seen: {e}");
                    false
                }
            }
        }
        Ok(None) => false,
        Err(e) => {
            log::error!("setting \\Seen: {e}");
            false
        }
    }
}

/// Appends a decimal number.
fn push_number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes `* n FETCH (...)` for message `i`, whose file another process removed (the
/// client has not been told of the EXPUNGE yet), as Dovecot answers it (RFC 2180 §4.1.1
/// allows either this or a NO; see mdimapd(8), EXPUNGED MESSAGES): UID and FLAGS as this
/// session knows them, every other item empty — size 0, the epoch, an envelope and a body
/// structure of nothing, NIL for message text. No `\Seen` is set.
fn render_expunged(
    view: &SelectedView,
    i: usize,
    items: &[FetchItem],
    modseq: u64,
    out: &mut Vec<u8>,
    io: &mut Io,
) {
    out.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b' ');
        }
        match item {
            FetchItem::Uid => out.extend_from_slice(format!("UID {}", view.uid(i)).as_bytes()),
            FetchItem::Flags => {
                out.extend_from_slice(b"FLAGS ");
                view.write_flags(i, out);
            }
            FetchItem::InternalDate => out.extend_from_slice(
                format!("INTERNALDATE \"{}\"", format_date_time(0, 0)).as_bytes(),
            ),
            FetchItem::Rfc822Size => out.extend_from_slice(b"RFC822.SIZE 0"),
            FetchItem::Envelope => {
                out.extend_from_slice(b"ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")
            }
            FetchItem::Body => {
                out.extend_from_slice(b"BODY (\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)")
            }
            FetchItem::BodyStructure => out.extend_from_slice(
                b"BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)",
            ),
            FetchItem::Rfc822 => out.extend_from_slice(b"RFC822 NIL"),
            FetchItem::Rfc822Header => out.extend_from_slice(b"RFC822.HEADER NIL"),
            FetchItem::Rfc822Text => out.extend_from_slice(b"RFC822.TEXT NIL"),
            FetchItem::BodySection {
                section, partial, ..
            } => {
                out.extend_from_slice(b"BODY[");
                write_section_spec(out, section);
                out.push(b']');
                if let Some((origin, _)) = partial {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                }
                out.extend_from_slice(b" NIL");
            }
            FetchItem::Binary { part, partial, .. } => {
                out.extend_from_slice(b"BINARY[");
                write_binary_part(out, part);
                out.push(b']');
                if let Some((origin, _)) = partial {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                }
                out.extend_from_slice(b" NIL");
            }
            FetchItem::BinarySize { part } => {
                out.extend_from_slice(b"BINARY.SIZE[");
                write_binary_part(out, part);
                out.extend_from_slice(b"] 0");
            }
            // RFC 8474 and RFC 8514 allow NIL where the server has no value.
            FetchItem::EmailId => out.extend_from_slice(b"EMAILID NIL"),
            FetchItem::ThreadId => out.extend_from_slice(b"THREADID NIL"),
            FetchItem::SaveDate => out.extend_from_slice(b"SAVEDATE NIL"),
            FetchItem::Preview { .. } => out.extend_from_slice(b"PREVIEW NIL"),
            FetchItem::ModSeq => out.extend_from_slice(format!("MODSEQ ({modseq})").as_bytes()),
        }
    }
    out.extend_from_slice(b")\r\n");
    let _ = io.write_all(out);
}

/// Writes `* n FETCH (...)` for one message to `io`. Small items are built
/// in `out`; message text goes from the loaded message straight to the
/// output, never copied into the response.
fn render_fetch(
    view: &SelectedView,
    i: usize,
    items: &[FetchItem],
    p: &Prepared<'_>,
    seen_now: bool,
    out: &mut Vec<u8>,
    io: &mut Io,
) {
    out.extend_from_slice(b"* ");
    push_number(out, i as u64 + 1);
    out.extend_from_slice(b" FETCH (");
    let parsed = p.parsed.as_ref();
    let known = &p.known;
    let mut first = true;
    let mut flags_sent = false;
    // Sends the scratch buffer, then `literal` as an IMAP literal.
    let mut send_literal = |out: &mut Vec<u8>, literal: &[u8], binary: bool| {
        if binary {
            // Decoded content may hold NUL, which only literal8 can carry
            // (RFC 3516 §4.3); without one, a plain literal.
            if memchr::memchr(0, literal).is_some() {
                out.push(b'~');
            }
            out.push(b'{');
            push_number(out, literal.len() as u64);
            out.extend_from_slice(b"}\r\n");
            let _ = io.write_all(out);
            let _ = io.write_all(literal);
            out.clear();
            return;
        }
        // RFC822, RFC822.HEADER and .TEXT send message bytes too: no NUL.
        let literal = Message::literal_bytes(literal);
        out.push(b'{');
        push_number(out, literal.len() as u64);
        out.extend_from_slice(b"}\r\n");
        let _ = io.write_all(out);
        let _ = io.write_all(&literal);
        out.clear();
    };
    for item in items {
        if !first {
            out.push(b' ');
        }
        first = false;
        match item {
            FetchItem::Uid => {
                out.extend_from_slice(b"UID ");
                push_number(out, u64::from(view.uid(i)));
            }
            FetchItem::Flags => {
                out.extend_from_slice(b"FLAGS ");
                view.write_flags(i, out);
                flags_sent = true;
            }
            FetchItem::InternalDate => {
                let t = p.facts.date.unwrap_or(0);
                out.extend_from_slice(b"INTERNALDATE \"");
                out.extend_from_slice(format_date_time(t, local_offset(t)).as_bytes());
                out.push(b'"');
            }
            FetchItem::Rfc822Size => {
                out.extend_from_slice(b"RFC822.SIZE ");
                push_number(out, p.facts.size.unwrap_or(0));
            }
            FetchItem::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                if let Some(msg) = parsed {
                    msg.write_envelope(out);
                } else if let Some(kept) = p.fields_message() {
                    kept.write_envelope(out);
                }
            }
            FetchItem::Body => {
                out.extend_from_slice(b"BODY ");
                if let Some(msg) = parsed {
                    msg.write_body_structure(out, false);
                }
            }
            FetchItem::BodyStructure => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                match (p.derived.bodystructure(), parsed) {
                    (_, Some(msg)) if p.whole => msg.write_body_structure(out, true),
                    (Some(kept), _) => out.extend_from_slice(kept),
                    (None, Some(msg)) => msg.write_body_structure(out, true),
                    (None, None) => {}
                }
            }
            FetchItem::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                send_literal(out, parsed.map(|m| m.data()).unwrap_or_default(), false);
            }
            FetchItem::Rfc822Header => {
                out.extend_from_slice(b"RFC822.HEADER ");
                send_literal(out, parsed.map(|p| p.header()).unwrap_or_default(), false);
            }
            FetchItem::Rfc822Text => {
                out.extend_from_slice(b"RFC822.TEXT ");
                send_literal(out, parsed.map(|p| p.text()).unwrap_or_default(), false);
            }
            FetchItem::BodySection {
                section, partial, ..
            } => {
                out.extend_from_slice(b"BODY[");
                write_section_spec(out, section);
                out.push(b']');
                let kept = if parsed.is_none() {
                    p.fields_message()
                } else {
                    None
                };
                let bytes = match parsed.or(kept.as_ref()) {
                    Some(msg) => msg.section(section).unwrap_or_default(),
                    None => Default::default(),
                };
                match partial {
                    Some((origin, count)) => {
                        out.push(b'<');
                        push_number(out, u64::from(*origin));
                        out.extend_from_slice(b"> ");
                        let start = (*origin as usize).min(bytes.len());
                        let end = start.saturating_add(*count as usize).min(bytes.len());
                        send_literal(out, bytes.get(start..end).unwrap_or_default(), false);
                    }
                    None => {
                        out.push(b' ');
                        send_literal(out, &bytes, false);
                    }
                }
            }
            FetchItem::Binary { part, partial, .. } => {
                out.extend_from_slice(b"BINARY[");
                write_binary_part(out, part);
                out.push(b']');
                // An unknown encoding was answered before rendering began.
                let bytes = parsed.and_then(|m| m.binary(part).ok()).unwrap_or_default();
                let bytes = match partial {
                    Some((origin, count)) => {
                        out.push(b'<');
                        push_number(out, u64::from(*origin));
                        out.push(b'>');
                        let start = (*origin as usize).min(bytes.len());
                        let end = start.saturating_add(*count as usize).min(bytes.len());
                        bytes.get(start..end).unwrap_or_default()
                    }
                    None => &bytes[..],
                };
                out.push(b' ');
                send_literal(out, bytes, true);
            }
            FetchItem::BinarySize { part } => {
                out.extend_from_slice(b"BINARY.SIZE[");
                write_binary_part(out, part);
                out.extend_from_slice(b"] ");
                let size = parsed
                    .and_then(|m| m.binary(part).ok())
                    .map_or(0, |b| b.len());
                push_number(out, size as u64);
            }
            FetchItem::EmailId => {
                out.extend_from_slice(b"EMAILID (");
                out.extend_from_slice(objectid::email_id(&known.name).as_bytes());
                out.push(b')');
            }
            FetchItem::ThreadId => {
                let header = match (parsed, p.derived.fields()) {
                    (Some(msg), _) => msg.header(),
                    (None, Some(fields)) => fields,
                    (None, None) => &[],
                };
                out.extend_from_slice(b"THREADID (");
                out.extend_from_slice(objectid::thread_id(&known.name, header).as_bytes());
                out.push(b')');
            }
            FetchItem::SaveDate => {
                let t = known.save_date.unwrap_or(0);
                out.extend_from_slice(b"SAVEDATE \"");
                out.extend_from_slice(format_date_time(t, local_offset(t)).as_bytes());
                out.push(b'"');
            }
            FetchItem::Preview { .. } => {
                out.extend_from_slice(b"PREVIEW ");
                // Kept in the index, or learnt there from the whole message just read.
                match (p.derived.preview(), parsed) {
                    (Some(kept), _) => push_string(out, kept),
                    (None, Some(msg)) if p.whole => push_string(out, msg.preview().as_bytes()),
                    (None, _) => out.extend_from_slice(b"NIL"),
                }
            }
            FetchItem::ModSeq => {
                out.extend_from_slice(b"MODSEQ (");
                push_number(out, known.modseq);
                out.push(b')');
            }
        }
    }
    if seen_now && !flags_sent {
        out.extend_from_slice(b" FLAGS ");
        view.write_flags(i, out);
        if view.qresync && !items.contains(&FetchItem::Uid) {
            out.extend_from_slice(b" UID ");
            push_number(out, u64::from(view.uid(i)));
        }
        // RFC 7162 §3.2: a flag change reported with CONDSTORE enabled carries MODSEQ.
        if view.condstore && !items.contains(&FetchItem::ModSeq) {
            out.extend_from_slice(b" MODSEQ (");
            push_number(out, known.modseq);
            out.push(b')');
        }
    }
    out.extend_from_slice(b")\r\n");
    let _ = io.write_all(out);
}
