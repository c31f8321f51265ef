//! One connection, from the first byte to the last: the greeting, the
//! pre-authentication commands, login, the privilege drop, then the session.
//!
//! `mdimapd` talks on fd 0/1, so the same code runs under `mdimap-listen`,
//! systemd socket activation, tcpserver and xinetd. This module knows nothing
//! of IMAP command semantics after login; that is `session`'s job.

pub mod listen;
pub mod logging;
pub mod privdrop;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::auth::{self, AuthError, MailUser};
use crate::config::Config;
use crate::maildir::Store;
use crate::protocol::base64;
use crate::protocol::command::CommandBody;
use crate::protocol::framing::{CommandReader, FrameError, Limits};
use crate::protocol::parser::parse_command;
use crate::session::{Io, Session, SessionSettings};

use logging::escape;

/// What `mdimapd`'s command line asks for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub preauth: bool,
    pub maildir: Option<PathBuf>,
    pub userfile: Option<PathBuf>,
    pub log_stderr: bool,
}

pub const DEFAULT_CONFIG: &str = "/etc/mdimap/mdimapd.conf";

/// Capabilities after login.
const CAPABILITIES: &str =
    "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS CHILDREN UNSELECT MOVE UTF8=ACCEPT";

/// Capabilities before login: the same plus the login mechanisms.
fn preauth_capabilities() -> String {
    format!("{CAPABILITIES} AUTH=PLAIN")
}

/// Lines and literals a client may send before it has logged in: small,
/// because anyone on the network can send them.
const PREAUTH_LIMITS: Limits = Limits { max_line: 8192, max_literal: 8192, max_command: 16384 };

/// Delay before answering a failed login, to slow down password guessing.
const LOGIN_FAILURE_DELAY: Duration = Duration::from_secs(2);

/// The client's address, as tcpserver/mdimap-listen report it or from the socket.
fn peer_address() -> (String, String) {
    if let Ok(ip) = std::env::var("TCPREMOTEIP") {
        return (ip, std::env::var("TCPREMOTEPORT").unwrap_or_default());
    }
    match nix::sys::socket::getpeername::<nix::sys::socket::SockaddrStorage>(0) {
        Ok(addr) => {
            if let Some(v4) = addr.as_sockaddr_in() {
                (v4.ip().to_string(), v4.port().to_string())
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                (v6.ip().to_string(), v6.port().to_string())
            } else {
                ("local".into(), String::new())
            }
        }
        Err(_) => ("local".into(), String::new()),
    }
}

fn load_config(opts: &Options) -> Result<Config, String> {
    let path = match &opts.config {
        Some(p) => Some(p.clone()),
        None if Path::new(DEFAULT_CONFIG).exists() => Some(PathBuf::from(DEFAULT_CONFIG)),
        None => None,
    };
    let Some(path) = path else { return Ok(Config::default()) };
    let (config, warnings) = Config::load(&path).map_err(|e| e.to_string())?;
    for w in warnings {
        log::warn!("{w}");
    }
    Ok(config)
}

fn session_settings(config: &Config) -> SessionSettings {
    SessionSettings {
        autologout: Duration::from_secs(config.autologout.max(1)),
        idle_poll: Duration::from_secs(config.idle_timeout.clamp(1, 3600)),
        capabilities: CAPABILITIES.to_string(),
        max_append: usize::try_from(config.max_literal).unwrap_or(usize::MAX),
        keywords: config.keywords != 0,
        trash: format!("INBOX.{}", config.trash_folder),
    }
}

fn session_limits(config: &Config) -> Limits {
    let max_literal = usize::try_from(config.max_literal).unwrap_or(usize::MAX);
    Limits {
        max_line: config.max_line,
        max_literal,
        max_command: max_literal.saturating_add(config.max_line.saturating_mul(4)),
    }
}

