//! Access control lists (RFC 4314, ACL2=UNION) in whole sessions: what GETACL, SETACL,
//! DELETEACL, LISTRIGHTS and MYRIGHTS answer, that every command refuses what the rights do
//! not allow (`NO [NOPERM]`), and that the files on disk are byte for byte the ones
//! Courier-IMAP writes (`courierimapacl`, `courierimaphieracl/`).
//!
//! The expected answers and files are what Courier-IMAP 5.0.13's imapd answered and wrote
//! for the same commands on a scratch maildir (tests/courier_interop.rs runs both servers
//! side by side). These tests talk to a real `mdimapd` over a socket and read the files; they
//! must not reach into the library. Sessions run in `--preauth` mode as the invoking user
//! (whose login name is the maildir's owner), or log in as the user-file account.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// Every right, as Courier writes it for the owner and administrators.
const DEFAULT: &str = "owner aceilrstwx\nadministrators aceilrstwx\n";

/// The login name `--preauth` serves: the invoking user's.
fn me() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .unwrap()
        .unwrap_or_else(|| panic!("uid {uid} has no passwd entry"))
        .name
}

fn setup(name: &str) -> (TestDir, PathBuf, Server, Client) {
    let t = TestDir::new(name);
    let m = t.maildir();
    let (s, c) = preauth(&t, &m);
    (t, m, s, c)
}

/// A file below the maildir, or `None`.
fn file(maildir: &Path, rel: &str) -> Option<String> {
    fs::read_to_string(maildir.join(rel)).ok()
}

/// Writes a folder's list as Courier (or an administrator with `maildiracl`) leaves it.
fn put_acl(maildir: &Path, dotname: &str, content: &str) {
    fs::write(maildir.join(dotname).join("courierimapacl"), content).unwrap();
}

/// A folder with one message in cur/ (flags `flags`).
fn folder_with_message(maildir: &Path, dotname: &str, flags: &str) -> PathBuf {
    let f = make_folder(maildir, dotname);
    put_cur(&f, &message("acl", "body"), flags);
    f
}

fn assert_noperm(r: &Response, context: &str) {
    assert!(
        r.is_no() && r.text().starts_with("[NOPERM]"),
        "{context}: expected NO [NOPERM], got {r:#?}"
    );
}

/// The only message's flags in `folder` on disk (the info after `:2,`).
fn disk_flags(folder: &Path) -> String {
    let names = files(&folder.join("cur"));
    assert_eq!(
        names.len(),
        1,
        "one message expected in {}",
        folder.display()
    );
    flags_of_name(&names[0])
}

