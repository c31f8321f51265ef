//! APPEND (RFC 3501 §6.3.11) and MULTIAPPEND (RFC 3502), with APPENDUID
//! (RFC 4315).
//!
//! Each message arrives once: in memory when small, spooled to the maildir's
//! `tmp/` by the framing layer when large, and is converted to LF line ends
//! as it is written into the folder, so no second copy is ever made. A
//! MULTIAPPEND is one delivery, all or nothing: every message is checked
//! (size, flags, rights) before any is written, the quota admits them
//! together, and the store places them together or not at all. Into the
//! selected folder, the view takes the new messages in as the store reports
//! them (EXISTS now, no rescan at the next command).
//!
//! A message with a part the maildir could not give back byte for byte (a
//! `binary` part with bare LFs, NUL, ...) is stored with that part in base64
//! (see `message/binary_parts.rs`); only then is it held in memory whole.
//! The APPEND size limit (APPENDLIMIT) applies to the message as the client
//! sent it, the quota to what is stored, which is what the maildir holds
//! and `maildirsize` counts.

use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;

use super::{Completion, Session, store_error};
use crate::maildir::acl::right;
use crate::maildir::{BeforePlacing, Delivery, Folder, NewMessage, StoreError};
use crate::message::{BinaryScan, ToLf, base64_binary_parts};
use crate::protocol::command::{AppendMessage, MessageData};
use crate::protocol::response::Code;
use crate::protocol::sequence::compact;

/// The message with the parts the maildir cannot keep as sent re-encoded in base64, or
/// None when it is stored as it came (nearly always: a message without NUL or the word
/// `binary` is only scanned, a spooled one in pieces, never read whole).
fn with_binary_parts_in_base64(message: &MessageData) -> std::io::Result<Option<Vec<u8>>> {
    match message {
        MessageData::Memory(data) => Ok(base64_binary_parts(data)),
        MessageData::Spooled(spool) => {
            // pread: the spool's file position is where the store reads from.
            let mut scan = BinaryScan::default();
            let mut piece = vec![0u8; 64 * 1024];
            let mut offset = 0u64;
            while offset < spool.len && !scan.found() {
                let n = spool.file.read_at(&mut piece, offset)?;
                if n == 0 {
                    break;
                }
                scan.feed(piece.get(..n).unwrap_or_default());
                offset += n as u64;
            }
            if !scan.found() {
                return Ok(None);
            }
            let len = usize::try_from(spool.len).map_err(std::io::Error::other)?;
            let mut whole = vec![0u8; len];
            spool.file.read_exact_at(&mut whole, 0)?;
            Ok(base64_binary_parts(&whole))
        }
    }
}

