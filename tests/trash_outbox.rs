//! Courier's trash and outbox, as a client and an administrator see them: IMAP_EMPTYTRASH
//! (messages older than a folder's days go at login and after LOGOUT, by ctime, recorded in
//! `maildirsize`), IMAP_MOVE_EXPUNGE_TO_TRASH (`XMAGICTRASH`: EXPUNGE and CLOSE move
//! `\Deleted` messages into the trash), and OUTBOX (`XCOURIEROUTBOX`: what is APPENDed,
//! COPYed or MOVEd into the outbox is handed to SENDMAIL, and refused when that fails).
//!
//! These tests own the observable contract: responses, files on disk, and what a fake
//! SENDMAIL (a shell script) was given. They log in as the test account, so the session runs
//! as the mail user, as in production. A file's ctime cannot be set back, so the ageing
//! tests move the server's clock instead (`--test-clock-offset`, which only debug builds of
//! mdimapd accept).

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DAY: i64 = 24 * 60 * 60;

/// The test account's maildir with `config` added to its mdimapd.conf, and a quota of
/// 1000000 bytes whose `maildirsize` holds what the maildir uses when the test begins.
struct Account {
    dir: TestDir,
    maildir: PathBuf,
}

impl Account {
    fn new(name: &str, config: &str) -> Account {
        let dir = TestDir::new(name);
        let (conf, _, maildir) = dir.write_userfile();
        let mut text = fs::read_to_string(&conf).unwrap();
        text.push_str(config);
        fs::write(&conf, text).unwrap();
        Account { dir, maildir }
    }

    /// Makes `.name` folders and gives the home to the mail user again.
    fn folders(&self, dots: &[&str]) {
        for dot in dots {
            make_folder(&self.maildir, dot);
        }
        self.own();
    }

    /// Files made by the test (as root) are the mail user's, as delivered mail is.
    fn own(&self) {
        if unsafe { libc::getuid() } == 0 {
            let (uid, gid) = mail_ids();
            chown_tree(&self.dir.join("home"), uid, gid);
        }
    }

    /// Starts `maildirsize` with the disk's current use.
    fn start_quota(&self) {
        let (bytes, count) = disk_use(&self.maildir);
        fs::write(
            self.maildir.join("maildirsize"),
            format!("1000000S\n{bytes:>12} {count:>12}\n"),
        )
        .unwrap();
        self.own();
    }

    /// A logged-in session; `extra` arguments go to mdimapd.
    fn login(&self, extra: &[&str]) -> (Server, Client) {
        let conf = self.dir.join("mdimapd.conf");
        let users = self.dir.join("users");
        let mut args = vec![
            "--config",
            conf.to_str().unwrap(),
            "--userfile",
            users.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (s, mut c) = spawn_mdimapd(&self.dir, &args);
        assert!(c.greeting.starts_with("* OK"), "greeting: {}", c.greeting);
        c.ok(&format!("LOGIN {USER} {PASSWORD}"));
        (s, c)
    }

    fn path(&self, dot: &str) -> PathBuf {
        if dot.is_empty() {
            self.maildir.clone()
        } else {
            self.maildir.join(dot)
        }
    }

    /// Message files in new/ and cur/ of a folder.
    fn messages(&self, dot: &str) -> Vec<String> {
        let f = self.path(dot);
        let mut v: Vec<String> = files(&f.join("new"))
            .into_iter()
            .chain(files(&f.join("cur")))
            .collect();
        v.sort();
        v
    }

    fn maildirsize(&self) -> String {
        fs::read_to_string(self.maildir.join("maildirsize")).unwrap()
    }
}

/// What the maildir uses by the Maildir++ rules, from the disk: `,S=` sizes in new/ and cur/
/// of the root and every folder but `.Trash`, leaving out `T` files.
fn disk_use(maildir: &Path) -> (i64, i64) {
    let mut dirs = vec![maildir.to_path_buf()];
    for e in fs::read_dir(maildir).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.starts_with('.') && name != ".Trash" && e.path().join("cur").is_dir() {
            dirs.push(e.path());
        }
    }
    let mut used = (0, 0);
    for dir in dirs {
        for name in files(&dir.join("new"))
            .into_iter()
            .chain(files(&dir.join("cur")))
        {
            if name.starts_with('.') || flags_of_name(&name).contains('T') {
                continue;
            }
            let base = base_of(&name);
            used.0 += base[base.rfind(",S=").unwrap() + 3..]
                .parse::<i64>()
                .unwrap();
            used.1 += 1;
        }
    }
    used
}

