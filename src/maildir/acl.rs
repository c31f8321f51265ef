//! Access control lists in Courier-IMAP's files (spec/courier-files.md §4): `courierimapacl`
//! in each folder directory (INBOX: the maildir root) and `courierimaphieracl/<path>` in the
//! root for hierarchy levels that have no directory of their own (`Work` while only
//! `.Work.Reports` exists). Both hold lines `<identifier> <rights>\n`.
//!
//! Owns reading, checking and writing those files the way Courier-IMAP 5.0 (Debian 12) does,
//! so that either server reads what the other wrote and grants the same rights:
//!
//! - Rights are any bytes above the space, kept sorted and without repeats. Courier stores
//!   `c` for "create subfolders" and `x t e` for RFC 4314's delete rights; an incoming `d`
//!   stands for `x t e` and `x t e` together are shown as `d`.
//! - A line whose identifier or rights hold a blank or a control byte is ignored, as is a
//!   line with an empty identifier; a later line for the same identifier replaces the
//!   rights of the earlier one in its place.
//! - On reading, `administrators` (or `group=administrators` when present) is given every
//!   right, and `-administrators` / `-group=administrators` entries are dropped.
//! - INBOX without a file has `owner` and `administrators` with every right. Any other
//!   folder without a file (in its directory or in `courierimaphieracl/`) inherits its
//!   parent's list, and that list is written as the folder's own at once, so a later change
//!   of the parent does not change it.
//! - Rights are ACL2=UNION: the union of the rights of every entry naming the user, minus
//!   the union of the negative (`-identifier`) entries naming them. `anyone` and
//!   `anonymous` name everybody; `owner` names the owner of the maildir, who also always
//!   gets `a`; `administrators` and `group=administrators` name the same group.
//! - A list is written only if `owner` keeps `l` and `a` and `administrators` keeps every
//!   right; the file is made in the folder's `tmp/` (the root's for `courierimaphieracl/`)
//!   and renamed into place.
//!
//! Must not know IMAP commands or identifiers as clients spell them (`user=` is the
//! session's business), and must not follow a symbolic link below the root (`beneath`).

use std::io;

use super::beneath::Dir;
use super::error::StoreError;
use super::lock::DotLock;
use super::names::{canonical_name, dir_of, name_of_dir};
use super::store::Store;
use super::unique::{Sync, replace_file_syncing};

/// A folder's list, in its directory (INBOX: the root).
pub const ACL_FILE: &str = "courierimapacl";
/// Lists of hierarchy levels without a directory, in the root: `<path without the dot>`.
pub const HIERARCHY_DIR: &str = "courierimaphieracl";
/// Every right Courier knows, as it writes "all": administer, create, expunge, insert,
/// lookup, read, seen, delete messages (`t`), write, delete folder (`x`).
pub const ALL_RIGHTS: &[u8] = b"aceilrstwx";

/// Mode of `courierimaphieracl/`, as Courier makes it (before the umask).
const HIERARCHY_DIR_MODE: u32 = 0o755;
/// The tag of temporary ACL files in `tmp/` (Courier's `…_acl.<host>`).
const TMP_TAG: &str = "acl";

/// The rights letters the store itself relies on.
pub mod right {
    pub const ADMINISTER: u8 = b'a';
    /// Courier's create-subfolder right (RFC 2086 `c`; RFC 4314 calls it `k`).
    pub const CREATE: u8 = b'c';
    pub const EXPUNGE: u8 = b'e';
    pub const INSERT: u8 = b'i';
    pub const LOOKUP: u8 = b'l';
    pub const POST: u8 = b'p';
    pub const READ: u8 = b'r';
    pub const SEEN: u8 = b's';
    pub const DELETE_MESSAGES: u8 = b't';
    pub const WRITE: u8 = b'w';
    pub const DELETE_FOLDER: u8 = b'x';
    /// RFC 2086's delete right: `x t e` together.
    pub const DELETE: u8 = b'd';
}

/// A set of rights: bytes above the space, sorted, each once (Courier's `aclt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights(Vec<u8>);

impl Rights {
    /// The rights named by `letters`, or `None` when a letter is a blank or a control
    /// byte (Courier refuses those, in files and from clients alike).
    pub fn parse(letters: &[u8]) -> Option<Rights> {
        if letters.iter().any(|&b| b <= b' ') {
            return None;
        }
        let mut v = letters.to_vec();
        v.sort_unstable();
        v.dedup();
        Some(Rights(v))
    }