impl Session<'_> {
    pub(super) fn cmd_append(
        &mut self,
        raw: &[u8],
        mut messages: Vec<AppendMessage>,
    ) -> Completion {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        if messages
            .iter()
            .any(|m| m.message.len() > self.settings.max_append as u64)
        {
            return Completion::no_code(Code::TooBig, "Message too large.");
        }
        let mut changes = Vec::with_capacity(messages.len());
        for m in &messages {
            match super::flags::parse_for_store(&m.flags, self.settings.keywords) {
                Ok(c) => changes.push(c),
                Err(d) => return d,
            }
        }
        let folder = match self.folder(&name) {
            Ok(f) => self.as_delivery_target(f),
            // RFC 3501 §6.3.11: TRYCREATE tells the client to CREATE and retry (which
            // cannot make a shared folder).
            Err(StoreError::NonExistent(_)) if !super::shared::is_shared(&name) => {
                return Completion::no_code(Code::TryCreate, "No such mailbox.");
            }
            Err(e) => return store_error(&e),
        };
        match self.require(&name, right::INSERT, "APPEND") {
            Ok(rights) => {
                for change in &mut changes {
                    super::acl::permit_append(change, &rights);
                }
            }
            Err(d) => return d,
        }
        // CATENATE (RFC 4469): build the message from its parts, once the
        // destination is known to exist (TRYCREATE comes before BADURL).
        for m in &mut messages {
            if let Some(parts) = m.catenate.take() {
                match self.catenate(parts, self.settings.max_append) {
                    Ok(bytes) => m.message = MessageData::Memory(bytes),
                    Err(refusal) => return refusal,
                }
            }
        }
        for m in &mut messages {
            match with_binary_parts_in_base64(&m.message) {
                Ok(Some(bytes)) => m.message = MessageData::Memory(bytes),
                Ok(None) => {}
                Err(e) => {
                    log::error!("reading a spooled APPEND message: {e}");
                    return Completion::no_code(Code::ServerBug, "Cannot read the message text.");
                }
            }
        }
        let outbox = self.settings.outbox.as_ref().filter(|o| o.is_outbox(&name));
        // Courier sends one message at a time unless OUTBOX_MULTIPLE_SEND.
        if let Some(refusal) = outbox.and_then(|o| o.refuse_count(messages.len())) {
            return refusal;
        }
        // Store messages the way an MTA does, with LF line ends, so sizes
        // and files look the same as Courier's.
        let mut sources: Vec<Box<dyn Read + '_>> = messages
            .iter()
            .map(|m| -> Box<dyn Read + '_> {
                match &m.message {
                    MessageData::Memory(data) => Box::new(ToLf::new(&data[..])),
                    MessageData::Spooled(spool) => Box::new(ToLf::new(BufReader::new(&spool.file))),
                }
            })
            .collect();
        let mut new_messages: Vec<NewMessage<'_>> = sources
            .iter_mut()
            .zip(&messages)
            .zip(&changes)
            .map(|((source, m), change)| NewMessage {
                data: &mut **source,
                flags: change.info_flags(),
                keywords: change.keywords.clone(),
                internal_date: m.date,
            })
            .collect();
        // The quota is checked once the messages' sizes are known, before any is put in
        // place: the quota of the folder's own maildir (another account's folder counts
        // toward its owner's, as Courier's APPEND counts it; a filesystem-shared one toward
        // none).
        let quota = folder.quota();
        let mut deliver = |before_placing: Option<BeforePlacing<'_>>| {
            folder.deliver_messages(&mut new_messages, quota, before_placing)
        };
        // Into the outbox, the messages are also sent, and stored only if that worked.
        let delivered = match outbox {
            Some(outbox) => outbox.deliver_sending(|send| deliver(Some(send))),
            None => deliver(None).map_err(|e| store_error(&e)),
        };
        match delivered {
            Ok(delivery) => {
                self.take_own_delivery(&folder, &delivery);
                let code = Code::AppendUid {
                    uidvalidity: delivery.uidvalidity,
                    uids: compact(&delivery.uids()),
                };
                Completion::ok_code(code, "APPEND completed.")
            }
            Err(refusal) => refusal,
        }
    }

    /// `target` as the folder this session delivers into: when it is the selected folder,
    /// opened read-write, what the session puts there is recent for it (RFC 3501 §2.3.2)
    /// and nobody else (see `maildir/recent.rs`).
    pub(super) fn as_delivery_target(&self, target: Folder) -> Folder {
        match &self.selected {
            Some(view) if !view.read_only && view.folder.path() == target.path() => {
                target.claiming_recent()
            }
            _ => target,
        }
    }

    /// Shows the selected mailbox's view what this session itself just delivered into
    /// `target`, when that is the selected folder (see `SelectedView::take_delivery`).
    pub(super) fn take_own_delivery(&mut self, target: &Folder, delivery: &Delivery) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        if view.folder.path() != target.path() {
            return;
        }
        let mut out = Vec::new();
        let taken = view.take_delivery(delivery);
        view.announce_arrivals(taken, &mut out);
        self.pending.extend(out);
    }
}
