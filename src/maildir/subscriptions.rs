//! `courierimapsubscribed` in the maildir root (spec/courier-files.md §3): one full IMAP
//! name per line, UTF-8, LF terminated.
//!
//! Owns the file; must not check that subscribed folders exist (IMAP allows subscribing to
//! names that do not exist, and Courier leaves stale entries after RENAME/DELETE).

use std::io;

use super::beneath::Dir;
use super::error::StoreError;
use super::lock::DotLock;
use super::names::{fold_inbox, same_name};
use super::unique::replace_file;

/// File name in the maildir root.
pub(crate) const SUBSCRIBED_NAME: &str = "courierimapsubscribed";

/// The subscribed names in file order (the file is never read through a link).
pub(crate) fn read(root: &Dir) -> Result<Vec<String>, StoreError> {
    let bytes = match root.read(SUBSCRIBED_NAME) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(root.fail(SUBSCRIBED_NAME, e)),
    };
    let mut names = Vec::new();
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(name) => names.push(name.to_string()),
            Err(_) => log::warn!(
                "{}: skipping a line that is not UTF-8",
                root.path().join(SUBSCRIBED_NAME).display()
            ),
        }
    }
    Ok(names)
}

fn check(name: &str) -> Result<String, StoreError> {
    if name.is_empty() || name.contains(['\n', '\r', '\0']) {
        return Err(StoreError::InvalidName(name.to_string()));
    }
    Ok(fold_inbox(name))
}

fn write(root: &Dir, tmp: &Dir, names: &[String]) -> Result<(), StoreError> {
    let mut contents = String::new();
    for name in names {
        contents.push_str(name);
        contents.push('\n');
    }
    replace_file(
        tmp,
        root,
        SUBSCRIBED_NAME,
        "imapsubscribe",
        contents.as_bytes(),
    )
}

fn open_tmp(root: &Dir) -> Result<Dir, StoreError> {
    root.open_dir("tmp").map_err(|e| root.fail("tmp", e))
}

/// Adds `name` unless already present. The root dot-lock keeps two mdimap sessions from
/// losing each other's change (Courier itself does not lock this file).
pub(crate) fn subscribe(root: &Dir, name: &str) -> Result<(), StoreError> {
    let name = check(name)?;
    let tmp = open_tmp(root)?;
    let _lock = DotLock::acquire(&tmp)?;
    let mut names = read(root)?;
    if names.iter().any(|n| same_name(n, &name)) {
        return Ok(());
    }
    names.push(name);
    write(root, &tmp, &names)
}

/// Removes every line equal to `name`; not being subscribed is not an error.
pub(crate) fn unsubscribe(root: &Dir, name: &str) -> Result<(), StoreError> {
    let name = check(name)?;
    let tmp = open_tmp(root)?;
    let _lock = DotLock::acquire(&tmp)?;
    let mut names = read(root)?;
    let before = names.len();
    names.retain(|n| !same_name(n, &name));
    if names.len() == before {
        return Ok(());
    }
    write(root, &tmp, &names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;
    use std::fs;

    #[test]
    fn file_contents() {
        let dir = TempDir::new("subs");
        fs::create_dir(dir.path().join("tmp")).unwrap();
        let file = dir.path().join(SUBSCRIBED_NAME);
        let root = Dir::open_root(dir.path()).unwrap();
        assert!(read(&root).unwrap().is_empty());
        subscribe(&root, "INBOX.Work.Reports").unwrap();
        subscribe(&root, "inbox.Résumé").unwrap();
        subscribe(&root, "Inbox.Work.Reports").unwrap();
        subscribe(&root, "#shared.bob.x").unwrap();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "INBOX.Work.Reports\nINBOX.Résumé\n#shared.bob.x\n"
        );
        unsubscribe(&root, "iNbOx.Work.Reports").unwrap();
        unsubscribe(&root, "INBOX.not-there").unwrap();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "INBOX.Résumé\n#shared.bob.x\n"
        );
        assert_eq!(read(&root).unwrap(), vec!["INBOX.Résumé", "#shared.bob.x"]);
        assert!(subscribe(&root, "a\nb").is_err());
        assert!(subscribe(&root, "").is_err());
        // Only the lock-free state remains in tmp/.
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_linked_file_is_neither_read_nor_written_through() {
        let dir = TempDir::new("subs-link");
        fs::create_dir(dir.path().join("tmp")).unwrap();
        let other = dir.path().join("other-users-subscriptions");
        fs::write(&other, "INBOX.Secret\n").unwrap();
        std::os::unix::fs::symlink(&other, dir.path().join(SUBSCRIBED_NAME)).unwrap();
        let root = Dir::open_root(dir.path()).unwrap();
        let err = read(&root).unwrap_err().to_string();
        assert!(
            err.contains(SUBSCRIBED_NAME) && err.contains("symbolic link"),
            "{err}"
        );
        assert!(subscribe(&root, "INBOX.Mine").is_err());
        assert!(unsubscribe(&root, "INBOX.Secret").is_err());
        assert_eq!(fs::read_to_string(&other).unwrap(), "INBOX.Secret\n");
    }
}
