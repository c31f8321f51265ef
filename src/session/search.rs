//! SEARCH and UID SEARCH: every RFC 3501 key. Each message is matched first
//! on what the view knows (flags, keywords, UIDs, sequence numbers); only a
//! message those leave undecided is read, parsed once, and matched again with
//! its content, which it decodes at most once for all the keys together
//! ([`SearchText`]).
//!
//! Also the result forms every searching command shares: ESEARCH's
//! `RETURN (MIN MAX ALL COUNT)` (RFC 4731, and ESORT's, RFC 5267) and
//! SEARCHRES's `SAVE` and `$` (RFC 5182). SORT and THREAD select their
//! messages with [`matching`].

use super::fetch::{Needs as Reads, Scratch, prepare};
use super::view::SelectedView;
use super::{Completion, Session};
use crate::maildir::InfoFlags;
use crate::message::{Message, Needle, SearchText, decode_search_string};
use crate::protocol::command::{Date, PartialRange, SearchKey, SearchReturn};
use crate::protocol::datetime::{date_of, local_offset};
use crate::protocol::encode::push_string;
use crate::protocol::response::Code;
use crate::protocol::sequence::{Ranges, SequenceSet, compact};

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
    Header(Vec<u8>, Needle),
    /// FROM, TO, CC, BCC: the field's addresses, not its raw text.
    Address(&'static [u8], Needle),
    Subject(Needle),
    Body(Needle),
    Text(Needle),
    Internal(std::cmp::Ordering, Date, bool),
    Sent(std::cmp::Ordering, Date, bool),
    Larger(u64),
    Smaller(u64),
    /// WITHIN (RFC 5032): INTERNALDATE at or after (`true`, YOUNGER) or at or before
    /// (`false`, OLDER) this Unix time, fixed when the command is compiled so every
    /// message is compared with the same instant.
    Age(i64, bool),
    /// Resolved against the UIDs and EXISTS of the view once, as merged
    /// ranges, so a set of a thousand repeated ranges costs one binary
    /// search per message, not a thousand comparisons.
    Uid(Ranges),
    Seq(Ranges),
    /// RFC 8474 EMAILID and THREADID: the id compared exactly.
    EmailId(String),
    ThreadId(String),
    /// RFC 8514 SAVEDBEFORE/SAVEDON/SAVEDSINCE, as `Internal` compares.
    Saved(std::cmp::Ordering, Date, bool),
    /// RFC 7162 MODSEQ: at least this.
    ModSeq(u64),
}

/// What `*` stands for (the highest UID and the number of messages), and
/// what `$` does (the UIDs the last SEARCH ... RETURN (SAVE) kept).
#[derive(Debug, Clone, Copy)]
struct Stars<'a> {
    max_uid: u32,
    exists: u32,
    saved: &'a [u32],
    /// The command's "now", for WITHIN.
    now: i64,
}

fn compile(key: &SearchKey, charset: Option<&str>, stars: Stars) -> Result<Key, ()> {
    use SearchKey as S;
    use std::cmp::Ordering::*;
    let s = |b: &[u8]| decode_search_string(charset, b).map(|t| Needle::new(&t));
    Ok(match key {
        S::And(keys) => Key::And(
            keys.iter()
                .map(|k| compile(k, charset, stars))
                .collect::<Result<_, _>>()?,
        ),
        S::Or(a, b) => Key::Or(
            Box::new(compile(a, charset, stars)?),
            Box::new(compile(b, charset, stars)?),
        ),
        S::Not(k) => Key::Not(Box::new(compile(k, charset, stars)?)),
        // RFC 5182 §2.1: `$` and `UID $` both name the saved messages.
        S::Uid(set) | S::SequenceSet(set) if set.is_saved() => {
            Key::Uid(SequenceSet::of_sorted(stars.saved).normalized(stars.max_uid))
        }
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
        S::Bcc(v) => Key::Address(b"Bcc", s(v)?),
        S::Cc(v) => Key::Address(b"Cc", s(v)?),
        S::From(v) => Key::Address(b"From", s(v)?),
        S::To(v) => Key::Address(b"To", s(v)?),
        S::Subject(v) => Key::Subject(s(v)?),
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
        S::Younger(n) => Key::Age(stars.now.saturating_sub_unsigned(*n), true),
        S::Older(n) => Key::Age(stars.now.saturating_sub_unsigned(*n), false),
        S::Uid(set) => Key::Uid(set.normalized(stars.max_uid)),
        S::SequenceSet(set) => Key::Seq(set.normalized(stars.exists)),
        S::EmailId(id) => Key::EmailId(id.clone()),
        S::ThreadId(id) => Key::ThreadId(id.clone()),
        S::SavedBefore(d) => Key::Saved(Less, *d, true),
        S::SavedOn(d) => Key::Saved(Equal, *d, true),
        S::SavedSince(d) => Key::Saved(Less, *d, false),
        // RFC 8514 §4.3: every message of a mailbox that keeps save dates, which every
        // folder here does (see `maildir::Folder::save_date`).
        S::SaveDateSupported => Key::All,
        S::ModSeq(n) => Key::ModSeq(*n),
    })
}

