//! Test harness shared by the integration tests: throw-away maildirs, messages
//! written the way an MTA writes them, the three server programs started over
//! real sockets, and a small IMAP client that returns whole responses.
//!
//! It owns only test plumbing. It must not reimplement server logic (no UID
//! assignment, no flag parsing beyond reading file names back): tests compare what
//! the server says with what is on disk, so the harness stays a plain observer.
//! Every blocking read has a timeout so a hung server fails a test instead of
//! hanging CI, and every child process is killed when its handle is dropped.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a test waits for an event (a process exit, a log line, a closed
/// connection) before calling it a hang: never a timing assertion, so far
/// beyond what the event takes even on a loaded two-core CI machine.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// How long any single read from a server may take before the test fails:
/// only a guard against a hang, so far beyond what an answer takes even on a
/// loaded two-core CI machine (a test that waits on purpose for something not
/// to come passes its own, shorter, duration).
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Password of the account written by [`TestDir::write_userfile`].
pub const PASSWORD: &str = "demo-secret";
/// SHA-512-crypt of [`PASSWORD`] with salt `testsalt`, computed independently of
/// mdimap (glibc crypt(3)), so login tests do not depend on `mdimap passwd`.
pub const PASSWORD_HASH: &str = "$6$testsalt$ztR2xJsHZ2fE43peSbDbR1e/kp/l5c3MVKxoQ/wj9Vs5DHpljuFCsCHtSTovwX3z6rPw9rIE4gKXpLpTSNUsw1";
/// Login name of the account written by [`TestDir::write_userfile`].
pub const USER: &str = "tester";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_number() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// Temporary directories and maildirs
// ---------------------------------------------------------------------------

/// A directory under the system temp dir, unique per test, removed on drop
/// unless the test is failing (then it is kept for inspection and its path printed).
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!(
            "mdimap-test-{}-{}-{}",
            std::process::id(),
            next_number(),
            name
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TestDir { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    /// A fresh, empty maildir `<dir>/Maildir` (cur/ new/ tmp/).
    pub fn maildir(&self) -> PathBuf {
        let m = self.path.join("Maildir");
        make_maildir(&m);
        m
    }

    /// Writes `<dir>/users` (mode 0600) with one account ([`USER`] / [`PASSWORD`]),
    /// home `<dir>/home`, maildir home/Maildir (created), and `<dir>/mdimapd.conf`
    /// pointing at it. Returns (config, userfile, maildir).
    ///
    /// The account runs as the invoking user, except under root: the server
    /// rightly refuses to serve mail as uid 0, so the account becomes
    /// nobody/nogroup (65534) and owns its home. Files the tests add later stay
    /// root-owned but world-readable, in directories the mail user can write,
    /// which is all a maildir needs.
    pub fn write_userfile(&self) -> (PathBuf, PathBuf, PathBuf) {
        let home = self.path.join("home");
        let maildir = home.join("Maildir");
        make_maildir(&maildir);
        let (uid, gid) = mail_ids();
        if unsafe { libc::getuid() } == 0 {
            chown_tree(&home, uid, gid);
        }
        let users = self.path.join("users");
        fs::write(
            &users,
            format!("{USER}:{PASSWORD_HASH}:{uid}:{gid}:{}:::\n", home.display()),
        )
        .unwrap();
        fs::set_permissions(&users, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let conf = self.path.join("mdimapd.conf");
        fs::write(
            &conf,
            format!(
                "# written by the integration tests\nMDIMAP_USERFILE={}\n",
                users.display()
            ),
        )
        .unwrap();
        (conf, users, maildir)
    }

    /// Everything below the test dir, as paths relative to it (for "nothing was
    /// created outside the maildir" checks).
    pub fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.path, &self.path, &mut out);
        out.sort();
        out
    }
}

/// (uid, gid) the login-mode account is served as: the invoking user's, or
/// nobody/nogroup under root.
pub fn mail_ids() -> (u32, u32) {
    if unsafe { libc::getuid() } == 0 {
        (65534, 65534)
    } else {
        unsafe { (libc::getuid(), libc::getgid()) }
    }
}

/// chown -R.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for e in fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(base, &p, out);
            }
        }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Creates `cur/ new/ tmp/` under `path`.
/// A process of the mail user that holds every inotify instance the kernel allows that
/// user (the descriptors survive exec), so that sessions started meanwhile run without
/// inotify, as the 129th session of one uid does. Kill it when done.
pub fn hold_all_inotify_instances() -> Child {
    let (uid, gid) = mail_ids();
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(128);
    let mut holder = Command::new("sleep");
    holder.arg("300").stdin(Stdio::null());
    let root = unsafe { libc::getuid() } == 0;
    unsafe {
        holder.pre_exec(move || {
            if root && (libc::setgid(gid) != 0 || libc::setuid(uid) != 0) {
                return Err(std::io::Error::last_os_error());
            }
            for _ in 0..limit + 8 {
                libc::inotify_init();
            }
            Ok(())
        });
    }
    holder.spawn().expect("cannot start the inotify holder")
}

pub fn make_maildir(path: &Path) {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(path.join(sub)).unwrap();
    }
}

/// Creates the Maildir++ folder `dotname` (e.g. `.Work`) under `maildir` the way
/// `maildirmake -f` does, and returns its path.
pub fn make_folder(maildir: &Path, dotname: &str) -> PathBuf {
    let f = maildir.join(dotname);
    make_maildir(&f);
    fs::write(f.join("maildirfolder"), b"").unwrap();
    f
}

/// A unique maildir base name in arrival order: same-second names sort by the
/// zero-padded process-wide counter.
pub fn unique_name(size: usize) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!(
        "{}.M{:06}P{}Q{}.mdimaptest,S={}",
        now.as_secs(),
        next_number(),
        std::process::id(),
        now.subsec_micros(),
        size
    )
}

/// Delivers `content` (LF line ends, as an MTA stores it) into `folder/new/`
/// through `tmp/`, and returns the final path.
pub fn deliver(folder: &Path, content: &str) -> PathBuf {
    let name = unique_name(content.len());
    let tmp = folder.join("tmp").join(&name);
    fs::write(&tmp, content).unwrap();
    let dest = folder.join("new").join(&name);
    fs::rename(&tmp, &dest).unwrap();
    dest
}

/// Puts `content` straight into `folder/cur/` with info `:2,<flags>`, as a mail
/// reader that already saw it would leave it.
pub fn put_cur(folder: &Path, content: &str, flags: &str) -> PathBuf {
    let name = unique_name(content.len());
    let tmp = folder.join("tmp").join(&name);
    fs::write(&tmp, content).unwrap();
    let dest = folder.join("cur").join(format!("{name}:2,{flags}"));
    fs::rename(&tmp, &dest).unwrap();
    dest
}

/// A small RFC 5322 message with LF line ends.
pub fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Alice Example <alice@example.org>\nTo: bob@example.net\nSubject: {subject}\nDate: Mon, 7 Aug 2023 10:00:00 +0000\nMessage-ID: <{}@test.example>\n\n{body}\n",
        next_number()
    )
}

/// `s` with every LF turned into CRLF (how the server must send it).
pub fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Sorted file names in `dir` (empty if it does not exist).
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Maildir flag letters of a file name (`...:2,FS` -> "FS").
pub fn flags_of_name(name: &str) -> String {
    match name.rfind(":2,") {
        Some(i) => name[i + 3..].to_string(),
        None => String::new(),
    }
}

