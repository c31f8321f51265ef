//! FETCH and UID FETCH: message data out of the store, in the CRLF form
//! IMAP requires, whatever line ends the file on disk has.

use std::borrow::Cow;
use std::io::ErrorKind;
use std::time::UNIX_EPOCH;

use super::flags::write_flag_list;
use super::view::{SelectedView, ViewMessage};
use super::{Done, Session};
use crate::maildir::Folder;
use crate::message::{Message, crlf_len, to_crlf};
use crate::protocol::command::{FetchItem, Section, SectionText};
use crate::protocol::datetime::{format_date_time, local_offset};
use crate::protocol::encode::{push_astring, push_literal};
use crate::protocol::sequence::SequenceSet;

/// Resolves a sequence set to indexes into the view. Sequence numbers beyond
/// EXISTS are a client error; UIDs that do not exist are silently skipped
/// (RFC 3501 §6.4.8).
pub(super) fn resolve_set(
    view: &SelectedView,
    uid: bool,
    set: &SequenceSet,
) -> Result<Vec<usize>, Done> {
    if uid {
        let star = view.max_uid();
        let mut out = Vec::new();
        for (lo, hi) in set.ranges(star) {
            let start = view.messages.partition_point(|m| m.uid < lo);
            for (i, m) in view.messages.iter().enumerate().skip(start) {
                if m.uid > hi {
                    break;
                }
                out.push(i);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    } else {
        let exists = view.exists();
        if exists == 0 || set.max_value() > exists {
            return Err(Done::bad("Invalid message sequence number."));
        }
        let mut out = Vec::new();
        for (lo, hi) in set.ranges(exists) {
            if lo == 0 {
                return Err(Done::bad("Invalid message sequence number."));
            }
            out.extend((lo - 1) as usize..hi as usize);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Reads a message file. If another process renamed it (a flag change), the
/// current name is found by its base name and recorded. `None`: it is gone.
pub(super) fn read_message(
    folder: &Folder,
    m: &mut ViewMessage,
) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(folder.message_path(&m.filename)) {
        Ok(data) => return Ok(Some(data)),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let Some(current) = find_by_basename(folder, &m.basename)? else {
        return Ok(None);
    };
    m.filename = current;
    match std::fs::read(folder.message_path(&m.filename)) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn find_by_basename(folder: &Folder, basename: &str) -> std::io::Result<Option<String>> {
    let cur = folder.path().join("cur");
    for entry in std::fs::read_dir(cur)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let base = name.split(':').next().unwrap_or(name);
        if base == basename {
            return Ok(Some(name.to_string()));
        }
    }
    Ok(None)
}

/// The message modification time is its INTERNALDATE (as for Courier).
pub(super) fn internal_date(folder: &Folder, m: &ViewMessage) -> Option<i64> {
    let md = std::fs::metadata(folder.message_path(&m.filename)).ok()?;
    let t = md.modified().ok()?;
    Some(match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    })
}

/// Converts file bytes to the CRLF form, without copying when already CRLF.
pub(super) fn crlf_owned(file: Vec<u8>) -> Vec<u8> {
    let converted = match to_crlf(&file) {
        Cow::Owned(v) => Some(v),
        Cow::Borrowed(_) => None,
    };
    converted.unwrap_or(file)
}

fn needs_content(item: &FetchItem) -> bool {
    !matches!(
        item,
        FetchItem::Flags | FetchItem::Uid | FetchItem::InternalDate
    )
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
    pub(super) fn cmd_fetch(&mut self, uid: bool, set: &SequenceSet, items: &[FetchItem]) -> Done {
        let Some(view) = self.selected.as_mut() else {
            return Done::bad("No mailbox selected.");
        };
        let indexes = match resolve_set(view, uid, set) {
            Ok(i) => i,
            Err(d) => return d,
        };
        let want_content = items.iter().any(needs_content);
        let marks_seen = !view.read_only && items.iter().any(sets_seen);
        let mut items: Vec<FetchItem> = items.to_vec();
        if uid && !items.contains(&FetchItem::Uid) {
            items.insert(0, FetchItem::Uid);
        }
        let mut gone = false;
        let mut failed = false;
        for i in indexes {
            let Some(view) = self.selected.as_mut() else {
                break;
            };
            let folder_path = view.folder.path().to_path_buf();
            let mut file = None;
            if want_content {
                let (folder, msgs) = (&view.folder, &mut view.messages);
                match read_message(folder, &mut msgs[i]) {
                    Ok(Some(d)) => file = Some(crlf_owned(d)),
                    Ok(None) => {
                        gone = true;
                        continue;
                    }
                    Err(e) => {
                        log::error!("reading a message in {}: {e}", folder_path.display());
                        failed = true;
                        continue;
                    }
                }
            }
            let mut seen_now = false;
            if marks_seen && !view.messages[i].flags.has(b'S') && !view.messages[i].expunged {
                let mut flags = view.messages[i].flags.clone();
                flags.set(b'S', true);
                match view.folder.set_flags(&view.messages[i].filename, &flags) {
                    Ok(Some(newname)) => {
                        view.messages[i].filename = newname;
                        view.messages[i].flags = flags;
                        seen_now = true;
                    }
                    Ok(None) => {}
                    Err(e) => log::error!("setting \\Seen: {e}"),
                }
            }
            let line = render_fetch(view, i, &items, file.as_deref(), seen_now);
            self.send_untagged(&line);
            if self.broken {
                break;
            }
        }
        if let Some(v) = self.selected.as_mut()
            && marks_seen
        {
            v.note_own_change();
        }
        if failed {
            Done::no_code("UNAVAILABLE", "Some messages could not be read.")
        } else if gone {
            Done::no_code(
                "EXPUNGEISSUED",
                "Some messages were expunged by another session.",
            )
        } else {
            Done::ok("FETCH completed.")
        }
    }
}

/// Builds `n FETCH (...)` for one message.
fn render_fetch(
    view: &SelectedView,
    i: usize,
    items: &[FetchItem],
    data: Option<&[u8]>,
    seen_now: bool,
) -> Vec<u8> {
    let m = &view.messages[i];
    let mut out = format!("{} FETCH (", i + 1).into_bytes();
    let parsed = data.map(Message::parse);
    let mut first = true;
    let mut flags_sent = false;
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
                let t = internal_date(&view.folder, m).unwrap_or(0);
                out.extend_from_slice(
                    format!("INTERNALDATE \"{}\"", format_date_time(t, local_offset(t))).as_bytes(),
                );
            }
            FetchItem::Rfc822Size => {
                let n = data.map(crlf_len).unwrap_or(0);
                out.extend_from_slice(format!("RFC822.SIZE {n}").as_bytes());
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
                push_literal(&mut out, data.unwrap_or_default());
            }
            FetchItem::Rfc822Header => {
                out.extend_from_slice(b"RFC822.HEADER ");
                push_literal(
                    &mut out,
                    parsed.as_ref().map(|p| p.header()).unwrap_or_default(),
                );
            }
            FetchItem::Rfc822Text => {
                out.extend_from_slice(b"RFC822.TEXT ");
                push_literal(
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
                        push_literal(&mut out, &bytes[start..end]);
                    }
                    None => {
                        out.push(b' ');
                        push_literal(&mut out, &bytes);
                    }
                }
            }
        }
    }
    if seen_now && !flags_sent {
        out.extend_from_slice(b" FLAGS ");
        write_flag_list(&mut out, &m.flags, &m.keywords, m.recent);
    }
    out.push(b')');
    out
}
