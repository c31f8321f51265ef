//! The server configuration file, `/etc/mdimap/mdimapd.conf`: parsing, validation with file
//! and line numbers, defaults, and the list of effective values for `mdimap check-config`.
//!
//! # Syntax
//!
//! The file follows Courier's `/etc/courier/imapd` so a Courier file can be used directly:
//!
//! - `KEY=VALUE` lines; `KEY` is letters, digits and `_`, not starting with a digit.
//!   Blanks around the `=` are tolerated.
//! - Blank lines and lines starting with `#` (including Courier's `##NAME: ...` markers)
//!   are ignored.
//! - `VALUE` may be written in double quotes (`"..."`, where `\"`, `\\`, `\$` and `` \` ``
//!   stand for the character) or single quotes (`'...'`, taken literally). Unquoted values
//!   end at the end of the line or at a `#` preceded by a blank; trailing blanks are
//!   dropped.
//! - In unquoted and double-quoted values `$NAME` and `${NAME}` are replaced by the value of
//!   a key set earlier in the same file (an unknown name becomes empty, with a warning), as
//!   the shell does for Courier's `IMAP_CAPABILITY_TLS="$IMAP_CAPABILITY AUTH=PLAIN"`.
//! - A key set twice takes its last value.
//!
//! Unknown keys produce a warning and are ignored; Courier keys that mdimap does not use
//! are accepted silently (see `IGNORED_KEYS`). A value of the wrong form is an error naming
//! the file, the line and the expected form.
//!
//! # Authentication keys
//!
//! - `MDIMAP_AUTH`: the authentication backends to try, in order, separated by commas or
//!   blanks: `userfile` (the file named by `MDIMAP_USERFILE`), `pam`, `authdaemond`,
//!   `checkpassword`. The first backend that knows the user decides (see
//!   `auth::backend`). Default `userfile`.
//! - `MDIMAP_PAM_SERVICE`: the PAM service name, i.e. the file in `/etc/pam.d`. Default
//!   `mdimap`.
//! - `MDIMAP_CHECKPASSWORD`: the checkpassword program (an absolute path) followed by its
//!   arguments, separated by blanks; mdimap appends the subprogram. Required when
//!   `MDIMAP_AUTH` lists `checkpassword`.
//! - `MDIMAP_AUTHDAEMON_SOCKET`: Courier's authdaemond socket. Default
//!   `/run/courier/authdaemon/socket` (Debian's).
//!
//! This module only reads and checks the file: it does not open sockets, read the user file
//! or look at the environment.

use crate::auth::backend::{Backend, DEFAULT_AUTHDAEMON_SOCKET, DEFAULT_PAM_SERVICE};
use crate::maildir::SpecialUse;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Courier keys (from `imapd`, `imapd-ssl` and the rc scripts) that mdimap accepts and
/// ignores: listener details handled elsewhere in Courier, TLS settings of `couriertls`,
/// and features mdimap does not have. `AUTHSERVICE<port>` keys are also accepted.
pub const IGNORED_KEYS: &[&str] = &[
    "IMAPDSTART",
    "IMAPDSSLSTART",
    "IMAPDSTARTTLS",
    "IMAP_STARTTLS",
    "IMAP_CAPABILITY_ORIG",
    "IMAP_CAPABILITY_TLS",
    "IMAP_CAPABILITY_TLS_ORIG",
    "IMAP_ID_FIELDS",
    "SMAP_CAPABILITY",
    "IMAP_PROXY",
    "IMAP_PROXY_FOREIGN",
    "PROXY_HOSTNAME",
    "IMAP_CHECK_ALL_FOLDERS",
    "IMAP_OBSOLETE_CLIENT",
    "IMAP_ULIMITD",
    "IMAP_ENHANCEDIDLE",
    "IMAP_MAILBOX_SANITY_CHECK",
    "IMAP_LOG_DELETIONS",
    "IMAP_BROKENUIDV",
    "IMAPACCESSFILE",
    "ACCESSFILE",
    "AUTH_MKHOMEDIR_SKEL",
    "IMAPDEBUGFILE",
    "PIDFILE",
    "TCPDOPTS",
    "LOGGEROPTS",
    "DEFDOMAIN",
    "MAILDIRPATH",
    "MAXMSGSIZE",
    "SSLPIDFILE",
    "SSLLOGGEROPTS",
    "COURIERTLS",
    "IMAP_TLS",
    "TLS_PROTOCOL",
    "TLS_STARTTLS_PROTOCOL",
    "TLS_PRIORITY",
    "TLS_CIPHER_LIST",
    "TLS_MIN_DH_BITS",
    "TLS_TIMEOUT",
    "TLS_DHPARAMS",
    "TLS_CACHEFILE",
    "TLS_CACHESIZE",
    "TLS_ALPN",
];

/// Every key mdimap uses, in the order `effective()` lists them.
pub const KEYS: &[&str] = &[
    "ADDRESS",
    "PORT",
    "MAXDAEMONS",
    "MAXPERIP",
    "IMAP_IDLE_TIMEOUT",
    "IMAP_TRASHFOLDERNAME",
    "MDIMAP_SENT_FOLDERS",
    "MDIMAP_DRAFTS_FOLDERS",
    "MDIMAP_JUNK_FOLDERS",
    "MDIMAP_ARCHIVE_FOLDERS",
    "IMAP_EMPTYTRASH",
    "IMAP_MOVE_EXPUNGE_TO_TRASH",
    "IMAP_DISABLETHREADSORT",
    "OUTBOX",
    "SENDMAIL",
    "HEADERFROM",
    "OUTBOX_MULTIPLE_SEND",
    "IMAP_KEYWORDS",
    "IMAP_ACL",
    "IMAP_SHAREDINDEXFILE",
    "IMAP_SHAREDMUNGENAMES",
    "IMAP_USELOCKS",
    "IMAP_UMASK",
    "IMAP_CAPABILITY",
    "MDIMAP_USERFILE",
    "MDIMAP_AUTH",
    "MDIMAP_PAM_SERVICE",
    "MDIMAP_CHECKPASSWORD",
    "MDIMAP_AUTHDAEMON_SOCKET",
    "MDIMAP_MAX_LINE",
    "MDIMAP_MAX_LITERAL",
    "MDIMAP_AUTOLOGOUT",
    "MDIMAP_LOGIN_TIMEOUT",
    "MDIMAP_IO_TIMEOUT",
    "MDIMAPD",
    "MDIMAP_HOSTNAME",
    "SSLADDRESS",
    "SSLPORT",
    "TLS_CERTFILE",
    "TLS_PRIVATE_KEYFILE",
    "IMAP_TLS_REQUIRED",
    "MDIMAP_PLAINTEXT_LOGIN",
    "MDIMAP_LOGIN_FAILURE_DELAY",
    "MDIMAP_MAX_LOGIN_FAILURES",
    "TLS_TRUSTCERTS",
    "TLS_VERIFYPEER",
    "TLS_EXTERNAL",
    "MDIMAP_PROXY_TRUSTED",
    "MDIMAP_LIMIT_MEMORY",
    "MDIMAP_LIMIT_FILES",
    "MDIMAP_LOGIN_USER",
];

/// The address-space limit of a session unless MDIMAP_LIMIT_MEMORY says
/// otherwise: 512 MiB. A session holds about one message at a time (a
/// FETCH streams its answer, a large APPEND is spooled to disk), so even a
/// 64 MiB message with its CRLF copy and decoded parts fits; a session that
/// needs more is a bug or an attack, and dies alone.
pub const DEFAULT_LIMIT_MEMORY: u64 = 512 << 20;

/// Whether TLS clients are asked for a certificate (Courier's TLS_VERIFYPEER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyPeer {
    /// NONE: no client certificates.
    None,
    /// PEER: ask for one; clients without one may still log in with a password.
    Peer,
    /// REQUIREPEER: refuse clients without a valid certificate.
    RequirePeer,
}

/// When LOGIN and the plaintext SASL mechanisms are allowed on a connection
/// that is not encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaintextLogin {
    Always,
    LoopbackOnly,
    Never,
}

/// The default index of virtual shared folders: Courier's `<sysconfdir>/shared/index`
/// with mdimap's configuration directory.
pub const DEFAULT_SHARED_INDEX: &str = "/etc/mdimap/shared/index";

/// The default certificate file (certificate chain and key in one PEM, as
/// Courier keeps them).
pub const DEFAULT_CERTFILE: &str = "/etc/mdimap/mdimapd.pem";

/// The smallest command line limit accepted: shorter limits would refuse ordinary
/// commands (a UID FETCH with a long sequence set easily passes a few hundred bytes).
const MIN_MAX_LINE: usize = 1024;

/// RFC 3501 §5.4: the autologout timer must be at least 30 minutes.
const RFC_MIN_AUTOLOGOUT: u64 = 30 * 60;

/// The names `MDIMAP_AUTH` accepts, one per `Backend` kind.
pub const AUTH_NAMES: &[&str] = &["userfile", "pam", "authdaemond", "checkpassword"];

/// SENDMAIL's default, Courier's.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// IMAP_EMPTYTRASH, as Courier's `emptytrash()` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmptyTrash {
    /// Unset: nothing is purged (Courier's own default; its shipped file sets `Trash:7`).
    Off,
    /// A bare number of days: the trash folder (IMAP_TRASHFOLDERNAME), whatever its name.
    Trash(u32),
    /// `Folder:days,...`: folder names without `INBOX.`.
    Folders(Vec<(String, u32)>),
}

