//! SEARCH matching: the fuzz input's first line is parsed as the arguments of
//! a SEARCH command by the real parser (any key, CHARSET, nesting), and the
//! rest is the message it is matched against, in the session's two steps
//! (`session::match_message`: first on what the view knows — flags,
//! keywords, UID, sequence number — then with the parsed and decoded
//! message). Checks that a verdict reached without the message is the one
//! reached with it, that with the message every key is decided, and that
//! NOT and OR agree with the verdict (as three-valued logic must).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mdimap::message::to_crlf;
use mdimap::protocol::command::{CommandBody, Date, SearchKey};
use mdimap::protocol::framing::Fragment;
use mdimap::protocol::parser::parse_command;
use mdimap::session::{MessageFacts, match_message};

fuzz_target!(|data: &[u8]| {
    let (args, raw) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut line = b"a SEARCH ".to_vec();
    line.extend_from_slice(args);
    let Ok(command) = parse_command(vec![Fragment::Line(line)]) else {
        return;
    };
    let CommandBody::Search { charset, criteria, .. } = command.body else {
        panic!("a SEARCH line parsed as another command");
    };
    let message = to_crlf(raw);
    let keywords = vec!["$Forwarded".to_string(), "Work".to_string()];
    let facts = MessageFacts {
        uid: 7,
        seq: 3,
        flags: b"FS",
        keywords: &keywords,
        recent: true,
        internal_time: 1_700_000_000,
        name: "1700000000.M1P2.fuzz,S=1234:2,FS",
        saved: Date { year: 2023, month: 11, day: 14 },
        max_uid: 10,
        exists: 5,
        saved_uids: &[2, 7],
        now: 1_700_000_600,
    };
    let charset = charset.as_deref();
    let Ok((first, full)) = match_message(&message, charset, &criteria, &facts) else {
        return;
    };
    let full = full.expect("with the message every key is decided");
    if let Some(first) = first {
        assert_eq!(first, full, "the verdict without the message differs from the one with it");
    }
    let not = SearchKey::Not(Box::new(criteria.clone()));
    let (not_first, not_full) = match_message(&message, charset, &not, &facts).expect("compiled once");
    assert_eq!(not_full, Some(!full), "NOT does not negate");
    assert_eq!(not_first, first.map(|v| !v), "NOT decides without the message differently");
    let or = SearchKey::Or(Box::new(criteria.clone()), Box::new(not));
    let (_, or_full) = match_message(&message, charset, &or, &facts).expect("compiled once");
    assert_eq!(or_full, Some(true), "k OR NOT k is not true");
});
