//! LIST-EXTENDED (RFC 5258), SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154) and
//! LIST-STATUS (RFC 5819), against a real mdimapd on a real maildir. The RFC 5258
//! examples (its section 5) are here with this server's Maildir++ namespace: every
//! folder below `INBOX.`, delimiter `.`, so the RFC's top-level `%` becomes the
//! reference `INBOX.` with `%`.
//!
//! Like the other integration tests, this file does not use the library: it sees only
//! what a client sees and what lands in the maildir.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// One LIST line: the name, its attributes (sorted, as written), and the extended data
/// after the name, if any.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    name: String,
    attrs: Vec<String>,
    extra: String,
}

fn listed(r: &Response) -> Vec<Listed> {
    let entries = list_entries(r, "LIST");
    let lines = r.lines("* LIST (");
    entries
        .into_iter()
        .zip(lines)
        .map(|(e, line)| {
            let mut attrs = e.attrs.clone();
            attrs.sort();
            // The extended data follows the name; names here need no quoting beyond "...".
            let extra = line
                .find("(\"CHILDINFO\"")
                .map(|i| line[i..].to_string())
                .unwrap_or_default();
            Listed {
                name: e.name,
                attrs,
                extra,
            }
        })
        .collect()
}

fn entry(name: &str, attrs: &[&str], extra: &str) -> Listed {
    let mut attrs: Vec<String> = attrs.iter().map(|a| a.to_string()).collect();
    attrs.sort();
    Listed {
        name: name.to_string(),
        attrs,
        extra: extra.to_string(),
    }
}

const CHILDINFO: &str = "(\"CHILDINFO\" (\"SUBSCRIBED\"))";

fn session(t: &TestDir, m: &Path) -> (Server, Client) {
    preauth(t, m)
}

/// RFC 5258 §5's first hierarchy: Fruit and Vegetable with children, some subscribed,
/// and a subscribed Vegetable.Sunflower that does not exist.
fn fruit_and_vegetables(name: &str) -> (TestDir, PathBuf, Server, Client) {
    let t = TestDir::new(name);
    let m = t.maildir();
    for f in [
        ".Fruit",
        ".Fruit.Apple",
        ".Fruit.Banana",
        ".Fruit.Peach",
        ".Tofu",
        ".Vegetable",
        ".Vegetable.Broccoli",
        ".Vegetable.Corn",
    ] {
        make_folder(&m, f);
    }
    let (s, mut c) = session(&t, &m);
    for sub in [
        "INBOX",
        "INBOX.Fruit.Banana",
        "INBOX.Fruit.Peach",
        "INBOX.Vegetable",
        "INBOX.Vegetable.Broccoli",
        "INBOX.Vegetable.Sunflower",
    ] {
        c.ok(&format!("SUBSCRIBE \"{sub}\""));
    }
    (t, m, s, c)
}

#[test]
fn capabilities_are_advertised() {
    let t = TestDir::new("listext-caps");
    let m = t.maildir();
    let (_s, mut c) = session(&t, &m);
    let r = c.ok("CAPABILITY");
    let caps: Vec<&str> = r.untagged[0].split(' ').collect();
    for cap in [
        "SPECIAL-USE",
        "CREATE-SPECIAL-USE",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "WITHIN",
        "CHILDREN",
    ] {
        assert!(caps.contains(&cap), "{cap} missing from {caps:?}");
    }
}

/// RFC 5258 §5, example 1 (LIST with RETURN (SUBSCRIBED)) and example 2 (LIST
/// (SUBSCRIBED) with a subscribed name that does not exist).
#[test]
fn rfc5258_subscribed_selection_and_return() {
    let (_t, m, _s, mut c) = fruit_and_vegetables("listext-subscribed");
    assert!(
        fs::read_to_string(m.join("courierimapsubscribed"))
            .unwrap()
            .contains("INBOX.Vegetable.Sunflower\n")
    );

    // Example 2: LIST (SUBSCRIBED) "" "*".
    let r = c.ok("LIST (SUBSCRIBED) \"\" \"*\"");
    assert_eq!(
        listed(&r),
        vec![
            entry("INBOX", &["\\Subscribed"], ""),
            entry("INBOX.Fruit.Banana", &["\\Subscribed"], ""),
            entry("INBOX.Fruit.Peach", &["\\Subscribed"], ""),
            entry("INBOX.Vegetable", &["\\Subscribed"], ""),
            entry("INBOX.Vegetable.Broccoli", &["\\Subscribed"], ""),
            entry(
                "INBOX.Vegetable.Sunflower",
                &["\\NonExistent", "\\Subscribed"],
                ""
            ),
        ]
    );
    // The same with RETURN (CHILDREN): children as the folders have them.
    let r = c.ok("LIST (SUBSCRIBED) \"INBOX.\" \"*\" RETURN (CHILDREN)");
    let l = listed(&r);
    assert!(l.contains(&entry(
        "INBOX.Vegetable",
        &["\\HasChildren", "\\Subscribed"],
        ""
    )));
    assert!(l.contains(&entry(
        "INBOX.Fruit.Peach",
        &["\\HasNoChildren", "\\Subscribed"],
        ""
    )));

    // Example 1: every folder at a level, marked when subscribed.
    let r = c.ok("LIST \"INBOX.\" \"%\" RETURN (SUBSCRIBED)");
    assert_eq!(
        listed(&r),
        vec![
            entry("INBOX.Fruit", &["\\HasChildren"], ""),
            entry("INBOX.Tofu", &["\\HasNoChildren"], ""),
            entry("INBOX.Vegetable", &["\\HasChildren", "\\Subscribed"], ""),
        ]
    );
    // LSUB is as it was.
    let r = c.ok("LSUB \"\" \"INBOX.Vegetable.*\"");
    assert_eq!(list_entries(&r, "LSUB").len(), 2);
}

