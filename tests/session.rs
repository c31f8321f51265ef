//! Whole IMAP sessions against the real binaries over real sockets, each checking
//! both what the client sees and what lands in the maildir on disk.
//!
//! These tests own the observable contract of `mdimapd` and `mdimap-listen`; they
//! must not reach into the library (no `use mdimap::...`): a client and an
//! administrator only see bytes on the wire and files on disk.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread;
use std::time::Duration;

const REQUIRED_CAPABILITIES: [&str; 10] = [
    "IMAP4rev1",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "CHILDREN",
    "LITERAL+",
    "ID",
    "ENABLE",
    "UNSELECT",
    "MOVE",
];

/// A preauthenticated session on a fresh maildir.
fn setup(name: &str) -> (TestDir, std::path::PathBuf, Server, Client) {
    let t = TestDir::new(name);
    let m = t.maildir();
    let (s, c) = preauth(&t, &m);
    (t, m, s, c)
}

fn assert_capabilities(words: &[String], context: &str) {
    for cap in REQUIRED_CAPABILITIES {
        assert!(
            words.iter().any(|w| w.eq_ignore_ascii_case(cap)),
            "{cap} missing from {context}: {words:?}"
        );
    }
}

/// The words of the response code `[name ...]` in any line of `r`.
fn code_in(r: &Response, name: &str) -> Vec<String> {
    r.code(name)
        .unwrap_or_else(|| panic!("no [{name} ...] in {r:#?}"))
}

fn num_code(r: &Response, name: &str) -> u32 {
    code_in(r, name)[0].parse().unwrap()
}

fn login_cmd() -> String {
    format!("LOGIN {USER} {PASSWORD}")
}

fn exists_dir(p: &Path) -> bool {
    p.is_dir()
}

/// Contents (as text) of the only file in `dir`.
fn only_file(dir: &Path) -> (String, String) {
    let names = files(dir);
    assert_eq!(
        names.len(),
        1,
        "expected exactly one file in {}: {names:?}",
        dir.display()
    );
    let content = fs::read_to_string(dir.join(&names[0])).unwrap();
    (names[0].clone(), content)
}

// ---------------------------------------------------------------------------
// Greeting, capabilities, authentication
// ---------------------------------------------------------------------------

#[test]
fn greeting_and_capability() {
    let (_t, _m, _s, mut c) = setup("caps");
    let greeting_caps =
        code(&c.greeting, "CAPABILITY").expect("PREAUTH greeting must carry [CAPABILITY ...]");
    assert_capabilities(&greeting_caps, "the PREAUTH greeting");
    let r = c.ok("CAPABILITY");
    let line = r
        .line("* CAPABILITY ")
        .unwrap_or_else(|| panic!("no * CAPABILITY in {r:#?}"));
    let words: Vec<String> = line
        .split_whitespace()
        .skip(2)
        .map(str::to_string)
        .collect();
    assert_capabilities(&words, "CAPABILITY");
    let r = c.ok("LOGOUT");
    assert!(r.line("* BYE").is_some(), "LOGOUT must send * BYE: {r:#?}");
    c.read_to_eof(HANG_GUARD);
}

#[test]
fn login_mode_refuses_commands_before_authentication() {
    let t = TestDir::new("prelogin");
    let (_s, mut c, m) = login_mode(&t);
    let caps = code(&c.greeting, "CAPABILITY").expect("greeting must carry [CAPABILITY ...]");
    assert!(
        caps.iter().any(|w| w.eq_ignore_ascii_case("IMAP4rev1")),
        "{caps:?}"
    );
    c.ok("CAPABILITY");
    c.ok("NOOP");
    for cmd in [
        "SELECT INBOX",
        "EXAMINE INBOX",
        "LIST \"\" \"*\"",
        "CREATE INBOX.Sneaky",
        "STATUS INBOX (MESSAGES)",
        "FETCH 1 (FLAGS)",
        "UID FETCH 1 (FLAGS)",
        "EXPUNGE",
        "ENABLE UTF8=ACCEPT",
        "APPEND INBOX {5}\r\nhello",
    ] {
        c.refused(cmd);
    }
    // A huge literal before login is refused without the server waiting for it.
    c.refused("LOGIN {999999999999}\r\n");
    assert!(
        !m.join(".Sneaky").exists(),
        "CREATE before login created a folder"
    );
    assert!(files(&m.join("cur")).is_empty() && files(&m.join("new")).is_empty());
    let r = c.ok(&login_cmd());
    assert!(r.is_ok());
    c.ok("SELECT INBOX");
}

#[test]
fn login_success_and_failure() {
    let t = TestDir::new("login");
    t.write_userfile();
    deliver(&t.join("home/Maildir"), &message("for the tester", "hi"));
    let (_s, mut c, m) = login_mode(&t);
    let r = c.no(&format!("LOGIN {USER} wrong-password"));
    assert!(
        code(&r.tagged, "AUTHENTICATIONFAILED").is_some(),
        "expected NO [AUTHENTICATIONFAILED]: {r:#?}"
    );
    let r = c.no("LOGIN nosuchuser whatever");
    assert!(
        code(&r.tagged, "AUTHENTICATIONFAILED").is_some(),
        "expected NO [AUTHENTICATIONFAILED]: {r:#?}"
    );
    // The password as a synchronizing literal.
    c.ok(&format!("LOGIN \"{USER}\" {}", lit(PASSWORD)));
    let r = c.ok("SELECT INBOX");
    assert_eq!(
        r.count("EXISTS"),
        Some(1),
        "the user's own maildir must be served: {r:#?}"
    );
    assert!(m.join("courierimapuiddb").exists());
    // Authenticated state: a second LOGIN is refused.
    c.refused(&login_cmd());
}

#[test]
fn authenticate_plain_with_initial_response() {
    let t = TestDir::new("authir");
    let (_s, mut c, _m) = login_mode(&t);
    let wrong = base64(format!("\0{USER}\0not-it").as_bytes());
    let r = c.no(&format!("AUTHENTICATE PLAIN {wrong}"));
    assert!(code(&r.tagged, "AUTHENTICATIONFAILED").is_some(), "{r:#?}");
    let right = base64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    c.ok(&format!("AUTHENTICATE PLAIN {right}"));
    c.ok("SELECT INBOX");
}

#[test]
fn authenticate_plain_with_continuation() {
    let t = TestDir::new("authcont");
    let (_s, mut c, _m) = login_mode(&t);
    // The client cancels with `*`: BAD.
    let tag = c.tag();
    c.send(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes());
    let l = c.read_line();
    assert!(l.starts_with('+'), "expected a continuation, got {l}");
    c.send(b"*\r\n");
    let r = c.read_until_tagged(&tag, vec![]);
    assert!(r.is_bad(), "a cancelled AUTHENTICATE must be BAD: {r:#?}");
    // Then a real exchange.
    let tag = c.tag();
    c.send(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes());
    let l = c.read_line();
    assert!(l.starts_with('+'), "expected a continuation, got {l}");
    c.send(format!("{}\r\n", base64(format!("\0{USER}\0{PASSWORD}").as_bytes())).as_bytes());
    let r = c.read_until_tagged(&tag, vec![]);
    assert!(r.is_ok(), "{r:#?}");
    c.ok("SELECT INBOX");
}

#[test]
fn passwd_hash_is_accepted_at_login() {
    use std::process::{Command, Stdio};
    let mut p = Command::new(env!("CARGO_BIN_EXE_mdimap"))
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin
        .take()
        .unwrap()
        .write_all(b"other-secret\n")
        .unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mdimap passwd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        hash.starts_with("$6$"),
        "mdimap passwd must print a SHA-512-crypt hash, got {hash:?}"
    );
    let t = TestDir::new("passwd");
    let (_conf, users, _m) = t.write_userfile();
    let line = fs::read_to_string(&users)
        .unwrap()
        .replace(PASSWORD_HASH, &hash);
    fs::write(&users, line).unwrap();
    let (_s, mut c, _m) = login_mode(&t);
    c.ok(&format!("LOGIN {USER} other-secret"));
}

// ---------------------------------------------------------------------------
// SELECT, EXAMINE, \Recent
// ---------------------------------------------------------------------------

#[test]
fn select_reports_state_and_writes_uiddb() {
    let t = TestDir::new("select");
    let m = t.maildir();
    let a = put_cur(&m, &message("one", "first"), "S");
    let b = put_cur(&m, &message("two", "second"), "");
    // Numbered by an earlier session; only the message in new/ is \Recent.
    write_uiddb(&m, 795_769_177, 3, &[(1, &a), (2, &b)]);
    let n = deliver(&m, &message("three", "third"));
    let (_s, mut c) = preauth(&t, &m);
    let r = c.ok("SELECT INBOX");
    assert!(r.line("* FLAGS (").is_some(), "{r:#?}");
    assert_eq!(r.count("EXISTS"), Some(3), "{r:#?}");
    assert_eq!(r.count("RECENT"), Some(1), "{r:#?}");
    let permanent = code_in(&r, "PERMANENTFLAGS").join(" ");
    for f in [
        "\\Seen",
        "\\Deleted",
        "\\Flagged",
        "\\Answered",
        "\\Draft",
        "\\*",
    ] {
        assert!(
            permanent.contains(f),
            "PERMANENTFLAGS lacks {f}: {permanent}"
        );
    }
    assert!(code(&r.tagged, "READ-WRITE").is_some(), "{r:#?}");

    // The message in new/ moved to cur/ with an empty info suffix.
    assert!(
        files(&m.join("new")).is_empty(),
        "new/ must be emptied by SELECT"
    );
    let cur = files(&m.join("cur"));
    assert_eq!(cur.len(), 3);
    let n_base = n.file_name().unwrap().to_str().unwrap();
    assert!(cur.iter().any(|f| f == &format!("{n_base}:2,")), "{cur:?}");

    let db = read_uiddb(&m);
    assert_eq!(
        db.uidvalidity, 795_769_177,
        "an existing UIDVALIDITY must be kept"
    );
    assert_eq!(
        num_code(&r, "UIDVALIDITY"),
        db.uidvalidity,
        "UIDVALIDITY must be the uiddb's"
    );
    assert_eq!(num_code(&r, "UIDNEXT"), 4);
    assert_eq!(db.nextuid, 4);
    let base = |p: &Path| base_of(p.file_name().unwrap().to_str().unwrap()).to_string();
    assert_eq!(
        db.entries,
        vec![(1, base(&a)), (2, base(&b)), (3, n_base.to_string())]
    );

    let r = c.ok("FETCH 1:3 (UID FLAGS)");
    for (i, (seq, line)) in r.fetches().into_iter().enumerate() {
        assert_eq!(seq as usize, i + 1);
        assert_eq!(number_after(line, "UID "), Some(seq as u64));
    }
    assert!(has_flag(r.fetch(1), "\\Seen"));
    assert!(!has_flag(r.fetch(2), "\\Seen"));
    assert!(has_flag(r.fetch(3), "\\Recent"));
    assert!(!has_flag(r.fetch(1), "\\Recent"));

    // A missing mailbox.
    c.no("SELECT INBOX.Missing");
}

