//! Maildir unique file names (spec/maildir.md §1.1) and the write discipline shared by every
//! file the store writes: create in `tmp/` under a unique name, write, fsync, rename into place.
//!
//! Owns the name format and the per-process counter; must not interpret names beyond what
//! the spec allows (the base name and `,S=`).

use std::fs::File;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::beneath::Dir;
use super::error::StoreError;

/// Mode of the files the store creates, before the umask: the session sets
/// IMAP_UMASK (Courier's default 022 gives 0644, as Courier's own files).
pub(crate) const FILE_MODE: u32 = 0o666;

/// Mode of the `maildirfolder` marker, as Courier's maildirmake leaves it.
pub(crate) const MARKER_MODE: u32 = 0o600;

/// How many fresh names to try before giving up on `EEXIST` (only a clock jump or a
/// name clash with another host could make even one retry necessary).
const CREATE_ATTEMPTS: u32 = 100;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The moment and process a unique name is made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    sec: u64,
    usec: u32,
    pid: u32,
    counter: u64,
}

impl Stamp {
    pub(crate) fn now() -> Stamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Stamp {
            sec: since.as_secs(),
            usec: since.subsec_micros(),
            pid: std::process::id(),
            counter: COUNTER.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// `<sec>.M<usec>P<pid>_<tag><counter>.<host>`: names of temporary files in `tmp/`
    /// (tag "" for messages, a word such as "courierlock" for the store's own files).
    pub(crate) fn tmp_name(&self, tag: &str) -> String {
        format!(
            "{}.M{}P{}_{}{}.{}",
            self.sec,
            self.usec,
            self.pid,
            tag,
            self.counter,
            hostname()
        )
    }

    /// `<sec>.M<usec>P<pid>V<dev>I<ino>_<counter>.<host>`: the base name of a message whose
    /// tmp file has the given device and inode (without `,S=`).
    pub(crate) fn message_name(&self, dev: u64, ino: u64) -> String {
        format!(
            "{}.M{}P{}V{:016X}I{:016X}_{}.{}",
            self.sec,
            self.usec,
            self.pid,
            dev,
            ino,
            self.counter,
            hostname()
        )
    }
}

/// The host name as the system reports it (used in the dot-lock's contents).
pub(crate) fn raw_hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let name = nix::unistd::gethostname()
            .ok()
            .and_then(|n| n.into_string().ok())
            .unwrap_or_default();
        if name.is_empty() {
            "localhost".to_string()
        } else {
            name
        }
    })
}

/// The host name as it appears in file names: `/` and `:` escaped the qmail way, because
/// either would break the name (a path separator, the info separator).
pub(crate) fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| escape_host(raw_hostname()))
}

fn escape_host(raw: &str) -> String {
    raw.replace('/', "\\057").replace(':', "\\072")
}