/// Base name (before the first `:`).
pub fn base_of(name: &str) -> &str {
    name.split(':').next().unwrap()
}

/// The single file in `folder/cur` whose base name is `base`.
pub fn cur_file_with_base(folder: &Path, base: &str) -> Option<String> {
    files(&folder.join("cur"))
        .into_iter()
        .find(|n| base_of(n) == base)
}

/// The files in `folder/cur` whose content contains `needle`.
pub fn cur_files_containing(folder: &Path, needle: &str) -> Vec<String> {
    files(&folder.join("cur"))
        .into_iter()
        .filter(|n| {
            fs::read(folder.join("cur").join(n))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// The Courier UID database of one folder.
#[derive(Debug)]
pub struct UidDb {
    pub uidvalidity: u32,
    pub nextuid: u32,
    pub entries: Vec<(u32, String)>,
}

impl UidDb {
    pub fn uid_of(&self, base: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|(_, b)| b == base)
            .map(|(u, _)| *u)
    }
    pub fn base_of_uid(&self, uid: u32) -> Option<&str> {
        self.entries
            .iter()
            .find(|(u, _)| *u == uid)
            .map(|(_, b)| b.as_str())
    }
}

/// Writes `folder/courierimapuiddb` as Courier would, listing `known` messages
/// (paths of files in cur/) with their UIDs: tests use it to start from a folder
/// some earlier session (Courier's or mdimap's) already numbered.
pub fn write_uiddb(folder: &Path, uidvalidity: u32, nextuid: u32, known: &[(u32, &Path)]) {
    let mut text = format!("1 {uidvalidity} {nextuid}\n");
    for (uid, p) in known {
        text.push_str(&format!(
            "{uid} {}\n",
            base_of(p.file_name().unwrap().to_str().unwrap())
        ));
    }
    let tmp = folder.join("tmp").join(format!("uiddb.{}", next_number()));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, folder.join("courierimapuiddb")).unwrap();
}

pub fn read_uiddb(folder: &Path) -> UidDb {
    let path = folder.join("courierimapuiddb");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let head: Vec<u32> = lines
        .next()
        .unwrap_or_else(|| panic!("{} is empty", path.display()))
        .split(' ')
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("bad uiddb header in {}: {text:?}", path.display()))
        })
        .collect();
    assert_eq!(
        head.len(),
        3,
        "uiddb header must be `1 uidv nextuid`: {text:?}"
    );
    assert_eq!(head[0], 1, "uiddb version must be 1: {text:?}");
    let entries = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (u, b) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad uiddb line {l:?}"));
            (
                u.parse().unwrap_or_else(|_| panic!("bad uid in {l:?}")),
                b.trim_start().to_string(),
            )
        })
        .collect();
    UidDb {
        uidvalidity: head[1],
        nextuid: head[2],
        entries,
    }
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/// One `mdimapd` process serving one connection; killed on drop.
pub struct Server {
    pub child: Child,
    pub log: PathBuf,
}

impl Server {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- mdimapd log {} ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// A connected pair of sockets over 127.0.0.1: (client side, server side).
fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Starts `mdimapd` with `args`, fd 0 and fd 1 being the server side of a real TCP
/// connection, and returns it with a client on the other end (greeting read).
pub fn spawn_mdimapd(dir: &TestDir, args: &[&str]) -> (Server, Client) {
    let (server, client) = spawn_mdimapd_raw(dir, args, |_| {});
    let mut c = Client::new(client);
    c.greeting = c.read_line();
    (server, c)
}

/// As [`spawn_mdimapd`], with `prepare` given the command before it starts
/// (an extra variable, a descriptor to leak), and nothing read: the raw
/// client socket is returned.
pub fn spawn_mdimapd_raw(
    dir: &TestDir,
    args: &[&str],
    prepare: impl FnOnce(&mut Command),
) -> (Server, TcpStream) {
    let (client, server_sock) = socket_pair();
    let log = dir.join(&format!("mdimapd-{}.log", next_number()));
    let stdin: OwnedFd = server_sock.try_clone().unwrap().into();
    let stdout: OwnedFd = server_sock.into();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimapd"));
    cmd.args(args)
        .arg("--log-stderr")
        .env("HOME", &dir.path)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(fs::File::create(&log).unwrap()));
    prepare(&mut cmd);
    let child = cmd.spawn().expect("cannot start mdimapd");
    // The Command (holding our copies of the server socket) is gone here, so the
    // client sees EOF exactly when mdimapd closes the connection.
    drop(cmd);
    (Server { child, log }, client)
}

/// A field of /proc/<pid>/status in kB (`VmHWM` is the peak resident set:
/// memory as the server really used it, not as it reserved it).
pub fn proc_status_kb(pid: i32, field: &str) -> u64 {
    let value = status_field(pid, field);
    value
        .strip_suffix(" kB")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} of {pid} is not in kB: {value:?}"))
}

/// A counter of /proc/<pid>/io (`rchar`, `wchar`, `syscw`…).
pub fn proc_io(pid: i32, field: &str) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/io: {e}"));
    io.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/io:\n{io}"))
}

/// `mdimapd --preauth --maildir <maildir>` over a socket.
pub fn preauth(dir: &TestDir, maildir: &Path) -> (Server, Client) {
    let (s, c) = spawn_mdimapd(dir, &["--preauth", "--maildir", maildir.to_str().unwrap()]);
    assert!(
        c.greeting.starts_with("* PREAUTH"),
        "greeting: {}",
        c.greeting
    );
    (s, c)
}

/// [`preauth`] with the configuration file `conf`.
pub fn preauth_with_config(dir: &TestDir, maildir: &Path, conf: &Path) -> (Server, Client) {
    spawn_mdimapd(
        dir,
        &[
            "--preauth",
            "--maildir",
            maildir.to_str().unwrap(),
            "--config",
            conf.to_str().unwrap(),
        ],
    )
}

/// Sets the modification time of the file at `path` (a message's INTERNALDATE).
pub fn set_file_mtime(path: &Path, when: std::time::SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// `mdimapd` in login mode, with the account from [`TestDir::write_userfile`]
/// (written if missing). Returns the server, a client at the greeting, and the maildir.
pub fn login_mode(dir: &TestDir) -> (Server, Client, PathBuf) {
    let conf = dir.join("mdimapd.conf");
    let users = dir.join("users");
    let maildir = dir.join("home/Maildir");
    if !users.exists() {
        dir.write_userfile();
    }
    let (s, c) = spawn_mdimapd(
        dir,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--userfile",
            users.to_str().unwrap(),
        ],
    );
    assert!(c.greeting.starts_with("* OK"), "greeting: {}", c.greeting);
    (s, c, maildir)
}

/// Spawns `cmd` (mdimap-listen, or the demo that execs it) with stderr piped
/// and drained into a log for the program's whole life, so it never blocks on
/// a full pipe. Every `listening on ADDR:PORT` line (` (TLS)` after it for an
/// implicit-TLS port) is sent on the channel as `(port, tls)`.
pub fn spawn_announcing(
    cmd: &mut Command,
) -> (Child, Arc<Mutex<String>>, mpsc::Receiver<(u16, bool)>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let log2 = log.clone();
    thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    log2.lock().unwrap().push_str(&line);
                    if let Some(rest) = line.trim_end().split("listening on ").nth(1) {
                        let (addr, tls) = match rest.strip_suffix(" (TLS)") {
                            Some(a) => (a, true),
                            None => (rest, false),
                        };
                        if let Some(port) =
                            addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok())
                        {
                            let _ = tx.send((port, tls));
                        }
                    }
                }
            }
        }
    });
    (child, log, rx)
}

