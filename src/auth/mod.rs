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

pub mod authdaemon;
pub mod backend;
pub mod checkpassword;
pub mod pam;
pub mod password;
pub mod sasl;
pub mod secret;
pub mod userfile;

use backend::Verdict;

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
                "{}:{line}: malformed user entry: {reason}; fix the line so it reads {}",
                path.display(),
                userfile::LINE_FORM
            ),
            AuthError::Unavailable(why) => write!(f, "user database unavailable: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// A SHA-512-crypt hash of a password nobody knows, checked when the user does not exist
/// (or cannot log in) so that such attempts take about as long as real ones.
const DUMMY_HASH: &str = "$6$mdimapTimingEq$1Hh5vlFXkyteqhow7wo2L83fF5Gqtsx9ImHXTfhrHZ2S5tBb6zL2CtxUJHPXR5kcARYc/ziz79ivNArNOsm84.";

/// Check `password` for `user` against the user file.
///
/// `Failed` covers both an unknown user and a wrong password (and a user whose hash is
/// empty, locked or of an unknown scheme, which is also logged for the administrator).
pub fn authenticate(userfile: &Path, user: &str, password: &[u8]) -> Result<MailUser, AuthError> {
    match userfile_verdict(userfile, user, password)? {
        Verdict::Accepted(mail_user) => Ok(mail_user),
        Verdict::Rejected(_) | Verdict::UnknownUser => Err(AuthError::Failed),
    }
}

/// The user file's answer for the backend chain: an unknown user is told apart from a wrong
/// password (only the chain sees the difference; callers still get `Failed` for both).
pub(crate) fn userfile_verdict(
    userfile: &Path,
    user: &str,
    password: &[u8],
) -> Result<Verdict, AuthError> {
    let found = match userfile::find(userfile, user) {
        Ok(found) => found,
        Err(e) => {
            equalize_timing(password);
            return Err(e);
        }
    };
    let Some((record, line)) = found else {
        equalize_timing(password);
        return Ok(Verdict::UnknownUser);
    };
    if password::scheme(&record.hash).is_none() {
        let what = if record.hash.is_empty() {
            "is empty"
        } else if record.hash.starts_with(['!', '*']) {
            "is locked"
        } else {
            "uses an unsupported scheme (use a $6$, $5$ or $2b$ hash)"
        };
        log::warn!(
            "{}:{line}: the password hash of user {} {what}; this user cannot log in",
            userfile.display(),
            record.user.name
        );
        equalize_timing(password);
        return Ok(Verdict::Rejected(format!("the password hash {what}")));
    }
    if password::verify(password, &record.hash) {
        Ok(Verdict::Accepted(record.user))
    } else {
        Ok(Verdict::Rejected("wrong password".to_string()))
    }
}

/// Find `user` without a password (PREAUTH, admin commands). `Ok(None)` for an unknown user.
pub fn lookup(userfile: &Path, user: &str) -> Result<Option<MailUser>, AuthError> {
    Ok(userfile::find(userfile, user)?.map(|(record, _)| record.user))
}

fn equalize_timing(password: &[u8]) {
    // The result is meaningless; only the work matters.
    std::hint::black_box(password::verify(password, DUMMY_HASH));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    /// A user file in a fresh temporary directory, removed on drop.
    struct TempFile {
        dir: PathBuf,
        path: PathBuf,
    }

    impl TempFile {
        fn new(tag: &str, content: &str) -> TempFile {
            let dir =
                std::env::temp_dir().join(format!("mdimap-auth-test-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("users");
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(content.as_bytes()).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            TempFile { dir, path }
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    const SHA512_HELLO: &str = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
    const SHA256_HELLO: &str = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";
    const BCRYPT_UU: &str = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

    fn sample() -> String {
        format!(
            "# mdimap users\n\
             \n\
             alice:{SHA512_HELLO}:5000:5000:/var/vmail/alice::100000S,50C:disableshared=1\n\
             bob:{SHA256_HELLO}:5001:5000:/var/vmail/bob:box\n\
             broken:{SHA512_HELLO}:x:5000:/var/vmail/broken\n\
             carol:{BCRYPT_UU}:5002:5000:/var/vmail/carol:/srv/carol/Maildir\n\
             alice:{SHA256_HELLO}:6000:6000:/elsewhere\n\
             nohash::5003:5000:/var/vmail/nohash\n\
             locked:!{SHA512_HELLO}:5004:5000:/var/vmail/locked\n\
             md5:$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1:5005:5000:/var/vmail/md5\n"
        )
    }

    #[test]
    fn authenticate_each_scheme() {
        let f = TempFile::new("schemes", &sample());
        let alice = authenticate(&f.path, "alice", b"Hello world!").unwrap();
        assert_eq!(alice.uid, 5000);
        assert_eq!(alice.maildir, PathBuf::from("/var/vmail/alice/Maildir"));
        assert_eq!(alice.quota.as_deref(), Some("100000S,50C"));
        assert!(alice.option_enabled("disableshared"));
        assert!(!alice.option_enabled("disableimap"));
        let bob = authenticate(&f.path, "bob", b"Hello world!").unwrap();
        assert_eq!(bob.maildir, PathBuf::from("/var/vmail/bob/box"));
        let carol = authenticate(&f.path, "carol", b"U*U").unwrap();
        assert_eq!(carol.maildir, PathBuf::from("/srv/carol/Maildir"));
    }

    #[test]
    fn wrong_password_and_unknown_user_look_alike() {
        let f = TempFile::new("failed", &sample());
        assert!(matches!(
            authenticate(&f.path, "alice", b"wrong"),
            Err(AuthError::Failed)
        ));
        assert!(matches!(
            authenticate(&f.path, "nobody", b"Hello world!"),
            Err(AuthError::Failed)
        ));
        assert!(matches!(
            authenticate(&f.path, "ALICE", b"Hello world!"),
            Err(AuthError::Failed)
        ));
        // Empty, locked and unknown-scheme hashes never match, even for their "password".
        assert!(matches!(
            authenticate(&f.path, "nohash", b""),
            Err(AuthError::Failed)
        ));
        assert!(matches!(
            authenticate(&f.path, "locked", b"Hello world!"),
            Err(AuthError::Failed)
        ));
        assert!(matches!(
            authenticate(&f.path, "md5", b"Hello world!"),
            Err(AuthError::Failed)
        ));
    }

    #[test]
    fn first_entry_wins() {
        let f = TempFile::new("dup", &sample());
        // The second alice line (SHA-256 hash, uid 6000) is ignored.
        let alice = lookup(&f.path, "alice").unwrap().unwrap();
        assert_eq!(alice.uid, 5000);
        assert!(authenticate(&f.path, "alice", b"Hello world!").is_ok());
    }

    #[test]
    fn malformed_line_reported_only_for_its_user() {
        let f = TempFile::new("malformed", &sample());
        match authenticate(&f.path, "broken", b"Hello world!") {
            Err(AuthError::Malformed { path, line, reason }) => {
                assert_eq!(path, f.path);
                assert_eq!(line, 5);
                assert!(reason.contains("uid"), "{reason}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        match lookup(&f.path, "broken") {
            Err(e @ AuthError::Malformed { .. }) => {
                let text = e.to_string();
                assert!(
                    text.starts_with(&format!("{}:5: ", f.path.display())),
                    "{text}"
                );
                assert!(text.contains("name:hash:uid:gid:home"), "{text}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        // Users on good lines after the bad one are unaffected.
        assert!(authenticate(&f.path, "carol", b"U*U").is_ok());
    }

    #[test]
    fn malformed_duplicate_after_good_line_is_ignored() {
        let content = format!("dan:{SHA512_HELLO}:1:1:/home/dan\ndan:oops\n");
        let f = TempFile::new("dupbad", &content);
        assert!(authenticate(&f.path, "dan", b"Hello world!").is_ok());
    }

    #[test]
    fn lookup_unknown_and_missing_file() {
        let f = TempFile::new("lookup", &sample());
        assert_eq!(lookup(&f.path, "nobody").unwrap(), None);
        let missing = f.dir.join("does-not-exist");
        match lookup(&missing, "alice") {
            Err(e @ AuthError::Unavailable(_)) => {
                assert!(e.to_string().contains("does-not-exist"));
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(matches!(
            authenticate(&missing, "alice", b"x"),
            Err(AuthError::Unavailable(_))
        ));
    }

    #[test]
    fn errors_never_contain_the_password() {
        let content = "eve:$6$x$y:1:1:relative/home\n";
        let f = TempFile::new("nopass", content);
        let err = authenticate(&f.path, "eve", b"TopSecretPassword").unwrap_err();
        assert!(!err.to_string().contains("TopSecretPassword"));
        assert!(!format!("{err:?}").contains("TopSecretPassword"));
        assert!(!AuthError::Failed.to_string().contains("TopSecretPassword"));
    }

    #[test]
    fn hash_then_authenticate() {
        let h = password::hash(b"n3w pass").unwrap();
        let f = TempFile::new("roundtrip", &format!("frank:{h}:7:7:/home/frank\n"));
        assert!(authenticate(&f.path, "frank", b"n3w pass").is_ok());
        assert!(authenticate(&f.path, "frank", b"n3w pas").is_err());
    }

    #[test]
    fn dummy_hash_is_well_formed() {
        assert_eq!(
            password::scheme(DUMMY_HASH),
            Some(password::Scheme::Sha512Crypt)
        );
        assert!(!password::verify(b"", DUMMY_HASH));
    }
}
