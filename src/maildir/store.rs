//! The maildir as a whole: opening and creating it, the Maildir++ folder tree (list, create,
//! delete, rename) and subscriptions (spec/maildir.md §2).
//!
//! Owns which directories are folders. Symlinked folder directories are refused (not listed,
//! not opened) so that no name can lead outside the maildir root, even though Maildir++
//! tolerates them; Courier's own shared folders are served by `sharable` instead. Each operation opens the root (following links on the
//! way: where the maildir lives is the administrator's choice) and reaches everything below
//! it through that directory without following any link (`beneath`).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::beneath::{Dir, Kind, report_skipped};
use super::error::StoreError;
use super::flags::basename_of;
use super::folder::{CREATING_TAG, DELETING_TAG, Folder};
use super::keywords;
use super::names::{INBOX, canonical_name, dir_of, name_of_dir};
use super::quota::Quota;
use super::special_use::{self, SpecialUse};
use super::subscriptions;
use super::unique::{MARKER_MODE, Stamp};

/// Mode of every directory the store creates.
const DIR_MODE: u32 = 0o700;
/// The Maildir++ folder marker.
const FOLDER_MARKER: &str = "maildirfolder";

/// A user's maildir.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The Maildir++ quota of this maildir (`maildirsize`, and the user record's limits).
    quota: Quota,
}

/// What a folder directory path holds.
#[derive(Debug, PartialEq, Eq)]
enum DirState {
    Folder,
    Symlink,
    /// Nothing, or something that is not a maildir.
    Absent,
}

fn is_dir(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_dir())
}

fn has_subdirs(path: &Path) -> bool {
    ["cur", "new", "tmp"]
        .iter()
        .all(|sub| is_dir(&path.join(sub)))
}

fn dir_state(path: &Path) -> DirState {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => DirState::Symlink,
        Ok(meta) if meta.is_dir() && has_subdirs(path) => DirState::Folder,
        _ => DirState::Absent,
    }
}

fn mkdir(path: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .mode(DIR_MODE)
        .create(path)
        .map_err(|e| StoreError::io(path, e))
}

fn is_exists_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AlreadyExists || e.kind() == io::ErrorKind::DirectoryNotEmpty
}

fn open_in(dir: &Dir, sub: &str) -> Result<Dir, StoreError> {
    dir.open_dir(sub).map_err(|e| dir.fail(sub, e))
}

/// The regular files of a directory (the messages of INBOX's cur/ or new/); a link is left
/// where it is.
fn message_names(dir: &Dir) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for entry in dir.entries().map_err(|e| StoreError::io(dir.path(), e))? {
        let Ok(name) = entry.name.into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        match entry.kind {
            Kind::File => names.push(name),
            Kind::Dir => {}
            kind => report_skipped(&dir.path().join(&name), kind, "a message file"),
        }
    }
    Ok(names)
}

/// UIDVALIDITY is the creation second of a UID database. Returning only once the clock has
/// passed into the next second guarantees that a folder created again under a deleted or
/// renamed name cannot get the old UIDVALIDITY (Courier sleeps 2 s for the same reason).
fn wait_for_next_second() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    thread::sleep(
        Duration::from_nanos(u64::from(1_000_000_000 - nanos.min(999_999_999)))
            + Duration::from_millis(1),
    );
}

