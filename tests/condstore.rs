//! CONDSTORE (RFC 7162 §3.1): per-message MODSEQ and HIGHESTMODSEQ, kept in mdimap's index,
//! given to every change whoever made it (this session, another one, a delivery, a rename
//! behind the server's back as Courier-IMAP or a webmail makes), and never going back when
//! the index is lost. Each test talks to real mdimapd processes on a maildir in a
//! temporary directory.

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// The number in `[HIGHESTMODSEQ n]` of a SELECT or EXAMINE answer.
fn highest(r: &Response) -> u64 {
    r.code("HIGHESTMODSEQ")
        .and_then(|w| w.first()?.parse().ok())
        .unwrap_or_else(|| panic!("no HIGHESTMODSEQ in {r:#?}"))
}

/// The MODSEQ of a FETCH line.
fn modseq_of(line: &str) -> u64 {
    let at = line
        .find("MODSEQ (")
        .unwrap_or_else(|| panic!("no MODSEQ in {line}"))
        + "MODSEQ (".len();
    let end = line[at..].find(')').unwrap() + at;
    line[at..end].parse().unwrap()
}

/// `(UID, MODSEQ)` of every FETCH line of `r` that carries both.
fn uid_modseqs(r: &Response) -> Vec<(u32, u64)> {
    let mut v: Vec<(u32, u64)> = r
        .fetches()
        .into_iter()
        .filter(|(_, l)| l.contains("MODSEQ ("))
        .map(|(_, l)| {
            let at = l.find("UID ").unwrap() + 4;
            let uid = l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (uid, modseq_of(l))
        })
        .collect();
    v.sort();
    v
}

/// The HIGHESTMODSEQ a STATUS answer gives.
fn status_highest(r: &Response) -> u64 {
    let l = r.line("* STATUS").unwrap_or_else(|| panic!("{r:#?}"));
    let at = l.find("HIGHESTMODSEQ ").unwrap() + "HIGHESTMODSEQ ".len();
    l[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn three_messages(m: &Path) {
    for (n, s) in ["one", "two", "three"].iter().enumerate() {
        put_cur(m, &message(s, &format!("body {n}")), "");
    }
}

#[test]
fn select_fetch_and_changedsince_follow_every_change() {
    let t = TestDir::new("condstore-changes");
    let m = t.maildir();
    three_messages(&m);
    let (_s, mut c) = preauth(&t, &m);
    let caps = c.ok("CAPABILITY");
    assert!(caps.contains(" CONDSTORE"), "{caps:#?}");
    let r = c.ok("SELECT INBOX");
    let h0 = highest(&r);
    assert!(h0 > 0);
    // The first CONDSTORE-enabling command with a mailbox selected says HIGHESTMODSEQ
    // again (RFC 7162 §3.1); later ones do not.
    let r = c.ok("UID FETCH 1:* (MODSEQ)");
    assert_eq!(highest(&r), h0);
    let again = c.ok("UID FETCH 1:* (MODSEQ)");
    assert!(!again.contains("HIGHESTMODSEQ"), "{again:#?}");
    let first = uid_modseqs(&r);
    assert_eq!(first.len(), 3, "{r:#?}");
    assert!(
        first.iter().all(|&(_, m)| m > 0 && m <= h0),
        "{first:?} {h0}"
    );

    // Our own STORE: the FETCH answer carries the new MODSEQ (CONDSTORE was enabled by
    // FETCH MODSEQ), above the old HIGHESTMODSEQ.
    let r = c.ok("UID STORE 2 +FLAGS (\\Flagged)");
    let m2 = modseq_of(r.fetch(2));
    assert!(m2 > h0, "{r:#?}");
    let r = c.ok(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0})"));
    assert_eq!(uid_modseqs(&r), vec![(2, m2)], "{r:#?}");
    // A STORE that changes nothing gives no new MODSEQ.
    let r = c.ok("UID STORE 2 +FLAGS (\\Flagged)");
    assert_eq!(modseq_of(r.fetch(2)), m2);

    // Another session changes message 3's keywords, a delivery arrives, and a file is
    // renamed behind every server's back (as Courier-IMAP or a webmail would).
    let (_s2, mut other) = preauth(&t, &m);
    other.ok("SELECT INBOX");
    other.ok("UID STORE 3 +FLAGS ($Later)");
    drop(other);
    deliver(&m, &message("four", "body 4"));
    let cur = m.join("cur");
    let one = files(&cur)
        .into_iter()
        .find(|f| fs::read_to_string(cur.join(f)).unwrap().contains("body 0"))
        .unwrap();
    fs::rename(cur.join(&one), cur.join(format!("{}:2,S", base_of(&one)))).unwrap();

    let r = c.ok("NOOP");
    let untagged = r.untagged.join("\n");
    assert!(untagged.contains("4 EXISTS"), "{r:#?}");
    for line in r.fetches().iter().map(|(_, l)| l) {
        assert!(modseq_of(line) > m2, "{line}");
    }
    let r = c.ok(&format!("UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE {m2})"));
    let changed: Vec<u32> = uid_modseqs(&r).iter().map(|&(u, _)| u).collect();
    assert_eq!(changed, vec![1, 3, 4], "{r:#?}");
    assert!(r.fetch(1).contains("\\Seen") && r.fetch(3).contains("$Later"));
    c.ok("LOGOUT");

    // A new session (from the index the first one wrote) agrees with what was said.
    let (_s3, mut c) = preauth(&t, &m);
    let r = c.ok("SELECT INBOX (CONDSTORE)");
    let h1 = highest(&r);
    let r = c.ok(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m2})"));
    let again = uid_modseqs(&r);
    assert_eq!(
        again.iter().map(|&(u, _)| u).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    assert!(
        again.iter().all(|&(_, m)| m > m2 && m <= h1),
        "{again:?} {h1}"
    );
    let r = c.ok(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h1})"));
    assert!(r.fetches().is_empty(), "{r:#?}");
}

