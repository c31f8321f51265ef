//! The folder index (`mdimapindex`) is disposable and never served when it does not
//! describe the folder: the same client script gives the same answers, byte for byte,
//! whether the index is warm, missing, truncated, corrupt, of another version, another
//! folder's or an older copy of its own, stale after an MTA delivery and renames behind its
//! back, stale after a change its timestamps cannot show (the same clock tick), or stale
//! after Courier-IMAP's own imapd changed flags and keywords, expunged and appended; and
//! `\Recent` is given as a scan gives it. And a warm index is used: an unchanged folder is
//! opened without listing cur/, and what it keeps (sizes, dates, ENVELOPE, BODYSTRUCTURE,
//! header fields, PREVIEW) is answered without reading a message. (On a network file system the
//! index never stands for a scan: `Index::describes`; whole-second timestamps need a window
//! of two seconds: `stamp.rs`'s unit tests. Neither can be arranged here.)
//!
//! Each case builds one maildir A with the index in the state under test and a copy B of
//! it (`cp -a`, times kept) without an index, plays the script on both and compares the
//! transcripts. Whether a directory was listed or a file read is told by its access time
//! (set two days back first; Linux's default `relatime` then updates it on a read), which
//! needs no instrumentation in the server.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const INDEX: &str = "mdimapindex";

/// A fixed INTERNALDATE for the messages put in place here (2021-03-04).
const DATE: i64 = 1_614_850_000;

fn set_mtime(path: &Path, secs: i64) {
    fs::File::open(path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs as u64))
        .unwrap();
}

/// Sets `path`'s access time `secs` back from now, leaving its modification time.
fn set_atime_back(path: &Path, secs: u64) {
    let when = SystemTime::now() - Duration::from_secs(secs);
    let d = when.duration_since(UNIX_EPOCH).unwrap();
    let times = [
        libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    ];
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path and two timespecs, as utimensat(2) wants.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(r, 0, "utimensat {}", path.display());
}

fn atime(path: &Path) -> i64 {
    fs::metadata(path).unwrap().atime()
}

/// Messages of the shapes clients meet, LF or CRLF, with the fields clients list by.
fn shapes() -> Vec<String> {
    let mut v = Vec::new();
    for n in 0..12 {
        v.push(format!(
            "From: Alice Example <alice@example.org>\nTo: bob@example.net, carol@example.net\n\
             Cc: dave@example.net\nSubject: report {n}\nDate: Mon, 7 Aug 2023 10:0{}:00 +0000\n\
             Message-ID: <m{n}@test.example>\nReferences: <r{n}@x>\n <s{n}@x>\n\
             X-Mailer: mutt {n}\nX-Priority: 3\n\nbody {n} zanzibar\n",
            n % 10
        ));
    }
    v.push(
        "From: =?UTF-8?Q?J=C3=B6rg?= <j@example.org>\r\nTo: undisclosed-recipients:;\r\n\
         Subject: =?UTF-8?B?UmVwb3J0IMOc?=\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nplain\r\n--b1\r\n\
         Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         <p>caf=C3=A9</p>\r\n--b1--\r\n"
            .into(),
    );
    v.push(format!(
        "From: bob@example.net\nTo: alice@example.org\nSubject: with attachment\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=outer\n\n--outer\n\
         Content-Type: text/plain\n\nsee attached\n--outer\nContent-Type: application/pdf; name=a.pdf\n\
         Content-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\n{}\n\
         --outer\nContent-Type: message/rfc822\n\nFrom: inner@x\nSubject: inner\n\ninner body\n--outer--\n",
        "QUJD".repeat(1000)
    ));
    v.push("Subject: no blank line and no end".into());
    v.push("\nno header at all\n".into());
    v.push(format!(
        "From: big@example.org\nTo: {}\nSubject: huge To\n\nx\n",
        "someone@example.org, ".repeat(4000)
    ));
    v
}

/// A maildir with the shapes in cur/ (flags of every kind, fixed dates) and two in new/.
fn fill(m: &Path) {
    let flags = ["", "S", "FS", "RS", "DS", "ST", "S", "", "FRS", "S"];
    for (n, text) in shapes().iter().enumerate() {
        let path = put_cur(m, text, flags[n % flags.len()]);
        set_mtime(&path, DATE + n as i64 * 3600);
    }
    for n in 0..2 {
        let path = deliver(m, &message(&format!("fresh report {n}"), "new mail"));
        set_mtime(&path, DATE - 86_400 * (n + 1));
    }
}

