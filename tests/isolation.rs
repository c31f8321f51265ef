//! Two users of one server are isolated (issue 6, acceptance point 3): no command sequence
//! of one user reads, lists or changes the other's mail, whatever mailbox name it sends and
//! whatever links are planted in its own maildir, and every process of a session runs as
//! its own user.
//!
//! Each test runs `mdimapd` in login mode over a socket with a user file of two accounts,
//! Alice and Bob, each with a maildir of their own (mode 0700) under the test dir, and
//! compares Bob's whole maildir (names, kinds, contents, modes, owners, mtimes) before and
//! after everything Alice does. Two setups: distinct uids (the kernel keeps them apart too)
//! and one uid shared by both accounts, as on virtual-mail servers, where only the server's
//! own refusals (names, links) keep Alice out. Distinct uids need root (CI runs as root);
//! without it both accounts are the invoking user.
//!
//! These tests own the observable contract only; they must not reach into the library.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

const ALICE: &str = "alice";
const BOB: &str = "bob";
/// Words that occur only in Bob's mail, folders, keywords and subscriptions.
const BOB_MARKERS: [&str; 4] = ["bob-secret", "Private", "BobsKeyword", "BobOnly"];

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// One account of the user file and its maildir.
struct Account {
    name: &'static str,
    uid: u32,
    gid: u32,
    home: PathBuf,
    maildir: PathBuf,
}

/// The test dir with Alice's and Bob's accounts and maildirs, and the server's config.
struct Site {
    t: TestDir,
    alice: Account,
    bob: Account,
}

/// What one path is: kind and contents (or link target), mode, owner and mtime.
type Entry = (String, u32, u32, u32, i64, i64);

/// Everything below `path` (not following links), by relative name.
fn tree_of(path: &Path) -> BTreeMap<String, Entry> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let meta = fs::symlink_metadata(dir).unwrap();
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        let name = dir.strip_prefix(base).unwrap().display().to_string();
        out.insert(name, entry_of(dir, &meta));
        for p in entries {
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                walk(base, &p, out);
            } else {
                let name = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(name, entry_of(&p, &meta));
            }
        }
    }
    fn entry_of(p: &Path, meta: &fs::Metadata) -> Entry {
        let what = if meta.is_symlink() {
            format!("link -> {}", fs::read_link(p).unwrap().display())
        } else if meta.is_dir() {
            "dir".to_string()
        } else {
            format!("file {:?}", fs::read(p).unwrap())
        };
        (
            what,
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.mtime(),
            meta.mtime_nsec(),
        )
    }
    let mut out = BTreeMap::new();
    walk(path, path, &mut out);
    out
}

impl Site {
    /// Alice and Bob with uids of their own (`shared` false) or one uid for both.
    fn new(name: &str, shared: bool) -> Site {
        let t = TestDir::new(name);
        let ids = |own: u32| {
            if !is_root() {
                // SAFETY: getuid and getgid have no preconditions and cannot fail.
                unsafe { (libc::getuid(), libc::getgid()) }
            } else if shared {
                (60003, 60003)
            } else {
                (own, own)
            }
        };
        let account = |name: &'static str, own: u32| {
            let (uid, gid) = ids(own);
            let home = t.join(name);
            let maildir = home.join("Maildir");
            Account {
                name,
                uid,
                gid,
                home,
                maildir,
            }
        };
        let alice = account(ALICE, 60001);
        let bob = account(BOB, 60002);

        // Bob: a seen message in cur/, a new one, a folder with a message, a keyword and a
        // subscription, all numbered by a first session of his own.
        let m = &bob.maildir;
        make_maildir(m);
        let seen = put_cur(m, &message("bob-secret seen", "bob-secret body"), "S");
        deliver(m, &message("bob-secret new", "bob-secret new body"));
        let private = make_folder(m, ".Private");
        let kept = put_cur(&private, &message("bob-secret kept", "bob-secret"), "");
        write_uiddb(m, 795_000_001, 2, &[(1, &seen)]);
        write_uiddb(&private, 795_000_002, 2, &[(1, &kept)]);
        fs::create_dir(m.join("courierimapkeywords")).unwrap();
        let base = base_of(seen.file_name().unwrap().to_str().unwrap()).to_string();
        fs::write(m.join("courierimapkeywords").join(base), "BobsKeyword\n").unwrap();
        fs::write(
            m.join("courierimapsubscribed"),
            "INBOX.Private\nINBOX.BobOnly\n",
        )
        .unwrap();

