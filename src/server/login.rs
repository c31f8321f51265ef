//! The not-authenticated state (RFC 3501 §6.1-6.2): CAPABILITY, NOOP,
//! LOGOUT, ID, STARTTLS, LOGIN and AUTHENTICATE, and nothing else.
//!
//! Everything here is reachable by anyone on the network, so input is kept
//! small (see `PREAUTH_LIMITS`), failures are slowed down and counted, and
//! plaintext passwords are refused on unencrypted connections unless the
//! configuration allows them (by default: from loopback only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ServerConfig;

use super::tls;
use crate::auth::sasl::{Credentials, Exchange, Mechanism, Refusal, Step, cram_matches};
use crate::auth::secret::Secret;
use crate::auth::{AuthError, MailUser};
use crate::conn::{Deadline, Incoming, Io};
use crate::logtext::escape;
use crate::protocol::base64;
use crate::protocol::command::CommandBody;
use crate::protocol::framing::{FrameError, Limits};
use crate::protocol::response::{Code, Completion, continuation};

/// Lines and literals a client may send before it has logged in: small,
/// because anyone on the network can send them, but large enough for what
/// RFC 2971 allows an ID command (30 fields, names of 30 octets, values of
/// 1,024: about 32 KiB) — and the whole login has one deadline anyway.
pub const PREAUTH_LIMITS: Limits = Limits {
    max_line: 40 * 1024,
    max_literal: 8192,
    max_command: 48 * 1024,
};

/// Capabilities common to every state (the login mechanisms are added
/// before login, depending on the connection; ACL by `capabilities`).
/// SORT and the two THREAD algorithms are in Courier's default
/// IMAP_CAPABILITY too; SORT=DISPLAY, ESEARCH, ESORT and SEARCHRES are
/// Dovecot's, which clients that use them expect alongside.
pub const CAPABILITIES: &str = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MULTIAPPEND CHILDREN UNSELECT MOVE UTF8=ACCEPT QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESEARCH ESORT SEARCHRES CONTEXT=SEARCH CONTEXT=SORT STATUS=SIZE WITHIN SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS BINARY CATENATE OBJECTID SAVEDATE PREVIEW CONDSTORE QRESYNC IMAP4rev2 NOTIFY";

/// What IMAP_DISABLETHREADSORT takes away.
pub const THREAD_SORT_CAPABILITIES: [&str; 6] = [
    "SORT",
    "SORT=DISPLAY",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "ESORT",
    "CONTEXT=SORT",
];

/// RFC 4314's capabilities, advertised as Courier does when IMAP_ACL is on.
pub const ACL_CAPABILITIES: &str = "ACL ACL2=UNION";

/// What the configuration adds to the capabilities of every state, as Courier's
/// `capability.C` adds it: `ACL ACL2=UNION` (IMAP_ACL), `XCOURIEROUTBOX=INBOX.Outbox`
/// (OUTBOX=.Outbox) and `XMAGICTRASH` (IMAP_MOVE_EXPUNGE_TO_TRASH), in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advertised {
    pub acl: bool,
    /// OUTBOX, the folder directory (`.Outbox`).
    pub outbox: Option<String>,
    pub magic_trash: bool,
    /// IMAP_DISABLETHREADSORT: SORT, THREAD and ESORT left out.
    pub no_thread_sort: bool,
    /// The largest message APPEND takes (MDIMAP_MAX_LITERAL), for APPENDLIMIT.
    pub append_limit: u64,
}

impl Advertised {
    pub fn of(config: &crate::config::Config) -> Advertised {
        Advertised {
            acl: config.acl,
            outbox: config.outbox.clone(),
            magic_trash: config.move_expunge_to_trash,
            no_thread_sort: config.disable_thread_sort,
            append_limit: config.max_literal,
        }
    }
}

/// The capabilities of every state, with what the configuration adds.
pub fn capabilities(advertised: &Advertised) -> String {
    let mut caps = CAPABILITIES.to_string();
    if advertised.no_thread_sort {
        // Courier keeps advertising them and answers NO; a client must not be promised
        // commands it cannot use, so they go from the list as well.
        caps = caps
            .split(' ')
            .filter(|c| !THREAD_SORT_CAPABILITIES.contains(c))
            .collect::<Vec<_>>()
            .join(" ");
    }
    if advertised.acl {
        caps.push(' ');
        caps.push_str(ACL_CAPABILITIES);
    }
    if let Some(outbox) = &advertised.outbox {
        // Courier writes "INBOX" and the directory name as it is: INBOX.Outbox.
        caps.push_str(" XCOURIEROUTBOX=INBOX");
        caps.push_str(outbox);
    }
    if advertised.magic_trash {
        caps.push_str(" XMAGICTRASH");
    }
    // RFC 7889: one limit for every mailbox, so it is given here rather
    // than per mailbox in STATUS.
    if advertised.append_limit > 0 {
        caps.push_str(&format!(" APPENDLIMIT={}", advertised.append_limit));
    }
    caps
}

