//! Exact answers (issue 9, point 3): for every message of tests/corpus/
//! (and a generated one with a 5 MiB attachment), mdimapd and Dovecot 2.3
//! are asked the same FETCH items, one at a time — ENVELOPE, BODYSTRUCTURE,
//! BODY, RFC822.SIZE, RFC822.HEADER, BODY[] and its HEADER, TEXT,
//! HEADER.FIELDS and HEADER.FIELDS.NOT, and for every part number that
//! either server's BODYSTRUCTURE has, BODY[n], n.MIME, n.HEADER, n.TEXT,
//! n.HEADER.FIELDS[.NOT], with partial ranges — and their untagged answers
//! must be the same bytes. Where mdimap answers otherwise on purpose,
//! tests/corpus/DIFFERENCES.md gives the RFC clause and both answers, and
//! the test checks that mdimap gives that answer (and Dovecot still its own).
//!
//! Each server reads its own copy of the maildir, one message per folder,
//! so no numbering question arises. Dovecot is unpacked from its Debian
//! packages and run standalone in PREAUTH mode (tests/common/mod.rs).
//!
//! This file owns only the client side and the comparison: it must not
//! reimplement mdimap's parsing (no `use mdimap::...`).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

/// Name of the generated message (not a file).
const BIG: &str = "big-attachment (generated)";

/// Field lists of the HEADER.FIELDS items, in upper case: Dovecot echoes
/// the names upper-cased, mdimap as the client wrote them (both are the
/// same names, RFC 5322 §1.2.2); asking in upper case makes the echo equal.
const FIELDS: &str = "(FROM TO SUBJECT CONTENT-TYPE X-MISSING)";
const FIELDS_NOT: &str = "(RECEIVED CONTENT-TYPE)";

/// The corpus: every `*.eml` file in name order, then the big message.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = fs::read_dir(CORPUS)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    let mut out: Vec<(String, Vec<u8>)> = names
        .into_iter()
        .map(|n| {
            let bytes = fs::read(Path::new(CORPUS).join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    out.push((BIG.to_string(), big_attachment()));
    out
}

/// A multipart/mixed with a text part and 5 MiB of pseudo-random bytes in
/// base64, 76 characters a line, LF line ends as an MTA stores them.
fn big_attachment() -> Vec<u8> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    let encoded = base64(&bytes);
    let mut m = b"Date: Mon, 3 Feb 2025 10:00:00 +0100\nFrom: Big Sender <big@example.org>\n\
To: someone@example.net\nSubject: a 5 MiB attachment\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"big-boundary\"\n\n--big-boundary\n\
Content-Type: text/plain; charset=us-ascii\n\nThe attachment follows.\n--big-boundary\n\
Content-Type: application/octet-stream; name=\"random.bin\"\n\
Content-Disposition: attachment; filename=\"random.bin\"\n\
Content-Transfer-Encoding: base64\n\n"
        .to_vec();
    for line in encoded.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.push(b'\n');
    }
    m.extend_from_slice(b"--big-boundary--\n");
    m
}

