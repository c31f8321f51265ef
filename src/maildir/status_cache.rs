//! STATUS answers a session keeps between commands. A client that polls its folders with
//! STATUS (Thunderbird's "check all folders", a phone without push) asks again and again
//! about folders that did not change, and a folder never selected has no index to answer
//! from: each STATUS would list its cur/ and new/ again. Each answer is kept with the
//! folder's change stamp (`stamp.rs`) and the bytes of its recent mark, and is given again
//! only while the stamp is equal and was settled when taken, and the mark is as it was:
//! then nothing STATUS counts can have changed (every flag change, delivery, expunge and
//! numbering moves a time the stamp holds, or the UID database's inode or size). Never on a
//! network file system, where a stamp proves nothing. Only answers counted by listing the
//! folder are kept; a folder its index describes is answered from the index each time.
//!
//! Owns only that rule; the counts are `Folder::status`'s.

use std::path::PathBuf;
use std::time::SystemTime;

use super::error::StoreError;
use super::fast::FastMap;
use super::folder::{Folder, FolderStatus};
use super::stamp::ChangeStamp;

/// Folders a session keeps answers for; past this many the kept answers are dropped and
/// kept again as asked (a session that polls more folders than this pays listings again).
const MAX_KEPT: usize = 10_000;

/// The STATUS answers of one session, by folder.
#[derive(Debug, Default)]
pub struct StatusCache {
    kept: FastMap<PathBuf, Kept>,
}

#[derive(Debug)]
struct Kept {
    stamp: ChangeStamp,
    taken: SystemTime,
    recent_mark: Option<Vec<u8>>,
    status: FolderStatus,
}

impl StatusCache {
    /// [`Folder::status`] of `folder`, given again from what was kept when it provably
    /// still holds.
    pub fn status(&mut self, folder: &Folder) -> Result<FolderStatus, StoreError> {
        if folder.on_network_fs() {
            return folder.status();
        }
        // Read before anything is counted: a mark changed meanwhile differs next time.
        let recent_mark = folder.recent_mark();
        let Some(stamp) = folder.change_stamp() else {
            return folder.status();
        };
        if let Some(k) = self.kept.get(folder.path())
            && k.stamp == stamp
            && k.recent_mark == recent_mark
            && k.stamp.settled_but_for_uiddb(k.taken)
        {
            return Ok(k.status.clone());
        }
        let (status, stamped) = folder.status_stamped()?;
        // Counted from the index, which is cheap and carries HIGHESTMODSEQ, which an index
        // rebuilt by another session may raise without any change the stamp would show:
        // not kept.
        let Some((stamp, taken)) = stamped else {
            return Ok(status);
        };
        if self.kept.len() >= MAX_KEPT {
            self.kept.clear();
        }
        self.kept.insert(
            folder.path().to_path_buf(),
            Kept {
                stamp,
                taken,
                recent_mark,
                status: status.clone(),
            },
        );
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::Store;
    use crate::maildir::testutil::TempDir;
    use std::time::Duration;

    /// A maildir whose INBOX holds `names` in cur/.
    fn folder_with(names: &[&str]) -> (TempDir, Folder) {
        let dir = TempDir::new("status-cache");
        let store = Store::create(&dir.path().join("Maildir")).expect("store");
        let folder = store.folder("INBOX").expect("inbox");
        for n in names {
            std::fs::write(folder.path().join("cur").join(n), b"Subject: x\n\nbody\n")
                .expect("message");
        }
        (dir, folder)
    }

    /// Sets the times of `dir` to `t`.
    fn set_time(dir: &std::path::Path, t: SystemTime) {
        let t = nix::sys::time::TimeSpec::from(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default(),
        );
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            dir,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .expect("utimensat");
    }

    /// Sets the modification time of `dir` to one moment long past (always the same), so
    /// that a stamp taken now is settled without the test waiting.
    fn age(dir: &std::path::Path) {
        set_time(
            dir,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
    }

    #[test]
    fn an_unchanged_settled_stamp_answers_and_any_change_counts_again() {
        let (_t, folder) = folder_with(&["1000.a.host:2,", "1001.b.host:2,S"]);
        let cur = folder.path().join("cur");
        let new = folder.path().join("new");
        let mut cache = StatusCache::default();
        let first = cache.status(&folder).expect("status");
        assert_eq!((first.messages, first.unseen), (2, 1));
        for d in [&cur, &new] {
            age(d);
        }
        let settled = cache.status(&folder).expect("status");
        assert_eq!(settled, first);

        // A change the stamp cannot see (the time put back by hand) is not looked for:
        // the kept answer stands. This is what makes the next STATUS cheap.
        std::fs::rename(cur.join("1000.a.host:2,"), cur.join("1000.a.host:2,S")).expect("mv");
        age(&cur);
        let stale = cache.status(&folder).expect("status");
        assert_eq!(stale.unseen, 1, "the kept answer was not given again");

        // A change as it happens moves cur/'s time: counted again.
        std::fs::rename(cur.join("1001.b.host:2,S"), cur.join("1001.b.host:2,")).expect("mv");
        let fresh = cache.status(&folder).expect("status");
        assert_eq!((fresh.messages, fresh.unseen), (2, 1));
        assert_eq!(fresh, folder.status().expect("status"));

        // A delivery to new/.
        age(&cur);
        std::fs::write(new.join("1002.c.host"), b"Subject: x\n\nbody\n").expect("deliver");
        let delivered = cache.status(&folder).expect("status");
        assert_eq!(delivered, folder.status().expect("status"));
        assert_eq!((delivered.messages, delivered.recent), (3, 1));
    }

    #[test]
    fn an_unsettled_stamp_proves_nothing() {
        let (_t, folder) = folder_with(&["1000.a.host:2,"]);
        let cur = folder.path().join("cur");
        let mut cache = StatusCache::default();
        assert_eq!(cache.status(&folder).expect("status").unseen, 1);
        // cur/ changed within the window before the stamp was taken: the same time after
        // another change in the same tick would prove nothing, so the folder is counted.
        let now = SystemTime::now();
        std::fs::rename(cur.join("1000.a.host:2,"), cur.join("1000.a.host:2,S")).expect("mv");
        set_time(&cur, now);
        let mut fresh = StatusCache::default();
        assert_eq!(fresh.status(&folder).expect("status").unseen, 0);
        std::fs::rename(cur.join("1000.a.host:2,S"), cur.join("1000.a.host:2,")).expect("mv");
        set_time(&cur, now);
        assert_eq!(fresh.status(&folder).expect("status").unseen, 1);
    }

    #[test]
    fn a_new_recent_mark_counts_again() {
        let (_t, folder) = folder_with(&["1000.a.host:2,"]);
        for d in ["cur", "new"] {
            age(&folder.path().join(d));
        }
        let mut cache = StatusCache::default();
        let before = cache.status(&folder).expect("status");
        std::fs::write(
            folder.path().join(super::super::recent::RECENT_NAME),
            format!("{} 1\n", before.uidvalidity),
        )
        .expect("mark");
        let after = cache.status(&folder).expect("status");
        assert_eq!(after, folder.status().expect("status"));
    }
}
