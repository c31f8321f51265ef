//! `\Recent` for every way a message arrives (RFC 3501 §2.3.2): delivered by an MTA into
//! `new/`, or put into a folder by APPEND, COPY or MOVE — recent for the session that has
//! the folder selected when it arrives, else for the next session to select it, and for
//! exactly one session. The scripts follow Dovecot's imaptest files `select`, `copy` and
//! `move`, which Dovecot passes.
//!
//! Black-box: real `mdimapd` processes on a maildir in a temporary directory; what lands
//! on disk is checked only where it is the contract (`mdimaprecent` never breaks a session).

mod common;

use common::*;
use std::fs;

fn append(c: &mut Client, mailbox: &str, subject: &str) -> Response {
    let msg = crlf(&message(subject, "body"));
    c.ok(&format!("APPEND {mailbox} {{{}+}}\r\n{msg}", msg.len()))
}

fn status_recent(c: &mut Client, mailbox: &str) -> u64 {
    let r = c.ok(&format!("STATUS {mailbox} (MESSAGES RECENT)"));
    let line = r.line("* STATUS").unwrap_or_else(|| panic!("{r:#?}"));
    number_after(line, "RECENT ").unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn appended_messages_are_recent_for_the_next_session_only() {
    let t = TestDir::new("recent-append");
    let m = t.maildir();
    let (_s1, mut a) = preauth(&t, &m);
    a.ok("CREATE INBOX.box");
    append(&mut a, "INBOX.box", "one");
    append(&mut a, "INBOX.box", "two");

    // Looking read-only keeps them recent.
    let r = a.ok("EXAMINE INBOX.box");
    assert_eq!(
        (r.count("EXISTS"), r.count("RECENT")),
        (Some(2), Some(2)),
        "{r:#?}"
    );
    assert!(has_flag(a.ok("FETCH 1 FLAGS").fetch(1), "\\Recent"));
    a.ok("CLOSE");
    assert_eq!(status_recent(&mut a, "INBOX.box"), 2);

    // The first session to select claims them.
    let r = a.ok("SELECT INBOX.box");
    assert_eq!(r.count("RECENT"), Some(2), "{r:#?}");
    let r = a.ok("SEARCH RECENT");
    assert_eq!(r.search(), vec![1, 2]);
    let r = a.ok("SEARCH NEW");
    assert_eq!(r.search(), vec![1, 2]);
    a.ok("CLOSE");
    assert_eq!(status_recent(&mut a, "INBOX.box"), 0);

    let (_s2, mut b) = preauth(&t, &m);
    let r = b.ok("SELECT INBOX.box");
    assert_eq!(r.count("RECENT"), Some(0), "{r:#?}");
    assert_eq!(b.ok("SEARCH OLD").search(), vec![1, 2]);
    assert!(!has_flag(b.ok("FETCH 1 FLAGS").fetch(1), "\\Recent"));
}

#[test]
fn a_copy_is_recent_for_the_session_that_has_the_target_selected() {
    let t = TestDir::new("recent-copy");
    let m = t.maildir();
    let (_s1, mut a) = preauth(&t, &m);
    let (_s2, mut b) = preauth(&t, &m);
    a.ok("CREATE INBOX.box2");
    for s in ["1", "2", "3"] {
        append(&mut a, "INBOX", s);
    }
    a.ok("SELECT INBOX");
    a.ok("STORE 1 FLAGS (\\Seen)");
    let r = b.ok("SELECT INBOX.box2");
    assert_eq!(r.count("EXISTS"), Some(0), "{r:#?}");

    a.ok("COPY 1:2 INBOX.box2");
    let r = b.ok("NOOP");
    assert_eq!(
        (r.count("EXISTS"), r.count("RECENT")),
        (Some(2), Some(2)),
        "{r:#?}"
    );
    let r = b.ok("FETCH 1:2 FLAGS");
    assert!(has_flag(r.fetch(1), "\\Recent") && has_flag(r.fetch(1), "\\Seen"));
    assert!(has_flag(r.fetch(2), "\\Recent"));

    // Anyone else, then or later, sees them as old.
    let (_s3, mut c) = preauth(&t, &m);
    let r = c.ok("SELECT INBOX.box2");
    assert_eq!(r.count("RECENT"), Some(0), "{r:#?}");
    assert_eq!(status_recent(&mut a, "INBOX.box2"), 0);

    // A second copy while both have it selected: the first to look claims it.
    a.ok("COPY 3 INBOX.box2");
    let r = c.ok("NOOP");
    assert_eq!(
        (r.count("EXISTS"), r.count("RECENT")),
        (Some(3), Some(1)),
        "{r:#?}"
    );
    let r = b.ok("NOOP");
    assert_eq!(
        (r.count("EXISTS"), r.count("RECENT")),
        (Some(3), Some(2)),
        "{r:#?}"
    );
    assert!(!has_flag(b.ok("FETCH 3 FLAGS").fetch(3), "\\Recent"));
    assert!(has_flag(c.ok("FETCH 3 FLAGS").fetch(3), "\\Recent"));
}

#[test]
fn what_a_session_puts_into_its_own_selected_folder_is_recent_for_it() {
    let t = TestDir::new("recent-own");
    let m = t.maildir();
    let (_s1, mut a) = preauth(&t, &m);
    let (_s2, mut b) = preauth(&t, &m);
    append(&mut a, "INBOX", "old");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");

    let r = append(&mut a, "INBOX", "new");
    assert_eq!(
        (r.count("EXISTS"), r.count("RECENT")),
        (Some(2), Some(2)),
        "{r:#?}"
    );
    a.ok("COPY 1 INBOX");
    let r = a.ok("FETCH 1:3 FLAGS");
    for n in 1..=3 {
        assert!(has_flag(r.fetch(n), "\\Recent"), "{r:#?}");
    }
    // The other session with the folder selected is told of them, as old.
    let r = b.ok("NOOP");
    assert_eq!(
        (r.count("EXISTS"), r.count("RECENT")),
        (Some(3), Some(0)),
        "{r:#?}"
    );
    // A read-only session is told of nothing it could claim.
    let (_s3, mut c) = preauth(&t, &m);
    let r = c.ok("EXAMINE INBOX");
    assert_eq!(r.count("RECENT"), Some(0), "{r:#?}");
}

#[test]
fn a_move_into_the_selected_folder_announces_exists_after_the_expunge() {
    let t = TestDir::new("recent-move");
    let m = t.maildir();
    let (_s1, mut a) = preauth(&t, &m);
    for s in ["1", "2"] {
        append(&mut a, "INBOX", s);
    }
    a.ok("SELECT INBOX");
    let r = a.ok("UID MOVE 1 INBOX");
    // RFC 6851 §4.3: COPYUID, then the EXPUNGE; the EXISTS that follows counts what is
    // left and the new message (imaptest `move`).
    let order: Vec<&str> = r
        .untagged
        .iter()
        .map(|l| {
            if l.contains("[COPYUID") {
                "copyuid"
            } else if l.ends_with(" EXPUNGE") {
                "expunge"
            } else if l.ends_with(" EXISTS") {
                "exists"
            } else {
                "other"
            }
        })
        .filter(|w| *w != "other")
        .collect();
    assert_eq!(order, ["copyuid", "expunge", "exists"], "{r:#?}");
    assert_eq!(r.count("EXISTS"), Some(2), "{r:#?}");
    let r = a.ok("UID FETCH 1:* FLAGS");
    assert_eq!(r.fetches().len(), 2, "{r:#?}");
    assert!(has_flag(r.fetch(2), "\\Recent"), "{r:#?}");
    a.ok("LOGOUT");
}

#[test]
fn a_damaged_or_foreign_recent_file_never_breaks_a_session() {
    let t = TestDir::new("recent-damaged");
    let m = t.maildir();
    let (_s1, mut a) = preauth(&t, &m);
    append(&mut a, "INBOX", "1");
    for junk in [&b"garbage"[..], b"", b"1 99999999999\n", b"\xff\xfe\n"] {
        fs::write(m.join("mdimaprecent"), junk).unwrap();
        let (_s, mut b) = preauth(&t, &m);
        let r = b.ok("SELECT INBOX");
        assert_eq!(r.count("EXISTS"), Some(1), "{r:#?}");
        b.ok("LOGOUT");
        // Rewritten as this session left it: the UIDVALIDITY and the next UID.
        let text = fs::read_to_string(m.join("mdimaprecent")).unwrap();
        let db = read_uiddb(&m);
        assert_eq!(text, format!("{} 2\n", db.uidvalidity), "{junk:?}");
    }
    // A message delivered by an MTA is recent as before, whatever the file says.
    fs::write(m.join("mdimaprecent"), b"1 4000000000\n").unwrap();
    deliver(&m, &message("mta", "x"));
    let r = a.ok("SELECT INBOX");
    assert_eq!(r.count("RECENT"), Some(1), "{r:#?}");
}
