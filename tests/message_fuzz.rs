//! The MIME parser, ENVELOPE and BODYSTRUCTURE never panic and always give a
//! well-formed IMAP answer (issue 9, point 7): a seeded random and mutation
//! test of 100,000 messages.
//!
//! Each case is a message of tests/corpus/ put through a few mutations (byte
//! changes, inserted, deleted and repeated spans, two messages spliced,
//! boundary lines and `--` inserted, header folds made and undone, NUL, bare
//! CR and LF, long lines and names, wrapping in up to 120 levels of
//! multipart or message/rfc822, truncation), or a message generated from a
//! random MIME tree, or now and then a multipart past the parser's limit of
//! 10,000 parts. For each, mdimap's `message` layer parses it and writes
//! ENVELOPE, BODYSTRUCTURE and BODY, and cuts BODY[] with HEADER, TEXT and
//! HEADER.FIELDS[.NOT], and for every part the BODYSTRUCTURE names BODY[n],
//! n.MIME (and n.HEADER, n.TEXT, n.HEADER.FIELDS[.NOT] of a message/rfc822),
//! some part numbers that do not exist, and partial ranges of each. The FETCH
//! response session/fetch.rs would write from them is then read by a strict
//! reader of RFC 3501's grammar (quoted strings of 7-bit TEXT-CHARs with only
//! `\"` and `\\` escaped, literals whose length is right and that hold no NUL,
//! NIL, 32-bit numbers, single spaces), and the shapes are checked: ENVELOPE
//! has ten fields, its address lists are 4-tuples with groups opened and
//! closed, every body part has the fields its type needs, BODY is
//! BODYSTRUCTURE without extension data, each part's size and line count are
//! those of its BODY[n], and HEADER.FIELDS with HEADER.FIELDS.NOT of the same
//! names give back the whole header.
//!
//! Every case has its own generator state, derived from the seed and its
//! number: a failure prints both, writes the input to the target's tmp dir,
//! and `MDIMAP_FUZZ_REPLAY=<seed>:<case>` runs that one case again.
//! `MDIMAP_FUZZ_SEED` and `MDIMAP_FUZZ_CASES` run other or more cases.
//!
//! This file owns only the generator and the checker; it reads mdimap's
//! `message` layer through its public interface and nothing else.

use mdimap::message::{Message, SortKeys, body_contains, header_contains, text_contains, to_crlf};
use mdimap::protocol::command::{Section, SectionText};
use std::fmt::Write as _;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

/// The seed CI runs with.
const SEED: u64 = 0x6d64_696d_6170_0009;
/// Cases CI runs, spread over [`SHARDS`] tests so that they share the cores.
const CASES: u64 = 100_000;
const SHARDS: u64 = 4;
/// Largest input a case makes: mutations may grow a message, and the test
/// is about shapes, not sizes (tests/corpus_dovecot.rs has a 5 MiB one).
const MAX_INPUT: usize = 48 * 1024;

// ---------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, and any seed is a good one.
struct Rng(u64);