#[test]
fn acl_commands_answer_as_courier_does() {
    let (_t, m, _s, mut c) = setup("acl-answers");
    let me = me();
    assert!(c.greeting.contains(" ACL ACL2=UNION"), "{}", c.greeting);
    let r = c.ok("CAPABILITY");
    assert!(r.untagged[0].contains(" ACL ACL2=UNION"), "{r:#?}");
    let r = c.ok("MYRIGHTS INBOX");
    assert_eq!(r.untagged, vec!["* MYRIGHTS \"INBOX\" \"acdilrsw\""]);
    let r = c.ok("GETACL inbox");
    assert_eq!(
        r.untagged,
        vec!["* ACL \"INBOX\" \"owner\" \"acdilrsw\" \"administrators\" \"acdilrsw\""]
    );
    let r = c.ok(&format!("LISTRIGHTS INBOX {me}"));
    assert_eq!(
        r.untagged,
        vec![format!(
            "* LISTRIGHTS \"INBOX\" \"{me}\" \"al\" c d i p r s w"
        )]
    );
    let r = c.ok("LISTRIGHTS INBOX bob");
    assert_eq!(
        r.untagged,
        vec!["* LISTRIGHTS \"INBOX\" \"bob\" \"\" a c d i l p r s w"]
    );
    let r = c.ok(&format!("LISTRIGHTS INBOX -{me}"));
    assert_eq!(
        r.untagged,
        vec![format!(
            "* LISTRIGHTS \"INBOX\" \"-{me}\" \"\" c d i p r s w"
        )]
    );
    // Looking at INBOX's rights writes nothing: its default needs no file.
    assert_eq!(file(&m, "courierimapacl"), None);

    c.ok("CREATE INBOX.A.B");
    c.ok("SETACL INBOX.A.B bob lrk");
    let r = c.ok("GETACL INBOX.A.B");
    assert_eq!(
        r.untagged,
        vec![
            "* ACL \"INBOX.A.B\" \"owner\" \"acdilrsw\" \"administrators\" \"acdilrsw\" \"bob\" \"klr\""
        ]
    );
    c.ok("SETACL INBOX.A.B bob +d");
    let r = c.ok("GETACL INBOX.A.B");
    assert!(r.untagged[0].ends_with("\"bob\" \"dklr\""), "{r:#?}");
    c.ok("SETACL INBOX.A.B bob -te");
    let r = c.ok("GETACL INBOX.A.B");
    assert!(r.untagged[0].ends_with("\"bob\" \"klr\""), "{r:#?}");
    assert_eq!(
        file(&m, ".A.B/courierimapacl").as_deref(),
        Some("owner aceilrstwx\nadministrators aceilrstwx\nuser=bob klrx\n")
    );
    c.ok("SETACL INBOX.A.B -bob w");
    c.ok("SETACL INBOX.A.B anyone l");
    let r = c.ok("GETACL INBOX.A.B");
    assert!(
        r.untagged[0].ends_with("\"bob\" \"klr\" \"-bob\" \"w\" \"anyone\" \"l\""),
        "{r:#?}"
    );
    c.ok("DELETEACL INBOX.A.B bob");
    c.ok("SETACL INBOX.A.B -bob \"\"");
    assert_eq!(
        file(&m, ".A.B/courierimapacl").as_deref(),
        Some("owner aceilrstwx\nadministrators aceilrstwx\nanyone l\n")
    );

    // Courier's refusals: names with `=`, folders that do not exist.
    let r = c.no("SETACL INBOX.A.B user=john lr");
    assert!(r.text().contains("Invalid ACL identifier"), "{r:#?}");
    c.no("SETACL INBOX.A.B group=staff lr");
    let r = c.no("GETACL INBOX.Nope");
    assert!(r.text().starts_with("[NONEXISTENT]"), "{r:#?}");
    c.no("MYRIGHTS INBOX.A");
    c.refused("SETACL INBOX.A.B bob");
    c.refused("GETACL");
}