    /// Every right.
    pub fn all() -> Rights {
        Rights(ALL_RIGHTS.to_vec())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has(&self, right: u8) -> bool {
        self.0.contains(&right)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Adds every right of `other`.
    pub fn add(&mut self, other: &Rights) {
        self.0.extend_from_slice(&other.0);
        self.0.sort_unstable();
        self.0.dedup();
    }

    /// Takes away every right of `other`.
    pub fn remove(&mut self, other: &Rights) {
        self.0.retain(|b| !other.0.contains(b));
    }

    /// The rights of `self` that are among `wanted`.
    pub fn among(&self, wanted: &[u8]) -> Rights {
        Rights(
            self.0
                .iter()
                .copied()
                .filter(|b| wanted.contains(b))
                .collect(),
        )
    }

    /// Rights as a client sends them in SETACL: Courier replaces `d` (RFC 2086's delete)
    /// by `x t e` and keeps every other letter as it is (`k` included, which Courier
    /// stores but never checks: it checks `c`). `None` for a blank or control byte.
    pub fn from_client(letters: &[u8]) -> Option<Rights> {
        if !letters.contains(&right::DELETE) {
            return Rights::parse(letters);
        }
        let mut expanded: Vec<u8> = letters
            .iter()
            .copied()
            .filter(|&b| b != right::DELETE)
            .collect();
        expanded.extend_from_slice(&[right::DELETE_FOLDER, right::DELETE_MESSAGES, right::EXPUNGE]);
        Rights::parse(&expanded)
    }

    /// The rights as GETACL and MYRIGHTS show them: `x t e` together become `d`, and any of
    /// them alone is left out (Courier answers in RFC 2086's letters only).
    pub fn folded(&self) -> Vec<u8> {
        self.fold(true)
    }

    /// The rights as the `[MYRIGHTS]` response code on SELECT shows them: `x t e` together
    /// become `d`, otherwise every letter is shown as it is.
    pub fn folded_if_complete(&self) -> Vec<u8> {
        self.fold(false)
    }

    fn fold(&self, hide_partial: bool) -> Vec<u8> {
        let deletes = [right::EXPUNGE, right::DELETE_MESSAGES, right::DELETE_FOLDER];
        let complete = deletes.iter().all(|&b| self.has(b));
        if !complete && !hide_partial {
            return self.0.clone();
        }
        let mut out = Vec::with_capacity(self.0.len());
        let mut folded = false;
        for &b in &self.0 {
            if !deletes.contains(&b) {
                out.push(b);
            } else if complete && !folded && b == right::EXPUNGE {
                // `e` is the first of the three in sorted order and `d` sorts just before
                // it: the letters stay sorted.
                out.push(right::DELETE);
                folded = true;
            }
        }
        out
    }
}

/// One line of a list: who, and their rights (`-who` for rights taken away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub identifier: Vec<u8>,
    pub rights: Rights,
}

/// A folder's access control list, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    entries: Vec<AclEntry>,
}

/// Why a list may not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclRefusal {
    /// This identifier (`owner`, or the owner's `user=` name) would lose `l` or `a`.
    OwnerLockedOut(Vec<u8>),
    /// `administrators` would lose one of their rights.
    AdministratorsRestricted,
}

impl std::fmt::Display for AclRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AclRefusal::OwnerLockedOut(who) => write!(
                f,
                "{} must keep the l and a rights",
                String::from_utf8_lossy(who)
            ),
            AclRefusal::AdministratorsRestricted => {
                f.write_str("administrators must keep every right")
            }
        }
    }
}

/// Why an ACL could not be changed.
#[derive(Debug)]
pub enum AclUpdateError {
    /// The new list breaks one of Courier's rules; nothing was written.
    Refused(AclRefusal),
    Store(StoreError),
}

impl From<StoreError> for AclUpdateError {
    fn from(e: StoreError) -> AclUpdateError {
        AclUpdateError::Store(e)
    }
}

fn valid_identifier(identifier: &[u8]) -> bool {
    !identifier.is_empty() && identifier.iter().all(|&b| b > b' ')
}

fn is_anyone(identifier: &[u8]) -> bool {
    identifier == b"anyone" || identifier == b"anonymous"
}

impl Acl {
    /// A list as it is in a file, without Courier's additions (see `read_file`).
    pub fn parse(bytes: &[u8]) -> Acl {
        let mut acl = Acl::default();
        let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if text.is_empty() {
            return acl;
        }
        for line in text.split(|&b| b == b'\n') {
            let (identifier, rights) = match line.iter().position(|&b| b == b' ') {
                Some(i) => {
                    let rest = &line[i + 1..];
                    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
                    (&line[..i], &rest[start..])
                }
                None => (line, &line[line.len()..]),
            };
            // Courier sweeps invalid lines under the carpet; so does this.
            if let Some(rights) = Rights::parse(rights) {
                acl.set(identifier, rights);
            }
        }
        acl
    }

