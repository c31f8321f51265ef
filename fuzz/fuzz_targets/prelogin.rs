//! The not-authenticated state as a client on the network meets it: the
//! pre-login loop (`server::login::login_phase`) reading the fuzz input as the
//! client's bytes through the same `Io` (framing with the pre-login limits,
//! PROXY detection, the command parser) and running CAPABILITY, NOOP, ID,
//! STARTTLS (not configured), LOGIN and AUTHENTICATE with every mechanism
//! (SASL-IR and continuations, base64, `*` to cancel). Checks that every
//! response is whole CRLF lines with no client byte able to forge another,
//! and that a login succeeds only with the one right password.

#![no_main]

use fuzz_support::{check_lines, io_over};
use libfuzzer_sys::fuzz_target;
use mdimap::auth::sasl::Credentials;
use mdimap::auth::{AuthError, MailUser};
use mdimap::server::login::{
    Accounts, Advertised, Backends, FrontDoor, PREAUTH_LIMITS, Peer, PlaintextLogin, Verdict, check,
    login_phase,
};
use mdimap::server::tls::TlsInfo;
use std::cell::Cell;
use std::time::Duration;

fn user() -> MailUser {
    MailUser {
        name: "fuzz".into(),
        uid: 1000,
        gid: 1000,
        home: "/home/fuzz".into(),
        maildir: "/home/fuzz/Maildir".into(),
        quota: None,
        options: Vec::new(),
    }
}

/// One account, "fuzz" with the password "secret".
struct OneUser;

impl Backends for OneUser {
    fn verify(&self, user_name: &str, password: &[u8]) -> Result<MailUser, AuthError> {
        if user_name == "fuzz" && password == b"secret" {
            Ok(user())
        } else {
            Err(AuthError::Failed)
        }
    }
    fn lookup(&self, user_name: &str) -> Result<Option<MailUser>, AuthError> {
        Ok((user_name == "fuzz").then(user))
    }
    fn clear_password(&self, user_name: &str) -> Result<Option<(MailUser, Vec<u8>)>, AuthError> {
        Ok((user_name == "fuzz").then(|| (user(), b"secret".to_vec())))
    }
}

/// The root part as the login process sees it: `login::check` against the
/// one account. Records the method of the last accepted login.
struct Root {
    accepted: Cell<Option<String>>,
}

impl Accounts for Root {
    fn has_clear_passwords(&self) -> bool {
        true
    }
    fn authenticate(&self, method: &str, credentials: Credentials, _: Option<&TlsInfo>) -> Verdict {
        match check(&credentials, &OneUser, None) {
            Ok(_) => {
                self.accepted.set(Some(method.to_string()));
                Verdict::Accepted
            }
            Err(e) => Verdict::Failed {
                unavailable: matches!(e, AuthError::Unavailable(_)),
            },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the policy, so both the plaintext refusal and
    // the LOGIN/PLAIN paths are reached.
    let (policy, input) = match data.split_first() {
        Some((p, rest)) => (*p, rest),
        None => (0, data),
    };
    let door = FrontDoor {
        tls: None,
        plaintext_login: match policy % 3 {
            0 => PlaintextLogin::Always,
            1 => PlaintextLogin::LoopbackOnly,
            _ => PlaintextLogin::Never,
        },
        failure_delay: Duration::ZERO,
        max_failures: 3,
        timeout: Duration::from_secs(60),
        external_field: None,
        cram: policy & 4 != 0,
        hostname: "fuzz.example".into(),
        advertised: Advertised::default(),
    };
    let peer = Peer {
        ip: "192.0.2.1".into(),
        port: "4321".into(),
        loopback: policy & 8 != 0,
    };
    let (mut io, out) = io_over(input, PREAUTH_LIMITS);
    let root = Root { accepted: Cell::new(None) };
    let logged_in = login_phase(&mut io, &door, &peer, &root, None);
    let _ = io.flush();
    drop(io);
    let out = out.0.borrow();
    check_lines(&out);
    if let Some(l) = logged_in {
        assert!(!l.tag.is_empty());
        let method = root.accepted.take().expect("logged in without the root part's consent");
        // Only LOGIN and the password mechanisms can know "secret"; a CRAM
        // challenge is random, so no input can answer it.
        assert!(matches!(method.as_str(), "LOGIN" | "PLAIN" | "AUTH-LOGIN"), "logged in by {method}");
    }
});
