//! mdimap's own index of a folder, `mdimapindex` beside `courierimapuiddb`: for every message
//! its UID, file name (so its flags), keywords, size with CRLF line ends, INTERNALDATE and
//! the derived data the session computed from it (opaque here), with the folder's change
//! stamp at the time the messages were listed. A folder whose stamp has not moved since is
//! opened from the index alone, without listing cur/ or reading the UID database.
//!
//! Derived data is disposable (DESIGN.md): nothing correct depends on this file. It is never
//! written in place: a writer fills a file in the folder's tmp/ under a fixed name (which
//! also keeps a second writer out: it finds the name taken and leaves the writing to the
//! first), fsyncs it and renames it into place, so a reader sees the old file or the new one,
//! whole, and never waits. Every part a reader relies on is checked before it is used: the
//! magic and version, a CRC-32 of the header and of each section (records, names, keyword
//! sets) when the file is opened, the file's length, and a CRC-32 of each message's derived
//! data when that is read. A missing, truncated, corrupt, foreign or stale index is never
//! served: it is treated as absent and rewritten from a scan.
//!
//! The courierimapuiddb stays the source of UIDs, untouched by this module: the index is a
//! copy of what a scan found, trusted only while the stamp it was written with still
//! describes the folder ([`Index::describes`]).
//!
//! Every message also carries its MODSEQ (RFC 7162) and the header the folder's
//! HIGHESTMODSEQ: the mod-sequences are this file's too, disposable like the rest. They are
//! given out by time (see `modseq.rs`), so a folder whose index is lost gives every
//! message a new, higher one: its clients fetch the flags again, and no change is missed.
//!
//! Layout (little-endian), version 2:
//!
//! ```text
//! preamble   magic "mdimapix", version u32, header length u32, header CRC u32, 0 u32,
//!            file length u64                                             (32 bytes)
//! header     UIDVALIDITY u32, UIDNEXT u32, messages u32, settled u8, 0 u8 × 3,
//!            HIGHESTMODSEQ u64, stamp: times u32, (secs i64, nanos u32) × times, database inode u64, size u64,
//!            sections: records, names, names length, derived, derived length,
//!            keyword sets, keyword sets length (u64 each), CRCs of records, names and
//!            keyword sets (u32 each), keyword table: count u32, (length u16, bytes) × count
//! records    56 bytes per message, ascending UID (`Record`)
//! names      the messages' names, UTF-8, one after another
//! derived    per message with derived data: CRC u32 of what follows, then the data
//! keyword    per message with keywords: count u16, keyword table indexes u16 × count
//! sets
//! ```

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime};

use crate::maildir::fast::FastMap;

use super::beneath::{Dir, Kind};
use super::error::StoreError;
use super::flags::{InfoFlags, basename_of};
use super::folder::Folder;
use super::stamp::{ChangeStamp, FileTime};
use super::unique::FILE_MODE;

/// The index's name in the folder's directory.
pub(crate) const INDEX_FILE: &str = "mdimapindex";
/// What mdimap kept before the index (sizes and header lengths as text); removed when an
/// index is written, ignored otherwise.
const OLD_CACHE_FILE: &str = "mdimapcache";
/// The name a writer fills in tmp/ before renaming it into place: one writer at a time.
const WRITING_NAME: &str = "mdimapindex.writing";
/// A writer's file this old (by modification time) was left by a writer that died.
const WRITING_STALE: Duration = Duration::from_secs(600);

const MAGIC: &[u8; 8] = b"mdimapix";
const VERSION: u32 = 2;
const PREAMBLE: u64 = 32;
const RECORD: u64 = 56;
/// How much a reader fetches at once around what it was asked for.
const WINDOW: usize = 64 * 1024;
/// Buffer of a writer's section before it goes to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// Letters of the system flags as bits of a record's flag byte.
const FLAG_LETTERS: [(u8, u8); 5] = [(b'D', 1), (b'F', 2), (b'R', 4), (b'S', 8), (b'T', 16)];
/// The record's name is the whole file name, not a base name to which `:2,` and the flags
/// are added: a name without `:2,`, with other letters, or letters out of order.
const ODD_NAME: u8 = 32;

const NO_KEYWORDS: u32 = u32::MAX;
const UNKNOWN_SIZE: u64 = u64::MAX;
const UNKNOWN_DATE: i64 = i64::MIN;
const UNKNOWN_HEADER: u32 = u32::MAX;

/// Facts about a message that cost a read or a `stat` to learn and never change while it
/// exists (a maildir message is never rewritten; a flag change renames it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// RFC822.SIZE: the size with CRLF line ends.
    pub size: Option<u64>,
    /// Bytes of the file up to and including the empty line ending the header.
    pub header_len: Option<u32>,
    /// INTERNALDATE: the file's modification time, seconds since the epoch.
    pub date: Option<i64>,
}

impl Facts {
    /// `self`, with what it does not know taken from `other`.
    pub fn or(self, other: Facts) -> Facts {
        Facts {
            size: self.size.or(other.size),
            header_len: self.header_len.or(other.header_len),
            date: self.date.or(other.date),
        }
    }
}

/// What the index says of the folder as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexHeader {
    pub uidvalidity: u32,
    pub uidnext: u32,
    /// The folder's change stamp when its messages were listed.
    pub stamp: ChangeStamp,
    /// The stamp was settled when taken, and the messages are exactly those the folder
    /// held at that stamp: only then may an equal stamp stand for a scan.
    pub settled: bool,
    /// HIGHESTMODSEQ (RFC 7162): at least every message's MODSEQ; moved on by expunges too.
    pub highest_modseq: u64,
}