/// What only a logged-in client is offered. COMPRESS=DEFLATE, as Dovecot
/// does: before login there is too little traffic to gain anything, and a
/// decompressor fed by an unauthenticated client is attack surface.
pub const AUTHENTICATED_CAPABILITIES: &str = "COMPRESS=DEFLATE";

/// The capabilities after login (the OK of LOGIN and CAPABILITY in a session).
pub fn capabilities_after_login(advertised: &Advertised) -> String {
    let mut caps = capabilities(advertised);
    caps.push(' ');
    caps.push_str(AUTHENTICATED_CAPABILITIES);
    caps
}

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
    /// What the configuration advertises (Courier advertises it before login too).
    pub advertised: Advertised,
}

/// Who is on the other end.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: String,
    pub port: String,
    pub loopback: bool,
}

/// A successful login: the root part has accepted the credentials and
/// knows the user; the session starts with the tagged OK to `tag`.
pub struct LoggedIn {
    pub tag: String,
    pub tls: Option<tls::TlsInfo>,
    /// A handle on the TLS session, which the login process goes on to relay.
    pub stream: Option<tls::TlsReader>,
}

/// Who decides a login. The login process asks the root part of mdimapd
/// (`privsep`), which holds the authentication chain; nothing that can tell
/// a right password from a wrong one is in the process that reads the client.
pub trait Accounts {
    /// Whether some backend keeps clear-text passwords (needed for CRAM-*).
    fn has_clear_passwords(&self) -> bool;
    /// Checks `credentials`, that a session can be started for the account,
    /// and that the account may use IMAP over this connection. The failure
    /// has been logged; the caller answers it.
    fn authenticate(
        &self,
        method: &str,
        credentials: Credentials,
        tls: Option<&tls::TlsInfo>,
    ) -> Verdict;
}

pub use super::handover::Verdict;

struct State {
    tls: Option<tls::TlsInfo>,
    stream: Option<tls::TlsReader>,
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
        let mut caps = capabilities(&self.advertised);
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

fn reply(io: &mut Io, line: &[u8]) -> bool {
    io.send(line)
}

/// Courier's account options that close IMAP for an account whose
/// credentials are right: `disableimap`, and `disableinsecureimap` on a
/// connection without TLS.
pub fn account_refusal(user: &MailUser, tls: bool) -> Option<&'static str> {
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
        &Completion::no_code(Code::PrivacyRequired, "Use STARTTLS before logging in.").encode(tag),
    );
}

/// Performs the TLS handshake on the connection and swaps the session's
/// reader and writer for TLS ones. Whatever plaintext the reader had
/// buffered is discarded (RFC 3207-style command injection). The handshake
/// runs under the wire's deadlines: before login, the whole-login deadline.
/// Returns what was negotiated and a handle on the TLS session.
pub fn start_tls(
    io: &mut Io,
    door: &FrontDoor,
    config: Arc<ServerConfig>,
) -> Result<(tls::TlsInfo, tls::TlsReader), String> {
    io.reader.discard_buffered();
    let (reader, writer, info) =
        tls::accept(config, io.wire().clone(), door.external_field.as_deref())?;
    let probe = reader.probe();
    let handle = reader.probe();
    io.replace_streams(
        Box::new(reader),
        Box::new(writer),
        Some(Box::new(move || probe.has_plaintext())),
    );
    Ok((info, handle))
}

/// How an AUTHENTICATE exchange ended.
enum Exchanged {
    Credentials(Credentials),
    /// Answered already (cancelled, malformed, refused).
    Answered,
    Disconnected,
}

