//! Shared folders in a session (spec/courier-files.md §5): the two namespaces Courier-IMAP
//! offers beside INBOX, answered as Courier-IMAP 5 answers them.
//!
//! - `#shared.<account>.<folder>`, virtual shared folders: the folders of the accounts in
//!   Courier's index (`maildir::sharedindex`; `#shared.<account>` is the account's INBOX,
//!   and groups of the index add a level). The account's maildir is opened as a store
//!   root of its own, by the session's own uid and gid (all virtual accounts share one,
//!   Courier's rule; a maildir the session cannot read is refused with `NO [NOPERM]` and
//!   logged), and the folder's access control list, as its owner wrote it, says what this
//!   user may do there: LIST and LSUB show it only with `l`, and every command checks its
//!   right as for the user's own folders. UIDs are the owner's (the folder's own UID
//!   database). The account's own maildir is never listed there, nor is one the index
//!   names but that does not exist. Off without an index, and for accounts with Courier's
//!   `disableshared` option.
//! - `shared.<name>.<folder>`, filesystem-shared folders (`maildir::sharable`): the
//!   folders of the sharable maildirs `shared-maildirs` names, readable (and writable) as
//!   far as their file permissions allow. Any command that opens one subscribes to it
//!   first (makes its local copy), as Courier does; DELETE and UNSUBSCRIBE unsubscribe.
//!   Their rights are Courier's fixed ones: `l r s w` for anyone, and `i x t e` too once
//!   subscribed; a folder whose sharable `cur/` this user may not write is selected
//!   read-only.
//!
//! LIST shows the virtual namespace only for patterns that start with `#shared.` and the
//! filesystem one with every other pattern; LSUB shows subscriptions to `#shared.` names
//! only for patterns that start with `#`, and the subscribed filesystem-shared folders
//! (their local copies) with every other pattern. NAMESPACE offers each namespace when it
//! can lead somewhere: `#shared.` with an index file, `shared.` with `shared-maildirs`.
//!
//! Owns the mapping from these names to the store's folders and rights; must not touch a
//! file itself (the store does) nor decide anything for names of the user's own maildir.
//! CREATE, RENAME and DELETE (other than unsubscribing) of other accounts' folders are
//! refused: their owners manage them.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Completion, Session, store_error};
use crate::maildir::sharedindex::{SHARED_PREFIX, SharedName};
use crate::maildir::{Acl, Folder, Rights, Store, StoreError};
use crate::protocol::response::Code;

/// The filesystem-shared namespace, with its delimiter.
pub(super) const FS_PREFIX: &str = "shared.";
/// Courier's rights on a subscribed filesystem-shared folder (and on one that is not:
/// [`FS_UNSUBSCRIBED`]), for `anyone`.
const FS_SUBSCRIBED: &[u8] = b"eilrstwx";
const FS_UNSUBSCRIBED: &[u8] = b"lrsw";
/// Courier's rights on a level of a shared namespace.
const LEVEL: &[u8] = b"l";

/// Where a mailbox name belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Namespace {
    Own,
    Virtual,
    Filesystem,
}

/// The namespace of `name` (Courier compares the prefixes byte for byte).
pub(super) fn namespace_of(name: &str) -> Namespace {
    let top = name.split('.').next().unwrap_or(name);
    if top == SHARED_PREFIX.trim_end_matches('.') {
        Namespace::Virtual
    } else if top == FS_PREFIX.trim_end_matches('.') {
        Namespace::Filesystem
    } else {
        Namespace::Own
    }
}

/// Whether `name` is in one of the shared namespaces.
pub(super) fn is_shared(name: &str) -> bool {
    namespace_of(name) != Namespace::Own
}

