//! Commands after login as the session reads them: `Io::next_command`
//! (line and literal framing, LITERAL+ and literal8, the size limits, large
//! literals spooled to a file as the session spools APPEND data, then the
//! command parser for every command of the authenticated and selected
//! states). The limits are small so the fuzzer reaches them; the code is
//! the same for any limits. Checks that every command comes out with a
//! valid tag, that a spooled APPEND message holds exactly its announced
//! octets, that the reader ends (at most one outcome per input byte), and
//! that the rejections it writes are whole CRLF lines.

#![no_main]

use fuzz_support::{check_lines, io_over};
use libfuzzer_sys::fuzz_target;
use mdimap::conn::Incoming;
use mdimap::protocol::chars::is_tag_char;
use mdimap::protocol::command::{CatPart, CommandBody, MessageData};
use mdimap::protocol::framing::Limits;
use std::io::{Read, Seek};

/// The session's limits have the same shape (`server::session_limits`: a
/// command is one literal and four lines), scaled down.
const LIMITS: Limits = Limits {
    max_line: 512,
    max_literal: 4096,
    max_command: 4096 + 4 * 512,
};

/// Literals larger than this go to a file.
const SPOOL_THRESHOLD: usize = 64;

fn check_data(data: &MessageData) {
    if let MessageData::Spooled(spool) = data {
        assert!(spool.len > SPOOL_THRESHOLD as u64);
        let mut file = &spool.file;
        let start = file.stream_position().expect("spool position");
        let mut octets = Vec::new();
        file.read_to_end(&mut octets).expect("spool read");
        assert_eq!(octets.len() as u64, spool.len, "spool at {start} holds other than its literal");
    }
}

fuzz_target!(|data: &[u8]| {
    let (mut io, out) = io_over(data, LIMITS);
    io.set_spool(SPOOL_THRESHOLD, Box::new(tempfile::tempfile));
    let mut outcomes = 0usize;
    loop {
        match io.next_command(false) {
            Incoming::Command(command) => {
                assert!(
                    !command.tag.is_empty() && command.tag.bytes().all(is_tag_char),
                    "tag {:?}",
                    command.tag
                );
                if let CommandBody::Append { messages, .. } = &command.body {
                    for m in messages {
                        check_data(&m.message);
                        for part in m.catenate.iter().flatten() {
                            if let CatPart::Text(d) = part {
                                check_data(d);
                            }
                        }
                    }
                }
            }
            Incoming::Rejected => {}
            Incoming::ProxyHeader => panic!("PROXY detection is off after login"),
            Incoming::Closed(_) => break,
        }
        outcomes += 1;
        assert!(outcomes <= data.len() + 1, "more commands than input bytes");
    }
    let _ = io.flush();
    drop(io);
    check_lines(&out.0.borrow());
});
