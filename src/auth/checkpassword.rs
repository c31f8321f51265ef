//! The qmail checkpassword interface (<https://cr.yp.to/checkpwd/interface.html>): run an
//! administrator's program that verifies a password and learn the answer from its exit
//! status.
//!
//! The program is run as `program args... /bin/true`. It reads `user\0password\0timestamp\0`
//! from file descriptor 3 (then end of file) and, when the password is right, runs its last
//! argument, the subprogram, usually after becoming the user; `/bin/true` then exits 0.
//! Exit 0 means accepted, 111 a temporary failure (unavailable), any other status
//! rejected. A program that has not finished after `TIMEOUT` is killed and counts as
//! unavailable.
//!
//! The identity the program may have switched to is not visible to the caller, so after
//! exit 0 the mail user is the system account of the same name (getpwnam: uid, gid, home,
//! maildir `home/Maildir`). A name getpwnam does not know is "unknown" and the program is
//! not run, since no mail user could be made for it.
//!
//! The child gets /dev/null on descriptors 0 and 1 (in mdimapd those are the client's
//! socket) and a pipe on 2, whose first lines are logged on failure with any copy of the
//! password removed. This module never logs the password itself.

use super::secret::scrub;
use super::{AuthError, Verdict, system_user};
use crate::logtext::escape;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the program may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The subprogram run on success; it only has to exit 0.
const SUBPROGRAM: &str = "/bin/true";

/// The interface lets checkpassword read at most 512 bytes.
const MAX_INPUT: usize = 512;

/// The file descriptor the interface reads from.
const INPUT_FD: i32 = 3;

/// How much of the program's standard error is kept for the log.
const MAX_STDERR: usize = 2048;

/// Check `password` for `user` with the checkpassword program.
pub(crate) fn authenticate(
    program: &Path,
    args: &[String],
    user: &str,
    password: &[u8],
) -> Result<Verdict, AuthError> {
    authenticate_within(program, args, user, password, TIMEOUT)
}

pub(crate) fn authenticate_within(
    program: &Path,
    args: &[String],
    user: &str,
    password: &[u8],
    timeout: Duration,
) -> Result<Verdict, AuthError> {
    let Some(mail_user) = system_user(user)? else {
        return Ok(Verdict::UnknownUser);
    };
    if password.contains(&0) {
        return Ok(Verdict::Rejected("the password contains NUL".to_string()));
    }
    let mut input = Vec::with_capacity(user.len() + password.len() + 40);
    input.extend_from_slice(user.as_bytes());
    input.push(0);
    input.extend_from_slice(password);
    input.push(0);
    input.extend_from_slice(timestamp().as_bytes());
    input.push(0);
    if input.len() > MAX_INPUT {
        scrub(&mut input);
        return Ok(Verdict::Rejected(format!(
            "user name and password are longer than the {MAX_INPUT} bytes the checkpassword \
             interface allows"
        )));
    }
    let status = run(program, args, &input, timeout, password);
    scrub(&mut input);
    match status? {
        0 => Ok(Verdict::Accepted(mail_user)),
        111 => Err(AuthError::Unavailable(format!(
            "{} reports a temporary failure (exit 111)",
            program.display()
        ))),
        code => Ok(Verdict::Rejected(format!(
            "{} exited with status {code}",
            program.display()
        ))),
    }
}