/// A long-running program (mdimap-listen, mdimap demo) that announces
/// `mdimap-listen: listening on 127.0.0.1:PORT` on stderr. SIGTERM, then SIGKILL, on drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Spawns `cmd` with stderr piped and waits up to 20 s for the port announcement.
    pub fn start(mut cmd: Command) -> Daemon {
        let (mut child, log, rx) = spawn_announcing(&mut cmd);
        // The first plain port announced (the demo also announces its TLS port).
        let plain = || loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok((port, false)) => return Ok(port),
                Ok((_, true)) => continue,
                Err(e) => return Err(e),
            }
        };
        match plain() {
            Ok(port) => {
                assert_ne!(port, 0, "the announced port must be the real bound port");
                Daemon { child, port, log }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "{cmd:?} did not print `mdimap-listen: listening on 127.0.0.1:PORT` within 20 s \
                     (exit: {status:?}); stderr:\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn connect(&self) -> Client {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut c = Client::new(s);
        c.greeting = c.read_line();
        c
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then wait up to `timeout`; returns whether it exited.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) && !self.terminate(Duration::from_secs(5)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("---- daemon stderr ----\n{}", self.log.lock().unwrap());
        }
    }
}

/// `mdimap-listen --config <conf> --listen 127.0.0.1:0 --log-stderr`.
pub fn listener(conf: &Path) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimap-listen"));
    cmd.arg("--config")
        .arg(conf)
        .args(["--listen", "127.0.0.1:0", "--log-stderr"]);
    Daemon::start(cmd)
}

/// `mdimap demo --dir <dir> --port 0` (dir is created by the demo).
pub fn demo(dir: &Path) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimap"));
    cmd.arg("demo").arg("--dir").arg(dir).args(["--port", "0"]);
    Daemon::start(cmd)
}

pub fn signal(pid: i32, sig: i32) {
    unsafe {
        libc::kill(pid, sig);
    }
}

/// PIDs whose parent is `ppid` (from /proc).
pub fn children_of(ppid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let _state = f.next();
        if f.next().and_then(|p| p.parse::<i32>().ok()) == Some(ppid) {
            out.push(pid);
        }
    }
    out
}

