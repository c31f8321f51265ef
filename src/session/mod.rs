//! The IMAP state machine after authentication: one file per command family,
//! the selected mailbox's view in `view.rs`, and this module, which reads
//! commands, dispatches them and writes responses.
//!
//! The session never sees a socket or TLS: it reads from a `CommandReader`
//! and writes to a `Write`. It may poll the input descriptor (IDLE and the
//! autologout timer need to wait for input with a timeout).

mod acl;
mod append;
mod catalog;
mod catenate;
mod context;
mod copy;
mod derived;
mod fetch;
pub mod flags;
mod idle;
mod list;
mod mailbox_size;
mod mailboxes;
pub mod names;
mod notify;
mod objectid;
pub mod outbox;
mod quota;
mod search;
#[doc(hidden)]
pub use search::{MessageFacts, match_message};
mod select;
mod shared;
mod sort;
mod store;
mod thread;
mod trash;
pub mod view;

use std::time::{Duration, Instant};

use crate::conn::{Deadline, Incoming, Io};
use crate::maildir::sharedindex::SharedIndex;
use crate::maildir::{Accessor, Store, StoreError};
use crate::protocol::command::{Command, CommandBody, FetchItem};
use crate::protocol::response::{Code, Completion};
use crate::protocol::sequence::SequenceSet;

use view::{Announce, SelectedView};

/// Settings a session needs from the configuration.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub autologout: Duration,
    /// How long a command, once begun, may stall before it must keep up the
    /// minimum rate, and how long a response may wait for the client to read.
    pub io_timeout: Duration,
    /// How often IDLE rescans when no inotify event arrives (NFS fallback).
    pub idle_poll: Duration,
    pub capabilities: String,
    pub max_append: usize,
    /// IMAP_KEYWORDS: whether custom keywords may be stored.
    pub keywords: bool,
    /// The trash folder's full name (`INBOX.Trash`), which DELETE refuses.
    pub trash: String,
    /// IMAP_EMPTYTRASH: folders (full names) and the days after which their messages go.
    pub purges: Vec<(String, u32)>,
    /// IMAP_MOVE_EXPUNGE_TO_TRASH: EXPUNGE and CLOSE move messages into `trash`.
    pub magic_trash: bool,
    /// False under IMAP_DISABLETHREADSORT: SORT and THREAD answer NO.
    pub thread_sort: bool,
    /// OUTBOX: the folder whose new messages are also sent.
    pub outbox: Option<outbox::Outbox>,
    /// Seconds added to the clock IMAP_EMPTYTRASH ages messages by: always 0, but for tests
    /// of debug builds (`mdimapd --test-clock-offset`), as a file's ctime cannot be set.
    pub clock_offset: i64,
    /// Whose session this is, as access control lists name them.
    pub accessor: Accessor,
    /// False when the account has Courier's `disableshared` option: no ACL file is read
    /// or written, and the owner may do everything but administer.
    pub acl_files: bool,
    /// Courier's index of virtual shared folders as this account sees it
    /// (IMAP_SHAREDINDEXFILE with its `sharedgroup` appended); `None` when the account
    /// has none (unset, or `disableshared`).
    pub shared_index: Option<SharedIndex>,
    /// The folders (full names) the configuration gives a special use (RFC 6154); a use
    /// a client gave some folder with CREATE ... USE takes that use from these.
    pub special_use: Vec<(String, crate::maildir::SpecialUse)>,
}