#[test]
fn recent_belongs_to_exactly_one_session() {
    let t = TestDir::new("recent");
    let m = t.maildir();
    deliver(&m, &message("first", "x"));
    let (_s1, mut a) = preauth(&t, &m);
    let (_s2, mut b) = preauth(&t, &m);
    let ra = a.ok("SELECT INBOX");
    let rb = b.ok("SELECT INBOX");
    assert_eq!(ra.count("RECENT"), Some(1), "{ra:#?}");
    assert_eq!(rb.count("RECENT"), Some(0), "{rb:#?}");
    assert!(has_flag(a.ok("FETCH 1 (FLAGS)").fetch(1), "\\Recent"));
    assert!(!has_flag(b.ok("FETCH 1 (FLAGS)").fetch(1), "\\Recent"));

    deliver(&m, &message("second", "y"));
    let na = a.ok("NOOP");
    let nb = b.ok("NOOP");
    assert_eq!(na.count("EXISTS"), Some(2), "{na:#?}");
    assert_eq!(nb.count("EXISTS"), Some(2), "{nb:#?}");
    let fa = has_flag(a.ok("FETCH 2 (FLAGS)").fetch(2), "\\Recent");
    let fb = has_flag(b.ok("FETCH 2 (FLAGS)").fetch(2), "\\Recent");
    assert!(
        fa ^ fb,
        "exactly one session must see message 2 as \\Recent (a: {fa}, b: {fb})"
    );
}

#[test]
fn examine_is_read_only_and_leaves_new_alone() {
    let t = TestDir::new("examine");
    let m = t.maildir();
    let old = put_cur(&m, &message("old", "seen before"), "");
    write_uiddb(&m, 795_700_002, 2, &[(1, &old)]);
    let fresh = deliver(&m, &message("fresh", "new mail"));
    let (_s, mut c) = preauth(&t, &m);
    let r = c.ok("EXAMINE INBOX");
    assert!(code(&r.tagged, "READ-ONLY").is_some(), "{r:#?}");
    assert_eq!(r.count("EXISTS"), Some(2), "{r:#?}");
    assert!(fresh.exists(), "EXAMINE must leave new/ alone");
    // BODY[] on a read-only mailbox does not set \Seen.
    c.ok("FETCH 1 (BODY[])");
    assert!(
        old.exists(),
        "FETCH BODY[] in EXAMINE renamed the file: {:?}",
        files(&m.join("cur"))
    );
    c.refused("STORE 1 +FLAGS (\\Flagged)");
    assert!(old.exists());
    drop(c);
    // \Recent was not consumed by EXAMINE.
    let (_s2, mut c2) = preauth(&t, &m);
    let r = c2.ok("SELECT INBOX");
    assert_eq!(
        r.count("RECENT"),
        Some(1),
        "EXAMINE must not take \\Recent away: {r:#?}"
    );
}

// ---------------------------------------------------------------------------
// Folders
// ---------------------------------------------------------------------------

#[test]
fn create_delete_rename_on_disk() {
    let (_t, m, _s, mut c) = setup("folders");
    c.ok("CREATE INBOX.A");
    for sub in ["cur", "new", "tmp"] {
        assert!(exists_dir(&m.join(".A").join(sub)), ".A/{sub} missing");
    }
    assert!(
        m.join(".A/maildirfolder").is_file(),
        ".A/maildirfolder missing"
    );
    c.ok("CREATE INBOX.A.B");
    assert!(exists_dir(&m.join(".A.B/cur")));
    let r = c.no("CREATE INBOX.A");
    assert!(code(&r.tagged, "ALREADYEXISTS").is_some(), "{r:#?}");
    put_cur(&m.join(".A"), &message("in A", "x"), "S");

    c.ok("RENAME INBOX.A INBOX.C");
    assert!(
        !m.join(".A").exists() && !m.join(".A.B").exists(),
        "{:?}",
        files(&m)
    );
    assert!(
        exists_dir(&m.join(".C/cur")) && exists_dir(&m.join(".C.B/cur")),
        "children must move too"
    );
    assert_eq!(files(&m.join(".C/cur")).len(), 1);
    let r = c.ok("LIST \"\" \"*\"");
    let names: Vec<String> = list_entries(&r, "LIST")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names.contains(&"INBOX.C.B".to_string()) && !names.iter().any(|n| n.starts_with("INBOX.A")),
        "{names:?}"
    );
    c.no("RENAME INBOX.Nope INBOX.D");
    c.ok("CREATE INBOX.E");
    let r = c.no("RENAME INBOX.C INBOX.E");
    assert!(code(&r.tagged, "ALREADYEXISTS").is_some(), "{r:#?}");

    c.ok("DELETE INBOX.C.B");
    assert!(!m.join(".C.B").exists());
    c.no("DELETE INBOX.C.B");
    c.refused("DELETE INBOX");
    assert!(exists_dir(&m.join("cur")));

    // RENAME INBOX moves its messages into the new folder and leaves INBOX empty.
    put_cur(&m, &message("inbox one", "1"), "");
    put_cur(&m, &message("inbox two", "2"), "S");
    c.ok("RENAME INBOX INBOX.Old");
    assert_eq!(
        files(&m.join(".Old/cur")).len(),
        2,
        "messages must move to .Old"
    );
    assert!(files(&m.join("cur")).is_empty() && files(&m.join("new")).is_empty());
    assert_eq!(c.ok("SELECT INBOX").count("EXISTS"), Some(0));
    assert_eq!(c.ok("SELECT INBOX.Old").count("EXISTS"), Some(2));
}

#[test]
fn list_patterns_and_attributes() {
    let (_t, m, _s, mut c) = setup("list");
    make_folder(&m, ".Work");
    make_folder(&m, ".Work.Reports");
    make_folder(&m, ".Archive");
    make_folder(&m, ".Deep.Leaf"); // parent INBOX.Deep does not exist
    let r = c.ok("LIST \"\" \"*\"");
    let all = list_entries(&r, "LIST");
    let get = |name: &str| {
        all.iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} not listed: {all:#?}"))
    };
    for e in &all {
        assert_eq!(e.delimiter.as_deref(), Some("."), "{e:?}");
        assert!(
            !(e.has("\\HasChildren") && e.has("\\HasNoChildren")),
            "{e:?}"
        );
    }
    assert_eq!(all.len(), 6, "{all:#?}");
    assert!(get("INBOX").has("\\HasChildren"));
    assert!(get("INBOX.Work").has("\\HasChildren"));
    assert!(get("INBOX.Work.Reports").has("\\HasNoChildren"));
    assert!(get("INBOX.Archive").has("\\HasNoChildren"));
    assert!(!get("INBOX.Archive").has("\\Noselect"));
    let deep = get("INBOX.Deep");
    assert!(
        deep.has("\\Noselect") && deep.has("\\HasChildren"),
        "{deep:?}"
    );
    assert!(get("INBOX.Deep.Leaf").has("\\HasNoChildren"));

    let names = |r: &Response| {
        let mut v: Vec<String> = list_entries(r, "LIST")
            .into_iter()
            .map(|e| e.name)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&c.ok("LIST \"\" \"%\"")), vec!["INBOX"]);
    assert_eq!(
        names(&c.ok("LIST \"\" \"INBOX.%\"")),
        vec!["INBOX.Archive", "INBOX.Deep", "INBOX.Work"]
    );
    assert_eq!(
        names(&c.ok("LIST \"INBOX.\" \"%\"")),
        vec!["INBOX.Archive", "INBOX.Deep", "INBOX.Work"]
    );
    assert_eq!(
        names(&c.ok("LIST \"\" \"INBOX.W*\"")),
        vec!["INBOX.Work", "INBOX.Work.Reports"]
    );
    assert_eq!(names(&c.ok("LIST \"\" \"inbox\"")), vec!["INBOX"]);
    assert!(names(&c.ok("LIST \"\" \"INBOX.Nothing*\"")).is_empty());

    let r = c.ok("LIST \"\" \"\"");
    let e = list_entries(&r, "LIST");
    assert_eq!(e.len(), 1, "{r:#?}");
    assert!(
        e[0].has("\\Noselect") && e[0].name.is_empty() && e[0].delimiter.as_deref() == Some("."),
        "{r:#?}"
    );
}