        // Alice: one message in INBOX and a folder.
        let m = &alice.maildir;
        make_maildir(m);
        put_cur(m, &message("alice own", "alice body"), "");
        let work = make_folder(m, ".Work");
        put_cur(&work, &message("alice work", "alice work body"), "S");

        let mut users = String::new();
        for a in [&alice, &bob] {
            if is_root() {
                chown_tree(&a.home, a.uid, a.gid);
            }
            for dir in [&a.home, &a.maildir] {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
            }
            users.push_str(&format!(
                "{}:{PASSWORD_HASH}:{}:{}:{}:::\n",
                a.name,
                a.uid,
                a.gid,
                a.home.display()
            ));
        }
        let users_file = t.join("users");
        fs::write(&users_file, users).unwrap();
        fs::set_permissions(&users_file, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(
            t.join("mdimapd.conf"),
            format!(
                "# written by the isolation tests\nMDIMAP_USERFILE={}\n",
                users_file.display()
            ),
        )
        .unwrap();
        Site { t, alice, bob }
    }

    /// A logged-in session of `who`, checked to run as that account and nothing else.
    fn login(&self, who: &Account) -> (Server, Transcript) {
        let (server, mut c, _) = login_mode(&self.t);
        c.ok(&format!("LOGIN {} {PASSWORD}", who.name));
        assert_session_runs_as(server.pid(), who);
        (
            server,
            Transcript {
                c,
                lines: Vec::new(),
            },
        )
    }

    /// Everything below the test dir that is not Alice's: Bob's maildir, the config, and
    /// whatever a command might have created elsewhere (server logs, and so the test dir's
    /// own mtime, left out).
    fn not_alices(&self) -> BTreeMap<String, Entry> {
        tree_of(&self.t.path)
            .into_iter()
            .filter(|(name, _)| {
                !name.is_empty()
                    && !name.starts_with(&format!("{ALICE}/"))
                    && !name.ends_with(".log")
            })
            .collect()
    }

    /// Nothing outside Alice's home changed since `before`.
    fn assert_unchanged_since(&self, before: &BTreeMap<String, Entry>) {
        let after = self.not_alices();
        let mut changes = Vec::new();
        for (name, entry) in before {
            match after.get(name) {
                None => changes.push(format!("removed: {name}")),
                Some(now) if now != entry => changes.push(format!("changed: {name}")),
                Some(_) => {}
            }
        }
        for name in after.keys().filter(|n| !before.contains_key(*n)) {
            changes.push(format!("created: {name}"));
        }
        assert!(changes.is_empty(), "outside Alice's home: {changes:#?}");
    }
}

