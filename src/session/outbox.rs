//! Courier's outbox (OUTBOX=.Outbox, advertised as `XCOURIEROUTBOX=INBOX.Outbox`): a message
//! APPENDed, COPYed or MOVEd into the outbox folder is also handed to SENDMAIL, as
//! `SENDMAIL -oi -t -f <sender>` with the message on standard input, the HEADERFROM header
//! (`X-IMAP-Sender: <sender>` in Courier's file) put on top of the sent copy only. The
//! sender is the login name (Courier's `AUTHENTICATED`; mdimap has no `AUTHADDR`). The
//! message is stored as well, exactly as received; when SENDMAIL fails (cannot start, exits
//! non-zero, is killed, or takes longer than [`SEND_TIMEOUT`]) nothing is stored and the
//! client gets `NO [ALERT] Unable to send E-mail message.` (courier-imap `imap/outbox.c`,
//! `store_mailbox` and `do_copy_message` in `imap/imapd.c`).
//!
//! Owns deciding whether a folder is the outbox and running SENDMAIL for one message. It
//! stores nothing itself: the store shows it each message before placing any
//! ([`BeforePlacing`]), so a refusal leaves nothing behind. SENDMAIL runs as the mail user
//! (the session has dropped its privileges), with an empty environment, no shell, and what it
//! says (its standard output and error, at most [`MAX_REPORT`] bytes) going to the log, as
//! Courier logs it; the client is never shown it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Completion, store_error};
use crate::logtext::escape;
use crate::maildir::{BeforePlacing, StoreError, canonical_name};
use crate::protocol::response::Code;

/// How long SENDMAIL may take for one message before it is killed and the message refused.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// How much of what SENDMAIL says is kept for the log (Courier keeps 512 characters).
pub const MAX_REPORT: usize = 512;

/// The outbox settings of a session.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The outbox's IMAP name (`INBOX.Outbox` for OUTBOX=.Outbox).
    pub folder: String,
    /// SENDMAIL.
    pub sendmail: PathBuf,
    /// HEADERFROM; `None`: no header is added.
    pub header_from: Option<String>,
    /// The envelope sender and HEADERFROM value: the login name.
    pub sender: String,
    /// OUTBOX_MULTIPLE_SEND: a COPY may send more than one message.
    pub multiple_send: bool,
}

impl Outbox {
    /// The outbox for OUTBOX=`dir` (`.Outbox`).
    pub fn new(
        dir: &str,
        sendmail: PathBuf,
        header_from: Option<String>,
        sender: String,
        multiple_send: bool,
    ) -> Outbox {
        Outbox {
            folder: format!("INBOX{dir}"),
            sendmail,
            header_from,
            sender,
            multiple_send,
        }
    }

    /// True when the store name `name` is the outbox.
    pub fn is_outbox(&self, name: &str) -> bool {
        match (canonical_name(name), canonical_name(&self.folder)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    /// The answer to a COPY or MOVE of `count` messages into the outbox, when refused.
    pub fn refuse_count(&self, count: usize) -> Option<Completion> {
        (count > 1 && !self.multiple_send)
            .then(|| Completion::no_code(Code::Alert, "Only one message may be sent at a time."))
    }

    /// Runs `deliver` with a [`BeforePlacing`] that sends each message before any is placed:
    /// the delivery's result, or the answer for the client when sending or storing failed.
    pub fn deliver_sending<T>(
        &self,
        deliver: impl FnOnce(BeforePlacing<'_>) -> Result<T, StoreError>,
    ) -> Result<T, Completion> {
        let mut failed = false;
        let mut send = |message: File| {
            self.send(message).map_err(|why| {
                failed = true;
                log::error!(
                    "error sending a message, user={}: {}",
                    escape(self.sender.as_bytes()),
                    escape(why.as_bytes())
                );
                StoreError::Cannot("sending failed".to_string())
            })
        };
        let result = deliver(&mut send);
        match result {
            Ok(r) => Ok(r),
            Err(_) if failed => Err(Completion::no_code(
                Code::Alert,
                "Unable to send E-mail message.",
            )),
            Err(e) => Err(store_error(&e)),
        }
    }

    /// Hands `message` to SENDMAIL; `Err` says why it was not sent, for the log.
    pub fn send(&self, message: File) -> Result<(), String> {
        let program = self.sendmail.display().to_string();
        let mut command = Command::new(&self.sendmail);
        command.arg("-oi").arg("-t");
        if !self.sender.is_empty() {
            command.arg("-f").arg(&self.sender);
        }
        let (reader, writer) = io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
        let writer_too = writer
            .try_clone()
            .map_err(|e| format!("cannot make a pipe: {e}"))?;
        command
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(writer)
            .stderr(writer_too);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        // Our copies of the write end went into `command`; drop it so only the child holds them.
        drop(command);
        let header = match &self.header_from {
            Some(name) if !self.sender.is_empty() => format!("{name}: {}\n", self.sender),
            _ => String::new(),
        };
        let mut report = Report::new(reader);
        let started = Instant::now();
        let status = std::thread::scope(|scope| {
            // The message goes in from a thread of its own: SENDMAIL may complain before it
            // has read all its input, and neither side may wait for the other.
            if let Some(mut stdin) = child.stdin.take() {
                let mut message = message;
                scope.spawn(move || {
                    let _ = stdin
                        .write_all(header.as_bytes())
                        .and_then(|()| io::copy(&mut message, &mut stdin).map(drop));
                    // Dropping stdin closes it: end of the message.
                });
            }
            let mut pause = Duration::from_millis(2);
            loop {
                report.drain();
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) => {}
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(format!("cannot wait for {program}: {e}"));
                    }
                }
                if started.elapsed() >= SEND_TIMEOUT {
                    // The writer sees the pipe break and ends.
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "{program} did not finish within {} seconds and was killed",
                        SEND_TIMEOUT.as_secs()
                    ));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        })?;
        report.drain();
        if status.success() {
            return Ok(());
        }
        let said = report.text();
        Err(match (said.is_empty(), status.signal()) {
            (false, _) => said,
            (true, Some(signal)) => format!("{program} terminated with signal {signal}"),
            (true, None) => format!(
                "{program} exited with status {} without saying why",
                status.code().unwrap_or(-1)
            ),
        })
    }
}

