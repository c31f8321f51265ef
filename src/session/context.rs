//! Updating searches (RFC 5267 CONTEXT=SEARCH and CONTEXT=SORT): a SEARCH or SORT with
//! `RETURN (UPDATE)` whose result the session keeps current, telling the client with
//! unsolicited `ESEARCH (TAG "t") ADDTO (...)` and `REMOVEFROM (...)` as messages arrive,
//! change flags so that they start or stop matching, or are expunged; CANCELUPDATE ends
//! one. They live in the selected mailbox's view and end with it.
//!
//! The view calls [`UpdatingSearches::drop_expunged`] as it reports expunges, so that a
//! REMOVEFROM names messages by the numbers the client still knows, before the EXPUNGE
//! that renumbers them. Everything else is caught up after each command and during IDLE
//! ([`Session::report_context_updates`], after the view's own untagged responses, so an
//! ADDTO follows the EXISTS of what it adds): only messages whose MODSEQ moved past the
//! one the search last looked at are matched again, so an unchanged mailbox costs a
//! comparison and a flag change one message's match. Keys whose answer moves without the
//! message changing (WITHIN's YOUNGER and OLDER, `$`, sequence numbers after an expunge)
//! are not re-evaluated for unchanged messages.
//!
//! Must not: write untagged responses itself or decide when they may go (that is the
//! view's and the session loop's), or read message content except through `matching`.

use super::fetch::Scratch;
use super::search::matching_among;
use super::sort::{effective, sorted};
use super::view::SelectedView;
use super::{Completion, Session};
use crate::maildir::fast::FastSet;
use crate::protocol::command::{SearchKey, SortCriterion};
use crate::protocol::encode::push_string;
use crate::protocol::response::Code;
use crate::protocol::sequence::compact;

/// How many searches one session may keep updating; another is answered once, with
/// `NOUPDATE` (RFC 5267 §4.2), as each costs a look at every changed message.
pub const MAX_UPDATING: usize = 32;

/// One search kept current.
#[derive(Debug)]
pub struct UpdatingSearch {
    /// The tag of the command that asked, which its ESEARCH responses carry.
    pub tag: String,
    /// UID SEARCH or UID SORT: updates name UIDs, else sequence numbers.
    pub uid: bool,
    pub charset: Option<String>,
    pub criteria: SearchKey,
    /// SORT's criteria (already `effective`); None for SEARCH, whose result is unordered.
    pub program: Option<Vec<SortCriterion>>,
    /// The result as the client knows it, as UIDs: ascending for SEARCH, in sort order
    /// for SORT.
    pub result: Vec<u32>,
    /// The view's HIGHESTMODSEQ when the result was last brought up to date: a message
    /// with a higher MODSEQ changed or arrived since.
    pub modseq: u64,
}

/// The updating searches of the selected mailbox.
#[derive(Debug, Default)]
pub struct UpdatingSearches {
    searches: Vec<UpdatingSearch>,
}

impl UpdatingSearches {
    pub fn is_empty(&self) -> bool {
        self.searches.is_empty()
    }

    /// Keeps `search` current, replacing one with the same tag; false when
    /// [`MAX_UPDATING`] are kept already.
    pub fn keep(&mut self, search: UpdatingSearch) -> bool {
        self.searches.retain(|s| s.tag != search.tag);
        if self.searches.len() >= MAX_UPDATING {
            return false;
        }
        self.searches.push(search);
        true
    }

    /// Ends the search with this tag; false when none has it.
    pub fn cancel(&mut self, tag: &str) -> bool {
        let before = self.searches.len();
        self.searches.retain(|s| s.tag != tag);
        self.searches.len() < before
    }