impl Rng {
    /// The generator of one case: every case can be replayed alone.
    fn for_case(seed: u64, case: u64) -> Rng {
        let mut r = Rng(seed ^ case.wrapping_mul(0xd1b5_4a32_d192_ed03));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// lo..=hi
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True `n` times in `d`.
    fn chance(&mut self, n: usize, d: usize) -> bool {
        self.below(d) < n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn one<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
        items[self.below(items.len())]
    }

    /// A small number, most often 0 or 1: sizes of things that get costly.
    fn small(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max && self.chance(1, 2) {
            n += 1;
        }
        n
    }
}

// ---------------------------------------------------------------------------
// Inputs: the corpus, mutated, or a generated MIME tree
// ---------------------------------------------------------------------------

fn corpus() -> Vec<Vec<u8>> {
    let mut names: Vec<_> = fs::read_dir(CORPUS)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    let out: Vec<Vec<u8>> = names.iter().map(|p| fs::read(p).unwrap()).collect();
    assert!(out.len() >= 80, "tests/corpus has {} messages", out.len());
    out
}

/// Pieces worth inserting: MIME and RFC 5322 syntax, line ends, bytes a
/// parser may trip on.
const TOKENS: &[&[u8]] = &[
    b"--",
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"\r\n\r\n",
    b"\n\n",
    b" ",
    b"\t",
    b"\r\n ",
    b"\r\n\t",
    b"\n ",
    b"\"",
    b"\\",
    b"\\\"",
    b"(",
    b")",
    b"((",
    b"<",
    b">",
    b"@",
    b",",
    b",,",
    b";",
    b":",
    b"=",
    b"'",
    b"''",
    b"*",
    b"*0*=",
    b"*1=",
    b"%",
    b"%e2%8",
    b"[",
    b"]",
    b".",
    b"=?",
    b"?=",
    b"=?utf-8?q?",
    b"=?iso-8859-1?b?",
    b"=?x?q?=00=ff?=",
    b"=\r\n",
    b"\xff",
    b"\x80",
    b"\xc3\xa9",
    b"\xe2\x82",
    b"{5}\r\n",
    b"NIL",
    b"Content-Type: multipart/mixed; boundary=",
    b"Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n",
    b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: text/plain; charset=\"utf-8\"\r\n",
    b"Content-Type: ",
    b"Content-Type: multipart/",
    b"MIME-Version: 1.0\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%e2%82; filename*1=x\r\n",
    b"Content-Disposition: inline (c\r\n",
    b"Content-Language: en, (c) de\r\n",
    b"Content-ID: <a@b>\r\n",
    b"Content-Location: \"x\r\n y\"\r\n",
    b"From: ",
    b"To: a@b, g: c@d, e@f;, <@r,@s:x@y>\r\n",
    b"Cc: undisclosed-recipients:;\r\n",
    b"Subject: ",
    b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n",
    b"boundary=",
    b"boundary=\"\"",
    b"charset=",
    b"name*=",
];

/// Media types the generator and mutations use.
const TYPES: &[&str] = &[
    "text/plain",
    "text/html",
    "TEXT/PLAIN",
    "text/x-unknown",
    "application/octet-stream",
    "image/png",
    "message/rfc822",
    "Message/RFC822",
    "message/global",
    "message/partial",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/digest",
    "multipart/related",
    "multipart/x-odd",
    "multipart",
    "multipart/",
    "text",
    "/plain",
    "",
    "x/y/z",
    "text/plain(c)",
    "\"text/plain\"",
];

/// The boundary parameters in `data`, as a mutation may reuse them.
fn boundaries(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let lower = data.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = find(&lower[from..], b"boundary=") {
        let start = from + i + b"boundary=".len();
        let rest = &data[start..];
        let value: Vec<u8> = if rest.first() == Some(&b'"') {
            rest[1..]
                .iter()
                .take_while(|&&b| b != b'"')
                .copied()
                .collect()
        } else {
            rest.iter()
                .take_while(|&&b| !matches!(b, b';' | b'\r' | b'\n' | b' ' | b'\t'))
                .copied()
                .collect()
        };
        if value.len() <= 100 {
            out.push(value);
        }
        from = start;
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Starts of the lines of `data`.
fn line_starts(data: &[u8]) -> Vec<usize> {
    let mut out = vec![0];
    out.extend(
        data.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .filter(|&i| i < data.len()),
    );
    out
}

/// Where the top-level header ends (the first empty line), or the end.
fn header_len(data: &[u8]) -> usize {
    find(data, b"\n\r\n")
        .map(|i| i + 1)
        .into_iter()
        .chain(find(data, b"\n\n").map(|i| i + 1))
        .min()
        .unwrap_or(data.len())
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next() as u8).collect()
}

/// One mutation of `data`; `other` is a second message for splicing.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    let at = rng.below(len + 1);
    match rng.below(17) {
        // Bytes changed.
        0 => {
            for _ in 0..rng.range(1, 4) {
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
            }
        }
        1 => {
            if !data.is_empty() {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
        }
        // A syntax piece, or random bytes, inserted.
        2 | 3 => {
            let token = *rng.pick(TOKENS);
            data.splice(at..at, token.iter().copied());
        }
        4 => {
            let n = rng.range(1, 16);
            let bytes = random_bytes(rng, n);
            data.splice(at..at, bytes);
        }
        // A span deleted, or repeated elsewhere.
        5 => {
            let n = rng.range(1, 64).min(len - at.min(len));
            data.drain(at..at + n);
        }
        6 => {
            let n = rng.range(1, 256).min(len - at.min(len));
            let span = data[at..at + n].to_vec();
            let to = rng.below(len + 1);
            data.splice(to..to, span);
        }
        // Two messages spliced: a head of one and a tail of the other, or
        // one inside the other.
        7 => {
            let from = rng.below(other.len() + 1);
            if rng.chance(1, 2) {
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            } else {
                let n = rng.below(other.len() - from + 1).min(4096);
                data.splice(at..at, other[from..from + n].iter().copied());
            }
        }
        // A delimiter line of a boundary the message has (or a near miss)
        // at a line start.
        8 => {
            let found = boundaries(data);
            let b = if found.is_empty() || rng.chance(1, 8) {
                b"b".to_vec()
            } else {
                rng.pick(&found).clone()
            };
            let starts = line_starts(data);
            let at = *rng.pick(&starts);
            let mut line = b"--".to_vec();
            line.extend_from_slice(&b);
            match rng.below(6) {
                0 => line.extend_from_slice(b"--"),
                1 => line.extend_from_slice(b"  \t"),
                2 => line.extend_from_slice(b"x"),
                3 => {
                    line.pop();
                }
                _ => {}
            }
            line.extend_from_slice(rng.one(&[&b"\r\n"[..], b"\n", b"\r\n\r\n", b""]));
            if rng.chance(1, 3) {
                line.extend_from_slice(b"Content-Type: ");
                line.extend_from_slice(rng.pick(TYPES).as_bytes());
                line.extend_from_slice(b"; boundary=");
                line.extend_from_slice(&b);
                line.extend_from_slice(b"\r\n\r\n");
            }
            data.splice(at..at, line);
        }
        // Header folding made or undone.
        9 => {
            let h = header_len(data);
            let at = rng.below(h + 1);
            let fold: &[u8] = rng.one(&[&b"\r\n "[..], b"\r\n\t", b"\n ", b"\r\n  \r\n ", b"\r\n"]);
            data.splice(at..at, fold.iter().copied());
        }
        10 => {
            let h = header_len(data);
            if let Some(i) = find(&data[..h], b"\r\n ").or_else(|| find(&data[..h], b"\n\t")) {
                let n = if data[i] == b'\r' { 2 } else { 1 };
                data.drain(i..i + n);
            }
        }
        // NULs.
        11 => {
            for _ in 0..rng.range(1, 3) {
                let i = rng.below(data.len() + 1);
                if i < data.len() && rng.chance(1, 2) {
                    data[i] = 0;
                } else {
                    data.insert(i, 0);
                }
            }
        }
        // Line ends: a CRLF made bare CR, bare LF or LF CR.
        12 => {
            let starts = line_starts(data);
            let s = *rng.pick(&starts);
            if s >= 2 && data[s - 2] == b'\r' {
                match rng.below(3) {
                    0 => {
                        data.remove(s - 2);
                    }
                    1 => {
                        data.remove(s - 1);
                    }
                    _ => data.swap(s - 2, s - 1),
                }
            } else {
                data.insert(at, *rng.pick(b"\r\n"));
            }
        }
        // A long line, or a field name longer than 1000 octets.
        13 => {
            let n = rng.range(100, 1500);
            let mut long = vec![*rng.pick(b"x =-\"("); n];
            if rng.chance(1, 2) {
                long.extend_from_slice(b": v\r\n");
            }
            let starts = line_starts(data);
            let s = *rng.pick(&starts);
            data.splice(s..s, long);
        }
        // Wrapped in levels of message/rfc822 or multipart.
        14 => {
            let levels = if rng.chance(1, 16) {
                rng.range(90, 120)
            } else {
                rng.range(1, 6)
            };
            wrap(rng, data, levels);
        }
        // Cut short.
        15 => data.truncate(at),
        // A span's case changed (boundaries are case-sensitive, names not).
        _ => {
            let n = rng.range(1, 40).min(len - at.min(len));
            for b in &mut data[at..at + n] {
                if b.is_ascii_lowercase() {
                    b.make_ascii_uppercase();
                } else {
                    b.make_ascii_lowercase();
                }
            }
        }
    }
}

/// Wraps `data` in `levels` of message/rfc822 or one-part multiparts, some
/// closed, some with the same boundary as the level around them.
fn wrap(rng: &mut Rng, data: &mut Vec<u8>, levels: usize) {
    // Every level holds all that is inside it, so a deep wrapping costs
    // its depth times its content: keep that small.
    if levels > 10 {
        data.truncate(rng.below(600));
    }
    let mut head = Vec::new();
    let mut tail = Vec::new();
    for level in 0..levels {
        if rng.chance(1, 2) {
            head.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        } else {
            let b = if rng.chance(1, 4) {
                "w".to_string()
            } else {
                format!("w{level}")
            };
            head.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary={b}\r\n\r\n--{b}\r\n").as_bytes(),
            );
            if rng.chance(3, 4) {
                let mut close = format!("\r\n--{b}--\r\n").into_bytes();
                close.extend_from_slice(&tail);
                tail = close;
            }
        }
    }
    let mut out = head;
    out.extend_from_slice(data);
    out.extend_from_slice(&tail);
    *data = out;
}

/// A random display name, local part, domain or phrase piece.
fn word(rng: &mut Rng) -> Vec<u8> {
    let w: &[u8] = rng.one(&[
        &b"joe"[..],
        b"Mary",
        b"a.b",
        b"x",
        b"\"quoted \\\" name\"",
        b"\"\"",
        b"=?utf-8?q?Caf=C3=A9?=",
        b"=?iso-8859-1?b?4Q==?=",
        b"(comment)",
        b"(nested (comment))",
        b"\xc3\xa9t\xc3\xa9",
        b"example.com",
        b"[1.2.3.4]",
        b"..",
        b"\\",
        b"",
    ]);
    w.to_vec()
}

/// A random address list as a From/To/Cc value.
fn address_list(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..rng.range(0, 4) {
        if i > 0 {
            out.extend_from_slice(rng.one(&[&b", "[..], b",", b",,", b"\r\n , "]));
        }
        let local = word(rng);
        let domain = word(rng);
        match rng.below(7) {
            0 => {
                out.extend_from_slice(&word(rng));
                out.extend_from_slice(b" <");
                out.extend_from_slice(&local);
                out.push(b'@');
                out.extend_from_slice(&domain);
                out.push(b'>');
            }
            1 => {
                out.extend_from_slice(&local);
                out.push(b'@');
                out.extend_from_slice(&domain);
                if rng.chance(1, 2) {
                    out.extend_from_slice(b" (Real Name)");
                }
            }
            2 => {
                out.extend_from_slice(&word(rng));
                out.extend_from_slice(b": ");
                for j in 0..rng.range(0, 2) {
                    if j > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(&local);
                    out.push(b'@');
                    out.extend_from_slice(&domain);
                }
                if rng.chance(4, 5) {
                    out.push(b';');
                }
            }
            3 => {
                out.extend_from_slice(b"<@");
                out.extend_from_slice(&domain);
                out.extend_from_slice(b",@r:");
                out.extend_from_slice(&local);
                out.push(b'@');
                out.extend_from_slice(&domain);
                out.push(b'>');
            }
            4 => out.extend_from_slice(&local),
            5 => {
                out.extend_from_slice(b"<");
                out.extend_from_slice(&local);
            }
            _ => {
                let n = rng.range(1, 12);
                out.extend_from_slice(&random_bytes(rng, n));
            }
        }
    }
    out
}

/// A random header field value for `name`.
fn field_value(rng: &mut Rng, name: &str) -> Vec<u8> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "from" | "to" | "cc" | "bcc" | "sender" | "reply-to" => address_list(rng),
        "date" => rng
            .one(&[
                &b"Mon, 1 Jan 2024 10:00:00 +0100"[..],
                b"1 Jan 70 00:00 GMT",
                b"Fri, 31 Dec 9999 23:59:60 -2359",
                b"yesterday",
                b"",
            ])
            .to_vec(),
        "message-id" | "in-reply-to" | "references" | "content-id" => {
            let mut v = Vec::new();
            for _ in 0..rng.range(0, 3) {
                v.push(b'<');
                v.extend_from_slice(&word(rng));
                v.push(b'@');
                v.extend_from_slice(&word(rng));
                v.extend_from_slice(b"> ");
            }
            v
        }
        "content-transfer-encoding" => rng
            .one(&[
                &b"base64"[..],
                b"quoted-printable",
                b"7bit",
                b"8BIT",
                b"binary",
                b"x-uuencode",
                b"base64 (c)",
                b"",
            ])
            .to_vec(),
        "content-disposition" => {
            let mut v = rng
                .one(&[&b"attachment"[..], b"inline", b"", b"(c) form-data"])
                .to_vec();
            params(rng, &mut v);
            v
        }
        "content-language" => rng
            .one(&[&b"en"[..], b"en, de", b"en-GB (c), fr", b",", b""])
            .to_vec(),
        _ => {
            let mut v = Vec::new();
            for _ in 0..rng.range(0, 5) {
                v.extend_from_slice(&word(rng));
                v.push(b' ');
            }
            v
        }
    }
}

