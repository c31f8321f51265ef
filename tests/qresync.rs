//! QRESYNC (RFC 7162 §3.2): a client that comes back with what it knew (UIDVALIDITY,
//! HIGHESTMODSEQ, its UIDs) is told exactly what changed — VANISHED (EARLIER) for what
//! went, FETCH for what changed or arrived — and ends with the state a full resync gives,
//! whoever changed the folder meanwhile. While selected, expunges come as VANISHED.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// What a client keeps of a mailbox between sessions.
#[derive(Debug, Clone, Default, PartialEq)]
struct Cache {
    uidvalidity: u32,
    highest: u64,
    flags: BTreeMap<u32, BTreeSet<String>>,
}

/// The one word of the response code `[NAME word]` in `r`.
fn code_value(r: &Response, name: &str) -> Option<String> {
    r.code(name).and_then(|w| w.first().cloned())
}

/// `(UID, FLAGS)` of a FETCH line that has both.
fn uid_and_flags(line: &str) -> Option<(u32, BTreeSet<String>)> {
    let at = line.find("UID ")? + 4;
    let uid = line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let at = line.find("FLAGS (")? + 7;
    let end = line[at..].find(')')? + at;
    Some((
        uid,
        line[at..end]
            .split_whitespace()
            .filter(|f| *f != "\\Recent")
            .map(String::from)
            .collect(),
    ))
}

/// Applies the untagged responses of `r` to `cache` as a QRESYNC client does; returns the
/// UIDs reported VANISHED (EARLIER) and by plain VANISHED.
fn apply(cache: &mut Cache, r: &Response) -> (Vec<u32>, Vec<u32>) {
    let (mut earlier, mut now) = (Vec::new(), Vec::new());
    for l in &r.untagged {
        if let Some(set) = l.strip_prefix("* VANISHED (EARLIER) ") {
            earlier.extend(expand_set(set));
        } else if let Some(set) = l.strip_prefix("* VANISHED ") {
            now.extend(expand_set(set));
        } else if let Some((uid, flags)) = uid_and_flags(l) {
            cache.flags.insert(uid, flags);
        }
        assert!(
            !l.ends_with(" EXPUNGE"),
            "EXPUNGE with QRESYNC enabled: {l}"
        );
    }
    for uid in earlier.iter().chain(&now) {
        cache.flags.remove(uid);
    }
    if let Some(h) = code_value(r, "HIGHESTMODSEQ") {
        cache.highest = h.parse().unwrap();
    }
    if let Some(v) = code_value(r, "UIDVALIDITY") {
        cache.uidvalidity = v.parse().unwrap();
    }
    (earlier, now)
}

/// What a client that forgot everything learns: every UID with its flags.
fn full_resync(t: &TestDir, m: &Path) -> BTreeMap<u32, BTreeSet<String>> {
    let (_s, mut c) = preauth(t, m);
    c.ok("EXAMINE INBOX");
    let r = c.ok("UID FETCH 1:* (FLAGS)");
    c.ok("LOGOUT");
    r.untagged.iter().filter_map(|l| uid_and_flags(l)).collect()
}

fn first_sync(t: &TestDir, m: &Path) -> Cache {
    let (_s, mut c) = preauth(t, m);
    c.ok("ENABLE QRESYNC");
    let mut cache = Cache::default();
    let r = c.ok("SELECT INBOX");
    apply(&mut cache, &r);
    let r = c.ok("UID FETCH 1:* (FLAGS)");
    apply(&mut cache, &r);
    c.ok("LOGOUT");
    assert!(cache.highest > 0 && cache.uidvalidity > 0, "{cache:?}");
    cache
}

