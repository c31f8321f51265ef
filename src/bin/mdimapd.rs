//! mdimapd: serves one IMAP connection on fd 0/1.

use std::path::PathBuf;

use clap::Parser;

/// IMAP server for Maildir: serves one connection on standard input and output.
#[derive(Parser, Debug)]
#[command(name = "mdimapd", version, about, long_about = None)]
struct Args {
    /// Configuration file (default /etc/mdimap/mdimapd.conf when it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve the invoking user's maildir without a login (PREAUTH greeting),
    /// for `ssh host mdimapd --preauth` tunnels.
    #[arg(long)]
    preauth: bool,
    /// The maildir to serve with --preauth (default $HOME/Maildir).
    #[arg(long, value_name = "DIR", requires = "preauth")]
    maildir: Option<PathBuf>,
    /// User file to check logins against (overrides MDIMAP_USERFILE).
    #[arg(long, value_name = "FILE")]
    userfile: Option<PathBuf>,
    /// Log to standard error instead of syslog.
    #[arg(long)]
    log_stderr: bool,
    /// Speak TLS from the first byte (port 993), with the certificate from
    /// TLS_CERTFILE.
    #[arg(long, conflicts_with = "preauth")]
    tls: bool,
    /// Tests only, and only in debug builds: seconds added to the clock by which
    /// IMAP_EMPTYTRASH ages messages (a file's ctime cannot be set back).
    #[cfg(debug_assertions)]
    #[arg(long, hide = true, value_name = "SECONDS", allow_hyphen_values = true)]
    test_clock_offset: Option<i64>,
    /// Tests only, and only in debug builds: kill the process with SIGKILL the Nth time it
    /// passes POINT of the store's write steps (see `mdimap::maildir::crash::POINTS`).
    #[cfg(debug_assertions)]
    #[arg(long, hide = true, value_name = "POINT:N")]
    test_crash_at: Option<String>,
}

fn main() {
    let args = Args::parse();
    #[cfg(debug_assertions)]
    if let Some(spec) = &args.test_crash_at
        && !mdimap::maildir::crash::arm(spec)
    {
        eprintln!("mdimapd: --test-crash-at takes POINT:N, not {spec:?}");
        std::process::exit(2);
    }
    let status = mdimap::server::run(mdimap::server::Options {
        config: args.config,
        preauth: args.preauth,
        maildir: args.maildir,
        userfile: args.userfile,
        log_stderr: args.log_stderr,
        tls: args.tls,
        #[cfg(debug_assertions)]
        test_clock_offset: args.test_clock_offset.unwrap_or(0),
        #[cfg(not(debug_assertions))]
        test_clock_offset: 0,
    });
    std::process::exit(status);
}
