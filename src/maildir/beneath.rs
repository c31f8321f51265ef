//! Paths below a maildir's root, reached without following symbolic links: the one way the
//! store opens, creates, renames, links, removes, lists and stats anything inside a maildir.
//!
//! Owns how a relative path is resolved. A `Dir` is an open directory; a path below it is
//! opened with `openat2(2)` and `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where the kernel
//! offers it, else component by component with `openat(O_NOFOLLOW)`, so a symbolic link
//! anywhere below the directory (a folder `.X`, its `cur/`, a message, `courierimapuiddb`)
//! is refused with `ELOOP` instead of being followed into another user's mail. Only the
//! maildir root itself is opened following links: where it lives is the administrator's
//! choice (`/home/u/Maildir -> /srv/mail/u`). Renames, links, removals and stats act on one
//! name inside an open directory, which the kernel never follows. `read_link` reads a
//! link's text without following it: for the shared folders' links, which `sharable`
//! checks against what Courier writes and never hands to the kernel as a path.
//!
//! Must not know what the files are (messages, databases, locks): callers decide what a
//! missing or refused file means. Uses no `O_PATH` or `/proc` tricks, which NFS or a chroot
//! would break.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, UtimensatFlags, fstat, fstatat, mkdirat, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{AccessFlags, UnlinkatFlags, faccessat, fsync, linkat, symlinkat, unlinkat};

use super::error::StoreError;

/// Cleared once the kernel (or a seccomp filter) turns `openat2` away; the component walk
/// gives the same answers with a few more system calls.
static OPENAT2_USABLE: AtomicBool = AtomicBool::new(true);

/// What a directory entry is, as far as the store cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    /// FIFOs, sockets, devices: nothing a maildir holds.
    Other,
}

impl Kind {
    fn of_mode(mode: libc::mode_t) -> Kind {
        match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    /// The kind of what `fstatat` found.
    pub(crate) fn of(stat: &FileStat) -> Kind {
        Kind::of_mode(stat.st_mode)
    }
}

/// The device and inode `fstatat` found.
#[allow(clippy::useless_conversion)] // dev_t and ino_t differ between platforms
pub(crate) fn identity_of(stat: &FileStat) -> (u64, u64) {
    (u64::from(stat.st_dev), u64::from(stat.st_ino))
}

/// `fd` as a file when it is a regular file; anything else (a FIFO, a directory) refused.
fn regular_file(fd: OwnedFd) -> io::Result<(File, FileStat)> {
    let stat = fstat(&fd)?;
    let kind = Kind::of(&stat);
    if kind != Kind::File {
        return Err(not_a_file(kind));
    }
    Ok((File::from(fd), stat))
}

/// The error for finding `kind` where a regular file was expected.
pub(crate) fn not_a_file(kind: Kind) -> io::Error {
    match kind {
        Kind::Symlink => io::Error::from_raw_os_error(libc::ELOOP),
        _ => io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file: a maildir holds only regular files here",
        ),
    }
}

/// One entry of a directory listing (never `.` or `..`).
#[derive(Debug)]
pub(crate) struct Entry {
    pub name: OsString,
    pub kind: Kind,
    /// The inode number the directory entry names (`d_ino`).
    pub ino: u64,
}

/// An open directory inside (or at the root of) a maildir.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    /// Where it was when opened: for messages to the administrator only, never opened again.
    path: PathBuf,
}

/// Refuses what could leave the directory or name it ambiguously: empty, absolute, `.` and
/// `..` components and NUL bytes. `multi` allows `a/b`.
fn check_relative(rel: &str, multi: bool) -> io::Result<()> {
    let bad = rel.is_empty()
        || rel.contains('\0')
        || (!multi && rel.contains('/'))
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel:?} is not a plain relative name"),
        ));
    }
    Ok(())
}

/// The error for a symbolic link that was not followed, in words an administrator can act on.
fn explain(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return io::Error::new(
            e.kind(),
            "a symbolic link was not followed: mdimap follows none below the maildir root \
             (folders, cur/ new/ tmp/, messages, courierimap* files); replace the link with \
             the directory or file itself, or remove it",
        );
    }
    e
}