/// The default configuration file.
pub const DEFAULT_PATH: &str = "/etc/mdimap/mdimapd.conf";

#[derive(Debug, Clone)]
pub struct Config {
    /// ADDRESS: addresses to listen on (IP literals; Courier's `0` is read as `0.0.0.0`).
    pub addresses: Vec<String>,
    /// PORT: ports to listen on.
    pub ports: Vec<u16>,
    /// MAXDAEMONS: most sessions at once.
    pub max_daemons: u32,
    /// MAXPERIP: most sessions at once from one client address.
    pub max_per_ip: u32,
    /// IMAP_IDLE_TIMEOUT: seconds between mailbox checks in IDLE when no change
    /// notification is available.
    pub idle_timeout: u64,
    /// IMAP_TRASHFOLDERNAME: name of the trash folder (without `INBOX.`); DELETE
    /// refuses it, as Courier does.
    pub trash_folder: String,
    /// MDIMAP_SENT_FOLDERS, MDIMAP_DRAFTS_FOLDERS, MDIMAP_JUNK_FOLDERS and
    /// MDIMAP_ARCHIVE_FOLDERS: the folders (without `INBOX.`) LIST marks `\Sent`,
    /// `\Drafts`, `\Junk` and `\Archive` (RFC 6154), in that order; the trash folder
    /// is marked `\Trash`. See [`Config::special_use_folders`].
    pub special_use: [Vec<String>; 4],
    /// IMAP_EMPTYTRASH: which folders lose messages older than some days, at login and
    /// LOGOUT; see [`EmptyTrash`] and [`Config::purges`].
    pub empty_trash: EmptyTrash,
    /// IMAP_MOVE_EXPUNGE_TO_TRASH (Courier's "magic trash", `XMAGICTRASH`): EXPUNGE and
    /// CLOSE move `\Deleted` messages into the trash folder instead of removing them.
    pub move_expunge_to_trash: bool,
    /// IMAP_DISABLETHREADSORT: SORT, THREAD and ESORT are neither advertised nor served.
    pub disable_thread_sort: bool,
    /// OUTBOX: the folder directory (`.Outbox`) whose new messages are also handed to
    /// SENDMAIL (`XCOURIEROUTBOX=INBOX.Outbox`); `None`: no outbox.
    pub outbox: Option<String>,
    /// SENDMAIL: the program the outbox hands messages to, as `SENDMAIL -oi -t -f sender`.
    pub sendmail: PathBuf,
    /// HEADERFROM: the header naming the sender that is put on top of each message sent
    /// from the outbox (Courier's file sets `X-IMAP-Sender`); `None`: no header.
    pub header_from: Option<String>,
    /// OUTBOX_MULTIPLE_SEND: a COPY may send several messages at once.
    pub outbox_multiple_send: bool,
    /// IMAP_KEYWORDS: 0 no custom keywords, 1 keywords, 2 keywords with slower,
    /// link-based updates (Courier's meaning).
    pub keywords: u8,
    /// IMAP_ACL: advertise ACL and ACL2=UNION (Courier's `ACL_CAPABILITY`). As with
    /// Courier, access control lists are kept and enforced either way.
    pub acl: bool,
    /// IMAP_SHAREDINDEXFILE: Courier's index of the accounts whose folders are virtual
    /// shared folders (`#shared.<account>.<folder>`); an account's `sharedgroup` option
    /// is appended to the name. Empty: no virtual shared folders.
    pub shared_index: PathBuf,
    /// IMAP_SHAREDMUNGENAMES: names of the index with `.` and `/` become `\:` and `\;`
    /// (and `\` becomes `\\`) instead of a blank.
    pub shared_munge_names: bool,
    /// IMAP_USELOCKS: Courier's switch for the dot-lock around index updates. mdimap
    /// always takes the lock (it is what keeps UIDs unique between processes); `0`
    /// is accepted and logged as ignored.
    pub use_locks: bool,
    /// IMAP_UMASK: file creation mask for the session.
    pub umask: u32,
    /// IMAP_CAPABILITY: Courier's capability string; kept for reference, not used.
    pub capability: Option<String>,
    /// MDIMAP_USERFILE: the user file.
    pub userfile: PathBuf,
    /// MDIMAP_AUTH: authentication backends in the order they are tried, each one of
    /// `AUTH_NAMES`; never empty and without repeats.
    pub auth: Vec<String>,
    /// MDIMAP_PAM_SERVICE: the PAM service name (`/etc/pam.d/<name>`).
    pub pam_service: String,
    /// MDIMAP_CHECKPASSWORD: the checkpassword program and its arguments; `None` when
    /// unset (then `checkpassword` may not be listed in MDIMAP_AUTH).
    pub checkpassword: Option<(PathBuf, Vec<String>)>,
    /// MDIMAP_AUTHDAEMON_SOCKET: Courier's authdaemond socket.
    pub authdaemon_socket: PathBuf,
    /// MDIMAP_MAX_LINE: longest command line in bytes (literals excluded).
    pub max_line: usize,
    /// MDIMAP_MAX_LITERAL: largest literal in bytes (bounds APPEND).
    pub max_literal: u64,
    /// MDIMAP_AUTOLOGOUT: seconds of client silence after login before disconnecting.
    pub autologout: u64,
    /// MDIMAP_LOGIN_TIMEOUT: seconds allowed before a successful login.
    pub login_timeout: u64,
    /// MDIMAP_IO_TIMEOUT: seconds a logged-in client may stall in the middle
    /// of a command (beyond what its size needs at the minimum rate) or
    /// leave a response unread.
    pub io_timeout: u64,
    /// MDIMAPD: the mdimapd binary for mdimap-listen to run; `None` means the `mdimapd`
    /// next to the running executable.
    pub mdimapd: Option<PathBuf>,
    /// MDIMAP_HOSTNAME: the host name shown in the greeting; `None` means
    /// gethostname(). (Unique file names always use gethostname(), as every
    /// writer sharing the maildir must.)
    pub hostname: Option<String>,
    /// SSLADDRESS: addresses for implicit TLS (port 993); `None` means ADDRESS.
    pub ssl_addresses: Option<Vec<String>>,
    /// SSLPORT: ports that speak TLS from the first byte (993); empty: none.
    pub ssl_ports: Vec<u16>,
    /// TLS_CERTFILE: PEM with the certificate chain (and the key, unless
    /// TLS_PRIVATE_KEYFILE is set). `<file>.<name>` serves SNI name `<name>`.
    /// TLS is offered when this file exists.
    pub tls_certfile: PathBuf,
    /// TLS_PRIVATE_KEYFILE: PEM with the private key, when not in TLS_CERTFILE.
    pub tls_keyfile: Option<PathBuf>,
    /// MDIMAP_PLAINTEXT_LOGIN (`yes`, `loopback`, `no`; IMAP_TLS_REQUIRED=1 is
    /// `no`): whether passwords may be sent without TLS.
    pub plaintext_login: PlaintextLogin,
    /// MDIMAP_LOGIN_FAILURE_DELAY: seconds before answering a failed login.
    pub login_failure_delay: u64,
    /// MDIMAP_MAX_LOGIN_FAILURES: failed logins after which the connection is closed.
    pub max_login_failures: u32,
    /// TLS_TRUSTCERTS: CA certificates (PEM) that sign client certificates.
    pub tls_trustcerts: Option<PathBuf>,
    /// TLS_VERIFYPEER: NONE, PEER or REQUIREPEER.
    pub tls_verify_peer: VerifyPeer,
    /// TLS_EXTERNAL: the client certificate subject field (`CN` or
    /// `emailaddress`) that names the user for AUTHENTICATE EXTERNAL; unset:
    /// EXTERNAL is not offered.
    pub tls_external: Option<String>,
    /// MDIMAP_PROXY_TRUSTED: networks (CIDR, comma separated) whose
    /// connections must start with a HAProxy PROXY header; empty: none.
    pub proxy_trusted: Vec<crate::server::proxy::Network>,
    /// MDIMAP_LIMIT_MEMORY: address-space limit (bytes) of a session; 0: none.
    /// The default bounds what one hostile session can take
    /// ([`DEFAULT_LIMIT_MEMORY`]).
    pub limit_memory: u64,
    /// MDIMAP_LIMIT_FILES: open-file limit of a session; 0: unchanged.
    pub limit_files: u64,
    /// MDIMAP_LOGIN_USER: the account the login process runs as, which
    /// reads the client before login (see `server::privsep`).
    pub login_user: String,
    /// The file this configuration was read from; `None` for built-in defaults.
    pub source: Option<PathBuf>,
    /// Key -> 1-based line where its effective value was set.
    origins: BTreeMap<String, usize>,
}

#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; 0 when the error concerns the whole file (e.g. it cannot be read).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Default for Config {
    fn default() -> Config {
        Config::default()
    }
}