/// CREATE INBOX.A.B in a new maildir, as Courier's imapd left it: the inherited default
/// for the hierarchy level A without a directory and for the new folder, nothing for INBOX.
#[test]
fn files_are_courier_s() {
    let (_t, m, _s, mut c) = setup("acl-files");
    c.ok("CREATE INBOX.A.B");
    assert_eq!(file(&m, "courierimapacl"), None);
    assert_eq!(file(&m, "courierimaphieracl/A").as_deref(), Some(DEFAULT));
    assert_eq!(file(&m, ".A.B/courierimapacl").as_deref(), Some(DEFAULT));
    // Creating the level itself moves its list into it.
    c.ok("SETACL INBOX anyone r");
    c.ok("CREATE INBOX.A");
    assert_eq!(file(&m, ".A/courierimapacl").as_deref(), Some(DEFAULT));
    assert_eq!(file(&m, "courierimaphieracl/A"), None);
    // A folder made by someone else inherits (and keeps) its parent's list when first
    // looked at.
    make_folder(&m, ".C");
    c.ok("STATUS INBOX.C (MESSAGES)");
    assert_eq!(
        file(&m, ".C/courierimapacl").as_deref(),
        Some("owner aceilrstwx\nadministrators aceilrstwx\nanyone r\n")
    );
    c.ok("DELETEACL INBOX anyone");
    let r = c.ok("GETACL INBOX.C");
    assert!(r.untagged[0].ends_with("\"anyone\" \"r\""), "{r:#?}");

    // DELETE of a folder with folders below keeps its list for the level; RENAME moves
    // the level's list along (Courier: courierimaphieracl/P, then R).
    c.ok("CREATE INBOX.P");
    c.ok("CREATE INBOX.P.Q");
    c.ok("SETACL INBOX.P anyone r");
    c.ok("DELETE INBOX.P");
    let kept = "owner aceilrstwx\nadministrators aceilrstwx\nanyone r\n";
    assert_eq!(file(&m, "courierimaphieracl/P").as_deref(), Some(kept));
    c.ok("RENAME INBOX.P INBOX.R");
    assert_eq!(file(&m, "courierimaphieracl/P"), None);
    assert_eq!(file(&m, "courierimaphieracl/R").as_deref(), Some(kept));
    assert_eq!(file(&m, ".R.Q/courierimapacl").as_deref(), Some(DEFAULT));
    // Names that are nothing leave nothing behind.
    c.no("DELETE INBOX.Nothing");
    c.no("RENAME INBOX.Nothing INBOX.Else");
    assert_eq!(file(&m, "courierimaphieracl/Nothing"), None);
    // Nothing is left in tmp/.
    assert_eq!(files(&m.join("tmp")), Vec::<String>::new());
}

/// Courier refuses lists that lock the owner out (`l`, `a`) or restrict administrators,
/// whatever the SETACL form, and writes nothing.
#[test]
fn setacl_keeps_courier_s_rules() {
    let (_t, m, _s, mut c) = setup("acl-rules");
    let me = me();
    c.ok("CREATE INBOX.U");
    c.ok("SETACL INBOX.U owner alrt");
    let before = file(&m, ".U/courierimapacl");
    for refused in [
        "SETACL INBOX.U owner art".to_string(),
        "SETACL INBOX.U owner -l".to_string(),
        format!("SETACL INBOX.U -{me} l"),
        "SETACL INBOX.U -anyone i".to_string(),
        "SETACL INBOX.U administrators lr".to_string(),
        "DELETEACL INBOX.U administrators".to_string(),
        "DELETEACL INBOX.U owner".to_string(),
    ] {
        let r = c.no(&refused);
        assert!(r.text().starts_with("[CANNOT]"), "{refused}: {r:#?}");
        assert_eq!(file(&m, ".U/courierimapacl"), before, "{refused}");
    }
    // Allowed: the owner's own name, a negative owner right that keeps l and a.
    c.ok(&format!("SETACL INBOX.U {me} lr"));
    c.ok("SETACL INBOX.U -owner t");
    assert_eq!(
        file(&m, ".U/courierimapacl"),
        Some(format!(
            "owner alrt\nadministrators aceilrstwx\nuser={me} lr\n-owner t\n"
        ))
    );
    let r = c.ok("MYRIGHTS INBOX.U");
    assert_eq!(r.untagged, vec!["* MYRIGHTS \"INBOX.U\" \"alr\""]);
}

