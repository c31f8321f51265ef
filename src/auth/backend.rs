//! The chain of authentication backends named by `MDIMAP_AUTH`: the mdimap user file,
//! PAM, a qmail-style checkpassword program and Courier's authdaemond, tried in the
//! configured order.
//!
//! # Who decides
//!
//! Each backend answers "accepted", "rejected" (it knows the user, the password is wrong or
//! the account may not log in), "unknown user", or fails ("unavailable"). The first backend
//! that knows the user decides: a rejection there is final, so one account cannot be
//! reached with the password of a same-named account further down the list. An unknown
//! user, or an unavailable backend, passes the question to the next one. When no backend
//! accepted or rejected, the result is `Unavailable` if any backend was unavailable (the
//! user might have been there) and `Failed` otherwise. A malformed user-file line for the
//! user is final too (`Malformed`): the administrator must fix it.
//!
//! PAM and checkpassword cannot say "unknown user" reliably (a PAM stack usually answers
//! every failure with `PAM_AUTH_ERR`; checkpassword only has exit 1), and the mail user
//! they yield comes from the system password database anyway, so for them "knows the user"
//! means "getpwnam finds the name". authdaemond's `FAIL` is ambiguous too; a `PRE` lookup
//! after a `FAIL` tells the two cases apart.
//!
//! This module orders and combines; it never logs or returns a password, and it does not
//! change the process's identity. What it logs from outside (the user name, a backend's
//! reason) goes through `logtext::escape`.

use super::{
    AuthError, Lookup, MailUser, Verdict, authdaemon, checkpassword, pam, system_user, userfile,
};
use crate::logtext::escape;
use std::path::PathBuf;

/// PAM service name used when `MDIMAP_PAM_SERVICE` is not set (`/etc/pam.d/mdimap`).
pub const DEFAULT_PAM_SERVICE: &str = "mdimap";

/// Debian's authdaemond socket (compiled into Debian 12's courier-authlib;
/// `/var/run` is a link to `/run` there).
pub const DEFAULT_AUTHDAEMON_SOCKET: &str = "/run/courier/authdaemon/socket";

/// One place to verify a password, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The mdimap user file (`MDIMAP_USERFILE`).
    UserFile(PathBuf),
    /// PAM with this service name; users come from the system password database.
    Pam { service: String },
    /// A checkpassword program with its own arguments (the subprogram is appended).
    CheckPassword { program: PathBuf, args: Vec<String> },
    /// Courier's authdaemond, reached over its unix socket.
    AuthDaemon { socket: PathBuf },
}

impl Backend {
    /// The name used in `MDIMAP_AUTH` and in log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::UserFile(_) => "userfile",
            Backend::Pam { .. } => "pam",
            Backend::CheckPassword { .. } => "checkpassword",
            Backend::AuthDaemon { .. } => "authdaemond",
        }
    }
}

/// Tries each backend in order: the first that knows the user decides (a wrong password at
/// a backend that knows the user is `Failed`; "unknown user" falls through to the next).
/// Unavailable from a backend -> try next, and if none succeeded return `Unavailable`.
///
/// `service` is the authdaemond service name ("imap"); PAM uses the service name of its
/// own backend entry.
pub fn authenticate(
    backends: &[Backend],
    service: &str,
    user: &str,
    password: &[u8],
) -> Result<MailUser, AuthError> {
    if !plausible_user(user) {
        log::warn!("login refused: the user name is empty or contains control characters");
        return Err(AuthError::Failed);
    }
    // NUL ends a C string (PAM, checkpassword) and CR/LF end an authdaemond line, so such a
    // password could be cut short or inject a field; no backend can verify it faithfully.
    if password.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        log::warn!(
            "login for user {} refused: the password contains NUL, CR or LF",
            escape(user.as_bytes())
        );
        return Err(AuthError::Failed);
    }
    let mut unavailable: Option<String> = None;
    for backend in backends {
        let answer = match backend {
            Backend::UserFile(path) => userfile::verdict(path, user, password),
            Backend::Pam { service } => pam::authenticate(service, user, password),
            Backend::CheckPassword { program, args } => {
                checkpassword::authenticate(program, args, user, password)
            }
            Backend::AuthDaemon { socket } => {
                authdaemon::authenticate(socket, service, user, password)
            }
        };
        match answer {
            Ok(Verdict::Accepted(mail_user)) => return Ok(mail_user),
            Ok(Verdict::Rejected(why)) => {
                log::warn!(
                    "{}: login for user {} rejected: {}",
                    backend.name(),
                    escape(user.as_bytes()),
                    escape(why.as_bytes())
                );
                return Err(AuthError::Failed);
            }
            Ok(Verdict::UnknownUser) => {}
            Err(AuthError::Unavailable(why)) => {
                log::warn!(
                    "{}: cannot check user {}, trying the next backend: {}",
                    backend.name(),
                    escape(user.as_bytes()),
                    escape(why.as_bytes())
                );
                unavailable.get_or_insert_with(|| format!("{}: {why}", backend.name()));
            }
            Err(other) => {
                log::warn!(
                    "{}: login for user {} refused: {}",
                    backend.name(),
                    escape(user.as_bytes()),
                    escape(other.to_string().as_bytes())
                );
                return Err(other);
            }
        }
    }
    finish(backends, user, unavailable)
}

