//! Shared folders as Courier-IMAP has them (issue 7, acceptance point 5): virtual shared
//! folders (`#shared.<account>.<folder>`, from Courier's shared folder index, governed by
//! the owner's access control list) and filesystem-shared folders (`shared.<name>.<folder>`,
//! from `shared-maildirs`, made with Courier's own `maildirmake -S` / `-s` / `--add`).
//!
//! Each test runs `mdimapd` in login mode over a socket with a user file of several
//! accounts and checks what each account can see and do, and the files on disk: who owns
//! which UID, where appended messages land, which links exist. Virtual accounts share one
//! uid (the usual virtual-mail setup); the filesystem-shared test gives the sharer and the
//! users uids of their own, so that the kernel's permissions (the sharable folder's sticky
//! bit, a read-only folder) are what they are on a shell server. Distinct uids need root
//! (CI runs as root); without it the permission-dependent checks are skipped and said so.
//!
//! These tests own the observable contract only; they must not reach into the library.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// The uid and gid of a test account: `own` under root, else the invoking user's.
fn ids(own: u32) -> (u32, u32) {
    if is_root() {
        (own, own)
    } else {
        // SAFETY: getuid and getgid have no preconditions and cannot fail.
        unsafe { (libc::getuid(), libc::getgid()) }
    }
}

/// One account of the user file.
struct Account {
    name: &'static str,
    uid: u32,
    gid: u32,
    home: PathBuf,
    maildir: PathBuf,
}

/// A test dir with a user file of `accounts` and a configuration naming `extra` keys.
struct Site {
    t: TestDir,
    accounts: Vec<Account>,
}

impl Site {
    /// `accounts`: (name, uid under root, account options). Every maildir is made
    /// (cur/ new/ tmp/). `extra` configuration lines may name the test dir as `{dir}`.
    fn new(tag: &str, accounts: &[(&'static str, u32, &'static str)], extra: &str) -> Site {
        let t = TestDir::new(tag);
        let mut list = Vec::new();
        let mut users = String::new();
        for &(name, own, options) in accounts {
            let (uid, gid) = ids(own);
            let home = t.join(name);
            let maildir = home.join("Maildir");
            make_maildir(&maildir);
            users.push_str(&format!(
                "{name}:{PASSWORD_HASH}:{uid}:{gid}:{}:::{options}\n",
                home.display()
            ));
            list.push(Account {
                name,
                uid,
                gid,
                home,
                maildir,
            });
        }
        let users_file = t.join("users");
        fs::write(&users_file, users).unwrap();
        fs::set_permissions(&users_file, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(
            t.join("mdimapd.conf"),
            format!(
                "# written by the shared folder tests\nMDIMAP_USERFILE={}\n{}",
                users_file.display(),
                extra.replace("{dir}", t.path.to_str().unwrap())
            ),
        )
        .unwrap();
        Site { t, accounts: list }
    }

    fn account(&self, name: &str) -> &Account {
        self.accounts
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no account {name}"))
    }

    fn maildir(&self, name: &str) -> PathBuf {
        self.account(name).maildir.clone()
    }

    /// Gives every account its own files (run after the test has put mail in place), and
    /// the maildirs mode 0700.
    fn settle(&self) {
        for a in &self.accounts {
            if is_root() {
                chown_tree(&a.home, a.uid, a.gid);
            }
            for dir in [&a.home, &a.maildir] {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
            }
        }
    }

    /// A logged-in session of `name`.
    fn login(&self, name: &str) -> (Server, Client) {
        let (server, mut c, _) = login_mode(&self.t);
        c.ok(&format!("LOGIN {name} {PASSWORD}"));
        (server, c)
    }
}

fn assert_code(r: &Response, code: &str, context: &str) {
    assert!(
        r.is_no() && r.text().starts_with(&format!("[{code}]")),
        "{context}: expected NO [{code}], got {r:#?}"
    );
}

/// The names of the `* LIST` / `* LSUB` lines, with their attributes.
fn listed(r: &Response, verb: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = r
        .lines(&format!("* {verb} "))
        .iter()
        .map(|l| {
            let attrs = l[l.find('(').unwrap() + 1..l.find(')').unwrap()].to_string();
            let name = l.rsplit(' ').next().unwrap().trim_matches('"').to_string();
            (name, attrs)
        })
        .collect();
    out.sort();
    out
}

fn names_of(r: &Response, verb: &str) -> Vec<String> {
    listed(r, verb).into_iter().map(|(n, _)| n).collect()
}

/// The number in `[CODE n]` or the first number of `[CODE a b]` of a response.
fn code_numbers(r: &Response, code: &str) -> Vec<u32> {
    let needle = format!("[{code} ");
    let line = r
        .untagged
        .iter()
        .chain(std::iter::once(&r.tagged))
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no [{code}] in {r:#?}"));
    let rest = &line[line.find(&needle).unwrap() + needle.len()..];
    rest[..rest.find(']').unwrap()]
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Every path below `dir`.
fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk_all(&path));
        }
        out.push(path);
    }
    out
}

fn only_file(dir: &Path) -> String {
    let names = files(dir);
    assert_eq!(names.len(), 1, "one file expected in {}", dir.display());
    names[0].clone()
}

// ---------------------------------------------------------------------------
// Virtual shared folders
// ---------------------------------------------------------------------------

/// The uid every virtual account runs as under root.
const VIRTUAL_UID: u32 = 60_030;

