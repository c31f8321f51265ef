//! What the fuzz targets share: an `Io` over the fuzz input (the object the
//! server's pre-login loop and session read commands through), and checkers
//! for what the server sends back. The checkers are test oracles written from
//! RFC 3501's grammar, not copies of the server's encoders.

use mdimap::conn::{Deadline, Io, Wire};
use mdimap::protocol::framing::Limits;
use std::cell::RefCell;
use std::io::{self, Cursor, Write};
use std::rc::Rc;
use std::time::Duration;

/// Most output kept for checking; more is counted but dropped.
const KEPT_OUTPUT: usize = 1 << 20;

/// The server's output, shared with the test.
#[derive(Clone, Default)]
pub struct Sink(pub Rc<RefCell<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = self.0.borrow_mut();
        let room = KEPT_OUTPUT.saturating_sub(out.len());
        out.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An `Io` whose client sent `input` and then closed the connection. The
/// wire underneath is stdio's, but only for deadlines: the streams are
/// replaced (as STARTTLS replaces them), and input is always "ready" so the
/// loops never poll a descriptor.
pub fn io_over(input: &[u8], limits: Limits) -> (Io, Sink) {
    let mut io = Io::plain(Wire::stdio(Deadline::Stall(Duration::from_secs(5))), limits);
    let sink = Sink::default();
    io.replace_streams(
        Box::new(Cursor::new(input.to_vec())),
        Box::new(sink.clone()),
        Some(Box::new(|| true)),
    );
    (io, sink)
}

/// Checks server output that carries no literals (before login, and
/// completions after it): every line ends in CRLF and no CR or LF stands
/// alone, so client bytes echoed in a response cannot start a forged one.
pub fn check_lines(out: &[u8]) {
    if out.len() >= KEPT_OUTPUT {
        return;
    }
    let mut rest = out;
    while !rest.is_empty() {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            panic!("output does not end in CRLF: {:?}", String::from_utf8_lossy(rest));
        };
        let line = &rest[..end];
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "bare CR or LF in a response line: {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(!line.contains(&0), "NUL in a response line: {:?}", String::from_utf8_lossy(line));
        rest = &rest[end + 2..];
    }
}

/// One item of an IMAP response value.
#[derive(Debug)]
pub enum Item {
    Nil,
    Number,
    Atom,
    String(Vec<u8>),
    List(Vec<Item>),
}

/// Reads one value of RFC 3501's grammar (NIL, number, atom, quoted, literal, or a
/// parenthesized list of values separated by single spaces, lists also by nothing) at the start of `s`;
/// returns it and what follows. `Err` says what is malformed.
pub fn read_item(s: &[u8]) -> Result<(Item, &[u8]), String> {
    match s.first() {
        None => Err("value expected, found the end".into()),
        Some(b'(') => {
            let mut items = Vec::new();
            let mut rest = &s[1..];
            if let Some(r) = rest.strip_prefix(b")") {
                return Ok((Item::List(items), r));
            }
            loop {
                let (item, r) = read_item(rest)?;
                items.push(item);
                match r.first() {
                    Some(b' ') => rest = &r[1..],
                    // `1*address` and `1*body` (multipart) run together
                    // without spaces.
                    Some(b'(') if matches!(items.last(), Some(Item::List(_))) => rest = r,
                    Some(b')') => return Ok((Item::List(items), &r[1..])),
                    _ => return Err(format!("space or ) expected at {:?}", String::from_utf8_lossy(&r[..r.len().min(40)]))),
                }
            }
        }
        Some(b'"') => {
            let mut out = Vec::new();
            let mut i = 1;
            loop {
                match s.get(i) {
                    None => return Err("unterminated quoted string".into()),
                    Some(b'"') => return Ok((Item::String(out), &s[i + 1..])),
                    Some(b'\\') => match s.get(i + 1) {
                        Some(&c @ (b'"' | b'\\')) => {
                            out.push(c);
                            i += 2;
                        }
                        _ => return Err("bad escape in a quoted string".into()),
                    },
                    Some(b'\r' | b'\n' | 0) => return Err("CR, LF or NUL in a quoted string".into()),
                    Some(&c) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
        }
        Some(b'{') => {
            let close = s.iter().position(|&b| b == b'}').ok_or("unterminated literal size")?;
            let digits = &s[1..close];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err("bad literal size".into());
            }
            let n: usize = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .ok_or("literal size overflows")?;
            let rest = s[close + 1..].strip_prefix(b"\r\n").ok_or("no CRLF after a literal size")?;
            if rest.len() < n {
                return Err("literal shorter than its size".into());
            }
            Ok((Item::String(rest[..n].to_vec()), &rest[n..]))
        }
        Some(c) if c.is_ascii_digit() => {
            let end = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
            Ok((Item::Number, &s[end..]))
        }
        Some(_) => {
            let end = s
                .iter()
                .position(|&b| matches!(b, b' ' | b'(' | b')' | b'"' | b'{' | b'\r' | b'\n') || b < 0x20 || b >= 0x7f)
                .unwrap_or(s.len());
            if end == 0 {
                return Err(format!("unexpected byte {:#x}", s[0]));
            }
            if s[..end].eq_ignore_ascii_case(b"NIL") {
                Ok((Item::Nil, &s[end..]))
            } else {
                Ok((Item::Atom, &s[end..]))
            }
        }
    }
}

/// `s` is exactly one parenthesized list; returns its items.
pub fn parse_list(s: &[u8]) -> Vec<Item> {
    match read_item(s) {
        Ok((Item::List(items), rest)) if rest.is_empty() => items,
        Ok((_, rest)) if !rest.is_empty() => panic!(
            "bytes after the list: {:?} in {:?}",
            String::from_utf8_lossy(rest),
            String::from_utf8_lossy(s)
        ),
        Ok(_) => panic!("not a list: {:?}", String::from_utf8_lossy(s)),
        Err(e) => panic!("{e} in {:?}", String::from_utf8_lossy(s)),
    }
}