/// The sum of `maildirsize`'s change lines.
fn file_sum(text: &str) -> (i64, i64) {
    let mut sum = (0, 0);
    for l in text.lines().skip(1) {
        let mut it = l.split_whitespace().map(|n| n.parse::<i64>().unwrap());
        sum.0 += it.next().unwrap();
        sum.1 += it.next().unwrap();
    }
    sum
}

fn offset(days: i64) -> String {
    (days * DAY).to_string()
}

fn capabilities_of(line: &str) -> Vec<String> {
    let start = line.find("CAPABILITY ").expect("no CAPABILITY") + "CAPABILITY ".len();
    let rest = &line[start..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end].split_whitespace().map(str::to_string).collect()
}

#[test]
fn capabilities_follow_the_configuration() {
    let plain = Account::new("caps-plain", "");
    let (_s, mut c) = plain.login(&[]);
    for line in [c.greeting.clone(), c.cmd("CAPABILITY").untagged[0].clone()] {
        let caps = capabilities_of(&line);
        assert!(
            !caps
                .iter()
                .any(|w| w.starts_with("XCOURIEROUTBOX") || w == "XMAGICTRASH"),
            "{line}"
        );
    }
    let set = Account::new("caps-set", "IMAP_MOVE_EXPUNGE_TO_TRASH=1\nOUTBOX=.Outbox\n");
    let conf = set.dir.join("mdimapd.conf");
    let users = set.dir.join("users");
    let (_s, mut c) = spawn_mdimapd(
        &set.dir,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--userfile",
            users.to_str().unwrap(),
        ],
    );
    let login = c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    let after = c.cmd("CAPABILITY").untagged[0].clone();
    // Before login, in the LOGIN response code and after login, as Courier advertises them.
    for line in [c.greeting.clone(), login.tagged.clone(), after] {
        let caps = capabilities_of(&line);
        assert!(
            caps.contains(&"XCOURIEROUTBOX=INBOX.Outbox".to_string()),
            "{line}"
        );
        assert!(caps.contains(&"XMAGICTRASH".to_string()), "{line}");
    }
    // IMAP_MOVE_EXPUNGE_TO_TRASH=0 is off, as in Courier.
    let off = Account::new("caps-off", "IMAP_MOVE_EXPUNGE_TO_TRASH=0\n");
    let (_s, c) = off.login(&[]);
    assert!(!c.greeting.contains("XMAGICTRASH"), "{}", c.greeting);
}