/// Another session, a delivery and a rename behind every server's back change the folder.
fn change_while_away(t: &TestDir, m: &Path) {
    let (_s, mut o) = preauth(t, m);
    o.ok("SELECT INBOX");
    o.ok("UID STORE 2 +FLAGS (\\Flagged $Later)");
    o.ok("UID STORE 3,5 +FLAGS.SILENT (\\Deleted)");
    o.ok("EXPUNGE");
    let msg = message("appended", "while away");
    o.ok(&format!(
        "APPEND INBOX (\\Seen) {{{}+}}\r\n{msg}",
        msg.len()
    ));
    o.ok("LOGOUT");
    deliver(m, &message("delivered", "while away"));
    let cur = m.join("cur");
    let first = files(&cur)
        .into_iter()
        .find(|f| fs::read_to_string(cur.join(f)).unwrap().contains("body 0"))
        .unwrap();
    fs::rename(
        cur.join(&first),
        cur.join(format!("{}:2,RS", base_of(&first))),
    )
    .unwrap();
}

fn six_messages(m: &Path) {
    for n in 0..6 {
        put_cur(m, &message(&format!("m{n}"), &format!("body {n}")), "");
    }
}

#[test]
fn a_client_resyncs_to_exactly_what_a_full_resync_gives() {
    let t = TestDir::new("qresync-resync");
    let m = t.maildir();
    six_messages(&m);
    let before = first_sync(&t, &m);
    change_while_away(&t, &m);
    let truth = full_resync(&t, &m);

    // With known UIDs and seq-match data, and without either: the same outcome.
    for known in [true, false] {
        let mut cache = before.clone();
        let (_s, mut c) = preauth(&t, &m);
        let r = c.cmd(&format!(
            "SELECT INBOX (QRESYNC ({} {}))",
            cache.uidvalidity, cache.highest
        ));
        assert!(r.is_bad(), "QRESYNC before ENABLE must be BAD: {r:#?}");
        c.ok("ENABLE QRESYNC");
        let uids: Vec<u32> = cache.flags.keys().copied().collect();
        let param = if known {
            format!(
                "({} {} 1:{} (1:2 1:2))",
                cache.uidvalidity,
                cache.highest,
                uids.last().unwrap()
            )
        } else {
            format!("({} {})", cache.uidvalidity, cache.highest)
        };
        let r = c.ok(&format!("SELECT INBOX (QRESYNC {param})"));
        let (earlier, _) = apply(&mut cache, &r);
        assert_eq!(earlier, vec![3, 5], "{r:#?}");
        assert_eq!(cache.flags, truth, "known UIDs given: {known}\n{r:#?}");
        assert_eq!(r.count("EXISTS"), Some(truth.len() as u32));
        // Every FETCH of the resync is a change: messages 1 and 2 and the two arrivals.
        let fetched: Vec<u32> = r
            .untagged
            .iter()
            .filter_map(|l| uid_and_flags(l).map(|(u, _)| u))
            .collect();
        assert_eq!(fetched, vec![1, 2, 7, 8], "{r:#?}");
        // Nothing changed since: a second resync says nothing.
        let again = cache.highest;
        let r = c.ok("UNSELECT");
        assert!(r.untagged.is_empty());
        let r = c.ok(&format!(
            "SELECT INBOX (QRESYNC ({} {again} 1,2,4,6:8))",
            cache.uidvalidity
        ));
        assert!(
            r.untagged
                .iter()
                .all(|l| !l.contains("VANISHED") && !l.contains("FETCH")),
            "{r:#?}"
        );
        c.ok("LOGOUT");
    }

    // A UIDVALIDITY that is not the folder's: an ordinary SELECT, nothing resynced.
    let (_s, mut c) = preauth(&t, &m);
    c.ok("ENABLE QRESYNC");
    let r = c.ok(&format!(
        "SELECT INBOX (QRESYNC ({} 1))",
        before.uidvalidity + 1
    ));
    assert!(
        !r.untagged
            .iter()
            .any(|l| l.contains("VANISHED") || l.contains("FETCH")),
        "{r:#?}"
    );
}

