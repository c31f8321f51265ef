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

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::beneath::{Dir, identity_of};
use super::error::StoreError;
use super::unique::{create_exclusive, now_secs, raw_hostname};

/// Name of the lock file inside a folder's `tmp/`.
pub(crate) const LOCK_NAME: &str = "courier.lock";
/// How long to wait for a lock that does not move before giving up: one holder that keeps
/// it this long is stuck (or the machine is).
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// How many times [`LOCK_WAIT`] a waiter goes on while the lock keeps changing hands. With
/// fifty sessions on one folder, each holding the lock for a fraction of a second on a
/// loaded machine, a waiter can lose the race to others for longer than 30 s although the
/// queue moves all along; giving up then answered `NO [UNAVAILABLE]` where Dovecot only
/// waits (imaptest's stress mode, RELIABILITY.md). A release seen resets the wait for
/// one holder; this bounds the whole.
const LOCK_WAIT_MOVING: u32 = 10;
/// The first pause between attempts, doubled after each up to [`RETRY_PAUSE_MAX`]: a lock is
/// usually held for a millisecond or two (one rename and a few lines of the UID database),
/// so a fixed long pause (100 ms before) made a waiter lose far more time than the holder
/// took whenever sessions worked one folder together.
const RETRY_PAUSE_FIRST: Duration = Duration::from_millis(1);
/// The longest pause between attempts, for a lock held long (a scan of a large folder).
/// A waiter that can watch `tmp/` is woken as soon as the lock file goes (`Release`),
/// so this bounds only how late a release inotify cannot report (NFS) is noticed.
const RETRY_PAUSE_MAX: Duration = Duration::from_millis(100);
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

/// A held dot-lock in a folder's `tmp/`; dropping it removes the lock file.
pub(crate) struct DotLock<'a> {
    tmp: &'a Dir,
    ino: u64,
    _slot: Slot,
}

impl std::fmt::Debug for DotLock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DotLock")
            .field("path", &self.tmp.path().join(LOCK_NAME))
            .finish()
    }
}

