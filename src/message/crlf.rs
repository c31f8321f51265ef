//! Line-end normalisation: maildir files usually end lines with a bare LF,
//! IMAP counts and sends CRLF. This module owns only that conversion and its
//! length; every offset elsewhere in `message/` is in the CRLF form.

use std::borrow::Cow;

/// Positions of LFs that have no CR right before them.
fn bare_lfs(raw: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', raw).filter(move |&i| i == 0 || raw.get(i - 1) != Some(&b'\r'))
}

/// Bare LF -> CRLF (a CR already before the LF stays single). Borrowed when
/// nothing has to change, so CRLF files cost no copy.
pub fn to_crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    let extra = bare_lfs(raw).count();
    if extra == 0 {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + extra);
    let mut copied = 0;
    for lf in bare_lfs(raw) {
        out.extend_from_slice(raw.get(copied..lf).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
        copied = lf + 1;
    }
    out.extend_from_slice(raw.get(copied..).unwrap_or_default());
    Cow::Owned(out)
}

/// `to_crlf(raw)` into `out` (cleared first), whose memory is reused from message to
/// message; returns whether anything changed (else `out` is left empty and `raw` is the
/// CRLF form itself).
pub fn to_crlf_into(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut copied = 0;
    for lf in bare_lfs(raw) {
        if copied == 0 && out.is_empty() {
            out.reserve(raw.len() + raw.len() / 32 + 16);
        }
        out.extend_from_slice(raw.get(copied..lf).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
        copied = lf + 1;
    }
    if out.is_empty() {
        return false;
    }
    out.extend_from_slice(raw.get(copied..).unwrap_or_default());
    true
}

/// Length `to_crlf(raw)` would have, without allocating (this is RFC822.SIZE).
pub fn crlf_len(raw: &[u8]) -> u64 {
    // A maildir file rarely holds a CR: then every LF is bare, and memchr
    // counts them in one vectorised pass instead of a search per line.
    let bare = if memchr::memchr(b'\r', raw).is_none() {
        memchr::memchr_iter(b'\n', raw).count()
    } else {
        bare_lfs(raw).count()
    };
    raw.len() as u64 + bare as u64
}

/// Reads a message in IMAP's CRLF form as the LF form an MTA stores, so
/// that sizes and files look the same as Courier's: CRLF becomes LF (a lone
/// CR is content and stays), and a missing final line end is added. Works
/// on a stream, so an APPENDed message need not be in memory whole.
pub struct ToLf<R> {
    inner: R,
    /// Converted bytes not yet handed out.
    out: Vec<u8>,
    pos: usize,
    /// The previous chunk ended in CR: it is a line end if LF comes next.
    held_cr: bool,
    /// The last byte handed on, to know whether a final LF is missing.
    last: Option<u8>,
    finished: bool,
}

const CHUNK: usize = 64 * 1024;

impl<R: std::io::Read> ToLf<R> {
    pub fn new(inner: R) -> ToLf<R> {
        ToLf {
            inner,
            out: Vec::with_capacity(CHUNK + 2),
            pos: 0,
            held_cr: false,
            last: None,
            finished: false,
        }
    }

    fn emit(&mut self, b: u8) {
        self.out.push(b);
        self.last = Some(b);
    }

    /// Fills `out` with the next converted bytes; false at the end.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.out.clear();
        self.pos = 0;
        let mut chunk = [0u8; CHUNK];
        while self.out.is_empty() && !self.finished {
            let n = loop {
                match self.inner.read(&mut chunk) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                self.finished = true;
                if self.held_cr {
                    self.held_cr = false;
                    self.emit(b'\r');
                }
                if self.last.is_some_and(|b| b != b'\n') {
                    self.emit(b'\n');
                }
                break;
            }
            for &b in chunk.get(..n).unwrap_or_default() {
                if self.held_cr {
                    self.held_cr = false;
                    if b != b'\n' {
                        self.emit(b'\r');
                    }
                }
                if b == b'\r' {
                    self.held_cr = true;
                } else {
                    self.emit(b);
                }
            }
        }
        Ok(!self.out.is_empty())
    }
}

impl<R: std::io::Read> std::io::Read for ToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.out.len() && !self.refill()? {
            return Ok(0);
        }
        let available = self.out.get(self.pos..).unwrap_or_default();
        let n = available.len().min(buf.len());
        buf.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(available.get(..n).unwrap_or_default());
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_a_reused_buffer() {
        let mut out = b"old".to_vec();
        for raw in [&b"a\nb\r\nc\n"[..], b"\n", b"x", b"a\r\n", b""] {
            let changed = to_crlf_into(raw, &mut out);
            let expected = to_crlf(raw);
            assert_eq!(changed, matches!(expected, Cow::Owned(_)));
            let got: &[u8] = if changed { &out } else { raw };
            assert_eq!(got, &*expected);
        }
    }

    #[test]
    fn converts_bare_lf_only() {
        assert_eq!(&*to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(&*to_crlf(b"\n\n"), b"\r\n\r\n");
        assert_eq!(&*to_crlf(b"x\ry"), b"x\ry");
    }

    fn lf(input: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        ToLf::new(input).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn to_lf_strips_crlf_and_terminates() {
        assert_eq!(lf(b"a\r\nb\r\n"), b"a\nb\n");
        assert_eq!(lf(b"no end"), b"no end\n");
        // A lone CR is message content, not a line end.
        assert_eq!(lf(b"a\rb\n"), b"a\rb\n");
        assert_eq!(lf(b""), b"");
        assert_eq!(lf(b"x\r"), b"x\r\n");
    }

    #[test]
    fn to_lf_across_chunk_boundaries() {
        use std::io::Read;
        // A CR at the end of one read and its LF at the start of the next.
        struct Pieces(Vec<&'static [u8]>);
        impl Read for Pieces {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                let p = self.0.remove(0);
                buf[..p.len()].copy_from_slice(p);
                Ok(p.len())
            }
        }
        let mut out = Vec::new();
        ToLf::new(Pieces(vec![b"a\r", b"\nb\r", b"c\r", b"\n"]))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a\nb\rc\n");
        // A long message comes out whole, through a small buffer.
        let big: Vec<u8> = b"line\r\n"
            .iter()
            .copied()
            .cycle()
            .take(6 * 200_000)
            .collect();
        let mut small = [0u8; 7];
        let mut r = ToLf::new(&big[..]);
        let mut total = 0;
        loop {
            let n = r.read(&mut small).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 5 * 200_000);
    }

    #[test]
    fn borrowed_when_already_crlf() {
        assert!(matches!(to_crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(to_crlf(b""), Cow::Borrowed(_)));
    }

    #[test]
    fn length_matches_conversion() {
        // rfcs.md item 1: a 120-byte, 8-line LF file is RFC822.SIZE 128.
        let mut file = Vec::new();
        for _ in 0..8 {
            file.extend_from_slice(&[b'x'; 14]);
            file.push(b'\n');
        }
        assert_eq!(file.len(), 120);
        assert_eq!(crlf_len(&file), 128);
        assert_eq!(to_crlf(&file).len(), 128);
        assert_eq!(crlf_len(b"a\r\nb\n"), 6);
        // Both ways of counting (with and without a CR in the file) agree
        // with the conversion.
        for raw in [&b"a\rb\n"[..], b"\r\n\n", b"\n\r", b"", b"\n", b"x\ny\nz"] {
            assert_eq!(crlf_len(raw), to_crlf(raw).len() as u64, "{raw:?}");
        }
    }
}
