//! What the login process and the root part of mdimapd say to each other,
//! over the `SOCK_SEQPACKET` socketpair between them (see `privsep`).
//!
//! The login process is the only one that reads the client before login; it
//! sends the root part what it learnt (the address behind a PROXY header,
//! credentials to check, and at the end the connection as it hands it over),
//! and the root part answers each check with a verdict. One message per
//! packet, so no framing can be confused; every field is length-prefixed and
//! checked against the packet, so a login process taken over by an attacker
//! gets nothing from a malformed message but the end of its connection.
//!
//! Buffers that may hold a password are [`Secret`]s and are scrubbed.

use std::os::fd::{AsFd, OwnedFd};

use crate::auth::sasl::{Cram, Credentials};
use crate::auth::secret::Secret;

/// The largest message: a login command (48 KiB before login) and the
/// pipelined input after it, with room to spare.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// From the login process to the root part.
pub enum ToRoot {
    /// The client's address, once a trusted proxy's header has been read.
    Connected { ip: String, port: String },
    /// Check these credentials (and that the account can be served).
    Authenticate {
        /// `LOGIN`, `PLAIN`, `CRAM-MD5`…, for the log.
        method: String,
        credentials: Credentials,
        tls: bool,
        /// The user a verified client certificate names (EXTERNAL).
        client_identity: Option<String>,
    },
    /// The login the root part accepted last is complete: the session may
    /// start. `leftover` is input the client pipelined after the login
    /// command, which the session reads first.
    Admit {
        tag: String,
        /// TLS version and cipher, for the log; `None` without TLS. With
        /// TLS the login process relays the session's plaintext.
        tls: Option<(String, String)>,
        bytes_in: u64,
        bytes_out: u64,
        leftover: Vec<u8>,
    },
}

/// The root part's answer to [`ToRoot::Authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Right credentials; the account can be served.
    Accepted,
    /// Right credentials, but the account may not use IMAP here (Courier's
    /// `disableimap`, `disableinsecureimap`): `NO` with this code and text.
    Refused { privacy: bool, text: String },
    /// Wrong credentials, or an account that cannot be served (answered
    /// alike); `unavailable` when the user database could not be asked.
    Failed { unavailable: bool },
}

const CONNECTED: u8 = 1;
const AUTHENTICATE: u8 = 2;
const ADMIT: u8 = 3;
const ACCEPTED: u8 = 10;
const REFUSED: u8 = 11;
const FAILED: u8 = 12;

const PASSWORD: u8 = 1;
const CRAM: u8 = 2;
const EXTERNAL: u8 = 3;

/// Builds one message in a scrubbed buffer.
struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: u8) -> Writer {
        Writer(vec![kind])
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }
    fn number(&mut self, n: u64) -> &mut Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    fn optional(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.byte(1).bytes(s.as_bytes()),
            None => self.byte(0),
        }
    }
    fn finish(self) -> Secret {
        Secret::new(self.0)
    }
}

/// Reads the fields of one message; `None` past its end or on a bad field.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return None;
        }
        let (field, rest) = rest.split_at(len);
        self.0 = rest;
        Some(field)
    }
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn number(&mut self) -> Option<u64> {
        let (n, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*n))
    }
    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn optional(&mut self) -> Option<Option<String>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(self.text()?)),
            _ => None,
        }
    }
    /// The message must end here: trailing bytes are an error too.
    fn end<T>(&self, value: T) -> Option<T> {
        self.0.is_empty().then_some(value)
    }
}

fn cram_code(kind: Cram) -> u8 {
    match kind {
        Cram::Md5 => 1,
        Cram::Sha1 => 2,
        Cram::Sha256 => 3,
    }
}

fn cram_of(code: u8) -> Option<Cram> {
    Some(match code {
        1 => Cram::Md5,
        2 => Cram::Sha1,
        3 => Cram::Sha256,
        _ => return None,
    })
}

