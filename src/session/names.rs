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
/// hierarchy delimiter `.`. Dynamic programming over (pattern, name)
/// positions, so the cost is at most their product whatever the pattern:
/// a recursive matcher takes exponential time on `*a*a*a*b`.
pub fn pattern_matches(pattern: &[u8], name: &[u8]) -> bool {
    // reach[j]: the first i pattern bytes can match the first j name bytes.
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                // A wildcard extends every reachable position over any run
                // of name bytes (for `%`, a run without the delimiter).
                let mut open = false;
                for j in 0..=name.len() {
                    let crossed_delimiter = p == b'%' && j > 0 && name[j - 1] == b'.';
                    open = (open && !crossed_delimiter) || reach[j];
                    next[j] = open;
                }
            }
            c => {
                for j in 1..=name.len() {
                    next[j] = reach[j - 1] && name[j - 1] == c;
                }
            }
        }
        reach = next;
    }
    reach[name.len()]
}

/// Bounds the work one LIST may ask for.
pub fn pattern_is_reasonable(pattern: &[u8]) -> bool {
    pattern.len() <= 1024
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
        assert!(!pattern_matches(b"INBOX.W%s", b"INBOX.W.s"));
        assert!(pattern_matches(b"INBOX.%.Reports", b"INBOX.Work.Reports"));
        assert!(pattern_matches(b"INBOX.%", b"INBOX.x"));
        assert!(pattern_matches(b"*", b""));
        assert!(pattern_matches(b"%", b""));
        assert!(pattern_matches(b"a*b", b"a.x.b"));
        assert!(!pattern_matches(b"a%b", b"a.x.b"));
        assert!(pattern_matches(b"%.%", b"a.b"));
        assert!(!pattern_matches(b"abc", b"abd"));
    }

    #[test]
    fn hostile_patterns_are_fast() {
        let name = format!("INBOX.{}", "a".repeat(250));
        let started = std::time::Instant::now();
        assert!(!pattern_matches(
            b"*a*a*a*a*a*a*a*a*a*a*a*b",
            name.as_bytes()
        ));
        assert!(!pattern_matches(b"%a%a%a%a%a%a%a%a%a%a%b", name.as_bytes()));
        // Quadratic at worst, microseconds; a backtracking matcher would
        // need more than 10^20 steps here, so this bound only tells the two
        // apart and no slow machine comes near it.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }

    /// The matcher agrees with a straightforward recursive one on every
    /// small pattern and name over a tiny alphabet.
    #[test]
    fn agrees_with_the_definition() {
        fn slow(p: &[u8], n: &[u8]) -> bool {
            match p.split_first() {
                None => n.is_empty(),
                Some((b'*', rest)) => (0..=n.len()).any(|i| slow(rest, &n[i..])),
                Some((b'%', rest)) => {
                    let stop = n.iter().position(|&c| c == b'.').unwrap_or(n.len());
                    (0..=stop).any(|i| slow(rest, &n[i..]))
                }
                Some((&c, rest)) => n.first() == Some(&c) && slow(rest, &n[1..]),
            }
        }
        let alphabet = [b'a', b'.', b'*', b'%'];
        let mut words: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |&c| [w.as_slice(), &[c]].concat()))
                .collect();
            words.extend(longer);
            words.sort();
            words.dedup();
        }
        let names: Vec<&Vec<u8>> = words
            .iter()
            .filter(|w| !w.contains(&b'*') && !w.contains(&b'%'))
            .collect();
        for p in &words {
            for n in &names {
                assert_eq!(
                    pattern_matches(p, n),
                    slow(p, n),
                    "{:?} {:?}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(n)
                );
            }
        }
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
