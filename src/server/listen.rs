//! `mdimap-listen`: bind, accept, and fork+exec one `mdimapd` per connection
//! with the socket on fd 0/1, as tcpserver does. It enforces MAXDAEMONS and
//! MAXPERIP, reaps children, and never dies because a session did: every
//! session is a separate process.
//!
//! One thread, one poll loop, and no call in it that waits for a client: the
//! PROXY headers of trusted proxies are read as they arrive, beside the
//! listening sockets, so a silent connection delays nobody. This module does
//! not parse the header (`proxy` does) nor serve IMAP (`mdimapd` does); the
//! child it starts inherits the connection, stderr and a fixed environment,
//! nothing else of the listener.

use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::SESSION_PATH;
use super::proxy::{HeaderReader, Network, Parsed, ProxyError};
use crate::conn::wait_readable;

/// How often the loop wakes with nothing to do, to apply SIGHUP and SIGTERM
/// (poll is not restarted after a signal, so they are usually seen at once).
const IDLE_WAKE: Duration = Duration::from_millis(500);

/// The longest PROXY header timeout honoured, so a deadline can always be
/// represented.
const MAX_PROXY_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_hup(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub config: Option<PathBuf>,
    /// Addresses to listen on; `true` for implicit TLS (port 993).
    pub listen: Vec<(SocketAddr, bool)>,
    pub mdimapd: PathBuf,
    pub log_stderr: bool,
    /// How long a trusted proxy may take to send a connection's PROXY header.
    /// Capped at a day.
    pub proxy_timeout: Duration,
    pub limits: ListenLimits,
}

/// What SIGHUP can change without dropping a session.
#[derive(Debug, Clone)]
pub struct ListenLimits {
    pub max_daemons: usize,
    pub max_per_ip: usize,
    /// Peers whose connections start with a PROXY header (HAProxy).
    pub proxy_trusted: Vec<Network>,
}

struct Session {
    child: Child,
    /// What MAXPERIP counts this session as.
    net: ClientNet,
}

/// A connection from a trusted proxy whose PROXY header has not all arrived.
/// It holds a MAXDAEMONS slot, so a proxy that opens connections and sends
/// nothing cannot make the listener keep more than MAXDAEMONS of them.
struct PendingHeader {
    /// Non-blocking while pending.
    stream: TcpStream,
    /// The proxy's own address (the client's is in the header).
    proxy: SocketAddr,
    tls_port: bool,
    deadline: Instant,
    header: HeaderReader,
}

/// What MAXPERIP counts connections by: an IPv4 address; an IPv6 address's
/// /64, because that is what one host (SLAAC, privacy addresses) or one
/// customer commonly has, so counting whole addresses would give one client
/// 2^64 allowances; an IPv4-mapped IPv6 address (a dual-stack socket's view
/// of an IPv4 client) as the IPv4 address it maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNet {
    V4(Ipv4Addr),
    /// The first 64 bits of the address.
    V6Prefix64(u64),
}

impl ClientNet {
    pub fn of(ip: IpAddr) -> ClientNet {
        match ip {
            IpAddr::V4(a) => ClientNet::V4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => ClientNet::V4(v4),
                // The shift keeps the top 64 bits, which always fit.
                None => ClientNet::V6Prefix64((u128::from(a) >> 64) as u64),
            },
        }
    }
}

impl fmt::Display for ClientNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientNet::V4(a) => write!(f, "{a}"),
            ClientNet::V6Prefix64(p) => {
                write!(f, "{}/64", std::net::Ipv6Addr::from(u128::from(*p) << 64))
            }
        }
    }
}

fn install_handlers() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let stop = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let hup = SigAction::new(
        SigHandler::Handler(on_hup),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        let _ = sigaction(Signal::SIGTERM, &stop);
        let _ = sigaction(Signal::SIGINT, &stop);
        let _ = sigaction(Signal::SIGHUP, &hup);
    }
}