/// Runs a SASL exchange over the connection: challenges out as `+ base64`,
/// responses in as base64 lines, `*` cancels (RFC 3501 §6.2.2).
fn run_exchange(
    io: &mut Io,
    tag: &str,
    mechanism: Mechanism,
    initial: Option<Vec<u8>>,
    hostname: &str,
) -> Exchanged {
    let (mut exchange, mut step) = Exchange::start(mechanism, initial, hostname);
    loop {
        match step {
            Step::Done(credentials) => return Exchanged::Credentials(credentials),
            Step::Refused(Refusal::Malformed) => {
                let text = format!("Malformed {} response.", mechanism.log_name());
                reply(io, &Completion::bad(text).encode(tag));
                return Exchanged::Answered;
            }
            Step::Refused(Refusal::OtherIdentity) => {
                reply(
                    io,
                    &Completion::no_code(
                        Code::AuthorizationFailed,
                        "Logging in as another user is not allowed.",
                    )
                    .encode(tag),
                );
                return Exchanged::Answered;
            }
            Step::Challenge(challenge) => {
                if !reply(io, &continuation(&base64::encode(&challenge))) {
                    return Exchanged::Disconnected;
                }
                let line = match io.read_line() {
                    Ok(l) => Secret::new(l),
                    Err(FrameError::Io(_)) => return Exchanged::Disconnected,
                    Err(_) => {
                        reply(
                            io,
                            &Completion::bad_code(Code::TooBig, "Response too long.").encode(tag),
                        );
                        return Exchanged::Answered;
                    }
                };
                if &*line == b"*" {
                    reply(io, &Completion::bad("AUTHENTICATE cancelled.").encode(tag));
                    return Exchanged::Answered;
                }
                let Some(response) = base64::decode(&line) else {
                    reply(
                        io,
                        &Completion::bad("Invalid base64 in the response.").encode(tag),
                    );
                    return Exchanged::Answered;
                };
                step = exchange.respond(response);
            }
        }
    }
}

/// The lookups of the authentication chain that [`check`] needs.
pub trait Backends {
    /// Checks a user name and password.
    fn verify(&self, user: &str, password: &[u8]) -> Result<MailUser, AuthError>;
    /// Finds a user without a password (AUTHENTICATE EXTERNAL, where a
    /// verified client certificate has already proved who the client is).
    fn lookup(&self, user: &str) -> Result<Option<MailUser>, AuthError>;
    /// The clear-text password of a user, for CRAM-* (RFC 2195).
    fn clear_password(&self, user: &str) -> Result<Option<(MailUser, Vec<u8>)>, AuthError>;
}

/// Checks what an exchange proved against the backends. `client_identity`
/// is the user a verified client certificate names (EXTERNAL).
pub fn check(
    credentials: &Credentials,
    backends: &dyn Backends,
    client_identity: Option<&str>,
) -> Result<MailUser, AuthError> {
    match credentials {
        Credentials::Password { user, password } => {
            backends.verify(&String::from_utf8_lossy(user), password)
        }
        Credentials::Cram {
            kind,
            user,
            challenge,
            digest,
        } => match backends.clear_password(&String::from_utf8_lossy(user))? {
            Some((mail_user, password)) => {
                let password = Secret::new(password);
                if cram_matches(*kind, &password, challenge, digest) {
                    Ok(mail_user)
                } else {
                    Err(AuthError::Failed)
                }
            }
            None => Err(AuthError::Failed),
        },
        Credentials::External { .. } => {
            let identity = client_identity.ok_or(AuthError::Failed)?;
            backends.lookup(identity)?.ok_or(AuthError::Failed)
        }
    }
}

