//! SASL mechanisms (RFC 4422) as pure steps: a challenge goes out, a
//! response comes back, and at the end the mechanism yields credentials for
//! the backends to check. PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login),
//! CRAM-MD5 (RFC 2195) with Courier's CRAM-SHA1 and CRAM-SHA256, and EXTERNAL
//! (RFC 4422 appendix A) with the identity of a verified TLS client certificate.
//!
//! Nothing here reads or writes the connection, base64-encodes, sleeps or logs:
//! the front door runs the exchange, and decides what a failure costs.

use super::password::{constant_time_eq, fill_random};
use super::secret::Secret;

/// A mechanism the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    Cram(Cram),
    External,
}

impl Mechanism {
    /// The mechanism of an AUTHENTICATE command, case-insensitively.
    pub fn named(name: &str) -> Option<Mechanism> {
        Some(match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Mechanism::Plain,
            "LOGIN" => Mechanism::Login,
            "EXTERNAL" => Mechanism::External,
            other => Mechanism::Cram(Cram::named(other)?),
        })
    }

    /// The name for the log (`method=` in the LOGIN line, as Courier has it).
    pub fn log_name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "AUTH-LOGIN",
            Mechanism::Cram(c) => c.name(),
            Mechanism::External => "EXTERNAL",
        }
    }

    /// Whether the mechanism sends a password the server could read off an
    /// unencrypted connection (and so falls under the plaintext policy).
    pub fn sends_password(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }
}

/// The challenge-response mechanisms of RFC 2195 and Courier's SHA variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cram {
    Md5,
    Sha1,
    Sha256,
}