    /// The file contents: `<identifier> <rights>\n` per entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            out.extend_from_slice(&e.identifier);
            out.push(b' ');
            out.extend_from_slice(e.rights.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// INBOX's list when it has no file: the owner and administrators with every right.
    pub fn inbox_default() -> Acl {
        let mut acl = Acl::default();
        acl.set(b"owner", Rights::all());
        acl.with_administrators()
    }

    /// The list of every folder when the account has Courier's `disableshared` option:
    /// no file is read, the owner may do everything but administer, nobody else anything.
    pub fn without_files() -> Acl {
        let mut acl = Acl::default();
        let mut owner = Rights::all();
        owner.remove(&Rights(vec![right::ADMINISTER]));
        acl.set(b"owner", owner);
        acl.with_administrators()
    }

    pub fn entries(&self) -> &[AclEntry] {
        &self.entries
    }

    pub fn get(&self, identifier: &[u8]) -> Option<&Rights> {
        self.entries
            .iter()
            .find(|e| e.identifier == identifier)
            .map(|e| &e.rights)
    }

    /// Sets the rights of `identifier`, in place if it has an entry, else at the end.
    /// Identifiers with a blank or control byte, or empty, are ignored (Courier's rule).
    pub fn set(&mut self, identifier: &[u8], rights: Rights) {
        if !valid_identifier(identifier) {
            return;
        }
        match self.entries.iter_mut().find(|e| e.identifier == identifier) {
            Some(e) => e.rights = rights,
            None => self.entries.push(AclEntry {
                identifier: identifier.to_vec(),
                rights,
            }),
        }
    }

    /// Removes the entry of `identifier`, if any.
    pub fn remove(&mut self, identifier: &[u8]) {
        self.entries.retain(|e| e.identifier != identifier);
    }

    /// Courier's additions on reading: `administrators` (or `group=administrators`, when
    /// the list has it) gets every right, and negative entries for them are dropped.
    fn with_administrators(mut self) -> Acl {
        let group = b"group=administrators".as_slice();
        let name = if self.get(group).is_some() {
            group
        } else {
            b"administrators".as_slice()
        };
        let mut rights = Rights::all();
        if let Some(old) = self.get(name) {
            rights.add(old);
        }
        self.set(name, rights);
        self.remove(b"-administrators");
        self.remove(b"-group=administrators");
        self
    }

    /// ACL2=UNION: the rights of the entries naming someone, minus those of the negative
    /// entries naming them. `names(identifier)` says whether an identifier names them
    /// (`anyone` and `anonymous` always do; `administrators` and `group=administrators`
    /// stand for each other). With `owner_administers`, someone named by `owner` also gets
    /// `a`, whatever the list says.
    fn compute(&self, names: &dyn Fn(&[u8]) -> bool, owner_administers: bool) -> Rights {
        let is = |identifier: &[u8]| -> bool {
            if is_anyone(identifier) {
                return true;
            }
            if identifier == b"administrators" || identifier == b"group=administrators" {
                return names(b"administrators") || names(b"group=administrators");
            }
            names(identifier)
        };
        let mut rights = Rights::default();
        for e in &self.entries {
            if !e.identifier.starts_with(b"-") && is(&e.identifier) {
                rights.add(&e.rights);
            }
        }
        for e in &self.entries {
            if let Some(negated) = e.identifier.strip_prefix(b"-")
                && is(negated)
            {
                rights.remove(&e.rights);
            }
        }
        if owner_administers && names(b"owner") {
            rights.add(&Rights(vec![right::ADMINISTER]));
        }
        rights
    }

    /// What `who` may do in a folder of the maildir whose owner is `folder_owner`
    /// (`user=<login>`). `owner_administers` is false when the account has ACL files
    /// switched off (`disableshared`).
    pub fn rights_of(
        &self,
        who: &Accessor,
        folder_owner: &[u8],
        owner_administers: bool,
    ) -> Rights {
        let me = who.user_identifier();
        let owns = me == folder_owner;
        let names = |identifier: &[u8]| -> bool {
            (owns && identifier == b"owner")
                || identifier == me.as_slice()
                || who.groups.iter().any(|g| g.as_slice() == identifier)
        };
        self.compute(&names, owner_administers)
    }

    /// Courier's rules for a list about to be written: `owner` (and `owner_identifier`, the
    /// owner's `user=` name, when given) must keep `l` and `a`; `administrators` must keep
    /// every right.
    pub fn check(&self, owner_identifier: Option<&[u8]>) -> Result<(), AclRefusal> {
        let keeps_control = |r: &Rights| r.has(right::LOOKUP) && r.has(right::ADMINISTER);
        let owner = self.compute(&|id: &[u8]| id == b"owner", false);
        if !keeps_control(&owner) {
            return Err(AclRefusal::OwnerLockedOut(b"owner".to_vec()));
        }
        if let Some(me) = owner_identifier {
            let both = self.compute(&|id: &[u8]| id == b"owner" || id == me, false);
            if !keeps_control(&both) {
                return Err(AclRefusal::OwnerLockedOut(me.to_vec()));
            }
        }
        let admins = self.compute(&|id: &[u8]| id == b"administrators", true);
        if !ALL_RIGHTS.iter().all(|&b| admins.has(b)) {
            return Err(AclRefusal::AdministratorsRestricted);
        }
        Ok(())
    }
}

/// Who is asking: their login name (Courier's AUTHENTICATED) and the groups their account
/// options name (`group=<name>`, Courier's OPTIONS). Courier takes groups from the account
/// options alone, for system and virtual accounts alike, and so does mdimap: the system
/// group database is not consulted, so both servers grant the same rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor {
    login: String,
    /// `group=<name>` identifiers.
    groups: Vec<Vec<u8>>,
}