/// One message per Maildir++ folder `.cNNN`, in cur/.
fn fill(maildir: &Path, corpus: &[(String, Vec<u8>)]) {
    for (i, (_, bytes)) in corpus.iter().enumerate() {
        let folder = make_folder(maildir, &format!(".c{i:03}"));
        fs::write(folder.join("cur/1700000000.M1P1.corpus:2,S"), bytes).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Reading a BODYSTRUCTURE to find the part numbers
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Value {
    List(Vec<Value>),
    Str(Vec<u8>),
    /// NIL, a number: not needed to find the parts.
    Atom,
}

/// One IMAP value at `s[*i..]` (quoted, literal, atom or list).
fn value(s: &[u8], i: &mut usize) -> Value {
    while s[*i] == b' ' {
        *i += 1;
    }
    match s[*i] {
        b'(' => {
            *i += 1;
            let mut items = Vec::new();
            loop {
                while s[*i] == b' ' {
                    *i += 1;
                }
                if s[*i] == b')' {
                    *i += 1;
                    return Value::List(items);
                }
                items.push(value(s, i));
            }
        }
        b'"' => {
            *i += 1;
            let mut out = Vec::new();
            while s[*i] != b'"' {
                if s[*i] == b'\\' {
                    *i += 1;
                }
                out.push(s[*i]);
                *i += 1;
            }
            *i += 1;
            Value::Str(out)
        }
        b'{' => {
            let close = *i + s[*i..].iter().position(|&b| b == b'}').unwrap();
            let n: usize = std::str::from_utf8(&s[*i + 1..close])
                .unwrap()
                .parse()
                .unwrap();
            let start = close + 3;
            *i = start + n;
            Value::Str(s[start..start + n].to_vec())
        }
        _ => {
            while !matches!(s[*i], b' ' | b'(' | b')') {
                *i += 1;
            }
            Value::Atom
        }
    }
}

/// The BODYSTRUCTURE of a `* 1 FETCH (BODYSTRUCTURE ...)` answer.
fn bodystructure(answer: &[u8]) -> Value {
    let key = b"BODYSTRUCTURE ";
    let at = answer
        .windows(key.len())
        .position(|w| w == key)
        .unwrap_or_else(|| panic!("no BODYSTRUCTURE in {}", show(answer)))
        + key.len();
    let mut i = at;
    value(answer, &mut i)
}

fn is_message_rfc822(body: &[Value]) -> bool {
    let text = |v: Option<&Value>| match v {
        Some(Value::Str(s)) => s.to_ascii_lowercase(),
        _ => Vec::new(),
    };
    text(body.first()) == b"message" && text(body.get(1)) == b"rfc822"
}

/// Part numbers below the part `number` whose structure is `body`.
fn parts_below(body: &[Value], number: &[u32], out: &mut Vec<Vec<u32>>) {
    if matches!(body.first(), Some(Value::List(_))) {
        let children = body.iter().take_while(|v| matches!(v, Value::List(_)));
        for (i, child) in children.enumerate() {
            let mut n = number.to_vec();
            n.push(i as u32 + 1);
            out.push(n.clone());
            if let Value::List(child) = child {
                parts_below(child, &n, out);
            }
        }
    } else if is_message_rfc822(body)
        && let Some(Value::List(inner)) = body.get(8)
    {
        if matches!(inner.first(), Some(Value::List(_))) {
            parts_below(inner, number, out);
        } else {
            let mut n = number.to_vec();
            n.push(1);
            out.push(n.clone());
            parts_below(inner, &n, out);
        }
    }
}

/// Every part number of a message with this BODYSTRUCTURE.
fn part_numbers(structure: &Value) -> Vec<Vec<u32>> {
    let Value::List(top) = structure else {
        panic!("BODYSTRUCTURE is not a list: {structure:?}")
    };
    let mut out = Vec::new();
    if matches!(top.first(), Some(Value::List(_))) {
        parts_below(top, &[], &mut out);
    } else {
        out.push(vec![1]);
        parts_below(top, &[1], &mut out);
    }
    out
}

/// The FETCH items asked for one message.
fn items(parts: &[Vec<u32>]) -> Vec<String> {
    let mut out: Vec<String> = [
        "ENVELOPE",
        "BODYSTRUCTURE",
        "BODY",
        "RFC822.SIZE",
        "RFC822.HEADER",
        "BODY.PEEK[]",
        "BODY.PEEK[HEADER]",
        "BODY.PEEK[TEXT]",
        "BODY.PEEK[]<0.10>",
        "BODY.PEEK[]<7.100>",
        "BODY.PEEK[TEXT]<1.5>",
        "BODY.PEEK[]<100000000.5>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    out.push(format!("BODY.PEEK[HEADER.FIELDS {FIELDS}]"));
    out.push(format!("BODY.PEEK[HEADER.FIELDS.NOT {FIELDS_NOT}]"));
    for part in parts {
        let n: Vec<String> = part.iter().map(u32::to_string).collect();
        let n = n.join(".");
        out.push(format!("BODY.PEEK[{n}]"));
        out.push(format!("BODY.PEEK[{n}.MIME]"));
        out.push(format!("BODY.PEEK[{n}.HEADER]"));
        out.push(format!("BODY.PEEK[{n}.TEXT]"));
        out.push(format!("BODY.PEEK[{n}.HEADER.FIELDS {FIELDS}]"));
        out.push(format!("BODY.PEEK[{n}.HEADER.FIELDS.NOT {FIELDS_NOT}]"));
        out.push(format!("BODY.PEEK[{n}]<2.5>"));
    }
    out
}

// ---------------------------------------------------------------------------
// tests/corpus/DIFFERENCES.md
// ---------------------------------------------------------------------------

/// A deliberate difference: (Dovecot's answer, mdimap's answer).
type Differences = BTreeMap<(String, String), (Vec<u8>, Vec<u8>)>;

/// Reads the entries of DIFFERENCES.md: a heading ``### `message` `item` ``
/// followed by a fenced block after `Dovecot:` and one after `mdimap:`,
/// each the untagged answer with one line per CRLF-ended line.
fn differences() -> Differences {
    let text = fs::read_to_string(Path::new(CORPUS).join("DIFFERENCES.md")).unwrap();
    let mut out = Differences::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(heading) = line.strip_prefix("### `") else {
            continue;
        };
        let (message, rest) = heading.split_once('`').expect("### `message` `item`");
        let item = rest
            .trim()
            .strip_prefix('`')
            .and_then(|r| r.strip_suffix('`'))
            .unwrap_or_else(|| panic!("DIFFERENCES.md: no `item` in {line:?}"));
        let mut block = |label: &str| -> Vec<u8> {
            for l in lines.by_ref() {
                if l.trim() == label {
                    break;
                }
                assert!(!l.starts_with("###"), "DIFFERENCES.md: {line}: no {label}");
            }
            let fence = lines.next().expect("a fenced block");
            assert!(
                fence.starts_with("```"),
                "DIFFERENCES.md: {line}: {label} then ```"
            );
            let mut answer = Vec::new();
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    return answer;
                }
                answer.extend_from_slice(l.as_bytes());
                answer.extend_from_slice(b"\r\n");
            }
            panic!("DIFFERENCES.md: {line}: unterminated block");
        };
        let dovecot = block("Dovecot:");
        let mdimap = block("mdimap:");
        let key = (message.to_string(), item.to_string());
        assert!(
            out.insert(key, (dovecot, mdimap)).is_none(),
            "DIFFERENCES.md lists {line} twice"
        );
    }
    out
}

