//! Maildir++ soft quotas: the `maildirsize` file that Courier-IMAP, maildrop, deliverquota and
//! SqWebMail share (spec/courier-files.md §6; the primary source is courier-libs
//! `maildir/maildirquota.C`, whose rules this module follows one by one).
//!
//! Owns reading `maildirsize` (tolerantly, as Courier does), deciding which limits apply,
//! what the maildir uses, whether an addition fits, appending one `bytes count` delta line per
//! change, and rebuilding the file from the messages on disk. It does not know which IMAP
//! command caused a change, and it never changes a message: the caller asks [`Quota::admit`]
//! before it puts anything in place and tells [`Quota::record`] (or
//! [`Quota::record_removal`]) what it did afterwards.
//!
//! # The rules (as Courier and maildrop apply them)
//!
//! - Line 1 holds the limits (`100000S,50C`; either may be missing; 0 means none); each
//!   further line a signed `bytes count` change, written `%12s %12s\n` (26 bytes) with one
//!   `write(2)` on an `O_APPEND` descriptor. Use is the sum of the change lines.
//! - Only the first 5120 bytes are read. A file that fills them, a negative sum, or (when the
//!   user record assigns limits) different limits on line 1 means: recalculate.
//! - A sum that says "over quota" is trusted only while the file has exactly one change line
//!   and is younger than 15 minutes; otherwise it is recalculated before the answer stands.
//! - Recalculation counts `new/` and `cur/` of the root and of every `.Folder` except
//!   `.Trash` (Courier's compile-time trash, whatever IMAP_TRASHFOLDERNAME says), skipping
//!   symbolic links, names starting with a dot and files whose flags hold `T` (deleted
//!   messages do not count). A size comes from `,S=` in the name, else from `lstat`. The
//!   result (line 1 and one total line) replaces `maildirsize` through `tmp/` and a rename;
//!   if a counted directory changed during the count, it is done again (five times at most,
//!   then the last count stands).
//! - A limit is exceeded when use is *greater* than it: filling a quota exactly is allowed.
//!
//! # Which limits apply
//!
//! The user record's quota (the user file's quota field, authdaemond's `QUOTA`) is what
//! maildrop delivers with (it becomes its `MAILDIRQUOTA`), and Courier-IMAP gives
//! `MAILDIRQUOTA` the same authority: when it is set and not zero it wins, and a
//! `maildirsize` that is missing or names other limits is rebuilt with it. Otherwise line 1
//! of `maildirsize` decides, and a maildir without the file has no quota. (Courier's
//! imaplogin does not export authlib's `QUOTA`, so Courier-IMAP alone only ever sees line 1:
//! with the same user record the file then carries the same limits, written by maildrop or
//! by mdimap.)

use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::{Add, AddAssign, Neg};
use std::path::{Path, PathBuf};

use super::beneath::{Dir, Kind};
use super::error::StoreError;
use super::unique::{now_secs, replace_file};

/// The quota file in the maildir root.
pub const MAILDIRSIZE: &str = "maildirsize";
/// The folder directory whose messages never count (Courier's `TRASH`).
pub const UNCOUNTED_FOLDER: &str = ".Trash";
/// How much of `maildirsize` is read; a file that fills it is recalculated.
const READ_LIMIT: usize = 5120;
/// How long a one-line `maildirsize` that says "over quota" is trusted without a recount.
const TRUSTED_SECS: i64 = 15 * 60;
/// Recounts tried when the maildir keeps changing under the count.
const RECOUNT_ATTEMPTS: usize = 5;
/// Tag of the rebuilt file's temporary name in `tmp/` (Courier's own word).
pub(crate) const REBUILD_TAG: &str = "NeWmAiLdIrSiZe";

/// Limits of a Maildir++ quota; 0 means no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Bytes (`S`).
    pub bytes: u64,
    /// Messages (`C`).
    pub messages: u64,
}

impl QuotaLimits {
    /// Parses a quota string as Courier does: every run of digits followed by `S` sets the
    /// byte limit, by `C` the message limit; anything else is passed over (and logged).
    pub fn parse(text: &str) -> QuotaLimits {
        let mut limits = QuotaLimits::default();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let mut n: u64 = 0;
            while let Some(d) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
                n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
                i += 1;
            }
            match bytes.get(i) {
                Some(b'S') => limits.bytes = n,
                Some(b'C') => limits.messages = n,
                _ => log::warn!("quota string {text:?}: {n} is neither bytes (S) nor messages (C)"),
            }
        }
        limits
    }

    /// True when at least one limit is set.
    pub fn is_set(&self) -> bool {
        self.bytes > 0 || self.messages > 0
    }

    /// Line 1 of `maildirsize` as Courier writes it (`100000S,50C`, `50C`, or empty).
    pub fn definition(&self) -> String {
        let mut parts = Vec::new();
        if self.bytes > 0 {
            parts.push(format!("{}S", self.bytes));
        }
        if self.messages > 0 {
            parts.push(format!("{}C", self.messages));
        }
        parts.join(",")
    }

    /// True when `used` is over a limit (greater than it; equal is still allowed).
    pub fn exceeded_by(&self, used: QuotaUse) -> bool {
        let over = |limit: u64, used: i64| limit > 0 && i128::from(used) > i128::from(limit);
        over(self.bytes, used.bytes) || over(self.messages, used.messages)
    }
}

