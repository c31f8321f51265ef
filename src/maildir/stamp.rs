//! What tells the store that a folder has not changed: its change stamp (the modification
//! times every change moves, and the identity of the UID database), the rule for when an
//! equal stamp proves "nothing changed" (timestamps are as coarse as the kernel's clock
//! tick), and which file systems cannot be trusted to keep timestamps at all.
//!
//! Owns those facts about the file system, so that no layer above stats the store's files by
//! name or knows file system magic numbers. Must not decide what a change means (a rescan,
//! an index rebuilt): callers do.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::folder::Folder;
use super::keywords::KEYWORDS_DIR;
use super::uiddb::UIDDB_NAME;

/// How close to the moment a stamp is taken its times may be for it to prove nothing. Linux
/// stamps files from a clock that advances once per kernel tick (at most 10 ms), so a change
/// made in the same tick as the one before it leaves the time as it was.
const RACY_WINDOW: Duration = Duration::from_millis(50);
/// The same for file systems that keep whole seconds (their times have no nanoseconds).
const RACY_WINDOW_WHOLE_SECONDS: Duration = Duration::from_secs(2);

/// A file time as the kernel keeps it: seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileTime {
    pub secs: i64,
    pub nanos: u32,
}

impl FileTime {
    /// The time of a file that is not there: the epoch (a later creation moves it).
    pub const ABSENT: FileTime = FileTime { secs: 0, nanos: 0 };

    fn of(meta: &std::fs::Metadata) -> FileTime {
        FileTime {
            secs: meta.mtime(),
            nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        }
    }

    fn as_system_time(self) -> SystemTime {
        let since = Duration::new(self.secs.unsigned_abs(), self.nanos);
        if self.secs >= 0 {
            UNIX_EPOCH.checked_add(since).unwrap_or(UNIX_EPOCH)
        } else {
            UNIX_EPOCH.checked_sub(since).unwrap_or(UNIX_EPOCH)
        }
    }
}

/// The state of everything a change to a folder touches: the modification times of cur/
/// (messages placed, renamed or removed), new/ (delivered by an MTA), the keyword directory
/// and the UID database, for a filesystem-shared folder's local copy those of its sharable
/// folder's cur/ and new/, and the UID database's inode and size (a database replaced or
/// added to changes them whatever its time says). Two equal stamps mean no change between
/// them that the file system shows; whether that proves anything is [`ChangeStamp::settled`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeStamp {
    /// cur/, new/, keywords, UID database, then the sharable folder's directories.
    times: Vec<FileTime>,
    /// The UID database's inode and size; zero when there is none.
    uiddb: (u64, u64),
}

impl ChangeStamp {
    /// The stamp as numbers, for the index to keep: times, then the database's inode and
    /// size.
    pub(crate) fn parts(&self) -> (&[FileTime], (u64, u64)) {
        (&self.times, self.uiddb)
    }

    /// The stamp `parts` gave.
    pub(crate) fn from_parts(times: Vec<FileTime>, uiddb: (u64, u64)) -> ChangeStamp {
        ChangeStamp { times, uiddb }
    }

    /// True when `later` differs from this stamp at most where this process's own changes
    /// to the folder show: flag and keyword changes, removals and deliveries touch cur/, the
    /// keyword directory and the UID database (a delivery adds to it, in place or by
    /// replacing it). new/ and a sharable folder, which only others change, must be as they
    /// were.
    pub fn differs_only_by_own_changes(&self, later: &ChangeStamp) -> bool {
        const NEW: usize = 1;
        const SHARED: usize = 4;
        self.times.len() == later.times.len()
            && self.times.get(NEW) == later.times.get(NEW)
            && self.times.get(SHARED..) == later.times.get(SHARED..)
    }

    /// True when this stamp, taken at `taken`, proves that a later equal stamp means nothing
    /// changed in between: every time in it lies more than a clock tick before `taken`, so a
    /// change made after `taken` cannot leave a time as it was. (Whole-second file systems
    /// need a window of their own granularity.) A stamp that is not settled proves nothing;
    /// the folder must be looked at again.
    pub fn settled(&self, taken: SystemTime) -> bool {
        self.settles_at() <= taken
    }

    /// [`settled`](Self::settled), but for the UID database's time. A change to the
    /// database shows in its inode and size, which the stamp holds too: it is appended to
    /// in place, or replaced by a new file renamed over it (a new inode, made while the old
    /// one still existed), never rewritten in place at its old length. So a database made a
    /// moment ago, as the first STATUS of a folder makes one, does not keep the stamp from
    /// proving anything.
    pub fn settled_but_for_uiddb(&self, taken: SystemTime) -> bool {
        const UIDDB: usize = 3;
        let others = ChangeStamp {
            times: self
                .times
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != UIDDB)
                .map(|(_, t)| *t)
                .collect(),
            uiddb: self.uiddb,
        };
        others.settled(taken)
    }

    /// True when the stamp saw no UID database.
    pub fn without_uiddb(&self) -> bool {
        self.uiddb == (0, 0)
    }

    /// The moment from which this stamp, taken again unchanged, is [settled](Self::settled).
    pub fn settles_at(&self) -> SystemTime {
        let whole_seconds = self.times.iter().all(|t| t.nanos == 0);
        let window = if whole_seconds {
            RACY_WINDOW_WHOLE_SECONDS
        } else {
            RACY_WINDOW
        };
        self.times
            .iter()
            .map(|t| t.as_system_time() + window)
            .max()
            .unwrap_or(UNIX_EPOCH)
    }
}

