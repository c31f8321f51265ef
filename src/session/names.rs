//! Mailbox names on the wire ⇄ names in the store.
//!
//! On the wire a name is modified UTF-7 (RFC 3501 §5.1.3), or UTF-8 once the
//! client sent ENABLE UTF8=ACCEPT; the store speaks UTF-8. `INBOX` is
//! case-insensitive, everything else case-sensitive.

use crate::protocol::mutf7;

/// Decodes a mailbox name from the wire. `None` when it is not valid
/// modified UTF-7 (or not UTF-8 in UTF8=ACCEPT mode).
pub fn from_wire(raw: &[u8], utf8: bool) -> Option<String> {
    let name = if utf8 {
        String::from_utf8(raw.to_vec()).ok()?
    } else {
        mutf7::decode(raw)?
    };
    Some(fold_inbox(&name))
}

/// Encodes a store name for the wire.
pub fn to_wire(name: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        name.as_bytes().to_vec()
    } else {
        mutf7::encode(name).into_bytes()
    }
}

/// `inbox`, `Inbox.Sent` → `INBOX`, `INBOX.Sent`: the INBOX part of a name is
/// case-insensitive, so it is kept in one spelling.
pub fn fold_inbox(name: &str) -> String {
    let b = name.as_bytes();
    if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"INBOX") && (b.len() == 5 || b[5] == b'.') {
        format!("INBOX{}", &name[5..])
    } else {
        name.to_string()
    }
}

/// LIST pattern matching: `*` matches anything, `%` anything but the
/// hierarchy delimiter `.`.
pub fn pattern_matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| pattern_matches(rest, &name[i..])),
        Some((b'%', rest)) => {
            let stop = name.iter().position(|&c| c == b'.').unwrap_or(name.len());
            (0..=stop).any(|i| pattern_matches(rest, &name[i..]))
        }
        Some((&c, rest)) => name.first() == Some(&c) && pattern_matches(rest, &name[1..]),
    }
}

/// Guards the recursive matcher against patterns like `*%*%*%…` whose cost
/// grows exponentially.
pub fn pattern_is_reasonable(pattern: &[u8]) -> bool {
    pattern.len() <= 1024 && pattern.iter().filter(|&&c| c == b'*' || c == b'%').count() <= 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(pattern_matches(b"INBOX.*", b"INBOX.Work.Reports"));
        assert!(!pattern_matches(b"INBOX.%", b"INBOX.Work.Reports"));
        assert!(pattern_matches(b"INBOX.%", b"INBOX.Work"));
        assert!(pattern_matches(b"%", b"INBOX"));
        assert!(!pattern_matches(b"%", b"INBOX.Work"));
        assert!(pattern_matches(b"*", b"INBOX.Work"));
        assert!(pattern_matches(b"INBOX.W%s", b"INBOX.Works"));
    }

    #[test]
    fn inbox_folding() {
        assert_eq!(fold_inbox("inbox"), "INBOX");
        assert_eq!(fold_inbox("Inbox.Sent"), "INBOX.Sent");
        assert_eq!(fold_inbox("Inboxes"), "Inboxes");
        assert_eq!(
            from_wire(b"INBOX.R&AOk-sum&AOk-", false).unwrap(),
            "INBOX.Résumé"
        );
        assert!(from_wire(b"INBOX.&Jjo", false).is_none());
    }
}