/// The `mdimapd` child of the listener `d` that serves the connection whose
/// client end is `client` (matched by the TCPREMOTEPORT the listener gave it).
/// Waits up to 5 s for it to appear.
pub fn session_of(d: &Daemon, client: &TcpStream) -> i32 {
    let port = client.local_addr().unwrap().port();
    let wanted = format!("TCPREMOTEPORT={port}");
    let mut found = None;
    wait_for(Duration::from_secs(5), || {
        found = children_of(d.pid())
            .into_iter()
            .find(|&p| environ_of(p).contains(&wanted));
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no child of mdimap-listen has {wanted}"))
}

/// The environment of a process, as `NAME=value` strings.
pub fn environ_of(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|&c| c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The IMAP client
// ---------------------------------------------------------------------------

/// One command's result: the untagged (and continuation) lines in arrival order,
/// then the tagged line. Literals are inlined as `{n}\r\n<n bytes>`.
#[derive(Debug, Clone)]
pub struct Response {
    pub untagged: Vec<String>,
    pub tagged: String,
}

impl Response {
    /// "OK", "NO" or "BAD" (the word after the tag).
    pub fn status(&self) -> &str {
        self.tagged.split(' ').nth(1).unwrap_or("")
    }
    pub fn is_ok(&self) -> bool {
        self.status().eq_ignore_ascii_case("OK")
    }
    pub fn is_no(&self) -> bool {
        self.status().eq_ignore_ascii_case("NO")
    }
    pub fn is_bad(&self) -> bool {
        self.status().eq_ignore_ascii_case("BAD")
    }
    /// The tagged text after the status word.
    pub fn text(&self) -> &str {
        self.tagged.splitn(3, ' ').nth(2).unwrap_or("")
    }
    /// Untagged lines starting with `prefix` (case-insensitively).
    pub fn lines(&self, prefix: &str) -> Vec<&String> {
        self.untagged
            .iter()
            .filter(|l| starts_with_ci(l, prefix))
            .collect()
    }
    pub fn line(&self, prefix: &str) -> Option<&String> {
        self.untagged.iter().find(|l| starts_with_ci(l, prefix))
    }
    /// Whether any line (untagged or tagged) contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.untagged.iter().any(|l| l.contains(needle)) || self.tagged.contains(needle)
    }
    /// The number n of the untagged `* n <WORD>` response (EXISTS, RECENT), if any.
    pub fn count(&self, word: &str) -> Option<u32> {
        self.untagged.iter().rev().find_map(|l| {
            let mut it = l.split(' ');
            (it.next() == Some("*")).then_some(())?;
            let n = it.next()?.parse().ok()?;
            (it.next()?.eq_ignore_ascii_case(word) && it.next().is_none()).then_some(n)
        })
    }
    /// Numbers of every `* n EXPUNGE`, in order.
    pub fn expunged(&self) -> Vec<u32> {
        self.untagged
            .iter()
            .filter_map(|l| {
                let mut it = l.split(' ');
                (it.next() == Some("*")).then_some(())?;
                let n = it.next()?.parse().ok()?;
                it.next()?.eq_ignore_ascii_case("EXPUNGE").then_some(n)
            })
            .collect()
    }
    /// Numbers of `* SEARCH ...`.
    pub fn search(&self) -> Vec<u32> {
        let l = self
            .line("* SEARCH")
            .unwrap_or_else(|| panic!("no * SEARCH in {self:#?}"));
        l[8..]
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }
    /// The untagged `* n FETCH (...)` lines, as (n, line).
    pub fn fetches(&self) -> Vec<(u32, &String)> {
        self.untagged
            .iter()
            .filter_map(|l| {
                let mut it = l.splitn(4, ' ');
                (it.next() == Some("*")).then_some(())?;
                let n = it.next()?.parse().ok()?;
                starts_with_ci(it.next()?, "FETCH").then_some((n, l))
            })
            .collect()
    }
    /// The words of the response code `[NAME ...]` in the first line, untagged or tagged,
    /// that has one.
    pub fn code(&self, name: &str) -> Option<Vec<String>> {
        self.untagged
            .iter()
            .chain(std::iter::once(&self.tagged))
            .find_map(|l| code(l, name))
    }
    /// The first FETCH line for message n.
    pub fn fetch(&self, n: u32) -> &String {
        self.fetches()
            .into_iter()
            .find(|(m, _)| *m == n)
            .map(|(_, l)| l)
            .unwrap_or_else(|| panic!("no FETCH for message {n} in {self:#?}"))
    }
}

pub fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// What became of a command sent with [`Client::try_cmd_bytes`].
#[derive(Debug)]
pub enum Outcome {
    /// The tagged response came.
    Done(Response),
    /// The server closed the connection first; the lines it sent before.
    Closed(Vec<String>),
}

/// Outcome of a read with a short timeout.
#[derive(Debug, PartialEq)]
pub enum Read1 {
    Line(String),
    Timeout,
    Eof,
}

pub struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
    next_tag: u32,
    /// Bytes of a line whose end has not arrived yet (kept across timeouts).
    pending: Vec<u8>,
    pub greeting: String,
    pub timeout: Duration,
}

impl Client {
    pub fn new(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
            next_tag: 1,
            pending: Vec::new(),
            greeting: String::new(),
            timeout: READ_TIMEOUT,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn tag(&mut self) -> String {
        let t = format!("t{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to server failed: {e}"));
    }

    /// One raw line up to CRLF (without it), waiting at most `timeout`.
    /// A literal announced at the end of the line is not followed here.
    fn raw_line(&mut self, timeout: Duration) -> Read1 {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let r = self.reader.read_until(b'\n', &mut self.pending);
        self.stream.set_read_timeout(Some(self.timeout)).unwrap();
        match r {
            Ok(0) => Read1::Eof,
            Ok(_) if !self.pending.ends_with(b"\n") => Read1::Eof,
            Ok(_) => {
                let mut l = std::mem::take(&mut self.pending);
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                Read1::Line(String::from_utf8_lossy(&l).into_owned())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Read1::Timeout
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Read1::Eof,
            Err(e) => panic!("read from server failed: {e}"),
        }
    }

    /// One response line with any literals inlined, waiting at most `timeout`
    /// for its first byte.
    pub fn read_line_within(&mut self, timeout: Duration) -> Read1 {
        let mut line = match self.raw_line(timeout) {
            Read1::Line(l) => l,
            other => return other,
        };
        let mut segment = line.clone();
        while let Some(n) = literal_size(segment.as_bytes()) {
            assert!(n < 200_000_000, "absurd literal from server: {segment}");
            let mut data = vec![0u8; n];
            match self.reader.read_exact(&mut data) {
                Ok(()) => {}
                // The server died in the middle of the literal (a test killed it): as
                // an end of file before the line, for callers that expect that.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                    ) =>
                {
                    return Read1::Eof;
                }
                Err(e) => panic!("reading a {n}-byte literal after {line:?}: {e}"),
            }
            line.push_str("\r\n");
            line.push_str(&String::from_utf8_lossy(&data));
            segment = match self.raw_line(self.timeout) {
                Read1::Line(l) => l,
                Read1::Eof => return Read1::Eof,
                other => panic!("line after a literal: {other:?} (so far: {line:?})"),
            };
            line.push_str(&segment);
        }
        Read1::Line(line)
    }

    /// One response line; panics on timeout or EOF.
    pub fn read_line(&mut self) -> String {
        match self.read_line_within(self.timeout) {
            Read1::Line(l) => l,
            other => panic!("expected a line from the server, got {other:?}"),
        }
    }

    /// Reads lines until the tagged response for `tag`.
    pub fn read_until_tagged(&mut self, tag: &str, untagged: Vec<String>) -> Response {
        match self.read_until_tagged_or_close(tag, untagged) {
            Outcome::Done(r) => r,
            Outcome::Closed(lines) => panic!(
                "waiting for the tagged response to {tag}: the server closed the connection; \
                 untagged so far: {lines:#?}"
            ),
        }
    }

    /// Reads lines until the tagged response for `tag`, or until the server
    /// closes the connection. A timeout still fails the test.
    fn read_until_tagged_or_close(&mut self, tag: &str, mut untagged: Vec<String>) -> Outcome {
        let prefix = format!("{tag} ");
        loop {
            match self.read_line_within(self.timeout) {
                Read1::Line(l) if l.starts_with(&prefix) => {
                    return Outcome::Done(Response {
                        untagged,
                        tagged: l,
                    });
                }
                Read1::Line(l) => untagged.push(l),
                Read1::Eof => return Outcome::Closed(untagged),
                Read1::Timeout => panic!(
                    "waiting for the tagged response to {tag}: timeout; untagged so far: {untagged:#?}"
                ),
            }
        }
    }

    /// Sends `tag text\r\n`, where `text` may contain literals `{n}\r\n<data>`
    /// (waits for `+` first, as a client must) or `{n+}\r\n<data>` (does not wait).
    /// If the server answers a synchronizing literal with a tagged response
    /// instead of `+`, that response is returned at once.
    pub fn cmd_bytes(&mut self, text: &[u8]) -> Response {
        let (tag, outcome) = self.try_cmd_bytes(text);
        match outcome {
            Outcome::Done(r) => r,
            Outcome::Closed(lines) => panic!(
                "{tag} {}: the server closed the connection; it sent {lines:#?}",
                String::from_utf8_lossy(text)
            ),
        }
    }

    /// [`Client::cmd_bytes`] that also reports the server closing the
    /// connection (after a `* BYE`, say) instead of failing; returns the tag
    /// used too.
    pub fn try_cmd_bytes(&mut self, text: &[u8]) -> (String, Outcome) {
        let tag = self.tag();
        let mut out = format!("{tag} ").into_bytes();
        let mut untagged = Vec::new();
        let mut i = 0;
        while i < text.len() {
            if let Some((after_crlf, n, sync)) = literal_at(text, i) {
                out.extend_from_slice(&text[i..after_crlf]);
                if sync {
                    self.send(&out);
                    out.clear();
                    loop {
                        match self.read_line_within(self.timeout) {
                            Read1::Line(l) if l.starts_with('+') => break,
                            Read1::Line(l) if l.starts_with(&format!("{tag} ")) => {
                                let r = Response {
                                    untagged,
                                    tagged: l,
                                };
                                return (tag, Outcome::Done(r));
                            }
                            Read1::Line(l) => untagged.push(l),
                            Read1::Eof => return (tag, Outcome::Closed(untagged)),
                            Read1::Timeout => {
                                panic!("waiting for `+` after a literal announcement: timeout")
                            }
                        }
                    }
                    assert!(
                        after_crlf + n <= text.len(),
                        "server sent `+` for a literal the test did not mean to send ({n} bytes)"
                    );
                }
                let end = (after_crlf + n).min(text.len());
                out.extend_from_slice(&text[after_crlf..end]);
                i = end;
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        out.extend_from_slice(b"\r\n");
        // A server that has closed may reset the connection under the write.
        if self.stream.write_all(&out).is_err() {
            return (tag, Outcome::Closed(untagged));
        }
        let outcome = self.read_until_tagged_or_close(&tag, untagged);
        (tag, outcome)
    }

    pub fn cmd(&mut self, text: &str) -> Response {
        self.cmd_bytes(text.as_bytes())
    }

    /// `cmd`, asserting a tagged OK.
    pub fn ok(&mut self, text: &str) -> Response {
        let r = self.cmd(text);
        assert!(r.is_ok(), "expected OK for {text:?}, got {r:#?}");
        r
    }

    /// `cmd`, asserting a tagged NO.
    pub fn no(&mut self, text: &str) -> Response {
        let r = self.cmd(text);
        assert!(r.is_no(), "expected NO for {text:?}, got {r:#?}");
        r
    }

    /// `cmd`, asserting a tagged NO or BAD.
    pub fn refused(&mut self, text: &str) -> Response {
        let r = self.cmd(text);
        assert!(
            r.is_no() || r.is_bad(),
            "expected NO or BAD for {text:?}, got {r:#?}"
        );
        r
    }

    /// Sends `tag command` and returns the untagged responses exactly as
    /// the server sent them (literals and line ends included, not made
    /// UTF-8) and the tagged line: for byte-for-byte comparisons.
    pub fn cmd_raw(&mut self, command: &[u8]) -> (Vec<u8>, String) {
        let tag = self.tag();
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.send(&line);
        let prefix = format!("{tag} ");
        let mut untagged = Vec::new();
        loop {
            let mut l = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut l)
                .unwrap_or_else(|e| panic!("reading the answer to {tag}: {e}"));
            assert!(n > 0, "the server closed the connection during {tag}");
            if l.starts_with(prefix.as_bytes()) {
                return (untagged, String::from_utf8_lossy(&l).trim_end().to_string());
            }
            untagged.extend_from_slice(&l);
            // A line ending in {n} is followed by n bytes, then the rest of the response.
            while let Some(n) = l.strip_suffix(b"\r\n").and_then(literal_size) {
                let mut data = vec![0u8; n];
                self.reader
                    .read_exact(&mut data)
                    .unwrap_or_else(|e| panic!("reading a {n}-byte literal for {tag}: {e}"));
                untagged.extend_from_slice(&data);
                l.clear();
                self.reader
                    .read_until(b'\n', &mut l)
                    .unwrap_or_else(|e| panic!("reading the answer to {tag}: {e}"));
                untagged.extend_from_slice(&l);
            }
        }
    }

    /// Reads until EOF (or fails after `timeout`), returning what came.
    pub fn read_to_eof(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "server did not close the connection; got {out:#?}"
            );
            match self.read_line_within(left) {
                Read1::Line(l) => out.push(l),
                Read1::Eof => return out,
                Read1::Timeout => panic!("server did not close the connection; got {out:#?}"),
            }
        }
    }
}

/// If `text[i..]` starts a literal announcement `{n}\r\n` or `{n+}\r\n`, returns
/// (index after the CRLF, n, synchronizing).
fn literal_at(text: &[u8], i: usize) -> Option<(usize, usize, bool)> {
    if text[i] != b'{' {
        return None;
    }
    let mut j = i + 1;
    while j < text.len() && text[j].is_ascii_digit() {
        j += 1;
    }
    if j == i + 1 {
        return None;
    }
    let n: usize = std::str::from_utf8(&text[i + 1..j]).ok()?.parse().ok()?;
    let sync = if text.get(j) == Some(&b'+') {
        j += 1;
        false
    } else {
        true
    };
    if text.get(j) == Some(&b'}')
        && text.get(j + 1) == Some(&b'\r')
        && text.get(j + 2) == Some(&b'\n')
    {
        Some((j + 3, n, sync))
    } else {
        None
    }
}

/// The size of a literal announced at the end of a server line (without its
/// line end).
fn literal_size(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

/// `{len}\r\n<s>`: a synchronizing literal for [`Client::cmd`].
pub fn lit(s: &str) -> String {
    format!("{{{}}}\r\n{s}", s.len())
}

/// `{len+}\r\n<s>`: a LITERAL+ literal.
pub fn lit_plus(s: &str) -> String {
    format!("{{{}+}}\r\n{s}", s.len())
}

// ---------------------------------------------------------------------------
// Parsing pieces of responses
// ---------------------------------------------------------------------------

/// The IMAP string (quoted, literal or NIL) right after `key` in `line`, e.g.
/// `string_after(l, "BODY[] ")`. `None` when the key is missing or the value is NIL.
pub fn string_after(line: &str, key: &str) -> Option<Vec<u8>> {
    let at = find_ci(line, key)? + key.len();
    parse_string(&line.as_bytes()[at..]).map(|(v, _)| v)
}

/// Parses an IMAP string at the start of `b`; returns it and the bytes consumed.
pub fn parse_string(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    match b.first()? {
        b'"' => {
            let mut out = Vec::new();
            let mut i = 1;
            while i < b.len() {
                match b[i] {
                    b'\\' => {
                        out.push(*b.get(i + 1)?);
                        i += 2;
                    }
                    b'"' => return Some((out, i + 1)),
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            None
        }
        b'{' => {
            let close = b.iter().position(|&c| c == b'}')?;
            let n: usize = std::str::from_utf8(&b[1..close])
                .ok()?
                .trim_end_matches('+')
                .parse()
                .ok()?;
            let start = close + 3; // "}\r\n"
            Some((b.get(start..start + n)?.to_vec(), start + n))
        }
        _ if b.len() >= 3 && b[..3].eq_ignore_ascii_case(b"NIL") => None,
        _ => {
            // An atom (e.g. a mailbox name sent unquoted).
            let end = b
                .iter()
                .position(|&c| c == b' ' || c == b')' || c == b'\r')
                .unwrap_or(b.len());
            Some((b[..end].to_vec(), end))
        }
    }
}

pub fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(&needle.to_ascii_lowercase())
}

/// The decimal number right after `key` (e.g. "RFC822.SIZE ", "UID ").
pub fn number_after(line: &str, key: &str) -> Option<u64> {
    let at = find_ci(line, key)? + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The flag list after `FLAGS (` in a line.
pub fn flags_in(line: &str) -> Vec<String> {
    let at = find_ci(line, "FLAGS (").unwrap_or_else(|| panic!("no FLAGS in {line}")) + 7;
    let end = line[at..].find(')').unwrap() + at;
    line[at..end]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn has_flag(line: &str, flag: &str) -> bool {
    flags_in(line).iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// The space-separated words of the response code `[NAME ...]` in `text`.
pub fn code(text: &str, name: &str) -> Option<Vec<String>> {
    let at = find_ci(text, &format!("[{name}"))? + 1;
    let end = text[at..].find(']')? + at;
    let words: Vec<String> = text[at..end]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    words[0]
        .eq_ignore_ascii_case(name)
        .then(|| words[1..].to_vec())
}

/// `1:3,5` -> [1, 2, 3, 5].
pub fn expand_set(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                out.extend(a.min(b)..=a.max(b));
            }
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// A parsed `* LIST (attrs) "delim" name` line.
#[derive(Debug)]
pub struct ListEntry {
    pub attrs: Vec<String>,
    pub delimiter: Option<String>,
    pub name: String,
}

impl ListEntry {
    pub fn has(&self, attr: &str) -> bool {
        self.attrs.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }
}

/// Parses the `* LIST` or `* LSUB` lines of a response.
pub fn list_entries(r: &Response, kind: &str) -> Vec<ListEntry> {
    let prefix = format!("* {kind} (");
    r.lines(&prefix)
        .into_iter()
        .map(|l| {
            let rest = &l[prefix.len()..];
            let close = rest.find(')').unwrap();
            let attrs = rest[..close]
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let b = rest[close + 1..].trim_start().as_bytes();
            let (delim, used) = match parse_string(b) {
                Some((d, used)) => (Some(String::from_utf8_lossy(&d).into_owned()), used),
                None => (None, 3),
            };
            let b = &b[used..];
            let b = &b[b.iter().position(|&c| c != b' ').unwrap_or(0)..];
            let (name, _) = parse_string(b).unwrap_or_else(|| panic!("no mailbox name in {l}"));
            ListEntry {
                attrs,
                delimiter: delim,
                name: String::from_utf8_lossy(&name).into_owned(),
            }
        })
        .collect()
}

/// Minimal base64 (standard alphabet, padded) for SASL tests.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Polls `cond` every 20 ms for up to `timeout`.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Dovecot, for tests that compare with it (migrate_dovecot, search_sort,
// corpus_dovecot)
// ---------------------------------------------------------------------------
//
// Debian's dovecot-imapd conflicts with courier-imap, which other tests need
// installed, so Dovecot is never installed: its packages are fetched with
// `apt-get download` and unpacked with `dpkg -x` into a cache under the target
// directory (as benches/setup_dovecot.sh does for the benchmark), and run with
// LD_LIBRARY_PATH pointing into it. Dovecot refuses to serve mail as root, so
// under root it runs as nobody, who then owns the maildir, as a mail user
// would. Without the packages a test fails with instructions; it never skips.

/// Dovecot's IMAP program, configuration tool and libraries inside the unpacked packages.
pub const DOVECOT_IMAP: &str = "usr/lib/dovecot/imap";
pub const DOVECOT_CONF_TOOL: &str = "usr/bin/doveconf";
pub const DOVECOT_LIBS: &str = "usr/lib/dovecot";

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Dovecot unpacked, fetched once per target directory.
pub fn dovecot_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cache = unpack_dovecot();
        // Under root Dovecot runs as nobody, who must reach the programs: a target
        // directory below /root is not reachable, so use a world-readable copy.
        if is_root() && !reachable_by_all(&cache) {
            return world_readable_copy(&cache);
        }
        cache
    })
}

/// A copy of the unpacked packages in the system temp dir, kept for later runs. Only a
/// directory that root owns is reused: anyone may create names in /tmp.
fn world_readable_copy(cache: &Path) -> PathBuf {
    let copy = std::env::temp_dir().join("mdimap-test-dovecot");
    match fs::symlink_metadata(&copy) {
        Ok(m) if m.is_dir() && m.uid() == 0 && copy.join(DOVECOT_IMAP).is_file() => return copy,
        Ok(m) if m.uid() != 0 || !m.is_dir() => panic!(
            "{} exists and is not root's directory: remove it, then run again",
            copy.display()
        ),
        _ => {}
    }
    let staging = std::env::temp_dir().join(format!("mdimap-test-dovecot.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    run_ok(Command::new("cp").arg("-a").arg(cache).arg(&staging));
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o755)).unwrap();
    let _ = fs::remove_dir_all(&copy);
    if fs::rename(&staging, &copy).is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    assert!(
        copy.join(DOVECOT_IMAP).is_file(),
        "cannot copy Dovecot to {}",
        copy.display()
    );
    copy
}

fn reachable_by_all(path: &Path) -> bool {
    path.ancestors().all(|p| {
        fs::metadata(p)
            .map(|m| m.mode() & 0o005 == 0o005)
            .unwrap_or(false)
    })
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `apt-get download dovecot-core dovecot-imapd` + `dpkg -x`, into
/// `<target>/tmp/dovecot` unless an earlier run left it there. Concurrent test
/// processes each unpack into their own directory; the first rename wins.
fn unpack_dovecot() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cache = tmp.join("dovecot");
    if cache.join(DOVECOT_IMAP).is_file() && cache.join(DOVECOT_CONF_TOOL).is_file() {
        return cache;
    }
    let staging = tmp.join(format!("dovecot.unpacking-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).unwrap();
    let download = || {
        Command::new("apt-get")
            .args(["download", "dovecot-core", "dovecot-imapd"])
            .current_dir(&staging)
            .output()
    };
    let mut out = download();
    if is_root() && !out.as_ref().is_ok_and(|o| o.status.success()) {
        // A fresh system may have no package lists yet; refreshing them installs nothing.
        let _ = Command::new("apt-get").arg("update").output();
        out = download();
    }
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "this test runs Dovecot, unpacked from its Debian packages (never installed: \
             dovecot-imapd conflicts with courier-imap); `apt-get download dovecot-core \
             dovecot-imapd` in {} failed: {}",
            staging.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("this test needs apt-get to fetch Dovecot's Debian packages: {e}"),
    }
    let unpacked = staging.join("root");
    for entry in fs::read_dir(&staging).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".deb") {
            run_ok(
                Command::new("dpkg")
                    .arg("-x")
                    .arg(entry.path())
                    .arg(&unpacked),
            );
        }
    }
    run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(&unpacked));
    if fs::rename(&unpacked, &cache).is_err() {
        assert!(
            cache.join(DOVECOT_IMAP).is_file(),
            "cannot move the unpacked Dovecot to {}",
            cache.display()
        );
    }
    let _ = fs::remove_dir_all(&staging);
    cache
}

/// The account Dovecot (and then mdimapd) serves the maildir as.
pub fn mail_account() -> (u32, u32, &'static str, &'static str) {
    if is_root() {
        (65534, 65534, "nobody", "nogroup")
    } else {
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        (uid, gid, "", "")
    }
}

/// A maildir owned by the mail account.
pub fn dovecot_maildir(t: &TestDir) -> PathBuf {
    let m = t.maildir();
    let (uid, gid, _, _) = mail_account();
    if is_root() {
        chown_tree(&m, uid, gid);
    }
    m
}

/// One Dovecot `imap` process on a socket; killed on drop.
pub struct Dovecot {
    child: Child,
    log: PathBuf,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- dovecot log ----\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// Dovecot's `imap` in PREAUTH mode on `maildir`, through `doveconf -e` (which
/// hands it the parsed configuration in its environment).
pub fn dovecot_preauth(t: &TestDir, maildir: &Path) -> (Dovecot, Client) {
    let root = dovecot_root();
    let (uid, gid, user, group) = mail_account();
    let conf_dir = t.join("dovecot");
    for sub in ["run", "state"] {
        fs::create_dir_all(conf_dir.join(sub)).unwrap();
    }
    let (user, group) = if is_root() {
        (user.to_string(), group.to_string())
    } else {
        let id = |flag: &str| {
            String::from_utf8(run_ok(Command::new("id").arg(flag)).stdout)
                .unwrap()
                .trim()
                .to_string()
        };
        (id("-un"), id("-gn"))
    };
    let conf = conf_dir.join("dovecot.conf");
    fs::write(
        &conf,
        format!(
            "# written by tests/common: imap standalone, PREAUTH\n\
             base_dir = {d}/run\nstate_dir = {d}/state\n\
             mail_location = maildir:{m}\nssl = no\nprotocols = imap\n\
             default_login_user = {user}\ndefault_internal_user = {user}\n\
             default_internal_group = {group}\n",
            d = conf_dir.display(),
            m = maildir.display()
        ),
    )
    .unwrap();
    if is_root() {
        chown_tree(&conf_dir, uid, gid);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let log = t.join("dovecot.log");
    let mut cmd = Command::new(root.join(DOVECOT_CONF_TOOL));
    cmd.arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(root.join(DOVECOT_IMAP))
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", &t.path)
        .env("USER", &user)
        .env("LD_LIBRARY_PATH", root.join(DOVECOT_LIBS))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(
            server.try_clone().unwrap(),
        )))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(server)))
        .stderr(Stdio::from(fs::File::create(&log).unwrap()));
    if is_root() {
        cmd.uid(uid).gid(gid);
    }
    let child = cmd.spawn().expect("cannot start Dovecot's imap");
    drop(cmd);
    let mut c = Client::new(client);
    c.greeting = c.read_line();
    assert!(
        c.greeting.starts_with("* PREAUTH"),
        "Dovecot's greeting: {}",
        c.greeting
    );
    (Dovecot { child, log }, c)
}

