//! Commands on mailboxes as a whole: CREATE (with RFC 6154's USE), DELETE, RENAME,
//! SUBSCRIBE, UNSUBSCRIBE, LSUB and STATUS. LIST, with its extensions, is `list`'s.

use crate::protocol::response::Code;
use std::collections::BTreeMap;

use super::mailbox_size::total_rfc822_size;
use super::names::{fold_inbox, from_wire, pattern_is_reasonable, pattern_matches, to_wire};
use super::{Completion, Session, store_error};
use crate::maildir::SpecialUse;
use crate::maildir::acl::right;
use crate::protocol::command::StatusItem;
use crate::protocol::encode::push_string_utf8;

/// A node of the folder hierarchy for LIST: a folder, or a parent level that
/// exists only because a folder below it does.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Node {
    pub(super) exists: bool,
    pub(super) has_children: bool,
}

/// Every folder plus every level above one, with the attributes LIST reports.
pub(super) fn hierarchy(names: &[String]) -> BTreeMap<String, Node> {
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    for name in names {
        tree.entry(name.clone()).or_default().exists = true;
        let mut end = 0;
        while let Some(i) = name[end..].find('.') {
            let parent = &name[..end + i];
            tree.entry(parent.to_string()).or_default().has_children = true;
            end += i + 1;
        }
    }
    tree
}