/// Most paths `report_skipped` remembers; past that it says nothing more (a maildir full of
/// links must not fill memory).
const REPORTED_MAX: usize = 1000;

/// Logs, once per process (one session) and path, that the store passed over `path`
/// because it is `kind` where `expected` belongs, and what the administrator should do.
/// Scans run at every NOOP: without the once, one link would fill the log.
pub(crate) fn report_skipped(path: &Path, kind: Kind, expected: &str) {
    static REPORTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut reported = REPORTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if reported.len() >= REPORTED_MAX || reported.iter().any(|p| p == path) {
        return;
    }
    reported.push(path.to_path_buf());
    drop(reported);
    match kind {
        Kind::Symlink => log::warn!(
            "{} is a symbolic link where {expected} belongs: ignored, mdimap follows no link \
             inside a maildir; replace it with the file or directory itself, or remove it",
            path.display()
        ),
        _ => log::warn!(
            "{} is not what a maildir holds where {expected} belongs: ignored; remove it",
            path.display()
        ),
    }
}

fn timespec(time: SystemTime) -> TimeSpec {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => TimeSpec::from_duration(d),
        Err(e) => -TimeSpec::from_duration(e.duration()),
    }
}

impl Dir {
    /// Opens the maildir root itself, following symbolic links on the way: where the maildir
    /// lives is the administrator's choice. Everything below it is reached through `self`.
    pub(crate) fn open_root(path: &Path) -> io::Result<Dir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// A path naming this very directory, not whatever is at `path()` now: for calls
    /// that take only a path (inotify).
    pub(crate) fn proc_path(&self) -> std::path::PathBuf {
        Path::new("/proc/self/fd").join(std::os::fd::AsRawFd::as_raw_fd(&self.fd).to_string())
    }

    /// Where the directory was when opened (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The store error for `rel` below this directory, explaining a refused symbolic link.
    pub(crate) fn fail(&self, rel: &str, e: io::Error) -> StoreError {
        StoreError::io(&self.path.join(rel), explain(e))
    }

    /// Opens `rel` (`cur`, `.Work/cur`) below this directory as a directory, following no
    /// symbolic link.
    pub(crate) fn open_dir(&self, rel: &str) -> io::Result<Dir> {
        let fd = self.open_beneath(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
        Ok(Dir {
            fd,
            path: self.path.join(rel),
        })
    }

    /// Opens the regular file `rel` below this directory for reading, following no symbolic
    /// link. Anything but a regular file (a FIFO, a directory) is refused, and a FIFO cannot
    /// block the open.
    pub(crate) fn open_file(&self, rel: &str) -> io::Result<File> {
        self.open_file_stat(rel).map(|(file, _)| file)
    }

    /// [`Dir::open_file`], with what the fstat that checked the file found (its length and
    /// times), for a caller that needs them: no second stat.
    pub(crate) fn open_file_stat(&self, rel: &str) -> io::Result<(File, FileStat)> {
        let fd = self.open_beneath(
            rel,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
            Mode::empty(),
        )?;
        regular_file(fd)
    }

    /// Opens the existing regular file `name` in this directory for appending (`O_APPEND`:
    /// every write lands at the end, whoever else appends meanwhile), following no link and
    /// never creating it.
    pub(crate) fn open_append(&self, name: &str) -> io::Result<File> {
        self.open_existing(name, OFlag::O_WRONLY | OFlag::O_APPEND)
    }

    /// Opens the existing regular file `name` in this directory for reading and writing in
    /// place (no `O_APPEND`: the caller writes at offsets it chose), following no link and
    /// never creating it.
    pub(crate) fn open_update(&self, name: &str) -> io::Result<File> {
        self.open_existing(name, OFlag::O_RDWR)
    }

    /// Opens the existing regular file `name` in this directory with `access` (the access
    /// mode and `O_APPEND` if wanted), following no link and never creating it.
    fn open_existing(&self, name: &str, access: OFlag) -> io::Result<File> {
        check_relative(name, false)?;
        let fd = open_one(
            self.fd.as_fd(),
            name,
            access | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        regular_file(fd).map(|(file, _)| file)
    }

    /// Reads the regular file `rel` below this directory whole.
    pub(crate) fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        let mut file = self.open_file(rel)?;
        let mut data = Vec::new();
        io::Read::read_to_end(&mut file, &mut data)?;
        Ok(data)
    }

    /// Creates the new file `name` in this directory (never an existing one, never through a
    /// link), for writing and reading back, with `mode` before the umask.
    pub(crate) fn create_new(&self, name: &str, mode: u32) -> io::Result<File> {
        check_relative(name, false)?;
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )?;
        Ok(File::from(fd))
    }

