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

use super::tls;
use crate::auth::{AuthError, MailUser};
use crate::logtext::escape;
use crate::protocol::base64;
use crate::protocol::command::CommandBody;
use crate::protocol::framing::{CommandReader, FrameError, Limits};
use crate::protocol::parser::parse_command;
use crate::session::Io;

/// Lines and literals a client may send before it has logged in: small,
/// because anyone on the network can send them.
pub const PREAUTH_LIMITS: Limits = Limits {
    max_line: 8192,
    max_literal: 8192,
    max_command: 16384,
};

/// Capabilities common to every state (the login mechanisms are added
/// before login, depending on the connection).
pub const CAPABILITIES: &str = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS CHILDREN UNSELECT MOVE UTF8=ACCEPT";

pub use crate::config::PlaintextLogin;

/// The policy of the front door, from the configuration.
pub struct FrontDoor {
    /// `None` when no certificate is configured: no STARTTLS.
    pub tls: Option<Arc<ServerConfig>>,
    pub plaintext_login: PlaintextLogin,
    pub failure_delay: Duration,
    pub max_failures: u32,
    pub timeout: Duration,
    /// The client certificate subject field that names the user (TLS_EXTERNAL).
    pub external_field: Option<String>,
    /// Offer CRAM-MD5/SHA1/SHA256: some backend holds clear-text passwords.
    pub cram: bool,
    /// The host name in CRAM challenges.
    pub hostname: String,
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

/// The configured authentication chain, as the front door needs it.
pub trait Accounts {
    /// Checks a user name and password.
    fn verify(&self, user: &str, password: &[u8]) -> Result<MailUser, AuthError>;
    /// Finds a user without a password (AUTHENTICATE EXTERNAL, where a
    /// verified client certificate has already proved who the client is).
    fn lookup(&self, user: &str) -> Result<Option<MailUser>, AuthError>;
    /// Whether some backend keeps clear-text passwords (needed for CRAM-*).
    fn has_clear_passwords(&self) -> bool;
    /// The clear-text password of a user, for CRAM-* (RFC 2195).
    fn clear_password(&self, user: &str) -> Result<Option<(MailUser, Vec<u8>)>, AuthError>;
}

struct State {
    tls: Option<tls::TlsInfo>,
    failures: u32,
}

impl FrontDoor {
    fn plaintext_ok(&self, peer: &Peer, tls: Option<&tls::TlsInfo>) -> bool {
        tls.is_some()
            || match self.plaintext_login {
                PlaintextLogin::Always => true,
                PlaintextLogin::LoopbackOnly => peer.loopback,
                PlaintextLogin::Never => false,
            }
    }

    /// The capability list before login, for this connection as it is now.
    pub fn capabilities(&self, peer: &Peer, tls: Option<&tls::TlsInfo>) -> String {
        let mut caps = CAPABILITIES.to_string();
        if tls.is_none() && self.tls.is_some() {
            caps.push_str(" STARTTLS");
        }
        if self.plaintext_ok(peer, tls) {
            caps.push_str(" AUTH=PLAIN AUTH=LOGIN");
        } else {
            caps.push_str(" LOGINDISABLED");
        }
        if tls.is_some_and(|t| t.client_identity.is_some()) {
            caps.push_str(" AUTH=EXTERNAL");
        }
        if self.cram {
            caps.push_str(" AUTH=CRAM-MD5 AUTH=CRAM-SHA1 AUTH=CRAM-SHA256");
        }
        caps
    }
}

fn reply(io: &mut Io, line: &str) -> bool {
    io.write_all(line.as_bytes())
        .and_then(|_| io.flush())
        .is_ok()
}

/// Courier's account options that close IMAP for an account whose
/// credentials are right: `disableimap`, and `disableinsecureimap` on a
/// connection without TLS.
fn account_refusal(user: &MailUser, tls: bool) -> Option<&'static str> {
    if user.option_enabled("disableimap") {
        Some("disabled")
    } else if !tls && user.option_enabled("disableinsecureimap") {
        Some("disabled without encryption (insecure)")
    } else {
        None
    }
}

