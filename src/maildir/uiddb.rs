//! Courier's UID database `courierimapuiddb` (spec/courier-files.md §1): parse, format,
//! read, write byte-compatibly, and number new messages at a cost that does not grow with
//! the folder.
//!
//! Owns the file format and the rule that UIDs only grow; it must not decide which messages
//! exist (the folder scan does) and must not take the lock (callers hold it).
//!
//! # Numbering deliveries in place
//!
//! A scan replaces the whole file (tmp + fsync + rename), as Courier does. Numbering the
//! messages of one APPEND, COPY or MOVE that way would cost the whole folder for every
//! message, so [`append_entries`] changes the file in place instead: it rewrites the header
//! with the new next UID (same length, one `pwrite` at offset 0) and then writes the new
//! `<uid> <basename>` lines after the last one. It reads only the header and the last byte,
//! and writes only the header and the new lines. It declines (and the caller rewrites the
//! whole file) when the header is not exactly `1 <uidvalidity> <nextuid>\n` as Courier and
//! this module write it, when the new next UID has more digits than the old (once per
//! power of ten), when the file does not end in a line end, or when there is no file.
//!
//! What Courier-IMAP 5.0.13 (`imap/imapscanclient.c`, `do_imapscan_maildir2`) does with
//! such a file, read from its source and checked against its `imapd` on a scratch maildir:
//!
//! - It takes the header's next UID as it stands: it does *not* raise it past the UIDs
//!   listed. Lines at or above it keep their UIDs and the next new message gets the
//!   header's number again: two messages with one UID. So the header must be raised
//!   before any line that needs it is written, never after.
//! - The order of the lines does not matter (it sorts them), empty lines and lines without
//!   a space are skipped, the header may carry leading zeros or trailing blanks.
//! - A last line without its line end is dropped (its `readline` returns nothing at end of
//!   file), complete or not; the message is numbered anew and the file rewritten. (The C++
//!   rewrite in courier-libs 6 reads it with `getline`, which keeps it.)
//! - When nothing changed (every listed message found, no new one) it does not rewrite
//!   the file, so lines written in place stay until the next rewrite; one already running
//!   sees them at its next NOOP, and its own APPEND continues from the raised header.
//!
//! This parser reads the same way: a last line without a line end is no entry.
//!
//! # Crash safety
//!
//! The caller holds the dot-lock, under which Courier (with IMAP_USELOCKS, its default)
//! and every mdimap writer read and write the file, and has already renamed the messages
//! into `cur/`. Then: (1) the header is rewritten with `nextuid + n` and `fdatasync`ed;
//! (2) the lines are written and `fdatasync`ed. A process killed at any instant leaves:
//!
//! - before (1): the messages in `cur/` unnumbered, the header as it was. The next scan
//!   (either server's) numbers them from the header, as any delivery by an MTA.
//! - between (1) and (2), or during (2): the header already past every UID written or
//!   about to be; the messages without a line are numbered by the next scan from the
//!   header, above them. Some UIDs are skipped, none is given twice.
//!
//! That needs every line either whole or absent. Linux copies a buffered write into the
//! page cache one page (or larger folio) at a time and gives up at a fatal signal only
//! between them, so a write that stays within one 4096-byte block of the file is whole or
//! absent after SIGKILL. The lines are therefore laid out so that none crosses a multiple
//! of 4096 (empty lines, which both servers skip, pad to the boundary where one would) and
//! written one block at a time. The `fdatasync` after (1) orders the header before the
//! lines on disk too, for a crash of the machine. A lockless reader (STATUS, or Courier
//! with IMAP_USELOCKS=0) may see the header mid-write; it only reads, or races anyway.
//!
//! Entries of expunged messages are not removed here: they are harmless (a base name is
//! never reused) and go at the next scan that rewrites the file.

use crate::maildir::fast::FastSet;
use std::io;
use std::os::unix::fs::FileExt;

use super::beneath::Dir;
use super::crash;
use super::error::StoreError;
use super::unique::{now_secs, replace_file, replace_file_unsynced};

/// File name of the database inside a folder.
pub(crate) const UIDDB_NAME: &str = "courierimapuiddb";
/// Courier's `IMAP_EPOCH`: UIDVALIDITY = creation time minus this.
const IMAP_EPOCH: i64 = 1_000_000_000;