/// Runs until SIGTERM or SIGINT. Returns the exit status.
pub fn run(opts: ListenOptions, reload: impl Fn() -> Option<ListenLimits>) -> i32 {
    install_handlers();
    let mut listeners = Vec::new();
    let mut implicit_tls = Vec::new();
    for (addr, tls) in &opts.listen {
        match TcpListener::bind(addr) {
            Ok(l) => {
                let local = l
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| addr.to_string());
                if let Err(e) = l.set_nonblocking(true) {
                    log::error!("{local}: {e}");
                    return 1;
                }
                let kind = if *tls { " (TLS)" } else { "" };
                eprintln!("mdimap-listen: listening on {local}{kind}");
                log::info!("listening on {local}{kind}");
                listeners.push(l);
                implicit_tls.push(*tls);
            }
            Err(e) => {
                eprintln!("mdimap-listen: cannot listen on {addr}: {e}");
                log::error!("cannot listen on {addr}: {e}");
                return 1;
            }
        }
    }
    if listeners.is_empty() {
        eprintln!(
            "mdimap-listen: nothing to listen on; give --listen ADDR:PORT or ADDRESS/PORT in the configuration"
        );
        return 1;
    }
    let mut door = Door {
        opts: &opts,
        limits: opts.limits.clone(),
        sessions: Vec::new(),
        pending: Vec::new(),
    };
    let listen_fds: Vec<RawFd> = listeners.iter().map(|l| l.as_raw_fd()).collect();
    while !STOP.load(Ordering::SeqCst) {
        if RELOAD.swap(false, Ordering::SeqCst)
            && let Some(l) = reload()
        {
            log::info!(
                "configuration re-read: MAXDAEMONS={} MAXPERIP={}",
                l.max_daemons,
                l.max_per_ip
            );
            door.limits = l;
        }
        door.reap();
        door.expire_pending(Instant::now());
        let mut fds = listen_fds.clone();
        fds.extend(door.pending.iter().map(|p| p.stream.as_raw_fd()));
        let ready = wait_readable(&fds, door.poll_timeout(Instant::now()));
        let (ready_listeners, ready_pending) = ready.split_at(listen_fds.len().min(ready.len()));
        // Headers first: those connections were accepted earlier.
        door.read_pending(ready_pending);
        for (i, listener) in listeners.iter().enumerate() {
            if !ready_listeners.get(i).copied().unwrap_or(false) {
                continue;
            }
            let tls_port = implicit_tls.get(i).copied().unwrap_or(false);
            loop {
                let (stream, peer) = match listener.accept() {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::warn!("accept: {e}");
                        break;
                    }
                };
                door.reap();
                door.accept(stream, peer, tls_port);
            }
        }
    }
    log::info!(
        "stopping; {} sessions continue until their clients leave",
        door.sessions.len()
    );
    0
}

/// The listener's bookkeeping between two polls: the running sessions and
/// the connections still sending a PROXY header, against the limits.
struct Door<'a> {
    opts: &'a ListenOptions,
    limits: ListenLimits,
    sessions: Vec<Session>,
    pending: Vec<PendingHeader>,
}

