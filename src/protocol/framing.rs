//! Line and literal framing: splits the client's byte stream into whole
//! commands before any parsing, the way imap-codec's fragmentizer does.
//!
//! A command is a line, and whenever a line ends in a literal announcement
//! (`{n}`, `{n+}` for LITERAL+, or `~{n}` for literal8) the next `n` octets and
//! then another line belong to it too. This module owns the size limits and the
//! `+` continuation request for synchronizing literals, and keeps memory bounded
//! whatever the client sends. It must not interpret the command's grammar; that
//! is `parser.rs`.

use super::chars::is_tag_char;
use std::io::{self, Read, Write};

/// How much is asked of the underlying stream per read.
const CHUNK: usize = 16 * 1024;

/// The continuation request that lets a client send a synchronizing literal.
const CONTINUATION: &[u8] = b"+ Ready for literal data\r\n";

/// Most literals in one command. Each costs two fragments (its line and its
/// octets) of about 100 bytes of bookkeeping whatever its size, so without
/// a count a command of 64 MB in one-octet literals (`{1+}` CRLF `x`, eight
/// octets apiece) took over 500 MB and ended the session at its memory
/// limit. No command needs more: SEARCH has at most 1,000 keys of at most
/// two strings each. Past it the command is refused as too large.
const MAX_LITERALS: usize = 10_000;

/// One piece of a command: a line without its CRLF, or a literal's octets,
/// in memory or (past the spool threshold) in a file.
#[derive(Debug, PartialEq)]
pub enum Fragment {
    Line(Vec<u8>),
    Literal(Vec<u8>),
    Spooled(Spool),
}

/// A large literal's octets, written to an unlinked file as they arrived so
/// that memory holds none of them (an APPEND of a 50 MB message).
#[derive(Debug)]
pub struct Spool {
    /// Positioned at the start of the octets.
    pub file: std::fs::File,
    pub len: u64,
}

impl PartialEq for Spool {
    /// Two spools are the same only if they are the same file.
    fn eq(&self, other: &Spool) -> bool {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd() == other.file.as_raw_fd()
    }
}

/// Makes the file a large literal is spooled to (an unlinked file in the
/// maildir's `tmp/`, supplied by the session after login).
pub type SpoolFactory = Box<dyn FnMut() -> io::Result<std::fs::File>>;

/// Size limits protecting the server's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One line, not counting literals or the line end.
    pub max_line: usize,
    /// One literal.
    pub max_literal: usize,
    /// A whole command: all its lines and literals.
    pub max_command: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 65_536,
            max_literal: 64 << 20,
            max_command: (64 << 20) + (1 << 20),
        }
    }
}

#[derive(Debug)]
pub enum FrameError {
    /// The stream failed; end of input is `UnexpectedEof`.
    Io(io::Error),
    /// A line exceeded `max_line` (or a command `max_command`). Input up to
    /// the next LF has been discarded, so the connection can go on after BAD;
    /// `tag` is the command's tag when its start could be read, so the BAD
    /// can be tagged and the client does not wait for an answer forever.
    LineTooLong { tag: Option<Vec<u8>> },
    /// A literal exceeded `max_literal` or would push the command over
    /// `max_command`. A synchronizing one was not read (the client waits for a
    /// continuation that never comes); a non-synchronizing one was read and
    /// dropped together with the rest of its command.
    LiteralTooBig {
        tag: Option<Vec<u8>>,
        size: u64,
        synchronizing: bool,
        /// False when a non-synchronizing literal was too large even to
        /// skip (more than a whole command's worth): its octets are still
        /// coming, the stream cannot be resynchronised, and the connection
        /// must end after the answer.
        in_sync: bool,
    },
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "read error: {e}"),
            FrameError::LineTooLong { .. } => f.write_str("line too long"),
            FrameError::LiteralTooBig { size, .. } => write!(f, "literal of {size} octets too big"),
        }
    }
}

impl std::error::Error for FrameError {}