/// The database: header values plus `(uid, basename)` in ascending UID order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UidDb {
    pub uidvalidity: u32,
    pub nextuid: u32,
    pub entries: Vec<(u32, String)>,
}

impl UidDb {
    /// An empty database with a fresh, time-based UIDVALIDITY.
    pub(crate) fn fresh() -> UidDb {
        UidDb {
            uidvalidity: fresh_uidvalidity(),
            nextuid: 1,
            entries: Vec::new(),
        }
    }

    /// Gives `basename` the next UID.
    pub(crate) fn append(&mut self, basename: &str) -> Result<u32, StoreError> {
        let uid = self.nextuid;
        self.nextuid = uid.checked_add(1).ok_or_else(|| {
            StoreError::Cannot("UID space of the folder is exhausted".to_string())
        })?;
        self.entries.push((uid, basename.to_string()));
        Ok(uid)
    }

    /// Parses the file; `None` if it is not a valid version-1 database.
    /// A last line without its line end is no entry (Courier drops it too), and a header
    /// without one makes no database.
    pub(crate) fn parse(bytes: &[u8]) -> Option<UidDb> {
        let complete = bytes.iter().rposition(|&b| b == b'\n')?;
        let text = std::str::from_utf8(&bytes[..complete]).ok()?;
        let mut lines = text.split('\n');
        let mut header = lines.next()?.split_ascii_whitespace();
        if header.next()? != "1" {
            return None;
        }
        let uidvalidity: u32 = header.next()?.parse().ok()?;
        let mut nextuid: u32 = header.next()?.parse().ok()?;
        if header.next().is_some() || uidvalidity == 0 || nextuid == 0 {
            return None;
        }
        let mut entries = Vec::new();
        let mut seen_uids = FastSet::default();
        let mut seen_names = FastSet::default();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let digits = line
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(line.len());
            let uid: u32 = line.get(..digits)?.parse().ok()?;
            let name = line.get(digits..)?.trim_start_matches([' ', '\t']);
            if uid == 0 || name.is_empty() || digits == 0 || !seen_uids.insert(uid) {
                return None;
            }
            // A name listed twice would give one message two UIDs: the first one counts.
            if seen_names.insert(name.to_string()) {
                entries.push((uid, name.to_string()));
            }
        }
        entries.sort_by_key(|(uid, _)| *uid);
        if let Some((max, _)) = entries.last()
            && *max >= nextuid
        {
            // Never hand out a UID that is already listed.
            nextuid = max.checked_add(1)?;
        }
        Some(UidDb {
            uidvalidity,
            nextuid,
            entries,
        })
    }

    /// The file contents.
    pub(crate) fn format(&self) -> Vec<u8> {
        let mut out = header_line(self.uidvalidity, self.nextuid);
        for (uid, name) in &self.entries {
            out.push_str(&format!("{uid} {name}\n"));
        }
        out.into_bytes()
    }
}

/// The first line, as Courier writes it.
fn header_line(uidvalidity: u32, nextuid: u32) -> String {
    format!("1 {uidvalidity} {nextuid}\n")
}

/// UIDVALIDITY for a database created now (Courier's scheme, never 0).
pub(crate) fn fresh_uidvalidity() -> u32 {
    u32::try_from(now_secs().saturating_sub(IMAP_EPOCH))
        .ok()
        .filter(|v| *v > 0)
        .unwrap_or(1)
}

/// What reading the database found.
#[derive(Debug)]
pub(crate) enum DbState {
    Valid(UidDb),
    Missing,
    Corrupt,
}