    /// RFC 5267 §4.3: each search loses the messages the view is about to report
    /// expunged, named as the client knows them now (before the EXPUNGEs renumber).
    pub fn drop_expunged(&mut self, view: &SelectedView, out: &mut Vec<Vec<u8>>) {
        let gone = |uid: u32| view.seq_of_uid(uid).filter(|&i| view.is_expunged(i));
        for s in &mut self.searches {
            if !s.result.iter().any(|&u| gone(u).is_some()) {
                continue;
            }
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            let mut kept = Vec::with_capacity(s.result.len());
            for &uid in &s.result {
                match gone(uid) {
                    // Positions count what is left once the earlier removals are made.
                    Some(i) => pairs.push((kept.len() as u32 + 1, s.id(uid, i))),
                    None => kept.push(uid),
                }
            }
            s.result = kept;
            out.push(s.line("REMOVEFROM", &pairs));
        }
    }
}

impl UpdatingSearch {
    /// What the client calls the message with this UID at view index `i`.
    fn id(&self, uid: u32, i: usize) -> u32 {
        if self.uid { uid } else { i as u32 + 1 }
    }

    /// `ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (...)` for `(position, id)` pairs:
    /// for SEARCH one pair, position 0 and the ids as a set; for SORT a pair per
    /// message, applied in turn.
    fn line(&self, what: &str, pairs: &[(u32, u32)]) -> Vec<u8> {
        let mut line = b"ESEARCH (TAG ".to_vec();
        push_string(&mut line, self.tag.as_bytes());
        line.push(b')');
        if self.uid {
            line.extend_from_slice(b" UID");
        }
        line.extend_from_slice(format!(" {what} (").as_bytes());
        if self.program.is_none() {
            let mut ids: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            ids.sort_unstable();
            line.extend_from_slice(format!("0 {}", compact(&ids)).as_bytes());
        } else {
            let words: Vec<String> = pairs.iter().map(|(p, id)| format!("{p} {id}")).collect();
            line.extend_from_slice(words.join(" ").as_bytes());
        }
        line.push(b')');
        line
    }

    /// Matches again the messages changed or arrived since the last look, and appends
    /// the REMOVEFROM and ADDTO that bring the client's result to what it is now.
    fn catch_up(
        &mut self,
        view: &mut SelectedView,
        scratch: &mut Scratch,
        saved: &[u32],
        out: &mut Vec<Vec<u8>>,
    ) {
        let highest = view.highest_modseq();
        if highest == self.modseq {
            return;
        }
        // A sorted result holding a message expunged by another process, not yet
        // reported, waits until it is: its sort keys are gone with its file, and guessing
        // its place could move the others.
        let member: FastSet<u32> = self.result.iter().copied().collect();
        if self.program.is_some()
            && (0..view.len()).any(|i| view.is_expunged(i) && member.contains(&view.uid(i)))
        {
            return;
        }
        let since = self.modseq;
        let changed: Vec<usize> = (0..view.len())
            .filter(|&i| !view.is_expunged(i) && view.modseq(i) > since)
            .collect();
        self.modseq = highest;
        if changed.is_empty() {
            return;
        }
        let Ok(found) = matching_among(
            view,
            scratch,
            self.charset.as_deref(),
            &self.criteria,
            saved,
            changed.iter().copied(),
        ) else {
            return;
        };
        let hits: FastSet<usize> = found.hits.iter().copied().collect();
        let removed: Vec<usize> = changed
            .iter()
            .copied()
            .filter(|i| !hits.contains(i) && member.contains(&view.uid(*i)))
            .collect();
        let added: Vec<usize> = found
            .hits
            .iter()
            .copied()
            .filter(|i| !member.contains(&view.uid(*i)))
            .collect();
        if removed.is_empty() && added.is_empty() {
            return;
        }
        match self.program.clone() {
            None => self.catch_up_set(view, &removed, &added, out),
            Some(program) => self.catch_up_sorted(view, scratch, &program, &removed, &added, out),
        }
    }

    fn catch_up_set(
        &mut self,
        view: &SelectedView,
        removed: &[usize],
        added: &[usize],
        out: &mut Vec<Vec<u8>>,
    ) {
        let pairs = |list: &[usize]| -> Vec<(u32, u32)> {
            list.iter().map(|&i| (0, self.id(view.uid(i), i))).collect()
        };
        if !removed.is_empty() {
            out.push(self.line("REMOVEFROM", &pairs(removed)));
        }
        if !added.is_empty() {
            out.push(self.line("ADDTO", &pairs(added)));
        }
        let gone: FastSet<u32> = removed.iter().map(|&i| view.uid(i)).collect();
        self.result.retain(|u| !gone.contains(u));
        self.result.extend(added.iter().map(|&i| view.uid(i)));
        self.result.sort_unstable();
    }

