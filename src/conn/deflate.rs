//! COMPRESS=DEFLATE (RFC 4978) as a layer of the connection: raw deflate
//! (RFC 1951, no zlib header) in both directions, over whatever carries the
//! bytes below (the socket, or TLS).
//!
//! The writer keeps the connection's rule of one write(2) per response
//! burst: compressed output is gathered in memory and handed down only when
//! it grows large or when the connection flushes, and a flush ends with a
//! sync flush (Z_SYNC_FLUSH) so that the client can decompress everything
//! sent so far and never waits for bytes sitting in the compressor.
//!
//! The reader decompresses into a buffer of its own and can say, without
//! touching the descriptor, whether decompressed input is waiting there:
//! poll(2) on the socket cannot see it (see `Io::input_buffered`).
//!
//! This module knows nothing of IMAP; `Io::start_deflate` installs it.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Compressed output gathered before it is written without waiting for the
/// end of the burst.
const OUT_HIGH_WATER: usize = 64 * 1024;
/// How much is read from below, and decompressed, at a time.
const CHUNK: usize = 16 * 1024;

/// The compressing half: raw deflate onto `inner`.
pub struct DeflateWriter {
    inner: Box<dyn Write>,
    compress: Compress,
    out: Vec<u8>,
    /// Input taken since the last sync flush: a flush with nothing new
    /// must not send an empty block (a write(2) of its own).
    unflushed: bool,
}

impl DeflateWriter {
    pub fn new(inner: Box<dyn Write>) -> DeflateWriter {
        DeflateWriter {
            inner,
            // Level 6 is zlib's default and what Dovecot uses: most of the
            // gain for a fraction of level 9's time.
            compress: Compress::new(Compression::new(6), false),
            out: Vec::with_capacity(CHUNK),
            unflushed: false,
        }
    }

    /// Runs the compressor over `input` (all of it) with `flush`, appending
    /// its output to `self.out`.
    fn run(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            if self.out.capacity() - self.out.len() < CHUNK {
                self.out.reserve(CHUNK);
            }
            let before_in = self.compress.total_in();
            let before_out = self.out.len();
            self.compress
                .compress_vec(input, &mut self.out, flush)
                .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
            let used = (self.compress.total_in() - before_in) as usize;
            input = input.get(used..).unwrap_or(&[]);
            let produced = self.out.len() - before_out;
            // Done when all input is taken and the compressor left room in
            // the output (a full output may mean more is pending).
            if input.is_empty() && self.out.len() < self.out.capacity() {
                return Ok(());
            }
            if used == 0 && produced == 0 && self.out.len() < self.out.capacity() {
                return Ok(());
            }
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.inner.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }
}

impl Write for DeflateWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.unflushed |= !buf.is_empty();
        self.run(buf, FlushCompress::None)?;
        if self.out.len() >= OUT_HIGH_WATER {
            self.write_out()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.unflushed) {
            self.run(&[], FlushCompress::Sync)?;
        }
        self.write_out()?;
        self.inner.flush()
    }
}

/// Decompressor state shared by the reader and its probe.
struct Inflater {
    inner: Box<dyn Read>,
    decompress: Decompress,
    /// Compressed bytes read from below, not yet decompressed.
    input: Vec<u8>,
    input_pos: usize,
    /// Decompressed bytes not yet handed up.
    output: Vec<u8>,
    output_pos: usize,
    /// The client ended the deflate stream: nothing more can come.
    ended: bool,
}

impl Inflater {
    /// Decompresses what is already held (no read from below); true when
    /// that produced output.
    fn inflate_held(&mut self) -> io::Result<bool> {
        if self.ended {
            return Ok(false);
        }
        self.output.clear();
        self.output_pos = 0;
        self.output.reserve(CHUNK);
        let before_in = self.decompress.total_in();
        let input = self.input.get(self.input_pos..).unwrap_or(&[]);
        let status = self
            .decompress
            .decompress_vec(input, &mut self.output, FlushDecompress::Sync)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("inflate: {e}")))?;
        self.input_pos += (self.decompress.total_in() - before_in) as usize;
        if self.input_pos >= self.input.len() {
            self.input.clear();
            self.input_pos = 0;
        }
        if status == Status::StreamEnd {
            self.ended = true;
        }
        Ok(!self.output.is_empty())
    }

    fn has_output(&self) -> bool {
        self.output_pos < self.output.len()
    }
}

