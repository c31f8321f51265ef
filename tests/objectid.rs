//! OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970) against a real mdimapd
//! on a real maildir: MAILBOXID kept in the folder's `mdimapmailboxid` and carried by
//! RENAME, EMAILID from the unique name (kept by flag changes and across sessions),
//! THREADID from the thread's root, SAVEDATE from the unique name's time.
//!
//! Like the other integration tests, this file drives a real mdimapd and does not use
//! the library.

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// The objectid in `KEY (id)` of `line`.
fn id_after(line: &str, key: &str) -> String {
    let at = find_ci(line, &format!("{key} (")).unwrap_or_else(|| panic!("no {key} in {line:?}"));
    let rest = &line[at + key.len() + 2..];
    let end = rest.find(')').unwrap_or_else(|| panic!("no ) in {line:?}"));
    let id = rest[..end].to_string();
    assert!(
        !id.is_empty()
            && id.len() <= 255
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "not an objectid: {id:?}"
    );
    id
}

/// The MAILBOXID STATUS gives for `name`.
fn status_id(c: &mut Client, name: &str) -> String {
    let r = c.ok(&format!("STATUS {name} (MAILBOXID MESSAGES)"));
    let line = r
        .line("* STATUS")
        .unwrap_or_else(|| panic!("no STATUS in {r:#?}"));
    id_after(line, "MAILBOXID")
}

fn fetch_id(c: &mut Client, n: u32, item: &str) -> String {
    let r = c.ok(&format!("FETCH {n} ({item})"));
    id_after(r.fetch(n), item)
}

