//! The mdimap user file (default `/etc/mdimap/users`): reading one line into a user record,
//! finding a user, and writing a line back in the same format.
//!
//! # Format
//!
//! One virtual user per line, fields separated by `:` as in `/etc/passwd`:
//!
//! ```text
//! name:hash:uid:gid:home[:maildir[:quota[:options]]]
//! ```
//!
//! - `name`: the login name, compared exactly (case matters). Must not be empty.
//! - `hash`: a crypt(3) password hash: `$6$` SHA-512-crypt (what `mdimap` writes), `$5$`
//!   SHA-256-crypt, or `$2b$`/`$2y$`/`$2a$` bcrypt. Empty, `!…`, `*` or any other scheme
//!   means the user cannot log in with a password (a warning is logged when they try).
//! - `uid`, `gid`: the numeric user and group the session runs as.
//! - `home`: the user's home directory, an absolute path.
//! - `maildir`: empty or absent means `home/Maildir`; a relative path is relative to `home`;
//!   an absolute path is used as it is.
//! - `quota`: empty or absent means no quota; otherwise a Maildir++ quota such as
//!   `100000000S,5000C` (bytes with `S`, messages with `C`).
//! - `options`: empty or absent, or a comma-separated list of `key=value` account options
//!   as in Courier (`disableimap=1`, `disableshared=1`, ...).
//!
//! Lines starting with `#` (after optional blanks) and blank lines are ignored; trailing
//! blanks and a trailing carriage return are ignored. No field may contain `:`, so a home or
//! maildir path with a colon cannot be expressed. When a name appears twice, the first line
//! wins and the later one is reported. A malformed line only stops its own user from
//! logging in (with an error naming the file and line); other users are unaffected and the
//! line is reported in the log.
//!
//! This module reads and formats the file and, as a backend of the chain, checks a password
//! against a user's hash (the hashing itself is `password`'s). It does not change
//! processes' identities, and it never logs the password.

use super::{AuthError, MailUser, Verdict, password, resolve_maildir};
use crate::logtext::escape;
use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The shape of a line, for error messages.
pub const LINE_FORM: &str = "name:hash:uid:gid:home[:maildir[:quota[:options]]]";

/// A well-formed user line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user: MailUser,
    /// The stored password hash, exactly as written (may be empty or of an unknown scheme).
    pub hash: String,
}

/// What one line of the file holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A comment or a blank line.
    Ignored,
    Record(UserRecord),
    /// A line that is not a valid entry: `name` is the text before the first `:` (so the
    /// caller can tell whose line it is), `reason` says what is wrong.
    Malformed {
        name: Vec<u8>,
        reason: String,
    },
}

/// Read one line (without its newline).
pub fn parse_line(raw: &[u8]) -> Line {
    let line = trim_end(raw);
    let first = line.iter().position(|b| !b.is_ascii_whitespace());
    match first.and_then(|i| line.get(i)) {
        None => return Line::Ignored,
        Some(b'#') => return Line::Ignored,
        Some(_) => {}
    }
    let name = line
        .split(|&b| b == b':')
        .next()
        .unwrap_or_default()
        .to_vec();
    match std::str::from_utf8(line) {
        Ok(text) => match parse_fields(text) {
            Ok(record) => Line::Record(record),
            Err(reason) => Line::Malformed { name, reason },
        },
        Err(_) => Line::Malformed {
            name,
            reason: "the line is not valid UTF-8".to_string(),
        },
    }
}

fn trim_end(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    raw.get(..end).unwrap_or_default()
}

fn parse_fields(text: &str) -> Result<UserRecord, String> {
    let fields: Vec<&str> = text.split(':').collect();
    let [name, hash, uid, gid, home, rest @ ..] = fields.as_slice() else {
        return Err(format!(
            "it has {} fields separated by ':', expected 5 to 8 ({LINE_FORM})",
            fields.len()
        ));
    };
    if rest.len() > 3 {
        return Err(format!(
            "it has {} fields separated by ':', expected 5 to 8 ({LINE_FORM}); \
             fields cannot contain ':'",
            fields.len()
        ));
    }
    if name.is_empty() {
        return Err("the user name (field 1) is empty".to_string());
    }
    let uid = parse_id(uid, "uid (field 3)")?;
    let gid = parse_id(gid, "gid (field 4)")?;
    if home.is_empty() {
        return Err("the home directory (field 5) is empty".to_string());
    }
    let home = PathBuf::from(home);
    if !home.is_absolute() {
        return Err(format!(
            "the home directory (field 5) {:?} is not an absolute path",
            home.display().to_string()
        ));
    }
    let maildir = resolve_maildir(&home, Path::new(rest.first().copied().unwrap_or("")));
    let quota_field = rest.get(1).copied().unwrap_or("");
    let quota = if quota_field.is_empty() {
        None
    } else {
        check_quota(quota_field)?;
        Some(quota_field.to_string())
    };
    let options = parse_options(rest.get(2).copied().unwrap_or(""))?;
    Ok(UserRecord {
        user: MailUser {
            name: (*name).to_string(),
            uid,
            gid,
            home,
            maildir,
            quota,
            options,
        },
        hash: (*hash).to_string(),
    })
}

