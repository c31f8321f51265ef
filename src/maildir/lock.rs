//! Courier's dot-lock `tmp/courier.lock` (spec/courier-files.md §1.3), taken around every
//! read-modify-write of the UID database so that mdimap and Courier processes sharing a
//! maildir never assign UIDs concurrently.
//!
//! Owns the lock protocol only (link(2) + `st_nlink == 2`, stale-lock breaking, bounded
//! waiting); it must not know what the lock protects.
//!
//! Courier is one process per session, so its lock file identifies a holder by PID. mdimap
//! code may take locks from several threads of one process, so an in-process registry
//! (keyed by the device and inode of `tmp/`) serialises threads first; only then is a lock
//! file carrying our own PID known to be a leftover.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::error::StoreError;
use super::unique::{create_exclusive, now_secs, raw_hostname};

/// Name of the lock file inside a folder's `tmp/`.
pub(crate) const LOCK_NAME: &str = "courier.lock";
/// How long to wait for a busy lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// Pause between attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// A lock of another host is stale once its mtime is this old (we cannot probe its PID).
const FOREIGN_STALE_SECS: i64 = 120;

static HELD: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
static RELEASED: Condvar = Condvar::new();

fn held() -> MutexGuard<'static, Vec<(u64, u64)>> {
    // A panic while holding the registry cannot leave it inconsistent (push/retain only).
    HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This process's claim on a lock key; released on drop.
struct Slot {
    key: (u64, u64),
}

impl Drop for Slot {
    fn drop(&mut self) {
        held().retain(|k| *k != self.key);
        RELEASED.notify_all();
    }
}

/// A held dot-lock; dropping it removes the lock file.
pub(crate) struct DotLock {
    path: PathBuf,
    ino: u64,
    _slot: Slot,
}

impl std::fmt::Debug for DotLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DotLock").field("path", &self.path).finish()
    }
}

impl DotLock {
    /// Takes `<folder>/tmp/courier.lock`, waiting up to 30 s.
    pub(crate) fn acquire(folder: &Path) -> Result<DotLock, StoreError> {
        Self::acquire_within(folder, LOCK_WAIT)
    }

    pub(crate) fn acquire_within(folder: &Path, wait: Duration) -> Result<DotLock, StoreError> {
        let tmp = folder.join("tmp");
        let lock_path = tmp.join(LOCK_NAME);
        let meta = fs::metadata(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let key = (meta.dev(), meta.ino());
        let deadline = Instant::now() + wait;
        let slot = claim_slot(key, deadline, &lock_path)?;
        loop {
            if let Some(ino) = try_link(&tmp, &lock_path)? {
                return Ok(DotLock {
                    path: lock_path,
                    ino,
                    _slot: slot,
                });
            }
            if break_if_stale(&lock_path)? {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(timed_out(&lock_path));
            }
            thread::sleep(RETRY_PAUSE.min(deadline - now));
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        // Remove the file only if it is still ours: if it was broken as stale and someone
        // else holds it now, unlinking would break their lock.
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.ino() == self.ino => {
                if let Err(e) = fs::remove_file(&self.path) {
                    log::warn!("cannot remove lock {}: {e}", self.path.display());
                }
            }
            Ok(_) => log::warn!(
                "lock {} was taken over while we held it",
                self.path.display()
            ),
            Err(e) => log::warn!(
                "lock {} vanished while we held it: {e}",
                self.path.display()
            ),
        }
    }
}

fn timed_out(lock_path: &Path) -> StoreError {
    StoreError::io(
        lock_path,
        io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the lock"),
    )
}

fn claim_slot(key: (u64, u64), deadline: Instant, lock_path: &Path) -> Result<Slot, StoreError> {
    let mut guard = held();
    while guard.contains(&key) {
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(lock_path));
        }
        guard = RELEASED
            .wait_timeout(guard, deadline - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0);
    }
    guard.push(key);
    Ok(Slot { key })
}

/// One attempt: returns the inode of our lock file if we now hold the lock.
fn try_link(tmp: &Path, lock_path: &Path) -> Result<Option<u64>, StoreError> {
    let (mut file, temp, _) = create_exclusive(tmp, "courierlock")?;
    let contents = format!("{}:{}", std::process::id(), raw_hostname());
    let written = file.write_all(contents.as_bytes());
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(StoreError::io(&temp, e));
    }
    let linked = fs::hard_link(&temp, lock_path);
    // On NFS link() may report failure although it succeeded: the link count decides.
    let meta = fs::metadata(&temp);
    let _ = fs::remove_file(&temp);
    let meta = meta.map_err(|e| StoreError::io(&temp, e))?;
    if meta.nlink() == 2 {
        return Ok(Some(meta.ino()));
    }
    match linked {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(StoreError::io(lock_path, e)),
        _ => Ok(None),
    }
}