/// `[MYRIGHTS]` on SELECT shows partial delete rights as they are; a changed list of the
/// selected mailbox is announced, by this session's SETACL or when another session's
/// change is noticed.
#[test]
fn myrights_on_select_and_when_the_rights_change() {
    let (t, m, _s, mut c) = setup("acl-select");
    folder_with_message(&m, ".X", "");
    put_acl(&m, ".X", "owner alrt\nadministrators aceilrstwx\n");
    let r = c.ok("SELECT INBOX.X");
    assert!(
        r.untagged
            .contains(&"* OK [MYRIGHTS \"alrt\"] ACL".to_string()),
        "{r:#?}"
    );
    assert!(r.text().starts_with("[READ-WRITE]"), "{r:#?}");
    assert!(r.contains("[PERMANENTFLAGS (\\Deleted)]"), "{r:#?}");
    let r = c.ok("SETACL INBOX.X owner +dw");
    assert_eq!(r.untagged, vec!["* OK [MYRIGHTS \"adlrw\"] ACL"]);
    // Another session takes `w` away; this one notices when it next looks.
    let (_s2, mut other) = preauth(&t, &m);
    other.ok("SETACL INBOX.X owner -w");
    let r = c.ok("MYRIGHTS INBOX.X");
    assert_eq!(
        r.untagged,
        vec![
            "* OK [MYRIGHTS \"adlr\"] ACL".to_string(),
            "* MYRIGHTS \"INBOX.X\" \"adlr\"".to_string()
        ]
    );
    // Without any right to change anything the mailbox is read-only.
    put_acl(&m, ".X", "owner alr\nadministrators aceilrstwx\n");
    let r = c.ok("SELECT INBOX.X");
    assert!(r.text().starts_with("[READ-ONLY]"), "{r:#?}");
    assert!(r.contains("[PERMANENTFLAGS ()]"), "{r:#?}");
}