#[test]
fn unchangedsince_refuses_what_changed_and_names_it() {
    let t = TestDir::new("condstore-unchanged");
    let m = t.maildir();
    three_messages(&m);
    let (_s, mut c) = preauth(&t, &m);
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1:3 (UID MODSEQ)");
    let ms: Vec<u64> = (1..=3).map(|n| modseq_of(r.fetch(n))).collect();
    // Message 2 changes; a STORE conditional on the old MODSEQ leaves it alone.
    let r = c.ok("STORE 2 +FLAGS (\\Answered)");
    let new2 = modseq_of(r.fetch(2));
    let r = c.ok(&format!(
        "STORE 1:3 (UNCHANGEDSINCE {}) +FLAGS (\\Flagged)",
        ms[1]
    ));
    assert!(r.tagged.contains("[MODIFIED 2]"), "{r:#?}");
    assert!(r.fetch(1).contains("\\Flagged") && r.fetch(3).contains("\\Flagged"));
    assert!(r.fetches().iter().all(|(n, _)| *n != 2), "{r:#?}");
    let r = c.ok("FETCH 2 (FLAGS MODSEQ)");
    assert!(!r.fetch(2).contains("\\Flagged"));
    assert_eq!(modseq_of(r.fetch(2)), new2);
    // UID STORE names UIDs; UNCHANGEDSINCE 0 always fails (RFC 7162 §3.1.3).
    let r = c.ok("UID STORE 1:3 (UNCHANGEDSINCE 0) -FLAGS (\\Flagged)");
    assert!(r.tagged.contains("[MODIFIED 1:3]"), "{r:#?}");
    let r = c.ok(&format!(
        "UID STORE 2 (UNCHANGEDSINCE {new2}) +FLAGS.SILENT (\\Flagged)"
    ));
    assert!(!r.tagged.contains("MODIFIED"), "{r:#?}");
    let on_disk: Vec<String> = files(&m.join("cur"))
        .iter()
        .map(|f| flags_of_name(f))
        .collect();
    assert_eq!(on_disk.iter().filter(|f| f.contains('F')).count(), 3);
}

