//! COMPRESS=DEFLATE (RFC 4978): after `COMPRESS DEFLATE` both directions are
//! raw deflate (RFC 1951). Checked by inflating what comes over the wire and
//! comparing it with what a plain session answers to the same commands, with
//! a large FETCH, IDLE, and the rule that each burst is sync-flushed.

mod common;

use common::*;

fn mailbox(dir: &TestDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let (conf, _users, maildir) = dir.write_userfile();
    for n in 0..20 {
        put_cur(
            &maildir,
            &message(&format!("m{n}"), &"body line\n".repeat(n)),
            "",
        );
    }
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = mail_ids();
        chown_tree(&dir.join("home"), uid, gid);
    }
    (conf, maildir)
}

/// The commands both sessions run, read-only so both see the same mailbox.
const SCRIPT: &[&str] = &[
    "CAPABILITY",
    "EXAMINE INBOX",
    "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)",
    "FETCH 3 BODY.PEEK[]",
    "UID SEARCH ALL",
    "LIST \"\" *",
    "STATUS INBOX (MESSAGES UIDNEXT)",
];

#[test]
fn compressed_answers_are_the_plain_answers_deflated() {
    let dir = TestDir::new("compress-same");
    let (conf, _maildir) = mailbox(&dir);
    let args = ["--config", conf.to_str().unwrap()];

    let (_plain_server, mut plain) = spawn_mdimapd(&dir, &args);
    plain.ok(&format!("LOGIN {USER} {PASSWORD}"));
    let mut p = DeflateClient::uncompressed(&plain);
    let expected: Vec<String> = SCRIPT
        .iter()
        .enumerate()
        .map(|(i, cmd)| p.cmd(&format!("s{i}"), cmd))
        .collect();
    // The first session writes the folder's index as it leaves, so the second opens the
    // folder from it and says the same HIGHESTMODSEQ (two sessions scanning a folder
    // without an index at once number it each at its own time: maildir/modseq.rs).
    drop(p);
    plain.ok("LOGOUT");

    let (_server, mut c) = spawn_mdimapd(&dir, &args);
    let login = c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(login.text().contains("COMPRESS=DEFLATE"), "{login:#?}");
    // Before login it is not offered.
    assert!(!c.greeting.contains("COMPRESS"), "{}", c.greeting);
    let r = c.ok("COMPRESS DEFLATE");
    assert!(r.untagged.is_empty(), "{r:#?}");
    let mut z = DeflateClient::from(&c);
    for (i, (cmd, plain)) in SCRIPT.iter().zip(&expected).enumerate() {
        let tag = format!("s{i}");
        let got = z.cmd(&tag, cmd);
        assert!(got.contains(&format!("{tag} OK")), "{cmd}: {got}");
        assert_eq!(&got, plain, "{cmd}");
    }
    // Every answer came sync-flushed: each burst ends with the empty stored
    // block, so nothing of it was held back in the compressor ...
    assert!(!z.wire.is_empty());
    assert!(z.wire.last().unwrap().ends_with(&[0, 0, 0xff, 0xff]));
    // ... and what crossed the wire was not the plain text.
    let wire: Vec<u8> = z.wire.concat();
    assert!(
        !wire.windows(6).any(|w| w == b"FETCH "),
        "plaintext on the wire"
    );

    // A second COMPRESS is refused, inside the compressed stream.
    let again = z.cmd("z1", "COMPRESS DEFLATE");
    assert!(again.starts_with("z1 NO [COMPRESSIONACTIVE]"), "{again}");
    let bye = z.cmd("z2", "LOGOUT");
    assert!(bye.contains("* BYE") && bye.contains("z2 OK"), "{bye}");
}

#[test]
fn compress_is_refused_before_login_and_for_other_mechanisms() {
    let dir = TestDir::new("compress-refused");
    let (conf, _maildir) = mailbox(&dir);
    let (_server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    let r = c.cmd("COMPRESS DEFLATE");
    assert!(r.is_bad(), "{r:#?}");
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    let r = c.cmd("COMPRESS LZMA");
    assert!(r.is_bad(), "{r:#?}");
    // Still plain: the session goes on uncompressed.
    c.ok("NOOP");
}

#[test]
fn large_fetch_append_and_idle_through_deflate() {
    let dir = TestDir::new("compress-large");
    let (conf, maildir) = mailbox(&dir);
    // 3 MB that compresses poorly (so several buffers' worth go over the
    // wire) but is plain text.
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut body = String::new();
    while body.len() < 3 * 1024 * 1024 {
        for _ in 0..76 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.push((b'!' + (seed % 90) as u8) as char);
        }
        body.push('\n');
    }
    let big = message("big", &body);
    let file = put_cur(&maildir, &big, "");
    // The server sends the message with CRLF line ends.
    let on_disk = crlf(&std::fs::read_to_string(&file).unwrap()).into_bytes();

    let (_server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("COMPRESS DEFLATE");
    let mut z = DeflateClient::from(&c);
    let r = z.cmd("a1", "SELECT INBOX");
    assert!(r.contains("* 21 EXISTS") && r.contains("a1 OK"), "{r}");
    let r = z.send_and_read_bytes("a2", "FETCH 21 BODY.PEEK[]");
    let head = format!("* 21 FETCH (BODY[] {{{}}}\r\n", on_disk.len());
    assert!(
        r.starts_with(head.as_bytes()),
        "{}",
        String::from_utf8_lossy(&r[..100])
    );
    assert_eq!(&r[head.len()..head.len() + on_disk.len()], &on_disk[..]);
    assert!(String::from_utf8_lossy(&r[head.len() + on_disk.len()..]).contains(")\r\na2 OK"));
    assert!(z.wire.len() > 1, "3 MB arrived in one read");

    // APPEND with a synchronizing literal: the continuation request must
    // arrive flushed, or this would wait for ever.
    let msg = crlf(&message("appended", "through deflate"));
    z.send(format!("a3 APPEND INBOX {{{}}}\r\n", msg.len()).as_bytes());
    let cont = z.read_line();
    assert!(cont.starts_with("+"), "{cont}");
    z.send(format!("{msg}\r\n").as_bytes());
    let r = String::from_utf8_lossy(&z.read_until_tagged("a3")).into_owned();
    assert!(r.contains("a3 OK [APPENDUID"), "{r}");
    assert!(
        cur_files_containing(&maildir, "through deflate").len() + files(&maildir.join("new")).len()
            >= 1
    );

    // IDLE: the continuation, then an update for a delivery, then DONE.
    z.send(b"a4 IDLE\r\n");
    let cont = z.read_line();
    assert!(cont.starts_with("+"), "{cont}");
    deliver(&maildir, &message("during idle", "x"));
    let start = std::time::Instant::now();
    loop {
        let line = z.read_line();
        if line == "* 23 EXISTS" {
            break;
        }
        assert!(start.elapsed() < HANG_GUARD, "no EXISTS: {line}");
    }
    z.send(b"DONE\r\n");
    let r = String::from_utf8_lossy(&z.read_until_tagged("a4")).into_owned();
    assert!(r.contains("a4 OK"), "{r}");
}