/// `mdimapd --preauth` on `maildir`, as the mail account Dovecot runs as
/// ([`mail_account`]), so both servers read the same kind of store.
pub fn mdimapd_preauth(t: &TestDir, maildir: &Path) -> (Server, Client) {
    let (uid, gid, _, _) = mail_account();
    let (server, stream) = spawn_mdimapd_raw(
        t,
        &["--preauth", "--maildir", maildir.to_str().unwrap()],
        |cmd| {
            if is_root() {
                cmd.uid(uid).gid(gid);
            }
        },
    );
    let mut c = Client::new(stream);
    c.greeting = c.read_line();
    assert!(
        c.greeting.starts_with("* PREAUTH"),
        "greeting: {}",
        c.greeting
    );
    (server, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn literal_detection() {
        assert_eq!(literal_at(b"A {5}\r\nhello", 2), Some((7, 5, true)));
        assert_eq!(literal_at(b"A {5+}\r\nhello", 2), Some((8, 5, false)));
        assert_eq!(literal_at(b"A {x}\r\n", 2), None);
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(literal_size(b"* OK done"), None);
    }

    #[test]
    fn strings_sets_and_codes() {
        assert_eq!(
            string_after("X BODY[] {3}\r\nabc)", "BODY[] "),
            Some(b"abc".to_vec())
        );
        assert_eq!(
            string_after(r#"X BODY[] "a\"b")"#, "BODY[] "),
            Some(b"a\"b".to_vec())
        );
        assert_eq!(string_after("X BODY[] NIL)", "BODY[] "), None);
        assert_eq!(expand_set("1:3,7,9:8"), vec![1, 2, 3, 7, 8, 9]);
        assert_eq!(
            code("t1 OK [APPENDUID 38505 3955] done", "APPENDUID"),
            Some(vec!["38505".into(), "3955".into()])
        );
        assert_eq!(flags_of_name("123.abc,S=5:2,FS"), "FS");
        let r = Response {
            untagged: vec![
                r#"* LIST (\HasNoChildren) "." "INBOX.a b""#.into(),
                r#"* LIST (\Noselect) "." """#.into(),
            ],
            tagged: "t1 OK".into(),
        };
        let l = list_entries(&r, "LIST");
        assert_eq!(l[0].name, "INBOX.a b");
        assert!(l[0].has("\\hasnochildren"));
        assert_eq!(l[1].name, "");
        assert_eq!(l[1].delimiter.as_deref(), Some("."));
    }
}

/// A client after `COMPRESS DEFLATE` (RFC 4978): raw deflate both ways, with
/// what came over the wire kept so a test can look at the compressed bytes.
/// A byte stream a [`DeflateClient`] can run over: TCP, or TLS over it.
pub trait Duplex: Read + Write {}
impl<T: Read + Write> Duplex for T {}

pub struct DeflateClient {
    stream: Box<dyn Duplex>,
    compress: flate2::Compress,
    decompress: flate2::Decompress,
    /// Decompressed bytes not yet returned.
    plain: Vec<u8>,
    /// Every chunk read from the socket, compressed, as it came.
    pub wire: Vec<Vec<u8>>,
    /// No compression at all: the same reading, for a plain session to
    /// compare with.
    uncompressed: bool,
}

impl DeflateClient {
    /// Takes over `c`, which must just have had its `COMPRESS DEFLATE`
    /// answered OK (nothing else read or pending).
    pub fn from(c: &Client) -> DeflateClient {
        DeflateClient::over(Box::new(c.stream().try_clone().unwrap()))
    }

    /// Over `stream` (a TLS session, say), whose `COMPRESS DEFLATE` has
    /// just been answered OK.
    pub fn over(stream: Box<dyn Duplex>) -> DeflateClient {
        DeflateClient {
            stream,
            compress: flate2::Compress::new(flate2::Compression::default(), false),
            decompress: flate2::Decompress::new(false),
            plain: Vec::new(),
            wire: Vec::new(),
            uncompressed: false,
        }
    }

    /// The same client without compression, over `c` as it is.
    pub fn uncompressed(c: &Client) -> DeflateClient {
        DeflateClient {
            uncompressed: true,
            ..DeflateClient::from(c)
        }
    }

    /// Compresses `text` with a sync flush and sends it.
    pub fn send(&mut self, text: &[u8]) {
        if self.uncompressed {
            self.stream.write_all(text).unwrap();
            self.stream.flush().unwrap();
            return;
        }
        let mut out = Vec::with_capacity(text.len() + 1024);
        let mut input = text;
        loop {
            out.reserve(4096);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut out, flate2::FlushCompress::Sync)
                .unwrap();
            input = &input[(self.compress.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        self.stream.write_all(&out).unwrap();
        self.stream.flush().unwrap();
    }

    /// Reads one more chunk from the socket and decompresses it.
    fn fill(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        let n = self
            .stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("reading from the server: {e}"));
        assert!(n > 0, "the server closed the connection");
        buf.truncate(n);
        if self.uncompressed {
            self.plain.extend_from_slice(&buf);
            self.wire.push(buf);
            return;
        }
        let mut input = &buf[..];
        loop {
            self.plain.reserve(256 * 1024);
            let before = self.decompress.total_in();
            self.decompress
                .decompress_vec(input, &mut self.plain, flate2::FlushDecompress::Sync)
                .unwrap_or_else(|e| panic!("the server sent bad deflate data: {e}"));
            input = &input[(self.decompress.total_in() - before) as usize..];
            if input.is_empty() && self.plain.len() < self.plain.capacity() {
                break;
            }
        }
        self.wire.push(buf);
    }

    /// Everything up to and including the line tagged `tag`, literals
    /// followed, as the raw (decompressed) bytes.
    pub fn read_until_tagged(&mut self, tag: &str) -> Vec<u8> {
        let mut pos = 0;
        loop {
            let Some(eol) = self.plain[pos..].windows(2).position(|w| w == b"\r\n") else {
                self.fill();
                continue;
            };
            let line = &self.plain[pos..pos + eol];
            let mut next = pos + eol + 2;
            if line.ends_with(b"}") {
                if let Some(open) = line.iter().rposition(|&b| b == b'{') {
                    let n: usize = std::str::from_utf8(&line[open + 1..line.len() - 1])
                        .unwrap()
                        .trim_start_matches('~')
                        .trim_end_matches('+')
                        .parse()
                        .unwrap();
                    while self.plain.len() < next + n {
                        self.fill();
                    }
                    next += n;
                    // The line goes on after the literal.
                    pos = next;
                    continue;
                }
            }
            let tagged = line.starts_with(format!("{tag} ").as_bytes());
            pos = next;
            if tagged {
                let out: Vec<u8> = self.plain.drain(..pos).collect();
                return out;
            }
        }
    }

    /// One line (a continuation request, an IDLE update), without CRLF.
    pub fn read_line(&mut self) -> String {
        loop {
            if let Some(eol) = self.plain.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.plain.drain(..eol + 2).collect();
                return String::from_utf8_lossy(&line[..eol]).into_owned();
            }
            self.fill();
        }
    }

    /// Sends `tag text` and returns the whole answer.
    pub fn cmd(&mut self, tag: &str, text: &str) -> String {
        self.send(format!("{tag} {text}\r\n").as_bytes());
        String::from_utf8_lossy(&self.read_until_tagged(tag)).into_owned()
    }
}

impl DeflateClient {
    /// Sends `tag text` and returns the answer's bytes, literals and all.
    pub fn send_and_read_bytes(&mut self, tag: &str, text: &str) -> Vec<u8> {
        self.send(format!("{tag} {text}\r\n").as_bytes());
        self.read_until_tagged(tag)
    }
}

// ---------------------------------------------------------------------------
// The store's files after a torture or a crash
// ---------------------------------------------------------------------------

/// What is wrong with the files mdimap keeps in one folder, read back after a SELECT: the
/// UID database (header `1 <uidvalidity> <nextuid>`, unique UIDs and names, all below the
/// next UID, every message of cur/ listed) and the keyword list (names, an empty line,
/// `basename:index ...` lines with indexes into the names). Empty when all is well.
pub fn store_file_problems(folder: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let uiddb_path = folder.join("courierimapuiddb");
    match fs::read(&uiddb_path) {
        Err(e) => problems.push(format!("{}: {e}", uiddb_path.display())),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let mut lines = text.split('\n');
            let head: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
            let parsed: Option<(u32, u32)> = match head[..] {
                ["1", v, n] => v.parse().ok().zip(n.parse().ok()),
                _ => None,
            };
            match parsed {
                None => problems.push(format!("{}: bad header {head:?}", uiddb_path.display())),
                Some((_, nextuid)) => {
                    let mut uids = HashSet::new();
                    let mut names = HashSet::new();
                    for line in lines.filter(|l| !l.is_empty()) {
                        let Some((uid, name)) = line.split_once(' ') else {
                            problems.push(format!("{}: bad line {line:?}", uiddb_path.display()));
                            continue;
                        };
                        let Ok(uid) = uid.parse::<u32>() else {
                            problems.push(format!("{}: bad line {line:?}", uiddb_path.display()));
                            continue;
                        };
                        if uid >= nextuid {
                            problems.push(format!(
                                "{}: UID {uid} not below the next UID {nextuid}",
                                uiddb_path.display()
                            ));
                        }
                        if !uids.insert(uid) {
                            problems.push(format!("{}: UID {uid} twice", uiddb_path.display()));
                        }
                        if !names.insert(name.to_string()) {
                            problems.push(format!("{}: {name} twice", uiddb_path.display()));
                        }
                    }
                    for file in files(&folder.join("cur")) {
                        if !names.contains(base_of(&file)) {
                            problems.push(format!(
                                "{}: cur/{file} is not listed after a SELECT",
                                uiddb_path.display()
                            ));
                        }
                    }
                }
            }
        }
    }
    let list = folder.join("courierimapkeywords").join(":list");
    if let Ok(bytes) = fs::read(&list) {
        // Keyword names, an empty line, then `basename:n n n` lines.
        let text = String::from_utf8_lossy(&bytes);
        // An empty table is the blank line alone.
        let split = if let Some(rest) = text.strip_prefix('\n') {
            Some(("", rest))
        } else {
            text.split_once("\n\n")
        };
        match split {
            None if !text.is_empty() => problems.push(format!(
                "{}: no empty line after the keywords",
                list.display()
            )),
            None => {}
            Some((names, entries)) => {
                let count = names.lines().count();
                for line in entries.lines().filter(|l| !l.is_empty()) {
                    let ok = line.rsplit_once(':').is_some_and(|(_, idx)| {
                        idx.split_whitespace()
                            .all(|i| i.parse::<usize>().is_ok_and(|i| i < count))
                    });
                    if !ok {
                        problems.push(format!("{}: bad entry {line:?}", list.display()));
                    }
                }
            }
        }
    }
    problems
}

/// What is wrong with `maildirsize`: its first line must still be `limits`, each other
/// line two integers (bytes, messages).
pub fn maildirsize_problems(maildir: &Path, limits: &str) -> Vec<String> {
    let path = maildir.join("maildirsize");
    let Ok(text) = fs::read_to_string(&path) else {
        return vec![format!("{} is gone or not text", path.display())];
    };
    let mut lines = text.lines();
    let mut problems = Vec::new();
    if lines.next() != Some(limits) {
        problems.push(format!(
            "{}: the quota line changed: {text:?}",
            path.display()
        ));
    }
    for line in lines {
        let ok = line
            .split_whitespace()
            .map(|w| w.parse::<i64>().is_ok())
            .collect::<Vec<_>>()
            == [true, true];
        if !ok {
            problems.push(format!("{}: bad line {line:?}", path.display()));
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// Privilege separation
// ---------------------------------------------------------------------------

/// A field of /proc/<pid>/status, its words joined by single spaces.
pub fn status_field(pid: i32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Every process below `pid` (children, their children…).
pub fn descendants_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for c in children_of(p) {
            out.push(c);
            queue.push(c);
        }
    }
    out
}

/// What /proc says of a confined login process: all ids the login user's,
/// no capability in any set, no_new_privs, and an empty root directory
/// that no longer exists; named `mdimapd-login`.
pub fn assert_confined(pid: i32, uid: u32, gid: u32) {
    assert_eq!(status_field(pid, "Uid"), format!("{uid} {uid} {uid} {uid}"));
    assert_eq!(status_field(pid, "Gid"), format!("{gid} {gid} {gid} {gid}"));
    assert_eq!(status_field(pid, "Groups"), gid.to_string());
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(pid, set), "0000000000000000", "{set} of {pid}");
    }
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    let root = fs::read_link(format!("/proc/{pid}/root")).unwrap();
    let root = root.to_string_lossy();
    assert!(
        root.starts_with("/tmp/mdimap-login.") && root.ends_with(" (deleted)"),
        "root directory of the login process: {root}"
    );
    let entries = fs::read_dir(format!("/proc/{pid}/root")).unwrap().count();
    assert_eq!(entries, 0, "the login process's root is empty");
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "mdimapd-login"
    );
}