/// RFC 5258 §5, examples 7 and 8: RECURSIVEMATCH lists a parent whose child is
/// subscribed though it is not, with CHILDINFO.
#[test]
fn rfc5258_recursivematch_childinfo() {
    let (_t, _m, _s, mut c) = fruit_and_vegetables("listext-recursive");
    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"INBOX.\" \"%\" RETURN (CHILDREN)");
    assert_eq!(
        listed(&r),
        vec![
            entry("INBOX.Fruit", &["\\HasChildren"], CHILDINFO),
            entry(
                "INBOX.Vegetable",
                &["\\HasChildren", "\\Subscribed"],
                CHILDINFO
            ),
        ]
    );
    // Without RECURSIVEMATCH, Fruit (not subscribed) is not there, nor any CHILDINFO.
    let r = c.ok("LIST (SUBSCRIBED) \"INBOX.\" \"%\"");
    assert_eq!(
        listed(&r),
        vec![entry("INBOX.Vegetable", &["\\Subscribed"], "")]
    );
    // Subscribed children the pattern lists themselves give their parent no CHILDINFO
    // (imaptest's listext, as Dovecot answers)...
    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"INBOX.Vegetable*\"");
    assert_eq!(
        listed(&r),
        vec![
            entry("INBOX.Vegetable", &["\\Subscribed"], ""),
            entry("INBOX.Vegetable.Broccoli", &["\\Subscribed"], ""),
            entry(
                "INBOX.Vegetable.Sunflower",
                &["\\NonExistent", "\\Subscribed"],
                ""
            ),
        ]
    );
    // ... nor a parent that is not subscribed: Fruit is not listed when its subscribed
    // children are; it is with CHILDINFO when they are not.
    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX.Fruit\" \"INBOX.Fruit.%\")");
    let names: Vec<String> = listed(&r).into_iter().map(|l| l.name).collect();
    assert_eq!(names, vec!["INBOX.Fruit.Banana", "INBOX.Fruit.Peach"]);
    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX.Fruit\" \"INBOX.Fruit.P%\")");
    assert_eq!(
        listed(&r),
        vec![
            entry("INBOX.Fruit", &[], CHILDINFO),
            entry("INBOX.Fruit.Peach", &["\\Subscribed"], ""),
        ]
    );
    // §3.1: RECURSIVEMATCH alone, or with only REMOTE, is an error; so is an option
    // the server does not know.
    for bad in [
        "LIST (RECURSIVEMATCH) \"\" \"*\"",
        "LIST (REMOTE RECURSIVEMATCH) \"\" \"*\"",
        "LIST (FRUITY) \"\" \"*\"",
        "LIST \"\" \"*\" RETURN (FRUITY)",
    ] {
        assert!(c.cmd(bad).is_bad(), "{bad}");
    }
    // REMOTE alone is a plain LIST here: no remote mailboxes.
    let r = c.ok("LIST (REMOTE) \"INBOX.\" \"%\"");
    assert_eq!(listed(&r).len(), 3);
}

