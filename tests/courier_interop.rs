//! Interoperability with the real Courier-IMAP server (`imapd` from the Debian
//! package courier-imap) on one shared maildir. Courier and mdimapd take turns
//! (or run side by side) on the same files, and each must see exactly what the
//! other wrote: UIDVALIDITY, UIDNEXT, UIDs, flags, keywords, sizes, internal
//! dates, message bytes, folders, subscriptions and access control lists.
//!
//! This file owns only the client side and the comparisons. It must not
//! reimplement either server: every expectation is what Courier itself said
//! about the same maildir, or a plain reading of the files on disk.
//!
//! Both servers run as the invoking user in "shell invocation" mode (PREAUTH on
//! stdin/stdout, Courier's maildir given relative to the working directory), both
//! with Courier's own `/etc/courier/imapd` (sourced by the shell for Courier, as
//! its rc script does; `--config` for mdimapd, which accepts Courier's keys).
//! A missing Courier `imapd` is a failure with instructions, never a skip, and
//! every read has a timeout so a hung server fails a test instead of hanging CI.

mod common;

use common::{base_of, expand_set, files};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one response may take before the test fails (a guard against a
/// hang only, far beyond what an answer takes on a loaded machine).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after its LOGOUT completed (likewise).
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Courier's configuration, a shell fragment of `NAME=value` lines.
const COURIER_CONFIG: &str = "/etc/courier/imapd";
/// Where Debian and upstream builds put the real `imapd` program (Debian's
/// `/usr/sbin/imapd` is the rc script, not the server).
const COURIER_IMAPD: &[&str] = &[
    "/usr/bin/imapd",
    "/usr/lib/courier/imapd",
    "/usr/lib/courier-imap/bin/imapd",
];

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_number() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// Scratch directories and deliveries
// ---------------------------------------------------------------------------

/// A directory under the system temp dir, removed on drop unless the test is
/// failing (then kept, and its path printed, so the maildir can be inspected).
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "mdimap-courier-{}-{}-{name}",
            std::process::id(),
            next_number()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }

    /// `<scratch>/Maildir`, made by `mdimap maildirmake`.
    fn maildir(&self) -> PathBuf {
        let maildir = self.path.join("Maildir");
        let out = Command::new(env!("CARGO_BIN_EXE_mdimap"))
            .arg("maildirmake")
            .arg(&maildir)
            .output()
            .expect("cannot run mdimap maildirmake");
        assert!(
            out.status.success(),
            "mdimap maildirmake {} failed: {}",
            maildir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        for sub in ["cur", "new", "tmp"] {
            assert!(
                maildir.join(sub).is_dir(),
                "mdimap maildirmake made no {sub}/"
            );
        }
        maildir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A fixed point in time, so INTERNALDATE (the file's mtime) is predictable.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Delivers `content` as an MTA does: written to `tmp/name`, mtime set, renamed
/// to `new/name`.
fn deliver(folder: &Path, name: &str, content: &[u8], mtime: SystemTime) -> PathBuf {
    let tmp = folder.join("tmp").join(name);
    fs::write(&tmp, content).unwrap();
    fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let dest = folder.join("new").join(name);
    fs::rename(&tmp, &dest).unwrap();
    dest
}

/// An RFC 5322 message with LF line ends, as it sits in a maildir.
/// `n` messages an MTA delivered into new/ at `t0`, Postfix-named a second apart, with
/// the subjects `<subject> 0`, `<subject> 1`, ... and one body.
fn deliver_from_mta(maildir: &Path, t0: u64, n: u32, subject: &str, body: &str) {
    for i in 0..n {
        let content = mta_message(&format!("{subject} {i}"), body);
        deliver(
            maildir,
            &postfix_name(t0 + u64::from(i), i),
            &content,
            at(t0),
        );
    }
}

fn mta_message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Return-Path: <alice@example.org>\nFrom: Alice Example <alice@example.org>\nTo: bob@example.net\n\
         Subject: {subject}\nDate: Mon, 7 Aug 2023 10:00:00 +0000\nMessage-ID: <{}.{}@test.example>\n\
         MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}\n",
        std::process::id(),
        next_number()
    )
    .into_bytes()
}

/// A message as an IMAP client sends it in APPEND (CRLF line ends).
fn client_message(subject: &str, body: &str) -> Vec<u8> {
    String::from_utf8(mta_message(subject, body))
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes()
}

/// A Postfix-style unique name (no size in it).
fn postfix_name(secs: u64, n: u32) -> String {
    format!("{secs}.V803I{:x}M{:06}.mail.example", 0x2a00 + n, 100 + n)
}

/// A maildrop/Courier-style unique name with `,S=<size>`.
fn courier_style_name(secs: u64, n: u32, size: usize) -> String {
    format!(
        "{secs}.M{:06}P{}V0000000000000803I{:016X}.mail.example,S={size}",
        200 + n,
        4000 + n,
        0x9000 + n
    )
}

// ---------------------------------------------------------------------------
// The two servers, as child processes on pipes
// ---------------------------------------------------------------------------

/// The real Courier `imapd`, or a failure saying how to install it.
fn courier_imapd() -> &'static str {
    for candidate in COURIER_IMAPD {
        if Path::new(candidate).is_file() {
            assert!(
                Path::new(COURIER_CONFIG).is_file(),
                "{candidate} exists but {COURIER_CONFIG} is missing; reinstall the Debian package courier-imap"
            );
            return candidate;
        }
    }
    panic!(
        "Courier-IMAP's imapd is not installed (looked for {COURIER_IMAPD:?}); these interop tests need it. \
         Install the Debian package: DEBIAN_FRONTEND=noninteractive apt-get install -y courier-imap \
         (./test.sh does this when run as root)"
    );
}

/// What one server answered to one command.
#[derive(Debug)]
struct Reply {
    /// The command, for failure messages.
    command: String,
    untagged: Vec<Vec<u8>>,
    tagged: String,
}

impl Reply {
    fn is_ok(&self) -> bool {
        self.tagged
            .split(' ')
            .nth(1)
            .is_some_and(|s| s.eq_ignore_ascii_case("OK"))
    }

    fn text(&self) -> String {
        let mut s = String::new();
        for u in &self.untagged {
            s.push_str(&String::from_utf8_lossy(u));
            s.push('\n');
        }
        s.push_str(&self.tagged);
        s
    }

    /// The numbers or sets of response code `[NAME ...]` in any line.
    fn code(&self, name: &str) -> Option<Vec<String>> {
        let needle = format!("[{name} ");
        let lines = self
            .untagged
            .iter()
            .map(|u| String::from_utf8_lossy(u).into_owned());
        for line in lines.chain(std::iter::once(self.tagged.clone())) {
            let upper = line.to_ascii_uppercase();
            if let Some(i) = upper.find(&needle) {
                let rest = &line[i + needle.len()..];
                let end = rest.find(']').unwrap_or(rest.len());
                return Some(rest[..end].split_whitespace().map(str::to_string).collect());
            }
        }
        None
    }

    fn code_number(&self, name: &str) -> Option<u32> {
        self.code(name)
            .and_then(|v| v.first().and_then(|n| n.parse().ok()))
    }

    /// `* <n> <WORD>` responses (EXISTS, EXPUNGE, RECENT).
    fn numbered(&self, word: &str) -> Vec<u32> {
        self.untagged
            .iter()
            .filter_map(|u| {
                let s = String::from_utf8_lossy(u);
                let mut it = s.split(' ');
                (it.next() == Some("*"))
                    .then(|| it.next().and_then(|n| n.parse().ok()))
                    .flatten()
                    .filter(|_| it.next().is_some_and(|w| w.eq_ignore_ascii_case(word)))
            })
            .collect()
    }
}

/// One server process talking IMAP on its stdin/stdout, with a thread draining
/// stdout into a channel so every read can time out.
struct Imap {
    who: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    log: PathBuf,
    tags: u32,
}

impl Imap {
    /// Courier `imapd Maildir` in `scratch`, configured by /etc/courier/imapd.
    fn courier(scratch: &Scratch) -> Imap {
        Imap::courier_with(scratch, "")
    }

