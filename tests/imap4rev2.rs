//! IMAP4rev2 (RFC 9051) beside IMAP4rev1: the same session answers as RFC 3501 says until
//! the client sends `ENABLE IMAP4rev2`, then as RFC 9051 says (its Appendix E lists the
//! differences). Each test runs the same commands in both modes against real mdimapd
//! processes.

mod common;

use common::*;

fn mailbox(name: &str) -> (TestDir, std::path::PathBuf) {
    let t = TestDir::new(name);
    let m = t.maildir();
    // One seen in cur/, two new (recent for the first session that looks).
    put_cur(&m, &message("seen", "1"), "S");
    deliver(&m, &message("unseen", "2"));
    deliver(&m, &message("unseen too", "3"));
    (t, m)
}

#[test]
fn both_modes_from_the_same_server() {
    let (t, m) = mailbox("rev2-modes");
    let (_s, mut c) = preauth(&t, &m);
    let caps = c.ok("CAPABILITY");
    let line = caps.line("* CAPABILITY").unwrap();
    assert!(
        line.contains(" IMAP4rev1 ") && line.contains(" IMAP4rev2"),
        "{line}"
    );

    // IMAP4rev1: RECENT, [UNSEEN], \Recent, SEARCH.
    let r = c.ok("SELECT INBOX");
    assert_eq!(r.count("RECENT"), Some(2), "{r:#?}");
    assert!(r.contains("[UNSEEN 2]"), "{r:#?}");
    assert!(r.line("* LIST").is_none());
    assert!(c.ok("FETCH 2 FLAGS").fetch(2).contains("\\Recent"));
    assert_eq!(c.ok("SEARCH UNSEEN").search(), vec![2, 3]);
    c.ok("CREATE \"INBOX.&AMQ-rger\"");
    let r = c.ok("LIST \"\" \"*rger\"");
    assert_eq!(
        r.line("* LIST").unwrap(),
        "* LIST (\\HasNoChildren) \".\" \"INBOX.&AMQ-rger\""
    );

    // STATUS DELETED (RFC 9051 §6.3.11, also RFC 9208) in either mode.
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("STATUS INBOX (MESSAGES DELETED)");
    assert_eq!(
        r.line("* STATUS").unwrap(),
        "* STATUS \"INBOX\" (MESSAGES 3 DELETED 1)"
    );
    c.ok("STORE 1 -FLAGS.SILENT (\\Deleted)");

    let r = c.ok("ENABLE IMAP4rev2");
    assert!(r.line("* ENABLED IMAP4rev2").is_some(), "{r:#?}");
    // From now on: no \Recent, ESEARCH answers, UTF-8 names, [CLOSED], LIST in SELECT.
    assert!(!c.ok("FETCH 2 FLAGS").fetch(2).contains("\\Recent"));
    let r = c.ok("SEARCH UNSEEN");
    assert_eq!(
        r.untagged,
        vec![format!("* ESEARCH (TAG \"{}\") ALL 2:3", tag_of(&r))]
    );
    let r = c.ok("UID SEARCH UNSEEN FLAGGED");
    assert_eq!(
        r.untagged,
        vec![format!("* ESEARCH (TAG \"{}\") UID", tag_of(&r))]
    );
    let r = c.ok("LIST \"\" \"*rger\"");
    assert_eq!(
        r.line("* LIST").unwrap(),
        "* LIST (\\HasNoChildren) \".\" \"INBOX.Ärger\""
    );
    let r = c.ok("STATUS \"INBOX.Ärger\" (MESSAGES DELETED)");
    assert_eq!(
        r.line("* STATUS").unwrap(),
        "* STATUS \"INBOX.Ärger\" (MESSAGES 0 DELETED 0)"
    );
    c.ok("CREATE \"INBOX.Grüße\"");
    // On disk as Courier-IMAP 5 keeps names: UTF-8.
    assert!(m.join(".Grüße").is_dir(), "{:?}", t.tree());
    let r = c.ok("SELECT INBOX");
    assert!(r.untagged[0].starts_with("* OK [CLOSED]"), "{r:#?}");
    assert!(r.count("RECENT").is_none(), "{r:#?}");
    assert!(!r.contains("[UNSEEN"), "{r:#?}");
    assert_eq!(
        r.line("* LIST").unwrap(),
        "* LIST () \".\" \"INBOX\"",
        "{r:#?}"
    );
    let r = c.ok("SELECT \"INBOX.Ärger\"");
    assert!(r.contains("* LIST () \".\" \"INBOX.Ärger\""), "{r:#?}");

    // A delivery and an expunge: EXISTS and EXPUNGE, no RECENT.
    c.ok("SELECT INBOX");
    deliver(&m, &message("new", "4"));
    let r = c.ok("NOOP");
    assert_eq!(r.count("EXISTS"), Some(4), "{r:#?}");
    assert!(r.count("RECENT").is_none(), "{r:#?}");
    c.ok("STORE 4 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("EXPUNGE");
    assert_eq!(r.expunged(), vec![4]);
    assert!(r.count("RECENT").is_none(), "{r:#?}");
}

/// The tag of the command that gave `r`.
fn tag_of(r: &Response) -> &str {
    r.tagged.split(' ').next().unwrap()
}

#[test]
fn rev1_sessions_are_untouched_by_another_sessions_rev2() {
    let (t, m) = mailbox("rev2-other");
    let (_s, mut a) = preauth(&t, &m);
    let (_s2, mut b) = preauth(&t, &m);
    a.ok("ENABLE IMAP4rev2");
    a.ok("SELECT INBOX");
    let r = b.ok("SELECT INBOX");
    assert!(r.count("RECENT").is_some(), "{r:#?}");
    assert_eq!(b.ok("SEARCH ALL").search(), vec![1, 2, 3]);
}