/// The spelling of a shared name the session compares: without one trailing delimiter (a
/// client naming a hierarchy level).
pub(super) fn canonical(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// The part of a LIST pattern before its first wildcard: every name the pattern matches
/// starts with it.
fn literal_prefix(pattern: &str) -> &str {
    let end = pattern.find(['*', '%']).unwrap_or(pattern.len());
    &pattern[..end]
}

/// Whether names at or below `prefix` (a level of the hierarchy) can start with `literal`.
fn may_hold(prefix: &str, literal: &str) -> bool {
    prefix.starts_with(literal)
        || literal
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// `#shared.bob.Work` for Bob's `INBOX.Work` under the prefix `#shared.bob`.
fn shown_name(prefix: &str, folder: &str) -> String {
    format!("{prefix}{}", folder.strip_prefix("INBOX").unwrap_or(folder))
}

/// A virtual shared name, resolved.
pub(super) enum Virtual {
    /// A folder of another account: its store, its name there, and who its list calls
    /// `owner`.
    Folder {
        store: Store,
        folder: String,
        owner: Vec<u8>,
    },
    /// A group of the index.
    Level,
}

/// A store error for a maildir the session may not read, in words for the administrator.
fn unreadable(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::io(
        path,
        std::io::Error::new(
            e.kind(),
            format!(
                "{e}: the maildirs of the shared folder index must be readable by the uid \
                 and gid every session runs as (give all virtual accounts one uid and gid, \
                 or the index's accounts group permissions)"
            ),
        ),
    )
}

impl Session<'_> {
    /// The maildir of another account of the index, as a store of its own; `NonExistent`
    /// for one that is missing or is this user's own (Courier suppresses both).
    fn open_account(&self, maildir: &Path) -> Result<Store, StoreError> {
        let gone = || StoreError::NonExistent(maildir.display().to_string());
        let meta = match std::fs::metadata(maildir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(unreadable(maildir, e));
            }
            Err(_) => return Err(gone()),
        };
        if let Ok(own) = std::fs::metadata(self.store.root())
            && (own.dev(), own.ino()) == (meta.dev(), meta.ino())
        {
            return Err(gone());
        }
        if let Err(e) = std::fs::read_dir(maildir) {
            return Err(if e.kind() == std::io::ErrorKind::PermissionDenied {
                unreadable(maildir, e)
            } else {
                gone()
            });
        }
        Store::open(maildir)
    }

    /// What the virtual shared name `name` stands for.
    pub(super) fn virtual_place(&self, name: &str) -> Result<Virtual, StoreError> {
        let name = canonical(name);
        let gone = || StoreError::NonExistent(name.to_string());
        let (Some(index), Some(rest)) = (
            self.settings.shared_index.as_ref(),
            name.strip_prefix(SHARED_PREFIX),
        ) else {
            return Err(gone());
        };
        match index.find(rest) {
            SharedName::Folder(found) => {
                let store = self.open_account(&found.maildir)?;
                Ok(Virtual::Folder {
                    store,
                    folder: found.folder,
                    owner: found.owner,
                })
            }
            SharedName::Level => Ok(Virtual::Level),
            SharedName::Unknown => Err(gone()),
        }
    }

    /// The folder any mailbox name stands for: the user's own, another account's
    /// (`#shared.`), or a filesystem-shared folder's local copy (`shared.`), subscribed
    /// first as Courier does. Shared folders answer to the name the client used.
    pub(super) fn folder(&self, name: &str) -> Result<Folder, StoreError> {
        match namespace_of(name) {
            Namespace::Own => self.store.folder(name),
            Namespace::Virtual => match self.virtual_place(name)? {
                Virtual::Folder { store, folder, .. } => {
                    Ok(store.folder(&folder)?.shown_as(canonical(name)))
                }
                Virtual::Level => Err(StoreError::NonExistent(name.to_string())),
            },
            Namespace::Filesystem => {
                let name = canonical(name);
                let rest = name
                    .strip_prefix(FS_PREFIX)
                    .ok_or_else(|| StoreError::NonExistent(name.to_string()))?;
                self.store.subscribe_shared(rest)?;
                self.store.shared_folder(rest, name)
            }
        }
    }

    /// This user's rights on a shared name (see the module comment).
    pub(super) fn shared_rights(&self, name: &str) -> Result<Rights, StoreError> {
        let fixed = |letters: &[u8]| Rights::parse(letters).unwrap_or_default();
        match namespace_of(name) {
            Namespace::Own => Err(StoreError::InvalidName(name.to_string())),
            Namespace::Virtual => match self.virtual_place(name)? {
                Virtual::Folder {
                    store,
                    folder,
                    owner,
                } => {
                    let acl = store.acl(&folder)?;
                    Ok(acl.rights_of(&self.settings.accessor, &owner, true))
                }
                Virtual::Level => Ok(fixed(LEVEL)),
            },
            Namespace::Filesystem => {
                let name = canonical(name);
                let rest = name.strip_prefix(FS_PREFIX).unwrap_or("");
                if !rest.contains('.') {
                    return Ok(fixed(LEVEL));
                }
                let subscribed = self.store.shared_folder(rest, name).is_ok();
                Ok(fixed(if subscribed {
                    FS_SUBSCRIBED
                } else {
                    FS_UNSUBSCRIBED
                }))
            }
        }
    }

    /// The list, store, folder and owner identifier GETACL, SETACL and DELETEACL work on
    /// for a shared name: another account's folder, whose list is its owner's. A
    /// filesystem-shared folder has Courier's fixed list, which cannot be changed.
    pub(super) fn shared_acl_target(
        &self,
        name: &str,
    ) -> Result<(Store, String, Vec<u8>), Completion> {
        match self.virtual_place(name) {
            Ok(Virtual::Folder {
                store,
                folder,
                owner,
            }) => Ok((store, folder, owner)),
            Ok(Virtual::Level) => Err(store_error(&StoreError::NonExistent(name.to_string()))),
            Err(e) => Err(store_error(&e)),
        }
    }

    /// Courier's fixed list of a filesystem-shared name (what GETACL would show).
    pub(super) fn shared_fixed_acl(&self, name: &str) -> Result<Acl, StoreError> {
        let rights = self.shared_rights(name)?;
        let mut acl = Acl::default();
        acl.set(b"anyone", rights);
        Ok(acl)
    }

    /// The folders LIST looks at for `pattern` (already matched by the caller), each
    /// shown only where this user has `l`: `#shared.` patterns see the virtual shared
    /// folders, all others the user's own folders and the filesystem-shared ones.
    pub(super) fn listed_folders(&mut self, pattern: &str) -> Result<Vec<String>, StoreError> {
        if pattern.starts_with(SHARED_PREFIX) {
            return Ok(self.virtual_folders(pattern));
        }
        let own = self.store.folder_names()?;
        let mut names: Vec<String> = own.into_iter().filter(|n| self.may_list(n)).collect();
        match self.store.sharable_folders() {
            Ok(shared) => names.extend(shared.into_iter().map(|n| format!("{FS_PREFIX}{n}"))),
            Err(e) => log::warn!("listing the sharable maildirs: {e}"),
        }
        Ok(names)
    }

    /// The subscriptions LSUB looks at for `pattern`: `#shared.` ones only for patterns
    /// starting with `#`, the filesystem-shared folders subscribed to (their local copies)
    /// only for the others; each shown only where this user has `l`.
    pub(super) fn subscribed_folders(&mut self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let wants_hash = pattern.starts_with('#');
        let mut names: Vec<String> = self
            .store
            .subscriptions()?
            .iter()
            .map(|s| super::names::fold_inbox(s))
            .filter(|n| n.starts_with('#') == wants_hash)
            .collect();
        if !wants_hash {
            match self.store.subscribed_shared() {
                Ok(shared) => names.extend(shared.into_iter().map(|n| format!("{FS_PREFIX}{n}"))),
                Err(e) => log::warn!("listing the subscribed shared folders: {e}"),
            }
        }
        names.retain(|n| self.may_list(n));
        Ok(names)
    }

    /// Every folder of every account of the index that this user may see (`l`) and that
    /// names below `pattern`'s fixed start could match. Accounts whose maildir cannot be
    /// read are left out, as Courier leaves them out.
    fn virtual_folders(&mut self, pattern: &str) -> Vec<String> {
        let Some(index) = self.settings.shared_index.clone() else {
            return Vec::new();
        };
        let literal = literal_prefix(pattern);
        let (accounts, _levels) = index.accounts(&|prefix| may_hold(prefix, literal));
        let mut names = Vec::new();
        for account in accounts {
            let store = match self.open_account(&account.maildir) {
                Ok(store) => store,
                // Left out silently, as Courier leaves them out (the index may be shared
                // by servers that each see some accounts); opening one says why.
                Err(e) => {
                    log::debug!("shared folders of {}: {e}", account.prefix);
                    continue;
                }
            };
            let folders = match store.folder_names() {
                Ok(folders) => folders,
                Err(e) => {
                    log::warn!("shared folders of {}: {e}", account.prefix);
                    continue;
                }
            };
            for folder in folders {
                let shown = shown_name(&account.prefix, &folder);
                if !shown.starts_with(literal) {
                    continue;
                }
                let visible = store.acl(&folder).is_ok_and(|acl| {
                    acl.rights_of(&self.settings.accessor, &account.owner, true)
                        .has(crate::maildir::acl::right::LOOKUP)
                });
                if visible {
                    names.push(shown);
                }
            }
        }
        names
    }

    /// SUBSCRIBE and UNSUBSCRIBE of a filesystem-shared name make and remove its local
    /// copy (Courier's answers); `None` for every other name, which goes into
    /// `courierimapsubscribed` as usual.
    pub(super) fn subscribe_shared(&mut self, name: &str, subscribe: bool) -> Option<Completion> {
        if namespace_of(name) != Namespace::Filesystem {
            return None;
        }
        let rest = canonical(name).strip_prefix(FS_PREFIX).unwrap_or("");
        if !rest.contains('.') {
            // A level: Courier answers as if it were done.
            return Some(Completion::ok("Already subscribed."));
        }
        if !subscribe {
            self.leave_if_selected(name);
        }
        let done = if subscribe {
            self.store.subscribe_shared(rest)
        } else {
            self.store.unsubscribe_shared(rest)
        };
        Some(match (done, subscribe) {
            (Ok(true), true) => Completion::ok("SUBSCRIBE completed."),
            (Ok(false), true) => Completion::ok("Already subscribed."),
            (Ok(true), false) => Completion::ok("UNSUBSCRIBE completed."),
            (Ok(false), false) => Completion::ok("Already unsubscribed."),
            (Err(e), _) => store_error(&e),
        })
    }

    /// DELETE of a shared name: a filesystem-shared folder is unsubscribed (Courier's way);
    /// another account's folder is not this user's to delete. `None` for the user's own.
    pub(super) fn delete_shared(&mut self, name: &str) -> Option<Completion> {
        match namespace_of(name) {
            Namespace::Own => None,
            Namespace::Virtual => Some(not_here("deleted")),
            Namespace::Filesystem => {
                let rest = canonical(name).strip_prefix(FS_PREFIX).unwrap_or("");
                if !rest.contains('.') {
                    return Some(store_error(&StoreError::NonExistent(name.to_string())));
                }
                self.leave_if_selected(name);
                Some(match self.store.unsubscribe_shared(rest) {
                    Ok(_) => Completion::ok("UNSUBSCRIBEd a shared folder."),
                    Err(e) => store_error(&e),
                })
            }
        }
    }

    /// CREATE and RENAME cannot make or move shared folders.
    pub(super) fn refuse_shared(&self, names: &[&str], verb: &str) -> Option<Completion> {
        names.iter().any(|n| is_shared(n)).then(|| not_here(verb))
    }

    /// A selected shared folder about to lose its local copy is closed first.
    fn leave_if_selected(&mut self, name: &str) {
        if self
            .selected
            .as_ref()
            .is_some_and(|v| v.folder.name() == canonical(name))
        {
            self.selected = None;
        }
    }

    /// The NAMESPACE response: the user's own, and each shared namespace that can lead
    /// somewhere (Courier sends both always).
    pub(super) fn namespace_line(&self) -> Vec<u8> {
        let mut shared = Vec::new();
        if self
            .settings
            .shared_index
            .as_ref()
            .is_some_and(|index| index.exists())
        {
            shared.push(format!("(\"{SHARED_PREFIX}\" \".\")"));
        }
        if self.store.has_sharable_maildirs() {
            shared.push(format!("(\"{FS_PREFIX}\" \".\")"));
        }
        let others = if shared.is_empty() {
            "NIL".to_string()
        } else {
            format!("({})", shared.concat())
        };
        format!("NAMESPACE ((\"INBOX.\" \".\")) NIL {others}").into_bytes()
    }
}

