//! Where log lines go: syslog (facility mail), as an administrator of a mail
//! server expects, or stderr for tests and foreground runs.
//!
//! Text that came from outside (a user name, a user-file entry, a backend's
//! answer) goes through [`crate::logtext::escape`] where it is logged, so that
//! nobody can forge a field. Behind that, every line passes
//! [`crate::logtext::confine`] here on its way out: whatever a caller forgot,
//! no line carries a byte that is not printable ASCII or grows without bound.

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

use crate::logtext;

/// A logger that hands each message, confined, to `inner`.
struct Confined<L> {
    inner: L,
}

impl<L: Log> Log for Confined<L> {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }
    fn log(&self, record: &Record) {
        let message = record.args().to_string();
        let message = logtext::confine(&message);
        self.inner.log(
            &Record::builder()
                .args(format_args!("{message}"))
                .level(record.level())
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }
    fn flush(&self) {
        self.inner.flush();
    }
}

struct StderrLogger {
    program: &'static str,
    /// The process id when the logger was installed, as syslog's is: the
    /// login process logs under the id of the connection's mdimapd, so that
    /// every line of one connection carries one id.
    pid: u32,
}

impl Log for StderrLogger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, record: &Record) {
        let line = format!(
            "{}[{}]: {}: {}\n",
            self.program,
            self.pid,
            record.level(),
            record.args()
        );
        // One write call per line, so lines of concurrent sessions sharing a
        // stderr do not interleave.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    fn flush(&self) {}
}

/// Installs the logger once per process. Falls back to stderr when syslog
/// cannot be reached.
pub fn init(program: &'static str, to_stderr: bool) {
    if !to_stderr {
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_MAIL,
            hostname: None,
            process: program.into(),
            pid: std::process::id(),
        };
        if let Ok(logger) = syslog::unix(formatter)
            && log::set_boxed_logger(Box::new(Confined {
                inner: syslog::BasicLogger::new(logger),
            }))
            .is_ok()
        {
            log::set_max_level(LevelFilter::Info);
            return;
        }
    }
    if log::set_boxed_logger(Box::new(Confined {
        inner: StderrLogger {
            program,
            pid: std::process::id(),
        },
    }))
    .is_ok()
    {
        log::set_max_level(LevelFilter::Info);
    }
}