/// Alice and Bob share folders through Courier's index (Bob's read-only to Alice,
/// read-write to Carol); Carol sees another index (`sharedgroup`), Dave has
/// `disableshared`; Eve, listed but with a uid of her own, cannot be read, while Frank,
/// with a uid of his own but the virtual group and group permissions, can.
#[test]
fn virtual_shared_folders_follow_the_owner_s_acl() {
    let site = Site::new(
        "virtual",
        &[
            ("alice", VIRTUAL_UID, ""),
            ("bob", VIRTUAL_UID, ""),
            ("carol", VIRTUAL_UID, "sharedgroup=B"),
            ("dave", VIRTUAL_UID, "disableshared=1"),
            ("eve", VIRTUAL_UID + 1, ""),
            ("frank", VIRTUAL_UID + 2, ""),
        ],
        "IMAP_SHAREDINDEXFILE={dir}/shared/index\n",
    );

    // Bob's project folder (two messages, one seen) and a private folder.
    let bob = site.maildir("bob");
    let project = make_folder(&bob, ".Project");
    put_cur(&project, &message("plan", "the plan"), "");
    put_cur(&project, &message("budget", "the budget"), "S");
    let secret = make_folder(&bob, ".Secret");
    put_cur(&secret, &message("bob-secret", "bob-secret"), "");
    // Alice's public folder; Carol's notes; Eve's mail.
    let alice = site.maildir("alice");
    let public = make_folder(&alice, ".Public");
    put_cur(&public, &message("alice public", "hello"), "");
    put_cur(&alice, &message("alice own", "mine"), "");
    let carol = site.maildir("carol");
    let notes = make_folder(&carol, ".Notes");
    put_cur(&notes, &message("carol notes", "notes"), "");
    let eve = site.maildir("eve");
    put_cur(&make_folder(&eve, ".Open"), &message("eve", "eve"), "");
    let frank = site.maildir("frank");
    let frank_open = make_folder(&frank, ".Open");
    put_cur(&frank_open, &message("frank open", "frank's open news"), "");
    fs::write(
        frank_open.join("courierimapacl"),
        "owner aceilrstwx\nadministrators aceilrstwx\nanyone lr\n",
    )
    .unwrap();
    site.settle();
    if is_root() {
        // Frank's own uid, the virtual accounts' group, and group permissions.
        let home = &site.account("frank").home;
        chown_tree(home, VIRTUAL_UID + 2, VIRTUAL_UID);
        for entry in [home.clone()].into_iter().chain(walk_all(home)) {
            let mode = fs::metadata(&entry).unwrap().mode() & 0o777;
            let group = (mode & 0o700) >> 3;
            fs::set_permissions(&entry, fs::Permissions::from_mode(mode | group)).unwrap();
        }
    }

    // The index, as `authenumerate -s` writes it, with a group; Carol's universe (B)
    // has only Bob and herself.
    let dir = site.t.join("shared");
    fs::create_dir_all(&dir).unwrap();
    let line = |name: &str| {
        let a = site.account(name);
        format!("{name}\t{}\t{}\t{}\n", a.uid, a.gid, a.home.display())
    };
    fs::write(
        dir.join("index"),
        format!(
            "# shared folder index\n{}{}{}{}team\t*\tindex.team\nghost\t1\t1\t/nonexistent\n",
            line("alice"),
            line("bob"),
            line("eve"),
            line("frank")
        ),
    )
    .unwrap();
    fs::write(dir.join("index.team"), line("carol")).unwrap();
    fs::write(
        dir.join("indexB"),
        format!("{}{}", line("bob"), line("carol")),
    )
    .unwrap();

    // The owners grant rights through IMAP.
    let (_s, mut b) = site.login("bob");
    b.ok("SELECT INBOX.Project");
    b.ok("SETACL INBOX.Project alice lr");
    b.ok("SETACL INBOX.Project carol lrswite");
    b.ok("LOGOUT");
    let (_s, mut a) = site.login("alice");
    a.ok("SETACL INBOX.Public anyone lr");
    a.ok("LOGOUT");
    let (_s, mut c) = site.login("carol");
    c.ok("SETACL INBOX.Notes anyone lr");
    c.ok("LOGOUT");
    let bob_db = read_uiddb(&project);
    assert_eq!(bob_db.entries.len(), 2);

    // ---- Alice: read-only.
    let (server, mut a) = site.login("alice");
    let r = a.ok("NAMESPACE");
    assert_eq!(
        r.untagged,
        vec!["* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\"))"]
    );
    let r = a.ok("LIST \"\" *");
    assert!(!r.contains("#shared"), "{r:#?}");
    let r = a.ok("LIST \"\" \"#shared.*\"");
    assert_eq!(
        listed(&r, "LIST"),
        vec![
            ("#shared.bob".into(), "\\Noselect \\HasChildren".into()),
            ("#shared.bob.Project".into(), "\\HasNoChildren".into()),
            ("#shared.frank".into(), "\\Noselect \\HasChildren".into()),
            ("#shared.frank.Open".into(), "\\HasNoChildren".into()),
            ("#shared.team".into(), "\\Noselect \\HasChildren".into()),
            (
                "#shared.team.carol".into(),
                "\\Noselect \\HasChildren".into()
            ),
            ("#shared.team.carol.Notes".into(), "\\HasNoChildren".into()),
        ],
        "{r:#?}"
    );
    let r = a.ok("LIST \"\" \"#shared.%\"");
    assert_eq!(
        names_of(&r, "LIST"),
        vec!["#shared.bob", "#shared.frank", "#shared.team"]
    );
    let r = a.ok("MYRIGHTS #shared.bob.Project");
    assert_eq!(
        r.untagged,
        vec!["* MYRIGHTS \"#shared.bob.Project\" \"lr\""]
    );
    let r = a.ok("SELECT #shared.bob.Project");
    assert!(r.text().starts_with("[READ-ONLY]"), "{r:#?}");
    assert!(r.contains("* OK [MYRIGHTS \"lr\"] ACL"), "{r:#?}");
    assert_eq!(r.count("EXISTS"), Some(2));
    // The UIDs are the owner's: the folder's own database.
    assert_eq!(code_numbers(&r, "UIDVALIDITY"), vec![bob_db.uidvalidity]);
    let r = a.ok("UID FETCH 1:* (UID BODY[])");
    assert_eq!(r.fetches().len(), 2);
    for (uid, base) in &bob_db.entries {
        let line = r
            .fetches()
            .into_iter()
            .map(|(_, l)| l.clone())
            .find(|l| l.contains(&format!("UID {uid} ")))
            .unwrap_or_else(|| panic!("no UID {uid} in {r:#?}"));
        let file = cur_file_with_base(&project, base).unwrap();
        let text = fs::read_to_string(project.join("cur").join(&file)).unwrap();
        assert!(line.contains(text.lines().nth(1).unwrap()), "{line}");
    }
    // Reading without `s` marks nothing; changing anything is refused.
    assert!(
        files(&project.join("cur"))
            .iter()
            .filter(|f| f.ends_with(":2,"))
            .count()
            == 1
    );
    a.no("STORE 1 +FLAGS (\\Flagged)");
    assert_code(&a.cmd("EXPUNGE"), "NOPERM", "EXPUNGE without e");
    let msg = crlf(&message("from alice", "x"));
    assert_code(
        &a.cmd(&format!("APPEND #shared.bob.Project {}", lit_plus(&msg))),
        "NOPERM",
        "APPEND without i",
    );
    a.ok("SELECT INBOX");
    assert_code(
        &a.cmd("COPY 1 #shared.bob.Project"),
        "NOPERM",
        "COPY without i",
    );
    assert_code(
        &a.cmd("MOVE 1 #shared.bob.Project"),
        "NOPERM",
        "MOVE without i",
    );
    assert_eq!(files(&project.join("cur")).len(), 2);
    assert_code(&a.cmd("SELECT #shared.bob"), "NOPERM", "Bob's INBOX");
    assert_code(
        &a.cmd("SELECT #shared.bob.Secret"),
        "NOPERM",
        "Bob's secret",
    );
    assert_code(
        &a.cmd("STATUS #shared.bob.Secret (MESSAGES)"),
        "NOPERM",
        "STATUS",
    );
    assert_code(
        &a.cmd("GETACL #shared.bob.Project"),
        "NOPERM",
        "GETACL without a",
    );
    assert_code(
        &a.cmd("SELECT #shared.nobody.X"),
        "NONEXISTENT",
        "not in the index",
    );
    assert_code(
        &a.cmd("SELECT #shared.ghost"),
        "NONEXISTENT",
        "no such maildir",
    );
    // Her own maildir is not shared with herself.
    assert_code(
        &a.cmd("SELECT #shared.alice.Public"),
        "NONEXISTENT",
        "own maildir",
    );
    let r = a.ok("STATUS #shared.bob.Project (MESSAGES UIDNEXT UIDVALIDITY)");
    assert!(
        r.contains(&format!(
            "(MESSAGES 2 UIDNEXT {} UIDVALIDITY {})",
            bob_db.nextuid, bob_db.uidvalidity
        )),
        "{r:#?}"
    );
    // A group of the index is one more level; its folders' owner is the group.
    let r = a.ok("EXAMINE #shared.team.carol.Notes");
    assert_eq!(r.count("EXISTS"), Some(1));
    // Other accounts' folders are not hers to create, delete or rename.
    for refused in [
        "CREATE #shared.bob.New",
        "DELETE #shared.bob.Project",
        "RENAME #shared.bob.Project INBOX.Mine",
        "RENAME INBOX.Public #shared.bob.Public",
    ] {
        assert_code(&a.cmd(refused), "CANNOT", refused);
    }
    assert!(!bob.join(".New").exists() && project.exists());
    // Subscriptions: LSUB shows #shared. names only for patterns starting with '#'.
    a.ok("SUBSCRIBE #shared.bob.Project");
    assert_eq!(
        fs::read_to_string(alice.join("courierimapsubscribed")).unwrap(),
        "#shared.bob.Project\n"
    );
    let r = a.ok("LSUB \"\" *");
    assert!(!r.contains("#shared"), "{r:#?}");
    let r = a.ok("LSUB \"\" \"#shared.*\"");
    assert_eq!(names_of(&r, "LSUB"), vec!["#shared.bob.Project"], "{r:#?}");
    // Frank's maildir is read through its group permissions.
    let r = a.ok("EXAMINE #shared.frank.Open");
    assert_eq!(r.count("EXISTS"), Some(1));
    let r = a.ok("FETCH 1 BODY[]");
    assert!(r.contains("frank's open news"), "{r:#?}");
    // Eve's maildir cannot be read with the virtual uid: left out of LIST, refused
    // cleanly, and the administrator is told why.
    if is_root() {
        let r = a.ok("LIST \"\" \"#shared.eve*\"");
        assert!(r.lines("* LIST").is_empty(), "{r:#?}");
        assert_code(
            &a.cmd("SELECT #shared.eve.Open"),
            "NOPERM",
            "unreadable maildir",
        );
        a.ok("LOGOUT");
        assert!(
            server.log_text().contains("must be readable by the uid"),
            "{}",
            server.log_text()
        );
    } else {
        eprintln!("not root: Eve has the same uid; the unreadable-maildir checks are skipped");
        a.ok("LOGOUT");
    }
    drop(server);

    // ---- Carol: read-write, through her own index (sharedgroup=B).
    let (_s, mut c) = site.login("carol");
    let r = c.ok("LIST \"\" \"#shared.*\"");
    assert_eq!(
        names_of(&r, "LIST"),
        vec!["#shared.bob", "#shared.bob.Project"],
        "Alice's public folder is in another universe: {r:#?}"
    );
    let r = c.ok("SELECT #shared.bob.Project");
    assert!(r.text().starts_with("[READ-WRITE]"), "{r:#?}");
    assert!(r.contains("* OK [MYRIGHTS \"eilrstw\"] ACL"), "{r:#?}");
    let unseen_uid = bob_db.entries[0].0;
    c.ok(&format!("UID FETCH {unseen_uid} BODY[]"));
    c.ok("UID STORE 1:* +FLAGS (\\Flagged)");
    let r = c.ok(&format!(
        "APPEND #shared.bob.Project (\\Seen) {}",
        lit_plus(&crlf(&message("from carol", "added")))
    ));
    let appended = code_numbers(&r, "APPENDUID");
    assert_eq!(appended[0], bob_db.uidvalidity);
    let db = read_uiddb(&project);
    let base = db
        .base_of_uid(appended[1])
        .expect("the new UID is in Bob's database");
    let added = cur_file_with_base(&project, base).expect("the message is in Bob's folder");
    assert!(added.ends_with(":2,S"), "{added}");
    assert_eq!(r.count("EXISTS"), Some(3));
    c.ok(&format!("UID STORE {} +FLAGS (\\Deleted)", appended[1]));
    let r = c.ok("EXPUNGE");
    assert_eq!(r.expunged(), vec![3]);
    assert_eq!(cur_file_with_base(&project, base), None);
    c.ok("LOGOUT");
    // Bob sees Carol's changes, under the same UIDs.
    let (_s, mut b) = site.login("bob");
    b.ok("SELECT INBOX.Project");
    let r = b.ok("UID FETCH 1:* (FLAGS)");
    assert_eq!(r.fetches().len(), 2);
    for (_, l) in r.fetches() {
        assert!(l.contains("\\Flagged") && l.contains("\\Seen"), "{l}");
    }
    b.ok("LOGOUT");

    // ---- Dave: disableshared.
    let (_s, mut d) = site.login("dave");
    let r = d.ok("NAMESPACE");
    assert_eq!(r.untagged, vec!["* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL"]);
    let r = d.ok("LIST \"\" \"#shared.*\"");
    assert!(r.lines("* LIST").is_empty(), "{r:#?}");
    assert_code(
        &d.cmd("SELECT #shared.bob.Project"),
        "NONEXISTENT",
        "disableshared",
    );
    d.ok("LOGOUT");
    // Nobody wrote into Eve's maildir, and Bob's secret is as it was.
    assert!(!eve.join(".Open/courierimapacl").exists() || !is_root());
    assert_eq!(files(&secret.join("cur")).len(), 1);
}

