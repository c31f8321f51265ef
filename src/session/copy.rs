//! COPY, MOVE and their UID forms (RFC 3501 §6.4.7, RFC 6851, RFC 4315
//! COPYUID). The copy is all or nothing: the store puts every message in
//! place or none.

use super::fetch::resolve_set;
use super::{Done, Session, store_error};
use crate::maildir::{InfoFlags, StoreError};
use crate::protocol::sequence::{SequenceSet, compact};

impl Session<'_> {
    pub(super) fn cmd_copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        raw: &[u8],
        is_move: bool,
    ) -> Done {
        let verb = if is_move { "MOVE" } else { "COPY" };
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let Some(view) = self.selected.as_mut() else {
            return Done::bad("No mailbox selected.");
        };
        if is_move && view.read_only {
            return Done::no_code("READ-ONLY", "Mailbox is read-only.");
        }
        let target = match self.store.folder(&name) {
            Ok(f) => f,
            Err(StoreError::NonExistent(_)) => {
                return Done::no_code("TRYCREATE", "No such mailbox.");
            }
            Err(e) => return store_error(&e),
        };
        let indexes = match resolve_set(view, uid, set) {
            Ok(i) => i,
            Err(d) => return d,
        };
        let mut sources: Vec<(std::path::PathBuf, InfoFlags, Vec<String>)> = Vec::new();
        let mut src_uids = Vec::new();
        for &i in &indexes {
            if view.messages[i].expunged {
                return Done::no_code(
                    "EXPUNGEISSUED",
                    "Some messages were expunged by another session.",
                );
            }
            // Another session may have renamed the file (a flag change).
            match view.folder.current_name(&view.messages[i].filename) {
                Ok(Some(name)) => view.messages[i].filename = name,
                Ok(None) => {
                    return Done::no_code(
                        "EXPUNGEISSUED",
                        "Some messages were expunged by another session.",
                    );
                }
                Err(e) => return store_error(&e),
            }
            let m = &view.messages[i];
            sources.push((
                view.folder.message_path(&m.filename),
                m.flags.clone(),
                m.keywords.clone(),
            ));
            src_uids.push(m.uid);
        }
        if sources.is_empty() {
            return Done::ok(format!("{verb} completed."));
        }
        let (uidvalidity, new_uids) = match target.deliver_copies(&sources) {
            Ok(r) => r,
            Err(e) => return store_error(&e),
        };
        let code = format!(
            "COPYUID {uidvalidity} {} {}",
            compact(&src_uids),
            compact(&new_uids)
        );
        if !is_move {
            return Done::ok_code(code, "COPY completed.");
        }
        // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
        self.pending
            .push(format!("OK [{code}] Moved.").into_bytes());
        let Some(view) = self.selected.as_mut() else {
            return Done::ok("MOVE completed.");
        };
        let mut removed = Vec::new();
        for &i in &indexes {
            let m = &view.messages[i];
            // Remove the file as it is named now, or the source would survive
            // a flag change made meanwhile and the message would be doubled.
            let name = match view.folder.current_name(&m.filename) {
                Ok(Some(name)) => name,
                Ok(None) => {
                    removed.push(m.uid);
                    continue;
                }
                Err(e) => {
                    log::error!("MOVE: finding the source: {e}");
                    continue;
                }
            };
            match view.folder.expunge(&name) {
                Ok(()) => removed.push(m.uid),
                Err(e) => log::error!("MOVE: removing the source: {e}"),
            }
        }
        let mut out = Vec::new();
        view.remove_uids(&removed, &mut out);
        self.pending.extend(out);
        Done::ok("MOVE completed.")
    }
}
