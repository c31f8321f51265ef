//! SELECT, EXAMINE, CLOSE, UNSELECT and EXPUNGE: opening and leaving a
//! mailbox, and removing `\Deleted` messages.

use super::acl;
use super::trash::MagicTrash;
use super::view::{Announce, SelectedView};
use super::{Completion, Session, store_error};
use crate::maildir::acl::right;
use crate::maildir::{InfoFlags, QuotaUse, StoreError};
use crate::protocol::command::{Qresync, SelectParams};
use crate::protocol::response::Code;
use crate::protocol::sequence::SequenceSet;

impl Session<'_> {
    pub(super) fn cmd_select(
        &mut self,
        raw: &[u8],
        read_only: bool,
        params: &SelectParams,
    ) -> Completion {
        // RFC 7162 §3.2.5: the QRESYNC parameter only once QRESYNC is enabled.
        if params.qresync.is_some() && !self.qresync {
            return Completion::bad("QRESYNC is not enabled.");
        }
        // A SELECT, even a failed one, leaves the previous mailbox without
        // expunging it (RFC 3501 §6.3.1); with QRESYNC enabled, `OK [CLOSED]` says where
        // its responses end (RFC 7162 §3.2.11). Its index is written once this SELECT is
        // answered.
        if self.selected.is_some() && (self.qresync || self.rev2) {
            self.pending
                .push(Completion::ok_code(Code::Closed, "Previous mailbox closed.").body());
        }
        self.close_selected();
        if params.condstore {
            self.enable_condstore();
        }
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let folder = match self.folder(&name) {
            Ok(f) => f,
            Err(e) => return store_error(&e),
        };
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let rights = match self.require(&name, right::READ, verb) {
            Ok(r) => r,
            Err(d) => return d,
        };
        let read_only = read_only || acl::read_only_for(&rights) || folder.shared_read_only();
        // The same folder again: what the previous view learnt is written first, for this
        // one to open.
        if self
            .closing
            .as_ref()
            .is_some_and(|v| v.folder.path() == folder.path())
        {
            self.closing = None;
        }
        let mut view = match SelectedView::open(folder, read_only) {
            Ok(v) => v,
            Err(e) => return store_error(&e),
        };
        view.rights = rights;
        view.condstore = self.condstore;
        view.qresync = self.qresync;
        view.rev2 = self.rev2;
        self.pending.push(view.flags_response());
        self.pending
            .push(format!("{} EXISTS", view.exists()).into_bytes());
        if self.rev2 {
            // RFC 9051 §6.3.2: the mailbox's name as LIST gives it, instead of RECENT.
            let line = self.list_line("LIST", "", &name);
            self.pending.push(line);
        } else {
            self.pending
                .push(format!("{} RECENT", view.recent_count()).into_bytes());
        }
        self.pending.push(
            Completion::ok_code(
                Code::PermanentFlags(view.permanent_flags(self.settings.keywords)),
                "Limited",
            )
            .body(),
        );
        // RFC 9051 dropped `[UNSEEN n]` (a client asks SEARCH UNSEEN).
        if let Some(n) = view.first_unseen().filter(|_| !self.rev2) {
            self.pending
                .push(Completion::ok_code(Code::Unseen(n), "First unseen.").body());
        }
        self.pending
            .push(Completion::ok_code(Code::UidValidity(view.uidvalidity), "UIDs valid.").body());
        self.pending
            .push(Completion::ok_code(Code::UidNext(view.uidnext), "Predicted next UID.").body());
        // RFC 7162 §3.1.2.1: with every SELECT and EXAMINE, CONDSTORE enabled or not.
        self.pending.push(
            Completion::ok_code(Code::HighestModSeq(view.highest_modseq()), "Highest").body(),
        );
        self.pending.push(acl::myrights_code(&view.rights).body());
        // RFC 8474 §4.2. A folder whose id cannot be recorded (one shared read-only, whose
        // directory this user may not write) is answered without the code, which the RFC
        // allows for a server that has no id to give.
        match view.folder.mailbox_id() {
            Ok(id) => self
                .pending
                .push(Completion::ok_code(Code::MailboxId(id), "Ok").body()),
            Err(e) => log::info!("no MAILBOXID for {name}: {e}"),
        }
        if let Some(q) = &params.qresync
            && q.uidvalidity == view.uidvalidity
        {
            resync(&mut view, q, &mut self.pending);
        }
        let writable = !view.read_only;
        self.selected = Some(view);
        if writable {
            Completion::ok_code(Code::ReadWrite, "SELECT completed.")
        } else {
            Completion::ok_code(Code::ReadOnly, format!("{verb} completed."))
        }
    }

    pub(super) fn cmd_close(&mut self) -> Completion {
        if let Err(d) = self.selected_or_bad() {
            return d;
        }
        // CLOSE expunges silently, and not at all when read-only or without
        // the expunge right (Courier's way).
        if let Some(view) = self.selected.as_mut()
            && !view.read_only
            && view.rights.has(right::EXPUNGE)
        {
            // What is \Deleted on disk now, whoever set it (RFC 3501 §6.4.2).
            let mut discard = Vec::new();
            let mut trash = MagicTrash::for_folder(
                self.settings.magic_trash,
                &self.store,
                &self.settings.trash,
                &view.folder,
            );
            let result = view.refresh(Announce::All, &mut discard).and_then(|()| {
                let (_, failure) = expunge_deleted(view, None, trash.as_mut());
                failure.map_or(Ok(()), Err)
            });
            if let Err(e) = result {
                self.close_selected();
                return store_error(&e);
            }
        }
        self.close_selected();
        Completion::ok("CLOSE completed.")
    }

    pub(super) fn cmd_unselect(&mut self) -> Completion {
        if let Err(d) = self.selected_or_bad() {
            return d;
        }
        self.close_selected();
        Completion::ok("UNSELECT completed.")
    }

    /// EXPUNGE, and UID EXPUNGE (RFC 4315) when `uids` is given: only
    /// messages that are `\Deleted` and, for UID EXPUNGE, in the set.
    pub(super) fn cmd_expunge(&mut self, uids: Option<&SequenceSet>) -> Completion {
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        if !view.rights.has(right::EXPUNGE) {
            return acl::denied("EXPUNGE", "current mailbox", "e");
        }
        if view.read_only {
            return Completion::no_code(Code::ReadOnly, "Mailbox is read-only.");
        }
        // Start from the current state on disk, so flags set by another
        // session count and messages already gone are reported, not retried.
        let mut out = Vec::new();
        if let Err(e) = view.refresh(Announce::All, &mut out) {
            return store_error(&e);
        }
        let mut trash = MagicTrash::for_folder(
            self.settings.magic_trash,
            &self.store,
            &self.settings.trash,
            &view.folder,
        );
        let (removed, failure) = expunge_deleted(view, uids, trash.as_mut());
        view.remove_uids(&removed, &mut out);
        let (condstore, highest) = (view.condstore, view.highest_modseq());
        self.pending.extend(out);
        match failure {
            Some(e) => store_error(&e),
            // RFC 7162 §3.2.7 (and §3.1.10): the client's HIGHESTMODSEQ moves on with it.
            None if condstore => {
                Completion::ok_code(Code::HighestModSeq(highest), "EXPUNGE completed.")
            }
            None => Completion::ok("EXPUNGE completed."),
        }
    }
}

