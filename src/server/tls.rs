//! TLS for one connection, with rustls: STARTTLS on the plain port and
//! implicit TLS for port 993.
//!
//! Certificates are read afresh by every connection (each is a new
//! process), so a renewed certificate needs no restart. They are read as
//! root, before the login process that performs the handshake is forked and
//! confined, so the key files can stay readable by root only. Per-hostname
//! certificates follow Courier's convention: for SNI name `mail.example.com`
//! the file `<TLS_CERTFILE>.mail.example.com` is used when it exists.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::conn::Wire;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use crate::config::VerifyPeer;

/// Where the certificate and key live, and how client certificates are checked.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM with the certificate chain, and the key too unless `keyfile` is set
    /// (Courier keeps both in one file).
    pub certfile: PathBuf,
    pub keyfile: Option<PathBuf>,
    /// CA certificates that sign client certificates (TLS_TRUSTCERTS).
    pub trustcerts: Option<PathBuf>,
    pub verify: VerifyPeer,
    /// The subject field that names the user for AUTHENTICATE EXTERNAL
    /// (TLS_EXTERNAL: `CN` or `emailaddress`).
    pub external_field: Option<String>,
}

fn load_certified_key(certfile: &Path, keyfile: &Path) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certfile)
        .map_err(|e| format!("{}: cannot read certificates: {e}", certfile.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: bad certificate PEM: {e}", certfile.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE block found",
            certfile.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(keyfile)
        .map_err(|e| format!("{}: no usable private key: {e}", keyfile.display()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("{}: unsupported private key: {e}", keyfile.display()))?;
    let ck = CertifiedKey::new(certs, signer);
    ck.keys_match().map_err(|e| {
        format!(
            "{} and {}: the key does not belong to the certificate: {e}",
            certfile.display(),
            keyfile.display()
        )
    })?;
    Ok(ck)
}

/// Picks the certificate by SNI name, falling back to the default one.
/// The per-host files are read when the configuration is built: the
/// handshake runs in the login process, which can no longer open them (it
/// is confined, and the keys are root's).
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    /// By lower-case host name: the certificate, or why its file is unusable
    /// (logged when a client asks for that name).
    by_name: HashMap<String, Result<Arc<CertifiedKey>, String>>,
}

/// A host name safe to append to a file name: letters, digits, `-` and
/// inner dots only, so a client cannot steer the lookup elsewhere.
fn safe_sni(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then_some(name)
}

/// Courier's per-host certificates: every `<TLS_CERTFILE>.<host>` beside
/// the certificate file.
fn per_host_certificates(certfile: &Path) -> HashMap<String, Result<Arc<CertifiedKey>, String>> {
    let mut found = HashMap::new();
    let (Some(dir), Some(base)) = (certfile.parent(), certfile.file_name()) else {
        return found;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    let mut prefix = base.to_os_string();
    prefix.push(".");
    let prefix = prefix.as_encoded_bytes().to_vec();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(host) = name.as_encoded_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let Some(host) = std::str::from_utf8(host).ok().and_then(safe_sni) else {
            continue;
        };
        let path = entry.path();
        found.insert(host, load_certified_key(&path, &path).map(Arc::new));
    }
    found
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name().and_then(safe_sni) {
            match self.by_name.get(&name) {
                Some(Ok(ck)) => return Some(ck.clone()),
                Some(Err(e)) => log::error!("SNI certificate for {name}: {e}"),
                None => {}
            }
        }
        Some(self.default.clone())
    }
}