impl ToRoot {
    pub fn encode(&self) -> Secret {
        match self {
            ToRoot::Connected { ip, port } => {
                let mut w = Writer::new(CONNECTED);
                w.bytes(ip.as_bytes()).bytes(port.as_bytes());
                w.finish()
            }
            ToRoot::Authenticate {
                method,
                credentials,
                tls,
                client_identity,
            } => {
                let mut w = Writer::new(AUTHENTICATE);
                w.bytes(method.as_bytes())
                    .byte(u8::from(*tls))
                    .optional(client_identity.as_deref());
                match credentials {
                    Credentials::Password { user, password } => {
                        w.byte(PASSWORD).bytes(user).bytes(password);
                    }
                    Credentials::Cram {
                        kind,
                        user,
                        challenge,
                        digest,
                    } => {
                        w.byte(CRAM)
                            .byte(cram_code(*kind))
                            .bytes(user)
                            .bytes(challenge)
                            .bytes(digest);
                    }
                    Credentials::External { authzid } => {
                        w.byte(EXTERNAL).bytes(authzid);
                    }
                }
                w.finish()
            }
            ToRoot::Admit {
                tag,
                tls,
                bytes_in,
                bytes_out,
                leftover,
            } => {
                let mut w = Writer::new(ADMIT);
                w.bytes(tag.as_bytes());
                match tls {
                    Some((version, cipher)) => {
                        w.byte(1).bytes(version.as_bytes()).bytes(cipher.as_bytes());
                    }
                    None => {
                        w.byte(0);
                    }
                }
                w.number(*bytes_in).number(*bytes_out).bytes(leftover);
                w.finish()
            }
        }
    }

    pub fn decode(message: &[u8]) -> Option<ToRoot> {
        let (&kind, rest) = message.split_first()?;
        let mut r = Reader(rest);
        match kind {
            CONNECTED => {
                let ip = r.text()?;
                let port = r.text()?;
                r.end(ToRoot::Connected { ip, port })
            }
            AUTHENTICATE => {
                let method = r.text()?;
                let tls = r.byte()? != 0;
                let client_identity = r.optional()?;
                let credentials = match r.byte()? {
                    PASSWORD => Credentials::Password {
                        user: r.bytes()?.to_vec(),
                        password: Secret::new(r.bytes()?.to_vec()),
                    },
                    CRAM => Credentials::Cram {
                        kind: cram_of(r.byte()?)?,
                        user: r.bytes()?.to_vec(),
                        challenge: r.bytes()?.to_vec(),
                        digest: r.bytes()?.to_vec(),
                    },
                    EXTERNAL => Credentials::External {
                        authzid: r.bytes()?.to_vec(),
                    },
                    _ => return None,
                };
                r.end(ToRoot::Authenticate {
                    method,
                    credentials,
                    tls,
                    client_identity,
                })
            }
            ADMIT => {
                let tag = r.text()?;
                let tls = match r.byte()? {
                    0 => None,
                    1 => Some((r.text()?, r.text()?)),
                    _ => return None,
                };
                let bytes_in = r.number()?;
                let bytes_out = r.number()?;
                let leftover = r.bytes()?.to_vec();
                r.end(ToRoot::Admit {
                    tag,
                    tls,
                    bytes_in,
                    bytes_out,
                    leftover,
                })
            }
            _ => None,
        }
    }
}

impl Verdict {
    pub fn encode(&self) -> Secret {
        match self {
            Verdict::Accepted => Writer::new(ACCEPTED).finish(),
            Verdict::Refused { privacy, text } => {
                let mut w = Writer::new(REFUSED);
                w.byte(u8::from(*privacy)).bytes(text.as_bytes());
                w.finish()
            }
            Verdict::Failed { unavailable } => {
                let mut w = Writer::new(FAILED);
                w.byte(u8::from(*unavailable));
                w.finish()
            }
        }
    }

    pub fn decode(message: &[u8]) -> Option<Verdict> {
        let (&kind, rest) = message.split_first()?;
        let mut r = Reader(rest);
        match kind {
            ACCEPTED => r.end(Verdict::Accepted),
            REFUSED => {
                let privacy = r.byte()? != 0;
                let text = r.text()?;
                r.end(Verdict::Refused { privacy, text })
            }
            FAILED => {
                let unavailable = r.byte()? != 0;
                r.end(Verdict::Failed { unavailable })
            }
            _ => None,
        }
    }
}

/// One end of the control channel.
pub struct Channel(OwnedFd);

