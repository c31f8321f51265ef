//! End-to-end tests of the front door (issue 3): STARTTLS and implicit TLS,
//! SNI and certificate renewal, the plaintext-login policy, SASL, failure
//! throttling, client-certificate EXTERNAL, PROXY headers, the listener's
//! limits and signals, the login timeout, the privilege drop with its process
//! limits and umask, and what reaches the log.
//!
//! Everything runs as real processes over real sockets on 127.0.0.1, with
//! temporary directories, and every read is bounded in time. The tests check
//! what a client or an administrator sees: responses, certificates, log lines,
//! /proc and files on disk. They never reimplement server logic.
//!
//! External tools are required, never optional: python3 (imaplib and ssl, as
//! a real client) and openssl (s_client). A missing tool fails the test with a
//! message that says what to install.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Client, DeflateClient, HANG_GUARD, PASSWORD, PASSWORD_HASH, READ_TIMEOUT, Read1, Response,
    Server, TestDir, USER, base64, files, mail_ids, signal,
};

/// A wrong password the tests send; it must never reach a log either.
const WRONG_PASSWORD: &str = "Wr0ng-pa55-qx";

/// How long an external tool (python3, openssl) may run before the test fails.
const TOOL_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the timer tests (2 s login and autologout timers) wait for the
/// timer's BYE: far past 2 s even on a loaded machine, yet well short of the
/// 60 s default login timeout, so a setting that is ignored still fails.
const TIMER_GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// A certificate and its private key, both PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A self-signed server certificate whose subject is CN=`cn` (and SAN `cn`).
fn self_signed(cn: &str) -> Pem {
    let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// Writes certificate and key into one file, as Courier keeps them.
fn write_combined(path: &Path, pem: &Pem) {
    fs::write(path, format!("{}{}", pem.cert, pem.key)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Replaces `path` atomically, as certbot-style renewal tools do.
fn replace_combined(path: &Path, pem: &Pem) {
    let tmp = path.with_extension("new");
    write_combined(&tmp, pem);
    fs::rename(&tmp, path).unwrap();
}

/// A certificate authority for client certificates.
struct Ca {
    cert_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn make_ca(name: &str) -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert_pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A client certificate with subject CN=`cn`, signed by `ca`.
fn client_cert(ca: &Ca, cn: &str) -> Pem {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// The subject CN of a DER certificate.
fn subject_cn(der: &[u8]) -> String {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).expect("server sent an unparsable certificate");
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------------------
// Test setups
// ---------------------------------------------------------------------------

/// A test dir with the common account (see `TestDir::write_userfile`) and
/// `extra` appended to its configuration. Returns (dir, config, maildir).
fn setup(name: &str, extra: &str) -> (TestDir, PathBuf, PathBuf) {
    let dir = TestDir::new(name);
    let (conf, _users, maildir) = dir.write_userfile();
    append_conf(&conf, extra);
    (dir, conf, maildir)
}

fn append_conf(conf: &Path, extra: &str) {
    let mut text = fs::read_to_string(conf).unwrap();
    text.push_str(extra);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    fs::write(conf, text).unwrap();
}

/// Writes `<dir>/cert.pem` (CN=`cn`, certificate and key in one file) and
/// returns the configuration line naming it.
fn install_cert(dir: &TestDir, cn: &str) -> (PathBuf, String) {
    let path = dir.join("cert.pem");
    write_combined(&path, &self_signed(cn));
    let line = format!("TLS_CERTFILE={}\n", path.display());
    (path, line)
}

/// A connected pair of TCP sockets over 127.0.0.1: (client side, server side).
fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Starts `mdimapd --config <conf> --log-stderr <args>` on the server side
/// of a fresh TCP connection (so it sees peer 127.0.0.1, as under systemd or
/// tcpserver), sends `before` (a PROXY header, say) and returns the server
/// and the raw client socket. Nothing is read.
fn spawn_direct_raw(
    dir: &TestDir,
    conf: &Path,
    args: &[&str],
    before: &[u8],
) -> (Server, TcpStream) {
    let (mut client, server_sock) = socket_pair();
    let log = dir.join(&format!("mdimapd-{}.log", unique()));
    let stdin: OwnedFd = server_sock.try_clone().unwrap().into();
    let stdout: OwnedFd = server_sock.into();
    let child = Command::new(env!("CARGO_BIN_EXE_mdimapd"))
        .arg("--config")
        .arg(conf)
        .arg("--log-stderr")
        .args(args)
        .env("HOME", &dir.path)
        .env_remove("TCPREMOTEIP")
        .env_remove("MDIMAP_PROXIED")
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(fs::File::create(&log).unwrap()))
        .spawn()
        .expect("cannot start mdimapd");
    client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    if !before.is_empty() {
        client.write_all(before).unwrap();
    }
    (Server { child, log }, client)
}

/// [`spawn_direct_raw`], then a plain IMAP client with the greeting read.
fn spawn_direct(dir: &TestDir, conf: &Path, args: &[&str], before: &[u8]) -> (Server, Client) {
    let (server, sock) = spawn_direct_raw(dir, conf, args, before);
    let mut c = Client::new(sock);
    c.greeting = match c.read_line_within(READ_TIMEOUT) {
        Read1::Line(l) => l,
        other => panic!(
            "no greeting from mdimapd ({other:?}); log:\n{}",
            server.log_text()
        ),
    };
    (server, c)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// mdimap-listen
// ---------------------------------------------------------------------------

/// A running `mdimap-listen` with a plain and/or an implicit-TLS port.
/// Its stderr (and that of the mdimapd sessions it starts) is collected.
/// SIGTERM, then SIGKILL, on drop.
struct Listen {
    child: Child,
    plain: Option<u16>,
    tls: Option<u16>,
    log: Arc<Mutex<String>>,
}

impl Listen {
    fn start(conf: &Path, plain: bool, tls: bool) -> Listen {
        Listen::start_with(conf, plain, tls, |_| {})
    }

    /// [`Listen::start`], with `prepare` given the command before it is
    /// spawned (more options, environment, an inherited descriptor).
    fn start_with(
        conf: &Path,
        plain: bool,
        tls: bool,
        prepare: impl FnOnce(&mut Command),
    ) -> Listen {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimap-listen"));
        cmd.arg("--config").arg(conf).arg("--log-stderr");
        if plain {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if tls {
            cmd.args(["--listen-tls", "127.0.0.1:0"]);
        }
        cmd.env_remove("TCPREMOTEIP");
        prepare(&mut cmd);
        let (child, log, rx) = common::spawn_announcing(&mut cmd);
        let mut l = Listen {
            child,
            plain: None,
            tls: None,
            log,
        };
        let deadline = Instant::now() + HANG_GUARD;
        while (plain && l.plain.is_none()) || (tls && l.tls.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((port, true)) => l.tls = Some(port),
                Ok((port, false)) => l.plain = Some(port),
                Err(_) => panic!(
                    "mdimap-listen did not announce `mdimap-listen: listening on 127.0.0.1:PORT[ (TLS)]` \
                     within {HANG_GUARD:?}; stderr:\n{}",
                    l.log_text()
                ),
            }
        }
        for p in [l.plain, l.tls].into_iter().flatten() {
            assert_ne!(p, 0, "the announced port must be the bound port, not 0");
        }
        l
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn plain_port(&self) -> u16 {
        self.plain.expect("no plain port")
    }

    fn tls_port(&self) -> u16 {
        self.tls.expect("no TLS port")
    }

    /// A plain connection that first sends `before` (a PROXY header, say),
    /// greeting read.
    fn connect_with(&self, before: &[u8]) -> Client {
        let mut s = TcpStream::connect(("127.0.0.1", self.plain_port())).unwrap();
        if !before.is_empty() {
            s.write_all(before).unwrap();
        }
        let mut c = Client::new(s);
        c.greeting = match c.read_line_within(READ_TIMEOUT) {
            Read1::Line(l) => l,
            other => panic!(
                "no greeting through mdimap-listen ({other:?}); log:\n{}",
                self.log_text()
            ),
        };
        c
    }

    fn connect(&self) -> Client {
        self.connect_with(b"")
    }

    /// Waits up to `timeout` for `needle` to appear in the collected stderr.
    fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        common::wait_for(timeout, || self.log_text().contains(needle))
    }

    fn exited_within(&mut self, timeout: Duration) -> bool {
        common::wait_for(timeout, || matches!(self.child.try_wait(), Ok(Some(_))))
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(self.pid(), libc::SIGTERM);
            if !common::wait_for(HANG_GUARD, || matches!(self.child.try_wait(), Ok(Some(_)))) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if thread::panicking() {
            eprintln!("---- mdimap-listen stderr ----\n{}", self.log_text());
        }
    }
}

// ---------------------------------------------------------------------------
// A TLS IMAP client (rustls), for STARTTLS injection, client certificates
// and checks a scripted client cannot make
// ---------------------------------------------------------------------------

/// Accepts any server certificate (the tests generate throw-away ones) but
/// keeps the one presented, so SNI and renewal can be checked.
/// Where [`RecordingVerifier`] keeps the server certificate it was shown (DER).
type SeenCert = Arc<Mutex<Option<Vec<u8>>>>;

#[derive(Debug)]
struct RecordingVerifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    seen: SeenCert,
}

impl rustls::client::danger::ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = Some(end_entity.as_ref().to_vec());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[derive(Default)]
struct TlsOpts<'a> {
    /// SNI name; `None` connects by IP address, which sends no SNI.
    sni: Option<&'a str>,
    /// A client certificate (and key) to present.
    client_cert: Option<&'a Pem>,
}

struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
    next_tag: u32,
    /// The certificate the server presented (DER).
    server_cert: Vec<u8>,
}

impl TlsClient {
    /// The client's configuration for `opts`, and where its verifier keeps the
    /// certificate the server presents.
    fn config(opts: &TlsOpts) -> (Arc<rustls::ClientConfig>, SeenCert) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = Arc::new(Mutex::new(None));
        let verifier = Arc::new(RecordingVerifier {
            provider: provider.clone(),
            seen: seen.clone(),
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match opts.client_cert {
            Some(pem) => {
                use rustls_pki_types::pem::PemObject;
                let certs = vec![
                    rustls_pki_types::CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap(),
                ];
                let key =
                    rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap();
                builder.with_client_auth_cert(certs, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        (Arc::new(config), seen)
    }

    fn connection(opts: &TlsOpts) -> (rustls::ClientConnection, SeenCert) {
        let (config, seen) = TlsClient::config(opts);
        let name =
            rustls_pki_types::ServerName::try_from(opts.sni.unwrap_or("127.0.0.1").to_string())
                .unwrap();
        (rustls::ClientConnection::new(config, name).unwrap(), seen)
    }

    /// Runs the client side of the handshake on `sock` (fresh, or after a
    /// STARTTLS `OK`).
    fn handshake(mut sock: TcpStream, opts: TlsOpts) -> Result<TlsClient, String> {
        let (mut conn, seen) = TlsClient::connection(&opts);
        sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
        }
        let server_cert = seen
            .lock()
            .unwrap()
            .clone()
            .ok_or("no server certificate seen")?;
        Ok(TlsClient {
            stream: rustls::StreamOwned::new(conn, sock),
            buf: Vec::new(),
            next_tag: 1,
            server_cert,
        })
    }

    /// Runs the client side of a handshake the server must refuse, and returns
    /// the TLS error the client got for it. The refusal can come during the
    /// handshake (TLS 1.2) or only on the first read after it: in TLS 1.3 the
    /// client's handshake is done once it has sent its certificate, and the
    /// server's verdict on that certificate arrives afterwards as an alert. The
    /// client sends nothing after the handshake, so the alert is not lost to a
    /// reset. Panics if the server sends data instead, or closes without an
    /// alert, or the failure is not a TLS error.
    fn refused(mut sock: TcpStream, opts: TlsOpts) -> rustls::Error {
        let (mut conn, _) = TlsClient::connection(&opts);
        sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let failure = loop {
            if conn.is_handshaking() {
                match conn.complete_io(&mut sock) {
                    Ok(_) => continue,
                    Err(e) => break e,
                }
            }
            let mut buf = [0u8; 4096];
            match rustls::Stream::new(&mut conn, &mut sock).read(&mut buf) {
                Ok(0) => panic!("the server closed the TLS connection without an alert"),
                Ok(n) => panic!(
                    "the server went on after the handshake: {:?}",
                    String::from_utf8_lossy(&buf[..n])
                ),
                Err(e) => break e,
            }
        };
        failure
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned()
            .unwrap_or_else(|| panic!("expected a TLS alert from the server, got: {failure}"))
    }

    /// Implicit TLS: connect, handshake, read the greeting.
    fn connect_implicit(port: u16, opts: TlsOpts) -> (TlsClient, String) {
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut t = TlsClient::handshake(sock, opts)
            .unwrap_or_else(|e| panic!("implicit TLS on port {port}: {e}"));
        let greeting = t.read_line();
        (t, greeting)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("TLS write failed: {e}"));
        self.stream
            .flush()
            .unwrap_or_else(|e| panic!("TLS flush failed: {e}"));
    }

    /// One line (without CRLF), or Timeout/Eof; other errors are returned.
    fn try_read_line(&mut self, timeout: Duration) -> Result<Read1, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Read1::Line(String::from_utf8_lossy(&line).into_owned()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Read1::Timeout);
            }
            self.stream.sock.set_read_timeout(Some(left)).unwrap();
            let mut tmp = [0u8; 8192];
            match self.stream.read(&mut tmp) {
                Ok(0) => return Ok(Read1::Eof),
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        return Ok(Read1::Timeout);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof
                            | ErrorKind::ConnectionReset
                            | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(Read1::Eof);
                }
                Err(e) => return Err(format!("TLS read failed: {e}")),
            }
        }
    }

    fn read_line_within(&mut self, timeout: Duration) -> Read1 {
        self.try_read_line(timeout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn read_line(&mut self) -> String {
        match self.read_line_within(READ_TIMEOUT) {
            Read1::Line(l) => l,
            other => panic!("expected a line from the server inside TLS, got {other:?}"),
        }
    }

    fn try_read_until_tagged(&mut self, tag: &str) -> Result<Response, String> {
        let prefix = format!("{tag} ");
        let mut untagged = Vec::new();
        loop {
            match self.try_read_line(READ_TIMEOUT)? {
                Read1::Line(l) if l.starts_with(&prefix) => {
                    return Ok(Response {
                        untagged,
                        tagged: l,
                    });
                }
                Read1::Line(l) => untagged.push(l),
                other => {
                    return Err(format!(
                        "waiting for {tag} inside TLS: {other:?}; so far {untagged:?}"
                    ));
                }
            }
        }
    }

    fn try_cmd(&mut self, text: &str) -> Result<Response, String> {
        let tag = format!("u{}", self.next_tag);
        self.next_tag += 1;
        self.stream
            .write_all(format!("{tag} {text}\r\n").as_bytes())
            .and_then(|_| self.stream.flush())
            .map_err(|e| format!("TLS write failed: {e}"))?;
        self.try_read_until_tagged(&tag)
    }

    fn cmd(&mut self, text: &str) -> Response {
        self.try_cmd(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn ok(&mut self, text: &str) -> Response {
        let r = self.cmd(text);
        assert!(r.is_ok(), "expected OK for {text:?} inside TLS, got {r:#?}");
        r
    }
}

/// Sends STARTTLS on a plain client, checks the OK, and hands the socket to
/// a TLS client.
fn starttls(c: &mut Client, opts: TlsOpts) -> TlsClient {
    let r = c.cmd("STARTTLS");
    assert!(r.is_ok(), "STARTTLS refused: {r:#?}");
    let sock = c.stream().try_clone().unwrap();
    TlsClient::handshake(sock, opts).unwrap_or_else(|e| panic!("after STARTTLS: {e}"))
}

// ---------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------

/// Fails the test unless `tool` runs.
fn require_tool(tool: &str, version_arg: &str, package: &str) {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs `{tool}` on PATH; install it (Debian: apt-get install {package}). It is not skipped."
    );
}

struct ToolOutput {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd`, feeding it `input` line by line with a pause before each
/// (so a TLS client has finished its handshake before reading them), then
/// closing stdin. Fails the test if it runs longer than [`TOOL_TIMEOUT`].
fn run_tool(mut cmd: Command, input: Vec<Vec<u8>>, pause: Duration) -> ToolOutput {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        for chunk in input {
            thread::sleep(pause);
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let ro = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let re = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = String::from_utf8_lossy(&ro.join().unwrap()).into_owned();
            let stderr = String::from_utf8_lossy(&re.join().unwrap()).into_owned();
            panic!(
                "{cmd:?} did not finish within {TOOL_TIMEOUT:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    ToolOutput {
        status,
        stdout: String::from_utf8_lossy(&ro.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&re.join().unwrap()).into_owned(),
    }
}

fn python(script: &str, args: &[String]) -> ToolOutput {
    require_tool("python3", "--version", "python3");
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).args(args);
    let out = run_tool(cmd, Vec::new(), Duration::ZERO);
    assert!(
        out.status.success(),
        "python3 client failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out
}

/// The value after `KEY ` on the line of a python script's output.
fn py_field<'a>(out: &'a ToolOutput, key: &str) -> &'a str {
    let prefix = format!("{key} ");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| {
            panic!(
                "no `{key}` line in python output:\n{}\nstderr:\n{}",
                out.stdout, out.stderr
            )
        })
}

/// `openssl s_client -connect 127.0.0.1:<port> <args>` with stdin closed at
/// once; returns its output.
fn s_client(port: u16, args: &[&str]) -> ToolOutput {
    require_tool("openssl", "version", "openssl");
    let mut cmd = Command::new("openssl");
    cmd.arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .args(args);
    run_tool(cmd, Vec::new(), Duration::ZERO)
}

/// The CN of the certificate subject `openssl s_client` printed.
fn s_client_subject_cn(out: &ToolOutput) -> String {
    let subject = out
        .stdout
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| {
            panic!(
                "openssl s_client printed no subject= line ({:?})\nstdout:\n{}\nstderr:\n{}",
                out.status, out.stdout, out.stderr
            )
        })
        .replace(' ', "");
    subject
        .split(['/', ','])
        .find_map(|part| {
            part.strip_prefix("subject=")
                .unwrap_or(part)
                .strip_prefix("CN=")
        })
        .unwrap_or_else(|| panic!("no CN in {subject:?}"))
        .to_string()
}

// ---------------------------------------------------------------------------
// PROXY headers and small helpers
// ---------------------------------------------------------------------------

fn proxy_v1(source: &str, sport: u16) -> Vec<u8> {
    format!("PROXY TCP4 {source} 192.0.2.1 {sport} 143\r\n").into_bytes()
}

/// A PROXY v2 header (PROXY command, TCP over IPv4, no TLVs).
fn proxy_v2(source: [u8; 4], sport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21);
    h.push(0x11);
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&source);
    h.extend_from_slice(&[192, 0, 2, 1]);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&143u16.to_be_bytes());
    h
}

/// The capability words of a greeting `* OK [CAPABILITY ...]` or of the
/// `* CAPABILITY` line of a response.
fn caps_of_greeting(greeting: &str) -> Vec<String> {
    let start = greeting
        .find("[CAPABILITY ")
        .unwrap_or_else(|| panic!("no CAPABILITY in greeting {greeting:?}"));
    let rest = &greeting[start + "[CAPABILITY ".len()..];
    let end = rest
        .find(']')
        .unwrap_or_else(|| panic!("unterminated CAPABILITY code in {greeting:?}"));
    rest[..end]
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect()
}

fn caps_of(r: &Response) -> Vec<String> {
    let line = r
        .line("* CAPABILITY ")
        .unwrap_or_else(|| panic!("no * CAPABILITY in {r:#?}"));
    line["* CAPABILITY ".len()..]
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect()
}

fn has(caps: &[String], word: &str) -> bool {
    caps.iter().any(|c| c == word)
}

/// No password, and no base64 form of the credentials the tests send,
/// anywhere in `log`.
fn assert_no_secrets(log: &str) {
    let secrets = [
        PASSWORD.to_string(),
        WRONG_PASSWORD.to_string(),
        base64(PASSWORD.as_bytes()),
        base64(WRONG_PASSWORD.as_bytes()),
        base64(format!("\0{USER}\0{PASSWORD}").as_bytes()),
        base64(format!("\0{USER}\0{WRONG_PASSWORD}").as_bytes()),
    ];
    for s in &secrets {
        assert!(
            !log.contains(s.as_str()),
            "the log contains a secret ({s:?}):\n{log}"
        );
    }
}

fn plain_ir(authz: &str, user: &str, pass: &str) -> String {
    base64(format!("{authz}\0{user}\0{pass}").as_bytes())
}

/// `* BYE` (among the lines) and the connection closed.
fn assert_bye_and_close(c: &mut Client, what: &str) -> Vec<String> {
    let lines = c.read_to_eof(HANG_GUARD);
    assert!(
        lines.iter().any(|l| l.starts_with("* BYE")),
        "{what}: expected * BYE then close, got {lines:#?}"
    );
    lines
}

fn log_lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

// ---------------------------------------------------------------------------
// 1. STARTTLS with a real client (python imaplib + ssl)
// ---------------------------------------------------------------------------

const PY_STARTTLS: &str = r#"
import imaplib, ssl, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4('127.0.0.1', port, timeout=15)
print('BEFORE', ' '.join(M.capabilities))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
typ, _ = M.starttls(ssl_context=ctx)
print('STARTTLS', typ)
print('VERSION', M.sock.version())
print('AFTER', ' '.join(M.capabilities))
typ, _ = M.login(user, pw)
print('LOGIN', typ)
typ, _ = M.select('INBOX')
print('SELECT', typ)
typ, _ = M.logout()
print('LOGOUT', typ)
"#;

#[test]
fn starttls_with_python_imaplib() {
    // Plaintext login is off, so the login below can only work over TLS.
    let dir = TestDir::new("starttls-py");
    let (conf, _, _) = dir.write_userfile();
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &format!("{cert_line}MDIMAP_PLAINTEXT_LOGIN=no\n"));
    let l = Listen::start(&conf, true, false);

    // What a raw client sees in clear text.
    let mut c = l.connect();
    let caps = caps_of_greeting(&c.greeting);
    assert!(
        has(&caps, "STARTTLS"),
        "STARTTLS must be offered in clear text: {caps:?}"
    );
    assert!(
        has(&caps, "LOGINDISABLED"),
        "MDIMAP_PLAINTEXT_LOGIN=no: {caps:?}"
    );
    let caps = caps_of(&c.ok("CAPABILITY"));
    assert!(
        has(&caps, "STARTTLS") && has(&caps, "LOGINDISABLED") && !has(&caps, "AUTH=PLAIN"),
        "{caps:?}"
    );
    c.ok("LOGOUT");

    let out = python(
        PY_STARTTLS,
        &[
            l.plain_port().to_string(),
            USER.to_string(),
            PASSWORD.to_string(),
        ],
    );
    let before: Vec<String> = py_field(&out, "BEFORE")
        .split(' ')
        .map(str::to_ascii_uppercase)
        .collect();
    let after: Vec<String> = py_field(&out, "AFTER")
        .split(' ')
        .map(str::to_ascii_uppercase)
        .collect();
    assert!(has(&before, "STARTTLS"), "before STARTTLS: {before:?}");
    assert!(
        !has(&after, "STARTTLS"),
        "STARTTLS must not be offered inside TLS: {after:?}"
    );
    assert!(
        has(&after, "AUTH=PLAIN") && !has(&after, "LOGINDISABLED"),
        "login must be allowed inside TLS: {after:?}"
    );
    assert_eq!(py_field(&out, "STARTTLS"), "OK");
    assert!(
        py_field(&out, "VERSION").starts_with("TLSv1."),
        "{}",
        out.stdout
    );
    assert_eq!(py_field(&out, "LOGIN"), "OK");
    assert_eq!(py_field(&out, "SELECT"), "OK");

    assert!(
        l.wait_log(&format!(": LOGIN, user={USER},"), HANG_GUARD),
        "no LOGIN line:\n{}",
        l.log_text()
    );
    let log = l.log_text();
    let login = log_lines_with(&log, &format!(": LOGIN, user={USER},"));
    assert!(
        login
            .iter()
            .all(|line| line.contains("tls=") && !line.contains("tls=none")),
        "LOGIN must record TLS: {login:#?}"
    );
    assert_no_secrets(&log);
}

// ---------------------------------------------------------------------------
// 2. STARTTLS command injection
// ---------------------------------------------------------------------------

#[test]
fn starttls_discards_pipelined_plaintext() {
    let dir = TestDir::new("starttls-inject");
    let (conf, _, _) = dir.write_userfile();
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &cert_line);

    // `b CAPABILITY` rides in the same segment as STARTTLS.
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.send(b"a STARTTLS\r\nb CAPABILITY\r\n");
    let first = c.read_line();
    assert!(
        first.starts_with("a OK"),
        "first reply to `a STARTTLS` must be its OK, got {first:?}"
    );
    match c.read_line_within(Duration::from_millis(800)) {
        Read1::Timeout => {}
        other => {
            panic!("nothing may follow `a OK` in clear text (injected `b` answered?): {other:?}")
        }
    }
    let mut t = TlsClient::handshake(c.stream().try_clone().unwrap(), TlsOpts::default())
        .unwrap_or_else(|e| panic!("handshake after STARTTLS with injected plaintext: {e}"));
    match t.read_line_within(Duration::from_millis(1000)) {
        Read1::Timeout => {}
        other => panic!("the injected `b CAPABILITY` must not be answered inside TLS: {other:?}"),
    }
    let r = t.cmd("CAPABILITY");
    assert!(r.tagged.starts_with("u1 OK"), "{r:#?}");
    assert!(r.untagged.iter().all(|l| !l.starts_with("b ")), "{r:#?}");
    let caps = caps_of(&r);
    assert!(!has(&caps, "STARTTLS"), "no STARTTLS inside TLS: {caps:?}");
    // A second STARTTLS inside TLS is refused.
    let r = t.cmd("STARTTLS");
    assert!(r.is_bad() || r.is_no(), "STARTTLS inside TLS: {r:#?}");
    t.ok("LOGOUT");
    drop(server);

    // An injected LOGIN is discarded too: the session is still not authenticated.
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.send(format!("a STARTTLS\r\nb LOGIN {USER} {PASSWORD}\r\n").as_bytes());
    let first = c.read_line();
    assert!(first.starts_with("a OK"), "{first:?}");
    let mut t = TlsClient::handshake(c.stream().try_clone().unwrap(), TlsOpts::default()).unwrap();
    match t.read_line_within(Duration::from_millis(1000)) {
        Read1::Timeout => {}
        other => panic!("the injected LOGIN must not be answered: {other:?}"),
    }
    let r = t.cmd("SELECT INBOX");
    assert!(
        r.is_bad() || r.is_no(),
        "an injected LOGIN must not have logged in: {r:#?}"
    );
    t.ok("LOGOUT");
    let mut server = server;
    server.wait_exit(HANG_GUARD);
    let log = server.log_text();
    assert!(
        !log.contains(": LOGIN, user="),
        "injected LOGIN was executed:\n{log}"
    );
    assert_no_secrets(&log);
}

// ---------------------------------------------------------------------------
// 3. Implicit TLS under mdimap-listen --listen-tls
// ---------------------------------------------------------------------------

const PY_IMPLICIT: &str = r#"
import imaplib, ssl, sys
port, maxv, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if maxv == '1.2':
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
M = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=15)
print('VERSION', M.sock.version())
print('CAPS', ' '.join(M.capabilities))
typ, _ = M.login(user, pw)
print('LOGIN', typ)
typ, _ = M.select('INBOX')
print('SELECT', typ)
typ, _ = M.logout()
print('LOGOUT', typ)
"#;

#[test]
fn implicit_tls_with_openssl_and_python() {
    let dir = TestDir::new("implicit-tls");
    let (conf, _, _) = dir.write_userfile();
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &cert_line);
    let l = Listen::start(&conf, false, true);
    let port = l.tls_port();

    for (flag, want) in [("-tls1_2", "1_2"), ("-tls1_3", "1_3")] {
        require_tool("openssl", "version", "openssl");
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-quiet", flag, "-connect"])
            .arg(format!("127.0.0.1:{port}"));
        let input = vec![
            b"a CAPABILITY\r\n".to_vec(),
            format!("b LOGIN {USER} {PASSWORD}\r\n").into_bytes(),
            b"c LOGOUT\r\n".to_vec(),
        ];
        let out = run_tool(cmd, input, Duration::from_millis(400));
        let lines: Vec<&str> = out
            .stdout
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .collect();
        let why = format!(
            "openssl s_client {flag}:\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        assert!(
            lines.first().is_some_and(|g| g.starts_with("* OK")),
            "greeting over implicit TLS: {why}"
        );
        let caps = caps_of_greeting(lines[0]);
        assert!(
            !has(&caps, "STARTTLS"),
            "no STARTTLS on an implicit-TLS port: {why}"
        );
        assert!(
            has(&caps, "AUTH=PLAIN") && !has(&caps, "LOGINDISABLED"),
            "{why}"
        );
        assert!(lines.iter().any(|l| l.starts_with("a OK")), "{why}");
        assert!(
            lines.iter().any(|l| l.starts_with("b OK")),
            "LOGIN over implicit TLS: {why}"
        );
        assert!(lines.iter().any(|l| l.starts_with("c OK")), "{why}");
        // The session records the negotiated version.
        let logged = common::wait_for(HANG_GUARD, || {
            log_lines_with(&l.log_text(), &format!(": LOGIN, user={USER},"))
                .iter()
                .any(|line| line.contains(want) || line.contains(&want.replace('_', ".")))
        });
        assert!(
            logged,
            "no LOGIN line recording TLS {want}:\n{}",
            l.log_text()
        );
    }

    for maxv in ["1.2", "default"] {
        let out = python(
            PY_IMPLICIT,
            &[
                port.to_string(),
                maxv.to_string(),
                USER.to_string(),
                PASSWORD.to_string(),
            ],
        );
        let version = py_field(&out, "VERSION");
        if maxv == "1.2" {
            assert_eq!(version, "TLSv1.2", "{}", out.stdout);
        } else {
            assert_eq!(
                version, "TLSv1.3",
                "TLS 1.3 must be negotiated by default: {}",
                out.stdout
            );
        }
        assert!(
            !py_field(&out, "CAPS")
                .to_ascii_uppercase()
                .contains("STARTTLS"),
            "{}",
            out.stdout
        );
        assert_eq!(py_field(&out, "LOGIN"), "OK");
        assert_eq!(py_field(&out, "SELECT"), "OK");
    }
    assert_no_secrets(&l.log_text());
}

// ---------------------------------------------------------------------------
// 4. SNI
// ---------------------------------------------------------------------------

#[test]
fn sni_selects_per_host_certificate() {
    let dir = TestDir::new("sni");
    let (conf, _, _) = dir.write_userfile();
    let (cert, cert_line) = install_cert(&dir, "a.test");
    write_combined(
        Path::new(&format!("{}.b.test", cert.display())),
        &self_signed("b.test"),
    );
    append_conf(&conf, &cert_line);
    let l = Listen::start(&conf, true, true);

    let out = s_client(l.tls_port(), &["-servername", "b.test"]);
    assert_eq!(
        s_client_subject_cn(&out),
        "b.test",
        "SNI b.test on the implicit-TLS port"
    );
    let out = s_client(l.tls_port(), &["-noservername"]);
    assert_eq!(
        s_client_subject_cn(&out),
        "a.test",
        "no SNI: the default certificate"
    );
    let out = s_client(l.tls_port(), &["-servername", "c.test"]);
    assert_eq!(
        s_client_subject_cn(&out),
        "a.test",
        "SNI without its own file: the default certificate"
    );
    // The same through STARTTLS.
    let out = s_client(
        l.plain_port(),
        &["-starttls", "imap", "-servername", "b.test"],
    );
    assert_eq!(
        s_client_subject_cn(&out),
        "b.test",
        "SNI b.test after STARTTLS"
    );
    let out = s_client(l.plain_port(), &["-starttls", "imap", "-noservername"]);
    assert_eq!(s_client_subject_cn(&out), "a.test", "no SNI after STARTTLS");

    // And with a Rust client, which also proves the session works on it.
    let (mut t, greeting) = TlsClient::connect_implicit(
        l.tls_port(),
        TlsOpts {
            sni: Some("b.test"),
            ..Default::default()
        },
    );
    assert!(greeting.starts_with("* OK"), "{greeting}");
    assert_eq!(subject_cn(&t.server_cert), "b.test");
    t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    t.ok("LOGOUT");
    let (t, _) = TlsClient::connect_implicit(l.tls_port(), TlsOpts::default());
    assert_eq!(subject_cn(&t.server_cert), "a.test");
    assert_no_secrets(&l.log_text());
}

// ---------------------------------------------------------------------------
// 5. Certificate renewal without a restart
// ---------------------------------------------------------------------------

#[test]
fn renewed_certificate_used_without_restart() {
    let dir = TestDir::new("renewal");
    let (conf, _, _) = dir.write_userfile();
    let (cert, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &cert_line);
    let mut l = Listen::start(&conf, true, true);

    let out = s_client(l.tls_port(), &["-noservername"]);
    assert_eq!(s_client_subject_cn(&out), "a.test");
    let (t_old, _) = TlsClient::connect_implicit(l.tls_port(), TlsOpts::default());
    assert_eq!(subject_cn(&t_old.server_cert), "a.test");

    replace_combined(&cert, &self_signed("renewed.test"));
    let out = s_client(l.tls_port(), &["-noservername"]);
    assert_eq!(
        s_client_subject_cn(&out),
        "renewed.test",
        "implicit TLS after renewal"
    );
    let out = s_client(l.plain_port(), &["-starttls", "imap", "-noservername"]);
    assert_eq!(
        s_client_subject_cn(&out),
        "renewed.test",
        "STARTTLS after renewal"
    );
    let (mut t, _) = TlsClient::connect_implicit(l.tls_port(), TlsOpts::default());
    assert_eq!(subject_cn(&t.server_cert), "renewed.test");
    t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    t.ok("LOGOUT");
    assert!(
        matches!(l.child.try_wait(), Ok(None)),
        "the listener must still be the same running process"
    );
    drop(t_old);
    assert_no_secrets(&l.log_text());
}

// ---------------------------------------------------------------------------
// 6. Plaintext-login policy
// ---------------------------------------------------------------------------

#[test]
fn plaintext_login_policy() {
    // MDIMAP_PLAINTEXT_LOGIN=no, even from loopback.
    let (dir, conf, _) = setup("policy-no", "MDIMAP_PLAINTEXT_LOGIN=no\n");
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let caps = caps_of_greeting(&c.greeting);
    assert!(
        has(&caps, "LOGINDISABLED") && !has(&caps, "AUTH=PLAIN") && !has(&caps, "AUTH=LOGIN"),
        "{caps:?}"
    );
    let r = c.no(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.text().contains("[PRIVACYREQUIRED]"), "{r:#?}");
    let r = c.no(&format!(
        "AUTHENTICATE PLAIN {}",
        plain_ir("", USER, PASSWORD)
    ));
    assert!(r.text().contains("[PRIVACYREQUIRED]"), "{r:#?}");
    let r = c.cmd("SELECT INBOX");
    assert!(r.is_bad() || r.is_no(), "{r:#?}");
    c.ok("LOGOUT");
    let mut server = server;
    server.wait_exit(HANG_GUARD);
    assert!(
        !server.log_text().contains(": LOGIN, user="),
        "{}",
        server.log_text()
    );
    assert_no_secrets(&server.log_text());

    // Courier's IMAP_TLS_REQUIRED=1 means the same.
    let (dir, conf, _) = setup("policy-courier", "IMAP_TLS_REQUIRED=1\n");
    let (_server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    assert!(
        has(&caps_of_greeting(&c.greeting), "LOGINDISABLED"),
        "{}",
        c.greeting
    );
    let r = c.no(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.text().contains("[PRIVACYREQUIRED]"), "{r:#?}");

    // The default (loopback): allowed from 127.0.0.1; no certificate, so no STARTTLS.
    let (dir, conf, _) = setup("policy-default", "");
    let (_server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let caps = caps_of_greeting(&c.greeting);
    assert!(
        has(&caps, "AUTH=PLAIN") && has(&caps, "AUTH=LOGIN") && !has(&caps, "LOGINDISABLED"),
        "{caps:?}"
    );
    assert!(
        !has(&caps, "STARTTLS"),
        "no certificate, no STARTTLS: {caps:?}"
    );
    let r = c.cmd("STARTTLS");
    assert!(
        r.is_bad() || r.is_no(),
        "STARTTLS without a certificate: {r:#?}"
    );
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("SELECT INBOX");

    // Through a trusted proxy that says the client is 203.0.113.9: not loopback.
    let (dir, conf, _) = setup("policy-proxy", "MDIMAP_PROXY_TRUSTED=127.0.0.1/32\n");
    let l = Listen::start(&conf, true, false);
    let mut c = l.connect_with(&proxy_v1("203.0.113.9", 50000));
    let caps = caps_of_greeting(&c.greeting);
    assert!(
        has(&caps, "LOGINDISABLED") && !has(&caps, "AUTH=PLAIN"),
        "proxied non-loopback client (listener): {caps:?}"
    );
    let r = c.no(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.text().contains("[PRIVACYREQUIRED]"), "{r:#?}");
    // A proxied client claiming loopback is loopback.
    let mut c = l.connect_with(&proxy_v1("127.0.0.1", 50001));
    assert!(
        has(&caps_of_greeting(&c.greeting), "AUTH=PLAIN"),
        "{}",
        c.greeting
    );
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    // The same with mdimapd reading the header itself.
    let (_server, mut c) = spawn_direct(&dir, &conf, &[], &proxy_v1("203.0.113.9", 50002));
    let caps = caps_of_greeting(&c.greeting);
    assert!(
        has(&caps, "LOGINDISABLED") && !has(&caps, "AUTH=PLAIN"),
        "proxied non-loopback client (mdimapd): {caps:?}"
    );
    let r = c.no(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.text().contains("[PRIVACYREQUIRED]"), "{r:#?}");
    assert_no_secrets(&l.log_text());

    // MDIMAP_PLAINTEXT_LOGIN=yes allows it from anywhere.
    let (dir, conf, _) = setup(
        "policy-yes",
        "MDIMAP_PROXY_TRUSTED=127.0.0.1/32\nMDIMAP_PLAINTEXT_LOGIN=yes\n",
    );
    let (_server, mut c) = spawn_direct(&dir, &conf, &[], &proxy_v1("203.0.113.9", 50003));
    let caps = caps_of_greeting(&c.greeting);
    assert!(
        has(&caps, "AUTH=PLAIN") && !has(&caps, "LOGINDISABLED"),
        "{caps:?}"
    );
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
}

// ---------------------------------------------------------------------------
// 7. SASL
// ---------------------------------------------------------------------------

#[test]
fn sasl_mechanisms() {
    let (dir, conf, _) = setup("sasl", "MDIMAP_LOGIN_FAILURE_DELAY=0\n");
    let mut logs = String::new();

    // PLAIN with SASL-IR.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let caps = caps_of_greeting(&c.greeting);
    assert!(
        has(&caps, "SASL-IR") && has(&caps, "AUTH=PLAIN") && has(&caps, "AUTH=LOGIN"),
        "{caps:?}"
    );
    assert!(
        !caps.iter().any(|w| w.starts_with("AUTH=CRAM")),
        "no CRAM without clear-text passwords: {caps:?}"
    );
    c.ok(&format!(
        "AUTHENTICATE PLAIN {}",
        plain_ir("", USER, PASSWORD)
    ));
    c.ok("SELECT INBOX");
    c.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    logs.push_str(&server.log_text());
    assert!(
        server
            .log_text()
            .contains(&format!(": LOGIN, user={USER},")),
        "{}",
        server.log_text()
    );

    // PLAIN with a continuation; authzid equal to authcid is fine.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.send(b"p1 AUTHENTICATE PLAIN\r\n");
    let cont = c.read_line();
    assert!(
        cont.starts_with('+'),
        "PLAIN without IR must get a continuation, got {cont:?}"
    );
    c.send(format!("{}\r\n", plain_ir(USER, USER, PASSWORD)).as_bytes());
    let r = c.read_until_tagged("p1", Vec::new());
    assert!(r.is_ok(), "{r:#?}");
    c.ok("SELECT INBOX");
    c.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    logs.push_str(&server.log_text());

    // LOGIN: user name, then password, each on its own continuation.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.send(b"l1 AUTHENTICATE LOGIN\r\n");
    let cont = c.read_line();
    assert!(cont.starts_with('+'), "{cont:?}");
    c.send(format!("{}\r\n", base64(USER.as_bytes())).as_bytes());
    let cont = c.read_line();
    assert!(
        cont.starts_with('+'),
        "second LOGIN continuation (password): {cont:?}"
    );
    c.send(format!("{}\r\n", base64(PASSWORD.as_bytes())).as_bytes());
    let r = c.read_until_tagged("l1", Vec::new());
    assert!(r.is_ok(), "{r:#?}");
    c.ok("SELECT INBOX");
    c.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    logs.push_str(&server.log_text());

    // LOGIN with the user name as initial response.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.send(format!("l2 AUTHENTICATE LOGIN {}\r\n", base64(USER.as_bytes())).as_bytes());
    let cont = c.read_line();
    assert!(
        cont.starts_with('+'),
        "password continuation after LOGIN with IR: {cont:?}"
    );
    c.send(format!("{}\r\n", base64(PASSWORD.as_bytes())).as_bytes());
    let r = c.read_until_tagged("l2", Vec::new());
    assert!(r.is_ok(), "{r:#?}");
    c.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    logs.push_str(&server.log_text());

    // Cancel with `*`: BAD, and the connection stays usable. Then an
    // authzid naming someone else: NO, still not logged in. Then the
    // mechanisms the user file cannot support.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.send(b"x1 AUTHENTICATE PLAIN\r\n");
    assert!(c.read_line().starts_with('+'));
    c.send(b"*\r\n");
    let r = c.read_until_tagged("x1", Vec::new());
    assert!(
        r.is_bad(),
        "cancelled AUTHENTICATE must be BAD (RFC 3501 6.2.2): {r:#?}"
    );
    c.send(b"x2 AUTHENTICATE LOGIN\r\n");
    assert!(c.read_line().starts_with('+'));
    c.send(b"*\r\n");
    let r = c.read_until_tagged("x2", Vec::new());
    assert!(r.is_bad(), "{r:#?}");
    let r = c.no(&format!(
        "AUTHENTICATE PLAIN {}",
        plain_ir("admin", USER, PASSWORD)
    ));
    assert!(!r.is_ok(), "{r:#?}");
    let r = c.cmd("SELECT INBOX");
    assert!(
        r.is_bad() || r.is_no(),
        "authzid != authcid must not log in: {r:#?}"
    );
    c.no("AUTHENTICATE CRAM-MD5");
    c.no("AUTHENTICATE X-NO-SUCH-MECHANISM");
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    let log = server.log_text();
    assert_eq!(
        log_lines_with(&log, ": LOGIN, user=").len(),
        1,
        "only the final LOGIN succeeds:\n{log}"
    );
    logs.push_str(&log);
    assert_no_secrets(&logs);
}

// ---------------------------------------------------------------------------
// 8. Login failures: delay, count, BYE
// ---------------------------------------------------------------------------

#[test]
fn login_failures_are_delayed_then_bye() {
    let (dir, conf, _) = setup(
        "failures",
        "MDIMAP_LOGIN_FAILURE_DELAY=1\nMDIMAP_MAX_LOGIN_FAILURES=2\n",
    );
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");

    // An unknown user and a wrong password look the same to the client.
    let start = Instant::now();
    let r = c.no(&format!("LOGIN nosuchuser {WRONG_PASSWORD}"));
    let first = start.elapsed();
    assert!(r.text().contains("[AUTHENTICATIONFAILED]"), "{r:#?}");
    assert!(
        first >= Duration::from_millis(900),
        "the NO came after {first:?}; MDIMAP_LOGIN_FAILURE_DELAY=1 asks for ~1 s"
    );

    let start = Instant::now();
    c.send(format!("f2 LOGIN {USER} {WRONG_PASSWORD}\r\n").as_bytes());
    let line = c.read_line();
    let second = start.elapsed();
    assert!(
        line.starts_with("f2 NO") && line.contains("[AUTHENTICATIONFAILED]"),
        "second failure: {line:?}"
    );
    assert!(
        second >= Duration::from_millis(900),
        "the second NO came after {second:?}"
    );
    let rest = c.read_to_eof(HANG_GUARD);
    assert!(
        rest.first().is_some_and(|l| l.starts_with("* BYE")),
        "after MDIMAP_MAX_LOGIN_FAILURES=2 failures: * BYE and close, got {rest:#?}"
    );
    assert!(server.wait_exit(HANG_GUARD).is_some(), "mdimapd must exit");
    let log = server.log_text();
    let failed = log_lines_with(&log, "LOGIN FAILED");
    assert_eq!(failed.len(), 2, "{log}");
    assert!(
        failed.iter().all(|l| l.contains("ip=[127.0.0.1]")),
        "{failed:#?}"
    );
    assert!(
        failed.iter().any(|l| l.contains("user=nosuchuser"))
            && failed.iter().any(|l| l.contains(&format!("user={USER}"))),
        "{failed:#?}"
    );
    assert!(!log.contains(": LOGIN, user="), "{log}");

    // AUTHENTICATE failures count and are delayed the same way.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let start = Instant::now();
    let r = c.no(&format!(
        "AUTHENTICATE PLAIN {}",
        plain_ir("", USER, WRONG_PASSWORD)
    ));
    assert!(r.text().contains("[AUTHENTICATIONFAILED]"), "{r:#?}");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "AUTHENTICATE NO after {:?}",
        start.elapsed()
    );
    c.send(
        format!(
            "f3 AUTHENTICATE PLAIN {}\r\n",
            plain_ir("", USER, WRONG_PASSWORD)
        )
        .as_bytes(),
    );
    let line = c.read_line();
    assert!(line.starts_with("f3 NO"), "{line:?}");
    assert_bye_and_close(&mut c, "two AUTHENTICATE failures");
    server.wait_exit(HANG_GUARD);
    assert_no_secrets(&format!("{log}{}", server.log_text()));
}

// ---------------------------------------------------------------------------
// 9. AUTHENTICATE EXTERNAL with a client certificate
// ---------------------------------------------------------------------------

#[test]
fn external_with_client_certificate() {
    let dir = TestDir::new("external");
    let (conf, _, _) = dir.write_userfile();
    let (_, cert_line) = install_cert(&dir, "a.test");
    let ca = make_ca("mdimap test CA");
    let ca_path = dir.join("ca.pem");
    fs::write(&ca_path, &ca.cert_pem).unwrap();
    append_conf(
        &conf,
        &format!(
            "{cert_line}TLS_VERIFYPEER=PEER\nTLS_TRUSTCERTS={}\nTLS_EXTERNAL=CN\nMDIMAP_LOGIN_FAILURE_DELAY=0\n",
            ca_path.display()
        ),
    );
    let user_cert = client_cert(&ca, USER);

    // With the certificate: EXTERNAL is offered and logs in.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    assert!(
        !has(&caps_of_greeting(&c.greeting), "AUTH=EXTERNAL"),
        "no EXTERNAL before TLS: {}",
        c.greeting
    );
    let mut t = starttls(
        &mut c,
        TlsOpts {
            client_cert: Some(&user_cert),
            ..Default::default()
        },
    );
    let caps = caps_of(&t.ok("CAPABILITY"));
    assert!(
        has(&caps, "AUTH=EXTERNAL"),
        "a verified client certificate must enable EXTERNAL: {caps:?}"
    );
    t.ok("AUTHENTICATE EXTERNAL =");
    t.ok("SELECT INBOX");
    t.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    let log = server.log_text();
    let login = log_lines_with(&log, &format!(": LOGIN, user={USER},"));
    assert_eq!(login.len(), 1, "{log}");
    assert!(login[0].contains("method=EXTERNAL"), "{log}");

    // With the certificate, over implicit TLS, EXTERNAL with the empty
    // response on a continuation, and an authzid naming someone else.
    let (mut server, sock) = spawn_direct_raw(&dir, &conf, &["--tls"], b"");
    let mut t = TlsClient::handshake(
        sock,
        TlsOpts {
            client_cert: Some(&user_cert),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", server.log_text()));
    let greeting = t.read_line();
    assert!(
        has(&caps_of_greeting(&greeting), "AUTH=EXTERNAL"),
        "{greeting}"
    );
    let r = t.cmd(&format!("AUTHENTICATE EXTERNAL {}", base64(b"someoneelse")));
    assert!(
        r.is_no(),
        "EXTERNAL for another user must be refused: {r:#?}"
    );
    t.send(b"e1 AUTHENTICATE EXTERNAL\r\n");
    let cont = t.read_line();
    assert!(cont.starts_with('+'), "{cont:?}");
    t.send(b"\r\n");
    let r = t.try_read_until_tagged("e1").unwrap();
    assert!(
        r.is_ok(),
        "EXTERNAL with an empty response on the continuation: {r:#?}"
    );
    t.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);

    // Without a certificate: no EXTERNAL, passwords still work.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let mut t = starttls(&mut c, TlsOpts::default());
    let caps = caps_of(&t.ok("CAPABILITY"));
    assert!(
        !has(&caps, "AUTH=EXTERNAL") && has(&caps, "AUTH=PLAIN"),
        "{caps:?}"
    );
    let r = t.cmd("AUTHENTICATE EXTERNAL =");
    assert!(
        r.is_no() || r.is_bad(),
        "EXTERNAL without a certificate: {r:#?}"
    );
    t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    t.ok("SELECT INBOX");
    t.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    assert!(
        server.log_text().contains("method=LOGIN"),
        "{}",
        server.log_text()
    );

    // A certificate for a user that does not exist: offered, but refused.
    let stranger = client_cert(&ca, "nosuchuser");
    let (_server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let mut t = starttls(
        &mut c,
        TlsOpts {
            client_cert: Some(&stranger),
            ..Default::default()
        },
    );
    let r = t.cmd("AUTHENTICATE EXTERNAL =");
    assert!(r.is_no(), "{r:#?}");
    let r = t.cmd("SELECT INBOX");
    assert!(r.is_bad() || r.is_no(), "{r:#?}");

    // A certificate not signed by TLS_TRUSTCERTS, for the same user, under the
    // same configuration that accepted `user_cert` above: the server refuses
    // it in the handshake, and says so both to the client (an `unknown_ca`
    // alert, RFC 8446 §6.2: the issuer is not one it trusts) and in its log.
    // A handshake failing for any other reason (a broken server certificate,
    // a protocol mismatch, a crash) gives another alert or none and fails here.
    let other_ca = make_ca("someone else's CA");
    let forged = client_cert(&other_ca, USER);
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let r = c.cmd("STARTTLS");
    assert!(r.is_ok(), "{r:#?}");
    let refusal = TlsClient::refused(
        c.stream().try_clone().unwrap(),
        TlsOpts {
            client_cert: Some(&forged),
            ..Default::default()
        },
    );
    assert_eq!(
        refusal,
        rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA),
        "the client must be told its certificate's issuer is unknown; log:\n{}",
        server.log_text()
    );
    assert!(
        server.wait_exit(HANG_GUARD).is_some(),
        "mdimapd went on after refusing the certificate; log:\n{}",
        server.log_text()
    );
    let refused_log = server.log_text();
    let refusals = log_lines_with(&refused_log, "STARTTLS failed, ip=[127.0.0.1]");
    assert!(
        refusals.len() == 1 && refusals[0].contains("invalid peer certificate: UnknownIssuer"),
        "the log must name the untrusted issuer as the reason:\n{refused_log}"
    );
    assert!(
        log_lines_with(&refused_log, ": LOGIN,").is_empty(),
        "{refused_log}"
    );
    assert_no_secrets(&log);
}

// ---------------------------------------------------------------------------
// 10. PROXY headers
// ---------------------------------------------------------------------------

#[test]
fn proxy_headers_from_trusted_and_untrusted_peers() {
    let extra = "MDIMAP_PROXY_TRUSTED=127.0.0.1/32\nMDIMAP_PLAINTEXT_LOGIN=yes\n";
    let (dir, conf, _) = setup("proxy-trusted", extra);
    let l = Listen::start(&conf, true, false);

    // Listener reads v1, then v2.
    let mut c = l.connect_with(&proxy_v1("198.51.100.7", 40007));
    assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("LOGOUT");
    let mut c = l.connect_with(&proxy_v2([198, 51, 100, 8], 40008));
    assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("LOGOUT");
    // Wait for the last line the checks below need: the log is read from a
    // pipe by another thread and may lag behind the client.
    let last = format!(": LOGIN, user={USER}, ip=[198.51.100.8]");
    assert!(l.wait_log(&last, HANG_GUARD), "{}", l.log_text());
    let log = l.log_text();
    for (ip, port) in [("198.51.100.7", "40007"), ("198.51.100.8", "40008")] {
        assert!(
            log.contains(&format!("Connection, ip=[{ip}], port=[{port}]")),
            "listener, {ip}:\n{log}"
        );
        assert!(
            log.contains(&format!(": LOGIN, user={USER}, ip=[{ip}]")),
            "listener, {ip}:\n{log}"
        );
    }
    // A trusted peer that sends no valid header is refused.
    let mut s = TcpStream::connect(("127.0.0.1", l.plain_port())).unwrap();
    s.write_all(b"a LOGIN x y\r\n").unwrap();
    let mut c = Client::new(s);
    let lines = c.read_to_eof(HANG_GUARD);
    assert!(
        !lines.iter().any(|l| l.starts_with("* OK")),
        "no session without a valid header: {lines:#?}"
    );

    // mdimapd reads the header itself (peer 127.0.0.1, trusted).
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], &proxy_v1("198.51.100.9", 40009));
    assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    let log9 = server.log_text();
    assert!(
        log9.contains("Connection, ip=[198.51.100.9], port=[40009]"),
        "{log9}"
    );
    assert!(
        log9.contains(&format!(": LOGIN, user={USER}, ip=[198.51.100.9]")),
        "{log9}"
    );
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], &proxy_v2([198, 51, 100, 10], 40010));
    assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("LOGOUT");
    server.wait_exit(HANG_GUARD);
    let log10 = server.log_text();
    assert!(
        log10.contains("Connection, ip=[198.51.100.10], port=[40010]"),
        "{log10}"
    );
    assert!(
        log10.contains(&format!(": LOGIN, user={USER}, ip=[198.51.100.10]")),
        "{log10}"
    );
    // Garbage from a trusted peer: no session.
    let (mut server, sock) = spawn_direct_raw(&dir, &conf, &[], b"GET / HTTP/1.0\r\n\r\n");
    let mut c = Client::new(sock);
    let lines = c.read_to_eof(HANG_GUARD);
    assert!(
        !lines.iter().any(|l| l.starts_with("* OK")),
        "mdimapd served a trusted peer without a header: {lines:#?}"
    );
    server.wait_exit(HANG_GUARD);

    // MDIMAP_PROXY_TRUSTED empty: a header is an attack. Listener first.
    let (dir, conf, _) = setup("proxy-untrusted", "MDIMAP_PROXY_TRUSTED=\n");
    let l2 = Listen::start(&conf, true, false);
    let mut c = l2.connect_with(&proxy_v1("198.51.100.11", 40011));
    assert_bye_and_close(&mut c, "v1 header from an untrusted peer (listener)");
    let mut c = l2.connect_with(&proxy_v2([198, 51, 100, 12], 40012));
    assert_bye_and_close(&mut c, "v2 header from an untrusted peer (listener)");
    // Then mdimapd directly.
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], &proxy_v1("198.51.100.13", 40013));
    assert_bye_and_close(&mut c, "v1 header from an untrusted peer (mdimapd)");
    server.wait_exit(HANG_GUARD);
    let (mut server2, mut c) = spawn_direct(&dir, &conf, &[], &proxy_v2([198, 51, 100, 14], 40014));
    assert_bye_and_close(&mut c, "v2 header from an untrusted peer (mdimapd)");
    server2.wait_exit(HANG_GUARD);
    thread::sleep(Duration::from_millis(200));
    let untrusted_logs = format!(
        "{}{}{}",
        l2.log_text(),
        server.log_text(),
        server2.log_text()
    );
    assert!(
        !untrusted_logs.contains("ip=[198.51.100."),
        "an untrusted header must not set the address:\n{untrusted_logs}"
    );
    assert!(
        untrusted_logs.contains("Connection, ip=[127.0.0.1]"),
        "{untrusted_logs}"
    );
    assert_no_secrets(&format!(
        "{}{log}{log9}{log10}{untrusted_logs}",
        l.log_text()
    ));
}

// ---------------------------------------------------------------------------
// 11. Listener limits and signals
// ---------------------------------------------------------------------------

/// A connection the listener must refuse with `* BYE [LIMIT]`.
fn expect_limit(port: u16, before: &[u8], what: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    if !before.is_empty() {
        s.write_all(before).unwrap();
    }
    let mut c = Client::new(s);
    let lines = c.read_to_eof(HANG_GUARD);
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("* BYE [LIMIT]")),
        "{what}: expected `* BYE [LIMIT]` then close, got {lines:#?}"
    );
}

/// Connects until the listener accepts (a session slot may take a moment
/// to be freed after a client leaves).
fn connect_eventually(l: &Listen, before: &[u8], what: &str) -> Client {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let mut s = TcpStream::connect(("127.0.0.1", l.plain_port())).unwrap();
        if !before.is_empty() {
            s.write_all(before).unwrap();
        }
        let mut c = Client::new(s);
        match c.read_line_within(READ_TIMEOUT) {
            Read1::Line(g) if g.starts_with("* OK") => {
                c.greeting = g;
                return c;
            }
            other => assert!(
                Instant::now() < deadline,
                "{what}: still refused after {HANG_GUARD:?}: {other:?}\n{}",
                l.log_text()
            ),
        }
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn listener_maxperip() {
    let (_dir, conf, _) = setup("maxperip", "MAXPERIP=2\nMAXDAEMONS=40\n");
    let l = Listen::start(&conf, true, false);
    let mut a = l.connect();
    let mut b = l.connect();
    assert!(a.greeting.starts_with("* OK") && b.greeting.starts_with("* OK"));
    expect_limit(
        l.plain_port(),
        b"",
        "third connection from 127.0.0.1 with MAXPERIP=2",
    );
    a.ok("NOOP");
    b.ok("NOOP");
    // A freed slot is reused.
    a.ok("LOGOUT");
    let mut c = connect_eventually(&l, b"", "after one of two sessions left");
    c.ok("NOOP");
    expect_limit(l.plain_port(), b"", "again two sessions from 127.0.0.1");
}

#[test]
fn listener_maxdaemons() {
    let (_dir, conf, _) = setup("maxdaemons", "MAXDAEMONS=3\nMAXPERIP=10\n");
    let l = Listen::start(&conf, true, false);
    let mut open: Vec<Client> = (0..3).map(|_| l.connect()).collect();
    for c in &open {
        assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    }
    expect_limit(l.plain_port(), b"", "fourth connection with MAXDAEMONS=3");
    for c in &mut open {
        c.ok("NOOP");
    }
}

#[test]
fn listener_maxperip_counts_proxied_sources() {
    let (_dir, conf, _) = setup(
        "maxperip-proxy",
        "MAXPERIP=2\nMAXDAEMONS=40\nMDIMAP_PROXY_TRUSTED=127.0.0.1/32\n",
    );
    let l = Listen::start(&conf, true, false);
    let mut a = l.connect_with(&proxy_v1("198.51.100.1", 41001));
    let mut b = l.connect_with(&proxy_v2([198, 51, 100, 1], 41002));
    assert!(a.greeting.starts_with("* OK") && b.greeting.starts_with("* OK"));
    expect_limit(
        l.plain_port(),
        &proxy_v1("198.51.100.1", 41003),
        "third from the claimed 198.51.100.1",
    );
    let mut d = l.connect_with(&proxy_v1("198.51.100.2", 41004));
    assert!(
        d.greeting.starts_with("* OK"),
        "another claimed source must be accepted: {}",
        d.greeting
    );
    for c in [&mut a, &mut b, &mut d] {
        c.ok("NOOP");
    }
}

#[test]
fn listener_sighup_rereads_limits() {
    let (_dir, conf, _) = setup("sighup", "MAXPERIP=2\nMAXDAEMONS=40\n");
    let l = Listen::start(&conf, true, false);
    let mut a = l.connect();
    let mut b = l.connect();
    a.ok(&format!("LOGIN {USER} {PASSWORD}"));
    a.ok("SELECT INBOX");
    expect_limit(l.plain_port(), b"", "MAXPERIP=2 before SIGHUP");

    let text = fs::read_to_string(&conf)
        .unwrap()
        .replace("MAXPERIP=2", "MAXPERIP=5");
    fs::write(&conf, text).unwrap();
    signal(l.pid(), libc::SIGHUP);
    let mut more = vec![connect_eventually(
        &l,
        b"",
        "after SIGHUP raised MAXPERIP to 5",
    )];
    more.push(l.connect());
    more.push(l.connect());
    for c in &more {
        assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    }
    expect_limit(l.plain_port(), b"", "MAXPERIP=5 after SIGHUP, five open");
    // The sessions from before the reload are untouched.
    a.ok("NOOP");
    a.ok("SELECT INBOX");
    b.ok("NOOP");
    for c in &mut more {
        c.ok("NOOP");
    }
    a.ok("LOGOUT");
    assert_no_secrets(&l.log_text());
}

#[test]
fn listener_sigterm_lets_sessions_finish() {
    let (_dir, conf, _) = setup("sigterm", "");
    let mut l = Listen::start(&conf, true, false);
    let port = l.plain_port();
    let mut a = l.connect();
    a.ok(&format!("LOGIN {USER} {PASSWORD}"));
    let mut b = l.connect();
    signal(l.pid(), libc::SIGTERM);
    assert!(
        l.exited_within(HANG_GUARD),
        "mdimap-listen must exit on SIGTERM"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing may accept on the port after SIGTERM"
    );
    a.ok("NOOP");
    a.ok("SELECT INBOX");
    b.ok("NOOP");
    a.ok("LOGOUT");
    b.ok("LOGOUT");
    assert_no_secrets(&l.log_text());
}

// ---------------------------------------------------------------------------
// 12. Login timeout
// ---------------------------------------------------------------------------

#[test]
fn login_timeout_says_bye() {
    let (dir, conf, _) = setup("login-timeout", "MDIMAP_LOGIN_TIMEOUT=2\n");
    let start = Instant::now();
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let line = match c.read_line_within(TIMER_GUARD) {
        Read1::Line(l) => l,
        other => panic!("expected * BYE with MDIMAP_LOGIN_TIMEOUT=2, got {other:?}"),
    };
    let waited = start.elapsed();
    assert!(line.starts_with("* BYE"), "{line:?}");
    assert!(
        waited >= Duration::from_millis(1500),
        "BYE after {waited:?}, before the 2 s login timeout"
    );
    assert!(
        matches!(c.read_line_within(HANG_GUARD), Read1::Eof),
        "the connection must close after BYE"
    );
    assert!(server.wait_exit(HANG_GUARD).is_some());
}

// ---------------------------------------------------------------------------
// 13. Privilege drop, limits, umask
// ---------------------------------------------------------------------------

fn require_root(what: &str) {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "{what} needs root (CI runs as root): mdimapd must start as root to show the drop to the mail user. Run the tests as root."
    );
}

/// The value of `Field:` in /proc/<pid>/status.
fn proc_status(pid: i32, field: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[test]
fn session_runs_as_the_mail_user() {
    require_root("the privilege-drop test");
    let (dir, conf, maildir) = setup("privdrop", "MDIMAP_LIMIT_FILES=64\n");
    assert_eq!(
        mail_ids(),
        (65534, 65534),
        "the account runs as nobody/nogroup"
    );
    assert_eq!(
        fs::metadata(&maildir).unwrap().uid(),
        65534,
        "the maildir belongs to the mail user"
    );
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let pid = server.pid();
    // Before login: still root, so it can read the key and become anyone.
    assert_eq!(proc_status(pid, "Uid").split_whitespace().next(), Some("0"));
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok("SELECT INBOX");
    for field in ["Uid", "Gid"] {
        let ids: Vec<String> = proc_status(pid, field)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert_eq!(
            ids,
            vec!["65534"; 4],
            "{field} (real, effective, saved, fs) after login"
        );
    }
    let groups: Vec<String> = proc_status(pid, "Groups")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(groups, vec!["65534"], "a virtual user keeps its gid only");
    for cap in ["CapEff", "CapPrm"] {
        let value = u64::from_str_radix(&proc_status(pid, cap), 16).unwrap();
        assert_eq!(value, 0, "{cap} must be empty after the drop");
    }
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let files_line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let words: Vec<&str> = files_line.split_whitespace().collect();
    assert_eq!(
        &words[3..5],
        ["64", "64"],
        "MDIMAP_LIMIT_FILES=64 (soft and hard): {files_line}"
    );
    // The session works under those limits and writes as the user.
    c.ok(&format!(
        "APPEND INBOX {}",
        common::lit(&common::crlf(&common::message("hello", "body")))
    ));
    let new = files(&maildir.join("new"));
    let cur = files(&maildir.join("cur"));
    let stored: Vec<PathBuf> = new
        .iter()
        .map(|n| maildir.join("new").join(n))
        .chain(cur.iter().map(|n| maildir.join("cur").join(n)))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        fs::metadata(&stored[0]).unwrap().uid(),
        65534,
        "the appended message belongs to the mail user"
    );
    c.ok("LOGOUT");
    assert_no_secrets(&server.log_text());
}

#[test]
fn uid_zero_user_is_refused() {
    let dir = TestDir::new("uid0");
    let (conf, users, _) = dir.write_userfile();
    let home = dir.join("roothome");
    common::make_maildir(&home.join("Maildir"));
    fs::write(
        &users,
        format!("rootuser:{PASSWORD_HASH}:0:0:{}:::\n", home.display()),
    )
    .unwrap();
    let before = dir.tree();
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.send(format!("r1 LOGIN rootuser {PASSWORD}\r\n").as_bytes());
    let line = c.read_line();
    assert!(
        line.starts_with("r1 NO"),
        "a uid-0 account must be refused: {line:?}"
    );
    // Nothing served: the connection ends, or at least nothing works.
    match c.read_line_within(Duration::from_secs(5)) {
        Read1::Eof => {}
        Read1::Line(l) if l.starts_with("* BYE") => {}
        Read1::Line(l) => panic!("unexpected line after the refusal: {l:?}"),
        Read1::Timeout => {
            let r = c.cmd("SELECT INBOX");
            assert!(r.is_bad() || r.is_no(), "{r:#?}");
        }
    }
    server.wait_exit(HANG_GUARD);
    let log = server.log_text();
    assert!(!log.contains(": LOGIN, user=rootuser"), "{log}");
    let after: Vec<String> = dir
        .tree()
        .into_iter()
        .filter(|p| !p.starts_with("mdimapd-"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|p| !p.starts_with("mdimapd-"))
        .collect();
    assert_eq!(
        before, after,
        "nothing may be created for a refused uid-0 account"
    );
    assert_no_secrets(&log);
}

fn appended_mode(umask: &str) -> u32 {
    let (dir, conf, maildir) = setup(&format!("umask-{umask}"), &format!("IMAP_UMASK={umask}\n"));
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    c.ok(&format!(
        "APPEND INBOX (\\Seen) {}",
        common::lit(&common::crlf(&common::message("umask", "body")))
    ));
    c.ok("LOGOUT");
    drop(server);
    let mut stored: Vec<PathBuf> = Vec::new();
    for sub in ["new", "cur"] {
        stored.extend(
            files(&maildir.join(sub))
                .into_iter()
                .map(|n| maildir.join(sub).join(n)),
        );
    }
    assert_eq!(stored.len(), 1, "{stored:?}");
    fs::metadata(&stored[0]).unwrap().mode() & 0o777
}

#[test]
fn umask_applies_to_appended_messages() {
    assert_eq!(appended_mode("077"), 0o600, "IMAP_UMASK=077");
    assert_eq!(appended_mode("022"), 0o644, "IMAP_UMASK=022");
}

// ---------------------------------------------------------------------------
// 14. No password in any log
// ---------------------------------------------------------------------------

#[test]
fn no_password_in_any_log() {
    let dir = TestDir::new("nosecrets");
    let (conf, _, _) = dir.write_userfile();
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(
        &conf,
        &format!("{cert_line}MDIMAP_LOGIN_FAILURE_DELAY=0\nMDIMAP_MAX_LOGIN_FAILURES=10\n"),
    );
    let l = Listen::start(&conf, true, true);

    let mut c = l.connect();
    c.no(&format!("LOGIN {USER} {WRONG_PASSWORD}"));
    c.no(&format!("LOGIN {USER} \"{WRONG_PASSWORD}\""));
    c.no(&format!(
        "AUTHENTICATE PLAIN {}",
        plain_ir("", USER, WRONG_PASSWORD)
    ));
    c.send(b"w1 AUTHENTICATE LOGIN\r\n");
    assert!(c.read_line().starts_with('+'));
    c.send(format!("{}\r\n", base64(USER.as_bytes())).as_bytes());
    assert!(c.read_line().starts_with('+'));
    c.send(format!("{}\r\n", base64(WRONG_PASSWORD.as_bytes())).as_bytes());
    let r = c.read_until_tagged("w1", Vec::new());
    assert!(r.is_no(), "{r:#?}");
    c.ok(&format!("LOGIN {USER} {}", common::lit(PASSWORD)));
    c.ok("LOGOUT");

    let mut c = l.connect();
    c.ok(&format!(
        "AUTHENTICATE PLAIN {}",
        plain_ir("", USER, PASSWORD)
    ));
    c.ok("LOGOUT");

    let mut c = l.connect();
    let mut t = starttls(&mut c, TlsOpts::default());
    t.no(&format!("LOGIN {USER} {WRONG_PASSWORD}"));
    t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    t.ok("LOGOUT");

    let (mut t, _) = TlsClient::connect_implicit(l.tls_port(), TlsOpts::default());
    t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    t.ok("LOGOUT");

    assert!(
        common::wait_for(HANG_GUARD, || l.log_text().matches("LOGOUT, user=").count()
            >= 4),
        "{}",
        l.log_text()
    );
    let log = l.log_text();
    assert!(
        log_lines_with(&log, "LOGIN FAILED").len() >= 5,
        "every failure is logged:\n{log}"
    );
    assert_no_secrets(&log);
}

impl TlsClient {
    fn no(&mut self, text: &str) -> Response {
        let r = self.cmd(text);
        assert!(r.is_no(), "expected NO for {text:?} inside TLS, got {r:#?}");
        r
    }
}

/// Courier's account options: `disableimap=1` closes IMAP for an account
/// whose password is right; `disableinsecureimap=1` only without TLS.
#[test]
fn account_options_close_imap() {
    let (dir, conf, _) = setup("account-options", "MDIMAP_PLAINTEXT_LOGIN=yes\n");
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &cert_line);
    let users = dir.join("users");
    let line = fs::read_to_string(&users).unwrap();
    let set_options = |options: &str| {
        let mut fields: Vec<&str> = line.trim_end().split(':').collect();
        fields[7] = options;
        fs::write(&users, format!("{}\n", fields.join(":"))).unwrap();
    };

    set_options("disableimap=1");
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let r = c.no(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.tagged.contains("[CONTACTADMIN]"), "{r:#?}");
    let r = c.cmd("SELECT INBOX");
    assert!(r.is_bad(), "still not logged in: {r:#?}");
    drop(c);
    let log = server.log_text();
    assert!(
        log.contains(&format!("LOGIN REFUSED, method=LOGIN, user={USER}, ip=[")),
        "{log}"
    );
    assert!(!log.contains(&format!(": LOGIN, user={USER}")), "{log}");

    set_options("disableinsecureimap=1");
    let (_server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let r = c.no(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.tagged.contains("[PRIVACYREQUIRED]"), "{r:#?}");
    let mut t = starttls(&mut c, TlsOpts::default());
    t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    t.ok("SELECT INBOX");
    t.ok("LOGOUT");
}

/// The autologout timer (RFC 3501 §5.4; 30 minutes by default, shortened
/// here) ends a silent authenticated session with BYE, in IDLE too, and the
/// log says TIMEOUT.
#[test]
fn autologout_ends_silent_sessions() {
    let (dir, conf, _) = setup("autologout", "MDIMAP_AUTOLOGOUT=2\n");
    for idle in [false, true] {
        let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
        c.ok(&format!("LOGIN {USER} {PASSWORD}"));
        c.ok("SELECT INBOX");
        if idle {
            c.send(b"i1 IDLE\r\n");
            assert!(c.read_line().starts_with('+'));
        }
        let start = Instant::now();
        let line = match c.read_line_within(TIMER_GUARD) {
            Read1::Line(l) => l,
            other => panic!("expected * BYE (idle={idle}), got {other:?}"),
        };
        assert!(line.starts_with("* BYE"), "idle={idle}: {line:?}");
        assert!(
            start.elapsed() >= Duration::from_millis(1500),
            "idle={idle}: BYE too early"
        );
        assert!(
            server.wait_exit(HANG_GUARD).is_some(),
            "idle={idle}: the session must end"
        );
        assert!(
            server.log_text().contains(&format!("TIMEOUT, user={USER}")),
            "{}",
            server.log_text()
        );
    }
}

/// A client that sends half a command (or announces a literal and sends
/// only part of it) and goes silent is disconnected by the timers too,
/// before login and after.
#[test]
fn half_sent_commands_time_out() {
    // Before login the login timeout bounds the whole login; after it, a
    // command that has begun must keep coming (MDIMAP_IO_TIMEOUT).
    let (dir, conf, _) = setup(
        "half-sent",
        "MDIMAP_AUTOLOGOUT=2\nMDIMAP_LOGIN_TIMEOUT=2\nMDIMAP_IO_TIMEOUT=2\n",
    );
    for (login, partial) in [
        (false, &b"a LOG"[..]),
        (true, &b"a NOO"[..]),
        (true, &b"a APPEND INBOX {100+}\r\n0123456789"[..]),
    ] {
        let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
        if login {
            c.ok(&format!("LOGIN {USER} {PASSWORD}"));
        }
        c.send(partial);
        let start = Instant::now();
        let mut saw_bye = false;
        loop {
            match c.read_line_within(TIMER_GUARD) {
                Read1::Line(l) if l.starts_with("* BYE") => saw_bye = true,
                Read1::Line(_) => {}
                Read1::Eof => break,
                Read1::Timeout => {
                    panic!("still connected {TIMER_GUARD:?} after {partial:?} (login={login})")
                }
            }
        }
        assert!(saw_bye, "{partial:?}: BYE expected before the close");
        assert!(
            start.elapsed() >= Duration::from_millis(1500),
            "{partial:?}: closed too early"
        );
        assert!(server.wait_exit(HANG_GUARD).is_some());
        if login {
            assert!(
                server.log_text().contains(&format!("TIMEOUT, user={USER}")),
                "{}",
                server.log_text()
            );
        }
    }
}

/// Literals over MDIMAP_MAX_LITERAL: a synchronizing one is refused with
/// NO [TOOBIG] before the client sends it; a non-synchronizing one (already
/// on the wire) is read, dropped and answered BAD [TOOBIG] (RFC 7888 §4);
/// the session goes on either way.
#[test]
fn oversized_literals_are_refused() {
    let (dir, conf, maildir) = setup("big-literal", "MDIMAP_MAX_LITERAL=1000\n");
    let (_server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    // RFC 7889: the limit is advertised, before login and after it.
    let r = c.ok("CAPABILITY");
    assert!(r.contains(" APPENDLIMIT=1000"), "{r:#?}");
    let r = c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.tagged.contains(" APPENDLIMIT=1000"), "{r:#?}");
    c.send(b"s1 APPEND INBOX {2000}\r\n");
    let line = c.read_line();
    assert!(line.starts_with("s1 NO [TOOBIG]"), "{line:?}");
    let mut big = b"n1 APPEND INBOX {2000+}\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 2000));
    big.extend_from_slice(b"\r\n");
    c.send(&big);
    let line = c.read_line();
    assert!(line.starts_with("n1 BAD [TOOBIG]"), "{line:?}");
    c.ok("NOOP");
    c.ok(&format!(
        "APPEND INBOX {}",
        common::lit("Subject: small\r\n\r\nfits\r\n")
    ));
    assert_eq!(
        files(&maildir.join("cur")).len(),
        1,
        "only the small message is stored"
    );
}

// ---------------------------------------------------------------------------
// 15. Listener hardening (issue 6): PROXY headers read beside the accept
// loop, MAXPERIP per IPv6 /64, and what mdimapd inherits
// ---------------------------------------------------------------------------

/// A PROXY v1 header for a TCP over IPv6 connection from `source`.
fn proxy_v1_tcp6(source: &str, sport: u16) -> Vec<u8> {
    format!("PROXY TCP6 {source} 2001:db8:ffff::1 {sport} 143\r\n").into_bytes()
}

/// Whether the server has neither closed `s` nor sent anything on it: a
/// non-blocking read finds nothing to read and no end of file.
fn still_open_and_silent(s: &TcpStream) -> Result<(), String> {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let r = (&*s).read(&mut byte);
    s.set_nonblocking(false).unwrap();
    match r {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
        Ok(0) => Err("closed by the server".to_string()),
        Ok(_) => Err(format!("the server sent {:?}", byte[0] as char)),
        Err(e) => Err(format!("{e}")),
    }
}

/// Five connections from a trusted proxy that never send their header must
/// not hold up a sixth that does: the sixth is greeted while the five are
/// still open (the listener has given up on none of them), so it was not
/// queued behind their header timeouts. The timeout is made far longer than
/// the test, so "still open" can only mean "not waited for in turn".
#[test]
fn listener_serves_behind_silent_proxy_connections() {
    let (_dir, conf, _) = setup(
        "proxy-pending",
        "MDIMAP_PROXY_TRUSTED=127.0.0.1/32\nMAXDAEMONS=40\nMAXPERIP=40\n",
    );
    let l = Listen::start_with(&conf, true, false, |cmd| {
        cmd.args(["--proxy-timeout", "600"]);
    });
    let silent: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", l.plain_port())).unwrap())
        .collect();
    let mut s = TcpStream::connect(("127.0.0.1", l.plain_port())).unwrap();
    s.write_all(&proxy_v1("198.51.100.30", 43000)).unwrap();
    let mut c = Client::new(s);
    match c.read_line_within(Duration::from_secs(60)) {
        Read1::Line(g) if g.starts_with("* OK") => c.greeting = g,
        other => panic!(
            "no greeting for a client behind five silent proxy connections: {other:?}\n{}",
            l.log_text()
        ),
    }
    for (i, s) in silent.iter().enumerate() {
        if let Err(e) = still_open_and_silent(s) {
            panic!(
                "silent connection {i}: {e} before the sixth was greeted\n{}",
                l.log_text()
            );
        }
    }
    c.ok("NOOP");
    assert!(
        l.wait_log(
            "Connection, ip=[198.51.100.30], port=[43000]",
            Duration::from_secs(5)
        ),
        "the session must be logged with the client's address from the header:\n{}",
        l.log_text()
    );
    drop(silent);
}

/// Connections waiting for their PROXY header take MAXDAEMONS slots, so a
/// trusted proxy that opens connections and sends nothing cannot make the
/// listener hold an unbounded number of them; a slot is freed when such a
/// connection goes away.
#[test]
fn listener_counts_pending_proxy_headers_against_maxdaemons() {
    let (_dir, conf, _) = setup(
        "proxy-pending-limit",
        "MDIMAP_PROXY_TRUSTED=127.0.0.1/32\nMAXDAEMONS=3\nMAXPERIP=40\n",
    );
    let l = Listen::start_with(&conf, true, false, |cmd| {
        cmd.args(["--proxy-timeout", "600"]);
    });
    let mut silent: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", l.plain_port())).unwrap())
        .collect();
    // Nothing sent: the refusal comes before any header, and no unread bytes
    // turn the close into a reset.
    expect_limit(
        l.plain_port(),
        b"",
        "a fourth proxy connection with three headers pending and MAXDAEMONS=3",
    );
    assert!(
        l.wait_log("MAXDAEMONS (3) reached", Duration::from_secs(5)),
        "{}",
        l.log_text()
    );
    for (i, s) in silent.iter().enumerate() {
        if let Err(e) = still_open_and_silent(s) {
            panic!("pending connection {i}: {e}\n{}", l.log_text());
        }
    }
    drop(silent.pop());
    let mut c = connect_eventually(
        &l,
        &proxy_v1("198.51.100.31", 43001),
        "after one pending proxy connection went away",
    );
    c.ok("NOOP");
}

/// MAXPERIP counts an IPv6 client by its /64 (one host or home network
/// commonly has all of it) and an IPv4-mapped IPv6 address as the IPv4
/// address; the addresses come through trusted PROXY headers, since the
/// test can only connect from 127.0.0.1 and ::1.
#[test]
fn listener_maxperip_counts_ipv6_per_64() {
    let (_dir, conf, _) = setup(
        "maxperip-ipv6",
        "MDIMAP_PROXY_TRUSTED=127.0.0.1/32\nMAXDAEMONS=40\nMAXPERIP=1\n",
    );
    let l = Listen::start(&conf, true, false);
    let mut a = l.connect_with(&proxy_v1_tcp6("2001:db8::1", 44001));
    assert!(a.greeting.starts_with("* OK"), "{}", a.greeting);
    expect_limit(
        l.plain_port(),
        &proxy_v1_tcp6("2001:db8::2", 44002),
        "a second address in 2001:db8::/64 with MAXPERIP=1",
    );
    let mut b = l.connect_with(&proxy_v1_tcp6("2001:db8:0:1::1", 44003));
    assert!(
        b.greeting.starts_with("* OK"),
        "an address in another /64 must be served: {}",
        b.greeting
    );
    let mut d = l.connect_with(&proxy_v1_tcp6("::ffff:198.51.100.40", 44004));
    assert!(d.greeting.starts_with("* OK"), "{}", d.greeting);
    expect_limit(
        l.plain_port(),
        &proxy_v1("198.51.100.40", 44005),
        "198.51.100.40 after ::ffff:198.51.100.40 with MAXPERIP=1",
    );
    let mut e = l.connect_with(&proxy_v1("198.51.100.41", 44006));
    assert!(e.greeting.starts_with("* OK"), "{}", e.greeting);
    for c in [&mut a, &mut b, &mut d, &mut e] {
        c.ok("NOOP");
    }
    assert!(
        l.wait_log(
            "MAXPERIP (1) reached; refused ip=[2001:db8::2]",
            Duration::from_secs(5)
        ),
        "{}",
        l.log_text()
    );
}

/// The descriptor number the listener inherits in
/// `listener_execs_mdimapd_with_a_clean_slate`.
const LEAKED_FD: i32 = 5;

/// mdimapd is exec'd with descriptors 0 and 1 (the connection) and 2 (the
/// listener's stderr) only, whatever the listener itself inherited, and with
/// the documented environment only.
#[test]
fn listener_execs_mdimapd_with_a_clean_slate() {
    use std::collections::BTreeSet;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    let (dir, conf, _) = setup("exec-hygiene", "");
    let leaked_path = dir.join("leaked-descriptor");
    let leaked = fs::File::create(&leaked_path).unwrap();
    let leaked_raw = leaked.as_raw_fd();
    let l = Listen::start_with(&conf, true, false, move |cmd| {
        cmd.env("LEAKED_SECRET", "1").env("TZ", "UTC");
        // SAFETY: only dup2 and fcntl, which are async-signal-safe, between
        // fork and exec. Both leave LEAKED_FD without close-on-exec, as a
        // descriptor handed down by a careless parent would be.
        unsafe {
            cmd.pre_exec(move || {
                let r = if leaked_raw == LEAKED_FD {
                    libc::fcntl(LEAKED_FD, libc::F_SETFD, 0)
                } else {
                    libc::dup2(leaked_raw, LEAKED_FD)
                };
                if r == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    drop(leaked);
    let link = |pid: i32, fd: &str| fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok();
    // The premise: the listener really holds the descriptor.
    assert_eq!(
        link(l.pid(), &LEAKED_FD.to_string()),
        Some(leaked_path.clone()),
        "the listener must have inherited descriptor {LEAKED_FD}"
    );
    let mut c = l.connect();
    assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    // The greeting came from mdimapd, so it exists, and before login it is
    // the listener's only child. Waiting for the first command it holds no
    // descriptor it was handed: it logs to stderr (--log-stderr, no syslog
    // socket), has read its configuration and closed it, and has no
    // certificate to keep open. Besides 0, 1 and 2 it has only the two
    // sockets it made for its login process (the channel, and the relay's
    // end for TLS); the login process has their other ends.
    let children = common::children_of(l.pid());
    let [session] = children.as_slice() else {
        panic!("expected one mdimapd under the listener, found {children:?}");
    };
    let session = *session;
    assert_eq!(common::assert_login_process_confined(l.pid()), session);
    let login_process = common::children_of(session);
    let [login_process] = login_process.as_slice() else {
        panic!("expected one login process under mdimapd, found {login_process:?}");
    };
    for pid in [session, *login_process] {
        let fds: BTreeSet<String> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let described: Vec<String> = fds
            .iter()
            .map(|fd| format!("{fd} -> {:?}", link(pid, fd)))
            .collect();
        assert_eq!(
            fds.len(),
            5,
            "mdimapd's descriptors before login: {described:#?}"
        );
        for fd in ["0", "1", "2"] {
            assert!(fds.contains(fd), "{described:#?}");
        }
        for fd in fds.iter().filter(|fd| fd.parse::<i32>().unwrap() > 2) {
            let target = link(pid, fd).unwrap();
            assert!(
                target.to_string_lossy().starts_with("socket:"),
                "fd {fd} of {pid} is {target:?}, not a socket mdimapd made: {described:#?}"
            );
        }
    }
    let socket = link(session, "0").unwrap();
    assert!(
        socket.to_string_lossy().starts_with("socket:"),
        "fd 0: {socket:?}"
    );
    assert_eq!(
        link(session, "1"),
        Some(socket),
        "fd 1 is the connection too"
    );
    assert_eq!(
        link(session, "2"),
        link(l.pid(), "2"),
        "fd 2 is the listener's stderr"
    );
    let env = common::environ_of(session);
    let names: BTreeSet<&str> = env
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| v.split('=').next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "PATH",
            "TZ",
            "PROTO",
            "TCPREMOTEIP",
            "TCPREMOTEPORT",
            "TCPLOCALIP",
            "TCPLOCALPORT",
        ]),
        "mdimapd's environment: {env:#?}"
    );
    assert!(env.contains(&"PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string()));
    assert!(env.contains(&"TZ=UTC".to_string()));
    assert!(env.contains(&"TCPREMOTEIP=127.0.0.1".to_string()));
    c.ok("NOOP");
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    common::assert_session_dropped(session);
}

// ---------------------------------------------------------------------------
// Descriptors after STARTTLS
// ---------------------------------------------------------------------------

/// The socket's identity (`socket:[inode]`) behind a descriptor of `pid`.
fn fd_target(pid: i32, fd: i32) -> String {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("(closed: {e})"))
}

/// STARTTLS used to dup fds 0 and 1 and close the originals, so the next
/// open(2) — a message file — got fd 0, and anything written to fd 1 could
/// land in mail. After STARTTLS, login and a FETCH that opens a message,
/// fds 0 and 1 are one socket — the login process's relay of the TLS
/// plaintext; the session holds no descriptor of the client's TCP socket,
/// which only the relay has — and nothing but the folder's directories is
/// open.
#[test]
fn standard_descriptors_stay_the_connection_after_starttls() {
    let (dir, conf, maildir) = setup("starttls-fds", "");
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &cert_line);
    common::put_cur(&maildir, &common::message("hello", "body"), "S");
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let pid = server.pid();
    let socket = fd_target(pid, 0);
    assert!(socket.starts_with("socket:["), "{socket}");
    let mut t = starttls(&mut c, TlsOpts::default());
    t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    t.ok("SELECT INBOX");
    let r = t.ok("FETCH 1 BODY[]");
    assert!(r.contains("body"), "{r:#?}");
    let relayed = fd_target(pid, 0);
    assert!(
        relayed.starts_with("socket:[") && relayed != socket,
        "fd 0 after STARTTLS: {relayed}"
    );
    assert_eq!(fd_target(pid, 1), relayed, "fd 1 after STARTTLS");
    let relays = common::children_of(pid);
    let [relay] = relays.as_slice() else {
        panic!("expected the TLS relay under the session, found {relays:?}");
    };
    assert_eq!(
        fd_target(*relay, 0),
        socket,
        "the relay holds the client's socket"
    );
    assert_eq!(
        fd_target(*relay, 1),
        socket,
        "the relay holds the client's socket"
    );
    // Beyond 0-2, only what the session opened itself: the selected
    // folder's directories, held for its message operations, and the
    // unnamed file in its tmp/ where the folder index gathers what the
    // session learnt until the index is next written.
    let spill = format!("{}/tmp/#", maildir.display());
    for e in fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let e = e.unwrap();
        let fd: i32 = e.file_name().to_str().unwrap().parse().unwrap();
        if fd > 2 {
            let target = fd_target(pid, fd);
            let directory = target.starts_with(maildir.to_str().unwrap())
                && fs::metadata(&target).is_ok_and(|m| m.is_dir());
            let unnamed = target.starts_with(&spill) && target.ends_with(" (deleted)");
            assert!(directory || unnamed, "fd {fd} is {target}");
        }
    }
    t.ok("LOGOUT");
}

/// COMPRESS=DEFLATE over STARTTLS (RFC 4978 §3: deflate under the TLS
/// layer's plaintext): the compressed stream runs inside TLS both ways,
/// IDLE included.
#[test]
fn compress_inside_starttls() {
    let dir = TestDir::new("compress-tls");
    let (conf, _, maildir) = dir.write_userfile();
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &cert_line);
    for n in 0..5 {
        common::put_cur(&maildir, &common::message(&format!("m{n}"), "hello"), "");
    }
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = mail_ids();
        common::chown_tree(&dir.join("home"), uid, gid);
    }
    let (mut server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let mut t = starttls(&mut c, TlsOpts::default());
    let r = t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.tagged.contains("COMPRESS=DEFLATE"), "{r:#?}");
    t.ok("COMPRESS DEFLATE");
    assert!(
        t.buf.is_empty(),
        "nothing may follow COMPRESS's OK in clear"
    );
    let mut z = DeflateClient::over(Box::new(t.stream));
    let r = z.cmd("z1", "SELECT INBOX");
    assert!(r.contains("* 5 EXISTS") && r.contains("z1 OK"), "{r}");
    let r = z.cmd("z2", "FETCH 1:5 (UID BODY.PEEK[TEXT])");
    assert_eq!(r.matches("hello").count(), 5, "{r}");
    assert!(r.contains("z2 OK"), "{r}");
    z.send(b"z3 IDLE\r\n");
    let cont = z.read_line();
    assert!(cont.starts_with('+'), "{cont}");
    common::deliver(&maildir, &common::message("new", "x"));
    let start = Instant::now();
    loop {
        let line = z.read_line();
        if line == "* 6 EXISTS" {
            break;
        }
        assert!(start.elapsed() < HANG_GUARD, "no EXISTS: {line}");
    }
    z.send(b"DONE\r\n");
    let r = z.cmd("z4", "LOGOUT");
    assert!(r.contains("z3 OK") && r.contains("z4 OK"), "{r}");
    server.wait_exit(HANG_GUARD);
}

// ---------------------------------------------------------------------------
// Privilege separation before login
// ---------------------------------------------------------------------------

/// The uid and gid of a system account.
fn ids_of(name: &str) -> (u32, u32) {
    let user = nix::unistd::User::from_name(name).unwrap().unwrap();
    (user.uid.as_raw(), user.gid.as_raw())
}

/// Before login, the client is read by the login process only: it runs as
/// MDIMAP_LOGIN_USER with no capabilities in an empty chroot, and the root
/// part reads not a byte of 20 KB of commands. After LOGIN the login
/// process is gone and the session runs as the mail user.
#[test]
fn before_login_only_the_confined_login_process_reads_the_client() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "privilege separation is tested as root (CI runs the tests as root)"
    );
    let (dir, conf, _maildir) = setup("privsep-plain", "MDIMAP_LOGIN_USER=daemon\n");
    let (daemon_uid, daemon_gid) = ids_of("daemon");
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let root = server.pid();
    let children = common::children_of(root);
    let [login_process] = children.as_slice() else {
        panic!("expected the login process under mdimapd, found {children:?}");
    };
    let login_process = *login_process;
    assert_eq!(
        common::status_field(root, "Uid"),
        "0 0 0 0",
        "the root part"
    );
    common::assert_confined(login_process, daemon_uid, daemon_gid);
    let (root_read, login_read) = (
        common::proc_io(root, "rchar"),
        common::proc_io(login_process, "rchar"),
    );
    let padding = "x".repeat(1000);
    for _ in 0..20 {
        c.ok(&format!("ID (\"name\" \"{padding}\")"));
    }
    assert!(
        common::proc_io(login_process, "rchar") - login_read >= 20_000,
        "the login process read the commands"
    );
    assert!(
        common::proc_io(root, "rchar") - root_read < 1000,
        "the root part read {} bytes while the client sent 20 KB",
        common::proc_io(root, "rchar") - root_read
    );
    c.ok(&format!("LOGIN {USER} {PASSWORD}"));
    // The login process is gone before the tagged OK, and the session is
    // the mail user with nothing left of root.
    assert_eq!(common::children_of(root), Vec::<i32>::new());
    assert!(!Path::new(&format!("/proc/{login_process}")).exists());
    let (uid, gid) = common::mail_ids();
    assert_eq!(
        common::status_field(root, "Uid"),
        format!("{uid} {uid} {uid} {uid}")
    );
    assert_eq!(
        common::status_field(root, "Gid"),
        format!("{gid} {gid} {gid} {gid}")
    );
    assert_eq!(common::status_field(root, "CapEff"), "0000000000000000");
    c.ok("SELECT INBOX");
    c.ok("LOGOUT");
}

/// After a login over TLS, the login process stays as the relay, confined
/// as before; the session (the mail user) has the relay's plaintext socket
/// and no TLS. A 3 MB message crosses the relay intact, in both
/// directions, and LOGOUT ends both processes.
#[test]
fn after_a_tls_login_the_confined_relay_carries_the_session() {
    let (dir, conf, maildir) = setup("privsep-tls", "MDIMAP_LOGIN_USER=daemon\n");
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &cert_line);
    let (daemon_uid, daemon_gid) = ids_of("daemon");
    let line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n";
    let body = line.repeat(3_000_000 / line.len());
    common::put_cur(&maildir, &common::message("big", &body), "S");
    let (server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let session = server.pid();
    let mut t = starttls(&mut c, TlsOpts::default());
    t.ok(&format!("LOGIN {USER} {PASSWORD}"));
    let relays = common::children_of(session);
    let [relay] = relays.as_slice() else {
        panic!("expected the TLS relay under the session, found {relays:?}");
    };
    let relay = *relay;
    common::assert_confined(relay, daemon_uid, daemon_gid);
    let (uid, _) = common::mail_ids();
    assert_eq!(
        common::status_field(session, "Uid"),
        format!("{uid} {uid} {uid} {uid}")
    );
    t.ok("SELECT INBOX");
    let r = t.ok("FETCH 1 BODY[TEXT]");
    // `message` ends the body with one more line end.
    let crlf_body = format!("{body}\n").replace('\n', "\r\n");
    // This client reads lines: the literal's lines come one by one.
    let answer = r.untagged.join("\r\n");
    assert!(
        answer.contains(&format!("{{{}}}\r\n{crlf_body})", crlf_body.len())),
        "the body came through the relay intact: {} bytes",
        answer.len()
    );
    let appended = common::message("up", &body).replace('\n', "\r\n");
    let r = t.ok(&format!(
        "APPEND INBOX {{{}+}}\r\n{appended}",
        appended.len()
    ));
    assert!(r.tagged.contains("APPENDUID"), "{r:#?}");
    let stored = common::cur_files_containing(&maildir, "Subject: up");
    assert_eq!(stored.len(), 1);
    t.ok("LOGOUT");
    assert!(server_exits(server), "the session ends after LOGOUT");
    common::wait_for(Duration::from_secs(5), || {
        !Path::new(&format!("/proc/{relay}")).exists()
            || common::status_field(relay, "State").starts_with('Z')
    });
}

fn server_exits(mut server: Server) -> bool {
    server.wait_exit(Duration::from_secs(10)).is_some()
}

/// An MDIMAP_LOGIN_USER that does not exist: the client is told the server
/// is unavailable, and the log names the key and the fix.
#[test]
fn a_missing_login_user_is_a_configuration_error() {
    let (dir, conf, _) = setup("privsep-nouser", "MDIMAP_LOGIN_USER=no-such-login-user\n");
    let (server, mut c) = spawn_direct_raw(&dir, &conf, &[], b"");
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    assert!(text.starts_with("* BYE [UNAVAILABLE]"), "{text}");
    let log = server.log_text();
    assert!(
        log.contains("MDIMAP_LOGIN_USER=no-such-login-user: no such user"),
        "{log}"
    );
}

/// Commands pipelined behind LOGIN reach the session: the login process
/// hands over what it had read past the login command, in plain and inside
/// TLS, and the session answers them in order.
#[test]
fn commands_pipelined_after_login_reach_the_session() {
    let (dir, conf, maildir) = setup("privsep-pipelined", "");
    let (_, cert_line) = install_cert(&dir, "a.test");
    append_conf(&conf, &cert_line);
    common::put_cur(&maildir, &common::message("pipelined", "body"), "S");
    let burst = format!(
        "p1 LOGIN {USER} {PASSWORD}\r\np2 SELECT INBOX\r\np3 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\np4 NOOP\r\n"
    );
    let (_plain_server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    c.send(burst.as_bytes());
    for tag in ["p1", "p2", "p3", "p4"] {
        let r = c.read_until_tagged(tag, Vec::new());
        assert!(r.is_ok(), "{tag} in plain: {r:#?}");
        if tag == "p3" {
            assert!(r.contains("Subject: pipelined"), "{r:#?}");
        }
    }
    let (_tls_server, mut c) = spawn_direct(&dir, &conf, &[], b"");
    let mut t = starttls(&mut c, TlsOpts::default());
    t.send(burst.as_bytes());
    for tag in ["p1", "p2", "p3", "p4"] {
        let r = t.try_read_until_tagged(tag).unwrap();
        assert!(r.is_ok(), "{tag} inside TLS: {r:#?}");
        if tag == "p3" {
            assert!(r.contains("Subject: pipelined"), "{r:#?}");
        }
    }
}