/// A literal announced at the end of a line.
#[derive(Debug, PartialEq, Eq)]
struct Announcement {
    size: u64,
    synchronizing: bool,
}

/// Recognises `{digits}` or `{digits+}` (the `~` of literal8 may precede it)
/// at the end of a line. A size beyond `u64` reads as `u64::MAX`, which every
/// limit rejects.
fn literal_announcement(line: &[u8]) -> Option<Announcement> {
    let rest = line.strip_suffix(b"}")?;
    let (rest, synchronizing) = match rest.strip_suffix(b"+") {
        Some(r) => (r, false),
        None => (rest, true),
    };
    let digits_start = rest
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let (before, digits) = rest.split_at(digits_start);
    if digits.is_empty() || before.last() != Some(&b'{') {
        return None;
    }
    let size = digits
        .iter()
        .try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(u64::MAX);
    Some(Announcement {
        size,
        synchronizing,
    })
}

/// The tag of a command's first line, if it looks like one, for error replies.
fn tag_of(line: &[u8]) -> Option<Vec<u8>> {
    let tag = line.split(|&b| b == b' ').next()?;
    if !tag.is_empty() && tag.iter().all(|&b| is_tag_char(b)) {
        Some(tag.to_vec())
    } else {
        None
    }
}

/// Reads commands from a client stream through its own buffer.
pub struct CommandReader<R: Read> {
    inner: R,
    /// Received bytes; those before `pos` are consumed.
    buf: Vec<u8>,
    pos: usize,
    limits: Limits,
    bytes_read: u64,
    /// Where literals larger than the threshold go instead of memory.
    spool: Option<(usize, SpoolFactory)>,
    /// The literal announced at the end of the last line dropped as too
    /// long: its octets follow, and must not be read as commands.
    dropped_announcement: Option<Announcement>,
}

impl<R: Read> CommandReader<R> {
    pub fn new(inner: R, limits: Limits) -> Self {
        CommandReader {
            inner,
            buf: Vec::new(),
            pos: 0,
            limits,
            bytes_read: 0,
            spool: None,
            dropped_announcement: None,
        }
    }

    /// Literals of more than `threshold` octets are written to files made
    /// by `factory` rather than held in memory.
    pub fn set_spool(&mut self, threshold: usize, factory: SpoolFactory) {
        self.spool = Some((threshold, factory));
    }

    /// Reads one whole command: lines (CRLF or bare LF stripped) and literals
    /// in order, alternating and ending with a line (possibly empty).
    /// A synchronizing literal gets the continuation request written and
    /// flushed to `cont` before its octets are read.
    pub fn read_command(&mut self, cont: &mut dyn Write) -> Result<Vec<Fragment>, FrameError> {
        let mut fragments = Vec::new();
        let mut tag: Option<Option<Vec<u8>>> = None;
        let mut total: u64 = 0;
        loop {
            let line = match self.next_line() {
                Ok(line) => line,
                Err(FrameError::LineTooLong { tag: first }) => {
                    // A continuation line belongs to the command as tagged
                    // by its first line (or untagged), never by its own
                    // first word.
                    let tag = match &tag {
                        Some(t) => t.clone(),
                        None => first,
                    };
                    return Err(self.skip_after_long_line(tag));
                }
                Err(e) => return Err(e),
            };
            total = total.saturating_add(line.len() as u64);
            let tag = tag.get_or_insert_with(|| tag_of(&line));
            let Some(literal) = literal_announcement(&line) else {
                fragments.push(Fragment::Line(line));
                if total > self.limits.max_command as u64 {
                    // The command is complete, so the stream is in sync.
                    return Err(FrameError::LineTooLong { tag: tag.clone() });
                }
                return Ok(fragments);
            };
            if fragments.len() / 2 >= MAX_LITERALS {
                let error = FrameError::LineTooLong { tag: tag.clone() };
                return Err(self.reject_literal(literal, error));
            }
            let size = literal.size;
            let fits = size <= self.limits.max_literal as u64
                && total.saturating_add(size) <= self.limits.max_command as u64;
            let size_usize = match usize::try_from(size) {
                Ok(n) if fits => n,
                _ => {
                    let error = FrameError::LiteralTooBig {
                        tag: tag.clone(),
                        size,
                        synchronizing: literal.synchronizing,
                        in_sync: true,
                    };
                    return Err(self.reject_literal(literal, error));
                }
            };
            if literal.synchronizing {
                cont.write_all(CONTINUATION)?;
                cont.flush()?;
            }
            let data = match &mut self.spool {
                Some((threshold, factory)) if size_usize > *threshold => {
                    let file = factory()?;
                    Fragment::Spooled(self.spool_literal(size, file)?)
                }
                _ => Fragment::Literal(self.read_literal(size_usize)?),
            };
            total = total.saturating_add(size);
            fragments.push(Fragment::Line(line));
            fragments.push(data);
        }
    }

