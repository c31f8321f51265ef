//! WITHIN (RFC 5032): SEARCH YOUNGER n and OLDER n on INTERNALDATE, which in this
//! server is the message file's modification time. Messages are delivered with
//! mtimes hours and days apart, so the second the search runs in cannot move a
//! message across a boundary.
//!
//! Like the other integration tests, this file drives a real mdimapd and does not
//! use the library.

mod common;

use common::*;
use std::time::{Duration, SystemTime};

/// Delivers a message into `folder/cur/` whose file was last modified `age` ago.
fn deliver_aged(folder: &std::path::Path, subject: &str, age: Duration) {
    let path = put_cur(folder, &message(subject, "body"), "");
    let when = SystemTime::now() - age;
    set_file_mtime(&path, when);
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

#[test]
fn younger_and_older_by_internaldate() {
    let t = TestDir::new("search-within");
    let m = t.maildir();
    // In UID order: 10 days, 1 hour, 3 days, 30 days old.
    deliver_aged(&m, "ten days", Duration::from_secs(10 * DAY));
    deliver_aged(&m, "one hour", Duration::from_secs(HOUR));
    deliver_aged(&m, "three days", Duration::from_secs(3 * DAY));
    deliver_aged(&m, "thirty days", Duration::from_secs(30 * DAY));
    let (_s, mut c) = preauth(&t, &m);
    let caps = c.ok("CAPABILITY");
    assert!(caps.contains(" WITHIN"), "{:?}", caps.untagged);
    c.ok("SELECT INBOX");
    // The messages are numbered as their files sort; learn which is which.
    let subjects: Vec<(u32, String)> = (1..=4)
        .map(|n| {
            let r = c.ok(&format!("FETCH {n} (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"));
            let text = r.untagged.join("\n");
            let s = ["ten days", "one hour", "three days", "thirty days"]
                .into_iter()
                .find(|s| text.contains(s))
                .unwrap()
                .to_string();
            (n, s)
        })
        .collect();
    let seq = |s: &str| subjects.iter().find(|(_, x)| x == s).unwrap().0;
    let sorted = |mut v: Vec<u32>| {
        v.sort_unstable();
        v
    };
    let search = |c: &mut Client, q: &str| sorted(c.ok(&format!("SEARCH {q}")).search());

    assert_eq!(search(&mut c, "YOUNGER 7200"), vec![seq("one hour")]);
    assert_eq!(
        search(&mut c, &format!("YOUNGER {}", 7 * DAY)),
        sorted(vec![seq("one hour"), seq("three days")])
    );
    assert_eq!(
        search(&mut c, &format!("OLDER {}", 7 * DAY)),
        sorted(vec![seq("ten days"), seq("thirty days")])
    );
    assert_eq!(
        search(&mut c, &format!("OLDER {}", 60 * DAY)),
        Vec::<u32>::new()
    );
    assert_eq!(
        search(&mut c, &format!("YOUNGER {}", 60 * DAY)),
        vec![1, 2, 3, 4]
    );
    // Combined as any other keys: between two and twenty days old.
    assert_eq!(
        search(&mut c, &format!("OLDER {} YOUNGER {}", 2 * DAY, 20 * DAY)),
        sorted(vec![seq("ten days"), seq("three days")])
    );
    assert_eq!(
        search(&mut c, "NOT YOUNGER 7200"),
        sorted(vec![seq("ten days"), seq("three days"), seq("thirty days")])
    );
    // UID SEARCH and ESEARCH take them too.
    let r = c.ok("UID SEARCH RETURN (COUNT) OLDER 7200");
    assert!(r.contains("COUNT 3"), "{:?}", r.untagged);
    // RFC 5032's grammar: a nonzero number.
    assert!(c.cmd("SEARCH YOUNGER 0").is_bad());
    assert!(c.cmd("SEARCH OLDER").is_bad());
    assert!(c.cmd("SEARCH OLDER -5").is_bad());
    // The files were only read: INTERNALDATE is still what was set.
    let r = c.ok(&format!("FETCH {} (INTERNALDATE)", seq("thirty days")));
    assert!(r.contains("INTERNALDATE"), "{:?}", r.untagged);
}