/// Sets the times every change moves 20 s back, so that the next scan's stamp is settled.
/// To the nanosecond from now: two calls never give the same times, which would hide the
/// changes made between them from the stamps, as no clock would.
fn age(m: &Path) {
    let then = SystemTime::now() - Duration::from_secs(20);
    for p in ["cur", "new", "courierimapuiddb", "courierimapkeywords"] {
        if m.join(p).exists() {
            fs::File::open(m.join(p))
                .unwrap()
                .set_modified(then)
                .unwrap();
        }
    }
}

/// One session playing `commands`, then LOGOUT; the transcript (tags dropped).
fn play(t: &TestDir, m: &Path, commands: &[&str]) -> Vec<String> {
    let (mut s, mut c) = preauth(t, m);
    let mut out = Vec::new();
    for command in commands.iter().chain(&["LOGOUT"]) {
        let r = c.cmd(command);
        out.push(format!("> {command}"));
        out.extend(r.untagged.iter().map(|l| without_modseq_values(l)));
        out.push(r.tagged.split_once(' ').map_or("", |x| x.1).to_string());
    }
    assert!(
        s.wait_exit(Duration::from_secs(60)).is_some(),
        "mdimapd did not exit after LOGOUT"
    );
    out
}

/// `line` with the number of each HIGHESTMODSEQ code left out. A mod-sequence is given out
/// by time (`maildir/modseq.rs`): a folder opened without its index gives its messages a
/// new, higher one, which is right (its clients fetch the flags again) and differs from
/// the run with the index by design; tests/condstore.rs checks the values.
fn without_modseq_values(line: &str) -> String {
    match line.find("[HIGHESTMODSEQ ") {
        Some(at) => {
            let start = at + "[HIGHESTMODSEQ ".len();
            let end = line[start..].find(']').map_or(line.len(), |e| start + e);
            format!("{}n{}", &line[..start], &line[end..])
        }
        None => line.to_string(),
    }
}

/// Every STATUS item: from the index when it describes the folder, else from a look at it.
const STATUS_ALL: &str = "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)";

const FIELDS: &str = "BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)]";

/// What a client does with a folder, read-only part.
fn reading() -> Vec<String> {
    [
        STATUS_ALL.to_string(),
        "SELECT INBOX".to_string(),
        "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)".into(),
        "FETCH 1:* ENVELOPE".into(),
        "FETCH 1:* BODYSTRUCTURE".into(),
        "FETCH 1:* (EMAILID THREADID SAVEDATE PREVIEW)".into(),
        format!("UID FETCH 1:* (UID RFC822.SIZE FLAGS {FIELDS})"),
        "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (X-Mailer Subject)]<0.30>)".into(),
        "FETCH 1:3 (BODY.PEEK[HEADER] BODY RFC822.SIZE)".into(),
        "UID SEARCH SUBJECT \"report\"".into(),
        "UID SEARCH FROM \"alice\" NOT TO \"carol\"".into(),
        "SEARCH OR CC \"dave\" HEADER X-Mailer \"mutt 3\"".into(),
        "SEARCH SENTSINCE 1-Jan-2021 LARGER 1000".into(),
        "SEARCH BEFORE 5-Mar-2021".into(),
        "UID SEARCH TEXT \"zanzibar\"".into(),
    ]
    .to_vec()
}

/// The whole script: reading, then changes, then reading again in a second session.
fn script(t: &TestDir, m: &Path) -> Vec<String> {
    let mut first: Vec<String> = reading();
    first.extend(
        [
            "STORE 1:3 +FLAGS (\\Flagged $Work)",
            "UID STORE 4:6 -FLAGS (\\Seen)",
            "FETCH 1:6 (FLAGS)",
            "SEARCH KEYWORD $Work",
            "STORE 2 +FLAGS.SILENT (\\Deleted)",
            "EXPUNGE",
            "FETCH 1:* (UID FLAGS)",
            STATUS_ALL,
            "NOOP",
        ]
        .map(String::from),
    );
    let commands: Vec<&str> = first.iter().map(String::as_str).collect();
    let mut out = play(t, m, &commands);
    let second = reading();
    let commands: Vec<&str> = second.iter().map(String::as_str).collect();
    out.extend(play(t, m, &commands));
    out
}

