//! IMAP folder names <-> Maildir++ directory names (spec/maildir.md §2.1).
//!
//! Owns the validation that keeps every name inside the maildir root: a name is accepted only
//! if it is `INBOX` or `INBOX.<component>[.<component>...]` with non-empty components free of
//! `/` and control characters. Names arrive and leave as UTF-8; modified UTF-7 is the protocol
//! layer's concern, not this one's.

use super::error::StoreError;

/// The IMAP name of the root maildir.
pub const INBOX: &str = "INBOX";

/// Longest directory name most file systems accept (NAME_MAX).
const NAME_MAX: usize = 255;

/// Validates `name` and returns its canonical form: the `INBOX` prefix folded to upper case
/// and one trailing `.` (a client asking for a hierarchy name) removed.
pub fn canonical_name(name: &str) -> Result<String, StoreError> {
    let invalid = || StoreError::InvalidName(name.to_string());
    let prefix = name.get(..INBOX.len()).ok_or_else(invalid)?;
    if !prefix.eq_ignore_ascii_case(INBOX) {
        return Err(invalid());
    }
    let rest = name.get(INBOX.len()..).ok_or_else(invalid)?;
    let rest = rest.strip_suffix('.').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(INBOX.to_string());
    }
    let components = rest.strip_prefix('.').ok_or_else(invalid)?;
    for component in components.split('.') {
        if component.is_empty() || component.chars().any(|c| c == '/' || c.is_control()) {
            return Err(invalid());
        }
    }
    // `rest` is the directory name (".Work.Reports"); it must fit in one path component.
    if rest.len() > NAME_MAX {
        return Err(invalid());
    }
    Ok(format!("{INBOX}{rest}"))
}

/// True when `name` is an acceptable folder name.
pub fn is_valid_name(name: &str) -> bool {
    canonical_name(name).is_ok()
}

/// Directory of a canonical name relative to the root: `None` for INBOX (the root itself),
/// otherwise `.X.Y`.
pub(crate) fn dir_of(canonical: &str) -> Option<&str> {
    canonical
        .strip_prefix(INBOX)
        .filter(|rest| !rest.is_empty())
}

/// IMAP name of a root directory entry such as `.Work.Reports`, if it is a valid folder
/// directory name (hidden `..x` names and anything that does not map back exactly are not).
pub(crate) fn name_of_dir(dir: &str) -> Option<String> {
    if !dir.starts_with('.') || dir.starts_with("..") {
        return None;
    }
    let name = format!("{INBOX}{dir}");
    match canonical_name(&name) {
        Ok(canonical) if canonical == name => Some(name),
        _ => None,
    }
}

/// True when the two names are equal under Courier's rule: the first five characters
/// (`INBOX`) compare case-insensitively, the rest byte for byte.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let head = a.len().min(INBOX.len());
    a[..head].eq_ignore_ascii_case(&b[..head]) && a[head..] == b[head..]
}

/// Folds an `INBOX` prefix (`inbox`, `Inbox.x`) to upper case; other names are returned as is.
pub(crate) fn fold_inbox(name: &str) -> String {
    match (name.get(..INBOX.len()), name.get(INBOX.len()..)) {
        (Some(head), Some(rest))
            if head.eq_ignore_ascii_case(INBOX) && (rest.is_empty() || rest.starts_with('.')) =>
        {
            format!("{INBOX}{rest}")
        }
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table_from_the_spec() {
        let table = [
            ("INBOX", None),
            ("inbox", None),
            ("InBoX", None),
            ("INBOX.Sent", Some(".Sent")),
            ("INBOX.Work.Reports", Some(".Work.Reports")),
            ("INBOX.Résumé", Some(".Résumé")),
            ("inbox.Trash", Some(".Trash")),
        ];
        for (name, dir) in table {
            let canonical = canonical_name(name).unwrap();
            assert_eq!(dir_of(&canonical), dir, "{name}");
            if let Some(dir) = dir {
                assert_eq!(name_of_dir(dir).as_deref(), Some(canonical.as_str()));
            }
        }
        assert_eq!(canonical_name("inbox.Trash").unwrap(), "INBOX.Trash");
    }

    #[test]
    fn trailing_dot_is_stripped_once() {
        assert_eq!(canonical_name("INBOX.Work.").unwrap(), "INBOX.Work");
        assert_eq!(canonical_name("INBOX.").unwrap(), "INBOX");
        assert!(canonical_name("INBOX.Work..").is_err());
    }

    #[test]
    fn invalid_names() {
        for name in [
            "",
            "INB",
            "Sent",
            "INBOXSent",
            "INBOX.a/b",
            "INBOX/a",
            "INBOX..a",
            "INBOX.a..b",
            ".Sent",
            "INBOX.a\u{1}b",
            "INBOX.a\u{7f}",
            "INBOX.a\nb",
            "#shared.x",
        ] {
            assert!(!is_valid_name(name), "{name:?} should be invalid");
        }
        let long = format!("INBOX.{}", "x".repeat(300));
        assert!(!is_valid_name(&long));
        // A multi-byte character straddling byte 5 must not panic.
        assert!(!is_valid_name("INBOé"));
    }

    #[test]
    fn hidden_and_odd_dirs_are_not_folders() {
        assert_eq!(name_of_dir("..deleted.x"), None);
        assert_eq!(name_of_dir("."), None);
        assert_eq!(name_of_dir(".a."), None);
        assert_eq!(name_of_dir("cur"), None);
        assert_eq!(name_of_dir(".a\u{1}"), None);
    }

    #[test]
    fn courier_subscription_compare() {
        assert!(same_name("inbox.Work", "INBOX.Work"));
        assert!(!same_name("INBOX.work", "INBOX.Work"));
        assert_eq!(fold_inbox("Inbox.x"), "INBOX.x");
        assert_eq!(fold_inbox("inboxes"), "inboxes");
        assert_eq!(fold_inbox("#shared.a"), "#shared.a");
    }
}