/// Every command checks its rights (Courier's letters, RFC 4314 §4); the lists are
/// written straight into the files, as Courier or `maildiracl` would leave them.
#[test]
fn every_command_checks_its_rights() {
    let (_t, m, _s, mut c) = setup("acl-checks");
    let all_but = |letters: &str| -> String {
        let rights: String = "aceilrstwx"
            .chars()
            .filter(|ch| !letters.contains(*ch))
            .collect();
        format!("owner {rights}\nadministrators aceilrstwx\n")
    };

    // r: SELECT, EXAMINE, STATUS.
    folder_with_message(&m, ".NoRead", "");
    put_acl(&m, ".NoRead", &all_but("r"));
    assert_noperm(&c.cmd("SELECT INBOX.NoRead"), "SELECT without r");
    assert_noperm(&c.cmd("EXAMINE INBOX.NoRead"), "EXAMINE without r");
    assert_noperm(&c.cmd("STATUS INBOX.NoRead (MESSAGES)"), "STATUS without r");

    // LIST-STATUS (RFC 5819): a folder listed but not readable gets its LIST line and no
    // STATUS line; the command does not fail for it.
    folder_with_message(&m, ".Readable", "");
    let r = c.ok("LIST \"\" \"INBOX.*Read*\" RETURN (STATUS (MESSAGES))");
    assert_eq!(r.lines("* LIST").len(), 2, "{r:#?}");
    assert!(
        r.contains("* STATUS \"INBOX.Readable\" (MESSAGES 1)"),
        "{r:#?}"
    );
    assert!(!r.contains("* STATUS \"INBOX.NoRead\""), "{r:#?}");

    // l: LIST and LSUB hide the folder, and levels only it makes.
    make_folder(&m, ".Hidden.Deep");
    put_acl(&m, ".Hidden.Deep", &all_but("l"));
    c.ok("SUBSCRIBE INBOX.Hidden.Deep");
    let r = c.ok("LIST \"\" *");
    assert!(!r.contains("Hidden"), "{r:#?}");
    let r = c.ok("LSUB \"\" *");
    assert!(!r.contains("Hidden"), "{r:#?}");

    // c: CREATE below, RENAME into.
    make_folder(&m, ".NoCreate");
    put_acl(&m, ".NoCreate", &all_but("c"));
    let r = c.cmd("CREATE INBOX.NoCreate.Sub");
    assert_noperm(&r, "CREATE without c on the parent");
    assert!(r.text().contains("on INBOX.NoCreate "), "{r:#?}");
    assert!(!m.join(".NoCreate.Sub").exists());
    make_folder(&m, ".Movable");
    assert_noperm(
        &c.cmd("RENAME INBOX.Movable INBOX.NoCreate.Movable"),
        "RENAME without c on the new parent",
    );
    assert!(m.join(".Movable").exists());

    // x: DELETE, RENAME.
    make_folder(&m, ".Fixed");
    put_acl(&m, ".Fixed", &all_but("x"));
    assert_noperm(&c.cmd("DELETE INBOX.Fixed"), "DELETE without x");
    assert_noperm(
        &c.cmd("RENAME INBOX.Fixed INBOX.Elsewhere"),
        "RENAME without x",
    );
    assert!(m.join(".Fixed").exists() && !m.join(".Elsewhere").exists());

    // i: APPEND, COPY, MOVE into. (Removing i from a folder the owner has.)
    make_folder(&m, ".Closed");
    c.ok("SETACL INBOX.Closed owner -i");
    let msg = crlf(&message("appended", "x"));
    assert_noperm(
        &c.cmd(&format!("APPEND INBOX.Closed {}", lit_plus(&msg))),
        "APPEND without i",
    );
    folder_with_message(&m, ".Source", "");
    c.ok("SELECT INBOX.Source");
    assert_noperm(&c.cmd("COPY 1 INBOX.Closed"), "COPY without i");
    assert_noperm(&c.cmd("MOVE 1 INBOX.Closed"), "MOVE without i");
    assert_eq!(files(&m.join(".Closed/cur")), Vec::<String>::new());

    // t and e on the source: MOVE; e: EXPUNGE (CLOSE then expunges nothing). A session
    // learns a selected mailbox's rights on SELECT (and when it looks them up again).
    let source = m.join(".Source");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    put_acl(&m, ".Source", &all_but("e"));
    c.ok("SELECT INBOX.Source");
    assert_noperm(&c.cmd("MOVE 1 INBOX"), "MOVE without e");
    assert_noperm(&c.cmd("EXPUNGE"), "EXPUNGE without e");
    assert_noperm(&c.cmd("UID EXPUNGE 1:*"), "UID EXPUNGE without e");
    c.ok("CLOSE");
    assert_eq!(disk_flags(&source), "T");

    // s, t, w: STORE changes only what the rights allow; FETCH sets \Seen only with s.
    put_acl(&m, ".Source", &all_but("sw"));
    c.ok("SELECT INBOX.Source");
    c.ok("STORE 1 -FLAGS (\\Deleted)");
    let r = c.ok("STORE 1 +FLAGS (\\Seen \\Flagged $Work)");
    assert!(r.fetch(1).contains("FLAGS ()"), "{r:#?}");
    c.ok("FETCH 1 BODY[]");
    assert_eq!(disk_flags(&source), "");
    put_acl(&m, ".Source", &all_but("tw"));
    c.ok("SELECT INBOX.Source");
    c.ok("STORE 1 +FLAGS (\\Deleted \\Answered)");
    c.ok("FETCH 1 BODY[]");
    assert_eq!(disk_flags(&source), "S");

    // APPEND and COPY keep only the flags the target allows.
    make_folder(&m, ".Target");
    put_acl(&m, ".Target", &all_but("sw"));
    c.ok(&format!(
        "APPEND INBOX.Target (\\Seen \\Deleted \\Flagged $Work) {}",
        lit_plus(&msg)
    ));
    assert_eq!(disk_flags(&m.join(".Target")), "T");
    assert_eq!(files(&m.join(".Target/courierimapkeywords")).len(), 0);
    make_folder(&m, ".Target2");
    put_acl(&m, ".Target2", &all_but("t"));
    put_acl(&m, ".Source", DEFAULT);
    c.ok("SELECT INBOX.Source");
    c.ok("STORE 1 +FLAGS (\\Deleted \\Flagged \\Answered)");
    c.ok("COPY 1 INBOX.Target2");
    assert_eq!(disk_flags(&m.join(".Target2")), "FRS");
}

