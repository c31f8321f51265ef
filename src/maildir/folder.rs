//! One Maildir++ folder: scanning `tmp/ new/ cur/`, UID assignment through the Courier UID
//! database, delivery (APPEND, COPY/MOVE target side), flag renames, expunge, and reading a
//! message back (spec/maildir.md §1, spec/courier-files.md §1.2).
//!
//! Owns every change to a folder's messages and every way to a message file; must not know
//! IMAP syntax or session state (which UIDs a client has seen, \Recent bookkeeping beyond
//! "this scan moved it"). Everything below the maildir root is reached through
//! `beneath::Dir` (opened once per operation, never by following a symbolic link), so a
//! folder, `cur/` or message that is a link leads nowhere; the scan skips message names that
//! are links and says so in the log.
//!
//! A delivery costs the same in a folder of any size: it lists no directory and numbers its
//! messages by adding lines to the UID database in place (`uiddb::append_entries`, whose
//! comment says why Courier reads that correctly and why a crash at any point numbers every
//! message once), and it reports what it added with the folder's change stamps from just
//! before and just after, so that a session's view of the folder need not rescan it either.

use crate::maildir::fast::{FastMap, FastSet};
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::beneath::{Dir, Kind, identity_of, not_a_file, report_skipped};
use super::crash;
use super::error::StoreError;
use super::flags::{InfoFlags, basename_of, size_from_name};
use super::index::{Index, flag_bit};
use super::keywords::{self, KeywordWriter};
use super::lock::{DotLock, LOCK_NAME};
use super::quota::{self, Quota, QuotaUse};
use super::recent;
use super::sharable::{Linked, SharableDirs, Source, place_link};
use super::stamp::ChangeStamp;
use super::uiddb::{self, DbState, UidDb};
use super::unique::{Stamp, create_exclusive, now_secs};

/// tmp/ files older than this (by ctime) are leftovers of crashed writers.
const TMP_MAX_AGE_SECS: i64 = 36 * 3600;
/// Tags of the store's own temporary directories in the root's tmp/ (see store.rs).
pub(crate) const DELETING_TAG: &str = "deleting";
pub(crate) const CREATING_TAG: &str = "creating";

/// Shown each message of a delivery, opened for reading as it will be placed, once the quota
/// has admitted the delivery and before any of it is visible; an error refuses the whole
/// delivery and leaves nothing behind (the outbox hands messages to SENDMAIL here).
pub type BeforePlacing<'a> = &'a mut dyn FnMut(File) -> Result<(), StoreError>;

/// One message of a scan.
#[derive(Debug, Clone)]
pub struct MessageEntry {
    pub uid: u32,
    /// File name up to the first ':'.
    pub basename: String,
    /// Current full file name in cur/.
    pub filename: String,
    pub flags: InfoFlags,
    pub keywords: Vec<String>,
    /// This scan moved it from new/ to cur/.
    pub recent: bool,
}

/// Result of a scan.
#[derive(Debug, Clone)]
pub struct ScanResult {
    pub uidvalidity: u32,
    pub uidnext: u32,
    /// Ascending UID.
    pub messages: Vec<MessageEntry>,
    /// The folder's change stamp, taken after the scan's own changes (new/ moved into cur/)
    /// and before it listed anything; `None` when it could not be taken.
    pub stamp: Option<ChangeStamp>,
    /// The stamp proves the messages are the folder's for as long as the folder's stamp
    /// stays equal to it: it was settled when taken ([`ChangeStamp::settled`]), nothing
    /// moved it while the scan ran (the scan's own writes of the UID database or the keyword
    /// list included), and every message listed is in cur/.
    pub settled: bool,
}

/// One message of an APPEND or MULTIAPPEND, read from `data` as it is stored.
pub struct NewMessage<'a> {
    pub data: &'a mut dyn Read,
    pub flags: InfoFlags,
    pub keywords: Vec<String>,
    /// INTERNALDATE in seconds since the epoch (the file's mtime); `None`: now.
    pub internal_date: Option<i64>,
}

/// What a delivery (APPEND, COPY or MOVE) put into a folder.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub uidvalidity: u32,
    /// The new messages, in the order they were given, each with the UID it got.
    pub messages: Vec<MessageEntry>,
    /// The folder's change stamp taken before the delivery changed anything, and again
    /// once it was numbered, still under the lock: a view of this folder that was up to
    /// date with the first may take the messages in and move on to the second without a
    /// rescan, where the two differ only in what a delivery itself changes
    /// ([`ChangeStamp::differs_only_by_own_changes`]). `None` where a stamp could not be
    /// taken, or for a shared folder's local copy (its stamp follows another folder too).
    pub stamps: Option<(ChangeStamp, ChangeStamp)>,
}

impl Delivery {
    /// The UIDs the messages got, in the order they were given.
    pub fn uids(&self) -> Vec<u32> {
        self.messages.iter().map(|m| m.uid).collect()
    }
}

/// A message opened for reading ([`Folder::open_message`]): the file, the name it was
/// found by, and what the fstat that checked it found: its length and its modification
/// time, the INTERNALDATE (a message file is never written once in cur/ or new/).
#[derive(Debug)]
pub struct OpenedMessage {
    pub file: File,
    pub name: String,
    pub len: u64,
    pub mtime: i64,
}

/// Counts for STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderStatus {
    pub messages: u32,
    /// Files in new/.
    pub recent: u32,
    pub unseen: u32,
    /// Messages with `\Deleted` (`T`).
    pub deleted: u32,
    pub uidnext: u32,
    pub uidvalidity: u32,
    /// The sum of the messages' RFC822.SIZE (CRLF line ends), when the index knows every
    /// one; `None` when they are yet to be counted (`Folder::status` reads no message).
    pub rfc822_size: Option<u64>,
    /// HIGHESTMODSEQ (RFC 7162) when the folder was counted from its index; `None` when
    /// it was listed (a view of it tells then).
    pub highest_modseq: Option<u64>,
}

/// An existing folder (the root maildir for INBOX).
#[derive(Debug, Clone)]
pub struct Folder {
    name: String,
    path: PathBuf,
    /// The maildir root: the only directory reached by path, following links on the way
    /// (where the maildir lives is the administrator's choice).
    root: PathBuf,
    /// The folder's directory in the root (`.Work`); `None` for INBOX, the root itself.
    /// Opened anew for each scan, delivery or status, so a folder renamed or deleted by
    /// another process is gone for those, as when it was reached by path.
    dir: Option<String>,
    /// cur/ and new/ for work on single messages (read, stat, flag rename, expunge, copy
    /// source), opened at the first such call and kept while the folder is: each then
    /// costs one call per message, as by path, and the messages a view lists are worked on
    /// in the directory they were found in, even if the folder is moved meanwhile.
    cur_for_messages: OnceLock<Arc<Dir>>,
    new_for_messages: OnceLock<Arc<Dir>>,
    /// For the local copy of a subscribed filesystem-shared folder: the sharable folder
    /// its messages are links into (see `sharable`). `None` for every other folder.
    linked: Option<Arc<Linked>>,
    /// The Maildir++ quota of the maildir the folder's messages are in (the user's own, or
    /// for another account's folder shared through the index, its owner's), given by the
    /// store that opened the folder. `None` for a filesystem-shared folder's local copy:
    /// its messages count toward no quota (Courier's README.sharedfolders).
    quota: Option<Quota>,
    /// Opened for a session that has the folder selected read-write (`claiming_recent`).
    claims_recent: bool,
}

/// A folder's directories, opened without following links for one operation.
pub(crate) struct Dirs {
    top: Dir,
    cur: Dir,
    new: Dir,
    tmp: Dir,
}

/// A file placed in tmp/ for delivery, with the name it will get in cur/.
struct Staged {
    /// Its name in tmp/.
    tmp: String,
    basename: String,
    filename: String,
    has_keywords: bool,
    /// Its size as the quota counts it (the `,S=` of its name).
    size: u64,
}

/// Writes `message` into a new file in `tmp` (its mtime the INTERNALDATE, fsynced) and names
/// it for cur/ as Courier names an APPENDed message: `<unique>,S=<size>:2,<flags>`.
fn stage_message(tmp: &Dir, message: &mut NewMessage<'_>) -> Result<Staged, StoreError> {
    let (mut file, name, stamp) = create_exclusive(tmp, "")?;
    let written = io::copy(message.data, &mut file).and_then(|size| {
        if let Some(date) = message.internal_date {
            file.set_modified(time_of(date))?;
        }
        file.sync_all()?;
        Ok((file.metadata()?, size))
    });
    drop(file);
    let (meta, size) = match written {
        Ok(w) => w,
        Err(e) => {
            remove_quietly(tmp, &name);
            return Err(tmp.fail(&name, e));
        }
    };
    let basename = format!("{},S={size}", stamp.message_name(meta.dev(), meta.ino()));
    crash::at("delivery-staged");
    Ok(Staged {
        tmp: name,
        filename: format!("{basename}:2,{}", message.flags.letters()),
        basename,
        has_keywords: !message.keywords.is_empty(),
        size,
    })
}

/// How a delivery was numbered (see `Folder::number_delivered`).
struct Numbered {
    uidvalidity: u32,
    /// The UIDs of the staged messages, in order.
    uids: Vec<u32>,
    /// The delivering session claimed them as recent (see `recent.rs`).
    recent: bool,
}

/// The delivery of `staged`, numbered as `numbered` says, with the keywords it got.
fn delivered(
    staged: &[Staged],
    keyword_sets: &[Vec<String>],
    numbered: &Numbered,
    stamps: Option<(ChangeStamp, ChangeStamp)>,
) -> Delivery {
    let messages = staged
        .iter()
        .zip(&numbered.uids)
        .enumerate()
        .map(|(i, (s, &uid))| MessageEntry {
            uid,
            basename: s.basename.clone(),
            filename: s.filename.clone(),
            flags: InfoFlags::from_filename(&s.filename),
            keywords: keyword_sets.get(i).cloned().unwrap_or_default(),
            recent: numbered.recent,
        })
        .collect();
    Delivery {
        uidvalidity: numbered.uidvalidity,
        messages,
        stamps,
    }
}

/// Names of the message files in `dir`: regular files only, skipping dot files,
/// subdirectories and names that are not UTF-8 (no maildir writer produces those). A link
/// is never a message: it is left where it is and reported; in the local copy of a shared
/// folder (`linked`) only, the links Courier makes for its messages are. Costs no `stat`
/// per file where the file system gives `readdir` the kinds (all local ones and NFS do).
fn list_files(dir: &Dir, linked: Option<&Linked>) -> Result<Vec<String>, StoreError> {
    let entries = dir.entries().map_err(|e| StoreError::io(dir.path(), e))?;
    let mut names = Vec::with_capacity(entries.len());
    for entry in entries {
        let name = match entry.name.into_string() {
            Ok(name) => name,
            Err(raw) => {
                log::warn!(
                    "{}: ignoring non-UTF-8 file name {raw:?}",
                    dir.path().display()
                );
                continue;
            }
        };
        if name.starts_with('.') {
            continue;
        }
        match entry.kind {
            Kind::File => names.push(name),
            Kind::Dir => {}
            Kind::Symlink if linked.is_some_and(|l| l.is_message_link(dir, &name)) => {
                names.push(name)
            }
            kind => report_skipped(&dir.path().join(&name), kind, "a message file"),
        }
    }
    names.sort();
    Ok(names)
}

/// How a read-only scan names a message that is still in new/: relative to
/// cur/, so `open_message` reaches it.
pub const NEW_PREFIX: &str = "../new/";

/// Refuses names that could address anything but a file directly inside cur/.
fn check_file_name(filename: &str) -> Result<(), StoreError> {
    if filename.is_empty() || filename.starts_with('.') || filename.contains(['/', '\0']) {
        return Err(StoreError::InvalidName(filename.to_string()));
    }
    Ok(())
}

/// The directory (`cur` or `new`) and plain file name that a scan's `filename` stands for.
fn locate(filename: &str) -> Result<(&'static str, &str), StoreError> {
    let (sub, bare) = match filename.strip_prefix(NEW_PREFIX) {
        Some(bare) => ("new", bare),
        None => ("cur", filename),
    };
    check_file_name(bare)?;
    Ok((sub, bare))
}

/// Courier's order for messages new to the database: the numeric leading time first, then
/// the bytes of the name, which keeps arrival order.
fn arrival_key(basename: &str) -> (u64, &str) {
    let digits = basename
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(basename.len());
    let time = basename
        .get(..digits)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (time, basename)
}

/// Messages of a scan as `(uid, basename, filename)`.
type Listed = Vec<(u32, String, String)>;

