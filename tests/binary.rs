//! BINARY (RFC 3516): FETCH BINARY[part], BINARY.PEEK, BINARY.SIZE with the
//! part's Content-Transfer-Encoding undone, literal8 when the content has
//! NUL, NO [UNKNOWN-CTE], and APPEND of a literal8, whose parts the
//! maildir cannot keep byte for byte are stored in base64. Known answers.

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
fn append_literal8_with_nul_comes_back_exact() {
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
    // NUL cannot stay in a maildir file BODY[] could send: the part is
    // stored in base64.
    let stored = stored_starting_with(&maildir, b"Subject: bin");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0],
        b"Subject: bin\nMIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAF6ZXJvAA0K\n"
    );
    // And BINARY gives the content back in literal8.
    answer(&mut c, "b2", "SELECT INBOX");
    assert_eq!(
        answer(&mut c, "b3", "FETCH 2 BINARY.PEEK[1]"),
        b"* 2 FETCH (BINARY[1] ~{9}\r\n\x00\x01zero\x00\r\n)\r\nb3 OK FETCH completed.\r\n"
    );
}

/// The files in cur/ and new/ whose content starts with `prefix`.
fn stored_starting_with(maildir: &std::path::Path, prefix: &[u8]) -> Vec<Vec<u8>> {
    ["cur", "new"]
        .iter()
        .flat_map(|d| {
            let dir = maildir.join(d);
            files(&dir).into_iter().map(move |f| dir.join(f))
        })
        .map(|p| std::fs::read(p).unwrap())
        .filter(|b| b.starts_with(prefix))
        .collect()
}

/// The names of the files in cur/ and new/ whose content starts with `prefix`.
fn names_starting_with(maildir: &std::path::Path, prefix: &[u8]) -> Vec<String> {
    ["cur", "new"]
        .iter()
        .flat_map(|d| {
            let dir = maildir.join(d);
            files(&dir).into_iter().map(move |f| dir.join(f))
        })
        .filter(|p| std::fs::read(p).unwrap().starts_with(prefix))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// APPENDs `msg` as `literal` (`~{n}` or `{n}`), returns the tagged answer.
fn append(c: &mut DeflateClient, tag: &str, literal8: bool, msg: &[u8]) -> String {
    let tilde = if literal8 { "~" } else { "" };
    c.send(format!("{tag} APPEND INBOX {tilde}{{{}}}\r\n", msg.len()).as_bytes());
    let cont = c.read_line();
    assert!(cont.starts_with('+'), "{cont}");
    let mut rest = msg.to_vec();
    rest.extend_from_slice(b"\r\n");
    c.send(&rest);
    String::from_utf8_lossy(&c.read_until_tagged(tag)).into_owned()
}

/// The UID of an `[APPENDUID v uid]` answer.
fn appended_uid(answer: &str) -> u32 {
    let code = answer.split("[APPENDUID ").nth(1).expect("APPENDUID");
    let uid = code.split(']').next().unwrap().split(' ').nth(1).unwrap();
    uid.parse().unwrap()
}

/// imaptest's `append-binary`, byte for byte: one part, CTE binary, body
/// NUL, 8-bit, bare LFs and a CRLF.
const IMAPTEST_BINARY: &[u8] = b"From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x2d\xe4\x0a\x0d\x0a\x0a";

#[test]
fn append_binary_part_is_stored_in_base64() {
    let (_dir, _server, mut c, maildir, _plain) = session("binary-base64");
    let r = append(&mut c, "c1", true, IMAPTEST_BINARY);
    assert!(r.contains("c1 OK [APPENDUID"), "{r}");
    let uid = appended_uid(&r);
    // On disk: 7-bit, LF line ends, the part in base64 and its field saying so;
    // everything else as sent.
    let stored = stored_starting_with(&maildir, b"From: user@domain.org");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0],
        b"From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAC3kCg0KCg==\n"
    );
    assert!(stored[0].iter().all(|&b| b != 0 && b < 0x80));
    // The file's S= is the stored size.
    let names = names_starting_with(&maildir, b"From: user@domain.org");
    let size: String = names[0]
        .split(",S=")
        .nth(1)
        .expect("S=")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(size, stored[0].len().to_string(), "{names:?}");
    answer(&mut c, "c2", "SELECT INBOX");
    // BODY[1] is the base64 text, not the raw octets.
    assert_eq!(
        answer(&mut c, "c3", &format!("UID FETCH {uid} BODY.PEEK[1]")),
        format!(
            "* 2 FETCH (UID {uid} BODY[1] {{14}}\r\nAC3kCg0KCg==\r\n)\r\nc3 OK FETCH completed.\r\n"
        )
        .into_bytes()
    );
    // BINARY gives back exactly what was sent, in literal8, and its size.
    assert_eq!(
        answer(
            &mut c,
            "c4",
            &format!("UID FETCH {uid} (BINARY.SIZE[1] BINARY.PEEK[1])")
        ),
        [
            format!("* 2 FETCH (UID {uid} BINARY.SIZE[1] 7 BINARY[1] ~{{7}}\r\n").as_bytes(),
            b"\x00\x2d\xe4\x0a\x0d\x0a\x0a)\r\nc4 OK FETCH completed.\r\n",
        ]
        .concat()
    );
    let r = answer(&mut c, "c5", &format!("UID FETCH {uid} BODYSTRUCTURE"));
    assert!(
        String::from_utf8_lossy(&r)
            .contains("(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 14"),
        "{}",
        String::from_utf8_lossy(&r)
    );
}

