//! Courier's trash conventions beyond the name (spec/maildir.md §2.2; courier-imap
//! `imap/imapd.c` `emptytrash` and `do_expunge`, `maildir/maildirpurgetmp.c`):
//!
//! - IMAP_EMPTYTRASH: at the start of a session and after LOGOUT has been answered (not when
//!   the connection drops or times out), each listed folder loses the messages whose status
//!   change time is more than its number of days old. The owner's housekeeping: no access
//!   control list is consulted.
//! - IMAP_MOVE_EXPUNGE_TO_TRASH (the "magic trash", `XMAGICTRASH`): EXPUNGE and CLOSE move
//!   `\Deleted` messages into the trash folder (made if missing) instead of removing them,
//!   keeping the file (its name and date) but dropping `\Deleted` and `\Draft`, as Courier
//!   does; its keywords stay behind. Not in the trash folder itself, and not for messages this
//!   session has COPYed elsewhere (the client has its copy). Also the owner's housekeeping:
//!   the insert right on the trash is not asked for.
//!
//!   In shared folders, as Courier's `do_expunge`: a filesystem-shared folder's messages are
//!   removed, never moved (`maildir_unlinksharedmsg`; one its sticky bit keeps stays where
//!   it is, see `maildir/sharable.rs`). Another account's folder (`#shared.`) is expunged
//!   into this user's own trash, as from the user's own folders (Courier renames the file
//!   into `./.Trash`); a message that cannot be moved there (another file system, say) is
//!   removed instead, as Courier removes it when its rename fails.
//!
//! Both record in `maildirsize` what they take from (or, with a counted trash such as
//! `Deleted Items`, add to) the quota, one line per command; what leaves another account's
//! folder is recorded in its owner's `maildirsize`, what arrives in the trash in this
//! user's. This module decides when; the store does the moving and removing.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Session;
use super::shared::{Namespace, namespace_of};
use crate::maildir::{Folder, InfoFlags, Quota, QuotaUse, Store, StoreError, canonical_name};

/// Seconds in one of IMAP_EMPTYTRASH's days.
const DAY_SECS: i64 = 24 * 60 * 60;

/// The trash the magic trash moves expunged messages into.
pub(super) struct MagicTrash<'a> {
    store: &'a Store,
    /// The trash folder's IMAP name (`INBOX.Trash`).
    trash: &'a str,
    /// The trash folder, once opened (or made).
    opened: Option<Folder>,
    /// Expunging in another account's folder: a message that cannot be moved is removed.
    removes_what_stays: bool,
}

/// What moving one message into the trash did to the quota's count.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Moved {
    /// What the source folder counted of it (nothing for a `\Deleted` message, the usual case).
    pub left: QuotaUse,
    /// What the trash counts of it now (nothing in `.Trash`, which is never counted).
    pub arrived: QuotaUse,
}

impl<'a> MagicTrash<'a> {
    /// The magic trash for expunging in `selected`, when IMAP_MOVE_EXPUNGE_TO_TRASH is on and
    /// `selected` is neither the trash itself nor a filesystem-shared folder (see the module
    /// comment).
    pub(super) fn for_folder(
        on: bool,
        store: &'a Store,
        trash: &'a str,
        selected: &Folder,
    ) -> Option<MagicTrash<'a>> {
        let is_trash = canonical_name(trash).is_ok_and(|t| t == selected.name());
        let namespace = namespace_of(selected.name());
        (on && !is_trash && namespace != Namespace::Filesystem).then_some(MagicTrash {
            store,
            trash,
            opened: None,
            removes_what_stays: namespace == Namespace::Virtual,
        })
    }

    /// The quota the trash's messages count toward: this user's.
    pub(super) fn quota(&self) -> &'a Quota {
        self.store.quota()
    }

    /// Whether a message [`MagicTrash::take`] failed to move is removed instead (in
    /// another account's folder, as Courier does) rather than kept and the failure reported.
    pub(super) fn removes_what_stays(&self) -> bool {
        self.removes_what_stays
    }

    /// Moves cur/`name` of `folder` into the trash without `\Deleted` and `\Draft`; `None`
    /// when the message is gone already.
    pub(super) fn take(
        &mut self,
        folder: &Folder,
        name: &str,
    ) -> Result<Option<Moved>, StoreError> {
        let left = folder.quota_charge(name)?;
        let mut flags = InfoFlags::from_filename(name);
        flags.set(b'T', false);
        flags.set(b'D', false);
        let moved = match folder.move_to_folder(name, self.trash_folder()?, &flags) {
            // Deleted meanwhile (by a client, or by another program): as Courier, make it.
            Err(StoreError::NonExistent(_)) => {
                self.opened = None;
                self.create()?;
                folder.move_to_folder(name, self.trash_folder()?, &flags)?
            }
            other => other?,
        };
        let Some(moved) = moved else {
            return Ok(None);
        };
        let arrived = self
            .trash_folder()?
            .quota_charge(&moved)
            .unwrap_or_default();
        Ok(Some(Moved { left, arrived }))
    }

    /// The trash folder, made first if it does not exist.
    fn trash_folder(&mut self) -> Result<&Folder, StoreError> {
        if self.opened.is_none() {
            let folder = match self.store.folder(self.trash) {
                Err(StoreError::NonExistent(_)) => {
                    self.create()?;
                    self.store.folder(self.trash)?
                }
                other => other?,
            };
            self.opened = Some(folder);
        }
        self.opened
            .as_ref()
            .ok_or_else(|| StoreError::NonExistent(self.trash.to_string()))
    }

    fn create(&self) -> Result<(), StoreError> {
        match self.store.create_folder(self.trash) {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The clock IMAP_EMPTYTRASH measures ages by, in seconds since the epoch, moved by
/// `offset` seconds (only tests move it; see `SessionSettings::clock_offset`).
fn now_secs(offset: i64) -> i64 {
    let now = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    now.saturating_add(offset)
}

impl Session<'_> {
    /// IMAP_EMPTYTRASH: purges each listed folder that exists. Failures are logged: they must
    /// not keep the user out, nor hold up the end of the session.
    pub(super) fn empty_trash(&self) {
        if self.settings.purges.is_empty() {
            return;
        }
        let now = now_secs(self.settings.clock_offset);
        let mut freed = QuotaUse::default();
        for (name, days) in &self.settings.purges {
            let folder = match self.store.folder(name) {
                Ok(folder) => folder,
                Err(StoreError::NonExistent(_) | StoreError::InvalidName(_)) => continue,
                Err(e) => {
                    log::warn!("IMAP_EMPTYTRASH: cannot open {name}: {e}");
                    continue;
                }
            };
            let max_age = i64::from(*days).saturating_mul(DAY_SECS);
            match folder.purge(max_age, now) {
                Ok(charge) => freed += charge,
                Err(e) => log::warn!("IMAP_EMPTYTRASH: purging {name}: {e}"),
            }
        }
        self.store.quota().record_removal(freed);
    }
}
