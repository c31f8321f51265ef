//! The IMAP state machine after authentication: one file per command family,
//! the selected mailbox's view in `view.rs`, and this module, which reads
//! commands, dispatches them and writes responses.
//!
//! The session never sees a socket or TLS: it reads from a `CommandReader`
//! and writes to a `Write`. It may poll the input descriptor (IDLE and the
//! autologout timer need to wait for input with a timeout).

mod append;
mod copy;
mod fetch;
pub mod flags;
mod idle;
mod mailboxes;
pub mod names;
mod search;
mod select;
mod store;
pub mod view;

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use crate::maildir::{Store, StoreError};
use crate::protocol::command::{Command, CommandBody};
use crate::protocol::framing::{CommandReader, FrameError};
use crate::protocol::parser::parse_command;

use view::{Announce, SelectedView};

/// The connection as the session sees it: framed input, raw output and the
/// input descriptor to wait on.
pub struct Io {
    pub reader: CommandReader<Box<dyn Read>>,
    pub writer: Box<dyn Write>,
    pub input_fd: RawFd,
    pub bytes_out: u64,
    /// Bytes read by readers this connection has since replaced (the
    /// plaintext reader before STARTTLS).
    pub bytes_in_earlier: u64,
    /// Input held below the reader but invisible to poll(2): TLS plaintext
    /// already decrypted by the TLS library.
    pub pending_input: Option<Box<dyn Fn() -> bool>>,
    /// The deadline of every read from the client (see [`TimedInput`]).
    pub read_timeout: Rc<Cell<Duration>>,
}

impl Io {
    pub fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.bytes_out += data.len() as u64;
        self.writer.write_all(data)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }

    /// Everything read from the client so far, for the log.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in_earlier + self.reader.bytes_read()
    }

    /// Waits until input is available or `timeout` passes; true when input is
    /// (or may be) ready.
    pub fn wait_input(&mut self, timeout: Duration) -> bool {
        if self.reader.has_buffered() || self.pending_input.as_ref().is_some_and(|f| f()) {
            return true;
        }
        wait_readable(&[self.input_fd], timeout)
            .first()
            .copied()
            .unwrap_or(true)
    }
}

/// The connection's input with a deadline on every read: a client that
/// sends half a command (or a literal announced and never sent) and then
/// goes silent must not keep the process forever. The timeout is shared so
/// the server can lengthen it after login (autologout) without rebuilding
/// the reader.
pub struct TimedInput {
    file: std::fs::File,
    timeout: Rc<Cell<Duration>>,
}

impl TimedInput {
    pub fn new(file: std::fs::File, timeout: Rc<Cell<Duration>>) -> TimedInput {
        TimedInput { file, timeout }
    }
}

impl Read for TimedInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let ready = wait_readable(&[self.file.as_raw_fd()], self.timeout.get());
        if !ready.first().copied().unwrap_or(true) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client sent nothing in time",
            ));
        }
        self.file.read(buf)
    }
}

impl std::os::fd::AsRawFd for TimedInput {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// poll(2) on several descriptors; returns which are readable (or hung up).
/// An error from poll counts as "readable" so the caller's read reports it.
pub fn wait_readable(fds: &[RawFd], timeout: Duration) -> Vec<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: pfds is a valid, correctly sized array of pollfd for the call.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n < 0 {
        return vec![true; fds.len()];
    }
    pfds.iter().map(|p| p.revents != 0).collect()
}

/// Settings a session needs from the configuration.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub autologout: Duration,
    /// How often IDLE rescans when no inotify event arrives (NFS fallback).
    pub idle_poll: Duration,
    pub capabilities: String,
    pub max_append: usize,
    /// IMAP_KEYWORDS: whether custom keywords may be stored.
    pub keywords: bool,
    /// The trash folder's full name (`INBOX.Trash`), which DELETE refuses.
    pub trash: String,
}

/// How a command ended: the tagged response.
#[derive(Debug)]
pub struct Done {
    pub status: &'static str,
    pub code: Option<String>,
    pub text: String,
}

