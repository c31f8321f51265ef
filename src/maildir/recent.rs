//! Which messages of a folder are `\Recent`, and for which session: mdimap's own per-folder
//! file `mdimaprecent`, holding the first UID no session has yet been told about as recent,
//! after the UIDVALIDITY it belongs to: `<uidvalidity> <first recent uid>\n`.
//!
//! RFC 3501 §2.3.2: a message is recent in exactly one session, the first to be notified of
//! it — whoever put it there (an MTA into `new/`, or APPEND, COPY or MOVE into `cur/`). A
//! message an MTA delivers is recent for the session whose scan moves it from `new/` to
//! `cur/` (the rename decides, as in Courier). Messages put straight into `cur/` have no
//! such moment, so the folder keeps one number, the *first recent UID*: every message at or
//! above it has been told to nobody yet. A read-write session claims them when it sees them
//! (SELECT, or a rescan of the selected folder) by raising the number past them, under the
//! folder's dot-lock, so that two sessions never both claim a message; a session delivering
//! into the folder it has selected claims its own messages in the same locked step that
//! numbers them. EXAMINE and STATUS read the number and change nothing.
//!
//! Courier-IMAP knows nothing of this file and leaves it alone; its sessions give `\Recent`
//! only to what they move from `new/`, as before. Its APPENDs and COPYs (UIDs above the
//! number) become recent for the next mdimap session, which is what RFC 3501 asks.
//!
//! The file is a hint, not data: it is written without fsync (a crash may make a message
//! recent once more, or not at all), and a missing or unreadable file is started afresh at
//! the folder's next UID, so the messages already there when mdimap first looks are not
//! recent (as Courier showed them). Owns the file's format and the claiming rule only; the
//! callers hold the lock and decide which messages exist.

use super::beneath::Dir;
use super::error::StoreError;
use super::unique::replace_file_unsynced;

/// File name inside a folder.
pub(crate) const RECENT_NAME: &str = "mdimaprecent";

/// The first recent UID recorded for the folder `top` under `uidvalidity`, if a readable
/// one is (a number from before the UID database was renumbered means nothing).
pub(crate) fn read(top: &Dir, uidvalidity: u32) -> Option<u32> {
    let bytes = top.read(RECENT_NAME).ok()?;
    match parse(&bytes)? {
        (validity, first) if validity == uidvalidity => Some(first),
        _ => None,
    }
}

fn parse(bytes: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (validity, first) = text.strip_suffix('\n')?.split_once(' ')?;
    Some((number(validity)?, number(first)?))
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Records `first` as the folder's first recent UID: written into `tmp` and renamed over
/// the old file, so a reader without the lock sees one number or the other. No fsync: see
/// the module comment. The caller holds the folder's lock.
pub(crate) fn write(top: &Dir, tmp: &Dir, uidvalidity: u32, first: u32) -> Result<(), StoreError> {
    let contents = format!("{uidvalidity} {first}\n");
    replace_file_unsynced(tmp, top, RECENT_NAME, "recent", contents.as_bytes())
}

/// Writes `first` where it raises the recorded number (or none is recorded); a failure is
/// logged, never fatal: the messages stay recent for the next session instead.
pub(crate) fn raise(top: &Dir, tmp: &Dir, uidvalidity: u32, recorded: Option<u32>, first: u32) {
    if recorded.is_some_and(|r| r >= first) {
        return;
    }
    if let Err(e) = write(top, tmp, uidvalidity, first) {
        log::warn!("cannot record which messages are recent: {e}");
    }
}

/// For a delivery numbered `uids` (ascending, consecutive from the folder's next UID) by a
/// session that has the folder selected read-write: claims them for that session when
/// nothing before them is still unclaimed (else the session's next scan claims everything
/// at once, theirs included), raising the number past them. For any other session's
/// delivery, only starts the number at them when none was recorded, so that they are
/// recent for the next session. Returns whether the delivering session claimed them. The
/// caller holds the lock.
pub(crate) fn after_delivery(
    top: &Dir,
    tmp: &Dir,
    uidvalidity: u32,
    uids: &[u32],
    claim: bool,
) -> bool {
    let (Some(&first), Some(&last)) = (uids.first(), uids.last()) else {
        return false;
    };
    let recorded = read(top, uidvalidity);
    if claim && recorded.is_none_or(|r| r == first) {
        raise(top, tmp, uidvalidity, recorded, last.saturating_add(1));
        return true;
    }
    if recorded.is_none() {
        raise(top, tmp, uidvalidity, None, first);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_a_number_and_its_line_end() {
        assert_eq!(parse(b"1700000000 17\n"), Some((1700000000, 17)));
        assert_eq!(parse(b"5 1\n"), Some((5, 1)));
        for bad in [
            &b""[..],
            b"\n",
            b"5 17",
            b"17\n",
            b"5  17\n",
            b"5 -1\n",
            b"5 99999999999\n",
            b"1 2 3\n",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    const V: u32 = 1_700_000_000;

    #[test]
    fn a_number_of_another_uidvalidity_is_none() {
        let (_t, top, tmp) = folder();
        write(&top, &tmp, V, 9).unwrap();
        assert_eq!(read(&top, V), Some(9));
        assert_eq!(read(&top, V + 1), None);
    }

    fn folder() -> (tempfile::TempDir, Dir, Dir) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("tmp")).unwrap();
        let top = Dir::open_root(t.path()).unwrap();
        let tmp = top.open_dir("tmp").unwrap();
        (t, top, tmp)
    }

    #[test]
    fn a_selecting_session_claims_its_own_delivery_once() {
        let (_t, top, tmp) = folder();
        write(&top, &tmp, V, 5).unwrap();
        assert!(after_delivery(&top, &tmp, V, &[5, 6], true));
        assert_eq!(read(&top, V), Some(7));
        // Unclaimed messages before a delivery: the session's scan claims them all.
        write(&top, &tmp, V, 6).unwrap();
        assert!(!after_delivery(&top, &tmp, V, &[7], true));
        assert_eq!(read(&top, V), Some(6));
    }

    #[test]
    fn another_sessions_delivery_stays_recent_for_the_next() {
        let (_t, top, tmp) = folder();
        assert!(!after_delivery(&top, &tmp, V, &[3, 4], false));
        assert_eq!(read(&top, V), Some(3));
        assert!(!after_delivery(&top, &tmp, V, &[5], false));
        assert_eq!(read(&top, V), Some(3));
        // Never lowered.
        raise(&top, &tmp, V, read(&top, V), 2);
        assert_eq!(read(&top, V), Some(3));
        // tmp/ keeps nothing.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