/// `; name=value` parameters, RFC 2231 sections among them.
fn params(rng: &mut Rng, out: &mut Vec<u8>) {
    for _ in 0..rng.small(4) {
        out.extend_from_slice(b"; ");
        let p: &[u8] = rng.one(&[
            &b"charset=utf-8"[..],
            b"charset=\"iso-8859-1\"",
            b"name=\"a b.txt\"",
            b"filename*=utf-8''%e2%82%ac.txt",
            b"filename*0=\"a\"; filename*1=b",
            b"filename*1=\"late\"",
            b"x=",
            b"=y",
            b"q=\"unterminated",
            b"e=\"\\\"\\\\\"",
            b"k=\xff\xfe",
            b"format=flowed (c)",
        ]);
        out.extend_from_slice(p);
    }
}

/// A generated entity (header and body) at `depth`.
fn entity(rng: &mut Rng, depth: usize, max_depth: usize, le: &[u8], out: &mut Vec<u8>) {
    let nested = depth < max_depth;
    let kind = loop {
        let t = *rng.pick(TYPES);
        if nested || !(t.starts_with("multipart") || t.eq_ignore_ascii_case("message/rfc822")) {
            break t;
        }
    };
    let boundary: Vec<u8> = match rng.below(8) {
        0 => b"b".to_vec(),
        1 => b"simple boundary".to_vec(),
        2 => vec![b'L'; 90],
        3 => b"".to_vec(),
        4 => b"=_'()+,-./:?".to_vec(),
        _ => format!("=_{depth}_{}", rng.below(3)).into_bytes(),
    };
    let quoted = rng.chance(2, 3);
    // Header. A chain of levels past the nesting limit costs its depth
    // times its size (each level holds the rest): little header there.
    let chain = max_depth > 10;
    let mut names: Vec<&str> = Vec::new();
    let plain = !(chain && rng.chance(7, 8));
    if plain && (depth == 0 || rng.chance(1, 4)) {
        for n in ["From", "To", "Cc", "Subject", "Date", "Message-ID"] {
            if rng.chance(2, 3) {
                names.push(n);
            }
        }
        if rng.chance(1, 4) {
            names.extend(["Sender", "Reply-To", "Bcc", "In-Reply-To", "References"]);
        }
    }
    if plain && rng.chance(1, 2) {
        names.push("MIME-Version");
    }
    for n in [
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Content-Language",
        "Content-ID",
        "Content-Description",
        "Content-MD5",
        "Content-Location",
        "X-Other",
    ] {
        if plain && rng.chance(1, 4) {
            names.push(n);
        }
    }
    let mut type_at = None;
    if rng.chance(7, 8) {
        type_at = Some(rng.below(names.len() + 1));
    }
    for i in 0..=names.len() {
        if type_at == Some(i) {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(kind.as_bytes());
            if kind.starts_with("multipart") && rng.chance(7, 8) {
                out.extend_from_slice(b"; boundary=");
                if quoted {
                    out.push(b'"');
                }
                out.extend_from_slice(&boundary);
                if quoted {
                    out.push(b'"');
                }
            }
            params(rng, out);
            out.extend_from_slice(le);
        }
        let Some(name) = names.get(i) else { break };
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        let value = field_value(rng, name);
        if rng.chance(1, 6) && value.len() > 2 {
            // Folded in the middle.
            let cut = rng.below(value.len());
            out.extend_from_slice(&value[..cut]);
            out.extend_from_slice(le);
            out.push(b'\t');
            out.extend_from_slice(&value[cut..]);
        } else {
            out.extend_from_slice(&value);
        }
        out.extend_from_slice(le);
    }
    if rng.chance(15, 16) {
        out.extend_from_slice(le);
    }
    // Body.
    if !kind.starts_with("multipart") || type_at.is_none() {
        if kind.eq_ignore_ascii_case("message/rfc822") && type_at.is_some() {
            entity(rng, depth + 1, max_depth, le, out);
        } else {
            for _ in 0..rng.small(6) {
                let line: &[u8] = rng.one(&[
                    &b"Hello, world."[..],
                    b"aGVsbG8gd29ybGQ=",
                    b"caf=C3=A9 =",
                    b"=",
                    b"\xc3\xa9\xff",
                    b"--",
                    b"--b",
                    b"",
                    b"\0",
                ]);
                out.extend_from_slice(line);
                out.extend_from_slice(le);
            }
        }
        return;
    }
    if rng.chance(1, 3) {
        out.extend_from_slice(b"preamble");
        out.extend_from_slice(le);
    }
    let parts = if chain { 1 } else { rng.range(0, 4) };
    for _ in 0..parts {
        out.extend_from_slice(b"--");
        out.extend_from_slice(&boundary);
        if rng.chance(1, 10) {
            out.extend_from_slice(b" \t");
        }
        out.extend_from_slice(le);
        entity(rng, depth + 1, max_depth, le, out);
        out.extend_from_slice(le);
    }
    if rng.chance(4, 5) {
        out.extend_from_slice(b"--");
        out.extend_from_slice(&boundary);
        out.extend_from_slice(b"--");
        out.extend_from_slice(le);
    }
    if rng.chance(1, 3) {
        out.extend_from_slice(b"epilogue");
        out.extend_from_slice(le);
    }
}