impl Accessor {
    /// `options` are the account options as (key, value): each `group=<name>` adds a group.
    pub fn new(login: &str, options: &[(String, String)]) -> Accessor {
        let groups = options
            .iter()
            .filter(|(k, v)| k == "group" && !v.is_empty())
            .map(|(_, v)| format!("group={v}").into_bytes())
            .collect();
        Accessor {
            login: login.to_string(),
            groups,
        }
    }

    pub fn login(&self) -> &str {
        &self.login
    }

    /// `user=<login>`: how lists name this user, and the owner of their own maildir.
    pub fn user_identifier(&self) -> Vec<u8> {
        format!("user={}", self.login).into_bytes()
    }
}

// ---------------------------------------------------------------------------
// The files
// ---------------------------------------------------------------------------

fn missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// `Work.Reports` for `.Work.Reports`: the name in `courierimaphieracl/`.
fn hierarchy_name(dir: &str) -> &str {
    dir.strip_prefix('.').unwrap_or(dir)
}

/// `.A` for `.A.B`; `None` (INBOX) for `.A`.
fn parent_dir(dir: &str) -> Option<&str> {
    match dir.rfind('.') {
        Some(0) | None => None,
        Some(i) => Some(&dir[..i]),
    }
}

/// The list stored for the folder at `dir` (`None`: INBOX), with Courier's additions; INBOX
/// without a file gets the default; `Ok(None)` when another folder has no file.
fn read_file(root: &Dir, dir: Option<&str>) -> Result<Option<Acl>, StoreError> {
    let Some(dir) = dir else {
        return match root.read(ACL_FILE) {
            Ok(bytes) => Ok(Some(Acl::parse(&bytes).with_administrators())),
            Err(e) if missing(&e) => Ok(Some(Acl::inbox_default())),
            Err(e) => Err(root.fail(ACL_FILE, e)),
        };
    };
    let own = format!("{dir}/{ACL_FILE}");
    let bytes = match root.read(&own) {
        Ok(bytes) => bytes,
        Err(e) if missing(&e) => {
            let hier = format!("{HIERARCHY_DIR}/{}", hierarchy_name(dir));
            match root.read(&hier) {
                Ok(bytes) => bytes,
                Err(e) if missing(&e) => return Ok(None),
                Err(e) => return Err(root.fail(&hier, e)),
            }
        }
        Err(e) => return Err(root.fail(&own, e)),
    };
    Ok(Some(Acl::parse(&bytes).with_administrators()))
}

/// The list of the folder at `dir` as Courier reads it: its own file, or its parent's list
/// (recursively), which is then written as its own.
fn read(root: &Dir, dir: Option<&str>) -> Result<Acl, StoreError> {
    if let Some(acl) = read_file(root, dir)? {
        return Ok(acl);
    }
    let Some(dir) = dir else {
        return Ok(Acl::inbox_default());
    };
    let acl = read(root, parent_dir(dir))?;
    match write(root, Some(dir), &acl, None, Sync::Contents) {
        Ok(()) => Ok(acl),
        // Courier refuses to read a folder whose inherited list is not valid.
        Err(AclUpdateError::Refused(why)) => Err(StoreError::Cannot(format!(
            "the access control list {dir} inherits is not valid: {why}"
        ))),
        // The rights are those of the list either way; only keeping them failed.
        Err(AclUpdateError::Store(e)) => {
            log::warn!("cannot save the inherited access control list of {dir}: {e}");
            Ok(acl)
        }
    }
}

/// Writes `acl` as the list of the folder at `dir`: into its directory when it has one
/// (with `tmp/`), else into `courierimaphieracl/`. A list a client set (SETACL,
/// DELETEACL) or kept for a deleted folder is synced whole (`Sync::Full`); one a folder
/// inherits, written on first use as Courier does, is made again the same if a crash
/// loses it, so its directory is not synced (`Sync::Contents`).
fn write(
    root: &Dir,
    dir: Option<&str>,
    acl: &Acl,
    owner_identifier: Option<&[u8]>,
    sync: Sync,
) -> Result<(), AclUpdateError> {
    acl.check(owner_identifier)
        .map_err(AclUpdateError::Refused)?;
    let contents = acl.to_bytes();
    let replace = |tmp: &Dir, dir: &Dir, name: &str| {
        replace_file_syncing(tmp, dir, name, TMP_TAG, &contents, sync)
    };
    let Some(dir) = dir else {
        let tmp = root.open_dir("tmp").map_err(|e| root.fail("tmp", e))?;
        return Ok(replace(&tmp, root, ACL_FILE)?);
    };
    match root.open_dir(dir) {
        Ok(folder) => match folder.open_dir("tmp") {
            Ok(tmp) => return Ok(replace(&tmp, &folder, ACL_FILE)?),
            // A directory that is no maildir: a hierarchy level all the same.
            Err(e) if missing(&e) => {}
            Err(e) => return Err(folder.fail("tmp", e).into()),
        },
        Err(e) if missing(&e) => {}
        Err(e) => return Err(root.fail(dir, e).into()),
    }
    let tmp = root.open_dir("tmp").map_err(|e| root.fail("tmp", e))?;
    let hier = open_hierarchy_dir(root)?;
    Ok(replace(&tmp, &hier, hierarchy_name(dir))?)
}

