//! The selected mailbox as this client knows it: sequence numbers ⇄ UIDs,
//! flags, and the changes other processes made that the client has not been
//! told about yet.
//!
//! This is the one place that decides when untagged EXISTS, EXPUNGE and FETCH
//! responses may be sent (RFC 3501 §7.4.1, §5.5): a message expunged by someone
//! else keeps its sequence number until a command that allows EXPUNGE
//! responses runs, and EXISTS never shrinks except through reported EXPUNGEs.
//!
//! A folder is opened from its index (`maildir::Index`) when the index proves
//! the folder unchanged since it was written, without listing cur/; otherwise
//! it is scanned and what the index knew of each message (by UID and base
//! name) is kept. The view holds twelve bytes per message (UID, flags, where
//! its name and facts are) plus its keywords; names, sizes, dates and derived
//! data are looked up in the index file when needed (see `catalog`). What the
//! session learns is written to a new index when enough of it has gathered and
//! when the mailbox is closed.
//!
//! Whether the folder changed is told from its `ChangeStamp` (directory and file
//! modification times), which costs a few `stat`s where a rescan costs the
//! folder. A stamp cannot show a change made within the same clock tick as the
//! change before it, so a stamp taken close to its times is not settled, and
//! the next command rescans. When this session itself changes the selected
//! folder (flags by STORE, APPEND, COPY or MOVE into it, MOVE out of it), the
//! view takes the change in as it makes it (or as the store reports it) and
//! adopts the stamp taken right after, without rescanning: a stamp was also
//! taken just before, and when that equals this view's, nothing changed
//! meanwhile that timestamps show. What they cannot show (another process's
//! flag change or expunge in the same tick as the view's last look or as this
//! session's own change, or in the moments the change took) is left to the next
//! NOOP, CHECK or IDLE, which rescan regardless until a rescan has confirmed the
//! view (`unverified`); any later change that moves a timestamp rescans at the
//! next command, as before. So a burst of APPENDs costs no rescan at all, and
//! neither does the command after. An index written meanwhile is marked
//! unsettled, so the next session scans once.

use crate::maildir::acl::right;
use crate::maildir::fast::{FastMap, FastSet};

use crate::maildir::{
    ChangeStamp, Delivery, Facts, Folder, Index, IndexEntry, IndexHeader, IndexWriter, InfoFlags,
    MessageEntry, Rights, ScanResult, StoreError, flag_bit, flag_bits, flags_of_bits, letter_bits,
    regular_flag_bits, regular_name,
};

use super::catalog::{Catalog, EXTRA};
use super::context::UpdatingSearches;
use super::flags::write_flag_list;
use crate::protocol::response::Completion;
use crate::protocol::sequence::SequenceSet;

/// How a read-only view names a message still in new/ (see `Folder::scan_read_only`).
const NEW_PREFIX: &str = "../new/";

/// Facts or derived data learnt, or messages kept outside the index, that make writing a
/// new index worthwhile before the mailbox is closed: a client walking a large folder must
/// not pay for a rewrite per message, nor hold all it learns in memory. At least this
/// many, and at least the folder's size over `SAVE_FRACTION`: a rewrite costs the whole
/// folder, so it must come at most once per that many messages learnt or delivered for
/// the cost per message (of a client fetching a large folder a hundred messages at a
/// time, or of APPENDs into it) to stay the same at any folder size.
const SAVE_BATCH: usize = 1000;
const SAVE_FRACTION: usize = 16;

/// One message as the view keeps it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    uid: u32,
    /// Where its name, facts and derived data are (see `catalog`).
    rec: u32,
    /// The system flags the client was told, as index flag bits.
    flags: u8,
    state: u8,
}

/// Given `\Recent` by this session.
const RECENT: u8 = 1;
/// Gone from disk but not yet reported with EXPUNGE.
const EXPUNGED: u8 = 2;
/// Its file name is not `<base>:2,<flags>`: see `odd_names`.
const ODD_NAME: u8 = 4;
/// Its flags have letters besides the five system flags: see `other_letters`.
const OTHER_LETTERS: u8 = 8;

/// When a refresh happens, which untagged responses the command permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// NOOP, CHECK, IDLE, UID commands, EXPUNGE, …: everything may be sent.
    All,
    /// FETCH, STORE, SEARCH by sequence number: no EXPUNGE (RFC 3501 §7.4.1).
    NoExpunge,
}