/// A message made from a random MIME tree: mostly a few levels, sometimes
/// a chain of one-part levels past the parser's nesting limit.
fn generated(rng: &mut Rng) -> Vec<u8> {
    let le: &[u8] = rng.one(&[&b"\r\n"[..], b"\r\n", b"\n"]);
    let max_depth = if rng.chance(1, 80) {
        rng.range(95, 110)
    } else {
        rng.range(0, 4)
    };
    let mut out = Vec::new();
    entity(rng, 0, max_depth, le, &mut out);
    out
}

/// A multipart of more parts than the parser makes (10,000 counting the
/// message, as Dovecot): the tree stops there, inside a part or a header,
/// and what it describes must still be well-formed. Costly, so rare.
fn past_part_limit(rng: &mut Rng) -> Vec<u8> {
    let mut m = b"Content-Type: multipart/mixed; boundary=p\r\n\r\n".to_vec();
    for _ in 0..rng.range(4_000, 10_010) {
        m.extend_from_slice(b"--p\r\n");
        m.extend_from_slice(rng.one(&[
            &b"\r\nx\r\n"[..],
            b"",
            b"Content-Type: message/rfc822\r\n\r\nSubject: s\r\n\r\nb\r\n",
            b"Content-Type: multipart/alternative; boundary=q\r\n\r\n--q\r\n\r\ny\r\n--q--\r\n",
            b"Content-Type: message/rfc822\r\n",
        ]));
    }
    if rng.chance(1, 2) {
        m.extend_from_slice(b"--p--\r\n");
    }
    m
}

/// The input of one case.
fn input(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    if rng.chance(1, 25_000) {
        return past_part_limit(rng);
    }
    let mut data = if rng.chance(1, 4) {
        generated(rng)
    } else {
        rng.pick(corpus).clone()
    };
    let mutations = if rng.chance(1, 10) {
        0
    } else {
        rng.range(1, 6)
    };
    for _ in 0..mutations {
        let other = rng.pick(corpus);
        mutate(rng, &mut data, other);
        data.truncate(MAX_INPUT);
    }
    data
}

// ---------------------------------------------------------------------------
// A strict reader of RFC 3501's response grammar, for what FETCH sends
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value<'a> {
    Nil,
    Number(u32),
    /// A literal's octets, or a quoted string's as sent (escapes kept,
    /// which no value the checks compare holds).
    Str(&'a [u8]),
    /// The items, and after each but the last whether the next one followed
    /// it without a space: only lists may be put together that way, and only
    /// where the grammar does (`1*address`, a multipart's `1*body`).
    List(Vec<Value<'a>>, Vec<bool>),
}

impl<'a> Value<'a> {
    /// The items of a list whose items are separated by single spaces.
    fn list(&self, what: &str) -> Result<&[Value<'a>], String> {
        match self {
            Value::List(items, glued) if !glued.contains(&true) => Ok(items),
            Value::List(..) => Err(format!("{what}: items without a space between: {self:?}")),
            other => Err(format!("{what}: not a list: {other:?}")),
        }
    }

    /// The items of a list of lists put together without spaces.
    fn glued_list(&self, what: &str) -> Result<&[Value<'a>], String> {
        match self {
            Value::List(items, glued) if !glued.contains(&false) => Ok(items),
            Value::List(..) => Err(format!("{what}: items with a space between: {self:?}")),
            other => Err(format!("{what}: not a list: {other:?}")),
        }
    }

    fn string(&self, what: &str) -> Result<&'a [u8], String> {
        match self {
            Value::Str(s) => Ok(*s),
            other => Err(format!("{what}: not a string: {other:?}")),
        }
    }

    fn nstring(&self, what: &str) -> Result<Option<&'a [u8]>, String> {
        match self {
            Value::Nil => Ok(None),
            Value::Str(s) => Ok(Some(*s)),
            other => Err(format!("{what}: not a string or NIL: {other:?}")),
        }
    }

    fn number(&self, what: &str) -> Result<u32, String> {
        match self {
            Value::Number(n) => Ok(*n),
            other => Err(format!("{what}: not a number: {other:?}")),
        }
    }
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, what: &str) -> Result<T, String> {
        let from = self.pos.saturating_sub(60);
        let to = (self.pos + 60).min(self.s.len());
        Err(format!(
            "byte {}: {what}; around it: {}",
            self.pos,
            shown(&self.s[from..to])
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, text: &[u8]) -> Result<(), String> {
        if self.s[self.pos..].starts_with(text) {
            self.pos += text.len();
            Ok(())
        } else {
            self.fail(&format!("expected {}", shown(text)))
        }
    }

    fn value(&mut self) -> Result<Value<'a>, String> {
        match self.peek() {
            Some(b'(') => self.list(),
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b'N') => {
                self.expect(b"NIL")?;
                Ok(Value::Nil)
            }
            Some(b'0'..=b'9') => {
                let digits = self.digits();
                match std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                {
                    Some(n) => Ok(Value::Number(n)),
                    None => self.fail("a number larger than 32 bits"),
                }
            }
            _ => self.fail("expected a value"),
        }
    }

    fn digits(&mut self) -> &[u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// `(` values separated by single spaces `)`.
    fn list(&mut self) -> Result<Value<'a>, String> {
        self.pos += 1;
        let mut items = Vec::new();
        let mut glued = Vec::new();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(Value::List(items, glued));
        }
        loop {
            let item = self.value()?;
            let was_list = matches!(item, Value::List(..));
            items.push(item);
            match self.peek() {
                Some(b'(') if was_list => glued.push(true),
                Some(b' ') => {
                    glued.push(false);
                    self.pos += 1;
                    if matches!(self.peek(), Some(b' ' | b')')) {
                        return self.fail("a space that separates nothing");
                    }
                }
                Some(b')') => {
                    self.pos += 1;
                    return Ok(Value::List(items, glued));
                }
                _ => return self.fail("expected a space or ) after a list item"),
            }
        }
    }

    /// quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR is a 7-bit TEXT-CHAR
    /// (no NUL, CR or LF) other than `"` and `\`, or `\` and one of them.
    fn quoted(&mut self) -> Result<Value<'a>, String> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return self.fail("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Value::Str(&self.s[start..self.pos - 1]));
                }
                Some(b'\\') => match self.s.get(self.pos + 1) {
                    Some(b'"' | b'\\') => self.pos += 2,
                    _ => return self.fail("a backslash before other than \" or \\"),
                },
                Some(0 | b'\r' | b'\n') => return self.fail("NUL, CR or LF in a quoted string"),
                Some(0x80..) => return self.fail("an 8-bit byte in a quoted string"),
                Some(_) => self.pos += 1,
            }
        }
    }

    /// `{n}` CRLF and n octets, none of them NUL (RFC 3501: CHAR8).
    fn literal(&mut self) -> Result<Value<'a>, String> {
        self.pos += 1;
        let digits = self.digits();
        let Some(n) = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<u32>().ok())
        else {
            return self.fail("a literal without a 32-bit length");
        };
        self.expect(b"}\r\n")?;
        let n = n as usize;
        let Some(bytes) = self.s.get(self.pos..self.pos + n) else {
            return self.fail(&format!("a literal of {n} octets runs past the end"));
        };
        if bytes.contains(&0) {
            self.pos += bytes.iter().position(|&b| b == 0).unwrap_or(0);
            return self.fail("NUL in a literal");
        }
        self.pos += n;
        Ok(Value::Str(bytes))
    }

    /// A msg-att name: `ENVELOPE`, `BODY[1.HEADER.FIELDS (A B)]<0>`...
    fn att_name(&mut self) -> Result<Vec<u8>, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
        {
            self.pos += 1;
        }
        if self.peek() == Some(b'[') {
            match self.s[self.pos..].iter().position(|&b| b == b']') {
                Some(close) => self.pos += close + 1,
                None => return self.fail("a section without ]"),
            }
            if self.peek() == Some(b'<') {
                self.pos += 1;
                if self.digits().is_empty() {
                    return self.fail("a partial origin without digits");
                }
                self.expect(b">")?;
            }
        }
        if self.pos == start {
            return self.fail("expected a FETCH item name");
        }
        Ok(self.s[start..self.pos].to_vec())
    }
}

