//! Crash safety (issue 10, point 3): a session killed with SIGKILL at every write step of
//! APPEND, COPY, MOVE, EXPUNGE, STORE, CREATE, RENAME, DELETE and of the UID database,
//! keyword, quota and index updates, then a fresh session on what it left.
//!
//! The steps are the crash points of `mdimap::maildir::crash::POINTS` (debug builds,
//! `mdimapd --test-crash-at POINT:N`); the test walks that whole list, so a new point is
//! covered as soon as it is listed, and fails when the script below never reaches one
//! (N=1 for every point, N=2 too where one command passes it more than once).
//!
//! After each kill, two fresh sessions in turn SELECT every folder and read every message's
//! token, and the test checks: every message that existed before, or whose APPEND or COPY
//! was acknowledged, is still there (an acknowledged EXPUNGE or MOVE may have removed one
//! from its folder; a MOVE killed half-way may leave it in both folders, never in neither);
//! no folder holds one message under two UIDs; messages keep the UIDs they had; flag and
//! keyword changes acknowledged before the kill are on disk; the second session sees what
//! the first saw (nothing renumbered later); and every file mdimap keeps parses.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Messages in INBOX and INBOX.Work before the crashing session starts. INBOX has enough
/// for a COPY of 120 (whose UID lines span more than two 4096-byte blocks of the database
/// written in place) plus a MOVE and an EXPUNGE; Work's next UID keeps three digits
/// throughout, so its database is extended in place rather than rewritten.
const INBOX_COUNT: u32 = 130;
const WORK_COUNT: u32 = 150;
const LIMITS: &str = "1000000000S,1000000C";

fn body(token: &str) -> String {
    format!(
        "From: crash@example.org\nTo: box@example.net\nSubject: {token}\n\
         Message-ID: <{token}@crash.example>\nX-Token: {token}\n\n\
         body of {token}\n"
    )
}

/// (folder → uid → (token, flags)) as a fresh session sees it, and the folders listed.
type Seen = BTreeMap<String, BTreeMap<u32, (String, Vec<String>)>>;

fn fetch_tokens(r: &Response) -> BTreeMap<u32, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    for (_, line) in r.fetches() {
        let uid: Option<u32> = line
            .split("UID ")
            .nth(1)
            .and_then(|s| s.split([' ', ')']).next())
            .and_then(|s| s.parse().ok());
        let flags: Vec<String> = line
            .split("FLAGS (")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .map(|s| {
                s.split_whitespace()
                    // Which session is told a message is recent is not the store's to keep.
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let token = line
            .split("X-Token: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        if let Some(uid) = uid {
            out.insert(uid, (token, flags));
        }
    }
    out
}

/// A fresh session's look at every folder: each must SELECT.
fn look(
    dir: &TestDir,
    maildir: &Path,
    problems: &mut Vec<String>,
) -> (Seen, BTreeMap<String, u32>) {
    let (_server, mut c) = preauth(dir, maildir);
    let list = c.ok("LIST \"\" *");
    let mut seen = Seen::new();
    let mut validity = BTreeMap::new();
    for line in list.lines("* LIST") {
        // A hierarchy level without a folder (what a RENAME killed between the folder
        // and its children leaves, as Courier's would).
        if line.contains("\\Noselect") || line.contains("\\NonExistent") {
            continue;
        }
        let name = line
            .rsplit(' ')
            .next()
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        let r = c.cmd(&format!("SELECT {name}"));
        if !r.is_ok() {
            problems.push(format!("SELECT {name} after the crash: {}", r.tagged));
            continue;
        }
        if let Some(v) = r.untagged.iter().find_map(|l| {
            l.split("[UIDVALIDITY ")
                .nth(1)
                .and_then(|s| s.split(']').next())
                .and_then(|s| s.parse().ok())
        }) {
            validity.insert(name.clone(), v);
        }
        let r = c.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Token)])");
        seen.insert(name, fetch_tokens(&r));
    }
    c.ok("LOGOUT");
    (seen, validity)
}

fn folder_path(maildir: &Path, name: &str) -> Option<PathBuf> {
    match name.strip_prefix("INBOX")? {
        "" => Some(maildir.to_path_buf()),
        rest => Some(maildir.join(rest)),
    }
}

