//! NOTIFY (RFC 5465): the client names mailboxes and events once, and the server tells
//! it of them between commands, without the client polling. The selected mailbox's
//! changes come as they do at a command (EXISTS, EXPUNGE or VANISHED, FETCH); another
//! mailbox's come as `STATUS` with the items its events call for; a mailbox created,
//! deleted or renamed as `LIST`, a subscription change as `LIST` with or without
//! `\Subscribed`.
//!
//! How changes are noticed is IDLE's way (idle.rs): inotify on the watched folders' `new/`
//! and `cur/` and on the maildir's root (folders and the subscription file live there),
//! and a full look every IMAP_IDLE_TIMEOUT seconds for what inotify cannot see (NFS);
//! without an inotify instance, a look every few seconds. A look compares each watched
//! mailbox's counts and HIGHESTMODSEQ with what was last said of it, so whoever made the
//! change (another session, Courier-IMAP, an MTA), it is told once.
//!
//! Notifications go out only between commands (RFC 5465 §3 allows any time); what a
//! command itself reports is as without NOTIFY.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::sys::inotify::Inotify;

use super::idle::{Unwatched, drain, watch};
use super::names::from_wire;
use super::view::Announce;
use super::{Completion, Session};
use crate::conn::wait_readable;
use crate::maildir::INBOX;
use crate::protocol::command::{
    FetchItem, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet, StatusItem,
};
use crate::protocol::response::Code;
use crate::protocol::sequence::SequenceSet;

/// How often a session without an inotify instance looks at the mailboxes it watches:
/// each look costs a STATUS of each, so less often than IDLE's timestamp check.
const NO_INOTIFY_TICK: Duration = Duration::from_secs(5);

/// The events mdimap can report; the others (annotations, metadata) are refused with
/// `NO [BADEVENT (...)]` naming these (RFC 5465 §5.9).
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";

/// Message events asked for a mailbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MessageEvents {
    new: bool,
    expunge: bool,
    flags: bool,
}

impl MessageEvents {
    fn of(events: &[NotifyEvent]) -> MessageEvents {
        let mut m = MessageEvents::default();
        for e in events {
            match e {
                NotifyEvent::MessageNew(_) => m.new = true,
                NotifyEvent::MessageExpunge => m.expunge = true,
                NotifyEvent::FlagChange => m.flags = true,
                _ => {}
            }
        }
        m
    }

    fn any(self) -> bool {
        self.new || self.expunge || self.flags
    }

    fn union(self, o: MessageEvents) -> MessageEvents {
        MessageEvents {
            new: self.new || o.new,
            expunge: self.expunge || o.expunge,
            flags: self.flags || o.flags,
        }
    }

    /// The STATUS items that tell these events (as Dovecot sends them, and imaptest's
    /// `notify` expects): MESSAGES for arrivals and expunges, UIDNEXT and UIDVALIDITY for
    /// arrivals, UIDVALIDITY and HIGHESTMODSEQ for flag changes (a flag change moves
    /// nothing else a STATUS can say, CONDSTORE enabled or not).
    fn status_items(self) -> Vec<StatusItem> {
        let mut items = Vec::new();
        if self.new || self.expunge {
            items.push(StatusItem::Messages);
        }
        if self.new {
            items.push(StatusItem::UidNext);
        }
        if self.new || self.flags {
            items.push(StatusItem::UidValidity);
        }
        if self.flags {
            items.push(StatusItem::HighestModSeq);
        }
        items
    }
}

/// What was last said (or found) of a watched mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    messages: u32,
    uidnext: u32,
    uidvalidity: u32,
    unseen: u32,
    highest: u64,
}

/// The session's NOTIFY state.
pub(super) struct Notifier {
    groups: Vec<NotifyGroup>,
    /// Events of the selected mailbox, and whether they wait for a command that allows
    /// expunges (SELECTED-DELAYED); `None` without a SELECTED group.
    selected: Option<(MessageEvents, bool, Vec<FetchItem>)>,
    /// Watched mailboxes besides the selected one, with what was last said of them.
    others: BTreeMap<String, (MessageEvents, Option<Snapshot>)>,
    /// The folders, when a group asked for MailboxName.
    names: Option<BTreeSet<String>>,
    /// The subscriptions, when a group asked for SubscriptionChange.
    subscriptions: Option<BTreeSet<String>>,
    inotify: Option<Inotify>,
    /// The selected mailbox when the watches were set.
    watched_selected: Option<String>,
    last_full: Instant,
}