/// Reads one complete value, all of `s`.
fn read_value(s: &[u8]) -> Result<Value<'_>, String> {
    let mut r = Reader { s, pos: 0 };
    let v = r.value()?;
    if r.pos != s.len() {
        return r.fail("text after the value");
    }
    Ok(v)
}

/// Reads `* n FETCH (name value ...)` CRLF, all of `s`.
fn read_fetch(s: &[u8]) -> Result<Vec<(Vec<u8>, Value<'_>)>, String> {
    let mut r = Reader { s, pos: 0 };
    r.expect(b"* 1 FETCH (")?;
    let mut atts = Vec::new();
    loop {
        let name = r.att_name()?;
        r.expect(b" ")?;
        atts.push((name, r.value()?));
        match r.peek() {
            Some(b' ') => r.pos += 1,
            Some(b')') => break,
            _ => return r.fail("expected a space or ) after a FETCH item"),
        }
    }
    r.expect(b")\r\n")?;
    if r.pos != s.len() {
        return r.fail("text after the response");
    }
    Ok(atts)
}

fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Shapes: ENVELOPE and body structures
// ---------------------------------------------------------------------------

/// `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
fn check_envelope(v: &Value) -> Result<(), String> {
    let fields = v.list("ENVELOPE")?;
    if fields.len() != 10 {
        return Err(format!("ENVELOPE has {} fields, not 10", fields.len()));
    }
    for (i, f) in fields.iter().enumerate() {
        match i {
            2..=7 => check_address_list(f)?,
            _ => {
                f.nstring(&format!("ENVELOPE field {}", i + 1))?;
            }
        }
    }
    Ok(())
}

/// NIL, or a list of one or more `(name adl mailbox host)`, where host NIL
/// marks a group: its start has the group's name as mailbox, its end has
/// NIL there; groups do not nest and every one is closed.
fn check_address_list(v: &Value) -> Result<(), String> {
    let addresses = match v {
        Value::Nil => return Ok(()),
        Value::List(a, _) if !a.is_empty() => v.glued_list("address list")?,
        other => return Err(format!("address list: {other:?}")),
    };
    let mut in_group = false;
    for a in addresses {
        let parts = a.list("address")?;
        let [name, adl, mailbox, host] = parts else {
            return Err(format!("an address of {} fields: {a:?}", parts.len()));
        };
        let name = name.nstring("addr-name")?;
        let adl = adl.nstring("addr-adl")?;
        let mailbox = mailbox.nstring("addr-mailbox")?;
        let host = host.nstring("addr-host")?;
        match (host, mailbox) {
            (Some(_), Some(_)) => {}
            (Some(_), None) => return Err(format!("an address with host and no mailbox: {a:?}")),
            (None, Some(_)) => {
                if in_group || name.is_some() || adl.is_some() {
                    return Err(format!(
                        "a group start inside a group or with a name: {a:?}"
                    ));
                }
                in_group = true;
            }
            (None, None) => {
                if !in_group || name.is_some() || adl.is_some() {
                    return Err(format!("a group end without its start: {a:?}"));
                }
                in_group = false;
            }
        }
    }
    if in_group {
        return Err(format!("a group never closed: {v:?}"));
    }
    Ok(())
}

/// What a body structure says of one numbered part.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartInfo {
    path: Vec<u32>,
    kind: Kind,
    octets: Option<u32>,
    lines: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Multipart,
    Message,
    Text,
    Basic,
}

/// body-fld-param: NIL or `("name" "value" ...)`, at least one pair.
fn check_params(v: &Value) -> Result<(), String> {
    match v {
        Value::Nil => Ok(()),
        Value::List(items, _) if !items.is_empty() && items.len() % 2 == 0 => {
            for i in v.list("body-fld-param")? {
                i.string("parameter")?;
            }
            Ok(())
        }
        other => Err(format!("body-fld-param: {other:?}")),
    }
}