#[test]
fn append_nested_binary_parts_are_stored_in_base64() {
    let (_dir, _server, mut c, maildir, _plain) = session("binary-nested");
    // A multipart holding a text part and a message/rfc822 whose own
    // multipart has a binary image (8-bit, bare LFs) and a text part; sent
    // as a plain literal, which may carry anything but NUL.
    let msg: &[u8] = b"Subject: nested\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nkept\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n\x89PNG\n\x1a\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nplain\r\n--i--\r\n--o--\r\n";
    let r = append(&mut c, "d1", false, msg);
    assert!(r.contains("d1 OK [APPENDUID"), "{r}");
    let uid = appended_uid(&r);
    let stored = stored_starting_with(&maildir, b"Subject: nested");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&stored[0]),
        "Subject: nested\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: text/plain\n\nkept\n--o\nContent-Type: message/rfc822\n\nSubject: inner\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=i\n\n--i\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORwoaCg==\n--i\nContent-Type: text/plain\n\nplain\n--i--\n--o--\n"
    );
    answer(&mut c, "d2", "SELECT INBOX");
    assert_eq!(
        answer(
            &mut c,
            "d3",
            &format!("UID FETCH {uid} (BINARY.SIZE[2.1] BINARY.PEEK[2.1] BINARY.PEEK[1])")
        ),
        [
            format!("* 2 FETCH (UID {uid} BINARY.SIZE[2.1] 7 BINARY[2.1] {{7}}\r\n").as_bytes(),
            b"\x89PNG\n\x1a\n BINARY[1] {4}\r\nkept)\r\nd3 OK FETCH completed.\r\n",
        ]
        .concat()
    );
}

#[test]
fn ordinary_append_is_stored_as_before() {
    let (_dir, _server, mut c, maildir, _plain) = session("binary-ordinary");
    // 8-bit text with a bare LF and the word binary: nothing to convert; only
    // CRLF becomes LF, as always.
    let msg: &[u8] = b"Subject: plain\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9, binary\nbare\r\n";
    let r = append(&mut c, "e1", false, msg);
    assert!(r.contains("e1 OK [APPENDUID"), "{r}");
    let stored = stored_starting_with(&maildir, b"Subject: plain");
    assert_eq!(
        stored,
        vec![b"Subject: plain\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9, binary\nbare\n".to_vec()]
    );
    // A binary part that survives the store as it is stays binary.
    let msg: &[u8] = b"Subject: survives\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n\xff\xfe\rx\r\n";
    let r = append(&mut c, "e2", true, msg);
    assert!(r.contains("e2 OK [APPENDUID"), "{r}");
    let stored = stored_starting_with(&maildir, b"Subject: survives");
    assert_eq!(
        stored,
        vec![b"Subject: survives\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\n\n\xff\xfe\rx\n".to_vec()]
    );
}