/// Removes the lock file if its holder is gone; true if the caller should retry at once.
fn break_if_stale(lock_path: &Path) -> Result<bool, StoreError> {
    let (contents, meta) =
        match fs::read(lock_path).and_then(|c| fs::symlink_metadata(lock_path).map(|m| (c, m))) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(StoreError::io(lock_path, e)),
        };
    let text = String::from_utf8_lossy(&contents);
    let holder = text
        .split_once(':')
        .and_then(|(pid, host)| pid.trim().parse::<i32>().ok().map(|pid| (pid, host)));
    let stale = match holder {
        Some((pid, host)) if host == raw_hostname() => {
            // Our registry slot guarantees no thread of this process holds it.
            u32::try_from(pid).is_ok_and(|p| p == std::process::id()) || !process_alive(pid)
        }
        _ => now_secs().saturating_sub(meta.mtime()) > FOREIGN_STALE_SECS,
    };
    if !stale {
        return Ok(false);
    }
    // Re-check that the file is still the one we judged, to narrow the window in which a
    // fresh lock taken meanwhile by someone else could be removed.
    match fs::symlink_metadata(lock_path) {
        Ok(again) if again.ino() == meta.ino() => {
            log::warn!(
                "removing stale lock {} held by {text:?}",
                lock_path.display()
            );
            match fs::remove_file(lock_path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                Err(e) => Err(StoreError::io(lock_path, e)),
            }
        }
        _ => Ok(true),
    }
}

fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true, // EPERM: exists, owned by someone else
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn folder(tag: &str) -> TempDir {
        let dir = TempDir::new(tag);
        fs::create_dir(dir.path().join("tmp")).unwrap();
        dir
    }

    #[test]
    fn lock_file_contents_and_unlock() {
        let dir = folder("lock-basic");
        let lock_path = dir.path().join("tmp").join(LOCK_NAME);
        {
            let _lock = DotLock::acquire(dir.path()).unwrap();
            let text = fs::read_to_string(&lock_path).unwrap();
            assert_eq!(text, format!("{}:{}", std::process::id(), raw_hostname()));
            // Only the lock file is left in tmp/.
            assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 1);
        }
        assert!(!lock_path.exists());
    }

    #[test]
    fn threads_exclude_each_other() {
        let dir = folder("lock-threads");
        let inside = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = dir.path().to_path_buf();
                let inside = inside.clone();
                thread::spawn(move || {
                    for _ in 0..10 {
                        let _lock = DotLock::acquire(&path).unwrap();
                        assert!(!inside.swap(true, Ordering::SeqCst));
                        thread::sleep(Duration::from_millis(1));
                        inside.store(false, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn dead_local_holder_is_broken() {
        let dir = folder("lock-dead");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let lock_path = dir.path().join("tmp").join(LOCK_NAME);
        fs::write(&lock_path, format!("{pid}:{}", raw_hostname())).unwrap();
        // Broken at the first try; the bound only turns a hang into a failure.
        let _lock = DotLock::acquire_within(dir.path(), LOCK_WAIT).unwrap();
    }

    #[test]
    fn fresh_foreign_lock_times_out_old_one_is_broken() {
        let dir = folder("lock-foreign");
        let lock_path = dir.path().join("tmp").join(LOCK_NAME);
        fs::write(&lock_path, "1:some-other-host.example").unwrap();
        let err = DotLock::acquire_within(dir.path(), Duration::from_millis(300)).unwrap_err();
        assert!(
            matches!(err, StoreError::Io { ref error, .. } if error.kind() == io::ErrorKind::TimedOut)
        );
        let old = std::time::SystemTime::now() - Duration::from_secs(600);
        fs::File::options()
            .write(true)
            .open(&lock_path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let _lock = DotLock::acquire_within(dir.path(), LOCK_WAIT).unwrap();
        assert_eq!(
            fs::read_to_string(&lock_path).unwrap(),
            format!("{}:{}", std::process::id(), raw_hostname())
        );
    }
}