fn parse_id(text: &str, what: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {what} {text:?} is not a number"));
    }
    text.parse::<u32>()
        .map_err(|_| format!("the {what} {text} is too large (at most {})", u32::MAX))
}

/// A Maildir++ quota is a comma-separated list of `<digits>S` (bytes) and `<digits>C`
/// (messages).
fn check_quota(text: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "the quota (field 7) {text:?} is not a Maildir++ quota such as 100000000S,5000C \
             (a number of bytes followed by S and/or of messages followed by C)"
        )
    };
    for item in text.split(',') {
        let Some((digits, unit)) = item.split_at_checked(item.len().saturating_sub(1)) else {
            return Err(bad());
        };
        if !(unit == "S" || unit == "C")
            || digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.parse::<u64>().is_err()
        {
            return Err(bad());
        }
    }
    Ok(())
}

fn parse_options(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut options = Vec::new();
    // Empty items (a trailing comma, ",,") are harmless and skipped.
    for item in text.split(',').filter(|i| !i.trim().is_empty()) {
        match item.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                options.push((key.trim().to_string(), value.trim().to_string()));
            }
            _ => {
                return Err(format!(
                    "the option {item:?} in field 8 is not of the form key=value \
                     (e.g. disableimap=1)"
                ));
            }
        }
    }
    Ok(options)
}

/// Find `user` in the file at `path`. The first line for a name wins.
///
/// Returns the record and its 1-based line number, `Ok(None)` for an unknown user,
/// `AuthError::Malformed` when the line that would decide this user is malformed, and
/// `AuthError::Unavailable` when the file cannot be read. Malformed lines of other users
/// and duplicate names are logged as warnings with file and line.
pub fn find(path: &Path, user: &str) -> Result<Option<(UserRecord, usize)>, AuthError> {
    let data = std::fs::read(path).map_err(|e| {
        AuthError::Unavailable(format!("cannot read the user file {}: {e}", path.display()))
    })?;
    warn_if_world_readable(path);
    let mut found: Option<(UserRecord, usize)> = None;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    for (index, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        match parse_line(raw) {
            Line::Ignored => {}
            Line::Record(record) => {
                if !seen.insert(record.user.name.as_bytes().to_vec()) {
                    log::warn!(
                        "{}:{line_no}: user {} is listed again; the first entry is used and this one ignored",
                        escape(path.as_os_str().as_bytes()),
                        escape(record.user.name.as_bytes())
                    );
                } else if record.user.name == user {
                    found = Some((record, line_no));
                }
            }
            Line::Malformed { name, reason } => {
                let first_for_name = seen.insert(name.clone());
                if name == user.as_bytes() && first_for_name {
                    return Err(AuthError::Malformed {
                        path: path.to_path_buf(),
                        line: line_no,
                        reason: format!("{reason}; fix the line so it reads {LINE_FORM}"),
                    });
                }
                log::warn!(
                    "{}:{line_no}: ignoring malformed user entry: {}",
                    escape(path.as_os_str().as_bytes()),
                    escape(reason.as_bytes())
                );
            }
        }
    }
    Ok(found)
}

/// A SHA-512-crypt hash of a password nobody knows, checked when the user does not exist
/// (or cannot log in) so that such attempts take about as long as real ones.
const DUMMY_HASH: &str = "$6$mdimapTimingEq$1Hh5vlFXkyteqhow7wo2L83fF5Gqtsx9ImHXTfhrHZ2S5tBb6zL2CtxUJHPXR5kcARYc/ziz79ivNArNOsm84.";