/// One message's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub uid: u32,
    flags: u8,
    name_len: u16,
    name_off: u32,
    keywords: u32,
    pub facts: Facts,
    derived_len: u32,
    derived_off: u64,
    /// Its MODSEQ (RFC 7162).
    pub modseq: u64,
}

impl Record {
    /// The system flags the file name carries (for an odd name: see [`Index::name`]).
    pub fn flag_bits(&self) -> u8 {
        self.flags & !ODD_NAME
    }

    /// True when [`Index::name`] gives the whole file name rather than the base name.
    pub fn odd_name(&self) -> bool {
        self.flags & ODD_NAME != 0
    }

    pub fn has_keywords(&self) -> bool {
        self.keywords != NO_KEYWORDS
    }

    pub fn has_derived(&self) -> bool {
        self.derived_len != 0
    }

    fn decode(b: &[u8]) -> Option<Record> {
        let size = u64_at(b, 16)?;
        let date = i64::from_le_bytes(b.get(24..32)?.try_into().ok()?);
        let header_len = u32_at(b, 32)?;
        Some(Record {
            uid: u32_at(b, 0)?,
            flags: *b.get(4)?,
            name_len: u16::from_le_bytes(b.get(6..8)?.try_into().ok()?),
            name_off: u32_at(b, 8)?,
            keywords: u32_at(b, 12)?,
            facts: Facts {
                size: (size != UNKNOWN_SIZE).then_some(size),
                date: (date != UNKNOWN_DATE).then_some(date),
                header_len: (header_len != UNKNOWN_HEADER).then_some(header_len),
            },
            derived_len: u32_at(b, 36)?,
            derived_off: u64_at(b, 40)?,
            modseq: u64_at(b, 48)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.uid.to_le_bytes());
        out.push(self.flags);
        out.push(0);
        out.extend_from_slice(&self.name_len.to_le_bytes());
        out.extend_from_slice(&self.name_off.to_le_bytes());
        out.extend_from_slice(&self.keywords.to_le_bytes());
        out.extend_from_slice(&self.facts.size.unwrap_or(UNKNOWN_SIZE).to_le_bytes());
        out.extend_from_slice(&self.facts.date.unwrap_or(UNKNOWN_DATE).to_le_bytes());
        out.extend_from_slice(
            &self
                .facts
                .header_len
                .unwrap_or(UNKNOWN_HEADER)
                .to_le_bytes(),
        );
        out.extend_from_slice(&self.derived_len.to_le_bytes());
        out.extend_from_slice(&self.derived_off.to_le_bytes());
        out.extend_from_slice(&self.modseq.to_le_bytes());
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The flag bits of `filename` when it is `<base>:2,<letters>` with only system-flag letters
/// in order (as the store names files it renames), else `None`: the name is odd and kept
/// whole (a name with a `/`, as a read-only scan gives a message in new/, is always odd).
pub fn regular_flag_bits(filename: &str) -> Option<u8> {
    if filename.contains('/') {
        return None;
    }
    let (_, info) = filename.split_once(':')?;
    letter_bits(info.strip_prefix("2,")?)
}

/// The flag bits of the info letters `letters` (after `:2,`) when they are system flags in
/// order, each once; else `None`.
pub fn letter_bits(letters: &str) -> Option<u8> {
    let mut bits = 0u8;
    let mut last = 0u8;
    for l in letters.bytes() {
        let (_, bit) = FLAG_LETTERS.iter().find(|(letter, _)| *letter == l)?;
        if l <= last {
            return None;
        }
        last = l;
        bits |= bit;
    }
    Some(bits)
}

/// The file name of a message with base name `base` and the system flags `bits`.
pub fn regular_name(base: &str, bits: u8) -> String {
    let mut name = String::with_capacity(base.len() + 8);
    name.push_str(base);
    name.push_str(":2,");
    for (letter, bit) in FLAG_LETTERS {
        if bits & bit != 0 {
            name.push(char::from(letter));
        }
    }
    name
}

/// The flag bit of the system flag `letter`; 0 for any other letter.
pub fn flag_bit(letter: u8) -> u8 {
    FLAG_LETTERS
        .iter()
        .find(|(l, _)| *l == letter)
        .map_or(0, |(_, bit)| *bit)
}

/// The flag bits of `flags`' system flags.
pub fn flag_bits(flags: &InfoFlags) -> u8 {
    FLAG_LETTERS
        .iter()
        .filter(|(l, _)| flags.has(*l))
        .fold(0, |bits, (_, bit)| bits | bit)
}

/// The system flags of `bits`.
pub fn flags_of_bits(bits: u8) -> InfoFlags {
    let mut flags = InfoFlags::default();
    for (letter, bit) in FLAG_LETTERS {
        if bits & bit != 0 {
            flags.set(letter, true);
        }
    }
    flags
}

/// Where the sections are.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    count: u32,
    records_at: u64,
    names_at: u64,
    names_len: u64,
    derived_at: u64,
    derived_len: u64,
    kwsets_at: u64,
    kwsets_len: u64,
}

/// Part of the file read at once, kept for the next read nearby.
#[derive(Debug, Default)]
struct Window {
    at: u64,
    data: Vec<u8>,
}

impl Window {
    /// `len` bytes at `off`, read around it when not already here.
    fn get(&mut self, file: &File, off: u64, len: usize) -> io::Result<&[u8]> {
        let start = off
            .checked_sub(self.at)
            .and_then(|s| usize::try_from(s).ok());
        let here = start.is_some_and(|s| s.checked_add(len).is_some_and(|e| e <= self.data.len()));
        if !here {
            self.at = off;
            self.data.resize(len.max(WINDOW), 0);
            let mut filled = 0;
            while filled < self.data.len() {
                match file.read_at(&mut self.data[filled..], off + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.data.clear();
                        return Err(e);
                    }
                }
            }
            self.data.truncate(filled);
            if filled < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the index ends early",
                ));
            }
        }
        let s = usize::try_from(off - self.at).unwrap_or(usize::MAX);
        self.data
            .get(s..s + len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }
}