/// Bytes and messages counted against a quota, or a change of them (negative for removals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUse {
    pub bytes: i64,
    pub messages: i64,
}

impl QuotaUse {
    /// One message of `bytes` bytes.
    pub fn message(bytes: u64) -> QuotaUse {
        QuotaUse {
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            messages: 1,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.bytes == 0 && self.messages == 0
    }

    /// True when the change adds to the use (an addition that must be admitted first).
    pub fn adds(&self) -> bool {
        self.bytes > 0 || self.messages > 0
    }

    /// The delta line Courier appends for this change: `%12s %12s\n`, 26 bytes.
    pub fn line(&self) -> String {
        format!("{:>12} {:>12}\n", self.bytes, self.messages)
    }

    /// STORAGE in 1024-octet units, rounded up as Courier rounds (RFC 9208 §5.1).
    pub fn kibibytes(&self) -> u64 {
        u64::try_from(self.bytes).map_or(0, |b| b.div_ceil(1024))
    }
}

impl Add for QuotaUse {
    type Output = QuotaUse;
    fn add(self, other: QuotaUse) -> QuotaUse {
        QuotaUse {
            bytes: self.bytes.saturating_add(other.bytes),
            messages: self.messages.saturating_add(other.messages),
        }
    }
}

impl AddAssign for QuotaUse {
    fn add_assign(&mut self, other: QuotaUse) {
        *self = *self + other;
    }
}

impl Neg for QuotaUse {
    type Output = QuotaUse;
    fn neg(self) -> QuotaUse {
        QuotaUse {
            bytes: self.bytes.saturating_neg(),
            messages: self.messages.saturating_neg(),
        }
    }
}

/// Limits and use of a maildir with a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaReport {
    pub limits: QuotaLimits,
    pub used: QuotaUse,
}

/// What the first 5120 bytes of `maildirsize` say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SizeFile {
    limits: QuotaLimits,
    /// The sum of the change lines (zero when the file overflowed: not read).
    used: QuotaUse,
    /// Lines after the first, readable or not (Courier's `nlines`).
    changes: usize,
    /// The file fills the read buffer: its sum is not trusted.
    overflowed: bool,
}

impl SizeFile {
    /// Parses `maildirsize` as Courier's `do_maildir_openquotafile` does. `data` is at most
    /// [`READ_LIMIT`] bytes; that many means the file overflowed.
    fn parse(data: &[u8]) -> SizeFile {
        // Courier reads into a C string: a NUL ends it.
        let data = data.split(|&b| b == 0).next().unwrap_or_default();
        let overflowed = data.len() >= READ_LIMIT;
        // Lines as Courier walks them: nothing after the final newline is a line, but an
        // empty line before it is (and counts as a change line that changes nothing).
        let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if data.is_empty() || data.ends_with(b"\n") {
            lines.pop();
        }
        let mut lines = lines.into_iter();
        let first = lines.next().unwrap_or_default();
        let mut file = SizeFile {
            limits: QuotaLimits::parse(&String::from_utf8_lossy(first)),
            used: QuotaUse::default(),
            changes: 0,
            overflowed,
        };
        if overflowed {
            return file;
        }
        for line in lines {
            file.changes += 1;
            let mut at = 0;
            let Some(bytes) = signed_number(line, &mut at) else {
                continue;
            };
            let Some(messages) = signed_number(line, &mut at) else {
                continue;
            };
            file.used += QuotaUse { bytes, messages };
        }
        file
    }

    /// The sum says nothing reliable: recount.
    fn untrusted(&self) -> bool {
        self.overflowed || self.used.bytes < 0 || self.used.messages < 0
    }
}

/// Skips blanks, then reads an optional `-` and at least one digit from `line` at `*at`.
fn signed_number(line: &[u8], at: &mut usize) -> Option<i64> {
    while line.get(*at).is_some_and(|b| b.is_ascii_whitespace()) {
        *at += 1;
    }
    let negative = line.get(*at) == Some(&b'-');
    if negative {
        *at += 1;
    }
    let start = *at;
    let mut n: i64 = 0;
    while let Some(d) = line.get(*at).filter(|b| b.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        *at += 1;
    }
    if *at == start {
        return None;
    }
    Some(if negative { -n } else { n })
}

/// True when messages of the folder directory `dir` (`None`: INBOX) count towards the quota.
pub fn counts_folder(dir: Option<&str>) -> bool {
    dir != Some(UNCOUNTED_FOLDER)
}