impl Door<'_> {
    /// The MAXDAEMONS slots in use: sessions, and connections whose header
    /// is still coming (each of which may become a session).
    fn occupied(&self) -> usize {
        self.sessions.len() + self.pending.len()
    }

    fn reap(&mut self) {
        self.sessions
            .retain_mut(|s| !matches!(s.child.try_wait(), Ok(Some(_))));
    }

    /// A new connection: served at once, or, from a trusted proxy, kept
    /// until its header says whom to count it as.
    fn accept(&mut self, stream: TcpStream, peer: SocketAddr, tls_port: bool) {
        let trusted = self
            .limits
            .proxy_trusted
            .iter()
            .any(|n| n.contains(peer.ip()));
        if !trusted {
            self.admit(stream, peer, tls_port, false);
            return;
        }
        if self.occupied() >= self.limits.max_daemons {
            refuse(stream, "Too many connections, try again later.", tls_port);
            log::warn!(
                "MAXDAEMONS ({}) reached; refused a connection from proxy ip=[{}] before its PROXY header",
                self.limits.max_daemons,
                peer.ip()
            );
            return;
        }
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("connection from proxy ip=[{}]: {e}", peer.ip());
            return;
        }
        let timeout = self.opts.proxy_timeout.min(MAX_PROXY_TIMEOUT);
        self.pending.push(PendingHeader {
            stream,
            proxy: peer,
            tls_port,
            deadline: Instant::now() + timeout,
            header: HeaderReader::new(),
        });
    }

    /// Reads what has arrived on the pending connections poll found
    /// readable (`ready` is in the order of `self.pending`), and admits the
    /// ones whose header is now complete as the client it names.
    fn read_pending(&mut self, ready: &[bool]) {
        let mut waiting = Vec::with_capacity(self.pending.len());
        let mut complete = Vec::new();
        for (i, mut p) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                waiting.push(p);
                continue;
            }
            match p.header.read_available(p.stream.as_raw_fd()) {
                Ok(Parsed::Incomplete) => waiting.push(p),
                Ok(Parsed::Header { conn, .. }) => complete.push((p, conn)),
                Err(e) => log::warn!(
                    "PROXY header from trusted ip=[{}]: {e}; connection closed",
                    p.proxy.ip()
                ),
            }
        }
        self.pending = waiting;
        for (p, conn) in complete {
            // UNKNOWN and LOCAL (health checks) keep the proxy's address.
            let peer = conn.map_or(p.proxy, |c| c.source);
            self.admit(p.stream, peer, p.tls_port, true);
        }
    }

    /// Closes the pending connections whose header did not complete in time.
    fn expire_pending(&mut self, now: Instant) {
        self.pending.retain(|p| {
            if now < p.deadline {
                return true;
            }
            log::warn!(
                "PROXY header from trusted ip=[{}]: {}; connection closed",
                p.proxy.ip(),
                ProxyError::Timeout
            );
            false
        });
    }

    /// How long the next poll may sleep: until the nearest header deadline,
    /// rounded up to poll's millisecond so it does not wake just before it.
    fn poll_timeout(&self, now: Instant) -> Duration {
        self.pending
            .iter()
            .map(|p| p.deadline.saturating_duration_since(now))
            .min()
            .map_or(IDLE_WAKE, |left| {
                let ms = u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
                Duration::from_millis(ms).min(IDLE_WAKE)
            })
    }

    /// Starts a session for `peer` (the client, from the header when
    /// proxied), or refuses the connection when a limit is reached.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr, tls_port: bool, proxied: bool) {
        let ip = peer.ip();
        let net = ClientNet::of(ip);
        if self.occupied() >= self.limits.max_daemons {
            refuse(stream, "Too many connections, try again later.", tls_port);
            log::warn!(
                "MAXDAEMONS ({}) reached; refused ip=[{ip}]",
                self.limits.max_daemons
            );
            return;
        }
        if self.sessions.iter().filter(|s| s.net == net).count() >= self.limits.max_per_ip {
            refuse(stream, "Too many connections from your address.", tls_port);
            match net {
                ClientNet::V4(_) => log::warn!(
                    "MAXPERIP ({}) reached; refused ip=[{ip}]",
                    self.limits.max_per_ip
                ),
                ClientNet::V6Prefix64(_) => log::warn!(
                    "MAXPERIP ({}) reached; refused ip=[{ip}], counted as net=[{net}]",
                    self.limits.max_per_ip
                ),
            }
            return;
        }
        match spawn(self.opts, stream, peer, tls_port, proxied) {
            Ok(child) => self.sessions.push(Session { child, net }),
            Err(e) => log::error!("cannot start {}: {e}", self.opts.mdimapd.display()),
        }
    }
}