pub struct SelectedView {
    pub folder: Folder,
    pub read_only: bool,
    pub uidvalidity: u32,
    pub uidnext: u32,
    slots: Vec<Slot>,
    /// Some slot is marked EXPUNGED and not yet reported: without one,
    /// `report_expunges`, which runs after every command, need not look at
    /// every slot of a large mailbox.
    expunges_pending: bool,
    /// Keywords of the messages that have any, by UID.
    keywords: FastMap<u32, Vec<String>>,
    /// The file names that are not `<base>:2,<the flags the client was told>` (other
    /// letters, no `:2,`, renamed by someone else since, in new/), by UID.
    odd_names: FastMap<u32, Box<str>>,
    /// The flags the client was told, where they have letters besides the system flags.
    other_letters: FastMap<u32, InfoFlags>,
    /// Keywords named in the last FLAGS response; grows as new ones appear.
    pub known_keywords: Vec<String>,
    dir_stamp: Option<DirStamp>,
    /// The view took in this session's own changes without a rescan since the
    /// last one (see the module comment): NOOP, CHECK and IDLE rescan regardless.
    unverified: bool,
    /// The folder is on a network filesystem, where attribute caching can
    /// hide a change from the timestamps: NOOP, CHECK and IDLE always rescan.
    pub network_fs: bool,
    /// The folder's UIDVALIDITY changed under this session (deleted and
    /// recreated, or its UID database lost): the client's UIDs are void and
    /// the session must end.
    pub invalidated: bool,
    /// Names, facts and derived data of the messages.
    catalog: Catalog,
    /// The index no longer says what the view knows (messages, names, stamp).
    index_stale: bool,
    /// The user's rights here (ACL), as last looked up; every right until SELECT sets them.
    pub rights: Rights,
    /// UIDs this session has COPYed elsewhere (Courier's `copiedflag`): the magic trash
    /// removes them outright when they are expunged.
    pub copied: FastSet<u32>,
    /// MODSEQs (RFC 7162) that differ from what the index records: of messages changed or
    /// arrived since it was written, by UID. A message in neither has `base_modseq`.
    modseqs: FastMap<u32, u64>,
    /// The MODSEQ of the messages the index does not list and that have none in `modseqs`
    /// (the folder's first scan without a usable index).
    base_modseq: u64,
    /// HIGHESTMODSEQ: at least every message's MODSEQ, moved on by expunges too.
    highest_modseq: u64,
    /// The client enabled CONDSTORE: unsolicited FETCH responses carry MODSEQ (RFC 7162
    /// §3.2).
    pub condstore: bool,
    /// The client enabled QRESYNC: expunges are reported as `VANISHED` with UIDs, not as
    /// `EXPUNGE` (RFC 7162 §3.2.10).
    pub qresync: bool,
    /// The client enabled IMAP4rev2: no `\Recent` in flag lists, no RECENT responses
    /// (RFC 9051 Appendix E).
    pub rev2: bool,
    /// The searches the client asked to have kept current (RFC 5267), which end with the
    /// view.
    pub updating: UpdatingSearches,
}

fn store_io(folder: &Folder, e: std::io::Error) -> StoreError {
    StoreError::io(&folder.path().join("mdimapindex"), e)
}

/// Letters of `flags` besides the system flags.
fn has_other_letters(flags: &InfoFlags) -> bool {
    flags.0.iter().any(|l| !b"DFRST".contains(l))
}

impl SelectedView {
    /// Opens the folder: from its index when that describes it, else by a scan. A read-write
    /// scan moves `new/` into `cur/` and so gives `\Recent` to this session; a read-only one
    /// touches nothing.
    pub fn open(folder: Folder, read_only: bool) -> Result<SelectedView, StoreError> {
        let network_fs = folder.on_network_fs();
        let index = Index::open(&folder);
        let mut view = SelectedView {
            folder,
            read_only,
            uidvalidity: 0,
            uidnext: 0,
            slots: Vec::new(),
            expunges_pending: false,
            keywords: FastMap::default(),
            odd_names: FastMap::default(),
            other_letters: FastMap::default(),
            known_keywords: Vec::new(),
            dir_stamp: None,
            unverified: false,
            network_fs,
            invalidated: false,
            catalog: Catalog::default(),
            index_stale: true,
            rights: Rights::all(),
            copied: FastSet::default(),
            modseqs: FastMap::default(),
            base_modseq: 0,
            highest_modseq: 0,
            condstore: false,
            qresync: false,
            rev2: false,
            updating: UpdatingSearches::default(),
        };
        let index = match index {
            Some(mut index) if index.describes(&view.folder) => match view.take_index(&mut index) {
                Ok(()) => {
                    view.catalog = Catalog::new(Some(index));
                    view.mark_recent_without_scan()?;
                    None
                }
                Err(e) => {
                    log::warn!(
                        "{}: reading the index: {e}; scanning",
                        view.folder.path().display()
                    );
                    view.clear();
                    Some(index)
                }
            },
            other => other,
        };
        if view.dir_stamp.is_none() {
            let scan = if read_only {
                view.folder.scan_read_only()?
            } else {
                view.folder.scan()?
            };
            view.take_scan(scan, index);
        }
        view.known_keywords = view.all_keywords();
        Ok(view)
    }

    fn clear(&mut self) {
        self.slots = Vec::new();
        self.expunges_pending = false;
        self.keywords = FastMap::default();
        self.odd_names = FastMap::default();
        self.other_letters = FastMap::default();
        self.dir_stamp = None;
        self.modseqs = FastMap::default();
    }

    /// Builds the view from an index that describes the folder (which the caller then
    /// gives the catalog).
    fn take_index(&mut self, index: &mut Index) -> std::io::Result<()> {
        let n = index.len();
        self.slots.reserve_exact(n as usize);
        for rec in 0..n {
            let r = index.record(rec)?;
            if self.slots.last().is_some_and(|s| s.uid >= r.uid) {
                return Err(std::io::Error::other("UIDs out of order"));
            }
            self.slots.push(Slot {
                uid: r.uid,
                rec,
                flags: r.flag_bits(),
                state: 0,
            });
            if r.odd_name() {
                let name = index.name(&r)?.to_string();
                let i = self.slots.len() - 1;
                self.set_state(i, &name, Some(&InfoFlags::from_filename(&name)));
            }
            if r.has_keywords() {
                self.keywords.insert(r.uid, index.keywords(&r)?);
            }
        }
        let header = index.header().clone();
        self.uidvalidity = header.uidvalidity;
        self.uidnext = header.uidnext;
        self.highest_modseq = header.highest_modseq;
        self.base_modseq = header.highest_modseq;
        self.dir_stamp = Some(DirStamp {
            stamp: header.stamp,
            settled: true,
        });
        self.index_stale = false;
        Ok(())
    }

    /// Gives `\Recent` to the messages of a view opened from the index that nobody was told
    /// of yet, claiming them for this session when it is read-write, as a scan would have
    /// (an EXAMINE, which claims nothing, may have written the index since they came).
    fn mark_recent_without_scan(&mut self) -> Result<(), StoreError> {
        let from =
            self.folder
                .recent_without_scan(self.uidvalidity, self.uidnext, !self.read_only)?;
        let first = self.slots.partition_point(|s| s.uid < from);
        for s in &mut self.slots[first..] {
            s.state |= RECENT;
        }
        Ok(())
    }

