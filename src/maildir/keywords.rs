//! Custom keywords in `courierimapkeywords/` (spec/courier-files.md §2): reading and merging
//! per-message update files into `:list`, and writing update files.
//!
//! Owns the file formats and the merge protocol; must not validate IMAP keyword syntax (the
//! protocol layer does) beyond refusing what would corrupt the files (line breaks).

use std::collections::BTreeMap;

use crate::maildir::fast::{FastMap, FastSet};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io;
use std::time::{Duration, Instant, SystemTime};

use super::beneath::{Dir, Kind, report_skipped};
use super::error::StoreError;
use super::unique::{now_secs, replace_file, replace_file_unsynced};

/// Directory of keyword files inside a folder.
pub(crate) const KEYWORDS_DIR: &str = "courierimapkeywords";
/// The consolidated list.
const LIST_NAME: &str = ":list";
/// Age after which leftover update and temp files may go.
const AGE_LIMIT_SECS: i64 = 15 * 60;
/// Length of one age bucket.
const BUCKET_SECS: i64 = 300;
/// How often to restart when update files vanish under us (another process merging).
const ATTEMPTS: u32 = 5;

/// Keywords per message base name.
pub(crate) type KeywordMap = FastMap<String, Vec<String>>;

/// Replaces characters Courier forbids in keywords (`KEYWORD_IMAPVERBOTTEN`) with `_`.
fn sanitize(keyword: &str) -> String {
    keyword
        .chars()
        .map(|c| {
            if matches!(c, ' ' | '(' | ')' | '{' | '%' | '*' | '"' | '\\' | ']') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Drops empty and case-insensitively repeated keywords, keeping the first spelling.
pub(crate) fn dedupe(keywords: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = FastSet::default();
    keywords
        .into_iter()
        .filter(|k| !k.is_empty() && seen.insert(k.to_ascii_lowercase()))
        .collect()
}

fn parse_update(bytes: &[u8]) -> Vec<String> {
    dedupe(String::from_utf8_lossy(bytes).lines().map(sanitize))
}

/// Parses `:list`.
pub(crate) fn parse_list(bytes: &[u8]) -> KeywordMap {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split('\n');
    let mut table = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        table.push(sanitize(line));
    }
    let mut map = KeywordMap::default();
    for line in lines {
        let Some((basename, indexes)) = line.rsplit_once(':') else {
            continue;
        };
        if basename.is_empty() {
            continue;
        }
        let keywords = indexes
            .split_ascii_whitespace()
            .filter_map(|i| i.parse::<usize>().ok())
            .filter_map(|i| table.get(i).cloned());
        let keywords = dedupe(keywords);
        if !keywords.is_empty() {
            map.insert(basename.to_string(), keywords);
        }
    }
    map
}

/// Formats `:list`: the keyword table in order of first use, a blank line, then one line per
/// message with keywords, sorted by base name.
pub(crate) fn format_list(map: &KeywordMap) -> Vec<u8> {
    let sorted: BTreeMap<&String, &Vec<String>> =
        map.iter().filter(|(_, k)| !k.is_empty()).collect();
    let mut table: Vec<&str> = Vec::new();
    let mut index: FastMap<String, usize> = FastMap::default();
    let mut body = String::new();
    for (basename, keywords) in sorted {
        let mut line = format!("{basename}:");
        let mut first = true;
        for keyword in keywords {
            let key = keyword.to_ascii_lowercase();
            let i = *index.entry(key).or_insert_with(|| {
                table.push(keyword);
                table.len() - 1
            });
            if !first {
                line.push(' ');
            }
            first = false;
            line.push_str(&i.to_string());
        }
        body.push_str(&line);
        body.push('\n');
    }
    let mut out = String::new();
    for keyword in table {
        out.push_str(keyword);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&body);
    out.into_bytes()
}

/// Parses `.<N>.<basename>` (N decimal without leading zero).
fn parse_merged(name: &str) -> Option<(i64, &str)> {
    let rest = name.strip_prefix('.')?;
    let (n, basename) = rest.split_once('.')?;
    if n.is_empty()
        || (n.len() > 1 && n.starts_with('0'))
        || !n.bytes().all(|b| b.is_ascii_digit())
        || basename.is_empty()
    {
        return None;
    }
    Some((n.parse().ok()?, basename))
}

/// Seconds since `name` in `dir` was last modified; `None` if it cannot be told.
fn age_secs(dir: &Dir, name: &str) -> Option<i64> {
    let stat = dir.stat(name).ok()?;
    Some(now_secs().saturating_sub(stat.st_mtime))
}

fn remove_quietly(dir: &Dir, name: &str) {
    if let Err(e) = dir.remove_file(name)
        && e.kind() != io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", dir.path().join(name).display());
    }
}

/// Loads the keywords of a folder, merging update files (spec §2.3). `existing` holds the
/// base names of the messages in `new/` and `cur/`. With `write` false nothing on disk
/// changes (read-only sessions); with it, `tmp` is where new files are written first.
pub(crate) fn load(
    folder: &Dir,
    tmp: &Dir,
    existing: &FastSet<String>,
    write: bool,
) -> Result<KeywordMap, StoreError> {
    let dir = match folder.open_dir(KEYWORDS_DIR) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(KeywordMap::default()),
        // Something else under that name: no keywords, as for Courier.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(KeywordMap::default()),
        Err(e) => return Err(folder.fail(KEYWORDS_DIR, e)),
    };
    for attempt in 1..=ATTEMPTS {
        if let Some(map) = load_once(folder, tmp, &dir, existing, write, attempt == ATTEMPTS)? {
            return Ok(map);
        }
    }
    Err(StoreError::io(
        dir.path(),
        io::Error::other("keyword files kept vanishing while merging"),
    ))
}

