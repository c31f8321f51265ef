//! The selected mailbox as this client knows it: sequence numbers ⇄ UIDs,
//! flags, and the changes other processes made that the client has not been
//! told about yet.
//!
//! This is the one place that decides when untagged EXISTS, EXPUNGE and FETCH
//! responses may be sent (RFC 3501 §7.4.1, §5.5): a message expunged by someone
//! else keeps its sequence number until a command that allows EXPUNGE
//! responses runs, and EXISTS never shrinks except through reported EXPUNGEs.
//!
//! Whether the folder changed is told from its [`ChangeStamp`] (directory and
//! file modification times), which costs four `stat`s where a rescan costs the
//! folder. A stamp cannot show a change made within the same clock tick as the
//! change before it, so a stamp taken close to its times is distrusted ("racy")
//! and the next command rescans. When this session itself changes the selected
//! folder (APPEND, COPY or MOVE into it, MOVE out of it), the view takes the
//! change in as the store reports it and adopts the stamp taken right after,
//! without rescanning: a stamp was also taken just before, and when that equals
//! this view's, nothing changed meanwhile that timestamps show. What they
//! cannot show (another process's flag change or expunge in the same tick as
//! the view's last look or as this session's own change, or in the moments the
//! change took) is left to the next NOOP, CHECK or IDLE, which rescan
//! regardless until a rescan has confirmed the view (`unverified`); any later
//! change that moves a timestamp rescans at the next command, as before. So a
//! burst of APPENDs costs no rescan at all, and neither does the command after.

use crate::maildir::acl::right;
use crate::maildir::fast::{FastMap, FastSet};
use std::time::{Duration, SystemTime};

use crate::maildir::{
    ChangeStamp, Delivery, Folder, InfoFlags, MessageCache, MessageEntry, Rights, ScanResult,
    StoreError,
};

use super::flags::write_flag_list;
use crate::protocol::response::Completion;
use crate::protocol::sequence::SequenceSet;

/// One message as the client sees it.
#[derive(Debug, Clone)]
pub struct ViewMessage {
    pub uid: u32,
    pub basename: String,
    pub filename: String,
    pub flags: InfoFlags,
    pub keywords: Vec<String>,
    pub recent: bool,
    /// Gone from disk but not yet reported with EXPUNGE.
    pub expunged: bool,
}

impl ViewMessage {
    fn from_entry(e: MessageEntry) -> ViewMessage {
        ViewMessage {
            uid: e.uid,
            basename: e.basename,
            filename: e.filename,
            flags: e.flags,
            keywords: e.keywords,
            recent: e.recent,
            expunged: false,
        }
    }
}

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
    pub messages: Vec<ViewMessage>,
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
    /// Sizes learnt from reading messages, loaded on first use.
    cache: Option<MessageCache>,
    /// The user's rights here (ACL), as last looked up; every right until SELECT sets them.
    pub rights: Rights,
    /// UIDs this session has COPYed elsewhere (Courier's `copiedflag`): the magic trash
    /// removes them outright when they are expunged.
    pub copied: FastSet<u32>,
}

impl SelectedView {
    /// Opens the folder: a read-write scan moves `new/` into `cur/` and so
    /// gives `\Recent` to this session; a read-only one touches nothing.
    pub fn open(folder: Folder, read_only: bool) -> Result<SelectedView, StoreError> {
        let scan = if read_only {
            folder.scan_read_only()?
        } else {
            folder.scan()?
        };
        // Stamped after the scan, which itself moves files and rewrites the
        // UID database; a change slipping in between is caught by the next
        // NOOP, CHECK or IDLE, which rescan regardless.
        let stamp = dir_stamp(&folder);
        let mut view = SelectedView {
            folder,
            read_only,
            uidvalidity: scan.uidvalidity,
            uidnext: scan.uidnext,
            messages: scan
                .messages
                .into_iter()
                .map(ViewMessage::from_entry)
                .collect(),
            known_keywords: Vec::new(),
            dir_stamp: stamp,
            unverified: false,
            network_fs: false,
            invalidated: false,
            cache: None,
            rights: Rights::all(),
            copied: FastSet::default(),
        };
        view.known_keywords = view.all_keywords();
        view.network_fs = on_network_fs(view.folder.path());
        Ok(view)
    }

    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    pub fn recent_count(&self) -> u32 {
        self.messages.iter().filter(|m| m.recent).count() as u32
    }

