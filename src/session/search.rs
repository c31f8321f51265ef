//! SEARCH and UID SEARCH: every RFC 3501 key. Flag and size keys are answered
//! from the view; header and body keys parse the message, once per message.

use super::fetch::{internal_date, load};
use super::{Completion, Session};
use crate::message::{
    Message, body_contains, decode_search_string, header_contains, text_contains,
};
use crate::protocol::command::{Date, SearchKey};
use crate::protocol::datetime::{date_of, local_offset};
use crate::protocol::response::Code;

/// A search key with its strings decoded to UTF-8 once, up front.
enum Key {
    And(Vec<Key>),
    Or(Box<Key>, Box<Key>),
    Not(Box<Key>),
    Flag(u8, bool),
    Recent(bool),
    New,
    All,
    Keyword(String, bool),
    Header(Vec<u8>, String),
    Body(String),
    Text(String),
    Internal(std::cmp::Ordering, Date, bool),
    Sent(std::cmp::Ordering, Date, bool),
    Larger(u64),
    Smaller(u64),
    Uid(crate::protocol::sequence::SequenceSet),
    Seq(crate::protocol::sequence::SequenceSet),
}

fn compile(key: &SearchKey, charset: Option<&str>) -> Result<Key, ()> {
    use SearchKey as S;
    use std::cmp::Ordering::*;
    let s = |b: &[u8]| decode_search_string(charset, b);
    Ok(match key {
        S::And(keys) => Key::And(
            keys.iter()
                .map(|k| compile(k, charset))
                .collect::<Result<_, _>>()?,
        ),
        S::Or(a, b) => Key::Or(
            Box::new(compile(a, charset)?),
            Box::new(compile(b, charset)?),
        ),
        S::Not(k) => Key::Not(Box::new(compile(k, charset)?)),
        S::All => Key::All,
        S::Answered => Key::Flag(b'R', true),
        S::Deleted => Key::Flag(b'T', true),
        S::Draft => Key::Flag(b'D', true),
        S::Flagged => Key::Flag(b'F', true),
        S::Seen => Key::Flag(b'S', true),
        S::Unanswered => Key::Flag(b'R', false),
        S::Undeleted => Key::Flag(b'T', false),
        S::Undraft => Key::Flag(b'D', false),
        S::Unflagged => Key::Flag(b'F', false),
        S::Unseen => Key::Flag(b'S', false),
        S::Recent => Key::Recent(true),
        S::Old => Key::Recent(false),
        S::New => Key::New,
        S::Keyword(k) => Key::Keyword(k.clone(), true),
        S::Unkeyword(k) => Key::Keyword(k.clone(), false),
        S::Bcc(v) => Key::Header(b"Bcc".to_vec(), s(v)?),
        S::Cc(v) => Key::Header(b"Cc".to_vec(), s(v)?),
        S::From(v) => Key::Header(b"From".to_vec(), s(v)?),
        S::To(v) => Key::Header(b"To".to_vec(), s(v)?),
        S::Subject(v) => Key::Header(b"Subject".to_vec(), s(v)?),
        S::Header(name, v) => Key::Header(name.clone(), s(v)?),
        S::Body(v) => Key::Body(s(v)?),
        S::Text(v) => Key::Text(s(v)?),
        S::Before(d) => Key::Internal(Less, *d, true),
        S::On(d) => Key::Internal(Equal, *d, true),
        S::Since(d) => Key::Internal(Less, *d, false),
        S::SentBefore(d) => Key::Sent(Less, *d, true),
        S::SentOn(d) => Key::Sent(Equal, *d, true),
        S::SentSince(d) => Key::Sent(Less, *d, false),
        S::Larger(n) => Key::Larger(*n),
        S::Smaller(n) => Key::Smaller(*n),
        S::Uid(set) => Key::Uid(set.clone()),
        S::SequenceSet(set) => Key::Seq(set.clone()),
    })
}

/// What a search needs to know of each message beyond flags and UIDs.
#[derive(Debug, Default, Clone, Copy)]
struct Needs {
    full: bool,
    header: bool,
    size: bool,
    internal: bool,
}

impl Key {
    fn needs(&self, n: &mut Needs) {
        match self {
            Key::And(v) => v.iter().for_each(|k| k.needs(n)),
            Key::Or(a, b) => {
                a.needs(n);
                b.needs(n);
            }
            Key::Not(k) => k.needs(n),
            Key::Body(_) | Key::Text(_) => n.full = true,
            Key::Header(..) => n.header = true,
            // SENT* falls back to INTERNALDATE when there is no Date: header.
            Key::Sent(..) => {
                n.header = true;
                n.internal = true;
            }
            Key::Larger(_) | Key::Smaller(_) => n.size = true,
            Key::Internal(..) => n.internal = true,
            _ => {}
        }
    }
}