#[test]
fn search_modseq_status_and_enable() {
    let t = TestDir::new("condstore-search");
    let m = t.maildir();
    three_messages(&m);
    let (_s, mut c) = preauth(&t, &m);
    let r = c.ok("ENABLE CONDSTORE");
    assert!(r.line("* ENABLED CONDSTORE").is_some(), "{r:#?}");
    let h0 = highest(&c.ok("SELECT INBOX"));
    let r = c.ok("STORE 3 +FLAGS.SILENT (\\Seen)");
    assert!(r.fetches().is_empty());
    let r = c.ok(&format!("SEARCH MODSEQ {}", h0 + 1));
    let line = r.line("* SEARCH").unwrap().clone();
    let m3 = modseq_of(&c.ok("FETCH 3 (MODSEQ)").fetch(3).clone());
    assert_eq!(line, format!("* SEARCH 3 (MODSEQ {m3})"));
    let r = c.ok(&format!("SEARCH MODSEQ \"/flags/\\\\seen\" all {}", h0 + 1));
    assert_eq!(r.line("* SEARCH").unwrap(), &line);
    let r = c.ok(&format!("SEARCH RETURN (COUNT) MODSEQ {}", m3 + 1));
    assert!(
        r.line("* ESEARCH").is_some_and(|l| !l.contains("MODSEQ")),
        "{r:#?}"
    );
    // ESEARCH's MODSEQ is the highest of what it returns: with MIN or MAX alone, of
    // those messages only (RFC 4731 §3.2).
    let r = c.ok("STORE 1 +FLAGS.SILENT (\\Seen)");
    assert!(r.fetches().is_empty());
    let m1 = modseq_of(&c.ok("FETCH 1 (MODSEQ)").fetch(1).clone());
    let r = c.ok("SEARCH RETURN (MAX) 1:3 MODSEQ 1");
    assert!(
        r.line("* ESEARCH")
            .is_some_and(|l| l.ends_with(&format!("MAX 3 MODSEQ {m3}"))),
        "{r:#?}"
    );
    let r = c.ok("SEARCH RETURN (MIN MAX) 2:3 MODSEQ 1");
    assert!(
        r.line("* ESEARCH")
            .is_some_and(|l| l.ends_with(&format!("MIN 2 MAX 3 MODSEQ {m3}"))),
        "{r:#?}"
    );
    // Message 1's MODSEQ is the newest now.
    let newest = m1;
    let r = c.ok("UID SEARCH RETURN (ALL) MODSEQ 1");
    assert!(
        r.line("* ESEARCH")
            .is_some_and(|l| l.ends_with(&format!("ALL 1:3 MODSEQ {newest}"))),
        "{r:#?}"
    );
    c.ok("CREATE INBOX.Other");
    let st = status_highest(&c.ok("STATUS INBOX (HIGHESTMODSEQ)"));
    assert_eq!(
        st, newest,
        "STATUS of the selected folder is what the view knows"
    );
    c.ok("LOGOUT");

    // STATUS of folders not selected: the same answer twice when nothing changed, a
    // higher one after a change by someone else.
    let (_s, mut c) = preauth(&t, &m);
    let a = status_highest(&c.ok("STATUS INBOX (MESSAGES HIGHESTMODSEQ)"));
    let b = status_highest(&c.ok("STATUS INBOX (HIGHESTMODSEQ)"));
    assert_eq!(a, b);
    assert_eq!(a, newest);
    let o1 = status_highest(&c.ok("STATUS INBOX.Other (HIGHESTMODSEQ)"));
    let o2 = status_highest(&c.ok("STATUS INBOX.Other (HIGHESTMODSEQ)"));
    assert_eq!(o1, o2);
    deliver(&m, &message("four", "4"));
    let after = status_highest(&c.ok("STATUS INBOX (HIGHESTMODSEQ)"));
    assert!(after > a, "{after} after a delivery, {a} before");

    // Bad syntax is BAD.
    c.ok("SELECT INBOX");
    for bad in [
        "FETCH 1 (FLAGS) (CHANGEDSINCE x)",
        "FETCH 1 (FLAGS) (UNCHANGEDSINCE 5)",
        "STORE 1 (CHANGEDSINCE 5) +FLAGS (\\Seen)",
        "SEARCH MODSEQ \"/flags/\\\\seen\" mine 5",
        "SELECT INBOX (NOSUCHPARAM)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999)",
    ] {
        let r = c.cmd(bad);
        assert!(r.is_bad(), "{bad}: {r:#?}");
    }
}

/// The index is disposable: without it every message gets a MODSEQ above anything said
/// before, so a client resyncs its flags instead of missing a change.
#[test]
fn a_lost_index_never_takes_modseq_back() {
    let t = TestDir::new("condstore-lost");
    let m = t.maildir();
    three_messages(&m);
    let (_s, mut c) = preauth(&t, &m);
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Seen)");
    let h = highest(&c.ok("EXAMINE INBOX"));
    c.ok("LOGOUT");
    fs::remove_file(m.join("mdimapindex")).unwrap();
    let (_s, mut c) = preauth(&t, &m);
    let r = c.ok("SELECT INBOX");
    let h2 = highest(&r);
    assert!(h2 > h, "{h2} after losing the index, {h} before");
    let r = c.ok(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h})"));
    assert_eq!(uid_modseqs(&r).len(), 3, "{r:#?}");
}