/// body-fld-dsp, body-fld-lang, body-fld-loc: the extension data that
/// ends both kinds of part. mdimap sends all of them or (BODY) none.
fn check_common_extensions(items: &[Value]) -> Result<(), String> {
    let [dsp, lang, loc] = items else {
        return Err(format!(
            "extension data of {} fields: {items:?}",
            items.len()
        ));
    };
    match dsp {
        Value::Nil => {}
        Value::List(d, _) if d.len() == 2 => {
            dsp.list("body-fld-dsp")?;
            d[0].string("disposition type")?;
            check_params(&d[1])?;
        }
        other => return Err(format!("body-fld-dsp: {other:?}")),
    }
    match lang {
        Value::Nil | Value::Str(_) => {}
        Value::List(tags, _) if !tags.is_empty() => {
            for t in lang.list("body-fld-lang")? {
                t.string("language tag")?;
            }
        }
        other => return Err(format!("body-fld-lang: {other:?}")),
    }
    loc.nstring("body-fld-loc")?;
    Ok(())
}

/// Checks one `body`, noting each numbered part in `parts`. `own` is the
/// part's number if it has one; a multipart's parts are numbered under it,
/// or under `container` (the message, or the message/rfc822 part holding
/// it) when it has none; a part without number that is not a multipart
/// is `container.1`.
fn check_body(
    v: &Value,
    extensible: bool,
    container: &[u32],
    own: Option<Vec<u32>>,
    parts: &mut Vec<PartInfo>,
) -> Result<(), String> {
    let Value::List(items, glued) = v else {
        return Err(format!("body: not a list: {v:?}"));
    };
    let children = items
        .iter()
        .take_while(|i| matches!(i, Value::List(..)))
        .count();
    // A multipart is `1*body SP media-subtype ...`: its parts put together.
    if glued
        .iter()
        .enumerate()
        .any(|(i, &g)| g != (i + 1 < children))
    {
        return Err(format!(
            "body: spaces where the grammar has none, or none where it has one: {v:?}"
        ));
    }
    if children > 0 {
        let under = own.clone().unwrap_or_else(|| container.to_vec());
        if let Some(path) = own {
            parts.push(PartInfo {
                path,
                kind: Kind::Multipart,
                octets: None,
                lines: None,
            });
        }
        for (i, child) in items[..children].iter().enumerate() {
            let mut path = under.clone();
            path.push(i as u32 + 1);
            check_body(child, extensible, &path.clone(), Some(path), parts)?;
        }
        let rest = &items[children..];
        let Some(subtype) = rest.first() else {
            return Err(format!("a multipart without subtype: {v:?}"));
        };
        subtype.string("multipart subtype")?;
        match (extensible, &rest[1..]) {
            (false, []) => {}
            (true, [params, ext @ ..]) => {
                check_params(params)?;
                check_common_extensions(ext)?;
            }
            (_, other) => return Err(format!("multipart extension data: {other:?}")),
        }
        return Ok(());
    }
    let path = own.unwrap_or_else(|| {
        let mut p = container.to_vec();
        p.push(1);
        p
    });
    if items.len() < 7 {
        return Err(format!("a body part of {} fields: {v:?}", items.len()));
    }
    let media_type = items[0].string("media type")?;
    let subtype = items[1].string("media subtype")?;
    check_params(&items[2])?;
    items[3].nstring("body-fld-id")?;
    items[4].nstring("body-fld-desc")?;
    items[5].string("body-fld-enc")?;
    let octets = items[6].number("body-fld-octets")?;
    let mut next = 7;
    let (kind, lines) =
        if media_type.eq_ignore_ascii_case(b"message") && subtype.eq_ignore_ascii_case(b"rfc822") {
            let [envelope, body, lines, ..] = &items[7..] else {
                return Err(format!(
                    "message/rfc822 without envelope, body and lines: {v:?}"
                ));
            };
            check_envelope(envelope)?;
            let index = parts.len();
            parts.push(PartInfo {
                path: path.clone(),
                kind: Kind::Message,
                octets: Some(octets),
                lines: None,
            });
            check_body(body, extensible, &path, None, parts)?;
            parts[index].lines = Some(lines.number("body-fld-lines")?);
            next = 10;
            (None, None)
        } else if media_type.eq_ignore_ascii_case(b"text") {
            let Some(lines) = items.get(7) else {
                return Err(format!("a text part without lines: {v:?}"));
            };
            next = 8;
            (Some(Kind::Text), Some(lines.number("body-fld-lines")?))
        } else {
            (Some(Kind::Basic), None)
        };
    if let Some(kind) = kind {
        parts.push(PartInfo {
            path,
            kind,
            octets: Some(octets),
            lines,
        });
    }
    match (extensible, &items[next..]) {
        (false, []) => Ok(()),
        (true, [md5, ext @ ..]) => {
            md5.nstring("body-fld-md5")?;
            check_common_extensions(ext)
        }
        (_, other) => Err(format!("body part extension data: {other:?}")),
    }
}

// ---------------------------------------------------------------------------
// One case
// ---------------------------------------------------------------------------

/// Names for HEADER.FIELDS: some the header has (case changed), some it
/// has not, and sometimes many (a list that long is hashed).
fn field_names(rng: &mut Rng, header: &[u8]) -> Vec<Vec<u8>> {
    let present: Vec<&[u8]> = header
        .split(|&b| b == b'\n')
        .filter_map(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            let name = &l[..colon];
            (!name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-'))
                .then_some(name)
        })
        .collect();
    let mut names: Vec<Vec<u8>> = Vec::new();
    for _ in 0..rng.range(1, 3) {
        if !present.is_empty() && rng.chance(2, 3) {
            let mut n = rng.pick(&present).to_vec();
            if rng.chance(1, 2) {
                n.make_ascii_uppercase();
            }
            names.push(n);
        } else {
            let n = *rng.pick(&[
                "FROM",
                "to",
                "Subject",
                "CONTENT-TYPE",
                "X-Missing",
                "Received",
            ]);
            names.push(n.as_bytes().to_vec());
        }
    }
    if rng.chance(1, 10) {
        names.extend((0..20).map(|i| format!("X-N-{i}").into_bytes()));
    }
    names
}

/// The section spec as FETCH echoes it: `1.2.HEADER.FIELDS (A B)`.
fn spec(section: &Section) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, n) in section.part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(n.to_string().as_bytes());
    }
    let Some(text) = &section.text else {
        return out;
    };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let (name, names): (&[u8], _) = match text {
        SectionText::Header => (b"HEADER", None),
        SectionText::Text => (b"TEXT", None),
        SectionText::Mime => (b"MIME", None),
        SectionText::HeaderFields(n) => (b"HEADER.FIELDS", Some(n)),
        SectionText::HeaderFieldsNot(n) => (b"HEADER.FIELDS.NOT", Some(n)),
    };
    out.extend_from_slice(name);
    if let Some(names) = names {
        out.extend_from_slice(b" (");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(n);
        }
        out.push(b')');
    }
    out
}

/// Length of the empty line that ends `header`, if it ends with one.
fn end_line_len(header: &[u8]) -> usize {
    if header == b"\r\n" || header.ends_with(b"\n\r\n") {
        2
    } else if header == b"\n" || header.ends_with(b"\n\n") {
        1
    } else {
        0
    }
}

