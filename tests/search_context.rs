//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267): a SEARCH or SORT with `RETURN (UPDATE)`
//! kept current with `ADDTO` and `REMOVEFROM` while another session changes flags, a
//! delivery arrives in new/ and another session expunges (REMOVEFROM before the EXPUNGE,
//! in the numbers the client still knows); this session's own STORE and FETCH; IDLE;
//! CANCELUPDATE; the limit on updating searches; PARTIAL ranges. Each test talks to real
//! mdimapd processes on a maildir in a temporary directory; the answers were worked out
//! by hand from the RFC's rules.

mod common;

use common::*;
use std::path::Path;

/// The tag the first `ESEARCH (TAG "...")` line of `r` carries.
fn search_tag(r: &Response) -> String {
    let l = r
        .line("* ESEARCH (TAG \"")
        .unwrap_or_else(|| panic!("no ESEARCH in {r:#?}"));
    let rest = &l["* ESEARCH (TAG \"".len()..];
    rest[..rest.find('"').expect("closing quote")].to_string()
}

/// The ESEARCH lines of `r` that belong to the search tagged `tag`, without the prefix,
/// in the order they came.
fn updates<'a>(r: &'a Response, tag: &str) -> Vec<&'a str> {
    let prefix = format!("* ESEARCH (TAG \"{tag}\") ");
    r.untagged
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect()
}

