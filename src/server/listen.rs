//! `mdimap-listen`: bind, accept, and fork+exec one `mdimapd` per connection
//! with the socket on fd 0/1, as tcpserver does. It enforces MAXDAEMONS and
//! MAXPERIP, reaps children, and never dies because a session did: every
//! session is a separate process.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::proxy::{self, Network};
use crate::conn::wait_readable;

/// How long a trusted proxy may take to send its header; the accept loop
/// waits for it, which only a trusted (and so well-behaved) peer can cause.
const PROXY_TIMEOUT: Duration = Duration::from_secs(3);

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
    ip: String,
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
    let mut limits = opts.limits.clone();
    let mut sessions: Vec<Session> = Vec::new();
    let fds: Vec<i32> = listeners.iter().map(|l| l.as_raw_fd()).collect();
    while !STOP.load(Ordering::SeqCst) {
        if RELOAD.swap(false, Ordering::SeqCst)
            && let Some(l) = reload()
        {
            log::info!(
                "configuration re-read: MAXDAEMONS={} MAXPERIP={}",
                l.max_daemons,
                l.max_per_ip
            );
            limits = l;
        }
        reap(&mut sessions);
        let ready = wait_readable(&fds, Duration::from_millis(500));
        for (i, listener) in listeners.iter().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                continue;
            }
            loop {
                let (stream, mut peer) = match listener.accept() {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::warn!("accept: {e}");
                        break;
                    }
                };
                reap(&mut sessions);
                let proxied = limits.proxy_trusted.iter().any(|n| n.contains(peer.ip()));
                if proxied {
                    // The real client is in the header: count and log it.
                    if stream.set_nonblocking(false).is_err() {
                        continue;
                    }
                    match proxy::read_header(stream.as_raw_fd(), PROXY_TIMEOUT) {
                        Ok(Some(real)) => peer = real.source,
                        Ok(None) => {}
                        Err(e) => {
                            log::warn!(
                                "PROXY header from trusted ip=[{}]: {e}; connection closed",
                                peer.ip()
                            );
                            continue;
                        }
                    }
                }
                let ip = peer.ip().to_string();
                let tls_port = implicit_tls.get(i).copied().unwrap_or(false);
                if sessions.len() >= limits.max_daemons {
                    refuse(stream, "Too many connections, try again later.", tls_port);
                    log::warn!(
                        "MAXDAEMONS ({}) reached; refused ip=[{ip}]",
                        limits.max_daemons
                    );
                    continue;
                }
                if sessions.iter().filter(|s| s.ip == ip).count() >= limits.max_per_ip {
                    refuse(stream, "Too many connections from your address.", tls_port);
                    log::warn!(
                        "MAXPERIP ({}) reached; refused ip=[{ip}]",
                        limits.max_per_ip
                    );
                    continue;
                }
                match spawn(
                    &opts,
                    stream,
                    peer,
                    implicit_tls.get(i).copied().unwrap_or(false),
                    proxied,
                ) {
                    Ok(child) => sessions.push(Session { child, ip }),
                    Err(e) => log::error!("cannot start {}: {e}", opts.mdimapd.display()),
                }
            }
        }
    }
    log::info!(
        "stopping; {} sessions continue until their clients leave",
        sessions.len()
    );
    0
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

fn reap(sessions: &mut Vec<Session>) {
    sessions.retain_mut(|s| !matches!(s.child.try_wait(), Ok(Some(_))));
}

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
    cmd.spawn()
}
