//! Privilege separation before login, as Dovecot's imap-login and OpenSSH
//! have it: no byte from the client is read by a root process.
//!
//! mdimapd starts as root (it must, to become any mail user), reads its
//! configuration and TLS keys, then forks the *login process*, which
//! confines itself (`sandbox`: `MDIMAP_LOGIN_USER`, empty chroot, no
//! capabilities) before it touches the client: the PROXY header, the TLS
//! handshake, the greeting and every command up to a successful login are
//! its. It asks the root part to check credentials over a `SOCK_SEQPACKET`
//! channel (`handover`); the root part holds the authentication chain,
//! answers with a verdict, and never parses IMAP.
//!
//! When a login succeeds the login process hands over: it sends what it
//! read after the login command, then
//! - without TLS it exits, and the root part, become the mail user, talks to
//!   the client socket on fds 0/1 itself;
//! - with TLS it stays as a relay (`relay`), decrypting for the session and
//!   encrypting its answers over a unix socket that the session has on fds
//!   0/1 instead of the client's. The session never holds the TLS keys or
//!   the TCP socket.
//!
//! The relay (rather than handing the keys to the kernel, kTLS) works on
//! every kernel without the `tls` module, keeps rustls's record handling
//! (key updates, alerts, close_notify) in one place, and costs one process
//! of about 1 MiB RSS and one copy of the data per TLS session; the
//! figures are in BENCHMARKS.md.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::handover::{Channel, ToRoot, Verdict, channel_pair};
use super::login::{self, FrontDoor, LoggedIn, Peer};
use super::sandbox::{self, LoginUser};
use super::tls::{self, TlsInfo};
use crate::auth::sasl::Credentials;
use crate::auth::{AuthError, MailUser};
use crate::conn::{Deadline, Io, Wire};
use crate::logtext::escape;

/// What the login process needs, all of it read before the fork.
pub struct LoginSetup<'a> {
    pub door: &'a FrontDoor,
    pub user: LoginUser,
    /// Implicit TLS (port 993): the handshake comes first.
    pub implicit_tls: bool,
    /// The client's address as the socket or the starter says.
    pub peer: Peer,
    /// Read a PROXY header first: the peer is a trusted proxy.
    pub read_proxy_header: bool,
    /// When the whole login must be over.
    pub deadline: Instant,
    /// How long output may wait for a client that does not read (the relay).
    pub stall: Duration,
}

/// The root part's side of the authentication chain.
pub trait Authority {
    /// Checks credentials (and that the account can be served): the user
    /// on success. The failure is logged here.
    fn decide(
        &self,
        method: &str,
        credentials: &Credentials,
        tls: bool,
        client_identity: Option<&str>,
        ip: &str,
    ) -> (Verdict, Option<MailUser>);
}

/// A login the root part accepted and the login process handed over.
pub struct Admitted {
    pub user: MailUser,
    pub method: String,
    pub tag: String,
    /// TLS version and cipher, for the log.
    pub tls: Option<(String, String)>,
    pub peer: Peer,
    pub leftover: Vec<u8>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// When the accepted login command arrived (a refusal after this point
    /// is answered when a wrong password would have been).
    pub attempt_started: Instant,
}

/// Forks the login process and serves its requests as root. Returns the
/// admitted login, or `None` when the connection ended before one (the
/// login process has said what was to be said).
pub fn login(setup: LoginSetup, authority: &dyn Authority) -> Option<Admitted> {
    let (to_login, to_root) = match channel_pair() {
        Ok(pair) => pair,
        Err(e) => {
            log::error!("cannot make the login process's channel: {e}");
            return None;
        }
    };
    let (session_end, relay_end) = match relay_pair() {
        Ok(pair) => pair,
        Err(e) => {
            log::error!("cannot make the TLS relay's socket: {e}");
            return None;
        }
    };
    // SAFETY: mdimapd is single-threaded, so the child may run ordinary Rust
    // code; it leaves with _exit, so nothing of the parent's runs twice.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => {
            log::error!("cannot fork the login process: {e}");
            return None;
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(to_login);
            drop(session_end);
            let status = login_process(&setup, to_root, relay_end);
            // SAFETY: _exit(2) ends the login process at once, as intended.
            unsafe { libc::_exit(status) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
    };
    drop(to_root);
    drop(relay_end);
    // The login process ends the login by the deadline; the margin covers
    // its last failure delay and BYE. Then it is stopped whatever it does.
    let give_up = setup.deadline + Duration::from_secs(10);
    let admitted = serve_login_process(&to_login, authority, setup.peer.clone(), give_up);
    drop(to_login);
    let reap = |kill: bool| {
        if kill {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = nix::sys::wait::waitpid(child, None);
    };
    let Some(admitted) = admitted else {
        reap(true);
        return None;
    };
    if admitted.tls.is_some() {
        // The login process relays from now on; the session talks to it on
        // fds 0/1 and keeps no descriptor of the client's own.
        if !on_standard_fds(session_end) {
            reap(true);
            return None;
        }
    } else {
        // Nothing more is the login process's to do: it is stopped before
        // the session reads the client socket.
        drop(session_end);
        reap(true);
    }
    Some(admitted)
}

/// The unix socket pair between the session and the relay.
fn relay_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Puts `fd` on fds 0 and 1 in place of the client's socket.
fn on_standard_fds(fd: OwnedFd) -> bool {
    for target in [0, 1] {
        // SAFETY: dup2 onto a standard descriptor, which this process owns;
        // the client's socket there is closed by it, as intended.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            log::error!(
                "cannot put the TLS relay on fd {target}: {}",
                std::io::Error::last_os_error()
            );
            return false;
        }
    }
    true
}