#[test]
fn while_selected_expunges_are_vanished_and_closed_marks_the_switch() {
    let t = TestDir::new("qresync-selected");
    let m = t.maildir();
    six_messages(&m);
    let (_s, mut c) = preauth(&t, &m);
    let r = c.ok("ENABLE QRESYNC");
    assert!(r.line("* ENABLED QRESYNC").is_some(), "{r:#?}");
    c.ok("SELECT INBOX");
    let h0: u64 = code_value(&c.ok("EXAMINE INBOX"), "HIGHESTMODSEQ")
        .unwrap()
        .parse()
        .unwrap();
    // [CLOSED] before the new mailbox's responses.
    let r = c.ok("SELECT INBOX");
    assert!(
        r.untagged[0].starts_with("* OK [CLOSED]"),
        "{:#?}",
        r.untagged
    );
    // Our own EXPUNGE.
    c.ok("UID STORE 2,4 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("EXPUNGE");
    assert_eq!(r.untagged[0], "* VANISHED 2,4", "{r:#?}");
    assert!(r.expunged().is_empty(), "{r:#?}");
    let h1: u64 = code_value(&r, "HIGHESTMODSEQ").unwrap().parse().unwrap();
    assert!(h1 > h0);
    // Another session's, seen at NOOP; a FETCH by sequence number holds it back.
    let (_s2, mut o) = preauth(&t, &m);
    o.ok("SELECT INBOX");
    o.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)");
    o.ok("UID EXPUNGE 6");
    drop(o);
    let r = c.ok("FETCH 1:* (UID)");
    assert!(!r.contains("VANISHED"), "{r:#?}");
    let r = c.ok("NOOP");
    assert!(r.untagged.contains(&"* VANISHED 6".to_string()), "{r:#?}");
    // With QRESYNC every FETCH of a flag change names the UID (RFC 7162 §3.2.4): our own
    // STORE by sequence number, another session's change seen at NOOP, a \Seen set by
    // FETCH of the body.
    let r = c.ok("STORE 1 +FLAGS (\\Answered)");
    assert!(r.fetch(1).contains("UID 1 "), "{r:#?}");
    let (_s4, mut o) = preauth(&t, &m);
    o.ok("SELECT INBOX");
    o.ok("UID STORE 3 +FLAGS (\\Flagged)");
    drop(o);
    let r = c.ok("NOOP");
    assert!(r.fetch(2).contains("UID 3 "), "{r:#?}");
    let r = c.ok("FETCH 2 (BODY[TEXT])");
    assert!(r.fetch(2).contains("UID 3"), "{r:#?}");

    // UID FETCH ... (CHANGEDSINCE n VANISHED): what went among the UIDs asked for.
    let r = c.ok(&format!(
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0} VANISHED)"
    ));
    assert_eq!(
        r.untagged.first().map(String::as_str),
        Some("* VANISHED (EARLIER) 2,4,6"),
        "{r:#?}"
    );
    let r = c.ok(&format!(
        "UID FETCH 3:4 (FLAGS) (VANISHED CHANGEDSINCE {h0})"
    ));
    assert_eq!(r.untagged[0], "* VANISHED (EARLIER) 4", "{r:#?}");
    assert!(r.fetch(2).contains("UID 3 "), "{r:#?}");
    for bad in [
        format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {h0} VANISHED)"),
        "UID FETCH 1:* (FLAGS) (VANISHED)".to_string(),
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)".to_string(),
        "SELECT INBOX (QRESYNC (1 0))".to_string(),
        "SELECT INBOX (QRESYNC (1 5 1:*))".to_string(),
    ] {
        let r = c.cmd(&bad);
        assert!(r.is_bad(), "{bad}: {r:#?}");
    }
    // VANISHED in UID FETCH needs QRESYNC enabled, not only CONDSTORE.
    let (_s3, mut d) = preauth(&t, &m);
    d.ok("ENABLE CONDSTORE");
    d.ok("SELECT INBOX");
    let r = d.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    assert!(r.is_bad(), "{r:#?}");
    // Without QRESYNC, EXPUNGE as ever.
    d.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = d.ok("EXPUNGE");
    assert_eq!(r.expunged(), vec![1], "{r:#?}");
}
