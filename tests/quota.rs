//! Maildir++ soft quotas shared with maildrop: what mdimapd writes to `maildirsize` for
//! each change, what it refuses with `NO [OVERQUOTA]` (and that a refusal leaves nothing
//! behind), the QUOTA commands, `mdimap quota`, and agreement with the real `deliverquota`
//! and `maildirmake` of Debian's maildrop package on the same maildir, at the same time.
//!
//! These tests own the observable contract: bytes on the wire, files on disk, exit codes of
//! maildrop's programs. They must not reach into the library: what a maildir "uses" is
//! read from the disk here as the Maildir++ rules define it (spec/courier-files.md §6), and
//! compared with what mdimapd, `mdimap quota` and `deliverquota` say. A missing maildrop
//! is a failure with instructions, never a skip.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

/// maildrop's programs, installed beside Courier's under these names by Debian.
const MAILDIRMAKE: &str = "/usr/bin/maildirmake.maildrop";
const DELIVERQUOTA: &str = "/usr/sbin/deliverquota.maildrop";
/// deliverquota's exit status for "Mail quota exceeded."
const EX_OVERQUOTA: i32 = 77;

fn maildrop_tool(path: &'static str) -> &'static str {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing; these tests need Debian's maildrop package: \
         DEBIAN_FRONTEND=noninteractive apt-get install -y maildrop (./test.sh does this as root)"
    );
    path
}

/// Sets the quota of the existing maildir `maildir` with `maildirmake -q`, as an
/// administrator does. (maildrop's maildirmake waits forever on a missing maildir.)
fn maildirmake_quota(maildir: &Path, quota: &str) {
    assert!(maildir.join("tmp").is_dir(), "no maildir at {maildir:?}");
    let out = Command::new(maildrop_tool(MAILDIRMAKE))
        .arg("-q")
        .arg(quota)
        .arg(maildir)
        .output()
        .unwrap();
    assert!(out.status.success(), "maildirmake -q: {out:?}");
}

/// Runs `deliverquota <folder> [quota]` with `message` on standard input (a regular file,
/// as an MTA hands it over), as `user` when given; returns its exit status.
fn deliverquota(
    scratch: &TestDir,
    folder: &Path,
    quota: Option<&str>,
    message: &str,
    user: Option<(u32, u32)>,
) -> i32 {
    let input = scratch.join(&format!("msg-{}", unique_name(message.len())));
    fs::write(&input, message).unwrap();
    let mut cmd = Command::new(maildrop_tool(DELIVERQUOTA));
    cmd.arg(folder);
    if let Some(q) = quota {
        cmd.arg(q);
    }
    cmd.stdin(fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().unwrap();
    let _ = fs::remove_file(&input);
    let code = out.status.code().expect("deliverquota killed by a signal");
    assert!(
        code == 0 || code == EX_OVERQUOTA,
        "deliverquota {folder:?}: {out:?}"
    );
    code
}

/// A message of exactly `size` bytes as stored (LF line ends, ending in one).
fn sized_message(tag: &str, size: usize) -> String {
    let head = format!("Subject: {tag}\n\n");
    assert!(size > head.len() + 1, "{size} is too small for a message");
    format!("{head}{}\n", "x".repeat(size - head.len() - 1))
}

/// APPEND of `message` (sent with CRLF, stored with LF).
fn append(c: &mut Client, mailbox: &str, flags: &str, message: &str) -> Response {
    c.cmd(&format!("APPEND {mailbox} {flags} {}", lit(&crlf(message))))
}

fn maildirsize(maildir: &Path) -> String {
    fs::read_to_string(maildir.join("maildirsize")).unwrap()
}

/// A change line exactly as Courier writes it (`%12s %12s\n`).
fn line(bytes: i64, messages: i64) -> String {
    format!("{bytes:>12} {messages:>12}\n")
}

/// The sum of the change lines of `maildirsize` (any blanks between the numbers).
fn file_sum(maildir: &Path) -> (i64, i64) {
    let text = maildirsize(maildir);
    let mut sum = (0, 0);
    for l in text.lines().skip(1) {
        let mut it = l.split_whitespace().map(|n| n.parse::<i64>().unwrap());
        sum.0 += it.next().unwrap();
        sum.1 += it.next().unwrap();
    }
    sum
}

/// What the maildir uses by the Maildir++ rules, read from the disk: the `,S=` sizes of
/// the files in new/ and cur/ of the root and of every `.Folder` but `.Trash`, leaving out
/// files flagged `T`.
fn disk_use(maildir: &Path) -> (i64, i64) {
    let mut dirs = vec![maildir.to_path_buf()];
    for e in fs::read_dir(maildir).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.starts_with('.') && name != ".Trash" && e.path().join("cur").is_dir() {
            dirs.push(e.path());
        }
    }
    let mut used = (0, 0);
    for dir in dirs {
        for sub in ["new", "cur"] {
            for name in files(&dir.join(sub)) {
                if name.starts_with('.') || flags_of_name(&name).contains('T') {
                    continue;
                }
                let base = base_of(&name);
                let size: i64 = base[base.rfind(",S=").unwrap() + 3..].parse().unwrap();
                used.0 += size;
                used.1 += 1;
            }
        }
    }
    used
}