    /// Builds the view from a scan, keeping what `index` knew of the messages it lists
    /// under the same UID and base name.
    fn take_scan(&mut self, scan: ScanResult, index: Option<Index>) {
        let index = index.filter(|i| i.header().uidvalidity == scan.uidvalidity);
        let unchanged_stamp = index.as_ref().is_some_and(|i| {
            Some(&i.header().stamp) == scan.stamp.as_ref() && i.header().settled == scan.settled
        });
        self.uidvalidity = scan.uidvalidity;
        self.uidnext = scan.uidnext;
        self.dir_stamp = scan.stamp.map(|stamp| DirStamp {
            stamp,
            settled: scan.settled,
        });
        let known_highest = index.as_ref().map_or(0, |i| i.header().highest_modseq);
        self.catalog = Catalog::new(index);
        let listed = self.catalog.index().map_or(0, |i| i.len());
        let mut exact = unchanged_stamp && listed as usize == scan.messages.len();
        // Messages whose record says something else now, and how many records still name
        // their message: what differs from the index gets a new MODSEQ.
        let mut differing: Vec<u32> = Vec::new();
        let mut matched = 0u32;
        let mut next = 0u32;
        self.slots.reserve_exact(scan.messages.len());
        for e in scan.messages {
            let (rec, same) = match self.match_record(&mut next, &e) {
                Ok(found) => found,
                Err(err) => {
                    log::warn!(
                        "{}: reading the index: {err}; not using it",
                        self.folder.path().display()
                    );
                    self.catalog.drop_index();
                    (None, false)
                }
            };
            exact &= same;
            match (rec, same) {
                (Some(_), true) => matched += 1,
                (Some(_), false) => {
                    matched += 1;
                    differing.push(e.uid);
                }
                (None, _) => {}
            }
            let rec = rec.unwrap_or_else(|| self.catalog.add(&e.basename));
            self.push_entry(e, rec);
        }
        self.index_stale = !exact;
        self.highest_modseq = known_highest;
        self.base_modseq = known_highest;
        let arrived = self.catalog.extra_count() > 0;
        if !differing.is_empty() || arrived || matched != listed {
            let m = crate::maildir::modseq::next_after(known_highest);
            self.highest_modseq = m;
            self.base_modseq = m;
            for uid in differing {
                self.modseqs.insert(uid, m);
            }
        }
    }

    /// The index record of `e` (the same UID and base name), searched from `next` on (both
    /// are in ascending UID order), and whether the index says the same of it (file name
    /// and keywords).
    fn match_record(
        &mut self,
        next: &mut u32,
        e: &MessageEntry,
    ) -> std::io::Result<(Option<u32>, bool)> {
        let Some(index) = self.catalog.index_mut() else {
            return Ok((None, false));
        };
        while *next < index.len() {
            let r = index.record(*next)?;
            if r.uid > e.uid {
                break;
            }
            *next += 1;
            if r.uid < e.uid {
                continue;
            }
            let filename = index.filename(&r)?;
            if crate::maildir::basename_of(&filename) != e.basename {
                return Ok((None, false));
            }
            let same = filename == e.filename && index.keywords(&r)? == e.keywords;
            return Ok((Some(*next - 1), same));
        }
        Ok((None, false))
    }

    /// Adds a message of a scan as the last one, named by `rec`.
    fn push_entry(&mut self, e: MessageEntry, rec: u32) {
        self.slots.push(Slot {
            uid: e.uid,
            rec,
            flags: 0,
            state: if e.recent { RECENT } else { 0 },
        });
        let i = self.slots.len() - 1;
        self.set_state(i, &e.filename, Some(&e.flags));
        if !e.keywords.is_empty() {
            self.keywords.insert(e.uid, e.keywords);
        }
    }

    /// Records message `i`'s file name on disk now, and with `flags` the flags the client
    /// is told from now on (which stay as they were otherwise, whatever the name says).
    fn set_state(&mut self, i: usize, filename: &str, flags: Option<&InfoFlags>) {
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let uid = s.uid;
        if let Some(flags) = flags {
            s.flags = flag_bits(flags);
            if has_other_letters(flags) {
                s.state |= OTHER_LETTERS;
                self.other_letters.insert(uid, flags.clone());
            } else if s.state & OTHER_LETTERS != 0 {
                s.state &= !OTHER_LETTERS;
                self.other_letters.remove(&uid);
            }
        }
        let regular = s.state & OTHER_LETTERS == 0 && regular_flag_bits(filename) == Some(s.flags);
        if regular {
            if s.state & ODD_NAME != 0 {
                s.state &= !ODD_NAME;
                self.odd_names.remove(&uid);
            }
        } else {
            s.state |= ODD_NAME;
            self.odd_names.insert(uid, filename.into());
        }
    }