/// An index file, open and checked: what it says holds for the file as it was written.
/// Reads go through windows, so walking the messages in order costs a read per many of
/// them, and nothing but the windows is held in memory.
#[derive(Debug)]
pub struct Index {
    file: File,
    header: IndexHeader,
    keywords: Vec<String>,
    layout: Layout,
    records: Window,
    names: Window,
    derived: Window,
}

fn corrupt(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt index: {why}"))
}

/// Reads `len` bytes at `off` in chunks, feeding each to `f`.
fn stream(file: &File, off: u64, len: u64, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0u8; WRITE_BUFFER];
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from(len - done)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = file.read_at(&mut buf[..want], off + done)?;
        if n == 0 {
            return Err(corrupt("truncated"));
        }
        f(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

fn crc_of(file: &File, off: u64, len: u64) -> io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    stream(file, off, len, |b| h.update(b))?;
    Ok(h.finalize())
}

/// A little-endian reader of the header.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| corrupt("header too short"))?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
}

/// What the header holds besides the layout, for writing it.
struct HeaderPlan<'a> {
    header: &'a IndexHeader,
    keywords: &'a [String],
    layout: Layout,
    crcs: [u32; 3],
}

impl HeaderPlan<'_> {
    fn encode(&self) -> Vec<u8> {
        let h = self.header;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&h.uidvalidity.to_le_bytes());
        out.extend_from_slice(&h.uidnext.to_le_bytes());
        out.extend_from_slice(&self.layout.count.to_le_bytes());
        out.extend_from_slice(&[u8::from(h.settled), 0, 0, 0]);
        out.extend_from_slice(&h.highest_modseq.to_le_bytes());
        let (times, (ino, size)) = h.stamp.parts();
        out.extend_from_slice(&u32::try_from(times.len()).unwrap_or(0).to_le_bytes());
        for t in times {
            out.extend_from_slice(&t.secs.to_le_bytes());
            out.extend_from_slice(&t.nanos.to_le_bytes());
        }
        out.extend_from_slice(&ino.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        let l = &self.layout;
        for v in [
            l.records_at,
            l.names_at,
            l.names_len,
            l.derived_at,
            l.derived_len,
            l.kwsets_at,
            l.kwsets_len,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for crc in self.crcs {
            out.extend_from_slice(&crc.to_le_bytes());
        }
        out.extend_from_slice(
            &u32::try_from(self.keywords.len())
                .unwrap_or(0)
                .to_le_bytes(),
        );
        for k in self.keywords {
            out.extend_from_slice(&u16::try_from(k.len()).unwrap_or(0).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
        }
        out
    }
}

fn preamble(header_len: u32, header_crc: u32, file_len: u64) -> [u8; PREAMBLE as usize] {
    let mut p = [0u8; PREAMBLE as usize];
    p[..8].copy_from_slice(MAGIC);
    p[8..12].copy_from_slice(&VERSION.to_le_bytes());
    p[12..16].copy_from_slice(&header_len.to_le_bytes());
    p[16..20].copy_from_slice(&header_crc.to_le_bytes());
    p[24..32].copy_from_slice(&file_len.to_le_bytes());
    p
}

impl Index {
    /// The folder's index, checked; `None` when there is none or it cannot be used (logged:
    /// it will be rewritten, and the folder is scanned meanwhile).
    pub fn open(folder: &Folder) -> Option<Index> {
        let file = match folder.open_own_file(INDEX_FILE) {
            Ok(Some(file)) => file,
            Ok(None) => return None,
            Err(e) => {
                log::warn!("not using the index: {e}");
                return None;
            }
        };
        match Index::check(file) {
            Ok(index) => Some(index),
            Err(e) => {
                log::warn!(
                    "{}: {e}; it will be rebuilt",
                    folder.path().join(INDEX_FILE).display()
                );
                None
            }
        }
    }

    /// Checks everything the file says before anything of it is believed.
    fn check(file: File) -> io::Result<Index> {
        let actual_len = file.metadata()?.len();
        let mut pre = [0u8; PREAMBLE as usize];
        file.read_exact_at(&mut pre, 0)
            .map_err(|_| corrupt("too short"))?;
        if &pre[..8] != MAGIC {
            return Err(corrupt("not an mdimap index"));
        }
        let version = u32_at(&pre, 8).unwrap_or(0);
        if version != VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("index version {version}, not {VERSION}"),
            ));
        }
        let header_len = u32_at(&pre, 12).unwrap_or(0);
        let header_crc = u32_at(&pre, 16).unwrap_or(0);
        let file_len = u64_at(&pre, 24).unwrap_or(0);
        if u32_at(&pre, 20) != Some(0) {
            return Err(corrupt("preamble"));
        }
        if file_len != actual_len {
            return Err(corrupt("its length is not what it says"));
        }
        if u64::from(header_len) + PREAMBLE > actual_len || header_len > 16 << 20 {
            return Err(corrupt("header length"));
        }
        let mut hb = vec![0u8; header_len as usize];
        file.read_exact_at(&mut hb, PREAMBLE)?;
        if crc32fast::hash(&hb) != header_crc {
            return Err(corrupt("header checksum"));
        }
        let mut c = Cursor { b: &hb, at: 0 };
        let uidvalidity = c.u32()?;
        let uidnext = c.u32()?;
        let count = c.u32()?;
        let settled = c.u8()? == 1;
        c.take(3)?;
        let highest_modseq = c.u64()?;
        let ntimes = c.u32()?;
        if ntimes > 64 {
            return Err(corrupt("stamp"));
        }
        let mut times = Vec::with_capacity(ntimes as usize);
        for _ in 0..ntimes {
            let secs = c.i64()?;
            let nanos = c.u32()?;
            times.push(FileTime { secs, nanos });
        }
        let uiddb = (c.u64()?, c.u64()?);
        let layout = Layout {
            count,
            records_at: c.u64()?,
            names_at: c.u64()?,
            names_len: c.u64()?,
            derived_at: c.u64()?,
            derived_len: c.u64()?,
            kwsets_at: c.u64()?,
            kwsets_len: c.u64()?,
        };
        let crcs = [c.u32()?, c.u32()?, c.u32()?];
        let nkeywords = c.u32()?;
        if nkeywords > u32::from(u16::MAX) {
            return Err(corrupt("keyword table"));
        }
        let mut keywords = Vec::with_capacity(nkeywords as usize);
        for _ in 0..nkeywords {
            let len = c.u16()?;
            let k = std::str::from_utf8(c.take(usize::from(len))?)
                .map_err(|_| corrupt("keyword not UTF-8"))?;
            keywords.push(k.to_string());
        }
        if c.at != hb.len() {
            return Err(corrupt("header length"));
        }
        let l = layout;
        let sane = l.records_at == PREAMBLE + u64::from(header_len)
            && Some(l.names_at)
                == u64::from(l.count)
                    .checked_mul(RECORD)
                    .map(|r| r + l.records_at)
            && l.names_len <= u64::from(u32::MAX)
            && Some(l.derived_at) == l.names_at.checked_add(l.names_len)
            && Some(l.kwsets_at) == l.derived_at.checked_add(l.derived_len)
            && l.kwsets_at.checked_add(l.kwsets_len) == Some(actual_len);
        if !sane {
            return Err(corrupt("sections"));
        }
        let records_len = l.names_at - l.records_at;
        if crc_of(&file, l.records_at, records_len)? != crcs[0]
            || crc_of(&file, l.names_at, l.names_len)? != crcs[1]
            || crc_of(&file, l.kwsets_at, l.kwsets_len)? != crcs[2]
        {
            return Err(corrupt("section checksum"));
        }
        Ok(Index {
            file,
            header: IndexHeader {
                uidvalidity,
                uidnext,
                stamp: ChangeStamp::from_parts(times, uiddb),
                settled,
                highest_modseq,
            },
            keywords,
            layout,
            records: Window::default(),
            names: Window::default(),
            derived: Window::default(),
        })
    }

    pub fn header(&self) -> &IndexHeader {
        &self.header
    }

    /// How many messages it lists.
    pub fn len(&self) -> u32 {
        self.layout.count
    }

    pub fn is_empty(&self) -> bool {
        self.layout.count == 0
    }

    /// True when the folder is as this index says, so its messages may stand for a scan:
    /// the index was written settled, the folder's stamp has not moved since, the folder is
    /// one whose timestamps can be trusted (local, not a filesystem-shared folder's local
    /// copy, which follows another folder), and new/ holds no message to be moved into
    /// cur/ or shown. Costs a few `stat`s and a listing of new/, never of cur/.
    pub fn describes(&self, folder: &Folder) -> bool {
        self.header.settled
            && !folder.is_linked()
            && folder.change_stamp().as_ref() == Some(&self.header.stamp)
            && !folder.on_network_fs()
            && matches!(folder.has_new_messages(), Ok(false))
    }

    /// The record of message `i` (in the order written: ascending UID).
    pub fn record(&mut self, i: u32) -> io::Result<Record> {
        if i >= self.layout.count {
            return Err(corrupt("no such record"));
        }
        let off = self.layout.records_at + u64::from(i) * RECORD;
        let b = self.records.get(&self.file, off, RECORD as usize)?;
        let r = Record::decode(b).ok_or_else(|| corrupt("record"))?;
        let name_end = u64::from(r.name_off) + u64::from(r.name_len);
        let derived_ok = r.derived_len == 0
            || (r.derived_len >= 4
                && r.derived_off >= self.layout.derived_at
                && r.derived_off + u64::from(r.derived_len)
                    <= self.layout.derived_at + self.layout.derived_len);
        let keywords_ok =
            r.keywords == NO_KEYWORDS || u64::from(r.keywords) < self.layout.kwsets_len;
        if name_end > self.layout.names_len || r.name_len == 0 || !derived_ok || !keywords_ok {
            return Err(corrupt("record points outside its sections"));
        }
        Ok(r)
    }

    /// The record's name: its base name, or its whole file name when [`Record::odd_name`].
    pub fn name(&mut self, r: &Record) -> io::Result<&str> {
        let off = self.layout.names_at + u64::from(r.name_off);
        let b = self.names.get(&self.file, off, usize::from(r.name_len))?;
        std::str::from_utf8(b).map_err(|_| corrupt("name not UTF-8"))
    }

    /// The record's file name in cur/.
    pub fn filename(&mut self, r: &Record) -> io::Result<String> {
        let odd = r.odd_name();
        let bits = r.flag_bits();
        let name = self.name(r)?;
        Ok(if odd {
            name.to_string()
        } else {
            regular_name(name, bits)
        })
    }

    /// The record's keywords.
    pub fn keywords(&mut self, r: &Record) -> io::Result<Vec<String>> {
        if !r.has_keywords() {
            return Ok(Vec::new());
        }
        let at = self.layout.kwsets_at + u64::from(r.keywords);
        let end = self.layout.kwsets_at + self.layout.kwsets_len;
        let mut n = [0u8; 2];
        self.file.read_exact_at(&mut n, at)?;
        let n = u64::from(u16::from_le_bytes(n));
        if at + 2 + 2 * n > end {
            return Err(corrupt("keyword set"));
        }
        let mut ids = vec![0u8; 2 * n as usize];
        self.file.read_exact_at(&mut ids, at + 2)?;
        ids.chunks_exact(2)
            .map(|c| {
                let id = usize::from(u16::from_le_bytes([c[0], c[1]]));
                self.keywords
                    .get(id)
                    .cloned()
                    .ok_or_else(|| corrupt("keyword index"))
            })
            .collect()
    }

    /// The record's derived data, or `None` when it has none, or what it has fails its
    /// checksum (never served: the caller computes it again).
    pub fn derived(&mut self, r: &Record) -> io::Result<Option<Vec<u8>>> {
        if !r.has_derived() {
            return Ok(None);
        }
        let b = self
            .derived
            .get(&self.file, r.derived_off, r.derived_len as usize)?;
        let (crc, data) = b.split_at(4);
        if u32_at(crc, 0) != Some(crc32fast::hash(data)) {
            log::warn!(
                "the index's derived data of UID {} is corrupt: not used",
                r.uid
            );
            return Ok(None);
        }
        Ok(Some(data.to_vec()))
    }
}

