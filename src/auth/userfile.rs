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
//! This module reads and formats; it does not check passwords (see `password`) and does not
//! change processes' identities.

use super::{AuthError, MailUser};
use std::collections::HashSet;
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
    let maildir_field = rest.first().copied().unwrap_or("");
    let maildir = if maildir_field.is_empty() {
        home.join("Maildir")
    } else {
        // join() keeps an absolute maildir as it is and puts a relative one under home.
        home.join(maildir_field)
    };
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
                        path.display(),
                        record.user.name
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
                        reason,
                    });
                }
                log::warn!(
                    "{}:{line_no}: ignoring malformed user entry: {reason}",
                    path.display()
                );
            }
        }
    }
    Ok(found)
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
            path.display()
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
        let shown = user
            .maildir
            .strip_prefix(&user.home)
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
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