/// What a search needs to know of each message beyond flags and UIDs.
#[derive(Debug, Default, Clone, Copy)]
struct Needs {
    full: bool,
    header: bool,
    /// Every header key names a field the index keeps (see `derived`).
    kept_fields_do: bool,
    size: bool,
    internal: bool,
    /// The file's current name (EMAILID, THREADID).
    name: bool,
    /// SAVEDATE.
    saved: bool,
    /// MODSEQ (known to the view, read from its index).
    modseq: bool,
}

impl Needs {
    fn of(key: &Key) -> Needs {
        let mut n = Needs {
            kept_fields_do: true,
            ..Needs::default()
        };
        key.needs(&mut n);
        n
    }

    /// What to read of a message to match it.
    fn reads(&self) -> Reads {
        Reads {
            full: self.full,
            header: self.header && !self.kept_fields_do,
            size: self.size,
            date: self.internal,
            fields: self.header && self.kept_fields_do,
            bodystructure: false,
            preview: false,
        }
    }
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
            // Header keys are answered from the kept fields when every one names a kept
            // field: those hold each such field byte for byte (see `derived`).
            Key::Header(name, _) => {
                n.header = true;
                n.kept_fields_do &= super::derived::covers(&[name]);
            }
            Key::Address(name, _) => {
                n.header = true;
                n.kept_fields_do &= super::derived::covers(&[name]);
            }
            Key::Subject(_) => {
                n.header = true;
                n.kept_fields_do &= super::derived::covers(&[b"subject"]);
            }
            // The Date: header only: no INTERNALDATE to fall back to (see `sent_day`).
            Key::Sent(..) => {
                n.header = true;
                n.kept_fields_do &= super::derived::covers(&[b"date"]);
            }
            Key::Larger(_) | Key::Smaller(_) => n.size = true,
            Key::Internal(..) | Key::Age(..) => n.internal = true,
            Key::EmailId(_) => n.name = true,
            Key::ThreadId(_) => {
                n.name = true;
                n.header = true;
                n.kept_fields_do &=
                    super::derived::covers(&[&b"references"[..], b"in-reply-to", b"message-id"]);
            }
            Key::Saved(..) => n.saved = true,
            Key::ModSeq(_) => n.modseq = true,
            _ => {}
        }
    }
}

/// What the view knows of a message, for the matcher.
struct Known<'a> {
    uid: u32,
    /// The system flags as index flag bits, and any other letters.
    flags: (u8, Option<&'a InfoFlags>),
    recent: bool,
    keywords: &'a [String],
    /// Its MODSEQ when a key needs it, else 0.
    modseq: u64,
}

impl Known<'_> {
    fn has(&self, letter: u8) -> bool {
        let (bits, other) = self.flags;
        match crate::maildir::flag_bit(letter) {
            0 => other.is_some_and(|f| f.has(letter)),
            bit => bits & bit != 0,
        }
    }
}

/// What one message offers to the matcher.
struct Candidate<'a> {
    seq: u32,
    msg: Known<'a>,
    /// None until the message has been read: keys that need it are then
    /// undecided.
    content: Option<Content<'a>>,
}

/// What reading a message (or its file's metadata) gives the matcher.
struct Content<'a> {
    internal: Option<Date>,
    /// INTERNALDATE as a Unix time, for WITHIN.
    internal_time: Option<i64>,
    size: Option<u64>,
    text: Option<&'a SearchText<'a>>,
    /// The file's current name, when a key needs it.
    name: Option<&'a str>,
    /// SAVEDATE as a day, when a key needs it.
    saved: Option<Date>,
}

