//! The client connection's bytes: fd 0 for input and fd 1 for output, as
//! mdimap-listen, systemd (`Accept=yes`), tcpserver and xinetd hand them over,
//! with a deadline on every read and write, and output buffered so that a
//! response burst leaves in one write(2).
//!
//! This module owns the descriptors and time. It knows nothing of IMAP beyond
//! framing (it holds the `CommandReader`) and nothing of users or mailboxes.
//! It never closes fds 0 and 1: a closed standard descriptor would be handed
//! out again by the next open(2), and a message file on fd 1 would receive
//! whatever the process writes there.
//!
//! # Deadlines
//!
//! Before login everything (reads, writes, the TLS handshake) must be over by
//! one fixed instant, the whole-login deadline: a client trickling a byte
//! every few seconds, or one that never reads its answers, is gone when the
//! login timeout runs out. After login, a client may wait as long as the
//! autologout timer allows between commands, but once a command has begun it
//! must keep up a minimum rate ([`MIN_RATE`] after a grace period), and a
//! response that cannot be written for the grace period ends the session.

use std::cell::Cell;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{BorrowedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

mod deflate;

use crate::protocol::command::Command;
use crate::protocol::framing::{CommandReader, Fragment, FrameError, Limits};
use crate::protocol::parser::parse_command;
use crate::protocol::response;

/// The slowest a logged-in client may send the rest of a command it has
/// begun (a literal of an APPEND, say), after the grace period: 1 KiB/s, far
/// below any link a mail client is used on, far above a byte every second.
pub const MIN_RATE: u64 = 1024;

/// How much output is gathered before it is written without waiting for
/// the end of the response burst.
const OUTPUT_BUFFER: usize = 64 * 1024;

/// When an operation on the connection must be over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// By this instant, whatever happens (the whole login).
    At(Instant),
    /// Each wait may last this long; any progress starts a new one (a
    /// response being written to a client that reads).
    Stall(Duration),
    /// By `start + grace + bytes / MIN_RATE`, where `bytes` counts what has
    /// moved since `start` (a command being received).
    Rate {
        start: Instant,
        grace: Duration,
        bytes: u64,
    },
}

impl Deadline {
    /// A command that starts now and must keep up [`MIN_RATE`] after `grace`.
    pub fn rate_from_now(grace: Duration) -> Deadline {
        Deadline::Rate {
            start: Instant::now(),
            grace,
            bytes: 0,
        }
    }

    /// How long the next wait may last; zero when the deadline has passed.
    fn remaining(&self, now: Instant) -> Duration {
        match *self {
            Deadline::At(t) => t.saturating_duration_since(now),
            Deadline::Stall(d) => d,
            Deadline::Rate {
                start,
                grace,
                bytes,
            } => {
                let allowance = Duration::from_millis(bytes.saturating_mul(1000) / MIN_RATE);
                (start + grace + allowance).saturating_duration_since(now)
            }
        }
    }

    fn moved(&mut self, n: usize) {
        if let Deadline::Rate { bytes, .. } = self {
            *bytes = bytes.saturating_add(n as u64);
        }
    }
}

/// The deadlines of the two directions, shared by every handle on the wire
/// (the plaintext reader and writer, and the TLS session over them).
#[derive(Debug, Clone, Copy)]
struct Clocks {
    read: Deadline,
    write: Deadline,
}

/// The connection's two descriptors with their deadlines. Cheap to clone:
/// the clones share the deadlines.
#[derive(Clone)]
pub struct Wire {
    input: RawFd,
    output: RawFd,
    clocks: Rc<Cell<Clocks>>,
    /// The descriptors are in non-blocking mode: a read or write is tried first and
    /// poll(2) waits only when it would block, instead of a poll before every call (two
    /// system calls of every command's round trip). A blocking descriptor (a pipe) is
    /// polled first, so that no call outlasts its deadline.
    try_first: (bool, bool),
}

impl Wire {
    /// The standard descriptors 0 (input) and 1 (output), with `deadline`
    /// for both directions until the caller says otherwise.
    pub fn stdio(deadline: Deadline) -> Wire {
        let socket = is_socket(1);
        if socket {
            // One write per response burst (see `Io`), so there is nothing
            // for Nagle's algorithm to gather, and every burst it held back
            // would wait for the client's delayed ACK (40 ms on Linux).
            set_nodelay(1);
        }
        // A socket is put in non-blocking mode, so a write never waits past
        // its deadline. It is this process's alone (the listener, tcpserver
        // and systemd keep no use of it), so its file status flags are ours
        // to change; reads poll first and take EAGAIN in stride. A pipe (the
        // `--preauth` tunnel of a user's own ssh) is left as it is.
        if socket && !set_nonblocking(1) {
            log::warn!(
                "cannot make the connection non-blocking; writes may outlast their deadline"
            );
        }
        Wire {
            input: 0,
            output: 1,
            clocks: Rc::new(Cell::new(Clocks {
                read: deadline,
                write: deadline,
            })),
            try_first: (is_nonblocking(0), is_nonblocking(1)),
        }
    }

