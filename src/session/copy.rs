//! COPY, MOVE and their UID forms (RFC 3501 §6.4.7, RFC 6851, RFC 4315
//! COPYUID). The copy is all or nothing: the store puts every message in
//! place or none. The selected folder's view takes in what this session
//! changed itself (copies into it, the sources MOVE removes from it), so the
//! next command does not rescan it for them.

use super::{Completion, Session, store_error};
use crate::maildir::acl::right;
use crate::maildir::{BeforePlacing, InfoFlags, QuotaUse, StoreError};
use crate::protocol::response::Code;
use crate::protocol::sequence::{SequenceSet, compact};

impl Session<'_> {
    pub(super) fn cmd_copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        raw: &[u8],
        is_move: bool,
    ) -> Completion {
        let verb = if is_move { "MOVE" } else { "COPY" };
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        if self.selected.is_none() {
            return Completion::bad("No mailbox selected.");
        }
        let target = match self.folder(&name) {
            Ok(f) => self.as_delivery_target(f),
            Err(StoreError::NonExistent(_)) if !super::shared::is_shared(&name) => {
                return Completion::no_code(Code::TryCreate, "No such mailbox.");
            }
            Err(e) => return store_error(&e),
        };
        let target_rights = match self.require(&name, right::INSERT, verb) {
            Ok(r) => r,
            Err(d) => return d,
        };
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        if is_move && !(view.rights.has(right::DELETE_MESSAGES) && view.rights.has(right::EXPUNGE))
        {
            return super::acl::denied("MOVE", "current mailbox", "te");
        }
        if is_move && view.read_only {
            return Completion::no_code(Code::ReadOnly, "Mailbox is read-only.");
        }
        let indexes: Vec<usize> = match view.resolve(uid, set) {
            Ok(ranges) => ranges.into_iter().flatten().collect(),
            Err(d) => return d,
        };
        let mut sources: Vec<(String, InfoFlags, Vec<String>)> = Vec::new();
        let mut src_uids = Vec::new();
        for &i in &indexes {
            if view.is_expunged(i) {
                return Completion::no_code(
                    Code::ExpungeIssued,
                    "Some messages were expunged by another session.",
                );
            }
            // Another session may have renamed the file (a flag change).
            let current = view
                .filename(i)
                .and_then(|known| view.folder.current_name(&known));
            let filename = match current {
                Ok(Some(name)) => {
                    view.found_as(i, &name);
                    name
                }
                Ok(None) => {
                    return Completion::no_code(
                        Code::ExpungeIssued,
                        "Some messages were expunged by another session.",
                    );
                }
                Err(e) => return store_error(&e),
            };
            let (mut flags, mut keywords) = (view.flags(i), view.keywords(i).to_vec());
            super::acl::permit_copy(&target_rights, &mut flags, &mut keywords);
            sources.push((filename, flags, keywords));
            src_uids.push(view.uid(i));
        }
        if sources.is_empty() {
            return Completion::ok(format!("{verb} completed."));
        }
        // A MOVE between two folders one quota counts leaves the count as it is: the copy is
        // not charged and the removal not credited. Otherwise the copy is charged like a
        // COPY (checked before anything is in place) and a removal from a counted source
        // credited, as Courier counts moves into and out of .Trash. Each to the quota of
        // the folder's own maildir: another account's folder is its owner's to count (as
        // Courier's APPEND counts it), and a filesystem-shared folder counts toward none,
        // so neither is ever charged to this user (Courier's COPY into `#shared.` checks
        // the user's own quota instead; that is not followed).
        let quota_unchanged = is_move && view.folder.shares_quota_with(&target);
        let charged = if quota_unchanged {
            None
        } else {
            target.quota()
        };
        let outbox = self.settings.outbox.as_ref().filter(|o| o.is_outbox(&name));
        if let Some(refusal) = outbox.and_then(|o| o.refuse_count(sources.len())) {
            return refusal;
        }
        let deliver = |before_placing: Option<BeforePlacing<'_>>| {
            target.deliver_copies(&view.folder, &sources, charged, before_placing)
        };
        // Into the outbox, each message is also sent, and all are stored only if that worked.
        let delivered = match outbox {
            Some(outbox) => outbox.deliver_sending(|send| deliver(Some(send))),
            None => deliver(None).map_err(|e| store_error(&e)),
        };
        let delivery = match delivered {
            Ok(r) => r,
            Err(refusal) => return refusal,
        };
        let code = Code::CopyUid {
            uidvalidity: delivery.uidvalidity,
            source: compact(&src_uids),
            dest: compact(&delivery.uids()),
        };
        // Into the selected folder itself: shown at once, and no rescan for it.
        let into_selected = view.folder.path() == target.path() && view.take_delivery(&delivery);
        if !is_move {
            // Courier's magic trash removes these outright when they are expunged here: the
            // client has its copy (the usual way to move without MOVE).
            view.copied.extend(src_uids);
            let mut arrivals = Vec::new();
            view.announce_arrivals(into_selected, &mut arrivals);
            self.pending.extend(arrivals);
            return Completion::ok_code(code, "COPY completed.");
        }
        // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs; a MOVE into the
        // selected folder itself announces the new EXISTS after them, counting what is left.
        self.pending
            .push(Completion::ok_code(code, "Moved.").body());
        crate::maildir::crash::at("move-copied");
        let Some(view) = self.selected.as_mut() else {
            return Completion::ok("MOVE completed.");
        };
        // The removals are this session's own: the view takes them in below, and with
        // these stamps needs no rescan for them.
        let before = view.folder.change_stamp();
        let mut removed = Vec::new();
        let mut freed = QuotaUse::default();
        for &i in &indexes {
            let uid = view.uid(i);
            // Remove the file as it is named now, or the source would survive
            // a flag change made meanwhile and the message would be doubled.
            let current = view
                .filename(i)
                .and_then(|known| view.folder.current_name(&known));
            let name = match current {
                Ok(Some(name)) => name,
                Ok(None) => {
                    removed.push(uid);
                    continue;
                }
                Err(e) => {
                    log::error!("MOVE: finding the source: {e}");
                    continue;
                }
            };
            let charge = if quota_unchanged {
                QuotaUse::default()
            } else {
                view.folder.quota_charge(&name).unwrap_or_else(|e| {
                    log::error!("MOVE: sizing the source for the quota: {e}");
                    QuotaUse::default()
                })
            };
            match view.folder.expunge(&name) {
                Ok(true) => {
                    removed.push(uid);
                    freed += charge;
                }
                // A shared folder's message this user may not remove: it stays, copied.
                Ok(false) => {}
                Err(e) => log::error!("MOVE: removing the source: {e}"),
            }
        }
        let after = view.folder.change_stamp();
        if let Some(quota) = view.folder.quota() {
            quota.record_removal(freed);
        }
        let mut out = Vec::new();
        view.remove_uids(&removed, &mut out);
        view.adopt_own_stamp(before.as_ref(), after.as_ref());
        view.announce_arrivals(into_selected, &mut out);
        self.pending.extend(out);
        Completion::ok("MOVE completed.")
    }
}