/// What SENDMAIL writes to its standard output and error, read without waiting (a program
/// it leaves running may hold the pipe open), the first [`MAX_REPORT`] bytes kept.
struct Report {
    pipe: io::PipeReader,
    kept: Vec<u8>,
}

impl Report {
    fn new(pipe: io::PipeReader) -> Report {
        let _ = nix::fcntl::fcntl(
            &pipe,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        Report {
            pipe,
            kept: Vec::new(),
        }
    }

    /// Reads what is there now, so the writer never blocks on a full pipe.
    fn drain(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.pipe.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    let room = MAX_REPORT.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// One line for the log: line ends and other control characters become `/`, as
    /// Courier shows them.
    fn text(&self) -> String {
        let bytes: Vec<u8> = self
            .kept
            .iter()
            .map(|&b| if b < b' ' { b'/' } else { b })
            .collect();
        String::from_utf8_lossy(&bytes)
            .trim_end_matches('/')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> PathBuf {
        let path = dir.join("sendmail");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn outbox(sendmail: PathBuf) -> Outbox {
        Outbox::new(
            ".Outbox",
            sendmail,
            Some("X-IMAP-Sender".into()),
            "alice".into(),
            false,
        )
    }

    fn message(dir: &std::path::Path, text: &str) -> File {
        let path = dir.join("message");
        std::fs::write(&path, text).unwrap();
        File::open(path).unwrap()
    }

    #[test]
    fn names_the_outbox() {
        let o = outbox(PathBuf::from("/bin/true"));
        assert_eq!(o.folder, "INBOX.Outbox");
        assert!(o.is_outbox("INBOX.Outbox") && o.is_outbox("inbox.Outbox"));
        assert!(!o.is_outbox("INBOX.outbox") && !o.is_outbox("INBOX"));
        assert!(o.refuse_count(1).is_none() && o.refuse_count(2).is_some());
    }

    #[test]
    fn sends_with_the_sender_header_and_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sendmail = script(
            dir.path(),
            &format!(
                "echo \"$*\" > {0}.args; env > {0}.env; cat > {0}",
                out.display()
            ),
        );
        let o = outbox(sendmail);
        o.send(message(dir.path(), "To: b@example.com\n\nhi\n"))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "X-IMAP-Sender: alice\nTo: b@example.com\n\nhi\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.args")).unwrap(),
            "-oi -t -f alice\n"
        );
        let env = std::fs::read_to_string(dir.path().join("out.env")).unwrap();
        assert!(!env.contains("HOME="), "{env}");
    }

    #[test]
    fn failure_reports_what_sendmail_said() {
        let dir = tempfile::tempdir().unwrap();
        let o = outbox(script(
            dir.path(),
            "cat >/dev/null; echo 'relay refused' >&2; echo more; exit 75",
        ));
        let why = o.send(message(dir.path(), "x\n")).unwrap_err();
        assert_eq!(why, "relay refused/more");
        let o = outbox(script(dir.path(), "exit 1"));
        let why = o.send(message(dir.path(), "x\n")).unwrap_err();
        assert!(why.contains("status 1"), "{why}");
        let o = outbox(dir.path().join("missing"));
        assert!(o.send(message(dir.path(), "x\n")).is_err());
    }

    #[test]
    fn a_large_message_and_a_talkative_sendmail_do_not_wait_for_each_other() {
        let dir = tempfile::tempdir().unwrap();
        // Says a lot before reading anything.
        let o = outbox(script(
            dir.path(),
            "yes complaint | head -c 200000 >&2; cat >/dev/null; exit 1",
        ));
        let big = "x".repeat(1 << 20) + "\n";
        let why = o.send(message(dir.path(), &big)).unwrap_err();
        assert!(why.starts_with("complaint/complaint"), "{why}");
        assert!(why.len() <= MAX_REPORT, "{}", why.len());
    }
}