/// What a client that last knew the mailbox as `q` says must change (RFC 7162 §3.2.5):
/// `VANISHED (EARLIER)` for the UIDs it knew that are gone, then `FETCH (UID FLAGS MODSEQ)`
/// for every message it knew, or that arrived after the last UID it knew, whose MODSEQ is
/// above its own.
fn resync(view: &mut SelectedView, q: &Qresync, out: &mut Vec<Vec<u8>>) {
    let star = view.last_uid_given();
    let known = q.known_uids.as_ref().map(|set| set.normalized(star));
    let gone = match &known {
        Some(ranges) => view.vanished_among(ranges.iter()),
        None => view.vanished_among(std::iter::once((1, star))),
    };
    // Messages above every UID it knew arrived since: it hears of those too.
    let beyond = known
        .as_ref()
        .and_then(|k| k.iter().map(|(_, hi)| hi).max())
        .unwrap_or(0);
    if !gone.is_empty() {
        out.push(format!("VANISHED (EARLIER) {gone}").into_bytes());
    }
    for i in 0..view.len() {
        if view.is_expunged(i) {
            continue;
        }
        let uid = view.uid(i);
        if uid <= beyond && known.as_ref().is_some_and(|k| !k.contains(uid)) {
            continue;
        }
        if view.modseq(i) <= q.modseq {
            continue;
        }
        // QRESYNC is enabled, and CONDSTORE with it: UID and MODSEQ are in.
        out.push(view.flags_fetch_line(i, true));
    }
}

