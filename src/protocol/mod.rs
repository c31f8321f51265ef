//! The IMAP protocol layer: bytes to commands and commands' arguments, and the
//! encoding of response strings. It knows nothing of files, users or sessions.

pub mod base64;
pub mod chars;
pub mod command;
pub mod datetime;
pub mod encode;
pub mod framing;
pub mod mutf7;
pub mod parser;
pub mod response;
pub mod sequence;

#[cfg(test)]
mod robustness {
    //! Deterministic random input through every entry point of the layer:
    //! anything a client sends must give a value or an error, never a
    //! panic. (A stable-toolchain stand-in for a coverage-guided fuzzer.)

    use super::framing::{CommandReader, FrameError, Limits};
    use super::{base64, datetime, mutf7, parser::parse_command};

    #[test]
    fn random_commands_never_panic() {
        let mut seed: u64 = 0x1234_5678_9abc_def0;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces: &[&[u8]] = &[
            b"a ",
            b"FETCH ",
            b"1:*",
            b" ",
            b"(",
            b")",
            b"BODY[",
            b"]",
            b"1.2",
            b".HEADER.FIELDS",
            b" (From)",
            b"<0.5>",
            b"{3}\r\n",
            b"{2+}\r\n",
            b"~{1}\r\n",
            b"\"",
            b"\\",
            b"SEARCH ",
            b"OR ",
            b"NOT ",
            b"UID ",
            b"APPEND ",
            b"LOGIN ",
            b"x",
            b"\r\n",
            b"\n",
            b"STORE ",
            b"+FLAGS ",
            b"\\Seen",
            b"*",
            b"%",
            b"&",
            b"-",
            b"\xc3\xa9",
            b"\0",
            b"ID ",
            b"NIL",
            b"STATUS ",
            b"AUTHENTICATE ",
            b"=",
            b"1-Feb-1994 ",
            b"CHARSET ",
        ];
        for _ in 0..30_000 {
            let mut input = Vec::new();
            for _ in 0..(rnd() % 12) {
                input.extend_from_slice(pieces[(rnd() % pieces.len() as u64) as usize]);
            }
            input.extend_from_slice(b"\r\n");
            let limits = Limits {
                max_line: 40,
                max_literal: 8,
                max_command: 60,
            };
            let mut r = CommandReader::new(&input[..], limits);
            loop {
                match r.read_command(&mut std::io::sink()) {
                    Ok(f) => {
                        let _ = parse_command(f);
                    }
                    Err(FrameError::Io(_)) => break,
                    Err(_) => {}
                }
            }
            let _ = mutf7::decode(&input);
            let _ = datetime::parse_date_time(&input);
            let _ = datetime::parse_search_date(&input);
            let _ = base64::decode(&input);
        }
    }
}
