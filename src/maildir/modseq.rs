//! Mod-sequences (RFC 7162, CONDSTORE and QRESYNC): how a new one is chosen.
//!
//! A MODSEQ must grow with every change a client can be told of, across every session and
//! process that ever looks at the folder, and a client's HIGHESTMODSEQ must stay below the
//! MODSEQ of every change it has not seen. mdimap keeps mod-sequences only in its disposable
//! per-folder index, and sessions detect changes made by others (Courier-IMAP, an MTA, a
//! webmail renaming a file) only when they look; two sessions may each notice one change and
//! give it different numbers, and a session killed before writing the index leaves its
//! numbers unrecorded. So a new MODSEQ is the current time in microseconds, or one more than
//! the highest the caller knows when that is later: a change noticed at time T gets a MODSEQ
//! of at least T, above every HIGHESTMODSEQ any session reported before it was made, whoever
//! notices it and whatever was lost. A lost index costs a full flag resync of the folder's
//! clients (every message gets a new MODSEQ), never a missed change.
//!
//! What this leans on: the clock of the machines sharing the maildir does not go back by
//! more than the time between a change and a client's next look (an NTP step backwards
//! while the index is lost could make a change look older than a client's HIGHESTMODSEQ).
//! Values stay far below 2^63 (RFC 7162's limit) for some 290,000 years.

use std::time::{SystemTime, UNIX_EPOCH};

/// A MODSEQ for a change noticed now, above `highest` (the highest the caller knows).
pub fn next_after(highest: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX >> 1));
    now.max(highest.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_follows_the_clock() {
        let a = next_after(0);
        assert!(a > 1_700_000_000_000_000, "microseconds since 1970: {a}");
        let b = next_after(a);
        assert!(b > a);
        // A highest ahead of the clock (another host's) is still passed.
        let ahead = a + 10_000_000_000;
        assert_eq!(next_after(ahead), ahead + 1);
    }
}