/// Serves the not-authenticated state until a login succeeds (returns the
/// user) or the client leaves, times out or fails too often (`None`). The
/// caller has set the whole-login deadline on the wire.
pub fn login_phase(
    io: &mut Io,
    door: &FrontDoor,
    peer: &Peer,
    accounts: &dyn Accounts,
    implicit_tls: Option<(tls::TlsInfo, tls::TlsReader)>,
) -> Option<LoggedIn> {
    let (tls, stream) = implicit_tls.unzip();
    let mut state = State {
        tls,
        stream,
        failures: 0,
    };
    let deadline = Instant::now() + door.timeout;
    loop {
        if io.is_broken() {
            // The client stopped reading (or left); nothing can be said.
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !io.wait_input(left) {
            say_login_timeout(io);
            return None;
        }
        let command = match io.next_command(true) {
            Incoming::Command(c) => c,
            Incoming::Rejected => continue,
            Incoming::ProxyHeader => {
                // Only MDIMAP_PROXY_TRUSTED peers may say where a client comes from.
                log::warn!(
                    "PROXY header from untrusted ip=[{}]; connection refused",
                    escape(peer.ip.as_bytes())
                );
                reply(io, b"* BYE PROXY header from an untrusted address.\r\n");
                return None;
            }
            Incoming::Closed(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                say_login_timeout(io);
                return None;
            }
            Incoming::Closed(_) => return None,
        };
        let attempt_started = Instant::now();
        let tag = command.tag;
        let (credentials, method) = match command.body {
            CommandBody::Capability => {
                let caps = door.capabilities(peer, state.tls.as_ref());
                let mut out = format!("* CAPABILITY {caps}\r\n").into_bytes();
                out.extend(Completion::ok("CAPABILITY completed.").encode(&tag));
                reply(io, &out);
                continue;
            }
            CommandBody::Noop => {
                reply(io, &Completion::ok("NOOP completed.").encode(&tag));
                continue;
            }
            CommandBody::Logout => {
                let mut out = b"* BYE mdimap logging out\r\n".to_vec();
                out.extend(Completion::ok("LOGOUT completed.").encode(&tag));
                reply(io, &out);
                return None;
            }
            CommandBody::Id(_) => {
                let mut out = b"* ID (\"name\" \"mdimap\")\r\n".to_vec();
                out.extend(Completion::ok("ID completed.").encode(&tag));
                reply(io, &out);
                continue;
            }
            CommandBody::StartTls => {
                let Some(config) = door.tls.clone().filter(|_| state.tls.is_none()) else {
                    let why = if state.tls.is_some() {
                        "TLS is already active."
                    } else {
                        "TLS is not configured."
                    };
                    reply(io, &Completion::bad(why).encode(&tag));
                    continue;
                };
                if !reply(
                    io,
                    &Completion::ok("Begin TLS negotiation now.").encode(&tag),
                ) {
                    return None;
                }
                match start_tls(io, door, config) {
                    Ok((info, handle)) => {
                        state.tls = Some(info);
                        state.stream = Some(handle);
                    }
                    Err(e) => {
                        log::info!("STARTTLS failed, ip=[{}]: {e}", escape(peer.ip.as_bytes()));
                        return None;
                    }
                }
                continue;
            }
            CommandBody::Login { user, password } => {
                let password = Secret::new(password);
                if !door.plaintext_ok(peer, state.tls.as_ref()) {
                    privacy_required(io, &tag);
                    continue;
                }
                (Credentials::Password { user, password }, "LOGIN")
            }
            CommandBody::Authenticate { mechanism, initial } => {
                let initial = initial.map(Secret::new);
                let Some(mech) = Mechanism::named(&mechanism) else {
                    reply(
                        io,
                        &Completion::no_code(Code::Cannot, "Unsupported authentication mechanism.")
                            .encode(&tag),
                    );
                    continue;
                };
                if matches!(mech, Mechanism::Cram(_)) && !accounts.has_clear_passwords() {
                    let text = format!(
                        "{} needs clear-text passwords, which no configured backend holds.",
                        mech.log_name()
                    );
                    reply(io, &Completion::no_code(Code::Cannot, text).encode(&tag));
                    continue;
                }
                if mech.sends_password() && !door.plaintext_ok(peer, state.tls.as_ref()) {
                    privacy_required(io, &tag);
                    continue;
                }
                let identity = state.tls.as_ref().and_then(|t| t.client_identity.clone());
                if mech == Mechanism::External && identity.is_none() {
                    reply(
                        io,
                        &Completion::no_code(
                            Code::AuthenticationFailed,
                            "No verified client certificate.",
                        )
                        .encode(&tag),
                    );
                    continue;
                }
                let initial = initial.map(|i| i.to_vec());
                let credentials = match run_exchange(io, &tag, mech, initial, &door.hostname) {
                    Exchanged::Credentials(c) => c,
                    Exchanged::Answered => continue,
                    Exchanged::Disconnected => return None,
                };
                // EXTERNAL: the optional authorization identity must be the
                // user the certificate names; nobody may log in as another.
                if let Credentials::External { authzid } = &credentials
                    && !authzid.is_empty()
                    && Some(authzid.as_slice()) != identity.as_deref().map(str::as_bytes)
                {
                    reply(
                        io,
                        &Completion::no_code(
                            Code::AuthorizationFailed,
                            "The certificate does not name that user.",
                        )
                        .encode(&tag),
                    );
                    continue;
                }
                (credentials, mech.log_name())
            }
            _ => {
                reply(io, &Completion::bad("Log in first.").encode(&tag));
                continue;
            }
        };
        let unavailable = match accounts.authenticate(method, credentials, state.tls.as_ref()) {
            Verdict::Accepted => {
                return Some(LoggedIn {
                    tag,
                    tls: state.tls,
                    stream: state.stream,
                });
            }
            Verdict::Refused { privacy, text } => {
                let code = if privacy {
                    Code::PrivacyRequired
                } else {
                    Code::ContactAdmin
                };
                reply(io, &Completion::no_code(code, text).encode(&tag));
                continue;
            }
            Verdict::Failed { unavailable } => unavailable,
        };
        state.failures += 1;
        if !answer_failure(io, door, &tag, unavailable, attempt_started) {
            return None;
        }
        if state.failures >= door.max_failures {
            reply(io, b"* BYE Too many authentication failures.\r\n");
            return None;
        }
    }
}

/// The last words to a client that ran out of login time. The whole-login
/// deadline has passed for writes too, so the BYE gets a second of its own:
/// a client that does not read is gone a second after the deadline.
fn say_login_timeout(io: &mut Io) {
    io.wire()
        .set_write_deadline(Deadline::Stall(Duration::from_secs(1)));
    reply(io, b"* BYE Login timeout.\r\n");
}

/// Logs a failed login: Courier's `LOGIN FAILED` line for fail2ban, and
/// what the administrator should know besides.
pub fn log_failure(method: &str, user: &[u8], ip: &str, error: &AuthError) {
    if let AuthError::Unavailable(why) = error {
        // The server's trouble, not the client's: not a LOGIN FAILED
        // line, so fail2ban does not ban users for an outage.
        log::error!(
            "LOGIN UNAVAILABLE, method={}, user={}, ip=[{}], reason={}",
            escape(method.as_bytes()),
            escape(user),
            escape(ip.as_bytes()),
            escape(why.as_bytes())
        );
    } else {
        // Courier's wording, so existing log tooling (fail2ban's courier
        // filters) keeps working: the line ends with the address.
        log::info!(
            "LOGIN FAILED, method={}, user={}, ip=[{}]",
            escape(method.as_bytes()),
            escape(user),
            escape(ip.as_bytes())
        );
        if !matches!(error, AuthError::Failed) {
            log::error!(
                "login failure for user={}: {}",
                escape(user),
                escape(error.to_string().as_bytes())
            );
        }
    }
}

/// Waits out the failure delay counted from when the attempt arrived (so a
/// costly password hash or an unservable account takes no longer than a
/// cheap wrong guess), and answers NO. False when the client is gone.
pub fn answer_failure(
    io: &mut Io,
    door: &FrontDoor,
    tag: &str,
    unavailable: bool,
    attempt_started: Instant,
) -> bool {
    std::thread::sleep(
        (attempt_started + door.failure_delay).saturating_duration_since(Instant::now()),
    );
    let code = if unavailable {
        Code::Unavailable
    } else {
        Code::AuthenticationFailed
    };
    reply(
        io,
        &Completion::no_code(code, "Authentication failed.").encode(tag),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_the_connection() {
        let door = FrontDoor {
            tls: None,
            plaintext_login: PlaintextLogin::LoopbackOnly,
            failure_delay: Duration::ZERO,
            max_failures: 3,
            timeout: Duration::from_secs(1),
            external_field: None,
            cram: true,
            hostname: "h".into(),
            advertised: Advertised {
                acl: true,
                ..Advertised::default()
            },
        };
        let remote = Peer {
            ip: "192.0.2.1".into(),
            port: "1".into(),
            loopback: false,
        };
        let caps = door.capabilities(&remote, None);
        assert!(
            caps.contains("LOGINDISABLED") && !caps.contains("AUTH=PLAIN"),
            "{caps}"
        );
        assert!(caps.contains("AUTH=CRAM-MD5"), "{caps}");
        let local = Peer {
            loopback: true,
            ..remote
        };
        let caps = door.capabilities(&local, None);
        assert!(
            caps.contains("AUTH=PLAIN") && !caps.contains("LOGINDISABLED"),
            "{caps}"
        );
        assert!(caps.contains(" ACL ACL2=UNION"), "{caps}");
        assert!(!caps.contains("XCOURIEROUTBOX") && !caps.contains("XMAGICTRASH"));
        let door = FrontDoor {
            advertised: Advertised::default(),
            ..door
        };
        assert!(!door.capabilities(&local, None).contains("ACL"));
        let door = FrontDoor {
            advertised: Advertised {
                acl: false,
                outbox: Some(".Outbox".into()),
                magic_trash: true,
                no_thread_sort: false,
                append_limit: 1000,
            },
            ..door
        };
        let caps = door.capabilities(&local, None);
        assert!(
            caps.contains(" XCOURIEROUTBOX=INBOX.Outbox XMAGICTRASH APPENDLIMIT=1000"),
            "{caps}"
        );
        assert!(!caps.contains("COMPRESS"), "not before login: {caps}");
        assert!(capabilities_after_login(&door.advertised).contains(" COMPRESS=DEFLATE"));
    }
}
