//! The error type of the store layer. It names what went wrong in the store's own words
//! (a folder that does not exist, a name that is not allowed, a file operation that failed
//! on a given path); turning it into an IMAP response is the session layer's business.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// The folder does not exist.
    NonExistent(String),
    /// The folder (or a folder the operation would create) already exists.
    AlreadyExists(String),
    /// The name is not allowed as a folder name.
    InvalidName(String),
    /// The operation is not possible on this folder (delete INBOX, rename onto itself, ...).
    Cannot(String),
    /// The change would take the maildir over its Maildir++ quota; nothing was changed.
    OverQuota,
    /// A file system call failed on `path`.
    Io { path: PathBuf, error: io::Error },
}

impl StoreError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: &Path, error: io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NonExistent(name) => write!(f, "folder {name:?} does not exist"),
            StoreError::AlreadyExists(name) => write!(f, "folder {name:?} already exists"),
            StoreError::InvalidName(name) => write!(f, "invalid folder name {name:?}"),
            StoreError::Cannot(why) => write!(f, "{why}"),
            StoreError::OverQuota => write!(f, "the mail quota would be exceeded"),
            StoreError::Io { path, error } => {
                write!(f, "file operation on {} failed: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_names_the_path() {
        let e = StoreError::io(
            Path::new("/m/cur/x"),
            io::Error::from(io::ErrorKind::NotFound),
        );
        let text = e.to_string();
        assert!(text.contains("/m/cur/x"), "{text}");
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            StoreError::NonExistent("INBOX.a".into()).to_string(),
            "folder \"INBOX.a\" does not exist"
        );
    }
}