// ---------------------------------------------------------------------------
// Filesystem-shared folders
// ---------------------------------------------------------------------------

/// Courier's `maildirmake`, or a failure saying how to install it.
fn maildirmake(args: &[&str]) {
    let program = "/usr/bin/maildirmake";
    assert!(
        Path::new(program).is_file(),
        "Courier's maildirmake is not installed; these tests need it. Install the Debian \
         package: DEFAULT_FRONTEND=noninteractive apt-get install -y courier-base"
    );
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("cannot run maildirmake");
    assert!(
        out.status.success(),
        "maildirmake {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Changes the owner of everything below `path` without following links, keeping the
/// modes (the sticky bit included) as `maildirmake` left them.
fn lchown_tree(path: &Path, uid: u32, gid: u32) {
    let mode = fs::symlink_metadata(path).unwrap().mode();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if !fs::symlink_metadata(path).unwrap().file_type().is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777)).unwrap();
    }
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for e in fs::read_dir(path).unwrap().flatten() {
            lchown_tree(&e.path(), uid, gid);
        }
    }
}

/// Sam's sharable maildir (`maildirmake -S`) with a `write` folder Forum and a `read`
/// folder News, used by Alice and Bob (`maildirmake --add`), each a uid of their own.
#[test]
fn filesystem_shared_folders_as_maildirmake_makes_them() {
    let site = Site::new(
        "filesystem",
        &[("alice", 60_041, ""), ("bob", 60_042, "")],
        "IMAP_SHAREDINDEXFILE=\n",
    );
    let sharable = site.t.join("sam/Maildir-shared");
    fs::create_dir_all(site.t.join("sam")).unwrap();
    let s = sharable.to_str().unwrap();
    maildirmake(&["-S", s]);
    maildirmake(&["-s", "write", "-f", "Forum", s]);
    maildirmake(&["-s", "read", "-f", "News", s]);
    let forum = sharable.join(".Forum");
    let news = sharable.join(".News");
    let welcome = put_cur(&forum, &message("welcome", "sam's welcome"), "");
    put_cur(&news, &message("news", "sam's news"), "");
    fs::set_permissions(&welcome, fs::Permissions::from_mode(0o644)).unwrap();
    for f in files(&news.join("cur")) {
        fs::set_permissions(news.join("cur").join(f), fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (sam_uid, sam_gid) = ids(60_040);
    if is_root() {
        lchown_tree(&site.t.join("sam"), sam_uid, sam_gid);
    }
    assert_ne!(
        fs::metadata(forum.join("cur")).unwrap().mode() & 0o1000,
        0,
        "maildirmake -s write sets the sticky bit"
    );
    let alice = site.maildir("alice");
    let bob = site.maildir("bob");
    put_cur(&alice, &message("alice own", "alice's own"), "");
    for m in [&alice, &bob] {
        maildirmake(&["--add", &format!("firm={s}"), m.to_str().unwrap()]);
    }
    site.settle();
    fs::set_permissions(&site.t.path, fs::Permissions::from_mode(0o755)).unwrap();

    let (server, mut a) = site.login("alice");
    let r = a.ok("NAMESPACE");
    assert_eq!(
        r.untagged,
        vec!["* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"shared.\" \".\"))"]
    );
    let r = a.ok("LIST \"\" *");
    assert_eq!(
        listed(&r, "LIST"),
        vec![
            ("INBOX".into(), "\\HasNoChildren".into()),
            ("shared".into(), "\\Noselect \\HasChildren".into()),
            ("shared.firm".into(), "\\Noselect \\HasChildren".into()),
            ("shared.firm.Forum".into(), "\\HasNoChildren".into()),
            ("shared.firm.News".into(), "\\HasNoChildren".into()),
        ],
        "{r:#?}"
    );
    let r = a.ok("LSUB \"\" *");
    assert!(r.lines("* LSUB").is_empty(), "{r:#?}");
    // A level is no mailbox (Courier: "Mailbox does not exist").
    a.no("MYRIGHTS shared.firm");

    // Subscribing makes the local copy as Courier does.
    a.ok("SUBSCRIBE shared.firm.Forum");
    let local = alice.join("shared-folders/firm/Forum");
    assert_eq!(
        fs::read_link(local.join("shared")).unwrap(),
        PathBuf::from(format!("{s}/.Forum"))
    );
    for sub in ["cur", "new", "tmp"] {
        assert_eq!(fs::metadata(local.join(sub)).unwrap().mode() & 0o777, 0o700);
    }
    let r = a.ok("LSUB \"\" *");
    assert!(
        names_of(&r, "LSUB").contains(&"shared.firm.Forum".to_string()),
        "{r:#?}"
    );
    let r = a.ok("MYRIGHTS shared.firm.Forum");
    assert_eq!(
        r.untagged,
        vec!["* MYRIGHTS \"shared.firm.Forum\" \"dilrsw\""]
    );

    // Opening syncs: Sam's message is a link in the local copy; the UIDs are the
    // local copy's.
    let r = a.ok("SELECT shared.firm.Forum");
    assert!(r.text().starts_with("[READ-WRITE]"), "{r:#?}");
    assert_eq!(r.count("EXISTS"), Some(1));
    assert_eq!(r.count("RECENT"), Some(1));
    let db = read_uiddb(&local);
    assert_eq!(code_numbers(&r, "UIDVALIDITY"), vec![db.uidvalidity]);
    let link = only_file(&local.join("cur"));
    assert_eq!(
        fs::read_link(local.join("cur").join(&link)).unwrap(),
        PathBuf::from(format!(
            "{s}/.Forum/cur/{}",
            welcome.file_name().unwrap().to_str().unwrap()
        ))
    );
    let r = a.ok("FETCH 1 (BODY[])");
    assert!(r.contains("sam's welcome"), "{r:#?}");
    // Flags are private: the local link changes, Sam's file does not.
    a.ok("STORE 1 +FLAGS (\\Flagged)");
    assert_eq!(flags_of_name(&only_file(&local.join("cur"))), "FS");
    assert!(welcome.exists());

    // Sam's new mail arrives at the next NOOP. Mail in the sharable new/ is moved to its
    // cur/ by whoever may (the sticky bit lets only Sam move his own); then it is there.
    let waiting = deliver(&forum, &message("waiting", "sam's waiting news"));
    if is_root() {
        lchown_tree(&waiting, sam_uid, sam_gid);
        let r = a.ok("NOOP");
        assert_eq!(r.count("EXISTS"), None, "{r:#?}");
        assert!(
            waiting.exists(),
            "only Sam may move his message in a sticky new/"
        );
        fs::remove_file(&waiting).unwrap();
        let later = put_cur(&forum, &message("later", "sam's later news"), "");
        lchown_tree(&later, sam_uid, sam_gid);
    }
    let r = a.ok("NOOP");
    assert_eq!(r.count("EXISTS"), Some(2), "{r:#?}");
    assert!(files(&forum.join("new")).is_empty());

    // APPEND and COPY write into the sharable folder; the answers name local UIDs.
    let r = a.ok(&format!(
        "APPEND shared.firm.Forum (\\Seen) {}",
        lit_plus(&crlf(&message("from alice", "alice's post")))
    ));
    let appended = code_numbers(&r, "APPENDUID");
    assert_eq!(appended[0], db.uidvalidity);
    let db = read_uiddb(&local);
    let base = db.base_of_uid(appended[1]).unwrap().to_string();
    let in_shared = cur_file_with_base(&forum, &base).expect("in the sharable folder");
    let meta = fs::metadata(forum.join("cur").join(&in_shared)).unwrap();
    assert_eq!(meta.uid(), site.account("alice").uid);
    assert_eq!(
        meta.mode() & 0o777,
        0o644,
        "readable by those it is shared with"
    );
    assert!(
        fs::symlink_metadata(local.join("cur").join(&in_shared))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    a.ok("SELECT INBOX");
    let r = a.ok("COPY 1 shared.firm.Forum");
    let copied = code_numbers(&r, "COPYUID");
    assert_eq!(copied[0], db.uidvalidity);
    let copy_base = read_uiddb(&local)
        .base_of_uid(copied[2])
        .unwrap()
        .to_string();
    let copy = cur_file_with_base(&forum, &copy_base).unwrap();
    assert_eq!(
        fs::metadata(forum.join("cur").join(copy)).unwrap().nlink(),
        1,
        "a copy of its own, not a second name of Alice's file"
    );

    // EXPUNGE: Alice's own messages go; Sam's stay (the sticky bit), without \Deleted.
    a.ok("SELECT shared.firm.Forum");
    a.ok("STORE 1:* +FLAGS (\\Deleted)");
    let r = a.ok("EXPUNGE");
    if is_root() {
        assert_eq!(r.expunged(), vec![4, 3], "{r:#?}");
        assert_eq!(
            files(&forum.join("cur")).len(),
            2,
            "Sam's two messages stay"
        );
        let r = a.ok("FETCH 1:* (FLAGS)");
        assert_eq!(r.fetches().len(), 2);
        for (_, l) in r.fetches() {
            assert!(!l.contains("\\Deleted"), "{l}");
        }
    } else {
        eprintln!("not root: Sam is the same uid as Alice; the sticky-bit checks are skipped");
        assert_eq!(r.expunged().len(), 4, "{r:#?}");
    }
    assert_eq!(cur_file_with_base(&forum, &base), None);
    assert_eq!(cur_file_with_base(&forum, &copy_base), None);

    // A `read` folder: read-only, and nothing can be added.
    a.ok("SUBSCRIBE shared.firm.News");
    let r = a.ok("SELECT shared.firm.News");
    let news_local = alice.join("shared-folders/firm/News");
    if is_root() {
        assert!(r.text().starts_with("[READ-ONLY]"), "{r:#?}");
        assert_code(
            &a.cmd(&format!(
                "APPEND shared.firm.News {}",
                lit_plus(&crlf(&message("x", "y")))
            )),
            "NOPERM",
            "APPEND into a read folder",
        );
        assert_eq!(files(&news.join("cur")).len(), 1);
    }
    // A link planted in the local copy is no message and is never read.
    let bob_mail = put_cur(&bob, &message("bob-secret", "bob-secret"), "");
    symlink(&bob_mail, news_local.join("cur/1000000000.M1P1.planted:2,")).unwrap();
    let r = a.ok("SELECT shared.firm.News");
    assert_eq!(r.count("EXISTS"), Some(1));
    let r = a.ok("FETCH 1:* (BODY[])");
    assert!(!r.contains("bob-secret"), "{r:#?}");

    // Bob's flags are his own.
    let (_s, mut b) = site.login("bob");
    let r = b.ok("SELECT shared.firm.Forum");
    assert!(
        fs::read_link(bob.join("shared-folders/firm/Forum/shared")).is_ok(),
        "SELECT subscribes first, as Courier does"
    );
    let expected = if is_root() { 2 } else { 0 };
    assert_eq!(r.count("EXISTS"), Some(expected));
    if expected > 0 {
        let r = b.ok("FETCH 1:* (FLAGS)");
        for (_, l) in r.fetches() {
            assert!(!l.contains("\\Flagged"), "Alice's flag reached Bob: {l}");
        }
    }
    b.ok("LOGOUT");

    // UNSUBSCRIBE and DELETE remove the local copies, and only them.
    a.ok("UNSUBSCRIBE shared.firm.News");
    assert!(!news_local.exists());
    let r = a.ok("DELETE shared.firm.Forum");
    assert!(r.text().contains("UNSUBSCRIBE"), "{r:#?}");
    assert!(!alice.join("shared-folders/firm").exists());
    assert!(forum.join("cur").exists() && news.join("cur").exists());
    assert_eq!(files(&news.join("cur")).len(), 1);
    let r = a.ok("LSUB \"\" *");
    assert!(r.lines("* LSUB").is_empty(), "{r:#?}");
    a.ok("LOGOUT");
    drop(server);
}

/// A local copy whose `shared` link says something else than `shared-maildirs` (planted,
/// or left from an old line) is not followed, and neither is a sharable maildir line that
/// names nothing.
#[test]
fn only_the_links_shared_maildirs_vouches_for_are_read() {
    let site = Site::new("fs-links", &[("alice", 60_043, "")], "");
    let alice = site.maildir("alice");
    let elsewhere = site.t.join("elsewhere/Maildir");
    make_maildir(&elsewhere);
    let secret = make_folder(&elsewhere, ".Forum");
    put_cur(
        &secret,
        &message("elsewhere-secret", "elsewhere-secret"),
        "",
    );
    let sharable = site.t.join("sharable");
    make_maildir(&sharable);
    make_folder(&sharable, ".Forum");
    fs::write(
        alice.join("shared-maildirs"),
        format!("firm {}\n", sharable.display()),
    )
    .unwrap();
    let local = alice.join("shared-folders/firm/Forum");
    make_maildir(&local);
    symlink(elsewhere.join(".Forum"), local.join("shared")).unwrap();
    site.settle();
    let (server, mut a) = site.login("alice");
    let r = a.cmd("SELECT shared.firm.Forum");
    assert!(r.is_no(), "{r:#?}");
    let r = a.cmd("STATUS shared.firm.Forum (MESSAGES)");
    assert!(r.is_no(), "{r:#?}");
    let r = a.ok("LIST \"\" *");
    assert!(!r.contains("elsewhere"), "{r:#?}");
    a.ok("LOGOUT");
    assert!(
        server.log_text().contains("shared-maildirs says"),
        "{}",
        server.log_text()
    );
}

// ---------------------------------------------------------------------------
// Shared folders, quotas and the magic trash
// ---------------------------------------------------------------------------

/// A change line of `maildirsize` exactly as Courier writes it (`%12s %12s\n`).
fn quota_line(bytes: i64, messages: i64) -> String {
    format!("{bytes:>12} {messages:>12}\n")
}

/// The `,S=` size in the name of the message file at `path`.
fn size_in_name(path: &Path) -> i64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    let base = base_of(name);
    base[base.rfind(",S=").unwrap() + 3..].parse().unwrap()
}

fn maildirsize(maildir: &Path) -> String {
    fs::read_to_string(maildir.join("maildirsize")).unwrap()
}

/// Gives `maildir` the quota `limits` with one change line for `used` (bytes, messages).
fn write_maildirsize(maildir: &Path, limits: &str, used: (i64, i64)) {
    fs::write(
        maildir.join("maildirsize"),
        format!("{limits}\n{}", quota_line(used.0, used.1)),
    )
    .unwrap();
}

/// Alice, over her own quota, still APPENDs and COPYs into Bob's folder and expunges
/// there: Bob's `maildirsize` counts what she adds, as Courier's APPEND counts it, and what
/// leaves his folder, and hers is never written. A MOVE out of Bob's folder into her INBOX
/// is hers to pay, and refused. Bob over his quota refuses her. GETQUOTAROOT names Courier's root `PUBLIC`.
/// With the magic trash, what she expunges in Bob's folder moves into her own trash, as
/// Courier moves it.
#[test]
fn virtual_shared_folders_count_toward_their_owner_s_quota_only() {
    let site = Site::new(
        "virtual-quota",
        &[("alice", VIRTUAL_UID, ""), ("bob", VIRTUAL_UID, "")],
        "IMAP_SHAREDINDEXFILE={dir}/shared/index\nIMAP_MOVE_EXPUNGE_TO_TRASH=1\n",
    );
    let bob = site.maildir("bob");
    let project = make_folder(&bob, ".Project");
    let plan = put_cur(&project, &message("plan", "the plan"), "");
    let alice = site.maildir("alice");
    let own = put_cur(&alice, &message("alice own", "mine"), "");
    make_folder(&alice, ".Trash");
    // Both files say what is on disk: Alice is over her 100 bytes, Bob well within his.
    write_maildirsize(&alice, "100S", (size_in_name(&own), 1));
    write_maildirsize(&bob, "1000000S", (size_in_name(&plan), 1));
    site.settle();
    let dir = site.t.join("shared");
    fs::create_dir_all(&dir).unwrap();
    let index: String = ["alice", "bob"]
        .iter()
        .map(|name| {
            let a = site.account(name);
            format!("{name}\t{}\t{}\t{}\n", a.uid, a.gid, a.home.display())
        })
        .collect();
    fs::write(dir.join("index"), index).unwrap();
    let (_s, mut b) = site.login("bob");
    b.ok("SETACL INBOX.Project alice lrswite");
    b.ok("LOGOUT");
    let alice_quota = maildirsize(&alice);
    let mut bob_quota = maildirsize(&bob);

    let (_s, mut a) = site.login("alice");
    let post = crlf(&message("from alice", "alice's post"));
    assert_code(
        &a.cmd(&format!("APPEND INBOX {}", lit_plus(&post))),
        "OVERQUOTA",
        "her own INBOX",
    );
    let r = a.ok("GETQUOTAROOT #shared.bob.Project");
    assert_eq!(
        r.untagged,
        vec!["* QUOTAROOT \"#shared.bob.Project\" \"PUBLIC\""],
        "Courier's root, without limits to report"
    );
    let r = a.ok("GETQUOTA PUBLIC");
    assert!(r.untagged.is_empty(), "{r:#?}");

    // APPEND: Bob's quota counts it; hers is not written.
    let r = a.ok(&format!("APPEND #shared.bob.Project {}", lit_plus(&post)));
    let appended = code_numbers(&r, "APPENDUID")[1];
    let base = read_uiddb(&project)
        .base_of_uid(appended)
        .unwrap()
        .to_string();
    let stored = project
        .join("cur")
        .join(cur_file_with_base(&project, &base).unwrap());
    let appended_size = size_in_name(&stored);
    bob_quota.push_str(&quota_line(appended_size, 1));
    assert_eq!(maildirsize(&bob), bob_quota);
    assert_eq!(maildirsize(&alice), alice_quota);

    // COPY from her INBOX: the same.
    a.ok("SELECT INBOX");
    let r = a.ok("COPY 1 #shared.bob.Project");
    let copied = code_numbers(&r, "COPYUID")[2];
    bob_quota.push_str(&quota_line(size_in_name(&own), 1));
    assert_eq!(maildirsize(&bob), bob_quota);
    assert_eq!(maildirsize(&alice), alice_quota);

    // A MOVE into her own INBOX is charged to her: refused, and nothing moves.
    a.ok("SELECT #shared.bob.Project");
    assert_code(
        &a.cmd(&format!("UID MOVE {copied} INBOX")),
        "OVERQUOTA",
        "MOVE into her over-quota INBOX",
    );
    assert_eq!(files(&project.join("cur")).len(), 3);
    assert_eq!(files(&alice.join("cur")).len(), 1);
    // A MOVE into her trash (which counts nothing) credits Bob's quota with what left his
    // folder, and writes nothing into hers.
    a.ok(&format!("UID MOVE {copied} INBOX.Trash"));
    bob_quota.push_str(&quota_line(-size_in_name(&own), -1));
    assert_eq!(maildirsize(&bob), bob_quota);
    assert_eq!(maildirsize(&alice), alice_quota);
    let trash = alice.join(".Trash");
    assert_eq!(files(&trash.join("cur")).len(), 1);

    // \Deleted counts the message out of Bob's quota; the EXPUNGE moves it into her own
    // trash (which counts nothing) and writes no quota line anywhere.
    a.ok(&format!("UID STORE {appended} +FLAGS (\\Deleted)"));
    bob_quota.push_str(&quota_line(-appended_size, -1));
    assert_eq!(maildirsize(&bob), bob_quota);
    let r = a.ok("EXPUNGE");
    assert_eq!(r.expunged().len(), 1, "{r:#?}");
    assert_eq!(cur_file_with_base(&project, &base), None);
    assert!(
        cur_file_with_base(&trash, &base).is_some(),
        "into Alice's own trash, as Courier moves it: {:?}",
        files(&trash.join("cur"))
    );
    assert_eq!(maildirsize(&bob), bob_quota);
    assert_eq!(maildirsize(&alice), alice_quota);
    a.ok("LOGOUT");

    // Bob over his quota: her APPEND is refused and leaves nothing behind.
    write_maildirsize(&bob, "10S", (size_in_name(&plan), 1));
    let (_s, mut a) = site.login("alice");
    assert_code(
        &a.cmd(&format!("APPEND #shared.bob.Project {}", lit_plus(&post))),
        "OVERQUOTA",
        "Bob is over his quota",
    );
    assert_eq!(files(&project.join("cur")).len(), 1);
    assert!(files(&project.join("tmp")).is_empty());
    a.ok("LOGOUT");
    assert_eq!(maildirsize(&alice), alice_quota);
}

/// A filesystem-shared folder counts toward no quota (Courier: "Messages in shared folders
/// do not count towards any individual maildir quotas"): Alice, over hers, APPENDs into it,
/// and neither her `maildirsize` nor one in the sharable maildir is written. With the
/// magic trash, EXPUNGE there removes her message from the sharable folder and moves
/// nothing into her trash; Sam's message, which the sticky bit keeps, is neither moved nor
/// removed. GETQUOTAROOT names Courier's root `SHARED`.
#[test]
fn filesystem_shared_folders_count_toward_no_quota_and_are_never_trashed() {
    let site = Site::new(
        "fs-quota",
        &[("alice", 60_044, "")],
        "IMAP_SHAREDINDEXFILE=\nIMAP_MOVE_EXPUNGE_TO_TRASH=1\n",
    );
    let sharable = site.t.join("sam/Maildir-shared");
    fs::create_dir_all(site.t.join("sam")).unwrap();
    let s = sharable.to_str().unwrap();
    maildirmake(&["-S", s]);
    maildirmake(&["-s", "write", "-f", "Forum", s]);
    let forum = sharable.join(".Forum");
    let welcome = put_cur(&forum, &message("welcome", "sam's welcome"), "");
    fs::set_permissions(&welcome, fs::Permissions::from_mode(0o644)).unwrap();
    // A quota file in the sharable maildir (Courier says it cannot have one): never read
    // for Alice's additions, never written.
    write_maildirsize(&sharable, "10S", (size_in_name(&welcome), 1));
    let (sam_uid, sam_gid) = ids(60_045);
    if is_root() {
        lchown_tree(&site.t.join("sam"), sam_uid, sam_gid);
    }
    let alice = site.maildir("alice");
    let own = put_cur(&alice, &message("alice own", "mine"), "");
    write_maildirsize(&alice, "100S", (size_in_name(&own), 1));
    maildirmake(&["--add", &format!("firm={s}"), alice.to_str().unwrap()]);
    site.settle();
    fs::set_permissions(&site.t.path, fs::Permissions::from_mode(0o755)).unwrap();
    let alice_quota = maildirsize(&alice);
    let sharable_quota = maildirsize(&sharable);

    let (_s, mut a) = site.login("alice");
    let r = a.ok("GETQUOTAROOT shared.firm.Forum");
    assert_eq!(
        r.untagged,
        vec!["* QUOTAROOT \"shared.firm.Forum\" \"SHARED\""]
    );
    let r = a.ok(&format!(
        "APPEND shared.firm.Forum {}",
        lit_plus(&crlf(&message("from alice", "alice's post")))
    ));
    let appended = code_numbers(&r, "APPENDUID")[1];
    let local = alice.join("shared-folders/firm/Forum");
    let base = read_uiddb(&local)
        .base_of_uid(appended)
        .unwrap()
        .to_string();
    assert!(cur_file_with_base(&forum, &base).is_some());
    assert_eq!(maildirsize(&alice), alice_quota);
    assert_eq!(maildirsize(&sharable), sharable_quota);

    a.ok("SELECT shared.firm.Forum");
    a.ok("STORE 1:* +FLAGS (\\Deleted)");
    let r = a.ok("EXPUNGE");
    // Her message is removed from the sharable folder, not moved into her trash.
    assert_eq!(cur_file_with_base(&forum, &base), None);
    assert!(
        files(&alice.join(".Trash/cur")).is_empty(),
        "nothing goes into the trash from a filesystem-shared folder"
    );
    if is_root() {
        assert_eq!(r.expunged().len(), 1, "{r:#?}");
        // Sam's stays where it is (the sticky bit), in his folder and as her link, without
        // \Deleted.
        assert!(welcome.exists());
        let links = files(&local.join("cur"));
        assert_eq!(links.len(), 1, "{links:?}");
        assert!(!flags_of_name(&links[0]).contains('T'), "{links:?}");
    } else {
        eprintln!("not root: Sam is the same uid as Alice; the sticky-bit checks are skipped");
        assert_eq!(r.expunged().len(), 2, "{r:#?}");
    }
    a.ok("LOGOUT");
    assert_eq!(maildirsize(&alice), alice_quota);
    assert_eq!(maildirsize(&sharable), sharable_quota);
}