    /// As [`Imap::courier`], with `settings` (shell assignments, `KEY='value'`) after
    /// Courier's configuration.
    fn courier_with(scratch: &Scratch, settings: &str) -> Imap {
        let imapd = courier_imapd();
        let mut cmd = Command::new("/bin/sh");
        // `set -a` exports every key of the shell fragment, as Courier's rc script does.
        cmd.arg("-c")
            .arg(r#"set -a; . "$1"; eval "$3"; set +a; exec "$2" Maildir"#)
            .arg("courier-imapd")
            .arg(COURIER_CONFIG)
            .arg(imapd)
            .arg(settings)
            .current_dir(&scratch.path);
        // Without IMAPLOGINTAG imapd is a shell invocation (PREAUTH, invoking user).
        for var in [
            "IMAPLOGINTAG",
            "AUTHENTICATED",
            "MAILDIR",
            "IMAP_BROKENUIDV",
            "IMAPDEBUGFILE",
        ] {
            cmd.env_remove(var);
        }
        Imap::spawn("Courier imapd", cmd, scratch)
    }

    /// `mdimapd --preauth --maildir <abs> --log-stderr --config /etc/courier/imapd`.
    fn mdimap(scratch: &Scratch, maildir: &Path) -> Imap {
        Imap::mdimap_args(scratch, maildir, &[])
    }

    /// As [`Imap::mdimap`], with `extra` arguments.
    fn mdimap_args(scratch: &Scratch, maildir: &Path, extra: &[&str]) -> Imap {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimapd"));
        cmd.arg("--preauth")
            .arg("--maildir")
            .arg(maildir)
            .arg("--log-stderr")
            .arg("--config")
            .arg(COURIER_CONFIG)
            .args(extra)
            .current_dir(&scratch.path);
        // The same configuration Courier gets; fail clearly if it is not there.
        courier_imapd();
        Imap::spawn("mdimapd", cmd, scratch)
    }

    /// As [`Imap::mdimap`], with `settings` (`KEY='value'` lines) after Courier's
    /// configuration, in a file of the scratch directory.
    fn mdimap_with(scratch: &Scratch, maildir: &Path, settings: &str) -> Imap {
        courier_imapd();
        let config = scratch.path.join(format!("mdimapd-{}.conf", next_number()));
        let courier = fs::read_to_string(COURIER_CONFIG).unwrap();
        fs::write(&config, format!("{courier}\n{settings}\n")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimapd"));
        cmd.arg("--preauth")
            .arg("--maildir")
            .arg(maildir)
            .arg("--log-stderr")
            .arg("--config")
            .arg(&config)
            .current_dir(&scratch.path);
        Imap::spawn("mdimapd", cmd, scratch)
    }

    fn spawn(who: &'static str, mut cmd: Command, scratch: &Scratch) -> Imap {
        let log = scratch
            .path
            .join(format!("{}-{}.log", who.replace(' ', "-"), next_number()));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {who} ({cmd:?}): {e}"));
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut chunk = [0u8; 16384];
            loop {
                match stdout.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(chunk[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        let mut imap = Imap {
            who,
            child,
            stdin,
            output: rx,
            buf: Vec::new(),
            log,
            tags: 0,
        };
        let greeting = String::from_utf8_lossy(&imap.read_response()).into_owned();
        assert!(
            greeting.starts_with("* PREAUTH"),
            "{who}: expected a PREAUTH greeting, got {greeting:?}\n{}",
            imap.log_text()
        );
        imap
    }

    fn log_text(&self) -> String {
        format!(
            "---- {} stderr ({}) ----\n{}",
            self.who,
            self.log.display(),
            fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// Waits for more output; false when the server has closed it (exited).
    fn try_fill(&mut self, deadline: Instant) -> bool {
        match self
            .output
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(chunk) => {
                self.buf.extend_from_slice(&chunk);
                true
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: no complete response within {READ_TIMEOUT:?}; unread output: {:?}\n{}",
                self.who,
                String::from_utf8_lossy(&self.buf),
                self.log_text()
            ),
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    fn try_read_line(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(line);
            }
            if !self.try_fill(deadline) {
                return None;
            }
        }
    }

    fn try_read_exact(&mut self, n: usize, deadline: Instant) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.try_fill(deadline) {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// One whole response: a line, and for each `{n}` at its end the literal and
    /// the line continuing after it. Literals stay inline as `{n}\r\n<bytes>`.
    fn read_response(&mut self) -> Vec<u8> {
        self.try_read_response().unwrap_or_else(|| {
            panic!(
                "{}: closed its output in the middle of a response; unread output: {:?}\n{}",
                self.who,
                String::from_utf8_lossy(&self.buf),
                self.log_text()
            )
        })
    }

    /// [`Imap::read_response`], or `None` when the server's output ends first (it was
    /// killed).
    fn try_read_response(&mut self) -> Option<Vec<u8>> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut out = Vec::new();
        loop {
            let line = self.try_read_line(deadline)?;
            out.extend_from_slice(&line);
            match literal_length(&line) {
                Some(n) => {
                    out.extend_from_slice(b"\r\n");
                    let literal = self.try_read_exact(n, deadline)?;
                    out.extend_from_slice(&literal);
                }
                None => return Some(out),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let who = self.who;
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{who}: input already closed"));
        if let Err(e) = stdin.write_all(bytes).and_then(|_| stdin.flush()) {
            panic!(
                "{who}: cannot write to the server: {e}\n{}",
                self.log_text()
            );
        }
    }

    fn next_tag(&mut self) -> String {
        self.tags += 1;
        format!("t{}", self.tags)
    }

    fn finish(&mut self, tag: &str, command: &str, mut untagged: Vec<Vec<u8>>) -> Reply {
        let prefix = format!("{tag} ");
        loop {
            let r = self.read_response();
            if r.starts_with(prefix.as_bytes()) {
                return Reply {
                    command: command.to_string(),
                    untagged,
                    tagged: String::from_utf8_lossy(&r).into_owned(),
                };
            }
            untagged.push(r);
        }
    }

    /// Sends one command (no literals) and returns the whole reply.
    fn command(&mut self, command: &str) -> Reply {
        let tag = self.next_tag();
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.finish(&tag, command, Vec::new())
    }

    /// Like [`Imap::command`], failing the test unless the reply is OK.
    fn ok(&mut self, command: &str) -> Reply {
        let reply = self.command(command);
        assert!(
            reply.is_ok(),
            "{}: `{}` failed:\n{}\n{}",
            self.who,
            reply.command,
            reply.text(),
            self.log_text()
        );
        reply
    }

    /// APPEND with a synchronizing literal (Courier has no LITERAL+), failing
    /// the test unless the reply is OK.
    fn append(&mut self, mailbox: &str, flags: &str, date: Option<&str>, message: &[u8]) -> Reply {
        let reply = self.try_append(mailbox, flags, date, message);
        assert!(
            reply.is_ok(),
            "{}: `{}` failed:\n{}\n{}",
            self.who,
            reply.command,
            reply.text(),
            self.log_text()
        );
        reply
    }

    /// APPEND, whatever the answer: a server may refuse before the literal
    /// (Courier, on rights) or after it.
    fn try_append(
        &mut self,
        mailbox: &str,
        flags: &str,
        date: Option<&str>,
        message: &[u8],
    ) -> Reply {
        let tag = self.next_tag();
        let date = date.map(|d| format!(" \"{d}\"")).unwrap_or_default();
        let command = format!("APPEND {mailbox} ({flags}){date} {{{}}}", message.len());
        self.send(format!("{tag} {command}\r\n").as_bytes());
        let mut untagged = Vec::new();
        loop {
            let r = self.read_response();
            if r.starts_with(b"+") {
                break;
            }
            if r.starts_with(format!("{tag} ").as_bytes()) {
                return Reply {
                    command,
                    untagged,
                    tagged: String::from_utf8_lossy(&r).into_owned(),
                };
            }
            untagged.push(r);
        }
        let mut data = message.to_vec();
        data.extend_from_slice(b"\r\n");
        self.send(&data);
        self.finish(&tag, &command, untagged)
    }

    /// LOGOUT, then waits for the process to exit so the next server starts on
    /// a maildir nobody else is writing.
    fn logout(mut self) {
        let reply = self.ok("LOGOUT");
        assert!(
            reply.untagged.iter().any(|u| u.starts_with(b"* BYE")),
            "{}: LOGOUT without BYE:\n{}",
            self.who,
            reply.text()
        );
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "{} exited with {status} after LOGOUT\n{}",
                    self.who,
                    self.log_text()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {EXIT_TIMEOUT:?} after LOGOUT",
                self.who
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Imap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("{}", self.log_text());
        }
    }
}

/// `n` when `line` ends with a literal announcement `{n}`.
fn literal_length(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

// ---------------------------------------------------------------------------
// Parsing server responses
// ---------------------------------------------------------------------------

/// One value of an IMAP response: atoms (NIL included), strings (quoted or
/// literal) and parenthesised lists.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Value>),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Atom(a) => a.clone(),
            Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
            Value::List(l) => format!("{l:?}"),
        }
    }

    fn list(&self) -> &[Value] {
        match self {
            Value::List(l) => l,
            other => panic!("expected a list, got {other:?}"),
        }
    }
}

/// Every value of a response (after the leading `* `).
fn parse_values(input: &[u8]) -> Vec<Value> {
    let mut pos = 0;
    let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
    while pos < input.len() {
        let c = input[pos];
        match c {
            b' ' | b'\r' | b'\n' => pos += 1,
            b'(' => {
                stack.push(Vec::new());
                pos += 1;
            }
            b')' => {
                let done = stack.pop().expect("unbalanced )");
                stack
                    .last_mut()
                    .expect("unbalanced )")
                    .push(Value::List(done));
                pos += 1;
            }
            b'"' => {
                let mut s = Vec::new();
                pos += 1;
                while pos < input.len() && input[pos] != b'"' {
                    if input[pos] == b'\\' {
                        pos += 1;
                    }
                    s.push(input[pos]);
                    pos += 1;
                }
                pos += 1;
                stack.last_mut().unwrap().push(Value::Str(s));
            }
            b'{' => {
                let close = pos
                    + input[pos..]
                        .iter()
                        .position(|&b| b == b'}')
                        .expect("unterminated {");
                let n: usize = std::str::from_utf8(&input[pos + 1..close])
                    .unwrap()
                    .parse()
                    .unwrap();
                let start = close + 3; // "}\r\n"
                stack
                    .last_mut()
                    .unwrap()
                    .push(Value::Str(input[start..start + n].to_vec()));
                pos = start + n;
            }
            _ => {
                let start = pos;
                while pos < input.len() && !matches!(input[pos], b' ' | b'(' | b')' | b'\r' | b'\n')
                {
                    if input[pos] == b'[' {
                        // BODY[...] keeps its section, spaces and parentheses included.
                        while pos < input.len() && input[pos] != b']' {
                            pos += 1;
                        }
                    }
                    pos += 1;
                }
                let atom =
                    String::from_utf8_lossy(&input[start..pos.min(input.len())]).into_owned();
                stack.last_mut().unwrap().push(Value::Atom(atom));
            }
        }
    }
    assert_eq!(
        stack.len(),
        1,
        "unbalanced parentheses in {:?}",
        String::from_utf8_lossy(input)
    );
    stack.pop().unwrap()
}

/// The untagged responses `* <word> ...` (LIST, LSUB, STATUS), parsed.
fn untagged_named(reply: &Reply, word: &str) -> Vec<Vec<Value>> {
    reply
        .untagged
        .iter()
        .filter_map(|u| {
            let values = parse_values(u.strip_prefix(b"* ")?);
            match values.first() {
                Some(Value::Atom(a)) if a.eq_ignore_ascii_case(word) => Some(values[1..].to_vec()),
                _ => None,
            }
        })
        .collect()
}

/// `* <n> FETCH (...)` responses as (sequence number, item name → value).
fn fetch_responses(reply: &Reply) -> Vec<(u32, BTreeMap<String, Value>)> {
    reply
        .untagged
        .iter()
        .filter_map(|u| {
            let values = parse_values(u.strip_prefix(b"* ")?);
            let seq: u32 = match values.first() {
                Some(Value::Atom(n)) => n.parse().ok()?,
                _ => return None,
            };
            match values.get(1) {
                Some(Value::Atom(w)) if w.eq_ignore_ascii_case("FETCH") => {}
                _ => return None,
            }
            let items = values.get(2)?.list();
            let mut map = BTreeMap::new();
            for pair in items.chunks(2) {
                if let [Value::Atom(k), v] = pair {
                    map.insert(k.to_ascii_uppercase(), v.clone());
                }
            }
            Some((seq, map))
        })
        .collect()
}

/// Flags as a set, system flags in their canonical spelling (flags are
/// case-insensitive), \Recent left out (it belongs to one session).
fn flag_set(value: &Value) -> BTreeSet<String> {
    value
        .list()
        .iter()
        .map(Value::text)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .map(|f| {
            const SYSTEM: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
            SYSTEM
                .iter()
                .find(|s| s.eq_ignore_ascii_case(&f))
                .map(|s| s.to_string())
                .unwrap_or(f)
        })
        .collect()
}

fn flags(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Seconds since the epoch of an IMAP date-time `dd-Mon-yyyy hh:mm:ss +zzzz`.
fn parse_internal_date(s: &str) -> i64 {
    let bad = || panic!("bad INTERNALDATE {s:?}");
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [date, time, zone] = parts[..] else { bad() };
    let d: Vec<&str> = date.split('-').collect();
    let [day, month, year] = d[..] else { bad() };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month))
        .unwrap_or_else(|| bad()) as i64
        + 1;
    let (day, year): (i64, i64) = (
        day.parse().unwrap_or_else(|_| bad()),
        year.parse().unwrap_or_else(|_| bad()),
    );
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().unwrap_or_else(|_| bad()))
        .collect();
    let [h, m, sec] = t[..] else { bad() };
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let z: i64 = zone[1..].parse().unwrap_or_else(|_| bad());
    let offset = sign * ((z / 100) * 3600 + (z % 100) * 60);
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's method.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + h * 3600 + m * 60 + sec - offset
}

// ---------------------------------------------------------------------------
// What a client sees of a mailbox, and comparing two servers' views
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Message {
    uid: u32,
    flags: BTreeSet<String>,
    size: u64,
    internal_date: i64,
    body: Vec<u8>,
}

/// Everything a client learns about one mailbox from STATUS, SELECT and a full
/// UID FETCH.
#[derive(Debug, Clone, PartialEq)]
struct MailboxView {
    /// The name as sent on the wire (modified UTF-7).
    name: String,
    status_messages: u32,
    status_unseen: u32,
    status_uidnext: u32,
    status_uidvalidity: u32,
    exists: u32,
    uidvalidity: u32,
    messages: Vec<Message>,
}

impl MailboxView {
    fn by_uid(&self, uid: u32) -> &Message {
        self.messages
            .iter()
            .find(|m| m.uid == uid)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no message with UID {uid} in {:?}",
                    self.name,
                    self.uids()
                )
            })
    }

    fn uids(&self) -> Vec<u32> {
        self.messages.iter().map(|m| m.uid).collect()
    }
}

/// STATUS, then SELECT, then `UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])`.
fn view(imap: &mut Imap, mailbox: &str) -> MailboxView {
    let who = imap.who;
    let status = imap.ok(&format!(
        "STATUS \"{mailbox}\" (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"
    ));
    let lines = untagged_named(&status, "STATUS");
    assert_eq!(
        lines.len(),
        1,
        "{who}: STATUS {mailbox}: one STATUS response expected:\n{}",
        status.text()
    );
    let items = lines[0].last().unwrap().list();
    let mut numbers = BTreeMap::new();
    for pair in items.chunks(2) {
        numbers.insert(
            pair[0].text().to_ascii_uppercase(),
            pair[1].text().parse::<u32>().unwrap(),
        );
    }
    let item = |k: &str| {
        *numbers
            .get(k)
            .unwrap_or_else(|| panic!("{who}: STATUS {mailbox} lacks {k}: {}", status.text()))
    };

    let select = imap.ok(&format!("SELECT \"{mailbox}\""));
    let exists = *select
        .numbered("EXISTS")
        .last()
        .unwrap_or_else(|| panic!("{who}: SELECT without EXISTS"));
    let uidvalidity = select.code_number("UIDVALIDITY").unwrap_or_else(|| {
        panic!(
            "{who}: SELECT {mailbox} without UIDVALIDITY:\n{}",
            select.text()
        )
    });
    if let Some(next) = select.code_number("UIDNEXT") {
        // Courier sends none; a server that does must agree with its own STATUS.
        assert_eq!(
            next,
            item("UIDNEXT"),
            "{who}: SELECT {mailbox} UIDNEXT differs from STATUS UIDNEXT"
        );
    }

    let mut messages = Vec::new();
    if exists > 0 {
        let fetch = imap.ok("UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])");
        for (_, items) in fetch_responses(&fetch) {
            let get = |k: &str| {
                items
                    .get(k)
                    .unwrap_or_else(|| panic!("{who}: FETCH without {k}: {items:?}"))
            };
            let body = match get("BODY[]") {
                Value::Str(b) => b.clone(),
                other => panic!("{who}: BODY[] is {other:?}"),
            };
            messages.push(Message {
                uid: get("UID").text().parse().unwrap(),
                flags: flag_set(get("FLAGS")),
                size: get("RFC822.SIZE").text().parse().unwrap(),
                internal_date: parse_internal_date(&get("INTERNALDATE").text()),
                body,
            });
        }
        messages.sort_by_key(|m| m.uid);
        assert_eq!(
            messages.len() as u32,
            exists,
            "{who}: {mailbox}: FETCH 1:* answered for {} of {exists} messages",
            messages.len()
        );
    }
    MailboxView {
        name: mailbox.to_string(),
        status_messages: item("MESSAGES"),
        status_unseen: item("UNSEEN"),
        status_uidnext: item("UIDNEXT"),
        status_uidvalidity: item("UIDVALIDITY"),
        exists,
        uidvalidity,
        messages,
    }
}