/// What the crashing session was told, command by command.
#[derive(Default)]
struct Acks(BTreeSet<&'static str>);

impl Acks {
    fn has(&self, step: &str) -> bool {
        self.0.contains(step)
    }
}

/// Runs the script in a session armed with `spec`; returns the steps acknowledged with OK
/// and whether the session died before the end.
fn run_script(dir: &TestDir, maildir: &Path, spec: &str) -> (Acks, bool) {
    let (mut server, mut c) = spawn_mdimapd(
        dir,
        &[
            "--preauth",
            "--maildir",
            maildir.to_str().unwrap_or_default(),
            "--test-crash-at",
            spec,
        ],
    );
    let a1 = crlf(&body("app-1"));
    let a2 = crlf(&body("app-2"));
    let a3 = crlf(&body("app-3"));
    let steps: Vec<(&'static str, String)> = vec![
        (
            "append",
            format!("APPEND INBOX.Work (\\Seen $k1) {{{}+}}\r\n{a1}", a1.len()),
        ),
        (
            "multiappend",
            format!(
                "APPEND INBOX.Work ($k2) {{{}+}}\r\n{a2} ($k2) {{{}+}}\r\n{a3}",
                a2.len(),
                a3.len()
            ),
        ),
        ("select-inbox", "SELECT INBOX".to_string()),
        ("flag", "UID STORE 1:3 +FLAGS (\\Flagged)".to_string()),
        ("keyword", "UID STORE 4:5 +FLAGS ($k3)".to_string()),
        ("copy", "UID COPY 1:120 INBOX.Work".to_string()),
        ("move", "UID MOVE 121:123 INBOX.Work".to_string()),
        (
            "delete-flag",
            "UID STORE 124:126 +FLAGS (\\Deleted)".to_string(),
        ),
        ("expunge", "EXPUNGE".to_string()),
        ("create", "CREATE INBOX.New".to_string()),
        ("create-child", "CREATE INBOX.New.Child".to_string()),
        ("select-new", "SELECT INBOX.New".to_string()),
        ("rename", "RENAME INBOX.New INBOX.Renamed".to_string()),
        ("delete", "DELETE INBOX.Renamed.Child".to_string()),
        ("select-work", "SELECT INBOX.Work".to_string()),
        ("logout", "LOGOUT".to_string()),
    ];
    let mut acks = Acks::default();
    for (step, text) in steps {
        match c.try_cmd_bytes(text.as_bytes()).1 {
            Outcome::Done(r) => {
                assert!(r.is_ok(), "{spec}: {step} was refused: {r:#?}");
                acks.0.insert(step);
            }
            Outcome::Closed(_) => {
                let status = server.wait_exit(HANG_GUARD);
                let killed = status.is_some_and(|s| {
                    std::os::unix::process::ExitStatusExt::signal(&s) == Some(libc::SIGKILL)
                });
                assert!(
                    killed,
                    "{spec}: the session ended during {step} without being killed: {status:?}\n{}",
                    server.log_text()
                );
                return (acks, true);
            }
        }
    }
    let _ = server.wait_exit(HANG_GUARD);
    (acks, false)
}

/// One kill at `spec` on a fresh maildir; returns the problems found.
fn crash_once(spec: &str) -> (bool, Vec<String>) {
    let dir = TestDir::new("crash");
    let maildir = dir.maildir();
    let work = make_folder(&maildir, ".Work");
    for i in 1..=INBOX_COUNT {
        deliver(&maildir, &body(&format!("in-{i}")));
    }
    for i in 1..=WORK_COUNT {
        deliver(&work, &body(&format!("work-{i}")));
    }
    fs::write(maildir.join("maildirsize"), format!("{LIMITS}\n0 0\n")).unwrap_or_default();
    // Numbered by an ordinary session first: these UIDs must survive whatever follows.
    let mut problems = Vec::new();
    let (before, validity_before) = look(&dir, &maildir, &mut problems);
    assert!(problems.is_empty(), "before the crash: {problems:?}");

    let (acks, died) = run_script(&dir, &maildir, spec);
    let (after, validity) = look(&dir, &maildir, &mut problems);
    let (again, _) = look(&dir, &maildir, &mut problems);

    // Every folder keeps its UIDVALIDITY and every message its UID.
    for (name, v) in &validity_before {
        if validity.get(name).is_some_and(|w| w != v) {
            problems.push(format!(
                "{name}: UIDVALIDITY {v} became {:?}",
                validity.get(name)
            ));
        }
    }
    for (name, msgs) in &before {
        let Some(now) = after.get(name) else { continue };
        for (uid, (token, _)) in msgs {
            if let Some((other, _)) = now.get(uid)
                && other != token
            {
                problems.push(format!("{name} UID {uid} was {token}, is now {other}"));
            }
        }
    }
    // The second look finds exactly what the first did: nothing numbered twice.
    for (name, msgs) in &after {
        let other = again.get(name);
        for (uid, m) in msgs {
            if other.and_then(|o| o.get(uid)) != Some(m) {
                problems.push(format!(
                    "{name} UID {uid}: {m:?} for one session, {:?} for the next",
                    other.and_then(|o| o.get(uid))
                ));
            }
        }
        if other.map(BTreeMap::len) != Some(msgs.len()) {
            problems.push(format!("{name}: the next session sees other messages"));
        }
    }
    // No message under two UIDs in one folder.
    let mut count: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for (name, msgs) in &after {
        for (token, _) in msgs.values() {
            *count.entry((name.as_str(), token.as_str())).or_default() += 1;
        }
    }
    for ((name, token), n) in &count {
        if *n > 1 {
            problems.push(format!("{token} is in {name} {n} times"));
        }
    }
    let in_folder = |name: &str, token: &str| count.contains_key(&(name, token));
    let anywhere = |token: &str| count.keys().any(|(_, t)| *t == token);
    // Nothing that existed, or was acknowledged, is lost.
    for i in 1..=WORK_COUNT {
        let token = format!("work-{i}");
        if !in_folder("INBOX.Work", &token) {
            problems.push(format!("lost {token} from INBOX.Work"));
        }
    }
    for i in 1..=INBOX_COUNT {
        let token = format!("in-{i}");
        let expunged = (124..=126).contains(&i);
        let moved = (121..=123).contains(&i);
        let copied = i <= 120;
        if expunged {
            if acks.has("expunge") && in_folder("INBOX", &token) {
                problems.push(format!("{token} survived an acknowledged EXPUNGE"));
            }
            continue;
        }
        if moved {
            if acks.has("move") {
                if in_folder("INBOX", &token) {
                    problems.push(format!(
                        "{token} is still in INBOX after an acknowledged MOVE"
                    ));
                }
                if !in_folder("INBOX.Work", &token) {
                    problems.push(format!(
                        "{token} is not in INBOX.Work after an acknowledged MOVE"
                    ));
                }
            } else if !anywhere(&token) {
                problems.push(format!("lost {token} in a killed MOVE"));
            }
            continue;
        }
        if !in_folder("INBOX", &token) {
            problems.push(format!("lost {token} from INBOX"));
        }
        if copied && acks.has("copy") && !in_folder("INBOX.Work", &token) {
            problems.push(format!(
                "the acknowledged COPY of {token} is not in INBOX.Work"
            ));
        }
    }
    let appended = [
        ("append", "app-1"),
        ("multiappend", "app-2"),
        ("multiappend", "app-3"),
    ];
    for (step, token) in appended {
        if acks.has(step) && !in_folder("INBOX.Work", token) {
            problems.push(format!(
                "the acknowledged APPEND of {token} is not in INBOX.Work"
            ));
        }
    }
    // Acknowledged flags and keywords are on disk.
    let flags_of = |name: &str, token: &str| -> Option<Vec<String>> {
        after
            .get(name)?
            .values()
            .find(|(t, _)| t == token)
            .map(|(_, f)| f.clone())
    };
    let mut expect_flag = |name: &str, token: &str, flag: &str| {
        if let Some(flags) = flags_of(name, token)
            && !flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
        {
            problems.push(format!(
                "{name} {token}: acknowledged {flag} missing, has {flags:?}"
            ));
        }
    };
    if acks.has("append") {
        expect_flag("INBOX.Work", "app-1", "\\Seen");
        expect_flag("INBOX.Work", "app-1", "$k1");
    }
    if acks.has("multiappend") {
        expect_flag("INBOX.Work", "app-2", "$k2");
        expect_flag("INBOX.Work", "app-3", "$k2");
    }
    if acks.has("flag") {
        for i in 1..=3 {
            expect_flag("INBOX", &format!("in-{i}"), "\\Flagged");
        }
    }
    if acks.has("keyword") {
        for i in 4..=5 {
            expect_flag("INBOX", &format!("in-{i}"), "$k3");
        }
    }
    // Folder operations are whole or not at all.
    let names: BTreeSet<&str> = after.keys().map(String::as_str).collect();
    if acks.has("rename") && (names.contains("INBOX.New") || !names.contains("INBOX.Renamed")) {
        problems.push(format!("an acknowledged RENAME left {names:?}"));
    }
    if acks.has("delete") && names.contains("INBOX.Renamed.Child") {
        problems.push("an acknowledged DELETE left INBOX.Renamed.Child".to_string());
    }
    if acks.has("create") && !names.contains("INBOX.New") && !names.contains("INBOX.Renamed") {
        problems.push(format!("an acknowledged CREATE left {names:?}"));
    }
    // Every file mdimap keeps parses.
    for name in after.keys() {
        if let Some(path) = folder_path(&maildir, name) {
            problems.extend(store_file_problems(&path));
        }
    }
    problems.extend(maildirsize_problems(&maildir, LIMITS));
    (died, problems)
}

#[test]
fn a_session_killed_at_any_write_step_loses_and_doubles_nothing() {
    let mut failures = Vec::new();
    let mut runs = 0;
    for point in mdimap::maildir::crash::POINTS {
        let kills: &[u32] = if point.repeats { &[1, 2] } else { &[1] };
        for n in kills {
            let spec = format!("{}:{n}", point.name);
            let (died, problems) = crash_once(&spec);
            runs += 1;
            if !died {
                failures.push(format!(
                    "{spec}: the script never reached the point ({})",
                    point.leaves
                ));
            }
            for p in problems {
                failures.push(format!("{spec} ({}): {p}", point.leaves));
            }
        }
    }
    assert!(runs >= mdimap::maildir::crash::POINTS.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