/// Turns a connection away. On an implicit-TLS port a plaintext BYE would
/// only be a TLS error to the client, so the connection is just closed.
fn refuse(mut stream: TcpStream, why: &str, tls_port: bool) {
    if tls_port {
        return;
    }
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(format!("* BYE [LIMIT] {why}\r\n").as_bytes());
}

/// Starts mdimapd on the connection: fd 0 and 1 the socket, fd 2 the
/// listener's stderr, no other descriptor, and only the environment
/// `mdimap-listen(8)` documents.
fn spawn(
    opts: &ListenOptions,
    stream: TcpStream,
    peer: SocketAddr,
    tls: bool,
    proxied: bool,
) -> std::io::Result<Child> {
    stream.set_nonblocking(false)?;
    let local = stream.local_addr()?;
    let fd: OwnedFd = stream.into();
    let out = fd.try_clone()?;
    let mut cmd = Command::new(&opts.mdimapd);
    if let Some(c) = &opts.config {
        cmd.arg("--config").arg(c);
    }
    if opts.log_stderr {
        cmd.arg("--log-stderr");
    }
    if tls {
        cmd.arg("--tls");
    }
    cmd.env_clear().env("PATH", SESSION_PATH);
    if let Some(tz) = std::env::var_os("TZ") {
        cmd.env("TZ", tz);
    }
    if proxied {
        // mdimapd must not look for a header that has been read already.
        cmd.env("MDIMAP_PROXIED", "1");
    }
    cmd.stdin(Stdio::from(fd))
        .stdout(Stdio::from(out))
        .env("PROTO", "TCP")
        .env("TCPREMOTEIP", peer.ip().to_string())
        .env("TCPREMOTEPORT", peer.port().to_string())
        .env("TCPLOCALIP", local.ip().to_string())
        .env("TCPLOCALPORT", local.port().to_string());
    // Listed here, before the fork: the child may not allocate.
    let open = open_descriptors();
    // SAFETY: the closure runs between fork and exec and makes only
    // async-signal-safe system calls (close_range, fcntl) over a list
    // allocated before the fork; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            close_above_stderr_on_exec(&open);
            Ok(())
        });
    }
    cmd.spawn()
}

/// The descriptors this process has open, from /proc/self/fd; empty when
/// /proc cannot be read (then only close_range can help).
fn open_descriptors() -> Vec<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// In the child before exec: every descriptor above 2 is closed by the exec.
/// Rust marks the descriptors it creates close-on-exec, but the listener may
/// have inherited others (a pipe, /dev/null, a lock) from whoever started
/// it, and a session must not. Marked rather than closed here so that
/// `Command`'s own close-on-exec pipe still reports a failed exec as an
/// error of `spawn`. close_range with CLOSE_RANGE_CLOEXEC (Linux 5.11) does it
/// in one call; before that kernel, `listed` (taken before the fork) is
/// walked. Must stay async-signal-safe: no allocation, no locks.
fn close_above_stderr_on_exec(listed: &[RawFd]) {
    // SAFETY: close_range only changes descriptor flags of this process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        mark_close_on_exec(listed);
    }
}