/// Bytes for a failure message: printable ASCII kept, the rest escaped.
fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

#[test]
fn readme_describes_every_message() {
    let readme = fs::read_to_string(Path::new(CORPUS).join("README.md")).unwrap();
    let described: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split_once('`'))
        .map(|(name, rest)| {
            assert!(
                rest.trim_start_matches(" |").trim().len() > 10,
                "README.md: no description for {name}"
            );
            name
        })
        .collect();
    let mut files: Vec<String> = corpus()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n != BIG)
        .collect();
    files.sort();
    let mut listed: Vec<String> = described.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(listed, files, "tests/corpus/README.md and the files differ");
    assert!(files.len() >= 80, "the corpus has {} messages", files.len());
}

#[test]
fn fetch_answers_equal_dovecot() {
    let t = TestDir::new("corpus-dovecot");
    let corpus = corpus();
    let dovecot_maildir = dovecot_maildir(&t);
    fill(&dovecot_maildir, &corpus);
    let (uid, gid, _, _) = mail_account();
    if is_root() {
        chown_tree(&dovecot_maildir, uid, gid);
    }
    let mdimap_maildir = t.join("mdimap-Maildir");
    make_maildir(&mdimap_maildir);
    fill(&mdimap_maildir, &corpus);

    let (_dovecot, mut dv) = dovecot_preauth(&t, &dovecot_maildir);
    let (_server, mut md) = preauth(&t, &mdimap_maildir);
    let mut expected = differences();
    let mut failures = Vec::new();
    let mut compared = 0;
    for (i, (name, _)) in corpus.iter().enumerate() {
        for (client, mailbox) in [
            (&mut dv, format!("c{i:03}")),
            (&mut md, format!("INBOX.c{i:03}")),
        ] {
            let (_, tagged) = client.cmd_raw(format!("EXAMINE {mailbox}").as_bytes());
            assert!(
                tagged.contains(" OK "),
                "EXAMINE {mailbox} ({name}): {tagged}"
            );
        }
        let mut parts = Vec::new();
        for client in [&mut dv, &mut md] {
            let (answer, _) = client.cmd_raw(b"FETCH 1 (BODYSTRUCTURE)");
            for p in part_numbers(&bodystructure(&answer)) {
                if !parts.contains(&p) {
                    parts.push(p);
                }
            }
        }
        for item in items(&parts) {
            let command = format!("FETCH 1 ({item})");
            let (dovecot_answer, dovecot_tagged) = dv.cmd_raw(command.as_bytes());
            let (mdimap_answer, mdimap_tagged) = md.cmd_raw(command.as_bytes());
            compared += 1;
            assert!(
                dovecot_tagged.contains(" OK ") && mdimap_tagged.contains(" OK "),
                "{name}: {command}: Dovecot {dovecot_tagged:?}, mdimap {mdimap_tagged:?}"
            );
            let key = (name.clone(), item.clone());
            match expected.remove(&key) {
                None if dovecot_answer == mdimap_answer => {}
                None => failures.push(format!(
                    "{name}: {item}\n  Dovecot: {}\n  mdimap:  {}",
                    show(&dovecot_answer),
                    show(&mdimap_answer)
                )),
                Some((dovecot_listed, mdimap_listed)) => {
                    if mdimap_answer != mdimap_listed {
                        failures.push(format!(
                            "{name}: {item}: not the answer DIFFERENCES.md gives\n  listed: {}\n  mdimap: {}",
                            show(&mdimap_listed),
                            show(&mdimap_answer)
                        ));
                    }
                    if dovecot_answer != dovecot_listed {
                        failures.push(format!(
                            "{name}: {item}: Dovecot no longer answers as DIFFERENCES.md says\n  listed:  {}\n  Dovecot: {}",
                            show(&dovecot_listed),
                            show(&dovecot_answer)
                        ));
                    }
                }
            }
        }
    }
    for (message, item) in expected.keys() {
        failures.push(format!(
            "DIFFERENCES.md lists {message} {item}, which the test never compared"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