/// Some(verdict), or None when the verdict depends on content the candidate
/// does not have yet. With content, never None: the keys are then evaluated
/// in order, AND and OR stopping at the first key that decides, as before.
fn matches(key: &Key, c: &Candidate) -> Option<bool> {
    let m = &c.msg;
    let content = || c.content.as_ref();
    Some(match key {
        // Three-valued: one false key decides an AND, one true key an OR,
        // whatever the undecided ones would say.
        Key::And(v) => {
            let mut undecided = false;
            for k in v {
                match matches(k, c) {
                    Some(false) => return Some(false),
                    None => undecided = true,
                    Some(true) => {}
                }
            }
            if undecided {
                return None;
            }
            true
        }
        Key::Or(a, b) => {
            let first = matches(a, c);
            if first == Some(true) {
                return Some(true);
            }
            match matches(b, c) {
                Some(true) => true,
                Some(false) => first?,
                None => return None,
            }
        }
        Key::Not(k) => !matches(k, c)?,
        Key::All => true,
        Key::Flag(l, on) => m.has(*l) == *on,
        Key::Recent(on) => m.recent == *on,
        Key::New => m.recent && !m.has(b'S'),
        Key::Keyword(k, on) => m.keywords.iter().any(|e| e.eq_ignore_ascii_case(k)) == *on,
        Key::Header(name, needle) => content()?
            .text
            .is_some_and(|t| t.header_contains(name, needle)),
        Key::Address(name, needle) => content()?
            .text
            .is_some_and(|t| t.address_contains(name, needle)),
        Key::Subject(needle) => content()?.text.is_some_and(|t| t.subject_contains(needle)),
        Key::Body(needle) => content()?.text.is_some_and(|t| t.body_contains(needle)),
        Key::Text(needle) => content()?.text.is_some_and(|t| t.text_contains(needle)),
        Key::Internal(ord, d, before_or_on) => content()?
            .internal
            .is_some_and(|have| compare_date(have, *ord, *d, *before_or_on)),
        Key::Sent(ord, d, before_or_on) => content()?
            .text
            .is_some_and(|t| compare_date(sent_day(t.message()), *ord, *d, *before_or_on)),
        // RFC 5032: YOUNGER n is "within the last n seconds", OLDER n "more than n
        // seconds ago"; the boundary second goes to both, as Dovecot has it.
        Key::Age(at, younger) => content()?
            .internal_time
            .is_some_and(|t| if *younger { t >= *at } else { t <= *at }),
        Key::Larger(n) => content()?.size.is_some_and(|s| s > *n),
        Key::Smaller(n) => content()?.size.is_some_and(|s| s < *n),
        Key::EmailId(id) => content()?
            .name
            .is_some_and(|n| super::objectid::email_id(n) == *id),
        Key::ThreadId(id) => {
            let c = content()?;
            match (c.name, c.text) {
                (Some(n), Some(t)) => super::objectid::thread_id(n, t.message().header()) == *id,
                _ => false,
            }
        }
        Key::Saved(ord, d, before_or_on) => content()?
            .saved
            .is_some_and(|have| compare_date(have, *ord, *d, *before_or_on)),
        Key::Uid(set) => set.contains(m.uid),
        Key::Seq(set) => set.contains(c.seq),
        Key::ModSeq(n) => m.modseq >= *n,
    })
}

/// What the view knows of message `i`, with its MODSEQ `modseq` (see [`modseq_if`]).
fn known(view: &super::view::SelectedView, i: usize, modseq: u64) -> Known<'_> {
    Known {
        uid: view.uid(i),
        flags: view.flag_bits(i),
        recent: view.is_recent(i),
        keywords: view.keywords(i),
        modseq,
    }
}

/// Message `i`'s MODSEQ when the keys need it (a read of the index), else 0.
fn modseq_if(view: &mut super::view::SelectedView, i: usize, needs: Needs) -> u64 {
    if needs.modseq { view.modseq(i) } else { 0 }
}

/// The day a SENT* key compares (RFC 3501: the Date: header's, disregarding time and
/// zone). RFC 3501 says nothing of a message without a Date: header, or with one that
/// does not parse: like Dovecot (index-mail.c, "0 = not found / invalid"), such a message
/// was sent on 1 January 1970, so SENTBEFORE finds it and SENTSINCE does not. RFC 5256's
/// fall-back to INTERNALDATE is for SORT's DATE key, not for SEARCH.
fn sent_day(msg: &Message) -> Date {
    let (unix, offset) = msg.sent_date().unwrap_or((0, 0));
    date_of(unix, offset)
}

/// Reads message `i` as far as `needs` says (or takes what the index keeps)
/// and matches it with its content.
/// `None`: the message is gone (expunged by another process since the view was built),
/// or could not be read.
fn match_read(
    view: &mut super::view::SelectedView,
    i: usize,
    key: &Key,
    needs: Needs,
    scratch: &mut super::fetch::Scratch,
) -> Option<bool> {
    if view.is_expunged(i) {
        return None;
    }
    let prepared = match prepare(view, i, needs.reads(), scratch) {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(e) => {
            log::error!("SEARCH reading {}: {e}", view.folder.path().display());
            return None;
        }
    };
    let internal = if needs.internal {
        // A message without a date here is one whose file is gone.
        Some(prepared.facts.date.map(|t| date_of(t, local_offset(t)))?)
    } else {
        None
    };
    let name = if needs.name || needs.saved {
        match view.filename(i) {
            Ok(name) => Some(name),
            Err(e) => {
                log::error!("SEARCH in {}: {e}", view.folder.path().display());
                return None;
            }
        }
    } else {
        None
    };
    let saved = match (&name, needs.saved) {
        (Some(name), true) => match view.folder.save_date(name) {
            Ok(Some(t)) => Some(date_of(t, local_offset(t))),
            // Gone.
            Ok(None) => return None,
            Err(e) => {
                log::error!("SEARCH in {}: {e}", view.folder.path().display());
                return None;
            }
        },
        _ => None,
    };
    let kept = if prepared.parsed.is_none() {
        prepared.fields_message()
    } else {
        None
    };
    let text = prepared
        .parsed
        .as_ref()
        .or(kept.as_ref())
        .map(SearchText::new);
    let modseq = modseq_if(view, i, needs);
    let c = Candidate {
        seq: i as u32 + 1,
        msg: known(view, i, modseq),
        content: Some(Content {
            internal,
            internal_time: prepared.facts.date.filter(|_| needs.internal),
            size: prepared.facts.size.filter(|_| needs.size),
            text: text.as_ref(),
            name: name.as_deref(),
            saved,
        }),
    };
    matches(key, &c)
}

