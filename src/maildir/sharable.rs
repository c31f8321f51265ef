//! Filesystem-permission shared folders (spec/courier-files.md §5.2; Courier's
//! `maildirshared.c`, `maildirshared2.c`), laid out as Courier-IMAP 5 lays them out so that
//! either server reads what the other wrote:
//!
//! - `shared-maildirs` in the maildir root, written by the administrator or the maildir's
//!   owner (`maildirmake --add name=/path`): lines `<name> <path>` (any blank between, `#`
//!   starts a comment) naming *sharable maildirs* (`maildirmake -S`), whose folders
//!   (`maildirmake -s read|write -f F`) other users may read, and with `write` add to,
//!   as far as the file permissions allow.
//! - Folder `F` of sharable maildir `name` is `shared.name.F` to IMAP. Subscribing makes
//!   the *local copy* `shared-folders/name/F/` (no dot before `F`, unlike the spec's
//!   wording: that is where Courier puts it) with `tmp/ new/ cur/` and the symbolic link
//!   `shared` to `<path>/.F`.
//! - Opening the folder syncs the local copy: the sharable folder's `new/` is moved to its
//!   `cur/` (where permitted); a local message whose base name is gone from the sharable
//!   `cur/` is removed; each new one gets a symbolic link in the local `new/`, named with
//!   the base name and no flags, reading `<path>/.F/cur/<file>`. Flags and keywords are the
//!   local names' and files': private to each user. The sync is skipped while
//!   `shared-timestamp` in the local copy is newer than the sharable `new/` and `cur/`.
//! - APPEND and COPY into the folder write into the sharable folder (`tmp/`, then `cur/`);
//!   EXPUNGE removes the sharable file, which the sharable folder's sticky bit allows only
//!   to the message's and the folder's owners; a message that cannot be removed stays,
//!   without `\Deleted`. A folder whose sharable `cur/` this user may not write is
//!   read-only.
//!
//! # Links
//!
//! These are the only symbolic links Courier makes inside a maildir, and the only ones the
//! store reads. None is ever followed by the kernel: the `shared` link and each message
//! link are read (`readlinkat`) and must say exactly what Courier writes there, which the
//! store knows beforehand: `<path>/.F` with `<path>` as written in `shared-maildirs`, and
//! `<path>/.F/cur/<name>` for a message, `<name>` a plain file name. The sharable maildir
//! is then opened by the path `shared-maildirs` gives, as a root of its own (following
//! links on the way to it, like any maildir root: where it lives is the administrator's
//! choice), and the message as `<name>` in its `.F/cur/`, reached without following any
//! link. A link that says anything else leads nowhere and is reported. So what a local
//! copy can reach is decided by `shared-maildirs` alone, never by a link planted in the
//! maildir; and `shared-maildirs` itself is read without following a link.
//!
//! Must not know IMAP names beyond `name.F` (the session adds `shared.`), and must not
//! check rights: the file permissions of the sharable maildir are the rights.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use super::beneath::{Dir, Kind, report_skipped};
use super::error::StoreError;
use super::fast::FastMap;
use super::flags::basename_of;
use super::folder::{CREATING_TAG, DELETING_TAG, Folder};
use super::names::{canonical_name, name_of_dir};
use super::store::Store;
use super::unique::Stamp;

/// The list of sharable maildirs, in the maildir root.
pub const SHARED_MAILDIRS: &str = "shared-maildirs";
/// The local copies of subscribed shared folders, in the maildir root.
pub const SHARED_FOLDERS: &str = "shared-folders";
/// The link in a local copy to its sharable folder.
const SHARED_LINK: &str = "shared";
/// Touched at each sync of a local copy.
const TIMESTAMP: &str = "shared-timestamp";
/// Mode of the directories of a local copy, as Courier makes them.
const DIR_MODE: u32 = 0o700;
/// Mode of `shared-timestamp`, as Courier makes it.
const TIMESTAMP_MODE: u32 = 0o600;

/// One line of `shared-maildirs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharableMaildir {
    pub name: String,
    /// As written: the links Courier makes start with it.
    pub path: String,
}

/// `name` is usable as a directory of `shared-folders/` and as one level of an IMAP name.
fn valid_sharable_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '.'])
        && !name.chars().any(char::is_control)
}

/// The lines of `shared-maildirs` as Courier parses them (`maildir_shared_fparse`): the
/// name up to the first blank, the path after the blanks that follow, a `#` ending the
/// line. Names that could not be a directory are left out and reported.
fn parse_shared_maildirs(text: &[u8], file: &Path) -> Vec<SharableMaildir> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.split('#').next().unwrap_or("");
        let Some(split) = line.find(|c: char| c.is_ascii_whitespace()) else {
            continue;
        };
        let (name, rest) = line.split_at(split);
        let path = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if path.is_empty() {
            continue;
        }
        if !valid_sharable_name(name) {
            log::warn!(
                "{}: {name:?} cannot name a sharable maildir (no '.', '/' or control \
                 characters); line ignored",
                file.display()
            );
            continue;
        }
        out.push(SharableMaildir {
            name: name.to_string(),
            path: path.to_string(),
        });
    }
    out
}

