//! The store never follows a symbolic link below a maildir's root (issue 6): for every file
//! it reads or writes, a link planted in its place, or in the place of a directory on the
//! way (`.Folder`, `cur/`, `new/`, `tmp/`, `courierimapkeywords/`), leads nowhere, and what
//! the link points to (here another user's maildir) stays byte for byte as it was. The root
//! itself may be a link: where the maildir lives is the administrator's choice.
//!
//! Tests only; each case here read, listed or changed the other maildir before the store
//! reached files through `beneath`.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use super::testutil::{TempDir, set_keywords};
use super::{Folder, InfoFlags, Store, StoreError};

/// Everything below `path`, sorted: relative name, what it is (file contents, link target
/// or "dir") and its mtime in nanoseconds.
fn snapshot(path: &Path) -> Vec<(String, String, i128)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String, i128)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(base, &path, out);
                "dir".to_string()
            } else {
                String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
            };
            let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            let name = path.strip_prefix(base).unwrap().display().to_string();
            out.push((name, what, mtime));
        }
    }
    let mut out = Vec::new();
    walk(path, path, &mut out);
    out.sort();
    out
}

/// Two maildirs side by side: the user's own ("mine", one message in INBOX) and another
/// user's ("theirs", a numbered message with a keyword in INBOX and in INBOX.Private).
struct Pair {
    dir: TempDir,
    mine: Store,
    theirs: Store,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let dir = TempDir::new(tag);
        let mine = Store::create(&dir.path().join("mine")).unwrap();
        let theirs = Store::create(&dir.path().join("theirs")).unwrap();
        theirs.create_folder("INBOX.Private").unwrap();
        for name in ["INBOX", "INBOX.Private"] {
            let folder = theirs.folder(name).unwrap();
            folder
                .deliver(
                    b"Subject: their secret\n\nsecret\n",
                    &InfoFlags::default(),
                    &["Secret".to_string()],
                    None,
                )
                .unwrap();
            // Merges the keyword into courierimapkeywords/:list.
            folder.scan().unwrap();
        }
        mine.folder("INBOX")
            .unwrap()
            .deliver(b"Subject: mine\n\nmine\n", &InfoFlags::default(), &[], None)
            .unwrap();
        Pair { dir, mine, theirs }
    }

    fn theirs_path(&self, rel: &str) -> std::path::PathBuf {
        self.theirs.root().join(rel)
    }

    fn mine_path(&self, rel: &str) -> std::path::PathBuf {
        self.mine.root().join(rel)
    }

    /// The file name of their message in `folder` (`INBOX` or `INBOX.Private`).
    fn their_message(&self, folder: &str) -> String {
        let f = self.theirs.folder(folder).unwrap();
        f.scan_read_only().unwrap().messages[0].filename.clone()
    }

    fn their_tree(&self) -> Vec<(String, String, i128)> {
        snapshot(self.theirs.root())
    }
}

/// The error is the store's report of a refused link, naming where it is.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    let text = match result {
        Err(e) => e.to_string(),
        Ok(v) => panic!("{what}: a link was followed: {v:?}"),
    };
    assert!(text.contains("symbolic link"), "{what}: {text}");
}

/// Every operation on `folder` is refused.
fn assert_folder_refused(folder: &Folder, their_file: &str) {
    assert_refused(folder.scan(), "scan");
    assert_refused(folder.scan_read_only(), "scan_read_only");
    assert_refused(folder.status(), "status");
    assert_refused(
        folder.deliver(b"x\n", &InfoFlags::default(), &[], None),
        "deliver",
    );
    assert_refused(folder.open_message(their_file), "open_message");
    assert_refused(folder.internal_date(their_file), "internal_date");
    assert_refused(folder.current_name(their_file), "current_name");
    assert_refused(
        folder.set_flags(their_file, &InfoFlags(b"S".to_vec())),
        "set_flags",
    );
    assert_refused(folder.expunge(their_file), "expunge");
}