impl Channel {
    /// Sends one message; false when the other side is gone.
    pub fn send(&self, message: &[u8]) -> bool {
        loop {
            match nix::unistd::write(self.0.as_fd(), message) {
                Ok(n) => return n == message.len(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Receives one message, waiting at most `timeout`; `None` when the
    /// other side is gone, the time ran out, or the message is too large
    /// (a packet larger than the buffer would arrive cut).
    pub fn receive(&self, timeout: std::time::Duration) -> Option<Secret> {
        use std::os::fd::AsRawFd;
        if !crate::conn::wait_readable(&[self.0.as_raw_fd()], timeout)
            .first()
            .copied()
            .unwrap_or(false)
        {
            return None;
        }
        // The packet's length first (MSG_TRUNC reports it whole), so the buffer is
        // the message's size: a buffer of MAX_MESSAGE, zeroed and scrubbed for every
        // message, cost more than the rest of a login's messages together.
        use nix::sys::socket::{MsgFlags, recv};
        let len = loop {
            match recv(
                self.0.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            }
        };
        // 0: the other side is gone (no message is empty).
        if len == 0 || len > MAX_MESSAGE {
            return None;
        }
        let mut buf = Secret::new(vec![0; len]);
        loop {
            match nix::unistd::read(self.0.as_fd(), buf.as_mut_slice()) {
                Ok(n) if n == len => return Some(buf),
                Ok(_) => return None,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// A connected pair of `SOCK_SEQPACKET` sockets: one message per packet.
pub fn channel_pair() -> std::io::Result<(Channel, Channel)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel(a), Channel(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: &ToRoot) -> ToRoot {
        ToRoot::decode(&m.encode()).expect("decodes")
    }

    #[test]
    fn messages_survive_the_trip() {
        match round_trip(&ToRoot::Connected {
            ip: "192.0.2.7".into(),
            port: "4711".into(),
        }) {
            ToRoot::Connected { ip, port } => {
                assert_eq!((ip.as_str(), port.as_str()), ("192.0.2.7", "4711"))
            }
            _ => panic!("kind"),
        }
        let m = ToRoot::Authenticate {
            method: "CRAM-SHA256".into(),
            credentials: Credentials::Cram {
                kind: Cram::Sha256,
                user: b"u".to_vec(),
                challenge: b"<1.2@h>".to_vec(),
                digest: b"abcd".to_vec(),
            },
            tls: true,
            client_identity: Some("cn".into()),
        };
        match round_trip(&m) {
            ToRoot::Authenticate {
                method,
                credentials:
                    Credentials::Cram {
                        kind,
                        user,
                        challenge,
                        digest,
                    },
                tls,
                client_identity,
            } => {
                assert_eq!(method, "CRAM-SHA256");
                assert_eq!(kind, Cram::Sha256);
                assert_eq!(
                    (user, challenge, digest),
                    (b"u".to_vec(), b"<1.2@h>".to_vec(), b"abcd".to_vec())
                );
                assert!(tls);
                assert_eq!(client_identity.as_deref(), Some("cn"));
            }
            _ => panic!("kind"),
        }
        let m = ToRoot::Admit {
            tag: "a1".into(),
            tls: Some(("TLSv1_3".into(), "TLS13_AES_256_GCM_SHA384".into())),
            bytes_in: 12,
            bytes_out: 345,
            leftover: b"a2 SELECT INBOX\r\n".to_vec(),
        };
        match round_trip(&m) {
            ToRoot::Admit {
                tag,
                tls,
                bytes_in,
                bytes_out,
                leftover,
            } => {
                assert_eq!(tag, "a1");
                assert_eq!(tls.map(|t| t.0), Some("TLSv1_3".to_string()));
                assert_eq!((bytes_in, bytes_out), (12, 345));
                assert_eq!(leftover, b"a2 SELECT INBOX\r\n");
            }
            _ => panic!("kind"),
        }
        for v in [
            Verdict::Accepted,
            Verdict::Refused {
                privacy: true,
                text: "no".into(),
            },
            Verdict::Failed { unavailable: false },
        ] {
            assert_eq!(Verdict::decode(&v.encode()), Some(v));
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = ToRoot::Authenticate {
            method: "LOGIN".into(),
            credentials: Credentials::Password {
                user: b"user".to_vec(),
                password: Secret::new(b"pw".to_vec()),
            },
            tls: false,
            client_identity: None,
        }
        .encode();
        // Every truncation, and a trailing byte, is refused.
        for cut in 0..good.len() {
            assert!(ToRoot::decode(&good[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = good.to_vec();
        longer.push(0);
        assert!(ToRoot::decode(&longer).is_none());
        // A length beyond the packet.
        assert!(ToRoot::decode(&[CONNECTED, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(Verdict::decode(&[99]).is_none());
        assert!(Verdict::decode(&[]).is_none());
    }

    #[test]
    fn a_message_crosses_the_channel_whole() {
        let (a, b) = channel_pair().unwrap();
        assert!(a.send(b"one"));
        assert!(a.send(b"two"));
        let t = std::time::Duration::from_secs(5);
        assert_eq!(&*b.receive(t).unwrap(), b"one");
        assert_eq!(&*b.receive(t).unwrap(), b"two");
        drop(a);
        assert!(b.receive(t).is_none());
    }
}