/// Splits `name.F` into the sharable maildir's name and the folder, checked as Courier's
/// `maildir_shareddir` does (a dot, no `/`, no empty level), and `F` as a folder name.
pub(crate) fn split_shared(name: &str) -> Result<(&str, &str), StoreError> {
    let invalid = || StoreError::InvalidName(format!("shared.{name}"));
    let (sharable, folder) = name.split_once('.').ok_or_else(invalid)?;
    if !valid_sharable_name(sharable) || canonical_name(&format!("INBOX.{folder}")).is_err() {
        return Err(invalid());
    }
    if folder.is_empty() || folder.ends_with('.') {
        return Err(invalid());
    }
    Ok((sharable, folder))
}

/// `shared-folders/<name>/<F>`.
fn local_rel(sharable: &str, folder: &str) -> String {
    format!("{SHARED_FOLDERS}/{sharable}/{folder}")
}

/// The part of a maildir file name up to the last `:` (Courier's key in the sync).
fn sync_key(name: &str) -> &str {
    name.rfind(':').map_or(name, |i| &name[..i])
}

/// A plain file name: what may follow `<path>/.F/cur/` in a message link.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// The error for a link that does not say what Courier writes there.
fn foreign_link(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "a symbolic link that is not {what}: mdimap follows no link inside a maildir and \
             reads only the links Courier makes for shared folders; remove it"
        ),
    )
}

/// The sharable folder a subscribed local copy mirrors.
#[derive(Debug)]
pub(crate) struct Linked {
    /// The sharable maildir: a root of its own, opened by path.
    root: PathBuf,
    /// The folder's directory in it (`.F`).
    dir: String,
    /// `<path>/.F` as Courier writes it: the `shared` link's text, and the start of every
    /// message link's.
    link_text: String,
    /// The sharable `cur/`, for work on single messages (see `Folder`'s own).
    cur: OnceLock<Arc<Dir>>,
}

/// A sharable folder's directories, opened for one operation.
pub(crate) struct SharableDirs {
    pub cur: Dir,
    pub new: Dir,
    pub tmp: Dir,
}

/// Where a message of a local copy is.
pub(crate) enum Source {
    /// In the local copy itself (a regular file; Courier puts none there).
    Local,
    /// In the sharable folder's `cur/`, under this name.
    Shared(Arc<Dir>, String),
}

impl Linked {
    /// The sharable maildir's root.
    fn open_root(&self) -> Result<Dir, StoreError> {
        Dir::open_root(&self.root).map_err(|e| StoreError::io(&self.root, e))
    }

    /// The sharable folder's directories.
    pub(crate) fn dirs(&self) -> Result<SharableDirs, StoreError> {
        let root = self.open_root()?;
        let top = root
            .open_dir(&self.dir)
            .map_err(|e| root.fail(&self.dir, e))?;
        let open = |sub: &str| top.open_dir(sub).map_err(|e| top.fail(sub, e));
        Ok(SharableDirs {
            cur: open("cur")?,
            new: open("new")?,
            tmp: open("tmp")?,
        })
    }

    /// The sharable `cur/`, opened once.
    pub(crate) fn cur(&self) -> Result<Arc<Dir>, StoreError> {
        if let Some(dir) = self.cur.get() {
            return Ok(dir.clone());
        }
        let rel = format!("{}/cur", self.dir);
        let root = self.open_root()?;
        let dir = Arc::new(root.open_dir(&rel).map_err(|e| root.fail(&rel, e))?);
        Ok(self.cur.get_or_init(|| dir).clone())
    }

    /// The text a message link to sharable `cur/<name>` has.
    pub(crate) fn message_link(&self, name: &str) -> String {
        format!("{}/cur/{name}", self.link_text)
    }

    /// Directories a change by the sharer touches (for IDLE and change stamps).
    pub(crate) fn watched(&self) -> Vec<PathBuf> {
        let top = self.root.join(&self.dir);
        vec![top.join("new"), top.join("cur")]
    }

    /// Whether this user may add to and remove from the sharable folder (Courier's
    /// `maildir_sharedisro` asks the same of its `cur/`).
    pub(crate) fn writable(&self) -> bool {
        self.cur().is_ok_and(|cur| cur.writable())
    }