/// The root part's loop: answers the login process until it hands over a
/// login (returned) or ends.
fn serve_login_process(
    channel: &Channel,
    authority: &dyn Authority,
    mut peer: Peer,
    give_up: Instant,
) -> Option<Admitted> {
    let mut accepted: Option<(MailUser, String, Instant)> = None;
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        let message = channel.receive(left)?;
        let Some(message) = ToRoot::decode(&message) else {
            log::error!(
                "the login process for ip=[{}] sent a malformed message; connection closed",
                escape(peer.ip.as_bytes())
            );
            return None;
        };
        match message {
            ToRoot::Connected { ip, port } => {
                peer.ip = ip;
                peer.port = port;
            }
            ToRoot::Authenticate {
                method,
                credentials,
                tls,
                client_identity,
            } => {
                let started = Instant::now();
                let (verdict, user) = authority.decide(
                    &method,
                    &credentials,
                    tls,
                    client_identity.as_deref(),
                    &peer.ip,
                );
                drop(credentials);
                accepted = user.map(|u| (u, method, started));
                if !channel.send(&verdict.encode()) {
                    return None;
                }
            }
            ToRoot::Admit {
                tag,
                tls,
                bytes_in,
                bytes_out,
                leftover,
            } => {
                let Some((user, method, attempt_started)) = accepted.take() else {
                    log::error!(
                        "the login process for ip=[{}] handed over a login nobody accepted; connection closed",
                        escape(peer.ip.as_bytes())
                    );
                    return None;
                };
                return Some(Admitted {
                    user,
                    method,
                    tag,
                    tls,
                    peer,
                    leftover,
                    bytes_in,
                    bytes_out,
                    attempt_started,
                });
            }
        }
    }
}

/// The login process: confined, it serves the client until a login is
/// accepted, hands it over, and relays TLS if there is any. Its exit status.
fn login_process(setup: &LoginSetup, channel: Channel, relay_end: OwnedFd) -> i32 {
    super::name_process(c"mdimapd-login");
    let wire = Wire::stdio(Deadline::At(setup.deadline));
    let mut io = Io::plain(wire, login::PREAUTH_LIMITS);
    if let Err(e) = sandbox::confine(&setup.user) {
        log::error!("the login process cannot confine itself: {e}");
        io.send(b"* BYE [UNAVAILABLE] Server error; see the log.\r\n");
        return 1;
    }
    let mut peer = setup.peer.clone();
    if setup.read_proxy_header {
        let left = setup.deadline.saturating_duration_since(Instant::now());
        match super::proxy::read_header(0, left.min(super::PROXY_HEADER_TIMEOUT)) {
            Ok(Some(real)) => {
                peer.ip = real.source.ip().to_string();
                peer.port = real.source.port().to_string();
                peer.loopback = super::is_loopback(real.source.ip());
            }
            Ok(None) => {}
            Err(e) => {
                log::warn!(
                    "PROXY header from trusted ip=[{}]: {e}; connection refused",
                    escape(peer.ip.as_bytes())
                );
                return 0;
            }
        }
    }
    log::info!(
        "Connection, ip=[{}], port=[{}]",
        escape(peer.ip.as_bytes()),
        escape(peer.port.as_bytes())
    );
    if !channel.send(
        &ToRoot::Connected {
            ip: peer.ip.clone(),
            port: peer.port.clone(),
        }
        .encode(),
    ) {
        return 1;
    }
    let door = setup.door;
    let mut implicit = None;
    if setup.implicit_tls {
        let Some(tls_config) = door.tls.clone() else {
            return 1;
        };
        match login::start_tls(&mut io, door, tls_config) {
            Ok(started) => implicit = Some(started),
            Err(e) => {
                log::info!(
                    "TLS handshake failed, ip=[{}]: {e}",
                    escape(peer.ip.as_bytes())
                );
                return 0;
            }
        }
    }
    let greeting = format!(
        "* OK [CAPABILITY {}] {} mdimap ready.\r\n",
        door.capabilities(&peer, implicit.as_ref().map(|(info, _)| info)),
        door.hostname
    );
    if !io.send(greeting.as_bytes()) {
        return 0;
    }
    let accounts = RemoteAccounts {
        channel: &channel,
        cram: door.cram,
    };
    let Some(LoggedIn { tag, tls, stream }) =
        login::login_phase(&mut io, door, &peer, &accounts, implicit)
    else {
        return 0;
    };
    let leftover = io.take_pending_input();
    let admit = ToRoot::Admit {
        tag,
        tls: tls
            .as_ref()
            .map(|t: &TlsInfo| (t.version.clone(), t.cipher.clone())),
        bytes_in: io.bytes_in(),
        bytes_out: io.bytes_out(),
        leftover,
    };
    if !channel.send(&admit.encode()) {
        return 1;
    }
    drop(channel);
    let Some(stream) = stream else {
        return 0;
    };
    // The connection's reader and writer go, so the relay holds the TLS
    // session alone.
    drop(io);
    let Some((conn, wire)) = stream.into_connection() else {
        log::error!("TLS relay: the TLS session is still shared; connection closed");
        return 1;
    };
    super::relay::run(
        conn,
        wire.input_fd(),
        wire.output_fd(),
        relay_end,
        setup.stall,
    );
    0
}

