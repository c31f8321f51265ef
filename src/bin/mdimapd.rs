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
}

fn main() {
    let args = Args::parse();
    let status = mdimap::server::run(mdimap::server::Options {
        config: args.config,
        preauth: args.preauth,
        maildir: args.maildir,
        userfile: args.userfile,
        log_stderr: args.log_stderr,
        tls: args.tls,
    });
    std::process::exit(status);
}