/// Every difference between Courier's and mdimap's view of one mailbox.
fn differences(courier: &MailboxView, mdimap: &MailboxView) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, c: u32, m: u32| {
        if c != m {
            out.push(format!("{}: {name}: Courier {c}, mdimap {m}", courier.name));
        }
    };
    field(
        "STATUS MESSAGES",
        courier.status_messages,
        mdimap.status_messages,
    );
    field("STATUS UNSEEN", courier.status_unseen, mdimap.status_unseen);
    field(
        "STATUS UIDNEXT",
        courier.status_uidnext,
        mdimap.status_uidnext,
    );
    field(
        "STATUS UIDVALIDITY",
        courier.status_uidvalidity,
        mdimap.status_uidvalidity,
    );
    field("SELECT EXISTS", courier.exists, mdimap.exists);
    field(
        "SELECT UIDVALIDITY",
        courier.uidvalidity,
        mdimap.uidvalidity,
    );
    let uids: BTreeSet<u32> = courier
        .messages
        .iter()
        .chain(&mdimap.messages)
        .map(|m| m.uid)
        .collect();
    for uid in uids {
        let c = courier.messages.iter().find(|m| m.uid == uid);
        let m = mdimap.messages.iter().find(|m| m.uid == uid);
        let (c, m) = match (c, m) {
            (Some(c), Some(m)) => (c, m),
            (c, m) => {
                out.push(format!(
                    "{}: UID {uid}: Courier has it: {}, mdimap has it: {}",
                    courier.name,
                    c.is_some(),
                    m.is_some()
                ));
                continue;
            }
        };
        if c.flags != m.flags {
            out.push(format!(
                "{}: UID {uid}: FLAGS: Courier {:?}, mdimap {:?}",
                courier.name, c.flags, m.flags
            ));
        }
        if c.size != m.size {
            out.push(format!(
                "{}: UID {uid}: RFC822.SIZE: Courier {}, mdimap {}",
                courier.name, c.size, m.size
            ));
        }
        if c.internal_date != m.internal_date {
            out.push(format!(
                "{}: UID {uid}: INTERNALDATE: Courier {} s, mdimap {} s since the epoch",
                courier.name, c.internal_date, m.internal_date
            ));
        }
        if c.body != m.body {
            let at = c
                .body
                .iter()
                .zip(&m.body)
                .position(|(a, b)| a != b)
                .unwrap_or(c.body.len().min(m.body.len()));
            out.push(format!(
                "{}: UID {uid}: BODY[] differs from byte {at} (Courier {} bytes, mdimap {} bytes): Courier {:?}, mdimap {:?}",
                courier.name,
                c.body.len(),
                m.body.len(),
                String::from_utf8_lossy(&c.body[at.saturating_sub(10)..(at + 30).min(c.body.len())]),
                String::from_utf8_lossy(&m.body[at.saturating_sub(10)..(at + 30).min(m.body.len())]),
            ));
        }
    }
    out
}

fn assert_same_views(context: &str, courier: &[MailboxView], mdimap: &[MailboxView]) {
    let mut diffs = Vec::new();
    for (c, m) in courier.iter().zip(mdimap) {
        assert_eq!(c.name, m.name);
        diffs.extend(differences(c, m));
    }
    assert!(
        diffs.is_empty(),
        "{context}: Courier and mdimap disagree:\n  {}",
        diffs.join("\n  ")
    );
}

fn views(imap: &mut Imap, mailboxes: &[&str]) -> Vec<MailboxView> {
    mailboxes.iter().map(|m| view(imap, m)).collect()
}

/// `LIST "" "*"`: name → the structural attributes (\Noselect, children), the
/// ones a client builds its folder tree from. \Marked/\Unmarked are left out:
/// they describe new mail, not the folder.
fn list(imap: &mut Imap) -> BTreeMap<String, BTreeSet<String>> {
    let reply = imap.ok("LIST \"\" \"*\"");
    let mut out = BTreeMap::new();
    for values in untagged_named(&reply, "LIST") {
        let attrs = values[0]
            .list()
            .iter()
            .map(|a| a.text().to_ascii_lowercase())
            .filter(|a| !matches!(a.as_str(), "\\marked" | "\\unmarked"))
            .collect();
        assert_eq!(values[1].text(), ".", "{}: hierarchy delimiter", imap.who);
        out.insert(values[2].text(), attrs);
    }
    out
}

/// `LSUB "" "*"`: the subscribed names. Entries flagged \Noselect are left
/// out: Courier also lists every unsubscribed parent of a subscribed folder
/// (`INBOX`, `INBOX.Work`) as \Noselect even for `*`, which RFC 3501 §6.3.9 only
/// foresees for `%`; that is presentation, not the subscription file.
fn lsub(imap: &mut Imap) -> BTreeSet<String> {
    let reply = imap.ok("LSUB \"\" \"*\"");
    untagged_named(&reply, "LSUB")
        .iter()
        .filter(|v| {
            !v[0]
                .list()
                .iter()
                .any(|a| a.text().eq_ignore_ascii_case("\\Noselect"))
        })
        .map(|v| v[2].text())
        .collect()
}

// ---------------------------------------------------------------------------
// The Courier UID database, read strictly
// ---------------------------------------------------------------------------

/// `courierimapuiddb` of `folder`, checked byte by byte against the format
/// Courier writes: `1 <uidv> <nextuid>\n`, then `<uid> <basename>\n` in
/// ascending UID order, one line per message in cur/ and none for anything else.
/// Empty lines are let through: mdimap pads with them where it adds lines in
/// place, and Courier skips them (checked with its imapd).
fn strict_uiddb(folder: &Path) -> (u32, u32, Vec<(u32, String)>) {
    let path = folder.join("courierimapuiddb");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let text =
        String::from_utf8(bytes).unwrap_or_else(|_| panic!("{} is not text", path.display()));
    assert!(
        text.ends_with('\n') && !text.contains('\r'),
        "{}: lines must end in LF: {text:?}",
        path.display()
    );
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
    let [version, uidv, next] = head[..] else {
        panic!("{}: bad first line in {text:?}", path.display())
    };
    assert_eq!(
        version,
        "1",
        "{}: version must be 1: {text:?}",
        path.display()
    );
    let uidv: u32 = uidv
        .parse()
        .unwrap_or_else(|_| panic!("{}: bad UIDVALIDITY in {text:?}", path.display()));
    let next: u32 = next
        .parse()
        .unwrap_or_else(|_| panic!("{}: bad next UID in {text:?}", path.display()));
    let mut entries = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (uid, base) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{}: bad line {line:?}", path.display()));
        let uid: u32 = uid
            .parse()
            .unwrap_or_else(|_| panic!("{}: bad UID in {line:?}", path.display()));
        assert!(
            !base.contains(':') && !base.is_empty(),
            "{}: entry must be a base name: {line:?}",
            path.display()
        );
        if let Some((last, _)) = entries.last() {
            assert!(
                uid > *last,
                "{}: UIDs not ascending at {line:?}",
                path.display()
            );
        }
        assert!(
            uid < next,
            "{}: UID {uid} not below next UID {next}",
            path.display()
        );
        entries.push((uid, base.to_string()));
    }
    let mut listed: Vec<&str> = entries.iter().map(|(_, b)| b.as_str()).collect();
    listed.sort();
    let cur = files(&folder.join("cur"));
    let mut in_cur: Vec<&str> = cur.iter().map(|n| base_of(n)).collect();
    in_cur.sort();
    assert_eq!(
        listed,
        in_cur,
        "{}: entries must be exactly the messages in cur/",
        path.display()
    );
    (uidv, next, entries)
}

// ---------------------------------------------------------------------------
// Test 1 (and the start of test 4): Courier works on a fresh maildir
// ---------------------------------------------------------------------------

const REPORTS: &str = "INBOX.Work.Reports";

struct CourierRun {
    views: Vec<MailboxView>,
    list: BTreeMap<String, BTreeSet<String>>,
    lsub: BTreeSet<String>,
    /// UID Courier gave the message APPENDed with \Seen $Label1.
    appended_uid: u32,
}

/// Five MTA deliveries, then a Courier session: flags, keywords, a folder, a
/// subscription, APPENDs, an EXPUNGE; returns what Courier showed afterwards.
fn courier_works_on_fresh_maildir(scratch: &Scratch, maildir: &Path) -> CourierRun {
    let t0 = 1_700_000_000;
    for i in 0..5u32 {
        let body = match i {
            2 => "Grüße aus Köln — 8-bit UTF-8 body.\n\nSecond paragraph.".to_string(),
            4 => "to be deleted".to_string(),
            _ => format!("Message number {i}.\nLine two of {i}."),
        };
        let content = mta_message(&format!("Courier first {i}"), &body);
        // Alternate Postfix names (no size) and maildrop names (,S=), as mixed spools have.
        let name = if i % 2 == 0 {
            postfix_name(t0 + u64::from(i), i)
        } else {
            courier_style_name(t0 + u64::from(i), i, content.len())
        };
        deliver(maildir, &name, &content, at(t0 + 3600 * u64::from(i)));
    }

    let mut c = Imap::courier(scratch);
    let select = c.ok("SELECT INBOX");
    assert_eq!(
        select.numbered("EXISTS"),
        vec![5],
        "Courier SELECT:\n{}",
        select.text()
    );
    c.ok("STORE 1 +FLAGS (\\Seen)");
    c.ok("STORE 2 +FLAGS (\\Seen \\Flagged $Label1 Junk)");
    c.ok("STORE 3 +FLAGS (\\Answered \\Draft)");
    c.ok("STORE 4 +FLAGS (Junk)");
    c.ok("STORE 5 +FLAGS (\\Deleted \\Seen)");
    let expunge = c.ok("EXPUNGE");
    assert_eq!(
        expunge.numbered("EXPUNGE"),
        vec![5],
        "Courier EXPUNGE:\n{}",
        expunge.text()
    );
    c.ok(&format!("CREATE {REPORTS}"));
    c.ok(&format!("SUBSCRIBE {REPORTS}"));
    let appended = c.append(
        REPORTS,
        "\\Seen $Label1",
        None,
        &client_message("Appended by Courier", "Report body."),
    );
    let appenduid = appended
        .code("APPENDUID")
        .unwrap_or_else(|| panic!("Courier APPEND without APPENDUID: {}", appended.text()));
    let appended_uid: u32 = appenduid[1].parse().unwrap();
    c.append(
        REPORTS,
        "",
        Some("01-Jan-2020 12:00:00 +0000"),
        &client_message("Dated", "Has an INTERNALDATE."),
    );

    let views = views(&mut c, &["INBOX", REPORTS]);
    let list = list(&mut c);
    let lsub = lsub(&mut c);
    c.logout();

    // The setup did what the test means it to do (so a later mismatch is mdimap's).
    let inbox = &views[0];
    assert_eq!(
        inbox.uids(),
        vec![1, 2, 3, 4],
        "Courier's UIDs for the deliveries"
    );
    assert_eq!(
        inbox.by_uid(2).flags,
        flags(&["\\Seen", "\\Flagged", "$Label1", "Junk"])
    );
    assert_eq!(inbox.by_uid(3).flags, flags(&["\\Answered", "\\Draft"]));
    assert_eq!(inbox.by_uid(4).flags, flags(&["Junk"]));
    let reports = &views[1];
    assert_eq!(
        reports.by_uid(appended_uid).flags,
        flags(&["\\Seen", "$Label1"])
    );
    assert!(
        reports
            .messages
            .iter()
            .any(|m| m.internal_date == 1_577_880_000),
        "APPEND date kept by Courier"
    );
    assert!(list.contains_key(REPORTS), "Courier LIST: {list:?}");
    assert!(lsub.contains(REPORTS), "Courier LSUB: {lsub:?}");
    CourierRun {
        views,
        list,
        lsub,
        appended_uid,
    }
}

/// Test 1: Courier first, mdimap second on the same maildir.
#[test]
fn mdimap_sees_what_courier_left() {
    let scratch = Scratch::new("courier-first");
    let maildir = scratch.maildir();
    let courier = courier_works_on_fresh_maildir(&scratch, &maildir);

    let mut m = Imap::mdimap(&scratch, &maildir);
    let mine = views(&mut m, &["INBOX", REPORTS]);
    let my_list = list(&mut m);
    let my_lsub = lsub(&mut m);
    m.logout();

    assert_same_views("mdimap after Courier", &courier.views, &mine);
    assert_eq!(
        mine[1].by_uid(courier.appended_uid).flags,
        flags(&["\\Seen", "$Label1"])
    );
    assert_eq!(
        courier.list, my_list,
        "LIST \"\" \"*\": left Courier, right mdimap"
    );
    assert!(
        my_list.contains_key("INBOX.Work.Reports"),
        "mdimap LIST: {my_list:?}"
    );
    assert_eq!(
        courier.lsub, my_lsub,
        "LSUB \"\" \"*\": left Courier, right mdimap"
    );
}

