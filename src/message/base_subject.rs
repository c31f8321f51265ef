//! The base subject of RFC 5256 §2.1, which SORT SUBJECT orders by and
//! THREAD groups by, folded for comparison (see `casemap`).
//!
//! Pure text work on one header value: it must not look at anything else of
//! the message, so that what it computes can be cached with the message's
//! other sort keys.

use super::casemap::fold;
use super::decode;

/// A subject's base subject, folded (see [`fold`]), and whether the subject
/// said it was a reply or a forward (a `Re:`, `Fw:` or `Fwd:` leader, a
/// `(fwd)` trailer or a `[fwd: ...]` wrapper), which THREAD=REFERENCES needs
/// (RFC 5256 §4, step 5). `raw` is the header value as it stands, folded
/// lines and RFC 2047 encoded words included.
pub fn base_subject(raw: &[u8]) -> (String, bool) {
    // (1) Encoded words to UTF-8; tabs, line ends and runs of blanks to one
    // space. Folded first, so that the patterns below are upper case only.
    let decoded = fold(&decode::decode_words(raw));
    let mut s = String::with_capacity(decoded.len());
    let mut blank = false;
    for c in decoded.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !blank {
                s.push(' ');
            }
            blank = true;
        } else {
            s.push(c);
            blank = false;
        }
    }
    let b = s.as_bytes();
    let mut reply = false;
    let (mut start, mut end) = (0, b.len());
    loop {
        // (2) Trailers: blanks and "(fwd)", as often as they come.
        while end > start {
            if b[end - 1] == b' ' {
                end -= 1;
            } else if end - start >= 5 && &b[end - 5..end] == b"(FWD)" {
                end -= 5;
                reply = true;
            } else {
                break;
            }
        }
        // (3) and (4), until neither removes anything (5).
        loop {
            let leader = remove_leader(&b[..end], &mut start, &mut reply);
            let blob = remove_blobs_leaving_text(&b[..end], &mut start);
            if !leader && !blob {
                break;
            }
        }
        // (6) "[fwd: subject]": unwrap, and start again from (2).
        if b[start..end].starts_with(b"[FWD:") && end - start > 5 && b[end - 1] == b']' {
            start += 5;
            end -= 1;
            reply = true;
            continue;
        }
        break;
    }
    // Every boundary moved over ASCII only, so these are char boundaries.
    (s.get(start..end).unwrap_or_default().to_string(), reply)
}

/// `subj-blob` at `at`: `[` text without brackets `]` and the blank after
/// it; where it ends, or None.
fn blob_end(b: &[u8], at: usize) -> Option<usize> {
    if b.get(at) != Some(&b'[') {
        return None;
    }
    let close = at + 1 + b[at + 1..].iter().position(|&c| c == b'[' || c == b']')?;
    if b[close] != b']' {
        return None;
    }
    Some(if b.get(close + 1) == Some(&b' ') {
        close + 2
    } else {
        close + 1
    })
}

/// (3) `subj-leader`: a blank, or `*subj-blob subj-refwd` where
/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
fn remove_leader(b: &[u8], start: &mut usize, reply: &mut bool) -> bool {
    let mut removed = false;
    if b.get(*start) == Some(&b' ') {
        *start += 1;
        removed = true;
    }
    let mut p = *start;
    while b.get(p) == Some(&b'[') {
        match blob_end(b, p) {
            Some(end) => p = end,
            None => return removed,
        }
    }
    let rest = &b[p..];
    p += if rest.starts_with(b"RE") {
        2
    } else if rest.starts_with(b"FWD") {
        3
    } else if rest.starts_with(b"FW") {
        2
    } else {
        return removed;
    };
    if b.get(p) == Some(&b' ') {
        p += 1;
    }
    if b.get(p) == Some(&b'[') {
        match blob_end(b, p) {
            Some(end) => p = end,
            None => return removed,
        }
    }
    if b.get(p) != Some(&b':') {
        return removed;
    }
    *start = p + 1;
    *reply = true;
    true
}

/// (4) A leading `subj-blob`, when text is left after it; and the blobs
/// after it, at once. One at a time, each would go only after (3) had
/// scanned the same blobs again for a `Re:` behind them and found none,
/// which costs the square of their number.
fn remove_blobs_leaving_text(b: &[u8], start: &mut usize) -> bool {
    let mut removed = false;
    while let Some(end) = blob_end(b, *start) {
        if end >= b.len() {
            break;
        }
        *start = end;
        removed = true;
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> String {
        base_subject(s.as_bytes()).0
    }

    #[test]
    fn rfc5256_leaders_trailers_and_blobs() {
        for (subject, want, reply) in [
            ("Hello world", "HELLO WORLD", false),
            ("Re: Hello world", "HELLO WORLD", true),
            ("RE: re: Re:Hello world", "HELLO WORLD", true),
            ("Fwd: Hello", "HELLO", true),
            ("Fw: Hello", "HELLO", true),
            ("fwd : Hello", "HELLO", true),
            ("Re[2]: Hello", "HELLO", true),
            ("[list] Re: Hello", "HELLO", true),
            ("[list] [other] Re: [x] Hello", "HELLO", true),
            ("[list] Hello", "HELLO", false),
            ("Hello (fwd)", "HELLO", true),
            ("Hello (fwd) (FWD)  ", "HELLO", true),
            ("[Fwd: Re: Hello]", "HELLO", true),
            ("Re: [fwd: [list] Hello] (fwd)", "HELLO", true),
            // A blob that is all there is stays.
            ("[list]", "[LIST]", false),
            ("Re: [list]", "[LIST]", true),
            // Not leaders: no colon, or words that only begin alike.
            ("Reply to me", "REPLY TO ME", false),
            ("Re Hello", "RE HELLO", false),
            ("Fwdx: Hello", "FWDX: HELLO", false),
            ("[unclosed Re: x", "[UNCLOSED RE: X", false),
            ("  lots \t of   blanks  ", "LOTS OF BLANKS", false),
            ("", "", false),
            ("Re:", "", true),
        ] {
            assert_eq!(
                base_subject(subject.as_bytes()),
                (want.to_string(), reply),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn many_blobs_cost_linear_time() {
        let subject = "[a] ".repeat(200_000) + "Re: [b] x";
        assert_eq!(base_subject(subject.as_bytes()), ("X".to_string(), true));
        let subject = "[a]".repeat(200_000);
        assert_eq!(base(&subject), "[A]");
    }

    #[test]
    fn encoded_words_are_decoded_first() {
        // RFC 2047 §8: two adjacent encoded words are one text.
        assert_eq!(
            base("=?ISO-8859-1?Q?Re:_caf=E9?= =?UTF-8?B?IGF1IGxhaXQ=?="),
            fold("café au lait")
        );
        // An encoded leader is a leader.
        assert_eq!(base("=?utf-8?q?Fwd=3A?= x"), "X");
    }
}
