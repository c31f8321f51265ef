//! CATENATE (RFC 4469): APPEND of a message made of TEXT literals and parts
//! of stored messages named by IMAP URLs; a URL that does not resolve is
//! NO [BADURL], and TRYCREATE comes first. Checked against the files on disk.

mod common;

use common::*;

fn setup(name: &str) -> (TestDir, Server, Client, std::path::PathBuf) {
    let dir = TestDir::new(name);
    let (conf, _users, maildir) = dir.write_userfile();
    put_cur(
        &maildir,
        "From: a@example.org\nSubject: one\n\nfirst body\n",
        "",
    );
    make_folder(&maildir, ".Drafts");
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = mail_ids();
        chown_tree(&dir.join("home"), uid, gid);
    }
    let (server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    let r = c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.tagged.contains(" CATENATE"), "{r:#?}");
    (dir, server, c, maildir)
}

/// The only message file in `folder` whose text contains `needle`.
fn stored(folder: &std::path::Path, needle: &str) -> String {
    let found = cur_files_containing(folder, needle);
    assert_eq!(found.len(), 1, "{needle}: {found:?}");
    std::fs::read_to_string(folder.join("cur").join(&found[0])).unwrap()
}

#[test]
fn catenate_joins_text_and_urls() {
    let (_dir, _server, mut c, maildir) = setup("catenate");
    let select = c.ok("SELECT INBOX");
    let uidv = select
        .untagged
        .iter()
        .find_map(|l| l.split("UIDVALIDITY ").nth(1))
        .and_then(|v| v.split(']').next())
        .unwrap()
        .to_string();
    let drafts = maildir.join(".Drafts");

    let text = "Subject: new\r\n\r\n";
    let r = c.cmd(&format!(
        "APPEND INBOX.Drafts CATENATE (TEXT {{{}}}\r\n{text} URL \"/INBOX;UIDVALIDITY={uidv}/;UID=1/;SECTION=TEXT\" URL \"imap://{USER}@localhost/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(Subject)\")",
        text.len()
    ));
    assert!(r.tagged.contains("OK [APPENDUID"), "{r:#?}");
    assert_eq!(
        stored(&drafts, "Subject: new"),
        "Subject: new\n\nfirst body\nSubject: one\n\n"
    );

    // Relative to the selected mailbox, with a partial range; then MULTIAPPEND
    // mixing a CATENATE and a plain literal.
    let plain = "Subject: plain\r\n\r\nx\r\n";
    let r = c.cmd(&format!(
        "APPEND INBOX.Drafts CATENATE (URL \"/;UID=1/;SECTION=TEXT/;PARTIAL=6.4\" TEXT {{2}}\r\n\r\n) {{{}}}\r\n{plain}",
        plain.len()
    ));
    assert!(r.tagged.contains("OK [APPENDUID"), "{r:#?}");
    let contents: Vec<String> = files(&drafts.join("cur"))
        .iter()
        .map(|f| std::fs::read_to_string(drafts.join("cur").join(f)).unwrap())
        .collect();
    assert!(contents.iter().any(|t| t == "body\n"), "{contents:?}");
    assert_eq!(stored(&drafts, "Subject: plain"), "Subject: plain\n\nx\n");

    // URLs that name nothing: NO [BADURL "..."], and nothing stored.
    let before = files(&drafts.join("cur")).len();
    for url in [
        "/INBOX;UIDVALIDITY=1/;UID=1".to_string(),
        "/INBOX/;UID=99".into(),
        "/INBOX.Nope/;UID=1".into(),
        "imap://someone-else@localhost/INBOX/;UID=1".into(),
        "/INBOX/;UID=1/;SECTION=9".into(),
        "INBOX".into(),
    ] {
        let r = c.cmd(&format!(
            "APPEND INBOX.Drafts CATENATE (TEXT {{3}}\r\nx\r\n URL \"{url}\")"
        ));
        assert!(
            r.tagged.contains(&format!("NO [BADURL \"{url}\"]")),
            "{url}: {r:#?}"
        );
    }
    assert_eq!(files(&drafts.join("cur")).len(), before);
    // A destination that does not exist: TRYCREATE, even with a bad URL.
    let r = c.cmd("APPEND INBOX.Missing CATENATE (URL \"/INBOX/;UID=99\")");
    assert!(r.tagged.contains("NO [TRYCREATE]"), "{r:#?}");
    // Syntax: only TEXT and URL.
    let r = c.cmd("APPEND INBOX.Drafts CATENATE (BODY \"x\")");
    assert!(r.is_bad(), "{r:#?}");
}