#[test]
fn subscribe_writes_courierimapsubscribed() {
    let (_t, m, _s, mut c) = setup("subscribe");
    c.ok("CREATE INBOX.Work");
    c.ok("CREATE INBOX.Work.Reports");
    c.ok("SUBSCRIBE INBOX.Work");
    c.ok("SUBSCRIBE INBOX.Work.Reports");
    let subs = fs::read_to_string(m.join("courierimapsubscribed")).unwrap();
    let lines: Vec<&str> = subs.lines().collect();
    assert!(
        lines.contains(&"INBOX.Work") && lines.contains(&"INBOX.Work.Reports"),
        "{subs:?}"
    );
    let lsub = |c: &mut Client, pat: &str| {
        let r = c.ok(&format!("LSUB \"\" \"{pat}\""));
        // Courier also reports the unsubscribed parents of subscribed names (and
        // INBOX) as \Noselect; that is allowed. Subscribed names are the others.
        let mut v: Vec<String> = list_entries(&r, "LSUB")
            .into_iter()
            .filter(|e| !e.has("\\Noselect"))
            .map(|e| e.name)
            .filter(|n| n != "INBOX")
            .collect();
        v.sort();
        v
    };
    assert_eq!(lsub(&mut c, "*"), vec!["INBOX.Work", "INBOX.Work.Reports"]);
    assert_eq!(lsub(&mut c, "INBOX.%"), vec!["INBOX.Work"]);
    c.ok("UNSUBSCRIBE INBOX.Work");
    let subs = fs::read_to_string(m.join("courierimapsubscribed")).unwrap();
    assert!(
        !subs.lines().any(|l| l == "INBOX.Work") && subs.lines().any(|l| l == "INBOX.Work.Reports"),
        "{subs:?}"
    );
    assert_eq!(lsub(&mut c, "*"), vec!["INBOX.Work.Reports"]);
}

/// A client polling a folder with STATUS in one session (the session keeps answers while
/// the folder's change stamp proves them) is told each change made behind the server's
/// back as a new session, which keeps nothing, is told it.
#[test]
fn status_polled_in_one_session_sees_each_change_behind_its_back() {
    let (t, m, _s, mut c) = setup("status-poll");
    let w = make_folder(&m, ".Work");
    let a = put_cur(&w, &message("seen", "a"), "S");
    put_cur(&w, &message("unseen", "b"), "");
    let items = "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED)";
    let status = |c: &mut Client| -> String {
        let r = c.ok(&format!("STATUS INBOX.Work {items}"));
        r.line("* STATUS")
            .unwrap_or_else(|| panic!("{r:#?}"))
            .to_string()
    };
    let fresh = || -> String {
        let (_s2, mut c2) = preauth(&t, &m);
        let line = status(&mut c2);
        c2.ok("LOGOUT");
        line
    };
    // Past the window in which a change leaves a directory's time as it was
    // (stamp.rs): the answers after it may be kept.
    let settle = || thread::sleep(Duration::from_millis(120));
    let first = status(&mut c);
    settle();
    assert_eq!(status(&mut c), first);
    assert_eq!(status(&mut c), fresh());

    let check = |what: &str, c: &mut Client| {
        let polled = status(c);
        assert_eq!(polled, fresh(), "after {what}");
        settle();
        assert_eq!(status(c), polled, "again after {what}");
    };
    // An MTA delivers.
    let d = deliver(&w, &message("new", "c"));
    check("a delivery", &mut c);
    // Another client reads a message and flags one deleted.
    let b = cur_files_containing(&w, "unseen").pop().expect("b");
    fs::rename(
        w.join("cur").join(&b),
        w.join("cur").join(format!("{}:2,ST", base_of(&b))),
    )
    .expect("flag");
    check("flags changed", &mut c);
    // Another client expunges one, and a session numbers what is new.
    fs::remove_file(&a).expect("expunge");
    check("an expunge", &mut c);
    let (_s3, mut c3) = preauth(&t, &m);
    c3.ok("SELECT INBOX.Work");
    c3.ok("LOGOUT");
    assert!(!d.exists(), "the SELECT moved the delivery to cur/");
    check("a session's numbering", &mut c);
    assert!(status(&mut c).contains("MESSAGES 2"), "{}", status(&mut c));
}

#[test]
fn status_counts_without_touching_new() {
    let (_t, m, _s, mut c) = setup("status");
    let w = make_folder(&m, ".Work");
    let a = put_cur(&w, &message("seen", "a"), "S");
    let b = put_cur(&w, &message("unseen", "b"), "");
    write_uiddb(&w, 795_700_000, 3, &[(1, &a), (2, &b)]);
    let fresh = deliver(&w, &message("new", "c"));
    let r = c.ok("STATUS INBOX.Work (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)");
    let l = r.line("* STATUS").unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(number_after(l, "MESSAGES "), Some(3), "{l}");
    assert_eq!(number_after(l, "RECENT "), Some(1), "{l}");
    assert_eq!(number_after(l, "UNSEEN "), Some(2), "{l}");
    assert_eq!(number_after(l, "UIDNEXT "), Some(4), "{l}");
    assert_eq!(number_after(l, "UIDVALIDITY "), Some(795_700_000), "{l}");
    assert!(fresh.exists(), "STATUS must leave new/ alone");
    let r = c.no("STATUS INBOX.Missing (MESSAGES)");
    assert!(r.is_no());
    let r = c.ok("SELECT INBOX.Work");
    assert_eq!(r.count("EXISTS"), Some(3));
    assert_eq!(num_code(&r, "UIDNEXT"), 4);
    assert_eq!(num_code(&r, "UIDVALIDITY"), 795_700_000);
    assert_eq!(
        read_uiddb(&w).uid_of(fresh.file_name().unwrap().to_str().unwrap()),
        Some(3)
    );
}

#[test]
fn namespace_id_enable_unselect() {
    let (_t, m, _s, mut c) = setup("misc");
    put_cur(&m, &message("x", "y"), "");
    let r = c.ok("NAMESPACE");
    let l = r.line("* NAMESPACE").unwrap_or_else(|| panic!("{r:#?}"));
    assert!(l.starts_with("* NAMESPACE ((\"INBOX.\" \".\"))"), "{l}");
    let r = c.ok("ID NIL");
    assert!(r.line("* ID").is_some(), "{r:#?}");
    let r = c.ok("ID (\"name\" \"session-test\" \"version\" \"1\")");
    assert!(r.line("* ID").is_some(), "{r:#?}");
    c.ok("SELECT INBOX");
    c.ok("UNSELECT");
    c.refused("FETCH 1 (FLAGS)");
    c.ok("ENABLE UTF8=ACCEPT");
    c.refused("XYZZY");
    c.ok("NOOP");
}

#[test]
fn modified_utf7_folder_names() {
    let (t, m, _s, mut c) = setup("mutf7");
    c.ok("CREATE INBOX.R&AOk-sum&AOk-");
    assert!(
        exists_dir(&m.join(".Résumé/cur")),
        "expected directory .Résumé: {:?}",
        files(&m)
    );
    make_folder(&m, ".Café");
    let r = c.ok("LIST \"\" \"*\"");
    let names: Vec<String> = list_entries(&r, "LIST")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names.contains(&"INBOX.R&AOk-sum&AOk-".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"INBOX.Caf&AOk-".to_string()), "{names:?}");
    c.ok("SELECT INBOX.R&AOk-sum&AOk-");
    c.ok("SELECT INBOX.Caf&AOk-");
    // The folder left by that SELECT has its index written after the answer; a NOOP's
    // answer comes after that write.
    c.ok("NOOP");
    let before = t.tree();
    c.refused("CREATE INBOX.&Jjo"); // unterminated base64 run
    assert_eq!(t.tree(), before, "an invalid mUTF-7 name created something");
}

// ---------------------------------------------------------------------------
// APPEND, FETCH
// ---------------------------------------------------------------------------

#[test]
fn append_with_flags_and_date() {
    let (_t, m, _s, mut c) = setup("append");
    let msg = crlf("From: a@example.org\nSubject: appended\n\nHello there\n");
    let r = c.ok(&format!(
        "APPEND INBOX (\\Seen \\Flagged) \"14-Jul-2023 02:44:25 +0000\" {}",
        lit(&msg)
    ));
    let au = code(&r.tagged, "APPENDUID").unwrap_or_else(|| panic!("no APPENDUID: {r:#?}"));
    let (uidv, uid): (u32, u32) = (au[0].parse().unwrap(), au[1].parse().unwrap());
    assert!(
        files(&m.join("new")).is_empty(),
        "APPEND must deliver into cur/"
    );
    let (name, content) = only_file(&m.join("cur"));
    assert_eq!(
        content,
        msg.replace("\r\n", "\n"),
        "stored with LF line ends"
    );
    assert!(
        name.contains(&format!(",S={}", content.len())),
        "{name} lacks ,S=<size>"
    );
    assert_eq!(flags_of_name(&name), "FS", "{name}");
    let mtime = fs::metadata(m.join("cur").join(&name)).unwrap().mtime();
    assert_eq!(mtime, 1_689_302_665, "mtime must be the APPEND date");

    let r = c.ok("SELECT INBOX");
    assert_eq!(num_code(&r, "UIDVALIDITY"), uidv);
    let db = read_uiddb(&m);
    assert_eq!(db.uidvalidity, uidv);
    assert_eq!(db.uid_of(base_of(&name)), Some(uid), "uiddb: {db:?}");
    let r = c.ok("FETCH 1 (UID FLAGS INTERNALDATE)");
    let l = r.fetch(1);
    assert_eq!(number_after(l, "UID "), Some(uid as u64));
    assert!(has_flag(l, "\\Seen") && has_flag(l, "\\Flagged"), "{l}");
    assert!(l.contains("-Jul-2023 "), "{l}");

    // APPEND to the selected mailbox is announced.
    let r1 = c.ok(&format!(
        "APPEND INBOX {}",
        lit(&crlf(&message("second", "b")))
    ));
    let r2 = c.ok("NOOP");
    assert_eq!(
        r2.count("EXISTS").or(r1.count("EXISTS")),
        Some(2),
        "{r1:#?} {r2:#?}"
    );
    let r = c.no(&format!(
        "APPEND INBOX.Missing {}",
        lit("Subject: x\r\n\r\nx\r\n")
    ));
    assert!(code(&r.tagged, "TRYCREATE").is_some(), "{r:#?}");
    assert!(!m.join(".Missing").exists());
}

#[test]
fn literal_plus() {
    let (_t, m, _s, mut c) = setup("literalplus");
    let msg = crlf(&message("literal plus", "sent without waiting"));
    let r = c.ok(&format!("APPEND INBOX (\\Seen) {}", lit_plus(&msg)));
    assert!(code(&r.tagged, "APPENDUID").is_some(), "{r:#?}");
    let (_, content) = only_file(&m.join("cur"));
    assert_eq!(content, msg.replace("\r\n", "\n"));
    c.ok(&format!("CREATE {}", lit_plus("INBOX.Plus")));
    assert!(exists_dir(&m.join(".Plus/cur")));
}