impl Config {
    /// The built-in defaults (Courier's where the key is Courier's).
    #[allow(clippy::should_implement_trait)]
    pub fn default() -> Config {
        Config {
            addresses: vec!["0.0.0.0".to_string()],
            ports: vec![143],
            max_daemons: 40,
            max_per_ip: 20,
            idle_timeout: 60,
            trash_folder: "Trash".to_string(),
            // The names Maildir++ clients (and Courier's own webmail) create.
            special_use: [
                vec!["Sent".to_string()],
                vec!["Drafts".to_string()],
                vec!["Junk".to_string(), "Spam".to_string()],
                vec!["Archive".to_string()],
            ],
            empty_trash: EmptyTrash::Off,
            move_expunge_to_trash: false,
            disable_thread_sort: false,
            outbox: None,
            sendmail: PathBuf::from(DEFAULT_SENDMAIL),
            header_from: None,
            outbox_multiple_send: false,
            keywords: 1,
            acl: true,
            shared_index: PathBuf::from(DEFAULT_SHARED_INDEX),
            shared_munge_names: false,
            use_locks: true,
            umask: 0o022,
            capability: None,
            userfile: PathBuf::from("/etc/mdimap/users"),
            auth: vec!["userfile".to_string()],
            pam_service: DEFAULT_PAM_SERVICE.to_string(),
            checkpassword: None,
            authdaemon_socket: PathBuf::from(DEFAULT_AUTHDAEMON_SOCKET),
            max_line: 65536,
            max_literal: 67_108_864,
            autologout: 1800,
            login_timeout: 60,
            io_timeout: 120,
            mdimapd: None,
            hostname: None,
            ssl_addresses: None,
            ssl_ports: Vec::new(),
            tls_certfile: PathBuf::from(DEFAULT_CERTFILE),
            tls_keyfile: None,
            plaintext_login: PlaintextLogin::LoopbackOnly,
            login_failure_delay: 3,
            max_login_failures: 3,
            tls_trustcerts: None,
            tls_verify_peer: VerifyPeer::None,
            tls_external: None,
            proxy_trusted: Vec::new(),
            limit_memory: DEFAULT_LIMIT_MEMORY,
            limit_files: 0,
            login_user: "nobody".to_string(),
            source: None,
            origins: BTreeMap::new(),
        }
    }