    /// The name in the sharable `cur/` of the message the local link `name` in `local`
    /// stands for, read from the link and checked (see the module comment). `Ok(None)`
    /// when `name` is not a link.
    fn linked_name(&self, local: &Dir, name: &str) -> io::Result<Option<String>> {
        let text = match local.read_link(name) {
            Ok(text) => text,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
            Err(e) => return Err(e),
        };
        let prefix = format!("{}/cur/", self.link_text);
        match text
            .to_str()
            .and_then(|t| t.strip_prefix(&prefix))
            .filter(|n| plain_name(n))
        {
            Some(real) => Ok(Some(real.to_string())),
            None => Err(foreign_link(&format!("{prefix}<message>"))),
        }
    }

    /// Whether the local entry `name` in `local` is a link Courier could have made for a
    /// message of this folder (a scan lists no other link, and says so once).
    pub(crate) fn is_message_link(&self, local: &Dir, name: &str) -> bool {
        matches!(self.linked_name(local, name), Ok(Some(_)))
    }

    /// Where the message the local entry `name` in `local` stands for is: the entry itself
    /// when it is a regular file, else the file in the sharable `cur/` its link names,
    /// found by its base name when the sharer has renamed it since (a flag change).
    /// `Ok(None)` when the message is gone. A link that is not Courier's is an error.
    pub(crate) fn resolve(&self, local: &Dir, name: &str) -> Result<Option<Source>, StoreError> {
        let real = match self.linked_name(local, name) {
            Ok(Some(real)) => real,
            Ok(None) => return Ok(Some(Source::Local)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(local.fail(name, e)),
        };
        let cur = self.cur()?;
        match cur.stat(&real) {
            Ok(_) => return Ok(Some(Source::Shared(cur, real))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(cur.fail(&real, e)),
        }
        let base = basename_of(&real);
        let entries = cur.entries().map_err(|e| StoreError::io(cur.path(), e))?;
        for entry in entries {
            if entry.kind != Kind::File {
                continue;
            }
            if let Some(found) = entry.name.to_str()
                && basename_of(found) == base
            {
                let found = found.to_string();
                return Ok(Some(Source::Shared(cur, found)));
            }
        }
        Ok(None)
    }

    /// EXPUNGE of the local entry `name` in `local` (the local `cur/`): the sharable file
    /// is removed, then the local link. When the sharable file cannot be removed (its
    /// folder's sticky bit and someone else's message) it stays, and the local link loses
    /// `\Deleted` instead, as Courier's `maildir_unlinksharedmsg` does; returns whether the
    /// message is gone.
    pub(crate) fn remove(&self, local: &Dir, name: &str) -> Result<bool, StoreError> {
        let source = match self.resolve(local, name) {
            Ok(source) => source,
            // Not Courier's link: only the local entry goes.
            Err(StoreError::Io { error, .. }) if error.kind() == io::ErrorKind::InvalidData => None,
            Err(e) => return Err(e),
        };
        if let Some(Source::Shared(cur, real)) = source
            && let Err(e) = cur.remove_file(&real)
            && e.kind() != io::ErrorKind::NotFound
            && cur.stat(&real).is_ok()
        {
            log::info!(
                "{} kept: {e} (only the owner of a message or of the shared folder may \
                 remove it); its \\Deleted flag is taken off",
                cur.path().join(&real).display()
            );
            if let Some((base, flags)) = name.split_once(":2,")
                && flags.contains('T')
            {
                let kept = format!("{base}:2,{}", flags.replace('T', ""));
                match local.rename(name, local, &kept) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(local.fail(&kept, e)),
                }
            }
            return Ok(false);
        }
        match local.remove_file(name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(local.fail(name, e)),
        }
    }

    /// Brings the local copy up to date with the sharable folder (see the module comment).
    /// `top`, `cur`, `new` and `tmp` are the local copy's.
    pub(crate) fn sync(
        &self,
        top: &Dir,
        cur: &Dir,
        new: &Dir,
        tmp: &Dir,
    ) -> Result<(), StoreError> {
        let shared = match self.dirs() {
            Ok(dirs) => Some(dirs),
            // The sharable folder is gone: so are its messages.
            Err(StoreError::Io { error, .. }) if is_missing(&error) => None,
            Err(e) => return Err(e),
        };
        if let Some(shared) = &shared {
            move_new_to_cur(shared);
            if fresh(top, shared) {
                return Ok(());
            }
            touch_timestamp(top);
        }
        let mut wanted: FastMap<String, String> = FastMap::default();
        if let Some(shared) = &shared {
            let entries = shared
                .cur
                .entries()
                .map_err(|e| StoreError::io(shared.cur.path(), e))?;
            for entry in entries {
                let Ok(name) = entry.name.into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                match entry.kind {
                    Kind::File => {
                        wanted.insert(sync_key(&name).to_string(), name);
                    }
                    Kind::Dir => {}
                    kind => report_skipped(&shared.cur.path().join(&name), kind, "a message file"),
                }
            }
        }
        for local in [cur, new] {
            self.update_local(local, tmp, &mut wanted)?;
        }
        let mut made = false;
        for (key, name) in wanted {
            let target = self.message_link(&name);
            let local_name = format!("{key}:2,");
            place_link(tmp, new, &target, &local_name)?;
            made = true;
        }
        if made {
            new.sync();
        }
        Ok(())
    }

    /// Courier's `update_cur` for one local directory: entries whose message is gone are
    /// removed, links that say something else are made again; what is found is taken out
    /// of `wanted`.
    fn update_local(
        &self,
        local: &Dir,
        tmp: &Dir,
        wanted: &mut FastMap<String, String>,
    ) -> Result<(), StoreError> {
        let entries = local
            .entries()
            .map_err(|e| StoreError::io(local.path(), e))?;
        for entry in entries {
            let Ok(name) = entry.name.into_string() else {
                continue;
            };
            if name.starts_with('.') || entry.kind == Kind::Dir {
                continue;
            }
            let Some(real) = wanted.remove(sync_key(&name)) else {
                remove_quietly(local, &name);
                continue;
            };
            let target = self.message_link(&real);
            let current = match entry.kind {
                Kind::Symlink => local.read_link(&name).ok(),
                _ => None,
            };
            if current.as_deref() == Some(OsStr::new(&target)) {
                continue;
            }
            if entry.kind != Kind::Symlink {
                // Courier's sync removes anything but a link here, and so does this: the
                // message comes back as a link at the next sync.
                remove_quietly(local, &name);
                wanted.insert(sync_key(&name).to_string(), real);
                continue;
            }
            place_link(tmp, local, &target, &name)?;
        }
        Ok(())
    }
}

/// Opens the directory `name` in `dir`, making it first if it is missing.
fn make_level(dir: &Dir, name: &str) -> Result<Dir, StoreError> {
    match dir.mkdir(name, DIR_MODE) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(dir.fail(name, e)),
    }
    dir.open_dir(name).map_err(|e| dir.fail(name, e))
}