#[test]
fn fetch_sizes_partial_and_seen() {
    let (_t, m, _s, mut c) = setup("fetch");
    let body = "Subject: sizes\nFrom: a@example.org\n\nline one\nline two\n";
    let path = put_cur(&m, body, "");
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    c.ok("SELECT INBOX");
    let wire = crlf(body);
    let r = c.ok("FETCH 1 (RFC822.SIZE)");
    assert_eq!(
        number_after(r.fetch(1), "RFC822.SIZE "),
        Some(wire.len() as u64),
        "{r:#?}"
    );
    let r = c.ok("FETCH 1 (BODY.PEEK[])");
    assert_eq!(
        string_after(r.fetch(1), "BODY[] ").unwrap(),
        wire.as_bytes()
    );
    assert_eq!(
        files(&m.join("cur")),
        vec![name.clone()],
        "BODY.PEEK[] must not change flags"
    );
    assert!(!has_flag(c.ok("FETCH 1 (FLAGS)").fetch(1), "\\Seen"));

    let r = c.ok("FETCH 1 (BODY.PEEK[]<0.10>)");
    assert_eq!(
        string_after(r.fetch(1), "BODY[]<0> ").unwrap(),
        &wire.as_bytes()[..10],
        "{r:#?}"
    );
    let r = c.ok("FETCH 1 (BODY.PEEK[]<10000.10>)");
    assert!(
        string_after(r.fetch(1), "BODY[]<10000> ")
            .unwrap_or_default()
            .is_empty(),
        "{r:#?}"
    );
    let r = c.ok("FETCH 1 (BODY.PEEK[TEXT])");
    assert_eq!(
        string_after(r.fetch(1), "BODY[TEXT] ").unwrap(),
        b"line one\r\nline two\r\n"
    );
    let r = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let l = r.fetch(1);
    // The field list may be echoed quoted or not; the value follows "] ".
    let at = find_ci(l, "BODY[HEADER.FIELDS (").unwrap_or_else(|| panic!("{l}"));
    let at = at + l[at..].find("] ").unwrap() + 2;
    assert_eq!(
        parse_string(&l.as_bytes()[at..]).unwrap().0,
        b"Subject: sizes\r\n\r\n",
        "{l}"
    );

    let r = c.ok("FETCH 1 (BODY[])");
    assert!(
        r.fetches()
            .iter()
            .any(|(n, l)| *n == 1 && find_ci(l, "FLAGS (").is_some() && has_flag(l, "\\Seen")),
        "BODY[] must report the new \\Seen flag: {r:#?}"
    );
    let cur = files(&m.join("cur"));
    assert_eq!(cur.len(), 1);
    assert_eq!(base_of(&cur[0]), base_of(&name));
    assert_eq!(
        flags_of_name(&cur[0]),
        "S",
        "BODY[] must rename the file with S: {cur:?}"
    );
    let r = c.ok("UID FETCH 1 (RFC822.SIZE)");
    assert_eq!(number_after(r.fetch(1), "UID "), Some(1), "{r:#?}");
}

const MULTIPART: &str = "From: a@example.org\nTo: b@example.org\nSubject: multipart\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XYZ\"\n\npreamble\n--XYZ\nContent-Type: text/plain; charset=us-ascii\n\nHello part one.\nSecond line.\n\n--XYZ\nContent-Type: application/octet-stream; name=\"a.bin\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"a.bin\"\n\nSGVsbG8=\n\n--XYZ--\n";