/// Matches cur/ against the database: drops entries whose file is gone, appends files the
/// database does not know (except `exclude`). Returns the new database, the messages as
/// `(uid, basename, filename)` in ascending UID order, and whether the database changed.
fn reconcile(
    db: UidDb,
    cur: &[String],
    exclude: &FastSet<&str>,
) -> Result<(UidDb, Listed, bool), StoreError> {
    let mut by_base: FastMap<&str, &str> = FastMap::default();
    for filename in cur {
        let base = basename_of(filename);
        if exclude.contains(base) {
            continue;
        }
        if let Some(first) = by_base.get(base) {
            log::warn!("two files with base name {base}: {first} and {filename}; using the first");
            continue;
        }
        by_base.insert(base, filename);
    }
    let mut changed = false;
    let mut next = UidDb {
        uidvalidity: db.uidvalidity,
        nextuid: db.nextuid,
        entries: Vec::with_capacity(cur.len()),
    };
    let mut listed = Vec::with_capacity(cur.len());
    for (uid, base) in db.entries {
        match by_base.remove(base.as_str()) {
            Some(filename) => {
                listed.push((uid, base.clone(), filename.to_string()));
                next.entries.push((uid, base));
            }
            None => changed = true,
        }
    }
    let mut unknown: Vec<(&str, &str)> = by_base.into_iter().collect();
    unknown.sort_by(|a, b| arrival_key(a.0).cmp(&arrival_key(b.0)));
    for (base, filename) in unknown {
        let uid = next.append(base)?;
        listed.push((uid, base.to_string(), filename.to_string()));
        changed = true;
    }
    Ok((next, listed, changed))
}