    pub fn input_fd(&self) -> RawFd {
        self.input
    }

    pub fn output_fd(&self) -> RawFd {
        self.output
    }

    pub fn set_read_deadline(&self, d: Deadline) {
        let mut c = self.clocks.get();
        c.read = d;
        self.clocks.set(c);
    }

    pub fn set_write_deadline(&self, d: Deadline) {
        let mut c = self.clocks.get();
        c.write = d;
        self.clocks.set(c);
    }

    pub fn read_deadline(&self) -> Deadline {
        self.clocks.get().read
    }

    fn update(&self, f: impl FnOnce(&mut Clocks)) {
        let mut c = self.clocks.get();
        f(&mut c);
        self.clocks.set(c);
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut wait = !self.try_first.0;
        loop {
            if wait {
                let left = self.clocks.get().read.remaining(Instant::now());
                if left.is_zero() || !wait_one(self.input, PollFlags::POLLIN, left) {
                    return Err(timed_out("the client sent nothing in time"));
                }
            }
            match nix::unistd::read(borrow(self.input), buf) {
                Ok(n) => {
                    self.update(|c| c.read.moved(n));
                    return Ok(n);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => wait = true,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut wait = !self.try_first.1;
        loop {
            if wait {
                let left = self.clocks.get().write.remaining(Instant::now());
                if left.is_zero() || !wait_one(self.output, PollFlags::POLLOUT, left) {
                    return Err(timed_out("the client did not read its responses in time"));
                }
            }
            // write(2), not send(2): the kernel counts it (/proc/<pid>/io),
            // and a closed peer is an EPIPE error (SIGPIPE is ignored, as in
            // every Rust program).
            match nix::unistd::write(borrow(self.output), buf) {
                Ok(n) => {
                    self.update(|c| c.write.moved(n));
                    return Ok(n);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => wait = true,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the descriptors a Wire names are fds 0 and 1 (or those the
    // caller passed to `Wire::on`), which stay open for the life of the
    // process: this module never closes them.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn is_socket(fd: RawFd) -> bool {
    nix::sys::stat::fstat(borrow(fd))
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
        .unwrap_or(false)
}

/// True when `fd` is in non-blocking mode (`O_NONBLOCK`).
fn is_nonblocking(fd: RawFd) -> bool {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    fcntl(borrow(fd), FcntlArg::F_GETFL)
        .is_ok_and(|flags| OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK))
}

/// Puts `fd`, an open descriptor, in non-blocking mode; false when that
/// failed. The connection's fds here; the TLS relay's (`server::relay`) too.
pub fn set_nonblocking(fd: RawFd) -> bool {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let Ok(flags) = fcntl(borrow(fd), FcntlArg::F_GETFL) else {
        return false;
    };
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(borrow(fd), FcntlArg::F_SETFL(flags)).is_ok()
}

fn set_nodelay(fd: RawFd) {
    // Fails harmlessly on a unix-domain socket, which has no Nagle.
    let _ = nix::sys::socket::setsockopt(&borrow(fd), nix::sys::socket::sockopt::TcpNoDelay, &true);
}

/// Waits until `fd` is ready for `events` or `timeout` passes. A hang-up or
/// error counts as ready, so that the following read or write reports it.
fn wait_one(fd: RawFd, events: PollFlags, timeout: Duration) -> bool {
    wait_ready(&[fd], events, timeout)
        .first()
        .copied()
        .unwrap_or(true)
}

/// poll(2) on several descriptors for input; returns which are readable (or
/// hung up). The one poll helper of the server: the session's autologout and
/// IDLE, the TLS handshake and the listener all wait through it.
pub fn wait_readable(fds: &[RawFd], timeout: Duration) -> Vec<bool> {
    wait_ready(fds, PollFlags::POLLIN, timeout)
}

fn wait_ready(fds: &[RawFd], events: PollFlags, timeout: Duration) -> Vec<bool> {
    let mut pfds: Vec<PollFd> = fds
        .iter()
        .map(|&fd| PollFd::new(borrow(fd), events))
        .collect();
    // A timeout too long to represent waits without end.
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let ms = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up, so a sub-millisecond remainder does not spin.
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        match poll(&mut pfds, ms) {
            Ok(_) => {
                return pfds
                    .iter()
                    .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                    .collect();
            }
            Err(nix::errno::Errno::EINTR) if deadline.is_none_or(|d| d > Instant::now()) => {
                continue;
            }
            // An error from poll counts as "ready" so the caller's I/O reports it.
            Err(_) => return vec![true; fds.len()],
        }
    }
}

/// What the next command turned out to be.
pub enum Incoming {
    Command(Command),
    /// Input that could not be framed or parsed; the answer has been queued.
    Rejected,
    /// A PROXY protocol header where a command was expected (only asked
    /// for before login, where it means an untrusted peer sent one).
    ProxyHeader,
    /// The client is gone, or too slow (`ErrorKind::TimedOut`).
    Closed(io::Error),
}

/// A PROXY protocol header arriving where a command was expected: v1 text,
/// or the v2 signature `\r\n\r\n\0\r\nQUIT\n`, which line framing splits
/// into two empty lines (answered BAD), then `\0`, then `QUIT`.
fn is_proxy_header(fragments: &[Fragment]) -> bool {
    match fragments.first() {
        Some(Fragment::Line(l)) => l.starts_with(b"PROXY ") || l.as_slice() == b"\0",
        _ => false,
    }
}

/// The connection as the pre-login loop and the session see it: framed
/// input, buffered output and the wire under both.
pub struct Io {
    pub reader: CommandReader<Box<dyn Read>>,
    writer: BufWriter<Box<dyn Write>>,
    wire: Wire,
    bytes_out: u64,
    /// Bytes read by readers this connection has since replaced (the
    /// plaintext reader before STARTTLS).
    bytes_in_earlier: u64,
    /// Input held below the reader but invisible to poll(2): TLS plaintext
    /// already decrypted by the TLS library.
    pending_input: Option<Box<dyn Fn() -> bool>>,
    /// Set once a write failed: the client is gone or too slow, and nothing
    /// more is sent.
    broken: bool,
    /// The failed write ran out of time (the client stopped reading), as
    /// opposed to the connection being closed: the log says TIMEOUT.
    write_timed_out: bool,
    /// COMPRESS=DEFLATE is on (it cannot be turned off).
    deflating: bool,
}

impl Io {
    /// Plain IMAP on `wire`, with the input limits of `limits`.
    pub fn plain(wire: Wire, limits: Limits) -> Io {
        Io {
            reader: CommandReader::new(Box::new(wire.clone()) as Box<dyn Read>, limits),
            writer: BufWriter::with_capacity(OUTPUT_BUFFER, Box::new(wire.clone())),
            wire,
            bytes_out: 0,
            bytes_in_earlier: 0,
            pending_input: None,
            broken: false,
            write_timed_out: false,
            deflating: false,
        }
    }

    /// Replaces the byte streams (after a TLS handshake). Whatever the old
    /// reader had buffered is dropped: plaintext pipelined before STARTTLS
    /// must not be taken as protected input.
    pub fn replace_streams(
        &mut self,
        reader: Box<dyn Read>,
        writer: Box<dyn Write>,
        pending_input: Option<Box<dyn Fn() -> bool>>,
    ) {
        let limits = self.reader.limits();
        self.bytes_in_earlier += self.reader.bytes_read();
        self.reader = CommandReader::new(reader, limits);
        // The old writer was flushed by the caller before the handshake.
        self.writer = BufWriter::with_capacity(OUTPUT_BUFFER, writer);
        self.pending_input = pending_input;
    }

    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    /// Starts COMPRESS=DEFLATE in both directions, over whatever carries
    /// the bytes now (the socket or TLS). Everything queued is sent first,
    /// uncompressed: the OK that announces compression goes out in clear.
    /// Input the reader already holds was sent after that OK was asked for,
    /// so it is compressed and goes through the new layer.
    pub fn start_deflate(&mut self) -> io::Result<()> {
        self.flush()?;
        let (below, held) = self.reader.replace_inner(Box::new(io::empty()));
        let (reader, probe) = deflate::InflateReader::new(below, held);
        let _ = self.reader.replace_inner(Box::new(reader));
        let old = std::mem::replace(
            &mut self.writer,
            BufWriter::with_capacity(OUTPUT_BUFFER, Box::new(io::sink())),
        );
        let below = old.into_inner().map_err(|e| e.into_error())?;
        self.writer =
            BufWriter::with_capacity(OUTPUT_BUFFER, Box::new(deflate::DeflateWriter::new(below)));
        // Input may now wait in the decompressor, or (as before) in TLS.
        let earlier = self.pending_input.take();
        self.pending_input = Some(Box::new(move || {
            probe.has_input() || earlier.as_ref().is_some_and(|f| f())
        }));
        self.deflating = true;
        Ok(())
    }

    /// True once COMPRESS=DEFLATE is on.
    pub fn is_deflating(&self) -> bool {
        self.deflating
    }

    /// Queues `data`; it leaves when the buffer fills or at the next flush.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.bytes_out += data.len() as u64;
        let result = self.writer.write_all(data);
        self.note_failure(&result);
        result
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let result = self.writer.flush();
        self.note_failure(&result);
        result
    }

    /// Writes `data` and sends it at once: the last words before the
    /// connection ends, or a continuation request the client waits for.
    pub fn send(&mut self, data: &[u8]) -> bool {
        self.write_all(data).and_then(|()| self.flush()).is_ok()
    }

    fn note_failure(&mut self, result: &io::Result<()>) {
        if let Err(e) = result {
            self.broken = true;
            self.write_timed_out = e.kind() == io::ErrorKind::TimedOut;
        }
    }

    /// True once a write has failed.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// True when the write that failed ran out of time.
    pub fn write_timed_out(&self) -> bool {
        self.write_timed_out
    }

    /// Reads, frames and parses the next command. Input that cannot be
    /// framed or parsed is answered here, the same way before login and
    /// after it (see `protocol::response`).
    pub fn next_command(&mut self, detect_proxy: bool) -> Incoming {
        let fragments = match self.reader.read_command(&mut self.writer) {
            Ok(f) => f,
            Err(e) => {
                let in_sync = !matches!(e, FrameError::LiteralTooBig { in_sync: false, .. });
                return match response::for_frame_error(&e) {
                    Some((tag, answer)) if in_sync => {
                        let _ = self.write_all(&answer.encode(&tag));
                        Incoming::Rejected
                    }
                    Some((tag, answer)) => {
                        // The literal's octets are still coming and will not
                        // be read: nothing after them can be understood.
                        let _ = self.write_all(&answer.encode(&tag));
                        self.send(b"* BYE Literal too large to skip; closing the connection.\r\n");
                        Incoming::Closed(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a literal too large to skip",
                        ))
                    }
                    None => match e {
                        FrameError::Io(e) => Incoming::Closed(e),
                        _ => Incoming::Rejected,
                    },
                };
            }
        };
        if detect_proxy && is_proxy_header(&fragments) {
            return Incoming::ProxyHeader;
        }
        match parse_command(fragments) {
            Ok(c) => Incoming::Command(c),
            Err(e) => {
                let (tag, answer) = response::for_parse_error(&e);
                let _ = self.write_all(&answer.encode(&tag));
                Incoming::Rejected
            }
        }
    }

    /// Reads one line: a SASL response, IDLE's `DONE`.
    pub fn read_line(&mut self) -> Result<Vec<u8>, FrameError> {
        self.reader.read_line()
    }

    /// Takes the input received but not yet read as commands (what a client
    /// pipelined after its login command), for the session process.
    pub fn take_pending_input(&mut self) -> Vec<u8> {
        self.reader.take_pending()
    }

    /// Continues a connection another process began: `pending` is the input
    /// it received but did not read as commands, and the byte counts are
    /// what it moved, for the log line at the end.
    pub fn continue_from(&mut self, pending: &[u8], bytes_in: u64, bytes_out: u64) {
        self.reader.preload(pending);
        self.bytes_in_earlier += bytes_in;
        self.bytes_out += bytes_out;
    }

    /// Sets where literals larger than `threshold` are spooled (after login).
    pub fn set_spool(&mut self, threshold: usize, factory: crate::protocol::framing::SpoolFactory) {
        self.reader.set_spool(threshold, factory);
    }

    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// Everything read from the client so far, for the log.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in_earlier + self.reader.bytes_read()
    }

    /// True when input is waiting above the descriptor (buffered by the
    /// reader or decrypted by TLS), so poll(2) would not see it.
    pub fn input_buffered(&self) -> bool {
        self.reader.has_buffered() || self.pending_input.as_ref().is_some_and(|f| f())
    }

    /// Sends what is queued, then waits until input is available or
    /// `timeout` passes; true when input is (or may be) ready.
    pub fn wait_input(&mut self, timeout: Duration) -> bool {
        if self.flush().is_err() {
            // The read that follows reports the end of the connection.
            return true;
        }
        if self.input_buffered() {
            return true;
        }
        wait_readable(&[self.wire.input], timeout)
            .first()
            .copied()
            .unwrap_or(true)
    }
}

/// Makes sure fds 0, 1 and 2 are open (on /dev/null when they were not), so
/// that no file the server opens later can land on a standard descriptor.
pub fn ensure_standard_fds() {
    for fd in 0..3 {
        if nix::fcntl::fcntl(borrow(fd), nix::fcntl::FcntlArg::F_GETFD).is_err() {
            // open(2) returns the lowest free descriptor, which is `fd`.
            let _ = nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDWR,
                nix::sys::stat::Mode::empty(),
            )
            .map(std::mem::forget::<std::os::fd::OwnedFd>);
        }
    }
}

/// Closes every descriptor above 2: whatever the process that started us
/// left open (a pipe, a log file, /dev/null) is not the session's to keep.
pub fn close_inherited_fds() {
    // SAFETY: close_range(2) only closes descriptors; nothing in this process
    // owns one above 2 yet (this runs first thing in main, single-threaded).
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // Kernels before 5.9: close what /proc says is open.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: as above; the descriptor of the read_dir is closed already
        // (its close failing with EBADF is harmless).
        unsafe { libc::close(fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_proxy_headers() {
        assert!(is_proxy_header(&[Fragment::Line(
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2".to_vec()
        )]));
        assert!(is_proxy_header(&[Fragment::Line(b"\0".to_vec())]));
        assert!(!is_proxy_header(&[Fragment::Line(b"a LOGIN x y".to_vec())]));
    }

    #[test]
    fn rate_deadline_grows_with_progress() {
        let start = Instant::now();
        let mut d = Deadline::Rate {
            start,
            grace: Duration::from_secs(2),
            bytes: 0,
        };
        assert_eq!(d.remaining(start), Duration::from_secs(2));
        d.moved(10 * MIN_RATE as usize);
        assert_eq!(d.remaining(start), Duration::from_secs(12));
        assert_eq!(d.remaining(start + Duration::from_secs(13)), Duration::ZERO);
    }

    #[test]
    fn fixed_and_stall_deadlines() {
        let now = Instant::now();
        let d = Deadline::At(now + Duration::from_secs(5));
        assert_eq!(d.remaining(now + Duration::from_secs(6)), Duration::ZERO);
        let s = Deadline::Stall(Duration::from_secs(3));
        assert_eq!(
            s.remaining(now + Duration::from_secs(100)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn wire_reads_time_out_and_count() {
        let (r, mut w) = std::io::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let mut wire = Wire {
            input: r.as_raw_fd(),
            output: w.as_raw_fd(),
            clocks: Rc::new(Cell::new(Clocks {
                read: Deadline::rate_from_now(Duration::from_millis(50)),
                write: Deadline::Stall(Duration::from_secs(5)),
            })),
            try_first: (false, false),
        };
        w.write_all(b"abc").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(wire.read(&mut buf).unwrap(), 3);
        match wire.read_deadline() {
            Deadline::Rate { bytes, .. } => assert_eq!(bytes, 3),
            other => panic!("{other:?}"),
        }
        // Nothing more arrives: the grace runs out.
        let err = wire.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(r);
    }

    /// On non-blocking sockets a call is tried before any poll, and a call that would
    /// block still waits only until its deadline, reading or writing.
    #[test]
    fn a_nonblocking_wire_tries_first_and_still_times_out() {
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        assert!(is_nonblocking(ours.as_raw_fd()));
        let mut wire = Wire {
            input: ours.as_raw_fd(),
            output: ours.as_raw_fd(),
            clocks: Rc::new(Cell::new(Clocks {
                read: Deadline::Stall(Duration::from_millis(50)),
                write: Deadline::Stall(Duration::from_millis(50)),
            })),
            try_first: (true, true),
        };
        theirs.write_all(b"abc").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(wire.read(&mut buf).unwrap(), 3);
        assert_eq!(
            wire.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        // The peer reads nothing: writes fill the socket's buffer, then time out.
        let block = vec![b'x'; 64 * 1024];
        let err = loop {
            match wire.write(&block) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(theirs);
    }
}