fn remove_quietly(dir: &Dir, name: &str) {
    if let Err(e) = dir.remove_file(name)
        && e.kind() != io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", dir.path().join(name).display());
    }
}

/// Makes the link `name` in `into` with `target`, atomically: made under a fresh name in
/// `tmp/`, then renamed over whatever `name` was.
pub(crate) fn place_link(
    tmp: &Dir,
    into: &Dir,
    target: &str,
    name: &str,
) -> Result<(), StoreError> {
    let temp = Stamp::now().tmp_name("newlink");
    tmp.symlink(OsStr::new(target), &temp)
        .map_err(|e| tmp.fail(&temp, e))?;
    if let Err(e) = tmp.rename(&temp, into, name) {
        remove_quietly(tmp, &temp);
        return Err(into.fail(name, e));
    }
    Ok(())
}

/// Courier's `maildir_getnew` on the sharable folder: `new/` into `cur/`, where this user
/// may (errors are the sharable folder's business and ignored).
fn move_new_to_cur(shared: &SharableDirs) {
    let Ok(entries) = shared.new.entries() else {
        return;
    };
    for entry in entries {
        if entry.kind != Kind::File {
            continue;
        }
        let Ok(name) = entry.name.into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let target = if name.contains(':') {
            name.clone()
        } else {
            format!("{name}:2,")
        };
        let _ = shared.new.rename(&name, &shared.cur, &target);
    }
}

fn modified(stat: &nix::sys::stat::FileStat) -> SystemTime {
    let secs = u64::try_from(stat.st_mtime).unwrap_or(0);
    let nanos = u32::try_from(stat.st_mtime_nsec).unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos)
}

/// Whether the local copy's timestamp is newer than every change to the sharable folder's
/// `new/` and `cur/` (then nothing needs syncing).
fn fresh(top: &Dir, shared: &SharableDirs) -> bool {
    let Ok(stamp) = top.stat(TIMESTAMP) else {
        return false;
    };
    if Kind::of(&stamp) != Kind::File {
        return false;
    }
    let stamp = modified(&stamp);
    [&shared.new, &shared.cur]
        .iter()
        .all(|dir| dir.status().is_ok_and(|s| modified(&s) < stamp))
}

/// Writes one byte into `shared-timestamp` (Courier's way of giving it a new mtime).
fn touch_timestamp(top: &Dir) {
    let written = top
        .open_for_writing(TIMESTAMP, TIMESTAMP_MODE)
        .and_then(|mut file| file.write_all(b"\0"));
    if let Err(e) = written {
        log::warn!("{}: {e}", top.path().join(TIMESTAMP).display());
    }
}

// ---------------------------------------------------------------------------
// The store's shared-folder operations
// ---------------------------------------------------------------------------