/// The login process's view of the accounts: each check goes to the root part.
struct RemoteAccounts<'a> {
    channel: &'a Channel,
    cram: bool,
}

impl login::Accounts for RemoteAccounts<'_> {
    fn has_clear_passwords(&self) -> bool {
        self.cram
    }

    fn authenticate(
        &self,
        method: &str,
        credentials: Credentials,
        tls: Option<&tls::TlsInfo>,
    ) -> Verdict {
        let request = ToRoot::Authenticate {
            method: method.to_string(),
            credentials,
            tls: tls.is_some(),
            client_identity: tls.and_then(|t| t.client_identity.clone()),
        };
        // The root part's check can take as long as a backend does; the
        // login deadline bounds the whole exchange.
        let unavailable = Verdict::Failed { unavailable: true };
        if !self.channel.send(&request.encode()) {
            return unavailable;
        }
        drop(request);
        match self.channel.receive(Duration::from_secs(3600)) {
            Some(answer) => Verdict::decode(&answer).unwrap_or(unavailable),
            None => unavailable,
        }
    }
}

/// The root part's decision on one login, as [`Authority::decide`] for the
/// configured chain: the credentials, a trial of the session, the account's
/// options; every outcome logged.
pub fn decide(
    backends: &dyn login::Backends,
    can_serve: &dyn Fn(&MailUser) -> Result<(), String>,
    method: &str,
    credentials: &Credentials,
    tls: bool,
    client_identity: Option<&str>,
    ip: &str,
) -> (Verdict, Option<MailUser>) {
    let user_for_log: Vec<u8> = match credentials {
        Credentials::External { .. } => client_identity.unwrap_or_default().as_bytes().to_vec(),
        other => other.user().to_vec(),
    };
    // EXTERNAL's authorization identity must be the certificate's user; the
    // login process checks it, and so does the root part, which trusts
    // nothing the login process says but the certificate's name.
    if let Credentials::External { authzid } = credentials
        && !authzid.is_empty()
        && Some(authzid.as_slice()) != client_identity.map(str::as_bytes)
    {
        login::log_failure(method, &user_for_log, ip, &AuthError::Failed);
        return (Verdict::Failed { unavailable: false }, None);
    }
    let outcome = login::check(credentials, backends, client_identity).and_then(|u| {
        match can_serve(&u) {
            Ok(()) => Ok(u),
            Err(why) => {
                // The administrator learns why; the client sees what a wrong
                // password gets, so a right one cannot be told apart.
                log::error!(
                    "user={}: the password is right but the account cannot be served: {}",
                    escape(u.name.as_bytes()),
                    escape(why.as_bytes())
                );
                Err(AuthError::Failed)
            }
        }
    });
    match outcome {
        Ok(user) => match login::account_refusal(&user, tls) {
            Some(refusal) => {
                log::info!(
                    "LOGIN REFUSED, method={}, user={}, ip=[{}], reason={refusal}",
                    escape(method.as_bytes()),
                    escape(user.name.as_bytes()),
                    escape(ip.as_bytes())
                );
                let verdict = Verdict::Refused {
                    privacy: refusal.contains("insecure"),
                    text: format!("IMAP access is {refusal} for this account."),
                };
                (verdict, None)
            }
            None => (Verdict::Accepted, Some(user)),
        },
        Err(e) => {
            login::log_failure(method, &user_for_log, ip, &e);
            let unavailable = matches!(e, AuthError::Unavailable(_));
            (Verdict::Failed { unavailable }, None)
        }
    }
}