/// What a writer is given for one message.
#[derive(Debug, Clone, Copy)]
pub struct IndexEntry<'a> {
    pub uid: u32,
    /// Its name in cur/.
    pub filename: &'a str,
    pub keywords: &'a [String],
    pub facts: Facts,
    pub derived: Option<&'a [u8]>,
    pub modseq: u64,
}

impl IndexEntry<'_> {
    /// How many bytes its name takes in the index.
    pub fn name_len(filename: &str) -> u64 {
        match regular_flag_bits(filename) {
            Some(_) => basename_of(filename).len() as u64,
            None => filename.len() as u64,
        }
    }
}

/// A section written in order at a known place, with its checksum.
struct Section {
    at: u64,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    written: u64,
}

impl Section {
    fn new(at: u64) -> Section {
        Section {
            at,
            buf: Vec::with_capacity(WRITE_BUFFER),
            crc: crc32fast::Hasher::new(),
            written: 0,
        }
    }

    fn push(&mut self, file: &File, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.buf.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.buf.len() >= WRITE_BUFFER {
            self.flush(file)?;
        }
        Ok(())
    }

    fn flush(&mut self, file: &File) -> io::Result<()> {
        file.write_all_at(&self.buf, self.at)?;
        self.at += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Writes a new index: created with the header and what the caller knows in advance (how
/// many messages, how long their names are, every keyword), given the messages in ascending
/// UID order, then put in place by [`IndexWriter::finish`]. Dropped unfinished, it removes
/// its file.
pub struct IndexWriter<'f> {
    folder: &'f Folder,
    top: Dir,
    tmp: Dir,
    file: Option<File>,
    header: IndexHeader,
    keywords: Vec<String>,
    keyword_ids: FastMap<String, u16>,
    layout: Layout,
    header_len: u32,
    records: Section,
    names: Section,
    derived: Section,
    kwsets: Vec<u8>,
    pushed: u32,
    last_uid: u32,
}

impl<'f> IndexWriter<'f> {
    /// Starts an index of `count` messages whose names take `names_len` bytes (see
    /// [`IndexEntry::name_len`]) and whose keywords are among `keywords`. `Ok(None)` when
    /// another process is writing one now: the writing is left to it.
    pub fn create(
        folder: &'f Folder,
        header: IndexHeader,
        count: u32,
        names_len: u64,
        keywords: Vec<String>,
    ) -> Result<Option<IndexWriter<'f>>, StoreError> {
        if keywords.len() > usize::from(u16::MAX) || names_len > u64::from(u32::MAX) {
            return Err(StoreError::Cannot(
                "too many keywords or names for an index".to_string(),
            ));
        }
        let (top, tmp) = folder.own_dirs()?;
        let Some(file) = claim_writing(&tmp)? else {
            return Ok(None);
        };
        let keyword_ids = keywords
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        let mut layout = Layout {
            count,
            ..Layout::default()
        };
        let plan = HeaderPlan {
            header: &header,
            keywords: &keywords,
            layout,
            crcs: [0; 3],
        };
        let header_len = u32::try_from(plan.encode().len())
            .map_err(|_| StoreError::Cannot("index header too long".to_string()))?;
        layout.records_at = PREAMBLE + u64::from(header_len);
        layout.names_at = layout.records_at + u64::from(count) * RECORD;
        layout.names_len = names_len;
        layout.derived_at = layout.names_at + names_len;
        Ok(Some(IndexWriter {
            folder,
            records: Section::new(layout.records_at),
            names: Section::new(layout.names_at),
            derived: Section::new(layout.derived_at),
            top,
            tmp,
            file: Some(file),
            header,
            keywords,
            keyword_ids,
            layout,
            header_len,
            kwsets: Vec::new(),
            pushed: 0,
            last_uid: 0,
        }))
    }

    fn fail(&self, e: io::Error) -> StoreError {
        self.tmp.fail(WRITING_NAME, e)
    }

    /// Adds the next message.
    pub fn push(&mut self, e: &IndexEntry<'_>) -> Result<(), StoreError> {
        let Some(file) = self.file.as_ref() else {
            return Err(StoreError::Cannot("index writer closed".to_string()));
        };
        if self.pushed >= self.layout.count || (self.pushed > 0 && e.uid <= self.last_uid) {
            return Err(StoreError::Cannot(
                "index messages out of order or too many".to_string(),
            ));
        }
        if e.filename.is_empty() || e.filename.contains(['/', '\0']) {
            return Err(StoreError::InvalidName(e.filename.to_string()));
        }
        let (flags, name) = match regular_flag_bits(e.filename) {
            Some(bits) => (bits, basename_of(e.filename)),
            None => {
                let flags = flag_bits(&InfoFlags::from_filename(e.filename));
                (flags | ODD_NAME, e.filename)
            }
        };
        let name_len = u16::try_from(name.len())
            .map_err(|_| StoreError::InvalidName(e.filename.to_string()))?;
        let name_off = u32::try_from(self.names.written).unwrap_or(u32::MAX);
        if self.names.written + u64::from(name_len) > self.layout.names_len {
            return Err(StoreError::Cannot(
                "index names longer than announced".to_string(),
            ));
        }
        let keywords = if e.keywords.is_empty() {
            NO_KEYWORDS
        } else {
            let at = u32::try_from(self.kwsets.len())
                .map_err(|_| StoreError::Cannot("too many keywords".to_string()))?;
            let n = u16::try_from(e.keywords.len())
                .map_err(|_| StoreError::Cannot("too many keywords".to_string()))?;
            self.kwsets.extend_from_slice(&n.to_le_bytes());
            for k in e.keywords {
                let id = self.keyword_ids.get(k).copied().ok_or_else(|| {
                    StoreError::Cannot(format!("keyword {k:?} was not announced"))
                })?;
                self.kwsets.extend_from_slice(&id.to_le_bytes());
            }
            at
        };
        let (derived_off, derived_len) = match e.derived {
            Some(data) if !data.is_empty() => {
                let len = u32::try_from(data.len() + 4)
                    .map_err(|_| StoreError::Cannot("derived data too long".to_string()))?;
                let off = self.layout.derived_at + self.derived.written;
                let crc = crc32fast::hash(data).to_le_bytes();
                self.derived.push(file, &crc).map_err(|e| self.fail(e))?;
                let file = self
                    .file
                    .as_ref()
                    .ok_or_else(|| StoreError::Cannot("index writer closed".to_string()))?;
                self.derived.push(file, data).map_err(|e| self.fail(e))?;
                (off, len)
            }
            _ => (0, 0),
        };
        let record = Record {
            uid: e.uid,
            flags,
            name_len,
            name_off,
            keywords,
            facts: e.facts,
            derived_len,
            derived_off,
            modseq: e.modseq,
        };
        let mut bytes = Vec::with_capacity(RECORD as usize);
        record.encode(&mut bytes);
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| StoreError::Cannot("index writer closed".to_string()))?;
        let written = self
            .records
            .push(file, &bytes)
            .and_then(|()| self.names.push(file, name.as_bytes()));
        written.map_err(|e| self.fail(e))?;
        self.pushed += 1;
        self.last_uid = e.uid;
        Ok(())
    }