fn open_hierarchy_dir(root: &Dir) -> Result<Dir, StoreError> {
    match root.mkdir(HIERARCHY_DIR, HIERARCHY_DIR_MODE) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(root.fail(HIERARCHY_DIR, e)),
    }
    root.open_dir(HIERARCHY_DIR)
        .map_err(|e| root.fail(HIERARCHY_DIR, e))
}

/// After folders moved from `from` to `to` (`.A` → `.B`): the hierarchy lists follow them
/// (`A` → `B`, `A.x` → `B.x`), as Courier's rename does. Best effort: the folders have
/// moved already, and a list left behind only means the level inherits again.
pub(crate) fn rename_hierarchy(root: &Dir, from: &str, to: &str) {
    let hier = match root.open_dir(HIERARCHY_DIR) {
        Ok(hier) => hier,
        Err(e) if missing(&e) => return,
        Err(e) => {
            log::warn!("{}", root.fail(HIERARCHY_DIR, e));
            return;
        }
    };
    let (from, to) = (hierarchy_name(from), hierarchy_name(to));
    let entries = match hier.entries() {
        Ok(entries) => entries,
        Err(e) => {
            log::warn!("cannot list {}: {e}", hier.path().display());
            return;
        }
    };
    for entry in entries {
        let Ok(name) = entry.name.into_string() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(from) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with('.')) {
            continue;
        }
        let target = format!("{to}{rest}");
        if let Err(e) = hier.rename(&name, &hier, &target) {
            log::warn!(
                "cannot move {} to {target}: {e}",
                hier.path().join(&name).display()
            );
        }
    }
    hier.sync();
}

// ---------------------------------------------------------------------------
// The store's ACL operations
// ---------------------------------------------------------------------------

/// The directory of a folder name (`None` for INBOX), validated.
fn folder_dir(name: &str) -> Result<Option<String>, StoreError> {
    let canonical = canonical_name(name)?;
    Ok(dir_of(&canonical).map(str::to_string))
}

impl Store {
    fn acl_root(&self) -> Result<Dir, StoreError> {
        Dir::open_root(self.root()).map_err(|e| StoreError::io(self.root(), e))
    }

    /// The access control list of folder `name` as Courier reads it. A folder without a
    /// list of its own inherits its parent's, which is written as its own (in its
    /// directory, or for a hierarchy level without one in `courierimaphieracl/`).
    pub fn acl(&self, name: &str) -> Result<Acl, StoreError> {
        let dir = folder_dir(name)?;
        read(&self.acl_root()?, dir.as_deref())
    }

    /// Changes the list of folder `name` under the root's dot-lock (as Courier does):
    /// reads it, applies `change`, checks Courier's rules (`owner_identifier`, the owner's
    /// `user=` name, must keep `l` and `a` too) and writes it.
    pub fn update_acl(
        &self,
        name: &str,
        owner_identifier: &[u8],
        change: impl FnOnce(&mut Acl),
    ) -> Result<(), AclUpdateError> {
        let dir = folder_dir(name)?;
        let root = self.acl_root()?;
        let tmp = root.open_dir("tmp").map_err(|e| root.fail("tmp", e))?;
        let _lock = DotLock::acquire(&tmp)?;
        let mut acl = read(&root, dir.as_deref())?;
        change(&mut acl);
        write(
            &root,
            dir.as_deref(),
            &acl,
            Some(owner_identifier),
            Sync::Full,
        )
    }

    /// Gives a folder just created its list: the one its hierarchy level had in
    /// `courierimaphieracl/` (moved into the folder), else its parent's (inherited and
    /// written). Courier's CREATE ends the same way.
    pub fn settle_acl(&self, name: &str) -> Result<(), StoreError> {
        let Some(dir) = folder_dir(name)? else {
            return Ok(());
        };
        let root = self.acl_root()?;
        let hier_name = hierarchy_name(&dir);
        match root.open_dir(HIERARCHY_DIR) {
            Ok(hier) => {
                let folder = root.open_dir(&dir).map_err(|e| root.fail(&dir, e))?;
                match hier.rename(hier_name, &folder, ACL_FILE) {
                    Ok(()) => {
                        folder.sync();
                        hier.sync();
                        return Ok(());
                    }
                    Err(e) if missing(&e) => {}
                    Err(e) => return Err(hier.fail(hier_name, e)),
                }
            }
            Err(e) if missing(&e) => {}
            Err(e) => return Err(root.fail(HIERARCHY_DIR, e)),
        }
        read(&root, Some(&dir)).map(drop)
    }

