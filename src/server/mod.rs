//! One connection, from the first byte to the last: the greeting, the
//! pre-authentication commands, login, the privilege drop, then the session.
//!
//! `mdimapd` talks on fd 0/1, so the same code runs under `mdimap-listen`,
//! systemd socket activation, tcpserver and xinetd. This module knows nothing
//! of IMAP command semantics after login; that is `session`'s job.

pub mod handover;
pub mod listen;
pub mod logging;
pub mod login;
pub mod privdrop;
pub mod privsep;
pub mod proxy;
pub mod relay;
pub mod sandbox;
pub mod tls;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::auth;
use crate::config::Config;
use crate::conn::{self, Deadline, Io, Wire};
use crate::maildir::sharedindex::SharedIndex;
use crate::maildir::{Accessor, Store};
use crate::protocol::framing::Limits;
use crate::protocol::response::{Code, Completion};
use crate::session::outbox::Outbox;
use crate::session::{End, Session, SessionSettings};

use login::{FrontDoor, PREAUTH_LIMITS, Peer};

use crate::logtext::escape;

/// What `mdimapd`'s command line asks for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub preauth: bool,
    pub maildir: Option<PathBuf>,
    pub userfile: Option<PathBuf>,
    pub log_stderr: bool,
    /// Implicit TLS: the handshake comes before the greeting (port 993).
    pub tls: bool,
    /// Seconds added to the clock by which IMAP_EMPTYTRASH ages messages. Only tests set it
    /// (debug builds of mdimapd take `--test-clock-offset`): a file's ctime cannot be set.
    pub test_clock_offset: i64,
}

pub const DEFAULT_CONFIG: &str = "/etc/mdimap/mdimapd.conf";

/// What mdimapd takes from the environment it runs with.
struct Inherited {
    /// tcpserver's and mdimap-listen's TCPREMOTEIP / TCPREMOTEPORT.
    remote: Option<(String, String)>,
    /// Set by mdimap-listen when it has read the PROXY header itself.
    proxied: bool,
    /// For `--preauth` without `--maildir`: `$HOME/Maildir`.
    home: Option<std::ffi::OsString>,
}

/// The variables a session keeps (documented in mdimapd(8), ENVIRONMENT):
/// the time zone, which INTERNALDATE is shown in; the tcpserver conventions
/// that checkpassword programs read; mdimap-listen's note that it has read
/// the PROXY header; and, for `--preauth` only, HOME. Everything else the
/// starter had (its secrets, LD_PRELOAD, root's HOME) is gone before the
/// first byte from the client is read.
pub const KEPT_ENVIRONMENT: [&str; 7] = [
    "TZ",
    "PROTO",
    "TCPREMOTEIP",
    "TCPREMOTEPORT",
    "TCPLOCALIP",
    "TCPLOCALPORT",
    "MDIMAP_PROXIED",
];

/// mdimapd's PATH: it runs no program found by a search, but a checkpassword
/// program or a shell it starts might, and the starter's own PATH (root's
/// login environment, a service manager's) is no business of a session.
/// mdimap-listen sets it too.
pub const SESSION_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment mdimapd should run with, from the one it was given.
fn wanted_environment(preauth: bool) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
        .filter(|(k, _)| KEPT_ENVIRONMENT.iter().any(|kept| k == kept) || (preauth && k == "HOME"))
        .collect();
    env.push(("PATH".into(), SESSION_PATH.into()));
    env.sort();
    env
}

/// Makes the process's environment exactly [`wanted_environment`]. Removing
/// variables with unsetenv(3) would leave their text in the process's
/// memory (and in /proc/<pid>/environ), so when anything is to go, mdimapd
/// executes itself again with the clean environment; the descriptors, the
/// process id and the arguments stay. Under mdimap-listen the environment
/// is clean already and nothing happens.
fn clean_environment(preauth: bool) {
    let wanted = wanted_environment(preauth);
    let mut current: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
    current.sort();
    if current == wanted {
        return;
    }
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstring = |bytes: &[u8]| CString::new(bytes).ok();
    let argv: Option<Vec<CString>> = std::env::args_os().map(|a| cstring(a.as_bytes())).collect();
    let envp: Option<Vec<CString>> = wanted
        .iter()
        .map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect();
    if let (Some(argv), Some(envp)) = (argv, envp) {
        // Only returns on failure (no /proc, say); then the variables are
        // at least removed from what the session and its children see.
        let _ = nix::unistd::execve(c"/proc/self/exe", &argv, &envp);
    }
    for (key, _) in current {
        if !wanted.iter().any(|(k, _)| *k == key) {
            // SAFETY: this runs first thing in main, before any thread
            // exists, so nothing reads the environment while it changes.
            unsafe { std::env::remove_var(key) };
        }
    }
    // SAFETY: as above.
    unsafe { std::env::set_var("PATH", SESSION_PATH) };
}

