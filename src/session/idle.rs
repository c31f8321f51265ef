//! IDLE (RFC 2177): the client waits, the server pushes changes. Deliveries
//! and flag changes by other processes are noticed through inotify on the
//! folder's `new/` and `cur/`, with a full rescan every IMAP_IDLE_TIMEOUT
//! seconds for what inotify cannot see (NFS).
//!
//! Without inotify — the usual case for the 129th IDLE session of one uid,
//! since the kernel allows 128 inotify instances per user by default, and
//! virtual users share one uid — the folder's timestamps are checked twice a
//! second instead (four stat(2) calls, `NO_INOTIFY_TICK`), so a delivery
//! shows within a second even when hundreds of such sessions rescan the
//! folder at once; the rescan itself happens only when they moved.

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::view::Announce;
use super::{Completion, End, Session};
use crate::conn::{Deadline, wait_readable};
use crate::protocol::framing::FrameError;

/// How often a session without inotify looks at the folder's timestamps. A
/// delivery waits up to this long, plus the rescan, which for the last of
/// ~1,000 sessions woken by one delivery on two cores took up to 0.2 s
/// (BENCHMARKS.md, IDLE at scale): half a second keeps the sum under one.
/// Each look is four stat(2) calls, some microseconds of CPU.
const NO_INOTIFY_TICK: Duration = Duration::from_millis(500);

/// Why [`watch`] could not watch.
pub(super) enum Unwatched {
    /// No inotify instance (the per-user limit, usually).
    NoInstance(nix::errno::Errno),
    /// This directory cannot be watched.
    Dir(PathBuf, nix::errno::Errno),
}

/// An inotify instance watching `dirs` for messages arriving, leaving or renamed (what
/// IDLE and NOTIFY wait for), or why there is none.
pub(super) fn watch(dirs: &[PathBuf]) -> Result<Inotify, Unwatched> {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(Unwatched::NoInstance)?;
    let mask = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE;
    for dir in dirs {
        ino.add_watch(dir, mask)
            .map_err(|e| Unwatched::Dir(dir.clone(), e))?;
    }
    Ok(ino)
}

/// Reads all that is pending on `ino`. One change is often several events (a delivery is
/// a rename into new/, then a session's move to cur/): a moment's wait first takes them in
/// one look.
pub(super) fn drain(ino: &Inotify) {
    std::thread::sleep(Duration::from_millis(30));
    while let Ok(events) = ino.read_events() {
        if events.is_empty() {
            break;
        }
    }
}

impl Session<'_> {
    pub(super) fn cmd_idle(&mut self, _tag: &str) -> Completion {
        let inotify = self.selected.as_ref().and_then(|v| match watch(&v.folder.watch_dirs()) {
            Ok(ino) => Some(ino),
            Err(Unwatched::NoInstance(e)) => {
                log::info!(
                    "IDLE without inotify ({e}; see fs.inotify.max_user_instances): checking {} twice a second",
                    v.folder.path().display()
                );
                None
            }
            Err(Unwatched::Dir(dir, e)) => {
                log::warn!(
                    "IDLE: cannot watch {}: {e}; checking twice a second",
                    dir.display()
                );
                None
            }
        });
        // How often to look when inotify cannot tell us.
        let tick = if inotify.is_some() {
            self.settings.idle_poll
        } else {
            self.settings.idle_poll.min(NO_INOTIFY_TICK)
        };
        let mut last_full = Instant::now();
        self.refresh(Announce::All, true);
        self.flush_pending();
        self.send_raw(b"+ idling\r\n");
        let started = Instant::now();
        loop {
            // Everything said so far leaves before the wait.
            if self.io.flush().is_err() {
                return Completion::bad("Connection lost.");
            }
            let elapsed = started.elapsed();
            if elapsed >= self.settings.autologout {
                self.send_raw(b"* BYE Autologout; idle for too long\r\n");
                self.end = Some(End::Timeout);
                return Completion::bad("Autologout.");
            }
            let wait = tick.min(self.settings.autologout - elapsed);
            let ready = if self.io.input_buffered() {
                vec![true, false]
            } else {
                let mut fds = vec![self.io.wire().input_fd()];
                if let Some(ino) = &inotify {
                    fds.push(ino.as_fd().as_raw_fd());
                }
                wait_readable(&fds, wait)
            };
            if ready.first().copied().unwrap_or(false) {
                // DONE has begun to arrive: it must not take long.
                self.io
                    .wire()
                    .set_read_deadline(Deadline::rate_from_now(self.settings.io_timeout));
                return match self.io.read_line() {
                    Ok(line) if line.eq_ignore_ascii_case(b"DONE") => {
                        Completion::ok("IDLE terminated.")
                    }
                    Ok(_) => Completion::bad("Expected DONE."),
                    Err(FrameError::LineTooLong { .. }) => Completion::bad("Expected DONE."),
                    Err(_) => {
                        self.end = Some(End::Disconnected);
                        Completion::bad("Connection lost.")
                    }
                };
            }
            if ready.get(1).copied().unwrap_or(false)
                && let Some(ino) = &inotify
            {
                drain(ino);
            }
            // An inotify event, or IMAP_IDLE_TIMEOUT since the last full
            // look, rescans; a short tick without inotify rescans only when
            // the timestamps moved.
            let woken = ready.get(1).copied().unwrap_or(false);
            let due = last_full.elapsed() >= self.settings.idle_poll;
            if woken || due {
                last_full = Instant::now();
            }
            self.refresh(Announce::All, woken || due);
            if !self.pending.is_empty() {
                self.flush_pending();
            }
            if self.mailbox_invalidated() {
                return Completion::bad("Mailbox recreated.");
            }
        }
    }
}