/// Unlinks the `\Deleted` messages (those in `uids` too, for UID EXPUNGE), or with the magic
/// `trash` moves them there (but those this session COPYed elsewhere), each by the name it has
/// now: a file renamed meanwhile by a flag change in another session is still found, and one
/// whose `\Deleted` was taken off meanwhile is kept. What the quota counted of them (normally
/// nothing: Courier counts `\Deleted` messages out already), less what a counted trash counts
/// of them now, is recorded as one change; when the folder is another account's, what left
/// it goes to its owner's quota and what arrived in the trash to this user's. Returns the UIDs
/// removed and the last failure.
fn expunge_deleted(
    view: &mut SelectedView,
    uids: Option<&SequenceSet>,
    mut trash: Option<&mut MagicTrash<'_>>,
) -> (Vec<u32>, Option<StoreError>) {
    let ranges = uids.map(|set| set.normalized(view.max_uid()));
    let victims: Vec<usize> = (0..view.len())
        .filter(|&i| view.has_flag(i, b'T') && !view.is_expunged(i))
        .filter(|&i| ranges.as_ref().is_none_or(|r| r.contains(view.uid(i))))
        .collect();
    let mut removed = Vec::new();
    let mut failure = None;
    let mut freed = QuotaUse::default();
    let mut arrived = QuotaUse::default();
    for i in victims {
        let uid = view.uid(i);
        let current = view
            .filename(i)
            .and_then(|known| view.folder.current_name(&known));
        let name = match current {
            Ok(Some(name)) if InfoFlags::from_filename(&name).has(b'T') => name,
            // Undeleted by someone else meanwhile, or already gone (the
            // next rescan reports that).
            Ok(_) => continue,
            Err(e) => {
                failure = Some(e);
                continue;
            }
        };
        if let Some(trash) = trash.as_deref_mut()
            && !view.copied.contains(&uid)
        {
            match trash.take(&view.folder, &name) {
                Ok(moved) => {
                    if let Some(moved) = moved {
                        freed += moved.left;
                        arrived += moved.arrived;
                    }
                    removed.push(uid);
                    continue;
                }
                // Removed below instead, as Courier does when its rename fails.
                Err(e) if trash.removes_what_stays() => {
                    log::warn!("magic trash: {e}; the message is removed instead");
                }
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            }
        }
        let charge = match view.folder.quota_charge(&name) {
            Ok(charge) => charge,
            Err(e) => {
                failure = Some(e);
                continue;
            }
        };
        match view.folder.expunge(&name) {
            Ok(true) => {
                removed.push(uid);
                freed += charge;
            }
            // Kept in a shared folder, without \Deleted (its sticky bit): the next rescan
            // says so.
            Ok(false) => {}
            Err(e) => failure = Some(e),
        }
    }
    let source = view.folder.quota();
    match trash.map(|t| t.quota()) {
        Some(into) if source == Some(into) => into.record(arrived + -freed),
        into => {
            if let Some(source) = source {
                source.record_removal(freed);
            }
            if let Some(into) = into {
                into.record(arrived);
            }
        }
    }
    (removed, failure)
}