#[test]
fn cur_new_or_tmp_that_is_a_link_is_refused() {
    let pair = Pair::new("links-subdirs");
    let their_file = pair.their_message("INBOX");
    let before = pair.their_tree();
    for sub in ["cur", "new", "tmp"] {
        let name = format!("INBOX.Link{sub}");
        pair.mine.create_folder(&name).unwrap();
        let dir = pair.mine_path(&format!(".Link{sub}"));
        fs::remove_dir(dir.join(sub)).unwrap();
        symlink(pair.theirs_path(sub), dir.join(sub)).unwrap();
        let folder = pair.mine.folder(&name).unwrap();
        if sub == "cur" {
            assert_folder_refused(&folder, &their_file);
        } else {
            assert_refused(folder.scan(), sub);
            assert_refused(folder.status(), sub);
            assert_refused(
                folder.deliver(b"x\n", &InfoFlags::default(), &[], None),
                sub,
            );
        }
    }
    // INBOX's own cur/ too: the root may be a link, what is below it may not.
    let inbox_cur = pair.mine_path("cur");
    fs::rename(&inbox_cur, pair.dir.path().join("old-cur")).unwrap();
    symlink(pair.theirs_path("cur"), &inbox_cur).unwrap();
    assert_folder_refused(&pair.mine.folder("INBOX").unwrap(), &their_file);
    assert_eq!(pair.their_tree(), before);
}

#[test]
fn message_that_is_a_link_is_neither_listed_nor_read() {
    let pair = Pair::new("links-messages");
    let inbox = pair.mine.folder("INBOX").unwrap();
    let linked_cur = "1000000000.M1P1.planted:2,S";
    let linked_new = "1000000001.M1P1.planted";
    symlink(
        pair.theirs_path("cur").join(pair.their_message("INBOX")),
        pair.mine_path("cur").join(linked_cur),
    )
    .unwrap();
    symlink(
        pair.theirs_path(".Private/cur")
            .join(pair.their_message("INBOX.Private")),
        pair.mine_path("new").join(linked_new),
    )
    .unwrap();
    let before = pair.their_tree();
    // The scan gives the links no UID and leaves the one in new/ where it is.
    let scan = inbox.scan().unwrap();
    assert_eq!(scan.messages.len(), 1, "{:?}", scan.messages);
    assert!(scan.messages[0].basename != "1000000000.M1P1.planted");
    assert!(pair.mine_path("new").join(linked_new).is_symlink());
    assert_eq!(inbox.scan_read_only().unwrap().messages.len(), 1);
    assert_eq!(inbox.status().unwrap().messages, 1);
    // Named directly, it is refused rather than read.
    assert_refused(inbox.open_message(linked_cur), "open_message");
    assert_refused(
        inbox.open_message(&format!("../new/{linked_new}")),
        "open_message new",
    );
    assert_refused(inbox.internal_date(linked_cur), "internal_date");
    pair.mine.create_folder("INBOX.Archive").unwrap();
    let archive = pair.mine.folder("INBOX.Archive").unwrap();
    let copy = [(linked_cur.to_string(), InfoFlags::default(), Vec::new())];
    assert_refused(
        archive.deliver_copies(&inbox, &copy, None, None),
        "deliver_copies",
    );
    assert_eq!(archive.scan().unwrap().messages.len(), 0);
    // The user's own message is read as before.
    let opened = inbox
        .open_message(&scan.messages[0].filename)
        .unwrap()
        .unwrap();
    let (mut file, name) = (opened.file, opened.name);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).unwrap();
    assert_eq!(
        (text.as_str(), name.as_str()),
        (
            "Subject: mine\n\nmine\n",
            scan.messages[0].filename.as_str()
        )
    );
    assert_eq!(pair.their_tree(), before);
}

