//! FETCH and UID FETCH: message data out of the store, in the CRLF form
//! IMAP requires, whatever line ends the file on disk has.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;

use super::flags::write_flag_list;
use super::view::{SelectedView, ViewMessage};
use super::{Completion, Session};
use crate::conn::Io;
use crate::maildir::acl::right;
use crate::maildir::{CachedSizes, Folder, InfoFlags, StoreError, header_end, header_length};
use crate::message::{Message, crlf_len, to_crlf};
use crate::protocol::command::{FetchItem, Section, SectionText};
use crate::protocol::datetime::{format_date_time, local_offset};
use crate::protocol::encode::push_astring;
use crate::protocol::response::Code;
use crate::protocol::sequence::SequenceSet;

/// Opens a message file through the store (which follows a rename by
/// another process and never a symbolic link), recording its current name.
/// `None`: it is gone.
fn open_message(folder: &Folder, m: &mut ViewMessage) -> std::io::Result<Option<File>> {
    let opened = folder.open_message(&m.filename).map_err(|e| match e {
        StoreError::Io { path, error } => {
            std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
        }
        other => std::io::Error::other(other.to_string()),
    })?;
    Ok(opened.map(|(file, current)| {
        m.filename = current;
        file
    }))
}

/// Reads a whole message file (see [`open_message`]).
pub(super) fn read_message(
    folder: &Folder,
    m: &mut ViewMessage,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(mut f) = open_message(folder, m)? else {
        return Ok(None);
    };
    let mut data = Vec::new();
    f.read_to_end(&mut data)?;
    Ok(Some(data))
}

/// Reads only the header block of a message: `known` bytes when the cache
/// knows its length, else chunk by chunk until the empty line.
pub(super) fn read_header(
    folder: &Folder,
    m: &mut ViewMessage,
    known: Option<u64>,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(f) = open_message(folder, m)? else {
        return Ok(None);
    };
    let mut data = Vec::new();
    if let Some(n) = known {
        f.take(n).read_to_end(&mut data)?;
        return Ok(Some(data));
    }
    let mut f = f;
    let mut chunk = vec![0u8; 64 * 1024];
    // Where the last, unfinished line of what was read begins: only from
    // there can the empty line be found, so each byte is looked at once.
    let mut line_start = 0;
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(Some(data));
        }
        data.extend_from_slice(&chunk[..n]);
        let unsearched = data.get(line_start..).unwrap_or_default();
        if let Some(end) = header_end(unsearched) {
            data.truncate(line_start + end);
            return Ok(Some(data));
        }
        if let Some(lf) = memchr::memrchr(b'\n', unsearched) {
            line_start += lf + 1;
        }
    }
}

/// The message modification time is its INTERNALDATE (as for Courier).
pub(super) fn internal_date(folder: &Folder, m: &ViewMessage) -> Option<i64> {
    folder.internal_date(&m.filename).ok().flatten()
}

/// Converts file bytes to the CRLF form, without copying when already CRLF.
pub(super) fn crlf_owned(file: Vec<u8>) -> Vec<u8> {
    let converted = match to_crlf(&file) {
        Cow::Owned(v) => Some(v),
        Cow::Borrowed(_) => None,
    };
    converted.unwrap_or(file)
}

/// How much of the file an item needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Nothing,
    /// Only the header block (ENVELOPE, header sections).
    Header,
    /// RFC822.SIZE: the cache may know it; otherwise a full read.
    Size,
    Full,
}

fn need_of(item: &FetchItem) -> Need {
    match item {
        FetchItem::Flags | FetchItem::Uid | FetchItem::InternalDate => Need::Nothing,
        FetchItem::Envelope | FetchItem::Rfc822Header => Need::Header,
        FetchItem::BodySection { section, .. }
            if section.part.is_empty()
                && matches!(
                    section.text,
                    Some(
                        SectionText::Header
                            | SectionText::HeaderFields(_)
                            | SectionText::HeaderFieldsNot(_)
                    )
                ) =>
        {
            Need::Header
        }
        FetchItem::Rfc822Size => Need::Size,
        _ => Need::Full,
    }
}

/// One message's data for a FETCH: the text in CRLF form (the header alone
/// when that is all the items need) and its RFC822.SIZE.
pub(super) struct Loaded {
    pub(super) data: Option<Vec<u8>>,
    pub(super) size: u64,
}

fn sets_seen(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Rfc822 | FetchItem::Rfc822Text | FetchItem::BodySection { peek: false, .. }
    )
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

