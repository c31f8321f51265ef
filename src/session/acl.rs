//! ACL (RFC 4314, ACL2=UNION): GETACL, SETACL, DELETEACL, LISTRIGHTS and MYRIGHTS, and the
//! rights checks of every other command, answered and enforced as Courier-IMAP does on the
//! same files.
//!
//! Owns how clients name identifiers (Courier's rule: `anyone`, `anonymous`, `authuser`,
//! `owner` and `administrators`, optionally negated with `-`, are themselves; any other name
//! is a `user=` name; a name with `=` in it cannot be set, and stored `group=` entries are
//! not shown), the `NO [NOPERM]` refusals, which flags a user may change, and the untagged
//! `[MYRIGHTS]` sent when the selected mailbox's rights are found changed. The lists and the
//! rights computation are the store's (`maildir::acl`); this module must not read or write
//! the files itself.
//!
//! The rights each command needs are Courier's, which follow RFC 4314 §4 with Courier's
//! letters: SELECT, EXAMINE and STATUS `r`; LIST and LSUB show only folders with `l`;
//! CREATE `c` on the parent; DELETE `x`; RENAME `x` on the folder and `c` on the new
//! parent; APPEND and COPY `i` on the target (flags a client may not set there are
//! dropped: `\Deleted` needs `t`, `\Seen` `s`, others and keywords `w`); STORE changes only
//! the flags the rights allow; FETCH sets `\Seen` only with `s`; EXPUNGE `e` (CLOSE then
//! expunges nothing); GETACL, SETACL and DELETEACL `a`; LISTRIGHTS and MYRIGHTS any of
//! `l r i c x e a`. MOVE, which Courier lacks, needs `i` on the target and `t` and `e` on
//! the source (RFC 6851 §4). A mailbox with none of `i e s w t` is selected read-only.

use super::flags::FlagChange;
use super::names::to_wire;
use super::shared::{self, Namespace};
use super::{Completion, Session, store_error};
use crate::maildir::acl::right;
use crate::maildir::{
    Acl, AclUpdateError, InfoFlags, Rights, Store, StoreError, canonical_name, is_valid_name,
};
use crate::protocol::encode::push_string_utf8;
use crate::protocol::response::Code;

/// The rights that let a client see a mailbox's rights at all (LISTRIGHTS, MYRIGHTS).
const ANY_VISIBLE: &[u8] = b"lricxea";
/// Without any of these a SELECTed mailbox is read-only.
const ANY_CHANGE: &[u8] = b"iestw";

/// The identifier a client's name stands for in the lists, or `None` when Courier refuses
/// it ("Invalid ACL identifier": any other name with `=`).
fn stored_identifier(sent: &[u8]) -> Option<Vec<u8>> {
    let (negative, bare) = match sent.strip_prefix(b"-") {
        Some(bare) => (true, bare),
        None => (false, sent),
    };
    const AS_IS: [&[u8]; 5] = [
        b"anyone",
        b"anonymous",
        b"authuser",
        b"owner",
        b"administrators",
    ];
    if AS_IS.contains(&bare) {
        return Some(sent.to_vec());
    }
    if bare.contains(&b'=') {
        return None;
    }
    let mut out = Vec::with_capacity(sent.len() + 5);
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(b"user=");
    out.extend_from_slice(bare);
    Some(out)
}

/// How GETACL shows a stored identifier: `user=` dropped; `None` for the other `x=`
/// identifiers (`group=`), which Courier does not show.
fn shown_identifier(stored: &[u8]) -> Option<Vec<u8>> {
    let (negative, bare) = match stored.strip_prefix(b"-") {
        Some(bare) => (true, bare),
        None => (false, stored),
    };
    let bare = match bare.strip_prefix(b"user=") {
        Some(name) => name,
        None if bare.contains(&b'=') => return None,
        None => bare,
    };
    let mut out = Vec::with_capacity(bare.len() + 1);
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(bare);
    Some(out)
}

/// The right a system flag needs (maildir letter): `\Deleted` `t`, `\Seen` `s`, the rest `w`.
fn right_for_flag(letter: u8) -> u8 {
    match letter {
        b'T' => right::DELETE_MESSAGES,
        b'S' => right::SEEN,
        _ => right::WRITE,
    }
}

/// The system flags Courier lets rights govern.
const GOVERNED_FLAGS: [u8; 5] = [b'D', b'F', b'R', b'S', b'T'];