/// One pass of the merge; `None` means an update file vanished and the caller should retry.
fn load_once(
    folder: &Dir,
    tmp: &Dir,
    dir: &Dir,
    existing: &FastSet<String>,
    write: bool,
    tolerate_vanished: bool,
) -> Result<Option<KeywordMap>, StoreError> {
    let bucket = now_secs().div_euclid(BUCKET_SECS);
    let mut fresh: FastSet<String> = FastSet::default();
    let mut merged: FastMap<String, (i64, String)> = FastMap::default();
    let mut obsolete = Vec::new();
    let entries = dir.entries().map_err(|e| StoreError::io(dir.path(), e))?;
    let mut inodes: FastMap<String, u64> = FastMap::default();
    for entry in entries {
        let Ok(name) = entry.name.into_string() else {
            continue;
        };
        inodes.insert(name.clone(), entry.ino);
        if entry.kind == Kind::Symlink {
            report_skipped(&dir.path().join(&name), entry.kind, "a keyword file");
            continue;
        }
        if name == LIST_NAME || entry.kind != Kind::File {
            continue;
        }
        if let Some((n, basename)) = parse_merged(&name) {
            match merged.get(basename) {
                Some((old, _)) if *old >= n => obsolete.push(name.clone()),
                _ => {
                    if let Some((_, old_name)) =
                        merged.insert(basename.to_string(), (n, name.clone()))
                    {
                        obsolete.push(old_name);
                    }
                }
            }
        } else if name.starts_with('.') {
            if write && age_secs(dir, &name).is_some_and(|age| age > AGE_LIMIT_SECS) {
                remove_quietly(dir, &name);
            }
        } else {
            fresh.insert(name);
        }
    }
    if write {
        for name in &obsolete {
            remove_quietly(dir, name);
        }
    }

    // The newest update of each message overrides the list.
    let mut known = ReadBefore::of(folder, dir, &inodes);
    let mut updates: FastMap<String, Vec<String>> = FastMap::default();
    let sources = fresh.iter().map(|b| (b.clone(), b.clone())).chain(
        merged
            .iter()
            .filter(|(b, _)| !fresh.contains(*b))
            .map(|(b, (_, n))| (b.clone(), n.clone())),
    );
    for (basename, file_name) in sources {
        let ino = inodes.get(&file_name).copied().unwrap_or(0);
        match known.read(dir, &file_name, ino) {
            Ok(keywords) => {
                updates.insert(basename, keywords);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !tolerate_vanished {
                    return Ok(None);
                }
            }
            Err(e) => return Err(dir.fail(&file_name, e)),
        }
    }

    let old_list = match dir.read(LIST_NAME) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(dir.fail(LIST_NAME, e)),
    };
    let mut map: KeywordMap = parse_list(&old_list)
        .into_iter()
        .filter(|(b, _)| existing.contains(b))
        .collect();
    for (basename, keywords) in updates {
        if !existing.contains(&basename) {
            continue;
        }
        if keywords.is_empty() {
            map.remove(&basename);
        } else {
            map.insert(basename, keywords);
        }
    }
    if !write {
        return Ok(Some(map));
    }
    known.save(folder, tmp);

    let new_list = format_list(&map);
    if new_list != old_list {
        replace_file(tmp, dir, LIST_NAME, "keywords", &new_list)?;
        super::crash::at("keywords-merged");
    }
    // Fresh updates are now in :list; keep them a while as `.N.` for readers that still
    // hold an older :list (NFS attribute caching).
    let now = SystemTime::now();
    for basename in &fresh {
        if !existing.contains(basename) {
            continue;
        }
        let previous = merged.get(basename);
        let n = previous.map_or(bucket + 1, |(old, _)| (*old).max(bucket + 1));
        let target = format!(".{n}.{basename}");
        match dir.rename(basename, dir, &target) {
            Ok(()) => {
                if let Err(e) = dir.set_modified(&target, now) {
                    log::debug!("cannot touch {}: {e}", dir.path().join(&target).display());
                }
                if let Some((_, old_name)) = previous
                    && *old_name != target
                {
                    remove_quietly(dir, old_name);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(dir.fail(&target, e)),
        }
    }
    for (basename, (n, name)) in &merged {
        let ino = inodes.get(name).copied().unwrap_or(0);
        let mut old_enough = || {
            known
                .age(dir, name, ino)
                .is_some_and(|age| age > AGE_LIMIT_SECS)
        };
        let lone_aged = !fresh.contains(basename) && *n < bucket;
        if (lone_aged || !existing.contains(basename)) && old_enough() {
            remove_quietly(dir, name);
        }
    }
    for basename in fresh.iter().filter(|b| !existing.contains(*b)) {
        let ino = inodes.get(basename).copied().unwrap_or(0);
        if known
            .age(dir, basename, ino)
            .is_some_and(|age| age > AGE_LIMIT_SECS)
        {
            remove_quietly(dir, basename);
        }
    }
    Ok(Some(map))
}

/// mdimap's own record, beside `courierimapkeywords/`, of what [`ReadBefore`] learnt, so
/// that a new session (a new process) does not read again every update file the last one
/// read. Courier-IMAP ignores it; a missing, damaged or stale one only costs the reads.
pub(crate) const LEARNT_NAME: &str = "mdimapkeywords";
/// The record's first line.
const LEARNT_MAGIC: &str = "mdimapkeywords 1";

/// What was learnt of the update files of one keyword directory, by name and inode: their
/// keywords and modification times. Every rescan of a folder merges its update files; a
/// merged update stays as `.N.<message>` for 15 minutes (for NFS readers with an older
/// `:list`) and is read at each merge, and the age of each one whose message is gone is
/// looked at, so a folder whose keywords change often (imaptest's stress mode: thousands
/// in a minute) cost each command thousands of small reads and `stat`s. An update file is
/// never written in place (made in tmp/ and renamed, then renamed to `.N.` and touched
/// once), so a name that still names the inode learnt before still holds what was read; a
/// time learnt before that touch is the update's own, older, which could only hasten the
/// removal of the update of a message that no longer exists. What a listing no longer
/// shows is forgotten at once, so an inode number freed and given to a new file of the
/// same name would have to happen between two listings to be mistaken.
///
/// Kept in memory for the process (by the keyword directory's identity), and in
/// [`LEARNT_NAME`] for the processes after it.
struct ReadBefore {
    key: (u64, u64),
    files: FastMap<String, Learnt>,
    /// Learnt something the record does not have yet.
    news: bool,
}

#[derive(Default, Clone, PartialEq, Debug)]
struct Learnt {
    ino: u64,
    keywords: Option<Vec<String>>,
    mtime: Option<i64>,
}

type ReadCache = FastMap<(u64, u64), FastMap<String, Learnt>>;

fn read_cache() -> std::sync::MutexGuard<'static, ReadCache> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<ReadCache>> = std::sync::OnceLock::new();
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The record's text: a line per file, `<inode> <mtime or -> <name>`, then, when its
/// keywords are known, a tab and the keywords separated by tabs (`-` after the name when
/// they are not). Names with a tab or line break are not kept (maildir names have none;
/// keywords never hold control characters).
fn format_learnt(files: &FastMap<String, Learnt>) -> Vec<u8> {
    let mut out = format!("{LEARNT_MAGIC}\n");
    let mut names: Vec<&String> = files.keys().collect();
    names.sort();
    for name in names {
        let l = &files[name];
        if name.contains(['\t', '\n', '\r', ' ']) {
            continue;
        }
        let mtime = l.mtime.map_or("-".to_string(), |t| t.to_string());
        out.push_str(&format!("{} {mtime} {name}", l.ino));
        match &l.keywords {
            Some(k) => {
                out.push('\t');
                out.push_str(&k.join("\t"));
            }
            None => out.push_str(" -"),
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Parses the record; a line that does not parse is skipped, a foreign file is empty.
fn parse_learnt(bytes: &[u8]) -> FastMap<String, Learnt> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let mut files = FastMap::default();
    if lines.next() != Some(LEARNT_MAGIC) {
        return files;
    }
    for line in lines {
        let (head, keywords) = match line.split_once('\t') {
            Some((head, rest)) => (
                head,
                Some(
                    rest.split('\t')
                        .filter(|k| !k.is_empty())
                        .map(String::from)
                        .collect(),
                ),
            ),
            None => match line.strip_suffix(" -") {
                Some(head) => (head, None),
                None => continue,
            },
        };
        let mut parts = head.splitn(3, ' ');
        let (Some(ino), Some(mtime), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(ino) = ino.parse::<u64>() else {
            continue;
        };
        let mtime = match mtime {
            "-" => None,
            t => match t.parse::<i64>() {
                Ok(t) => Some(t),
                Err(_) => continue,
            },
        };
        if ino == 0 || name.is_empty() {
            continue;
        }
        files.insert(
            name.to_string(),
            Learnt {
                ino,
                keywords,
                mtime,
            },
        );
    }
    files
}

impl ReadBefore {
    /// What was learnt before in `dir` (the keyword directory of `folder`) and is still
    /// listed (`listed`: name → inode): this process's memory, else the folder's record.
    fn of(folder: &Dir, dir: &Dir, listed: &FastMap<String, u64>) -> ReadBefore {
        let key = dir.identity().unwrap_or((0, 0));
        let remembered = read_cache().remove(&key);
        let mut files = match remembered {
            Some(files) => files,
            None => folder
                .read(LEARNT_NAME)
                .map(|b| parse_learnt(&b))
                .unwrap_or_default(),
        };
        files.retain(|name, l| listed.get(name) == Some(&l.ino));
        ReadBefore {
            key,
            files,
            news: false,
        }
    }

    fn learnt(&mut self, name: &str, ino: u64) -> Option<&mut Learnt> {
        if ino == 0 {
            return None;
        }
        let l = self.files.entry(name.to_string()).or_default();
        if l.ino != ino {
            *l = Learnt {
                ino,
                ..Learnt::default()
            };
        }
        Some(l)
    }

    /// The keywords in update file `name` (inode `ino`), read once.
    fn read(&mut self, dir: &Dir, name: &str, ino: u64) -> io::Result<Vec<String>> {
        if let Some(Learnt {
            keywords: Some(k), ..
        }) = self.learnt(name, ino)
        {
            return Ok(k.clone());
        }
        let keywords = parse_update(&dir.read(name)?);
        if let Some(l) = self.learnt(name, ino) {
            l.keywords = Some(keywords.clone());
            self.news = true;
        }
        Ok(keywords)
    }

    /// Seconds since update file `name` (inode `ino`) was last modified, looked up once.
    fn age(&mut self, dir: &Dir, name: &str, ino: u64) -> Option<i64> {
        let known = self.learnt(name, ino).and_then(|l| l.mtime);
        let mtime = match known {
            Some(t) => t,
            None => {
                let t = dir.stat(name).ok()?.st_mtime;
                if let Some(l) = self.learnt(name, ino) {
                    l.mtime = Some(t);
                    self.news = true;
                }
                t
            }
        };
        Some(now_secs().saturating_sub(mtime))
    }

    /// Writes the folder's record when this merge learnt something. Without fsync: it is
    /// derived data, checked against the listing before use.
    fn save(&mut self, folder: &Dir, tmp: &Dir) {
        if !self.news {
            return;
        }
        self.files
            .retain(|_, l| l.keywords.is_some() || l.mtime.is_some());
        let text = format_learnt(&self.files);
        match replace_file_unsynced(tmp, folder, LEARNT_NAME, "kwlearnt", &text) {
            Ok(()) => self.news = false,
            Err(e) => log::debug!("cannot keep what was read of the keywords: {e}"),
        }
    }
}

impl Drop for ReadBefore {
    fn drop(&mut self) {
        if self.key != (0, 0) {
            read_cache().insert(self.key, std::mem::take(&mut self.files));
        }
    }
}

/// Refuses base names that could address anything but a message's update file.
fn check_basename(basename: &str) -> Result<(), StoreError> {
    if basename.is_empty() || basename.starts_with('.') || basename.contains(['/', ':', '\0']) {
        return Err(StoreError::InvalidName(basename.to_string()));
    }
    Ok(())
}

/// Writes the complete keyword set of one message as an update file (IMAP_KEYWORDS=1 style:
/// written in the folder's `tmp`, renamed into `courierimapkeywords/<basename>`).
///
/// Not fsynced: a keyword is as durable as a flag, whose change is a rename that no maildir
/// writer syncs. A crash may lose the last keyword changes as it may lose the last flag
/// changes; the rename still makes each update whole or absent. (Two fsyncs for each
/// message of a STORE were most of what a STORE of keywords cost.)
pub(crate) fn write_update(
    folder: &Dir,
    tmp: &Dir,
    basename: &str,
    keywords: &[String],
) -> Result<(), StoreError> {
    check_basename(basename)?;
    if let Some(bad) = keywords.iter().find(|k| k.contains(['\n', '\r', '\0'])) {
        return Err(StoreError::Cannot(format!(
            "keyword {bad:?} contains a line break"
        )));
    }
    if let Err(e) = folder.mkdir(KEYWORDS_DIR, 0o700)
        && e.kind() != io::ErrorKind::AlreadyExists
    {
        return Err(folder.fail(KEYWORDS_DIR, e));
    }
    let dir = folder
        .open_dir(KEYWORDS_DIR)
        .map_err(|e| folder.fail(KEYWORDS_DIR, e))?;
    let mut contents = String::new();
    for keyword in dedupe(keywords.iter().cloned()) {
        contents.push_str(&keyword);
        contents.push('\n');
    }
    replace_file_unsynced(tmp, &dir, basename, "keywords", contents.as_bytes())
}

/// True when `courierimapkeywords/` holds anything besides `:list`: update files (fresh
/// or merged `.N.` ones) override `:list` for their messages, so `write_list` alone would
/// not take effect for those.
pub(crate) fn has_update_files(folder: &Dir) -> Result<bool, StoreError> {
    let dir = match folder.open_dir(KEYWORDS_DIR) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(folder.fail(KEYWORDS_DIR, e)),
    };
    let entries = dir.entries().map_err(|e| StoreError::io(dir.path(), e))?;
    Ok(entries.iter().any(|entry| entry.name != LIST_NAME))
}

/// Replaces `:list` with `map` in one write (by way of `tmp`, fsync, rename), creating the
/// directory: for setting the keywords of many messages at once (a migration) without one
/// update file per message. Only correct while `has_update_files` is false.
pub(crate) fn write_list(folder: &Dir, tmp: &Dir, map: &KeywordMap) -> Result<(), StoreError> {
    if let Some(bad) = map
        .values()
        .flatten()
        .find(|k| k.contains(['\n', '\r', '\0']))
    {
        return Err(StoreError::Cannot(format!(
            "keyword {bad:?} contains a line break"
        )));
    }
    if let Err(e) = folder.mkdir(KEYWORDS_DIR, 0o700)
        && e.kind() != io::ErrorKind::AlreadyExists
    {
        return Err(folder.fail(KEYWORDS_DIR, e));
    }
    let dir = folder
        .open_dir(KEYWORDS_DIR)
        .map_err(|e| folder.fail(KEYWORDS_DIR, e))?;
    replace_file(tmp, &dir, LIST_NAME, "keywords", &format_list(map))
}

/// mdimap's lock, in the folder, around a read-modify-write of keyword sets. An update file
/// holds a message's whole keyword set, so two sessions that each add their own keyword to
/// one message, each from the set it read, leave only the set written last: the other
/// session's keyword, acknowledged to its client, is gone (the torture test found it).
/// Courier's protocol has no lock for this; mdimap sessions take this one, read the sets
/// from disk under it and write theirs before letting go. (Courier-IMAP sessions sharing
/// the maildir can still race each other and us, as they race each other today.)
pub(crate) const WRITE_LOCK_NAME: &str = "mdimapkeywords.lock";
/// How long to wait for [`WRITE_LOCK_NAME`]: it is held for one STORE's keyword writes.
const WRITE_LOCK_WAIT: Duration = Duration::from_secs(30);

/// Holds [`WRITE_LOCK_NAME`] (an `flock`, released when the file is closed, so a session
/// killed while holding it holds nothing).
pub(crate) struct WriteLock {
    _held: Option<Flock<File>>,
}

impl WriteLock {
    /// Takes the lock of `folder`, waiting up to [`WRITE_LOCK_WAIT`]. A folder where the
    /// lock file cannot be made (no write permission: a read-only shared folder) is written
    /// without it, as Courier writes every folder.
    pub(crate) fn take(folder: &Dir) -> Result<WriteLock, StoreError> {
        let mut file = match folder.open_for_writing(WRITE_LOCK_NAME, 0o600) {
            Ok(file) => file,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::EROFS)
                ) =>
            {
                log::debug!(
                    "keywords of {} written without {WRITE_LOCK_NAME}: {e}",
                    folder.path().display()
                );
                return Ok(WriteLock { _held: None });
            }
            Err(e) => return Err(folder.fail(WRITE_LOCK_NAME, e)),
        };
        let deadline = Instant::now() + WRITE_LOCK_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(held) => return Ok(WriteLock { _held: Some(held) }),
                Err((back, Errno::EWOULDBLOCK | Errno::EINTR)) => file = back,
                Err((_, errno)) => {
                    return Err(folder.fail(WRITE_LOCK_NAME, io::Error::from(errno)));
                }
            }
            if Instant::now() >= deadline {
                return Err(folder.fail(
                    WRITE_LOCK_NAME,
                    io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the lock"),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// The keyword sets on disk now of the messages named in `basenames`, read without changing
/// anything (what a merge would make of the files, without merging).
pub(crate) fn read_current(
    folder: &Dir,
    tmp: &Dir,
    basenames: &FastSet<String>,
) -> Result<KeywordMap, StoreError> {
    load(folder, tmp, basenames, false)
}

/// A read-modify-write of the keyword sets of some messages of one folder: holds the
/// folder's [`WriteLock`] and starts from the sets on disk, not from what a session last
/// saw. Dropping it lets go of the lock.
pub struct KeywordWriter {
    top: Dir,
    tmp: Dir,
    current: KeywordMap,
    _lock: WriteLock,
}

impl KeywordWriter {
    /// Takes the lock of the folder at `top` and reads the sets of `basenames`.
    pub(crate) fn start(
        top: Dir,
        tmp: Dir,
        basenames: &FastSet<String>,
    ) -> Result<KeywordWriter, StoreError> {
        let lock = WriteLock::take(&top)?;
        let current = read_current(&top, &tmp, basenames)?;
        Ok(KeywordWriter {
            top,
            tmp,
            current,
            _lock: lock,
        })
    }

    /// The keywords message `basename` has on disk (as read at the start, and as written
    /// since).
    pub fn current(&self, basename: &str) -> &[String] {
        self.current.get(basename).map_or(&[], |k| k.as_slice())
    }

    /// Replaces the keyword set of message `basename`.
    pub fn write(&mut self, basename: &str, keywords: &[String]) -> Result<(), StoreError> {
        write_update(&self.top, &self.tmp, basename, keywords)?;
        if keywords.is_empty() {
            self.current.remove(basename);
        } else {
            self.current.insert(basename.to_string(), keywords.to_vec());
        }
        Ok(())
    }
}

/// Removes a message's pending update file (used when a delivery is rolled back).
pub(crate) fn remove_update(folder: &Dir, basename: &str) {
    if check_basename(basename).is_ok()
        && let Ok(dir) = folder.open_dir(KEYWORDS_DIR)
    {
        remove_quietly(&dir, basename);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;
    use std::fs;

    const LIST: &[u8] = b"Important\n$Label1\n\n1795769172.M914087P11768V000000000000FE00I000000000098E6D3.vm,S=120:1 0\n";

    #[test]
    fn list_parses_and_formats() {
        let map = parse_list(LIST);
        let kws = &map["1795769172.M914087P11768V000000000000FE00I000000000098E6D3.vm,S=120"];
        assert_eq!(kws, &vec!["$Label1".to_string(), "Important".to_string()]);
        assert_eq!(format_list(&map), b"$Label1\nImportant\n\n1795769172.M914087P11768V000000000000FE00I000000000098E6D3.vm,S=120:0 1\n");
        assert_eq!(format_list(&KeywordMap::default()), b"\n");
        assert!(parse_list(b"").is_empty());
    }

    #[test]
    fn forbidden_characters_and_case() {
        assert_eq!(
            parse_update(b"a b\nJunk\njunk\n\nx]\n"),
            vec!["a_b", "Junk", "x_"]
        );
        assert_eq!(parse_merged(".5985898.abc,S=1"), Some((5985898, "abc,S=1")));
        assert_eq!(parse_merged(".05.abc"), None);
        assert_eq!(parse_merged(".tmp.abc"), None);
    }

    /// A folder directory with its `tmp`: (the directory, the folder, its tmp).
    fn folder() -> (TempDir, Dir, Dir) {
        let dir = TempDir::new("kw");
        fs::create_dir(dir.path().join("tmp")).unwrap();
        let top = Dir::open_root(dir.path()).unwrap();
        let tmp = top.open_dir("tmp").unwrap();
        (dir, top, tmp)
    }

    #[test]
    fn write_then_merge() {
        let (dir, top, tmp) = folder();
        let existing: FastSet<String> = ["m1".to_string(), "m2".to_string()].into_iter().collect();
        write_update(
            &top,
            &tmp,
            "m1",
            &["$Label1".into(), "Junk".into(), "junk".into()],
        )
        .unwrap();
        assert_eq!(
            fs::read(dir.path().join(KEYWORDS_DIR).join("m1")).unwrap(),
            b"$Label1\nJunk\n"
        );
        // A read-only load sees the update but changes nothing.
        let map = load(&top, &tmp, &existing, false).unwrap();
        assert_eq!(map["m1"], vec!["$Label1", "Junk"]);
        assert!(dir.path().join(KEYWORDS_DIR).join("m1").exists());
        // A writing load merges it into :list and ages the update file.
        let map = load(&top, &tmp, &existing, true).unwrap();
        assert_eq!(map["m1"], vec!["$Label1", "Junk"]);
        assert_eq!(
            fs::read(dir.path().join(KEYWORDS_DIR).join(LIST_NAME)).unwrap(),
            b"$Label1\nJunk\n\nm1:0 1\n"
        );
        let names: Vec<String> = fs::read_dir(dir.path().join(KEYWORDS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let bucket = now_secs() / BUCKET_SECS;
        assert!(names.iter().any(|n| n == &format!(".{}.m1", bucket + 1) || n == &format!(".{}.m1", bucket + 2)), "{names:?}");
        // A later update replaces the set; an empty set clears it.
        write_update(&top, &tmp, "m2", &["Work".into()]).unwrap();
        write_update(&top, &tmp, "m1", &[]).unwrap();
        let map = load(&top, &tmp, &existing, true).unwrap();
        assert!(!map.contains_key("m1"));
        assert_eq!(map["m2"], vec!["Work"]);
        assert_eq!(load(&top, &tmp, &existing, true).unwrap(), map);
        // Vanished messages drop out of :list.
        let only_m1: FastSet<String> = ["m1".to_string()].into_iter().collect();
        assert!(load(&top, &tmp, &only_m1, true).unwrap().is_empty());
        assert_eq!(
            fs::read(dir.path().join(KEYWORDS_DIR).join(LIST_NAME)).unwrap(),
            b"\n"
        );
    }

    /// Merged updates read once are not read again, but a `.N.` file put in place anew
    /// (another inode under the same name, as Courier's rename gives) is, and overrides an
    /// older `:list` as the protocol says.
    #[test]
    fn a_merged_update_replaced_under_its_name_is_read_again() {
        let (dir, top, tmp) = folder();
        let kw = dir.path().join(KEYWORDS_DIR);
        let existing: FastSet<String> = ["m1".to_string()].into_iter().collect();
        write_update(&top, &tmp, "m1", &["Red".into()]).unwrap();
        assert_eq!(
            load(&top, &tmp, &existing, true).unwrap()["m1"],
            vec!["Red"]
        );
        let merged: Vec<String> = fs::read_dir(&kw)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert_eq!(merged.len(), 1, "{merged:?}");
        for colour in ["Green", "Blue"] {
            // Another process (an NFS client with an older :list, say) puts a new update
            // in place under the merged name, by rename.
            let staged = dir.path().join("tmp").join("staged");
            fs::write(&staged, format!("{colour}\n")).unwrap();
            fs::rename(&staged, kw.join(&merged[0])).unwrap();
            fs::write(kw.join(LIST_NAME), b"Red\n\nm1:0\n").unwrap();
            assert_eq!(
                load(&top, &tmp, &existing, false).unwrap()["m1"],
                vec![colour]
            );
        }
    }

    /// A later process uses the folder's record of what was read instead of reading the
    /// update files again (shown by changing one in place, which no writer does), and a
    /// damaged record only costs the reads.
    #[test]
    fn what_was_read_is_kept_for_the_next_process() {
        let (dir, top, tmp) = folder();
        let kw = dir.path().join(KEYWORDS_DIR);
        let existing: FastSet<String> = ["m1".to_string()].into_iter().collect();
        write_update(&top, &tmp, "m1", &["Red".into()]).unwrap();
        load(&top, &tmp, &existing, true).unwrap();
        let merged: String = fs::read_dir(&kw)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with('.'))
            .unwrap();
        // The next merge reads the merged update and keeps what it read.
        load(&top, &tmp, &existing, true).unwrap();
        let record = fs::read_to_string(dir.path().join(LEARNT_NAME)).unwrap();
        assert!(record.contains(&format!(" {merged}\tRed")), "{record}");
        // In place, same inode: only a reader of the file would see it.
        fs::OpenOptions::new()
            .write(true)
            .open(kw.join(&merged))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"Tan\n"))
            .unwrap();
        let key = top.open_dir(KEYWORDS_DIR).unwrap().identity().unwrap();
        read_cache().remove(&key);
        assert_eq!(
            load(&top, &tmp, &existing, true).unwrap()["m1"],
            vec!["Red"]
        );
        // A damaged record: the file is read.
        read_cache().remove(&key);
        fs::write(dir.path().join(LEARNT_NAME), b"mdimapkeywords 1\nx y\n\t\n").unwrap();
        assert_eq!(
            load(&top, &tmp, &existing, false).unwrap()["m1"],
            vec!["Tan"]
        );
    }

    #[test]
    fn learnt_record_round_trip() {
        let mut files = FastMap::default();
        files.insert(
            ".5.m1".to_string(),
            Learnt {
                ino: 7,
                keywords: Some(vec!["$Label1".into(), "Junk".into()]),
                mtime: Some(1_700_000_000),
            },
        );
        files.insert(
            ".5.m2".to_string(),
            Learnt {
                ino: 8,
                keywords: Some(Vec::new()),
                mtime: None,
            },
        );
        files.insert(
            ".5.m3".to_string(),
            Learnt {
                ino: 9,
                keywords: None,
                mtime: Some(5),
            },
        );
        let text = format_learnt(&files);
        assert_eq!(
            String::from_utf8_lossy(&text),
            "mdimapkeywords 1\n7 1700000000 .5.m1\t$Label1\tJunk\n8 - .5.m2\t\n9 5 .5.m3 -\n"
        );
        assert_eq!(parse_learnt(&text), files);
        assert!(parse_learnt(b"something else\n7 1 .5.m1\tX\n").is_empty());
    }

    #[test]
    fn bulk_list_write() {
        let (dir, top, tmp) = folder();
        let existing: FastSet<String> = ["m1".to_string(), "m2".to_string()].into_iter().collect();
        assert!(!has_update_files(&top).unwrap());
        let mut map = KeywordMap::default();
        map.insert("m1".into(), vec!["$Forwarded".into(), "Junk".into()]);
        map.insert("m2".into(), vec!["Junk".into()]);
        write_list(&top, &tmp, &map).unwrap();
        assert_eq!(
            fs::read(dir.path().join(KEYWORDS_DIR).join(LIST_NAME)).unwrap(),
            b"$Forwarded\nJunk\n\nm1:0 1\nm2:1\n"
        );
        assert!(!has_update_files(&top).unwrap());
        assert_eq!(load(&top, &tmp, &existing, false).unwrap(), map);
        write_update(&top, &tmp, "m2", &[]).unwrap();
        assert!(has_update_files(&top).unwrap());
        let mut bad = KeywordMap::default();
        bad.insert("m1".into(), vec!["a\nb".into()]);
        assert!(write_list(&top, &tmp, &bad).is_err());
    }

    #[test]
    fn bulk_list_write_follows_no_link() {
        let (dir, top, tmp) = folder();
        let outside = TempDir::new("kw-outside");
        std::os::unix::fs::symlink(outside.path(), dir.path().join(KEYWORDS_DIR)).unwrap();
        let mut map = KeywordMap::default();
        map.insert("m1".into(), vec!["Junk".into()]);
        assert!(has_update_files(&top).is_err());
        assert!(write_list(&top, &tmp, &map).is_err());
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn the_write_lock_excludes_another_holder_until_dropped() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let (t, folder, _tmp) = folder();
        let first = WriteLock::take(&folder).unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let path = t.path().to_path_buf();
        let flag = Arc::clone(&got);
        let waiter = std::thread::spawn(move || {
            let folder = Dir::open_root(&path).unwrap();
            let _second = WriteLock::take(&folder).unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(!got.load(Ordering::SeqCst), "two holders at once");
        drop(first);
        waiter.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
    }

    #[test]
    fn refuses_bad_names_and_line_breaks() {
        let (_dir, top, tmp) = folder();
        assert!(write_update(&top, &tmp, "../x", &[]).is_err());
        assert!(write_update(&top, &tmp, ":list", &[]).is_err());
        assert!(write_update(&top, &tmp, "m", &["a\nb".into()]).is_err());
    }
}