/// Sets the process name (`comm`) that top, ps -e and pgrep show.
pub(crate) fn name_process(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes
    // (longer names are cut); `name` is one.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

/// Reads what mdimapd needs from its (clean) environment.
fn take_environment() -> Inherited {
    Inherited {
        remote: std::env::var("TCPREMOTEIP")
            .ok()
            .map(|ip| (ip, std::env::var("TCPREMOTEPORT").unwrap_or_default())),
        proxied: std::env::var_os("MDIMAP_PROXIED").is_some(),
        home: std::env::var_os("HOME"),
    }
}

/// The client's address, as tcpserver/mdimap-listen report it or from the socket.
fn peer_address(inherited: &Inherited) -> (String, String) {
    if let Some(remote) = &inherited.remote {
        return remote.clone();
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
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let (config, warnings) = Config::load(&path).map_err(|e| e.to_string())?;
    for w in warnings {
        log::warn!("{w}");
    }
    Ok(config)
}

/// Whom a session serves, as access control lists see them: the login name and the
/// account options (`group=`, `disableshared`, `sharedgroup`).
struct Identity {
    accessor: Accessor,
    /// Courier's `disableshared` switches ACL files, and virtual shared folders, off for
    /// the account.
    acl_files: bool,
    /// Courier's `sharedgroup`: appended to the name of the shared folder index.
    shared_group: String,
}

impl Identity {
    fn of(user: &auth::MailUser) -> Identity {
        Identity {
            accessor: Accessor::new(&user.name, &user.options),
            acl_files: !user.option_enabled("disableshared"),
            shared_group: user.option("sharedgroup").unwrap_or("").to_string(),
        }
    }

    /// `--preauth`: the invoking user, by their name in the password database (Courier's
    /// shell invocation does the same), or their uid when they have none.
    fn invoking_user() -> Identity {
        let uid = nix::unistd::getuid();
        let login = match nix::unistd::User::from_uid(uid) {
            Ok(Some(user)) => user.name,
            _ => uid.to_string(),
        };
        Identity {
            accessor: Accessor::new(&login, &[]),
            acl_files: true,
            shared_group: String::new(),
        }
    }
}

/// The shared folder index an account sees: IMAP_SHAREDINDEXFILE with its `sharedgroup`
/// appended (Courier's `maildir_shared_index_file`), unless it is unset or the account has
/// `disableshared`.
fn shared_index(config: &Config, identity: &Identity) -> Option<SharedIndex> {
    if !identity.acl_files || config.shared_index.as_os_str().is_empty() {
        return None;
    }
    let mut file = config.shared_index.clone().into_os_string();
    file.push(&identity.shared_group);
    Some(SharedIndex::new(
        PathBuf::from(file),
        config.shared_munge_names,
    ))
}

fn session_settings(config: &Config, identity: Identity, clock_offset: i64) -> SessionSettings {
    let shared_index = shared_index(config, &identity);
    // Courier's sender is AUTHENTICATED, the login name.
    let outbox = config.outbox.as_deref().map(|dir| {
        Outbox::new(
            dir,
            config.sendmail.clone(),
            config.header_from.clone(),
            identity.accessor.login().to_string(),
            config.outbox_multiple_send,
        )
    });
    SessionSettings {
        autologout: Duration::from_secs(config.autologout.max(1)),
        io_timeout: Duration::from_secs(config.io_timeout.max(1)),
        idle_poll: Duration::from_secs(config.idle_timeout.clamp(1, 3600)),
        capabilities: login::capabilities_after_login(&login::Advertised::of(config)),
        max_append: usize::try_from(config.max_literal).unwrap_or(usize::MAX),
        keywords: config.keywords != 0,
        trash: format!("INBOX.{}", config.trash_folder),
        purges: config.purges(),
        magic_trash: config.move_expunge_to_trash,
        thread_sort: !config.disable_thread_sort,
        outbox,
        clock_offset,
        accessor: identity.accessor,
        acl_files: identity.acl_files,
        shared_index,
        special_use: config.special_use_folders(),
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
    // Before anything opens a file: no stray descriptor from the starter is
    // kept, and no file can land on fd 0, 1 or 2.
    conn::ensure_standard_fds();
    conn::close_inherited_fds();
    clean_environment(opts.preauth);
    // Executed again through /proc/self/exe, the process would be called
    // `exe` in top, ps -e and the kernel's messages.
    name_process(c"mdimapd");
    let inherited = take_environment();
    logging::init("mdimapd", opts.log_stderr);
    let started = Instant::now();
    // Until the configuration is read, a generous bound; then the whole
    // login must be over by the login timeout, counted from the start.
    let wire = Wire::stdio(Deadline::At(started + Duration::from_secs(60)));
    let mut io = Io::plain(wire, PREAUTH_LIMITS);
    let config = match load_config(&opts) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            io.send(b"* BYE [UNAVAILABLE] Server configuration error; see the log.\r\n");
            return 1;
        }
    };
    if opts.preauth {
        return run_preauth(&opts, &config, &mut io, inherited.home);
    }
    let deadline = started + Duration::from_secs(config.login_timeout.max(1));
    let (ip, port) = peer_address(&inherited);
    // A trusted proxy (HAProxy) sends the client's real address first. Our
    // own listener has already read it and says so with MDIMAP_PROXIED.
    let trusted = ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| config.proxy_trusted.iter().any(|n| n.contains(a)));
    if !config.use_locks {
        log::warn!(
            "IMAP_USELOCKS=0 ignored: mdimap always takes tmp/courier.lock around UID updates"
        );
    }
    let mut door = front_door(&config, opts.tls);
    door.cram = config
        .backends()
        .iter()
        .any(|b| matches!(b, auth::backend::Backend::AuthDaemon { .. }));
    if opts.tls && door.tls.is_none() {
        log::error!(
            "--tls given but no usable certificate ({}); see TLS_CERTFILE",
            config.tls_certfile.display()
        );
        return 1;
    }
    let login_user = match sandbox::LoginUser::named(&config.login_user) {
        Ok(u) => u,
        Err(e) => {
            log::error!("{e}");
            io.send(b"* BYE [UNAVAILABLE] Server configuration error; see the log.\r\n");
            return 1;
        }
    };
    // From here until a login is accepted, only the login process reads
    // the client (see `privsep`); this process checks credentials.
    drop(io);
    let peer = Peer {
        loopback: ip.parse().is_ok_and(is_loopback),
        ip,
        port,
    };
    let mut backends = config.backends();
    if let Some(path) = &opts.userfile {
        for b in &mut backends {
            if let auth::backend::Backend::UserFile(p) = b {
                *p = path.clone();
            }
        }
    }
    let accounts = ChainAccounts { backends };
    let setup = privsep::LoginSetup {
        door: &door,
        user: login_user,
        implicit_tls: opts.tls,
        peer,
        read_proxy_header: trusted && !inherited.proxied,
        deadline,
        stall: Duration::from_secs(config.io_timeout.max(1)),
    };
    let Some(admitted) = privsep::login(setup, &accounts) else {
        return 0;
    };
    // The session's connection is on fds 0/1: the client's socket, or the
    // login process relaying TLS.
    let wire = Wire::stdio(Deadline::At(deadline));
    let mut io = Io::plain(wire, PREAUTH_LIMITS);
    io.continue_from(&admitted.leftover, admitted.bytes_in, admitted.bytes_out);
    let user = &admitted.user;
    if let Err(e) = privdrop::drop_to(&user.name, user.uid, user.gid) {
        return refuse_login(&mut io, &door, &admitted, &e);
    }
    apply_umask(&config);
    if let Err(e) = apply_limits(&config) {
        return refuse_login(&mut io, &door, &admitted, &e);
    }
    let store = match open_store(&user.maildir) {
        // The user record's quota is what maildrop delivers with; see maildir/quota.rs.
        Ok(s) => s.with_assigned_quota(user.quota.as_deref()),
        Err(e) => return refuse_login(&mut io, &door, &admitted, &e),
    };
    // The TLS configuration, with the certificate's private key, is the
    // login process's business: the session lets it go before it serves.
    drop(door);
    let tls_note = match &admitted.tls {
        Some((version, cipher)) => format!("{version} {cipher}"),
        None => "none".to_string(),
    };
    let ip = &admitted.peer.ip;
    log::info!(
        "LOGIN, user={}, ip=[{}], port=[{}], protocol=IMAP, method={}, tls={}",
        escape(user.name.as_bytes()),
        escape(ip.as_bytes()),
        escape(admitted.peer.port.as_bytes()),
        escape(admitted.method.as_bytes()),
        escape(tls_note.as_bytes())
    );
    let ok = Completion::ok_code(
        Code::Capability(login::capabilities_after_login(&login::Advertised::of(
            &config,
        ))),
        "Logged in.",
    );
    if !io.send(&ok.encode(&admitted.tag)) {
        return 0;
    }
    crate::heap::release_free_memory();
    let end = serve(
        &mut io,
        store,
        &config,
        Identity::of(user),
        opts.test_clock_offset,
    );
    // Courier's words for how a session ended.
    let how = match end {
        End::Logout => "LOGOUT",
        End::Disconnected => "DISCONNECTED",
        End::Timeout => "TIMEOUT",
    };
    log::info!(
        "{how}, user={}, ip=[{}], rcvd={}, sent={}, time={}",
        escape(user.name.as_bytes()),
        escape(ip.as_bytes()),
        io.bytes_in(),
        io.bytes_out(),
        started.elapsed().as_secs()
    );
    0
}

