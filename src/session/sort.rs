//! SORT and UID SORT (RFC 5256), with RFC 5957's DISPLAYFROM and DISPLAYTO
//! and ESORT's `RETURN (...)` (RFC 5267): the messages SEARCH would find,
//! in the order of the sort criteria, ties in sequence order.
//!
//! What is sorted on comes from [`message_keys`] (the header alone, or the
//! header fields the folder's index keeps), INTERNALDATE and RFC822.SIZE;
//! this module only gathers and orders them.

use std::cmp::Ordering;

use super::fetch::{Needs as Reads, Scratch, prepare};
use super::search::{Matches, completed, esearch_response, saved_uids};
use super::view::SelectedView;
use super::{Completion, Session};
use crate::maildir::Facts;
use crate::message::SortKeys;
use crate::protocol::command::{SearchKey, SearchReturn, SortCriterion, SortKey};

/// The sort and thread keys of message `i` when `header` (else none), and what is known
/// of its size and INTERNALDATE when `size` and `date` ask for them. The keys come from
/// the header fields the folder's index keeps (see `derived`: every field [`SortKeys`]
/// reads is among them, raw and in order, so the keys are those of the whole header),
/// or from the header read alone when the index has not kept them; what is read is kept
/// for the next time. None: the message is gone or unreadable (it then sorts as a
/// message without those headers).
pub(super) fn message_keys(
    view: &mut SelectedView,
    scratch: &mut Scratch,
    i: usize,
    header: bool,
    size: bool,
    date: bool,
) -> Option<(SortKeys, Facts)> {
    // Expunged by another process, not yet reported: gone, whatever the index knows.
    if view.is_expunged(i) {
        return None;
    }
    let reads = Reads {
        fields: header,
        size,
        date,
        ..Reads::default()
    };
    match prepare(view, i, reads, scratch) {
        Ok(Some(p)) => {
            let keys = match (&p.parsed, header) {
                (_, false) => SortKeys::default(),
                (Some(msg), true) => SortKeys::of_header(msg.header()),
                (None, true) => p
                    .fields_message()
                    .map(|kept| SortKeys::of_header(kept.header()))
                    .unwrap_or_default(),
            };
            Some((keys, p.facts))
        }
        Ok(None) => None,
        Err(e) => {
            log::error!("SORT reading {}: {e}", view.folder.path().display());
            None
        }
    }
}

/// One message as the sort sees it.
pub(super) struct Entry {
    pub(super) seq: u32,
    pub(super) uid: u32,
    keys: SortKeys,
    /// INTERNALDATE, read only when a criterion needs it.
    arrival: i64,
    size: u64,
}

impl Entry {
    /// RFC 5256 §2.2: the sent date, or INTERNALDATE when it has none.
    fn date(&self) -> i64 {
        self.keys.sent.unwrap_or(self.arrival)
    }
}

fn compare(a: &Entry, b: &Entry, program: &[SortCriterion]) -> Ordering {
    for c in program {
        let k = (&a.keys, &b.keys);
        let o = match c.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Date => a.date().cmp(&b.date()),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Subject => k.0.subject.cmp(&k.1.subject),
            SortKey::From => k.0.from.cmp(&k.1.from),
            SortKey::To => k.0.to.cmp(&k.1.to),
            SortKey::Cc => k.0.cc.cmp(&k.1.cc),
            SortKey::DisplayFrom => k.0.display_from.cmp(&k.1.display_from),
            SortKey::DisplayTo => k.0.display_to.cmp(&k.1.display_to),
        };
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    // RFC 5256 §3: what all criteria call equal stays in sequence order,
    // REVERSE or not.
    a.seq.cmp(&b.seq)
}

/// The criteria that can decide anything: a key named again (reversed or
/// not) compares what its first naming already found equal, so only the
/// first counts, and a command repeating a key thousands of times costs what
/// naming it once does.
pub(super) fn effective(program: &[SortCriterion]) -> Vec<SortCriterion> {
    let mut out: Vec<SortCriterion> = Vec::new();
    for c in program {
        if !out.iter().any(|o| o.key == c.key) {
            out.push(*c);
        }
    }
    out
}

/// What the criteria need read of each message.
struct Needs {
    header: bool,
    arrival: bool,
    size: bool,
}

fn needs(program: &[SortCriterion]) -> Needs {
    let has = |k: SortKey| program.iter().any(|c| c.key == k);
    Needs {
        header: program
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size)),
        // DATE falls back to INTERNALDATE.
        arrival: has(SortKey::Arrival) || has(SortKey::Date),
        size: has(SortKey::Size),
    }
}

