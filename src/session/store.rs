//! STORE and UID STORE: flag changes. System flags are renames of the
//! message file; keywords go to Courier's keyword files.

use super::flags::{merge_keywords, remove_keywords, write_flag_list};
use super::{Completion, Session, store_error};
use crate::maildir::{InfoFlags, QuotaUse};
use crate::protocol::command::StoreMode;
use crate::protocol::response::Code;
use crate::protocol::sequence::SequenceSet;

impl Session<'_> {
    pub(super) fn cmd_store(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        mode: StoreMode,
        silent: bool,
        names: &[String],
    ) -> Completion {
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        if view.read_only {
            return Completion::no_code(Code::ReadOnly, "Mailbox is read-only.");
        }
        let change = match super::flags::parse_for_store(names, self.settings.keywords) {
            Ok(c) => c,
            Err(d) => return d,
        };
        let indexes: Vec<usize> = match view.resolve(uid, set) {
            Ok(ranges) => ranges.into_iter().flatten().collect(),
            Err(d) => return d,
        };
        // Courier counts `\Deleted` messages out of the quota: taking the flag off adds them
        // back, so that is checked for the whole command before any file is renamed.
        if removes_deleted(mode, &change.letters) {
            let mut undeleted = QuotaUse::default();
            for &i in &indexes {
                let m = &view.messages[i];
                if m.expunged || !m.flags.has(b'T') {
                    continue;
                }
                let mut flags = m.flags.clone();
                flags.set(b'T', false);
                match view.folder.quota_change_for_flags(&m.filename, &flags) {
                    Ok(change) => undeleted += change,
                    Err(e) => return store_error(&e),
                }
            }
            // The quota of the folder's own maildir (see copy.rs).
            if let Some(quota) = view.folder.quota()
                && let Err(e) = quota.admit(undeleted)
            {
                return store_error(&e);
            }
        }
        let mut lines = Vec::new();
        let mut failure = None;
        let mut grew = false;
        let mut quota_change = QuotaUse::default();
        for i in indexes {
            if view.messages[i].expunged {
                continue;
            }
            // Start from the flags on disk, not from what this session last
            // saw: another session may have changed them since, and its
            // change must survive ours.
            let current = match view.folder.current_name(&view.messages[i].filename) {
                Ok(Some(name)) => name,
                // Gone: another session expunged it; the next rescan says so.
                Ok(None) => continue,
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            let on_disk = InfoFlags::from_filename(&current);
            view.messages[i].filename = current.clone();
            view.messages[i].flags = on_disk.clone();
            let m = &view.messages[i];
            let mut flags = on_disk.clone();
            let mut keywords = m.keywords.clone();
            match mode {
                StoreMode::Replace => {
                    for (_, l) in super::flags::SYSTEM_FLAGS {
                        flags.set(l, change.letters.contains(&l));
                    }
                    keywords = Vec::new();
                    merge_keywords(&mut keywords, &change.keywords);
                }
                StoreMode::Add => {
                    for &l in &change.letters {
                        flags.set(l, true);
                    }
                    merge_keywords(&mut keywords, &change.keywords);
                }
                StoreMode::Remove => {
                    for &l in &change.letters {
                        flags.set(l, false);
                    }
                    remove_keywords(&mut keywords, &change.keywords);
                }
            }
            super::acl::permit_store(
                &view.rights,
                &on_disk,
                &mut flags,
                &m.keywords,
                &mut keywords,
            );
            if flags != on_disk {
                let counted = match view.folder.quota_change_for_flags(&current, &flags) {
                    Ok(change) => change,
                    Err(e) => {
                        failure = Some(e);
                        continue;
                    }
                };
                match view.folder.set_flags(&current, &flags) {
                    Ok(Some(newname)) => {
                        quota_change += counted;
                        let m = &mut view.messages[i];
                        m.filename = newname;
                        m.flags = flags;
                    }
                    // Renamed or expunged in the instant between; the next
                    // rescan reports what happened.
                    Ok(None) => continue,
                    Err(e) => {
                        failure = Some(e);
                        continue;
                    }
                }
            }
            let m = &view.messages[i];
            if keywords != m.keywords {
                if let Err(e) = view.folder.set_keywords(&m.basename, &keywords) {
                    failure = Some(e);
                    continue;
                }
                for k in &keywords {
                    if !view
                        .known_keywords
                        .iter()
                        .any(|e| e.eq_ignore_ascii_case(k))
                    {
                        view.known_keywords.push(k.clone());
                        grew = true;
                    }
                }
                view.messages[i].keywords = keywords;
            }
            if !silent {
                let m = &view.messages[i];
                let mut line = format!("{} FETCH (", i + 1).into_bytes();
                if uid {
                    line.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
                }
                line.extend_from_slice(b"FLAGS ");
                write_flag_list(&mut line, &m.flags, &m.keywords, m.recent);
                line.push(b')');
                lines.push(line);
            }
        }
        if grew {
            // RFC 3501 §7.2.6: FLAGS is re-sent when the defined set grows.
            let mut pf = b"OK [".to_vec();
            pf.extend_from_slice(&view.permanent_flags(self.settings.keywords));
            pf.extend_from_slice(b"] Limited");
            self.pending.push(view.flags_response());
            self.pending.push(pf);
        }
        if let Some(quota) = view.folder.quota() {
            quota.record(quota_change);
        }
        self.pending.extend(lines);
        match failure {
            Some(e) => store_error(&e),
            None => Completion::ok("STORE completed."),
        }
    }
}

/// True when a STORE in `mode` with the flag letters `letters` may take `\Deleted` off.
fn removes_deleted(mode: StoreMode, letters: &[u8]) -> bool {
    match mode {
        StoreMode::Add => false,
        StoreMode::Remove => letters.contains(&b'T'),
        StoreMode::Replace => !letters.contains(&b'T'),
    }
}
