//! STORE and UID STORE: flag changes. System flags are renames of the
//! message file; keywords go to Courier's keyword files.

use super::flags::{merge_keywords, remove_keywords};
use super::view::SelectedView;
use super::{Completion, Session, store_error};
use crate::maildir::fast::FastSet;
use crate::maildir::{InfoFlags, QuotaUse, basename_of};
use crate::protocol::command::StoreMode;
use crate::protocol::response::Code;
use crate::protocol::sequence::SequenceSet;

impl Session<'_> {
    pub(super) fn cmd_store(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        unchanged_since: Option<u64>,
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
                if view.is_expunged(i) || !view.has_flag(i, b'T') {
                    continue;
                }
                let mut flags = view.flags(i);
                flags.set(b'T', false);
                let counted = view
                    .filename(i)
                    .and_then(|name| view.folder.quota_change_for_flags(&name, &flags));
                match counted {
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
        // This session's own renames move cur/; with the stamps around them the view
        // takes them in without a rescan (see view.rs).
        let before = view.stamp_now();
        // Keyword sets are whole files (keywords.rs): changed from the sets on disk, under
        // the folder's keyword lock, never from what this session last saw, or another
        // session's keyword added meanwhile would be lost.
        let mut writer = None;
        if !change.keywords.is_empty() || mode == StoreMode::Replace {
            let mut basenames = FastSet::default();
            for &i in &indexes {
                if view.is_expunged(i) {
                    continue;
                }
                match view.basename(i) {
                    Ok(b) => {
                        basenames.insert(b);
                    }
                    Err(e) => return store_error(&e),
                }
            }
            match view.folder.keyword_writer(&basenames) {
                Ok(w) => writer = Some(w),
                Err(e) => return store_error(&e),
            }
        }
        // RFC 7162 §3.1.3: messages changed since UNCHANGEDSINCE are left alone and named
        // in MODIFIED; everything this STORE changes gets one new MODSEQ.
        let mut modified: Vec<u32> = Vec::new();
        let mut modseq: Option<u64> = None;
        for i in indexes {
            if view.is_expunged(i) {
                continue;
            }
            if let Some(since) = unchanged_since
                && view.modseq(i) > since
            {
                modified.push(if uid { view.uid(i) } else { i as u32 + 1 });
                continue;
            }
            let mut changed = false;
            let known = match view.filename(i) {
                Ok(name) => name,
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            // Start from the flags on disk, not from what this session last
            // saw: another session may have changed them since, and its
            // change must survive ours. The file is tried under the name this
            // session knows first: a rename from it succeeds only if that is
            // still its name, so its flags are the ones on disk. Otherwise (or
            // when there is nothing to rename) the file is looked up.
            let basename = basename_of(&known).to_string();
            let old_keywords = match &writer {
                Some(w) => w.current(&basename).to_vec(),
                None => view.keywords(i).to_vec(),
            };
            let mut current = known.clone();
            let mut verified = false;
            let keywords = loop {
                let on_disk = InfoFlags::from_filename(&current);
                let mut flags = on_disk.clone();
                let mut keywords = old_keywords.clone();
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
                    &old_keywords,
                    &mut keywords,
                );
                if flags == on_disk {
                    if verified {
                        break Some(keywords);
                    }
                    match look_up(view, i, &known) {
                        Ok(Some(name)) => {
                            verified = true;
                            current = name;
                            continue;
                        }
                        Ok(None) => break None,
                        Err(e) => {
                            failure = Some(e);
                            break None;
                        }
                    }
                }
                let counted = match view.folder.quota_change_for_flags(&current, &flags) {
                    Ok(change) => change,
                    Err(e) => {
                        failure = Some(e);
                        break None;
                    }
                };
                match view.folder.set_flags(&current, &flags) {
                    Ok(Some(newname)) => {
                        quota_change += counted;
                        view.renamed(i, &newname, &flags);
                        changed = true;
                        break Some(keywords);
                    }
                    // Renamed or expunged in the instant between; the next
                    // rescan reports what happened.
                    Ok(None) if verified => break None,
                    Ok(None) => match look_up(view, i, &known) {
                        Ok(Some(name)) => {
                            verified = true;
                            current = name;
                        }
                        Ok(None) => break None,
                        Err(e) => {
                            failure = Some(e);
                            break None;
                        }
                    },
                    Err(e) => {
                        failure = Some(e);
                        break None;
                    }
                }
            };
            let Some(keywords) = keywords else {
                continue;
            };
            if let Some(w) = writer.as_mut()
                && keywords != old_keywords
                && let Err(e) = w.write(&basename, &keywords)
            {
                failure = Some(e);
                continue;
            }
            if keywords != old_keywords {
                changed = true;
            }
            if changed {
                let m = *modseq.get_or_insert_with(|| view.new_modseq());
                view.set_modseq(i, m);
            }
            if keywords != view.keywords(i) {
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
                view.set_keywords(i, keywords);
            }
            if !silent {
                lines.push(view.flags_fetch_line(i, uid));
            }
        }
        let after = view.stamp_now();
        view.adopt_own_stamp(before.as_ref(), after.as_ref());
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
            None if !modified.is_empty() => {
                modified.sort_unstable();
                Completion::ok_code(
                    Code::Modified(crate::protocol::sequence::compact(&modified)),
                    "Conditional STORE failed for some messages.",
                )
            }
            None => Completion::ok("STORE completed."),
        }
    }
}

/// Where message `i` (known as `known`) is on disk now: the view records the name and takes
/// the flags it carries as what it knows (as a scan would); `None` when it is gone.
fn look_up(
    view: &mut SelectedView,
    i: usize,
    known: &str,
) -> Result<Option<String>, crate::maildir::StoreError> {
    let Some(name) = view.folder.current_name(known)? else {
        return Ok(None);
    };
    view.renamed(i, &name, &InfoFlags::from_filename(&name));
    Ok(Some(name))
}

/// True when a STORE in `mode` with the flag letters `letters` may take `\Deleted` off.
fn removes_deleted(mode: StoreMode, letters: &[u8]) -> bool {
    match mode {
        StoreMode::Add => false,
        StoreMode::Remove => letters.contains(&b'T'),
        StoreMode::Replace => !letters.contains(&b'T'),
    }
}