/// Creates a new file with a unique name in `dir` (O_EXCL, never through a link); returns it
/// with its name.
pub(crate) fn create_exclusive(dir: &Dir, tag: &str) -> Result<(File, String, Stamp), StoreError> {
    for _ in 0..CREATE_ATTEMPTS {
        let stamp = Stamp::now();
        let name = stamp.tmp_name(tag);
        match dir.create_new(&name, FILE_MODE) {
            Ok(file) => return Ok((file, name, stamp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(dir.fail(&name, e)),
        }
    }
    Err(StoreError::io(
        dir.path(),
        io::Error::new(io::ErrorKind::AlreadyExists, "no free unique file name"),
    ))
}

/// Replaces `name` in `dir` with `contents` atomically: write to the folder's `tmp`, fsync,
/// rename. The rename replaces whatever `name` was, a link included, without following it.
pub(crate) fn replace_file(
    tmp: &Dir,
    dir: &Dir,
    name: &str,
    tag: &str,
    contents: &[u8],
) -> Result<(), StoreError> {
    place_file(tmp, dir, name, tag, contents, Sync::Full)
}

/// [`replace_file`] syncing only what `sync` says.
pub(crate) fn replace_file_syncing(
    tmp: &Dir,
    dir: &Dir,
    name: &str,
    tag: &str,
    contents: &[u8],
    sync: Sync,
) -> Result<(), StoreError> {
    place_file(tmp, dir, name, tag, contents, sync)
}

/// [`replace_file`] without the fsyncs, for what may be lost in a crash (keyword updates,
/// which are as durable as flag renames; the recent-UID hint): still whole or absent.
pub(crate) fn replace_file_unsynced(
    tmp: &Dir,
    dir: &Dir,
    name: &str,
    tag: &str,
    contents: &[u8],
) -> Result<(), StoreError> {
    place_file(tmp, dir, name, tag, contents, Sync::Nothing)
}

/// What replacing a file syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sync {
    Nothing,
    /// The file, before it is renamed into place: after a crash it is whole or absent.
    /// For a file made again from others when it is missing (an access control list a
    /// folder inherits): a crash that loses the rename loses a file its next reader makes
    /// again, the same.
    Contents,
    /// The file, and the directory after the rename.
    Full,
}

fn place_file(
    tmp: &Dir,
    dir: &Dir,
    name: &str,
    tag: &str,
    contents: &[u8],
    sync: Sync,
) -> Result<(), StoreError> {
    let (mut file, temp, _) = create_exclusive(tmp, tag)?;
    let written = file.write_all(contents).and_then(|()| {
        if sync == Sync::Nothing {
            Ok(())
        } else {
            file.sync_all()
        }
    });
    drop(file);
    if let Err(e) = written {
        let _ = tmp.remove_file(&temp);
        return Err(tmp.fail(&temp, e));
    }
    if let Some(point) = super::crash::staged_point(tag) {
        super::crash::at(point);
    }
    if let Err(e) = tmp.rename(&temp, dir, name) {
        let _ = tmp.remove_file(&temp);
        return Err(dir.fail(name, e));
    }
    if sync == Sync::Full {
        dir.sync();
    }
    Ok(())
}

/// Seconds since the epoch, now.
pub(crate) fn now_secs() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_escaping() {
        assert_eq!(escape_host("a/b:c.d"), "a\\057b\\072c.d");
        assert!(!hostname().contains('/') && !hostname().contains(':'));
    }

    #[test]
    fn message_name_format() {
        let stamp = Stamp {
            sec: 1795769194,
            usec: 392814,
            pid: 14668,
            counter: 1,
        };
        let name = stamp.message_name(0xFE00, 0x98E571);
        let expected = format!(
            "1795769194.M392814P14668V000000000000FE00I000000000098E571_1.{}",
            hostname()
        );
        assert_eq!(name, expected);
        assert_eq!(
            stamp.tmp_name("courierlock"),
            format!("1795769194.M392814P14668_courierlock1.{}", hostname())
        );
    }

    #[test]
    fn names_are_unique_within_a_process() {
        let a = Stamp::now().tmp_name("");
        let b = Stamp::now().tmp_name("");
        assert_ne!(a, b);
    }

    #[test]
    fn replace_file_writes_atomically() {
        use std::fs;
        let dir = crate::maildir::testutil::TempDir::new("unique");
        fs::create_dir(dir.path().join("tmp")).unwrap();
        let folder = Dir::open_root(dir.path()).unwrap();
        let tmp = folder.open_dir("tmp").unwrap();
        let target = dir.path().join("file");
        replace_file(&tmp, &folder, "file", "t", b"one\n").unwrap();
        replace_file(&tmp, &folder, "file", "t", b"two\n").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two\n");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        // A link in the target's place is replaced, its target left alone.
        fs::write(dir.path().join("elsewhere"), b"keep\n").unwrap();
        fs::remove_file(&target).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &target).unwrap();
        replace_file(&tmp, &folder, "file", "t", b"three\n").unwrap();
        assert!(!fs::symlink_metadata(&target).unwrap().is_symlink());
        assert_eq!(fs::read(dir.path().join("elsewhere")).unwrap(), b"keep\n");
    }
}