#[test]
fn uid_database_that_is_a_link_is_refused() {
    let pair = Pair::new("links-uiddb");
    pair.mine.create_folder("INBOX.Work").unwrap();
    let folder = pair.mine.folder("INBOX.Work").unwrap();
    symlink(
        pair.theirs_path("courierimapuiddb"),
        pair.mine_path(".Work/courierimapuiddb"),
    )
    .unwrap();
    let before = pair.their_tree();
    assert_refused(folder.scan(), "scan");
    assert_refused(folder.scan_read_only(), "scan_read_only");
    assert_refused(folder.status(), "status");
    assert_refused(
        folder.deliver(b"x\n", &InfoFlags::default(), &[], None),
        "deliver",
    );
    assert!(pair.mine_path(".Work/courierimapuiddb").is_symlink());
    assert_eq!(
        fs::read_dir(pair.mine_path(".Work/cur")).unwrap().count(),
        0
    );
    assert_eq!(pair.their_tree(), before);
}

#[test]
fn keyword_files_that_are_links_are_not_followed() {
    let pair = Pair::new("links-keywords");
    let notes = pair.theirs_path("notes");
    fs::write(&notes, "Stolen\n").unwrap();
    let inbox = pair.mine.folder("INBOX").unwrap();
    let mine = inbox.scan().unwrap().messages[0].basename.clone();
    // A message of the user's own under the base name of theirs, so that their :list would
    // give it their keyword if it were read.
    let their_name = pair.their_message("INBOX");
    fs::write(pair.mine_path("cur").join(&their_name), "Subject: x\n\nx\n").unwrap();
    let keywords = pair.mine_path("courierimapkeywords");
    fs::create_dir(&keywords).unwrap();
    symlink(&notes, keywords.join(&mine)).unwrap();
    symlink(
        pair.theirs_path("courierimapkeywords/:list"),
        keywords.join(":list"),
    )
    .unwrap();
    let before = pair.their_tree();
    for scan in [inbox.scan_read_only().unwrap(), inbox.scan().unwrap()] {
        assert!(
            scan.messages.iter().all(|m| m.keywords.is_empty()),
            "{:?}",
            scan.messages
        );
    }
    assert!(keywords.join(&mine).is_symlink());
    assert_eq!(pair.their_tree(), before);

    // The keyword directory itself as a link to theirs: not merged, not written into.
    pair.mine.create_folder("INBOX.Work").unwrap();
    let work = pair.mine.folder("INBOX.Work").unwrap();
    fs::write(
        pair.mine_path(".Work/cur").join(&their_name),
        "Subject: x\n\nx\n",
    )
    .unwrap();
    symlink(
        pair.theirs_path("courierimapkeywords"),
        pair.mine_path(".Work/courierimapkeywords"),
    )
    .unwrap();
    let scan = work.scan().unwrap();
    assert!(scan.messages.iter().all(|m| m.keywords.is_empty()));
    assert!(set_keywords(&work, &mine, &["Planted".to_string()]).is_err());
    assert_eq!(pair.their_tree(), before);
}

#[test]
fn folder_that_becomes_a_link_leads_nowhere() {
    let pair = Pair::new("links-folder");
    let their_file = pair.their_message("INBOX");
    for (name, target) in [("INBOX.X", ""), ("INBOX.Y", ".Private")] {
        pair.mine.create_folder(name).unwrap();
        // Opened while it was a real folder, then swapped for a link to the other maildir
        // (its root, or one of its folders).
        let folder = pair.mine.folder(name).unwrap();
        let dir = folder.path().to_path_buf();
        fs::remove_dir_all(&dir).unwrap();
        symlink(pair.theirs_path(target), &dir).unwrap();
        let before = pair.their_tree();
        assert_folder_refused(&folder, &their_file);
        assert_refused(
            set_keywords(&folder, "1.M1P1.h", &["Planted".to_string()]),
            "set_keywords",
        );
        let inbox = pair.mine.folder("INBOX").unwrap();
        let mine = inbox.scan().unwrap().messages[0].filename.clone();
        let copy = [(mine, InfoFlags::default(), Vec::new())];
        assert_refused(
            folder.deliver_copies(&inbox, &copy, None, None),
            "copy into it",
        );
        let theirs = [(their_file.clone(), InfoFlags::default(), Vec::new())];
        assert_refused(
            inbox.deliver_copies(&folder, &theirs, None, None),
            "copy out of it",
        );
        // Looked up by name it is refused as before.
        assert!(matches!(pair.mine.folder(name), Err(StoreError::Cannot(_))));
        assert!(pair.mine.delete_folder(name).is_err());
        assert!(matches!(
            pair.mine.rename_folder(name, "INBOX.Renamed"),
            Err(StoreError::Cannot(_))
        ));
        assert!(dir.is_symlink());
        assert_eq!(pair.their_tree(), before);
    }
}