/// APPEND: drops the flags and keywords `rights` do not allow on the target.
pub(super) fn permit_append(change: &mut FlagChange, rights: &Rights) {
    change.letters.retain(|&l| rights.has(right_for_flag(l)));
    if !rights.has(right::WRITE) {
        change.keywords.clear();
    }
}

/// COPY and MOVE: a copied message loses the flags and keywords `rights` do not allow on
/// the target.
pub(super) fn permit_copy(rights: &Rights, flags: &mut InfoFlags, keywords: &mut Vec<String>) {
    for letter in GOVERNED_FLAGS {
        if !rights.has(right_for_flag(letter)) {
            flags.set(letter, false);
        }
    }
    if !rights.has(right::WRITE) {
        keywords.clear();
    }
}

/// STORE: the flags and keywords `rights` do not allow changing keep their values on disk.
pub(super) fn permit_store(
    rights: &Rights,
    on_disk: &InfoFlags,
    flags: &mut InfoFlags,
    old_keywords: &[String],
    keywords: &mut Vec<String>,
) {
    for letter in GOVERNED_FLAGS {
        if !rights.has(right_for_flag(letter)) {
            flags.set(letter, on_disk.has(letter));
        }
    }
    if !rights.has(right::WRITE) {
        *keywords = old_keywords.to_vec();
    }
}

/// Whether a mailbox with these rights must be selected read-only.
pub(super) fn read_only_for(rights: &Rights) -> bool {
    rights.among(ANY_CHANGE).is_empty()
}

/// `NO [NOPERM] Access denied for <verb> on <what> (ACL "<letters>" required).`, Courier's
/// words with RFC 5530's code.
pub(super) fn denied(verb: &str, what: &str, letters: &str) -> Completion {
    Completion::no_code(
        Code::NoPerm,
        format!("Access denied for {verb} on {what} (ACL \"{letters}\" required)."),
    )
}

/// The hierarchy level above `name` (`INBOX.A` for `INBOX.A.B`, `INBOX` for `INBOX.A`).
pub(super) fn parent_of(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) => &name[..i],
        None => name,
    }
}