/// Where the first untagged line equal to `line` is in `r`.
fn position(r: &Response, line: &str) -> usize {
    r.untagged
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no {line:?} in {r:#?}"))
}

fn put(m: &Path, subjects: &[(&str, &str)]) {
    for (subject, flags) in subjects {
        put_cur(m, &message(subject, &format!("text of {subject}")), flags);
    }
}

/// The flags of the file in cur/ whose text is `text of <subject>`.
fn flags_on_disk(m: &Path, subject: &str) -> String {
    let found = cur_files_containing(m, &format!("text of {subject}"));
    assert_eq!(found.len(), 1, "{subject}: {found:?}");
    flags_of_name(&found[0])
}

#[test]
fn updating_search_follows_other_sessions_deliveries_and_own_changes() {
    let t = TestDir::new("context-search");
    let m = t.maildir();
    put(
        &m,
        &[
            ("alpha", "S"),
            ("bravo", "S"),
            ("charlie", ""),
            ("delta", ""),
        ],
    );
    let (_s, mut a) = preauth(&t, &m);
    let caps = a.ok("CAPABILITY");
    assert!(
        caps.contains(" CONTEXT=SEARCH") && caps.contains(" CONTEXT=SORT"),
        "{caps:#?}"
    );
    a.ok("SELECT INBOX");
    let r = a.ok("SEARCH RETURN (UPDATE ALL) SEEN");
    let seen = search_tag(&r);
    assert_eq!(updates(&r, &seen), ["ALL 1:2"]);
    // UPDATE alone asks for no result now, only for the changes to come.
    let r = a.ok("UID SEARCH RETURN (UPDATE) UNSEEN");
    let unseen = search_tag(&r);
    assert!(
        r.untagged
            .contains(&format!("* ESEARCH (TAG \"{unseen}\") UID")),
        "{r:#?}"
    );

    // Another session changes flags: message 3 starts matching SEEN, message 1 stops.
    let (_s2, mut b) = preauth(&t, &m);
    b.ok("SELECT INBOX");
    b.ok("STORE 3 +FLAGS (\\Seen)");
    b.ok("STORE 1 -FLAGS (\\Seen)");
    let r = a.ok("NOOP");
    assert_eq!(
        updates(&r, &seen),
        ["REMOVEFROM (0 1)", "ADDTO (0 3)"],
        "{r:#?}"
    );
    assert_eq!(
        updates(&r, &unseen),
        ["UID REMOVEFROM (0 3)", "UID ADDTO (0 1)"],
        "{r:#?}"
    );

    // A delivery into new/: an unseen message, added after the EXISTS that shows it.
    deliver(&m, &message("echo", "text of echo"));
    let r = a.ok("NOOP");
    assert_eq!(updates(&r, &unseen), ["UID ADDTO (0 5)"], "{r:#?}");
    assert!(updates(&r, &seen).is_empty(), "{r:#?}");
    assert!(
        position(&r, "* 5 EXISTS")
            < position(&r, &format!("* ESEARCH (TAG \"{unseen}\") UID ADDTO (0 5)"))
    );

    // Another session expunges message 3 (seen): REMOVEFROM names it as 3, before the
    // EXPUNGE that renumbers.
    b.ok("STORE 3 +FLAGS (\\Deleted)");
    let r = b.ok("EXPUNGE");
    assert_eq!(r.expunged(), [3]);
    let r = a.ok("NOOP");
    assert_eq!(updates(&r, &seen), ["REMOVEFROM (0 3)"], "{r:#?}");
    assert!(updates(&r, &unseen).is_empty(), "{r:#?}");
    assert!(
        position(&r, &format!("* ESEARCH (TAG \"{seen}\") REMOVEFROM (0 3)"))
            < position(&r, "* 3 EXPUNGE"),
        "{r:#?}"
    );
    assert_eq!(files(&m.join("cur")).len(), 4);
    assert!(files(&m.join("new")).is_empty());

    // This session's own STORE and a FETCH that sets \Seen are reported in their own
    // answers. Now 1 alpha, 2 bravo, 3 delta (UID 4), 4 echo (UID 5).
    let r = a.ok("STORE 3 +FLAGS (\\Seen)");
    assert_eq!(updates(&r, &seen), ["ADDTO (0 3)"], "{r:#?}");
    assert_eq!(updates(&r, &unseen), ["UID REMOVEFROM (0 4)"], "{r:#?}");
    let r = a.ok("FETCH 1 BODY[TEXT]");
    assert_eq!(updates(&r, &seen), ["ADDTO (0 1)"], "{r:#?}");
    assert_eq!(updates(&r, &unseen), ["UID REMOVEFROM (0 1)"], "{r:#?}");
    assert!(flags_on_disk(&m, "alpha").contains('S'));
    assert!(flags_on_disk(&m, "delta").contains('S'));
    // What the updates built is what a new search finds.
    let r = a.ok("SEARCH SEEN");
    assert_eq!(r.search(), [1, 2, 3]);
    let r = a.ok("UID SEARCH UNSEEN");
    assert_eq!(r.search(), [5]);
    // A change that does not move a message in or out says nothing.
    let r = a.ok("STORE 1 +FLAGS (\\Flagged)");
    assert!(r.line("* ESEARCH").is_none(), "{r:#?}");
}

#[test]
fn updating_sort_says_where_messages_go() {
    let t = TestDir::new("context-sort");
    let m = t.maildir();
    put(
        &m,
        &[("bravo", ""), ("delta", ""), ("alpha", ""), ("charlie", "")],
    );
    let (_s, mut a) = preauth(&t, &m);
    a.ok("SELECT INBOX");
    let r = a.ok("SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN");
    let up = search_tag(&r);
    // alpha(3) bravo(1) charlie(4) delta(2)
    assert_eq!(updates(&r, &up), ["ALL 3,1,4,2"]);
    let r = a.ok("UID SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 UNSEEN");
    let down = search_tag(&r);
    // delta(2) charlie(4) bravo(1) alpha(3)

    let (_s2, mut b) = preauth(&t, &m);
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Seen)");
    let r = a.ok("NOOP");
    assert_eq!(updates(&r, &up), ["REMOVEFROM (2 1)"], "{r:#?}");
    assert_eq!(updates(&r, &down), ["UID REMOVEFROM (3 1)"], "{r:#?}");

    // "beta" arrives: alpha beta charlie delta; delta charlie beta alpha.
    deliver(&m, &message("beta", "text of beta"));
    let r = a.ok("NOOP");
    assert_eq!(updates(&r, &up), ["ADDTO (2 5)"], "{r:#?}");
    assert_eq!(updates(&r, &down), ["UID ADDTO (3 5)"], "{r:#?}");
    assert!(
        position(&r, "* 5 EXISTS") < position(&r, &format!("* ESEARCH (TAG \"{up}\") ADDTO (2 5)"))
    );

    // delta (message 2) is expunged by the other session.
    b.ok("STORE 2 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    let r = a.ok("NOOP");
    assert_eq!(updates(&r, &up), ["REMOVEFROM (4 2)"], "{r:#?}");
    assert_eq!(updates(&r, &down), ["UID REMOVEFROM (1 2)"], "{r:#?}");
    let expunge = position(&r, "* 2 EXPUNGE");
    assert!(position(&r, &format!("* ESEARCH (TAG \"{up}\") REMOVEFROM (4 2)")) < expunge);
    assert!(
        position(
            &r,
            &format!("* ESEARCH (TAG \"{down}\") UID REMOVEFROM (1 2)")
        ) < expunge
    );

    // bravo (now message 1) is unseen again: alpha beta bravo charlie.
    b.ok("STORE 1 -FLAGS (\\Seen)");
    let r = a.ok("NOOP");
    assert_eq!(updates(&r, &up), ["ADDTO (3 1)"], "{r:#?}");
    assert_eq!(updates(&r, &down), ["UID ADDTO (2 1)"], "{r:#?}");
    // alpha(2) beta(4) bravo(1) charlie(3), as a new SORT finds.
    let r = a.ok("SORT (SUBJECT) UTF-8 UNSEEN");
    assert_eq!(r.line("* SORT").map(String::as_str), Some("* SORT 2 4 1 3"));
    assert_eq!(files(&m.join("cur")).len(), 4);
}

#[test]
fn updates_reach_an_idling_client() {
    let t = TestDir::new("context-idle");
    let m = t.maildir();
    put(&m, &[("alpha", ""), ("bravo", "")]);
    let (_s, mut a) = preauth(&t, &m);
    a.ok("SELECT INBOX");
    let r = a.ok("SEARCH RETURN (UPDATE) FLAGGED");
    let tag = search_tag(&r);
    let idle = a.tag();
    a.send(format!("{idle} IDLE\r\n").as_bytes());
    assert!(a.read_line().starts_with('+'));
    let (_s2, mut b) = preauth(&t, &m);
    b.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS (\\Flagged)");
    // Waited for as an event: the bound only turns a hang into a failure.
    let want = format!("* ESEARCH (TAG \"{tag}\") ADDTO (0 2)");
    let mut seen = Vec::new();
    loop {
        match a.read_line_within(HANG_GUARD) {
            Read1::Line(l) if l == want => break,
            Read1::Line(l) => seen.push(l),
            other => panic!("no {want} ({other:?}); got {seen:#?}"),
        }
    }
    a.send(b"DONE\r\n");
    let r = a.read_until_tagged(&idle, vec![]);
    assert!(r.is_ok(), "{r:#?}");
}

#[test]
fn cancelupdate_and_the_end_of_the_mailbox_end_updates() {
    let t = TestDir::new("context-cancel");
    let m = t.maildir();
    put(&m, &[("alpha", ""), ("bravo", "")]);
    let (_s, mut a) = preauth(&t, &m);
    // Not in the authenticated state.
    assert!(a.cmd("CANCELUPDATE \"t1\"").is_bad());
    a.ok("SELECT INBOX");
    let r = a.ok("SEARCH RETURN (UPDATE) SEEN");
    let first = search_tag(&r);
    let r = a.ok("SEARCH RETURN (UPDATE COUNT) SEEN");
    let second = search_tag(&r);
    assert_eq!(updates(&r, &second), ["COUNT 0"]);
    a.ok(&format!("CANCELUPDATE \"{first}\""));
    // Cancelled once is unknown after.
    let r = a.cmd(&format!("CANCELUPDATE \"{first}\""));
    assert!(r.is_bad(), "{r:#?}");
    assert!(a.cmd("CANCELUPDATE nosuchtag").is_bad());
    assert!(a.cmd("CANCELUPDATE").is_bad());

    let (_s2, mut b) = preauth(&t, &m);
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Seen)");
    let r = a.ok("NOOP");
    assert!(updates(&r, &first).is_empty(), "{r:#?}");
    assert_eq!(updates(&r, &second), ["ADDTO (0 1)"], "{r:#?}");

    // SELECT ends every updating search of the mailbox left.
    a.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS (\\Seen)");
    let r = a.ok("NOOP");
    assert!(r.line("* ESEARCH").is_none(), "{r:#?}");
    assert!(a.cmd(&format!("CANCELUPDATE \"{second}\"")).is_bad());
    assert!(flags_on_disk(&m, "bravo").contains('S'));
}