    /// Read and check the file at `path`. Returns the configuration and warnings (unknown
    /// keys and doubtful values, each starting with "path:line: ").
    pub fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: 0,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let line = e
                    .as_bytes()
                    .get(..valid)
                    .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
                    + 1;
                return Err(ConfigError {
                    path: path.to_path_buf(),
                    line,
                    message: "the line is not valid UTF-8; save the file as UTF-8 or ASCII"
                        .to_string(),
                });
            }
        };
        Config::parse(&text, path)
    }

    /// Parse configuration text; `path` is used for messages and recorded as the source.
    pub fn parse(text: &str, path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let mut config = Config::default();
        config.source = Some(path.to_path_buf());
        let mut warnings = Vec::new();
        // Values set so far, for $NAME expansion.
        let mut variables: BTreeMap<String, String> = BTreeMap::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let err = |message: String| ConfigError {
                path: path.to_path_buf(),
                line,
                message,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, rest)) = trimmed.split_once('=') else {
                return Err(err(format!(
                    "expected KEY=VALUE or a # comment, found {:?}",
                    shorten(trimmed)
                )));
            };
            let key = key.trim_end();
            if !is_key(key) {
                return Err(err(format!(
                    "{:?} is not a valid key; keys are letters, digits and _ (KEY=VALUE)",
                    shorten(key)
                )));
            }
            let mut undefined = Vec::new();
            let value = parse_value(rest.trim_start(), &variables, &mut undefined).map_err(&err)?;
            for name in undefined {
                warnings.push(format!(
                    "{}:{line}: ${name} is not set earlier in this file; it was replaced by nothing",
                    path.display()
                ));
            }
            variables.insert(key.to_string(), value.clone());
            config
                .apply(key, &value, path, line, &mut warnings)
                .map_err(&err)?;
        }
        // Checked once the whole file is read: MDIMAP_CHECKPASSWORD may come after
        // MDIMAP_AUTH.
        if config.auth.iter().any(|name| name == "checkpassword") && config.checkpassword.is_none()
        {
            return Err(ConfigError {
                path: path.to_path_buf(),
                line: config.origins.get("MDIMAP_AUTH").copied().unwrap_or(0),
                message: "MDIMAP_AUTH lists checkpassword but MDIMAP_CHECKPASSWORD is not set; \
                          set it to the program and its arguments, e.g. \
                          MDIMAP_CHECKPASSWORD=/usr/local/bin/checkpassword"
                    .to_string(),
            });
        }
        Ok((config, warnings))
    }

    /// IMAP_EMPTYTRASH resolved: each folder's full name (`INBOX.Trash`; `INBOX` is INBOX
    /// itself) and the age in days after which its messages go (never less than 1).
    pub fn purges(&self) -> Vec<(String, u32)> {
        match &self.empty_trash {
            EmptyTrash::Off => Vec::new(),
            EmptyTrash::Trash(days) => vec![(format!("INBOX.{}", self.trash_folder), *days)],
            // Courier 5's `maildir_folderdir` takes `INBOX` (any case) for the maildir itself.
            EmptyTrash::Folders(list) => list
                .iter()
                .map(|(folder, days)| {
                    let name = if folder.eq_ignore_ascii_case("INBOX") {
                        "INBOX".to_string()
                    } else {
                        format!("INBOX.{folder}")
                    };
                    (name, *days)
                })
                .collect(),
        }
    }

    /// The authentication backends in `MDIMAP_AUTH` order, with their settings.
    pub fn backends(&self) -> Vec<Backend> {
        self.auth
            .iter()
            .filter_map(|name| match name.as_str() {
                "userfile" => Some(Backend::UserFile(self.userfile.clone())),
                "pam" => Some(Backend::Pam {
                    service: self.pam_service.clone(),
                }),
                "authdaemond" => Some(Backend::AuthDaemon {
                    socket: self.authdaemon_socket.clone(),
                }),
                // `parse` refuses checkpassword without a program, so this is always found.
                "checkpassword" => {
                    self.checkpassword
                        .as_ref()
                        .map(|(program, args)| Backend::CheckPassword {
                            program: program.clone(),
                            args: args.clone(),
                        })
                }
                _ => None,
            })
            .collect()
    }

    /// Set `key` from `value` (read at `path:line`).
    fn apply(
        &mut self,
        key: &str,
        value: &str,
        path: &Path,
        line: usize,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        let place = format!("{}:{line}", path.display());
        match key {
            "ADDRESS" => self.addresses = parse_addresses(value)?,
            "PORT" => self.ports = parse_ports(value)?,
            "MAXDAEMONS" => self.max_daemons = parse_number(key, value, 1)?,
            "MAXPERIP" => self.max_per_ip = parse_number(key, value, 1)?,
            "IMAP_IDLE_TIMEOUT" => self.idle_timeout = parse_number(key, value, 1)?,
            "IMAP_TRASHFOLDERNAME" => {
                if value.is_empty() {
                    return Err("IMAP_TRASHFOLDERNAME must name a folder, e.g. Trash".to_string());
                }
                self.trash_folder = value.to_string();
            }
            "MDIMAP_SENT_FOLDERS" => self.special_use[0] = parse_folder_list(key, value)?,
            "MDIMAP_DRAFTS_FOLDERS" => self.special_use[1] = parse_folder_list(key, value)?,
            "MDIMAP_JUNK_FOLDERS" => self.special_use[2] = parse_folder_list(key, value)?,
            "MDIMAP_ARCHIVE_FOLDERS" => self.special_use[3] = parse_folder_list(key, value)?,
            "IMAP_EMPTYTRASH" => self.empty_trash = parse_empty_trash(value, &place, warnings)?,
            "IMAP_MOVE_EXPUNGE_TO_TRASH" => {
                self.move_expunge_to_trash = parse_switch(key, value)?;
            }
            "IMAP_DISABLETHREADSORT" => self.disable_thread_sort = parse_switch(key, value)?,
            "OUTBOX" => {
                self.outbox = if value.is_empty() {
                    None
                } else if value.len() > 1
                    && value.starts_with('.')
                    && crate::maildir::is_valid_name(&format!("INBOX{value}"))
                {
                    Some(value.to_string())
                } else {
                    return Err(format!(
                        "OUTBOX must be a folder directory starting with a dot, such as .Outbox \
                         (the folder INBOX.Outbox), not {:?}",
                        shorten(value)
                    ));
                };
            }
            // Courier runs `sendmail` from PATH when SENDMAIL is empty.
            "SENDMAIL" if value.is_empty() => self.sendmail = PathBuf::from(DEFAULT_SENDMAIL),
            "SENDMAIL" => self.sendmail = parse_absolute(key, value)?,
            "HEADERFROM" => {
                // RFC 5322 field names: printable ASCII but the colon.
                if !value.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
                    return Err(format!(
                        "HEADERFROM must be a header field name such as X-IMAP-Sender, not {:?}",
                        shorten(value)
                    ));
                }
                self.header_from = (!value.is_empty()).then(|| value.to_string());
            }
            "OUTBOX_MULTIPLE_SEND" => self.outbox_multiple_send = parse_switch(key, value)?,
            "IMAP_KEYWORDS" => {
                self.keywords = match value {
                    "0" => 0,
                    "1" => 1,
                    "2" => 2,
                    _ => {
                        return Err(format!(
                            "IMAP_KEYWORDS must be 0 (no keywords), 1 (keywords) or 2 \
                             (keywords, slower updates), not {:?}",
                            shorten(value)
                        ));
                    }
                }
            }
            // Courier: any number other than 0 advertises ACL.
            "IMAP_ACL" => {
                self.acl = value.trim().parse::<i64>().map_err(|_| {
                    format!(
                        "IMAP_ACL must be 1 (advertise ACL) or 0 (do not), not {:?}",
                        shorten(value)
                    )
                })? != 0;
            }
            "IMAP_SHAREDINDEXFILE" => {
                self.shared_index = if value.is_empty() {
                    PathBuf::new()
                } else {
                    parse_absolute(key, value)?
                };
            }
            // Courier: any number other than 0 munges.
            "IMAP_SHAREDMUNGENAMES" => {
                self.shared_munge_names = value.trim().parse::<i64>().map_err(|_| {
                    format!(
                        "IMAP_SHAREDMUNGENAMES must be 1 (\\: and \\; for . and /) or 0 (a \
                         blank), not {:?}",
                        shorten(value)
                    )
                })? != 0;
            }
            // Courier: "any value other than 1 disables".
            "IMAP_USELOCKS" => self.use_locks = value == "1",
            "IMAP_UMASK" => self.umask = parse_umask(value)?,
            "IMAP_CAPABILITY" => self.capability = Some(value.to_string()),
            "MDIMAP_USERFILE" => self.userfile = parse_absolute(key, value)?,
            "MDIMAP_AUTH" => self.auth = parse_auth(value)?,
            "MDIMAP_PAM_SERVICE" => {
                if value.is_empty()
                    || value.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/')
                {
                    return Err(format!(
                        "MDIMAP_PAM_SERVICE must be a PAM service name (a file name in \
                         /etc/pam.d) such as mdimap, not {:?}",
                        shorten(value)
                    ));
                }
                self.pam_service = value.to_string();
            }
            "MDIMAP_CHECKPASSWORD" => {
                let mut words = value.split_whitespace();
                let program = parse_absolute(key, words.next().unwrap_or(""))?;
                self.checkpassword = Some((program, words.map(str::to_string).collect()));
            }
            "MDIMAP_AUTHDAEMON_SOCKET" => self.authdaemon_socket = parse_absolute(key, value)?,
            "MDIMAP_MAX_LINE" => {
                self.max_line = parse_number::<usize>(key, value, MIN_MAX_LINE)?;
            }
            "MDIMAP_MAX_LITERAL" => self.max_literal = parse_number(key, value, 1)?,
            "MDIMAP_AUTOLOGOUT" => {
                self.autologout = parse_number(key, value, 1)?;
                if self.autologout < RFC_MIN_AUTOLOGOUT {
                    warnings.push(format!(
                        "{place}: MDIMAP_AUTOLOGOUT={} is shorter than the 30 minutes ({RFC_MIN_AUTOLOGOUT}) \
                         RFC 3501 requires; idle clients may be cut off",
                        self.autologout
                    ));
                }
            }
            "MDIMAP_LOGIN_TIMEOUT" => self.login_timeout = parse_number(key, value, 1)?,
            "MDIMAP_IO_TIMEOUT" => self.io_timeout = parse_number(key, value, 1)?,
            "MDIMAPD" => self.mdimapd = Some(parse_absolute(key, value)?),
            "MDIMAP_HOSTNAME" => {
                if value.is_empty()
                    || value.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/')
                {
                    return Err(format!(
                        "MDIMAP_HOSTNAME must be a host name such as mail.example.com, not {:?}",
                        shorten(value)
                    ));
                }
                self.hostname = Some(value.to_string());
            }
            "SSLADDRESS" => self.ssl_addresses = Some(parse_addresses(value)?),
            // Empty: no implicit-TLS ports (the default), so that
            // `check-config` output can be fed back.
            "SSLPORT" if value.trim().is_empty() => self.ssl_ports = Vec::new(),
            "SSLPORT" => self.ssl_ports = parse_ports(value)?,
            "TLS_CERTFILE" => self.tls_certfile = parse_absolute(key, value)?,
            "TLS_PRIVATE_KEYFILE" => self.tls_keyfile = Some(parse_absolute(key, value)?),
            // Courier: 1 refuses logins before STARTTLS; anything else allows them.
            "IMAP_TLS_REQUIRED" => {
                if value == "1" {
                    self.plaintext_login = PlaintextLogin::Never;
                    self.origins
                        .insert("MDIMAP_PLAINTEXT_LOGIN".to_string(), line);
                }
            }
            "MDIMAP_PLAINTEXT_LOGIN" => {
                self.plaintext_login = match value.to_ascii_lowercase().as_str() {
                    "yes" | "1" => PlaintextLogin::Always,
                    "loopback" => PlaintextLogin::LoopbackOnly,
                    "no" | "0" => PlaintextLogin::Never,
                    _ => {
                        return Err(format!(
                            "MDIMAP_PLAINTEXT_LOGIN must be yes, loopback or no, not {:?}",
                            shorten(value)
                        ));
                    }
                }
            }
            "MDIMAP_LOGIN_FAILURE_DELAY" => self.login_failure_delay = parse_number(key, value, 0)?,
            "TLS_TRUSTCERTS" => self.tls_trustcerts = Some(parse_absolute(key, value)?),
            "TLS_VERIFYPEER" => {
                self.tls_verify_peer = match value.to_ascii_uppercase().as_str() {
                    "NONE" | "" => VerifyPeer::None,
                    "PEER" => VerifyPeer::Peer,
                    "REQUIREPEER" => VerifyPeer::RequirePeer,
                    _ => {
                        return Err(format!(
                            "TLS_VERIFYPEER must be NONE, PEER or REQUIREPEER, not {:?}",
                            shorten(value)
                        ));
                    }
                }
            }
            "TLS_EXTERNAL" => {
                let field = value.to_ascii_lowercase();
                if !matches!(field.as_str(), "cn" | "emailaddress") {
                    return Err(format!(
                        "TLS_EXTERNAL must name the certificate subject field with the login name, CN or emailaddress, not {:?}",
                        shorten(value)
                    ));
                }
                self.tls_external = Some(field);
            }
            "MDIMAP_PROXY_TRUSTED" => {
                self.proxy_trusted = crate::server::proxy::parse_networks(value).map_err(|e| {
                    format!("MDIMAP_PROXY_TRUSTED must list networks such as 10.0.0.0/8, ::1: {e}")
                })?;
            }
            "MDIMAP_LIMIT_MEMORY" => self.limit_memory = parse_number(key, value, 0)?,
            "MDIMAP_LIMIT_FILES" => self.limit_files = parse_number(key, value, 0)?,
            "MDIMAP_LOGIN_USER" => {
                if value.is_empty() {
                    return Err("MDIMAP_LOGIN_USER needs an account name, such as nobody".into());
                }
                self.login_user = value.to_string();
            }
            "MDIMAP_MAX_LOGIN_FAILURES" => self.max_login_failures = parse_number(key, value, 1)?,
            _ if IGNORED_KEYS.contains(&key) || is_authservice(key) => return Ok(()),
            _ => {
                warnings.push(format!("{place}: unknown key {key}, ignored"));
                return Ok(());
            }
        }
        self.origins.insert(key.to_string(), line);
        Ok(())
    }

    /// The folders (full names) and the special use (RFC 6154) the configuration gives
    /// each: the trash folder `\Trash`, and those of the four `MDIMAP_*_FOLDERS` keys.
    pub fn special_use_folders(&self) -> Vec<(String, SpecialUse)> {
        let mut out = vec![(format!("INBOX.{}", self.trash_folder), SpecialUse::Trash)];
        let uses = [
            SpecialUse::Sent,
            SpecialUse::Drafts,
            SpecialUse::Junk,
            SpecialUse::Archive,
        ];
        for (names, u) in self.special_use.iter().zip(uses) {
            out.extend(names.iter().map(|n| (format!("INBOX.{n}"), u)));
        }
        out
    }

    /// The host name to present: MDIMAP_HOSTNAME, else gethostname(), else "localhost".
    pub fn hostname(&self) -> String {
        if let Some(name) = &self.hostname {
            return name.clone();
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|n| n.into_string().ok())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    }

    /// Every effective value with its source ("default" or "path:line"), for
    /// `mdimap check-config`, in the order of `KEYS`.
    pub fn effective(&self) -> Vec<(String, String, String)> {
        KEYS.iter()
            .map(|&key| {
                let value = match key {
                    "ADDRESS" => self.addresses.join(","),
                    "PORT" => self
                        .ports
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    "MAXDAEMONS" => self.max_daemons.to_string(),
                    "MAXPERIP" => self.max_per_ip.to_string(),
                    "IMAP_IDLE_TIMEOUT" => self.idle_timeout.to_string(),
                    "IMAP_TRASHFOLDERNAME" => self.trash_folder.clone(),
                    "MDIMAP_SENT_FOLDERS" => show_folder_list(&self.special_use[0]),
                    "MDIMAP_DRAFTS_FOLDERS" => show_folder_list(&self.special_use[1]),
                    "MDIMAP_JUNK_FOLDERS" => show_folder_list(&self.special_use[2]),
                    "MDIMAP_ARCHIVE_FOLDERS" => show_folder_list(&self.special_use[3]),
                    "IMAP_EMPTYTRASH" => match &self.empty_trash {
                        EmptyTrash::Off => "(unset: nothing is purged)".to_string(),
                        EmptyTrash::Trash(days) => days.to_string(),
                        EmptyTrash::Folders(list) => list
                            .iter()
                            .map(|(folder, days)| format!("{folder}:{days}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    },
                    "IMAP_MOVE_EXPUNGE_TO_TRASH" => {
                        u8::from(self.move_expunge_to_trash).to_string()
                    }
                    "IMAP_DISABLETHREADSORT" => u8::from(self.disable_thread_sort).to_string(),
                    "OUTBOX" => self
                        .outbox
                        .clone()
                        .unwrap_or_else(|| "(unset: no outbox)".to_string()),
                    "SENDMAIL" => self.sendmail.display().to_string(),
                    "HEADERFROM" => self
                        .header_from
                        .clone()
                        .unwrap_or_else(|| "(unset: no sender header)".to_string()),
                    "OUTBOX_MULTIPLE_SEND" => u8::from(self.outbox_multiple_send).to_string(),
                    "IMAP_KEYWORDS" => self.keywords.to_string(),
                    "IMAP_ACL" => u8::from(self.acl).to_string(),
                    "IMAP_SHAREDINDEXFILE" if self.shared_index.as_os_str().is_empty() => {
                        "(unset)".to_string()
                    }
                    "IMAP_SHAREDINDEXFILE" => self.shared_index.display().to_string(),
                    "IMAP_SHAREDMUNGENAMES" => u8::from(self.shared_munge_names).to_string(),
                    "IMAP_USELOCKS" => u8::from(self.use_locks).to_string(),
                    "IMAP_UMASK" => format!("{:03o}", self.umask),
                    "IMAP_CAPABILITY" => self
                        .capability
                        .clone()
                        .unwrap_or_else(|| "(unset)".to_string()),
                    "MDIMAP_USERFILE" => self.userfile.display().to_string(),
                    "MDIMAP_AUTH" => self.auth.join(","),
                    "MDIMAP_PAM_SERVICE" => self.pam_service.clone(),
                    "MDIMAP_CHECKPASSWORD" => match &self.checkpassword {
                        Some((program, args)) => std::iter::once(program.display().to_string())
                            .chain(args.iter().cloned())
                            .collect::<Vec<_>>()
                            .join(" "),
                        None => "(unset)".to_string(),
                    },
                    "MDIMAP_AUTHDAEMON_SOCKET" => self.authdaemon_socket.display().to_string(),
                    "MDIMAP_MAX_LINE" => self.max_line.to_string(),
                    "MDIMAP_MAX_LITERAL" => self.max_literal.to_string(),
                    "MDIMAP_AUTOLOGOUT" => self.autologout.to_string(),
                    "MDIMAP_LOGIN_TIMEOUT" => self.login_timeout.to_string(),
                    "MDIMAP_IO_TIMEOUT" => self.io_timeout.to_string(),
                    "MDIMAPD" => match &self.mdimapd {
                        Some(p) => p.display().to_string(),
                        None => "(unset: mdimapd next to the running program)".to_string(),
                    },
                    "MDIMAP_HOSTNAME" => match &self.hostname {
                        Some(h) => h.clone(),
                        None => format!("(unset: gethostname() = {})", self.hostname()),
                    },
                    "SSLADDRESS" => match &self.ssl_addresses {
                        Some(a) => a.join(","),
                        None => "(unset: ADDRESS)".to_string(),
                    },
                    "SSLPORT" => self
                        .ssl_ports
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    "TLS_CERTFILE" => self.tls_certfile.display().to_string(),
                    "TLS_PRIVATE_KEYFILE" => match &self.tls_keyfile {
                        Some(p) => p.display().to_string(),
                        None => "(unset: the key is in TLS_CERTFILE)".to_string(),
                    },
                    "IMAP_TLS_REQUIRED" => {
                        u8::from(self.plaintext_login == PlaintextLogin::Never).to_string()
                    }
                    "MDIMAP_PLAINTEXT_LOGIN" => match self.plaintext_login {
                        PlaintextLogin::Always => "yes",
                        PlaintextLogin::LoopbackOnly => "loopback",
                        PlaintextLogin::Never => "no",
                    }
                    .to_string(),
                    "MDIMAP_LOGIN_FAILURE_DELAY" => self.login_failure_delay.to_string(),
                    "TLS_TRUSTCERTS" => match &self.tls_trustcerts {
                        Some(p) => p.display().to_string(),
                        None => "(unset)".to_string(),
                    },
                    "TLS_VERIFYPEER" => match self.tls_verify_peer {
                        VerifyPeer::None => "NONE",
                        VerifyPeer::Peer => "PEER",
                        VerifyPeer::RequirePeer => "REQUIREPEER",
                    }
                    .to_string(),
                    "TLS_EXTERNAL" => self
                        .tls_external
                        .clone()
                        .unwrap_or_else(|| "(unset: no EXTERNAL)".to_string()),
                    "MDIMAP_PROXY_TRUSTED" => self
                        .proxy_trusted
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    "MDIMAP_LIMIT_MEMORY" => self.limit_memory.to_string(),
                    "MDIMAP_LIMIT_FILES" => self.limit_files.to_string(),
                    "MDIMAP_LOGIN_USER" => self.login_user.clone(),
                    "MDIMAP_MAX_LOGIN_FAILURES" => self.max_login_failures.to_string(),
                    _ => String::new(),
                };
                let source = match (self.origins.get(key), &self.source) {
                    (Some(line), Some(path)) => format!("{}:{line}", path.display()),
                    _ => "default".to_string(),
                };
                (key.to_string(), value, source)
            })
            .collect()
    }
}

fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_authservice(key: &str) -> bool {
    key.strip_prefix("AUTHSERVICE")
        .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

/// Keep quoted text in messages short.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", text.get(..cut).unwrap_or(text)),
        None => text.to_string(),
    }
}

/// Read the text after `=`: quoted or not, with `$NAME` expansion where the shell would
/// expand. Names that are not set are collected into `undefined`.
fn parse_value(
    text: &str,
    variables: &BTreeMap<String, String>,
    undefined: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut previous_blank = true;
    // Blanks seen outside quotes are held back, so trailing blanks and those before a
    // comment are dropped, while inner ones are kept.
    let mut pending_blanks = String::new();
    while let Some(c) = chars.next() {
        match c {
            '#' if previous_blank => break,
            ' ' | '\t' | '\r' => {
                pending_blanks.push(c);
                previous_blank = true;
                continue;
            }
            _ => {}
        }
        out.push_str(&pending_blanks);
        pending_blanks.clear();
        previous_blank = false;
        match c {
            '\'' => {
                let mut closed = false;
                for q in chars.by_ref() {
                    if q == '\'' {
                        closed = true;
                        break;
                    }
                    out.push(q);
                }
                if !closed {
                    return Err("the value has an opening ' without a closing '; quote the whole value as '...'".to_string());
                }
            }
            '"' => {
                let mut closed = false;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.peek().copied() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => {
                                out.push(e);
                                chars.next();
                            }
                            _ => out.push('\\'),
                        },
                        '$' => expand(&mut chars, &mut out, variables, undefined),
                        other => out.push(other),
                    }
                }
                if !closed {
                    return Err("the value has an opening \" without a closing \"; quote the whole value as \"...\"".to_string());
                }
            }
            '\\' => match chars.next() {
                Some(e) => out.push(e),
                None => out.push('\\'),
            },
            '$' => expand(&mut chars, &mut out, variables, undefined),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// After a `$`: append the value of `NAME` or `{NAME}`; a lone `$` stays literal.
fn expand(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
    variables: &BTreeMap<String, String>,
    undefined: &mut Vec<String>,
) {
    let mut name = String::new();
    if chars.peek() == Some(&'{') {
        let mut lookahead = chars.clone();
        lookahead.next();
        let mut candidate = String::new();
        let mut closed = false;
        for c in lookahead.by_ref() {
            if c == '}' {
                closed = true;
                break;
            }
            candidate.push(c);
        }
        if !closed || !is_key(&candidate) {
            out.push('$');
            return;
        }
        *chars = lookahead;
        name = candidate;
    } else {
        while let Some(&c) = chars.peek() {
            let ok = if name.is_empty() {
                c.is_ascii_alphabetic() || c == '_'
            } else {
                c.is_ascii_alphanumeric() || c == '_'
            };
            if !ok {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            out.push('$');
            return;
        }
    }
    match variables.get(&name) {
        Some(value) => out.push_str(value),
        None => undefined.push(name),
    }
}

fn parse_number<T: std::str::FromStr + PartialOrd + fmt::Display + Copy>(
    key: &str,
    value: &str,
    minimum: T,
) -> Result<T, String> {
    let number = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<T>().ok()
    } else {
        None
    };
    match number {
        Some(n) if n >= minimum => Ok(n),
        Some(_) => Err(format!("{key} must be at least {minimum}, not {value}")),
        None => Err(format!(
            "{key} must be a whole number (at least {minimum}, digits only), not {:?}",
            shorten(value)
        )),
    }
}

fn parse_absolute(key: &str, value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if value.is_empty() || !path.is_absolute() {
        return Err(format!(
            "{key} must be an absolute path (starting with /), not {:?}",
            shorten(value)
        ));
    }
    Ok(path)
}

/// Courier's on/off numbers (`atoi(value) != 0`); empty is off.
/// A comma-separated list of folder names without `INBOX.` (blanks around the commas
/// dropped, blanks inside a name kept: `Sent, Sent Items`); empty: none.
fn parse_folder_list(key: &str, value: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !crate::maildir::is_valid_name(&format!("INBOX.{name}")) {
            return Err(format!(
                "{key} must list folder names without INBOX., separated by commas \
                 (e.g. Sent,Sent Items), not {:?}",
                shorten(name)
            ));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

fn show_folder_list(names: &[String]) -> String {
    if names.is_empty() {
        "(unset: none)".to_string()
    } else {
        names.join(",")
    }
}

fn parse_switch(key: &str, value: &str) -> Result<bool, String> {
    if value.is_empty() {
        return Ok(false);
    }
    value
        .parse::<i64>()
        .map(|n| n != 0)
        .map_err(|_| format!("{key} must be 1 (on) or 0 (off), not {:?}", shorten(value)))
}

/// IMAP_EMPTYTRASH: a bare number of days for the trash folder, or `Folder:days` items
/// separated by commas. As in Courier, days below 1 count as 1, and an empty value means one
/// day of the trash folder (both with a warning: they rarely say what was meant).
fn parse_empty_trash(
    value: &str,
    place: &str,
    warnings: &mut Vec<String>,
) -> Result<EmptyTrash, String> {
    let mut days = |text: &str, folder: &str| -> Result<u32, String> {
        let text = text.trim();
        let n = if text.is_empty() {
            0
        } else {
            text.parse::<i64>().map_err(|_| {
                format!(
                    "IMAP_EMPTYTRASH: the days for {folder} must be a number, not {:?}; \
                     write e.g. Trash:7,Sent:30",
                    shorten(text)
                )
            })?
        };
        if n < 1 {
            warnings.push(format!(
                "{place}: IMAP_EMPTYTRASH: {folder} gets {n} days, which Courier reads as 1: \
                 its messages go after one day"
            ));
        }
        Ok(u32::try_from(n.max(1)).unwrap_or(u32::MAX))
    };
    if !value.contains([':', ',']) {
        return Ok(EmptyTrash::Trash(days(value, "the trash folder")?));
    }
    let mut folders = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((folder, n)) = item.split_once(':') else {
            return Err(format!(
                "IMAP_EMPTYTRASH: {:?} has no number of days; write Folder:days, e.g. Trash:7",
                shorten(item)
            ));
        };
        if !crate::maildir::is_valid_name(&format!("INBOX.{folder}")) {
            return Err(format!(
                "IMAP_EMPTYTRASH: {:?} is not a folder name (give it without INBOX., e.g. Trash)",
                shorten(folder)
            ));
        }
        folders.push((folder.to_string(), days(n, folder)?));
    }
    if folders.is_empty() {
        // Only commas (`IMAP_EMPTYTRASH=,`): no folder named, nothing to purge. Shown as
        // unset, since an empty list written back would read as one day of the trash.
        warnings.push(format!(
            "{place}: IMAP_EMPTYTRASH names no folder ({:?}): nothing is purged",
            shorten(value)
        ));
        return Ok(EmptyTrash::Off);
    }
    Ok(EmptyTrash::Folders(folders))
}

/// Items separated by commas and/or blanks.
fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

fn parse_auth(value: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for item in list_items(value) {
        if !AUTH_NAMES.contains(&item) {
            return Err(format!(
                "MDIMAP_AUTH entry {:?} is not an authentication backend; use {} \
                 (in the order to try them), e.g. userfile,pam",
                shorten(item),
                AUTH_NAMES.join(", ")
            ));
        }
        if names.iter().any(|n| n == item) {
            return Err(format!(
                "MDIMAP_AUTH lists {item} twice; name each backend once"
            ));
        }
        names.push(item.to_string());
    }
    if names.is_empty() {
        return Err(format!(
            "MDIMAP_AUTH is empty; list backends from {}, e.g. userfile",
            AUTH_NAMES.join(", ")
        ));
    }
    Ok(names)
}

fn parse_addresses(value: &str) -> Result<Vec<String>, String> {
    let mut addresses = Vec::new();
    for item in list_items(value) {
        if item == "0" {
            // Courier's "all addresses".
            addresses.push("0.0.0.0".to_string());
        } else if item.parse::<IpAddr>().is_ok() {
            addresses.push(item.to_string());
        } else {
            return Err(format!(
                "ADDRESS entry {:?} is not an IP address; use IP addresses such as 0.0.0.0, \
                 127.0.0.1 or :: (or 0 for all addresses), separated by commas or blanks",
                shorten(item)
            ));
        }
    }
    if addresses.is_empty() {
        return Err(
            "ADDRESS is empty; use an IP address such as 0.0.0.0 (or 0 for all addresses)"
                .to_string(),
        );
    }
    Ok(addresses)
}

fn parse_ports(value: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for item in list_items(value) {
        if item.contains('.') || item.contains(':') {
            return Err(format!(
                "PORT entry {:?} binds an address to a port, which mdimap does not support; \
                 list plain port numbers in PORT and addresses in ADDRESS",
                shorten(item)
            ));
        }
        let port = if item.bytes().all(|b| b.is_ascii_digit()) {
            item.parse::<u32>().ok()
        } else {
            None
        };
        match port.and_then(|p| u16::try_from(p).ok()) {
            Some(p) if p > 0 => ports.push(p),
            _ => {
                return Err(format!(
                    "PORT entry {:?} is not a port number; use numbers from 1 to 65535 \
                     separated by commas, e.g. 143 or 143,993",
                    shorten(item)
                ));
            }
        }
    }
    if ports.is_empty() {
        return Err("PORT is empty; use port numbers from 1 to 65535, e.g. 143".to_string());
    }
    Ok(ports)
}

fn parse_umask(value: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "IMAP_UMASK must be an octal file mode mask from 000 to 777, e.g. 022 or 077, not {:?}",
            shorten(value)
        )
    };
    if value.is_empty() || !value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    match u32::from_str_radix(value, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Config, Vec<String>) {
        Config::parse(text, Path::new("/etc/mdimap/mdimapd.conf")).unwrap()
    }

    fn error(text: &str) -> ConfigError {
        match Config::parse(text, Path::new("/etc/mdimap/mdimapd.conf")) {
            Err(e) => e,
            Ok(c) => panic!("expected an error, got {c:?}"),
        }
    }

    /// A shortened Courier `/etc/courier/imapd` with mdimap keys added.
    const COURIER_SAMPLE: &str = r#"##VERSION: $Id:$
#
# imapd created from imapd.dist by sysconftool
#
#  Do not alter lines that begin with ##, they are used when upgrading
#  this configuration.

##NAME: ADDRESS:0
#
# Address to listen on, can be set to a single IP address.

ADDRESS=0

##NAME: PORT:1
PORT=143,993

##NAME: MAXDAEMONS:0
MAXDAEMONS=40

##NAME: MAXPERIP:0
MAXPERIP=4

##NAME: PIDFILE:0
PIDFILE=/run/courier/imapd.pid

##NAME: TCPDOPTS:0
TCPDOPTS="-nodnslookup -noidentlookup"

LOGGEROPTS="-name=imapd"

##NAME: IMAP_CAPABILITY:1
IMAP_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"

##NAME: IMAP_CAPABILITY_TLS:0
IMAP_CAPABILITY_TLS="$IMAP_CAPABILITY AUTH=PLAIN"

IMAP_KEYWORDS=1
IMAP_ACL=1
IMAP_PROXY=0
IMAP_IDLE_TIMEOUT=60
IMAP_MAILBOX_SANITY_CHECK=1
IMAP_UMASK=077
IMAP_ULIMITD=131072
IMAP_USELOCKS=1
IMAP_SHAREDINDEXFILE=/etc/courier/shared/index
IMAP_ENHANCEDIDLE=0
IMAP_TRASHFOLDERNAME='Deleted Items'
IMAP_EMPTYTRASH=Trash:7
IMAP_MOVE_EXPUNGE_TO_TRASH=0
IMAPDSTART=YES
MAILDIRPATH=Maildir
AUTHSERVICE993=imaps
MDIMAP_USERFILE="/etc/mdimap/users"   # virtual users
MDIMAP_HOSTNAME=mail.example.org
"#;

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.addresses, vec!["0.0.0.0"]);
        assert_eq!(c.ports, vec![143]);
        assert_eq!((c.max_daemons, c.max_per_ip), (40, 20));
        assert_eq!(c.idle_timeout, 60);
        assert_eq!(c.trash_folder, "Trash");
        assert_eq!(c.keywords, 1);
        assert!(c.use_locks);
        assert_eq!(c.umask, 0o022);
        assert_eq!(c.userfile, PathBuf::from("/etc/mdimap/users"));
        assert_eq!(c.max_line, 65536);
        assert_eq!(c.max_literal, 64 * 1024 * 1024);
        assert_eq!((c.autologout, c.login_timeout), (1800, 60));
        assert_eq!(c.mdimapd, None);
        assert_eq!(c.hostname, None);
        assert_eq!(c.auth, vec!["userfile"]);
        assert_eq!(c.pam_service, "mdimap");
        assert_eq!(c.checkpassword, None);
        assert_eq!(
            c.authdaemon_socket,
            PathBuf::from("/run/courier/authdaemon/socket")
        );
        assert_eq!(
            c.backends(),
            vec![Backend::UserFile(PathBuf::from("/etc/mdimap/users"))]
        );
        assert!(c.effective().iter().all(|(_, _, s)| s == "default"));
        let d: Config = Default::default();
        assert_eq!(d.ports, c.ports);
    }

    #[test]
    fn special_use_folder_keys() {
        let c = Config::default();
        let have = c.special_use_folders();
        for (name, u) in [
            ("INBOX.Trash", SpecialUse::Trash),
            ("INBOX.Sent", SpecialUse::Sent),
            ("INBOX.Drafts", SpecialUse::Drafts),
            ("INBOX.Junk", SpecialUse::Junk),
            ("INBOX.Spam", SpecialUse::Junk),
            ("INBOX.Archive", SpecialUse::Archive),
        ] {
            assert!(have.contains(&(name.to_string(), u)), "{name}");
        }
        let mut c = Config::default();
        let mut w = Vec::new();
        let p = Path::new("/etc/x");
        c.apply("MDIMAP_SENT_FOLDERS", "Sent , Sent Items", p, 1, &mut w)
            .unwrap();
        c.apply("MDIMAP_JUNK_FOLDERS", "", p, 2, &mut w).unwrap();
        c.apply("IMAP_TRASHFOLDERNAME", "Deleted Items", p, 3, &mut w)
            .unwrap();
        let have = c.special_use_folders();
        assert!(have.contains(&("INBOX.Sent Items".to_string(), SpecialUse::Sent)));
        assert!(have.contains(&("INBOX.Deleted Items".to_string(), SpecialUse::Trash)));
        assert!(!have.iter().any(|(_, u)| *u == SpecialUse::Junk));
        let err = c
            .apply("MDIMAP_ARCHIVE_FOLDERS", "a/b", p, 4, &mut w)
            .unwrap_err();
        assert!(err.contains("MDIMAP_ARCHIVE_FOLDERS"), "{err}");
        assert!(
            c.apply("MDIMAP_DRAFTS_FOLDERS", "..", p, 5, &mut w)
                .is_err()
        );
    }

    #[test]
    fn trash_and_outbox_keys() {
        let c = Config::default();
        assert_eq!(c.empty_trash, EmptyTrash::Off);
        assert!(c.purges().is_empty());
        assert!(!c.move_expunge_to_trash && !c.outbox_multiple_send);
        assert_eq!(
            (c.outbox.as_deref(), c.header_from.as_deref()),
            (None, None)
        );
        assert_eq!(c.sendmail, PathBuf::from("/usr/sbin/sendmail"));
        // A bare number is the trash folder's, whatever IMAP_TRASHFOLDERNAME says after it.
        let (c, w) = parse("IMAP_EMPTYTRASH=3\nIMAP_TRASHFOLDERNAME='Deleted Items'\n");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.purges(), vec![("INBOX.Deleted Items".to_string(), 3)]);
        let (c, w) = parse("IMAP_EMPTYTRASH=Trash:7,Sent:30,,Lists.Old:0,inbox:90\n");
        assert_eq!(
            c.purges(),
            vec![
                ("INBOX.Trash".to_string(), 7),
                ("INBOX.Sent".to_string(), 30),
                ("INBOX.Lists.Old".to_string(), 1),
                ("INBOX".to_string(), 90)
            ]
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("as 1"), "{w:?}");
        // Courier purges Trash after a day for an empty value: said, not hidden.
        let (c, w) = parse("IMAP_EMPTYTRASH=\n");
        assert_eq!(c.purges(), vec![("INBOX.Trash".to_string(), 1)]);
        assert_eq!(w.len(), 1);
        // Commas alone name no folder: nothing is purged, and check-config shows it unset
        // rather than as an empty list, which would read back as the empty value above
        // (found by fuzz/config).
        let (c, w) = parse("IMAP_EMPTYTRASH=, \n");
        assert_eq!(c.empty_trash, EmptyTrash::Off);
        assert!(c.purges().is_empty());
        assert!(w.len() == 1 && w[0].contains("names no folder"), "{w:?}");
        let (c, w) = parse(
            "IMAP_MOVE_EXPUNGE_TO_TRASH=1\nOUTBOX=.Outbox\nSENDMAIL=/usr/lib/sendmail\n\
             HEADERFROM=X-IMAP-Sender\nOUTBOX_MULTIPLE_SEND=1\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert!(c.move_expunge_to_trash && c.outbox_multiple_send);
        assert_eq!(c.outbox.as_deref(), Some(".Outbox"));
        assert_eq!(c.sendmail, PathBuf::from("/usr/lib/sendmail"));
        assert_eq!(c.header_from.as_deref(), Some("X-IMAP-Sender"));
        let eff = c.effective();
        let get = |k: &str| eff.iter().find(|(key, _, _)| key == k).unwrap().1.clone();
        assert_eq!(get("OUTBOX"), ".Outbox");
        assert_eq!(get("IMAP_MOVE_EXPUNGE_TO_TRASH"), "1");
        for bad in [
            "IMAP_EMPTYTRASH=Trash:x\n",
            "IMAP_EMPTYTRASH=Trash:7,Sent\n",
            "IMAP_EMPTYTRASH=seven\n",
            "IMAP_EMPTYTRASH=../x:3\n",
            "OUTBOX=Outbox\n",
            "OUTBOX=.\n",
            "SENDMAIL=sendmail\n",
            "HEADERFROM=X Sender\n",
            "HEADERFROM=X:\n",
            "IMAP_MOVE_EXPUNGE_TO_TRASH=yes\n",
        ] {
            assert!(
                Config::parse(bad, Path::new("/x")).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn courier_sample() {
        let (c, warnings) = parse(COURIER_SAMPLE);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.addresses, vec!["0.0.0.0"]);
        assert_eq!(c.ports, vec![143, 993]);
        assert_eq!(c.max_per_ip, 4);
        assert_eq!(
            c.capability.as_deref(),
            Some(
                "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"
            )
        );
        assert_eq!(c.umask, 0o077);
        assert_eq!(c.trash_folder, "Deleted Items");
        assert_eq!(c.userfile, PathBuf::from("/etc/mdimap/users"));
        assert_eq!(c.hostname.as_deref(), Some("mail.example.org"));
        assert_eq!(c.hostname(), "mail.example.org");
        assert_eq!(c.shared_index, PathBuf::from("/etc/courier/shared/index"));
        assert!(!c.shared_munge_names);
    }

    #[test]
    fn shared_folder_keys() {
        let c = Config::default();
        assert_eq!(c.shared_index, PathBuf::from(DEFAULT_SHARED_INDEX));
        let (c, w) = parse("IMAP_SHAREDINDEXFILE=\nIMAP_SHAREDMUNGENAMES=1\n");
        assert!(w.is_empty(), "{w:?}");
        assert!(c.shared_index.as_os_str().is_empty());
        assert!(c.shared_munge_names);
        let eff = c.effective();
        assert!(
            eff.iter()
                .any(|(k, v, _)| k == "IMAP_SHAREDINDEXFILE" && v == "(unset)")
        );
        for bad in [
            "IMAP_SHAREDINDEXFILE=shared/index\n",
            "IMAP_SHAREDMUNGENAMES=yes\n",
        ] {
            assert!(Config::parse(bad, Path::new("/x")).is_err(), "{bad}");
        }
    }

    #[test]
    fn effective_lists_sources() {
        let (c, _) = parse(COURIER_SAMPLE);
        let eff = c.effective();
        assert_eq!(eff.len(), KEYS.len());
        let get = |k: &str| eff.iter().find(|(key, _, _)| key == k).unwrap().clone();
        assert_eq!(
            get("PORT"),
            (
                "PORT".into(),
                "143,993".into(),
                "/etc/mdimap/mdimapd.conf:15".into()
            )
        );
        assert_eq!(get("ADDRESS").2, "/etc/mdimap/mdimapd.conf:12");
        assert_eq!(get("IMAP_UMASK").1, "077");
        assert_eq!(
            get("MDIMAP_MAX_LINE"),
            ("MDIMAP_MAX_LINE".into(), "65536".into(), "default".into())
        );
        assert!(get("MDIMAPD").1.starts_with("(unset"));
        assert_eq!(get("MDIMAPD").2, "default");
    }

    #[test]
    fn last_value_wins_and_source_follows() {
        let (c, _) = parse("PORT=143\n\nPORT=1143\n");
        assert_eq!(c.ports, vec![1143]);
        let eff = c.effective();
        assert!(eff.iter().any(|(k, _, s)| k == "PORT" && s.ends_with(":3")));
    }

    #[test]
    fn quoting_and_comments() {
        let (c, w) = parse(
            "IMAP_TRASHFOLDERNAME=\"My \\\"Bin\\\"\"  \n\
             MDIMAP_HOSTNAME = host.example  # trailing comment\n\
             IMAP_CAPABILITY='IMAP4rev1 $NOT_EXPANDED'\n\
             MDIMAPD=/usr/sbin/mdimapd\t\r\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.trash_folder, "My \"Bin\"");
        assert_eq!(c.hostname.as_deref(), Some("host.example"));
        assert_eq!(c.capability.as_deref(), Some("IMAP4rev1 $NOT_EXPANDED"));
        assert_eq!(c.mdimapd, Some(PathBuf::from("/usr/sbin/mdimapd")));
        // A '#' inside a word or inside quotes is part of the value.
        let (c, _) = parse("IMAP_TRASHFOLDERNAME=a#b\nIMAP_CAPABILITY=\"x # y\"\n");
        assert_eq!(c.trash_folder, "a#b");
        assert_eq!(c.capability.as_deref(), Some("x # y"));
    }

    #[test]
    fn expansion() {
        let (c, w) = parse(
            "IMAP_CAPABILITY=\"IMAP4rev1\"\nIMAP_CAPABILITY=\"${IMAP_CAPABILITY} IDLE $MISSING\"\n",
        );
        assert_eq!(c.capability.as_deref(), Some("IMAP4rev1 IDLE "));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("/etc/mdimap/mdimapd.conf:2: $MISSING"),
            "{w:?}"
        );
        let (c, _) = parse("IMAP_TRASHFOLDERNAME=\"cost \\$5 $\"\n");
        assert_eq!(c.trash_folder, "cost $5 $");
    }

    #[test]
    fn lists() {
        let (c, _) = parse("ADDRESS=127.0.0.1, ::1 0\nPORT=\"143 993,1143\"\n");
        assert_eq!(c.addresses, vec!["127.0.0.1", "::1", "0.0.0.0"]);
        assert_eq!(c.ports, vec![143, 993, 1143]);
    }

    #[test]
    fn unknown_keys_warn_with_line() {
        let (c, w) = parse("# c\nFOO=1\nIMAP_TLS_REQUIRED=1\nTLS_CERTFILE=/etc/x.pem\n");
        assert_eq!(
            w,
            vec!["/etc/mdimap/mdimapd.conf:2: unknown key FOO, ignored".to_string()]
        );
        assert_eq!(c.plaintext_login, PlaintextLogin::Never);
        assert_eq!(c.tls_certfile, PathBuf::from("/etc/x.pem"));
    }

    #[test]
    fn uselocks_and_keywords() {
        let (c, _) = parse("IMAP_USELOCKS=0\nIMAP_KEYWORDS=2\n");
        assert!(!c.use_locks);
        assert_eq!(c.keywords, 2);
        let (c, _) = parse("IMAP_USELOCKS=yes\n");
        assert!(!c.use_locks, "only 1 enables, as in Courier");
    }

    #[test]
    fn acl_capability() {
        assert!(Config::default().acl, "Debian's imapd has IMAP_ACL=1");
        let (c, w) = parse("IMAP_ACL=0\n");
        assert!(!c.acl && w.is_empty());
        let (c, _) = parse("IMAP_ACL=2\n");
        assert!(c.acl, "any non-zero number, as Courier's atoi");
        assert!(
            c.effective()
                .iter()
                .any(|(k, v, _)| k == "IMAP_ACL" && v == "1")
        );
    }

    #[test]
    fn short_autologout_warns() {
        let (c, w) = parse("MDIMAP_AUTOLOGOUT=60\n");
        assert_eq!(c.autologout, 60);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("RFC 3501"));
    }

    #[test]
    fn errors_have_line_numbers() {
        let cases: &[(&str, usize, &str)] = &[
            ("# ok\nPORT=0\n", 2, "1 to 65535"),
            ("\n\nPORT=65536\n", 3, "1 to 65535"),
            ("PORT=143,abc\n", 1, "1 to 65535"),
            ("PORT=127.0.0.1.143\n", 1, "ADDRESS"),
            ("PORT=\n", 1, "PORT is empty"),
            ("ADDRESS=mail.example.com\n", 1, "IP address"),
            ("MAXDAEMONS=ten\n", 1, "whole number"),
            ("MAXDAEMONS=0\n", 1, "at least 1"),
            ("MAXPERIP=-1\n", 1, "whole number"),
            ("IMAP_IDLE_TIMEOUT=1.5\n", 1, "whole number"),
            ("IMAP_KEYWORDS=3\n", 1, "0 (no keywords)"),
            ("IMAP_ACL=yes\n", 1, "IMAP_ACL must be 1"),
            ("IMAP_UMASK=089\n", 1, "octal"),
            ("IMAP_UMASK=1777\n", 1, "octal"),
            ("MDIMAP_USERFILE=users\n", 1, "absolute path"),
            ("MDIMAP_MAX_LINE=100\n", 1, "at least 1024"),
            (
                "MDIMAP_MAX_LITERAL=99999999999999999999999\n",
                1,
                "whole number",
            ),
            ("MDIMAPD=\n", 1, "absolute path"),
            ("MDIMAP_HOSTNAME=\"two words\"\n", 1, "host name"),
            ("IMAP_TRASHFOLDERNAME=\n", 1, "name a folder"),
            ("PORT=143\nthis is not a setting\n", 2, "KEY=VALUE"),
            ("PORT=143\nexport PORT\n", 2, "KEY=VALUE"),
            ("MY-KEY=1\n", 1, "not a valid key"),
            ("=1\n", 1, "not a valid key"),
            ("\n\n\n\nIMAP_CAPABILITY=\"IMAP4rev1\n", 5, "closing \""),
            ("IMAP_CAPABILITY='IMAP4rev1\n", 1, "closing '"),
            (
                "PORT=143\nMDIMAP_AUTH=userfile,ldap\n",
                2,
                "not an authentication backend",
            ),
            ("MDIMAP_AUTH=pam,PAM\n", 1, "not an authentication backend"),
            ("MDIMAP_AUTH=pam,pam\n", 1, "twice"),
            ("MDIMAP_AUTH=\n", 1, "MDIMAP_AUTH is empty"),
            ("MDIMAP_PAM_SERVICE=../shadow\n", 1, "PAM service name"),
            ("MDIMAP_PAM_SERVICE=\n", 1, "PAM service name"),
            (
                "MDIMAP_CHECKPASSWORD=checkpassword -x\n",
                1,
                "absolute path",
            ),
            ("MDIMAP_CHECKPASSWORD=\n", 1, "absolute path"),
            ("MDIMAP_AUTHDAEMON_SOCKET=socket\n", 1, "absolute path"),
            (
                "# x\nMDIMAP_AUTH=userfile checkpassword\n",
                2,
                "MDIMAP_CHECKPASSWORD is not set",
            ),
        ];
        for (text, line, words) in cases {
            let e = error(text);
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.message.contains(words), "{text:?}: {e}");
            assert_eq!(e.path, PathBuf::from("/etc/mdimap/mdimapd.conf"));
            assert!(
                e.to_string()
                    .starts_with(&format!("/etc/mdimap/mdimapd.conf:{line}: "))
            );
        }
    }

    #[test]
    fn authentication_backends_in_order() {
        let (c, w) = parse(
            "MDIMAP_USERFILE=/srv/users\n\
             MDIMAP_AUTH=\"userfile, pam authdaemond,checkpassword\"\n\
             MDIMAP_PAM_SERVICE=imap\n\
             MDIMAP_AUTHDAEMON_SOCKET=/var/run/courier/authdaemon/socket\n\
             MDIMAP_CHECKPASSWORD=\"/usr/local/bin/checkpassword-pam -s imap --\"\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.backends(),
            vec![
                Backend::UserFile(PathBuf::from("/srv/users")),
                Backend::Pam {
                    service: "imap".to_string()
                },
                Backend::AuthDaemon {
                    socket: PathBuf::from("/var/run/courier/authdaemon/socket")
                },
                Backend::CheckPassword {
                    program: PathBuf::from("/usr/local/bin/checkpassword-pam"),
                    args: vec!["-s".to_string(), "imap".to_string(), "--".to_string()],
                },
            ]
        );
        let eff = c.effective();
        let get = |k: &str| eff.iter().find(|(key, _, _)| key == k).unwrap().clone();
        assert_eq!(
            get("MDIMAP_AUTH").1,
            "userfile,pam,authdaemond,checkpassword"
        );
        assert_eq!(get("MDIMAP_AUTH").2, "/etc/mdimap/mdimapd.conf:2");
        assert_eq!(
            get("MDIMAP_CHECKPASSWORD").1,
            "/usr/local/bin/checkpassword-pam -s imap --"
        );
        assert_eq!(get("MDIMAP_PAM_SERVICE").1, "imap");

        // Order is kept; MDIMAP_CHECKPASSWORD may follow MDIMAP_AUTH.
        let (c, _) = parse("MDIMAP_AUTH=checkpassword,pam\nMDIMAP_CHECKPASSWORD=/bin/cp\n");
        assert_eq!(
            c.backends(),
            vec![
                Backend::CheckPassword {
                    program: PathBuf::from("/bin/cp"),
                    args: vec![]
                },
                Backend::Pam {
                    service: "mdimap".to_string()
                },
            ]
        );
        // MDIMAP_CHECKPASSWORD without checkpassword in MDIMAP_AUTH is harmless.
        let (c, _) = parse("MDIMAP_CHECKPASSWORD=/bin/cp\n");
        assert_eq!(
            c.backends(),
            vec![Backend::UserFile(PathBuf::from("/etc/mdimap/users"))]
        );
    }

    #[test]
    fn load_reads_files_and_reports_problems() {
        let dir = std::env::temp_dir().join(format!("mdimap-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.conf");
        std::fs::write(&good, "PORT=1143\nBOGUS=1\n").unwrap();
        let (c, w) = Config::load(&good).unwrap();
        assert_eq!(c.ports, vec![1143]);
        assert_eq!(c.source.as_deref(), Some(good.as_path()));
        assert_eq!(
            w,
            vec![format!("{}:2: unknown key BOGUS, ignored", good.display())]
        );

        let latin1 = dir.join("latin1.conf");
        std::fs::write(&latin1, b"PORT=143\nIMAP_TRASHFOLDERNAME=Papierkorb\xfc\n").unwrap();
        let e = Config::load(&latin1).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("UTF-8"));

        let missing = dir.join("missing.conf");
        let e = Config::load(&missing).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(
            e.to_string()
                .starts_with(&format!("{}: cannot read", missing.display()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