    /// Creates a file without a name in this directory (`O_TMPFILE`), for writing and
    /// reading back: it vanishes with its last descriptor. File systems without unnamed
    /// files (NFS) answer `EOPNOTSUPP`, `EISDIR` or `EINVAL`.
    pub(crate) fn create_unnamed(&self, mode: u32) -> io::Result<File> {
        let fd = openat(
            &self.fd,
            ".",
            OFlag::O_RDWR | OFlag::O_TMPFILE | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )?;
        Ok(File::from(fd))
    }

    /// Makes the directory `name` in this directory.
    pub(crate) fn mkdir(&self, name: &str, mode: u32) -> io::Result<()> {
        check_relative(name, false)?;
        mkdirat(&self.fd, name, Mode::from_bits_truncate(mode))?;
        Ok(())
    }

    /// `lstat` of `name` in this directory: a symbolic link is reported as one.
    pub(crate) fn stat(&self, name: &str) -> io::Result<FileStat> {
        check_relative(name, false)?;
        Ok(fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)?)
    }

    /// Renames `from` in this directory to `to` in `to_dir`, replacing what `to` was (the
    /// entry itself: a link there is replaced, not followed).
    pub(crate) fn rename(&self, from: &str, to_dir: &Dir, to: &str) -> io::Result<()> {
        check_relative(from, false)?;
        check_relative(to, false)?;
        nix::fcntl::renameat(&self.fd, from, &to_dir.fd, to)?;
        Ok(())
    }

    /// Like `rename`, but never replaces an existing `to` (plain rename would replace an
    /// empty directory).
    pub(crate) fn rename_noreplace(&self, from: &str, to_dir: &Dir, to: &str) -> io::Result<()> {
        check_relative(from, false)?;
        check_relative(to, false)?;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            use nix::fcntl::{RenameFlags, renameat2};
            match renameat2(
                &self.fd,
                from,
                &to_dir.fd,
                to,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => return Ok(()),
                // File systems without RENAME_NOREPLACE (older NFS): fall through.
                Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match to_dir.stat(to) {
            Ok(_) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.rename(from, to_dir, to),
            Err(e) => Err(e),
        }
    }

    /// Hard-links `from` in this directory as `to` in `to_dir`. A symbolic link `from` is
    /// linked as the link itself, never its target (no `AT_SYMLINK_FOLLOW`).
    pub(crate) fn hard_link(&self, from: &str, to_dir: &Dir, to: &str) -> io::Result<()> {
        check_relative(from, false)?;
        check_relative(to, false)?;
        linkat(&self.fd, from, &to_dir.fd, to, AtFlags::empty())?;
        Ok(())
    }

    /// Removes the file (or link) `name` from this directory.
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        check_relative(name, false)?;
        unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir)?;
        Ok(())
    }

    /// Removes the empty directory `name` from this directory.
    pub(crate) fn remove_dir(&self, name: &str) -> io::Result<()> {
        check_relative(name, false)?;
        unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir)?;
        Ok(())
    }

    /// The text of the symbolic link `name` in this directory, which is read, never
    /// followed. The callers are the store's shared folders (`sharable`), the one place
    /// where Courier makes links inside a maildir: they compare the text with what Courier
    /// writes there and act on names they derive themselves, never on the link.
    pub(crate) fn read_link(&self, name: &str) -> io::Result<OsString> {
        check_relative(name, false)?;
        Ok(readlinkat(&self.fd, name)?)
    }

    /// Makes the symbolic link `name` in this directory with the text `target`, as Courier
    /// makes the links of a subscribed shared folder. Nothing in the store follows it.
    pub(crate) fn symlink(&self, target: &OsStr, name: &str) -> io::Result<()> {
        check_relative(name, false)?;
        symlinkat(target, &self.fd, name)?;
        Ok(())
    }

    /// Whether this process may create and remove entries in this directory (`access(2)`
    /// with the effective ids, as the kernel will judge the change itself).
    pub(crate) fn writable(&self) -> bool {
        faccessat(&self.fd, ".", AccessFlags::W_OK, AtFlags::AT_EACCESS).is_ok()
    }

    /// Opens (creating it if missing, mode `mode` before the umask) the regular file `name`
    /// in this directory for writing, never through a link.
    pub(crate) fn open_for_writing(&self, name: &str, mode: u32) -> io::Result<File> {
        check_relative(name, false)?;
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )?;
        regular_file(fd).map(|(file, _)| file)
    }

    /// Removes `name` and, if it is a directory, everything in it, following no link (a link
    /// inside is removed, its target stays).
    pub(crate) fn remove_tree(&self, name: &str) -> io::Result<()> {
        let dir = match self.open_dir(name) {
            Ok(dir) => dir,
            // A file or a link: remove the entry itself.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                return self.remove_file(name);
            }
            Err(e) => return Err(e),
        };
        for entry in dir.entries()? {
            let Some(child) = entry.name.to_str() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("cannot remove {:?}: not UTF-8", entry.name),
                ));
            };
            let removed = if entry.kind == Kind::Dir {
                dir.remove_tree(child)
            } else {
                dir.remove_file(child)
            };
            match removed {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir)?;
        Ok(())
    }

    /// Sets the modification time of `name` in this directory (of a link itself, not its
    /// target); the access time stays.
    pub(crate) fn set_modified(&self, name: &str, time: SystemTime) -> io::Result<()> {
        check_relative(name, false)?;
        utimensat(
            &self.fd,
            name,
            &TimeSpec::UTIME_OMIT,
            &timespec(time),
            UtimensatFlags::NoFollowSymlink,
        )?;
        Ok(())
    }

    /// The entries of this directory, with their kinds from `readdir` (a `stat` only where the
    /// file system does not say, as `std::fs::read_dir` does). Entries that vanish while being
    /// looked at are left out.
    pub(crate) fn entries(&self) -> io::Result<Vec<Entry>> {
        // A descriptor of its own for reading, so its position is not shared with `self`.
        let mut listing = nix::dir::Dir::openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut entries = Vec::new();
        for entry in listing.iter() {
            let entry = entry?;
            let bytes = entry.file_name().to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let name = OsStr::from_bytes(bytes).to_os_string();
            use nix::dir::Type;
            let kind = match entry.file_type() {
                Some(Type::File) => Kind::File,
                Some(Type::Directory) => Kind::Dir,
                Some(Type::Symlink) => Kind::Symlink,
                Some(_) => Kind::Other,
                None => match fstatat(&self.fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(stat) => Kind::of(&stat),
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(e.into()),
                },
            };
            entries.push(Entry {
                name,
                kind,
                ino: entry.ino(),
            });
        }
        Ok(entries)
    }

    /// Flushes the directory after a rename so the new entry survives a crash. Best effort:
    /// some file systems refuse fsync on directories, and the rename itself already happened.
    pub(crate) fn sync(&self) {
        if let Err(e) = fsync(&self.fd) {
            log::debug!("fsync of directory {} failed: {e}", self.path.display());
        }
    }

    /// `fstat` of the directory itself.
    pub(crate) fn status(&self) -> io::Result<FileStat> {
        Ok(fstat(&self.fd)?)
    }

    /// The device and inode of the directory itself.
    pub(crate) fn identity(&self) -> io::Result<(u64, u64)> {
        Ok(identity_of(&fstat(&self.fd)?))
    }

    /// Opens `rel` below this directory with `flags`, following no symbolic link in any
    /// component.
    fn open_beneath(&self, rel: &str, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
        check_relative(rel, true)?;
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        if !rel.contains('/') {
            // One component: O_NOFOLLOW alone already refuses a link.
            return open_one(self.fd.as_fd(), rel, flags, mode);
        }
        if !OPENAT2_USABLE.load(Ordering::Relaxed) {
            return self.open_walking(rel, flags, mode);
        }
        match self.open_resolving(rel, flags, mode) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                let walked = self.open_walking(rel, flags, mode);
                // EPERM is also a real answer (a file sealed against us); the walk tells the
                // two apart: only a seccomp filter turns openat2 away and lets openat through.
                let filtered = e.raw_os_error() == Some(libc::ENOSYS)
                    || walked
                        .as_ref()
                        .err()
                        .and_then(io::Error::raw_os_error)
                        .is_none_or(|errno| errno != libc::EPERM);
                if filtered {
                    log::debug!("openat2 is not available ({e}): opening component by component");
                    OPENAT2_USABLE.store(false, Ordering::Relaxed);
                }
                walked
            }
            // A link where a directory was asked for is ENOTDIR to openat2 as well; the walk
            // (on this error only) tells a refused link apart from a real file.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                self.open_walking(rel, flags, mode)
            }
            other => other,
        }
    }

    /// One `openat2` that refuses every symbolic link and any way out of the directory.
    fn open_resolving(&self, rel: &str, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        Ok(openat2(&self.fd, rel, how)?)
    }

    /// The same without `openat2`: each directory on the way opened with `O_NOFOLLOW`.
    fn open_walking(&self, rel: &str, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
        let (dirs, last) = rel.rsplit_once('/').unwrap_or(("", rel));
        let mut held: Option<OwnedFd> = None;
        for component in dirs.split('/').filter(|c| !c.is_empty()) {
            let at = match &held {
                Some(fd) => fd.as_fd(),
                None => self.fd.as_fd(),
            };
            let next = open_one(
                at,
                component,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            held = Some(next);
        }
        let at = match &held {
            Some(fd) => fd.as_fd(),
            None => self.fd.as_fd(),
        };
        open_one(at, last, flags, mode)
    }
}

