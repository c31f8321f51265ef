//! GETQUOTAROOT, GETQUOTA and SETQUOTA (RFC 9208, in the RFC 2087 forms Courier's clients
//! use): the maildir's one Maildir++ quota, under the root Courier names `"ROOT"`.
//!
//! Limits and use come from the store's `Quota`; this module only names and encodes them:
//! STORAGE in 1024-octet units rounded up and MESSAGE as counts, each only when it has a
//! limit (as Courier). A maildir without a quota has no quota root at all, so
//! GETQUOTAROOT lists none and GETQUOTA knows none (RFC 9208 has no empty resource list).
//!
//! Shared folders count toward none of this user's quota. Their names are under the roots
//! Courier names for them, `"PUBLIC"` (`#shared.`) and `"SHARED"` (`shared.`), which have
//! no limits: GETQUOTAROOT names the root and GETQUOTA of it answers OK, both without a
//! QUOTA response (Courier sends `* QUOTA "PUBLIC"` with no resource list at all, which no
//! grammar allows; it is left out).

use super::names::to_wire;
use super::shared::{Namespace, namespace_of};
use super::{Completion, Session, store_error};
use crate::maildir::{QuotaReport, StoreError, canonical_name};
use crate::protocol::encode::push_string_utf8;
use crate::protocol::response::Code;

/// The one quota root of a maildir, named as Courier names it.
pub const QUOTA_ROOT: &str = "ROOT";
/// Courier's root of the virtual shared folders (`#shared.`), without limits.
pub const PUBLIC_ROOT: &str = "PUBLIC";
/// Courier's root of the filesystem-shared folders (`shared.`), without limits.
pub const SHARED_ROOT: &str = "SHARED";

/// `QUOTA "ROOT" (STORAGE used limit MESSAGE used limit)`, the resources that have a limit.
fn quota_response(report: &QuotaReport) -> Vec<u8> {
    let mut resources = Vec::new();
    if report.limits.bytes > 0 {
        resources.push(format!(
            "STORAGE {} {}",
            report.used.kibibytes(),
            report.limits.bytes.div_ceil(1024)
        ));
    }
    if report.limits.messages > 0 {
        resources.push(format!(
            "MESSAGE {} {}",
            report.used.messages.max(0),
            report.limits.messages
        ));
    }
    format!("QUOTA \"{QUOTA_ROOT}\" ({})", resources.join(" ")).into_bytes()
}

impl Session<'_> {
    pub(super) fn cmd_getquotaroot(&mut self, raw: &[u8]) -> Completion {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        // A shared name is under its namespace's root, whatever it names (as Courier; which
        // refuses the bare `#shared`).
        let shared_root = match namespace_of(&name) {
            Namespace::Own => None,
            Namespace::Virtual if super::shared::canonical(&name) == "#shared" => {
                return store_error(&StoreError::InvalidName(name));
            }
            Namespace::Virtual => Some(PUBLIC_ROOT),
            Namespace::Filesystem => Some(SHARED_ROOT),
        };
        if let Some(root) = shared_root {
            let mut line = b"QUOTAROOT ".to_vec();
            push_string_utf8(&mut line, &to_wire(&name, self.utf8), self.utf8);
            line.extend_from_slice(format!(" \"{root}\"").as_bytes());
            self.pending.push(line);
            return Completion::ok("GETQUOTAROOT completed.");
        }
        // Every name of the maildir, existing or not, is under the one root (Courier answers
        // for a folder yet to be created too).
        let name = match canonical_name(&name) {
            Ok(n) => n,
            Err(e) => return store_error(&e),
        };
        let report = match self.store.quota().report() {
            Ok(r) => r,
            Err(e) => return store_error(&e),
        };
        let mut line = b"QUOTAROOT ".to_vec();
        push_string_utf8(&mut line, &to_wire(&name, self.utf8), self.utf8);
        if report.is_some() {
            line.extend_from_slice(format!(" \"{QUOTA_ROOT}\"").as_bytes());
        }
        self.pending.push(line);
        if let Some(report) = report {
            self.pending.push(quota_response(&report));
        }
        Completion::ok("GETQUOTAROOT completed.")
    }

    pub(super) fn cmd_getquota(&mut self, root: &[u8]) -> Completion {
        if root == PUBLIC_ROOT.as_bytes() || root == SHARED_ROOT.as_bytes() {
            // Roots without limits: nothing to report (see the module comment).
            return Completion::ok("GETQUOTA completed.");
        }
        let report = if root == QUOTA_ROOT.as_bytes() {
            match self.store.quota().report() {
                Ok(r) => r,
                Err(e) => return store_error(&e),
            }
        } else {
            None
        };
        match report {
            Some(report) => {
                self.pending.push(quota_response(&report));
                Completion::ok("GETQUOTA completed.")
            }
            None => Completion::no_code(Code::NonExistent, "No such quota root."),
        }
    }

    /// Limits are the administrator's (the user record, `maildirsize`), never the
    /// client's: refused as Courier refuses it, with the RFC 5530 code for it.
    pub(super) fn cmd_setquota(&mut self, _root: &[u8]) -> Completion {
        Completion::no_code(Code::NoPerm, "SETQUOTA No permission.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::{QuotaLimits, QuotaUse};

    fn report(bytes: u64, messages: u64, used: i64, count: i64) -> QuotaReport {
        QuotaReport {
            limits: QuotaLimits { bytes, messages },
            used: QuotaUse {
                bytes: used,
                messages: count,
            },
        }
    }

    #[test]
    fn resources_with_a_limit_only_in_kibibytes_rounded_up() {
        // Courier-IMAP answered `* QUOTA "ROOT" (STORAGE 1 98 MESSAGE 2 50)` for this.
        assert_eq!(
            quota_response(&report(100_000, 50, 120, 2)),
            b"QUOTA \"ROOT\" (STORAGE 1 98 MESSAGE 2 50)"
        );
        assert_eq!(
            quota_response(&report(1024, 0, 1025, 3)),
            b"QUOTA \"ROOT\" (STORAGE 2 1)"
        );
        assert_eq!(
            quota_response(&report(0, 7, 0, 0)),
            b"QUOTA \"ROOT\" (MESSAGE 0 7)"
        );
    }
}