/// `cp -a from to`, then the copy's index removed.
fn copy_without_index(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
    let _ = fs::remove_file(to.join(INDEX));
}

/// A maildir with a warm, settled index: numbered by a first session, then (its times
/// aged) opened by a second, whose index describes it.
fn warm(t: &TestDir, name: &str) -> PathBuf {
    let m = t.join(name);
    make_maildir(&m);
    fill(&m);
    play(t, &m, &["SELECT INBOX", "FETCH 1:* (FLAGS)"]);
    age(&m);
    play(t, &m, &["SELECT INBOX", "FETCH 1:* (RFC822.SIZE ENVELOPE)"]);
    assert!(m.join(INDEX).is_file(), "the index was written");
    m
}

/// Plays the script on `a` and on a copy of it without an index; the answers must agree.
fn same_answers(t: &TestDir, a: &Path, case: &str) {
    let b = t.join(&format!("{case}-copy"));
    copy_without_index(a, &b);
    let with = script(t, a);
    let without = script(t, &b);
    assert!(with.len() > 40, "{case}: the script ran: {with:#?}");
    for (n, (x, y)) in with.iter().zip(&without).enumerate() {
        assert_eq!(x, y, "{case}: line {n} differs");
    }
    assert_eq!(with.len(), without.len(), "{case}");
    // Whatever the index was, a good one is there now.
    let index = fs::read(a.join(INDEX)).unwrap();
    assert!(index.starts_with(b"mdimapix"), "{case}: rebuilt");
}

#[test]
fn a_warm_index_gives_the_answers_a_scan_gives() {
    let t = TestDir::new("index-warm");
    let a = warm(&t, "A");
    same_answers(&t, &a, "warm");
}

#[test]
fn a_missing_truncated_or_corrupt_index_is_rebuilt_never_served() {
    let t = TestDir::new("index-damaged");
    type Spoil = fn(&Path);
    let damage: [(&str, Spoil); 6] = [
        ("deleted", |p| fs::remove_file(p).unwrap()),
        ("truncated", |p| {
            let len = fs::metadata(p).unwrap().len();
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        }),
        ("empty", |p| fs::write(p, b"").unwrap()),
        ("bytes changed", |p| {
            let mut b = fs::read(p).unwrap();
            for at in (40..b.len()).step_by(97) {
                b[at] ^= 0x20;
            }
            fs::write(p, b).unwrap();
        }),
        ("derived data changed", |p| {
            // The last quarter of the file is derived data (and keyword sets).
            let mut b = fs::read(p).unwrap();
            let n = b.len();
            for at in (n * 3 / 4..n - 8).step_by(13) {
                b[at] ^= 0x01;
            }
            fs::write(p, b).unwrap();
        }),
        ("another version", |p| {
            let mut b = fs::read(p).unwrap();
            b[8] = 99;
            fs::write(p, b).unwrap();
        }),
    ];
    for (case, spoil) in damage {
        let a = warm(&t, case);
        spoil(&a.join(INDEX));
        same_answers(&t, &a, case);
    }
}

#[test]
fn changes_behind_its_back_are_seen() {
    let t = TestDir::new("index-behind");
    let a = warm(&t, "A");
    // An MTA delivers; another reader renames (flags), removes and adds in cur/.
    let path = deliver(&a, &message("late arrival report", "late"));
    set_mtime(&path, DATE + 99);
    let cur = files(&a.join("cur"));
    let renamed = &cur[0];
    let (base, _) = renamed.split_once(':').unwrap();
    fs::rename(
        a.join("cur").join(renamed),
        a.join("cur").join(format!("{base}:2,RST")),
    )
    .unwrap();
    fs::remove_file(a.join("cur").join(&cur[5])).unwrap();
    let added = put_cur(&a, &message("added in cur report", "x"), "F");
    set_mtime(&added, DATE + 98);
    same_answers(&t, &a, "behind");
}