impl Folder {
    /// The folder's [`ChangeStamp`] now; `None` when a time cannot be read. A directory or
    /// file that is not there counts as changed at the epoch (the keyword directory and the
    /// UID database are made on demand). Nothing is followed through a symbolic link.
    pub fn change_stamp(&self) -> Option<ChangeStamp> {
        let own = ["cur", "new", KEYWORDS_DIR];
        let mut times = Vec::with_capacity(own.len() + 3);
        for dir in own {
            times.push(time_of(&self.path().join(dir))?);
        }
        let uiddb = match std::fs::symlink_metadata(self.path().join(UIDDB_NAME)) {
            Ok(meta) => {
                times.push(FileTime::of(&meta));
                (meta.ino(), meta.size())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                times.push(FileTime::ABSENT);
                (0, 0)
            }
            Err(_) => return None,
        };
        for dir in self.shared_dirs() {
            times.push(time_of(&dir)?);
        }
        Some(ChangeStamp { times, uiddb })
    }

    /// True when the folder is on a network file system (NFS, SMB, Ceph, FUSE), where
    /// timestamps may be cached or come from another machine's clock and so cannot prove
    /// "nothing changed": such a folder is looked at again whenever a client asks.
    pub fn on_network_fs(&self) -> bool {
        on_network_fs(self.path())
    }
}

/// The modification time of `path` (not following a link), `ABSENT` when there is nothing.
fn time_of(path: &Path) -> Option<FileTime> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Some(FileTime::of(&meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(FileTime::ABSENT),
        Err(_) => None,
    }
}

fn on_network_fs(path: &Path) -> bool {
    const NETWORK: [i64; 6] = [
        0x6969,      // NFS
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x517B,      // SMB
        0x00C3_6400, // Ceph
        0x6573_5546, // FUSE
    ];
    match nix::sys::statfs::statfs(path) {
        #[allow(clippy::unnecessary_cast)] // the type of f_type differs between platforms
        Ok(st) => NETWORK.contains(&(st.filesystem_type().0 as i64)),
        // Unknown: assume the worst, and look again.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::Store;
    use crate::maildir::testutil::TempDir;

    #[test]
    fn a_stamp_moves_with_every_kind_of_change() {
        let dir = TempDir::new("stamp");
        let store = Store::create(&dir.path().join("Maildir")).unwrap();
        let folder = store.folder("INBOX").unwrap();
        folder.scan().unwrap();
        let old = FileTime {
            secs: 1_000_000_000,
            nanos: 5,
        };
        let age = |p: &Path| {
            std::fs::File::open(p)
                .unwrap()
                .set_modified(old.as_system_time())
                .unwrap()
        };
        for p in ["cur", "new", "tmp", UIDDB_NAME] {
            age(&folder.path().join(p));
        }
        let quiet = folder.change_stamp().unwrap();
        assert!(quiet.settled(SystemTime::now()));
        assert_eq!(folder.change_stamp(), Some(quiet.clone()));
        // A file in new/ (an MTA's delivery).
        std::fs::write(folder.path().join("new").join("1.x"), b"a\n").unwrap();
        let delivered = folder.change_stamp().unwrap();
        assert_ne!(delivered, quiet);
        assert!(!delivered.settled(SystemTime::now()), "just changed: racy");
        // The UID database replaced by one of the same time: its inode differs.
        let db = folder.path().join(UIDDB_NAME);
        let before = folder.change_stamp().unwrap();
        let text = std::fs::read(&db).unwrap();
        std::fs::write(folder.path().join("tmp").join("db"), &text).unwrap();
        std::fs::rename(folder.path().join("tmp").join("db"), &db).unwrap();
        age(&db);
        assert_ne!(folder.change_stamp().unwrap(), before);
        // A keyword directory made.
        let before = folder.change_stamp().unwrap();
        std::fs::create_dir(folder.path().join(KEYWORDS_DIR)).unwrap();
        assert_ne!(folder.change_stamp().unwrap(), before);
    }

    #[test]
    fn whole_second_times_need_a_longer_window() {
        let now = SystemTime::now();
        let secs = |d: u64| now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 - d as i64;
        let at =
            |s: i64, nanos: u32| ChangeStamp::from_parts(vec![FileTime { secs: s, nanos }], (0, 0));
        assert!(at(secs(1), 1).settled(now));
        assert!(!at(secs(1), 0).settled(now));
        assert!(at(secs(3), 0).settled(now));
        assert!(!at(secs(0) + 5, 1).settled(now), "a time in the future");
    }

    #[test]
    fn local_test_directories_are_not_network_file_systems() {
        let dir = TempDir::new("statfs");
        assert!(!on_network_fs(dir.path()));
        assert!(on_network_fs(&dir.path().join("missing")));
    }
}