#[test]
fn spooled_append_with_binary_part_is_stored_in_base64() {
    let (_dir, _server, mut c, maildir, _plain) = session("binary-spooled");
    // Past the 1 MiB spool threshold, so the message arrives in a file;
    // the binary part comes last, after a megabyte of ordinary text, and its
    // content is every byte value, bare LFs included.
    let mut msg = b"Subject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    for _ in 0..20_000 {
        msg.extend_from_slice(
            b"a line of plain text, some seventy octets long to fill a megabyte.\r\n",
        );
    }
    msg.extend_from_slice(b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n");
    let content: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    msg.extend_from_slice(&content);
    msg.extend_from_slice(b"\r\n--b--\r\n");
    assert!(msg.len() > 1 << 20);
    let r = append(&mut c, "f1", true, &msg);
    assert!(r.contains("f1 OK [APPENDUID"), "{r}");
    let uid = appended_uid(&r);
    let stored = stored_starting_with(&maildir, b"Subject: big");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].iter().all(|&b| b != 0 && b < 0x80));
    let text = String::from_utf8_lossy(&stored[0]);
    assert!(
        text.contains("--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\n"),
        "{}",
        &text[text.len() - 300..]
    );
    assert!(
        text.ends_with("==\n--b--\n") || text.ends_with("\n--b--\n"),
        "{}",
        &text[text.len() - 100..]
    );
    answer(&mut c, "f2", "SELECT INBOX");
    assert_eq!(
        answer(
            &mut c,
            "f3",
            &format!("UID FETCH {uid} (BINARY.SIZE[2] BINARY.PEEK[2])")
        ),
        [
            format!("* 2 FETCH (UID {uid} BINARY.SIZE[2] 3000 BINARY[2] ~{{3000}}\r\n").as_bytes(),
            &content,
            b")\r\nf3 OK FETCH completed.\r\n",
        ]
        .concat()
    );
}

#[test]
fn multiappend_and_catenate_convert_each_message() {
    let (_dir, _server, mut c, maildir, _plain) = session("binary-multi");
    // MULTIAPPEND: a binary message and an ordinary one, in one command.
    let plain: &[u8] = b"Subject: second\r\n\r\nplain text\r\n";
    c.send(format!("g1 APPEND INBOX ~{{{}}}\r\n", IMAPTEST_BINARY.len()).as_bytes());
    assert!(c.read_line().starts_with('+'));
    let mut rest = IMAPTEST_BINARY.to_vec();
    rest.extend_from_slice(format!(" {{{}}}\r\n", plain.len()).as_bytes());
    c.send(&rest);
    assert!(c.read_line().starts_with('+'));
    c.send(&[plain, b"\r\n"].concat());
    let r = String::from_utf8_lossy(&c.read_until_tagged("g1")).into_owned();
    assert!(r.contains("g1 OK [APPENDUID"), "{r}");
    let stored = stored_starting_with(&maildir, b"From: user@domain.org");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].ends_with(b"Content-Transfer-Encoding: base64\n\nAC3kCg0KCg==\n"));
    assert_eq!(
        stored_starting_with(&maildir, b"Subject: second"),
        vec![b"Subject: second\n\nplain text\n".to_vec()]
    );

    // CATENATE: the header in one TEXT, the binary body in a literal8 TEXT;
    // the joined message is what gets converted.
    let header: &[u8] =
        b"Subject: joined\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n";
    let body: &[u8] = b"\x00\x2d\xe4\x0a\x0d\x0a\x0a";
    c.send(format!("g2 APPEND INBOX CATENATE (TEXT {{{}}}\r\n", header.len()).as_bytes());
    assert!(c.read_line().starts_with('+'));
    c.send(&[header, format!(" TEXT ~{{{}}}\r\n", body.len()).as_bytes()].concat());
    assert!(c.read_line().starts_with('+'));
    c.send(&[body, b")\r\n"].concat());
    let r = String::from_utf8_lossy(&c.read_until_tagged("g2")).into_owned();
    assert!(r.contains("g2 OK [APPENDUID"), "{r}");
    let uid = appended_uid(&r);
    assert_eq!(
        stored_starting_with(&maildir, b"Subject: joined"),
        vec![b"Subject: joined\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\nAC3kCg0KCg==\n".to_vec()]
    );
    answer(&mut c, "g3", "SELECT INBOX");
    let r = answer(&mut c, "g4", &format!("UID FETCH {uid} BINARY.PEEK[1]"));
    assert!(
        r.ends_with(
            b"BINARY[1] ~{7}\r\n\x00\x2d\xe4\x0a\x0d\x0a\x0a)\r\ng4 OK FETCH completed.\r\n"
        ),
        "{}",
        String::from_utf8_lossy(&r)
    );
}