    pub fn first_unseen(&self) -> Option<u32> {
        self.messages
            .iter()
            .position(|m| !m.flags.has(b'S'))
            .map(|i| i as u32 + 1)
    }

    pub fn max_uid(&self) -> u32 {
        self.messages.last().map(|m| m.uid).unwrap_or(0)
    }

    pub fn seq_of_uid(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// The messages a sequence set names, as ascending, disjoint ranges of
    /// indexes into `messages`: a set that repeats `1:*` a thousand times
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
                let start = self.messages.partition_point(|m| m.uid < lo);
                let end = self.messages.partition_point(|m| m.uid <= hi);
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

    fn all_keywords(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for m in &self.messages {
            super::flags::merge_keywords(&mut all, &m.keywords);
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
    /// rescan is worth its readdir. A stamp taken close to the last change
    /// proves nothing (timestamps are as coarse as the kernel's tick, so a
    /// change in the same tick would not show), and then the answer is yes.
    pub fn looks_changed(&self) -> bool {
        match &self.dir_stamp {
            None => true,
            Some(s) if s.racy => true,
            Some(s) => self.folder.change_stamp().as_ref() != Some(&s.stamp),
        }
    }

    /// True when a command that asks for updates (NOOP, CHECK, IDLE) must
    /// rescan even though the timestamps look unchanged: on a network
    /// filesystem, or while this session's own changes stand in for a rescan.
    pub fn must_poll(&self) -> bool {
        self.network_fs || self.unverified
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
        self.messages.extend(
            delivery
                .messages
                .iter()
                .cloned()
                .map(ViewMessage::from_entry),
        );
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
        // A racy stamp may be adopted too: what it could not show is, like what the change
        // itself hides, left to the next poll (`unverified`).
        if mine.stamp != *before || !before.differs_only_by_own_changes(after) {
            return;
        }
        self.dir_stamp = Some(DirStamp {
            stamp: after.clone(),
            racy: false,
        });
        self.unverified = true;
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
        self.dir_stamp = dir_stamp(&self.folder);
        self.unverified = false;
        self.apply_scan(scan, announce, out);
        Ok(())
    }

    fn apply_scan(&mut self, scan: ScanResult, announce: Announce, out: &mut Vec<Vec<u8>>) {
        if scan.uidvalidity != self.uidvalidity {
            self.invalidated = true;
            return;
        }
        let mut fresh: FastMap<u32, MessageEntry> =
            scan.messages.into_iter().map(|e| (e.uid, e)).collect();
        let mut changed: Vec<u32> = Vec::new();
        for m in &mut self.messages {
            match fresh.remove(&m.uid) {
                // The same number for another message: the database was
                // replaced behind our back. The client's UIDs are void.
                Some(e) if e.basename != m.basename => {
                    log::error!(
                        "{}: UID {} now names {} instead of {}; ending the session",
                        self.folder.path().display(),
                        m.uid,
                        e.basename,
                        m.basename
                    );
                    self.invalidated = true;
                    return;
                }
                Some(e) => {
                    m.filename = e.filename;
                    if m.flags != e.flags || !same_keywords(&m.keywords, &e.keywords) {
                        m.flags = e.flags;
                        m.keywords = e.keywords;
                        if !m.expunged {
                            changed.push(m.uid);
                        }
                    }
                }
                None => m.expunged = true,
            }
        }
        if announce == Announce::All {
            self.report_expunges(out);
        }
        // What is left is new. A UID at or below the highest one the client
        // knows cannot be shown without breaking ascending UID order; it only
        // happens with read-only provisional numbers and is picked up when the
        // client reselects.
        let max = self.max_uid();
        let mut arrivals: Vec<MessageEntry> = fresh.into_values().filter(|e| e.uid > max).collect();
        arrivals.sort_by_key(|e| e.uid);
        let arrived = !arrivals.is_empty();
        self.messages
            .extend(arrivals.into_iter().map(ViewMessage::from_entry));
        self.uidnext = self.uidnext.max(scan.uidnext).max(self.max_uid() + 1);
        self.announce_arrivals(arrived, out);
        for uid in changed {
            if let Some(i) = self.seq_of_uid(uid) {
                let m = &self.messages[i];
                let mut line = format!("{} FETCH (FLAGS ", i + 1).into_bytes();
                write_flag_list(&mut line, &m.flags, &m.keywords, m.recent);
                line.push(b')');
                out.push(line);
            }
        }
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
            out.push(format!("{} RECENT", self.recent_count()).into_bytes());
        }
    }

    /// Sends `n EXPUNGE` for every message gone from disk, highest first so
    /// that each number is valid when the client reads it.
    /// When recent messages went, the new RECENT count follows, as Dovecot sends it (RFC
    /// 3501 §7.3.2 asks for it only when the mailbox grows; a client that counts recent
    /// messages is kept right either way).
    pub fn report_expunges(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut recent_went = false;
        for i in (0..self.messages.len()).rev() {
            if self.messages[i].expunged {
                out.push(format!("{} EXPUNGE", i + 1).into_bytes());
                recent_went |= self.messages[i].recent;
            }
        }
        // One pass, not one shift of the whole list per message.
        self.messages.retain(|m| !m.expunged);
        if recent_went {
            out.push(format!("{} RECENT", self.recent_count()).into_bytes());
        }
    }

    /// Removes messages this session expunged itself and reports them.
    pub fn remove_uids(&mut self, uids: &[u32], out: &mut Vec<Vec<u8>>) {
        for &uid in uids {
            if let Some(i) = self.seq_of_uid(uid) {
                self.messages[i].expunged = true;
            }
        }
        self.report_expunges(out);
    }

    /// The folder's derived-data cache.
    pub fn cache(&mut self) -> &mut MessageCache {
        let folder = &self.folder;
        self.cache.get_or_insert_with(|| MessageCache::load(folder))
    }

    /// Writes what the cache learnt, for the next session, once it has
    /// learnt enough to be worth rewriting the file (and always when the
    /// mailbox is closed: see `Drop`). A failure costs only speed, so it is
    /// logged and otherwise ignored.
    pub fn save_cache(&mut self) {
        if self
            .cache
            .as_ref()
            .is_some_and(|c| c.unsaved() >= CACHE_SAVE_BATCH)
        {
            self.write_cache();
        }
    }

    fn write_cache(&mut self) {
        let Some(cache) = self.cache.as_mut().filter(|c| c.unsaved() > 0) else {
            return;
        };
        let present: FastSet<&str> = self.messages.iter().map(|m| m.basename.as_str()).collect();
        if let Err(e) = cache.save(&self.folder, &present) {
            log::warn!(
                "cannot write the cache of {}: {e}",
                self.folder.path().display()
            );
        }
    }
}

fn same_keywords(a: &[String], b: &[String]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|k| b.iter().any(|e| e.eq_ignore_ascii_case(k)))
}

/// New cache entries that make rewriting the cache file worthwhile before
/// the mailbox is closed: a client walking a large folder message by message
/// must not pay for a rewrite per message.
const CACHE_SAVE_BATCH: usize = 1000;

impl Drop for SelectedView {
    fn drop(&mut self) {
        self.write_cache();
    }
}

/// The folder's change stamp when it was last scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DirStamp {
    stamp: ChangeStamp,
    /// Some timestamp was close to when it was read.
    racy: bool,
}

