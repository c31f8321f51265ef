//! The not-authenticated state (RFC 3501 §6.1-6.2): CAPABILITY, NOOP,
//! LOGOUT, ID, STARTTLS, LOGIN and AUTHENTICATE, and nothing else.
//!
//! Everything here is reachable by anyone on the network, so input is kept
//! small (see `PREAUTH_LIMITS`), failures are slowed down and counted, and
//! plaintext passwords are refused on unencrypted connections unless the
//! configuration allows them (by default: from loopback only).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ServerConfig;

use super::logging::escape;
use super::tls;
use crate::auth::{AuthError, MailUser};
use crate::protocol::base64;
use crate::protocol::command::CommandBody;
use crate::protocol::framing::{CommandReader, FrameError, Limits};
use crate::protocol::parser::parse_command;
use crate::session::Io;

/// Lines and literals a client may send before it has logged in: small,
/// because anyone on the network can send them.
pub const PREAUTH_LIMITS: Limits = Limits { max_line: 8192, max_literal: 8192, max_command: 16384 };

/// Capabilities common to every state (the login mechanisms are added
/// before login, depending on the connection).
pub const CAPABILITIES: &str =
    "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS CHILDREN UNSELECT MOVE UTF8=ACCEPT";

pub use crate::config::PlaintextLogin;

/// The policy of the front door, from the configuration.
pub struct FrontDoor {
    /// `None` when no certificate is configured: no STARTTLS.
    pub tls: Option<Arc<ServerConfig>>,
    pub plaintext_login: PlaintextLogin,
    pub failure_delay: Duration,
    pub max_failures: u32,
    pub timeout: Duration,
}

/// Who is on the other end.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: String,
    pub port: String,
    pub loopback: bool,
}

/// A successful login.
pub struct LoggedIn {
    pub user: MailUser,
    pub tag: String,
    pub method: &'static str,
    pub tls: Option<tls::TlsInfo>,
}

/// Checks a user name and password (the configured authentication chain).
pub type Verifier<'a> = dyn Fn(&str, &[u8]) -> Result<MailUser, AuthError> + 'a;

struct State {
    tls: Option<tls::TlsInfo>,
    failures: u32,
}

impl FrontDoor {
    fn plaintext_ok(&self, peer: &Peer, state: &State) -> bool {
        state.tls.is_some()
            || match self.plaintext_login {
                PlaintextLogin::Always => true,
                PlaintextLogin::LoopbackOnly => peer.loopback,
                PlaintextLogin::Never => false,
            }
    }

    /// The capabilities for the greeting.
    pub fn greeting_capabilities(&self, peer: &Peer, tls: bool) -> String {
        let state = State { tls: tls.then(|| tls::TlsInfo { version: String::new(), cipher: String::new(), sni: None }), failures: 0 };
        self.capabilities(peer, &state)
    }

    /// The capability list before login, for this connection as it is now.
    fn capabilities(&self, peer: &Peer, state: &State) -> String {
        let mut caps = CAPABILITIES.to_string();
        if state.tls.is_none() && self.tls.is_some() {
            caps.push_str(" STARTTLS");
        }
        if self.plaintext_ok(peer, state) {
            caps.push_str(" AUTH=PLAIN AUTH=LOGIN");
        } else {
            caps.push_str(" LOGINDISABLED");
        }
        caps
    }
}

fn reply(io: &mut Io, line: &str) -> bool {
    io.write_all(line.as_bytes()).and_then(|_| io.flush()).is_ok()
}

