//! APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315).
//!
//! The message arrives once: in memory when small, spooled to the maildir's
//! `tmp/` by the framing layer when large, and is converted to LF line ends
//! as it is written into the folder, so no second copy is ever made.

use std::io::{BufReader, Read};

use super::{Completion, Session, store_error};
use crate::maildir::acl::right;
use crate::maildir::{BeforePlacing, StoreError};
use crate::message::ToLf;
use crate::protocol::command::MessageData;
use crate::protocol::response::Code;

impl Session<'_> {
    pub(super) fn cmd_append(
        &mut self,
        raw: &[u8],
        flags: &[String],
        date: Option<i64>,
        message: MessageData,
    ) -> Completion {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        if message.len() > self.settings.max_append as u64 {
            return Completion::no_code(Code::TooBig, "Message too large.");
        }
        let mut change = match super::flags::parse_for_store(flags, self.settings.keywords) {
            Ok(c) => c,
            Err(d) => return d,
        };
        let folder = match self.folder(&name) {
            Ok(f) => f,
            // RFC 3501 §6.3.11: TRYCREATE tells the client to CREATE and retry (which
            // cannot make a shared folder).
            Err(StoreError::NonExistent(_)) if !super::shared::is_shared(&name) => {
                return Completion::no_code(Code::TryCreate, "No such mailbox.");
            }
            Err(e) => return store_error(&e),
        };
        match self.require(&name, right::INSERT, "APPEND") {
            Ok(rights) => super::acl::permit_append(&mut change, &rights),
            Err(d) => return d,
        }
        // Store messages the way an MTA does, with LF line ends, so sizes
        // and files look the same as Courier's.
        let mut source: Box<dyn Read + '_> = match &message {
            MessageData::Memory(data) => Box::new(ToLf::new(&data[..])),
            MessageData::Spooled(spool) => Box::new(ToLf::new(BufReader::new(&spool.file))),
        };
        // The quota is checked once the message's size is known, before it is put in place:
        // the quota of the folder's own maildir (another account's folder counts toward its
        // owner's, as Courier's APPEND counts it; a filesystem-shared one toward none).
        let quota = folder.quota();
        let flags = change.info_flags();
        let mut deliver = |before_placing: Option<BeforePlacing<'_>>| {
            folder.deliver_from(
                &mut source,
                &flags,
                &change.keywords,
                date,
                quota,
                before_placing,
            )
        };
        // Into the outbox, the message is also sent, and stored only if that worked.
        let delivered = match self.settings.outbox.as_ref().filter(|o| o.is_outbox(&name)) {
            Some(outbox) => outbox.deliver_sending(|send| deliver(Some(send))),
            None => deliver(None).map_err(|e| store_error(&e)),
        };
        match delivered {
            Ok((uidvalidity, uid)) => {
                Completion::ok_code(Code::AppendUid { uidvalidity, uid }, "APPEND completed.")
            }
            Err(refusal) => refusal,
        }
    }
}