impl Store {
    /// Opens an existing maildir (a directory with cur/ new/ tmp/).
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        if !is_dir(root) || !has_subdirs(root) {
            return Err(StoreError::NonExistent(root.display().to_string()));
        }
        Self::opened(root)
    }

    fn opened(root: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            root: root.to_path_buf(),
            quota: Quota::new(root, None),
        })
    }

    /// The root, opened for one operation: the directory every path below it is resolved
    /// from (following links only on the way to it).
    fn dir(&self) -> Result<Dir, StoreError> {
        Dir::open_root(&self.root).map_err(|e| StoreError::io(&self.root, e))
    }

    /// Makes a new maildir like maildirmake (parents as needed, mode 0700).
    pub fn create(root: &Path) -> Result<Store, StoreError> {
        if is_dir(root) && has_subdirs(root) {
            return Err(StoreError::AlreadyExists(root.display().to_string()));
        }
        fs::DirBuilder::new()
            .mode(DIR_MODE)
            .recursive(true)
            .create(root)
            .map_err(|e| StoreError::io(root, e))?;
        for sub in ["cur", "new", "tmp"] {
            let path = root.join(sub);
            if !is_dir(&path) {
                mkdir(&path)?;
            }
        }
        Self::opened(root)
    }

    /// The maildir root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This maildir with the quota string of the user record (the user file's quota field,
    /// authdaemond's `QUOTA`); see `quota` for how it and `maildirsize` decide together.
    pub fn with_assigned_quota(mut self, quota: Option<&str>) -> Store {
        self.quota = Quota::new(&self.root, quota);
        self
    }

    /// The Maildir++ quota: check additions with it before making them, record every change
    /// to counted messages after making it.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// `INBOX` and every existing folder, sorted.
    pub fn folder_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names = vec![INBOX.to_string()];
        let entries = fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.root, e))?;
            let Ok(dir) = entry.file_name().into_string() else {
                continue;
            };
            if let Some(name) = name_of_dir(&dir)
                && dir_state(&entry.path()) == DirState::Folder
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// True if the folder exists (INBOX always does).
    pub fn folder_exists(&self, name: &str) -> bool {
        match canonical_name(name) {
            Ok(canonical) => match dir_of(&canonical) {
                None => true,
                Some(dir) => dir_state(&self.root.join(dir)) == DirState::Folder,
            },
            Err(_) => false,
        }
    }

    /// Opens a folder. INBOX is matched case-insensitively; symlinked folders are refused.
    /// Its messages count toward this maildir's quota.
    pub fn folder(&self, name: &str) -> Result<Folder, StoreError> {
        let canonical = canonical_name(name)?;
        let Some(dir) = dir_of(&canonical) else {
            return Ok(
                Folder::new(canonical, self.root.clone(), None).counted_by(self.quota.clone())
            );
        };
        let path = self.root.join(dir);
        match dir_state(&path) {
            DirState::Folder => {
                let dir = dir.to_string();
                Ok(Folder::new(canonical, self.root.clone(), Some(dir))
                    .counted_by(self.quota.clone()))
            }
            DirState::Symlink => Err(StoreError::Cannot(format!(
                "folder {canonical} is a symbolic link, which is not allowed"
            ))),
            DirState::Absent => Err(StoreError::NonExistent(canonical)),
        }
    }

    /// Creates `.X` with cur/ new/ tmp/ and `maildirfolder`. It is built under a hidden name in
    /// tmp/ and renamed into place, so it appears complete or not at all.
    pub fn create_folder(&self, name: &str) -> Result<(), StoreError> {
        let canonical = canonical_name(name)?;
        let Some(dir) = dir_of(&canonical) else {
            return Err(StoreError::AlreadyExists(canonical));
        };
        let target = self.root.join(dir);
        if fs::symlink_metadata(&target).is_ok() {
            return Err(StoreError::AlreadyExists(canonical));
        }
        let root = self.dir()?;
        let tmp = open_in(&root, "tmp")?;
        let building = Stamp::now().tmp_name(CREATING_TAG);
        let built = tmp
            .mkdir(&building, DIR_MODE)
            .map_err(|e| tmp.fail(&building, e))
            .and_then(|()| {
                let folder = open_in(&tmp, &building)?;
                for sub in ["cur", "new", "tmp"] {
                    folder
                        .mkdir(sub, DIR_MODE)
                        .map_err(|e| folder.fail(sub, e))?;
                }
                folder
                    .create_new(FOLDER_MARKER, MARKER_MODE)
                    .map(drop)
                    .map_err(|e| folder.fail(FOLDER_MARKER, e))
            });
        let placed = built.and_then(|()| {
            super::crash::at("create-built");
            tmp.rename_noreplace(&building, &root, dir).map_err(|e| {
                if is_exists_error(&e) {
                    StoreError::AlreadyExists(canonical.clone())
                } else {
                    root.fail(dir, e)
                }
            })
        });
        if let Err(e) = placed {
            if let Err(cleanup) = tmp.remove_tree(&building)
                && cleanup.kind() != io::ErrorKind::NotFound
            {
                log::warn!(
                    "cannot remove {}: {cleanup}",
                    tmp.path().join(&building).display()
                );
            }
            return Err(e);
        }
        root.sync();
        Ok(())
    }

    /// True if some existing folder lies below `dir` (".A" has ".A.x").
    fn has_children(&self, dir: &str) -> Result<bool, StoreError> {
        Ok(!self.children_of(dir)?.is_empty())
    }

    /// Directory names of the folders below `dir` (symlinked ones included, so that a rename
    /// leaves none behind).
    fn children_of(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{dir}.");
        let mut children = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.root, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with(&prefix)
                && name_of_dir(&name).is_some()
                && dir_state(&entry.path()) != DirState::Absent
            {
                children.push(name);
            }
        }
        children.sort();
        Ok(children)
    }

    /// Deletes exactly this folder (not its children): it is first renamed to a hidden name in
    /// tmp/, so a crash never leaves half a folder visible, then removed.
    pub fn delete_folder(&self, name: &str) -> Result<(), StoreError> {
        let canonical = canonical_name(name)?;
        let Some(dir) = dir_of(&canonical) else {
            return Err(StoreError::Cannot("INBOX cannot be deleted".to_string()));
        };
        let path = self.root.join(dir);
        match dir_state(&path) {
            DirState::Folder => {}
            DirState::Symlink => {
                return Err(StoreError::Cannot(format!(
                    "folder {canonical} is a symbolic link, which is not allowed"
                )));
            }
            DirState::Absent if self.has_children(dir)? => {
                return Err(StoreError::Cannot(format!(
                    "{canonical} has inferior hierarchical names and cannot be deleted"
                )));
            }
            DirState::Absent => return Err(StoreError::NonExistent(canonical)),
        }
        let root = self.dir()?;
        let tmp = open_in(&root, "tmp")?;
        let hidden = Stamp::now().tmp_name(DELETING_TAG);
        match root.rename(dir, &tmp, &hidden) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NonExistent(canonical));
            }
            Err(e) => return Err(root.fail(dir, e)),
        }
        root.sync();
        super::crash::at("delete-hidden");
        if let Err(e) = tmp.remove_tree(&hidden) {
            // The folder is gone from view; the tmp/ purge removes the rest later.
            log::warn!(
                "cannot remove deleted folder {}: {e}",
                tmp.path().join(&hidden).display()
            );
        }
        if let Err(e) = special_use::deleted(&root, &canonical) {
            log::error!("forgetting the special uses of {canonical}: {e}");
        }
        wait_for_next_second();
        Ok(())
    }

    /// Renames a folder and all its children. Renaming INBOX moves its messages into a new
    /// folder instead (INBOX stays, empty; its children stay where they are).
    pub fn rename_folder(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let from = canonical_name(from)?;
        let to = canonical_name(to)?;
        if from == to {
            return Err(StoreError::Cannot(format!(
                "cannot rename {from} onto itself"
            )));
        }
        let Some(to_dir) = dir_of(&to) else {
            return Err(StoreError::AlreadyExists(to));
        };
        let Some(from_dir) = dir_of(&from) else {
            return self.rename_inbox(&to, to_dir);
        };
        if to.starts_with(&format!("{from}.")) {
            return Err(StoreError::Cannot(format!(
                "cannot rename {from} into itself"
            )));
        }
        let mut moves: Vec<(String, String)> = Vec::new();
        match dir_state(&self.root.join(from_dir)) {
            DirState::Folder => moves.push((from_dir.to_string(), to_dir.to_string())),
            // As for DELETE: a link is not a folder of this maildir. (Links below it move
            // with their parent, unfollowed, so that none is left behind.)
            DirState::Symlink => {
                return Err(StoreError::Cannot(format!(
                    "folder {from} is a symbolic link, which is not allowed"
                )));
            }
            DirState::Absent => {}
        }
        for child in self.children_of(from_dir)? {
            let suffix = child.get(from_dir.len()..).unwrap_or("");
            let target = format!("{to_dir}{suffix}");
            moves.push((child, target));
        }
        if moves.is_empty() {
            return Err(StoreError::NonExistent(from));
        }
        for (_, target) in &moves {
            let Some(target_name) = name_of_dir(target) else {
                return Err(StoreError::InvalidName(format!("{INBOX}{target}")));
            };
            if fs::symlink_metadata(self.root.join(target)).is_ok() {
                return Err(StoreError::AlreadyExists(target_name));
            }
        }
        let root = self.dir()?;
        let mut done: Vec<(&str, &str)> = Vec::new();
        for (source, target) in &moves {
            if let Err(e) = root.rename_noreplace(source, &root, target) {
                for (back_to, from) in done.iter().rev() {
                    if let Err(undo) = root.rename(from, &root, back_to) {
                        log::warn!(
                            "cannot undo rename of {}: {undo}",
                            self.root.join(back_to).display()
                        );
                    }
                }
                return Err(if is_exists_error(&e) {
                    StoreError::AlreadyExists(format!("{INBOX}{target}"))
                } else {
                    root.fail(target, e)
                });
            }
            done.push((source, target));
            super::crash::at("rename-moved");
        }
        root.sync();
        // The lists of hierarchy levels without a directory move too, as with Courier.
        super::acl::rename_hierarchy(&root, from_dir, to_dir);
        // The folders moved; their special uses follow. A failure here loses no mail and
        // is the administrator's to see, not a reason to report the RENAME as failed.
        if let Err(e) = special_use::renamed(&root, &from, &to) {
            log::error!("moving the special uses of {from} to {to}: {e}");
        }
        wait_for_next_second();
        Ok(())
    }

    /// RENAME INBOX: create the target and move every message of INBOX (new/ to new/, cur/ to
    /// cur/) with its keywords.
    fn rename_inbox(&self, to: &str, to_dir: &str) -> Result<(), StoreError> {
        self.create_folder(to)?;
        let root = self.dir()?;
        let target_top = open_in(&root, to_dir)?;
        let target_tmp = open_in(&target_top, "tmp")?;
        let inbox_tmp = open_in(&root, "tmp")?;
        let mut existing = super::fast::FastSet::default();
        let mut files = Vec::new();
        let mut subs = Vec::new();
        for sub in ["cur", "new"] {
            let from = open_in(&root, sub)?;
            let into = open_in(&target_top, sub)?;
            for name in message_names(&from)? {
                existing.insert(basename_of(&name).to_string());
                files.push((subs.len(), name));
            }
            subs.push((from, into));
        }
        let inbox_keywords =
            keywords::load(&root, &inbox_tmp, &existing, false).unwrap_or_else(|e| {
                log::warn!("cannot read INBOX keywords while renaming it: {e}");
                keywords::KeywordMap::default()
            });
        for (at, name) in files {
            if let Some(set) = inbox_keywords.get(basename_of(&name)) {
                keywords::write_update(&target_top, &target_tmp, basename_of(&name), set)?;
            }
            let Some((from, into)) = subs.get(at) else {
                continue;
            };
            match from.rename(&name, into, &name) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {} // expunged meanwhile
                Err(e) => return Err(into.fail(&name, e)),
            }
        }
        for (from, into) in &subs {
            from.sync();
            into.sync();
        }
        Ok(())
    }

    /// Subscribed names in file order.
    pub fn subscriptions(&self) -> Result<Vec<String>, StoreError> {
        subscriptions::read(&self.dir()?)
    }

    /// Adds a subscription (no duplicates).
    pub fn subscribe(&self, name: &str) -> Result<(), StoreError> {
        subscriptions::subscribe(&self.dir()?, name)
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, name: &str) -> Result<(), StoreError> {
        subscriptions::unsubscribe(&self.dir()?, name)
    }

    /// The special uses clients gave folders (CREATE ... USE), as (folder, use) pairs.
    pub fn special_uses(&self) -> Result<Vec<(String, SpecialUse)>, StoreError> {
        special_use::read(&self.dir()?)
    }

    /// Records that `folder` has the special uses `uses`.
    pub fn set_special_uses(&self, folder: &str, uses: &[SpecialUse]) -> Result<(), StoreError> {
        special_use::set(&self.dir()?, &canonical_name(folder)?, uses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::flags::InfoFlags;
    use crate::maildir::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn store(tag: &str) -> (TempDir, Store) {
        let dir = TempDir::new(tag);
        let store = Store::create(&dir.path().join("Maildir")).unwrap();
        (dir, store)
    }

    #[test]
    fn open_and_create() {
        let (dir, store) = store("open");
        assert!(Store::open(store.root()).is_ok());
        assert!(matches!(
            Store::create(store.root()),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            Store::open(&dir.path().join("nope")),
            Err(StoreError::NonExistent(_))
        ));
        let mode = fs::metadata(store.root().join("cur"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn create_list_and_open_folders() {
        let (_dir, store) = store("create");
        store.create_folder("INBOX.Work.Reports").unwrap();
        store.create_folder("inbox.Sent.").unwrap();
        store.create_folder("INBOX.Résumé").unwrap();
        assert!(matches!(
            store.create_folder("INBOX.Sent"),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            store.create_folder("INBOX"),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            store.create_folder("INBOX.a/b"),
            Err(StoreError::InvalidName(_))
        ));
        assert!(matches!(
            store.create_folder("Sent"),
            Err(StoreError::InvalidName(_))
        ));
        // Only .Work.Reports exists, not .Work (Courier style).
        assert_eq!(
            store.folder_names().unwrap(),
            vec!["INBOX", "INBOX.Résumé", "INBOX.Sent", "INBOX.Work.Reports"]
        );
        assert!(store.folder_exists("INBOX.Work.Reports"));
        assert!(!store.folder_exists("INBOX.Work"));
        assert!(store.folder_exists("inbox"));
        let marker = store.root().join(".Sent").join(FOLDER_MARKER);
        assert_eq!(fs::metadata(&marker).unwrap().len(), 0);
        assert_eq!(
            fs::metadata(&marker).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(store.root().join(".Sent"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert!(has_subdirs(&store.root().join(".Résumé")));
        assert_eq!(store.folder("InBox").unwrap().name(), "INBOX");
        assert_eq!(
            store.folder("INBOX.Sent").unwrap().path(),
            store.root().join(".Sent")
        );
        assert!(matches!(
            store.folder("INBOX.Work"),
            Err(StoreError::NonExistent(_))
        ));
        // Nothing is left in tmp/.
        assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn symlinked_folders_are_refused() {
        let (dir, store) = store("symlink");
        let outside = Store::create(&dir.path().join("Outside")).unwrap();
        std::os::unix::fs::symlink(outside.root(), store.root().join(".Link")).unwrap();
        assert!(matches!(
            store.folder("INBOX.Link"),
            Err(StoreError::Cannot(_))
        ));
        assert_eq!(store.folder_names().unwrap(), vec!["INBOX"]);
        assert!(matches!(
            store.create_folder("INBOX.Link"),
            Err(StoreError::AlreadyExists(_))
        ));
    }

    #[test]
    fn delete_folder_only_that_folder() {
        let (_dir, store) = store("delete");
        store.create_folder("INBOX.A").unwrap();
        store.create_folder("INBOX.A.B").unwrap();
        store.create_folder("INBOX.X.Y").unwrap();
        store
            .folder("INBOX.A")
            .unwrap()
            .deliver(b"x\n", &InfoFlags::default(), &["k".into()], None)
            .unwrap();
        assert!(matches!(
            store.delete_folder("INBOX"),
            Err(StoreError::Cannot(_))
        ));
        assert!(matches!(
            store.delete_folder("INBOX.nope"),
            Err(StoreError::NonExistent(_))
        ));
        assert!(matches!(
            store.delete_folder("INBOX.X"),
            Err(StoreError::Cannot(_))
        ));
        store.delete_folder("INBOX.A").unwrap();
        assert_eq!(
            store.folder_names().unwrap(),
            vec!["INBOX", "INBOX.A.B", "INBOX.X.Y"]
        );
        assert!(!store.root().join(".A").exists());
        assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
        // Recreated under the same name it gets a different UIDVALIDITY.
        store.create_folder("INBOX.A").unwrap();
        let status = store.folder("INBOX.A").unwrap().status().unwrap();
        assert_eq!(status.messages, 0);
    }

    #[test]
    fn rename_with_children() {
        let (_dir, store) = store("rename");
        for name in ["INBOX.A", "INBOX.A.x", "INBOX.A.x.y", "INBOX.AB", "INBOX.C"] {
            store.create_folder(name).unwrap();
        }
        let a = store.folder("INBOX.A").unwrap();
        let (uidv, _) = a.deliver(b"m\n", &InfoFlags::default(), &[], None).unwrap();
        assert!(matches!(
            store.rename_folder("INBOX.A", "INBOX.A"),
            Err(StoreError::Cannot(_))
        ));
        assert!(matches!(
            store.rename_folder("INBOX.A", "INBOX.A.z"),
            Err(StoreError::Cannot(_))
        ));
        assert!(matches!(
            store.rename_folder("INBOX.A", "INBOX.C"),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            store.rename_folder("INBOX.A", "inbox"),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            store.rename_folder("INBOX.Q", "INBOX.R"),
            Err(StoreError::NonExistent(_))
        ));
        store.create_folder("INBOX.B.x").unwrap();
        assert!(matches!(
            store.rename_folder("INBOX.A", "INBOX.B"),
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(
            store.folder_names().unwrap().len(),
            7,
            "a refused rename changes nothing"
        );
        store.delete_folder("INBOX.B.x").unwrap();
        store.rename_folder("INBOX.A", "INBOX.B").unwrap();
        assert_eq!(
            store.folder_names().unwrap(),
            vec![
                "INBOX",
                "INBOX.AB",
                "INBOX.B",
                "INBOX.B.x",
                "INBOX.B.x.y",
                "INBOX.C"
            ]
        );
        // The renamed folder keeps its messages, database and UIDVALIDITY.
        let scan = store.folder("INBOX.B").unwrap().scan().unwrap();
        assert_eq!((scan.uidvalidity, scan.messages.len()), (uidv, 1));
        // Renaming a \Noselect parent moves its children.
        store.rename_folder("INBOX.B.x.y", "INBOX.Top.y").unwrap();
        store.rename_folder("INBOX.Top", "INBOX.Top2").unwrap();
        assert!(store.folder_exists("INBOX.Top2.y"));
    }

    #[test]
    fn rename_inbox_moves_messages() {
        let (_dir, store) = store("rename-inbox");
        store.create_folder("INBOX.Child").unwrap();
        let inbox = store.folder("INBOX").unwrap();
        inbox
            .deliver(b"one\n", &InfoFlags(b"S".to_vec()), &["Work".into()], None)
            .unwrap();
        fs::write(store.root().join("new").join("1.M1P1.h"), b"two\n").unwrap();
        store.rename_folder("INBOX", "INBOX.Old").unwrap();
        assert_eq!(inbox.scan().unwrap().messages.len(), 0);
        assert!(store.folder_exists("INBOX.Child"));
        let old = store.folder("INBOX.Old").unwrap().scan().unwrap();
        assert_eq!(old.messages.len(), 2);
        assert_eq!(old.messages.iter().filter(|m| m.recent).count(), 1);
        let seen = old.messages.iter().find(|m| m.flags.has(b'S')).unwrap();
        assert_eq!(seen.keywords, vec!["Work"]);
        assert!(matches!(
            store.rename_folder("INBOX", "INBOX.Old"),
            Err(StoreError::AlreadyExists(_))
        ));
    }

    #[test]
    fn subscriptions_via_store() {
        let (_dir, store) = store("subs");
        store.subscribe("INBOX.Work").unwrap();
        store.subscribe("inbox.Work").unwrap();
        store.subscribe("INBOX").unwrap();
        assert_eq!(
            fs::read_to_string(store.root().join("courierimapsubscribed")).unwrap(),
            "INBOX.Work\nINBOX\n"
        );
        store.unsubscribe("INBOX.Work").unwrap();
        assert_eq!(store.subscriptions().unwrap(), vec!["INBOX"]);
    }
}