/// What one message gives, checked.
fn check_message(rng: &mut Rng, data: &[u8]) -> Result<(), String> {
    let msg = Message::parse(data);
    let mut envelope = Vec::new();
    msg.write_envelope(&mut envelope);
    let mut response = b"* 1 FETCH (UID 1 ENVELOPE ".to_vec();
    response.extend_from_slice(&envelope);
    let mut structure = Vec::new();
    msg.write_body_structure(&mut structure, true);
    let mut body = Vec::new();
    msg.write_body_structure(&mut body, false);
    response.extend_from_slice(b" BODYSTRUCTURE ");
    response.extend_from_slice(&structure);
    response.extend_from_slice(b" BODY ");
    response.extend_from_slice(&body);

    // Each item alone is one value, so nothing leaks from one into the next.
    check_envelope(&read_value(&envelope).map_err(|e| format!("ENVELOPE: {e}"))?)?;
    let mut parts = Vec::new();
    check_body(
        &read_value(&structure).map_err(|e| format!("BODYSTRUCTURE: {e}"))?,
        true,
        &[],
        None,
        &mut parts,
    )
    .map_err(|e| format!("BODYSTRUCTURE: {e}"))?;
    let mut body_parts = Vec::new();
    check_body(
        &read_value(&body).map_err(|e| format!("BODY: {e}"))?,
        false,
        &[],
        None,
        &mut body_parts,
    )
    .map_err(|e| format!("BODY: {e}"))?;
    if parts != body_parts {
        return Err(format!(
            "BODY and BODYSTRUCTURE describe different parts:\n{body_parts:?}\n{parts:?}"
        ));
    }

    // The sections: the message's, each part's, and some that do not exist.
    let header = msg.header();
    if header.len() + msg.text().len() != data.len() {
        return Err("HEADER and TEXT are not the whole message".into());
    }
    let names = field_names(rng, header);
    let section = |part: &[u32], text: Option<SectionText>| Section {
        part: part.to_vec(),
        text,
    };
    let mut wanted: Vec<(Section, bool)> = vec![
        (section(&[], None), true),
        (section(&[], Some(SectionText::Header)), true),
        (section(&[], Some(SectionText::Text)), true),
        (
            section(&[], Some(SectionText::HeaderFields(names.clone()))),
            true,
        ),
        (
            section(&[], Some(SectionText::HeaderFieldsNot(names.clone()))),
            true,
        ),
        (section(&[], Some(SectionText::Mime)), false),
    ];
    // Where each part's BODY[n], and a message's n.HEADER, n.HEADER.FIELDS
    // and n.HEADER.FIELDS.NOT, are in `wanted`.
    let mut at: Vec<(usize, Option<[usize; 3]>)> = Vec::with_capacity(parts.len());
    for p in &parts {
        // A multipart without parts is described with one empty text/plain
        // part (the grammar needs one), which has no bytes to fetch.
        let exists = p.octets != Some(0);
        at.push((wanted.len(), None));
        wanted.push((section(&p.path, None), exists));
        wanted.push((section(&p.path, Some(SectionText::Mime)), exists));
        let message = p.kind == Kind::Message;
        if message && let Some(last) = at.last_mut() {
            last.1 = Some([wanted.len(), wanted.len() + 2, wanted.len() + 3]);
        }
        for text in [
            SectionText::Header,
            SectionText::Text,
            SectionText::HeaderFields(names.clone()),
            SectionText::HeaderFieldsNot(names.clone()),
        ] {
            // HEADER and TEXT of a part that is no message: nothing, but
            // asked now and then.
            if message || rng.chance(1, 8) {
                wanted.push((section(&p.path, Some(text)), message));
            }
        }
    }
    for _ in 0..2 {
        let mut path: Vec<u32> = match parts.len() {
            0 => Vec::new(),
            n => parts[rng.below(n)].path.clone(),
        };
        match rng.below(4) {
            0 => path.push(rng.range(0, 3) as u32),
            1 => {
                path.pop();
                path.push(rng.range(2, 9) as u32);
            }
            2 => path = vec![0],
            _ => path.push(u32::MAX),
        }
        let text = rng
            .pick(&[None, Some(SectionText::Header), Some(SectionText::Mime)])
            .clone();
        wanted.push((section(&path, text), false));
    }

    let mut got = Vec::with_capacity(wanted.len());
    for (s, must_exist) in &wanted {
        let bytes = msg.section(s);
        if *must_exist && bytes.is_none() {
            return Err(format!(
                "BODY[{}] is missing, though BODYSTRUCTURE has the part",
                shown(&spec(s))
            ));
        }
        let bytes = bytes.map(|b| b.into_owned()).unwrap_or_default();
        if bytes.contains(&0) {
            return Err(format!("NUL in BODY[{}]", shown(&spec(s))));
        }
        // Written as session/fetch.rs writes it, a partial range sometimes.
        response.extend_from_slice(b" BODY[");
        response.extend_from_slice(&spec(s));
        response.push(b']');
        let mut sent = &bytes[..];
        if rng.chance(1, 3) {
            let origin = match rng.below(3) {
                0 => 0,
                1 => rng.below(bytes.len() + 2),
                _ => u32::MAX as usize,
            };
            let count = rng.below(bytes.len() + 2);
            let start = origin.min(bytes.len());
            let end = start.saturating_add(count).min(bytes.len());
            sent = &bytes[start..end];
            response.extend_from_slice(format!("<{origin}>").as_bytes());
        }
        response.extend_from_slice(format!(" {{{}}}\r\n", sent.len()).as_bytes());
        response.extend_from_slice(sent);
        got.push(bytes);
    }
    response.extend_from_slice(b")\r\n");
    let atts = read_fetch(&response).map_err(|e| format!("the FETCH response: {e}"))?;
    if atts.len() != 4 + wanted.len() {
        return Err(format!("the FETCH response has {} items", atts.len()));
    }

    // What the sections must be, against each other and the structure.
    let whole: Vec<u8> = data
        .iter()
        .map(|&b| if b == 0 { 0x80 } else { b })
        .collect();
    if got[0] != whole {
        return Err("BODY[] is not the message".into());
    }
    let fields_cover = |header: &[u8], fields: &[u8], not: &[u8], what: &str| {
        let end = end_line_len(header);
        let expected = header.len() - end + if end > 0 { 4 } else { 0 };
        if fields.len() + not.len() != expected {
            return Err(format!(
                "{what}: HEADER.FIELDS and .NOT of the same names are {} + {} octets, the header {}",
                fields.len(),
                not.len(),
                header.len()
            ));
        }
        Ok(())
    };
    fields_cover(&got[1], &got[3], &got[4], "the message")?;
    for (p, &(body_at, header_at)) in parts.iter().zip(&at) {
        let body = &got[body_at];
        if let Some(octets) = p.octets
            && body.len() != octets as usize
        {
            return Err(format!(
                "part {:?}: BODYSTRUCTURE says {octets} octets, BODY[] has {}",
                p.path,
                body.len()
            ));
        }
        if let Some(lines) = p.lines {
            let lf = body.iter().filter(|&&b| b == b'\n').count();
            if lf != lines as usize {
                return Err(format!(
                    "part {:?}: BODYSTRUCTURE says {lines} lines, BODY[] has {lf}",
                    p.path
                ));
            }
        }
        if let Some([header, fields, not]) = header_at {
            let what = format!("part {:?}", p.path);
            fields_cover(&got[header], &got[fields], &got[not], &what)?;
        }
    }

    // The rest of the layer's readers of a message: no panic.
    if rng.chance(1, 4) {
        let _ = (
            msg.sent_date(),
            msg.header_decoded(b"subject"),
            msg.header_values(b"to"),
            SortKeys::of_header(header),
            header_contains(&msg, b"from", "caf\u{e9}"),
            body_contains(&msg, "hello"),
            text_contains(&msg, "\u{e9}t\u{e9}"),
        );
    }
    Ok(())
}

