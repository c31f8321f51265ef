//! NOTIFY (RFC 5465): between commands, without the client asking, a session hears of
//! deliveries, expunges and flag changes in the mailboxes it named (STATUS), in the
//! selected one (EXISTS, EXPUNGE, FETCH), of folders created and deleted and of
//! subscriptions (LIST) — whoever made the change: another session or an MTA writing
//! into the maildir. Real mdimapd processes on a maildir in a temporary directory.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

fn setup(name: &str) -> (TestDir, std::path::PathBuf, std::path::PathBuf) {
    let t = TestDir::new(name);
    let m = t.maildir();
    put_cur(&m, &message("inbox", "1"), "");
    let other = make_folder(&m, ".Other");
    put_cur(&other, &message("other", "1"), "S");
    (t, m, other)
}

/// The next line the server sends on its own, within the client's timeout.
fn next(c: &mut Client) -> String {
    c.read_line()
}

fn append(t: &TestDir, m: &Path, folder: &str) {
    let (_s, mut o) = preauth(t, m);
    let msg = message("appended", "by another session");
    o.ok(&format!("APPEND {folder} {{{}+}}\r\n{msg}", msg.len()));
    o.ok("LOGOUT");
}

#[test]
fn other_mailboxes_are_told_by_status_between_commands() {
    let (t, m, other) = setup("notify-status");
    let (_s, mut c) = preauth(&t, &m);
    assert!(c.ok("CAPABILITY").contains(" NOTIFY"));
    let r = c.ok("NOTIFY SET STATUS (MAILBOXES INBOX.Other (MessageNew MessageExpunge))");
    let status = r.line("* STATUS").unwrap_or_else(|| panic!("{r:#?}"));
    assert!(
        status.starts_with("* STATUS \"INBOX.Other\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "),
        "{status}"
    );
    // Another session appends; the client, sending nothing, hears of it.
    append(&t, &m, "INBOX.Other");
    let line = next(&mut c);
    assert!(
        line.starts_with("* STATUS \"INBOX.Other\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY "),
        "{line}"
    );
    // An MTA delivers into new/.
    deliver(&other, &message("delivered", "by the MTA"));
    let line = next(&mut c);
    assert!(
        line.starts_with("* STATUS \"INBOX.Other\" (MESSAGES 3 "),
        "{line}"
    );
    // Another session expunges one.
    let (_s2, mut o) = preauth(&t, &m);
    o.ok("SELECT INBOX.Other");
    o.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)");
    o.ok("EXPUNGE");
    o.ok("LOGOUT");
    let line = next(&mut c);
    assert!(
        line.starts_with("* STATUS \"INBOX.Other\" (MESSAGES 2 "),
        "{line}"
    );
    // A mailbox not named says nothing; commands work as ever.
    append(&t, &m, "INBOX");
    let r = c.ok("NOOP");
    assert!(r.untagged.is_empty(), "{r:#?}");
    // NOTIFY NONE: quiet again.
    c.ok("NOTIFY NONE");
    append(&t, &m, "INBOX.Other");
    match c.read_line_within(Duration::from_secs(2)) {
        Read1::Timeout => {}
        other => panic!("after NOTIFY NONE: {other:?}"),
    }
}

#[test]
fn flag_changes_and_the_status_items_each_event_calls_for() {
    let (t, m, _other) = setup("notify-flags");
    let (_s, mut c) = preauth(&t, &m);
    let r = c.ok("NOTIFY SET STATUS (MAILBOXES INBOX.Other (MessageExpunge))");
    assert_eq!(
        r.line("* STATUS").unwrap(),
        "* STATUS \"INBOX.Other\" (MESSAGES 1)"
    );
    let r = c.ok("NOTIFY SET STATUS (MAILBOXES INBOX.Other (FlagChange))");
    let line = r.line("* STATUS").unwrap();
    assert!(
        line.starts_with("* STATUS \"INBOX.Other\" (UIDVALIDITY ")
            && line.contains(" HIGHESTMODSEQ "),
        "{line}"
    );
    c.ok("ENABLE CONDSTORE");
    let r =
        c.ok("NOTIFY SET STATUS (MAILBOXES INBOX.Other (MessageNew MessageExpunge FlagChange))");
    let line = r.line("* STATUS").unwrap().clone();
    assert!(line.contains(" HIGHESTMODSEQ "), "{line}");
    // A flag change by another session.
    let (_s2, mut o) = preauth(&t, &m);
    o.ok("SELECT INBOX.Other");
    o.ok("UID STORE 1 -FLAGS (\\Seen)");
    o.ok("LOGOUT");
    let now = next(&mut c);
    assert!(
        now.starts_with("* STATUS \"INBOX.Other\" (MESSAGES 1 "),
        "{now}"
    );
    assert_ne!(now, line, "HIGHESTMODSEQ moved");
}

