//! One write(2) per response burst (issue 8): a command's untagged and
//! tagged responses leave together when the session next waits for input,
//! so Nagle's algorithm never holds a second small segment back for the
//! client's delayed ACK. Counted as the kernel counts them: `syscw` in
//! /proc/<mdimapd pid>/io, around commands on a real TCP connection.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

/// Runs `cmd` and returns the response and the write calls it took. The
/// count is read once the tagged response has arrived, and again after a
/// moment (nothing may follow it).
fn writes_for(server: &Server, c: &mut Client, cmd: &str) -> (Response, u64) {
    let before = proc_io(server.pid(), "syscw");
    let r = c.cmd(cmd);
    let after = proc_io(server.pid(), "syscw");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        proc_io(server.pid(), "syscw"),
        after,
        "{cmd}: writes after the tagged response"
    );
    (r, after - before)
}

#[test]
fn every_response_burst_is_one_write() {
    let dir = TestDir::new("bursts");
    let (conf, _users, maildir) = dir.write_userfile();
    for n in 0..100 {
        put_cur(&maildir, &message(&format!("m{n}"), "body"), "");
    }
    let work = make_folder(&maildir, ".Work");
    put_cur(&work, &message("w", "x"), "");
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = mail_ids();
        chown_tree(&dir.join("home"), uid, gid);
    }
    let (server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    // Number the folders once, so that what follows only reads the store.
    c.ok("SELECT INBOX.Work");
    c.ok("SELECT INBOX");
    c.ok("UNSELECT");
    // The index of the folder left is written after UNSELECT's answer, before the next
    // command is read: a NOOP's answer comes after it.
    c.ok("NOOP");

    // The count is of every write(2) of the process. A read-write scan of
    // the folder that has something to write under the dot-lock also writes
    // the lock's content, `pid:host`, into tmp/courier.lock: one write that
    // is not an answer, counted here as `store_writes`. A scan with nothing
    // to write takes no lock (SELECT of the folder numbered above).
    for (cmd, store_writes) in [
        ("STATUS INBOX (MESSAGES UIDNEXT UNSEEN)", 0),
        ("STATUS INBOX.Work (MESSAGES RECENT)", 0),
        ("NAMESPACE", 0),
        ("LIST \"\" *", 0),
        ("SELECT INBOX", 0),
        ("FETCH 1:100 (UID FLAGS RFC822.SIZE)", 0),
        ("SEARCH UNSEEN", 0),
    ] {
        let (r, writes) = writes_for(&server, &mut c, cmd);
        assert!(r.is_ok(), "{cmd}: {r:#?}");
        assert!(
            !r.untagged.is_empty(),
            "{cmd}: a burst of several responses"
        );
        assert_eq!(
            writes,
            1 + store_writes,
            "{cmd}: {} responses in {writes} writes",
            r.untagged.len() + 1
        );
    }

    // NOOP with updates pending: another process sets \Seen on a message.
    let files = files(&maildir.join("cur"));
    let first = files.iter().find(|f| f.ends_with(":2,")).unwrap();
    fs::rename(
        maildir.join("cur").join(first),
        maildir.join("cur").join(format!("{first}S")),
    )
    .unwrap();
    // A change within the same clock tick as the last scan is not seen by
    // its timestamps; poll as a client would until the update arrives.
    let start = Instant::now();
    loop {
        let (r, writes) = writes_for(&server, &mut c, "NOOP");
        if r.untagged.iter().any(|l| l.contains("FETCH")) {
            // A renamed file is nothing for the UID database: no lock either.
            assert_eq!(writes, 1, "NOOP with updates: {r:#?}");
            break;
        }
        assert!(start.elapsed() < HANG_GUARD, "the flag change never showed");
        std::thread::sleep(Duration::from_millis(200));
    }
    c.ok("LOGOUT");
}

/// The same rule under COMPRESS=DEFLATE (RFC 4978): the burst is compressed
/// and sync-flushed at the same point, in one write.
#[test]
fn every_compressed_burst_is_one_write() {
    let dir = TestDir::new("bursts-deflate");
    let (conf, _users, maildir) = dir.write_userfile();
    for n in 0..100 {
        put_cur(&maildir, &message(&format!("m{n}"), "body"), "");
    }
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = mail_ids();
        chown_tree(&dir.join("home"), uid, gid);
    }
    let (server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    // Number the folder and write its index first (see above), so that
    // what follows only reads the store.
    c.ok("SELECT INBOX");
    c.ok("UNSELECT");
    c.ok("SELECT INBOX");
    // A folder changed within the current clock tick is rescanned by every
    // command until the tick is over (its timestamps cannot be trusted
    // yet), and each rescan writes the lock: wait, as a client would, until
    // a NOOP is an answer alone.
    let start = Instant::now();
    while writes_for(&server, &mut c, "NOOP").1 != 1 {
        assert!(start.elapsed() < HANG_GUARD, "the folder never settled");
        std::thread::sleep(Duration::from_millis(200));
    }
    c.ok("COMPRESS DEFLATE");
    let mut z = DeflateClient::from(&c);
    for (n, cmd) in [
        "FETCH 1:100 (UID FLAGS RFC822.SIZE)",
        "FETCH 1:20 BODY.PEEK[]",
        "SEARCH ALL",
        "LIST \"\" *",
        "NAMESPACE",
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("z{n}");
        let before = proc_io(server.pid(), "syscw");
        let got = z.cmd(&tag, cmd);
        let after = proc_io(server.pid(), "syscw");
        assert!(got.contains(&format!("{tag} OK")), "{cmd}: {got}");
        assert!(
            got.lines().count() > 1,
            "{cmd}: a burst of several responses"
        );
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            proc_io(server.pid(), "syscw"),
            after,
            "{cmd}: writes after the tagged response"
        );
        assert_eq!(after - before, 1, "{cmd}: {} writes", after - before);
    }
    let bye = z.cmd("z9", "LOGOUT");
    assert!(bye.contains("z9 OK"), "{bye}");
}