#[test]
fn empty_trash_purges_old_messages_at_login_and_after_logout() {
    let a = Account::new(
        "emptytrash",
        "IMAP_EMPTYTRASH=Trash:7,Sent:7,Archive:30,Missing:1\n",
    );
    a.folders(&[".Trash", ".Sent", ".Archive"]);
    deliver(&a.path(".Trash"), &message("trash new", "x"));
    put_cur(&a.path(".Trash"), &message("trash seen", "x"), "S");
    put_cur(&a.path(".Sent"), &message("sent", "sent body"), "S");
    put_cur(&a.path(".Sent"), &message("sent deleted", "d"), "ST");
    put_cur(&a.path(".Archive"), &message("archive", "x"), "S");
    deliver(&a.path(""), &message("inbox", "x"));
    let sent_counted = put_cur(&a.path(".Sent"), &message("sent two", "yy"), "");
    a.own();
    a.start_quota();
    let before = a.maildirsize();
    let (inbox, archive) = (a.messages(""), a.messages(".Archive"));

    // Today's messages are young: a session on the real clock leaves everything.
    let (mut s, mut c) = a.login(&[]);
    c.ok("NOOP");
    c.ok("LOGOUT");
    assert!(s.wait_exit(Duration::from_secs(60)).is_some());
    assert_eq!(a.messages(".Trash").len(), 2);
    assert_eq!(a.messages(".Sent").len(), 3);
    assert_eq!(a.maildirsize(), before);

    // Eight days on: Trash and Sent are purged as the session starts (new/ too), Archive
    // (30 days) and INBOX (not listed) are not.
    let (mut s, mut c) = a.login(&["--test-clock-offset", &offset(8)]);
    c.ok("NOOP");
    assert_eq!(a.messages(".Trash"), Vec::<String>::new());
    assert_eq!(a.messages(".Sent"), Vec::<String>::new());
    assert_eq!(a.messages(".Archive"), archive);
    assert_eq!(a.messages(""), inbox);
    // Sent counts towards the quota: its two messages without \Deleted are recorded as one
    // removal; Trash never counted, and the \Deleted one counted nothing.
    let sent_bytes = |p: &Path| {
        let n = p.file_name().unwrap().to_str().unwrap();
        base_of(n)[base_of(n).rfind(",S=").unwrap() + 3..]
            .parse::<i64>()
            .unwrap()
    };
    let text = a.maildirsize();
    assert_eq!(text.lines().count(), before.lines().count() + 1, "{text}");
    let last = text.lines().last().unwrap().to_string();
    let removed: Vec<i64> = last
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(removed[1], -2, "{text}");
    assert!(removed[0] < -sent_bytes(&sent_counted), "{text}");
    assert_eq!(file_sum(&text), disk_use(&a.maildir), "{text}");

    // Mail put in Trash during the session is purged after LOGOUT has been answered.
    put_cur(&a.path(".Trash"), &message("during", "x"), "S");
    a.own();
    c.ok("LOGOUT");
    assert!(s.wait_exit(Duration::from_secs(60)).is_some());
    assert_eq!(a.messages(".Trash"), Vec::<String>::new());

    // A session that just ends (the connection drops) does not purge on the way out.
    let (mut s, mut c) = a.login(&["--test-clock-offset", &offset(8)]);
    c.ok("NOOP");
    put_cur(&a.path(".Trash"), &message("kept", "x"), "S");
    a.own();
    drop(c);
    assert!(s.wait_exit(Duration::from_secs(60)).is_some());
    assert_eq!(a.messages(".Trash").len(), 1);
}

#[test]
fn a_bare_number_purges_the_configured_trash_folder() {
    let a = Account::new(
        "emptytrash-bare",
        "IMAP_TRASHFOLDERNAME=\"Deleted Items\"\nIMAP_EMPTYTRASH=2\n",
    );
    a.folders(&[".Deleted Items", ".Trash"]);
    put_cur(&a.path(".Deleted Items"), &message("bin", "x"), "S");
    put_cur(&a.path(".Trash"), &message("other", "x"), "S");
    a.own();
    let (_s, mut c) = a.login(&["--test-clock-offset", &offset(1)]);
    c.ok("NOOP");
    assert_eq!(a.messages(".Deleted Items").len(), 1, "one day is not two");
    drop(c);
    let (_s, mut c) = a.login(&["--test-clock-offset", &offset(3)]);
    c.ok("NOOP");
    assert!(a.messages(".Deleted Items").is_empty());
    assert_eq!(a.messages(".Trash").len(), 1, "only the configured trash");
}