/// The answer to a password sent where the policy wants TLS first.
fn privacy_required(io: &mut Io, tag: &str) {
    reply(
        io,
        &format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS before logging in.\r\n"),
    );
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
pub fn start_tls(
    io: &mut Io,
    door: &FrontDoor,
    config: Arc<ServerConfig>,
) -> Result<tls::TlsInfo, String> {
    io.reader.discard_buffered();
    io.bytes_in_earlier += io.reader.bytes_read();
    let input = dup(io.input_fd)?;
    let output = dup(1)?;
    let input_fd = std::os::fd::AsRawFd::as_raw_fd(&input);
    let input = crate::session::TimedInput::new(input, io.read_timeout.clone());
    let (reader, writer, info) = tls::accept(
        config,
        tls::FdPair { input, output },
        door.timeout,
        door.external_field.as_deref(),
    )?;
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
            reply(
                io,
                &format!("{tag} BAD Invalid base64 in the response.\r\n"),
            );
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
    let (Some(authz), Some(authc), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        reply(io, &format!("{tag} BAD Malformed PLAIN response.\r\n"));
        return Sasl::Ended;
    };
    if !authz.is_empty() && authz != authc {
        reply(
            io,
            &format!(
                "{tag} NO [AUTHORIZATIONFAILED] Logging in as another user is not allowed.\r\n"
            ),
        );
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

/// A PROXY protocol header arriving where a command was expected: v1 text,
/// or the v2 signature `\r\n\r\n\0\r\nQUIT\n`, which line framing splits
/// into two empty lines (answered BAD), then `\0`, then `QUIT`.
fn is_proxy_header(fragments: &[crate::protocol::framing::Fragment]) -> bool {
    use crate::protocol::framing::Fragment;
    match fragments.first() {
        Some(Fragment::Line(l)) => l.starts_with(b"PROXY ") || l.as_slice() == b"\0",
        _ => false,
    }
}

/// The challenge-response mechanisms of RFC 2195 and Courier's SHA variants.
#[derive(Debug, Clone, Copy)]
enum Cram {
    Md5,
    Sha1,
    Sha256,
}

impl Cram {
    fn named(mechanism: &str) -> Option<Cram> {
        match mechanism.to_ascii_uppercase().as_str() {
            "CRAM-MD5" => Some(Cram::Md5),
            "CRAM-SHA1" => Some(Cram::Sha1),
            "CRAM-SHA256" => Some(Cram::Sha256),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cram::Md5 => "CRAM-MD5",
            Cram::Sha1 => "CRAM-SHA1",
            Cram::Sha256 => "CRAM-SHA256",
        }
    }

    /// The keyed digest of the challenge, in lower-case hex.
    fn digest(self, key: &[u8], challenge: &[u8]) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        fn run<M: Mac + KeyInit>(key: &[u8], challenge: &[u8]) -> Vec<u8> {
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(challenge);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        let bytes = match self {
            Cram::Md5 => run::<Hmac<md5::Md5>>(key, challenge),
            Cram::Sha1 => run::<Hmac<sha1::Sha1>>(key, challenge),
            Cram::Sha256 => run::<Hmac<sha2::Sha256>>(key, challenge),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Constant-time comparison, so the time taken says nothing of the digest.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sixteen random bytes in hex, for a challenge nobody can predict.
fn random_hex() -> String {
    let mut buf = [0u8; 16];
    // SAFETY: getrandom(2) writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // A weaker source is still unique per process and moment.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{:x}{:x}", t, std::process::id());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

enum Cramped {
    Done(Vec<u8>, Result<MailUser, AuthError>),
    Ended,
    Disconnected,
}

/// CRAM-* (RFC 2195): the server sends `<random.time@host>`, the client
/// answers `user SP hex(HMAC(password, challenge))`.
fn sasl_cram(
    io: &mut Io,
    tag: &str,
    kind: Cram,
    hostname: &str,
    accounts: &dyn Accounts,
) -> Cramped {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let challenge = format!("<{}.{now}@{hostname}>", random_hex());
    let response = match sasl_response(io, tag, &base64::encode(challenge.as_bytes())) {
        Ok(r) => r,
        Err(Sasl::Disconnected) => return Cramped::Disconnected,
        Err(_) => return Cramped::Ended,
    };
    let Some(space) = response.iter().rposition(|&b| b == b' ') else {
        reply(
            io,
            &format!("{tag} BAD Malformed {} response.\r\n", kind.name()),
        );
        return Cramped::Ended;
    };
    let (user, digest) = (response[..space].to_vec(), &response[space + 1..]);
    let name = String::from_utf8_lossy(&user).into_owned();
    let result = match accounts.clear_password(&name) {
        Ok(Some((mail_user, password))) => {
            let expected = kind.digest(&password, challenge.as_bytes());
            if same_bytes(expected.as_bytes(), &digest.to_ascii_lowercase()) {
                Ok(mail_user)
            } else {
                Err(AuthError::Failed)
            }
        }
        Ok(None) => Err(AuthError::Failed),
        Err(e) => Err(e),
    };
    Cramped::Done(user, result)
}

enum External {
    /// The certificate's identity and what the accounts say of it; a
    /// failure goes through the common delay, count and log.
    Attempt(Vec<u8>, Result<MailUser, AuthError>),
    Ended,
    Disconnected,
}

/// EXTERNAL (RFC 4422 appendix A) with the identity from a verified TLS
/// client certificate. The optional authorization identity must be that
/// same user: nobody may log in as someone else.
fn sasl_external(
    io: &mut Io,
    tag: &str,
    initial: Option<Vec<u8>>,
    tls: Option<&tls::TlsInfo>,
    accounts: &dyn Accounts,
) -> External {
    let Some(identity) = tls.and_then(|t| t.client_identity.clone()) else {
        reply(
            io,
            &format!("{tag} NO [AUTHENTICATIONFAILED] No verified client certificate.\r\n"),
        );
        return External::Ended;
    };
    let authzid = match initial {
        Some(r) => r,
        None => match sasl_response(io, tag, "") {
            Ok(r) => r,
            Err(Sasl::Disconnected) => return External::Disconnected,
            Err(_) => return External::Ended,
        },
    };
    if !authzid.is_empty() && authzid != identity.as_bytes() {
        reply(
            io,
            &format!("{tag} NO [AUTHORIZATIONFAILED] The certificate does not name that user.\r\n"),
        );
        return External::Ended;
    }
    let result = match accounts.lookup(&identity) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(AuthError::Failed),
        Err(e) => Err(e),
    };
    External::Attempt(identity.into_bytes(), result)
}

/// Serves the not-authenticated state until a login succeeds (returns the
/// user) or the client leaves, times out or fails too often (`None`).
pub fn login_phase(
    io: &mut Io,
    door: &FrontDoor,
    peer: &Peer,
    accounts: &dyn Accounts,
    implicit_tls: Option<tls::TlsInfo>,
) -> Option<LoggedIn> {
    let mut state = State {
        tls: implicit_tls,
        failures: 0,
    };
    let deadline = Instant::now() + door.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !io.wait_input(left) {
            reply(io, "* BYE Login timeout.\r\n");
            return None;
        }
        let fragments = match io.reader.read_command(&mut *io.writer) {
            Ok(f) => f,
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                reply(io, "* BYE Login timeout.\r\n");
                return None;
            }
            Err(FrameError::Io(_)) => return None,
            Err(FrameError::LineTooLong { tag }) => {
                let tag = tag
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_else(|| "*".into());
                reply(
                    io,
                    &format!("{tag} BAD [TOOBIG] Command line too long.\r\n"),
                );
                continue;
            }
            Err(FrameError::LiteralTooBig { tag, .. }) => {
                let tag = tag
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_else(|| "*".into());
                reply(
                    io,
                    &format!("{tag} NO [TOOBIG] Literal too large before login.\r\n"),
                );
                continue;
            }
        };
        if is_proxy_header(&fragments) {
            // Only MDIMAP_PROXY_TRUSTED peers may say where a client comes from.
            log::warn!(
                "PROXY header from untrusted ip=[{}]; connection refused",
                escape(peer.ip.as_bytes())
            );
            reply(io, "* BYE PROXY header from an untrusted address.\r\n");
            return None;
        }
        let command = match parse_command(&fragments) {
            Ok(c) => c,
            Err(e) => {
                reply(
                    io,
                    &format!(
                        "{} BAD {}\r\n",
                        e.tag.unwrap_or_else(|| "*".into()),
                        e.message
                    ),
                );
                continue;
            }
        };
        let tag = command.tag;
        let (user, outcome, method): (Vec<u8>, Result<MailUser, AuthError>, &'static str) =
            match command.body {
                CommandBody::Capability => {
                    let caps = door.capabilities(peer, state.tls.as_ref());
                    reply(
                        io,
                        &format!("* CAPABILITY {caps}\r\n{tag} OK CAPABILITY completed.\r\n"),
                    );
                    continue;
                }
                CommandBody::Noop => {
                    reply(io, &format!("{tag} OK NOOP completed.\r\n"));
                    continue;
                }
                CommandBody::Logout => {
                    reply(
                        io,
                        &format!("* BYE mdimap logging out\r\n{tag} OK LOGOUT completed.\r\n"),
                    );
                    return None;
                }
                CommandBody::Id(_) => {
                    reply(
                        io,
                        &format!("* ID (\"name\" \"mdimap\")\r\n{tag} OK ID completed.\r\n"),
                    );
                    continue;
                }
                CommandBody::StartTls => {
                    let Some(config) = door.tls.clone().filter(|_| state.tls.is_none()) else {
                        let why = if state.tls.is_some() {
                            "TLS is already active"
                        } else {
                            "TLS is not configured"
                        };
                        reply(io, &format!("{tag} BAD {why}.\r\n"));
                        continue;
                    };
                    if !reply(io, &format!("{tag} OK Begin TLS negotiation now.\r\n")) {
                        return None;
                    }
                    match start_tls(io, door, config) {
                        Ok(info) => state.tls = Some(info),
                        Err(e) => {
                            log::info!("STARTTLS failed, ip=[{}]: {e}", escape(peer.ip.as_bytes()));
                            return None;
                        }
                    }
                    continue;
                }
                CommandBody::Login { user, password } => {
                    if !door.plaintext_ok(peer, state.tls.as_ref()) {
                        privacy_required(io, &tag);
                        continue;
                    }
                    let result = accounts.verify(&String::from_utf8_lossy(&user), &password);
                    (user, result, "LOGIN")
                }
                CommandBody::Authenticate { mechanism, initial }
                    if mechanism.eq_ignore_ascii_case("EXTERNAL") =>
                {
                    match sasl_external(io, &tag, initial, state.tls.as_ref(), accounts) {
                        External::Attempt(identity, result) => (identity, result, "EXTERNAL"),
                        External::Ended => continue,
                        External::Disconnected => return None,
                    }
                }
                CommandBody::Authenticate { mechanism, .. }
                    if Cram::named(&mechanism).is_some() =>
                {
                    let Some(kind) =
                        Cram::named(&mechanism).filter(|_| accounts.has_clear_passwords())
                    else {
                        reply(
                            io,
                            &format!(
                                "{tag} NO [CANNOT] {mechanism} needs clear-text passwords, which no configured backend holds.\r\n"
                            ),
                        );
                        continue;
                    };
                    match sasl_cram(io, &tag, kind, &door.hostname, accounts) {
                        Cramped::Done(user, result) => (user, result, kind.name()),
                        Cramped::Ended => continue,
                        Cramped::Disconnected => return None,
                    }
                }
                CommandBody::Authenticate { mechanism, initial } => {
                    let plain = mechanism.eq_ignore_ascii_case("PLAIN");
                    let login = mechanism.eq_ignore_ascii_case("LOGIN");
                    if !plain && !login {
                        reply(
                            io,
                            &format!("{tag} NO [CANNOT] Unsupported authentication mechanism.\r\n"),
                        );
                        continue;
                    }
                    if !door.plaintext_ok(peer, state.tls.as_ref()) {
                        privacy_required(io, &tag);
                        continue;
                    }
                    let exchange = if plain {
                        sasl_plain(io, &tag, initial)
                    } else {
                        sasl_login(io, &tag, initial)
                    };
                    match exchange {
                        Sasl::Credentials(u, p) => {
                            let result = accounts.verify(&String::from_utf8_lossy(&u), &p);
                            (u, result, if plain { "PLAIN" } else { "AUTH-LOGIN" })
                        }
                        Sasl::Ended => continue,
                        Sasl::Disconnected => return None,
                    }
                }
                _ => {
                    reply(io, &format!("{tag} BAD Log in first.\r\n"));
                    continue;
                }
            };
        let error = match outcome {
            Ok(u) => {
                if let Some(refusal) = account_refusal(&u, state.tls.is_some()) {
                    log::info!(
                        "LOGIN REFUSED, method={method}, user={}, ip=[{}], reason={refusal}",
                        escape(u.name.as_bytes()),
                        escape(peer.ip.as_bytes())
                    );
                    let code = if refusal.contains("insecure") {
                        "PRIVACYREQUIRED"
                    } else {
                        "CONTACTADMIN"
                    };
                    reply(
                        io,
                        &format!(
                            "{tag} NO [{code}] IMAP access is {refusal} for this account.\r\n"
                        ),
                    );
                    continue;
                }
                return Some(LoggedIn {
                    user: u,
                    tag,
                    method,
                    tls: state.tls,
                });
            }
            Err(e) => e,
        };
        state.failures += 1;
        let reason = match &error {
            AuthError::Failed => "wrong user or password".to_string(),
            other => other.to_string(),
        };
        if let AuthError::Unavailable(_) = &error {
            // The server's trouble, not the client's: not a LOGIN FAILED
            // line, so fail2ban does not ban users for an outage.
            log::error!(
                "LOGIN UNAVAILABLE, method={method}, user={}, ip=[{}], reason={}",
                escape(&user),
                escape(peer.ip.as_bytes()),
                escape(reason.as_bytes())
            );
        } else {
            // Courier's wording, so existing log tooling (fail2ban's courier
            // filters) keeps working: the line ends with the address.
            log::info!(
                "LOGIN FAILED, method={method}, user={}, ip=[{}]",
                escape(&user),
                escape(peer.ip.as_bytes())
            );
            if !matches!(error, AuthError::Failed) {
                log::error!(
                    "login failure for user={}: {}",
                    escape(&user),
                    escape(reason.as_bytes())
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cram_md5_known_answer() {
        // RFC 2195 §2: the example exchange.
        let digest = Cram::Md5.digest(
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>",
        );
        assert_eq!(digest, "b913a602c7eda7a495b4e6e7334d3890");
    }

    #[test]
    fn cram_sha_variants_are_hmacs() {
        // RFC 2202 test case 2 (HMAC-SHA1) and RFC 4231 test case 2 (HMAC-SHA256).
        assert_eq!(
            Cram::Sha1.digest(b"Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            Cram::Sha256.digest(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn recognises_proxy_headers() {
        use crate::protocol::framing::Fragment;
        assert!(is_proxy_header(&[Fragment::Line(
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2".to_vec()
        )]));
        assert!(is_proxy_header(&[Fragment::Line(b"\0".to_vec())]));
        assert!(!is_proxy_header(&[Fragment::Line(b"a LOGIN x y".to_vec())]));
    }

    #[test]
    fn constant_time_compare() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
    }
}