/// How close to "now" a timestamp must be to be distrusted. Linux stamps
/// files from a clock that advances once per kernel tick (at most 10 ms);
/// filesystems that keep whole seconds (their stamps have no nanoseconds)
/// need a window of their own granularity and more.
const RACY_WINDOW: Duration = Duration::from_millis(50);
const RACY_WINDOW_WHOLE_SECONDS: Duration = Duration::from_secs(2);

fn dir_stamp(folder: &Folder) -> Option<DirStamp> {
    let stamp = folder.change_stamp()?;
    let now = SystemTime::now();
    let mtimes = stamp.times();
    let whole_seconds = mtimes.iter().all(|t| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() == 0)
            .unwrap_or(true)
    });
    let window = if whole_seconds {
        RACY_WINDOW_WHOLE_SECONDS
    } else {
        RACY_WINDOW
    };
    let racy = mtimes.iter().any(|&t| t + window > now);
    Some(DirStamp { stamp, racy })
}

/// NFS, SMB, Ceph and FUSE filesystems: timestamps may be cached or come
/// from another machine's clock, so they cannot prove "nothing changed".
fn on_network_fs(path: &std::path::Path) -> bool {
    const NETWORK: [i64; 6] = [
        0x6969,      // NFS
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x517B,      // SMB
        0x00C3_6400, // Ceph
        0x6573_5546, // FUSE
    ];
    match nix::sys::statfs::statfs(path) {
        Ok(st) => NETWORK.contains(&{ st.filesystem_type().0 }),
        // Unknown: assume the worst, and rescan.
        Err(_) => true,
    }
}
