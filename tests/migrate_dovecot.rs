//! `mdimap migrate-dovecot` on a maildir that the real Dovecot populated: Dovecot's
//! `imap` runs standalone (PREAUTH on a socket) on a fresh maildir and is driven
//! like a client (folders, one of them non-ASCII, APPENDs with flags and
//! keywords, expunges that leave UID gaps, subscriptions, a message it numbered
//! while it was still in new/). What Dovecot itself then reports (UIDVALIDITY,
//! UIDNEXT, every message's UID, flags and keywords, subscriptions) is the
//! expectation; after the migration `mdimapd` must report the same.
//!
//! This file owns only the client side and the comparisons: it must not
//! reimplement Dovecot's formats or the migration (no `use mdimap::...`).
//!
//! Dovecot is never installed (it conflicts with courier-imap): it is fetched
//! and run from its unpacked Debian packages by tests/common (`dovecot_preauth`),
//! as nobody under root. Without the packages the test fails with
//! instructions; it never skips.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `mdimap migrate-dovecot <args> <maildir>`.
fn migrate(maildir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdimap"))
        .arg("migrate-dovecot")
        .args(args)
        .arg(maildir)
        .output()
        .expect("cannot run mdimap")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn migrate_ok(maildir: &Path, args: &[&str]) -> String {
    let out = migrate(maildir, args);
    assert!(
        out.status.success(),
        "migrate-dovecot {args:?} failed:\n{}",
        text(&out)
    );
    text(&out)
}

// ---------------------------------------------------------------------------
// What a server says about a folder
// ---------------------------------------------------------------------------

/// One message as a client sees it: UID and flags (without \Recent, which is
/// session state), keyed by Message-ID.
type Messages = BTreeMap<String, (u32, BTreeSet<String>)>;

#[derive(Debug, Clone, PartialEq)]
struct FolderView {
    uidvalidity: u32,
    uidnext: u32,
    messages: Messages,
}

fn code_number(r: &Response, code: &str) -> u32 {
    let key = format!("[{code} ");
    let line = r
        .untagged
        .iter()
        .chain(std::iter::once(&r.tagged))
        .find(|l| l.contains(&key))
        .unwrap_or_else(|| panic!("no {code} in {r:#?}"));
    let at = line.find(&key).unwrap() + key.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn fetch_messages(c: &mut Client) -> Messages {
    let r = c.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
    let mut out = Messages::new();
    for (_, line) in r.fetches() {
        let uid_at = find_ci(line, "UID ").unwrap() + 4;
        let uid: u32 = line[uid_at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let flags_at = find_ci(line, "FLAGS (").unwrap() + 7;
        let flags_end = flags_at + line[flags_at..].find(')').unwrap();
        let flags: BTreeSet<String> = line[flags_at..flags_end]
            .split_whitespace()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .map(str::to_string)
            .collect();
        let id_at =
            find_ci(line, "Message-ID:").unwrap_or_else(|| panic!("no Message-ID in {line}"));
        let id_start = id_at + line[id_at..].find('<').unwrap();
        let id_end = id_start + line[id_start..].find('>').unwrap() + 1;
        out.insert(line[id_start..id_end].to_string(), (uid, flags));
    }
    out
}

/// SELECT (or EXAMINE) `name` and read everything a client keeps about it.
fn view(c: &mut Client, verb: &str, name: &str) -> FolderView {
    let r = c.ok(&format!("{verb} \"{name}\""));
    FolderView {
        uidvalidity: code_number(&r, "UIDVALIDITY"),
        uidnext: code_number(&r, "UIDNEXT"),
        messages: fetch_messages(c),
    }
}

fn lsub(c: &mut Client) -> BTreeSet<String> {
    let r = c.ok("LSUB \"\" \"*\"");
    r.lines("* LSUB")
        .iter()
        .map(|l| {
            let name = l.rsplit(' ').next().unwrap();
            name.trim_matches('"').to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The Dovecot maildir
// ---------------------------------------------------------------------------

/// Folders as Dovecot names them (separator `.`, no prefix) and as mdimap does.
const FOLDERS: [(&str, &str); 6] = [
    ("INBOX", "INBOX"),
    ("Work", "INBOX.Work"),
    ("Work.Reports", "INBOX.Work.Reports"),
    ("R&AOk-sum&AOk-", "INBOX.R&AOk-sum&AOk-"),
    ("Empty", "INBOX.Empty"),
    (APPEND_ONLY, "INBOX.Archive"),
];

/// Created last and only APPENDed to (see `populate`).
const APPEND_ONLY: &str = "Archive";

/// `(uidvalidity, uid)` of an `[APPENDUID ...]` response code.
fn appenduid(r: &Response) -> (u32, u32) {
    let at = r
        .tagged
        .find("[APPENDUID ")
        .unwrap_or_else(|| panic!("no APPENDUID in {r:#?}"));
    let mut numbers = r.tagged[at + 11..]
        .split([' ', ']'])
        .map(|n| n.parse::<u32>().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// The directory of a folder after the migration (Courier's UTF-8 names).
fn courier_dir(maildir: &Path, dovecot_name: &str) -> PathBuf {
    match dovecot_name {
        "INBOX" => maildir.to_path_buf(),
        "R&AOk-sum&AOk-" => maildir.join(".Résumé"),
        other => maildir.join(format!(".{other}")),
    }
}

/// What Dovecot reported once it was done with the maildir.
struct Populated {
    /// Per folder (Dovecot's name): what Dovecot itself said.
    views: BTreeMap<String, FolderView>,
    /// Message-ID of the message delivered into Work/new/ after Dovecot's last look.
    late_id: String,
}

fn message_text(id: &str, subject: &str) -> String {
    crlf(&format!(
        "From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: {subject}\n\
         Date: Mon, 7 Aug 2023 10:00:00 +0000\nMessage-ID: {id}\n\nBody of {subject}.\n"
    ))
}

/// Delivers a message into `folder/new/` the way an MTA does, owned by the mail account.
fn mta_deliver(folder: &Path, id: &str) {
    let path = deliver(folder, &message_text(id, "delivered").replace("\r\n", "\n"));
    let (uid, gid, _, _) = mail_account();
    if is_root() {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
    }
}

fn populate(t: &TestDir, maildir: &Path) -> Populated {
    let (_dovecot, mut c) = dovecot_preauth(t, maildir);
    for (name, _) in &FOLDERS[1..] {
        if *name != APPEND_ONLY {
            c.ok(&format!("CREATE \"{name}\""));
        }
    }
    // (folder, Message-ID, flags at APPEND)
    let appends: [(&str, &str, &str); 13] = [
        ("INBOX", "<i1@t>", "\\Seen $Forwarded"),
        ("INBOX", "<i2@t>", "\\Flagged Junk"),
        ("INBOX", "<i3@t>", "\\Answered Projekt-X"),
        ("INBOX", "<i4@t>", "\\Seen"),
        ("INBOX", "<i5@t>", ""),
        ("INBOX", "<i6@t>", "\\Draft $Forwarded Junk Projekt-X"),
        ("Work", "<w1@t>", "\\Seen"),
        ("Work", "<w2@t>", "Junk"),
        ("Work", "<w3@t>", ""),
        ("Work.Reports", "<r1@t>", "$Forwarded"),
        ("Work.Reports", "<r2@t>", "\\Seen"),
        ("R&AOk-sum&AOk-", "<c1@t>", "\\Seen Junk"),
        ("R&AOk-sum&AOk-", "<c2@t>", ""),
    ];
    for (folder, id, flags) in appends {
        let body = message_text(id, &format!("message {id}"));
        c.ok(&format!("APPEND \"{folder}\" ({flags}) {}", lit(&body)));
    }
    // Gaps: expunge i2, i4 and Work's last message (so the next UID is not max+1).
    c.ok("SELECT INBOX");
    c.ok("UID STORE 2,4 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    // A keyword set after delivery, and one cleared.
    c.ok("UID STORE 5 +FLAGS (Custom)");
    c.ok("UID STORE 6 -FLAGS (Junk)");
    c.ok("SELECT Work");
    c.ok("UID STORE 3 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    for name in ["INBOX", "Work", "Work.Reports", "R&AOk-sum&AOk-"] {
        c.ok(&format!("SUBSCRIBE \"{name}\""));
    }
    // A message Dovecot numbers while it stays in new/ (STATUS and EXAMINE leave it).
    mta_deliver(maildir, "<i7@t>");
    c.ok("STATUS INBOX (UIDNEXT)");
    assert!(
        !files(&maildir.join("new")).is_empty(),
        "Dovecot moved the new/ message; the test needs it left in new/"
    );
    let mut views = BTreeMap::new();
    for (name, _) in FOLDERS.iter().filter(|(n, _)| *n != APPEND_ONLY) {
        views.insert(name.to_string(), view(&mut c, "EXAMINE", name));
    }
    // A folder that only ever got APPENDs: Dovecot adds each record to the UID list
    // without rewriting its header, whose next UID stays behind the last record. What
    // a client knows of it is what APPENDUID said (an EXAMINE would rewrite the list).
    c.ok(&format!("CREATE \"{APPEND_ONLY}\""));
    let mut archive = FolderView {
        uidvalidity: 0,
        uidnext: 0,
        messages: Messages::new(),
    };
    for (id, flags) in [("<a1@t>", "\\Seen"), ("<a2@t>", "\\Flagged Junk")] {
        let r = c.ok(&format!(
            "APPEND \"{APPEND_ONLY}\" ({flags}) {}",
            lit(&message_text(id, "archived"))
        ));
        let (uidvalidity, uid) = appenduid(&r);
        archive.uidvalidity = uidvalidity;
        archive.uidnext = uid + 1;
        let flags = flags.split(' ').map(str::to_string).collect();
        archive.messages.insert(id.to_string(), (uid, flags));
    }
    views.insert(APPEND_ONLY.to_string(), archive);
    c.ok("LOGOUT");
    // Delivered after Dovecot's last look: not in its UID list.
    let late_id = "<w4-late@t>".to_string();
    mta_deliver(&maildir.join(".Work"), &late_id);

    // The scenario is what the test means it to be.
    let inbox = &views["INBOX"];
    assert_eq!(inbox.messages.len(), 5, "{inbox:#?}");
    assert!(inbox.messages["<i1@t>"].1.contains("$Forwarded"));
    assert!(inbox.messages["<i5@t>"].1.contains("Custom"));
    assert!(inbox.messages.contains_key("<i7@t>"));
    assert!(!views["Work"].messages.contains_key("<w3@t>"));
    assert!(views["Work"].uidnext > 3, "{:#?}", views["Work"]);
    assert_ne!(views["INBOX"].uidvalidity, views["Work"].uidvalidity);
    assert!(
        maildir.join(".R&AOk-sum&AOk-").is_dir(),
        "Dovecot names folders in modified UTF-7"
    );
    Populated { views, late_id }
}

/// Every entry below `dir`: path, type, mode, owner and (for files) content.
fn tree_state(dir: &Path) -> BTreeMap<String, (u32, u32, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, u32, Vec<u8>)>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let content = if meta.is_file() {
                fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(rel, (meta.mode(), meta.uid(), content));
            if meta.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn clients_keep_uids_flags_keywords_and_subscriptions() {
    let t = TestDir::new("migrate-dovecot");
    let maildir = dovecot_maildir(&t);
    let dovecot = populate(&t, &maildir);

    let report = migrate_ok(&maildir, &[]);
    for (name, mdimap_name) in FOLDERS {
        let v = &dovecot.views[name];
        assert!(
            report.contains(&format!("UIDVALIDITY {}", v.uidvalidity)),
            "{mdimap_name}: {report}"
        );
    }

    // Each database says what Dovecot said, before any scan could touch it: the next
    // UID is Dovecot's even where its list's header lagged behind its records.
    for (name, _) in FOLDERS {
        let db = read_uiddb(&courier_dir(&maildir, name));
        let v = &dovecot.views[name];
        assert_eq!(
            (db.uidvalidity, db.nextuid),
            (v.uidvalidity, v.uidnext),
            "{name}: {db:?}"
        );
    }

    // The files are the mail user's, with the server's modes, and the non-ASCII
    // folder has its UTF-8 name.
    let (uid, _, _, _) = mail_account();
    assert!(maildir.join(".Résumé").is_dir(), "{:?}", files(&maildir));
    assert!(!maildir.join(".R&AOk-sum&AOk-").exists());
    for file in [
        maildir.join("courierimapuiddb"),
        maildir.join("courierimapkeywords/:list"),
        maildir.join("courierimapsubscribed"),
        maildir.join(".Work/courierimapuiddb"),
        maildir.join(".Work.Reports/courierimapkeywords/:list"),
        maildir.join(".Résumé/courierimapuiddb"),
        maildir.join(".Empty/courierimapuiddb"),
    ] {
        let meta = fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(
            meta.uid(),
            uid,
            "{} belongs to the mail user",
            file.display()
        );
        assert_eq!(
            meta.mode() & 0o022,
            0,
            "{} is writable by others",
            file.display()
        );
    }
    assert!(files(&maildir.join("tmp")).is_empty(), "tmp/ is left clean");

    let (_server, mut c) = mdimapd_preauth(&t, &maildir);
    for (name, mdimap_name) in FOLDERS {
        let expected = &dovecot.views[name];
        let mut seen = view(&mut c, "SELECT", mdimap_name);
        if name == "Work" {
            // The late message gets Dovecot's next UID at the first scan.
            let (late_uid, _) = seen
                .messages
                .remove(&dovecot.late_id)
                .expect("the message delivered after Dovecot is listed");
            assert_eq!(late_uid, expected.uidnext, "{seen:#?}");
            assert_eq!(seen.uidnext, expected.uidnext + 1);
            seen.uidnext = expected.uidnext;
        }
        assert_eq!(&seen, expected, "{mdimap_name}: mdimap against Dovecot");
    }
    assert_eq!(
        lsub(&mut c),
        [
            "INBOX",
            "INBOX.Work",
            "INBOX.Work.Reports",
            "INBOX.R&AOk-sum&AOk-"
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<BTreeSet<String>>()
    );
    // A new message gets Dovecot's next UID.
    let r = c.ok(&format!(
        "APPEND INBOX (\\Seen) {}",
        lit(&message_text("<i8@t>", "after the move"))
    ));
    let inbox = &dovecot.views["INBOX"];
    assert_eq!(appenduid(&r), (inbox.uidvalidity, inbox.uidnext), "{r:#?}");
    c.ok("LOGOUT");
}

#[test]
fn dry_run_and_second_run_change_nothing() {
    let t = TestDir::new("migrate-dovecot-idem");
    let maildir = dovecot_maildir(&t);
    let dovecot = populate(&t, &maildir);
    let before = tree_state(&maildir);

    let report = migrate_ok(&maildir, &["--dry-run"]);
    assert_eq!(
        tree_state(&maildir),
        before,
        "the dry run changed the maildir"
    );
    for (name, mdimap_name) in FOLDERS {
        let v = &dovecot.views[name];
        assert!(
            report.contains(&format!("UIDVALIDITY {}", v.uidvalidity)),
            "{mdimap_name} missing from the dry run: {report}"
        );
    }
    for expected in [
        "INBOX.Résumé",
        "courierimapuiddb: would write",
        "would set keywords",
        "$Forwarded",
        "Projekt-X",
        "would add",
        "dry run",
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} missing from the dry run: {report}"
        );
    }

    let first = migrate_ok(&maildir, &[]);
    let after = tree_state(&maildir);
    assert_ne!(after, before, "{first}");
    let second = migrate_ok(&maildir, &[]);
    assert!(second.contains("nothing to change"), "{second}");
    assert_eq!(
        tree_state(&maildir),
        after,
        "the second run changed the maildir"
    );
}

#[test]
fn a_different_courier_uid_database_is_refused_without_force() {
    let t = TestDir::new("migrate-dovecot-conflict");
    let maildir = dovecot_maildir(&t);
    let dovecot = populate(&t, &maildir);
    // A Courier-format database some other server wrote meanwhile.
    let db = maildir.join(".Work/courierimapuiddb");
    fs::write(&db, "1 12345 3\n1 1700000000.M1P1.elsewhere\n").unwrap();
    // And Dovecot looks busy on INBOX: its lock is fresh.
    let lock = maildir.join("dovecot-uidlist.lock");
    fs::write(&lock, "").unwrap();
    let before = tree_state(&maildir);

    let out = migrate(&maildir, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&db.display().to_string()),
        "names the file: {said}"
    );
    assert!(said.contains("--force"), "says what to do: {said}");
    assert!(
        said.contains(&lock.display().to_string()),
        "names the lock: {said}"
    );
    assert!(said.contains("Stop Dovecot"), "says what to do: {said}");
    assert_eq!(
        tree_state(&maildir),
        before,
        "a refusal changes nothing at all"
    );
    // --force does not override a running Dovecot.
    let out = migrate(&maildir, &["--force"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(tree_state(&maildir), before);
    fs::remove_file(&lock).unwrap();

    migrate_ok(&maildir, &["--force"]);
    let written = fs::read_to_string(&db).unwrap();
    assert!(
        written.starts_with(&format!("1 {} ", dovecot.views["Work"].uidvalidity)),
        "{written}"
    );
    let (_server, mut c) = mdimapd_preauth(&t, &maildir);
    let inbox = view(&mut c, "SELECT", "INBOX");
    assert_eq!(inbox, dovecot.views["INBOX"]);
    c.ok("LOGOUT");
}
