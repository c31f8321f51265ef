//! mdimap: the administrator's tool.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Administration for the mdimap IMAP server.
#[derive(Parser, Debug)]
#[command(name = "mdimap", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make a throw-away maildir and user (demo/demo) and serve them on 127.0.0.1.
    Demo {
        /// Directory for the demo (a fresh temporary directory when omitted).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 1143)]
        port: u16,
        /// No sample messages or folders.
        #[arg(long)]
        empty: bool,
        /// When started as root: the unprivileged account that serves the demo.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Print a password hash (SHA-512-crypt) for the user file; the password
    /// is read from the terminal or one line of standard input.
    Passwd,
    /// Create a maildir (like Courier's maildirmake).
    Maildirmake {
        /// The maildir to create.
        dir: PathBuf,
        /// Create this folder (e.g. INBOX.Sent) in an existing maildir instead.
        #[arg(long, value_name = "NAME")]
        folder: Option<String>,
    },
    /// Convert a Dovecot maildir's UIDs, keywords and subscriptions into Courier's
    /// files (courierimapuiddb, courierimapkeywords/, courierimapsubscribed), so that
    /// clients keep their UIDs, UIDVALIDITY and keywords. Stop Dovecot first.
    MigrateDovecot {
        /// The maildir root (INBOX; its .Folder directories are converted too).
        maildir: PathBuf,
        /// Print what would change, per folder, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace Courier UID databases that differ from Dovecot's numbering, and
        /// leave folders whose dovecot-uidlist cannot be read to mdimap's first scan.
        #[arg(long)]
        force: bool,
        /// Configuration whose IMAP_UMASK applies to the files written (default
        /// /etc/mdimap/mdimapd.conf when it exists, else Courier's 022).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show a user's Maildir++ quota: limits and use, as GETQUOTA reports them.
    Quota {
        /// The configuration naming the authentication chain (default
        /// /etc/mdimap/mdimapd.conf, else the built-in defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Rebuild maildirsize from the messages on disk first.
        #[arg(long)]
        recalc: bool,
        /// The login name, looked up as a login would look it up.
        user: String,
    },
    /// Check a configuration file and print every effective value and its source.
    CheckConfig {
        /// The file to check (default /etc/mdimap/mdimapd.conf; when that does
        /// not exist, the built-in defaults the daemons would use are shown).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn read_password() -> Result<Vec<u8>, String> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    // Turn echo off on a terminal so the password is not shown.
    let saved = if interactive {
        nix::sys::termios::tcgetattr(&stdin).ok()
    } else {
        None
    };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet
            .local_flags
            .remove(nix::sys::termios::LocalFlags::ECHO);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet);
    }
    let mut line = Vec::new();
    let result = stdin.lock().read_until(b'\n', &mut line);
    if let Some(t) = &saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, t);
        eprintln!();
    }
    result.map_err(|e| format!("reading the password: {e}"))?;
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    if line.is_empty() {
        return Err("empty password; nothing hashed".into());
    }
    Ok(line)
}

/// Reads every user file the authentication chain names and reports the
/// lines logins would trip over, with file and line.
fn check_user_files(config: &mdimap::config::Config) -> Result<(), String> {
    use mdimap::auth::backend::Backend;
    use mdimap::auth::userfile::{Line, parse_line};
    let mut bad = 0;
    for backend in config.backends() {
        let Backend::UserFile(path) = backend else {
            continue;
        };
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("warning: user file {}: {e}", path.display());
                continue;
            }
        };
        let mut users = 0;
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            match parse_line(line) {
                Line::Ignored => {}
                Line::Record(_) => users += 1,
                Line::Malformed { reason, .. } => {
                    bad += 1;
                    eprintln!("{}:{}: {reason}", path.display(), n + 1);
                }
            }
        }
        eprintln!("user file {}: {users} users", path.display());
    }
    if bad > 0 {
        return Err(format!(
            "{bad} malformed user file line(s); those users cannot log in"
        ));
    }
    Ok(())
}

/// The named file, or the default one, or (like the daemons) the built-in
/// defaults when the default file does not exist.
fn config_to_check(
    named: Option<PathBuf>,
) -> Result<(mdimap::config::Config, Vec<String>), mdimap::config::ConfigError> {
    let default = PathBuf::from(mdimap::server::DEFAULT_CONFIG);
    match named {
        Some(path) => mdimap::config::Config::load(&path),
        None if default.exists() => mdimap::config::Config::load(&default),
        None => {
            eprintln!(
                "note: {} does not exist; these are the built-in defaults",
                default.display()
            );
            Ok((mdimap::config::Config::default(), Vec::new()))
        }
    }
}

