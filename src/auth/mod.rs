//! Authentication: turning a login name and password into a mail user (uid, gid, home,
//! maildir, quota, account options), using the mdimap user file (see `userfile` for its
//! format) and crypt(3) password hashes (see `password`), or, chained in the configured
//! order (see `backend`), PAM (`pam`), a checkpassword program (`checkpassword`) and
//! Courier's authdaemond (`authdaemon`).
//!
//! This layer answers "who is this and may they in?"; it does not touch Maildir contents,
//! change the process's identity, or talk to the client. It never logs or returns a
//! password, and it does not tell the caller whether a failure was an unknown user or a
//! wrong password.
//!
//! The arrows point one way: this file holds what every backend shares (the mail user, the
//! errors, a backend's `Verdict` and `Lookup`, the system account, the maildir rule); the
//! backends (`userfile`, `pam`, `checkpassword`, `authdaemon`) use it and nothing above
//! them; `backend` alone knows them all and chains them.

pub mod authdaemon;
pub mod backend;
pub mod checkpassword;
pub mod pam;
pub mod password;
pub mod sasl;
pub mod secret;
pub mod userfile;

use std::fmt;
use std::path::{Path, PathBuf};

/// An authenticated (or looked-up) mail account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// Absolute; a relative maildir in the user file is resolved against `home`.
    pub maildir: PathBuf,
    /// A Maildir++ quota string such as "100000S,50C"; `None` for no quota.
    pub quota: Option<String>,
    /// Account options in file order, e.g. ("disableimap", "1").
    pub options: Vec<(String, String)>,
}

impl MailUser {
    /// The value of account option `key` (the first one when it is repeated).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when option `key` is set to a value that means "yes" (Courier treats a
    /// non-zero number or a Y... word as set).
    pub fn option_enabled(&self, key: &str) -> bool {
        match self.option(key) {
            Some(v) => {
                let v = v.trim();
                v.starts_with(['y', 'Y']) || v.parse::<i64>().is_ok_and(|n| n != 0)
            }
            None => false,
        }
    }
}

#[derive(Debug)]
pub enum AuthError {
    /// Unknown user or wrong password; deliberately not saying which.
    Failed,
    /// The user file line for this user is not valid.
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The user database could not be consulted (file unreadable etc.).
    Unavailable(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Failed => write!(f, "authentication failed: unknown user or wrong password"),
            AuthError::Malformed { path, line, reason } => write!(
                f,
                "{}:{line}: malformed user entry: {reason}",
                path.display()
            ),
            AuthError::Unavailable(why) => write!(f, "user database unavailable: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// One backend's answer to "may this user in with this password?".
#[derive(Debug)]
pub(crate) enum Verdict {
    Accepted(MailUser),
    /// The backend knows the user and refuses: wrong password, locked or expired account.
    /// The text says why, for the log; it never contains the password.
    Rejected(String),
    UnknownUser,
}

/// One backend's answer to "who is this user, and what is their clear-text password?".
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Known; the clear-text password when the backend holds one.
    Found(MailUser, Option<Vec<u8>>),
    UnknownUser,
}

/// The system account `name` (getpwnam) as a mail user: its uid, gid and home, with the
/// maildir `home/Maildir`, no quota and no options. `Ok(None)` when there is no such account.
pub(crate) fn system_user(name: &str) -> Result<Option<MailUser>, AuthError> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(account)) => Ok(Some(MailUser {
            name: name.to_string(),
            uid: account.uid.as_raw(),
            gid: account.gid.as_raw(),
            maildir: account.dir.join("Maildir"),
            home: account.dir,
            quota: None,
            options: Vec::new(),
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(AuthError::Unavailable(format!(
            "cannot read the system password database for user {name}: {e}"
        ))),
    }
}

/// `maildir` as the session uses it: empty means `home/Maildir`, relative means relative
/// to `home` (Courier's rule for authdaemond's MAILDIR and the user file alike).
pub(crate) fn resolve_maildir(home: &Path, maildir: &Path) -> PathBuf {
    if maildir.as_os_str().is_empty() {
        home.join("Maildir")
    } else {
        home.join(maildir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_user_is_read_from_passwd() {
        let root = system_user("root").unwrap().unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(root.home, PathBuf::from("/root"));
        assert_eq!(root.maildir, PathBuf::from("/root/Maildir"));
        assert_eq!(system_user("no-such-user-mdimap-test").unwrap(), None);
    }

    #[test]
    fn maildir_resolution() {
        let home = Path::new("/home/u");
        assert_eq!(
            resolve_maildir(home, Path::new("")),
            PathBuf::from("/home/u/Maildir")
        );
        assert_eq!(
            resolve_maildir(home, Path::new("box")),
            PathBuf::from("/home/u/box")
        );
        assert_eq!(
            resolve_maildir(home, Path::new("/srv/m")),
            PathBuf::from("/srv/m")
        );
    }
}
