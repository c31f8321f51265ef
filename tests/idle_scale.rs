//! IDLE when the kernel gives no more inotify instances (issue 8, IDLE at
//! scale): virtual users share one uid, and Linux allows that uid 128
//! instances by default, so the 129th IDLE session has none. It must still
//! see a delivery promptly, by checking the folder's timestamps twice a
//! second rather than rescanning every IMAP_IDLE_TIMEOUT (60 s). And a
//! thousand sessions woken by one delivery into the folder they share must
//! not queue for the folder's dot-lock to learn of it.
//!
//! In a test binary of its own: it exhausts the mail user's instances, which
//! would change what other tests running beside it see.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn idle_without_inotify_still_sees_a_delivery() {
    let dir = TestDir::new("idle-no-inotify");
    let (conf, _users, maildir) = dir.write_userfile();
    // IMAP_IDLE_TIMEOUT stays at its 60 s default: only the half-second
    // check can report the delivery within the wait below.
    let mut holder = hold_all_inotify_instances();

    let (server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("SELECT INBOX");
    let tag = c.tag();
    c.send(format!("{tag} IDLE\r\n").as_bytes());
    assert!(c.read_line().starts_with('+'));
    deliver(&maildir, &message("arrives", "while idle"));
    let start = Instant::now();
    let exists = loop {
        match c.read_line_within(Duration::from_secs(30)) {
            Read1::Line(l) if l.contains("EXISTS") => break l,
            Read1::Line(_) => continue,
            other => panic!("no EXISTS during IDLE without inotify: {other:?}"),
        }
    };
    eprintln!("delivery seen after {:?}: {exists}", start.elapsed());
    c.send(b"DONE\r\n");
    let r = c.read_until_tagged(&tag, Vec::new());
    assert!(r.is_ok(), "{r:#?}");
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        server.log_text().contains("IDLE without inotify"),
        "the session did run out of inotify instances: {}",
        server.log_text()
    );
    c.ok("LOGOUT");
}

/// Once one session has numbered a delivery (and claimed it as `\Recent`), the others
/// learn of it without the folder's dot-lock: they would write nothing under it. Shown
/// with the lock held by another live process all along, as Courier's imapd or
/// maildrop might hold it: a session that needed the lock would wait for it, give up
/// after 30 s and report nothing.
#[test]
fn a_numbered_delivery_is_learnt_without_the_dot_lock() {
    let t = TestDir::new("idle-unlocked-rescan");
    let m = t.maildir();
    deliver(&m, &message("first", "one"));
    let (_sa, mut a) = preauth(&t, &m);
    let (_sb, mut b) = preauth(&t, &m);
    assert_eq!(a.ok("SELECT INBOX").count("EXISTS"), Some(1));
    assert_eq!(b.ok("SELECT INBOX").count("EXISTS"), Some(1));
    deliver(&m, &message("second", "two"));
    // B moves it to cur/, numbers it and claims it.
    let r = b.ok("NOOP");
    assert_eq!(
        (r.count("EXISTS"), r.count("RECENT")),
        (Some(2), Some(1)),
        "{r:#?}"
    );
    // A live process of this host holds the lock from now on.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let holder = Command::new("sleep").arg("120").spawn().unwrap();
    let lock = m.join("tmp/courier.lock");
    std::fs::write(&lock, format!("{}:{}", holder.id(), host.trim())).unwrap();
    let r = a.ok("NOOP");
    // A's one recent message is still the first: B claimed the second.
    assert_eq!(
        (r.count("EXISTS"), r.count("RECENT")),
        (Some(2), Some(1)),
        "{r:#?}"
    );
    let r = a.ok("FETCH 2 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        r.fetch(2).contains("UID 2") && r.fetch(2).contains("second"),
        "{r:#?}"
    );
    assert!(!has_flag(r.fetch(2), "\\Recent"), "{r:#?}");
    assert!(lock.exists(), "the other process's lock was left alone");
    std::fs::remove_file(&lock).unwrap();
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
    a.ok("LOGOUT");
    b.ok("LOGOUT");
}