/// readdir(3) may miss an entry that another process renames while it runs
/// (a flag change by a session that takes no lock, as Courier's do not),
/// and a message missing from the listing would lose its UID and come back
/// under a new one. So before the database forgets a message, the
/// directories are listed again: a renamed file turns up under its new name,
/// a deleted one stays gone. `relist` lists them afresh; what it finds for
/// a missing base name is added to `files` and returned.
fn relist_missing(
    db: &UidDb,
    files: &mut Vec<String>,
    relist: &mut dyn FnMut() -> Result<Vec<String>, StoreError>,
) -> Result<Vec<String>, StoreError> {
    let mut added = Vec::new();
    // A file renamed again during the next listing too needs another look;
    // three is far beyond what even a busy folder produces.
    for _ in 0..3 {
        let missing: FastSet<String> = {
            let present: FastSet<&str> = files.iter().map(|f| basename_of(f)).collect();
            db.entries
                .iter()
                .filter(|(_, base)| !present.contains(base.as_str()))
                .map(|(_, base)| base.clone())
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        let found: Vec<String> = relist()?
            .into_iter()
            .filter(|f| missing.contains(basename_of(f)))
            .collect();
        if found.is_empty() {
            break;
        }
        files.extend(found.iter().cloned());
        added.extend(found);
    }
    Ok(added)
}

fn remove_quietly(dir: &Dir, name: &str) {
    if let Err(e) = dir.remove_file(name)
        && e.kind() != io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", dir.path().join(name).display());
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn open_in(dir: &Dir, sub: &str) -> Result<Dir, StoreError> {
    dir.open_dir(sub).map_err(|e| dir.fail(sub, e))
}

/// Shows each staged message (in `tmp`) to `before_placing`, in order; the first error
/// refuses the delivery.
fn show_staged(
    tmp: &Dir,
    staged: &[Staged],
    before_placing: Option<BeforePlacing<'_>>,
) -> Result<(), StoreError> {
    let Some(inspect) = before_placing else {
        return Ok(());
    };
    for s in staged {
        tmp.open_file(&s.tmp)
            .map_err(|e| tmp.fail(&s.tmp, e))
            .and_then(&mut *inspect)?;
    }
    Ok(())
}

impl Folder {
    /// The folder `dir` of the maildir at `root` (`None`: INBOX, the root itself).
    pub(crate) fn new(name: String, root: PathBuf, dir: Option<String>) -> Folder {
        let path = match &dir {
            Some(dir) => root.join(dir),
            None => root.clone(),
        };
        Folder {
            name,
            path,
            root,
            dir,
            cur_for_messages: OnceLock::new(),
            new_for_messages: OnceLock::new(),
            linked: None,
            quota: None,
            claims_recent: false,
        }
    }

    /// The same folder, for a session that has it selected read-write: what it delivers
    /// here is recent for that session (see `recent.rs`).
    pub fn claiming_recent(mut self) -> Folder {
        self.claims_recent = true;
        self
    }

    /// The same folder, its messages counted by `quota`, its maildir's (see `quota`).
    pub(crate) fn counted_by(mut self, quota: Quota) -> Folder {
        self.quota = Some(quota);
        self
    }

    /// The local copy at `dir` (`shared-folders/name/F`) of the maildir at `root`, whose
    /// messages are links into the sharable folder `linked`.
    pub(crate) fn linked(name: String, root: PathBuf, dir: String, linked: Linked) -> Folder {
        let mut folder = Folder::new(name, root, Some(dir));
        folder.linked = Some(Arc::new(linked));
        folder
    }

    /// The same folder under the name a client uses for it (`#shared.bob.Work` for Bob's
    /// `INBOX.Work`): what `name()` answers.
    pub fn shown_as(mut self, name: &str) -> Folder {
        self.name = name.to_string();
        self
    }

    /// A filesystem-shared folder whose sharable folder this user may not change: it is
    /// served read-only, as Courier serves it.
    pub fn shared_read_only(&self) -> bool {
        self.linked.as_ref().is_some_and(|l| !l.writable())
    }

    /// The message files in `dir`, one of this folder's.
    fn list(&self, dir: &Dir) -> Result<Vec<String>, StoreError> {
        list_files(dir, self.linked.as_deref())
    }

    /// A shared folder's local copy catches up with its sharable folder.
    fn sync_linked(&self, dirs: &Dirs) -> Result<(), StoreError> {
        match &self.linked {
            Some(linked) => linked.sync(&dirs.top, &dirs.cur, &dirs.new, &dirs.tmp),
            None => Ok(()),
        }
    }

    /// The canonical IMAP name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder's directory (for messages, statfs and watches; files below it are reached
    /// only through the store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` below the folder, relative to the root.
    fn rel(&self, rel: &str) -> String {
        match &self.dir {
            Some(dir) => format!("{dir}/{rel}"),
            None => rel.to_string(),
        }
    }

    /// The maildir root, opened for one operation. Held open no longer: a session keeps
    /// no descriptor it did not need (and a folder moved meanwhile is gone, as by path).
    fn open_root(&self) -> Result<Dir, StoreError> {
        Dir::open_root(&self.root).map_err(|e| StoreError::io(&self.root, e))
    }

    /// The folder's own directory.
    fn top(&self) -> Result<Dir, StoreError> {
        let root = self.open_root()?;
        match &self.dir {
            None => Ok(root),
            Some(dir) => open_in(&root, dir),
        }
    }

    /// One of `cur`, `new`, `tmp`: the root, then the rest in one call.
    fn open_sub(&self, sub: &str) -> Result<Dir, StoreError> {
        open_in(&self.open_root()?, &self.rel(sub))
    }

    /// cur/ or new/ for work on single messages (see `cur_for_messages`).
    fn message_dir(&self, sub: &str) -> Result<&Arc<Dir>, StoreError> {
        let cell = if sub == "new" {
            &self.new_for_messages
        } else {
            &self.cur_for_messages
        };
        if let Some(dir) = cell.get() {
            return Ok(dir);
        }
        let opened = Arc::new(self.open_sub(sub)?);
        Ok(cell.get_or_init(|| opened))
    }

    /// `cur/ new/ tmp/` and the folder itself, for an operation that needs several.
    fn dirs(&self) -> Result<Dirs, StoreError> {
        let top = self.top()?;
        Ok(Dirs {
            cur: open_in(&top, "cur")?,
            new: open_in(&top, "new")?,
            tmp: open_in(&top, "tmp")?,
            top,
        })
    }

    /// Read-write scan (SELECT/NOOP): purge old tmp/ files, move new/ to cur/, assign UIDs
    /// under the dot-lock and write the database if it changed, load keywords.
    pub fn scan(&self) -> Result<ScanResult, StoreError> {
        let dirs = self.dirs()?;
        purge_tmp(&dirs.tmp);
        self.sync_linked(&dirs)?;
        let moved = move_new_to_cur(&dirs, self.linked.as_deref())?;
        let taken = SystemTime::now();
        let before = self.change_stamp();
        let unlocked = if moved.is_empty() {
            self.rescan_unlocked(&dirs)?
        } else {
            None
        };
        let (db, listed, recent_from) = if let Some(found) = unlocked {
            found
        } else {
            let _lock = DotLock::acquire(&dirs.tmp)?;
            let mut cur = self.list(&dirs.cur)?;
            let (db, fresh) = match uiddb::read(&dirs.top)? {
                DbState::Valid(db) => (db, false),
                DbState::Missing => {
                    if !cur.is_empty() {
                        log::warn!(
                            "{} is missing: numbering {} messages from 1",
                            self.path.join(uiddb::UIDDB_NAME).display(),
                            cur.len()
                        );
                    }
                    (UidDb::fresh(), true)
                }
                DbState::Corrupt => (UidDb::fresh(), true),
            };
            relist_missing(&db, &mut cur, &mut || self.list(&dirs.cur))?;
            let next_before = db.nextuid;
            let (db, listed, changed) = reconcile(db, &cur, &FastSet::default())?;
            if changed || fresh {
                uiddb::write(&dirs.top, &dirs.tmp, &db)?;
            }
            // This session is told about everything listed now: it claims what nobody was.
            // A renumbered folder starts afresh: nothing in it was told to anyone under
            // this UIDVALIDITY, but it was all there before (as Courier shows it).
            let recorded = recent::read(&dirs.top, db.uidvalidity);
            let recent_from = recorded.unwrap_or(if fresh { db.nextuid } else { next_before });
            recent::raise(&dirs.top, &dirs.tmp, db.uidvalidity, recorded, db.nextuid);
            (db, listed, recent_from)
        };
        let recent = Recent {
            moved: &moved,
            from_uid: recent_from,
        };
        let result = self.build_result(&dirs, db, listed, recent, true)?;
        Ok(self.stamped(result, before, taken))
    }

    /// The usual rescan, once another session has numbered what arrived: every file in cur/
    /// is in the database, every entry has its file, and what is recent has been claimed
    /// (`recent.rs`). The locked path would then write nothing, so the dot-lock is not
    /// taken: a thousand IDLE sessions woken by one delivery into a folder they share
    /// would otherwise queue for it one after another (BENCHMARKS.md, IDLE at scale).
    /// cur/ is listed before the database is read, so a file numbered meanwhile is at
    /// worst unknown to the listing's reader, never listed without its entry; anything
    /// else (a file or an entry missing, a claim due) returns `None` and the caller
    /// takes the lock.
    fn rescan_unlocked(&self, dirs: &Dirs) -> Result<Option<(UidDb, Listed, u32)>, StoreError> {
        let cur = self.list(&dirs.cur)?;
        let DbState::Valid(db) = uiddb::read(&dirs.top)? else {
            return Ok(None);
        };
        let Some(recorded) = recent::read(&dirs.top, db.uidvalidity) else {
            return Ok(None);
        };
        if recorded < db.nextuid {
            return Ok(None);
        }
        let (db, listed, changed) = reconcile(db, &cur, &FastSet::default())?;
        Ok((!changed).then_some((db, listed, recorded)))
    }

    /// `result` with the stamp taken at `taken` before it was listed, settled when the
    /// folder's stamp is still the same now.
    fn stamped(
        &self,
        mut result: ScanResult,
        before: Option<ChangeStamp>,
        taken: SystemTime,
    ) -> ScanResult {
        result.settled = before
            .as_ref()
            .is_some_and(|b| b.settled(taken) && self.change_stamp().as_ref() == Some(b));
        result.stamp = before;
        result
    }

    /// Read-only scan (EXAMINE): leaves the messages in new/ where they are
    /// (moving them would take \Recent from the session that SELECTs next),
    /// but they exist for the client too, so they and any cur/ file unknown to
    /// the UID database are numbered in the database like any other: a number
    /// given to a client must never later name another message. Only when the
    /// database cannot be written (a read-only file system) are the numbers
    /// kept in memory. Entries for files still in new/ are harmless to
    /// Courier, which drops and renumbers them when it moves the file.
    pub fn scan_read_only(&self) -> Result<ScanResult, StoreError> {
        let dirs = self.dirs()?;
        self.sync_linked(&dirs)?;
        let taken = SystemTime::now();
        let before = self.change_stamp();
        let mut files = self.list(&dirs.cur)?;
        let new = self.list(&dirs.new)?;
        let mut in_new: FastSet<String> = new.iter().cloned().collect();
        files.extend(new);
        // Lists cur/ and new/ again, noting what is in new/.
        let relist = |in_new: &mut FastSet<String>| -> Result<Vec<String>, StoreError> {
            let mut again = self.list(&dirs.cur)?;
            let new = self.list(&dirs.new)?;
            in_new.extend(new.iter().cloned());
            again.extend(new);
            Ok(again)
        };
        let (db, listed) = match DotLock::acquire(&dirs.tmp) {
            Ok(_lock) => {
                let (db, fresh) = match uiddb::read(&dirs.top)? {
                    DbState::Valid(db) => (db, false),
                    DbState::Missing | DbState::Corrupt => (UidDb::fresh(), true),
                };
                relist_missing(&db, &mut files, &mut || relist(&mut in_new))?;
                let (db, listed, changed) = reconcile(db, &files, &FastSet::default())?;
                if (changed || fresh)
                    && let Err(e) = uiddb::write(&dirs.top, &dirs.tmp, &db)
                {
                    log::warn!(
                        "EXAMINE of {}: numbering in memory only: {e}",
                        self.path.display()
                    );
                }
                (db, listed)
            }
            Err(e) => {
                log::warn!(
                    "EXAMINE of {}: no lock ({e}); numbering in memory only",
                    self.path.display()
                );
                // No second wait for the lock (db_for_reading would take it
                // to create a missing database): read what is there.
                let db = match uiddb::read(&dirs.top)? {
                    DbState::Valid(db) => db,
                    DbState::Missing | DbState::Corrupt => UidDb::fresh(),
                };
                relist_missing(&db, &mut files, &mut || relist(&mut in_new))?;
                let (db, listed, _) = reconcile(db, &files, &FastSet::default())?;
                (db, listed)
            }
        };
        let all_in_cur = in_new.is_empty();
        let listed = listed
            .into_iter()
            .map(|(uid, basename, filename)| {
                // Names are relative to cur/; this reaches new/.
                let filename = if in_new.contains(&filename) {
                    format!("{NEW_PREFIX}{filename}")
                } else {
                    filename
                };
                (uid, basename, filename)
            })
            .collect();
        // Shown as the next read-write session will be told of them, claiming nothing.
        let in_new: FastSet<String> = in_new.iter().map(|f| basename_of(f).to_string()).collect();
        let recent = Recent {
            moved: &in_new,
            from_uid: recent::read(&dirs.top, db.uidvalidity).unwrap_or(db.nextuid),
        };
        let result = self.build_result(&dirs, db, listed, recent, false)?;
        let mut result = self.stamped(result, before, taken);
        result.settled &= all_in_cur;
        Ok(result)
    }

    /// For a session opening the folder without a scan (from its index, which lists the
    /// messages numbered below `uidnext` under `uidvalidity`): the first UID that is recent
    /// for it, as a scan would have found (see `recent.rs`). With `claim` (read-write), what
    /// nobody was told of is claimed for this session under the lock, as a scan claims it;
    /// without, nothing changes. The file is read first without the lock, so an open with
    /// nothing to claim costs one small read.
    pub fn recent_without_scan(
        &self,
        uidvalidity: u32,
        uidnext: u32,
        claim: bool,
    ) -> Result<u32, StoreError> {
        let top = self.top()?;
        let recorded = recent::read(&top, uidvalidity);
        if !claim || recorded.is_some_and(|r| r >= uidnext) {
            return Ok(recorded.unwrap_or(uidnext).min(uidnext));
        }
        let dirs = self.dirs()?;
        let _lock = DotLock::acquire(&dirs.tmp)?;
        // Read again under the lock: another session may have claimed them meanwhile.
        let recorded = recent::read(&dirs.top, uidvalidity);
        // No number on file: nothing was numbered since a scan could have claimed it (the
        // index describes the folder), so nothing is recent, as for a scan.
        let from = recorded.unwrap_or(uidnext).min(uidnext);
        recent::raise(&dirs.top, &dirs.tmp, uidvalidity, recorded, uidnext);
        Ok(from)
    }

    /// STATUS counts, without moving new/. UIDNEXT counts every file the database does not
    /// know yet (cur/ and new/). A missing database is created as in `scan_read_only`, so
    /// repeated STATUS calls report the same UIDVALIDITY.
    ///
    /// A folder its index describes is counted from the index alone, without listing cur/
    /// or reading the UID database: the answer is the same, since the index lists exactly
    /// what a scan would find (`Index::describes`).
    pub fn status(&self) -> Result<FolderStatus, StoreError> {
        Ok(self.status_stamped()?.0)
    }

    /// [`Folder::status`], and when the folder was listed, its change stamp taken before
    /// the UID database was read and cur/ and new/ were listed (and the moment it was
    /// taken): an equal, settled stamp later proves the counts still hold. A database this
    /// call had to create is made before the stamp is taken.
    pub(crate) fn status_stamped(
        &self,
    ) -> Result<(FolderStatus, Option<(ChangeStamp, SystemTime)>), StoreError> {
        if let Some(status) = self.status_from_index() {
            return Ok((status, None));
        }
        let dirs = self.dirs()?;
        self.sync_linked(&dirs)?;
        let mut taken = SystemTime::now();
        let mut stamp = self.change_stamp();
        let mut db = self.db_for_reading(&dirs)?;
        if stamp.as_ref().is_some_and(ChangeStamp::without_uiddb) {
            taken = SystemTime::now();
            stamp = self.change_stamp();
            db = self.db_for_reading(&dirs)?;
        }
        let stamped = stamp.map(|s| (s, taken));
        let cur = self.list(&dirs.cur)?;
        let new = self.list(&dirs.new)?;
        let known: FastSet<&str> = db.entries.iter().map(|(_, b)| b.as_str()).collect();
        // Recent: what is in new/, and what the database numbered from the first recent UID
        // on and is still in cur/ (see `recent.rs`).
        let recent_from = recent::read(&dirs.top, db.uidvalidity).unwrap_or(db.nextuid);
        let numbered_recent: FastSet<&str> = db
            .entries
            .iter()
            .filter(|(uid, _)| *uid >= recent_from)
            .map(|(_, b)| b.as_str())
            .collect();
        let recent_in_cur = if numbered_recent.is_empty() {
            0
        } else {
            cur.iter()
                .filter(|f| numbered_recent.contains(basename_of(f)))
                .count()
        };
        // Files in new/ may already be numbered (an EXAMINE numbers them).
        let unknown = cur
            .iter()
            .chain(new.iter())
            .filter(|f| !known.contains(basename_of(f)))
            .count();
        let mut unseen = 0usize;
        let mut deleted = 0usize;
        for name in cur.iter().chain(new.iter()) {
            let flags = InfoFlags::from_filename(name);
            if !flags.has(b'S') {
                unseen += 1;
            }
            if flags.has(b'T') {
                deleted += 1;
            }
        }
        let status = FolderStatus {
            messages: to_u32(cur.len() + new.len()),
            recent: to_u32(new.len() + recent_in_cur),
            unseen: to_u32(unseen),
            deleted: to_u32(deleted),
            uidnext: db.nextuid.saturating_add(to_u32(unknown)),
            uidvalidity: db.uidvalidity,
            rfc822_size: None,
            highest_modseq: None,
        };
        Ok((status, stamped))
    }

    /// The bytes of the folder's recent mark (`recent.rs`), which RECENT counts from and
    /// the change stamp does not cover; `None` when there is none or it cannot be read.
    pub(crate) fn recent_mark(&self) -> Option<Vec<u8>> {
        let mut file = self.open_own_file(super::recent::RECENT_NAME).ok()??;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut file, &mut bytes).ok()?;
        Some(bytes)
    }

    /// [`Folder::status`] from the index, when it describes the folder; `None` otherwise
    /// (or when a record cannot be read), and the folder is then looked at.
    fn status_from_index(&self) -> Option<FolderStatus> {
        let mut index = Index::open(self)?;
        if !index.describes(self) {
            return None;
        }
        let header = index.header().clone();
        // new/ is empty (the index describes the folder), so what is recent is what was
        // numbered from the first recent UID on, as in the scan below.
        let recent_from = self
            .recent_without_scan(header.uidvalidity, header.uidnext, false)
            .ok()?;
        let mut counts = FolderStatus {
            messages: index.len(),
            recent: 0,
            unseen: 0,
            deleted: 0,
            uidnext: header.uidnext,
            uidvalidity: header.uidvalidity,
            rfc822_size: Some(0),
            highest_modseq: Some(header.highest_modseq),
        };
        for i in 0..index.len() {
            let r = index.record(i).ok()?;
            let bits = r.flag_bits();
            counts.unseen += u32::from(bits & flag_bit(b'S') == 0);
            counts.deleted += u32::from(bits & flag_bit(b'T') != 0);
            counts.recent += u32::from(r.uid >= recent_from);
            counts.rfc822_size = counts.rfc822_size.zip(r.facts.size).map(|(a, b)| a + b);
        }
        Some(counts)
    }

    /// APPEND of one message from memory: store `data` as given in cur/ with `flags`,
    /// keywords and INTERNALDATE (`internal_date`, seconds since the epoch, becomes the
    /// mtime); returns `(uidvalidity, uid)`. No quota is consulted (see
    /// [`Folder::deliver_messages`]).
    pub fn deliver(
        &self,
        data: &[u8],
        flags: &InfoFlags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> Result<(u32, u32), StoreError> {
        let mut message = NewMessage {
            data: &mut &data[..],
            flags: flags.clone(),
            keywords: keywords.to_vec(),
            internal_date,
        };
        let delivery = self.deliver_messages(std::slice::from_mut(&mut message), None, None)?;
        let uid = delivery
            .messages
            .first()
            .map(|m| m.uid)
            .ok_or_else(|| StoreError::Cannot("no UID assigned".to_string()))?;
        Ok((delivery.uidvalidity, uid))
    }

    /// APPEND and MULTIAPPEND (RFC 3502), all or nothing: each message is read from its
    /// `data` as it is written into tmp/, so that a large one never has to be in memory
    /// whole, and only once all are there are they put in place together and numbered in
    /// order. With `quota`, what this folder counts of them is admitted as one addition
    /// before any is put in place (else [`StoreError::OverQuota`] and nothing is left
    /// behind) and recorded after. With `before_placing`, each is shown to it in order
    /// before any is placed.
    pub fn deliver_messages(
        &self,
        messages: &mut [NewMessage<'_>],
        quota: Option<&Quota>,
        before_placing: Option<BeforePlacing<'_>>,
    ) -> Result<Delivery, StoreError> {
        let dirs = self.dirs()?;
        let shared = self.sharable_dirs()?;
        let into_tmp = shared.as_ref().map_or(&dirs.tmp, |s| &s.tmp);
        let mut staged: Vec<Staged> = Vec::with_capacity(messages.len());
        for message in messages.iter_mut() {
            match stage_message(into_tmp, message) {
                Ok(s) => staged.push(s),
                Err(e) => {
                    for s in &staged {
                        remove_quietly(into_tmp, &s.tmp);
                    }
                    return Err(e);
                }
            }
        }
        let keyword_sets: Vec<Vec<String>> = messages.iter().map(|m| m.keywords.clone()).collect();
        self.place(
            &dirs,
            shared.as_ref(),
            staged,
            &keyword_sets,
            quota,
            before_placing,
        )
    }

    /// COPY/MOVE target side, all or nothing: every message of `source` named in `messages`
    /// (by its scan file name, with the flags and keywords it gets here) becomes a new
    /// message in cur/ keeping the source's `,S=` and mtime; the delivery lists them in
    /// source order. With `quota`, what this folder counts of them is admitted as one
    /// addition before any is put in place, and recorded after, as for `deliver_messages`; with
    /// `before_placing`, each is shown to it in order before any is placed.
    pub fn deliver_copies(
        &self,
        source: &Folder,
        messages: &[(String, InfoFlags, Vec<String>)],
        quota: Option<&Quota>,
        before_placing: Option<BeforePlacing<'_>>,
    ) -> Result<Delivery, StoreError> {
        let dirs = self.dirs()?;
        let shared = self.sharable_dirs()?;
        let into_tmp = shared.as_ref().map_or(&dirs.tmp, |s| &s.tmp);
        let mut staged = Vec::with_capacity(messages.len());
        for (filename, flags, keywords) in messages {
            let step = locate(filename).and_then(|(sub, bare)| {
                let (from, name) = source.message_source(sub, bare)?;
                // A sharable folder gets copies of its own, readable by those it is
                // shared with, never a second name for a file of this user's.
                let link_ok = shared.is_none();
                self.stage_copy(into_tmp, &from, &name, flags, !keywords.is_empty(), link_ok)
            });
            match step {
                Ok(s) => staged.push(s),
                Err(e) => {
                    for s in &staged {
                        remove_quietly(into_tmp, &s.tmp);
                    }
                    return Err(e);
                }
            }
        }
        let keyword_sets: Vec<Vec<String>> = messages.iter().map(|(_, _, k)| k.clone()).collect();
        self.place(
            &dirs,
            shared.as_ref(),
            staged,
            &keyword_sets,
            quota,
            before_placing,
        )
    }

    /// The sharable folder's directories, for the local copy of a shared folder: where
    /// APPEND and COPY put messages.
    fn sharable_dirs(&self) -> Result<Option<SharableDirs>, StoreError> {
        self.linked.as_ref().map(|l| l.dirs()).transpose()
    }

    /// The directory and name of the file a scan's `sub/bare` stands for: itself, or for a
    /// link of a shared folder's local copy, the sharable folder's file.
    fn message_source(&self, sub: &str, bare: &str) -> Result<(Arc<Dir>, String), StoreError> {
        let dir = self.message_dir(sub)?.clone();
        let Some(linked) = &self.linked else {
            return Ok((dir, bare.to_string()));
        };
        match linked.resolve(&dir, bare)? {
            Some(Source::Local) => Ok((dir, bare.to_string())),
            Some(Source::Shared(cur, real)) => Ok((cur, real)),
            None => Err(dir.fail(bare, io::Error::from(io::ErrorKind::NotFound))),
        }
    }

    /// Puts a copy of `name` in `from` into `tmp`: a hard link when `link_ok` and possible
    /// (link(2) never follows a link, and the linked inode must be the regular file looked
    /// at), else a byte copy of the file opened without following one.
    fn stage_copy(
        &self,
        tmp: &Dir,
        from: &Dir,
        name: &str,
        flags: &InfoFlags,
        has_keywords: bool,
        link_ok: bool,
    ) -> Result<Staged, StoreError> {
        let source = from.stat(name).map_err(|e| from.fail(name, e))?;
        let kind = Kind::of(&source);
        if kind != Kind::File {
            return Err(from.fail(name, not_a_file(kind)));
        }
        let into = tmp;
        let (tmp, stamp, (dev, ino)) = loop {
            let stamp = Stamp::now();
            let tmp = stamp.tmp_name("");
            let linking = if link_ok {
                from.hard_link(name, into, &tmp)
            } else {
                Err(io::Error::from(io::ErrorKind::Unsupported))
            };
            match linking {
                Ok(()) => {
                    let linked = match into.stat(&tmp) {
                        Ok(stat) => identity_of(&stat),
                        Err(e) => {
                            remove_quietly(into, &tmp);
                            return Err(into.fail(&tmp, e));
                        }
                    };
                    // The name may have changed hands since it was looked at (a link put
                    // in its place): only the very file checked may be linked.
                    if linked != identity_of(&source) {
                        remove_quietly(into, &tmp);
                        return Err(from.fail(
                            name,
                            io::Error::other("the file was replaced while being copied"),
                        ));
                    }
                    break (tmp, stamp, linked);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(from.fail(name, e));
                }
                // Cross-device, link limits or a file system without links: copy instead.
                Err(_) => {
                    let mut input = from.open_file(name).map_err(|e| from.fail(name, e))?;
                    let meta = input.metadata().map_err(|e| from.fail(name, e))?;
                    break copy_to_tmp(into, &mut input, &meta)?;
                }
            }
        };
        let size = size_from_name(name).unwrap_or(u64::try_from(source.st_size).unwrap_or(0));
        let basename = format!("{},S={size}", stamp.message_name(dev, ino));
        crash::at("copy-staged");
        Ok(Staged {
            tmp,
            filename: format!("{basename}:2,{}", flags.letters()),
            basename,
            has_keywords,
            size,
        })
    }

    /// Writes keyword updates, renames every staged file into cur/ and gives them UIDs in one
    /// database update; undoes everything on failure. With `quota`, the whole delivery is
    /// admitted first and recorded once it is in place; `before_placing` sees each message
    /// after that and before any is placed (and before the lock is taken: it may be slow).
    fn commit(
        &self,
        dirs: &Dirs,
        staged: Vec<Staged>,
        keyword_sets: &[Vec<String>],
        quota: Option<&Quota>,
        before_placing: Option<BeforePlacing<'_>>,
    ) -> Result<Delivery, StoreError> {
        let mut written_keywords: Vec<&str> = Vec::new();
        let mut placed: Vec<&str> = Vec::new();
        let undo = |placed: &[&str], written_keywords: &[&str], staged: &[Staged]| {
            for name in placed {
                remove_quietly(&dirs.cur, name);
            }
            for basename in written_keywords {
                keywords::remove_update(&dirs.top, basename);
            }
            for s in staged {
                remove_quietly(&dirs.tmp, &s.tmp);
            }
        };
        // Before anything is visible: a refused delivery leaves nothing but what `undo` removes.
        let mut charge = QuotaUse::default();
        if let Some(quota) = quota
            && self.counts_toward_quota()
        {
            for s in &staged {
                charge += quota::charge_of(&s.filename, || Some(s.size));
            }
            if let Err(e) = quota.admit(charge) {
                undo(&placed, &written_keywords, &staged);
                return Err(e);
            }
        }
        if let Err(e) = show_staged(&dirs.tmp, &staged, before_placing) {
            undo(&placed, &written_keywords, &staged);
            return Err(e);
        }
        // What the folder looked like before this delivery changed anything: with the stamp
        // taken once it is numbered, a view of the folder can tell the delivery's own
        // changes from others' (see `Delivery::stamps`).
        let before = self.change_stamp();
        // Keywords first, so a message never appears without its keywords.
        for (s, set) in staged.iter().zip(keyword_sets) {
            if s.has_keywords {
                if let Err(e) = keywords::write_update(&dirs.top, &dirs.tmp, &s.basename, set) {
                    undo(&placed, &written_keywords, &staged);
                    return Err(e);
                }
                written_keywords.push(&s.basename);
            }
        }
        // The renames happen under the lock: a scan of another session must not find the new
        // files in cur/ and number them before we do.
        let lock = match DotLock::acquire(&dirs.tmp) {
            Ok(lock) => lock,
            Err(e) => {
                undo(&placed, &written_keywords, &staged);
                return Err(e);
            }
        };
        for s in &staged {
            if let Err(e) = dirs.tmp.rename(&s.tmp, &dirs.cur, &s.filename) {
                undo(&placed, &written_keywords, &staged);
                return Err(dirs.cur.fail(&s.filename, e));
            }
            placed.push(&s.filename);
            crash::at("delivery-renamed");
        }
        dirs.cur.sync();
        crash::at("delivery-placed");
        let basenames: Vec<&str> = staged.iter().map(|s| s.basename.as_str()).collect();
        let result = self.number_delivered(dirs, &basenames);
        let after = self.change_stamp();
        drop(lock);
        match (&result, quota) {
            (Err(_), _) => undo(&placed, &written_keywords, &staged),
            (Ok(_), Some(quota)) => quota.record(charge),
            (Ok(_), None) => {}
        }
        let numbered = result?;
        Ok(delivered(
            &staged,
            keyword_sets,
            &numbered,
            before.zip(after),
        ))
    }

    /// Puts staged messages in place: `commit`, or for a shared folder's local copy
    /// (`shared` the sharable folder's directories) `commit_linked`, which consults no
    /// quota: a local copy's messages count toward none.
    fn place(
        &self,
        dirs: &Dirs,
        shared: Option<&SharableDirs>,
        staged: Vec<Staged>,
        keyword_sets: &[Vec<String>],
        quota: Option<&Quota>,
        before_placing: Option<BeforePlacing<'_>>,
    ) -> Result<Delivery, StoreError> {
        match (shared, &self.linked) {
            (Some(shared), Some(linked)) => {
                self.commit_linked(dirs, shared, linked, staged, keyword_sets, before_placing)
            }
            _ => self.commit(dirs, staged, keyword_sets, quota, before_placing),
        }
    }

    /// `commit` for the local copy of a shared folder: the messages go into the sharable
    /// folder's cur/ under their names with flags (where Courier's APPEND leaves them),
    /// and the local copy gets their links at once, in its cur/ with the flags and
    /// keywords asked for, numbered in its own UID database: APPENDUID and COPYUID name
    /// the messages as this user's folder numbers them (Courier's answer numbers them in
    /// the sharable folder, which no client sees). Undone on failure.
    fn commit_linked(
        &self,
        dirs: &Dirs,
        shared: &SharableDirs,
        linked: &Linked,
        staged: Vec<Staged>,
        keyword_sets: &[Vec<String>],
        before_placing: Option<BeforePlacing<'_>>,
    ) -> Result<Delivery, StoreError> {
        let mut in_shared: Vec<&str> = Vec::new();
        let mut written_keywords: Vec<&str> = Vec::new();
        let mut in_local: Vec<&str> = Vec::new();
        let undo = |in_shared: &[&str], written_keywords: &[&str], in_local: &[&str]| {
            for name in in_local {
                remove_quietly(&dirs.cur, name);
            }
            for basename in written_keywords {
                keywords::remove_update(&dirs.top, basename);
            }
            for name in in_shared {
                remove_quietly(&shared.cur, name);
            }
            for s in &staged {
                remove_quietly(&shared.tmp, &s.tmp);
            }
        };
        if let Err(e) = show_staged(&shared.tmp, &staged, before_placing) {
            undo(&in_shared, &written_keywords, &in_local);
            return Err(e);
        }
        for s in &staged {
            if let Err(e) = shared.tmp.rename(&s.tmp, &shared.cur, &s.filename) {
                undo(&in_shared, &written_keywords, &in_local);
                return Err(shared.cur.fail(&s.filename, e));
            }
            in_shared.push(&s.filename);
        }
        shared.cur.sync();
        for (s, set) in staged.iter().zip(keyword_sets) {
            if s.has_keywords {
                if let Err(e) = keywords::write_update(&dirs.top, &dirs.tmp, &s.basename, set) {
                    undo(&in_shared, &written_keywords, &in_local);
                    return Err(e);
                }
                written_keywords.push(&s.basename);
            }
        }
        let lock = match DotLock::acquire(&dirs.tmp) {
            Ok(lock) => lock,
            Err(e) => {
                undo(&in_shared, &written_keywords, &in_local);
                return Err(e);
            }
        };
        for s in &staged {
            let target = linked.message_link(&s.filename);
            if let Err(e) = place_link(&dirs.tmp, &dirs.cur, &target, &s.filename) {
                undo(&in_shared, &written_keywords, &in_local);
                return Err(e);
            }
            in_local.push(&s.filename);
        }
        dirs.cur.sync();
        let basenames: Vec<&str> = staged.iter().map(|s| s.basename.as_str()).collect();
        let result = self.number_delivered(dirs, &basenames);
        drop(lock);
        if result.is_err() {
            undo(&in_shared, &written_keywords, &in_local);
        }
        let numbered = result?;
        // A view of the local copy rescans: its stamp follows the sharable folder too.
        Ok(delivered(&staged, keyword_sets, &numbered, None))
    }

    /// Gives freshly delivered messages the next UIDs at once (for APPENDUID/COPYUID): by
    /// adding their lines to the UID database in place, at a cost that does not grow with
    /// the folder (`uiddb::append_entries`), or where that cannot be done safely by
    /// rewriting it; and, in the same locked step, settles whether they are recent for the
    /// delivering session (`recent::after_delivery`). The caller holds the lock.
    fn number_delivered(&self, dirs: &Dirs, basenames: &[&str]) -> Result<Numbered, StoreError> {
        let (uidvalidity, uids) = match uiddb::append_entries(&dirs.top, basenames)? {
            Some(numbered) => numbered,
            None => self.assign_delivered(dirs, basenames)?,
        };
        let recent =
            recent::after_delivery(&dirs.top, &dirs.tmp, uidvalidity, &uids, self.claims_recent);
        Ok(Numbered {
            uidvalidity,
            uids,
            recent,
        })
    }

    /// `number_delivered` by rewriting the whole database: read it, add the messages,
    /// write it back. The caller holds the lock.
    fn assign_delivered(
        &self,
        dirs: &Dirs,
        basenames: &[&str],
    ) -> Result<(u32, Vec<u32>), StoreError> {
        let mut db = match uiddb::read(&dirs.top)? {
            DbState::Valid(db) => db,
            DbState::Missing | DbState::Corrupt => {
                // Number what is already there first so arrival order is kept.
                let cur = self.list(&dirs.cur)?;
                let exclude: FastSet<&str> = basenames.iter().copied().collect();
                reconcile(UidDb::fresh(), &cur, &exclude)?.0
            }
        };
        // A writer that does not take the lock (Courier with IMAP_USELOCKS=0) may have
        // numbered a file already: keep its UID rather than list the file twice.
        let known: FastMap<String, u32> = db
            .entries
            .iter()
            .map(|(uid, b)| (b.clone(), *uid))
            .collect();
        let mut uids = Vec::with_capacity(basenames.len());
        for basename in basenames {
            let uid = match known.get(*basename) {
                Some(uid) => *uid,
                None => db.append(basename)?,
            };
            uids.push(uid);
        }
        uiddb::write(&dirs.top, &dirs.tmp, &db)?;
        Ok((db.uidvalidity, uids))
    }

    /// The current name in cur/ of the message `filename` was the name of:
    /// `filename` itself when it is still there, else the file with the
    /// same base name (another process changed its flags), else `None`
    /// (expunged).
    pub fn current_name(&self, filename: &str) -> Result<Option<String>, StoreError> {
        // A read-only view names messages still in new/ as `../new/<name>`.
        let (sub, bare) = locate(filename)?;
        let dir = self.message_dir(sub)?;
        match dir.stat(bare) {
            Ok(_) => return Ok(Some(filename.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(dir.fail(bare, e)),
        }
        let cur = self.message_dir("cur")?;
        let base = basename_of(bare);
        let entries = cur.entries().map_err(|e| StoreError::io(cur.path(), e))?;
        for entry in entries {
            let listed =
                entry.kind == Kind::File || (entry.kind == Kind::Symlink && self.linked.is_some());
            if !listed {
                continue;
            }
            if let Some(name) = entry.name.to_str()
                && basename_of(name) == base
            {
                return Ok(Some(name.to_string()));
            }
        }
        Ok(None)
    }

    /// Opens the message a scan named `filename` for reading, following a rename by another
    /// process (a flag change) to its current name. Returns the file and that name, or
    /// `None` if the message is gone. A link in its place, or on the way to it, is refused
    /// with an error that names it: no message is ever read through a link.
    pub fn open_message(&self, filename: &str) -> Result<Option<OpenedMessage>, StoreError> {
        let opened = |(file, stat): (File, nix::sys::stat::FileStat), name: String| OpenedMessage {
            file,
            name,
            len: u64::try_from(stat.st_size).unwrap_or(0),
            mtime: stat.st_mtime,
        };
        if let Some(found) = self.open_message_file(filename)? {
            return Ok(Some(opened(found, filename.to_string())));
        }
        let Some(current) = self.current_name(filename)? else {
            return Ok(None);
        };
        Ok(self
            .open_message_file(&current)?
            .map(|found| opened(found, current)))
    }

    /// Opens the file `filename` names; `None` if there is none by that name.
    fn open_message_file(
        &self,
        filename: &str,
    ) -> Result<Option<(File, nix::sys::stat::FileStat)>, StoreError> {
        let (sub, bare) = locate(filename)?;
        let (dir, name) = match self.message_source(sub, bare) {
            Ok(found) => found,
            Err(StoreError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        match dir.open_file_stat(&name) {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(dir.fail(&name, e)),
        }
    }

    /// `lstat` of the message file `name` in `dir` (one of this folder's), or for a link of
    /// a shared folder's local copy, of the sharable folder's file; `None` when it is gone.
    fn stat_message(
        &self,
        dir: &Dir,
        name: &str,
    ) -> Result<Option<nix::sys::stat::FileStat>, StoreError> {
        if let Some(linked) = &self.linked
            && let Some(Source::Shared(cur, real)) = linked.resolve(dir, name)?
        {
            return match cur.stat(&real) {
                Ok(stat) => Ok(Some(stat)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(cur.fail(&real, e)),
            };
        }
        match dir.stat(name) {
            Ok(stat) => Ok(Some(stat)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(dir.fail(name, e)),
        }
    }

    /// INTERNALDATE of the message a scan named `filename`: its file's modification time in
    /// seconds since the epoch (as for Courier). `None` if there is no file by that name.
    pub fn internal_date(&self, filename: &str) -> Result<Option<i64>, StoreError> {
        let (sub, bare) = locate(filename)?;
        let dir = self.message_dir(sub)?;
        match self.stat_message(dir, bare)? {
            Some(stat) if Kind::of(&stat) == Kind::File => Ok(Some(stat.st_mtime)),
            Some(stat) => Err(dir.fail(bare, not_a_file(Kind::of(&stat)))),
            None => Ok(None),
        }
    }

    /// SAVEDATE (RFC 8514) of the message a scan named `filename`: when it was saved into
    /// this folder. The unique name begins with the seconds at which it was made (by the
    /// MTA, APPEND, or COPY, which gives the copy a name of its own), and that name, unlike
    /// the file's ctime, survives flag renames; Dovecot takes the ctime and keeps it in its
    /// cache the first time it is asked, which comes to the same for messages it has seen.
    /// A name without a leading number (not one a maildir writer makes) falls back to the
    /// ctime. `None` if there is no file by that name.
    pub fn save_date(&self, filename: &str) -> Result<Option<i64>, StoreError> {
        let (sub, bare) = locate(filename)?;
        let dir = self.message_dir(sub)?;
        let stat = match self.stat_message(dir, bare)? {
            Some(stat) if Kind::of(&stat) == Kind::File => stat,
            Some(stat) => return Err(dir.fail(bare, not_a_file(Kind::of(&stat)))),
            None => return Ok(None),
        };
        Ok(Some(time_in_name(bare).unwrap_or(stat.st_ctime)))
    }

    /// The folder's MAILBOXID (RFC 8474), made and recorded in the folder on first need.
    pub fn mailbox_id(&self) -> Result<String, StoreError> {
        let top = self.top()?;
        let tmp = open_in(&top, "tmp")?;
        super::mailbox_id::get_or_create(&top, &tmp)
    }

    /// Renames cur/`filename` to carry `flags`; `Ok(None)` if the file is gone.
    pub fn set_flags(
        &self,
        filename: &str,
        flags: &InfoFlags,
    ) -> Result<Option<String>, StoreError> {
        check_file_name(filename)?;
        let renamed = format!("{}:2,{}", basename_of(filename), flags.letters());
        let cur = self.message_dir("cur")?;
        if renamed == filename {
            // Nothing to rename, but the caller still needs to know whether the file is there.
            return match cur.stat(filename) {
                Ok(_) => Ok(Some(renamed)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(cur.fail(filename, e)),
            };
        }
        match cur.rename(filename, cur, &renamed) {
            Ok(()) => {
                crash::at("flags-renamed");
                Ok(Some(renamed))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(cur.fail(&renamed, e)),
        }
    }

    /// Starts a read-modify-write of the keyword sets of the messages `basenames` (see
    /// [`KeywordWriter`]): the folder's keyword lock is held until it is dropped.
    pub fn keyword_writer(&self, basenames: &FastSet<String>) -> Result<KeywordWriter, StoreError> {
        let top = self.top()?;
        let tmp = open_in(&top, "tmp")?;
        KeywordWriter::start(top, tmp, basenames)
    }

    /// The Maildir++ quota of the maildir this folder's messages are in (see the field);
    /// `None` for a filesystem-shared folder's local copy.
    pub fn quota(&self) -> Option<&Quota> {
        self.quota.as_ref()
    }

    /// True when this folder's messages count towards its maildir's Maildir++ quota: all
    /// folders but `.Trash`, and never a filesystem-shared folder's local copy.
    pub fn counts_toward_quota(&self) -> bool {
        self.quota.is_some() && quota::counts_folder(self.dir.as_deref())
    }

    /// True when this folder and `other` count towards one and the same quota, so that
    /// moving a message between them leaves the count as it is.
    pub fn shares_quota_with(&self, other: &Folder) -> bool {
        self.counts_toward_quota() && other.counts_toward_quota() && self.quota == other.quota
    }

    /// What the message a scan named `filename` counts for in the quota: nothing in `.Trash`,
    /// for a `\Deleted` (`T`) file or one that is gone; else its `,S=` size (or its size on
    /// disk) and one message. Asked before the file is removed, for
    /// [`Quota::record_removal`].
    pub fn quota_charge(&self, filename: &str) -> Result<QuotaUse, StoreError> {
        if !self.counts_toward_quota() {
            return Ok(QuotaUse::default());
        }
        let (sub, bare) = locate(filename)?;
        let dir = self.message_dir(sub)?;
        Ok(quota::charge_of(bare, || stat_size(dir, bare)))
    }

    /// How the quota's count changes when cur/`filename` gets `flags` (Courier counts
    /// `\Deleted` messages out): positive when `T` goes, negative when it comes, else zero.
    pub fn quota_change_for_flags(
        &self,
        filename: &str,
        flags: &InfoFlags,
    ) -> Result<QuotaUse, StoreError> {
        if !self.counts_toward_quota() {
            return Ok(QuotaUse::default());
        }
        check_file_name(filename)?;
        let renamed = format!("{}:2,{}", basename_of(filename), flags.letters());
        if quota::counts_file(filename) == quota::counts_file(&renamed) {
            return Ok(QuotaUse::default());
        }
        let cur = self.message_dir("cur")?;
        let size = quota::size_in_name(filename).or_else(|| stat_size(cur, filename));
        let Some(size) = size else {
            return Ok(QuotaUse::default());
        };
        let one = QuotaUse::message(size);
        Ok(if quota::counts_file(&renamed) {
            one
        } else {
            -one
        })
    }

    /// Removes cur/`filename`; a file already gone is fine. Returns whether the message
    /// is gone: in a filesystem-shared folder, a message this user may not remove from
    /// the sharable folder (its sticky bit) stays, without `\Deleted` (see `sharable`).
    pub fn expunge(&self, filename: &str) -> Result<bool, StoreError> {
        check_file_name(filename)?;
        let cur = self.message_dir("cur")?;
        if let Some(linked) = &self.linked {
            return linked.remove(cur, filename);
        }
        match cur.remove_file(filename) {
            Ok(()) => {
                crash::at("expunge-removed");
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(cur.fail(filename, e)),
        }
    }

    /// Moves cur/`filename` into `target`'s cur/ under the same base name with `flags`, keeping
    /// the file (and its mtime, the INTERNALDATE) as it is: the magic trash's move. Returns
    /// the name it has there, or `None` when the source is gone. A `target` without cur/ is
    /// [`StoreError::NonExistent`], so the caller may create it and try again. The target
    /// numbers the message at its next scan, as it does a delivery by another program.
    pub fn move_to_folder(
        &self,
        filename: &str,
        target: &Folder,
        flags: &InfoFlags,
    ) -> Result<Option<String>, StoreError> {
        check_file_name(filename)?;
        if self.linked.is_some() {
            // Its messages are links into a folder someone else may own: a moved link would
            // lead out of the trash, and the message would stay where it is.
            return Err(StoreError::Cannot(
                "messages of a filesystem-shared folder are removed, not moved".to_string(),
            ));
        }
        let cur = self.message_dir("cur")?;
        let target_cur = match target.open_sub("cur") {
            Ok(dir) => dir,
            Err(StoreError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NonExistent(target.name.clone()));
            }
            Err(e) => return Err(e),
        };
        let moved = format!("{}:2,{}", basename_of(filename), flags.letters());
        match cur.rename(filename, &target_cur, &moved) {
            Ok(()) => {
                target_cur.sync();
                Ok(Some(moved))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match cur.stat(filename) {
                // The target went away meanwhile.
                Ok(_) => Err(StoreError::NonExistent(target.name.clone())),
                Err(_) => Ok(None),
            },
            Err(e) => Err(target_cur.fail(&moved, e)),
        }
    }

    /// IMAP_EMPTYTRASH for this folder, as Courier's `maildir_purge`: new/ is moved into cur/
    /// first, then every message file in cur/ and new/ whose status change time (ctime, which
    /// a move into the folder sets, where the mtime keeps the delivery date) is more than
    /// `max_age` seconds before `now` is removed. Returns what the quota counted of them, for
    /// [`Quota::record_removal`]. Links are left alone (the scan reports them).
    pub fn purge(&self, max_age: i64, now: i64) -> Result<QuotaUse, StoreError> {
        let dirs = self.dirs()?;
        move_new_to_cur(&dirs, self.linked.as_deref())?;
        let oldest_kept = now.saturating_sub(max_age);
        let mut freed = QuotaUse::default();
        for dir in [&dirs.cur, &dirs.new] {
            for name in list_files(dir, None)? {
                let Ok(stat) = dir.stat(&name) else { continue };
                if Kind::of(&stat) != Kind::File || stat.st_ctime >= oldest_kept {
                    continue;
                }
                let charge = if self.counts_toward_quota() {
                    let size = u64::try_from(stat.st_size).unwrap_or(0);
                    quota::charge_of(&name, || Some(size))
                } else {
                    QuotaUse::default()
                };
                match dir.remove_file(&name) {
                    Ok(()) => freed += charge,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(dir.fail(&name, e)),
                }
            }
        }
        Ok(freed)
    }

    /// Directories IDLE should watch: the folder's new/ and cur/, and for a shared folder's
    /// local copy the sharable folder's too.
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.path.join("new"), self.path.join("cur")];
        dirs.extend(self.shared_dirs());
        dirs
    }

    /// The sharable folder's new/ and cur/ of a shared folder's local copy, whose changes
    /// are this folder's (none for any other folder).
    pub fn shared_dirs(&self) -> Vec<PathBuf> {
        self.linked
            .as_ref()
            .map(|l| l.watched())
            .unwrap_or_default()
    }

    /// A file of the store's own in the folder (`mdimapindex`), opened for reading, never
    /// through a link; `None` if there is none.
    pub(crate) fn open_own_file(&self, name: &str) -> Result<Option<File>, StoreError> {
        let rel = self.rel(name);
        let root = self.open_root()?;
        match root.open_file(&rel) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(root.fail(&rel, e)),
        }
    }

    /// The folder's own directory and its tmp/, for the store's own files, which are
    /// written in tmp/ and renamed into place.
    pub(crate) fn own_dirs(&self) -> Result<(Dir, Dir), StoreError> {
        let top = self.top()?;
        let tmp = open_in(&top, "tmp")?;
        Ok((top, tmp))
    }

    /// A file for the session's scratch data about this folder's messages, without a name
    /// (gone with its descriptor) where the file system allows, in the folder's tmp/.
    pub fn create_scratch_file(&self) -> Result<File, StoreError> {
        let tmp = self.open_sub("tmp")?;
        match tmp.create_unnamed(0o600) {
            Ok(file) => return Ok(file),
            Err(e) => log::debug!("no unnamed file in {}: {e}", tmp.path().display()),
        }
        let (file, name, _) = create_exclusive(&tmp, "scratch")?;
        remove_quietly(&tmp, &name);
        Ok(file)
    }

    /// True for the local copy of a filesystem-shared folder (see `linked`).
    pub(crate) fn is_linked(&self) -> bool {
        self.linked.is_some()
    }

    /// Whether new/ holds a message file (one a scan would move into cur/).
    pub(crate) fn has_new_messages(&self) -> Result<bool, StoreError> {
        let new = self.open_sub("new")?;
        Ok(!self.list(&new)?.is_empty())
    }

    /// The database for a scan that must not rewrite it; see `scan_read_only`.
    fn db_for_reading(&self, dirs: &Dirs) -> Result<UidDb, StoreError> {
        if let DbState::Valid(db) = uiddb::read(&dirs.top)? {
            return Ok(db);
        }
        match initialize_db(dirs) {
            Ok(db) => Ok(db),
            Err(e) => {
                log::warn!(
                    "cannot create the UID database of {}: {e}; numbering in memory",
                    self.path.display()
                );
                Ok(UidDb::fresh())
            }
        }
    }

    fn build_result(
        &self,
        dirs: &Dirs,
        db: UidDb,
        listed: Listed,
        recent: Recent<'_>,
        write: bool,
    ) -> Result<ScanResult, StoreError> {
        // Most folders never had a keyword: then there is nothing to merge,
        // and no set of every message's name to build for it.
        let keyword_dir = dirs.top.stat(keywords::KEYWORDS_DIR).map(|s| Kind::of(&s));
        if let Ok(Kind::Symlink) = keyword_dir {
            let path = dirs.top.path().join(keywords::KEYWORDS_DIR);
            report_skipped(&path, Kind::Symlink, "the keyword directory");
        }
        let keywords = if let Ok(Kind::Dir) = keyword_dir {
            let mut existing: FastSet<String> = listed.iter().map(|(_, b, _)| b.clone()).collect();
            existing.extend(
                self.list(&dirs.new)?
                    .iter()
                    .map(|f| basename_of(f).to_string()),
            );
            // Keywords are secondary: a broken keyword directory must not make the folder unusable.
            keywords::load(&dirs.top, &dirs.tmp, &existing, write).unwrap_or_else(|e| {
                log::warn!("cannot read keywords of {}: {e}", self.path.display());
                keywords::KeywordMap::default()
            })
        } else {
            keywords::KeywordMap::default()
        };
        let messages = listed
            .into_iter()
            .map(|(uid, basename, filename)| MessageEntry {
                uid,
                flags: InfoFlags::from_filename(&filename),
                keywords: keywords.get(&basename).cloned().unwrap_or_default(),
                recent: uid >= recent.from_uid || recent.moved.contains(&basename),
                basename,
                filename,
            })
            .collect();
        Ok(ScanResult {
            uidvalidity: db.uidvalidity,
            uidnext: db.nextuid,
            messages,
            stamp: None,
            settled: false,
        })
    }
}

/// Which messages of a scan are recent for the session it is for (see `recent.rs`).
#[derive(Clone, Copy)]
struct Recent<'a> {
    /// Base names the scan moved from new/ (or, read-only, found there).
    moved: &'a FastSet<String>,
    /// The first UID no session had been told about.
    from_uid: u32,
}

fn initialize_db(dirs: &Dirs) -> Result<UidDb, StoreError> {
    let _lock = DotLock::acquire(&dirs.tmp)?;
    if let DbState::Valid(db) = uiddb::read(&dirs.top)? {
        return Ok(db); // someone else created it meanwhile
    }
    // Only the header: numbering the messages here would fix their order
    // before `new/` joins `cur/`, and Courier numbers both together at
    // the first SELECT. UIDVALIDITY is what must not change meanwhile.
    let db = UidDb::fresh();
    uiddb::create_header_only(&dirs.top, &dirs.tmp, &db)?;
    Ok(db)
}

/// Byte copy of `input` into a new file in tmp/, keeping its mtime; returns the tmp name,
/// its stamp and the new file's device and inode.
fn copy_to_tmp(
    tmp: &Dir,
    input: &mut File,
    source_meta: &Metadata,
) -> Result<(String, Stamp, (u64, u64)), StoreError> {
    let (mut output, name, stamp) = create_exclusive(tmp, "")?;
    let copied = io::copy(input, &mut output).and_then(|_| {
        output.set_modified(source_meta.modified()?)?;
        output.sync_all()?;
        output.metadata()
    });
    drop(output);
    match copied {
        Ok(meta) => Ok((name, stamp, (meta.dev(), meta.ino()))),
        Err(e) => {
            remove_quietly(tmp, &name);
            Err(tmp.fail(&name, e))
        }
    }
}

/// Moves new/ to cur/ appending `:2,`; returns the base names moved by this call.
fn move_new_to_cur(dirs: &Dirs, linked: Option<&Linked>) -> Result<FastSet<String>, StoreError> {
    let mut moved = FastSet::default();
    for name in list_files(&dirs.new, linked)? {
        let target = if name.contains(':') {
            name.clone()
        } else {
            format!("{name}:2,")
        };
        match dirs.new.rename(&name, &dirs.cur, &target) {
            Ok(()) => {
                moved.insert(basename_of(&name).to_string());
            }
            // Another process took it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot move {} to cur/: {e}",
                dirs.new.path().join(&name).display()
            ),
        }
    }
    if !moved.is_empty() {
        dirs.cur.sync();
        dirs.new.sync();
    }
    Ok(moved)
}

/// The size of `name` in `dir` on disk (`lstat`), `None` if it is gone.
fn stat_size(dir: &Dir, name: &str) -> Option<u64> {
    dir.stat(name)
        .ok()
        .map(|s| u64::try_from(s.st_size).unwrap_or(0))
}

/// Deletes tmp/ leftovers older than 36 hours, Maildir's rule for what a writer that died
/// left behind. Best effort.
fn purge_tmp(tmp: &Dir) {
    purge_tmp_at(tmp, now_secs());
}

/// [`purge_tmp`] as at `now`. The age is the ctime's, not the mtime's: a COPY stages its
/// message as a hard link in tmp/, which keeps the source's mtime (the INTERNALDATE, maybe
/// years old) while the link is seconds old, and must not be taken for a leftover.
fn purge_tmp_at(tmp: &Dir, now: i64) {
    let Ok(entries) = tmp.entries() else {
        return;
    };
    for entry in entries {
        let Ok(name) = entry.name.into_string() else {
            continue;
        };
        if name.starts_with('.') || name == LOCK_NAME {
            continue;
        }
        let Ok(stat) = tmp.stat(&name) else { continue };
        if now.saturating_sub(stat.st_ctime) <= TMP_MAX_AGE_SECS {
            continue;
        }
        let result = if Kind::of(&stat) == Kind::Dir {
            if name.contains(&format!("_{DELETING_TAG}"))
                || name.contains(&format!("_{CREATING_TAG}"))
            {
                tmp.remove_tree(&name)
            } else {
                continue;
            }
        } else {
            tmp.remove_file(&name)
        };
        let path = tmp.path().join(&name);
        match result {
            Ok(()) => log::info!("purged stale {}", path.display()),
            Err(e) => log::warn!("cannot purge {}: {e}", path.display()),
        }
    }
}

/// INTERNALDATE seconds as a file time.
fn time_of(secs: i64) -> std::time::SystemTime {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    let time = if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    time.unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::store::Store;
    use crate::maildir::testutil::TempDir;
    use std::fs;
    use std::process::Command;

    /// Env vars of a re-run test binary acting as a concurrent deliverer (`child_deliverer`):
    /// the store to deliver into, the deliverer's name (written into its messages), and the
    /// file whose appearance tells it to start.
    const CHILD_ENV: &str = "MDIMAP_TEST_DELIVER_INTO";
    const CHILD_NAME_ENV: &str = "MDIMAP_TEST_DELIVERER_NAME";
    const CHILD_GO_ENV: &str = "MDIMAP_TEST_DELIVER_GO";
    /// Starts the line on which a child deliverer reports the UIDs it was given.
    const CHILD_REPORT: &str = "child_deliverer got UIDs:";

    fn inbox(tag: &str) -> (TempDir, Store, Folder) {
        let dir = TempDir::new(tag);
        let root = dir.path().join("Maildir");
        let store = Store::create(&root).unwrap();
        let folder = store.folder("INBOX").unwrap();
        (dir, store, folder)
    }

    #[test]
    fn tmp_leftovers_go_after_36_hours_by_ctime() {
        let (_dir, store, folder) = inbox("purge-tmp");
        let tmp_path = folder.path().join("tmp");
        // A crashed APPEND's file, a COPY's link whose mtime is an old INTERNALDATE, a
        // deleted folder's remains, a directory of someone else's, the lock, a dot file.
        fs::write(tmp_path.join("1700000000.M1P2.host"), b"half a message").unwrap();
        let linked = tmp_path.join("1700000001.M1P2.host");
        fs::write(&linked, b"a linked message\n").unwrap();
        fs::File::options()
            .write(true)
            .open(&linked)
            .unwrap()
            .set_modified(time_of(1_000_000_000))
            .unwrap();
        fs::create_dir_all(tmp_path.join(format!("1700000002.M1P2_{DELETING_TAG}.host/cur")))
            .unwrap();
        fs::create_dir(tmp_path.join("other-dir")).unwrap();
        fs::write(tmp_path.join(LOCK_NAME), b"1:host").unwrap();
        fs::write(tmp_path.join(".keep"), b"").unwrap();
        let listing = || {
            let mut names: Vec<String> = fs::read_dir(&tmp_path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        let all = listing();
        assert_eq!(all.len(), 6);
        let dirs = folder.dirs().unwrap();
        // Just written (ctime now): nothing goes, whatever the mtime says.
        purge_tmp_at(&dirs.tmp, now_secs());
        assert_eq!(listing(), all);
        purge_tmp_at(&dirs.tmp, now_secs() + TMP_MAX_AGE_SECS - 60);
        assert_eq!(listing(), all);
        // 36 hours on: the leftovers go; the lock, dot files and foreign directories stay.
        purge_tmp_at(&dirs.tmp, now_secs() + TMP_MAX_AGE_SECS + 60);
        assert_eq!(listing(), [".keep", LOCK_NAME, "other-dir"]);
        drop(store);
    }

    #[test]
    fn purge_goes_by_ctime_and_counts_what_the_quota_counted() {
        let (_dir, store, _) = inbox("purge");
        store.create_folder("INBOX.Sent").unwrap();
        let sent = store.folder("INBOX.Sent").unwrap();
        let cur = sent.path().join("cur");
        // An old delivery date (mtime) does not matter: the ctime is now.
        fs::write(cur.join("1.A,S=5:2,S"), b"aaaa\n").unwrap();
        fs::write(cur.join("2.B,S=7:2,ST"), b"bbbbbb\n").unwrap();
        fs::write(sent.path().join("new").join("3.C"), b"cc\n").unwrap();
        fs::write(cur.join(".hidden"), b"x").unwrap();
        let old = time_of(1_000_000_000);
        fs::File::options()
            .write(true)
            .open(cur.join("1.A,S=5:2,S"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let now = now_secs();
        // Younger than a day: nothing goes, but new/ joins cur/ as in Courier.
        assert_eq!(sent.purge(86_400, now).unwrap(), QuotaUse::default());
        let mut left: Vec<String> = fs::read_dir(&cur)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden", "1.A,S=5:2,S", "2.B,S=7:2,ST", "3.C:2,"]);
        // A day later all go but the dot file; the T file counted nothing, 3.C its size.
        let freed = sent.purge(86_400, now + 86_401).unwrap();
        assert_eq!(
            freed,
            QuotaUse {
                bytes: 8,
                messages: 2
            }
        );
        let left: Vec<_> = fs::read_dir(&cur).unwrap().collect();
        assert_eq!(left.len(), 1);
        // .Trash never counts.
        store.create_folder("INBOX.Trash").unwrap();
        let trash = store.folder("INBOX.Trash").unwrap();
        fs::write(trash.path().join("cur").join("4.D,S=3:2,"), b"dd\n").unwrap();
        assert_eq!(trash.purge(0, now + 10).unwrap(), QuotaUse::default());
        assert!(!trash.path().join("cur").join("4.D,S=3:2,").exists());
    }

    #[test]
    fn move_to_folder_keeps_the_file_and_its_date() {
        let (_dir, store, inbox) = inbox("moveto");
        inbox
            .deliver(
                b"hello\n",
                &InfoFlags(b"DST".to_vec()),
                &[],
                Some(1_000_000_000),
            )
            .unwrap();
        let name = inbox.scan().unwrap().messages[0].filename.clone();
        let elsewhere = Folder::new(
            "INBOX.Bin".into(),
            store.root().to_path_buf(),
            Some(".Bin".into()),
        );
        assert!(matches!(
            inbox.move_to_folder(&name, &elsewhere, &InfoFlags(b"S".to_vec())),
            Err(StoreError::NonExistent(_))
        ));
        store.create_folder("INBOX.Bin").unwrap();
        let bin = store.folder("INBOX.Bin").unwrap();
        let moved = inbox
            .move_to_folder(&name, &bin, &InfoFlags(b"S".to_vec()))
            .unwrap()
            .unwrap();
        assert_eq!(moved, format!("{}:2,S", basename_of(&name)));
        assert!(inbox.scan().unwrap().messages.is_empty());
        let there = bin.scan().unwrap().messages;
        assert_eq!((there.len(), there[0].uid), (1, 1));
        assert_eq!(bin.internal_date(&moved).unwrap(), Some(1_000_000_000));
        assert_eq!(
            inbox
                .move_to_folder(&name, &bin, &InfoFlags::default())
                .unwrap(),
            None
        );
    }

    /// Drops a message into new/ the way an MTA does.
    fn mta_deliver(folder: &Folder, name: &str, body: &[u8]) {
        fs::write(folder.path().join("tmp").join(name), body).unwrap();
        fs::rename(
            folder.path().join("tmp").join(name),
            folder.path().join("new").join(name),
        )
        .unwrap();
    }

    /// Where a scan's file name is on disk (tests look at the files directly).
    fn on_disk(folder: &Folder, filename: &str) -> PathBuf {
        folder.path().join("cur").join(filename)
    }

    fn db_text(folder: &Folder) -> String {
        fs::read_to_string(folder.path().join(uiddb::UIDDB_NAME)).unwrap()
    }

    #[test]
    fn scan_assigns_uids_and_keeps_them() {
        let (_dir, _store, folder) = inbox("scan");
        mta_deliver(&folder, "1000000002.M1P1.host,S=3", b"b\n\n");
        mta_deliver(&folder, "1000000001.M1P1.host,S=3", b"a\n\n");
        mta_deliver(&folder, "999999999.M1P1.host", b"c\n");
        let first = folder.scan().unwrap();
        let names: Vec<_> = first
            .messages
            .iter()
            .map(|m| (m.uid, m.basename.as_str(), m.recent))
            .collect();
        // Numeric time first: 999999999 sorts before 1000000001 although it is longer.
        assert_eq!(
            names,
            vec![
                (1, "999999999.M1P1.host", true),
                (2, "1000000001.M1P1.host,S=3", true),
                (3, "1000000002.M1P1.host,S=3", true)
            ]
        );
        assert_eq!(first.uidnext, 4);
        assert_eq!(first.messages[0].filename, "999999999.M1P1.host:2,");
        assert!(
            fs::read_dir(folder.path().join("new"))
                .unwrap()
                .next()
                .is_none()
        );
        assert_eq!(
            db_text(&folder),
            format!(
                "1 {} 4\n1 999999999.M1P1.host\n2 1000000001.M1P1.host,S=3\n3 1000000002.M1P1.host,S=3\n",
                first.uidvalidity
            )
        );
        // Flags change the file name, not the UID; a second scan sees nothing recent.
        let renamed = folder
            .set_flags(&first.messages[1].filename, &InfoFlags(b"FS".to_vec()))
            .unwrap()
            .unwrap();
        assert_eq!(renamed, "1000000001.M1P1.host,S=3:2,FS");
        let second = folder.scan().unwrap();
        assert_eq!(second.uidvalidity, first.uidvalidity);
        assert_eq!(second.messages.len(), 3);
        assert!(second.messages.iter().all(|m| !m.recent));
        assert_eq!(second.messages[1].uid, 2);
        assert_eq!(second.messages[1].flags.0, b"FS");
        // The file it renamed is gone: set_flags reports it, the caller rescans.
        assert_eq!(
            folder
                .set_flags(&first.messages[1].filename, &InfoFlags::default())
                .unwrap(),
            None
        );
    }

    #[test]
    fn expunged_uids_are_never_reused() {
        let (_dir, _store, folder) = inbox("reuse");
        let flags = InfoFlags::default();
        let (v, a) = folder.deliver(b"one\n", &flags, &[], None).unwrap();
        let (_, b) = folder.deliver(b"two\n", &flags, &[], None).unwrap();
        assert_eq!((a, b), (1, 2));
        let scan = folder.scan().unwrap();
        folder.expunge(&scan.messages[1].filename).unwrap();
        folder.expunge(&scan.messages[1].filename).unwrap(); // already gone: fine
        let scan = folder.scan().unwrap();
        assert_eq!(scan.messages.len(), 1);
        assert_eq!(scan.uidnext, 3);
        let (v2, c) = folder.deliver(b"three\n", &flags, &[], None).unwrap();
        assert_eq!((v2, c), (v, 3));
        mta_deliver(&folder, "1.M1P1.h", b"x\n");
        let scan = folder.scan().unwrap();
        let uids: Vec<u32> = scan.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 3, 4]);
    }

    #[test]
    fn corrupt_database_gets_new_uidvalidity() {
        let (_dir, _store, folder) = inbox("corrupt");
        for n in 0..3 {
            mta_deliver(&folder, &format!("10{n}.M1P1.h"), b"x\n");
        }
        let before = folder.scan().unwrap();
        // A valid database that does not list the files: they are new to it, numbered on.
        fs::write(
            folder.path().join(uiddb::UIDDB_NAME),
            format!("1 {} 50\n", before.uidvalidity - 1000),
        )
        .unwrap();
        let renumbered = folder.scan().unwrap();
        assert_eq!(renumbered.uidvalidity, before.uidvalidity - 1000);
        let uids: Vec<u32> = renumbered.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![50, 51, 52]);
        fs::write(folder.path().join(uiddb::UIDDB_NAME), b"garbage\n").unwrap();
        let fresh = folder.scan().unwrap();
        assert_ne!(fresh.uidvalidity, before.uidvalidity - 1000);
        let uids: Vec<u32> = fresh.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 2, 3]);
        assert!(db_text(&folder).starts_with(&format!("1 {} 4\n", fresh.uidvalidity)));
    }

    #[test]
    fn deliver_writes_name_mtime_flags_keywords() {
        let (_dir, _store, folder) = inbox("deliver");
        let mut flags = InfoFlags::default();
        flags.set(b'S', true);
        flags.set(b'D', true);
        let kws = vec!["$Label1".to_string(), "Junk".to_string()];
        let (uidv, uid) = folder
            .deliver(b"Subject: x\n\nbody\n", &flags, &kws, Some(1_000_000_000))
            .unwrap();
        assert_eq!(uid, 1);
        let scan = folder.scan().unwrap();
        assert_eq!(scan.uidvalidity, uidv);
        let m = &scan.messages[0];
        assert!(m.filename.ends_with(",S=17:2,DS"), "{}", m.filename);
        assert!(m.basename.contains(&format!("P{}V", std::process::id())));
        assert!(
            m.basename
                .contains(&format!(".{},S=17", crate::maildir::unique::hostname()))
        );
        assert_eq!(m.keywords, kws);
        // Recent for the first session to see it (RFC 3501 §2.3.2; recent.rs).
        assert!(m.recent);
        let meta = fs::metadata(on_disk(&folder, &m.filename)).unwrap();
        assert_eq!(meta.mtime(), 1_000_000_000);
        assert_eq!(
            fs::read(on_disk(&folder, &m.filename)).unwrap(),
            b"Subject: x\n\nbody\n"
        );
        // tmp/ holds nothing but what a scan may leave (no lock, no temp files).
        assert_eq!(fs::read_dir(folder.path().join("tmp")).unwrap().count(), 0);
        crate::maildir::testutil::set_keywords(&folder, &m.basename, &["Work".to_string()])
            .unwrap();
        assert_eq!(folder.scan().unwrap().messages[0].keywords, vec!["Work"]);
        assert_eq!(
            folder.scan_read_only().unwrap().messages[0].keywords,
            vec!["Work"]
        );
    }

    #[test]
    fn copies_keep_size_and_date_and_get_uids_in_order() {
        let (_dir, store, inbox) = inbox("copies");
        store.create_folder("INBOX.Archive").unwrap();
        let archive = store.folder("INBOX.Archive").unwrap();
        mta_deliver(&inbox, "100.M1P1.h,S=99", b"no size match\n");
        inbox.scan().unwrap();
        inbox
            .deliver(b"second\n", &InfoFlags::default(), &[], Some(12345))
            .unwrap();
        let scan = inbox.scan().unwrap();
        let sources: Vec<(String, InfoFlags, Vec<String>)> = scan
            .messages
            .iter()
            .map(|m| {
                (
                    m.filename.clone(),
                    InfoFlags(b"S".to_vec()),
                    vec!["Kept".to_string()],
                )
            })
            .collect();
        let delivery = archive
            .deliver_copies(&inbox, &sources, None, None)
            .unwrap();
        let (uidv, uids) = (delivery.uidvalidity, delivery.uids());
        assert_eq!(uids, vec![1, 2]);
        let copied = archive.scan().unwrap();
        assert_eq!(copied.uidvalidity, uidv);
        assert!(copied.messages[0].basename.ends_with(",S=99"));
        assert!(copied.messages[1].basename.ends_with(",S=7"));
        assert_eq!(copied.messages[1].keywords, vec!["Kept"]);
        assert!(copied.messages.iter().all(|m| m.flags.0 == b"S"));
        let mtime = fs::metadata(on_disk(&archive, &copied.messages[1].filename))
            .unwrap()
            .mtime();
        assert_eq!(mtime, 12345);
        // A missing source fails the whole copy and leaves nothing behind.
        let mut bad = sources.clone();
        bad.push(("gone".to_string(), InfoFlags::default(), vec![]));
        assert!(archive.deliver_copies(&inbox, &bad, None, None).is_err());
        assert_eq!(archive.scan().unwrap().messages.len(), 2);
        assert_eq!(fs::read_dir(archive.path().join("tmp")).unwrap().count(), 0);
        // UIDs keep growing after a failed copy.
        assert_eq!(
            archive
                .deliver_copies(&inbox, &sources[..1], None, None)
                .unwrap()
                .uids(),
            vec![3]
        );
    }

    #[test]
    fn read_only_scan_and_status_leave_new_alone() {
        let (_dir, _store, folder) = inbox("examine");
        folder
            .deliver(b"seen\n", &InfoFlags(b"S".to_vec()), &[], None)
            .unwrap();
        folder
            .deliver(b"unseen\n", &InfoFlags::default(), &[], None)
            .unwrap();
        mta_deliver(&folder, "5.M1P1.h,S=4", b"abc\n");
        mta_deliver(&folder, "6.M1P1.h", b"abcdef\n");
        let status = folder.status().unwrap();
        assert_eq!(status.messages, 4);
        // Two in new/, two delivered that no session has seen.
        assert_eq!(status.recent, 4);
        assert_eq!(status.unseen, 3);
        assert_eq!(status.uidnext, 5);
        assert_eq!(status.rfc822_size, None);
        // EXAMINE shows the messages in new/ too, without moving them.
        let ro = folder.scan_read_only().unwrap();
        assert_eq!(ro.messages.len(), 4);
        assert!(ro.messages.iter().all(|m| m.recent));
        assert_eq!(ro.messages[2].filename, "../new/5.M1P1.h,S=4");
        assert_eq!(
            fs::read(on_disk(&folder, &ro.messages[2].filename)).unwrap(),
            b"abc\n"
        );
        assert_eq!(ro.uidvalidity, status.uidvalidity);
        assert_eq!(fs::read_dir(folder.path().join("new")).unwrap().count(), 2);
        // Unknown files are numbered in the database, in the order a SELECT
        // would number them: 5.*, 6.* (new/), then 7.* (cur/), so the
        // numbers EXAMINE gives out can never go to another message.
        fs::write(folder.path().join("cur").join("7.M1P1.h:2,"), b"x\n").unwrap();
        let ro = folder.scan_read_only().unwrap();
        let uids: Vec<(u32, &str)> = ro
            .messages
            .iter()
            .map(|m| (m.uid, m.basename.as_str()))
            .collect();
        assert_eq!(
            &uids[2..],
            &[(3, "5.M1P1.h,S=4"), (4, "6.M1P1.h"), (5, "7.M1P1.h")]
        );
        assert!(
            db_text(&folder).ends_with("3 5.M1P1.h,S=4\n4 6.M1P1.h\n5 7.M1P1.h\n"),
            "{}",
            db_text(&folder)
        );
        assert_eq!(fs::read_dir(folder.path().join("new")).unwrap().count(), 2);
        // A delivery now gets a number no client has seen.
        let (_, uid) = folder
            .deliver(b"later\n", &InfoFlags::default(), &[], None)
            .unwrap();
        assert_eq!(uid, 6);
        assert_eq!(folder.status().unwrap().uidnext, 7);
        let rw = folder.scan().unwrap();
        // The first read-write scan claims all six: none was told to a session before.
        assert_eq!(rw.messages.iter().filter(|m| m.recent).count(), 6);
        assert!(folder.scan().unwrap().messages.iter().all(|m| !m.recent));
        assert_eq!(rw.uidnext, 7);
        let kept: Vec<(u32, &str)> = rw
            .messages
            .iter()
            .map(|m| (m.uid, m.basename.as_str()))
            .collect();
        assert_eq!(
            &kept[2..5],
            &[(3, "5.M1P1.h,S=4"), (4, "6.M1P1.h"), (5, "7.M1P1.h")],
            "SELECT keeps EXAMINE's numbers"
        );
        let status = folder.status().unwrap();
        assert_eq!((status.messages, status.recent, status.uidnext), (6, 0, 7));
    }

    #[test]
    fn status_of_a_fresh_folder_is_stable() {
        let (_dir, _store, folder) = inbox("fresh");
        let a = folder.status().unwrap();
        assert_eq!((a.messages, a.uidnext), (0, 1));
        assert_eq!(db_text(&folder), format!("1 {} 1\n", a.uidvalidity));
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(folder.status().unwrap().uidvalidity, a.uidvalidity);
    }

    #[test]
    fn bad_file_names_are_refused() {
        let (_dir, _store, folder) = inbox("badnames");
        assert!(folder.expunge("../courierimapuiddb").is_err());
        assert!(folder.set_flags("", &InfoFlags::default()).is_err());
        assert!(crate::maildir::testutil::set_keywords(&folder, "../x", &[]).is_err());
    }

    /// The child half of `concurrent_processes_get_distinct_uids`, which runs this test in two
    /// processes of the test binary (`--ignored --exact`) with [`CHILD_ENV`] naming the store.
    /// There it delivers 50 messages once the parent says go, and prints the UIDs it was given
    /// for the parent to check. Run by hand without the variable, it does the same into a store
    /// of its own and checks that store itself, so it never passes without delivering.
    #[test]
    #[ignore = "the child half of concurrent_processes_get_distinct_uids, which runs it"]
    fn child_deliverer() {
        let Ok(root) = std::env::var(CHILD_ENV) else {
            let (_dir, _store, folder) = inbox("alone");
            let uids = deliver_fifty(&folder, "alone");
            check_deliveries(&folder, &[("alone".to_string(), uids)]);
            return;
        };
        let name = std::env::var(CHILD_NAME_ENV).unwrap();
        let go = PathBuf::from(std::env::var(CHILD_GO_ENV).unwrap());
        let store = Store::open(Path::new(&root)).unwrap();
        let folder = store.folder("INBOX").unwrap();
        // Both children start delivering when the parent creates `go`, not one after the
        // other's start-up, so their deliveries overlap. The bound only guards against a hang.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !go.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never appeared",
                go.display()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let uids = deliver_fifty(&folder, &name);
        let listed: Vec<String> = uids.iter().map(u32::to_string).collect();
        println!("{CHILD_REPORT} {}", listed.join(" "));
    }

    /// Delivers `{who} {n}` for n in 0..50, scanning now and then so that scans race with the
    /// other deliverer's deliveries; returns the UIDs `deliver` gave, in delivery order.
    fn deliver_fifty(folder: &Folder, who: &str) -> Vec<u32> {
        let mut uids = Vec::new();
        for n in 0..50 {
            let (_, uid) = folder
                .deliver(
                    format!("{who} {n}\n").as_bytes(),
                    &InfoFlags::default(),
                    &[],
                    None,
                )
                .unwrap();
            uids.push(uid);
            if n % 10 == 0 {
                folder.scan().unwrap();
            }
        }
        uids
    }

    /// The folder holds exactly the messages of `deliveries` (each deliverer's name and the
    /// UIDs `deliver` returned to it, in delivery order) under UIDs 1..=N, each UID given
    /// once, and the scan finds under every UID the very message its deliverer was told got
    /// it; the UID database lists them all and no lock is left behind.
    fn check_deliveries(folder: &Folder, deliveries: &[(String, Vec<u32>)]) {
        let total: usize = deliveries.iter().map(|(_, uids)| uids.len()).sum();
        let mut expected: FastMap<u32, String> = FastMap::default();
        for (who, uids) in deliveries {
            for (n, &uid) in uids.iter().enumerate() {
                let body = format!("{who} {n}\n");
                if let Some(earlier) = expected.insert(uid, body.clone()) {
                    panic!("UID {uid} was given to both {earlier:?} and {body:?}");
                }
            }
        }
        let all: Vec<u32> = (1..=to_u32(total)).collect();
        let mut returned: Vec<u32> = expected.keys().copied().collect();
        returned.sort_unstable();
        assert_eq!(returned, all, "UIDs returned by deliver");
        let scan = folder.scan().unwrap();
        let uids: Vec<u32> = scan.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, all, "UIDs in the scan");
        assert_eq!(scan.uidnext, to_u32(total) + 1);
        for m in &scan.messages {
            let body = fs::read_to_string(folder.path().join("cur").join(&m.filename)).unwrap();
            assert_eq!(body, expected[&m.uid], "the message under UID {}", m.uid);
        }
        // The header and one line each (empty lines are the padding of lines added in place).
        let lines = db_text(folder).lines().filter(|l| !l.is_empty()).count();
        assert_eq!(lines, total + 1);
        assert!(!folder.path().join("tmp").join(LOCK_NAME).exists());
    }

    #[test]
    fn concurrent_processes_get_distinct_uids() {
        let (dir, store, folder) = inbox("procs");
        let test_name = format!(
            "{}::child_deliverer",
            module_path!().split_once("::").map_or("", |(_, rest)| rest)
        );
        let go = dir.path().join("go");
        let exe = std::env::current_exe().unwrap();
        let names = ["first", "second"];
        let children: Vec<_> = names
            .iter()
            .map(|name| {
                Command::new(&exe)
                    .args(["--ignored", "--exact", &test_name])
                    .args(["--test-threads=1", "--nocapture", "--quiet"])
                    .env(CHILD_ENV, store.root())
                    .env(CHILD_NAME_ENV, name)
                    .env(CHILD_GO_ENV, &go)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        fs::write(&go, b"").unwrap();
        let mut deliveries = Vec::new();
        for (name, child) in names.iter().zip(children) {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "child {name} failed ({}):\n{stdout}\n{stderr}",
                out.status
            );
            // Exactly one report: a child whose filter matched no test would exit 0 silently.
            let reports: Vec<&str> = stdout
                .lines()
                .filter_map(|l| l.strip_prefix(CHILD_REPORT))
                .collect();
            assert_eq!(
                reports.len(),
                1,
                "child {name} printed:\n{stdout}\n{stderr}"
            );
            let uids: Vec<u32> = reports[0]
                .split_whitespace()
                .map(|u| u.parse().unwrap())
                .collect();
            assert_eq!(uids.len(), 50, "child {name}: {uids:?}");
            deliveries.push((name.to_string(), uids));
        }
        check_deliveries(&folder, &deliveries);
    }

    #[test]
    fn concurrent_threads_get_distinct_uids() {
        let (_dir, _store, folder) = inbox("threads");
        // Both threads start delivering together, not one after the other's spawn.
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = ["first", "second"]
            .into_iter()
            .map(|name| {
                let folder = folder.clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    (name.to_string(), deliver_fifty(&folder, name))
                })
            })
            .collect();
        let deliveries: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        check_deliveries(&folder, &deliveries);
    }

    /// This thread's `(rchar, wchar)`: bytes it read and wrote through system calls.
    fn thread_io() -> (u64, u64) {
        let text = fs::read_to_string("/proc/thread-self/io").unwrap();
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                .unwrap()
                .parse()
                .unwrap()
        };
        (field("rchar"), field("wchar"))
    }

    /// What delivering ten messages into a folder of `n` numbered messages costs this thread
    /// in bytes read and written, and whether the UID database stayed the same file.
    fn cost_of_ten_deliveries(n: u32) -> (u64, u64, bool) {
        use std::os::unix::fs::MetadataExt;
        let (_dir, _store, folder) = inbox("cost");
        let mut text = format!("1 795769177 {}\n", n + 1);
        for uid in 1..=n {
            text.push_str(&format!(
                "{uid} 1000000000.M{uid}P1V0000000000000803I00000001.h,S=3\n"
            ));
        }
        fs::write(folder.path().join(uiddb::UIDDB_NAME), text).unwrap();
        let db = folder.path().join(uiddb::UIDDB_NAME);
        let inode = fs::metadata(&db).unwrap().ino();
        let (read, written) = thread_io();
        for i in 0..10 {
            let (_, uid) = folder
                .deliver(
                    format!("message {i}\n").as_bytes(),
                    &InfoFlags::default(),
                    &[],
                    None,
                )
                .unwrap();
            assert_eq!(uid, n + 1 + i);
        }
        let (read_after, written_after) = thread_io();
        let same_file = fs::metadata(&db).unwrap().ino() == inode;
        let parsed = UidDb::parse(&fs::read(&db).unwrap()).unwrap();
        assert_eq!(parsed.entries.len(), n as usize + 10);
        assert_eq!(parsed.nextuid, n + 11);
        (read_after - read, written_after - written, same_file)
    }

    /// Acceptance: a delivery costs the same in a folder of 100 messages as in one of 20,000.
    /// Counted in bytes read and written (no clock): rewriting the UID database costs the
    /// whole folder for every message, which at 20,000 is over half a megabyte each.
    #[test]
    fn delivery_costs_the_same_whatever_the_folder_size() {
        let (read_small, written_small, in_place_small) = cost_of_ten_deliveries(100);
        let (read_large, written_large, in_place_large) = cost_of_ten_deliveries(20_000);
        // The same messages and lines, give or take a few digits and a line of padding.
        assert!(
            written_large <= written_small + 1024,
            "written: {written_small} bytes at 100 messages, {written_large} at 20,000"
        );
        assert!(
            read_large <= read_small + 1024,
            "read: {read_small} bytes at 100 messages, {read_large} at 20,000"
        );
        assert!(
            in_place_small && in_place_large,
            "the database was replaced"
        );
    }

    #[test]
    fn arrival_order_key() {
        assert!(arrival_key("999.M1") < arrival_key("1000.M1"));
        assert!(arrival_key("1000.M1") < arrival_key("1000.M2"));
        assert_eq!(time_of(-1), UNIX_EPOCH - Duration::from_secs(1));
    }
}

/// The seconds a maildir unique name starts with (`1700000000.M123P45.host`), if it does.
fn time_in_name(name: &str) -> Option<i64> {
    let (secs, _) = name.split_once('.')?;
    if secs.is_empty() || secs.len() > 12 || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    secs.parse().ok()
}