    /// Handles a literal refused (over the limits, or one too many): a
    /// synchronizing one is never sent by the client, a non-synchronizing
    /// one is already on its way and must be skipped with the rest of its
    /// command to keep the stream in sync, and then `error` is the answer —
    /// unless skipping it would mean reading more than a whole command's
    /// worth (`{4294967296+}`): then nothing more is read, and the error says
    /// the stream is out of sync.
    fn reject_literal(&mut self, literal: Announcement, error: FrameError) -> FrameError {
        if literal.synchronizing {
            return error;
        }
        let mut budget = self.limits.max_command as u64;
        let skipped = self
            .discard_within(literal.size, &mut budget)
            .and_then(|ok| {
                if ok {
                    self.skip_rest_of_command(&mut budget)
                } else {
                    Ok(false)
                }
            });
        match skipped {
            Err(e) => e,
            Ok(true) => error,
            Ok(false) => FrameError::LiteralTooBig {
                tag: match error {
                    FrameError::LineTooLong { tag } | FrameError::LiteralTooBig { tag, .. } => tag,
                    FrameError::Io(_) => None,
                },
                size: literal.size,
                synchronizing: false,
                in_sync: false,
            },
        }
    }

    /// After a line dropped for its length: if it announced a
    /// non-synchronizing literal, the literal's octets (and the rest of the
    /// command) are on their way and are skipped, within a command's worth;
    /// beyond that the stream is out of sync.
    fn skip_after_long_line(&mut self, tag: Option<Vec<u8>>) -> FrameError {
        let mut budget = self.limits.max_command as u64;
        match self.skip_dropped_literal(&mut budget) {
            Ok(true) => FrameError::LineTooLong { tag },
            Ok(false) => FrameError::LiteralTooBig {
                tag,
                size: 0,
                synchronizing: false,
                in_sync: false,
            },
            Err(e) => e,
        }
    }

    /// Skips the literal a dropped line announced, if any, and what follows
    /// it up to the command's end. False when that is over `budget`.
    fn skip_dropped_literal(&mut self, budget: &mut u64) -> Result<bool, FrameError> {
        match self.dropped_announcement.take() {
            Some(Announcement {
                size,
                synchronizing: false,
            }) => {
                if !self.discard_within(size, budget)? {
                    return Ok(false);
                }
                self.skip_rest_of_command(budget)
            }
            // A synchronizing literal is sent only after a continuation,
            // which an error never gives.
            _ => Ok(true),
        }
    }

    /// Discards `size` octets if they fit what is left of `budget`; false
    /// (and nothing read) when they do not.
    fn discard_within(&mut self, size: u64, budget: &mut u64) -> Result<bool, FrameError> {
        if size > *budget {
            return Ok(false);
        }
        *budget -= size;
        self.discard(size)?;
        Ok(true)
    }