/// For CRAM-MD5/SHA*: the clear-text password, when a backend holds one (authdaemond "PRE"
/// lookup returning a clear password field; the user file never does). `Ok(None)` when no
/// backend can supply one.
///
/// As in `authenticate`, the first backend that knows the user decides, so a user file or
/// system account shadows a same-named authdaemond account here too (and then `Ok(None)`).
pub fn clear_password(
    backends: &[Backend],
    service: &str,
    user: &str,
) -> Result<Option<(MailUser, Vec<u8>)>, AuthError> {
    Ok(find(backends, service, user)?.and_then(|(u, clear)| clear.map(|c| (u, c))))
}

/// The user, without a password check: for AUTHENTICATE EXTERNAL, where a
/// verified client certificate has proved who the client is. The first
/// backend that knows the name decides, as for a login.
pub fn lookup(
    backends: &[Backend],
    service: &str,
    user: &str,
) -> Result<Option<MailUser>, AuthError> {
    Ok(find(backends, service, user)?.map(|(u, _)| u))
}

/// A backend's record of a user, with the clear-text password when the
/// backend keeps one.
type Found = (MailUser, Option<Vec<u8>>);

/// The first backend's record of `user`.
fn find(backends: &[Backend], service: &str, user: &str) -> Result<Option<Found>, AuthError> {
    if !plausible_user(user) {
        return Ok(None);
    }
    let mut unavailable: Option<String> = None;
    for backend in backends {
        let answer = match backend {
            Backend::UserFile(path) => userfile::lookup(path, user).map(|found| match found {
                Some(mail_user) => Lookup::Found(mail_user, None),
                None => Lookup::UnknownUser,
            }),
            Backend::Pam { .. } | Backend::CheckPassword { .. } => {
                system_user(user).map(|found| match found {
                    Some(mail_user) => Lookup::Found(mail_user, None),
                    None => Lookup::UnknownUser,
                })
            }
            Backend::AuthDaemon { socket } => authdaemon::lookup(socket, service, user),
        };
        match answer {
            Ok(Lookup::Found(mail_user, clear)) => return Ok(Some((mail_user, clear))),
            Ok(Lookup::UnknownUser) => {}
            Err(AuthError::Unavailable(why)) => {
                log::warn!(
                    "{}: cannot look up user {}, trying the next backend: {}",
                    backend.name(),
                    escape(user.as_bytes()),
                    escape(why.as_bytes())
                );
                unavailable.get_or_insert_with(|| format!("{}: {why}", backend.name()));
            }
            Err(other) => return Err(other),
        }
    }
    match unavailable {
        Some(why) => Err(AuthError::Unavailable(why)),
        None => Ok(None),
    }
}

fn finish(
    backends: &[Backend],
    user: &str,
    unavailable: Option<String>,
) -> Result<MailUser, AuthError> {
    if backends.is_empty() {
        return Err(AuthError::Unavailable(
            "no authentication backend is configured (MDIMAP_AUTH)".to_string(),
        ));
    }
    match unavailable {
        Some(why) => Err(AuthError::Unavailable(why)),
        None => {
            log::warn!(
                "login for user {} rejected: no backend knows this user",
                escape(user.as_bytes())
            );
            Err(AuthError::Failed)
        }
    }
}