#[test]
fn bodystructure_of_multipart() {
    let (_t, m, _s, mut c) = setup("bodystructure");
    put_cur(&m, MULTIPART, "");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (BODYSTRUCTURE)");
    let l = r.fetch(1).to_ascii_lowercase();
    for want in [
        r#"("text" "plain" ("charset" "us-ascii") nil nil "7bit" 31 2"#,
        r#"("application" "octet-stream" ("name" "a.bin") nil nil "base64" 10"#,
        r#"("attachment" ("filename" "a.bin"))"#,
        r#""mixed" ("boundary" "xyz")"#,
    ] {
        assert!(l.contains(want), "BODYSTRUCTURE lacks {want}: {l}");
    }
    let r = c.ok("FETCH 1 (BODY)");
    let l = r.fetch(1).to_ascii_lowercase();
    assert!(
        l.contains(r#"("text" "plain" ("charset" "us-ascii") nil nil "7bit" 31 2)"#),
        "{l}"
    );
    assert!(
        !l.contains("attachment"),
        "BODY must not carry extension data: {l}"
    );
    let r = c.ok("FETCH 1 (BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.MIME])");
    let l = r.fetch(1);
    assert_eq!(
        string_after(l, "BODY[1] ").unwrap(),
        b"Hello part one.\r\nSecond line.\r\n"
    );
    assert_eq!(string_after(l, "BODY[2] ").unwrap(), b"SGVsbG8=\r\n");
    let mime = String::from_utf8(string_after(l, "BODY[2.MIME] ").unwrap()).unwrap();
    assert!(
        mime.starts_with("Content-Type: application/octet-stream") && mime.ends_with("\r\n\r\n"),
        "{mime:?}"
    );
}

#[test]
fn envelope() {
    let (_t, m, _s, mut c) = setup("envelope");
    put_cur(
        &m,
        "Date: Mon, 7 Aug 2023 10:00:00 +0000\nFrom: Alice Example <alice@example.org>\nTo: Bob <bob@example.net>, carol@example.net\nCc: undisclosed-recipients:;\nSubject: Envelope test\nMessage-ID: <env1@example.org>\n\nbody\n",
        "",
    );
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (ENVELOPE)");
    let alice = r#"(("Alice Example" NIL "alice" "example.org"))"#;
    let want = format!(
        r#"ENVELOPE ("Mon, 7 Aug 2023 10:00:00 +0000" "Envelope test" {alice} {alice} {alice} (("Bob" NIL "bob" "example.net")(NIL NIL "carol" "example.net")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL "<env1@example.org>")"#
    );
    assert!(
        r.fetch(1).contains(&want),
        "expected {want}\ngot {}",
        r.fetch(1)
    );
}

// ---------------------------------------------------------------------------
// SEARCH, STORE, COPY, MOVE, EXPUNGE
// ---------------------------------------------------------------------------

#[test]
fn search_keys_and_charsets() {
    let (_t, m, _s, mut c) = setup("search");
    put_cur(
        &m,
        "From: alice@example.org\nSubject: hello world\n\napples and pears\n",
        "S",
    );
    put_cur(
        &m,
        "From: bob@example.net\nSubject: =?UTF-8?Q?R=C3=A9sum=C3=A9?= attached\n\nbananas\n",
        "",
    );
    put_cur(
        &m,
        &format!(
            "From: carol@example.com\nSubject: meeting\n\ncherries\n{}\n",
            "z".repeat(2000)
        ),
        "F",
    );
    c.ok("SELECT INBOX");
    let mut s = |q: &str| c.ok(&format!("SEARCH {q}")).search();
    assert_eq!(s("ALL"), vec![1, 2, 3]);
    assert_eq!(s("SEEN"), vec![1]);
    assert_eq!(s("UNSEEN"), vec![2, 3]);
    assert_eq!(s("FLAGGED"), vec![3]);
    assert_eq!(s("SUBJECT hello"), vec![1]);
    assert_eq!(s("SUBJECT HELLO"), vec![1]);
    assert_eq!(s("FROM bob"), vec![2]);
    assert_eq!(s("BODY bananas"), vec![2]);
    assert_eq!(s("TEXT cherries"), vec![3]);
    assert_eq!(s("LARGER 1500"), vec![3]);
    assert_eq!(s("OR SEEN FLAGGED"), vec![1, 3]);
    assert_eq!(s("NOT SEEN"), vec![2, 3]);
    assert_eq!(s("2:3 SUBJECT meeting"), vec![3]);
    assert_eq!(s("SUBJECT nothing-matches-this"), Vec::<u32>::new());
    assert_eq!(
        s(&format!("CHARSET UTF-8 SUBJECT {}", lit("Résumé"))),
        vec![2]
    );
    assert_eq!(c.ok("UID SEARCH SUBJECT meeting").search(), vec![3]);
    let r = c.no("SEARCH CHARSET X-NO-SUCH-CHARSET SUBJECT foo");
    assert!(find_ci(&r.tagged, "[BADCHARSET").is_some(), "{r:#?}");
}

#[test]
fn store_flags_and_keywords() {
    let t = TestDir::new("store");
    let m = t.maildir();
    let one = put_cur(&m, &message("one", "1"), "");
    let two = put_cur(&m, &message("two", "2"), "");
    let base1 = base_of(one.file_name().unwrap().to_str().unwrap()).to_string();
    let base2 = base_of(two.file_name().unwrap().to_str().unwrap()).to_string();
    let flags_on_disk =
        |base: &str| flags_of_name(&cur_file_with_base(&m, base).expect("message file vanished"));
    let (_s, mut c) = preauth(&t, &m);
    c.ok("SELECT INBOX");

    let r = c.ok("STORE 1 +FLAGS (\\Flagged)");
    assert!(has_flag(r.fetch(1), "\\Flagged"), "{r:#?}");
    assert_eq!(flags_on_disk(&base1), "F");
    let r = c.ok("STORE 1 -FLAGS (\\Flagged)");
    assert!(!has_flag(r.fetch(1), "\\Flagged"), "{r:#?}");
    assert_eq!(flags_on_disk(&base1), "");
    let r = c.ok("STORE 1 FLAGS.SILENT (\\Seen \\Answered)");
    assert!(
        r.fetches().is_empty(),
        "FLAGS.SILENT must not answer with FETCH: {r:#?}"
    );
    assert_eq!(flags_on_disk(&base1), "RS");
    c.ok("STORE 1 FLAGS (\\Draft)");
    assert_eq!(flags_on_disk(&base1), "D");

    let r = c.ok("STORE 2 +FLAGS ($Important)");
    assert!(has_flag(r.fetch(2), "$Important"), "{r:#?}");
    let kw = m.join("courierimapkeywords");
    assert!(kw.is_dir(), "courierimapkeywords/ must be created");
    let mentioned = files(&kw).iter().any(|f| {
        fs::read_to_string(kw.join(f))
            .map(|s| s.lines().any(|l| l == "$Important"))
            .unwrap_or(false)
    });
    assert!(
        mentioned,
        "no keyword file names $Important: {:?}",
        files(&kw)
    );
    assert_eq!(
        flags_on_disk(&base2),
        "",
        "keywords are not maildir letters"
    );
    drop(c);

    let (_s2, mut c2) = preauth(&t, &m);
    let r = c2.ok("SELECT INBOX");
    let flags = r.line("* FLAGS").unwrap_or_else(|| panic!("{r:#?}"));
    assert!(
        flags.contains("$Important"),
        "FLAGS must list keywords in use: {flags}"
    );
    assert!(
        code_in(&r, "PERMANENTFLAGS")
            .iter()
            .any(|f| f.trim_matches(|c| c == '(' || c == ')') == "\\*")
    );
    assert!(has_flag(c2.ok("FETCH 2 (FLAGS)").fetch(2), "$Important"));
    assert!(has_flag(c2.ok("FETCH 1 (FLAGS)").fetch(1), "\\Draft"));
    let r = c2.ok("UID STORE 2 -FLAGS ($Important)");
    assert!(!has_flag(r.fetch(2), "$Important"), "{r:#?}");
    assert!(!has_flag(c2.ok("FETCH 2 (FLAGS)").fetch(2), "$Important"));
}

/// A keyword set is one file per message: a session that adds its keyword must start from
/// the set on disk, or another session's keyword, added since this one last looked, is
/// lost although that session's client was told OK (the torture test found it).
#[test]
fn keywords_of_two_sessions_on_one_message_both_stay() {
    let t = TestDir::new("kwtwo");
    let m = t.maildir();
    put_cur(&m, &message("one", "1"), "");
    let (_sa, mut a) = preauth(&t, &m);
    let (_sb, mut b) = preauth(&t, &m);
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    a.ok("STORE 1 +FLAGS ($First)");
    // b has not looked since a's STORE.
    let r = b.ok("STORE 1 +FLAGS.SILENT ($Second)");
    assert!(r.is_ok(), "{r:#?}");
    let r = b.ok("STORE 1 -FLAGS ($Nothere)");
    let f = r.fetch(1);
    assert!(has_flag(f, "$First") && has_flag(f, "$Second"), "{r:#?}");
    let (_sc, mut c) = preauth(&t, &m);
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (FLAGS)");
    let f = r.fetch(1);
    assert!(has_flag(f, "$First") && has_flag(f, "$Second"), "{r:#?}");
    // And the lock file stays mdimap's own, beside Courier's directory.
    assert!(m.join("mdimapkeywords.lock").is_file());
    assert!(
        !files(&m.join("courierimapkeywords"))
            .iter()
            .any(|f| f.contains("lock"))
    );
}

#[test]
fn copy_with_copyuid_and_trycreate() {
    let (_t, m, _s, mut c) = setup("copy");
    put_cur(&m, &message("flagged one", "1"), "F");
    put_cur(&m, &message("plain two", "2"), "");
    c.ok("CREATE INBOX.Dest");
    c.ok("SELECT INBOX");
    let r = c.ok("COPY 1:2 INBOX.Dest");
    let cu = code(&r.tagged, "COPYUID").unwrap_or_else(|| panic!("no COPYUID: {r:#?}"));
    let uidv: u32 = cu[0].parse().unwrap();
    assert_eq!(expand_set(&cu[1]), vec![1, 2]);
    let dst = expand_set(&cu[2]);
    assert_eq!(dst.len(), 2);
    let d = m.join(".Dest");
    assert_eq!(files(&d.join("cur")).len(), 2);
    assert_eq!(files(&m.join("cur")).len(), 2, "COPY must keep the source");
    let flagged = cur_files_containing(&d, "Subject: flagged one");
    assert_eq!(flagged.len(), 1);
    assert_eq!(flags_of_name(&flagged[0]), "F", "COPY keeps flags");

    let r = c.no("COPY 1 INBOX.Missing");
    assert!(code(&r.tagged, "TRYCREATE").is_some(), "{r:#?}");
    assert!(!m.join(".Missing").exists());

    let r = c.ok("STATUS INBOX.Dest (MESSAGES UIDVALIDITY)");
    let l = r.line("* STATUS").unwrap();
    assert_eq!(number_after(l, "MESSAGES "), Some(2));
    assert_eq!(number_after(l, "UIDVALIDITY "), Some(uidv as u64));
    c.ok("SELECT INBOX.Dest");
    let r = c.ok("UID FETCH 1:* (UID)");
    let uids: Vec<u32> = r
        .fetches()
        .iter()
        .map(|(_, l)| number_after(l, "UID ").unwrap() as u32)
        .collect();
    assert_eq!(uids, dst);
    let db = read_uiddb(&d);
    assert_eq!(db.uidvalidity, uidv);
    assert_eq!(db.base_of_uid(dst[0]), Some(base_of(&flagged[0])), "{db:?}");
}

#[test]
fn move_messages() {
    let (_t, m, _s, mut c) = setup("move");
    put_cur(&m, &message("m1", "1"), "");
    put_cur(&m, &message("m2", "2"), "S");
    put_cur(&m, &message("m3", "3"), "");
    c.ok("CREATE INBOX.Dest");
    c.ok("SELECT INBOX");
    let r = c.ok("MOVE 2 INBOX.Dest");
    let copyuid = r
        .untagged
        .iter()
        .position(|l| l.starts_with("* OK [COPYUID "));
    let expunge = r.untagged.iter().position(|l| l == "* 2 EXPUNGE");
    assert!(
        copyuid.is_some() && expunge.is_some() && copyuid < expunge,
        "MOVE needs * OK [COPYUID] then * 2 EXPUNGE: {r:#?}"
    );
    assert_eq!(files(&m.join("cur")).len(), 2);
    let moved = cur_files_containing(&m.join(".Dest"), "Subject: m2");
    assert_eq!(moved.len(), 1);
    assert_eq!(flags_of_name(&moved[0]), "S");
    let r = c.ok("UID MOVE 3 INBOX.Dest");
    assert_eq!(r.expunged(), vec![2], "{r:#?}");
    assert_eq!(files(&m.join(".Dest/cur")).len(), 2);
    let r = c.no("MOVE 1 INBOX.Missing");
    assert!(code(&r.tagged, "TRYCREATE").is_some(), "{r:#?}");
    assert_eq!(files(&m.join("cur")).len(), 1);
}

#[test]
fn expunge_uid_expunge_and_close() {
    let (_t, m, _s, mut c) = setup("expunge");
    for i in 1..=5 {
        put_cur(&m, &message(&format!("e{i}"), "x"), "");
    }
    c.ok("SELECT INBOX");
    c.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)");
    assert!(flags_of_name(&cur_files_containing(&m, "Subject: e1")[0]).contains('T'));
    let r = c.ok("UID EXPUNGE 3");
    assert_eq!(r.expunged(), vec![3], "{r:#?}");
    assert!(
        cur_files_containing(&m, "Subject: e3").is_empty(),
        "file of e3 must be unlinked"
    );
    assert_eq!(
        cur_files_containing(&m, "Subject: e1").len(),
        1,
        "UID EXPUNGE must spare uids outside the set"
    );
    let r = c.ok("EXPUNGE");
    assert_eq!(r.expunged(), vec![1], "{r:#?}");
    assert!(cur_files_containing(&m, "Subject: e1").is_empty());
    assert_eq!(files(&m.join("cur")).len(), 3);
    let r = c.ok("FETCH 1:* (UID)");
    let uids: Vec<u64> = r
        .fetches()
        .iter()
        .map(|(_, l)| number_after(l, "UID ").unwrap())
        .collect();
    assert_eq!(uids, vec![2, 4, 5]);
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("CLOSE");
    assert!(r.expunged().is_empty(), "CLOSE expunges silently: {r:#?}");
    assert!(cur_files_containing(&m, "Subject: e4").is_empty());
    assert_eq!(files(&m.join("cur")).len(), 2);
}

// ---------------------------------------------------------------------------
// Changes made by others
// ---------------------------------------------------------------------------

#[test]
fn delivery_by_another_process_shows_at_noop() {
    let (_t, m, _s, mut c) = setup("delivery");
    let old = put_cur(&m, &message("old", "x"), "S");
    write_uiddb(&m, 795_700_001, 2, &[(1, &old)]);
    let r = c.ok("SELECT INBOX");
    assert_eq!(r.count("EXISTS"), Some(1));
    assert_eq!(r.count("RECENT"), Some(0));
    let p = deliver(&m, &message("arrived", "y"));
    let r = c.ok("NOOP");
    assert_eq!(r.count("EXISTS"), Some(2), "{r:#?}");
    assert_eq!(r.count("RECENT"), Some(1), "{r:#?}");
    assert!(
        !p.exists() && files(&m.join("new")).is_empty(),
        "the selected session takes new/ into cur/"
    );
    assert!(has_flag(c.ok("FETCH 2 (FLAGS)").fetch(2), "\\Recent"));
}

#[test]
fn expunge_by_another_session_waits_for_noop() {
    let t = TestDir::new("otherexpunge");
    let m = t.maildir();
    for i in 1..=3 {
        put_cur(&m, &message(&format!("x{i}"), "x"), "");
    }
    let (_s1, mut a) = preauth(&t, &m);
    let (_s2, mut b) = preauth(&t, &m);
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(b.ok("EXPUNGE").expunged(), vec![2]);
    assert_eq!(files(&m.join("cur")).len(), 2);

    for cmd in ["FETCH 1:3 (FLAGS)", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL"] {
        let r = a.cmd(cmd);
        assert!(r.is_ok() || r.is_no(), "{cmd}: {r:#?}");
        assert!(
            r.expunged().is_empty(),
            "no EXPUNGE may be sent during {cmd}: {r:#?}"
        );
        assert!(
            r.count("EXISTS").is_none_or(|n| n == 3),
            "EXISTS must not shrink during {cmd}: {r:#?}"
        );
    }
    let r = a.ok("NOOP");
    assert_eq!(r.expunged(), vec![2], "{r:#?}");
    let r = a.ok("FETCH 1:* (UID)");
    let uids: Vec<u64> = r
        .fetches()
        .iter()
        .map(|(_, l)| number_after(l, "UID ").unwrap())
        .collect();
    assert_eq!(uids, vec![1, 3]);
}