impl Done {
    pub fn ok(text: impl Into<String>) -> Done {
        Done {
            status: "OK",
            code: None,
            text: text.into(),
        }
    }
    pub fn ok_code(code: impl Into<String>, text: impl Into<String>) -> Done {
        Done {
            status: "OK",
            code: Some(code.into()),
            text: text.into(),
        }
    }
    pub fn no(text: impl Into<String>) -> Done {
        Done {
            status: "NO",
            code: None,
            text: text.into(),
        }
    }
    pub fn no_code(code: impl Into<String>, text: impl Into<String>) -> Done {
        Done {
            status: "NO",
            code: Some(code.into()),
            text: text.into(),
        }
    }
    pub fn bad(text: impl Into<String>) -> Done {
        Done {
            status: "BAD",
            code: None,
            text: text.into(),
        }
    }
}

/// Maps a store error to the RFC 5530 response an IMAP client expects, and
/// logs what an administrator needs to know.
pub fn store_error(e: &StoreError) -> Done {
    match e {
        StoreError::NonExistent(_) => Done::no_code("NONEXISTENT", "No such mailbox."),
        StoreError::AlreadyExists(_) => Done::no_code("ALREADYEXISTS", "Mailbox already exists."),
        StoreError::InvalidName(_) => Done::no_code("CANNOT", "Invalid mailbox name."),
        StoreError::Cannot(why) => Done::no_code("CANNOT", why.clone()),
        StoreError::Io { .. } => {
            log::error!("{e}");
            Done::no_code(
                "UNAVAILABLE",
                "The mail store could not be accessed; try again later.",
            )
        }
    }
}

/// Which untagged updates may follow a command (RFC 3501 §7.4.1: no EXPUNGE
/// during FETCH, STORE or SEARCH by sequence number, as the client's numbers
/// would shift under it; RFC 2180 §4.4 asks the same of COPY).
fn announce_for(body: &CommandBody) -> Announce {
    match body {
        CommandBody::Fetch { uid: false, .. }
        | CommandBody::Store { uid: false, .. }
        | CommandBody::Search { uid: false, .. }
        | CommandBody::Copy { uid: false, .. } => Announce::NoExpunge,
        _ => Announce::All,
    }
}

/// Why the session loop stopped.
pub enum End {
    Logout,
    Disconnected,
    Timeout,
}

pub struct Session<'a> {
    io: &'a mut Io,
    store: Store,
    settings: SessionSettings,
    selected: Option<SelectedView>,
    utf8: bool,
    /// Untagged responses waiting to be sent before the next tagged one.
    pending: Vec<Vec<u8>>,
    /// Set when the connection failed; the loop then ends.
    broken: bool,
    /// Set when the autologout timer ended the session inside a command (IDLE).
    timed_out: bool,
}

impl<'a> Session<'a> {
    pub fn new(io: &'a mut Io, store: Store, settings: SessionSettings) -> Session<'a> {
        Session {
            io,
            store,
            settings,
            selected: None,
            utf8: false,
            pending: Vec::new(),
            broken: false,
            timed_out: false,
        }
    }

    /// Serves commands until LOGOUT, a disconnect or the autologout timer.
    pub fn run(&mut self) -> End {
        loop {
            if self.timed_out {
                return End::Timeout;
            }
            if self.mailbox_invalidated() {
                return End::Disconnected;
            }
            if self.broken {
                return End::Disconnected;
            }
            if !self.io.wait_input(self.settings.autologout) {
                self.send_raw(b"* BYE Autologout; idle for too long\r\n");
                return End::Timeout;
            }
            let fragments = match self.io.reader.read_command(&mut *self.io.writer) {
                Ok(f) => f,
                Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                    self.send_raw(b"* BYE Autologout; idle for too long\r\n");
                    return End::Timeout;
                }
                Err(FrameError::Io(_)) => return End::Disconnected,
                Err(FrameError::LineTooLong { tag }) => {
                    let tag = tag
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_else(|| "*".into());
                    self.send_raw(
                        format!("{tag} BAD [TOOBIG] Command line too long.\r\n").as_bytes(),
                    );
                    continue;
                }
                Err(FrameError::LiteralTooBig {
                    tag, synchronizing, ..
                }) => {
                    let tag = tag
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_else(|| "*".into());
                    // RFC 7888 §4: a non-synchronizing literal over the limit
                    // is a BAD; a synchronizing one is simply refused.
                    let status = if synchronizing { "NO" } else { "BAD" };
                    self.send_raw(
                        format!("{tag} {status} [TOOBIG] Literal too large.\r\n").as_bytes(),
                    );
                    continue;
                }
            };
            let command = match parse_command(&fragments) {
                Ok(c) => c,
                Err(e) => {
                    let tag = e.tag.unwrap_or_else(|| "*".to_string());
                    self.send_raw(format!("{tag} BAD {}\r\n", e.message).as_bytes());
                    continue;
                }
            };
            if matches!(command.body, CommandBody::Logout) {
                // Closing the mailbox writes what its cache learnt; do it
                // before the client is told the session is over.
                self.selected = None;
                self.flush_pending();
                self.send_raw(b"* BYE mdimap logging out\r\n");
                self.send_raw(format!("{} OK LOGOUT completed.\r\n", command.tag).as_bytes());
                return End::Logout;
            }
            let tag = command.tag.clone();
            let announce = announce_for(&command.body);
            let done = self.execute(command);
            self.refresh(announce, false);
            self.finish(&tag, done);
        }
    }