    pub fn exists(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Messages in the view (EXISTS).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn uid(&self, i: usize) -> u32 {
        self.slots[i].uid
    }

    pub fn is_recent(&self, i: usize) -> bool {
        self.slots[i].state & RECENT != 0
    }

    /// Gone from disk, not yet reported.
    pub fn is_expunged(&self, i: usize) -> bool {
        self.slots[i].state & EXPUNGED != 0
    }

    /// Whether the client was told message `i` has the flag `letter`.
    pub fn has_flag(&self, i: usize, letter: u8) -> bool {
        let s = &self.slots[i];
        match flag_bit(letter) {
            0 => {
                s.state & OTHER_LETTERS != 0
                    && self
                        .other_letters
                        .get(&s.uid)
                        .is_some_and(|f| f.has(letter))
            }
            bit => s.flags & bit != 0,
        }
    }

    /// The system flags the client was told message `i` has, as index flag bits (see
    /// `maildir::flag_bits`), and its other letters, if it has any.
    pub fn flag_bits(&self, i: usize) -> (u8, Option<&InfoFlags>) {
        let s = &self.slots[i];
        let other = if s.state & OTHER_LETTERS != 0 {
            self.other_letters.get(&s.uid)
        } else {
            None
        };
        (s.flags, other)
    }

    /// The flags the client was told message `i` has.
    pub fn flags(&self, i: usize) -> InfoFlags {
        let s = &self.slots[i];
        if s.state & OTHER_LETTERS != 0
            && let Some(f) = self.other_letters.get(&s.uid)
        {
            return f.clone();
        }
        flags_of_bits(s.flags)
    }

    /// Message `i`'s keywords.
    pub fn keywords(&self, i: usize) -> &[String] {
        if self.keywords.is_empty() {
            return &[];
        }
        self.keywords
            .get(&self.slots[i].uid)
            .map_or(&[], |k| k.as_slice())
    }

    /// Appends message `i`'s flag list `(\Seen $Label1 ...)`.
    pub fn write_flags(&self, i: usize, out: &mut Vec<u8>) {
        let flags = self.flags(i);
        write_flag_list(
            out,
            &flags,
            self.keywords(i),
            self.is_recent(i) && !self.rev2,
        );
    }

    /// Message `i`'s base name.
    pub fn basename(&mut self, i: usize) -> Result<String, StoreError> {
        let rec = self.slots[i].rec;
        match self.catalog.basename(rec) {
            Ok(b) => Ok(b.to_string()),
            Err(e) => Err(store_io(&self.folder, e)),
        }
    }

    /// Message `i`'s file name as last seen (relative to cur/).
    pub fn filename(&mut self, i: usize) -> Result<String, StoreError> {
        let s = self.slots[i];
        if s.state & ODD_NAME != 0
            && let Some(name) = self.odd_names.get(&s.uid)
        {
            return Ok(name.to_string());
        }
        match self.catalog.basename(s.rec) {
            Ok(base) => Ok(regular_name(base, s.flags)),
            Err(e) => Err(store_io(&self.folder, e)),
        }
    }

    /// Whether message `i`'s base name is `base`, and its file name as last seen
    /// `filename`, without building either.
    fn names_match(
        &mut self,
        i: usize,
        base: &str,
        filename: &str,
    ) -> Result<(bool, bool), StoreError> {
        let s = self.slots[i];
        let known = match self.catalog.basename(s.rec) {
            Ok(known) => known,
            Err(e) => return Err(store_io(&self.folder, e)),
        };
        if known != base {
            return Ok((false, false));
        }
        let same_name = if s.state & ODD_NAME != 0 {
            self.odd_names.get(&s.uid).is_some_and(|n| &**n == filename)
        } else {
            filename
                .strip_prefix(base)
                .and_then(|rest| rest.strip_prefix(":2,"))
                .is_some_and(|letters| letter_bits(letters) == Some(s.flags))
        };
        Ok((true, same_name))
    }

    /// Whether the client was told message `i` has exactly `flags`.
    fn flags_are(&self, i: usize, flags: &InfoFlags) -> bool {
        let (bits, other) = self.flag_bits(i);
        match other {
            Some(mine) => mine == flags,
            None => !has_other_letters(flags) && flag_bits(flags) == bits,
        }
    }

    /// Message `i` is on disk as `filename` now (renamed by someone else: the flags the
    /// client was told stay as they are until a rescan reports the change).
    pub fn found_as(&mut self, i: usize, filename: &str) {
        self.set_state(i, filename, None);
        self.index_stale = true;
    }

    /// Message `i` was renamed to `filename` carrying `flags`, which the client is told.
    pub fn renamed(&mut self, i: usize, filename: &str, flags: &InfoFlags) {
        self.set_state(i, filename, Some(flags));
        self.index_stale = true;
    }

    /// Message `i` has the keywords `keywords` now.
    pub fn set_keywords(&mut self, i: usize, keywords: Vec<String>) {
        let uid = self.slots[i].uid;
        if keywords.is_empty() {
            self.keywords.remove(&uid);
        } else {
            self.keywords.insert(uid, keywords);
        }
        self.index_stale = true;
    }

    /// What is known of message `i`'s size, header length and date.
    pub fn facts(&mut self, i: usize) -> Facts {
        self.catalog.facts(self.slots[i].rec)
    }

    /// Message `i`'s derived data, if any is kept.
    pub fn derived(&mut self, i: usize) -> Option<Vec<u8>> {
        self.catalog.derived(self.slots[i].rec)
    }

    /// Keeps what was learnt of message `i`, for this session and the folder's next index.
    pub fn learn(&mut self, i: usize, facts: Facts, derived: Option<&[u8]>) {
        let rec = self.slots[i].rec;
        self.catalog.learn(&self.folder, rec, facts, derived);
    }

    pub fn recent_count(&self) -> u32 {
        self.slots.iter().filter(|s| s.state & RECENT != 0).count() as u32
    }

    pub fn first_unseen(&self) -> Option<u32> {
        (0..self.slots.len())
            .position(|i| !self.has_flag(i, b'S'))
            .map(|i| i as u32 + 1)
    }

    pub fn max_uid(&self) -> u32 {
        self.slots.last().map(|s| s.uid).unwrap_or(0)
    }

    pub fn seq_of_uid(&self, uid: u32) -> Option<usize> {
        self.slots.binary_search_by_key(&uid, |s| s.uid).ok()
    }

    /// The messages a sequence set names, as ascending, disjoint ranges of
    /// indexes into the view: a set that repeats `1:*` a thousand times
    /// names each message once and costs one range. Sequence numbers beyond
    /// EXISTS are a client error; UIDs that do not exist are skipped
    /// (RFC 3501 §6.4.8).
    pub fn resolve(
        &self,
        uid: bool,
        set: &SequenceSet,
    ) -> Result<Vec<std::ops::Range<usize>>, Completion> {
        if uid {
            let ranges = set.normalized(self.max_uid());
            let mut out = Vec::new();
            for (lo, hi) in ranges.iter() {
                let start = self.slots.partition_point(|s| s.uid < lo);
                let end = self.slots.partition_point(|s| s.uid <= hi);
                if start < end {
                    out.push(start..end);
                }
            }
            Ok(out)
        } else {
            let exists = self.exists();
            let ranges = set.normalized(exists);
            if exists == 0 || ranges.max().unwrap_or(0) > exists || ranges.contains(0) {
                return Err(Completion::bad("Invalid message sequence number."));
            }
            Ok(ranges
                .iter()
                .map(|(lo, hi)| (lo - 1) as usize..hi as usize)
                .collect())
        }
    }

    /// Every keyword in use, in the order of the messages that first have it.
    fn all_keywords(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        if self.keywords.is_empty() {
            return all;
        }
        for s in &self.slots {
            if let Some(k) = self.keywords.get(&s.uid) {
                super::flags::merge_keywords(&mut all, k);
            }
        }
        all
    }

    /// `* FLAGS (...)` with the system flags and every keyword in use.
    pub fn flags_response(&self) -> Vec<u8> {
        let mut out = b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft".to_vec();
        for k in &self.known_keywords {
            out.push(b' ');
            out.extend_from_slice(k.as_bytes());
        }
        out.push(b')');
        out
    }

    /// The PERMANENTFLAGS list: empty for a read-only mailbox; `\*` when new
    /// keywords may be created (IMAP_KEYWORDS); only the flags the rights let
    /// this user change (`\Deleted` needs `t`, `\Seen` `s`, the rest `w`).
    pub fn permanent_flags(&self, keywords: bool) -> Vec<u8> {
        if self.read_only {
            return b"()".to_vec();
        }
        let write = self.rights.has(right::WRITE);
        let mut names: Vec<&[u8]> = Vec::new();
        for (name, needed) in [
            (&b"\\Answered"[..], right::WRITE),
            (b"\\Flagged", right::WRITE),
            (b"\\Deleted", right::DELETE_MESSAGES),
            (b"\\Seen", right::SEEN),
            (b"\\Draft", right::WRITE),
        ] {
            if self.rights.has(needed) {
                names.push(name);
            }
        }
        if write {
            names.extend(self.known_keywords.iter().map(|k| k.as_bytes()));
            if keywords {
                names.push(b"\\*");
            }
        }
        let mut out = b"(".to_vec();
        out.extend_from_slice(&names.join(&b' '));
        out.push(b')');
        out
    }

    /// True when the folder may have changed since the last scan, so a
    /// rescan is worth its readdir. A stamp that was not settled when taken
    /// proves nothing (timestamps are as coarse as the kernel's tick, so a
    /// change in the same tick would not show), and then the answer is yes.
    pub fn looks_changed(&self) -> bool {
        match &self.dir_stamp {
            None => true,
            Some(s) if !s.settled => true,
            Some(s) => self.folder.change_stamp().as_ref() != Some(&s.stamp),
        }
    }

    /// True when a command that asks for updates (NOOP, CHECK, IDLE) must
    /// rescan even though the timestamps look unchanged: on a network
    /// filesystem, or while this session's own changes stand in for a rescan.
    pub fn must_poll(&self) -> bool {
        self.network_fs || self.unverified
    }

    /// The folder's stamp now, for [`SelectedView::adopt_own_stamp`] around a change
    /// this session makes itself.
    pub fn stamp_now(&self) -> Option<ChangeStamp> {
        self.folder.change_stamp()
    }

    /// Takes in messages this session delivered into this very folder
    /// (APPEND, COPY or MOVE into it), so that the next command need not
    /// rescan (module comment); returns whether it did, for the caller to
    /// announce them (`announce_arrivals`) where its answer has room. They are taken in only when they come right after what the
    /// view knows (their UIDs start at its UIDNEXT: nobody numbered anything
    /// in between), and the store's stamp is adopted only when the one it
    /// took before the delivery is this view's and the two differ only where
    /// a delivery shows. Otherwise the old stamp stays, no longer matches,
    /// and the next command rescans, finding the messages as they are
    /// already shown.
    pub fn take_delivery(&mut self, delivery: &Delivery) -> bool {
        if self.read_only
            || self.invalidated
            || delivery.uidvalidity != self.uidvalidity
            || delivery.messages.is_empty()
        {
            return false;
        }
        let follows = delivery
            .messages
            .iter()
            .zip(self.uidnext..)
            .all(|(m, uid)| m.uid == uid);
        if !follows {
            return false;
        }
        let m = self.new_modseq();
        for e in &delivery.messages {
            let rec = self.catalog.add(&e.basename);
            self.modseqs.insert(e.uid, m);
            self.push_entry(e.clone(), rec);
        }
        self.index_stale = true;
        self.uidnext = self.max_uid().saturating_add(1);
        if let Some((before, after)) = &delivery.stamps {
            self.adopt_own_stamp(Some(before), Some(after));
        }
        true
    }

    /// After this session changed the folder itself (and the view has taken
    /// the change in), with the folder's stamps from just `before` and just
    /// `after` the change: adopts `after` when `before` is this view's stamp
    /// and the two differ only where such a change shows (module comment).
    /// Otherwise keeps the old stamp, which no longer matches the folder, so
    /// the next command rescans.
    pub fn adopt_own_stamp(&mut self, before: Option<&ChangeStamp>, after: Option<&ChangeStamp>) {
        let (Some(mine), Some(before), Some(after)) = (&self.dir_stamp, before, after) else {
            return;
        };
        // A stamp that is not settled may be adopted too: what it could not show is, like
        // what the change itself hides, left to the next poll (`unverified`).
        if mine.stamp != *before || !before.differs_only_by_own_changes(after) {
            return;
        }
        self.dir_stamp = Some(DirStamp {
            stamp: after.clone(),
            settled: true,
        });
        self.unverified = true;
        self.index_stale = true;
    }

    /// Rescans the folder and appends the untagged responses the command
    /// allows to `out` (one response per line, without the `* `).
    pub fn refresh(
        &mut self,
        announce: Announce,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let scan = if self.read_only {
            self.folder.scan_read_only()?
        } else {
            self.folder.scan()?
        };
        self.refresh_from(scan, announce, out)
    }

    /// [`SelectedView::refresh`] with the folder already scanned.
    fn refresh_from(
        &mut self,
        scan: ScanResult,
        announce: Announce,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let large = scan.messages.len() >= SAVE_BATCH;
        self.dir_stamp = scan.stamp.clone().map(|stamp| DirStamp {
            stamp,
            settled: scan.settled,
        });
        self.unverified = false;
        let same_stamp = self.catalog.index().is_some_and(|i| {
            Some(&i.header().stamp) == scan.stamp.as_ref() && i.header().settled == scan.settled
        });
        if !same_stamp {
            self.index_stale = true;
        }
        let result = self.apply_scan(scan, announce, out);
        if large {
            // The scan's names are freed now; give their memory back.
            crate::heap::release_free_memory();
        }
        result
    }

    fn apply_scan(
        &mut self,
        scan: ScanResult,
        announce: Announce,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        if scan.uidvalidity != self.uidvalidity {
            self.invalidated = true;
            return Ok(());
        }
        let max = self.max_uid();
        let mut fresh = scan.messages.into_iter().peekable();
        let mut changed: Vec<u32> = Vec::new();
        let mut went = false;
        let mut arrivals: Vec<MessageEntry> = Vec::new();
        for i in 0..self.slots.len() {
            let uid = self.slots[i].uid;
            // Messages numbered below one the view has were not there at the last
            // scan: they cannot be shown in ascending UID order (see below).
            while fresh.next_if(|e| e.uid < uid).is_some() {}
            let Some(e) = fresh.next_if(|e| e.uid == uid) else {
                if self.slots[i].state & EXPUNGED == 0 {
                    self.slots[i].state |= EXPUNGED;
                    self.expunges_pending = true;
                    self.index_stale = true;
                    went = true;
                }
                continue;
            };
            let (same_base, same_name) = self.names_match(i, &e.basename, &e.filename)?;
            // The same number for another message: the database was
            // replaced behind our back. The client's UIDs are void.
            if !same_base {
                let known = self.basename(i).unwrap_or_default();
                log::error!(
                    "{}: UID {} now names {} instead of {}; ending the session",
                    self.folder.path().display(),
                    uid,
                    e.basename,
                    known
                );
                self.invalidated = true;
                return Ok(());
            }
            if !same_name {
                self.index_stale = true;
            }
            let flags_changed = !self.flags_are(i, &e.flags);
            let keywords_changed = !same_keywords(self.keywords(i), &e.keywords);
            if flags_changed || keywords_changed {
                self.index_stale = true;
                self.set_state(i, &e.filename, Some(&e.flags));
                if e.keywords.is_empty() {
                    self.keywords.remove(&uid);
                } else {
                    self.keywords.insert(uid, e.keywords);
                }
                if self.slots[i].state & EXPUNGED == 0 {
                    changed.push(uid);
                }
            } else if !same_name {
                self.set_state(i, &e.filename, None);
            }
        }
        // What is left is new. A UID at or below the highest one the client
        // knows cannot be shown without breaking ascending UID order; it only
        // happens with read-only provisional numbers and is picked up when the
        // client reselects.
        arrivals.extend(fresh.filter(|e| e.uid > max));
        if !changed.is_empty() || !arrivals.is_empty() || went {
            let m = self.new_modseq();
            for &uid in &changed {
                self.modseqs.insert(uid, m);
            }
            for e in &arrivals {
                self.modseqs.insert(e.uid, m);
            }
        }
        if announce == Announce::All {
            self.report_expunges(out);
        }
        let arrived = !arrivals.is_empty();
        for e in arrivals {
            self.index_stale = true;
            let rec = self.catalog.add(&e.basename);
            self.push_entry(e, rec);
        }
        self.uidnext = self.uidnext.max(scan.uidnext).max(self.max_uid() + 1);
        self.announce_arrivals(arrived, out);
        for uid in changed {
            if let Some(i) = self.seq_of_uid(uid) {
                out.push(self.flags_fetch_line(i, false));
            }
        }
        Ok(())
    }

    /// The last UID given out as far as the view knows: `*` for the UIDs a client may
    /// have had, which may be one gone since (the highest UID in the view need not be).
    pub fn last_uid_given(&self) -> u32 {
        self.uidnext.saturating_sub(1).max(self.max_uid())
    }

    /// The UIDs in `ranges` (ascending, disjoint, as `Ranges::iter` gives them) that name
    /// no message of the view, up to its UIDNEXT: what `VANISHED (EARLIER)` reports (RFC
    /// 7162 §3.2.5.1, §3.2.6). The view keeps no record of when a message went, so every
    /// UID gone is reported, however long ago; the RFC allows that (a client ignores a UID
    /// it does not have). A message gone from disk but not yet reported is still the
    /// view's, for a later `VANISHED`. Compacted; empty when there are none.
    pub fn vanished_among(&self, ranges: impl Iterator<Item = (u32, u32)>) -> String {
        let last = self.last_uid_given();
        let mut gone: Vec<(u32, u32)> = Vec::new();
        for (lo, hi) in ranges {
            let hi = hi.min(last);
            if lo > hi {
                continue;
            }
            let mut at = lo;
            let first = self.slots.partition_point(|s| s.uid < lo);
            for s in &self.slots[first..] {
                if s.uid > hi {
                    break;
                }
                if s.uid > at {
                    gone.push((at, s.uid - 1));
                }
                match s.uid.checked_add(1) {
                    Some(next) => at = next,
                    None => break,
                }
            }
            if at <= hi && self.slots.last().is_none_or(|s| s.uid < u32::MAX) {
                gone.push((at, hi));
            }
        }
        gone.iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}:{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Message `i`'s MODSEQ (RFC 7162).
    pub fn modseq(&mut self, i: usize) -> u64 {
        let s = self.slots[i];
        if let Some(&m) = self.modseqs.get(&s.uid) {
            return m;
        }
        self.catalog.modseq(s.rec).unwrap_or(self.base_modseq)
    }

    /// The folder's HIGHESTMODSEQ as this view knows it.
    pub fn highest_modseq(&self) -> u64 {
        self.highest_modseq
    }

    /// A MODSEQ for a change this view takes in now, which becomes HIGHESTMODSEQ.
    pub fn new_modseq(&mut self) -> u64 {
        let m = crate::maildir::modseq::next_after(self.highest_modseq);
        self.highest_modseq = m;
        m
    }

    /// Message `i` changed with MODSEQ `m` (from [`SelectedView::new_modseq`]).
    pub fn set_modseq(&mut self, i: usize, m: u64) {
        let uid = self.slots[i].uid;
        self.modseqs.insert(uid, m);
        self.index_stale = true;
    }

    /// `n FETCH ([UID u ]FLAGS (...)[ MODSEQ (m)])`, telling message `i`'s flags: with its
    /// UID when `uid` asks for it or QRESYNC is enabled (RFC 7162 §3.2.4: every flag change
    /// names its UID then), with its MODSEQ once CONDSTORE is (§3.2).
    pub fn flags_fetch_line(&mut self, i: usize, uid: bool) -> Vec<u8> {
        let mut line = format!("{} FETCH (", i + 1).into_bytes();
        if uid || self.qresync {
            line.extend_from_slice(format!("UID {} ", self.uid(i)).as_bytes());
        }
        line.extend_from_slice(b"FLAGS ");
        self.write_flags(i, &mut line);
        if self.condstore {
            let m = self.modseq(i);
            line.extend_from_slice(format!(" MODSEQ ({m})").as_bytes());
        }
        line.push(b')');
        line
    }

    /// FLAGS when keywords appeared that the client has not been shown, and
    /// EXISTS and RECENT when messages `arrived`.
    pub fn announce_arrivals(&mut self, arrived: bool, out: &mut Vec<Vec<u8>>) {
        let keywords = self.all_keywords();
        let mut grew = false;
        for k in keywords {
            if !self
                .known_keywords
                .iter()
                .any(|e| e.eq_ignore_ascii_case(&k))
            {
                self.known_keywords.push(k);
                grew = true;
            }
        }
        if grew {
            out.push(self.flags_response());
        }
        if arrived {
            out.push(format!("{} EXISTS", self.exists()).into_bytes());
            if !self.rev2 {
                out.push(format!("{} RECENT", self.recent_count()).into_bytes());
            }
        }
    }

    /// Sends `n EXPUNGE` for every message gone from disk, highest first so
    /// that each number is valid when the client reads it.
    /// When recent messages went, the new RECENT count follows, as Dovecot sends it (RFC
    /// 3501 §7.3.2 asks for it only when the mailbox grows; a client that counts recent
    /// messages is kept right either way).
    /// With QRESYNC enabled, one `VANISHED` with their UIDs instead.
    pub fn report_expunges(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.expunges_pending {
            return;
        }
        self.expunges_pending = false;
        // RFC 5267 §4.3: updating searches say what they lose before the EXPUNGEs renumber.
        if !self.updating.is_empty() {
            let mut updating = std::mem::take(&mut self.updating);
            updating.drop_expunged(self, out);
            self.updating = updating;
        }
        let mut any = false;
        let mut recent_went = false;
        let mut vanished = Vec::new();
        for i in (0..self.slots.len()).rev() {
            let state = self.slots[i].state;
            if state & EXPUNGED != 0 {
                if self.qresync {
                    vanished.push(self.slots[i].uid);
                } else {
                    out.push(format!("{} EXPUNGE", i + 1).into_bytes());
                }
                any = true;
                recent_went |= state & RECENT != 0;
            }
        }
        if !any {
            return;
        }
        if !vanished.is_empty() {
            vanished.reverse();
            let mut line = b"VANISHED ".to_vec();
            line.extend_from_slice(crate::protocol::sequence::compact(&vanished).as_bytes());
            out.push(line);
        }
        for s in self.slots.iter().filter(|s| s.state & EXPUNGED != 0) {
            self.keywords.remove(&s.uid);
            self.odd_names.remove(&s.uid);
            self.other_letters.remove(&s.uid);
        }
        // One pass, not one shift of the whole list per message.
        self.slots.retain(|s| s.state & EXPUNGED == 0);
        self.index_stale = true;
        if recent_went && !self.rev2 {
            out.push(format!("{} RECENT", self.recent_count()).into_bytes());
        }
    }

    /// Removes messages this session expunged itself and reports them.
    pub fn remove_uids(&mut self, uids: &[u32], out: &mut Vec<Vec<u8>>) {
        if !uids.is_empty() {
            self.new_modseq();
        }
        for &uid in uids {
            if let Some(i) = self.seq_of_uid(uid) {
                self.slots[i].state |= EXPUNGED;
                self.expunges_pending = true;
            }
        }
        self.report_expunges(out);
    }

    /// True when so much was learnt, or so many messages are kept outside the index, that
    /// a new index should be written now rather than when the mailbox is closed.
    pub fn save_due(&self) -> bool {
        let batch = SAVE_BATCH.max(self.slots.len() / SAVE_FRACTION);
        self.catalog.unsaved() >= batch || self.catalog.extra_count() >= batch
    }

    /// Writes a new index when the view knows more than the index says. A failure costs
    /// only speed, so it is logged and otherwise ignored.
    pub fn save_index(&mut self) {
        if !self.index_stale && self.catalog.unsaved() == 0 {
            return;
        }
        match self.write_index() {
            Ok(()) => {}
            Err(e) => log::warn!(
                "cannot write the index of {}: {e}",
                self.folder.path().display()
            ),
        }
    }

    fn write_index(&mut self) -> Result<(), StoreError> {
        let Some(stamp) = self.dir_stamp.clone() else {
            return Ok(());
        };
        // The messages the index can list: in cur/ and not gone.
        let mut count = 0u32;
        let mut names_len = 0u64;
        let mut all_in_cur = true;
        for i in 0..self.slots.len() {
            if self.is_expunged(i) {
                continue;
            }
            let filename = self.filename(i)?;
            if filename.starts_with(NEW_PREFIX) {
                all_in_cur = false;
                continue;
            }
            count += 1;
            names_len += IndexEntry::name_len(&filename);
        }
        let mut table: Vec<String> = Vec::new();
        let mut in_table: FastSet<&str> = FastSet::default();
        for s in &self.slots {
            for k in self.keywords.get(&s.uid).into_iter().flatten() {
                if in_table.insert(k) {
                    table.push(k.clone());
                }
            }
        }
        drop(in_table);
        let header = IndexHeader {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            stamp: stamp.stamp,
            settled: stamp.settled && all_in_cur && !self.unverified,
            highest_modseq: self.highest_modseq,
        };
        let folder = self.folder.clone();
        let Some(mut writer) = IndexWriter::create(&folder, header, count, names_len, table)?
        else {
            // Another session is writing one now.
            return Ok(());
        };
        let mut kept: Vec<Box<str>> = Vec::new();
        let mut recs: Vec<u32> = Vec::with_capacity(self.slots.len());
        let mut written = 0u32;
        for i in 0..self.slots.len() {
            let filename = self.filename(i)?;
            if self.is_expunged(i) || filename.starts_with(NEW_PREFIX) {
                let (uid, modseq) = (self.slots[i].uid, self.modseq(i));
                self.modseqs.insert(uid, modseq);
                kept.push(self.basename(i)?.into());
                recs.push(EXTRA + (kept.len() - 1) as u32);
                continue;
            }
            let facts = self.facts(i);
            let derived = self.derived(i);
            let modseq = self.modseq(i);
            let uid = self.slots[i].uid;
            writer.push(&IndexEntry {
                uid,
                filename: &filename,
                keywords: self.keywords(i),
                facts,
                derived: derived.as_deref(),
                modseq,
            })?;
            recs.push(written);
            written += 1;
        }
        let index = writer.finish()?;
        for (s, rec) in self.slots.iter_mut().zip(recs) {
            s.rec = rec;
            // The new index records its MODSEQ now.
            if rec < EXTRA {
                self.modseqs.remove(&s.uid);
            }
        }
        self.catalog.replace(index, kept);
        self.index_stale = false;
        crate::heap::release_free_memory();
        Ok(())
    }
}

fn same_keywords(a: &[String], b: &[String]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|k| b.iter().any(|e| e.eq_ignore_ascii_case(k)))
}

impl Drop for SelectedView {
    fn drop(&mut self) {
        self.settle_before_leaving();
        self.save_index();
    }
}

/// A folder at least this large is looked at once more when a session leaves it unsettled
/// (see `settle_before_leaving`): below it, the next session's scan costs little.
const SETTLE_MIN: usize = 5_000;
/// The longest a leaving session waits for the folder's times to settle: a file system with
/// whole-second times would need two seconds, and then the next session scans instead.
const SETTLE_WAIT_MAX: std::time::Duration = std::time::Duration::from_millis(100);

impl SelectedView {
    /// A session that changed a large folder itself (STORE, APPEND, EXPUNGE) leaves a view
    /// whose stamp is not settled: the changes are within a clock tick of its last look, and
    /// a change by someone else in the same tick would not show. An index written from it
    /// may not stand for a scan, so every session opening the folder next would list it in
    /// full, and twenty of them at once take seconds each (BENCHMARKS.md, 100 000 messages).
    /// So, when leaving (after the client has its answer), wait out the clock's window and
    /// look at the folder once more, read-only (nothing is moved from new/ and no `\Recent`
    /// is taken by a session that will not report it), so that the index written next is
    /// settled.
    fn settle_before_leaving(&mut self) {
        // Own changes adopted without a look (`adopt_own_stamp`) leave it unverified.
        let unsettled = self.unverified || self.dir_stamp.as_ref().is_some_and(|d| !d.settled);
        if !unsettled
            || self.read_only
            || self.slots.len() < SETTLE_MIN
            || self.network_fs
            || self.folder.is_linked()
        {
            return;
        }
        let Some(now) = self.folder.change_stamp() else {
            return;
        };
        if let Ok(wait) = now
            .settles_at()
            .duration_since(std::time::SystemTime::now())
        {
            if wait > SETTLE_WAIT_MAX {
                return;
            }
            std::thread::sleep(wait);
        }
        let mut unsaid = Vec::new();
        let looked = self
            .folder
            .scan_read_only()
            .and_then(|scan| self.refresh_from(scan, Announce::All, &mut unsaid));
        if let Err(e) = looked {
            log::debug!(
                "{}: settling before leaving: {e}",
                self.folder.path().display()
            );
        }
    }
}

/// The folder's change stamp when it was last scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DirStamp {
    stamp: ChangeStamp,
    /// It proves "nothing changed" for as long as the folder's stamp equals it.
    settled: bool,
}