/// Run the program with `input` on descriptor 3 and wait for it, at most `timeout`; its
/// exit status. Abnormal ends (signal, timeout, cannot start) are `Unavailable`.
fn run(
    program: &Path,
    args: &[String],
    input: &[u8],
    timeout: Duration,
    password: &[u8],
) -> Result<i32, AuthError> {
    let unavailable = |what: String| {
        AuthError::Unavailable(format!("checkpassword {}: {what}", program.display()))
    };
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| unavailable(format!("cannot make a pipe: {e}")))?;
    // The input fits in the pipe buffer (at most 512 bytes), so it is written before the
    // child starts: no blocking and no SIGPIPE if the program ignores descriptor 3.
    {
        let mut writer = std::fs::File::from(write_end);
        writer
            .write_all(input)
            .map_err(|e| unavailable(format!("cannot write to the pipe: {e}")))?;
    }
    let mut command = Command::new(program);
    command
        .args(args)
        .arg(SUBPROGRAM)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let read_fd = read_end.as_raw_fd();
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if read_fd == INPUT_FD {
                // Already in place; just let it survive exec.
                if libc::fcntl(read_fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(read_fd, INPUT_FD) == -1 {
                // dup2 clears close-on-exec on the new descriptor.
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| unavailable(format!("cannot run it: {e}")))?;
    drop::<OwnedFd>(read_end);
    let stderr = child.stderr.take();
    if let Some(stderr) = &stderr {
        // Read what is there once the child is gone; a grandchild holding the pipe open must
        // not block us.
        let _ = nix::fcntl::fcntl(
            stderr,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(unavailable(format!("cannot wait for it: {e}"))),
        }
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(unavailable(format!(
                "did not finish within {} seconds and was killed",
                timeout.as_secs_f32()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    };
    let message = stderr
        .map(|s| read_message(s, password))
        .unwrap_or_default();
    match status.code() {
        Some(code) => {
            if code != 0 && !message.is_empty() {
                log::warn!(
                    "checkpassword {} (exit {code}) said: {}",
                    escape(program.as_os_str().as_bytes()),
                    escape(message.as_bytes())
                );
            }
            Ok(code)
        }
        None => Err(unavailable(format!(
            "was killed by signal {}{}",
            status.signal().unwrap_or(0),
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ))),
    }
}

/// The program's diagnostics, one line, without any copy of the password.
fn read_message(mut stderr: std::process::ChildStderr, password: &[u8]) -> String {
    let mut buffer = vec![0u8; MAX_STDERR];
    let mut filled = 0;
    while filled < buffer.len() {
        match stderr.read(&mut buffer[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    buffer.truncate(filled);
    redact(&buffer, password)
}

/// `text` as one printable line with every occurrence of `password` replaced.
fn redact(text: &[u8], password: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if !password.is_empty() && rest.starts_with(password) {
            out.extend_from_slice(b"[password]");
            rest = &rest[password.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    String::from_utf8_lossy(&out)
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// qmail-popup's timestamp form, `<pid.time@host>`.
fn timestamp() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string());
    format!("<{}.{seconds}@{host}>", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    struct Script {
        dir: PathBuf,
        path: PathBuf,
    }

    impl Script {
        fn new(tag: &str, body: &str) -> Script {
            let dir = std::env::temp_dir()
                .join(format!("mdimap-checkpw-test-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("checkpw");
            std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Script { dir, path }
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Accepts root/right; records its arguments and what it read on fd 3.
    const RECORDING: &str = r#"dir=$(dirname "$0")
printf '%s\n' "$@" > "$dir/args"
cat <&3 > "$dir/input"
user=$(tr '\0' '\n' < "$dir/input" | sed -n 1p)
pass=$(tr '\0' '\n' < "$dir/input" | sed -n 2p)
# The subprogram is the last argument.
for last; do :; done
if [ "$user" = root ] && [ "$pass" = right ]; then exec "$last"; fi
echo "bad password $pass for $user" >&2
exit 1
"#;

    #[test]
    fn protocol_on_descriptor_3_and_arguments() {
        let s = Script::new("proto", RECORDING);
        let args = vec!["-s".to_string(), "imap".to_string()];
        match authenticate(&s.path, &args, "root", b"right").unwrap() {
            Verdict::Accepted(u) => {
                assert_eq!((u.uid, u.gid), (0, 0));
                assert_eq!(u.maildir, PathBuf::from("/root/Maildir"));
            }
            other => panic!("expected Accepted, got {other:?}"),
        }
        let argv = std::fs::read_to_string(s.dir.join("args")).unwrap();
        assert_eq!(argv, "-s\nimap\n/bin/true\n");
        let input = std::fs::read(s.dir.join("input")).unwrap();
        let fields: Vec<&[u8]> = input.split(|&b| b == 0).collect();
        assert_eq!(fields.len(), 4, "{input:?}");
        assert_eq!(fields[0], b"root");
        assert_eq!(fields[1], b"right");
        assert!(fields[2].starts_with(b"<") && fields[2].ends_with(b">"));
        assert_eq!(fields[3], b"");
        match authenticate(&s.path, &args, "root", b"wrong").unwrap() {
            Verdict::Rejected(why) => {
                assert!(why.contains("status 1"), "{why}");
                assert!(!why.contains("wrong"));
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
    }

    #[test]
    fn exit_111_and_signals_are_unavailable() {
        let s = Script::new("temp", "exit 111\n");
        assert!(matches!(
            authenticate(&s.path, &[], "root", b"x"),
            Err(AuthError::Unavailable(_))
        ));
        let s = Script::new("signal", "kill -9 $$\n");
        assert!(matches!(
            authenticate(&s.path, &[], "root", b"x"),
            Err(AuthError::Unavailable(_))
        ));
    }

    #[test]
    fn slow_program_is_killed() {
        // The program would run for an hour. An answer within the guard below
        // (which only turns a hang into a failure) therefore means it was
        // killed and reaped: authenticate waits for its exit before answering.
        let s = Script::new("slow", "exec sleep 3600\n");
        let path = s.path.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let verdict = authenticate_within(&path, &[], "root", b"x", Duration::from_millis(300));
            let _ = tx.send(verdict);
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Err(AuthError::Unavailable(why))) => assert!(why.contains("killed"), "{why}"),
            Ok(other) => panic!("expected Unavailable, got {other:?}"),
            Err(_) => panic!("the program was not stopped: no verdict within 60 s"),
        }
    }

    #[test]
    fn missing_program_is_unavailable() {
        assert!(matches!(
            authenticate(Path::new("/nonexistent/checkpassword"), &[], "root", b"x"),
            Err(AuthError::Unavailable(_))
        ));
    }

    #[test]
    fn unknown_system_user_does_not_run_the_program() {
        let s = Script::new("unknown", "touch \"$(dirname \"$0\")/ran\"; exit 0\n");
        assert!(matches!(
            authenticate(&s.path, &[], "no-such-user-mdimap-test", b"x"),
            Ok(Verdict::UnknownUser)
        ));
        assert!(!s.dir.join("ran").exists());
    }

    #[test]
    fn oversized_input_is_rejected() {
        let s = Script::new("big", "exit 0\n");
        let long = vec![b'a'; 600];
        assert!(matches!(
            authenticate(&s.path, &[], "root", &long),
            Ok(Verdict::Rejected(_))
        ));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact(b"bad password hunter2 for x\nline 2\n", b"hunter2"),
            "bad password [password] for x / line 2"
        );
        assert_eq!(redact(b"plain", b""), "plain");
    }
}
