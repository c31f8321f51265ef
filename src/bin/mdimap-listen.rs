//! mdimap-listen: accepts IMAP connections and starts one mdimapd per connection.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use mdimap::config::Config;

/// Listens for IMAP connections and runs mdimapd for each, with the socket on
/// fd 0/1 and an environment of PATH, TZ, PROTO and
/// TCPREMOTEIP/TCPREMOTEPORT/TCPLOCALIP/TCPLOCALPORT only.
#[derive(Parser, Debug)]
#[command(name = "mdimap-listen", version, about, long_about = None)]
struct Args {
    /// Configuration file (default /etc/mdimap/mdimapd.conf when it exists);
    /// also passed on to mdimapd.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address and port to listen on, e.g. 127.0.0.1:143 or [::1]:143.
    /// Repeatable; overrides ADDRESS and PORT from the configuration.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Address and port for implicit TLS (like port 993). Repeatable;
    /// overrides SSLADDRESS and SSLPORT from the configuration.
    #[arg(long, value_name = "ADDR:PORT")]
    listen_tls: Vec<SocketAddr>,
    /// Log to standard error instead of syslog (also for the sessions).
    #[arg(long)]
    log_stderr: bool,
    /// Seconds a trusted proxy (MDIMAP_PROXY_TRUSTED) may take to send the
    /// PROXY header of a connection before it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    proxy_timeout: u64,
}

fn load(path: &Option<PathBuf>) -> Result<Config, String> {
    let path = match path {
        Some(p) => p.clone(),
        None if std::path::Path::new(mdimap::server::DEFAULT_CONFIG).exists() => {
            PathBuf::from(mdimap::server::DEFAULT_CONFIG)
        }
        None => return Ok(Config::default()),
    };
    let (config, warnings) = Config::load(&path).map_err(|e| e.to_string())?;
    for w in warnings {
        eprintln!("mdimap-listen: {w}");
    }
    Ok(config)
}

fn limits_of(config: &Config) -> mdimap::server::listen::ListenLimits {
    mdimap::server::listen::ListenLimits {
        max_daemons: config.max_daemons as usize,
        max_per_ip: config.max_per_ip as usize,
        proxy_trusted: config.proxy_trusted.clone(),
    }
}

fn main() {
    let args = Args::parse();
    mdimap::server::logging::init("mdimap-listen", args.log_stderr);
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mdimap-listen: {e}");
            std::process::exit(1);
        }
    };
    let mut listen: Vec<(SocketAddr, bool)> = args.listen.iter().map(|a| (*a, false)).collect();
    listen.extend(args.listen_tls.iter().map(|a| (*a, true)));
    if listen.is_empty() {
        let ssl_addresses = config
            .ssl_addresses
            .clone()
            .unwrap_or_else(|| config.addresses.clone());
        for (addresses, ports, tls) in [
            (&config.addresses, &config.ports, false),
            (&ssl_addresses, &config.ssl_ports, true),
        ] {
            for a in addresses {
                let Ok(ip) = a.parse::<IpAddr>() else {
                    eprintln!("mdimap-listen: {a} is not an IP address (ADDRESS/SSLADDRESS)");
                    std::process::exit(1);
                };
                for &p in ports {
                    listen.push((SocketAddr::new(ip, p), tls));
                }
            }
        }
    }
    let mdimapd = config.mdimapd.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("mdimapd")))
            .unwrap_or_else(|| PathBuf::from("mdimapd"))
    });
    let opts = mdimap::server::listen::ListenOptions {
        config: args.config.clone(),
        listen,
        mdimapd,
        log_stderr: args.log_stderr,
        proxy_timeout: std::time::Duration::from_secs(args.proxy_timeout),
        limits: limits_of(&config),
    };
    let config_path = args.config.clone();
    let status = mdimap::server::listen::run(opts, move || match load(&config_path) {
        Ok(c) => Some(limits_of(&c)),
        Err(e) => {
            log::error!("SIGHUP: keeping the old configuration: {e}");
            None
        }
    });
    std::process::exit(status);
}