/// `openat` of one name with `O_NOFOLLOW`. With `O_DIRECTORY` as well, Linux answers a link
/// with `ENOTDIR` rather than `ELOOP`; a look at the name (only on that error) restores
/// `ELOOP`, so that every refused link is reported as one.
fn open_one(at: BorrowedFd<'_>, name: &str, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
    match openat(at, name, flags, mode) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOTDIR)
            if fstatat(at, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|stat| Kind::of(&stat) == Kind::Symlink) =>
        {
            Err(io::Error::from_raw_os_error(libc::ELOOP))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// `root/a/b/file` with "inside", and `outside/secret` with "secret".
    fn tree(tag: &str) -> (TempDir, Dir, PathBuf) {
        let dir = TempDir::new(tag);
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/file"), b"inside").unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        let opened = Dir::open_root(&root).unwrap();
        (dir, opened, outside)
    }

    fn is_loop(e: &io::Error) -> bool {
        e.raw_os_error() == Some(libc::ELOOP)
    }

    /// Both ways of opening a path give the same answers.
    fn both(dir: &Dir, rel: &str) -> [io::Result<OwnedFd>; 2] {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        [
            dir.open_resolving(rel, flags, Mode::empty()),
            dir.open_walking(rel, flags, Mode::empty()),
        ]
    }

    #[test]
    fn plain_paths_open_both_ways() {
        let (_t, root, _) = tree("beneath-plain");
        for opened in both(&root, "a/b/file") {
            let mut text = String::new();
            io::Read::read_to_string(&mut File::from(opened.unwrap()), &mut text).unwrap();
            assert_eq!(text, "inside");
        }
        assert_eq!(root.read("a/b/file").unwrap(), b"inside");
        let b = root.open_dir("a/b").unwrap();
        assert_eq!(b.read("file").unwrap(), b"inside");
        assert_eq!(b.path(), root.path().join("a/b"));
    }

    #[test]
    fn no_link_is_followed_anywhere_on_the_way() {
        let (_t, root, outside) = tree("beneath-links");
        let a = root.path().join("a");
        symlink(&outside, a.join("dirlink")).unwrap();
        symlink(outside.join("secret"), a.join("b/filelink")).unwrap();
        symlink("b", a.join("relative")).unwrap();
        for rel in ["a/dirlink/secret", "a/b/filelink", "a/relative/file"] {
            for opened in both(&root, rel) {
                let e = opened.unwrap_err();
                assert!(is_loop(&e), "{rel}: {e}");
            }
            assert!(is_loop(&root.open_file(rel).unwrap_err()), "{rel}");
        }
        assert!(is_loop(&root.open_dir("a/dirlink").unwrap_err()));
        let a = root.open_dir("a").unwrap();
        assert!(is_loop(&a.open_dir("dirlink").unwrap_err()));
        assert!(is_loop(&a.open_file("relative/file").unwrap_err()));
        // The store's message names the path and says what to do.
        let text = a
            .fail("dirlink", a.open_dir("dirlink").unwrap_err())
            .to_string();
        assert!(
            text.contains("a/dirlink") && text.contains("symbolic link"),
            "{text}"
        );
        // Stats, renames and removals act on the link itself.
        assert_eq!(Kind::of(&a.stat("dirlink").unwrap()), Kind::Symlink);
        a.rename("dirlink", &a, "moved").unwrap();
        a.remove_file("moved").unwrap();
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");
    }

    #[test]
    fn ways_out_are_refused() {
        let (_t, root, outside) = tree("beneath-out");
        for rel in [
            "../outside/secret",
            "a/../../outside/secret",
            "/etc/passwd",
            "",
            "a//b",
            "./a",
        ] {
            assert!(root.open_file(rel).is_err(), "{rel}");
            assert!(root.open_dir(rel).is_err(), "{rel}");
        }
        for name in ["..", ".", "a/b", "x\0y"] {
            assert!(root.stat(name).is_err(), "{name}");
            assert!(root.remove_file(name).is_err(), "{name}");
        }
        assert!(outside.join("secret").exists());
    }

    #[test]
    fn only_regular_files_are_opened() {
        let (_t, root, _) = tree("beneath-fifo");
        nix::unistd::mkfifo(&root.path().join("a/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        // Would block forever without O_NONBLOCK; refused for not being a file.
        assert!(root.open_file("a/fifo").is_err());
        assert!(root.open_file("a/b").is_err());
    }

    #[test]
    fn listing_tells_links_apart_and_trees_are_removed_without_following() {
        let (_t, root, outside) = tree("beneath-list");
        let a = root.open_dir("a").unwrap();
        symlink(&outside, root.path().join("a/b/out")).unwrap();
        fs::write(root.path().join("a/f"), b"").unwrap();
        let mut seen: Vec<(String, Kind)> = a
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.name.into_string().unwrap(), e.kind))
            .collect();
        seen.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            seen,
            vec![("b".into(), Kind::Dir), ("f".into(), Kind::File)]
        );
        root.remove_tree("a").unwrap();
        assert!(!root.path().join("a").exists());
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");
    }

    #[test]
    fn create_link_and_times() {
        let (_t, root, outside) = tree("beneath-create");
        let a = root.open_dir("a").unwrap();
        symlink(outside.join("new"), root.path().join("a/trap")).unwrap();
        // O_EXCL never creates through a link.
        assert!(a.create_new("trap", 0o600).is_err());
        assert!(!outside.join("new").exists());
        io::Write::write_all(&mut a.create_new("made", 0o600).unwrap(), b"x").unwrap();
        a.hard_link("made", &a, "linked").unwrap();
        assert_eq!(a.stat("made").unwrap().st_nlink, 2);
        let when = UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        a.set_modified("linked", when).unwrap();
        assert_eq!(a.stat("made").unwrap().st_mtime, 1_000_000_000);
        a.mkdir("sub", 0o700).unwrap();
        a.rename_noreplace("made", &a, "sub").unwrap_err();
        a.rename_noreplace("made", &a, "fresh").unwrap();
        assert_eq!(a.read("fresh").unwrap(), b"x");
    }
}