/// Reads the folder's `courierimapuiddb` (never through a link). A corrupt file is logged here.
pub(crate) fn read(folder: &Dir) -> Result<DbState, StoreError> {
    match folder.read(UIDDB_NAME) {
        Ok(bytes) => match UidDb::parse(&bytes) {
            Some(db) => Ok(DbState::Valid(db)),
            None => {
                log::warn!(
                    "{} is corrupt: starting a new UIDVALIDITY",
                    folder.path().join(UIDDB_NAME).display()
                );
                Ok(DbState::Corrupt)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DbState::Missing),
        Err(e) => Err(folder.fail(UIDDB_NAME, e)),
    }
}

/// Replaces the folder's `courierimapuiddb` atomically, by way of its `tmp`.
pub(crate) fn write(folder: &Dir, tmp: &Dir, db: &UidDb) -> Result<(), StoreError> {
    replace_file(tmp, folder, UIDDB_NAME, "uiddb", &db.format())
}

/// Creates the database of a folder that has none with only its header, without the two
/// fsyncs of [`write`]: such a file gives no message a UID, so a crash that loses it (or
/// leaves it empty, which reads as corrupt) costs only a new UIDVALIDITY at the next look,
/// which tells clients to resync, as RFC 3501 allows whenever UIDs cannot be kept. The
/// first UID it hands out rewrites or extends it durably. STATUS on never-opened folders,
/// which is what clients do to every folder of an account, pays no disk flush for it.
pub(crate) fn create_header_only(folder: &Dir, tmp: &Dir, db: &UidDb) -> Result<(), StoreError> {
    debug_assert!(db.entries.is_empty());
    replace_file_unsynced(tmp, folder, UIDDB_NAME, "uiddb", &db.format())
}

/// The file is written in place in blocks of this size, none of which a line crosses (see
/// the module comment). Pages are at least this large, and a larger page or folio is a
/// multiple of it, so a write within one block is within one page.
const BLOCK: u64 = 4096;

/// Longest header this module writes in place (`1 4294967295 4294967295\n` is 24 bytes).
const MAX_HEADER: usize = 64;

/// Gives `basenames`, just placed in the folder's `cur/`, the next UIDs by changing the
/// folder's database in place (module comment): `Some((uidvalidity, uids))`, or `None`
/// when that cannot be done safely and the caller must rewrite the file instead. The caller
/// holds the lock. On an error the header may already have been raised: UIDs are skipped,
/// never reused.
pub(crate) fn append_entries(
    folder: &Dir,
    basenames: &[&str],
) -> Result<Option<(u32, Vec<u32>)>, StoreError> {
    let fail = |e: io::Error| folder.fail(UIDDB_NAME, e);
    let file = match folder.open_update(UIDDB_NAME) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let size = file.metadata().map_err(fail)?.len();
    let mut head = [0u8; MAX_HEADER];
    let got = read_at_most(&file, &mut head, 0).map_err(fail)?;
    let Some(end) = head[..got].iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let header = &head[..=end];
    let Some((uidvalidity, nextuid)) = parse_header(header) else {
        return Ok(None);
    };
    // A torn last line (a writer that does not lay out its lines as here) must not become
    // the start of ours.
    let mut last = [0u8; 1];
    if read_at_most(&file, &mut last, size.saturating_sub(1)).map_err(fail)? != 1
        || last[0] != b'\n'
    {
        return Ok(None);
    }
    let Some(raised) = u32::try_from(basenames.len())
        .ok()
        .and_then(|n| nextuid.checked_add(n))
    else {
        return Ok(None);
    };
    let new_header = header_line(uidvalidity, raised);
    if new_header.len() != header.len() {
        return Ok(None);
    }
    file.write_all_at(new_header.as_bytes(), 0).map_err(fail)?;
    file.sync_data().map_err(fail)?;
    crash::at("uiddb-header");
    let uids: Vec<u32> = (nextuid..raised).collect();
    let lines: Vec<String> = uids
        .iter()
        .zip(basenames)
        .map(|(uid, base)| format!("{uid} {base}\n"))
        .collect();
    let laid_out = lay_out(size, &lines);
    let mut at = size;
    for (i, block) in in_blocks(size, &laid_out).enumerate() {
        if i > 0 {
            crash::at("uiddb-block");
        }
        file.write_all_at(block, at).map_err(fail)?;
        at += block.len() as u64;
    }
    file.sync_data().map_err(fail)?;
    Ok(Some((uidvalidity, uids)))
}

/// `(uidvalidity, nextuid)` of a header exactly as [`header_line`] writes it (so that the
/// raised one can take its place byte for byte).
fn parse_header(header: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(header).ok()?;
    let mut words = text.strip_suffix('\n')?.split(' ');
    if words.next()? != "1" {
        return None;
    }
    let uidvalidity: u32 = words.next()?.parse().ok()?;
    let nextuid: u32 = words.next()?.parse().ok()?;
    let canonical = words.next().is_none()
        && uidvalidity != 0
        && nextuid != 0
        && header_line(uidvalidity, nextuid).as_bytes() == header;
    canonical.then_some((uidvalidity, nextuid))
}

/// Reads into `buf` from `offset` until it is full or the file ends; the bytes read.
fn read_at_most(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// `lines` (each ending in a line end) as written from file offset `start`, with a run of
/// line ends before any line that would otherwise cross a multiple of [`BLOCK`].
fn lay_out(start: u64, lines: &[String]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for line in lines {
        let at = start + out.len() as u64;
        let room = BLOCK - at % BLOCK;
        // A line longer than a block (a name longer than any file system allows) cannot
        // be helped; it is written as it is.
        if (line.len() as u64) > room && (line.len() as u64) <= BLOCK {
            out.resize(out.len() + room as usize, b'\n');
        }
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// `bytes`, to be written from file offset `start`, cut at the multiples of [`BLOCK`].
fn in_blocks(start: u64, bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let first = ((BLOCK - start % BLOCK) as usize).min(bytes.len());
    let (head, rest) = bytes.split_at(first);
    std::iter::once(head)
        .filter(|b| !b.is_empty())
        .chain(rest.chunks(BLOCK as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &[u8] = b"1 795769177 4\n\
1 1795769172.M914087P11768V000000000000FE00I000000000098E6D3.vm,S=120\n\
3 1795769194.M392814P14668V000000000000FE00I000000000098E571_1.vm,S=11\n";

    #[test]
    fn round_trip_is_byte_exact() {
        let db = UidDb::parse(EXAMPLE).unwrap();
        assert_eq!(db.uidvalidity, 795769177);
        assert_eq!(db.nextuid, 4);
        assert_eq!(db.entries.len(), 2);
        assert_eq!(
            db.entries[1],
            (
                3,
                "1795769194.M392814P14668V000000000000FE00I000000000098E571_1.vm,S=11".to_string()
            )
        );
        assert_eq!(db.format(), EXAMPLE);
    }

    #[test]
    fn fresh_folder_file() {
        let db = UidDb {
            uidvalidity: 795769177,
            nextuid: 1,
            entries: vec![],
        };
        assert_eq!(db.format(), b"1 795769177 1\n");
        assert_eq!(UidDb::parse(b"1 795769177 1\n").unwrap(), db);
    }

    #[test]
    fn corrupt_files_are_rejected() {
        for bad in [
            &b"garbage\n"[..],
            b"",
            b"2 5 6\n",
            b"1 5\n",
            b"1 0 1\n",
            b"1 5 6\nx name\n",
            b"1 5 6\n2 a\n2 b\n",
            b"1 5 6\n3\n",
        ] {
            assert!(
                UidDb::parse(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn nextuid_never_below_listed_uids() {
        let db = UidDb::parse(b"1 5 2\n7 a\n").unwrap();
        assert_eq!(db.nextuid, 8);
    }

    #[test]
    fn an_unterminated_last_line_is_no_entry() {
        // As Courier 5 reads it: the line is dropped whether it is whole or torn.
        for tail in ["3 c.M1", "3 c.M1P1.h"] {
            let db = UidDb::parse(format!("1 5 4\n1 a\n2 b\n{tail}").as_bytes()).unwrap();
            assert_eq!(db.entries, vec![(1, "a".into()), (2, "b".into())], "{tail}");
            assert_eq!(db.nextuid, 4);
        }
        // A header without its line end makes no database (Courier starts a new one).
        assert!(UidDb::parse(b"1 5 4").is_none());
        // Empty lines (the padding of `append_entries`) are skipped.
        let db = UidDb::parse(b"1 5 4\n\n1 a\n\n\n2 b\n\n").unwrap();
        assert_eq!(db.entries, vec![(1, "a".into()), (2, "b".into())]);
    }

    /// A folder directory with `courierimapuiddb` holding `text`.
    fn folder_with(text: &[u8]) -> (crate::maildir::testutil::TempDir, Dir) {
        let dir = crate::maildir::testutil::TempDir::new("uiddb");
        std::fs::write(dir.path().join(UIDDB_NAME), text).unwrap();
        let opened = Dir::open_root(dir.path()).unwrap();
        (dir, opened)
    }

    fn inode(dir: &crate::maildir::testutil::TempDir) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir.path().join(UIDDB_NAME))
            .unwrap()
            .ino()
    }

    #[test]
    fn entries_are_appended_in_place_after_the_header_is_raised() {
        let (dir, folder) = folder_with(b"1 795769177 14\n3 a\n13 b\n");
        let before = inode(&dir);
        let got = append_entries(&folder, &["c", "d"]).unwrap();
        assert_eq!(got, Some((795769177, vec![14, 15])));
        let text = std::fs::read(dir.path().join(UIDDB_NAME)).unwrap();
        assert_eq!(text, b"1 795769177 16\n3 a\n13 b\n14 c\n15 d\n");
        assert_eq!(inode(&dir), before, "changed in place, not replaced");
        let db = UidDb::parse(&text).unwrap();
        assert_eq!(db.nextuid, 16);
        assert_eq!(db.entries.len(), 4);
    }

    #[test]
    fn appending_declines_where_it_is_not_safe() {
        for text in [
            // The next UID needs another digit: the header would grow.
            &b"1 5 9\n8 a\n"[..],
            b"1 5 99\n98 a\n",
            // Not exactly as written here (Courier reads these, but the raised header
            // could not take their place byte for byte).
            b"1 5 09\n8 a\n",
            b"1  5 9\n",
            b"1 5 9 \n",
            // A torn last line: ours must not continue it.
            b"1 5 12\n8 a\n9 b",
            // No header line.
            b"1 5 12",
            b"",
            b"garbage\n",
        ] {
            let (dir, folder) = folder_with(text);
            assert_eq!(
                append_entries(&folder, &["c"]).unwrap(),
                None,
                "{:?}",
                String::from_utf8_lossy(text)
            );
            assert_eq!(std::fs::read(dir.path().join(UIDDB_NAME)).unwrap(), text);
        }
        let dir = crate::maildir::testutil::TempDir::new("uiddb-missing");
        let folder = Dir::open_root(dir.path()).unwrap();
        assert_eq!(append_entries(&folder, &["c"]).unwrap(), None);
    }

    #[test]
    fn no_line_crosses_a_block_boundary() {
        // Start just before a boundary, with lines of several lengths, many blocks' worth.
        let header = "1 795769177 1000000\n";
        let mut text = header.to_string();
        let mut n = 100_000u32;
        while text.len() < 4096 - 60 {
            text.push_str(&format!("{n} {}\n", "x".repeat(20)));
            n += 1;
        }
        let (dir, folder) = folder_with(text.as_bytes());
        let names: Vec<String> = (0..300)
            .map(|i| format!("m{i}.{}", "y".repeat(i % 97)))
            .collect();
        let borrowed: Vec<&str> = names.iter().map(String::as_str).collect();
        let (_, uids) = append_entries(&folder, &borrowed).unwrap().unwrap();
        assert_eq!(uids.len(), 300);
        let bytes = std::fs::read(dir.path().join(UIDDB_NAME)).unwrap();
        // Every multiple of the block size past the old end falls at the start of a line.
        assert!(text.len() < BLOCK as usize);
        let mut at = BLOCK as usize;
        while at < bytes.len() {
            assert_eq!(bytes[at - 1], b'\n', "a line crosses offset {at}");
            at += BLOCK as usize;
        }
        let db = UidDb::parse(&bytes).unwrap();
        assert_eq!(db.nextuid, 1_000_300);
        let appended: Vec<(u32, String)> = db.entries[db.entries.len() - 300..].to_vec();
        let expected: Vec<(u32, String)> = (1_000_000..).zip(names).collect();
        assert_eq!(appended, expected);
        // The old part is untouched but for the header.
        assert_eq!(
            &bytes[header.len()..text.len()],
            &text.as_bytes()[header.len()..]
        );
        // The blocks written are cut where the layout keeps lines whole.
        let laid = lay_out(17, &["ab\n".to_string()]);
        assert_eq!(in_blocks(17, &laid).collect::<Vec<_>>(), vec![&b"ab\n"[..]]);
        let laid = lay_out(4094, &["ab\n".to_string(), "cd\n".to_string()]);
        assert_eq!(laid, b"\n\nab\ncd\n");
        assert_eq!(
            in_blocks(4094, &laid).collect::<Vec<_>>(),
            vec![&b"\n\n"[..], &b"ab\ncd\n"[..]]
        );
    }

    #[test]
    fn fresh_uidvalidity_is_time_based() {
        let v = i64::from(fresh_uidvalidity());
        assert!((now_secs() - IMAP_EPOCH - v).abs() <= 2);
    }
}