/// Check `password` for `user` against the user file at `userfile`.
///
/// `Failed` covers both an unknown user and a wrong password (and a user whose hash is
/// empty, locked or of an unknown scheme, which is also logged for the administrator).
pub fn authenticate(userfile: &Path, user: &str, password: &[u8]) -> Result<MailUser, AuthError> {
    match verdict(userfile, user, password)? {
        Verdict::Accepted(mail_user) => Ok(mail_user),
        Verdict::Rejected(_) | Verdict::UnknownUser => Err(AuthError::Failed),
    }
}

/// The user file's answer for the backend chain: an unknown user is told apart from a wrong
/// password (only the chain sees the difference; callers still get `Failed` for both).
pub(crate) fn verdict(userfile: &Path, user: &str, password: &[u8]) -> Result<Verdict, AuthError> {
    let found = match find(userfile, user) {
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
            escape(userfile.as_os_str().as_bytes()),
            escape(record.user.name.as_bytes())
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
    Ok(find(userfile, user)?.map(|(record, _)| record.user))
}

fn equalize_timing(password: &[u8]) {
    // The result is meaningless; only the work matters.
    std::hint::black_box(password::verify(password, DUMMY_HASH));
}

/// Password hashes are secrets; say so if anyone on the machine can read them.
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        log::warn!(
            "the user file {} is readable by every local user, exposing password hashes; \
             make it private (chmod 600 or 640)",
            escape(path.as_os_str().as_bytes())
        );
    }
}

