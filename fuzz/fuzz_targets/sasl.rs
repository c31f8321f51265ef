//! SASL response decoding as AUTHENTICATE runs it (`server::login`'s
//! exchange): base64 decoding of each client line, then the mechanism's
//! `Exchange` (PLAIN, LOGIN, CRAM-MD5/SHA1/SHA256, EXTERNAL) over the
//! decoded responses, with or without a SASL-IR initial response, and
//! modified UTF-7 (mailbox names) alongside. Checks that base64 and
//! modified UTF-7 decode to what encodes and decodes back the same, that PLAIN yields exactly the fields of
//! `authzid NUL authcid NUL password`, and that an exchange ends within
//! its mechanism's number of steps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mdimap::auth::sasl::{Credentials, Exchange, Mechanism, Refusal, Step};
use mdimap::protocol::{base64, mutf7};

const MECHANISMS: [&str; 6] = ["PLAIN", "LOGIN", "CRAM-MD5", "CRAM-SHA1", "CRAM-SHA256", "EXTERNAL"];

fuzz_target!(|data: &[u8]| {
    let (selector, rest) = match data.split_first() {
        Some((s, r)) => (*s, r),
        None => return,
    };
    let lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    // Every line is a client response as sent: base64.
    let mut decoded = Vec::new();
    for line in &lines {
        let Some(bytes) = base64::decode(line) else {
            continue;
        };
        let again = base64::encode(&bytes);
        assert_eq!(base64::decode(again.as_bytes()).as_deref(), Some(&bytes[..]), "encode/decode");
        decoded.push(bytes);
    }
    if let Some(name) = mutf7::decode(rest) {
        let again = mutf7::encode(&name);
        assert_eq!(mutf7::decode(again.as_bytes()).as_deref(), Some(name.as_str()));
    }

    let name = MECHANISMS[usize::from(selector) % MECHANISMS.len()];
    let mechanism = Mechanism::named(name).expect("a known mechanism");
    let mut responses = decoded.into_iter();
    let initial = if selector & 0x80 != 0 { responses.next() } else { None };
    let plain_input = initial.clone();
    let (mut exchange, mut step) = Exchange::start(mechanism, initial, "fuzz.example");
    let mut steps = 0;
    let mut last_response = plain_input;
    loop {
        match step {
            Step::Challenge(_) => {
                steps += 1;
                assert!(steps <= 3, "{name} asked for a fourth response");
                let Some(r) = responses.next() else { break };
                last_response = Some(r.clone());
                step = exchange.respond(r);
            }
            Step::Done(credentials) => {
                if let (Credentials::Password { user, .. }, "PLAIN") = (&credentials, name) {
                    let r = last_response.expect("PLAIN answered without a response");
                    let fields: Vec<&[u8]> = r.split(|&b| b == 0).collect();
                    assert_eq!(fields.len(), 3);
                    assert_eq!(user.as_slice(), fields[1]);
                }
                break;
            }
            Step::Refused(Refusal::Malformed | Refusal::OtherIdentity) => break,
        }
    }
});