/// `mdimap migrate-dovecot`: the files written get the configured IMAP_UMASK, as the
/// server's own would.
fn migrate_dovecot(
    maildir: &std::path::Path,
    dry_run: bool,
    force: bool,
    config: Option<PathBuf>,
) -> Result<(), String> {
    let default = PathBuf::from(mdimap::server::DEFAULT_CONFIG);
    let config = match config {
        Some(path) => Some(path),
        None if default.exists() => Some(default),
        None => None,
    };
    let umask = match config {
        Some(path) => {
            let (config, warnings) =
                mdimap::config::Config::load(&path).map_err(|e| e.to_string())?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            config.umask
        }
        None => mdimap::config::Config::default().umask,
    };
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        umask as libc::mode_t,
    ));
    let options = mdimap::migrate::Options { dry_run, force };
    let mut stdout = std::io::stdout().lock();
    mdimap::migrate::migrate_dovecot(maildir, options, &mut stdout)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `mdimap quota [--recalc] USER`: the user from the authentication chain, the work done as
/// that user (so what is written stays theirs), the answer in bytes and messages.
fn show_quota(config: Option<PathBuf>, recalc: bool, user: &str) -> Result<(), String> {
    let (config, warnings) = config_to_check(config).map_err(|e| e.to_string())?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let account = mdimap::auth::backend::lookup(&config.backends(), "imap", user)
        .map_err(|e| format!("looking up {user}: {e}"))?
        .ok_or_else(|| format!("no such user: {user}"))?;
    mdimap::server::privdrop::drop_to(&account.name, account.uid, account.gid)
        .map_err(|e| e.to_string())?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        config.umask as libc::mode_t,
    ));
    let store = mdimap::maildir::Store::open(&account.maildir)
        .map_err(|e| e.to_string())?
        .with_assigned_quota(account.quota.as_deref());
    let quota = store.quota();
    let report = if recalc {
        quota.recalculate()
    } else {
        quota.report()
    }
    .map_err(|e| e.to_string())?;
    println!("maildir: {}", account.maildir.display());
    let Some(report) = report else {
        println!("no quota");
        return Ok(());
    };
    let source = if quota.assigned().is_some() {
        "the user record"
    } else {
        mdimap::maildir::MAILDIRSIZE
    };
    println!("limits: {} (from {source})", report.limits.definition());
    let limit = |n: u64| {
        if n > 0 {
            format!("limit {n}")
        } else {
            "no limit".to_string()
        }
    };
    println!(
        "storage: {} bytes ({})",
        report.used.bytes,
        limit(report.limits.bytes)
    );
    println!(
        "messages: {} ({})",
        report.used.messages,
        limit(report.limits.messages)
    );
    Ok(())
}

fn main() {
    let args = Args::parse();
    let result = match args.command {
        Cmd::Demo {
            dir,
            port,
            empty,
            user,
        } => mdimap::demo::run(mdimap::demo::DemoOptions {
            dir,
            port,
            empty,
            user,
        }),
        Cmd::Passwd => read_password()
            .and_then(|p| mdimap::auth::password::hash(&p))
            .map(|h| println!("{h}")),
        Cmd::Maildirmake { dir, folder } => match folder {
            None => mdimap::maildir::Store::create(&dir)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Some(f) => mdimap::maildir::Store::open(&dir)
                .and_then(|s| s.create_folder(&f))
                .map_err(|e| e.to_string()),
        },
        Cmd::MigrateDovecot {
            maildir,
            dry_run,
            force,
            config,
        } => migrate_dovecot(&maildir, dry_run, force, config),
        Cmd::Quota {
            config,
            recalc,
            user,
        } => show_quota(config, recalc, &user),
        Cmd::CheckConfig { config } => match config_to_check(config) {
            Ok((c, warnings)) => {
                for w in warnings {
                    eprintln!("warning: {w}");
                }
                for (k, v, src) in c.effective() {
                    println!("{k}={v}\t# {src}");
                }
                check_user_files(&c)
            }
            Err(e) => Err(e.to_string()),
        },
    };
    if let Err(e) = result {
        eprintln!("mdimap: {e}");
        std::process::exit(1);
    }
}