/// Runs one case; Err describes a malformed answer or a panic.
fn run_case(seed: u64, case: u64, corpus: &[Vec<u8>]) -> (Vec<u8>, Result<(), String>) {
    let mut rng = Rng::for_case(seed, case);
    let raw = input(&mut rng, corpus);
    // The session hands the layer CRLF text; bare line ends must not break
    // it either.
    let data = if rng.chance(3, 4) {
        to_crlf(&raw).into_owned()
    } else {
        raw
    };
    let outcome =
        catch_unwind(AssertUnwindSafe(|| check_message(&mut rng, &data))).unwrap_or_else(|panic| {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panic: {text}"))
        });
    (data, outcome)
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// Cases `shard`, `shard + SHARDS`, ... of the run.
fn run_shard(shard: u64) {
    let corpus = corpus();
    if let Ok(replay) = std::env::var("MDIMAP_FUZZ_REPLAY") {
        if shard != 0 {
            return;
        }
        let (seed, case) = replay
            .split_once(':')
            .and_then(|(s, c)| {
                let s = s.trim_start_matches("0x");
                Some((u64::from_str_radix(s, 16).ok()?, c.parse().ok()?))
            })
            .expect("MDIMAP_FUZZ_REPLAY=<seed in hex>:<case>");
        let (data, outcome) = run_case(seed, case, &corpus);
        eprintln!("input ({} octets): {}", data.len(), shown(&data));
        if let Err(e) = outcome {
            panic!("case {seed:#x}:{case}: {e}");
        }
        return;
    }
    let seed = env_u64("MDIMAP_FUZZ_SEED").unwrap_or(SEED);
    let cases = env_u64("MDIMAP_FUZZ_CASES").unwrap_or(CASES);
    let mut case = shard;
    while case < cases {
        let (data, outcome) = run_case(seed, case, &corpus);
        if let Err(e) = outcome {
            let file = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("message_fuzz-{seed:x}-{case}.eml"));
            let _ = fs::write(&file, &data);
            panic!(
                "case {seed:#x}:{case} fails: {e}\n\
                 input ({} octets) in {}\n\
                 replay: MDIMAP_FUZZ_REPLAY={seed:x}:{case} cargo test --test message_fuzz -- --nocapture",
                data.len(),
                file.display()
            );
        }
        case += SHARDS;
    }
}

#[test]
fn random_and_mutated_messages_0() {
    run_shard(0);
}

#[test]
fn random_and_mutated_messages_1() {
    run_shard(1);
}

#[test]
fn random_and_mutated_messages_2() {
    run_shard(2);
}

#[test]
fn random_and_mutated_messages_3() {
    run_shard(3);
}

#[test]
fn the_checker_refuses_malformed_answers() {
    for bad in [
        &b"(\"a\r\nb\")"[..],
        b"(\"caf\xc3\xa9\")",
        b"(\"a\\b\")",
        b"(\"a\0\")",
        b"({3}\r\nab)",
        b"({2}\r\na\0)",
        b"(\"a\"  \"b\")",
        b"(\"a\" )",
        b"(\"a\"",
        b"(NIL)x",
        b"(nil)",
        b"(4294967296)",
        b"(\"a\")(\"b\")",
    ] {
        assert!(read_value(bad).is_err(), "{}", shown(bad));
    }
    assert_eq!(
        read_value(b"(\"a\\\"b\" {3}\r\n\xc3\xa9\n NIL 7 ())"),
        Ok(Value::List(
            vec![
                Value::Str(b"a\\\"b"),
                Value::Str(b"\xc3\xa9\n"),
                Value::Nil,
                Value::Number(7),
                Value::List(vec![], vec![]),
            ],
            vec![false; 4]
        ))
    );
    let group = |v: &[u8]| check_address_list(&read_value(v).unwrap());
    assert!(group(b"((NIL NIL \"g\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL))").is_ok());
    assert!(group(b"((NIL NIL \"g\" NIL)(NIL NIL \"a\" \"b\"))").is_err());
    assert!(group(b"((NIL NIL NIL NIL))").is_err());
    assert!(group(b"((NIL NIL \"a\"))").is_err());
    assert!(group(b"()").is_err());
    assert!(group(b"((NIL NIL \"a\" \"b\") (NIL NIL \"c\" \"d\"))").is_err());
    let mut parts = Vec::new();
    let body = |v: &[u8], ext: bool, parts: &mut Vec<PartInfo>| {
        read_value(v).and_then(|v| check_body(&v, ext, &[], None, parts))
    };
    assert!(
        body(
            b"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0)",
            false,
            &mut parts
        )
        .is_err()
    );
    assert!(
        body(
            b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0)",
            false,
            &mut parts
        )
        .is_err()
    );
    assert!(
        body(
            b"(\"text\" \"plain\" () NIL NIL \"7bit\" 0 0)",
            false,
            &mut parts
        )
        .is_err()
    );
    assert!(body(b"(\"mixed\")", false, &mut parts).is_err());
    assert!(
        body(
            b"((\"a\" \"b\" NIL NIL NIL \"7bit\" 3) (\"a\" \"b\" NIL NIL NIL \"7bit\" 4) \"mixed\")",
            false,
            &mut parts
        )
        .is_err()
    );
    assert!(
        body(
            b"((\"a\" \"b\" NIL NIL NIL \"7bit\" 3)\"mixed\")",
            false,
            &mut parts
        )
        .is_err()
    );
    assert!(
        body(
            b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0 NIL)",
            false,
            &mut parts
        )
        .is_err()
    );
    parts.clear();
    body(
        b"((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 2 \
          (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ((\"a\" \"b\" NIL NIL NIL \"7bit\" 3)(\"a\" \"b\" NIL NIL NIL \"7bit\" 4) \"mixed\") 5) \"mixed\")",
        false,
        &mut parts,
    )
    .unwrap();
    let paths: Vec<_> = parts.iter().map(|p| (p.path.clone(), p.octets)).collect();
    assert_eq!(
        paths,
        vec![
            (vec![1], Some(1)),
            (vec![2], Some(2)),
            (vec![2, 1], Some(3)),
            (vec![2, 2], Some(4))
        ]
    );
}