/// What [`match_message`] knows of the message besides its text.
#[doc(hidden)]
pub struct MessageFacts<'a> {
    pub uid: u32,
    pub seq: u32,
    /// Maildir flag letters (`S`, `F`, ...).
    pub flags: &'a [u8],
    pub keywords: &'a [String],
    pub recent: bool,
    /// INTERNALDATE as a Unix time.
    pub internal_time: i64,
    /// The file's name (EMAILID, THREADID, SAVEDATE).
    pub name: &'a str,
    pub saved: Date,
    /// What `*` stands for, and `$`.
    pub max_uid: u32,
    pub exists: u32,
    pub saved_uids: &'a [u32],
    /// The command's "now", for WITHIN.
    pub now: i64,
}

/// Matches `criteria` against the one message `raw` in the two steps `matching` takes: first
/// on what the view knows, then with the message's content. Returns both verdicts (the first
/// `None` when the content was needed), or `Err` for a charset or string SEARCH refuses.
/// For the fuzz target `fuzz/fuzz_targets/search.rs`, which has no maildir to select.
#[doc(hidden)]
pub fn match_message(
    raw: &[u8],
    charset: Option<&str>,
    criteria: &SearchKey,
    facts: &MessageFacts,
) -> Result<(Option<bool>, Option<bool>), ()> {
    let stars = Stars {
        max_uid: facts.max_uid,
        exists: facts.exists,
        saved: facts.saved_uids,
        now: facts.now,
    };
    decode_search_string(charset, b"")?;
    let key = compile(criteria, charset, stars)?;
    let info = InfoFlags(facts.flags.to_vec());
    let known = || Known {
        uid: facts.uid,
        flags: (crate::maildir::flag_bits(&info), Some(&info)),
        recent: facts.recent,
        keywords: facts.keywords,
        // No folder, so no MODSEQ: MODSEQ n matches for n = 0 only.
        modseq: 0,
    };
    let first = matches(
        &key,
        &Candidate {
            seq: facts.seq,
            msg: known(),
            content: None,
        },
    );
    let parsed = Message::parse(raw);
    let text = SearchText::new(&parsed);
    let offset = local_offset(facts.internal_time);
    let full = matches(
        &key,
        &Candidate {
            seq: facts.seq,
            msg: known(),
            content: Some(Content {
                internal: Some(date_of(facts.internal_time, offset)),
                internal_time: Some(facts.internal_time),
                size: Some(raw.len() as u64),
                text: Some(&text),
                name: Some(facts.name),
                saved: Some(facts.saved),
            }),
        },
    );
    Ok((first, full))
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

/// What a SEARCH found.
pub(super) struct Matches {
    /// Indexes in the view, ascending.
    pub hits: Vec<usize>,
    /// A message the keys needed the content of was gone (expunged by another process and
    /// not yet reported): it did not match, and the answer says so with EXPUNGEISSUED.
    pub expunge_issued: bool,
}

/// The messages that match `criteria`, `$` being `saved`; the NO to send for an unknown
/// charset. A message another process expunged, not yet reported to the client, is still
/// there for keys on what the view knows (flags, UID, sequence number) and matches no key
/// that needs its content, whatever the index still knows of it, as Dovecot answers (RFC
/// 2180 §4.1.2 leaves the choice; see mdimapd(8), EXPUNGED MESSAGES).
pub(super) fn matching(
    view: &mut SelectedView,
    scratch: &mut Scratch,
    charset: Option<&str>,
    criteria: &SearchKey,
    saved: &[u32],
) -> Result<Matches, Completion> {
    let all = 0..view.len();
    matching_among(view, scratch, charset, criteria, saved, all)
}

/// [`matching`] over the messages `among` names (view indexes, ascending) alone: an
/// updating search (`context`) looks again only at what changed.
pub(super) fn matching_among(
    view: &mut SelectedView,
    scratch: &mut Scratch,
    charset: Option<&str>,
    criteria: &SearchKey,
    saved: &[u32],
    among: impl Iterator<Item = usize>,
) -> Result<Matches, Completion> {
    let stars = Stars {
        max_uid: view.max_uid(),
        exists: view.exists(),
        saved,
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    };
    // RFC 3501 §6.4.4: an unknown charset is refused whatever the keys,
    // not only when a string has to be decoded with it.
    let known_charset = decode_search_string(charset, b"").is_ok();
    let (true, Ok(key)) = (known_charset, compile(criteria, charset, stars)) else {
        return Err(Completion::no_code(
            Code::BadCharset(&["US-ASCII", "UTF-8"]),
            "Unsupported charset.",
        ));
    };
    let needs = Needs::of(&key);
    let mut hits = Vec::new();
    let mut expunge_issued = false;
    for i in among {
        let modseq = modseq_if(view, i, needs);
        let without_content = Candidate {
            seq: i as u32 + 1,
            msg: known(view, i, modseq),
            content: None,
        };
        let hit = match matches(&key, &without_content) {
            Some(hit) => hit,
            None => match match_read(view, i, &key, needs, scratch) {
                Some(hit) => hit,
                // Gone or unreadable: not a match.
                None => {
                    expunge_issued = true;
                    continue;
                }
            },
        };
        if hit {
            hits.push(i);
        }
    }
    scratch.trim();
    Ok(Matches {
        hits,
        expunge_issued,
    })
}

/// True when the criteria have a MODSEQ key anywhere (a CONDSTORE-enabling SEARCH).
pub(super) fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::Not(k) => uses_modseq(k),
        _ => false,
    }
}