#[test]
fn magic_trash_moves_expunged_messages_into_the_trash() {
    let a = Account::new("magictrash", "IMAP_MOVE_EXPUNGE_TO_TRASH=1\n");
    a.folders(&[".Archive"]);
    let one = put_cur(&a.path(""), &message("one", "first"), "");
    put_cur(&a.path(""), &message("two", "second"), "");
    put_cur(&a.path(""), &message("three", "third"), "S");
    a.own();
    a.start_quota();
    let (_s, mut c) = a.login(&[]);
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Deleted \\Draft \\Flagged)");
    // Copied elsewhere first (a client's move without MOVE): removed outright.
    c.ok("COPY 2 INBOX.Archive");
    c.ok("STORE 2 +FLAGS (\\Deleted)");
    let lines_before = a.maildirsize().lines().count();
    let r = c.ok("EXPUNGE");
    assert_eq!(r.expunged().len(), 2, "{r:#?}");
    // The trash did not exist: it was made, and holds message one under its own name,
    // without \Deleted and \Draft.
    let trash = a.messages(".Trash");
    let one_name = one.file_name().unwrap().to_str().unwrap();
    assert_eq!(trash, vec![format!("{}:2,F", base_of(one_name))]);
    assert!(a.path(".Trash").join("maildirfolder").exists());
    assert_eq!(a.messages("").len(), 1);
    assert_eq!(a.messages(".Archive").len(), 1);
    // A \Deleted message counted nothing, and .Trash counts nothing: no change line.
    assert_eq!(a.maildirsize().lines().count(), lines_before);
    assert_eq!(file_sum(&a.maildirsize()), disk_use(&a.maildir));
    // The trash numbers it as new mail, and shows its flags.
    let r = c.ok("SELECT INBOX.Trash");
    assert_eq!(r.count("EXISTS"), Some(1));
    let r = c.ok("FETCH 1 (UID FLAGS BODY.PEEK[TEXT])");
    assert!(r.fetch(1).contains("UID 1 "), "{r:#?}");
    assert!(r.fetch(1).contains("FLAGS (\\Flagged)"), "{r:#?}");
    assert!(r.fetch(1).contains("first"), "{r:#?}");
    // In the trash itself EXPUNGE removes.
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    assert!(a.messages(".Trash").is_empty());
    // CLOSE moves too.
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    c.ok("CLOSE");
    assert!(a.messages("").is_empty());
    assert_eq!(a.messages(".Trash").len(), 1);
    assert_eq!(file_sum(&a.maildirsize()), disk_use(&a.maildir));
}

#[test]
fn magic_trash_into_a_counted_trash_records_the_arrival() {
    let a = Account::new(
        "magictrash-counted",
        "IMAP_MOVE_EXPUNGE_TO_TRASH=1\nIMAP_TRASHFOLDERNAME=Bin\n",
    );
    a.folders(&[".Bin"]);
    let one = put_cur(&a.path(""), &message("one", "first"), "S");
    a.own();
    a.start_quota();
    let size = {
        let n = one.file_name().unwrap().to_str().unwrap();
        base_of(n)[base_of(n).rfind(",S=").unwrap() + 3..].to_string()
    };
    let (_s, mut c) = a.login(&[]);
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    assert_eq!(a.messages(".Bin").len(), 1);
    // .Bin counts, and the message lost its T there: it counts again.
    let text = a.maildirsize();
    assert_eq!(
        text.lines().last().unwrap(),
        format!("{size:>12} {:>12}", 1),
        "{text}"
    );
    assert_eq!(file_sum(&text), disk_use(&a.maildir));
}

/// A fake SENDMAIL recording its arguments, input, environment and user in `out/`, and
/// failing (as an MTA refusing a relay would) while `out/fail` exists.
fn fake_sendmail(a: &Account) -> (PathBuf, PathBuf) {
    let out = a.dir.join("out");
    fs::create_dir_all(&out).unwrap();
    fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let script = a.dir.join("sendmail");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             n=$(ls {out} | grep -c '^sent')\n\
             f={out}/sent$n\n\
             echo \"$*\" > $f.args\n\
             env > $f.env\n\
             id -u > $f.uid\n\
             cat > $f\n\
             if [ -e {out}/fail ]; then echo 'relay refused' >&2; exit 75; fi\n\
             exit 0\n",
            out = out.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, out)
}

