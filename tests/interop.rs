//! Interoperability with real clients: Python's imaplib and mbsync (isync),
//! both against `mdimap demo` on 127.0.0.1, checking the server's maildir on disk
//! afterwards.
//!
//! These tests own only the client side. A missing client program is a failure
//! with instructions, never a skip: CI must not pass without having run them.

mod common;

use common::*;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed; install the Debian package `{package}` \
         (./test.sh does this when run as root: apt-get install -y {package})"
    );
}

/// Runs `cmd`, killing it after `timeout`; stdout and stderr are collected.
fn run(mut cmd: Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id() as i32;
    let deadline = Instant::now() + timeout;
    // A watchdog, so wait_with_output (which drains both pipes) cannot hang.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_err()
        {
            signal(pid, libc::SIGKILL);
            return true;
        }
        false
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    let killed = watchdog.join().unwrap();
    assert!(
        !killed,
        "{cmd:?} did not finish within {timeout:?}:\n{}",
        describe(&out)
    );
    out
}

fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Message files (new/ and cur/) of one maildir folder.
fn messages(folder: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["cur", "new"] {
        for f in files(&folder.join(sub)) {
            if !f.starts_with('.') {
                v.push(folder.join(sub).join(f));
            }
        }
    }
    v
}

fn subject_of(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Subject:").map(|s| s.trim().to_string()))
        .unwrap_or_default()
}

/// Message files of `folder` whose Subject is exactly `subject`.
fn with_subject(folder: &Path, subject: &str) -> Vec<PathBuf> {
    messages(folder)
        .into_iter()
        .filter(|p| subject_of(p) == subject)
        .collect()
}

fn name_flags(p: &Path) -> String {
    flags_of_name(p.file_name().unwrap().to_str().unwrap())
}

#[test]
fn python_imaplib_session() {
    require("python3", "python3");
    let t = TestDir::new("imaplib");
    let dir = t.join("demo");
    let d = demo(&dir);
    let server = dir.join("Maildir");
    let report = t.join("report.txt");
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/imaplib_session.py"
    ))
    .arg("127.0.0.1")
    .arg(d.port.to_string())
    .arg(&server)
    .arg(&report);
    let out = run(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "imaplib session failed:\n{}",
        describe(&out)
    );

    let rep: HashMap<String, String> = fs::read_to_string(&report)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let inbox = &server;
    let flagged = with_subject(inbox, &rep["flagged_subject"]);
    assert_eq!(flagged.len(), 1, "flagged message on disk: {flagged:?}");
    assert!(
        name_flags(&flagged[0]).contains('F'),
        "STORE \\Flagged not on disk: {flagged:?}"
    );
    assert!(
        with_subject(inbox, &rep["deleted_subject"]).is_empty(),
        "expunged message still on disk"
    );
    assert_eq!(with_subject(inbox, &rep["idle_subject"]).len(), 1);
    let appended = with_subject(&server.join(".Work"), &rep["appended_subject"]);
    assert_eq!(
        appended.len(),
        1,
        "appended message in .Work: {:?}",
        messages(&server.join(".Work"))
    );
    assert!(
        appended[0].starts_with(server.join(".Work/cur")) && name_flags(&appended[0]).contains('S')
    );
    assert_eq!(
        with_subject(&server.join(".Archive"), &rep["copied_subject"]).len(),
        1,
        "copied message in .Archive"
    );
    assert_eq!(
        with_subject(inbox, &rep["copied_subject"]).len(),
        1,
        "COPY must keep the original"
    );
}

fn write_mbsyncrc(path: &Path, port: u16, local: &Path) {
    let rc = format!(
        "IMAPAccount demo\n\
         Host 127.0.0.1\n\
         Port {port}\n\
         User demo\n\
         Pass demo\n\
         SSLType None\n\
         AuthMechs LOGIN\n\
         \n\
         IMAPStore remote\n\
         Account demo\n\
         \n\
         MaildirStore local\n\
         Path {local}/\n\
         Inbox {local}/INBOX\n\
         SubFolders Verbatim\n\
         \n\
         Channel demo\n\
         Far :remote:\n\
         Near :local:\n\
         Patterns *\n\
         Create Both\n\
         Expunge Both\n\
         SyncState *\n",
        local = local.display()
    );
    fs::write(path, rc).unwrap();
}

fn mbsync(t: &TestDir, rc: &Path) -> Output {
    let mut cmd = Command::new("mbsync");
    cmd.arg("-c").arg(rc).arg("-a").env("HOME", &t.path);
    let out = run(cmd, Duration::from_secs(120));
    assert!(out.status.success(), "mbsync failed:\n{}", describe(&out));
    out
}