    fn execute(&mut self, command: Command) -> Done {
        use CommandBody as C;
        let tag = command.tag;
        match command.body {
            C::Capability => {
                let line = format!("CAPABILITY {}", self.settings.capabilities);
                self.pending.push(line.into_bytes());
                Done::ok("CAPABILITY completed.")
            }
            C::Noop => {
                self.refresh(Announce::All, self.network_fs());
                Done::ok("NOOP completed.")
            }
            C::Check => {
                if self.selected.is_none() {
                    return Done::bad("No mailbox selected.");
                }
                self.refresh(Announce::All, self.network_fs());
                Done::ok("CHECK completed.")
            }
            C::Id(_) => {
                self.pending.push(b"ID (\"name\" \"mdimap\")".to_vec());
                Done::ok("ID completed.")
            }
            C::Enable(caps) => {
                let mut enabled = Vec::new();
                for c in caps {
                    if (c.eq_ignore_ascii_case("UTF8=ACCEPT")
                        || c.eq_ignore_ascii_case("UTF8=ONLY"))
                        && !self.utf8
                    {
                        self.utf8 = true;
                        enabled.push("UTF8=ACCEPT");
                    }
                }
                let mut line = b"ENABLED".to_vec();
                for e in enabled {
                    line.push(b' ');
                    line.extend_from_slice(e.as_bytes());
                }
                self.pending.push(line);
                Done::ok("ENABLE completed.")
            }
            C::StartTls | C::Login { .. } | C::Authenticate { .. } => {
                Done::bad("Already authenticated.")
            }
            C::Logout => Done::ok("LOGOUT completed."),
            C::Namespace => {
                self.pending
                    .push(b"NAMESPACE ((\"INBOX.\" \".\")) NIL NIL".to_vec());
                Done::ok("NAMESPACE completed.")
            }
            C::Select { mailbox } => self.cmd_select(&mailbox, false),
            C::Examine { mailbox } => self.cmd_select(&mailbox, true),
            C::Create { mailbox } => self.cmd_create(&mailbox),
            C::Delete { mailbox } => self.cmd_delete(&mailbox),
            C::Rename { from, to } => self.cmd_rename(&from, &to),
            C::Subscribe { mailbox } => self.cmd_subscribe(&mailbox, true),
            C::Unsubscribe { mailbox } => self.cmd_subscribe(&mailbox, false),
            C::List { reference, pattern } => self.cmd_list(&reference, &pattern, false),
            C::Lsub { reference, pattern } => self.cmd_list(&reference, &pattern, true),
            C::Status { mailbox, items } => self.cmd_status(&mailbox, &items),
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.cmd_append(&mailbox, &flags, date, &message),
            C::GetQuotaRoot { .. } | C::GetQuota { .. } => Done::no("Quotas are not available."),
            C::Close => self.cmd_close(),
            C::Unselect => self.cmd_unselect(),
            C::Expunge { uids } => self.cmd_expunge(uids.as_ref()),
            C::Search {
                uid,
                charset,
                criteria,
            } => self.cmd_search(uid, charset.as_deref(), &criteria),
            C::Fetch { uid, set, items } => self.cmd_fetch(uid, &set, &items),
            C::Store {
                uid,
                set,
                mode,
                silent,
                flags,
            } => self.cmd_store(uid, &set, mode, silent, &flags),
            C::Copy { uid, set, mailbox } => self.cmd_copy(uid, &set, &mailbox, false),
            C::Move { uid, set, mailbox } => self.cmd_copy(uid, &set, &mailbox, true),
            C::Idle => self.cmd_idle(&tag),
        }
    }