impl<'a> DotLock<'a> {
    /// Takes `courier.lock` in the folder's `tmp` (opened by the caller without following
    /// links), waiting up to 30 s.
    pub(crate) fn acquire(tmp: &'a Dir) -> Result<DotLock<'a>, StoreError> {
        Self::acquire_within(tmp, LOCK_WAIT)
    }

    /// Takes the lock, giving up when one holder keeps it for `wait`, or when the lock has
    /// changed hands for [`LOCK_WAIT_MOVING`] times `wait` without coming to this waiter.
    pub(crate) fn acquire_within(tmp: &'a Dir, wait: Duration) -> Result<DotLock<'a>, StoreError> {
        let key = tmp.identity().map_err(|e| StoreError::io(tmp.path(), e))?;
        let started = Instant::now();
        let last_chance = started + wait * LOCK_WAIT_MOVING;
        let mut deadline = started + wait;
        let slot = claim_slot(key, last_chance, tmp)?;
        let mut pause = RETRY_PAUSE_FIRST;
        let mut release: Option<Release> = None;
        // The lock file the last failed attempt found (its inode): another one means the
        // lock changed hands, even where no release was seen (no inotify, or a lock
        // replaced by rename).
        let mut holder: Option<u64> = None;
        loop {
            if let Some(ino) = try_link(tmp)? {
                return Ok(DotLock {
                    tmp,
                    ino,
                    _slot: slot,
                });
            }
            if break_if_stale(tmp)? {
                continue;
            }
            let found = tmp.stat(LOCK_NAME).ok().map(|st| identity_of(&st).1);
            if found.is_some() && holder.is_some() && found != holder {
                deadline = (Instant::now() + wait).min(last_chance);
            }
            holder = found.or(holder);
            if release.is_none() {
                // The lock is busy: watch for its removal, then try once more before
                // waiting, so a release between the try and the watch is not missed.
                release = Release::watch(tmp);
                if release.is_some() {
                    continue;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(timed_out(tmp));
            }
            let nap = jittered(pause).min(deadline - now);
            match &release {
                Some(r) => {
                    if r.wait(nap) {
                        deadline = (Instant::now() + wait).min(last_chance);
                    }
                }
                None => thread::sleep(nap),
            }
            pause = (pause * 2).min(RETRY_PAUSE_MAX);
        }
    }
}

/// Tells a waiter that the lock file was removed, so it tries again at once rather than
/// after its pause: with ten sessions working one folder, each holding the lock for a
/// millisecond or two, waiters that slept 50-100 ms between tries made most of the time
/// APPEND, STORE and EXPUNGE took (imaptest's stress mode; BENCHMARKS.md). Only a waiter
/// makes one, so an uncontended lock costs nothing; without inotify (no instance left,
/// as for the 129th session of a uid) the waiter sleeps as before.
struct Release {
    inotify: Inotify,
}

impl Release {
    fn watch(tmp: &Dir) -> Option<Release> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        let mask =
            AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_ONLYDIR;
        // Through /proc/self/fd, the directory already opened (beneath the maildir, no
        // link followed), whatever its path names now.
        inotify.add_watch(&tmp.proc_path(), mask).ok()?;
        Some(Release { inotify })
    }

    /// Waits up to `wait` for the lock file to be removed (other removals in tmp/, such as
    /// the other waiters' own attempts, are passed over); true when it was.
    fn wait(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            // Rounded up, so a sub-millisecond remainder does not spin.
            let ms = (until - now).as_micros().div_ceil(1000);
            let timeout = PollTimeout::try_from(i32::try_from(ms).unwrap_or(i32::MAX))
                .unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
            match self.inotify.read_events() {
                Ok(events) => {
                    if events
                        .iter()
                        .any(|e| e.name.as_deref() == Some(std::ffi::OsStr::new(LOCK_NAME)))
                    {
                        return true;
                    }
                }
                // Nothing readable after all, or the queue overflowed: try the lock.
                Err(_) => return false,
            }
        }
    }
}

/// `pause` lengthened by up to a half, differently in each process and at each call, so that
/// waiters who started together do not all retry at the same instant.
fn jittered(pause: Duration) -> Duration {
    let noise = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    pause + pause.mul_f64(f64::from(noise % 512) / 1024.0)
}

impl Drop for DotLock<'_> {
    fn drop(&mut self) {
        // Remove the file only if it is still ours: if it was broken as stale and someone
        // else holds it now, unlinking would break their lock.
        let path = self.tmp.path().join(LOCK_NAME);
        match self.tmp.stat(LOCK_NAME) {
            Ok(stat) if identity_of(&stat).1 == self.ino => {
                if let Err(e) = self.tmp.remove_file(LOCK_NAME) {
                    log::warn!("cannot remove lock {}: {e}", path.display());
                }
            }
            Ok(_) => log::warn!("lock {} was taken over while we held it", path.display()),
            Err(e) => log::warn!("lock {} vanished while we held it: {e}", path.display()),
        }
    }
}

fn timed_out(tmp: &Dir) -> StoreError {
    StoreError::io(
        &tmp.path().join(LOCK_NAME),
        io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the lock"),
    )
}