    /// Writes the rest, fsyncs the file and renames it into place; returns it opened for
    /// reading. Removes the old text cache, which the index replaces.
    pub fn finish(mut self) -> Result<Index, StoreError> {
        let Some(file) = self.file.take() else {
            return Err(StoreError::Cannot("index writer closed".to_string()));
        };
        let result = self.complete(&file);
        if let Err(e) = result {
            remove_writing(&self.tmp);
            return Err(e);
        }
        super::crash::at("index-staged");
        if let Err(e) = self.tmp.rename(WRITING_NAME, &self.top, INDEX_FILE) {
            remove_writing(&self.tmp);
            return Err(self.top.fail(INDEX_FILE, e));
        }
        match self.top.remove_file(OLD_CACHE_FILE) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                log::debug!("cannot remove the old {OLD_CACHE_FILE}: {e}");
            }
            _ => {}
        }
        Ok(Index {
            file,
            header: self.header.clone(),
            keywords: std::mem::take(&mut self.keywords),
            layout: self.layout,
            records: Window::default(),
            names: Window::default(),
            derived: Window::default(),
        })
    }

    fn complete(&mut self, file: &File) -> Result<(), StoreError> {
        if self.pushed != self.layout.count || self.names.written != self.layout.names_len {
            return Err(StoreError::Cannot(
                "index messages or names fewer than announced".to_string(),
            ));
        }
        let io = (|| -> io::Result<()> {
            self.records.flush(file)?;
            self.names.flush(file)?;
            self.derived.flush(file)?;
            self.layout.derived_len = self.derived.written;
            self.layout.kwsets_at = self.layout.derived_at + self.layout.derived_len;
            self.layout.kwsets_len = self.kwsets.len() as u64;
            file.write_all_at(&self.kwsets, self.layout.kwsets_at)?;
            let records_crc = std::mem::take(&mut self.records.crc).finalize();
            let names_crc = std::mem::take(&mut self.names.crc).finalize();
            let plan = HeaderPlan {
                header: &self.header,
                keywords: &self.keywords,
                layout: self.layout,
                crcs: [records_crc, names_crc, crc32fast::hash(&self.kwsets)],
            };
            let header = plan.encode();
            if header.len() != self.header_len as usize {
                return Err(io::Error::other("index header changed length"));
            }
            let file_len = self.layout.kwsets_at + self.layout.kwsets_len;
            file.write_all_at(&header, PREAMBLE)?;
            file.write_all_at(
                &preamble(self.header_len, crc32fast::hash(&header), file_len),
                0,
            )?;
            file.set_len(file_len)?;
            file.sync_all()
        })();
        io.map_err(|e| self.fail(e))?;
        let _ = self.folder;
        Ok(())
    }
}

