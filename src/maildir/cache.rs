//! The derived-data cache: facts about messages that cost a full read to
//! learn, kept so the next session need not read the file again.
//!
//! A maildir message never changes once delivered (flag changes rename it,
//! the base name stays), so an entry keyed by the base name stays true for as
//! long as the message exists. Nothing correct depends on this file: a
//! missing, stale or corrupt cache is rebuilt as messages are read, and
//! entries for messages that are gone are dropped when it is written. The
//! file, `mdimapcache` in each folder, is private to mdimap; Courier ignores it.
//!
//! Format: a first line `mdimap-cache 1`, then one line per message:
//! `<basename> TAB <size with CRLF line ends> TAB <header bytes on disk>`.

use crate::maildir::fast::{FastMap, FastSet};

use super::error::StoreError;
use super::folder::Folder;

pub(crate) const CACHE_FILE: &str = "mdimapcache";
const MAGIC: &str = "mdimap-cache 1";

/// What the cache knows of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedSizes {
    /// RFC822.SIZE: the message's size with CRLF line ends.
    pub crlf_size: u64,
    /// Bytes of the file up to and including the blank line that ends the
    /// header, so a header-only FETCH reads just that much.
    pub header_len: u64,
}

#[derive(Debug, Default)]
pub struct MessageCache {
    entries: FastMap<String, CachedSizes>,
    /// Entries learnt (or a corrupt file dropped) since the file was read or written.
    unsaved: usize,
}

impl MessageCache {
    /// Reads the folder's cache; an unreadable or foreign file is an empty cache.
    pub fn load(folder: &Folder) -> MessageCache {
        let bytes = match folder.read_own_file(CACHE_FILE) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return MessageCache::default(),
            Err(e) => {
                log::warn!("ignoring the cache: {e}");
                return MessageCache::default();
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return MessageCache::default();
        };
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return MessageCache::default();
        }
        let mut entries = FastMap::default();
        for line in lines {
            let mut f = line.split('\t');
            let (Some(base), Some(size), Some(header), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                // A torn or edited file: start afresh rather than trust it.
                return MessageCache {
                    entries: FastMap::default(),
                    unsaved: 1,
                };
            };
            match (size.parse(), header.parse()) {
                (Ok(crlf_size), Ok(header_len)) if !base.is_empty() => {
                    entries.insert(
                        base.to_string(),
                        CachedSizes {
                            crlf_size,
                            header_len,
                        },
                    );
                }
                _ => {
                    return MessageCache {
                        entries: FastMap::default(),
                        unsaved: 1,
                    };
                }
            }
        }
        MessageCache {
            entries,
            unsaved: 0,
        }
    }

    /// How many entries it learnt that are not written yet.
    pub fn unsaved(&self) -> usize {
        self.unsaved
    }

    pub fn get(&self, basename: &str) -> Option<CachedSizes> {
        self.entries.get(basename).copied()
    }

    pub fn insert(&mut self, basename: &str, sizes: CachedSizes) {
        if self.entries.insert(basename.to_string(), sizes) != Some(sizes) {
            self.unsaved += 1;
        }
    }

    /// Writes the cache when it learnt something, keeping only messages in
    /// `present`. Best effort by nature: a lost write only costs a re-read.
    pub fn save(&mut self, folder: &Folder, present: &FastSet<&str>) -> Result<(), StoreError> {
        if self.unsaved == 0 {
            return Ok(());
        }
        self.entries.retain(|k, _| present.contains(k.as_str()));
        let mut text = String::with_capacity(self.entries.len() * 64 + 16);
        text.push_str(MAGIC);
        text.push('\n');
        for (base, s) in &self.entries {
            // A name with a tab or newline cannot be written unambiguously.
            if base.contains(['\t', '\n']) {
                continue;
            }
            text.push_str(&format!("{base}\t{}\t{}\n", s.crlf_size, s.header_len));
        }
        folder.replace_own_file(CACHE_FILE, "_mdimapcache", text.as_bytes())?;
        self.unsaved = 0;
        Ok(())
    }
}

/// The length of the header block of a message on disk: up to and including
/// the first empty line (LF or CRLF), or the whole text when there is none.
pub fn header_length(data: &[u8]) -> usize {
    header_end(data).unwrap_or(data.len())
}

/// Where the empty line ending the header block ends, if `data` holds it.
pub fn header_end(data: &[u8]) -> Option<usize> {
    let mut start = 0;
    while start < data.len() {
        let end = start + memchr::memchr(b'\n', &data[start..])? + 1;
        let line = &data[start..end];
        if line == b"\n" || line == b"\r\n" {
            return Some(end);
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::Store;
    use crate::maildir::testutil::TempDir;

    fn inbox(tag: &str) -> (TempDir, Folder) {
        let dir = TempDir::new(tag);
        let store = Store::create(&dir.path().join("Maildir")).unwrap();
        let folder = store.folder("INBOX").unwrap();
        (dir, folder)
    }

    #[test]
    fn round_trip_and_pruning() {
        let (_dir, folder) = inbox("cache");
        let mut c = MessageCache::load(&folder);
        assert!(c.get("a").is_none());
        c.insert(
            "a",
            CachedSizes {
                crlf_size: 10,
                header_len: 4,
            },
        );
        c.insert(
            "b",
            CachedSizes {
                crlf_size: 20,
                header_len: 5,
            },
        );
        c.save(&folder, &["a"].into_iter().collect::<FastSet<&str>>())
            .unwrap();
        let c = MessageCache::load(&folder);
        assert_eq!(
            c.get("a"),
            Some(CachedSizes {
                crlf_size: 10,
                header_len: 4
            })
        );
        assert!(
            c.get("b").is_none(),
            "entries of vanished messages are dropped"
        );
    }

    #[test]
    fn corrupt_cache_is_empty() {
        let (_dir, folder) = inbox("cache-bad");
        std::fs::write(folder.path().join(CACHE_FILE), "mdimap-cache 1\nx\t1\n").unwrap();
        assert!(MessageCache::load(&folder).get("x").is_none());
        std::fs::write(folder.path().join(CACHE_FILE), "something else\na\t1\t2\n").unwrap();
        assert!(MessageCache::load(&folder).get("a").is_none());
    }

    #[test]
    fn a_linked_cache_is_neither_read_nor_written_through() {
        let (dir, folder) = inbox("cache-link");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "mdimap-cache 1\nsecret\t10\t4\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, folder.path().join(CACHE_FILE)).unwrap();
        let mut c = MessageCache::load(&folder);
        assert!(c.get("secret").is_none(), "the link was followed");
        let sizes = CachedSizes {
            crlf_size: 1,
            header_len: 1,
        };
        c.insert("mine", sizes);
        c.save(&folder, &["mine"].into_iter().collect::<FastSet<&str>>())
            .unwrap();
        // The link itself was replaced; what it pointed to is untouched.
        let on_disk = std::fs::symlink_metadata(folder.path().join(CACHE_FILE)).unwrap();
        assert!(on_disk.is_file());
        assert_eq!(
            std::fs::read_to_string(&elsewhere).unwrap(),
            "mdimap-cache 1\nsecret\t10\t4\n"
        );
        assert_eq!(MessageCache::load(&folder).get("mine"), Some(sizes));
    }

    #[test]
    fn header_lengths() {
        assert_eq!(header_length(b"A: b\n\nbody\n"), 6);
        assert_eq!(header_length(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_length(b"A: b\n"), 5);
        assert_eq!(header_length(b"\nbody"), 1);
        assert_eq!(header_end(b"A: b\nC: d"), None);
        assert_eq!(header_end(b"A: b\n\n"), Some(6));
    }
}