impl Session<'_> {
    /// The list of folder `name`: its files', or Courier's fixed list when the account has
    /// them switched off (`disableshared`); for another account's folder its owner's, for
    /// a filesystem-shared one Courier's fixed list.
    fn acl_of(&self, name: &str) -> Result<Acl, StoreError> {
        match shared::namespace_of(name) {
            Namespace::Virtual => return self.virtual_acl(name),
            Namespace::Filesystem => return self.shared_fixed_acl(name),
            Namespace::Own => {}
        }
        if self.settings.acl_files {
            self.store.acl(name)
        } else {
            canonical_name(name)?;
            Ok(Acl::without_files())
        }
    }

    fn virtual_acl(&self, name: &str) -> Result<Acl, StoreError> {
        match self.virtual_place(name)? {
            shared::Virtual::Folder { store, folder, .. } => store.acl(&folder),
            shared::Virtual::Level => Err(StoreError::NonExistent(name.to_string())),
        }
    }

    /// The store, folder and owner identifier whose list SETACL and DELETEACL change, and
    /// whose owner LISTRIGHTS names.
    fn acl_target(&self, name: &str) -> Result<(Store, String, Vec<u8>), Completion> {
        match shared::namespace_of(name) {
            Namespace::Own => Ok((
                self.store.clone(),
                name.to_string(),
                self.settings.accessor.user_identifier(),
            )),
            Namespace::Virtual => self.shared_acl_target(name),
            // Courier's owner of these is `anonymous`, and their list cannot change.
            Namespace::Filesystem => {
                Ok((self.store.clone(), name.to_string(), b"anonymous".to_vec()))
            }
        }
    }

    /// The name of a mailbox in a response text (modified UTF-7 unless UTF8=ACCEPT).
    pub(super) fn text_name(&self, name: &str) -> String {
        String::from_utf8_lossy(&to_wire(name, self.utf8)).into_owned()
    }

    /// This user's rights on folder `name`. As with Courier, finding the selected
    /// mailbox's rights changed tells the client (`* OK [MYRIGHTS "..."] ACL`) and takes
    /// effect for the commands that follow.
    pub(super) fn rights_on(&mut self, name: &str) -> Result<Rights, Completion> {
        let (rights, canonical) = if shared::is_shared(name) {
            let rights = self.shared_rights(name).map_err(|e| store_error(&e))?;
            (rights, shared::canonical(name).to_string())
        } else {
            let acl = self.acl_of(name).map_err(|e| store_error(&e))?;
            let owner = self.settings.accessor.user_identifier();
            let rights = acl.rights_of(&self.settings.accessor, &owner, self.settings.acl_files);
            (rights, canonical_name(name).unwrap_or_default())
        };
        if let Some(view) = self.selected.as_mut()
            && view.folder.name() == canonical
            && view.rights != rights
        {
            view.rights = rights.clone();
            self.pending.push(myrights_code(&rights).body());
        }
        Ok(rights)
    }

    /// The user's rights on `name` when they include `needed`; else the `NO [NOPERM]`
    /// refusal of `verb`.
    pub(super) fn require(
        &mut self,
        name: &str,
        needed: u8,
        verb: &str,
    ) -> Result<Rights, Completion> {
        let rights = self.rights_on(name)?;
        if rights.has(needed) {
            Ok(rights)
        } else {
            Err(denied(
                verb,
                &self.text_name(name),
                &char::from(needed).to_string(),
            ))
        }
    }

    /// Whether a LIST or LSUB may show `name`: it needs `l` (on a shared name, as its
    /// owner's list or Courier's fixed one gives it). Other names that are not folders of
    /// this maildir are not the store's to judge and are shown.
    pub(super) fn may_list(&mut self, name: &str) -> bool {
        if !is_valid_name(name) && !shared::is_shared(name) {
            return true;
        }
        match self.rights_on(name) {
            Ok(rights) => rights.has(right::LOOKUP),
            Err(_) => false,
        }
    }

    /// Whether `name` is a folder or a hierarchy level with folders below it: the names
    /// whose rights DELETE and RENAME check (any other name has no rights to check, and
    /// asking would only leave an inherited list behind).
    pub(super) fn node_exists(&self, name: &str) -> bool {
        if self.store.folder_exists(name) {
            return true;
        }
        let prefix = format!("{}.", canonical_name(name).unwrap_or_default());
        self.store
            .folder_names()
            .is_ok_and(|names| names.iter().any(|n| n.starts_with(&prefix)))
    }

    /// CREATE and RENAME of `name` need `c` on the level above it.
    pub(super) fn may_create(&mut self, name: &str, verb: &str) -> Result<(), Completion> {
        let canonical = canonical_name(name).map_err(|e| store_error(&e))?;
        self.require(parent_of(&canonical), right::CREATE, verb)
            .map(drop)
    }

    /// After CREATE (or RENAME INBOX) made folder `name`: its list, as Courier leaves it.
    pub(super) fn settle_acl(&self, name: &str) {
        if self.settings.acl_files
            && let Err(e) = self.store.settle_acl(name)
        {
            log::error!("access control list of new folder {name}: {e}");
        }
    }

    /// The list of `name` before DELETE, to keep for its hierarchy level afterwards.
    pub(super) fn acl_before_delete(&self, name: &str) -> Option<Acl> {
        if !self.settings.acl_files {
            return None;
        }
        self.store.acl(name).ok()
    }

    /// After DELETE of `name`: folders below it keep its list for their level.
    pub(super) fn keep_deleted_acl(&self, name: &str, acl: Option<Acl>) {
        if let Some(acl) = acl
            && let Err(e) = self.store.keep_deleted_acl(name, &acl)
        {
            log::error!("access control list of deleted folder {name}: {e}");
        }
    }

    /// Resolves and checks the mailbox argument of an ACL command: it must exist (Courier:
    /// "Mailbox does not exist").
    fn acl_mailbox(&self, raw: &[u8]) -> Result<String, Completion> {
        let name = self.mailbox_name(raw)?;
        if shared::is_shared(&name) {
            self.folder(&name).map_err(|e| store_error(&e))?;
            return Ok(shared::canonical(&name).to_string());
        }
        let canonical = canonical_name(&name).map_err(|e| store_error(&e))?;
        if !self.store.folder_exists(&canonical) {
            return Err(store_error(&StoreError::NonExistent(canonical)));
        }
        Ok(canonical)
    }

    /// `* <verb> <mailbox>` as the start of an untagged response.
    fn acl_line(&self, verb: &str, name: &str) -> Vec<u8> {
        let mut line = format!("{verb} ").into_bytes();
        push_string_utf8(&mut line, &to_wire(name, self.utf8), self.utf8);
        line
    }

    pub(super) fn cmd_getacl(&mut self, raw: &[u8]) -> Completion {
        let name = match self.acl_mailbox(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        if let Err(d) = self.require(&name, right::ADMINISTER, "GETACL") {
            return d;
        }
        let acl = match self.acl_of(&name) {
            Ok(acl) => acl,
            Err(e) => return store_error(&e),
        };
        let mut line = self.acl_line("ACL", &name);
        for entry in acl.entries() {
            let Some(shown) = shown_identifier(&entry.identifier) else {
                continue;
            };
            line.push(b' ');
            push_string_utf8(&mut line, &shown, self.utf8);
            line.push(b' ');
            push_string_utf8(&mut line, &entry.rights.folded(), self.utf8);
        }
        self.pending.push(line);
        Completion::ok("GETACL completed.")
    }

    /// SETACL, and DELETEACL (`rights` is `None`): `+rights` adds, `-rights` takes away,
    /// plain rights replace, empty rights remove the entry.
    pub(super) fn cmd_setacl(
        &mut self,
        raw: &[u8],
        identifier: &[u8],
        rights: Option<&[u8]>,
    ) -> Completion {
        let verb = if rights.is_some() {
            "SETACL"
        } else {
            "DELETEACL"
        };
        let name = match self.acl_mailbox(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let Some(identifier) = stored_identifier(identifier) else {
            return Completion::no_code(Code::Cannot, "Invalid ACL identifier.");
        };
        if identifier.iter().any(|&b| b <= b' ') {
            return Completion::no_code(Code::Cannot, "Invalid ACL identifier.");
        }
        let rights = rights.unwrap_or_default();
        let (mode, letters) = match rights.split_first() {
            Some((&m @ (b'+' | b'-'), rest)) => (Some(m), rest),
            _ => (None, rights),
        };
        let Some(letters) = Rights::from_client(letters) else {
            return Completion::no_code(Code::Cannot, "Invalid ACL rights.");
        };
        if let Err(d) = self.require(&name, right::ADMINISTER, verb) {
            return d;
        }
        if !self.settings.acl_files || shared::namespace_of(&name) == Namespace::Filesystem {
            // Courier's fixed lists give nobody `a`; kept for clarity.
            return denied(verb, &self.text_name(&name), "a");
        }
        let (store, folder, owner) = match self.acl_target(&name) {
            Ok(target) => target,
            Err(d) => return d,
        };
        let updated = store.update_acl(&folder, &owner, |acl| {
            let mut new = match mode {
                None => Rights::default(),
                Some(_) => acl.get(&identifier).cloned().unwrap_or_default(),
            };
            match mode {
                Some(b'-') => new.remove(&letters),
                _ => new.add(&letters),
            }
            // Empty rights remove the entry, except `+` of nothing, which keeps it.
            if new.is_empty() && mode != Some(b'+') {
                acl.remove(&identifier);
            } else {
                acl.set(&identifier, new);
            }
        });
        match updated {
            Ok(()) => {}
            Err(AclUpdateError::Refused(why)) => {
                return Completion::no_code(
                    Code::Cannot,
                    format!("Cannot modify ACLs as requested: {why}."),
                );
            }
            Err(AclUpdateError::Store(e)) => return store_error(&e),
        }
        // Tells the client when the selected mailbox's rights changed.
        if let Err(d) = self.rights_on(&name) {
            return d;
        }
        Completion::ok(format!("{verb} completed."))
    }

    pub(super) fn cmd_listrights(&mut self, raw: &[u8], identifier: &[u8]) -> Completion {
        let name = match self.acl_mailbox(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let rights = match self.rights_on(&name) {
            Ok(r) => r,
            Err(d) => return d,
        };
        if rights.among(ANY_VISIBLE).is_empty() {
            return denied("LISTRIGHTS", &self.text_name(&name), "l");
        }
        // The owner of the user's own maildir is the user; of another account's folder,
        // whom the shared folder index names (if anyone).
        let owner_identifier = match self.acl_target(&name) {
            Ok((_, _, owner)) => owner,
            Err(d) => return d,
        };
        let owner = owner_identifier.strip_prefix(b"user=");
        let negated = identifier.strip_prefix(b"-");
        let answer: &[u8] = match negated {
            Some(bare) if bare == b"anyone" || bare == b"anonymous" || Some(bare) == owner => {
                b"\"\" c d i p r s w"
            }
            _ if Some(identifier) == owner => b"\"al\" c d i p r s w",
            _ => b"\"\" a c d i l p r s w",
        };
        let mut line = self.acl_line("LISTRIGHTS", &name);
        line.push(b' ');
        push_string_utf8(&mut line, identifier, self.utf8);
        line.push(b' ');
        line.extend_from_slice(answer);
        self.pending.push(line);
        Completion::ok("LISTRIGHTS completed.")
    }

    pub(super) fn cmd_myrights(&mut self, raw: &[u8]) -> Completion {
        let name = match self.acl_mailbox(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let rights = match self.rights_on(&name) {
            Ok(r) => r,
            Err(d) => return d,
        };
        if rights.among(ANY_VISIBLE).is_empty() {
            return denied("MYRIGHTS", &self.text_name(&name), "l");
        }
        let mut line = self.acl_line("MYRIGHTS", &name);
        line.push(b' ');
        push_string_utf8(&mut line, &rights.folded(), self.utf8);
        self.pending.push(line);
        Completion::ok("MYRIGHTS completed.")
    }
}

/// `OK [MYRIGHTS "<rights>"] ACL`: the selected mailbox's rights, as Courier sends them on
/// SELECT and whenever they change.
pub(super) fn myrights_code(rights: &Rights) -> Completion {
    let shown = String::from_utf8_lossy(&rights.folded_if_complete()).into_owned();
    Completion::ok_code(Code::MyRights(shown), "ACL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_as_courier_maps_them() {
        let s = |x: &str| stored_identifier(x.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(s("bob").as_deref(), Some("user=bob"));
        assert_eq!(s("-bob").as_deref(), Some("-user=bob"));
        assert_eq!(s("anyone").as_deref(), Some("anyone"));
        assert_eq!(s("-anonymous").as_deref(), Some("-anonymous"));
        assert_eq!(s("administrators").as_deref(), Some("administrators"));
        assert_eq!(s("owner").as_deref(), Some("owner"));
        assert_eq!(s("authuser").as_deref(), Some("authuser"));
        assert_eq!(s("user=john"), None);
        assert_eq!(s("group=staff"), None);
        let g = |x: &str| shown_identifier(x.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(g("user=bob").as_deref(), Some("bob"));
        assert_eq!(g("-user=bob").as_deref(), Some("-bob"));
        assert_eq!(g("owner").as_deref(), Some("owner"));
        assert_eq!(g("group=staff"), None);
        assert_eq!(g("-group=staff"), None);
    }

    #[test]
    fn flags_follow_the_rights() {
        let rights = Rights::parse(b"ilrs").unwrap();
        let mut change = FlagChange {
            letters: vec![b'S', b'T', b'F'],
            keywords: vec!["$Work".into()],
        };
        permit_append(&mut change, &rights);
        assert_eq!(change.letters, vec![b'S']);
        assert!(change.keywords.is_empty());
        let mut flags = InfoFlags(b"DFRST".to_vec());
        let mut keywords = vec!["k".to_string()];
        permit_copy(&Rights::parse(b"it").unwrap(), &mut flags, &mut keywords);
        assert_eq!(flags, InfoFlags(b"T".to_vec()));
        assert!(keywords.is_empty());
        let on_disk = InfoFlags(b"FS".to_vec());
        let mut flags = InfoFlags(b"T".to_vec());
        let mut keywords = vec![];
        permit_store(
            &Rights::parse(b"t").unwrap(),
            &on_disk,
            &mut flags,
            &["old".to_string()],
            &mut keywords,
        );
        assert_eq!(flags, InfoFlags(b"FST".to_vec()));
        assert_eq!(keywords, vec!["old".to_string()]);
        assert!(read_only_for(&Rights::parse(b"alr").unwrap()));
        assert!(!read_only_for(&Rights::parse(b"lrs").unwrap()));
        assert_eq!(parent_of("INBOX.A.B"), "INBOX.A");
        assert_eq!(parent_of("INBOX.A"), "INBOX");
    }
}