/// Courier's groups come from the account options (`group=<name>`), for every kind of
/// account, and `disableshared` switches the files off: the owner may do everything but
/// administer and no list is written.
#[test]
fn account_options_give_groups_and_can_switch_files_off() {
    let t = TestDir::new("acl-options");
    let (_conf, users, maildir) = t.write_userfile();
    let line = fs::read_to_string(&users).unwrap();
    let with_options = |options: &str| {
        let fields: Vec<&str> = line.trim_end().split(':').collect();
        fs::write(&users, format!("{}:::{options}\n", fields[..5].join(":"))).unwrap();
    };
    let folder = make_folder(&maildir, ".G");
    put_acl(
        &maildir,
        ".G",
        "owner al\ngroup=staff rw\nadministrators aceilrstwx\n",
    );
    let (uid, gid) = mail_ids();
    if unsafe { libc::getuid() } == 0 {
        chown_tree(&folder, uid, gid);
    }
    let login = |c: &mut Client| c.ok(&format!("LOGIN {USER} {PASSWORD}"));

    with_options("group=staff");
    let (_s, mut c, _) = login_mode(&t);
    login(&mut c);
    let r = c.ok("MYRIGHTS INBOX.G");
    assert_eq!(r.untagged, vec!["* MYRIGHTS \"INBOX.G\" \"alrw\""]);
    c.ok("LOGOUT");

    with_options("group=other");
    let (_s, mut c, _) = login_mode(&t);
    login(&mut c);
    let r = c.ok("MYRIGHTS INBOX.G");
    assert_eq!(r.untagged, vec!["* MYRIGHTS \"INBOX.G\" \"al\""]);
    assert_noperm(&c.cmd("SELECT INBOX.G"), "SELECT without r");
    c.ok("LOGOUT");

    with_options("disableshared=1");
    let (_s, mut c, _) = login_mode(&t);
    login(&mut c);
    c.ok("SELECT INBOX.G");
    assert_noperm(&c.cmd("GETACL INBOX.G"), "GETACL without a");
    assert_noperm(&c.cmd("SETACL INBOX.G anyone l"), "SETACL without a");
    let r = c.ok("MYRIGHTS INBOX.G");
    assert_eq!(r.untagged, vec!["* MYRIGHTS \"INBOX.G\" \"cdilrsw\""]);
    c.ok("CREATE INBOX.New");
    c.ok("LOGOUT");
    assert_eq!(file(&maildir, ".New/courierimapacl"), None);
    assert_eq!(
        file(&maildir, ".G/courierimapacl").as_deref(),
        Some("owner al\ngroup=staff rw\nadministrators aceilrstwx\n")
    );
}

/// IMAP_ACL=0 only stops advertising ACL, as with Courier: the lists still hold.
#[test]
fn imap_acl_zero_only_hides_the_capability() {
    let t = TestDir::new("acl-off");
    let m = t.maildir();
    let conf = t.join("mdimapd.conf");
    fs::write(&conf, "IMAP_ACL=0\n").unwrap();
    make_folder(&m, ".Closed");
    put_acl(&m, ".Closed", "owner alr\nadministrators aceilrstwx\n");
    let (_s, mut c) = preauth_with_config(&t, &m, &conf);
    assert!(c.greeting.starts_with("* PREAUTH"), "{}", c.greeting);
    assert!(!c.greeting.contains("ACL"), "{}", c.greeting);
    let r = c.ok("CAPABILITY");
    assert!(!r.untagged[0].contains("ACL"), "{r:#?}");
    let msg = crlf(&message("appended", "x"));
    assert_noperm(
        &c.cmd(&format!("APPEND INBOX.Closed {}", lit_plus(&msg))),
        "APPEND without i",
    );
    let r = c.ok("MYRIGHTS INBOX.Closed");
    assert_eq!(r.untagged, vec!["* MYRIGHTS \"INBOX.Closed\" \"alr\""]);
}
