//! `mdimapmailboxid` inside a folder's directory: the folder's MAILBOXID (RFC 8474), one
//! line `F` + 24 lowercase hex digits (see `id_from`). mdimap's own file (Courier ignores it),
//! made on first need. It lives in the folder's directory so that RENAME, which moves the
//! directory, carries the id along, and DELETE, which removes the directory, ends it: a
//! folder created again under the same name gets a new id, as the RFC requires.
//!
//! The file is written into the folder's `tmp/`, fsynced, and moved into place with a rename
//! that never replaces: two sessions asking at once both end up with the one that landed
//! first (a plain rename could hand each a different id for a moment). Owns the file's
//! format; must not know IMAP.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

use super::beneath::Dir;
use super::error::StoreError;
use super::unique::create_exclusive;

/// File name inside a folder.
pub(crate) const MAILBOX_ID_NAME: &str = "mdimapmailboxid";

/// The id recorded in `top`, or a new one recorded now.
pub(crate) fn get_or_create(top: &Dir, tmp: &Dir) -> Result<String, StoreError> {
    if let Some(id) = read(top)? {
        return Ok(id);
    }
    let (mut file, temp, _) = create_exclusive(tmp, "mailboxid")?;
    let id = id_from(&temp, top);
    let written = file
        .write_all(format!("{id}\n").as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = tmp.remove_file(&temp);
        return Err(tmp.fail(&temp, e));
    }
    match tmp.rename_noreplace(&temp, top, MAILBOX_ID_NAME) {
        Ok(()) => {
            top.sync();
            Ok(id)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = tmp.remove_file(&temp);
            read(top)?.ok_or_else(|| top.fail(MAILBOX_ID_NAME, io::Error::other("unreadable")))
        }
        Err(e) => {
            let _ = tmp.remove_file(&temp);
            Err(top.fail(MAILBOX_ID_NAME, e))
        }
    }
}

/// A new id: SHA-256 of the temporary file's name, a maildir unique name (time to the
/// microsecond, process, host and a counter: never made twice, the same guarantee every
/// message file name rests on), and the folder's path, cut to 96 bits. No randomness is
/// needed, and none is taken from the layers beside this one.
fn id_from(unique: &str, top: &Dir) -> String {
    let mut hash = Sha256::new();
    hash.update(unique.as_bytes());
    hash.update(top.path().as_os_str().as_encoded_bytes());
    let mut id = String::with_capacity(25);
    id.push('F');
    for b in hash.finalize().iter().take(12) {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The recorded id, if a well-formed one is there. A malformed file is an error, not
/// replaced: a changed id would make clients believe the folder was replaced.
fn read(top: &Dir) -> Result<Option<String>, StoreError> {
    let bytes = match top.read(MAILBOX_ID_NAME) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(top.fail(MAILBOX_ID_NAME, e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    let id = text.trim_end_matches('\n');
    if is_object_id(id) {
        Ok(Some(id.to_string()))
    } else {
        Err(top.fail(
            MAILBOX_ID_NAME,
            io::Error::new(io::ErrorKind::InvalidData, "not an RFC 8474 objectid"),
        ))
    }
}

/// RFC 8474 `objectid = 1*255(ALPHA / DIGIT / "_" / "-")`.
fn is_object_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("tmp")).expect("tmp");
        let top = Dir::open_root(dir.path()).expect("open");
        let tmp = top.open_dir("tmp").expect("tmp");
        let first = get_or_create(&top, &tmp).expect("create");
        assert!(first.starts_with('F') && first.len() == 25 && is_object_id(&first));
        assert_eq!(get_or_create(&top, &tmp).expect("again"), first);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("ls")
                .count(),
            0
        );
    }

    #[test]
    fn malformed_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("tmp")).expect("tmp");
        std::fs::write(dir.path().join(MAILBOX_ID_NAME), "a b\n").expect("write");
        let top = Dir::open_root(dir.path()).expect("open");
        let tmp = top.open_dir("tmp").expect("tmp");
        assert!(get_or_create(&top, &tmp).is_err());
    }
}