/// What one message offers to the matcher.
struct Candidate<'a> {
    seq: u32,
    exists: u32,
    max_uid: u32,
    msg: &'a super::view::ViewMessage,
    internal: Option<Date>,
    size: Option<u64>,
    parsed: Option<&'a Message<'a>>,
}

fn matches(key: &Key, c: &Candidate) -> bool {
    let m = c.msg;
    match key {
        Key::And(v) => v.iter().all(|k| matches(k, c)),
        Key::Or(a, b) => matches(a, c) || matches(b, c),
        Key::Not(k) => !matches(k, c),
        Key::All => true,
        Key::Flag(l, on) => m.flags.has(*l) == *on,
        Key::Recent(on) => m.recent == *on,
        Key::New => m.recent && !m.flags.has(b'S'),
        Key::Keyword(k, on) => m.keywords.iter().any(|e| e.eq_ignore_ascii_case(k)) == *on,
        Key::Header(name, needle) => c.parsed.is_some_and(|p| header_contains(p, name, needle)),
        Key::Body(needle) => c.parsed.is_some_and(|p| body_contains(p, needle)),
        Key::Text(needle) => c.parsed.is_some_and(|p| text_contains(p, needle)),
        Key::Internal(ord, d, before_or_on) => c
            .internal
            .is_some_and(|have| compare_date(have, *ord, *d, *before_or_on)),
        Key::Sent(ord, d, before_or_on) => {
            // RFC 3501: SENT* keys use the Date: header, disregarding time
            // and zone; a message without one falls back to INTERNALDATE.
            let sent = c
                .parsed
                .and_then(|p| p.sent_date())
                .map(|(t, off)| date_of(t, off))
                .or(c.internal);
            sent.is_some_and(|have| compare_date(have, *ord, *d, *before_or_on))
        }
        Key::Larger(n) => c.size.is_some_and(|s| s > *n),
        Key::Smaller(n) => c.size.is_some_and(|s| s < *n),
        Key::Uid(set) => set.contains(m.uid, c.max_uid),
        Key::Seq(set) => set.contains(c.seq, c.exists),
    }
}

/// BEFORE: have < d; ON: have == d; SINCE: have >= d.
fn compare_date(have: Date, ord: std::cmp::Ordering, d: Date, flag: bool) -> bool {
    use std::cmp::Ordering::*;
    match (ord, flag) {
        (Less, true) => have < d,
        (Equal, _) => have == d,
        (Less, false) | (Greater, _) => have >= d,
    }
}

impl Session<'_> {
    pub(super) fn cmd_search(
        &mut self,
        uid: bool,
        charset: Option<&str>,
        criteria: &SearchKey,
    ) -> Completion {
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        let Ok(key) = compile(criteria, charset) else {
            return Completion::no_code(
                Code::BadCharset(&["US-ASCII", "UTF-8"]),
                "Unsupported charset.",
            );
        };
        let mut needs = Needs::default();
        key.needs(&mut needs);
        let exists = view.exists();
        let max_uid = view.max_uid();
        let mut hits = Vec::new();
        for i in 0..view.messages.len() {
            if view.messages[i].expunged {
                continue;
            }
            let internal = if needs.internal {
                internal_date(&view.folder, &view.messages[i]).map(|t| date_of(t, local_offset(t)))
            } else {
                None
            };
            let loaded = if needs.full || needs.header || needs.size {
                match load(view, i, needs.full, needs.size, needs.header) {
                    Ok(Some(l)) => Some(l),
                    Ok(None) => continue,
                    Err(e) => {
                        log::error!("SEARCH reading {}: {e}", view.folder.path().display());
                        continue;
                    }
                }
            } else {
                None
            };
            let data = loaded.as_ref().and_then(|l| l.data.as_deref());
            let size = loaded.as_ref().map(|l| l.size);
            let parsed = data.map(Message::parse);
            let m = &view.messages[i];
            let c = Candidate {
                seq: i as u32 + 1,
                exists,
                max_uid,
                msg: m,
                internal,
                size,
                parsed: parsed.as_ref(),
            };
            if matches(&key, &c) {
                hits.push(if uid { m.uid } else { i as u32 + 1 });
            }
        }
        view.save_cache();
        let mut line = b"SEARCH".to_vec();
        for h in hits {
            line.extend_from_slice(format!(" {h}").as_bytes());
        }
        self.pending.push(line);
        Completion::ok("SEARCH completed.")
    }
}