fn sent(out: &Path) -> Vec<String> {
    files(out)
        .into_iter()
        .filter(|n| n.starts_with("sent") && !n.contains('.'))
        .collect()
}

#[test]
fn outbox_sends_what_is_appended_and_keeps_it() {
    let a = Account::new("outbox", "");
    let (script, out) = fake_sendmail(&a);
    let conf = a.dir.join("mdimapd.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "OUTBOX=.Outbox\nSENDMAIL={}\nHEADERFROM=X-IMAP-Sender\n",
        script.display()
    ));
    fs::write(&conf, text).unwrap();
    a.folders(&[".Outbox"]);
    a.start_quota();
    let (s, mut c) = a.login(&[]);
    let mail = "To: bob@example.net\nSubject: hi\n\nhello\n";
    let r = c.cmd(&format!("APPEND INBOX.Outbox {}", lit(&crlf(mail))));
    assert!(r.is_ok(), "{r:#?}");
    assert!(r.tagged.contains("[APPENDUID "), "{r:#?}");
    // Sent once: `-oi -t -f <login>`, the sender header on top, LF line ends, as the mail
    // user, with nothing of the server's environment.
    assert_eq!(sent(&out), vec!["sent0"]);
    assert_eq!(
        fs::read_to_string(out.join("sent0.args")).unwrap(),
        format!("-oi -t -f {USER}\n")
    );
    assert_eq!(
        fs::read_to_string(out.join("sent0")).unwrap(),
        format!("X-IMAP-Sender: {USER}\n{mail}")
    );
    assert_eq!(
        fs::read_to_string(out.join("sent0.uid")).unwrap().trim(),
        mail_ids().0.to_string()
    );
    let env = fs::read_to_string(out.join("sent0.env")).unwrap();
    for var in ["HOME=", "TCPREMOTEIP=", "PATH=/root", "MDIMAP"] {
        assert!(!env.lines().any(|l| l.starts_with(var)), "{var} in {env}");
    }
    // Stored as well, as received (no sender header), and counted.
    let stored = a.messages(".Outbox");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        fs::read_to_string(a.path(".Outbox").join("cur").join(&stored[0])).unwrap(),
        mail
    );
    assert_eq!(file_sum(&a.maildirsize()), disk_use(&a.maildir));
    // Elsewhere nothing is sent.
    c.ok(&format!("APPEND INBOX {}", lit(&crlf(mail))));
    assert_eq!(sent(&out).len(), 1);

    // SENDMAIL fails: the client is told, nothing is stored or counted, the log says why.
    fs::write(out.join("fail"), "").unwrap();
    let size_before = a.maildirsize();
    let r = c.cmd(&format!("APPEND INBOX.Outbox {}", lit(&crlf(mail))));
    assert!(r.is_no(), "{r:#?}");
    assert!(
        r.tagged.contains("[ALERT] Unable to send E-mail message."),
        "{r:#?}"
    );
    assert_eq!(a.messages(".Outbox").len(), 1);
    assert!(files(&a.path(".Outbox").join("tmp")).is_empty());
    assert_eq!(a.maildirsize(), size_before);
    assert!(s.log_text().contains("relay refused"), "{}", s.log_text());
}