impl Session<'_> {
    pub(super) fn cmd_create(&mut self, raw: &[u8], use_attrs: &[String]) -> Completion {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        // RFC 6154 §3: a use not offered refuses the CREATE before anything is made.
        let mut uses = Vec::new();
        for attr in use_attrs {
            match attr.strip_prefix('\\').and_then(SpecialUse::from_name) {
                Some(u) => uses.push(u),
                None => {
                    return Completion::no_code(
                        Code::UseAttr,
                        format!("{attr} is not a special use this server offers."),
                    );
                }
            }
        }
        if name == "INBOX" {
            return Completion::no_code(Code::AlreadyExists, "INBOX always exists.");
        }
        if let Some(refused) = self.refuse_shared(&[&name], "created") {
            return refused;
        }
        if let Err(d) = self.may_create(&name, "CREATE") {
            return d;
        }
        if !uses.is_empty() && super::shared::is_shared(&name) {
            return Completion::no_code(Code::UseAttr, "Special uses are for folders of your own.");
        }
        match self.store.create_folder(&name) {
            Ok(()) => {
                self.settle_acl(&name);
                if !uses.is_empty()
                    && let Err(e) = self.store.set_special_uses(&name, &uses)
                {
                    // RFC 6154 §3: no folder without the use asked for.
                    if let Err(undo) = self.store.delete_folder(&name) {
                        log::error!("removing {name}, created without its special use: {undo}");
                    }
                    return store_error(&e);
                }
                // RFC 8474 §4.1: the new folder's id in the tagged OK. A folder made
                // without one on record yet still exists; a failure here only loses the code.
                match self.folder(&name).and_then(|f| f.mailbox_id()) {
                    Ok(id) => Completion::ok_code(Code::MailboxId(id), "CREATE completed."),
                    Err(e) => {
                        log::error!("recording the MAILBOXID of {name}: {e}");
                        Completion::ok("CREATE completed.")
                    }
                }
            }
            Err(e) => store_error(&e),
        }
    }

    pub(super) fn cmd_delete(&mut self, raw: &[u8]) -> Completion {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        if name == "INBOX" {
            return Completion::no_code(Code::Cannot, "INBOX cannot be deleted.");
        }
        if name == self.settings.trash {
            return Completion::no_code(Code::Cannot, "The trash folder cannot be deleted.");
        }
        if let Some(done) = self.delete_shared(&name) {
            return done;
        }
        // A name that is nothing has no rights to check (and looking would
        // leave an inherited list behind).
        let exists = self.node_exists(&name);
        if exists && let Err(d) = self.require(&name, right::DELETE_FOLDER, "DELETE") {
            return d;
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|v| v.folder.name() == name)
        {
            self.selected = None;
        }
        let acl = if exists {
            self.acl_before_delete(&name)
        } else {
            None
        };
        match self.store.delete_folder(&name) {
            Ok(()) => {
                self.keep_deleted_acl(&name, acl);
                // As Courier: the quota is counted anew rather than credited.
                self.recount_quota();
                Completion::ok("DELETE completed.")
            }
            Err(e) => store_error(&e),
        }
    }

    pub(super) fn cmd_rename(&mut self, from: &[u8], to: &[u8]) -> Completion {
        let (from, to) = match (self.mailbox_name(from), self.mailbox_name(to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(d), _) | (_, Err(d)) => return d,
        };
        if let Some(refused) = self.refuse_shared(&[&from, &to], "renamed") {
            return refused;
        }
        if self.node_exists(&from)
            && let Err(d) = self.require(&from, right::DELETE_FOLDER, "RENAME")
        {
            return d;
        }
        if let Err(d) = self.may_create(&to, "RENAME") {
            return d;
        }
        if let Err(e) = self.store.rename_folder(&from, &to) {
            return store_error(&e);
        }
        if from == "INBOX" {
            // Its messages went to a folder made for them.
            self.settle_acl(&to);
        }
        // A folder renamed to or from .Trash changes what counts; Courier recounts after any.
        self.recount_quota();
        // The selected mailbox (or one below the renamed one) moved with its
        // UID database: follow it. (A renamed INBOX stays in place, emptied;
        // the next rescan reports its messages as expunged.)
        if from != "INBOX"
            && let Some(view) = self.selected.as_mut()
        {
            let current = view.folder.name().to_string();
            let moved = if current == from {
                Some(to.clone())
            } else {
                current
                    .strip_prefix(&format!("{from}."))
                    .map(|rest| format!("{to}.{rest}"))
            };
            if let Some(new_name) = moved {
                match self.store.folder(&new_name) {
                    Ok(folder) => view.folder = folder,
                    Err(e) => log::error!("following the renamed mailbox {new_name}: {e}"),
                }
            }
        }
        Completion::ok("RENAME completed.")
    }

    /// Rebuilds `maildirsize` after a folder changed as a whole. The change is made already:
    /// a failure here is the administrator's to see, not the client's.
    fn recount_quota(&self) {
        if let Err(e) = self.store.quota().recalculate() {
            log::error!(
                "recounting the quota of {}: {e}",
                self.store.root().display()
            );
        }
    }

    pub(super) fn cmd_subscribe(&mut self, raw: &[u8], subscribe: bool) -> Completion {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        if let Some(done) = self.subscribe_shared(&name, subscribe) {
            return done;
        }
        let result = if subscribe {
            self.store.subscribe(&name)
        } else {
            self.store.unsubscribe(&name)
        };
        match result {
            Ok(()) if subscribe => Completion::ok("SUBSCRIBE completed."),
            Ok(()) => Completion::ok("UNSUBSCRIBE completed."),
            Err(e) => store_error(&e),
        }
    }

    pub(super) fn cmd_lsub(&mut self, reference: &[u8], pattern: &[u8]) -> Completion {
        let verb = "LSUB";
        if pattern.is_empty() {
            // RFC 3501 §6.3.8: an empty pattern asks for the delimiter.
            self.pending
                .push(format!("{verb} (\\Noselect) \".\" \"\"").into_bytes());
            return Completion::ok(format!("{verb} completed."));
        }
        let mut full = reference.to_vec();
        full.extend_from_slice(pattern);
        if !pattern_is_reasonable(&full) {
            return Completion::no_code(Code::Limit, "Pattern too complex.");
        }
        let Some(pattern) = from_wire(&full, self.utf8) else {
            // Nothing can match a pattern that is not valid modified UTF-7.
            return Completion::ok(format!("{verb} completed."));
        };
        let pattern = fold_inbox(&pattern);
        // Folders without the lookup right are not shown, nor levels only they make; the
        // shared namespaces take part as Courier has them (see `shared`).
        let existing = match self.listed_folders(&pattern) {
            Ok(n) => n,
            Err(e) => return store_error(&e),
        };
        let tree = hierarchy(&existing);
        let subscribed = match self.subscribed_folders(&pattern) {
            Ok(s) => s,
            Err(e) => return store_error(&e),
        };
        let subtree = hierarchy(&subscribed);
        for (name, node) in &subtree {
            if !pattern_matches(pattern.as_bytes(), name.as_bytes()) {
                continue;
            }
            let exists = tree.get(name).is_some_and(|n| n.exists);
            let attrs = if node.exists && exists {
                ""
            } else if node.exists {
                "\\Noselect"
            } else {
                // A parent of a subscribed folder is listed only when the
                // pattern stops at its level (RFC 3501 §6.3.9).
                let hidden_child = subscribed.iter().any(|s| {
                    s.starts_with(name.as_str())
                        && s.as_bytes().get(name.len()) == Some(&b'.')
                        && !pattern_matches(pattern.as_bytes(), s.as_bytes())
                });
                if !hidden_child {
                    continue;
                }
                "\\Noselect"
            };
            self.push_list_line(verb, attrs, name);
        }
        Completion::ok(format!("{verb} completed."))
    }

    pub(super) fn push_list_line(&mut self, verb: &str, attrs: &str, name: &str) {
        self.pending.push(self.list_line(verb, attrs, name));
    }

    pub(super) fn list_line(&self, verb: &str, attrs: &str, name: &str) -> Vec<u8> {
        let mut line = format!("{verb} ({attrs}) \".\" ").into_bytes();
        push_string_utf8(&mut line, &to_wire(name, self.utf8), self.utf8);
        line
    }

    pub(super) fn cmd_status(&mut self, raw: &[u8], items: &[StatusItem]) -> Completion {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        match self.status_line(&name, items) {
            Ok(line) => {
                self.pending.push(line);
                Completion::ok("STATUS completed.")
            }
            Err(refused) => refused,
        }
    }

    /// HIGHESTMODSEQ of `folder` for STATUS: the selected view's when it is the folder
    /// selected, the index's when it describes the folder (`from_index`), else what a
    /// read-only look at it finds against its index, which that look writes, so that the
    /// next STATUS of an unchanged folder says the same.
    pub(super) fn highest_modseq_of(
        &mut self,
        folder: &crate::maildir::Folder,
        from_index: Option<u64>,
    ) -> Result<u64, Completion> {
        if let Some(view) = self.selected.as_ref()
            && view.folder.path() == folder.path()
        {
            return Ok(view.highest_modseq());
        }
        if let Some(m) = from_index {
            return Ok(m);
        }
        let view =
            super::view::SelectedView::open(folder.clone(), true).map_err(|e| store_error(&e))?;
        Ok(view.highest_modseq())
    }

    /// The untagged STATUS response for folder `name` (STATUS, and LIST-STATUS's after a
    /// LIST line), or how STATUS would be refused.
    pub(super) fn status_line(
        &mut self,
        name: &str,
        items: &[StatusItem],
    ) -> Result<Vec<u8>, Completion> {
        let folder = self.folder(name).map_err(|e| store_error(&e))?;
        self.require(name, right::READ, "STATUS")?;
        let mut st = self
            .status_cache
            .status(&folder)
            .map_err(|e| store_error(&e))?;
        // A folder whose id cannot be recorded (shared read-only: this user may not write
        // its directory) is answered without the item, as SELECT is without the code.
        let mailbox_id = if items.contains(&StatusItem::MailboxId) {
            folder
                .mailbox_id()
                .map_err(|e| log::info!("no MAILBOXID for {name}: {e}"))
                .ok()
        } else {
            None
        };
        let highest = if items.contains(&StatusItem::HighestModSeq) {
            Some(self.highest_modseq_of(&folder, st.highest_modseq)?)
        } else {
            None
        };
        if items.contains(&StatusItem::Size) && st.rfc822_size.is_none() {
            st.rfc822_size = Some(total_rfc822_size(folder).map_err(|e| store_error(&e))?);
        }
        let mut line = b"STATUS ".to_vec();
        push_string_utf8(&mut line, &to_wire(name, self.utf8), self.utf8);
        line.extend_from_slice(b" (");
        let parts: Vec<String> = items
            .iter()
            .filter(|item| **item != StatusItem::MailboxId || mailbox_id.is_some())
            .map(|item| match item {
                StatusItem::Messages => format!("MESSAGES {}", st.messages),
                StatusItem::Recent => format!("RECENT {}", st.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", st.uidnext),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", st.uidvalidity),
                StatusItem::Unseen => format!("UNSEEN {}", st.unseen),
                StatusItem::Size => format!("SIZE {}", st.rfc822_size.unwrap_or(0)),
                StatusItem::Deleted => format!("DELETED {}", st.deleted),
                // The STORAGE an EXPUNGE would free: none, since Courier's quota counts
                // `\Deleted` messages out as soon as they are flagged.
                StatusItem::DeletedStorage => "DELETED-STORAGE 0".to_string(),
                StatusItem::MailboxId => {
                    format!("MAILBOXID ({})", mailbox_id.as_deref().unwrap_or_default())
                }
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", highest.unwrap_or(0)),
            })
            .collect();
        line.extend_from_slice(parts.join(" ").as_bytes());
        line.push(b')');
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_marks_missing_parents() {
        let t = hierarchy(&["INBOX".into(), "INBOX.Work.Reports".into()]);
        let work = t["INBOX.Work"];
        assert!(!work.exists && work.has_children);
        assert!(t["INBOX"].exists && t["INBOX"].has_children);
        assert!(!t["INBOX.Work.Reports"].has_children);
    }
}