/// An expunge held back during a FETCH by sequence number is reported by
/// the next NOOP even when that NOOP finds the folder's timestamps
/// unchanged and does not rescan: the FETCH's rescan already saw it.
#[test]
fn held_back_expunge_is_reported_without_a_rescan() {
    let t = TestDir::new("heldexpunge");
    let m = t.maildir();
    for i in 1..=3 {
        put_cur(&m, &message(&format!("x{i}"), "x"), "");
    }
    let (_s1, mut a) = preauth(&t, &m);
    let (_s2, mut b) = preauth(&t, &m);
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(b.ok("EXPUNGE").expunged(), vec![2]);
    // Long enough that the folder's timestamps are trusted (past the 2 s
    // window of whole-second filesystems), so the FETCH's rescan leaves a
    // trustworthy stamp and the NOOP does not rescan.
    std::thread::sleep(Duration::from_millis(2500));
    let r = a.ok("FETCH 1:3 (FLAGS)");
    assert!(r.expunged().is_empty(), "{r:#?}");
    let r = a.ok("NOOP");
    assert_eq!(r.expunged(), vec![2], "{r:#?}");
}

/// IDLE reports a delivery by another process without the client sending
/// anything. Waited for as an event: the bound only turns a hang into a
/// failure, and is far beyond IDLE's polling interval.
#[test]
fn idle_reports_a_delivery_unasked() {
    let (_t, m, _s, mut c) = setup("idle");
    c.ok("SELECT INBOX");
    let tag = c.tag();
    c.send(format!("{tag} IDLE\r\n").as_bytes());
    let l = c.read_line();
    assert!(
        l.starts_with('+'),
        "IDLE must answer with a continuation: {l}"
    );
    deliver(&m, &message("during idle", "ping"));
    let mut seen = Vec::new();
    loop {
        match c.read_line_within(HANG_GUARD) {
            Read1::Line(l) if l == "* 1 EXISTS" => break,
            Read1::Line(l) => seen.push(l),
            other => panic!("no * 1 EXISTS for the delivery ({other:?}); got {seen:#?}"),
        }
    }
    c.send(b"DONE\r\n");
    let r = c.read_until_tagged(&tag, vec![]);
    assert!(r.is_ok(), "{r:#?}");
    c.ok("NOOP");
}

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

#[test]
fn mailbox_names_cannot_escape_the_maildir() {
    let (t, m, _s, mut c) = setup("escape");
    let marker = format!("escape{}", std::process::id());
    c.ok("CREATE INBOX.Ok");
    let before = t.tree();
    let bad = [
        format!("INBOX/{marker}"),
        format!("INBOX.a/b{marker}"),
        format!("INBOX..{marker}"),
        format!("INBOX.../{marker}"),
        format!("../{marker}"),
        format!("INBOX.x/../../{marker}"),
        format!("/tmp/{marker}"),
        "INBOX..".to_string(),
        "INBOX.x/..".to_string(),
    ];
    for name in &bad {
        c.refused(&format!("CREATE \"{name}\""));
        c.refused(&format!("SELECT \"{name}\""));
        c.refused(&format!("RENAME INBOX.Ok \"{name}\""));
        c.refused(&format!(
            "APPEND \"{name}\" {}",
            lit("Subject: x\r\n\r\nx\r\n")
        ));
    }
    c.refused(&format!(
        "DELETE \"../{}\"",
        m.parent().unwrap().file_name().unwrap().to_str().unwrap()
    ));
    assert_eq!(
        t.tree()
            .into_iter()
            .filter(|p| !p.starts_with("mdimapd-"))
            .collect::<Vec<_>>(),
        before
            .into_iter()
            .filter(|p| !p.starts_with("mdimapd-"))
            .collect::<Vec<_>>(),
        "a refused name changed files"
    );
    assert!(exists_dir(&m.join(".Ok/cur")));
    for dir in [
        std::env::temp_dir(),
        std::path::PathBuf::from("/tmp"),
        t.path.clone(),
        m.clone(),
    ] {
        assert!(
            !files(&dir).iter().any(|f| f.contains(&marker)),
            "{} gained {marker}",
            dir.display()
        );
    }
}

#[test]
fn too_long_command_line_is_bad_and_session_continues() {
    let (_t, _m, _s, mut c) = setup("longline");
    let mut w = c.stream().try_clone().unwrap();
    // Written from another thread so neither side can block the other.
    let writer = thread::spawn(move || {
        let mut line = b"L1 SEARCH SUBJECT ".to_vec();
        line.extend(std::iter::repeat_n(b'x', 1_000_000));
        line.extend_from_slice(b"\r\n");
        w.write_all(&line)
    });
    let written = writer.join().unwrap();
    assert!(
        written.is_ok(),
        "server stopped reading a too-long line: {written:?}"
    );
    c.send(b"L2 NOOP\r\n");
    let r = c.read_until_tagged("L2", vec![]);
    // Tagged, so a client waiting for L1's answer gets one (RFC 3501 §2.2.1).
    assert!(
        r.untagged.iter().any(|l| l.starts_with("L1 BAD [TOOBIG]")),
        "a too-long line must get a tagged BAD: {r:#?}"
    );
    assert!(!r.untagged.iter().any(|l| l.starts_with("L1 OK")), "{r:#?}");
    assert!(r.is_ok(), "the session must continue: {r:#?}");
}

/// What a client sees when it sends junk: every command, whatever its bytes,
/// gets exactly one tagged completion (OK, NO or BAD) under its own tag, or
/// the server says `* BYE` and closes; nothing else is sent but untagged
/// `*` lines (and `+` for a synchronizing literal, which the client consumes);
/// and the session still answers afterwards. The commands are random
/// (deterministic xorshift, so a failure reproduces): well-formed ones with
/// random mailboxes, sets, flags and literals of both kinds, some of them
/// then mangled, and pure junk, on a folder with messages.
#[test]
fn random_commands_each_get_one_tagged_completion_and_the_session_goes_on() {
    // `$x` is filled from SLOTS[x]. LOGOUT, IDLE, AUTHENTICATE and STARTTLS
    // are left out: they end the session or read input of their own.
    const TEMPLATES: &str = "NOOP|CHECK|CAPABILITY|NAMESPACE|SELECT $m|EXAMINE $m|CREATE $m|\
        DELETE $m|RENAME $m $m|SUBSCRIBE $m|UNSUBSCRIBE $m|LIST \"\" $p|LSUB \"\" $p|\
        STATUS $m (MESSAGES UIDNEXT UNSEEN)|APPEND $m $l|APPEND $m ($f) $l|CLOSE|UNSELECT|\
        EXPUNGE|UID EXPUNGE $s|SEARCH $k|UID SEARCH $k|FETCH $s $a|UID FETCH $s $a|\
        STORE $s +FLAGS ($f)|STORE $s -FLAGS.SILENT ($f)|UID STORE $s FLAGS ($f)|\
        COPY $s $m|UID COPY $s $m|MOVE $s $m|UID MOVE $s $m|ID NIL|ENABLE UTF8=ACCEPT|\
        GETQUOTAROOT $m|XYZZY $m|$j $j $j";
    const SLOTS: &[(char, &str)] = &[
        (
            'm',
            "INBOX|inbox|INBOX.a|a|\"a b\"|&-|&AOk-|&Jjo|..|INBOX/../x|.hidden|INBOX.a.b|$l",
        ),
        ('p', "*|%|INBOX.*|*%*%*%*%*%*%*%*%x|\"\"|&|$l"),
        ('s', "1|1:*|*|2,4:5|0|4294967296|3:1|1,1,1|$"),
        (
            'f',
            "\\Seen|\\Deleted|\\Flagged \\Answered|$Label|\\Recent|\\Bogus|(|",
        ),
        (
            'k',
            "ALL|UNSEEN|SUBJECT r1|OR DELETED NOT SEEN|CHARSET UTF-8 BODY $l|1:3 UID 2|BEFORE 1-Feb-1994|HEADER X $l|((",
        ),
        (
            'a',
            "FLAGS|(FLAGS UID)|BODY[]|BODY.PEEK[HEADER.FIELDS (SUBJECT)]|BODY[1.2]<0.5>|ENVELOPE|BODYSTRUCTURE|RFC822.SIZE|BINARY[1]|ALL|FAST|FULL|BODY[|",
        ),
        ('j', "(|)|\"|\\|%|*|]|[|NIL|{|}|~|\0|\x7f|é|+|-|=|<|>|$l"),
    ];
    let mut seed: u64 = 0x5eed_0fc0_ffee;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pick = |choices: &str, rnd: &mut dyn FnMut() -> u64| -> String {
        let all: Vec<&str> = choices.split('|').collect();
        all[(rnd() % all.len() as u64) as usize].to_string()
    };
    let (t, m, _s, mut c) = setup("random-commands");
    for i in 1..=5 {
        put_cur(&m, &message(&format!("r{i}"), "body"), "");
    }
    c.ok("SELECT INBOX");
    let mut servers = Vec::new();
    let (mut answered, mut byes) = (std::collections::BTreeMap::new(), 0);
    for _ in 0..400 {
        // Fill the slots left to right; a choice may hold `$l`, filled in its
        // turn, but a literal's octets are never scanned for slots.
        let mut text: Vec<u8> = pick(TEMPLATES, &mut rnd).into_bytes();
        let mut from = 0;
        while let Some(at) = text[from..]
            .windows(2)
            .position(|w| w[0] == b'$' && b"mpsfkajl".contains(&w[1]))
            .map(|i| from + i)
        {
            let slot = char::from(text[at + 1]);
            let (fill, skip) = match SLOTS.iter().find(|(name, _)| *name == slot) {
                Some((_, choices)) => (pick(choices, &mut rnd).into_bytes(), false),
                // `$l`: a literal, synchronizing or not, of any octets.
                None => {
                    let size = (rnd() % 12) as usize;
                    let plus = if rnd() % 2 == 0 { "+" } else { "" };
                    let mut lit = format!("{{{size}{plus}}}\r\n").into_bytes();
                    lit.extend((0..size).map(|_| rnd() as u8));
                    (lit, true)
                }
            };
            from = if skip { at + fill.len() } else { at };
            text.splice(at..at + 2, fill);
        }
        // Mangle one command in four: cut a piece out or drop junk in, away
        // from literals so that the client's framing stays what it sends.
        if rnd() % 4 == 0 && !text.contains(&b'{') && !text.is_empty() {
            let at = (rnd() % text.len() as u64) as usize;
            if rnd() % 2 == 0 {
                let end = (at + 1 + (rnd() % 6) as usize).min(text.len());
                text.drain(at..end);
            } else {
                let junk = pick(SLOTS[6].1, &mut rnd).replace("$l", "x");
                text.splice(at..at, junk.into_bytes());
            }
        }
        let sent = String::from_utf8_lossy(&text).into_owned();
        match c.try_cmd_bytes(&text) {
            (tag, Outcome::Done(r)) => {
                let status = r.status().to_ascii_uppercase();
                assert!(
                    ["OK", "NO", "BAD"].contains(&status.as_str()),
                    "{tag} {sent:?}: {r:#?}"
                );
                // Anything not starting with `* ` would be a second completion
                // (another tag), a stray continuation or garbage.
                assert!(
                    r.untagged.iter().all(|l| l.starts_with("* ")),
                    "{tag} {sent:?}: {r:#?}"
                );
                *answered.entry(status).or_insert(0) += 1;
            }
            (tag, Outcome::Closed(lines)) => {
                assert!(
                    lines.iter().any(|l| l.starts_with("* BYE ")),
                    "{tag} {sent:?}: closed without a BYE after {lines:#?}"
                );
                byes += 1;
                let (server, client) = preauth(&t, &m);
                servers.push(server);
                c = client;
            }
        }
    }
    // The session still works (with no late second completion for the last
    // command), and the input reached all three answers.
    let r = c.ok("NOOP");
    assert!(r.untagged.iter().all(|l| l.starts_with("* ")), "{r:#?}");
    c.ok("SELECT INBOX");
    assert!(
        ["OK", "NO", "BAD"]
            .iter()
            .all(|s| answered.get(*s).is_some_and(|&n| n >= 30)),
        "{answered:?}, {byes} BYE"
    );
}

