//! The deployment files under `etc/` (systemd units, xinetd service, tcpserver
//! run script, fail2ban filter and jail) checked against the real Debian tools
//! and the real `mdimapd`: sessions through `systemd-socket-activate` and through
//! the shipped tcpserver run script, `systemd-analyze verify` on the units, and
//! `fail2ban-regex` on log lines that mdimapd itself wrote.
//!
//! These tests own the contract between mdimapd and the programs that start it
//! or read its log. They must not reach into the library (no `use mdimap::...`)
//! and must not skip: a missing tool fails the test with the Debian package to
//! install (test.sh installs them). Everything listens on 127.0.0.1 only, every
//! external program runs under a deadline, and every process started here is
//! killed when its handle is dropped.

mod common;

use common::*;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Wrong passwords tried in the failed-login tests; like [`PASSWORD`], they
/// must never reach a log.
const WRONG_PASSWORDS: [&str; 2] = ["wrong-Pa55word", "n0t-the-pa55word"];

/// How long a started listener may take to accept connections (a guard
/// against a hang only).
const STARTUP: Duration = HANG_GUARD;

/// Deadline for one run of an external checker (systemd-analyze, fail2ban-regex).
const TOOL_DEADLINE: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_repo_file(rel: &str) -> String {
    let p = repo().join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// The full path of `program` on PATH; fails the test (never skips) when it is
/// missing, naming the Debian package that provides it.
fn require_tool(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
    {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{program}` not found: install the Debian package {package} (./test.sh does this when run as root)"
    );
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process started by a test, with its output in a file; killed on drop.
struct Running {
    child: Child,
    what: String,
    log: PathBuf,
}

impl Running {
    fn spawn(mut cmd: Command, what: &str, log: PathBuf) -> Running {
        let out = fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
        Running {
            child,
            what: what.to_string(),
            log,
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connects to 127.0.0.1:`port` once the listener is up, and reads the greeting.
    fn connect(&mut self, port: u16) -> Client {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                let mut c = Client::new(s);
                c.greeting = c.read_line();
                return c;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before accepting connections; output:\n{}",
                    self.what,
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not accept connections on 127.0.0.1:{port} within {STARTUP:?}; output:\n{}",
                self.what,
                self.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the output contains `needle` `count` times.
    fn wait_for_log(&self, needle: &str, count: usize) -> String {
        let ok = wait_for(HANG_GUARD, || {
            self.log_text().matches(needle).count() >= count
        });
        let text = self.log_text();
        assert!(
            ok,
            "expected {count} × {needle:?} in the output of {}:\n{text}",
            self.what
        );
        text
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- output of {} ({}) ----\n{}",
                self.what,
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Output of a finished external program.
struct Finished {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion, killing it after [`TOOL_DEADLINE`].
fn run_bounded(mut cmd: Command, dir: &TestDir, what: &str) -> Finished {
    let n = dir.tree().len();
    let out_path = dir.join(&format!("{what}-{n}.stdout"));
    let err_path = dir.join(&format!("{what}-{n}.stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what} ({cmd:?}): {e}"));
    let deadline = Instant::now() + TOOL_DEADLINE;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ({cmd:?}) did not finish within {TOOL_DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Finished {
        success: status.success(),
        code: status.code(),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// The test account (see [`TestDir::write_userfile`]) with one message in its
/// INBOX, and a configuration without the failed-login delay. Returns (config,
/// user file).
fn account(dir: &TestDir) -> (PathBuf, PathBuf) {
    let (conf, users, maildir) = dir.write_userfile();
    deliver(
        &maildir,
        &message("services test", "Hello through a launcher."),
    );
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("MDIMAP_LOGIN_FAILURE_DELAY=0\nMDIMAP_MAX_LOGIN_FAILURES=10\n");
    fs::write(&conf, text).unwrap();
    (conf, users)
}

/// LOGIN and SELECT INBOX on a fresh connection; the session stays open.
fn login_and_select(c: &mut Client) {
    assert!(c.greeting.starts_with("* OK"), "greeting: {}", c.greeting);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    let r = c.ok("SELECT INBOX");
    assert!(
        r.line("* 1 EXISTS").is_some(),
        "SELECT INBOX should report the delivered message: {r:#?}"
    );
}

/// LOGOUT: BYE, tagged OK, then the server closes the connection.
fn logout(c: &mut Client) {
    let r = c.ok("LOGOUT");
    assert!(r.line("* BYE").is_some(), "LOGOUT without BYE: {r:#?}");
    c.read_to_eof(HANG_GUARD);
}

/// Neither the account's password nor the wrong ones tried may appear in a log.
fn assert_no_password(log: &str, what: &str) {
    for secret in std::iter::once(PASSWORD).chain(WRONG_PASSWORDS) {
        assert!(
            !log.contains(secret),
            "the log of {what} contains the password {secret:?}:\n{log}"
        );
    }
}

/// The PIDs in `mdimapd[PID]: INFO: <prefix>...` lines.
fn pids_of_lines(log: &str, prefix: &str) -> Vec<u32> {
    log.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("mdimapd[")?;
            let (pid, text) = rest.split_once("]: INFO: ")?;
            text.starts_with(prefix).then(|| pid.parse().ok()).flatten()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// systemd socket activation (the model of mdimap.socket + mdimap@.service)
// ---------------------------------------------------------------------------

#[test]
fn systemd_socket_activation_serves_each_connection_with_its_own_mdimapd() {
    let activate = require_tool("systemd-socket-activate", "systemd");
    let dir = TestDir::new("socket-activate");
    let (conf, _users) = account(&dir);
    let port = free_port();
    let mut cmd = Command::new(activate);
    // --accept: one child per connection (Accept=yes); --inetd: the connection
    // on stdin and stdout (StandardInput=socket, StandardOutput=socket).
    cmd.args(["--accept", "--inetd", "-l", &format!("127.0.0.1:{port}")])
        .arg(env!("CARGO_BIN_EXE_mdimapd"))
        .arg("--config")
        .arg(&conf)
        .arg("--log-stderr");
    let mut activator = Running::spawn(cmd, "systemd-socket-activate", dir.join("activate.log"));

    let mut first = activator.connect(port);
    let session = assert_login_process_confined(activator.child.id() as i32);
    login_and_select(&mut first);
    assert_session_dropped(session);
    // A second connection while the first is still open gets its own session.
    let mut second = activator.connect(port);
    login_and_select(&mut second);
    second.ok("NOOP");
    logout(&mut first);
    logout(&mut second);

    let log = activator.wait_for_log("INFO: LOGOUT, user=tester, ip=[127.0.0.1]", 2);
    assert_eq!(
        log.matches("INFO: Connection, ip=[127.0.0.1], port=[")
            .count(),
        2,
        "{log}"
    );
    let logins = pids_of_lines(&log, &format!("LOGIN, user={USER}, ip=[127.0.0.1], port=["));
    assert_eq!(logins.len(), 2, "two LOGIN lines expected:\n{log}");
    assert_ne!(
        logins[0], logins[1],
        "each connection must be served by its own mdimapd:\n{log}"
    );
    assert!(
        log.contains("protocol=IMAP, method=LOGIN, tls=none"),
        "{log}"
    );
    assert_no_password(&log, "mdimapd under systemd-socket-activate");
}

// ---------------------------------------------------------------------------
// tcpserver (ucspi-tcp) through the shipped run script
// ---------------------------------------------------------------------------

#[test]
fn tcpserver_run_script_serves_imap_and_passes_the_client_address() {
    let tcpserver = require_tool("tcpserver", "ucspi-tcp");
    let tcprules = require_tool("tcprules", "ucspi-tcp");
    let dir = TestDir::new("tcpserver");
    let (conf, _users) = account(&dir);
    let script = read_repo_file("etc/tcpserver/run");
    for needle in [
        "exec 2>&1",
        "exec tcpserver -v -R -H -l 0 -c ",
        " -x \"$RULES\" ",
        " 0 143 /usr/sbin/mdimapd",
    ] {
        assert!(
            script.contains(needle),
            "etc/tcpserver/run lacks {needle:?}:\n{script}"
        );
    }

    // A rules database as the script's comment describes, which also sets a
    // variable for loopback clients: it shows that -x is honoured.
    let rules = dir.join("tcp.imap");
    fs::write(
        &rules,
        "127.0.0.1:allow,MDIMAP_RULES_SEEN=\"loopback\",TZ=\"Etc/GMT-3\"\n:deny\n",
    )
    .unwrap();
    let cdb = dir.join("tcp.imap.cdb");
    let mut compile = Command::new(tcprules);
    compile
        .arg(&cdb)
        .arg(dir.join("tcp.imap.tmp"))
        .stdin(fs::File::open(&rules).unwrap());
    let status = compile.status().expect("cannot run tcprules");
    assert!(status.success(), "tcprules failed: {status}");

    // The shipped script, pointed at the test port, binary and configuration.
    let port = free_port();
    let local = script
        .replace("/etc/mdimap/tcp.imap.cdb", cdb.to_str().unwrap())
        .replace(
            " 0 143 /usr/sbin/mdimapd",
            &format!(
                " 127.0.0.1 {port} {} --config {}",
                env!("CARGO_BIN_EXE_mdimapd"),
                conf.display()
            ),
        );
    assert_eq!(
        local.matches(&format!("127.0.0.1 {port} ")).count(),
        2,
        "both tcpserver lines must be rewritten:\n{local}"
    );
    let run = dir.join("run");
    fs::write(&run, &local).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(&run).env(
        "PATH",
        format!("{}:/usr/bin:/bin", tcpserver.parent().unwrap().display()),
    );
    let mut server = Running::spawn(cmd, "the tcpserver run script", dir.join("tcpserver.log"));

    let mut c = server.connect(port);
    let client_port = c.stream().local_addr().unwrap().port();
    let session = assert_login_process_confined(server.child.id() as i32);
    login_and_select(&mut c);
    assert_session_dropped(session);
    let log = server.wait_for_log(
        &format!("INFO: LOGIN, user={USER}, ip=[127.0.0.1], port=[{client_port}]"),
        1,
    );
    let connection = format!("INFO: Connection, ip=[127.0.0.1], port=[{client_port}]");
    assert!(
        log.contains(&connection),
        "mdimapd did not log the client address from tcpserver:\n{log}"
    );
    let pids = pids_of_lines(&log, "Connection, ip=[127.0.0.1]");
    assert_eq!(pids.len(), 1, "{log}");
    let env = environ_of(pids[0] as i32);
    for var in [
        "TCPREMOTEIP=127.0.0.1".to_string(),
        format!("TCPREMOTEPORT={client_port}"),
        "PROTO=TCP".to_string(),
        // Set by the rule for 127.0.0.1, so the rules file was used.
        "TZ=Etc/GMT-3".to_string(),
    ] {
        assert!(
            env.contains(&var),
            "mdimapd's environment lacks {var}: {env:?}"
        );
    }
    // Anything else tcpserver or the rules set is not kept (mdimapd(8),
    // ENVIRONMENT).
    assert!(
        !env.iter().any(|v| v.starts_with("MDIMAP_RULES_SEEN=")),
        "{env:?}"
    );
    // -H and -R: no DNS or ident lookups were made for the client.
    assert!(
        !env.iter()
            .any(|v| v.starts_with("TCPREMOTEHOST=") || v.starts_with("TCPREMOTEINFO=")),
        "{env:?}"
    );
    logout(&mut c);

    let log = server.wait_for_log("INFO: LOGOUT, user=tester, ip=[127.0.0.1]", 1);
    assert_no_password(&log, "mdimapd under tcpserver");
}

// ---------------------------------------------------------------------------
// systemd units
// ---------------------------------------------------------------------------

const UNITS: [&str; 5] = [
    "mdimap.socket",
    "mdimap@.service",
    "mdimaps.socket",
    "mdimaps@.service",
    "mdimap-listen.service",
];

/// Every value of `key=` in a unit file (comments and other keys ignored).
fn unit_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn unit_value(text: &str, key: &str, unit: &str) -> String {
    let v = unit_values(text, key);
    assert_eq!(v.len(), 1, "{unit} must set {key}= exactly once, has {v:?}");
    v[0].clone()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let dir = TestDir::new("units");
    let units = dir.join("units");
    fs::create_dir(&units).unwrap();
    // The units as installed, but running the binaries just built. The "-"
    // before ExecStart's path is dropped in the copies only: systemd-analyze
    // checks that the program exists just for commands without it.
    for name in UNITS {
        let text = read_repo_file(&format!("etc/systemd/{name}"))
            .replace("=-/usr/sbin/mdimapd", "=/usr/sbin/mdimapd")
            .replace(
                "/usr/sbin/mdimap-listen",
                env!("CARGO_BIN_EXE_mdimap-listen"),
            )
            .replace("/usr/sbin/mdimapd", env!("CARGO_BIN_EXE_mdimapd"));
        assert!(
            !text.contains("/usr/sbin/"),
            "{name} runs a program this test does not know:\n{text}"
        );
        fs::write(units.join(name), text).unwrap();
    }
    // The man pages the units name in Documentation=, where man(1) finds them.
    let man = dir.join("man");
    for entry in fs::read_dir(repo().join("man")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(section) = name.rsplit('.').next().filter(|s| s.len() == 1) else {
            continue;
        };
        let sub = man.join(format!("man{section}"));
        fs::create_dir_all(&sub).unwrap();
        fs::copy(entry.path(), sub.join(&name)).unwrap();
    }

    let mut cmd = Command::new(&analyze);
    cmd.arg("verify")
        .args(UNITS.iter().map(|u| units.join(u)))
        .env("MANPATH", &man);
    let out = run_bounded(cmd, &dir, "systemd-analyze");
    assert!(
        out.success && out.stderr.trim().is_empty(),
        "systemd-analyze verify found problems (exit {:?}):\n{}{}",
        out.code,
        out.stdout,
        out.stderr
    );

    // A unit systemd-analyze must reject, so a silent pass above means something.
    let broken = units.join("broken@.service");
    fs::write(
        &broken,
        "[Service]\nExecStart=/nonexistent/mdimapd\nStandardInput=socket\n",
    )
    .unwrap();
    let mut cmd = Command::new(&analyze);
    cmd.arg("verify").arg("--man=no").arg(&broken);
    let out = run_bounded(cmd, &dir, "systemd-analyze-broken");
    assert!(
        !out.success,
        "systemd-analyze verify accepted a unit with a missing program:\n{}",
        out.stderr
    );
}

#[test]
fn systemd_units_have_the_settings_the_deployment_needs() {
    for (socket, service, port, tls) in [
        ("mdimap.socket", "mdimap@.service", "143", false),
        ("mdimaps.socket", "mdimaps@.service", "993", true),
    ] {
        let s = read_repo_file(&format!("etc/systemd/{socket}"));
        assert_eq!(unit_value(&s, "ListenStream", socket), port);
        assert_eq!(unit_value(&s, "Accept", socket), "yes");
        let max: u32 = unit_value(&s, "MaxConnections", socket).parse().unwrap();
        assert!(
            max >= 256,
            "{socket}: MaxConnections={max} is too low for IMAP (systemd's default is 64)"
        );
        let per_source: u32 = unit_value(&s, "MaxConnectionsPerSource", socket)
            .parse()
            .unwrap();
        assert!(
            (1..max).contains(&per_source),
            "{socket}: MaxConnectionsPerSource={per_source}"
        );
        // A flood must not put the socket into the failed state: the trigger
        // limit is off (either value 0 disables it in systemd 252).
        let interval = unit_value(&s, "TriggerLimitIntervalSec", socket);
        let burst = unit_value(&s, "TriggerLimitBurst", socket);
        assert!(
            interval == "0" || burst == "0",
            "{socket}: trigger limit still on ({interval}, {burst})"
        );

        let v = read_repo_file(&format!("etc/systemd/{service}"));
        let exec = unit_value(&v, "ExecStart", service);
        let expected = if tls {
            "-/usr/sbin/mdimapd --tls"
        } else {
            "-/usr/sbin/mdimapd"
        };
        assert_eq!(exec, expected, "{service}");
        assert_eq!(unit_value(&v, "StandardInput", service), "socket");
        assert_eq!(unit_value(&v, "StandardOutput", service), "socket");
        assert_eq!(unit_value(&v, "StandardError", service), "journal");
        assert_eq!(unit_value(&v, "CollectMode", service), "inactive-or-failed");
        assert_privilege_drop_allowed(&v, service);
        assert!(
            unit_values(&v, "RuntimeDirectory").is_empty(),
            "{service}: instances must not share a RuntimeDirectory"
        );
        assert!(
            unit_values(&v, "User").is_empty(),
            "{service}: mdimapd must start as root"
        );
    }

    let l = read_repo_file("etc/systemd/mdimap-listen.service");
    let name = "mdimap-listen.service";
    assert_eq!(unit_value(&l, "Type", name), "simple");
    assert_eq!(unit_value(&l, "ExecStart", name), "/usr/sbin/mdimap-listen");
    assert_eq!(
        unit_value(&l, "KillMode", name),
        "process",
        "sessions must survive a restart of the listener"
    );
    assert_eq!(
        unit_value(&l, "ExecReload", name),
        "/bin/kill -HUP $MAINPID"
    );
    assert_privilege_drop_allowed(&l, name);
    assert!(unit_value(&l, "CapabilityBoundingSet", name).contains("CAP_NET_BIND_SERVICE"));
}

/// The hardening of a unit that runs mdimapd must leave setgroups/setgid/setuid
/// and setuid helpers (PAM's unix_chkpwd, checkpassword programs) working.
fn assert_privilege_drop_allowed(text: &str, unit: &str) {
    let caps = unit_value(text, "CapabilityBoundingSet", unit);
    for cap in ["CAP_SETUID", "CAP_SETGID"] {
        assert!(
            caps.split_whitespace().any(|c| c == cap),
            "{unit}: CapabilityBoundingSet lacks {cap}"
        );
    }
    assert!(
        !caps.starts_with('~'),
        "{unit}: the bounding set must be a list of what is kept"
    );
    for key in [
        "NoNewPrivileges",
        "DynamicUser",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "PrivateDevices",
        "ProtectClock",
        "ProtectHostname",
        "ProtectKernelLogs",
        "ProtectKernelModules",
        "ProtectKernelTunables",
        "RestrictAddressFamilies",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "SystemCallArchitectures",
        "SystemCallFilter",
        "SystemCallLog",
    ] {
        assert!(
            unit_values(text, key).is_empty(),
            "{unit}: {key}= implies NoNewPrivileges and would break setuid helpers"
        );
    }
    let protect = unit_value(text, "ProtectSystem", unit);
    assert!(
        protect != "strict" || !unit_values(text, "ReadWritePaths").is_empty(),
        "{unit}: ProtectSystem=strict needs ReadWritePaths= for the mail storage"
    );
    assert!(
        !unit_values(text, "ProtectHome").iter().any(|v| v != "no"),
        "{unit}: maildirs are usually in /home"
    );
}

// ---------------------------------------------------------------------------
// xinetd
// ---------------------------------------------------------------------------

#[test]
fn xinetd_service_runs_mdimapd_as_root_with_limits() {
    let text = read_repo_file("etc/xinetd.d/mdimap");
    let open = text
        .find('{')
        .expect("no service block in etc/xinetd.d/mdimap");
    let close = text.rfind('}').expect("service block not closed");
    assert!(
        text[..open].lines().any(|l| l.trim() == "service imap"),
        "expected `service imap`:\n{text}"
    );
    let attrs: Vec<(String, String)> = text[open + 1..close]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not an attribute line: {l:?}"));
            (
                k.trim().trim_end_matches(['+', '-']).trim().to_string(),
                v.trim().to_string(),
            )
        })
        .collect();
    let get = |key: &str| -> String {
        let v: Vec<&String> = attrs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            v.len(),
            1,
            "etc/xinetd.d/mdimap must set {key} once: {attrs:?}"
        );
        v[0].clone()
    };
    assert_eq!(get("socket_type"), "stream");
    assert_eq!(get("wait"), "no");
    assert_eq!(get("user"), "root");
    assert_eq!(get("server"), "/usr/sbin/mdimapd");
    let instances: u32 = get("instances").parse().unwrap();
    let per_source: u32 = get("per_source").parse().unwrap();
    assert!(
        instances >= 100 && (1..instances).contains(&per_source),
        "instances={instances} per_source={per_source}"
    );
    assert_eq!(get("disable"), "no");
}

// ---------------------------------------------------------------------------
// fail2ban
// ---------------------------------------------------------------------------

/// (lines, ignored, matched, missed) from fail2ban-regex's summary line
/// `Lines: 8 lines, 0 ignored, 5 matched, 3 missed`.
fn regex_summary(out: &str) -> (u32, u32, u32, u32) {
    let line = out
        .lines()
        .find(|l| l.starts_with("Lines: "))
        .unwrap_or_else(|| panic!("no `Lines:` summary in fail2ban-regex output:\n{out}"));
    let numbers: Vec<u32> = line
        .trim_start_matches("Lines: ")
        .split(',')
        .map(|part| {
            part.split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("odd summary {line:?}"))
        })
        .collect();
    assert_eq!(numbers.len(), 4, "odd summary {line:?}");
    (numbers[0], numbers[1], numbers[2], numbers[3])
}

/// Runs `fail2ban-regex [-o out] <log> <filter>` and returns its stdout.
fn fail2ban_regex(tool: &Path, dir: &TestDir, log: &Path, out: Option<&str>) -> String {
    let filter = repo().join("etc/fail2ban/filter.d/mdimap.conf");
    let mut cmd = Command::new(tool);
    if let Some(o) = out {
        cmd.args(["-o", o]);
    }
    cmd.arg(log).arg(&filter);
    let r = run_bounded(cmd, dir, "fail2ban-regex");
    assert!(
        r.success,
        "fail2ban-regex failed (exit {:?}):\n{}\n{}",
        r.code, r.stdout, r.stderr
    );
    r.stdout
}

/// The log as syslog (rsyslog) writes what mdimapd sends: `<date> <host> mdimapd[PID]: <text>`.
fn as_syslog(stderr_log: &str, with_date: bool) -> String {
    stderr_log
        .lines()
        .filter_map(|l| {
            let (tag, rest) = l.split_once(": ")?;
            let (_level, text) = rest.split_once(": ")?;
            Some(if with_date {
                format!("Nov  3 10:15:42 mailhost {tag}: {text}\n")
            } else {
                format!("mailhost {tag}: {text}\n")
            })
        })
        .collect()
}

#[test]
fn fail2ban_filter_matches_exactly_the_failed_logins() {
    let tool = require_tool("fail2ban-regex", "fail2ban");
    let dir = TestDir::new("fail2ban");
    let (conf, users) = account(&dir);
    let (mut server, mut c) = spawn_mdimapd(
        &dir,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--userfile",
            users.to_str().unwrap(),
        ],
    );
    assert!(c.greeting.starts_with("* OK"), "greeting: {}", c.greeting);
    c.no(&format!("LOGIN {USER} {}", WRONG_PASSWORDS[0]));
    // A user name that tries to plant another address in the log line.
    c.no(&format!(
        "LOGIN \"forged, ip=[6.6.6.6]\" {}",
        WRONG_PASSWORDS[1]
    ));
    login_and_select(&mut c);
    logout(&mut c);
    assert!(
        server.wait_exit(HANG_GUARD).is_some(),
        "mdimapd did not exit after LOGOUT"
    );
    let log = server.log_text();

    // What mdimapd wrote, so the filter is tested on the real lines.
    assert!(
        log.contains(&format!(
            "INFO: LOGIN FAILED, method=LOGIN, user={USER}, ip=[127.0.0.1]\n"
        )),
        "{log}"
    );
    assert!(log.contains("INFO: LOGIN FAILED, method=LOGIN, user=forged\\x2c ip=\\x5b6.6.6.6\\x5d, ip=[127.0.0.1]\n"), "{log}");
    assert!(
        log.contains(&format!("INFO: LOGIN, user={USER}, ip=[127.0.0.1], port=[")),
        "{log}"
    );
    assert!(
        log.contains(&format!("INFO: LOGOUT, user={USER}, ip=[127.0.0.1], rcvd=")),
        "{log}"
    );
    assert_eq!(log.matches("LOGIN FAILED").count(), 2, "{log}");
    assert_no_password(&log, "mdimapd");

    // The same lines as mdimapd writes them to stderr, as a syslog file, and
    // as fail2ban's journal backend presents them (no date).
    let forms = [
        ("stderr", log.clone()),
        ("syslog", as_syslog(&log, true)),
        ("journal", as_syslog(&log, false)),
    ];
    for (form, text) in forms {
        let path = dir.join(&format!("{form}.log"));
        fs::write(&path, &text).unwrap();
        let total = text.lines().count() as u32;
        assert!(total >= 5, "{form}: too few lines to test:\n{text}");

        let summary = fail2ban_regex(&tool, &dir, &path, None);
        assert_eq!(
            regex_summary(&summary),
            (total, 0, 2, total - 2),
            "{form} log:\n{text}\nfail2ban-regex:\n{summary}"
        );

        let matched = fail2ban_regex(&tool, &dir, &path, Some("msg"));
        let matched: Vec<&str> = matched.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(matched.len(), 2, "{form}: {matched:#?}");
        assert!(
            matched.iter().all(|l| l.contains(": LOGIN FAILED, ")),
            "{form}: a line other than a failure matched: {matched:#?}"
        );

        let ips = fail2ban_regex(&tool, &dir, &path, Some("ip"));
        let ips: Vec<&str> = ips
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            ips,
            ["127.0.0.1", "127.0.0.1"],
            "{form}: the filter must take the real peer address, never the forged 6.6.6.6"
        );
    }

    // Defence in depth: a line with two addresses (which mdimapd's escaping
    // never produces) is not trusted at all.
    let forged = dir.join("forged.log");
    fs::write(&forged, "Nov  3 10:15:42 mailhost mdimapd[42]: LOGIN FAILED, method=LOGIN, user=x, ip=[6.6.6.6], ip=[127.0.0.1]\n").unwrap();
    let summary = fail2ban_regex(&tool, &dir, &forged, None);
    assert_eq!(
        regex_summary(&summary).2,
        0,
        "a two-address line matched:\n{summary}"
    );
}

/// cp -r, for a private copy of /etc/fail2ban.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()))
        .flatten()
    {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target)
                .unwrap_or_else(|err| panic!("cannot copy {}: {err}", e.path().display()));
        }
    }
}

#[test]
fn fail2ban_jail_loads_with_the_filter() {
    let client = require_tool("fail2ban-client", "fail2ban");
    let dir = TestDir::new("fail2ban-jail");
    // Debian's configuration with only our jail enabled, checked by
    // fail2ban-client itself (no server is started).
    let conf = dir.join("fail2ban");
    copy_tree(Path::new("/etc/fail2ban"), &conf);
    fs::write(
        conf.join("jail.d/defaults-debian.conf"),
        "[sshd]\nenabled = false\n",
    )
    .unwrap();
    fs::copy(
        repo().join("etc/fail2ban/jail.d/mdimap.conf"),
        conf.join("jail.d/mdimap.conf"),
    )
    .unwrap();
    fs::copy(
        repo().join("etc/fail2ban/filter.d/mdimap.conf"),
        conf.join("filter.d/mdimap.conf"),
    )
    .unwrap();
    let mut cmd = Command::new(&client);
    cmd.arg("-c").arg(&conf).arg("-t");
    let r = run_bounded(cmd, &dir, "fail2ban-client-test");
    assert!(
        r.success,
        "fail2ban-client -t rejected the jail (exit {:?}):\n{}\n{}",
        r.code, r.stdout, r.stderr
    );
    let mut cmd = Command::new(&client);
    cmd.arg("-c").arg(&conf).arg("-d");
    let r = run_bounded(cmd, &dir, "fail2ban-client-dump");
    assert!(
        r.success,
        "fail2ban-client -d failed (exit {:?}):\n{}\n{}",
        r.code, r.stdout, r.stderr
    );
    for needle in [
        "['add', 'mdimap', 'systemd']",
        "['set', 'mdimap', 'addjournalmatch', 'SYSLOG_IDENTIFIER=mdimapd']",
    ] {
        assert!(
            r.stdout.contains(needle),
            "fail2ban-client -d lacks {needle}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn fail2ban_jail_names_the_filter_and_both_ports() {
    let jail = read_repo_file("etc/fail2ban/jail.d/mdimap.conf");
    assert!(
        jail.lines().any(|l| l.trim() == "[mdimap]"),
        "no [mdimap] section:\n{jail}"
    );
    assert_eq!(unit_values(&jail, "filter"), ["mdimap"]);
    assert_eq!(unit_values(&jail, "enabled"), ["true"]);
    assert_eq!(unit_values(&jail, "port"), ["imap,imaps"]);
    assert_eq!(unit_values(&jail, "backend"), ["systemd"]);
    let filter = read_repo_file("etc/fail2ban/filter.d/mdimap.conf");
    assert_eq!(
        unit_values(&filter, "journalmatch"),
        ["SYSLOG_IDENTIFIER=mdimapd"]
    );
}

// ---------------------------------------------------------------------------
// The units' capability bounding set, for real
// ---------------------------------------------------------------------------

/// `setpriv --bounding-set` for the CapabilityBoundingSet= of `unit`, less `without`.
fn bounding_set_of(unit: &str, without: Option<&str>) -> String {
    let text = read_repo_file(&format!("etc/systemd/{unit}"));
    let caps = unit_value(&text, "CapabilityBoundingSet", unit);
    let kept: Vec<String> = caps
        .split_whitespace()
        .filter(|c| Some(*c) != without)
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_ascii_lowercase()))
        .collect();
    format!("--bounding-set=-all,{}", kept.join(","))
}

/// mdimapd under `setpriv` with `bounding` on a fresh TCP connection.
fn mdimapd_with_bounding_set(
    dir: &TestDir,
    conf: &Path,
    bounding: &str,
) -> (Child, TcpStream, PathBuf) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let log = dir.join(&format!("setpriv-{}.log", bounding.len()));
    let child = Command::new("setpriv")
        .arg(bounding)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_mdimapd"))
        .arg("--config")
        .arg(conf)
        .arg("--log-stderr")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(
            server.try_clone().unwrap(),
        )))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(server)))
        .stderr(Stdio::from(fs::File::create(&log).unwrap()))
        .spawn()
        .expect("cannot run setpriv (util-linux)");
    (child, client, log)
}

/// The shipped units keep exactly what mdimapd needs: under the bounding set
/// of mdimap@.service a login is served, with the login process confined;
/// without CAP_SYS_CHROOT the client is told the server is unavailable and
/// the log says which capability to add.
#[test]
fn the_units_bounding_set_serves_a_login_with_the_login_process_confined() {
    assert!(unsafe { libc::geteuid() } == 0, "run as root (CI does)");
    let dir = TestDir::new("bounding-set");
    let (conf, _users) = account(&dir);
    let (mut child, stream, log) =
        mdimapd_with_bounding_set(&dir, &conf, &bounding_set_of("mdimap@.service", None));
    let mut c = Client::new(stream);
    c.greeting = c.read_line();
    let session = assert_login_process_confined(child.id() as i32);
    assert_eq!(
        session,
        child.id() as i32,
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    login_and_select(&mut c);
    assert_session_dropped(session);
    logout(&mut c);
    let _ = child.wait();

    let (mut child, mut stream, log) = mdimapd_with_bounding_set(
        &dir,
        &conf,
        &bounding_set_of("mdimap@.service", Some("CAP_SYS_CHROOT")),
    );
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut text);
    let _ = child.wait();
    assert!(text.starts_with("* BYE [UNAVAILABLE]"), "{text}");
    let log = fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("the login process cannot confine itself") && log.contains("CAP_SYS_CHROOT"),
        "{log}"
    );
}
