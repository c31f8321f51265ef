//! `mdimapspecialuse` in the maildir root: the special uses (RFC 6154) clients gave
//! folders with `CREATE ... (USE (...))`, one `use SP full-name` line each (`Sent
//! INBOX.Sent Items`), UTF-8, LF terminated. The file is mdimap's own (Courier has no such
//! thing and ignores it); it is written like the subscriptions file, through tmp/ and a
//! rename under the root dot-lock, and kept in step with RENAME and DELETE by the store.
//!
//! Owns the file and the list of uses; must not know the configured defaults (the session
//! combines the two) nor IMAP's spelling of the attributes.

use std::io;

use super::beneath::Dir;
use super::error::StoreError;
use super::lock::DotLock;
use super::names::fold_inbox;
use super::unique::replace_file;

/// File name in the maildir root.
pub(crate) const SPECIAL_USE_NAME: &str = "mdimapspecialuse";

/// A special use a folder may have. RFC 6154's `\All` and `\Flagged` are not offered:
/// they name virtual folders, which a maildir has no way to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpecialUse {
    Archive,
    Drafts,
    Junk,
    Sent,
    Trash,
}

impl SpecialUse {
    pub const ALL: [SpecialUse; 5] = [
        SpecialUse::Archive,
        SpecialUse::Drafts,
        SpecialUse::Junk,
        SpecialUse::Sent,
        SpecialUse::Trash,
    ];

    /// The name without IMAP's backslash, as in the file: `Sent`.
    pub fn name(self) -> &'static str {
        match self {
            SpecialUse::Archive => "Archive",
            SpecialUse::Drafts => "Drafts",
            SpecialUse::Junk => "Junk",
            SpecialUse::Sent => "Sent",
            SpecialUse::Trash => "Trash",
        }
    }

    /// `name` compared case-insensitively, as IMAP compares attributes.
    pub fn from_name(name: &str) -> Option<SpecialUse> {
        SpecialUse::ALL
            .into_iter()
            .find(|u| u.name().eq_ignore_ascii_case(name))
    }
}

/// The recorded (folder, use) pairs in file order.
pub(crate) fn read(root: &Dir) -> Result<Vec<(String, SpecialUse)>, StoreError> {
    let bytes = match root.read(SPECIAL_USE_NAME) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(root.fail(SPECIAL_USE_NAME, e)),
    };
    let mut uses = Vec::new();
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let parsed = std::str::from_utf8(line).ok().and_then(|l| {
            let (word, folder) = l.split_once(' ')?;
            Some((fold_inbox(folder), SpecialUse::from_name(word)?))
        });
        match parsed {
            Some(pair) => uses.push(pair),
            None => log::warn!(
                "{}: skipping a line that is not `use folder`",
                root.path().join(SPECIAL_USE_NAME).display()
            ),
        }
    }
    Ok(uses)
}

fn write(root: &Dir, tmp: &Dir, uses: &[(String, SpecialUse)]) -> Result<(), StoreError> {
    let mut contents = String::new();
    for (folder, u) in uses {
        contents.push_str(u.name());
        contents.push(' ');
        contents.push_str(folder);
        contents.push('\n');
    }
    replace_file(
        tmp,
        root,
        SPECIAL_USE_NAME,
        "specialuse",
        contents.as_bytes(),
    )
}

/// Applies `change` to the recorded uses under the root dot-lock (re-reading the file after
/// taking it, so two sessions do not lose each other's change), and writes the file when
/// something changed.
pub(crate) fn update(
    root: &Dir,
    change: impl FnOnce(&mut Vec<(String, SpecialUse)>),
) -> Result<(), StoreError> {
    let tmp = root.open_dir("tmp").map_err(|e| root.fail("tmp", e))?;
    let _lock = DotLock::acquire(&tmp)?;
    let before = read(root)?;
    let mut uses = before.clone();
    change(&mut uses);
    if uses == before {
        return Ok(());
    }
    write(root, &tmp, &uses)
}

/// Gives `folder` the uses `uses` (besides any it had).
pub(crate) fn set(root: &Dir, folder: &str, uses: &[SpecialUse]) -> Result<(), StoreError> {
    if folder.contains(['\n', '\r', '\0']) {
        return Err(StoreError::InvalidName(folder.to_string()));
    }
    update(root, |list| {
        for &u in uses {
            if !list.iter().any(|(f, have)| f == folder && *have == u) {
                list.push((folder.to_string(), u));
            }
        }
    })
}

/// After `from` became `to` (with everything below it): the uses follow.
pub(crate) fn renamed(root: &Dir, from: &str, to: &str) -> Result<(), StoreError> {
    let below = format!("{from}.");
    update(root, |list| {
        for (folder, _) in list.iter_mut() {
            if folder == from {
                *folder = to.to_string();
            } else if let Some(rest) = folder.strip_prefix(&below) {
                *folder = format!("{to}.{rest}");
            }
        }
    })
}

/// After `folder` (only it, not what is below) was deleted: its uses go with it.
pub(crate) fn deleted(root: &Dir, folder: &str) -> Result<(), StoreError> {
    update(root, |list| list.retain(|(f, _)| f != folder))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;
    use std::fs;

    #[test]
    fn file_follows_set_rename_and_delete() {
        let dir = TempDir::new("specialuse");
        fs::create_dir(dir.path().join("tmp")).unwrap();
        let file = dir.path().join(SPECIAL_USE_NAME);
        let root = Dir::open_root(dir.path()).unwrap();
        assert!(read(&root).unwrap().is_empty());
        set(&root, "INBOX.Sent Items", &[SpecialUse::Sent]).unwrap();
        set(&root, "INBOX.Old", &[SpecialUse::Archive, SpecialUse::Junk]).unwrap();
        set(&root, "INBOX.Old.2019", &[SpecialUse::Archive]).unwrap();
        set(&root, "INBOX.Sent Items", &[SpecialUse::Sent]).unwrap();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "Sent INBOX.Sent Items\nArchive INBOX.Old\nJunk INBOX.Old\nArchive INBOX.Old.2019\n"
        );
        renamed(&root, "INBOX.Old", "INBOX.Attic").unwrap();
        deleted(&root, "INBOX.Sent Items").unwrap();
        assert_eq!(
            read(&root).unwrap(),
            vec![
                ("INBOX.Attic".to_string(), SpecialUse::Archive),
                ("INBOX.Attic".to_string(), SpecialUse::Junk),
                ("INBOX.Attic.2019".to_string(), SpecialUse::Archive),
            ]
        );
        // A name that only starts the same is not below the renamed folder.
        set(&root, "INBOX.Attics", &[SpecialUse::Trash]).unwrap();
        renamed(&root, "INBOX.Attic", "INBOX.Loft").unwrap();
        assert!(
            read(&root)
                .unwrap()
                .contains(&("INBOX.Attics".to_string(), SpecialUse::Trash))
        );
        assert!(set(&root, "a\nb", &[SpecialUse::Sent]).is_err());
        // A line a person broke is skipped, the rest kept.
        fs::write(&file, "Sent INBOX.S\nnonsense\nFlagged INBOX.F\n").unwrap();
        assert_eq!(
            read(&root).unwrap(),
            vec![("INBOX.S".to_string(), SpecialUse::Sent)]
        );
        // Only the lock-free state remains in tmp/.
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
