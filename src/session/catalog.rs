//! What the session knows of each message of the selected folder besides what the client
//! was told: its base name on disk, the facts that cost a read to learn (size with CRLF,
//! header length, INTERNALDATE) and its derived data (see `derived`). Messages the folder's
//! index lists are looked up in the index file when needed, through its read windows, never
//! copied into memory; messages the index does not list (arrived since, or no index yet)
//! keep their base name here. What is learnt while the folder is selected is kept until the
//! next index is written, its derived data in an unnamed file beside the folder's tmp/, so
//! that a client fetching a whole large folder does not hold its derived data in memory.
//!
//! Each message is named by a record number: below [`EXTRA`] a record of the index, from
//! there on one kept here. Owns no IMAP state and decides nothing about when the index is
//! written; the view does.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::maildir::fast::FastMap;
use crate::maildir::{Facts, Folder, Index, Record, basename_of};

/// First record number of a message the index does not list.
pub(super) const EXTRA: u32 = 1 << 31;

/// What was learnt of one message since the index was written.
#[derive(Debug, Clone, Copy, Default)]
struct Learnt {
    facts: Facts,
    /// Where its derived data is in the spill file.
    derived: Option<(u64, u32)>,
}

/// Derived data learnt and not yet in an index: appended to an unnamed file.
#[derive(Debug)]
struct Spill {
    file: File,
    /// Bytes written to the file; what is in `pending` follows.
    written: u64,
    pending: Vec<u8>,
}

/// Bytes of derived data gathered before they go to the spill file.
const SPILL_BUFFER: usize = 256 * 1024;

impl Spill {
    fn create(folder: &Folder) -> Option<Spill> {
        match folder.create_scratch_file() {
            Ok(file) => Some(Spill {
                file,
                written: 0,
                pending: Vec::new(),
            }),
            Err(e) => {
                log::warn!("no scratch file for derived data: {e}; not keeping it");
                None
            }
        }
    }

    fn push(&mut self, data: &[u8]) -> io::Result<(u64, u32)> {
        let at = self.written + self.pending.len() as u64;
        let len = u32::try_from(data.len()).map_err(|_| io::Error::other("too long"))?;
        self.pending.extend_from_slice(data);
        if self.pending.len() >= SPILL_BUFFER {
            self.file.write_all_at(&self.pending, self.written)?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok((at, len))
    }

    fn get(&self, (at, len): (u64, u32)) -> io::Result<Vec<u8>> {
        let len = len as usize;
        if at >= self.written {
            let start = usize::try_from(at - self.written).unwrap_or(usize::MAX);
            return self
                .pending
                .get(start..start + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| io::Error::other("spilled data out of range"));
        }
        let mut out = vec![0u8; len];
        self.file.read_exact_at(&mut out, at)?;
        Ok(out)
    }
}

#[derive(Debug, Default)]
pub(super) struct Catalog {
    index: Option<Index>,
    /// Base names of the messages the index does not list.
    extra: Vec<Box<str>>,
    learnt: FastMap<u32, Learnt>,
    spill: Option<Spill>,
    /// Learnt since the index was written (facts or derived data).
    unsaved: usize,
}

impl Catalog {
    pub(super) fn new(index: Option<Index>) -> Catalog {
        Catalog {
            index,
            ..Catalog::default()
        }
    }

    pub(super) fn index(&self) -> Option<&Index> {
        self.index.as_ref()
    }

    pub(super) fn index_mut(&mut self) -> Option<&mut Index> {
        self.index.as_mut()
    }

    /// A message the index does not list, by its base name: its record number.
    pub(super) fn add(&mut self, basename: &str) -> u32 {
        self.extra.push(basename.into());
        EXTRA + (self.extra.len() - 1) as u32
    }

    /// How many messages are kept here rather than in the index.
    pub(super) fn extra_count(&self) -> usize {
        self.extra.len()
    }

    /// How many facts and derived data were learnt since the index was written.
    pub(super) fn unsaved(&self) -> usize {
        self.unsaved
    }