/// RFC 5258 §5, example 4: several patterns at once.
#[test]
fn rfc5258_several_patterns() {
    let (_t, _m, _s, mut c) = fruit_and_vegetables("listext-patterns");
    let r = c.ok("LIST \"\" (\"INBOX\" \"INBOX.Tofu\" \"INBOX.Vegetable.%\")");
    let names: Vec<String> = listed(&r).into_iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        vec![
            "INBOX",
            "INBOX.Tofu",
            "INBOX.Vegetable.Broccoli",
            "INBOX.Vegetable.Corn"
        ]
    );
    // Overlapping patterns list a folder once; the reference prefixes every pattern.
    let r = c.ok("LIST \"INBOX.\" (\"Fruit*\" \"Fruit.P%\" \"Nothing\")");
    let names: Vec<String> = listed(&r).into_iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        vec![
            "INBOX.Fruit",
            "INBOX.Fruit.Apple",
            "INBOX.Fruit.Banana",
            "INBOX.Fruit.Peach"
        ]
    );
    // An empty list of patterns is not in the grammar.
    assert!(c.cmd("LIST \"\" ()").is_bad());
    // RFC 3501's empty pattern still asks for the delimiter.
    let r = c.ok("LIST \"\" \"\"");
    assert_eq!(r.untagged, vec!["* LIST (\\Noselect) \".\" \"\""]);
}

/// RFC 6154: the configured names carry their uses on every LIST; SPECIAL-USE selects
/// and returns them.
#[test]
fn special_use_from_the_default_names() {
    let t = TestDir::new("listext-special");
    let m = t.maildir();
    for f in [".Sent", ".Drafts", ".Trash", ".Spam", ".Archive", ".Work"] {
        make_folder(&m, f);
    }
    let (_s, mut c) = session(&t, &m);
    let expected = [
        ("INBOX.Archive", "\\Archive"),
        ("INBOX.Drafts", "\\Drafts"),
        ("INBOX.Sent", "\\Sent"),
        ("INBOX.Spam", "\\Junk"),
        ("INBOX.Trash", "\\Trash"),
    ];
    // Plain LIST shows them (RFC 6154 §2: SHOULD).
    let r = c.ok("LIST \"\" \"*\"");
    let all = listed(&r);
    for (name, attr) in expected {
        let e = all.iter().find(|l| l.name == name).unwrap();
        assert!(e.attrs.contains(&attr.to_string()), "{e:?}");
    }
    let work = all.iter().find(|l| l.name == "INBOX.Work").unwrap();
    assert_eq!(work.attrs, vec!["\\HasNoChildren"]);
    // The selection option lists only them (Junk, named in the configuration, does not
    // exist and is not listed).
    let r = c.ok("LIST (SPECIAL-USE) \"\" \"*\"");
    let l = listed(&r);
    assert_eq!(
        l.iter()
            .map(|l| (l.name.as_str(), l.attrs.last().unwrap().as_str()))
            .collect::<Vec<_>>(),
        expected.to_vec()
    );
    let r = c.ok("LIST \"\" \"INBOX.S%\" RETURN (SPECIAL-USE)");
    assert_eq!(listed(&r).len(), 2);
}

#[test]
fn create_special_use_persists_and_follows_rename_and_delete() {
    let t = TestDir::new("listext-create-use");
    let m = t.maildir();
    make_folder(&m, ".Sent");
    let file = m.join("mdimapspecialuse");
    {
        let (_s, mut c) = session(&t, &m);
        c.ok("CREATE \"INBOX.Sent Items\" (USE (\\Sent))");
        c.ok("CREATE INBOX.Old (USE (\\Archive \\Junk))");
        assert!(m.join(".Sent Items").join("cur").is_dir());
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "Sent INBOX.Sent Items\nArchive INBOX.Old\nJunk INBOX.Old\n"
        );
        // Not offered: \All, \Flagged, and any use RFC 6154 does not define. Nothing is
        // created.
        for attr in ["\\All", "\\Flagged", "\\Important", "\\Sent \\All"] {
            let r = c.no(&format!("CREATE INBOX.Virtual (USE ({attr}))"));
            assert!(r.tagged.contains("[USEATTR]"), "{r:?}");
            assert!(!m.join(".Virtual").exists());
        }
        // Other CREATE parameters are not known.
        assert!(c.cmd("CREATE INBOX.Virtual (COLOR (red))").is_bad());
        assert!(!m.join(".Virtual").exists());
    }
    // A later session sees the uses; the configured Sent gave its use up to the one the
    // client chose.
    let (_s, mut c) = session(&t, &m);
    let r = c.ok("LIST \"\" \"*\"");
    let l = listed(&r);
    let attrs = |name: &str| l.iter().find(|e| e.name == name).unwrap().attrs.clone();
    assert_eq!(attrs("INBOX.Sent Items"), vec!["\\HasNoChildren", "\\Sent"]);
    assert_eq!(attrs("INBOX.Sent"), vec!["\\HasNoChildren"]);
    assert_eq!(
        attrs("INBOX.Old"),
        vec!["\\Archive", "\\HasNoChildren", "\\Junk"]
    );
    // RENAME moves the use, children's too.
    c.ok("CREATE INBOX.Old.2019 (USE (\\Archive))");
    c.ok("RENAME INBOX.Old INBOX.Attic");
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "Sent INBOX.Sent Items\nArchive INBOX.Attic\nJunk INBOX.Attic\nArchive INBOX.Attic.2019\n"
    );
    let r = c.ok("LIST (SPECIAL-USE) \"\" \"*\"");
    let names: Vec<String> = listed(&r).into_iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        vec!["INBOX.Attic", "INBOX.Attic.2019", "INBOX.Sent Items"]
    );
    // DELETE forgets it; the configured Sent is \Sent again.
    c.ok("DELETE \"INBOX.Sent Items\"");
    assert!(!fs::read_to_string(&file).unwrap().contains("Sent Items"));
    let r = c.ok("LIST \"\" \"INBOX.Sent*\"");
    assert_eq!(
        listed(&r),
        vec![entry("INBOX.Sent", &["\\HasNoChildren", "\\Sent"], "")]
    );
}