impl Store {
    fn shared_root(&self) -> Result<Dir, StoreError> {
        Dir::open_root(self.root()).map_err(|e| StoreError::io(self.root(), e))
    }

    /// Whether the maildir has a `shared-maildirs` file (NAMESPACE offers `shared.` then).
    pub fn has_sharable_maildirs(&self) -> bool {
        self.shared_root()
            .is_ok_and(|root| root.stat(SHARED_MAILDIRS).is_ok())
    }

    /// The sharable maildirs `shared-maildirs` names, in file order.
    pub fn sharable_maildirs(&self) -> Result<Vec<SharableMaildir>, StoreError> {
        let root = self.shared_root()?;
        match root.read(SHARED_MAILDIRS) {
            Ok(bytes) => Ok(parse_shared_maildirs(
                &bytes,
                &root.path().join(SHARED_MAILDIRS),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(root.fail(SHARED_MAILDIRS, e)),
        }
    }

    /// Where a sharable maildir is: its path, relative ones from this maildir (Courier
    /// runs in it).
    fn sharable_path(&self, sharable: &SharableMaildir) -> PathBuf {
        self.root().join(&sharable.path)
    }

    /// Every folder of every sharable maildir this user can open, as `name.F` (Courier's
    /// `maildir_list_sharable`). A sharable maildir that cannot be read lists nothing.
    pub fn sharable_folders(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for sharable in self.sharable_maildirs()? {
            let path = self.sharable_path(&sharable);
            let root = match Dir::open_root(&path) {
                Ok(root) => root,
                Err(e) => {
                    log::debug!("sharable maildir {}: {e}", path.display());
                    continue;
                }
            };
            let Ok(entries) = root.entries() else {
                continue;
            };
            for entry in entries {
                let Ok(dir) = entry.name.into_string() else {
                    continue;
                };
                if name_of_dir(&dir).is_none() {
                    continue;
                }
                match entry.kind {
                    Kind::Dir => {}
                    Kind::Symlink => {
                        report_skipped(&path.join(&dir), Kind::Symlink, "a sharable folder");
                        continue;
                    }
                    _ => continue,
                }
                if root.open_dir(&format!("{dir}/cur")).is_ok() {
                    out.push(format!("{}{dir}", sharable.name));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The subscribed shared folders, as `name.F` (Courier's `maildir_list_shared`: the
    /// local copies in `shared-folders/`).
    pub fn subscribed_shared(&self) -> Result<Vec<String>, StoreError> {
        let root = self.shared_root()?;
        let folders = match root.open_dir(SHARED_FOLDERS) {
            Ok(dir) => dir,
            Err(e) if is_missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(root.fail(SHARED_FOLDERS, e)),
        };
        let mut out = Vec::new();
        let entries = folders
            .entries()
            .map_err(|e| StoreError::io(folders.path(), e))?;
        for entry in entries {
            let Ok(sharable) = entry.name.into_string() else {
                continue;
            };
            if sharable.starts_with('.') || entry.kind != Kind::Dir {
                continue;
            }
            let Ok(dir) = folders.open_dir(&sharable) else {
                continue;
            };
            let Ok(inner) = dir.entries() else {
                continue;
            };
            for folder in inner {
                let Ok(name) = folder.name.into_string() else {
                    continue;
                };
                if name.starts_with('.') || folder.kind != Kind::Dir {
                    continue;
                }
                let full = format!("{sharable}.{name}");
                if split_shared(&full).is_ok() {
                    out.push(full);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The sharable maildir of `name.F` and `F`, if `shared-maildirs` names it.
    fn sharable_of(&self, name: &str) -> Result<(SharableMaildir, String), StoreError> {
        let (sharable, folder) = split_shared(name)?;
        let found = self
            .sharable_maildirs()?
            .into_iter()
            .find(|m| m.name == sharable)
            .ok_or_else(|| StoreError::NonExistent(format!("shared.{name}")))?;
        Ok((found, folder.to_string()))
    }

    /// Subscribes to `name.F`: makes its local copy, built in `tmp/` and renamed into
    /// place. `Ok(false)` when it is subscribed already. The sharable folder must exist.
    pub fn subscribe_shared(&self, name: &str) -> Result<bool, StoreError> {
        let (sharable, folder) = self.sharable_of(name)?;
        let sharable_root = Dir::open_root(&self.sharable_path(&sharable))
            .map_err(|e| StoreError::io(&self.sharable_path(&sharable), e))?;
        let sharable_cur = format!(".{folder}/cur");
        match sharable_root.open_dir(&sharable_cur) {
            Ok(_) => {}
            Err(e) if is_missing(&e) => {
                return Err(StoreError::NonExistent(format!("shared.{name}")));
            }
            Err(e) => return Err(sharable_root.fail(&sharable_cur, e)),
        }
        let root = self.shared_root()?;
        let folders = make_level(&root, SHARED_FOLDERS)?;
        let parent = make_level(&folders, &sharable.name)?;
        match parent.stat(&folder) {
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(parent.fail(&folder, e)),
        }
        let tmp = root.open_dir("tmp").map_err(|e| root.fail("tmp", e))?;
        let building = Stamp::now().tmp_name(CREATING_TAG);
        let link = format!("{}/.{folder}", sharable.path);
        let built = tmp
            .mkdir(&building, DIR_MODE)
            .map_err(|e| tmp.fail(&building, e))
            .and_then(|()| {
                let copy = tmp
                    .open_dir(&building)
                    .map_err(|e| tmp.fail(&building, e))?;
                for sub in ["tmp", "cur", "new"] {
                    copy.mkdir(sub, DIR_MODE).map_err(|e| copy.fail(sub, e))?;
                }
                copy.symlink(OsStr::new(&link), SHARED_LINK)
                    .map_err(|e| copy.fail(SHARED_LINK, e))
            });
        let placed = built.and_then(
            |()| match tmp.rename_noreplace(&building, &parent, &folder) {
                Ok(()) => Ok(true),
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists
                        || e.kind() == io::ErrorKind::DirectoryNotEmpty =>
                {
                    Ok(false)
                }
                Err(e) => Err(parent.fail(&folder, e)),
            },
        );
        if !matches!(placed, Ok(true))
            && let Err(e) = tmp.remove_tree(&building)
            && e.kind() != io::ErrorKind::NotFound
        {
            log::warn!(
                "cannot remove {}: {e}",
                tmp.path().join(&building).display()
            );
        }
        if matches!(placed, Ok(true)) {
            parent.sync();
        }
        placed
    }

    /// Unsubscribes from `name.F`: its local copy goes (moved into `tmp/` first, then
    /// removed, links and all, none followed), and `shared-folders/name` with it when it
    /// is left empty. `Ok(false)` when it was not subscribed.
    pub fn unsubscribe_shared(&self, name: &str) -> Result<bool, StoreError> {
        let (sharable, folder) = split_shared(name)?;
        let root = self.shared_root()?;
        let parent_rel = format!("{SHARED_FOLDERS}/{sharable}");
        let parent = match root.open_dir(&parent_rel) {
            Ok(dir) => dir,
            Err(e) if is_missing(&e) => return Ok(false),
            Err(e) => return Err(root.fail(&parent_rel, e)),
        };
        let tmp = root.open_dir("tmp").map_err(|e| root.fail("tmp", e))?;
        let hidden = Stamp::now().tmp_name(DELETING_TAG);
        match parent.rename(folder, &tmp, &hidden) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(parent.fail(folder, e)),
        }
        parent.sync();
        if let Err(e) = tmp.remove_tree(&hidden) {
            log::warn!(
                "cannot remove the unsubscribed {}: {e}",
                tmp.path().join(&hidden).display()
            );
        }
        if let Ok(folders) = root.open_dir(SHARED_FOLDERS) {
            // Fails while other folders of the same sharable maildir are subscribed.
            let _ = folders.remove_dir(sharable);
        }
        Ok(true)
    }

    /// The subscribed shared folder `name.F`, shown to IMAP as `imap_name`: its local copy,
    /// whose messages are links into the sharable folder. Its `shared` link must say what
    /// `shared-maildirs` says today.
    pub fn shared_folder(&self, name: &str, imap_name: &str) -> Result<Folder, StoreError> {
        let (sharable, folder) = self.sharable_of(name)?;
        let rel = local_rel(&sharable.name, &folder);
        let root = self.shared_root()?;
        let local = match root.open_dir(&rel) {
            Ok(dir) => dir,
            Err(e) if is_missing(&e) => return Err(StoreError::NonExistent(imap_name.to_string())),
            Err(e) => return Err(root.fail(&rel, e)),
        };
        for sub in ["cur", "new", "tmp"] {
            match local.open_dir(sub) {
                Ok(_) => {}
                Err(e) if is_missing(&e) => {
                    return Err(StoreError::NonExistent(imap_name.to_string()));
                }
                Err(e) => return Err(local.fail(sub, e)),
            }
        }
        let link_text = format!("{}/.{folder}", sharable.path);
        let found = local.read_link(SHARED_LINK);
        if found.as_deref().ok() != Some(OsStr::new(&link_text)) {
            let why = match found {
                Ok(text) => io::Error::other(format!(
                    "it reads {:?}, but {SHARED_MAILDIRS} says the folder is {link_text:?}; \
                     unsubscribe and subscribe again",
                    String::from_utf8_lossy(text.as_bytes())
                )),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    foreign_link(&format!("the link to {link_text}"))
                }
                Err(e) => e,
            };
            let e = local.fail(SHARED_LINK, why);
            log::warn!("{e}");
            return Err(e);
        }
        let linked = Linked {
            root: self.sharable_path(&sharable),
            dir: format!(".{folder}"),
            link_text,
            cur: OnceLock::new(),
        };
        Ok(Folder::linked(
            imap_name.to_string(),
            self.root().to_path_buf(),
            rel,
            linked,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::flags::InfoFlags;
    use crate::maildir::testutil::TempDir;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn shared_maildirs_as_courier_parses_it() {
        let parsed = parse_shared_maildirs(
            b"firm\t/srv/shared\ntech   /home/g/Maildir-shared # gear\nalone\n\nbad.name /x\n#c /y\nrel sub/dir\n",
            Path::new("shared-maildirs"),
        );
        assert_eq!(
            parsed,
            vec![
                SharableMaildir {
                    name: "firm".into(),
                    path: "/srv/shared".into()
                },
                SharableMaildir {
                    name: "tech".into(),
                    path: "/home/g/Maildir-shared ".into()
                },
                SharableMaildir {
                    name: "rel".into(),
                    path: "sub/dir".into()
                },
            ]
        );
    }

    #[test]
    fn names_are_checked_as_courier_does() {
        assert_eq!(split_shared("firm.golf").unwrap(), ("firm", "golf"));
        assert_eq!(split_shared("firm.golf.sub").unwrap(), ("firm", "golf.sub"));
        for bad in [
            "firm", ".golf", "firm.", "firm..x", "firm.a/b", "fi/rm.x", "firm.x.",
        ] {
            assert!(split_shared(bad).is_err(), "{bad}");
        }
        assert_eq!(sync_key("1.M1P1.h:2,S"), "1.M1P1.h");
        assert_eq!(sync_key("1.M1P1.h"), "1.M1P1.h");
    }

    /// A sharable maildir with folder `.golf` and a user maildir subscribed to it.
    fn setup(tag: &str) -> (TempDir, PathBuf, Store) {
        let dir = TempDir::new(tag);
        let sharable = dir.path().join("sharable");
        let golf = sharable.join(".golf");
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(sharable.join(sub)).unwrap();
            fs::create_dir_all(golf.join(sub)).unwrap();
        }
        let store = Store::create(&dir.path().join("Maildir")).unwrap();
        fs::write(
            store.root().join(SHARED_MAILDIRS),
            format!("firm\t{}\n", sharable.display()),
        )
        .unwrap();
        (dir, golf, store)
    }

    #[test]
    fn subscribe_sync_read_expunge_unsubscribe() {
        let (_dir, golf, store) = setup("sharable");
        fs::write(golf.join("new/1000000001.M1P1.h"), b"one\n").unwrap();
        fs::write(golf.join("cur/1000000002.M1P1.h:2,S"), b"two\n").unwrap();
        assert_eq!(store.sharable_folders().unwrap(), vec!["firm.golf"]);
        assert!(store.subscribed_shared().unwrap().is_empty());
        assert!(matches!(
            store.shared_folder("firm.golf", "shared.firm.golf"),
            Err(StoreError::NonExistent(_))
        ));
        assert!(store.subscribe_shared("firm.golf").unwrap());
        assert!(!store.subscribe_shared("firm.golf").unwrap());
        assert!(matches!(
            store.subscribe_shared("firm.nope"),
            Err(StoreError::NonExistent(_))
        ));
        assert!(matches!(
            store.subscribe_shared("other.golf"),
            Err(StoreError::NonExistent(_))
        ));
        let local = store.root().join("shared-folders/firm/golf");
        assert_eq!(fs::read_link(local.join("shared")).unwrap(), golf);
        assert_eq!(store.subscribed_shared().unwrap(), vec!["firm.golf"]);

        let folder = store
            .shared_folder("firm.golf", "shared.firm.golf")
            .unwrap();
        assert_eq!(folder.name(), "shared.firm.golf");
        let scan = folder.scan().unwrap();
        assert_eq!(scan.messages.len(), 2);
        assert!(scan.messages.iter().all(|m| m.recent));
        // The sharable new/ went to cur/; the local copy holds links named without flags.
        assert!(golf.join("cur/1000000001.M1P1.h:2,").exists());
        let link = fs::read_link(local.join("cur/1000000002.M1P1.h:2,")).unwrap();
        assert_eq!(link, golf.join("cur/1000000002.M1P1.h:2,S"));
        let mut file = folder
            .open_message(&scan.messages[1].filename)
            .unwrap()
            .unwrap()
            .file;
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!(text, "two\n");
        // Flags are private: the local link is renamed, the sharable file is not.
        let renamed = folder
            .set_flags(&scan.messages[0].filename, &InfoFlags(b"FT".to_vec()))
            .unwrap()
            .unwrap();
        assert!(golf.join("cur/1000000001.M1P1.h:2,").exists());
        // The sharer renames a message: the link follows at the next sync.
        fs::rename(
            golf.join("cur/1000000002.M1P1.h:2,S"),
            golf.join("cur/1000000002.M1P1.h:2,RS"),
        )
        .unwrap();
        let scan = folder.scan().unwrap();
        let link = fs::read_link(local.join("cur/1000000002.M1P1.h:2,")).unwrap();
        assert_eq!(link, golf.join("cur/1000000002.M1P1.h:2,RS"));
        assert_eq!(scan.messages.len(), 2);
        // EXPUNGE removes the sharable file and the link.
        assert!(folder.expunge(&renamed).unwrap());
        assert!(!golf.join("cur/1000000001.M1P1.h:2,").exists());
        assert_eq!(folder.scan().unwrap().messages.len(), 1);
        // The sharer removes one: it leaves the local copy at the next sync.
        fs::remove_file(golf.join("cur/1000000002.M1P1.h:2,RS")).unwrap();
        assert_eq!(folder.scan().unwrap().messages.len(), 0);
        assert!(store.unsubscribe_shared("firm.golf").unwrap());
        assert!(!store.unsubscribe_shared("firm.golf").unwrap());
        assert!(!store.root().join("shared-folders/firm").exists());
        assert!(golf.exists());
    }

    #[test]
    fn delivery_goes_into_the_sharable_folder() {
        let (_dir, golf, store) = setup("sharable-deliver");
        store.subscribe_shared("firm.golf").unwrap();
        let folder = store
            .shared_folder("firm.golf", "shared.firm.golf")
            .unwrap();
        let first = folder.scan().unwrap();
        let (uidv, uid) = folder
            .deliver(
                b"appended\n",
                &InfoFlags(b"F".to_vec()),
                &["Work".into()],
                None,
            )
            .unwrap();
        assert_eq!((uidv, uid), (first.uidvalidity, first.uidnext));
        let shared: Vec<String> = fs::read_dir(golf.join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(shared.len(), 1);
        assert!(shared[0].ends_with(":2,F"), "{shared:?}");
        let scan = folder.scan().unwrap();
        assert_eq!(scan.messages.len(), 1);
        assert_eq!(scan.messages[0].uid, uid);
        assert!(scan.messages[0].flags.has(b'F'));
        assert_eq!(scan.messages[0].keywords, vec!["Work"]);
    }

    #[test]
    fn only_courier_s_links_are_read() {
        let (dir, golf, store) = setup("sharable-links");
        fs::write(golf.join("cur/1000000001.M1P1.h:2,"), b"one\n").unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, b"secret\n").unwrap();
        store.subscribe_shared("firm.golf").unwrap();
        let folder = store
            .shared_folder("firm.golf", "shared.firm.golf")
            .unwrap();
        folder.scan().unwrap();
        let local = store.root().join("shared-folders/firm/golf");
        // A link planted in the local copy is no message, and is never read; the next sync
        // that runs removes it.
        let planted = local.join("cur/1000000009.M1P1.h:2,");
        symlink(&secret, &planted).unwrap();
        let scan = folder.scan().unwrap();
        assert_eq!(scan.messages.len(), 1);
        let e = folder.open_message("1000000009.M1P1.h:2,").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        fs::write(golf.join("cur/1000000002.M1P1.h:2,"), b"two\n").unwrap();
        let scan = folder.scan().unwrap();
        assert_eq!(scan.messages.len(), 2);
        assert!(fs::symlink_metadata(&planted).is_err());
        // A link that names the sharable folder's message the way Courier does is read;
        // one that reaches out of its cur/ is not.
        let out = local.join("cur/1000000002.M1P1.h:2,");
        fs::remove_file(&out).unwrap();
        symlink(format!("{}/cur/../../../secret", golf.display()), &out).unwrap();
        assert!(folder.open_message("1000000002.M1P1.h:2,").is_err());
        assert_eq!(fs::read(&secret).unwrap(), b"secret\n");
        // The `shared` link must say what shared-maildirs says.
        fs::remove_file(local.join("shared")).unwrap();
        symlink(dir.path().join("elsewhere/.golf"), local.join("shared")).unwrap();
        assert!(matches!(
            store.shared_folder("firm.golf", "shared.firm.golf"),
            Err(StoreError::Io { .. })
        ));
        // Without a line in shared-maildirs the folder is gone.
        fs::write(store.root().join(SHARED_MAILDIRS), b"").unwrap();
        assert!(matches!(
            store.shared_folder("firm.golf", "shared.firm.golf"),
            Err(StoreError::NonExistent(_))
        ));
    }
}