impl Drop for IndexWriter<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            remove_writing(&self.tmp);
        }
    }
}

fn remove_writing(tmp: &Dir) {
    if let Err(e) = tmp.remove_file(WRITING_NAME)
        && e.kind() != io::ErrorKind::NotFound
    {
        log::warn!(
            "cannot remove {}: {e}",
            tmp.path().join(WRITING_NAME).display()
        );
    }
}

/// Creates the writer's file in tmp/, or `None` when another writer has it. A file left
/// by a writer that died long ago is removed first.
fn claim_writing(tmp: &Dir) -> Result<Option<File>, StoreError> {
    for _ in 0..2 {
        match tmp.create_new(WRITING_NAME, FILE_MODE) {
            Ok(file) => return Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let stale = match tmp.stat(WRITING_NAME) {
                    Ok(st) if Kind::of(&st) == Kind::File => {
                        let modified = SystemTime::UNIX_EPOCH
                            + Duration::from_secs(u64::try_from(st.st_mtime).unwrap_or(0));
                        modified + WRITING_STALE < SystemTime::now()
                    }
                    // Not a file (a link planted there): in the way, remove it.
                    Ok(_) => true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                    Err(e) => return Err(tmp.fail(WRITING_NAME, e)),
                };
                if !stale {
                    return Ok(None);
                }
                remove_writing(tmp);
            }
            Err(e) => return Err(tmp.fail(WRITING_NAME, e)),
        }
    }
    Ok(None)
}