/// Test 4: mdimap rewrites the UID database (a new delivery gets a UID) and
/// changes flags and keywords; Courier run again reads the same UIDs and flags,
/// and finds nothing to correct in the database.
#[test]
fn courier_reads_the_uid_database_mdimap_rewrote() {
    let scratch = Scratch::new("uiddb-rewrite");
    let maildir = scratch.maildir();
    let courier = courier_works_on_fresh_maildir(&scratch, &maildir);
    let uiddb_by_courier = fs::read(maildir.join("courierimapuiddb")).unwrap();
    let t = 1_700_100_000;
    let late = mta_message("Arrived between sessions", "New mail for mdimap to number.");
    deliver(&maildir, &postfix_name(t, 9), &late, at(t));

    let mut m = Imap::mdimap(&scratch, &maildir);
    m.ok("SELECT INBOX");
    m.ok("UID STORE 3 -FLAGS (\\Draft)");
    m.ok("UID STORE 3 +FLAGS ($Label2)");
    m.ok("UID STORE 2 -FLAGS (Junk)");
    m.ok("UID STORE 1 +FLAGS (\\Flagged Junk)");
    m.ok(&format!("SELECT {REPORTS}"));
    m.ok(&format!(
        "UID STORE {} -FLAGS ($Label1)",
        courier.appended_uid
    ));
    let mine = views(&mut m, &["INBOX", REPORTS]);
    m.logout();

    assert_eq!(
        mine[0].uidvalidity, courier.views[0].uidvalidity,
        "mdimap changed INBOX's UIDVALIDITY"
    );
    // Courier expunged UID 5, so its next UID (6) goes to the new message: never reused.
    let next = courier.views[0].status_uidnext;
    assert_eq!(next, 6, "Courier's UIDNEXT after expunging UID 5");
    assert_eq!(
        mine[0].uids(),
        vec![1, 2, 3, 4, next],
        "mdimap: old UIDs kept, the new message gets Courier's next UID"
    );
    assert_eq!(mine[0].by_uid(3).flags, flags(&["\\Answered", "$Label2"]));
    assert_eq!(
        mine[0].by_uid(2).flags,
        flags(&["\\Seen", "\\Flagged", "$Label1"])
    );
    assert_eq!(
        mine[0].by_uid(1).flags,
        flags(&["\\Seen", "\\Flagged", "Junk"])
    );

    // The database mdimap left, byte by byte.
    let uiddb_by_mdimap = fs::read(maildir.join("courierimapuiddb")).unwrap();
    assert_ne!(
        uiddb_by_mdimap, uiddb_by_courier,
        "mdimap did not record the new message's UID in courierimapuiddb"
    );
    let (uidv, next, entries) = strict_uiddb(&maildir);
    assert_eq!(
        (uidv, next),
        (mine[0].uidvalidity, mine[0].status_uidnext),
        "courierimapuiddb header vs mdimap's STATUS"
    );
    assert_eq!(
        entries.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        mine[0].uids()
    );
    assert_eq!(
        entries.last().map(|(_, b)| b.clone()),
        Some(postfix_name(t, 9)),
        "the new message's entry"
    );
    let reports_dir = maildir.join(".Work.Reports");
    let reports_db_by_mdimap = fs::read(reports_dir.join("courierimapuiddb")).unwrap();
    strict_uiddb(&reports_dir);

    // Courier, run again, sees exactly what mdimap saw.
    let mut c = Imap::courier(&scratch);
    let theirs = views(&mut c, &["INBOX", REPORTS]);
    c.logout();
    assert_same_views(
        "Courier after mdimap rewrote courierimapuiddb",
        &theirs,
        &mine,
    );
    assert_eq!(
        String::from_utf8_lossy(&fs::read(maildir.join("courierimapuiddb")).unwrap()),
        String::from_utf8_lossy(&uiddb_by_mdimap),
        "Courier rewrote INBOX's courierimapuiddb as written by mdimap (left: after Courier, right: mdimap's)"
    );
    assert_eq!(
        String::from_utf8_lossy(&fs::read(reports_dir.join("courierimapuiddb")).unwrap()),
        String::from_utf8_lossy(&reports_db_by_mdimap),
        "Courier rewrote INBOX.Work.Reports' courierimapuiddb (left: after Courier, right: mdimap's)"
    );
}

// ---------------------------------------------------------------------------
// Test 2: mdimap first, Courier second
// ---------------------------------------------------------------------------

/// `Résumé` in modified UTF-7, as both servers send it without UTF8=ACCEPT.
const RESUME: &str = "INBOX.R&AOk-sum&AOk-";

#[test]
fn courier_sees_what_mdimap_left() {
    let scratch = Scratch::new("mdimap-first");
    let maildir = scratch.maildir();
    let t0 = 1_700_200_000;
    for i in 0..4u32 {
        let content = mta_message(&format!("mdimap first {i}"), &format!("Body {i}.\nÄ line."));
        let name = if i % 2 == 0 {
            courier_style_name(t0 + u64::from(i), i, content.len())
        } else {
            postfix_name(t0 + u64::from(i), i)
        };
        deliver(&maildir, &name, &content, at(t0 + 600 * u64::from(i)));
    }

    let mut m = Imap::mdimap(&scratch, &maildir);
    let select = m.ok("SELECT INBOX");
    assert_eq!(
        select.numbered("EXISTS"),
        vec![4],
        "mdimap SELECT:\n{}",
        select.text()
    );
    m.ok("STORE 1 +FLAGS (\\Seen $Label1)");
    m.ok("STORE 2 +FLAGS (\\Flagged Junk $Label2)");
    m.ok("STORE 3 +FLAGS (\\Deleted)");
    m.ok("STORE 4 +FLAGS (\\Answered \\Draft \\Seen)");
    m.ok(&format!("CREATE {REPORTS}"));
    m.ok(&format!("CREATE \"{RESUME}\""));
    m.ok(&format!("SUBSCRIBE {REPORTS}"));
    m.ok(&format!("SUBSCRIBE \"{RESUME}\""));
    let a1 = m.append(
        REPORTS,
        "\\Seen $Label1",
        Some("01-Jan-2020 12:00:00 +0000"),
        &client_message("Appended by mdimap", "x"),
    );
    let a2 = m.append(
        &format!("\"{RESUME}\""),
        "Junk",
        None,
        &client_message("Résumé", "Lebenslauf."),
    );
    let reports_uid: u32 = a1.code("APPENDUID").expect("APPENDUID")[1].parse().unwrap();
    let resume_uid: u32 = a2.code("APPENDUID").expect("APPENDUID")[1].parse().unwrap();
    let copy = m.ok(&format!("UID COPY 1:2 \"{RESUME}\""));
    let copyuid = copy
        .code("COPYUID")
        .unwrap_or_else(|| panic!("mdimap COPY without COPYUID: {}", copy.text()));
    let (sources, targets) = (expand_set(&copyuid[1]), expand_set(&copyuid[2]));
    let expunge = m.ok("EXPUNGE");
    assert_eq!(
        expunge.numbered("EXPUNGE"),
        vec![3],
        "mdimap EXPUNGE:\n{}",
        expunge.text()
    );
    let mailboxes = ["INBOX", REPORTS, RESUME];
    let mine = views(&mut m, &mailboxes);
    let my_list = list(&mut m);
    let my_lsub = lsub(&mut m);
    m.logout();

    // mdimap did what was asked (so a mismatch below is about the files).
    assert_eq!(mine[0].uids(), vec![1, 2, 4]);
    assert_eq!(
        mine[1].by_uid(reports_uid).flags,
        flags(&["\\Seen", "$Label1"])
    );
    assert_eq!(mine[2].by_uid(resume_uid).flags, flags(&["Junk"]));
    assert_eq!(sources, vec![1, 2]);
    for (s, t) in sources.iter().zip(&targets) {
        let (orig, copied) = (mine[0].by_uid(*s), mine[2].by_uid(*t));
        assert_eq!(copied.body, orig.body, "COPY of UID {s} to UID {t}");
        assert_eq!(
            copied.flags, orig.flags,
            "COPY keeps flags and keywords (UID {s} → {t})"
        );
    }
    // Courier 5 keeps folder names in UTF-8 on disk and subscriptions in UTF-8.
    assert!(
        maildir.join(".Résumé/maildirfolder").is_file(),
        "no .Résumé folder on disk: {:?}",
        files(&maildir)
    );
    assert!(
        maildir.join(".Work.Reports/maildirfolder").is_file(),
        "no .Work.Reports folder on disk"
    );
    let subscribed = fs::read_to_string(maildir.join("courierimapsubscribed")).unwrap_or_default();
    assert!(
        subscribed.lines().any(|l| l == "INBOX.Résumé") && subscribed.lines().any(|l| l == REPORTS),
        "courierimapsubscribed: {subscribed:?}"
    );

    let mut c = Imap::courier(&scratch);
    let theirs = views(&mut c, &mailboxes);
    let their_list = list(&mut c);
    let their_lsub = lsub(&mut c);
    c.logout();
    assert_same_views("Courier after mdimap", &theirs, &mine);
    assert_eq!(
        their_list, my_list,
        "LIST \"\" \"*\": left Courier, right mdimap"
    );
    assert!(
        their_list.contains_key(RESUME),
        "Courier LIST: {their_list:?}"
    );
    assert_eq!(
        their_lsub, my_lsub,
        "LSUB \"\" \"*\": left Courier, right mdimap"
    );
    assert!(their_lsub.contains(RESUME), "Courier LSUB: {their_lsub:?}");
}

// ---------------------------------------------------------------------------
// Test 3: both servers at once on one INBOX
// ---------------------------------------------------------------------------

fn fetch_flags_by_seq(reply: &Reply) -> BTreeMap<u32, BTreeSet<String>> {
    fetch_responses(reply)
        .into_iter()
        .filter_map(|(seq, items)| items.get("FLAGS").map(|f| (seq, flag_set(f))))
        .collect()
}