/// True when the message file `name` counts: Courier's `maildirquota_countfile`, which passes
/// over files whose flags after `:2,` hold `T` (it reads the upper-case letters only).
pub fn counts_file(name: &str) -> bool {
    let name = name.rsplit('/').next().unwrap_or(name);
    let Some(at) = name.find(":2,") else {
        return true;
    };
    !name[at + 3..]
        .bytes()
        .take_while(u8::is_ascii_uppercase)
        .any(|b| b == b'T')
}

/// The size Courier's `maildir_parsequota` reads from a name: the digits after the last
/// `,S=` before the `:` (none at all means 0). `None` when there is no `,S=`.
pub fn size_in_name(name: &str) -> Option<u64> {
    let name = name.rsplit('/').next().unwrap_or(name);
    let base = name.split(':').next().unwrap_or(name);
    let at = base.rfind(",S=")?;
    let digits = &base[at + 3..];
    Some(
        digits
            .bytes()
            .take_while(u8::is_ascii_digit)
            .fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            }),
    )
}

/// The use one message file counts for in a counted folder, given a way to learn its size
/// when the name does not say it.
pub(crate) fn charge_of(name: &str, stat_size: impl FnOnce() -> Option<u64>) -> QuotaUse {
    if !counts_file(name) {
        return QuotaUse::default();
    }
    match size_in_name(name).or_else(stat_size) {
        Some(size) => QuotaUse::message(size),
        None => QuotaUse::default(),
    }
}

/// A maildir's quota: the limits the user record assigns, and `maildirsize` in its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    root: PathBuf,
    /// From the user record; `None` (or no limit in it) leaves the decision to the file.
    assigned: Option<QuotaLimits>,
}

/// The newest modification time of the directories a count looked at (seconds, nanoseconds).
type Stamp = (i64, i64);

impl Quota {
    /// The quota of the maildir at `root`, with the user record's quota string (`None`, or one
    /// without a limit: the file decides).
    pub fn new(root: &Path, assigned: Option<&str>) -> Quota {
        let assigned = assigned.map(QuotaLimits::parse).filter(QuotaLimits::is_set);
        Quota {
            root: root.to_path_buf(),
            assigned,
        }
    }

    /// The limits the user record assigns, if any.
    pub fn assigned(&self) -> Option<QuotaLimits> {
        self.assigned
    }

    /// Limits and use, recounting when the file cannot be trusted (as Courier's
    /// `maildir_readquota`); `None` when the maildir has no quota.
    pub fn report(&self) -> Result<Option<QuotaReport>, StoreError> {
        let root = self.open_root()?;
        let Some(loaded) = self.load(&root)? else {
            return Ok(None);
        };
        let used = match loaded.verdict(QuotaUse::default()) {
            Verdict::Fits | Verdict::Over => loaded.file.used,
            Verdict::Recount => self.recount(&root, loaded.limits)?,
        };
        let limits = loaded.limits;
        Ok(limits.is_set().then_some(QuotaReport { limits, used }))
    }