#[test]
fn message_work_keeps_to_the_directory_it_first_opened() {
    let pair = Pair::new("links-reading");
    pair.mine.create_folder("INBOX.X").unwrap();
    let folder = pair.mine.folder("INBOX.X").unwrap();
    folder
        .deliver(b"Subject: mine\n\nx\n", &InfoFlags::default(), &[], None)
        .unwrap();
    let mine = folder.scan().unwrap().messages[0].filename.clone();
    assert!(folder.internal_date(&mine).unwrap().is_some());
    // Another process moves the folder away and a link to the other maildir takes its
    // place: work on single messages stays in the directory it opened (where their
    // messages are not), everything else is refused.
    let their_file = pair.their_message("INBOX");
    let before = pair.their_tree();
    fs::rename(folder.path(), pair.mine_path(".Moved")).unwrap();
    symlink(pair.theirs.root(), folder.path()).unwrap();
    assert_eq!(folder.internal_date(&their_file).unwrap(), None);
    assert!(folder.open_message(&their_file).unwrap().is_none());
    assert_eq!(folder.current_name(&their_file).unwrap(), None);
    let seen = InfoFlags(b"S".to_vec());
    assert_eq!(folder.set_flags(&their_file, &seen).unwrap(), None);
    folder.expunge(&their_file).unwrap();
    assert!(folder.open_message(&mine).unwrap().is_some());
    let renamed = folder.set_flags(&mine, &seen).unwrap().unwrap();
    assert!(pair.mine_path(".Moved/cur").join(&renamed).is_file());
    assert_refused(folder.scan(), "scan");
    assert_refused(folder.status(), "status");
    assert_eq!(pair.their_tree(), before);
}

#[test]
fn the_root_may_be_a_link() {
    let pair = Pair::new("links-root");
    let link = pair.dir.path().join("Maildir");
    symlink(pair.mine.root(), &link).unwrap();
    let store = Store::open(&link).unwrap();
    let inbox = store.folder("INBOX").unwrap();
    let scan = inbox.scan().unwrap();
    assert_eq!(scan.messages.len(), 1);
    let file = inbox
        .open_message(&scan.messages[0].filename)
        .unwrap()
        .unwrap()
        .file;
    assert_eq!(file.metadata().unwrap().len(), 20);
    store.create_folder("INBOX.Sub").unwrap();
    store.subscribe("INBOX.Sub").unwrap();
    assert_eq!(store.subscriptions().unwrap(), vec!["INBOX.Sub"]);
}

#[test]
fn open_message_follows_renames_and_reaches_new() {
    let pair = Pair::new("links-open");
    let inbox = pair.mine.folder("INBOX").unwrap();
    fs::write(pair.mine_path("new").join("5.M1P1.h"), "in new\n").unwrap();
    let examined = inbox.scan_read_only().unwrap();
    let in_new = &examined.messages[1].filename;
    assert_eq!(in_new, "../new/5.M1P1.h");
    let name = inbox.open_message(in_new).unwrap().unwrap().name;
    assert_eq!(&name, in_new);
    assert!(inbox.internal_date(in_new).unwrap().is_some());
    let scan = inbox.scan().unwrap();
    let old = scan.messages[0].filename.clone();
    let renamed = inbox
        .set_flags(&old, &InfoFlags(b"S".to_vec()))
        .unwrap()
        .unwrap();
    let name = inbox.open_message(&old).unwrap().unwrap().name;
    assert_eq!(name, renamed);
    inbox.expunge(&renamed).unwrap();
    assert!(inbox.open_message(&old).unwrap().is_none());
    assert_eq!(inbox.internal_date(&old).unwrap(), None);
}
