//! Where log lines go: syslog (facility mail), as an administrator of a mail
//! server expects, or stderr for tests and foreground runs.
//!
//! Text that came from a client (a user name, say) goes through
//! [`escape`] first, so nobody can forge a log line.

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    program: &'static str,
}

impl Log for StderrLogger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, record: &Record) {
        let line = format!(
            "{}[{}]: {}: {}\n",
            self.program,
            std::process::id(),
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
            && log::set_boxed_logger(Box::new(syslog::BasicLogger::new(logger))).is_ok()
        {
            log::set_max_level(LevelFilter::Info);
            return;
        }
    }
    if log::set_boxed_logger(Box::new(StderrLogger { program })).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Makes client-supplied text safe for one log line: control characters,
/// backslashes and non-ASCII bytes become `\xNN`, and the length is capped.
pub fn escape(s: &[u8]) -> String {
    let mut out = String::new();
    for &b in s.iter().take(256) {
        if (0x20..0x7f).contains(&b) && b != b'\\' && b != b'[' && b != b']' && b != b',' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if s.len() > 256 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_forgery_attempts() {
        assert_eq!(
            super::escape(b"bob\nLOGIN, user=root"),
            "bob\\x0aLOGIN\\x2c user=root"
        );
        assert_eq!(super::escape(b"a]b"), "a\\x5db");
    }
}