impl Session<'_> {
    pub(super) fn cmd_fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        items: &[FetchItem],
    ) -> Completion {
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        let ranges = match view.resolve(uid, set) {
            Ok(r) => r,
            Err(d) => return d,
        };
        let wants_header = items.iter().any(|i| need_of(i) == Need::Header);
        let wants_size = items.iter().any(|i| need_of(i) == Need::Size);
        let wants_full = items.iter().any(|i| need_of(i) == Need::Full);
        let wants_date = items.contains(&FetchItem::InternalDate);
        let marks_seen =
            !view.read_only && view.rights.has(right::SEEN) && items.iter().any(sets_seen);
        let mut items: Vec<FetchItem> = items.to_vec();
        if uid && !items.contains(&FetchItem::Uid) {
            items.insert(0, FetchItem::Uid);
        }
        // Only FLAGS and UID are known without the file (see `render_expunged`).
        let needs_file = items
            .iter()
            .any(|i| !matches!(i, FetchItem::Flags | FetchItem::Uid));
        let mut gone = false;
        let mut failed = false;
        // Untagged responses held back by earlier commands go first.
        self.flush_pending();
        'messages: for range in ranges {
            for i in range {
                let Some(view) = self.selected.as_mut() else {
                    break 'messages;
                };
                let folder_path = view.folder.path().to_path_buf();
                // The file's time is its INTERNALDATE; a file without one is gone.
                let date = match wants_date && !view.messages[i].expunged {
                    true => internal_date(&view.folder, &view.messages[i]),
                    false => None,
                };
                let loaded = if (view.messages[i].expunged || (wants_date && date.is_none()))
                    && needs_file
                {
                    Ok(None)
                } else {
                    load(view, i, wants_full, wants_size, wants_header)
                };
                let loaded = match loaded {
                    Ok(Some(l)) => l,
                    Ok(None) => {
                        gone = true;
                        render_expunged(view, i, &items, self.io);
                        if self.io.is_broken() {
                            break 'messages;
                        }
                        continue;
                    }
                    Err(e) => {
                        log::error!("reading a message in {}: {e}", folder_path.display());
                        failed = true;
                        continue;
                    }
                };
                let seen_now = marks_seen && mark_seen(view, i);
                // Each answer goes out as it is made: however many items the
                // client asks for, one message is in memory at a time.
                render_fetch(view, i, &items, &loaded, date, seen_now, self.io);
                if self.io.is_broken() {
                    break 'messages;
                }
            }
        }
        if let Some(v) = self.selected.as_mut() {
            v.save_cache();
        }
        if failed {
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
    let m = &view.messages[i];
    if m.flags.has(b'S') || m.expunged {
        return false;
    }
    match view.folder.current_name(&m.filename) {
        Ok(Some(name)) => {
            let mut flags = InfoFlags::from_filename(&name);
            flags.set(b'S', true);
            match view.folder.set_flags(&name, &flags) {
                Ok(Some(newname)) => {
                    view.messages[i].filename = newname;
                    view.messages[i].flags = flags;
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

/// Reads what the items need of message `i`, consulting and filling the
/// derived-data cache. `None`: the message is gone.
pub(super) fn load(
    view: &mut SelectedView,
    i: usize,
    full: bool,
    size: bool,
    header: bool,
) -> std::io::Result<Option<Loaded>> {
    let basename = view.messages[i].basename.clone();
    let cached = view.cache().get(&basename);
    let folder = &view.folder;
    let m = &mut view.messages[i];
    if full || (size && cached.is_none()) {
        let Some(raw) = read_message(folder, m)? else {
            return Ok(None);
        };
        let sizes = CachedSizes {
            crlf_size: crlf_len(&raw),
            header_len: header_length(&raw) as u64,
        };
        view.cache().insert(&basename, sizes);
        return Ok(Some(Loaded {
            data: Some(crlf_owned(raw)),
            size: sizes.crlf_size,
        }));
    }
    let size = cached.map(|c| c.crlf_size).unwrap_or(0);
    if header {
        let Some(raw) = read_header(folder, m, cached.map(|c| c.header_len))? else {
            return Ok(None);
        };
        return Ok(Some(Loaded {
            data: Some(crlf_owned(raw)),
            size,
        }));
    }
    Ok(Some(Loaded { data: None, size }))
}

/// Writes `* n FETCH (...)` for message `i`, whose file another process removed (the
/// client has not been told of the EXPUNGE yet), as Dovecot answers it (RFC 2180 §4.1.1
/// allows either this or a NO; see mdimapd(8), EXPUNGED MESSAGES): UID and FLAGS as this
/// session knows them, every other item empty — size 0, the epoch, an envelope and a body
/// structure of nothing, NIL for message text. No `\Seen` is set.
fn render_expunged(view: &SelectedView, i: usize, items: &[FetchItem], io: &mut Io) {
    let m = &view.messages[i];
    let mut out = format!("* {} FETCH (", i + 1).into_bytes();
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b' ');
        }
        match item {
            FetchItem::Uid => out.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
            FetchItem::Flags => {
                out.extend_from_slice(b"FLAGS ");
                write_flag_list(&mut out, &m.flags, &m.keywords, m.recent);
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
                write_section_spec(&mut out, section);
                out.push(b']');
                if let Some((origin, _)) = partial {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                }
                out.extend_from_slice(b" NIL");
            }
        }
    }
    out.extend_from_slice(b")\r\n");
    let _ = io.write_all(&out);
}

/// Writes `* n FETCH (...)` for one message to `io`. Small items are built
/// in a scratch buffer; message text goes from the loaded message straight
/// to the output, never copied into the response.
fn render_fetch(
    view: &SelectedView,
    i: usize,
    items: &[FetchItem],
    loaded: &Loaded,
    date: Option<i64>,
    seen_now: bool,
    io: &mut Io,
) {
    let data = loaded.data.as_deref();
    let m = &view.messages[i];
    let mut out = format!("* {} FETCH (", i + 1).into_bytes();
    let parsed = data.map(Message::parse);
    let mut first = true;
    let mut flags_sent = false;
    // Sends the scratch buffer, then `literal` as an IMAP literal.
    let mut send_literal = |out: &mut Vec<u8>, literal: &[u8]| {
        // RFC822, RFC822.HEADER and .TEXT send message bytes too: no NUL.
        let literal = Message::literal_bytes(literal);
        out.extend_from_slice(format!("{{{}}}\r\n", literal.len()).as_bytes());
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
            FetchItem::Uid => out.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
            FetchItem::Flags => {
                out.extend_from_slice(b"FLAGS ");
                write_flag_list(&mut out, &m.flags, &m.keywords, m.recent);
                flags_sent = true;
            }
            FetchItem::InternalDate => {
                let t = date.unwrap_or(0);
                out.extend_from_slice(
                    format!("INTERNALDATE \"{}\"", format_date_time(t, local_offset(t))).as_bytes(),
                );
            }
            FetchItem::Rfc822Size => {
                out.extend_from_slice(format!("RFC822.SIZE {}", loaded.size).as_bytes());
            }
            FetchItem::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                if let Some(msg) = &parsed {
                    msg.write_envelope(&mut out);
                }
            }
            FetchItem::Body => {
                out.extend_from_slice(b"BODY ");
                if let Some(msg) = &parsed {
                    msg.write_body_structure(&mut out, false);
                }
            }
            FetchItem::BodyStructure => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                if let Some(msg) = &parsed {
                    msg.write_body_structure(&mut out, true);
                }
            }
            FetchItem::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                send_literal(&mut out, data.unwrap_or_default());
            }
            FetchItem::Rfc822Header => {
                out.extend_from_slice(b"RFC822.HEADER ");
                send_literal(
                    &mut out,
                    parsed.as_ref().map(|p| p.header()).unwrap_or_default(),
                );
            }
            FetchItem::Rfc822Text => {
                out.extend_from_slice(b"RFC822.TEXT ");
                send_literal(
                    &mut out,
                    parsed.as_ref().map(|p| p.text()).unwrap_or_default(),
                );
            }
            FetchItem::BodySection {
                section, partial, ..
            } => {
                out.extend_from_slice(b"BODY[");
                write_section_spec(&mut out, section);
                out.push(b']');
                let bytes: Cow<[u8]> = match &parsed {
                    Some(msg) => msg.section(section).unwrap_or(Cow::Borrowed(&[])),
                    None => Cow::Borrowed(&[]),
                };
                match partial {
                    Some((origin, count)) => {
                        out.extend_from_slice(format!("<{origin}> ").as_bytes());
                        let start = (*origin as usize).min(bytes.len());
                        let end = start.saturating_add(*count as usize).min(bytes.len());
                        send_literal(&mut out, bytes.get(start..end).unwrap_or_default());
                    }
                    None => {
                        out.push(b' ');
                        send_literal(&mut out, &bytes);
                    }
                }
            }
        }
    }
    if seen_now && !flags_sent {
        out.extend_from_slice(b" FLAGS ");
        write_flag_list(&mut out, &m.flags, &m.keywords, m.recent);
    }
    out.extend_from_slice(b")\r\n");
    let _ = io.write_all(&out);
}