/// The messages `hits` names, with their keys, in sort order.
pub(super) fn sorted(
    view: &mut SelectedView,
    scratch: &mut Scratch,
    hits: &[usize],
    program: &[SortCriterion],
) -> Vec<Entry> {
    let needs = needs(program);
    let mut entries: Vec<Entry> = hits
        .iter()
        .map(|&i| {
            let (keys, facts) =
                message_keys(view, scratch, i, needs.header, needs.size, needs.arrival)
                    .unwrap_or_default();
            Entry {
                seq: i as u32 + 1,
                uid: view.uid(i),
                keys,
                arrival: facts.date.unwrap_or(0),
                size: facts.size.unwrap_or(0),
            }
        })
        .collect();
    scratch.trim();
    entries.sort_by(|a, b| compare(a, b, program));
    entries
}

impl Session<'_> {
    pub(super) fn cmd_sort(
        &mut self,
        tag: &str,
        uid: bool,
        returns: Option<SearchReturn>,
        program: &[SortCriterion],
        charset: &str,
        criteria: &SearchKey,
    ) -> Completion {
        let saves = returns.is_some_and(|r| r.save);
        let Matches {
            hits,
            expunge_issued,
        } = match self.selected_matches(Some(charset), criteria, saves) {
            Ok(m) => m,
            Err(refusal) => return refusal,
        };
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        let entries = sorted(view, &mut self.scratch, &hits, &effective(program));
        let ids: Vec<u32> = entries
            .iter()
            .map(|e| if uid { e.uid } else { e.seq })
            .collect();
        match returns {
            None => {
                let mut line = b"SORT".to_vec();
                for id in ids {
                    line.extend_from_slice(format!(" {id}").as_bytes());
                }
                self.pending.push(line);
            }
            Some(returns) => {
                if returns.save {
                    let uids: Vec<u32> = entries.iter().map(|e| e.uid).collect();
                    self.saved_result = saved_uids(&returns, &uids);
                }
                self.pending
                    .extend(esearch_response(tag, uid, &returns, &ids));
                if returns.update {
                    let uids: Vec<u32> = entries.iter().map(|e| e.uid).collect();
                    self.keep_updated(tag, uid, Some(charset), criteria, Some(program), uids);
                }
            }
        }
        completed("SORT", expunge_issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u32, header: &str, arrival: i64, size: u64) -> Entry {
        Entry {
            seq,
            uid: seq * 10,
            keys: SortKeys::of_header(header.as_bytes()),
            arrival,
            size,
        }
    }

    fn order(entries: &mut [Entry], program: &[(SortKey, bool)]) -> Vec<u32> {
        let program: Vec<SortCriterion> = program
            .iter()
            .map(|&(key, reverse)| SortCriterion { key, reverse })
            .collect();
        entries.sort_by(|a, b| compare(a, b, &program));
        entries.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn repeated_keys_count_once() {
        let c = |key, reverse| SortCriterion { key, reverse };
        let mut program = vec![c(SortKey::Date, false), c(SortKey::Size, true)];
        for _ in 0..5000 {
            program.push(c(SortKey::Date, true));
            program.push(c(SortKey::Size, false));
        }
        assert_eq!(
            effective(&program),
            [c(SortKey::Date, false), c(SortKey::Size, true)]
        );
    }

    #[test]
    fn criteria_reverse_and_ties() {
        let mut e = vec![
            entry(
                1,
                "Subject: Re: b\r\nFrom: Zed <a@x>\r\nDate: 2 Jan 2000 00:00 +0000\r\n\r\n",
                50,
                300,
            ),
            entry(2, "Subject: a\r\nFrom: Amy <z@x>\r\n\r\n", 10, 100),
            entry(
                3,
                "Subject: [list] B\r\nDate: 1 Jan 2000 00:00 +0000\r\n\r\n",
                30,
                100,
            ),
        ];
        use SortKey::*;
        assert_eq!(order(&mut e, &[(Subject, false)]), [2, 1, 3]);
        assert_eq!(order(&mut e, &[(Subject, true)]), [1, 3, 2]);
        assert_eq!(
            order(&mut e, &[(Subject, true), (Arrival, false)]),
            [3, 1, 2]
        );
        // Equal sizes stay in sequence order, reversed or not.
        assert_eq!(order(&mut e, &[(Size, false)]), [2, 3, 1]);
        assert_eq!(order(&mut e, &[(Size, true)]), [1, 2, 3]);
        // No Date: INTERNALDATE (10) sorts message 2 first.
        assert_eq!(order(&mut e, &[(Date, false)]), [2, 3, 1]);
        // Missing From sorts first (empty key).
        assert_eq!(order(&mut e, &[(From, false)]), [3, 1, 2]);
        assert_eq!(order(&mut e, &[(DisplayFrom, false)]), [3, 2, 1]);
    }
}