/// The decompressing half: raw deflate from `inner`.
pub struct InflateReader(Rc<RefCell<Inflater>>);

impl InflateReader {
    /// The reader, and a probe that says whether decompressed input is
    /// waiting (see the module comment).
    pub fn new(inner: Box<dyn Read>, already_read: Vec<u8>) -> (InflateReader, InflateProbe) {
        let state = Rc::new(RefCell::new(Inflater {
            inner,
            decompress: Decompress::new(false),
            input: already_read,
            input_pos: 0,
            output: Vec::new(),
            output_pos: 0,
            ended: false,
        }));
        (InflateReader(state.clone()), InflateProbe(state))
    }
}

impl Read for InflateReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.0.borrow_mut();
        loop {
            if s.has_output() {
                let avail = s.output.get(s.output_pos..).unwrap_or(&[]);
                let n = avail.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
                    dst.copy_from_slice(src);
                }
                s.output_pos += n;
                return Ok(n);
            }
            if s.ended {
                return Ok(0);
            }
            if s.inflate_held()? {
                continue;
            }
            // Nothing decompresses from what is held: more must come.
            let mut chunk = [0u8; CHUNK];
            let n = s.inner.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            s.input.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

/// A second handle on the decompressor, for `Io::input_buffered`.
pub struct InflateProbe(Rc<RefCell<Inflater>>);

impl InflateProbe {
    /// True when decompressed input is ready without reading from below.
    pub fn has_input(&self) -> bool {
        let Ok(mut s) = self.0.try_borrow_mut() else {
            return true;
        };
        if s.has_output() {
            return true;
        }
        // An error is input too: the read that follows reports it.
        s.inflate_held().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that records each write, as the socket's write(2) calls.
    #[derive(Clone, Default)]
    struct Writes(Rc<RefCell<Vec<Vec<u8>>>>);
    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn inflate_all(data: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(data.len() * 20 + 1024);
        d.decompress_vec(data, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    #[test]
    fn each_flush_is_one_write_of_a_complete_sync_flushed_burst() {
        let writes = Writes::default();
        let mut w = DeflateWriter::new(Box::new(writes.clone()));
        w.write_all(b"* OK hello\r\n").unwrap();
        w.write_all(b"a OK done\r\n").unwrap();
        assert!(
            writes.0.borrow().is_empty(),
            "nothing leaves before the flush"
        );
        w.flush().unwrap();
        assert_eq!(writes.0.borrow().len(), 1);
        let first = writes.0.borrow()[0].clone();
        // A sync flush ends with an empty stored block.
        assert!(first.ends_with(&[0, 0, 0xff, 0xff]));
        assert_eq!(inflate_all(&first), b"* OK hello\r\na OK done\r\n");
        w.flush().unwrap();
        assert_eq!(writes.0.borrow().len(), 1, "nothing new, nothing sent");
        w.write_all(b"b OK again\r\n").unwrap();
        w.flush().unwrap();
        assert_eq!(writes.0.borrow().len(), 2);
        let all: Vec<u8> = writes.0.borrow().concat();
        assert_eq!(
            inflate_all(&all),
            b"* OK hello\r\na OK done\r\nb OK again\r\n"
        );
    }

    #[test]
    fn reader_decompresses_and_probe_sees_held_input() {
        let mut c = Compress::new(Compression::default(), false);
        let mut wire = Vec::with_capacity(1 << 16);
        c.compress_vec(b"a NOOP\r\nb NOOP\r\n", &mut wire, FlushCompress::Sync)
            .unwrap();
        // The first bytes already sat in the reader above; the rest come from below.
        let (head, tail) = wire.split_at(3);
        let (mut r, probe) =
            InflateReader::new(Box::new(io::Cursor::new(tail.to_vec())), head.to_vec());
        let mut buf = [0u8; 8];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"a NOOP\r\n");
        assert!(probe.has_input());
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"b NOOP\r\n");
        assert!(!probe.has_input());
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (mut r, _) = InflateReader::new(Box::new(io::Cursor::new(vec![0xff; 64])), Vec::new());
        let mut buf = [0u8; 8];
        assert!(r.read(&mut buf).is_err());
    }
}