#[test]
fn special_use_names_from_the_configuration() {
    let t = TestDir::new("listext-special-conf");
    let m = t.maildir();
    for f in [".Sent", ".Sent Messages", ".Deleted Items", ".Junk"] {
        make_folder(&m, f);
    }
    let conf = t.join("mdimapd.conf");
    fs::write(
        &conf,
        "MDIMAP_SENT_FOLDERS=\"Sent Messages\"\nMDIMAP_JUNK_FOLDERS=\nIMAP_TRASHFOLDERNAME=\"Deleted Items\"\n",
    )
    .unwrap();
    let (_s, mut c) = preauth_with_config(&t, &m, &conf);
    let r = c.ok("LIST (SPECIAL-USE) \"\" \"*\" RETURN (SPECIAL-USE)");
    assert_eq!(
        listed(&r),
        vec![
            entry("INBOX.Deleted Items", &["\\Trash"], ""),
            entry("INBOX.Sent Messages", &["\\Sent"], ""),
        ]
    );
    // The configuration still decides the rest of the capabilities as before.
    let r = c.ok("CAPABILITY");
    assert!(r.untagged[0].contains(" SPECIAL-USE"), "{r:?}");
}

/// RFC 5819: a STATUS line after each selectable folder's LIST line, the same as the
/// STATUS command gives, and none for `\Noselect` or `\NonExistent` names.
#[test]
fn list_status() {
    let t = TestDir::new("listext-status");
    let m = t.maildir();
    let work = make_folder(&m, ".Work");
    make_folder(&m, ".Parent.Child");
    deliver(&m, &message("one", "x"));
    put_cur(&m, &message("two", "x"), "S");
    deliver(&work, &message("three", "x"));
    let (_s, mut c) = session(&t, &m);
    c.ok("SUBSCRIBE INBOX.Gone");
    c.ok("SUBSCRIBE INBOX.Work");
    let r = c.ok("LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))");
    // INBOX, INBOX.Parent (a level without a folder: no STATUS line), its Child and Work.
    assert_eq!(r.lines("* LIST").len(), 4, "{:?}", r.untagged);
    assert_eq!(r.lines("* STATUS").len(), 3, "{:?}", r.untagged);
    for (i, line) in r.untagged.iter().enumerate() {
        if line.starts_with("* STATUS") {
            assert!(r.untagged[i - 1].starts_with("* LIST"), "{:?}", r.untagged);
        }
        if line.contains("\\Noselect") {
            assert!(
                r.untagged
                    .get(i + 1)
                    .is_none_or(|n| !n.starts_with("* STATUS")),
                "{:?}",
                r.untagged
            );
        }
    }
    // Each STATUS line is what STATUS says.
    for name in ["INBOX", "INBOX.Work", "INBOX.Parent.Child"] {
        let s = c.ok(&format!("STATUS {name} (MESSAGES UNSEEN UIDNEXT)"));
        let line = s.line("* STATUS").unwrap();
        assert!(r.untagged.contains(line), "{line} not in {:?}", r.untagged);
    }
    let inbox = c.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)");
    assert!(inbox.contains("MESSAGES 2 UNSEEN 1"), "{inbox:?}");
    // With SUBSCRIBED: the missing subscribed folder has no STATUS line.
    let r = c.ok("LIST (SUBSCRIBED) \"\" \"*\" RETURN (STATUS (MESSAGES))");
    assert_eq!(r.lines("* LIST").len(), 2, "{:?}", r.untagged);
    assert_eq!(r.lines("* STATUS").len(), 1, "{:?}", r.untagged);
    assert!(r.contains("\\NonExistent"));
    assert!(
        r.untagged.last().unwrap() == "* STATUS \"INBOX.Work\" (MESSAGES 1)",
        "{:?}",
        r.untagged
    );
    // An unknown status item is an error.
    assert!(c.cmd("LIST \"\" \"*\" RETURN (STATUS (COLOUR))").is_bad());
}