/// Duplicates a descriptor, owned by the caller.
fn dup(fd: i32) -> Result<File, String> {
    // SAFETY: dup(2) on a descriptor number; the result is checked and then
    // owned by the returned File alone.
    let new = unsafe { libc::dup(fd) };
    if new < 0 {
        return Err(format!("dup: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `new` is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(new) })
}

/// Performs the TLS handshake on the connection's descriptors and swaps the
/// session's reader and writer for TLS ones. Whatever plaintext the reader
/// had buffered is discarded first (RFC 3207-style command injection).
pub fn start_tls(io: &mut Io, config: Arc<ServerConfig>, timeout: Duration) -> Result<tls::TlsInfo, String> {
    io.reader.discard_buffered();
    let input = dup(io.input_fd)?;
    let output = dup(1)?;
    let input_fd = std::os::fd::AsRawFd::as_raw_fd(&input);
    let (reader, writer, info) = tls::accept(config, tls::FdPair { input, output }, timeout)?;
    let probe = reader.probe();
    io.reader = CommandReader::new(Box::new(reader) as Box<dyn Read>, PREAUTH_LIMITS);
    io.writer = Box::new(BufWriter::with_capacity(64 * 1024, writer)) as Box<dyn Write>;
    io.input_fd = input_fd;
    io.pending_input = Some(Box::new(move || probe.has_plaintext()));
    Ok(info)
}

/// What one SASL exchange produced.
enum Sasl {
    Credentials(Vec<u8>, Vec<u8>),
    /// The exchange ended with a response already sent (cancel, bad input).
    Ended,
    Disconnected,
}

/// Reads one SASL response line: base64, or `*` to cancel.
fn sasl_response(io: &mut Io, tag: &str, challenge: &str) -> Result<Vec<u8>, Sasl> {
    if !reply(io, &format!("+ {challenge}\r\n")) {
        return Err(Sasl::Disconnected);
    }
    let line = match io.reader.read_line() {
        Ok(l) => l,
        Err(FrameError::Io(_)) => return Err(Sasl::Disconnected),
        Err(_) => {
            reply(io, &format!("{tag} BAD Response too long.\r\n"));
            return Err(Sasl::Ended);
        }
    };
    if line == b"*" {
        reply(io, &format!("{tag} BAD AUTHENTICATE cancelled.\r\n"));
        return Err(Sasl::Ended);
    }
    match base64::decode(&line) {
        Some(r) => Ok(r),
        None => {
            reply(io, &format!("{tag} BAD Invalid base64 in the response.\r\n"));
            Err(Sasl::Ended)
        }
    }
}

/// PLAIN (RFC 4616): `authzid NUL authcid NUL password`.
fn sasl_plain(io: &mut Io, tag: &str, initial: Option<Vec<u8>>) -> Sasl {
    let response = match initial {
        Some(r) => r,
        None => match sasl_response(io, tag, "") {
            Ok(r) => r,
            Err(s) => return s,
        },
    };
    let mut parts = response.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(pass), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        reply(io, &format!("{tag} BAD Malformed PLAIN response.\r\n"));
        return Sasl::Ended;
    };
    if !authz.is_empty() && authz != authc {
        reply(io, &format!("{tag} NO [AUTHORIZATIONFAILED] Logging in as another user is not allowed.\r\n"));
        return Sasl::Ended;
    }
    Sasl::Credentials(authc.to_vec(), pass.to_vec())
}

/// LOGIN (draft-murchison-sasl-login): user name, then password.
fn sasl_login(io: &mut Io, tag: &str, initial: Option<Vec<u8>>) -> Sasl {
    let user = match initial {
        Some(u) => u,
        None => match sasl_response(io, tag, &base64::encode(b"Username:")) {
            Ok(u) => u,
            Err(s) => return s,
        },
    };
    match sasl_response(io, tag, &base64::encode(b"Password:")) {
        Ok(p) => Sasl::Credentials(user, p),
        Err(s) => s,
    }
}

/// Serves the not-authenticated state until a login succeeds (returns the
/// user) or the client leaves, times out or fails too often (`None`).
pub fn login_phase(io: &mut Io, door: &FrontDoor, peer: &Peer, verify: &Verifier, implicit_tls: Option<tls::TlsInfo>) -> Option<LoggedIn> {
    let mut state = State { tls: implicit_tls, failures: 0 };
    let deadline = Instant::now() + door.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !io.wait_input(left) {
            reply(io, "* BYE Login timeout.\r\n");
            return None;
        }
        let fragments = match io.reader.read_command(&mut *io.writer) {
            Ok(f) => f,
            Err(FrameError::Io(_)) => return None,
            Err(FrameError::LineTooLong) => {
                reply(io, "* BAD [TOOBIG] Command line too long.\r\n");
                continue;
            }
            Err(FrameError::LiteralTooBig { tag, .. }) => {
                let tag = tag.map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_else(|| "*".into());
                reply(io, &format!("{tag} NO [TOOBIG] Literal too large before login.\r\n"));
                continue;
            }
        };
        let command = match parse_command(&fragments) {
            Ok(c) => c,
            Err(e) => {
                reply(io, &format!("{} BAD {}\r\n", e.tag.unwrap_or_else(|| "*".into()), e.message));
                continue;
            }
        };
        let tag = command.tag;
        let (user, password, method) = match command.body {
            CommandBody::Capability => {
                let caps = door.capabilities(peer, &state);
                reply(io, &format!("* CAPABILITY {caps}\r\n{tag} OK CAPABILITY completed.\r\n"));
                continue;
            }
            CommandBody::Noop => {
                reply(io, &format!("{tag} OK NOOP completed.\r\n"));
                continue;
            }
            CommandBody::Logout => {
                reply(io, &format!("* BYE mdimap logging out\r\n{tag} OK LOGOUT completed.\r\n"));
                return None;
            }
            CommandBody::Id(_) => {
                reply(io, &format!("* ID (\"name\" \"mdimap\")\r\n{tag} OK ID completed.\r\n"));
                continue;
            }
            CommandBody::StartTls => {
                let Some(config) = door.tls.clone().filter(|_| state.tls.is_none()) else {
                    let why = if state.tls.is_some() { "TLS is already active" } else { "TLS is not configured" };
                    reply(io, &format!("{tag} BAD {why}.\r\n"));
                    continue;
                };
                if !reply(io, &format!("{tag} OK Begin TLS negotiation now.\r\n")) {
                    return None;
                }
                match start_tls(io, config, door.timeout) {
                    Ok(info) => state.tls = Some(info),
                    Err(e) => {
                        log::info!("STARTTLS failed, ip=[{}]: {e}", escape(peer.ip.as_bytes()));
                        return None;
                    }
                }
                continue;
            }
            CommandBody::Login { user, password } => {
                if !door.plaintext_ok(peer, &state) {
                    reply(io, &format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS before logging in.\r\n"));
                    continue;
                }
                (user, password, "LOGIN")
            }
            CommandBody::Authenticate { mechanism, initial } => {
                let plain = mechanism.eq_ignore_ascii_case("PLAIN");
                let login = mechanism.eq_ignore_ascii_case("LOGIN");
                if !plain && !login {
                    reply(io, &format!("{tag} NO [CANNOT] Unsupported authentication mechanism.\r\n"));
                    continue;
                }
                if !door.plaintext_ok(peer, &state) {
                    reply(io, &format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS before logging in.\r\n"));
                    continue;
                }
                let outcome = if plain { sasl_plain(io, &tag, initial) } else { sasl_login(io, &tag, initial) };
                match outcome {
                    Sasl::Credentials(u, p) => (u, p, if plain { "PLAIN" } else { "AUTH-LOGIN" }),
                    Sasl::Ended => continue,
                    Sasl::Disconnected => return None,
                }
            }
            _ => {
                reply(io, &format!("{tag} BAD Log in first.\r\n"));
                continue;
            }
        };
        let name = String::from_utf8_lossy(&user).into_owned();
        let error = match verify(&name, &password) {
            Ok(u) => return Some(LoggedIn { user: u, tag, method, tls: state.tls }),
            Err(e) => e,
        };
        state.failures += 1;
        let reason = match &error {
            AuthError::Failed => "wrong user or password".to_string(),
            other => other.to_string(),
        };
        // Courier's wording, so existing log tooling (fail2ban's courier
        // filters) keeps working: the line ends with the address.
        log::info!("LOGIN FAILED, method={method}, user={}, ip=[{}]", escape(&user), escape(peer.ip.as_bytes()));
        if !matches!(error, AuthError::Failed) {
            log::error!("login failure for user={}: {}", escape(&user), escape(reason.as_bytes()));
        }
        std::thread::sleep(door.failure_delay);
        let code = match error {
            AuthError::Unavailable(_) => "UNAVAILABLE",
            _ => "AUTHENTICATIONFAILED",
        };
        if !reply(io, &format!("{tag} NO [{code}] Authentication failed.\r\n")) {
            return None;
        }
        if state.failures >= door.max_failures {
            reply(io, "* BYE Too many authentication failures.\r\n");
            return None;
        }
    }
}