fn recorded_id(folder: &Path) -> String {
    fs::read_to_string(folder.join("mdimapmailboxid"))
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn capabilities_are_advertised() {
    let t = TestDir::new("objectid-caps");
    let m = t.maildir();
    let (_s, mut c) = preauth(&t, &m);
    let caps = c.ok("CAPABILITY");
    let line = caps.line("* CAPABILITY").unwrap();
    for cap in [" OBJECTID", " SAVEDATE", " PREVIEW"] {
        assert!(line.contains(cap), "{cap} missing from {line}");
    }
    // RFC 8437: not offered (mdimapd(8) says why).
    assert!(!line.contains("UNAUTHENTICATE"), "{line}");
}

#[test]
fn mailboxid_is_kept_across_sessions_and_rename() {
    let t = TestDir::new("objectid-mailboxid");
    let m = t.maildir();
    let (_s, mut c) = preauth(&t, &m);
    let created = c.ok("CREATE INBOX.Work");
    assert!(created.tagged.contains("[MAILBOXID ("), "{created:#?}");
    let work = id_after(&created.tagged, "MAILBOXID");
    assert_eq!(recorded_id(&m.join(".Work")), work);
    let other = id_after(&c.ok("CREATE INBOX.Other").tagged, "MAILBOXID");
    assert_ne!(work, other, "distinct folders, distinct ids");
    let inbox = status_id(&mut c, "INBOX");
    assert_ne!(inbox, work);
    assert_eq!(recorded_id(&m), inbox);
    assert_eq!(status_id(&mut c, "INBOX.Work"), work);
    let sel = c.ok("SELECT INBOX.Work");
    let ok_line = sel
        .untagged
        .iter()
        .find(|l| l.contains("[MAILBOXID"))
        .unwrap_or_else(|| panic!("no MAILBOXID in {sel:#?}"));
    assert_eq!(id_after(ok_line, "MAILBOXID"), work);
    let ex = c.ok("EXAMINE INBOX");
    assert!(ex.contains(&format!("[MAILBOXID ({inbox})]")), "{ex:#?}");
    c.ok("LOGOUT");

    // Another session sees the same ids; RENAME keeps the id, with the directory.
    let (_s2, mut c2) = preauth(&t, &m);
    assert_eq!(status_id(&mut c2, "INBOX.Work"), work);
    assert_eq!(status_id(&mut c2, "INBOX"), inbox);
    c2.ok("RENAME INBOX.Work INBOX.Archive.Work");
    assert_eq!(status_id(&mut c2, "INBOX.Archive.Work"), work);
    assert_eq!(recorded_id(&m.join(".Archive.Work")), work);
    // A folder deleted and created again under the old name is another folder.
    c2.ok("DELETE INBOX.Other");
    let again = id_after(&c2.ok("CREATE INBOX.Other").tagged, "MAILBOXID");
    assert_ne!(again, other);
    // RENAME INBOX moves its messages to a new folder and leaves INBOX in place (RFC 3501
    // §6.3.5): INBOX keeps its id, the new folder has one of its own.
    c2.ok("RENAME INBOX INBOX.Old");
    assert_eq!(status_id(&mut c2, "INBOX"), inbox);
    let old = status_id(&mut c2, "INBOX.Old");
    assert!(old != inbox && old != work && old != again);
}

#[test]
fn emailid_survives_flag_changes_and_sessions() {
    let t = TestDir::new("objectid-emailid");
    let m = t.maildir();
    deliver(&m, &message("one", "first"));
    deliver(&m, &message("two", "second"));
    let (_s, mut c) = preauth(&t, &m);
    c.ok("SELECT INBOX");
    let one = fetch_id(&mut c, 1, "EMAILID");
    let two = fetch_id(&mut c, 2, "EMAILID");
    assert_ne!(one, two);
    let before = files(&m.join("cur"));
    c.ok("STORE 1 +FLAGS (\\Flagged \\Seen)");
    let after = files(&m.join("cur"));
    assert_ne!(before, after, "the flag change renamed the file");
    assert_eq!(fetch_id(&mut c, 1, "EMAILID"), one);
    let found = c.ok(&format!("SEARCH EMAILID {one}"));
    assert_eq!(found.search(), vec![1]);
    assert_eq!(c.ok("SEARCH EMAILID Mnosuchid").search(), Vec::<u32>::new());
    // A malformed objectid is a syntax error.
    assert!(c.cmd("SEARCH EMAILID a.b").is_bad());
    c.ok("LOGOUT");

    let (_s2, mut c2) = preauth(&t, &m);
    c2.ok("EXAMINE INBOX");
    assert_eq!(fetch_id(&mut c2, 1, "EMAILID"), one);
    assert_eq!(fetch_id(&mut c2, 2, "EMAILID"), two);
    // UID FETCH gives it too, beside the UID.
    let r = c2.ok("UID FETCH 1:* (EMAILID)");
    assert!(r.fetch(1).contains("UID "), "{r:#?}");
}

#[test]
fn threadid_follows_the_thread_root() {
    let t = TestDir::new("objectid-threadid");
    let m = t.maildir();
    deliver(
        &m,
        "From: a@example.org\nSubject: root\nMessage-ID: <root@example.org>\n\nroot\n",
    );
    deliver(
        &m,
        "From: b@example.org\nSubject: Re: root\nMessage-ID: <r1@example.org>\nIn-Reply-To: <root@example.org>\nReferences: <root@example.org>\n\nreply\n",
    );
    deliver(
        &m,
        "From: c@example.org\nSubject: other\nMessage-ID: <other@example.org>\n\nother\n",
    );
    deliver(&m, "From: d@example.org\nSubject: no ids\n\nnone\n");
    let (_s, mut c) = preauth(&t, &m);
    c.ok("SELECT INBOX");
    let ids: Vec<String> = (1..=4).map(|n| fetch_id(&mut c, n, "THREADID")).collect();
    assert_eq!(ids[0], ids[1], "a reply is in its root's thread");
    assert_ne!(ids[0], ids[2]);
    assert_ne!(ids[3], ids[0]);
    assert_ne!(ids[3], ids[2]);
    assert_eq!(
        c.ok(&format!("SEARCH THREADID {}", ids[0])).search(),
        vec![1, 2]
    );
    // Asked together with other items, from what the index keeps, the same.
    let r = c.ok("FETCH 2 (FLAGS THREADID EMAILID)");
    assert_eq!(id_after(r.fetch(2), "THREADID"), ids[1]);
    c.ok("LOGOUT");
    let (_s2, mut c2) = preauth(&t, &m);
    c2.ok("EXAMINE INBOX");
    assert_eq!(fetch_id(&mut c2, 4, "THREADID"), ids[3]);
}

/// Puts a message into `folder/cur/` under a unique name made at `secs`, its file
/// modified at `mtime` (its INTERNALDATE).
fn put_saved_at(folder: &Path, secs: u64, n: u32, content: &str, mtime: u64) {
    let name = format!("{secs}.M{n}P1.savedate,S={}:2,", content.len());
    let path = folder.join("cur").join(name);
    fs::write(&path, content).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    set_file_mtime(&path, when);
}

#[test]
fn savedate_comes_from_the_unique_name() {
    let t = TestDir::new("objectid-savedate");
    let m = t.maildir();
    // Saved 9 Sep 2001 13:46:40 UTC (the same day in any zone within ten hours);
    // INTERNALDATE years later, so SAVEDATE is not the file's mtime.
    put_saved_at(&m, 1_000_036_800, 1, &message("old", "x"), 1_300_000_000);
    let (_s, mut c) = preauth(&t, &m);
    c.ok("SELECT INBOX");
    c.ok(&format!(
        "APPEND INBOX {}",
        lit(&crlf(&message("new", "y")))
    ));
    c.ok("NOOP");
    let r = c.ok("FETCH 1:2 (SAVEDATE INTERNALDATE)");
    let one = r.fetch(1);
    assert!(one.contains("SAVEDATE \" 9-Sep-2001 "), "{one}");
    assert!(!one.contains("INTERNALDATE \" 9-Sep-2001"), "{one}");
    let two = r.fetch(2);
    assert!(!two.contains("2001"), "{two}");
    assert_eq!(c.ok("SEARCH SAVEDON 9-Sep-2001").search(), vec![1]);
    assert_eq!(c.ok("SEARCH SAVEDBEFORE 1-Jan-2002").search(), vec![1]);
    assert_eq!(c.ok("SEARCH SAVEDSINCE 1-Jan-2020").search(), vec![2]);
    assert_eq!(c.ok("SEARCH SAVEDATESUPPORTED").search(), vec![1, 2]);
    // A flag change renames the file: the save date stays.
    c.ok("STORE 1 +FLAGS (\\Answered)");
    let again = c.ok("FETCH 1 (SAVEDATE)");
    assert!(
        again.fetch(1).contains("SAVEDATE \" 9-Sep-2001 "),
        "{again:#?}"
    );
    // COPY saves anew: the copy's save date is not 2001.
    c.ok("CREATE INBOX.Kept");
    c.ok("COPY 1 INBOX.Kept");
    c.ok("SELECT INBOX.Kept");
    assert_eq!(c.ok("SEARCH SAVEDSINCE 1-Jan-2020").search(), vec![1]);
    assert!(c.cmd("SEARCH SAVEDSINCE 31-Foo-2020").is_bad());
}

#[test]
fn preview_is_the_start_of_the_text() {
    let t = TestDir::new("objectid-preview");
    let m = t.maildir();
    deliver(
        &m,
        "From: a@example.org\nSubject: p\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nHello   wor=\nld,\n\nsecond =C3=A9 line\n",
    );
    let long = "word ".repeat(100);
    deliver(&m, &message("long", &long));
    let (_s, mut c) = preauth(&t, &m);
    c.ok("EXAMINE INBOX");
    let r = c.ok("FETCH 1 (PREVIEW)");
    // Non-ASCII text comes as a literal.
    let line = r.fetch(1);
    assert!(line.contains("PREVIEW {"), "{line}");
    let text = string_after(line, "PREVIEW ").unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "Hello world, second é line"
    );
    let lazy = c.ok("FETCH 2 (PREVIEW (LAZY))");
    let text = String::from_utf8(string_after(lazy.fetch(2), "PREVIEW ").unwrap()).unwrap();
    assert_eq!(text.chars().count(), 199, "{text:?}");
    assert!(text.starts_with("word word"));
    assert!(c.cmd("FETCH 1 (PREVIEW (EAGER))").is_bad());
    // PREVIEW is a FETCH of the text, not a read of it: \Seen is not set.
    assert!(!c.ok("FETCH 1 (FLAGS)").fetch(1).contains("\\Seen"));
}