/// The tagged OK of a SEARCH, SORT or THREAD: with EXPUNGEISSUED when a message the keys
/// needed was gone (see `matching`).
pub(super) fn completed(verb: &str, expunge_issued: bool) -> Completion {
    if expunge_issued {
        Completion::ok_code(Code::ExpungeIssued, format!("{verb} completed."))
    } else {
        Completion::ok(format!("{verb} completed."))
    }
}

/// What SAVE keeps of a result (RFC 5182 §2.4): with MIN or MAX and
/// neither ALL nor COUNT, only those; otherwise all of it. `ids` are in the
/// result's order (ascending for SEARCH, sorted for SORT) and `uids` the
/// same messages' UIDs.
pub(super) fn saved_uids(returns: &SearchReturn, uids: &[u32]) -> Vec<u32> {
    let mut kept: Vec<u32> = if (returns.min || returns.max) && !returns.all && !returns.count {
        let mut v = Vec::new();
        if returns.min {
            v.extend(uids.first());
        }
        if returns.max {
            v.extend(uids.last());
        }
        v
    } else {
        uids.to_vec()
    };
    kept.sort_unstable();
    kept.dedup();
    kept
}

/// The `ESEARCH` response (RFC 4731 §3.1; RFC 5267 §3.2 for SORT, whose MIN
/// and MAX are the first and last in sort order and whose ALL keeps that
/// order), or None when the client asked only to SAVE (RFC 5182 §2.1).
pub(super) fn esearch_response(
    tag: &str,
    uid: bool,
    returns: &SearchReturn,
    ids: &[u32],
) -> Option<Vec<u8>> {
    let only_save = SearchReturn {
        save: true,
        ..SearchReturn::default()
    };
    if *returns == only_save {
        return None;
    }
    let mut line = b"ESEARCH (TAG ".to_vec();
    push_string(&mut line, tag.as_bytes());
    line.push(b')');
    if uid {
        line.extend_from_slice(b" UID");
    }
    if let (true, Some(min)) = (returns.min, ids.first()) {
        line.extend_from_slice(format!(" MIN {min}").as_bytes());
    }
    if let (true, Some(max)) = (returns.max, ids.last()) {
        line.extend_from_slice(format!(" MAX {max}").as_bytes());
    }
    if returns.all && !ids.is_empty() {
        line.extend_from_slice(b" ALL ");
        line.extend_from_slice(compact(ids).as_bytes());
    }
    if returns.count {
        line.extend_from_slice(format!(" COUNT {}", ids.len()).as_bytes());
    }
    if let Some(range) = returns.partial {
        line.extend_from_slice(b" PARTIAL (");
        if range.from_end {
            line.extend_from_slice(format!("-{}:-{} ", range.low, range.high).as_bytes());
        } else {
            line.extend_from_slice(format!("{}:{} ", range.low, range.high).as_bytes());
        }
        match partial_slice(ids, range) {
            [] => line.extend_from_slice(b"NIL"),
            slice => line.extend_from_slice(compact(slice).as_bytes()),
        }
        line.push(b')');
    }
    Some(line)
}

/// The part of a result (in its order) a PARTIAL range names (RFC 5267 §4.4; RFC 9394
/// §3.1 for ranges counted from the end): empty when the result is shorter than where it
/// starts.
pub(super) fn partial_slice(ids: &[u32], range: PartialRange) -> &[u32] {
    let (low, high) = (range.low as usize, range.high as usize);
    if low > ids.len() {
        return &[];
    }
    if range.from_end {
        // -1 is the last, -high the first of the slice.
        &ids[ids.len().saturating_sub(high)..=ids.len() - low]
    } else {
        &ids[low - 1..high.min(ids.len())]
    }
}

