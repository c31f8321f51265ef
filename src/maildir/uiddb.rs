//! Courier's UID database `courierimapuiddb` (spec/courier-files.md §1): parse, format,
//! read and write byte-compatibly.
//!
//! Owns the file format and the rule that UIDs only grow; it must not decide which messages
//! exist (the folder scan does) and must not take the lock (callers hold it).

use crate::maildir::fast::FastSet;
use std::io;

use super::beneath::Dir;
use super::error::StoreError;
use super::unique::{now_secs, replace_file};

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
    pub(crate) fn parse(bytes: &[u8]) -> Option<UidDb> {
        let text = std::str::from_utf8(bytes).ok()?;
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
        let mut out = format!("1 {} {}\n", self.uidvalidity, self.nextuid);
        for (uid, name) in &self.entries {
            out.push_str(&format!("{uid} {name}\n"));
        }
        out.into_bytes()
    }
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
    fn fresh_uidvalidity_is_time_based() {
        let v = i64::from(fresh_uidvalidity());
        assert!((now_secs() - IMAP_EPOCH - v).abs() <= 2);
    }
}