/// The fallback of [`close_above_stderr_on_exec`]: the same for the
/// descriptors in `listed`. Async-signal-safe.
fn mark_close_on_exec(listed: &[RawFd]) {
    for &fd in listed {
        if fd > 2 {
            // SAFETY: F_SETFD on a descriptor number; a number that is no
            // longer open only gives EBADF.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> ClientNet {
        ClientNet::of(s.parse().unwrap())
    }

    #[test]
    fn ipv4_counts_per_address() {
        assert_eq!(net("198.51.100.1"), net("198.51.100.1"));
        assert_ne!(net("198.51.100.1"), net("198.51.100.2"));
        assert_eq!(net("198.51.100.1").to_string(), "198.51.100.1");
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(net("2001:db8::1"), net("2001:db8::2"));
        assert_eq!(net("2001:db8:0:0:ffff:ffff:ffff:ffff"), net("2001:db8::"));
        assert_ne!(net("2001:db8::1"), net("2001:db8:0:1::1"));
        assert_ne!(net("2001:db8::1"), net("2001:db9::1"));
        assert_eq!(net("2001:db8::1").to_string(), "2001:db8::/64");
        assert_eq!(net("::1"), net("::2"));
        assert_eq!(net("::1").to_string(), "::/64");
    }

    #[test]
    fn ipv4_mapped_counts_as_ipv4() {
        assert_eq!(net("::ffff:198.51.100.1"), net("198.51.100.1"));
        assert_ne!(net("::ffff:198.51.100.1"), net("::ffff:198.51.100.2"));
        assert_eq!(net("::ffff:198.51.100.1").to_string(), "198.51.100.1");
        // IPv4-compatible (deprecated) is not IPv4-mapped: an IPv6 /64.
        assert_eq!(net("::198.51.100.1"), net("::1"));
        // The v4 address 0.0.0.1 and the IPv6 ::1 are different clients.
        assert_ne!(net("0.0.0.1"), net("::1"));
    }

    #[test]
    fn poll_timeout_follows_the_nearest_deadline() {
        let opts = ListenOptions {
            config: None,
            listen: Vec::new(),
            mdimapd: PathBuf::from("mdimapd"),
            log_stderr: true,
            proxy_timeout: Duration::from_secs(3),
            limits: ListenLimits {
                max_daemons: 4,
                max_per_ip: 4,
                proxy_trusted: Vec::new(),
            },
        };
        let mut door = Door {
            opts: &opts,
            limits: opts.limits.clone(),
            sessions: Vec::new(),
            pending: Vec::new(),
        };
        let now = Instant::now();
        assert_eq!(door.poll_timeout(now), IDLE_WAKE);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        door.pending.push(PendingHeader {
            proxy: stream.local_addr().unwrap(),
            stream,
            tls_port: false,
            deadline: now + Duration::from_micros(1500),
            header: HeaderReader::new(),
        });
        assert_eq!(door.poll_timeout(now), Duration::from_millis(2));
        assert_eq!(door.occupied(), 1);
        door.expire_pending(now);
        assert_eq!(door.pending.len(), 1, "not before its deadline");
        door.expire_pending(now + Duration::from_millis(2));
        assert!(door.pending.is_empty());
    }

    /// Runs `mark` in a forked child (so the test process's own descriptors
    /// are left alone) on a pipe made without close-on-exec, as an inherited
    /// one is; whether both ends end up close-on-exec and stdin does not.
    fn marks_in_a_child(mark: fn(&[RawFd])) -> bool {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let listed = open_descriptors();
        assert!(listed.contains(&fds[0]) && listed.contains(&fds[1]));
        // SAFETY: the child makes only async-signal-safe calls (fcntl,
        // close_range, _exit) and allocates nothing: `listed` exists already.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            mark(&listed);
            // SAFETY: F_GETFD on descriptor numbers; -1 if not open.
            let flags = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) };
            let cloexec = |fd| flags(fd) != -1 && flags(fd) & libc::FD_CLOEXEC != 0;
            // Descriptor 0 (if the harness left one) is not touched.
            let ok = cloexec(fds[0]) && cloexec(fds[1]) && !cloexec(0);
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child just forked; closing our own pipe.
        unsafe {
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }

    #[test]
    fn inherited_descriptors_are_closed_on_exec() {
        assert!(marks_in_a_child(close_above_stderr_on_exec));
        // The fallback for kernels without close_range, on its own.
        assert!(marks_in_a_child(mark_close_on_exec));
    }
}