#[test]
fn huge_literal_is_refused_without_waiting() {
    let (_t, m, _s, mut c) = setup("hugeliteral");
    let r = c.cmd("APPEND INBOX {999999999999}\r\n");
    assert!(r.is_no() || r.is_bad(), "{r:#?}");
    c.ok("NOOP");
    assert!(files(&m.join("cur")).is_empty());
}

// ---------------------------------------------------------------------------
// The listener
// ---------------------------------------------------------------------------

#[test]
fn listener_serves_connections_and_survives_a_killed_session() {
    let t = TestDir::new("listener");
    let (conf, _users, m) = t.write_userfile();
    put_cur(&m, &message("via listener", "x"), "");
    let mut d = listener(&conf);
    let mut c1 = d.connect();
    let mut c2 = d.connect();
    assert!(
        c1.greeting.starts_with("* OK") && c2.greeting.starts_with("* OK"),
        "{} / {}",
        c1.greeting,
        c2.greeting
    );
    c1.ok(&login_cmd());
    c2.ok(&login_cmd());
    assert_eq!(c1.ok("SELECT INBOX").count("EXISTS"), Some(1));
    assert_eq!(c2.ok("EXAMINE INBOX").count("EXISTS"), Some(1));

    // Find the session serving c1 by its TCP environment.
    let c1_port = c1.stream().local_addr().unwrap().port();
    let mut victim = None;
    assert!(
        wait_for(HANG_GUARD, || {
            victim = children_of(d.pid()).into_iter().find(|&p| {
                let env = environ_of(p);
                env.contains(&format!("TCPREMOTEPORT={c1_port}"))
                    && env.contains(&"TCPREMOTEIP=127.0.0.1".to_string())
            });
            victim.is_some()
        }),
        "no child of mdimap-listen has TCPREMOTEPORT={c1_port}"
    );
    let victim = victim.unwrap();
    let env = environ_of(victim);
    assert!(env.contains(&format!("TCPLOCALPORT={}", d.port)), "{env:?}");
    assert!(env.contains(&"TCPLOCALIP=127.0.0.1".to_string()), "{env:?}");

    signal(victim, libc::SIGKILL);
    assert_eq!(
        c1.read_line_within(HANG_GUARD),
        Read1::Eof,
        "killed session must drop its client"
    );
    thread::sleep(Duration::from_millis(200));
    assert!(d.is_running(), "mdimap-listen died with its session");
    c2.ok("NOOP");
    c2.ok("FETCH 1 (FLAGS)");
    let mut c3 = d.connect();
    c3.ok(&login_cmd());
    assert_eq!(c3.ok("SELECT INBOX").count("EXISTS"), Some(1));
    c3.ok("LOGOUT");
    drop(c2);
    assert!(
        d.terminate(HANG_GUARD),
        "mdimap-listen must stop on SIGTERM"
    );
}

/// On a local filesystem the server trusts directory timestamps instead of
/// rescanning at every NOOP, but only once they are old enough that a later
/// change cannot share their clock tick (50 ms; 2 s on filesystems that keep
/// whole seconds, so the pauses here are longer than both): then
/// a delivery, a flag change (a rename in cur/) and a keyword change by
/// another process must all still be seen, whatever the timing.
#[test]
fn changes_after_quiet_period_are_seen_at_noop() {
    let (_t, m, _s, mut c) = setup("quiet-noop");
    let first = put_cur(&m, &message("one", "body"), "");
    c.ok("SELECT INBOX");
    c.ok("FETCH 1 (FLAGS)");
    for round in 0..3 {
        // Let every timestamp age past the racy window, then change things.
        thread::sleep(Duration::from_millis(2100));
        c.ok("NOOP");
        thread::sleep(Duration::from_millis(2100));
        match round {
            0 => {
                deliver(&m, &message("two", "body"));
                let r = c.ok("NOOP");
                assert!(r.contains("* 2 EXISTS"), "round {round}: {r:#?}");
            }
            1 => {
                let name =
                    cur_file_with_base(&m, base_of(first.file_name().unwrap().to_str().unwrap()))
                        .unwrap();
                let renamed = format!("{}:2,F", base_of(&name));
                fs::rename(m.join("cur").join(&name), m.join("cur").join(&renamed)).unwrap();
                let r = c.ok("NOOP");
                assert!(
                    r.untagged
                        .iter()
                        .any(|l| l.contains("FETCH") && l.contains("\\Flagged")),
                    "round {round}: {r:#?}"
                );
            }
            _ => {
                let (_s2, mut other) = preauth(&_t, &m);
                other.ok("SELECT INBOX");
                other.ok("STORE 2 +FLAGS ($Later)");
                other.ok("LOGOUT");
                thread::sleep(Duration::from_millis(50));
                let r = c.ok("NOOP");
                assert!(
                    r.untagged
                        .iter()
                        .any(|l| l.contains("FETCH") && l.contains("$Later")),
                    "round {round}: {r:#?}"
                );
            }
        }
    }
}