    /// Checks that `addition` fits, before the caller puts it in place: `Ok` when it does (or
    /// there is no quota), [`StoreError::OverQuota`] when it does not. A file that cannot be
    /// trusted is recounted first, as Courier's `maildir_quota_add_start`. Nothing is
    /// recorded: after the change the caller calls [`Quota::record`].
    pub fn admit(&self, addition: QuotaUse) -> Result<(), StoreError> {
        if !addition.adds() {
            return Ok(());
        }
        let root = self.open_root()?;
        let Some(loaded) = self.load(&root)? else {
            return Ok(());
        };
        match loaded.verdict(addition) {
            Verdict::Fits => Ok(()),
            Verdict::Over => Err(StoreError::OverQuota),
            Verdict::Recount => {
                let used = self.recount(&root, loaded.limits)?;
                if loaded.limits.exceeded_by(used + addition) {
                    Err(StoreError::OverQuota)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Records `change`, a change already made on disk, with one delta line, unless the file
    /// calls for the recount Courier's `maildir_quota_deleted` does first (the recount then
    /// already includes the change, so no line is added). Nothing happens without
    /// `maildirsize`. Failures are logged, not returned: the change itself has happened, and
    /// the 15-minute and 5120-byte rules repair a missing line.
    pub fn record(&self, change: QuotaUse) {
        if change.is_zero() {
            return;
        }
        super::crash::at("quota-recording");
        if let Err(e) = self.try_record(change) {
            log::warn!(
                "cannot record a quota change of {} bytes, {} messages in {}: {e}",
                change.bytes,
                change.messages,
                self.root.join(MAILDIRSIZE).display()
            );
        }
    }

    /// Records that messages using `removed` (positive amounts, as [`Folder::quota_charge`]
    /// gives them) have been removed from counted folders: an expunge, a purge, a move out
    /// of counted space. The one call for any removal.
    ///
    /// [`Folder::quota_charge`]: super::Folder::quota_charge
    pub fn record_removal(&self, removed: QuotaUse) {
        self.record(-removed);
    }

    /// Rebuilds `maildirsize` from the messages on disk (`mdimap quota --recalc`, and after a
    /// folder is deleted or renamed, as Courier does). `None` when the maildir has no quota.
    pub fn recalculate(&self) -> Result<Option<QuotaReport>, StoreError> {
        let root = self.open_root()?;
        let limits = match (self.assigned, read_size_file(&root)?) {
            (Some(assigned), _) => assigned,
            (None, Some((file, _))) => file.limits,
            (None, None) => return Ok(None),
        };
        let used = self.recount(&root, limits)?;
        Ok(limits.is_set().then_some(QuotaReport { limits, used }))
    }

    fn try_record(&self, change: QuotaUse) -> Result<(), StoreError> {
        let root = self.open_root()?;
        // Without the file there is nothing to record in, assigned limits or not (the next
        // admission makes it, counting what is on disk then).
        let Some((file, fresh)) = read_size_file(&root)? else {
            return Ok(());
        };
        let loaded = self.loaded(file, fresh);
        match loaded.verdict(change) {
            Verdict::Recount => self.recount(&root, loaded.limits).map(drop),
            Verdict::Fits | Verdict::Over => append_line(&root, change),
        }
    }

    /// The file and the limits that apply; `None` when there is no quota. Without the file
    /// but with assigned limits, the file is made (Courier's `maildir_quota_set`).
    fn load(&self, root: &Dir) -> Result<Option<Loaded>, StoreError> {
        if let Some((file, fresh)) = read_size_file(root)? {
            return Ok(Some(self.loaded(file, fresh)));
        }
        let Some(limits) = self.assigned else {
            return Ok(None);
        };
        let used = self.recount(root, limits)?;
        Ok(Some(Loaded {
            limits,
            stale_limits: false,
            file: SizeFile {
                limits,
                used,
                changes: 1,
                overflowed: false,
            },
            fresh: true,
        }))
    }

    /// The file as read, with the limits that apply to it.
    fn loaded(&self, file: SizeFile, fresh: bool) -> Loaded {
        Loaded {
            limits: self.assigned.unwrap_or(file.limits),
            stale_limits: self.assigned.is_some_and(|a| a != file.limits),
            file,
            fresh,
        }
    }

    /// Counts the maildir and replaces `maildirsize` with `limits` and the total; returns the
    /// total. Counted again while a counted directory changes under the count.
    fn recount(&self, root: &Dir, limits: QuotaLimits) -> Result<QuotaUse, StoreError> {
        let mut used = QuotaUse::default();
        for _ in 0..RECOUNT_ATTEMPTS {
            let (counted, seen) = count(root)?;
            used = counted;
            let contents = format!("{}\n{}", limits.definition(), used.line());
            let tmp = root.open_dir("tmp").map_err(|e| root.fail("tmp", e))?;
            replace_file(&tmp, root, MAILDIRSIZE, REBUILD_TAG, contents.as_bytes())?;
            if newest_stamp(root) == Some(seen) {
                return Ok(used);
            }
        }
        log::info!(
            "{} kept changing while its quota was counted; the last count stands",
            self.root.display()
        );
        Ok(used)
    }

    fn open_root(&self) -> Result<Dir, StoreError> {
        Dir::open_root(&self.root).map_err(|e| StoreError::io(&self.root, e))
    }
}

/// `maildirsize` as read, with the limits that apply.
struct Loaded {
    file: SizeFile,
    limits: QuotaLimits,
    /// The user record assigns other limits than line 1's: the file is rebuilt with them.
    stale_limits: bool,
    /// Younger than 15 minutes.
    fresh: bool,
}

/// What the file's numbers say about a change (Courier's `docheckquota`).
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Under the limits with the change.
    Fits,
    /// Over them, and the file is trusted: one change line, younger than 15 minutes.
    Over,
    /// The numbers cannot decide: count the maildir.
    Recount,
}

impl Loaded {
    fn verdict(&self, change: QuotaUse) -> Verdict {
        if self.file.untrusted() || self.stale_limits {
            return Verdict::Recount;
        }
        if !self.limits.exceeded_by(self.file.used + change) {
            return Verdict::Fits;
        }
        if self.file.changes == 1 && self.fresh {
            return Verdict::Over;
        }
        Verdict::Recount
    }
}

/// Reads the first 5120 bytes of `maildirsize` and says whether it is younger than 15
/// minutes; `None` when there is no file, or none that can be opened: a link (never
/// followed), something else than a file, one without permission. That is "no quota", as
/// when Courier's `maildir_safeopen` fails, and is logged; a soft quota is no barrier
/// against the maildir's own user, who may as well remove the file.
fn read_size_file(root: &Dir) -> Result<Option<(SizeFile, bool)>, StoreError> {
    let mut file = match root.open_file(MAILDIRSIZE) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            log::warn!("{}; taken as no quota file", root.fail(MAILDIRSIZE, e));
            return Ok(None);
        }
    };
    let data = read_at_most(&mut file, READ_LIMIT).map_err(|e| root.fail(MAILDIRSIZE, e))?;
    let modified = file
        .metadata()
        .map_err(|e| root.fail(MAILDIRSIZE, e))
        .map(|m| std::os::unix::fs::MetadataExt::mtime(&m))?;
    let fresh = now_secs() < modified.saturating_add(TRUSTED_SECS);
    Ok(Some((SizeFile::parse(&data), fresh)))
}

/// Up to `limit` bytes of `file`, reading on after short reads (as Courier does for NFS).
fn read_at_most(file: &mut File, limit: usize) -> io::Result<Vec<u8>> {
    let mut data = vec![0u8; limit];
    let mut filled = 0;
    while filled < limit {
        match file.read(&mut data[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    data.truncate(filled);
    Ok(data)
}

/// Appends one delta line to an existing `maildirsize` in one write.
fn append_line(root: &Dir, change: QuotaUse) -> Result<(), StoreError> {
    let mut file = match root.open_append(MAILDIRSIZE) {
        Ok(f) => f,
        // Removed meanwhile: the quota was switched off.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(root.fail(MAILDIRSIZE, e)),
    };
    file.write_all(change.line().as_bytes())
        .map_err(|e| root.fail(MAILDIRSIZE, e))
}

/// The folder directories a count looks at: the root (`None`) and every `.Name` except
/// `.Trash`, as Courier's `countsubdir` chooses them (no `maildirfolder` needed; links left).
fn counted_folders(root: &Dir) -> Result<Vec<Option<String>>, StoreError> {
    let mut folders = vec![None];
    for entry in root.entries().map_err(|e| StoreError::io(root.path(), e))? {
        if entry.kind == Kind::Symlink {
            continue;
        }
        let Ok(name) = entry.name.into_string() else {
            continue;
        };
        if name.starts_with('.') && name != "." && name != ".." && counts_folder(Some(&name)) {
            folders.push(Some(name));
        }
    }
    Ok(folders)
}

/// The `new` and `cur` directories of a counted folder, with their modification stamps;
/// what is not a directory (or is a link) is passed over, as Courier's failed `stat`.
fn folder_subdirs(root: &Dir, folder: Option<&str>) -> Vec<(Dir, Stamp)> {
    let top = match folder {
        None => None,
        Some(name) => match root.open_dir(name) {
            Ok(dir) => Some(dir),
            Err(_) => return Vec::new(),
        },
    };
    let parent = top.as_ref().unwrap_or(root);
    let mut subs = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(stat) = parent.stat(sub) else { continue };
        if Kind::of(&stat) != Kind::Dir {
            continue;
        }
        if let Ok(dir) = parent.open_dir(sub) {
            subs.push((dir, (stat.st_mtime, stat.st_mtime_nsec)));
        }
    }
    subs
}

/// Counts the maildir as Courier's recalculation does; returns the total and the newest
/// modification stamp of the directories counted.
fn count(root: &Dir) -> Result<(QuotaUse, Stamp), StoreError> {
    let mut used = QuotaUse::default();
    let mut newest: Stamp = (i64::MIN, 0);
    for folder in counted_folders(root)? {
        for (dir, stamp) in folder_subdirs(root, folder.as_deref()) {
            newest = newest.max(stamp);
            let Ok(entries) = dir.entries() else { continue };
            for entry in entries {
                let Ok(name) = entry.name.into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                used += charge_of(&name, || {
                    dir.stat(&name)
                        .ok()
                        .map(|s| u64::try_from(s.st_size).unwrap_or(0))
                });
            }
        }
    }
    Ok((used, newest))
}

/// The newest modification stamp of the counted directories now (Courier's `statcurnew`).
fn newest_stamp(root: &Dir) -> Option<Stamp> {
    let mut newest: Stamp = (i64::MIN, 0);
    for folder in counted_folders(root).ok()? {
        for (_, stamp) in folder_subdirs(root, folder.as_deref()) {
            newest = newest.max(stamp);
        }
    }
    Some(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, SystemTime};

    /// `maildirmake -q 1000S,5C Maildir` from Debian's maildrop 2.9.3, byte for byte.
    const MAILDIRMAKE_Q: &[u8] = b"1000S,5C\n           0            0\n";
    /// The same file after deliverquota delivered an 18-byte message, then was refused one
    /// of 2015 bytes (which made it recount), then delivered 18 bytes again.
    const AFTER_DELIVERQUOTA: &[u8] =
        b"1000S,5C\n          18            1\n          18            1\n";

    fn maildir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Maildir");
        for sub in ["", "cur", "new", "tmp"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        (dir, root)
    }

    fn folder(root: &Path, dir: &str) -> PathBuf {
        let path = root.join(dir);
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(path.join(sub)).unwrap();
        }
        fs::write(path.join("maildirfolder"), b"").unwrap();
        path
    }

    fn put(folder: &Path, sub: &str, name: &str, bytes: usize) {
        fs::write(folder.join(sub).join(name), vec![b'x'; bytes]).unwrap();
    }

    fn size_file(root: &Path) -> String {
        String::from_utf8(fs::read(root.join(MAILDIRSIZE)).unwrap()).unwrap()
    }

    fn age(root: &Path, secs: u64) {
        let file = File::options()
            .write(true)
            .open(root.join(MAILDIRSIZE))
            .unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    fn used(bytes: i64, messages: i64) -> QuotaUse {
        QuotaUse { bytes, messages }
    }

    #[test]
    fn limits_parse_as_courier_parses_them() {
        let l = |bytes, messages| QuotaLimits { bytes, messages };
        assert_eq!(QuotaLimits::parse("100000S,50C"), l(100_000, 50));
        assert_eq!(QuotaLimits::parse("50C"), l(0, 50));
        assert_eq!(QuotaLimits::parse("50C,100S"), l(100, 50));
        assert_eq!(QuotaLimits::parse(""), l(0, 0));
        // Unknown kinds (B, blocks) are passed over; what follows still counts.
        assert_eq!(QuotaLimits::parse("10B,5S"), l(5, 0));
        assert_eq!(QuotaLimits::parse(" 7S , 3C "), l(7, 3));
        assert!(!QuotaLimits::parse("0S,0C").is_set());
        assert!(!QuotaLimits::parse("garbage").is_set());
        assert_eq!(l(100_000, 50).definition(), "100000S,50C");
        assert_eq!(l(0, 50).definition(), "50C");
        assert_eq!(l(7, 0).definition(), "7S");
        assert_eq!(l(0, 0).definition(), "");
    }

    #[test]
    fn a_limit_is_exceeded_only_when_passed() {
        let limits = QuotaLimits {
            bytes: 100,
            messages: 2,
        };
        assert!(!limits.exceeded_by(used(100, 2)));
        assert!(limits.exceeded_by(used(101, 0)));
        assert!(limits.exceeded_by(used(0, 3)));
        assert!(!QuotaLimits::default().exceeded_by(used(i64::MAX, i64::MAX)));
    }

    #[test]
    fn delta_lines_are_courier_s_26_bytes() {
        assert_eq!(used(120, 1).line(), "         120            1\n");
        assert_eq!(used(-24, -1).line(), "         -24           -1\n");
        assert_eq!(used(-24, -1).line().len(), 26);
        assert_eq!(used(1025, 1).kibibytes(), 2);
        assert_eq!(used(1024, 1).kibibytes(), 1);
        assert_eq!(used(-5, 0).kibibytes(), 0);
    }

    #[test]
    fn size_files_parse_tolerantly() {
        let f = SizeFile::parse(MAILDIRMAKE_Q);
        assert_eq!(f.limits, QuotaLimits::parse("1000S,5C"));
        assert_eq!((f.used, f.changes, f.overflowed), (used(0, 0), 1, false));
        let f = SizeFile::parse(AFTER_DELIVERQUOTA);
        assert_eq!((f.used, f.changes), (used(36, 2), 2));
        // Any blanks; a last line without its newline; a line that is not two numbers
        // still counts as a line (Courier's nlines) but adds nothing.
        let f = SizeFile::parse(b"50C\n\t12   1\n  junk\n\n-2 -1");
        assert_eq!(f.limits.messages, 50);
        assert_eq!((f.used, f.changes), (used(10, 0), 4));
        // One number alone adds nothing.
        assert_eq!(SizeFile::parse(b"5S\n 12\n").used, used(0, 0));
        // Empty file: no limits, no lines.
        let f = SizeFile::parse(b"");
        assert_eq!((f.limits.is_set(), f.changes), (false, 0));
        // Only the limits line.
        assert_eq!(SizeFile::parse(b"5S\n").changes, 0);
        // A NUL ends what Courier reads.
        assert_eq!(SizeFile::parse(b"5S\n 3 1\n\0 9 9\n").used, used(3, 1));
        // A negative sum is not trusted.
        assert!(SizeFile::parse(b"5S\n-3 -1\n").untrusted());
        // 5120 bytes fill Courier's buffer: only the limits are believed.
        let mut big = b"100S,5C\n".to_vec();
        while big.len() < READ_LIMIT {
            big.extend_from_slice(used(1, 1).line().as_bytes());
        }
        big.truncate(READ_LIMIT);
        let f = SizeFile::parse(&big);
        assert!(f.overflowed && f.untrusted());
        assert_eq!(f.limits.messages, 5);
        assert!(!SizeFile::parse(&big[..READ_LIMIT - 1]).overflowed);
    }

    #[test]
    fn which_files_count_and_their_sizes() {
        assert!(counts_file("1.M2P3.h,S=5:2,S"));
        assert!(counts_file("1.M2P3.h"));
        assert!(!counts_file("1.M2P3.h,S=5:2,T"));
        assert!(!counts_file("1.M2P3.h,S=5:2,FST"));
        assert!(!counts_file("cur/1.M2P3.h:2,ST"));
        // Courier reads upper-case letters only; a lower-case one ends its look.
        assert!(counts_file("1.M2P3.h:2,aT"));
        assert_eq!(size_in_name("1.M2.h,S=120:2,S"), Some(120));
        assert_eq!(size_in_name("1.M2.h,S=120"), Some(120));
        assert_eq!(size_in_name("1.M2.h,S=5,W=7:2,"), Some(5));
        assert_eq!(size_in_name("1.M2.h,S=:2,"), Some(0));
        assert_eq!(size_in_name("1.M2.h:2,S"), None);
        assert_eq!(size_in_name("new/1.M2.h,S=9"), Some(9));
        assert!(counts_folder(None));
        assert!(counts_folder(Some(".Sent")));
        assert!(counts_folder(Some(".Trash.Old")));
        assert!(!counts_folder(Some(".Trash")));
    }

    #[test]
    fn no_file_and_no_assigned_limits_is_no_quota() {
        let (_d, root) = maildir();
        let quota = Quota::new(&root, None);
        assert_eq!(quota.report().unwrap(), None);
        quota.admit(used(1 << 40, 1 << 20)).unwrap();
        quota.record(used(10, 1));
        assert_eq!(quota.recalculate().unwrap(), None);
        assert!(!root.join(MAILDIRSIZE).exists());
        // A quota string without a limit assigns nothing either.
        assert_eq!(Quota::new(&root, Some("0S")).assigned(), None);
    }

    #[test]
    fn additions_are_admitted_then_recorded_one_line_each() {
        let (_d, root) = maildir();
        fs::write(root.join(MAILDIRSIZE), MAILDIRMAKE_Q).unwrap();
        let quota = Quota::new(&root, None);
        quota.admit(used(600, 1)).unwrap();
        quota.record(used(600, 1));
        quota.record(used(-100, -1));
        assert_eq!(
            size_file(&root),
            format!(
                "1000S,5C\n{}{}{}",
                used(0, 0).line(),
                used(600, 1).line(),
                used(-100, -1).line()
            )
        );
        assert_eq!(
            quota.report().unwrap(),
            Some(QuotaReport {
                limits: QuotaLimits::parse("1000S,5C"),
                used: used(500, 0),
            })
        );
        // Filling the quota exactly is allowed; one byte more is not.
        quota.admit(used(500, 5)).unwrap();
        // Over by three lines: recounted from disk (an empty maildir) before refusing.
        assert!(matches!(
            quota.admit(used(1001, 1)),
            Err(StoreError::OverQuota)
        ));
        assert_eq!(size_file(&root), "1000S,5C\n           0            0\n");
        assert!(matches!(
            quota.admit(used(0, 6)),
            Err(StoreError::OverQuota)
        ));
        // Changes that add nothing need no admission.
        quota.admit(used(-5000, -1)).unwrap();
    }

    #[test]
    fn one_fresh_line_over_quota_is_trusted_an_old_one_is_recounted() {
        let (_d, root) = maildir();
        // The file says 900 bytes are used; the maildir holds 100.
        put(&root, "cur", "a,S=100:2,S", 100);
        fs::write(root.join(MAILDIRSIZE), b"1000S\n900 1\n").unwrap();
        let quota = Quota::new(&root, None);
        assert!(matches!(
            quota.admit(used(200, 1)),
            Err(StoreError::OverQuota)
        ));
        assert_eq!(size_file(&root), "1000S\n900 1\n", "trusted, not recounted");
        age(&root, 15 * 60 + 5);
        quota.admit(used(200, 1)).unwrap();
        assert_eq!(size_file(&root), format!("1000S\n{}", used(100, 1).line()));
    }

    #[test]
    fn untrusted_files_are_recounted() {
        let (_d, root) = maildir();
        put(&root, "new", "a,S=7", 7);
        let quota = Quota::new(&root, None);
        let recounted = format!("50S\n{}", used(7, 1).line());
        // Negative sum.
        fs::write(root.join(MAILDIRSIZE), b"50S\n-3 -1\n").unwrap();
        assert_eq!(quota.report().unwrap().unwrap().used, used(7, 1));
        assert_eq!(size_file(&root), recounted);
        // 5120 bytes or more.
        let mut big = b"50S\n".to_vec();
        while big.len() < READ_LIMIT + 40 {
            big.extend_from_slice(used(0, 0).line().as_bytes());
        }
        fs::write(root.join(MAILDIRSIZE), &big).unwrap();
        quota.admit(used(1, 1)).unwrap();
        assert_eq!(size_file(&root), recounted);
    }

    #[test]
    fn a_removal_that_calls_for_a_recount_adds_no_line() {
        let (_d, root) = maildir();
        put(&root, "cur", "a,S=30:2,", 30);
        // Still over quota after the removal, by several lines: Courier recounts when
        // recording it; the recount already lacks the removed message, so no line follows.
        fs::write(root.join(MAILDIRSIZE), b"40S\n30 1\n30 1\n").unwrap();
        let quota = Quota::new(&root, None);
        quota.record_removal(used(10, 1));
        assert_eq!(size_file(&root), format!("40S\n{}", used(30, 1).line()));
        // Under the limits after it: one line, as Courier appends it.
        quota.record_removal(used(30, 1));
        assert_eq!(
            size_file(&root),
            format!("40S\n{}{}", used(30, 1).line(), used(-30, -1).line())
        );
    }

    #[test]
    fn the_recount_counts_what_courier_counts() {
        let (_d, root) = maildir();
        put(&root, "new", "n1,S=10", 10);
        put(&root, "new", "n2", 3); // no ,S=: its size on disk
        put(&root, "cur", "c1,S=20:2,S", 999); // the name wins over the disk
        put(&root, "cur", "c2,S=40:2,ST", 40); // \Deleted: not counted
        put(&root, "cur", ".hidden,S=50", 50);
        let sent = folder(&root, ".Sent");
        put(&sent, "cur", "s1,S=100:2,", 100);
        let trash = folder(&root, ".Trash");
        put(&trash, "cur", "t1,S=1000:2,", 1000);
        let old_trash = folder(&root, ".Trash.Old");
        put(&old_trash, "new", "o1,S=5", 5);
        // A linked folder is not counted, nor is a dot file or a directory without cur/.
        let (_o, outside) = maildir();
        put(&outside, "cur", "x,S=7000:2,", 7000);
        std::os::unix::fs::symlink(&outside, root.join(".Linked")).unwrap();
        fs::write(root.join(".notafolder"), b"x").unwrap();
        fs::create_dir(root.join(".Empty")).unwrap();
        fs::write(root.join(MAILDIRSIZE), b"1000000S,100C\n").unwrap();
        let report = Quota::new(&root, None).recalculate().unwrap().unwrap();
        assert_eq!(report.used, used(10 + 3 + 20 + 100 + 5, 5));
        assert_eq!(
            size_file(&root),
            format!("1000000S,100C\n{}", used(138, 5).line())
        );
        // Nothing is left in tmp/.
        assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn assigned_limits_make_or_rewrite_the_file() {
        let (_d, root) = maildir();
        put(&root, "cur", "a,S=10:2,", 10);
        let quota = Quota::new(&root, Some("5000S,10C"));
        assert_eq!(
            quota.assigned(),
            Some(QuotaLimits {
                bytes: 5000,
                messages: 10
            })
        );
        // No file: made with the assigned limits and the count (maildir_quota_set).
        quota.admit(used(100, 1)).unwrap();
        assert_eq!(
            size_file(&root),
            format!("5000S,10C\n{}", used(10, 1).line())
        );
        quota.record(used(100, 1));
        // Other limits on line 1: rebuilt with the assigned ones before anything else.
        fs::write(root.join(MAILDIRSIZE), b"1S\n10 1\n").unwrap();
        let report = quota.report().unwrap().unwrap();
        assert_eq!(report.limits.bytes, 5000);
        assert_eq!(
            size_file(&root),
            format!("5000S,10C\n{}", used(10, 1).line())
        );
        // Without assigned limits, line 1 decides.
        fs::write(root.join(MAILDIRSIZE), b"1S\n10 1\n").unwrap();
        let plain = Quota::new(&root, None);
        assert!(matches!(
            plain.admit(used(1, 0)),
            Err(StoreError::OverQuota)
        ));
    }

    #[test]
    fn a_linked_maildirsize_is_not_followed() {
        let (_d, root) = maildir();
        let elsewhere = root.parent().unwrap().join("elsewhere");
        fs::write(&elsewhere, b"1S\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join(MAILDIRSIZE)).unwrap();
        let quota = Quota::new(&root, None);
        // Not read (its 1-byte limit would refuse this), not written through.
        assert_eq!(quota.report().unwrap(), None);
        quota.admit(used(5, 1)).unwrap();
        quota.record(used(5, 1));
        assert_eq!(fs::read(&elsewhere).unwrap(), b"1S\n");
        // With assigned limits the link is replaced by a counted file.
        Quota::new(&root, Some("100S")).admit(used(5, 1)).unwrap();
        assert_eq!(fs::read(&elsewhere).unwrap(), b"1S\n");
        assert_eq!(size_file(&root), format!("100S\n{}", used(0, 0).line()));
    }
}