/// Serves the connection on fd 0/1. Returns the process exit status.
pub fn run(opts: Options) -> i32 {
    logging::init("mdimapd", opts.log_stderr);
    // SAFETY: fd 0 and 1 are the connection by contract (inetd-style); this
    // is the only owner of them in the process.
    let input = unsafe { File::from_raw_fd(0) };
    let output = unsafe { File::from_raw_fd(1) };
    let mut io = Io {
        reader: CommandReader::new(Box::new(input) as Box<dyn Read>, PREAUTH_LIMITS),
        writer: Box::new(BufWriter::with_capacity(64 * 1024, output)) as Box<dyn Write>,
        input_fd: 0,
        bytes_out: 0,
    };
    let config = match load_config(&opts) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            let _ = io.write_all(b"* BYE [UNAVAILABLE] Server configuration error; see the log.\r\n");
            let _ = io.flush();
            return 1;
        }
    };
    let (ip, port) = peer_address();
    let started = Instant::now();
    if opts.preauth {
        return run_preauth(&opts, &config, &mut io);
    }
    log::info!("Connection, ip=[{}], port=[{}]", escape(ip.as_bytes()), escape(port.as_bytes()));
    if !config.use_locks {
        log::warn!("IMAP_USELOCKS=0 ignored: mdimap always takes tmp/courier.lock around UID updates");
    }
    let greeting = format!("* OK [CAPABILITY {}] {} mdimap ready.\r\n", preauth_capabilities(), config.hostname());
    if io.write_all(greeting.as_bytes()).and_then(|_| io.flush()).is_err() {
        return 0;
    }
    let userfile = opts.userfile.clone().unwrap_or_else(|| config.userfile.clone());
    let user = match login_phase(&mut io, &userfile, &ip, Duration::from_secs(config.login_timeout.max(1))) {
        Some(u) => u,
        None => return 0,
    };
    if let Err(e) = privdrop::drop_to(&user.user.name, user.user.uid, user.user.gid) {
        log::error!("user={}: {e}", escape(user.user.name.as_bytes()));
        let _ = io.write_all(format!("{} NO [UNAVAILABLE] Login failed: server configuration error.\r\n", user.tag).as_bytes());
        let _ = io.flush();
        return 1;
    }
    apply_umask(&config);
    let store = match open_store(&user.user.maildir) {
        Ok(s) => s,
        Err(e) => {
            log::error!("user={}: {e}", escape(user.user.name.as_bytes()));
            let _ = io.write_all(format!("{} NO [UNAVAILABLE] Your mailbox cannot be opened; contact your administrator.\r\n", user.tag).as_bytes());
            let _ = io.flush();
            return 1;
        }
    };
    log::info!(
        "LOGIN, user={}, ip=[{}], port=[{}], protocol=IMAP, method={}",
        escape(user.user.name.as_bytes()),
        escape(ip.as_bytes()),
        escape(port.as_bytes()),
        user.method
    );
    let ok = format!("{} OK [CAPABILITY {CAPABILITIES}] Logged in.\r\n", user.tag);
    if io.write_all(ok.as_bytes()).and_then(|_| io.flush()).is_err() {
        return 0;
    }
    io.reader.set_limits(session_limits(&config));
    let mut session = Session::new(&mut io, store, session_settings(&config));
    session.run();
    drop(session);
    log::info!(
        "LOGOUT, user={}, ip=[{}], rcvd={}, sent={}, time={}",
        escape(user.user.name.as_bytes()),
        escape(ip.as_bytes()),
        io.reader.bytes_read(),
        io.bytes_out,
        started.elapsed().as_secs()
    );
    0
}

/// IMAP_UMASK: the mode of files the session creates.
fn apply_umask(config: &Config) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(config.umask as libc::mode_t));
}

fn open_store(maildir: &Path) -> Result<Store, String> {
    std::env::set_current_dir(maildir).map_err(|e| format!("cannot enter maildir {}: {e}", maildir.display()))?;
    Store::open(maildir).map_err(|e| e.to_string())
}

/// `mdimapd --preauth`: the invoking user's own maildir, no login.
fn run_preauth(opts: &Options, config: &Config, io: &mut Io) -> i32 {
    let maildir = match &opts.maildir {
        Some(m) => m.clone(),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join("Maildir"),
            None => {
                log::error!("--preauth without --maildir needs HOME to find ~/Maildir");
                let _ = io.write_all(b"* BYE [UNAVAILABLE] No maildir.\r\n");
                let _ = io.flush();
                return 1;
            }
        },
    };
    apply_umask(config);
    let store = match open_store(&maildir) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            let _ = io.write_all(b"* BYE [UNAVAILABLE] Your mailbox cannot be opened.\r\n");
            let _ = io.flush();
            return 1;
        }
    };
    let greeting = format!("* PREAUTH [CAPABILITY {CAPABILITIES}] mdimap ready, preauthenticated.\r\n");
    if io.write_all(greeting.as_bytes()).and_then(|_| io.flush()).is_err() {
        return 0;
    }
    io.reader.set_limits(session_limits(config));
    let mut session = Session::new(io, store, session_settings(config));
    session.run();
    0
}

/// A successful login: who, and the tag of the command to answer.
struct LoggedIn {
    user: MailUser,
    tag: String,
    method: &'static str,
}