/// (UID, flags) of every message, as one server sees it now.
fn uids_and_flags(imap: &mut Imap) -> Vec<(u32, BTreeSet<String>)> {
    let reply = imap.ok("UID FETCH 1:* (UID FLAGS)");
    let mut v: Vec<(u32, BTreeSet<String>)> = fetch_responses(&reply)
        .into_iter()
        .map(|(_, items)| {
            (
                items["UID"].text().parse().unwrap(),
                flag_set(&items["FLAGS"]),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn open_sessions_see_each_others_changes() {
    let scratch = Scratch::new("interleaved");
    let maildir = scratch.maildir();
    let t0 = 1_700_300_000;
    deliver_from_mta(&maildir, t0, 2, "shared", "Both servers read me.");

    // mdimap session A keeps INBOX selected throughout.
    let mut a = Imap::mdimap(&scratch, &maildir);
    let select = a.ok("SELECT INBOX");
    assert_eq!(select.numbered("EXISTS"), vec![2]);
    assert_eq!(
        uids_and_flags(&mut a)
            .iter()
            .map(|(u, _)| *u)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );

    // Courier delivers by APPEND and changes a flag and a keyword.
    let mut c = Imap::courier(&scratch);
    let cselect = c.ok("SELECT INBOX");
    assert_eq!(
        cselect.numbered("EXISTS"),
        vec![2],
        "Courier SELECT:\n{}",
        cselect.text()
    );
    assert_eq!(
        cselect.code_number("UIDVALIDITY"),
        select.code_number("UIDVALIDITY"),
        "UIDVALIDITY: Courier vs mdimap"
    );
    c.ok("STORE 1 +FLAGS (\\Seen $Label1)");
    let appended = c.append(
        "INBOX",
        "\\Flagged",
        None,
        &client_message("Appended by Courier", "while mdimap watches"),
    );
    let courier_uid: u32 = appended.code("APPENDUID").expect("Courier APPENDUID")[1]
        .parse()
        .unwrap();
    c.ok("NOOP");
    let uiddb_now = fs::read_to_string(maildir.join("courierimapuiddb")).unwrap_or_default();

    let noop = a.ok("NOOP");
    assert_eq!(
        noop.numbered("EXISTS"),
        vec![3],
        "mdimap NOOP after Courier's APPEND (courierimapuiddb now {uiddb_now:?}):\n{}",
        noop.text()
    );
    let changed = fetch_flags_by_seq(&noop);
    assert_eq!(
        changed.get(&1),
        Some(&flags(&["\\Seen", "$Label1"])),
        "mdimap NOOP must report Courier's flag change on message 1:\n{}",
        noop.text()
    );
    let third = a.ok("FETCH 3 (UID FLAGS)");
    let items = &fetch_responses(&third)[0].1;
    assert_eq!(
        items["UID"].text().parse::<u32>().unwrap(),
        courier_uid,
        "mdimap's UID for Courier's APPEND vs Courier's APPENDUID (courierimapuiddb {uiddb_now:?})"
    );
    assert_eq!(flag_set(&items["FLAGS"]), flags(&["\\Flagged"]));

    // And the other way: mdimap changes a flag and appends while Courier watches.
    a.ok("STORE 2 +FLAGS (\\Answered $Label2)");
    let mine = a.append(
        "INBOX",
        "\\Seen Junk",
        None,
        &client_message("Appended by mdimap", "while Courier watches"),
    );
    let mdimap_uid: u32 = mine.code("APPENDUID").expect("mdimap APPENDUID")[1]
        .parse()
        .unwrap();
    assert!(
        mdimap_uid > courier_uid,
        "mdimap reused or went below Courier's UIDs: {mdimap_uid} after {courier_uid}"
    );
    a.ok("NOOP");
    let cnoop = c.ok("NOOP");
    assert_eq!(
        cnoop.numbered("EXISTS"),
        vec![4],
        "Courier NOOP after mdimap's APPEND:\n{}",
        cnoop.text()
    );
    assert_eq!(
        fetch_flags_by_seq(&cnoop).get(&2),
        Some(&flags(&["\\Answered", "$Label2"])),
        "Courier NOOP must report mdimap's flag change on message 2:\n{}",
        cnoop.text()
    );

    let courier_sees = uids_and_flags(&mut c);
    let mdimap_sees = uids_and_flags(&mut a);
    assert_eq!(
        courier_sees, mdimap_sees,
        "UID FETCH 1:* (UID FLAGS): left Courier, right mdimap"
    );
    assert_eq!(
        courier_sees.last().map(|(u, f)| (*u, f.clone())),
        Some((mdimap_uid, flags(&["\\Seen", "Junk"])))
    );
    c.logout();
    a.logout();
}

/// CONDSTORE across servers (issue 11): Courier-IMAP keeps no mod-sequences, so what it
/// changes is given one by the next mdimap session that looks, above the HIGHESTMODSEQ
/// mdimap reported before; a client resyncing with CHANGEDSINCE gets exactly Courier's
/// changes, flags and keywords alike.
#[test]
fn courier_changes_get_new_modseqs() {
    let scratch = Scratch::new("condstore");
    let maildir = scratch.maildir();
    let t0 = 1_700_400_000;
    deliver_from_mta(&maildir, t0, 3, "modseq", "Counted by mdimap.");
    let mut a = Imap::mdimap(&scratch, &maildir);
    let select = a.ok("SELECT INBOX");
    let before: u64 = select.code("HIGHESTMODSEQ").expect("HIGHESTMODSEQ")[0]
        .parse()
        .unwrap();
    a.logout();

    let mut c = Imap::courier(&scratch);
    c.ok("SELECT INBOX");
    c.ok("UID STORE 1 +FLAGS (\\Seen)");
    c.ok("UID STORE 3 +FLAGS ($Label3)");
    c.logout();

    let mut a = Imap::mdimap(&scratch, &maildir);
    let select = a.ok("SELECT INBOX");
    let after: u64 = select.code("HIGHESTMODSEQ").expect("HIGHESTMODSEQ")[0]
        .parse()
        .unwrap();
    assert!(
        after > before,
        "{after} after Courier's changes, {before} before"
    );
    let changed = a.ok(&format!(
        "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE {before})"
    ));
    let got: Vec<(u32, BTreeSet<String>)> = fetch_responses(&changed)
        .into_iter()
        .map(|(_, items)| {
            (
                items["UID"].text().parse().unwrap(),
                flag_set(&items["FLAGS"]),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(1, flags(&["\\Seen"])), (3, flags(&["$Label3"]))],
        "CHANGEDSINCE after Courier's changes:\n{}",
        changed.text()
    );
    a.logout();
}

// ---------------------------------------------------------------------------
// Test 5: a maildir no IMAP server has seen yet gets the same numbers from both
// ---------------------------------------------------------------------------

/// Two copies of one never-opened maildir: Courier numbers one, mdimap the
/// other, each after the client's `first` command. A site running both servers
/// (or moving such mailboxes) must get identical UIDs from either: Courier sorts
/// every message new to its database, from cur/ and new/ alike, by the numeric
/// time in the name, then byte by byte.
fn numbering_of_a_fresh_maildir(first: &str) {
    let scratch_c = Scratch::new("numbering-courier");
    let scratch_m = Scratch::new("numbering-mdimap");
    let (maildir_c, maildir_m) = (scratch_c.maildir(), scratch_m.maildir());
    let t = 1_700_400_000;
    let names = [
        // Numeric time decides first: 999999999 < 1700400000 although "9" > "1".
        "999999999.M1P1.old.example".to_string(),
        format!("{t}.M9P1.mail.example"),
        format!("{t}.M10P1.mail.example"),
        postfix_name(t, 3),
        format!("{}.M1P1.mail.example,S=10", t + 1),
        format!("{t}"),
    ];
    for (i, name) in names.iter().enumerate() {
        let content = mta_message(&format!("numbering {i}"), name);
        deliver(&maildir_c, name, &content, at(t + i as u64));
        deliver(&maildir_m, name, &content, at(t + i as u64));
    }
    // One message a local mail reader already moved to cur/ and marked seen.
    let content = mta_message("already read", "seen by a local mail reader");
    for dir in [&maildir_c, &maildir_m] {
        let name = format!("{}.M5P5.mail.example", t - 10);
        let tmp = dir.join("tmp").join(&name);
        fs::write(&tmp, &content).unwrap();
        fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(at(t - 10))
            .unwrap();
        fs::rename(&tmp, dir.join("cur").join(format!("{name}:2,S"))).unwrap();
    }

    let mut c = Imap::courier(&scratch_c);
    c.ok(first);
    let theirs = view(&mut c, "INBOX");
    c.logout();
    let mut m = Imap::mdimap(&scratch_m, &maildir_m);
    m.ok(first);
    let mut mine = view(&mut m, "INBOX");
    m.logout();

    // UIDVALIDITY is a creation time; it may differ between the two copies.
    mine.uidvalidity = theirs.uidvalidity;
    mine.status_uidvalidity = theirs.status_uidvalidity;
    let (_, _, courier_db) = strict_uiddb(&maildir_c);
    let (_, _, mdimap_db) = strict_uiddb(&maildir_m);
    assert_eq!(
        courier_db, mdimap_db,
        "UIDs given to a fresh maildir after `{first}`: left Courier's courierimapuiddb, right mdimap's"
    );
    assert_same_views(
        &format!("fresh maildir numbered separately after `{first}`"),
        &[theirs],
        &[mine],
    );
}

/// Test 5a: the first thing a client does is SELECT.
#[test]
fn fresh_maildir_is_numbered_the_same_by_both() {
    numbering_of_a_fresh_maildir("SELECT INBOX");
}

/// Test 5b: the client asks STATUS first (as most do for every folder). Courier's
/// STATUS neither moves new/ nor writes the UID database, so it must not fix an
/// order that the later SELECT would choose differently.
#[test]
fn status_before_select_keeps_courier_numbering() {
    numbering_of_a_fresh_maildir("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)");
}

// ---------------------------------------------------------------------------
// Test 6: access control lists set through one server hold in the other
// ---------------------------------------------------------------------------

/// Every ACL file of a maildir: `courierimapacl` anywhere, `courierimaphieracl/*`;
/// relative path → contents.
fn acl_files(maildir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![maildir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = path.strip_prefix(maildir).unwrap().display().to_string();
            if entry.file_type().unwrap().is_dir() {
                if name == "courierimaphieracl" || (dir == maildir && name.starts_with('.')) {
                    dirs.push(path);
                }
            } else if name == "courierimapacl" || rel.starts_with("courierimaphieracl/") {
                out.insert(rel, fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// What a client sees of the lists: the untagged answers of GETACL, MYRIGHTS
/// and LISTRIGHTS for `mailbox`, and whether APPEND and SELECT are allowed.
fn acl_answers(imap: &mut Imap, mailbox: &str) -> Vec<String> {
    let mut out = Vec::new();
    for command in [
        format!("GETACL {mailbox}"),
        format!("MYRIGHTS {mailbox}"),
        format!("LISTRIGHTS {mailbox} bob"),
    ] {
        let reply = imap.ok(&command);
        out.extend(
            reply
                .untagged
                .iter()
                .map(|u| String::from_utf8_lossy(u).into_owned()),
        );
    }
    let append = imap.try_append(mailbox, "", None, &client_message("acl", "may I append?"));
    out.push(format!("APPEND allowed: {}", append.is_ok()));
    let select = imap.command(&format!("SELECT {mailbox}"));
    out.push(format!("SELECT allowed: {}", select.is_ok()));
    imap.command("CLOSE");
    out
}

/// The lists Courier sets, mdimap reads and enforces (and the other way
/// round): the same GETACL/MYRIGHTS/LISTRIGHTS answers, the same refusals.
fn acl_set_by_one_holds_in_the_other(courier_first: bool) {
    let scratch = Scratch::new("acl-shared");
    let maildir = scratch.maildir();
    let mut first = if courier_first {
        Imap::courier(&scratch)
    } else {
        Imap::mdimap(&scratch, &maildir)
    };
    first.ok("CREATE INBOX.Shared");
    first.ok("CREATE INBOX.Closed");
    first.ok("SETACL INBOX.Shared bob lrs");
    first.ok("SETACL INBOX.Shared -bob s");
    first.ok("SETACL INBOX.Shared anyone +l");
    first.ok("SETACL INBOX.Closed owner alw");
    let theirs: Vec<Vec<String>> = ["INBOX.Shared", "INBOX.Closed"]
        .iter()
        .map(|m| acl_answers(&mut first, m))
        .collect();
    let written_by_first = acl_files(&maildir);
    first.logout();

    let mut second = if courier_first {
        Imap::mdimap(&scratch, &maildir)
    } else {
        Imap::courier(&scratch)
    };
    let mine: Vec<Vec<String>> = ["INBOX.Shared", "INBOX.Closed"]
        .iter()
        .map(|m| acl_answers(&mut second, m))
        .collect();
    second.logout();
    let (who_first, who_second) = if courier_first {
        ("Courier", "mdimap")
    } else {
        ("mdimap", "Courier")
    };
    assert_eq!(
        theirs, mine,
        "ACL answers: left {who_first}, which set the lists, right {who_second}"
    );
    assert_eq!(
        theirs[1],
        vec![
            "* ACL \"INBOX.Closed\" \"owner\" \"alw\" \"administrators\" \"acdilrsw\"",
            "* MYRIGHTS \"INBOX.Closed\" \"alw\"",
            "* LISTRIGHTS \"INBOX.Closed\" \"bob\" \"\" a c d i l p r s w",
            "APPEND allowed: false",
            "SELECT allowed: false",
        ],
        "{who_first}"
    );
    assert_eq!(
        acl_files(&maildir),
        written_by_first,
        "{who_second} changed the lists {who_first} wrote"
    );
    assert_eq!(
        written_by_first
            .get(".Shared/courierimapacl")
            .map(String::as_str),
        Some("owner aceilrstwx\nadministrators aceilrstwx\nuser=bob lrs\n-user=bob s\nanyone l\n"),
        "{who_first}"
    );
}

#[test]
fn acl_set_through_courier_holds_in_mdimap() {
    acl_set_by_one_holds_in_the_other(true);
}

#[test]
fn acl_set_through_mdimap_holds_in_courier() {
    acl_set_by_one_holds_in_the_other(false);
}

/// One script of ACL commands, run by Courier on one maildir and by mdimap on
/// another: the same answers (status, and the untagged lines of the ACL
/// commands) and byte-identical ACL files, inherited lists and hierarchy lists
/// (`courierimaphieracl/`) through CREATE, DELETE and RENAME included.
#[test]
fn both_servers_write_the_same_acl_files() {
    let script = [
        "CREATE INBOX.A.B",
        "MYRIGHTS INBOX.A.B",
        "SETACL INBOX.A.B bob lrk",
        "SETACL INBOX.A.B bob +d",
        "GETACL INBOX.A.B",
        "SETACL INBOX.A.B bob -te",
        "SETACL INBOX.A.B -bob w",
        "SETACL INBOX.A.B anyone l",
        "DELETEACL INBOX.A.B anyone",
        "SETACL INBOX.A.B owner art",
        "SETACL INBOX.A.B -anyone i",
        "SETACL INBOX.A.B user=john lr",
        "GETACL INBOX.A.B",
        "SETACL INBOX anyone r",
        "CREATE INBOX.P",
        "CREATE INBOX.P.Q",
        "SETACL INBOX.P -anyone r",
        "DELETEACL INBOX anyone",
        "DELETE INBOX.P",
        "RENAME INBOX.P INBOX.R",
        "GETACL INBOX.R.Q",
        "CREATE INBOX.V.W",
        "STATUS INBOX.V.W (MESSAGES)",
        "SETACL INBOX.V.W owner alrt",
        "SELECT INBOX.V.W",
        "SETACL INBOX.V.W owner +dw",
        "MYRIGHTS INBOX.V.W",
    ];
    let run = |imap: &mut Imap| -> Vec<String> {
        let mut out = Vec::new();
        for command in script {
            let reply = imap.command(command);
            let status = reply.tagged.split(' ').nth(1).unwrap_or("").to_string();
            out.push(format!("{command}: {status}"));
            for u in &reply.untagged {
                let u = String::from_utf8_lossy(u);
                if ["* ACL ", "* MYRIGHTS ", "* LISTRIGHTS ", "* OK [MYRIGHTS "]
                    .iter()
                    .any(|p| u.starts_with(p))
                {
                    out.push(format!("  {u}"));
                }
            }
        }
        out
    };
    let scratch_c = Scratch::new("acl-files-courier");
    let scratch_m = Scratch::new("acl-files-mdimap");
    let (maildir_c, maildir_m) = (scratch_c.maildir(), scratch_m.maildir());
    let mut c = Imap::courier(&scratch_c);
    let theirs = run(&mut c);
    c.logout();
    let mut m = Imap::mdimap(&scratch_m, &maildir_m);
    let mine = run(&mut m);
    m.logout();
    assert_eq!(theirs, mine, "answers: left Courier, right mdimap");
    let (files_c, files_m) = (acl_files(&maildir_c), acl_files(&maildir_m));
    assert_eq!(
        files_c, files_m,
        "ACL files: left Courier's, right mdimap's"
    );
    assert!(
        files_c.contains_key("courierimaphieracl/R") && files_c.contains_key(".V.W/courierimapacl"),
        "the script should leave hierarchy and folder lists: {files_c:#?}"
    );
}

// ---------------------------------------------------------------------------
// Test 7: shared folders served by both
// ---------------------------------------------------------------------------

/// `LIST "" "<pattern>"`, as [`list`] reduces it.
fn list_pattern(imap: &mut Imap, pattern: &str) -> BTreeMap<String, BTreeSet<String>> {
    let reply = imap.ok(&format!("LIST \"\" \"{pattern}\""));
    let mut out = BTreeMap::new();
    for values in untagged_named(&reply, "LIST") {
        let attrs = values[0]
            .list()
            .iter()
            .map(|a| a.text().to_ascii_lowercase())
            .filter(|a| !matches!(a.as_str(), "\\marked" | "\\unmarked"))
            .collect();
        out.insert(values[2].text(), attrs);
    }
    out
}

/// What a client sees of the virtual shared folders: LIST, MYRIGHTS and the views.
type SharedAnswers = (
    BTreeMap<String, BTreeSet<String>>,
    Vec<String>,
    Vec<MailboxView>,
);

fn shared_answers(imap: &mut Imap, mailboxes: &[&str]) -> SharedAnswers {
    let listed = list_pattern(imap, "#shared.*");
    let mut rights = Vec::new();
    for m in mailboxes {
        let reply = imap.ok(&format!("MYRIGHTS {m}"));
        rights.extend(
            reply
                .untagged
                .iter()
                .map(|u| String::from_utf8_lossy(u).into_owned()),
        );
    }
    (listed, rights, views(imap, mailboxes))
}

/// Bob's folder, shared through Courier's index with anyone for reading, seen by the
/// account whose maildir is the scratch maildir: the same names, rights, messages and
/// UIDs from both servers (the UIDs are Bob's), whichever looks first, and a message
/// neither has numbered yet gets the same UID from both.
#[test]
fn virtual_shared_folder_served_by_both() {
    let scratch = Scratch::new("shared-virtual");
    let mine = scratch.maildir();
    let bob_home = scratch.path.join("bob");
    let bob = bob_home.join("Maildir");
    fs::create_dir_all(&bob_home).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mdimap"))
        .arg("maildirmake")
        .arg(&bob)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let team = bob.join(".Team");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(team.join(sub)).unwrap();
    }
    fs::write(team.join("maildirfolder"), b"").unwrap();
    for n in 0..2u32 {
        let body = mta_message(&format!("team {n}"), "for the team");
        let name = courier_style_name(1_690_000_000 + u64::from(n), n, body.len());
        deliver(&team, &name, &body, at(1_690_000_000 + u64::from(n)));
    }
    fs::write(
        team.join("courierimapacl"),
        "owner aceilrstwx\nadministrators aceilrstwx\nanyone lr\n",
    )
    .unwrap();
    // Bob's own session numbers his folder first.
    let mut b = Imap::mdimap(&scratch, &bob);
    b.ok("SELECT INBOX.Team");
    b.logout();
    // One more message that nobody has numbered yet.
    let body = mta_message("team late", "late");
    let name = courier_style_name(1_690_000_100, 9, body.len());
    let late = deliver(&team, &name, &body, at(1_690_000_100));
    fs::rename(&late, team.join("cur").join(format!("{name}:2,"))).unwrap();

    let index = scratch.path.join("shared-index");
    fs::write(
        &index,
        format!(
            "bob\t1000\t1000\t{}\nme\t1000\t1000\t{}\n",
            bob_home.display(),
            scratch.path.display()
        ),
    )
    .unwrap();
    let settings = format!("IMAP_SHAREDINDEXFILE='{}'", index.display());
    let mailboxes = ["#shared.bob.Team"];
    let mut c = Imap::courier_with(&scratch, &settings);
    let courier_first = shared_answers(&mut c, &mailboxes);
    c.logout();
    let mut m = Imap::mdimap_with(&scratch, &mine, &settings);
    let mdimap = shared_answers(&mut m, &mailboxes);
    m.logout();
    let mut c = Imap::courier_with(&scratch, &settings);
    let courier_again = shared_answers(&mut c, &mailboxes);
    c.logout();
    assert_eq!(
        courier_first.0, mdimap.0,
        "LIST: left Courier, right mdimap"
    );
    assert_eq!(
        courier_first.1, mdimap.1,
        "MYRIGHTS: left Courier, right mdimap"
    );
    assert_same_views("virtual shared folder", &courier_first.2, &mdimap.2);
    assert_same_views("virtual shared folder, again", &courier_again.2, &mdimap.2);
    assert_eq!(
        courier_first.0.keys().collect::<Vec<_>>(),
        vec!["#shared.bob", "#shared.bob.Team"],
        "the scratch account's own maildir is not listed"
    );
    assert_eq!(mdimap.2[0].messages.len(), 3);
    let (uidv, _, numbered) = strict_uiddb(&team);
    assert_eq!(mdimap.2[0].uidvalidity, uidv, "Bob's UIDs");
    assert_eq!(
        mdimap.2[0].uids(),
        numbered.iter().map(|(u, _)| *u).collect::<Vec<_>>()
    );
}

/// A filesystem-shared folder (Courier's `maildirmake -S`, `-s write`, `--add`):
/// subscribed and synced by one server, its local copy (links, UIDs, private flags) read
/// by the other, and the message one appends seen by the other under the same UID.
fn filesystem_shared_folder_by_both(courier_first: bool) {
    let scratch = Scratch::new("shared-fs");
    let mine = scratch.maildir();
    let sharable = scratch.path.join("sharable");
    let s = sharable.to_str().unwrap();
    let make = |args: &[&str]| {
        let out = Command::new("/usr/bin/maildirmake")
            .args(args)
            .output()
            .expect("Courier's maildirmake (Debian package courier-base) is needed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    make(&["-S", s]);
    make(&["-s", "write", "-f", "Forum", s]);
    make(&["--add", &format!("firm={s}"), mine.to_str().unwrap()]);
    let forum = sharable.join(".Forum");
    for n in 0..2u32 {
        let body = mta_message(&format!("forum {n}"), "posted");
        let name = courier_style_name(1_690_000_000 + u64::from(n), n, body.len());
        let path = deliver(&forum, &name, &body, at(1_690_000_000 + u64::from(n)));
        fs::rename(&path, forum.join("cur").join(format!("{name}:2,"))).unwrap();
    }
    let mailbox = "shared.firm.Forum";
    let open = |courier: bool| {
        if courier {
            Imap::courier(&scratch)
        } else {
            Imap::mdimap(&scratch, &mine)
        }
    };
    let mut first = open(courier_first);
    let before = view(&mut first, mailbox);
    first.ok("UID STORE 1 +FLAGS (\\Flagged)");
    let appended = first.append(mailbox, "\\Answered", None, &client_message("new", "post"));
    let appenduid = appended.code("APPENDUID");
    // Courier's STATUS counts a shared folder's local copy as its last sync left it
    // (only opening the folder syncs); mdimap's syncs first. The second look agrees.
    view(&mut first, mailbox);
    let after_first = view(&mut first, mailbox);
    first.logout();
    let local = mine.join("shared-folders/firm/Forum");
    assert_eq!(
        fs::read_link(local.join("shared")).unwrap(),
        PathBuf::from(format!("{s}/.Forum"))
    );
    let mut second = open(!courier_first);
    let after_second = view(&mut second, mailbox);
    second.logout();
    let (who_first, who_second) = if courier_first {
        ("Courier", "mdimap")
    } else {
        ("mdimap", "Courier")
    };
    assert_eq!(before.messages.len(), 2, "{who_first}");
    let diffs = differences(&after_first, &after_second);
    assert!(
        diffs.is_empty(),
        "{who_first} made the local copy, {who_second} read it; they disagree \
         (\"Courier\" is {who_first}):\n  {}",
        diffs.join("\n  ")
    );
    assert!(after_second.by_uid(1).flags.contains("\\Flagged"));
    assert_eq!(after_second.messages.len(), 3);
    if !courier_first {
        // mdimap's APPENDUID names the UID both servers show (Courier's own answer
        // numbers the message in the sharable folder instead).
        let appenduid = appenduid.expect("APPENDUID");
        assert_eq!(appenduid[0], after_second.uidvalidity.to_string());
        assert_eq!(appenduid[1], after_second.messages[2].uid.to_string());
    }
    // Flags are private: the sharable files keep theirs.
    for name in fs::read_dir(forum.join("cur")).unwrap() {
        let name = name.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with('F'), "{name}");
    }
}

#[test]
fn filesystem_shared_folder_made_by_courier_read_by_mdimap() {
    filesystem_shared_folder_by_both(true);
}

#[test]
fn filesystem_shared_folder_made_by_mdimap_read_by_courier() {
    filesystem_shared_folder_by_both(false);
}

// ---------------------------------------------------------------------------
// Unit tests of the test's own parsing (known answers)
// ---------------------------------------------------------------------------

#[test]
fn helpers_parse_known_responses() {
    let v =
        parse_values(b"1 FETCH (UID 7 FLAGS (\\Seen $Label1) BODY[] {5}\r\nab)c\r RFC822.SIZE 5)");
    let items = v[2].list();
    assert_eq!(items[1], Value::Atom("7".into()));
    assert_eq!(items[5], Value::Str(b"ab)c\r".to_vec()));
    assert_eq!(
        parse_values(b"LIST (\\Noselect) \".\" \"INBOX.a b\"")[3],
        Value::Str(b"INBOX.a b".to_vec())
    );
    assert_eq!(literal_length(b"* 1 FETCH (BODY[] {12}"), Some(12));
    assert_eq!(literal_length(b"* OK done"), None);
    // RFC 3501 example date; 1996-07-17 02:44:25 UTC = 837571465.
    assert_eq!(
        parse_internal_date("17-Jul-1996 02:44:25 -0700"),
        837_571_465 + 7 * 3600
    );
    assert_eq!(
        parse_internal_date(" 1-Jan-2020 12:00:00 +0000"),
        1_577_880_000
    );
    assert_eq!(expand_set("1:3,7"), vec![1, 2, 3, 7]);
}

/// The `* QUOTA ...` line a server answers GETQUOTAROOT INBOX with (after checking the
/// root is Courier's `"ROOT"`).
fn quota_of_inbox(imap: &mut Imap) -> String {
    let reply = imap.ok("GETQUOTAROOT INBOX");
    let lines: Vec<String> = reply
        .untagged
        .iter()
        .map(|u| String::from_utf8_lossy(u).into_owned())
        .collect();
    assert!(
        lines.iter().any(|l| l == "* QUOTAROOT \"INBOX\" \"ROOT\""),
        "{}: {lines:?}",
        imap.who
    );
    lines
        .into_iter()
        .find(|l| l.starts_with("* QUOTA "))
        .unwrap_or_else(|| panic!("{}: no * QUOTA in {}", imap.who, reply.text()))
}

/// Both servers report `expected` for the maildir's quota.
fn assert_same_quota(context: &str, courier: &mut Imap, mdimap: &mut Imap, expected: &str) {
    let (c, m) = (quota_of_inbox(courier), quota_of_inbox(mdimap));
    assert_eq!(c, expected, "Courier, {context}");
    assert_eq!(m, expected, "mdimap, {context}");
}

#[test]
fn quota_use_changed_through_one_server_is_seen_by_the_other() {
    let scratch = Scratch::new("quota");
    let maildir = scratch.maildir();
    // As `maildirmake -q 100000S,50C` leaves it.
    fs::write(
        maildir.join("maildirsize"),
        "100000S,50C\n           0            0\n",
    )
    .unwrap();
    let mut courier = Imap::courier(&scratch);
    let mut mdimap = Imap::mdimap(&scratch, &maildir);
    let quota = |messages: u32| format!("* QUOTA \"ROOT\" (STORAGE 1 98 MESSAGE {messages} 50)");
    assert_same_quota(
        "at the start",
        &mut courier,
        &mut mdimap,
        "* QUOTA \"ROOT\" (STORAGE 0 98 MESSAGE 0 50)",
    );

    courier.append("INBOX", "", None, &client_message("By Courier", "one"));
    assert_same_quota(
        "after Courier's APPEND",
        &mut courier,
        &mut mdimap,
        &quota(1),
    );
    mdimap.append("INBOX", "", None, &client_message("By mdimap", "two"));
    assert_same_quota(
        "after mdimap's APPEND",
        &mut courier,
        &mut mdimap,
        &quota(2),
    );

    // Both count \Deleted messages out and back in, on the same message.
    courier.ok("SELECT INBOX");
    mdimap.ok("SELECT INBOX");
    courier.ok("UID STORE 1 +FLAGS (\\Deleted)");
    assert_same_quota(
        "after Courier's +\\Deleted",
        &mut courier,
        &mut mdimap,
        &quota(1),
    );
    mdimap.ok("NOOP");
    mdimap.ok("UID STORE 1 -FLAGS (\\Deleted)");
    assert_same_quota(
        "after mdimap's -\\Deleted",
        &mut courier,
        &mut mdimap,
        &quota(2),
    );
    mdimap.ok("UID STORE 2 +FLAGS (\\Deleted)");
    courier.ok("NOOP");
    courier.ok("EXPUNGE");
    assert_same_quota(
        "after Courier's EXPUNGE",
        &mut courier,
        &mut mdimap,
        &quota(1),
    );

    // A COPY through each into a folder each created.
    courier.ok("CREATE INBOX.ByCourier");
    mdimap.ok("CREATE INBOX.ByMdimap");
    mdimap.ok("NOOP");
    mdimap.ok("COPY 1 INBOX.ByCourier");
    courier.ok("COPY 1 INBOX.ByMdimap");
    assert_same_quota("after two COPYs", &mut courier, &mut mdimap, &quota(3));

    let text = fs::read_to_string(maildir.join("maildirsize")).unwrap();
    for line in text.lines().skip(1) {
        assert_eq!(
            line.len(),
            25,
            "a Courier line, 26 bytes with its newline: {line:?}"
        );
        let numbers: Vec<i64> = line
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(numbers.len(), 2, "{line:?}");
    }
    courier.logout();
    mdimap.logout();
}

/// Folders created, filled, renamed and deleted through one server are seen
/// so by the other, which has a session open on the same maildir the whole
/// time: the same LIST, and the renamed folder's messages under the same
/// UIDs and UIDVALIDITY. Both directions.
#[test]
fn folder_changes_by_one_server_are_seen_by_the_other() {
    for courier_acts in [true, false] {
        let scratch = Scratch::new(if courier_acts {
            "folders-by-courier"
        } else {
            "folders-by-mdimap"
        });
        let maildir = scratch.maildir();
        let courier = Imap::courier(&scratch);
        let mdimap = Imap::mdimap(&scratch, &maildir);
        let (mut actor, mut observer) = if courier_acts {
            (courier, mdimap)
        } else {
            (mdimap, courier)
        };
        let who = format!("{} acts, {} watches", actor.who, observer.who);
        observer.ok("SELECT INBOX");
        for name in [
            "INBOX.Alpha",
            "INBOX.Beta",
            "INBOX.Beta.Child",
            "INBOX.Doomed",
        ] {
            actor.ok(&format!("CREATE {name}"));
        }
        for n in 1..=3 {
            let msg = mta_message(&format!("alpha {n}"), "moves with its folder");
            actor.append("INBOX.Alpha", "\\Seen", None, &msg);
        }
        actor.append("INBOX.Beta.Child", "", None, &mta_message("child", "x"));
        let before = views(&mut actor, &["INBOX.Alpha"]);
        // Courier renames no folder that is open.
        actor.ok("SELECT INBOX");
        actor.ok("RENAME INBOX.Alpha INBOX.Gamma");
        actor.ok("RENAME INBOX.Beta INBOX.Delta");
        actor.ok("DELETE INBOX.Doomed");
        observer.ok("NOOP");
        assert_eq!(list(&mut actor), list(&mut observer), "{who}: LIST");
        let seen = list(&mut observer);
        for gone in [
            "INBOX.Alpha",
            "INBOX.Beta",
            "INBOX.Beta.Child",
            "INBOX.Doomed",
        ] {
            assert!(
                !seen.contains_key(gone),
                "{who}: {gone} still listed: {seen:?}"
            );
        }
        for there in ["INBOX.Gamma", "INBOX.Delta", "INBOX.Delta.Child"] {
            assert!(seen.contains_key(there), "{who}: {there} missing: {seen:?}");
        }
        // The renamed folder: the same messages, UIDs and UIDVALIDITY as
        // before the rename, for both servers.
        let after_actor = views(&mut actor, &["INBOX.Gamma"]);
        let after_observer = views(&mut observer, &["INBOX.Gamma"]);
        assert_eq!(
            after_actor[0].uids(),
            before[0].uids(),
            "{who}: UIDs kept by RENAME"
        );
        assert_same_views(&who, &after_actor, &after_observer);
        let child = views(&mut observer, &["INBOX.Delta.Child"]);
        assert_eq!(
            child[0].uids().len(),
            1,
            "{who}: the child moved with its parent"
        );
        actor.logout();
        observer.logout();
    }
}

// ---------------------------------------------------------------------------
// IMAP_EMPTYTRASH: the same purge by both
// ---------------------------------------------------------------------------

/// libfaketime (Debian package libfaketime), which moves Courier's clock: a file's ctime
/// cannot be set back, so the clock is moved forward instead.
const LIBFAKETIME: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

fn libfaketime() -> &'static str {
    LIBFAKETIME
        .iter()
        .copied()
        .find(|p| Path::new(p).is_file())
        .unwrap_or_else(|| {
            panic!(
                "libfaketime is not installed (looked for {LIBFAKETIME:?}); this test moves \
                 Courier's clock with it. Install the Debian package: \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y libfaketime \
                 (./test.sh does this when run as root)"
            )
        })
}

/// One maildir with messages in Trash (new/ and cur/), Sent (one `\Deleted`), Archive and
/// INBOX, all with Courier-style `,S=` names, and a quota whose `maildirsize` is right.
/// Returns it and the bytes and messages in Trash.
fn trash_fixture(scratch: &Scratch) -> (PathBuf, (usize, usize)) {
    let maildir = scratch.maildir();
    let mut total = (0usize, 0usize);
    let mut trash = (0usize, 0usize);
    let mut n = 0;
    for (dot, flags) in [
        (".Trash", None),
        (".Trash", Some("S")),
        (".Sent", Some("S")),
        (".Sent", Some("ST")),
        (".Sent", Some("")),
        (".Archive", Some("S")),
        ("", None),
    ] {
        let folder = if dot.is_empty() {
            maildir.clone()
        } else {
            maildir.join(dot)
        };
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(folder.join(sub)).unwrap();
        }
        if !dot.is_empty() {
            fs::write(folder.join("maildirfolder"), b"").unwrap();
        }
        n += 1;
        // The same bytes in both maildirs.
        let content = format!("Subject: {dot} {n}\n\nold mail\n").into_bytes();
        let name = courier_style_name(1_700_000_000, n, content.len());
        let delivered = deliver(&folder, &name, &content, at(1_700_000_000));
        if let Some(flags) = flags {
            fs::rename(
                &delivered,
                folder.join("cur").join(format!("{name}:2,{flags}")),
            )
            .unwrap();
        }
        if dot == ".Trash" {
            trash = (trash.0 + content.len(), trash.1 + 1);
        } else if !flags.is_some_and(|f| f.contains('T')) {
            total = (total.0 + content.len(), total.1 + 1);
        }
    }
    fs::write(
        maildir.join("maildirsize"),
        format!("1000000S\n{:>12} {:>12}\n", total.0, total.1),
    )
    .unwrap();
    (maildir, trash)
}

/// Message files left in new/ and cur/ of each folder, and `maildirsize`.
fn what_is_left(maildir: &Path) -> (BTreeMap<String, Vec<String>>, String) {
    let mut left = BTreeMap::new();
    for dot in ["", ".Trash", ".Sent", ".Archive"] {
        let folder = maildir.join(dot);
        let mut names = files(&folder.join("new"));
        names.extend(files(&folder.join("cur")));
        names.sort();
        left.insert(dot.to_string(), names);
    }
    let size = fs::read_to_string(maildir.join("maildirsize")).unwrap();
    (left, size)
}

/// Runs one server on `maildir`'s scratch with `a LOGOUT` as its whole input.
fn run_to_end(who: &str, mut cmd: Command, scratch: &Scratch) -> String {
    let log = scratch.path.join(format!("{who}-{}.log", next_number()));
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {who}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"a LOGOUT\r\n");
    drop(stdin);
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{who} did not exit");
        thread::sleep(Duration::from_millis(20));
    }
    let out = reader.join().unwrap();
    format!(
        "{out}\n---- stderr ----\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    )
}

/// Eight days on, with IMAP_EMPTYTRASH=Trash:7,Sent:7,Archive:30, Courier and mdimap leave
/// the same messages, and the same `maildirsize` line for the purge of Sent. Courier also
/// writes a negative line for what it purged from Trash, which it never counted (its
/// `emptytrash` hands `maildir_purge` the name `.Trash` without `./`, so
/// `maildirquota_countfolder` sees `.` and counts it): that line makes its `maildirsize`
/// undercount, and mdimap does not write it.
#[test]
fn empty_trash_leaves_what_courier_leaves() {
    let imapd = courier_imapd();
    let faketime = libfaketime();
    let eight_days = 8 * 24 * 3600;
    let mut config = fs::read_to_string(COURIER_CONFIG).unwrap();
    config.push_str("\nIMAP_EMPTYTRASH=Trash:7,Sent:7,Archive:30\n");

    let by_courier = Scratch::new("emptytrash-courier");
    let (maildir, trash) = trash_fixture(&by_courier);
    let conf = by_courier.path.join("imapd");
    fs::write(&conf, &config).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"set -a; . "$1"; set +a; exec "$2" Maildir"#)
        .arg("courier-imapd")
        .arg(&conf)
        .arg(imapd)
        .current_dir(&by_courier.path)
        // Courier purges before it notices the clock is ahead of the files' (it then says
        // "Clock skew detected" and ends): the purge is what is compared.
        .env("LD_PRELOAD", faketime)
        .env("FAKETIME", format!("+{eight_days}"))
        .env("NO_FAKE_STAT", "1");
    for var in [
        "IMAPLOGINTAG",
        "AUTHENTICATED",
        "MAILDIR",
        "IMAP_BROKENUIDV",
    ] {
        cmd.env_remove(var);
    }
    let said = run_to_end("courier", cmd, &by_courier);
    let courier_left = what_is_left(&maildir);
    assert!(
        courier_left.0[".Trash"].is_empty(),
        "Courier did not purge (is libfaketime working?):\n{said}"
    );

    let by_mdimap = Scratch::new("emptytrash-mdimap");
    let (maildir, _) = trash_fixture(&by_mdimap);
    let conf = by_mdimap.path.join("imapd");
    fs::write(&conf, &config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimapd"));
    cmd.arg("--preauth")
        .arg("--maildir")
        .arg(&maildir)
        .arg("--log-stderr")
        .arg("--config")
        .arg(&conf)
        .arg("--test-clock-offset")
        .arg(eight_days.to_string())
        .current_dir(&by_mdimap.path);
    let said = run_to_end("mdimapd", cmd, &by_mdimap);
    let mdimap_left = what_is_left(&maildir);
    assert_eq!(mdimap_left.0, courier_left.0, "mdimapd said:\n{said}");
    let trash_line = format!("{:>12} {:>12}", -(trash.0 as i64), -(trash.1 as i64));
    let courier_lines: Vec<&str> = courier_left
        .1
        .lines()
        .filter(|l| *l != trash_line)
        .collect();
    assert_eq!(
        courier_left.1.lines().count(),
        courier_lines.len() + 1,
        "Courier's Trash line: {}",
        courier_left.1
    );
    let mdimap_lines: Vec<&str> = mdimap_left.1.lines().collect();
    assert_eq!(mdimap_lines, courier_lines, "mdimapd said:\n{said}");
    assert_eq!(mdimap_lines.len(), 3, "{}", mdimap_left.1);
}

// ---------------------------------------------------------------------------
// UIDs numbered in place (APPEND, MULTIAPPEND, COPY, MOVE), and deliveries killed
// ---------------------------------------------------------------------------

/// UID → message bytes of the selected mailbox, as `UID FETCH 1:* (UID BODY.PEEK[])` says.
fn bodies_by_uid(imap: &mut Imap) -> BTreeMap<u32, Vec<u8>> {
    let reply = imap.ok("UID FETCH 1:* (UID BODY.PEEK[])");
    let mut out = BTreeMap::new();
    for (_, items) in fetch_responses(&reply) {
        let uid: u32 = items["UID"].text().parse().unwrap();
        let body = match &items["BODY[]"] {
            Value::Str(b) => b.clone(),
            other => panic!("{}: BODY[] is {other:?}", imap.who),
        };
        assert!(
            out.insert(uid, body).is_none(),
            "{}: UID {uid} answered twice:\n{}",
            imap.who,
            reply.text()
        );
    }
    out
}

/// The UIDs of `[APPENDUID v set]` or the destination set of `[COPYUID v src dst]`.
fn new_uids(reply: &Reply) -> (u32, Vec<u32>) {
    let (words, at) = match reply.code("APPENDUID") {
        Some(w) => (w, 1),
        None => (
            reply
                .code("COPYUID")
                .unwrap_or_else(|| panic!("no APPENDUID or COPYUID:\n{}", reply.text())),
            2,
        ),
    };
    (words[0].parse().unwrap(), expand_set(&words[at]))
}

/// Sends `tag APPEND mailbox` with each message as a LITERAL+ literal (mdimap's
/// MULTIAPPEND; one message is a plain APPEND) in one write, and reads the reply; `None`
/// when the server is gone first.
fn try_multiappend(imap: &mut Imap, mailbox: &str, messages: &[Vec<u8>]) -> Option<Reply> {
    let tag = imap.next_tag();
    let mut command = format!("{tag} APPEND {mailbox}").into_bytes();
    for m in messages {
        command.extend_from_slice(format!(" (\\Seen) {{{}+}}\r\n", m.len()).as_bytes());
        command.extend_from_slice(m);
    }
    command.extend_from_slice(b"\r\n");
    let sent = imap.stdin.as_mut().is_some_and(|stdin| {
        stdin
            .write_all(&command)
            .and_then(|_| stdin.flush())
            .is_ok()
    });
    if !sent {
        return None;
    }
    let prefix = format!("{tag} ");
    let mut untagged = Vec::new();
    loop {
        let r = imap.try_read_response()?;
        if r.starts_with(prefix.as_bytes()) {
            return Some(Reply {
                command: format!("APPEND {mailbox} ({} messages)", messages.len()),
                untagged,
                tagged: String::from_utf8_lossy(&r).into_owned(),
            });
        }
        untagged.push(r);
    }
}

/// A message as the client sends it, and as both servers then store and return it (LF
/// line ends in the file, CRLF on the wire: the BODY[] a FETCH returns).
fn numbered_message(label: &str) -> Vec<u8> {
    client_message(label, &format!("Message {label}."))
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().ino()
}

/// Issue 8, point 4: mdimap numbers what it APPENDs, MULTIAPPENDs, COPYs and MOVEs by
/// adding lines to `courierimapuiddb` in place instead of rewriting it. A Courier session
/// already running sees every message under the UID mdimap gave it at its next NOOP, a
/// fresh one sees the same, both agree with a fresh mdimap in everything, and Courier's
/// next new message gets a UID none of them has.
#[test]
fn courier_reads_the_uids_mdimap_added_in_place() {
    let scratch = Scratch::new("uiddb-in-place");
    let maildir = scratch.maildir();
    let t0 = 1_700_300_000;
    // 100 of them, so that mdimap's next UIDs (101 to about 220) keep the header's width:
    // the one rewrite a digit more costs (once per power of ten) is not what is tested.
    deliver_from_mta(&maildir, t0, 100, "delivered", "Delivered by the MTA.");
    // Courier numbers the folder first, as a migration finds it, and stays.
    let mut running = Imap::courier(&scratch);
    running.ok("SELECT INBOX");
    let db = maildir.join("courierimapuiddb");
    let written_by_courier = inode(&db);

    let mut m = Imap::mdimap(&scratch, &maildir);
    m.ok("CREATE INBOX.Work");
    m.ok("SELECT INBOX");
    let mut told: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for i in 0..25 {
        let msg = numbered_message(&format!("single {i}"));
        let reply = m.append("INBOX", "\\Seen", None, &msg);
        let (_, uids) = new_uids(&reply);
        told.insert(uids[0], msg);
    }
    // Enough lines in one delivery to cross a 4096-byte block of the file.
    let many: Vec<Vec<u8>> = (0..70)
        .map(|i| numbered_message(&format!("multi {i}")))
        .collect();
    let reply = try_multiappend(&mut m, "INBOX", &many).expect("mdimapd went away");
    assert!(reply.is_ok(), "MULTIAPPEND:\n{}", reply.text());
    let (_, uids) = new_uids(&reply);
    assert_eq!(uids.len(), 70);
    told.extend(uids.into_iter().zip(many));
    // COPY within INBOX and out of it, MOVE out of it and back.
    let first_told: Vec<u32> = told.keys().copied().take(12).collect();
    let copy_in = m.ok(&format!(
        "UID COPY {}:{} INBOX",
        first_told[0], first_told[4]
    ));
    for (src, dst) in first_told[..5].iter().zip(new_uids(&copy_in).1) {
        let body = told[src].clone();
        told.insert(dst, body);
    }
    m.ok(&format!(
        "UID COPY {}:{} INBOX.Work",
        first_told[5], first_told[8]
    ));
    let moved = m.ok(&format!(
        "UID MOVE {}:{} INBOX.Work",
        first_told[9], first_told[11]
    ));
    let (_, in_work) = new_uids(&moved);
    let moved_bodies: Vec<Vec<u8>> = first_told[9..12]
        .iter()
        .map(|uid| told.remove(uid).unwrap())
        .collect();
    m.ok("SELECT INBOX.Work");
    let back = m.ok(&format!("UID MOVE {} INBOX", in_work[0]));
    let (_, returned) = new_uids(&back);
    told.insert(returned[0], moved_bodies[0].clone());
    assert_eq!(
        inode(&db),
        written_by_courier,
        "mdimap replaced courierimapuiddb instead of adding to it"
    );

    // What the client was told, mdimap shows (bodies come back with CRLF, as sent).
    m.ok("SELECT INBOX");
    let mine = bodies_by_uid(&mut m);
    for (uid, body) in &told {
        assert_eq!(mine.get(uid), Some(body), "mdimap: UID {uid}");
    }
    // The Courier session that was running all along sees the same at its next NOOP.
    running.ok("NOOP");
    let theirs = bodies_by_uid(&mut running);
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        mine.keys().collect::<Vec<_>>(),
        "UIDs: left the running Courier, right mdimap"
    );
    assert!(
        theirs == mine,
        "the running Courier's messages differ from mdimap's"
    );

    // Fresh sessions of both agree in everything, the database is Courier's format.
    let mut fresh_courier = Imap::courier(&scratch);
    let courier_views = views(&mut fresh_courier, &["INBOX", "INBOX.Work"]);
    let mut fresh_mdimap = Imap::mdimap(&scratch, &maildir);
    let mdimap_views = views(&mut fresh_mdimap, &["INBOX", "INBOX.Work"]);
    assert_same_views(
        "after APPEND, MULTIAPPEND, COPY and MOVE by mdimap",
        &courier_views,
        &mdimap_views,
    );
    let (uidv, next, _) = strict_uiddb(&maildir);
    assert_eq!(uidv, courier_views[0].uidvalidity);
    strict_uiddb(&maildir.join(".Work"));

    // The next new message, through Courier, gets a UID nobody has; mdimap's after it too.
    let highest = *mine.keys().max().unwrap();
    let reply = running.append("INBOX", "", None, &numbered_message("by courier"));
    let (_, by_courier) = new_uids(&reply);
    assert!(
        by_courier[0] > highest && by_courier[0] >= next,
        "{}",
        reply.text()
    );
    let reply = m.append("INBOX", "", None, &numbered_message("by mdimap"));
    let (_, by_mdimap) = new_uids(&reply);
    assert!(by_mdimap[0] > by_courier[0], "{}", reply.text());
    for imap in [running, m, fresh_courier, fresh_mdimap] {
        imap.logout();
    }
}

/// After deliveries that ended abruptly: a fresh Courier and a fresh mdimap (in the order
/// given) see the same messages under the same UIDs, each UID once, every UID a client was
/// told still naming its message, every message in cur/ numbered; and the next message
/// each of them takes gets a UID above all.
fn both_servers_agree_after_a_crash(
    scratch: &Scratch,
    maildir: &Path,
    told: &BTreeMap<u32, Vec<u8>>,
    courier_first: bool,
    context: &str,
) {
    let (mut c, mut m) = if courier_first {
        let c = Imap::courier(scratch);
        (c, Imap::mdimap(scratch, maildir))
    } else {
        let m = Imap::mdimap(scratch, maildir);
        (Imap::courier(scratch), m)
    };
    let (courier_view, mdimap_view) = if courier_first {
        let cv = view(&mut c, "INBOX");
        (cv, view(&mut m, "INBOX"))
    } else {
        let mv = view(&mut m, "INBOX");
        (view(&mut c, "INBOX"), mv)
    };
    assert_same_views(context, std::slice::from_ref(&courier_view), &[mdimap_view]);
    let uids = courier_view.uids();
    let distinct: BTreeSet<u32> = uids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        uids.len(),
        "{context}: a UID twice: {uids:?}"
    );
    for (uid, body) in told {
        assert_eq!(
            &courier_view.by_uid(*uid).body,
            body,
            "{context}: UID {uid} no longer names the message the client was told"
        );
    }
    strict_uiddb(maildir);
    let highest = uids.iter().copied().max().unwrap_or(0);
    let (_, by_courier) = new_uids(&c.append("INBOX", "", None, &numbered_message("after")));
    assert!(
        by_courier[0] > highest,
        "{context}: Courier reused UID {}",
        by_courier[0]
    );
    let (_, by_mdimap) = new_uids(&m.append("INBOX", "", None, &numbered_message("after 2")));
    assert!(
        by_mdimap[0] > by_courier[0],
        "{context}: mdimap reused UID {}",
        by_mdimap[0]
    );
    c.logout();
    m.logout();
}

/// An mdimapd killed with SIGKILL at each step of numbering a delivery in place (the
/// messages placed in cur/ but not numbered; the header raised but no line written; some
/// blocks of lines written but not all) leaves a folder Courier and mdimap read alike, with
/// no UID given twice (the test-only crash points of debug builds, `--test-crash-at`).
#[test]
fn deliveries_killed_at_each_step_leave_uids_both_servers_agree_on() {
    let cases = [
        ("delivery-placed", 1, true),
        ("delivery-placed", 3, false),
        ("uiddb-header", 1, false),
        ("uiddb-header", 4, true),
        ("uiddb-block", 1, true),
        ("uiddb-block", 2, false),
    ];
    for (point, nth, courier_first) in cases {
        let context = format!("killed at {point} #{nth}");
        let scratch = Scratch::new(&format!("crash-{point}-{nth}"));
        let maildir = scratch.maildir();
        deliver_from_mta(&maildir, 1_700_400_000, 3, "delivered", "Before the crash.");
        Imap::courier(&scratch).logout();
        let crash = format!("{point}:{nth}");
        let mut m = Imap::mdimap_args(&scratch, &maildir, &["--test-crash-at", &crash]);
        let mut told: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let mut killed = false;
        for batch in 0..12 {
            // Blocks are crossed by many lines in one delivery; the other points by any.
            let count = if point == "uiddb-block" {
                70
            } else {
                1 + batch % 3
            };
            let messages: Vec<Vec<u8>> = (0..count)
                .map(|i| numbered_message(&format!("batch {batch} message {i}")))
                .collect();
            match try_multiappend(&mut m, "INBOX", &messages) {
                Some(reply) => {
                    assert!(reply.is_ok(), "{context}: {}", reply.text());
                    told.extend(new_uids(&reply).1.into_iter().zip(messages));
                }
                None => {
                    killed = true;
                    break;
                }
            }
        }
        assert!(killed, "{context}: the crash point was never reached");
        let status = m.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{context}: {status}\n{}",
            m.log_text()
        );
        drop(m);
        both_servers_agree_after_a_crash(&scratch, &maildir, &told, courier_first, &context);
    }
}

/// mdimapd killed with SIGKILL at random moments of a burst of APPENDs and MULTIAPPENDs,
/// round after round on one maildir: after each, Courier and mdimap agree and every UID a
/// client was told still names its message.
#[test]
fn deliveries_killed_at_random_leave_uids_both_servers_agree_on() {
    let scratch = Scratch::new("crash-random");
    let maildir = scratch.maildir();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut state = seed;
    let mut random = move |below: u64| {
        // xorshift64: enough to spread the kills; the seed is in every failure message.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut told: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for round in 0..10 {
        let context = format!("round {round}, seed {seed}");
        let m = Imap::mdimap(&scratch, &maildir);
        let pid = m.child.id() as i32;
        // The burst goes in from a thread of its own while this one picks the moment.
        let (m, replies) = {
            let mut m = m;
            let batches: Vec<Vec<Vec<u8>>> = (0..30)
                .map(|b| {
                    let n = if b % 5 == 4 { 8 } else { 1 };
                    (0..n)
                        .map(|i| numbered_message(&format!("round {round} batch {b} message {i}")))
                        .collect()
                })
                .collect();
            let delay = Duration::from_micros(random(40_000));
            let killer = thread::spawn(move || {
                thread::sleep(delay);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            });
            let mut replies = Vec::new();
            for messages in batches {
                match try_multiappend(&mut m, "INBOX", &messages) {
                    Some(reply) => replies.push((reply, messages)),
                    None => break,
                }
            }
            killer.join().unwrap();
            (m, replies)
        };
        for (reply, messages) in replies {
            assert!(reply.is_ok(), "{context}: {}", reply.text());
            told.extend(new_uids(&reply).1.into_iter().zip(messages));
        }
        drop(m);
        both_servers_agree_after_a_crash(&scratch, &maildir, &told, round % 2 == 0, &context);
        // What the checks appended themselves is not tracked; it is there, numbered.
    }
}
