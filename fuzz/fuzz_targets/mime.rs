//! One message as FETCH sees it: the fuzz input made CRLF (as the store
//! hands messages to the session), parsed into its MIME tree, and ENVELOPE,
//! BODY, BODYSTRUCTURE, BODY[section] and BINARY[part] built from it, with
//! PREVIEW and the Date. Checks that ENVELOPE and BODYSTRUCTURE are one
//! well-formed IMAP list each (strings, numbers, NIL and lists only; the
//! envelope's ten fields and four-field addresses), that BODY[] is the
//! message, BODY[HEADER] and BODY[TEXT] split it, and PREVIEW stays within
//! RFC 8970's 200 characters.

#![no_main]

use fuzz_support::{Item, parse_list};
use libfuzzer_sys::fuzz_target;
use mdimap::message::{Message, crlf_len, to_crlf};
use mdimap::protocol::command::{Section, SectionText};

fn no_atoms(items: &[Item]) {
    for item in items {
        match item {
            Item::Atom => panic!("an atom where NIL, a number, a string or a list belongs"),
            Item::List(inner) => no_atoms(inner),
            _ => {}
        }
    }
}

fn nstring(item: &Item) -> bool {
    matches!(item, Item::Nil | Item::String(_))
}

fn check_envelope(env: &[u8]) {
    let fields = parse_list(env);
    assert_eq!(fields.len(), 10, "ENVELOPE has 10 fields");
    for (i, f) in fields.iter().enumerate() {
        match i {
            2..=7 => match f {
                Item::Nil => {}
                Item::List(addresses) => {
                    assert!(!addresses.is_empty(), "an empty address list must be NIL");
                    for a in addresses {
                        let Item::List(parts) = a else { panic!("address is not a list") };
                        assert_eq!(parts.len(), 4, "an address has 4 fields");
                        assert!(parts.iter().all(nstring));
                    }
                }
                _ => panic!("address field {i} is neither NIL nor a list"),
            },
            _ => assert!(nstring(f), "envelope field {i} is not an nstring"),
        }
    }
}

fn section(part: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: part.to_vec(),
        text,
    }
}

fuzz_target!(|raw: &[u8]| {
    let data = to_crlf(raw);
    assert_eq!(data.len() as u64, crlf_len(raw));
    assert!(
        data.iter().enumerate().all(|(i, &b)| b != b'\n' || (i > 0 && data[i - 1] == b'\r')),
        "a bare LF left by to_crlf"
    );
    let msg = Message::parse(&data);
    assert!(data.starts_with(msg.header()) && data.ends_with(msg.text()));
    assert_eq!(msg.header().len() + msg.text().len(), data.len());

    let mut env = Vec::new();
    msg.write_envelope(&mut env);
    check_envelope(&env);
    // ENVELOPE from the header alone, as FETCH builds it when it need not read the body.
    let mut env_header_only = Vec::new();
    Message::header_only(&data).write_envelope(&mut env_header_only);
    assert_eq!(env, env_header_only, "ENVELOPE differs when only the header is read");

    for extensible in [false, true] {
        let mut bs = Vec::new();
        msg.write_body_structure(&mut bs, extensible);
        let items = parse_list(&bs);
        assert!(!items.is_empty());
        no_atoms(&items);
    }

    let whole = msg.section(&section(&[], None)).expect("BODY[] exists");
    assert_eq!(whole.as_ref(), Message::literal_bytes(&data).as_ref());
    let header = msg.section(&section(&[], Some(SectionText::Header))).expect("BODY[HEADER]");
    let text = msg.section(&section(&[], Some(SectionText::Text))).expect("BODY[TEXT]");
    assert_eq!(header.len() + text.len(), data.len());
    let fields = msg.section(&section(
        &[],
        Some(SectionText::HeaderFields(vec![b"From".to_vec(), b"Subject".to_vec()])),
    ));
    assert!(fields.is_some_and(|f| f.len() <= header.len() + 2));
    let _ = msg.section(&section(&[], Some(SectionText::HeaderFieldsNot(vec![b"Received".to_vec()]))));
    for part in [&[1][..], &[2], &[1, 1], &[1, 2], &[2, 1], &[1, 1, 1], &[3]] {
        for text in [None, Some(SectionText::Mime), Some(SectionText::Header), Some(SectionText::Text)] {
            if let Some(bytes) = msg.section(&section(part, text)) {
                assert!(bytes.len() <= data.len());
            }
        }
        let _ = msg.binary(part);
    }
    let _ = msg.binary(&[]);

    assert!(msg.preview().chars().count() <= 200);
    let _ = msg.sent_date();
    let _ = msg.header_decoded(b"Subject");
    let _ = msg.header_values(b"Received");
});