fn claim_slot(key: (u64, u64), deadline: Instant, tmp: &Dir) -> Result<Slot, StoreError> {
    let mut guard = held();
    while guard.contains(&key) {
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(tmp));
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
fn try_link(tmp: &Dir) -> Result<Option<u64>, StoreError> {
    let (mut file, temp, _) = create_exclusive(tmp, "courierlock")?;
    let contents = format!("{}:{}", std::process::id(), raw_hostname());
    let written = file.write_all(contents.as_bytes());
    drop(file);
    if let Err(e) = written {
        let _ = tmp.remove_file(&temp);
        return Err(tmp.fail(&temp, e));
    }
    let linked = tmp.hard_link(&temp, tmp, LOCK_NAME);
    // On NFS link() may report failure although it succeeded: the link count decides.
    let stat = tmp.stat(&temp);
    let _ = tmp.remove_file(&temp);
    let stat = stat.map_err(|e| tmp.fail(&temp, e))?;
    if stat.st_nlink == 2 {
        return Ok(Some(identity_of(&stat).1));
    }
    match linked {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(tmp.fail(LOCK_NAME, e)),
        _ => Ok(None),
    }
}

/// Name of the file that makes breaking a stale lock one process's job at a time.
const BREAKING_NAME: &str = "courier.lock.breaking";
/// A breaker holds [`BREAKING_NAME`] for a stat, a read and an unlink; one older than this
/// was left by a breaker that died, and is removed.
const BREAKING_STALE_SECS: i64 = 10;

/// Removes the lock file if its holder is gone; true if the caller should retry at once.
///
/// Judging a lock stale and removing it are two steps. When several waiters find the same
/// dead holder, one may remove the stale lock and take a fresh one before another, which
/// judged the old file, removes the new one: two processes then hold the lock and number
/// messages with the same UIDs (found by tests/torture.rs; comparing inode numbers before
/// the unlink does not close it, as the fresh lock may get the freed inode). So breakers
/// take [`BREAKING_NAME`] (O_EXCL) first and judge again under it: while a breaker holds
/// it, the stale file stays in place until its own unlink, so no fresh lock can be taken
/// and no other breaker can remove anything in between.
fn break_if_stale(tmp: &Dir) -> Result<bool, StoreError> {
    match judge(tmp)? {
        Judged::Gone => return Ok(true),
        Judged::Held => return Ok(false),
        Judged::Stale(..) => {}
    }
    let Some(_breaking) = Breaking::take(tmp)? else {
        // Another waiter is breaking it: wait as for a held lock.
        return Ok(false);
    };
    match judge(tmp)? {
        Judged::Gone => Ok(true),
        Judged::Held => Ok(false),
        Judged::Stale(text) => {
            pause_before_breaking();
            log::warn!(
                "removing stale lock {} held by {text:?}",
                tmp.path().join(LOCK_NAME).display()
            );
            match tmp.remove_file(LOCK_NAME) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                Err(e) => Err(tmp.fail(LOCK_NAME, e)),
            }
        }
    }
}

/// Unit tests only: widens the window between judging a lock stale and removing it, in
/// which the race [`break_if_stale`] closes would strike.
#[cfg(test)]
fn pause_before_breaking() {
    if let Some(ms) = std::env::var("MDIMAP_TEST_LOCK_BREAK_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        thread::sleep(Duration::from_millis(ms));
    }
}

#[cfg(not(test))]
fn pause_before_breaking() {}

/// What a look at the lock file found.
enum Judged {
    Gone,
    Held,
    /// Its holder is gone; the file's contents.
    Stale(String),
}

fn judge(tmp: &Dir) -> Result<Judged, StoreError> {
    let read = tmp.open_file(LOCK_NAME).and_then(|mut file| {
        let meta = file.metadata()?;
        let mut contents = Vec::new();
        io::Read::read_to_end(&mut file, &mut contents)?;
        Ok((contents, meta))
    });
    let (contents, meta) = match read {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Judged::Gone),
        Err(e) => return Err(tmp.fail(LOCK_NAME, e)),
    };
    let text = String::from_utf8_lossy(&contents).into_owned();
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
    Ok(if stale {
        Judged::Stale(text)
    } else {
        Judged::Held
    })
}

/// The right to break a stale lock ([`break_if_stale`]); released on drop.
struct Breaking<'a> {
    tmp: &'a Dir,
}

impl<'a> Breaking<'a> {
    /// `None` while another process is breaking (or its leftover is younger than
    /// [`BREAKING_STALE_SECS`]).
    fn take(tmp: &'a Dir) -> Result<Option<Breaking<'a>>, StoreError> {
        match tmp.create_new(BREAKING_NAME, 0o600) {
            Ok(_) => Ok(Some(Breaking { tmp })),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if let Ok(stat) = tmp.stat(BREAKING_NAME)
                    && now_secs().saturating_sub(stat.st_mtime) > BREAKING_STALE_SECS
                {
                    log::warn!(
                        "removing {} left by a process that died breaking a stale lock",
                        tmp.path().join(BREAKING_NAME).display()
                    );
                    let _ = tmp.remove_file(BREAKING_NAME);
                }
                Ok(None)
            }
            Err(e) => Err(tmp.fail(BREAKING_NAME, e)),
        }
    }
}

