//! `courierimapsubscribed` in the maildir root (spec/courier-files.md §3): one full IMAP
//! name per line, UTF-8, LF terminated.
//!
//! Owns the file; must not check that subscribed folders exist (IMAP allows subscribing to
//! names that do not exist, and Courier leaves stale entries after RENAME/DELETE).

use std::fs;
use std::io;
use std::path::Path;

use super::error::StoreError;
use super::lock::DotLock;
use super::names::{fold_inbox, same_name};
use super::unique::replace_file;

/// File name in the maildir root.
pub(crate) const SUBSCRIBED_NAME: &str = "courierimapsubscribed";

/// The subscribed names in file order.
pub(crate) fn read(root: &Path) -> Result<Vec<String>, StoreError> {
    let path = root.join(SUBSCRIBED_NAME);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let mut names = Vec::new();
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(name) => names.push(name.to_string()),
            Err(_) => log::warn!("{}: skipping a line that is not UTF-8", path.display()),
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

fn write(root: &Path, names: &[String]) -> Result<(), StoreError> {
    let mut contents = String::new();
    for name in names {
        contents.push_str(name);
        contents.push('\n');
    }
    replace_file(
        root,
        &root.join(SUBSCRIBED_NAME),
        "imapsubscribe",
        contents.as_bytes(),
    )
}

/// Adds `name` unless already present. The root dot-lock keeps two mdimap sessions from
/// losing each other's change (Courier itself does not lock this file).
pub(crate) fn subscribe(root: &Path, name: &str) -> Result<(), StoreError> {
    let name = check(name)?;
    let _lock = DotLock::acquire(root)?;
    let mut names = read(root)?;
    if names.iter().any(|n| same_name(n, &name)) {
        return Ok(());
    }
    names.push(name);
    write(root, &names)
}

/// Removes every line equal to `name`; not being subscribed is not an error.
pub(crate) fn unsubscribe(root: &Path, name: &str) -> Result<(), StoreError> {
    let name = check(name)?;
    let _lock = DotLock::acquire(root)?;
    let mut names = read(root)?;
    let before = names.len();
    names.retain(|n| !same_name(n, &name));
    if names.len() == before {
        return Ok(());
    }
    write(root, &names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;

    #[test]
    fn file_contents() {
        let dir = TempDir::new("subs");
        fs::create_dir(dir.path().join("tmp")).unwrap();
        let file = dir.path().join(SUBSCRIBED_NAME);
        assert!(read(dir.path()).unwrap().is_empty());
        subscribe(dir.path(), "INBOX.Work.Reports").unwrap();
        subscribe(dir.path(), "inbox.Résumé").unwrap();
        subscribe(dir.path(), "Inbox.Work.Reports").unwrap();
        subscribe(dir.path(), "#shared.bob.x").unwrap();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "INBOX.Work.Reports\nINBOX.Résumé\n#shared.bob.x\n"
        );
        unsubscribe(dir.path(), "iNbOx.Work.Reports").unwrap();
        unsubscribe(dir.path(), "INBOX.not-there").unwrap();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "INBOX.Résumé\n#shared.bob.x\n"
        );
        assert_eq!(
            read(dir.path()).unwrap(),
            vec!["INBOX.Résumé", "#shared.bob.x"]
        );
        assert!(subscribe(dir.path(), "a\nb").is_err());
        assert!(subscribe(dir.path(), "").is_err());
        // Only the lock-free state remains in tmp/.
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