    /// The sort keys of messages do not change (flags sort nothing), so what stays keeps
    /// its order: the removals are made one by one in the old order, then the additions
    /// inserted at their places in the new order, lowest first.
    fn catch_up_sorted(
        &mut self,
        view: &mut SelectedView,
        scratch: &mut Scratch,
        program: &[SortCriterion],
        removed: &[usize],
        added: &[usize],
        out: &mut Vec<Vec<u8>>,
    ) {
        let gone: FastSet<u32> = removed.iter().map(|&i| view.uid(i)).collect();
        let mut removals = Vec::new();
        let mut kept_count = 0u32;
        for &uid in &self.result {
            if gone.contains(&uid) {
                if let Some(i) = view.seq_of_uid(uid) {
                    removals.push((kept_count + 1, self.id(uid, i)));
                }
            } else {
                kept_count += 1;
            }
        }
        let mut members: Vec<usize> = self
            .result
            .iter()
            .filter(|u| !gone.contains(u))
            .filter_map(|&u| view.seq_of_uid(u))
            .chain(added.iter().copied())
            .collect();
        members.sort_unstable();
        let order = sorted(view, scratch, &members, program);
        let new: FastSet<u32> = added.iter().map(|&i| view.uid(i)).collect();
        let additions: Vec<(u32, u32)> = order
            .iter()
            .enumerate()
            .filter(|(_, e)| new.contains(&e.uid))
            .map(|(k, e)| (k as u32 + 1, if self.uid { e.uid } else { e.seq }))
            .collect();
        if !removals.is_empty() {
            out.push(self.line("REMOVEFROM", &removals));
        }
        if !additions.is_empty() {
            out.push(self.line("ADDTO", &additions));
        }
        self.result = order.iter().map(|e| e.uid).collect();
    }
}

impl Session<'_> {
    /// After a SEARCH or SORT with `RETURN (UPDATE)` answered `result` (UIDs, in the
    /// result's order): keeps it current from now on, or says it will not.
    pub(super) fn keep_updated(
        &mut self,
        tag: &str,
        uid: bool,
        charset: Option<&str>,
        criteria: &SearchKey,
        program: Option<&[SortCriterion]>,
        result: Vec<u32>,
    ) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        let search = UpdatingSearch {
            tag: tag.to_string(),
            uid,
            charset: charset.map(str::to_string),
            criteria: criteria.clone(),
            program: program.map(effective),
            result,
            modseq: view.highest_modseq(),
        };
        if !view.updating.keep(search) {
            let code = Code::NoUpdate(tag.to_string());
            let text =
                format!("Already {MAX_UPDATING} updating searches; this one is not kept current.");
            self.pending.push(Completion::no_code(code, text).body());
        }
    }

    /// CANCELUPDATE (RFC 5267 §4.2).
    pub(super) fn cmd_cancel_update(&mut self, tags: &[String]) -> Completion {
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        let unknown: Vec<&str> = tags
            .iter()
            .filter(|t| !view.updating.cancel(t))
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            Completion::ok("CANCELUPDATE completed.")
        } else {
            Completion::bad(format!(
                "No updating search has the tag {}.",
                unknown.join(", ")
            ))
        }
    }

    /// Brings every updating search of the selected mailbox up to date (module comment).
    pub(super) fn report_context_updates(&mut self) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        if view.updating.is_empty() || view.invalidated {
            return;
        }
        let mut updating = std::mem::take(&mut view.updating);
        for s in &mut updating.searches {
            s.catch_up(
                view,
                &mut self.scratch,
                &self.saved_result,
                &mut self.pending,
            );
        }
        view.updating = updating;
    }
}