    /// Skips lines and non-synchronizing literals up to the command's end.
    /// Stops before a synchronizing literal: the client will not send it
    /// without a continuation, and the tagged error ends its command.
    fn skip_rest_of_command(&mut self, budget: &mut u64) -> Result<bool, FrameError> {
        loop {
            let line = match self.next_line() {
                Ok(line) => line,
                Err(FrameError::LineTooLong { .. }) => return self.skip_dropped_literal(budget),
                Err(e) => return Err(e),
            };
            match literal_announcement(&line) {
                Some(Announcement {
                    size,
                    synchronizing: false,
                }) => {
                    if !self.discard_within(size, budget)? {
                        return Ok(false);
                    }
                }
                _ => return Ok(true),
            }
        }
    }

    /// Reads one line (line end stripped) of at most `max_line` octets, for
    /// AUTHENTICATE responses and IDLE's `DONE`.
    pub fn read_line(&mut self) -> Result<Vec<u8>, FrameError> {
        self.next_line()
    }

    /// Drops everything buffered but not yet consumed (after STARTTLS, any
    /// pipelined plaintext must not be taken as protected input).
    pub fn discard_buffered(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    /// True if received bytes are waiting (the client is pipelining).
    pub fn has_buffered(&self) -> bool {
        self.pos < self.buf.len()
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Puts `inner` in place of the stream below (COMPRESS starting), and
    /// returns the old one with the bytes read from it but not consumed:
    /// those belong to the new layer. Limits, spool and counts stay.
    pub fn replace_inner(&mut self, inner: R) -> (R, Vec<u8>) {
        let held = self.pending().to_vec();
        self.discard_buffered();
        (std::mem::replace(&mut self.inner, inner), held)
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Takes the bytes received but not yet consumed (input pipelined after
    /// a login, which the session process reads instead of this one).
    pub fn take_pending(&mut self) -> Vec<u8> {
        let held = self.pending().to_vec();
        self.discard_buffered();
        held
    }

    /// Puts `bytes` before anything still to be read from the stream: the
    /// input another process received for this one.
    pub fn preload(&mut self, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        buf.extend_from_slice(self.pending());
        self.buf = buf;
        self.pos = 0;
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Total octets read from the underlying stream.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Reads at least one more byte into the buffer; end of input is an error.
    fn fill(&mut self) -> Result<(), FrameError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        loop {
            let result = match self.buf.get_mut(old..) {
                Some(space) => self.inner.read(space),
                None => Ok(0),
            };
            match result {
                Ok(0) => {
                    self.buf.truncate(old);
                    return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(n) => {
                    self.buf.truncate(old + n);
                    self.bytes_read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(FrameError::Io(e));
                }
            }
        }
    }

    /// The next line without its line end, enforcing `max_line`.
    fn next_line(&mut self) -> Result<Vec<u8>, FrameError> {
        let max = self.limits.max_line;
        // Bytes of the pending input already searched for LF.
        let mut scanned = 0;
        loop {
            let pending = self.pending();
            if let Some(i) = memchr::memchr(b'\n', pending.get(scanned..).unwrap_or(&[])) {
                let lf = scanned + i;
                let content = pending.get(..lf).unwrap_or(&[]);
                let content = content.strip_suffix(b"\r").unwrap_or(content);
                let line = (content.len() <= max).then(|| content.to_vec());
                let (tag, announced) = if line.is_none() {
                    (tag_of(content), literal_announcement(content))
                } else {
                    (None, None)
                };
                self.consume(lf + 1);
                if line.is_none() {
                    self.dropped_announcement = announced;
                }
                return line.ok_or(FrameError::LineTooLong { tag });
            }
            scanned = pending.len();
            // Without its LF the line holds at least all but a final CR.
            if pending.len() > max.saturating_add(1) {
                let tag = tag_of(pending);
                let tail = self.discard_through_lf()?;
                self.dropped_announcement = literal_announcement(&tail);
                return Err(FrameError::LineTooLong { tag });
            }
            self.fill()?;
        }
    }

    /// Drops input up to and including the next LF, never holding more than
    /// one chunk; returns the last bytes of the dropped line (without its
    /// line end), enough to see a literal announcement there.
    fn discard_through_lf(&mut self) -> Result<Vec<u8>, FrameError> {
        // `{` + 20 digits + `+}` is the longest announcement that matters.
        const TAIL: usize = 32;
        let keep = |tail: &mut Vec<u8>, bytes: &[u8]| {
            tail.extend_from_slice(bytes);
            let excess = tail.len().saturating_sub(TAIL);
            tail.drain(..excess);
        };
        let mut tail = Vec::with_capacity(2 * TAIL);
        keep(&mut tail, self.pending());
        self.discard_buffered();
        // Give back what the long line made the buffer grow to.
        self.buf.shrink_to(2 * CHUNK);
        loop {
            self.fill()?;
            if let Some(i) = memchr::memchr(b'\n', &self.buf) {
                keep(&mut tail, self.buf.get(..i).unwrap_or(&[]));
                self.consume(i + 1);
                if tail.last() == Some(&b'\r') {
                    tail.pop();
                }
                return Ok(tail);
            }
            let all = std::mem::take(&mut self.buf);
            keep(&mut tail, &all);
            self.buf = all;
            self.discard_buffered();
        }
    }

    /// Reads exactly `size` literal octets. Memory grows with what actually
    /// arrives, not with what was announced.
    fn read_literal(&mut self, size: usize) -> Result<Vec<u8>, FrameError> {
        let from_buffer = size.min(self.pending().len());
        let mut data = Vec::with_capacity(from_buffer.max(size.min(CHUNK)));
        data.extend_from_slice(self.pending().get(..from_buffer).unwrap_or(&[]));
        self.consume(from_buffer);
        let remaining = (size - from_buffer) as u64;
        if remaining > 0 {
            let got = (&mut self.inner).take(remaining).read_to_end(&mut data)?;
            self.bytes_read += got as u64;
            if (got as u64) < remaining {
                return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(data)
    }

    /// Copies exactly `size` literal octets into `file` in bounded memory,
    /// then rewinds it for the reader.
    fn spool_literal(&mut self, size: u64, mut file: std::fs::File) -> Result<Spool, FrameError> {
        use std::io::{Seek, SeekFrom};
        let from_buffer = size.min(self.pending().len() as u64) as usize;
        file.write_all(self.pending().get(..from_buffer).unwrap_or(&[]))?;
        self.consume(from_buffer);
        let remaining = size - from_buffer as u64;
        if remaining > 0 {
            let got = io::copy(&mut (&mut self.inner).take(remaining), &mut file)?;
            self.bytes_read += got;
            if got < remaining {
                return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        file.seek(SeekFrom::Start(0))?;
        Ok(Spool { file, len: size })
    }

    /// Reads and drops `size` octets in bounded memory.
    fn discard(&mut self, size: u64) -> Result<(), FrameError> {
        let from_buffer = size.min(self.pending().len() as u64);
        self.consume(from_buffer as usize);
        let remaining = size - from_buffer;
        if remaining > 0 {
            let got = io::copy(&mut (&mut self.inner).take(remaining), &mut io::sink())?;
            self.bytes_read += got;
            if got < remaining {
                return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(input: &[u8]) -> CommandReader<&[u8]> {
        CommandReader::new(input, Limits::default())
    }

    fn small(input: &[u8]) -> CommandReader<&[u8]> {
        CommandReader::new(
            input,
            Limits {
                max_line: 20,
                max_literal: 10,
                max_command: 40,
            },
        )
    }

    fn line(s: &str) -> Fragment {
        Fragment::Line(s.as_bytes().to_vec())
    }

    fn lit(s: &str) -> Fragment {
        Fragment::Literal(s.as_bytes().to_vec())
    }

    fn is_eof(e: FrameError) -> bool {
        matches!(e, FrameError::Io(ref io) if io.kind() == io::ErrorKind::UnexpectedEof)
    }

    #[test]
    fn announcements() {
        let a = |s: &[u8]| literal_announcement(s);
        assert_eq!(
            a(b"a LOGIN {5}"),
            Some(Announcement {
                size: 5,
                synchronizing: true
            })
        );
        assert_eq!(
            a(b"a LOGIN {5+}"),
            Some(Announcement {
                size: 5,
                synchronizing: false
            })
        );
        assert_eq!(
            a(b"a APPEND x ~{12}"),
            Some(Announcement {
                size: 12,
                synchronizing: true
            })
        );
        assert_eq!(
            a(b"{0}"),
            Some(Announcement {
                size: 0,
                synchronizing: true
            })
        );
        assert_eq!(
            a(b"x {99999999999999999999999}"),
            Some(Announcement {
                size: u64::MAX,
                synchronizing: true
            })
        );
        for no in [
            &b"a NOOP"[..],
            b"{}",
            b"{+}",
            b"5}",
            b"{5}x",
            b"{5++}",
            b"}",
            b"{a5}",
        ] {
            assert_eq!(a(no), None, "{no:?}");
        }
    }

    #[test]
    fn simple_lines_and_pipelining() {
        let mut r = reader(b"a NOOP\r\nb CAPABILITY\nc LOGOUT\r\n");
        let mut out = Vec::new();
        assert_eq!(r.read_command(&mut out).unwrap(), vec![line("a NOOP")]);
        assert!(r.has_buffered());
        assert_eq!(
            r.read_command(&mut out).unwrap(),
            vec![line("b CAPABILITY")]
        );
        assert_eq!(r.read_command(&mut out).unwrap(), vec![line("c LOGOUT")]);
        assert!(!r.has_buffered());
        assert!(is_eof(r.read_command(&mut out).unwrap_err()));
        assert!(out.is_empty());
        assert_eq!(r.bytes_read(), 31);
    }

    #[test]
    fn synchronizing_literal() {
        let mut r = reader(b"a LOGIN {4}\r\nfred {6}\r\nsecret\r\nb NOOP\r\n");
        let mut out = Vec::new();
        let cmd = r.read_command(&mut out).unwrap();
        assert_eq!(
            cmd,
            vec![
                line("a LOGIN {4}"),
                lit("fred"),
                line(" {6}"),
                lit("secret"),
                line("")
            ]
        );
        assert_eq!(
            out,
            b"+ Ready for literal data\r\n+ Ready for literal data\r\n"
        );
        assert_eq!(r.read_command(&mut out).unwrap(), vec![line("b NOOP")]);
    }

    #[test]
    fn literal_plus_and_literal8() {
        let mut r = reader(b"a APPEND INBOX {3+}\r\nx\r\n\r\nb APPEND INBOX ~{2}\r\n\0\x01\r\n");
        let mut out = Vec::new();
        let cmd = r.read_command(&mut out).unwrap();
        assert_eq!(
            cmd,
            vec![line("a APPEND INBOX {3+}"), lit("x\r\n"), line("")]
        );
        assert!(out.is_empty());
        let cmd = r.read_command(&mut out).unwrap();
        assert_eq!(
            cmd,
            vec![
                line("b APPEND INBOX ~{2}"),
                Fragment::Literal(vec![0, 1]),
                line("")
            ]
        );
        assert_eq!(out, CONTINUATION);
    }

    #[test]
    fn literal_spanning_reads() {
        // A reader that returns one byte per read exercises buffer refills.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match (self.0.split_first(), buf.first_mut()) {
                    (Some((&b, rest)), Some(slot)) => {
                        *slot = b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let mut r = CommandReader::new(
            Trickle(b"t1 LOGIN {3+}\r\nabc \"pw\"\r\n"),
            Limits::default(),
        );
        let cmd = r.read_command(&mut io::sink()).unwrap();
        assert_eq!(
            cmd,
            vec![line("t1 LOGIN {3+}"), lit("abc"), line(" \"pw\"")]
        );
    }

    #[test]
    fn eof_inside_literal() {
        let mut r = reader(b"a LOGIN {10+}\r\nabc");
        assert!(is_eof(r.read_command(&mut io::sink()).unwrap_err()));
        let mut r = reader(b"a NOOP");
        assert!(is_eof(r.read_command(&mut io::sink()).unwrap_err()));
    }

    #[test]
    fn line_too_long_resyncs() {
        let mut input = b"a ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend_from_slice(b"\r\nb NOOP\r\n");
        let mut r = reader(&input);
        // The tag is recovered from the start of the line, for a tagged BAD.
        assert!(matches!(
            r.read_command(&mut io::sink()),
            Err(FrameError::LineTooLong { tag: Some(t) }) if t == b"a"
        ));
        assert!(r.buf.capacity() <= 4 * CHUNK);
        assert_eq!(
            r.read_command(&mut io::sink()).unwrap(),
            vec![line("b NOOP")]
        );

        // Exactly at the limit passes, one more fails even when it arrives whole.
        let mut r = small(b"12345678901234567890\r\n123456789012345678901\r\nok\n");
        assert_eq!(r.read_line().unwrap(), b"12345678901234567890");
        assert!(matches!(r.read_line(), Err(FrameError::LineTooLong { .. })));
        assert_eq!(r.read_line().unwrap(), b"ok");
    }

    #[test]
    fn synchronizing_literal_too_big() {
        let mut r = small(b"a1 APPEND INBOX {11}\r\nb NOOP\r\n");
        let mut out = Vec::new();
        match r.read_command(&mut out) {
            Err(FrameError::LiteralTooBig {
                tag,
                size,
                synchronizing,
                ..
            }) => {
                assert_eq!(tag.as_deref(), Some(&b"a1"[..]));
                assert_eq!(size, 11);
                assert!(synchronizing);
            }
            other => panic!("{other:?}"),
        }
        assert!(out.is_empty());
        assert_eq!(r.read_command(&mut out).unwrap(), vec![line("b NOOP")]);
    }

    #[test]
    fn non_synchronizing_literal_too_big_is_skipped() {
        let mut r = small(b"a APPEND INBOX {12+}\r\n0123456789AB {2+}\r\nxy\r\nb NOOP\r\n");
        match r.read_command(&mut io::sink()) {
            Err(FrameError::LiteralTooBig {
                tag,
                size: 12,
                synchronizing: false,
                in_sync: true,
            }) => {
                assert_eq!(tag.as_deref(), Some(&b"a"[..]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.read_command(&mut io::sink()).unwrap(),
            vec![line("b NOOP")]
        );
    }

    #[test]
    fn huge_non_synchronizing_literal_is_not_read() {
        // Four gigabytes announced: nothing of it is read, the stream is
        // declared out of sync.
        let mut r = CommandReader::new(
            &b"a APPEND INBOX {4294967296+}\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"[..],
            Limits {
                max_line: 100,
                max_literal: 10,
                max_command: 40,
            },
        );
        match r.read_command(&mut io::sink()) {
            Err(FrameError::LiteralTooBig {
                size: 4_294_967_296,
                in_sync: false,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(r.has_buffered(), "the literal's octets were left unread");
    }

    #[test]
    fn a_long_line_s_literal_is_not_read_as_commands() {
        // The line is dropped for its length, but the literal it announced
        // is on its way: its octets must not become the next command.
        let mut input = b"a APPEND INBOX ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 30));
        input.extend_from_slice(b" {10+}\r\nb LOGOUT\r\n\r\nc NOOP\r\n");
        let mut r = CommandReader::new(
            &input[..],
            Limits {
                max_line: 40,
                max_literal: 100,
                max_command: 200,
            },
        );
        assert!(matches!(
            r.read_command(&mut io::sink()),
            Err(FrameError::LineTooLong { tag: Some(t) }) if t == b"a"
        ));
        assert_eq!(
            r.read_command(&mut io::sink()).unwrap(),
            vec![line("c NOOP")]
        );
        // The same when the long line arrives in pieces (the other path).
        let mut long = b"a APPEND INBOX ".to_vec();
        long.extend(std::iter::repeat_n(b'y', 5 * CHUNK));
        long.extend_from_slice(b" {10+}\r\nb LOGOUT\r\n\r\nc NOOP\r\n");
        let mut r = reader(&long);
        r.set_limits(Limits {
            max_line: 1000,
            max_literal: 100,
            max_command: 2000,
        });
        assert!(matches!(
            r.read_command(&mut io::sink()),
            Err(FrameError::LineTooLong { .. })
        ));
        assert_eq!(
            r.read_command(&mut io::sink()).unwrap(),
            vec![line("c NOOP")]
        );
    }

    #[test]
    fn a_continuation_line_never_lends_its_tag() {
        // The command's first line has no tag; a later line too long does
        // not make its first word the tag of the BAD.
        let mut input = b"+bad {1+}\r\nx ".to_vec();
        input.extend(std::iter::repeat_n(b'z', 30));
        input.extend_from_slice(b"\r\n");
        let mut r = small(&input);
        assert!(matches!(
            r.read_command(&mut io::sink()),
            Err(FrameError::LineTooLong { tag: None })
        ));
    }

    #[test]
    fn command_total_limit() {
        // Literals of 10 each fit max_literal but three exceed max_command (40).
        let mut r =
            small(b"a X {10+}\r\n0123456789 {10+}\r\n0123456789 {10+}\r\n0123456789\r\nb NOOP\r\n");
        match r.read_command(&mut io::sink()) {
            Err(FrameError::LiteralTooBig {
                size: 10,
                synchronizing: false,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.read_command(&mut io::sink()).unwrap(),
            vec![line("b NOOP")]
        );
    }

    #[test]
    fn literal_count_limit() {
        // One literal too many: a synchronizing one is refused before it is
        // sent, and the next command is read as usual.
        let many = |sync: &str| {
            let mut input = b"a SEARCH".to_vec();
            for _ in 0..MAX_LITERALS {
                input.extend_from_slice(b" SUBJECT {1+}\r\nx");
            }
            input.extend_from_slice(format!(" SUBJECT {{1{sync}}}\r\n").as_bytes());
            input
        };
        let mut input = many("");
        input.extend_from_slice(b"b NOOP\r\n");
        let mut r = reader(&input);
        let mut cont = Vec::new();
        match r.read_command(&mut cont) {
            Err(FrameError::LineTooLong { tag: Some(t) }) => assert_eq!(t, b"a"),
            other => panic!("{other:?}"),
        }
        assert!(cont.is_empty(), "no continuation for the refused literal");
        assert_eq!(r.read_command(&mut cont).unwrap(), vec![line("b NOOP")]);

        // A non-synchronizing one is skipped with the rest of its command.
        let mut input = many("+");
        input.extend_from_slice(b"x SUBJECT {2+}\r\nyz\r\nb NOOP\r\n");
        let mut r = reader(&input);
        assert!(matches!(
            r.read_command(&mut io::sink()),
            Err(FrameError::LineTooLong { .. })
        ));
        assert_eq!(
            r.read_command(&mut io::sink()).unwrap(),
            vec![line("b NOOP")]
        );

        // Up to the limit, every literal is read.
        let mut input = b"a SEARCH".to_vec();
        for _ in 0..MAX_LITERALS {
            input.extend_from_slice(b" SUBJECT {1+}\r\nx");
        }
        input.extend_from_slice(b"\r\n");
        let f = reader(&input).read_command(&mut io::sink()).unwrap();
        assert_eq!(f.len(), 2 * MAX_LITERALS + 1);
    }

    #[test]
    fn discard_buffered_for_starttls() {
        let mut r = reader(b"a STARTTLS\r\nb LOGIN x y\r\n");
        assert_eq!(
            r.read_command(&mut io::sink()).unwrap(),
            vec![line("a STARTTLS")]
        );
        assert!(r.has_buffered());
        r.discard_buffered();
        assert!(!r.has_buffered());
        assert!(is_eof(r.read_command(&mut io::sink()).unwrap_err()));
    }

    #[test]
    fn tag_for_errors() {
        assert_eq!(tag_of(b"A001 APPEND"), Some(b"A001".to_vec()));
        assert_eq!(tag_of(b"+x APPEND"), None);
        assert_eq!(tag_of(b" APPEND"), None);
    }
}