#[test]
fn too_many_updating_searches_are_answered_with_noupdate() {
    let t = TestDir::new("context-limit");
    let m = t.maildir();
    put(&m, &[("alpha", "S")]);
    let (_s, mut a) = preauth(&t, &m);
    a.ok("SELECT INBOX");
    for _ in 0..32 {
        let r = a.ok("SEARCH RETURN (UPDATE ALL) SEEN");
        assert!(r.line("* NO").is_none(), "{r:#?}");
    }
    let r = a.ok("SEARCH RETURN (UPDATE ALL) SEEN");
    let tag = search_tag(&r);
    assert_eq!(updates(&r, &tag), ["ALL 1"]);
    let no = r.line("* NO").unwrap_or_else(|| panic!("{r:#?}"));
    assert!(
        no.starts_with(&format!("* NO [NOUPDATE \"{tag}\"]")),
        "{no}"
    );
    // That one is not kept current; the first 32 are.
    let r = a.ok("STORE 1 -FLAGS (\\Seen)");
    assert!(updates(&r, &tag).is_empty());
    assert_eq!(
        r.untagged
            .iter()
            .filter(|l| l.ends_with(" REMOVEFROM (0 1)"))
            .count(),
        32,
        "{r:#?}"
    );
}

#[test]
fn partial_ranges() {
    let t = TestDir::new("context-partial");
    let m = t.maildir();
    put(
        &m,
        &[
            ("echo", ""),
            ("delta", ""),
            ("charlie", ""),
            ("bravo", ""),
            ("alpha", ""),
        ],
    );
    let (_s, mut a) = preauth(&t, &m);
    a.ok("SELECT INBOX");
    let answer = |a: &mut Client, cmd: &str| -> String {
        let r = a.ok(cmd);
        let tag = search_tag(&r);
        let got = updates(&r, &tag);
        assert_eq!(got.len(), 1, "{r:#?}");
        got[0].to_string()
    };
    // RFC 5267 §4.4: positions from 1, either way round, NIL past the end.
    for (cmd, want) in [
        ("SEARCH RETURN (PARTIAL 1:1) ALL", "PARTIAL (1:1 1)"),
        ("SEARCH RETURN (PARTIAL 4:2) ALL", "PARTIAL (2:4 2:4)"),
        ("SEARCH RETURN (PARTIAL 1:6) ALL", "PARTIAL (1:6 1:5)"),
        ("SEARCH RETURN (PARTIAL 6:6) ALL", "PARTIAL (6:6 NIL)"),
        ("SEARCH RETURN (PARTIAL 2:3) 1:2,4:5", "PARTIAL (2:3 2,4)"),
        (
            "SEARCH RETURN (COUNT PARTIAL 2:10) 1:2,4:5",
            "COUNT 4 PARTIAL (2:10 2,4:5)",
        ),
        // RFC 9394: counted back from the last.
        ("SEARCH RETURN (PARTIAL -1:-2) ALL", "PARTIAL (-1:-2 4:5)"),
        ("SEARCH RETURN (PARTIAL -5:-9) ALL", "PARTIAL (-5:-9 1)"),
        ("SEARCH RETURN (PARTIAL -6:-9) ALL", "PARTIAL (-6:-9 NIL)"),
        // SORT: the slice of the sorted result, in its order (alpha is 5, echo 1).
        (
            "SORT RETURN (PARTIAL 2:4) (SUBJECT) UTF-8 ALL",
            "PARTIAL (2:4 4,3,2)",
        ),
        (
            "SORT RETURN (PARTIAL 1:2) (REVERSE SUBJECT) UTF-8 ALL",
            "PARTIAL (1:2 1:2)",
        ),
    ] {
        assert_eq!(answer(&mut a, cmd), want, "{cmd}");
    }
    // UID positions count the messages there are, not UIDs.
    a.ok("STORE 2 +FLAGS (\\Deleted)");
    a.ok("EXPUNGE");
    assert_eq!(
        answer(&mut a, "UID SEARCH RETURN (PARTIAL 2:2) ALL"),
        "UID PARTIAL (2:2 3)"
    );
    assert_eq!(
        answer(&mut a, "UID SEARCH RETURN (PARTIAL 5:10) ALL"),
        "UID PARTIAL (5:10 NIL)"
    );
    for bad in [
        "SEARCH RETURN (PARTIAL 1) ALL",
        "SEARCH RETURN (PARTIAL 1:*) ALL",
        "SEARCH RETURN (PARTIAL *:1) ALL",
        "SEARCH RETURN (PARTIAL 0:2) ALL",
        "SEARCH RETURN (PARTIAL -1:2) ALL",
        "SEARCH RETURN (PARTIAL 1:2 ALL) ALL",
        "SORT RETURN (PARTIAL 1) (ARRIVAL) UTF-8 ALL",
    ] {
        let r = a.cmd(bad);
        assert!(r.is_bad(), "{bad}: {r:#?}");
    }
    // An unknown charset is still a NO with its code.
    let r = a.cmd("SEARCH RETURN (PARTIAL 1:2) CHARSET X-UNKNOWN SUBJECT a");
    assert!(r.is_no() && r.text().starts_with("[BADCHARSET"), "{r:#?}");
}

#[test]
fn with_qresync_removefrom_comes_before_vanished() {
    let t = TestDir::new("context-qresync");
    let m = t.maildir();
    put(&m, &[("alpha", "S"), ("bravo", "S"), ("charlie", "")]);
    let (_s, mut a) = preauth(&t, &m);
    a.ok("ENABLE QRESYNC");
    a.ok("SELECT INBOX");
    let r = a.ok("SEARCH RETURN (UPDATE ALL) SEEN");
    let seen = search_tag(&r);
    assert_eq!(updates(&r, &seen), ["ALL 1:2"]);
    let (_s2, mut b) = preauth(&t, &m);
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    let r = a.ok("NOOP");
    assert_eq!(updates(&r, &seen), ["REMOVEFROM (0 1)"], "{r:#?}");
    assert!(
        position(&r, &format!("* ESEARCH (TAG \"{seen}\") REMOVEFROM (0 1)"))
            < position(&r, "* VANISHED 1"),
        "{r:#?}"
    );
    assert!(r.line("* 1 EXPUNGE").is_none(), "{r:#?}");
    let r = a.ok("SEARCH RETURN (ALL) SEEN");
    assert_eq!(updates(&r, &search_tag(&r)), ["ALL 1"]);
}
