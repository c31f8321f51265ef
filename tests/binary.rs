//! BINARY (RFC 3516): FETCH BINARY[part], BINARY.PEEK, BINARY.SIZE with the
//! part's Content-Transfer-Encoding undone, literal8 when the content has
//! NUL, NO [UNKNOWN-CTE], and APPEND of a literal8. Known answers.

mod common;

use common::*;

const MIXED: &str = "From: a@example.org\r
To: b@example.org\r
Subject: binary\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=\"XX\"\r
\r
--XX\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: quoted-printable\r
\r
caf=C3=A9 =3D ok=\r
 end\r
--XX\r
Content-Type: application/octet-stream\r
Content-Transfer-Encoding: Base64\r
\r
AAECA2hlbGxvAA==\r
--XX\r
Content-Type: application/x-odd\r
Content-Transfer-Encoding: x-uuencode\r
\r
begin 644 x\r
--XX--\r
";

fn session(name: &str) -> (TestDir, Server, DeflateClient, std::path::PathBuf, Client) {
    let dir = TestDir::new(name);
    let (conf, _users, maildir) = dir.write_userfile();
    put_cur(&maildir, MIXED, "");
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = mail_ids();
        chown_tree(&dir.join("home"), uid, gid);
    }
    let (server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    let r = c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.tagged.contains(" BINARY"), "{r:#?}");
    let raw = DeflateClient::uncompressed(&c);
    (dir, server, raw, maildir, c)
}

fn answer(c: &mut DeflateClient, tag: &str, cmd: &str) -> Vec<u8> {
    c.send_and_read_bytes(tag, cmd)
}

#[test]
fn binary_fetch_known_answers() {
    let (_dir, _server, mut c, maildir, _plain) = session("binary-fetch");
    let r = answer(&mut c, "a1", "SELECT INBOX");
    assert!(String::from_utf8_lossy(&r).contains("a1 OK [READ-WRITE]"));

    // quoted-printable, soft line break and all.
    assert_eq!(
        answer(&mut c, "a2", "FETCH 1 BINARY.PEEK[1]"),
        b"* 1 FETCH (BINARY[1] {14}\r\ncaf\xc3\xa9 = ok end)\r\na2 OK FETCH completed.\r\n"
    );
    // base64 with NUL in it: literal8.
    assert_eq!(
        answer(&mut c, "a3", "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.SIZE[1])"),
        b"* 1 FETCH (BINARY[2] ~{10}\r\n\x00\x01\x02\x03hello\x00 BINARY.SIZE[2] 10 BINARY.SIZE[1] 14)\r\na3 OK FETCH completed.\r\n"
    );
    // Partial, of the decoded content; no NUL in the slice, a plain literal.
    assert_eq!(
        answer(&mut c, "a4", "FETCH 1 BINARY.PEEK[2]<4.5>"),
        b"* 1 FETCH (BINARY[2]<4> {5}\r\nhello)\r\na4 OK FETCH completed.\r\n"
    );
    // An encoding BINARY cannot undo.
    let r = answer(&mut c, "a5", "FETCH 1 BINARY.PEEK[3]");
    assert!(
        r.starts_with(b"a5 NO [UNKNOWN-CTE]"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = answer(&mut c, "a6", "FETCH 1 BINARY.SIZE[3]");
    assert!(
        r.starts_with(b"a6 NO [UNKNOWN-CTE]"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    // A part that is not there: empty, as BODY[] answers it.
    assert_eq!(
        answer(&mut c, "a7", "FETCH 1 BINARY.PEEK[7]"),
        b"* 1 FETCH (BINARY[7] {0}\r\n)\r\na7 OK FETCH completed.\r\n"
    );
    // Nothing so far set \Seen; BINARY without .PEEK does.
    assert_eq!(flags_of_name(&files(&maildir.join("cur"))[0]), "");
    assert_eq!(
        answer(&mut c, "a8", "FETCH 1 BINARY[1]<0.3>"),
        b"* 1 FETCH (BINARY[1]<0> {3}\r\ncaf FLAGS (\\Seen))\r\na8 OK FETCH completed.\r\n"
    );
    assert_eq!(flags_of_name(&files(&maildir.join("cur"))[0]), "S");
    // Bad syntax: BINARY takes part numbers only.
    let r = answer(&mut c, "a9", "FETCH 1 BINARY[1.TEXT]");
    assert!(r.starts_with(b"a9 BAD"), "{}", String::from_utf8_lossy(&r));
}

#[test]
fn append_literal8_keeps_nul() {
    let (_dir, _server, mut c, maildir, _plain) = session("binary-append");
    let msg: &[u8] = b"Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01zero\x00\r\n";
    let mut cmd = format!("b1 APPEND INBOX ~{{{}}}\r\n", msg.len()).into_bytes();
    c.send(&cmd);
    let cont = c.read_line();
    assert!(cont.starts_with('+'), "{cont}");
    cmd = msg.to_vec();
    cmd.extend_from_slice(b"\r\n");
    c.send(&cmd);
    let r = c.read_until_tagged("b1");
    assert!(
        String::from_utf8_lossy(&r).contains("b1 OK [APPENDUID"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    // Stored as sent, NUL and all.
    let stored: Vec<Vec<u8>> = ["cur", "new"]
        .iter()
        .flat_map(|d| {
            let dir = maildir.join(d);
            files(&dir).into_iter().map(move |f| dir.join(f))
        })
        .map(|p| std::fs::read(p).unwrap())
        .filter(|b| b.starts_with(b"Subject: bin"))
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].windows(7).any(|w| w == b"\x00\x01zero\x00"),
        "{:?}",
        stored[0]
    );
    // And BINARY gives the content back in literal8.
    answer(&mut c, "b2", "SELECT INBOX");
    assert_eq!(
        answer(&mut c, "b3", "FETCH 2 BINARY.PEEK[1]"),
        b"* 2 FETCH (BINARY[1] ~{9}\r\n\x00\x01zero\x00\r\n)\r\nb3 OK FETCH completed.\r\n"
    );
}