/// `mdimap check-config` prints every effective value with its source and
/// names the user-file lines that would refuse a login, with file and line.
#[test]
fn check_config_reports_values_and_bad_user_lines() {
    let t = TestDir::new("check-config");
    let users = t.join("users");
    fs::write(
        &users,
        format!("# users\n{USER}:{PASSWORD_HASH}:1000:1000:/home/x\nbroken:line\n"),
    )
    .unwrap();
    let conf = t.join("mdimapd.conf");
    fs::write(
        &conf,
        format!("MAXPERIP=7\nMDIMAP_USERFILE={}\n", users.display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mdimap"))
        .args(["check-config", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains(&format!("MAXPERIP=7\t# {}:1", conf.display())),
        "{stdout}"
    );
    assert!(stdout.contains("MAXDAEMONS=40\t# default"), "{stdout}");
    assert!(
        stderr.contains(&format!("{}:3: ", users.display())),
        "{stderr}"
    );
    assert!(
        !out.status.success(),
        "a malformed user line must fail the check"
    );

    fs::write(
        &users,
        format!("{USER}:{PASSWORD_HASH}:1000:1000:/home/x\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mdimap"))
        .args(["check-config", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(&conf, "MAXPERIP=many\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mdimap"))
        .args(["check-config", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("{}:1:", conf.display())),
        "{stderr}"
    );
}

/// Two clients on one mailbox (a phone and a desktop): a session whose view
/// of a message is stale (another session renamed the file by changing its
/// flags) must still act on that message, and keep the other's change.
#[test]
fn stale_views_still_act_on_renamed_messages() {
    let t = TestDir::new("stale");
    let m = t.maildir();
    let bases: Vec<String> = (1..=3)
        .map(|i| {
            let path = put_cur(&m, &message(&format!("s{i}"), "body"), "");
            base_of(&path.file_name().unwrap().to_string_lossy()).to_string()
        })
        .collect();
    let (_s1, mut a) = preauth(&t, &m);
    let (_s2, mut b) = preauth(&t, &m);
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    let flags_on_disk = |seq: usize| {
        let mut names = files(&m.join("cur"));
        names.sort();
        flags_of_name(&names[seq - 1])
    };

    // STORE: B's first command after A flagged message 1.
    a.ok("STORE 1 +FLAGS (\\Flagged)");
    b.ok("STORE 1 +FLAGS (\\Answered)");
    assert_eq!(flags_on_disk(1), "FR", "both changes survive");

    // COPY of a message the other session has just re-flagged.
    a.ok("STORE 2 +FLAGS (\\Seen)");
    let r = b.ok("COPY 2 INBOX");
    assert!(code(&r.tagged, "COPYUID").is_some(), "{r:#?}");

    // CLOSE expunges a \Deleted message even if it was renamed meanwhile:
    // A's rename must keep B's T, and B's CLOSE must find the renamed file.
    // Checked on disk by name and content, so that a lost \Deleted (the
    // message still there, without T) fails as surely as a wrong expunge.
    b.ok("STORE 3 +FLAGS (\\Deleted)");
    a.ok("NOOP");
    a.ok("STORE 3 +FLAGS (\\Seen)");
    let renamed = cur_file_with_base(&m, &bases[2]).expect("message 3 vanished before CLOSE");
    assert_eq!(
        flags_of_name(&renamed),
        "ST",
        "A's \\Seen must keep B's \\Deleted"
    );
    b.ok("CLOSE");
    let cur = files(&m.join("cur"));
    assert_eq!(
        cur_file_with_base(&m, &bases[2]),
        None,
        "CLOSE left the message B marked \\Deleted: {cur:?}"
    );
    for base in &bases[..2] {
        assert!(
            cur_file_with_base(&m, base).is_some(),
            "CLOSE removed {base}, which was not \\Deleted: {cur:?}"
        );
    }
    assert_eq!(cur.len(), 3, "s1, s2 and the copy of s2 remain: {cur:?}");
    assert!(
        cur_files_containing(&m, "Subject: s3\n").is_empty(),
        "{cur:?}"
    );
    assert_eq!(
        cur_files_containing(&m, "Subject: s2\n").len(),
        2,
        "{cur:?}"
    );

    // MOVE after a rename: the source goes, the message is not doubled.
    b.ok("SELECT INBOX");
    b.ok("CREATE INBOX.Moved");
    a.ok("NOOP");
    a.ok("STORE 1 -FLAGS (\\Answered)");
    let before = files(&m.join("cur")).len();
    b.ok("MOVE 1 INBOX.Moved");
    assert_eq!(files(&m.join("cur")).len(), before - 1);
    assert_eq!(files(&m.join(".Moved/cur")).len(), 1);
}

/// A UID that EXAMINE reported can never name another message: numbers
/// given to messages still in new/ are reserved in the UID database.
#[test]
fn examine_numbers_are_never_given_to_another_message() {
    let t = TestDir::new("examine-uid");
    let m = t.maildir();
    write_uiddb(
        &m,
        795_700_002,
        2,
        &[(1, &put_cur(&m, &message("old", "x"), ""))],
    );
    deliver(&m, &message("waiting", "in new"));
    let (_s1, mut a) = preauth(&t, &m);
    let r = a.ok("EXAMINE INBOX");
    assert!(r.contains("* 2 EXISTS"), "{r:#?}");
    let r = a.ok("UID FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(r.untagged.iter().any(|l| l.contains("UID 2")), "{r:#?}");
    assert!(r.untagged.join("\n").contains("waiting"), "{r:#?}");

    let (_s2, mut b) = preauth(&t, &m);
    let r = b.ok(&format!(
        "APPEND INBOX {}",
        lit_plus(&crlf(&message("appended", "later")))
    ));
    let appended_uid = code(&r.tagged, "APPENDUID").unwrap();
    assert_ne!(
        appended_uid.get(1).map(String::as_str),
        Some("2"),
        "UID 2 was already given out by EXAMINE: {r:#?}"
    );
    a.ok("NOOP");
    let r = a.ok("UID FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        r.untagged.join("\n").contains("waiting"),
        "UID 2 must still be the same message: {r:#?}"
    );
    // SELECT keeps the number EXAMINE gave.
    let r = b.ok("SELECT INBOX");
    assert!(r.contains("* 3 EXISTS"), "{r:#?}");
    let r = b.ok("UID FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(r.untagged.join("\n").contains("waiting"), "{r:#?}");
}

/// When the selected mailbox is deleted and recreated by another session
/// (a new UIDVALIDITY), the client's UIDs mean nothing any more: the
/// session ends with BYE rather than serve other messages under old UIDs.
#[test]
fn recreated_mailbox_ends_the_session() {
    let (t, m, _s, mut a) = setup("uidvalidity");
    a.ok("CREATE INBOX.X");
    a.ok(&format!(
        "APPEND INBOX.X {}",
        lit_plus(&crlf(&message("old1", "x")))
    ));
    a.ok("SELECT INBOX.X");
    let (_s2, mut b) = preauth(&t, &m);
    b.ok("DELETE INBOX.X");
    b.ok("CREATE INBOX.X");
    b.ok(&format!(
        "APPEND INBOX.X {}",
        lit_plus(&crlf(&message("NEW1", "x")))
    ));
    a.send(b"n1 NOOP\r\n");
    let mut saw_bye = false;
    loop {
        match a.read_line_within(HANG_GUARD) {
            Read1::Line(l) if l.starts_with("* BYE") => saw_bye = true,
            Read1::Line(_) => {}
            Read1::Eof => break,
            Read1::Timeout => panic!("the session neither ended nor answered"),
        }
    }
    assert!(saw_bye, "a recreated mailbox must end the session with BYE");
}

/// LIST matches patterns in polynomial time, proven without timing it: the
/// patterns below against a 200-byte name make a backtracking matcher try
/// about C(200, 20) > 10^27 ways to place the wildcards, which no machine
/// finishes in a lifetime, while the matcher's table takes about 8,000 steps
/// per name. So an answer at all, within a bound that only guards against a
/// hang, is the proof; the matching pattern shows the name was looked at.
#[test]
fn list_pattern_matching_is_not_exponential() {
    let (_t, _m, _s, mut c) = setup("list-dos");
    c.timeout = HANG_GUARD;
    let name = format!("INBOX.{}", "a".repeat(200));
    c.ok(&format!("CREATE {name}"));
    for wildcard in ["*", "%"] {
        let stars = format!("{wildcard}a").repeat(20);
        let r = c.ok(&format!("LIST \"\" \"INBOX.{stars}b\""));
        assert!(r.untagged.is_empty(), "{r:#?}");
        let r = c.ok(&format!("LIST \"\" \"INBOX.{stars}\""));
        assert_eq!(r.lines("* LIST").len(), 1, "{r:#?}");
        assert!(r.untagged[0].ends_with(&format!("\"{name}\"")), "{r:#?}");
    }
}

/// Renaming the selected mailbox: the session follows it to its new name
/// (its UIDs travel with it) and still sees changes there.
#[test]
fn renaming_the_selected_mailbox_keeps_it_usable() {
    let (_t, m, _s, mut c) = setup("rename-selected");
    c.ok("CREATE INBOX.A");
    c.ok(&format!(
        "APPEND INBOX.A {}",
        lit_plus(&crlf(&message("in A", "x")))
    ));
    c.ok("SELECT INBOX.A");
    c.ok("RENAME INBOX.A INBOX.B");
    let r = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(r.untagged.join("\n").contains("in A"), "{r:#?}");
    deliver(&m.join(".B"), &message("later", "y"));
    let r = c.ok("NOOP");
    assert!(r.contains("* 2 EXISTS"), "{r:#?}");
    c.ok("STORE 1 +FLAGS (\\Flagged)");
    assert!(
        files(&m.join(".B/cur"))
            .iter()
            .any(|f| flags_of_name(f).contains('F'))
    );
}

/// RFC 2971 §3.3 lets a client send 30 fields of 1,024-octet values; before
/// login that is a 32 KiB line, which must be accepted (imaptest `id`),
/// and one far beyond it still refused.
#[test]
fn id_accepts_rfc2971_limits_before_and_after_login() {
    let dir = TestDir::new("id-limits");
    let (_server, mut c, _maildir) = login_mode(&dir);
    let fields: Vec<String> = (0..30)
        .map(|i| format!("\"{:0<30}\" \"{}\"", format!("k{i}"), "v".repeat(1024)))
        .collect();
    let id = format!("ID ({})", fields.join(" "));
    let r = c.ok(&id);
    assert!(r.contains("* ID"), "{r:#?}");
    let r = c.cmd(&format!("ID (\"big\" \"{}\")", "v".repeat(100_000)));
    assert!(r.is_bad() && r.tagged.contains("[TOOBIG]"), "{r:#?}");
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    let r = c.ok(&id);
    assert!(r.contains("* ID"), "{r:#?}");
    c.ok("LOGOUT");
}

/// Courier's IMAP_DISABLETHREADSORT=1: SORT, THREAD and ESORT are neither advertised (Courier
/// keeps advertising them) nor served: NO [CANNOT]. SEARCH is unaffected.
#[test]
fn imap_disablethreadsort_withdraws_sort_and_thread() {
    let t = TestDir::new("nothreadsort");
    let (conf, users, maildir) = t.write_userfile();
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("IMAP_DISABLETHREADSORT=1\n");
    fs::write(&conf, text).unwrap();
    deliver(&maildir, &message("one", "x"));
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = mail_ids();
        chown_tree(&t.join("home"), uid, gid);
    }
    let (_s, mut c) = spawn_mdimapd(
        &t,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--userfile",
            users.to_str().unwrap(),
        ],
    );
    let login = c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    let after = c.ok("CAPABILITY").untagged[0].clone();
    for line in [&c.greeting, &login.tagged, &after] {
        let words: Vec<&str> = line.split([' ', ']', '[']).collect();
        assert!(words.contains(&"IMAP4rev1"), "{line}");
        for gone in [
            "SORT",
            "SORT=DISPLAY",
            "THREAD=REFERENCES",
            "THREAD=ORDEREDSUBJECT",
            "ESORT",
        ] {
            assert!(!words.contains(&gone), "{gone} in {line}");
        }
    }
    c.ok("SELECT INBOX");
    for command in [
        "SORT (DATE) UTF-8 ALL",
        "UID SORT (SUBJECT) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    ] {
        let r = c.cmd(command);
        assert!(
            r.is_no() && r.tagged.contains("[CANNOT]"),
            "{command}: {r:#?}"
        );
    }
    assert_eq!(c.ok("SEARCH ALL").search(), vec![1]);
}