/// Before login, as run as root by `starter` or any starter below it: one
/// connection's mdimapd is root and reads nothing, and its only child, the
/// login process, runs as the default MDIMAP_LOGIN_USER (nobody) with no
/// capabilities and no_new_privs. Returns the pid of the root part, which
/// becomes the session.
pub fn assert_login_process_confined(starter: i32) -> i32 {
    let mut found = None;
    wait_for(Duration::from_secs(5), || {
        let below = descendants_of(starter);
        found = std::iter::once(starter).chain(below).find(|&p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "mdimapd")
                && status_field(p, "Uid") == "0 0 0 0"
                && children_of(p).len() == 1
        });
        found.is_some()
    });
    let root =
        found.unwrap_or_else(|| panic!("no root mdimapd with a login process below {starter}"));
    assert_confined(children_of(root)[0], 65534, 65534);
    root
}

/// After login: the session is the mail user, and the login process is gone.
pub fn assert_session_dropped(session: i32) {
    let (uid, _) = mail_ids();
    assert_eq!(
        status_field(session, "Uid"),
        format!("{uid} {uid} {uid} {uid}")
    );
    assert_eq!(status_field(session, "CapEff"), "0000000000000000");
    assert_eq!(
        children_of(session),
        Vec::<i32>::new(),
        "no login process after login"
    );
}