impl Cram {
    fn named(mechanism: &str) -> Option<Cram> {
        match mechanism {
            "CRAM-MD5" => Some(Cram::Md5),
            "CRAM-SHA1" => Some(Cram::Sha1),
            "CRAM-SHA256" => Some(Cram::Sha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cram::Md5 => "CRAM-MD5",
            Cram::Sha1 => "CRAM-SHA1",
            Cram::Sha256 => "CRAM-SHA256",
        }
    }

    /// The keyed digest of the challenge, in lower-case hex.
    pub fn digest(self, key: &[u8], challenge: &[u8]) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        fn run<M: Mac + KeyInit>(key: &[u8], challenge: &[u8]) -> Vec<u8> {
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(challenge);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        let bytes = match self {
            Cram::Md5 => run::<Hmac<md5::Md5>>(key, challenge),
            Cram::Sha1 => run::<Hmac<sha1::Sha1>>(key, challenge),
            Cram::Sha256 => run::<Hmac<sha2::Sha256>>(key, challenge),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What an exchange proved, for the backends to check.
#[derive(Debug)]
pub enum Credentials {
    /// PLAIN and LOGIN: a name and its password.
    Password { user: Vec<u8>, password: Secret },
    /// CRAM-*: the name and the digest the client computed over `challenge`.
    Cram {
        kind: Cram,
        user: Vec<u8>,
        challenge: Vec<u8>,
        digest: Vec<u8>,
    },
    /// EXTERNAL: the authorization identity the client asked for (empty:
    /// whoever the certificate names).
    External { authzid: Vec<u8> },
}

impl Credentials {
    /// The user name the client gave, for the log.
    pub fn user(&self) -> &[u8] {
        match self {
            Credentials::Password { user, .. } | Credentials::Cram { user, .. } => user,
            Credentials::External { authzid } => authzid,
        }
    }
}

/// Why an exchange ended without credentials; each is a tagged answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The response does not have the mechanism's form: BAD.
    Malformed,
    /// PLAIN with an authorization identity other than the user: NO
    /// [AUTHORIZATIONFAILED].
    OtherIdentity,
}

/// The next thing to do in an exchange.
#[derive(Debug)]
pub enum Step {
    /// Send this challenge (raw; the caller base64-encodes it) and pass the
    /// client's decoded response to [`Exchange::respond`].
    Challenge(Vec<u8>),
    Done(Credentials),
    Refused(Refusal),
}

/// One AUTHENTICATE exchange in progress.
pub struct Exchange {
    mechanism: Mechanism,
    /// LOGIN: the user name, once received.
    login_user: Option<Vec<u8>>,
    /// CRAM: the challenge sent.
    challenge: Vec<u8>,
}

impl Exchange {
    /// Starts `mechanism`, with the SASL-IR initial response when the client
    /// sent one (RFC 4959). `hostname` goes into CRAM challenges.
    pub fn start(
        mechanism: Mechanism,
        initial: Option<Vec<u8>>,
        hostname: &str,
    ) -> (Exchange, Step) {
        let mut exchange = Exchange {
            mechanism,
            login_user: None,
            challenge: Vec::new(),
        };
        let step = match (mechanism, initial) {
            (Mechanism::Cram(_), _) => {
                exchange.challenge = cram_challenge(hostname).into_bytes();
                Step::Challenge(exchange.challenge.clone())
            }
            (Mechanism::Login, None) => Step::Challenge(b"Username:".to_vec()),
            (_, None) => Step::Challenge(Vec::new()),
            (_, Some(response)) => exchange.respond(response),
        };
        (exchange, step)
    }

    /// Takes the client's (decoded) response to the last challenge.
    pub fn respond(&mut self, response: Vec<u8>) -> Step {
        match self.mechanism {
            Mechanism::Plain => plain(response),
            Mechanism::Login => match self.login_user.take() {
                None => {
                    self.login_user = Some(response);
                    Step::Challenge(b"Password:".to_vec())
                }
                Some(user) => Step::Done(Credentials::Password {
                    user,
                    password: Secret::new(response),
                }),
            },
            Mechanism::Cram(kind) => {
                let response = Secret::new(response);
                let Some(space) = response.iter().rposition(|&b| b == b' ') else {
                    return Step::Refused(Refusal::Malformed);
                };
                Step::Done(Credentials::Cram {
                    kind,
                    user: response.get(..space).unwrap_or_default().to_vec(),
                    challenge: std::mem::take(&mut self.challenge),
                    digest: response
                        .get(space + 1..)
                        .unwrap_or_default()
                        .to_ascii_lowercase(),
                })
            }
            Mechanism::External => Step::Done(Credentials::External { authzid: response }),
        }
    }
}

/// PLAIN: `authzid NUL authcid NUL password`.
fn plain(response: Vec<u8>) -> Step {
    let response = Secret::new(response);
    let mut parts = response.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Step::Refused(Refusal::Malformed);
    };
    if !authz.is_empty() && authz != authc {
        return Step::Refused(Refusal::OtherIdentity);
    }
    Step::Done(Credentials::Password {
        user: authc.to_vec(),
        password: Secret::new(pass.to_vec()),
    })
}

/// `<random.time@host>`: unpredictable, so a recorded answer is worthless.
fn cram_challenge(hostname: &str) -> String {
    let mut random = [0u8; 16];
    // Without the kernel's random source there is no safe challenge; an
    // all-zero one still differs by time, and the backends check the digest
    // against this very challenge, so the worst is a replayable login.
    let _ = fill_random(&mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("<{hex}.{now}@{hostname}>")
}

/// Whether a CRAM digest is right for the user's clear-text password, in
/// constant time.
pub fn cram_matches(kind: Cram, clear_password: &[u8], challenge: &[u8], digest: &[u8]) -> bool {
    let expected = kind.digest(clear_password, challenge);
    constant_time_eq(expected.as_bytes(), digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(step: Step) -> Credentials {
        match step {
            Step::Done(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cram_md5_known_answer() {
        // RFC 2195 §2: the example exchange.
        let digest = Cram::Md5.digest(
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>",
        );
        assert_eq!(digest, "b913a602c7eda7a495b4e6e7334d3890");
        assert!(cram_matches(
            Cram::Md5,
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>",
            b"b913a602c7eda7a495b4e6e7334d3890"
        ));
    }

    #[test]
    fn cram_sha_variants_are_hmacs() {
        // RFC 2202 test case 2 (HMAC-SHA1) and RFC 4231 test case 2 (HMAC-SHA256).
        assert_eq!(
            Cram::Sha1.digest(b"Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            Cram::Sha256.digest(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn plain_with_and_without_initial_response() {
        // RFC 4616 §4 examples.
        let (_, step) = Exchange::start(
            Mechanism::Plain,
            Some(b"\0tim\0tanstaaftanstaaf".to_vec()),
            "h",
        );
        match done(step) {
            Credentials::Password { user, password } => {
                assert_eq!(user, b"tim");
                assert_eq!(&*password, b"tanstaaftanstaaf");
            }
            other => panic!("{other:?}"),
        }
        let (mut ex, step) = Exchange::start(Mechanism::Plain, None, "h");
        assert!(matches!(step, Step::Challenge(c) if c.is_empty()));
        // Logging in as another user (authzid Ursel, authcid Kurt) is refused.
        assert!(matches!(
            ex.respond(b"Ursel\0Kurt\0xipj3plmq".to_vec()),
            Step::Refused(Refusal::OtherIdentity)
        ));
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"no nuls".to_vec()), "h");
        assert!(matches!(step, Step::Refused(Refusal::Malformed)));
    }

    #[test]
    fn login_asks_name_then_password() {
        let (mut ex, step) = Exchange::start(Mechanism::Login, None, "h");
        assert!(matches!(step, Step::Challenge(c) if c == b"Username:"));
        assert!(matches!(ex.respond(b"bob".to_vec()), Step::Challenge(c) if c == b"Password:"));
        match done(ex.respond(b"pw".to_vec())) {
            Credentials::Password { user, password } => {
                assert_eq!((user.as_slice(), &*password), (&b"bob"[..], &b"pw"[..]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cram_challenge_is_fresh_and_answer_parsed() {
        let (mut ex, step) = Exchange::start(Mechanism::Cram(Cram::Md5), None, "mail.example");
        let Step::Challenge(challenge) = step else {
            panic!("no challenge");
        };
        let text = String::from_utf8(challenge.clone()).unwrap();
        assert!(
            text.starts_with('<') && text.ends_with("@mail.example>"),
            "{text}"
        );
        let (_, again) = Exchange::start(Mechanism::Cram(Cram::Md5), None, "mail.example");
        assert!(!matches!(again, Step::Challenge(c) if c == challenge));
        match done(ex.respond(b"tim B913A602".to_vec())) {
            Credentials::Cram {
                user,
                digest,
                challenge: c,
                ..
            } => {
                assert_eq!(user, b"tim");
                assert_eq!(digest, b"b913a602");
                assert_eq!(c, challenge);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Exchange::start(Mechanism::Cram(Cram::Sha1), None, "h")
                .0
                .respond(b"nospace".to_vec()),
            Step::Refused(Refusal::Malformed)
        ));
    }

    #[test]
    fn names() {
        assert_eq!(Mechanism::named("plain"), Some(Mechanism::Plain));
        assert_eq!(
            Mechanism::named("Cram-Sha256"),
            Some(Mechanism::Cram(Cram::Sha256))
        );
        assert_eq!(Mechanism::named("GSSAPI"), None);
        assert_eq!(Mechanism::Login.log_name(), "AUTH-LOGIN");
    }
}