    /// After DELETE of folder `name`, whose list was `acl`: when folders remain below it,
    /// its hierarchy level keeps the list in `courierimaphieracl/`, as with Courier.
    pub fn keep_deleted_acl(&self, name: &str, acl: &Acl) -> Result<(), StoreError> {
        let Some(dir) = folder_dir(name)? else {
            return Ok(());
        };
        let prefix = format!("{dir}.");
        let root = self.acl_root()?;
        let below = root
            .entries()
            .map_err(|e| root.fail(".", e))?
            .into_iter()
            .filter_map(|e| e.name.into_string().ok())
            .any(|n| n.starts_with(&prefix) && name_of_dir(&n).is_some());
        if !below {
            return Ok(());
        }
        match write(&root, Some(&dir), acl, None, Sync::Full) {
            Ok(()) => Ok(()),
            Err(AclUpdateError::Store(e)) => Err(e),
            Err(AclUpdateError::Refused(why)) => {
                log::warn!("not keeping the access control list of deleted {name}: {why}");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;
    use std::fs;

    fn rights(s: &str) -> Rights {
        Rights::parse(s.as_bytes()).unwrap()
    }

    fn me() -> Accessor {
        Accessor::new("root", &[])
    }

    fn mine(acl: &Acl) -> String {
        let r = acl.rights_of(&me(), b"user=root", true);
        String::from_utf8(r.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn rights_are_sorted_sets_of_visible_bytes() {
        assert_eq!(rights("wrlla").as_bytes(), b"alrw");
        assert_eq!(Rights::parse(b"l r"), None);
        assert_eq!(Rights::parse(b"lr\r"), None);
        assert_eq!(Rights::parse(b"").unwrap(), Rights::default());
        let mut r = rights("lr");
        r.add(&rights("rsw"));
        assert_eq!(r.as_bytes(), b"lrsw");
        r.remove(&rights("lx"));
        assert_eq!(r.as_bytes(), b"rsw");
        assert_eq!(r.among(b"sx").as_bytes(), b"s");
    }

    /// Courier's letters on the way in (SETACL) and out (GETACL, MYRIGHTS, SELECT), as the
    /// real imapd 5.0.13 answered them.
    #[test]
    fn courier_letter_folding() {
        assert_eq!(Rights::from_client(b"lrd").unwrap().as_bytes(), b"elrtx");
        assert_eq!(Rights::from_client(b"lrk").unwrap().as_bytes(), b"klr");
        assert_eq!(Rights::from_client(b"qz").unwrap().as_bytes(), b"qz");
        assert_eq!(Rights::from_client(b"l d"), None);
        // The owner's "aceilrstwx" is shown as "acdilrsw".
        assert_eq!(Rights::all().folded(), b"acdilrsw");
        assert_eq!(Rights::all().folded_if_complete(), b"acdilrsw");
        // Part of x t e: hidden by GETACL/MYRIGHTS, shown by [MYRIGHTS] on SELECT.
        assert_eq!(rights("alrt").folded(), b"alr");
        assert_eq!(rights("alrt").folded_if_complete(), b"alrt");
        assert_eq!(rights("aelrwx").folded(), b"alrw");
        assert_eq!(rights("aelrtwx").folded_if_complete(), b"adlrw");
        assert_eq!(rights("eklrtx").folded(), b"dklr");
    }

    /// A file Courier's imapd read (spec example plus the lines it ignores), and the list
    /// it then wrote back after `SETACL INBOX.X anyone +l`.
    #[test]
    fn parsing_follows_courier() {
        let file = b"owner aceilrstwx\n-administrators lr\nuser=bob   l  r \nbad\r lr\n\
                     user=carol lr\r\n\ngroup=staff a b\nnospace\n";
        let mut acl = Acl::parse(file).with_administrators();
        acl.set(b"anyone", rights("l"));
        assert_eq!(
            acl.to_bytes(),
            b"owner aceilrstwx\nnospace \nadministrators aceilrstwx\nanyone l\n"
        );
        // Extra blanks between the fields are skipped; a repeated identifier replaces.
        let acl = Acl::parse(b"user=a   lr\nuser=b w\nuser=a x\n");
        assert_eq!(acl.to_bytes(), b"user=a x\nuser=b w\n");
        assert_eq!(Acl::parse(b""), Acl::default());
        // group=administrators, when present, is the one given every right.
        let acl = Acl::parse(b"owner lra\ngroup=administrators l\nadministrators r\n")
            .with_administrators();
        assert_eq!(
            acl.to_bytes(),
            b"owner alr\ngroup=administrators aceilrstwx\nadministrators r\n"
        );
        assert_eq!(
            Acl::inbox_default().to_bytes(),
            b"owner aceilrstwx\nadministrators aceilrstwx\n"
        );
    }

    #[test]
    fn union_minus_negatives_and_the_owner_always_administers() {
        // The list SETACL left in Courier's test: `owner aelrtwx`, `user=root lr`,
        // `-owner t`; imapd said [MYRIGHTS "aelrwx"].
        let acl = Acl::parse(b"owner aelrtwx\nadministrators aceilrstwx\nuser=root lr\n-owner t\n");
        assert_eq!(mine(&acl), "aelrwx");
        // The owner gets `a` even when the list says otherwise; not with files disabled.
        let acl = Acl::parse(b"owner lr\n");
        assert_eq!(mine(&acl), "alr");
        assert_eq!(acl.rights_of(&me(), b"user=root", false).as_bytes(), b"lr");
        // Someone else: only what names them.
        let bob = Accessor::new("bob", &[("group".into(), "staff".into())]);
        let acl = Acl::parse(
            b"owner aceilrstwx\nanyone l\nuser=bob r\ngroup=staff i\n-group=staff l\n-anonymous w\n",
        );
        assert_eq!(acl.rights_of(&bob, b"user=root", true).as_bytes(), b"ir");
        // A member of group administrators.
        let admin = Accessor::new("eve", &[("group".into(), "administrators".into())]);
        let acl = Acl::parse(b"owner lra\n").with_administrators();
        assert_eq!(
            acl.rights_of(&admin, b"user=root", true).as_bytes(),
            ALL_RIGHTS
        );
        assert!(acl.rights_of(&bob, b"user=root", true).is_empty());
    }

    /// The SETACL outcomes of Courier's imapd on the list `owner alrt`: refused ones leave
    /// the owner without `l` or `a`, or administrators without a right.
    #[test]
    fn courier_rules_for_writing() {
        let base = || Acl::parse(b"owner alrt\n").with_administrators();
        let me = Some(b"user=root".as_slice());
        let mut acl = base();
        acl.set(b"owner", rights("art"));
        assert_eq!(
            acl.check(me),
            Err(AclRefusal::OwnerLockedOut(b"owner".to_vec()))
        );
        let mut acl = base();
        acl.set(b"-user=root", rights("l"));
        assert_eq!(
            acl.check(me),
            Err(AclRefusal::OwnerLockedOut(b"user=root".to_vec()))
        );
        let mut acl = base();
        acl.set(b"-anyone", rights("i"));
        assert_eq!(acl.check(me), Err(AclRefusal::AdministratorsRestricted));
        let mut acl = base();
        acl.set(b"administrators", rights("lr"));
        assert_eq!(acl.check(me), Err(AclRefusal::AdministratorsRestricted));
        let mut acl = base();
        acl.set(b"user=root", rights("lr"));
        acl.set(b"-owner", rights("t"));
        assert_eq!(acl.check(me), Ok(()));
        assert!(Acl::without_files().check(None).is_err());
    }

    fn maildir(tag: &str) -> (TempDir, Store) {
        let dir = TempDir::new(tag);
        let store = Store::create(&dir.path().join("Maildir")).unwrap();
        (dir, store)
    }

    fn file(store: &Store, rel: &str) -> Option<String> {
        fs::read_to_string(store.root().join(rel)).ok()
    }

    const DEFAULT: &str = "owner aceilrstwx\nadministrators aceilrstwx\n";

    /// CREATE INBOX.A.B in a new maildir: Courier left `courierimaphieracl/A` and
    /// `.A.B/courierimapacl`, both with the inherited default, and nothing for INBOX.
    #[test]
    fn inheritance_writes_the_inherited_list() {
        let (_d, store) = maildir("acl-inherit");
        assert_eq!(store.acl("INBOX").unwrap(), Acl::inbox_default());
        store.acl("INBOX.A").unwrap();
        store.create_folder("INBOX.A.B").unwrap();
        store.settle_acl("INBOX.A.B").unwrap();
        assert_eq!(file(&store, "courierimapacl"), None);
        assert_eq!(
            file(&store, "courierimaphieracl/A").as_deref(),
            Some(DEFAULT)
        );
        assert_eq!(
            file(&store, ".A.B/courierimapacl").as_deref(),
            Some(DEFAULT)
        );
        // Later changes of the parent are not inherited any more.
        store
            .update_acl("INBOX", b"user=root", |acl| {
                acl.set(b"anyone", rights("lr"))
            })
            .unwrap();
        assert_eq!(store.acl("INBOX.A.B").unwrap().get(b"anyone"), None);
        // A deeper folder inherits the hierarchy level's list; nothing is left in tmp/.
        fs::create_dir_all(store.root().join(".A.C/tmp")).unwrap();
        assert_eq!(
            store.acl("INBOX.A.C").unwrap().to_bytes(),
            DEFAULT.as_bytes()
        );
        assert_eq!(
            file(&store, ".A.C/courierimapacl").as_deref(),
            Some(DEFAULT)
        );
        assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            fs::read_dir(store.root().join(".A.C/tmp")).unwrap().count(),
            0
        );
    }

    /// The hierarchy list `Y` written by hand, and `.Y.Z` without a file: Courier's imapd
    /// inherited `Y`'s list with administrators added, and left `Y` as it was.
    #[test]
    fn hierarchy_lists_are_inherited() {
        let (_d, store) = maildir("acl-hier");
        fs::create_dir_all(store.root().join(".Y.Z/tmp")).unwrap();
        fs::create_dir_all(store.root().join(HIERARCHY_DIR)).unwrap();
        fs::write(
            store.root().join("courierimaphieracl/Y"),
            "owner acl\nuser=dan r\n",
        )
        .unwrap();
        let acl = store.acl("INBOX.Y.Z").unwrap();
        assert_eq!(
            file(&store, ".Y.Z/courierimapacl").as_deref(),
            Some("owner acl\nuser=dan r\nadministrators aceilrstwx\n")
        );
        assert_eq!(mine(&acl), "acl");
        assert_eq!(
            file(&store, "courierimaphieracl/Y").as_deref(),
            Some("owner acl\nuser=dan r\n")
        );
    }

    #[test]
    fn settling_moves_the_hierarchy_list_into_the_new_folder() {
        let (_d, store) = maildir("acl-settle");
        store.create_folder("INBOX.P.Q").unwrap();
        fs::create_dir_all(store.root().join(HIERARCHY_DIR)).unwrap();
        fs::write(
            store.root().join("courierimaphieracl/P"),
            "owner aceilrstwx\nanyone r\n",
        )
        .unwrap();
        store.create_folder("INBOX.P").unwrap();
        store.settle_acl("INBOX.P").unwrap();
        assert_eq!(
            file(&store, ".P/courierimapacl").as_deref(),
            Some("owner aceilrstwx\nanyone r\n")
        );
        assert_eq!(file(&store, "courierimaphieracl/P"), None);
    }

    /// DELETE INBOX.P (child INBOX.P.Q) then RENAME INBOX.P INBOX.R with Courier's imapd:
    /// `courierimaphieracl/P` kept the list, then became `R`.
    #[test]
    fn delete_keeps_and_rename_moves_hierarchy_lists() {
        let (_d, store) = maildir("acl-delete");
        store.create_folder("INBOX.P").unwrap();
        store.create_folder("INBOX.P.Q").unwrap();
        store.create_folder("INBOX.S").unwrap();
        store
            .update_acl("INBOX.P", b"user=root", |acl| {
                acl.set(b"anyone", rights("r"))
            })
            .unwrap();
        let acl = store.acl("INBOX.P").unwrap();
        store.delete_folder("INBOX.P").unwrap();
        store.keep_deleted_acl("INBOX.P", &acl).unwrap();
        let kept = "owner aceilrstwx\nadministrators aceilrstwx\nanyone r\n";
        assert_eq!(file(&store, "courierimaphieracl/P").as_deref(), Some(kept));
        // No folder below: nothing kept.
        let acl = store.acl("INBOX.S").unwrap();
        store.delete_folder("INBOX.S").unwrap();
        store.keep_deleted_acl("INBOX.S", &acl).unwrap();
        assert_eq!(file(&store, "courierimaphieracl/S"), None);
        fs::write(store.root().join("courierimaphieracl/P.Q"), DEFAULT).unwrap();
        fs::write(store.root().join("courierimaphieracl/PX"), DEFAULT).unwrap();
        store.rename_folder("INBOX.P", "INBOX.R").unwrap();
        assert_eq!(file(&store, "courierimaphieracl/R").as_deref(), Some(kept));
        assert_eq!(
            file(&store, "courierimaphieracl/R.Q").as_deref(),
            Some(DEFAULT)
        );
        assert_eq!(file(&store, "courierimaphieracl/P"), None);
        assert_eq!(
            file(&store, "courierimaphieracl/PX").as_deref(),
            Some(DEFAULT)
        );
    }

    #[test]
    fn refused_updates_write_nothing() {
        let (_d, store) = maildir("acl-refused");
        store.create_folder("INBOX.X").unwrap();
        store.acl("INBOX.X").unwrap();
        let before = file(&store, ".X/courierimapacl");
        let refused = store.update_acl("INBOX.X", b"user=root", |acl| {
            acl.set(b"owner", rights("lr"));
        });
        assert!(matches!(
            refused,
            Err(AclUpdateError::Refused(AclRefusal::OwnerLockedOut(_)))
        ));
        assert_eq!(file(&store, ".X/courierimapacl"), before);
        assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn links_are_not_followed() {
        let (dir, store) = maildir("acl-links");
        let outside = dir.path().join("outside");
        fs::write(&outside, "owner aceilrstwx\nanyone aceilrstwx\n").unwrap();
        std::os::unix::fs::symlink(&outside, store.root().join(ACL_FILE)).unwrap();
        let err = store.acl("INBOX").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        fs::remove_file(store.root().join(ACL_FILE)).unwrap();
        std::os::unix::fs::symlink(dir.path(), store.root().join(HIERARCHY_DIR)).unwrap();
        assert!(store.acl("INBOX.Nowhere").is_err());
        assert_eq!(
            fs::read_to_string(&outside).unwrap(),
            "owner aceilrstwx\nanyone aceilrstwx\n"
        );
    }
}