/// Format `user` with `hash` as one line of the file (without the newline). The maildir is
/// written relative to home when it lies under it, and left empty when it is home/Maildir.
/// Fails, saying which field, when a value cannot be represented (contains `:`, a newline,
/// a comma or `=` in an option, ...).
pub fn format_line(user: &MailUser, hash: &str) -> Result<String, String> {
    let check = |what: &str, value: &str| -> Result<(), String> {
        if value.contains(':') || value.contains('\n') || value.contains('\r') {
            Err(format!("the {what} {value:?} contains ':' or a line break"))
        } else {
            Ok(())
        }
    };
    check("user name", &user.name)?;
    if user.name.is_empty() || user.name.trim_start().starts_with('#') {
        return Err(format!(
            "the user name {:?} is empty or starts with '#'",
            user.name
        ));
    }
    check("password hash", hash)?;
    let home = user
        .home
        .to_str()
        .ok_or("the home directory is not valid UTF-8")?;
    check("home directory", home)?;
    if !user.home.is_absolute() {
        return Err(format!(
            "the home directory {home:?} is not an absolute path"
        ));
    }
    let maildir = if user.maildir == user.home.join("Maildir") {
        String::new()
    } else {
        // A maildir that is the home directory itself is written whole: the
        // empty relative path would read back as home/Maildir (found by
        // fuzz/userfile).
        let shown = user
            .maildir
            .strip_prefix(&user.home)
            .ok()
            .filter(|relative| !relative.as_os_str().is_empty())
            .unwrap_or(&user.maildir);
        let text = shown
            .to_str()
            .ok_or("the maildir path is not valid UTF-8")?;
        check("maildir", text)?;
        text.to_string()
    };
    let quota = user.quota.clone().unwrap_or_default();
    if !quota.is_empty() {
        check_quota(&quota)?;
    }
    let mut options = Vec::new();
    for (key, value) in &user.options {
        if key.is_empty()
            || [key, value]
                .iter()
                .any(|s| s.contains([',', ':', '\n', '\r']))
            || key.contains('=')
        {
            return Err(format!(
                "the option {key}={value} cannot be written (empty key, or ',', ':', '=' in the key, or a line break)"
            ));
        }
        options.push(format!("{key}={value}"));
    }
    let mut line = format!(
        "{}:{hash}:{}:{}:{home}:{maildir}:{quota}:{}",
        user.name,
        user.uid,
        user.gid,
        options.join(",")
    );
    // Drop empty trailing optional fields for a tidier file.
    while line.ends_with(':') && line.matches(':').count() > 4 {
        line.pop();
    }
    // `parse_line` drops white space at the end of a line, so a last field
    // ending in it (a maildir of "\x0c", found by fuzz/userfile) would read
    // back as another value.
    if line.ends_with(|c: char| c.is_ascii_whitespace()) {
        return Err(format!(
            "the last field of {line:?} ends in white space, which the file cannot keep"
        ));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn record(line: &str) -> UserRecord {
        match parse_line(line.as_bytes()) {
            Line::Record(r) => r,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    fn malformed(line: &str) -> String {
        match parse_line(line.as_bytes()) {
            Line::Malformed { reason, .. } => reason,
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn full_line() {
        let r = record(
            "alice:$6$x$y:5000:5001:/var/mail/alice:/srv/mail/alice:100000S,50C:disableimap=0,disableshared=1",
        );
        assert_eq!(r.hash, "$6$x$y");
        assert_eq!(r.user.name, "alice");
        assert_eq!(r.user.uid, 5000);
        assert_eq!(r.user.gid, 5001);
        assert_eq!(r.user.home, PathBuf::from("/var/mail/alice"));
        assert_eq!(r.user.maildir, PathBuf::from("/srv/mail/alice"));
        assert_eq!(r.user.quota.as_deref(), Some("100000S,50C"));
        assert_eq!(
            r.user.options,
            vec![
                ("disableimap".to_string(), "0".to_string()),
                ("disableshared".to_string(), "1".to_string())
            ]
        );
    }

    #[test]
    fn short_line_and_defaults() {
        let r = record("bob::1000:1000:/home/bob\r");
        assert_eq!(r.hash, "");
        assert_eq!(r.user.maildir, PathBuf::from("/home/bob/Maildir"));
        assert_eq!(r.user.quota, None);
        assert!(r.user.options.is_empty());
        let r = record("bob:h:1:2:/home/bob:::");
        assert_eq!(r.user.maildir, PathBuf::from("/home/bob/Maildir"));
    }

    #[test]
    fn relative_maildir_is_under_home() {
        let r = record("carol:h:1:2:/home/carol:mail/box");
        assert_eq!(r.user.maildir, PathBuf::from("/home/carol/mail/box"));
    }

    #[test]
    fn comments_and_blanks() {
        assert_eq!(parse_line(b""), Line::Ignored);
        assert_eq!(parse_line(b"   \t"), Line::Ignored);
        assert_eq!(parse_line(b"# alice:x:1:1:/h"), Line::Ignored);
        assert_eq!(parse_line(b"   # indented comment"), Line::Ignored);
    }

    #[test]
    fn malformed_lines() {
        assert!(malformed("alice:h:1:2").contains("4 fields"));
        assert!(malformed("alice:h:1:2:/h:m:1S:a=b:extra").contains("9 fields"));
        assert!(malformed(":h:1:2:/h").contains("user name"));
        assert!(malformed("alice:h:x1:2:/h").contains("uid"));
        assert!(malformed("alice:h:1:-2:/h").contains("gid"));
        assert!(malformed("alice:h:1:99999999999:/h").contains("too large"));
        assert!(malformed("alice:h:1:2:").contains("home"));
        assert!(malformed("alice:h:1:2:home/alice").contains("absolute"));
        assert!(malformed("alice:h:1:2:/h::100X").contains("quota"));
        assert!(malformed("alice:h:1:2:/h::S").contains("quota"));
        assert!(malformed("alice:h:1:2:/h:::disableimap").contains("key=value"));
        match parse_line(b"al\xffice:h:1:2:/h") {
            Line::Malformed { name, reason } => {
                assert_eq!(name, b"al\xffice".to_vec());
                assert!(reason.contains("UTF-8"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn format_round_trip() {
        let r = record("dave:$6$s$h:10:20:/home/dave:mail:5S:a=1,b=2");
        let line = format_line(&r.user, &r.hash).unwrap();
        assert_eq!(line, "dave:$6$s$h:10:20:/home/dave:mail:5S:a=1,b=2");
        let r = record("erin:$6$s$h:10:20:/home/erin");
        assert_eq!(
            format_line(&r.user, &r.hash).unwrap(),
            "erin:$6$s$h:10:20:/home/erin"
        );
        let mut bad = r.user.clone();
        bad.name = "a:b".into();
        assert!(format_line(&bad, "x").is_err());
        assert!(format_line(&r.user, "has:colon").is_err());
        // fuzz/corpus/userfile/maildir-is-home: the home directory as the maildir.
        let r = record("frank:h:1:2:/home/frank:/home/frank");
        assert_eq!(r.user.maildir, r.user.home);
        let line = format_line(&r.user, &r.hash).unwrap();
        assert_eq!(line, "frank:h:1:2:/home/frank:/home/frank");
        assert_eq!(record(&line), r);
        // fuzz/corpus/userfile/maildir-form-feed: a maildir of white space only
        // would be dropped when the line is read back.
        let mut blank_maildir = r.user.clone();
        blank_maildir.maildir = blank_maildir.home.join("\x0c");
        blank_maildir.quota = None;
        blank_maildir.options.clear();
        assert!(format_line(&blank_maildir, &r.hash).is_err());
    }

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