    fn index_record(&mut self, rec: u32) -> io::Result<Record> {
        match self.index.as_mut() {
            Some(index) => index.record(rec),
            None => Err(io::Error::other("no index")),
        }
    }

    /// The base name of message `rec`.
    pub(super) fn basename(&mut self, rec: u32) -> io::Result<&str> {
        if rec >= EXTRA {
            return self
                .extra
                .get((rec - EXTRA) as usize)
                .map(|b| &**b)
                .ok_or_else(|| io::Error::other("no such message"));
        }
        let r = self.index_record(rec)?;
        let odd = r.odd_name();
        let index = self
            .index
            .as_mut()
            .ok_or_else(|| io::Error::other("no index"))?;
        let name = index.name(&r)?;
        Ok(if odd { basename_of(name) } else { name })
    }

    /// Message `rec`'s MODSEQ as the index records it; `None` for a message the index does
    /// not list (or that cannot be read: logged).
    pub(super) fn modseq(&mut self, rec: u32) -> Option<u64> {
        if rec >= EXTRA {
            return None;
        }
        match self.index_record(rec) {
            Ok(r) => Some(r.modseq),
            Err(e) => {
                log::warn!("reading the index: {e}");
                None
            }
        }
    }

    /// What is known of message `rec`'s facts: learnt, or from the index.
    pub(super) fn facts(&mut self, rec: u32) -> Facts {
        let learnt = self.learnt.get(&rec).map(|l| l.facts).unwrap_or_default();
        if rec >= EXTRA {
            return learnt;
        }
        match self.index_record(rec) {
            Ok(r) => learnt.or(r.facts),
            Err(e) => {
                log::warn!("reading the index: {e}");
                learnt
            }
        }
    }

    /// Message `rec`'s derived data, learnt or from the index, if any.
    pub(super) fn derived(&mut self, rec: u32) -> Option<Vec<u8>> {
        if let Some(at) = self.learnt.get(&rec).and_then(|l| l.derived) {
            return match self.spill.as_ref().map(|s| s.get(at)) {
                Some(Ok(data)) => Some(data),
                Some(Err(e)) => {
                    log::warn!("reading learnt derived data back: {e}");
                    None
                }
                None => None,
            };
        }
        if rec >= EXTRA {
            return None;
        }
        let r = self.index_record(rec).ok()?;
        let index = self.index.as_mut()?;
        match index.derived(&r) {
            Ok(d) => d,
            Err(e) => {
                log::warn!("reading the index: {e}");
                None
            }
        }
    }

    /// Keeps what was learnt of message `rec` (facts it did not know, and derived data that
    /// replaces what it had) until the next index is written.
    pub(super) fn learn(
        &mut self,
        folder: &Folder,
        rec: u32,
        facts: Facts,
        derived: Option<&[u8]>,
    ) {
        let known = self.facts(rec);
        let new_facts = facts.or(known) != known;
        if !new_facts && derived.is_none() {
            return;
        }
        let stored = derived.and_then(|d| {
            if self.spill.is_none() {
                self.spill = Spill::create(folder);
            }
            let spill = self.spill.as_mut()?;
            match spill.push(d) {
                Ok(at) => Some(at),
                Err(e) => {
                    log::warn!("keeping derived data: {e}");
                    None
                }
            }
        });
        let entry = self.learnt.entry(rec).or_default();
        entry.facts = entry.facts.or(facts);
        if stored.is_some() {
            entry.derived = stored;
        }
        self.unsaved += 1;
    }

    /// Starts afresh from `index`, which lists every message still wanted (written by the
    /// view from what this catalog knew): what was learnt is in it now.
    pub(super) fn replace(&mut self, index: Index, kept_extra: Vec<Box<str>>) {
        self.index = Some(index);
        self.extra = kept_extra;
        self.learnt = FastMap::default();
        self.spill = None;
        self.unsaved = 0;
    }

    /// Forgets the index (it could not be read): every message must be kept here.
    pub(super) fn drop_index(&mut self) {
        self.index = None;
    }
}