/// Reads a whole file of the store's (`Read` for a `File`), for tests.
#[cfg(test)]
fn read_all(mut f: File) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
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

    fn header(folder: &Folder) -> IndexHeader {
        IndexHeader {
            uidvalidity: 7,
            uidnext: 12,
            stamp: folder.change_stamp().unwrap(),
            settled: true,
            highest_modseq: 1_764_000_000_000_017,
        }
    }

    struct Msg {
        uid: u32,
        filename: String,
        keywords: Vec<String>,
        facts: Facts,
        derived: Option<Vec<u8>>,
    }

    fn sample() -> Vec<Msg> {
        vec![
            Msg {
                uid: 1,
                filename: "100.M1P1.h,S=5:2,FS".into(),
                keywords: vec![],
                facts: Facts {
                    size: Some(7),
                    header_len: Some(3),
                    date: Some(-5),
                },
                derived: Some(b"envelope and such".to_vec()),
            },
            Msg {
                uid: 3,
                filename: "101.M1P1.h:2,Sa".into(),
                keywords: vec!["Junk".into(), "$Label1".into()],
                facts: Facts::default(),
                derived: None,
            },
            Msg {
                uid: 11,
                filename: "102.M1P1.h".into(),
                keywords: vec!["$Label1".into()],
                facts: Facts {
                    size: Some(1 << 40),
                    header_len: None,
                    date: Some(1_700_000_000),
                },
                derived: Some(vec![0; 70_000]),
            },
        ]
    }

    fn write(folder: &Folder, h: IndexHeader, msgs: &[Msg]) -> Index {
        let names: u64 = msgs.iter().map(|m| IndexEntry::name_len(&m.filename)).sum();
        let mut kws: Vec<String> = Vec::new();
        for m in msgs {
            for k in &m.keywords {
                if !kws.contains(k) {
                    kws.push(k.clone());
                }
            }
        }
        let mut w = IndexWriter::create(folder, h, msgs.len() as u32, names, kws)
            .unwrap()
            .unwrap();
        for m in msgs {
            w.push(&IndexEntry {
                uid: m.uid,
                filename: &m.filename,
                keywords: &m.keywords,
                facts: m.facts,
                derived: m.derived.as_deref(),
                modseq: 1_764_000_000_000_000 + u64::from(m.uid),
            })
            .unwrap();
        }
        w.finish().unwrap()
    }

    fn check_reads_back(index: &mut Index, msgs: &[Msg]) {
        assert_eq!(index.len(), msgs.len() as u32);
        for (i, m) in msgs.iter().enumerate() {
            let r = index.record(i as u32).unwrap();
            assert_eq!(r.uid, m.uid);
            assert_eq!(index.filename(&r).unwrap(), m.filename);
            assert_eq!(index.keywords(&r).unwrap(), m.keywords);
            assert_eq!(r.facts, m.facts);
            assert_eq!(index.derived(&r).unwrap(), m.derived);
            assert_eq!(r.modseq, 1_764_000_000_000_000 + u64::from(m.uid));
            let flags = InfoFlags::from_filename(&m.filename);
            assert_eq!(r.flag_bits(), flag_bits(&flags), "{}", m.filename);
        }
    }

    #[test]
    fn round_trip() {
        let (_dir, folder) = inbox("index-rt");
        let msgs = sample();
        let h = header(&folder);
        let mut written = write(&folder, h.clone(), &msgs);
        check_reads_back(&mut written, &msgs);
        let mut read = Index::open(&folder).expect("the index is read back");
        assert_eq!(read.header(), &h);
        check_reads_back(&mut read, &msgs);
        assert!(read.describes(&folder) || !h.stamp.settled(SystemTime::now()));
        // Nothing is left in tmp/.
        assert_eq!(
            std::fs::read_dir(folder.path().join("tmp"))
                .unwrap()
                .count(),
            0
        );
        // An empty index too.
        let mut empty = write(&folder, h, &[]);
        check_reads_back(&mut empty, &[]);
        assert!(Index::open(&folder).unwrap().is_empty());
    }

    #[test]
    fn names_of_files() {
        assert_eq!(regular_flag_bits("a:2,DFRST"), Some(31));
        assert_eq!(regular_flag_bits("a:2,"), Some(0));
        assert_eq!(regular_flag_bits("a:2,SF"), None, "out of order");
        assert_eq!(regular_flag_bits("a:2,Sa"), None, "another letter");
        assert_eq!(regular_flag_bits("a:2,SS"), None);
        assert_eq!(regular_flag_bits("a"), None);
        assert_eq!(regular_flag_bits("a:1,S"), None);
        assert_eq!(regular_flag_bits("../new/a:2,"), None);
        assert_eq!(regular_name("a,S=5", 8 | 2), "a,S=5:2,FS");
        assert_eq!(flags_of_bits(31).letters(), "DFRST");
    }

    /// Every way the file can be damaged makes it unusable as a whole, never misread.
    #[test]
    fn truncated_corrupt_foreign_and_wrong_version_are_refused() {
        let (_dir, folder) = inbox("index-bad");
        let msgs = sample();
        write(&folder, header(&folder), &msgs);
        let path = folder.path().join(INDEX_FILE);
        let good = read_all(File::open(&path).unwrap());
        let derived_at = {
            let index = Index::open(&folder).unwrap();
            (index.layout.derived_at, index.layout.kwsets_at)
        };
        let put = |bytes: &[u8]| std::fs::write(&path, bytes).unwrap();
        // Truncated anywhere.
        for len in [0, 5, 31, 40, good.len() / 2, good.len() - 1] {
            put(&good[..len]);
            assert!(Index::open(&folder).is_none(), "truncated to {len}");
        }
        // One byte changed anywhere outside the derived data.
        for at in (0..good.len()).step_by(7) {
            if (derived_at.0 as usize..derived_at.1 as usize).contains(&at) {
                continue;
            }
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            put(&bad);
            assert!(Index::open(&folder).is_none(), "byte {at} changed");
        }
        // A byte of derived data changed: that message's derived data is not served.
        let mut bad = good.clone();
        bad[derived_at.0 as usize + 6] ^= 1;
        put(&bad);
        let mut index = Index::open(&folder).unwrap();
        let r = index.record(0).unwrap();
        assert_eq!(index.derived(&r).unwrap(), None);
        let r = index.record(2).unwrap();
        assert_eq!(index.derived(&r).unwrap(), msgs[2].derived);
        // Another version (1, before MODSEQ), another magic, garbage.
        let mut v1 = good.clone();
        v1[8] = 1;
        put(&v1);
        assert!(Index::open(&folder).is_none());
        put(b"mdimap-cache 1\nabc\t1\t2\n");
        assert!(Index::open(&folder).is_none());
        put(&good);
        assert!(Index::open(&folder).is_some());
    }

    #[test]
    fn a_stale_stamp_does_not_describe_the_folder() {
        let (_dir, folder) = inbox("index-stale");
        folder.scan().unwrap();
        let old = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        for p in ["cur", "new", super::super::uiddb::UIDDB_NAME] {
            File::open(folder.path().join(p))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let h = header(&folder);
        let index = write(&folder, h.clone(), &[]);
        assert!(index.describes(&folder));
        // Not settled when written: never trusted.
        let unsettled = write(
            &folder,
            IndexHeader {
                settled: false,
                ..h.clone()
            },
            &[],
        );
        assert!(!unsettled.describes(&folder));
        let index = write(&folder, h, &[]);
        // A message in new/: not described, although nothing else moved.
        let new = folder.path().join("new");
        std::fs::write(new.join("1.x"), b"a\n").unwrap();
        File::open(&new).unwrap().set_modified(old).unwrap();
        assert!(!index.describes(&folder));
        std::fs::remove_file(new.join("1.x")).unwrap();
        File::open(&new).unwrap().set_modified(old).unwrap();
        assert!(index.describes(&folder));
        // A rename in cur/.
        std::fs::write(folder.path().join("cur").join("2.x:2,"), b"a\n").unwrap();
        assert!(!index.describes(&folder));
    }

    #[test]
    fn one_writer_at_a_time_and_leftovers_are_cleared() {
        let (_dir, folder) = inbox("index-writers");
        let h = header(&folder);
        let first = IndexWriter::create(&folder, h.clone(), 0, 0, vec![])
            .unwrap()
            .unwrap();
        assert!(
            IndexWriter::create(&folder, h.clone(), 0, 0, vec![])
                .unwrap()
                .is_none(),
            "a second writer stays out"
        );
        drop(first);
        let writing = folder.path().join("tmp").join(WRITING_NAME);
        assert!(!writing.exists(), "an unfinished writer removes its file");
        // A file of a writer that died long ago is in nobody's way.
        std::fs::write(&writing, b"half").unwrap();
        File::options()
            .write(true)
            .open(&writing)
            .unwrap()
            .set_modified(SystemTime::now() - WRITING_STALE * 2)
            .unwrap();
        let w = IndexWriter::create(&folder, h, 0, 0, vec![])
            .unwrap()
            .unwrap();
        w.finish().unwrap();
        assert!(!writing.exists());
        assert!(Index::open(&folder).is_some());
    }

    #[test]
    fn writing_replaces_the_old_cache_and_a_link_is_not_followed() {
        let (dir, folder) = inbox("index-link");
        std::fs::write(folder.path().join(OLD_CACHE_FILE), "mdimap-cache 1\n").unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"not ours").unwrap();
        std::os::unix::fs::symlink(&elsewhere, folder.path().join(INDEX_FILE)).unwrap();
        assert!(Index::open(&folder).is_none(), "the link was followed");
        write(&folder, header(&folder), &sample());
        assert!(!folder.path().join(OLD_CACHE_FILE).exists());
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"not ours");
        assert!(
            std::fs::symlink_metadata(folder.path().join(INDEX_FILE))
                .unwrap()
                .is_file()
        );
    }
}