/// `name` (a maildir file name) with `letter` added to its `:2,` flags, sorted.
fn with_flag(name: &str, letter: char) -> String {
    let (base, flags) = match name.rfind(":2,") {
        Some(i) => (&name[..i], &name[i + 3..]),
        None => (name, ""),
    };
    let mut f: Vec<char> = flags.chars().chain(std::iter::once(letter)).collect();
    f.sort();
    f.dedup();
    format!("{base}:2,{}", f.into_iter().collect::<String>())
}

#[test]
fn mbsync_two_way_sync() {
    require("mbsync", "isync");
    let t = TestDir::new("mbsync");
    let dir = t.join("demo");
    let d = demo(&dir);
    let server = dir.join("Maildir");
    let local = t.join("local");
    fs::create_dir_all(&local).unwrap();
    let rc = t.join("mbsyncrc");
    write_mbsyncrc(&rc, d.port, &local);

    // 1. Full sync down.
    mbsync(&t, &rc);
    let local_inbox = local.join("INBOX");
    let server_subjects: Vec<String> = messages(&server).iter().map(|p| subject_of(p)).collect();
    let mut local_subjects: Vec<String> = messages(&local_inbox)
        .iter()
        .map(|p| subject_of(p))
        .collect();
    let mut expected = server_subjects.clone();
    expected.sort();
    local_subjects.sort();
    assert_eq!(
        expected.len(),
        3,
        "demo INBOX should hold 3 messages: {expected:?}"
    );
    assert_eq!(local_subjects, expected, "local INBOX after the first sync");
    // mbsync takes the personal namespace prefix "INBOX." from NAMESPACE, so
    // INBOX.Work is the near side's top-level folder Work.
    for folder in ["Work", "Archive"] {
        assert!(
            local.join(folder).join("cur").is_dir(),
            "INBOX.{folder} not created locally as {folder}"
        );
        assert_eq!(
            messages(&local.join(folder)).len(),
            messages(&server.join(format!(".{folder}"))).len(),
            "INBOX.{folder} message count"
        );
    }

    // 2. Local changes: flag one, delete one, add one to a folder.
    let mut local_msgs = messages(&local_inbox);
    local_msgs.sort();
    let (to_flag, to_delete) = (local_msgs[0].clone(), local_msgs[1].clone());
    let flag_subject = subject_of(&to_flag);
    let delete_subject = subject_of(&to_delete);
    assert_ne!(flag_subject, delete_subject);
    for (p, letter) in [(&to_flag, 'F'), (&to_delete, 'T')] {
        let name = p.file_name().unwrap().to_str().unwrap();
        fs::rename(p, local_inbox.join("cur").join(with_flag(name, letter))).unwrap();
    }
    let added = "From: Local <local@example.org>\nTo: demo@example.org\nSubject: added locally for mbsync\nDate: Wed, 9 Aug 2023 09:00:00 +0000\nMessage-ID: <mbsync-added@example.org>\n\nWritten into the near side's maildir.\n";
    let work = local.join("Work");
    let tmp = work.join("tmp").join("1691571600.mdimaptest.local");
    fs::write(&tmp, added).unwrap();
    fs::rename(&tmp, work.join("new").join("1691571600.mdimaptest.local")).unwrap();

    // 3. Sync up and check the server's maildir.
    mbsync(&t, &rc);
    let flagged = with_subject(&server, &flag_subject);
    assert_eq!(
        flagged.len(),
        1,
        "flagged message on the server: {:?}",
        messages(&server)
    );
    assert!(
        name_flags(&flagged[0]).contains('F'),
        "\\Flagged did not reach the server: {flagged:?}"
    );
    assert!(
        with_subject(&server, &delete_subject).is_empty(),
        "deleted message still on the server: {:?}",
        messages(&server)
    );
    let arrived = with_subject(&server.join(".Work"), "added locally for mbsync");
    assert_eq!(
        arrived.len(),
        1,
        "new message not on the server: {:?}",
        messages(&server.join(".Work"))
    );
    // mbsync inserts an X-TUID header to find the uploaded message again.
    let stored: String = fs::read_to_string(&arrived[0])
        .unwrap()
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("X-TUID: "))
        .collect();
    assert_eq!(stored, added, "uploaded message content");
    let uiddb = read_uiddb(&server.join(".Work"));
    let base = base_of(arrived[0].file_name().unwrap().to_str().unwrap());
    assert!(
        uiddb.uid_of(base).is_some(),
        "uploaded message has no UID in .Work/courierimapuiddb: {uiddb:?}"
    );

    // 4. A third run is a no-op that still succeeds, and the near side agrees.
    mbsync(&t, &rc);
    assert!(with_subject(&local_inbox, &delete_subject).is_empty());
    assert_eq!(with_subject(&local_inbox, &flag_subject).len(), 1);
    drop(d);
}