/// Ends a login that the credentials allowed but that could not be served
/// after all (the checks of `can_serve` passed a moment ago, so this is a
/// rare race or a resource limit): the administrator learns why, and the
/// client gets what a wrong password gets. The process has dropped its
/// privileges already, so the connection ends here.
fn refuse_login(
    io: &mut Io,
    door: &login::FrontDoor,
    admitted: &privsep::Admitted,
    why: &dyn std::fmt::Display,
) -> i32 {
    let name = admitted.user.name.as_bytes();
    log::error!(
        "user={}: the password is right but the account cannot be served: {}",
        escape(name),
        escape(why.to_string().as_bytes())
    );
    login::log_failure(
        &admitted.method,
        name,
        &admitted.peer.ip,
        &auth::AuthError::Failed,
    );
    login::answer_failure(io, door, &admitted.tag, false, admitted.attempt_started);
    1
}

/// IMAP_UMASK: the mode of files the session creates.
fn apply_umask(config: &Config) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        config.umask as libc::mode_t,
    ));
}

/// How long a trusted proxy may take to send its PROXY header.
pub const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The configured authentication chain (MDIMAP_AUTH).
struct ChainAccounts {
    backends: Vec<auth::backend::Backend>,
}

/// The service name authdaemond and PAM modules see, as Courier's.
const SERVICE: &str = "imap";

