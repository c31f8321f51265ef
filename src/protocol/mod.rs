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
    //! Deterministic random input through every entry point of the layer (a
    //! stable-toolchain stand-in for a coverage-guided fuzzer). Not panicking
    //! is the least of it: each answer is checked for what the session relies
    //! on. Every command a client sends gets exactly one outcome from the
    //! reader, a frame or a framing error, so exactly one tagged reply; a frame
    //! is the command as the client sent it, refused only when over a limit;
    //! a parsed command (or a syntax error's reply) carries the tag the client
    //! wrote; after any error the reader is at the next command, so the
    //! well-formed command sent last comes out whole; and a decoder's answer
    //! encodes back to its input.

    use super::chars::is_tag_char;
    use super::command::CommandBody;
    use super::framing::{CommandReader, Fragment, FrameError, Limits};
    use super::parser::parse_command;
    use super::{base64, datetime, mutf7};
    use std::cell::Cell;
    use std::collections::VecDeque;
    use std::io::{self, Read, Write};
    use std::rc::Rc;

    /// xorshift64: the same sequence on every run, so a failure reproduces.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// Pieces of command lines: the grammar's tokens and the characters it
    /// treats specially, none of which ends a line or announces a literal (the
    /// generator adds those itself, so that it knows where commands end).
    const PIECES: &[&[u8]] = &[
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
        b"{3",
        b"2+}x",
        b"~",
        b"\"",
        b"\\",
        b"SEARCH ",
        b"OR ",
        b"NOT ",
        b"UID ",
        b"APPEND ",
        b"LOGIN ",
        b"x",
        b"\r",
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

    const LIMITS: Limits = Limits {
        max_line: 40,
        max_literal: 8,
        max_command: 60,
    };

    /// The `+` line a synchronizing literal gets (framing.rs).
    const CONTINUATION: &[u8] = b"+ Ready for literal data\r\n";

    /// What a client sends for one command, in order.
    enum Chunk {
        /// Sent at once: a line with its line end, or a non-synchronizing
        /// literal's octets.
        Send(Vec<u8>),
        /// A synchronizing literal's octets: sent only after a continuation.
        /// A client that gets a reply instead (the literal was refused) drops
        /// the rest of its command and goes on with the next one.
        AfterContinuation(Vec<u8>),
    }

    /// A client following the protocol from a script of commands: it holds a
    /// synchronizing literal back until the reader writes a continuation to
    /// `granted`. A reader that reads on without asking gets the next
    /// command's bytes, and the counts and frames checked below go wrong.
    /// Reads return at most `piece` bytes (varied per read), as a network
    /// does, so lines and literals arrive split at every possible point.
    struct ScriptedClient {
        commands: VecDeque<VecDeque<Chunk>>,
        granted: Rc<Cell<usize>>,
        piece: Box<dyn FnMut() -> usize>,
    }

    impl Read for ScriptedClient {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            loop {
                let Some(command) = self.commands.front_mut() else {
                    return Ok(0);
                };
                let bytes = match command.front_mut() {
                    None => {
                        self.commands.pop_front();
                        continue;
                    }
                    Some(Chunk::Send(bytes)) => {
                        assert_eq!(self.granted.get(), 0, "a continuation nobody asked for");
                        bytes
                    }
                    Some(Chunk::AfterContinuation(bytes)) => {
                        if self.granted.get() == 0 {
                            self.commands.pop_front();
                            continue;
                        }
                        self.granted.set(self.granted.get() - 1);
                        let data = std::mem::take(bytes);
                        *command.front_mut().unwrap() = Chunk::Send(data);
                        continue;
                    }
                };
                let n = bytes.len().min(buf.len()).min((self.piece)());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                if bytes.is_empty() {
                    command.pop_front();
                }
                if n > 0 {
                    return Ok(n);
                }
            }
        }
    }

    /// Counts the continuation requests the reader writes.
    struct Continuations(Rc<Cell<usize>>);

    impl Write for Continuations {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            assert_eq!(buf, CONTINUATION, "only whole continuation requests");
            self.0.set(self.0.get() + 1);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// One random command: what the client sends, and the frame the reader
    /// must return for it if it is within the limits.
    fn random_command(rnd: &mut impl FnMut() -> u64) -> (VecDeque<Chunk>, Vec<Fragment>) {
        let mut chunks = VecDeque::new();
        let mut frame = Vec::new();
        let lines = 1 + rnd() % 3;
        for i in 0..lines {
            let mut line = Vec::new();
            for _ in 0..(rnd() % 10) {
                line.extend_from_slice(PIECES[(rnd() % PIECES.len() as u64) as usize]);
            }
            // A final CR would be taken for part of the line end.
            while line.last() == Some(&b'\r') {
                line.pop();
            }
            let literal = (i + 1 < lines).then(|| {
                let size = (rnd() % 12) as usize;
                let data: Vec<u8> = (0..size).map(|_| rnd() as u8).collect();
                let (prefix, suffix, sync) = match rnd() % 3 {
                    // Also on a line dropped for its length: the client
                    // sends the LITERAL+ octets anyway, and the reader must
                    // skip them rather than take them for a command.
                    0 => ("{", "+}", false),
                    1 => ("~{", "}", true),
                    _ => ("{", "}", true),
                };
                line.extend_from_slice(format!("{prefix}{size}{suffix}").as_bytes());
                (data, sync)
            });
            frame.push(Fragment::Line(line.clone()));
            // Bare LF is accepted as a line end too.
            line.extend_from_slice(if rnd().is_multiple_of(8) {
                b"\n"
            } else {
                b"\r\n"
            });
            chunks.push_back(Chunk::Send(line));
            if let Some((data, sync)) = literal {
                frame.push(Fragment::Literal(data.clone()));
                chunks.push_back(if sync {
                    Chunk::AfterContinuation(data)
                } else {
                    Chunk::Send(data)
                });
            }
        }
        (chunks, frame)
    }

    /// Whether the reader must take this frame: no line or literal over its
    /// limit, and the whole command within its own.
    fn within_limits(frame: &[Fragment]) -> bool {
        let mut total = 0;
        for fragment in frame {
            match fragment {
                Fragment::Line(l) if l.len() > LIMITS.max_line => return false,
                Fragment::Literal(d) if d.len() > LIMITS.max_literal => return false,
                Fragment::Line(x) | Fragment::Literal(x) => total += x.len(),
                Fragment::Spooled(_) => unreachable!("the reader here has no spool"),
            }
        }
        total <= LIMITS.max_command
    }

    /// A copy of a frame (the parser takes its frame by value).
    fn copy(frame: &[Fragment]) -> Vec<Fragment> {
        frame
            .iter()
            .map(|f| match f {
                Fragment::Line(l) => Fragment::Line(l.clone()),
                Fragment::Literal(d) => Fragment::Literal(d.clone()),
                Fragment::Spooled(_) => unreachable!("the reader here has no spool"),
            })
            .collect()
    }

    /// The tag characters a command's first line starts with.
    fn tag_prefix(frame: &[Fragment]) -> &[u8] {
        let Some(Fragment::Line(first)) = frame.first() else {
            panic!("a command must start with a line: {frame:?}");
        };
        let n = first
            .iter()
            .position(|&b| !is_tag_char(b))
            .unwrap_or(first.len());
        &first[..n]
    }

    /// A parsed command's tag is the first token of its first line; a syntax
    /// error is tagged with the tag characters the line starts with, or
    /// untagged (`* BAD`) when it starts with none.
    fn check_parse(frame: &[Fragment]) {
        let prefix = tag_prefix(frame);
        match parse_command(copy(frame)) {
            Ok(cmd) => {
                let Some(Fragment::Line(first)) = frame.first() else {
                    unreachable!("tag_prefix checked it");
                };
                let first_token = first.split(|&b| b == b' ').next().unwrap_or_default();
                assert_eq!(cmd.tag.as_bytes(), first_token, "{frame:?}");
                assert_eq!(cmd.tag.as_bytes(), prefix, "{frame:?}");
            }
            Err(e) => match &e.tag {
                Some(tag) => assert_eq!(tag.as_bytes(), prefix, "{e:?}: {frame:?}"),
                None => assert!(prefix.is_empty(), "{e:?}: {frame:?}"),
            },
        }
    }

    #[test]
    fn random_commands_get_one_outcome_each_and_leave_the_reader_in_sync() {
        let mut rnd = xorshift(0x1234_5678_9abc_def0);
        let (mut refused, mut taken) = (0, 0);
        for _ in 0..10_000 {
            let mut commands = VecDeque::new();
            let mut expected = Vec::new();
            for _ in 0..(1 + rnd() % 3) {
                let (chunks, frame) = random_command(&mut rnd);
                commands.push_back(chunks);
                expected.push(frame);
            }
            let sentinel = vec![Fragment::Line(b"zz9 NOOP".to_vec())];
            commands.push_back(VecDeque::from([Chunk::Send(b"zz9 NOOP\r\n".to_vec())]));
            expected.push(copy(&sentinel));

            let granted = Rc::new(Cell::new(0));
            // Whole chunks for one script in four, pieces of 1 to 50 bytes otherwise.
            let mut split = xorshift(rnd() | 1);
            let whole = rnd().is_multiple_of(4);
            let client = ScriptedClient {
                commands,
                granted: granted.clone(),
                piece: Box::new(move || {
                    if whole {
                        usize::MAX
                    } else {
                        1 + (split() % 50) as usize
                    }
                }),
            };
            let mut reader = CommandReader::new(client, LIMITS);
            let mut continuations = Continuations(granted);
            for (n, sent) in expected.iter().enumerate() {
                let outcome = reader.read_command(&mut continuations);
                match outcome {
                    Ok(frame) => {
                        assert_eq!(&frame, sent, "command {n} of {expected:?}");
                        assert!(within_limits(sent), "taken over a limit: {sent:?}");
                        check_parse(&frame);
                        taken += 1;
                    }
                    Err(
                        FrameError::LineTooLong { tag } | FrameError::LiteralTooBig { tag, .. },
                    ) if !within_limits(sent) => {
                        // A command that starts with a tag gets its BAD under
                        // that tag, so the client is not left waiting. (One
                        // without a tag may get a word of a later line as its
                        // tag today; only a command with a tag is checked.)
                        let own = match sent.first() {
                            Some(Fragment::Line(l)) => l.split(|&b| b == b' ').next(),
                            _ => None,
                        }
                        .filter(|t| !t.is_empty() && t.iter().all(|&b| is_tag_char(b)));
                        if let Some(own) = own {
                            assert_eq!(tag.as_deref(), Some(own), "command {n} of {expected:?}");
                        }
                        refused += 1;
                    }
                    Err(e) => panic!("command {n} of {expected:?}: {e}"),
                }
            }
            // One outcome per command: nothing is left over to be read as another.
            assert!(
                matches!(reader.read_command(&mut continuations), Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof),
                "more outcomes than commands for {expected:?}"
            );
            let cmd = parse_command(sentinel).unwrap();
            assert_eq!((cmd.tag.as_str(), cmd.body), ("zz9", CommandBody::Noop));
        }
        // Both outcomes are common, so neither check is idle.
        assert!(refused > 1000 && taken > 10_000, "{refused} {taken}");
    }

    #[test]
    fn decoders_answer_with_what_encodes_back() {
        let mut rnd = xorshift(0x0ddb_a11c_afe5_eed5);
        let chars = [
            'a',
            'Z',
            ' ',
            '&',
            '-',
            '~',
            '\u{e9}',
            '\u{65e5}',
            '\u{1f600}',
            '\u{7f}',
        ];
        for _ in 0..30_000 {
            // Random junk: whatever a decoder accepts must be the one spelling
            // (modified UTF-7 is strict) or survive a round trip (base64 is a
            // little lenient, so only the bytes must come back).
            let mut junk = Vec::new();
            for _ in 0..(rnd() % 8) {
                junk.extend_from_slice(PIECES[(rnd() % PIECES.len() as u64) as usize]);
            }
            if let Some(name) = mutf7::decode(&junk) {
                assert_eq!(mutf7::encode(&name).as_bytes(), &junk[..]);
            }
            if let Some(bytes) = base64::decode(&junk) {
                assert_eq!(
                    base64::decode(base64::encode(&bytes).as_bytes()),
                    Some(bytes)
                );
            }
            if let Some(t) = datetime::parse_date_time(&junk) {
                let again = datetime::format_date_time(t, 0);
                assert_eq!(datetime::parse_date_time(again.as_bytes()), Some(t));
            }
            if let Some(d) = datetime::parse_search_date(&junk) {
                assert!(
                    (1..=12).contains(&d.month) && (1..=31).contains(&d.day),
                    "{d:?}"
                );
            }

            // Random valid values: encoding then decoding gives them back.
            let name: String = (0..rnd() % 8)
                .map(|_| chars[(rnd() % chars.len() as u64) as usize])
                .collect();
            assert_eq!(mutf7::decode(mutf7::encode(&name).as_bytes()), Some(name));
            let bytes: Vec<u8> = (0..rnd() % 10).map(|_| rnd() as u8).collect();
            assert_eq!(
                base64::decode(base64::encode(&bytes).as_bytes()),
                Some(bytes)
            );
            // 1970 to about 2106, at any offset within ±23:59.
            let t = i64::from(rnd() as u32);
            let offset = (rnd() % (2 * 86_340 + 1)) as i32 - 86_340;
            let offset = offset - offset % 60;
            let text = datetime::format_date_time(t, offset);
            assert_eq!(
                datetime::parse_date_time(text.as_bytes()),
                Some(t),
                "{text}"
            );
        }
    }
}