#[test]
fn outbox_copy_sends_one_message_unless_multiple_sends_are_allowed() {
    for multiple in [false, true] {
        let a = Account::new("outbox-copy", "");
        let (script, out) = fake_sendmail(&a);
        let conf = a.dir.join("mdimapd.conf");
        let mut text = fs::read_to_string(&conf).unwrap();
        // No HEADERFROM: no header, as with Courier.
        text.push_str(&format!(
            "OUTBOX=.Outbox\nSENDMAIL={}\nOUTBOX_MULTIPLE_SEND={}\n",
            script.display(),
            u8::from(multiple)
        ));
        fs::write(&conf, text).unwrap();
        a.folders(&[".Outbox"]);
        let first = message("one", "first");
        put_cur(&a.path(""), &first, "S");
        put_cur(&a.path(""), &message("two", "second"), "S");
        a.own();
        let (_s, mut c) = a.login(&[]);
        c.ok("SELECT INBOX");
        let r = c.cmd("COPY 1:2 INBOX.Outbox");
        if multiple {
            assert!(r.is_ok(), "{r:#?}");
            assert_eq!(sent(&out).len(), 2);
            assert_eq!(a.messages(".Outbox").len(), 2);
            continue;
        }
        assert!(r.is_no(), "{r:#?}");
        assert!(
            r.tagged
                .contains("[ALERT] Only one message may be sent at a time."),
            "{r:#?}"
        );
        assert!(sent(&out).is_empty() && a.messages(".Outbox").is_empty());
        c.ok("COPY 1 INBOX.Outbox");
        assert_eq!(sent(&out), vec!["sent0"]);
        assert_eq!(fs::read_to_string(out.join("sent0")).unwrap(), first);
        // A failing SENDMAIL refuses the COPY and the MOVE; the source stays.
        fs::write(out.join("fail"), "").unwrap();
        let r = c.cmd("COPY 2 INBOX.Outbox");
        assert!(
            r.tagged
                .contains("NO [ALERT] Unable to send E-mail message."),
            "{r:#?}"
        );
        let r = c.cmd("MOVE 2 INBOX.Outbox");
        assert!(r.is_no(), "{r:#?}");
        assert_eq!(a.messages(".Outbox").len(), 1);
        assert_eq!(a.messages("").len(), 2);
        // MOVE sends and removes the source once SENDMAIL works again.
        fs::remove_file(out.join("fail")).unwrap();
        c.ok("MOVE 2 INBOX.Outbox");
        assert_eq!(a.messages(".Outbox").len(), 2);
        assert_eq!(a.messages("").len(), 1);
        assert_eq!(sent(&out).len(), 4);
    }
}

#[test]
fn outbox_multiappend_sends_one_message_unless_multiple_sends_are_allowed() {
    for multiple in [false, true] {
        let a = Account::new("outbox-multiappend", "");
        let (script, out) = fake_sendmail(&a);
        let conf = a.dir.join("mdimapd.conf");
        let mut text = fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "OUTBOX=.Outbox\nSENDMAIL={}\nOUTBOX_MULTIPLE_SEND={}\n",
            script.display(),
            u8::from(multiple)
        ));
        fs::write(&conf, text).unwrap();
        a.folders(&[".Outbox"]);
        let (first, second) = (message("one", "first"), message("two", "second"));
        let (_s, mut c) = a.login(&[]);
        let command = format!(
            "APPEND INBOX.Outbox {} {}",
            lit_plus(&crlf(&first)),
            lit_plus(&crlf(&second))
        );
        let r = c.cmd(&command);
        if multiple {
            assert!(r.is_ok(), "{r:#?}");
            let mut bodies: Vec<String> = sent(&out)
                .iter()
                .map(|n| fs::read_to_string(out.join(n)).unwrap())
                .collect();
            bodies.sort();
            let mut both = vec![first.clone(), second.clone()];
            both.sort();
            assert_eq!(bodies, both);
            assert_eq!(a.messages(".Outbox").len(), 2);
            continue;
        }
        assert!(
            r.tagged
                .contains("NO [ALERT] Only one message may be sent at a time."),
            "{r:#?}"
        );
        assert!(sent(&out).is_empty() && a.messages(".Outbox").is_empty());
        // One at a time is sent and stored.
        c.ok(&format!("APPEND INBOX.Outbox {}", lit_plus(&crlf(&first))));
        assert_eq!(sent(&out), vec!["sent0"]);
        assert_eq!(a.messages(".Outbox").len(), 1);
        // Elsewhere a MULTIAPPEND is no sending matter.
        c.ok(&command.replace("INBOX.Outbox", "INBOX"));
        assert_eq!(sent(&out).len(), 1);
    }
}