impl Session<'_> {
    /// `matching` in the selected folder, for SEARCH, SORT and THREAD. When it refuses the
    /// command, a command that was to SAVE its result leaves `$` empty (RFC 5182 §2.1).
    pub(super) fn selected_matches(
        &mut self,
        charset: Option<&str>,
        criteria: &SearchKey,
        saves: bool,
    ) -> Result<Matches, Completion> {
        let Some(view) = self.selected.as_mut() else {
            return Err(Completion::bad("No mailbox selected."));
        };
        let found = matching(
            view,
            &mut self.scratch,
            charset,
            criteria,
            &self.saved_result,
        );
        if found.is_err() && saves {
            self.saved_result.clear();
        }
        found
    }

    pub(super) fn cmd_search(
        &mut self,
        tag: &str,
        uid: bool,
        returns: Option<SearchReturn>,
        charset: Option<&str>,
        criteria: &SearchKey,
    ) -> Completion {
        let saves = returns.is_some_and(|r| r.save);
        let Matches {
            hits,
            expunge_issued,
        } = match self.selected_matches(charset, criteria, saves) {
            Ok(m) => m,
            Err(refusal) => return refusal,
        };
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        let uids: Vec<u32> = hits.iter().map(|&i| view.uid(i)).collect();
        let ids: Vec<u32> = if uid {
            uids.clone()
        } else {
            hits.iter().map(|&i| i as u32 + 1).collect()
        };
        // RFC 7162 §3.1.5: a SEARCH with MODSEQ answers the highest MODSEQ of what it
        // found; an ESEARCH of what it returns (RFC 4731 §3.2: only the MIN and the MAX
        // message when those are all it asked for).
        let highest = if uses_modseq(criteria) {
            let returned: Vec<usize> = match returns {
                Some(r) if !r.all && !r.count => r
                    .min
                    .then(|| hits.first())
                    .flatten()
                    .into_iter()
                    .chain(r.max.then(|| hits.last()).flatten())
                    .copied()
                    .collect(),
                _ => hits.clone(),
            };
            returned.iter().map(|&i| view.modseq(i)).max()
        } else {
            None
        };
        // RFC 9051 §6.4.4: an IMAP4rev2 SEARCH without RETURN is RETURN (ALL).
        let returns = returns.or(self.rev2.then(|| SearchReturn {
            all: true,
            ..SearchReturn::default()
        }));
        match returns {
            None => {
                let mut line = b"SEARCH".to_vec();
                for h in ids {
                    line.extend_from_slice(format!(" {h}").as_bytes());
                }
                if let Some(m) = highest {
                    line.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
                }
                self.pending.push(line);
            }
            Some(returns) => {
                if returns.save {
                    self.saved_result = saved_uids(&returns, &uids);
                }
                let mut line = esearch_response(tag, uid, &returns, &ids);
                if let (Some(line), Some(m)) = (line.as_mut(), highest) {
                    line.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
                }
                self.pending.extend(line);
                if returns.update {
                    self.keep_updated(tag, uid, charset, criteria, None, uids);
                }
            }
        }
        completed("SEARCH", expunge_issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::decode_counts::{FIELDS, PARTS};
    use crate::message::fixtures::NESTED;
    use crate::protocol::command::SearchKey as S;

    fn view_message(flags: &[u8]) -> Known<'static> {
        Known {
            uid: 1,
            flags: (crate::maildir::flag_bits(&InfoFlags(flags.to_vec())), None),
            recent: false,
            keywords: &[],
            modseq: 0,
        }
    }

    /// Matches `key` against NESTED with `flags` as the session does (first
    /// without content, then with it when undecided); returns the verdict,
    /// whether the message had to be read, and how many text parts and header
    /// fields were decoded.
    fn search_nested(key: &SearchKey, flags: &[u8]) -> (bool, bool, usize, usize) {
        search_in(NESTED, None, key, flags)
    }

    /// [`search_nested`] on the message `raw`, received on `internal`.
    fn search_in(
        raw: &[u8],
        internal: Option<Date>,
        key: &SearchKey,
        flags: &[u8],
    ) -> (bool, bool, usize, usize) {
        let stars = Stars {
            max_uid: 1,
            exists: 1,
            saved: &[],
            now: 0,
        };
        let key = compile(key, None, stars).expect("charset");
        let msg = view_message(flags);
        PARTS.with(|c| c.set(0));
        FIELDS.with(|c| c.set(0));
        let mut c = Candidate {
            seq: 1,
            msg,
            content: None,
        };
        let first = matches(&key, &c);
        let parsed = Message::parse(raw);
        let text = SearchText::new(&parsed);
        c.content = Some(Content {
            internal,
            internal_time: None,
            size: Some(raw.len() as u64),
            text: Some(&text),
            name: None,
            saved: None,
        });
        let hit = first.or_else(|| matches(&key, &c)).expect("decided");
        let counts = (PARTS.with(|c| c.get()), FIELDS.with(|c| c.get()));
        (hit, first.is_none(), counts.0, counts.1)
    }

    /// NESTED has four text parts (plain, base64 plain, and plain and QP html
    /// in the attached message), four top-level header fields, and 24 fields
    /// in all its header blocks (parts' and the attached message's too).
    const TEXT_PARTS: usize = 4;
    const FIELDS_IN_HEADER: usize = 4;
    const FIELDS_IN_ALL_HEADERS: usize = 24;

    #[test]
    fn esearch_responses_rfc4731_and_rfc5267() {
        let r = |min, max, all, count, save| SearchReturn {
            min,
            max,
            all,
            count,
            save,
            ..SearchReturn::default()
        };
        let line = |uid, ret, ids: &[u32]| {
            esearch_response("A282", uid, &ret, ids).map(|l| String::from_utf8(l).unwrap())
        };
        // RFC 4731 §4's examples.
        assert_eq!(
            line(false, r(true, false, false, true, false), &[2, 10, 11]).as_deref(),
            Some("ESEARCH (TAG \"A282\") MIN 2 COUNT 3")
        );
        assert_eq!(
            line(false, r(false, false, true, false, false), &[2, 10, 11]).as_deref(),
            Some("ESEARCH (TAG \"A282\") ALL 2,10:11")
        );
        // Nothing found: no MIN, MAX or ALL, but COUNT 0.
        assert_eq!(
            line(true, r(true, true, true, true, false), &[]).as_deref(),
            Some("ESEARCH (TAG \"A282\") UID COUNT 0")
        );
        // ESORT: MIN and MAX are the ends of the sort order, ALL keeps it.
        assert_eq!(
            line(false, r(true, true, true, false, false), &[5, 3, 4, 2, 1]).as_deref(),
            Some("ESEARCH (TAG \"A282\") MIN 5 MAX 1 ALL 5,3:4,2,1")
        );
        // RFC 5182: SAVE alone answers nothing.
        assert_eq!(line(false, r(false, false, false, false, true), &[1]), None);
        assert!(line(false, r(false, false, false, true, true), &[1]).is_some());
    }

    #[test]
    fn partial_results_rfc5267_and_rfc9394() {
        let partial = |low, high, from_end| SearchReturn {
            partial: Some(PartialRange {
                low,
                high,
                from_end,
            }),
            ..SearchReturn::default()
        };
        let line = |ret, ids: &[u32]| {
            String::from_utf8(esearch_response("t", false, &ret, ids).expect("a line"))
                .expect("ASCII")
        };
        let five = [1, 2, 3, 4, 5];
        // What imaptest's search-partial and sort-partial expect of five messages.
        assert_eq!(
            line(partial(1, 1, false), &five),
            "ESEARCH (TAG \"t\") PARTIAL (1:1 1)"
        );
        assert_eq!(
            line(partial(2, 4, false), &five),
            "ESEARCH (TAG \"t\") PARTIAL (2:4 2:4)"
        );
        assert_eq!(
            line(partial(1, 6, false), &five),
            "ESEARCH (TAG \"t\") PARTIAL (1:6 1:5)"
        );
        assert_eq!(
            line(partial(6, 6, false), &five),
            "ESEARCH (TAG \"t\") PARTIAL (6:6 NIL)"
        );
        assert_eq!(
            line(partial(2, 4, false), &[1, 2, 4, 5]),
            "ESEARCH (TAG \"t\") PARTIAL (2:4 2,4:5)"
        );
        // A sorted result keeps its order.
        assert_eq!(
            line(partial(2, 4, false), &[5, 3, 4, 2, 1]),
            "ESEARCH (TAG \"t\") PARTIAL (2:4 3:4,2)"
        );
        // RFC 9394: counted from the end, -1 the last.
        assert_eq!(
            partial_slice(
                &five,
                PartialRange {
                    low: 1,
                    high: 2,
                    from_end: true
                }
            ),
            [4, 5]
        );
        assert_eq!(
            partial_slice(
                &five,
                PartialRange {
                    low: 3,
                    high: 9,
                    from_end: true
                }
            ),
            [1, 2, 3]
        );
        assert_eq!(
            line(partial(6, 9, true), &five),
            "ESEARCH (TAG \"t\") PARTIAL (-6:-9 NIL)"
        );
    }

    #[test]
    fn saved_results_rfc5182() {
        let r = |min, max, all, count| SearchReturn {
            min,
            max,
            all,
            count,
            save: true,
            ..SearchReturn::default()
        };
        let sorted = [9, 4, 7];
        assert_eq!(
            saved_uids(&r(false, false, false, false), &sorted),
            [4, 7, 9]
        );
        assert_eq!(saved_uids(&r(true, false, false, false), &sorted), [9]);
        assert_eq!(saved_uids(&r(true, true, false, false), &sorted), [7, 9]);
        assert_eq!(saved_uids(&r(true, true, false, true), &sorted), [4, 7, 9]);
        assert_eq!(saved_uids(&r(false, true, true, false), &sorted), [4, 7, 9]);
        assert_eq!(
            saved_uids(&r(true, true, false, false), &[]),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn many_body_and_text_keys_decode_each_part_once() {
        let keys = (0..200)
            .map(|i| {
                if i % 2 == 0 {
                    S::Body("CAFÉ au".as_bytes().to_vec())
                } else {
                    S::Text(b"hello world".to_vec())
                }
            })
            .collect();
        let (hit, _, parts, fields) = search_nested(&S::And(keys), b"");
        assert!(hit);
        assert_eq!((parts, fields), (TEXT_PARTS, FIELDS_IN_HEADER));

        // Keys that all fail, so that every one is evaluated.
        let mut key = S::Subject(b"absent subject".to_vec());
        for i in 0..200 {
            let next = match i % 3 {
                0 => S::Body(format!("absent {i}").into_bytes()),
                1 => S::Text(format!("absent {i}").into_bytes()),
                _ => S::From(format!("absent {i}").into_bytes()),
            };
            key = S::Or(Box::new(key), Box::new(next));
        }
        let (hit, _, parts, fields) = search_nested(&key, b"");
        assert!(!hit);
        // TEXT decodes every field once; SUBJECT and FROM decode their
        // field once more, in their own form.
        assert_eq!((parts, fields), (TEXT_PARTS, FIELDS_IN_ALL_HEADERS + 2));
    }

    #[test]
    fn content_is_read_and_decoded_only_when_needed() {
        let seen_and_hello = S::And(vec![S::Seen, S::Body(b"hello".to_vec())]);
        // A flag key decides: the message is not even read.
        assert_eq!(search_nested(&seen_and_hello, b""), (false, false, 0, 0));
        // "hello" is in the first part: the others stay encoded.
        assert_eq!(search_nested(&seen_and_hello, b"S"), (true, true, 1, 0));
        let or = S::Or(Box::new(S::Body(b"x".to_vec())), Box::new(S::Seen));
        assert_eq!(search_nested(&or, b"S"), (true, false, 0, 0));
        let not = S::Not(Box::new(S::And(vec![S::Text(b"x".to_vec()), S::Seen])));
        assert_eq!(search_nested(&not, b""), (true, false, 0, 0));
        // A header key decodes only the fields of that name, and a needle
        // without blanks is matched on an ASCII field's raw bytes, undecoded.
        let subject = S::And(vec![S::Unseen, S::Subject(b"TEST".to_vec())]);
        assert_eq!(search_nested(&subject, b""), (true, true, 0, 0));
        let subject = S::And(vec![S::Unseen, S::Subject(b"te st".to_vec())]);
        assert_eq!(search_nested(&subject, b""), (false, true, 0, 1));
    }

    #[test]
    fn undecided_keys_wait_for_content() {
        for key in [
            S::Body(b"hello".to_vec()),
            S::Or(Box::new(S::Unseen), Box::new(S::Larger(1))),
            S::And(vec![S::Seen, S::Smaller(1 << 20)]),
            S::Not(Box::new(S::Header(b"x-none".to_vec(), vec![]))),
        ] {
            let (hit, read, ..) = search_nested(&key, b"S");
            assert!(hit && read, "{key:?}");
        }
    }

    #[test]
    fn header_keys_on_kept_fields_read_no_header() {
        let stars = Stars {
            max_uid: 1,
            exists: 1,
            saved: &[],
            now: 0,
        };
        let reads = |key: SearchKey| {
            let r = Needs::of(&compile(&key, None, stars).expect("charset")).reads();
            (r.fields, r.header, r.full)
        };
        let day = Date {
            year: 2024,
            month: 1,
            day: 1,
        };
        // FROM/TO/CC/BCC, SUBJECT, SENT* and HEADER of a kept field: from the index.
        for key in [
            S::From(b"a".to_vec()),
            S::To(b"a".to_vec()),
            S::Cc(b"a".to_vec()),
            S::Bcc(b"a".to_vec()),
            S::Subject(b"a".to_vec()),
            S::SentSince(day),
            S::Header(b"message-id".to_vec(), b"a".to_vec()),
        ] {
            assert_eq!(reads(key.clone()), (true, false, false), "{key:?}");
        }
        // A field the index does not keep: the header, for every key of the search.
        let other = S::Header(b"x-other".to_vec(), b"a".to_vec());
        assert_eq!(reads(other.clone()), (false, true, false));
        assert_eq!(
            reads(S::Or(Box::new(S::From(b"a".to_vec())), Box::new(other))),
            (false, true, false)
        );
        assert!(reads(S::Text(b"a".to_vec())).2);
    }

    #[test]
    fn a_message_without_a_date_it_can_read_was_sent_on_1_january_1970() {
        let date = |year, month, day| Date { year, month, day };
        let received = Some(date(2024, 6, 1));
        let sent = |raw: &[u8], key: SearchKey| search_in(raw, received, &key, b"").0;
        for raw in [
            &b"Subject: no Date field\r\n\r\nbody\r\n"[..],
            b"Date:\r\nSubject: an empty Date field\r\n\r\nbody\r\n",
            b"Date: soon\r\nSubject: a Date that is no date\r\n\r\nbody\r\n",
        ] {
            assert_eq!(sent_day(&Message::parse(raw)), date(1970, 1, 1));
            // Not the INTERNALDATE (2024): Dovecot 2.3 answers so.
            assert!(!sent(raw, S::SentSince(date(2024, 1, 1))));
            assert!(sent(raw, S::SentBefore(date(2010, 1, 1))));
            assert!(sent(raw, S::SentOn(date(1970, 1, 1))));
        }
        // A Date: that parses is the sender's day, in the sender's zone.
        let raw = b"Date: Mon, 3 Feb 2025 23:30:00 -0500\r\n\r\nbody\r\n";
        assert_eq!(sent_day(&Message::parse(raw)), date(2025, 2, 3));
        assert!(sent(raw, S::SentSince(date(2024, 1, 1))));
        assert!(!sent(raw, S::SentBefore(date(2010, 1, 1))));
    }
}