/// Courier's authlib refuses names with control characters; so do we, before any of them
/// reaches a C string, a protocol line or a log line.
fn plausible_user(user: &str) -> bool {
    !user.is_empty() && !user.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    const SHA512_HELLO: &str = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("mdimap-backend-test-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str, content: &str, mode: u32) -> PathBuf {
            let path = self.0.join(name);
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(content.as_bytes()).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn users(dir: &TempDir, name: &str, content: &str) -> Backend {
        Backend::UserFile(dir.file(name, content, 0o600))
    }

    #[test]
    fn first_backend_that_knows_the_user_decides() {
        let dir = TempDir::new("order");
        let first = users(
            &dir,
            "first",
            &format!("alice:{SHA512_HELLO}:1:1:/home/a1\n"),
        );
        let second = users(
            &dir,
            "second",
            &format!(
                "alice:{}:2:2:/home/a2\nbob:{SHA512_HELLO}:3:3:/home/b\n",
                crate::auth::password::hash(b"other").unwrap()
            ),
        );
        let chain = [first, second];
        assert_eq!(
            authenticate(&chain, "imap", "alice", b"Hello world!")
                .unwrap()
                .uid,
            1
        );
        // The second file's alice is shadowed, even with her own password.
        assert!(matches!(
            authenticate(&chain, "imap", "alice", b"other"),
            Err(AuthError::Failed)
        ));
        // Unknown in the first file: the second one decides.
        assert_eq!(
            authenticate(&chain, "imap", "bob", b"Hello world!")
                .unwrap()
                .uid,
            3
        );
        assert!(matches!(
            authenticate(&chain, "imap", "nobody", b"x"),
            Err(AuthError::Failed)
        ));
    }

    #[test]
    fn unavailable_falls_through_and_is_reported_when_nobody_decides() {
        let dir = TempDir::new("unavail");
        let missing = Backend::UserFile(dir.0.join("missing"));
        let good = users(&dir, "good", &format!("bob:{SHA512_HELLO}:3:3:/home/b\n"));
        let chain = [missing.clone(), good];
        assert_eq!(
            authenticate(&chain, "imap", "bob", b"Hello world!")
                .unwrap()
                .uid,
            3
        );
        assert!(matches!(
            authenticate(&chain, "imap", "bob", b"wrong"),
            Err(AuthError::Failed)
        ));
        match authenticate(&chain, "imap", "nobody", b"x") {
            Err(AuthError::Unavailable(why)) => assert!(why.starts_with("userfile: "), "{why}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(matches!(
            authenticate(&[], "imap", "bob", b"x"),
            Err(AuthError::Unavailable(_))
        ));
        let dead_daemon = Backend::AuthDaemon {
            socket: dir.0.join("no-socket"),
        };
        assert!(matches!(
            clear_password(&[missing, dead_daemon], "imap", "bob"),
            Err(AuthError::Unavailable(_))
        ));
    }

    #[test]
    fn malformed_line_stops_the_chain() {
        let dir = TempDir::new("malformed");
        let bad = users(&dir, "bad", "carol:x:notanumber:1:/home/c\n");
        let good = users(&dir, "good", &format!("carol:{SHA512_HELLO}:3:3:/home/c\n"));
        assert!(matches!(
            authenticate(&[bad, good], "imap", "carol", b"Hello world!"),
            Err(AuthError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn control_characters_are_refused_before_any_backend() {
        let dir = TempDir::new("control");
        let file = users(&dir, "u", &format!("dave:{SHA512_HELLO}:3:3:/home/d\n"));
        let chain = [file];
        for (user, pass) in [
            ("dave\n", &b"Hello world!"[..]),
            ("", b"Hello world!"),
            ("dave", b"Hello world!\n"),
            ("dave", b"Hello\0world!"),
        ] {
            assert!(
                matches!(
                    authenticate(&chain, "imap", user, pass),
                    Err(AuthError::Failed)
                ),
                "{user:?}"
            );
        }
        assert!(authenticate(&chain, "imap", "dave", b"Hello world!").is_ok());
    }

    #[test]
    fn user_file_never_supplies_a_clear_password() {
        let dir = TempDir::new("clear");
        let file = users(&dir, "u", &format!("erin:{SHA512_HELLO}:3:3:/home/e\n"));
        assert_eq!(
            clear_password(std::slice::from_ref(&file), "imap", "erin").unwrap(),
            None
        );
        assert_eq!(clear_password(&[file], "imap", "nobody").unwrap(), None);
    }

    #[test]
    fn names() {
        assert_eq!(Backend::UserFile(PathBuf::from("/x")).name(), "userfile");
        assert_eq!(
            Backend::Pam {
                service: DEFAULT_PAM_SERVICE.into()
            }
            .name(),
            "pam"
        );
    }
}