impl login::Backends for ChainAccounts {
    fn verify(&self, user: &str, password: &[u8]) -> Result<auth::MailUser, auth::AuthError> {
        auth::backend::authenticate(&self.backends, SERVICE, user, password)
    }
    fn lookup(&self, user: &str) -> Result<Option<auth::MailUser>, auth::AuthError> {
        auth::backend::lookup(&self.backends, SERVICE, user)
    }
    fn clear_password(
        &self,
        user: &str,
    ) -> Result<Option<(auth::MailUser, Vec<u8>)>, auth::AuthError> {
        auth::backend::clear_password(&self.backends, SERVICE, user)
    }
}

impl privsep::Authority for ChainAccounts {
    fn decide(
        &self,
        method: &str,
        credentials: &auth::sasl::Credentials,
        tls: bool,
        client_identity: Option<&str>,
        ip: &str,
    ) -> (login::Verdict, Option<auth::MailUser>) {
        privsep::decide(
            self,
            &trial_session,
            method,
            credentials,
            tls,
            client_identity,
            ip,
        )
    }
}

/// Checks that a session for `user` could start, without starting it: in a
/// child process that drops to the user exactly as the session will, and
/// opens the maildir. The parent stays root and can go on answering as if
/// the password had been wrong.
fn trial_session(user: &auth::MailUser) -> Result<(), String> {
    use std::io::{Read, Write};
    if user.uid == 0 {
        return Err(privdrop::DropError::RootUser.to_string());
    }
    let (mut from_child, to_parent) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: mdimapd is single-threaded, so the child may run ordinary Rust
    // code; it leaves with _exit, so no destructor of the parent's state
    // (the client connection's buffered output) runs twice.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(format!("fork: {e}")),
        Ok(nix::unistd::ForkResult::Child) => {
            drop(from_child);
            let mut to_parent = to_parent;
            let result = privdrop::drop_to(&user.name, user.uid, user.gid)
                .map_err(|e| e.to_string())
                .and_then(|()| open_store(&user.maildir).map(drop));
            let status = match result {
                Ok(()) => 0,
                Err(why) => {
                    let _ = to_parent.write_all(why.as_bytes());
                    1
                }
            };
            // SAFETY: _exit(2) ends the child at once, as intended.
            unsafe { libc::_exit(status) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(to_parent);
            let mut why = String::new();
            let _ = from_child.by_ref().take(4096).read_to_string(&mut why);
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                Ok(_) if !why.is_empty() => Err(why),
                Ok(status) => Err(format!("the trial session ended with {status:?}")),
                Err(e) => Err(format!("waitpid: {e}")),
            }
        }
    }
}