/// The not-authenticated state: only CAPABILITY, NOOP, LOGOUT, LOGIN,
/// AUTHENTICATE and ID. Returns the user once one logs in, `None` when the
/// client leaves or times out.
fn login_phase(io: &mut Io, userfile: &Path, ip: &str, timeout: Duration) -> Option<LoggedIn> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !io.wait_input(left) {
            let _ = io.write_all(b"* BYE Login timeout.\r\n");
            let _ = io.flush();
            return None;
        }
        let fragments = match io.reader.read_command(&mut *io.writer) {
            Ok(f) => f,
            Err(FrameError::Io(_)) => return None,
            Err(FrameError::LineTooLong) => {
                let _ = io.write_all(b"* BAD [TOOBIG] Command line too long.\r\n");
                let _ = io.flush();
                continue;
            }
            Err(FrameError::LiteralTooBig { tag, .. }) => {
                let tag = tag.map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_else(|| "*".into());
                let _ = io.write_all(format!("{tag} NO [TOOBIG] Literal too large before login.\r\n").as_bytes());
                let _ = io.flush();
                continue;
            }
        };
        let reply = |io: &mut Io, line: String| {
            let _ = io.write_all(line.as_bytes());
            let _ = io.flush();
        };
        let command = match parse_command(&fragments) {
            Ok(c) => c,
            Err(e) => {
                reply(io, format!("{} BAD {}\r\n", e.tag.unwrap_or_else(|| "*".into()), e.message));
                continue;
            }
        };
        let tag = command.tag;
        let (user, password, method) = match command.body {
            CommandBody::Capability => {
                reply(io, format!("* CAPABILITY {}\r\n{tag} OK CAPABILITY completed.\r\n", preauth_capabilities()));
                continue;
            }
            CommandBody::Noop => {
                reply(io, format!("{tag} OK NOOP completed.\r\n"));
                continue;
            }
            CommandBody::Logout => {
                reply(io, format!("* BYE mdimap logging out\r\n{tag} OK LOGOUT completed.\r\n"));
                return None;
            }
            CommandBody::Id(_) => {
                reply(io, format!("* ID (\"name\" \"mdimap\")\r\n{tag} OK ID completed.\r\n"));
                continue;
            }
            CommandBody::StartTls => {
                reply(io, format!("{tag} NO STARTTLS is not configured.\r\n"));
                continue;
            }
            CommandBody::Login { user, password } => (user, password, "LOGIN"),
            CommandBody::Authenticate { mechanism, initial } => {
                if !mechanism.eq_ignore_ascii_case("PLAIN") {
                    reply(io, format!("{tag} NO Unsupported authentication mechanism.\r\n"));
                    continue;
                }
                let response = match initial {
                    Some(r) => r,
                    None => {
                        reply(io, "+ \r\n".to_string());
                        let line = match io.reader.read_line() {
                            Ok(l) => l,
                            Err(FrameError::Io(_)) => return None,
                            Err(_) => {
                                reply(io, format!("{tag} BAD Response too long.\r\n"));
                                continue;
                            }
                        };
                        if line == b"*" {
                            reply(io, format!("{tag} BAD AUTHENTICATE cancelled.\r\n"));
                            continue;
                        }
                        match base64::decode(&line) {
                            Some(r) => r,
                            None => {
                                reply(io, format!("{tag} BAD Invalid base64.\r\n"));
                                continue;
                            }
                        }
                    }
                };
                // PLAIN (RFC 4616): authzid NUL authcid NUL password.
                let mut parts = response.split(|&b| b == 0);
                let (Some(authz), Some(authc), Some(pass), None) = (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    reply(io, format!("{tag} BAD Malformed PLAIN response.\r\n"));
                    continue;
                };
                if !authz.is_empty() && authz != authc {
                    reply(io, format!("{tag} NO [AUTHORIZATIONFAILED] Proxy authorization is not allowed.\r\n"));
                    continue;
                }
                (authc.to_vec(), pass.to_vec(), "PLAIN")
            }
            _ => {
                reply(io, format!("{tag} BAD Log in first.\r\n"));
                continue;
            }
        };
        let name = String::from_utf8_lossy(&user).into_owned();
        match auth::authenticate(userfile, &name, &password) {
            Ok(u) => return Some(LoggedIn { user: u, tag, method }),
            Err(e) => {
                match &e {
                    AuthError::Failed => log::info!(
                        "LOGIN FAILED, user={}, ip=[{}], reason=wrong user or password",
                        escape(&user),
                        escape(ip.as_bytes())
                    ),
                    other => log::error!(
                        "LOGIN FAILED, user={}, ip=[{}], reason={other}",
                        escape(&user),
                        escape(ip.as_bytes())
                    ),
                }
                std::thread::sleep(LOGIN_FAILURE_DELAY);
                let code = match e {
                    AuthError::Unavailable(_) => "UNAVAILABLE",
                    _ => "AUTHENTICATIONFAILED",
                };
                reply(io, format!("{tag} NO [{code}] Authentication failed.\r\n"));
            }
        }
    }
}