#[test]
fn the_selected_mailbox_is_told_as_a_command_would_tell_it() {
    let (t, m, _other) = setup("notify-selected");
    let (_s, mut c) = preauth(&t, &m);
    c.ok("SELECT INBOX");
    c.ok("NOTIFY SET (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange))");
    deliver(&m, &message("new", "arrives"));
    assert_eq!(next(&mut c), "* 2 EXISTS");
    assert_eq!(next(&mut c), "* 1 RECENT");
    assert_eq!(next(&mut c), "* 2 FETCH (UID 2 FLAGS (\\Recent))");
    let (_s2, mut o) = preauth(&t, &m);
    o.ok("SELECT INBOX");
    o.ok("UID STORE 1 +FLAGS (\\Flagged)");
    assert_eq!(next(&mut c), "* 1 FETCH (FLAGS (\\Flagged))");
    o.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(next(&mut c), "* 1 FETCH (FLAGS (\\Flagged \\Deleted))");
    o.ok("EXPUNGE");
    assert_eq!(next(&mut c), "* 1 EXPUNGE");

    // SELECTED-DELAYED: the expunge waits for a command that may report it.
    c.ok("NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge))");
    o.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    o.ok("EXPUNGE");
    deliver(&m, &message("newer", "arrives"));
    assert_eq!(next(&mut c), "* 2 EXISTS");
    let r = c.ok("FETCH 1 (UID)");
    assert!(r.expunged().is_empty(), "{r:#?}");
    let r = c.ok("NOOP");
    assert_eq!(r.expunged(), vec![1], "{r:#?}");
}

#[test]
fn folders_and_subscriptions() {
    let (t, m, _other) = setup("notify-names");
    let (_s, mut c) = preauth(&t, &m);
    c.ok("NOTIFY SET (PERSONAL (MailboxName SubscriptionChange))");
    let (_s2, mut o) = preauth(&t, &m);
    o.ok("CREATE INBOX.Fresh");
    assert_eq!(next(&mut c), "* LIST () \".\" \"INBOX.Fresh\"");
    o.ok("SUBSCRIBE INBOX.Fresh");
    assert_eq!(next(&mut c), "* LIST (\\Subscribed) \".\" \"INBOX.Fresh\"");
    o.ok("UNSUBSCRIBE INBOX.Fresh");
    assert_eq!(next(&mut c), "* LIST () \".\" \"INBOX.Fresh\"");
    o.ok("DELETE INBOX.Fresh");
    assert_eq!(next(&mut c), "* LIST (\\NonExistent) \".\" \"INBOX.Fresh\"");
}

#[test]
fn refused_events_and_syntax() {
    let (t, m, _other) = setup("notify-refused");
    let (_s, mut c) = preauth(&t, &m);
    let r = c.no("NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))");
    assert!(
        r.tagged.contains(
            "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
        ),
        "{r:#?}"
    );
    for bad in [
        "NOTIFY",
        "NOTIFY SET",
        "NOTIFY SET (PERSONAL)",
        "NOTIFY SET (NOWHERE (MessageNew))",
        "NOTIFY SET (PERSONAL (MessageNew (UID FLAGS)))",
        "NOTIFY SET (PERSONAL (NoSuchEvent))",
        "NOTIFY SET STATUS",
        "NOTIFY NONE extra",
    ] {
        let r = c.cmd(bad);
        assert!(r.is_bad(), "{bad}: {r:#?}");
    }
    c.ok("NOTIFY SET (INBOXES NONE) (SUBTREE (INBOX.Other) (MessageNew MessageExpunge))");
}

/// Without an inotify instance (the 129th session of one uid), a look every few seconds
/// still tells the client.
#[test]
fn without_inotify_a_look_every_few_seconds_still_tells() {
    let dir = TestDir::new("notify-no-inotify");
    let (conf, _users, maildir) = dir.write_userfile();
    let mut holder = hold_all_inotify_instances();
    let (server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("NOTIFY SET (INBOXES (MessageNew MessageExpunge))");
    deliver(&maildir, &message("arrives", "while notified"));
    let line = match c.read_line_within(Duration::from_secs(30)) {
        Read1::Line(l) => l,
        other => panic!("no STATUS without inotify: {other:?}"),
    };
    assert!(
        line.starts_with("* STATUS \"INBOX\" (MESSAGES 1 "),
        "{line}"
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        server.log_text().contains("NOTIFY without inotify"),
        "the session did run out of inotify instances: {}",
        server.log_text()
    );
    c.ok("LOGOUT");
}