impl Session<'_> {
    pub(super) fn cmd_notify(&mut self, set: Option<&NotifySet>) -> Completion {
        let Some(set) = set else {
            self.notifier = None;
            return Completion::ok("NOTIFY completed.");
        };
        let mut selected = None;
        for g in &set.groups {
            for e in &g.events {
                match e {
                    NotifyEvent::AnnotationChange
                    | NotifyEvent::MailboxMetadataChange
                    | NotifyEvent::ServerMetadataChange => {
                        return Completion::no_code(
                            Code::BadEvent(SUPPORTED.to_string()),
                            "Event not supported.",
                        );
                    }
                    // RFC 5465 §5.1: fetch attributes only for the selected mailbox.
                    NotifyEvent::MessageNew(items)
                        if !items.is_empty()
                            && !matches!(
                                g.filter,
                                NotifyFilter::Selected | NotifyFilter::SelectedDelayed
                            ) =>
                    {
                        return Completion::bad(
                            "MessageNew with fetch attributes is for the selected mailbox only.",
                        );
                    }
                    _ => {}
                }
            }
            if let NotifyFilter::Subtree(names) | NotifyFilter::Mailboxes(names) = &g.filter
                && names.iter().any(|n| from_wire(n, self.utf8).is_none())
            {
                return Completion::bad("Invalid mailbox name.");
            }
            if matches!(
                g.filter,
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed
            ) && selected.is_none()
            {
                let items = g
                    .events
                    .iter()
                    .find_map(|e| match e {
                        NotifyEvent::MessageNew(items) => Some(items.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let delayed = g.filter == NotifyFilter::SelectedDelayed;
                selected = Some((MessageEvents::of(&g.events), delayed, items));
            }
        }
        let wants = |f: fn(&NotifyEvent) -> bool| set.groups.iter().any(|g| g.events.iter().any(f));
        let (all, subscribed) = self.folders_and_subscriptions();
        let names = all
            .clone()
            .filter(|_| wants(|e| *e == NotifyEvent::MailboxName));
        let subscriptions = subscribed
            .clone()
            .filter(|_| wants(|e| *e == NotifyEvent::SubscriptionChange));
        let mut notifier = Notifier {
            groups: set.groups.clone(),
            selected,
            others: BTreeMap::new(),
            names,
            subscriptions,
            inotify: None,
            watched_selected: None,
            last_full: Instant::now(),
        };
        // What each watched mailbox is now; with STATUS, said at once (RFC 5465 §3.1).
        let targets = self.notify_targets(
            &notifier,
            &all.unwrap_or_default(),
            &subscribed.unwrap_or_default(),
        );
        for (name, events) in targets {
            let snapshot = self.snapshot(&name, events);
            if set.status {
                let items = events.status_items();
                if let Ok(line) = self.status_line(&name, &items) {
                    self.pending.push(line);
                }
            }
            notifier.others.insert(name, (events, snapshot));
        }
        self.notifier = Some(notifier);
        self.watch_for_notify();
        Completion::ok("NOTIFY completed.")
    }

    /// The folders and the subscriptions as they are now, each `None` when it cannot be
    /// read: what one look at the maildir's root learns.
    fn folders_and_subscriptions(&self) -> (Option<BTreeSet<String>>, Option<BTreeSet<String>>) {
        let all = self
            .store
            .folder_names()
            .ok()
            .map(|v| v.into_iter().collect());
        let subscribed = self
            .store
            .subscriptions()
            .ok()
            .map(|v| v.into_iter().collect());
        (all, subscribed)
    }

    /// The mailboxes other than the selected one whose message events the groups ask
    /// for, by store name, among the folders `all`.
    fn notify_targets(
        &self,
        n: &Notifier,
        all: &BTreeSet<String>,
        subscribed: &BTreeSet<String>,
    ) -> BTreeMap<String, MessageEvents> {
        let selected = self.selected.as_ref().map(|v| v.folder.name().to_string());
        let mut out: BTreeMap<String, MessageEvents> = BTreeMap::new();
        for g in &n.groups {
            let events = MessageEvents::of(&g.events);
            if !events.any() {
                continue;
            }
            for name in all {
                if Some(name) == selected.as_ref()
                    || !self.filter_matches(&g.filter, name, subscribed)
                {
                    continue;
                }
                let e = out.entry(name.clone()).or_default();
                *e = e.union(events);
            }
        }
        out
    }

    /// Whether `filter` covers the folder `name` (not the selected-mailbox filters).
    fn filter_matches(
        &self,
        filter: &NotifyFilter,
        name: &str,
        subscribed: &BTreeSet<String>,
    ) -> bool {
        let decoded = |names: &[Vec<u8>]| -> Vec<String> {
            names
                .iter()
                .filter_map(|n| from_wire(n, self.utf8))
                .collect()
        };
        match filter {
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed => false,
            NotifyFilter::Inboxes => name == INBOX,
            NotifyFilter::Personal => true,
            NotifyFilter::Subscribed => subscribed.contains(name),
            NotifyFilter::Mailboxes(names) => decoded(names).iter().any(|n| n == name),
            NotifyFilter::Subtree(names) => decoded(names).iter().any(|n| {
                name == n
                    || name
                        .strip_prefix(n.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            }),
        }
    }

    /// Whether any group that asks for mailbox or subscription events covers `name`, the
    /// SUBSCRIBED filter by the subscriptions `subscribed`.
    fn names_covered(
        &self,
        n: &Notifier,
        event: &NotifyEvent,
        name: &str,
        subscribed: &BTreeSet<String>,
    ) -> bool {
        let selected = self.selected.as_ref().map(|v| v.folder.name());
        n.groups.iter().any(|g| {
            g.events.contains(event)
                && match g.filter {
                    NotifyFilter::Selected | NotifyFilter::SelectedDelayed => {
                        selected == Some(name)
                    }
                    ref f => self.filter_matches(f, name, subscribed),
                }
        })
    }

    /// What folder `name` is now, as far as `events` need; `None` when it cannot be told
    /// (gone, or not readable by this user).
    fn snapshot(&mut self, name: &str, events: MessageEvents) -> Option<Snapshot> {
        let folder = self.folder(name).ok()?;
        let st = folder.status().ok()?;
        let highest = if events.flags {
            // As STATUS HIGHESTMODSEQ tells it.
            self.highest_modseq_of(&folder, st.highest_modseq)
                .unwrap_or(0)
        } else {
            0
        };
        Some(Snapshot {
            messages: st.messages,
            uidnext: st.uidnext,
            uidvalidity: st.uidvalidity,
            unseen: st.unseen,
            highest,
        })
    }

    /// Sets inotify watches on what the NOTIFY state covers: each watched folder's new/ and
    /// cur/, the selected one's, and the maildir's root.
    fn watch_for_notify(&mut self) {
        let selected = self.selected.as_ref().map(|v| v.folder.clone());
        let root = self.store.root().to_path_buf();
        let mut dirs = vec![root];
        if let Some(n) = &self.notifier {
            for name in n.others.keys() {
                if let Ok(f) = self.folder(name) {
                    dirs.extend(f.watch_dirs());
                }
            }
        }
        if let Some(f) = &selected {
            dirs.extend(f.watch_dirs());
        }
        let Some(n) = self.notifier.as_mut() else {
            return;
        };
        n.watched_selected = selected.as_ref().map(|f| f.name().to_string());
        n.inotify = match watch(&dirs) {
            Ok(ino) => Some(ino),
            Err(Unwatched::NoInstance(e)) => {
                log::info!("NOTIFY without inotify ({e}); looking every few seconds");
                None
            }
            Err(Unwatched::Dir(d, e)) => {
                log::info!(
                    "NOTIFY: cannot watch {}: {e}; looking every few seconds",
                    d.display()
                );
                None
            }
        };
    }

    /// Between commands with NOTIFY set: waits up to `timeout` for the client, telling it
    /// meanwhile of what changed. False when the time ran out.
    pub(super) fn wait_input_notifying(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.io.flush().is_err() || self.io.input_buffered() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let Some(n) = self.notifier.as_ref() else {
                return self.io.wait_input(deadline - now);
            };
            let tick = if n.inotify.is_some() {
                self.settings.idle_poll
            } else {
                self.settings.idle_poll.min(NO_INOTIFY_TICK)
            };
            let mut fds = vec![self.io.wire().input_fd()];
            if let Some(ino) = &n.inotify {
                fds.push(ino.as_fd().as_raw_fd());
            }
            let ready = wait_readable(&fds, tick.min(deadline - now));
            if ready.first().copied().unwrap_or(true) {
                return true;
            }
            let woken = ready.get(1).copied().unwrap_or(false);
            if woken && let Some(ino) = &n.inotify {
                drain(ino);
            }
            let due = n.last_full.elapsed() >= tick;
            if woken || due {
                self.notify_changes();
            }
        }
    }

    /// `LIST` with the attributes `added` for each name in `now` and not in `old`, and with
    /// `removed` for each in `old` and not in `now`, where a group asking for `event` covers
    /// it (its SUBSCRIBED filter by `subscribed`).
    fn report_list_changes(
        &mut self,
        n: &Notifier,
        event: &NotifyEvent,
        old: &BTreeSet<String>,
        now: &BTreeSet<String>,
        (added, removed): (&str, &str),
        subscribed: &BTreeSet<String>,
    ) {
        let changes = now
            .difference(old)
            .map(|name| (name, added))
            .chain(old.difference(now).map(|name| (name, removed)));
        for (name, attrs) in changes {
            if self.names_covered(n, event, name, subscribed) {
                self.push_list_line("LIST", attrs, name);
            }
        }
    }

    /// Looks at everything NOTIFY covers and sends what changed since it was last told.
    fn notify_changes(&mut self) {
        let Some(mut n) = self.notifier.take() else {
            return;
        };
        n.last_full = Instant::now();
        // The selected mailbox: as a command would report it.
        if let Some((events, delayed, items)) = n.selected.clone()
            && events.any()
            && self.selected.is_some()
        {
            let before = self.selected.as_ref().map_or(0, |v| v.max_uid());
            let announce = if delayed {
                Announce::NoExpunge
            } else {
                Announce::All
            };
            self.refresh(announce, true);
            self.flush_pending();
            let after = self.selected.as_ref().map_or(0, |v| v.max_uid());
            if events.new && !items.is_empty() && after > before {
                let set = SequenceSet::parse(format!("{}:{after}", before + 1).as_bytes());
                if let Some(set) = set {
                    let _ = self.cmd_fetch(true, &set, &items, None, false);
                }
            }
        }
        // Folders come and go, subscriptions change: one look at the root for both, and
        // for the targets below. The SUBSCRIBED filter covers what was subscribed before.
        let (all, subscribed) = self.folders_and_subscriptions();
        let (all, subscribed) = (all.unwrap_or_default(), subscribed.unwrap_or_default());
        let covering = n.subscriptions.clone().unwrap_or_default();
        let mut names_changed = false;
        if let Some(old) = n.names.take() {
            let kinds = ("", "\\NonExistent");
            self.report_list_changes(&n, &NotifyEvent::MailboxName, &old, &all, kinds, &covering);
            names_changed = all != old;
            n.names = Some(all.clone());
        }
        if let Some(old) = n.subscriptions.take() {
            let kinds = ("\\Subscribed", "");
            let event = NotifyEvent::SubscriptionChange;
            self.report_list_changes(&n, &event, &old, &subscribed, kinds, &covering);
            n.subscriptions = Some(subscribed.clone());
        }
        // The other mailboxes: a STATUS for each that changed as its events care.
        let targets = self.notify_targets(&n, &all, &subscribed);
        let mut others = BTreeMap::new();
        for (name, events) in targets {
            let last = n.others.get(&name).and_then(|(_, s)| *s);
            let now = self.snapshot(&name, events);
            if let (Some(was), Some(is)) = (last, now) {
                let counts = was.messages != is.messages || was.uidnext != is.uidnext;
                let flags = was.unseen != is.unseen || was.highest != is.highest;
                let renewed = was.uidvalidity != is.uidvalidity;
                if ((events.new || events.expunge) && counts) || (events.flags && flags) || renewed
                {
                    let items = events.status_items();
                    if let Ok(line) = self.status_line(&name, &items) {
                        self.pending.push(line);
                    }
                }
            }
            others.insert(name, (events, now));
        }
        let rewatch = names_changed
            || others.keys().ne(n.others.keys())
            || n.watched_selected.as_deref() != self.selected.as_ref().map(|v| v.folder.name());
        n.others = others;
        self.notifier = Some(n);
        if rewatch {
            self.watch_for_notify();
        }
        self.flush_pending();
    }
}