/// Maps a store error to the RFC 5530 response an IMAP client expects, and
/// logs what an administrator needs to know.
pub fn store_error(e: &StoreError) -> Completion {
    match e {
        StoreError::NonExistent(_) => Completion::no_code(Code::NonExistent, "No such mailbox."),
        StoreError::AlreadyExists(_) => {
            Completion::no_code(Code::AlreadyExists, "Mailbox already exists.")
        }
        StoreError::InvalidName(_) => Completion::no_code(Code::Cannot, "Invalid mailbox name."),
        StoreError::Cannot(why) => Completion::no_code(Code::Cannot, why.clone()),
        // RFC 9208 / RFC 5530: OVERQUOTA, with the words Courier-IMAP uses (its own
        // answer is `NO [ALERT] You exceeded your mail quota.`).
        StoreError::OverQuota => {
            Completion::no_code(Code::OverQuota, "You exceeded your mail quota.")
        }
        // The file system's own refusal (another account's maildir, a shared folder the
        // user may not write): the user may not, and no retry will change that.
        StoreError::Io { error, .. } if error.kind() == std::io::ErrorKind::PermissionDenied => {
            log::warn!("{e}");
            Completion::no_code(Code::NoPerm, "Permission denied by the file system.")
        }
        StoreError::Io { .. } => {
            log::error!("{e}");
            Completion::no_code(
                Code::Unavailable,
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
        | CommandBody::Sort { uid: false, .. }
        | CommandBody::Thread { uid: false, .. }
        | CommandBody::Copy { uid: false, .. } => Announce::NoExpunge,
        _ => Announce::All,
    }
}

/// NOOP and CHECK exist to ask for updates (RFC 3501 §6.1.2, §6.4.1): on a
/// network filesystem, where timestamps cannot prove "nothing changed", and
/// after this session's own changes were taken in without a rescan, they
/// rescan regardless.
fn polls(body: &CommandBody) -> bool {
    matches!(body, CommandBody::Noop | CommandBody::Check)
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
    /// CONDSTORE is enabled (RFC 7162 §3.1): by ENABLE, SELECT's `(CONDSTORE)` or the
    /// first command that uses a mod-sequence. Lasts for the session.
    condstore: bool,
    /// QRESYNC is enabled (RFC 7162 §3.2.3, only by ENABLE): expunges are reported as
    /// VANISHED, SELECT takes QRESYNC, UID FETCH takes VANISHED.
    qresync: bool,
    /// IMAP4rev2 is enabled (RFC 9051 §6.3.1): no `\Recent` or RECENT, no `[UNSEEN]`,
    /// SEARCH answers ESEARCH, SELECT answers LIST and `[CLOSED]`, names are UTF-8.
    rev2: bool,
    /// NOTIFY SET is in force (RFC 5465; see notify.rs).
    notifier: Option<notify::Notifier>,
    /// Untagged responses waiting to be sent before the next tagged one.
    pending: Vec<Vec<u8>>,
    /// SEARCHRES (RFC 5182): the UIDs, ascending, the last SEARCH or SORT
    /// with RETURN (SAVE) kept for `$`. Emptied whenever a mailbox is
    /// selected or closed; UIDs expunged since are passed over where `$` is
    /// used, as they name no message any more.
    saved_result: Vec<u32>,
    /// Set when a command (IDLE) ended the session: the autologout timer,
    /// or a recreated mailbox.
    end: Option<End>,
    /// Buffers messages are read into.
    scratch: fetch::Scratch,
    /// The mailbox just left (SELECT of another, CLOSE, UNSELECT): dropped, which
    /// writes its index, once the command that left it is answered.
    closing: Option<SelectedView>,
    /// COMPRESS DEFLATE was answered OK: compression starts once the OK
    /// has been queued (RFC 4978 §3).
    start_deflate: bool,
    /// STATUS answers kept while their folders provably did not change.
    status_cache: crate::maildir::StatusCache,
}

impl<'a> Session<'a> {
    pub fn new(io: &'a mut Io, store: Store, settings: SessionSettings) -> Session<'a> {
        io.wire()
            .set_write_deadline(Deadline::Stall(settings.io_timeout));
        Session {
            io,
            store,
            settings,
            selected: None,
            utf8: false,
            condstore: false,
            qresync: false,
            rev2: false,
            notifier: None,
            pending: Vec::new(),
            saved_result: Vec::new(),
            end: None,
            scratch: fetch::Scratch::default(),
            closing: None,
            start_deflate: false,
            status_cache: crate::maildir::StatusCache::default(),
        }
    }

    /// Serves commands until LOGOUT, a disconnect or the autologout timer.
    pub fn run(&mut self) -> End {
        // Courier empties the trash as the session starts, and again after LOGOUT.
        self.empty_trash();
        let end = self.serve_commands();
        // Closing the mailbox writes what its index learnt.
        self.selected = None;
        self.closing = None;
        let _ = self.io.flush();
        end
    }

    fn serve_commands(&mut self) -> End {
        loop {
            if let Some(end) = self.end.take() {
                return end;
            }
            if self.io.is_broken() {
                return if self.io.write_timed_out() {
                    End::Timeout
                } else {
                    End::Disconnected
                };
            }
            if self.mailbox_invalidated() {
                return End::Disconnected;
            }
            // Between commands the client may think as long as the
            // autologout timer allows (RFC 3501 §5.4) ...
            let autologout = self.settings.autologout;
            self.io
                .wire()
                .set_read_deadline(Deadline::At(Instant::now() + autologout));
            let waited = if self.notifier.is_some() {
                self.wait_input_notifying(autologout)
            } else {
                self.io.wait_input(autologout)
            };
            if !waited {
                self.send_raw(b"* BYE Autologout; idle for too long\r\n");
                return End::Timeout;
            }
            // ... but a command it has begun must keep coming.
            self.io
                .wire()
                .set_read_deadline(Deadline::rate_from_now(self.settings.io_timeout));
            let command = match self.io.next_command(false) {
                Incoming::Command(c) => c,
                Incoming::Rejected | Incoming::ProxyHeader => continue,
                Incoming::Closed(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    self.send_raw(b"* BYE Command not completed in time.\r\n");
                    return End::Timeout;
                }
                Incoming::Closed(_) => return End::Disconnected,
            };
            if matches!(command.body, CommandBody::Logout) {
                // Closing the mailbox writes what its index learnt; do it
                // before the client is told the session is over.
                self.selected = None;
                self.closing = None;
                self.flush_pending();
                self.send_raw(b"* BYE mdimap logging out\r\n");
                self.send_raw(&Completion::ok("LOGOUT completed.").encode(&command.tag));
                // The client is told first: it need not wait for the purge.
                let _ = self.io.flush();
                self.empty_trash();
                return End::Logout;
            }
            let tag = command.tag.clone();
            let announce = announce_for(&command.body);
            let force = polls(&command.body) && self.must_poll();
            let done = self.execute(command);
            self.refresh(announce, force);
            self.finish(&tag, done);
            if std::mem::take(&mut self.start_deflate) && self.io.start_deflate().is_err() {
                return End::Disconnected;
            }
            self.save_index_if_due();
        }
    }

    fn execute(&mut self, command: Command) -> Completion {
        use CommandBody as C;
        let tag = command.tag;
        let mut body = command.body;
        if matches!(
            body,
            C::Select { .. } | C::Examine { .. } | C::Close | C::Unselect
        ) {
            self.saved_result.clear();
        }
        if let Err(done) = self.replace_saved_set(&mut body) {
            return done;
        }
        match body {
            C::Capability => {
                let line = format!("CAPABILITY {}", self.settings.capabilities);
                self.pending.push(line.into_bytes());
                Completion::ok("CAPABILITY completed.")
            }
            // Their updates come from the rescan after every command (see
            // `polls`), which for them looks even when timestamps say no on
            // a network filesystem.
            C::Noop => Completion::ok("NOOP completed."),
            C::Check => {
                if self.selected.is_none() {
                    return Completion::bad("No mailbox selected.");
                }
                Completion::ok("CHECK completed.")
            }
            C::Id(_) => {
                self.pending.push(b"ID (\"name\" \"mdimap\")".to_vec());
                Completion::ok("ID completed.")
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
                    if c.eq_ignore_ascii_case("CONDSTORE") && !self.condstore {
                        self.enable_condstore();
                        enabled.push("CONDSTORE");
                    }
                    if c.eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                        self.rev2 = true;
                        // RFC 9051 §5.1: mailbox names are UTF-8 on the wire.
                        self.utf8 = true;
                        if let Some(view) = self.selected.as_mut() {
                            view.rev2 = true;
                        }
                        enabled.push("IMAP4rev2");
                    }
                    // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                    if c.eq_ignore_ascii_case("QRESYNC") && !self.qresync {
                        self.enable_condstore();
                        self.qresync = true;
                        if let Some(view) = self.selected.as_mut() {
                            view.qresync = true;
                        }
                        enabled.push("QRESYNC");
                    }
                }
                let mut line = b"ENABLED".to_vec();
                for e in enabled {
                    line.push(b' ');
                    line.extend_from_slice(e.as_bytes());
                }
                self.pending.push(line);
                Completion::ok("ENABLE completed.")
            }
            C::StartTls | C::Login { .. } | C::Authenticate { .. } => {
                Completion::bad("Already authenticated.")
            }
            C::Logout => Completion::ok("LOGOUT completed."),
            C::Namespace => {
                let line = self.namespace_line();
                self.pending.push(line);
                Completion::ok("NAMESPACE completed.")
            }
            C::Select { mailbox, params } => self.cmd_select(&mailbox, false, &params),
            C::Examine { mailbox, params } => self.cmd_select(&mailbox, true, &params),
            C::Create { mailbox, uses } => self.cmd_create(&mailbox, &uses),
            C::Delete { mailbox } => self.cmd_delete(&mailbox),
            C::Rename { from, to } => self.cmd_rename(&from, &to),
            C::Subscribe { mailbox } => self.cmd_subscribe(&mailbox, true),
            C::Unsubscribe { mailbox } => self.cmd_subscribe(&mailbox, false),
            C::List {
                reference,
                patterns,
                options,
            } => self.cmd_list_extended(&reference, &patterns, &options),
            C::Lsub { reference, pattern } => self.cmd_lsub(&reference, &pattern),
            C::Status { mailbox, items } => self.cmd_status(&mailbox, &items),
            C::Append { mailbox, messages } => self.cmd_append(&mailbox, messages),
            C::GetQuotaRoot { mailbox } => self.cmd_getquotaroot(&mailbox),
            C::GetQuota { root } => self.cmd_getquota(&root),
            C::SetQuota { root, .. } => self.cmd_setquota(&root),
            C::GetAcl { mailbox } => self.cmd_getacl(&mailbox),
            C::SetAcl {
                mailbox,
                identifier,
                rights,
            } => self.cmd_setacl(&mailbox, &identifier, Some(&rights)),
            C::DeleteAcl {
                mailbox,
                identifier,
            } => self.cmd_setacl(&mailbox, &identifier, None),
            C::ListRights {
                mailbox,
                identifier,
            } => self.cmd_listrights(&mailbox, &identifier),
            C::MyRights { mailbox } => self.cmd_myrights(&mailbox),
            C::Close => self.cmd_close(),
            C::Unselect => self.cmd_unselect(),
            C::CancelUpdate { tags } => self.cmd_cancel_update(&tags),
            C::Expunge { uids } => self.cmd_expunge(uids.as_ref()),
            C::Search {
                uid,
                returns,
                charset,
                criteria,
            } => {
                if search::uses_modseq(&criteria) {
                    self.enable_condstore();
                }
                self.cmd_search(&tag, uid, returns, charset.as_deref(), &criteria)
            }
            C::Sort { .. } | C::Thread { .. } if !self.settings.thread_sort => Completion::no_code(
                Code::Cannot,
                "SORT and THREAD are disabled by the system administrator.",
            ),
            C::Sort {
                uid,
                returns,
                program,
                charset,
                criteria,
            } => self.cmd_sort(&tag, uid, returns, &program, &charset, &criteria),
            C::Thread {
                uid,
                algorithm,
                charset,
                criteria,
            } => self.cmd_thread(uid, algorithm, &charset, &criteria),
            C::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => {
                // RFC 7162 §3.2.6: VANISHED only with UID FETCH, CHANGEDSINCE and QRESYNC.
                if vanished && !(uid && changed_since.is_some() && self.qresync) {
                    return Completion::bad(
                        "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled.",
                    );
                }
                if changed_since.is_some() || items.contains(&FetchItem::ModSeq) {
                    self.enable_condstore();
                }
                self.cmd_fetch(uid, &set, &items, changed_since, vanished)
            }
            C::Store {
                uid,
                set,
                unchanged_since,
                mode,
                silent,
                flags,
            } => {
                if unchanged_since.is_some() {
                    self.enable_condstore();
                }
                self.cmd_store(uid, &set, unchanged_since, mode, silent, &flags)
            }
            C::Copy { uid, set, mailbox } => self.cmd_copy(uid, &set, &mailbox, false),
            C::Move { uid, set, mailbox } => self.cmd_copy(uid, &set, &mailbox, true),
            C::Idle => self.cmd_idle(&tag),
            C::Notify(set) => self.cmd_notify(set.as_ref()),
            C::Compress { mechanism } => {
                if self.io.is_deflating() || self.start_deflate {
                    Completion::no_code(Code::CompressionActive, "Already compressing.")
                } else if mechanism != "DEFLATE" {
                    Completion::bad("Unknown compression mechanism.")
                } else {
                    // The OK goes out in clear; compression starts after it.
                    self.start_deflate = true;
                    Completion::ok("DEFLATE active.")
                }
            }
        }
    }

    /// Replaces SEARCHRES's `$` in a FETCH, STORE, COPY, MOVE or UID
    /// EXPUNGE by the saved messages that are still in the mailbox, as UIDs
    /// or sequence numbers as the command counts. When none are left, the
    /// command has nothing to do: its OK is returned (RFC 5182 §2.1: `$` may
    /// be empty, which is no error).
    fn replace_saved_set(&self, body: &mut CommandBody) -> Result<(), Completion> {
        use CommandBody as C;
        let (uid, set) = match body {
            C::Fetch { uid, set, .. }
            | C::Store { uid, set, .. }
            | C::Copy { uid, set, .. }
            | C::Move { uid, set, .. } => (*uid, set),
            C::Expunge { uids: Some(set) } => (true, set),
            _ => return Ok(()),
        };
        if !set.is_saved() {
            return Ok(());
        }
        let Some(view) = self.selected.as_ref() else {
            return Err(Completion::bad("No mailbox selected."));
        };
        let numbers: Vec<u32> = self
            .saved_result
            .iter()
            .filter_map(|&u| {
                let i = view.seq_of_uid(u)?;
                Some(if uid { u } else { i as u32 + 1 })
            })
            .collect();
        if numbers.is_empty() {
            return Err(Completion::ok("No messages in $; nothing done."));
        }
        *set = SequenceSet::of_sorted(&numbers);
        Ok(())
    }

    /// Sends the pending untagged responses, then the tagged one. They
    /// leave in one write when the session next waits for input.
    fn finish(&mut self, tag: &str, done: Completion) {
        self.flush_pending();
        self.send_raw(&done.encode(tag));
    }

    /// Queues every pending untagged response for sending.
    fn flush_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            self.send_untagged(&p);
        }
    }

    /// Queues bytes for the client. A failed write marks the connection
    /// broken (see `Io`) and the loop ends; nothing else is to be done here.
    fn send_raw(&mut self, data: &[u8]) {
        if !data.is_empty() {
            let _ = self.io.write_all(data);
        }
    }

    /// Queues one untagged response, `* ` and CRLF added.
    fn send_untagged(&mut self, data: &[u8]) {
        self.send_raw(b"* ");
        self.send_raw(data);
        self.send_raw(b"\r\n");
    }

    /// Picks up changes by other processes. `force` rescans even when the
    /// directory timestamps look unchanged (NOOP and CHECK on a network
    /// filesystem, IDLE after an event).
    fn refresh(&mut self, announce: Announce, force: bool) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        if !force && !view.looks_changed() {
            // Nothing new on disk, but expunges an earlier command had to
            // hold back (FETCH, STORE, SEARCH by number) are due now.
            if announce == Announce::All {
                view.report_expunges(&mut out);
            }
            self.pending.extend(out);
            // This session's own changes (STORE, APPEND, FETCH setting \Seen).
            self.report_context_updates();
            return;
        }
        if let Err(e) = view.refresh(announce, &mut out) {
            log::error!("rescanning {}: {e}", view.folder.path().display());
        }
        self.pending.extend(out);
        self.report_context_updates();
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
        self.end = Some(End::Disconnected);
        true
    }

    /// Whether NOOP and CHECK must rescan the selected folder whatever its timestamps say
    /// (see `SelectedView::must_poll`).
    fn must_poll(&self) -> bool {
        self.selected.as_ref().is_some_and(|v| v.must_poll())
    }

    /// Writes the selected folder's index when the view has learnt enough to make that
    /// worthwhile, after the client has its answer: it need not wait for the write.
    fn save_index_if_due(&mut self) {
        let due = self.selected.as_ref().is_some_and(|v| v.save_due());
        if !due && self.closing.is_none() {
            return;
        }
        let _ = self.io.flush();
        self.closing = None;
        if due && let Some(view) = self.selected.as_mut() {
            view.save_index();
        }
    }

    /// Turns CONDSTORE on for the rest of the session (RFC 7162 §3.1): the selected
    /// mailbox's unsolicited FETCH responses carry MODSEQ from now on.
    /// The first enabling command with a mailbox selected also says its HIGHESTMODSEQ
    /// (RFC 7162 §3.1), which the client may not have taken from SELECT.
    fn enable_condstore(&mut self) {
        let first = !self.condstore;
        self.condstore = true;
        if let Some(view) = self.selected.as_mut() {
            view.condstore = true;
            if first {
                let code = Code::HighestModSeq(view.highest_modseq());
                self.pending
                    .push(Completion::ok_code(code, "Highest").body());
            }
        }
    }

    /// Leaves the selected mailbox; its index is written after the answer (see `closing`).
    fn close_selected(&mut self) {
        if let Some(view) = self.selected.take() {
            self.closing = Some(view);
        }
    }

    /// Resolves a mailbox argument to a store name, or the `NO` to send.
    fn mailbox_name(&self, raw: &[u8]) -> Result<String, Completion> {
        names::from_wire(raw, self.utf8).ok_or_else(|| {
            Completion::no_code(Code::Cannot, "Invalid mailbox name (bad modified UTF-7).")
        })
    }

    fn selected_or_bad(&self) -> Result<(), Completion> {
        if self.selected.is_some() {
            Ok(())
        } else {
            Err(Completion::bad("No mailbox selected."))
        }
    }

    pub fn utf8(&self) -> bool {
        self.utf8
    }
}