/// `(STORAGE used limit, MESSAGE used limit)` from the `* QUOTA "ROOT" (...)` line of `r`.
fn quota_numbers(r: &Response) -> Vec<u64> {
    let l = r
        .line("* QUOTA \"ROOT\" (")
        .unwrap_or_else(|| panic!("no * QUOTA \"ROOT\" in {r:#?}"));
    l[l.find('(').unwrap() + 1..l.rfind(')').unwrap()]
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Messages of a folder's tmp/, new/ and cur/ together.
fn all_files(folder: &Path) -> Vec<String> {
    ["tmp", "new", "cur"]
        .iter()
        .flat_map(|sub| files(&folder.join(sub)))
        .collect()
}

fn size_of_only_cur_file(folder: &Path) -> i64 {
    let names = files(&folder.join("cur"));
    assert_eq!(names.len(), 1, "{names:?}");
    let base = base_of(&names[0]);
    base[base.rfind(",S=").unwrap() + 3..].parse().unwrap()
}

/// `mdimap quota [--recalc] USER` with the test configuration; its lines.
fn mdimap_quota(conf: &Path, recalc: bool) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimap"));
    cmd.arg("quota").arg("--config").arg(conf);
    if recalc {
        cmd.arg("--recalc");
    }
    let out = cmd.arg(USER).output().unwrap();
    assert!(
        out.status.success(),
        "mdimap quota: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `(bytes, messages)` from `mdimap quota`'s `storage:` and `messages:` lines.
fn quota_tool_use(lines: &[String]) -> (i64, i64) {
    let number = |key: &str| -> i64 {
        let l = lines
            .iter()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {lines:?}"));
        l[key.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (number("storage:"), number("messages:"))
}

/// Replaces the account line of `users` with one carrying `quota` in field 7.
fn set_user_quota(users: &Path, quota: &str) {
    let text = fs::read_to_string(users).unwrap();
    let mut fields: Vec<&str> = text.trim_end().split(':').collect();
    fields.resize(8, "");
    fields[6] = quota;
    fs::write(users, format!("{}\n", fields.join(":"))).unwrap();
}

// ---------------------------------------------------------------------------
// What each change writes
// ---------------------------------------------------------------------------

#[test]
fn every_change_is_one_courier_line_and_a_folder_delete_recounts() {
    let t = TestDir::new("quota-lines");
    let m = t.maildir();
    maildirmake_quota(&m, "100000S,50C");
    let mut expected = format!("100000S,50C\n{}", line(0, 0));
    assert_eq!(maildirsize(&m), expected, "maildirmake -q wrote this");
    let (_s, mut c) = preauth(&t, &m);

    let msg = sized_message("one", 321);
    let r = append(&mut c, "INBOX", "()", &msg);
    assert!(r.is_ok(), "{r:#?}");
    let a = size_of_only_cur_file(&m);
    assert_eq!(a, 321, "stored with LF line ends");
    expected += &line(a, 1);
    assert_eq!(maildirsize(&m), expected, "APPEND");

    c.ok("CREATE INBOX.Work");
    c.ok("CREATE INBOX.Trash");
    c.ok("SELECT INBOX");
    c.ok("COPY 1 INBOX.Work");
    expected += &line(a, 1);
    assert_eq!(maildirsize(&m), expected, "COPY into a counted folder");
    c.ok("COPY 1 INBOX.Trash");
    assert_eq!(maildirsize(&m), expected, "COPY into .Trash counts nothing");

    c.ok("SELECT INBOX.Work");
    c.ok("MOVE 1 INBOX.Trash");
    expected += &line(-a, -1);
    assert_eq!(maildirsize(&m), expected, "MOVE into .Trash");
    c.ok("SELECT INBOX.Trash");
    c.ok("UID MOVE 1:* INBOX");
    expected += &line(2 * a, 2);
    assert_eq!(maildirsize(&m), expected, "MOVE out of .Trash, one line");
    c.ok("SELECT INBOX");
    c.ok("MOVE 2 INBOX.Work");
    assert_eq!(maildirsize(&m), expected, "MOVE between counted folders");

    c.ok("STORE 1 +FLAGS (\\Deleted)");
    expected += &line(-a, -1);
    assert_eq!(maildirsize(&m), expected, "STORE +\\Deleted");
    c.ok("STORE 1 -FLAGS.SILENT (\\Deleted)");
    expected += &line(a, 1);
    assert_eq!(maildirsize(&m), expected, "STORE -\\Deleted");
    c.ok("STORE 1:* FLAGS (\\Deleted \\Seen)");
    expected += &line(-2 * a, -2);
    assert_eq!(maildirsize(&m), expected, "STORE FLAGS, one line for both");
    let r = c.ok("STATUS INBOX.Work (DELETED DELETED-STORAGE MESSAGES)");
    assert!(
        r.contains("(DELETED 0 DELETED-STORAGE 0 MESSAGES 1)"),
        "{r:#?}"
    );
    c.ok("EXPUNGE");
    assert_eq!(
        maildirsize(&m),
        expected,
        "EXPUNGE of \\Deleted frees nothing more"
    );
    for l in maildirsize(&m).lines().skip(1) {
        assert_eq!(l.len(), 25, "26 bytes with the newline: {l:?}");
    }
    assert_eq!(file_sum(&m), disk_use(&m));

    // DELETE of a folder with a message: counted anew, as Courier does.
    c.ok("SELECT INBOX");
    c.ok("DELETE INBOX.Work");
    assert_eq!(disk_use(&m), (0, 0));
    assert_eq!(maildirsize(&m), format!("100000S,50C\n{}", line(0, 0)));
    let r = c.ok("GETQUOTAROOT INBOX");
    assert!(r.contains("* QUOTAROOT \"INBOX\" \"ROOT\""), "{r:#?}");
    assert_eq!(quota_numbers(&r), vec![0, 98, 0, 50]);
    assert!(
        all_files(&m).is_empty(),
        "nothing left in tmp/: {:?}",
        all_files(&m)
    );
}

#[test]
fn quota_commands_answer_as_courier_names_them() {
    let t = TestDir::new("quota-commands");
    let m = t.maildir();
    let (_s, mut c) = preauth(&t, &m);
    let caps = c.ok("CAPABILITY");
    let caps = caps.line("* CAPABILITY").unwrap().to_string();
    for cap in ["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"] {
        assert!(caps.split(' ').any(|w| w == cap), "{cap}: {caps}");
    }
    assert!(!caps.contains("QUOTASET"), "{caps}");
    // No maildirsize, no user record: no quota root at all.
    let r = c.ok("GETQUOTAROOT INBOX");
    assert_eq!(r.lines("* QUOTAROOT"), vec!["* QUOTAROOT \"INBOX\""]);
    assert!(r.line("* QUOTA ").is_none(), "{r:#?}");
    let r = c.no("GETQUOTA \"ROOT\"");
    assert!(r.tagged.contains("[NONEXISTENT]"), "{r:#?}");

    maildirmake_quota(&m, "2000S");
    append(&mut c, "INBOX", "()", &sized_message("a", 1500));
    let r = c.ok("GETQUOTAROOT inbox");
    assert_eq!(
        r.lines("* QUOTAROOT"),
        vec!["* QUOTAROOT \"INBOX\" \"ROOT\""]
    );
    assert_eq!(
        r.lines("* QUOTA \"ROOT\""),
        vec!["* QUOTA \"ROOT\" (STORAGE 2 2)"]
    );
    let r = c.ok("GETQUOTAROOT INBOX.NotYet");
    assert!(
        r.contains("* QUOTAROOT \"INBOX.NotYet\" \"ROOT\""),
        "{r:#?}"
    );
    let r = c.ok("GETQUOTA ROOT");
    assert_eq!(r.lines("* QUOTA"), vec!["* QUOTA \"ROOT\" (STORAGE 2 2)"]);
    for other in ["GETQUOTA \"\"", "GETQUOTA root", "GETQUOTA \"INBOX\""] {
        let r = c.no(other);
        assert!(r.tagged.contains("[NONEXISTENT]"), "{r:#?}");
    }
    let r = c.no("SETQUOTA \"ROOT\" (STORAGE 100000)");
    assert!(r.tagged.contains("[NOPERM]"), "{r:#?}");
    c.refused("SETQUOTA ROOT STORAGE");
    let before = maildirsize(&m);
    c.no("SETQUOTA \"ROOT\" ()");
    assert_eq!(maildirsize(&m), before);
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[test]
fn over_quota_append_copy_move_store_fail_and_leave_nothing() {
    let t = TestDir::new("quota-refuse");
    let m = t.maildir();
    let work = make_folder(&m, ".Work");
    let trash = make_folder(&m, ".Trash");
    maildirmake_quota(&m, "1000S,3C");
    let (_s, mut c) = preauth(&t, &m);

    assert!(append(&mut c, "INBOX", "()", &sized_message("a", 600)).is_ok());
    let r = append(&mut c, "INBOX", "()", &sized_message("b", 401));
    assert!(r.is_no() && r.tagged.contains("[OVERQUOTA]"), "{r:#?}");
    assert_eq!(all_files(&m).len(), 1, "{:?}", all_files(&m));
    // Exactly full is allowed.
    assert!(append(&mut c, "INBOX", "()", &sized_message("c", 400)).is_ok());
    assert_eq!(file_sum(&m), (1000, 2));

    c.ok("SELECT INBOX");
    let r = c.no("COPY 1 INBOX.Work");
    assert!(r.tagged.contains("[OVERQUOTA]"), "{r:#?}");
    assert!(all_files(&work).is_empty(), "{:?}", all_files(&work));
    // .Trash does not count: the copy goes in.
    c.ok("COPY 1 INBOX.Trash");
    c.ok("SELECT INBOX.Trash");
    let r = c.no("MOVE 1 INBOX.Work");
    assert!(r.tagged.contains("[OVERQUOTA]"), "{r:#?}");
    assert!(r.line("* 1 EXPUNGE").is_none(), "{r:#?}");
    assert_eq!(files(&trash.join("cur")).len(), 1, "the source stays");
    assert!(all_files(&work).is_empty(), "{:?}", all_files(&work));

    // \Deleted messages do not count; taking the flag off is checked.
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    assert_eq!(file_sum(&m), (400, 1));
    assert!(append(&mut c, "INBOX", "()", &sized_message("d", 300)).is_ok());
    let r = c.no("STORE 1 -FLAGS (\\Deleted)");
    assert!(r.tagged.contains("[OVERQUOTA]"), "{r:#?}");
    let deleted = files(&m.join("cur"))
        .into_iter()
        .filter(|n| flags_of_name(n).contains('T'))
        .count();
    assert_eq!(deleted, 1, "the flag stays on");
    assert_eq!(file_sum(&m), (700, 2));

    // The message limit: three messages are allowed, a fourth is not.
    assert!(append(&mut c, "INBOX", "()", &sized_message("e", 20)).is_ok());
    let r = append(&mut c, "INBOX", "()", &sized_message("f", 20));
    assert!(r.tagged.contains("[OVERQUOTA]"), "{r:#?}");
    assert_eq!(file_sum(&m), disk_use(&m));
    assert!(files(&m.join("tmp")).is_empty());
    assert!(files(&m.join("new")).is_empty());
}

// ---------------------------------------------------------------------------
// The user record's quota, and `mdimap quota`
// ---------------------------------------------------------------------------

#[test]
fn the_user_record_quota_makes_and_rewrites_maildirsize() {
    let t = TestDir::new("quota-user");
    let (conf, users, m) = t.write_userfile();
    set_user_quota(&users, "5000S,10C");
    let (uid, _) = mail_ids();
    let (_s, mut c, _) = login_mode(&t);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(!m.join("maildirsize").exists());
    assert!(append(&mut c, "INBOX", "()", &sized_message("a", 1000)).is_ok());
    assert_eq!(
        maildirsize(&m),
        format!("5000S,10C\n{}{}", line(0, 0), line(1000, 1)),
        "made with the user record's limits, then the APPEND recorded"
    );
    assert_eq!(
        fs::metadata(m.join("maildirsize")).unwrap().uid(),
        uid,
        "the mail user's file"
    );
    let r = c.ok("GETQUOTAROOT INBOX");
    assert_eq!(quota_numbers(&r), vec![1, 5, 1, 10]);
    // Limits the user record does not name are replaced before anything is decided.
    fs::write(m.join("maildirsize"), "100S\n         1000            1\n").unwrap();
    assert!(append(&mut c, "INBOX", "()", &sized_message("b", 500)).is_ok());
    assert_eq!(
        maildirsize(&m),
        format!("5000S,10C\n{}{}", line(1000, 1), line(500, 1))
    );
    let r = append(&mut c, "INBOX", "()", &sized_message("c", 3501));
    assert!(r.tagged.contains("[OVERQUOTA]"), "{r:#?}");

    let shown = mdimap_quota(&conf, false);
    assert!(
        shown.contains(&"limits: 5000S,10C (from the user record)".to_string()),
        "{shown:?}"
    );
    assert_eq!(quota_tool_use(&shown), (1500, 2));
}

#[test]
fn mdimap_quota_recalc_rebuilds_a_drifted_maildirsize() {
    let t = TestDir::new("quota-recalc");
    let (conf, _users, m) = t.write_userfile();
    let (uid, gid) = mail_ids();
    deliver(&m, &sized_message("a", 700));
    put_cur(&m, &sized_message("b", 300), "S");
    put_cur(&m, &sized_message("gone", 50), "ST");
    // A file that says more than there is, in one fresh line: trusted as it is.
    fs::write(m.join("maildirsize"), format!("9000S\n{}", line(4000, 9))).unwrap();
    chown_tree(&m, uid, gid);
    assert_eq!(quota_tool_use(&mdimap_quota(&conf, false)), (4000, 9));
    let shown = mdimap_quota(&conf, true);
    assert!(
        shown.contains(&"limits: 9000S (from maildirsize)".to_string()),
        "{shown:?}"
    );
    assert_eq!(quota_tool_use(&shown), (1000, 2));
    assert_eq!(maildirsize(&m), format!("9000S\n{}", line(1000, 2)));
    let meta = fs::metadata(m.join("maildirsize")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (uid, gid),
        "rebuilt as the mail user"
    );
    assert!(files(&m.join("tmp")).is_empty());

    fs::remove_file(m.join("maildirsize")).unwrap();
    assert_eq!(mdimap_quota(&conf, true)[1], "no quota");
    assert!(!m.join("maildirsize").exists(), "no quota, no file made");
}

// ---------------------------------------------------------------------------
// maildrop's deliverquota on the same maildir
// ---------------------------------------------------------------------------

/// Flags `\Deleted` the message whose subject is `subject` in the selected mailbox.
fn delete_by_subject(c: &mut Client, subject: &str) {
    c.ok("NOOP");
    let found = c.ok(&format!("SEARCH SUBJECT \"{subject}\"")).search();
    assert_eq!(found.len(), 1, "{subject}: {found:?}");
    c.ok(&format!("STORE {} +FLAGS (\\Deleted)", found[0]));
}

#[test]
fn deliverquota_and_mdimap_refuse_alike() {
    let t = TestDir::new("quota-refuse-alike");
    let m = t.maildir();
    maildirmake_quota(&m, "1000S,4C");
    let (_s, mut c) = preauth(&t, &m);
    let dq = |tag: &str, size: usize| deliverquota(&t, &m, None, &sized_message(tag, size), None);
    let appended = |c: &mut Client, tag: &str, size: usize| {
        let r = append(c, "INBOX", "()", &sized_message(tag, size));
        assert!(r.is_ok() || r.tagged.contains("[OVERQUOTA]"), "{r:#?}");
        r.is_ok()
    };

    assert_eq!(dq("mta-a", 400), 0);
    assert!(appended(&mut c, "imap-b", 400));
    // 1100 bytes would be over for both.
    assert_eq!(dq("mta-c", 300), EX_OVERQUOTA);
    assert!(!appended(&mut c, "imap-c", 300));
    // Exactly full is allowed by both.
    assert_eq!(dq("mta-d", 100), 0);
    assert!(appended(&mut c, "imap-e", 100));
    assert_eq!(disk_use(&m), (1000, 4));
    assert_eq!(dq("mta-f", 20), EX_OVERQUOTA);
    assert!(!appended(&mut c, "imap-f", 20));

    // mdimap frees room; deliverquota sees it.
    c.ok("SELECT INBOX");
    delete_by_subject(&mut c, "mta-a");
    delete_by_subject(&mut c, "imap-e");
    assert_eq!(disk_use(&m), (500, 2));
    assert_eq!(dq("mta-g", 500), 0);
    // deliverquota filled it; mdimap sees that.
    assert!(!appended(&mut c, "imap-h", 20));
    // The message limit, both ways: four are allowed, a fifth is not.
    delete_by_subject(&mut c, "imap-b");
    assert_eq!(disk_use(&m), (600, 2));
    assert_eq!(dq("mta-i", 50), 0);
    assert!(appended(&mut c, "imap-j", 50));
    assert_eq!(disk_use(&m), (700, 4));
    assert_eq!(dq("mta-k", 20), EX_OVERQUOTA);
    assert!(!appended(&mut c, "imap-k", 20));

    assert_eq!(file_sum(&m), disk_use(&m));
    let r = c.ok("GETQUOTA ROOT");
    assert_eq!(quota_numbers(&r), vec![1, 1, 4, 4]);
}

#[test]
fn deliverquota_and_mdimap_sessions_at_once_agree_on_use() {
    let t = TestDir::new("quota-concurrent");
    let (conf, _users, m) = t.write_userfile();
    let work = make_folder(&m, ".Work");
    maildirmake_quota(&m, "100000000S,100000C");
    let user = mail_ids();
    chown_tree(&m, user.0, user.1);
    let (_s, mut c, _) = login_mode(&t);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("CREATE INBOX.Trash");

    let delivering = {
        let (inbox, work) = (m.clone(), work.clone());
        let scratch = TestDir::new("quota-concurrent-mta");
        let user = (unsafe { libc::getuid() } == 0).then_some(user);
        thread::spawn(move || {
            for i in 0..40 {
                let folder = if i % 3 == 0 { &work } else { &inbox };
                let code =
                    deliverquota(&scratch, folder, None, &sized_message("mta", 100 + i), user);
                assert_eq!(code, 0, "delivery {i}");
            }
        })
    };
    for i in 0..12 {
        let r = append(
            &mut c,
            "INBOX",
            "(\\Seen)",
            &sized_message("client", 200 + i),
        );
        assert!(r.is_ok(), "{r:#?}");
        c.ok("SELECT INBOX");
        match i % 4 {
            0 => c.ok("COPY 1 INBOX.Work"),
            1 => c.ok("MOVE 1 INBOX.Trash"),
            2 => c.ok("STORE 1 +FLAGS (\\Deleted)"),
            _ => c.ok("EXPUNGE"),
        };
        if i % 5 == 4 {
            c.ok("SELECT INBOX.Trash");
            c.ok("MOVE 1 INBOX.Work");
        }
    }
    delivering.join().unwrap();

    let disk = disk_use(&m);
    assert_eq!(
        file_sum(&m),
        disk,
        "every change of both was recorded once:\n{}",
        maildirsize(&m)
    );
    let r = c.ok("GETQUOTA ROOT");
    let kib = (disk.0 + 1023) / 1024;
    assert_eq!(
        quota_numbers(&r),
        vec![kib as u64, 97657, disk.1 as u64, 100000]
    );
    assert_eq!(quota_tool_use(&mdimap_quota(&conf, false)), disk);
    assert_eq!(quota_tool_use(&mdimap_quota(&conf, true)), disk);
    // What mdimap rebuilt, deliverquota reads and adds to; what it added, mdimap reads.
    let last = sized_message("after", 150);
    assert_eq!(
        deliverquota(
            &t,
            &m,
            None,
            &last,
            (unsafe { libc::getuid() } == 0).then_some(user)
        ),
        0
    );
    assert_eq!(
        maildirsize(&m),
        format!(
            "100000000S,100000C\n{}{}",
            line(disk.0, disk.1),
            line(150, 1)
        )
    );
    assert_eq!(
        quota_tool_use(&mdimap_quota(&conf, false)),
        (disk.0 + 150, disk.1 + 1)
    );
}

#[test]
fn deliverquota_with_a_quota_argument_and_mdimap_with_the_same_user_record_agree() {
    // maildrop delivers with the user record's quota (its MAILDIRQUOTA, deliverquota's second
    // argument); mdimap applies the same record's quota field.
    let t = TestDir::new("quota-assigned");
    let (conf, users, m) = t.write_userfile();
    set_user_quota(&users, "3000S,5C");
    let user = (unsafe { libc::getuid() } == 0).then(mail_ids);
    assert_eq!(
        deliverquota(&t, &m, Some("3000S,5C"), &sized_message("a", 1000), user),
        0
    );
    assert_eq!(maildirsize(&m).lines().next(), Some("3000S,5C"));
    let (_s, mut c, _) = login_mode(&t);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(append(&mut c, "INBOX", "()", &sized_message("b", 1500)).is_ok());
    let r = c.ok("GETQUOTAROOT INBOX");
    assert_eq!(quota_numbers(&r), vec![3, 3, 2, 5]);
    assert_eq!(
        deliverquota(&t, &m, Some("3000S,5C"), &sized_message("c", 501), user),
        EX_OVERQUOTA
    );
    let r = append(&mut c, "INBOX", "()", &sized_message("c", 501));
    assert!(r.tagged.contains("[OVERQUOTA]"), "{r:#?}");
    assert_eq!(quota_tool_use(&mdimap_quota(&conf, false)), (2500, 2));
    assert_eq!(file_sum(&m), disk_use(&m));
}