/// The refusal of CREATE, RENAME and DELETE of other accounts' folders.
fn not_here(verb: &str) -> Completion {
    Completion::no_code(
        Code::Cannot,
        format!("Shared folders are not {verb} here; their owner manages them."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_namespaces() {
        assert_eq!(namespace_of("#shared.bob.Work"), Namespace::Virtual);
        assert_eq!(namespace_of("#shared"), Namespace::Virtual);
        assert_eq!(namespace_of("shared.firm.golf"), Namespace::Filesystem);
        assert_eq!(namespace_of("shared"), Namespace::Filesystem);
        assert_eq!(namespace_of("INBOX.shared"), Namespace::Own);
        assert_eq!(namespace_of("#sharedx.a"), Namespace::Own);
        assert_eq!(namespace_of("Shared.x"), Namespace::Own);
        assert_eq!(canonical("#shared.bob."), "#shared.bob");
        assert_eq!(literal_prefix("#shared.b%.W*"), "#shared.b");
        assert!(may_hold("#shared.bob", "#shared."));
        assert!(may_hold("#shared.bob", "#shared.bob.Wo"));
        assert!(may_hold("#shared.bob", "#shared.bob"));
        assert!(!may_hold("#shared.bob", "#shared.bobby"));
        assert!(!may_hold("#shared.carol", "#shared.bob"));
        assert_eq!(shown_name("#shared.bob", "INBOX"), "#shared.bob");
        assert_eq!(shown_name("#shared.bob", "INBOX.A.B"), "#shared.bob.A.B");
    }
}