/// A loopback address, also IPv4 loopback seen through an IPv6 socket
/// (`::ffff:127.0.0.1`).
pub(crate) fn is_loopback(a: std::net::IpAddr) -> bool {
    a.is_loopback()
        || match a {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
            std::net::IpAddr::V4(_) => false,
        }
}

/// The login policy from the configuration. The certificate is loaded here,
/// before the privilege drop, so the key file can stay readable by root only.
fn front_door(config: &Config, implicit_tls: bool) -> FrontDoor {
    let files = tls::TlsFiles {
        certfile: config.tls_certfile.clone(),
        keyfile: config.tls_keyfile.clone(),
        trustcerts: config.tls_trustcerts.clone(),
        verify: config.tls_verify_peer,
        external_field: config.tls_external.clone(),
    };
    let tls = if config.tls_certfile.exists() || implicit_tls {
        match tls::server_config(&files) {
            Ok(c) => Some(c),
            Err(e) => {
                log::error!("TLS disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    FrontDoor {
        tls,
        plaintext_login: config.plaintext_login,
        failure_delay: Duration::from_secs(config.login_failure_delay),
        max_failures: config.max_login_failures.max(1),
        timeout: Duration::from_secs(config.login_timeout.max(1)),
        external_field: config.tls_external.clone(),
        // Set by the caller from the authentication chain.
        cram: false,
        hostname: config.hostname(),
        advertised: login::Advertised::of(config),
    }
}

/// MDIMAP_LIMIT_MEMORY and MDIMAP_LIMIT_FILES, applied after the privilege
/// drop so the user cannot raise them again (hard and soft limits alike).
fn apply_limits(config: &Config) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    if config.limit_memory > 0 {
        setrlimit(
            Resource::RLIMIT_AS,
            config.limit_memory,
            config.limit_memory,
        )
        .map_err(|e| format!("MDIMAP_LIMIT_MEMORY: setrlimit: {e}"))?;
    }
    if config.limit_files > 0 {
        setrlimit(
            Resource::RLIMIT_NOFILE,
            config.limit_files,
            config.limit_files,
        )
        .map_err(|e| format!("MDIMAP_LIMIT_FILES: setrlimit: {e}"))?;
    }
    Ok(())
}

fn open_store(maildir: &Path) -> Result<Store, String> {
    // A relative path is relative to where we started, not to the maildir.
    let maildir =
        &std::path::absolute(maildir).map_err(|e| format!("maildir {}: {e}", maildir.display()))?;
    std::env::set_current_dir(maildir)
        .map_err(|e| format!("cannot enter maildir {}: {e}", maildir.display()))?;
    Store::open(maildir).map_err(|e| e.to_string())
}

/// `mdimapd --preauth`: the invoking user's own maildir, no login.
fn run_preauth(
    opts: &Options,
    config: &Config,
    io: &mut Io,
    home: Option<std::ffi::OsString>,
) -> i32 {
    let maildir = match &opts.maildir {
        Some(m) => m.clone(),
        None => match home {
            Some(h) => PathBuf::from(h).join("Maildir"),
            None => {
                log::error!("--preauth without --maildir needs HOME to find ~/Maildir");
                io.send(b"* BYE [UNAVAILABLE] No maildir.\r\n");
                return 1;
            }
        },
    };
    apply_umask(config);
    let store = match open_store(&maildir) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            io.send(b"* BYE [UNAVAILABLE] Your mailbox cannot be opened.\r\n");
            return 1;
        }
    };
    let greeting = format!(
        "* PREAUTH [CAPABILITY {}] mdimap ready, preauthenticated.\r\n",
        login::capabilities_after_login(&login::Advertised::of(config))
    );
    if !io.send(greeting.as_bytes()) {
        return 0;
    }
    serve(
        io,
        store,
        config,
        Identity::invoking_user(),
        opts.test_clock_offset,
    );
    0
}

/// Literals larger than this are spooled to the maildir's `tmp/` rather
/// than held in memory (an APPEND's message, in practice).
const SPOOL_THRESHOLD: usize = 1 << 20;

/// The authenticated session: the input limits of a logged-in client, a
/// spool for large literals, then the command loop until it ends.
fn serve(io: &mut Io, store: Store, config: &Config, identity: Identity, clock_offset: i64) -> End {
    io.reader.set_limits(session_limits(config));
    let root = store.root().to_path_buf();
    io.set_spool(
        SPOOL_THRESHOLD,
        Box::new(move || crate::maildir::spool_file(&root)),
    );
    Session::new(io, store, session_settings(config, identity, clock_offset)).run()
}
