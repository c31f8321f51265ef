//! IDLE when the kernel gives no more inotify instances (issue 8, IDLE at
//! scale): virtual users share one uid, and Linux allows that uid 128
//! instances by default, so the 129th IDLE session has none. It must still
//! see a delivery promptly, by checking the folder's timestamps every second
//! rather than rescanning every IMAP_IDLE_TIMEOUT (60 s).
//!
//! In a test binary of its own: it exhausts the mail user's instances, which
//! would change what other tests running beside it see.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn idle_without_inotify_still_sees_a_delivery() {
    let dir = TestDir::new("idle-no-inotify");
    let (conf, _users, maildir) = dir.write_userfile();
    // IMAP_IDLE_TIMEOUT stays at its 60 s default: only the one-second
    // check can report the delivery within the wait below.
    let (uid, gid) = mail_ids();
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(128);
    // A process of the mail user that holds every inotify instance the
    // kernel allows that user (the descriptors survive exec).
    let mut holder = Command::new("sleep");
    holder.arg("300").stdin(Stdio::null());
    let root = unsafe { libc::getuid() } == 0;
    unsafe {
        holder.pre_exec(move || {
            if root && (libc::setgid(gid) != 0 || libc::setuid(uid) != 0) {
                return Err(std::io::Error::last_os_error());
            }
            for _ in 0..limit + 8 {
                libc::inotify_init();
            }
            Ok(())
        });
    }
    let mut holder = holder.spawn().expect("cannot start the inotify holder");

    let (server, mut c) = spawn_mdimapd(&dir, &["--config", conf.to_str().unwrap()]);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("SELECT INBOX");
    let tag = c.tag();
    c.send(format!("{tag} IDLE\r\n").as_bytes());
    assert!(c.read_line().starts_with('+'));
    deliver(&maildir, &message("arrives", "while idle"));
    let start = Instant::now();
    let exists = loop {
        match c.read_line_within(Duration::from_secs(30)) {
            Read1::Line(l) if l.contains("EXISTS") => break l,
            Read1::Line(_) => continue,
            other => panic!("no EXISTS during IDLE without inotify: {other:?}"),
        }
    };
    eprintln!("delivery seen after {:?}: {exists}", start.elapsed());
    c.send(b"DONE\r\n");
    let r = c.read_until_tagged(&tag, Vec::new());
    assert!(r.is_ok(), "{r:#?}");
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        server.log_text().contains("IDLE without inotify"),
        "the session did run out of inotify instances: {}",
        server.log_text()
    );
    c.ok("LOGOUT");
}
