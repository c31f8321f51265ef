//! A message another process expunged, which this session has not been told about yet
//! (RFC 2180 §4.1): FETCH, SEARCH and SORT naming it are answered as Dovecot 2.3 answers
//! them. The same script runs against the real Dovecot (from its Debian packages, by
//! tests/common) and mdimapd, each with two sessions on its own copy of one maildir, and the
//! transcripts must be equal. mdimapd(8), EXPUNGED MESSAGES, states the choice.
//!
//! Black-box: only what a client sees.

mod common;

use common::*;

/// Session A's commands once session B has expunged message 2 (A was told of its
/// `\Deleted` flag first, so both servers know the same flags). Only BODY.PEEK: Dovecot
/// sets `\Seen` on a gone message for a non-peek fetch, which has no file to go on here.
const SCRIPT: [&str; 26] = [
    "SEARCH ALL",
    "SEARCH DELETED",
    "SEARCH UID 2",
    "SEARCH 2",
    "SEARCH TEXT word",
    "SEARCH SUBJECT msg2",
    "SEARCH BODY body2",
    "SEARCH LARGER 1",
    "SEARCH BEFORE 1-Jan-2100",
    "SEARCH SENTBEFORE 1-Jan-2100",
    "SEARCH HEADER Subject msg",
    "SEARCH OR DELETED TEXT word",
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (SIZE) UTF-8 UNDELETED",
    "FETCH 2 FLAGS",
    "FETCH 2 (UID FLAGS)",
    "FETCH 2 INTERNALDATE",
    "FETCH 2 (UID RFC822.SIZE)",
    "FETCH 2 ENVELOPE",
    "FETCH 2 BODY",
    "FETCH 2 BODYSTRUCTURE",
    "FETCH 2 (BODY.PEEK[] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[HEADER])",
    "FETCH 2 (BODY.PEEK[]<0.10> BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    "FETCH 1:3 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    "UID FETCH 1:* (FLAGS)",
    "SEARCH ALL",
];

/// One line of a transcript as compared: the tag and the human text of a tagged line
/// go (the status and the response code stay); Dovecot's zero-padded day of month and
/// mdimap's space-padded one (both RFC 3501 `date-day-fixed`) read alike.
fn normalized(line: &str) -> String {
    let line = line.replace("\"01-Jan-1970", "\" 1-Jan-1970");
    if line.starts_with('*') || line.starts_with('+') {
        return line;
    }
    let mut words = line.splitn(3, ' ').skip(1);
    let status = words.next().unwrap_or("").to_string();
    match words.next() {
        Some(rest) if rest.starts_with('[') => {
            let code = rest.split(']').next().unwrap_or(rest);
            format!("{status} {code}]")
        }
        _ => status,
    }
}

fn transcript(a: &mut Client, b: &mut Client) -> Vec<String> {
    let mut lines = Vec::new();
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    let r = a.ok("NOOP");
    assert!(r.contains("\\Deleted"), "A must learn the flag: {r:#?}");
    b.ok("EXPUNGE");
    for command in SCRIPT {
        let r = a.cmd(command);
        lines.push(format!("C: {command}"));
        lines.extend(r.untagged.iter().map(|l| format!("S: {}", normalized(l))));
        lines.push(format!("S: {}", normalized(&r.tagged)));
    }
    lines
}

fn maildir(t: &TestDir) -> std::path::PathBuf {
    let m = dovecot_maildir(t);
    for i in 1..=3 {
        deliver(&m, &message(&format!("msg{i}"), &format!("body{i} word")));
    }
    let (uid, gid, _, _) = mail_account();
    chown_tree(&m, uid, gid);
    m
}

#[test]
fn fetch_search_and_sort_of_a_message_expunged_elsewhere_answer_as_dovecot() {
    let t = TestDir::new("expunged-dovecot");
    let m = maildir(&t);
    let (_d1, mut a) = dovecot_preauth(&t, &m);
    let (_d2, mut b) = dovecot_preauth(&t, &m);
    let dovecot = transcript(&mut a, &mut b);

    let t = TestDir::new("expunged-mdimap");
    let m = maildir(&t);
    let (_s1, mut a) = mdimapd_preauth(&t, &m);
    let (_s2, mut b) = mdimapd_preauth(&t, &m);
    let mdimap = transcript(&mut a, &mut b);

    for (n, (d, o)) in dovecot.iter().zip(&mdimap).enumerate() {
        assert_eq!(
            d,
            o,
            "line {n} differs (Dovecot, then mdimap); Dovecot's transcript:\n{}\nmdimap's:\n{}",
            dovecot.join("\n"),
            mdimap.join("\n")
        );
    }
    assert_eq!(dovecot.len(), mdimap.len(), "{mdimap:#?}");
    // The gone message's placeholders, as they were compared.
    let text = mdimap.join("\n");
    assert!(
        text.contains("S: * 2 FETCH (BODY[] NIL BODY[TEXT] NIL"),
        "{text}"
    );
    assert!(text.contains("S: OK [EXPUNGEISSUED]"), "{text}");
}
