//! Test-only crash points: named places in the store's write paths where a debug build
//! kills its own process with SIGKILL when a test asked for it (`mdimapd --test-crash-at
//! POINT:N`, the Nth time the process passes POINT, from 1), so that tests can stop a
//! session at every write step and check what the next session makes of the files
//! (tests/crash_points.rs, tests/courier_interop.rs).
//!
//! Owns the list of points, [`POINTS`], which the crash test walks whole: a point passed
//! in the code but missing from the list panics the process in debug builds, so a new
//! write step cannot be left out of the test. Release builds compile [`at`] to nothing.

/// One place where a test can kill the process, and the state the store is left in there.
#[derive(Debug, Clone, Copy)]
pub struct CrashPoint {
    pub name: &'static str,
    /// What is on disk when the process dies there.
    pub leaves: &'static str,
    /// The point is passed more than once by one command (a message at a time, a file at a
    /// time), so killing at its second pass is a different state from its first.
    pub repeats: bool,
}

const fn point(name: &'static str, leaves: &'static str, repeats: bool) -> CrashPoint {
    CrashPoint {
        name,
        leaves,
        repeats,
    }
}

/// Every crash point, in the order a delivery passes them where they belong to one.
pub const POINTS: &[CrashPoint] = &[
    point(
        "delivery-staged",
        "APPEND: a message written and fsynced in tmp/, not yet placed",
        true,
    ),
    point(
        "copy-staged",
        "COPY/MOVE: a source message linked (or copied) into the target's tmp/",
        true,
    ),
    point(
        "keywords-staged",
        "a keyword update file or a new :list written in tmp/, not yet renamed into place",
        true,
    ),
    point(
        "keywords-merged",
        ":list replaced by the merged one, the update files it took in still there",
        false,
    ),
    point(
        "delivery-renamed",
        "APPEND/COPY/MOVE: one more message of the delivery renamed into cur/, unnumbered",
        true,
    ),
    point(
        "delivery-placed",
        "APPEND/COPY/MOVE: every message of the delivery in cur/, none numbered",
        true,
    ),
    point(
        "uiddb-header",
        "UID database: the header raised in place, no line of the delivery written",
        true,
    ),
    point(
        "uiddb-block",
        "UID database: between two 4096-byte blocks of a delivery's lines",
        true,
    ),
    point(
        "uiddb-staged",
        "UID database: the rewritten file in tmp/, not yet renamed over the old one",
        true,
    ),
    point(
        "quota-recording",
        "maildirsize: a change made on disk (delivery, expunge, flag), its line not yet added",
        true,
    ),
    point(
        "quota-staged",
        "maildirsize: the recount written in tmp/, not yet renamed over the old one",
        true,
    ),
    point(
        "move-copied",
        "MOVE: the copies numbered in the target, no source removed",
        false,
    ),
    point(
        "expunge-removed",
        "EXPUNGE/MOVE: one more source message file removed",
        true,
    ),
    point(
        "flags-renamed",
        "STORE: one more message file renamed to its new flags",
        true,
    ),
    point(
        "create-built",
        "CREATE: the folder built under a hidden name in tmp/, not yet in place",
        true,
    ),
    point(
        "rename-moved",
        "RENAME: one more folder directory (the folder, then each child) renamed",
        true,
    ),
    point(
        "delete-hidden",
        "DELETE: the folder moved under a hidden name into tmp/, not yet removed",
        false,
    ),
    point(
        "index-staged",
        "mdimapindex: the new index written in tmp/, not yet renamed into place",
        false,
    ),
];

/// Where a test asked the process to kill itself: `(point, n)` (see [`arm`]).
#[cfg(debug_assertions)]
static ARMED: std::sync::OnceLock<(String, u32)> = std::sync::OnceLock::new();

/// Tests only, in debug builds: makes the process kill itself with SIGKILL the `n`th time
/// (from 1) it passes the point named in `spec` (`<point>:<n>`). False when `spec` is not
/// of that form or names no point of [`POINTS`].
#[cfg(debug_assertions)]
pub fn arm(spec: &str) -> bool {
    let Some((name, n)) = spec.rsplit_once(':') else {
        return false;
    };
    let Ok(n) = n.parse::<u32>() else {
        return false;
    };
    n > 0 && POINTS.iter().any(|p| p.name == name) && ARMED.set((name.to_string(), n)).is_ok()
}

/// Passes the crash point `name` (one of [`POINTS`]).
#[cfg(debug_assertions)]
pub(crate) fn at(name: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static PASSED: AtomicU32 = AtomicU32::new(0);
    assert!(
        POINTS.iter().any(|p| p.name == name),
        "crash point {name:?} is not listed in maildir::crash::POINTS"
    );
    if let Some((armed, n)) = ARMED.get()
        && armed == name
        && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn at(_name: &str) {}

/// The point for a file about to replace another by rename (`unique::replace_file`), by
/// the tag its temporary name carries; `None` for files no crash test needs to stop at.
pub(crate) fn staged_point(tag: &str) -> Option<&'static str> {
    match tag {
        "uiddb" => Some("uiddb-staged"),
        "keywords" => Some("keywords-staged"),
        super::quota::REBUILD_TAG => Some("quota-staged"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut names: Vec<&str> = POINTS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), POINTS.len(), "a crash point is listed twice");
        for name in names {
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name:?}"
            );
        }
        for tag in ["uiddb", "keywords", super::super::quota::REBUILD_TAG] {
            let point = staged_point(tag).unwrap_or_default();
            assert!(POINTS.iter().any(|p| p.name == point), "{tag}");
        }
    }

    #[cfg(debug_assertions)]
    #[test]
    fn arming_takes_only_listed_points() {
        // Arming sets process-wide state once; only refusals are checked here.
        assert!(!arm("no-such-point:1"));
        assert!(!arm("delivery-placed"));
        assert!(!arm("delivery-placed:x"));
        assert!(!arm("delivery-placed:0"));
    }
}
