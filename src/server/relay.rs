//! After a login over TLS, the login process stays between the client and
//! the session: it decrypts what the client sends and writes the plaintext
//! to the session over a unix socket, and encrypts what the session answers
//! (as Courier's couriertls and Dovecot's login proxy do). The session never
//! holds the TLS keys or the client's TCP socket; the relay, unprivileged in
//! its empty chroot, holds nothing but the keys of this one connection.
//!
//! The relay never times out an idle connection: the session owns the
//! autologout timer and ends by closing its side. It ends the connection
//! when data it holds for either side cannot move for `stall` (a client
//! that stopped reading, a session that stopped taking input).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::ServerConnection;

/// How much decrypted input waits for the session before the relay stops
/// reading the client, and how much of the session's output is encrypted
/// at a time.
const CHUNK: usize = 64 * 1024;

/// A descriptor read or written without waiting (EAGAIN is `WouldBlock`).
struct Raw(RawFd);

impl Raw {
    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the relay's descriptors (fds 0 and 1, and the session's
        // socket it owns) stay open until `run` returns.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::read(self.fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map_err(io::Error::from),
            }
        }
    }
}

impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::write(self.fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map_err(io::Error::from),
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Relays until either side is gone. `client_in`/`client_out` carry the TLS
/// records (fds 0 and 1), `session` the plaintext.
pub fn run(
    mut conn: ServerConnection,
    client_in: RawFd,
    client_out: RawFd,
    session: OwnedFd,
    stall: Duration,
) {
    for fd in [client_in, client_out, session.as_raw_fd()] {
        // A descriptor left blocking only costs a read or write that waits.
        let _ = crate::conn::set_nonblocking(fd);
    }
    // Room for one chunk of the session's output besides what is queued.
    conn.set_buffer_limit(Some(4 * CHUNK));
    // Records the login phase received but did not decrypt yet: their
    // plaintext is the session's.
    if conn.process_new_packets().is_err() {
        return;
    }
    let (mut client_rd, mut client_wr) = (Raw(client_in), Raw(client_out));
    let mut plain = Raw(session.as_raw_fd());
    let mut to_session: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let mut client_done = false;
    let mut session_done = false;
    let mut moved_at = Instant::now();
    loop {
        // Decrypted input, to the session.
        while to_session.len() < CHUNK && !client_done {
            match conn.reader().read(&mut buf) {
                Ok(0) => client_done = true,
                Ok(n) => to_session.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => break,
                // The client closed without close_notify: it has gone.
                Err(_) => client_done = true,
            }
        }
        if !to_session.is_empty() {
            match plain.write(&to_session) {
                Ok(n) => {
                    to_session.drain(..n);
                    moved_at = Instant::now();
                }
                Err(e) if would_block(&e) => {}
                Err(_) => return,
            }
        }
        // Encrypted output, to the client.
        while conn.wants_write() {
            match conn.write_tls(&mut client_wr) {
                Ok(_) => moved_at = Instant::now(),
                Err(e) if would_block(&e) => break,
                Err(_) => return,
            }
        }
        if client_done && to_session.is_empty() {
            // The session sees the end of its input when the relay exits.
            return;
        }
        if session_done && !conn.wants_write() {
            return;
        }
        let read_client = !client_done && to_session.len() < CHUNK;
        let write_client = conn.wants_write();
        let read_session = !session_done && !write_client;
        let write_session = !to_session.is_empty();
        let timeout = if write_client || write_session {
            let left = stall.saturating_sub(moved_at.elapsed());
            if left.is_zero() {
                log::info!("TLS relay: the connection stalled for {stall:?}; closing it");
                return;
            }
            PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX)
        } else {
            PollTimeout::NONE
        };
        // Only what the relay can act on is polled: a hang-up on a side it
        // is not reading would otherwise wake it without end.
        let mut wanted: Vec<(RawFd, PollFlags)> = Vec::with_capacity(4);
        if read_client {
            wanted.push((client_in, PollFlags::POLLIN));
        }
        if write_client {
            wanted.push((client_out, PollFlags::POLLOUT));
        }
        if read_session {
            wanted.push((session.as_raw_fd(), PollFlags::POLLIN));
        }
        if write_session {
            wanted.push((session.as_raw_fd(), PollFlags::POLLOUT));
        }
        let mut fds: Vec<PollFd> = wanted
            .iter()
            // SAFETY: as in `Raw::fd`.
            .map(|&(fd, ev)| PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, ev))
            .collect();
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
        let ready = |fd: RawFd, ev: PollFlags| {
            wanted.iter().zip(&fds).any(|(&(f, e), p)| {
                f == fd && e == ev && p.revents().is_some_and(|r| !r.is_empty())
            })
        };
        let client_ready = ready(client_in, PollFlags::POLLIN);
        let session_ready = ready(session.as_raw_fd(), PollFlags::POLLIN);
        if client_ready && read_client {
            match conn.read_tls(&mut client_rd) {
                Ok(0) => client_done = true,
                Ok(_) => {
                    moved_at = Instant::now();
                    if conn.process_new_packets().is_err() {
                        // Tell the client why, as far as it still listens.
                        let _ = conn.write_tls(&mut client_wr);
                        return;
                    }
                }
                Err(e) if would_block(&e) => {}
                Err(_) => client_done = true,
            }
        }
        if session_ready && read_session {
            match plain.read(&mut buf) {
                Ok(0) => {
                    session_done = true;
                    conn.send_close_notify();
                }
                Ok(n) => {
                    moved_at = Instant::now();
                    if conn.writer().write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if would_block(&e) => {}
                Err(_) => {
                    session_done = true;
                    conn.send_close_notify();
                }
            }
        }
    }
}