    /// Sends the pending untagged responses, then the tagged one. Before that,
    /// picks up changes made by other processes if the folder looks changed.
    fn finish(&mut self, tag: &str, done: Done) {
        let mut line = format!("{tag} {} ", done.status).into_bytes();
        if let Some(code) = &done.code {
            line.push(b'[');
            line.extend_from_slice(code.as_bytes());
            line.extend_from_slice(b"] ");
        }
        line.extend_from_slice(done.text.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.flush_pending();
        self.send_raw(&line);
        if self.io.flush().is_err() {
            self.broken = true;
        }
    }

    /// Writes every queued untagged response.
    fn flush_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let mut buf = Vec::new();
        for p in pending {
            buf.extend_from_slice(b"* ");
            buf.extend_from_slice(&p);
            buf.extend_from_slice(b"\r\n");
        }
        self.send_raw(&buf);
    }

    fn send_raw(&mut self, data: &[u8]) {
        if data.is_empty() || self.broken {
            return;
        }
        if self.io.write_all(data).is_err() || self.io.flush().is_err() {
            self.broken = true;
        }
    }

    /// Writes one untagged response immediately (long FETCH output is streamed
    /// rather than held in memory for the whole command).
    fn send_untagged(&mut self, data: &[u8]) {
        let mut buf = Vec::with_capacity(data.len() + 4);
        buf.extend_from_slice(b"* ");
        buf.extend_from_slice(data);
        buf.extend_from_slice(b"\r\n");
        if self.broken {
            return;
        }
        self.io.bytes_out += buf.len() as u64;
        if self.io.writer.write_all(&buf).is_err() {
            self.broken = true;
        }
    }

    /// Picks up changes by other processes. `force` rescans even when the
    /// directory timestamps look unchanged (NOOP and CHECK on a network
    /// filesystem, IDLE after an event).
    fn refresh(&mut self, announce: Announce, force: bool) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        if !force && !view.looks_changed() {
            return;
        }
        let mut out = Vec::new();
        if let Err(e) = view.refresh(announce, &mut out) {
            log::error!("rescanning {}: {e}", view.folder.path().display());
        }
        self.pending.extend(out);
    }

    /// Ends the session when the selected mailbox's UIDVALIDITY changed: the
    /// client's UIDs no longer name the same messages, and RFC 3501 gives no
    /// way to say so to a selected mailbox short of closing the connection.
    fn mailbox_invalidated(&mut self) -> bool {
        if !self.selected.as_ref().is_some_and(|v| v.invalidated) {
            return false;
        }
        if let Some(v) = &self.selected {
            log::warn!(
                "UIDVALIDITY of {} changed while selected; ending the session",
                v.folder.path().display()
            );
        }
        self.selected = None;
        self.send_raw(
            b"* BYE The mailbox was recreated (UIDVALIDITY changed); please reconnect.\r\n",
        );
        self.broken = true;
        true
    }

    /// Whether the selected folder lives where timestamps cannot be trusted.
    fn network_fs(&self) -> bool {
        self.selected.as_ref().is_some_and(|v| v.network_fs)
    }

    /// Resolves a mailbox argument to a store name, or the `NO` to send.
    fn mailbox_name(&self, raw: &[u8]) -> Result<String, Done> {
        names::from_wire(raw, self.utf8)
            .ok_or_else(|| Done::no_code("CANNOT", "Invalid mailbox name (bad modified UTF-7)."))
    }

    fn selected_or_bad(&self) -> Result<(), Done> {
        if self.selected.is_some() {
            Ok(())
        } else {
            Err(Done::bad("No mailbox selected."))
        }
    }

    pub fn utf8(&self) -> bool {
        self.utf8
    }
}