impl Drop for Breaking<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.tmp.remove_file(BREAKING_NAME) {
            log::warn!(
                "cannot remove {}: {e}",
                self.tmp.path().join(BREAKING_NAME).display()
            );
        }
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
    use std::fs;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn folder(tag: &str) -> TempDir {
        let dir = TempDir::new(tag);
        fs::create_dir(dir.path().join("tmp")).unwrap();
        dir
    }

    fn tmp_of(dir: &TempDir) -> Dir {
        Dir::open_root(&dir.path().join("tmp")).unwrap()
    }

    #[test]
    fn lock_file_contents_and_unlock() {
        let dir = folder("lock-basic");
        let lock_path = dir.path().join("tmp").join(LOCK_NAME);
        {
            let tmp = tmp_of(&dir);
            let _lock = DotLock::acquire(&tmp).unwrap();
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
                let tmp = tmp_of(&dir);
                let inside = inside.clone();
                thread::spawn(move || {
                    for _ in 0..10 {
                        let _lock = DotLock::acquire(&tmp).unwrap();
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

    /// A waiter wakes for the removal of the lock file, not for the other files that come
    /// and go in tmp/ (deliveries, other waiters' attempts). The removal comes long before
    /// the wait's bound, so a waiter that returned with the lock still there woke too early.
    #[test]
    fn a_waiter_wakes_for_the_lock_files_removal_only() {
        let dir = folder("lock-release");
        let tmp = tmp_of(&dir);
        let lock_path = dir.path().join("tmp").join(LOCK_NAME);
        let other = dir.path().join("tmp").join("1.M1P1.host");
        fs::write(&lock_path, "1:elsewhere").unwrap();
        fs::write(&other, "a delivery in progress").unwrap();
        let release = Release::watch(&tmp).expect("inotify on tmp/");
        let remover = thread::spawn({
            let (lock_path, other) = (lock_path.clone(), other.clone());
            move || {
                fs::remove_file(&other).unwrap();
                thread::sleep(Duration::from_millis(200));
                fs::remove_file(&lock_path).unwrap();
            }
        });
        release.wait(Duration::from_secs(60));
        assert!(!lock_path.exists(), "woke before the lock was released");
        remover.join().unwrap();
    }

    #[test]
    fn dead_local_holder_is_broken() {
        let dir = folder("lock-dead");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let lock_path = dir.path().join("tmp").join(LOCK_NAME);
        fs::write(&lock_path, format!("{pid}:{}", raw_hostname())).unwrap();
        let tmp = tmp_of(&dir);
        // Broken at the first try; the bound only turns a hang into a failure.
        let _lock = DotLock::acquire_within(&tmp, LOCK_WAIT).unwrap();
    }

    /// The folder whose tmp/ a child of `holders_dying_with_the_lock_never_make_two_holders`
    /// locks, and the round at which it dies holding the lock.
    const CHILD_DIR_ENV: &str = "MDIMAP_TEST_LOCK_CHILD_DIR";
    const CHILD_DIE_ENV: &str = "MDIMAP_TEST_LOCK_CHILD_DIE_AT";
    /// A child's exit status when it found another holder inside the lock.
    const TWO_HOLDERS: i32 = 3;

    /// Not a test of its own: the body of the child processes of the test below (it
    /// returns at once when run without them).
    #[test]
    fn lock_holding_child() {
        let (Ok(dir), Ok(die_at)) = (std::env::var(CHILD_DIR_ENV), std::env::var(CHILD_DIE_ENV))
        else {
            return;
        };
        let die_at: u32 = die_at.parse().unwrap();
        let tmp = Dir::open_root(std::path::Path::new(&dir)).unwrap();
        for round in 0..6 {
            let lock = DotLock::acquire(&tmp).unwrap();
            // The marker exists only while someone holds the lock.
            if tmp.create_new("inside", 0o600).is_err() {
                std::process::exit(TWO_HOLDERS);
            }
            thread::sleep(Duration::from_millis(2));
            tmp.remove_file("inside").unwrap();
            if round == die_at {
                // Dies holding the lock: the others must break it, once.
                std::mem::forget(lock);
                std::process::exit(0);
            }
            drop(lock);
        }
        std::process::exit(0);
    }

    /// Holders die with the lock while a dozen processes wait for it, so several find the
    /// same stale lock at once: one may break it and take the lock before another, which
    /// judged the stale file, unlinks the fresh one. Two holders then numbered messages
    /// with the same UIDs (tests/torture.rs, RELIABILITY.md).
    #[test]
    fn holders_dying_with_the_lock_never_make_two_holders() {
        let dir = folder("lock-stale-race");
        let exe = std::env::current_exe().unwrap();
        for batch in 0..4 {
            // Each child is reaped as soon as it exits: a zombie's pid still answers
            // kill(0), and its lock would never look stale (mdimap-listen reaps as fast).
            let children: Vec<_> = (0..12)
                .map(|i| {
                    let mut child = std::process::Command::new(&exe)
                        .args(["--exact", "maildir::lock::tests::lock_holding_child"])
                        .args(["--test-threads", "1", "--quiet"])
                        .env(CHILD_DIR_ENV, dir.path().join("tmp"))
                        .env(CHILD_DIE_ENV, ((i + batch) % 4 + 1).to_string())
                        .env("MDIMAP_TEST_LOCK_BREAK_PAUSE_MS", "20")
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .unwrap();
                    thread::spawn(move || child.wait().unwrap())
                })
                .collect();
            for child in children {
                let status = child.join().unwrap();
                assert_ne!(
                    status.code(),
                    Some(TWO_HOLDERS),
                    "two processes held the lock at once (batch {batch})"
                );
                assert!(status.success(), "a child failed: {status:?}");
            }
        }
    }

    /// A lock that keeps changing hands (a queue of other sessions) is waited for beyond
    /// the wait for one holder; one holder that keeps it (above) is not.
    #[test]
    fn a_waiter_outlasts_a_moving_queue_of_holders() {
        let dir = folder("lock-queue");
        let tmp_path = dir.path().join("tmp");
        let lock_path = tmp_path.join(LOCK_NAME);
        // A fresh lock of another host counts as held (its PID cannot be probed).
        fs::write(&lock_path, "1:some-other-host.example").unwrap();
        let holders = {
            let (tmp_path, lock_path) = (tmp_path.clone(), lock_path.clone());
            thread::spawn(move || {
                // 6 s (three times the waiter's wait for one holder) of holders taking
                // over from one another every 20 ms, never leaving a gap.
                let until = Instant::now() + Duration::from_secs(6);
                let mut n = 0;
                while Instant::now() < until {
                    let next = tmp_path.join(format!("next{n}"));
                    fs::write(&next, "1:some-other-host.example").unwrap();
                    fs::rename(&next, &lock_path).unwrap();
                    n += 1;
                    thread::sleep(Duration::from_millis(20));
                }
                fs::remove_file(&lock_path).unwrap();
            })
        };
        let tmp = tmp_of(&dir);
        let lock = DotLock::acquire_within(&tmp, Duration::from_secs(2));
        holders.join().unwrap();
        assert!(lock.is_ok(), "{lock:?}");
    }

    #[test]
    fn fresh_foreign_lock_times_out_old_one_is_broken() {
        let dir = folder("lock-foreign");
        let lock_path = dir.path().join("tmp").join(LOCK_NAME);
        fs::write(&lock_path, "1:some-other-host.example").unwrap();
        let tmp = tmp_of(&dir);
        let err = DotLock::acquire_within(&tmp, Duration::from_millis(300)).unwrap_err();
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
        let _lock = DotLock::acquire_within(&tmp, LOCK_WAIT).unwrap();
        assert_eq!(
            fs::read_to_string(&lock_path).unwrap(),
            format!("{}:{}", std::process::id(), raw_hostname())
        );
    }
}