/// Builds the rustls configuration: TLS 1.2 and 1.3, the default
/// certificate checked now so a bad file is reported before any client.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let keyfile = files
        .keyfile
        .clone()
        .unwrap_or_else(|| files.certfile.clone());
    let default = Arc::new(load_certified_key(&files.certfile, &keyfile)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match files.verify {
        VerifyPeer::None => builder.with_no_client_auth(),
        verify => {
            let path = files.trustcerts.as_ref().ok_or("TLS_VERIFYPEER needs TLS_TRUSTCERTS, the CA certificates that sign client certificates")?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
            {
                let cert =
                    cert.map_err(|e| format!("{}: bad certificate PEM: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if verify == VerifyPeer::Peer {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_cert_resolver(Arc::new(SniResolver {
        default,
        by_name: per_host_certificates(&files.certfile),
    }));
    Ok(Arc::new(config))
}

/// The value of a subject field (`CN`, `emailaddress`) of a client
/// certificate that rustls has already verified against TLS_TRUSTCERTS.
fn subject_field(der: &[u8], field: &str) -> Option<String> {
    use x509_parser::oid_registry::{OID_PKCS9_EMAIL_ADDRESS, OID_X509_COMMON_NAME};
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let oid = match field.to_ascii_lowercase().as_str() {
        "cn" | "commonname" => OID_X509_COMMON_NAME,
        "emailaddress" | "email" => OID_PKCS9_EMAIL_ADDRESS,
        _ => return None,
    };
    let value = cert
        .subject()
        .iter_by_oid(&oid)
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(value)
}

type Shared = Rc<RefCell<StreamOwned<ServerConnection, Wire>>>;

/// The reading half of a TLS session.
pub struct TlsReader(Shared);
/// The writing half of a TLS session.
pub struct TlsWriter(Shared);

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.borrow_mut().read(buf) {
            // A peer that closes without close_notify has simply gone.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        let mut guard = self.0.borrow_mut();
        guard.flush()?;
        let s = &mut *guard;
        while s.conn.wants_write() {
            s.conn.write_tls(&mut s.sock)?;
        }
        Ok(())
    }
}

impl TlsReader {
    /// A second handle on the same session, for [`TlsReader::has_plaintext`].
    pub fn probe(&self) -> TlsReader {
        TlsReader(self.0.clone())
    }

    /// The TLS session and the wire under it, once this is the last handle
    /// on them (the connection's reader and writer are dropped): the login
    /// process relays the session's plaintext through them.
    pub fn into_connection(self) -> Option<(ServerConnection, Wire)> {
        let stream = Rc::try_unwrap(self.0).ok()?.into_inner();
        Some(stream.into_parts())
    }

    /// True when rustls holds decrypted bytes not yet read: poll(2) on the
    /// socket cannot see those.
    pub fn has_plaintext(&self) -> bool {
        match self.0.borrow_mut().conn.process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0,
            Err(_) => true,
        }
    }
}

/// What was negotiated, for the log.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
    pub sni: Option<String>,
    /// The user a verified client certificate names (TLS_EXTERNAL).
    pub client_identity: Option<String>,
}

/// Runs the server side of the handshake on `wire`, within the wire's
/// deadlines (before login: the whole-login deadline).
pub fn accept(
    config: Arc<ServerConfig>,
    mut wire: Wire,
    external_field: Option<&str>,
) -> Result<(TlsReader, TlsWriter, TlsInfo), String> {
    let mut conn = ServerConnection::new(config).map_err(|e| format!("TLS: {e}"))?;
    while conn.is_handshaking() {
        while conn.wants_write() {
            conn.write_tls(&mut wire)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        if !conn.is_handshaking() {
            break;
        }
        if conn.wants_read() {
            match conn.read_tls(&mut wire) {
                Ok(0) => return Err("client closed the connection during the TLS handshake".into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err("TLS handshake timed out".into());
                }
                Err(e) => return Err(format!("TLS handshake: {e}")),
            }
            if let Err(e) = conn.process_new_packets() {
                // Send the alert that tells the client why.
                let _ = conn.write_tls(&mut wire);
                return Err(format!("TLS handshake failed: {e}"));
            }
        }
    }
    while conn.wants_write() {
        conn.write_tls(&mut wire)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    let info = TlsInfo {
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher: conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
        sni: conn.server_name().map(str::to_string),
        client_identity: external_field.and_then(|field| {
            let der = conn.peer_certificates()?.first()?;
            subject_field(der.as_ref(), field)
        }),
    };
    let shared = Rc::new(RefCell::new(StreamOwned::new(conn, wire)));
    Ok((TlsReader(shared.clone()), TlsWriter(shared), info))
}

/// A self-signed certificate and key for `names`, as one PEM (for the demo).
pub fn self_signed_pem(names: &[&str]) -> Result<String, String> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("generating a certificate: {e}"))?;
    Ok(format!(
        "{}{}",
        ck.cert.pem(),
        ck.signing_key.serialize_pem()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_names_cannot_escape() {
        assert_eq!(
            safe_sni("Mail.Example.com").as_deref(),
            Some("mail.example.com")
        );
        for bad in ["../etc/passwd", "a/b", ".hidden", "a..b", "", "x y"] {
            assert!(safe_sni(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn self_signed_certificate_loads() {
        let dir = std::env::temp_dir().join(format!("mdimap-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("cert.pem");
        std::fs::write(&pem, self_signed_pem(&["localhost"]).unwrap()).unwrap();
        let files = TlsFiles {
            certfile: pem.clone(),
            keyfile: None,
            trustcerts: None,
            verify: VerifyPeer::None,
            external_field: None,
        };
        assert!(server_config(&files).is_ok());
        std::fs::write(&pem, "garbage").unwrap();
        let err = server_config(&files).unwrap_err();
        assert!(err.contains("cert.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