/// Sets `path`'s modification time to `t`, to the nanosecond.
fn set_modified(path: &Path, t: SystemTime) {
    fs::File::open(path).unwrap().set_modified(t).unwrap();
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

/// Timestamps are as coarse as the kernel's clock tick: a change made in the same tick as
/// the one before it leaves a directory's time as it was, so an index written with a stamp
/// close to its times (not settled) proves nothing, even when the folder's stamp still
/// equals it. Made deterministic here by a time in the future (closer than any window) and
/// a change whose directory time is then put back as the tick would have left it.
#[test]
fn a_change_the_timestamps_cannot_show_is_not_missed() {
    let t = TestDir::new("index-racy");
    let a = warm(&t, "A");
    let cur = a.join("cur");
    set_modified(&cur, SystemTime::now() + Duration::from_millis(30_000_123));
    // This session scans (the stamp moved) and writes an index with the stamp it took,
    // which is not settled.
    play(&t, &a, &["SELECT INBOX", "FETCH 1:* (UID FLAGS)"]);
    let tick = modified(&cur);
    let names = files(&cur);
    let (base, _) = names[2].split_once(':').unwrap();
    fs::rename(cur.join(&names[2]), cur.join(format!("{base}:2,FRT"))).unwrap();
    fs::remove_file(cur.join(&names[4])).unwrap();
    set_modified(&cur, tick);
    same_answers(&t, &a, "racy");
}

/// An index that is not this folder's (another maildir's, copied in) or not of its present
/// state (an older copy of its own, restored as a backup would) is never served: what it
/// says of a message counts only under the same UID and file name, and nothing of it
/// stands for a scan.
#[test]
fn another_folders_or_an_old_index_is_not_served() {
    let t = TestDir::new("index-foreign");
    let other = warm(&t, "other");
    // Different messages under the same UIDs in the other maildir.
    let cur = other.join("cur");
    for name in files(&cur).iter().take(4) {
        fs::remove_file(cur.join(name)).unwrap();
    }
    put_cur(&other, &message("only in the other folder", "x"), "S");
    age(&other);
    play(
        &t,
        &other,
        &["SELECT INBOX", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)"],
    );
    age(&other);
    play(&t, &other, &["SELECT INBOX"]);
    let a = warm(&t, "A");
    fs::copy(other.join(INDEX), a.join(INDEX)).unwrap();
    same_answers(&t, &a, "foreign");

    let a = warm(&t, "B");
    let old = fs::read(a.join(INDEX)).unwrap();
    let cur = a.join("cur");
    let names = files(&cur);
    fs::remove_file(cur.join(&names[1])).unwrap();
    let (base, _) = names[3].split_once(':').unwrap();
    fs::rename(cur.join(&names[3]), cur.join(format!("{base}:2,D"))).unwrap();
    put_cur(&a, &message("after the backup", "x"), "");
    age(&a);
    play(&t, &a, &["SELECT INBOX", "FETCH 1:* (UID FLAGS ENVELOPE)"]);
    fs::write(a.join(INDEX), old).unwrap();
    same_answers(&t, &a, "old");
}

/// Runs Courier's imapd on `maildir` (PREAUTH on pipes, its own configuration), sends
/// `commands` and LOGOUT, and checks every one was answered OK.
fn courier(maildir: &Path, commands: &[String]) {
    let imapd = ["/usr/bin/imapd", "/usr/lib/courier/imapd"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect(
            "Courier-IMAP's imapd is not installed: apt-get install courier-imap \
             (./test.sh does this when run as root)",
        );
    let dir = maildir.parent().unwrap();
    let name = maildir.file_name().unwrap();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"set -a; . /etc/courier/imapd; set +a; exec "$1" "$2""#)
        .arg("courier-imapd")
        .arg(imapd)
        .arg(name)
        .current_dir(dir)
        .env_remove("IMAPLOGINTAG")
        .env_remove("AUTHENTICATED")
        .env_remove("MAILDIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for (n, c) in commands.iter().enumerate() {
        input.push_str(&format!("c{n} {c}\r\n"));
    }
    input.push_str("z LOGOUT\r\n");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("Courier's imapd did not finish")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for (n, command) in commands.iter().enumerate() {
        assert!(
            text.contains(&format!("c{n} OK")),
            "Courier: {command} failed:\n{text}"
        );
    }
}

#[test]
fn changes_by_courier_are_seen() {
    let t = TestDir::new("index-courier");
    let a = warm(&t, "A");
    let appended =
        "From: courier@example.org\r\nSubject: appended by Courier report\r\n\r\nhello\r\n";
    courier(
        &a,
        &[
            "SELECT INBOX".into(),
            "STORE 1 +FLAGS (\\Answered \\Seen)".into(),
            "STORE 4 -FLAGS (\\Seen)".into(),
            "STORE 3 +FLAGS (\\Deleted)".into(),
            "EXPUNGE".into(),
            // Keywords go to courierimapkeywords/, not into the file name.
            "STORE 2 +FLAGS ($Courier)".into(),
            "STORE 5 +FLAGS ($Courier $Later)".into(),
            "STORE 1 -FLAGS ($Work)".into(),
            format!(
                "APPEND INBOX (\\Flagged) \"01-Jan-2020 10:00:00 +0000\" {{{}}}\r\n{appended}",
                appended.len()
            ),
        ],
    );
    same_answers(&t, &a, "courier");
}

/// A message Courier appended is `\Recent` for the first mdimap session that selects the
/// folder, also when an EXAMINE (which claims nothing) wrote a settled index after it came:
/// a folder opened from its index gives and claims `\Recent` as a scan does.
#[test]
fn what_nobody_was_told_of_is_recent_when_opened_from_the_index() {
    let t = TestDir::new("index-recent");
    let a = warm(&t, "A");
    let appended = "From: courier@example.org\r\nSubject: recent report\r\n\r\nhello\r\n";
    courier(
        &a,
        &[format!(
            "APPEND INBOX () \"02-Jan-2020 10:00:00 +0000\" {{{}}}\r\n{appended}",
            appended.len()
        )],
    );
    age(&a);
    let examined = play(&t, &a, &["EXAMINE INBOX", "FETCH 1:* (FLAGS)"]);
    assert!(examined.iter().any(|l| l == "* 1 RECENT"), "{examined:#?}");
    // The index the EXAMINE wrote describes the folder: the next SELECT opens from it.
    let (_, listed, _) = watch(&t, &a, &["EXAMINE INBOX"]);
    assert!(
        !listed,
        "the index does not describe the folder: not what is tested"
    );
    same_answers(&t, &a, "recent");
}

/// The client's view of `m` after a session played `commands`, with whether cur/ was
/// listed and which message files were read meanwhile.
fn watch(t: &TestDir, m: &Path, commands: &[&str]) -> (Vec<String>, bool, Vec<PathBuf>) {
    let cur = m.join("cur");
    let messages: Vec<PathBuf> = files(&cur).iter().map(|f| cur.join(f)).collect();
    let two_days = 2 * 86_400;
    set_atime_back(&cur, two_days);
    for p in &messages {
        set_atime_back(p, two_days);
    }
    let before = atime(&cur);
    let read_before: Vec<i64> = messages.iter().map(|p| atime(p)).collect();
    let transcript = play(t, m, commands);
    let listed = atime(&cur) != before;
    let read = messages
        .into_iter()
        .zip(read_before)
        .filter(|(p, was)| fs::metadata(p).is_ok_and(|md| md.atime() != *was))
        .map(|(p, _)| p)
        .collect();
    (transcript, listed, read)
}

/// Acceptance: an unchanged folder is opened from its index without listing cur/, and
/// what the index keeps is answered without reading a message.
#[test]
fn an_unchanged_folder_is_opened_and_answered_from_the_index() {
    let t = TestDir::new("index-use");
    let a = warm(&t, "A");
    // Fill the index with everything the reading script asks for.
    play(
        &t,
        &a,
        &reading().iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // Control: listing and reading do show in the access times here.
    let b = t.join("B");
    copy_without_index(&a, &b);
    let (_, listed, read) = watch(&t, &b, &["SELECT INBOX", "FETCH 1 BODY.PEEK[]"]);
    if !listed || read.is_empty() {
        eprintln!("access times are not kept on this file system (noatime?): not checked");
        return;
    }
    let commands = [
        STATUS_ALL,
        "SELECT INBOX",
        "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
        "FETCH 1:* (ENVELOPE BODYSTRUCTURE)",
        "FETCH 1:* (PREVIEW THREADID EMAILID)",
        &format!("FETCH 1:* ({FIELDS})"),
        "UID SEARCH SUBJECT \"report\"",
        "SEARCH FROM \"alice\" SENTBEFORE 1-Jan-2024 LARGER 100",
        "NOOP",
    ];
    let (transcript, listed, read) = watch(&t, &a, &commands);
    assert!(!listed, "cur/ was listed: {transcript:#?}");
    // All but the message whose listed fields are too large to keep (see `shapes`).
    let read: Vec<u64> = read
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .collect();
    assert!(
        read.len() == 1 && read[0] > 64 * 1024,
        "messages were read: {read:?} bytes"
    );
    // A change the stamp shows: the next open lists cur/ again.
    deliver(&a, &message("one more", "x"));
    let (_, listed, _) = watch(&t, &a, &["SELECT INBOX"]);
    assert!(listed, "a delivery must be seen");
}

/// A maildir at `m` whose cur/ holds `count` small seen messages, none numbered yet.
fn small_messages(m: &Path, count: u32) {
    make_maildir(m);
    let body = "From: a@example.org\nSubject: small\n\nx\n";
    for n in 0..count {
        let name = format!("1600000000.M{n:06}P1.gen,S={}:2,S", body.len());
        fs::write(m.join("cur").join(name), body).unwrap();
    }
}

/// Asserts that `listed` (from [`watch`] on `m`) is false, where a copy of `m` without its
/// index shows that a listing of cur/ would have been seen (access times kept).
fn assert_not_listed(t: &TestDir, m: &Path, listed: bool, why: &str) {
    let control = t.join("control");
    copy_without_index(m, &control);
    let (_, control_listed, _) = watch(t, &control, &["SELECT INBOX"]);
    if control_listed {
        assert!(!listed, "{why}");
    } else {
        eprintln!("access times are not kept on this file system (noatime?): not checked");
    }
}

/// A scaled-down version of the million-message benchmark (benches/million.py): at 20,000
/// messages an unchanged folder is opened without listing cur/, and the index is rebuilt
/// from a scan when it is removed.
#[test]
fn twenty_thousand_messages_reopen_without_listing() {
    let t = TestDir::new("index-20k");
    let m = t.join("Maildir");
    small_messages(&m, 20_000);
    let r = play(&t, &m, &["SELECT INBOX"]);
    assert!(r.iter().any(|l| l == "* 20000 EXISTS"), "{:?}", &r[..3]);
    age(&m);
    play(&t, &m, &["SELECT INBOX", "FETCH 1:* (UID FLAGS)"]);
    let (r, listed, _) = watch(&t, &m, &["SELECT INBOX", "FETCH 1:* (UID FLAGS)", "NOOP"]);
    assert!(r.iter().any(|l| l == "* 20000 EXISTS"));
    assert_not_listed(&t, &m, listed, "cur/ of an unchanged folder was listed");
}

/// The corpus of odd messages (tests/corpus, compared item by item with Dovecot by
/// tests/corpus_dovecot.rs) answers the same from a warm index as from the messages:
/// ENVELOPE, BODY and HEADER.FIELDS from the kept header fields, BODYSTRUCTURE from the
/// kept one, SEARCH, SORT and THREAD from the kept fields, sizes and dates from the index.
#[test]
fn the_corpus_answers_alike_from_the_index() {
    let t = TestDir::new("index-corpus");
    let a = t.join("A");
    make_maildir(&a);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut names: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    assert!(names.len() > 50, "the corpus is there: {}", dir.display());
    for (n, path) in names.iter().enumerate() {
        let text = fs::read(path).unwrap();
        let name = format!("{}.M{n}P1.corpus,S={}:2,S", DATE + n as i64, text.len());
        let file = a.join("cur").join(name);
        fs::write(&file, &text).unwrap();
        set_mtime(&file, DATE + n as i64 * 60);
    }
    let commands = [
        "SELECT INBOX",
        "FETCH 1:* (UID RFC822.SIZE INTERNALDATE ENVELOPE)",
        "FETCH 1:* BODYSTRUCTURE",
        "FETCH 1:* BODY",
        &format!("FETCH 1:* ({FIELDS})"),
        "UID SEARCH OR SUBJECT \"a\" FROM \"example\"",
        "SEARCH TO \"@\" NOT CC \"x\"",
        "SEARCH SENTSINCE 1-Jan-2000",
        "SORT (SUBJECT) UTF-8 ALL",
        "SORT (FROM DATE REVERSE SIZE) UTF-8 ALL",
        "SORT (DISPLAYFROM TO CC) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
    ];
    // Numbered and read once; then, the times aged, opened again and the index written
    // settled with everything the commands ask for.
    play(&t, &a, &commands);
    age(&a);
    play(&t, &a, &commands);
    let b = t.join("B");
    copy_without_index(&a, &b);
    let (_, listed, _) = watch(&t, &a, &["SELECT INBOX"]);
    let (_, control, _) = watch(&t, &b, &["SELECT INBOX"]);
    assert!(
        !listed || !control,
        "the index does not describe the folder"
    );
    // One session per command: A's open from the index each time; B's have no index, so
    // every answer comes from the messages (nothing learnt in an earlier command).
    for command in &commands[1..] {
        let with = play(&t, &a, &["SELECT INBOX", command]);
        let _ = fs::remove_file(b.join(INDEX));
        let without = play(&t, &b, &["SELECT INBOX", command]);
        let answers = with.iter().filter(|l| l.starts_with("* ")).count();
        assert!(answers > 8, "{command}: {with:#?}");
        for (n, (x, y)) in with.iter().zip(&without).enumerate() {
            assert_eq!(x, y, "corpus: {command}: line {n} differs");
        }
        assert_eq!(with.len(), without.len(), "{command}");
    }
}

/// STATUS SIZE (RFC 8438) is the sum of the messages' RFC822.SIZE, which counts CRLF line
/// ends and so exceeds the files' sizes (and their `,S=`), whether the index knows the
/// sizes or they are learnt for the answer; the STATUS answered from a warm index is the
/// one a look at the folder gives, and does not list cur/.
#[test]
fn status_size_is_the_sum_of_rfc822_sizes() {
    let t = TestDir::new("index-status-size");
    let a = warm(&t, "A");
    let b = t.join("B");
    copy_without_index(&a, &b);
    let on_disk: u64 = files(&a.join("cur"))
        .iter()
        .map(|f| fs::metadata(a.join("cur").join(f)).unwrap().len())
        .sum();
    let sizes = play(&t, &a, &["EXAMINE INBOX", "FETCH 1:* RFC822.SIZE"]);
    let sum: u64 = sizes
        .iter()
        .filter_map(|l| l.split("RFC822.SIZE ").nth(1))
        .map(|n| n.trim_end_matches(')').parse::<u64>().unwrap())
        .sum();
    assert!(sum > on_disk, "LF files: {sum} > {on_disk}");
    let expected = format!("SIZE {sum})");
    // From the warm index, without listing cur/.
    let (warm, listed, read) = watch(&t, &a, &[STATUS_ALL]);
    assert!(warm[1].ends_with(&expected), "{warm:?}");
    assert!(!listed, "cur/ was listed for STATUS: {warm:?}");
    assert!(read.is_empty(), "messages were read for STATUS: {read:?}");
    // Without an index: the sizes are learnt (the messages read once) and kept.
    let cold = play(&t, &b, &[STATUS_ALL]);
    assert_eq!(cold[1], warm[1]);
    assert!(b.join(INDEX).is_file(), "what STATUS SIZE learnt is kept");
    age(&b);
    let (again, _, read) = watch(&t, &b, &[STATUS_ALL]);
    assert_eq!(again[1], warm[1]);
    assert!(
        read.is_empty(),
        "sizes learnt once are not read again: {read:?}"
    );
}

/// A session that changed a large folder itself right before leaving it (the changes within
/// a clock tick of its last look) settles the index on the way out, so the next session
/// opens the folder from the index, without listing cur/, and sees those changes.
#[test]
fn a_session_that_changed_a_large_folder_leaves_a_settled_index() {
    let t = TestDir::new("index-settle");
    let m = t.join("Maildir");
    small_messages(&m, 6_000);
    play(&t, &m, &["SELECT INBOX"]);
    age(&m);
    play(
        &t,
        &m,
        &["SELECT INBOX", "STORE 1:* +FLAGS.SILENT (\\Flagged)"],
    );
    let (r, listed, _) = watch(
        &t,
        &m,
        &["SELECT INBOX", "SEARCH UNFLAGGED", "SEARCH FLAGGED 5999:*"],
    );
    assert!(r.iter().any(|l| l == "* 6000 EXISTS"), "{:?}", &r[..4]);
    assert!(
        r.iter().any(|l| l == "* SEARCH"),
        "every message flagged: {r:?}"
    );
    assert!(r.iter().any(|l| l == "* SEARCH 5999 6000"), "{r:?}");
    assert_not_listed(
        &t,
        &m,
        listed,
        "cur/ was listed: the index left behind was not settled",
    );
}