/// The ids in one `Uid:`/`Gid:` line of /proc/<pid>/status (real, effective, saved, fs).
fn status_ids(status: &str, key: &str) -> Vec<u32> {
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {status}"));
    line[key.len()..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// The session process and every process below it run as `who`: all four uids and gids
/// are the account's, and no supplementary group but its own.
fn assert_session_runs_as(pid: i32, who: &Account) {
    let mut pids = vec![pid];
    let mut seen = Vec::new();
    while let Some(p) = pids.pop() {
        pids.extend(children_of(p));
        let Ok(status) = fs::read_to_string(format!("/proc/{p}/status")) else {
            continue; // gone meanwhile
        };
        assert_eq!(status_ids(&status, "Uid:"), vec![who.uid; 4], "pid {p}");
        assert_eq!(status_ids(&status, "Gid:"), vec![who.gid; 4], "pid {p}");
        // Without root the invoking user keeps the groups it has.
        let groups = status_ids(&status, "Groups:");
        assert!(
            !is_root() || groups.iter().all(|g| *g == who.gid),
            "pid {p} of {} has groups {groups:?}",
            who.name
        );
        seen.push(p);
    }
    assert!(seen.contains(&pid), "no /proc entry for the session {pid}");
}

/// A client that keeps every line the server sent, to check that none of Bob's words
/// ever reached Alice.
struct Transcript {
    c: Client,
    lines: Vec<String>,
}

impl Transcript {
    fn cmd(&mut self, text: &[u8]) -> Response {
        let r = self.c.cmd_bytes(text);
        self.lines.extend(r.untagged.iter().cloned());
        self.lines.push(r.tagged.clone());
        r
    }

    fn ok(&mut self, text: &str) -> Response {
        let r = self.cmd(text.as_bytes());
        assert!(r.is_ok(), "expected OK for {text:?}, got {r:#?}");
        r
    }

    /// `text` with `name` in place of `{}`, as a synchronizing literal, must be refused.
    fn refused(&mut self, text: &str, name: &[u8]) {
        let r = self.cmd(&with_name(text, name));
        assert!(
            r.is_no() || r.is_bad(),
            "expected NO or BAD for {text:?} with {:?}, got {r:#?}",
            String::from_utf8_lossy(name)
        );
    }

    fn assert_nothing_of_bob(&self) {
        for line in &self.lines {
            for marker in BOB_MARKERS {
                assert!(
                    !line.contains(marker),
                    "Bob's {marker:?} reached Alice: {line}"
                );
            }
        }
    }
}

/// `text` with `{}` replaced by `name` as a synchronizing literal (any byte may go in one).
fn with_name(text: &str, name: &[u8]) -> Vec<u8> {
    let (before, after) = text.split_once("{}").unwrap();
    let mut out = before.as_bytes().to_vec();
    out.extend_from_slice(format!("{{{}+}}\r\n", name.len()).as_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(after.as_bytes());
    out
}

/// `s` as one modified-base64 run of modified UTF-7, even where the canonical spelling
/// would leave it plain (printable ASCII): the non-canonical spellings a client could try.
fn utf7_run(s: &str) -> String {
    let units: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let b64 = base64(&units).trim_end_matches('=').replace('/', ",");
    format!("&{b64}-")
}

/// Names that cannot be a folder of Alice's in either mode: paths, other users, hidden and
/// empty names, NUL, control characters and bytes that are not UTF-8. Every command must
/// refuse them.
fn impossible_names(site: &Site) -> Vec<Vec<u8>> {
    let bob = site.bob.maildir.display().to_string();
    let mut names: Vec<Vec<u8>> = [
        format!("../../{BOB}/Maildir"),
        format!("../../{BOB}/Maildir/.Private"),
        "INBOX/../../../bob/Maildir".to_string(),
        "INBOX.../../bob/Maildir/.Private".to_string(),
        "INBOX./../../../bob/Maildir".to_string(),
        "INBOX.Work/../../../bob/Maildir/.Private".to_string(),
        bob.clone(),
        format!("{bob}/.Private"),
        format!("{bob}/cur"),
        "/".to_string(),
        "~bob".to_string(),
        "~bob/INBOX".to_string(),
        "~bob.Private".to_string(),
        "#shared.bob.Private".to_string(),
        "#user.bob".to_string(),
        "Private".to_string(),
        ".Private".to_string(),
        ".".to_string(),
        "..".to_string(),
        "...".to_string(),
        "INBOX..".to_string(),
        "INBOX..Private".to_string(),
        "INBOX.X..".to_string(),
        "INBOX.Work..".to_string(),
        "INBOX.Work/".to_string(),
        "INBOX/Work".to_string(),
        "".to_string(),
        " INBOX.Private".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    names.extend([
        b"INBOX.Private\0".to_vec(),
        b"INBOX\0/../../bob/Maildir".to_vec(),
        b"INBOX.\0".to_vec(),
        b"INBOX.a\x01b".to_vec(),
        b"INBOX.Work\r".to_vec(),
        b"INBOX\xc0\xaePrivate".to_vec(),
        b"INBOX.\xc0\xaf..\xc0\xafbob".to_vec(),
        b"INBOX.\xff".to_vec(),
        b"INBOX.\xed\xa0\x80".to_vec(),
    ]);
    names
}

/// Modified UTF-7 that is not the one canonical spelling of a name (`.` and `/` hidden in
/// base64, a run left open): impossible before ENABLE UTF8=ACCEPT, plain odd names after.
fn utf7_tricks() -> Vec<Vec<u8>> {
    [
        format!("INBOX{}Private", utf7_run(".")),
        format!("INBOX.{}", utf7_run("/../../bob/Maildir")),
        format!("{}bob{}Maildir", utf7_run("../../"), utf7_run("/")),
        format!("INBOX.{}", utf7_run("..")),
        "INBOX.&AC4-".to_string(),
        "INBOX.&-&AC8-".to_string(),
        "INBOX.&Jjo".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// Names Alice's own folders could have but do not (wildcards, look-alikes of `.` and
/// `/` after ENABLE UTF8=ACCEPT): commands on an existing mailbox must say NO; CREATE may
/// make them, inside Alice's maildir.
fn absent_names() -> Vec<Vec<u8>> {
    [
        "INBOX.%",
        "INBOX.*",
        "%",
        "*",
        "INBOX.Priv%",
        "*Private*",
        "INBOX.%.%",
        "INBOX.\u{FF0E}\u{FF0E}\u{2215}bob",
        "INBOX\u{FF0E}Private",
        "INBOX.\u{2024}\u{2024}\u{2044}bob",
        "INBOX.\u{200B}Private",
    ]
    .into_iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Commands on an existing mailbox; COPY and MOVE (of Alice's one message in INBOX) first.
const ON_EXISTING: [&str; 8] = [
    "COPY 1 {}",
    "MOVE 1 {}",
    "UID COPY 1:* {}",
    "UID MOVE 1:* {}",
    "STATUS {} (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)",
    "APPEND {} (\\Seen) {7}\r\nx: y\r\n\r\n",
    "EXAMINE {}",
    "SELECT {}",
];
/// Commands that remove or move away an existing mailbox.
const REMOVING: [&str; 2] = ["DELETE {}", "RENAME {} INBOX.Taken"];
/// Commands that make a new mailbox.
const MAKING: [&str; 2] = ["CREATE {}", "RENAME INBOX.Work {}"];

/// Each of `commands` with `name` where the mailbox goes must be refused. INBOX is
/// selected first when COPY or MOVE needs a source (they come before anything that would
/// close it).
fn refuse(s: &mut Transcript, commands: &[&str], name: &[u8]) {
    if commands.iter().any(|text| text.contains("1 {}")) {
        s.ok("SELECT INBOX");
    }
    for text in commands {
        s.refused(text, name);
    }
}

/// LIST and LSUB with references and patterns aimed at Bob list nothing but Alice's own.
fn list_only_alices(s: &mut Transcript, bob_maildir: &Path, mine: &[&str]) {
    let absolute = format!("\"{}/\"", bob_maildir.display());
    for (reference, pattern) in [
        ("\"\"", "*"),
        ("\"\"", "%"),
        ("\"../\"", "*"),
        ("\"../../\"", "%"),
        ("\"/\"", "*"),
        ("\"~bob\"", "*"),
        ("\"~bob/\"", "%"),
        ("\"\"", "~bob/*"),
        ("\"\"", "../*"),
        ("\"\"", "/*"),
        ("\"#shared\"", "*"),
        ("\"\"", "*/*"),
        ("\"INBOX.\"", "../../*"),
        ("\"\"", "INBOX.%/../*"),
        ("\"\"", "*Private*"),
        (absolute.as_str(), "*"),
    ] {
        for verb in ["LIST", "LSUB"] {
            let r = s.cmd(format!("{verb} {reference} {pattern}").as_bytes());
            for line in r.lines(&format!("* {verb} ")) {
                let name = line.rsplit(' ').next().unwrap().trim_matches('"');
                assert!(mine.contains(&name), "{verb} {reference} {pattern}: {line}");
            }
        }
    }
}

fn hostile_names(shared: bool) {
    let site = Site::new(if shared { "names-shared" } else { "names" }, shared);
    let before = site.not_alices();
    let (server, mut s) = site.login(&site.alice);
    for utf8 in [false, true] {
        if utf8 {
            s.ok("ENABLE UTF8=ACCEPT");
        }
        let (mut impossible, mut absent) = (impossible_names(&site), absent_names());
        if utf8 {
            absent.extend(utf7_tricks());
        } else {
            impossible.extend(utf7_tricks());
        }
        for name in &impossible {
            refuse(&mut s, &ON_EXISTING, name);
            refuse(&mut s, &REMOVING, name);
            refuse(&mut s, &MAKING, name);
        }
        for name in &absent {
            refuse(&mut s, &ON_EXISTING, name);
            refuse(&mut s, &REMOVING, name);
        }
        list_only_alices(&mut s, &site.bob.maildir, &["INBOX", "INBOX.Work"]);
    }
    // Alice may make folders under such names: in her own maildir.
    for name in absent_names().into_iter().chain(utf7_tricks()) {
        s.cmd(&with_name("CREATE {}", &name));
    }
    // Alice still has her own mail.
    let r = s.ok("STATUS INBOX (MESSAGES)");
    assert!(r.contains("MESSAGES 1"), "{r:#?}");
    s.ok("LOGOUT");
    s.assert_nothing_of_bob();
    assert_session_runs_as(server.pid(), &site.alice);
    site.assert_unchanged_since(&before);
}

/// Links in Alice's maildir into Bob's: at the folder level (`.Bob` to his maildir,
/// `.Priv` to his folder), below a folder (`.Leaky/cur` to his cur/), for single messages
/// in her cur/ and new/, and for her subscription and keyword files.
fn plant_links(site: &Site) {
    let (a, b) = (&site.alice.maildir, &site.bob.maildir);
    let bob_cur = files(&b.join("cur"));
    let bob_new = files(&b.join("new"));
    let plants: Vec<(PathBuf, PathBuf)> = vec![
        (a.join(".Bob"), b.clone()),
        (a.join(".Priv"), b.join(".Private")),
        (
            a.join("cur/1000000000.M1P1.planted:2,S"),
            b.join("cur").join(&bob_cur[0]),
        ),
        (
            a.join("new/1000000001.M1P1.planted"),
            b.join("new").join(&bob_new[0]),
        ),
        (
            a.join("courierimapsubscribed"),
            b.join("courierimapsubscribed"),
        ),
        (a.join("courierimapkeywords"), b.join("courierimapkeywords")),
    ];
    for (link, target) in plants {
        symlink(target, link).unwrap();
    }
    let leaky = make_folder(a, ".Leaky");
    fs::remove_dir(leaky.join("cur")).unwrap();
    symlink(b.join("cur"), leaky.join("cur")).unwrap();
    if is_root() {
        for p in [
            a.join(".Leaky"),
            leaky.join("cur"),
            leaky.join("new"),
            leaky.join("tmp"),
        ] {
            std::os::unix::fs::lchown(&p, Some(site.alice.uid), Some(site.alice.gid)).unwrap();
        }
        for link in [
            ".Bob",
            ".Priv",
            "cur/1000000000.M1P1.planted:2,S",
            "new/1000000001.M1P1.planted",
            "courierimapsubscribed",
            "courierimapkeywords",
            ".Leaky/maildirfolder",
        ] {
            std::os::unix::fs::lchown(a.join(link), Some(site.alice.uid), Some(site.alice.gid))
                .unwrap();
        }
    }
}

fn planted_links(shared: bool) {
    let site = Site::new(if shared { "links-shared" } else { "links" }, shared);
    plant_links(&site);
    let before = site.not_alices();
    let (server, mut s) = site.login(&site.alice);
    // Her INBOX holds her one message: the links are no messages of hers.
    let r = s.ok("SELECT INBOX");
    assert_eq!(r.count("EXISTS"), Some(1), "{r:#?}");
    s.ok("FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY[])");
    s.ok("UID FETCH 1:* (BODY.PEEK[HEADER] BODY.PEEK[TEXT])");
    let r = s.ok("UID SEARCH TEXT bob-secret");
    assert!(r.search().is_empty(), "{r:#?}");
    s.ok("NOOP");
    let r = s.ok("EXAMINE INBOX");
    assert_eq!(r.count("EXISTS"), Some(1), "{r:#?}");
    s.ok("FETCH 1:* (BODY[])");
    let r = s.ok("STATUS INBOX (MESSAGES UNSEEN)");
    assert!(r.contains("MESSAGES 1"), "{r:#?}");
    // Folders that are links do not exist for her; a real folder whose cur/ is a link
    // cannot be opened.
    let r = s.ok("LIST \"\" *");
    for name in ["INBOX.Bob", "INBOX.Priv"] {
        assert!(!r.contains(name), "{r:#?}");
    }
    let lsub = s.cmd(b"LSUB \"\" *");
    assert!(lsub.lines("* LSUB").is_empty(), "{lsub:#?}");
    for name in ["INBOX.Bob", "INBOX.Priv"] {
        refuse(&mut s, &ON_EXISTING, name.as_bytes());
        refuse(&mut s, &REMOVING, name.as_bytes());
        refuse(&mut s, &MAKING, name.as_bytes());
    }
    refuse(&mut s, &ON_EXISTING, b"INBOX.Leaky");
    refuse(&mut s, &MAKING, b"INBOX.Leaky");
    list_only_alices(
        &mut s,
        &site.bob.maildir,
        &["INBOX", "INBOX.Work", "INBOX.Leaky"],
    );
    // Keywords: her message shows none of Bob's.
    s.ok("SELECT INBOX");
    s.ok("STORE 1 +FLAGS (\\Flagged)");
    s.ok("FETCH 1 (FLAGS)");
    // Her own folder with a linked cur/ she may remove: the link goes, not what it names.
    s.cmd(b"DELETE INBOX.Leaky");
    s.ok("LOGOUT");
    s.assert_nothing_of_bob();
    assert_session_runs_as(server.pid(), &site.alice);
    site.assert_unchanged_since(&before);
}

#[test]
fn sessions_run_as_their_own_user_and_see_their_own_mail() {
    let site = Site::new("uids", false);
    if is_root() {
        assert_ne!(site.alice.uid, site.bob.uid);
    }
    // Bob first, so that what his own session changes (UIDs, cache) is in the picture.
    let mut before = None;
    for who in [&site.bob, &site.alice] {
        let (server, mut s) = site.login(who);
        let r = s.ok("EXAMINE INBOX");
        let exists = if who.name == BOB { 2 } else { 1 };
        assert_eq!(r.count("EXISTS"), Some(exists), "{}: {r:#?}", who.name);
        s.ok("FETCH 1:* (BODY.PEEK[])");
        s.ok("LIST \"\" *");
        assert_session_runs_as(server.pid(), who);
        s.ok("LOGOUT");
        if who.name == ALICE {
            s.assert_nothing_of_bob();
        }
        drop(server);
        before.get_or_insert_with(|| site.not_alices());
    }
    site.assert_unchanged_since(&before.unwrap_or_default());
}

#[test]
fn impossible_and_absent_names_reach_nothing_of_the_other_user() {
    hostile_names(false);
}

#[test]
fn impossible_and_absent_names_reach_nothing_when_users_share_a_uid() {
    hostile_names(true);
}

#[test]
fn links_planted_in_ones_maildir_reach_nothing_of_the_other_user() {
    planted_links(false);
}

#[test]
fn links_planted_in_ones_maildir_reach_nothing_when_users_share_a_uid() {
    planted_links(true);
}
