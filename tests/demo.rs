//! `mdimap demo` started as root: what root reads (the directory, the
//! configuration, the user file, the certificate) stays root's, only the
//! maildir belongs to the serving user, a reused directory's planted symlinks
//! are not followed, and a directory the serving user could change (or a
//! path through someone else's symlink) is refused.
//! Each demo still serves demo/demo over IMAP.
//!
//! These tests own only the observer's side: they start the real program and
//! read ownership, modes and contents back from disk.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn require_root() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "tests/demo.rs needs root (CI runs as root): it checks what `mdimap demo` gives \
         to the unprivileged serving user. Run the tests as root."
    );
}

/// uid and gid of `nobody`, the demo's default serving user.
fn nobody() -> (u32, u32) {
    let name = c"nobody";
    // SAFETY: getpwnam with a NUL-terminated name; the record is read at once,
    // before any other passwd call in this thread.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "no user nobody on this system");
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

fn demo_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimap"));
    cmd.arg("demo").arg("--dir").arg(dir).args(["--port", "0"]);
    cmd
}

/// Root's, and nothing in it writable by anyone else.
fn assert_roots(path: &Path, file_mode: Option<u32>) {
    let md = fs::symlink_metadata(path).unwrap();
    assert_eq!(md.uid(), 0, "{} must belong to root", path.display());
    assert_eq!(
        md.mode() & 0o022,
        0,
        "{} must not be group/other-writable (mode {:o})",
        path.display(),
        md.mode()
    );
    match file_mode {
        Some(mode) => {
            assert!(md.is_file(), "{} must be a regular file", path.display());
            assert_eq!(md.mode() & 0o7777, mode, "mode of {}", path.display());
        }
        None => assert!(md.is_dir(), "{} must be a directory", path.display()),
    }
}

/// Logs in as demo/demo and counts INBOX's messages.
fn inbox_count(d: &Daemon) -> u32 {
    let mut c = d.connect();
    assert!(c.greeting.starts_with("* OK"), "greeting: {}", c.greeting);
    c.ok("LOGIN demo demo");
    let r = c.ok("SELECT INBOX");
    c.ok("LOGOUT");
    r.count("EXISTS").expect("EXISTS in SELECT")
}

#[test]
fn as_root_the_demo_gives_only_the_maildir_away() {
    require_root();
    let t = TestDir::new("demo-owners");
    let dir = t.join("demo");
    let d = Daemon::start(demo_command(&dir));
    assert_roots(&dir, None);
    for f in ["mdimapd.conf", "users", "mdimapd.pem"] {
        assert_roots(&dir.join(f), Some(0o600));
    }
    let (uid, gid) = nobody();
    let maildir = dir.join("Maildir");
    for p in [
        maildir.clone(),
        maildir.join("cur"),
        maildir.join("new"),
        maildir.join(".Work"),
    ] {
        let md = fs::symlink_metadata(&p).unwrap();
        assert!(md.is_dir(), "{} must be a directory", p.display());
        assert_eq!((md.uid(), md.gid()), (uid, gid), "owner of {}", p.display());
    }
    for name in files(&maildir.join("new")) {
        let md = fs::metadata(maildir.join("new").join(&name)).unwrap();
        assert_eq!(md.uid(), uid, "sample message {name} must be nobody's");
    }
    assert_eq!(inbox_count(&d), 3);
    // Nothing but the maildir is nobody's.
    for entry in t.tree() {
        let p = t.path.join(&entry);
        let md = fs::symlink_metadata(&p).unwrap();
        if md.uid() != 0 {
            assert!(
                p.starts_with(&maildir),
                "{} belongs to uid {} outside the maildir",
                p.display(),
                md.uid()
            );
        }
    }
}

#[test]
fn a_reused_directory_with_a_planted_symlink_is_not_followed() {
    require_root();
    let t = TestDir::new("demo-symlink");
    let dir = t.join("demo");
    {
        let mut d = Daemon::start(demo_command(&dir));
        assert_eq!(inbox_count(&d), 3);
        assert!(d.terminate(Duration::from_secs(20)), "demo did not stop");
    }
    let victim = t.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    for f in ["users", "mdimapd.pem", "mdimapd.conf"] {
        fs::remove_file(dir.join(f)).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(f)).unwrap();
    }
    let d = Daemon::start(demo_command(&dir));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    let md = fs::symlink_metadata(&victim).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o7777), (0, 0o644));
    for f in ["mdimapd.conf", "users", "mdimapd.pem"] {
        assert_roots(&dir.join(f), Some(0o600));
    }
    assert_eq!(inbox_count(&d), 3, "a reused demo keeps its mail");
}

/// Runs the demo where it must refuse: it exits with an error, serves
/// nothing, and its message names the directory. Returns the message.
fn refused(dir: &Path) -> String {
    let (mut child, log, ports) = spawn_announcing(&mut demo_command(dir));
    let mut status = None;
    let exited = wait_for(Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The reader thread may not have the last line yet when the exit is seen.
    let named = wait_for(Duration::from_secs(10), || {
        log.lock().unwrap().contains(&dir.display().to_string())
    });
    let log = log.lock().unwrap().clone();
    assert!(
        exited,
        "the demo started instead of refusing; stderr:\n{log}"
    );
    assert!(
        ports.try_recv().is_err(),
        "the demo listened; stderr:\n{log}"
    );
    assert!(!status.unwrap().success(), "exit status; stderr:\n{log}");
    assert!(named, "the refusal names the directory:\n{log}");
    log
}

#[test]
fn a_directory_the_serving_user_could_change_is_refused() {
    require_root();
    let t = TestDir::new("demo-refused");
    let (uid, gid) = nobody();

    // Owned by nobody, as older demos left it.
    let owned = t.join("owned");
    fs::create_dir(&owned).unwrap();
    std::os::unix::fs::chown(&owned, Some(uid), Some(gid)).unwrap();
    refused(&owned);
    assert!(files(&owned).is_empty(), "nothing written into {owned:?}");

    // Root's but writable by others.
    let open = t.join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    refused(&open);
    assert!(files(&open).is_empty(), "nothing written into {open:?}");

    // Root's, but the maildir in it is a symlink to somewhere else.
    let planted = t.join("planted");
    fs::create_dir(&planted).unwrap();
    let elsewhere = t.join("elsewhere");
    make_maildir(&elsewhere);
    std::os::unix::fs::symlink(&elsewhere, planted.join("Maildir")).unwrap();
    refused(&planted);
    assert!(files(&elsewhere.join("new")).is_empty());
    assert_eq!(fs::metadata(&elsewhere).unwrap().uid(), 0);

    // Reached through a symlink nobody made (one planted in /tmp, say).
    let target = t.join("target");
    fs::create_dir(&target).unwrap();
    let link = t.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(uid), Some(gid)).unwrap();
    refused(&link.join("demo"));
    assert!(files(&target).is_empty(), "nothing made through the link");
}
